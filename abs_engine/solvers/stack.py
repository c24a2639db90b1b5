"""Full-stack sizing: every rated tranche sized top-down to its target rating, the most
junior tranche (the residual) absorbing the rest of the capital.

:func:`size_stack` runs :func:`~abs_engine.solvers.structuring.size_tranche` once per
target, most senior first. ``size_tranche`` moves balance only between the tranche it sizes
and the most junior one, so sizing ``A`` fixes ``A``'s balance (its attachment point: all the
capital below it), and sizing ``B`` next takes ``B``'s balance out of what the residual holds
after ``A``: the structure is built from the top down, and the capital (the sum of the
balances) never changes. With a ``curve``, each sized tranche's par coupon is then solved on
the final balances, most senior first, each coupon patched in before the next is solved (a
senior's coupon changes the cash left for the juniors). A last evaluation of the finished
structure (with those coupons) reports each tranche's expected loss ± SE, default
probability, WAL and implied rating, and whether each target is met there.

The final evaluation need not repeat the sizing's figures: a senior tranche is sized before
the tranches below it take their final balances and coupons (a junior's interest is paid
ahead of the residual, so it leaves less excess spread to protect the senior), each tranche
is sized paying the coupon it had, not its par coupon, and the evaluation runs on other
random weights (importance sampling re-tuned for the finished structure). A target missed
there is reported with the gap in standard errors: within about two, Monte Carlo noise (raise
the paths); beyond, the structure moved after the tranche was sized. ``rounds=2`` or more
sizes again from the last pass's structure (its balances and par coupons), until a pass
leaves the balances and coupons where they were: a structure sized at the coupons it pays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..compile.deal import CompiledDeal, compile_deal
from ..compile.patch import with_tranche_terms
from ..errors import check_int, check_optional_bool, names_its_arguments, short_repr
from ..metrics.rating import RatingTable, implied_ratings, rating_table_arg
from ..schema.deal import Deal
from ..schema.stochastic import MAX_SEED, MonteCarloScenario
from ..schema.tranche import FixedCoupon, FloatingCoupon, tranche_classes
from ..simulation import start_simulation_compiled
from .structuring import (
    DiscountCurve,
    SolverArgumentError,
    SolverArgumentTypeError,
    SolverError,
    _check_resizable,
    _check_sampling_method,
    _Evaluations,
    _n_paths,
    _runner,
    _tol,
    check_monte_carlo,
    load_curve,
    par_coupon_terms,
    size_tranche,
    solve_coupon,
)

__all__ = ["MAX_ROUNDS", "NOISE_SE", "StackSizing", "check_targets", "size_stack"]

#: the most size-and-price passes :func:`size_stack` runs
MAX_ROUNDS = 5

#: a target missed by at most this many standard errors at the final evaluation is reported
#: as Monte Carlo noise; by more, as a structure that moved after the tranche was sized
NOISE_SE = 2.0


@dataclass(frozen=True)
class StackSizing:
    """The result of :func:`size_stack`.

    ``deal``: the finished structure (sized balances, and the par coupons with a curve), a
    :class:`~abs_engine.schema.deal.Deal` that runs like any other. ``tranches``: one dict
    per tranche, most senior first, with ``tranche``, ``role`` ("sized", "residual" or
    "unchanged"), ``target`` (a rating, or None), ``original_balance``, ``balance``,
    ``share`` (of the capital), ``subordination`` (the share of the capital below it),
    ``balance_ci95`` (the sizing's 95% interval of the balance), ``coupon`` (the fixed rate
    it pays in the final structure; None for none or a floating coupon), ``par_coupon``
    (with a curve, for sized tranches: a floating tranche's is its par spread over the base
    rate, which the final structure pays, floor and cap kept; ``par_coupon_kind`` "fixed" or
    "spread") with ``par_coupon_se`` and ``par_coupon_ci95`` (as ``price`` gives them), the
    final evaluation's ``expected_loss``,
    ``expected_loss_se``, ``default_probability``, ``default_probability_se``,
    ``wal_years`` and ``implied_rating``, and for a target ``metric`` ± ``metric_se`` (on the
    table's basis), ``limit`` (the target's threshold at the final WAL), ``meets_target``,
    ``margin_se`` ((metric − limit) / SE: negative when met) and ``sizing`` (the figures of
    the evaluation at which it was sized, in the last pass). ``rounds``: the size-and-price
    passes run."""

    deal: Deal
    tranches: list[dict[str, Any]]
    total_capital: float
    targets: list[tuple[str, str]]
    basis: str
    rating_table: dict[str, Any]
    curve: str | None
    n_paths: int
    seed: int
    sampling: str
    rounds: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def all_targets_met(self) -> bool:
        """Whether every target is met at the final evaluation."""
        return all(t["meets_target"] for t in self.tranches if t["target"] is not None)

    def to_frame(self) -> pd.DataFrame:
        """The capital structure, one row per tranche (``sizing`` left out)."""
        rows = [{k: v for k, v in t.items() if k != "sizing"} for t in self.tranches]
        return pd.DataFrame(rows).set_index("tranche")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready document (plain floats; NaN stays NaN)."""
        return {
            "targets": [{"tranche": n, "rating": r} for n, r in self.targets],
            "total_capital": self.total_capital,
            "basis": self.basis,
            "rating_table": dict(self.rating_table),
            "curve": self.curve,
            "n_paths": self.n_paths,
            "seed": self.seed,
            "sampling": self.sampling,
            "rounds": self.rounds,
            "all_targets_met": self.all_targets_met,
            "tranches": [dict(t) for t in self.tranches],
            "notes": list(self.notes),
        }


