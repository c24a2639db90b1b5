"""The ``abs-engine`` command line.

Exit status: 0 success, 2 bad input (every problem printed, no traceback), 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from . import __version__
from .api import load_deal, load_scenario, nan_to_none, run_deterministic, simulate
from .compile.deal import compile_deal
from .compile.model import compile_model
from .compile.scenario import scenario_source
from .errors import AbsEngineError, DealError, Problem
from .files import atomic_write
from .schema.scenario import DeterministicScenario
from .schema.stochastic import MonteCarloScenario

EXIT_OK, EXIT_ERROR, EXIT_INPUT = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="abs-engine",
        description="Structuring engine for intellectual-property ABS.",
    )
    p.add_argument("--version", action="version", version=f"abs-engine {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a deal through its waterfall on a scenario")
    run.add_argument(
        "deal", nargs="?", help="deal file (.toml/.json); default: bundled Huake-style deal"
    )
    run.add_argument(
        "--scenario",
        "-s",
        action="append",
        help="scenario name or file (repeatable); default: the deal's base_scenario",
    )
    run.add_argument(
        "--json", action="store_true", help="print one JSON document instead of tables"
    )
    run.add_argument(
        "--out",
        type=Path,
        help="write ledger (Parquet and CSV), tranches and cash flows to this folder",
    )
    mc = run.add_argument_group("Monte Carlo scenarios")
    mc.add_argument("--paths", type=int, help="number of paths (default: the scenario's n_paths)")
    mc.add_argument("--seed", type=int, help="random seed (default: the scenario's seed)")
    mc.add_argument("--threads", type=int, help="numba threads (default: all cores)")
    mc.add_argument(
        "--keep-paths", action="store_true", help="with --out, also write per-path metrics"
    )
    mc.add_argument(
        "--ledger-paths",
        type=lambda v: [int(x) for x in v.split(",") if x],
        help="with --out, write the full ledgers of these paths (comma-separated; default 0)",
    )
    mc.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    st = sub.add_parser(
        "stress",
        help="agency-style deterministic analysis: breakeven default rate, large-obligor test, "
        "coverage-ratio table",
    )
    st.add_argument("deal", nargs="?", help="deal file; default: bundled Huake-style deal")
    st.add_argument("--tranche", action="append", help="tranche(s) to test (default: all rated)")
    st.add_argument("--recovery", type=float, default=0.0, help="recovery rate (decimal)")
    st.add_argument("--lag", type=int, default=0, help="recovery lag (periods)")
    st.add_argument("--period", type=int, default=1, help="large-obligor default period")
    st.add_argument("--largest", type=int, default=3, help="test the 1..N largest obligors")
    st.add_argument(
        "--scenario",
        "-s",
        action="append",
        help="deterministic scenarios for the coverage table (default: the deal's)",
    )
    st.add_argument("--json", action="store_true", help="print one JSON document")

    def mc_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("deal", nargs="?", help="deal file; default: bundled Huake-style deal")
        p.add_argument("--scenario", "-s", help="Monte Carlo scenario (default: the deal's base)")
        p.add_argument("--paths", type=int, default=20_000, help="paths per evaluation (20,000)")
        p.add_argument("--seed", type=int, help="seed (default: the scenario's)")
        p.add_argument("--json", action="store_true", help="print one JSON document")

    sz = sub.add_parser("size", help="largest tranche balance meeting a target rating or EL")
    mc_args(sz)
    sz.add_argument("--tranche", required=True)
    grp = sz.add_mutually_exclusive_group(required=True)
    grp.add_argument("--target", help="target rating, e.g. AAA")
    grp.add_argument("--target-el", type=float, help="target expected loss (decimal)")
    sz.add_argument("--rating-table", help="rating table CSV (default: the illustrative one)")
    pr = sub.add_parser("price", help="coupon at which a tranche prices at par")
    mc_args(pr)
    pr.add_argument("--tranche", required=True)
    pr.add_argument(
        "--curve", required=True, help="flat rate (decimal) or CSV tenor_years,zero_rate"
    )
    pr.add_argument("--spread-bps", type=float, default=0.0)
    be = sub.add_parser("breakeven", help="scenario parameter value at which a tranche fails")
    mc_args(be)
    be.add_argument("--tranche", required=True)
    be.add_argument(
        "--param",
        required=True,
        help="pd_multiplier, recovery (a fixed rate), ip_haircut, correlation, cpr, "
        "provider_pd_multiplier",
    )
    be.add_argument(
        "--condition",
        default="first_loss",
        help="first_loss, el_above:X, irr_below:Y or pd_above:P (default first_loss)",
    )
    be.add_argument(
        "--range", help="lo,hi: where the condition holds, and fails (defaults by param)"
    )
    se = sub.add_parser("sensitivity", help="tranche metrics over a grid of two parameters")
    mc_args(se)
    se.add_argument("--x", required=True, help="param=v1,v2,... e.g. pd_multiplier=0.5,1,2")
    se.add_argument("--y", required=True, help="param=v1,v2,... e.g. recovery=0.1,0.2,0.4")
    se.add_argument("--tranche", help="tranche for the printed grid (default: the first)")
    sy = sub.add_parser("synth", help="write a synthetic pool as deal, tape and scenario files")
    sy.add_argument("out", type=Path, help="output folder")
    sy.add_argument(
        "--obligors", type=int, required=True, help="number of obligors (8 .. 1,000,000)"
    )
    sy.add_argument("--name", help="file name stem (default synthetic_<N>)")
    sy.add_argument(
        "--heterogeneous", action="store_true", help="random balances, rates, PD classes"
    )
    sy.add_argument(
        "--attach", default="0.03,0.06,0.10", help="attachment points (default 0.03,0.06,0.10)"
    )
    sy.add_argument("--pd", type=float, default=0.02, help="annual PD (default 0.02)")
    sy.add_argument("--correlation", type=float, default=0.15, help="asset correlation (0.15)")
    sy.add_argument("--recovery", type=float, default=0.3, help="recovery rate (0.3)")
    sy.add_argument(
        "--amortization",
        default="equal_principal",
        choices=["bullet", "level_pay", "equal_principal"],
    )
    sy.add_argument("--periods", type=int, default=12, help="quarterly periods (12)")
    sy.add_argument("--seed", type=int, default=0, help="seed of a heterogeneous pool")
    val = sub.add_parser(
        "validate", help="check a deal file (and optional scenarios) and report every problem"
    )
    val.add_argument("deal")
    val.add_argument(
        "--scenario", "-s", action="append", help="also check these scenarios against the deal"
    )
    return p


def _result_document(res: Any) -> dict[str, Any]:
    docs = []
    for k, sc in enumerate(res.scenarios):
        tr = res.tranches(k)
        docs.append(
            {
                "scenario": sc.name,
                "tranches": [{"name": r["tranche"], **r} for r in tr.to_dict(orient="records")],
                "pool": res.pool(k),
                "cashflows": json.loads(
                    res.cashflows(k).to_json(orient="records", date_format="iso")
                ),
            }
        )
    cd = res.compiled
    doc: dict[str, Any] = {
        "deal": cd.deal.name,
        "source": cd.source,
        "currency": cd.deal.currency,
        "periods": cd.n_periods,
        "payment_dates": [d.isoformat() for d in cd.payment_dates],
    }
    if len(docs) == 1:
        doc.update(docs[0])
    else:
        doc["scenarios"] = docs
        doc.update({k: docs[0][k] for k in ("tranches", "pool")})
    return nan_to_none(doc)


def _deal_console(cd: Any) -> Any:
    """A rich console (200 columns when not a terminal) with the deal's header printed."""
    from rich.console import Console

    probe = Console()
    console = Console(width=probe.width if probe.is_terminal else 200)
    console.print(f"[bold]{cd.deal.name}[/bold]  ({cd.source})")
    console.print(
        f"{cd.n_obligors} obligors, pool {cd.original_pool:,.0f} {cd.deal.currency}, "
        f"{cd.n_periods} periods {cd.payment_dates[0]} .. {cd.payment_dates[-1]}"
    )
    return console


