"""The benchmark sections. Each returns a JSON-ready dict of timings measured in this process
(or in a subprocess where a clean process is the point: memory, compile time).

Sections (``SECTIONS``, in run order):
  bundled     the bundled 8-obligor deal end to end (collateral + waterfall + metrics),
              paths/s, no-default memo on (as shipped) and off (every path computed);
  large_pool  a 10,000-obligor pool through collateral simulation and waterfall, and the
              100,000-obligor heterogeneous pool of ``abs-engine synth --heterogeneous``;
  numpy       the numba kernels (all threads and one) against the vectorised-NumPy twin of
              the same model (``numpy_model.py``) in the same run: 8 and 1,000 obligors;
  scaling     pool size 8 … 100,000 obligors and path count 10^3 … 10^7: collateral alone,
              end to end and the NumPy twin, with fitted exponents (``scaling.py``);
  floor       the generator's hardware floor: one uniform per obligor-path;
  peer        FinancePy on the same homogeneous pool: agreement, standard-error calibration
              and speed (``peer_financepy.py``);
  memory      each run's own peak resident memory, keep_paths=False, by path count, for the
              bundled deal and a 10,000-obligor pool (a fresh subprocess);
  compile     first-call compile time with an empty numba cache, and with it filled;
  distributed path blocks as Dask tasks: throughput in one process and on local clusters
              (or ``--cluster``), overhead per task, a projection to more workers
              (``distributed.py``);
  precision   the cost of equal precision (seconds × variance) of senior A's expected loss,
              as issued and AAA-sized, crude against each importance-sampling method
              (``precision.py``).
Timings are wall clock, medians over repeats after compilation, with min and max; nothing is
asserted. Each section shows a progress bar on stderr over its measurements
(:mod:`benchmarks.progress`).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numba
import numpy as np

import abs_engine as ae

from . import distributed, peer_financepy, precision
from . import progress as bars
from .pools import heterogeneous_deal, homogeneous_deal, pool_scenario
from .scaling import (
    floor_uniforms_per_s,
    memo_off,
    numpy_seconds,
    sweep_paths,
    sweep_pool_size,
    timed,
    warm,
)

ROOT = Path(__file__).resolve().parent
SECTIONS = [
    "bundled",
    "large_pool",
    "numpy",
    "scaling",
    "floor",
    "peer",
    "memory",
    "compile",
    "distributed",
    "precision",
]


def machine() -> dict:
    """Where the numbers come from: platform, usable cores, threads, versions, commit."""
    commit = _commit()
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    versions = {}
    for dist in ("abs-engine", "numba", "numpy", "scipy", "pandas", "financepy", "matplotlib"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "platform": platform.platform(),
        "processor": _cpu_name(),
        "cpus": cpus,
        "numba_threads": numba.get_num_threads(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "versions": versions,
        "commit": commit,
    }


def _commit() -> str:
    """Short commit, ``-dirty`` when tracked files differ (the benchmark's own results
    excepted)."""

    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT.parent)
        except OSError:
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results")
    return f"{head}-dirty" if head and dirty else head


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _stats(
    n_paths: int, t: tuple[float, float, float], repeats: int, n_obligors: int | None = None
) -> dict:
    med, lo, hi = t
    out = {"paths": n_paths, "median_s": med, "min_s": lo, "max_s": hi, "repeats": repeats}
    out["paths_per_s"] = n_paths / med
    if n_obligors is not None:
        out["obligors"] = n_obligors
        out["obligor_paths_per_s"] = n_obligors * n_paths / med
    return out


def bench_bundled(paths: int, repeats: int) -> dict:
    cd = ae.compile_deal(ae.load_deal())
    sc = ae.load_scenario("huake_mc")
    out = {}
    for label, scen in (("memo_on", sc), ("memo_off", memo_off(sc))):
        warm(cd, scen)  # compile / warm
        t = timed(lambda s=scen: ae.simulate(cd, s, n_paths=paths, progress=False), repeats)
        out[label] = _stats(paths, t, repeats, cd.n_obligors)
    return out


def _bench_pool(cd: ae.CompiledDeal, sc, paths: int, repeats: int) -> dict:
    """``simulate`` of ``paths`` paths end to end on all threads, after a warm-up run."""
    warm(cd, sc, 64)
    t = timed(lambda: ae.simulate(cd, sc, n_paths=paths, progress=False), repeats)
    return _stats(paths, t, repeats, cd.n_obligors)


def bench_large_pool(n_obligors: int, paths: int, repeats: int) -> dict:
    return _bench_pool(homogeneous_deal(n_obligors), pool_scenario(), paths, repeats)


def bench_heterogeneous_pool(n_obligors: int, paths: int, repeats: int) -> dict:
    """The heterogeneous pool of :func:`~benchmarks.pools.heterogeneous_deal`."""
    return {**_bench_pool(*heterogeneous_deal(n_obligors), paths, repeats), "heterogeneous": True}


def bench_numpy_ratio(
    paths: int,
    repeats: int,
    n_obligors: int | None = None,
    threads: tuple[int | None, ...] = (None, 1),
) -> dict:
    """NumPy twin against the engine on the same paths, both computing every path
    (``numba_s``, ``ratio``), and against the engine as shipped, no-default memo on
    (``numba_memo_s``, ``ratio_memo``); for each entry of ``threads`` (None: all threads,
    keys as above; 1: keys with ``_1thread``). Timed in ``repeats`` rounds, each timing NumPy
    and then every engine configuration one right after the other: seconds are medians over
    the rounds, a ratio the median of the rounds' ratios (this VM's speed drifts over
    minutes; timing each side in a block of its own let the drift into the ratios)."""
    if n_obligors is None:
        cd = ae.compile_deal(ae.load_deal())
        sc = ae.load_scenario("huake_mc")
    else:
        cd = homogeneous_deal(n_obligors)
        sc = pool_scenario()
    off = memo_off(sc)
    numpy_seconds(cd, off, min(paths, 1_000))
    configs = [(label, scen, th) for label, scen in (("numba", off), ("numba_memo", sc))
               for th in threads]  # fmt: skip
    for scen in (off, sc):
        warm(cd, scen)
    t_np: list[float] = []
    t_eng: list[list[float]] = [[] for _ in configs]
    for _ in range(repeats):
        t_np.append(timed(lambda: numpy_seconds(cd, off, paths), 1)[0])
        for times, (_, scen, th) in zip(t_eng, configs, strict=True):
            times.append(timed(lambda s=scen, k=th: ae.simulate(
                cd, s, n_paths=paths, seed=1, threads=k, progress=False), 1)[0])  # fmt: skip
    out: dict = {"obligors": cd.n_obligors, "paths": paths, "numpy_s": float(np.median(t_np))}
    for times, (label, _, th) in zip(t_eng, configs, strict=True):
        suffix = "" if th is None else f"_{th}thread"
        out[f"{label}{suffix}_s"] = float(np.median(times))
        out[f"ratio{label[5:]}{suffix}"] = float(np.median(np.array(t_np) / np.array(times)))
    out["repeats"] = repeats
    out["note"] = (
        "medians (wall clock of the whole call) over rounds that time NumPy and the engine one "
        "right after the other; ratios are medians of the rounds' ratios; memo off (stochastic "
        "prepayment with negligible volatility) so both do every path; NumPy runs on one core "
        "and computes no yields, histograms or cash-flow statistics, so the ratios understate "
        "the engine"
    )
    return out


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


def bench_memory(path_counts: list[int], pool_path_counts: list[int]) -> dict:
    """Peak resident memory of each run in a fresh process, ``keep_paths=False``: the bundled
    deal at ``path_counts`` and a 10,000-obligor pool at ``pool_path_counts``. On Linux the
    kernel's peak counter (VmHWM) is reset before each run, so a run's peak is its own;
    elsewhere ``ru_maxrss`` is the process's high-water mark since start (``method``)."""
    code = f"""
import json, os, resource, sys, time
from unittest import mock
import abs_engine as ae
from benchmarks.pools import homogeneous_deal, pool_scenario

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024

try:
    status("VmHWM")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    method = "VmHWM reset per run"
except (OSError, TypeError):
    method = "ru_maxrss since start"

def rss():
    return status("VmRSS") if method.startswith("VmHWM") else peak()

def peak():
    if method.startswith("VmHWM"):
        return status("VmHWM")
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 1024

def reset():
    if method.startswith("VmHWM"):
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")

out = {{"method": method, "rows": []}}
cases = [("bundled", ae.compile_deal(ae.load_deal()), ae.load_scenario("huake_mc"),
          {sorted(path_counts)!r}),
         ("10,000 obligors", homogeneous_deal(10_000), pool_scenario(),
          {sorted(pool_path_counts)!r})]
for label, cd, sc, counts in cases:
    ae.simulate(cd, sc, n_paths=500, progress=False)
    # the deal-specialised kernel compiled too: benchmarks.scaling.warm written out, since
    # importing that module compiles its own kernels into this process (+160 MiB, 30 s)
    with mock.patch.dict(os.environ, {{"ABS_ENGINE_SPECIALISE": "1"}}):
        ae.simulate(cd, sc, n_paths=64, progress=False)
    for n in counts:
        before = rss()
        reset()
        t0 = time.perf_counter()
        ae.simulate(cd, sc, n_paths=n, keep_paths=False, progress=False)
        dt = time.perf_counter() - t0
        out["rows"].append({{"deal": label, "obligors": cd.n_obligors, "paths": n,
                            "rss_before_mib": before, "peak_mib": peak(),
                            "growth_mib": peak() - before, "seconds": dt}})
print(json.dumps(out))
"""
    res = _subprocess_json(code)
    bars.measured()
    for deal in {r["deal"] for r in res["rows"]}:
        rows = [r for r in res["rows"] if r["deal"] == deal]
        res.setdefault("growth_largest_run_mib", {})[deal] = rows[-1]["growth_mib"]
        res.setdefault("growth_spread_mib", {})[deal] = max(r["growth_mib"] for r in rows) - min(
            r["growth_mib"] for r in rows
        )
    return res


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
        bars.measured()
        warm = _subprocess_json(code, env)
        bars.measured()
    return {"cold": cold, "cached": warm}


