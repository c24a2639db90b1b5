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
from .report import frames
from .resources import bundled_deal_path, data_dir
from .schema.deal import Deal
from .schema.load import deal_source, load_deal as _load_deal, load_scenario_file
from .schema.scenario import DeterministicScenario

__all__ = [
    "DeterministicResult",
    "compile_deal",
    "load_deal",
    "load_scenario",
    "run_deterministic",
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


def load_scenario(name_or_path: str | Path, deal: Deal | None = None) -> DeterministicScenario:
    """Load a scenario file, by path or by name (looked up beside the deal, in the deal's
    ``../scenarios`` folder, then among the bundled scenarios)."""
    cands = _scenario_candidates(str(name_or_path), deal)
    for c in cands:
        if c.is_file():
            return load_scenario_file(c)
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
    scenarios: DeterministicScenario | str | Path | Sequence[DeterministicScenario | str | Path] | None = None,
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
        base = cd.deal.base_scenario
        scenarios = [load_scenario(base, cd.deal) if base else DeterministicScenario(name="no_defaults")]
    elif isinstance(scenarios, DeterministicScenario | str | Path):
        scenarios = [scenarios]
    scs = tuple(s if isinstance(s, DeterministicScenario) else load_scenario(s, cd.deal) for s in scenarios)
    flows = deterministic_flows(cd, scs)
    return DeterministicResult(run_waterfall(cd, flows, jit=jit), scs)


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
