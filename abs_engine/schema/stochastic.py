"""Monte Carlo scenarios: copula default model, prepayment, IP-collateral recovery, provider
risk. Rates are decimals; correlations are asset (latent-variable) correlations."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from .common import (
    Bool,
    LagPeriods,
    Model,
    OutputName,
    PosNum,
    Rate,
    SchemaVersion,
    Share,
    SourcedModel,
)

Correlation = Annotated[float, Field(strict=True, ge=0, lt=1, allow_inf_nan=False)]
#: an entry of a factor correlation matrix
FactorCorrelation = Annotated[float, Field(strict=True, ge=-1, le=1, allow_inf_nan=False)]
#: one CPR per period (the last repeats): at least one value
CprList = Annotated[list[Share], Field(min_length=1)]
#: the most paths one run may take (the command line's ``--paths`` has the same limit)
MAX_PATHS = 10_000_000_000
#: the largest seed (a signed 64-bit integer)
MAX_SEED = 2**63 - 1


class BaselCorrelation(Model):
    """Asset correlation from the Basel corporate formula on each obligor's one-year PD:
    R = 0.12·w + 0.24·(1 - w), w = (1 - e^(-50·PD)) / (1 - e^(-50)); with ``sme_sales_eur_m``
    the SME adjustment subtracts 0.04·(1 - (S - 5) / 45), S floored at 5 and capped at 50."""

    kind: Literal["basel"]
    sme_sales_eur_m: PosNum | None = None
    #: added to every obligor's correlation (a stress-grid shift), the sum clipped to
    #: [0, 0.999]
    add: Annotated[float, Field(strict=True, ge=-1, le=1)] = 0.0


class FixedCorrelation(Model):
    """The same asset correlation for every obligor, or one per sector (``by_sector``; sectors
    not listed use ``value``)."""

    kind: Literal["fixed"]
    value: Correlation
    by_sector: dict[str, Correlation] = Field(default_factory=dict)


AssetCorrelation = Annotated[BaselCorrelation | FixedCorrelation, Field(discriminator="kind")]


class DefaultModel(Model):
    """Latent-factor copula.

    X_i = sqrt(rho_i)·Z_f(i) + sqrt(1 - rho_i)·eps_i (Gaussian), divided by sqrt(W/nu),
    W ~ chi2(nu), for the Student-t copula. ``factors = "one"``: one systematic factor;
    ``"sector"``: one factor per sector, correlated pairwise by ``sector_correlation`` or by
    the full ``sector_matrix`` (rows and columns in ``sector_order``). Obligor i defaults in
    the first period t with X_i < F^-1(PD_i(t) · pd_multiplier).
    """

    copula: Literal["gaussian", "student_t"] = "gaussian"
    nu: Annotated[float, Field(strict=True, gt=2, le=1000)] = 6.0
    correlation: AssetCorrelation = Field(default_factory=lambda: BaselCorrelation(kind="basel"))
    factors: Literal["one", "sector"] = "one"
    sector_correlation: Annotated[float, Field(strict=True, ge=-1, le=1)] = 0.5
    sector_order: list[str] | None = None
    sector_matrix: list[list[FactorCorrelation]] | None = None
    pd_multiplier: Annotated[float, Field(strict=True, ge=0, le=50)] = 1.0

    @field_validator("sector_matrix")
    @classmethod
    def _square(cls, m: list[list[float]] | None) -> list[list[float]] | None:
        n = len(m or [])
        for i, row in enumerate(m or []):
            if len(row) != n:
                why = f"must be square: row {i} has {len(row)} entries, the matrix {n} rows"
                raise ValueError(why)
        return m

    @model_validator(mode="after")
    def _matrix(self) -> DefaultModel:
        if (self.sector_matrix is None) != (self.sector_order is None):
            raise ValueError("sector_matrix and sector_order go together")
        if self.sector_matrix is not None and self.factors != "sector":
            raise ValueError("sector_matrix needs factors = 'sector'")
        return self


class StochasticPrepayment(Model):
    """CPR (constant or per period, last value repeats) → period SMM; each path multiplies the
    hazard by a lognormal factor exp(volatility·n - volatility²/2), n ~ N(0, 1)."""

    cpr: Share | CprList = 0.0
    volatility: Annotated[float, Field(strict=True, ge=0, le=3)] = 0.0


class RateRecovery(Model):
    """A fixed recovery rate of the defaulted exposure after ``lag_periods`` (deterministic);
    without ``lag_periods``, each obligor's own lag (the deal's pool recovery, and a tape's
    per-obligor lags)."""

    kind: Literal["rate"]
    rate: Share
    lag_periods: LagPeriods | None = None


class IpValueRecovery(Model):
    """Recovery from the pledged IP.

    value = base IP value (relief-from-royalty or appraisal) ·
            exp(volatility·(loading·Z + sqrt(1 - loading²)·eta) - volatility²/2);
    recovery = min(exposure, value · (1 - haircut) · (1 - disposal_cost)), received after a
    disposal lag drawn uniformly from lag_periods..lag_max_periods (fixed when equal).
    A positive ``loading`` ties IP values to the obligor's systematic factor: IP is worth
    least when defaults cluster (wrong-way risk). Obligors without IP use ``fallback_rate``.
    """

    kind: Literal["ip_value"]
    haircut: Share = 0.5
    disposal_cost: Share = 0.1
    volatility: Annotated[float, Field(strict=True, ge=0, le=3)] = 0.5
    loading: Annotated[float, Field(strict=True, ge=0, le=1)] = 0.5
    lag_periods: LagPeriods = 4
    lag_max_periods: LagPeriods | None = None
    fallback_rate: Share = 0.2

    @model_validator(mode="after")
    def _lags(self) -> IpValueRecovery:
        if self.lag_max_periods is not None and self.lag_max_periods < self.lag_periods:
            raise ValueError(
                f"lag_max_periods {self.lag_max_periods} is below lag_periods {self.lag_periods}"
            )
        return self


RecoveryModel = Annotated[RateRecovery | IpValueRecovery, Field(discriminator="kind")]


class ProviderRisk(Model):
    """Support providers are extra latent variables in the same copula, with the PD and
    correlation given in the deal (``support[].provider``). ``correlated = false`` gives them
    an independent factor instead (for comparing wrong-way risk); ``pd_multiplier`` scales
    their PDs."""

    correlated: Bool = True
    pd_multiplier: Annotated[float, Field(strict=True, ge=0, le=50)] = 1.0
    #: true: every support provider is in default from the first period (no credit support)
    disabled: Bool = False


class MonteCarloScenario(SourcedModel):
    """A stochastic scenario file (``kind = "monte_carlo"``)."""

    schema_version: SchemaVersion = 1
    kind: Literal["monte_carlo"]
    name: OutputName
    description: str = ""
    n_paths: Annotated[int, Field(strict=True, ge=1, le=MAX_PATHS)] = 100_000
    seed: Annotated[int, Field(strict=True, ge=0, lt=MAX_SEED + 1)] = 20250715
    defaults: DefaultModel = Field(default_factory=DefaultModel)
    prepayment: StochasticPrepayment = Field(default_factory=StochasticPrepayment)
    #: None: the deal's own recovery assumptions (pool default and per-obligor overrides)
    recovery: RecoveryModel | None = None
    providers: ProviderRisk = Field(default_factory=ProviderRisk)
    base_rate: Rate | None = None
    rate_shock_bps: Annotated[float, Field(strict=True, ge=-1000, le=5000)] = 0.0


__all__ = [
    "AssetCorrelation",
    "BaselCorrelation",
    "DefaultModel",
    "FixedCorrelation",
    "IpValueRecovery",
    "MonteCarloScenario",
    "ProviderRisk",
    "RateRecovery",
    "RecoveryModel",
    "StochasticPrepayment",
]
