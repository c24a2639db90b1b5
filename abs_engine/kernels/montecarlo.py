"""Monte Carlo driver: blocks of paths → collateral → waterfall → per-path metrics → block sums.

Paths are grouped in fixed blocks of ``block_size`` consecutive global indices. A block is run
by one thread, paths in order, and its sums are kept apart; the caller adds block sums in
block order. Since every random number is a function of (seed, global path index), every
figure is bitwise identical whatever the thread count or the number of blocks per batch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._link import bound_call
from ._twin import jit_twin
from .bundles import Ledgers, PathBuffers
from .collateral import (
    CS_DEFAULT_COUNT,
    CS_DEFAULTED,
    CS_LOG_WEIGHT,
    CS_LOSS,
    CS_PREPAID,
    CS_RECOVERED,
    CS_STUDENT_SCALE,
    DRAW_CALLEES,
    DRAWS_ENV,
    DRAWS_SOURCE,
    N_CS,
    collateral_draws,
    collateral_draws_py,
    collateral_scratch_py,
    draw_callee_args,
    provider_given_factors,
    provider_given_factors_py,
    survivor_flows,
    survivor_flows_py,
    unit_weights,
    unit_weights_py,
)
from .layout import (
    CF_W2V,
    CF_W2V2,
    CF_WV,
    CFP_ACCELERATED,
    CFP_COMPENSATION,
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
    N_MT,
    SI_KIND,
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
    SUM_N,
    SUM_W,
    SUM_W2,
    SUM_W2V,
    SUM_W2V2,
    SUM_WV,
    SUM_WV2,
    SUPPORT_COMPENSATION,
    TF_BALANCE,
)
from .waterfall import (
    _checkpoint,
    _checkpoint_py,
    _copy,
    _copy_py,
    _restart_path,
    _restart_path_py,
    bound_waterfall,
    ledgers_py,
    waterfall_path,
    waterfall_path_py,
    waterfall_scratch_py,
)


def _cash_scan_py(cash, accrual, balance):
    """One pass over a tranche's cash [T] and accruals [T]: the total cash, the largest
    accrual, and whether the value at the yield floor is surely positive (see
    :func:`tranche_yield_py`): g = -balance + the cash added in order is > 0 and no cash or
    accrual is negative. Then, the floor being below 0 (which the caller checks: not so for
    an accrual of 1e9 or more), each discount factor at it is >= 1 and, rounding being
    monotone, every partial sum of that value is at least g's."""
    total = 0.0
    amax = 0.0
    amin = 0.0
    cmin = 0.0
    g = -balance
    for t in range(cash.shape[0]):
        total += cash[t]
        g += cash[t]
        if accrual[t] > amax:
            amax = accrual[t]
        if accrual[t] < amin:
            amin = accrual[t]
        if cash[t] < cmin:
            cmin = cash[t]
    return total, amax, g > 0.0 and cmin >= 0.0 and amin >= 0.0


def _value_at_floor_py(cash, accrual, balance, lo):
    """The cash's value at the yield ``lo`` less the balance (yuan): a chain of divisions."""
    df = 1.0
    f_lo = -balance
    for t in range(cash.shape[0]):
        df = df / (1.0 + lo * accrual[t])
        f_lo += cash[t] * df
    return f_lo


def tranche_yield_py(cash, accrual, balance, guess):
    """Flat annual yield y with sum_t cash[t] · prod_{k<=t} 1 / (1 + y·accrual[k]) = balance.

    The convention matches how coupons accrue, so a tranche paid its fixed coupon and par on
    time yields exactly its coupon. Safeguarded Newton inside [-1, 10]; -1.0 (-100%) when
    even that does not bring the cash received up to par. The value at that floor is
    computed only where :func:`_cash_scan_py` does not already know it positive."""
    n_t = cash.shape[0]
    total, amax, floor_positive = _cash_scan_py(cash, accrual, balance)
    if balance <= 0.0 or total <= 0.0 or amax <= 0.0:
        return -1.0 if balance > 0.0 else np.nan
    # yields are floored at -100%: below that per-period compounding stops meaning much
    lo = -1.0
    if lo <= -1.0 / amax:
        lo = -1.0 / amax + 1e-9
    # the bound needs a floor below 0 (each factor then >= 1): not so for accruals >= 1e9
    skip = floor_positive and lo < 0.0
    if not skip and _value_at_floor_py(cash, accrual, balance, lo) <= 0.0:
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


