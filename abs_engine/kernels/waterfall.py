"""The waterfall interpreter: one path of pool flows through the deal's priority of payments.

``waterfall_path_py`` is the plain-Python reference; ``waterfall_path`` is the same function
compiled by numba. ``run_paths_py`` / ``run_paths`` loop over paths (the compiled one in
``prange``). Arguments are contiguous arrays and scalars only; column meanings are in
:mod:`abs_engine.kernels.layout`.

Period logic, in order:

1. collections of period t arrive (interest, scheduled principal, prepayments, recoveries);
   defaults leave the performing pool; realised losses create loss-compensation claims paid
   ``lag`` periods later; the clean-up call is tested on the performing balance;
2. available funds = cash carried + collections + compensation + call proceeds;
3. interest due per tranche (balance × coupon × accrual + carried shortfall), fees due,
   reserve targets (zero in the final period; any excess is released into available funds);
4. coverage ratios (available funds / fees + interest + principal due on the tranche and
   everything senior) and triggers decide the status: normal, accelerated, post-default;
5. the status's waterfall steps run on available funds;
6. in the final period every balance left is written off; otherwise shortfalls carry forward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numba import prange

from ._twin import jit_twin
from .bundles import Ledgers, WaterfallScratch
from .layout import (
    AF_AMOUNT,
    AF_FLOOR,
    AF_INITIAL,
    AF_RATE,
    AI_GROUP,
    AI_INCLUDE_FEES,
    AI_OF_KIND,
    AI_OF_TRANCHE,
    AI_TARGET_KIND,
    AMOUNT_AVAILABLE,
    BASE_NOTES,
    BASE_ORIGINAL_POOL,
    BASE_POOL,
    COUPON_FIXED,
    COUPON_FLOATING,
    COVERS_BOTH,
    COVERS_INTEREST,
    COVERS_PRINCIPAL,
    EFFECT_ACCELERATE,
    EFFECT_EVENT_OF_DEFAULT,
    EFFECT_TRAP,
    FEN,
    FF_CAP,
    FF_FIXED,
    FF_FLOOR,
    FF_RATE,
    FI_BASE_KIND,
    FI_BASE_TRANCHE,
    GF_THRESHOLD,
    GI_ACCOUNT,
    GI_CURABLE,
    GI_EFFECT,
    GI_GROUP,
    GI_KIND,
    GI_PERIODS,
    GI_SUPPORT,
    LA_BALANCE_END,
    LA_BALANCE_START,
    LA_DEPOSIT,
    LA_TARGET,
    LA_WITHDRAWAL,
    LF_DUE,
    LF_PAID,
    LF_UNPAID,
    LP_AVAILABLE,
    LP_CALL_PROCEEDS,
    LP_CASH_END,
    LP_CASH_IN,
    LP_CASH_RELEASED,
    LP_CASH_START,
    LP_COMPENSATION,
    LP_COVERAGE_RATIO,
    LP_CUM_DEFAULT_RATIO,
    LP_DEFAULT,
    LP_INTEREST,
    LP_LOSS,
    LP_PAID_OUT,
    LP_POOL_END,
    LP_POOL_START,
    LP_PREPAY,
    LP_RECOVERY,
    LP_SCHED_PRIN,
    LP_STATUS,
    LP_TRAPPED,
    LS_CUMULATIVE,
    LS_PAID,
    LS_PROVIDER_DEFAULTED,
    LS_REQUESTED,
    LT_BALANCE_END,
    LT_BALANCE_START,
    LT_COUPON_RATE,
    LT_COVERAGE_RATIO,
    LT_FROM_RESERVE,
    LT_FROM_SUPPORT,
    LT_INTEREST_DUE,
    LT_INTEREST_PAID,
    LT_INTEREST_SHORTFALL,
    LT_PRINCIPAL_DUE,
    LT_PRINCIPAL_PAID,
    LT_RESIDUAL_PAID,
    LT_WRITE_DOWN,
    MODE_PRO_RATA,
    N_STATUS,
    OP_DRAW_RESERVE,
    OP_DRAW_SUPPORT,
    OP_FUND_RESERVE,
    OP_PAY_FEE,
    OP_PAY_INTEREST,
    OP_PAY_PRINCIPAL,
    OP_PAY_RESIDUAL,
    OP_WRITE_OFF,
    OPC_A,
    OPC_B,
    OPC_C,
    OPC_CODE,
    PF_DEFAULT,
    PF_INTEREST,
    PF_LOSS,
    PF_PENDING_RECOVERY,
    PF_PREPAY,
    PF_RECOVERY,
    PF_SCHED_PRIN,
    PRIN_TARGET,
    SF_CAP,
    SF_SHARE,
    SI_COVERS,
    SI_GROUP,
    SI_KIND,
    SI_LAG,
    SP_CALL_PERIOD,
    SP_CASH_RELEASED,
    SP_COMPENSATION,
    SP_DEFAULT,
    SP_FIRST_TRIGGER_PERIOD,
    SP_LOSS,
    SP_MAX_STATUS,
    SP_MIN_COVERAGE,
    SP_PREPAY,
    SP_RECOVERY,
    SP_SUPPORT_PAID,
    ST_FIRST_SHORTFALL_PERIOD,
    ST_FROM_RESERVE,
    ST_FROM_SUPPORT,
    ST_INTEREST_PAID,
    ST_INTEREST_SHORTFALL,
    ST_LOSS,
    ST_MIN_COVERAGE,
    ST_PRINCIPAL_PAID,
    ST_RESIDUAL_PAID,
    ST_WAL_YEARS,
    STATUS_ACCELERATED,
    STATUS_NORMAL,
    STATUS_POST_DEFAULT,
    SUPPORT_COMPENSATION,
    TARGET_FIXED,
    TARGET_PERCENT,
    TF_BALANCE,
    TF_CAP,
    TF_FIXED_RATE,
    TF_FLOOR,
    TF_SPREAD,
    TF_STEP_SPREAD,
    TI_COUPON_KIND,
    TI_INTEREST_ON_SHORTFALL,
    TI_PRINCIPAL_KIND,
    TI_STEP_PERIOD,
    TRIG_COVERAGE,
    TRIG_CUM_DEFAULT,
    TRIG_MISSED_INTEREST,
    TRIG_SUPPORT_DEFAULT,
)

#: amounts below this (yuan) are treated as zero when deciding whether something is owed
EPS = 1e-9

# rows of the per-path scratch array work[row, :]
W_BAL = 0  # tranche balances
W_SHORT = 1  # interest shortfall carried into the period
W_FEE_DUE = 2  # fee due this period (current + unpaid carried)
W_FEE_UNPAID = 3  # fee unpaid carried into the period
W_ACC_BAL = 4  # account balances
W_ACC_TARGET = 5  # account targets this period
W_SUP_CUM = 6  # cumulative support paid
W_TRIG_COUNT = 7  # consecutive periods a coverage trigger has been below threshold
W_TRIG_LATCHED = 8  # 1.0 once a non-curable trigger has been breached
W_TRIG_MISSED = 9  # 1.0 if the trigger's tranches missed interest last period
W_PRIN_DUE = 10  # principal due per tranche at the start of the period (coverage ratio)
N_WORK = 11


def work_shape(n_tranches, n_fees, n_accounts, n_supports, n_triggers):
    """Shape of the scratch array one path needs: (N_WORK, max entity count)."""
    return (N_WORK, max(1, n_tranches, n_fees, n_accounts, n_supports, n_triggers))


def waterfall_scratch_py(n_tranches, n_fees, n_accounts, n_supports, n_triggers, n_periods):
    """A :class:`~abs_engine.kernels.bundles.WaterfallScratch` for one path at a time."""
    rows, cols = work_shape(n_tranches, n_fees, n_accounts, n_supports, n_triggers)
    return WaterfallScratch(np.zeros((rows, cols)), np.zeros((max(n_supports, 1), n_periods)))


# ---------------------------------------------------------------------------------------------
# phase helpers, in the order a period runs them


def _reset_py(deal, led, work, pending):
    """Zero the ledgers and the scratch; opening balances; summaries' "not yet" markers."""
    work[:, :] = 0.0
    pending[:, :] = 0.0
    led.tr[:, :, :] = 0.0
    led.fee[:, :, :] = 0.0
    led.acc[:, :, :] = 0.0
    led.sup[:, :, :] = 0.0
    led.per[:, :] = 0.0
    led.sum_tr[:, :] = 0.0
    led.sum_pool[:] = 0.0
    for j in range(deal.tranche_f.shape[0]):
        work[W_BAL, j] = deal.tranche_f[j, TF_BALANCE]
        led.sum_tr[j, ST_MIN_COVERAGE] = np.nan
        led.sum_tr[j, ST_FIRST_SHORTFALL_PERIOD] = -1.0
    for a in range(deal.account_f.shape[0]):
        work[W_ACC_BAL, a] = deal.account_f[a, AF_INITIAL]
    led.sum_pool[SP_FIRST_TRIGGER_PERIOD] = -1.0
    led.sum_pool[SP_CALL_PERIOD] = -1.0
    led.sum_pool[SP_MIN_COVERAGE] = np.nan
    return 0