def _target_pairs(targets: Any) -> list[tuple[str, str]]:
    """``targets`` (a mapping, or a sequence of (tranche, rating) pairs) as a list of pairs of
    strings; anything else a :class:`SolverError`."""
    if isinstance(targets, Mapping):
        items = list(targets.items())
    elif isinstance(targets, Sequence) and not isinstance(targets, str | bytes):
        items = []
        for item in targets:
            if not isinstance(item, Sequence) or isinstance(item, str | bytes) or len(item) != 2:
                raise SolverArgumentTypeError(
                    f"each target is a (tranche, rating) pair, got {short_repr(item)}"
                )
            items.append((item[0], item[1]))
    else:
        raise SolverArgumentTypeError(
            "targets must map tranche names to ratings ({'A': 'AAA'}) or list (tranche, rating) "
            f"pairs, got {short_repr(targets)}"
        )
    if not items:
        raise SolverArgumentError(
            "no targets: give at least one tranche and its rating, e.g. A=AAA"
        )
    for name, rating in items:
        if not isinstance(name, str):
            raise SolverArgumentTypeError(
                f"a tranche name must be a string, got {short_repr(name)}"
            )
        if not isinstance(rating, str):
            raise SolverArgumentTypeError(
                f"the target of tranche {name!r} must be a rating (a string), got "
                f"{short_repr(rating)}"
            )
    return items


def check_targets(
    deal: Deal, pairs: list[tuple[str, str]], table: RatingTable
) -> list[tuple[int, str, str]]:
    """(index, tranche, rating) of each target, after checking every name, rating and the
    order against the deal and the table (a :class:`SolverError` naming the problem; the
    command line adds its flag, ``--target``)."""
    names = [t.name for t in deal.tranches]
    if len(names) < 2:
        raise SolverArgumentError(
            f"the deal has one tranche ({names[0]!r}): nothing below it absorbs the rest"
        )
    junior = names[-1]
    out: list[tuple[int, str, str]] = []
    seen: set[str] = set()
    for name, rating in pairs:
        if name not in names:
            raise SolverArgumentError(f"unknown tranche {short_repr(name)}; tranches are {names}")
        if name == junior:
            raise SolverArgumentError(
                f"{name!r} is the most junior tranche (the residual), which absorbs the rest "
                f"of the capital: it takes no target; give targets for {names[:-1]}"
            )
        if name in seen:
            raise SolverArgumentError(f"tranche {name!r} is given a target twice")
        seen.add(name)
        if rating not in table.ratings:
            raise SolverArgumentError(
                f"unknown rating {short_repr(rating)} for tranche {name!r}; the table "
                f"({table.source}) has {list(table.ratings)}"
            )
        j = names.index(name)
        if out and j < out[-1][0]:
            prev = out[-1][1]
            order = [n for n in names if n in seen]
            raise SolverArgumentError(
                f"targets must run from the most senior tranche down: {name!r} is senior to "
                f"{prev!r} but comes after it; give them in the order {order}"
            )
        out.append((j, name, rating))
    _check_resizable(deal, [j for j, _, _ in out] + [len(names) - 1])
    return out


