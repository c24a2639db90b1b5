"""Benchmark results as data and a picture.

* ``summary_rows``: the headline table (measure, result, target from the Monte Carlo issue),
  printed to the terminal and written as Markdown for the README;
* ``long_table``: one row per timing (section, implementation, pool, obligors, paths, median,
  min and max seconds, throughput) with the machine's columns, written as Parquet;
* ``chart``: throughput against pool size and against path count, log-log, the NumPy twin,
  FinancePy and the hardware floor on the same axes (PNG; needs matplotlib).
``write_all`` writes every file through a temporary name and a rename.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from abs_engine.files import atomic_write, write_parquet

GIB = 1024.0


def _atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """:func:`abs_engine.files.atomic_write` into a folder made if needed, readable by all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, write, mode=0o644)


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


Row = tuple[str, str, str]


def _bundled_rows(b: dict, res: dict) -> list[Row]:
    """The bundled deal end to end, memo on (against the target) and off."""
    on, off = b["memo_on"], b["memo_off"]
    return [
        (
            "bundled 8-obligor deal, end to end, as shipped (no-default memo on)",
            f"{on['paths_per_s']:,.0f} paths/s (min–max {on['paths'] / on['max_s']:,.0f}–"
            f"{on['paths'] / on['min_s']:,.0f})",
            f"≥ 1,000,000 paths/s: {_met(on['paths_per_s'] >= 1e6)}",
        ),
        (
            "same, every path computed (memo off)",
            f"{off['paths_per_s']:,.0f} paths/s",
            "—",
        ),
    ]


def _large_pool_rows(lp: dict, res: dict) -> list[Row]:
    """Obligor-paths per second on the large pool, against the target."""
    return [
        (
            f"{lp['obligors']:,}-obligor pool, collateral + waterfall",
            f"{lp['obligor_paths_per_s'] / 1e6:,.0f}M obligor-paths/s",
            f"≥ 200M: {_met(lp['obligor_paths_per_s'] >= 2e8)}",
        )
    ]


def _heterogeneous_pool_rows(hp: dict, res: dict) -> list[Row]:
    """Obligor-paths per second on the heterogeneous pool, against the target."""
    return [
        (
            f"{hp['obligors']:,}-obligor heterogeneous pool (`abs-engine synth --heterogeneous`), "
            "end to end",
            f"{hp['obligor_paths_per_s'] / 1e6:,.0f}M obligor-paths/s",
            f"≥ 200M: {_met(hp['obligor_paths_per_s'] >= 2e8)}",
        )
    ]


def _numpy_rows(v: dict, res: dict) -> list[Row]:
    """Numba against the NumPy twin on the bundled deal, memo off and on, against 10×."""
    return [
        (
            f"numba vs vectorised NumPy, {v['obligors']} obligors, both computing every path",
            f"{v['ratio']:.1f}× ({v['ratio_1thread']:.1f}× on one thread)",
            f"≥ 10×: {_met(v['ratio'] >= 10)}",
        ),
        (
            "same, the engine as shipped (no-default memo on)",
            f"{v['ratio_memo']:.1f}×",
            f"≥ 10×: {_met(v['ratio_memo'] >= 10)}",
        ),
    ]


def _numpy_1000_rows(v: dict, res: dict) -> list[Row]:
    """Numba against the NumPy twin on the 1,000-obligor pool."""
    return [
        (
            f"numba vs vectorised NumPy, {v['obligors']:,} obligors",
            f"{v['ratio']:.1f}× ({v['ratio_1thread']:.1f}× on one thread)",
            "—",
        )
    ]


