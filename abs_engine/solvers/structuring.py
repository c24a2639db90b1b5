"""Structuring solvers on the Monte Carlo, with common random numbers (the same seed and path
count at every evaluation, so objectives are smooth and monotone in their parameter):

* :func:`solve_coupon` — the coupon at which a tranche's expected discounted cash flows equal
  par, on a discount curve plus an optional spread;
* :func:`size_tranche` — the largest balance of a tranche (the most junior tranche absorbing
  the difference) meeting a target rating or expected loss;
* :func:`breakeven` — the value of a scenario parameter at which a tranche-level condition
  first fails;
* :func:`sensitivity` — tranche metrics over a grid of two scenario parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from ..compile.deal import CompiledDeal, compile_deal
from ..errors import AbsEngineError, DealError, ProblemCollector
from ..metrics.rating import RatingTable, default_rating_table
from ..schema.deal import Deal
from ..schema.stochastic import MonteCarloScenario
from ..simulation import SimulationResult, simulate_compiled

__all__ = [
    "DiscountCurve",
    "PARAMETERS",
    "SolverError",
    "breakeven",
    "load_curve",
    "sensitivity",
    "size_tranche",
    "solve_coupon",
    "with_parameter",
]


class SolverError(AbsEngineError):
    """A target that cannot be met or bracketed."""


# --- discount curves -------------------------------------------------------------------------


@dataclass(frozen=True)
class DiscountCurve:
    """A flat rate (compounded each period at its accrual fraction, like the coupons, so a
    riskless tranche prices at par exactly at that coupon) or annually compounded zero rates
    by tenor in years (linear in tenor, flat beyond the ends)."""

    flat_rate: float | None = None
    tenors: np.ndarray | None = None
    zero_rates: np.ndarray | None = None
    source: str = "<flat>"

    def discount_factors(
        self, years: np.ndarray, accrual: np.ndarray, spread: float = 0.0
    ) -> np.ndarray:
        """Discount factor to each payment date, float64[T]."""
        if self.flat_rate is not None:
            return 1.0 / np.cumprod(1.0 + (self.flat_rate + spread) * accrual)
        assert self.tenors is not None and self.zero_rates is not None
        z = np.interp(years, self.tenors, self.zero_rates) + spread
        return (1.0 + z) ** (-years)


def load_curve(spec: str | float | Path) -> DiscountCurve:
    """A curve from a number (flat rate, decimal) or a CSV file with columns
    ``tenor_years, zero_rate`` (decimals). Tenors must be positive and increasing."""
    if isinstance(spec, int | float):
        return DiscountCurve(flat_rate=float(spec))
    text = str(spec)
    try:
        return DiscountCurve(flat_rate=float(text))
    except ValueError:
        pass
    p = Path(text)
    if not p.is_file():
        raise DealError.one(
            p, "<file>", "curve file not found (give a rate such as 0.025 or a CSV)"
        )
    df = pd.read_csv(p, comment="#")
    if not {"tenor_years", "zero_rate"} <= set(df.columns):
        raise DealError.one(
            p, "<columns>", "need columns tenor_years and zero_rate", list(df.columns)
        )
    pc = ProblemCollector(p)
    tenors = pd.to_numeric(df["tenor_years"], errors="coerce").to_numpy()
    rates = pd.to_numeric(df["zero_rate"], errors="coerce").to_numpy()
    for k, (t, r) in enumerate(zip(tenors, rates, strict=True)):
        if not np.isfinite(t) or t <= 0:
            pc.add(
                f"row {k + 1}.tenor_years",
                "tenor must be a positive number of years",
                df["tenor_years"][k],
            )
        elif k and np.isfinite(tenors[k - 1]) and t <= tenors[k - 1]:
            pc.add(f"row {k + 1}.tenor_years", "tenors must increase", df["tenor_years"][k])
        if not np.isfinite(r) or not -0.05 <= r <= 1.0:
            pc.add(
                f"row {k + 1}.zero_rate",
                "zero rate must be a decimal between -0.05 and 1",
                df["zero_rate"][k],
            )
    if len(df) == 0:
        pc.add("<rows>", "the curve has no rows")
    pc.raise_if_any()
    return DiscountCurve(tenors=tenors, zero_rates=rates, source=str(p))


# --- scenario parameters -----------------------------------------------------------------------


def _set(doc: dict[str, Any], path: Sequence[str], value: Any) -> None:
    for k in path[:-1]:
        doc = doc.setdefault(k, {})
    doc[path[-1]] = value


def _recovery(doc: dict[str, Any], value: float) -> None:
    # a fixed recovery rate of the defaulted exposure, replacing any IP-value model; the
    # disposal lag is kept (the shortest one of an IP-value model)
    rec = doc.get("recovery")
    lag = rec.get("lag_periods", 4) if rec else 4
    doc["recovery"] = {"kind": "rate", "rate": value, "lag_periods": lag}


def _ip_haircut(doc: dict[str, Any], value: float) -> None:
    rec = doc.get("recovery")
    if not rec or rec.get("kind") != "ip_value":
        raise SolverError("ip_haircut needs a scenario with recovery kind = 'ip_value'")
    rec["haircut"] = value


#: scenario parameters the solvers can move, and how: ``pd_multiplier``; ``correlation``
#: (fixed asset correlation for all obligors); ``cpr``; ``recovery`` (a fixed recovery rate
#: of the defaulted exposure, replacing an IP-value model); ``ip_haircut`` (the disposal
#: haircut of an IP-value model); ``provider_pd_multiplier``
PARAMETERS: dict[str, Callable[[dict[str, Any], float], None]] = {
    "pd_multiplier": lambda d, v: _set(d, ("defaults", "pd_multiplier"), v),
    "correlation": lambda d, v: _set(d, ("defaults", "correlation"), {"kind": "fixed", "value": v}),
    "cpr": lambda d, v: _set(d, ("prepayment", "cpr"), v),
    "recovery": _recovery,
    "ip_haircut": _ip_haircut,
    "provider_pd_multiplier": lambda d, v: _set(d, ("providers", "pd_multiplier"), v),
}


def with_parameter(sc: MonteCarloScenario, name: str, value: float) -> MonteCarloScenario:
    """A copy of the scenario with one parameter set (see :data:`PARAMETERS`)."""
    if name not in PARAMETERS:
        raise SolverError(f"unknown parameter {name!r}; choose from {sorted(PARAMETERS)}")
    doc = sc.model_dump(mode="json")
    PARAMETERS[name](doc, float(value))
    out = MonteCarloScenario.model_validate(doc)
    out._source = sc._source
    return out


# --- helpers -------------------------------------------------------------------------------------


def _tranche_index(cd: CompiledDeal, tranche: str) -> int:
    if tranche not in cd.tranche_names:
        raise SolverError(f"unknown tranche {tranche!r}; tranches are {list(cd.tranche_names)}")
    return cd.tranche_names.index(tranche)


def _run(
    cd: CompiledDeal, sc: MonteCarloScenario, n_paths: int, seed: int, table: RatingTable
) -> SimulationResult:
    return simulate_compiled(cd, sc, n_paths=n_paths, seed=seed, progress=False, rating_table=table)


def _with_tranches(deal: Deal, **changes: dict[str, Any]) -> CompiledDeal:
    doc = deal.model_dump(mode="json")
    doc["pool"]["tape"] = None  # its obligors are already in pool.obligors
    for t in doc["tranches"]:
        t.update(changes.get(t["name"], {}))
    from ..schema.load import parse_deal

    new = parse_deal(doc, source=deal._source)
    new._origins = deal._origins
    return compile_deal(new)


# --- solvers -------------------------------------------------------------------------------------


def expected_pv(
    res: SimulationResult, tranche: str, curve: DiscountCurve, spread: float = 0.0
) -> float:
    """Expected PV of the tranche's cash flows (interest, principal, residual) on the curve."""
    cd = res.deal
    cf = res.cashflows
    cash = (
        cf[f"{tranche}.interest_paid"]
        + cf[f"{tranche}.principal_paid"]
        + cf[f"{tranche}.residual_paid"]
    ).to_numpy()
    return float((cash * curve.discount_factors(cd.years, cd.deal_accrual, spread)).sum())