def _compensation_py(t, n_t, loss, support_default_period, deal, led, work, pending):
    """Loss compensation of period t of n_t: book the claims ``loss`` creates (due ``lag``
    periods later), then receive what falls due now, up to each provider's cap. Returns the
    yuan received."""
    compensation = 0.0
    for s in range(deal.support_f.shape[0]):
        defaulted = support_default_period[s] <= t
        led.sup[t, s, LS_PROVIDER_DEFAULTED] = 1.0 if defaulted else 0.0
        if deal.support_i[s, SI_KIND] != SUPPORT_COMPENSATION:
            continue
        share = deal.support_f[s, SF_SHARE]
        due_t = t + deal.support_i[s, SI_LAG]
        if loss > 0.0:
            if due_t < n_t:
                pending[s, due_t] += share * loss
            else:
                # due after legal final: claimed now, never paid to the trust
                led.sup[t, s, LS_REQUESTED] += share * loss
        claim = pending[s, t]
        if claim > 0.0:
            led.sup[t, s, LS_REQUESTED] += claim
            if not defaulted:
                room = deal.support_f[s, SF_CAP] - work[W_SUP_CUM, s]
                x = claim if claim < room else room
                if x < 0.0:
                    x = 0.0
                work[W_SUP_CUM, s] += x
                led.sup[t, s, LS_PAID] = x
                compensation += x
    return compensation


def _call_proceeds_py(t, n_t, pool_end, pending_recovery, deal):
    """The clean-up call: the servicer buys the performing receivables at ``call_price`` and
    the defaulted ones awaiting disposal at their recovery value (only those defaulted by now;
    later defaults were bought performing) once the pool factor (performing balance /
    original, tolerance 1e-9) is at or below the call level; nothing performing, no call.
    Returns the proceeds (yuan) and whether the call happens."""
    if (
        deal.call_factor >= 0.0
        and t < n_t - 1
        and pool_end > 0.0
        and pool_end <= (deal.call_factor + 1e-9) * deal.original_pool
    ):
        return deal.call_price * pool_end + pending_recovery, True
    return 0.0, False


