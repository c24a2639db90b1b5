"""Monte Carlo simulation of a deal: prepares the model, runs the kernels batch by batch, and
reduces block sums to means with standard errors."""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
import pandas as pd

from .compile.deal import CompiledDeal
from .compile.model import MonteCarloModel, compile_model
from .compile.scenario import PoolFlows
from .engine import WaterfallResult, run_waterfall
from .errors import (
    ArgumentTypeError,
    InputError,
    check_bool,
    check_int,
    check_optional_bool,
    check_real,
    short_repr,
)
from .kernels import layout as L
from .kernels.bundles import BlockSums, RunSpec
from .kernels.collateral import collateral_path, collateral_scratch
from .kernels.montecarlo import HIST_TRANCHE_METRICS, run_blocks, run_blocks_py
from .metrics.rating import RatingTable, default_rating_table
from .schema.stochastic import MAX_PATHS, MAX_SEED, MonteCarloScenario

__all__ = ["InputError", "SimulationResult", "simulate_compiled"]

#: paths per block: the unit of summation order (fixed, so results never depend on batching)
BLOCK_SIZE = 1024
HIST_LOSS_BINS = 1000
MAX_COUNT_BINS = 10_001
#: bins of the per-tranche and coverage histograms (percentiles without keeping paths)
HIST_BINS = 4000


# InputError (a bad argument to the API, not a file problem) lives in errors.py with the other
# error types; imported above and re-exported here for the callers that import it from here.


#: the most memory kept per-path results may take, whatever the machine has
KEEP_PATHS_MAX_BYTES = 16 * 2**30


def available_memory() -> int | None:
    """Bytes of memory available now (``MemAvailable`` of /proc/meminfo, else sysconf), or
    None where neither is known."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def kept_bytes_per_path(n_tranches: int) -> int:
    """Bytes of the per-path metrics ``keep_paths`` keeps for one path (float64 each)."""
    return 8 * (n_tranches * L.N_MT + L.N_MP)


def ledger_bytes(cd: CompiledDeal) -> int:
    """Bytes of one full waterfall ledger (``ledger_paths``) of ``cd`` (float64 each)."""
    per_period = (
        len(cd.tranche_names) * L.N_LT
        + len(cd.fee_names) * L.N_LF
        + len(cd.account_names) * L.N_LA
        + len(cd.support_names) * L.N_LS
        + L.N_LP
    )
    return 8 * cd.n_periods * per_period


def check_keep_paths_memory(n_paths: int, n_bytes_per_path: int, what: str = "keep_paths") -> None:
    """Refuse up front (:class:`InputError`, with the estimate) keeping per-path results that
    cannot fit: ``n_paths × n_bytes_per_path`` above half the available memory (the results
    are copied once more to be written) or above :data:`KEEP_PATHS_MAX_BYTES`."""
    need = int(n_paths) * int(n_bytes_per_path)
    avail = available_memory()
    limit = KEEP_PATHS_MAX_BYTES if avail is None else min(KEEP_PATHS_MAX_BYTES, avail // 2)
    if need > limit:
        gib = 2**30
        basis = "" if avail is None else f", half the {avail / gib:.1f} GiB available"
        raise InputError(
            f"{what}: keeping the per-path results of {n_paths:,} paths needs about "
            f"{need / gib:,.1f} GiB ({n_bytes_per_path:,} bytes a path), more than the "
            f"{limit / gib:,.1f} GiB allowed (at most {KEEP_PATHS_MAX_BYTES / gib:.0f} GiB"
            f"{basis}); use fewer paths"
        )


@contextmanager
def _threads(n: int | None):
    """numba's thread count set to ``n`` (checked by :func:`check_simulation_args`) for the
    block; None leaves it."""
    if n is None:
        yield
        return
    old = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(old)


def _mean_se(s: np.ndarray, sq: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s / np.maximum(n, 1), np.nan)
        var = np.where(n > 1, (sq - n * mean * mean) / np.maximum(n - 1, 1), np.nan)
        se = np.sqrt(np.maximum(var, 0.0) / np.maximum(n, 1))
    return mean, np.where(n > 1, se, np.nan)


@dataclass(frozen=True)
class SimulationResult:
    """Means, standard errors and distributions of one Monte Carlo run.

    Attributes
    ----------
    tranches : DataFrame   per tranche: expected_loss (PV at the coupon, share of balance),
        principal_loss, default_probability (any interest or principal shortfall), wal_years,
        irr, min_coverage_ratio, principal/interest/support received — each with ``_se``.
    pool : DataFrame       pool metrics (default count, default rate, loss rate, recovery rate,
        prepayment, provider default, acceleration), mean and se.
    cashflows : DataFrame  expected cash flows per period (tranches and pool), mean and se.
    paths : DataFrame | None   per-path metrics (``keep_paths=True`` only).
    default_count_hist : int64[H]   paths by number of defaulted obligors (bin k = k·N/(H-1)).
    loss_rate_hist : int64[1000]    paths by pool loss rate on [0, 1].
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

    @property
    def scenario(self) -> MonteCarloScenario:
        return self.model.scenario

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
        c = np.cumsum(self.loss_rate_hist) / self.loss_rate_hist.sum()
        k = int(np.searchsorted(c, q))
        return (k + 1) / len(self.loss_rate_hist)