def solve_coupon(
    deal: Deal,
    sc: MonteCarloScenario,
    tranche: str,
    curve: DiscountCurve,
    *,
    spread_bps: float = 0.0,
    n_paths: int = 20_000,
    seed: int | None = None,
    bounds: tuple[float, float] = (0.0, 0.5),
) -> float:
    """Fixed coupon (decimal) at which E[PV of the tranche's cash flows] on ``curve`` + spread
    equals its balance. Brent's method on common random numbers."""
    cd0 = compile_deal(deal)
    j = _tranche_index(cd0, tranche)
    bal = deal.tranches[j].balance
    if bal <= 0:
        raise SolverError(f"tranche {tranche!r} has no balance to price")
    seed = sc.seed if seed is None else seed
    table = default_rating_table()

    def gap(c: float) -> float:
        cd = _with_tranches(deal, **{tranche: {"coupon": {"kind": "fixed", "rate": c}}})
        return (
            expected_pv(_run(cd, sc, n_paths, seed, table), tranche, curve, spread_bps / 1e4) - bal
        )

    lo, hi = bounds
    g_lo, g_hi = gap(lo), gap(hi)
    if g_lo * g_hi > 0:
        raise SolverError(
            f"no coupon in [{lo:.2%}, {hi:.2%}] prices {tranche} at par "
            f"(PV minus par {g_lo:,.0f} and {g_hi:,.0f} at the ends)"
        )
    return float(brentq(gap, lo, hi, xtol=1e-9, rtol=1e-12))


