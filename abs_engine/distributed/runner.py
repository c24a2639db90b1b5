"""Path blocks as Dask tasks: :class:`DaskRunner` computes a Monte Carlo run's block ranges on a
cluster's workers and hands their sums back for :func:`abs_engine.simulation.collect` to add
in block order — so the result is bitwise the same as one process's, for any number of
workers, threads or block ranges.

Each task is :func:`run_range_task` on one range of blocks: a pure function of (seed, global
path index) through the kernel bundles, so a task re-run after a worker died gives the same
sums. The deal's and the model's kernel bundles are scattered to the workers once per run
(content-hashed: a second run of the same deal and model ships nothing), not per task.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ..kernels.bundles import BlockSums, RunSpec, frozen
from ..simulation import OutputShape, RunJob, numba_threads, run_range
from .cluster import ClusterError

__all__ = ["ClusterError", "DaskRunner", "run_range_task"]

#: one kernel launch at a time in a worker process (numba's workqueue threading layer does not
#: allow concurrent launches; each launch uses all the threads it was given anyway)
_KERNEL_LOCK = threading.Lock()

#: ranges per worker a run is cut into by default: enough to balance the load and to lose
#: little when a worker dies, few enough that the per-task overhead stays small
RANGES_PER_WORKER = 4
#: blocks (of 1,024 paths) per task, at most, by default
MAX_TASK_BLOCKS = 256


def run_range_task(
    first: int,
    n_blocks: int,
    spec: RunSpec,
    model: Any,
    deal: Any,
    shape: OutputShape,
    jit: bool,
    threads: int | None,
) -> BlockSums:
    """One Dask task: :func:`abs_engine.simulation.run_range` on a worker, with ``threads``
    numba threads (None: the worker's default). The bundles arrive as the worker
    deserialised them and are made read-only again (views, no copy), so the kernels keep the
    one signature they were compiled (and cached) for."""
    model, deal = frozen(model), frozen(deal)
    spec = frozen(spec)
    with _KERNEL_LOCK, numba_threads(threads):
        return run_range(first, n_blocks, spec, model, deal, shape, jit)


class DaskRunner:
    """Runs Monte Carlo path blocks as tasks on a ``distributed.Client``'s cluster.

    threads : numba threads per task (None: the worker's default, all its cores);
    task_blocks : blocks (of 1,024 paths) per task (None: about
        :data:`RANGES_PER_WORKER` tasks per worker, at most :data:`MAX_TASK_BLOCKS` blocks).
    """

    def __init__(self, client: Any, threads: int | None = None, task_blocks: int | None = None):
        self.client = client
        self.threads = threads
        self.task_blocks = task_blocks

    def __repr__(self) -> str:
        t, b = self.threads, self.task_blocks
        return f"DaskRunner({self.address!r}, threads={t}, task_blocks={b})"

    @property
    def address(self) -> str:
        return str(getattr(self.client.scheduler, "address", "?"))

    def n_workers(self) -> int:
        """Workers the scheduler knows now (at least 1)."""
        info = self.client.scheduler_info(n_workers=-1)
        return max(1, len(info.get("workers", {})))

    def blocks_per_task(self, job: RunJob) -> int:
        if self.task_blocks is not None:
            return self.task_blocks
        per = -(-job.n_blocks // (RANGES_PER_WORKER * self.n_workers()))
        return max(1, min(MAX_TASK_BLOCKS, per))

    def submit(self, job: RunJob, path_out: np.ndarray) -> Iterator[tuple[int, BlockSums]]:
        """Submit every range of ``job`` now; return an iterator of (first block, sums) as the
        tasks finish. ``path_out`` is filled by :func:`abs_engine.simulation.collect`."""
        try:
            model, deal = self.client.scatter([job.model, job.deal], broadcast=True, hash=True)
            futures = {
                self.client.submit(
                    run_range_task, first, nb, job.spec, model, deal, job.shape, job.jit,
                    self.threads, pure=True, retries=2,
                ): first
                for first, nb in job.ranges(self.blocks_per_task(job))
            }  # fmt: skip
        except (OSError, concurrent.futures.CancelledError) as exc:
            raise self._lost(exc) from exc
        return self._finished(futures, (model, deal))

    def _finished(
        self, futures: dict[Any, int], scattered: tuple[Any, ...]
    ) -> Iterator[tuple[int, BlockSums]]:
        """(first block, sums) as tasks finish. ``scattered`` holds the run's scattered
        bundles until the run is collected: data released while tasks still need it is lost
        (Dask cannot recompute scattered data)."""
        from distributed import as_completed

        try:
            for fut in as_completed(list(futures)):
                yield futures.pop(fut), fut.result()
        except (OSError, concurrent.futures.CancelledError) as exc:
            raise self._lost(exc) from exc
        finally:
            for fut in futures:  # an interrupted run: nothing left computing for it
                fut.cancel()
            del scattered

    def map_calls(
        self, shared: Any, calls: Sequence[tuple[Callable[..., Any], tuple, dict[str, Any]]]
    ) -> list[Any]:
        """``[fn(shared, *args, **kwargs) for fn, args, kwargs in calls]``, each call a task;
        ``shared`` (e.g. a CompiledDeal) is scattered to the workers once, not per task."""
        futures: list[Any] = []
        try:
            (ref,) = self.client.scatter([shared], broadcast=True, hash=True)
            futures = [
                self.client.submit(fn, ref, *args, pure=False, retries=2, **kwargs)
                for fn, args, kwargs in calls
            ]
            return list(self.client.gather(futures))  # ``ref`` held until all are in
        except (OSError, concurrent.futures.CancelledError) as exc:
            raise self._lost(exc) from exc
        finally:
            for fut in futures:
                fut.cancel()

    def _lost(self, exc: BaseException) -> ClusterError:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ClusterError(
            f"lost the Dask cluster at {self.address} during the run ({first}); nothing was "
            "written: run the command again once the scheduler is back"
        )


def default_threads(n_workers: int) -> int:
    """numba threads per worker of a local cluster: this machine's cores shared evenly."""
    return max(1, (os.cpu_count() or 1) // max(1, n_workers))