def _print_tables(res: Any) -> None:
    from rich.table import Table

    cd = res.compiled
    console = _deal_console(cd)
    for k, sc in enumerate(res.scenarios):
        console.print(f"\n[bold]Scenario {sc.name}[/bold]: {sc.description}")
        t = Table(title="Tranches", title_justify="left")
        for col in (
            "tranche",
            "balance",
            "coupon",
            "principal paid",
            "interest paid",
            "loss",
            "WAL (y)",
            "min coverage",
            "support recv'd",
        ):
            t.add_column(col, justify="left" if col == "tranche" else "right")
        for row in res.tranches(k).itertuples(index=False):
            coupon = f"{row.coupon:.2%}" if isinstance(row.coupon, float) else str(row.coupon)
            t.add_row(
                row.tranche,
                f"{row.balance:,.0f}",
                coupon,
                f"{row.principal_paid:,.0f}",
                f"{row.interest_paid:,.0f}",
                f"{row.loss:,.0f}",
                _fmt(row.wal_years, "{:.2f}"),
                _fmt(row.min_coverage_ratio, "{:.2f}x"),
                f"{row.support_received:,.0f}",
            )
        console.print(t)
        pool = res.pool(k)
        console.print(
            f"Pool: defaulted {pool['defaulted']:,.0f} ({pool['cumulative_default_rate']:.2%}), "
            f"recovered {pool['recovered']:,.0f}, realised loss {pool['realised_loss']:,.0f}, "
            f"support paid {pool['support_paid']:,.0f}, worst status {pool['worst_status']}"
            + (f" from period {first}" if (first := pool["first_trigger_period"]) else "")
        )
        cf = res.cashflows(k)
        t = Table(title="Cash flows by period", title_justify="left")
        cols = ["period", "payment_date", "collections", "defaults", "pool_balance_end"]
        for name in cd.tranche_names:
            cols += [
                c
                for c in (
                    f"{name}.interest_paid",
                    f"{name}.principal_paid",
                    f"{name}.residual_paid",
                    f"{name}.balance_end",
                )
                if c in cf.columns
            ]
        cols += ["coverage_ratio", "status"]
        for c in cols:
            head = _HEADERS.get(c.split(".")[-1], c) + (f" {c.split('.')[0]}" if "." in c else "")
            t.add_column(head, justify="right", no_wrap=True)
        for _, r in cf[cols].iterrows():
            cells = [_cell(c, r[c], "{:.2f}x") for c in cols]
            t.add_row(*cells)
        console.print(t)


