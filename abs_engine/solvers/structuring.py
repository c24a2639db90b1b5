"""Structuring solvers on the Monte Carlo, with common random numbers (the same seed and path
count at every evaluation, so objectives are smooth and monotone in their parameter):

* :func:`solve_coupon` — the coupon at which a tranche's expected discounted cash flows equal
  par, on a discount curve plus an optional spread;
* :func:`size_tranche` — the largest balance of a tranche (the most junior tranche absorbing
  the difference) meeting a target rating or expected loss;
* :func:`breakeven` — the value of a scenario parameter at which a tranche-level condition
  first fails;
* :func:`sensitivity` — tranche metrics over a grid of two scenario parameters.

Each shows one progress bar on stderr over its evaluations (grid points for
:func:`sensitivity`), whose Monte Carlo runs show none of their own: ``progress=None`` (the
default) shows it once the search is expected to take over a second, True at once, False
never. The bar changes nothing in the results.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import pandas as pd
from pydantic import ValidationError
from scipy.optimize import brentq

from ..compile.deal import CompiledDeal, compile_deal
from ..compile.model import compile_model
from ..compile.patch import with_tranche_terms
from ..compile.sampling import SAMPLING_METHODS, ImportanceSampling, with_sampling
from ..errors import (
    AbsEngineError,
    ArgumentTypeError,
    DealError,
    InputError,
    ProblemCollector,
    check_bool,
    check_instance,
    check_int,
    check_optional_bool,
    check_real,
    names_its_arguments,
    short_repr,
)
from ..metrics.rating import RatingTable, default_rating_table, rating_table_arg
from ..schema.common import source_context
from ..schema.deal import Deal
from ..schema.files import csv_header, decode_text, note_input, repeated
from ..schema.stochastic import MAX_PATHS, MAX_SEED, MonteCarloScenario
from ..schema.tranche import FloatingCoupon, Tranche
from ..simulation import (
    PendingSimulation,
    Progress,
    Runner,
    SimulationResult,
    start_simulation_compiled,
)

__all__ = [
    "DiscountCurve",
    "PARAMETERS",
    "PARAMETER_RANGES",
    "check_parameter",
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


class SolverArgumentError(SolverError, InputError):
    """A solver's argument out of its range, or naming nothing the deal has (a tranche, a
    parameter): an :class:`InputError` too, named by the function
    (:func:`~abs_engine.errors.names_its_arguments`)."""


class SolverArgumentTypeError(SolverArgumentError, ArgumentTypeError):
    """A solver's argument of the wrong type: an :class:`ArgumentTypeError` (a TypeError)."""


def _as_solver_argument(exc: InputError, message: str | None = None) -> SolverArgumentError:
    """An argument check's error (``check_real``, ``check_int``) as the solvers' kind, a
    wrong type still a TypeError; with ``message`` instead of its own."""
    kind = SolverArgumentTypeError if isinstance(exc, TypeError) else SolverArgumentError
    return kind(str(exc) if message is None else message)


# --- discount curves -------------------------------------------------------------------------


@dataclass(frozen=True)
class DiscountCurve:
    """A flat rate (compounded each period at the priced tranche's accrual fraction, under
    its own day count, like its coupons, so a riskless tranche prices at par exactly at that
    coupon) or annually compounded zero rates by tenor in years (linear in tenor, flat
    beyond the ends)."""

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


#: flat rates and zero rates a curve may hold (decimals), as for base rates in a deal
CURVE_RATE_RANGE = (-0.05, 1.0)


def _curve_rate(value: object, what: str) -> float:
    lo, hi = CURVE_RATE_RANGE
    try:
        return check_real(value, "", what, lo, hi)
    except InputError:  # also a complex number or an int too large for a float
        raise SolverArgumentError(
            f"{what} must be a decimal rate between {lo:g} and {hi:g}, got {short_repr(value)}"
        ) from None


def _flat_curve(spec: object) -> DiscountCurve | None:
    """The flat curve that ``spec`` spells (a number, or ASCII text of one); None for a file
    name. Another type, NaN or a rate out of range raises :class:`SolverError`."""
    if isinstance(spec, bool) or not isinstance(spec, str | int | float | np.number | Path):
        raise SolverArgumentTypeError(
            f"a curve is a flat rate (a number) or the path of a CSV file, got {short_repr(spec)}"
        )
    if isinstance(spec, int | float | np.number):
        return DiscountCurve(flat_rate=_curve_rate(spec, "a flat curve rate"))
    text = str(spec)
    if not isinstance(spec, Path) and text.isascii():  # "١" or "１" is no rate: a file name
        try:
            rate = float(text)
        except ValueError:
            pass
        else:
            return DiscountCurve(flat_rate=_curve_rate(rate, "a flat curve rate"))
    return None


def _curve_bytes(text: str) -> bytes:
    """The bytes of the curve file ``text`` (at most :data:`_MAX_CURVE_BYTES`); a folder, a
    missing, unreadable or larger file raises a ``DealError``."""
    p = Path(text)
    try:
        if p.is_dir():
            raise DealError.one(p, "<file>", "is a folder, not a curve CSV")
        if not p.is_file():
            raise DealError.one(
                p, "<file>", "curve file not found (give a rate such as 0.025 or a CSV)"
            )
        with open(p, "rb") as fh:
            raw = fh.read(_MAX_CURVE_BYTES + 1)
    except DealError:
        raise
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DealError.one(
            short_repr(text, 200), "<file>", f"cannot read the curve: {why}"
        ) from None
    if len(raw) > _MAX_CURVE_BYTES:
        raise DealError.one(p, "<file>", f"a curve CSV is at most {_MAX_CURVE_BYTES:,} bytes")
    return raw


