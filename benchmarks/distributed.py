"""The ``distributed`` section: Monte Carlo path blocks as Dask tasks, measured in one run.

* throughput: the bundled 8-obligor deal and a 10,000-obligor pool, paths per second from
  ``res.seconds`` (submit to collected; best of the repeats), in one process on all numba
  threads and on a ``local:1`` and a ``local:2`` cluster (or the cluster given with
  ``--cluster``), each warmed up by one untimed run first (a worker loads the numba cache on
  its first task); the cluster's tranche results are asserted bitwise equal to the single
  process's;
* overhead per task: the same run cut into tasks of 1, 2, 4 … 64 blocks of 1,024 paths on
  the last cluster; a least-squares line time = a + b × tasks gives b, the wall seconds each
  task adds to a run, and a × workers / paths the compute per path of one worker; from them
  the smallest task (blocks) whose overhead, b × workers in a worker's time, is under 5% of
  its compute;
* a projection (not a measurement) to 16 and 64 workers from those two figures, its
  assumptions written into the result (:data:`ASSUMPTIONS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from pandas.testing import assert_frame_equal

import abs_engine as ae
from abs_engine.distributed import DaskRunner, connect
from abs_engine.distributed.runner import MAX_TASK_BLOCKS, RANGES_PER_WORKER
from abs_engine.simulation import BLOCK_SIZE

from .pools import homogeneous_deal, pool_scenario
from .progress import measured
from .scaling import warm

__all__ = ["ASSUMPTIONS", "project", "run"]

SEED = 20_240_601
#: overhead under this share of a task's compute counts as small
OVERHEAD_SHARE = 0.05
#: the most blocks per task the overhead sweep tries
MAX_SWEEP_BLOCKS = 64
#: workers projected to, and the run sizes (paths) projected for each deal
PROJECT_WORKERS = (16, 64)
PROJECT_PATHS = {"bundled": 100_000_000, "large_pool": 1_000_000}
#: paths of the throughput runs, blocks of the overhead sweep, repeats (best of)
SIZES = {
    True: {"paths": {"bundled": 262_144, "large_pool": 4_096},
           "sweep_blocks": {"bundled": 128, "large_pool": 16}, "repeats": 3, "sweep_repeats": 2},
    False: {"paths": {"bundled": 2_097_152, "large_pool": 32_768},
            "sweep_blocks": {"bundled": 512, "large_pool": 64}, "repeats": 3, "sweep_repeats": 3},
}  # fmt: skip
ASSUMPTIONS = [
    "a projection from the figures measured here, not a measurement",
    "each worker computes as fast as a measured one (worker_us_per_path: the same numba "
    "threads per worker), and compute is linear in workers",
    "tasks cut by the runner's default: about 4 tasks per worker, at most 256 blocks of "
    "1,024 paths; a worker runs its tasks one after another, so a run takes "
    "ceil(tasks / workers) rounds of one task's compute (one task per worker at least: with "
    "fewer tasks than workers the others idle)",
    "the overhead per task measured here (wall seconds a task adds to a run) is paid "
    "serially by the client and scheduler and overlaps the workers' compute: it caps the "
    "task rate at 1 / overhead tasks per second whatever the worker count (conservative: a "
    "part paid on the workers would shrink with more of them)",
    "time = max(ceil(tasks / workers) x task_blocks x 1,024 x seconds per path, tasks x "
    "overhead per task); network transfer ignored (measured on one machine), the deal's "
    "bundles shipped once per run",
]


def _cases() -> dict[str, tuple[str, Any, Any]]:
    """The two deals: label, compiled deal, scenario."""
    return {
        "bundled": ("bundled 8-obligor deal", ae.compile_deal(ae.load_deal()),
                    ae.load_scenario("huake_mc")),
        "large_pool": ("10,000-obligor pool", homogeneous_deal(10_000), pool_scenario()),
    }  # fmt: skip


def _best(run: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    """The smallest ``res.seconds`` of ``repeats`` runs (seconds), all of them, and the last
    result."""
    times, res = [], None
    for _ in range(repeats):
        res = run()
        times.append(res.seconds)
        measured()
    return min(times), times, res


def _simulate(case: tuple[str, Any, Any], n_paths: int, client: Any = None) -> Any:
    _, cd, sc = case
    return ae.simulate(cd, sc, n_paths=n_paths, seed=SEED, progress=False, client=client)


def _rate(n_paths: int, best: float, times: list[float]) -> dict:
    return {"paths": n_paths, "best_s": best, "all_s": times, "paths_per_s": n_paths / best}


def _single_process(cases: dict, sizes: dict, log: Callable) -> tuple[dict, dict]:
    """One process on all numba threads: the throughput of each deal and its last result."""
    rates, results = {}, {}
    for name, case in cases.items():
        n = sizes["paths"][name]
        warm(case[1], case[2], min(n, 2_048))  # compile / warm
        best, times, res = _best(lambda c=case, k=n: _simulate(c, k), sizes["repeats"])
        rates[name], results[name] = _rate(n, best, times), res
        log(f"  one process, {name}: {n / best:,.0f} paths/s")
    return rates, results


def _on_cluster(runner: DaskRunner, cases: dict, sizes: dict, local: dict, log: Callable) -> dict:
    """The cluster's throughput of each deal, after one untimed warm-up run; its tranche
    results asserted bitwise equal to the single process's (``local``: the results)."""
    workers = runner.n_workers()
    out = {}
    for name, case in cases.items():
        n = sizes["paths"][name]
        _simulate(case, n, runner)  # warm-up: each worker loads the kernels on its first task
        best, times, res = _best(lambda c=case, k=n: _simulate(c, k, runner), sizes["repeats"])
        assert_frame_equal(res.tranches, local[name].tranches, check_exact=True)
        blocks = runner.task_blocks or _default_blocks(n, workers)
        out[name] = {**_rate(n, best, times), "workers": workers,
                     "threads_per_worker": runner.threads, "task_blocks": blocks}  # fmt: skip
        log(f"  {name}: {n / best:,.0f} paths/s on {workers} workers (identical)")
    return out