def _memory_rows(m: dict, res: dict) -> list[Row]:
    """Peak memory growth by path count, one row per deal (none for results of the older
    format, without a deal per row)."""
    if "rows" not in m or "deal" not in m["rows"][0]:
        return []
    rows: list[Row] = []
    for deal in dict.fromkeys(r["deal"] for r in m["rows"]):
        rs = [r for r in m["rows"] if r["deal"] == deal]
        steps = ", ".join(f"{r['paths']:,}: +{r['growth_mib']:,.1f}" for r in rs)
        worst = max(r["growth_mib"] for r in rs)
        spread = worst - min(r["growth_mib"] for r in rs)
        flat = spread < 32.0 and worst < 2 * GIB
        rows.append(
            (
                f"peak memory of a run over the process before it (MiB), {deal}, "
                "by paths, keep_paths=False",
                f"{steps} ({m['method']}; process {rs[0]['rss_before_mib']:,.0f} MiB)",
                f"flat (spread < 32 MiB over {rs[-1]['paths'] // rs[0]['paths']:,}× the "
                f"paths) and < 2 GiB: {_met(flat)}",
            )
        )
    return rows


def _compile_rows(c: dict, res: dict) -> list[Row]:
    """The first ``simulate`` in a new process, with and without the compiled cache."""
    return [
        (
            "first `simulate` in a new process",
            f"{c['cold']['first_simulate_s']:.1f} s with an empty cache, "
            f"{c['cached']['first_simulate_s']:.2f} s cached",
            "reported",
        )
    ]


def _scaling_paths_rows(sp: dict, res: dict) -> list[Row]:
    """The fitted exponent of cost against path count."""
    r = sp["rows"]
    return [
        (
            f"cost vs paths, bundled deal, {r[0]['paths']:,} … {r[-1]['paths']:,}",
            f"fitted exponent {sp['exponent']:.2f} (memo off {sp['exponent_memo_off']:.2f});"
            f" {r[-1]['paths_per_s']:,.0f} paths/s at {r[-1]['paths']:,}",
            "about linear",
        )
    ]


def _scaling_pool_size_rows(ps: dict, res: dict) -> list[Row]:
    """The fitted exponents of cost against obligor count."""
    r = ps["rows"]
    return [
        (
            f"cost vs obligors, {r[0]['obligors']:,} … {r[-1]['obligors']:,}, "
            f"{r[0]['paths']:,} paths",
            f"fitted exponent {ps['exponent_end_to_end']:.2f} end to end, "
            f"{ps['exponent_collateral']:.2f} collateral alone, "
            f"{ps['exponent_numpy']:.2f} NumPy; {r[-1]['obligor_paths_per_s'] / 1e6:,.0f}M "
            f"obligor-paths/s at {r[-1]['obligors']:,}",
            "about linear",
        )
    ]


def _floor_rows(hf: dict, res: dict) -> list[Row]:
    """Uniforms per second, and the large pool's share of it when measured."""
    lp = res.get("large_pool")
    share = (
        f"; the {lp['obligors']:,}-obligor run is at "
        f"{lp['obligor_paths_per_s'] / hf['uniforms_per_s']:.1%} of it"
        if lp
        else ""
    )
    return [
        (
            "hardware floor: one uniform per obligor-path, the engine's own generator",
            f"{hf['uniforms_per_s'] / 1e6:,.0f}M uniforms/s{share}",
            "reported",
        )
    ]


def _peer_section_rows(pf: dict, res: dict) -> list[Row]:
    """The FinancePy comparison (none when it was skipped)."""
    return [] if "skipped" in pf else _peer_rows(pf)


def _cluster_text(label: str, c: dict) -> str:
    threads = c["threads_per_worker"] or "default"
    return (
        f"{label} ({c['workers']} × {threads} threads) {c['paths_per_s']:,.0f} ({c['ratio']:.2f}×)"
    )


def _cuts(o: dict) -> str:
    ks = sorted(
        {r["task_blocks"] for k in ("bundled", "large_pool") for r in o.get(k, {}).get("rows", [])}
    )
    return f"{ks[0]} … {ks[-1]}" if ks else "—"


def _projection_text(d: dict) -> str:
    """Projected paths/s by deal and workers, with the efficiency and what bounds it."""
    parts = []
    for name, label in d["labels"].items():
        rs = [r for r in d["projection"]["rows"] if r["deal"] == name]
        if rs:
            per = ", ".join(
                f"{r['workers']} workers {r['paths_per_s']:,.0f} paths/s ({r['efficiency']:.0%},"
                f" {r['bound']}-bound, {r['task_blocks']} blocks per task)"
                for r in rs
            )
            parts.append(f"{label}, {rs[0]['paths']:,} paths: {per}")
    return "; ".join(parts)


