"""Monte Carlo scenario + compiled deal → ``MonteCarloModel`` of arrays for the kernels.

Obligors sharing a PD curve, an asset correlation and a factor form one *class*; the kernel
evaluates each class's conditional default probability once per path (lazily), then draws
one uniform per obligor (conditional independence).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from scipy import special

from ..errors import ProblemCollector, check_instance
from ..kernels.bundles import CollateralModel, frozen
from ..kernels.layout import (
    COPULA_GAUSSIAN,
    COPULA_STUDENT_T,
    PD_BAND_MAX_DOUBLES,
    PD_BOUND_CELLS,
    PD_BOUND_DZ,
    PD_BOUND_MAX_CLASSES,
    PD_BOUND_Z_LO,
    RECOVERY_IP,
    RECOVERY_RATE,
)
from ..schema.load import revalidated
from ..schema.stochastic import BaselCorrelation, IpValueRecovery, MonteCarloScenario
from .deal import CompiledDeal
from .scenario import period_rate

__all__ = ["MonteCarloModel", "basel_correlation", "compile_model"]


def basel_correlation(pd_1y: np.ndarray, sme_sales_eur_m: float | None = None) -> np.ndarray:
    """Basel II corporate asset correlation for one-year PDs, with the optional SME
    adjustment -0.04·(1 - (S - 5)/45), S (EUR millions) clipped to [5, 50]."""
    pd_1y = np.asarray(pd_1y, dtype=float)
    w = (1.0 - np.exp(-50.0 * pd_1y)) / (1.0 - math.exp(-50.0))
    r = 0.12 * w + 0.24 * (1.0 - w)
    if sme_sales_eur_m is not None:
        s = min(max(sme_sales_eur_m, 5.0), 50.0)
        r = r - 0.04 * (1.0 - (s - 5.0) / 45.0)
    return r


@dataclass(frozen=True)
class MonteCarloModel:
    """Arrays for the collateral kernel (N obligors, C classes, F factors, S supports, T periods).

    Attributes
    ----------
    obligor_class : int64[N]
    class_threshold : float64[C, T]   copula threshold F^-1(cumulative PD) (-inf: PD 0)
    class_sqrt_rho, class_sqrt_1mrho : float64[C]
    class_factor : int64[C]           factor index of the class
    class_pd_bound : float64[CELLS + 2, C] (or [1, C]: none)
        An upper bound on each class's conditional PD by the last period over cells of its
        factor (:func:`pd_bounds`): an obligor whose uniform is above it survives without
        the PD being computed.
    class_pd_band : float64[CELLS + 2, C, T, 2] (or [1, 1, 1, 2]: none)
        A lower and an upper bound on each class's conditional PD by each period over the
        same cells (:func:`pd_bands`): whether a candidate defaults, and a defaulter's
        period, are found comparing its uniform with them, computing a PD only where it
        falls between.
    chol : float64[F, F]              Cholesky factor of the factor correlation matrix
    copula : int                      COPULA_GAUSSIAN or COPULA_STUDENT_T
    nu : float                        Student-t degrees of freedom
    provider_threshold : float64[S, T]   (-inf: provider cannot default)
    provider_sqrt_rho : float64[S]
    provider_factor : int64[S]        factor index, -1 for an independent factor
    smm : float64[T]                  base single-period prepayment rate
    prepay_vol : float                lognormal volatility of the path multiplier
    recovery_kind : int               RECOVERY_RATE or RECOVERY_IP
    recovery_rate : float64[N]        fixed rate (or fallback for obligors without IP)
    ip_value : float64[N]             base IP value (yuan; NaN: none)
    obligor_factor : int64[N]
    haircut, disposal_cost, ip_vol, ip_loading : float
    lag_min, lag_max : int64[N]       disposal lag range (periods)
    sched_interest, sched_principal, sched_balance : float64[N, T]
    obligor_sched : int64[N], sched : float64[K, T, N_SC]
        The same schedules as the kernel reads them: a table of their distinct rows
        (:attr:`abs_engine.compile.pool.CompiledPool.schedule_table`, built once per pool).
    agg_interest, agg_principal, agg_balance : float64[T]   pool totals of the above
    base_rate : float64[T]
    memo : bool
        The no-default path (no obligor or provider default) has the same pool flows on every
        path — prepayment is deterministic — so the Monte Carlo driver computes it once per
        block of paths and counts it. False computes every path (same results, slower).
    is_factor_shift : float64[F], is_provider_shift : float64[S], is_mix_scale : float
        Importance sampling: the means of the factors' independent normals and of each
        provider's own normal, and the scale of the Student-t mixing variable, under the
        sampling (zeros and 1: crude). Set by :func:`abs_engine.compile.sampling.with_sampling`.
    is_twist_weight : float64[N], is_twist_level : float
        Exponential twisting of the obligors' conditional default probabilities: each
        obligor's share of a loss and the loss level the twist aims at (0: no twisting).
    sampling : str                    "crude" or "importance"
    sampling_target : str | None      the tranche the importance-sampling shifts aim at
    kernel : CollateralModel
        The arrays above as the collateral kernel's bundle (read-only).
    """

    scenario: MonteCarloScenario
    obligor_class: np.ndarray
    class_threshold: np.ndarray
    class_sqrt_rho: np.ndarray
    class_sqrt_1mrho: np.ndarray
    class_factor: np.ndarray
    class_pd_bound: np.ndarray
    class_pd_band: np.ndarray
    chol: np.ndarray
    copula: int
    nu: float
    provider_threshold: np.ndarray
    provider_sqrt_rho: np.ndarray
    provider_factor: np.ndarray
    smm: np.ndarray
    prepay_vol: float
    recovery_kind: int
    recovery_rate: np.ndarray
    ip_value: np.ndarray
    obligor_factor: np.ndarray
    haircut: float
    disposal_cost: float
    ip_vol: float
    ip_loading: float
    lag_min: np.ndarray
    lag_max: np.ndarray
    sched_interest: np.ndarray
    sched_principal: np.ndarray
    sched_balance: np.ndarray
    obligor_sched: np.ndarray
    sched: np.ndarray
    agg_interest: np.ndarray
    agg_principal: np.ndarray
    agg_balance: np.ndarray
    base_rate: np.ndarray
    asset_correlation: np.ndarray  # float64[N], for reporting
    factor_names: tuple[str, ...]
    memo: bool
    is_factor_shift: np.ndarray
    is_provider_shift: np.ndarray
    is_mix_scale: float = 1.0
    is_twist_weight: np.ndarray | None = None
    is_twist_level: float = 0.0
    is_cmc_provider: int = 0
    sampling: str = "crude"
    sampling_target: str | None = None

    @cached_property
    def kernel(self) -> CollateralModel:
        """The collateral kernel's argument bundle (built once; read-only arrays)."""
        fields = {n: getattr(self, n) for n in CollateralModel._fields}
        return frozen(CollateralModel(**fields))

    @property
    def n_classes(self) -> int:
        return int(self.class_threshold.shape[0])


