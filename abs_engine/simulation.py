"""Monte Carlo simulation of a deal: prepares the model, runs the kernels batch by batch, and
adds their block sums in a fixed order. :mod:`abs_engine.metrics.montecarlo` reduces the sums;
:mod:`abs_engine.report.montecarlo` puts them into frames and defines
:class:`SimulationResult` (re-exported here)."""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
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
    short_repr,
)
from .kernels import layout as L
from .kernels.bundles import BlockSums, RunSpec
from .kernels.collateral import collateral_path, collateral_scratch
from .kernels.montecarlo import HIST_TRANCHE_METRICS, run_blocks, run_blocks_py
from .metrics.montecarlo import hist_ranges, mean_se
from .metrics.rating import RatingTable, default_rating_table
from .report.montecarlo import (
    MP_NAMES,
    SimulationResult,
    add_lgd_and_duration,
    cashflow_frame,
    distributions,
    metric_names,
    tranche_frame,
)
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

    hist_lo, hist_hi = hist_ranges(cd)
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

    mean, se = mean_se(m_tot[0], m_tot[1], m_tot[2])
    cf_n = np.full_like(cf_tot[0], float(n_paths))
    cf_mean, cf_se = mean_se(cf_tot[0], cf_tot[1], cf_n)
    tranches = tranche_frame(cd, mean, se, rating_table)
    dist = distributions(cd, h_tr, h_cov, hist_lo, hist_hi, path_out if keep_paths else None)
    tranches = tranches.assign(**dist["tranches"])
    pool = pd.DataFrame(
        [
            {"metric": name, "mean": mean[n_j * L.N_MT + k], "se": se[n_j * L.N_MT + k]}
            for name, k in MP_NAMES
        ]
    ).set_index("metric")
    cashflows = cashflow_frame(cd, cf_mean, cf_se, cf_tot)
    cashflows["coverage_ratio_p05"] = dist["coverage_p05"]
    tranches = add_lgd_and_duration(cd, tranches, cashflows, n_paths)
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
