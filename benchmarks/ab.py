"""A/B timing of two checkouts of this repository, run in turn in fresh processes:

    git worktree add /tmp/ab_before e20d960
    python -m benchmarks.ab /tmp/ab_before .

For each tree: the first ``simulate`` of the bundled deal with an empty numba cache (its
``compile_seconds``), then one-thread CPU time per path on the bundled deal as shipped (memo on)
and with every path computed (memo off), the minimum over repeats of 20,000 paths, and
obligor-paths per CPU-second on the 10,000-obligor benchmark pool and on the 100,000-obligor
heterogeneous pool of ``abs-engine synth --heterogeneous`` (2,048 paths, each call's
``compile_model`` of the 100,000 obligors included: 0.05-0.1 s, 0.2-0.4 s before the eighth
session). Trees alternate, so both
see the same machine within a minute or two; on a VM whose speed drifts, compare only the
pairs of one run.

    python -m benchmarks.ab --together /tmp/ab_before .

runs the two trees at the same time instead, one process each on its own core (``threads=1``),
four rounds: each process compiles or loads its kernels (one temporary cache per tree, kept
over the rounds), waits for the other, then times the same three cases five times over,
interleaved (medians of one-thread CPU microseconds a path: the bundled deal as shipped, memo
off, a 1,000-obligor pool). On a VM whose speed drifts by tens of percent from minute to
minute, both trees then see the same machine (but not the same core: the two cores of this VM
can differ by 10-30% for minutes, which the rounds do not cancel).

    python -m benchmarks.ab --inprocess /tmp/ab_before .

runs both trees in one process instead: each tree's ``abs_engine`` is copied into a temporary
folder as ``abs_engine_a`` / ``abs_engine_b`` (its imports are relative), both compile there
(minutes, empty caches), then 20 rounds time the same cases one right after the other,
alternating which goes first (wall clock of ``simulate`` on one thread: the bundled deal as
shipped, memo off, a 1,000-obligor pool). Then all of it again with the two trees' places
swapped: a package's place alone moved its times by 15-20% (the same tree as a and b, b/a
1.15-1.20 in two runs on 2026-11-29), a bias that multiplies, so B/A is the geometric mean of
the two orders' ratios of medians. Both copies read the second tree's bundled deals; the
benchmark pool is built by this file's tree.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

_CHILD = r"""
import sys, tempfile, time
sys.path.insert(0, sys.argv[1])
import abs_engine as ae
assert ae.__file__.startswith(sys.argv[1]), ae.__file__
from abs_engine.synthetic import write_synthetic
from benchmarks.pools import homogeneous_deal, pool_scenario
from benchmarks.scaling import memo_off

def best_cpu(cd, sc, n):
    # one-thread CPU seconds of the fastest of three runs of n paths, after a warm-up
    ae.simulate(cd, sc, n_paths=16, seed=1, progress=False, threads=1)
    best = 9e9
    for _ in range(3):
        t0 = time.process_time()
        ae.simulate(cd, sc, n_paths=n, seed=1, progress=False, threads=1)
        best = min(best, time.process_time() - t0)
    return best

r = ae.simulate(None, "huake_mc", n_paths=1000, seed=1, progress=False, threads=1)
out = {"compile_s": r.compile_seconds}
sc = ae.load_scenario("huake_mc")
for label, s in (("memo_on_us", sc), ("memo_off_us", memo_off(sc))):
    out[label] = best_cpu(None, s, 20_000) / 20_000 * 1e6
out["pool_10k_M_obligor_paths_per_cpu_s"] = (
    1_000 * 10_000 / best_cpu(homogeneous_deal(10_000), pool_scenario(), 1_000) / 1e6)
# built here, not by benchmarks.pools: an older tree's benchmarks may not have it
with tempfile.TemporaryDirectory() as tmp:
    files = write_synthetic(tmp, 100_000, heterogeneous=True)
    cd = ae.compile_deal(ae.load_deal(files["deal"]))
    het = ae.load_scenario(files["scenario"])
out["het_100k_M_obligor_paths_per_cpu_s"] = 2_048 * 100_000 / best_cpu(cd, het, 2_048) / 1e6
print(out)
"""


_TOGETHER = r"""
import os, sys, time
sys.path.insert(0, sys.argv[1])
import abs_engine as ae
assert ae.__file__.startswith(sys.argv[1]), ae.__file__
from benchmarks.pools import homogeneous_deal, pool_scenario
from benchmarks.scaling import memo_off
sc = ae.load_scenario("huake_mc")
cases = [("memo_on_us", None, sc, 100_000), ("memo_off_us", None, memo_off(sc), 50_000),
         ("pool_1k_us", homogeneous_deal(1_000), pool_scenario(), 4_000)]
for _, d, s, _n in cases:
    ae.simulate(d, s, n_paths=1000, seed=1, progress=False, threads=1)
open(sys.argv[2] + ".ready", "w").close()
while not os.path.exists(sys.argv[3] + ".ready"):
    time.sleep(0.05)
times = {}
for _ in range(5):
    for name, d, s, n in cases:
        t0 = time.process_time()
        ae.simulate(d, s, n_paths=n, seed=1, progress=False, threads=1)
        times.setdefault(name, []).append((time.process_time() - t0) / n * 1e6)