def _edge_pds(threshold: np.ndarray, rho: np.ndarray, shift: float) -> np.ndarray:
    """float64[CELLS + 1, ...threshold's shape]: the conditional PD
    Phi((threshold - sqrt(rho)·z) / sqrt(1 - rho)), computed as the kernel's ``cond_pd``
    (-inf: 0, +inf: 1), at each cell end z of ``kernels.layout.PD_BOUND_*`` moved by
    ``shift``; ``threshold`` [C] or [C, T], ``rho`` [C]."""
    z = PD_BOUND_Z_LO + PD_BOUND_DZ * np.arange(PD_BOUND_CELLS + 1) + shift
    z = z.reshape((-1,) + (1,) * threshold.ndim)
    sqrt_rho = np.sqrt(rho).reshape((-1,) + (1,) * (threshold.ndim - 1))
    sqrt_1mrho = np.sqrt(1.0 - rho).reshape(sqrt_rho.shape)
    with np.errstate(invalid="ignore", divide="ignore"):  # infinite thresholds; rho = 1
        arg = (threshold[None] - sqrt_rho[None] * z) / sqrt_1mrho[None]
    pd = 0.5 * special.erfc(-arg * (1.0 / math.sqrt(2.0)))
    pd[:, threshold == -np.inf] = 0.0
    pd[:, threshold == np.inf] = 1.0
    return pd


