"""Collateral simulation for one path: correlated default periods, prepayment, IP-collateral
recoveries and support-provider defaults → pool flows for the waterfall.

Cost per path is about one uniform per obligor, drawn in a loop that vectorises in pools of
32 obligors or more (two for the few under the largest class PD bound, three for those under
their own class's): the conditional cumulative PD of each class in the last period is
computed at most once per path; only obligors below it (the defaulters) look up earlier periods
(binary search over a per-path cache; once a class's second obligor drawn to default on a
path has been searched, its whole row of PDs is computed and later ones count over it: no
branch to mispredict). Under the Gaussian copula precomputed bounds on each class's PDs
over cells of its factor decide most of these comparisons without the erfc: an obligor's
uniform is compared with the PD itself only where it falls between the two bounds.
Pool flows start from the pool's scheduled totals and subtract the defaulters' rows from
their default period on, so the work is O(N + defaults·T) per path, not O(N·T).

Per period t with prepayment factor pi_t (share of each surviving schedule not yet prepaid;
pi_0 = 1, pi_{t+1} = pi_t · (1 - smm_t·m), m the path's prepayment multiplier):
    interest_t  = pi_t · (sum of scheduled interest of obligors alive in t)
    scheduled_t = pi_t · (sum of scheduled principal of obligors alive in t)
    prepaid_t   = smm_t·m · pi_t · (sum of scheduled balance after principal, alive in t)
    defaulted_t = pi_t · scheduled balance at the start of t, of obligors defaulting in t
A defaulted obligor pays nothing from its default period on (the same convention as the
deterministic scenarios).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ._twin import jit_twin
from .bundles import CollateralScratch
from .layout import (
    COPULA_STUDENT_T,
    IS_MIX_DEFENSIVE,
    N_PF,
    N_SC,
    PD_BOUND_CELLS,
    PD_BOUND_DZ,
    PD_BOUND_Z_LO,
    PF_DEFAULT,
    PF_INTEREST,
    PF_LOSS,
    PF_PENDING_RECOVERY,
    PF_PREPAY,
    PF_RECOVERY,
    PF_SCHED_PRIN,
    RECOVERY_IP,
    SC_AFTER,
    SC_BALANCE,
    SC_INTEREST,
    SC_PRINCIPAL,
)
from .prefetch import prefetch, prefetch_py
from .rng import (
    COUNTER_0,
    STREAM_FACTORS,
    STREAM_LAG,
    STREAM_MIX_PICK,
    STREAM_MIXING,
    STREAM_OBLIGORS,
    STREAM_PREPAY,
    STREAM_PROVIDER_MIXING,
    STREAM_PROVIDERS,
    STREAM_RECOVERY,
    gamma_variate,
    gamma_variate_py,
    ndtri,
    ndtri_py,
    normal,
    normal_py,
    path_base,
    path_base_py,
    path_key,
    path_key_py,
    stream_key,
    stream_key_py,
    uniform,
    uniform_py,
)

# per-path collateral statistics: stats[item]
CS_DEFAULT_COUNT = 0  # obligors defaulting with a balance outstanding
CS_DEFAULTED = 1  # defaulted balance (yuan)
CS_RECOVERED = 2  # recoveries, including those after legal final (yuan)
CS_LOSS = 3  # defaulted balance less all recoveries (yuan)
CS_LOST_RECOVERY = 4  # recoveries arriving after legal final (yuan)
CS_PREPAID = 5
CS_STUDENT_SCALE = 6  # sqrt(W / nu) for the Student-t copula, 1 for Gaussian
CS_PREPAY_MULTIPLIER = 7  # the path's lognormal prepayment multiplier m (1 without volatility)
# log of the path's likelihood ratio under importance sampling (0 under crude sampling):
# the density of its draws under the model over their density under the sampling
CS_LOG_WEIGHT = 8
N_CS = 9

_SQRT1_2 = 1.0 / math.sqrt(2.0)
#: how many defaulters ahead the booking asks for their schedule rows and recovery terms
#: (:mod:`.prefetch`; 4, 8 and 16 took the same time on the 100,000-obligor heterogeneous
#: pool), from a schedule table of how many doubles on (256 KB: a smaller one stays in
#: cache, where the hints only cost: the 10,000-obligor pool's one row drew 13% slower with
#: them), and the periods of a row one 64-byte cache line holds (N_SC doubles each)
PREFETCH_AHEAD = 8
PREFETCH_MIN_DOUBLES = 32_768
PREFETCH_PERIODS = max(1, 64 // (8 * N_SC))
#: pools of at least this many obligors find their candidates in three passes, the first
#: vectorised (:func:`_candidates_py`); smaller ones in one scalar loop
CANDIDATE_PASSES_MIN = 32


def cond_pd_py(c, t, scale, z, class_threshold, class_sqrt_rho, class_sqrt_1mrho, class_factor):
    """Conditional cumulative PD of class c by period t given factors z (and the Student-t
    scale): Phi((thr·scale - sqrt(rho)·z_f) / sqrt(1 - rho))."""
    x = class_threshold[c, t]
    if x == -np.inf:
        return 0.0
    if x == np.inf:
        return 1.0
    arg = (x * scale - class_sqrt_rho[c] * z[class_factor[c]]) / class_sqrt_1mrho[c]
    return 0.5 * math.erfc(-arg * _SQRT1_2)


def collateral_scratch_py(n_obligors, n_classes, n_factors, n_periods, n_supports):
    """A :class:`~abs_engine.kernels.bundles.CollateralScratch` for
    :func:`collateral_path_py`: allocate once and reuse path after path."""
    nc = max(n_classes, 1)
    nf = max(n_factors, 1)
    no = max(n_obligors, 1)
    return CollateralScratch(
        np.zeros((N_PF, n_periods)),
        np.zeros(n_supports, dtype=np.int64),
        np.zeros(N_CS),
        np.zeros(nf),
        np.zeros(nf),
        np.zeros((nc, n_periods)),
        np.zeros((nc, n_periods), dtype=np.int64),
        np.zeros(n_periods + 1),
        np.zeros((n_periods, N_SC)),
        np.zeros(no, dtype=np.int64),
        np.zeros(no, dtype=np.int64),
        np.zeros(no),
        np.zeros(nf, dtype=np.int64),
        np.zeros(nc),
        np.zeros(nc, dtype=np.int64),
        np.zeros(no, dtype=np.uint8),
    )


def collateral_path_py(seed, p, model, scratch):
    """Simulate path ``p`` (global index) of ``model`` (a
    :class:`~abs_engine.kernels.bundles.CollateralModel`) into ``scratch.flows`` [N_PF, T],
    ``scratch.support_default_period`` [S] (0-based period, T + 1 = never) and
    ``scratch.stats`` [N_CS]; returns the number of defaulting obligors. Shapes and meanings
    of the model arrays: :class:`abs_engine.compile.model.MonteCarloModel`.

    The two halves, :func:`collateral_draws_py` and :func:`survivor_flows_py`, can be called
    apart: the Monte Carlo driver skips the second on a memoised no-default path."""
    n_def = collateral_draws_py(seed, p, model, scratch)
    survivor_flows_py(model, scratch)
    return n_def


def _factors_py(base, chol, copula, nu, g, z, shift, mix_scale):
    """Systematic factors z = chol · g into ``z``, g standard normal under the model and
    normal with mean ``shift`` [F] under importance sampling; the Student-t mixing variable W
    (chi-square, nu degrees) drawn, with a ``mix_scale`` c, from the defensive mixture
    a·f(w) + (1 − a)·f(w / c) / c (a = ``IS_MIX_DEFENSIVE``: as the model draws it on a
    share a of paths, as c·W on the rest). Returns the mixing scale sqrt(W / nu) (1 for the
    Gaussian copula) and the log likelihood ratio of these draws (0 with no shift and
    ``mix_scale`` 1: the crude draws, bit for bit). W's part of the ratio,
    1 / (a + (1 − a)·r) with r = f(w / c) / (c·f(w)), is at most 1 / a: c drawn as c·W
    alone, its variance is infinite for c ≤ 1/2, so c was floored where a Student-t pool's
    rare losses, driven by small W, could not be reached."""
    n_f = chol.shape[0]
    key = stream_key_py(base, STREAM_FACTORS)
    log_w = 0.0
    for k in range(n_f):
        m = shift[k]
        g[k] = normal_py(key, k) + m
        if m != 0.0:
            log_w += m * (0.5 * m - g[k])
    for a in range(n_f):
        s = 0.0
        for b in range(a + 1):
            s += chol[a, b] * g[b]
        z[a] = s
    scale = 1.0
    if copula == COPULA_STUDENT_T:
        w = 2.0 * gamma_variate_py(stream_key_py(base, STREAM_MIXING), 0.5 * nu)
        if mix_scale != 1.0:
            if uniform_py(stream_key_py(base, STREAM_MIX_PICK), COUNTER_0) >= IS_MIX_DEFENSIVE:
                w *= mix_scale
            log_mix = log_mixture_density_py(w, nu, mix_scale)
            log_w -= log_mix
        scale = math.sqrt(w / nu)
    return scale, log_w


def log_mixture_density_py(w, nu, c):
    """log of the defensive mixture's density of W over the model's, at ``w``:
    log(a + (1 − a)·r), r = f(w / c) / (c·f(w)) = c^(−nu/2)·exp(−(w/2)(1/c − 1)) for f the
    chi-square density with ``nu`` degrees (a = ``IS_MIX_DEFENSIVE``), summed stably."""
    a = IS_MIX_DEFENSIVE
    log_r = -0.5 * nu * math.log(c) - 0.5 * w * (1.0 / c - 1.0)
    if log_r > 0.0:
        out = log_r + math.log((1.0 - a) + a * math.exp(-log_r))
    else:
        out = math.log(a + (1.0 - a) * math.exp(log_r))
    return out


def _prepayment_py(base, smm, vol, prepay_factor):
    """The path's prepayment multiplier m (lognormal, mean 1; 1 without volatility) and the
    surviving share pi_t of each schedule into ``prepay_factor`` [T + 1]; returns m."""
    mult = 1.0
    if vol > 0.0:
        key = stream_key_py(base, STREAM_PREPAY)
        mult = math.exp(vol * normal_py(key, COUNTER_0) - 0.5 * vol * vol)
    prepay_factor[0] = 1.0
    for t in range(smm.shape[0]):
        r = smm[t] * mult
        if r > 1.0:
            r = 1.0
        prepay_factor[t + 1] = prepay_factor[t] * (1.0 - r)
    return mult


def _provider_defaults_py(base, model, scratch, scale):
    """Support providers: latent variables in the same copula (an independent provider shares
    nothing with the pool, not even the t mixing); default period per provider into
    ``scratch.support_default_period`` (T + 1: never). Under importance sampling a provider's
    own normal has mean ``model.is_provider_shift[s]``; returns the log likelihood ratio of
    that draw (0 without). With ``model.is_cmc_provider`` the first provider's default is
    integrated out by the Monte Carlo driver (:func:`provider_given_factors_py`): its draw
    here counts for nothing."""
    thr, sqrt_rho, factor = model.provider_threshold, model.provider_sqrt_rho, model.provider_factor
    copula, nu, shift, cmc = model.copula, model.nu, model.is_provider_shift, model.is_cmc_provider
    z, support_default_period = scratch.z, scratch.support_default_period
    n_s = thr.shape[0]
    n_t = thr.shape[1]
    key = stream_key_py(base, STREAM_PROVIDERS)
    log_w = 0.0
    for s in range(n_s):
        support_default_period[s] = n_t + 1
        if thr[s, n_t - 1] == -np.inf:
            continue
        srho = sqrt_rho[s]
        f = factor[s]
        zs = z[f] if f >= 0 else normal_py(key, n_s + s)
        m = shift[s]
        eps = normal_py(key, s) + m
        if m != 0.0 and not (s == 0 and cmc != 0):
            log_w += m * (0.5 * m - eps)
        x = srho * zs + math.sqrt(1.0 - srho * srho) * eps
        scale_s = scale
        if f < 0 and copula == COPULA_STUDENT_T:
            key_w = stream_key_py(base, STREAM_PROVIDER_MIXING + s)
            scale_s = math.sqrt(2.0 * gamma_variate_py(key_w, 0.5 * nu) / nu)
        for t in range(n_t):
            if x < thr[s, t] * scale_s:
                support_default_period[s] = t
                break
    return log_w


def provider_given_factors_py(seed, p, model, z, scale):
    """Conditional Monte Carlo for the first support provider (a latent variable loaded on a
    pool factor): its probability of defaulting within the deal's life given this path's
    factors (and Student-t scale), and a default period drawn from its distribution given
    that it defaults (from the provider's own uniform: u·P(default by T) through the normal
    quantile, then the first period whose threshold it is under). Returns (probability,
    period); (0, T + 1) for a provider that cannot default."""
    thr = model.provider_threshold
    n_t = thr.shape[1]
    if thr[0, n_t - 1] == -np.inf:
        return 0.0, n_t + 1
    srho = model.provider_sqrt_rho[0]
    s1 = math.sqrt(1.0 - srho * srho)
    zs = z[model.provider_factor[0]]
    e_last = (thr[0, n_t - 1] * scale - srho * zs) / s1
    prob = 0.5 * math.erfc(-e_last * _SQRT1_2)
    if prob <= 0.0:
        return 0.0, n_t + 1
    u = uniform_py(path_key_py(seed, p, STREAM_PROVIDERS), COUNTER_0)
    eps = ndtri_py(min(max(u * prob, 1e-300), 1.0 - 1e-16))
    period = n_t - 1
    for t in range(n_t):
        if eps < (thr[0, t] * scale - srho * zs) / s1:
            period = t
            break
    return prob, period


def _class_pd_py(c, t, tag, scale, z, thr, sqrt_rho, sqrt_1mrho, factor, cache, stamp):
    """Conditional cumulative PD of class c by period t on this path into ``cache[c, t]``,
    computed once per path (valid where ``stamp`` equals ``tag`` = p + 1)."""
    if stamp[c, t] != tag:
        cache[c, t] = cond_pd_py(c, t, scale, z, thr, sqrt_rho, sqrt_1mrho, factor)
        stamp[c, t] = tag
    return 0


def _default_period_py(u, c, last, row, band, tag, scale, z, thr, sqrt_rho, sqrt_1mrho, factor,
                       cache, stamp):  # fmt: skip
    """A defaulter's period: the first t with ``u`` under class c's conditional cumulative PD
    by t (binary search over periods 0 .. ``last``; ``u`` is under the PD by ``last``). Each
    probe is decided by the class's PD band on this path where ``row`` > 0 (``band``
    [CELLS + 2, C, T, 2], ``CollateralModel.class_pd_band``; row 0: none, and ``band`` may
    then be the one-row table [1, 1, 1, 2], never read) and ``u`` is outside it, otherwise
    by the PD, cached per path: the decisions of computing every PD."""
    lo = 0
    hi = last
    while lo < hi:
        mid = (lo + hi) // 2
        if row > 0 and u < band[row, c, mid, 0]:
            hi = mid
        elif row > 0 and u >= band[row, c, mid, 1]:
            lo = mid + 1
        else:
            _class_pd_py(c, mid, tag, scale, z, thr, sqrt_rho, sqrt_1mrho, factor, cache, stamp)
            if u < cache[c, mid]:
                hi = mid
            else:
                lo = mid + 1
    return lo


def _full_row_py(c, last, tag, scale, z, thr, sqrt_rho, sqrt_1mrho, factor, cache, stamp,
                 row_state):  # fmt: skip
    """Class c's whole row of conditional PDs on this path into ``cache[c, 0 .. last]``;
    ``row_state[c]`` = -``tag`` where the row never decreases. Then the first t with u under
    the PD by t, the binary search's answer, is the number of periods before ``last`` whose
    PD is at or below u (:func:`_counted_period_py`); a row that decreases somewhere (no
    cumulative PD does, but floating point is not asked to promise it) stays with the
    search."""
    monotone = True
    for t in range(last + 1):
        _class_pd_py(c, t, tag, scale, z, thr, sqrt_rho, sqrt_1mrho, factor, cache, stamp)
        if t > 0 and not cache[c, t - 1] <= cache[c, t]:
            monotone = False
    if monotone:
        row_state[c] = -tag
    return 0


def _counted_period_py(u, c, last, cache):
    """The default period of a uniform ``u`` under class c's full, non-decreasing row of PDs
    (:func:`_full_row_py`): how many periods before ``last`` have a PD at or below u. The
    same period as :func:`_default_period_py`, found without a data-dependent branch."""
    lo = 0
    for t in range(last):
        lo += 1 if u >= cache[c, t] else 0
    return lo


def _bound_row_py(z):
    """The row of ``CollateralModel.class_pd_bound`` for a factor z: 0 below the grid (or
    NaN: no bound), 1 + the cell of width ``PD_BOUND_DZ`` from ``PD_BOUND_Z_LO``, the last
    row above the grid."""
    row = 0
    x = (z - PD_BOUND_Z_LO) / PD_BOUND_DZ
    if x >= 0.0:
        row = 1 + int(x) if x < PD_BOUND_CELLS else PD_BOUND_CELLS + 1
    return row


def _bound_max_py(class_bound):
    """The largest of the classes' PD bounds on this path (``class_bound`` float64[C]), or
    2.0 (above every uniform) where one is NaN (no bound: every obligor of its class is a
    candidate); a bound of 1 or more flags every obligor."""
    top = 0.0
    for c in range(class_bound.shape[0]):
        b = class_bound[c]
        if not b <= top:
            top = b if b == b else 2.0
    return top


def _candidates_py(key, obligor_class, class_bound, cand, flag):
    """The obligors whose uniform is under their class's PD bound on this path, in order,
    into ``cand`` [N]; returns their number. No pass has a branch to mispredict. A pool of
    at least ``CANDIDATE_PASSES_MIN`` obligors takes three: each obligor's uniform against
    the largest bound (:func:`_bound_max_py`) into ``flag`` uint8[N] (no gather of its own
    class's bound, so the loop vectorises), the flagged obligors' indices into ``cand``, then
    those against their own class's bound (their uniforms drawn again: the same numbers).
    A smaller pool takes the one loop, which costs a little less there: the crossing of the
    two, ``benchmarks/draws.py``'s loop on homogeneous pools with the threshold forced to 1
    and to 10^9, is in benchmarks/HISTORY.md (the draws' candidates in a vectorised pass).
    Both find the same candidates."""
    n_obl = obligor_class.shape[0]
    m = 0
    if n_obl < CANDIDATE_PASSES_MIN:
        for i in range(n_obl):
            u = uniform_py(key, i)
            cand[m] = i
            m += 0 if u >= class_bound[obligor_class[i]] else 1  # a NaN bound bounds nothing
    else:
        top = _bound_max_py(class_bound)
        for i in range(n_obl):
            flag[i] = 0 if uniform_py(key, i) >= top else 1
        n = 0
        for i in range(n_obl):
            cand[n] = i
            n += int(flag[i])
        for k in range(n):
            i = cand[k]
            cand[m] = i  # m <= k: a candidate not yet read is never overwritten
            m += 0 if uniform_py(key, i) >= class_bound[obligor_class[i]] else 1  # NaN: kept
    return m


def _obligor_defaults_py(base, p, model, scratch, scale):
    """One uniform per obligor against its class's conditional PD by the last period; a
    defaulter's period by binary search over the earlier ones, or, once its class's second
    obligor drawn to default on this path has been searched, by a count over the class's
    whole row (:func:`_full_row_py`; ``scratch.row_state[c]``: ``tag`` = p + 1 once the class
    has had one, -``tag`` once its row is whole and never decreases; a row that decreases is
    checked again, O(T), at each later one: no compiled model has one). Obligors drawn to
    default into ``scratch.def_idx`` / ``scratch.def_t`` (:func:`_book_defaults_py` drops
    those whose schedule had ended); returns their number.

    Two passes when the model has PD bounds (``model.class_pd_bound`` [CELLS + 2, C], see
    :func:`abs_engine.compile.model.pd_bounds`; one row: none), read once a path into
    ``scratch.class_bound`` [C] through each factor's row, ``scratch.bound_row`` [F]: first
    the obligors whose uniform is under their bound (:func:`_candidates_py`, into
    ``def_idx``), then those candidates, in order, against their PD (their uniform drawn
    again: the same number), or first against the lower end of their class's PD band by the
    last period where the model has bands (``model.class_pd_band``, see
    :func:`abs_engine.compile.model.pd_bands`), which then decide most of the binary search
    too: a PD is computed only for a uniform between a band's ends. Without bounds every
    obligor is a candidate."""
    obligor_class, sched = model.obligor_class, model.sched
    thr, sqrt_rho, sqrt_1mrho = model.class_threshold, model.class_sqrt_rho, model.class_sqrt_1mrho
    factor, pd_bound, band = model.class_factor, model.class_pd_bound, model.class_pd_band
    z, cache, stamp, bound_row = scratch.z, scratch.cache, scratch.stamp, scratch.bound_row
    def_idx, def_t, row_state = scratch.def_idx, scratch.def_t, scratch.row_state
    class_bound = scratch.class_bound
    last = sched.shape[1] - 1
    tag = p + 1
    key = stream_key_py(base, STREAM_OBLIGORS)
    bounded = pd_bound.shape[0] > 1
    banded = bounded and band.shape[0] > 1  # bound_row is set only with bounds
    n_cand = obligor_class.shape[0]
    if bounded:
        for f in range(z.shape[0]):
            row = _bound_row_py(z[f])
            bound_row[f] = row
        for c in range(thr.shape[0]):
            class_bound[c] = pd_bound[bound_row[factor[c]], c]
        n_cand = _candidates_py(key, obligor_class, class_bound, def_idx, scratch.flag)
    n_def = 0
    for k in range(n_cand):
        i = def_idx[k] if bounded else k
        u = uniform_py(key, i)
        c = obligor_class[i]
        row = bound_row[factor[c]] if banded else 0
        if not (row > 0 and u < band[row, c, last, 0]):
            _class_pd_py(c, last, tag, scale, z, thr, sqrt_rho, sqrt_1mrho, factor, cache, stamp)
            if u >= cache[c, last]:
                continue
        if row_state[c] == -tag:
            lo = _counted_period_py(u, c, last, cache)
        else:
            lo = _default_period_py(u, c, last, row, band, tag, scale, z, thr, sqrt_rho,
                                    sqrt_1mrho, factor, cache, stamp)  # fmt: skip
            if row_state[c] == tag:
                _full_row_py(c, last, tag, scale, z, thr, sqrt_rho, sqrt_1mrho, factor, cache,
                             stamp, row_state)  # fmt: skip
            else:
                row_state[c] = tag
        def_idx[n_def] = i  # n_def <= k: a candidate not yet read is never overwritten
        def_t[n_def] = lo
        n_def += 1
    return n_def


def _twisted_mean_py(theta, weight, pd_last):
    """Σ w_i·q_i(θ): the expected loss (in ``weight``'s units) under the twist θ."""
    m = 0.0
    for i in range(weight.shape[0]):
        e = math.exp(min(theta * weight[i], 700.0))
        m += weight[i] * pd_last[i] * e / (1.0 + pd_last[i] * (e - 1.0))
    return m


def _twist_theta_py(weight, pd_last, level):
    """The twist θ > 0 at which Σ w_i·q_i(θ) reaches ``level`` (bisection; the mean rises
    with θ towards Σ w_i, which the caller has checked is above ``level``)."""
    lo_t = 0.0
    hi_t = 1.0
    for _ in range(200):  # widen until the twisted mean passes the level
        if _twisted_mean_py(hi_t, weight, pd_last) >= level:
            break
        lo_t = hi_t
        hi_t *= 2.0
    for _ in range(60):
        mid = 0.5 * (lo_t + hi_t)
        if _twisted_mean_py(mid, weight, pd_last) < level:
            lo_t = mid
        else:
            hi_t = mid
    return hi_t


def _obligor_defaults_twisted_py(base, p, model, scratch, scale):
    """:func:`_obligor_defaults_py` under exponential twisting (Glasserman & Li's second
    step): given the factors, obligor i defaults with q_i = p_i·e^(θ·w_i) / (1 + p_i·(e^(θ·w_i)
    - 1)) instead of its conditional PD p_i, θ ≥ 0 chosen so that Σ w_i·q_i reaches ``level``
    (θ = 0 where Σ w_i·p_i already does, or where ``level`` is out of reach); ``weight`` [N]
    is each obligor's share of a loss. A defaulter's period is drawn from its conditional
    distribution given default, as without twisting. Returns the number drawn to default and the
    log likelihood ratio of the default indicators (0 with θ = 0). Called once a path: the
    bundles are opened here, so the loops touch plain arrays."""
    obligor_class, sched = model.obligor_class, model.sched
    thr, sqrt_rho, sqrt_1mrho = model.class_threshold, model.class_sqrt_rho, model.class_sqrt_1mrho
    factor, weight, level = model.class_factor, model.is_twist_weight, model.is_twist_level
    z, cache, stamp, pd_last = scratch.z, scratch.cache, scratch.stamp, scratch.twist_p
    def_idx, def_t = scratch.def_idx, scratch.def_t
    n = obligor_class.shape[0]
    last = sched.shape[1] - 1
    tag = p + 1
    mean = 0.0
    total = 0.0
    for i in range(n):
        c = obligor_class[i]
        _class_pd_py(c, last, tag, scale, z, thr, sqrt_rho, sqrt_1mrho, factor, cache, stamp)
        pd_last[i] = cache[c, last]
        mean += weight[i] * pd_last[i]
        if pd_last[i] > 0.0:
            total += weight[i]  # the most the twisted mean can reach
    theta = _twist_theta_py(weight, pd_last, level) if mean < level < total else 0.0
    key = stream_key_py(base, STREAM_OBLIGORS)
    log_w = 0.0
    n_def = 0
    for i in range(n):
        u = uniform_py(key, i)
        pi = pd_last[i]
        qi = pi
        if theta > 0.0 and 0.0 < pi < 1.0:
            e = math.exp(min(theta * weight[i], 700.0))
            # below 1, so that survival keeps a chance (any q in (p, 1) is a valid sampling:
            # the likelihood ratio uses the q drawn with)
            qi = min(pi * e / (1.0 + pi * (e - 1.0)), max(pi, 1.0 - 1e-9))
        if u >= qi:
            if qi != pi:
                log_w += math.log((1.0 - pi) / (1.0 - qi))
            continue
        if qi != pi:
            log_w += math.log(pi / qi)
            u = u * (pi / qi)  # uniform on [0, p_i): the period as given default
        lo = _default_period_py(u, obligor_class[i], last, 0, model.class_pd_band, tag, scale,
                                z, thr, sqrt_rho, sqrt_1mrho, factor, cache, stamp)  # fmt: skip
        def_idx[n_def] = i
        def_t[n_def] = lo
        n_def += 1
    return n_def, log_w


def _book_defaults_py(base, model, scratch, n_hit):
    """The defaulters: of the ``n_hit`` obligors drawn to default (``scratch.def_idx`` /
    ``def_t``), those with a balance left in their default period (after prepayments), kept
    in their order at the front of the two lists, and their number returned (the check is
    made here, where the obligor's schedule row is read anyway, not while drawing: on a pool
    of 100,000 schedule rows that was a second cache miss a defaulter, and the draws took
    2.7 instead of 1.7 ms a path). Removes their scheduled rows from the pool
    (``scratch.rem``), books the default, the recovery after a random disposal lag, the loss,
    and the recoveries pending until the cash arrives; collateral statistics into
    ``scratch.stats``. Called once a path: the bundles are opened here, so the loops touch
    plain arrays."""
    flows = scratch.flows
    stats = scratch.stats
    rem = scratch.rem
    def_idx = scratch.def_idx
    def_t = scratch.def_t
    prepay_factor = scratch.prepay_factor
    z = scratch.z
    obligor_sched = model.obligor_sched
    sched = model.sched
    lag_min = model.lag_min
    lag_max = model.lag_max
    recovery_kind = model.recovery_kind
    recovery_rate = model.recovery_rate
    ip_value = model.ip_value
    obligor_factor = model.obligor_factor
    haircut = model.haircut
    disposal_cost = model.disposal_cost
    ip_vol = model.ip_vol
    ip_loading = model.ip_loading
    n_t = flows.shape[1]
    key_rec = stream_key_py(base, STREAM_RECOVERY)
    key_lag = stream_key_py(base, STREAM_LAG)
    far = sched.size > PREFETCH_MIN_DOUBLES
    row_len = sched.shape[1] * N_SC  # doubles of a schedule row: T periods of N_SC items
    end = np.uint64(n_t * N_SC)  # periods 0 .. n_t - 1 of rem, as the flows have
    # flat iterators of rem [T, N_SC] and sched [K, T, N_SC], both C-contiguous: indexed in
    # place (a reshape to 1-d views cost about 12 ns a call, paid by every path)
    rem_flat = rem.flat
    sched_flat = sched.flat
    n_def = 0
    for k in range(n_hit):
        if far and k + PREFETCH_AHEAD < n_hit:  # a row a few defaulters ahead: loads overlap
            ia = def_idx[k + PREFETCH_AHEAD]
            ra = obligor_sched[ia]
            for ta in range(def_t[k + PREFETCH_AHEAD], n_t, PREFETCH_PERIODS):
                prefetch_py(sched, ra, ta)
            prefetch_py(recovery_rate, ia, 0)
            prefetch_py(lag_min, ia, 0)
            prefetch_py(lag_max, ia, 0)
            prefetch_py(ip_value, ia, 0)
        i = def_idx[k]
        tau = def_t[k]
        r = obligor_sched[i]
        exposure = prepay_factor[tau] * sched[r, tau, SC_BALANCE]
        if exposure <= 0.0:
            # the schedule had already ended, or prepayment had paid it all (counted as a
            # default before: a validator's default count of 8 with nothing defaulted)
            continue
        def_idx[n_def] = i
        def_t[n_def] = tau
        n_def += 1
        # its schedule row from tau on, added to rem's (one element of each at a time, in
        # defaulter order, as before: the same sums), flat, with unsigned indices: no
        # negative-index wrap to compute, so the additions vectorise (rem's three items in
        # three [T] rows took 15 ns a defaulter on the 10,000-obligor pool, about a quarter
        # of its draws; this a third less)
        start = np.uint64(r * row_len)
        for j in range(np.uint64(tau * N_SC), end):
            rem_flat[j] += sched_flat[start + np.uint64(j)]  # (NumPy 1: uint64 + int is a float)
        flows[PF_DEFAULT, tau] += exposure
        # the recovery of the defaulted exposure: its IP value shocked lognormally (loading on
        # its systematic factor: wrong-way risk) less haircut and disposal cost, at most the
        # exposure; or the fixed rate (also for obligors without an IP value)
        value = ip_value[i]
        if recovery_kind == RECOVERY_IP and not math.isnan(value):
            eta = normal_py(key_rec, i)
            shock = (
                ip_loading * z[obligor_factor[i]] + math.sqrt(1.0 - ip_loading * ip_loading) * eta
            )
            value = value * math.exp(ip_vol * shock - 0.5 * ip_vol * ip_vol)
            rec = value * (1.0 - haircut) * (1.0 - disposal_cost)
            if rec > exposure:
                rec = exposure
        else:
            rec = recovery_rate[i] * exposure
        lag = lag_min[i]
        if lag_max[i] > lag_min[i]:
            lag += int(uniform_py(key_lag, i) * (lag_max[i] - lag_min[i] + 1))
        rt = tau + lag
        if rt < n_t:
            flows[PF_RECOVERY, rt] += rec
            flows[PF_LOSS, rt] += exposure - rec
            # awaiting disposal from the default period until the cash arrives
            for t in range(tau, rt):
                flows[PF_PENDING_RECOVERY, t] += rec
        else:
            # recovered after legal final: the deal books the whole exposure as lost, in the
            # final period
            stats[CS_LOST_RECOVERY] += rec
            flows[PF_LOSS, n_t - 1] += exposure
        stats[CS_DEFAULT_COUNT] += 1.0
        stats[CS_DEFAULTED] += exposure
        stats[CS_RECOVERED] += rec
        stats[CS_LOSS] += exposure - rec
    return n_def


def collateral_draws_py(seed, p, model, scratch):
    """The random part of path ``p``: factors, prepayment multiplier, provider and obligor
    defaults, and the defaulters' flows (default, recovery, loss, pending recovery) in
    ``scratch.flows``; the survivors' rows are left for :func:`survivor_flows_py`. Returns
    the number of defaulting obligors. The phases that draw defaults and book them take the
    bundles and open the fields they use; the compiled twins have the phases (and the PD
    cache and period search they call) inlined at the source level (``_PARTS``,
    :mod:`abs_engine.kernels._inline`), so that costs nothing: as numba calls, with a
    reference count per array argument, the draws took 1.9 µs a path of the bundled deal
    instead of 0.8 µs (one thread, a one-off stage profile)."""
    z = scratch.z
    stats = scratch.stats
    scratch.flows[:, :] = 0.0
    stats[:] = 0.0
    scratch.rem[:, :] = 0.0
    copula = model.copula
    nu = model.nu
    base = path_base_py(seed, p)  # each stream's key is one mix from it
    scale, log_w = _factors_py(base, model.chol, copula, nu, scratch.g, z,
                               model.is_factor_shift, model.is_mix_scale)  # fmt: skip
    stats[CS_STUDENT_SCALE] = scale
    stats[CS_PREPAY_MULTIPLIER] = _prepayment_py(base, model.smm, model.prepay_vol,
                                                 scratch.prepay_factor)  # fmt: skip
    log_p = _provider_defaults_py(base, model, scratch, scale)
    log_w += log_p
    if model.is_twist_level > 0.0:
        n_hit, log_twist = _obligor_defaults_twisted_py(base, p, model, scratch, scale)
        log_w += log_twist
    else:
        n_hit = _obligor_defaults_py(base, p, model, scratch, scale)
    stats[CS_LOG_WEIGHT] = log_w
    n_def = _book_defaults_py(base, model, scratch, n_hit)
    return n_def


def unit_weights_py(model):
    """1 when every path of ``model`` (a ``CollateralModel``) has likelihood-ratio weight
    exactly 1, else 0: no factor or provider shift, a mixing scale of 1, no twist and no
    conditional Monte Carlo (:func:`collateral_draws_py` then adds nothing to the log weight,
    and exp(0.0) = 1). A NaN anywhere counts as weighted."""
    if model.is_twist_level > 0.0 or model.is_mix_scale != 1.0 or model.is_cmc_provider != 0:
        return 0
    for k in range(model.is_factor_shift.shape[0]):
        if model.is_factor_shift[k] != 0.0:
            return 0
    for s in range(model.is_provider_shift.shape[0]):
        if model.is_provider_shift[s] != 0.0:
            return 0
    return 1


def survivor_flows_py(model, scratch):
    """The pool flows of the obligors that have not defaulted (interest, scheduled principal,
    prepayment: rows PF_INTEREST, PF_SCHED_PRIN, PF_PREPAY of ``scratch.flows``) and the
    prepaid total, after :func:`collateral_draws_py` on the same scratch."""
    flows = scratch.flows
    stats = scratch.stats
    rem = scratch.rem
    prepay_factor = scratch.prepay_factor
    smm = model.smm
    agg_interest = model.agg_interest
    agg_principal = model.agg_principal
    agg_balance = model.agg_balance
    mult = stats[CS_PREPAY_MULTIPLIER]
    for t in range(flows.shape[1]):
        pf = prepay_factor[t]
        r = smm[t] * mult
        if r > 1.0:
            r = 1.0
        x = agg_interest[t] - rem[t, SC_INTEREST]
        flows[PF_INTEREST, t] = pf * x if x > 0.0 else 0.0
        x = agg_principal[t] - rem[t, SC_PRINCIPAL]
        flows[PF_SCHED_PRIN, t] = pf * x if x > 0.0 else 0.0
        x = agg_balance[t] - agg_principal[t] - rem[t, SC_AFTER]
        flows[PF_PREPAY, t] = r * pf * x if x > 0.0 else 0.0
        stats[CS_PREPAID] += flows[PF_PREPAY, t]
    return 0


cond_pd = jit_twin(cond_pd_py, cache=True, inline="always")
collateral_scratch = jit_twin(collateral_scratch_py, cache=True, no_cpython_wrapper=False)
_RNG = {
    "path_key_py": path_key,
    "path_base_py": path_base,
    "stream_key_py": stream_key,
    "normal_py": normal,
    "uniform_py": uniform,
    "gamma_variate_py": gamma_variate,
    "cond_pd_py": cond_pd,
    "prefetch_py": prefetch,
}
_RNG["_twisted_mean_py"] = jit_twin(_twisted_mean_py, cache=True, refcounts=False)
_RNG["_twist_theta_py"] = jit_twin(_twist_theta_py, _RNG, cache=True, refcounts=False)
#: the phases of the draws, inlined at the source level into their compiled twins
_PARTS: tuple[Callable[..., Any], ...] = (
    _factors_py,
    log_mixture_density_py,
    _prepayment_py,
    _provider_defaults_py,
    _obligor_defaults_py,
    _bound_row_py,
    _bound_max_py,
    _candidates_py,
    _full_row_py,
    _counted_period_py,
    _obligor_defaults_twisted_py,
    _book_defaults_py,
    _default_period_py,
    _class_pd_py,
)
collateral_draws = jit_twin(
    collateral_draws_py, _RNG, inline_source=_PARTS, cache=True, refcounts=False
)
#: the draws and their phases, and what their names mean compiled (this module's globals
#: with the compiled twins swapped in): the block kernel, which draws once a path, inlines
#: them at the source level (``jit_twin(inline_source=DRAWS_SOURCE, inline_env=DRAWS_ENV)``)
DRAWS_SOURCE: tuple[Callable[..., Any], ...] = (collateral_draws_py, *_PARTS)
DRAWS_ENV: dict[str, Any] = {**globals(), **_RNG}
#: the compiled functions the draws call (inlined into the block kernel, the draws call these
#: as functions): :data:`abs_engine.kernels.montecarlo.BLOCK_CALLEES` lists them
DRAW_CALLEES: tuple[Any, ...] = (
    uniform, normal, ndtri, gamma_variate, _RNG["_twisted_mean_py"],
    _RNG["_twist_theta_py"],
)  # fmt: skip


def draw_callee_args(seed, model, scratch):
    """Arguments of the types the draws pass each of :data:`DRAW_CALLEES`, in that order
    (values of no meaning: what counts is their numba types)."""
    key = np.uint64(seed)
    i = np.int64(0)
    weight, pd_last = model.is_twist_weight, scratch.twist_p
    return (
        (key, i), (key, i), (0.5,), (key, 1.0),
        (0.0, weight, pd_last), (weight, pd_last, 0.0),
    )  # fmt: skip


provider_given_factors = jit_twin(
    provider_given_factors_py, {**_RNG, "ndtri_py": ndtri}, cache=True, refcounts=False
)
survivor_flows = jit_twin(survivor_flows_py, cache=True, refcounts=False)
unit_weights = jit_twin(unit_weights_py, cache=True, inline="always")
collateral_path = jit_twin(
    collateral_path_py,
    {"collateral_draws_py": collateral_draws, "survivor_flows_py": survivor_flows},
    cache=True,
    no_cpython_wrapper=False,
)

__all__ = [
    "DRAW_CALLEES",
    "N_CS",
    "provider_given_factors",
    "provider_given_factors_py",
    "collateral_draws",
    "collateral_draws_py",
    "survivor_flows",
    "survivor_flows_py",
    "collateral_path",
    "collateral_path_py",
    "collateral_scratch",
    "collateral_scratch_py",
    "cond_pd",
    "cond_pd_py",
    "draw_callee_args",
]