def _coupon_rate_py(deal, j, t, base_rate_t):
    """Annual coupon rate of tranche j in period t (decimal): fixed or floating (capped and
    floored), plus the step-up spread from its step period, floored at zero."""
    kind = deal.tranche_i[j, TI_COUPON_KIND]
    tf = deal.tranche_f
    if kind == COUPON_FIXED:
        rate = tf[j, TF_FIXED_RATE]
    elif kind == COUPON_FLOATING:
        rate = base_rate_t + tf[j, TF_SPREAD]
        if rate < tf[j, TF_FLOOR]:
            rate = tf[j, TF_FLOOR]
        if rate > tf[j, TF_CAP]:
            rate = tf[j, TF_CAP]
    else:
        rate = 0.0
    if t >= deal.tranche_i[j, TI_STEP_PERIOD]:
        rate += tf[j, TF_STEP_SPREAD]
    if rate < 0.0:
        rate = 0.0  # a note never charges its holder: coupons are floored at zero
    return rate


def _interest_due_py(t, base_rate_t, deal, led, work):
    """Interest due per tranche (balance × coupon × accrual + carried shortfall, with
    interest on the shortfall where the tranche says so). Returns the notes' balance."""
    n_j = deal.tranche_f.shape[0]
    notes = 0.0
    for j in range(n_j):
        notes += work[W_BAL, j]
    for j in range(n_j):
        rate = _coupon_rate_py(deal, j, t, base_rate_t)
        acc = deal.tranche_accrual[j, t]
        bal = work[W_BAL, j]
        accrued = bal * rate * acc
        if deal.tranche_i[j, TI_INTEREST_ON_SHORTFALL] != 0:
            accrued += work[W_SHORT, j] * rate * acc
        led.tr[t, j, LT_BALANCE_START] = bal
        led.tr[t, j, LT_COUPON_RATE] = rate
        led.tr[t, j, LT_INTEREST_DUE] = accrued + work[W_SHORT, j]
    return notes


def _base_amount_py(kind, tranche, pool_start, notes, original_pool, work):
    """The base a fee or a percentage reserve target is computed on (yuan): the pool at the
    start of the period, the notes, the original pool, or one tranche's balance."""
    if kind == BASE_POOL:
        return pool_start
    if kind == BASE_NOTES:
        return notes
    if kind == BASE_ORIGINAL_POOL:
        return original_pool
    return work[W_BAL, tranche]


def _fees_due_py(t, deal, led, work, pool_start, notes):
    """Fees due in period t (current, floored and capped, plus unpaid carried). Returns their
    total."""
    fees_due = 0.0
    ff = deal.fee_f
    for f in range(ff.shape[0]):
        base = _base_amount_py(
            deal.fee_i[f, FI_BASE_KIND],
            deal.fee_i[f, FI_BASE_TRANCHE],
            pool_start,
            notes,
            deal.original_pool,
            work,
        )
        cur = ff[f, FF_RATE] * base * deal.deal_accrual[t] + ff[f, FF_FIXED]
        if cur < ff[f, FF_FLOOR]:
            cur = ff[f, FF_FLOOR]
        if cur > ff[f, FF_CAP]:
            cur = ff[f, FF_CAP]
        due = cur + work[W_FEE_UNPAID, f]
        work[W_FEE_DUE, f] = due
        led.fee[t, f, LF_DUE] = due
        fees_due += due
    return fees_due


def _principal_due_py(t, deal, led, work, notes, pool_end, final):
    """Principal due per tranche at the start of the period, for the coverage ratios:
    sequential allocation of the par-to-pool amount, target-balance tranches down to their
    target, everything in the final period."""
    prin_left = notes - pool_end
    if prin_left < 0.0:
        prin_left = 0.0
    for j in range(deal.tranche_f.shape[0]):
        bal = work[W_BAL, j]
        if final:
            d = bal
        elif deal.tranche_i[j, TI_PRINCIPAL_KIND] == PRIN_TARGET:
            d = bal - deal.tranche_target[j, t]
            if d < 0.0:
                d = 0.0
        else:
            d = bal if bal < prin_left else prin_left
            prin_left -= d
        work[W_PRIN_DUE, j] = d
        led.tr[t, j, LT_PRINCIPAL_DUE] = d
    return 0


def _coverage_py(t, deal, led, work, avail, fees_due):
    """Coverage ratio per tranche: available funds / (fees if included + interest and
    principal due on the tranche and everything senior); NaN where nothing is owed. Updates
    the minima; returns the deal's headline ratio."""
    n_j = deal.tranche_f.shape[0]
    obligations = fees_due if deal.cr_include_fees != 0 else 0.0
    for j in range(n_j):
        obligations += led.tr[t, j, LT_INTEREST_DUE] + work[W_PRIN_DUE, j]
        if led.tr[t, j, LT_BALANCE_START] > EPS and obligations > EPS:
            cr = avail / obligations
            led.tr[t, j, LT_COVERAGE_RATIO] = cr
            m = led.sum_tr[j, ST_MIN_COVERAGE]
            if np.isnan(m) or cr < m:
                led.sum_tr[j, ST_MIN_COVERAGE] = cr
        else:
            led.tr[t, j, LT_COVERAGE_RATIO] = np.nan
    deal_cr = led.tr[t, deal.cr_tranche, LT_COVERAGE_RATIO] if n_j > 0 else np.nan
    led.per[t, LP_COVERAGE_RATIO] = deal_cr
    if not np.isnan(deal_cr):
        m = led.sum_pool[SP_MIN_COVERAGE]
        if np.isnan(m) or deal_cr < m:
            led.sum_pool[SP_MIN_COVERAGE] = deal_cr
    return deal_cr


