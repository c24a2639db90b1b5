"""Reductions of Monte Carlo results: means with standard errors from block sums, quantiles
from histograms or kept paths, loss given default and modified duration.

Arrays and scalars in, arrays and scalars out; the names of the output columns belong to
:mod:`abs_engine.report.montecarlo`.

Axes: P paths, T payment periods, J tranches, M per-path metrics (``J·N_MT + N_MP``, laid out
in :mod:`abs_engine.kernels.layout`), H histogrammed tranche metrics
(:data:`~abs_engine.kernels.montecarlo.HIST_TRANCHE_METRICS`), B histogram bins.
"""

from __future__ import annotations

import math

import numpy as np

from ..compile.deal import CompiledDeal
from ..kernels import layout as L
from ..kernels.montecarlo import HIST_TRANCHE_METRICS

__all__ = [
    "importance_mean_se",
    "loss_like_cashflows",
    "loss_like_metrics",
    "OPEN_TOP",
    "hist_quantile",
    "hist_ranges",
    "hist_upper_edge",
    "loss_given_default",
    "mean_se",
    "modified_duration",
    "run_mean_se",
    "sample_quantile",
    "sampling_summary",
    "weighted_mean_se",
]


def mean_se(s: np.ndarray, sq: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the mean from sums.

    Parameters
    ----------
    s : float64[...]    sum of the values
    sq : float64[...]   sum of their squares
    n : float64[...]    number of values summed (same shape)

    Returns
    -------
    mean : float64[...]  ``s / n``; NaN where ``n = 0``
    se : float64[...]    ``sqrt(var / n)`` with the sample variance (``n - 1`` in the
        denominator, clipped at 0 against rounding); NaN where ``n < 2``
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s / np.maximum(n, 1), np.nan)
        var = np.where(n > 1, (sq - n * mean * mean) / np.maximum(n - 1, 1), np.nan)
        se = np.sqrt(np.maximum(var, 0.0) / np.maximum(n, 1))
    return mean, np.where(n > 1, se, np.nan)


