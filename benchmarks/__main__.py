"""Monte Carlo performance benchmarks: ``python -m benchmarks [--quick] [--out FILE]``.

Measures, on this machine, medians over repeats (after compilation):
  1. the bundled 8-obligor deal end to end (collateral + waterfall + metrics), paths/s, with
     the no-default memo on (deterministic prepayment) and off (stochastic prepayment);
  2. a 10,000-obligor pool through collateral simulation and waterfall, obligor-paths/s;
  3. the numba kernels against the vectorised-NumPy implementation of the same model
     (benchmarks/numpy_model.py), in the same run: the speed ratio;
  4. peak resident memory of a 10,000,000-path run with keep_paths=False (subprocess);
  5. first-call compile time with an empty numba cache, and the start-up with the cache
     filled (subprocesses).
Timings are not asserted anywhere; the results go to a JSON file and the table printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

import abs_engine as ae
from abs_engine.compile.model import compile_model
from abs_engine.schema.stochastic import MonteCarloScenario

from .numpy_model import simulate_numpy
from .pools import homogeneous_deal, pool_scenario
from .scaling import floor_uniforms_per_s, sweep_paths, sweep_pool_size

ROOT = Path(__file__).resolve().parent


def _median_time(fn, repeats: int) -> tuple[float, float, float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


def _subprocess_json(code: str, env: dict[str, str] | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
        cwd=ROOT.parent,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _memo_off(sc: MonteCarloScenario) -> MonteCarloScenario:
    """The scenario with a negligible prepayment volatility: every path then runs the full
    waterfall (the no-default memo needs deterministic prepayment)."""
    return MonteCarloScenario.model_validate(
        {**sc.model_dump(), "prepayment": {"cpr": 0.0, "volatility": 1e-9}}
    )


def bench_bundled(paths: int, repeats: int) -> dict:
    cd = ae.compile_deal(ae.load_deal())
    sc = ae.load_scenario("huake_mc")
    stoch = _memo_off(sc)
    out = {}
    for label, scen in (("memo_on", sc), ("memo_off", stoch)):
        ae.simulate(cd, scen, n_paths=2_000, progress=False)  # compile / warm
        med, lo, hi = _median_time(
            lambda s=scen: ae.simulate(cd, s, n_paths=paths, progress=False), repeats
        )
        out[label] = {
            "paths": paths,
            "median_s": med,
            "min_s": lo,
            "max_s": hi,
            "paths_per_s": paths / med,
        }
    return out


def bench_large_pool(n_obligors: int, paths: int, repeats: int) -> dict:
    cd = homogeneous_deal(n_obligors)
    sc = pool_scenario()
    ae.simulate(cd, sc, n_paths=64, progress=False)
    med, lo, hi = _median_time(lambda: ae.simulate(cd, sc, n_paths=paths, progress=False), repeats)
    return {
        "obligors": n_obligors,
        "paths": paths,
        "median_s": med,
        "min_s": lo,
        "max_s": hi,
        "obligor_paths_per_s": n_obligors * paths / med,
        "paths_per_s": paths / med,
    }


def bench_numpy_ratio(paths: int, repeats: int, n_obligors: int | None = None) -> dict:
    if n_obligors is None:
        cd = ae.compile_deal(ae.load_deal())
        sc = ae.load_scenario("huake_mc")
    else:
        cd = homogeneous_deal(n_obligors)
        sc = pool_scenario()
    stoch = _memo_off(sc)
    model = compile_model(cd, stoch)
    ae.simulate(cd, stoch, n_paths=2_000, progress=False)
    idx = np.arange(paths)
    simulate_numpy(cd, model, 1, idx[:1000])
    t_np, _, _ = _median_time(lambda: simulate_numpy(cd, model, 1, idx), repeats)
    t_nb, _, _ = _median_time(
        lambda: ae.simulate(cd, stoch, n_paths=paths, seed=1, progress=False), repeats
    )
    t_nb1, _, _ = _median_time(
        lambda: ae.simulate(cd, stoch, n_paths=paths, seed=1, threads=1, progress=False), repeats
    )
    # the engine as shipped: the no-default memo on (deterministic prepayment)
    ae.simulate(cd, sc, n_paths=2_000, progress=False)
    t_memo, _, _ = _median_time(
        lambda: ae.simulate(cd, sc, n_paths=paths, seed=1, progress=False), repeats
    )
    return {
        "obligors": cd.n_obligors,
        "paths": paths,
        "numpy_s": t_np,
        "numba_s": t_nb,
        "numba_1thread_s": t_nb1,
        "ratio": t_np / t_nb,
        "ratio_1thread": t_np / t_nb1,
        "numba_memo_s": t_memo,
        "ratio_memo": t_np / t_memo,
        "note": "memo off (stochastic prepayment with negligible volatility) so both do every path",
    }


def bench_memory(paths: int) -> dict:
    code = f"""
import json, resource, time, abs_engine as ae
ae.simulate(n_paths=2000, progress=False)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
ae.simulate(n_paths={paths}, keep_paths=False, progress=False)
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = {{"paths": {paths}, "peak_rss_mib": peak / 1024, "rss_before_mib": base / 1024,
       "growth_mib": (peak - base) / 1024}}
print(json.dumps({{**out, "seconds": dt}}))
"""
    return _subprocess_json(code)


def bench_compile() -> dict:
    code = """