def path_metrics_py(led_tr, sum_tr, sum_pool, stats, tranche_f, tranche_accrual, original_pool,
                    support_default_period, cash, metrics):  # fmt: skip
    """Reduce one path's ledgers (``led``, a :class:`~abs_engine.kernels.bundles.Ledgers`) and
    collateral statistics ``stats`` [N_CS] to the metric vector ``metrics`` [J·N_MT + N_MP]
    (``MT_*`` per tranche, then ``MP_*``); ``cash`` float64[T] is scratch."""
    n_t = led_tr.shape[0]
    n_j = led_tr.shape[1]
    for j in range(n_j):
        base = j * N_MT
        bal = tranche_f[j, TF_BALANCE]
        pv = 0.0
        df = 1.0
        coupon_sum = 0.0
        for t in range(n_t):
            x = 1.0 + led_tr[t, j, LT_COUPON_RATE] * tranche_accrual[j, t]
            if x != 1.0:  # df / 1.0 is df: no division (a chain of them) at a zero coupon
                # (or wherever rate × accrual rounds away)
                df = df / x
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


def _bin_py(v, lo, width, n_float, top):
    """Histogram bin of v on [lo, lo + width] in ``top`` + 1 bins (``n_float`` their number
    as a float): int((v − lo) / width · n), values outside in the end bins. Clamped before
    the conversion to an integer, which compiled is undefined from 2^63 on (x86 gives
    -2^63: a coverage ratio from about 1.2·10^16 on, say an available 10^8 yuan over
    obligations just above ``waterfall.EPS``, went to the first bin of the per-period and
    the minimum coverage histograms instead of the last); +inf in the last bin, NaN in the
    first (the callers bin no NaN). Two selects, not branches (benchmarks/HISTORY.md)."""
    x = (v - lo) / width * n_float
    x = x if x > 0.0 else 0.0
    x = x if x < top else float(top)
    return int(x)


_bin = jit_twin(_bin_py, cache=True, inline="always")


def path_cashflows_py(led_tr, led_per, led_sup, support_i, out):
    """The expected-cash-flow items of one path's ledgers ``led``: out[t, j·N_CFT + CFT_*] per
    tranche, then out[t, J·N_CFT + CFP_*] for the pool (yuan; CFP_ACCELERATED is 0/1). What
    the supports paid is split by ``support_i``'s kinds: guarantees and undertakings in
    ``CFP_SUPPORT``, loss compensation in ``CFP_COMPENSATION``, as the pool's summaries split
    them (``support_paid`` counted both in the cash flows only)."""
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
        comp_paid = 0.0
        for s in range(n_s):
            if support_i[s, SI_KIND] == SUPPORT_COMPENSATION:
                comp_paid += led_sup[t, s, LS_PAID]
            else:
                sup_paid += led_sup[t, s, LS_PAID]
        out[t, k + CFP_INTEREST] = led_per[t, LP_INTEREST]
        out[t, k + CFP_SCHED_PRIN] = led_per[t, LP_SCHED_PRIN]
        out[t, k + CFP_PREPAY] = led_per[t, LP_PREPAY]
        out[t, k + CFP_DEFAULT] = led_per[t, LP_DEFAULT]
        out[t, k + CFP_RECOVERY] = led_per[t, LP_RECOVERY]
        out[t, k + CFP_POOL_END] = led_per[t, LP_POOL_END]
        out[t, k + CFP_SUPPORT] = sup_paid
        out[t, k + CFP_COMPENSATION] = comp_paid
        out[t, k + CFP_ACCELERATED] = 1.0 if led_per[t, LP_STATUS] > 0.0 else 0.0
        cr = led_per[t, LP_COVERAGE_RATIO]
        defined = not math.isnan(cr)
        out[t, k + CFP_COVERAGE] = cr if defined else 0.0
        out[t, k + CFP_COVERAGE_DEFINED] = 1.0 if defined else 0.0
    return 0


def block_scratch(model, deal, sums):
    """The scratch of :func:`run_block_py` (either twin), a tuple: collateral scratch, ledgers,
    waterfall scratch (with checkpoints) and per-path buffers (metric vector, cash flows,
    coverage ratios, and the memoised no-default path's, with its inputs and ledgers), sized
    from the bundles and the block sums ``sums``.
    Plain NumPy, called from Python: the compiled :data:`run_block` allocates nothing
    (:data:`run_block_cmc`, compiled with reference counts, allocates its two branches'
    buffers itself and ignores the per-path buffers)."""
    n_t = model.agg_interest.shape[0]
    n_j = deal.tranche_f.shape[0]
    n_f = deal.fee_f.shape[0]
    n_a = deal.account_f.shape[0]
    n_s = deal.support_f.shape[0]
    n_g = deal.trigger_f.shape[0]
    n_m = sums.m.shape[2]
    n_cf = sums.cf.shape[3]
    coll = collateral_scratch_py(
        model.obligor_class.shape[0],
        model.class_threshold.shape[0],
        model.chol.shape[0],
        n_t,
        n_s,
    )
    led = ledgers_py(n_t, n_j, n_f, n_a, n_s)
    wf = waterfall_scratch_py(n_j, n_f, n_a, n_s, n_g, n_t, checkpoints=True)
    buf = PathBuffers(
        np.zeros(n_t),
        np.zeros(n_m),
        np.zeros((n_t, n_cf)),
        np.zeros(n_t),
        np.zeros(n_m),
        np.zeros((n_t, n_cf)),
        np.zeros(n_t),
        np.zeros(N_CS),
        np.zeros_like(coll.flows),
        np.zeros_like(coll.support_default_period),
        Ledgers(*(np.zeros_like(a) for a in led)),
    )
    return coll, led, wf, buf


