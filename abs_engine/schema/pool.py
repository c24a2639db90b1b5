"""The collateral pool: obligors, their license-fee or loan schedules, PDs, IP collateral."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import PurePath
from typing import Annotated, Any, Literal, overload

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, PrivateAttr, model_validator

from .common import (
    MAX_AMOUNT,
    Bool,
    Date,
    FieldError,
    LagPeriods,
    Model,
    Money,
    Name,
    NonNegRate,
    Num,
    PosInt,
    PosNum,
    Share,
)

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
    the payment period whose accrual interval contains it (previous payment date, payment
    date], on the business-day-adjusted dates, the final period up to legal final too);
    principal must sum to the balance."""

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
    horizons_years: list[PosNum] = Field(min_length=1)
    cumulative: list[PdValue] = Field(min_length=1)

    @model_validator(mode="after")
    def _shape(self) -> PdTermStructure:
        _check_curve(self.horizons_years, self.cumulative)
        return self


def _check_curve(horizons: list[float], cumulative: list[float]) -> None:
    """Knots of a cumulative PD curve: as many PDs as horizons, horizons increasing, PDs not
    decreasing."""
    if len(horizons) != len(cumulative):
        raise FieldError(
            ("cumulative",),
            f"horizons_years has {len(horizons)} entries but cumulative has "
            f"{len(cumulative)}; they must match",
        )
    for k in range(1, len(horizons)):
        if horizons[k] <= horizons[k - 1]:
            msg = f"horizons_years must increase; entry {k} does not"
            raise FieldError(("horizons_years", k), msg)
        if cumulative[k] < cumulative[k - 1]:
            msg = f"cumulative PD must not decrease; entry {k} does"
            raise FieldError(("cumulative", k), msg)


class RatingClassPd(Model):
    """PD taken from a named rating class in the deal's ``pd_classes`` table."""

    kind: Literal["rating_class"]
    rating_class: Name


Pd = Annotated[FlatPd | PdTermStructure | RatingClassPd, Field(discriminator="kind")]

# --- IP collateral and recovery ----------------------------------------------------------------

#: the most patents one obligor pledges: the largest integer a float64 holds exactly (the bound
#: of a tape's ``patent_count`` column too)
MAX_PATENTS = 2**53


class IpCollateral(Model):
    """Pledged intellectual property.

    The base value is ``appraisal`` when given, otherwise a relief-from-royalty DCF:
    sum_{y=1..life} revenue·(1+g)^(y-1)·royalty_rate·(1-tax_rate) / (1+discount_rate)^y.
    Amounts in yuan, rates as decimals.
    """

    patent_count: Annotated[int, Field(strict=True, ge=0, le=MAX_PATENTS)] = 0
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
    lag_periods: LagPeriods = 4


# --- obligors and pool ---------------------------------------------------------------------------


class Obligor(Model):
    """One obligor (a licensee SME or borrower) and its receivable."""

    id: Name
    name: str = ""
    sector: str = "unspecified"
    region: str = ""
    balance: Annotated[float, Field(strict=True, gt=0, le=MAX_AMOUNT, allow_inf_nan=False)]
    rate: NonNegRate
    amortization: Amortization
    pd: Pd
    collateral: IpCollateral | None = None
    recovery: Recovery | None = None
    guarantor: Bool = False
    #: ``accrual``: interest = balance × rate × the period's accrual fraction (deal day count),
    #: so a stub period pays a stub of interest; ``periodic``: balance × rate / payments a year
    #: (loan-style). Principal schedules are the same either way.
    interest_basis: Literal["accrual", "periodic"] = "accrual"

    @model_validator(mode="after")
    def _id_trimmed(self) -> Obligor:
        if self.id != self.id.rstrip():
            raise FieldError(("id",), TRAILING_SPACE)
        return self


#: why an obligor id may not end with whitespace (a tape's "T0 " and "T0" were two obligors)
TRAILING_SPACE = "an id may not end with whitespace ('T0 ' and 'T0' would be two obligors)"


#: the file suffixes of the tape kinds the reader takes (``schema.tape``), lower case
TAPE_SUFFIXES = (".csv", ".parquet", ".pq", ".xlsx")