def _distributed_rows(d: dict, res: dict) -> list[Row]:
    """Cluster against one process for each deal, the overhead per task, the projection."""
    rows: list[Row] = []
    same = "; results bitwise identical" if d.get("identical") else ""
    for name, one in d["single_process"].items():
        runs = "; ".join(_cluster_text(k, c[name]) for k, c in d["clusters"].items())
        rows.append(
            (
                f"Dask cluster vs one process (all threads), {d['labels'][name]}, "
                f"{one['paths']:,} paths: paths/s, best of {d['repeats']}",
                f"one process {one['paths_per_s']:,.0f}; {runs}{same}",
                "reported",
            )
        )
    o = d["overhead"]
    parts = [
        f"{d['labels'][k]}: {o[k]['overhead_ms_per_task']:.1f} ± {o[k]['overhead_se_ms']:.1f}"
        f" ms{'' if o[k]['resolved'] else ' (not resolved: the bundled figure used)'}, "
        f"under 5% of a task's compute from {o[k]['blocks_for_5pct']:,} blocks "
        f"({o[k]['paths_for_5pct']:,} paths) per task"
        for k in d["labels"]
        if k in o
    ]
    rows.append(
        (
            f"Dask overhead per task on {o['cluster']} (wall time a task adds, a line "
            f"fitted over {_cuts(o)} blocks per task)",
            "; ".join(parts),
            "reported",
        )
    )
    rows.append(("projection (not measured) to more workers, from the figures above",
                 _projection_text(d), "projection; assumptions in the results JSON"))  # fmt: skip
    return rows


#: the summary's sections in table order: the results' key and the rows it gives (a section
#: absent or empty gives none)
_SUMMARY_SECTIONS: tuple[tuple[str, Callable[[dict, dict], list[Row]]], ...] = (
    ("bundled_deal", _bundled_rows),
    ("large_pool", _large_pool_rows),
    ("heterogeneous_pool", _heterogeneous_pool_rows),
    ("numpy_vs_numba", _numpy_rows),
    ("numpy_vs_numba_1000", _numpy_1000_rows),
    ("memory_keep_paths_false", _memory_rows),
    ("compile", _compile_rows),
    ("scaling_paths", _scaling_paths_rows),
    ("scaling_pool_size", _scaling_pool_size_rows),
    ("hardware_floor", _floor_rows),
    ("peer_financepy", _peer_section_rows),
    ("distributed", _distributed_rows),
)


def summary_rows(res: dict) -> list[tuple[str, str, str]]:
    """(measure, result, target) rows for the sections present in ``res``."""
    rows: list[Row] = []
    for key, rows_of in _SUMMARY_SECTIONS:
        section = res.get(key)
        if section:
            rows += rows_of(section, res)
    return rows


def _within(z: float) -> str:
    return f"abs(z) < 3: {_met(abs(z) < 3.0)}"


