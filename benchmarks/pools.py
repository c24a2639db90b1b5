"""Synthetic deals for benchmarks: a homogeneous pool of N obligors with a tranche stack, and
the heterogeneous pool ``abs-engine synth --heterogeneous`` writes."""

from __future__ import annotations

import tempfile
from typing import Any

import abs_engine as ae
from abs_engine.schema import parse_deal
from abs_engine.schema.stochastic import MonteCarloScenario


def homogeneous_deal(n_obligors: int, pd: float = 0.02, n_periods: int = 12) -> ae.CompiledDeal:
    """N obligors of 10,000 yuan at 6%, equal principal over ``n_periods`` quarters, PD ``pd``,
    sectors spread over 8 names; senior 85% at 3%, mezzanine 10% at 5%, residual 5%; a
    trustee fee, reserve, cumulative-default trigger with an accelerated waterfall."""
    return ae.compile_deal(parse_deal(homogeneous_doc(n_obligors, pd, n_periods)))


def homogeneous_doc(n_obligors: int, pd: float = 0.02, n_periods: int = 12) -> dict[str, Any]:
    """The deal document of :func:`homogeneous_deal`."""
    pool = 10_000.0 * n_obligors
    obligors = [
        {
            "id": f"O{i}",
            "balance": 10_000.0,
            "rate": 0.06,
            "sector": f"S{i % 8}",
            "amortization": {"kind": "equal_principal", "n_periods": n_periods},
            "pd": {"kind": "flat", "annual": pd},
        }
        for i in range(n_obligors)
    ]
    doc: dict[str, Any] = {
        "schema_version": 1,
        "name": f"synthetic {n_obligors}",
        "dates": {
            "closing": "2025-01-15",
            "first_payment": "2025-04-15",
            "frequency": "quarterly",
            "legal_final": f"{2025 + n_periods // 4}-01-15",
        },
        "pool": {"obligors": obligors},
        "tranches": [
            {"name": "A", "balance": 0.85 * pool, "coupon": {"kind": "fixed", "rate": 0.03}},
            {"name": "M", "balance": 0.10 * pool, "coupon": {"kind": "fixed", "rate": 0.05}},
            {"name": "E", "balance": 0.05 * pool, "principal": "residual"},
        ],
        "fees": [{"name": "trustee", "rate": 0.001, "base": "pool"}],
        "accounts": [
            {"name": "reserve", "target": {"kind": "percent", "rate": 0.01, "of": "notes"}}
        ],
        "triggers": [
            {"kind": "cumulative_default", "name": "cd", "threshold": 0.08, "effect": "accelerate"}
        ],
        "waterfalls": {
            "normal": [
                {"kind": "pay_fee", "fee": "trustee"},
                {"kind": "pay_interest", "tranches": ["A"]},
                {"kind": "pay_interest", "tranches": ["M"]},
                {"kind": "draw_reserve", "account": "reserve", "tranches": ["A"]},
                {"kind": "fund_reserve", "account": "reserve"},
                {"kind": "pay_principal", "tranches": ["A", "M", "E"]},
                {"kind": "pay_residual", "tranche": "E"},
            ],
            "accelerated": [
                {"kind": "pay_fee", "fee": "trustee"},
                {"kind": "pay_interest", "tranches": ["A"]},
                {"kind": "pay_principal", "tranches": ["A"], "amount": "available"},
                {"kind": "pay_interest", "tranches": ["M"]},
                {"kind": "pay_principal", "tranches": ["M", "E"], "amount": "available"},
                {"kind": "pay_residual", "tranche": "E"},
            ],
        },
    }
    return doc


def heterogeneous_deal(n_obligors: int) -> tuple[ae.CompiledDeal, MonteCarloScenario]:
    """The deal and Monte Carlo scenario ``abs-engine synth DIR --obligors N --heterogeneous``
    writes (lognormal balances, a schedule row per obligor, four PD classes: about 11,500
    defaults a path at 100,000 obligors), compiled and loaded."""
    from abs_engine.synthetic import write_synthetic

    with tempfile.TemporaryDirectory() as tmp:
        files = write_synthetic(tmp, n_obligors, heterogeneous=True)
        return ae.compile_deal(ae.load_deal(files["deal"])), ae.load_scenario(files["scenario"])


def pool_scenario(**over: Any) -> MonteCarloScenario:
    """The benchmark pool's Monte Carlo scenario, items of :func:`pool_scenario_doc`
    replaced by ``over``."""
    return MonteCarloScenario.model_validate({**pool_scenario_doc(), **over})


def pool_scenario_doc() -> dict[str, Any]:
    """The document of :func:`pool_scenario`: Basel correlation, 30% recovery after two
    periods."""
    return {
        "kind": "monte_carlo",
        "name": "bench",
        "defaults": {"correlation": {"kind": "basel"}},
        "recovery": {"kind": "rate", "rate": 0.3, "lag_periods": 2},
    }