def size_tranche(
    deal: Deal,
    sc: MonteCarloScenario,
    tranche: str,
    *,
    target_rating: str | None = None,
    target_el: float | None = None,
    n_paths: int = 20_000,
    seed: int | None = None,
    rating_table: RatingTable | None = None,
    tol: float = 1e-4,
) -> dict[str, Any]:
    """Largest balance of ``tranche`` (as a share of its balance plus the most junior
    tranche's, which absorbs the difference) whose expected loss meets ``target_el``, or whose
    metric on the rating table's basis (expected loss, or default probability for a PD table)
    meets the ``target_rating``'s threshold at the tranche's WAL. Bisection on common random
    numbers; the answer is always a balance that was evaluated and passed."""
    if (target_rating is None) == (target_el is None):
        raise SolverError("give exactly one of target_rating or target_el")
    table = rating_table or default_rating_table()
    if target_rating is not None and target_rating not in table.ratings:
        raise SolverError(f"unknown rating {target_rating!r}; the table has {list(table.ratings)}")
    cd0 = compile_deal(deal)
    j = _tranche_index(cd0, tranche)
    junior = deal.tranches[-1].name
    if junior == tranche:
        raise SolverError("the most junior tranche absorbs the change; size a more senior one")
    total = deal.tranches[j].balance + deal.tranches[-1].balance
    seed = sc.seed if seed is None else seed

    def evaluate(balance: float) -> tuple[bool, dict[str, Any]]:
        cd = _with_tranches(
            deal, **{tranche: {"balance": balance}, junior: {"balance": total - balance}}
        )
        row = _run(cd, sc, n_paths, seed, table).tranches.iloc[j]
        metric, metric_se = row.expected_loss, row.expected_loss_se
        if target_el is not None:
            limit = target_el
        else:
            if table.basis == "pd":
                metric, metric_se = row.default_probability, row.default_probability_se
            assert target_rating is not None
            limit = (
                table.threshold(target_rating, row.wal_years) if np.isfinite(row.wal_years) else 0.0
            )
        info = {
            "balance": balance,
            "expected_loss": row.expected_loss,
            "expected_loss_se": row.expected_loss_se,
            "default_probability": row.default_probability,
            "wal_years": row.wal_years,
            "basis": "el" if target_el is not None else table.basis,
            "metric": metric,
            "metric_se": metric_se,
            "limit": limit,
            "implied_rating": row.implied_rating,
        }
        return bool(metric <= limit), info

    ok_hi, info_hi = evaluate(total)
    if ok_hi:
        return {**info_hi, "share_of_capital": 1.0}
    lo, hi = 0.0, total
    ok_lo, info_lo = evaluate(tol * total)
    if not ok_lo:
        raise SolverError(f"{tranche} misses the target even at {tol:.2%} of its capital")
    lo, best = tol * total, info_lo
    while (hi - lo) / total > tol:
        mid = 0.5 * (lo + hi)
        ok, info = evaluate(mid)
        if ok:
            lo, best = mid, info
        else:
            hi = mid
    return {**best, "share_of_capital": best["balance"] / total}


