"""Where a cold compile goes: ``python -m benchmarks.compile_profile [TREE] [--top N]``.

Runs the first ``simulate`` of the bundled deal (1,000 paths) in a fresh process on ``TREE``
(default: this checkout) with an empty numba cache, listening to numba's compile events
(``numba.core.event``, "numba:compile"), and prints the compile time and the functions that
took longest, exclusive (their own compile, callees compiled on the way left out) and
inclusive, with their signatures. ``NUMBA_OPT`` and the other numba variables of the
environment pass through, so ``NUMBA_OPT=1 python -m benchmarks.compile_profile`` measures
the optimisation level's share. It compiles in one process
(``ABS_ENGINE_COMPILE_PROCESSES=1`` unless the environment sets it), so that every function's
compile is seen. On an older commit: ``git worktree add /tmp/old REV`` and ``python -m
benchmarks.compile_profile /tmp/old``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

_CHILD = r"""
import collections, sys, time
sys.path.insert(0, sys.argv[1])
from numba.core import event
stack, incl, excl = [], collections.defaultdict(float), collections.defaultdict(float)

class Listener(event.Listener):
    def on_start(self, ev):
        d = ev.data["dispatcher"].py_func.__qualname__
        stack.append([f"{d} {str(ev.data['args'])[:60]}", time.perf_counter(), 0.0])

    def on_end(self, ev):
        name, t0, child = stack.pop()
        dt = time.perf_counter() - t0
        incl[name] += dt
        excl[name] += dt - child
        if stack:
            stack[-1][2] += dt

event.register("numba:compile", Listener())
import abs_engine as ae
assert ae.__file__.startswith(sys.argv[1]), ae.__file__
r = ae.simulate(None, "huake_mc", n_paths=1000, seed=1, progress=False)
print(f"first simulate compiled in {r.compile_seconds:.1f} s")
print(" exclusive  inclusive  function (signature)")
for k, v in sorted(excl.items(), key=lambda kv: -kv[1])[: int(sys.argv[2])]:
    print(f"{v:9.2f}s {incl[k]:9.2f}s  {k}")
"""


def main(argv: list[str]) -> int:
    top = 15
    if "--top" in argv:
        i = argv.index("--top")
        top = int(argv[i + 1])
        argv = argv[:i] + argv[i + 2 :]
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print(__doc__)
        return 2
    tree = os.path.abspath(argv[0] if argv else ".")
    with tempfile.TemporaryDirectory() as cache:
        # one process, so every function's compile shows (a cold compile otherwise compiles
        # the block kernel's callees but the waterfall in a second process: kernel_compile)
        env = {"ABS_ENGINE_COMPILE_PROCESSES": "1", **os.environ, "NUMBA_CACHE_DIR": cache}
        return subprocess.run([sys.executable, "-c", _CHILD, tree, str(top)], env=env,
                              cwd=tree, check=False).returncode  # fmt: skip


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
