"""The engine's Monte Carlo model written as straightforward vectorised NumPy — arrays over
paths, Python loops over periods and waterfall steps — the way a quant would write it first.

It draws the same counter-based random numbers as the kernels (SplitMix64 on uint64 arrays),
so it reproduces the numba results path by path; the benchmark uses it both as the speed
baseline and as an independent cross-check. Only the features the benchmarks use are here:
the Gaussian one-factor copula (not the Student-t), fixed or IP-value recovery, deterministic
CPR, fees, interest, principal, reserve, shortfall support, residual, write-off, clean-up call and
triggers (cumulative default, support default, missed interest); no loss compensation or
coverage-ratio triggers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import special

from abs_engine.compile.deal import CompiledDeal
from abs_engine.compile.model import MonteCarloModel
from abs_engine.compile.waterfall import StructureArrays
from abs_engine.kernels import layout as L

U64 = np.uint64
GAMMA = U64(0x9E3779B97F4A7C15)
M1 = U64(0xBF58476D1CE4E5B9)
M2 = U64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> U64(30))) * M1
    z = (z ^ (z >> U64(27))) * M2
    return z ^ (z >> U64(31))


def path_keys(seed: int, paths: np.ndarray, stream: int) -> np.ndarray:
    k = _mix(U64(seed) ^ _mix(paths.astype(np.uint64) + GAMMA))
    return _mix(k + U64(stream + 1) * GAMMA)


def uniforms(keys: np.ndarray, counters: np.ndarray) -> np.ndarray:
    """uniforms[p, c] for keys[p] and counters[c]."""
    z = _mix(keys[:, None] + (counters.astype(np.uint64)[None, :] + U64(1)) * GAMMA)
    return ((z >> U64(11)).astype(np.float64) + 0.5) * 2.0**-53


def simulate_numpy(
    cd: CompiledDeal, m: MonteCarloModel, seed: int, paths: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-path tranche principal, interest and loss (yuan, [P, J]) and default counts [P]."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        flows, sup_def, n_def = _collateral(cd, m, seed, paths)
        return {"default_count": n_def, **_waterfall(cd, m, flows, sup_def)}


def _collateral(cd: CompiledDeal, m: MonteCarloModel, seed: int, paths: np.ndarray):
    n_p, n_t, n = len(paths), cd.n_periods, cd.n_obligors
    z = special.ndtri(uniforms(path_keys(seed, paths, 0), np.arange(1)))[:, 0] * m.chol[0, 0]
    scale = np.ones(n_p)
    if m.copula == L.COPULA_STUDENT_T:
        raise NotImplementedError("the NumPy baseline covers the Gaussian copula")
    # conditional cumulative PD per class and period: [P, C, T]
    thr = m.class_threshold[None, :, :] * scale[:, None, None]
    arg = (thr - m.class_sqrt_rho[None, :, None] * z[:, None, None]) / m.class_sqrt_1mrho[
        None, :, None
    ]
    cpd = special.ndtr(arg)
    u = uniforms(path_keys(seed, paths, 4), np.arange(n))  # [P, N]
    obligor_cpd = cpd[:, m.obligor_class, :]  # [P, N, T]
    defaulted_by = u[:, :, None] < obligor_cpd
    tau = np.where(defaulted_by.any(axis=2), defaulted_by.argmax(axis=2), n_t)  # [P, N]
    exposure_exists = (
        np.take_along_axis(
            np.concatenate([m.sched_balance, np.zeros((n, 1))], axis=1)[None].repeat(n_p, 0),
            tau[:, :, None],
            2,
        )[:, :, 0]
        > 0
    )
    tau = np.where(exposure_exists, tau, n_t)
    t_idx = np.arange(n_t)
    alive = t_idx[None, None, :] < tau[:, :, None]  # [P, N, T]
    pf = np.concatenate([[1.0], np.cumprod(1.0 - np.minimum(m.smm, 1.0))])
    flows = np.zeros((n_p, L.N_PF, n_t))
    flows[:, L.PF_INTEREST] = pf[:n_t] * (alive * m.sched_interest[None]).sum(1)
    flows[:, L.PF_SCHED_PRIN] = pf[:n_t] * (alive * m.sched_principal[None]).sum(1)
    flows[:, L.PF_PREPAY] = (
        np.minimum(m.smm, 1.0)
        * pf[:n_t]
        * (alive * (m.sched_balance - m.sched_principal)[None]).sum(1)
    )
    at_default = t_idx[None, None, :] == tau[:, :, None]
    exposure = pf[:n_t][None, None, :] * m.sched_balance[None] * at_default  # [P, N, T]
    flows[:, L.PF_DEFAULT] = exposure.sum(1)
    expo_i = exposure.sum(2)  # [P, N]
    if m.recovery_kind == L.RECOVERY_IP:
        eta = special.ndtri(uniforms(path_keys(seed, paths, 5), np.arange(n)))
        shock = m.ip_loading * z[:, None] + np.sqrt(1 - m.ip_loading**2) * eta
        value = m.ip_value[None] * np.exp(m.ip_vol * shock - 0.5 * m.ip_vol**2)
        rec = np.minimum(expo_i, value * (1 - m.haircut) * (1 - m.disposal_cost))
        rec = np.where(np.isnan(m.ip_value)[None], m.recovery_rate[None] * expo_i, rec)
    else:
        rec = m.recovery_rate[None] * expo_i
    lag = m.lag_min[None].repeat(n_p, 0)
    spread = m.lag_max - m.lag_min
    if spread.any():
        ul = uniforms(path_keys(seed, paths, 6), np.arange(n))
        lag = lag + (ul * (spread + 1)[None]).astype(np.int64)
    rt = tau + lag
    for t in range(n_t):
        hit = (rt == t) & (tau < n_t)
        flows[:, L.PF_RECOVERY, t] = (rec * hit).sum(1)
        flows[:, L.PF_LOSS, t] = ((expo_i - rec) * hit).sum(1)
        waiting = (tau <= t) & (t < rt) & (rt < n_t)
        flows[:, L.PF_PENDING_RECOVERY, t] = (rec * waiting).sum(1)
    # providers
    n_s = m.provider_threshold.shape[0]
    sup_def = np.full((n_p, n_s), n_t + 1)
    if n_s:
        eps = special.ndtri(uniforms(path_keys(seed, paths, 3), np.arange(2 * n_s)))
        for s in range(n_s):
            if m.provider_threshold[s, -1] == -np.inf:
                continue
            r = m.provider_sqrt_rho[s]
            zs = z if m.provider_factor[s] >= 0 else eps[:, n_s + s]
            x = r * zs + np.sqrt(1 - r * r) * eps[:, s]
            below = x[:, None] < m.provider_threshold[s][None, :]
            sup_def[:, s] = np.where(below.any(1), below.argmax(1), n_t + 1)
    return flows, sup_def, (tau < n_t).sum(1)


def _no_array() -> np.ndarray:
    return np.empty(0)


@dataclass(slots=True)
class _Book:
    """What the waterfall carries from one period to the next, per path (P paths, J tranches,
    F fees, A reserve accounts, S support providers, G triggers; amounts in yuan)."""

    bal: np.ndarray  # float64[P, J]  tranche balance
    short: np.ndarray  # float64[P, J]  interest shortfall carried forward
    fee_unpaid: np.ndarray  # float64[P, F]  fees carried forward
    acc: np.ndarray  # float64[P, A]  reserve account balance
    sup_cum: np.ndarray  # float64[P, S]  support drawn so far
    latched: np.ndarray  # bool[P, G]  trigger breached at some period
    missed: np.ndarray  # bool[P, G]  missed-interest trigger's group short last period
    pool: np.ndarray  # float64[P]  performing pool balance
    cum_def: np.ndarray  # float64[P]  cumulative defaults
    cash: np.ndarray  # float64[P]  cash left from the period before
    prin_paid: np.ndarray  # float64[P, J]  principal paid so far
    int_paid: np.ndarray  # float64[P, J]  interest paid so far
    loss: np.ndarray  # float64[P, J]  principal lost so far
    ended: np.ndarray  # bool[P]  the deal ended (legal final or clean-up call)


@dataclass(slots=True)
class _Period:
    """One period's working arrays, per path (shapes as in :class:`_Book`; yuan)."""

    t: int
    live: np.ndarray  # bool[P]  the deal runs in this period
    pool_start: np.ndarray  # float64[P]
    pool_end: np.ndarray  # float64[P]  after principal, prepayment, defaults and a call
    pending: np.ndarray  # float64[P]  recoveries still to come
    fin: np.ndarray  # bool[P]  the last period of the path (legal final or called)
    avail: np.ndarray  # float64[P]  cash available to the waterfall
    sup_def: np.ndarray  # int64[P, S]  0-based period each provider defaults (> T: never)
    # set by _amounts_due: tranche balance at the start of the period float64[P], fixed
    # coupons float64[J] (decimal; 0 for other coupons), interest due (with shortfalls) and
    # paid float64[P, J], fees due (with unpaid ones) and paid float64[P, F]
    notes: np.ndarray = field(default_factory=_no_array)
    rate: np.ndarray = field(default_factory=_no_array)
    due: np.ndarray = field(default_factory=_no_array)
    paid: np.ndarray = field(default_factory=_no_array)
    fee_due: np.ndarray = field(default_factory=_no_array)
    fee_paid: np.ndarray = field(default_factory=_no_array)
    # set by _reserves: reserve targets float64[P, A]
    target: np.ndarray = field(default_factory=_no_array)