def _default_blocks(n_paths: int, workers: int) -> int:
    """Blocks per task the runner chooses by default for ``n_paths`` on ``workers``."""
    blocks = -(-n_paths // BLOCK_SIZE)
    return max(1, min(MAX_TASK_BLOCKS, -(-blocks // (RANGES_PER_WORKER * workers))))


def sweep_cuts(n_blocks: int, workers: int) -> list[int]:
    """Blocks per task the overhead sweep tries: 1, 2, 4 … while every worker gets a task."""
    return [2**i for i in range(7) if 2**i <= MAX_SWEEP_BLOCKS and n_blocks // 2**i >= workers]


def n_measurements(quick: bool, cluster: str | None = None) -> int:
    """The section's timed runs (its progress bar's total): the repeats of each deal in one
    process and on each cluster, and the overhead sweep on the last (a ``tcp://`` cluster's
    workers are not known before it is reached: counted as one)."""
    sizes = SIZES[quick]
    labels = [cluster] if cluster else ["local:1", "local:2"]
    last = labels[-1]
    workers = int(last.split(":")[1]) if last.startswith("local:") else 1
    runs = len(sizes["paths"]) * sizes["repeats"] * (1 + len(labels))
    for blocks in sizes["sweep_blocks"].values():
        runs += len(sweep_cuts(blocks, workers)) * sizes["sweep_repeats"]
    return runs


def _sweep(runner: DaskRunner, case: tuple, n_blocks: int, repeats: int) -> list[dict]:
    """The run of ``n_blocks`` blocks cut into tasks of 1, 2, 4 … blocks (while every worker
    gets a task), repeats interleaved so drift falls on every cut alike: the best seconds of
    each."""
    cuts = sweep_cuts(n_blocks, runner.n_workers())
    runners = {k: runner.with_task_blocks(k) for k in cuts}
    times: dict[int, list[float]] = {k: [] for k in cuts}
    for _ in range(repeats):
        for k in cuts:
            times[k].append(_simulate(case, n_blocks * BLOCK_SIZE, runners[k]).seconds)
            measured()
    return [{"task_blocks": k, "tasks": -(-n_blocks // k), "best_s": min(times[k]),
             "all_s": times[k]} for k in cuts]  # fmt: skip


def fit_overhead(rows: list[dict], n_paths: int, workers: int) -> dict:
    """Least squares time = a + b × tasks over the sweep's best times: b the overhead per task
    (ms of the run's wall time) with its standard error, a × workers / paths the compute per
    path of one worker (µs; a also holds the run's fixed cost, so it errs high). The overhead
    is ``resolved`` when b exceeds three standard errors (a line through a few points)."""
    n = np.array([r["tasks"] for r in rows], dtype=float)
    t = np.array([r["best_s"] for r in rows])
    b, a = np.polyfit(n, t, 1)
    dof = len(n) - 2
    sxx = float(((n - n.mean()) ** 2).sum())
    se = math.sqrt(float(((t - a - b * n) ** 2).sum()) / dof / sxx) if dof > 0 else math.nan
    return {
        "overhead_ms_per_task": 1e3 * b,
        "overhead_se_ms": 1e3 * se,
        "resolved": bool(b > 3 * se),
        "intercept_s": float(a),
        "worker_us_per_path": 1e6 * a * workers / n_paths,
    }


def threshold(overhead_ms: float, worker_us_per_path: float, workers: int) -> dict:
    """The smallest task (blocks of 1,024 paths) whose overhead, ``overhead_ms`` × workers of
    a worker's time, is under :data:`OVERHEAD_SHARE` of its compute (blocks × 1,024 ×
    ``worker_us_per_path``)."""
    block_ms = BLOCK_SIZE * worker_us_per_path / 1e3
    blocks = max(1, math.floor(overhead_ms * workers / (OVERHEAD_SHARE * block_ms)) + 1)
    return {
        "worker_ms_per_block": block_ms,
        "overhead_worker_ms_per_task": overhead_ms * workers,
        "blocks_for_5pct": blocks,
        "paths_for_5pct": blocks * BLOCK_SIZE,
    }


def _overheads(runner: DaskRunner, cases: dict, sizes: dict, log: Callable) -> dict:
    """The overhead sweep and fit for each deal; a deal whose fit does not resolve the overhead
    takes the bundled deal's for its threshold (a task's result, mostly histograms, is of
    about the same size whatever the pool)."""
    workers = runner.n_workers()
    out: dict = {"workers": workers, "threads_per_worker": runner.threads}
    for name, case in cases.items():
        blocks = sizes["sweep_blocks"][name]
        rows = _sweep(runner, case, blocks, sizes["sweep_repeats"])
        fit = fit_overhead(rows, blocks * BLOCK_SIZE, workers)
        source = name if fit["resolved"] or name == "bundled" else "bundled"
        used = max(0.0, (fit if source == name else out["bundled"])["overhead_ms_per_task"])
        out[name] = {"blocks": blocks, "paths": blocks * BLOCK_SIZE, "rows": rows, **fit,
                     "overhead_from": source, "overhead_used_ms": used,
                     **threshold(used, fit["worker_us_per_path"], workers)}  # fmt: skip
        log(f"  overhead, {name}: {fit['overhead_ms_per_task']:.1f} ± "
            f"{fit['overhead_se_ms']:.1f} ms per task; under 5% from "
            f"{out[name]['blocks_for_5pct']} blocks per task")  # fmt: skip
    return out


def project(worker_us_per_path: float, overhead_ms: float, n_paths: int, workers: int) -> dict:
    """Projected seconds and paths per second of ``n_paths`` paths on ``workers`` workers
    under :data:`ASSUMPTIONS`; efficiency is the ideal (paths × compute per path / workers)
    over the projected time; ``min_task_blocks_for_rate``: the smallest task that keeps the
    scheduler's task rate from binding at this worker count."""
    c, b = worker_us_per_path / 1e6, overhead_ms / 1e3
    blocks = -(-n_paths // BLOCK_SIZE)
    k = _default_blocks(n_paths, workers)
    tasks = -(-blocks // k)
    compute = math.ceil(tasks / workers) * k * BLOCK_SIZE * c
    scheduler = tasks * b
    seconds = max(compute, scheduler)
    return {
        "workers": workers, "paths": n_paths, "task_blocks": k, "tasks": tasks,
        "compute_s": compute, "scheduler_s": scheduler, "seconds": seconds,
        "paths_per_s": n_paths / seconds, "efficiency": n_paths * c / workers / seconds,
        "bound": "scheduler" if scheduler > compute else "compute",
        "min_task_blocks_for_rate": math.ceil(workers * b / (BLOCK_SIZE * c)),
    }  # fmt: skip


def _projection(overhead: dict) -> dict:
    rows = [
        {"deal": name, **project(o["worker_us_per_path"], o["overhead_used_ms"], paths, w)}
        for name, paths in PROJECT_PATHS.items()
        if (o := overhead.get(name))
        for w in PROJECT_WORKERS
    ]
    return {"assumptions": ASSUMPTIONS, "rows": rows}


def run(quick: bool, cluster: str | None = None, log: Callable = print) -> dict:
    """The section: throughput in one process and on ``local:1`` and ``local:2`` (or on
    ``cluster`` alone), the overhead sweep on the last cluster, the projection."""
    sizes = SIZES[quick]
    cases = _cases()
    single, results = _single_process(cases, sizes, log)
    out: dict = {"seed": SEED, "repeats": sizes["repeats"], "single_process": single,
                 "clusters": {}}  # fmt: skip
    labels = [cluster] if cluster else ["local:1", "local:2"]
    for label in labels:
        log(f"  cluster {label} ...")
        with connect(label) as runner:
            out["clusters"][label] = _on_cluster(runner, cases, sizes, results, log)
            if label == labels[-1]:
                out["overhead"] = {"cluster": label, **_overheads(runner, cases, sizes, log)}
    for name, rec in single.items():
        for c in out["clusters"].values():
            c[name]["ratio"] = c[name]["paths_per_s"] / rec["paths_per_s"]
    out["labels"] = {name: case[0] for name, case in cases.items()}
    out["obligors"] = {name: case[1].n_obligors for name, case in cases.items()}
    out["identical"] = True  # asserted for every cluster run above
    out["note"] = (
        "paths/s from res.seconds (submit to collected), best of the repeats; the deal and "
        "model are shipped to the workers once per cluster (DaskRunner keeps them); overhead "
        "and projection: see fit_overhead and ASSUMPTIONS"
    )
    out["projection"] = _projection(out["overhead"])
    return out