_MT_NAMES = [
    ("expected_loss", L.MT_PV_LOSS),
    ("principal_loss", L.MT_LOSS),
    ("default_probability", L.MT_DEFAULT),
    ("wal_years", L.MT_WAL),
    ("irr", L.MT_IRR),
    ("min_coverage_ratio", L.MT_MIN_COVERAGE),
    ("principal_paid", L.MT_PRINCIPAL),
    ("interest_paid", L.MT_INTEREST),
    ("support_received", L.MT_SUPPORT),
    ("residual_paid", L.MT_RESIDUAL),
]
_MP_NAMES = [
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
]


def metric_names(tranche_names: Sequence[str]) -> list[str]:
    """Column names of the per-path metric vector: ``A.expected_loss``, ...,
    ``pool.default_count``. One vocabulary: a per-path column has the name of the mean it
    averages to (``A.expected_loss`` on one path is that path's PV loss, share of balance)."""
    by_item = {v: k for k, v in _MT_NAMES}
    names = []
    for t in tranche_names:
        names += [f"{t}.{by_item[i]}" for i in range(L.N_MT)]
    by_pool = {v: k for k, v in _MP_NAMES}
    names += [f"pool.{by_pool[i]}" for i in range(L.N_MP)]
    return names


def _progress(total: int, enabled: bool | None):
    if enabled is False:
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("simulating"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} paths"),
        TimeRemainingColumn(),
        transient=True,
        console=_stderr_console(),
    )


def _stderr_console():
    from rich.console import Console

    return Console(file=sys.stderr)


#: the most full ledgers one run keeps (each re-runs one path through the waterfall)
MAX_LEDGER_PATHS = 10_000


