"""Results for people at a terminal: the tables and lines that ``abs-engine`` prints.

A deterministic run prints, per scenario, its tranche table, a pool line and the cash flows by
period; a Monte Carlo run its tranche, pool and expected cash-flow tables with standard errors;
``stress`` its breakeven, large-obligor and coverage-ratio tables; the solvers one line or a
grid. Amounts are in the deal's currency (yuan), rates as percentages. ``rich`` is imported
only when a table is printed: ``abs-engine validate`` and ``--help`` do not need it.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .tables import sig_decimals

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    from ..api import DeterministicResult
    from ..compile.deal import CompiledDeal
    from ..metrics.rating import RatingTable
    from .montecarlo import SimulationResult

__all__ = [
    "print_comparison",
    "breakeven_text",
    "deal_console",
    "fmt",
    "price_text",
    "print_deterministic",
    "print_json",
    "print_monte_carlo",
    "print_stress",
    "print_warnings",
    "sensitivity_text",
    "size_stack_text",
    "size_text",
]


def print_json(doc: Any) -> None:
    """One JSON document on stdout, indented by two spaces."""
    print(json.dumps(doc, indent=2))


def print_warnings(cd: CompiledDeal) -> None:
    """The deal's warnings (allowed but probably wrong) on stderr, one ``warning: ...`` line
    each; the exit status is unchanged."""
    for w in cd.warnings:
        print(f"warning: {w}", file=sys.stderr)


def plain_console() -> Console:
    """A rich console, 200 columns when not a terminal, that reads no markup: names and
    descriptions are printed as written (a deal named ``A[/x]`` stopped ``run`` with rich's
    markup error; bold parts are :func:`_bold_line`'s styled text). A closed pipe (``| head``)
    raises ``BrokenPipeError``, which the command line takes as the reader having had
    enough, as with ``--json`` (rich's own exits with status 1)."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich's own points stdout at /dev/null for good and exits: the command line's
            # entry does that as the process ends, a caller in process keeps its stdout
            self.quiet = True
            raise BrokenPipeError

    probe = Console()
    return _Console(width=probe.width if probe.is_terminal else 200, markup=False)


def _printable(text: str) -> str:
    """Free text for the terminal (a description, a file's path): control characters but line
    breaks and tabs as U+FFFD, so none reaches the terminal as an escape sequence (names may
    hold none)."""
    from ..schema.common import CONTROL_CHARS

    return CONTROL_CHARS.sub(lambda m: m.group() if m.group() in "\n\t" else "\ufffd", text)


def _bold_line(bold: str, rest: str) -> Any:
    """``bold`` in bold, then ``rest``: rich text, both printed as written."""
    from rich.text import Text

    return Text.assemble((_printable(bold), "bold"), _printable(rest))


def deal_console(cd: CompiledDeal) -> Console:
    """A :func:`plain_console` with the deal's header printed."""
    console = plain_console()
    console.print(_bold_line(cd.deal.name, f"  ({cd.source})"))
    console.print(
        f"{cd.n_obligors} obligors, pool {cd.original_pool:,.0f} {cd.deal.currency}, "
        f"{cd.n_periods} periods {cd.payment_dates[0]} .. {cd.payment_dates[-1]}"
    )
    return console


def _table(title: str, columns: Sequence[str], left: str | None = None) -> Table:
    """A table with its title on the left; every column right-justified but ``left``."""
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col, justify="left" if col == left else "right")
    return t


def fmt(v: float | None, spec: str) -> str:
    """``spec`` applied to ``v``; ``-`` for None or NaN."""
    return "-" if v is None or v != v else spec.format(v)


def _pm(mean: float | None, se: float | None, spec: str) -> str:
    """``mean ± se`` (the se without a trailing ``x``); ``-`` for a missing mean."""
    if mean is None or mean != mean:
        return "-"
    text = spec.format(mean)
    if se is not None and se == se:
        text += " ± " + spec.format(se).rstrip("x")
    return text


def _cell(column: str, v: Any, coverage_spec: str) -> str:
    """One cell of a per-period table: dates, labels, probabilities, coverage, yuan."""
    if column == "payment_date":
        return str(v.date())
    if column in ("period", "status"):
        return str(v)
    if column.endswith("probability"):
        return f"{v:.2%}"
    if column.startswith("coverage_ratio"):
        return fmt(v, coverage_spec)
    return f"{v:,.0f}"


#: short headers of the per-period columns (a tranche's columns add its name)
_HEADERS = {
    "period": "t",
    "payment_date": "date",
    "pool.collections": "collections",
    "pool.defaults": "defaults",
    "pool.balance_end": "pool bal",
    "interest_paid": "int",
    "principal_paid": "prin",
    "residual_paid": "resid",
    "balance_end": "bal",
    "coverage_ratio": "cov",
    "status": "status",
}


# --- a deterministic run -------------------------------------------------------------------------


def print_deterministic(res: DeterministicResult) -> None:
    """The deal's header, then per scenario its tranches, pool and cash flows by period."""
    cd = res.compiled
    console = deal_console(cd)
    for sc, view in zip(res.scenarios, res, strict=True):
        console.print(_bold_line(f"\nScenario {sc.name}", f": {sc.description}"))
        console.print(_tranche_table(view.tranches))
        console.print(_pool_line(view.pool_summary))
        console.print(_cashflow_table(cd, view.cashflows))


def _tranche_table(tranches: pd.DataFrame) -> Table:
    columns = (
        "tranche",
        "balance",
        "coupon",
        "principal paid",
        "interest paid",
        "loss",
        "WAL (y)",
        "min coverage",
        "support recv'd",
    )
    t = _table("Tranches", columns, left="tranche")
    for row in tranches.itertuples(index=False):
        coupon = f"{row.coupon:.2%}" if isinstance(row.coupon, float) else str(row.coupon)
        t.add_row(
            row.tranche,
            f"{row.balance:,.0f}",
            coupon,
            f"{row.principal_paid:,.0f}",
            f"{row.interest_paid:,.0f}",
            f"{row.loss:,.0f}",
            fmt(row.wal_years, "{:.2f}"),
            fmt(row.min_coverage_ratio, "{:.2f}x"),
            f"{row.support_received:,.0f}",
        )
    return t


def _pool_line(pool: dict[str, Any]) -> str:
    return (
        f"Pool: defaulted {pool['defaulted']:,.0f} ({pool['cumulative_default_rate']:.2%}), "
        f"recovered {pool['recovered']:,.0f}, realised loss {pool['realised_loss']:,.0f}, "
        f"support paid {pool['support_paid']:,.0f}, worst status {pool['worst_status']}"
        + (f" from period {first}" if (first := pool["first_trigger_period"]) else "")
    )


def _cashflow_table(cd: CompiledDeal, cf: pd.DataFrame) -> Table:
    cols = ["period", "payment_date", "pool.collections", "pool.defaults", "pool.balance_end"]
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
    heads = [_owned_header(c) for c in cols]
    return _period_table("Cash flows by period", cf, cols, heads, "{:.2f}x")


def _owned_header(column: str) -> str:
    """The header of a ``<owner>.<item>`` column (an owner, a tranche's name, may hold dots
    itself), or of a deal-level column."""
    if column in _HEADERS:
        return _HEADERS[column]
    owner, dot, item = column.rpartition(".")
    return f"{_HEADERS.get(item, item)} {owner}" if dot else column


def _period_table(
    title: str, cf: pd.DataFrame, cols: list[str], heads: list[str], coverage_spec: str
) -> Table:
    """Rows ``cf[cols]`` under ``heads``, every column right-justified and unwrapped; a column
    with a standard error in ``cf`` (``<column>_se``: Monte Carlo means) shows it under the
    mean, ``±se``, in the same cell."""
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for head in heads:
        t.add_column(head, justify="right", no_wrap=True)
    with_se = [c for c in cols if f"{c}_se" in cf.columns]
    for _, r in cf[cols + [f"{c}_se" for c in with_se]].iterrows():
        cells = []
        for c in cols:
            cell = _cell(c, r[c], coverage_spec)
            if c in with_se and not math.isnan(r[f"{c}_se"]):
                cell += "\n±" + _cell(c, r[f"{c}_se"], coverage_spec)
            cells.append(cell)
        t.add_row(*cells)
    return t


def _multiple(v: Any, never: bool) -> str:
    """A breakeven multiple: ``-`` for a tranche that never fails or a 0/0, ``∞`` over a
    base case of no defaults."""
    if never:
        return "-"
    return "∞" if v == math.inf else fmt(v, "{:.2f}x")


# --- a Monte Carlo run ---------------------------------------------------------------------------


def print_monte_carlo(res: SimulationResult) -> None:
    """The deal's header, the run's paths and timing, then its tranche, pool and expected
    cash-flow tables: means ± one standard error."""
    cd, sc = res.deal, res.scenario
    console = deal_console(cd)
    console.print(_bold_line(f"\nScenario {sc.name}", f" (Monte Carlo): {sc.description}"))
    console.print(
        f"{res.n_paths:,} paths, seed {res.seed}, {res.seconds:.2f} s "
        f"({res.n_paths / max(res.seconds, 1e-9):,.0f} paths/s"
        + (
            f"; plus {res.compile_seconds:.1f} s compiling the kernels, once: they are cached"
            if res.compile_seconds >= 1.0
            else ""
        )
        + "). Figures are means ± one standard error."
    )
    if res.sampling["method"] != "crude":
        console.print(sampling_text(res.sampling))
    if res.precision is not None:
        console.print(precision_text(res.precision))
    console.print(_mc_tranche_table(res.tranches))
    rt = res.rating_table
    note = "ILLUSTRATIVE table shipped with abs_engine" if rt.illustrative else rt.source
    console.print(f"* implied rating: expected loss vs the idealized table at the WAL ({note})")
    console.print(_mc_pool_table(res.pool))
    console.print(_mc_cashflow_table(cd, res.cashflows))


def _mc_tranche_table(tranches: pd.DataFrame) -> Table:
    columns = (
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
    )
    t = _table("Tranches", columns, left="tranche")
    for r in tranches.to_dict(orient="records"):
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
    return t


#: formats of the pool metrics that are not rates
_MC_POOL_FORMATS = {
    "default_count": "{:.4f}",
    "support_paid": "{:,.0f}",
    "compensation_received": "{:,.0f}",
    "cash_released": "{:,.0f}",
    "min_coverage_ratio": "{:.3f}x",
}


def _mc_pool_table(pool: pd.DataFrame) -> Table:
    from rich.table import Table

    t = Table(title="Pool", title_justify="left")
    t.add_column("metric")
    t.add_column("mean ± se", justify="right")
    for m, r in pool.iterrows():
        spec = _MC_POOL_FORMATS.get(str(m), "{:.4%}")
        t.add_row(str(m).replace("_", " "), _pm(r["mean"], r["se"], spec))
    return t


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


def _mc_cashflow_table(cd: CompiledDeal, cf: pd.DataFrame) -> Table:
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
    heads = []
    for c in cols:
        if c in _MC_HEADERS:
            heads.append(_MC_HEADERS[c])
        else:
            heads.append(_owned_header(c))
    return _period_table(
        "Expected cash flows by period (means, ± one standard error below)",
        cf,
        cols,
        heads,
        "{:.3f}x",
    )


# --- stress --------------------------------------------------------------------------------------


def print_stress(
    cd: CompiledDeal,
    breakeven: list[dict[str, Any]],
    large_obligors: pd.DataFrame,
    coverage: pd.DataFrame | None,
    scenario_names: list[str],
    *,
    recovery: float,
    lag: int,
    period: int,
) -> None:
    """``stress``'s tables: breakeven default rates, the large-obligor test in ``period`` and,
    when given, the coverage ratio by period of each deterministic scenario."""
    console = deal_console(cd)
    console.print(_breakeven_table(breakeven, recovery, lag))
    console.print(_large_obligor_table(large_obligors, period))
    if coverage is not None:
        console.print(_coverage_table(coverage, scenario_names))


def _breakeven_table(rows: list[dict[str, Any]], recovery: float, lag: int) -> Table:
    title = (
        f"Breakeven cumulative default rate (recovery {recovery:.0%} after {lag} "
        "periods, front-loaded timing)"
    )
    columns = ("tranche", "support", "breakeven", "base case", "multiple")
    t = _table(title, columns, left="tranche")
    for r in rows:
        never = bool(r["never_fails"])
        t.add_row(
            str(r["tranche"]),
            "with" if r["support"] else "without",
            "never fails" if never else f"{r['breakeven_default_rate']:.2%}",
            f"{r['base_case_default_rate']:.2%}",
            _multiple(r["multiple"], never),
        )
    return t


def _large_obligor_table(lot: pd.DataFrame, period: int) -> Table:
    columns = (
        "k",
        "defaulted",
        "share",
        "paid with support",
        "loss",
        "support paid",
        "paid without support",
        "loss without",
    )
    t = _table(f"Large-obligor test: the k largest default in period {period}", columns)
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
    return t


def _coverage_table(cov: pd.DataFrame, names: list[str]) -> Table:
    t = _table("Coverage ratio by period (现金流覆盖倍数)", ["t", "date", *names])
    for period, r in cov.iterrows():
        t.add_row(str(period), r["payment_date"], *(fmt(r[name], "{:.3f}x") for name in names))
    return t


# --- solvers -------------------------------------------------------------------------------------


def precision_text(p: dict[str, Any]) -> str:
    """One line on a precision-targeted run: the goal, what it reached, in how many paths."""
    goal = (
        f"a standard error of {p['target_se']:.3g}"
        if p["target_se"] is not None
        else f"a relative standard error of {p['target_rel_se']:.2%}"
    )
    rel = "" if p["rel_se"] is None else f" ({p['rel_se']:.2%} relative)"
    text = (
        f"target: {p['tranche']}'s expected loss to {goal}: "
        f"{'reached' if p['reached'] else 'NOT reached'} with {p['paths']:,} paths in "
        f"{len(p['rounds'])} rounds, EL {p['expected_loss']:.4e} ± "
        f"{p['expected_loss_se']:.2e}{rel}"
    )
    if p["note"]:
        text += f"\nnote: {p['note']}"
    return text


def sampling_text(sampling: dict[str, Any]) -> str:
    """One line on an importance-sampled run: its target, effective sample size, mean weight
    and the in-run variance reduction of the target's expected loss."""
    target = sampling.get("target_tranche")
    vr = sampling["variance_reduction"].get(target, {}).get("expected_loss", float("nan"))
    reduction = (
        f"variance of {target}'s expected loss {vr:,.1f}x smaller than crude sampling's "
        "(in-run estimate)"
        if vr is not None and math.isfinite(vr)
        else f"variance reduction of {target}'s expected loss not defined (nothing to compare: "
        "no variance in the run)"
    )
    text = (
        f"importance sampling aimed at {target}: effective sample size "
        f"{sampling['effective_sample_size']:,.0f}, mean weight {sampling['weight_mean']:.4f} ± "
        f"{sampling['weight_mean_se']:.4f}; {reduction}"
    )
    for w in sampling.get("warnings", []):
        text += f"\nwarning: {w}"
    return text


def _pct_se(se: float, decimals: int = 5) -> str:
    """A standard error as a percentage; "n/a" where there is none (one path)."""
    if not math.isfinite(se):
        return "n/a (too few paths for a standard error)"
    return f"{se:.{decimals}%}"


def size_text(tranche: str, target: str, out: dict[str, Any]) -> str:
    """``size``'s result: the largest balance of ``tranche`` meeting ``target`` (a rating, or
    ``EL x%``), with a note when the standard error is too large for the limit."""
    what = "default probability" if out["basis"] == "pd" else "expected loss"
    # the digits the limit and the standard error need (an AAA limit of 1.65e-7 printed as
    # 0.00002% ± 0.00000%: an 8.5% standard error shown as none)
    se = out["metric_se"]
    d = max(5, sig_decimals(out["limit"]), sig_decimals(se if math.isfinite(se) else None, 2))
    text = (
        f"largest {tranche} meeting {target}: "
        f"{out['balance']:,.0f} ({out['share_of_capital']:.2%} of its capital and the "
        f"junior's); {what} {out['metric']:.{d}%} ± {_pct_se(se, d)}, limit "
        f"{out['limit']:.{d}%} at WAL {out['wal_years']:.2f} y"
    )
    ci = out.get("balance_ci95")
    if ci is not None:
        text += f"\n95% interval of the balance: {ci[0]:,.0f} .. {ci[1]:,.0f}"
    if out.get("sampling", "crude") != "crude":
        text += f" ({out['sampling']} sampling)"
    if out["metric_se"] > 0.5 * out["limit"]:
        text += (
            "\nnote: the standard error is comparable to the limit: too few loss paths "
            "to size this precisely; raise --paths"
        )
    from ..metrics.sampling import MIN_EFFECTIVE_PATHS

    # the effective paths behind the expected loss (a default-probability basis has its own)
    k = out.get("effective_loss_paths") if out["basis"] != "pd" else None
    other = " or use --sampling importance" if out.get("sampling", "crude") == "crude" else ""
    if k == 0.0 and out["limit"] > 0.0 and out["share_of_capital"] < 1.0:
        text += (
            f"\nwarning: no path lost at this balance: {out['effective_sample_size']:,.0f} "
            f"path{'' if out['effective_sample_size'] == 1 else 's'} cannot tell a smaller "
            "expected loss from none, so the balance and its "
            "interval say only that; raise --paths" + other
        )
    elif k is not None and 0.0 < k < MIN_EFFECTIVE_PATHS:
        text += (
            f"\nwarning: the expected loss at this balance rests on {k:.1f} effective paths: "
            "its standard error, and the interval, are unreliable; raise --paths" + other
        )
    return text


def price_text(
    tranche: str,
    curve: str,
    spread_bps: float,
    coupon: float,
    se: float | None = None,
    ci95: Sequence[float] | None = None,
    floating: bool = False,
    n_paths: int | None = None,
    no_loss: bool = False,
) -> str:
    """``price``'s result: the par coupon over the curve and spread (a floating tranche's par
    spread over its base rate), with its Monte Carlo standard error and 95% interval, or why
    there is none; ``no_loss`` (no path of the search lost, so the standard error is about
    0) with a warning that ``n_paths`` cannot tell a rare loss from none (a validator: 2
    paths gave 2.0000% with a zero-width interval, 2,000 paths 2.0299% ± 0.0229%)."""
    what = "par spread over the base rate" if floating else "par coupon"
    text = f"{what} of {tranche} over {curve} + {spread_bps:g} bp: {coupon:.4%}"
    if se is None or ci95 is None:
        return text + " (SE n/a: too few paths, or a value the coupon does not move)"
    text += f" (SE {se:.4%}; 95% CI {ci95[0]:.4%} to {ci95[1]:.4%})"
    if no_loss:
        paths = "its paths" if n_paths is None else f"{n_paths:,} path{'s' * (n_paths != 1)}"
        text += (
            f"\nwarning: no path lost at this {what}: {paths} cannot tell a rare loss from "
            "none, so the standard error and interval say only that; raise --paths"
        )
    return text


def size_stack_text(doc: dict[str, Any]) -> str:
    """``size-stack``'s result (:meth:`abs_engine.solvers.StackSizing.to_dict`): the capital
    structure, one row per tranche, with the final evaluation's expected loss ± SE, default
    probability, WAL, implied rating and each target's limit, then the sized balances' 95%
    intervals and a note for each missed target."""
    how = f"{doc['sampling']} sampling, {doc['n_paths']:,} paths, seed {doc['seed']}"
    if doc.get("curve") is not None:
        how += f"; par coupons over {doc['curve']}"
    if doc.get("rounds", 1) > 1:
        how += f"; {doc['rounds']} size-and-price passes"
    what = "default probability" if doc["basis"] == "pd" else "expected loss"
    head = ["tranche", "target", "balance", "share", "below", "coupon", "expected loss ± SE",
            "P(shortfall) ± SE", "WAL (y)", "rating*", doc["basis"].upper() + " limit",
            "met"]  # fmt: skip
    rows = []
    for t in doc["tranches"]:
        coupon = _pm(t["coupon"], t.get("par_coupon_se"), "{:.4%}")  # a par coupon: ± its SE
        if t.get("par_coupon_kind") == "spread" and t.get("par_coupon") is not None:
            se = t.get("par_coupon_se")  # a floater's par spread over its base rate
            coupon = f"base {t['par_coupon']:+.4%}" + (f" ± {se:.4%}" if se is not None else "")
        d = sig_decimals(t["expected_loss"])
        p = sig_decimals(t["default_probability"])
        met = "-"
        if t["target"] is not None:
            met = "yes" if t["meets_target"] else "NO"
            if t["margin_se"] is not None:
                met += f" ({t['margin_se']:+.1f} SE)"
        rows.append([
            t["tranche"],
            t["target"] or ("(residual)" if t["role"] == "residual" else "-"),
            f"{t['balance']:,.0f}",
            f"{t['share']:.2%}",
            f"{t['subordination']:.2%}",
            coupon,
            _pm(t["expected_loss"], t["expected_loss_se"], f"{{:.{d}%}}"),
            _pm(t["default_probability"], t["default_probability_se"], f"{{:.{p}%}}"),
            fmt(t["wal_years"], "{:.2f}"),
            t["implied_rating"] or "-",
            fmt(t["limit"], f"{{:.{sig_decimals(t['limit'])}%}}"),
            met,
        ])  # fmt: skip
    rows.append(["total", "", f"{doc['total_capital']:,.0f}", "100.00%"] + [""] * 8)
    widths = [max(len(r[k]) for r in [head, *rows]) for k in range(len(head))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if k < 2 else c.rjust(w)
            for k, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    lines = [f"capital structure sized top-down ({how}):", line(head)]
    lines += [line(r) for r in rows]
    cis = [
        f"{t['tranche']} {t['balance_ci95'][0]:,.0f} .. {t['balance_ci95'][1]:,.0f}"
        for t in doc["tranches"]
        if t.get("balance_ci95")
    ]
    if cis:
        lines.append("95% interval of each sized balance: " + "; ".join(cis))
    lines.append("below: the share of the capital subordinated to the tranche; limit: the "
                 f"target's {what} threshold at the tranche's WAL")  # fmt: skip
    table = doc.get("rating_table") or {}
    if table.get("illustrative", True):
        lines.append("* against the ILLUSTRATIVE idealized table")
    else:
        lines.append(f"* against the rating table {table.get('source')}")
    lines += [f"note: {n}" for n in doc.get("notes", [])]
    return "\n".join(lines)


def breakeven_text(
    tranche: str,
    condition: str,
    param: str,
    value: float,
    se: float | None = None,
    ci95: Sequence[float] | None = None,
    reason: str | None = None,
) -> str:
    """``breakeven``'s result: the parameter value at which the condition holds, with its
    Monte Carlo standard error and 95% interval when given (else ``reason``, why none)."""
    text = f"{tranche} fails {condition} at {param} = {value:.4f}"
    if se is not None and ci95 is not None:
        text += f" (SE {se:.4f}; 95% CI {ci95[0]:.4f} to {ci95[1]:.4f})"
    elif reason:
        text += f" (no standard error: {reason})"
    return text


def sensitivity_text(
    grid: pd.DataFrame, x: str, y: str, tranche: str, table: RatingTable | None = None
) -> str:
    """``sensitivity``'s grid for one tranche: expected loss (implied rating), rows ``x``,
    columns ``y``; ``table``: the rating table named in the footnote (default: the shipped
    illustrative one)."""
    sub_g = grid[grid.tranche == tranche]
    el = sub_g.pivot(index=x, columns=y, values="expected_loss")
    se = sub_g.pivot(index=x, columns=y, values="expected_loss_se")
    rt = sub_g.pivot(index=x, columns=y, values="implied_rating")
    # the digits the smallest loss and standard error need (at least 4)
    values = [v for v in (*el.to_numpy().ravel(), *se.to_numpy().ravel()) if v == v and v > 0]
    d = max(4, sig_decimals(min(values), 2)) if values else 4
    w = d + 7
    lines = [f"{tranche} expected loss (implied rating*), rows {x}, columns {y}:"]
    lines.append(" " * 10 + "".join(f"{c:>{w + 8}g}" for c in el.columns))
    for idx in el.index:
        cells = "".join(f"{el.loc[idx, c]:>{w}.{d}%} ({rt.loc[idx, c]:>5})" for c in el.columns)
        lines.append(f"{idx:>10g}" + cells)
    lines.append("standard errors:")
    for idx in se.index:
        cells = "".join(
            f"{'n/a' if se.loc[idx, c] != se.loc[idx, c] else f'{se.loc[idx, c]:.{d}%}':>{w}}"
            + " " * 8
            for c in se.columns
        )
        lines.append(f"{idx:>10g}" + cells.rstrip())
    if table is None or table.illustrative:
        lines.append("* against the ILLUSTRATIVE idealized table")
    else:
        lines.append(f"* against the rating table {table.source}")
    return "\n".join(lines)


# --- scenarios side by side ----------------------------------------------------------------------


def print_comparison(rows: Sequence[dict[str, Any]]) -> None:
    """The side-by-side table of :func:`abs_engine.report.compare.comparison_rows`: one row
    per tranche and scenario; a deterministic scenario's loss is its own (no ± SE)."""
    t = _table(
        "Scenarios side by side (Monte Carlo: mean ± SE; deterministic: the scenario's own)",
        ["tranche", "scenario", "kind", "loss (EL)", "P(shortfall)", "WAL (y)", "min cov",
         "rating*"],
        left="scenario",
    )  # fmt: skip
    for r in rows:
        t.add_row(
            r["tranche"],
            r["scenario"],
            "MC" if r["kind"] == "monte_carlo" else "det",
            _pm(r["expected_loss"], r["expected_loss_se"], "{:.4%}"),
            _pm(r["default_probability"], r["default_probability_se"], "{:.2%}"),
            _pm(r["wal_years"], r["wal_years_se"], "{:.3f}"),
            _pm(r["min_coverage_ratio"], r["min_coverage_ratio_se"], "{:.3f}x"),
            r["implied_rating"] or "-",
        )
    console = plain_console()
    console.print(t)
    console.print("* implied rating for Monte Carlo scenarios only (a rating needs a distribution)")
