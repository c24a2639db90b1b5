"""Scaling sweeps and the hardware floor.

* pool size: homogeneous pools of N obligors at a fixed path count, collateral simulation
  alone (the collateral kernel in ``prange`` over blocks, no waterfall), end to end, and the
  vectorised-NumPy twin end to end;
* path count: the bundled deal from 10^3 paths up, end to end, the engine as shipped and
  computing every path, beside the NumPy twin;
* hardware floor: the rate at which this machine draws one uniform per obligor-path with the
  engine's own counter-based generator — the ceiling of a one-uniform-per-obligor design —
  and the engine's throughput as a share of it.

Cost is fitted as time = a · size^b on a log-log scale, least squares over pools of at least
1,000 obligors and runs of at least 10,000 paths (below them the fixed cost of a call, about
8 ms, and the per-path waterfall dominate); b near 1 means linear.
"""

from __future__ import annotations

import os
import time
from unittest import mock

import numpy as np
from numba import njit, prange

import abs_engine as ae
from abs_engine.compile.model import compile_model
from abs_engine.kernels.collateral import collateral_path, collateral_scratch
from abs_engine.kernels.rng import path_key, uniform
from abs_engine.schema.stochastic import MonteCarloScenario

from .numpy_model import simulate_numpy
from .pools import homogeneous_deal, pool_scenario
from .progress import measured

__all__ = [
    "floor_uniforms_per_s",
    "memo_off",
    "timed",
    "numpy_seconds",
    "sweep_paths",
    "sweep_pool_size",
]


@njit(parallel=True, cache=True)
def _uniform_floor(n_paths, n_obligors, seed):
    out = np.zeros(n_paths)
    for p in prange(n_paths):
        key = path_key(seed, p, 4)
        s = 0.0
        for i in range(n_obligors):
            s += uniform(key, i)
        out[p] = s
    return out.sum()


def floor_uniforms_per_s(n_obligors: int = 10_000, n_paths: int = 4_000, repeats: int = 5) -> float:
    """Uniforms per second drawn with the engine's generator (all numba threads), median over
    ``repeats``."""
    _uniform_floor(4, 16, 1)
    med = timed(lambda: _uniform_floor(n_paths, n_obligors, 1), repeats)[0]
    return n_paths * n_obligors / med


@njit(parallel=True, cache=True)
def _collateral_only(n_paths, seed, n_obligors, n_classes, n_factors, n_supports, model):
    """Collateral simulation alone over ``n_paths`` paths (``model``: the kernel's
    :class:`~abs_engine.kernels.bundles.CollateralModel`), blocks of 256 in ``prange``."""
    block = 256
    n_blocks = (n_paths + block - 1) // block
    n_t = model.agg_balance.shape[0]
    total = np.zeros(n_blocks)
    for b in prange(n_blocks):
        scratch = collateral_scratch(n_obligors, n_classes, n_factors, n_t, n_supports)
        for p in range(b * block, min((b + 1) * block, n_paths)):
            total[b] += collateral_path(seed, p, model, scratch)
    return total.sum()


def _fit(sizes: list[float], times: list[float], min_size: float) -> float:
    """Exponent b of time = a · size^b, least squares on log-log over the sizes of at least
    ``min_size`` (below it fixed per-call and per-path costs dominate)."""
    pts = [(s, t) for s, t in zip(sizes, times, strict=True) if s >= min_size]
    if len(pts) < 2:
        pts = list(zip(sizes, times, strict=True))[-2:]
    x, y = np.log([s for s, _ in pts]), np.log([t for _, t in pts])
    return float(np.polyfit(x, y, 1)[0])


def timed(fn, repeats: int) -> tuple[float, float, float]:
    """Median, min and max seconds of ``fn()`` over ``repeats`` calls (each one measurement
    on the section's progress bar, counted outside its timer)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        measured()
    return float(np.median(times)), min(times), max(times)


def warm(cd: ae.CompiledDeal, sc: MonteCarloScenario, n_paths: int = 2_000) -> None:
    """Compile or load the kernels a timed run of ``cd`` will use: a run of ``n_paths``
    paths, then one of 64 with the block kernel specialised to the deal's structure forced
    (``ABS_ENGINE_SPECIALISE=1``), after which every run of the deal uses it (once compiled,
    ``simulate`` takes it for any run; unforced, only for runs of
    ``simulation.SPECIALISE_MIN_PATHS`` or more)."""
    ae.simulate(cd, sc, n_paths=n_paths, progress=False)
    with mock.patch.dict(os.environ, {"ABS_ENGINE_SPECIALISE": "1"}):
        ae.simulate(cd, sc, n_paths=64, progress=False)


def memo_off(sc: MonteCarloScenario) -> MonteCarloScenario:
    """The scenario with a negligible prepayment volatility: every path then runs the full
    waterfall (the no-default memo needs deterministic prepayment). Of ``sc``'s own class, so
    also for another checkout's package (``benchmarks.ab --inprocess``)."""
    return type(sc).model_validate(
        {**sc.model_dump(), "prepayment": {"cpr": 0.0, "volatility": 1e-9}}
    )