class Tape(Model):
    """A pool tape file (CSV, Excel .xlsx or Parquet), path relative to the deal file.

    Required columns: ``id, balance, rate, amortization, n_periods, annual_pd``. Optional:
    ``name, sector, region, first_period, recovery_rate, recovery_lag_periods, appraisal,
    patent_count``. ``amortization`` is one of bullet, level_pay, equal_principal.
    The rows are read as columns into ``Pool.table`` and checked as :class:`Obligor` would
    check them (see ``abs_engine.schema.tape``).

    ``encoding`` of a CSV tape: ``auto`` (UTF-8 with or without a byte-order mark, else
    GB18030, the superset of GBK that Chinese Excel writes), or one of them named. Numbers
    may carry thousands separators (``1,500,000.00``). ``sheet`` of a workbook (default: the
    first), its first row the header.
    """

    path: str
    encoding: Literal["auto", "utf-8", "gb18030", "gbk"] = "auto"
    sheet: str | None = None

    @model_validator(mode="after")
    def _options_of_its_kind(self) -> Tape:
        # an option the tape's kind has no use for was ignored without a word (a validator:
        # ``sheet`` on a CSV tape)
        suffix = PurePath(self.path).suffix.lower()
        if suffix not in TAPE_SUFFIXES:
            return self  # not a tape kind at all: the reader says so, naming the kinds
        if self.sheet is not None and suffix != ".xlsx":
            raise FieldError(("sheet",), f"a sheet is for a workbook (.xlsx) tape, not a "
                             f"{suffix} one")  # fmt: skip
        if self.encoding != "auto" and suffix != ".csv":
            raise FieldError(("encoding",), f"an encoding is for a CSV tape, not a {suffix} "
                             "one")  # fmt: skip
        return self


class RatingClass(Model):
    """A named PD curve (cumulative PD by horizon in years)."""

    name: Name
    horizons_years: list[PosNum] = Field(min_length=1)
    cumulative: list[PdValue] = Field(min_length=1)

    @model_validator(mode="after")
    def _shape(self) -> RatingClass:
        _check_curve(self.horizons_years, self.cumulative)
        return self


class Pool(Model):
    """The receivables pool: inline ``obligors``, a ``tape`` file, or both (appended: the
    inline obligors first, then the tape's rows).

    ``obligors`` holds the inline obligors only; the rows of a tape are read into columns
    (:attr:`table`, an :class:`ObligorTable`), not into one model per row, so that a tape of a
    million rows loads in seconds. :attr:`n_obligors` counts both."""

    obligors: list[Obligor] = Field(default_factory=list)
    tape: Tape | None = None
    recovery: Recovery = Field(default_factory=Recovery)
    pd_classes: list[RatingClass] = Field(default_factory=list)

    #: the tape's rows, set by the loader (``schema.load.parse_deal``)
    _table: ObligorTable | None = PrivateAttr(default=None)

    @property
    def table(self) -> ObligorTable | None:
        """The obligors read from ``tape`` (None without a tape)."""
        return self._table

    @property
    def n_obligors(self) -> int:
        """Inline obligors plus tape rows."""
        return len(self.obligors) + (0 if self._table is None else len(self._table))


# --- tape rows as columns -------------------------------------------------------------------

#: ``ObligorTable.kind`` codes, in this order
TAPE_KINDS = ("bullet", "level_pay", "equal_principal")
KIND_BULLET, KIND_LEVEL_PAY, KIND_EQUAL_PRINCIPAL = range(3)


class Labels(Sequence[str]):
    """An immutable sequence of strings held in one Arrow array (no Python object per item):
    obligor ids and names of a tape. Compares equal to any sequence of the same strings."""

    __slots__ = ("_arr",)

    def __init__(self, values: Iterable[str] | pa.Array | pa.ChunkedArray):
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
        if not isinstance(values, pa.Array):
            values = pa.array(list(values), type=pa.string())
        self._arr: pa.Array = values

    @property
    def arrow(self) -> pa.Array:
        return self._arr

    def __len__(self) -> int:
        return len(self._arr)

    @overload
    def __getitem__(self, k: int) -> str: ...
    @overload
    def __getitem__(self, k: slice) -> Labels: ...
    def __getitem__(self, k: int | slice) -> str | Labels:
        if isinstance(k, slice):
            start, stop, step = k.indices(len(self))
            if step == 1:
                return Labels(self._arr.slice(start, max(0, stop - start)))
            return Labels(self._arr.take(pa.array(range(start, stop, step), type=pa.int64())))
        n = len(self)
        if not -n <= k < n:
            raise IndexError("Labels index out of range")
        return str(self._arr[k if k >= 0 else k + n].as_py())

    def __iter__(self) -> Iterator[str]:
        for chunk in range(0, len(self), 65_536):
            yield from self._arr.slice(chunk, 65_536).to_pylist()

    def __contains__(self, value: object) -> bool:
        return isinstance(value, str) and self.index_or_none(value) is not None

    def index_or_none(self, value: str) -> int | None:
        k = pc.index(self._arr, pa.scalar(value, type=self._arr.type)).as_py()
        return None if k is None or k < 0 else int(k)

    def index(self, value: Any, start: int = 0, stop: int | None = None) -> int:
        if isinstance(value, str) and start == 0 and stop is None:
            k = self.index_or_none(value)
            if k is not None:
                return k
            raise ValueError(f"{value!r} is not in the labels")
        return super().index(value, start, *(() if stop is None else (stop,)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Labels):
            return len(self) == len(other) and self._arr.equals(other._arr.cast(self._arr.type))
        if isinstance(other, Sequence) and not isinstance(other, str):
            if len(other) != len(self) or not all(isinstance(v, str) for v in other):
                return False
            return self._arr.equals(pa.array(list(other), type=self._arr.type))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))  # as the tuple it equals

    def __repr__(self) -> str:
        head = ", ".join(repr(v) for v in self[:5])
        return f"Labels([{head}{', ...' if len(self) > 5 else ''}], n={len(self)})"