_HEADERS = {
    "period": "t",
    "payment_date": "date",
    "collections": "collections",
    "defaults": "defaults",
    "pool_balance_end": "pool bal",
    "interest_paid": "int",
    "principal_paid": "prin",
    "residual_paid": "resid",
    "balance_end": "bal",
    "coverage_ratio": "cov",
    "status": "status",
}


def _cell(column: str, v: Any, coverage_spec: str) -> str:
    """One cell of a per-period table: dates, labels, probabilities, coverage, yuan."""
    if column == "payment_date":
        return str(v.date())
    if column in ("period", "status"):
        return str(v)
    if column.endswith("probability"):
        return f"{v:.2%}"
    if column.startswith("coverage_ratio"):
        return _fmt(v, coverage_spec)
    return f"{v:,.0f}"


def _fmt(v: float, spec: str) -> str:
    return "-" if v is None or v != v else spec.format(v)


def _check_out_names(scenarios: Any) -> None:
    """Scenario names become file names under ``--out``: refuse, before anything is written,
    names that are not plain file names or that two scenarios share."""
    problems, seen = [], set()
    for sc in scenarios:
        name = sc.name
        if "/" in name or "\\" in name:
            why = "scenario name cannot be used in an --out file name (no / or \\)"
            problems.append(Problem(scenario_source(sc), "name", why, name))
        elif name in seen:
            why = "two scenarios have this name; their --out files would overwrite each other"
            problems.append(Problem(scenario_source(sc), "name", why, name))
        seen.add(name)
    if problems:
        raise DealError(problems)