def _new_book(cd: CompiledDeal, n_p: int) -> _Book:
    """The book at closing: tranche and reserve balances as issued, nothing paid."""
    s = cd.structure
    n_j = len(cd.tranche_names)
    return _Book(
        bal=np.tile(s.tranche_f[:, L.TF_BALANCE], (n_p, 1)),
        short=np.zeros((n_p, n_j)),
        fee_unpaid=np.zeros((n_p, len(cd.fee_names))),
        acc=np.tile(s.account_f[:, L.AF_INITIAL], (n_p, 1)),
        sup_cum=np.zeros((n_p, len(cd.support_names))),
        latched=np.zeros((n_p, len(cd.trigger_names)), dtype=bool),
        missed=np.zeros((n_p, len(cd.trigger_names)), dtype=bool),
        pool=np.full(n_p, cd.original_pool),
        cum_def=np.zeros(n_p),
        cash=np.zeros(n_p),
        prin_paid=np.zeros((n_p, n_j)),
        int_paid=np.zeros((n_p, n_j)),
        loss=np.zeros((n_p, n_j)),
        ended=np.zeros(n_p, dtype=bool),
    )


def _collections(
    cd: CompiledDeal, b: _Book, flows: np.ndarray, sup_def: np.ndarray, t: int
) -> _Period:
    """Period t's pool collections (``flows`` float64[P, N_PF, T]) as cash available, the pool
    balance after them, a clean-up call where the pool is small enough; counts defaults."""
    s = cd.structure
    n_p, _, n_t = flows.shape
    live = ~b.ended
    f = flows[:, :, t] * live[:, None]
    pool_start = b.pool
    pool_end = pool_start - f[:, L.PF_SCHED_PRIN] - f[:, L.PF_PREPAY] - f[:, L.PF_DEFAULT]
    pool_end = np.where(pool_end < 1e-6, 0.0, pool_end)
    b.cum_def = b.cum_def + f[:, L.PF_DEFAULT]
    avail = (
        b.cash
        + f[:, L.PF_INTEREST]
        + f[:, L.PF_SCHED_PRIN]
        + f[:, L.PF_PREPAY]
        + f[:, L.PF_RECOVERY]
    )
    pending = flows[:, L.PF_PENDING_RECOVERY, t] * live
    called = np.zeros(n_p, dtype=bool)
    if s.call_factor >= 0 and t < n_t - 1:
        called = live & (pool_end > 0) & (pool_end <= (s.call_factor + 1e-9) * cd.original_pool)
        avail = avail + np.where(called, s.call_price * pool_end + pending, 0.0)
        pool_end = np.where(called, 0.0, pool_end)
    fin = live & (called | (t == n_t - 1))
    avail = avail * live
    return _Period(t, live, pool_start, pool_end, pending, fin, avail, sup_def)