def _curve(curve: Any) -> tuple[DiscountCurve | None, str | None]:
    """The curve (a :class:`DiscountCurve`, a flat rate or a CSV path) and its label."""
    if curve is None:
        return None, None
    if isinstance(curve, DiscountCurve):
        label = curve.source if curve.flat_rate is None else f"{curve.flat_rate:g}"
        return curve, label
    loaded = load_curve(curve)
    return loaded, (str(curve) if loaded.flat_rate is None else f"{loaded.flat_rate:g}")


@names_its_arguments("size_stack")
def size_stack(
    deal: Deal,
    sc: MonteCarloScenario,
    targets: Mapping[str, str] | Sequence[tuple[str, str]],
    *,
    curve: DiscountCurve | str | float | Path | None = None,
    n_paths: int = 20_000,
    seed: int | None = None,
    rating_table: str | Path | RatingTable | None = None,
    tol: float = 1e-4,
    sampling: str = "importance",
    rounds: int = 1,
    client: Any = None,
    progress: bool | None = None,
) -> StackSizing:
    """Size every tranche of ``targets`` to its rating, top-down, the most junior tranche
    absorbing the rest of the capital; then (with ``curve``) solve each sized tranche's par
    coupon on the final balances, most senior first, and evaluate the finished structure.

    ``targets``: tranche → rating (``{"A": "AAA", "B": "A"}``) or (tranche, rating) pairs,
    most senior first; the most junior tranche takes none, tranches without a target keep
    their balance. Each size is :func:`~abs_engine.solvers.size_tranche` with the same
    ``n_paths``, ``seed``, ``rating_table``, ``tol`` and ``sampling``, on the structure left
    by the sizes above it. ``curve``: a :class:`DiscountCurve`, a flat rate or a curve CSV
    (see :func:`~abs_engine.solvers.load_curve`); the coupons are priced with crude Monte
    Carlo (a price is an expectation, not a tail). The final evaluation runs ``n_paths``
    paths; with importance sampling, one run per target, its shifts aimed at that tranche.
    ``rounds``: size-and-price passes, 1 to :data:`MAX_ROUNDS` (default 1); each pass after
    the first starts from the last one's structure, so the sizes see the par coupons and the
    juniors' sizes, and the passes stop early once one moves no balance by more than ``tol``
    of the capital and no coupon by more than a hundredth of a basis point.
    ``client``: a Dask client or runner for every evaluation; ``progress``: the bars of the
    searches (default: when one takes over a second). Returns a :class:`StackSizing`.

    Raises :class:`SolverError` for an unknown tranche or rating, a target for the most
    junior tranche, a tranche named twice, targets out of seniority order, or a tranche
    that misses its target even at the smallest size."""
    if not isinstance(deal, Deal):
        raise SolverArgumentTypeError(
            f"size_stack: deal must be a Deal (load_deal), got {short_repr(deal)}"
        )
    check_monte_carlo(sc, "size_stack")
    _check_sampling_method(sampling, "size_stack")
    n_paths = _n_paths(n_paths)
    tol = _tol(tol, "size_stack")
    rounds = check_int(rounds, "size_stack", "rounds", 1, MAX_ROUNDS)
    progress = check_optional_bool(progress, "size_stack", "progress")
    table = rating_table_arg(rating_table, "size_stack")
    plan = check_targets(deal, _target_pairs(targets), table)
    the_curve, curve_label = _curve(curve)
    seed = sc.seed if seed is None else check_int(seed, "size_stack", "seed", 0, MAX_SEED)
    runner = _runner(client, "size_stack")  # checked before the first search
    cd = compile_deal(deal)
    junior = deal.tranches[-1].name
    total = float(sum(t.balance for t in deal.tranches))

    search = _Search(sc, n_paths, seed, table, tol, client, progress, sampling)
    passes = 0
    while True:
        start = cd
        cd, sized = _sized(start, plan, search, junior)
        cd, par, par_se = _priced(cd, plan, search, the_curve)
        passes += 1
        if passes == rounds or (passes > 1 and _settled(start, cd, tol * total)):
            break

    rows = _final_rows(cd, sc, plan, n_paths, seed, table, runner, sampling, progress)
    tranches = _tranche_rows(deal, cd, plan, sized, par, rows, table, total, par_se)
    notes = _notes(tranches)
    return StackSizing(
        deal=cd.deal,
        tranches=tranches,
        total_capital=total,
        targets=[(name, rating) for _, name, rating in plan],
        basis=table.basis,
        rating_table={"source": table.source, "illustrative": table.illustrative},
        curve=curve_label,
        n_paths=n_paths,
        seed=seed,
        sampling=sampling,
        rounds=passes,
        notes=notes,
    )