def _write_out(res: Any, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    ledger = res.ledger()
    written = []
    targets: list[tuple[str, Callable[[Path], object]]] = [
        ("ledger.parquet", lambda p: ledger.to_parquet(p, index=False)),
        ("ledger.csv", lambda p: ledger.to_csv(p, index=False)),
        ("summary.json", lambda p: p.write_text(json.dumps(_result_document(res), indent=2))),
    ]
    for k, sc in enumerate(res.scenarios):
        tranches, cashflows = res.tranches(k), res.cashflows(k)
        targets.append((f"tranches_{sc.name}.csv", partial(tranches.to_csv, index=False)))
        targets.append((f"cashflows_{sc.name}.csv", partial(cashflows.to_csv, index=False)))
    for name, fn in targets:
        atomic_write(out / name, fn)
        written.append(out / name)
    return written


def _cmd_run(args: argparse.Namespace) -> int:
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise DealError.one(args.out, "<file>", "--out must be a folder, not a file")
    deal = load_deal(args.deal)
    names = args.scenario or ([deal.base_scenario] if deal.base_scenario else [])
    scenarios = [load_scenario(s, deal) for s in names]
    stochastic = [s for s in scenarios if isinstance(s, MonteCarloScenario)]
    if stochastic:
        if len(stochastic) != len(scenarios):
            raise AbsEngineError("run Monte Carlo and deterministic scenarios in separate commands")
        return _run_monte_carlo(args, deal, stochastic)
    mc_only = [
        f"--{o.replace('_', '-')}"
        for o in ("paths", "seed", "threads", "ledger_paths")
        if getattr(args, o) is not None
    ]
    if mc_only or args.keep_paths:
        raise AbsEngineError(
            f"{', '.join(mc_only or ['--keep-paths'])}: only for Monte Carlo scenarios"
        )
    res = run_deterministic(deal, scenarios or None)
    if args.out:
        _check_out_names(res.scenarios)
    if args.json:
        print(json.dumps(_result_document(res), indent=2))
    else:
        _print_tables(res)
    if args.out:
        files = _write_out(res, args.out)
        if not args.json:
            print(f"\nwrote {len(files)} files to {args.out}")
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace) -> int:
    deal = load_deal(args.deal)
    cd = compile_deal(deal)
    problems = []
    for s in args.scenario or []:
        try:
            sc = load_scenario(s, deal)
            if isinstance(sc, DeterministicScenario):
                run_deterministic(cd, [sc])
            else:
                compile_model(cd, sc)
        except DealError as exc:
            problems.extend(exc.problems)
    if problems:
        raise DealError(problems)
    print(
        f"{args.deal}: OK — {cd.n_obligors} obligors, {len(cd.tranche_names)} tranches, "
        f"{cd.n_periods} periods"
    )
    return EXIT_OK


def _mc_document(res: Any) -> dict[str, Any]:
    cd = res.deal
    tranches = []
    for row in res.tranches.to_dict(orient="records"):
        bal = row["balance"]
        tranches.append(
            {
                "name": row["tranche"],
                "balance": bal,
                "coupon": row["coupon"],
                "principal_paid": row["principal_received"],
                "principal_paid_se": row["principal_received_se"],
                "interest_paid": row["interest_received"],
                "interest_paid_se": row["interest_received_se"],
                "loss": row["principal_loss"] * bal if bal else 0.0,
                "loss_se": row["principal_loss_se"] * bal if bal else 0.0,
                **{k: v for k, v in row.items() if k not in ("tranche", "balance", "coupon")},
            }
        )
    pool = {m: {"mean": r["mean"], "se": r["se"]} for m, r in res.pool.iterrows()}
    return nan_to_none(
        {
            "deal": cd.deal.name,
            "source": cd.source,
            "currency": cd.deal.currency,
            "scenario": res.scenario.name,
            "kind": "monte_carlo",
            "n_paths": res.n_paths,
            "seed": res.seed,
            "seconds": res.seconds,
            "compile_seconds": res.compile_seconds,
            "rating_table": {
                "source": res.rating_table.source,
                "basis": res.rating_table.basis,
                "illustrative": res.rating_table.illustrative,
            },
            "periods": cd.n_periods,
            "payment_dates": [d.isoformat() for d in cd.payment_dates],
            "tranches": tranches,
            "pool": pool,
            "cashflows": json.loads(res.cashflows.to_json(orient="records", date_format="iso")),
        }
    )