def numpy_seconds(
    cd: ae.CompiledDeal, sc: MonteCarloScenario, paths: int, chunk: int = 250_000
) -> float:
    """Seconds the vectorised-NumPy twin takes for ``paths`` paths, in chunks of about
    ``chunk`` obligor-paths (how a quant keeps its [paths, obligors, periods] arrays in
    memory)."""
    m = compile_model(cd, sc)
    step = max(1, chunk // cd.n_obligors)
    t0 = time.perf_counter()
    for lo in range(0, paths, step):
        simulate_numpy(cd, m, 1, np.arange(lo, min(lo + step, paths)))
    return time.perf_counter() - t0


def _collateral_args(cd: ae.CompiledDeal, sc: MonteCarloScenario) -> tuple:
    m = compile_model(cd, sc)
    return (cd.n_obligors, m.n_classes, m.chol.shape[0], len(cd.support_names), m.kernel)


def _t(prefix: str, t: tuple[float, float, float], repeats: int) -> dict:
    return {
        f"{prefix}_s": t[0],
        f"{prefix}_min_s": t[1],
        f"{prefix}_max_s": t[2],
        f"{prefix}_repeats": repeats,
    }


def sweep_pool_size(
    sizes: list[int],
    paths: int,
    repeats: int = 3,
    numpy_obligor_paths: float = 2e6,
    numpy_repeats: int = 1,
) -> dict:
    """Homogeneous pools of each size, every path computed (memo off): collateral kernel
    alone and end to end (wall clock of the whole ``simulate`` call), medians over
    ``repeats``; the NumPy twin end to end on min(paths, numpy_obligor_paths / N) paths,
    median over ``numpy_repeats`` (it is the slow one)."""
    rows = []
    sc = memo_off(pool_scenario())
    for n in sizes:
        cd = homogeneous_deal(n)
        args = _collateral_args(cd, sc)
        _collateral_only(8, 1, *args)
        coll = timed(lambda a=args: _collateral_only(paths, 1, *a), repeats)
        warm(cd, sc, 64)
        e2e = timed(lambda c=cd: ae.simulate(c, sc, n_paths=paths, progress=False), repeats)
        np_paths = int(min(paths, max(20, numpy_obligor_paths // n)))
        numpy_seconds(cd, sc, min(np_paths, 20))  # warm
        t_np = timed(lambda c=cd, k=np_paths: numpy_seconds(c, sc, k), numpy_repeats)
        rows.append(
            {
                "obligors": n,
                "paths": paths,
                **_t("collateral", coll, repeats),
                **_t("end_to_end", e2e, repeats),
                "obligor_paths_per_s": n * paths / e2e[0],
                "collateral_obligor_paths_per_s": n * paths / coll[0],
                "numpy_paths": np_paths,
                **_t("numpy", t_np, numpy_repeats),
                "numpy_obligor_paths_per_s": n * np_paths / t_np[0],
                "ratio_numpy": (t_np[0] / np_paths) / (e2e[0] / paths),
            }
        )
    obligors = [r["obligors"] for r in rows]
    return {
        "note": "every path computed (no-default memo off); NumPy twin on fewer paths",
        "rows": rows,
        "exponent_collateral": _fit(obligors, [r["collateral_s"] for r in rows], 1_000),
        "exponent_end_to_end": _fit(obligors, [r["end_to_end_s"] for r in rows], 1_000),
        "exponent_numpy": _fit(obligors, [r["numpy_s"] / r["numpy_paths"] for r in rows], 1_000),
    }


def sweep_paths(
    path_counts: list[int], repeats: int = 3, numpy_max: int = 100_000, numpy_repeats: int = 1
) -> dict:
    """The bundled deal at each path count: the collateral kernel alone, and end to end (wall
    clock of ``simulate``) as shipped (no-default memo on) and computing every path; the NumPy
    twin (every path) up to ``numpy_max`` paths. Medians over ``repeats`` (one run from 10^6
    paths; ``numpy_repeats`` for NumPy)."""
    cd = ae.compile_deal(ae.load_deal())
    sc = ae.load_scenario("huake_mc")
    off = memo_off(sc)
    for s in (sc, off):
        warm(cd, s)
    args = _collateral_args(cd, sc)
    _collateral_only(8, 1, *args)
    numpy_seconds(cd, off, 1_000)
    rows = []
    for n in path_counts:
        reps = repeats if n < 1_000_000 else 1
        coll = timed(lambda k=n: _collateral_only(k, 1, *args), reps)
        on = timed(lambda k=n: ae.simulate(cd, sc, n_paths=k, progress=False), reps)
        every = timed(lambda k=n: ae.simulate(cd, off, n_paths=k, progress=False), reps)
        row = {
            "paths": n,
            **_t("collateral", coll, reps),
            "collateral_paths_per_s": n / coll[0],
            **_t("end_to_end", on, reps),
            "paths_per_s": n / on[0],
            **_t("memo_off", every, reps),
            "memo_off_paths_per_s": n / every[0],
        }
        if n <= numpy_max:
            nr = numpy_repeats if n < 1_000_000 else 1
            t = timed(lambda k=n: numpy_seconds(cd, off, k), nr)
            row.update(**_t("numpy", t, nr), numpy_paths_per_s=n / t[0])
        rows.append(row)
    counts = [r["paths"] for r in rows]
    return {
        "rows": rows,
        "exponent": _fit(counts, [r["end_to_end_s"] for r in rows], 10_000),
        "exponent_memo_off": _fit(counts, [r["memo_off_s"] for r in rows], 10_000),
        "exponent_collateral": _fit(counts, [r["collateral_s"] for r in rows], 10_000),
    }