def _peer_rows(pf: dict) -> list[tuple[str, str, str]]:
    rows = []
    g, t, lhp = pf["gaussian_100"], pf["student_t_100"], pf["lhp_10000"]
    z, zt, zl = g["max_abs_z"], t["max_abs_z"], lhp["max_abs_z"]
    worst = max(v for k, v in z.items() if k != "z_lhp")
    rows.append(
        (
            f"tranche EL vs FinancePy, {g['pool']['obligors']} obligors, Gaussian, "
            f"{g['engine']['paths']:,} paths (largest abs(z) of 3 tranches)",
            f"its MC {z['z_financepy_mc']:.1f}; recursion {z['z_recursion']:.1f}; adjusted "
            f"binomial {z['z_adjusted_binomial']:.1f}; exact (SciPy) "
            f"{z['z_exact_finite_pool']:.1f}",
            _within(worst),
        )
    )
    rows.append(
        (
            f"same, Student-t ν=6, {t['pool']['obligors']} obligors",
            f"its MC {zt['z_financepy_mc']:.1f}; exact (SciPy, 2-D quadrature) "
            f"{zt['z_exact_finite_pool']:.1f}",
            _within(max(zt.values())),
        )
    )
    gap = max(abs(r["lhp_granularity_gap"]) for r in lhp["tranches"])
    rows.append(
        (
            f"LHP limit vs the engine on {lhp['pool']['obligors']:,} obligors "
            f"({lhp['engine']['paths']:,} paths)",
            f"LHP {zl['z_lhp']:.1f}; exact finite pool {zl['z_exact_finite_pool']:.1f}; "
            f"granularity gap ≤ {gap:.5f} (at {g['pool']['obligors']} obligors the LHP is "
            f"{z['z_lhp']:.0f} SE away)",
            _within(zl["z_exact_finite_pool"]),
        )
    )
    for key in ("se_calibration", "se_calibration_10000"):
        cal = pf.get(key)
        if cal:
            band = 1.82 / (cal["seeds"] - 1) ** 0.5  # 99% range of a normal sample's std
            ok = all(abs(v - 1.0) < band for v in cal["z_std"])
            rows.append(
                (
                    f"standard errors calibrated: z over {cal['seeds']} seeds, "
                    f"{cal['obligors']:,} obligors, {cal['paths']:,} paths each",
                    "std of z "
                    + ", ".join(f"{v:.2f}" for v in cal["z_std"])
                    + "; mean "
                    + ", ".join(f"{v:+.2f}" for v in cal["z_mean"]),
                    f"std within 1 ± {band:.2f}: {_met(ok)}",
                )
            )
    eff = [r["efficiency_ratio"] for r in g["tranches"]]
    per_size = ", ".join(
        f"{s['obligors']:,}: {s['ratio']:.0f}× ({s.get('ratio_1thread', float('nan')):.0f}×)"
        for s in pf["speed"]
    )
    rows.append(
        (
            "speed per path vs FinancePy's Gaussian MC, wall clock, by obligors: engine on "
            "all threads (on one)",
            f"{per_size}; cost of equal precision (seconds × variance, engine on all "
            f"threads) at {g['pool']['obligors']} obligors: {min(eff):.0f}–{max(eff):.0f}×",
            "—",
        )
    )
    return rows