def _amounts_due(cd: CompiledDeal, b: _Book, per: _Period) -> None:
    """Interest due on each tranche (with last period's shortfall) and each fee (on its base,
    floored and capped, with last period's unpaid part) into ``per``."""
    s = cd.structure
    t = per.t
    per.notes = b.bal.sum(1)
    per.rate = np.where(
        s.tranche_i[:, L.TI_COUPON_KIND] == L.COUPON_FIXED, s.tranche_f[:, L.TF_FIXED_RATE], 0.0
    )
    per.due = b.bal * (per.rate * s.tranche_accrual[:, t])[None] + b.short
    per.paid = np.zeros_like(b.bal)
    fee_due = np.zeros_like(b.fee_unpaid)
    for k in range(len(cd.fee_names)):
        bk = s.fee_i[k, L.FI_BASE_KIND]
        base = (
            per.pool_start
            if bk == L.BASE_POOL
            else per.notes
            if bk == L.BASE_NOTES
            else cd.original_pool
        )
        cur = s.fee_f[k, L.FF_RATE] * base * cd.deal_accrual[t] + s.fee_f[k, L.FF_FIXED]
        fee_due[:, k] = (
            np.clip(cur, s.fee_f[k, L.FF_FLOOR], s.fee_f[k, L.FF_CAP]) + b.fee_unpaid[:, k]
        )
    per.fee_due = fee_due
    per.fee_paid = np.zeros_like(fee_due)