def _edge_bounds(threshold: np.ndarray, rho: np.ndarray, side: float) -> np.ndarray:
    """float64[CELLS + 1, ...threshold's shape]: a bound on the conditional PD at each cell
    end of ``kernels.layout.PD_BOUND_*``, with the margins :func:`pd_bounds` explains: the
    upper (``side`` -1) the PD 1e-9 left of the end, 1e-9 higher (relative) and 1e-300
    (absolute); the lower (``side`` +1) the PD 1e-9 right of it, as much lower."""
    return _edge_pds(threshold, rho, side * 1e-9) * (1.0 - side * 1e-9) - side * 1e-300


def _has_bounds(n_classes: int, copula: int) -> bool:
    """Whether a model of ``n_classes`` classes under ``copula`` gets PD bounds (and may
    get bands): the Gaussian copula, 1 to ``PD_BOUND_MAX_CLASSES`` classes."""
    return copula == COPULA_GAUSSIAN and 0 < n_classes <= PD_BOUND_MAX_CLASSES


def pd_bounds(threshold: np.ndarray, rho: np.ndarray, copula: int) -> np.ndarray:
    """float64[PD_BOUND_CELLS + 2, C]: an upper bound on each class's conditional PD by the
    last period, Phi((threshold - sqrt(rho)·z) / sqrt(1 - rho)), for its factor z in each
    cell of ``kernels.layout.PD_BOUND_*``; row 0 (a factor below the grid) is 2, above every
    uniform. One row of 2s, which the kernel reads as no bounds, under the Student-t copula
    (whose PD also moves with the mixing variable) and for more than
    ``PD_BOUND_MAX_CLASSES`` classes.

    The PD falls as z rises, so its value at a cell's left end bounds it over the cell. It
    is taken at 1e-9 left of the end (the kernel's (z - Z_LO) / DZ rounds, and can put a z
    up to about 4e-16 below an end into the cell above it; with a correlation near 1 the PD
    moves by a relative 1e-9 over much less than 1e-9 of z) and 1e-9 higher (relative) and
    1e-300 (absolute), far above the rounding of the kernel's own computation of the same
    PD. The kernel compares an obligor's uniform with the bound first and computes the PD
    (an erfc per class and path) only below it: with cells of 0.25, for about 1.2-1.4 times
    as many obligors as default. The decisions, and so the results, are those of computing
    every PD."""
    n_c = threshold.shape[0]
    if not _has_bounds(n_c, copula):
        return np.full((1, n_c), 2.0)
    out = np.full((PD_BOUND_CELLS + 2, n_c), 2.0)
    out[1:] = np.minimum(_edge_bounds(threshold, rho, -1.0), 2.0)
    out[1:, threshold == np.inf] = 2.0
    return out


#: the one-row table of a model without PD bands: (-1, 2) decides nothing (read-only)
NO_PD_BANDS = np.array([[[[-1.0, 2.0]]]])
NO_PD_BANDS.flags.writeable = False


