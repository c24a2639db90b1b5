"""Synthetic pools for tests and benchmarks: N obligors and a tranche stack by attachment
points, written as files the engine loads like any other deal (a JSON deal file, a Parquet
pool tape, and a Monte Carlo scenario).

Tranches are cut at the attachment points (e.g. 0.03, 0.06, 0.10 → A above 10%, B 6–10%,
C 3–6%, and a residual equity tranche below 3%) and paid sequentially, so pool losses fall on
them in reverse order of seniority.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import AbsEngineError
from .files import atomic_write

__all__ = ["one_period_deal", "synthetic_deal", "write_synthetic"]

_FREQ_MONTHS = {"monthly": 1, "quarterly": 3, "semi_annual": 6, "annual": 12}


def _tranche_stack(
    attachments: Sequence[float], pool: float, coupons: Sequence[float] | None
) -> list[dict[str, Any]]:
    points = sorted(float(a) for a in attachments)
    if not points or points[0] <= 0 or points[-1] >= 1 or len(set(points)) != len(points):
        raise AbsEngineError(
            "attachment points must be distinct and strictly between 0 and 1, "
            f"got {list(attachments)}"
        )
    bounds = [*reversed(points), 0.0]  # e.g. 0.10, 0.06, 0.03, 0
    names = [chr(ord("A") + k) for k in range(len(points))] + ["E"]
    if coupons is None:
        coupons = [0.03 + 0.01 * k for k in range(len(points))]
    if len(coupons) != len(points):
        raise AbsEngineError(
            f"need {len(points)} coupons (one per rated tranche), got {len(coupons)}"
        )
    out, top = [], 1.0
    for k, low in enumerate(bounds):
        bal = round((top - low) * pool, 2)
        if k < len(points):
            out.append(
                {
                    "name": names[k],
                    "balance": bal,
                    "coupon": {"kind": "fixed", "rate": float(coupons[k])},
                }
            )
        else:
            out.append({"name": "E", "balance": bal, "principal": "residual"})
        top = low
    return out


def one_period_deal(n: int, pd: float, attach: Sequence[float]) -> dict[str, Any]:
    """The textbook credit-portfolio pool as a deal document: N obligors of 1,000,000 yuan,
    bullet over one annual period (year fraction exactly 1, so the horizon PD is ``pd``),
    zero rates; zero-coupon tranches T0 (most senior), T1, ... cut at ``attach`` (which
    includes 0.0 for the equity) and paid sequentially, so tranche losses are the pool loss
    allocated reverse-sequentially. What analytic models (Vasicek, conditional binomial) and
    peers such as FinancePy describe."""
    bounds = sorted(attach, reverse=True)  # e.g. [0.10, 0.05, 0.0]
    names = [f"T{k}" for k in range(len(bounds))]
    tops = [1.0, *bounds[:-1]]
    return {
        "schema_version": 1,
        "name": f"one-period pool of {n}",
        "dates": {
            "closing": "2025-01-01",
            "first_payment": "2026-01-01",
            "frequency": "annual",
            "legal_final": "2026-01-01",
            "business_day": "none",
        },
        "pool": {
            "obligors": [
                {
                    "id": f"O{i}",
                    "balance": 1_000_000.0,
                    "rate": 0.0,
                    "amortization": {"kind": "bullet", "n_periods": 1},
                    "pd": {"kind": "flat", "annual": pd},
                }
                for i in range(n)
            ]
        },
        "tranches": [
            {
                "name": name,
                "balance": (top - a) * n * 1_000_000.0,
                "coupon": {"kind": "fixed", "rate": 0.0},
            }
            for name, a, top in zip(names, bounds, tops, strict=True)
        ],
        "waterfalls": {"normal": [{"kind": "pay_principal", "tranches": names}]},
    }


def synthetic_deal(
    n_obligors: int,
    *,
    heterogeneous: bool = False,
    seed: int = 0,
    pool_balance: float = 100_000_000.0,
    rate: float = 0.06,
    amortization: str = "equal_principal",
    n_periods: int = 12,
    frequency: str = "quarterly",
    closing: str = "2026-01-15",
    annual_pd: float = 0.02,
    pd_classes: Sequence[float] | None = None,
    sectors: int = 8,
    recovery_rate: float = 0.3,
    recovery_lag: int = 2,
    attachments: Sequence[float] = (0.03, 0.06, 0.10),
    coupons: Sequence[float] | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """A deal document (without its pool) and its pool tape.

    Homogeneous: every obligor has balance pool/N, rate ``rate`` and PD ``annual_pd``.
    Heterogeneous (reproducible from ``seed``): lognormal balances (sigma 1) scaled to the
    pool, rates ``rate`` ± 2%, PDs drawn from ``pd_classes`` (default 0.5×, 1×, 2×, 4×
    ``annual_pd``),
    and sectors at random. Amounts in yuan, rates decimal.
    """
    if n_obligors < 1:
        raise AbsEngineError(f"n_obligors must be at least 1, got {n_obligors}")
    if frequency not in _FREQ_MONTHS:
        raise AbsEngineError(f"frequency must be one of {list(_FREQ_MONTHS)}, got {frequency!r}")
    rng = np.random.default_rng(seed)
    n = n_obligors
    if heterogeneous:
        w = rng.lognormal(0.0, 1.0, n)
        balances = pool_balance * w / w.sum()
        rates = np.clip(rate + rng.uniform(-0.02, 0.02, n), 0.0, 1.0)
        base = annual_pd
        classes = np.asarray(
            pd_classes if pd_classes is not None else [base / 2, base, 2 * base, 4 * base]
        )
        pds = np.clip(classes[rng.integers(0, len(classes), n)], 0.0, 0.99)
        sector = rng.integers(0, sectors, n)
    else:
        balances = np.full(n, pool_balance / n)
        rates = np.full(n, rate)
        pds = np.full(n, annual_pd)
        sector = np.arange(n) % sectors
    balances = np.round(balances, 2)
    tape = pd.DataFrame(
        {
            "id": [f"S{i:07d}" for i in range(n)],
            "balance": balances,
            "rate": rates,
            "amortization": amortization,
            "n_periods": n_periods,
            "annual_pd": pds,
            "sector": [f"sector_{s}" for s in sector],
            "recovery_rate": recovery_rate,
            "recovery_lag_periods": recovery_lag,
        }
    )
    first = pd.Timestamp(closing) + pd.DateOffset(months=_FREQ_MONTHS[frequency])
    final = pd.Timestamp(closing) + pd.DateOffset(months=_FREQ_MONTHS[frequency] * n_periods)
    tranches = _tranche_stack(attachments, float(balances.sum()), coupons)
    names = [t["name"] for t in tranches]
    rated = names[:-1]
    deal = {
        "schema_version": 1,
        "name": f"synthetic {'heterogeneous' if heterogeneous else 'homogeneous'} pool of {n:,}",
        "description": "Synthetic pool written by abs_engine.synthetic",
        "dates": {
            "closing": closing,
            "first_payment": first.date().isoformat(),
            "frequency": frequency,
            "legal_final": final.date().isoformat(),
        },
        "pool": {"recovery": {"rate": recovery_rate, "lag_periods": recovery_lag}},
        "tranches": tranches,
        "fees": [{"name": "trustee", "rate": 0.0005, "base": "pool"}],
        "waterfalls": {
            "normal": [
                {"kind": "pay_fee", "fee": "trustee"},
                *({"kind": "pay_interest", "tranches": [t]} for t in rated),
                {"kind": "pay_principal", "tranches": names},
                {"kind": "pay_residual", "tranche": "E"},
            ]
        },
    }
    return deal, tape


def write_synthetic(
    out_dir: str | Path,
    n_obligors: int,
    *,
    name: str | None = None,
    correlation: float = 0.15,
    **kw: Any,
) -> dict[str, Path]:
    """Write ``<name>.json`` (deal), ``<name>_tape.parquet`` (pool) and ``<name>_mc.json`` (a
    Monte Carlo scenario with fixed asset ``correlation``) into ``out_dir``; each file is
    written to a temporary name and renamed. Returns the three paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = name or f"synthetic_{n_obligors}"
    deal, tape = synthetic_deal(n_obligors, **kw)
    tape_path = out / f"{name}_tape.parquet"
    deal["pool"]["tape"] = {"path": tape_path.name}
    deal_path = out / f"{name}.json"
    scenario = {
        "schema_version": 1,
        "kind": "monte_carlo",
        "name": f"{name}_mc",
        "description": f"One-factor Gaussian copula, asset correlation {correlation}",
        "defaults": {"correlation": {"kind": "fixed", "value": correlation}},
    }
    sc_path = out / f"{name}_mc.json"
    atomic_write(tape_path, lambda p: tape.to_parquet(p, index=False))
    atomic_write(deal_path, lambda p: p.write_text(json.dumps(deal, indent=2)))
    atomic_write(sc_path, lambda p: p.write_text(json.dumps(scenario, indent=2)))
    return {"deal": deal_path, "tape": tape_path, "scenario": sc_path}