def _status_py(t, deal, led, work, support_default_period, deal_cr, cum_default, final):
    """Triggers → the period's status (normal, accelerated, post-default; falling back to the
    nearest status that has a waterfall) and the account a cash trap fills (-1: none)."""
    status = STATUS_NORMAL
    trap_account = -1
    for g in range(deal.trigger_f.shape[0]):
        kind = deal.trigger_i[g, GI_KIND]
        thr = deal.trigger_f[g, GF_THRESHOLD]
        breached = False
        if kind == TRIG_CUM_DEFAULT:
            op = deal.original_pool
            breached = op > 0.0 and cum_default / op > thr
        elif kind == TRIG_COVERAGE:
            if (not np.isnan(deal_cr)) and deal_cr < thr:
                work[W_TRIG_COUNT, g] += 1.0
            else:
                work[W_TRIG_COUNT, g] = 0.0
            breached = work[W_TRIG_COUNT, g] >= deal.trigger_i[g, GI_PERIODS]
        elif kind == TRIG_SUPPORT_DEFAULT:
            breached = support_default_period[deal.trigger_i[g, GI_SUPPORT]] <= t
        elif kind == TRIG_MISSED_INTEREST:
            breached = work[W_TRIG_MISSED, g] > 0.0
        if deal.trigger_i[g, GI_CURABLE] == 0:
            if breached:
                work[W_TRIG_LATCHED, g] = 1.0
            active = work[W_TRIG_LATCHED, g] > 0.0
        else:
            active = breached
        if active:
            eff = deal.trigger_i[g, GI_EFFECT]
            if eff == EFFECT_ACCELERATE and status < STATUS_ACCELERATED:
                status = STATUS_ACCELERATED
            elif eff == EFFECT_EVENT_OF_DEFAULT:
                status = STATUS_POST_DEFAULT
            elif eff == EFFECT_TRAP and not final:
                trap_account = deal.trigger_i[g, GI_ACCOUNT]
    while status > 0 and deal.n_steps[status] == 0:
        status -= 1
    led.per[t, LP_STATUS] = status
    if status != STATUS_NORMAL and led.sum_pool[SP_FIRST_TRIGGER_PERIOD] < 0.0:
        led.sum_pool[SP_FIRST_TRIGGER_PERIOD] = t
    return status, trap_account


def _account_target_py(t, a, deal, led, work, pool_start, notes, final):
    """Target balance of account a in period t (yuan): fixed, a percentage of a base (with a
    floor), or next period's interest (and fees) on a tranche group; zero in the final
    period."""
    tk = deal.account_i[a, AI_TARGET_KIND]
    af = deal.account_f
    if final:
        return 0.0
    if tk == TARGET_FIXED:
        return af[a, AF_AMOUNT]
    if tk == TARGET_PERCENT:
        base = _base_amount_py(
            deal.account_i[a, AI_OF_KIND],
            deal.account_i[a, AI_OF_TRANCHE],
            pool_start,
            notes,
            deal.original_pool,
            work,
        )
        target = af[a, AF_RATE] * base
        if target < af[a, AF_FLOOR]:
            target = af[a, AF_FLOOR]
        return target
    # next period's interest on the group, on this period's opening balances
    target = 0.0
    g = deal.account_i[a, AI_GROUP]
    if t + 1 < deal.tranche_accrual.shape[1]:
        for m in range(deal.group_len[g]):
            j = deal.groups[g, m]
            target += (
                led.tr[t, j, LT_BALANCE_START]
                * led.tr[t, j, LT_COUPON_RATE]
                * (deal.tranche_accrual[j, t + 1])
            )
        if deal.account_i[a, AI_INCLUDE_FEES] != 0:
            for f in range(deal.fee_f.shape[0]):
                target += work[W_FEE_DUE, f] - work[W_FEE_UNPAID, f]
    return target


def _reserve_targets_py(t, deal, led, work, pool_start, notes, final, trap_account, avail):
    """Set each account's target; release any excess over it into available funds (a trap
    account keeps its cash while the trap is active). Returns available funds."""
    for a in range(deal.account_f.shape[0]):
        target = _account_target_py(t, a, deal, led, work, pool_start, notes, final)
        work[W_ACC_TARGET, a] = target
        bal = work[W_ACC_BAL, a]
        led.acc[t, a, LA_BALANCE_START] = bal
        led.acc[t, a, LA_TARGET] = target
        if bal > target and a != trap_account:
            led.acc[t, a, LA_WITHDRAWAL] += bal - target
            avail += bal - target
            work[W_ACC_BAL, a] = target
    return avail


# ---------------------------------------------------------------------------------------------
# one helper per opcode: each takes the funds available and returns what is left


def _pay_fee_py(t, f, led, work, avail):
    """OP_PAY_FEE: fee f, up to what is due."""
    owed = work[W_FEE_DUE, f] - led.fee[t, f, LF_PAID]
    x = owed if owed < avail else avail
    if x > 0.0:
        led.fee[t, f, LF_PAID] += x
        avail -= x
    return avail


