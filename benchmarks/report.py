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
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

GIB = 1024.0


def _atomic(path: Path, write: Callable[[Path], Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def summary_rows(res: dict) -> list[tuple[str, str, str]]:
    """(measure, result, target) rows for the sections present in ``res``."""
    rows: list[tuple[str, str, str]] = []
    b = res.get("bundled_deal")
    if b:
        on, off = b["memo_on"], b["memo_off"]
        rows.append(
            (
                "bundled 8-obligor deal, end to end, as shipped (no-default memo on)",
                f"{on['paths_per_s']:,.0f} paths/s (min–max {on['paths'] / on['max_s']:,.0f}–"
                f"{on['paths'] / on['min_s']:,.0f})",
                f"≥ 1,000,000 paths/s: {_met(on['paths_per_s'] >= 1e6)}",
            )
        )
        rows.append(
            (
                "same, every path computed (memo off)",
                f"{off['paths_per_s']:,.0f} paths/s",
                "—",
            )
        )
    lp = res.get("large_pool")
    if lp:
        rows.append(
            (
                f"{lp['obligors']:,}-obligor pool, collateral + waterfall",
                f"{lp['obligor_paths_per_s'] / 1e6:,.0f}M obligor-paths/s",
                f"≥ 200M: {_met(lp['obligor_paths_per_s'] >= 2e8)}",
            )
        )
    v = res.get("numpy_vs_numba")
    if v:
        rows.append(
            (
                f"numba vs vectorised NumPy, {v['obligors']} obligors, both computing every path",
                f"{v['ratio']:.1f}× ({v['ratio_1thread']:.1f}× on one thread)",
                f"≥ 10×: {_met(v['ratio'] >= 10)}",
            )
        )
        rows.append(
            (
                "same, the engine as shipped (no-default memo on)",
                f"{v['ratio_memo']:.1f}×",
                f"≥ 10×: {_met(v['ratio_memo'] >= 10)}",
            )
        )
    v = res.get("numpy_vs_numba_1000")
    if v:
        rows.append(
            (
                f"numba vs vectorised NumPy, {v['obligors']:,} obligors",
                f"{v['ratio']:.1f}× ({v['ratio_1thread']:.1f}× on one thread)",
                "—",
            )
        )
    m = res.get("memory_keep_paths_false")
    if m:
        steps = ", ".join(f"{r['paths']:,}: {r['peak_rss_mib']:,.0f}" for r in m.get("rows", []))
        rows.append(
            (
                "peak RSS (MiB) by path count, keep_paths=False",
                f"{steps}; +{m['growth_mib']:,.1f} MiB over {m['rss_before_mib']:,.0f} MiB",
                f"flat, < 2 GiB: {_met(m['growth_mib'] < 2 * GIB)}",
            )
        )
    c = res.get("compile")
    if c:
        rows.append(
            (
                "first `simulate` in a new process",
                f"{c['cold']['first_simulate_s']:.1f} s with an empty cache, "
                f"{c['cached']['first_simulate_s']:.2f} s cached",
                "reported",
            )
        )
    sp = res.get("scaling_paths")
    if sp:
        r = sp["rows"]
        rows.append(
            (
                f"cost vs paths, bundled deal, {r[0]['paths']:,} … {r[-1]['paths']:,}",
                f"fitted exponent {sp['exponent']:.2f} (memo off {sp['exponent_memo_off']:.2f});"
                f" {r[-1]['paths_per_s']:,.0f} paths/s at {r[-1]['paths']:,}",
                "about linear",
            )
        )
    ps = res.get("scaling_pool_size")
    if ps:
        r = ps["rows"]
        rows.append(
            (
                f"cost vs obligors, {r[0]['obligors']:,} … {r[-1]['obligors']:,}, "
                f"{r[0]['paths']:,} paths",
                f"fitted exponent {ps['exponent_end_to_end']:.2f} end to end, "
                f"{ps['exponent_collateral']:.2f} collateral alone, "
                f"{ps['exponent_numpy']:.2f} NumPy; {r[-1]['obligor_paths_per_s'] / 1e6:,.0f}M "
                f"obligor-paths/s at {r[-1]['obligors']:,}",
                "about linear",
            )
        )
    hf = res.get("hardware_floor")
    if hf:
        share = (
            f"; the {lp['obligors']:,}-obligor run is at {hf['engine_share']:.0%} of it"
            if (lp and "engine_share" in hf)
            else ""
        )
        rows.append(
            (
                "hardware floor: one uniform per obligor-path, the engine's own generator",
                f"{hf['uniforms_per_s'] / 1e6:,.0f}M uniforms/s{share}",
                "reported",
            )
        )
    pf = res.get("peer_financepy")
    if pf and "skipped" not in pf:
        g, t, lhp = pf["gaussian_100"], pf["student_t_100"], pf["lhp_10000"]
        z = g["max_abs_z"]
        rows.append(
            (
                f"tranche EL vs FinancePy, {g['pool']['obligors']} obligors, Gaussian "
                "(largest abs(z) of 3 tranches)",
                f"its MC {z['z_financepy_mc']:.1f}; recursion {z['z_recursion']:.1f}; "
                f"adjusted binomial {z['z_adjusted_binomial']:.1f}; exact (SciPy) "
                f"{z['z_exact_finite_pool']:.1f}",
                "within MC error",
            )
        )
        gap = max(abs(r["lhp_granularity_gap"]) for r in lhp["tranches"])
        rows.append(
            (
                f"same, Student-t ν=6, {t['pool']['obligors']} obligors",
                f"its MC {t['max_abs_z']['z_financepy_mc']:.1f}",
                "within MC error",
            )
        )
        rows.append(
            (
                f"LHP limit vs the engine on {lhp['pool']['obligors']:,} obligors "
                f"({lhp['engine']['paths']:,} paths)",
                f"LHP {lhp['max_abs_z']['z_lhp']:.1f}; exact finite pool "
                f"{lhp['max_abs_z']['z_exact_finite_pool']:.1f}; granularity gap ≤ {gap:.5f} "
                f"(at {g['pool']['obligors']} obligors the LHP is off by {z['z_lhp']:.0f} SE)",
                "within MC error",
            )
        )
        cal = pf.get("se_calibration")
        if cal:
            rows.append(
                (
                    f"standard errors calibrated: z over {cal['seeds']} seeds, "
                    f"{cal['obligors']} obligors, {cal['paths']:,} paths each",
                    "std of z "
                    + ", ".join(f"{v:.2f}" for v in cal["z_std"])
                    + "; mean "
                    + ", ".join(f"{v:+.2f}" for v in cal["z_mean"]),
                    "std ≈ 1, mean ≈ 0",
                )
            )
        speeds = ", ".join(f"{s['obligors']:,}: {s['ratio']:.0f}×" for s in pf["speed"])
        rows.append(("speed per path vs FinancePy's Gaussian MC, by obligors", speeds, "—"))
    return rows


def markdown(res: dict) -> str:
    m = res["machine"]
    head = (
        f"{m['processor']}, {m['cpus']} CPUs, {m['numba_threads']} numba threads, Python "
        f"{m['python']}, numba {m['numba']}, NumPy {m['numpy']}; commit {m.get('commit', '?')}, "
        f"{res['date']}{' (quick)' if res.get('quick') else ''}\n\n"
    )
    lines = ["| measure | result | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in summary_rows(res)]
    return head + "\n".join(lines) + "\n"


def print_summary(res: dict) -> None:
    print(markdown(res).replace("**", ""))


def long_table(res: dict) -> pd.DataFrame:
    """One row per timing, with the machine's description in every row."""
    rows: list[dict] = []

    def add(section, impl, pool, obligors, paths, med, lo=None, hi=None, **extra):
        rows.append(
            {
                "section": section,
                "implementation": impl,
                "pool": pool,
                "obligors": obligors,
                "paths": paths,
                "median_s": med,
                "min_s": lo if lo is not None else med,
                "max_s": hi if hi is not None else med,
                "paths_per_s": paths / med if med else None,
                "obligor_paths_per_s": obligors * paths / med if med else None,
                **extra,
            }
        )

    for label, v in res.get("bundled_deal", {}).items():
        add(
            "bundled",
            f"engine ({label.replace('_', ' ')})",
            "bundled",
            8,
            v["paths"],
            v["median_s"],
            v["min_s"],
            v["max_s"],
        )
    if "large_pool" in res:
        v = res["large_pool"]
        add(
            "large_pool",
            "engine",
            "homogeneous",
            v["obligors"],
            v["paths"],
            v["median_s"],
            v["min_s"],
            v["max_s"],
        )
    for key in ("numpy_vs_numba", "numpy_vs_numba_1000"):
        if key in res:
            v = res[key]
            pool = "bundled" if v["obligors"] == 8 else "homogeneous"
            add("numpy", "numpy twin", pool, v["obligors"], v["paths"], v["numpy_s"])
            add("numpy", "engine (memo off)", pool, v["obligors"], v["paths"], v["numba_s"])
            add(
                "numpy",
                "engine (memo off, 1 thread)",
                pool,
                v["obligors"],
                v["paths"],
                v["numba_1thread_s"],
            )
            add("numpy", "engine (memo on)", pool, v["obligors"], v["paths"], v["numba_memo_s"])
    for r in res.get("scaling_pool_size", {}).get("rows", []):
        n, p = r["obligors"], r["paths"]
        add(
            "pool_size",
            "engine (memo off)",
            "homogeneous",
            n,
            p,
            r["end_to_end_s"],
            r["end_to_end_min_s"],
            r["end_to_end_max_s"],
        )
        add(
            "pool_size",
            "engine collateral only",
            "homogeneous",
            n,
            p,
            r["collateral_s"],
            r["collateral_min_s"],
            r["collateral_max_s"],
        )
        add("pool_size", "numpy twin", "homogeneous", n, r["numpy_paths"], r["numpy_s"])
    for r in res.get("scaling_paths", {}).get("rows", []):
        p = r["paths"]
        add(
            "paths",
            "engine (memo on)",
            "bundled",
            8,
            p,
            r["end_to_end_s"],
            r["end_to_end_min_s"],
            r["end_to_end_max_s"],
        )
        add("paths", "engine (memo off)", "bundled", 8, p, r["memo_off_s"])
        if "numpy_s" in r:
            add("paths", "numpy twin", "bundled", 8, p, r["numpy_s"])
    if "hardware_floor" in res:
        u = res["hardware_floor"]["uniforms_per_s"]
        add("floor", "uniforms only", "-", 1, 1, 1.0 / u)
    pf = res.get("peer_financepy", {})
    for s in pf.get("speed", []):
        n = s["obligors"]
        add(
            "peer",
            "engine",
            "peer (1 year)",
            n,
            s["engine_paths"],
            1e-6 * s["engine_us_per_path"] * s["engine_paths"],
            1e-6 * s["engine_min_us"] * s["engine_paths"],
            1e-6 * s["engine_max_us"] * s["engine_paths"],
        )
        add(
            "peer",
            "financepy mc",
            "peer (1 year)",
            n,
            s["financepy_paths"],
            1e-6 * s["financepy_us_per_path"] * s["financepy_paths"],
            1e-6 * s["financepy_min_us"] * s["financepy_paths"],
            1e-6 * s["financepy_max_us"] * s["financepy_paths"],
        )
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
    df = pd.DataFrame(rows)
    m = res["machine"]
    for k in ("processor", "cpus", "numba_threads", "python", "numpy", "numba", "commit"):
        df[k] = m.get(k)
    df["date"] = res["date"]
    df["quick"] = res.get("quick", False)
    return df


def chart(res: dict, path: Path) -> bool:
    """Write the log-log throughput chart; False (and nothing written) without matplotlib or
    without the scaling sections."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    ps, sp = res.get("scaling_pool_size"), res.get("scaling_paths")
    if not ps or not sp:
        return False
    speed = res.get("peer_financepy", {}).get("speed", [])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    rows = ps["rows"]
    n = [r["obligors"] for r in rows]
    ax1.plot(n, [r["obligor_paths_per_s"] for r in rows], "o-", label="engine, end to end")
    ax1.plot(
        n,
        [r["collateral_obligor_paths_per_s"] for r in rows],
        "s--",
        label="engine, collateral only",
    )
    ax1.plot(n, [r["numpy_obligor_paths_per_s"] for r in rows], "^-", label="NumPy twin")
    if speed:
        sn = [s["obligors"] for s in speed]
        ax1.plot(
            sn,
            [s["obligors"] / (1e-6 * s["engine_us_per_path"]) for s in speed],
            "o:",
            label="engine, peer pool (1 period)",
        )
        ax1.plot(
            sn,
            [s["obligors"] / (1e-6 * s["financepy_us_per_path"]) for s in speed],
            "D-",
            label="FinancePy MC, peer pool (default times only)",
        )
    if "hardware_floor" in res:
        ax1.axhline(
            res["hardware_floor"]["uniforms_per_s"],
            color="grey",
            ls="-.",
            label="hardware floor (uniforms/s)",
        )
    ax1.set(
        xscale="log",
        yscale="log",
        xlabel="obligors",
        ylabel="obligor-paths per second",
        title=f"Pool size ({rows[0]['paths']:,} paths; homogeneous, 12 quarters)",
    )
    ax1.legend(fontsize=7)
    ax1.grid(True, which="both", alpha=0.3)
    rows = sp["rows"]
    p = [r["paths"] for r in rows]
    ax2.plot(p, [r["paths_per_s"] for r in rows], "o-", label="engine as shipped (memo on)")
    ax2.plot(
        p, [r["memo_off_paths_per_s"] for r in rows], "s--", label="engine, every path (memo off)"
    )
    npr = [r for r in rows if "numpy_s" in r]
    ax2.plot(
        [r["paths"] for r in npr], [r["numpy_paths_per_s"] for r in npr], "^-", label="NumPy twin"
    )
    peer8 = [s for s in speed if s["obligors"] == 10]
    if peer8:
        s = peer8[0]
        ax2.plot(
            [s["financepy_paths"]],
            [1e6 / s["financepy_us_per_path"]],
            "D",
            label="FinancePy MC, 10-obligor peer pool",
        )
    ax2.set(
        xscale="log",
        yscale="log",
        xlabel="paths",
        ylabel="paths per second",
        title="Path count (bundled 8-obligor deal)",
    )
    ax2.legend(fontsize=7)
    ax2.grid(True, which="both", alpha=0.3)
    m = res["machine"]
    fig.suptitle(
        f"abs_engine throughput — {m['processor']}, {m['cpus']} CPUs, "
        f"numba {m['numba']}, {res['date'][:10]}",
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
    _atomic(pq, lambda tmp: long_table(res).to_parquet(tmp, index=False))
    md = out.with_suffix(".md")
    _atomic(md, lambda tmp: tmp.write_text(markdown(res)))
    written += [pq, md]
    png = out.with_suffix(".png")
    if chart(res, png):
        written.append(png)
    return written
