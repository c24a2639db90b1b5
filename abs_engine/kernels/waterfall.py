"""The waterfall interpreter: one path of pool flows through the deal's priority of payments.

``waterfall_path_py`` is the plain-Python reference; ``waterfall_path`` is the same function
compiled by numba. ``run_paths_py`` / ``run_paths`` loop over paths. Arguments are per-path
arrays and the named bundles of :mod:`abs_engine.kernels.bundles`; column meanings are in
:mod:`abs_engine.kernels.layout`.

Period logic, in order:

1. collections of period t arrive (interest, scheduled principal, prepayments, recoveries);
   defaults leave the performing pool; realised losses create loss-compensation claims paid
   ``lag`` periods later; the clean-up call is tested on the performing balance;
2. available funds = cash carried + collections + compensation + call proceeds;
3. interest due per tranche (balance × coupon × accrual + carried shortfall), fees due,
   reserve targets (zero in the final period; any excess is released into available funds);
4. coverage ratios (available funds / fees + interest + principal due on the tranche's class
   and everything senior) and triggers decide the status: normal, accelerated, post-default;
5. the status's waterfall steps run on available funds;
6. in the final period every balance left is written off; otherwise shortfalls carry forward.
"""

from __future__ import annotations

import numpy as np

from ._link import bound_call
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
    MODE_SEQUENTIAL,
    N_LA,
    N_LF,
    N_LP,
    N_LS,
    N_LT,
    N_SP,
    N_ST,
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
    PRIN_PRO_RATA,
    PRIN_TARGET,
    RATE_TIE,
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
    TI_CLASS,
    TI_CLASS_END,
    TI_COUPON_KIND,
    TI_INTEREST_ON_SHORTFALL,
    TI_PRINCIPAL_KIND,
    TI_RUN,
    TI_RUN_END,
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

# columns of the checkpointed loop state ``WaterfallScratch.ck_state[t, :]`` (at period t's start)
CK_POOL_BAL = 0  # performing pool balance (yuan)
CK_CUM_DEFAULT = 1  # cumulative defaults (yuan)
CK_CASH = 2  # cash carried into the period (yuan)
CK_ENDED = 3  # 1.0 once the deal has ended (final period or clean-up call)
CK_MAX_STATUS = 4  # highest status reached so far
CK_LAST_PERIOD = 5  # the period the deal ended in (T - 1 until it ends)
N_CK = 6


def work_shape(n_tranches, n_fees, n_accounts, n_supports, n_triggers):
    """Shape of the scratch array one path needs: (N_WORK, max entity count)."""
    return (N_WORK, max(1, n_tranches, n_fees, n_accounts, n_supports, n_triggers))


def waterfall_scratch_py(n_tranches, n_fees, n_accounts, n_supports, n_triggers, n_periods,
                         checkpoints=False):  # fmt: skip
    """A :class:`~abs_engine.kernels.bundles.WaterfallScratch` for one path at a time, with
    room for a checkpoint at the start of each period and at the end (``checkpoints``), or
    none (zero-length checkpoint arrays: a path can then neither save nor restart)."""
    rows, cols = work_shape(n_tranches, n_fees, n_accounts, n_supports, n_triggers)
    n_s = max(n_supports, 1)
    n_c = n_periods + 1 if checkpoints else 0
    return WaterfallScratch(
        np.zeros((rows, cols)),
        np.zeros((n_s, n_periods)),
        np.zeros((n_c, rows, cols)),
        np.zeros((n_c, n_s, n_periods)),
        np.zeros((n_c, max(n_tranches, 0), N_ST)),
        np.zeros((n_c, N_SP)),
        np.zeros((n_c, N_CK)),
    )


def ledgers_py(n_periods, n_tranches, n_fees, n_accounts, n_supports):
    """Zeroed :class:`~abs_engine.kernels.bundles.Ledgers` for one path: per period × tranche,
    fee, account and support, per period, and the path's summaries."""
    return Ledgers(
        np.zeros((n_periods, n_tranches, N_LT)),
        np.zeros((n_periods, n_fees, N_LF)),
        np.zeros((n_periods, n_accounts, N_LA)),
        np.zeros((n_periods, n_supports, N_LS)),
        np.zeros((n_periods, N_LP)),
        np.zeros((n_tranches, N_ST)),
        np.zeros(N_SP),
    )


def base_amount_py(kind, pool_start, notes, original_pool, tranche_balance):
    """The balance a fee's rate or a percent reserve target applies to (yuan), by ``BASE_*``
    code: the pool at the period's start, the notes, the original pool, or the tranche's
    balance (``tranche_balance``, read whatever the code: its index is -1 otherwise)."""
    base = tranche_balance
    if kind == BASE_POOL:
        base = pool_start
    elif kind == BASE_NOTES:
        base = notes
    elif kind == BASE_ORIGINAL_POOL:
        base = original_pool
    return base


def _pay_fee_py(t, f, avail, work, led_fee):
    """``pay_fee``: fee f's amount still owed this period, as far as ``avail`` goes; returns
    what is left available (yuan)."""
    owed = work[W_FEE_DUE, f] - led_fee[t, f, LF_PAID]
    x = owed if owed < avail else avail
    if x > 0.0:
        led_fee[t, f, LF_PAID] += x
        avail -= x
    return avail


def _pay_interest_py(t, g, mode, avail, groups, group_len, led_tr):
    """``pay_interest`` on tranche group g: the interest still owed, pro rata
    (``MODE_PRO_RATA``) or in order; returns what is left available."""
    n_m = group_len[g]
    if mode == MODE_PRO_RATA:
        owed = 0.0
        for m in range(n_m):
            j = groups[g, m]
            owed += led_tr[t, j, LT_INTEREST_DUE] - led_tr[t, j, LT_INTEREST_PAID]
        if owed > EPS and avail > 0.0:
            frac = avail / owed if avail < owed else 1.0
            for m in range(n_m):
                j = groups[g, m]
                x = (led_tr[t, j, LT_INTEREST_DUE] - led_tr[t, j, LT_INTEREST_PAID]) * frac
                led_tr[t, j, LT_INTEREST_PAID] += x
                avail -= x
            if avail < 0.0:
                avail = 0.0
    else:
        for m in range(n_m):
            j = groups[g, m]
            owed = led_tr[t, j, LT_INTEREST_DUE] - led_tr[t, j, LT_INTEREST_PAID]
            x = owed if owed < avail else avail
            if x > 0.0:
                led_tr[t, j, LT_INTEREST_PAID] += x
                avail -= x
    return avail


def _class_end_py(g, m, first_col, end_col, groups, group_len, tranche_i):
    """The end of the run of group g's members from m that are listed together and belong
    to one class: one ``tranche_i[:, first_col]``, ``TI_CLASS`` (a pari-passu class, drawn
    for together) or ``TI_RUN`` (a pro-rata run, paid together); m + 1 for a tranche whose
    class it alone is (``end_col`` one past its first)."""
    end = m + 1
    j = groups[g, m]
    if tranche_i[j, end_col] - tranche_i[j, first_col] > 1:
        c = tranche_i[j, first_col]
        while end < group_len[g] and tranche_i[groups[g, end], first_col] == c:
            end += 1
    return end


def _pay_class_py(t, g, m, end, budget, avail, groups, work, led_tr):
    """A sequential step's pay of a pro-rata run (group g's members m .. end - 1): the
    budget shared by balance, as a pro-rata step pays; returns (budget, avail) left."""
    tot = 0.0
    for k in range(m, end):
        tot += work[W_BAL, groups[g, k]]
    if tot > EPS and budget > 0.0:
        frac = budget / tot if budget < tot else 1.0
        for k in range(m, end):
            j = groups[g, k]
            x = work[W_BAL, j] * frac
            work[W_BAL, j] -= x
            led_tr[t, j, LT_PRINCIPAL_PAID] += x
            avail -= x
            budget -= x
        if avail < 0.0:
            avail = 0.0
        if budget < 0.0:
            budget = 0.0
    return budget, avail