import json, time
t0 = time.perf_counter()
import abs_engine as ae
t1 = time.perf_counter()
ae.simulate(n_paths=1000, progress=False)
t2 = time.perf_counter()
ae.run_deterministic()
t3 = time.perf_counter()
out = {"import_s": t1 - t0, "first_simulate_s": t2 - t1}
print(json.dumps({**out, "first_deterministic_s": t3 - t2}))
"""
    with tempfile.TemporaryDirectory() as cache:
        env = {"NUMBA_CACHE_DIR": cache}
        cold = _subprocess_json(code, env)
        warm = _subprocess_json(code, env)
    return {"cold": cold, "cached": warm}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="smaller sizes (under a minute after compiling)"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "montecarlo.json")
    ap.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["memory", "compile", "numpy", "large_pool", "bundled", "scaling", "floor"],
    )
    args = ap.parse_args(argv)
    q = args.quick
    res: dict = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "numba_threads": numba.get_num_threads(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": numba.__version__,
        },
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "quick": q,
    }
    if "bundled" not in args.skip:
        res["bundled_deal"] = bench_bundled(200_000 if q else 1_000_000, 3 if q else 5)
    if "large_pool" not in args.skip:
        res["large_pool"] = bench_large_pool(10_000, 2_000 if q else 20_000, 3)
    if "numpy" not in args.skip:
        res["numpy_vs_numba"] = bench_numpy_ratio(20_000 if q else 100_000, 3)
        res["numpy_vs_numba_1000"] = bench_numpy_ratio(500 if q else 2_000, 3, n_obligors=1_000)
    if "scaling" not in args.skip:
        sizes = [8, 100, 1_000, 10_000] if q else [8, 100, 1_000, 10_000, 100_000]
        res["scaling_pool_size"] = sweep_pool_size(sizes, 1_000 if q else 5_000)
        counts = [1_000, 10_000, 100_000] if q else [1_000, 10_000, 100_000, 1_000_000, 10_000_000]
        res["scaling_paths"] = sweep_paths(counts)
    if "floor" not in args.skip:
        floor = floor_uniforms_per_s(10_000, 500 if q else 4_000)
        res["hardware_floor"] = {"uniforms_per_s": floor}
        if "large_pool" in res:
            res["hardware_floor"]["engine_share"] = res["large_pool"]["obligor_paths_per_s"] / floor
    if "memory" not in args.skip:
        res["memory_keep_paths_false"] = bench_memory(1_000_000 if q else 10_000_000)
    if "compile" not in args.skip:
        res["compile"] = bench_compile()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.skip and args.out.is_file():  # a partial run updates the stored results
        res = {**json.loads(args.out.read_text()), **res}
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=2))
    tmp.replace(args.out)
    _print(res)
    print(f"\nwritten to {args.out}")
    return 0


def _print(res: dict) -> None:
    m = res["machine"]
    print(f"{m['processor']}, {m['cpus']} cpus, {m['numba_threads']} numba threads, ", end="")
    print(f"numba {m['numba']}")
    for k, v in res.get("bundled_deal", {}).items():
        rate = f"{v['paths_per_s']:,.0f} paths/s"
        print(f"bundled deal ({k}): {rate} (median of {v['paths']:,} paths: {v['median_s']:.3f} s)")
    if "large_pool" in res:
        v = res["large_pool"]
        rate = f"{v['obligor_paths_per_s'] / 1e6:,.0f} million obligor-paths/s"
        print(f"{v['obligors']:,}-obligor pool: {rate} ({v['paths_per_s']:,.0f} paths/s)")
    for key in ("numpy_vs_numba", "numpy_vs_numba_1000"):
        if key in res:
            v = res[key]
            ratios = f"{v['ratio']:.1f}x (all threads), {v['ratio_1thread']:.1f}x (1 thread)"
            ratios += f", {v.get('ratio_memo', float('nan')):.1f}x with the no-default memo"
            where = f"{v['obligors']:,} obligors, {v['paths']:,} paths"
            print(f"numba vs vectorised NumPy ({where}): {ratios}")
    if "memory_keep_paths_false" in res:
        v = res["memory_keep_paths_false"]
        mem = f"+{v['growth_mib']:,.1f} MiB over {v['rss_before_mib']:,.0f} MiB"
        print(f"peak RSS, {v['paths']:,} paths, keep_paths=False: {mem} ({v['seconds']:.1f} s)")
    if "scaling_pool_size" in res:
        v = res["scaling_pool_size"]
        sizes = ", ".join(
            f"{r['obligors']:,}: {r['obligor_paths_per_s'] / 1e6:,.0f}M" for r in v["rows"]
        )
        print(f"pool size (obligor-paths/s end to end) {sizes}")
        print(
            f"  fitted exponent in obligors: collateral {v['exponent_collateral']:.2f}, "
            f"end to end {v['exponent_end_to_end']:.2f}"
        )
    if "scaling_paths" in res:
        v = res["scaling_paths"]
        rates = ", ".join(f"{r['paths']:,}: {r['paths_per_s']:,.0f}/s" for r in v["rows"])
        print(f"paths (bundled deal) {rates}; fitted exponent {v['exponent']:.2f}")
    if "hardware_floor" in res:
        v = res["hardware_floor"]
        share = f", engine at {v['engine_share']:.0%} of it" if "engine_share" in v else ""
        print(f"hardware floor: {v['uniforms_per_s'] / 1e6:,.0f}M uniforms/s{share}")
    if "compile" in res:
        c = res["compile"]
        cold, warm = c["cold"]["first_simulate_s"], c["cached"]["first_simulate_s"]
        print(f"first simulate: {cold:.1f} s with an empty cache, {warm:.2f} s cached")


if __name__ == "__main__":
    sys.exit(main())