def _breached(cd: CompiledDeal, b: _Book, sup_def: np.ndarray, g: int, t: int) -> np.ndarray:
    """bool[P]: trigger g breached in period t (cumulative default, support default or
    missed interest; coverage triggers are not in this baseline)."""
    s = cd.structure
    kind = s.trigger_i[g, L.GI_KIND]
    if kind == L.TRIG_CUM_DEFAULT:
        # above the threshold by more than rounding, as the kernel (``RATE_TIE``)
        return b.cum_def / cd.original_pool > s.trigger_f[g, L.GF_THRESHOLD] + L.RATE_TIE
    if kind == L.TRIG_SUPPORT_DEFAULT:
        return sup_def[:, s.trigger_i[g, L.GI_SUPPORT]] <= t
    if kind == L.TRIG_MISSED_INTEREST:
        return b.missed[:, g]
    raise NotImplementedError("coverage triggers are not in the NumPy baseline")


def _waterfall_status(
    cd: CompiledDeal, b: _Book, sup_def: np.ndarray, t: int, n_p: int
) -> np.ndarray:
    """int64[P]: the waterfall each path runs in period t (0 normal, 1 accelerated, 2 event of
    default; one without steps falls back to the one below); latches the triggers."""
    s = cd.structure
    status = np.zeros(n_p, dtype=np.int64)
    for g in range(len(cd.trigger_names)):
        br = _breached(cd, b, sup_def, g, t)
        b.latched[:, g] |= br
        active = b.latched[:, g] if s.trigger_i[g, L.GI_CURABLE] == 0 else br
        eff = s.trigger_i[g, L.GI_EFFECT]
        if eff == L.EFFECT_ACCELERATE:
            status = np.where(active & (status < 1), 1, status)
        elif eff == L.EFFECT_EVENT_OF_DEFAULT:
            status = np.where(active, 2, status)
    for w in (2, 1):
        if s.n_steps[w] == 0:
            status = np.where(status == w, w - 1, status)
    return status


def _percent_base(cd: CompiledDeal, b: _Book, per: _Period, a: int) -> np.ndarray:
    """float64[P]: what reserve account a's percentage target is a percentage of."""
    s = cd.structure
    bk = s.account_i[a, L.AI_OF_KIND]
    if bk == L.BASE_POOL:
        return per.pool_start
    if bk == L.BASE_NOTES:
        return per.notes
    if bk == L.BASE_ORIGINAL_POOL:
        return np.full(len(per.live), cd.original_pool)
    return b.bal[:, s.account_i[a, L.AI_OF_TRANCHE]]


def _reserves(cd: CompiledDeal, b: _Book, per: _Period, n_t: int) -> None:
    """Reserve targets (fixed, next period's interest on a group, or a percentage; 0 in the
    last period) into ``per``; what an account holds above its target is released to the
    cash available."""
    s = cd.structure
    t = per.t
    target = np.zeros_like(b.acc)
    for a in range(len(cd.account_names)):
        tk = s.account_i[a, L.AI_TARGET_KIND]
        if tk == L.TARGET_FIXED:
            target[:, a] = s.account_f[a, L.AF_AMOUNT]
        elif tk == L.TARGET_NEXT_INTEREST and t + 1 < n_t:
            grp = s.groups[s.account_i[a, L.AI_GROUP], : s.group_len[s.account_i[a, L.AI_GROUP]]]
            target[:, a] = (
                b.bal[:, grp] * (per.rate[grp] * s.tranche_accrual[grp, t + 1])[None]
            ).sum(1)
        elif tk == L.TARGET_PERCENT:
            target[:, a] = np.maximum(
                s.account_f[a, L.AF_RATE] * _percent_base(cd, b, per, a), s.account_f[a, L.AF_FLOOR]
            )
    per.target = np.where(per.fin[:, None], 0.0, target)
    release = np.maximum(b.acc - per.target, 0.0) * per.live[:, None]
    b.acc = b.acc - release
    per.avail = per.avail + release.sum(1)