def _add_path_py(m, cf, w_tot, bb, metrics, path_cf, w1, w2, n, unit):
    """Add ``n`` paths with this metric vector [M] and these cash flows [T, N_CF] to block
    ``bb``'s sums ``m`` [B, N_SUM, M], ``cf`` [B, N_CF_SUM, T, N_CF] and ``w_tot`` [B, 2]:
    ``w1`` the sum of their likelihood-ratio weights, ``w2`` the sum of their squares (one
    path: w and w²; the memoised no-default path, added once per block: its count under crude
    sampling, where every weight is 1). The rows are the ``SUM_*`` and ``CF_*`` of
    :mod:`abs_engine.kernels.layout`; 1.0 · v is v exactly, so crude sums are plain sums.

    ``unit`` 1 (every weight of the block's paths exactly 1, so w1 = w2 = n on every call):
    the sums that would then repeat another's additions one for one are left out, and
    :func:`_unit_weight_sums_py` copies them in at the end of the block, bit for bit the same."""
    n_m = metrics.shape[0]
    for k in range(n_m):
        v = metrics[k]
        if not math.isnan(v):
            m[bb, SUM_WV, k] += w1 * v
            m[bb, SUM_W2V2, k] += w2 * v * v
            m[bb, SUM_W, k] += w1
            if unit == 0:
                m[bb, SUM_N, k] += n
                m[bb, SUM_WV2, k] += w1 * v * v
                m[bb, SUM_W2V, k] += w2 * v
                m[bb, SUM_W2, k] += w2
    n_t = path_cf.shape[0]
    n_cf = path_cf.shape[1]
    for t in range(n_t):
        for k in range(n_cf):
            v = path_cf[t, k]
            cf[bb, CF_WV, t, k] += w1 * v
            cf[bb, CF_W2V2, t, k] += w2 * v * v
            if unit == 0:
                cf[bb, CF_W2V, t, k] += w2 * v
    w_tot[bb, 0] += w1
    w_tot[bb, 1] += w2
    return 0


def _unit_weight_sums_py(m, cf, bb):
    """The sums :func:`_add_path_py` leaves out under unit weights, from those that had the
    same additions in the same order (w1 = w2 = n): Σn = Σw² = Σw, Σw·v² = Σw²·v²,
    Σw²·v = Σw·v, in block ``bb``'s rows of ``m`` and ``cf`` (zeros before the block)."""
    for k in range(m.shape[2]):
        m[bb, SUM_N, k] = m[bb, SUM_W, k]
        m[bb, SUM_W2, k] = m[bb, SUM_W, k]
        m[bb, SUM_WV2, k] = m[bb, SUM_W2V2, k]
        m[bb, SUM_W2V, k] = m[bb, SUM_WV, k]
    for t in range(cf.shape[2]):
        for k in range(cf.shape[3]):
            cf[bb, CF_W2V, t, k] = cf[bb, CF_WV, t, k]
    return 0


