"""Monte Carlo simulation of a deal: prepares the model, runs the kernels batch by batch, and
adds their block sums in a fixed order. :mod:`abs_engine.metrics.montecarlo` reduces the sums;
:mod:`abs_engine.report.montecarlo` puts them into frames and defines
:class:`SimulationResult` (re-exported here)."""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numba
import numpy as np
import pandas as pd

from .compile.deal import CompiledDeal
from .compile.model import MonteCarloModel, compile_model
from .compile.sampling import (
    SAMPLING_METHODS,
    ImportanceSampling,
    with_sampling,
)
from .compile.scenario import PoolFlows
from .deterministic import WaterfallResult, run_waterfall
from .errors import (
    ArgumentTypeError,
    InputError,
    check_bool,
    check_instance,
    check_int,
    check_optional_bool,
    short_repr,
)
from .kernel_compile import compile_callees
from .kernels import layout as L
from .kernels.bundles import BLOCK_SUMS_HISTOGRAMS, BlockSums, RunSpec, frozen
from .kernels.collateral import collateral_path, collateral_scratch, unit_weights_py
from .kernels.montecarlo import (
    BLOCK_CALLEES,
    HIST_TRANCHE_METRICS,
    block_callee_args,
    block_scratch,
    run_block,
    run_block_cmc,
    run_block_cmc_py,
    run_block_py,
)
from .kernels.specialise import failed, is_specialised, mark_failed, specialised_kernel
from .metrics.montecarlo import (
    hist_ranges,
    importance_mean_se,
    loss_like_cashflows,
    mean_se,
    run_mean_se,
    sampling_summary,
)
from .metrics.rating import RatingTable, default_rating_table
from .metrics.sampling import degeneracy_warnings, effective_paths, impossible_shares
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


def kernel_threads(n: int | None) -> int:
    """Threads a kernel call uses: ``n`` (checked by :func:`check_simulation_args`), or by
    default NUMBA_NUM_THREADS (all cores unless the environment says otherwise)."""
    return int(n) if n is not None else int(getattr(numba.config, "NUMBA_NUM_THREADS", 1))


#: thread pools of the kernel calls, by size, started when first needed
_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()
#: the name of the kernel threads in the operating system (``top -H``, ``/proc/PID/task``)
KERNEL_THREAD_NAME = "abs-kernel"


def _name_kernel_thread() -> None:
    """Give this thread its operating-system name (Linux; elsewhere nothing happens)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, KERNEL_THREAD_NAME.encode(), 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError, TypeError):
        pass


def _pool(n: int) -> ThreadPoolExecutor:
    """The pool of ``n`` kernel threads (started once, kept for the process's later runs)."""
    with _POOLS_LOCK:
        if n not in _POOLS:
            _POOLS[n] = ThreadPoolExecutor(
                n, thread_name_prefix=KERNEL_THREAD_NAME, initializer=_name_kernel_thread
            )
        return _POOLS[n]


def _progress(
    total: int,
    enabled: bool | None,
    what: str = "simulating",
    unit: str = "paths",
    auto_refresh: bool = True,
):
    if enabled is False:
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(what),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} " + unit),
        TimeRemainingColumn(),
        transient=True,
        console=_stderr_console(),
        auto_refresh=auto_refresh,
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
    sampling: Any = "crude",
    sampling_target: Any = None,
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
    out.update(_check_sampling(func, sampling, sampling_target, out["keep_paths"]))
    if out["ledger_paths"] and out["sampling"] != "crude":
        raise InputError(
            f"{func}: ledger_paths is for crude sampling (an importance-sampled path is drawn "
            "under the shifts and carries a weight a ledger cannot show)"
        )
    return out


def _check_sampling(func: str, sampling: Any, target: Any, keep_paths: bool) -> dict[str, Any]:
    """``sampling``: "crude", "importance" (shifts chosen for ``sampling_target``, a tranche
    name, default the most senior rated tranche) or an :class:`ImportanceSampling`."""
    if not isinstance(sampling, str | ImportanceSampling):
        raise ArgumentTypeError(
            f"{func}: sampling must be one of {list(SAMPLING_METHODS)} or an "
            f"ImportanceSampling, got {short_repr(sampling)} ({type(sampling).__name__})"
        )
    if isinstance(sampling, str) and sampling not in SAMPLING_METHODS:
        raise InputError(
            f"{func}: sampling must be one of {list(SAMPLING_METHODS)}, got {short_repr(sampling)}"
        )
    if target is not None and not isinstance(target, str):
        raise ArgumentTypeError(
            f"{func}: sampling_target must be a tranche name, got {short_repr(target)} "
            f"({type(target).__name__})"
        )
    if keep_paths and sampling != "crude":
        raise InputError(
            f"{func}: keep_paths is for crude sampling (kept paths carry no likelihood-ratio "
            "weights); importance sampling gives every mean, quantile and histogram weighted"
        )
    return {"sampling": sampling, "sampling_target": target}


def simulate_compiled(cd: CompiledDeal, sc: MonteCarloScenario, **kwargs: Any) -> SimulationResult:
    """Run the Monte Carlo: :func:`start_simulation_compiled` (same keywords), collected. See
    :func:`abs_engine.simulate` for the parameters."""
    return start_simulation_compiled(cd, sc, **kwargs).result()