def _print_monte_carlo(res: Any) -> None:
    from rich.table import Table

    cd, sc = res.deal, res.scenario
    console = _deal_console(cd)
    console.print(
        f"\n[bold]Scenario {sc.name}[/bold] (Monte Carlo): {sc.description}\n"
        f"{res.n_paths:,} paths, seed {res.seed}, {res.seconds:.2f} s "
        f"({res.n_paths / max(res.seconds, 1e-9):,.0f} paths/s"
        + (
            f"; plus {res.compile_seconds:.1f} s compiling the kernels, once: they are cached"
            if res.compile_seconds >= 1.0
            else ""
        )
        + "). Figures are means ± one standard error."
    )
    t = Table(title="Tranches", title_justify="left")
    for col in (
        "tranche",
        "balance",
        "coupon",
        "expected loss (PV)",
        "P(shortfall)",
        "WAL (y)",
        "yield",
        "min coverage",
        "support recv'd",
        "implied rating*",
    ):
        t.add_column(col, justify="left" if col == "tranche" else "right")
    for r in res.tranches.to_dict(orient="records"):
        c = r["coupon"]
        coupon = (
            f"{c:.2%}"
            if isinstance(c, float) and c == c
            else (c if isinstance(c, str) else "residual")
        )
        t.add_row(
            r["tranche"],
            f"{r['balance']:,.0f}",
            coupon,
            _pm(r["expected_loss"], r["expected_loss_se"], "{:.4%}"),
            _pm(r["default_probability"], r["default_probability_se"], "{:.3%}"),
            _pm(r["wal_years"], r["wal_years_se"], "{:.3f}"),
            _pm(r["irr"], r["irr_se"], "{:.3%}"),
            _pm(r["min_coverage_ratio"], r["min_coverage_ratio_se"], "{:.3f}x"),
            _pm(r["support_received"], r["support_received_se"], "{:,.0f}"),
            r["implied_rating"],
        )
    console.print(t)
    rt = res.rating_table
    note = "ILLUSTRATIVE table shipped with abs_engine" if rt.illustrative else rt.source
    console.print(f"* implied rating: expected loss vs the idealized table at the WAL ({note})")
    t = Table(title="Pool", title_justify="left")
    t.add_column("metric")
    t.add_column("mean ± se", justify="right")
    fmts = {
        "default_count": "{:.4f}",
        "support_paid": "{:,.0f}",
        "compensation_received": "{:,.0f}",
        "cash_released": "{:,.0f}",
        "min_coverage_ratio": "{:.3f}x",
    }
    for m, r in res.pool.iterrows():
        t.add_row(str(m).replace("_", " "), _pm(r["mean"], r["se"], fmts.get(str(m), "{:.4%}")))
    console.print(t)
    cf = res.cashflows
    t = Table(title="Expected cash flows by period (means)", title_justify="left")
    cols = [
        "period",
        "payment_date",
        "pool.interest",
        "pool.scheduled_principal",
        "pool.defaults",
        "pool.recoveries",
        "pool.balance_end",
    ]
    for j, name in enumerate(cd.tranche_names):
        interest = (
            "residual_paid" if cd.deal.tranches[j].principal == "residual" else "interest_paid"
        )
        cols += [f"{name}.{interest}", f"{name}.principal_paid", f"{name}.balance_end"]
    cols += ["pool.support_paid", "pool.accelerated_probability", "coverage_ratio"]
    for c in cols:
        if c in _MC_HEADERS:
            head = _MC_HEADERS[c]
        else:
            owner, item = c.split(".")
            head = f"{_HEADERS.get(item, item)} {owner}"
        t.add_column(head, justify="right", no_wrap=True)
    for _, r in cf[cols].iterrows():
        cells = [_cell(c, r[c], "{:.3f}x") for c in cols]
        t.add_row(*cells)
    console.print(t)


_MC_HEADERS = {
    "period": "t",
    "payment_date": "date",
    "pool.interest": "pool int",
    "pool.scheduled_principal": "pool prin",
    "pool.defaults": "defaults",
    "pool.recoveries": "recoveries",
    "pool.balance_end": "pool bal",
    "pool.support_paid": "support",
    "coverage_ratio": "cov (mean)",
    "pool.accelerated_probability": "P(accel)",
}


def _pm(mean: float, se: float, spec: str) -> str:
    if mean is None or mean != mean:
        return "-"
    text = spec.format(mean)
    if se is not None and se == se:
        text += " ± " + spec.format(se).rstrip("x")
    return text


def _run_monte_carlo(
    args: argparse.Namespace, deal: Any, scenarios: list[MonteCarloScenario]
) -> int:
    if args.out:
        _check_out_names(scenarios)
    docs = []
    for sc in scenarios:
        res = simulate(
            deal,
            sc,
            n_paths=args.paths,
            seed=args.seed,
            threads=args.threads,
            keep_paths=bool(args.keep_paths and args.out),
            ledger_paths=args.ledger_paths or ([0] if args.out else []),
            progress=False if (args.no_progress or args.json) else None,
        )
        doc = _mc_document(res)
        docs.append(doc)
        if not args.json:
            _print_monte_carlo(res)
        if args.out:
            _write_mc_out(res, doc, args.out)
    if args.json:
        print(json.dumps(docs[0] if len(docs) == 1 else {"scenarios": docs}, indent=2))
    elif args.out:
        print(f"\nwrote results to {args.out}")
    return EXIT_OK