def pd_bands(threshold: np.ndarray, rho: np.ndarray, copula: int) -> np.ndarray:
    """float64[PD_BOUND_CELLS + 2, C, T, 2]: a lower and an upper bound on each class's
    conditional PD by each period over the cells of :func:`pd_bounds` (``threshold``
    [C, T]): the PD at a cell's right end, 1e-9 to the right, 1e-9 lower (relative) and
    1e-300 lower (absolute), and at its left end as :func:`pd_bounds` takes it (for a
    threshold of +inf, PD 1: 1 + 1e-9 + 1e-300 where :func:`pd_bounds` has 2; neither
    decides anything). Row 0 (a factor below the grid: the kernel's row for NaN too) and the
    lower bound of the last row (a factor above the grid) are -1 and 2: no decision. A NaN
    bound (0/0 at a correlation of exactly 1, which the schema refuses) decides nothing
    either. :data:`NO_PD_BANDS` where :func:`pd_bounds` has none or the table would hold more
    than ``PD_BAND_MAX_DOUBLES`` doubles; the kernel reads the bands only with the bounds.

    The kernel compares a candidate's uniform with the lower bound by the last period (under
    it: a default, without the PD by the last period), and a defaulter's with the bounds of
    each period its binary search probes, and computes a PD (an erfc) only between them: the
    same decisions as computing every PD, so the same period, bit for bit."""
    n_c, n_t = threshold.shape
    n_doubles = (PD_BOUND_CELLS + 2) * n_c * n_t * 2
    if not _has_bounds(n_c, copula) or n_t == 0 or n_doubles > PD_BAND_MAX_DOUBLES:
        return NO_PD_BANDS
    out = np.empty((PD_BOUND_CELLS + 2, n_c, n_t, 2))
    out[...] = NO_PD_BANDS[0, 0, 0]
    out[1:, :, :, 1] = np.minimum(_edge_bounds(threshold, rho, -1.0), 2.0)
    out[1:-1, :, :, 0] = _edge_bounds(threshold, rho, 1.0)[1:]
    return out


def _threshold(cum_pd: np.ndarray, copula: int, nu: float) -> np.ndarray:
    # scipy.special, not scipy.stats (the same functions: norm.ppf is ndtri, t.ppf stdtrit),
    # whose import costs about a second on every command
    p = np.clip(cum_pd, 0.0, 1.0)
    with np.errstate(divide="ignore"):
        if copula == COPULA_STUDENT_T:
            out = special.stdtrit(nu, p)
        else:
            out = special.ndtri(p)
    out[p <= 0.0] = -np.inf
    out[p >= 1.0] = np.inf
    return out


def _pd_1y(cd: CompiledDeal) -> np.ndarray:
    """One-year PD per obligor for the Basel formula: its own cumulative curve at exactly one
    year (:attr:`CompiledPool.pd_1y`; interpolated between payment dates and clipped at the
    last, a validator's six-month deal took the PD to legal final, 2.02% for 4%).
    float64[N]."""
    return cd.pool.pd_1y


def _asset_correlation(
    cd: CompiledDeal, sc: MonteCarloScenario, pc: ProblemCollector
) -> np.ndarray:
    """Asset correlation per obligor (float64[N]): Basel SME on the one-year PD, or by sector
    with a default value (unknown sectors reported to ``pc``)."""
    pool = cd.pool
    corr = sc.defaults.correlation
    if isinstance(corr, BaselCorrelation):
        rho = basel_correlation(np.clip(_pd_1y(cd), 0.0, 1.0), corr.sme_sales_eur_m)
        return np.clip(rho + corr.add, 0.0, 0.999) if corr.add else rho
    for sec in corr.by_sector:
        if sec not in pool.sectors:
            pc.add(
                f"defaults.correlation.by_sector.{sec}",
                f"unknown sector; sectors are {list(pool.sectors)}",
                sec,
            )
    sectors = [pool.sectors[s] for s in pool.sector]
    return np.array([corr.by_sector.get(s, corr.value) for s in sectors], dtype=float)


