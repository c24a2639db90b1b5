"""The public Python API: load deals and scenarios, run them deterministically."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .compile.deal import CompiledDeal, compile_deal
from .compile.sampling import ImportanceSampling
from .compile.scenario import deterministic_flows
from .deterministic import WaterfallResult, run_waterfall
from .errors import (
    ArgumentTypeError,
    DealError,
    DealWarning,
    InputError,
    Problem,
    check_bool,
    check_path,
    short_repr,
)
from .metrics.rating import RatingTable, default_rating_table, load_rating_table
from .precision import check_precision_target, run_to_precision
from .report import frames
from .report.json_safe import nan_to_none as nan_to_none  # re-exported: cli.py imports it here
from .resources import bundled_deal_path, data_dir
from .schema.deal import Deal
from .schema.load import deal_source, is_file, read_document, require_file, validate_model
from .schema.load import load_deal as _load_deal
from .schema.scenario import DeterministicScenario
from .schema.stochastic import MonteCarloScenario
from .schema.stress import StressGrid, shocked
from .simulation import SimulationResult, _simulate_checked, check_simulation_args

AnyScenario = DeterministicScenario | MonteCarloScenario

__all__ = [
    "DeterministicResult",
    "DeterministicScenarioResult",
    "compile_deal",
    "load_deal",
    "load_scenario",
    "run_deterministic",
    "simulate",
]


def load_deal(path: str | Path | None = None) -> Deal:
    """Load and validate a deal file; with no argument, the bundled Huake-style deal."""
    if path is None:
        return _load_deal(bundled_deal_path())
    return _load_deal(check_path(path, "load_deal", "path"))


def _deal_arg(deal: Any, func: str) -> CompiledDeal:
    """The ``deal`` argument of run_deterministic / simulate, loaded and compiled; its
    warnings issued as :class:`DealWarning`."""
    cd = _compiled(deal, func)
    for w in cd.warnings:
        warnings.warn(str(w), DealWarning, stacklevel=3)
    return cd


def _compiled(deal: Any, func: str) -> CompiledDeal:
    if isinstance(deal, CompiledDeal):
        return deal
    if isinstance(deal, Deal):
        return compile_deal(deal)
    if deal is None:
        return compile_deal(load_deal())
    if isinstance(deal, str | os.PathLike):
        return compile_deal(load_deal(check_path(deal, func, "deal")))
    raise ArgumentTypeError(
        f"{func}: deal must be a Deal, a CompiledDeal, a deal file path or None (the bundled "
        f"deal), got {short_repr(deal)} ({type(deal).__name__})"
    )


def _scenario_candidates(name: str, deal: Deal | None) -> list[Path]:
    cands = [Path(name)]
    stem = name if name.endswith((".toml", ".json")) else name + ".toml"
    if deal is not None and deal_source(deal) != "<memory>":
        deal_dir = Path(deal_source(deal)).parent
        cands += [deal_dir / stem, deal_dir.parent / "scenarios" / stem]
    try:
        cands.append(data_dir("scenarios") / stem)
    except FileNotFoundError:
        pass
    return cands


def parse_any_scenario(data: dict[str, Any], source: str | Path = "<memory>") -> AnyScenario:
    """Validate a scenario document of either kind (``deterministic``, the default, or
    ``monte_carlo``)."""
    if isinstance(data, dict) and data.get("kind") == "stress_grid":
        raise DealError.one(
            source, "kind", "a stress grid stands for several scenarios (its base and one per "
            "shock): give it where several are taken (run -s, report -s, "
            "load_scenarios), not where one scenario is", "stress_grid",
        )  # fmt: skip
    model: type[DeterministicScenario] | type[MonteCarloScenario]
    model = MonteCarloScenario if data.get("kind") == "monte_carlo" else DeterministicScenario
    return validate_model(model, data, str(source), source=source)


def _scenario_file(name_or_path: str | Path, deal: Deal | None, func: str) -> Path:
    """The scenario file a name or path stands for (beside the deal, in the deal's
    ``../scenarios`` folder, then among the bundled scenarios); a :class:`DealError` when
    there is none."""
    p = check_path(name_or_path, func, "name_or_path")
    if deal is not None and not isinstance(deal, Deal):
        raise ArgumentTypeError(
            f"{func}: deal must be a Deal or None, got {short_repr(deal)} ({type(deal).__name__})"
        )
    looks_like_path = p.suffix.lower() in (".toml", ".json") or os.sep in str(name_or_path)
    if looks_like_path and os.path.lexists(p):
        # the path names something: a folder or a device is said as such
        require_file(p, "scenario file")
    cands = _scenario_candidates(str(p), deal)
    for c in cands:
        if is_file(c):
            return c
    where = ", ".join(dict.fromkeys(str(c.parent) for c in cands[1:])) or "the current folder"
    raise DealError.one(str(name_or_path), "<file>", f"scenario not found (looked in {where})")


def load_scenario(name_or_path: str | Path, deal: Deal | None = None) -> AnyScenario:
    """Load a scenario file (deterministic or Monte Carlo), by path or by name (looked up
    beside the deal, in the deal's ``../scenarios`` folder, then among the bundled
    scenarios)."""
    c = _scenario_file(name_or_path, deal, "load_scenario")
    return parse_any_scenario(read_document(c), c)


def load_scenarios(name_or_path: str | Path, deal: Deal | None = None) -> list[AnyScenario]:
    """:func:`load_scenario`, where a stress-grid file (``kind = "stress_grid"``, see
    :mod:`abs_engine.schema.stress`) gives its base Monte Carlo scenario and one shocked
    scenario per shock; any other scenario file gives itself."""
    c = _scenario_file(name_or_path, deal, "load_scenarios")
    doc = read_document(c)
    if doc.get("kind") != "stress_grid":
        return [parse_any_scenario(doc, c)]
    return _stress_grid(validate_model(StressGrid, doc, str(c), source=c), c, deal)


def _at_the_grids_base(exc: DealError, path: Path, base: str) -> DealError:
    """A base scenario that cannot be loaded, told at the grid's ``base`` field (its
    messages named the reference as if it were a file: "nope: <file>: scenario not
    found"): a problem of the reference itself (not found, a folder, a grid) in one line;
    problems inside the file it names after a line saying whose base it is."""
    (first, *rest) = exc.problems
    # (the reference's: not found, a folder, a device; not the file's own, its syntax)
    if not rest and first.path in ("<file>", "kind"):
        return DealError.one(path, "base", first.message, base)
    head = Problem(str(path), "base", "the base scenario has the problems below", base)
    return DealError([head, *exc.problems], total=exc.total + 1)


def _stress_grid(grid: StressGrid, path: Path, deal: Deal | None) -> list[AnyScenario]:
    beside = path.parent / grid.base
    try:
        base = load_scenario(beside if is_file(beside) else grid.base, deal)
    except DealError as exc:
        raise _at_the_grids_base(exc, path, grid.base) from None
    if not isinstance(base, MonteCarloScenario):
        raise DealError.one(path, "base", "the base of a stress grid must be a Monte Carlo "
                            "scenario", grid.base)  # fmt: skip
    return [base, *(shocked(base, s, str(path), k) for k, s in enumerate(grid.shocks))]


@dataclass(frozen=True, repr=False)
class DeterministicResult:
    """Result of :func:`run_deterministic`: one path per scenario, with full ledgers.

    Shaped like a Monte Carlo :class:`~abs_engine.report.montecarlo.SimulationResult`, whose
    frames are attributes: here ``res.tranches``, ``res.pool`` and ``res.cashflows`` hold
    every scenario (a ``scenario`` column first; the pool a ``(scenario, metric)`` index), and
    ``res[k]`` or ``res["cdr_stress"]`` is one scenario's
    :class:`DeterministicScenarioResult`, with the same attributes for that scenario alone.
    ``len(res)`` counts the scenarios and iterating gives them in order; ``ledger()`` is the
    long-form ledger of all scenarios, ``raw`` the kernel arrays.

    Example::

        res = run_deterministic(None, ["huake_base", "cdr_stress"])
        res["cdr_stress"].tranches          # as sim.tranches: one row per tranche
        res["cdr_stress"].pool.loc["realised_loss", "value"]
        res.pool["value"].unstack("scenario")   # metrics by scenario
    """

    raw: WaterfallResult
    scenarios: tuple[DeterministicScenario, ...]

    @property
    def compiled(self) -> CompiledDeal:
        return self.raw.deal

    @property
    def deal(self) -> CompiledDeal:
        """The compiled deal (as ``SimulationResult.deal``; also :attr:`compiled`)."""
        return self.raw.deal

    @cached_property
    def _views(self) -> tuple[DeterministicScenarioResult, ...]:
        return tuple(DeterministicScenarioResult(self, k) for k in range(len(self)))

    def __len__(self) -> int:
        return len(self.raw.flows.labels)

    def __iter__(self) -> Iterator[DeterministicScenarioResult]:
        return iter(self._views)

    def __getitem__(self, scenario: int | str) -> DeterministicScenarioResult:
        """Scenario ``scenario`` (its name, or its index, negative from the end)."""
        return self._views[self._k(scenario, "DeterministicResult[scenario]")]

    def __contains__(self, scenario: object) -> bool:
        """Whether the result has a scenario of this name (or is this scenario's result)."""
        if isinstance(scenario, DeterministicScenarioResult):
            return scenario.result is self
        return isinstance(scenario, str) and scenario in self.raw.flows.labels

    @cached_property
    def tranches(self) -> pd.DataFrame:
        """Every scenario's tranche table (:attr:`DeterministicScenarioResult.tranches`), one
        after the other, with a ``scenario`` column first."""
        return _stacked([v.tranches for v in self], [v.name for v in self])

    @cached_property
    def pool(self) -> pd.DataFrame:
        """Every scenario's pool frame (:attr:`DeterministicScenarioResult.pool`) under a
        ``(scenario, metric)`` index, column ``value``: ``res.pool.loc["cdr_stress"]`` is that
        scenario's frame, ``res.pool["value"].unstack("scenario")`` metrics by scenario."""
        return pd.concat([v.pool for v in self], keys=[v.name for v in self], names=["scenario"])

    @cached_property
    def cashflows(self) -> pd.DataFrame:
        """Every scenario's cash flows per period (:attr:`DeterministicScenarioResult.cashflows`),
        one after the other, with a ``scenario`` column first. A scenario that pays a tranche
        no residual has no ``<tranche>.residual_paid`` column of its own; here it reads 0."""
        parts = [v.cashflows for v in self]
        columns = _merged_columns([list(p.columns) for p in parts])
        parts = [p.reindex(columns=columns, fill_value=0.0) for p in parts]
        return _stacked(parts, [v.name for v in self])

    def cashflows_long(self) -> pd.DataFrame:
        """Every scenario's cash flows per tranche in long form: scenario, period,
        payment_date, tranche, item, value (yuan) — beside the wide :attr:`cashflows`."""
        return _stacked([v.cashflows_long() for v in self], [v.name for v in self])

    def __repr__(self) -> str:
        from .report.notebook import det_repr

        return det_repr(self)

    def _repr_html_(self) -> str:
        from .report.notebook import det_html

        return det_html(self)

    def _k(self, scenario: int | str, func: str = "scenario") -> int:
        labels = self.raw.flows.labels
        if isinstance(scenario, str):
            if scenario not in labels:
                raise InputError(
                    f"{func}: unknown scenario {short_repr(scenario)}; the result has "
                    f"{list(labels)}"
                )
            return labels.index(scenario)
        if isinstance(scenario, bool) or not isinstance(scenario, int | np.integer):
            raise ArgumentTypeError(
                f"{func}: scenario must be a scenario name or an index, got "
                f"{short_repr(scenario)} ({type(scenario).__name__})"
            )
        n = len(labels)
        if not -n <= int(scenario) < n:
            raise InputError(
                f"{func}: scenario index {int(scenario)} is out of range; the result has {n} "
                f"scenario{'s' if n != 1 else ''} (0..{n - 1}): {list(labels)}"
            )
        return int(scenario) % n

    @cached_property
    def _ledger(self) -> pd.DataFrame:
        return frames.ledger_long(self.raw)

    def ledger(self) -> pd.DataFrame:
        return self._ledger


@dataclass(frozen=True, repr=False, eq=False)
class DeterministicScenarioResult:
    """One scenario of a :class:`DeterministicResult` (``res[k]``, ``res["cdr_stress"]``),
    with the frames of a Monte Carlo
    :class:`~abs_engine.report.montecarlo.SimulationResult` as attributes: one path, so
    amounts rather than means, and no standard errors.

    Attributes
    ----------
    tranches : DataFrame   one row per tranche: tranche, balance, coupon, principal_paid,
        interest_paid, loss, interest_shortfall, wal_years, min_coverage_ratio,
        support_received, reserve_received, residual_paid (yuan; coupon as a decimal).
    pool : DataFrame       pool and deal totals, indexed by ``metric`` like the Monte Carlo
        pool frame, in one float64 column ``value``: a single path has an amount, not a mean
        with a standard error, and ``value`` is what the long cash-flow frames of both kinds
        call one figure. A trigger or clean-up-call period that never came is NaN; the worst
        status, which is text, is :attr:`worst_status`; :attr:`pool_summary` holds the same
        items as plain Python values (what the JSON documents print).
    cashflows : DataFrame  per period: pool items and each tranche's interest, principal and
        balance (columns like ``A.interest_paid``), coverage ratio, status.
    periods : DataFrame    deal-level ledger items per period.
    scenario : DeterministicScenario   the scenario (``name``: its name).
    deal : CompiledDeal
    """

    result: DeterministicResult
    index: int

    @property
    def deal(self) -> CompiledDeal:
        return self.result.compiled

    @property
    def scenario(self) -> DeterministicScenario:
        return self.result.scenarios[self.index]

    @property
    def name(self) -> str:
        return self.result.raw.flows.labels[self.index]

    @cached_property
    def tranches(self) -> pd.DataFrame:
        return frames.tranche_table(self.result.raw, self.index)

    @cached_property
    def _pool_summary(self) -> dict[str, Any]:
        return frames.pool_summary(self.result.raw, self.index)

    @property
    def pool_summary(self) -> dict[str, Any]:
        """The pool items as plain values (a copy): counts and periods as ints, a period that
        never came as None, ``scenario`` and ``worst_status`` as text."""
        return dict(self._pool_summary)

    @cached_property
    def pool(self) -> pd.DataFrame:
        return frames.pool_frame(self._pool_summary)

    @property
    def worst_status(self) -> str:
        """The worst deal status reached (``normal``, ... see the ``status`` of
        :attr:`periods`)."""
        status: str = self._pool_summary["worst_status"]
        return status

    @cached_property
    def cashflows(self) -> pd.DataFrame:
        return frames.cashflow_table(self.result.raw, self.index)

    @cached_property
    def periods(self) -> pd.DataFrame:
        return frames.period_table(self.result.raw, self.index)

    def cashflows_long(self) -> pd.DataFrame:
        """The cash flows per tranche in long form: period, payment_date, tranche, item,
        value (yuan) — beside the wide :attr:`cashflows`."""
        return frames.cashflows_long(self.cashflows, self.deal.tranche_names)

    def ledger(self) -> pd.DataFrame:
        """This scenario's rows of :meth:`DeterministicResult.ledger`."""
        return frames.ledger_long(self.result.raw, [self.index])

    def __repr__(self) -> str:
        from .report.notebook import det_scenario_repr

        return det_scenario_repr(self)

    def _repr_html_(self) -> str:
        from .report.notebook import det_scenario_html

        return det_scenario_html(self)


def _stacked(parts: Sequence[pd.DataFrame], names: Sequence[str]) -> pd.DataFrame:
    """Frames one after the other with a ``scenario`` column first (a new 0.. index)."""
    tagged = [p.assign(scenario=n) for p, n in zip(parts, names, strict=True)]
    out = pd.concat(tagged, ignore_index=True)
    return out[["scenario", *(c for c in out.columns if c != "scenario")]]


def _merged_columns(orders: Sequence[list[str]]) -> list[str]:
    """The union of several column orders: each column missing so far goes in after the
    column it follows where it appears."""
    out: list[str] = []
    for cols in orders:
        for k, c in enumerate(cols):
            if c not in out:
                out.insert(out.index(cols[k - 1]) + 1 if k else 0, c)
    return out


#: what a scenario argument may be: a scenario object, or a name or path to load
_SCENARIO_ARG = (DeterministicScenario, MonteCarloScenario, str, os.PathLike)


def _scenario_list(scenarios: Any, func: str) -> Sequence[Any]:
    """The ``scenarios`` argument of run_deterministic as a non-empty list of scenarios, names
    or paths."""
    if isinstance(scenarios, _SCENARIO_ARG):
        return [scenarios]
    if not isinstance(scenarios, Sequence):
        raise ArgumentTypeError(
            f"{func}: scenarios must be a scenario, a name or path, or a list of them, got "
            f"{short_repr(scenarios)} ({type(scenarios).__name__})"
        )
    if not scenarios:
        raise InputError(f"{func}: scenarios is empty; give at least one, or None")
    for k, s in enumerate(scenarios):
        if not isinstance(s, _SCENARIO_ARG):
            raise ArgumentTypeError(
                f"{func}: scenarios[{k}] must be a DeterministicScenario, a name or a path, "
                f"got {short_repr(s)} ({type(s).__name__})"
            )
    return scenarios


def run_deterministic(
    deal: Deal | CompiledDeal | str | Path | None = None,
    scenarios: AnyScenario | str | Path | Sequence[AnyScenario | str | Path] | None = None,
    *,
    jit: bool = True,
) -> DeterministicResult:
    """Run deterministic scenario(s) through the deal's waterfall.

    Parameters
    ----------
    deal : Deal, CompiledDeal, path, or None for the bundled deal.
    scenarios : one or several scenarios (objects, names or paths); None → the deal's
        ``base_scenario`` (or no defaults when it names none).
    jit : use the numba kernel (True) or its plain-Python twin.
    """
    func = "run_deterministic"
    jit = check_bool(jit, func, "jit")
    if scenarios is not None:
        scenarios = _scenario_list(scenarios, func)
    cd = _deal_arg(deal, func)
    if scenarios is None:
        base = cd.deal.deterministic_scenario
        if base is None and cd.deal.base_scenario is not None:
            sc0 = load_scenario(cd.deal.base_scenario, cd.deal)
            base = cd.deal.base_scenario if isinstance(sc0, DeterministicScenario) else None
        scenarios = [
            load_scenario(base, cd.deal) if base else DeterministicScenario(name="no_defaults")
        ]
    loaded = [s if isinstance(s, AnyScenario) else load_scenario(s, cd.deal) for s in scenarios]
    scs: list[DeterministicScenario] = []
    for s in loaded:
        if not isinstance(s, DeterministicScenario):
            raise DealError.one(s.source, "kind", "a Monte Carlo scenario: use simulate()", s.kind)
        if any(t.name == s.name for t in scs):
            # the result is indexed by name: the second was out of reach, its rows mixed
            # with the first's in the pool frame
            raise InputError(
                f"{func}: two scenarios are named {s.name!r}; the result is indexed by name: "
                "rename one (model_copy(update={'name': ...}))"
            )
        scs.append(s)
    flows = deterministic_flows(cd, scs)
    return DeterministicResult(run_waterfall(cd, flows, jit=jit), tuple(scs))


def simulate(
    deal: Deal | CompiledDeal | str | Path | None = None,
    scenario: MonteCarloScenario | str | Path | None = None,
    *,
    n_paths: int | None = None,
    seed: int | None = None,
    keep_paths: bool = False,
    ledger_paths: Sequence[int] = (),
    batch_blocks: int | None = None,
    threads: int | None = None,
    progress: bool | None = None,
    jit: bool = True,
    rating_table: str | Path | RatingTable | None = None,
    client: Any = None,
    sampling: str | ImportanceSampling = "crude",
    sampling_target: str | None = None,
    target_se: float | None = None,
    target_rel_se: float | None = None,
    target_tranche: str | None = None,
    max_paths: int | None = None,
) -> SimulationResult:
    """Monte Carlo simulation of a deal through its waterfall.

    Parameters
    ----------
    deal : Deal, CompiledDeal, path, or None for the bundled deal.
    scenario : a Monte Carlo scenario (object, name or path); None → the deal's
        ``base_scenario`` (``huake_mc`` for the bundled deal).
    n_paths, seed : override the scenario's ``n_paths`` and ``seed``. Random numbers are a pure
        function of (seed, global path index): results are bitwise identical for any
        ``threads`` and ``batch_blocks``.
    keep_paths : keep the per-path metric vectors (memory O(n_paths)); otherwise memory does
        not grow with the path count.
    ledger_paths : global path indices whose full waterfall ledgers to keep.
    batch_blocks : blocks of 1,024 paths per kernel call (progress granularity); default:
        sized as the run goes, about a quarter of a second each (no effect on results).
    threads : kernel threads for this run (default: NUMBA_NUM_THREADS, all cores).
    progress : show a progress bar (default: when the run is expected to take over 1 s).
    jit : False runs the plain-Python twin kernels (slow; for tests).
    rating_table : CSV path or loaded table for ``implied_rating``; default: the shipped
        ILLUSTRATIVE idealized expected-loss table.
    client : a ``distributed.Client`` (or an :class:`abs_engine.distributed.DaskRunner`):
        the path blocks run as tasks on its cluster and are added back in block order, so the
        result is bitwise the same as without it. ``threads`` is then per task (default: the
        worker's cores).
    sampling : "crude" (default) or "importance": the factors, the support providers' own
        draws and (Student-t) the mixing variable shifted towards the losses of
        ``sampling_target`` (a tranche name; default the most senior rated tranche), each
        path weighted by its likelihood ratio (see :mod:`abs_engine.compile.sampling`); or an
        :class:`~abs_engine.compile.sampling.ImportanceSampling` with shifts of your own.
        Every mean, standard error, histogram and rating is weighted; ``result.sampling``
        gives the effective sample size and the in-run variance reduction.
    target_se, target_rel_se : run more paths (from ``n_paths``) until ``target_tranche``'s
        expected loss (default: the most senior rated tranche) reaches this standard error
        (share of its balance) or relative standard error, with at most ``max_paths``
        (default 10,000,000); ``result.precision`` says what was reached. See
        :mod:`abs_engine.precision`.
    """
    func = "simulate"
    args = check_simulation_args(
        func, n_paths=n_paths, seed=seed, keep_paths=keep_paths, ledger_paths=ledger_paths,
        batch_blocks=batch_blocks, threads=threads, progress=progress, jit=jit,
        sampling=sampling, sampling_target=sampling_target,
    )  # fmt: skip
    if scenario is not None and not isinstance(scenario, _SCENARIO_ARG):
        raise ArgumentTypeError(
            f"{func}: scenario must be a MonteCarloScenario, a scenario name or path, or None, "
            f"got {short_repr(scenario)} ({type(scenario).__name__})"
        )
    if rating_table is None:
        rating_table = default_rating_table()
    elif isinstance(rating_table, str | os.PathLike):
        table_path = check_path(rating_table, func, "rating_table")
        require_file(table_path, "rating table")
        rating_table = load_rating_table(table_path)
    elif not isinstance(rating_table, RatingTable):
        raise ArgumentTypeError(
            f"{func}: rating_table must be a CSV path or a RatingTable, got "
            f"{short_repr(rating_table)} ({type(rating_table).__name__})"
        )
    cd = _deal_arg(deal, func)
    if scenario is None:
        if cd.deal.base_scenario is None:
            raise InputError(
                f"{cd.source}: the deal names no base_scenario; give a Monte Carlo scenario"
            )
        scenario = cd.deal.base_scenario
    sc = (
        scenario
        if isinstance(scenario, MonteCarloScenario | DeterministicScenario)
        else load_scenario(scenario, cd.deal)
    )
    if not isinstance(sc, MonteCarloScenario):
        raise DealError.one(
            sc.source,
            "kind",
            "a deterministic scenario: use run_deterministic() or give a monte_carlo scenario",
            sc.kind,
        )
    args["runner"] = _runner(client, args["threads"], func)
    target = check_precision_target(func, target_se, target_rel_se, target_tranche, max_paths)
    # the normalised arguments: an iterator given as ledger_paths is consumed by the check
    if target is None:
        return _simulate_checked(cd, sc, args, rating_table, func)

    def run(n: int) -> SimulationResult:
        return _simulate_checked(cd, sc, {**args, "n_paths": n}, rating_table, func)

    return run_to_precision(run, args["n_paths"] or sc.n_paths, cd, target, func)


def _runner(client: Any, threads: int | None, func: str) -> Any:
    """The Dask runner for ``client=`` (None: this process)."""
    if client is None:
        return None
    from .distributed import runner_for

    runner = runner_for(client, func)
    if threads is not None and runner is not None:
        runner = runner.with_threads(threads)
    return runner
