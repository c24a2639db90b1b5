"""The collateral draws alone, one thread: microseconds a path of the compiled
:data:`~abs_engine.kernels.collateral.collateral_draws` (factors, defaults, the defaulters'
booking; no waterfall, no metrics) on the benchmark pools.

    python -m benchmarks.draws            # 10,000 homogeneous obligors, 100,000 heterogeneous
    cd /tmp/wt && PYTHONPATH=/tmp/wt python /work/main/benchmarks/draws.py   # another tree

The stage timings of the eighth session (benchmarks/HISTORY.md) came from this script (kept
here from that session's one-off copy). Each figure is the best of five loops over the same
paths; this VM's speed moves by tens of percent within minutes, so compare trees alternately.
"""

from __future__ import annotations

import tempfile
import time

import numba

import abs_engine as ae
from abs_engine.compile.model import compile_model
from abs_engine.kernels.collateral import collateral_draws, collateral_scratch
from abs_engine.synthetic import write_synthetic
from benchmarks.pools import homogeneous_deal, pool_scenario


@numba.njit
def _loop(seed, n, model, scratch):
    s = 0
    for p in range(n):
        s += collateral_draws(seed, p, model, scratch)
    return s


def draws_us(cd: ae.CompiledDeal, sc, n_paths: int, repeats: int = 5) -> tuple[float, float]:
    """(µs a path of the draws on one thread, best of ``repeats``; defaulters a path)."""
    model = compile_model(cd, sc).kernel
    scratch = collateral_scratch(cd.n_obligors, model.class_threshold.shape[0],
                                 model.chol.shape[0], cd.n_periods,
                                 model.provider_threshold.shape[0])  # fmt: skip
    _loop(1, 2, model, scratch)
    best, n_def = 9e9, 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        n_def = _loop(1, n_paths, model, scratch)
        best = min(best, time.perf_counter() - t0)
    return best / n_paths * 1e6, n_def / n_paths


def main() -> int:
    # the heterogeneous pool built here, not by benchmarks.pools: an older tree's may lack it
    with tempfile.TemporaryDirectory() as tmp:
        files = write_synthetic(tmp, 100_000, heterogeneous=True)
        het = ae.compile_deal(ae.load_deal(files["deal"])), ae.load_scenario(files["scenario"])
    cases = [("10,000 homogeneous obligors (PD 2%)", homogeneous_deal(10_000), pool_scenario(),
              2_000), ("100,000 heterogeneous obligors", *het, 200)]  # fmt: skip
    for label, cd, sc, n in cases:
        us, n_def = draws_us(cd, sc, n)
        print(f"{label}: draws {us:,.1f} µs a path, {n_def:,.0f} defaulters a path", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
