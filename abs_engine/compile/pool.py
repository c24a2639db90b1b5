"""Obligor schedules on the deal's period grid, cumulative PD curves and IP values."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import ProblemCollector
from ..schema.pool import (
    Bullet,
    EqualPrincipal,
    FlatPd,
    LevelPay,
    LicenseFeeSchedule,
    Obligor,
    PdTermStructure,
    Pool,
    RatingClassPd,
)
from .schedule import PeriodSchedule
from .valuation import ip_base_value

__all__ = ["CompiledPool", "compile_pool", "cumulative_pd"]


@dataclass(frozen=True)
class CompiledPool:
    """Scheduled (no default, no prepayment) cash flows of every obligor, in yuan.

    Attributes
    ----------
    ids : tuple[str, ...]  (N)
    balance : float64[N]        balance at closing
    rate : float64[N]           annual obligor rate (decimal)
    sched_principal : float64[N, T]
    sched_interest : float64[N, T]
    sched_balance_start : float64[N, T]   scheduled balance at the start of each period
    cum_pd : float64[N, T]      cumulative PD at each payment date
    recovery_rate : float64[N]
    recovery_lag : int64[N]     periods
    ip_value : float64[N]       base IP value (NaN: no IP pledged)
    sector : int64[N]           index into ``sectors``
    sectors : tuple[str, ...]
    """

    ids: tuple[str, ...]
    names: tuple[str, ...]
    balance: np.ndarray
    rate: np.ndarray
    sched_principal: np.ndarray
    sched_interest: np.ndarray
    sched_balance_start: np.ndarray
    cum_pd: np.ndarray
    recovery_rate: np.ndarray
    recovery_lag: np.ndarray
    ip_value: np.ndarray
    sector: np.ndarray
    sectors: tuple[str, ...]


def cumulative_pd(horizons: list[float], cumulative: list[float], years: np.ndarray) -> np.ndarray:
    """Cumulative PD at ``years`` from knots (horizon, cumulative PD), flat hazard between knots
    and after the last one (log-survival linear in time)."""
    h = np.concatenate([[0.0], np.asarray(horizons, dtype=float)])
    log_s = np.concatenate([[0.0], np.log1p(-np.asarray(cumulative, dtype=float))])
    out = np.empty_like(years)
    for k, y in enumerate(years):
        if y <= h[-1]:
            ls = np.interp(y, h, log_s)
        else:
            slope = (log_s[-1] - log_s[-2]) / (h[-1] - h[-2])
            ls = log_s[-1] + slope * (y - h[-1])
        out[k] = -math.expm1(ls)
    return out


def _amortize(
    o: Obligor, sched: PeriodSchedule, n_t: int, report: Callable[..., None], accrual: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    prin = np.zeros(n_t)
    intr = np.zeros(n_t)
    am = o.amortization
    r = o.rate / sched.periods_per_year
    bal = o.balance
    if isinstance(am, LicenseFeeSchedule):
        total = sum(p.principal for p in am.payments)
        if abs(total - o.balance) > 0.01:
            report(
                "amortization.payments",
                f"license-fee principal sums to {total:,.2f} but the balance is "
                f"{o.balance:,.2f}; they must agree to the fen",
                total,
            )
        for k, p in enumerate(am.payments):
            t = sched.period_of(p.date)
            if t < 0 or t >= n_t:
                report(
                    f"amortization.payments[{k}].date",
                    "payment date outside the deal's periods (after closing, up to legal_final)",
                    p.date.isoformat(),
                )
                continue
            prin[t] += p.principal
            intr[t] += p.interest
        return prin, intr
    assert isinstance(am, Bullet | LevelPay | EqualPrincipal)
    f0 = am.first_period - 1
    last = f0 + am.n_periods - 1
    if last >= n_t:
        report(
            "amortization",
            f"schedule runs to period {last + 1} but the deal has {n_t} periods up to legal_final",
            {"first_period": am.first_period, "n_periods": am.n_periods},
        )
        return prin, intr
    n = am.n_periods
    if isinstance(am, LevelPay):
        # annuity r·B / (1 - (1 + r)^-n), written to stay exact for tiny r
        annuity = -math.expm1(-n * math.log1p(r))
        pay = bal / n if annuity <= n * 1e-15 else bal * r / annuity
    for t in range(last + 1):
        intr[t] = bal * (o.rate * accrual[t] if o.interest_basis == "accrual" else r)
        if t < f0:
            continue
        if isinstance(am, Bullet):
            amount = bal if t == last else 0.0
        elif isinstance(am, EqualPrincipal):
            amount = o.balance / n if t < last else bal
        else:
            amount = pay - bal * r if t < last else bal
        prin[t] = amount
        bal -= amount
    return prin, intr


def compile_pool(
    pool: Pool,
    sched: PeriodSchedule,
    pc: ProblemCollector,
    locate: Callable[[int, str], tuple[str, str]] | None = None,
) -> CompiledPool:
    """Build the pool arrays; problems (schedule beyond legal final, unknown PD class, duplicate
    ids, empty pool) go to ``pc``. ``locate(k, field)`` gives the (file, path) of obligor k's
    field — the deal file or a row of the pool tape."""
    if locate is None:
        locate = lambda k, field: (pc.file, f"pool.obligors[{k}]" + (f".{field}" if field else ""))  # noqa: E731
    n_t = len(sched)
    obligors = pool.obligors
    if not obligors:
        pc.add("pool.obligors", "the pool is empty: give obligors or a tape with rows", [])
    seen: dict[str, int] = {}
    for i, o in enumerate(obligors):
        if o.id in seen:
            first_file, first_path = locate(seen[o.id], "")
            also = first_path if first_file == locate(i, "")[0] else f"{first_file}: {first_path}"
            pc.add_at(*locate(i, "id"), f"duplicate obligor id (also {also})", o.id)
        else:
            seen[o.id] = i
    classes = {c.name: c for c in pool.pd_classes}
    years = sched.years_from_closing()
    accrual = sched.accruals()
    n = len(obligors)
    prin = np.zeros((n, n_t))
    intr = np.zeros((n, n_t))
    cum_pd = np.zeros((n, n_t))
    sectors: list[str] = []
    sector_idx = np.zeros(n, dtype=np.int64)
    for i, o in enumerate(obligors):

        def report(field: str, msg: str, value: object, i: int = i) -> None:
            pc.add_at(*locate(i, field), msg, value)

        prin[i], intr[i] = _amortize(o, sched, n_t, report, accrual)
        pd = o.pd
        if isinstance(pd, FlatPd):
            cum_pd[i] = 1.0 - (1.0 - pd.annual) ** years
        elif isinstance(pd, PdTermStructure):
            cum_pd[i] = cumulative_pd(pd.horizons_years, pd.cumulative, years)
        elif isinstance(pd, RatingClassPd):
            rc = classes.get(pd.rating_class)
            if rc is None:
                report(
                    "pd.rating_class",
                    f"unknown rating class; known: {sorted(classes)}",
                    pd.rating_class,
                )
            else:
                cum_pd[i] = cumulative_pd(rc.horizons_years, rc.cumulative, years)
        if o.sector not in sectors:
            sectors.append(o.sector)
        sector_idx[i] = sectors.index(o.sector)
    balance = np.array([o.balance for o in obligors], dtype=np.float64)
    bal_start = balance[:, None] - np.concatenate(
        [np.zeros((n, 1)), np.cumsum(prin, axis=1)[:, :-1]], axis=1
    )
    default_rec = pool.recovery
    rec_rate = np.array([(o.recovery or default_rec).rate for o in obligors], dtype=np.float64)
    rec_lag = np.array([(o.recovery or default_rec).lag_periods for o in obligors], dtype=np.int64)
    ip_value = np.array([ip_base_value(o.collateral) for o in obligors], dtype=np.float64)
    return CompiledPool(
        ids=tuple(o.id for o in obligors),
        names=tuple(o.name for o in obligors),
        balance=balance,
        rate=np.array([o.rate for o in obligors], dtype=np.float64),
        sched_principal=prin,
        sched_interest=intr,
        sched_balance_start=np.maximum(bal_start, 0.0),
        cum_pd=cum_pd,
        recovery_rate=rec_rate,
        recovery_lag=rec_lag,
        ip_value=ip_value,
        sector=sector_idx,
        sectors=tuple(sectors),
    )
