"""Performance benchmarks: ``python -m benchmarks [--quick] [--only S ...] [--skip S ...]``.

Runs the sections of :mod:`benchmarks.suite` (scaling in pool size and paths, the NumPy twin
and FinancePy measured in the same run, the hardware floor, memory, compile time, Dask
scale-out: ``--cluster local:N`` or ``tcp://HOST:PORT`` names its cluster), prints the
summary table and writes ``benchmarks/results/montecarlo.{json,parquet,md,png}``
(``quick.*`` with ``--quick``; ``--out`` names the JSON and the others sit beside it). A run
of some sections only updates the stored results of those sections. ``--check`` is the
performance regression guard (:mod:`benchmarks.guard`); nothing here is part of the unit
tests. Each section shows a progress bar over its measurements on stderr when stderr is a
terminal (``--progress``: also when it is not; ``--no-progress``: never).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from abs_engine.distributed import parse_cluster
from abs_engine.errors import InputError

from . import guard, report
from .progress import enabled as progress_enabled
from .suite import SECTIONS, machine, run_sections

ROOT = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (under two minutes)")
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results JSON (default benchmarks/results/montecarlo.json, or "
        "quick.json with --quick, so a quick run never replaces the full results)",
    )
    ap.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        metavar="SECTION",
        help=f"run only these sections ({', '.join(SECTIONS)})",
    )
    ap.add_argument("--skip", nargs="+", default=[], choices=SECTIONS, metavar="SECTION")
    ap.add_argument(
        "--cluster",
        default=None,
        help="the distributed section's cluster: local:N or tcp://HOST:PORT, measured "
        "instead of local:1 and local:2",
    )
    ap.add_argument(
        "--check",
        action="store_true",
        help="regression guard: NumPy/engine ratios against the stored baseline",
    )
    ap.add_argument(
        "--write-baseline",
        action="store_true",
        help="measure the guarded ratios and store them as the baseline",
    )
    ap.add_argument("--baseline", type=Path, default=ROOT / "results" / "baseline.json")
    ap.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar per section on stderr (default: when stderr is a terminal)",
    )
    ap.add_argument(
        "--render",
        action="store_true",
        help="measure nothing: rewrite the table, summary and chart from --out",
    )
    args = ap.parse_args(argv)
    args.out = args.out or ROOT / "results" / ("quick.json" if args.quick else "montecarlo.json")
    if args.render:
        res = json.loads(args.out.read_text())
        written = report.write_all(res, args.out)
        report.print_summary(res)
        print("written: " + ", ".join(str(p) for p in written))
        return 0
    if args.write_baseline:
        doc = guard.write_baseline(args.baseline)
        print(json.dumps(doc["ratios"], indent=2))
        print(f"written to {args.baseline}")
        return 0
    if args.check:
        return guard.check(args.baseline)
    sections = [s for s in (args.only or SECTIONS) if s not in args.skip]
    if args.cluster is not None:
        if "distributed" not in sections:
            ap.error("--cluster is for the distributed section, which this run skips")
        try:
            parse_cluster(args.cluster)
        except InputError as exc:
            ap.error(str(exc))
    partial = set(sections) != set(SECTIONS)
    old = json.loads(args.out.read_text()) if partial and args.out.is_file() else None
    if old is not None:
        # a partial run replaces its own sections in stored results of the same mode, taken
        # on the same machine; each section keeps its own date, commit and machine
        if old.get("quick", False) != args.quick:
            ap.error(f"{args.out} holds {'quick' if old.get('quick') else 'full'} results")
        here = machine()
        for key in ("processor", "cpus", "numba_threads"):
            if old["machine"].get(key) != here[key]:
                ap.error(
                    f"{args.out} was measured on another machine ({key}: "
                    f"{old['machine'].get(key)} here {here[key]}); run all sections"
                )
    t0 = time.perf_counter()
    res = run_sections(
        sections, args.quick, cluster=args.cluster, progress=progress_enabled(args.progress)
    )
    took = time.perf_counter() - t0
    if not partial:
        res["total_seconds"] = took
    elif old is not None:
        res["sections"] = {**old.get("sections", {}), **res["sections"]}
        res = {**old, **res}
    written = report.write_all(res, args.out)
    print()
    report.print_summary(res)
    print(f"{len(sections)} sections in {took:.0f} s; written: "
          + ", ".join(str(p) for p in written))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