#: the sizes of the sections: bundled-deal repeats; pool sizes, NumPy repeats and path
#: counts of the scaling sweeps; by quick (True) or full (False)
BUNDLED_REPEATS = {True: 3, False: 5}
SCALING_SIZES = {True: [8, 100, 1_000, 10_000], False: [8, 100, 1_000, 10_000, 100_000]}
SCALING_NUMPY_REPEATS = {True: 1, False: 3}
SCALING_PATHS = {True: [10**k for k in range(3, 7)], False: [10**k for k in range(3, 8)]}
SCALING_NUMPY_MAX = {True: 100_000, False: 1_000_000}
#: repeats of the large-pool, NumPy-ratio and hardware-floor measurements
REPEATS = 3
FLOOR_REPEATS = 5


def _sweep_paths_measurements(q: bool) -> int:
    """Timed calls of :func:`sweep_paths` as :func:`run_sections` runs it."""
    n = 0
    for paths in SCALING_PATHS[q]:
        n += 3 * (REPEATS if paths < 1_000_000 else 1)  # collateral, memo on, memo off
        if paths <= SCALING_NUMPY_MAX[q]:
            n += SCALING_NUMPY_REPEATS[q] if paths < 1_000_000 else 1
    return n


def expected_measurements(name: str, quick: bool, cluster: str | None = None) -> int:
    """The measurements (timed calls, measuring subprocesses) section ``name`` takes at quick
    or full sizes: its progress bar's total. A count off by a few only misstates the bar's
    time remaining (its total grows when passed, and it completes when the section ends)."""
    q = quick
    if name == "bundled":
        return 2 * BUNDLED_REPEATS[q]  # memo on and off
    if name == "large_pool":
        return 2 * REPEATS  # homogeneous and heterogeneous
    if name == "numpy":
        # two pools: the NumPy twin, then memo off and on on all threads and on one
        return 2 * (REPEATS + 2 * 2 * REPEATS)
    if name == "scaling":
        per_size = 2 * REPEATS + SCALING_NUMPY_REPEATS[q]  # collateral, end to end, NumPy
        return len(SCALING_SIZES[q]) * per_size + _sweep_paths_measurements(q)
    if name == "floor":
        return FLOOR_REPEATS
    if name == "peer":
        return peer_financepy.n_measurements(q)
    if name == "memory":
        return 1  # one subprocess
    if name == "compile":
        return 2  # cold and cached, a subprocess each
    if name == "distributed":
        return distributed.n_measurements(q, cluster)
    if name == "precision":
        return precision.n_measurements(q)
    raise ValueError(f"unknown section {name!r}")


