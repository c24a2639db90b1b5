"""Importance sampling for the copula models: where to shift the random draws so that the
rare losses of a senior tranche are sampled often, each path then weighted by its likelihood
ratio (the reference approach: Glasserman & Li, *Importance Sampling for Portfolio Credit
Risk*, Management Science 2005).

Three shifts, all applied by the collateral kernel (``abs_engine.kernels.collateral``), which
also computes each path's log likelihood ratio:

- the systematic factors' independent normals g (z = chol · g) get a mean ``factor_shift``:
  the factor value at which the pool's expected loss given the factor reaches the target
  tranche's attachment (tranche balances alone: the loss the tranches below it and the
  overcollateralisation absorb);
- each support provider's own normal gets a mean ``provider_shift``: its default boundary at
  that factor value (so a provider that carries the senior defaults in about half the paths
  where the pool is stressed: for a senior held up by an undertaking, the provider's default
  is the rare event);
- under the Student-t copula the chi-square mixing variable W is drawn as ``mix_scale`` · W
  on all but a share ``IS_MIX_DEFENSIVE`` of paths (a defensive mixture: W's likelihood ratio
  stays below 1 / that share however small the scale): the factor value and W are chosen
  together, as the most likely pair that reaches the attachment.

A shift changes only how fast the estimates converge, never what they converge to: every
mean, standard error, histogram and rating uses the weights.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import special

from ..kernels.layout import COPULA_STUDENT_T, RECOVERY_IP
from ..schema.tranche import tranche_classes

if TYPE_CHECKING:
    from .deal import CompiledDeal
    from .model import MonteCarloModel

__all__ = [
    "MIX_SCALE_MIN",
    "SAMPLING_METHODS",
    "ImportanceSampling",
    "choose_importance_sampling",
    "conditional_pool_loss",
    "with_sampling",
]

#: the sampling methods of a Monte Carlo run
SAMPLING_METHODS = ("crude", "importance")
#: the factor shift is searched on [-Z_MAX, 0] (standard deviations)
Z_MAX = 8.0
#: the smallest scale of the Student-t mixing variable, whatever ν: the defensive
#: mixture bounds W's likelihood ratio whatever the scale (drawn as c·W alone, c <= 1/2 made
#: the weights' variance infinite, and a floor there kept the small W that drive a Student-t
#: pool's rare losses out of reach: a validator's expected loss came out 2,000 times too small)
MIX_SCALE_MIN = 1e-3
#: pools up to this many obligors get exponential twisting too (each path solves for its
#: twist over every obligor)
TWIST_MAX_OBLIGORS = 2_000


@dataclass(frozen=True)
class ImportanceSampling:
    """The shifts of one importance-sampled run (see the module docstring).

    factor_shift : float64[F]     means of the factors' independent normals g
    provider_shift : float64[S]   means of the providers' own normals
    mix_scale : float             the Student-t mixing variable drawn as mix_scale · W (1: not)
    target : str | None           the tranche the shift was chosen for
    factor_value : float          the common factor value the shift aims at (the analytic
        rule's z*; after the pilot, the mean of the shifted factor normals)
    twist_weight : float64[N] | None   each obligor's share of a loss (balance × LGD over the
        largest), for exponential twisting; None: no twisting
    twist_level : float           the loss the twist aims at, in the same units (0: none)
    provider_cmc : bool           the first support provider's default integrated out by
        conditional Monte Carlo (its own draw then unused: its shift is moot)
    """

    factor_shift: np.ndarray
    provider_shift: np.ndarray
    mix_scale: float = 1.0
    target: str | None = None
    factor_value: float = 0.0
    twist_weight: np.ndarray | None = None
    twist_level: float = 0.0
    provider_cmc: bool = False

    def without_twist(self) -> ImportanceSampling:
        """The same shifts with no exponential twisting and no conditional Monte Carlo."""
        return dataclasses.replace(self, twist_weight=None, twist_level=0.0, provider_cmc=False)

    def summary(self) -> dict[str, object]:
        """JSON-ready: the target and the shifts."""
        return {
            "target_tranche": self.target,
            "factor_value": self.factor_value,
            "factor_shift": [float(v) for v in self.factor_shift],
            "provider_shift": [float(v) for v in self.provider_shift],
            "mix_scale": self.mix_scale,
            "twisting": self.twist_level > 0.0,
            "provider_conditional": self.provider_cmc,
        }


def _exposure_and_lgd(cd: CompiledDeal, model: MonteCarloModel) -> tuple[np.ndarray, np.ndarray]:
    """Each obligor's balance at closing (yuan) and its expected loss given default (share):
    one minus the fixed recovery rate, or under the IP-value model one minus the IP value net
    of haircut and disposal cost over the balance (capped at the balance)."""
    ead = model.sched_balance[:, 0].astype(float)
    lgd = 1.0 - model.recovery_rate
    if model.recovery_kind == RECOVERY_IP:
        ip = model.ip_value
        net = ip * (1.0 - model.haircut) * (1.0 - model.disposal_cost)
        with np.errstate(invalid="ignore", divide="ignore"):
            ip_lgd = 1.0 - np.minimum(1.0, np.where(ead > 0, net / ead, 0.0))
        lgd = np.where(np.isfinite(ip), ip_lgd, lgd)
    return ead, np.clip(lgd, 0.0, 1.0)


def conditional_pool_loss(
    cd: CompiledDeal, model: MonteCarloModel, z: float, scale: float = 1.0
) -> float:
    """The pool's expected loss (yuan) by the last period given every factor at ``z`` (and the
    Student-t mixing scale sqrt(W / nu) at ``scale``): Σ balance · LGD · P(default | z)."""
    ead, lgd = _exposure_and_lgd(cd, model)
    thr = model.class_threshold[:, -1]
    with np.errstate(invalid="ignore"):
        arg = (thr * scale - model.class_sqrt_rho * z) / model.class_sqrt_1mrho
    p_class = np.where(np.isneginf(thr), 0.0, special.ndtr(arg))
    p = p_class[model.obligor_class]
    return float((ead * lgd * p).sum())


def _first_loss(cd: CompiledDeal, model: MonteCarloModel) -> float:
    """The smallest pool loss one default can give (yuan): the least balance × LGD of the
    obligors that can default and lose something; 0 if none can."""
    ead, lgd = _exposure_and_lgd(cd, model)
    loss = ead * lgd
    can = np.isfinite(model.class_threshold[model.obligor_class, -1]) & (loss > 0.0)
    return float(loss[can].min()) if can.any() else 0.0


def _attachment(cd: CompiledDeal, j: int) -> float:
    """The pool loss (yuan) tranche ``j`` starts to lose at, by balances alone: the original
    pool less the balances of ``j``'s class and the tranches before it (the deal lists
    tranches most senior first; a ``pari_passu`` class is written down together)."""
    end = tranche_classes(cd.deal.tranches)[j][1]
    return cd.original_pool - sum(t.balance for t in cd.deal.tranches[:end])


def _target_index(cd: CompiledDeal, tranche: str | None) -> int:
    if tranche is not None:
        return cd.tranche_names.index(tranche)
    tranches = cd.deal.tranches
    rated = [j for j, t in enumerate(tranches) if t.balance > 0 and t.principal != "residual"]
    return rated[0] if rated else 0


def _factor_for_loss(
    cd: CompiledDeal, model: MonteCarloModel, target: float, scale: float
) -> float | None:
    """The common factor value z in [-Z_MAX, 0] at which the conditional pool loss reaches
    ``target`` (bisection: the loss falls as z rises); 0 when it already does at z = 0, None
    when it does not even at -Z_MAX."""
    if conditional_pool_loss(cd, model, 0.0, scale) >= target:
        return 0.0
    if conditional_pool_loss(cd, model, -Z_MAX, scale) < target:
        return None
    lo, hi = -Z_MAX, 0.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if conditional_pool_loss(cd, model, mid, scale) >= target:
            lo = mid
        else:
            hi = mid
    return lo


def _t_factor_and_scale(
    cd: CompiledDeal, model: MonteCarloModel, target: float
) -> tuple[float, float]:
    """Student-t: the most likely (z, W) — standard normal z, chi-square W with nu degrees —
    at which the conditional pool loss reaches ``target``, searched over quantiles of W;
    returns (z, sqrt(W / nu))."""
    nu = model.nu
    best: tuple[float, float, float] | None = None
    for q in np.linspace(0.005, 0.995, 100):
        w = float(special.chdtri(nu, 1.0 - q))  # the q-quantile of chi-square(nu)
        scale = math.sqrt(w / nu)
        z = _factor_for_loss(cd, model, target, scale)
        if z is None:
            continue
        log_density = -0.5 * z * z + (0.5 * nu - 1.0) * math.log(w) - 0.5 * w
        if best is None or log_density > best[0]:
            best = (log_density, z, scale)
    if best is None:
        return -Z_MAX, 1.0
    return best[1], best[2]


def choose_importance_sampling(
    cd: CompiledDeal, model: MonteCarloModel, tranche: str | None = None
) -> ImportanceSampling:
    """The shifts aimed at ``tranche``'s losses (default: the most senior rated tranche):
    the factor value z* at which the pool's conditional expected loss reaches the tranche's
    attachment (for the Student-t copula, with the mixing variable's most likely value
    there), and each provider's default boundary at z*; for a tranche attached at 0 (a
    first loss), the smallest loss one default gives instead. No factor or provider shift
    when that loss is already reached at z = 0 (twisting and conditional Monte Carlo may
    still apply)."""
    j = _target_index(cd, tranche)
    target = _attachment(cd, j)
    if target <= 0.0:
        # a first-loss tranche (or notes at or above the pool): aimed at one default, the
        # smallest loss it takes (aimed at no loss, a validator's whole-pool note at PD 1e-6
        # ran crude under the name, 0 ± 0 and AAA for an exact EL of 6e-7)
        target = _first_loss(cd, model)
    n_f, n_s = model.chol.shape[0], model.provider_threshold.shape[0]
    scale = 1.0
    if target <= 0.0:
        z = 0.0
    elif model.copula == COPULA_STUDENT_T:
        z, scale = _t_factor_and_scale(cd, model, target)
    else:
        found = _factor_for_loss(cd, model, target, 1.0)
        z = -Z_MAX if found is None else found
    # every factor at z*: g* solves chol · g = z*·1
    g = np.linalg.solve(model.chol, np.full(n_f, z)) if n_f else np.zeros(0)
    provider = np.zeros(n_s)
    for s in range(n_s):
        thr = model.provider_threshold[s, -1]
        if np.isneginf(thr) or z == 0.0:
            continue
        srho = model.provider_sqrt_rho[s]
        f = model.provider_factor[s]
        zs = z if f >= 0 else 0.0
        s_scale = scale if f >= 0 else 1.0
        boundary = (thr * s_scale - srho * zs) / math.sqrt(max(1.0 - srho * srho, 1e-12))
        provider[s] = min(boundary, 0.0)
    mix = 1.0
    if model.copula == COPULA_STUDENT_T and z != 0.0:
        # W' = c·W has mean c·nu = W*
        mix = min(1.0, max(MIX_SCALE_MIN, scale * scale))
    weight, level = _twist(cd, model, target)
    return ImportanceSampling(
        g, provider, mix, cd.tranche_names[j], z, weight, level, provider_cmc_possible(model)
    )


def provider_cmc_possible(model: MonteCarloModel) -> bool:
    """Whether the first support provider's default can be integrated out: a provider that can
    default and whose latent variable loads on a pool factor."""
    thr = model.provider_threshold
    return bool(thr.shape[0] > 0 and np.isfinite(thr[0, -1]) and int(model.provider_factor[0]) >= 0)


def _twist(
    cd: CompiledDeal, model: MonteCarloModel, target: float
) -> tuple[np.ndarray | None, float]:
    """Exponential twisting's weights and level for pools of at most
    :data:`TWIST_MAX_OBLIGORS` (each path solves for its twist over every obligor): each
    obligor's balance × LGD over the largest, and the target loss in those units; (None, 0)
    for a larger pool or a target of no loss."""
    if cd.n_obligors > TWIST_MAX_OBLIGORS or target <= 0.0:
        return None, 0.0
    ead, lgd = _exposure_and_lgd(cd, model)
    loss = ead * lgd
    top = float(loss.max()) if len(loss) else 0.0
    can_default = np.isfinite(model.class_threshold[model.obligor_class, -1])
    if top <= 0.0 or target >= loss[can_default].sum():
        return None, 0.0
    return loss / top, target / top


def with_sampling(model: MonteCarloModel, sampling: ImportanceSampling) -> MonteCarloModel:
    """``model`` drawing its paths under ``sampling``'s shifts (its kernel bundle rebuilt)."""
    if sampling.factor_shift.shape != (model.chol.shape[0],):
        raise ValueError("factor_shift must have one value per factor")
    if sampling.provider_shift.shape != (model.provider_threshold.shape[0],):
        raise ValueError("provider_shift must have one value per support provider")
    finite = (
        np.isfinite(sampling.factor_shift).all()
        and np.isfinite(sampling.provider_shift).all()
        and math.isfinite(sampling.twist_level)
        and (sampling.twist_weight is None or np.isfinite(sampling.twist_weight).all())
    )
    if not MIX_SCALE_MIN <= sampling.mix_scale <= 1.0 or not finite:
        raise ValueError(
            f"mix_scale must be in [{MIX_SCALE_MIN:g}, 1] and the shifts and twist finite"
        )
    n = model.obligor_class.shape[0]
    twist = sampling.twist_weight
    if twist is not None and twist.shape != (n,):
        raise ValueError("twist_weight must have one value per obligor")
    return dataclasses.replace(
        model,
        is_twist_weight=np.zeros(n) if twist is None else np.asarray(twist, dtype=float),
        is_twist_level=float(sampling.twist_level) if twist is not None else 0.0,
        is_factor_shift=np.asarray(sampling.factor_shift, dtype=float),
        is_provider_shift=np.asarray(sampling.provider_shift, dtype=float),
        is_mix_scale=float(sampling.mix_scale),
        is_cmc_provider=int(sampling.provider_cmc and provider_cmc_possible(model)),
        sampling="importance",
        sampling_target=sampling.target,
    )