Condition = Callable[[pd.Series], bool]


def condition(kind: str, value: float = 0.0) -> Condition:
    """A tranche-level stop condition, true while the tranche is fine:
    ``first_loss`` (no expected loss), ``el_above`` (expected loss at most ``value``),
    ``irr_below`` (mean yield at least ``value``), ``pd_above`` (default probability at most
    ``value``)."""
    if kind == "first_loss":
        return lambda r: r.expected_loss <= 0.0
    if kind == "el_above":
        return lambda r: r.expected_loss <= value
    if kind == "irr_below":
        return lambda r: r.irr >= value
    if kind == "pd_above":
        return lambda r: r.default_probability <= value
    raise SolverError(f"unknown condition {kind!r}; use first_loss, el_above, irr_below, pd_above")


def breakeven(
    cd: CompiledDeal,
    sc: MonteCarloScenario,
    tranche: str,
    param: str,
    ok: Condition,
    *,
    lo: float,
    hi: float,
    n_paths: int = 20_000,
    seed: int | None = None,
    tol: float = 1e-3,
) -> float:
    """The parameter value between ``lo`` (condition holds) and ``hi`` (it fails) where the
    condition first fails, by bisection on common random numbers (``hi`` may be below ``lo``
    for parameters where larger is better, e.g. recovery)."""
    j = _tranche_index(cd, tranche)
    seed = sc.seed if seed is None else seed
    table = default_rating_table()

    def holds(v: float) -> bool:
        return bool(
            ok(_run(cd, with_parameter(sc, param, v), n_paths, seed, table).tranches.iloc[j])
        )

    if not holds(lo):
        raise SolverError(f"the condition already fails at {param} = {lo}")
    if holds(hi):
        raise SolverError(f"the condition still holds at {param} = {hi}: widen the range")
    a, b = lo, hi
    while abs(b - a) > tol * max(1.0, abs(lo), abs(hi)):
        m = 0.5 * (a + b)
        if holds(m):
            a = m
        else:
            b = m
    return 0.5 * (a + b)


def sensitivity(
    cd: CompiledDeal,
    sc: MonteCarloScenario,
    x: tuple[str, Sequence[float]],
    y: tuple[str, Sequence[float]],
    *,
    n_paths: int = 20_000,
    seed: int | None = None,
) -> pd.DataFrame:
    """Tranche expected loss (± SE), default probability, WAL and implied rating over a grid
    of two scenario parameters, long form: one row per (x, y, tranche)."""
    seed = sc.seed if seed is None else seed
    table = default_rating_table()
    rows = []
    for xv in x[1]:
        for yv in y[1]:
            s2 = with_parameter(with_parameter(sc, x[0], xv), y[0], yv)
            tr = _run(cd, s2, n_paths, seed, table).tranches
            for r in tr.itertuples():
                rows.append(
                    {
                        x[0]: xv,
                        y[0]: yv,
                        "tranche": r.tranche,
                        "expected_loss": r.expected_loss,
                        "expected_loss_se": r.expected_loss_se,
                        "default_probability": r.default_probability,
                        "wal_years": r.wal_years,
                        "implied_rating": r.implied_rating,
                    }
                )
    return pd.DataFrame(rows)
