"""Short summaries of results for the console and notebooks: ``repr`` (one line per tranche)
and ``_repr_html_`` (a small table per scenario), instead of the dataclasses' full field dumps
(tens of thousands of characters)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from ..api import DeterministicResult
    from .montecarlo import SimulationResult

__all__ = ["det_html", "det_repr", "mc_html", "mc_repr"]


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


def _det_rows(res: DeterministicResult, k: int) -> pd.DataFrame:
    t = res.tranches(k)
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
    names = [s.name for s in res.scenarios] or list(res.raw.flows.labels)
    lines = [f"DeterministicResult({res.compiled.deal.name}: {len(names)} scenario(s))"]
    for k, name in enumerate(names):
        parts = [
            f"{r[0]} loss {r[2]}, WAL {r[4]} y" for r in _det_rows(res, k).itertuples(index=False)
        ]
        lines.append(f"  {name}: " + "; ".join(parts))
    lines.append("  .tranches(k) .pool(k) .cashflows(k) .periods(k) .ledger(): the full frames")
    return "\n".join(lines)


def det_html(res: DeterministicResult) -> str:
    """A title and one small tranche table per scenario."""
    names = [s.name for s in res.scenarios] or list(res.raw.flows.labels)
    out = [f"<p><b>{html.escape(res.compiled.deal.name)}</b> — deterministic</p>"]
    for k, name in enumerate(names):
        out.append(f"<p>scenario <code>{html.escape(name)}</code></p>")
        out.append(_det_rows(res, k).to_html(index=False, border=0))
    return "".join(out)