def _pay_one_py(t, j, amount, budget, avail, final, tranche_i, tranche_target, work, led_tr):
    """A sequential step's pay of tranche j alone: its balance, at most the budget (a
    target-balance tranche down to its target, out of all available); returns (budget,
    avail) left."""
    owed = work[W_BAL, j]
    cap = budget
    scheduled = tranche_i[j, TI_PRINCIPAL_KIND] == PRIN_TARGET
    if scheduled and not final and (amount != AMOUNT_AVAILABLE):
        owed = owed - tranche_target[j, t]
        cap = avail
    x = owed
    if x > cap:
        x = cap
    if x > 0.0:
        work[W_BAL, j] -= x
        led_tr[t, j, LT_PRINCIPAL_PAID] += x
        avail -= x
        budget -= x
        if budget < 0.0:
            budget = 0.0
    return budget, avail


def _pay_principal_py(t, g, mode, amount, avail, final, pool_end, groups, group_len, tranche_i,
                      tranche_target, work, led_tr):  # fmt: skip
    """``pay_principal`` on tranche group g, pro rata or in order (a pro-rata run listed
    together in order: by balance, :func:`_pay_class_py`): of everything available
    (``AMOUNT_AVAILABLE``, and in the final period) or of the notes' excess over the performing
    pool; returns what is left available. A target-balance tranche (in order: the compiler
    refuses one in a pro-rata step of principal due) is paid down to its target out of all
    that is available, its schedule being owed whatever the pool did, and what it takes
    comes out of the excess left to the tranches after it."""
    n_m = group_len[g]
    notes_now = 0.0
    for j in range(tranche_i.shape[0]):
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
            tot += work[W_BAL, groups[g, m]]
        if tot > EPS and budget > 0.0:
            frac = budget / tot if budget < tot else 1.0
            for m in range(n_m):
                j = groups[g, m]
                x = work[W_BAL, j] * frac
                work[W_BAL, j] -= x
                led_tr[t, j, LT_PRINCIPAL_PAID] += x
                avail -= x
            if avail < 0.0:
                avail = 0.0
    else:
        end = 0  # the members before this are paid (a pro-rata run's, with its first)
        for m in range(n_m):
            if m >= end:
                end = m + 1
                if mode == MODE_SEQUENTIAL:  # (MODE_IN_ORDER: strictly in list order)
                    end = _class_end_py(g, m, TI_RUN, TI_RUN_END, groups, group_len, tranche_i)
                if end > m + 1:
                    budget, avail = _pay_class_py(t, g, m, end, budget, avail, groups, work,
                                                  led_tr)  # fmt: skip
                else:
                    budget, avail = _pay_one_py(t, groups[g, m], amount, budget, avail, final,
                                                tranche_i, tranche_target, work,
                                                led_tr)  # fmt: skip
    return avail


def _fund_reserve_py(t, a, avail, work, led_acc):
    """``fund_reserve``: account a up to its target, as far as ``avail`` goes; returns what
    is left available."""
    need = work[W_ACC_TARGET, a] - work[W_ACC_BAL, a]
    x = need if need < avail else avail
    if x > 0.0:
        work[W_ACC_BAL, a] += x
        led_acc[t, a, LA_DEPOSIT] += x
        avail -= x
    return avail


def _reserve_class_py(t, a, g, m, end, covers, left, groups, work, led_tr, led_acc):
    """:func:`_draw_reserve_py` for a pari-passu class (group g's members m .. end - 1): what
    each is owed, each principal at most its balance, the class's total at most ``left``;
    the draw, at most the account's balance, shared by what each is owed. Returns ``left``
    less the class's total."""
    owed_sum = 0.0
    for k in range(m, end):
        owed = _reserve_owed_py(t, groups[g, k], covers, work, led_tr)
        if owed > 0.0:
            owed_sum += owed
    cover = owed_sum
    if covers != COVERS_INTEREST:
        if cover > left:
            cover = left
        if cover > 0.0:
            left -= cover
    draw = cover if cover < work[W_ACC_BAL, a] else work[W_ACC_BAL, a]
    if draw > 0.0:
        frac = draw / owed_sum if draw < owed_sum else 1.0
        for k in range(m, end):
            j = groups[g, k]
            owed = _reserve_owed_py(t, j, covers, work, led_tr)
            if owed > 0.0:
                _reserve_pays_py(t, a, j, covers, owed * frac, work, led_tr, led_acc)
        if work[W_ACC_BAL, a] < 0.0:
            work[W_ACC_BAL, a] = 0.0
    return left


def _reserve_pays_py(t, a, j, covers, x, work, led_tr, led_acc):
    """Account a pays tranche j ``x`` (yuan) of its interest (``covers`` interest) or
    principal: out of its balance, into the ledgers."""
    work[W_ACC_BAL, a] -= x
    led_acc[t, a, LA_WITHDRAWAL] += x
    led_tr[t, j, LT_FROM_RESERVE] += x
    if covers == COVERS_INTEREST:
        led_tr[t, j, LT_INTEREST_PAID] += x
    else:
        work[W_BAL, j] -= x
        led_tr[t, j, LT_PRINCIPAL_PAID] += x
    return 0


def _reserve_owed_py(t, j, covers, work, led_tr):
    """What tranche j is still owed this period of what a reserve draw covers: interest, or
    principal due (at most its balance)."""
    if covers == COVERS_INTEREST:
        owed = led_tr[t, j, LT_INTEREST_DUE] - led_tr[t, j, LT_INTEREST_PAID]
    else:
        owed = work[W_PRIN_DUE, j] - led_tr[t, j, LT_PRINCIPAL_PAID]
        if owed > work[W_BAL, j]:
            owed = work[W_BAL, j]
    return owed


def _draw_reserve_py(t, a, g, covers, groups, group_len, tranche_i, work, led_tr, led_acc):
    """``draw_reserve``: account a pays tranche group g's interest (``COVERS_INTEREST``) or
    principal still owed this period, as far as its balance goes, in the group's order; the
    tranches of a pari-passu class listed together share the draw by what each is owed
    (:func:`_reserve_class_py`).

    Principal is owed by the group as a whole, and by the notes: the draw is at most the
    group's principal due (:func:`_principal_due_py`) less what the group was paid, and at
    most the same over every tranche, however the steps shared the payments out; each
    tranche takes at most its own shortfall. (Tranche by tranche, a sequential step that
    paid A 27.5 of pro-rata dues of 13.75 each left B "short" 13.75, and the reserve paid it
    with nothing short.)"""
    n_m = group_len[g]
    left = 0.0  # principal: what the group, and the notes, are still owed
    if covers != COVERS_INTEREST:
        for m in range(n_m):
            j = groups[g, m]
            left += work[W_PRIN_DUE, j] - led_tr[t, j, LT_PRINCIPAL_PAID]
        notes_left = 0.0
        for j in range(led_tr.shape[1]):
            notes_left += work[W_PRIN_DUE, j] - led_tr[t, j, LT_PRINCIPAL_PAID]
        if notes_left < left:
            left = notes_left
    end = 0  # the members before this are drawn for (a class's, with its first)
    for m in range(n_m):
        if m >= end:
            end = _class_end_py(g, m, TI_CLASS, TI_CLASS_END, groups, group_len, tranche_i)
            if end > m + 1:
                left = _reserve_class_py(t, a, g, m, end, covers, left, groups, work, led_tr,
                                         led_acc)  # fmt: skip
            else:
                j = groups[g, m]
                if covers == COVERS_INTEREST:
                    owed = led_tr[t, j, LT_INTEREST_DUE] - led_tr[t, j, LT_INTEREST_PAID]
                else:
                    owed = work[W_PRIN_DUE, j] - led_tr[t, j, LT_PRINCIPAL_PAID]
                    if owed > work[W_BAL, j]:
                        owed = work[W_BAL, j]
                    if owed > left:
                        owed = left
                    if owed > 0.0:
                        left -= owed
                x = owed if owed < work[W_ACC_BAL, a] else work[W_ACC_BAL, a]
                if x > 0.0:
                    _reserve_pays_py(t, a, j, covers, x, work, led_tr, led_acc)
    return 0


def _support_pays_py(t, s, j, part, x, cash_in, work, led_tr, led_sup):
    """Support s pays tranche j ``x`` (yuan) of its interest (``part`` 0) or principal (1):
    counted against its cap, in the period's cash in (returned) and the ledgers."""
    work[W_SUP_CUM, s] += x
    led_sup[t, s, LS_PAID] += x
    cash_in += x
    led_tr[t, j, LT_FROM_SUPPORT] += x
    if part == 0:
        led_tr[t, j, LT_INTEREST_PAID] += x
    else:
        work[W_BAL, j] -= x
        led_tr[t, j, LT_PRINCIPAL_PAID] += x
    return cash_in


