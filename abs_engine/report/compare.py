"""Scenarios side by side: one row per (tranche, scenario) with the figures an investor
compares — expected loss, probability of a shortfall, WAL, minimum coverage ratio and the
implied rating — from Monte Carlo and deterministic results alike.

For a deterministic scenario the "expected" loss is the scenario's own loss (share of the
tranche balance, undiscounted), its shortfall probability 1 or 0, and it has no standard
errors and no implied rating (a rating needs a distribution)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..compile.scenario import scenario_source
from ..errors import DealError, Problem
from ..kernels.layout import FEN, ST_FIRST_SHORTFALL_PERIOD
from .json_safe import nan_to_none

if TYPE_CHECKING:
    from ..api import DeterministicResult
    from .montecarlo import SimulationResult

__all__ = ["COMPARISON_COLUMNS", "check_distinct_names", "comparison_rows"]

#: the columns of a comparison row, in order
COMPARISON_COLUMNS = (
    "tranche", "scenario", "kind", "expected_loss", "expected_loss_se", "default_probability",
    "default_probability_se", "wal_years", "wal_years_se", "min_coverage_ratio",
    "min_coverage_ratio_se", "implied_rating",
)  # fmt: skip


def _mc_rows(res: SimulationResult) -> list[dict[str, Any]]:
    return [
        {
            "tranche": r["tranche"],
            "scenario": res.scenario.name,
            "kind": "monte_carlo",
            **{c: r[c] for c in COMPARISON_COLUMNS[3:]},
        }
        for r in res.tranches.to_dict(orient="records")
    ]


def _det_rows(res: DeterministicResult, k: int) -> list[dict[str, Any]]:
    rows = []
    # a shortfall as a Monte Carlo path counts one: any period's interest short (made good
    # later or not), or principal lost
    first_short = res.raw.sum_tr[k, :, ST_FIRST_SHORTFALL_PERIOD]
    for j, r in enumerate(res[k].tranches.to_dict(orient="records")):
        bal = r["balance"]
        short = first_short[j] >= 0 or r["loss"] > FEN or r["interest_shortfall"] > FEN
        rows.append(
            {
                "tranche": r["tranche"],
                "scenario": res.scenarios[k].name,
                "kind": "deterministic",
                "expected_loss": r["loss"] / bal if bal > 0 else 0.0,
                "expected_loss_se": None,
                "default_probability": 1.0 if short else 0.0,
                "default_probability_se": None,
                "wal_years": r["wal_years"],
                "wal_years_se": None,
                "min_coverage_ratio": r["min_coverage_ratio"],
                "min_coverage_ratio_se": None,
                "implied_rating": None,
            }
        )
    return rows


def check_distinct_names(scenarios: Iterable[Any]) -> None:
    """The side-by-side table labels its rows by scenario name: a
    :class:`~abs_engine.errors.DealError` naming the file and the ``name`` of each scenario
    whose name an earlier one has (before anything runs)."""
    problems, seen = [], set()
    for sc in scenarios:
        if sc.name in seen:
            why = (
                "two scenarios have this name; the side-by-side table labels its rows by "
                "scenario name: rename one"
            )
            problems.append(Problem(scenario_source(sc), sc.field_path("name"), why, sc.name))
        seen.add(sc.name)
    if problems:
        raise DealError(problems)


def comparison_rows(
    order: Sequence[str],
    monte_carlo: Sequence[SimulationResult] = (),
    deterministic: DeterministicResult | None = None,
) -> list[dict[str, Any]]:
    """Rows tranche by tranche (in the deal's order), each tranche's scenarios in ``order``
    (scenario names as given on the command line); numbers as Python floats, None where a
    figure is undefined. Scenario names must be distinct (:func:`check_distinct_names`)."""
    if len(set(order)) != len(order):
        raise ValueError(f"scenario names repeat in {list(order)}: their rows would mix")
    by_name: dict[str, list[dict[str, Any]]] = {}
    for res in monte_carlo:
        by_name[res.scenario.name] = _mc_rows(res)
    if deterministic is not None:
        for k in range(len(deterministic.scenarios)):
            by_name[deterministic.scenarios[k].name] = _det_rows(deterministic, k)
    first = by_name[order[0]]
    rows = [by_name[name][j] for j in range(len(first)) for name in order if name in by_name]
    return nan_to_none(rows)  # JSON-ready: NaN (a WAL never reached) is None