# --- one function per waterfall step: (structure, book, period, paths on, operands a, b, c) ---


def _pay_fee(
    s: StructureArrays, b: _Book, per: _Period, on: np.ndarray, pa: int, pb: int, pc: int
) -> None:
    """Fee ``pa``: what is due, as far as the cash goes."""
    x = np.where(on, np.minimum(per.fee_due[:, pa] - per.fee_paid[:, pa], per.avail), 0.0)
    per.fee_paid[:, pa] += x
    per.avail = per.avail - x


def _pay_interest(
    s: StructureArrays, b: _Book, per: _Period, on: np.ndarray, pa: int, pb: int, pc: int
) -> None:
    """Interest due on group ``pa``'s tranches, pro rata as far as the cash goes."""
    grp = s.groups[pa, : s.group_len[pa]]
    owed = (per.due[:, grp] - per.paid[:, grp]).sum(1)
    frac = (
        np.where(owed > 1e-9, np.minimum(per.avail / np.where(owed > 0, owed, 1.0), 1.0), 0.0) * on
    )
    x = (per.due[:, grp] - per.paid[:, grp]) * frac[:, None]
    per.paid[:, grp] += x
    per.avail = np.maximum(per.avail - x.sum(1), 0.0)


def _pay_principal(
    s: StructureArrays, b: _Book, per: _Period, on: np.ndarray, pa: int, pb: int, pc: int
) -> None:
    """Principal to group ``pa``'s tranches in order: the notes' excess over the pool (or all
    the cash: ``pc``; everything in the last period), as far as the cash goes."""
    grp = s.groups[pa, : s.group_len[pa]]
    avail = per.avail
    budget = np.minimum(np.maximum(b.bal.sum(1) - per.pool_end, 0.0), avail)
    if pc == L.AMOUNT_AVAILABLE:
        budget = avail.copy()
    budget = np.where(per.fin, avail, budget)
    budget = budget * on
    for j in grp:
        x = np.minimum(b.bal[:, j], budget)
        b.bal[:, j] -= x
        b.prin_paid[:, j] += x
        avail = avail - x
        budget = budget - x
    per.avail = avail


def _fund_reserve(
    s: StructureArrays, b: _Book, per: _Period, on: np.ndarray, pa: int, pb: int, pc: int
) -> None:
    """Reserve account ``pa`` up to its target, as far as the cash goes."""
    x = np.where(on, np.clip(per.target[:, pa] - b.acc[:, pa], 0.0, None), 0.0)
    x = np.minimum(x, per.avail)
    b.acc[:, pa] += x
    per.avail = per.avail - x


def _draw_reserve(
    s: StructureArrays, b: _Book, per: _Period, on: np.ndarray, pa: int, pb: int, pc: int
) -> None:
    """Interest still owed on group ``pb``'s tranches, from reserve account ``pa``."""
    grp = s.groups[pb, : s.group_len[pb]]
    for j in grp:
        owed = per.due[:, j] - per.paid[:, j]
        x = np.where(on, np.clip(np.minimum(owed, b.acc[:, pa]), 0.0, None), 0.0)
        b.acc[:, pa] -= x
        per.paid[:, j] += x


def _draw_support(
    s: StructureArrays, b: _Book, per: _Period, on: np.ndarray, pa: int, pb: int, pc: int
) -> None:
    """Interest still owed (and, in the last period, principal) on the support's group from
    provider ``pa`` while it has not defaulted, up to its cap."""
    g = s.support_i[pa, L.SI_GROUP]
    grp = s.groups[g, : s.group_len[g]]
    alive_sup = (per.sup_def[:, pa] > per.t) & on
    cov = s.support_i[pa, L.SI_COVERS]
    parts = [p for p in (0, 1) if not (p == 0 and cov == L.COVERS_PRINCIPAL)]
    parts = [p for p in parts if not (p == 1 and cov == L.COVERS_INTEREST)]
    for j in grp:
        for part in parts:
            owed = (per.due[:, j] - per.paid[:, j]) if part == 0 else b.bal[:, j] * per.fin
            room = s.support_f[pa, L.SF_CAP] - b.sup_cum[:, pa]
            x = np.where(
                alive_sup & (owed > 1e-9),
                np.clip(np.minimum(owed, room), 0.0, None),
                0.0,
            )
            b.sup_cum[:, pa] += x
            if part == 0:
                per.paid[:, j] += x
            else:
                b.bal[:, j] -= x
                b.prin_paid[:, j] += x