def _support_owed_py(t, j, part, cov, final, work, led_tr):
    """What support covering ``cov`` is asked for tranche j's ``part`` (0: interest still
    owed; 1: principal, its balance, in the final period only); 0 where it does not cover."""
    owed = 0.0
    if part == 0:
        if cov == COVERS_INTEREST or cov == COVERS_BOTH:
            owed = led_tr[t, j, LT_INTEREST_DUE] - led_tr[t, j, LT_INTEREST_PAID]
    elif final and (cov == COVERS_PRINCIPAL or cov == COVERS_BOTH):
        owed = work[W_BAL, j]
    return owed


def _support_class_py(t, s, g, m, end, cov, final, cash_in, support_default_period,
                      support_f, groups, work, led_tr, led_sup):  # fmt: skip
    """:func:`_draw_support_py` for a pari-passu class (group g's members m .. end - 1): its
    interest, then (final period) its principal, each asked for in full and paid, up to the
    cap, shared by what each tranche is owed. Returns the period's cash in."""
    for part in range(2):
        owed_sum = 0.0
        for k in range(m, end):
            owed = _support_owed_py(t, groups[g, k], part, cov, final, work, led_tr)
            if owed > EPS:
                led_sup[t, s, LS_REQUESTED] += owed
                owed_sum += owed
        room = support_f[s, SF_CAP] - work[W_SUP_CUM, s]
        paid = owed_sum if owed_sum < room else room
        if support_default_period[s] > t and paid > 0.0:
            frac = paid / owed_sum if paid < owed_sum else 1.0
            for k in range(m, end):
                j = groups[g, k]
                owed = _support_owed_py(t, j, part, cov, final, work, led_tr)
                if owed > EPS:
                    cash_in = _support_pays_py(t, s, j, part, owed * frac, cash_in, work, led_tr,
                                               led_sup)  # fmt: skip
    return cash_in


def _draw_support_py(t, s, final, cash_in, support_default_period, support_i, support_f, groups,
                     group_len, tranche_i, work, led_tr, led_sup):  # fmt: skip
    """``draw_support``: support s pays its group's interest still owed (and, in the final
    period, principal) as it covers them, up to its cap, unless its provider has defaulted;
    every amount asked for is recorded. The tranches of a pari-passu class listed together
    share what it pays by what each is owed (:func:`_support_class_py`). Returns the
    period's cash in plus what it paid."""
    g = support_i[s, SI_GROUP]
    cov = support_i[s, SI_COVERS]
    n_m = group_len[g]
    end = 0  # the members before this are drawn for (a class's, with its first)
    for m in range(n_m):
        if m >= end:
            end = _class_end_py(g, m, TI_CLASS, TI_CLASS_END, groups, group_len, tranche_i)
            if end > m + 1:
                cash_in = _support_class_py(t, s, g, m, end, cov, final, cash_in,
                                            support_default_period, support_f, groups, work,
                                            led_tr, led_sup)  # fmt: skip
            else:
                j = groups[g, m]
                for part in range(2):
                    if part == 0:
                        if cov != COVERS_INTEREST and cov != COVERS_BOTH:
                            continue
                        owed = led_tr[t, j, LT_INTEREST_DUE] - led_tr[t, j, LT_INTEREST_PAID]
                    else:
                        if cov != COVERS_PRINCIPAL and cov != COVERS_BOTH:
                            continue
                        if not final:
                            continue
                        owed = work[W_BAL, j]
                    if owed <= EPS:
                        continue
                    led_sup[t, s, LS_REQUESTED] += owed
                    if support_default_period[s] <= t:
                        continue
                    room = support_f[s, SF_CAP] - work[W_SUP_CUM, s]
                    x = owed if owed < room else room
                    if x <= 0.0:
                        continue
                    cash_in = _support_pays_py(t, s, j, part, x, cash_in, work, led_tr,
                                               led_sup)  # fmt: skip
    return cash_in


def _write_off_py(t, final, pool_end, pool_flows, tranche_i, work, led_tr):
    """``write_off``: the principal deficiency, notes above the performing pool and the
    recoveries still to come from receivables defaulted by now (after a call or in the final
    period nothing is to come), written off the tranches from the most junior up; a
    pari-passu class (``TI_CLASS``) by its tranches' balances (balance × deficiency / their
    total, at most all of it)."""
    n_j = tranche_i.shape[0]
    deficiency = -pool_end
    if not final:
        deficiency -= pool_flows[PF_PENDING_RECOVERY, t]
    for j in range(n_j):
        deficiency += work[W_BAL, j]
    end = n_j  # the class written off next: tranches start .. end - 1
    while end > 0 and deficiency > EPS:
        start = tranche_i[end - 1, TI_CLASS]
        if start == end - 1:
            x = work[W_BAL, start] if work[W_BAL, start] < deficiency else deficiency
            if x > 0.0:
                work[W_BAL, start] -= x
                led_tr[t, start, LT_WRITE_DOWN] += x
                deficiency -= x
        else:
            tot = 0.0
            for j in range(start, end):
                tot += work[W_BAL, j]
            partial = deficiency < tot
            frac = deficiency / tot if partial else 1.0
            for j in range(start, end):
                x = work[W_BAL, j] * frac
                if x > 0.0:
                    work[W_BAL, j] -= x
                    led_tr[t, j, LT_WRITE_DOWN] += x
                    deficiency -= x
            if partial:
                deficiency = 0.0  # the class took it all (not the rounding left of the shares)
        end = start
    return 0


def _pay_residual_py(t, j, avail, trap_account, work, led_tr, led_acc, led_per):
    """``pay_residual``: everything left to tranche j, or into the trap account while a cash
    trap is active; returns 0 (nothing left available)."""
    if avail > 0.0:
        if trap_account >= 0:
            work[W_ACC_BAL, trap_account] += avail
            led_acc[t, trap_account, LA_DEPOSIT] += avail
            led_per[t, LP_TRAPPED] += avail
        else:
            led_tr[t, j, LT_RESIDUAL_PAID] += avail
        avail = 0.0
    return avail


def _copy_py(src, dst):
    """``dst[...] = src`` for two C-contiguous arrays of one size, element by element: an array
    assignment would compile numba's shape-mismatch error message (string formatting, seconds
    of the cold compile)."""
    for k in range(src.size):
        dst.flat[k] = src.flat[k]
    return 0


def _zero_py(a):
    """``a[...] = 0.0``: :func:`_zero_rows_py` from row 0, in a loop of its own (a new path
    zeroes nine arrays; the general loop measured 2-3% slower a path memo off, three pairs,
    near the noise)."""
    for k in range(a.size):
        a.flat[k] = 0.0
    return 0


def _zero_rows_py(a, t_from):
    """``a[t_from:] = 0.0`` for a C-contiguous array (rows along the first axis; from 0: the
    whole array), through its flat iterator: numba's slice assignment of the nine ledger and
    scratch arrays of a path took about 13% of the time of collateral and waterfall together
    (the bundled deal, every path computed; a one-off stage profile)."""
    row = a.size // a.shape[0] if a.shape[0] > 0 else 0
    for k in range(t_from * row, a.size):
        a.flat[k] = 0.0
    return 0


def _checkpoint_py(t, led, scratch):
    """Save the path's state at period t's start (t = T: its end, before the summaries)
    into the checkpoints of ``scratch``: running balances, pending claims and the summaries
    kept as the periods run (minimum coverage, first shortfall, call and trigger periods).
    The loop's scalars are saved by :func:`waterfall_path_py` itself (``ck_state``)."""
    _copy_py(scratch.work, scratch.ck_work[t])
    _copy_py(scratch.pending, scratch.ck_pending[t])
    _copy_py(led.sum_tr, scratch.ck_sum_tr[t])
    _copy_py(led.sum_pool, scratch.ck_sum_pool[t])
    return 0


def _restart_path_py(t0, led, scratch):
    """Ready a path to restart at period t0 from the checkpoint a path with the same inputs
    before t0 saved: running balances, pending claims and partial summaries restored, ledger
    rows from t0 on zeroed (rows before t0 are the caller's: the checkpointed path's). Then
    :func:`waterfall_path_py` with ``t_start = t0`` reads the loop's scalars."""
    _copy_py(scratch.ck_work[t0], scratch.work)
    _copy_py(scratch.ck_pending[t0], scratch.pending)
    _copy_py(scratch.ck_sum_tr[t0], led.sum_tr)
    _copy_py(scratch.ck_sum_pool[t0], led.sum_pool)
    _zero_rows_py(led.tr, t0)
    _zero_rows_py(led.fee, t0)
    _zero_rows_py(led.acc, t0)
    _zero_rows_py(led.sup, t0)
    _zero_rows_py(led.per, t0)
    return 0


