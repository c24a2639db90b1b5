"""Choosing importance-sampling shifts with a short cross-entropy pilot (Rubinstein &
Kroese's method, as applied to portfolio credit risk by Glasserman & Li and Chan & Kroese).

The analytic rule of :func:`abs_engine.compile.sampling.choose_importance_sampling` looks at
the pool alone: the factor value at which the pool's expected loss reaches the tranche's
attachment. For a senior carried by a support undertaking the rare event is the provider's
default together with pool losses, and excess spread and reserves move the real attachment;
the pilot finds that out from the waterfall itself. Starting from the analytic shifts, each
round runs a few thousand paths under the current shifts and moves them to the
likelihood-ratio-weighted mean of the draws (factor normals, providers' own normals, the
Student-t mixing variable) of the paths where the target tranche falls short — or, while
fewer than :data:`MIN_ELITE` do, of the paths closest to it (multi-level cross-entropy).

A pilot round runs a quarter of the run's paths, at least 1,024 and at most
:data:`PILOT_PATHS`. The pilot uses its own random numbers (a seed derived from the run's), so
the main run's estimates stay unbiased; the shifts are a pure function of (deal, scenario,
seed, target, paths), so runs stay reproducible bit for bit.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from .compile.sampling import (
    MIX_SCALE_MIN,
    ImportanceSampling,
    choose_importance_sampling,
    with_sampling,
)
from .kernels import layout as L
from .kernels.collateral import log_mixture_density_py
from .kernels.rng import (
    COUNTER_0,
    STREAM_FACTORS,
    STREAM_MIX_PICK,
    STREAM_MIXING,
    STREAM_PROVIDERS,
    gamma_variate,
    normal,
    path_key,
    uniform,
)

if TYPE_CHECKING:
    from .compile.deal import CompiledDeal
    from .compile.model import MonteCarloModel

__all__ = [
    "MIN_ELITE",
    "PILOT_PATHS",
    "PILOT_ROUNDS",
    "pilot_paths",
    "pilot_seed",
    "tuned_sampling",
]

#: paths per pilot round, and rounds
PILOT_PATHS = 4_096
PILOT_ROUNDS = 4
#: paths a round's update rests on at least (the elite: shortfalls, or the nearest misses)
MIN_ELITE = 64
_PILOT_SALT = 0x5EED_C0DE_0001


def pilot_paths(n_paths: int | None) -> int:
    """Paths per pilot round for a run of ``n_paths``: a quarter of them, in whole blocks of
    1,024, between 1,024 and :data:`PILOT_PATHS` (so a small run's pilot stays small)."""
    if n_paths is None:
        return PILOT_PATHS
    quarter = (n_paths // 4) // 1024 * 1024
    return int(min(PILOT_PATHS, max(1024, quarter)))


def pilot_seed(seed: int) -> int:
    """The pilot's seed: the run's, mixed with a constant (its draws differ from the run's)."""
    return (seed * 6364136223846793005 + _PILOT_SALT) % (2**63)


def _draws(
    model: MonteCarloModel, seed: int, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pilot paths' draws under ``model``'s shifts, recomputed as the kernel makes them:
    the factor normals g [n, F], the providers' own normals [n, S], the mixing variable W [n]
    (NaN for the Gaussian copula) and each path's log likelihood ratio [n]."""
    n_f, n_s = model.chol.shape[0], model.provider_threshold.shape[0]
    mu, m, c, nu = model.is_factor_shift, model.is_provider_shift, model.is_mix_scale, model.nu
    g, eps = np.zeros((n, n_f)), np.zeros((n, n_s))
    w_mix, log_w = np.full(n, np.nan), np.zeros(n)
    t_copula = model.copula == L.COPULA_STUDENT_T
    with np.errstate(over="ignore"):
        for p in range(n):
            key = np.uint64(path_key(seed, p, STREAM_FACTORS))  # numba hands back a Python int
            for k in range(n_f):
                g[p, k] = normal(key, k) + mu[k]
            key = np.uint64(path_key(seed, p, STREAM_PROVIDERS))
            for s in range(n_s):
                eps[p, s] = normal(key, s) + m[s]
            if t_copula:
                key = np.uint64(path_key(seed, p, STREAM_MIXING))
                w_mix[p] = 2.0 * gamma_variate(key, 0.5 * nu)
                if c != 1.0:  # the kernel's defensive mixture (collateral._factors)
                    pick = np.uint64(path_key(seed, p, STREAM_MIX_PICK))
                    if uniform(pick, COUNTER_0) >= L.IS_MIX_DEFENSIVE:
                        w_mix[p] *= c
                    log_w[p] -= log_mixture_density_py(float(w_mix[p]), nu, c)
    log_w += (mu * (0.5 * mu - g)).sum(axis=1) + (m * (0.5 * m - eps)).sum(axis=1)
    return g, eps, w_mix, log_w


def _pilot_metrics(cd: CompiledDeal, model: MonteCarloModel, seed: int, n: int) -> np.ndarray:
    """The per-path metric vectors [n, M] of ``n`` pilot paths under ``model``."""
    from .kernels.bundles import RunSpec, frozen
    from .metrics.montecarlo import hist_ranges
    from .simulation import BLOCK_SIZE, OutputShape, run_range

    lo, hi = hist_ranges(cd)
    spec = frozen(RunSpec(BLOCK_SIZE, n, seed, lo, hi, 1))
    n_blocks = -(-n // BLOCK_SIZE)
    sums = run_range(0, n_blocks, spec, model.kernel, cd.kernel, OutputShape.of(cd))
    return sums.path_metrics


def _elite(metrics: np.ndarray, j: int, n_j: int) -> tuple[np.ndarray, bool]:
    """The paths a round's update rests on: those where tranche ``j`` falls short, when at
    least :data:`MIN_ELITE` do; else the :data:`MIN_ELITE` nearest misses, ranked by a score
    that rises towards a shortfall (a shortfall, then a provider default, then the pool loss
    rate, then a low minimum coverage ratio). Returns (mask, whether it is the event)."""
    short = metrics[:, j * L.N_MT + L.MT_DEFAULT] > 0.5
    if short.sum() >= MIN_ELITE:
        return short, True
    pool = n_j * L.N_MT
    cov = np.nan_to_num(metrics[:, j * L.N_MT + L.MT_MIN_COVERAGE], nan=10.0)
    score = (
        100.0 * short
        + 10.0 * (metrics[:, pool + L.MP_PROVIDER_DEFAULT] > 0.5)
        + np.nan_to_num(metrics[:, pool + L.MP_LOSS_RATE])
        - 0.01 * np.minimum(cov, 10.0)
    )
    top = np.argsort(-score, kind="stable")[:MIN_ELITE]
    mask = np.zeros(len(score), dtype=bool)
    mask[top] = True
    return mask, False


def tuned_sampling(
    cd: CompiledDeal,
    model: MonteCarloModel,
    seed: int,
    target: str | None = None,
    *,
    pilot_paths: int = PILOT_PATHS,
    rounds: int = PILOT_ROUNDS,
    start: ImportanceSampling | None = None,
    twist: bool = True,
    provider_cmc: bool = True,
) -> ImportanceSampling:
    """Importance-sampling shifts for ``target``'s shortfalls (default: the most senior rated
    tranche): the analytic shifts (or ``start``'s, e.g. those of a neighbouring structure),
    improved by ``rounds`` cross-entropy rounds of ``pilot_paths`` paths each (see the module
    docstring). ``model`` is the crude model. The pilot tunes the shifts without exponential
    twisting; the result carries the analytic rule's twisting (pools of at most
    :data:`~abs_engine.compile.sampling.TWIST_MAX_OBLIGORS`) unless ``twist`` is False, and
    conditional Monte Carlo for a correlated support provider unless ``provider_cmc`` is
    False."""
    analytic = choose_importance_sampling(cd, model, target)
    isp = analytic.without_twist()
    if start is not None:
        isp = dataclasses.replace(start.without_twist(), target=isp.target)
    j = cd.tranche_names.index(isp.target) if isp.target is not None else 0
    n_j = len(cd.tranche_names)
    live = model.provider_threshold[:, -1] > -np.inf
    base = pilot_seed(seed)
    for r in range(rounds):
        shifted = with_sampling(model, isp)
        s = (base + r) % (2**63)
        metrics = _pilot_metrics(cd, shifted, s, pilot_paths)
        g, eps, w_mix, log_w = _draws(shifted, s, pilot_paths)
        mask, _ = _elite(metrics, j, n_j)
        w = np.exp(log_w[mask] - log_w[mask].max())  # relative weights suffice for a mean
        if not np.isfinite(w).all() or w.sum() <= 0:
            break
        w /= w.sum()
        factor_shift = w @ g[mask]
        provider_shift = np.where(live, w @ eps[mask], 0.0)
        mix = isp.mix_scale
        if model.copula == L.COPULA_STUDENT_T:
            mix = float(np.clip((w @ w_mix[mask]) / model.nu, MIX_SCALE_MIN, 1.0))
        isp = ImportanceSampling(
            factor_shift, provider_shift, mix, isp.target, float(factor_shift.mean())
        )
    if not twist:
        return isp
    return dataclasses.replace(
        isp,
        twist_weight=analytic.twist_weight,
        twist_level=analytic.twist_level,
        provider_cmc=provider_cmc and analytic.provider_cmc,
    )