@dataclass(frozen=True)
class _Search:
    """What every search of a stack shares."""

    sc: MonteCarloScenario
    n_paths: int
    seed: int
    table: RatingTable
    tol: float
    client: Any
    progress: bool | None
    sampling: str


def _sized(
    cd: CompiledDeal, plan: list[tuple[int, str, str]], search: _Search, junior: str
) -> tuple[CompiledDeal, dict[str, dict[str, Any]]]:
    """Each target sized in turn, most senior first, on the structure the sizes above it
    left (:func:`size_tranche`: between the tranche and the most junior one); the structure
    and each size's answer."""
    sized: dict[str, dict[str, Any]] = {}
    for j, name, rating in plan:
        try:
            out = size_tranche(
                cd.deal, search.sc, name, target_rating=rating, n_paths=search.n_paths,
                seed=search.seed, rating_table=search.table, tol=search.tol,
                client=search.client, progress=search.progress, sampling=search.sampling,
            )  # fmt: skip
        except SolverError as exc:
            where = f" (after sizing {', '.join(sized)})" if sized else ""
            raise SolverError(f"sizing {name} to {rating}{where}: {exc}") from None
        sized[name] = out
        pair = cd.deal.tranches[j].balance + cd.deal.tranches[-1].balance
        cd = with_tranche_terms(
            cd, {name: {"balance": out["balance"]}, junior: {"balance": pair - out["balance"]}}
        )
    return cd, sized


def _priced(
    cd: CompiledDeal,
    plan: list[tuple[int, str, str]],
    search: _Search,
    curve: DiscountCurve | None,
) -> tuple[CompiledDeal, dict[str, float | None], dict[str, dict[str, Any]]]:
    """With a curve, each target's par coupon on the structure as it stands, most senior
    first, each patched in before the next is solved (crude Monte Carlo: a price is an
    expectation, not a tail); the structure, the coupons (None: a tranche without a
    balance, nothing to price) and each coupon's ``se`` and ``ci95`` (as ``price`` gives
    them: the stack's coupons had none)."""
    par: dict[str, float | None] = {}
    par_se: dict[str, dict[str, Any]] = {}
    if curve is None:
        return cd, par, par_se
    for j, name, _ in plan:
        if cd.deal.tranches[j].balance <= 0:
            par[name] = None
            continue
        out = solve_coupon(
            cd.deal, search.sc, name, curve, n_paths=search.n_paths, seed=search.seed,
            client=search.client, progress=search.progress, sampling="crude", with_se=True,
        )  # fmt: skip
        c = float(out["par_coupon"])
        par[name] = c
        par_se[name] = {"se": out["se"], "ci95": out["ci95"]}
        cd = with_tranche_terms(cd, {name: par_coupon_terms(cd.deal.tranches[j], c)})
    return cd, par, par_se


