"""Agency-style deterministic analysis: breakeven default rate, large-obligor test, coverage
ratio table. Every figure comes from running deterministic scenarios through the waterfall.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..compile.deal import CompiledDeal
from ..compile.scenario import deterministic_flows
from ..deterministic import WaterfallResult, run_waterfall
from ..errors import (
    ArgumentTypeError,
    InputError,
    check_bool,
    check_instance,
    check_real,
    int_in,
    names_its_arguments,
    short_repr,
)
from ..kernels import layout as L
from ..schema.common import MAX_RECOVERY_LAG
from ..schema.load import validate_model
from ..schema.scenario import DeterministicScenario

__all__ = [
    "BreakevenResult",
    "base_case_default_rate",
    "breakeven_default_rate",
    "coverage_table",
    "large_obligor_test",
]

#: the most obligors the large-obligor test defaults (capped at the pool's size)
MAX_LARGEST = 1_000


def _share(value: object, what: str) -> float:
    """A finite number in [0, 1] as float (:func:`~abs_engine.errors.check_real`), or an
    :class:`InputError` (:class:`ArgumentTypeError` for a wrong type) naming ``what``."""
    try:
        return check_real(value, "", what, 0.0, 1.0)
    except InputError as exc:  # a wrong type, NaN, out of range, an int too large for a float
        kind = ArgumentTypeError if isinstance(exc, TypeError) else InputError
        raise kind(f"{what} must be a number in [0, 1], got {short_repr(value)}") from None


def _check_cd(cd: object, func: str) -> None:
    check_instance(cd, CompiledDeal, func, "cd", " (from compile_deal)")


def _tranche_index(cd: CompiledDeal, tranche: object) -> int:
    if not isinstance(tranche, str) or tranche not in cd.tranche_names:
        kind = InputError if isinstance(tranche, str) else ArgumentTypeError
        raise kind(f"unknown tranche {short_repr(tranche)}; tranches are {list(cd.tranche_names)}")
    return cd.tranche_names.index(tranche)


def _run(
    cd: CompiledDeal, scenarios: Sequence[DeterministicScenario], func: str = "deterministic_flows"
) -> WaterfallResult:
    return run_waterfall(cd, deterministic_flows(cd, scenarios, func=func))


def _paid_in_full(res: WaterfallResult, j: int) -> np.ndarray:
    """Per path: the tranche never had an interest shortfall and lost no principal."""
    st = res.sum_tr[:, j]
    # nothing above one fen missing
    return (st[:, L.ST_FIRST_SHORTFALL_PERIOD] < 0) & (st[:, L.ST_LOSS] <= L.FEN)


def base_case_default_rate(cd: CompiledDeal) -> float:
    """Expected cumulative default rate by legal final from the obligors' PD curves, balance
    weighted (decimal)."""
    _check_cd(cd, "base_case_default_rate")
    return float((cd.pool.balance * cd.pool.cum_pd[:, -1]).sum() / cd.original_pool)


@dataclass(frozen=True)
class BreakevenResult:
    tranche: str
    breakeven_default_rate: float  # decimal of the original pool (1.0 when it never fails)
    base_case_default_rate: float
    multiple: float  # breakeven / base case (inf over a zero base case; NaN for 0 / 0)
    support: bool  # whether the support providers stood behind the deal
    never_fails: bool = False  # paid in full even when the whole pool defaults


def _scenario(
    cd: CompiledDeal,
    cumulative: float,
    timing: Sequence[float],
    recovery_rate: float,
    recovery_lag: int,
    cpr: float,
    support: bool,
) -> DeterministicScenario:
    doc: dict = {
        "name": f"cd_{cumulative:.6f}",
        "defaults": {"kind": "cumulative", "cumulative": cumulative, "timing": list(timing)},
        "recovery": {"rate": recovery_rate, "lag_periods": recovery_lag},
        "prepayment": {"cpr": cpr},
    }
    if not support:
        doc["support_defaults"] = [{"support": s, "period": 1} for s in cd.support_names]
    return validate_model(DeterministicScenario, doc, "<breakeven_default_rate arguments>")


def default_timing(cd: CompiledDeal, front_loaded: bool = True) -> list[float]:
    """Default timing shares per period: front-loaded (linearly declining over the first two
    thirds of the deal's periods), or even over all periods."""
    n = getattr(cd, "n_periods", None)  # anything with a period count (tests pass a stand-in)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        _check_cd(cd, "default_timing")
    front_loaded = check_bool(front_loaded, "default_timing", "front_loaded")
    n = cd.n_periods
    if not front_loaded:
        return [1.0 / n] * n
    m = max(1, (2 * n) // 3)
    w = np.arange(m, 0, -1, dtype=float)
    head = [float(x) for x in w / w.sum()]
    head[0] += 1.0 - sum(head)  # rounding leftover on the largest share: never negative
    return head + [0.0] * (n - m)


@names_its_arguments("breakeven_default_rate")
def breakeven_default_rate(
    cd: CompiledDeal,
    tranche: str,
    *,
    timing: Sequence[float] | None = None,
    recovery_rate: float = 0.0,
    recovery_lag: int = 0,
    cpr: float = 0.0,
    support: bool = True,
    tol: float = 1e-6,
) -> BreakevenResult:
    """Largest cumulative default rate (share of the original pool, spread by ``timing``) at
    which ``tranche`` still receives all its interest and principal, by bisection (the
    tranche's outcome worsens with more defaults). ``support=False`` has every support
    provider default in period 1."""
    _check_cd(cd, "breakeven_default_rate")
    j = _tranche_index(cd, tranche)
    # bisection to a width of tol: 0, NaN or a negative width would never end
    tol = check_real(tol, "breakeven_default_rate", "tol", 1e-12, 0.5)
    support = check_bool(support, "breakeven_default_rate", "support")
    recovery_rate = _share(recovery_rate, "recovery_rate")
    recovery_lag = int_in(recovery_lag, 0, MAX_RECOVERY_LAG, "recovery_lag")
    cpr = _share(cpr, "cpr")
    if timing is not None and (isinstance(timing, str | bytes) or not hasattr(timing, "__iter__")):
        raise ArgumentTypeError(f"timing must be a sequence of shares, got {short_repr(timing)}")
    timing = list(timing) if timing is not None else default_timing(cd)
    shares = np.asarray([_share(x, "every timing share") for x in timing])
    if len(shares) == 0 or abs(shares.sum() - 1.0) > 1e-6:
        raise InputError(f"timing shares must sum to 1, got {short_repr(timing)}")
    if len(shares) > cd.n_periods:  # (was the built scenario's DealError, at <memory>)
        raise InputError(
            f"timing has {len(shares)} shares but the deal has {cd.n_periods} periods, got "
            f"{short_repr(timing)}"
        )

    def ok(rate: float) -> bool:
        sc = _scenario(cd, rate, timing, recovery_rate, recovery_lag, cpr, support)
        return bool(_paid_in_full(_run(cd, [sc]), j)[0])

    if not ok(0.0):
        lo = 0.0
    elif ok(1.0):
        lo = 1.0
    else:
        lo, hi = 0.0, 1.0
        while hi - lo > tol:
            mid = 0.5 * (lo + hi)
            if ok(mid):
                lo = mid
            else:
                hi = mid
    base = base_case_default_rate(cd)
    # no base-case defaults: a breakeven above 0 is infinitely many times it; at 0 as well,
    # the multiple is undefined (0/0), not infinite
    multiple = lo / base if base > 0 else (float("inf") if lo > 0 else float("nan"))
    return BreakevenResult(tranche, lo, base, multiple, support, never_fails=lo >= 1.0)


@names_its_arguments("large_obligor_test")
def large_obligor_test(
    cd: CompiledDeal,
    tranche: str | None = None,
    *,
    max_obligors: int = 3,
    period: int = 1,
    recovery_rate: float = 0.0,
    recovery_lag: int = 0,
) -> pd.DataFrame:
    """Default of the k largest obligors (k = 1..max_obligors, at most the pool's size) in
    ``period`` (1 .. the deal's periods): does the tranche
    (default: the most senior) still receive all interest and principal, with the support
    standing and with every support provider defaulting in period 1?"""
    _check_cd(cd, "large_obligor_test")
    j = _tranche_index(cd, cd.tranche_names[0] if tranche is None else tranche)
    max_obligors = int_in(max_obligors, 1, MAX_LARGEST, "max_obligors")
    period = int_in(period, 1, cd.n_periods, "period")
    recovery_rate = _share(recovery_rate, "recovery_rate")
    recovery_lag = int_in(recovery_lag, 0, MAX_RECOVERY_LAG, "recovery_lag")
    rows = []
    for k in range(1, min(max_obligors, cd.n_obligors) + 1):
        scs = []
        for support in (True, False):
            doc: dict = {
                "name": f"largest_{k}_{'with' if support else 'without'}_support",
                "obligor_defaults": [{"largest": k, "period": period}],
                "recovery": {"rate": recovery_rate, "lag_periods": recovery_lag},
            }
            if not support:
                doc["support_defaults"] = [{"support": s, "period": 1} for s in cd.support_names]
            scs.append(validate_model(DeterministicScenario, doc, "<large_obligor_test arguments>"))
        res = _run(cd, scs)
        full = _paid_in_full(res, j)
        order = np.argsort(-cd.pool.balance, kind="stable")[:k]
        rows.append(
            {
                "defaulted_obligors": k,
                "defaulted_balance": float(cd.pool.balance[order].sum()),
                "defaulted_share": float(cd.pool.balance[order].sum() / cd.original_pool),
                "paid_in_full_with_support": bool(full[0]),
                "loss_with_support": float(res.sum_tr[0, j, L.ST_LOSS]),
                "support_paid": float(res.sum_pool[0, L.SP_SUPPORT_PAID]),
                "paid_in_full_without_support": bool(full[1]),
                "loss_without_support": float(res.sum_tr[1, j, L.ST_LOSS]),
            }
        )
    return pd.DataFrame(rows)


def check_coverage_scenarios(
    scenarios: Sequence[DeterministicScenario], func: str = "coverage_table"
) -> None:
    """The coverage table's columns are its scenarios' names, after ``payment_date``: each
    name once, and neither that nor ``period`` (the index)."""
    seen: set[Any] = set()
    for sc in scenarios:
        name = getattr(sc, "name", None)
        if name in seen or name in ("period", "payment_date"):
            why = "two scenarios are named" if name in seen else "a scenario cannot be named"
            raise InputError(
                f"{func}: {why} {name!r}; the table's columns are the scenarios' names: rename one"
            )
        seen.add(name)


@names_its_arguments("coverage_table")
def coverage_table(
    cd: CompiledDeal, scenarios: Sequence[DeterministicScenario], tranche: str | None = None
) -> pd.DataFrame:
    """Coverage ratio of ``tranche`` (default: the deal's headline one) per period under each
    scenario — rows periods, columns scenarios — as rating reports show it
    (现金流覆盖倍数). NaN once the tranche is repaid."""
    _check_cd(cd, "coverage_table")
    if tranche is not None:
        _tranche_index(cd, tranche)
    res = _run(cd, scenarios, "coverage_table")  # checks the scenarios' types first
    check_coverage_scenarios(scenarios)
    if tranche is None:
        cr = res.led_per[:, :, L.LP_COVERAGE_RATIO]
    else:
        cr = res.led_tr[:, :, _tranche_index(cd, tranche), L.LT_COVERAGE_RATIO]
    table = pd.DataFrame(
        cr.T,
        columns=[s.name for s in scenarios],
        index=pd.Index(range(1, cd.n_periods + 1), name="period"),
    )
    table.insert(0, "payment_date", [d.isoformat() for d in cd.payment_dates])
    return table
