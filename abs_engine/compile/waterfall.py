"""Structure → arrays: tranche, fee, account, support and trigger parameter tables, and each
waterfall as an integer opcode table. Every cross-reference is checked here."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..errors import ProblemCollector
from ..kernels import layout as L
from ..schema.deal import Deal
from ..schema.support import LossCompensation, ShortfallSupport
from ..schema.tranche import (
    Coupon,
    FixedCoupon,
    FixedTarget,
    FloatingCoupon,
    PercentTarget,
    Tranche,
    pro_rata_runs,
    tranche_classes,
)
from ..schema.waterfall import (
    CoverageRatioTrigger,
    CumulativeDefaultTrigger,
    DrawReserve,
    DrawSupport,
    FundReserve,
    MissedInterestTrigger,
    PayFee,
    PayInterest,
    PayPrincipal,
    PayResidual,
    Step,
    SupportDefaultTrigger,
    Trigger,
    WriteOff,
)
from .schedule import PeriodSchedule

__all__ = ["StructureArrays", "compile_structure", "STATUS_NAMES"]

STATUS_NAMES = ("normal", "accelerated", "post_default")
_PRIN_KIND = {
    "sequential": L.PRIN_SEQUENTIAL,
    "pro_rata": L.PRIN_PRO_RATA,
    "target_balance": L.PRIN_TARGET,
    "residual": L.PRIN_RESIDUAL,
}
_COVERS = {
    "interest": L.COVERS_INTEREST,
    "principal_at_maturity": L.COVERS_PRINCIPAL,
    "both": L.COVERS_BOTH,
}
_EFFECT = {
    "accelerate": L.EFFECT_ACCELERATE,
    "event_of_default": L.EFFECT_EVENT_OF_DEFAULT,
    "trap_excess_spread": L.EFFECT_TRAP,
}
#: effects that switch the deal to another status, and the waterfall that status needs
_EFFECT_NEEDS = {"accelerate": "accelerated", "event_of_default": "post_default"}


@dataclass(frozen=True)
class StructureArrays:
    """Parameter tables for the kernel; see :mod:`abs_engine.kernels.layout` for columns."""

    tranche_f: np.ndarray  # float64[J, N_TF]
    tranche_i: np.ndarray  # int64[J, N_TI]
    tranche_accrual: np.ndarray  # float64[J, T]
    tranche_target: np.ndarray  # float64[J, T]
    fee_f: np.ndarray
    fee_i: np.ndarray
    account_f: np.ndarray
    account_i: np.ndarray
    support_f: np.ndarray
    support_i: np.ndarray
    trigger_f: np.ndarray
    trigger_i: np.ndarray
    ops: np.ndarray  # int64[N_STATUS, K, N_OPC]
    n_steps: np.ndarray  # int64[N_STATUS]
    groups: np.ndarray  # int64[R, J]
    group_len: np.ndarray  # int64[R]
    cr_tranche: int
    cr_include_fees: int
    call_factor: float
    call_price: float


class _Groups:
    """The tranche groups (lists of tranche indices) that opcodes, accounts, supports and
    triggers refer to by row number; a list given twice gets one row."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, ...]] = []

    def add(self, members: list[int]) -> int:
        key = tuple(members)
        if key not in self.rows:
            self.rows.append(key)
        return self.rows.index(key)

    def arrays(self, n_j: int) -> tuple[np.ndarray, np.ndarray]:
        g = np.full((max(1, len(self.rows)), max(1, n_j)), -1, dtype=np.int64)
        n = np.zeros(max(1, len(self.rows)), dtype=np.int64)
        for r, row in enumerate(self.rows):
            g[r, : len(row)] = row
            n[r] = len(row)
        return g, n


def _unique(names: list[str], what: str, pc: ProblemCollector) -> dict[str, int]:
    out: dict[str, int] = {}
    for k, name in enumerate(names):
        if name in out:
            pc.add(f"{what}[{k}].name", f"duplicate name (also {what}[{out[name]}])", name)
        else:
            out[name] = k
    return out


#: the kinds of named things a step, account, trigger or setting may refer to, and their
#: plural in an "unknown ...; ... are [...]" problem
_Kind = Literal["tranche", "fee", "account", "support"]
_PLURAL: dict[_Kind, str] = {
    "tranche": "tranches",
    "fee": "fees",
    "account": "accounts",
    "support": "supports",
}
#: the balances a fee or a percentage reserve target may be based on, besides a tranche's
_BASES = {"pool": L.BASE_POOL, "notes": L.BASE_NOTES, "original_pool": L.BASE_ORIGINAL_POOL}