def _pay_interest_py(t, group, mode, deal, led, avail):
    """OP_PAY_INTEREST: interest due on a tranche group, in order or pro rata."""
    n_m = deal.group_len[group]
    tr = led.tr
    if mode == MODE_PRO_RATA:
        owed = 0.0
        for m in range(n_m):
            j = deal.groups[group, m]
            owed += tr[t, j, LT_INTEREST_DUE] - tr[t, j, LT_INTEREST_PAID]
        if owed > EPS and avail > 0.0:
            frac = avail / owed if avail < owed else 1.0
            for m in range(n_m):
                j = deal.groups[group, m]
                x = (tr[t, j, LT_INTEREST_DUE] - tr[t, j, LT_INTEREST_PAID]) * frac
                tr[t, j, LT_INTEREST_PAID] += x
                avail -= x
            if avail < 0.0:
                avail = 0.0
    else:
        for m in range(n_m):
            j = deal.groups[group, m]
            owed = tr[t, j, LT_INTEREST_DUE] - tr[t, j, LT_INTEREST_PAID]
            x = owed if owed < avail else avail
            if x > 0.0:
                tr[t, j, LT_INTEREST_PAID] += x
                avail -= x
    return avail


def _pay_principal_py(t, group, mode, amount, deal, led, work, pool_end, final, avail):
    """OP_PAY_PRINCIPAL: principal on a tranche group, in order or pro rata; the budget is
    the notes above the performing pool (capped by available funds), or all available funds
    (``AMOUNT_AVAILABLE``, and always in the final period)."""
    n_m = deal.group_len[group]
    tr = led.tr
    notes_now = 0.0
    for j in range(deal.tranche_f.shape[0]):
        notes_now += work[W_BAL, j]
    if amount == AMOUNT_AVAILABLE or final:
        budget = avail
    else:
        budget = notes_now - pool_end
        if budget < 0.0:
            budget = 0.0
        if budget > avail:
            budget = avail
    if mode == MODE_PRO_RATA:
        tot = 0.0
        for m in range(n_m):
            tot += work[W_BAL, deal.groups[group, m]]
        if tot > EPS and budget > 0.0:
            frac = budget / tot if budget < tot else 1.0
            for m in range(n_m):
                j = deal.groups[group, m]
                x = work[W_BAL, j] * frac
                work[W_BAL, j] -= x
                tr[t, j, LT_PRINCIPAL_PAID] += x
                avail -= x
            if avail < 0.0:
                avail = 0.0
    else:
        for m in range(n_m):
            j = deal.groups[group, m]
            owed = work[W_BAL, j]
            if (
                deal.tranche_i[j, TI_PRINCIPAL_KIND] == PRIN_TARGET
                and not final
                and (amount != AMOUNT_AVAILABLE)
            ):
                owed = owed - deal.tranche_target[j, t]
            x = owed
            if x > budget:
                x = budget
            if x > 0.0:
                work[W_BAL, j] -= x
                tr[t, j, LT_PRINCIPAL_PAID] += x
                avail -= x
                budget -= x
    return avail


def _fund_reserve_py(t, a, led, work, avail):
    """OP_FUND_RESERVE: account a up to its target."""
    need = work[W_ACC_TARGET, a] - work[W_ACC_BAL, a]
    x = need if need < avail else avail
    if x > 0.0:
        work[W_ACC_BAL, a] += x
        led.acc[t, a, LA_DEPOSIT] += x
        avail -= x
    return avail


def _draw_reserve_py(t, a, group, covers, deal, led, work):
    """OP_DRAW_RESERVE: account a pays a group's unpaid interest, or principal due."""
    tr = led.tr
    for m in range(deal.group_len[group]):
        j = deal.groups[group, m]
        if covers == COVERS_INTEREST:
            owed = tr[t, j, LT_INTEREST_DUE] - tr[t, j, LT_INTEREST_PAID]
        else:
            owed = work[W_PRIN_DUE, j] - tr[t, j, LT_PRINCIPAL_PAID]
            if owed > work[W_BAL, j]:
                owed = work[W_BAL, j]
        x = owed if owed < work[W_ACC_BAL, a] else work[W_ACC_BAL, a]
        if x > 0.0:
            work[W_ACC_BAL, a] -= x
            led.acc[t, a, LA_WITHDRAWAL] += x
            tr[t, j, LT_FROM_RESERVE] += x
            if covers == COVERS_INTEREST:
                tr[t, j, LT_INTEREST_PAID] += x
            else:
                work[W_BAL, j] -= x
                tr[t, j, LT_PRINCIPAL_PAID] += x
    return 0


def _draw_support_py(t, s, deal, led, work, support_default_period, final, cash_in):
    """OP_DRAW_SUPPORT: support s pays its group's unpaid interest and, in the final period,
    principal (as it covers), up to its cap, unless its provider has defaulted. Returns the
    period's cash into the trust, ``cash_in`` plus each amount drawn."""
    tr = led.tr
    g = deal.support_i[s, SI_GROUP]
    cov = deal.support_i[s, SI_COVERS]
    for m in range(deal.group_len[g]):
        j = deal.groups[g, m]
        for part in range(2):
            if part == 0:
                if cov != COVERS_INTEREST and cov != COVERS_BOTH:
                    continue
                owed = tr[t, j, LT_INTEREST_DUE] - tr[t, j, LT_INTEREST_PAID]
            else:
                if cov != COVERS_PRINCIPAL and cov != COVERS_BOTH:
                    continue
                if not final:
                    continue
                owed = work[W_BAL, j]
            if owed <= EPS:
                continue
            led.sup[t, s, LS_REQUESTED] += owed
            if support_default_period[s] <= t:
                continue
            room = deal.support_f[s, SF_CAP] - work[W_SUP_CUM, s]
            x = owed if owed < room else room
            if x <= 0.0:
                continue
            work[W_SUP_CUM, s] += x
            led.sup[t, s, LS_PAID] += x
            cash_in += x
            tr[t, j, LT_FROM_SUPPORT] += x
            if part == 0:
                tr[t, j, LT_INTEREST_PAID] += x
            else:
                work[W_BAL, j] -= x
                tr[t, j, LT_PRINCIPAL_PAID] += x
    return cash_in