def _add_histograms_py(hist_count, hist_loss, hist_tr, hist_cov, lo, hi, bb, stats, metrics,
                       coverage, n_obl, original_pool, count):  # fmt: skip
    """Add paths with these figures, of total likelihood-ratio weight ``count``, to row
    ``bb`` of the histograms (the block's, or a kernel thread's under crude sampling): default
    count, pool loss rate, the per-tranche metrics ``HIST_TRANCHE_METRICS`` and the coverage
    ratio per period (``coverage`` float64[T], NaN where undefined). Under crude sampling
    every weight is 1 and the bins hold path counts (whole numbers, exact in float64)."""
    n_h1 = hist_count.shape[1]
    n_h2 = hist_loss.shape[1]
    n_j = hist_tr.shape[1]
    n_ht = hist_tr.shape[2]
    n_h3 = hist_tr.shape[3]
    dc = stats[CS_DEFAULT_COUNT]
    h = int(dc * (n_h1 - 1) / n_obl + 0.5) if n_obl > 0 else 0
    if h > n_h1 - 1:
        h = n_h1 - 1
    hist_count[bb, h] += count
    lr = stats[CS_LOSS] / original_pool
    h = int(lr * n_h2)
    if h > n_h2 - 1:
        h = n_h2 - 1
    if h < 0:
        h = 0
    hist_loss[bb, h] += count
    # each range's lower end and width read once, the tranches inside: a histogram's ends
    # read again for every value, after the bin's store before it, cost about 4% of a
    # computed path's time in the specialised kernel on the bundled deal (the generic one
    # within noise; benchmarks/HISTORY.md). The same bins, bit for bit
    n_float = float(n_h3)
    top = n_h3 - 1
    for q in range(n_ht):
        lo_q = lo[q]
        width = hi[q] - lo_q
        item = HIST_TRANCHE_METRICS[q]
        for j in range(n_j):
            v = metrics[j * N_MT + item]
            if not math.isnan(v):
                hist_tr[bb, j, q, _bin_py(v, lo_q, width, n_float, top)] += count
    lo_c = lo[n_ht]
    width = hi[n_ht] - lo_c
    for t in range(coverage.shape[0]):
        v = coverage[t]
        if not math.isnan(v):
            hist_cov[bb, t, _bin_py(v, lo_c, width, n_float, top)] += count
    return 0


def _first_difference_py(flows, sdp, base_flows, base_sdp):
    """The first period whose waterfall inputs differ from the memoised no-default path's
    (``base_flows`` float64[N_PF, T], ``base_sdp`` int64[S]): a pool flow not bitwise
    equal (a NaN, or zeros of two signs, differ), or a provider default in one path only by
    then; T when none differ. A path restarts there from that path's checkpoint."""
    n_t = flows.shape[1]
    t0 = n_t
    for s in range(sdp.shape[0]):
        if sdp[s] != base_sdp[s]:
            first = sdp[s] if sdp[s] < base_sdp[s] else base_sdp[s]
            if first < t0:
                t0 = first
    for t in range(t0):
        for k in range(flows.shape[0]):
            a = flows[k, t]
            b = base_flows[k, t]
            if a != b or (a == 0.0 and math.copysign(1.0, a) != math.copysign(1.0, b)):
                return t
    return t0


def _keep_base_py(flows, sdp, led, buf):
    """Keep the memoised path's inputs and ledgers in ``buf`` (``base_*``)."""
    _copy_py(flows, buf.base_flows)
    _copy_py(sdp, buf.base_sdp)
    base_led = buf.base_led
    _copy_py(led.tr, base_led.tr)
    _copy_py(led.fee, base_led.fee)
    _copy_py(led.acc, base_led.acc)
    _copy_py(led.sup, base_led.sup)
    _copy_py(led.per, base_led.per)
    return 0


def _copy_rows_py(src, dst, t_from, t_to):
    """``dst[t_from:t_to] = src[t_from:t_to]`` for two C-contiguous arrays of one shape
    (rows along the first axis), element by element."""
    row = src.size // src.shape[0] if src.shape[0] > 0 else 0
    for k in range(t_from * row, t_to * row):
        dst.flat[k] = src.flat[k]
    return 0


def _restart_period_py(flows, sdp, buf, led, wf, valid):
    """The period t0 a path restarts in (:func:`_first_difference_py` against the memoised
    path's inputs in ``buf``), the path readied to go on from there: that path's ledger rows
    before t0 back in ``led`` (the first ``valid`` rows hold them still, the rest are
    copied from ``buf.base_led``), its checkpoint at t0 restored (:func:`_restart_path_py`).
    0: no restart."""
    t0 = _first_difference_py(flows, sdp, buf.base_flows, buf.base_sdp)
    if valid < t0:
        base_led = buf.base_led
        _copy_rows_py(base_led.tr, led.tr, valid, t0)
        _copy_rows_py(base_led.fee, led.fee, valid, t0)
        _copy_rows_py(base_led.acc, led.acc, valid, t0)
        _copy_rows_py(base_led.sup, led.sup, valid, t0)
        _copy_rows_py(base_led.per, led.per, valid, t0)
    if t0 > 0:
        _restart_path_py(t0, led, wf)
    return t0


def _checkpointed_path_py(flows, sdp, base_rate, deal, led, wf):
    """The memoised path through the waterfall a period at a time, a checkpoint of its state
    saved at the start of each period after the first and at its end (ledgers and summaries
    bitwise those of one call)."""
    n_t = flows.shape[1]
    for t in range(n_t):
        waterfall_path_py(flows, sdp, base_rate, deal, led, wf, t, t + 1)
        _checkpoint_py(t + 1, led, wf)
    waterfall_path_py(flows, sdp, base_rate, deal, led, wf, n_t, n_t + 1)
    return 0