def start_simulation_compiled(
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
    runner: Runner | None = None,
    sampling: str | ImportanceSampling = "crude",
    sampling_target: str | None = None,
) -> PendingSimulation:
    """A Monte Carlo run submitted, not yet collected: call ``.result()``. See
    :func:`abs_engine.simulate` for the parameters; ``runner`` computes the path blocks
    (default: this process, when collected; :class:`abs_engine.distributed.DaskRunner`
    spreads them over a Dask cluster, with bitwise-identical results, and runs started one
    after another compute at the same time)."""
    func = "simulate_compiled"
    check_instance(cd, CompiledDeal, func, "cd")
    check_instance(sc, MonteCarloScenario, func, "sc")
    if rating_table is not None and not isinstance(rating_table, RatingTable):
        raise ArgumentTypeError(
            f"{func}: rating_table must be a RatingTable (load_rating_table), got "
            f"{short_repr(rating_table)} ({type(rating_table).__name__})"
        )
    args = check_simulation_args(
        func, n_paths=n_paths, seed=seed, keep_paths=keep_paths, ledger_paths=ledger_paths,
        batch_blocks=batch_blocks, threads=threads, progress=progress, jit=jit,
        sampling=sampling, sampling_target=sampling_target,
    )  # fmt: skip
    if runner is not None and not callable(getattr(runner, "submit", None)):
        raise ArgumentTypeError(
            f"{func}: runner must have a submit(job) method (a DaskRunner), got "
            f"{short_repr(runner)} ({type(runner).__name__})"
        )
    args["runner"] = runner
    return start_simulation(cd, sc, args, rating_table, func)


def _block_sums(
    n_blocks: int,
    n_kept: int,
    n_m: int,
    n_t: int,
    n_cf: int,
    n_h1: int,
    n_j: int,
    n_ht: int,
    hist_rows: int,
) -> BlockSums:
    """Zeroed Monte Carlo outputs for ``n_blocks`` blocks, with ``hist_rows`` rows of
    histograms (shapes: :class:`BlockSums`)."""
    nb, nh = n_blocks, hist_rows
    return BlockSums(
        m=np.zeros((nb, L.N_SUM, n_m)),
        cf=np.zeros((nb, L.N_CF_SUM, n_t, n_cf)),
        w_tot=np.zeros((nb, 2)),
        hist_count=np.zeros((nh, n_h1)),
        hist_loss=np.zeros((nh, HIST_LOSS_BINS)),
        hist_tr=np.zeros((nh, n_j, n_ht, HIST_BINS)),
        hist_cov=np.zeros((nh, n_t, HIST_BINS)),
        path_metrics=np.zeros((n_kept, n_m)),
    )


@dataclass
class RunTotals:
    """A run's Monte Carlo sums, added block by block in global block order (so the totals are
    bitwise the same for any batching, thread count or number of processes; the histograms of
    a crude run come a row a kernel thread, whole counts whose sum no order changes). With w
    a path's likelihood-ratio weight (1 under crude sampling):

    m : float64[N_SUM, M]        Σw·v, Σw²·v², Σw, the count, Σw·v², Σw²·v and Σw² of the
                                 finite metric values (rows ``SUM_*`` of the kernel layout)
    cf : float64[N_CF_SUM, T, N_CF]  Σw·v, Σw²·v² and Σw²·v of the expected-cash-flow items
                                 (rows ``CF_*``)
    w : float64[2]           Σw and Σw² over all paths
    count_hist : float64[H1] path weight by default count;  loss_hist : float64[HIST_LOSS_BINS]
    tranche_hist : float64[J, N_HT, HIST_BINS];  coverage_hist : float64[T, HIST_BINS]
    (histograms of path counts under crude sampling: whole numbers)
    """

    m: np.ndarray
    cf: np.ndarray
    w: np.ndarray
    count_hist: np.ndarray
    loss_hist: np.ndarray
    tranche_hist: np.ndarray
    coverage_hist: np.ndarray

    @classmethod
    def zeros(cls, shape: OutputShape) -> RunTotals:
        return cls(
            m=np.zeros((L.N_SUM, shape.n_m)),
            cf=np.zeros((L.N_CF_SUM, shape.n_t, shape.n_cf)),
            w=np.zeros(2),
            count_hist=np.zeros(shape.n_h1),
            loss_hist=np.zeros(HIST_LOSS_BINS),
            tranche_hist=np.zeros((shape.n_j, shape.n_ht, HIST_BINS)),
            coverage_hist=np.zeros((shape.n_t, HIST_BINS)),
        )

    def add(self, sums: BlockSums) -> None:
        """Add the blocks of ``sums`` in their order (the next blocks of the run), and their
        rows of histograms (one a block, or one a kernel thread: see :func:`run_range`)."""
        for b in range(sums.m.shape[0]):  # fixed order: bitwise reproducible totals
            self.m += sums.m[b]
            self.cf += sums.cf[b]
            self.w += sums.w_tot[b]
        for h in range(sums.hist_count.shape[0]):
            self.count_hist += sums.hist_count[h]
            self.loss_hist += sums.hist_loss[h]
            self.tranche_hist += sums.hist_tr[h]
            self.coverage_hist += sums.hist_cov[h]


@dataclass(frozen=True)
class OutputShape:
    """Sizes of a run's outputs: T periods, J tranches, M metrics, N_CF cash-flow items, H1
    default-count bins, N_HT histogrammed tranche metrics."""

    n_t: int
    n_j: int
    n_m: int
    n_cf: int
    n_h1: int
    n_ht: int

    @classmethod
    def of(cls, cd: CompiledDeal) -> OutputShape:
        n_j = len(cd.tranche_names)
        return cls(
            n_t=cd.n_periods,
            n_j=n_j,
            n_m=n_j * L.N_MT + L.N_MP,
            n_cf=n_j * L.N_CFT + L.N_CFP,
            n_h1=min(cd.n_obligors, MAX_COUNT_BINS - 1) + 1,
            n_ht=len(HIST_TRANCHE_METRICS),
        )

    def block_bytes(self, histograms: bool, kept_paths: int = 0) -> int:
        """Bytes of one block's outputs: its sums, a row of histograms where each block has
        its own (``histograms``; under crude sampling they are a kernel thread's), and the
        metric vectors of ``kept_paths`` paths (``keep_paths``: a block's paths)."""
        one = self.sums(1)
        fields = BlockSums._fields if histograms else ("m", "cf", "w_tot")
        sums = sum(getattr(one, name).nbytes for name in fields)
        return sums + kept_paths * self.n_m * 8

    def sums(self, n_blocks: int, hist_rows: int | None = None) -> BlockSums:
        """Zeroed sums for ``n_blocks`` blocks, histograms one row a block unless
        ``hist_rows`` says otherwise."""
        rows = n_blocks if hist_rows is None else hist_rows
        return _block_sums(n_blocks, 0, self.n_m, self.n_t, self.n_cf, self.n_h1, self.n_j,
                           self.n_ht, rows)  # fmt: skip