def _write_off_py(t, deal, led, work, pool_end, pending_recovery, final):
    """OP_WRITE_OFF: the principal deficiency (notes above the performing pool and the
    recoveries still to come from receivables defaulted by now; after a call or in the final
    period nothing is to come) is written down from the most junior tranche up."""
    n_j = deal.tranche_f.shape[0]
    deficiency = -pool_end
    if not final:
        deficiency -= pending_recovery
    for j in range(n_j):
        deficiency += work[W_BAL, j]
    for jj in range(n_j):
        if deficiency <= EPS:
            break
        j = n_j - 1 - jj
        x = work[W_BAL, j] if work[W_BAL, j] < deficiency else deficiency
        if x > 0.0:
            work[W_BAL, j] -= x
            led.tr[t, j, LT_WRITE_DOWN] += x
            deficiency -= x
    return 0


def _pay_residual_py(t, j, led, work, trap_account, avail):
    """OP_PAY_RESIDUAL: everything left to the residual tranche j, or into the trap account
    while a cash trap is active."""
    if avail > 0.0:
        if trap_account >= 0:
            work[W_ACC_BAL, trap_account] += avail
            led.acc[t, trap_account, LA_DEPOSIT] += avail
            led.per[t, LP_TRAPPED] += avail
        else:
            led.tr[t, j, LT_RESIDUAL_PAID] += avail
        avail = 0.0
    return avail


def _run_steps_py(t, status, pool_flows, support_default_period, deal, led, work, pool_end,
                  final, trap_account, avail, cash_in):  # fmt: skip
    """The priority of payments of ``status`` on available funds. Returns (available funds
    left, the period's cash in with the support drawn added)."""
    for k in range(deal.n_steps[status]):
        op = deal.ops[status, k, OPC_CODE]
        pa = deal.ops[status, k, OPC_A]
        pb = deal.ops[status, k, OPC_B]
        pc = deal.ops[status, k, OPC_C]
        if op == OP_PAY_FEE:
            avail = _pay_fee_py(t, pa, led, work, avail)
        elif op == OP_PAY_INTEREST:
            avail = _pay_interest_py(t, pa, pb, deal, led, avail)
        elif op == OP_PAY_PRINCIPAL:
            avail = _pay_principal_py(t, pa, pb, pc, deal, led, work, pool_end, final, avail)
        elif op == OP_FUND_RESERVE:
            avail = _fund_reserve_py(t, pa, led, work, avail)
        elif op == OP_DRAW_RESERVE:
            _draw_reserve_py(t, pa, pb, pc, deal, led, work)
        elif op == OP_DRAW_SUPPORT:
            cash_in = _draw_support_py(
                t, pa, deal, led, work, support_default_period, final, cash_in
            )
        elif op == OP_WRITE_OFF:
            _write_off_py(t, deal, led, work, pool_end, pool_flows[PF_PENDING_RECOVERY, t], final)
        elif op == OP_PAY_RESIDUAL:
            avail = _pay_residual_py(t, pa, led, work, trap_account, avail)
    return avail, cash_in


def _close_period_py(t, deal, led, work, final):
    """Carry unpaid fees and interest shortfalls forward, write off what is left in the final
    period, record closing balances and the missed-interest flags. Returns the yuan paid out
    to fees and tranches."""
    tr = led.tr
    paid_out = 0.0
    for f in range(deal.fee_f.shape[0]):
        paid = led.fee[t, f, LF_PAID]
        paid_out += paid
        unpaid = work[W_FEE_DUE, f] - paid
        if unpaid < EPS:
            unpaid = 0.0
        led.fee[t, f, LF_UNPAID] = unpaid
        work[W_FEE_UNPAID, f] = unpaid
    for j in range(deal.tranche_f.shape[0]):
        short = tr[t, j, LT_INTEREST_DUE] - tr[t, j, LT_INTEREST_PAID]
        if short < EPS:
            short = 0.0
        if short > FEN and led.sum_tr[j, ST_FIRST_SHORTFALL_PERIOD] < 0.0:
            led.sum_tr[j, ST_FIRST_SHORTFALL_PERIOD] = t
        tr[t, j, LT_INTEREST_SHORTFALL] = short
        work[W_SHORT, j] = short
        if final and work[W_BAL, j] > 0.0:
            tr[t, j, LT_WRITE_DOWN] += work[W_BAL, j]
            work[W_BAL, j] = 0.0
        if work[W_BAL, j] < 1e-7:
            work[W_BAL, j] = 0.0
        tr[t, j, LT_BALANCE_END] = work[W_BAL, j]
        paid_out += (
            tr[t, j, LT_INTEREST_PAID] + tr[t, j, LT_PRINCIPAL_PAID] + tr[t, j, LT_RESIDUAL_PAID]
        )
    for a in range(deal.account_f.shape[0]):
        led.acc[t, a, LA_BALANCE_END] = work[W_ACC_BAL, a]
    for s in range(deal.support_f.shape[0]):
        led.sup[t, s, LS_CUMULATIVE] = work[W_SUP_CUM, s]
    for g in range(deal.trigger_f.shape[0]):
        if deal.trigger_i[g, GI_KIND] == TRIG_MISSED_INTEREST:
            gr = deal.trigger_i[g, GI_GROUP]
            miss = 0.0
            for m in range(deal.group_len[gr]):
                miss += tr[t, deal.groups[gr, m], LT_INTEREST_SHORTFALL]
            work[W_TRIG_MISSED, g] = 1.0 if miss > FEN else 0.0
    return paid_out


