"""Synthetic pools for tests and benchmarks: N obligors and a tranche stack by attachment
points, written as files the engine loads like any other deal (a JSON deal file, a Parquet
pool tape, and a Monte Carlo scenario).

Tranches are cut at the attachment points (e.g. 0.03, 0.06, 0.10 → A above 10%, B 6–10%,
C 3–6%, and a residual equity tranche below 3%) and paid sequentially, so pool losses fall on
them in reverse order of seniority.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import AbsEngineError, DealError, int_in, short_repr
from .files import staged_outputs, write_parquet
from .schema.common import FORMULA_START
from .schema.stochastic import MAX_SEED

if TYPE_CHECKING:  # pandas loads where a pool is built: the CLI's parser reads the limits
    import pandas as pd

__all__ = [
    "MAX_ATTACHMENTS",
    "MAX_OBLIGORS",
    "MAX_OBLIGOR_PERIODS",
    "MAX_PERIODS",
    "check_name",
    "one_period_deal",
    "synthetic_deal",
    "write_synthetic",
]

_FREQ_MONTHS = {"monthly": 1, "quarterly": 3, "semi_annual": 6, "annual": 12}
AMORTIZATIONS = ("bullet", "level_pay", "equal_principal")

#: documented ranges of a synthetic pool: obligors, periods, their product (the schedule
#: arrays are obligors × periods), attachment points (rated tranches), name length (the
#: scenario is named ``<name>_mc``, and a scenario's name is at most 64 characters)
MAX_OBLIGORS = 1_000_000
MAX_PERIODS = 120
MAX_OBLIGOR_PERIODS = 24_000_000
MAX_ATTACHMENTS = 20
MAX_NAME_LENGTH = 64 - len("_mc")


def check_name(name: object) -> str:
    """A file-name stem for the synthetic files: a plain name (no path separator, not starting
    with a dot, no control characters, at most :data:`MAX_NAME_LENGTH` characters), so the
    files land in the output folder and nowhere else."""
    if not isinstance(name, str):
        raise AbsEngineError(f"name must be a string, got {short_repr(name)}")
    why = None
    if not name:
        why = "is empty"
    elif len(name) > MAX_NAME_LENGTH:
        why = f"is longer than {MAX_NAME_LENGTH} characters"
    elif any(sep in name for sep in ("/", "\\", os.sep, os.altsep or "/")):
        why = "contains a path separator"
    elif name != name.strip():
        why = "starts or ends with white space"
    elif name.startswith("."):
        why = "starts with a dot ('.', '..' and hidden names are refused)"
    elif not name.isprintable():  # control characters, bidi overrides (U+202E)...
        why = "contains a control or invisible formatting character"
    elif ":" in name:
        why = "contains ':'"
    elif name.startswith(FORMULA_START):
        why = f"starts with {name[0]!r} (a spreadsheet would run the outputs' cells as formulas)"
    if why:
        raise AbsEngineError(
            f"name {why}: it must be a plain file-name stem, got {short_repr(name)}"
        )
    return name


def _number_in(
    value: object, lo: float, hi: float, what: str, *, lo_open: bool = False, hi_open: bool = False
) -> float:
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    v = float(value) if ok else math.nan  # type: ignore[arg-type]
    inside = (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)
    if not (ok and math.isfinite(v) and inside):
        span = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise AbsEngineError(f"{what} must be a number in {span}, got {short_repr(value)}")
    return v


def _rated_names(n: int) -> list[str]:
    """A, B, C, D, F, G, ...: 'E' is the equity tranche's."""
    letters = [chr(c) for c in range(ord("A"), ord("Z") + 1) if chr(c) != "E"]
    return letters[:n]