#: say "compiling the kernels" on stderr when a first run takes long, even for runs without
#: a progress bar (the ``abs-engine`` command sets it: its solvers run without bars)
COMPILE_NOTICE = False
#: seconds a first run waits (loading the kernels from the cache takes about 0.2 s) before
#: saying that it is compiling
COMPILE_NOTICE_AFTER_S = 1.0


def _warm_up(
    spec: RunSpec,
    model: MonteCarloModel,
    cd: CompiledDeal,
    shape: OutputShape,
    say: bool,
    specialise: bool | None = None,
) -> float:
    """Compile (or load from the cache) the kernels on a one-path run into scratch outputs, on
    the first call in this process; returns the seconds it took (0 when already compiled), so
    that a run's ``seconds`` measures the simulation alone. ``specialise``: the run's choice
    of block kernel (None: :func:`specialises` decides). With ``say``, a warm-up still running after
    :data:`COMPILE_NOTICE_AFTER_S` is announced on stderr, and its time told."""
    kernel, callees = block_kernel_and_callees(model.kernel, cd.kernel, spec.n_paths,
                                               specialise=specialise)  # fmt: skip
    if getattr(kernel, "signatures", True):  # compiled already, or the JIT is disabled
        return 0.0
    said = threading.Event()

    def notice() -> None:
        said.set()
        print(
            "compiling the Monte Carlo kernels: once after an install or upgrade, 10-20 s "
            "on 2 cores (cached for later runs) ...",
            file=sys.stderr,
            flush=True,
        )

    timer = threading.Timer(COMPILE_NOTICE_AFTER_S, notice)
    timer.daemon = True
    t0 = time.perf_counter()
    if say:
        timer.start()
    try:
        sums = shape.sums(1)
        one = spec._replace(n_paths=1, keep=0)
        scratch = block_scratch(model.kernel, cd.kernel, sums)
        # a cold compile: the waterfall here, the other callees in a second process
        args = block_callee_args(one, model.kernel, cd.kernel, sums, *scratch)
        call = (0, 0, one, model.kernel, cd.kernel, sums, *scratch)
        kernel = _compiled_or_generic(kernel, callees, call, args)
        with np.errstate(over="ignore"):
            kernel(0, 0, one, model.kernel, cd.kernel, sums, *scratch)
    finally:
        timer.cancel()
    seconds = time.perf_counter() - t0
    if said.is_set():
        print(f"compiled in {seconds:.0f} s", file=sys.stderr, flush=True)
    return seconds


