"""A/B timing of two checkouts of this repository, run in turn in fresh processes:

    git worktree add /tmp/ab_before e20d960
    python -m benchmarks.ab /tmp/ab_before .

For each tree: the first ``simulate`` of the bundled deal with an empty numba cache (its
``compile_seconds``), then one-thread CPU time per path on the bundled deal as shipped (memo on)
and with every path computed (memo off), the minimum over repeats of 20,000 paths, and
obligor-paths per CPU-second on the 10,000-obligor benchmark pool. Trees alternate, so both
see the same machine within a minute or two; on a VM whose speed drifts, compare only the
pairs of one run.

    python -m benchmarks.ab --together /tmp/ab_before .

runs the two trees at the same time instead, one process each on its own core (``threads=1``),
four rounds: each process compiles or loads its kernels (one temporary cache per tree, kept
over the rounds), waits for the other, then times the same three cases five times over,
interleaved (medians of one-thread CPU microseconds a path: the bundled deal as shipped, memo
off, a 1,000-obligor pool). On a VM whose speed drifts by tens of percent from minute to
minute, both trees then see the same machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

_CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import abs_engine as ae
assert ae.__file__.startswith(sys.argv[1]), ae.__file__
from benchmarks.pools import homogeneous_deal, pool_scenario
from benchmarks.scaling import memo_off
r = ae.simulate(None, "huake_mc", n_paths=1000, seed=1, progress=False, threads=1)
out = {"compile_s": r.compile_seconds}
sc = ae.load_scenario("huake_mc")
for label, s in (("memo_on_us", sc), ("memo_off_us", memo_off(sc))):
    best = 9e9
    for _ in range(3):
        t0 = time.process_time()
        ae.simulate(None, s, n_paths=20_000, seed=1, progress=False, threads=1)
        best = min(best, time.process_time() - t0)
    out[label] = best / 20_000 * 1e6
cd = homogeneous_deal(10_000)
ae.simulate(cd, pool_scenario(), n_paths=100, seed=1, progress=False, threads=1)
best = 9e9
for _ in range(3):
    t0 = time.process_time()
    ae.simulate(cd, pool_scenario(), n_paths=1_000, seed=1, progress=False, threads=1)
    best = min(best, time.process_time() - t0)
out["pool_10k_M_obligor_paths_per_cpu_s"] = 1_000 * 10_000 / best / 1e6
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
    if len(argv) != 2:
        print(__doc__)
        return 2
    for tree in argv:
        print(tree, measure(tree), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