def _sector_matrix(sc: MonteCarloScenario, f: int, pc: ProblemCollector) -> np.ndarray:
    """The f × f factor correlation matrix of a sector-factor model, checked (symmetric, unit
    diagonal, positive semi-definite; problems reported to ``pc``)."""
    dm = sc.defaults
    if dm.sector_matrix is not None:
        cmat = np.asarray(dm.sector_matrix, dtype=float)
        if cmat.shape != (f, f):
            pc.add(
                "defaults.sector_matrix",
                f"must be {f}x{f} (one row and column per sector_order entry)",
                list(cmat.shape),
            )
            cmat = np.eye(f)
    else:
        cmat = np.full((f, f), dm.sector_correlation)
        np.fill_diagonal(cmat, 1.0)
    asymmetric = ~np.isclose(cmat, cmat.T, atol=1e-12)
    if asymmetric.any():
        i, j = np.argwhere(asymmetric)[0]
        pc.add(
            f"defaults.sector_matrix[{i}][{j}]",
            f"factor correlation matrix is not symmetric: [{j}][{i}] is {cmat[j, i]:g}",
            float(cmat[i, j]),
        )
    if not np.allclose(np.diag(cmat), 1.0, atol=1e-12):
        pc.add(
            "defaults.sector_matrix",
            "factor correlation matrix needs ones on the diagonal",
            np.diag(cmat).tolist(),
        )
    eig = np.linalg.eigvalsh((cmat + cmat.T) / 2)
    if eig.min() < -1e-10:
        what = (
            "defaults.sector_matrix"
            if dm.sector_matrix is not None
            else ("defaults.sector_correlation")
        )
        message = (
            f"factor correlation matrix is not positive semi-definite (smallest eigenvalue "
            f"{eig.min():.4g})"
        )
        if dm.sector_matrix is None:
            pc.add(what, message, dm.sector_correlation)
        else:
            pc.add(what, message)
    return cmat