def run_sections(
    sections: list[str],
    quick: bool,
    log=print,
    cluster: str | None = None,
    progress: bool | None = False,
) -> dict:
    """Run ``sections`` (names from ``SECTIONS``) at quick or full sizes; ``cluster``
    (``local:N`` or ``tcp://HOST:PORT``): the distributed section's cluster instead of
    ``local:1`` and ``local:2``; ``progress``: a bar per section on stderr (True: at once;
    None: once a section is expected to take over a second; False: none)."""
    q = quick
    res: dict = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M:%S"), "quick": q}
    for name in SECTIONS:
        if name not in sections:
            continue
        log(f"[{time.strftime('%H:%M:%S')}] {name} ...")
        t0 = time.perf_counter()
        with bars.section(name, expected_measurements(name, q, cluster), progress):
            _run_section(res, name, q, cluster, log)
        res.setdefault("sections", {})[name] = {
            "date": res["date"],
            "commit": res["machine"]["commit"],
            "processor": res["machine"]["processor"],
            "cpus": res["machine"]["cpus"],
            "quick": q,
            "seconds": time.perf_counter() - t0,
        }
    return res


def _run_section(res: dict, name: str, q: bool, cluster: str | None, log) -> None:
    """Section ``name``'s measurements at quick (``q``) or full sizes, into ``res``."""
    if name == "bundled":
        res["bundled_deal"] = bench_bundled(200_000 if q else 1_000_000, BUNDLED_REPEATS[q])
    elif name == "large_pool":
        res["large_pool"] = bench_large_pool(10_000, 2_000 if q else 20_000, REPEATS)
        res["heterogeneous_pool"] = bench_heterogeneous_pool(
            100_000, 2_048 if q else 8_192, REPEATS
        )
    elif name == "numpy":
        res["numpy_vs_numba"] = bench_numpy_ratio(100_000 if q else 400_000, REPEATS)
        res["numpy_vs_numba_1000"] = bench_numpy_ratio(
            2_000 if q else 5_000, REPEATS, n_obligors=1_000
        )
    elif name == "scaling":
        res["scaling_pool_size"] = sweep_pool_size(
            SCALING_SIZES[q],
            4_000 if q else 10_000,
            repeats=REPEATS,
            numpy_obligor_paths=5e5 if q else 4e6,
            numpy_repeats=SCALING_NUMPY_REPEATS[q],
        )
        res["scaling_paths"] = sweep_paths(
            SCALING_PATHS[q],
            repeats=REPEATS,
            numpy_max=SCALING_NUMPY_MAX[q],
            numpy_repeats=SCALING_NUMPY_REPEATS[q],
        )
    elif name == "floor":
        floor = floor_uniforms_per_s(10_000, 2_000 if q else 4_000, FLOOR_REPEATS)
        res["hardware_floor"] = {"uniforms_per_s": floor, "repeats": FLOOR_REPEATS}
    elif name == "peer":
        res["peer_financepy"] = peer_financepy.run(q)
    elif name == "memory":
        res["memory_keep_paths_false"] = bench_memory(
            [10_000, 100_000, 1_000_000] if q else [10_000, 1_000_000, 10_000_000],
            [1_000, 10_000] if q else [1_000, 10_000, 100_000],
        )
    elif name == "compile":
        res["compile"] = bench_compile()
    elif name == "distributed":
        res["distributed"] = distributed.run(q, cluster, log)
    elif name == "precision":
        res["precision"] = precision.run(q, log)