def _tranche_stack(
    attachments: Sequence[float], pool: float, coupons: Sequence[float] | None
) -> list[dict[str, Any]]:
    why = "attachment points must be increasing, distinct and strictly between 0 and 1"
    if isinstance(attachments, str | bytes) or not isinstance(attachments, Sequence):
        raise AbsEngineError(f"{why}, got {short_repr(attachments)}")
    if not 1 <= len(attachments) <= MAX_ATTACHMENTS:
        raise AbsEngineError(
            f"give 1 to {MAX_ATTACHMENTS} attachment points, got {len(attachments)}"
        )
    points = [_number_in(a, 0.0, 1.0, why, lo_open=True, hi_open=True) for a in attachments]
    if any(b <= a for a, b in zip(points, points[1:], strict=False)):
        raise AbsEngineError(f"{why}, got {list(attachments)}")
    bounds = [*reversed(points), 0.0]  # e.g. 0.10, 0.06, 0.03, 0
    names = [*_rated_names(len(points)), "E"]
    if coupons is None:
        coupons = [0.03 + 0.01 * k for k in range(len(points))]
    if isinstance(coupons, str | bytes) or len(coupons) != len(points):
        raise AbsEngineError(
            f"need {len(points)} coupons (one per rated tranche), got {short_repr(coupons)}"
        )
    coupons = [_number_in(c, 0.0, 1.0, "every coupon") for c in coupons]
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


def _checked_size(n_obligors: object, n_periods: object) -> tuple[int, int]:
    """Obligors N and periods T within their ranges and their product within
    :data:`MAX_OBLIGOR_PERIODS`."""
    n = int_in(n_obligors, 1, MAX_OBLIGORS, "n_obligors")
    n_t = int_in(n_periods, 1, MAX_PERIODS, "n_periods")
    if n * n_t > MAX_OBLIGOR_PERIODS:
        raise AbsEngineError(
            f"n_obligors × n_periods must be at most {MAX_OBLIGOR_PERIODS:,}, got "
            f"{n:,} × {n_t:,} = {n * n_t:,}"
        )
    return n, n_t


def _checked_choices(frequency: object, amortization: object) -> None:
    """A payment frequency of :data:`_FREQ_MONTHS` and an amortization of
    :data:`AMORTIZATIONS`."""
    if frequency not in _FREQ_MONTHS:
        raise AbsEngineError(
            f"frequency must be one of {list(_FREQ_MONTHS)}, got {short_repr(frequency)}"
        )
    if amortization not in AMORTIZATIONS:
        raise AbsEngineError(
            f"amortization must be one of {list(AMORTIZATIONS)}, got {short_repr(amortization)}"
        )


def _checked_pd_classes(pd_classes: Sequence[float] | None) -> list[float] | None:
    """Every PD class a decimal in [0, 1); None stays None (the default classes)."""
    if pd_classes is None:
        return None
    out = [_number_in(x, 0.0, 1.0, "every PD class", hi_open=True) for x in pd_classes]
    if not out:
        raise AbsEngineError("pd_classes is empty")
    return out


def _closing_date(closing: str) -> pd.Timestamp:
    """The closing date, from 1900 to 2200."""
    import pandas as pd

    try:
        start = pd.Timestamp(closing)
        if pd.isna(start) or not 1900 <= start.year <= 2200:
            raise ValueError
    except (ValueError, TypeError, OverflowError):
        raise AbsEngineError(
            f"closing must be a date from 1900 to 2200 (YYYY-MM-DD), got {short_repr(closing)}"
        ) from None
    return start