def _no_default_path_py(memo, n_def, support_default_period, n_t):
    """Whether this path is the memoisable no-default path: no obligor and no provider
    defaults, on a model whose no-default pool flows are always the same (``memo``)."""
    if memo == 0 or n_def != 0:
        return False
    for s in range(support_default_period.shape[0]):
        if support_default_period[s] < n_t:
            return False
    return True


def run_block_py(first_block, bb, spec, model, deal, sums, coll, led, wf, buf):
    """Block ``first_block + bb`` of the run, path by path in global order, into block ``bb``
    of ``sums``.

    Parameters
    ----------
    first_block, bb : int
        Global index of the kernel call's first block, and this block's index in the call.
    spec : RunSpec
        Block size, path count, seed, histogram ranges, whether to keep per-path metrics.
    model : CollateralModel
    deal : DealArrays
    sums : BlockSums, written
        Per block of the call (0-based): metric and cash-flow sums, and histograms (in the
        block's row, or in the only row where they have one); per path of the call
        (``spec.keep``): the metric vectors, ``path_metrics[p - first_path]``.
    coll, led, wf, buf : CollateralScratch, Ledgers, WaterfallScratch, PathBuffers
        Scratch, overwritten (:func:`block_scratch`; one set a thread, reused block after
        block: every path writes what it reads). :func:`run_block_cmc_py` takes the same and
        leaves ``buf`` alone.

    Each block's sums are kept apart, so the caller's block-order total is the same however
    the blocks are shared out (the histograms too under importance sampling; under crude
    sampling a thread's blocks share its row of whole counts). The compiled twin releases the GIL:
    :func:`abs_engine.simulation.run_range` calls it block by block from a pool of threads
    (a compiled loop around it, ``prange`` or not, would be compiled once more with all it
    calls: a third of the cold compile with ``prange``, 5 s without; measured).

    The compiled twin, and every compiled function it calls once a path, are compiled with
    ``refcounts=False`` (:func:`~abs_engine.kernels._twin.jit_twin`): nothing here allocates
    or keeps an array beyond the call. So the caller owns the scratch, allocated in Python:
    an allocating compiled wrapper, linked and optimised again with all it calls, took 4 s
    more to compile. The bundles are opened here, once a block: the per-path helpers take
    arrays, except the collateral draws, which take the bundles and are inlined here at the
    source level with their phases (``collateral.DRAWS_SOURCE``; inlined by numba instead,
    they cost 2.5 s more to compile; as a numba call with reference counts, 5-25% more time
    a path as shipped)."""
    n_t = model.agg_interest.shape[0]
    n_obl = model.obligor_class.shape[0]
    m, cf, w_tot = sums.m, sums.cf, sums.w_tot
    h_count, h_loss, h_tr, h_cov = sums.hist_count, sums.hist_loss, sums.hist_tr, sums.hist_cov
    path_metrics = sums.path_metrics
    lo, hi, seed, keep = spec.hist_lo, spec.hist_hi, spec.seed, spec.keep
    memo, base_rate = model.memo, model.base_rate
    tranche_f, tranche_accrual, original_pool = (
        deal.tranche_f, deal.tranche_accrual, deal.original_pool
    )  # fmt: skip
    first_path = first_block * spec.block_size
    p0 = (first_block + bb) * spec.block_size
    p1 = min(p0 + spec.block_size, spec.n_paths)
    hb = min(bb, h_count.shape[0] - 1)  # the histograms' row: this block's, or the only one
    flows, sdp, stats = coll.flows, coll.support_default_period, coll.stats
    led_tr, led_per, led_sup, sum_tr, sum_pool = led.tr, led.per, led.sup, led.sum_tr, led.sum_pool
    cash, metrics, path_cf, coverage = buf.cash, buf.metrics, buf.path_cf, buf.coverage
    base_metrics, base_cf, base_cov, base_stats = (
        buf.base_metrics, buf.base_cf, buf.base_cov, buf.base_stats
    )  # fmt: skip
    # The no-default path has the same pool flows every time (model.memo): run it once
    # per block, add it n_base times (their weights summed) at the end. Its run saves a
    # checkpoint a period; a path with defaults restarts from the one of the first period
    # its inputs differ in (prefix restart), its ledger rows before it the no-default
    # path's: the first ``valid`` rows hold them still, the rest are copied back.
    n_base = 0
    base_w1 = 0.0
    base_w2 = 0.0
    # ``valid`` is read only once the memoised path has set it; an int64 from the start (a
    # literal 0 would compile _copy_rows for a literal signature besides the one the cold
    # compile's second process compiles)
    valid = n_t
    unit = unit_weights_py(model)  # every weight exactly 1: the repeated sums copied at the end
    for p in range(p0, p1):
        n_def = collateral_draws_py(seed, p, model, coll)
        # unit weights: the log weight is 0, and exp(0) = 1 exactly, spared
        w = 1.0 if unit != 0 else math.exp(stats[CS_LOG_WEIGHT])
        base_path = _no_default_path_py(memo, n_def, sdp, n_t)
        if base_path and n_base > 0:
            # the memoised path again: its sums and histograms are added n_base times
            # at the end of the block
            n_base += 1
            base_w1 += w
            base_w2 += w * w
            if keep != 0:
                _copy_py(base_metrics, path_metrics[p - first_path])
            continue
        survivor_flows_py(model, coll)
        t0 = 0
        if n_base > 0:
            t0 = _restart_period_py(flows, sdp, buf, led, wf, valid)
        if base_path:
            _checkpointed_path_py(flows, sdp, base_rate, deal, led, wf)
        else:
            waterfall_path_py(flows, sdp, base_rate, deal, led, wf, t0, n_t + 1)
        valid = t0
        path_metrics_py(led_tr, sum_tr, sum_pool, stats, tranche_f, tranche_accrual,
                        original_pool, sdp, cash, metrics)  # fmt: skip
        path_cashflows_py(led_tr, led_per, led_sup, deal.support_i, path_cf)
        for t in range(n_t):
            coverage[t] = led_per[t, LP_COVERAGE_RATIO]
        if base_path:
            n_base = 1
            base_w1 = w
            base_w2 = w * w
            _copy_py(metrics, base_metrics)
            _copy_py(path_cf, base_cf)
            _copy_py(coverage, base_cov)
            _copy_py(stats, base_stats)
            _keep_base_py(flows, sdp, led, buf)
            valid = n_t
        else:
            _add_path_py(m, cf, w_tot, bb, metrics, path_cf, w, w * w, 1.0, unit)
            _add_histograms_py(h_count, h_loss, h_tr, h_cov, lo, hi, hb, stats, metrics,
                               coverage, n_obl, original_pool, w)  # fmt: skip
        if keep != 0:
            _copy_py(metrics, path_metrics[p - first_path])
    if n_base > 0:
        _add_path_py(m, cf, w_tot, bb, base_metrics, base_cf, base_w1, base_w2, float(n_base),
                     unit)  # fmt: skip
        _add_histograms_py(h_count, h_loss, h_tr, h_cov, lo, hi, hb, base_stats, base_metrics,
                           base_cov, n_obl, original_pool, base_w1)  # fmt: skip
    if unit != 0:
        _unit_weight_sums_py(m, cf, bb)
    return 0