print({k: round(sorted(v)[2], 3) for k, v in times.items()})
"""


#: the repository root of this file's tree (its benchmarks.pools builds the benchmark pool)
_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_INPROCESS = r"""
import importlib, json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
from benchmarks.pools import homogeneous_doc, pool_scenario_doc
from benchmarks.scaling import memo_off
rounds = int(sys.argv[2])
pkgs = [importlib.import_module(n) for n in ("abs_engine_a", "abs_engine_b")]

def cases(pkg):
    mcs = importlib.import_module(pkg.__name__ + ".schema.stochastic").MonteCarloScenario
    parse_deal = importlib.import_module(pkg.__name__ + ".schema").parse_deal
    sc = pkg.load_scenario("huake_mc")
    off = memo_off(sc)
    pool = pkg.compile_deal(parse_deal(homogeneous_doc(1_000)))
    return [("memo_on", None, sc, 50_000), ("memo_off", None, off, 30_000),
            ("pool_1k", pool, mcs.model_validate(pool_scenario_doc()), 2_000)]

runs = [cases(p) for p in pkgs]
for pkg, cs in zip(pkgs, runs):
    for _, d, s, _n in cs:
        pkg.simulate(d, s, n_paths=1_000, seed=1, threads=1, progress=False)
us = {}
for r in range(rounds):
    order = (0, 1) if r % 2 == 0 else (1, 0)
    for k in range(len(runs[0])):
        for i in order:
            name, d, s, n = runs[i][k]
            t0 = time.perf_counter()
            pkgs[i].simulate(d, s, n_paths=n, seed=1, threads=1, progress=False)
            us.setdefault((name, i), []).append((time.perf_counter() - t0) / n * 1e6)
out = {}
for name, *_ in runs[0]:
    a, b = us[(name, 0)], us[(name, 1)]
    out[name] = [statistics.median(a), statistics.median(b),
                 statistics.median(y / x for x, y in zip(a, b))]
print(json.dumps(out))
"""


def _inprocess_run(trees: list[str], rounds: int) -> dict[str, list[float]]:
    """One process with ``trees[0]`` as package a and ``trees[1]`` as b: per case, the median
    microseconds a path of a and of b and the median of the rounds' b/a ratios."""
    with tempfile.TemporaryDirectory() as tmp:
        for tree, name in zip(trees, ("abs_engine_a", "abs_engine_b"), strict=True):
            shutil.copytree(os.path.join(tree, "abs_engine"), os.path.join(tmp, name),
                            ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        for kind in ("waterfalls", "scenarios"):
            shutil.copytree(os.path.join(trees[1], kind), os.path.join(tmp, kind))
        env = {**os.environ, "PYTHONPATH": tmp}
        res = subprocess.run([sys.executable, "-c", _INPROCESS, _HERE, str(rounds)], env=env,
                             cwd=tmp, check=True, capture_output=True, text=True)  # fmt: skip
    return json.loads(res.stdout.strip().splitlines()[-1])


def inprocess(trees: list[str], rounds: int = 20) -> None:
    """Both trees in one process, alternating, then again with the packages' places swapped
    (see the module docstring)."""
    trees = [os.path.abspath(t) for t in trees]
    first = _inprocess_run(trees, rounds)
    swapped = _inprocess_run(trees[::-1], rounds)
    print(f"A {trees[0]}\nB {trees[1]}")
    for name, (a_us, b_us, ratio) in first.items():
        b2_us, a2_us, ratio2 = swapped[name]
        # a package's place biases its time by a factor k: ratio = k·B/A, ratio2 = k·A/B
        both = math.sqrt(ratio / ratio2)
        print(f"{name:9s} B/A {both:.3f}  (B as b: {ratio:.3f}, B as a: {1 / ratio2:.3f}; "
              f"us a path A {a_us:.3f} {a2_us:.3f}, B {b_us:.3f} {b2_us:.3f})")  # fmt: skip


def together(trees: list[str], rounds: int = 4) -> None:
    """Both trees timed at the same time, ``rounds`` times (see the module docstring)."""
    trees = [os.path.abspath(t) for t in trees]
    with tempfile.TemporaryDirectory() as tmp:  # caches kept over the rounds
        for r in range(rounds):
            procs = []
            for i, tree in enumerate(trees):
                env = {**os.environ, "NUMBA_CACHE_DIR": os.path.join(tmp, f"cache{i}")}
                mine, other = (os.path.join(tmp, f"r{r}_{k}") for k in (i, 1 - i))
                procs.append(subprocess.Popen(
                    [sys.executable, "-c", _TOGETHER, tree, mine, other], env=env, cwd=tree,
                    stdout=subprocess.PIPE, text=True))  # fmt: skip
            for tree, proc in zip(trees, procs, strict=True):
                out, _ = proc.communicate()
                print(tree, out.strip(), flush=True)


def measure(tree: str) -> str:
    """One fresh process on ``tree`` with an empty numba cache; its printed figures."""
    tree = os.path.abspath(tree)
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        res = subprocess.run([sys.executable, "-c", _CHILD, tree], env=env, cwd=tree,
                             capture_output=True, text=True, check=True)  # fmt: skip
    return res.stdout.strip()


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "--together":
        together(argv[1:])
        return 0
    if len(argv) == 3 and argv[0] == "--inprocess":
        inprocess(argv[1:])
        return 0
    if len(argv) != 2:
        print(__doc__)
        return 2
    for tree in argv:
        print(tree, measure(tree), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
