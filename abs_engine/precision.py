"""Precision-targeted Monte Carlo runs: more paths until a tranche's expected loss reaches a
standard error (``target_se``) or a relative standard error (``target_rel_se``), within a cap.

Each round is an ordinary run of the first n paths of the seed: the answer is bitwise the
plain run of the paths it ended with (random numbers are a pure function of the seed and the
global path index), so a targeted run can be reproduced with ``--paths``. After a round that
misses, the next runs n · (SE / goal)² · 1.1 paths (at least twice n, rounded up to whole
blocks), never more than ``max_paths``; a run that stops at the cap says what it reached.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ArgumentTypeError, InputError, check_int, short_repr
from .schema.stochastic import MAX_PATHS
from .simulation import BLOCK_SIZE

if TYPE_CHECKING:
    from .compile.deal import CompiledDeal
    from .report.montecarlo import SimulationResult

__all__ = ["MAX_ROUNDS", "PrecisionTarget", "check_precision_target", "run_to_precision"]

#: rounds a targeted run takes at most
MAX_ROUNDS = 8
#: the default cap on a targeted run's paths
DEFAULT_MAX_PATHS = 10_000_000


@dataclass(frozen=True)
class PrecisionTarget:
    """What a targeted run aims at: ``tranche``'s expected loss (None: the most senior tranche
    with a balance that is not the residual) to a standard error ``se`` (share of the
    tranche's balance) or a relative standard error ``rel_se``, with at most ``max_paths``."""

    tranche: str | None
    se: float | None
    rel_se: float | None
    max_paths: int

    def goal(self, expected_loss: float) -> float:
        """The standard error to reach at this expected loss."""
        return self.se if self.se is not None else float(self.rel_se or 0.0) * expected_loss


def _positive(func: str, name: str, v: Any, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):  # NumPy's floats too
        raise ArgumentTypeError(f"{func}: {name} must be a number, got {short_repr(v)}")
    x = float(v)
    if not 0.0 < x < hi or math.isnan(x):
        raise InputError(f"{func}: {name} must be above 0 and below {hi:g}, got {short_repr(v)}")
    return x


def check_precision_target(
    func: str, target_se: Any, target_rel_se: Any, tranche: Any, max_paths: Any
) -> PrecisionTarget | None:
    """The run's precision target, checked (None: a plain run). Give at most one of
    ``target_se`` (0 < x < 1) and ``target_rel_se`` (0 < r < 1); ``tranche`` and
    ``max_paths`` only with one of them."""
    if target_se is None and target_rel_se is None:
        for name, v in (("target_tranche", tranche), ("max_paths", max_paths)):
            if v is not None:
                raise InputError(f"{func}: {name} is for a run with target_se or target_rel_se")
        return None
    if target_se is not None and target_rel_se is not None:
        raise InputError(f"{func}: give target_se or target_rel_se, not both")
    se = None if target_se is None else _positive(func, "target_se", target_se, 1.0)
    rel = None if target_rel_se is None else _positive(func, "target_rel_se", target_rel_se, 1.0)
    if tranche is not None and not isinstance(tranche, str):
        raise ArgumentTypeError(
            f"{func}: target_tranche must be a tranche name, got {short_repr(tranche)}"
        )
    cap = DEFAULT_MAX_PATHS if max_paths is None else check_int(
        max_paths, func, "max_paths", 1, MAX_PATHS
    )  # fmt: skip
    return PrecisionTarget(tranche, se, rel, cap)


def target_tranche(cd: CompiledDeal, target: PrecisionTarget, func: str) -> str:
    """The tranche the target is about, checked against the deal."""
    if target.tranche is not None:
        if target.tranche not in cd.tranche_names:
            raise InputError(
                f"{func}: target_tranche: unknown tranche {short_repr(target.tranche)}; "
                f"tranches are {list(cd.tranche_names)}"
            )
        return target.tranche
    rated = [t.name for t in cd.deal.tranches if t.balance > 0 and t.principal != "residual"]
    return rated[0] if rated else cd.tranche_names[0]


def _next_paths(n: int, se: float, goal: float, cap: int) -> int:
    """The paths the next round takes to reach the standard error ``goal`` from ``se`` at
    ``n`` paths (SE ∝ 1/√n, 10% spare), at least twice ``n``, in whole blocks, at most
    ``cap``. A goal far below the SE (1e-300) asks for more paths than a float holds: the
    cap then."""
    try:
        need = n * (se / goal) ** 2 * 1.1 if goal > 0 and se > 0 else 4.0 * n
    except OverflowError:  # a Python float's power raises where NumPy's gives inf
        return cap
    if not math.isfinite(need) or need >= cap:
        return cap
    n_next = max(2 * n, int(math.ceil(need)))
    n_next = -(-n_next // BLOCK_SIZE) * BLOCK_SIZE  # whole blocks
    return min(cap, n_next)


def run_to_precision(
    run: Callable[[int], SimulationResult],
    n_paths: int,
    cd: CompiledDeal,
    target: PrecisionTarget,
    func: str,
) -> SimulationResult:
    """Rounds of ``run(n)`` from ``n_paths`` paths until the target tranche's expected-loss
    standard error reaches the goal or the paths reach the cap; the last round's result, with
    ``precision``: the target, what was reached, and every round's paths, EL and SE."""
    name = target_tranche(cd, target, func)
    n = min(n_paths, target.max_paths)
    rounds: list[dict[str, float]] = []
    for k in range(MAX_ROUNDS):
        res = run(n)
        row = res.tranches.set_index("tranche").loc[name]
        el, se = float(row.expected_loss), float(row.expected_loss_se)
        goal = target.goal(el)
        rounds.append({"paths": n, "expected_loss": el, "expected_loss_se": se})
        # no loss path at all (SE 0): nothing is known yet, so not reached: more paths
        if (se > 0 and se <= goal) or n >= target.max_paths or k == MAX_ROUNDS - 1:
            break
        n = _next_paths(n, se, goal, target.max_paths)
    reached = bool(se > 0 and goal > 0 and se <= goal)
    precision = {
        "tranche": name,
        "target_se": target.se,
        "target_rel_se": target.rel_se,
        "max_paths": target.max_paths,
        "reached": reached,
        "expected_loss": el,
        "expected_loss_se": se,
        "rel_se": se / el if el > 0 else None,
        "paths": n,
        "rounds": rounds,
        "note": None if reached else _why_not(el, se, goal, n, target),
    }
    return dataclasses.replace(res, precision=precision)


def _why_not(el: float, se: float, goal: float, n: int, target: PrecisionTarget) -> str:
    if el == 0.0 or se == 0.0:
        return (
            f"no path lost anything in {n:,} paths: the expected loss and its standard error "
            "are not known yet; use --sampling importance, or raise max_paths"
        )
    if n >= target.max_paths:
        return (
            f"stopped at the cap of {target.max_paths:,} paths with a standard error of "
            f"{se:.3g} against a goal of {goal:.3g}; raise max_paths or use importance sampling"
        )
    return f"stopped after {MAX_ROUNDS} rounds with a standard error of {se:.3g}"