def _path_start_py(t_start, n_t, deal, led, scratch):
    """The period loop's scalars at period ``t_start``'s start: at 0 a new path's (its
    ledgers, summaries and scratch zeroed, opening balances set: :func:`_start_path_py`),
    else those saved there (``ck_state[t_start]``). Returns the pool balance, cumulative
    defaults, cash, whether the deal has ended, the highest status so far and the period it
    ended in (T - 1 until it ends)."""
    if t_start == 0:
        _start_path_py(deal.tranche_f, deal.account_f, scratch.work, scratch.pending, led.tr,
                       led.fee, led.acc, led.sup, led.per, led.sum_tr, led.sum_pool)  # fmt: skip
        pool_bal = deal.original_pool
        cum_default = 0.0
        cash = 0.0
        ended = False
        max_status = 0
        last_period = n_t - 1
    else:
        st = scratch.ck_state
        pool_bal = st[t_start, CK_POOL_BAL]
        cum_default = st[t_start, CK_CUM_DEFAULT]
        cash = st[t_start, CK_CASH]
        ended = st[t_start, CK_ENDED] > 0.0
        max_status = int(st[t_start, CK_MAX_STATUS])
        last_period = int(st[t_start, CK_LAST_PERIOD])
    return pool_bal, cum_default, cash, ended, max_status, last_period


def _after_the_end_py(t, led_tr, led_per):
    """Period ``t`` after the deal ended (a clean-up call): no coverage ratio, the deal's or
    a tranche's (its rows held 0.0, which Monte Carlo averaged as a defined ratio of 0);
    every amount stays 0."""
    led_per[t, LP_COVERAGE_RATIO] = np.nan
    for j in range(led_tr.shape[1]):
        led_tr[t, j, LT_COVERAGE_RATIO] = np.nan
    return 0


def _keep_loop_state_py(t, pool_bal, cum_default, cash, ended, max_status, last_period, scratch):
    """Save the period loop's scalars at period t's start into ``ck_state[t]``."""
    st = scratch.ck_state
    st[t, CK_POOL_BAL] = pool_bal
    st[t, CK_CUM_DEFAULT] = cum_default
    st[t, CK_CASH] = cash
    st[t, CK_ENDED] = 1.0 if ended else 0.0
    st[t, CK_MAX_STATUS] = max_status
    st[t, CK_LAST_PERIOD] = last_period
    return 0


def _start_path_py(tranche_f, account_f, work, pending, led_tr, led_fee, led_acc, led_sup,
                   led_per, sum_tr, sum_pool):  # fmt: skip
    """Zero the path's ledgers and scratch; opening balances of tranches and accounts; the
    summaries that start undefined (NaN minimum coverage, -1 first periods)."""
    _zero_py(work)
    _zero_py(pending)
    _zero_py(led_tr)
    _zero_py(led_fee)
    _zero_py(led_acc)
    _zero_py(led_sup)
    _zero_py(led_per)
    _zero_py(sum_tr)
    _zero_py(sum_pool)
    for j in range(tranche_f.shape[0]):
        work[W_BAL, j] = tranche_f[j, TF_BALANCE]
        sum_tr[j, ST_MIN_COVERAGE] = np.nan
        sum_tr[j, ST_FIRST_SHORTFALL_PERIOD] = -1.0
    for a in range(account_f.shape[0]):
        work[W_ACC_BAL, a] = account_f[a, AF_INITIAL]
    sum_pool[SP_FIRST_TRIGGER_PERIOD] = -1.0
    sum_pool[SP_CALL_PERIOD] = -1.0
    sum_pool[SP_MIN_COVERAGE] = np.nan
    return 0


def _collections_py(t, pool_flows, pool_start, cum_default, original_pool, led_per):
    """Period t's collections (interest, scheduled principal, prepayments, recoveries) onto
    the period ledger; defaults leave the performing pool. Returns the performing balance at
    the period's end, the cumulative defaults and the collections (yuan)."""
    interest = pool_flows[PF_INTEREST, t]
    sched = pool_flows[PF_SCHED_PRIN, t]
    prepay = pool_flows[PF_PREPAY, t]
    dflt = pool_flows[PF_DEFAULT, t]
    recov = pool_flows[PF_RECOVERY, t]
    loss = pool_flows[PF_LOSS, t]
    pool_end = pool_start - sched - prepay - dflt
    if pool_end < 1e-6:
        pool_end = 0.0
    cum_default += dflt
    led_per[t, LP_POOL_START] = pool_start
    led_per[t, LP_INTEREST] = interest
    led_per[t, LP_SCHED_PRIN] = sched
    led_per[t, LP_PREPAY] = prepay
    led_per[t, LP_DEFAULT] = dflt
    led_per[t, LP_RECOVERY] = recov
    led_per[t, LP_LOSS] = loss
    led_per[t, LP_CUM_DEFAULT_RATIO] = cum_default / original_pool if original_pool > 0 else 0.0
    collections = interest + sched + prepay + recov
    return pool_end, cum_default, collections


def _compensation_py(t, pool_flows, support_default_period, support_i, support_f, work,
                     pending, led_sup):  # fmt: skip
    """Loss compensation: book the claims on period t's realised loss (due ``lag`` periods
    later; claimed but never paid when due after legal final), then receive what falls due
    now, up to each support's cap, unless its provider has defaulted. Returns what was
    received (yuan)."""
    n_t = pool_flows.shape[1]
    loss = pool_flows[PF_LOSS, t]
    compensation = 0.0
    for s in range(support_f.shape[0]):
        defaulted = support_default_period[s] <= t
        led_sup[t, s, LS_PROVIDER_DEFAULTED] = 1.0 if defaulted else 0.0
        if support_i[s, SI_KIND] != SUPPORT_COMPENSATION:
            continue
        due_t = t + support_i[s, SI_LAG]
        if loss > 0.0:
            if due_t < n_t:
                pending[s, due_t] += support_f[s, SF_SHARE] * loss
            else:
                # due after legal final: claimed now, never paid to the trust
                led_sup[t, s, LS_REQUESTED] += support_f[s, SF_SHARE] * loss
        claim = pending[s, t]
        if claim > 0.0:
            led_sup[t, s, LS_REQUESTED] += claim
            if not defaulted:
                room = support_f[s, SF_CAP] - work[W_SUP_CUM, s]
                x = claim if claim < room else room
                if x < 0.0:
                    x = 0.0
                work[W_SUP_CUM, s] += x
                led_sup[t, s, LS_PAID] = x
                compensation += x
    return compensation


def _clean_up_call_py(t, pool_end, call_factor, call_price, original_pool, pool_flows, sum_pool):
    """The clean-up call: the servicer buys the performing receivables at ``call_price`` and
    the defaulted ones at their recovery value once the pool factor (performing balance /
    original, tolerance 1e-9) is at or below the call level; nothing performing, no call.
    Returns the performing balance after it, the call proceeds (yuan), whether it was
    called and the loss on the defaulted receivables sold (yuan). Those are recovered then,
    in the pool's totals
    (``SP_RECOVERY``, and their loss, exposure less that value, in ``SP_LOSS``), and those
    whose recovery would come after legal final lost: all would have been booked after the
    deal ended."""
    call_proceeds = 0.0
    called = False
    sold_loss = 0.0
    if (
        call_factor >= 0.0
        and t < pool_flows.shape[1] - 1
        and pool_end > 0.0
        and pool_end <= (call_factor + 1e-9) * original_pool
    ):
        called = True
        # the defaulted receivables awaiting disposal go at their recovery value; only
        # those that have defaulted by now (later defaults were bought performing)
        pending = pool_flows[PF_PENDING_RECOVERY, t]
        call_proceeds = call_price * pool_end + pending
        pool_end = 0.0
        sum_pool[SP_CALL_PERIOD] = t
        # the exposure still unresolved: defaulted by now, less what recovered or was lost
        # by now (sold at its recovery value; one whose recovery would come after legal
        # final is not sold, and lost whole, as the final period would have booked it)
        exposure = 0.0
        for s in range(t + 1):
            exposure += (pool_flows[PF_DEFAULT, s] - pool_flows[PF_RECOVERY, s]
                         - pool_flows[PF_LOSS, s])  # fmt: skip
        if pending > 0.0 or exposure > FEN:
            sum_pool[SP_RECOVERY] += pending
            sum_pool[SP_LOSS] += exposure - pending
            sold_loss = exposure - pending
    return pool_end, call_proceeds, called, sold_loss