def _factors(
    cd: CompiledDeal, sc: MonteCarloScenario, pc: ProblemCollector
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Factor names, each obligor's factor (int64[N]) and the factor correlation matrix: one
    market factor, or one factor per sector in ``sector_order``."""
    pool = cd.pool
    n = cd.n_obligors
    dm = sc.defaults
    if dm.factors == "one":
        return ("market",), np.zeros(n, dtype=np.int64), np.ones((1, 1))
    order = dm.sector_order or list(pool.sectors)
    twice = sorted({s for s in order if order.count(s) > 1})
    if twice:
        pc.add("defaults.sector_order", f"sectors listed more than once: {twice}", order)
    missing = [s for s in pool.sectors if s not in order]
    if missing:
        pc.add("defaults.sector_order", f"sectors missing from sector_order: {missing}", order)
    index = {s: k for k, s in enumerate(order)}
    sectors = [pool.sectors[s] for s in pool.sector]
    obligor_factor = np.array([index.get(s, 0) for s in sectors], dtype=np.int64)
    return tuple(order), obligor_factor, _sector_matrix(sc, len(order), pc)


def _classes(
    cum_pd: np.ndarray, rho: np.ndarray, obligor_factor: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Obligors with the same PD curve, correlation and factor form a class. Returns each
    obligor's class (int64[N], numbered in order of first appearance) and each class's first
    obligor (int64[C])."""
    if not len(cum_pd):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    table = np.concatenate([cum_pd, rho[:, None], obligor_factor[:, None].astype(float)], axis=1)
    # each row's bytes as a dict key, classes numbered in order of first appearance (stable,
    # readable); + 0.0 makes -0.0 the +0.0 it equals; a row with a NaN (not from a validated
    # deal) is keyed by its index: a class of its own, as np.unique(axis=0) makes it. A dict of
    # 100,000 rows took 20 ms where np.unique, sorting rows as structured records, took 260 ms
    rows = table + 0.0  # a new C-contiguous array
    keys: list[Any] = rows.view(np.dtype((np.void, rows.itemsize * rows.shape[1]))).ravel().tolist()
    for i in np.flatnonzero(np.isnan(rows).any(axis=1)).tolist():
        keys[i] = i
    index: dict[Any, int] = {}
    obligor_class = np.array([index.setdefault(k, len(index)) for k in keys], dtype=np.int64)
    # a class's first obligor is where the running highest class number grows
    new = np.ones(len(keys), dtype=bool)
    new[1:] = obligor_class[1:] > np.maximum.accumulate(obligor_class)[:-1]
    return obligor_class, np.flatnonzero(new).astype(np.int64)


def _providers(
    cd: CompiledDeal,
    sc: MonteCarloScenario,
    copula: int,
    factor_names: tuple[str, ...],
    pc: ProblemCollector,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Support providers as latent variables in the same copula: thresholds float64[S, T]
    (-inf: cannot default; +inf: in default from the start), sqrt(correlation) float64[S]
    and factor int64[S] (-1: independent)."""
    pool = cd.pool
    n_s, n_t = len(cd.support_names), cd.n_periods
    dm = sc.defaults
    sector_balance = np.bincount(pool.sector, weights=pool.balance, minlength=len(pool.sectors))
    largest_sector = pool.sectors[int(np.argmax(sector_balance))] if cd.n_obligors else ""
    prov_thr = np.full((n_s, n_t), -np.inf)
    prov_sqrt_rho = np.zeros(n_s)
    prov_factor = np.full(n_s, -1, dtype=np.int64)
    for s, sup in enumerate(cd.deal.support):
        if sc.providers.disabled:
            prov_thr[s] = np.inf  # in default from the first period
            prov_factor[s] = -1
            continue
        pd_annual = min(1.0, sup.provider.annual_pd * sc.providers.pd_multiplier)
        if pd_annual <= 0.0:
            continue
        cum = 1.0 - (1.0 - pd_annual) ** cd.years if pd_annual < 1.0 else np.ones(n_t)
        prov_thr[s] = _threshold(cum, copula, dm.nu)
        prov_sqrt_rho[s] = math.sqrt(sup.provider.correlation)
        if not sc.providers.correlated:
            prov_factor[s] = -1
        elif dm.factors == "one":
            prov_factor[s] = 0
        else:
            sector = sup.provider.sector or largest_sector
            if sector not in factor_names:
                pc.add_at(
                    cd.source,
                    f"support[{s}].provider.sector",
                    f"unknown sector; sectors are {list(factor_names)}",
                    sector,
                )
                continue
            prov_factor[s] = factor_names.index(sector)
    return prov_thr, prov_sqrt_rho, prov_factor


def _recovery(cd: CompiledDeal, sc: MonteCarloScenario) -> dict[str, Any]:
    """The recovery model's kernel fields: kind, rate per obligor (fixed, or the fallback for
    obligors without IP), disposal lag range per obligor, and the IP-value parameters."""
    n = cd.n_obligors
    rec = sc.recovery
    if isinstance(rec, IpValueRecovery):
        lag_max = rec.lag_max_periods if rec.lag_max_periods is not None else rec.lag_periods
        return dict(
            recovery_kind=RECOVERY_IP,
            recovery_rate=np.full(n, rec.fallback_rate),
            lag_min=np.full(n, rec.lag_periods, dtype=np.int64),
            lag_max=np.full(n, lag_max, dtype=np.int64),
            haircut=float(rec.haircut),
            disposal_cost=float(rec.disposal_cost),
            ip_vol=float(rec.volatility),
            ip_loading=float(rec.loading),
        )
    if rec is not None:
        rate = np.full(n, rec.rate)
        if rec.lag_periods is None:  # each obligor's own lag
            lag = cd.pool.recovery_lag.copy()
        else:
            lag = np.full(n, rec.lag_periods, dtype=np.int64)
    else:  # the deal's own assumptions
        rate, lag = cd.pool.recovery_rate.copy(), cd.pool.recovery_lag.copy()
    return dict(recovery_kind=RECOVERY_RATE, recovery_rate=rate, lag_min=lag,
                lag_max=lag.copy(), haircut=0.0, disposal_cost=0.0, ip_vol=0.0,
                ip_loading=0.0)  # fmt: skip


def compile_model(cd: CompiledDeal, sc: MonteCarloScenario) -> MonteCarloModel:
    """Validate the scenario against the deal and build the kernel arrays. Raises
    ``DealError`` (naming the scenario file) for a factor matrix that is not positive
    semi-definite, unknown sectors, and the like — before any kernel is compiled. A scenario
    changed with ``model_copy(update=...)`` is validated again."""
    check_instance(cd, CompiledDeal, "compile_model", "cd", " (from compile_deal)")
    check_instance(sc, MonteCarloScenario, "compile_model", "sc")
    sc = revalidated(sc)
    pc = ProblemCollector(sc.source)
    pool = cd.pool
    n, n_t = cd.n_obligors, cd.n_periods
    dm = sc.defaults
    copula = COPULA_STUDENT_T if dm.copula == "student_t" else COPULA_GAUSSIAN
    cum_pd = np.clip(pool.cum_pd * dm.pd_multiplier, 0.0, 1.0)
    rho = _asset_correlation(cd, sc, pc)
    factor_names, obligor_factor, cmat = _factors(cd, sc, pc)
    pc.raise_if_any()
    # Cholesky of a PSD matrix: a tiny ridge handles exactly singular (e.g. all-ones) matrices.
    f = cmat.shape[0]
    chol = np.linalg.cholesky((cmat + cmat.T) / 2 + 1e-12 * np.eye(f))
    obligor_class, rows_arr = _classes(cum_pd, rho, obligor_factor)
    class_threshold = _threshold(cum_pd[rows_arr], copula, dm.nu) if n else np.zeros((0, n_t))
    class_rho = rho[rows_arr] if n else np.zeros(0)
    prov_thr, prov_sqrt_rho, prov_factor = _providers(cd, sc, copula, factor_names, pc)
    smm = period_rate(sc.prepayment.cpr, n_t, cd.periods_per_year)
    if isinstance(sc.prepayment.cpr, list) and len(sc.prepayment.cpr) > n_t:
        pc.add(
            "prepayment.cpr",
            f"has {len(sc.prepayment.cpr)} values but the deal has {n_t} periods",
            len(sc.prepayment.cpr),
        )
    pc.raise_if_any()
    base = cd.deal.base_rate if sc.base_rate is None else sc.base_rate
    c = np.ascontiguousarray
    return MonteCarloModel(
        scenario=sc,
        obligor_class=obligor_class,
        class_threshold=c(class_threshold),
        class_sqrt_rho=np.sqrt(class_rho),
        class_sqrt_1mrho=np.sqrt(1.0 - class_rho),
        class_factor=c(obligor_factor[rows_arr] if n else np.zeros(0, dtype=np.int64)),
        class_pd_bound=pd_bounds(class_threshold[:, -1], class_rho, copula),
        class_pd_band=pd_bands(class_threshold, class_rho, copula),
        chol=c(chol),
        copula=copula,
        nu=float(dm.nu),
        provider_threshold=prov_thr,
        provider_sqrt_rho=prov_sqrt_rho,
        provider_factor=prov_factor,
        smm=smm,
        prepay_vol=float(sc.prepayment.volatility),
        **_recovery(cd, sc),
        ip_value=c(pool.ip_value),
        obligor_factor=obligor_factor,
        sched_interest=c(pool.sched_interest),
        sched_principal=c(pool.sched_principal),
        sched_balance=c(pool.sched_balance_start),
        obligor_sched=pool.schedule_table[0],
        sched=pool.schedule_table[1],
        agg_interest=pool.sched_interest.sum(axis=0),
        agg_principal=pool.sched_principal.sum(axis=0),
        agg_balance=pool.sched_balance_start.sum(axis=0),
        base_rate=np.full(n_t, base + sc.rate_shock_bps / 1e4),
        asset_correlation=rho,
        factor_names=factor_names,
        memo=float(sc.prepayment.volatility) == 0.0,
        is_factor_shift=np.zeros(chol.shape[0]),
        is_provider_shift=np.zeros(prov_thr.shape[0]),
        is_twist_weight=np.zeros(n),
    )