def weighted_mean_se(
    s: np.ndarray, sq: np.ndarray, w2v: np.ndarray, w: np.ndarray, w2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The self-normalised importance-sampling mean Σw·v / Σw and its delta-method standard
    error sqrt(Σw²·(v − mean)²) / Σw, from the sums Σw·v (``s``), Σw²·v² (``sq``), Σw²·v
    (``w2v``), Σw (``w``) and Σw² (``w2``), all the same shape. Self-normalised rather than
    Σw·v / P: as exact for rare-event figures (expected loss, shortfall probability), and far
    better for figures every path contributes to (WAL, cash flows), whose unbiased estimate
    would carry the noise of the weights' own mean. NaN where Σw = 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(w > 0, s / w, np.nan)
        var = sq - 2.0 * mean * w2v + mean * mean * w2
        se = np.where(w > 0, np.sqrt(np.maximum(var, 0.0)) / w, np.nan)
    return mean, se


def loss_like_metrics(n_j: int) -> np.ndarray:
    """bool[M]: the per-path metrics of ``n_j`` tranches that are zero wherever nothing goes
    wrong (``layout.LOSS_LIKE_MT`` per tranche, then ``LOSS_LIKE_MP``)."""
    mask = np.zeros(n_j * L.N_MT + L.N_MP, dtype=bool)
    for j in range(n_j):
        mask[[j * L.N_MT + k for k in L.LOSS_LIKE_MT]] = True
    mask[[n_j * L.N_MT + k for k in L.LOSS_LIKE_MP]] = True
    return mask


def loss_like_cashflows(n_j: int) -> np.ndarray:
    """bool[N_CF]: the expected-cash-flow items of ``n_j`` tranches that are zero wherever
    nothing goes wrong (write-downs; the pool's defaults, recoveries, support, acceleration)."""
    mask = np.zeros(n_j * L.N_CFT + L.N_CFP, dtype=bool)
    for j in range(n_j):
        mask[[j * L.N_CFT + k for k in L.LOSS_LIKE_CFT]] = True
    mask[[n_j * L.N_CFT + k for k in L.LOSS_LIKE_CFP]] = True
    return mask


def importance_mean_se(
    s: np.ndarray,
    sq: np.ndarray,
    w2v: np.ndarray,
    w: np.ndarray,
    w2: np.ndarray,
    count: np.ndarray,
    n_paths: int,
    loss_like: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Importance-sampling means and standard errors from the sums over the paths that define
    each figure (Σw·v ``s``, Σw²·v² ``sq``, Σw²·v ``w2v``, Σw ``w``, Σw² ``w2``, the ``count``
    of such paths). A ``loss_like`` figure every path defines: the plain weighted mean Σw·v / P
    with the standard error of the mean of w·v (unbiased). Any other: the self-normalised
    mean (:func:`weighted_mean_se`). See ``layout.LOSS_LIKE_MT`` for why."""
    n = float(n_paths)
    plain_mean, plain_se = mean_se(s, sq, np.full_like(s, n))
    sn_mean, sn_se = weighted_mean_se(s, sq, w2v, w, w2)
    plain = loss_like & (count == n)
    return np.where(plain, plain_mean, sn_mean), np.where(plain, plain_se, sn_se)


def run_mean_se(m: np.ndarray, n_paths: int, weighted: bool) -> tuple[np.ndarray, np.ndarray]:
    """Means and standard errors of the per-path metrics from a run's sums.

    Parameters
    ----------
    m : float64[N_SUM, M]  the sums ``SUM_*`` of :mod:`abs_engine.kernels.layout` (Σw·v,
        Σw²·v², Σw, the count, Σw·v², Σw²·v and Σw² of each metric's finite values; w the
        path's likelihood-ratio weight; :class:`abs_engine.simulation.RunTotals`)
    n_paths : int
    weighted : bool    False: crude sampling (every w = 1)

    Returns
    -------
    mean, se : float64[M]
        Crude: the plain mean and its standard error (:func:`mean_se`). Importance sampling:
        :func:`importance_mean_se`.
    """
    if not weighted:
        return mean_se(m[L.SUM_WV], m[L.SUM_W2V2], m[L.SUM_W])
    n_j = (m.shape[1] - L.N_MP) // L.N_MT
    return importance_mean_se(m[L.SUM_WV], m[L.SUM_W2V2], m[L.SUM_W2V], m[L.SUM_W], m[L.SUM_W2],
                              m[L.SUM_N], n_paths,
                              loss_like_metrics(n_j))  # fmt: skip


def sampling_summary(
    m: np.ndarray, w: np.ndarray, n_paths: int, mean: np.ndarray, se: np.ndarray
) -> dict[str, object]:
    """What importance sampling did, from a run's sums (``m`` as in :func:`run_mean_se`,
    ``w`` float64[2] = Σw, Σw² over all paths): the effective sample size (Σw)² / Σw², the
    mean weight Σw / P with its standard error (1 within it when the weights are right) and,
    per metric, the in-run estimate of the variance reduction against crude sampling: the
    crude variance Σw·v² / P − mean² over the importance-sampled one, (se² · P)."""
    n = float(n_paths)
    s1, s2 = float(w[0]), float(w[1])
    w_mean = s1 / n
    w_se = math.sqrt(max(s2 / n - w_mean * w_mean, 0.0) / max(n - 1.0, 1.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        crude_var = m[L.SUM_WV2] / n - mean * mean
        is_var = se * se * n
        vr = np.where((is_var > 0) & (crude_var > 0), crude_var / is_var, np.nan)
    return {
        "effective_sample_size": s1 * s1 / s2 if s2 > 0 else float("nan"),
        "weight_mean": w_mean,
        "weight_mean_se": w_se,
        "variance_reduction": vr,
    }


def hist_ranges(cd: CompiledDeal) -> tuple[np.ndarray, np.ndarray]:
    """The ranges the kernels bin per-path values into.

    Returns
    -------
    lo, hi : float64[H + 1]  [lo, hi] of each tranche histogram, in the order of
        ``HIST_TRANCHE_METRICS`` (yield: decimal a year; WAL: years up to the last payment
        date; minimum coverage ratio; PV loss: share of balance), then of the per-period
        coverage ratio. Values outside fall into the end bins.
    """
    ranges = {
        L.MT_IRR: (-1.0, 0.5),
        L.MT_WAL: (0.0, float(cd.years[-1]) + 1e-9),
        L.MT_MIN_COVERAGE: (0.0, 5.0),
        L.MT_PV_LOSS: (0.0, 1.0),
    }
    lo = [ranges[int(k)][0] for k in HIST_TRANCHE_METRICS] + [0.0]
    hi = [ranges[int(k)][1] for k in HIST_TRANCHE_METRICS] + [5.0]
    return np.array(lo), np.array(hi)


#: per-tranche histogram metrics whose values can lie above the histogram's range (into its
#: last bin): a yield above 50%, a coverage ratio above 5 (and the per-period coverage ratio)
OPEN_TOP = frozenset({L.MT_IRR, L.MT_MIN_COVERAGE})


def hist_quantile(h: np.ndarray, q: float, lo: float, hi: float, open_top: bool = False) -> float:
    """Quantile from a histogram: the centre of the bin where the cumulative share reaches
    ``q`` (resolution ``(hi - lo) / B``).

    Parameters
    ----------
    h : int64[B]   path counts by bin on [lo, hi]
    q : float      in [0, 1]
    open_top : bool
        Values above ``hi`` were counted in the last bin (:data:`OPEN_TOP`): a quantile
        there is only known to be at least its lower edge, and is NaN (the bin's centre,
        0.4998 for a yield whose median was 1.39, was reported before).

    Returns
    -------
    float  in the histogram's units; NaN for an empty histogram or past an open top
    """
    n = h.sum()
    if n == 0:
        return float("nan")
    k = int(np.searchsorted(np.cumsum(h), q * n))
    k = min(k, len(h) - 1)
    if open_top and k == len(h) - 1:
        return float("nan")
    return lo + (k + 0.5) * (hi - lo) / len(h)


def hist_upper_edge(h: np.ndarray, q: float) -> float:
    """Quantile from a histogram on [0, 1]: the upper edge of the bin where the cumulative
    share reaches ``q`` (a conservative figure for a loss rate).

    Parameters
    ----------
    h : int64[B]   path counts by bin on [0, 1]
    q : float      in [0, 1]
    """
    c = np.cumsum(h) / h.sum()
    k = int(np.searchsorted(c, q))
    return (k + 1) / len(h)


def sample_quantile(values: np.ndarray, q: float) -> float:
    """Exact quantile (NumPy's linear interpolation) of per-path values, NaNs (paths where the
    metric is undefined) left out.

    Parameters
    ----------
    values : float64[P]
    q : float            in [0, 1]

    Returns
    -------
    float  NaN where no path defines the metric
    """
    values = values[~np.isnan(values)]
    return float(np.quantile(values, q)) if len(values) else float("nan")


def loss_given_default(
    el: np.ndarray,
    el_se: np.ndarray,
    p: np.ndarray,
    p_se: np.ndarray,
    n: int,
    cov: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Loss given default ``EL / P`` with a delta-method standard error.

    A PV loss only occurs on a path with a shortfall, so ``cov(L, D) = EL·(1 - P)``, and the
    covariance of the two means is that over ``n``.

    Parameters
    ----------
    el, el_se : float64[J]  expected PV loss (share of balance) and its standard error
    p, p_se : float64[J]    probability of any shortfall and its standard error
    n : int                 paths
    cov : float64[J] | None the covariance of the two means (default: crude sampling's
        EL·(1 − P) / n)

    Returns
    -------
    lgd, lgd_se : float64[J]  share of balance; NaN where ``p = 0``
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        lgd = np.where(p > 0, el / p, np.nan)
        if cov is None:
            cov = el * (1 - p) / n
        var = el_se**2 / p**2 + el**2 * p_se**2 / p**4 - 2 * el * cov / p**3
        lgd_se = np.where(p > 0, np.sqrt(np.maximum(var, 0.0)), np.nan)
    return lgd, lgd_se


def modified_duration(
    cash: np.ndarray, years: np.ndarray, accrual: np.ndarray, rate: float, periods_per_year: int
) -> float:
    """Modified duration of a cash-flow vector discounted at ``rate``, compounded each period
    at its accrual fraction.

    Parameters
    ----------
    cash : float64[T]     cash received per period (yuan)
    years : float64[T]    years from closing to each payment date
    accrual : float64[T]  accrual fractions (years)
    rate : float          annual rate, decimal
    periods_per_year : int

    Returns
    -------
    float  years: the Macaulay duration over ``1 + rate / periods_per_year``; NaN where the
        present value is not positive
    """
    df = 1.0 / np.cumprod(1.0 + rate * accrual)
    pv = cash * df
    if pv.sum() <= 0:
        return float("nan")
    macaulay = float((years * pv).sum() / pv.sum())
    return macaulay / (1.0 + rate / periods_per_year)