def _mix_py(a, b, prob, out):
    """``out`` = (1 − prob)·a + prob·b, element by element; where either is NaN (a figure the
    one branch leaves undefined), the other when its branch is certain, else NaN."""
    q = 1.0 - prob
    flat_a = a.reshape(a.size)  # views of the contiguous arrays
    flat_b = b.reshape(b.size)
    flat_o = out.reshape(out.size)
    for k in range(flat_a.shape[0]):
        x = flat_a[k]
        y = flat_b[k]
        if math.isnan(x) or math.isnan(y):
            flat_o[k] = x if prob == 0.0 else (y if prob == 1.0 else np.nan)
        else:
            flat_o[k] = q * x + prob * y
    return 0


def _crude_second_moment_py(m, bb, a, b, mixed, prob, w):
    """Under conditional Monte Carlo, the crude second moment of a figure (for the in-run
    variance-reduction estimate) is that of its two outcomes, w·((1 − p)·a² + p·b²), not the
    square of their mixture that :func:`_add_path_py` added: swap one for the other."""
    for k in range(mixed.shape[0]):
        v = mixed[k]
        if not math.isnan(v):
            x = a[k] if not math.isnan(a[k]) else v
            y = b[k] if not math.isnan(b[k]) else v
            m[bb, SUM_WV2, k] += w * ((1.0 - prob) * x * x + prob * y * y - v * v)
    return 0


