"""Monte Carlo driver: blocks of paths → collateral → waterfall → per-path metrics → block sums.

Paths are grouped in fixed blocks of ``block_size`` consecutive global indices. A block is run
by one thread, paths in order, and its sums are kept apart; the caller adds block sums in
block order. Since every random number is a function of (seed, global path index), every
figure is bitwise identical whatever the thread count or the number of blocks per batch.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ._twin import jit_twin
from .collateral import (
    CS_DEFAULT_COUNT,
    CS_DEFAULTED,
    CS_LOSS,
    CS_PREPAID,
    CS_RECOVERED,
    collateral_path,
    collateral_path_py,
    collateral_scratch,
    collateral_scratch_py,
)
from .layout import (
    CFP_ACCELERATED,
    CFP_COVERAGE,
    CFP_COVERAGE_DEFINED,
    CFP_DEFAULT,
    CFP_INTEREST,
    CFP_POOL_END,
    CFP_PREPAY,
    CFP_RECOVERY,
    CFP_SCHED_PRIN,
    CFP_SUPPORT,
    CFT_BALANCE_END,
    CFT_INTEREST,
    CFT_PRINCIPAL,
    CFT_RESIDUAL,
    CFT_WRITE_DOWN,
    FEN,
    LP_COVERAGE_RATIO,
    LP_DEFAULT,
    LP_INTEREST,
    LP_POOL_END,
    LP_PREPAY,
    LP_RECOVERY,
    LP_SCHED_PRIN,
    LP_STATUS,
    LS_PAID,
    LT_BALANCE_END,
    LT_COUPON_RATE,
    LT_INTEREST_PAID,
    LT_PRINCIPAL_PAID,
    LT_RESIDUAL_PAID,
    LT_WRITE_DOWN,
    MP_ACCELERATED,
    MP_CASH_RELEASED,
    MP_COMPENSATION,
    MP_DEFAULT_COUNT,
    MP_DEFAULT_RATE,
    MP_LOSS_RATE,
    MP_MIN_COVERAGE,
    MP_PREPAY_RATE,
    MP_PROVIDER_DEFAULT,
    MP_RECOVERY_RATE,
    MP_SUPPORT_DRAWN,
    MP_SUPPORT_PAID,
    MT_DEFAULT,
    MT_INTEREST,
    MT_IRR,
    MT_LOSS,
    MT_MIN_COVERAGE,
    MT_PRINCIPAL,
    MT_PV_LOSS,
    MT_RESIDUAL,
    MT_SUPPORT,
    MT_WAL,
    N_CFT,
    N_LA,
    N_LF,
    N_LP,
    N_LS,
    N_LT,
    N_MT,
    N_SP,
    N_ST,
    SP_CASH_RELEASED,
    SP_COMPENSATION,
    SP_MAX_STATUS,
    SP_MIN_COVERAGE,
    SP_SUPPORT_PAID,
    ST_FIRST_SHORTFALL_PERIOD,
    ST_FROM_SUPPORT,
    ST_INTEREST_PAID,
    ST_INTEREST_SHORTFALL,
    ST_LOSS,
    ST_MIN_COVERAGE,
    ST_PRINCIPAL_PAID,
    ST_RESIDUAL_PAID,
    ST_WAL_YEARS,
    TF_BALANCE,
)
from .waterfall import N_WORK, waterfall_path, waterfall_path_py


def tranche_yield_py(cash, accrual, balance, guess):
    """Flat annual yield y with sum_t cash[t] · prod_{k<=t} 1 / (1 + y·accrual[k]) = balance.

    The convention matches how coupons accrue, so a tranche paid its fixed coupon and par on
    time yields exactly its coupon. Safeguarded Newton inside [-1, 10]; -1.0 (-100%) when
    even that does not bring the cash received up to par."""
    n_t = cash.shape[0]
    total = 0.0
    amax = 0.0
    for t in range(n_t):
        total += cash[t]
        if accrual[t] > amax:
            amax = accrual[t]
    if balance <= 0.0 or total <= 0.0 or amax <= 0.0:
        return -1.0 if balance > 0.0 else np.nan
    # yields are floored at -100%: below that per-period compounding stops meaning much
    lo = -1.0
    if lo <= -1.0 / amax:
        lo = -1.0 / amax + 1e-9
    df = 1.0
    f_lo = -balance
    for t in range(n_t):
        df = df / (1.0 + lo * accrual[t])
        f_lo += cash[t] * df
    if f_lo <= 0.0:
        return lo
    hi = 10.0
    y = guess
    for _ in range(100):
        df = 1.0
        dsum = 0.0
        f = -balance
        fp = 0.0
        for t in range(n_t):
            a = accrual[t]
            inv = 1.0 / (1.0 + y * a)
            df *= inv
            dsum += a * inv
            f += cash[t] * df
            fp -= cash[t] * df * dsum
        if abs(f) <= 1e-12 * balance:
            return y
        # f decreases in y: keep the root bracketed
        if f > 0.0:
            lo = y
        else:
            hi = y
        step = f / fp if fp != 0.0 else 0.0
        y_new = y - step
        if not (lo < y_new < hi) or fp == 0.0:
            y_new = 0.5 * (lo + hi)
        if abs(y_new - y) <= 1e-14 * (1.0 + abs(y)):
            return y_new
        y = y_new
    return y


def path_metrics_py(
    led_tr,
    led_per,
    led_sup,
    sum_tr,
    sum_pool,
    stats,
    tranche_f,
    tranche_accrual,
    original_pool,
    support_default_period,
    cash,
    metrics,
):
    """Reduce one path's ledgers to the metric vector [J·N_MT + N_MP] (``MT_*``, ``MP_*``)."""
    n_t = led_tr.shape[0]
    n_j = led_tr.shape[1]
    for j in range(n_j):
        base = j * N_MT
        bal = tranche_f[j, TF_BALANCE]
        pv = 0.0
        df = 1.0
        coupon_sum = 0.0
        for t in range(n_t):
            df = df / (1.0 + led_tr[t, j, LT_COUPON_RATE] * tranche_accrual[j, t])
            c = (
                led_tr[t, j, LT_INTEREST_PAID]
                + led_tr[t, j, LT_PRINCIPAL_PAID]
                + led_tr[t, j, LT_RESIDUAL_PAID]
            )
            cash[t] = c
            pv += c * df
            coupon_sum += led_tr[t, j, LT_COUPON_RATE]
        loss = sum_tr[j, ST_LOSS]
        shortfall = (
            sum_tr[j, ST_FIRST_SHORTFALL_PERIOD] >= 0.0
            or loss > FEN
            or (sum_tr[j, ST_INTEREST_SHORTFALL] > FEN)
        )
        if bal > 0.0:
            # floored at 0: cash above par (a residual's excess spread) is no negative loss;
            # a path without a shortfall loses exactly 0, not the rounding residue of the PV
            pv_loss = bal - pv
            metrics[base + MT_PV_LOSS] = pv_loss / bal if shortfall and pv_loss > FEN else 0.0
            metrics[base + MT_LOSS] = loss / bal if loss > FEN else 0.0
            metrics[base + MT_DEFAULT] = 1.0 if shortfall else 0.0
            guess = coupon_sum / n_t
            metrics[base + MT_IRR] = tranche_yield_py(cash, tranche_accrual[j], bal, guess)
        else:
            metrics[base + MT_PV_LOSS] = np.nan
            metrics[base + MT_LOSS] = np.nan
            metrics[base + MT_DEFAULT] = np.nan
            metrics[base + MT_IRR] = np.nan
        metrics[base + MT_PRINCIPAL] = sum_tr[j, ST_PRINCIPAL_PAID]
        metrics[base + MT_INTEREST] = sum_tr[j, ST_INTEREST_PAID]
        metrics[base + MT_WAL] = sum_tr[j, ST_WAL_YEARS]
        metrics[base + MT_MIN_COVERAGE] = sum_tr[j, ST_MIN_COVERAGE]
        metrics[base + MT_SUPPORT] = sum_tr[j, ST_FROM_SUPPORT]
        metrics[base + MT_RESIDUAL] = sum_tr[j, ST_RESIDUAL_PAID]
    base = n_j * N_MT
    metrics[base + MP_DEFAULT_COUNT] = stats[CS_DEFAULT_COUNT]
    metrics[base + MP_DEFAULT_RATE] = stats[CS_DEFAULTED] / original_pool
    metrics[base + MP_LOSS_RATE] = stats[CS_LOSS] / original_pool
    metrics[base + MP_RECOVERY_RATE] = (
        stats[CS_RECOVERED] / stats[CS_DEFAULTED] if stats[CS_DEFAULTED] > 0.0 else np.nan
    )
    metrics[base + MP_PREPAY_RATE] = stats[CS_PREPAID] / original_pool
    metrics[base + MP_SUPPORT_PAID] = sum_pool[SP_SUPPORT_PAID]
    prov = 0.0
    for s in range(support_default_period.shape[0]):
        if support_default_period[s] < n_t:
            prov = 1.0
    metrics[base + MP_PROVIDER_DEFAULT] = prov
    metrics[base + MP_ACCELERATED] = 1.0 if sum_pool[SP_MAX_STATUS] > 0.0 else 0.0
    metrics[base + MP_MIN_COVERAGE] = sum_pool[SP_MIN_COVERAGE]
    metrics[base + MP_COMPENSATION] = sum_pool[SP_COMPENSATION]
    metrics[base + MP_CASH_RELEASED] = sum_pool[SP_CASH_RELEASED]
    metrics[base + MP_SUPPORT_DRAWN] = 1.0 if sum_pool[SP_SUPPORT_PAID] > FEN else 0.0
    return 0


