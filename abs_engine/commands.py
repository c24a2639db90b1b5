"""What each ``abs-engine`` command does, once :mod:`abs_engine.cli` has parsed its arguments:
check the arguments that need the deal, run, then print (``abs_engine.report.console``, or a
JSON document from ``abs_engine.report.documents``) and write ``--out`` files
(``abs_engine.report.writers``).

Each ``cmd_*`` takes the parsed arguments and returns the exit status; bad input raises
:class:`~abs_engine.errors.DealError` or another :class:`~abs_engine.errors.AbsEngineError`,
which ``cli.main`` prints. Every check that can fail runs before the first simulation.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from .api import load_deal, load_scenario, load_scenarios, run_deterministic
from .cli_types import UsageError, got, parse_condition, parse_range
from .compile.deal import compile_deal
from .compile.model import compile_model
from .errors import (  # the exit statuses: the commands return them
    EXIT_ERROR,
    EXIT_INPUT,
    EXIT_OK,
    AbsEngineError,
    DealError,
    InputError,
    Problem,
    short_repr,
)
from .files import staged_outputs
from .report import console, documents, writers
from .report.compare import check_distinct_names, comparison_rows
from .report.stamps import stamp
from .schema.load import deal_source
from .schema.scenario import DeterministicScenario
from .schema.stochastic import MonteCarloScenario
from .simulation import start_simulation_compiled

if TYPE_CHECKING:
    from .api import AnyScenario
    from .compile.deal import CompiledDeal
    from .metrics.rating import RatingTable
    from .schema.deal import Deal
    from .simulation import SimulationResult

__all__ = [
    "EXIT_ERROR",
    "EXIT_INPUT",
    "EXIT_OK",
    "check_solver_args",
    "cmd_report",
    "cmd_run",
    "cmd_solver",
    "cmd_stress",
    "cmd_synth",
    "cmd_validate",
]


# --- run -----------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    """``run``: each deal on its scenarios (a deal's all deterministic or all Monte Carlo).
    Several deals: every deal and scenario is checked before anything runs, and on a cluster
    all their Monte Carlo runs are submitted before any is collected."""
    for flag, given in (("--keep-paths", args.keep_paths), ("--ledger-paths", args.ledger_paths)):
        if given and args.out is None:
            raise UsageError(f"{flag} needs --out DIR (the folder its files are written to)")
    deals = args.deal or [None]
    if len(deals) > 1 and args.out is not None:
        raise UsageError(
            f"--out takes one deal (its files are named by scenario); {len(deals)} deals given: "
            "run each deal with its own --out"
        )
    if args.out is not None:
        writers.check_out_folder(args.out, "--out")
    # every deal's and scenario's problems before anything runs
    runs = [_deal_run(d, args.scenario) for d in deals]
    if len(runs) == 1:
        cd, scenarios = runs[0]
        if args.out is None:  # (with --out: check_out_names, which says why for the files)
            check_distinct_names(scenarios)
        kinds = {isinstance(s, MonteCarloScenario) for s in scenarios}
        if len(kinds) > 1:
            return _run_mixed(args, cd, scenarios)
        if _monte_carlo(scenarios):
            return _run_monte_carlo(args, runs)
        return _run_deterministic(args, cd, scenarios)
    for _, scenarios in runs:  # each deal's, before any deal runs (a repeat stopped the
        check_distinct_names(scenarios)  # second deal after the first was printed)
    return _run_portfolio(args, runs)


def _run_mixed(args: argparse.Namespace, cd: CompiledDeal, scenarios: list[AnyScenario]) -> int:
    """Monte Carlo and deterministic scenarios of one deal in one command: each printed as
    alone, then the side-by-side table; ``--json``: ``{"scenarios": [Monte Carlo documents],
    "deterministic": its document, "comparison": rows}``. Not with ``--out`` (the two kinds
    write different file sets)."""
    if args.out is not None:
        raise UsageError(
            "--out: run Monte Carlo and deterministic scenarios in separate commands to write "
            "their files (together they print one comparison)"
        )
    mc = [s for s in scenarios if isinstance(s, MonteCarloScenario)]
    det = [s for s in scenarios if not isinstance(s, MonteCarloScenario)]
    _check_monte_carlo_size(args, cd, mc)
    with cluster_runner(args) as runner:
        results = list(_simulations(args, [(cd, mc)], runner))
    docs = [_print_mc(args, res) for res in results]
    det_res = run_deterministic(cd, det)
    if not args.json:
        console.print_deterministic(det_res)
    rows = comparison_rows([s.name for s in scenarios], results, det_res)
    if args.json:
        doc = {"scenarios": docs, "deterministic": documents.result_document(det_res)}
        console.print_json({**doc, "comparison": rows})
    else:
        console.print_comparison(rows)
    return EXIT_OK


def _deal_run(path: str | None, names: list[str] | None = None) -> tuple[CompiledDeal, list]:
    """The deal (compiled: its problems up front, its warnings printed once) and its
    scenarios (``--scenario``, or the deal's base scenario)."""
    deal = load_deal(path)
    cd = compile_deal(deal)
    console.print_warnings(cd)
    given = bool(names)
    out = []
    for s in _deal_named(deal, names or []):
        # a stress grid stands for its base scenario and one scenario per shock
        with _named_by_the_deal(deal, s, given):
            out.extend(load_scenarios(s, deal))
    return cd, out


def _monte_carlo(scenarios: list[AnyScenario]) -> bool:
    """True for Monte Carlo scenarios, False for deterministic ones; a mix (several deals'
    run) is refused."""
    stochastic = [s for s in scenarios if isinstance(s, MonteCarloScenario)]
    if stochastic and len(stochastic) != len(scenarios):
        raise UsageError(
            "--scenario: with several deals, give Monte Carlo or deterministic scenarios, not "
            f"both (Monte Carlo: {[s.name for s in stochastic]}); one deal takes both"
        )
    return bool(stochastic)


@contextmanager
def compile_notice() -> Iterator[None]:
    """While a command runs: a first simulation that compiles the kernels says so on stderr,
    also in solvers and with ``--json`` (see :data:`abs_engine.simulation.COMPILE_NOTICE`)."""
    from . import simulation

    old, simulation.COMPILE_NOTICE = simulation.COMPILE_NOTICE, True
    try:
        yield
    finally:
        simulation.COMPILE_NOTICE = old


@contextmanager
def cluster_runner(args: argparse.Namespace) -> Iterator[Any]:
    """The command's Dask runner while the block runs (``--cluster``), or None: run here."""
    spec = getattr(args, "cluster", None)
    if spec is None:
        yield None
        return
    from .distributed import connect

    with connect(spec, threads=getattr(args, "threads", None)) as runner:
        yield runner


def calls_on(
    runner: Any, shared: Any, calls: list[tuple[Callable[..., Any], tuple, dict[str, Any]]]
) -> list[Any]:
    """``fn(shared, *args, **kwargs)`` for each call: here, or as tasks on the cluster."""
    if runner is None:
        return [fn(shared, *a, **kw) for fn, a, kw in calls]
    return list(runner.map_calls(shared, calls))


def _refuse_monte_carlo_options(args: argparse.Namespace) -> None:
    mc_only = [
        f"--{o.replace('_', '-')}"
        for o in ("paths", "seed", "threads", "ledger_paths", "cluster", "rating_table",
                  "sampling_target", "target_se", "target_rel_se", "target_tranche",
                  "max_paths")
        if getattr(args, o, None) is not None
    ]  # fmt: skip
    if getattr(args, "sampling", "crude") != "crude":
        mc_only.append("--sampling")
    if mc_only or args.keep_paths:
        raise AbsEngineError(
            f"{', '.join(mc_only or ['--keep-paths'])}: only for Monte Carlo scenarios"
        )


def _run_deterministic(
    args: argparse.Namespace, cd: CompiledDeal, scenarios: list[AnyScenario]
) -> int:
    _refuse_monte_carlo_options(args)
    if args.out:
        writers.check_out_names(scenarios)  # before the run: its files could not be written
    res = run_deterministic(cd, scenarios or None)
    if args.out:
        writers.check_out_names(res.scenarios)
    names = [s.name for s in res.scenarios]
    rows = comparison_rows(names, deterministic=res) if len(names) > 1 else []
    # the files first: a reader that stops reading (| head) or a full stdout leaves them
    files = writers.write_run_outputs(res, args.out) if args.out else []
    if args.json:
        doc = documents.result_document(res)
        console.print_json({**doc, "comparison": rows} if rows else doc)
    else:
        console.print_deterministic(res)
        if rows:
            console.print_comparison(rows)
    if args.out and not args.json:
        print(f"\nwrote {len(files)} files to {args.out}")
    return EXIT_OK


def _run_monte_carlo(
    args: argparse.Namespace, runs: list[tuple[CompiledDeal, list[MonteCarloScenario]]]
) -> int:
    """One deal's Monte Carlo scenarios (``runs`` has one item): tables or JSON, and with
    ``--out`` every scenario's files, staged and moved into the folder together."""
    ((cd, scenarios),) = runs
    if args.out:
        writers.check_out_names(scenarios)
    _check_monte_carlo_size(args, cd, scenarios)
    docs = []
    # every scenario's files staged, then moved into --out together (none if one fails)
    info = {"command": "run", "scenarios": [sc.name for sc in scenarios]}
    results = []
    with (
        staged_outputs(args.out, info=info) if args.out else nullcontext() as stage,
        cluster_runner(args) as runner,
    ):
        for res in _simulations(args, runs, runner):
            doc = documents.mc_document(res)
            docs.append(doc)
            results.append(res)
            if stage is None and not args.json:
                console.print_monte_carlo(res)  # as each comes (with --out, once in place)
            if stage is not None:
                writers.stage_mc_outputs(res, doc, stage)
        if stage is not None:
            stage.info["stamp"] = _runs_stamp(cd, results)
    # with --out the files are in place before anything is printed: a reader that stops
    # reading (| head) or a full stdout left no output folder
    if stage is not None and not args.json:
        for res in results:
            console.print_monte_carlo(res)
    rows = comparison_rows([s.name for s in scenarios], results) if len(results) > 1 else []
    if args.json:
        console.print_json(docs[0] if len(docs) == 1 else {"scenarios": docs, "comparison": rows})
    else:
        if rows:
            console.print_comparison(rows)
        if args.out:
            print(f"\nwrote results to {args.out}")
    return EXIT_OK


def _runs_stamp(cd: CompiledDeal, results: list[SimulationResult]) -> dict[str, Any]:
    """The manifest's stamp of a ``run``: paths, seed and sampling per scenario as each run
    had them (a precision-targeted run's paths, importance sampling, the rating table read),
    as each summary file has its own; it was built from the options (1,000 paths where the
    run took 4,096, sampling 'crude' for an importance-sampled run, no rating table)."""
    return stamp(
        cd,
        [r.scenario for r in results],
        rating_table=results[0].rating_table if results else None,
        n_paths=[r.n_paths for r in results],
        seed=[r.seed for r in results],
        sampling=[r.sampling["method"] for r in results],
    )


def _simulations(
    args: argparse.Namespace, runs: list[tuple[CompiledDeal, list]], runner: Any
) -> Iterator[SimulationResult]:
    """The Monte Carlo results of every (deal, scenario) of ``runs``, in order. On a cluster
    every run is submitted first, so the workers compute them together; here each runs when
    its turn comes."""
    table = _rating_table(args)
    target = _precision_target(args)
    if target is not None:
        yield from _targeted(args, runs, runner, table, target)
        return
    kw = _run_options(args, runner, table)
    pending = [
        start_simulation_compiled(cd, sc, **kw) for cd, scenarios in runs for sc in scenarios
    ]
    for run in pending:
        yield run.result()


def _run_options(args: argparse.Namespace, runner: Any, table: RatingTable) -> dict[str, Any]:
    """``run``'s keyword arguments of :func:`start_simulation_compiled`, from its options."""
    return {
        "n_paths": args.paths,
        "seed": args.seed,
        "threads": None if runner is not None else args.threads,
        "keep_paths": bool(args.keep_paths and args.out),
        # the first path's ledger with --out: crude sampling's (an importance-sampled path
        # carries a weight a ledger cannot show)
        "ledger_paths": args.ledger_paths or ([0] if args.out and args.sampling == "crude" else []),
        "progress": False if (args.no_progress or args.json) else None,
        "rating_table": table,
        "runner": runner,
        "sampling": args.sampling,
        "sampling_target": args.sampling_target,
    }


def _precision_target(args: argparse.Namespace) -> Any:
    """``--target-se``/``--target-rel-se`` (with ``--target-tranche``, ``--max-paths``)."""
    from .precision import check_precision_target

    se, rel = getattr(args, "target_se", None), getattr(args, "target_rel_se", None)
    if se is not None and rel is not None:
        raise UsageError("--target-se and --target-rel-se: give one of them")
    for flag in ("target_tranche", "max_paths"):
        if se is None and rel is None and getattr(args, flag, None) is not None:
            raise UsageError(
                f"--{flag.replace('_', '-')} is for a run with --target-se or --target-rel-se"
            )
    return check_precision_target(
        "--target-se", se, rel, getattr(args, "target_tranche", None),
        getattr(args, "max_paths", None),
    )  # fmt: skip


def _targeted(
    args: argparse.Namespace,
    runs: list[tuple[CompiledDeal, list]],
    runner: Any,
    table: RatingTable,
    target: Any,
) -> Iterator[SimulationResult]:
    """Each (deal, scenario)'s precision-targeted run (rounds of growing path counts, one
    scenario after another)."""
    from .precision import run_to_precision

    # every scenario checked against its deal before the first round of the first: one the
    # deal refuses (13 CPR values for 12 periods) was found only when its turn came
    for cd, scenarios in runs:
        for sc in scenarios:
            compile_model(cd, sc)
    for cd, scenarios in runs:
        for sc in scenarios:

            def run(n: int, cd: CompiledDeal = cd, sc: MonteCarloScenario = sc) -> Any:
                kw = _run_options(args, runner, table)
                return start_simulation_compiled(cd, sc, **{**kw, "n_paths": n}).result()

            yield run_to_precision(run, args.paths or sc.n_paths, cd, target, "--target-se")


def _run_portfolio(args: argparse.Namespace, runs: list[tuple[CompiledDeal, list]]) -> int:
    """Several deals: each deal's tables under a header line, or with ``--json`` one document
    ``{"deals": [{"deal": name, "source": path, "kind": "monte_carlo" | "deterministic",
    "result": the deal's document, as ``run DEAL --json`` prints it}, ...]}``."""
    kinds = [_monte_carlo(scenarios) for _, scenarios in runs]
    mc_runs = [r for r, mc in zip(runs, kinds, strict=True) if mc]
    if not mc_runs:
        _refuse_monte_carlo_options(args)  # with a Monte Carlo deal they are for that deal
    for cd, scenarios in mc_runs:
        _check_monte_carlo_size(args, cd, scenarios)
    out = []
    with cluster_runner(args) if mc_runs else nullcontext() as runner:
        results = _simulations(args, mc_runs, runner)
        for k, ((cd, scenarios), mc) in enumerate(zip(runs, kinds, strict=True)):
            if not args.json:
                print(f"\n=== deal {k + 1} of {len(runs)} ===")
            if mc:
                docs = [_print_mc(args, next(results)) for _ in scenarios]
                doc = docs[0] if len(docs) == 1 else {"scenarios": docs}
            else:
                doc = _print_deterministic(args, cd, scenarios)
            kind = "monte_carlo" if mc else "deterministic"
            out.append({"deal": cd.deal.name, "source": str(cd.source), "kind": kind,
                        "result": doc})  # fmt: skip
    if args.json:
        console.print_json({"deals": out})
    return EXIT_OK


def _print_mc(args: argparse.Namespace, res: SimulationResult) -> dict[str, Any]:
    doc = documents.mc_document(res)
    if not args.json:
        console.print_monte_carlo(res)
    return doc


def _print_deterministic(
    args: argparse.Namespace, cd: CompiledDeal, scenarios: list[AnyScenario]
) -> dict[str, Any]:
    res = run_deterministic(cd, scenarios or None)
    if not args.json:
        console.print_deterministic(res)
    return documents.result_document(res)


def _check_monte_carlo_size(
    args: argparse.Namespace, cd: CompiledDeal, scenarios: list[MonteCarloScenario]
) -> None:
    """Before any scenario runs: tranches named by ``--sampling-target`` and
    ``--target-tranche`` in the deal, ledger paths within the run, kept per-path results that
    fit in memory. (Path counts are already within MAX_PATHS: --paths by its argparse type, a
    scenario's n_paths by the schema.)"""
    from .simulation import check_keep_paths_memory, kept_bytes_per_path

    if getattr(args, "sampling_target", None) is not None and args.sampling == "crude":
        raise UsageError("--sampling-target: only with --sampling importance")
    for flag in ("sampling_target", "target_tranche"):
        name = getattr(args, flag, None)
        if name is not None and name not in cd.tranche_names:
            # by the flag (the API's own check named its argument: "simulate_compiled:
            # sampling_target: unknown tranche")
            raise UsageError(
                f"--{flag.replace('_', '-')}: unknown tranche {short_repr(name)}; tranches are "
                f"{list(cd.tranche_names)}"
            )
    # a targeted run's first round: at most its cap (the target's, as the run will take it);
    # a run without a target has none
    target = _precision_target(args)
    cap = target.max_paths if target is not None else None
    for sc in scenarios:
        n = sc.n_paths if args.paths is None else args.paths
        capped = cap is not None and n > cap
        if capped:
            n = cap
        for p in args.ledger_paths or []:
            if p >= n:
                raise UsageError(
                    f"--ledger-paths: path {p:,} is outside the run's paths 0 .. {n - 1:,} "
                    f"(scenario {sc.name!r}, {n:,} paths"
                    + (", the targeted run's cap)" if capped else ")")
                )
        if args.keep_paths:
            check_keep_paths_memory(
                n, kept_bytes_per_path(len(cd.tranche_names)), what=f"--keep-paths --paths {n}"
            )


# --- validate ------------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    """``validate``: every problem of the deal, its named scenarios and ``--scenario``s."""
    deal = load_deal(args.deal)
    cd = compile_deal(deal)
    console.print_warnings(cd)
    problems = _named_scenario_problems(deal)
    for s in args.scenario or []:
        try:
            for sc in load_scenarios(s, deal):  # a stress grid: its base and every shock
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


def _named_scenario_problems(deal: Deal) -> list[Problem]:
    """The deal's ``base_scenario`` and ``deterministic_scenario``: each must name a scenario
    that loads (``run`` and ``stress`` use them when no ``--scenario`` is given), and
    ``deterministic_scenario`` a deterministic one."""
    problems: list[Problem] = []
    source = deal_source(deal)
    for field in ("base_scenario", "deterministic_scenario"):
        name = getattr(deal, field)
        if name is None:
            continue
        try:  # the base scenario may be a stress grid (``run`` runs them all)
            if field == "base_scenario":
                sc = load_scenarios(name, deal)[0]
            else:
                sc = load_scenario(name, deal)
        except DealError as exc:  # every problem, each where it is (as ``run`` reports them)
            for p in exc.problems:
                named = _named_where(deal, field, name, p)
                if named not in problems:  # both fields naming one bad file: its problems once
                    problems.append(named)
            continue
        if field == "deterministic_scenario" and not isinstance(sc, DeterministicScenario):
            why = "names a Monte Carlo scenario, not a deterministic one"
            problems.append(Problem(source, field, why, name))
    return problems


def _deal_named(deal: Deal, names: list[str]) -> list[str]:
    """``names`` if given (``--scenario``), else the deal's ``base_scenario`` (or none)."""
    return names or ([deal.base_scenario] if deal.base_scenario else [])


@contextmanager
def _named_by_the_deal(deal: Deal, name: str | None, given: bool) -> Iterator[None]:
    """Loading scenario ``name``: when the deal named it (not ``given`` on the command line)
    and it is not found, the error names the deal file and its field, not only the name."""
    try:
        yield
    except DealError as exc:
        p = exc.problems[0]
        if given or name is None:
            raise
        field = "base_scenario" if name == deal.base_scenario else "deterministic_scenario"
        named = _named_where(deal, field, name, p)
        if named is p:  # a problem inside the scenario file: reported there
            raise
        raise DealError([named]) from None


def _not_found(p: Problem, name: str) -> bool:
    """Whether ``p`` says that scenario ``name`` is no file and no bundled scenario."""
    return str(p.file) == str(name) and p.path == "<file>"


def _named_where(deal: Deal, field: str, name: str, p: Problem) -> Problem:
    """A problem of loading the scenario the deal's ``field`` names: where the name is
    found nowhere, or names a stress grid where one scenario is taken, the deal file's field
    with the name; any other (a bad value in the scenario file) stays in that file, at its
    own field and value."""
    grid = p.path == "kind" and p.value == "stress_grid"
    if not (_not_found(p, name) or grid):
        return p
    return Problem(deal_source(deal), field, f"scenario cannot be loaded: {p.message}", name)


# --- size, price, breakeven, sensitivity ---------------------------------------------------------

#: ``breakeven``'s search range by parameter when ``--range`` is not given: where the
#: condition holds, then where it fails
_DEFAULT_RANGES = {
    "pd_multiplier": (0.0, 20.0),
    "recovery": (1.0, 0.0),
    "ip_haircut": (0.0, 1.0),
    "correlation": (0.0, 0.95),
    "cpr": (0.0, 0.5),
    "provider_pd_multiplier": (0.0, 50.0),
}


@contextmanager
def _naming(flag: str) -> Iterator[None]:
    """Problems in the file an option names carry the option's name."""
    try:
        yield
    except DealError as exc:
        raise DealError(
            [dataclasses.replace(p, message=f"{flag}: {p.message}") for p in exc.problems]
        ) from None
    except AbsEngineError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def check_solver_args(args: argparse.Namespace, deal: Deal) -> None:
    """The solver arguments that need the deal, checked before any evaluation runs."""
    from .solvers.structuring import check_parameter, describe_range

    names = [t.name for t in deal.tranches]
    tranche = args.tranche
    if tranche is not None and tranche not in names:
        raise UsageError(f"--tranche: unknown tranche {short_repr(tranche)}; tranches are {names}")
    if args.command == "size" and tranche == names[-1]:
        raise UsageError(
            f"--tranche: {tranche!r} is the most junior tranche, which absorbs the change; "
            f"size a more senior one ({names[:-1]})"
        )
    if tranche is not None and deal.tranches[names.index(tranche)].balance <= 0:
        if args.command == "price":
            raise UsageError(f"--tranche: {tranche!r} has no balance to price")
        if args.command in ("breakeven", "sensitivity"):
            raise UsageError(
                f"--tranche: {tranche!r} has no balance: its expected loss, shortfall "
                "probability and yield are undefined; choose a tranche with a balance"
            )
    if args.command == "breakeven" and args.range is not None:
        lo, hi = parse_range(args.range)
        for v in (lo, hi):
            try:
                check_parameter(args.param, v)
            except AbsEngineError:
                raise UsageError(
                    f"--range: {args.param} must be in {describe_range(args.param)} "
                    f"{got(args.range)}"
                ) from None
    if args.command == "sensitivity" and args.x[0] == args.y[0]:
        raise UsageError(f"--x and --y vary the same parameter {args.x[0]!r}: choose two")


def _rating_table(args: argparse.Namespace) -> RatingTable:
    """``--rating-table`` loaded (problems name the flag), or the shipped illustrative table."""
    from .metrics.rating import load_rating_table

    with _naming("--rating-table"):
        return load_rating_table(getattr(args, "rating_table", None))


def cmd_solver(args: argparse.Namespace) -> int:
    """``size``, ``price``, ``breakeven`` or ``sensitivity`` on a Monte Carlo scenario: one
    line (or a grid), or with ``--json`` one document."""
    deal = load_deal(args.deal)
    cd = compile_deal(deal)  # its problems and warnings up front; breakeven/sensitivity reuse it
    console.print_warnings(cd)
    name = args.scenario or deal.base_scenario
    if name is None:
        raise AbsEngineError("the deal names no base_scenario: give --scenario")
    with _named_by_the_deal(deal, name, bool(args.scenario)):
        sc = load_scenario(name, deal)
    if not isinstance(sc, MonteCarloScenario):
        raise UsageError(
            f"--scenario: {args.command} needs a Monte Carlo scenario; {sc.name!r} is deterministic"
        )
    check_solver_args(args, deal)
    seed = sc.seed if args.seed is None else args.seed
    solve = _SOLVERS[args.command]
    with cluster_runner(args) as runner:
        result, text = solve(args, deal, cd, sc, runner)
    if args.json:
        inputs = stamp(cd, [sc], rating_table=_rating_table(args), n_paths=args.paths, seed=seed,
                       sampling=getattr(args, "sampling", "crude"))  # fmt: skip
        console.print_json(
            documents.solver_document(deal.name, sc.name, args.paths, seed, result, inputs)
        )
    else:
        print(text)
    return EXIT_OK


#: what a solver command returns: its fields of the JSON document, and its printed text
_Answer = tuple[dict[str, Any], str]


def _size(
    args: argparse.Namespace, deal: Deal, cd: CompiledDeal, sc: MonteCarloScenario, runner: Any
) -> _Answer:
    from .solvers import size_tranche

    table = _rating_table(args)
    if args.target is not None and args.target not in table.ratings:
        raise UsageError(
            f"--target: unknown rating {short_repr(args.target)}; the table "
            f"({table.source}) has {list(table.ratings)}"
        )
    out = size_tranche(
        deal,
        sc,
        args.tranche,
        target_rating=args.target,
        target_el=args.target_el,
        n_paths=args.paths,
        seed=args.seed,
        rating_table=table,
        client=runner,
        progress=False if args.json else None,
        sampling=args.sampling,
    )
    result = {
        "tranche": args.tranche,
        "target": args.target or args.target_el,
        **out,
        "rating_table": {"source": table.source, "illustrative": table.illustrative},
    }
    target = args.target or f"EL {args.target_el:.4%}"
    return result, console.size_text(args.tranche, target, out)


def _size_stack(
    args: argparse.Namespace, deal: Deal, cd: CompiledDeal, sc: MonteCarloScenario, runner: Any
) -> _Answer:
    from .solvers import load_curve, size_stack
    from .solvers.stack import check_targets

    targets = []
    for spec in args.target:
        name, eq, rating = spec.rpartition("=")
        if not eq or not name or not rating:
            raise UsageError(f"--target: expected TRANCHE=RATING, e.g. A=AAA {got(spec)}")
        targets.append((name, rating))
    table = _rating_table(args)
    with _naming("--target"):  # the solver's own check names no flag
        check_targets(deal, targets, table)
    curve = None
    if args.curve is not None:
        with _naming("--curve"):
            curve = load_curve(args.curve)
    stack = size_stack(
        deal, sc, targets, curve=curve, n_paths=args.paths, seed=args.seed, rating_table=table,
        sampling=args.sampling, rounds=args.rounds, client=runner,
        progress=False if args.json else None,
    )  # fmt: skip
    result = {**stack.to_dict(), "curve": args.curve}
    text = console.size_stack_text(result)
    del result["n_paths"], result["seed"]  # the document's paths and seed say them
    return result, text


def _price(
    args: argparse.Namespace, deal: Deal, cd: CompiledDeal, sc: MonteCarloScenario, runner: Any
) -> _Answer:
    from .solvers import load_curve, solve_coupon

    with _naming("--curve"):
        curve = load_curve(args.curve)
    par = solve_coupon(
        deal,
        sc,
        args.tranche,
        curve,
        spread_bps=args.spread_bps,
        n_paths=args.paths,
        seed=args.seed,
        client=runner,
        progress=False if args.json else None,
        sampling=args.sampling,
        with_se=True,
    )
    floating = cd.deal.tranches[cd.tranche_index(args.tranche)].coupon.kind == "floating"
    result = {
        "tranche": args.tranche,
        "curve": args.curve,
        "spread_bps": args.spread_bps,
        "par_coupon": par["par_coupon"],
        "par_coupon_kind": "spread" if floating else "fixed",
        "par_coupon_se": par["se"],
        "par_coupon_ci95": par["ci95"],
        "par_coupon_se_method": par["method"],
        "sampling": args.sampling,
    }
    text = console.price_text(
        args.tranche,
        args.curve,
        args.spread_bps,
        par["par_coupon"],
        par["se"],
        par["ci95"],
        floating=floating,
        n_paths=args.paths if args.paths is not None else sc.n_paths,
        no_loss=par.get("search_loss_se") == 0.0,
    )
    return result, text


def _breakeven(
    args: argparse.Namespace, deal: Deal, cd: CompiledDeal, sc: MonteCarloScenario, runner: Any
) -> _Answer:
    from .solvers import breakeven, condition

    cond = condition(*parse_condition(args.condition))
    lo, hi = _DEFAULT_RANGES[args.param]
    if args.range:
        lo, hi = parse_range(args.range)
    be = breakeven(
        cd, sc, args.tranche, args.param, cond, lo=lo, hi=hi, n_paths=args.paths,
        seed=args.seed, client=runner, progress=False if args.json else None,
        sampling=args.sampling, with_se=True,
    )  # fmt: skip
    result = {
        "tranche": args.tranche,
        "param": args.param,
        "condition": args.condition,
        "breakeven": be["value"],
        "breakeven_se": be["se"],
        "breakeven_ci95": be["ci95"],
        "breakeven_se_method": be["method"],
        "sampling": args.sampling,
    }
    if "reason" in be:
        result["breakeven_se_reason"] = be["reason"]
    text = console.breakeven_text(
        args.tranche, args.condition, args.param, be["value"], be["se"], be["ci95"],
        be.get("reason"),
    )  # fmt: skip
    return result, text


def _sensitivity(
    args: argparse.Namespace, deal: Deal, cd: CompiledDeal, sc: MonteCarloScenario, runner: Any
) -> _Answer:
    from .solvers import sensitivity

    x, y = args.x, args.y
    table = _rating_table(args)
    grid = sensitivity(
        cd, sc, x, y, n_paths=args.paths, seed=args.seed, client=runner, rating_table=table,
        progress=False if args.json else None, sampling=args.sampling,
    )  # fmt: skip
    result = {"x": x[0], "y": y[0], "sampling": args.sampling,
              "grid": grid.to_dict(orient="records")}  # fmt: skip
    # by default the most senior tranche with a balance (one without has no loss to show)
    with_balance = [t.name for t in deal.tranches if t.balance > 0] or list(cd.tranche_names)
    tranche = args.tranche or with_balance[0]
    return result, console.sensitivity_text(grid, x[0], y[0], tranche, table)


_SOLVERS = {"size": _size, "price": _price, "breakeven": _breakeven, "sensitivity": _sensitivity,
            "size-stack": _size_stack}  # fmt: skip


# --- synth ---------------------------------------------------------------------------------------


def cmd_synth(args: argparse.Namespace) -> int:
    """``synth``: a synthetic pool's deal, tape and scenario files, checked to load."""
    from .synthetic import MAX_OBLIGOR_PERIODS, write_synthetic

    if args.obligors * args.periods > MAX_OBLIGOR_PERIODS:
        raise UsageError(
            f"--obligors × --periods must be at most {MAX_OBLIGOR_PERIODS:,} "
            f"(got {args.obligors:,} × {args.periods:,} = {args.obligors * args.periods:,})"
        )
    writers.check_out_folder(args.out, "synth OUT (the output folder)")
    paths = write_synthetic(
        args.out,
        args.obligors,
        name=args.name,
        correlation=args.correlation,
        heterogeneous=args.heterogeneous,
        attachments=args.attach,
        annual_pd=args.pd,
        recovery_rate=args.recovery,
        amortization=args.amortization,
        n_periods=args.periods,
        seed=args.seed,
        # what is written loads and compiles, checked before it is moved into place
        verify=lambda deal: compile_deal(load_deal(deal)),
    )
    for kind, p in paths.items():
        print(f"{kind}: {p}")
    print(f"run it: abs-engine run {paths['deal']} -s {paths['scenario']} --paths 10000")
    return EXIT_OK


# --- stress --------------------------------------------------------------------------------------


def cmd_stress(args: argparse.Namespace) -> int:
    """``stress``: breakeven default rates, the large-obligor test and the coverage-ratio
    table, deterministic, as rating agencies report them."""
    deal = load_deal(args.deal)
    cd = compile_deal(deal)
    console.print_warnings(cd)
    names = _stress_tranches(args, deal, cd)
    det = _stress_scenarios(args, deal)
    with cluster_runner(args) as runner:
        rows, lot, cov = _agency_tables(args, cd, names, det, runner)
    if args.json:
        console.print_json(_stress_doc(args, cd, names, rows, lot, cov, det))
        return EXIT_OK
    console.print_stress(
        cd,
        rows,
        lot,
        cov,
        [s.name for s in det],
        recovery=args.recovery,
        lag=args.lag,
        period=args.period,
    )
    return EXIT_OK


def _agency_tables(
    args: argparse.Namespace,
    cd: CompiledDeal,
    names: list[str],
    det: list[DeterministicScenario],
    runner: Any,
) -> tuple[list[dict[str, Any]], Any, Any]:
    """The breakeven rows of ``names`` (with and without support), the large-obligor test of
    the first and the coverage table of ``det`` (None without), computed as independent
    tasks: here one after another, or on the cluster."""
    from .solvers import breakeven_default_rate, coverage_table, large_obligor_test

    pairs = [(name, support) for name in names for support in (True, False)]
    calls: list[tuple[Callable[..., Any], tuple, dict[str, Any]]] = [
        (breakeven_default_rate, (name,),
         {"recovery_rate": args.recovery, "recovery_lag": args.lag, "support": support})
        for name, support in pairs
    ]  # fmt: skip
    lot_kw = {
        "max_obligors": min(3, cd.n_obligors) if args.largest is None else args.largest,
        "period": args.period,
        "recovery_rate": args.recovery,
        "recovery_lag": args.lag,
    }
    calls.append((large_obligor_test, (names[0] if names else None,), lot_kw))
    if det:
        calls.append((coverage_table, (det,), {}))
    out = calls_on(runner, cd, calls)
    rows = _breakeven_rows(pairs, out[: len(pairs)])
    return rows, out[len(pairs)], out[len(pairs) + 1] if det else None


def _stress_doc(
    args: argparse.Namespace,
    cd: CompiledDeal,
    names: list[str],
    rows: Any,
    lot: Any,
    cov: Any,
    det: list[DeterministicScenario],
) -> dict[str, Any]:
    return documents.stress_document(
        cd,
        stamp=stamp(cd, det),
        recovery=args.recovery,
        lag=args.lag,
        breakeven=rows,
        tranche=names[0] if names else None,
        period=args.period,
        large_obligors=lot,
        coverage=cov,
    )


def _stress_tranches(args: argparse.Namespace, deal: Deal, cd: CompiledDeal) -> list[str]:
    """The tranches to test (default: every rated one, with a balance), after checking
    ``--largest``, ``--tranche`` and ``--period`` against the deal."""
    if args.largest is not None and args.largest > cd.n_obligors:
        raise UsageError(
            f"--largest must be at most the pool's {cd.n_obligors} obligors (got {args.largest})"
        )
    rated = [t.name for t in deal.tranches if t.principal != "residual" and t.balance > 0]
    names: list[str] = args.tranche or rated
    for name in args.tranche or []:
        if name not in cd.tranche_names:
            raise UsageError(
                f"--tranche: unknown tranche {short_repr(name)}; tranches are "
                f"{list(cd.tranche_names)}"
            )
    if len(set(names)) != len(names):
        raise UsageError(f"--tranche: a tranche is named twice (got {names})")
    if args.period > cd.n_periods:
        raise UsageError(
            f"--period must be from 1 to the deal's {cd.n_periods} periods (got {args.period})"
        )
    return names


def _stress_scenarios(args: argparse.Namespace, deal: Deal) -> list[DeterministicScenario]:
    """The coverage table's scenarios (default: the deal's deterministic one), loaded; each
    must be deterministic."""
    sc_names = args.scenario or (
        [deal.deterministic_scenario] if deal.deterministic_scenario else []
    )
    scs = []
    for s in sc_names:
        with _named_by_the_deal(deal, s, bool(args.scenario)):
            scs.append(load_scenario(s, deal))
    det = [s for s in scs if isinstance(s, DeterministicScenario)]
    if len(det) != len(scs):
        mc = [s.name for s in scs if not isinstance(s, DeterministicScenario)]
        raise UsageError(
            f"--scenario: the coverage table takes deterministic scenarios only (got {mc})"
        )
    from .solvers.agency import check_coverage_scenarios

    try:  # before any breakeven is computed (here, or on a cluster)
        check_coverage_scenarios(det, "--scenario")
    except InputError as exc:
        raise UsageError(str(exc)) from None
    return det


def _breakeven_rows(pairs: list[tuple[str, bool]], results: list[Any]) -> list[dict[str, Any]]:
    """Each tranche's breakeven cumulative default rate, with and without support: rows of
    the (tranche, support) pairs and their :func:`~abs_engine.solvers.breakeven_default_rate`
    results."""
    return [
        {
            "tranche": name,
            "support": support,
            "breakeven_default_rate": be.breakeven_default_rate,
            "never_fails": be.never_fails,
            "base_case_default_rate": be.base_case_default_rate,
            "multiple": be.multiple,
        }
        for (name, support), be in zip(pairs, results, strict=True)
    ]


# --- report --------------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    """``report``: the deal's scenarios (default: its base and deterministic scenarios), the
    side-by-side table and the agency tables as an HTML report, an Excel workbook and their
    JSON document in ``--out``."""
    from .simulation import Progress

    writers.check_out_folder(args.out, "--out")
    deal = load_deal(args.deal)
    cd = compile_deal(deal)
    console.print_warnings(cd)
    scenarios = _report_scenarios(args, deal)
    mc = [s for s in scenarios if isinstance(s, MonteCarloScenario)]
    det = [s for s in scenarios if not isinstance(s, MonteCarloScenario)]
    if not mc:
        _refuse_monte_carlo_options(args)
    _check_monte_carlo_size(args, cd, mc)
    names = _stress_tranches(args, deal, cd)
    table = _rating_table(args)
    with compile_notice(), cluster_runner(args) as runner:
        results = [r.result() for r in _start_report_runs(args, cd, mc, table, runner)]
        rows, lot, cov = _agency_tables(args, cd, names, det, runner)
    det_res = run_deterministic(cd, det) if det else None
    comparison = comparison_rows([s.name for s in scenarios], results, det_res)
    info = stamp(
        cd, scenarios, rating_table=table if mc else None,
        n_paths=[r.n_paths for r in results] if mc else None,
        seed=[r.seed for r in results] if mc else None,
        sampling=args.sampling,
    )  # fmt: skip
    bar = Progress(4, False if args.no_progress else None, "report", "steps")
    done = iter(range(1, 5))
    from .report.deliverable import build_report, write_report

    doc, sections, _, html = build_report(
        cd,
        scenarios,
        [(r, documents.mc_document(r)) for r in results],
        None if det_res is None else (det_res, documents.result_document(det_res)),
        comparison,
        _stress_doc(args, cd, names, rows, lot, cov, det),
        info,
        args.lang,
        step=lambda: bar.update(next(done)),
    )
    files = write_report(args.out, doc, sections, html, args.lang)
    bar.update(4)
    bar.stop()
    print(f"wrote {', '.join(p.name for p in files)} to {args.out}")
    return EXIT_OK


def _report_scenarios(args: argparse.Namespace, deal: Deal) -> list[AnyScenario]:
    """``--scenario``s (stress grids expanded), or the deal's base and deterministic
    scenarios; names must be distinct (they label the report's tables)."""
    # the deal's two scenarios once each, where both fields name the same one
    names = args.scenario or list(
        dict.fromkeys(s for s in (deal.base_scenario, deal.deterministic_scenario) if s)
    )
    if not names:
        raise UsageError("--scenario: the deal names no scenarios; give at least one")
    scenarios = []
    for s in names:
        with _named_by_the_deal(deal, s, bool(args.scenario)):
            scenarios.extend(load_scenarios(s, deal))
    seen: set[str] = set()
    for sc in scenarios:
        if not isinstance(sc, MonteCarloScenario) and sc.name in ("period", "payment_date"):
            raise DealError.one(
                getattr(sc, "source", None) or "<scenario>",
                "name",
                "a deterministic scenario cannot be named 'period' or 'payment_date' in a "
                "report: its coverage table has columns of those names; rename the scenario",
                sc.name,
            )
        if sc.name in seen:
            raise UsageError(
                f"--scenario: two scenarios are named {sc.name!r}; the report labels its "
                "tables by scenario name"
            )
        seen.add(sc.name)
    return scenarios


def _start_report_runs(
    args: argparse.Namespace,
    cd: CompiledDeal,
    mc: list[MonteCarloScenario],
    table: RatingTable,
    runner: Any,
) -> list[Any]:
    """Every Monte Carlo run of the report, started (on a cluster: all submitted at once)."""
    return [
        start_simulation_compiled(
            cd,
            sc,
            n_paths=args.paths,
            seed=args.seed,
            threads=None if runner is not None else args.threads,
            progress=False if args.no_progress else None,
            rating_table=table,
            runner=runner,
            sampling=args.sampling,
            sampling_target=args.sampling_target,
        )
        for sc in mc
    ]