def run_block_cmc_py(first_block, bb, spec, model, deal, sums, coll, led, wf, buf):
    """:func:`run_block_py` (its own kernel, compiled only for a run that uses it) with the
    first support provider's default integrated out (conditional Monte Carlo,
    ``model.is_cmc_provider``): each path's pool flows run through the waterfall twice, the
    provider standing and defaulting (in a period drawn given that it does), and the two
    outcomes are mixed by its conditional default probability given the factors: the sums take
    the mixture, the histograms both outcomes with their shares of the path's weight. No
    memoised path (every path runs both)."""
    n_t = model.agg_interest.shape[0]
    n_obl = model.obligor_class.shape[0]
    m, cf, w_tot = sums.m, sums.cf, sums.w_tot
    h_count, h_loss, h_tr, h_cov = sums.hist_count, sums.hist_loss, sums.hist_tr, sums.hist_cov
    lo, hi, seed = spec.hist_lo, spec.hist_hi, spec.seed
    base_rate = model.base_rate
    tranche_f, tranche_accrual, original_pool = (
        deal.tranche_f, deal.tranche_accrual, deal.original_pool
    )  # fmt: skip
    n_m = m.shape[2]
    n_cf = cf.shape[3]
    p0 = (first_block + bb) * spec.block_size
    hb = min(bb, h_count.shape[0] - 1)  # the histograms' row (one a block: weighted)
    p1 = min(p0 + spec.block_size, spec.n_paths)
    flows, sdp, stats = coll.flows, coll.support_default_period, coll.stats
    led_tr, led_per, led_sup, sum_tr, sum_pool = led.tr, led.per, led.sup, led.sum_tr, led.sum_pool
    cash = np.zeros(n_t)
    metrics = np.zeros((2, n_m))
    path_cf = np.zeros((2, n_t, n_cf))
    coverage = np.zeros((2, n_t))
    mixed = np.zeros(n_m)
    mixed_cf = np.zeros((n_t, n_cf))
    no_unit = np.int64(0)  # every sum added (an int64, not a literal: _add_path's one signature)
    for p in range(p0, p1):
        collateral_draws_py(seed, p, model, coll)
        w = math.exp(stats[CS_LOG_WEIGHT])
        survivor_flows_py(model, coll)
        prob, period = provider_given_factors_py(seed, p, model, coll.z, stats[CS_STUDENT_SCALE])
        for branch in range(2):
            sdp[0] = n_t + 1 if branch == 0 else period
            waterfall_path_py(flows, sdp, base_rate, deal, led, wf, 0, n_t + 1)
            path_metrics_py(led_tr, sum_tr, sum_pool, stats, tranche_f, tranche_accrual,
                            original_pool, sdp, cash, metrics[branch])  # fmt: skip
            path_cashflows_py(led_tr, led_per, led_sup, deal.support_i, path_cf[branch])
            for t in range(n_t):
                coverage[branch, t] = led_per[t, LP_COVERAGE_RATIO]
        _mix_py(metrics[0], metrics[1], prob, mixed)
        _mix_py(path_cf[0], path_cf[1], prob, mixed_cf)
        _add_path_py(m, cf, w_tot, bb, mixed, mixed_cf, w, w * w, 1.0, no_unit)
        _crude_second_moment_py(m, bb, metrics[0], metrics[1], mixed, prob, w)
        for branch in range(2):
            share = (1.0 - prob) if branch == 0 else prob
            _add_histograms_py(h_count, h_loss, h_tr, h_cov, lo, hi, hb, stats, metrics[branch],
                               coverage[branch], n_obl, original_pool, w * share)  # fmt: skip
    return 0


