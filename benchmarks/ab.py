"""A/B timing of two checkouts of this repository, run in turn in fresh processes:

    git worktree add /tmp/ab_before e20d960
    python -m benchmarks.ab /tmp/ab_before .

For each tree: the first ``simulate`` of the bundled deal with an empty numba cache (its
``compile_seconds``), then one-thread CPU time per path on the bundled deal as shipped (memo on)
and with every path computed (memo off), the minimum over repeats of 20,000 paths, and
obligor-paths per CPU-second on the 10,000-obligor benchmark pool. Trees alternate, so both
see the same machine within a minute or two; on a VM whose speed drifts, compare only the
pairs of one run.
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


def measure(tree: str) -> str:
    """One fresh process on ``tree`` with an empty numba cache; its printed figures."""
    tree = os.path.abspath(tree)
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        res = subprocess.run([sys.executable, "-c", _CHILD, tree], env=env, cwd=tree,
                             capture_output=True, text=True, check=True)  # fmt: skip
    return res.stdout.strip()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    for tree in argv:
        print(tree, measure(tree), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