def _claims_at_call_py(t, sold_loss, claims, support_i, support_f, led_sup):
    """A clean-up call in period t ends the deal: each loss-compensation claim falling due
    later, and the one on the loss of the defaulted receivables sold at the call, is
    claimed now and never paid to the trust, as a claim due after legal final is (they
    vanished from the ledger: a validator's fund owed 45 and nothing showed it)."""
    n_t = claims.shape[1]
    for s in range(support_i.shape[0]):
        if support_i[s, SI_KIND] == SUPPORT_COMPENSATION:
            unpaid = support_f[s, SF_SHARE] * sold_loss
            for tt in range(t + 1, n_t):
                unpaid += claims[s, tt]
                claims[s, tt] = 0.0
            if unpaid > 0.0:
                led_sup[t, s, LS_REQUESTED] += unpaid
    return 0


def _coupon_rate_py(j, base, stepped, tranche_f, tranche_i):
    """Tranche j's annual coupon rate on the base rate ``base``: fixed, or floating within
    its floor and cap; plus the step-up spread when ``stepped``; floored at zero (a note
    never charges its holder)."""
    kind = tranche_i[j, TI_COUPON_KIND]
    if kind == COUPON_FIXED:
        rate = tranche_f[j, TF_FIXED_RATE]
    elif kind == COUPON_FLOATING:
        rate = base + tranche_f[j, TF_SPREAD]
        if rate < tranche_f[j, TF_FLOOR]:
            rate = tranche_f[j, TF_FLOOR]
        if rate > tranche_f[j, TF_CAP]:
            rate = tranche_f[j, TF_CAP]
    else:
        rate = 0.0
    if stepped:
        rate += tranche_f[j, TF_STEP_SPREAD]
    if rate < 0.0:
        rate = 0.0
    return rate


def _interest_due_py(t, base_rate, tranche_f, tranche_i, tranche_accrual, work, led_tr):
    """Each tranche's coupon rate (fixed, or floating within its floor and cap; step-up
    spread; floored at zero) and interest due (on the balance, and on the shortfall carried
    where the tranche accrues on it, plus that shortfall). Returns the notes' balance."""
    n_j = tranche_f.shape[0]
    notes = 0.0
    for j in range(n_j):
        notes += work[W_BAL, j]
    for j in range(n_j):
        rate = _coupon_rate_py(j, base_rate[t], t >= tranche_i[j, TI_STEP_PERIOD], tranche_f,
                               tranche_i)  # fmt: skip
        bal = work[W_BAL, j]
        accrued = bal * rate * tranche_accrual[j, t]
        if tranche_i[j, TI_INTEREST_ON_SHORTFALL] != 0:
            accrued += work[W_SHORT, j] * rate * tranche_accrual[j, t]
        led_tr[t, j, LT_BALANCE_START] = bal
        led_tr[t, j, LT_COUPON_RATE] = rate
        led_tr[t, j, LT_INTEREST_DUE] = accrued + work[W_SHORT, j]
    return notes


def _fee_amount_py(f, accrual, pool_start, notes, original_pool, fee_f, fee_i, work):
    """Fee f's amount for a period of ``accrual`` years on these opening balances (yuan):
    rate × its base × accrual + fixed amount, within floor and cap."""
    base = base_amount_py(fee_i[f, FI_BASE_KIND], pool_start, notes, original_pool,
                          work[W_BAL, fee_i[f, FI_BASE_TRANCHE]])  # fmt: skip
    cur = fee_f[f, FF_RATE] * base * accrual + fee_f[f, FF_FIXED]
    if cur < fee_f[f, FF_FLOOR]:
        cur = fee_f[f, FF_FLOOR]
    if cur > fee_f[f, FF_CAP]:
        cur = fee_f[f, FF_CAP]
    return cur


def _fees_due_py(t, pool_start, notes, original_pool, deal_accrual, fee_f, fee_i, work,
                 led_fee):  # fmt: skip
    """Each fee due: its period's amount (:func:`_fee_amount_py`) plus what was left unpaid.
    Returns the fees due (yuan)."""
    fees_due = 0.0
    for f in range(fee_f.shape[0]):
        cur = _fee_amount_py(f, deal_accrual[t], pool_start, notes, original_pool, fee_f, fee_i,
                             work)  # fmt: skip
        due = cur + work[W_FEE_UNPAID, f]
        work[W_FEE_DUE, f] = due
        led_fee[t, f, LF_DUE] = due
        fees_due += due
    return fees_due


def _principal_due_py(t, final, notes, pool_end, tranche_i, tranche_target, work, led_tr):
    """Principal due per tranche at the period's start, for the coverage ratios and a reserve
    draw on principal: the notes' excess over the performing pool allocated in seniority
    order, each run of consecutive pro-rata tranches sharing its part by balance
    (balance × (what is left / their total), at most all of it: how a pro-rata step pays
    them), a target-balance tranche down to its target (the excess left after it less what
    it takes: ``pay_principal`` pays its schedule out of all that is available); everything
    in the final period. A step may pay otherwise (an explicit mode, or pro-rata tranches
    listed with others): a reserve draw on principal is capped by what its group and the
    notes were actually paid (:func:`_draw_reserve_py`)."""
    prin_left = notes - pool_end
    if prin_left < 0.0:
        prin_left = 0.0
    n_j = tranche_i.shape[0]
    frac = 1.0
    run_end = 0  # a pro-rata tranche before this is in the run whose share ``frac`` is
    for j in range(n_j):
        bal = work[W_BAL, j]
        kind = tranche_i[j, TI_PRINCIPAL_KIND]
        if final:
            d = bal
        elif kind == PRIN_TARGET:
            # down to its target: ``pay_principal`` pays it so, out of all available
            d = bal - tranche_target[j, t]
            if d < 0.0:
                d = 0.0
            prin_left -= d
            if prin_left < 0.0:
                prin_left = 0.0
        elif kind == PRIN_PRO_RATA:
            if j >= run_end:
                run_end, frac = _pro_rata_share_py(j, prin_left, tranche_i, work)
            d = bal * frac
            prin_left -= d
            if prin_left < 0.0:
                prin_left = 0.0
        else:
            d = bal if bal < prin_left else prin_left
            prin_left -= d
        work[W_PRIN_DUE, j] = d
        led_tr[t, j, LT_PRINCIPAL_DUE] = d
    return 0


def _pro_rata_share_py(j, prin_left, tranche_i, work):
    """The run of consecutive pro-rata tranches from its first, j (``TI_RUN_END``): where it
    ends, and the share of their balances ``prin_left`` pays (1 when it pays them all)."""
    end = tranche_i[j, TI_RUN_END]
    tot = 0.0
    for k in range(j, end):
        tot += work[W_BAL, k]
    return end, (prin_left / tot if prin_left < tot else 1.0)


def _coverage_ratios_py(t, avail, fees_due, cr_include_fees, cr_tranche, tranche_i, work,
                        led_tr, led_per, sum_tr, sum_pool):  # fmt: skip
    """Coverage ratio per tranche: available funds / (fees, if counted, + interest and
    principal due on the tranche's class and everything senior; a class is one tranche, or
    its pari-passu class, which share one ratio, a member of no balance too); NaN once the
    class is repaid. The headline ratio is ``cr_tranche``'s; minima are
    kept in the summaries.
    Returns the headline ratio."""
    n_j = led_tr.shape[1]
    obligations = fees_due if cr_include_fees != 0 else 0.0
    class_end = 0  # the tranches before this are counted in ``obligations``
    class_bal = 0.0  # the opening balance of j's class
    for j in range(n_j):
        if j >= class_end:  # j is its class's first: the class's obligations counted
            obligations += led_tr[t, j, LT_INTEREST_DUE] + work[W_PRIN_DUE, j]
            class_bal = led_tr[t, j, LT_BALANCE_START]
            class_end = tranche_i[j, TI_CLASS_END]
            for k in range(j + 1, class_end):
                obligations += led_tr[t, k, LT_INTEREST_DUE] + work[W_PRIN_DUE, k]
                class_bal += led_tr[t, k, LT_BALANCE_START]
        if class_bal > EPS and obligations > EPS:
            cr = avail / obligations
            led_tr[t, j, LT_COVERAGE_RATIO] = cr
            m = sum_tr[j, ST_MIN_COVERAGE]
            if np.isnan(m) or cr < m:
                sum_tr[j, ST_MIN_COVERAGE] = cr
        else:
            led_tr[t, j, LT_COVERAGE_RATIO] = np.nan
    deal_cr = led_tr[t, cr_tranche, LT_COVERAGE_RATIO] if n_j > 0 else np.nan
    led_per[t, LP_COVERAGE_RATIO] = deal_cr
    if not np.isnan(deal_cr):
        m = sum_pool[SP_MIN_COVERAGE]
        if np.isnan(m) or deal_cr < m:
            sum_pool[SP_MIN_COVERAGE] = deal_cr
    return deal_cr