tranche_yield = jit_twin(
    tranche_yield_py,
    {
        "_cash_scan_py": jit_twin(_cash_scan_py, cache=True, inline="always"),
        "_value_at_floor_py": jit_twin(_value_at_floor_py, cache=True, inline="always"),
    },
    cache=True,
    refcounts=False,
)
path_metrics = jit_twin(
    path_metrics_py, {"tranche_yield_py": tranche_yield}, cache=True, refcounts=False
)
path_cashflows = jit_twin(path_cashflows_py, cache=True, refcounts=False)
_add_path = jit_twin(_add_path_py, cache=True, refcounts=False)
_unit_weight_sums = jit_twin(_unit_weight_sums_py, cache=True, refcounts=False)
_add_histograms = jit_twin(_add_histograms_py, {"_bin_py": _bin}, cache=True, refcounts=False)
_no_default_path = jit_twin(_no_default_path_py, cache=True, inline="always")
_first_difference = jit_twin(_first_difference_py, cache=True, refcounts=False)
_copy_rows = jit_twin(_copy_rows_py, cache=True, refcounts=False)
#: the compiled twins a block kernel calls, by the names :func:`run_block_py` calls them, all
#: linked into it: the deal-specialised kernels' (:mod:`abs_engine.kernels.specialise` swaps
#: in its own waterfall)
BLOCK_REPLACEMENTS: dict[str, Any] = {
    "survivor_flows_py": survivor_flows,
    "_no_default_path_py": _no_default_path,
    "_copy_py": _copy,
    "_first_difference_py": _first_difference,
    "_copy_rows_py": _copy_rows,
    "_restart_path_py": _restart_path,
    "_checkpoint_py": _checkpoint,
    "waterfall_path_py": waterfall_path,
    "path_metrics_py": path_metrics,
    "path_cashflows_py": path_cashflows,
    "_add_path_py": _add_path,
    "_add_histograms_py": _add_histograms,
    "unit_weights_py": unit_weights,
    "_unit_weight_sums_py": _unit_weight_sums,
}
#: the generic block kernel's: the waterfall and the per-path helpers called bound, not
#: linked (:mod:`abs_engine.kernels._link`: the kernel's compile needs neither compiled, nor
#: repeats their code generation; numba's LLVM inlined none of them)
GENERIC_BLOCK_REPLACEMENTS: dict[str, Any] = {
    **BLOCK_REPLACEMENTS,
    "waterfall_path_py": bound_waterfall,
    "path_metrics_py": bound_call(path_metrics),
    "path_cashflows_py": bound_call(path_cashflows),
    "_add_path_py": bound_call(_add_path),
    "_add_histograms_py": bound_call(_add_histograms),
}
#: the helpers inlined into a block kernel at the source level
BLOCK_INLINE = (*DRAWS_SOURCE, _restart_period_py, _checkpointed_path_py, _keep_base_py)
run_block = jit_twin(
    run_block_py,
    GENERIC_BLOCK_REPLACEMENTS,
    inline_source=BLOCK_INLINE,
    inline_env=DRAWS_ENV,
    cache=True,
    nogil=True,
    no_cpython_wrapper=False,
    refcounts=False,
)
run_block_cmc = jit_twin(
    run_block_cmc_py,
    {
        "collateral_draws_py": collateral_draws,
        "survivor_flows_py": survivor_flows,
        "provider_given_factors_py": provider_given_factors,
        "waterfall_path_py": bound_waterfall,
        "path_metrics_py": path_metrics,
        "path_cashflows_py": path_cashflows,
        "_add_path_py": _add_path,
        "_add_histograms_py": _add_histograms,
        "_mix_py": jit_twin(_mix_py, cache=True, refcounts=False),
        "_crude_second_moment_py": jit_twin(_crude_second_moment_py, cache=True, refcounts=False),
    },
    cache=True,
    nogil=True,
    no_cpython_wrapper=False,
)
#: the compiled functions :data:`run_block` calls (the draws' too, though inlined): the
#: waterfall first, then the rest, which depend on nothing it does not; a cold compile of the
#: generic kernel compiles those it binds in another process while this one compiles the
#: kernel and the rest, a specialised kernel's its own waterfall here and the rest there
#: (:mod:`abs_engine.kernel_compile`). :func:`block_callee_args` gives their arguments
BLOCK_CALLEES: tuple[Any, ...] = (
    waterfall_path, *DRAW_CALLEES, survivor_flows, path_metrics, path_cashflows, _add_path,
    _add_histograms, _copy, _copy, _copy, _copy, _first_difference, _copy_rows, _copy_rows,
    _restart_path, _checkpoint, _unit_weight_sums,
)  # fmt: skip


def block_callee_args(spec, model, deal, sums, coll, led, wf, buf):
    """Arguments of the types :func:`run_block_py` passes each of :data:`BLOCK_CALLEES`, in
    that order, from its arguments (the scratch of :func:`block_scratch`)."""
    n_obl = model.obligor_class.shape[0]
    sdp, stats = coll.support_default_period, coll.stats
    return (
        (coll.flows, sdp, model.base_rate, deal, led, wf, 0, 1),
        *draw_callee_args(spec.seed, model, coll),
        (model, coll),
        (led.tr, led.sum_tr, led.sum_pool, stats, deal.tranche_f, deal.tranche_accrual,
         deal.original_pool, sdp, buf.cash, buf.metrics),
        (led.tr, led.per, led.sup, deal.support_i, buf.path_cf),
        (sums.m, sums.cf, sums.w_tot, 0, buf.metrics, buf.path_cf, 1.0, 1.0, 1.0, 1),
        (sums.hist_count, sums.hist_loss, sums.hist_tr, sums.hist_cov, spec.hist_lo,
         spec.hist_hi, 0, stats, buf.metrics, buf.coverage, n_obl, deal.original_pool, 1.0),
        (buf.metrics, buf.base_metrics),
        (buf.path_cf, buf.base_cf),
        (led.tr, buf.base_led.tr),
        (sdp, buf.base_sdp),
        (coll.flows, sdp, buf.base_flows, buf.base_sdp),
        (buf.base_led.tr, led.tr, 0, 0),
        (buf.base_led.per, led.per, 0, 0),
        (1, led, wf),
        (1, led, wf),
        (sums.m, sums.cf, 0),
    )  # fmt: skip


__all__ = [
    "BLOCK_CALLEES",
    "block_callee_args",
    "block_scratch",
    "path_metrics",
    "path_metrics_py",
    "run_block",
    "run_block_cmc",
    "run_block_cmc_py",
    "run_block_py",
    "tranche_yield",
    "tranche_yield_py",
]
