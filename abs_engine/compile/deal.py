"""The frozen ``CompiledDeal``: everything a kernel needs, as contiguous arrays and scalars."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

import numpy as np

from ..errors import ProblemCollector
from ..schema.dates import NamedCalendar
from ..schema.deal import Deal
from ..schema.load import deal_source, obligor_location
from .pool import CompiledPool, compile_pool
from .schedule import PeriodSchedule
from .waterfall import StructureArrays, compile_structure

__all__ = ["CompiledDeal", "compile_deal"]


@dataclass(frozen=True)
class CompiledDeal:
    """A validated deal compiled to arrays (all arrays read-only).

    Attributes
    ----------
    deal : Deal
        The validated schema object it came from (for names and reporting only).
    source : str
        The deal file.
    payment_dates : tuple[date, ...]  (T)
    accrual_start, accrual_end : tuple[date, ...]  (T)
    deal_accrual : float64[T]     accrual fractions under the deal day count (years)
    years : float64[T]            ACT/365F years from closing to each payment date
    periods_per_year : int
    original_pool : float         pool balance at closing (yuan)
    pool : CompiledPool
    structure : StructureArrays
    tranche_names, fee_names, account_names, support_names, trigger_names : tuple[str, ...]
    """

    deal: Deal
    source: str
    payment_dates: tuple[dt.date, ...]
    accrual_start: tuple[dt.date, ...]
    accrual_end: tuple[dt.date, ...]
    deal_accrual: np.ndarray
    years: np.ndarray
    periods_per_year: int
    original_pool: float
    pool: CompiledPool
    structure: StructureArrays
    tranche_names: tuple[str, ...]
    fee_names: tuple[str, ...]
    account_names: tuple[str, ...]
    support_names: tuple[str, ...]
    trigger_names: tuple[str, ...]

    @property
    def n_periods(self) -> int:
        return len(self.payment_dates)

    @property
    def n_obligors(self) -> int:
        return len(self.pool.ids)

    def tranche_index(self, name: str) -> int:
        return self.tranche_names.index(name)


def _freeze(obj: object) -> None:
    for f in fields(obj):  # type: ignore[arg-type]
        v = getattr(obj, f.name)
        if isinstance(v, np.ndarray):
            v.setflags(write=False)


def compile_deal(deal: Deal) -> CompiledDeal:
    """Compile a validated deal. Raises :class:`~abs_engine.errors.DealError` listing every
    cross-reference problem (unknown names, schedules past legal final, order of payment...)."""
    source = deal_source(deal)
    pc = ProblemCollector(source)
    cal = deal.dates.calendar
    if isinstance(cal, NamedCalendar):
        from .schedule import _REGISTRY

        if cal.name not in _REGISTRY:
            pc.add(
                "dates.calendar.name",
                f"calendar not registered; known: {sorted(_REGISTRY)}",
                cal.name,
            )
            pc.raise_if_any()
    sched = PeriodSchedule(deal.dates)
    roll = deal.dates.business_day
    if sched.payment_dates[0] <= deal.dates.closing:
        pc.add(
            "dates.first_payment",
            f"after the {roll} business-day roll the first payment falls on "
            f"{sched.payment_dates[0]}, not after closing {deal.dates.closing}",
            deal.dates.first_payment.isoformat(),
        )
    for k in range(1, len(sched)):
        if sched.payment_dates[k] <= sched.payment_dates[k - 1]:
            pc.add(
                "dates.business_day",
                f"the {roll} roll makes payment dates {sched.unadjusted[k - 1]} and "
                f"{sched.unadjusted[k]} fall on or out of order ({sched.payment_dates[k]})",
                roll,
            )
            break
    pool = compile_pool(deal.pool, sched, pc, lambda k, field: obligor_location(deal, k, field))
    structure = compile_structure(deal, sched, pc)
    pc.raise_if_any()
    for part in (pool, structure):
        _freeze(part)
    cd = CompiledDeal(
        deal=deal,
        source=source,
        payment_dates=tuple(sched.payment_dates),
        accrual_start=tuple(sched.accrual_start),
        accrual_end=tuple(sched.accrual_end),
        deal_accrual=sched.accruals(),
        years=sched.years_from_closing(),
        periods_per_year=sched.periods_per_year,
        original_pool=float(pool.balance.sum()),
        pool=pool,
        structure=structure,
        tranche_names=tuple(t.name for t in deal.tranches),
        fee_names=tuple(f.name for f in deal.fees),
        account_names=tuple(a.name for a in deal.accounts),
        support_names=tuple(s.name for s in deal.support),
        trigger_names=tuple(g.name for g in deal.triggers),
    )
    _freeze(cd)
    return cd