def _write_mc_out(res: Any, doc: dict[str, Any], out: Path) -> None:
    import pandas as pd

    from .report.frames import ledger_long

    out.mkdir(parents=True, exist_ok=True)
    name = res.scenario.name
    targets: list[tuple[str, Callable[[Path], object]]] = [
        (f"summary_{name}.json", lambda p: p.write_text(json.dumps(doc, indent=2))),
        (f"tranches_{name}.csv", lambda p: res.tranches.to_csv(p, index=False)),
        (f"pool_{name}.csv", lambda p: res.pool.to_csv(p)),
        (f"cashflows_{name}.csv", lambda p: res.cashflows.to_csv(p, index=False)),
    ]
    if res.paths is not None:
        targets.append((f"paths_{name}.parquet", lambda p: res.paths.to_parquet(p)))
    if res.ledgers:
        led = pd.concat(
            [ledger_long(w).assign(path=p) for p, w in res.ledgers.items()], ignore_index=True
        )
        targets.append((f"ledger_{name}.parquet", lambda p: led.to_parquet(p, index=False)))
        targets.append((f"ledger_{name}.csv", lambda p: led.to_csv(p, index=False)))
    for fname, fn in targets:
        atomic_write(out / fname, fn)


def _parse_condition(text: str) -> tuple[str, float]:
    kind, sep, value = text.partition(":")
    if kind == "first_loss":
        if sep:
            raise AbsEngineError("--condition first_loss takes no value")
        return kind, 0.0
    if kind not in ("el_above", "irr_below", "pd_above"):
        raise AbsEngineError(
            f"unknown --condition {kind!r}; use first_loss, el_above:X, irr_below:Y, pd_above:P"
        )
    try:
        return kind, float(value)
    except ValueError:
        raise AbsEngineError(
            f"--condition {kind} needs a number, e.g. {kind}:0.001 (got {value!r})"
        ) from None