@dataclass
class _Refs:
    """The names a deal's parts refer to each other by: one name → index table per kind of
    :data:`_PLURAL`, the tranche groups built so far, and where problems go."""

    deal: Deal
    pc: ProblemCollector
    index: dict[_Kind, dict[str, int]]
    groups: _Groups = field(default_factory=_Groups)

    @classmethod
    def of(cls, deal: Deal, pc: ProblemCollector) -> _Refs:
        """The name tables of ``deal``, each repeated name reported (triggers too, though
        nothing refers to a trigger)."""
        index: dict[_Kind, dict[str, int]] = {
            "tranche": _unique([t.name for t in deal.tranches], "tranches", pc),
            "fee": _unique([f.name for f in deal.fees], "fees", pc),
            "account": _unique([a.name for a in deal.accounts], "accounts", pc),
            "support": _unique([s.name for s in deal.support], "support", pc),
        }
        _unique([g.name for g in deal.triggers], "triggers", pc)
        return cls(deal, pc, index)

    def find(self, kind: _Kind, name: str, path: str) -> int | None:
        """The index of the ``kind`` called ``name``; None when the deal has none, reported at
        ``path`` as "unknown <kind>; <kinds> are [...]"."""
        names = self.index[kind]
        if name not in names:
            self.pc.add(path, f"unknown {kind}; {_PLURAL[kind]} are {list(names)}", name)
            return None
        return names[name]

    def tranches(self, names: list[str], path: str) -> list[int]:
        """The indices of the listed tranches, in order; an unknown or repeated name is
        reported at ``path[k]`` and left out."""
        out = []
        first: dict[str, int] = {}
        for k, nm in enumerate(names):
            if nm in first:
                self.pc.add(f"{path}[{k}]", f"tranche named twice (also {path}[{first[nm]}])", nm)
                continue
            first[nm] = k
            j = self.find("tranche", nm, f"{path}[{k}]")
            if j is not None:
                out.append(j)
        return out

    def group(self, names: list[str], path: str) -> int:
        """The group row of the listed tranches (see :meth:`tranches`)."""
        return self.groups.add(self.tranches(names, path))

    def base(self, name: str, path: str) -> tuple[int, int]:
        """(BASE_* kind, tranche index or -1) of a fee's or reserve target's base balance."""
        if name in _BASES:
            return _BASES[name], -1
        tranches = self.index["tranche"]
        if name in tranches:
            return L.BASE_TRANCHE, tranches[name]
        self.pc.add(
            path,
            f"unknown base; use pool, notes, original_pool or a tranche {list(tranches)}",
            name,
        )
        return L.BASE_POOL, -1


# ---- tranches, fees, accounts, supports ------------------------------------------------------


def _coupon_columns(c: Coupon, tf: np.ndarray, ti: np.ndarray) -> None:
    """One tranche's coupon into its rows of ``tranche_f`` and ``tranche_i``."""
    tf[L.TF_FLOOR] = -np.inf
    tf[L.TF_CAP] = np.inf
    if isinstance(c, FixedCoupon):
        ti[L.TI_COUPON_KIND] = L.COUPON_FIXED
        tf[L.TF_FIXED_RATE] = c.rate
    elif isinstance(c, FloatingCoupon):
        ti[L.TI_COUPON_KIND] = L.COUPON_FLOATING
        tf[L.TF_SPREAD] = c.spread
        if c.floor is not None:
            tf[L.TF_FLOOR] = c.floor
        if c.cap is not None:
            tf[L.TF_CAP] = c.cap
    else:
        ti[L.TI_COUPON_KIND] = L.COUPON_NONE


def _target_balances(tr: Tranche, path: str, out: np.ndarray, pc: ProblemCollector) -> None:
    """A tranche's ``target_balances`` into ``out`` (float64[T]): one per period, never
    rising, starting at or below the balance."""
    tb = tr.target_balances
    assert tb is not None
    n_t = len(out)
    if len(tb) != n_t:
        pc.add(
            f"{path}.target_balances",
            f"needs one target per period ({n_t}), got {len(tb)}",
            len(tb),
        )
        return
    out[:] = tb
    if tb[0] > tr.balance or any(tb[k] > tb[k - 1] for k in range(1, n_t)):
        pc.add(
            f"{path}.target_balances",
            "targets must not rise and must start at or below the balance",
            tb[:4],
        )


#: the most a tranche's unpaid interest may grow to, compounding at its highest coupon over the
#: deal (yuan): beyond about 1e154 the squares of the Monte Carlo sums overflow, and past
#: 1.8e308 the amounts themselves (a validator's 100% coupon over 1,100 annual periods wrote
#: inf into the CSV outputs)
MAX_SHORTFALL_GROWTH = 1e100
#: the highest base rate plus shock a scenario can give a floating coupon without a cap
#: (``Rate`` at most 1.0, ``rate_shock_bps`` at most 5000)
_MAX_BASE = 1.5


