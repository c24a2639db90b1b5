"""Path blocks as Dask tasks: :class:`DaskRunner` computes a Monte Carlo run's block ranges on a
cluster's workers and hands their sums back for :func:`abs_engine.simulation.collect` to add
in block order — so the result is bitwise the same as one process's, for any number of
workers, threads or block ranges.

Each task is :func:`run_range_task` on one range of blocks: a pure function of (seed, global
path index) through the kernel bundles, so a task re-run after a worker died gives the same
sums. The deal's and the model's kernel bundles go to the cluster once, not per task (see
:meth:`DaskRunner.shipped`): the runner keeps the last few it shipped (by content), so a
grid's runs or a solver's evaluations on the same deal send it once. Each task's histograms
come back sparse. A task that fails, a cluster without workers for
:data:`NO_WORKERS_TIMEOUT_S`, or a lost scheduler end the run with a
:class:`~abs_engine.distributed.cluster.ClusterError`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..kernels.bundles import BLOCK_SUMS_HISTOGRAMS, BlockSums, RunSpec, frozen
from ..simulation import OutputShape, RunJob, run_range
from .cluster import ClusterError

__all__ = ["ClusterError", "DaskRunner", "default_threads", "run_range_task"]

#: one kernel launch at a time in a worker process (each launch uses all the kernel threads it
#: was given anyway)
_KERNEL_LOCK = threading.Lock()

#: ranges per worker a run is cut into by default: enough to balance the load and to lose
#: little when a worker dies, few enough that the per-task overhead stays small
RANGES_PER_WORKER = 4
#: blocks (of 1,024 paths) per task, at most, by default
MAX_TASK_BLOCKS = 256
#: kernel bundles (deals, models) a runner keeps on its workers for later runs
SHIPPED_CACHE = 8
#: seconds a run waits with no worker in the cluster before it gives up
NO_WORKERS_TIMEOUT_S = 30.0
#: seconds between checks of the cluster while waiting for tasks
POLL_S = 1.0


def run_range_task(
    first: int,
    n_blocks: int,
    spec: RunSpec,
    model: Any,
    deal: Any,
    shape: OutputShape,
    jit: bool,
    threads: int | None,
    specialise: bool | None = None,
) -> BlockSums:
    """One Dask task: :func:`abs_engine.simulation.run_range` on a worker, with ``threads``
    kernel threads (None: the worker's default) and the run's choice of block kernel
    (``specialise``, made where the run started: :class:`~abs_engine.simulation.RunJob`).
    The bundles arrive as the worker deserialised them and are made read-only again (views,
    no copy), so the kernels keep the one signature they were compiled (and cached) for."""
    import numba

    model, deal = frozen(model), frozen(deal)
    spec = frozen(spec)
    if threads is not None:  # at most what this worker's numba allows: results do not change
        threads = min(threads, int(getattr(numba.config, "NUMBA_NUM_THREADS", 1)))
    with _KERNEL_LOCK:
        sums = run_range(first, n_blocks, spec, model, deal, shape, jit, threads, specialise)
    return sums._replace(**{f: Sparse.of(getattr(sums, f)) for f in _HISTOGRAMS})


def _bundle(obj: Any) -> Any:
    """The task that holds a kernel bundle (or a compiled deal) on a worker."""
    return obj


#: the histograms of :class:`BlockSums`, per block or per kernel thread (mostly empty bins:
#: sent back sparse)
_HISTOGRAMS = BLOCK_SUMS_HISTOGRAMS


@dataclass(frozen=True)
class Sparse:
    """An array as its non-zero entries (their values and dtype kept exactly): a task's
    histograms (mostly zeros) travel back to the client in a few KB."""

    shape: tuple[int, ...]
    index: np.ndarray  # int64[K]  flat indices of the non-zero bins
    count: np.ndarray  # [K]  their values, in the array's dtype

    @classmethod
    def of(cls, a: np.ndarray) -> Sparse:
        flat = a.ravel()
        index = np.flatnonzero(flat)
        return cls(a.shape, index, flat[index])

    def dense(self) -> np.ndarray:
        out = np.zeros(int(np.prod(self.shape)), dtype=self.count.dtype)
        out[self.index] = self.count
        return out.reshape(self.shape)


def _dense(sums: BlockSums) -> BlockSums:
    return sums._replace(**{f: getattr(sums, f).dense() for f in _HISTOGRAMS})


class DaskRunner:
    """Runs Monte Carlo path blocks as tasks on a ``distributed.Client``'s cluster.

    threads : kernel threads per task (None: the worker's default, all its cores);
    task_blocks : blocks (of 1,024 paths) per task (None: about
        :data:`RANGES_PER_WORKER` tasks per worker, at most :data:`MAX_TASK_BLOCKS` blocks).
    """

    #: tasks start computing when submitted
    eager = True

    def __init__(self, client: Any, threads: int | None = None, task_blocks: int | None = None):
        for name, v in (("threads", threads), ("task_blocks", task_blocks)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                from ..errors import InputError

                raise InputError(f"DaskRunner: {name} must be a whole number >= 1, got {v!r}")
        self.client = client
        self.threads = threads
        self.task_blocks = task_blocks
        #: bundles already on the workers, by content token: a grid's runs or a solver's
        #: evaluations ship a deal or model once, and the futures held here keep the data
        #: alive (scattered data released while a later run still needs it would be lost)
        self._scattered: OrderedDict[str, Any] = OrderedDict()

    def with_task_blocks(self, task_blocks: int | None) -> DaskRunner:
        """The same cluster, threads and shipped bundles, ``task_blocks`` blocks per task."""
        return self._sharing(self.threads, task_blocks)

    def with_threads(self, threads: int | None) -> DaskRunner:
        """The same cluster, task size and shipped bundles, ``threads`` kernel threads a task."""
        return self._sharing(threads, self.task_blocks)

    def _sharing(self, threads: int | None, task_blocks: int | None) -> DaskRunner:
        other = DaskRunner(self.client, threads, task_blocks)
        other._scattered = self._scattered  # bundles already on the cluster: not sent again
        return other

    def __repr__(self) -> str:
        t, b = self.threads, self.task_blocks
        return f"DaskRunner({self.address!r}, threads={t}, task_blocks={b})"

    @property
    def address(self) -> str:
        return str(getattr(self.client.scheduler, "address", "?"))

    def workers_now(self) -> int:
        """Workers the scheduler knows now (0 when none)."""
        return len(self.client.scheduler_info(n_workers=-1).get("workers", {}))

    def n_workers(self) -> int:
        """Workers the scheduler knows now (at least 1: the count tasks are cut for)."""
        return max(1, self.workers_now())

    def blocks_per_task(self, job: RunJob) -> int:
        """Blocks per task: ``task_blocks``, or about :data:`RANGES_PER_WORKER` tasks per
        worker, at least one block per thread of a task (the kernel runs a task's blocks in
        parallel) and at most :data:`MAX_TASK_BLOCKS`."""
        if self.task_blocks is not None:
            return self.task_blocks
        per = -(-job.n_blocks // (RANGES_PER_WORKER * self.n_workers()))
        return min(MAX_TASK_BLOCKS, max(1, self.threads or 1, per))

    def shipped(self, obj: Any) -> Any:
        """A future holding ``obj`` on the cluster, shipped once per content (the last
        :data:`SHIPPED_CACHE` objects are kept); workers fetch it once for their tasks.

        A task that returns ``obj`` (``obj`` travels in the task's spec), not
        ``Client.scatter``: scattered data lives only on the workers, so a worker killed
        while holding the last copy loses it for good ("lost dependencies", or the run's
        tasks forgotten) — Dask's memory manager may drop broadcast replicas between runs —,
        where a task's result is computed again elsewhere."""
        from dask.base import tokenize

        token = tokenize(obj)
        fut = self._scattered.get(token)
        if fut is None:
            name = f"{type(obj).__name__}-{token}"
            fut = self.client.submit(_bundle, obj, key=name, pure=False, retries=2)
            self._scattered[token] = fut
            while len(self._scattered) > SHIPPED_CACHE:
                self._scattered.popitem(last=False)  # a pending run holds its own reference
        self._scattered.move_to_end(token)
        return fut

    def submit(self, job: RunJob) -> Iterator[tuple[int, BlockSums]]:
        """Submit every range of ``job`` now; return an iterator of (first block, sums) as the
        tasks finish (:func:`abs_engine.simulation.collect` puts them in order)."""
        try:
            if self.workers_now() == 0:
                self._wait_for_a_worker()
            model, deal = self.shipped(job.model), self.shipped(job.deal)
            futures = {
                self.client.submit(
                    run_range_task, first, nb, job.spec, model, deal, job.shape, job.jit,
                    self.threads, job.specialise, pure=False, retries=2,
                ): first
                for first, nb in job.ranges(self.blocks_per_task(job))
            }  # fmt: skip
        except Exception as exc:
            raise self._failure(exc) from exc
        return self._finished(futures, (model, deal))

    def _finished(
        self, futures: dict[Any, int], held: tuple[Any, ...]
    ) -> Iterator[tuple[int, BlockSums]]:
        """(first block, sums) as tasks finish. ``held`` keeps the run's bundles on the
        cluster until the run is collected."""
        try:
            # each future let go once its sums are taken: a future held keeps its result in
            # the worker's memory (a run held every task's until its end: 205 MB at
            # 2,000,000 importance-sampled paths, growing with the paths)
            for fut in self._as_finished(futures):
                yield futures.pop(fut), _dense(fut.result())
                fut.release()
        except Exception as exc:
            raise self._failure(exc) from exc
        finally:
            self._cancel(list(futures))  # an interrupted or failed run: nothing left running
            del held

    def _as_finished(self, futures: Iterable[Any]) -> Iterator[Any]:
        """``futures`` as they finish; a cluster left without workers for
        :data:`NO_WORKERS_TIMEOUT_S` is a :class:`ClusterError`, not a hang. Keeps only those
        still pending (and the last finished): how long the others are held is the
        caller's."""
        from distributed import wait

        pending = set(futures)
        while pending:
            try:
                done, pending = wait(pending, timeout=POLL_S, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = set()
            yield from done
            if not done and self.workers_now() == 0:
                self._wait_for_a_worker()

    def _wait_for_a_worker(self) -> None:
        try:
            self.client.wait_for_workers(1, timeout=NO_WORKERS_TIMEOUT_S)
        except TimeoutError:
            raise ClusterError(
                f"the Dask cluster at {self.address} has no workers (waited "
                f"{NO_WORKERS_TIMEOUT_S:.0f} s): start workers (dask worker {self.address}) "
                "and run the command again"
            ) from None

    def _cancel(self, futures: list[Any]) -> None:
        if futures:
            with contextlib.suppress(Exception):  # a client already closed: nothing to cancel
                self.client.cancel(futures)

    def map_calls(
        self, shared: Any, calls: Sequence[tuple[Callable[..., Any], tuple, dict[str, Any]]]
    ) -> list[Any]:
        """``[fn(shared, *args, **kwargs) for fn, args, kwargs in calls]``, each call a task;
        ``shared`` (e.g. a CompiledDeal) goes to the cluster once, not per task."""
        futures: list[Any] = []
        try:
            if self.workers_now() == 0:
                self._wait_for_a_worker()
            ref = self.shipped(shared)
            futures = [
                self.client.submit(fn, ref, *args, pure=False, retries=2, **kwargs)
                for fn, args, kwargs in calls
            ]
            for _ in self._as_finished(futures):
                pass
            return [f.result() for f in futures]  # ``ref`` held until all are in
        except Exception as exc:
            raise self._failure(exc) from exc
        finally:
            self._cancel([f for f in futures if not f.done()])

    def _failure(self, exc: BaseException) -> ClusterError:
        """The error for a run that could not finish on the cluster."""
        if isinstance(exc, ClusterError):
            return exc
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        # a client closed, or its connection pool after the scheduler went: distributed's
        # RuntimeError "IOLoop is closed" / "ConnectionPool is closed"
        closed = isinstance(exc, RuntimeError) and first.endswith(" is closed")
        if closed or isinstance(exc, OSError | concurrent.futures.CancelledError):
            return ClusterError(
                f"lost the Dask cluster at {self.address} during the run ({first}); nothing "
                "was written: run the command again once the scheduler is back"
            )
        if type(exc).__name__ == "KilledWorker":
            return ClusterError(
                f"workers of the Dask cluster at {self.address} died running the same task "
                f"again and again ({first}): out of memory? nothing was written"
            )
        return ClusterError(
            f"a task failed on a worker of the Dask cluster at {self.address}: "
            f"{type(exc).__name__}: {first} (is abs_engine {_version()} installed there?); "
            "nothing was written"
        )


def _version() -> str:
    from .. import __version__

    return __version__


def default_threads(n_workers: int) -> int:
    """Kernel threads per worker of a local cluster: this machine's cores shared evenly."""
    return max(1, (os.cpu_count() or 1) // max(1, n_workers))