def _parse_range(text: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise AbsEngineError(
            f"--range needs two numbers lo,hi (got {text!r}; write --range=-1,0 for negatives)"
        ) from None


_DEFAULT_RANGES = {
    "pd_multiplier": (0.0, 20.0),
    "recovery": (1.0, 0.0),
    "ip_haircut": (0.0, 1.0),
    "correlation": (0.0, 0.95),
    "cpr": (0.0, 0.5),
    "provider_pd_multiplier": (0.0, 50.0),
}


def _grid(spec: str) -> tuple[str, list[float]]:
    name, _, values = spec.partition("=")
    try:
        return name.strip(), [float(v) for v in values.split(",") if v.strip()]
    except ValueError:
        raise AbsEngineError(f"expected param=v1,v2,... got {spec!r}") from None


def _cmd_solver(args: argparse.Namespace) -> int:
    from . import solvers as S
    from .metrics.rating import load_rating_table

    deal = load_deal(args.deal)
    name = args.scenario or deal.base_scenario
    if name is None:
        raise AbsEngineError("the deal names no base_scenario: give --scenario")
    sc = load_scenario(name, deal)
    if not isinstance(sc, MonteCarloScenario):
        raise AbsEngineError(
            f"{args.command} needs a Monte Carlo scenario; {sc.name!r} is deterministic"
        )
    doc: dict[str, Any] = {
        "deal": deal.name,
        "scenario": sc.name,
        "paths": args.paths,
        "seed": sc.seed if args.seed is None else args.seed,
    }
    if args.command == "size":
        table = load_rating_table(args.rating_table)
        out = S.size_tranche(
            deal,
            sc,
            args.tranche,
            target_rating=args.target,
            target_el=args.target_el,
            n_paths=args.paths,
            seed=args.seed,
            rating_table=table,
        )
        doc.update(
            {
                "tranche": args.tranche,
                "target": args.target or args.target_el,
                **out,
                "rating_table": {"source": table.source, "illustrative": table.illustrative},
            }
        )
        what = "default probability" if out["basis"] == "pd" else "expected loss"
        text = (
            f"largest {args.tranche} meeting {args.target or f'EL {args.target_el:.4%}'}: "
            f"{out['balance']:,.0f} ({out['share_of_capital']:.2%} of its capital and the "
            f"junior's); {what} {out['metric']:.5%} ± {out['metric_se']:.5%}, limit "
            f"{out['limit']:.5%} at WAL {out['wal_years']:.2f} y"
        )
        if out["metric_se"] > 0.5 * out["limit"]:
            text += (
                "\nnote: the standard error is comparable to the limit: too few loss paths "
                "to size this precisely; raise --paths"
            )
    elif args.command == "price":
        curve = S.load_curve(args.curve)
        coupon = S.solve_coupon(
            deal,
            sc,
            args.tranche,
            curve,
            spread_bps=args.spread_bps,
            n_paths=args.paths,
            seed=args.seed,
        )
        doc.update(
            {
                "tranche": args.tranche,
                "curve": args.curve,
                "spread_bps": args.spread_bps,
                "par_coupon": coupon,
            }
        )
        text = (
            f"par coupon of {args.tranche} over {args.curve} + {args.spread_bps:g} bp: {coupon:.4%}"
        )
    elif args.command == "breakeven":
        cond = S.condition(*_parse_condition(args.condition))
        if args.param not in _DEFAULT_RANGES:
            raise AbsEngineError(
                f"unknown parameter {args.param!r}; choose from {sorted(_DEFAULT_RANGES)}"
            )
        lo, hi = _DEFAULT_RANGES[args.param]
        if args.range:
            lo, hi = _parse_range(args.range)
        cd = compile_deal(deal)
        v = S.breakeven(
            cd, sc, args.tranche, args.param, cond, lo=lo, hi=hi, n_paths=args.paths, seed=args.seed
        )
        doc.update(
            {
                "tranche": args.tranche,
                "param": args.param,
                "condition": args.condition,
                "breakeven": v,
            }
        )
        text = f"{args.tranche} fails {args.condition} at {args.param} = {v:.4f}"
    else:
        cd = compile_deal(deal)
        x, y = _grid(args.x), _grid(args.y)
        grid = S.sensitivity(cd, sc, x, y, n_paths=args.paths, seed=args.seed)
        doc.update({"x": x[0], "y": y[0], "grid": grid.to_dict(orient="records")})
        tr = args.tranche or cd.tranche_names[0]
        sub_g = grid[grid.tranche == tr]
        el = sub_g.pivot(index=x[0], columns=y[0], values="expected_loss")
        rt = sub_g.pivot(index=x[0], columns=y[0], values="implied_rating")
        lines = [f"{tr} expected loss (implied rating*), rows {x[0]}, columns {y[0]}:"]
        lines.append(" " * 10 + "".join(f"{c:>20g}" for c in el.columns))
        for idx in el.index:
            cells = "".join(f"{el.loc[idx, c]:>11.4%} ({rt.loc[idx, c]:>5})" for c in el.columns)
            lines.append(f"{idx:>10g}" + cells)
        lines.append("* against the ILLUSTRATIVE idealized table")
        text = "\n".join(lines)
    if args.json:
        print(json.dumps(nan_to_none(doc), indent=2))
    else:
        print(text)
    return EXIT_OK


def _cmd_synth(args: argparse.Namespace) -> int:
    from .synthetic import write_synthetic

    try:
        attach = [float(x) for x in args.attach.split(",") if x.strip()]
    except ValueError:
        raise AbsEngineError(
            f"--attach needs numbers like 0.03,0.06,0.10, got {args.attach!r}"
        ) from None
    paths = write_synthetic(
        args.out,
        args.obligors,
        name=args.name,
        correlation=args.correlation,
        heterogeneous=args.heterogeneous,
        attachments=attach,
        annual_pd=args.pd,
        recovery_rate=args.recovery,
        amortization=args.amortization,
        n_periods=args.periods,
        seed=args.seed,
    )
    compile_deal(load_deal(paths["deal"]))  # what was written loads and compiles
    for kind, p in paths.items():
        print(f"{kind}: {p}")
    print(f"run it: abs-engine run {paths['deal']} -s {paths['scenario']} --paths 10000")
    return EXIT_OK


def _cmd_stress(args: argparse.Namespace) -> int:
    from .solvers import breakeven_default_rate, coverage_table, large_obligor_test

    deal = load_deal(args.deal)
    cd = compile_deal(deal)
    rated = [t.name for t in deal.tranches if t.principal != "residual" and t.balance > 0]
    names = args.tranche or rated
    rows = []
    for name in names:
        for support in (True, False):
            be = breakeven_default_rate(
                cd, name, recovery_rate=args.recovery, recovery_lag=args.lag, support=support
            )
            rows.append(
                {
                    "tranche": name,
                    "support": support,
                    "breakeven_default_rate": be.breakeven_default_rate,
                    "never_fails": be.never_fails,
                    "base_case_default_rate": be.base_case_default_rate,
                    "multiple": be.multiple,
                }
            )
    lot = large_obligor_test(
        cd,
        names[0] if names else None,
        max_obligors=args.largest,
        period=args.period,
        recovery_rate=args.recovery,
        recovery_lag=args.lag,
    )
    sc_names = args.scenario or (
        [deal.deterministic_scenario] if deal.deterministic_scenario else []
    )
    scs = [load_scenario(s, deal) for s in sc_names]
    det = [s for s in scs if isinstance(s, DeterministicScenario)]
    if len(det) != len(scs):
        raise AbsEngineError("the coverage table takes deterministic scenarios only")
    cov = coverage_table(cd, det) if det else None
    doc = nan_to_none(
        {
            "deal": cd.deal.name,
            "source": cd.source,
            "assumptions": {
                "recovery_rate": args.recovery,
                "recovery_lag": args.lag,
                "timing": "front-loaded over the first two thirds of the periods",
            },
            "breakeven": rows,
            "large_obligor_test": {
                "tranche": names[0] if names else None,
                "period": args.period,
                "rows": lot.to_dict(orient="records"),
            },
            "coverage_ratio": None if cov is None else cov.reset_index().to_dict(orient="records"),
        }
    )
    if args.json:
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    from rich.table import Table

    console = _deal_console(cd)
    title = (
        f"Breakeven cumulative default rate (recovery {args.recovery:.0%} after {args.lag} "
        "periods, front-loaded timing)"
    )
    t = Table(title=title, title_justify="left")
    for col in ("tranche", "support", "breakeven", "base case", "multiple"):
        t.add_column(col, justify="left" if col == "tranche" else "right")
    for r in rows:
        never = bool(r["never_fails"])
        t.add_row(
            str(r["tranche"]),
            "with" if r["support"] else "without",
            "never fails" if never else f"{r['breakeven_default_rate']:.2%}",
            f"{r['base_case_default_rate']:.2%}",
            "-" if never else f"{r['multiple']:.2f}x",
        )
    console.print(t)
    t = Table(
        title=f"Large-obligor test: the k largest default in period {args.period}",
        title_justify="left",
    )
    for col in (
        "k",
        "defaulted",
        "share",
        "paid with support",
        "loss",
        "support paid",
        "paid without support",
        "loss without",
    ):
        t.add_column(col, justify="right")
    for r in lot.to_dict(orient="records"):
        t.add_row(
            str(r["defaulted_obligors"]),
            f"{r['defaulted_balance']:,.0f}",
            f"{r['defaulted_share']:.1%}",
            "yes" if r["paid_in_full_with_support"] else "NO",
            f"{r['loss_with_support']:,.0f}",
            f"{r['support_paid']:,.0f}",
            "yes" if r["paid_in_full_without_support"] else "NO",
            f"{r['loss_without_support']:,.0f}",
        )
    console.print(t)
    if cov is not None:
        t = Table(title="Coverage ratio by period (现金流覆盖倍数)", title_justify="left")
        t.add_column("t", justify="right")
        t.add_column("date", justify="right")
        for s in det:
            t.add_column(s.name, justify="right")
        for period, r in cov.iterrows():
            t.add_row(str(period), r["payment_date"], *(_fmt(r[s.name], "{:.3f}x") for s in det))
        console.print(t)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "stress":
            return _cmd_stress(args)
        if args.command == "synth":
            return _cmd_synth(args)
        if args.command in ("size", "price", "breakeven", "sensitivity"):
            return _cmd_solver(args)
        return _cmd_validate(args)
    except DealError as exc:
        n = len(exc.problems)
        print(f"error: {n} problem{'s' if n > 1 else ''} found", file=sys.stderr)
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
        return EXIT_INPUT
    except AbsEngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