def check_simulation_args(
    func: str,
    *,
    n_paths: Any,
    seed: Any,
    keep_paths: Any,
    ledger_paths: Any,
    batch_blocks: Any,
    threads: Any,
    progress: Any,
    jit: Any,
) -> dict[str, Any]:
    """Types and ranges of the keyword arguments of :func:`abs_engine.simulate` (``func`` names
    the function in messages). Returns them normalised (Python ints and bools, ``ledger_paths``
    a list); raises :class:`~abs_engine.errors.ArgumentTypeError` for a wrong type and
    :class:`InputError` for a value out of range, naming the argument and the value."""
    out: dict[str, Any] = {
        "n_paths": None if n_paths is None else check_int(n_paths, func, "n_paths", 1, MAX_PATHS),
        "seed": None if seed is None else check_int(seed, func, "seed", 0, MAX_SEED),
        "keep_paths": check_bool(keep_paths, func, "keep_paths"),
        "progress": check_optional_bool(progress, func, "progress"),
        "jit": check_bool(jit, func, "jit"),
    }
    if (
        isinstance(ledger_paths, str | bytes | dict)
        or not hasattr(ledger_paths, "__iter__")
        or (isinstance(ledger_paths, np.ndarray) and ledger_paths.ndim != 1)
    ):
        raise ArgumentTypeError(
            f"{func}: ledger_paths must be a list of path indices (integers), got "
            f"{short_repr(ledger_paths)} ({type(ledger_paths).__name__})"
        )
    lp = list(itertools.islice(ledger_paths, MAX_LEDGER_PATHS + 1))  # an endless iterator too
    if len(lp) > MAX_LEDGER_PATHS:
        raise InputError(
            f"{func}: ledger_paths lists {len(lp):,} paths; at most {MAX_LEDGER_PATHS:,} "
            "(use keep_paths for per-path metrics of every path)"
        )
    out["ledger_paths"] = [
        check_int(p, func, f"ledger_paths[{k}]", 0, MAX_PATHS - 1) for k, p in enumerate(lp)
    ]
    if len(set(out["ledger_paths"])) != len(lp):
        raise InputError(f"{func}: ledger_paths names a path twice: {short_repr(lp)}")
    out["batch_blocks"] = (
        None if batch_blocks is None else check_int(batch_blocks, func, "batch_blocks", 1, 2**31)
    )
    limit = int(getattr(numba.config, "NUMBA_NUM_THREADS", 1))
    out["threads"] = None if threads is None else check_int(threads, func, "threads", 1, limit)
    return out


def simulate_compiled(
    cd: CompiledDeal,
    sc: MonteCarloScenario,
    *,
    n_paths: int | None = None,
    seed: int | None = None,
    keep_paths: bool = False,
    ledger_paths: Sequence[int] = (),
    batch_blocks: int | None = None,
    threads: int | None = None,
    progress: bool | None = None,
    jit: bool = True,
    rating_table: RatingTable | None = None,
) -> SimulationResult:
    """Run the Monte Carlo. See :func:`abs_engine.simulate` for the parameters."""
    func = "simulate_compiled"
    if not isinstance(cd, CompiledDeal):
        raise ArgumentTypeError(
            f"{func}: cd must be a CompiledDeal, got {short_repr(cd)} ({type(cd).__name__})"
        )
    if not isinstance(sc, MonteCarloScenario):
        raise ArgumentTypeError(
            f"{func}: sc must be a MonteCarloScenario, got {short_repr(sc)} ({type(sc).__name__})"
        )
    if rating_table is not None and not isinstance(rating_table, RatingTable):
        raise ArgumentTypeError(
            f"{func}: rating_table must be a RatingTable (load_rating_table), got "
            f"{short_repr(rating_table)} ({type(rating_table).__name__})"
        )
    args = check_simulation_args(
        func, n_paths=n_paths, seed=seed, keep_paths=keep_paths, ledger_paths=ledger_paths,
        batch_blocks=batch_blocks, threads=threads, progress=progress, jit=jit,
    )  # fmt: skip
    return _simulate_checked(cd, sc, args, rating_table, func)


def _block_sums(
    n_blocks: int, n_kept: int, n_m: int, n_t: int, n_cf: int, n_h1: int, n_j: int, n_ht: int
) -> BlockSums:
    """Zeroed Monte Carlo outputs for ``n_blocks`` blocks (shapes: :class:`BlockSums`)."""
    nb = n_blocks
    return BlockSums(
        m_sum=np.zeros((nb, n_m)),
        m_sq=np.zeros((nb, n_m)),
        m_cnt=np.zeros((nb, n_m)),
        cf_sum=np.zeros((nb, n_t, n_cf)),
        cf_sq=np.zeros((nb, n_t, n_cf)),
        hist_count=np.zeros((nb, n_h1), dtype=np.int64),
        hist_loss=np.zeros((nb, HIST_LOSS_BINS), dtype=np.int64),
        hist_tr=np.zeros((nb, n_j, n_ht, HIST_BINS), dtype=np.int64),
        hist_cov=np.zeros((nb, n_t, HIST_BINS), dtype=np.int64),
        path_metrics=np.zeros((n_kept, n_m)),
    )