#: a pass whose coupons move by at most this (a hundredth of a basis point) from the last
#: pass's, its balances by at most the sizing tolerance, ends the passes early
_COUPON_SETTLED = 1e-6


def _settled(before: CompiledDeal, after: CompiledDeal, balance_tol: float) -> bool:
    """Whether a pass left every balance within ``balance_tol``, and every fixed coupon and
    every floating coupon's spread within :data:`_COUPON_SETTLED`, of the structure it
    started from (a floater's floor and cap, which no pass solves, exactly)."""
    for t0, t1 in zip(before.deal.tranches, after.deal.tranches, strict=True):
        if abs(t1.balance - t0.balance) > balance_tol:
            return False
        c0, c1 = t0.coupon, t1.coupon
        if isinstance(c0, FixedCoupon) and isinstance(c1, FixedCoupon):
            if abs(c1.rate - c0.rate) > _COUPON_SETTLED:
                return False
        elif isinstance(c0, FloatingCoupon) and isinstance(c1, FloatingCoupon):
            # a spread solved again moves in its last bits: exact equality never settled
            moved = abs(c1.spread - c0.spread) > _COUPON_SETTLED
            if moved or (c0.floor, c0.cap) != (c1.floor, c1.cap):
                return False
        elif c0 != c1:
            return False
    return True


def _final_rows(
    cd: CompiledDeal,
    sc: MonteCarloScenario,
    plan: list[tuple[int, str, str]],
    n_paths: int,
    seed: int,
    table: RatingTable,
    runner: Any,
    sampling: str,
    progress: bool | None,
) -> list[pd.Series]:
    """Each tranche's row of the final evaluation: crude, one run; importance, one run per
    target aimed at it, each target's row from its own run, and a crude run for the others
    (every run submitted before any is collected)."""
    # None: a crude run, for the tranches without a target (importance sampling aimed at a
    # senior's tail would give them large standard errors)
    aims = [name for _, name, _ in plan] + [None] if sampling == "importance" else [None]
    pending = [
        start_simulation_compiled(
            cd, sc, n_paths=n_paths, seed=seed, progress=False, rating_table=table,
            runner=runner, sampling="crude" if aim is None else sampling, sampling_target=aim,
        )
        for aim in aims
    ]  # fmt: skip
    results = []
    with _Evaluations(len(pending), progress, "evaluating the structure") as evaluations:
        for run in pending:
            results.append(run.result().tranches)
            evaluations.count()
    own = {aim: k for k, aim in enumerate(aims)}
    rows = []
    for j, name in enumerate(cd.tranche_names):
        row, crude = results[own.get(name, own[None])].iloc[j], results[own[None]].iloc[j]
        # a target whose importance-sampled estimate is less precise than crude sampling's
        # (the shifts miss what hurts it): the crude row
        if 0 < crude.expected_loss_se < row.expected_loss_se:
            row = crude
        elif name in own:
            row = _with_crude_wal(row, crude, table, float(cd.years[-1]))
        rows.append(row)
    return rows


def _with_crude_wal(
    row: pd.Series, crude: pd.Series, table: RatingTable, longest_years: float
) -> pd.Series:
    """An importance-sampled row with the crude run's WAL (a central figure, biased when
    weighted over a few effective paths), its implied rating read at it (``longest_years``,
    the last payment date's, where no path defines it)."""
    out = row.copy()
    out["wal_years"], out["wal_years_se"] = crude["wal_years"], crude["wal_years_se"]
    el, pd_, wal = (np.array([v]) for v in (row.expected_loss, row.default_probability,
                                            crude["wal_years"]))  # fmt: skip
    (out["implied_rating"],) = implied_ratings(table, el, pd_, wal, longest_years)
    return out


