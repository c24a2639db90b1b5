"""The frozen ``CompiledDeal``: everything a kernel needs, as contiguous arrays and scalars."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import ArgumentTypeError, InputError, Problem, ProblemCollector, short_repr
from ..kernels import layout as L
from ..kernels.bundles import DealArrays, frozen
from ..schema.deal import Deal
from ..schema.load import deal_source, mark_validated, obligor_location, revalidated_deal
from .pool import CompiledPool, compile_pool
from .schedule import PeriodSchedule
from .waterfall import StructureArrays, compile_structure

__all__ = ["CompiledDeal", "compile_deal", "collateral_problems"]

#: notes above this multiple of the pool balance are refused: most of them could never be repaid
MAX_NOTES_TO_POOL = 2.0
#: a pool above this multiple of the notes (over-collateralisation beyond 25%) is reported
OC_WARNING = 1.25


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
    kernel : DealArrays
        The arrays the waterfall kernels take, as one named bundle (built on first use).
    warnings : tuple[Problem, ...]
        Things the deal allows but that are probably wrong (notes that do not match the pool, a
        waterfall without ``pay_residual``...): ``abs-engine validate`` and ``run`` print them
        to stderr as ``warning: ...``.
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
    warnings: tuple[Problem, ...] = ()

    @cached_property
    def kernel(self) -> DealArrays:
        """The waterfall kernels' argument bundle (built once; read-only arrays)."""
        s = self.structure
        return frozen(
            DealArrays(
                original_pool=self.original_pool,
                deal_accrual=self.deal_accrual,
                years=self.years,
                tranche_f=s.tranche_f,
                tranche_i=s.tranche_i,
                tranche_accrual=s.tranche_accrual,
                tranche_target=s.tranche_target,
                fee_f=s.fee_f,
                fee_i=s.fee_i,
                account_f=s.account_f,
                account_i=s.account_i,
                support_f=s.support_f,
                support_i=s.support_i,
                trigger_f=s.trigger_f,
                trigger_i=s.trigger_i,
                ops=s.ops,
                n_steps=s.n_steps,
                groups=s.groups,
                group_len=s.group_len,
                cr_tranche=s.cr_tranche,
                cr_include_fees=s.cr_include_fees,
                call_factor=s.call_factor,
                call_price=s.call_price,
            )
        )

    @property
    def n_periods(self) -> int:
        return len(self.payment_dates)

    @property
    def n_obligors(self) -> int:
        return len(self.pool.ids)

    def tranche_index(self, name: str) -> int:
        if not isinstance(name, str) or name not in self.tranche_names:
            raise InputError(
                f"tranche_index: unknown tranche {short_repr(name)}; tranches are "
                f"{list(self.tranche_names)}"
            )
        return self.tranche_names.index(name)


def _freeze(obj: object) -> None:
    for f in fields(obj):  # type: ignore[arg-type]
        v = getattr(obj, f.name)
        if isinstance(v, np.ndarray):
            v.setflags(write=False)


def shared_provider_warnings(deal: Deal, pc: ProblemCollector) -> None:
    """A warning for each provider named behind more than one support: each support's
    provider is its own latent variable in the Monte Carlo, so the two default apart (a
    validator's parent behind an undertaking and a guarantee, PD 10%, defaulted on 17.7% of
    paths), with the PD and correlation each support gives it."""
    seen: dict[str, int] = {}
    for k, s in enumerate(deal.support):
        name = s.provider.name
        if name in seen:
            first = deal.support[seen[name]].name
            pc.warn(
                f"support[{k}].provider.name",
                f"provider also behind support {first!r}: the Monte Carlo draws each "
                "support's provider apart, so they default independently (each with its own "
                "annual_pd and correlation)",
                name,
            )
        else:
            seen[name] = k