def markdown(res: dict) -> str:
    m = res["machine"]
    runs = sorted({(v["date"], v["commit"]) for v in res.get("sections", {}).values()})
    when = "; ".join(f"{d} at {c}" for d, c in runs) or f"{res['date']} at {m.get('commit')}"
    head = (
        f"{m['processor']}, {m['cpus']} CPUs, {m['numba_threads']} numba threads, Python "
        f"{m['python']}, numba {m['numba']}, NumPy {m['numpy']}; "
        f"{'quick run' if res.get('quick') else 'full run'}, {when}\n\n"
    )
    lines = ["| measure | result | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in summary_rows(res)]
    return head + "\n".join(lines) + "\n"


def print_summary(res: dict) -> None:
    print(markdown(res).replace("**", ""))


_NAN = float("nan")


def _timing(
    section: str,
    impl: str,
    pool: str,
    obligors: int,
    paths: int,
    rec: dict,
    prefix: str = "",
    repeats: int | None = None,
    **extra: Any,
) -> dict:
    """One timing row from ``rec[prefix + '_s']``, ``rec[prefix + '_min_s']`` etc. (seconds;
    ``median_s``/``min_s``/``max_s`` without a prefix); throughput per second of the median."""
    med = rec[f"{prefix}_s"] if prefix else rec["median_s"]
    lo = rec.get(f"{prefix}_min_s" if prefix else "min_s", _NAN)
    hi = rec.get(f"{prefix}_max_s" if prefix else "max_s", _NAN)
    return {
        "section": section,
        "implementation": impl,
        "pool": pool,
        "obligors": obligors,
        "paths": paths,
        "median_s": med,
        "min_s": lo,
        "max_s": hi,
        "repeats": rec.get(f"{prefix}_repeats", repeats) if prefix else repeats,
        "paths_per_s": paths / med,
        "obligor_paths_per_s": obligors * paths / med,
        **extra,
    }


def _engine_timings(res: dict) -> list[dict]:
    """The bundled deal (memo on and off) and the large pool."""
    rows: list[dict] = []
    for label, v in res.get("bundled_deal", {}).items():
        name = f"engine ({label.replace('_', ' ')})"
        rows.append(_timing("bundled", name, "bundled", 8, v["paths"], v))
    if "large_pool" in res:
        v = res["large_pool"]
        rows.append(_timing("large_pool", "engine", "homogeneous", v["obligors"], v["paths"], v))
    if "heterogeneous_pool" in res:
        v = res["heterogeneous_pool"]
        rows.append(_timing("large_pool", "engine", "heterogeneous", v["obligors"], v["paths"], v))
    return rows


#: the implementations timed against the NumPy twin, and the prefix of their timings
_NUMPY_IMPLEMENTATIONS = (
    ("numpy twin", "numpy"),
    ("engine (memo off)", "numba"),
    ("engine (memo off, 1 thread)", "numba_1thread"),
    ("engine (memo on)", "numba_memo"),
    ("engine (memo on, 1 thread)", "numba_memo_1thread"),
)


def _numpy_timings(res: dict) -> list[dict]:
    """The NumPy twin against the engine, at 8 and 1,000 obligors."""
    rows: list[dict] = []
    for key in ("numpy_vs_numba", "numpy_vs_numba_1000"):
        if key not in res:
            continue
        v = res[key]
        pool = "bundled" if v["obligors"] == 8 else "homogeneous"
        for impl, col in _NUMPY_IMPLEMENTATIONS:
            if f"{col}_s" in v:
                rows.append(
                    _timing(
                        "numpy", impl, pool, v["obligors"], v["paths"], v, col, v.get("repeats")
                    )
                )
    return rows


def _scaling_timings(res: dict) -> list[dict]:
    """The sweeps over pool size and over path count."""
    rows: list[dict] = []
    for r in res.get("scaling_pool_size", {}).get("rows", []):
        n, p = r["obligors"], r["paths"]
        rows += [
            _timing("pool_size", "engine (memo off)", "homogeneous", n, p, r, "end_to_end"),
            _timing("pool_size", "engine collateral only", "homogeneous", n, p, r, "collateral"),
            _timing("pool_size", "numpy twin", "homogeneous", n, r["numpy_paths"], r, "numpy"),
        ]
    for r in res.get("scaling_paths", {}).get("rows", []):
        p = r["paths"]
        rows += [
            _timing("paths", "engine (memo on)", "bundled", 8, p, r, "end_to_end"),
            _timing("paths", "engine (memo off)", "bundled", 8, p, r, "memo_off"),
        ]
        if "collateral_s" in r:
            rows.append(
                _timing("paths", "engine collateral only", "bundled", 8, p, r, "collateral")
            )
        if "numpy_s" in r:
            rows.append(_timing("paths", "numpy twin", "bundled", 8, p, r, "numpy"))
    return rows


def _floor_timings(res: dict) -> list[dict]:
    """One uniform, as the time per uniform of the hardware floor."""
    if "hardware_floor" not in res:
        return []
    hf = res["hardware_floor"]
    rec = {"median_s": 1.0 / hf["uniforms_per_s"]}
    return [_timing("floor", "uniforms only", "-", 1, 1, rec, repeats=hf.get("repeats"))]


def _peer_timings(pf: dict) -> list[dict]:
    """The engine and FinancePy's Monte Carlo by pool size, from microseconds per path."""
    rows: list[dict] = []
    for s in pf.get("speed", []):
        n = s["obligors"]
        for impl, col, k in (
            ("engine", "engine", s["engine_paths"]),
            ("financepy mc", "financepy", s["financepy_paths"]),
        ):
            rec = {
                "median_s": 1e-6 * s[f"{col}_us_per_path"] * k,
                "min_s": 1e-6 * s[f"{col}_min_us"] * k,
                "max_s": 1e-6 * s[f"{col}_max_us"] * k,
            }
            rows.append(_timing("peer", impl, "peer (1 year)", n, k, rec, repeats=s.get("repeats")))
        if "engine_1thread_us_per_path" in s:
            k1 = s["engine_paths"]
            rec = {"median_s": 1e-6 * s["engine_1thread_us_per_path"] * k1}
            rows.append(
                _timing(
                    "peer",
                    "engine (1 thread)",
                    "peer (1 year)",
                    n,
                    k1,
                    rec,
                    repeats=s.get("repeats"),
                )
            )
    return rows


def _peer_agreement(pf: dict) -> list[dict]:
    """One row per tranche of each FinancePy comparison: its figures as they are."""
    rows: list[dict] = []
    for key in ("gaussian_100", "student_t_100", "lhp_10000"):
        if key in pf:
            a = pf[key]
            for r in a["tranches"]:
                rows.append(
                    {
                        "section": "peer_agreement",
                        "implementation": a["pool"]["copula"],
                        "pool": r["tranche"],
                        "obligors": a["pool"]["obligors"],
                        "paths": a["engine"]["paths"],
                        **{k: v for k, v in r.items() if k != "tranche"},
                    }
                )
    return rows


def _spread(rec: dict) -> dict:
    """Median, min and max seconds of a distributed timing's repeats (``all_s``)."""
    times = sorted(rec["all_s"])
    return {"median_s": float(pd.Series(times).median()), "min_s": times[0], "max_s": times[-1]}


def _distributed_timings(res: dict) -> list[dict]:
    """One process and each cluster on each deal, and the overhead sweep's cuts."""
    d = res.get("distributed")
    if not d:
        return []
    pools = {"bundled": "bundled", "large_pool": "homogeneous"}
    rows: list[dict] = []
    runs = {"engine, one process": d["single_process"]}
    for label, c in d["clusters"].items():
        runs[f"engine on {label}"] = c
    for impl, rec in runs.items():
        for name, r in rec.items():
            n = d["obligors"][name]
            rows.append(_timing("distributed", impl, pools[name], n, r["paths"], _spread(r),
                                repeats=len(r["all_s"])))  # fmt: skip
    o = d["overhead"]
    for name in pools:
        for r in o.get(name, {}).get("rows", []):
            impl = f"engine on {o['cluster']}, {r['task_blocks']} blocks per task"
            rows.append(_timing("distributed_overhead", impl, pools[name], d["obligors"][name],
                                o[name]["paths"], _spread(r), repeats=len(r["all_s"])))  # fmt: skip
    return rows


def _add_machine(df: pd.DataFrame, res: dict) -> None:
    """The machine's description in every row, and the date and commit of the section that
    measured it."""
    m = res["machine"]
    for k in ("processor", "cpus", "numba_threads", "python", "numpy", "numba"):
        df[k] = m.get(k)
    # each row carries the date and commit of the section that measured it
    meta = res.get("sections", {})
    if df.empty:  # no section with timings: nothing to describe
        return
    owner = {"pool_size": "scaling", "paths": "scaling", "peer_agreement": "peer",
             "distributed_overhead": "distributed"}  # fmt: skip
    sec = df["section"].map(lambda x: owner.get(x, x))
    df["date"] = sec.map(lambda x: meta.get(x, {}).get("date", res["date"]))
    df["commit"] = sec.map(lambda x: meta.get(x, {}).get("commit", m.get("commit")))
    df["quick"] = res.get("quick", False)


def long_table(res: dict) -> pd.DataFrame:
    """One row per timing: median, min and max seconds (NaN where only one run was timed or
    the spread was not kept), repeats, throughput; the machine's description in every row."""
    pf = res.get("peer_financepy", {})
    rows = [
        *_engine_timings(res),
        *_numpy_timings(res),
        *_scaling_timings(res),
        *_floor_timings(res),
        *_peer_timings(pf),
        *_peer_agreement(pf),
        *_distributed_timings(res),
    ]
    df = pd.DataFrame(rows)
    _add_machine(df, res)
    return df


def _pool_size_axes(ax: Any, res: dict) -> None:
    """Obligor-paths per second against pool size: the engine end to end and its collateral
    alone, the NumPy twin, the engine and FinancePy on the peer pool, the hardware floor."""
    rows = res["scaling_pool_size"]["rows"]
    speed = res.get("peer_financepy", {}).get("speed", [])
    n = [r["obligors"] for r in rows]
    ax.plot(
        n, [r["obligor_paths_per_s"] for r in rows], "o-", label="engine, end to end (memo off)"
    )
    ax.plot(
        n,
        [r["collateral_obligor_paths_per_s"] for r in rows],
        "s--",
        label="engine, collateral only",
    )
    ax.plot(n, [r["numpy_obligor_paths_per_s"] for r in rows], "^-", label="NumPy twin")
    if speed:
        sn = [s["obligors"] for s in speed]
        ax.plot(
            sn,
            [s["obligors"] / (1e-6 * s["engine_us_per_path"]) for s in speed],
            "o:",
            label="engine, peer pool (1 period)",
        )
        ax.plot(
            sn,
            [s["obligors"] / (1e-6 * s["financepy_us_per_path"]) for s in speed],
            "D-",
            label="FinancePy MC, peer pool (default times only)",
        )
    if "hardware_floor" in res:
        ax.axhline(
            res["hardware_floor"]["uniforms_per_s"],
            color="grey",
            ls="-.",
            label="hardware floor (uniforms/s)",
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="obligors",
        ylabel="obligor-paths per second",
        title=f"Pool size ({rows[0]['paths']:,} paths; homogeneous, 12 quarters)",
    )
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)