class Progress:
    """A progress bar on stderr that appears once the work is expected to take over a second
    (or at once with ``enabled=True``; never with False): ``what`` is its label, ``unit``
    what ``total`` counts (a run's paths, a grid's points). With ``auto_refresh=False`` it is
    drawn only when updated, with no drawing thread running in between (the benchmarks'
    bars: nothing runs beside a timed measurement)."""

    def __init__(
        self,
        total: int,
        enabled: bool | None,
        what: str = "simulating",
        unit: str = "paths",
        auto_refresh: bool = True,
    ):
        self.total, self.enabled = total, enabled
        self.what, self.unit = what, unit
        self.auto_refresh = auto_refresh
        self.t0 = time.perf_counter()
        self.bar: Any = None
        self.task: Any = None

    def update(self, done: int) -> None:
        elapsed = time.perf_counter() - self.t0
        if (
            self.bar is None
            and self.enabled is not False
            and done < self.total
            and (self.enabled or elapsed * self.total / done > 1.0)
        ):
            self.bar = _progress(self.total, self.enabled, self.what, self.unit, self.auto_refresh)
            if self.bar is not None:
                self.bar.start()
                self.task = self.bar.add_task("sim", total=self.total)
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=done, refresh=not self.auto_refresh)

    def grow(self, total: int) -> None:
        """Raise the total to ``total`` (work that turned out longer than expected: a search
        that needs more evaluations than its expected count)."""
        if total > self.total:
            self.total = total
            if self.bar is not None and self.task is not None:
                self.bar.update(self.task, total=total, refresh=not self.auto_refresh)

    def finish(self) -> None:
        """Show the work complete (work that ended before its total: a search that converged
        early) and stop the bar."""
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=self.total)
        self.stop()

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@dataclass(frozen=True)
class RunJob:
    """One Monte Carlo run's kernel inputs: what a runner needs to compute its block sums.

    spec : the run (paths, seed, histogram ranges, keep);  model, deal : the kernel bundles
    (``MonteCarloModel.kernel``, ``CompiledDeal.kernel``);  shape : output sizes;
    batch_blocks : blocks per local batch (None: sized as the run goes, :func:`next_batch_blocks`);
    threads : kernel threads (None: all);
    jit : False runs the plain-Python twin;
    specialise : whether the block kernel specialised to the deal's structure runs, decided
    once for the run where it starts (:func:`specialises`), for its local batches and its
    Dask tasks alike (None: each decides)."""

    spec: RunSpec
    model: Any
    deal: Any
    shape: OutputShape
    batch_blocks: int | None
    threads: int | None
    jit: bool
    specialise: bool | None = None

    @property
    def n_blocks(self) -> int:
        return -(-self.spec.n_paths // self.spec.block_size)

    def ranges(self, blocks_per_range: int) -> list[tuple[int, int]]:
        """(first block, blocks) of consecutive ranges covering the run."""
        n = self.n_blocks
        return [(f, min(blocks_per_range, n - f)) for f in range(0, n, blocks_per_range)]

    def paths_in(self, first: int, n_blocks: int) -> int:
        """Paths in blocks ``first .. first + n_blocks - 1`` (the last block may be short)."""
        bs = self.spec.block_size
        return min((first + n_blocks) * bs, self.spec.n_paths) - first * bs


def run_range(
    first: int,
    n_blocks: int,
    spec: RunSpec,
    model: Any,
    deal: Any,
    shape: OutputShape,
    jit: bool = True,
    threads: int | None = None,
    specialise: bool | None = None,
) -> BlockSums:
    """Blocks ``first .. first + n_blocks - 1`` of a run: the sums per block (shape
    [n_blocks, ...], added in block order by :class:`RunTotals`), the histograms per block
    under importance sampling (weighted: float sums, whose rounding depends on their order)
    or per kernel thread (below) and, with ``spec.keep``, the
    range's per-path metrics (float64[paths, M]). A pure function of its arguments: the unit
    of work of a local batch and of a Dask task. The compiled block kernels release the GIL:
    ``threads`` (default all, see :func:`kernel_threads`) split the blocks into as many
    consecutive ranges, each run block by block in a thread of its own. ``specialise``: the
    run's choice of block kernel (:class:`RunJob`; None: :func:`specialises` decides here).

    Where every path's weight is 1 (:func:`unit_weights`: crude sampling) the histograms hold
    whole path counts, which add up exactly in any order: then each thread keeps one row of
    them instead of one a block (a block's rows are 640 KB, mostly empty, allocated, zeroed
    and added in Python: a sixth of a 1,000,000-path run of the bundled deal)."""
    n_threads = max(1, min(kernel_threads(threads), n_blocks)) if jit else 1
    per_thread = unit_weights(model)
    sums = shape.sums(n_blocks, n_threads if per_thread else None)
    if spec.keep:
        p0 = first * spec.block_size
        n_p = min((first + n_blocks) * spec.block_size, spec.n_paths) - p0
        sums = sums._replace(path_metrics=np.full((n_p, shape.n_m), np.nan))
    kernel, callees = block_kernel_and_callees(model, deal, spec.n_paths, jit, specialise)
    if jit and not getattr(kernel, "signatures", True):  # its first run in this process
        # as the local driver readies it, but all compiled here (a Dask task starts no
        # other process)
        scratch = block_scratch(model, deal, sums)
        kernel_call = (first, 0, spec, model, deal, sums, *scratch)
        args = block_callee_args(spec, model, deal, sums, *scratch)
        kernel = _compiled_or_generic(kernel, callees, kernel_call, args, apart=False)
    if not jit:
        with np.errstate(over="ignore"):  # uint64 wraparound is the RNG's arithmetic
            _run_blocks(kernel, first, 0, n_blocks, spec, model, deal, sums)
        return sums
    # the compiled kernel runs in the pool's threads, also when there is one: this thread
    # waits where Ctrl-C reaches it at once
    cuts = [n_blocks * i // n_threads for i in range(n_threads + 1)]
    pool = _pool(n_threads)
    calls = [pool.submit(_run_blocks, kernel, first, a, b, spec, model, deal,
                         _thread_rows(sums, i) if per_thread else sums)
             for i, (a, b) in enumerate(itertools.pairwise(cuts))]  # fmt: skip
    for future in calls:
        future.result()
    return sums


def unit_weights(model: Any) -> bool:
    """Whether every path of the kernel bundle ``model`` (a ``CollateralModel``) has
    likelihood-ratio weight exactly 1 (:func:`abs_engine.kernels.collateral.unit_weights_py`,
    the predicate the block kernel itself uses)."""
    return unit_weights_py(model) == 1


def _thread_rows(sums: BlockSums, i: int) -> BlockSums:
    """``sums`` with kernel thread ``i``'s row of each histogram (a one-row view: the kernel
    writes a block's histograms to its row, or to the only one)."""
    return sums._replace(**{f: getattr(sums, f)[i : i + 1] for f in BLOCK_SUMS_HISTOGRAMS})


def _run_blocks(
    kernel: Callable[..., int],
    first: int,
    a: int,
    b: int,
    spec: RunSpec,
    model: Any,
    deal: Any,
    sums: BlockSums,
) -> None:
    """Blocks ``a .. b - 1`` of a kernel call (global ``first + a ..``), one kernel call each
    (about 20 µs to call from Python, against milliseconds a block), on one set of scratch
    (:func:`~abs_engine.kernels.montecarlo.block_scratch`)."""
    if sums.hist_count.shape[0] not in (1, sums.m.shape[0]):
        # the kernel writes row min(block, rows - 1): any other count would fold blocks
        raise ValueError("histograms need one row, or one a block of the call")
    scratch = block_scratch(model, deal, sums)
    for bb in range(a, b):
        kernel(first, bb, spec, model, deal, sums, *scratch)


def block_kernel(
    model: Any, jit: bool = True, deal: Any = None, n_paths: int = 0, specialise: bool | None = None
) -> Callable[..., int]:
    """The kernel that runs one block of ``model`` (a ``CollateralModel``) on ``deal`` (its
    ``DealArrays``) in a run of ``n_paths`` paths: conditional Monte Carlo has its own,
    compiled only when a run uses it; ``jit=False`` the Python twin; otherwise the block
    kernel specialised to the deal's structure where ``specialise`` (None: :func:`specialises`)
    says so and it has not failed to compile in this process, else the generic one (their
    results are bitwise the same)."""
    return block_kernel_and_callees(model, deal, n_paths, jit, specialise)[0]


def block_kernel_and_callees(
    model: Any, deal: Any, n_paths: int, jit: bool = True, specialise: bool | None = None
) -> tuple[Callable[..., int], tuple[Any, ...]]:
    """:func:`block_kernel`, and the compiled functions it calls (as ``BLOCK_CALLEES``, the
    waterfall first: what a cold compile shares out over two processes)."""
    if model.is_cmc_provider:
        return (run_block_cmc if jit else run_block_cmc_py), BLOCK_CALLEES
    if not jit:
        return run_block_py, BLOCK_CALLEES
    if deal is None or getattr(numba.config, "DISABLE_JIT", False):
        return run_block, BLOCK_CALLEES
    n_t = model.agg_interest.shape[0]
    use = specialises(deal, n_t, n_paths) if specialise is None else specialise
    if use and (specialise is None or not failed(deal, n_t)):
        try:  # the rewrite itself, before any compile
            return specialised_kernel(deal, n_t)
        except Exception as exc:
            _specialisation_failed(deal, n_t, exc)
    return run_block, BLOCK_CALLEES


#: environment variable: "0" never runs the deal-specialised block kernel, "1" always; unset
#: (or anything else) the default of :func:`specialises`
SPECIALISE_ENV = "ABS_ENGINE_SPECIALISE"
#: runs of this many paths or more use the deal-specialised block kernel by default,
#: compiling it if need be: about 12 s for each new structure on this project's 2-core VM,
#: while the generic kernel, the same for every deal, is cached after any first run. The
#: specialisation saves about 0.2 µs a path as shipped and 0.65 µs with every path computed
#: (two threads), so a run pays its compile back from about 20-60 million paths; a smaller
#: run uses it only once it is compiled (it was 100,000, and every new structure's first run
#: of the bundled scenario's 200,000 paths paid the 12 s: an independent review, twelfth
#: session)
SPECIALISE_MIN_PATHS = 50_000_000


def _is_specialisation(kernel: Any) -> bool:
    """Whether ``kernel`` is a deal-specialised block kernel (a numba dispatcher other than
    the generic ones) that this process has not compiled yet."""
    return (
        kernel not in (run_block, run_block_cmc)
        and hasattr(kernel, "compile")
        and not getattr(kernel, "signatures", True)
    )


def _compiled_or_generic(
    kernel: Any,
    callees: Sequence[Any],
    call: tuple[Any, ...],
    callee_args: Sequence[tuple[Any, ...]] | None = None,
    apart: bool = True,
) -> Any:
    """``kernel`` compiled (or loaded from the cache) for the arguments ``call``; with
    ``callee_args``, over two processes where it is cold (``apart``;
    :func:`~abs_engine.kernel_compile.compile_callees`: a generic kernel here and the
    callees it binds there; a specialised one's own waterfall here and its other callees
    there).
    Where numba cannot compile a deal-specialised kernel (a structure the rewrite did not
    foresee) and the choice was not forced (``ABS_ENGINE_SPECIALISE=1`` raises), the generic
    kernel instead, for the rest of the process, with a warning: a specialisation costs a run
    speed or nothing, never the run."""
    if not _is_specialisation(kernel):
        if callee_args is not None and apart:
            compile_callees(kernel, callees, callee_args, call)
        return kernel
    try:
        if callee_args is not None and apart:
            compile_callees(kernel, callees, callee_args)  # the specialised waterfall first
        kernel.compile(tuple(numba.typeof(a) for a in call))
    except Exception as exc:  # numba's own errors, and its passes' plain ones
        _specialisation_failed(call[4], call[3].agg_interest.shape[0], exc)
        return _compiled_or_generic(run_block, BLOCK_CALLEES, call, callee_args, apart)
    return kernel


def _specialisation_failed(deal: Any, n_t: int, exc: Exception) -> None:
    """A specialisation of ``deal``'s structure could not be built or compiled: raise when
    ``ABS_ENGINE_SPECIALISE=1`` forced it; else remember it for the process and warn."""
    if os.environ.get(SPECIALISE_ENV, "").strip() == "1":
        raise exc
    mark_failed(deal, n_t)
    warnings.warn(
        f"the block kernel specialised to this deal's structure did not compile "
        f"({type(exc).__name__}: {str(exc)[:200]}); running the generic kernel (the same "
        "results, slower)",
        RuntimeWarning,
        stacklevel=4,
    )


def specialises(deal: Any, n_t: int, n_paths: int) -> bool:
    """Whether a run of ``n_paths`` paths on ``deal`` (a ``DealArrays`` over ``n_t`` periods)
    uses the block kernel specialised to its structure
    (:mod:`abs_engine.kernels.specialise`: 35-45% less time a path on the bundled deal): per
    ``ABS_ENGINE_SPECIALISE``, or by default when the run has :data:`SPECIALISE_MIN_PATHS`
    paths or more, or the specialisation is compiled already (in this process, or in numba's
    cache: then it costs nothing to use); not where numba could not compile it in this
    process (:func:`_compiled_or_generic`)."""
    if getattr(numba.config, "DISABLE_JIT", False):  # the Python twins run: none to specialise
        return False
    choice = os.environ.get(SPECIALISE_ENV, "").strip()
    if choice in ("0", "1"):
        return choice == "1"
    if failed(deal, n_t):  # numba could not compile it in this process
        return False
    return n_paths >= SPECIALISE_MIN_PATHS or is_specialised(deal, n_t)


#: seconds a local batch aims at when its size is left to the run (``batch_blocks=None``):
#: long enough that a batch's fixed costs (its sums allocated and added in Python, its
#: threads started and joined) are a few percent, short enough for a lively progress bar
BATCH_TARGET_S = 0.25
#: the most memory one local batch's outputs may take (bytes; sums, kept metric vectors, a
#: block's own histogram rows)
BATCH_MAX_BYTES = 32 * 2**20


def first_batch_blocks(job: RunJob) -> int:
    """Blocks of a run's first local batch: ``job.batch_blocks``, or 4 a kernel thread (at
    least 8) when the run sizes its batches (:func:`next_batch_blocks`)."""
    return job.batch_blocks or max(8, 4 * kernel_threads(job.threads))


def next_batch_blocks(job: RunJob, last: int, took: float) -> int:
    """Blocks of the next local batch after one of ``last`` blocks took ``took`` seconds:
    ``job.batch_blocks``, or as many as :data:`BATCH_TARGET_S` takes at that pace, at most
    twice the last, at least the first batch's, and within :data:`BATCH_MAX_BYTES` of
    outputs (sums, kept metric vectors, histogram rows a block under importance sampling)
    unless the first batch's size is already more.
    Sizes never change results: sums are kept a block and added in block order."""
    if job.batch_blocks is not None:
        return job.batch_blocks
    least = first_batch_blocks(job)
    kept = job.spec.block_size if job.spec.keep else 0
    block = job.shape.block_bytes(not unit_weights(job.model), kept)
    most = max(least, BATCH_MAX_BYTES // block)
    want = int(BATCH_TARGET_S * last / took) if took > 0.0 else most
    return max(least, min(want, 2 * last, most))


class LocalRunner:
    """Runs a job's blocks in this process, in batches (:func:`next_batch_blocks`), when
    its results are collected (so pending runs cost nothing until then)."""

    #: blocks are computed when collected, not when submitted
    eager = False

    def submit(self, job: RunJob) -> Iterator[tuple[int, BlockSums]]:
        """An iterator of (first block, sums) in block order (a generator: nothing runs
        until it is iterated)."""
        first, nb = 0, first_batch_blocks(job)
        while first < job.n_blocks:
            nb = min(nb, job.n_blocks - first)
            t0 = time.perf_counter()
            sums = run_range(first, nb, job.spec, job.model, job.deal, job.shape, job.jit,
                             job.threads, job.specialise)  # fmt: skip
            took = time.perf_counter() - t0
            yield first, sums
            first += nb
            nb = next_batch_blocks(job, nb, took)


class Runner(Protocol):
    """Computes a job's path blocks: :class:`LocalRunner` here, or
    :class:`abs_engine.distributed.DaskRunner` on a cluster. ``eager``: the blocks start
    computing when submitted (so a run's seconds count from then)."""

    eager: bool

    def submit(self, job: RunJob) -> Iterator[tuple[int, BlockSums]]:
        """Start the job; return an iterator of (first block, :func:`run_range` sums) in any
        order, together covering every block once."""
        ...


#: the runner of a run given no other (``simulate(..., client=None)``)
LOCAL_RUNNER = LocalRunner()


def collect(
    job: RunJob, stream: Iterable[tuple[int, BlockSums]], path_out: np.ndarray, progress: Any
) -> RunTotals:
    """The run's totals from ``stream``'s (first block, sums), which may come in any order:
    sums are added in block order (results arriving early wait), so the totals are bitwise the
    same whoever computed the ranges. Kept per-path metrics are copied into ``path_out``
    (float64[n_paths, M]). ``progress`` (a :class:`Progress`) counts finished paths. A
    range that overlaps one already received, or blocks that never arrive, are an error."""
    totals = RunTotals.zeros(job.shape)
    waiting: dict[int, BlockSums] = {}
    received = np.zeros(job.n_blocks, dtype=bool)
    next_block, done = 0, 0
    bs = job.spec.block_size
    for first, sums in stream:
        n_b = sums.m.shape[0]
        if not 0 <= first <= job.n_blocks - n_b or received[first : first + n_b].any():
            raise RuntimeError(f"blocks {first}..{first + n_b - 1} arrived twice or out of range")
        received[first : first + n_b] = True
        if job.spec.keep:
            path_out[first * bs : first * bs + sums.path_metrics.shape[0]] = sums.path_metrics
            sums = sums._replace(path_metrics=None)
        waiting[first] = sums
        while next_block in waiting:
            ready = waiting.pop(next_block)
            totals.add(ready)
            next_block += ready.m.shape[0]
        done += job.paths_in(first, n_b)
        progress.update(done)
    if next_block != job.n_blocks or waiting:
        raise RuntimeError(f"blocks {next_block}.. of {job.n_blocks} never arrived")
    return totals


def _checked_run(
    cd: CompiledDeal, sc: MonteCarloScenario, args: dict[str, Any], func: str
) -> tuple[MonteCarloModel, int, int]:
    """The scenario compiled against the deal, the path count and the seed; ledger paths and
    the memory kept per-path results need are checked (:class:`InputError`)."""
    n_paths = int(sc.n_paths if args["n_paths"] is None else args["n_paths"])
    seed = int(sc.seed if args["seed"] is None else args["seed"])
    for k, p in enumerate(args["ledger_paths"]):
        if not 0 <= p < n_paths:
            raise InputError(
                f"{func}: ledger_paths[{k}] = {p} is outside the run's paths 0..{n_paths - 1:,}"
            )
    model = compile_model(cd, sc)  # validates the scenario against the deal (DealError)
    model = _sampled(cd, model, seed, n_paths, args["sampling"], args["sampling_target"], func)
    if args["keep_paths"]:
        # refused up front with the estimate, not by NumPy failing to allocate
        check_keep_paths_memory(n_paths, kept_bytes_per_path(len(cd.tranche_names)))
    if args["ledger_paths"]:
        check_keep_paths_memory(len(args["ledger_paths"]), ledger_bytes(cd), what="ledger_paths")
    return model, n_paths, seed


def _sampled(
    cd: CompiledDeal,
    model: MonteCarloModel,
    seed: int,
    n_paths: int,
    sampling: Any,
    target: str | None,
    func: str,
) -> MonteCarloModel:
    """``model`` under the run's sampling: as compiled (crude), or with importance-sampling
    shifts, given or chosen for ``target`` (:func:`abs_engine.importance.tuned_sampling`: a
    cross-entropy pilot on its own random numbers)."""
    if isinstance(sampling, str) and sampling == "crude":
        if target is not None:
            raise InputError(f"{func}: sampling_target is for importance sampling")
        return model
    if target is not None and target not in cd.tranche_names:
        raise InputError(
            f"{func}: sampling_target: unknown tranche {short_repr(target)}; tranches are "
            f"{list(cd.tranche_names)}"
        )
    isp = sampling
    if not isinstance(isp, ImportanceSampling):
        from .importance import pilot_paths, tuned_sampling

        isp = tuned_sampling(cd, model, seed, target, pilot_paths=pilot_paths(n_paths))
    try:
        return with_sampling(model, isp)
    except ValueError as exc:
        raise InputError(f"{func}: sampling: {exc}") from None


def _simulate_checked(
    cd: CompiledDeal,
    sc: MonteCarloScenario,
    args: dict[str, Any],
    rating_table: RatingTable | None,
    func: str,
) -> SimulationResult:
    """:func:`simulate_compiled` with its keyword arguments already checked and normalised
    (``args``, from :func:`check_simulation_args`)."""
    return start_simulation(cd, sc, args, rating_table, func).result()


@dataclass
class PendingSimulation:
    """A Monte Carlo run submitted to its runner; :meth:`result` collects it (on the local
    runner, that is when the paths are computed). Several pending runs on a Dask cluster
    compute at the same time."""

    cd: CompiledDeal
    model: MonteCarloModel
    job: RunJob
    stream: Iterator[tuple[int, BlockSums]]
    rating_table: RatingTable
    ledger_paths: Sequence[int]
    progress: bool | None
    compile_seconds: float
    t0: float
    eager: bool
    _result: SimulationResult | None = None

    def result(self) -> SimulationResult:
        """The run's result (collected once; later calls return the same object). Kept
        per-path results are allocated here, so pending runs hold no per-path memory; a run's
        ``seconds`` count from its submission on an eager (Dask) runner, from here on the
        local one."""
        if self._result is not None:
            return self._result
        spec, n_m = self.job.spec, self.job.shape.n_m
        t0 = self.t0 if self.eager else time.perf_counter()
        path_out = np.full((spec.n_paths, n_m), np.nan) if spec.keep else np.zeros((0, n_m))
        bar = Progress(spec.n_paths, self.progress)
        try:
            totals = collect(self.job, self.stream, path_out, bar)
        finally:
            bar.stop()
        seconds = time.perf_counter() - t0
        self._result = _result(self.cd, self.model, spec, totals,
                               path_out if spec.keep else None, self.rating_table,
                               self.ledger_paths, seconds, self.compile_seconds)  # fmt: skip
        return self._result


def start_simulation(
    cd: CompiledDeal,
    sc: MonteCarloScenario,
    args: dict[str, Any],
    rating_table: RatingTable | None,
    func: str,
) -> PendingSimulation:
    """Check the run, compile the kernels here if needed (so that a local cluster's workers
    load them from the cache) and submit it to ``args["runner"]`` (default: this process)."""
    rating_table = rating_table or default_rating_table()
    model, n_paths, seed = _checked_run(cd, sc, args, func)
    keep_paths = args["keep_paths"]
    shape = OutputShape.of(cd)
    hist_lo, hist_hi = hist_ranges(cd)
    # frozen like the other bundles: the same signature in this process and on a worker
    spec = frozen(RunSpec(BLOCK_SIZE, n_paths, seed, hist_lo, hist_hi, int(keep_paths)))
    say = COMPILE_NOTICE or args["progress"] is not False
    # one choice of block kernel for the whole run, its warm-up, local batches and Dask tasks
    # alike; the generic one after all where the warm-up could not compile the specialisation
    n_t = model.kernel.agg_interest.shape[0]
    specialise = bool(args["jit"]) and specialises(cd.kernel, n_t, n_paths)
    compile_seconds = _warm_up(spec, model, cd, shape, say, specialise) if args["jit"] else 0.0
    specialise = specialise and not failed(cd.kernel, n_t)
    batch_blocks = args["batch_blocks"]  # None: sized as the run goes (next_batch_blocks)
    job = RunJob(spec, model.kernel, cd.kernel, shape, batch_blocks, args["threads"],
                 args["jit"], specialise)  # fmt: skip
    runner = args.get("runner") or LOCAL_RUNNER
    t0 = time.perf_counter()
    stream = runner.submit(job)
    return PendingSimulation(
        cd, model, job, stream, rating_table, args["ledger_paths"], args["progress"],
        compile_seconds, t0, bool(getattr(runner, "eager", True)),
    )  # fmt: skip


def _result(
    cd: CompiledDeal,
    model: MonteCarloModel,
    spec: RunSpec,
    totals: RunTotals,
    path_out: np.ndarray | None,
    rating_table: RatingTable,
    ledger_paths: Sequence[int],
    seconds: float,
    compile_seconds: float,
) -> SimulationResult:
    """Run totals → means with standard errors, distributions, frames and ledgers."""
    n_paths, n_j = spec.n_paths, len(cd.tranche_names)
    weighted = model.sampling != "crude"
    mean, se = run_mean_se(totals.m, n_paths, weighted)
    cf_n = np.full_like(totals.cf[L.CF_WV], float(n_paths))
    if weighted:
        loss_like = np.broadcast_to(loss_like_cashflows(n_j), cf_n.shape)
        cf_mean, cf_se = importance_mean_se(
            totals.cf[L.CF_WV], totals.cf[L.CF_W2V2], totals.cf[L.CF_W2V],
            np.full_like(cf_n, totals.w[0]),
            np.full_like(cf_n, totals.w[1]), cf_n, n_paths, loss_like,
        )  # fmt: skip
    else:
        cf_mean, cf_se = mean_se(totals.cf[L.CF_WV], totals.cf[L.CF_W2V2], cf_n)
    tranches = tranche_frame(cd, mean, se, rating_table)
    dist = distributions(cd, totals.tranche_hist, totals.coverage_hist, spec.hist_lo,
                         spec.hist_hi, path_out)  # fmt: skip
    tranches = tranches.assign(**dist["tranches"])
    pool = pd.DataFrame(
        [
            {"metric": name, "mean": mean[n_j * L.N_MT + k], "se": se[n_j * L.N_MT + k]}
            for name, k in MP_NAMES
        ]
    ).set_index("metric")
    cashflows = cashflow_frame(cd, cf_mean, cf_se, totals.cf, weighted)
    cashflows["coverage_ratio_p05"] = dist["coverage_p05"]
    cov = _el_p_covariance(model, totals, mean, n_j, n_paths) if weighted else None
    tranches = add_lgd_and_duration(cd, tranches, cashflows, n_paths, cov)
    sampling = _sampling_info(cd, model, totals, n_paths, mean, se)
    paths = None
    if path_out is not None:
        paths = pd.DataFrame(path_out, columns=metric_names(cd.tranche_names))
    ledgers = {int(p): path_ledger(cd, model, spec.seed, int(p)) for p in ledger_paths}
    return SimulationResult(
        cd,
        model,
        n_paths,
        spec.seed,
        tranches,
        pool,
        cashflows,
        paths,
        totals.count_hist if weighted else totals.count_hist.astype(np.int64),
        totals.loss_hist if weighted else totals.loss_hist.astype(np.int64),
        seconds,
        rating_table,
        ledgers,
        compile_seconds,
        sampling,
    )


def _el_p_covariance(
    model: MonteCarloModel, totals: RunTotals, mean: np.ndarray, n_j: int, n_paths: int
) -> np.ndarray:
    """Under importance sampling, the covariance of each tranche's EL and P(shortfall)
    estimates (both Σw·v / P): (Σw²·L·D / P − EL·P) / (P − 1), where a PV loss L occurs only
    on a path with a shortfall D, so Σw²·L·D is the EL's Σw²·v. NaN under conditional Monte
    Carlo, whose per-path figures are mixtures (L·D is then not L)."""
    el_idx = [j * L.N_MT + L.MT_PV_LOSS for j in range(n_j)]
    p_idx = [j * L.N_MT + L.MT_DEFAULT for j in range(n_j)]
    if model.is_cmc_provider:
        return np.full(n_j, np.nan)
    n = float(n_paths)
    return (totals.m[L.SUM_W2V][el_idx] / n - mean[el_idx] * mean[p_idx]) / max(n - 1.0, 1.0)


def _sampling_info(
    cd: CompiledDeal,
    model: MonteCarloModel,
    totals: RunTotals,
    n_paths: int,
    mean: np.ndarray,
    se: np.ndarray,
) -> dict[str, Any]:
    """The run's sampling, for the result: ``method``, the effective sample size and, per
    tranche, the effective number of paths behind its expected loss
    (:func:`~abs_engine.metrics.sampling.effective_paths`); under importance sampling also the
    shifts, the mean weight ± SE and, per tranche, the in-run variance reduction of its
    expected loss and default probability against crude sampling."""
    el_idx = [j * L.N_MT + L.MT_PV_LOSS for j in range(len(cd.tranche_names))]
    loss_paths = effective_paths(totals.m, el_idx)  # (Σw·v)² / Σw²·v²
    by_tranche = dict(zip(cd.tranche_names, loss_paths, strict=True))
    if model.sampling == "crude":
        return {
            "method": "crude",
            "effective_sample_size": float(n_paths),
            "effective_loss_paths": by_tranche,
        }
    summ = sampling_summary(totals.m, totals.w, n_paths, mean, se)
    vr: np.ndarray = summ.pop("variance_reduction")  # type: ignore[assignment]
    per = {
        name: {
            "expected_loss": float(vr[j * L.N_MT + L.MT_PV_LOSS]),
            "default_probability": float(vr[j * L.N_MT + L.MT_DEFAULT]),
        }
        for j, name in enumerate(cd.tranche_names)
    }
    shifts = {
        "target_tranche": model.sampling_target,
        "factor_shift": [float(v) for v in model.is_factor_shift],
        "provider_shift": [float(v) for v in model.is_provider_shift],
        "mix_scale": model.is_mix_scale,
        "twisting": model.is_twist_level > 0.0,
        "provider_conditional": bool(model.is_cmc_provider),
    }
    return {
        "method": "importance",
        **summ,
        **shifts,
        "variance_reduction": per,
        "effective_loss_paths": by_tranche,
        "warnings": degeneracy_warnings(cd.tranche_names, loss_paths, summ, model.sampling_target)
        + impossible_shares(cd.tranche_names, mean, cd.n_obligors),
    }


def path_flows(
    cd: CompiledDeal, model: MonteCarloModel, seed: int, paths: Sequence[int]
) -> PoolFlows:
    """Pool flows and provider defaults of the given global paths (bitwise the same as inside
    the simulation), for full ledgers of a few paths; each labelled with the scenario's name
    (a ledger's ``scenario`` column; its ``path`` column the path)."""
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
    return PoolFlows(flows, sup, rates, np.zeros((k, flows.shape[2])), (model.scenario.name,) * k)


def path_ledger(cd: CompiledDeal, model: MonteCarloModel, seed: int, p: int) -> WaterfallResult:
    """The full waterfall ledger of global path ``p``."""
    return run_waterfall(cd, path_flows(cd, model, seed, [p]))