def _shortfall_growth_problems(
    tr: Tranche, path: str, accrual: np.ndarray, pc: ProblemCollector
) -> None:
    """Refuse ``interest_on_shortfall`` where a shortfall of the whole balance compounding at
    the tranche's highest possible coupon (fixed rate, or a floating coupon's cap, else the
    highest base and shock plus its spread; plus a step-up) over ``accrual`` float64[T]
    (years) could pass :data:`MAX_SHORTFALL_GROWTH`."""
    c = tr.coupon
    if isinstance(c, FixedCoupon):
        rate = c.rate
    elif isinstance(c, FloatingCoupon):
        rate = c.cap if c.cap is not None else _MAX_BASE + c.spread
    else:
        rate = 0.0
    rate += max(tr.step_up.spread, 0.0) if tr.step_up is not None else 0.0
    if rate <= 0.0 or tr.balance <= 0.0:
        return
    log_top = math.log(tr.balance) + float(np.log1p(rate * np.maximum(accrual, 0.0)).sum())
    if log_top > math.log(MAX_SHORTFALL_GROWTH):
        pc.add(
            f"{path}.interest_on_shortfall",
            f"unpaid interest compounding at up to {rate:.2%} a year over the deal's "
            f"{len(accrual)} periods could reach 1e{log_top / math.log(10):.0f} yuan, past "
            f"what the engine computes (1e{math.log10(MAX_SHORTFALL_GROWTH):.0f}); a lower "
            "coupon or cap, or a shorter deal",
            tr.interest_on_shortfall,
        )


def _class_problems(deal: Deal, pc: ProblemCollector) -> None:
    """A ``pari_passu`` label whose tranches are not consecutive: a class is one rank."""
    first: dict[str, int] = {}
    for j, tr in enumerate(deal.tranches):
        label = tr.pari_passu
        if label is None:
            continue
        if label in first and deal.tranches[j - 1].pari_passu != label:
            pc.add(
                f"tranches[{j}].pari_passu",
                f"class {label!r} is also that of tranches[{first[label]}] "
                f"({deal.tranches[first[label]].name!r}), not next to it: a class's tranches are "
                "listed together (one rank)",
                label,
            )
        first.setdefault(label, j)