def _obligor_draws(
    n: int,
    heterogeneous: bool,
    seed: int,
    pool_balance: float,
    rate: float,
    annual_pd: float,
    pd_classes: list[float] | None,
    sectors: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Balance (yuan, rounded to the fen), rate (decimal), annual PD (decimal), float64[N]
    each, and sector index int64[N] of each obligor (see :func:`synthetic_deal`)."""
    rng = np.random.default_rng(seed)
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
    return np.round(balances, 2), rates, pds, sector


def _deal_document(
    n: int,
    heterogeneous: bool,
    start: pd.Timestamp,
    frequency: str,
    n_periods: int,
    recovery_rate: float,
    recovery_lag: int,
    tranches: list[dict[str, Any]],
) -> dict[str, Any]:
    """The deal document without its pool tape: dates from ``start`` (closing), a trustee
    fee, rated tranches paid interest one by one, principal sequentially, residual to E."""
    import pandas as pd

    first = start + pd.DateOffset(months=_FREQ_MONTHS[frequency])
    final = start + pd.DateOffset(months=_FREQ_MONTHS[frequency] * n_periods)
    names = [t["name"] for t in tranches]
    rated = names[:-1]
    return {
        "schema_version": 1,
        "name": f"synthetic {'heterogeneous' if heterogeneous else 'homogeneous'} pool of {n:,}",
        "description": "Synthetic pool written by abs_engine.synthetic",
        "dates": {
            "closing": start.date().isoformat(),
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
    n, n_periods = _checked_size(n_obligors, n_periods)
    _checked_choices(frequency, amortization)
    seed = int_in(seed, 0, MAX_SEED, "seed")
    pool_balance = _number_in(pool_balance, 0.0, 1e15, "pool_balance", lo_open=True)
    rate = _number_in(rate, 0.0, 1.0, "rate")
    annual_pd = _number_in(annual_pd, 0.0, 1.0, "annual_pd", hi_open=True)
    classes = _checked_pd_classes(pd_classes)
    sectors = int_in(sectors, 1, 10_000, "sectors")
    recovery_rate = _number_in(recovery_rate, 0.0, 1.0, "recovery_rate")
    recovery_lag = int_in(recovery_lag, 0, 120, "recovery_lag")
    start = _closing_date(closing)
    balances, rates, pds, sector = _obligor_draws(
        n, heterogeneous, seed, pool_balance, rate, annual_pd, classes, sectors
    )
    import pandas as pd

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
    tranches = _tranche_stack(attachments, float(balances.sum()), coupons)
    deal = _deal_document(
        n, heterogeneous, start, frequency, n_periods, recovery_rate, recovery_lag, tranches
    )
    return deal, tape


def write_synthetic(
    out_dir: str | Path,
    n_obligors: int,
    *,
    name: str | None = None,
    correlation: float = 0.15,
    verify: Callable[[Path], object] | None = None,
    **kw: Any,
) -> dict[str, Path]:
    """Write ``<name>.json`` (deal), ``<name>_tape.parquet`` (pool) and ``<name>_mc.json`` (a
    Monte Carlo scenario with fixed asset ``correlation``, in [0, 1)) into ``out_dir``, all
    three or none: staged, checked with ``verify(deal_path)`` when given (e.g. that the deal
    loads and compiles), then moved into place together
    (:func:`abs_engine.files.staged_outputs`). ``name`` must be a plain file-name stem
    (:func:`check_name`). Everything is checked before anything is written. Returns the three
    paths."""
    name = check_name(f"synthetic_{n_obligors}" if name is None else name)
    correlation = _number_in(correlation, 0.0, 1.0, "correlation", hi_open=True)
    deal, tape = synthetic_deal(n_obligors, **kw)
    out = Path(out_dir)
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
    # The three files as a set (staged, checked, then moved into place together, the tape
    # first): a deal never sits beside another run's tape. No manifest: the folder holds deals
    # and scenarios, where another JSON file would be in the way.
    with staged_outputs(out, manifest=None) as stage:
        stage.write(tape_path.name, write_parquet(tape))
        stage.write(deal_path.name, lambda p: p.write_text(json.dumps(deal, indent=2)))
        stage.write(sc_path.name, lambda p: p.write_text(json.dumps(scenario, indent=2)))
        if verify is not None:
            _verify_staged(verify, stage.dir / deal_path.name, stage.dir, out)
    return {"deal": deal_path, "tape": tape_path, "scenario": sc_path}


def _verify_staged(verify: Callable[[Path], object], deal: Path, staged: Path, out: Path) -> None:
    """``verify(deal)`` on the staged files; problems it finds name the files where they would
    have been written, not the staging folder."""
    try:
        verify(deal)
    except DealError as exc:

        def moved(file: str) -> str:
            return file.replace(str(staged), str(out), 1)

        raise DealError(
            [dataclasses.replace(pr, file=moved(pr.file)) for pr in exc.problems]
        ) from None
