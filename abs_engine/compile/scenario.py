"""Deterministic scenarios → pool flows per path and period (the kernel's input).

Per obligor i and period t, with performing factor f (share of the scheduled balance still
performing, 1 at closing), scheduled balance S, principal P and interest I:

    defaulted    = f · d_t · S          (default at the start of the period: no interest)
    f'           = f · (1 - d_t)
    interest     = f' · I,   scheduled principal = f' · P
    prepayment   = smm_t · f' · (S - P)
    f           <- f' · (1 - smm_t)
    recovery     = rate · defaulted, received lag periods later (lost if after legal final)
    realised loss = defaulted - recovery, booked when the recovery is received.

d_t is the scenario's period default rate (CDR → 1 - (1 - cdr)^(1/periods_per_year), or a
cumulative default amount spread by a timing curve and divided by the performing balance),
1 for an obligor named to default in period t.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ArgumentTypeError, InputError, ProblemCollector, check_instance, short_repr
from ..kernels import layout as L
from ..schema.load import revalidated
from ..schema.scenario import CdrDefaults, CumulativeDefaults, DeterministicScenario
from .deal import CompiledDeal

__all__ = ["PoolFlows", "deterministic_flows", "period_rate", "scenario_source"]


@dataclass(frozen=True)
class PoolFlows:
    """Kernel input for P paths.

    Attributes
    ----------
    flows : float64[P, N_PF, T]           pool collections (yuan), rows ``PF_*``
    support_default_period : int64[P, S]  0-based default period of each provider (>= T: never)
    base_rate : float64[P, T]             annual base rate for floating coupons (decimal)
    lost_recovery : float64[P, T]         recoveries that would arrive after legal final, by the
                                          period of their default (yuan): up to a clean-up
                                          call, only the first rows' are the trust's
    labels : tuple[str, ...]              a label per path (scenario names here)
    """

    flows: np.ndarray
    support_default_period: np.ndarray
    base_rate: np.ndarray
    lost_recovery: np.ndarray
    labels: tuple[str, ...]

    @property
    def n_paths(self) -> int:
        return int(self.flows.shape[0])


def scenario_source(sc: DeterministicScenario) -> str:
    """The file a scenario was read from, or ``<memory>`` (its ``source``)."""
    return sc.source


def period_rate(annual: float | list[float], n_t: int, periods_per_year: int) -> np.ndarray:
    """Annual rate(s) (CDR or CPR, decimal) → per-period rate vector float64[T]; a vector's last
    value repeats."""
    v = np.atleast_1d(np.asarray(annual, dtype=np.float64))
    out = np.full(n_t, v[-1])
    out[: min(len(v), n_t)] = v[:n_t]
    return 1.0 - (1.0 - out) ** (1.0 / periods_per_year)


def checked_scenarios(
    cd: CompiledDeal, scenarios: Sequence[DeterministicScenario], func: str = "deterministic_flows"
) -> list[DeterministicScenario]:
    """Argument checks of :func:`deterministic_flows` (errors named by ``func``, the public
    function the scenarios were given to); each scenario validated again (one changed with
    ``model_copy(update=...)`` skipped pydantic's checks), its file name kept."""
    check_instance(cd, CompiledDeal, func, "cd")
    if isinstance(scenarios, DeterministicScenario | str | bytes) or not isinstance(
        scenarios, Sequence
    ):  # (a name is a sequence too: its letters were taken for scenarios, 'h' the first)
        hint = "; load a name or path with abs_engine.load_scenario" if isinstance(
            scenarios, str | bytes) else ""  # fmt: skip
        raise ArgumentTypeError(
            f"{func}: scenarios must be a list of DeterministicScenario, got "
            f"{short_repr(scenarios)} ({type(scenarios).__name__}){hint}"
        )
    if not scenarios:
        raise InputError(f"{func}: scenarios is empty; give at least one scenario")
    out = []
    for k, sc in enumerate(scenarios):
        if not isinstance(sc, DeterministicScenario):
            raise ArgumentTypeError(
                f"{func}: scenarios[{k}] must be a DeterministicScenario, got "
                f"{short_repr(sc)} ({type(sc).__name__})"
            )
        out.append(revalidated(sc))
    return out


def _check_lengths(sc: DeterministicScenario, n_t: int, pc: ProblemCollector) -> None:
    """Complain about a CDR, CPR or timing vector longer than the deal's T periods."""
    dfl = sc.defaults
    for name, vec in (
        ("defaults.cdr", getattr(dfl, "cdr", None)),
        ("prepayment.cpr", sc.prepayment.cpr),
    ):
        if isinstance(vec, list) and len(vec) > n_t:
            pc.add(name, f"has {len(vec)} values but the deal has {n_t} periods", len(vec))
    if isinstance(dfl, CumulativeDefaults) and len(dfl.timing) > n_t:
        pc.add(
            "defaults.timing",
            f"has {len(dfl.timing)} shares but the deal has {n_t} periods",
            len(dfl.timing),
        )


def _forced_defaults(
    cd: CompiledDeal, sc: DeterministicScenario, pc: ProblemCollector
) -> np.ndarray:
    """The scenario's ``obligor_defaults`` as bool[N, T]: True where obligor i is named to
    default in period t (by id, or as one of the ``largest`` balances, ties in pool order).
    Complains about unknown obligors, periods after the last, and an obligor named twice."""
    pool = cd.pool
    n_t, n = cd.n_periods, cd.n_obligors
    forced = np.zeros((n, n_t), dtype=bool)
    order = np.argsort(-pool.balance, kind="stable")
    owner = np.full(n, -1, dtype=np.int64)  # the obligor_defaults entry defaulting each obligor

    def claim(rows: np.ndarray, k: int, path: str, value: object) -> None:
        taken = rows[owner[rows] >= 0]
        if len(taken):  # an obligor can default only once
            i = int(taken[0])
            why = f"obligor {pool.ids[i]!r} already defaults in obligor_defaults[{owner[i]}]"
            pc.add(f"obligor_defaults[{k}].{path}", why, value)
        owner[rows[owner[rows] < 0]] = k

    for k, ev in enumerate(sc.obligor_defaults):
        if ev.period > n_t:
            pc.add(f"obligor_defaults[{k}].period", f"after the last period ({n_t})", ev.period)
            continue
        if ev.obligor is not None:
            if ev.obligor not in pool.ids:
                pc.add(f"obligor_defaults[{k}].obligor", "unknown obligor id", ev.obligor)
                continue
            claim(np.array([pool.ids.index(ev.obligor)]), k, "obligor", ev.obligor)
            forced[pool.ids.index(ev.obligor), ev.period - 1] = True
        else:
            assert ev.largest is not None
            if ev.largest > n:
                pc.add(
                    f"obligor_defaults[{k}].largest", f"the pool has only {n} obligors", ev.largest
                )
                continue
            claim(order[: ev.largest], k, "largest", ev.largest)
            forced[order[: ev.largest], ev.period - 1] = True
    return forced


def _recovery_terms(cd: CompiledDeal, sc: DeterministicScenario) -> tuple[np.ndarray, np.ndarray]:
    """Recovery rate float64[N] (decimal of the defaulted balance) and lag int64[N] (periods):
    the scenario's, or each obligor's own where the scenario gives none."""
    if sc.recovery is not None:
        n = cd.n_obligors
        return (
            np.full(n, sc.recovery.rate),
            np.full(n, sc.recovery.lag_periods, dtype=np.int64),
        )
    return cd.pool.recovery_rate, cd.pool.recovery_lag


def _support_default_periods(
    cd: CompiledDeal, sc: DeterministicScenario, pc: ProblemCollector
) -> np.ndarray:
    """int64[S]: the 0-based period each support provider defaults in (T + 1: never), the
    earliest where one is named twice. Complains about unknown supports and late periods."""
    n_t = cd.n_periods
    sup_period = np.full(len(cd.support_names), n_t + 1, dtype=np.int64)
    for k, sd in enumerate(sc.support_defaults):
        if sd.support not in cd.support_names:
            pc.add(
                f"support_defaults[{k}].support",
                f"unknown support; supports are {list(cd.support_names)}",
                sd.support,
            )
        elif sd.period > n_t:
            pc.add(f"support_defaults[{k}].period", f"after the last period ({n_t})", sd.period)
        else:
            s = cd.support_names.index(sd.support)
            sup_period[s] = min(sup_period[s], sd.period - 1)
    return sup_period


def _cumulative_default_rate(
    cd: CompiledDeal,
    dfl: CumulativeDefaults,
    t: int,
    perf_start: np.ndarray,
    forced_t: np.ndarray,
) -> float:
    """Period-t default rate (decimal of the performing balance) that spreads the cumulative
    default amount by the timing curve over the obligors not already forced to default;
    ``perf_start`` float64[N] and ``forced_t`` bool[N] are period t's."""
    target = dfl.cumulative * cd.original_pool * (dfl.timing[t] if t < len(dfl.timing) else 0.0)
    base = perf_start[~forced_t].sum()
    return min(1.0, target / base) if base > 0 else 0.0


def _book_recoveries(
    flows: np.ndarray,
    t: int,
    defaulted: np.ndarray,
    rec_rate: np.ndarray,
    rec_lag: np.ndarray,
) -> float:
    """Book period t's defaults (``defaulted`` float64[N], yuan) into ``flows`` float64[N_PF, T]
    (recovery and loss when the recovery arrives, pending recovery until then); returns the
    recoveries of these defaults that would arrive after legal final (yuan)."""
    n_t = flows.shape[1]
    lost = 0.0
    for i in np.nonzero(defaulted > 0)[0]:
        rt = t + rec_lag[i]
        rec = rec_rate[i] * defaulted[i]
        if rt < n_t:
            flows[L.PF_RECOVERY, rt] += rec
            flows[L.PF_LOSS, rt] += defaulted[i] - rec
            flows[L.PF_PENDING_RECOVERY, t:rt] += rec
        else:
            # the recovery comes after legal final: the whole exposure is the deal's loss,
            # booked in the final period
            lost += rec
            flows[L.PF_LOSS, n_t - 1] += defaulted[i]
    return lost


def _pool_flows(
    cd: CompiledDeal,
    sc: DeterministicScenario,
    forced: np.ndarray,
    rec_rate: np.ndarray,
    rec_lag: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the pool period by period (the module docstring's recursion): collections
    float64[N_PF, T] (yuan, rows ``PF_*``) and the recoveries lost after legal final by the
    period of their default, float64[T] (yuan)."""
    pool = cd.pool
    n_t, n = cd.n_periods, cd.n_obligors
    ppy = cd.periods_per_year
    dfl = sc.defaults
    smm = period_rate(sc.prepayment.cpr, n_t, ppy)
    cdr = period_rate(dfl.cdr, n_t, ppy) if isinstance(dfl, CdrDefaults) else np.zeros(n_t)
    flows = np.zeros((L.N_PF, n_t))
    f = np.ones(n)
    lost = np.zeros(n_t)
    S, P, I = pool.sched_balance_start, pool.sched_principal, pool.sched_interest
    for t in range(n_t):
        perf_start = f * S[:, t]
        if isinstance(dfl, CumulativeDefaults):
            d_pool = _cumulative_default_rate(cd, dfl, t, perf_start, forced[:, t])
        else:
            d_pool = cdr[t]
        d = np.where(forced[:, t], 1.0, d_pool)
        defaulted = perf_start * d
        f1 = f * (1.0 - d)
        flows[L.PF_INTEREST, t] = (f1 * I[:, t]).sum()
        flows[L.PF_SCHED_PRIN, t] = (f1 * P[:, t]).sum()
        flows[L.PF_PREPAY, t] = smm[t] * (f1 * (S[:, t] - P[:, t])).sum()
        flows[L.PF_DEFAULT, t] = defaulted.sum()
        f = f1 * (1.0 - smm[t])
        lost[t] = _book_recoveries(flows, t, defaulted, rec_rate, rec_lag)
    return flows, lost


def _one(
    cd: CompiledDeal, sc: DeterministicScenario, pc: ProblemCollector
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One scenario's pool flows float64[N_PF, T] (yuan), support default periods int64[S],
    annual base rate float64[T] (decimal) and recoveries lost after legal final by default
    period float64[T] (yuan).
    Problems go to ``pc`` (the caller raises); the flows are then meaningless."""
    n_t = cd.n_periods
    _check_lengths(sc, n_t, pc)
    forced = _forced_defaults(cd, sc, pc)
    rec_rate, rec_lag = _recovery_terms(cd, sc)
    sup_period = _support_default_periods(cd, sc, pc)
    flows, lost = _pool_flows(cd, sc, forced, rec_rate, rec_lag)
    base_rate = cd.deal.base_rate if sc.base_rate is None else sc.base_rate
    rates = np.full(n_t, base_rate + sc.rate_shock_bps / 1e4)
    return flows, sup_period, rates, lost


def deterministic_flows(
    cd: CompiledDeal,
    scenarios: Sequence[DeterministicScenario],
    *,
    func: str = "deterministic_flows",
) -> PoolFlows:
    """Pool flows for each scenario (one path per scenario). Problems that need the deal
    (unknown obligor or support, vectors longer than the deal) raise a ``DealError`` naming the
    scenario file; argument errors are named by ``func``, the public function called."""
    scenarios = checked_scenarios(cd, scenarios, func)
    out = []
    for sc in scenarios:
        pc = ProblemCollector(scenario_source(sc))
        res = _one(cd, sc, pc)
        pc.raise_if_any()
        out.append(res)
    return PoolFlows(
        flows=np.ascontiguousarray(np.stack([o[0] for o in out])),
        support_default_period=np.ascontiguousarray(np.stack([o[1] for o in out])).reshape(
            len(out), -1
        ),
        base_rate=np.ascontiguousarray(np.stack([o[2] for o in out])),
        lost_recovery=np.stack([o[3] for o in out]),
        labels=tuple(sc.name for sc in scenarios),
    )