def _triggers_py(t, final, deal_cr, cum_default, original_pool, support_default_period,
                 trigger_f, trigger_i, n_steps, work):  # fmt: skip
    """Test the triggers (cumulative defaults, coverage for so many periods, a support
    provider's default, missed interest; non-curable ones latch). Returns the status (normal,
    accelerated, post-default; down to the nearest one the deal has steps for) and the
    account that traps cash (-1: none)."""
    status = STATUS_NORMAL
    trap_account = -1
    for g in range(trigger_f.shape[0]):
        kind = trigger_i[g, GI_KIND]
        thr = trigger_f[g, GF_THRESHOLD]
        breached = False
        if kind == TRIG_CUM_DEFAULT:
            # above the threshold by more than rounding (a sum of defaults equal to it came
            # out 0.16600000000000004 for 0.166 and fired)
            breached = original_pool > 0.0 and cum_default / original_pool > thr + RATE_TIE
        elif kind == TRIG_COVERAGE:
            if (not np.isnan(deal_cr)) and deal_cr < thr:
                work[W_TRIG_COUNT, g] += 1.0
            else:
                work[W_TRIG_COUNT, g] = 0.0
            breached = work[W_TRIG_COUNT, g] >= trigger_i[g, GI_PERIODS]
        elif kind == TRIG_SUPPORT_DEFAULT:
            breached = support_default_period[trigger_i[g, GI_SUPPORT]] <= t
        elif kind == TRIG_MISSED_INTEREST:
            breached = work[W_TRIG_MISSED, g] > 0.0
        if trigger_i[g, GI_CURABLE] == 0:
            if breached:
                work[W_TRIG_LATCHED, g] = 1.0
            active = work[W_TRIG_LATCHED, g] > 0.0
        else:
            active = breached
        if active:
            eff = trigger_i[g, GI_EFFECT]
            if eff == EFFECT_ACCELERATE and status < STATUS_ACCELERATED:
                status = STATUS_ACCELERATED
            elif eff == EFFECT_EVENT_OF_DEFAULT:
                status = STATUS_POST_DEFAULT
            elif eff == EFFECT_TRAP and not final:
                trap_account = trigger_i[g, GI_ACCOUNT]
    while status > 0 and n_steps[status] == 0:
        status -= 1
    return status, trap_account


def _reserve_targets_py(t, final, avail, pool_start, notes, trap_account, base_rate, deal, work,
                        led):  # fmt: skip
    """Each account's target (zero in the final period; fixed; a percent of its base, at
    least its floor; or next period's interest on its group, and with ``include_fees`` next
    period's fees, on this period's opening balances, at next period's coupons on this
    period's base rate and at next period's accruals: a step-up from next period counted, as
    it was not); a balance over target is released into available funds, except from the
    account trapping cash. Returns the available funds."""
    account_f, account_i = deal.account_f, deal.account_i
    tranche_f, tranche_i = deal.tranche_f, deal.tranche_i
    groups, group_len, tranche_accrual = deal.groups, deal.group_len, deal.tranche_accrual
    original_pool, deal_accrual = deal.original_pool, deal.deal_accrual
    fee_f, fee_i = deal.fee_f, deal.fee_i
    n_f = fee_f.shape[0]
    led_tr, led_acc = led.tr, led.acc
    n_t = led_tr.shape[0]
    for a in range(account_f.shape[0]):
        tk = account_i[a, AI_TARGET_KIND]
        if final:
            target = 0.0
        elif tk == TARGET_FIXED:
            target = account_f[a, AF_AMOUNT]
        elif tk == TARGET_PERCENT:
            base = base_amount_py(account_i[a, AI_OF_KIND], pool_start, notes, original_pool,
                                  work[W_BAL, account_i[a, AI_OF_TRANCHE]])  # fmt: skip
            target = account_f[a, AF_RATE] * base
            if target < account_f[a, AF_FLOOR]:
                target = account_f[a, AF_FLOOR]
        else:
            # next period's interest on the group, on this period's opening balances
            target = 0.0
            g = account_i[a, AI_GROUP]
            if t + 1 < n_t:
                for m in range(group_len[g]):
                    j = groups[g, m]
                    rate = _coupon_rate_py(j, base_rate[t], t + 1 >= tranche_i[j, TI_STEP_PERIOD],
                                           tranche_f, tranche_i)  # fmt: skip
                    target += led_tr[t, j, LT_BALANCE_START] * rate * (tranche_accrual[j, t + 1])
                if account_i[a, AI_INCLUDE_FEES] != 0:
                    # next period's fees likewise: at its accrual, on this period's
                    # opening balances (not this period's amounts: a validator's 181-day
                    # stub fee counted for a 92-day period)
                    for f in range(n_f):
                        fee = _fee_amount_py(f, deal_accrual[t + 1], pool_start, notes,
                                             original_pool, fee_f, fee_i, work)  # fmt: skip
                        target += fee
        work[W_ACC_TARGET, a] = target
        bal = work[W_ACC_BAL, a]
        led_acc[t, a, LA_BALANCE_START] = bal
        led_acc[t, a, LA_TARGET] = target
        # trapped cash stays in the trap account while the trap is active
        if bal > target and a != trap_account:
            led_acc[t, a, LA_WITHDRAWAL] += bal - target
            avail += bal - target
            work[W_ACC_BAL, a] = target
    return avail


def _priority_of_payments_py(t, status, final, avail, cash_in, pool_end, trap_account,
                             pool_flows, support_default_period, deal, work, led):  # fmt: skip
    """The steps of the status's waterfall, in order, on the available funds. Returns what
    is left available and the period's cash in (collections plus support drawn)."""
    ops, n_steps, groups, group_len = deal.ops, deal.n_steps, deal.groups, deal.group_len
    tranche_i, tranche_target = deal.tranche_i, deal.tranche_target
    support_i, support_f = deal.support_i, deal.support_f
    led_tr, led_fee, led_acc, led_sup, led_per = led.tr, led.fee, led.acc, led.sup, led.per
    for k in range(n_steps[status]):
        op = ops[status, k, OPC_CODE]
        pa = ops[status, k, OPC_A]
        pb = ops[status, k, OPC_B]
        pc = ops[status, k, OPC_C]
        if op == OP_PAY_FEE:
            avail = _pay_fee_py(t, pa, avail, work, led_fee)
        elif op == OP_PAY_INTEREST:
            avail = _pay_interest_py(t, pa, pb, avail, groups, group_len, led_tr)
        elif op == OP_PAY_PRINCIPAL:
            avail = _pay_principal_py(t, pa, pb, pc, avail, final, pool_end, groups, group_len,
                                      tranche_i, tranche_target, work, led_tr)  # fmt: skip
        elif op == OP_FUND_RESERVE:
            avail = _fund_reserve_py(t, pa, avail, work, led_acc)
        elif op == OP_DRAW_RESERVE:
            _draw_reserve_py(t, pa, pb, pc, groups, group_len, tranche_i, work, led_tr, led_acc)
        elif op == OP_DRAW_SUPPORT:
            cash_in = _draw_support_py(t, pa, final, cash_in, support_default_period, support_i,
                                       support_f, groups, group_len, tranche_i, work, led_tr,
                                       led_sup)  # fmt: skip
        elif op == OP_WRITE_OFF:
            _write_off_py(t, final, pool_end, pool_flows, tranche_i, work, led_tr)
        elif op == OP_PAY_RESIDUAL:
            avail = _pay_residual_py(t, pa, avail, trap_account, work, led_tr, led_acc, led_per)
    return avail, cash_in