@dataclass(frozen=True, eq=False)
class ObligorTable:
    """The rows of a pool tape, one array per column: row ``k`` is data row ``k + 1`` of
    ``file``. Every value has been checked as the :class:`Obligor` schema would (see
    ``schema.load.read_tape``); the rows stand for obligors with a flat PD, a bullet,
    level-pay or equal-principal schedule and interest on the deal's accrual basis.

    Attributes
    ----------
    file : str                   the tape file
    ids, names, regions : Labels (N)   ``""`` where a tape has no name or region
    sector_code : int64[N]       index into ``sectors`` (first appearance order)
    sectors : tuple[str, ...]    ``"unspecified"`` for rows without a sector
    balance, rate, annual_pd : float64[N]
    kind : int8[N]               :data:`TAPE_KINDS` code
    n_periods, first_period : int64[N]
    recovery_rate : float64[N]   NaN: the pool's default recovery (no recovery columns)
    recovery_lag : int64[N]      -1: the pool's default recovery
    appraisal : float64[N]       NaN: no appraisal (a relief-from-royalty value, or no IP)
    patent_count : int64[N]
    revenue, royalty_rate, revenue_growth, tax_rate, discount_rate : float64[N]
        relief-from-royalty inputs (yuan a year, decimals) where the IP is valued so; NaN
        elsewhere
    useful_life_years : int64[N]  0 where not valued by relief from royalty
    """

    file: str
    ids: Labels
    names: Labels
    regions: Labels
    sector_code: np.ndarray
    sectors: tuple[str, ...]
    balance: np.ndarray
    rate: np.ndarray
    kind: np.ndarray
    n_periods: np.ndarray
    first_period: np.ndarray
    annual_pd: np.ndarray
    recovery_rate: np.ndarray
    recovery_lag: np.ndarray
    appraisal: np.ndarray
    patent_count: np.ndarray
    revenue: np.ndarray
    royalty_rate: np.ndarray
    revenue_growth: np.ndarray
    tax_rate: np.ndarray
    discount_rate: np.ndarray
    useful_life_years: np.ndarray

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                v.setflags(write=False)

    def __len__(self) -> int:
        return len(self.balance)

    def row_label(self, k: int) -> str:
        """``row r (id=...)``: how problems name row k (0-based) of the tape."""
        return f"row {k + 1} (id={self.ids[k]})"

    def obligor(self, k: int) -> Obligor:
        """Row k as an :class:`Obligor` model (for inspection; the engine works on columns)."""
        doc: dict[str, Any] = {
            "id": self.ids[k],
            "name": self.names[k],
            "sector": self.sectors[int(self.sector_code[k])],
            "region": self.regions[k],
            "balance": float(self.balance[k]),
            "rate": float(self.rate[k]),
            "amortization": {
                "kind": TAPE_KINDS[int(self.kind[k])],
                "n_periods": int(self.n_periods[k]),
                "first_period": int(self.first_period[k]),
            },
            "pd": {"kind": "flat", "annual": float(self.annual_pd[k])},
        }
        if self.recovery_lag[k] >= 0:
            doc["recovery"] = {
                "rate": float(self.recovery_rate[k]),
                "lag_periods": int(self.recovery_lag[k]),
            }
        if not np.isnan(self.appraisal[k]):
            doc["collateral"] = {
                "appraisal": float(self.appraisal[k]),
                "patent_count": int(self.patent_count[k]),
            }
        elif self.useful_life_years[k] > 0:
            doc["collateral"] = {
                **{f: float(getattr(self, f)[k]) for f in _RFR_FLOATS},
                "useful_life_years": int(self.useful_life_years[k]),
                "patent_count": int(self.patent_count[k]),
            }
        return Obligor.model_validate(doc)

    def ip_values(self) -> np.ndarray:
        """Base value of each row's IP (yuan), float64[N]: the appraisal, or the
        relief-from-royalty value (computed as for an inline obligor), NaN where none."""
        from ..compile.valuation import relief_from_royalty

        out = np.array(self.appraisal, dtype=np.float64)
        for k in np.flatnonzero(self.useful_life_years > 0):
            out[k] = relief_from_royalty(
                float(self.revenue[k]), float(self.royalty_rate[k]), float(self.tax_rate[k]),
                float(self.discount_rate[k]), int(self.useful_life_years[k]),
                float(self.revenue_growth[k]),
            )  # fmt: skip
        return out


#: the relief-from-royalty inputs of a tape row stored as floats
_RFR_FLOATS = ("revenue", "royalty_rate", "revenue_growth", "tax_rate", "discount_rate")


__all__ = [
    "Amortization",
    "Bullet",
    "EqualPrincipal",
    "KIND_BULLET",
    "KIND_EQUAL_PRINCIPAL",
    "KIND_LEVEL_PAY",
    "Labels",
    "ObligorTable",
    "TAPE_KINDS",
    "TAPE_SUFFIXES",
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
