"""Short summaries of results for the console and notebooks: ``repr`` (one line per tranche)
and ``_repr_html_`` (a small table per scenario), instead of the dataclasses' full field dumps
(tens of thousands of characters)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from ..api import DeterministicResult, DeterministicScenarioResult
    from .montecarlo import SimulationResult

__all__ = [
    "det_html",
    "det_repr",
    "det_scenario_html",
    "det_scenario_repr",
    "mc_html",
    "mc_repr",
]


def _pct(x: float) -> str:
    return f"{x:.4%}" if x == x else "n/a"


def _years(x: float) -> str:
    return f"{x:.3f}" if x == x else "n/a"


def _mc_rows(res: SimulationResult) -> pd.DataFrame:
    t = res.tranches
    return pd.DataFrame(
        {
            "tranche": t["tranche"],
            "balance": [f"{b:,.0f}" for b in t["balance"]],
            "expected loss (PV)": [
                f"{_pct(e)} ± {_pct(s)}"
                for e, s in zip(t["expected_loss"], t["expected_loss_se"], strict=True)
            ],
            "P(shortfall)": [
                f"{_pct(p)} ± {_pct(s)}"
                for p, s in zip(t["default_probability"], t["default_probability_se"], strict=True)
            ],
            "WAL (y)": [_years(w) for w in t["wal_years"]],
            "implied rating": t["implied_rating"],
        }
    )


def _mc_title(res: SimulationResult) -> str:
    return (
        f"{res.deal.deal.name} — scenario {res.scenario.name} (Monte Carlo): "
        f"{res.n_paths:,} paths, seed {res.seed}, {res.seconds:.2f} s"
    )


def mc_repr(res: SimulationResult) -> str:
    """``SimulationResult(...)``: the deal, scenario, paths and each tranche's EL ± SE."""
    lines = [f"SimulationResult({_mc_title(res)})"]
    for r in _mc_rows(res).itertuples(index=False):
        lines.append(f"  {r[0]}: EL {r[2]}, P(shortfall) {r[3]}, WAL {r[4]} y, {r[5]}")
    lines.append("  .tranches .pool .cashflows .paths .ledgers: the full frames")
    return "\n".join(lines)


def mc_html(res: SimulationResult) -> str:
    """A title and the tranche table (EL, P(shortfall) with standard errors, WAL, rating)."""
    table = _mc_rows(res).to_html(index=False, border=0)
    return f"<p><b>{html.escape(_mc_title(res))}</b></p>{table}"


def _det_rows(t: pd.DataFrame) -> pd.DataFrame:
    """One scenario's tranche table (:attr:`DeterministicScenarioResult.tranches`), for
    people."""
    return pd.DataFrame(
        {
            "tranche": t["tranche"],
            "balance": [f"{b:,.0f}" for b in t["balance"]],
            "loss": [f"{x:,.0f}" for x in t["loss"]],
            "interest shortfall": [f"{x:,.0f}" for x in t["interest_shortfall"]],
            "WAL (y)": [_years(w) for w in t["wal_years"]],
            "min coverage": [f"{c:.3f}x" if c == c else "n/a" for c in t["min_coverage_ratio"]],
        }
    )


def det_repr(res: DeterministicResult) -> str:
    """``DeterministicResult(...)``: per scenario, each tranche's loss and WAL."""
    lines = [f"DeterministicResult({res.compiled.deal.name}: {len(res)} scenario(s))"]
    for view in res:
        parts = [
            f"{r[0]} loss {r[2]}, WAL {r[4]} y"
            for r in _det_rows(view.tranches).itertuples(index=False)
        ]
        lines.append(f"  {view.name}: " + "; ".join(parts))
    lines.append(
        "  .tranches .pool .cashflows .ledger(): the full frames; res[k] or res[name]: one "
        "scenario's"
    )
    return "\n".join(lines)


def det_html(res: DeterministicResult) -> str:
    """A title and one small tranche table per scenario."""
    out = [f"<p><b>{html.escape(res.compiled.deal.name)}</b> — deterministic</p>"]
    for view in res:
        out.append(f"<p>scenario <code>{html.escape(view.name)}</code></p>")
        out.append(_det_rows(view.tranches).to_html(index=False, border=0))
    return "".join(out)


def _det_scenario_title(res: DeterministicScenarioResult) -> str:
    return f"{res.deal.deal.name} — scenario {res.name} (deterministic)"


def det_scenario_repr(res: DeterministicScenarioResult) -> str:
    """``DeterministicScenarioResult(...)``: the deal and scenario, each tranche's loss,
    interest shortfall, WAL and minimum coverage, and the pool's loss and worst status."""
    lines = [f"DeterministicScenarioResult({_det_scenario_title(res)})"]
    for r in _det_rows(res.tranches).itertuples(index=False):
        lines.append(
            f"  {r[0]}: loss {r[2]}, interest shortfall {r[3]}, WAL {r[4]} y, min coverage {r[5]}"
        )
    pool = res.pool_summary
    lines.append(
        f"  pool: defaulted {pool['defaulted']:,.0f} ({_pct(pool['cumulative_default_rate'])}), "
        f"realised loss {pool['realised_loss']:,.0f}, worst status {pool['worst_status']}"
    )
    lines.append("  .tranches .pool .cashflows .periods .ledger(): the full frames")
    return "\n".join(lines)


def det_scenario_html(res: DeterministicScenarioResult) -> str:
    """A title and the tranche table (loss, interest shortfall, WAL, minimum coverage)."""
    table = _det_rows(res.tranches).to_html(index=False, border=0)
    return f"<p><b>{html.escape(_det_scenario_title(res))}</b></p>{table}"
