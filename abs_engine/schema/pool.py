"""The collateral pool: obligors, their license-fee or loan schedules, PDs, IP collateral."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .common import Date, FieldError, Model, Money, Name, NonNegRate, Num, PosInt, Share

# --- amortization -------------------------------------------------------------------------


class Bullet(Model):
    """Interest every period, all principal in the last of ``n_periods`` periods."""

    kind: Literal["bullet"]
    n_periods: PosInt
    first_period: PosInt = 1


class LevelPay(Model):
    """Level (annuity) payment of principal + interest over ``n_periods`` periods."""

    kind: Literal["level_pay"]
    n_periods: PosInt
    first_period: PosInt = 1


class EqualPrincipal(Model):
    """Equal principal instalments over ``n_periods`` periods, interest on the balance."""

    kind: Literal["equal_principal"]
    n_periods: PosInt
    first_period: PosInt = 1


class LicenseFeePayment(Model):
    """One scheduled license-fee payment. ``principal`` reduces the receivable balance;
    ``interest`` is the financing part of the fee (yuan)."""

    date: Date
    principal: Money
    interest: Money = 0.0


class LicenseFeeSchedule(Model):
    """An explicit schedule of license-fee payments (dates and amounts). Each date is mapped to
    the payment period whose accrual interval contains it; principal must sum to the balance."""

    kind: Literal["license_fee"]
    payments: list[LicenseFeePayment] = Field(min_length=1)

    @model_validator(mode="after")
    def _dates_increase(self) -> LicenseFeeSchedule:
        for k in range(1, len(self.payments)):
            if self.payments[k].date <= self.payments[k - 1].date:
                raise FieldError(
                    ("payments", k, "date"),
                    f"dates out of order: payments[{k}].date {self.payments[k].date} is not "
                    f"after payments[{k - 1}].date {self.payments[k - 1].date}",
                )
        return self


Amortization = Annotated[
    Bullet | LevelPay | EqualPrincipal | LicenseFeeSchedule, Field(discriminator="kind")
]

# --- probability of default -----------------------------------------------------------------

PdValue = Annotated[float, Field(strict=True, ge=0, lt=1, allow_inf_nan=False)]


class FlatPd(Model):
    """Constant annual PD: cumulative PD(t) = 1 - (1 - annual)^t, t in years."""

    kind: Literal["flat"]
    annual: PdValue


class PdTermStructure(Model):
    """Cumulative PD at given horizons (years); the hazard is flat between knots and after the
    last one. Cumulative PDs must increase with the horizon."""

    kind: Literal["term_structure"]
    horizons_years: list[Annotated[float, Field(strict=True, gt=0)]] = Field(min_length=1)
    cumulative: list[PdValue] = Field(min_length=1)

    @model_validator(mode="after")
    def _shape(self) -> PdTermStructure:
        if len(self.horizons_years) != len(self.cumulative):
            raise FieldError(
                ("cumulative",),
                f"horizons_years has {len(self.horizons_years)} entries but cumulative has "
                f"{len(self.cumulative)}; they must match",
            )
        for k in range(1, len(self.horizons_years)):
            if self.horizons_years[k] <= self.horizons_years[k - 1]:
                msg = f"horizons_years must increase; entry {k} does not"
                raise FieldError(("horizons_years", k), msg)
            if self.cumulative[k] < self.cumulative[k - 1]:
                msg = f"cumulative PD must not decrease; entry {k} does"
                raise FieldError(("cumulative", k), msg)
        return self


class RatingClassPd(Model):
    """PD taken from a named rating class in the deal's ``pd_classes`` table."""

    kind: Literal["rating_class"]
    rating_class: Name


Pd = Annotated[FlatPd | PdTermStructure | RatingClassPd, Field(discriminator="kind")]

# --- IP collateral and recovery ----------------------------------------------------------------


class IpCollateral(Model):
    """Pledged intellectual property.

    The base value is ``appraisal`` when given, otherwise a relief-from-royalty DCF:
    sum_{y=1..life} revenue·(1+g)^(y-1)·royalty_rate·(1-tax_rate) / (1+discount_rate)^y.
    Amounts in yuan, rates as decimals.
    """

    patent_count: Annotated[int, Field(strict=True, ge=0)] = 0
    appraisal: Money | None = None
    revenue: Money | None = None
    revenue_growth: Annotated[float, Field(strict=True, ge=-0.5, le=1.0)] = 0.0
    royalty_rate: Share | None = None
    tax_rate: Share = 0.25
    discount_rate: Annotated[float, Field(strict=True, gt=0, le=1.0)] = 0.12
    useful_life_years: Annotated[int, Field(strict=True, ge=1, le=30)] = 5

    @model_validator(mode="after")
    def _inputs(self) -> IpCollateral:
        if self.appraisal is None and (self.revenue is None or self.royalty_rate is None):
            raise ValueError("give either appraisal or both revenue and royalty_rate")
        return self


class Recovery(Model):
    """Recovery on a defaulted balance: ``rate`` of the defaulted principal, received
    ``lag_periods`` payment periods after the default period."""

    rate: Share = 0.2
    lag_periods: Annotated[int, Field(strict=True, ge=0, le=120)] = 4


# --- obligors and pool ---------------------------------------------------------------------------


class Obligor(Model):
    """One obligor (a licensee SME or borrower) and its receivable."""

    id: Name
    name: str = ""
    sector: str = "unspecified"
    region: str = ""
    balance: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
    rate: NonNegRate
    amortization: Amortization
    pd: Pd
    collateral: IpCollateral | None = None
    recovery: Recovery | None = None
    guarantor: bool = False
    #: ``accrual``: interest = balance × rate × the period's accrual fraction (deal day count),
    #: so a stub period pays a stub of interest; ``periodic``: balance × rate / payments a year
    #: (loan-style). Principal schedules are the same either way.
    interest_basis: Literal["accrual", "periodic"] = "accrual"


class Tape(Model):
    """A pool tape file (CSV or Parquet), path relative to the deal file.

    Required columns: ``id, balance, rate, amortization, n_periods, annual_pd``. Optional:
    ``name, sector, region, first_period, recovery_rate, recovery_lag_periods, appraisal,
    patent_count``. ``amortization`` is one of bullet, level_pay, equal_principal.
    """

    path: str


class RatingClass(Model):
    """A named PD curve (cumulative PD by horizon in years)."""

    name: Name
    horizons_years: list[Annotated[float, Field(strict=True, gt=0)]] = Field(min_length=1)
    cumulative: list[PdValue] = Field(min_length=1)


class Pool(Model):
    """The receivables pool: inline ``obligors``, a ``tape`` file, or both (appended)."""

    obligors: list[Obligor] = Field(default_factory=list)
    tape: Tape | None = None
    recovery: Recovery = Field(default_factory=Recovery)
    pd_classes: list[RatingClass] = Field(default_factory=list)


__all__ = [
    "Amortization",
    "Bullet",
    "EqualPrincipal",
    "FlatPd",
    "IpCollateral",
    "LevelPay",
    "LicenseFeePayment",
    "LicenseFeeSchedule",
    "Num",
    "Obligor",
    "Pd",
    "PdTermStructure",
    "Pool",
    "RatingClass",
    "RatingClassPd",
    "Recovery",
    "Tape",
]
