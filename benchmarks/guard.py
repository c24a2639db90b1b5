"""Performance regression guard: ``python -m benchmarks --check``.

Absolute times depend on the machine, so the guard compares ratios: the vectorised-NumPy
twin's time over the engine's, on the same paths of the same model, with the engine on one
thread as NumPy is (so the core count does not enter). A kernel change that slows the engine
lowers the ratio whatever the machine. The sizes are those of the quick run's ``numpy``
section (100,000 paths of the bundled deal; 2,000 paths of 1,000 obligors).

The three timings of a ratio are taken in rounds, one right after the other (NumPy, the engine
computing every path, the engine as shipped), and a ratio is the median of the rounds' ratios:
this VM's speed drifts by 20-40% over minutes, and timing each side in a block of its own
(as the guard did before 2026-11-29) let that drift into the ratios.

The guard fails (exit 1) when a ratio falls below ``1 - TOLERANCE`` of the stored baseline
(``benchmarks/results/baseline.json``, written by ``--write-baseline``: the median of three
measurements). It takes about 30 s after compilation and is not part of the unit tests.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from .report import _atomic
from .suite import bench_numpy_ratio, machine

TOLERANCE = 0.30
#: rounds of the interleaved timings behind each ratio (their median)
ROUNDS = 5


def measure(repeats: int = ROUNDS) -> dict[str, float]:
    """The guarded ratios (NumPy seconds / one-thread engine seconds), medians of
    ``repeats`` interleaved rounds (:func:`benchmarks.suite.bench_numpy_ratio`)."""
    small = bench_numpy_ratio(100_000, repeats, threads=(1,))
    large = bench_numpy_ratio(2_000, repeats, n_obligors=1_000, threads=(1,))
    return {
        "numpy_over_engine_1thread_8_obligors": small["ratio_1thread"],
        "numpy_over_engine_1thread_8_obligors_as_shipped": small["ratio_memo_1thread"],
        "numpy_over_engine_1thread_1000_obligors": large["ratio_1thread"],
    }


def write_baseline(path: Path, repeats: int = ROUNDS, runs: int = 3) -> dict:
    """Store the guarded ratios, each the median of ``runs`` measurements (one measurement's
    ratios moved by up to 25% from one minute to the next on this VM)."""
    measured = [measure(repeats) for _ in range(runs)]
    ratios = {k: statistics.median(m[k] for m in measured) for k in measured[0]}
    doc = {"machine": machine(), "tolerance": TOLERANCE, "ratios": ratios}
    _atomic(path, lambda tmp: tmp.write_text(json.dumps(doc, indent=2)))
    return doc


def check(path: Path, repeats: int = ROUNDS) -> int:
    """0 when every ratio is at least (1 - tolerance) of the baseline's, else 1; 2 when no
    baseline is stored."""
    if not path.is_file():
        print(f"{path}: no baseline stored; write one with --write-baseline")
        return 2
    base = json.loads(path.read_text())
    now = measure(repeats)
    missing = sorted(set(base["ratios"]) - set(now))
    if missing:
        print(
            f"{path}: the baseline guards {missing}, which this version does not measure; "
            "write a new one with --write-baseline"
        )
        return 2
    tol = float(base.get("tolerance", TOLERANCE))
    failed = False
    print(f"{'ratio':<50} {'baseline':>9} {'now':>9} {'change':>8}")
    for name, ref in base["ratios"].items():
        cur = now[name]
        change = cur / ref - 1.0
        bad = cur < (1.0 - tol) * ref
        failed |= bad
        flag = "  FAIL" if bad else ""
        print(f"{name:<50} {ref:>9.2f} {cur:>9.2f} {change:>+8.0%}{flag}")
    m = base.get("machine", {})
    print(
        f"baseline from commit {m.get('commit', '?')} on {m.get('processor', '?')}; "
        f"fails when a ratio falls more than {tol:.0%}"
    )
    return 1 if failed else 0
