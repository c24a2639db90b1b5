"""Structure → arrays: tranche, fee, account, support and trigger parameter tables, and each
waterfall as an integer opcode table. Every cross-reference is checked here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ProblemCollector
from ..kernels import layout as L
from ..schema.deal import Deal
from ..schema.support import LossCompensation, ShortfallSupport
from ..schema.tranche import FixedCoupon, FixedTarget, FloatingCoupon, PercentTarget
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


#: steps that pay from the available funds: after a ``pay_residual`` step they get nothing
_PAYING_STEPS = (PayFee, PayInterest, PayPrincipal, FundReserve, PayResidual)


def _residual_warnings(
    deal: Deal, steps: list[Step], wname: str, tr_idx: dict[str, int], pc: ProblemCollector
) -> None:
    """Warnings (allowed, probably wrong) about a waterfall's ``pay_residual`` steps: none at
    all (cash left after the last step is released from the deal, the ``cash_released`` line);
    a paying step after it (it pays every yuan left, so those steps only ever get what a later
    draw brings in); a residual tranche that is not the deal's equity (it has a coupon, or its
    principal is not ``residual``)."""
    where = [k for k, st in enumerate(steps) if isinstance(st, PayResidual)]
    if not where:
        pc.warn(
            wname,
            "no pay_residual step: cash left after the last step is released from the deal "
            "(reported as cash_released), not paid to any tranche",
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
        j = tr_idx.get(st.tranche)
        if j is None:
            continue  # reported as an error
        tr = deal.tranches[j]
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


def _trap_account(trg: Trigger, path: str, acc_idx: dict[str, int], pc: ProblemCollector) -> int:
    """The account index a ``trap_excess_spread`` trigger traps cash into (-1 for other
    effects); a missing or unknown account, or a ``trap_account`` on a trigger that traps
    nothing, is a problem."""
    if trg.effect != "trap_excess_spread":
        if trg.trap_account is not None:
            pc.add(
                f"{path}.trap_account",
                f"trap_account is only used with effect = 'trap_excess_spread' (this trigger's "
                f"effect is {trg.effect!r})",
                trg.trap_account,
            )
        return -1
    if trg.trap_account is None:
        pc.add(f"{path}.trap_account", "a trap_excess_spread trigger needs trap_account", None)
        return -1
    if trg.trap_account not in acc_idx:
        pc.add(
            f"{path}.trap_account",
            f"unknown account; accounts are {list(acc_idx)}",
            trg.trap_account,
        )
        return -1
    return acc_idx[trg.trap_account]


def compile_structure(deal: Deal, sched: PeriodSchedule, pc: ProblemCollector) -> StructureArrays:
    n_t = len(sched)
    tr_idx = _unique([t.name for t in deal.tranches], "tranches", pc)
    fee_idx = _unique([f.name for f in deal.fees], "fees", pc)
    acc_idx = _unique([a.name for a in deal.accounts], "accounts", pc)
    sup_idx = _unique([s.name for s in deal.support], "support", pc)
    _unique([g.name for g in deal.triggers], "triggers", pc)
    groups = _Groups()
    n_j = len(deal.tranches)

    def tranche_list(names: list[str], path: str) -> list[int]:
        out = []
        first: dict[str, int] = {}
        for k, nm in enumerate(names):
            if nm in first:
                pc.add(f"{path}[{k}]", f"tranche named twice (also {path}[{first[nm]}])", nm)
                continue
            first[nm] = k
            if nm not in tr_idx:
                pc.add(f"{path}[{k}]", f"unknown tranche; tranches are {list(tr_idx)}", nm)
            else:
                out.append(tr_idx[nm])
        return out

    def base_of(name: str, path: str) -> tuple[int, int]:
        if name == "pool":
            return L.BASE_POOL, -1
        if name == "notes":
            return L.BASE_NOTES, -1
        if name == "original_pool":
            return L.BASE_ORIGINAL_POOL, -1
        if name in tr_idx:
            return L.BASE_TRANCHE, tr_idx[name]
        pc.add(
            path, f"unknown base; use pool, notes, original_pool or a tranche {list(tr_idx)}", name
        )
        return L.BASE_POOL, -1

    # ---- tranches ----
    tf = np.zeros((n_j, L.N_TF))
    ti = np.zeros((n_j, L.N_TI), dtype=np.int64)
    tacc = np.zeros((n_j, n_t))
    ttarget = np.zeros((n_j, n_t))
    for j, tr in enumerate(deal.tranches):
        tf[j, L.TF_BALANCE] = tr.balance
        tf[j, L.TF_FLOOR] = -np.inf
        tf[j, L.TF_CAP] = np.inf
        c = tr.coupon
        if isinstance(c, FixedCoupon):
            ti[j, L.TI_COUPON_KIND] = L.COUPON_FIXED
            tf[j, L.TF_FIXED_RATE] = c.rate
        elif isinstance(c, FloatingCoupon):
            ti[j, L.TI_COUPON_KIND] = L.COUPON_FLOATING
            tf[j, L.TF_SPREAD] = c.spread
            if c.floor is not None:
                tf[j, L.TF_FLOOR] = c.floor
            if c.cap is not None:
                tf[j, L.TF_CAP] = c.cap
        else:
            ti[j, L.TI_COUPON_KIND] = L.COUPON_NONE
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
        if tr.target_balances is not None:
            tb = tr.target_balances
            if len(tb) != n_t:
                pc.add(
                    f"tranches[{j}].target_balances",
                    f"needs one target per period ({n_t}), got {len(tb)}",
                    len(tb),
                )
            else:
                ttarget[j] = tb
                if tb[0] > tr.balance or any(tb[k] > tb[k - 1] for k in range(1, n_t)):
                    pc.add(
                        f"tranches[{j}].target_balances",
                        "targets must not rise and must start at or below the balance",
                        tb[:4],
                    )
        if tr.principal == "residual" and j != n_j - 1:
            pc.add(
                f"tranches[{j}].principal",
                "a residual tranche must be the most junior (listed last)",
                tr.principal,
            )

    # ---- fees ----
    ff = np.zeros((len(deal.fees), L.N_FF))
    fi = np.zeros((len(deal.fees), L.N_FI), dtype=np.int64)
    for f, fee in enumerate(deal.fees):
        ff[f] = [fee.rate, fee.fixed, fee.floor or 0.0, np.inf if fee.cap is None else fee.cap]
        fi[f] = base_of(fee.base, f"fees[{f}].base")

    # ---- accounts ----
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
            ai[a, L.AI_OF_KIND], ai[a, L.AI_OF_TRANCHE] = base_of(tg.of, f"accounts[{a}].target.of")
        else:
            ai[a, L.AI_TARGET_KIND] = L.TARGET_NEXT_INTEREST
            ai[a, L.AI_GROUP] = groups.add(
                tranche_list(tg.tranches, f"accounts[{a}].target.tranches")
            )
            ai[a, L.AI_INCLUDE_FEES] = int(tg.include_fees)

    # ---- supports ----
    sf = np.zeros((len(deal.support), L.N_SF))
    si = np.zeros((len(deal.support), L.N_SI), dtype=np.int64)
    for s, sup in enumerate(deal.support):
        sf[s, L.SF_CAP] = np.inf if sup.cap is None else sup.cap
        if isinstance(sup, ShortfallSupport):
            si[s, L.SI_KIND] = L.SUPPORT_SHORTFALL
            si[s, L.SI_GROUP] = groups.add(tranche_list(sup.tranches, f"support[{s}].tranches"))
            si[s, L.SI_COVERS] = _COVERS[sup.covers]
        else:
            assert isinstance(sup, LossCompensation)
            si[s, L.SI_KIND] = L.SUPPORT_COMPENSATION
            sf[s, L.SF_SHARE] = sup.share
            si[s, L.SI_LAG] = sup.lag_periods

    # ---- waterfalls ----
    wf_lists: list[list[Step] | None] = [
        deal.waterfalls.normal,
        deal.waterfalls.accelerated,
        deal.waterfalls.post_default,
    ]
    k_max = max(len(w) for w in wf_lists if w is not None)
    ops = np.zeros((L.N_STATUS, k_max, L.N_OPC), dtype=np.int64)
    n_steps = np.zeros(L.N_STATUS, dtype=np.int64)
    for w, steps in enumerate(wf_lists):
        if steps is None:
            continue
        n_steps[w] = len(steps)
        wname = f"waterfalls.{STATUS_NAMES[w]}"
        principal_seen: set[int] = set()
        all_principal: set[int] = set()
        for st in steps:
            if isinstance(st, PayPrincipal):
                all_principal.update(tr_idx[n] for n in st.tranches if n in tr_idx)
        for k, st in enumerate(steps):
            path = f"{wname}[{k}]"
            row = ops[w, k]
            if isinstance(st, PayFee):
                row[L.OPC_CODE] = L.OP_PAY_FEE
                if st.fee not in fee_idx:
                    pc.add(f"{path}.fee", f"unknown fee; fees are {list(fee_idx)}", st.fee)
                else:
                    row[L.OPC_A] = fee_idx[st.fee]
            elif isinstance(st, PayInterest):
                row[L.OPC_CODE] = L.OP_PAY_INTEREST
                row[L.OPC_A] = groups.add(tranche_list(st.tranches, f"{path}.tranches"))
                row[L.OPC_B] = L.MODE_PRO_RATA if st.mode == "pro_rata" else L.MODE_SEQUENTIAL
            elif isinstance(st, PayPrincipal):
                row[L.OPC_CODE] = L.OP_PAY_PRINCIPAL
                members = tranche_list(st.tranches, f"{path}.tranches")
                row[L.OPC_A] = groups.add(members)
                mode = st.mode
                if mode is None:
                    kinds = {deal.tranches[j].principal for j in members}
                    mode = "pro_rata" if kinds == {"pro_rata"} else "sequential"
                row[L.OPC_B] = L.MODE_PRO_RATA if mode == "pro_rata" else L.MODE_SEQUENTIAL
                row[L.OPC_C] = (
                    L.AMOUNT_PRINCIPAL_DUE if st.amount == "principal_due" else L.AMOUNT_AVAILABLE
                )
                if not st.allow_out_of_order:
                    if mode == "sequential" and members != sorted(members):
                        pc.add(
                            f"{path}.tranches",
                            "sequential principal must list tranches senior first "
                            "(set allow_out_of_order to override)",
                            st.tranches,
                        )
                    for j in members:
                        for senior in range(j):
                            if (
                                senior in all_principal
                                and senior not in principal_seen
                                and senior not in members
                            ):
                                pc.add(
                                    f"{path}.tranches",
                                    f"junior tranche {deal.tranches[j].name!r} is paid "
                                    f"principal before senior {deal.tranches[senior].name!r} "
                                    "(set allow_out_of_order to override)",
                                    st.tranches,
                                )
                principal_seen.update(members)
            elif isinstance(st, FundReserve):
                row[L.OPC_CODE] = L.OP_FUND_RESERVE
                if st.account not in acc_idx:
                    pc.add(
                        f"{path}.account",
                        f"unknown account; accounts are {list(acc_idx)}",
                        st.account,
                    )
                else:
                    row[L.OPC_A] = acc_idx[st.account]
            elif isinstance(st, DrawReserve):
                row[L.OPC_CODE] = L.OP_DRAW_RESERVE
                if st.account not in acc_idx:
                    pc.add(
                        f"{path}.account",
                        f"unknown account; accounts are {list(acc_idx)}",
                        st.account,
                    )
                else:
                    row[L.OPC_A] = acc_idx[st.account]
                row[L.OPC_B] = groups.add(tranche_list(st.tranches, f"{path}.tranches"))
                row[L.OPC_C] = L.COVERS_INTEREST if st.covers == "interest" else L.COVERS_PRINCIPAL
            elif isinstance(st, DrawSupport):
                row[L.OPC_CODE] = L.OP_DRAW_SUPPORT
                if st.support not in sup_idx:
                    pc.add(
                        f"{path}.support",
                        f"unknown support; supports are {list(sup_idx)}",
                        st.support,
                    )
                elif isinstance(deal.support[sup_idx[st.support]], LossCompensation):
                    pc.add(
                        f"{path}.support",
                        "loss compensation pays automatically; it cannot be drawn by a step",
                        st.support,
                    )
                else:
                    row[L.OPC_A] = sup_idx[st.support]
            elif isinstance(st, WriteOff):
                row[L.OPC_CODE] = L.OP_WRITE_OFF
            elif isinstance(st, PayResidual):
                row[L.OPC_CODE] = L.OP_PAY_RESIDUAL
                if st.tranche not in tr_idx:
                    pc.add(
                        f"{path}.tranche",
                        f"unknown tranche; tranches are {list(tr_idx)}",
                        st.tranche,
                    )
                else:
                    row[L.OPC_A] = tr_idx[st.tranche]
        _residual_warnings(deal, steps, wname, tr_idx, pc)
        if w == L.STATUS_NORMAL:
            for j, tr in enumerate(deal.tranches):
                if j not in all_principal and tr.balance > 0:
                    pc.add(
                        wname,
                        f"tranche {tr.name!r} is never paid principal in this waterfall",
                        tr.name,
                    )

    # ---- triggers ----
    tgf = np.zeros((len(deal.triggers), L.N_GF))
    tgi = np.zeros((len(deal.triggers), L.N_GI), dtype=np.int64)
    for g, trg in enumerate(deal.triggers):
        path = f"triggers[{g}]"
        tgi[g, L.GI_EFFECT] = _EFFECT[trg.effect]
        tgi[g, L.GI_CURABLE] = int(trg.curable)
        tgi[g, L.GI_ACCOUNT] = _trap_account(trg, path, acc_idx, pc)
        if trg.effect == "accelerate" and deal.waterfalls.accelerated is None:
            pc.add(
                f"{path}.effect",
                "effect 'accelerate' needs a waterfalls.accelerated priority of payments",
                trg.effect,
            )
        elif trg.effect == "event_of_default" and deal.waterfalls.post_default is None:
            pc.add(
                f"{path}.effect",
                "effect 'event_of_default' needs a waterfalls.post_default priority of payments",
                trg.effect,
            )
        if isinstance(trg, CumulativeDefaultTrigger):
            tgi[g, L.GI_KIND] = L.TRIG_CUM_DEFAULT
            tgf[g, L.GF_THRESHOLD] = trg.threshold
        elif isinstance(trg, CoverageRatioTrigger):
            tgi[g, L.GI_KIND] = L.TRIG_COVERAGE
            tgf[g, L.GF_THRESHOLD] = trg.threshold
            tgi[g, L.GI_PERIODS] = trg.periods
        elif isinstance(trg, SupportDefaultTrigger):
            tgi[g, L.GI_KIND] = L.TRIG_SUPPORT_DEFAULT
            if trg.support not in sup_idx:
                pc.add(
                    f"{path}.support", f"unknown support; supports are {list(sup_idx)}", trg.support
                )
            else:
                tgi[g, L.GI_SUPPORT] = sup_idx[trg.support]
        elif isinstance(trg, MissedInterestTrigger):
            tgi[g, L.GI_KIND] = L.TRIG_MISSED_INTEREST
            tgi[g, L.GI_GROUP] = groups.add(tranche_list(trg.tranches, f"{path}.tranches"))

    # ---- coverage ratio and clean-up call ----
    cr_name = deal.coverage_ratio.tranche or deal.tranches[0].name
    if cr_name not in tr_idx:
        pc.add("coverage_ratio.tranche", f"unknown tranche; tranches are {list(tr_idx)}", cr_name)
    cr_tranche = tr_idx.get(cr_name, 0)
    call = deal.clean_up_call
    g_arr, g_len = groups.arrays(n_j)
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
        cr_tranche=cr_tranche,
        cr_include_fees=int(deal.coverage_ratio.include_fees),
        call_factor=-1.0 if call is None else call.pool_factor,
        call_price=1.0 if call is None else call.price,
    )
