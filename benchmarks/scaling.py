"""Scaling sweeps and the hardware floor.

* pool size: homogeneous pools of N obligors at a fixed path count, collateral simulation
  alone (the collateral kernel in ``prange`` over blocks, no waterfall) and end to end;
* path count: the bundled deal from 10^3 paths up, end to end;
* hardware floor: the rate at which this machine draws one uniform per obligor-path with the
  engine's own counter-based generator — the ceiling of a one-uniform-per-obligor design —
  and the engine's throughput as a share of it.

Cost is fitted as time = a · size^b on a log-log scale (least squares on the larger sizes,
where fixed overheads no longer dominate); b near 1 means linear.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit, prange

import abs_engine as ae
from abs_engine.compile.model import compile_model
from abs_engine.kernels.collateral import collateral_path, collateral_scratch
from abs_engine.kernels.rng import path_key, uniform
from abs_engine.simulation import model_args

from .pools import homogeneous_deal, pool_scenario

__all__ = ["floor_uniforms_per_s", "sweep_paths", "sweep_pool_size"]


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


def floor_uniforms_per_s(n_obligors: int = 10_000, n_paths: int = 2_000) -> float:
    """Uniforms per second drawn with the engine's generator (all numba threads)."""
    _uniform_floor(4, 16, 1)
    t0 = time.perf_counter()
    _uniform_floor(n_paths, n_obligors, 1)
    return n_paths * n_obligors / (time.perf_counter() - t0)


@njit(parallel=True, cache=True)
def _collateral_only(n_paths, seed, n_obligors, n_classes, n_factors, n_supports, *model):
    """Collateral simulation alone over ``n_paths`` paths (``model``: the kernel's model
    arguments, :func:`abs_engine.simulation.model_args`), blocks of 256 in ``prange``."""
    block = 256
    n_blocks = (n_paths + block - 1) // block
    n_t = model[-1].shape[0]
    total = np.zeros(n_blocks)
    for b in prange(n_blocks):
        scratch = collateral_scratch(n_obligors, n_classes, n_factors, n_t, n_supports)
        for p in range(b * block, min((b + 1) * block, n_paths)):
            total[b] += collateral_path(seed, p, *model, *scratch)
    return total.sum()


def _fit(sizes: list[float], times: list[float]) -> float:
    """Exponent b of time = a · size^b over the larger half of the sizes."""
    k = max(2, len(sizes) // 2 + 1)
    x, y = np.log(sizes[-k:]), np.log(times[-k:])
    return float(np.polyfit(x, y, 1)[0])


def sweep_pool_size(sizes: list[int], paths: int) -> dict:
    rows = []
    sc = pool_scenario()
    for n in sizes:
        cd = homogeneous_deal(n)
        m = compile_model(cd, sc)
        args = (cd.n_obligors, m.n_classes, m.chol.shape[0], len(cd.support_names), *model_args(m))
        _collateral_only(8, 1, *args)
        t0 = time.perf_counter()
        _collateral_only(paths, 1, *args)
        t_coll = time.perf_counter() - t0
        ae.simulate(cd, sc, n_paths=64, progress=False)
        t_e2e = ae.simulate(cd, sc, n_paths=paths, progress=False).seconds
        rows.append(
            {
                "obligors": n,
                "paths": paths,
                "collateral_s": t_coll,
                "end_to_end_s": t_e2e,
                "obligor_paths_per_s": n * paths / t_e2e,
            }
        )
    return {
        "rows": rows,
        "exponent_collateral": _fit(
            [r["obligors"] for r in rows], [r["collateral_s"] for r in rows]
        ),
        "exponent_end_to_end": _fit(
            [r["obligors"] for r in rows], [r["end_to_end_s"] for r in rows]
        ),
    }


def sweep_paths(path_counts: list[int]) -> dict:
    cd = ae.compile_deal(ae.load_deal())
    sc = ae.load_scenario("huake_mc")
    ae.simulate(cd, sc, n_paths=2_000, progress=False)
    rows = []
    for n in path_counts:
        t = ae.simulate(cd, sc, n_paths=n, progress=False).seconds
        rows.append({"paths": n, "end_to_end_s": t, "paths_per_s": n / t})
    return {
        "rows": rows,
        "exponent": _fit([r["paths"] for r in rows], [r["end_to_end_s"] for r in rows]),
    }