def _path_count_axes(ax: Any, res: dict) -> None:
    """Paths per second against path count on the bundled deal: the engine memo on and off,
    the NumPy twin and the collateral alone where they were timed."""
    rows = res["scaling_paths"]["rows"]
    p = [r["paths"] for r in rows]
    ax.plot(p, [r["paths_per_s"] for r in rows], "o-", label="engine as shipped (memo on)")
    ax.plot(
        p, [r["memo_off_paths_per_s"] for r in rows], "s--", label="engine, every path (memo off)"
    )
    npr = [r for r in rows if "numpy_s" in r]
    ax.plot(
        [r["paths"] for r in npr], [r["numpy_paths_per_s"] for r in npr], "^-", label="NumPy twin"
    )
    coll = [r for r in rows if "collateral_s" in r]
    if coll:
        ax.plot([r["paths"] for r in coll], [r["collateral_paths_per_s"] for r in coll], "v:",
                label="engine, collateral only")  # fmt: skip
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="paths",
        ylabel="paths per second",
        title="Path count (bundled 8-obligor deal)",
    )
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)


def chart(res: dict, path: Path) -> bool:
    """Write the log-log throughput chart; False (and nothing written) without matplotlib or
    without the scaling sections."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    if not res.get("scaling_pool_size") or not res.get("scaling_paths"):
        return False
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    _pool_size_axes(ax1, res)
    _path_count_axes(ax2, res)
    m = res["machine"]
    fig.suptitle(
        f"abs_engine throughput — {m['processor']}, {m['cpus']} CPUs, "
        f"numba {m['numba']}, "
        f"{res.get('sections', {}).get('scaling', {}).get('date', res['date'])[:10]}",
        fontsize=10,
    )
    fig.tight_layout()
    _atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return True


def write_all(res: dict, out: Path) -> list[Path]:
    """``out`` (JSON), its ``.parquet`` table, ``.md`` summary and ``.png`` chart."""
    _atomic(out, lambda tmp: tmp.write_text(json.dumps(res, indent=2)))
    written = [out]
    pq = out.with_suffix(".parquet")
    _atomic(pq, write_parquet(long_table(res)))  # through a Python file (any folder name)
    md = out.with_suffix(".md")
    _atomic(md, lambda tmp: tmp.write_text(markdown(res)))
    written += [pq, md]
    png = out.with_suffix(".png")
    if chart(res, png):
        written.append(png)
    else:
        print(f"note: {png} not written (needs matplotlib and the scaling section)",
              file=sys.stderr)  # fmt: skip
    return written