def _simulate_checked(
    cd: CompiledDeal,
    sc: MonteCarloScenario,
    args: dict[str, Any],
    rating_table: RatingTable | None,
    func: str,
) -> SimulationResult:
    """:func:`simulate_compiled` with its keyword arguments already checked and normalised
    (``args``, from :func:`check_simulation_args`)."""
    keep_paths, ledger_paths, progress, jit = (
        args["keep_paths"], args["ledger_paths"], args["progress"], args["jit"]
    )  # fmt: skip
    batch_blocks, threads = args["batch_blocks"], args["threads"]
    rating_table = rating_table or default_rating_table()
    n_paths = sc.n_paths if args["n_paths"] is None else args["n_paths"]
    seed = sc.seed if args["seed"] is None else args["seed"]
    for k, p in enumerate(ledger_paths):
        if not 0 <= p < n_paths:
            raise InputError(
                f"{func}: ledger_paths[{k}] = {p} is outside the run's paths 0..{n_paths - 1:,}"
            )
    model = compile_model(cd, sc)  # validates the scenario against the deal (DealError)
    n_paths, seed = int(n_paths), int(seed)
    if keep_paths:
        # refused up front with the estimate, not by NumPy failing to allocate
        check_keep_paths_memory(n_paths, kept_bytes_per_path(len(cd.tranche_names)))
    if ledger_paths:
        check_keep_paths_memory(len(ledger_paths), ledger_bytes(cd), what="ledger_paths")

    n_t, n_j = cd.n_periods, len(cd.tranche_names)
    n_m = n_j * L.N_MT + L.N_MP
    n_cf = n_j * L.N_CFT + L.N_CFP
    n_h1 = min(cd.n_obligors, MAX_COUNT_BINS - 1) + 1
    n_blocks_total = -(-n_paths // BLOCK_SIZE)
    if batch_blocks is None:
        batch_blocks = max(8, 4 * numba.get_num_threads())
    fn: Callable[..., int] = run_blocks if jit else run_blocks_py

    hist_lo, hist_hi = _hist_ranges(cd)
    n_ht = len(HIST_TRANCHE_METRICS)
    h_tr = np.zeros((n_j, n_ht, HIST_BINS), dtype=np.int64)
    h_cov = np.zeros((n_t, HIST_BINS), dtype=np.int64)
    m_tot = np.zeros((3, n_m))
    cf_tot = np.zeros((2, n_t, n_cf))
    h1 = np.zeros(n_h1, dtype=np.int64)
    h2 = np.zeros(HIST_LOSS_BINS, dtype=np.int64)
    path_out = np.full((n_paths, n_m), np.nan) if keep_paths else np.zeros((0, n_m))
    model_k, deal_k = model.kernel, cd.kernel
    compile_seconds = 0.0
    if jit and not getattr(run_blocks, "signatures", True):  # no attribute: JIT disabled
        # first call in this process: compile (or load from the cache) on a one-path run
        # into scratch outputs, so ``seconds`` measures the simulation alone
        t0 = time.perf_counter()
        with np.errstate(over="ignore"):
            run_blocks(
                0, 1, RunSpec(BLOCK_SIZE, 1, seed, hist_lo, hist_hi, 0), model_k, deal_k,
                _block_sums(1, 0, n_m, n_t, n_cf, n_h1, n_j, n_ht),
            )  # fmt: skip
        compile_seconds = time.perf_counter() - t0
    spec = RunSpec(BLOCK_SIZE, n_paths, seed, hist_lo, hist_hi, int(keep_paths))
    t0 = time.perf_counter()
    bar = None
    task = None
    done = 0
    try:
        with _threads(threads):
            for first in range(0, n_blocks_total, batch_blocks):
                nb = min(batch_blocks, n_blocks_total - first)
                p_first = first * BLOCK_SIZE
                p_last = min((first + nb) * BLOCK_SIZE, n_paths)
                sums = _block_sums(nb, 0, n_m, n_t, n_cf, n_h1, n_j, n_ht)
                if keep_paths:
                    sums = sums._replace(path_metrics=path_out[p_first:p_last])
                with np.errstate(over="ignore"):  # uint64 wraparound is the RNG's arithmetic
                    fn(first, nb, spec, model_k, deal_k, sums)
                m_sum, m_sq, m_cnt = sums.m_sum, sums.m_sq, sums.m_cnt
                cf_sum, cf_sq = sums.cf_sum, sums.cf_sq
                hc, hl, htr, hcv = sums.hist_count, sums.hist_loss, sums.hist_tr, sums.hist_cov
                for b in range(nb):  # fixed order: bitwise reproducible totals
                    m_tot[0] += m_sum[b]
                    m_tot[1] += m_sq[b]
                    m_tot[2] += m_cnt[b]
                    cf_tot[0] += cf_sum[b]
                    cf_tot[1] += cf_sq[b]
                h1 += hc.sum(axis=0)
                h2 += hl.sum(axis=0)
                h_tr += htr.sum(axis=0)
                h_cov += hcv.sum(axis=0)
                done = p_last
                elapsed = time.perf_counter() - t0
                if (
                    bar is None
                    and progress is not False
                    and done < n_paths
                    and (progress or elapsed * n_paths / done > 1.0)
                ):
                    bar = _progress(n_paths, progress)
                    if bar is not None:
                        bar.start()
                        task = bar.add_task("sim", total=n_paths)
                if bar is not None and task is not None:
                    bar.update(task, completed=done)
    finally:
        if bar is not None:
            bar.stop()
    seconds = time.perf_counter() - t0

    mean, se = _mean_se(m_tot[0], m_tot[1], m_tot[2])
    cf_n = np.full_like(cf_tot[0], float(n_paths))
    cf_mean, cf_se = _mean_se(cf_tot[0], cf_tot[1], cf_n)
    tranches = _tranche_frame(cd, mean, se, rating_table)
    dist = _distributions(cd, h_tr, h_cov, hist_lo, hist_hi, path_out if keep_paths else None)
    tranches = tranches.assign(**dist["tranches"])
    pool = pd.DataFrame(
        [
            {"metric": name, "mean": mean[n_j * L.N_MT + k], "se": se[n_j * L.N_MT + k]}
            for name, k in _MP_NAMES
        ]
    ).set_index("metric")
    cashflows = _cashflow_frame(cd, cf_mean, cf_se, cf_tot)
    cashflows["coverage_ratio_p05"] = dist["coverage_p05"]
    tranches = _add_lgd_and_duration(cd, tranches, cashflows, n_paths)
    paths = pd.DataFrame(path_out, columns=metric_names(cd.tranche_names)) if keep_paths else None
    ledgers = {int(p): path_ledger(cd, model, seed, int(p)) for p in ledger_paths}
    return SimulationResult(
        cd,
        model,
        n_paths,
        seed,
        tranches,
        pool,
        cashflows,
        paths,
        h1,
        h2,
        seconds,
        rating_table,
        ledgers,
        compile_seconds,
    )


def _hist_ranges(cd: CompiledDeal) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi] of each histogram: yield, WAL, minimum coverage, PV loss, then coverage."""
    ranges = {
        L.MT_IRR: (-1.0, 0.5),
        L.MT_WAL: (0.0, float(cd.years[-1]) + 1e-9),
        L.MT_MIN_COVERAGE: (0.0, 5.0),
        L.MT_PV_LOSS: (0.0, 1.0),
    }
    lo = [ranges[int(k)][0] for k in HIST_TRANCHE_METRICS] + [0.0]
    hi = [ranges[int(k)][1] for k in HIST_TRANCHE_METRICS] + [5.0]
    return np.array(lo), np.array(hi)


def _hist_quantile(h: np.ndarray, q: float, lo: float, hi: float) -> float:
    """Quantile from a histogram: the centre of the bin where the cumulative share reaches q
    (resolution (hi - lo) / bins)."""
    n = h.sum()
    if n == 0:
        return float("nan")
    k = int(np.searchsorted(np.cumsum(h), q * n))
    k = min(k, len(h) - 1)
    return lo + (k + 0.5) * (hi - lo) / len(h)


def _distributions(
    cd: CompiledDeal,
    h_tr: np.ndarray,
    h_cov: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    paths: np.ndarray | None,
) -> dict[str, Any]:
    """Percentiles per tranche (exact from kept paths, else from the histograms) and the 5th
    percentile of the coverage ratio per period."""
    names = metric_names(cd.tranche_names)
    wanted = [("irr", L.MT_IRR, (0.01, 0.05, 0.5)), ("wal_years", L.MT_WAL, (0.05, 0.95)),
              ("min_coverage_ratio", L.MT_MIN_COVERAGE, (0.05,))]  # fmt: skip
    cols: dict[str, list[float]] = {}
    order = list(HIST_TRANCHE_METRICS)
    for j, t in enumerate(cd.tranche_names):
        for label, item, qs in wanted:
            q_index = order.index(item)
            for q in qs:
                key = f"{label}_p{round(q * 100):02d}"
                if paths is not None:
                    col = paths[:, names.index(f"{t}.{label}")]
                    col = col[~np.isnan(col)]
                    v = float(np.quantile(col, q)) if len(col) else float("nan")
                else:
                    v = _hist_quantile(h_tr[j, q_index], q, lo[q_index], hi[q_index])
                cols.setdefault(key, []).append(v)
    cols["coverage_ratio_p05"] = cols.pop("min_coverage_ratio_p05")
    cov = [_hist_quantile(h_cov[t], 0.05, lo[-1], hi[-1]) for t in range(cd.n_periods)]
    return {"tranches": cols, "coverage_p05": cov}


def _add_lgd_and_duration(
    cd: CompiledDeal, tranches: pd.DataFrame, cashflows: pd.DataFrame, n: int
) -> pd.DataFrame:
    """Loss given default = EL / P(shortfall), with a delta-method standard error (a PV loss
    only occurs on a path with a shortfall, so cov(L, D) = EL·(1 - P)); modified duration
    of the expected cash flows at the tranche's coupon, compounded each period."""
    el, el_se = (tranches[c].to_numpy(float) for c in ("expected_loss", "expected_loss_se"))
    p, p_se = (
        tranches[c].to_numpy(float) for c in ("default_probability", "default_probability_se")
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        lgd = np.where(p > 0, el / p, np.nan)
        cov = el * (1 - p) / n
        var = el_se**2 / p**2 + el**2 * p_se**2 / p**4 - 2 * el * cov / p**3
        lgd_se = np.where(p > 0, np.sqrt(np.maximum(var, 0.0)), np.nan)
    durations = []
    for j, t in enumerate(cd.tranche_names):
        c = cd.deal.tranches[j].coupon
        rate = c.rate if c.kind == "fixed" else 0.0
        cash = (
            cashflows[f"{t}.interest_paid"].to_numpy() + cashflows[f"{t}.principal_paid"].to_numpy()
        )
        df = 1.0 / np.cumprod(1.0 + rate * cd.deal_accrual)
        pv = cash * df
        if pv.sum() <= 0:
            durations.append(float("nan"))
            continue
        macaulay = float((cd.years * pv).sum() / pv.sum())
        durations.append(macaulay / (1.0 + rate / cd.periods_per_year))
    return tranches.assign(lgd=lgd, lgd_se=lgd_se, modified_duration=durations)


def _tranche_frame(
    cd: CompiledDeal, mean: np.ndarray, se: np.ndarray, table: RatingTable
) -> pd.DataFrame:
    rows = []
    for j, tr in enumerate(cd.deal.tranches):
        c = tr.coupon
        row: dict[str, Any] = {
            "tranche": tr.name,
            "balance": tr.balance,
            "coupon": c.rate
            if c.kind == "fixed"
            else (None if c.kind == "none" else f"base{c.spread:+.4%}"),
        }
        for name, k in _MT_NAMES:
            row[name] = mean[j * L.N_MT + k]
            row[name + "_se"] = se[j * L.N_MT + k]
        metric = row["expected_loss"] if table.basis == "el" else row["default_probability"]
        row["implied_rating"] = table.implied_rating(metric, row["wal_years"])
        rows.append(row)
    return pd.DataFrame(rows)


def _cashflow_frame(
    cd: CompiledDeal, mean: np.ndarray, se: np.ndarray, cf_tot: np.ndarray
) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "period": np.arange(1, cd.n_periods + 1),
            "payment_date": pd.to_datetime(list(cd.payment_dates)),
        }
    )
    n_j = len(cd.tranche_names)
    cft = {
        L.CFT_INTEREST: "interest_paid",
        L.CFT_PRINCIPAL: "principal_paid",
        L.CFT_WRITE_DOWN: "write_down",
        L.CFT_BALANCE_END: "balance_end",
        L.CFT_RESIDUAL: "residual_paid",
    }
    cfp = {
        L.CFP_INTEREST: "interest",
        L.CFP_SCHED_PRIN: "scheduled_principal",
        L.CFP_PREPAY: "prepayment",
        L.CFP_DEFAULT: "defaults",
        L.CFP_RECOVERY: "recoveries",
        L.CFP_POOL_END: "balance_end",
        L.CFP_SUPPORT: "support_paid",
        L.CFP_ACCELERATED: "accelerated_probability",
    }
    cols: dict[str, np.ndarray] = {}
    for j, name in enumerate(cd.tranche_names):
        for k, item in cft.items():
            cols[f"{name}.{item}"] = mean[:, j * L.N_CFT + k]
            cols[f"{name}.{item}_se"] = se[:, j * L.N_CFT + k]
    for k, item in cfp.items():
        cols[f"pool.{item}"] = mean[:, n_j * L.N_CFT + k]
        cols[f"pool.{item}_se"] = se[:, n_j * L.N_CFT + k]
    # the coverage ratio is averaged over the paths where it is defined (senior outstanding)
    base = n_j * L.N_CFT
    cols["coverage_ratio"], cols["coverage_ratio_se"] = _mean_se(
        cf_tot[0][:, base + L.CFP_COVERAGE],
        cf_tot[1][:, base + L.CFP_COVERAGE],
        cf_tot[0][:, base + L.CFP_COVERAGE_DEFINED],
    )
    cols["coverage_ratio_defined_share"] = mean[:, base + L.CFP_COVERAGE_DEFINED]
    # one concat: inserting ~50 columns one by one costs pandas about 10 ms
    return pd.concat([out, pd.DataFrame(cols, index=out.index)], axis=1)


def path_flows(
    cd: CompiledDeal, model: MonteCarloModel, seed: int, paths: Sequence[int]
) -> PoolFlows:
    """Pool flows and provider defaults of the given global paths (bitwise the same as inside
    the simulation), for full ledgers of a few paths."""
    n_t, n_s = cd.n_periods, len(cd.support_names)
    k = len(paths)
    flows = np.zeros((k, L.N_PF, n_t))
    sup = np.zeros((k, n_s), dtype=np.int64)
    scratch = collateral_scratch(cd.n_obligors, model.n_classes, model.chol.shape[0], n_t, n_s)
    for r, p in enumerate(paths):
        collateral_path(seed, p, model.kernel, scratch)
        flows[r] = scratch.flows
        sup[r] = scratch.support_default_period
    rates = np.tile(model.base_rate, (k, 1))
    return PoolFlows(flows, sup, rates, np.zeros(k), tuple(f"path {p}" for p in paths))


def path_ledger(cd: CompiledDeal, model: MonteCarloModel, seed: int, p: int) -> WaterfallResult:
    """The full waterfall ledger of global path ``p``."""
    return run_waterfall(cd, path_flows(cd, model, seed, [p]))