def _close_period_py(t, final, groups, group_len, trigger_i, work, led_tr, led_fee, led_acc,
                     led_sup, sum_tr):  # fmt: skip
    """Close period t: unpaid fees and interest shortfalls carried forward (the first
    shortfall's period kept), every balance left written off in the final period, closing
    balances on the ledgers, the missed-interest triggers' flags for next period. Returns
    what was paid out to fees and tranches (yuan)."""
    paid_out = 0.0
    for f in range(led_fee.shape[1]):
        paid = led_fee[t, f, LF_PAID]
        paid_out += paid
        unpaid = work[W_FEE_DUE, f] - paid
        if unpaid < EPS:
            unpaid = 0.0
        led_fee[t, f, LF_UNPAID] = unpaid
        work[W_FEE_UNPAID, f] = unpaid
    for j in range(led_tr.shape[1]):
        short = led_tr[t, j, LT_INTEREST_DUE] - led_tr[t, j, LT_INTEREST_PAID]
        if short < EPS:
            short = 0.0
        if short > FEN and sum_tr[j, ST_FIRST_SHORTFALL_PERIOD] < 0.0:
            sum_tr[j, ST_FIRST_SHORTFALL_PERIOD] = t
        led_tr[t, j, LT_INTEREST_SHORTFALL] = short
        work[W_SHORT, j] = short
        if final and work[W_BAL, j] > 0.0:
            led_tr[t, j, LT_WRITE_DOWN] += work[W_BAL, j]
            work[W_BAL, j] = 0.0
        if work[W_BAL, j] < 1e-7:
            work[W_BAL, j] = 0.0
        led_tr[t, j, LT_BALANCE_END] = work[W_BAL, j]
        paid_out += (
            led_tr[t, j, LT_INTEREST_PAID]
            + led_tr[t, j, LT_PRINCIPAL_PAID]
            + led_tr[t, j, LT_RESIDUAL_PAID]
        )
    for a in range(led_acc.shape[1]):
        led_acc[t, a, LA_BALANCE_END] = work[W_ACC_BAL, a]
    for s in range(led_sup.shape[1]):
        led_sup[t, s, LS_CUMULATIVE] = work[W_SUP_CUM, s]
    for g in range(trigger_i.shape[0]):
        if trigger_i[g, GI_KIND] == TRIG_MISSED_INTEREST:
            gr = trigger_i[g, GI_GROUP]
            miss = 0.0
            for m in range(group_len[gr]):
                miss += led_tr[t, groups[gr, m], LT_INTEREST_SHORTFALL]
            work[W_TRIG_MISSED, g] = 1.0 if miss > FEN else 0.0
    return paid_out


def _path_summaries_py(last_period, max_status, years, support_i, work, led_tr, led_per, sum_tr,
                       sum_pool):  # fmt: skip
    """Per-path summaries from the ledgers: per tranche the totals received and lost, the
    interest still unpaid when the deal ended and the WAL (years; NaN if no principal was
    paid); for the pool the totals of defaults, recoveries, losses, prepayments,
    compensation and support, and the highest status reached."""
    n_t = led_tr.shape[0]
    for j in range(led_tr.shape[1]):
        wal_num = 0.0
        for t in range(n_t):
            pp = led_tr[t, j, LT_PRINCIPAL_PAID]
            sum_tr[j, ST_PRINCIPAL_PAID] += pp
            sum_tr[j, ST_INTEREST_PAID] += led_tr[t, j, LT_INTEREST_PAID]
            sum_tr[j, ST_LOSS] += led_tr[t, j, LT_WRITE_DOWN]
            sum_tr[j, ST_FROM_SUPPORT] += led_tr[t, j, LT_FROM_SUPPORT]
            sum_tr[j, ST_FROM_RESERVE] += led_tr[t, j, LT_FROM_RESERVE]
            sum_tr[j, ST_RESIDUAL_PAID] += led_tr[t, j, LT_RESIDUAL_PAID]
            wal_num += pp * years[t]
        # interest still unpaid when the deal ended (final period or clean-up call)
        sum_tr[j, ST_INTEREST_SHORTFALL] = led_tr[last_period, j, LT_INTEREST_SHORTFALL]
        if sum_tr[j, ST_PRINCIPAL_PAID] > EPS:
            sum_tr[j, ST_WAL_YEARS] = wal_num / sum_tr[j, ST_PRINCIPAL_PAID]
        else:
            sum_tr[j, ST_WAL_YEARS] = np.nan
    for t in range(n_t):
        sum_pool[SP_DEFAULT] += led_per[t, LP_DEFAULT]
        sum_pool[SP_RECOVERY] += led_per[t, LP_RECOVERY]
        sum_pool[SP_LOSS] += led_per[t, LP_LOSS]
        sum_pool[SP_PREPAY] += led_per[t, LP_PREPAY]
        sum_pool[SP_COMPENSATION] += led_per[t, LP_COMPENSATION]
    for s in range(support_i.shape[0]):
        if support_i[s, SI_KIND] != SUPPORT_COMPENSATION:
            sum_pool[SP_SUPPORT_PAID] += work[W_SUP_CUM, s]
    sum_pool[SP_MAX_STATUS] = max_status
    return 0


