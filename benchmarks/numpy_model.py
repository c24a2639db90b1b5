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

import numpy as np
from scipy import special

from abs_engine.compile.deal import CompiledDeal
from abs_engine.compile.model import MonteCarloModel
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


def _waterfall(cd: CompiledDeal, m: MonteCarloModel, flows: np.ndarray, sup_def: np.ndarray):
    s = cd.structure
    n_p, _, n_t = flows.shape
    n_j = len(cd.tranche_names)
    bal = np.tile(s.tranche_f[:, L.TF_BALANCE], (n_p, 1))
    short = np.zeros((n_p, n_j))
    fee_unpaid = np.zeros((n_p, len(cd.fee_names)))
    acc = np.tile(s.account_f[:, L.AF_INITIAL], (n_p, 1))
    sup_cum = np.zeros((n_p, len(cd.support_names)))
    latched = np.zeros((n_p, len(cd.trigger_names)), dtype=bool)
    missed = np.zeros((n_p, len(cd.trigger_names)), dtype=bool)
    pool = np.full(n_p, cd.original_pool)
    cum_def = np.zeros(n_p)
    cash = np.zeros(n_p)
    prin_paid = np.zeros((n_p, n_j))
    int_paid = np.zeros((n_p, n_j))
    loss = np.zeros((n_p, n_j))
    ended = np.zeros(n_p, dtype=bool)
    for t in range(n_t):
        live = ~ended
        f = flows[:, :, t] * live[:, None]
        pool_start = pool
        pool_end = pool_start - f[:, L.PF_SCHED_PRIN] - f[:, L.PF_PREPAY] - f[:, L.PF_DEFAULT]
        pool_end = np.where(pool_end < 1e-6, 0.0, pool_end)
        cum_def = cum_def + f[:, L.PF_DEFAULT]
        avail = (
            cash
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
        notes = bal.sum(1)
        rate = np.where(
            s.tranche_i[:, L.TI_COUPON_KIND] == L.COUPON_FIXED, s.tranche_f[:, L.TF_FIXED_RATE], 0.0
        )
        due = bal * (rate * s.tranche_accrual[:, t])[None] + short
        paid = np.zeros((n_p, n_j))
        fee_due = np.zeros_like(fee_unpaid)
        for k in range(len(cd.fee_names)):
            bk = s.fee_i[k, L.FI_BASE_KIND]
            base = (
                pool_start
                if bk == L.BASE_POOL
                else notes
                if bk == L.BASE_NOTES
                else cd.original_pool
            )
            cur = s.fee_f[k, L.FF_RATE] * base * cd.deal_accrual[t] + s.fee_f[k, L.FF_FIXED]
            fee_due[:, k] = (
                np.clip(cur, s.fee_f[k, L.FF_FLOOR], s.fee_f[k, L.FF_CAP]) + fee_unpaid[:, k]
            )
        fee_paid = np.zeros_like(fee_due)
        # triggers
        status = np.zeros(n_p, dtype=np.int64)
        for g in range(len(cd.trigger_names)):
            kind = s.trigger_i[g, L.GI_KIND]
            if kind == L.TRIG_CUM_DEFAULT:
                br = cum_def / cd.original_pool > s.trigger_f[g, L.GF_THRESHOLD]
            elif kind == L.TRIG_SUPPORT_DEFAULT:
                br = sup_def[:, s.trigger_i[g, L.GI_SUPPORT]] <= t
            elif kind == L.TRIG_MISSED_INTEREST:
                br = missed[:, g]
            else:
                raise NotImplementedError("coverage triggers are not in the NumPy baseline")
            latched[:, g] |= br
            active = latched[:, g] if s.trigger_i[g, L.GI_CURABLE] == 0 else br
            eff = s.trigger_i[g, L.GI_EFFECT]
            if eff == L.EFFECT_ACCELERATE:
                status = np.where(active & (status < 1), 1, status)
            elif eff == L.EFFECT_EVENT_OF_DEFAULT:
                status = np.where(active, 2, status)
        for w in (2, 1):
            if s.n_steps[w] == 0:
                status = np.where(status == w, w - 1, status)
        # reserve targets (next-period interest on a group) and releases
        target = np.zeros_like(acc)
        for a in range(len(cd.account_names)):
            tk = s.account_i[a, L.AI_TARGET_KIND]
            if tk == L.TARGET_FIXED:
                target[:, a] = s.account_f[a, L.AF_AMOUNT]
            elif tk == L.TARGET_NEXT_INTEREST and t + 1 < n_t:
                grp = s.groups[
                    s.account_i[a, L.AI_GROUP], : s.group_len[s.account_i[a, L.AI_GROUP]]
                ]
                target[:, a] = (
                    bal[:, grp] * (rate[grp] * s.tranche_accrual[grp, t + 1])[None]
                ).sum(1)
            elif tk == L.TARGET_PERCENT:
                bk = s.account_i[a, L.AI_OF_KIND]
                if bk == L.BASE_POOL:
                    base = pool_start
                elif bk == L.BASE_NOTES:
                    base = notes
                elif bk == L.BASE_ORIGINAL_POOL:
                    base = np.full(n_p, cd.original_pool)
                else:
                    base = bal[:, s.account_i[a, L.AI_OF_TRANCHE]]
                target[:, a] = np.maximum(
                    s.account_f[a, L.AF_RATE] * base, s.account_f[a, L.AF_FLOOR]
                )
        target = np.where(fin[:, None], 0.0, target)
        release = np.maximum(acc - target, 0.0) * live[:, None]
        acc = acc - release
        avail = avail + release.sum(1)
        prin_due_now = np.zeros((n_p, n_j))
        for w in range(3):
            on = (status == w) & live
            if not on.any() or s.n_steps[w] == 0:
                continue
            for k in range(s.n_steps[w]):
                op, pa, pb, pc = s.ops[w, k]
                if op == L.OP_PAY_FEE:
                    x = np.where(on, np.minimum(fee_due[:, pa] - fee_paid[:, pa], avail), 0.0)
                    fee_paid[:, pa] += x
                    avail = avail - x
                elif op == L.OP_PAY_INTEREST:
                    grp = s.groups[pa, : s.group_len[pa]]
                    owed = (due[:, grp] - paid[:, grp]).sum(1)
                    frac = (
                        np.where(
                            owed > 1e-9, np.minimum(avail / np.where(owed > 0, owed, 1.0), 1.0), 0.0
                        )
                        * on
                    )
                    x = (due[:, grp] - paid[:, grp]) * frac[:, None]
                    paid[:, grp] += x
                    avail = np.maximum(avail - x.sum(1), 0.0)
                elif op == L.OP_PAY_PRINCIPAL:
                    grp = s.groups[pa, : s.group_len[pa]]
                    budget = np.minimum(np.maximum(bal.sum(1) - pool_end, 0.0), avail)
                    if pc == L.AMOUNT_AVAILABLE:
                        budget = avail.copy()
                    budget = np.where(fin, avail, budget)
                    budget = budget * on
                    for j in grp:
                        x = np.minimum(bal[:, j], budget)
                        bal[:, j] -= x
                        prin_paid[:, j] += x
                        prin_due_now[:, j] += x
                        avail = avail - x
                        budget = budget - x
                elif op == L.OP_FUND_RESERVE:
                    x = np.where(on, np.clip(target[:, pa] - acc[:, pa], 0.0, None), 0.0)
                    x = np.minimum(x, avail)
                    acc[:, pa] += x
                    avail = avail - x
                elif op == L.OP_DRAW_RESERVE:
                    grp = s.groups[pb, : s.group_len[pb]]
                    for j in grp:
                        owed = due[:, j] - paid[:, j]
                        x = np.where(on, np.clip(np.minimum(owed, acc[:, pa]), 0.0, None), 0.0)
                        acc[:, pa] -= x
                        paid[:, j] += x
                elif op == L.OP_DRAW_SUPPORT:
                    grp = s.groups[
                        s.support_i[pa, L.SI_GROUP], : s.group_len[s.support_i[pa, L.SI_GROUP]]
                    ]
                    alive_sup = (sup_def[:, pa] > t) & on
                    cov = s.support_i[pa, L.SI_COVERS]
                    for j in grp:
                        for part in (0, 1):
                            if part == 0 and cov == L.COVERS_PRINCIPAL:
                                continue
                            if part == 1 and cov == L.COVERS_INTEREST:
                                continue
                            owed = (due[:, j] - paid[:, j]) if part == 0 else bal[:, j] * fin
                            room = s.support_f[pa, L.SF_CAP] - sup_cum[:, pa]
                            x = np.where(
                                alive_sup & (owed > 1e-9),
                                np.clip(np.minimum(owed, room), 0.0, None),
                                0.0,
                            )
                            sup_cum[:, pa] += x
                            if part == 0:
                                paid[:, j] += x
                            else:
                                bal[:, j] -= x
                                prin_paid[:, j] += x
                elif op == L.OP_WRITE_OFF:
                    deficiency = np.where(
                        on, bal.sum(1) - pool_end - np.where(fin, 0.0, pending), 0.0
                    )
                    for j in range(n_j - 1, -1, -1):
                        x = np.clip(np.minimum(bal[:, j], deficiency), 0.0, None)
                        bal[:, j] -= x
                        loss[:, j] += x
                        deficiency = deficiency - x
                elif op == L.OP_PAY_RESIDUAL:
                    avail = np.where(on, 0.0, avail)
                else:
                    raise NotImplementedError(f"opcode {op}")
        paid = paid * live[:, None]
        int_paid += paid
        fee_unpaid = np.where(fee_due - fee_paid < 1e-9, 0.0, fee_due - fee_paid)
        short = np.where(due - paid < 1e-9, 0.0, due - paid)
        for g in range(len(cd.trigger_names)):
            if s.trigger_i[g, L.GI_KIND] == L.TRIG_MISSED_INTEREST:
                gr = s.trigger_i[g, L.GI_GROUP]
                missed[:, g] = short[:, s.groups[gr, : s.group_len[gr]]].sum(1) > 0.01
        loss += bal * fin[:, None]
        bal = np.where(fin[:, None] | (bal < 1e-7), 0.0, bal)
        cash = np.maximum(avail, 0.0)
        pool = pool_end
        ended |= fin
    return {"principal_paid": prin_paid, "interest_paid": int_paid, "loss": loss}