#: per-tranche metrics with a distribution histogram (indices into the MT_* items)
HIST_TRANCHE_METRICS = np.array([MT_IRR, MT_WAL, MT_MIN_COVERAGE, MT_PV_LOSS], dtype=np.int64)


def _bin_py(v, lo, hi, n):
    """Histogram bin of v on [lo, hi] in n bins; values outside go to the end bins."""
    k = int((v - lo) / (hi - lo) * n)
    if k < 0:
        return 0
    if k > n - 1:
        return n - 1
    return k


_bin = jit_twin(_bin_py, cache=True, inline="always")


def path_cashflows_py(led_tr, led_per, led_sup, out):
    """The expected-cash-flow items of one path: out[t, j·N_CFT + CFT_*] per tranche, then
    out[t, J·N_CFT + CFP_*] for the pool (yuan; CFP_ACCELERATED is 0/1)."""
    n_t = led_tr.shape[0]
    n_j = led_tr.shape[1]
    n_s = led_sup.shape[1]
    k = n_j * N_CFT
    for t in range(n_t):
        for j in range(n_j):
            b = j * N_CFT
            out[t, b + CFT_INTEREST] = led_tr[t, j, LT_INTEREST_PAID]
            out[t, b + CFT_PRINCIPAL] = led_tr[t, j, LT_PRINCIPAL_PAID]
            out[t, b + CFT_WRITE_DOWN] = led_tr[t, j, LT_WRITE_DOWN]
            out[t, b + CFT_BALANCE_END] = led_tr[t, j, LT_BALANCE_END]
            out[t, b + CFT_RESIDUAL] = led_tr[t, j, LT_RESIDUAL_PAID]
        sup_paid = 0.0
        for s in range(n_s):
            sup_paid += led_sup[t, s, LS_PAID]
        out[t, k + CFP_INTEREST] = led_per[t, LP_INTEREST]
        out[t, k + CFP_SCHED_PRIN] = led_per[t, LP_SCHED_PRIN]
        out[t, k + CFP_PREPAY] = led_per[t, LP_PREPAY]
        out[t, k + CFP_DEFAULT] = led_per[t, LP_DEFAULT]
        out[t, k + CFP_RECOVERY] = led_per[t, LP_RECOVERY]
        out[t, k + CFP_POOL_END] = led_per[t, LP_POOL_END]
        out[t, k + CFP_SUPPORT] = sup_paid
        out[t, k + CFP_ACCELERATED] = 1.0 if led_per[t, LP_STATUS] > 0.0 else 0.0
        cr = led_per[t, LP_COVERAGE_RATIO]
        defined = not math.isnan(cr)
        out[t, k + CFP_COVERAGE] = cr if defined else 0.0
        out[t, k + CFP_COVERAGE_DEFINED] = 1.0 if defined else 0.0
    return 0


