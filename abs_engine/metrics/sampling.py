"""Diagnostics of an importance-sampled run: how many paths an estimate really rests on, and
the warnings a user must see when the answer's standard error cannot be trusted.

A likelihood-ratio estimate can be dominated by a handful of heavily weighted paths; its
sample variance then understates the error (the weights' tail has not been sampled). The
effective number of paths behind a figure's mean, (Σw·v)² / Σw²·v² (Kong's effective sample
size, for the weighted values w·v), says so: an estimate resting on fewer than 100 effective
paths is flagged (a shift-only run 8 standard errors off its exact value rested on 41), as is
a mean weight more than four standard errors from 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..kernels import layout as L

__all__ = ["MIN_EFFECTIVE_PATHS", "degeneracy_warnings", "effective_paths", "impossible_shares"]

#: an estimate resting on fewer effective paths than this is flagged
MIN_EFFECTIVE_PATHS = 100.0


def effective_paths(m: np.ndarray, columns: Sequence[int]) -> list[float]:
    """The effective number of paths (Σw·v)² / Σw²·v² behind each metric of ``columns``,
    from a run's sums ``m`` (float64[N_SUM, M], rows ``SUM_*``); 0 where no path has a value
    (nothing lost)."""
    out = []
    for c in columns:
        s, sq = float(m[L.SUM_WV, c]), float(m[L.SUM_W2V2, c])
        out.append(s * s / sq if sq > 0 else 0.0)
    return out


def degeneracy_warnings(
    names: Sequence[str],
    loss_paths: Sequence[float],
    summary: Mapping[str, object],
    target: str | None = None,
) -> list[str]:
    """Plain-language warnings: the target tranche without a loss path, a tranche whose
    expected loss rests on fewer than :data:`MIN_EFFECTIVE_PATHS` effective paths (but on
    some), weights whose mean is more than four standard errors from 1, and an effective
    sample size (Σw)² / Σw² below :data:`MIN_EFFECTIVE_PATHS`: the weighted (self-normalised)
    means of the figures the sampling is not aimed at, the target's own WAL, yield and amounts
    paid included, are then biased by more than their standard errors say (a validator's WAL
    z-scores averaged −4 over 20 seeds at effective samples of 3 to 50; another's mezzanine,
    not aimed at, had its shortfall probability 6 SE low with the weights' mean off 1).
    ``target``: the tranche the sampling is aimed at, whose expected loss and shortfall
    probability the shifts serve, and for whom more aim is no remedy."""
    out = []
    for name, k in zip(names, loss_paths, strict=True):
        if k == 0.0 and name == target:
            out.append(
                f"no path lost on {name}, the tranche the sampling is aimed at: its expected "
                "loss of 0 ± 0 and its implied rating say only that no loss was seen; use "
                "more paths"
            )
        if 0.0 < k < MIN_EFFECTIVE_PATHS:
            remedy = (
                "use more paths, or crude sampling if the loss is not that rare"
                if name == target
                else f"use more paths, or aim the sampling at {name} (--sampling-target)"
            )
            out.append(
                f"{name}'s expected loss rests on {k:.1f} effective paths: it, its standard "
                "error and its implied rating are unreliable (the weights' tail may be "
                f"unsampled); {remedy}"
            )
    others = [n for n in names if n != target]
    theirs = (
        f"the expected losses and shortfall probabilities of {', '.join(others)}, "
        if others
        else ""
    )
    w_mean = float(summary["weight_mean"])  # type: ignore[arg-type]
    w_se = float(summary["weight_mean_se"])  # type: ignore[arg-type]
    if w_se > 0 and abs(w_mean - 1.0) > 4.0 * w_se:
        # the weights' tail is unsampled: a validator's mezzanine, not the target, had its
        # shortfall probability 6 SE low on 252 effective loss paths
        out.append(
            f"the likelihood-ratio weights average {w_mean:.4f} ± {w_se:.4f}, not 1: the "
            "sampling is too far from the model for the figures it was not aimed at "
            f"({theirs}WAL, yield, amounts paid, coverage, pool figures), which may be biased "
            "by more than their standard errors say; aim it at the tranche you need "
            "(--sampling-target), or take figures of events that are not rare from crude "
            "sampling"
        )
    ess = float(summary["effective_sample_size"])  # type: ignore[arg-type]
    if ess < MIN_EFFECTIVE_PATHS:
        aimed = f"{target}'s" if target is not None else "the target tranche's"
        out.append(
            f"the likelihood-ratio weights rest on an effective sample of {ess:.1f} paths: "
            f"every figure but {aimed} expected loss and shortfall probability ({theirs}WAL, "
            "yield, amounts paid, coverage, pool figures; the target's too) is biased by more "
            "than its standard error says; take those from a run with crude sampling or "
            "aimed at them"
        )
    return out


#: pool figures bounded by 1 (shares of the original pool, probabilities), by layout index
POOL_SHARES = (
    ("default rate", L.MP_DEFAULT_RATE),
    ("loss rate", L.MP_LOSS_RATE),
    ("recovery rate", L.MP_RECOVERY_RATE),
    ("prepayment rate", L.MP_PREPAY_RATE),
    ("provider default probability", L.MP_PROVIDER_DEFAULT),
    ("accelerated probability", L.MP_ACCELERATED),
    ("support drawn probability", L.MP_SUPPORT_DRAWN),
)


def impossible_shares(names: Sequence[str], mean: np.ndarray, n_obligors: int) -> list[str]:
    """Warnings for a share or probability estimated above 1 (``mean`` float64[M], the run's
    metric means: ``MT_*`` per tranche, then ``MP_*``): a tranche's expected loss or
    shortfall probability, the pool's shares of :data:`POOL_SHARES`, and an expected default
    count above the ``n_obligors``. The weighted mean Σw·v / P is unbiased, not bounded, and
    a sample far from the model (every obligor defaulting with a PD near 1, a provider
    certain to default) can put it above what it estimates: a validator's provider default
    probability of 1.014 on a scenario where the provider is in default from the start."""
    out = []
    figures = []
    for j, name in enumerate(names):
        for item, what in ((L.MT_PV_LOSS, "expected loss"),
                           (L.MT_DEFAULT, "shortfall probability")):  # fmt: skip
            figures.append((f"{name}'s {what}", float(mean[j * L.N_MT + item]), 1.0))
    base = len(names) * L.N_MT
    figures += [(f"the pool's {what}", float(mean[base + k]), 1.0) for what, k in POOL_SHARES]
    count = float(mean[base + L.MP_DEFAULT_COUNT])
    figures.append(("the pool's expected default count", count, float(n_obligors)))
    for what, v, bound in figures:
        if v > bound:
            out.append(
                f"{what} is estimated at {v:.8g}, above {bound:g}: the importance "
                "weights' sample is too far from the model for it; use crude sampling "
                "(the event is not rare) or more paths"
            )
    return out