def _summaries_py(deal, led, work, last_period, max_status):
    """Per-path summaries from the ledgers: tranche totals, WAL, the interest still unpaid
    when the deal ended; pool totals, support paid, the worst status."""
    n_t = led.tr.shape[0]
    tr = led.tr
    st = led.sum_tr
    for j in range(deal.tranche_f.shape[0]):
        wal_num = 0.0
        for t in range(n_t):
            pp = tr[t, j, LT_PRINCIPAL_PAID]
            st[j, ST_PRINCIPAL_PAID] += pp
            st[j, ST_INTEREST_PAID] += tr[t, j, LT_INTEREST_PAID]
            st[j, ST_LOSS] += tr[t, j, LT_WRITE_DOWN]
            st[j, ST_FROM_SUPPORT] += tr[t, j, LT_FROM_SUPPORT]
            st[j, ST_FROM_RESERVE] += tr[t, j, LT_FROM_RESERVE]
            st[j, ST_RESIDUAL_PAID] += tr[t, j, LT_RESIDUAL_PAID]
            wal_num += pp * deal.years[t]
        # interest still unpaid when the deal ended (final period or clean-up call)
        st[j, ST_INTEREST_SHORTFALL] = tr[last_period, j, LT_INTEREST_SHORTFALL]
        if st[j, ST_PRINCIPAL_PAID] > EPS:
            st[j, ST_WAL_YEARS] = wal_num / st[j, ST_PRINCIPAL_PAID]
        else:
            st[j, ST_WAL_YEARS] = np.nan
    sp = led.sum_pool
    for t in range(n_t):
        sp[SP_DEFAULT] += led.per[t, LP_DEFAULT]
        sp[SP_RECOVERY] += led.per[t, LP_RECOVERY]
        sp[SP_LOSS] += led.per[t, LP_LOSS]
        sp[SP_PREPAY] += led.per[t, LP_PREPAY]
        sp[SP_COMPENSATION] += led.per[t, LP_COMPENSATION]
    for s in range(deal.support_f.shape[0]):
        if deal.support_i[s, SI_KIND] != SUPPORT_COMPENSATION:
            sp[SP_SUPPORT_PAID] += work[W_SUP_CUM, s]
    sp[SP_MAX_STATUS] = max_status
    return 0


# ---------------------------------------------------------------------------------------------
# one path


def waterfall_path_py(pool_flows, support_default_period, base_rate, deal, led, scratch):
    """Run one path through the waterfall.

    Parameters
    ----------
    pool_flows : float64[N_PF, T]
        Pool collections of this path per period (yuan), rows ``PF_*``.
    support_default_period : int64[S]
        0-based period in which each support's provider defaults; >= T means never.
    base_rate : float64[T]
        Annual base rate for floating coupons (decimal).
    deal : DealArrays
        The deal's static arrays (:mod:`abs_engine.kernels.bundles`).
    led : Ledgers, written
        Ledgers [T, ...] and per-path summaries of this path.
    scratch : WaterfallScratch
        Running balances and pending claims, overwritten.
    """
    n_t = pool_flows.shape[1]
    work = scratch.work
    per = led.per
    _reset_py(deal, led, work, scratch.pending)
    original_pool = deal.original_pool
    pool_bal = original_pool
    last_period = n_t - 1
    cum_default = 0.0
    cash = 0.0
    max_status = 0
    for t in range(n_t):
        # ---- 1. collections, compensation, the clean-up call ----
        sched = pool_flows[PF_SCHED_PRIN, t]
        prepay = pool_flows[PF_PREPAY, t]
        dflt = pool_flows[PF_DEFAULT, t]
        pool_start = pool_bal
        pool_end = pool_start - sched - prepay - dflt
        if pool_end < 1e-6:
            pool_end = 0.0
        cum_default += dflt
        per[t, LP_POOL_START] = pool_start
        per[t, LP_INTEREST] = pool_flows[PF_INTEREST, t]
        per[t, LP_SCHED_PRIN] = sched
        per[t, LP_PREPAY] = prepay
        per[t, LP_DEFAULT] = dflt
        per[t, LP_RECOVERY] = pool_flows[PF_RECOVERY, t]
        per[t, LP_LOSS] = pool_flows[PF_LOSS, t]
        per[t, LP_CUM_DEFAULT_RATIO] = cum_default / original_pool if original_pool > 0 else 0.0
        collections = pool_flows[PF_INTEREST, t] + sched + prepay + pool_flows[PF_RECOVERY, t]
        compensation = _compensation_py(
            t,
            n_t,
            pool_flows[PF_LOSS, t],
            support_default_period,
            deal,
            led,
            work,
            scratch.pending,
        )
        call_proceeds, called = _call_proceeds_py(
            t, n_t, pool_end, pool_flows[PF_PENDING_RECOVERY, t], deal
        )
        if called:
            pool_end = 0.0
            led.sum_pool[SP_CALL_PERIOD] = t
        final = called or t == n_t - 1
        per[t, LP_POOL_END] = pool_end
        per[t, LP_COMPENSATION] = compensation
        per[t, LP_CALL_PROCEEDS] = call_proceeds
        per[t, LP_CASH_START] = cash
        avail = cash + collections + compensation + call_proceeds
        cash_in = collections + compensation + call_proceeds
        per[t, LP_AVAILABLE] = avail

        # ---- 2. amounts due, coverage ratios and triggers, reserve targets ----
        notes = _interest_due_py(t, base_rate[t], deal, led, work)
        fees_due = _fees_due_py(t, deal, led, work, pool_start, notes)
        _principal_due_py(t, deal, led, work, notes, pool_end, final)
        deal_cr = _coverage_py(t, deal, led, work, avail, fees_due)
        status, trap_account = _status_py(
            t, deal, led, work, support_default_period, deal_cr, cum_default, final
        )
        if status > max_status:
            max_status = status
        avail = _reserve_targets_py(t, deal, led, work, pool_start, notes, final, trap_account,
                                    avail)  # fmt: skip

        # ---- 3. the priority of payments ----
        avail, cash_in = _run_steps_py(t, status, pool_flows, support_default_period, deal, led,
                                       work, pool_end, final, trap_account, avail,
                                       cash_in)  # fmt: skip

        # ---- 4. close the period ----
        paid_out = _close_period_py(t, deal, led, work, final)
        if avail < 0.0:
            avail = 0.0
        if final:
            # the trust closes: cash no step paid out leaves it, on the record
            per[t, LP_CASH_RELEASED] = avail
            led.sum_pool[SP_CASH_RELEASED] = avail
            avail = 0.0
        cash = avail
        per[t, LP_CASH_END] = cash
        per[t, LP_CASH_IN] = cash_in
        per[t, LP_PAID_OUT] = paid_out
        pool_bal = pool_end
        if final:
            last_period = t
            break
    _summaries_py(deal, led, work, last_period, max_status)
    return 0