def run_blocks_py(
    first_block,
    n_blocks,
    block_size,
    n_paths,
    seed,
    # collateral model
    obligor_class,
    class_threshold,
    class_sqrt_rho,
    class_sqrt_1mrho,
    class_factor,
    chol,
    copula,
    nu,
    provider_threshold,
    provider_sqrt_rho,
    provider_factor,
    smm,
    prepay_vol,
    recovery_kind,
    recovery_rate,
    ip_value,
    obligor_factor,
    haircut,
    disposal_cost,
    ip_vol,
    ip_loading,
    lag_min,
    lag_max,
    sched_interest,
    sched_principal,
    sched_balance,
    agg_interest,
    agg_principal,
    agg_balance,
    base_rate,
    # deal
    original_pool,
    tranche_f,
    tranche_i,
    tranche_accrual,
    tranche_target,
    fee_f,
    fee_i,
    deal_accrual,
    account_f,
    account_i,
    support_f,
    support_i,
    trigger_f,
    trigger_i,
    ops,
    n_steps,
    groups,
    group_len,
    years,
    cr_tranche,
    cr_include_fees,
    call_factor,
    call_price,
    # outputs
    m_sum,
    m_sq,
    m_cnt,
    cf_sum,
    cf_sq,
    hist_count,
    hist_loss,
    hist_tr,
    hist_cov,
    hist_lo,
    hist_hi,
    keep,
    path_metrics,
):
    """Run blocks ``first_block .. first_block + n_blocks - 1`` (in ``prange``).

    Outputs per block bb (0-based within this call): ``m_sum/m_sq/m_cnt[bb, M]`` sums, sums
    of squares and counts of finite values of the metric vector; ``cf_sum/cf_sq[bb, T, K]``
    expected-cash-flow sums; ``hist_count[bb, H1]`` default-count histogram;
    ``hist_loss[bb, H2]`` pool loss-rate histogram on [0, 1];
    ``hist_tr[bb, J, N_HT, H3]`` per-tranche histograms of the metrics ``HIST_TRANCHE_METRICS``
    on [hist_lo[k], hist_hi[k]] (out-of-range values in the end bins, NaN skipped);
    ``hist_cov[bb, T, H3]`` the headline coverage ratio per period on
    [hist_lo[N_HT], hist_hi[N_HT]]; with ``keep`` = 1, ``path_metrics[p - first_path, M]``."""
    n_t = agg_interest.shape[0]
    n_j = tranche_f.shape[0]
    n_f = fee_f.shape[0]
    n_a = account_f.shape[0]
    n_s = support_f.shape[0]
    n_g = trigger_f.shape[0]
    n_obl = obligor_class.shape[0]
    n_c = class_threshold.shape[0]
    n_fac = chol.shape[0]
    n_m = m_sum.shape[1]
    n_h1 = hist_count.shape[1]
    n_h2 = hist_loss.shape[1]
    n_h3 = hist_tr.shape[3]
    n_ht = hist_tr.shape[2]
    n_cf = cf_sum.shape[2]
    first_path = first_block * block_size
    for bb in prange(n_blocks):
        b = first_block + bb
        p0 = b * block_size
        p1 = min(p0 + block_size, n_paths)
        # scratch for one block, reused by its paths
        flows, sup_def, stats, z, g, cache, stamp, prepay, rem, def_idx, def_t = (
            collateral_scratch_py(n_obl, n_c, n_fac, n_t, n_s)
        )
        led_tr = np.zeros((n_t, n_j, N_LT))
        led_fee = np.zeros((n_t, n_f, N_LF))
        led_acc = np.zeros((n_t, n_a, N_LA))
        led_sup = np.zeros((n_t, n_s, N_LS))
        led_per = np.zeros((n_t, N_LP))
        sum_tr = np.zeros((n_j, N_ST))
        sum_pool = np.zeros(N_SP)
        work = np.zeros((N_WORK, max(1, n_j, n_f, n_a, n_s, n_g)))
        pending = np.zeros((max(n_s, 1), n_t))
        cash = np.zeros(n_t)
        metrics = np.zeros(n_m)
        # The no-default path (no obligor or provider default, deterministic prepayment) has
        # the same pool flows every time: run it once per block, add it n_base times at the end.
        memo = prepay_vol == 0.0
        n_base = 0
        base_metrics = np.zeros(n_m)
        base_cf = np.zeros((n_t, n_cf))
        base_cov = np.zeros(n_t)
        path_cf = np.zeros((n_t, n_cf))
        for p in range(p0, p1):
            n_def = collateral_path_py(
                seed,
                p,
                obligor_class,
                class_threshold,
                class_sqrt_rho,
                class_sqrt_1mrho,
                class_factor,
                chol,
                copula,
                nu,
                provider_threshold,
                provider_sqrt_rho,
                provider_factor,
                smm,
                prepay_vol,
                recovery_kind,
                recovery_rate,
                ip_value,
                obligor_factor,
                haircut,
                disposal_cost,
                ip_vol,
                ip_loading,
                lag_min,
                lag_max,
                sched_interest,
                sched_principal,
                sched_balance,
                agg_interest,
                agg_principal,
                agg_balance,
                flows,
                sup_def,
                stats,
                z,
                g,
                cache,
                stamp,
                prepay,
                rem,
                def_idx,
                def_t,
            )
            base_path = False
            if memo and n_def == 0:
                base_path = True
                for s in range(n_s):
                    if sup_def[s] < n_t:
                        base_path = False
            if base_path and n_base > 0:
                n_base += 1
                for m in range(n_m):
                    metrics[m] = base_metrics[m]
            else:
                waterfall_path_py(
                    flows,
                    sup_def,
                    base_rate,
                    original_pool,
                    tranche_f,
                    tranche_i,
                    tranche_accrual,
                    tranche_target,
                    fee_f,
                    fee_i,
                    deal_accrual,
                    account_f,
                    account_i,
                    support_f,
                    support_i,
                    trigger_f,
                    trigger_i,
                    ops,
                    n_steps,
                    groups,
                    group_len,
                    years,
                    cr_tranche,
                    cr_include_fees,
                    call_factor,
                    call_price,
                    led_tr,
                    led_fee,
                    led_acc,
                    led_sup,
                    led_per,
                    sum_tr,
                    sum_pool,
                    work,
                    pending,
                )
                path_metrics_py(
                    led_tr,
                    led_per,
                    led_sup,
                    sum_tr,
                    sum_pool,
                    stats,
                    tranche_f,
                    tranche_accrual,
                    original_pool,
                    sup_def,
                    cash,
                    metrics,
                )
                path_cashflows_py(led_tr, led_per, led_sup, path_cf)
                if base_path:
                    n_base = 1
                    base_metrics[:] = metrics
                    base_cf[:, :] = path_cf
                    for t in range(n_t):
                        base_cov[t] = led_per[t, LP_COVERAGE_RATIO]
                else:
                    for m in range(n_m):
                        v = metrics[m]
                        if not math.isnan(v):
                            m_sum[bb, m] += v
                            m_sq[bb, m] += v * v
                            m_cnt[bb, m] += 1.0
                    for t in range(n_t):
                        for k in range(n_cf):
                            v = path_cf[t, k]
                            cf_sum[bb, t, k] += v
                            cf_sq[bb, t, k] += v * v
            dc = stats[CS_DEFAULT_COUNT]
            h = int(dc * (n_h1 - 1) / n_obl + 0.5) if n_obl > 0 else 0
            if h > n_h1 - 1:
                h = n_h1 - 1
            hist_count[bb, h] += 1
            lr = stats[CS_LOSS] / original_pool
            h = int(lr * n_h2)
            if h > n_h2 - 1:
                h = n_h2 - 1
            if h < 0:
                h = 0
            hist_loss[bb, h] += 1
            # distributions: per-tranche metrics and the per-period coverage ratio
            for j in range(n_j):
                for q in range(n_ht):
                    v = metrics[j * N_MT + HIST_TRANCHE_METRICS[q]]
                    if not math.isnan(v):
                        hist_tr[bb, j, q, _bin_py(v, hist_lo[q], hist_hi[q], n_h3)] += 1
            for t in range(n_t):
                v = base_cov[t] if (base_path and n_base > 1) else led_per[t, LP_COVERAGE_RATIO]
                if not math.isnan(v):
                    hist_cov[bb, t, _bin_py(v, hist_lo[n_ht], hist_hi[n_ht], n_h3)] += 1
            if keep != 0:
                for m in range(n_m):
                    path_metrics[p - first_path, m] = metrics[m]
        if n_base > 0:
            w = float(n_base)
            for m in range(n_m):
                v = base_metrics[m]
                if not math.isnan(v):
                    m_sum[bb, m] += w * v
                    m_sq[bb, m] += w * v * v
                    m_cnt[bb, m] += w
            for t in range(n_t):
                for k in range(n_cf):
                    v = base_cf[t, k]
                    cf_sum[bb, t, k] += w * v
                    cf_sq[bb, t, k] += w * v * v
    return 0


tranche_yield = jit_twin(tranche_yield_py, cache=True)
path_metrics = jit_twin(path_metrics_py, {"tranche_yield_py": tranche_yield}, cache=True)
path_cashflows = jit_twin(path_cashflows_py, cache=True)
run_blocks = jit_twin(
    run_blocks_py,
    {
        "collateral_path_py": collateral_path,
        "collateral_scratch_py": collateral_scratch,
        "waterfall_path_py": waterfall_path,
        "path_metrics_py": path_metrics,
        "path_cashflows_py": path_cashflows,
        "_bin_py": _bin,
    },
    cache=True,
    parallel=True,
)

__all__ = [
    "path_metrics",
    "path_metrics_py",
    "run_blocks",
    "run_blocks_py",
    "tranche_yield",
    "tranche_yield_py",
]