def _curve_frame(p: Path, raw: bytes) -> pd.DataFrame:
    """A curve file's bytes as a frame with (at least) the columns ``tenor_years`` and
    ``zero_rate``, each once; text that is not such a CSV raises a ``DealError``."""
    note_input(p)
    decoded = decode_text(p, raw, "a curve CSV", "the curve")
    if not decoded.strip():
        raise DealError.one(p, "<file>", "the curve file is empty (need tenor_years,zero_rate)")
    # no comment lines: "#" would cut a cell short (Excel's #N/A dropped its row, and
    # 0.025#x read as 0.025)
    names = csv_header(decoded)
    if repeated(names):  # as written: pandas renames a repeat, "tenor_years " apart too
        raise DealError.one(p, "<columns>", "a column is named twice", names)
    try:
        df = pd.read_csv(io.StringIO(decoded), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DealError.one(p, "<syntax>", f"cannot read the curve CSV: {msg}") from None
    df.columns = [str(c).strip() for c in df.columns]
    if not {"tenor_years", "zero_rate"} <= set(df.columns):
        raise DealError.one(
            p, "<columns>", "need columns tenor_years and zero_rate", list(df.columns)
        )
    return df


def _curve_points(p: Path, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Tenors (years) and zero rates (decimals), float64[K] each, of a curve frame; a
    ``DealError`` lists every row whose tenor or rate is refused, or an empty curve."""
    pc = ProblemCollector(p)
    tenors = pd.to_numeric(df["tenor_years"], errors="coerce").to_numpy(dtype=float)
    rates = pd.to_numeric(df["zero_rate"], errors="coerce").to_numpy(dtype=float)
    lo, hi = CURVE_RATE_RANGE
    for k, (t, r) in enumerate(zip(tenors, rates, strict=True)):
        if not np.isfinite(t) or t <= 0 or t > 100:
            pc.add(
                f"row {k + 1}.tenor_years",
                "tenor must be a positive number of years, at most 100",
                df["tenor_years"][k],
            )
        elif k and np.isfinite(tenors[k - 1]) and t <= tenors[k - 1]:
            pc.add(
                f"row {k + 1}.tenor_years",
                "tenors must increase (no tenor twice)",
                df["tenor_years"][k],
            )
        if not np.isfinite(r) or not lo <= r <= hi:
            pc.add(
                f"row {k + 1}.zero_rate",
                f"zero rate must be a decimal between {lo:g} and {hi:g}",
                df["zero_rate"][k],
            )
    if len(df) == 0:
        pc.add("<rows>", "the curve has no rows (only a header)")
    pc.raise_if_any()
    return tenors, rates


@names_its_arguments("load_curve")
def load_curve(spec: str | float | Path) -> DiscountCurve:
    """A curve from a number (flat rate, decimal, between -0.05 and 1) or a CSV file with
    columns ``tenor_years, zero_rate`` (decimals). Tenors must be positive and increasing.
    Anything else (another type, NaN, a rate out of range, a file that cannot be read as such
    a CSV) raises an :class:`~abs_engine.errors.AbsEngineError`."""
    flat = _flat_curve(spec)
    if flat is not None:
        return flat
    text = str(spec)
    p = Path(text)
    df = _curve_frame(p, _curve_bytes(text))
    tenors, rates = _curve_points(p, df)
    return DiscountCurve(tenors=tenors, zero_rates=rates, source=str(p))


#: the largest curve CSV read (a curve has a few dozen rows)
_MAX_CURVE_BYTES = 1_000_000


# --- scenario parameters -----------------------------------------------------------------------


def _set(doc: dict[str, Any], path: Sequence[str], value: Any) -> None:
    for k in path[:-1]:
        doc = doc.setdefault(k, {})
    doc[path[-1]] = value


def _recovery(doc: dict[str, Any], value: float) -> None:
    # a fixed recovery rate of the defaulted exposure, replacing any IP-value model; the
    # disposal lag is kept (the shortest one of an IP-value model), and a scenario without
    # a recovery model of its own keeps each obligor's lag from the deal (a lag of 4 was
    # forced on it: a deal recovering at once lost everything in every cell)
    rec = doc.get("recovery")
    new: dict[str, Any] = {"kind": "rate", "rate": value}
    if rec and rec.get("lag_periods") is not None:
        new["lag_periods"] = rec["lag_periods"]
    doc["recovery"] = new


def _ip_haircut(doc: dict[str, Any], value: float) -> None:
    rec = doc.get("recovery")
    if not rec or rec.get("kind") != "ip_value":
        raise SolverArgumentError("ip_haircut needs a scenario with recovery kind = 'ip_value'")
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


#: the values each parameter may take: (low, high, high included), as the scenario schema
#: allows them
PARAMETER_RANGES: dict[str, tuple[float, float, bool]] = {
    "pd_multiplier": (0.0, 50.0, True),
    "correlation": (0.0, 1.0, False),
    "cpr": (0.0, 1.0, True),
    "recovery": (0.0, 1.0, True),
    "ip_haircut": (0.0, 1.0, True),
    "provider_pd_multiplier": (0.0, 50.0, True),
}


def describe_range(name: str) -> str:
    """``[0, 1)``-style text of a parameter's allowed values."""
    lo, hi, closed = PARAMETER_RANGES[name]
    return f"[{lo:g}, {hi:g}{']' if closed else ')'}"


def check_parameter(name: Any, value: Any) -> float:
    """``value`` as a float if ``name`` is a known parameter and ``value`` a finite number in
    its range (:data:`PARAMETER_RANGES`); otherwise a :class:`SolverError` naming both."""
    if not isinstance(name, str) or name not in PARAMETERS:
        raise SolverArgumentError(
            f"unknown parameter {short_repr(name)}; choose from {sorted(PARAMETERS)}"
        )
    v = _finite(value, f"parameter {name}")
    lo, hi, closed = PARAMETER_RANGES[name]
    if not (lo <= v <= hi if closed else lo <= v < hi):
        raise SolverArgumentError(
            f"{name} must be in {describe_range(name)}, got {short_repr(value)}"
        )
    return v


def _finite(value: Any, what: str) -> float:
    """A real, finite number (not a bool) as float (:func:`~abs_engine.errors.check_real`), or
    a :class:`SolverError`."""
    try:
        return check_real(value, "", what)
    except ArgumentTypeError as exc:
        raise _as_solver_argument(
            exc, f"{what} must be a number, got {short_repr(value)}"
        ) from None
    except InputError as exc:  # NaN, infinite, an int too large for a float
        raise _as_solver_argument(exc) from None


def _two_values(obj: Any) -> list[Any] | None:
    """``obj``'s two items (:func:`_values` of two), or None."""
    items = _values(obj)
    return items if items is not None and len(items) == 2 else None


def _values(obj: Any) -> list[Any] | None:
    """A grid axis's values as a list (any iterable but a string: a list, range, array or
    Series), or None."""
    if isinstance(obj, str | bytes):
        return None
    try:
        return list(obj)
    except TypeError:
        return None


def _tol(tol: Any, func: str, hi: float = 0.5) -> float:
    """A bisection's relative tolerance: a finite number in [1e-12, ``hi``] (0 or a negative
    width never ends, NaN never starts, 1e-300 takes a thousand halvings), else a
    :class:`SolverError`."""
    try:
        return check_real(tol, func, "tol", 1e-12, hi)
    except InputError as exc:
        raise _as_solver_argument(exc) from None


def _n_paths(n_paths: Any) -> int:
    msg = f"n_paths must be an integer from 1 to {MAX_PATHS:,}, got {short_repr(n_paths)}"
    if isinstance(n_paths, bool) or not isinstance(n_paths, int | np.integer):
        raise SolverArgumentTypeError(msg)
    if not 1 <= n_paths <= MAX_PATHS:
        raise SolverArgumentError(msg)
    return int(n_paths)


def check_monte_carlo(sc: Any, func: str) -> None:
    """A :class:`SolverError` unless ``sc`` is a Monte Carlo scenario (every search runs one)."""
    if not isinstance(sc, MonteCarloScenario):
        raise SolverArgumentTypeError(
            f"{func}: sc must be a Monte Carlo scenario (load_scenario of a kind = "
            f"'monte_carlo' file), got {short_repr(sc)} ({type(sc).__name__})"
        )


def with_parameter(sc: MonteCarloScenario, name: str, value: float) -> MonteCarloScenario:
    """A copy of the scenario with one parameter set (see :data:`PARAMETERS`; values in
    :data:`PARAMETER_RANGES`)."""
    check_monte_carlo(sc, "with_parameter")
    v = check_parameter(name, value)
    doc = sc.model_dump(mode="json")
    PARAMETERS[name](doc, v)
    try:
        out = MonteCarloScenario.model_validate(doc, context=source_context(sc.source))
    except ValidationError as exc:  # a combination the schema refuses
        first = exc.errors()[0]
        raise SolverArgumentError(
            f"{name} = {v:g} gives an invalid scenario: {first.get('msg', exc)}"
        ) from None
    return out


# --- helpers -------------------------------------------------------------------------------------


def _seed(seed: Any, sc: MonteCarloScenario) -> int:
    """A solver's seed: the scenario's, or ``seed`` checked (a whole number 0 .. 2**63-1)."""
    if seed is None:
        return int(sc.seed)
    try:
        return check_int(seed, "", "seed", 0, MAX_SEED)
    except InputError as exc:
        raise _as_solver_argument(exc) from None


#: where ``breakeven`` and ``sensitivity`` get the compiled deal they take (``size_tranche``
#: and ``solve_coupon`` take a ``Deal``: one given here failed on a missing attribute)
_COMPILE_HINT = " (ae.compile_deal(deal))"


def _tranche_index(cd: CompiledDeal, tranche: str) -> int:
    if not isinstance(tranche, str) or tranche not in cd.tranche_names:
        kind = SolverArgumentError if isinstance(tranche, str) else SolverArgumentTypeError
        raise kind(f"unknown tranche {short_repr(tranche)}; tranches are {list(cd.tranche_names)}")
    return cd.tranche_names.index(tranche)


def _start(
    cd: CompiledDeal,
    sc: MonteCarloScenario,
    n_paths: int,
    seed: int,
    table: RatingTable,
    runner: Runner | None = None,
    sampling: str | ImportanceSampling = "crude",
) -> PendingSimulation:
    return start_simulation_compiled(
        cd, sc, n_paths=n_paths, seed=seed, progress=False, rating_table=table, runner=runner,
        sampling=sampling,
    )  # fmt: skip


def _check_sampling_method(sampling: Any, func: str) -> str:
    """``sampling`` if it names a sampling method ("crude", "importance"), else a
    :class:`SolverError` that says which ``func`` was given what."""
    if not isinstance(sampling, str) or sampling not in SAMPLING_METHODS:
        kind = SolverArgumentError if isinstance(sampling, str) else SolverArgumentTypeError
        raise kind(
            f"{func}: sampling must be one of {list(SAMPLING_METHODS)}, got {short_repr(sampling)}"
        )
    return sampling


def _search_sampling(
    sampling: Any,
    cd: CompiledDeal,
    sc: MonteCarloScenario,
    seed: int,
    tranche: str,
    func: str,
    n_paths: int,
) -> str | ImportanceSampling:
    """A search's sampling: "crude", or importance-sampling shifts chosen once, for
    ``tranche`` on the deal as given, and kept for every evaluation (so the evaluations share
    their random numbers and weights: common random numbers)."""
    if isinstance(sampling, ImportanceSampling):
        model = compile_model(cd, sc)
        try:  # shaped for this deal's factors, providers and obligors: checked before any run
            with_sampling(model, sampling)
        except ValueError as exc:
            raise SolverArgumentError(f"sampling: {exc}") from None
        return sampling
    if _check_sampling_method(sampling, func) == "crude":
        return "crude"
    from ..importance import pilot_paths, tuned_sampling

    return tuned_sampling(cd, compile_model(cd, sc), seed, tranche,
                          pilot_paths=pilot_paths(n_paths))  # fmt: skip


def _run(*args: Any, **kwargs: Any) -> SimulationResult:
    """:func:`_start`'s run, collected."""
    return _start(*args, **kwargs).result()


def _metric_and_limit(
    row: pd.Series, wal: float, target_el: float | None, rating: str | None, table: RatingTable
) -> tuple[float, float, float]:
    """A sizing evaluation's metric, its SE and its limit: the expected loss against
    ``target_el``, or the table's basis (EL or PD) against ``rating``'s threshold at ``wal``
    years (0 without a WAL)."""
    if target_el is not None:
        return row.expected_loss, row.expected_loss_se, target_el
    assert rating is not None
    limit = table.threshold(rating, wal) if np.isfinite(wal) else 0.0
    if table.basis == "pd":
        return row.default_probability, row.default_probability_se, limit
    return row.expected_loss, row.expected_loss_se, limit


#: crude paths behind the WAL a rating's threshold is read at, under importance sampling
WAL_CRUDE_PATHS = 4_096


def _crude_wal(
    cd: CompiledDeal,
    sc: MonteCarloScenario,
    n_paths: int,
    seed: int,
    table: RatingTable,
    runner: Any,
    j: int,
) -> float:
    """Tranche j's WAL (years) from a crude run of at most :data:`WAL_CRUDE_PATHS` paths
    (common random numbers): the rating threshold's horizon. An importance-sampled WAL is a
    weighted mean over a few effective paths, biased past its standard error (a validator's
    senior read 0.587-0.647 years for a true 0.516, and was sized 11 standard errors over
    its AAA limit); a WAL varies little from path to path, so a few thousand crude paths
    pin it down."""
    res = _run(cd, sc, min(n_paths, WAL_CRUDE_PATHS), seed, table, runner, "crude")
    return float(res.tranches.iloc[j].wal_years)


class _Evaluations:
    """One progress bar (:class:`~abs_engine.simulation.Progress`) over a search's Monte
    Carlo evaluations, whose runs show no bar of their own: ``expected`` evaluations, the
    total raised when the search needs more, shown complete when it ends sooner. A context
    manager: the bar stops on leaving, also on an error."""

    def __init__(self, expected: int, progress: bool | None, what: str) -> None:
        self.bar = Progress(max(1, expected), progress, what, "evaluations")
        self.done = 0

    def count(self) -> None:
        """One more evaluation done."""
        self.done += 1
        self.bar.grow(self.done)
        self.bar.update(self.done)

    def __enter__(self) -> _Evaluations:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.finish()


def _halvings(width: float, tol: float) -> int:
    """Bisection steps from an interval of ``width`` until it is at most ``tol``."""
    return max(0, math.ceil(math.log2(width / tol))) if width > tol > 0 else 0


#: Brent steps a coupon search is expected to take (7 to 10 on the bundled deal's tranches)
_BRENT_STEPS = 8


def _runner(client: Any, func: str) -> Runner | None:
    """``client=`` of a solver: None (this process), a ``distributed.Client`` or a
    :class:`abs_engine.distributed.DaskRunner`; each evaluation's paths then run on the
    cluster, with the same answer as without it."""
    if client is None:
        return None
    from ..distributed import runner_for

    return runner_for(client, func)


# --- solvers -------------------------------------------------------------------------------------


def par_coupon_terms(tr: Tranche, c: float) -> dict[str, Any]:
    """The terms a price search gives tranche ``tr`` at ``c`` (for
    :func:`~abs_engine.compile.patch.with_tranche_terms`): a fixed coupon of c; for a
    floating coupon, the spread c over its base rate, its floor and cap kept (a floater is
    priced by its margin, and stays a floater)."""
    if isinstance(tr.coupon, FloatingCoupon):
        return {"coupon": {**tr.coupon.model_dump(exclude_none=True), "spread": c}}
    return {"coupon": {"kind": "fixed", "rate": c}}


def expected_pv(
    res: SimulationResult, tranche: str, curve: DiscountCurve, spread: float = 0.0
) -> float:
    """Expected PV of the tranche's cash flows (interest, principal, residual) on the curve
    (a flat rate compounded at the tranche's own accruals, as its coupons are)."""
    cd = res.deal
    cf = res.cashflows
    cash = (
        cf[f"{tranche}.interest_paid"]
        + cf[f"{tranche}.principal_paid"]
        + cf[f"{tranche}.residual_paid"]
    ).to_numpy()
    accrual = cd.structure.tranche_accrual[cd.tranche_index(tranche)]
    return float((cash * curve.discount_factors(cd.years, accrual, spread)).sum())


#: independent replications behind the par coupon's standard error (solve_coupon(with_se=True))
_SE_BATCHES = 20
#: a tag mixed with the search's seed to draw the replications' seeds
_SE_SEED_TAG = 0x5E5E


def _batch_plan(n_paths: int, seed: int) -> list[tuple[int, int]]:
    """(paths, seed) of the independent replications of a ``n_paths`` evaluation: up to
    :data:`_SE_BATCHES` of them, whose paths add up to ``n_paths`` (so they cost about one
    more evaluation), on seeds drawn from a generator seeded by (``seed``, a tag): independent
    of the search's random numbers and of each other, and the same on every call."""
    k = min(_SE_BATCHES, n_paths)
    sizes = [n_paths // k + (1 if b < n_paths % k else 0) for b in range(k)]
    rng = np.random.default_rng([seed, _SE_SEED_TAG])
    seeds = rng.integers(0, MAX_SEED, size=k, endpoint=True)
    return [(m, int(s)) for m, s in zip(sizes, seeds, strict=True)]


def _replicated_se(values: Sequence[float], sizes: Sequence[int]) -> float:
    """Standard error of an estimate over ``sum(sizes)`` paths, from the estimates of
    independent replications over ``sizes`` paths each (batch means: the per-path variance is
    Σ m_k (x_k − x̄)² / (K − 1), x̄ the path-weighted mean)."""
    x, m = np.asarray(values, dtype=float), np.asarray(sizes, dtype=float)
    mean = float((m * x).sum() / m.sum())
    var = float((m * (x - mean) ** 2).sum() / (len(x) - 1))
    return math.sqrt(var / m.sum())


def _secant_slope(points: Sequence[tuple[float, float]], answer: float, window: float) -> float:
    """Slope of y in x between the evaluations ``points`` (x, y) on either side of ``answer``
    farthest from it within ``window`` (the nearest one on a side with none that close); NaN
    without an evaluation on both sides."""

    def rank(p: tuple[float, float]) -> tuple[bool, float]:
        d = abs(p[0] - answer)  # within the window the farthest first, then the nearest
        return (d > window, d if d > window else -d)

    left = [(x, y) for x, y in points if x <= answer]
    right = [(x, y) for x, y in points if x > answer]
    if not left or not right:
        return float("nan")
    (lx, ly), (rx, ry) = min(left, key=rank), min(right, key=rank)
    return (ry - ly) / (rx - lx) if rx > lx else float("nan")


def _t95(dof: int) -> float:
    """The two-sided 95% quantile of Student's t with ``dof`` degrees of freedom."""
    from scipy.special import stdtrit  # scipy.stats would take a second to import

    return float(stdtrit(dof, 0.975))


#: evaluations on either side of the par coupon within this distance (10 bp) give the slope of
#: PV in the coupon (PV is close to linear in the coupon: any pair on common random numbers)
_COUPON_SLOPE_WINDOW = 1e-3


def _coupon_se(
    cd: CompiledDeal,
    sc: MonteCarloScenario,
    tranche: str,
    curve: DiscountCurve,
    spread: float,
    coupon: float,
    history: Sequence[tuple[float, float]],
    *,
    n_paths: int,
    seed: int,
    table: RatingTable,
    runner: Runner | None,
    sampling: str | ImportanceSampling,
    loss_se: float = 0.0,
) -> dict[str, Any]:
    """The par coupon's standard error and 95% interval: SE(PV at the coupon) / |dPV/dc|.
    SE(PV) from batch replications at the coupon (:func:`_batch_plan`), and at least
    ``loss_se`` (yuan: the search's own run's standard error of the tranche's PV loss): a
    rare loss that the search's paths hold and the replications' do not left an SE of 4e-11
    on a coupon 0.9 bp off; the slope from the search's own evaluations (``history``:
    coupon, PV minus par) on common random numbers."""
    plan = _batch_plan(n_paths, seed)
    out: dict[str, Any] = {"par_coupon": coupon, "se": None, "ci95": None,
                           "method": "batch_replications", "batches": len(plan)}  # fmt: skip
    slope = _secant_slope(history, coupon, _COUPON_SLOPE_WINDOW)
    if len(plan) < 2 or not (math.isfinite(slope) and slope != 0.0):
        return out  # one path, or a PV that does not move with the coupon
    pending = [_start(cd, sc, m, s, table, runner, sampling) for m, s in plan]
    pvs = [expected_pv(p.result(), tranche, curve, spread) for p in pending]
    batch = _replicated_se(pvs, [m for m, _ in plan])
    if loss_se > batch:
        out["method"] = "search_loss_se"  # the search's own run: above the batches'
    se = max(batch, loss_se) / abs(slope)
    half = _t95(len(plan) - 1) * se
    return {**out, "se": se, "ci95": [coupon - half, coupon + half]}


@overload
def solve_coupon(
    deal: Deal,
    sc: MonteCarloScenario,
    tranche: str,
    curve: DiscountCurve,
    *,
    spread_bps: float = ...,
    n_paths: int = ...,
    seed: int | None = ...,
    bounds: tuple[float, float] | None = ...,
    client: Any = ...,
    progress: bool | None = ...,
    sampling: str | ImportanceSampling = ...,
    with_se: Literal[False] = ...,
) -> float: ...


@overload
def solve_coupon(
    deal: Deal,
    sc: MonteCarloScenario,
    tranche: str,
    curve: DiscountCurve,
    *,
    spread_bps: float = ...,
    n_paths: int = ...,
    seed: int | None = ...,
    bounds: tuple[float, float] | None = ...,
    client: Any = ...,
    progress: bool | None = ...,
    sampling: str | ImportanceSampling = ...,
    with_se: Literal[True],
) -> dict[str, Any]: ...


@names_its_arguments("solve_coupon")
def solve_coupon(
    deal: Deal,
    sc: MonteCarloScenario,
    tranche: str,
    curve: DiscountCurve,
    *,
    spread_bps: float = 0.0,
    n_paths: int = 20_000,
    seed: int | None = None,
    bounds: tuple[float, float] | None = None,
    client: Any = None,
    progress: bool | None = None,
    sampling: str | ImportanceSampling = "crude",
    with_se: bool = False,
) -> float | dict[str, Any]:
    """Fixed coupon (decimal) at which E[PV of the tranche's cash flows] on ``curve`` + spread
    equals its balance; for a floating tranche, the spread over its base rate (its floor and
    cap kept: :func:`par_coupon_terms`). ``bounds``: the search's (lo, hi), by default
    (0, 0.5) for a coupon and (-0.05, 0.5) for a spread (a base rate above the curve wants a
    negative one). Brent's method on common random numbers. ``progress``: a bar over the
    evaluations on stderr (default: when the search takes over a second; never with False).
    ``sampling``: "crude" or "importance" (shifts chosen once for the tranche).

    ``with_se=True`` returns a dict instead of the float: ``par_coupon`` (the same number),
    its standard error ``se``, ``ci95`` (coupon ± t(0.975, K − 1)·se), ``method``
    ("batch_replications" or "search_loss_se") and ``batches`` (K). The coupon c* solves
    gap(c) = PV(c) − par = 0, so to first order SE(c*) = SE(PV(c*)) / |dPV/dc|:

    * SE(PV(c*)): the PV of expected cash flows is the mean of each path's PV, whose spread
      the cash-flow frame's per-period standard errors do not give (the periods of a path are
      correlated). It is measured by batch replication: the evaluation at c* re-run in K = 20
      independent batches (paths adding up to ``n_paths``, so about one more evaluation; seeds
      drawn from ``seed``, apart from the search's random numbers), SE = the spread of the
      batch PVs scaled to ``n_paths``. Unlike per-path PVs it works under importance sampling
      and on a cluster too, and it leaves the search (and so the coupon) as it is. It is at
      least the search's own run's standard error of the tranche's PV loss (``method``
      "search_loss_se" then): batches that miss a rare loss the search's paths hold gave an
      SE of 4e-11 on a coupon 0.9 bp off. A search whose paths hold no loss at all still
      has an SE of about 0 (nothing in it measures the loss it missed).
    * dPV/dc: the secant between the search's own evaluations on either side of c* (the
      farthest within 10 bp), on common random numbers, so the noise cancels; it costs
      nothing, and unlike the analytic PV of (balance × accrual) it includes the interest
      shortfalls and the principal a higher coupon displaces.

    ``se`` and ``ci95`` are None for a one-path search or a PV that does not move with the
    coupon. ``search_loss_se`` (yuan) is the search's own run's standard error of the
    tranche's PV loss at the coupon: 0 where none of its paths lost."""
    if not isinstance(curve, DiscountCurve):
        raise SolverArgumentTypeError(
            f"curve must be a DiscountCurve (see load_curve), got {short_repr(curve)}"
        )
    spread = _finite(spread_bps, "spread_bps")
    if abs(spread) > 10_000:
        raise SolverArgumentError(
            f"spread_bps must be between -10,000 and 10,000, got {spread_bps!r}"
        )
    n_paths = _n_paths(n_paths)
    with_se = check_bool(with_se, "solve_coupon", "with_se")
    cd0 = compile_deal(deal)
    j = _tranche_index(cd0, tranche)
    floating = deal.tranches[j].coupon.kind == "floating"
    floor = -0.05 if floating else 0  # a floater's spread may be negative (as a deal's may)
    pair = _two_values((floor, 0.5) if bounds is None else bounds)
    if pair is None:
        raise SolverArgumentTypeError(
            f"bounds must be (lo, hi), two coupon rates, got {short_repr(bounds)}"
        )
    lo, hi = (_finite(b, "bounds") for b in pair)
    if not floor <= lo < hi <= 1:
        raise SolverArgumentError(
            f"bounds must satisfy {floor} <= lo < hi <= 1, got {bounds!r}"
            + (" (a spread over the base rate: the tranche floats)" if floating else "")
        )
    bal = deal.tranches[j].balance
    if bal <= 0:
        raise SolverArgumentError(f"tranche {tranche!r} has no balance to price")
    if deal.tranches[j].principal == "residual":
        raise SolverArgumentError(
            f"tranche {tranche!r} is the residual (principal = 'residual'): it takes what is "
            "left, so no coupon prices it at par; price a note tranche"
        )
    with np.errstate(all="ignore"):  # a rate at or below -100% gives NaN here: refused
        df = curve.discount_factors(cd0.years, cd0.structure.tranche_accrual[j], spread / 1e4)
    if not (np.isfinite(df).all() and (df > 0).all()):
        raise SolverArgumentError(
            f"the curve {curve.source} with a spread of {spread:g} bp discounts at a rate at or "
            "below -100% (discount factors not positive and finite): narrow the spread"
        )
    progress = check_optional_bool(progress, "solve_coupon", "progress")
    check_monte_carlo(sc, "solve_coupon")
    seed = _seed(seed, sc)
    runner = _runner(client, "solve_coupon")
    table = default_rating_table()
    sampling = _search_sampling(sampling, cd0, sc, seed, tranche, "solve_coupon", n_paths)
    # the two ends here, brentq's own two, then its steps (and the replications, as one)
    evaluations = _Evaluations(4 + _BRENT_STEPS + with_se, progress, f"pricing {tranche}")
    history: list[tuple[float, float]] = []  # (coupon, PV minus par)
    loss_se: dict[float, float] = {}  # coupon: the tranche's expected-loss SE in that run

    def coupon_deal(c: float) -> CompiledDeal:
        return with_tranche_terms(cd0, {tranche: par_coupon_terms(deal.tranches[j], c)})

    def gap(c: float) -> float:
        res = _run(coupon_deal(c), sc, n_paths, seed, table, runner, sampling)
        evaluations.count()
        g = expected_pv(res, tranche, curve, spread / 1e4) - bal
        history.append((c, g))
        loss_se[c] = float(res.tranches.iloc[j].expected_loss_se)
        return g

    with evaluations:
        g_lo, g_hi = gap(lo), gap(hi)
        if g_lo * g_hi > 0:
            raise SolverError(
                f"no {'spread over the base rate' if floating else 'coupon'} in "
                f"[{lo:.2%}, {hi:.2%}] prices {tranche} at par "
                f"(PV minus par {g_lo:,.0f} and {g_hi:,.0f} at the ends)"
            )
        coupon = float(brentq(gap, lo, hi, xtol=1e-9, rtol=1e-12))
        if not with_se:
            return coupon
        nearest = min(loss_se, key=lambda c: abs(c - coupon))
        out = _coupon_se(coupon_deal(coupon), sc, tranche, curve, spread / 1e4, coupon, history,
                         n_paths=n_paths, seed=seed, table=table, runner=runner,
                         sampling=sampling, loss_se=loss_se[nearest] * bal)  # fmt: skip
        evaluations.count()
        return {**out, "search_loss_se": loss_se[nearest] * bal}


def _check_resizable(deal: Deal, indices: Sequence[int]) -> None:
    """Sizing moves balance between the sized tranche and the most junior one: a tranche with
    a scheduled paydown (``principal = 'target_balance'``) cannot change balance alone."""
    for k in indices:
        t = deal.tranches[k]
        if t.principal == "target_balance":
            raise SolverArgumentError(
                f"cannot size with tranche {t.name!r}: its principal is 'target_balance', and "
                "a new balance would not match its target_balances schedule"
            )


@names_its_arguments("size_tranche")
def size_tranche(
    deal: Deal,
    sc: MonteCarloScenario,
    tranche: str,
    *,
    target_rating: str | None = None,
    target_el: float | None = None,
    n_paths: int = 20_000,
    seed: int | None = None,
    rating_table: str | Path | RatingTable | None = None,
    tol: float = 1e-4,
    client: Any = None,
    progress: bool | None = None,
    sampling: str | ImportanceSampling = "importance",
) -> dict[str, Any]:
    """Largest balance of ``tranche`` (as a share of its balance plus the most junior
    tranche's, which absorbs the difference) whose expected loss meets ``target_el``, or whose
    metric on the rating table's basis (expected loss, or default probability for a PD table)
    meets the ``target_rating``'s threshold at the tranche's WAL. Bisection on common random
    numbers; the answer is always a balance that was evaluated and passed. ``rating_table``:
    a CSV path or a loaded :class:`RatingTable`, for the target and the ``implied_rating``
    (default: the shipped illustrative table). ``progress``: a bar over the evaluations on
    stderr (default: when the search takes over a second; never with False). ``sampling``:
    "importance" (default) or "crude" (importance: shifts chosen for the tranche as issued,
    then re-tuned for each balance tried by a short pilot started from the last shifts).
    The answer carries
    ``balance_ci95``: the balance ± 1.96 standard errors of its metric over the slope of
    (metric − limit) in the balance, measured between the evaluations around the answer."""
    if (target_rating is None) == (target_el is None):
        raise SolverArgumentError("give exactly one of target_rating or target_el")
    if target_el is not None:
        target_el = _finite(target_el, "target_el")
        if not 0 <= target_el < 1:
            raise SolverArgumentError(f"target_el must be in [0, 1), got {target_el!r}")
    n_paths = _n_paths(n_paths)
    tol = _tol(tol, "size_tranche")
    table = rating_table_arg(rating_table, "size_tranche")
    if target_rating is not None and target_rating not in table.ratings:
        raise SolverArgumentError(
            f"unknown rating {target_rating!r}; the table has {list(table.ratings)}"
        )
    cd0 = compile_deal(deal)
    j = _tranche_index(cd0, tranche)
    junior = deal.tranches[-1].name
    if junior == tranche:
        raise SolverArgumentError(
            "the most junior tranche absorbs the change; size a more senior one"
        )
    _check_resizable(deal, (j, len(deal.tranches) - 1))
    total = deal.tranches[j].balance + deal.tranches[-1].balance
    if total <= 0.0:  # it said "misses the target even at 0.01% of its capital"
        raise SolverArgumentError(
            f"{tranche} and {junior} have no balance between them: there is no capital to size"
        )
    progress = check_optional_bool(progress, "size_tranche", "progress")
    check_monte_carlo(sc, "size_tranche")
    seed = _seed(seed, sc)
    runner = _runner(client, "size_tranche")
    sampling = _search_sampling(sampling, cd0, sc, seed, tranche, "size_tranche", n_paths)
    # (balance, metric - limit, metric SE, metric) per evaluation
    history: list[tuple[float, float, float, float]] = []
    # the whole capital, the smallest share, then the bisection (fewer when the first passes)
    evaluations = _Evaluations(2 + _halvings(1.0 - tol, tol), progress, f"sizing {tranche}")

    def evaluate(balance: float) -> tuple[bool, dict[str, Any]]:
        nonlocal sampling
        cd = with_tranche_terms(
            cd0, {tranche: {"balance": balance}, junior: {"balance": total - balance}}
        )
        if isinstance(sampling, ImportanceSampling):
            # the shifts follow the tranche's attachment: re-tuned from the last ones
            sampling = _retuned(cd, sc, seed, tranche, sampling, n_paths)
        res = _run(cd, sc, n_paths, seed, table, runner, sampling)
        if isinstance(sampling, ImportanceSampling):
            res = _unless_degenerate(res, tranche, lambda: _run(cd, sc, n_paths, seed, table,
                                                                runner, "crude"))  # fmt: skip
        row = res.tranches.iloc[j]
        wal = row.wal_years
        if target_el is None and res.sampling["method"] == "importance":
            wal = _crude_wal(cd, sc, n_paths, seed, table, runner, j)
        evaluations.count()
        metric, metric_se, limit = _metric_and_limit(row, wal, target_el, target_rating, table)
        info = {
            "balance": balance,
            "expected_loss": row.expected_loss,
            "expected_loss_se": row.expected_loss_se,
            "default_probability": row.default_probability,
            "wal_years": wal,
            "basis": "el" if target_el is not None else table.basis,
            "metric": metric,
            "metric_se": metric_se,
            "limit": limit,
            "implied_rating": row.implied_rating,
            "effective_sample_size": res.sampling["effective_sample_size"],
            "effective_loss_paths": res.sampling["effective_loss_paths"][tranche],
        }
        history.append((balance, float(metric - limit), float(metric_se), float(metric)))
        return bool(metric <= limit), info

    with evaluations:
        ok_hi, info_hi = evaluate(total)
        if ok_hi:
            return {**info_hi, "share_of_capital": 1.0, "balance_ci95": None,
                    "sampling": _sampling_name(sampling)}  # fmt: skip
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
    return {
        **best,
        "share_of_capital": best["balance"] / total,
        "balance_ci95": _balance_ci(history, best["balance"], total),
        "sampling": _sampling_name(sampling),
    }


def _unless_degenerate(
    res: SimulationResult, tranche: str, crude: Callable[[], SimulationResult]
) -> SimulationResult:
    """An importance-sampled result, unless its estimate of ``tranche``'s expected loss rests
    on too few effective paths (the shifts miss the losses that matter, e.g. a thin tranche
    hurt by the waterfall's timing rather than by pool losses) and crude sampling, run on the
    same paths, estimates it more precisely: then the crude result."""
    from ..metrics.sampling import MIN_EFFECTIVE_PATHS

    k = res.sampling.get("effective_loss_paths", {}).get(tranche, float("inf"))
    if k >= MIN_EFFECTIVE_PATHS:
        return res
    alt = crude()
    a, b = (r.tranches.set_index("tranche").loc[tranche] for r in (res, alt))
    better = 0 < b.expected_loss_se < a.expected_loss_se
    return alt if better else res


def _retuned(
    cd: CompiledDeal,
    sc: MonteCarloScenario,
    seed: int,
    tranche: str,
    last: ImportanceSampling,
    n_paths: int,
) -> ImportanceSampling:
    """Importance-sampling shifts for ``tranche`` of ``cd`` (a resized structure): two
    cross-entropy rounds started from ``last``."""
    from ..importance import pilot_paths, tuned_sampling

    return tuned_sampling(cd, compile_model(cd, sc), seed, tranche, rounds=2, start=last,
                          pilot_paths=pilot_paths(n_paths))  # fmt: skip


def _sampling_name(sampling: str | ImportanceSampling) -> str:
    return sampling if isinstance(sampling, str) else "importance"


def _balance_ci(
    history: Sequence[tuple[float, float, float, float]], answer: float, total: float
) -> list[float] | None:
    """The sized balance's 95% interval: answer ± 1.96 · SE(metric at the answer) / slope,
    the metric's slope in the balance at the answer (``history``: balance, metric − limit,
    metric SE, metric per evaluation). The metric (an expected loss or a shortfall
    probability) grows about exponentially with the balance, so the slope is
    k · metric(answer), k the least-squares
    slope of log(metric) over the evaluations within a tenth of the capital of the answer
    (three or more with a positive metric, both sides of it; else the secant of the metric
    between the nearest on either side). A secant between the evaluations farthest from the
    answer within that tenth, 0.4M below an AAA answer and 5.9M above it, was twice the
    slope there and the interval half as wide as it should be (4 of 12 seeds' intervals
    missed a 200,000-path answer). None when the slope is not positive."""
    se = next((s for b, _, s, _ in history if b == answer), float("nan"))
    here = next((m for b, _, _, m in history if b == answer), float("nan"))
    if not np.isfinite(se):
        return None
    near = [(b, m) for b, _, _, m in history if abs(b - answer) <= 0.1 * total]
    pos = [(b, m) for b, m in near if m > 0.0]
    slope = float("nan")
    if len(pos) >= 3 and min(b for b, _ in pos) < answer < max(b for b, _ in pos) and here > 0:
        x = np.array([b for b, _ in pos])
        k = float(np.polyfit(x - answer, np.log([m for _, m in pos]), 1)[0])
        slope = k * here
    else:
        left = [(b, g) for b, g, _, _ in history if b < answer]
        right = [(b, g) for b, g, _, _ in history if b > answer]
        if left and right:
            (lb, lg), (rb, rg) = max(left), min(right)
            slope = (rg - lg) / (rb - lb)
    if not slope > 0:
        return None
    half = 1.96 * se / slope
    return [max(0.0, answer - half), min(total, answer + half)]


Condition = Callable[[pd.Series], bool]


@names_its_arguments("condition")
def condition(kind: str, value: float = 0.0) -> Condition:
    """A tranche-level stop condition, true while the tranche is fine:
    ``first_loss`` (no expected loss), ``el_above`` (expected loss at most ``value``),
    ``irr_below`` (mean yield at least ``value``), ``pd_above`` (default probability at most
    ``value``; ``first_loss`` takes none, 0)."""
    if not isinstance(kind, str):
        raise SolverArgumentTypeError(
            f"condition: kind must be a string (first_loss, el_above, irr_below, pd_above), got "
            f"{short_repr(kind)} ({type(kind).__name__})"
        )
    value = _finite(value, f"the value of condition {short_repr(kind)}")
    if kind == "first_loss" and value != 0.0:
        raise SolverArgumentError(f"first_loss takes no value, got {short_repr(value)}")
    if kind in ("el_above", "pd_above") and not 0 <= value <= 1:
        raise SolverArgumentError(f"{kind} takes a share in [0, 1], got {value!r}")
    if kind == "irr_below" and not -1 <= value <= 1:
        raise SolverArgumentError(f"irr_below takes a yield in [-1, 1], got {value!r}")
    if kind == "first_loss":
        return lambda r: r.expected_loss <= 0.0
    if kind == "el_above":
        return lambda r: r.expected_loss <= value
    if kind == "irr_below":
        return lambda r: r.irr >= value
    if kind == "pd_above":
        return lambda r: r.default_probability <= value
    raise SolverArgumentError(
        f"unknown condition {short_repr(kind)}; use first_loss, el_above, irr_below, pd_above"
    )


#: the tranche metrics a condition from :func:`condition` tests, with a value at which each
#: passes every such condition and one at which it fails every one (:func:`_condition_metric`)
_PROBES = {
    "expected_loss": (0.0, 2.0),
    "default_probability": (0.0, 2.0),
    "irr": (math.inf, -math.inf),
}
#: the slope of a breakeven's metric is taken between evaluations within this many final
#: bisection brackets of the answer (the last three or four steps)
_BREAKEVEN_SLOPE_BRACKETS = 8


def _condition_metric(ok: Condition) -> str | None:
    """The one tranche metric of :data:`_PROBES` that ``ok`` tests (as every condition of
    :func:`condition` does), found by trying it on made-up rows; None for a condition that
    passes no such row, fails on more than one metric, or raises on one (a condition of the
    caller's own that reads other columns)."""
    fine = {m: good for m, (good, _) in _PROBES.items()}
    try:
        if not ok(pd.Series(fine)):
            return None
        failing = [m for m, (_, bad) in _PROBES.items() if not ok(pd.Series({**fine, m: bad}))]
    except Exception:  # a caller's condition on other columns: no single metric to use
        return None
    return failing[0] if len(failing) == 1 else None


def _breakeven_se(
    answer: float,
    a: float,
    b: float,
    metric: str | None,
    history: Sequence[tuple[float, float, float]],
    param: str,
) -> dict[str, Any]:
    """A breakeven's standard error and 95% interval: SE(metric at the answer) / |slope of
    the metric in the parameter|, with the bisection's last bracket [a, b] as a uniform
    error added in quadrature (``history``: parameter, metric, its SE, per evaluation)."""
    out: dict[str, Any] = {"value": answer, "se": None, "ci95": None, "method": "delta"}
    if metric is None:
        return {**out, "method": "none",
                "reason": "the condition tests none of expected_loss, default_probability, irr "
                          "alone"}  # fmt: skip
    ends = [(m, s) for v, m, s in history if v in (a, b)]
    ses = [s for _, s in ends]
    bad = [(m, s) for m, s in ends if not (s > 0 and math.isfinite(s))]
    if bad:
        if any(m == 0.0 for m, _ in bad):
            why = (f"{metric} is zero where the condition holds: it turns on the first path to "
                   "fail, an extreme of the paths, not a mean")  # fmt: skip
        elif all(s == 0.0 for _, s in bad):  # the same on every path (all defaulting, say)
            where = "the bracket's ends" if len(bad) == len(ends) else "an end of the bracket"
            why = (
                f"{metric} came out the same on every path at {where} (a standard error of "
                f"0), so the paths give the answer no error there; the bisection's last "
                f"bracket is {abs(b - a):.3g} wide"
            )
        else:
            why = f"{metric} has no finite standard error at the bracket's ends"
        return {**out, "method": "none", "reason": why}
    window = _BREAKEVEN_SLOPE_BRACKETS * abs(b - a)  # a > b too: searched downwards
    slope = _secant_slope([(v, m) for v, m, _ in history], answer, window)
    if not (math.isfinite(slope) and slope != 0.0):
        return {**out, "method": "none",
                "reason": f"{metric} does not move with {param} near the answer"}  # fmt: skip
    se = math.hypot(float(np.mean(ses)) / abs(slope), abs(b - a) / math.sqrt(12.0))
    lo, hi, _ = PARAMETER_RANGES[param]
    return {**out, "se": se,
            "ci95": [max(lo, answer - 1.96 * se), min(hi, answer + 1.96 * se)]}  # fmt: skip


@overload
def breakeven(
    cd: CompiledDeal,
    sc: MonteCarloScenario,
    tranche: str,
    param: str,
    ok: Condition,
    *,
    lo: float,
    hi: float,
    n_paths: int = ...,
    seed: int | None = ...,
    tol: float = ...,
    client: Any = ...,
    progress: bool | None = ...,
    sampling: str | ImportanceSampling = ...,
    with_se: Literal[False] = ...,
) -> float: ...


@overload
def breakeven(
    cd: CompiledDeal,
    sc: MonteCarloScenario,
    tranche: str,
    param: str,
    ok: Condition,
    *,
    lo: float,
    hi: float,
    n_paths: int = ...,
    seed: int | None = ...,
    tol: float = ...,
    client: Any = ...,
    progress: bool | None = ...,
    sampling: str | ImportanceSampling = ...,
    with_se: Literal[True],
) -> dict[str, Any]: ...


@names_its_arguments("breakeven")
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
    client: Any = None,
    progress: bool | None = None,
    sampling: str | ImportanceSampling = "crude",
    with_se: bool = False,
) -> float | dict[str, Any]:
    """The parameter value between ``lo`` (condition holds) and ``hi`` (it fails) where the
    condition first fails, by bisection on common random numbers (``hi`` may be below ``lo``
    for parameters where larger is better, e.g. recovery). ``progress``: a bar over the
    evaluations on stderr (default: when the search takes over a second; never with
    False).

    ``with_se=True`` returns a dict instead of the float: ``value`` (the same number), its
    standard error ``se``, ``ci95`` (value ± 1.96·se, within the parameter's range) and
    ``method``. The condition compares one metric (expected loss, default probability or
    mean yield, found from the condition) with a limit, so to first order SE(value) =
    SE(metric at the value) / |d metric / d parameter| ("delta"): the metric's SE is the
    run's own (per path, from the evaluations bracketing the answer), the slope the secant
    between the search's evaluations on either side of the answer farthest from it within
    8 final brackets, on common random numbers; the last bracket's width / √12 is added in
    quadrature. No extra evaluation runs. ``se`` and ``ci95`` are None, ``method`` "none"
    and ``reason`` why, for a condition on no single such metric, one that turns on the
    first failing path (a metric exactly zero where it holds: ``first_loss``; an extreme of
    the paths, not a mean) or a metric flat near the answer."""
    j = _tranche_index(check_instance(cd, CompiledDeal, "breakeven", "cd", _COMPILE_HINT), tranche)
    if cd.deal.tranches[j].balance <= 0:
        raise SolverArgumentError(
            f"tranche {tranche!r} has no balance: its expected loss, shortfall probability "
            "and yield are undefined, so no condition on them can hold or fail"
        )
    lo, hi = check_parameter(param, lo), check_parameter(param, hi)
    if lo == hi:
        raise SolverArgumentError(f"lo and hi must differ, got {lo:g} for both")
    if not callable(ok):
        raise SolverArgumentTypeError(
            f"ok must be a condition (see condition()), got {short_repr(ok)}"
        )
    n_paths = _n_paths(n_paths)
    progress = check_optional_bool(progress, "breakeven", "progress")
    with_se = check_bool(with_se, "breakeven", "with_se")
    check_monte_carlo(sc, "breakeven")
    seed = _seed(seed, sc)
    runner = _runner(client, "breakeven")
    table = default_rating_table()
    sampling = _search_sampling(sampling, cd, sc, seed, tranche, "breakeven", n_paths)
    width = _tol(tol, "breakeven") * max(1.0, abs(lo), abs(hi))
    evaluations = _Evaluations(
        2 + _halvings(abs(hi - lo), width), progress, f"breakeven {param} ({tranche})"
    )
    tested = _condition_metric(ok)  # the metric the condition reads, if one (for messages)
    metric = tested if with_se else None
    history: list[tuple[float, float, float]] = []  # (value, metric, its SE)
    at_end: dict[float, float] = {}  # the tested metric at lo and hi

    def holds(v: float) -> bool:
        res = _run(cd, with_parameter(sc, param, v), n_paths, seed, table, runner, sampling)
        evaluations.count()
        row = res.tranches.iloc[j]
        if tested is not None and v in (lo, hi):
            at_end[v] = float(row[tested])
        if metric is not None:
            history.append((v, float(row[metric]), float(row[f"{metric}_se"])))
        return bool(ok(row))

    with evaluations:
        if not holds(lo):
            raise SolverError(f"the condition already fails at {param} = {lo}")
        if holds(hi):
            p_lo, p_hi, closed = PARAMETER_RANGES[param]
            # at an end of its values, or within 0.01 of an open one (correlation < 1)
            at_limit = hi in (p_lo, p_hi) or (not closed and abs(p_hi - hi) <= 0.01)
            lo_at_limit = lo in (p_lo, p_hi)
            raise SolverError(
                f"the condition still holds at {param} = {hi}, the range's hi"
                + (f", the end of the values it may take ({describe_range(param)}): it never "
                   "fails" if at_limit else _no_crossing_hint(tested, at_end, lo, hi, n_paths,
                                                              lo_at_limit))
            )  # fmt: skip
        a, b = lo, hi
        while abs(b - a) > width:
            m = 0.5 * (a + b)
            if holds(m):
                a = m
            else:
                b = m
    value = 0.5 * (a + b)
    return _breakeven_se(value, a, b, metric, history, param) if with_se else value


def _no_crossing_hint(
    tested: str | None,
    at_end: dict[float, float],
    lo: float,
    hi: float,
    n_paths: int,
    lo_at_limit: bool,
) -> str:
    """What a breakeven whose condition holds at both ends of its range should try, from the
    tested metric at the two ends (``at_end``): more paths where it is the same at both (no
    path lost with 2 paths: "widen the range" was no help, a validator); the range the other
    way round where the metric moves away from failing from lo to hi (recovery 0 to 0.9: the
    loss falls; where lo is an end of the parameter's values, nothing lies beyond it: the
    condition never fails); else a wider range."""
    if tested is None or lo not in at_end or hi not in at_end:
        return ": widen the range"
    m_lo, m_hi = at_end[lo], at_end[hi]
    ends = f" ({tested} {m_lo:.6g} at lo, {m_hi:.6g} at hi)"
    good, bad = _PROBES[tested]
    if m_lo == m_hi:
        return (f"{ends}: the same at both ends with {n_paths:,} paths; raise the paths, or "
                "widen the range")  # fmt: skip
    away = (m_hi - m_lo) * (bad - good) < 0  # towards hi the metric moves away from failing
    if away and lo_at_limit:
        return (f"{ends}: it moves away from failing from lo to hi, and lo is the end of the "
                "values it may take: it never fails")  # fmt: skip
    if away:
        return (f"{ends}: it moves away from failing from lo to hi, so the condition would "
                "fail beyond lo, if anywhere: give the range the other way round, from where "
                "it holds to where it fails")  # fmt: skip
    return f"{ends}: widen the range"


@names_its_arguments("sensitivity")
def sensitivity(
    cd: CompiledDeal,
    sc: MonteCarloScenario,
    x: tuple[str, Sequence[float]],
    y: tuple[str, Sequence[float]],
    *,
    n_paths: int = 20_000,
    seed: int | None = None,
    client: Any = None,
    rating_table: str | Path | RatingTable | None = None,
    progress: bool | None = None,
    sampling: str = "crude",
) -> pd.DataFrame:
    """Tranche expected loss (± SE), default probability, WAL and implied rating over a grid
    of two scenario parameters, long form: one row per (x, y, tranche). With ``client`` (a
    ``distributed.Client`` or DaskRunner) every grid point is submitted before any is
    collected, so the cluster computes them together. ``rating_table``: a CSV path or a loaded
    :class:`RatingTable`, for the implied ratings (default: the shipped illustrative table).
    ``progress``: a bar over the grid's points on stderr (default: when the grid takes over a
    second; never with False). ``sampling``: "crude" or "importance" (shifts chosen at each
    point for the most senior rated tranche)."""
    check_instance(cd, CompiledDeal, "sensitivity", "cd", _COMPILE_HINT)
    _check_sampling_method(sampling, "sensitivity")
    axes = []
    for axis, spec in (("x", x), ("y", y)):
        pair = _two_values(spec)
        given = _values(pair[1]) if pair is not None else None
        if pair is None or given is None:
            raise SolverArgumentTypeError(
                f"{axis} must be (parameter, values), got {short_repr(spec)}"
            )
        axes.append((pair[0], given))
        values = [check_parameter(pair[0], v) for v in given]
        if not values:
            raise SolverArgumentError(f"{axis}: no values for {pair[0]}")
        if len(set(values)) != len(values):
            raise SolverArgumentError(
                f"{axis}: a value of {pair[0]} appears twice: {short_repr(given)}"
            )
    x, y = axes
    if x[0] == y[0]:
        raise SolverArgumentError(f"x and y vary the same parameter {x[0]!r}")
    if {x[0], y[0]} == {"recovery", "ip_haircut"}:
        # a recovery rate replaces the IP-value model whose haircut the other axis moves:
        # with recovery applied last the haircut axis changed nothing (its rows were equal)
        raise SolverArgumentError(
            "recovery and ip_haircut cannot be varied together: a recovery rate replaces the "
            "IP-value model the haircut belongs to"
        )
    n_paths = _n_paths(n_paths)
    progress = check_optional_bool(progress, "sensitivity", "progress")
    check_monte_carlo(sc, "sensitivity")
    seed = _seed(seed, sc)
    runner = _runner(client, "sensitivity")
    table = rating_table_arg(rating_table, "sensitivity")
    points = [(xv, yv) for xv in x[1] for yv in y[1]]
    pending = [
        _start(cd, with_parameter(with_parameter(sc, x[0], xv), y[0], yv), n_paths, seed,
               table, runner, sampling)
        for xv, yv in points
    ]  # fmt: skip
    rows = []
    bar = Progress(len(points), progress, "sensitivity grid", "points")
    try:
        for k, ((xv, yv), run) in enumerate(zip(points, pending, strict=True)):
            tr = run.result().tranches
            bar.update(k + 1)
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
    finally:
        bar.stop()
    return pd.DataFrame(rows)
