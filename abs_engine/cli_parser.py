"""The ``abs-engine`` argument parser: each subcommand's arguments, their checked types
(:mod:`abs_engine.cli_types`: every bad value a usage error, exit 2, naming the argument and
the value) and help texts. :mod:`abs_engine.cli` parses with it and dispatches."""

from __future__ import annotations

import argparse
import functools
from typing import TYPE_CHECKING

from . import __version__
from . import cli_types as argtypes
from .schema.common import MAX_RECOVERY_LAG
from .schema.stochastic import MAX_PATHS, MAX_SEED

if TYPE_CHECKING:
    from typing import TypeAlias

    #: what ``add_subparsers`` returns (a private class of argparse)
    _Subparsers: TypeAlias = argparse._SubParsersAction[argtypes.Parser]

__all__ = ["parser"]

_DEAL_HELP = "deal file; default: bundled Huake-style deal"


@functools.cache  # built once a process: in-process callers (tests, notebooks) call main often
def parser() -> argparse.ArgumentParser:
    """The ``abs-engine`` argument parser, its subcommands and their checked types."""
    p = argtypes.Parser(
        prog="abs-engine",
        description="Structuring engine for intellectual-property ABS.",
        epilog=f"Limits: --paths 1 .. {MAX_PATHS:,}; --seed 0 .. 2**63-1. Bad input exits "
        "with status 2 and one message naming the argument and its value.",
    )
    p.add_argument("--version", action="version", version=f"abs-engine {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    _add_run(sub)
    _add_stress(sub)
    _add_report(sub)
    _add_size(sub)
    _add_size_stack(sub)
    _add_price(sub)
    _add_breakeven(sub)
    _add_sensitivity(sub)
    _add_synth(sub)
    _add_validate(sub)
    return p


def _add_run(sub: _Subparsers) -> None:
    run = sub.add_parser("run", help="run a deal through its waterfall on a scenario")
    run.add_argument(
        "deal",
        nargs="*",
        type=argtypes.path_text,
        help="deal file(s) (.toml/.json); default: bundled Huake-style deal. Several deals: "
        "one table (or JSON document) per deal; with --cluster their runs compute together",
    )
    run.add_argument(
        "--scenario",
        "-s",
        action="append",
        type=argtypes.path_text,
        help="scenario name or file (repeatable); default: the deal's base_scenario",
    )
    run.add_argument(
        "--json", action="store_true", help="print one JSON document instead of tables"
    )
    run.add_argument(
        "--out",
        type=argtypes.out_path,
        help="write ledger (Parquet and CSV), tranches and cash flows to this folder (checked "
        "before anything runs: it must be a folder that can be created and written)",
    )
    mc = _monte_carlo_group(run)
    mc.add_argument(
        "--keep-paths",
        action="store_true",
        help="with --out, also write per-path metrics (refused up front when they cannot fit "
        "in memory: paths × bytes a path above half the available memory or 16 GiB)",
    )
    mc.add_argument(
        "--ledger-paths",
        type=argtypes.ledger_paths_type,
        help="with --out, write the full ledgers of these paths (comma-separated, distinct, "
        f"at most {argtypes.MAX_LEDGER_PATHS}; default 0)",
    )
    mc.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    _add_rating_table(mc)
    _add_sampling(mc)
    _add_precision(mc)
    _add_cluster(mc)


def _add_precision(p: argparse._ArgumentGroup) -> None:
    p.add_argument(
        "--target-se",
        type=argtypes.float_type(0.0, 1.0, lo_open=True, hi_open=True),
        help="run more paths (from --paths) until the target tranche's expected loss has this "
        "standard error (share of its balance), at most --max-paths",
    )
    p.add_argument(
        "--target-rel-se",
        type=argtypes.float_type(0.0, 1.0, lo_open=True, hi_open=True),
        help="the same with a relative standard error (0.05: 5%% of the expected loss)",
    )
    p.add_argument(
        "--target-tranche",
        metavar="TRANCHE",
        help="the tranche of --target-se/--target-rel-se (default: the most senior rated one)",
    )
    p.add_argument(
        "--max-paths",
        type=argtypes.int_type(1, MAX_PATHS),
        help=f"the cap of a targeted run, 1 .. {MAX_PATHS:,} (default 10,000,000)",
    )


def _add_sampling(
    p: argparse.ArgumentParser | argparse._ArgumentGroup,
    target: bool = True,
    default: str = "crude",
) -> None:
    p.add_argument(
        "--sampling",
        choices=("crude", "importance"),
        default=default,
        help="crude Monte Carlo, or importance sampling: factors, support providers and the "
        "t mixing variable shifted towards the senior's losses (chosen by a short pilot), "
        f"each path weighted by its likelihood ratio; every figure stays unbiased (default: "
        f"{default})",
    )
    if target:
        p.add_argument(
            "--sampling-target",
            metavar="TRANCHE",
            help="with --sampling importance: the tranche the shifts aim at (default: the most "
            "senior rated one)",
        )


def _monte_carlo_group(p: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The "Monte Carlo scenarios" group of ``run`` and ``report``: --paths, --seed, --threads
    (each scenario's own n_paths and seed by default)."""
    mc = p.add_argument_group("Monte Carlo scenarios")
    mc.add_argument(
        "--paths",
        type=argtypes.int_type(1, MAX_PATHS),
        help=f"number of paths, 1 .. {MAX_PATHS:,} (default: each scenario's n_paths)",
    )
    mc.add_argument(
        "--seed",
        type=argtypes.int_type(0, MAX_SEED),
        help="random seed, 0 .. 2**63-1 (default: each scenario's)",
    )
    mc.add_argument(
        "--threads",
        type=argtypes.int_type(1, argtypes.max_threads),
        help="kernel threads, 1 .. NUMBA_NUM_THREADS (default: all cores)",
    )
    return mc


_CLUSTER_HELP = (
    "run the Monte Carlo paths on a Dask cluster: local:N starts N worker processes here, "
    "tcp://HOST:PORT uses a running scheduler; results are bitwise identical to the run "
    "without it"
)


def _add_cluster(p: argparse.ArgumentParser | argparse._ArgumentGroup, what: str = "") -> None:
    p.add_argument(
        "--cluster", type=argtypes.cluster_type, metavar="local:N|tcp://HOST:PORT",
        help=what or _CLUSTER_HELP,
    )  # fmt: skip


def _add_stress(sub: _Subparsers) -> None:
    st = sub.add_parser(
        "stress",
        help="agency-style deterministic analysis: breakeven default rate, large-obligor test, "
        "coverage-ratio table",
    )
    st.add_argument("deal", nargs="?", type=argtypes.path_text, help=_DEAL_HELP)
    st.add_argument("--tranche", action="append", help="tranche(s) to test (default: all rated)")
    _add_recovery_lag(st, "recovery rate", "recovery lag")
    st.add_argument(
        "--period",
        type=argtypes.int_type(1, 100_000),
        default=1,
        help="large-obligor default period (1 .. the deal's periods)",
    )
    st.add_argument(
        "--largest",
        type=argtypes.int_type(1, argtypes.MAX_LARGEST),
        default=None,
        help=f"test the 1..N largest obligors (1 .. {argtypes.MAX_LARGEST:,}, at most the "
        "pool's size; default 3, or the pool's size if smaller)",
    )
    st.add_argument(
        "--scenario",
        "-s",
        action="append",
        type=argtypes.path_text,
        help="deterministic scenarios for the coverage table (default: the deal's)",
    )
    st.add_argument("--json", action="store_true", help="print one JSON document")
    _add_cluster(
        st,
        "compute each tranche's breakeven, the large-obligor test and the coverage table as "
        "tasks on a Dask cluster (local:N or tcp://HOST:PORT); the same tables as without it",
    )


def _add_recovery_lag(
    p: argparse.ArgumentParser | argparse._ArgumentGroup, recovery: str, lag: str
) -> None:
    """The agency tables' ``--recovery`` and ``--lag`` (``stress``, and ``report``'s)."""
    p.add_argument(
        "--recovery",
        type=argtypes.float_type(0.0, 1.0),
        default=0.0,
        help=f"{recovery} (decimal, 0 .. 1)",
    )
    p.add_argument(
        "--lag",
        type=argtypes.int_type(0, MAX_RECOVERY_LAG),
        default=0,
        help=f"{lag} (0 .. {MAX_RECOVERY_LAG})",
    )


def _add_report(sub: _Subparsers) -> None:
    rp = sub.add_parser(
        "report",
        help="the deliverable: an HTML report with charts, an Excel workbook and their JSON "
        "document (scenarios side by side, cash flows, agency tables, assumptions)",
    )
    rp.add_argument("deal", nargs="?", type=argtypes.path_text, help=_DEAL_HELP)
    rp.add_argument(
        "--scenario",
        "-s",
        action="append",
        type=argtypes.path_text,
        help="scenario name or file, Monte Carlo, deterministic or a stress grid (repeatable); "
        "default: the deal's base and deterministic scenarios",
    )
    rp.add_argument(
        "--out",
        required=True,
        type=argtypes.out_path,
        help="folder for report.html, report.xlsx and report.json (checked before anything "
        "runs; the files are written together, or none)",
    )
    rp.add_argument(
        "--lang", choices=("en", "zh"), default="en", help="labels in English or Chinese"
    )
    mc = _monte_carlo_group(rp)
    mc.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    _add_rating_table(mc)
    _add_sampling(mc)
    _add_cluster(mc)
    st = rp.add_argument_group("agency tables (as abs-engine stress)")
    _add_recovery_lag(
        st, "recovery rate of the breakeven and large-obligor tests", "their recovery lag"
    )
    rp.set_defaults(keep_paths=False, ledger_paths=None, tranche=None, period=1, largest=None)


def _solver_parser(
    sub: _Subparsers, name: str, summary: str, sampling: str = "crude"
) -> argparse.ArgumentParser:
    """A solver command's parser with the arguments they share: deal, Monte Carlo scenario,
    paths, seed, --json."""
    p = sub.add_parser(name, help=summary)
    p.add_argument("deal", nargs="?", type=argtypes.path_text, help=_DEAL_HELP)
    p.add_argument(
        "--scenario",
        "-s",
        type=argtypes.path_text,
        help="Monte Carlo scenario (default: the deal's base)",
    )
    p.add_argument(
        "--paths",
        type=argtypes.int_type(1, MAX_PATHS),
        default=20_000,
        help=f"paths per evaluation, 1 .. {MAX_PATHS:,} (20,000)",
    )
    p.add_argument(
        "--seed",
        type=argtypes.int_type(0, MAX_SEED),
        help="seed, 0 .. 2**63-1 (default: the scenario's)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")
    _add_sampling(p, target=False, default=sampling)
    _add_cluster(
        p,
        "run each evaluation's paths on a Dask cluster (local:N worker processes here, or "
        "tcp://HOST:PORT); the same answer as without it",
    )
    return p


def _add_size(sub: _Subparsers) -> None:
    # sizing to a rating is a rare-event question: importance sampling by default
    sz = _solver_parser(
        sub, "size", "largest tranche balance meeting a target rating or EL", "importance"
    )
    sz.add_argument("--tranche", required=True, help="tranche to size (not the most junior)")
    grp = sz.add_mutually_exclusive_group(required=True)
    grp.add_argument("--target", help="target rating, e.g. AAA")
    grp.add_argument(
        "--target-el",
        type=argtypes.float_type(0.0, 1.0, lo_open=True, hi_open=True),
        help="target expected loss (decimal, strictly between 0 and 1)",
    )
    _add_rating_table(sz)


def _add_size_stack(sub: _Subparsers) -> None:
    st = _solver_parser(
        sub,
        "size-stack",
        "size every rated tranche top-down to its target rating, the most junior absorbing "
        "the rest, and print the capital structure",
        "importance",
    )
    st.add_argument(
        "--target",
        action="append",
        required=True,
        metavar="TRANCHE=RATING",
        help="a tranche and its target rating, e.g. A=AAA (repeatable, most senior first; "
        "not the most junior tranche, which takes the rest of the capital)",
    )
    st.add_argument(
        "--curve",
        type=argtypes.curve_text,
        help="also solve each sized tranche's par coupon over this curve, top-down: a flat "
        "rate (decimal, -0.05 .. 1) or CSV tenor_years,zero_rate",
    )
    st.add_argument(
        "--rounds",
        type=argtypes.int_type(1, 5),
        default=1,
        help="size-and-price passes, 1 .. 5 (default 1): each later pass sizes again at the "
        "last pass's par coupons and balances, stopping once nothing moves",
    )
    _add_rating_table(st)
    st.set_defaults(tranche=None)  # the solvers' shared checks read --tranche


def _add_rating_table(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument(
        "--rating-table",
        type=argtypes.path_text,
        help="rating table CSV for the implied ratings (default: the illustrative one)",
    )


def _add_price(sub: _Subparsers) -> None:
    pr = _solver_parser(sub, "price", "coupon at which a tranche prices at par")
    pr.add_argument("--tranche", required=True)
    pr.add_argument(
        "--curve",
        required=True,
        type=argtypes.curve_text,
        help="flat rate (decimal, -0.05 .. 1) or CSV tenor_years,zero_rate",
    )
    pr.add_argument(
        "--spread-bps",
        type=argtypes.float_type(-argtypes.MAX_SPREAD_BPS, argtypes.MAX_SPREAD_BPS),
        default=0.0,
        help=f"spread over the curve in basis points (±{argtypes.MAX_SPREAD_BPS:,}; default 0)",
    )


def _add_breakeven(sub: _Subparsers) -> None:
    be = _solver_parser(sub, "breakeven", "scenario parameter value at which a tranche fails")
    be.add_argument("--tranche", required=True)
    be.add_argument(
        "--param",
        required=True,
        type=argtypes.param_type,
        help="pd_multiplier, recovery (a fixed rate), ip_haircut, correlation, cpr, "
        "provider_pd_multiplier",
    )
    be.add_argument(
        "--condition",
        default="first_loss",
        type=argtypes.checked_by(argtypes.parse_condition),
        help="first_loss, el_above:X, irr_below:Y or pd_above:P (default first_loss; X and P "
        "in [0, 1], Y in [-1, 1])",
    )
    be.add_argument(
        "--range",
        type=argtypes.checked_by(argtypes.parse_range),
        help="lo,hi: where the condition holds, and fails (defaults by param; both within the "
        "parameter's range; lo below hi except for recovery, where more is better)",
    )


def _add_sensitivity(sub: _Subparsers) -> None:
    se = _solver_parser(sub, "sensitivity", "tranche metrics over a grid of two parameters")
    grid_help = (
        "param=v1,v2,... e.g. {}; distinct values in the parameter's range, at most "
        f"{argtypes.MAX_GRID_VALUES}"
    )
    se.add_argument(
        "--x",
        required=True,
        type=argtypes.grid_type,
        help=grid_help.format("pd_multiplier=0.5,1,2"),
    )
    se.add_argument(
        "--y", required=True, type=argtypes.grid_type, help=grid_help.format("recovery=0.1,0.2,0.4")
    )
    se.add_argument("--tranche", help="tranche for the printed grid (default: the first)")
    _add_rating_table(se)


def _add_synth(sub: _Subparsers) -> None:
    from .synthetic import AMORTIZATIONS, MAX_OBLIGOR_PERIODS, MAX_OBLIGORS, MAX_PERIODS

    sy = sub.add_parser("synth", help="write a synthetic pool as deal, tape and scenario files")
    sy.add_argument(
        "out",
        metavar="OUT",
        type=argtypes.out_path,
        help="output folder (created; it must be writable and not a file)",
    )
    sy.add_argument(
        "--obligors",
        type=argtypes.int_type(argtypes.SYNTH_MIN_OBLIGORS, MAX_OBLIGORS),
        required=True,
        help=f"number of obligors ({argtypes.SYNTH_MIN_OBLIGORS} .. {MAX_OBLIGORS:,}; obligors × "
        f"periods at most {MAX_OBLIGOR_PERIODS:,})",
    )
    sy.add_argument(
        "--name",
        type=argtypes.name_type,
        help="file name stem (default synthetic_<N>; a plain name: no path separator, not "
        "starting with a dot)",
    )
    sy.add_argument(
        "--heterogeneous", action="store_true", help="random balances, rates, PD classes"
    )
    sy.add_argument(
        "--attach",
        default="0.03,0.06,0.10",
        type=argtypes.attach_type,
        help="attachment points, increasing, each in (0, 1) (default 0.03,0.06,0.10)",
    )
    unit = argtypes.float_type(0.0, 1.0, hi_open=True)
    sy.add_argument("--pd", type=unit, default=0.02, help="annual PD, [0, 1) (default 0.02)")
    sy.add_argument(
        "--correlation", type=unit, default=0.15, help="asset correlation, [0, 1) (0.15)"
    )
    sy.add_argument(
        "--recovery",
        type=argtypes.float_type(0.0, 1.0),
        default=0.3,
        help="recovery rate, [0, 1] (0.3)",
    )
    sy.add_argument("--amortization", default="equal_principal", choices=AMORTIZATIONS)
    sy.add_argument(
        "--periods",
        type=argtypes.int_type(1, MAX_PERIODS),
        default=12,
        help=f"quarterly periods, 1 .. {MAX_PERIODS} (12)",
    )
    sy.add_argument(
        "--seed",
        type=argtypes.int_type(0, MAX_SEED),
        default=0,
        help="seed of a heterogeneous pool, 0 .. 2**63-1",
    )


def _add_validate(sub: _Subparsers) -> None:
    val = sub.add_parser(
        "validate", help="check a deal file (and optional scenarios) and report every problem"
    )
    val.add_argument("deal", type=argtypes.path_text)
    val.add_argument(
        "--scenario",
        "-s",
        action="append",
        type=argtypes.path_text,
        help="also check these scenarios against the deal",
    )