def waterfall_path_py(pool_flows, support_default_period, base_rate, deal, led, scratch, t_start,
                      t_stop):  # fmt: skip
    """Run one path through the waterfall, periods ``t_start`` to ``t_stop`` (all: 0, T + 1).

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
        Running balances and pending claims, overwritten; and the checkpoints.
    t_start : int
        0: start the path. t0 > 0: go on from period t0, the loop's scalars read from
        ``scratch.ck_state[t0]`` and the rest of the path's state in place: left by a call
        that stopped at t0, or put back for a prefix restart (:func:`_restart_path_py`: the
        checkpoint of a path whose inputs before t0, pool flows and whether each provider
        has defaulted, are this one's, and that path's ledger rows before t0). Ledgers and
        summaries are then bitwise those of a run from period 0, since a period depends only
        on the state at its start and its own inputs.
    t_stop : int
        T + 1: run to the end, then the path's summaries. t <= T: stop at period t's start,
        the loop's scalars saved in ``scratch.ck_state[t]`` (the caller saves the rest of
        the state, :func:`_checkpoint_py`); no summaries.

    The phases of a period are helpers (``_collections_py`` … ``_close_period_py``), the
    steps of the priority of payments one helper per opcode. This plain-Python twin calls
    them; the compiled :data:`waterfall_path` has them inlined at the source level
    (:mod:`abs_engine.kernels._inline`), so numba compiles one function and makes no call per
    phase or step (calls cost it 1.2-1.5x the time a path; measured: benchmarks/HISTORY.md).
    """
    # the bundles opened once, into the names the phases take
    original_pool = deal.original_pool
    tranche_f = deal.tranche_f
    tranche_i = deal.tranche_i
    tranche_accrual = deal.tranche_accrual
    tranche_target = deal.tranche_target
    fee_f = deal.fee_f
    fee_i = deal.fee_i
    deal_accrual = deal.deal_accrual
    support_f = deal.support_f
    support_i = deal.support_i
    trigger_f = deal.trigger_f
    trigger_i = deal.trigger_i
    n_steps = deal.n_steps
    groups = deal.groups
    group_len = deal.group_len
    years = deal.years
    cr_tranche = deal.cr_tranche
    cr_include_fees = deal.cr_include_fees
    call_factor = deal.call_factor
    call_price = deal.call_price
    led_tr, led_fee, led_acc, led_sup, led_per, sum_tr, sum_pool = led
    work = scratch.work
    pending = scratch.pending
    n_t = pool_flows.shape[1]

    pool_bal, cum_default, cash, ended, max_status, last_period = _path_start_py(
        t_start, n_t, deal, led, scratch
    )

    for t in range(t_start, min(t_stop, n_t)):
        if ended:
            _after_the_end_py(t, led_tr, led_per)
            continue
        # ---- 1. collections, loss compensation, the clean-up call ----
        pool_start = pool_bal
        pool_end, cum_default, collections = _collections_py(t, pool_flows, pool_start,
                                                             cum_default, original_pool,
                                                             led_per)  # fmt: skip
        compensation = _compensation_py(t, pool_flows, support_default_period, support_i,
                                        support_f, work, pending, led_sup)  # fmt: skip
        pool_end, call_proceeds, called, sold_loss = _clean_up_call_py(
            t, pool_end, call_factor, call_price, original_pool, pool_flows, sum_pool
        )
        if called:
            _claims_at_call_py(t, sold_loss, pending, support_i, support_f, led_sup)
        final = called or t == n_t - 1
        led_per[t, LP_POOL_END] = pool_end
        led_per[t, LP_COMPENSATION] = compensation
        led_per[t, LP_CALL_PROCEEDS] = call_proceeds
        led_per[t, LP_CASH_START] = cash

        # ---- 2. available funds ----
        avail = cash + collections + compensation + call_proceeds
        cash_in = collections + compensation + call_proceeds
        led_per[t, LP_AVAILABLE] = avail

        # ---- 3. amounts due ----
        notes = _interest_due_py(t, base_rate, tranche_f, tranche_i, tranche_accrual, work,
                                 led_tr)  # fmt: skip
        fees_due = _fees_due_py(t, pool_start, notes, original_pool, deal_accrual, fee_f, fee_i,
                                work, led_fee)  # fmt: skip
        _principal_due_py(t, final, notes, pool_end, tranche_i, tranche_target, work, led_tr)

        # ---- 4. coverage ratios, triggers, reserve targets ----
        deal_cr = _coverage_ratios_py(t, avail, fees_due, cr_include_fees, cr_tranche,
                                      tranche_i, work, led_tr, led_per, sum_tr,
                                      sum_pool)  # fmt: skip
        status, trap_account = _triggers_py(t, final, deal_cr, cum_default, original_pool,
                                            support_default_period, trigger_f, trigger_i,
                                            n_steps, work)  # fmt: skip
        led_per[t, LP_STATUS] = status
        if status > max_status:
            max_status = status
        if status != STATUS_NORMAL and sum_pool[SP_FIRST_TRIGGER_PERIOD] < 0.0:
            sum_pool[SP_FIRST_TRIGGER_PERIOD] = t
        avail = _reserve_targets_py(t, final, avail, pool_start, notes, trap_account,
                                    base_rate, deal, work, led)  # fmt: skip

        # ---- 5. the priority of payments ----
        avail, cash_in = _priority_of_payments_py(t, status, final, avail, cash_in, pool_end,
                                                  trap_account, pool_flows,
                                                  support_default_period, deal, work,
                                                  led)  # fmt: skip

        # ---- 6. close the period ----
        paid_out = _close_period_py(t, final, groups, group_len, trigger_i, work, led_tr,
                                    led_fee, led_acc, led_sup, sum_tr)  # fmt: skip
        if avail < 0.0:
            avail = 0.0
        if final:
            # the trust closes: cash no step paid out leaves it, on the record
            led_per[t, LP_CASH_RELEASED] = avail
            sum_pool[SP_CASH_RELEASED] = avail
            avail = 0.0
        cash = avail
        led_per[t, LP_CASH_END] = cash
        led_per[t, LP_CASH_IN] = cash_in
        led_per[t, LP_PAID_OUT] = paid_out
        pool_bal = pool_end
        if final:
            ended = True
            last_period = t
    if t_stop <= n_t:
        _keep_loop_state_py(t_stop, pool_bal, cum_default, cash, ended, max_status,
                            last_period, scratch)  # fmt: skip
        return 0

    _path_summaries_py(last_period, max_status, years, support_i, work, led_tr, led_per, sum_tr,
                       sum_pool)  # fmt: skip
    return 0


def run_paths_py(pool_flows, support_default_period, base_rate, deal, led, work_rows, work_cols):
    """Loop over paths: ``pool_flows[p]`` → ledgers and summaries ``led.*[p]`` (a
    :class:`~abs_engine.kernels.bundles.Ledgers` with a leading path axis P). Shapes as in
    :func:`waterfall_path_py`; :data:`run_paths` is the compiled twin. One thread: the paths
    run here are few (deterministic scenarios, ledger paths; a few microseconds each), and a
    ``prange`` loop would compile two more functions that re-optimise the whole waterfall."""
    n_p = pool_flows.shape[0]
    n_t = pool_flows.shape[2]
    n_s = deal.support_f.shape[0]
    for p in range(n_p):
        scratch = WaterfallScratch(
            np.empty((work_rows, work_cols)),
            np.empty((max(n_s, 1), n_t)),
            np.empty((0, work_rows, work_cols)),
            np.empty((0, max(n_s, 1), n_t)),
            np.empty((0, led.sum_tr.shape[1], N_ST)),
            np.empty((0, N_SP)),
            np.empty((0, N_CK)),
        )
        path_led = Ledgers(led.tr[p], led.fee[p], led.acc[p], led.sup[p], led.per[p],
                           led.sum_tr[p], led.sum_pool[p])  # fmt: skip
        waterfall_path_py(
            pool_flows[p],
            support_default_period[p],
            base_rate[p],
            deal,
            path_led,
            scratch,
            0,
            n_t + 1,
        )
    return 0


base_amount = jit_twin(base_amount_py, cache=True)
#: the phase and opcode helpers, inlined at the source level into the compiled interpreter
#: (:mod:`abs_engine.kernels._inline`); the Python twin calls them
INLINED_HELPERS = (
    _start_path_py,
    _path_start_py,
    _keep_loop_state_py,
    _after_the_end_py,
    _collections_py,
    _compensation_py,
    _clean_up_call_py,
    _claims_at_call_py,
    _zero_py,
    _coupon_rate_py,
    _interest_due_py,
    _fee_amount_py,
    _fees_due_py,
    _principal_due_py,
    _pro_rata_share_py,
    _coverage_ratios_py,
    _triggers_py,
    _reserve_targets_py,
    _priority_of_payments_py,
    _pay_fee_py,
    _pay_interest_py,
    _class_end_py,
    _pay_one_py,
    _pay_principal_py,
    _fund_reserve_py,
    _reserve_pays_py,
    _draw_reserve_py,
    _support_pays_py,
    _draw_support_py,
    _write_off_py,
    _pay_residual_py,
    _close_period_py,
    _path_summaries_py,
)
_copy = jit_twin(_copy_py, cache=True, refcounts=False)
#: the prefix restart's two steps, called by the block kernel (not by the waterfall, whose
#: compile, the longest, they would lengthen): a restarted path's state restored, and a
#: checkpoint a period of the path restarts come from
_restart_path = jit_twin(
    _restart_path_py,
    {"_copy_py": _copy, "_zero_rows_py": jit_twin(_zero_rows_py, cache=True, refcounts=False)},
    cache=True,
    refcounts=False,
)
_checkpoint = jit_twin(_checkpoint_py, {"_copy_py": _copy}, cache=True, refcounts=False)
#: the pays and draws of a class of several tranches, compiled calls of the waterfall (not
#: inlined: few deals have such a class, and inlined into every step that may meet one they
#: took the bundled deal's specialised waterfall from 14,000 to 20,400 syntax-tree nodes, and
#: a three-tranche deal with a guarantee past the budget for unrolling its steps)
CLASS_HELPERS = {
    "_pay_class_py": jit_twin(_pay_class_py, cache=True, refcounts=False),
    "_reserve_class_py": jit_twin(_reserve_class_py, inline_source=(_reserve_owed_py,
                                  _reserve_pays_py), cache=True, refcounts=False),
    "_support_class_py": jit_twin(_support_class_py, inline_source=(_support_owed_py,
                                  _support_pays_py), cache=True, refcounts=False),
}  # fmt: skip
waterfall_path = jit_twin(
    waterfall_path_py,
    {"base_amount_py": base_amount, **CLASS_HELPERS},
    inline_source=INLINED_HELPERS,
    cache=True,
    refcounts=False,
)
#: the waterfall as :data:`run_paths` and the generic block kernels call it: bound when the
#: caller is loaded, not linked into it (:mod:`abs_engine.kernels._link`: their compile does
#: not repeat the waterfall's)
bound_waterfall = bound_call(waterfall_path)
run_paths = jit_twin(
    run_paths_py, {"waterfall_path_py": bound_waterfall}, cache=True, no_cpython_wrapper=False
)


__all__ = [
    "N_STATUS",
    "N_WORK",
    "run_paths",
    "run_paths_py",
    "waterfall_path",
    "waterfall_path_py",
    "waterfall_scratch_py",
    "work_shape",
]