def run_paths_py(pool_flows, support_default_period, base_rate, deal, led, work_rows, work_cols):
    """Loop over paths: ``pool_flows[p]`` → ledgers and summaries ``led.*[p]`` (a
    :class:`~abs_engine.kernels.bundles.Ledgers` with a leading path axis P). Shapes as in
    :func:`waterfall_path_py`. In plain Python ``prange`` is ``range``; :data:`run_paths` is
    the compiled, parallel twin."""
    n_p = pool_flows.shape[0]
    n_t = pool_flows.shape[2]
    n_s = deal.support_f.shape[0]
    for p in prange(n_p):
        scratch = WaterfallScratch(np.empty((work_rows, work_cols)), np.empty((max(n_s, 1), n_t)))
        path_led = Ledgers(led.tr[p], led.fee[p], led.acc[p], led.sup[p], led.per[p],
                           led.sum_tr[p], led.sum_pool[p])  # fmt: skip
        waterfall_path_py(
            pool_flows[p], support_default_period[p], base_rate[p], deal, path_led, scratch
        )
    return 0


# ---------------------------------------------------------------------------------------------
# the compiled twins: each helper compiled once, the callers pointed at the compiled helpers

_coupon_rate = jit_twin(_coupon_rate_py, cache=True)
_base_amount = jit_twin(_base_amount_py, cache=True)
_HELPERS = {"_coupon_rate_py": _coupon_rate, "_base_amount_py": _base_amount}
_account_target = jit_twin(_account_target_py, _HELPERS, cache=True)
_HELPERS["_account_target_py"] = _account_target
_PHASES: list[tuple[str, Callable[..., Any]]] = [
    ("_reset_py", _reset_py),
    ("_compensation_py", _compensation_py),
    ("_call_proceeds_py", _call_proceeds_py),
    ("_interest_due_py", _interest_due_py),
    ("_fees_due_py", _fees_due_py),
    ("_principal_due_py", _principal_due_py),
    ("_coverage_py", _coverage_py),
    ("_status_py", _status_py),
    ("_reserve_targets_py", _reserve_targets_py),
    ("_pay_fee_py", _pay_fee_py),
    ("_pay_interest_py", _pay_interest_py),
    ("_pay_principal_py", _pay_principal_py),
    ("_fund_reserve_py", _fund_reserve_py),
    ("_draw_reserve_py", _draw_reserve_py),
    ("_draw_support_py", _draw_support_py),
    ("_write_off_py", _write_off_py),
    ("_pay_residual_py", _pay_residual_py),
    ("_close_period_py", _close_period_py),
    ("_summaries_py", _summaries_py),
]
for _name, _fn in _PHASES:
    _HELPERS[_name] = jit_twin(_fn, _HELPERS, cache=True)
_HELPERS["_run_steps_py"] = jit_twin(_run_steps_py, _HELPERS, cache=True)
waterfall_path = jit_twin(waterfall_path_py, _HELPERS, cache=True)
waterfall_scratch = jit_twin(waterfall_scratch_py, {"work_shape": jit_twin(work_shape)}, cache=True)
run_paths = jit_twin(run_paths_py, {"waterfall_path_py": waterfall_path}, cache=True, parallel=True)


__all__ = [
    "N_STATUS",
    "N_WORK",
    "run_paths",
    "run_paths_py",
    "waterfall_path",
    "waterfall_path_py",
    "waterfall_scratch",
    "waterfall_scratch_py",
    "work_shape",
]
