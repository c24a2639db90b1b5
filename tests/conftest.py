"""Shared builders for tests: small deals as plain dicts, run through the real loader."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from abs_engine.compile import compile_deal, deterministic_flows
from abs_engine.deterministic import WaterfallResult, run_waterfall
from abs_engine.kernels import layout as L
from abs_engine.schema import parse_deal, parse_scenario


def base_deal(**over: Any) -> dict[str, Any]:
    """A minimal valid deal: one bullet obligor of 100 at 0% over 3 annual periods, one
    fixed-rate tranche of 100 paid sequentially. Keys in ``over`` replace top-level keys."""
    d: dict[str, Any] = {
        "schema_version": 1,
        "name": "test deal",
        "dates": {
            "closing": "2025-01-01",
            "first_payment": "2026-01-01",
            "frequency": "annual",
            "legal_final": "2028-01-01",
            "business_day": "none",
        },
        "pool": {
            "obligors": [
                {
                    "id": "O1",
                    "balance": 100.0,
                    "rate": 0.0,
                    "amortization": {"kind": "bullet", "n_periods": 3},
                    "pd": {"kind": "flat", "annual": 0.02},
                }
            ]
        },
        "tranches": [{"name": "A", "balance": 100.0, "coupon": {"kind": "fixed", "rate": 0.0}}],
        "waterfalls": {
            "normal": [
                {"kind": "pay_interest", "tranches": ["A"]},
                {"kind": "pay_principal", "tranches": ["A"]},
            ]
        },
    }
    d.update(copy.deepcopy(over))
    return d


def annual_dates(n: int) -> dict[str, Any]:
    """``n`` annual periods from 2025-01-01 on 30/360 with no business-day roll: every accrual
    fraction is exactly 1 and an obligor's periodic rate is its annual rate."""
    return {
        "closing": "2025-01-01",
        "first_payment": "2026-01-01",
        "frequency": "annual",
        "legal_final": f"{2025 + n}-01-01",
        "day_count": "30/360",
        "business_day": "none",
    }


def compensation_fund(share: float, lag: int, name: str = "fund") -> dict[str, Any]:
    """A loss-compensation support (风险补偿资金池) paying ``share`` of each realised loss
    ``lag`` periods later, from a provider named Gov."""
    return {
        "kind": "loss_compensation",
        "name": name,
        "provider": {"name": "Gov"},
        "share": share,
        "lag_periods": lag,
    }


def obligor(
    oid: str, balance: float, rate: float = 0.0, n: int = 3, kind: str = "bullet", **kw: Any
) -> dict[str, Any]:
    o = {
        "id": oid,
        "balance": balance,
        "rate": rate,
        "amortization": {"kind": kind, "n_periods": n},
        "pd": {"kind": "flat", "annual": 0.02},
    }
    o.update(kw)
    return o


def run(deal: dict[str, Any], *scenarios: dict[str, Any], jit: bool = False) -> WaterfallResult:
    """Validate, compile and run ``deal`` on each scenario dict (default: no defaults)."""
    cd = compile_deal(parse_deal(deal))
    scs = [parse_scenario({"name": f"s{k}", **s}) for k, s in enumerate(scenarios or ({},))]
    return run_waterfall(cd, deterministic_flows(cd, scs), jit=jit)


def tranche_item(res: WaterfallResult, tranche: str, item: int, path: int = 0) -> np.ndarray:
    """Ledger column ``item`` (an ``LT_*`` index) of one tranche, one value per period."""
    j = res.deal.tranche_names.index(tranche)
    return res.led_tr[path, :, j, item]


@pytest.fixture
def layout():
    return L
