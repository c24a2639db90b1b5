"""The public Python API: load deals and scenarios, run them deterministically."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .compile.deal import CompiledDeal, compile_deal
from .compile.scenario import deterministic_flows
from .engine import WaterfallResult, run_waterfall
from .errors import DealError
from .metrics.rating import RatingTable, default_rating_table, load_rating_table
from .report import frames
from .resources import bundled_deal_path, data_dir
from .schema.deal import Deal
from .schema.load import deal_source, read_document, validate_model
from .schema.load import load_deal as _load_deal
from .schema.scenario import DeterministicScenario
from .schema.stochastic import MonteCarloScenario
from .simulation import InputError, SimulationResult, simulate_compiled

AnyScenario = DeterministicScenario | MonteCarloScenario

__all__ = [
    "DeterministicResult",
    "compile_deal",
    "load_deal",
    "load_scenario",
    "run_deterministic",
    "simulate",
]


def load_deal(path: str | Path | None = None) -> Deal:
    """Load and validate a deal file; with no argument, the bundled Huake-style deal."""
    return _load_deal(bundled_deal_path() if path is None else path)


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
    model: type[DeterministicScenario] | type[MonteCarloScenario]
    model = MonteCarloScenario if data.get("kind") == "monte_carlo" else DeterministicScenario
    sc = validate_model(model, data, str(source))
    sc._source = str(source)
    return sc


def load_scenario(name_or_path: str | Path, deal: Deal | None = None) -> AnyScenario:
    """Load a scenario file (deterministic or Monte Carlo), by path or by name (looked up
    beside the deal, in the deal's ``../scenarios`` folder, then among the bundled
    scenarios)."""
    cands = _scenario_candidates(str(name_or_path), deal)
    for c in cands:
        if c.is_file():
            return parse_any_scenario(read_document(c), c)
    where = ", ".join(dict.fromkeys(str(c.parent) for c in cands[1:])) or "the current folder"
    raise DealError.one(str(name_or_path), "<file>", f"scenario not found (looked in {where})")


@dataclass(frozen=True)
class DeterministicResult:
    """Result of :func:`run_deterministic`: one path per scenario, with full ledgers.

    ``tranches(k)``, ``pool(k)``, ``cashflows(k)``, ``periods(k)`` give scenario k's views;
    ``ledger()`` the long-form ledger of all scenarios; ``raw`` the kernel arrays."""

    raw: WaterfallResult
    scenarios: tuple[DeterministicScenario, ...]

    @property
    def compiled(self) -> CompiledDeal:
        return self.raw.deal

    def _k(self, scenario: int | str) -> int:
        if isinstance(scenario, str):
            return self.raw.flows.labels.index(scenario)
        return scenario

    def tranches(self, scenario: int | str = 0) -> pd.DataFrame:
        return frames.tranche_table(self.raw, self._k(scenario))

    def pool(self, scenario: int | str = 0) -> dict[str, Any]:
        return frames.pool_summary(self.raw, self._k(scenario))

    def cashflows(self, scenario: int | str = 0) -> pd.DataFrame:
        return frames.cashflow_table(self.raw, self._k(scenario))

    def periods(self, scenario: int | str = 0) -> pd.DataFrame:
        return frames.period_table(self.raw, self._k(scenario))

    @cached_property
    def _ledger(self) -> pd.DataFrame:
        return frames.ledger_long(self.raw)

    def ledger(self) -> pd.DataFrame:
        return self._ledger


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
    if deal is None or isinstance(deal, str | Path):
        deal = load_deal(deal)
    cd = deal if isinstance(deal, CompiledDeal) else compile_deal(deal)
    if scenarios is None:
        base = cd.deal.deterministic_scenario
        if base is None and cd.deal.base_scenario is not None:
            sc0 = load_scenario(cd.deal.base_scenario, cd.deal)
            base = cd.deal.base_scenario if isinstance(sc0, DeterministicScenario) else None
        scenarios = [
            load_scenario(base, cd.deal) if base else DeterministicScenario(name="no_defaults")
        ]
    elif isinstance(scenarios, DeterministicScenario | MonteCarloScenario | str | Path):
        scenarios = [scenarios]
    loaded = [s if isinstance(s, AnyScenario) else load_scenario(s, cd.deal) for s in scenarios]
    scs: list[DeterministicScenario] = []
    for s in loaded:
        if not isinstance(s, DeterministicScenario):
            raise DealError.one(s._source, "kind", "a Monte Carlo scenario: use simulate()", s.kind)
        scs.append(s)
    flows = deterministic_flows(cd, scs)
    return DeterministicResult(run_waterfall(cd, flows, jit=jit), tuple(scs))


def nan_to_none(x: Any) -> Any:
    """JSON-safe copy: NaN/inf → None, numpy scalars → Python, recursively."""
    if isinstance(x, dict):
        return {k: nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [nan_to_none(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


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
    batch_blocks : blocks of 1,024 paths per kernel call (progress granularity).
    threads : numba threads for this run (default: all).
    progress : show a progress bar (default: when the run is expected to take over 1 s).
    jit : False runs the plain-Python twin kernels (slow; for tests).
    rating_table : CSV path or loaded table for ``implied_rating``; default: the shipped
        ILLUSTRATIVE idealized expected-loss table.
    """
    if rating_table is None:
        rating_table = default_rating_table()
    elif not isinstance(rating_table, RatingTable):
        rating_table = load_rating_table(rating_table)
    if deal is None or isinstance(deal, str | Path):
        deal = load_deal(deal)
    cd = deal if isinstance(deal, CompiledDeal) else compile_deal(deal)
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
            sc._source,
            "kind",
            "a deterministic scenario: use run_deterministic() or give a monte_carlo scenario",
            sc.kind,
        )
    return simulate_compiled(
        cd,
        sc,
        n_paths=n_paths,
        seed=seed,
        keep_paths=keep_paths,
        ledger_paths=ledger_paths,
        batch_blocks=batch_blocks,
        threads=threads,
        progress=progress,
        jit=jit,
        rating_table=rating_table,
    )