def _tranche_arrays(
    deal: Deal, sched: PeriodSchedule, pc: ProblemCollector
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``tranche_f`` float64[J, N_TF], ``tranche_i`` int64[J, N_TI], ``tranche_accrual``
    float64[J, T] (years) and ``tranche_target`` float64[J, T] (yuan)."""
    n_t, n_j = len(sched), len(deal.tranches)
    tf = np.zeros((n_j, L.N_TF))
    ti = np.zeros((n_j, L.N_TI), dtype=np.int64)
    tacc = np.zeros((n_j, n_t))
    ttarget = np.zeros((n_j, n_t))
    classes, runs = tranche_classes(deal.tranches), pro_rata_runs(deal.tranches)
    _class_problems(deal, pc)
    for j, tr in enumerate(deal.tranches):
        ti[j, L.TI_CLASS], ti[j, L.TI_CLASS_END] = classes[j]
        ti[j, L.TI_RUN], ti[j, L.TI_RUN_END] = runs[j]
        tf[j, L.TF_BALANCE] = tr.balance
        _coupon_columns(tr.coupon, tf[j], ti[j])
        ti[j, L.TI_STEP_PERIOD] = n_t
        if tr.step_up is not None:
            if tr.step_up.from_period > n_t:
                pc.add(
                    f"tranches[{j}].step_up.from_period",
                    f"after the last period ({n_t})",
                    tr.step_up.from_period,
                )
            ti[j, L.TI_STEP_PERIOD] = tr.step_up.from_period - 1
            tf[j, L.TF_STEP_SPREAD] = tr.step_up.spread
        ti[j, L.TI_PRINCIPAL_KIND] = _PRIN_KIND[tr.principal]
        ti[j, L.TI_INTEREST_ON_SHORTFALL] = int(tr.interest_on_shortfall)
        tacc[j] = sched.accruals(tr.day_count)
        if tr.interest_on_shortfall:
            _shortfall_growth_problems(tr, f"tranches[{j}]", tacc[j], pc)
        if tr.target_balances is not None:
            _target_balances(tr, f"tranches[{j}]", ttarget[j], pc)
        if tr.principal == "residual" and j != n_j - 1:
            pc.add(
                f"tranches[{j}].principal",
                "a residual tranche must be the most junior (listed last)",
                tr.principal,
            )
    return tf, ti, tacc, ttarget


def _fee_arrays(deal: Deal, refs: _Refs) -> tuple[np.ndarray, np.ndarray]:
    """``fee_f`` float64[F, N_FF] (rate per year, fixed, floor and cap in yuan per period) and
    ``fee_i`` int64[F, N_FI] (the base)."""
    ff = np.zeros((len(deal.fees), L.N_FF))
    fi = np.zeros((len(deal.fees), L.N_FI), dtype=np.int64)
    for f, fee in enumerate(deal.fees):
        ff[f] = [fee.rate, fee.fixed, fee.floor or 0.0, np.inf if fee.cap is None else fee.cap]
        fi[f] = refs.base(fee.base, f"fees[{f}].base")
    return ff, fi


def _account_arrays(deal: Deal, refs: _Refs) -> tuple[np.ndarray, np.ndarray]:
    """``account_f`` float64[A, N_AF] (yuan, rates as decimals) and ``account_i``
    int64[A, N_AI] (target kind and what it is taken of)."""
    af = np.zeros((len(deal.accounts), L.N_AF))
    ai = np.zeros((len(deal.accounts), L.N_AI), dtype=np.int64)
    for a, acc in enumerate(deal.accounts):
        tg = acc.target
        af[a, L.AF_INITIAL] = acc.initial_balance
        if isinstance(tg, FixedTarget):
            ai[a, L.AI_TARGET_KIND] = L.TARGET_FIXED
            af[a, L.AF_AMOUNT] = tg.amount
        elif isinstance(tg, PercentTarget):
            ai[a, L.AI_TARGET_KIND] = L.TARGET_PERCENT
            af[a, L.AF_RATE] = tg.rate
            af[a, L.AF_FLOOR] = tg.floor
            ai[a, L.AI_OF_KIND], ai[a, L.AI_OF_TRANCHE] = refs.base(
                tg.of, f"accounts[{a}].target.of"
            )
        else:
            ai[a, L.AI_TARGET_KIND] = L.TARGET_NEXT_INTEREST
            ai[a, L.AI_GROUP] = refs.group(tg.tranches, f"accounts[{a}].target.tranches")
            ai[a, L.AI_INCLUDE_FEES] = int(tg.include_fees)
    return af, ai


def _support_arrays(deal: Deal, refs: _Refs) -> tuple[np.ndarray, np.ndarray]:
    """``support_f`` float64[S, N_SF] (cap in yuan, compensation share) and ``support_i``
    int64[S, N_SI] (kind, covered tranche group, what it covers, lag in periods)."""
    sf = np.zeros((len(deal.support), L.N_SF))
    si = np.zeros((len(deal.support), L.N_SI), dtype=np.int64)
    for s, sup in enumerate(deal.support):
        sf[s, L.SF_CAP] = np.inf if sup.cap is None else sup.cap
        if isinstance(sup, ShortfallSupport):
            si[s, L.SI_KIND] = L.SUPPORT_SHORTFALL
            si[s, L.SI_GROUP] = refs.group(sup.tranches, f"support[{s}].tranches")
            si[s, L.SI_COVERS] = _COVERS[sup.covers]
        else:
            assert isinstance(sup, LossCompensation)
            si[s, L.SI_KIND] = L.SUPPORT_COMPENSATION
            sf[s, L.SF_SHARE] = sup.share
            si[s, L.SI_LAG] = sup.lag_periods
    return sf, si


# ---- waterfalls: one opcode row per step ---------------------------------------------------


@dataclass
class _PrincipalOrder:
    """Within one waterfall: the tranches some ``pay_principal`` step pays, and those paid by
    the steps compiled so far (a junior paid before its senior is a problem)."""

    anywhere: set[int]
    so_far: set[int] = field(default_factory=set)


def _op_pay_fee(st: PayFee, row: np.ndarray, path: str, refs: _Refs, _: _PrincipalOrder) -> None:
    f = refs.find("fee", st.fee, f"{path}.fee")
    if f is not None:
        row[L.OPC_A] = f


def _op_pay_interest(
    st: PayInterest, row: np.ndarray, path: str, refs: _Refs, _: _PrincipalOrder
) -> None:
    row[L.OPC_A] = refs.group(st.tranches, f"{path}.tranches")
    row[L.OPC_B] = L.MODE_PRO_RATA if st.mode == "pro_rata" else L.MODE_SEQUENTIAL


def _op_pay_principal(
    st: PayPrincipal, row: np.ndarray, path: str, refs: _Refs, order: _PrincipalOrder
) -> None:
    members = refs.tranches(st.tranches, f"{path}.tranches")
    row[L.OPC_A] = refs.groups.add(members)
    mode = st.mode
    if mode is None:
        kinds = {refs.deal.tranches[j].principal for j in members}
        mode = "pro_rata" if kinds == {"pro_rata"} else "sequential"
    row[L.OPC_B] = (
        L.MODE_PRO_RATA
        if mode == "pro_rata"
        else (L.MODE_IN_ORDER if st.mode == "sequential" else L.MODE_SEQUENTIAL)
    )
    row[L.OPC_C] = L.AMOUNT_PRINCIPAL_DUE if st.amount == "principal_due" else L.AMOUNT_AVAILABLE
    if mode == "pro_rata" and st.amount == "principal_due":
        _scheduled_pro_rata_problems(st, members, path, refs)
    if not st.allow_out_of_order:
        _principal_order_problems(st, members, mode, path, refs, order)
    order.so_far.update(members)


def _scheduled_pro_rata_problems(
    st: PayPrincipal, members: list[int], path: str, refs: _Refs
) -> None:
    """A target-balance tranche is paid down to its schedule: a pro-rata share of principal
    due would ignore it (with ``amount = "available"`` every tranche takes its share)."""
    for j in members:
        tranche = refs.deal.tranches[j]
        if tranche.principal == "target_balance":
            refs.pc.add(
                f"{path}.mode",
                f"tranche {tranche.name!r} has principal = 'target_balance': it is paid "
                "down to its target_balances, which a pro-rata share of principal due would "
                "ignore; pay it in a step of its own or in mode = 'sequential'",
                st.mode,
            )


def _principal_order_problems(
    st: PayPrincipal,
    members: list[int],
    mode: str,
    path: str,
    refs: _Refs,
    order: _PrincipalOrder,
) -> None:
    """Sequential principal must list its tranches senior first, and no step may pay a junior
    tranche while a senior one is paid only by a later step."""
    tranches = refs.deal.tranches
    if mode == "sequential" and members != sorted(members):
        refs.pc.add(
            f"{path}.tranches",
            "sequential principal must list tranches senior first "
            "(set allow_out_of_order to override)",
            st.tranches,
        )
    for j in members:
        for senior in range(j):
            if senior in order.anywhere and senior not in order.so_far and senior not in members:
                refs.pc.add(
                    f"{path}.tranches",
                    f"junior tranche {tranches[j].name!r} is paid principal before senior "
                    f"{tranches[senior].name!r} (set allow_out_of_order to override)",
                    st.tranches,
                )


def _op_fund_reserve(
    st: FundReserve, row: np.ndarray, path: str, refs: _Refs, _: _PrincipalOrder
) -> None:
    a = refs.find("account", st.account, f"{path}.account")
    if a is not None:
        row[L.OPC_A] = a


def _op_draw_reserve(
    st: DrawReserve, row: np.ndarray, path: str, refs: _Refs, _: _PrincipalOrder
) -> None:
    a = refs.find("account", st.account, f"{path}.account")
    if a is not None:
        row[L.OPC_A] = a
    row[L.OPC_B] = refs.group(st.tranches, f"{path}.tranches")
    row[L.OPC_C] = L.COVERS_INTEREST if st.covers == "interest" else L.COVERS_PRINCIPAL


def _op_draw_support(
    st: DrawSupport, row: np.ndarray, path: str, refs: _Refs, _: _PrincipalOrder
) -> None:
    s = refs.find("support", st.support, f"{path}.support")
    if s is None:
        return
    if isinstance(refs.deal.support[s], LossCompensation):
        refs.pc.add(
            f"{path}.support",
            "loss compensation pays automatically; it cannot be drawn by a step",
            st.support,
        )
    else:
        row[L.OPC_A] = s


def _op_pay_residual(
    st: PayResidual, row: np.ndarray, path: str, refs: _Refs, _: _PrincipalOrder
) -> None:
    j = refs.find("tranche", st.tranche, f"{path}.tranche")
    if j is not None:
        row[L.OPC_A] = j


def _op_write_off(
    st: WriteOff, row: np.ndarray, path: str, refs: _Refs, _: _PrincipalOrder
) -> None:
    pass  # no parameters: the principal deficiency is computed in the kernel


#: each step kind's opcode and the function that fills the rest of its row
_STEP_OPS: dict[type, tuple[int, Callable[[Any, np.ndarray, str, _Refs, _PrincipalOrder], None]]]
_STEP_OPS = {
    PayFee: (L.OP_PAY_FEE, _op_pay_fee),
    PayInterest: (L.OP_PAY_INTEREST, _op_pay_interest),
    PayPrincipal: (L.OP_PAY_PRINCIPAL, _op_pay_principal),
    FundReserve: (L.OP_FUND_RESERVE, _op_fund_reserve),
    DrawReserve: (L.OP_DRAW_RESERVE, _op_draw_reserve),
    DrawSupport: (L.OP_DRAW_SUPPORT, _op_draw_support),
    WriteOff: (L.OP_WRITE_OFF, _op_write_off),
    PayResidual: (L.OP_PAY_RESIDUAL, _op_pay_residual),
}


def _waterfall_ops(deal: Deal, refs: _Refs) -> tuple[np.ndarray, np.ndarray]:
    """``ops`` int64[N_STATUS, K, N_OPC] (one row per step, K the longest waterfall) and
    ``n_steps`` int64[N_STATUS] (0 for a status without a waterfall)."""
    wf_lists: list[list[Step] | None] = [
        deal.waterfalls.normal,
        deal.waterfalls.accelerated,
        deal.waterfalls.post_default,
    ]
    k_max = max(len(w) for w in wf_lists if w is not None)
    ops = np.zeros((L.N_STATUS, k_max, L.N_OPC), dtype=np.int64)
    n_steps = np.zeros(L.N_STATUS, dtype=np.int64)
    for w, steps in enumerate(wf_lists):
        if steps is not None:
            n_steps[w] = len(steps)
            _compile_waterfall(steps, w, ops[w], refs)
    _undrawn_warnings(deal, wf_lists, refs)
    return ops, n_steps


def _undrawn_warnings(deal: Deal, wf_lists: list[list[Step] | None], refs: _Refs) -> None:
    """Warnings (legal, probably a step left out) about a shortfall undertaking or guarantee
    that no ``draw_support`` step draws, or that only another status's waterfall draws."""
    for s, sup in enumerate(deal.support):
        if not isinstance(sup, ShortfallSupport):
            continue  # loss compensation pays without a step
        where = [
            STATUS_NAMES[w]
            for w, steps in enumerate(wf_lists)
            if any(isinstance(st, DrawSupport) and st.support == sup.name for st in steps or ())
        ]
        if not where:
            refs.pc.warn(
                f"support[{s}]",
                f"{sup.kind} {sup.name!r} is never drawn (no draw_support step in any "
                "waterfall): it pays nothing",
            )
        elif STATUS_NAMES[L.STATUS_NORMAL] not in where:
            refs.pc.warn(
                "waterfalls.normal",
                f"{sup.kind} {sup.name!r} is drawn only in the {' and '.join(where)} "
                f"waterfall{'s' if len(where) > 1 else ''}: not while the deal performs",
            )


def _compile_waterfall(steps: list[Step], w: int, ops: np.ndarray, refs: _Refs) -> None:
    """The opcode rows ``ops`` (int64[K, N_OPC]) of the waterfall for status ``w``, with its
    problems and warnings."""
    wname = f"waterfalls.{STATUS_NAMES[w]}"
    tr_idx = refs.index["tranche"]
    paid = {
        tr_idx[n]
        for st in steps
        if isinstance(st, PayPrincipal)
        for n in st.tranches
        if n in tr_idx
    }
    order = _PrincipalOrder(anywhere=paid)
    for k, st in enumerate(steps):
        code, fill = _STEP_OPS[type(st)]
        ops[k, L.OPC_CODE] = code
        fill(st, ops[k], f"{wname}[{k}]", refs, order)
    _residual_warnings(steps, wname, refs)
    if w == L.STATUS_NORMAL:
        for j, tr in enumerate(refs.deal.tranches):
            if j not in paid and tr.balance > 0:
                refs.pc.add(
                    wname, f"tranche {tr.name!r} is never paid principal in this waterfall", tr.name
                )
        _unpaid_warnings(steps, wname, refs)
        _split_run_warnings(steps, wname, refs)


def _bears_coupon(tr: Tranche) -> bool:
    """Whether a tranche can accrue interest: a balance, and a floating coupon, a fixed one
    above zero or a step-up spread."""
    c = tr.coupon
    stepped = tr.step_up is not None and tr.step_up.spread > 0
    fixed = c.kind == "fixed" and c.rate > 0
    return tr.balance > 0 and (c.kind == "floating" or fixed or stepped)


def _split_run_warnings(steps: list[Step], wname: str, refs: _Refs) -> None:
    """Warnings about ``pay_principal`` steps that list part of a run of consecutive
    pro-rata tranches (whose principal due is shared by balance): the run is paid by
    balance only where one step lists it whole."""
    tranches = refs.deal.tranches
    runs = sorted(set(pro_rata_runs(tranches)))
    for k, st in enumerate(steps):
        if not isinstance(st, PayPrincipal):
            continue
        listed = set(st.tranches)
        for first, end in runs:
            names = [t.name for t in tranches[first:end]]
            part = [n for n in names if n in listed]
            if len(names) > 1 and 0 < len(part) < len(names):
                refs.pc.warn(
                    f"{wname}[{k}].tranches",
                    f"lists {', '.join(map(repr, part))} of the pro-rata tranches {names}, "
                    "not all of them: their principal due is shared by balance, which they are "
                    "paid by only where one step lists them all",
                )


def _unpaid_warnings(steps: list[Step], wname: str, refs: _Refs) -> None:
    """Warnings about the normal waterfall: a tranche bearing a coupon that no
    ``pay_interest`` step pays, and a fee that can fall due that no ``pay_fee`` step pays
    (legal, and the amounts are left unpaid; probably a step left out)."""
    deal = refs.deal
    with_interest = {n for st in steps if isinstance(st, PayInterest) for n in st.tranches}
    for tr in deal.tranches:
        if _bears_coupon(tr) and tr.name not in with_interest:
            refs.pc.warn(
                wname,
                f"tranche {tr.name!r} bears a coupon but no pay_interest step pays it: its "
                "interest is left unpaid (a shortfall, which a support covering it is drawn "
                "for)",
            )
    with_fee = {st.fee for st in steps if isinstance(st, PayFee)}
    for fee in deal.fees:
        due = fee.rate > 0 or fee.fixed > 0 or (fee.floor or 0.0) > 0
        if due and fee.name not in with_fee:
            refs.pc.warn(
                wname,
                f"fee {fee.name!r} is never paid in the normal waterfall (no pay_fee step): it "
                "accrues unpaid while the deal performs",
            )


#: steps that pay from the available funds: after a ``pay_residual`` step they get nothing
_PAYING_STEPS = (PayFee, PayInterest, PayPrincipal, FundReserve, PayResidual)


def _residual_warnings(steps: list[Step], wname: str, refs: _Refs) -> None:
    """Warnings (allowed, probably wrong) about a waterfall's ``pay_residual`` steps: none at
    all (cash left after the last step is carried to the next period, and released from the
    deal at the end, the ``cash_released`` line);
    a paying step after it (it pays every yuan left, so those steps only ever get what a later
    draw brings in); a residual tranche that is not the deal's equity (it has a coupon, or its
    principal is not ``residual``)."""
    pc = refs.pc
    where = [k for k, st in enumerate(steps) if isinstance(st, PayResidual)]
    if not where:
        pc.warn(
            wname,
            "no pay_residual step: cash left after the last step is carried into the next "
            "period, and what is left at the end of the final (or call) period is released "
            "from the deal (reported as cash_released), not paid to any tranche",
        )
        return
    k0 = where[0]
    later: dict[str, int] = {}  # kind of each paying step after it → its first index
    for k, st in enumerate(steps):
        if k > k0 and isinstance(st, _PAYING_STEPS):
            later.setdefault(st.kind, k)
    if later:
        shown = ", ".join(f"{kind} ({wname}[{k}])" for kind, k in later.items())
        pc.warn(
            f"{wname}[{k0}]",
            f"pay_residual pays every yuan left, but it comes before {shown}: "
            "those steps get only cash that a later draw brings in; make pay_residual the last "
            "step",
            "pay_residual",
        )
    for k in where:
        st = steps[k]
        assert isinstance(st, PayResidual)
        j = refs.index["tranche"].get(st.tranche)
        if j is None:
            continue  # reported as an error
        tr = refs.deal.tranches[j]
        if tr.coupon.kind != "none" or tr.principal != "residual":
            what = (
                f"a {tr.coupon.kind} coupon" if tr.coupon.kind != "none" else "no coupon"
            ) + f" and principal = {tr.principal!r}"
            pc.warn(
                f"{wname}[{k}].tranche",
                f"pay_residual pays the excess cash to tranche {tr.name!r}, which has {what}; the "
                "residual is normally the equity tranche (principal = 'residual', no coupon)",
                st.tranche,
            )


# ---- triggers ----------------------------------------------------------------------------------


def _trap_account(trg: Trigger, path: str, refs: _Refs) -> int:
    """The account index a ``trap_excess_spread`` trigger traps cash into (-1 for other
    effects); a missing or unknown account, or a ``trap_account`` on a trigger that traps
    nothing, is a problem."""
    if trg.effect != "trap_excess_spread":
        if trg.trap_account is not None:
            refs.pc.add(
                f"{path}.trap_account",
                f"trap_account is only used with effect = 'trap_excess_spread' (this trigger's "
                f"effect is {trg.effect!r})",
                trg.trap_account,
            )
        return -1
    if trg.trap_account is None:
        refs.pc.add(f"{path}.trap_account", "a trap_excess_spread trigger needs trap_account", None)
        return -1
    a = refs.find("account", trg.trap_account, f"{path}.trap_account")
    return -1 if a is None else a


def _trigger_arrays(deal: Deal, refs: _Refs, n_t: int) -> tuple[np.ndarray, np.ndarray]:
    """``trigger_f`` float64[G, N_GF] (thresholds: a share of the original pool, or a coverage
    ratio) and ``trigger_i`` int64[G, N_GI] (kind, effect, what it watches), for a deal of
    ``n_t`` periods."""
    tgf = np.zeros((len(deal.triggers), L.N_GF))
    tgi = np.zeros((len(deal.triggers), L.N_GI), dtype=np.int64)
    for g, trg in enumerate(deal.triggers):
        path = f"triggers[{g}]"
        tgi[g, L.GI_EFFECT] = _EFFECT[trg.effect]
        tgi[g, L.GI_CURABLE] = int(trg.curable)
        tgi[g, L.GI_ACCOUNT] = _trap_account(trg, path, refs)
        needs = _EFFECT_NEEDS.get(trg.effect)
        if needs is not None and getattr(deal.waterfalls, needs) is None:
            refs.pc.add(
                f"{path}.effect",
                f"effect {trg.effect!r} needs a waterfalls.{needs} priority of payments",
                trg.effect,
            )
        if isinstance(trg, CumulativeDefaultTrigger):
            tgi[g, L.GI_KIND] = L.TRIG_CUM_DEFAULT
            tgf[g, L.GF_THRESHOLD] = trg.threshold
        elif isinstance(trg, CoverageRatioTrigger):
            tgi[g, L.GI_KIND] = L.TRIG_COVERAGE
            tgf[g, L.GF_THRESHOLD] = trg.threshold
            tgi[g, L.GI_PERIODS] = trg.periods
            if trg.periods > n_t:  # it could never fire: refused, as other periods past the end
                refs.pc.add(f"{path}.periods", f"more than the deal's periods ({n_t})",
                            trg.periods)  # fmt: skip
        elif isinstance(trg, SupportDefaultTrigger):
            tgi[g, L.GI_KIND] = L.TRIG_SUPPORT_DEFAULT
            s = refs.find("support", trg.support, f"{path}.support")
            if s is not None:
                tgi[g, L.GI_SUPPORT] = s
        elif isinstance(trg, MissedInterestTrigger):
            tgi[g, L.GI_KIND] = L.TRIG_MISSED_INTEREST
            tgi[g, L.GI_GROUP] = refs.group(trg.tranches, f"{path}.tranches")
    return tgf, tgi


# ---- the whole structure -------------------------------------------------------------------


def compile_structure(deal: Deal, sched: PeriodSchedule, pc: ProblemCollector) -> StructureArrays:
    """The deal's structure as kernel parameter tables: tranches, fees, reserve accounts,
    credit support, the waterfalls (one opcode row per step), triggers, and the coverage-ratio
    and clean-up-call settings. Every name one part gives another is checked here.

    Parameters
    ----------
    deal : Deal
        A deal validated by the schema.
    sched : PeriodSchedule
        Its T payment periods (each tranche's accrual fractions under its day count).
    pc : ProblemCollector
        Receives every problem (unknown or repeated names, targets that do not fit the
        schedule, principal paid out of order...) and every warning; nothing is raised here.

    Returns
    -------
    StructureArrays
        Columns as in :mod:`abs_engine.kernels.layout`: amounts in yuan, coupon and fee rates as
        decimals per year, accrual fractions in years, indices 0-based. Where a name could not
        be resolved an index is left at 0 (or -1): the tables are meant for use only when
        ``pc`` holds no problem.
    """
    refs = _Refs.of(deal, pc)
    tf, ti, tacc, ttarget = _tranche_arrays(deal, sched, pc)
    ff, fi = _fee_arrays(deal, refs)
    af, ai = _account_arrays(deal, refs)
    sf, si = _support_arrays(deal, refs)
    ops, n_steps = _waterfall_ops(deal, refs)
    tgf, tgi = _trigger_arrays(deal, refs, len(sched))
    cr_name = deal.coverage_ratio.tranche or deal.tranches[0].name
    cr_tranche = refs.find("tranche", cr_name, "coverage_ratio.tranche")
    g_arr, g_len = refs.groups.arrays(len(deal.tranches))
    call = deal.clean_up_call
    return StructureArrays(
        tranche_f=tf,
        tranche_i=ti,
        tranche_accrual=tacc,
        tranche_target=ttarget,
        fee_f=ff,
        fee_i=fi,
        account_f=af,
        account_i=ai,
        support_f=sf,
        support_i=si,
        trigger_f=tgf,
        trigger_i=tgi,
        ops=ops,
        n_steps=n_steps,
        groups=g_arr,
        group_len=g_len,
        cr_tranche=0 if cr_tranche is None else cr_tranche,
        cr_include_fees=int(deal.coverage_ratio.include_fees),
        call_factor=-1.0 if call is None else call.pool_factor,
        call_price=1.0 if call is None else call.price,
    )