def collateral_problems(deal: Deal, pool_balance: float, pc: ProblemCollector) -> None:
    """Notes against the pool: an error when the tranches exceed :data:`MAX_NOTES_TO_POOL`
    times the pool, a warning when they exceed it at all or when the pool exceeds the notes by
    more than :data:`OC_WARNING` - 1 (over-collateralisation); every message states both
    amounts and the over- or under-collateralisation as a percentage of the notes."""
    notes = float(sum(t.balance for t in deal.tranches))
    if pool_balance <= 0:
        return  # an empty pool is reported on its own
    amounts = f"the tranches total {notes:,.2f} yuan against a pool of {pool_balance:,.2f} yuan"
    if notes <= L.FEN:
        pc.warn("tranches", f"{amounts}: there are no notes to pay", notes)
        return
    oc = pool_balance / notes - 1.0  # over-collateralisation, share of the notes
    if notes > pool_balance + L.FEN:
        text = (
            f"{amounts}: under-collateralised by {-oc:.2%} of the notes (the notes exceed the "
            f"pool by {notes - pool_balance:,.2f} yuan)"
        )
        if notes > MAX_NOTES_TO_POOL * pool_balance:
            pc.add("tranches", f"{text}; at most {MAX_NOTES_TO_POOL:g}x the pool", notes)
        else:
            pc.warn("tranches", text, notes)
    elif pool_balance > OC_WARNING * notes:
        pc.warn(
            "tranches",
            f"{amounts}: over-collateralised by {oc:.2%} of the notes (the pool exceeds the notes "
            f"by {pool_balance - notes:,.2f} yuan)",
            notes,
        )


def provider_sector_problems(deal: Deal, sectors: Sequence[str], pc: ProblemCollector) -> None:
    """A support provider's ``sector`` names the pool sector whose factor it loads on: it must
    be one of the pool's sectors (checked here, not only when a sector-factor model runs)."""
    for s, sup in enumerate(deal.support):
        sector = sup.provider.sector
        if sector is not None and sector not in sectors:
            pc.add(
                f"support[{s}].provider.sector",
                f"unknown sector; the pool's sectors are {list(sectors)[:20]}",
                sector,
            )


def _own_copy(deal: Deal) -> Deal:
    """The compiled deal's own copy of ``deal`` (its tape's read-only rows shared): the
    caller's object shared with the compiled deal, an edit to it after compiling (its
    tranche list reversed) relabelled the results' tranches and balances while the kernels
    ran the deal as compiled."""
    import copy

    table = deal.pool.table
    own = copy.deepcopy(deal, {id(table): table} if table is not None else {})
    mark_validated(own)
    return own


def compile_deal(deal: Deal) -> CompiledDeal:
    """Compile a validated deal. Raises :class:`~abs_engine.errors.DealError` listing every
    cross-reference problem (unknown names, schedules past legal final, order of payment...).

    A deal changed in Python since it was validated (``model_copy(update=...)`` skips
    pydantic's checks) is validated again first; things that are allowed but probably wrong
    are collected in :attr:`CompiledDeal.warnings`."""
    if not isinstance(deal, Deal):
        hint = (
            " (compile_deal takes a Deal: use load_deal(path) first)"
            if isinstance(deal, str | Path)
            else ""
        )
        raise ArgumentTypeError(
            f"compile_deal: deal must be a Deal (from load_deal or parse_deal), got "
            f"{short_repr(deal)} ({type(deal).__name__}){hint}"
        )
    deal = _own_copy(revalidated_deal(deal))
    source = deal_source(deal)
    pc = ProblemCollector(source)
    sched = PeriodSchedule(deal.dates, source)
    if sched.calendar_note:
        name = getattr(deal.dates.calendar, "name", None)
        pc.warn("dates.calendar.name", sched.calendar_note, name)
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
    collateral_problems(deal, float(pool.balance.sum()), pc)
    shared_provider_warnings(deal, pc)
    provider_sector_problems(deal, pool.sectors, pc)
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
        warnings=tuple(pc.warnings),
    )
    _freeze(cd)
    return cd