def _write_off(
    s: StructureArrays, b: _Book, per: _Period, on: np.ndarray, pa: int, pb: int, pc: int
) -> None:
    """The notes' excess over the pool (and the recoveries still to come, before the last
    period) written off, most junior tranche first."""
    deficiency = np.where(
        on, b.bal.sum(1) - per.pool_end - np.where(per.fin, 0.0, per.pending), 0.0
    )
    for j in range(b.bal.shape[1] - 1, -1, -1):
        x = np.clip(np.minimum(b.bal[:, j], deficiency), 0.0, None)
        b.bal[:, j] -= x
        b.loss[:, j] += x
        deficiency = deficiency - x


def _pay_residual(
    s: StructureArrays, b: _Book, per: _Period, on: np.ndarray, pa: int, pb: int, pc: int
) -> None:
    """All cash left to the residual holder (leaves the deal)."""
    per.avail = np.where(on, 0.0, per.avail)


_STEPS = {
    L.OP_PAY_FEE: _pay_fee,
    L.OP_PAY_INTEREST: _pay_interest,
    L.OP_PAY_PRINCIPAL: _pay_principal,
    L.OP_FUND_RESERVE: _fund_reserve,
    L.OP_DRAW_RESERVE: _draw_reserve,
    L.OP_DRAW_SUPPORT: _draw_support,
    L.OP_WRITE_OFF: _write_off,
    L.OP_PAY_RESIDUAL: _pay_residual,
}


def _run_steps(cd: CompiledDeal, b: _Book, per: _Period, status: np.ndarray) -> None:
    """Each waterfall's steps (normal, accelerated, event of default) on the paths in it."""
    s = cd.structure
    for w in range(3):
        on = (status == w) & per.live
        if not on.any() or s.n_steps[w] == 0:
            continue
        for k in range(s.n_steps[w]):
            op, pa, pb, pc = s.ops[w, k]
            step = _STEPS.get(op)
            if step is None:
                raise NotImplementedError(f"opcode {op}")
            step(s, b, per, on, pa, pb, pc)


def _close(cd: CompiledDeal, b: _Book, per: _Period) -> None:
    """End of period: interest paid booked, shortfalls and unpaid fees carried forward,
    missed-interest triggers set, what is left in the last period lost, cash carried over."""
    s = cd.structure
    paid = per.paid * per.live[:, None]
    b.int_paid += paid
    b.fee_unpaid = np.where(per.fee_due - per.fee_paid < 1e-9, 0.0, per.fee_due - per.fee_paid)
    b.short = np.where(per.due - paid < 1e-9, 0.0, per.due - paid)
    for g in range(len(cd.trigger_names)):
        if s.trigger_i[g, L.GI_KIND] == L.TRIG_MISSED_INTEREST:
            gr = s.trigger_i[g, L.GI_GROUP]
            b.missed[:, g] = b.short[:, s.groups[gr, : s.group_len[gr]]].sum(1) > 0.01
    b.loss += b.bal * per.fin[:, None]
    b.bal = np.where(per.fin[:, None] | (b.bal < 1e-7), 0.0, b.bal)
    b.cash = np.maximum(per.avail, 0.0)
    b.pool = per.pool_end
    b.ended |= per.fin


def _waterfall(cd: CompiledDeal, m: MonteCarloModel, flows: np.ndarray, sup_def: np.ndarray):
    """Run the waterfall on every path, period by period, from pool flows float64[P, N_PF, T]
    and support default periods int64[P, S]: principal and interest paid and principal lost
    per tranche, float64[P, J] each (yuan)."""
    n_p, _, n_t = flows.shape
    b = _new_book(cd, n_p)
    for t in range(n_t):
        per = _collections(cd, b, flows, sup_def, t)
        _amounts_due(cd, b, per)
        status = _waterfall_status(cd, b, sup_def, t, n_p)
        _reserves(cd, b, per, n_t)
        _run_steps(cd, b, per, status)
        _close(cd, b, per)
    return {"principal_paid": b.prin_paid, "interest_paid": b.int_paid, "loss": b.loss}
