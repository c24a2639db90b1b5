"""Monte Carlo results for people: the output vocabulary, the tranche, cash-flow and per-path
frames built from the reduced block sums, and :class:`SimulationResult` that holds them.

One vocabulary: the tables below name every Monte Carlo column, and a per-path column has the
name of the mean it averages to (``A.expected_loss`` on one path is that path's PV loss).
Column names follow the deterministic frames of :mod:`abs_engine.report.frames`
(``principal_paid``, ``interest_paid``, ``residual_paid``).

Axes: P paths, T payment periods, J tranches, M per-path metrics (``J·N_MT + N_MP``),
C expected cash-flow items (``J·N_CFT + N_CFP``), H histogrammed tranche metrics, B bins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..compile.deal import CompiledDeal
from ..compile.model import MonteCarloModel
from ..deterministic import WaterfallResult
from ..errors import check_real
from ..kernels import layout as L
from ..kernels.montecarlo import HIST_TRANCHE_METRICS
from ..metrics.montecarlo import (
    OPEN_TOP,
    hist_quantile,
    hist_upper_edge,
    loss_given_default,
    mean_se,
    modified_duration,
    sample_quantile,
    weighted_mean_se,
)
from ..metrics.rating import RatingTable, implied_ratings
from ..schema.stochastic import MonteCarloScenario
from ..schema.tranche import Tranche

__all__ = [
    "CFP_NAMES",
    "CFT_NAMES",
    "MP_NAMES",
    "MT_NAMES",
    "SimulationResult",
    "add_lgd_and_duration",
    "cashflow_frame",
    "distributions",
    "metric_names",
    "tranche_frame",
]

#: per-tranche metrics of one path (``A.<name>``) and of the tranche table, by layout index
MT_NAMES = (
    ("expected_loss", L.MT_PV_LOSS),  # PV loss at the coupon, share of balance
    ("principal_loss", L.MT_LOSS),  # share of balance
    ("default_probability", L.MT_DEFAULT),  # any interest or principal shortfall
    ("wal_years", L.MT_WAL),
    ("irr", L.MT_IRR),
    ("min_coverage_ratio", L.MT_MIN_COVERAGE),
    ("principal_paid", L.MT_PRINCIPAL),  # yuan
    ("interest_paid", L.MT_INTEREST),  # yuan
    ("support_received", L.MT_SUPPORT),  # yuan
    ("residual_paid", L.MT_RESIDUAL),  # yuan
)
#: pool metrics of one path (``pool.<name>``) and of the pool table, by layout index
MP_NAMES = (
    ("default_count", L.MP_DEFAULT_COUNT),
    ("default_rate", L.MP_DEFAULT_RATE),
    ("loss_rate", L.MP_LOSS_RATE),
    ("recovery_rate", L.MP_RECOVERY_RATE),
    ("prepayment_rate", L.MP_PREPAY_RATE),
    ("support_paid", L.MP_SUPPORT_PAID),
    ("provider_default_probability", L.MP_PROVIDER_DEFAULT),
    ("accelerated_probability", L.MP_ACCELERATED),
    ("min_coverage_ratio", L.MP_MIN_COVERAGE),
    ("compensation_received", L.MP_COMPENSATION),
    ("support_drawn_probability", L.MP_SUPPORT_DRAWN),
    ("cash_released", L.MP_CASH_RELEASED),
)
#: expected cash flows per period of each tranche (``A.<name>``, yuan), by layout index
CFT_NAMES = (
    ("interest_paid", L.CFT_INTEREST),
    ("principal_paid", L.CFT_PRINCIPAL),
    ("write_down", L.CFT_WRITE_DOWN),
    ("balance_end", L.CFT_BALANCE_END),
    ("residual_paid", L.CFT_RESIDUAL),
)
#: expected pool items per period (``pool.<name>``; yuan, or a probability), by layout index
CFP_NAMES = (
    ("interest", L.CFP_INTEREST),
    ("scheduled_principal", L.CFP_SCHED_PRIN),
    ("prepayment", L.CFP_PREPAY),
    ("defaults", L.CFP_DEFAULT),
    ("recoveries", L.CFP_RECOVERY),
    ("balance_end", L.CFP_POOL_END),
    ("support_paid", L.CFP_SUPPORT),
    ("compensation_received", L.CFP_COMPENSATION),
    ("accelerated_probability", L.CFP_ACCELERATED),
)
#: percentiles of the tranche table: per-path metric, column stem, quantiles (column
#: ``<stem>_p05`` for 0.05); the tranche's minimum coverage ratio is reported as coverage_ratio
TRANCHE_PERCENTILES = (
    (L.MT_IRR, "irr", (0.01, 0.05, 0.5)),
    (L.MT_WAL, "wal_years", (0.05, 0.95)),
    (L.MT_MIN_COVERAGE, "coverage_ratio", (0.05,)),
)
#: the percentile of the coverage ratio per period (cash-flow column ``coverage_ratio_p05``)
COVERAGE_PERCENTILE = 0.05


@dataclass(frozen=True, repr=False)
class SimulationResult:
    """Means, standard errors and distributions of one Monte Carlo run.

    Attributes
    ----------
    tranches : DataFrame   one row per tranche (J): balance, coupon, then each metric of
        :data:`MT_NAMES` (expected_loss: PV at the coupon, share of balance; default_probability:
        any interest or principal shortfall; amounts in yuan) with its ``_se``, implied_rating,
        percentiles (irr, wal_years, coverage_ratio), lgd with ``_se``, modified_duration (years).
    pool : DataFrame       pool metrics of :data:`MP_NAMES` (default count, default rate, loss
        rate, recovery rate, prepayment, provider default, acceleration, ...), mean and se.
    cashflows : DataFrame  expected cash flows per period (T rows; tranches and pool), mean and
        se, and the coverage ratio with its 5th percentile.
    paths : DataFrame | None   per-path metrics, P × M, columns :func:`metric_names`
        (``keep_paths=True`` only).
    default_count_hist : int64[H]   paths by number of defaulted obligors (bin k = k·N/(H-1));
        under importance sampling float64: the paths' likelihood-ratio weights.
    loss_rate_hist : int64[1000]    paths by pool loss rate on [0, 1] (float64 weights under
        importance sampling).
    seconds : float        the simulation's wall time.
    ledgers : dict[int, WaterfallResult]   full ledgers of the ``ledger_paths``.
    """

    deal: CompiledDeal
    model: MonteCarloModel
    n_paths: int
    seed: int
    tranches: pd.DataFrame
    pool: pd.DataFrame
    cashflows: pd.DataFrame
    paths: pd.DataFrame | None
    default_count_hist: np.ndarray
    loss_rate_hist: np.ndarray
    seconds: float
    rating_table: RatingTable
    ledgers: dict[int, WaterfallResult] = field(default_factory=dict)
    #: seconds spent compiling (or loading from the cache) the kernels on the first call in
    #: this process; not included in ``seconds``
    compile_seconds: float = 0.0
    #: how the paths were sampled: ``method`` ("crude" or "importance"),
    #: ``effective_sample_size``; under importance sampling also the shifts, the mean
    #: likelihood-ratio weight ± SE and per tranche the in-run variance reduction
    sampling: dict[str, Any] = field(default_factory=lambda: {"method": "crude"})
    #: a precision-targeted run's target, what it reached and its rounds
    #: (:func:`abs_engine.precision.run_to_precision`); None for a plain run
    precision: dict[str, Any] | None = None

    @property
    def scenario(self) -> MonteCarloScenario:
        return self.model.scenario

    def cashflows_long(self) -> pd.DataFrame:
        """The expected cash flows per tranche in long form: period, payment_date, tranche,
        item, value (mean, yuan) and se — beside the wide :attr:`cashflows`."""
        from .frames import cashflows_long

        return cashflows_long(self.cashflows, self.deal.tranche_names)

    def __repr__(self) -> str:
        from .notebook import mc_repr

        return mc_repr(self)

    def _repr_html_(self) -> str:
        from .notebook import mc_html

        return mc_html(self)

    def default_count_distribution(self) -> pd.Series:
        """Share of paths by number of defaulted obligors (exact counts for pools up to
        10,000 obligors)."""
        n = self.deal.n_obligors
        h = self.default_count_hist
        idx = np.round(np.arange(len(h)) * n / max(len(h) - 1, 1)).astype(int)
        return pd.Series(h / h.sum(), index=pd.Index(idx, name="defaults"), name="probability")

    def loss_rate_quantile(self, q: float) -> float:
        """Pool loss-rate quantile from the 1000-bin histogram (bin upper edge); ``q`` in
        [0, 1]."""
        q = check_real(q, "loss_rate_quantile", "q", 0.0, 1.0)
        return hist_upper_edge(self.loss_rate_hist, q)


def metric_names(tranche_names: Sequence[str]) -> list[str]:
    """Column names of the per-path metric vector (M): ``A.expected_loss``, ...,
    ``pool.default_count``. A per-path column has the name of the mean it averages to
    (``A.expected_loss`` on one path is that path's PV loss, share of balance)."""
    by_item = {v: k for k, v in MT_NAMES}
    names = []
    for t in tranche_names:
        names += [f"{t}.{by_item[i]}" for i in range(L.N_MT)]
    by_pool = {v: k for k, v in MP_NAMES}
    names += [f"pool.{by_pool[i]}" for i in range(L.N_MP)]
    return names


def _coupon_label(tr: Tranche) -> float | str | None:
    """A fixed coupon as a decimal, a floating one as its spread over the base rate."""
    c = tr.coupon
    if c.kind == "fixed":
        return c.rate
    return None if c.kind == "none" else f"base{c.spread:+.4%}"


def tranche_frame(
    cd: CompiledDeal, mean: np.ndarray, se: np.ndarray, table: RatingTable
) -> pd.DataFrame:
    """The tranche table: one row per tranche with each metric of :data:`MT_NAMES`, its
    standard error and the implied rating.

    Parameters
    ----------
    cd : CompiledDeal
    mean, se : float64[M]   means and standard errors of the per-path metrics
    table : RatingTable     for ``implied_rating``
    """
    rows = []
    for j, tr in enumerate(cd.deal.tranches):
        row: dict[str, Any] = {
            "tranche": tr.name,
            "balance": tr.balance,
            "coupon": _coupon_label(tr),
        }
        for name, k in MT_NAMES:
            row[name] = mean[j * L.N_MT + k]
            row[name + "_se"] = se[j * L.N_MT + k]
        rows.append(row)
    out = pd.DataFrame(rows)
    ratings = implied_ratings(
        table,
        out["expected_loss"].to_numpy(),
        out["default_probability"].to_numpy(),
        out["wal_years"].to_numpy(),
        longest_years=float(cd.years[-1]),  # the last payment date's: the notes' longest life
    )
    return out.assign(implied_rating=ratings)


def distributions(
    cd: CompiledDeal,
    h_tr: np.ndarray,
    h_cov: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    paths: np.ndarray | None,
) -> dict[str, Any]:
    """Percentiles per tranche (exact from kept paths, else from the histograms) and per
    period of the coverage ratio.

    Parameters
    ----------
    cd : CompiledDeal
    h_tr : int64[J, H, B]   per-tranche histograms of ``HIST_TRANCHE_METRICS``
    h_cov : int64[T, B]     histograms of the coverage ratio per period
    lo, hi : float64[H + 1]  histogram ranges (:func:`~abs_engine.metrics.montecarlo.hist_ranges`)
    paths : float64[P, M] | None   the kept per-path metrics

    Returns
    -------
    dict  ``"tranches"``: column name → J values (:data:`TRANCHE_PERCENTILES`);
        ``"coverage_p05"``: T values
    """
    slot = [int(k) for k in HIST_TRANCHE_METRICS]
    cols: dict[str, list[float]] = {}
    for item, stem, qs in TRANCHE_PERCENTILES:
        k = slot.index(item)
        for q in qs:
            cols[f"{stem}_p{round(q * 100):02d}"] = [
                hist_quantile(h_tr[j, k], q, lo[k], hi[k], item in OPEN_TOP)
                if paths is None
                else sample_quantile(paths[:, j * L.N_MT + item], q)
                for j in range(len(cd.tranche_names))
            ]
    cov = [
        hist_quantile(h_cov[t], COVERAGE_PERCENTILE, lo[-1], hi[-1], open_top=True)
        for t in range(cd.n_periods)
    ]
    return {"tranches": cols, "coverage_p05": cov}


def cashflow_frame(
    cd: CompiledDeal, mean: np.ndarray, se: np.ndarray, cf_tot: np.ndarray, weighted: bool = False
) -> pd.DataFrame:
    """Expected cash flows per period: each item of :data:`CFT_NAMES` per tranche and of
    :data:`CFP_NAMES` for the pool, with ``_se``, and the coverage ratio.

    Parameters
    ----------
    cd : CompiledDeal
    mean, se : float64[T, C]   means over all paths and their standard errors
    cf_tot : float64[N_CF_SUM, T, C]  Σw·v, Σw²·v² and Σw²·v over all paths (rows
        ``CF_*``; for the coverage ratio, averaged over the paths where it is defined)
    weighted : bool            importance sampling (w the likelihood-ratio weights)
    """
    out = pd.DataFrame(
        {
            "period": np.arange(1, cd.n_periods + 1),
            "payment_date": pd.to_datetime(list(cd.payment_dates)),
        }
    )
    n_j = len(cd.tranche_names)
    cols: dict[str, np.ndarray] = {}
    for j, name in enumerate(cd.tranche_names):
        for item, k in CFT_NAMES:
            cols[f"{name}.{item}"] = mean[:, j * L.N_CFT + k]
            cols[f"{name}.{item}_se"] = se[:, j * L.N_CFT + k]
    base = n_j * L.N_CFT
    for item, k in CFP_NAMES:
        cols[f"pool.{item}"] = mean[:, base + k]
        cols[f"pool.{item}_se"] = se[:, base + k]
    # the coverage ratio is averaged over the paths where it is defined (senior outstanding)
    cov, defined = base + L.CFP_COVERAGE, base + L.CFP_COVERAGE_DEFINED
    wv, w2v = cf_tot[L.CF_WV], cf_tot[L.CF_W2V]
    if weighted:  # the self-normalised mean over the paths where it is defined
        cols["coverage_ratio"], cols["coverage_ratio_se"] = weighted_mean_se(
            wv[:, cov], cf_tot[L.CF_W2V2][:, cov], w2v[:, cov], wv[:, defined], w2v[:, defined]
        )
    else:
        cols["coverage_ratio"], cols["coverage_ratio_se"] = mean_se(
            wv[:, cov], cf_tot[L.CF_W2V2][:, cov], wv[:, defined]
        )
    cols["coverage_ratio_defined_share"] = mean[:, base + L.CFP_COVERAGE_DEFINED]
    # one concat: inserting ~50 columns one by one costs pandas about 10 ms
    return pd.concat([out, pd.DataFrame(cols, index=out.index)], axis=1)


def add_lgd_and_duration(
    cd: CompiledDeal,
    tranches: pd.DataFrame,
    cashflows: pd.DataFrame,
    n: int,
    cov_el_p: np.ndarray | None = None,
) -> pd.DataFrame:
    """The tranche table with ``lgd``, ``lgd_se`` (share of balance) and
    ``modified_duration`` (years, of the expected interest and principal discounted at the
    tranche's fixed coupon; undiscounted for other coupons) added.

    Parameters
    ----------
    cd : CompiledDeal
    tranches : DataFrame   from :func:`tranche_frame`
    cashflows : DataFrame  from :func:`cashflow_frame`
    n : int                paths
    cov_el_p : float64[J] | None   the covariance of the EL and P(shortfall) estimates
        (importance sampling: from the weighted sums; None: crude sampling's EL·(1 − P)/n)
    """
    el, el_se = (tranches[c].to_numpy(float) for c in ("expected_loss", "expected_loss_se"))
    p, p_se = (
        tranches[c].to_numpy(float) for c in ("default_probability", "default_probability_se")
    )
    lgd, lgd_se = loss_given_default(el, el_se, p, p_se, n, cov_el_p)
    durations = []
    for j, t in enumerate(cd.tranche_names):
        c = cd.deal.tranches[j].coupon
        rate = c.rate if c.kind == "fixed" else 0.0
        cash = (
            cashflows[f"{t}.interest_paid"].to_numpy() + cashflows[f"{t}.principal_paid"].to_numpy()
        )
        durations.append(
            modified_duration(
                cash, cd.years, cd.structure.tranche_accrual[j], rate, cd.periods_per_year
            )
        )
    return tranches.assign(lgd=lgd, lgd_se=lgd_se, modified_duration=durations)