def _tranche_rows(
    original: Deal,
    cd: CompiledDeal,
    plan: list[tuple[int, str, str]],
    sized: dict[str, dict[str, Any]],
    par: dict[str, float | None],
    rows: list[pd.Series],
    table: RatingTable,
    total: float,
    par_se: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    targets = {name: rating for _, name, rating in plan}
    balances = [t.balance for t in cd.deal.tranches]
    classes = tranche_classes(cd.deal.tranches)  # subordination: the classes below j's
    out = []
    for j, t in enumerate(cd.deal.tranches):
        row = rows[j]
        rating = targets.get(t.name)
        role = "sized" if rating else ("residual" if j == len(balances) - 1 else "unchanged")
        coupon = float(t.coupon.rate) if isinstance(t.coupon, FixedCoupon) else None
        item: dict[str, Any] = {
            "tranche": t.name,
            "role": role,
            "target": rating,
            "original_balance": float(original.tranches[j].balance),
            "balance": float(t.balance),
            "share": t.balance / total if total > 0 else float("nan"),
            "subordination": sum(balances[classes[j][1] :]) / total if total > 0 else float("nan"),
            "balance_ci95": sized[t.name]["balance_ci95"] if rating else None,
            "coupon": coupon,
            "par_coupon": par.get(t.name),
            "par_coupon_kind": "spread" if isinstance(t.coupon, FloatingCoupon) else "fixed",
            "par_coupon_se": par_se.get(t.name, {}).get("se"),
            "par_coupon_ci95": par_se.get(t.name, {}).get("ci95"),
            "expected_loss": float(row.expected_loss),
            "expected_loss_se": float(row.expected_loss_se),
            "default_probability": float(row.default_probability),
            "default_probability_se": float(row.default_probability_se),
            "wal_years": float(row.wal_years),
            "implied_rating": row.implied_rating,
        }
        if rating:
            item.update(_target_check(row, rating, table))
            s = sized[t.name]
            item["sizing"] = {
                k: float(s[k]) if isinstance(s[k], float | np.floating) else s[k]
                for k in ("balance", "share_of_capital", "metric", "metric_se", "limit",
                          "wal_years", "implied_rating", "sampling")
            }  # fmt: skip
        else:
            item.update(metric=None, metric_se=None, limit=None, meets_target=None,
                        margin_se=None, sizing=None)  # fmt: skip
        out.append(item)
    return out


def _target_check(row: pd.Series, rating: str, table: RatingTable) -> dict[str, Any]:
    """The final evaluation's metric on the table's basis against the target's threshold at
    the tranche's WAL (0 when it has none, as in the sizing)."""
    if table.basis == "pd":
        metric, se = float(row.default_probability), float(row.default_probability_se)
    else:
        metric, se = float(row.expected_loss), float(row.expected_loss_se)
    wal = float(row.wal_years)
    limit = table.threshold(rating, wal) if np.isfinite(wal) else 0.0
    gap = metric - limit
    # None: no standard error to measure the gap in (no loss path, or every path alike)
    margin = gap / se if se > 0 else (0.0 if gap == 0 else None)
    return {
        "metric": metric,
        "metric_se": se,
        "limit": float(limit),
        "meets_target": bool(metric <= limit),
        "margin_se": margin,
    }


def _notes(tranches: list[dict[str, Any]]) -> list[str]:
    """A line for each target missed at the final evaluation, saying whether by noise."""
    notes = []
    for t in tranches:
        if t["target"] is None or t["meets_target"]:
            continue
        m = t["margin_se"]
        gap = "with a standard error of 0" if m is None else f"by {m:.1f} standard errors"
        if m is not None and m <= NOISE_SE:
            why = "within the Monte Carlo noise: raise the paths to settle it"
        else:
            why = (
                "beyond the noise: the tranches below it or the par coupons changed the "
                "structure after it was sized; more rounds size it in the final structure"
            )
        notes.append(f"{t['tranche']} misses {t['target']} at the final evaluation {gap} ({why})")
    return notes
