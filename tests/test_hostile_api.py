"""Hostile input through the Python API: every public function and method refuses wrong types
and values with an :class:`~abs_engine.errors.AbsEngineError` subclass whose message names the
argument (or the field path) and the value given — never a raw TypeError, KeyError,
IndexError, OverflowError or RecursionError, never a hang, never a wrong success.

The corpus is generated: each argument crossed with the hostile values that fit it. Every case
fails before a kernel runs (the few results the method cases need come from the plain-Python
twin kernels), so the whole file takes a few seconds.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import abs_engine as ae
from abs_engine.compile.model import compile_model
from abs_engine.compile.scenario import deterministic_flows
from abs_engine.compile.schedule import MAX_ROLL_DAYS, register_calendar
from abs_engine.errors import (
    AbsEngineError,
    ArgumentTypeError,
    DealError,
    InputError,
    short_repr,
)
from abs_engine.metrics.rating import load_rating_table
from abs_engine.schema import parse_deal, parse_scenario, read_tape
from abs_engine.schema.load import read_document
from abs_engine.schema.stochastic import MonteCarloScenario
from abs_engine.solvers import (
    base_case_default_rate,
    breakeven_default_rate,
    condition,
    coverage_table,
    default_timing,
    large_obligor_test,
    load_curve,
    solve_coupon,
    with_parameter,
)
from abs_engine.solvers.structuring import breakeven, sensitivity, size_tranche
from tests.conftest import base_deal, obligor, quarterly_deal

NAN = float("nan")
INF = float("inf")


@dataclass(frozen=True)
class Case:
    id: str
    call: Callable[[], Any]
    names: tuple[str, ...]  # fragments the message must contain: the argument and the value
    error: type[AbsEngineError] = AbsEngineError


@pytest.fixture(scope="module")
def world() -> dict[str, Any]:
    """The bundled deal, compiled; a deterministic result of two scenarios and a tiny Monte
    Carlo result, both from the plain-Python twin kernels (nothing to compile)."""
    deal = ae.load_deal()
    cd = ae.compile_deal(deal)
    det = ae.run_deterministic(cd, ["huake_base", "zero_default"], jit=False)
    mc = ae.simulate(cd, n_paths=16, jit=False, progress=False)
    return {"deal": deal, "cd": cd, "det": det, "mc": mc}


def _c(id: str, call: Callable[[], Any], *names: str, error: type = AbsEngineError) -> Case:
    return Case(id, call, tuple(names), error)


class _Weird:
    def __repr__(self) -> str:
        return "<weird>"


WEIRD = _Weird()
#: values of the wrong type for a whole number, and the words that must name them
NOT_INTS: list[Any] = [1.5, "2", True, None, [1], WEIRD, NAN]
NOT_BOOLS: list[Any] = ["no", "yes", 1, 0, 1.0, [True], WEIRD]


def _world_cases() -> Iterator[Case]:
    """Cases that need the compiled deal or a result (filled from the ``world`` fixture)."""

    # ---- the searches: their tolerance, scenario kind and argument shapes ----------------------
    # (tol 0 or 1e-300 never ended or took a thousand halvings, NaN returned the midpoint or
    # blamed the deal file; a deterministic scenario, bounds or an axis of the wrong shape
    # raised AttributeError, ValueError or TypeError; found by a fuzzing helper)
    def mc_of(w: dict[str, Any]) -> Any:
        return ae.load_scenario("huake_mc", w["deal"])

    first_loss = condition("first_loss")
    for v in [0, -1.0, 1e-300, NAN, INF, 2.0, "0.1"]:
        yield _c(f"breakeven-tol-{v!r}", lambda w, v=v: breakeven(
            w["cd"], mc_of(w), "A", "pd_multiplier", first_loss, lo=0, hi=2, tol=v, n_paths=10),
            "breakeven: tol", short_repr(v))  # fmt: skip
        yield _c(f"size_tranche-tol-{v!r}", lambda w, v=v: size_tranche(
            w["deal"], mc_of(w), "A", target_rating="AAA", tol=v, n_paths=10),
            "size_tranche: tol", short_repr(v))  # fmt: skip
    det = ae.load_scenario("huake_base")
    for id, call in [
        ("size_tranche", lambda w: size_tranche(w["deal"], det, "A", target_el=0.01, n_paths=10)),
        ("solve_coupon", lambda w: solve_coupon(w["deal"], det, "A", load_curve(0.02), n_paths=10)),
        ("sensitivity", lambda w: sensitivity(w["cd"], det, ("pd_multiplier", [1.0]),
                                              ("recovery", [0.2]), n_paths=10)),
        ("breakeven", lambda w: breakeven(w["cd"], det, "A", "pd_multiplier", first_loss, lo=0,
                                          hi=2, n_paths=10)),
    ]:  # fmt: skip
        yield _c(f"{id}-deterministic-scenario", call, "sc must be a Monte Carlo scenario",
                 "DeterministicScenario")  # fmt: skip
    for v in [(0.0,), (0.0, 0.1, 0.2), "ab"]:  # (None: the default bounds)
        yield _c(f"solve_coupon-bounds-{v!r}", lambda w, v=v: solve_coupon(
            w["deal"], mc_of(w), "A", load_curve(0.02), bounds=v, n_paths=10),
            "bounds must be (lo, hi)", short_repr(v))  # fmt: skip
    for v in [(1, 2), ("pd_multiplier", 2), ("pd_multiplier", "12")]:
        yield _c(f"sensitivity-x-{v!r}", lambda w, v=v: sensitivity(
            w["cd"], mc_of(w), v, ("recovery", [0.2]), n_paths=10),
            "x must be (parameter, values)", short_repr(v))  # fmt: skip
    # ---- simulate: every keyword with every hostile value --------------------------------------
    sim_values: dict[str, list[Any]] = {
        "threads": [1.5, 0, -1, 10**6, "2", True, NAN],
        "batch_blocks": ["x", 0, -3, 1.5, True, 2**40],
        "n_paths": [0, -1, 1.5, True, "10", 10**11, NAN, 2**64],
        "seed": [-1, 1.5, 2**63, 2**70, "1", True, NAN],
        "keep_paths": ["no", 1, None, 0.0],
        "progress": ["x", 1, 0.5],
        "jit": ["x", 1, None],
        "ledger_paths": [[0.5], [True], [-1], [10**12], 5, "0", {0: 1}, [[0]], [None], 1.5],
        "rating_table": [123, 1.5, [1], b"table.csv", WEIRD],
    }
    for arg, values in sim_values.items():
        for v in values:
            shown = short_repr(v[0] if isinstance(v, list) and v else v)
            yield Case(
                f"simulate-{arg}-{v!r}",
                lambda w, arg=arg, v=v: (
                    ae.simulate(w["cd"], n_paths=10, **{arg: v})
                    if arg != "n_paths"
                    else ae.simulate(w["cd"], n_paths=v)
                ),
                (f"simulate: {arg}", shown),
            )
    for v in [object(), 123, 1.5, [], {"a": 1}, b"deal.toml"]:
        yield Case(f"simulate-deal-{type(v).__name__}", lambda w, v=v: ae.simulate(v), ("deal",))
        yield Case(
            f"run_deterministic-deal-{type(v).__name__}",
            lambda w, v=v: ae.run_deterministic(v),
            ("deal",),
        )
    for v in [123, object(), 1.5, b"huake_mc", {"kind": "monte_carlo"}]:
        yield Case(
            f"simulate-scenario-{type(v).__name__}",
            lambda w, v=v: ae.simulate(w["cd"], v, n_paths=10),
            ("scenario",),
        )
    # found by fuzzing: an endless iterator hung the check; a path named twice was accepted
    yield Case(
        "simulate-ledger-paths-endless",
        lambda w: ae.simulate(w["cd"], n_paths=10, ledger_paths=itertools.count()),
        ("ledger_paths", "at most"),
    )
    yield Case(
        "simulate-ledger-paths-twice",
        lambda w: ae.simulate(w["cd"], n_paths=10, ledger_paths=[1, 1]),
        ("ledger_paths", "twice"),
    )
    for v in [10**11, 2**70]:
        yield Case(
            f"solve_coupon-n_paths-{v}",
            lambda w, v=v: solve_coupon(
                w["deal"], ae.load_scenario("huake_mc", w["deal"]), "A", load_curve(0.02), n_paths=v
            ),
            ("n_paths", str(v)),
        )
    yield Case(
        "simulate-ledger-path-beyond-run",
        lambda w: ae.simulate(w["cd"], n_paths=10, ledger_paths=[10]),
        ("ledger_paths[0]", "10"),
    )
    yield Case(
        "simulate-deterministic-scenario",
        lambda w: ae.simulate(w["cd"], "huake_base", n_paths=10),
        ("kind", "deterministic"),
    )
    yield Case(
        "simulate_compiled-cd",
        lambda w: ae.simulation.simulate_compiled(None, None),  # type: ignore[arg-type]
        ("simulate_compiled: cd", "None"),
    )
    yield Case(
        "simulate_compiled-rating_table-path",
        lambda w: ae.simulation.simulate_compiled(
            w["cd"], w["mc"].scenario, rating_table="table.csv"
        ),
        ("rating_table", "table.csv"),
    )
    yield Case(
        "simulate-rating_table-missing-file",
        lambda w: ae.simulate(w["cd"], n_paths=10, rating_table="/nonexistent/table.csv"),
        ("rating table", "not found"),
    )
    yield Case(
        "simulate-rating_table-long-path",
        lambda w: ae.simulate(w["cd"], n_paths=10, rating_table="/tmp/" + "t" * 5000),
        ("rating table", "cannot be opened"),
    )
    # ---- run_deterministic ----------------------------------------------------------------------
    for v in [123, 1.5, object(), {"name": "x"}]:
        yield Case(
            f"run_deterministic-scenarios-{type(v).__name__}",
            lambda w, v=v: ae.run_deterministic(w["cd"], v),
            ("scenarios", short_repr(v)),
        )
    for v in [123, None, 1.5, b"huake_base"]:
        yield Case(
            f"run_deterministic-scenarios-item-{type(v).__name__}",
            lambda w, v=v: ae.run_deterministic(w["cd"], ["huake_base", v]),
            ("scenarios[1]", short_repr(v)),
        )
    yield Case(
        "run_deterministic-scenarios-empty",
        lambda w: ae.run_deterministic(w["cd"], []),
        ("scenarios", "empty"),
    )
    yield Case(
        "run_deterministic-monte-carlo",
        lambda w: ae.run_deterministic(w["cd"], "huake_mc"),
        ("kind", "monte_carlo"),
    )
    for v in NOT_BOOLS:
        yield Case(
            f"run_deterministic-jit-{v!r}",
            lambda w, v=v: ae.run_deterministic(w["cd"], jit=v),
            ("jit", short_repr(v)),
        )
    # ---- DeterministicResult[k]: unknown names, indices out of range, wrong types -------------
    for v in ["no_such", "", 2, -3, 10**20, 1.5, None, True, False, [0], NAN, slice(0, 1)]:
        yield Case(
            f"result-getitem-{v!r}",
            lambda w, v=v: w["det"][v],
            ("DeterministicResult[scenario]", short_repr(v)),
            error=InputError
            if isinstance(v, str | int) and not isinstance(v, bool)
            else ArgumentTypeError,
        )
    # ---- SimulationResult ------------------------------------------------------------------------
    for v in [2.0, -0.1, NAN, INF, "x", None, True, [0.5]]:
        yield Case(
            f"loss_rate_quantile-{v!r}",
            lambda w, v=v: w["mc"].loss_rate_quantile(v),
            ("loss_rate_quantile: q", short_repr(v)),
        )
    # ---- CompiledDeal ----------------------------------------------------------------------------
    for v in ["no_such", 0, None]:
        yield Case(
            f"tranche_index-{v!r}",
            lambda w, v=v: w["cd"].tranche_index(v),
            ("tranche_index", short_repr(v)),
        )
    # ---- agency solvers ----------------------------------------------------------------------
    for v in [-1, 0, 1.5, "x", True, None, 10**9]:
        yield Case(
            f"large_obligor_test-max_obligors-{v!r}",
            lambda w, v=v: large_obligor_test(w["cd"], max_obligors=v),
            ("max_obligors", short_repr(v)),
        )
    for v in [0, 13, -1, 1.5, "1"]:
        yield Case(
            f"large_obligor_test-period-{v!r}",
            lambda w, v=v: large_obligor_test(w["cd"], period=v),
            ("period", short_repr(v)),
        )
    for v in [2.0, -0.1, NAN, "0.2", 10**400]:
        yield Case(
            f"large_obligor_test-recovery_rate-{short_repr(v, 20)}",
            lambda w, v=v: large_obligor_test(w["cd"], recovery_rate=v),
            ("recovery_rate", short_repr(v)),
        )
    for v in [-1, 1000, 1.5]:
        yield Case(
            f"large_obligor_test-recovery_lag-{v!r}",
            lambda w, v=v: large_obligor_test(w["cd"], recovery_lag=v),
            ("recovery_lag", short_repr(v)),
        )
    for v in ["no_such", 5]:
        yield Case(
            f"large_obligor_test-tranche-{v!r}",
            lambda w, v=v: large_obligor_test(w["cd"], v),
            ("tranche", short_repr(v)),
        )
    for v in [0, -1e-3, NAN, INF, "x", 1.0]:
        yield Case(
            f"breakeven_default_rate-tol-{v!r}",
            lambda w, v=v: breakeven_default_rate(w["cd"], "A", tol=v),
            ("tol", short_repr(v)),
        )
    yield Case(
        "breakeven_default_rate-support",
        lambda w: breakeven_default_rate(w["cd"], "A", support="no"),
        ("support", "'no'"),
    )
    yield Case(
        "breakeven_default_rate-timing-sum",
        lambda w: breakeven_default_rate(w["cd"], "A", timing=[0.5, 0.4]),
        ("timing",),
    )
    yield Case(
        "breakeven_default_rate-timing-too-long",
        lambda w: breakeven_default_rate(w["cd"], "A", timing=[1 / 13] * 13),
        # the argument's own error (a validator: a DealError at <memory>: defaults.timing)
        ("breakeven_default_rate: timing has 13 shares", "12 periods"),
        InputError,
    )
    yield Case(  # a name is a sequence: its letters were taken for scenarios ("got 'h'")
        "coverage_table-scenarios-a-name",
        lambda w: coverage_table(w["cd"], "huake_base"),
        ("coverage_table: scenarios must be a list", "'huake_base'", "load_scenario"),
        ArgumentTypeError,
    )
    for fn in (base_case_default_rate, default_timing, large_obligor_test):
        yield Case(f"{fn.__name__}-cd-None", lambda w, fn=fn: fn(None), (fn.__name__, "None"))
    yield Case(
        "breakeven_default_rate-cd-None",
        lambda w: breakeven_default_rate(None, "A"),  # type: ignore[arg-type]
        ("breakeven_default_rate: cd", "None"),
    )
    yield Case(
        "default_timing-front_loaded",
        lambda w: default_timing(w["cd"], front_loaded="yes"),
        ("front_loaded", "'yes'"),
    )
    for v in [[], 5, [5], ["huake_base"]]:
        yield Case(
            f"coverage_table-scenarios-{v!r}",
            lambda w, v=v: coverage_table(w["cd"], v),
            ("scenarios",),
        )
    yield Case(
        "coverage_table-tranche",
        lambda w: coverage_table(w["cd"], [parse_scenario({"name": "x"})], tranche="ZZ"),
        ("tranche", "'ZZ'"),
    )
    # ---- lower-level entry points -------------------------------------------------------------
    yield Case("compile_model-cd", lambda w: compile_model(None, w["mc"].scenario), ("cd", "None"))
    yield Case(
        "compile_model-sc",
        lambda w: compile_model(w["cd"], parse_scenario({"name": "x"})),
        ("sc", "DeterministicScenario"),
    )
    yield Case(
        "deterministic_flows-scenarios",
        lambda w: deterministic_flows(w["cd"], parse_scenario({"name": "x"})),
        ("scenarios",),
    )
    yield Case("deterministic_flows-cd", lambda w: deterministic_flows(None, []), ("cd", "None"))
    # ---- objects changed with model_copy (which skips validation) are validated again ----------
    updates: list[tuple[str, Callable[[Any], dict[str, Any]], str, str]] = [
        ("tranches-empty", lambda d: {"tranches": []}, "tranches", "[]"),
        ("name-int", lambda d: {"name": 5}, "name", "5"),
        ("base_rate", lambda d: {"base_rate": 2.0}, "base_rate", "2.0"),
        ("schema_version", lambda d: {"schema_version": True}, "schema_version", "True"),
        (
            "legal_final",
            lambda d: {"dates": d.dates.model_copy(update={"legal_final": dt.date(2020, 1, 1)})},
            "dates.legal_final",
            "2020-01-01",
        ),
        (
            "tranche-balance",
            lambda d: {
                "tranches": [d.tranches[0].model_copy(update={"balance": -1.0}), d.tranches[1]]
            },
            "tranches[0].balance",
            "-1.0",
        ),
        (
            "tranche-balance-nan",
            lambda d: {
                "tranches": [d.tranches[0].model_copy(update={"balance": NAN}), d.tranches[1]]
            },
            "tranches[0].balance",
            "nan",
        ),
        (
            "waterfall-empty",
            lambda d: {"waterfalls": d.waterfalls.model_copy(update={"normal": []})},
            "waterfalls.normal",
            "[]",
        ),
        ("pool-none", lambda d: {"pool": None}, "pool", "None"),
        ("dates-dict", lambda d: {"dates": {"closing": "x"}}, "dates.closing", "'x'"),
        (
            "tranche-twice",
            lambda d: {"tranches": [d.tranches[0], d.tranches[0], d.tranches[1]]},
            "tranches[1].name",
            "'A'",
        ),
    ]
    for id, upd, path, value in updates:
        yield Case(
            f"model_copy-deal-{id}",
            lambda w, upd=upd: ae.compile_deal(w["deal"].model_copy(update=upd(w["deal"]))),
            (path, value),
            DealError,
        )
    yield Case(
        "model_copy-deterministic-scenario",
        lambda w: ae.run_deterministic(
            w["cd"], parse_scenario({"name": "x"}).model_copy(update={"prepayment": {"cpr": []}})
        ),
        ("prepayment.cpr", "[]"),
        DealError,
    )
    mc = MonteCarloScenario.model_validate({"kind": "monte_carlo", "name": "m"})
    for field, value in [("n_paths", -5), ("seed", -1), ("name", ""), ("rate_shock_bps", NAN)]:
        yield Case(
            f"model_copy-mc-scenario-{field}",
            lambda w, f=field, v=value: ae.simulate(
                w["cd"], mc.model_copy(update={f: v}), n_paths=10
            ),
            (field, short_repr(value)),
            DealError,
        )


def _plain_cases() -> Iterator[Case]:
    """Cases that need nothing but the package."""
    for fn, arg in (
        (ae.load_deal, "path"),
        (ae.load_scenario, "name_or_path"),
        (read_document, "path"),
        (read_tape, "path"),
    ):
        name = fn.__name__
        for v in [123, 1.5, b"deal.toml", [], {}, WEIRD, "", "   ", "a\x00b.toml"]:
            yield _c(f"{name}-{v!r}", lambda fn=fn, v=v: fn(v), f"{name}: {arg}")
    yield _c("load_scenario-None", lambda: ae.load_scenario(None), "name_or_path", "None")
    yield _c(
        "load_scenario-deal-type",
        lambda: ae.load_scenario("huake_base", deal="deal"),
        "load_scenario: deal",
        "'deal'",
    )
    for v in [None, "waterfalls/huake_2025.toml", 123, {"schema_version": 1}, WEIRD]:
        yield _c(
            f"compile_deal-{type(v).__name__}",
            lambda v=v: ae.compile_deal(v),
            "compile_deal: deal",
            short_repr(v),
            error=ArgumentTypeError,
        )
    for name, fn, what in [
        (1, bool, "name"),
        (None, bool, "name"),
        ("", bool, "name"),
        ("x", 5, "is_business_day"),
        ("x", None, "is_business_day"),
    ]:
        yield _c(
            f"register_calendar-{name!r}-{fn!r}",
            lambda n=name, f=fn: register_calendar(n, f),
            f"register_calendar: {what}",
        )
    for v in [NAN, INF, -INF, "x", None]:
        yield _c(f"condition-el_above-{v!r}", lambda v=v: condition("el_above", v), "el_above")
    for v in [123, None, [1], "x"]:
        yield _c(
            f"parse_deal-{v!r}", lambda v=v: parse_deal(v), "<root>", error=DealError
        )  # not a document
    # found by fuzzing: a raw ValueError / AttributeError, a condition that ignored its value
    for v in [np.array([1, 2]), None, 3, ["el_above"]]:
        yield _c(f"condition-kind-{v!r}", lambda v=v: condition(v), "condition: kind")
    yield _c("condition-first_loss-value", lambda: condition("first_loss", 0.5), "first_loss")
    # an int too large for a float raised a bare OverflowError; a complex rate was taken as real
    yield _c("condition-el_above-huge-int", lambda: condition("el_above", 10**400), "el_above")
    mc = MonteCarloScenario.model_validate({"kind": "monte_carlo", "name": "m"})
    yield _c("with_parameter-huge-int", lambda: with_parameter(mc, "cpr", 10**400), "cpr")
    for v in [10**400, np.complex128(0.02 + 1j)]:
        yield _c(f"load_curve-{type(v).__name__}", lambda v=v: load_curve(v), "flat curve rate")
    for v in [None, True, "huake_mc", {"kind": "monte_carlo"}, WEIRD]:
        yield _c(
            f"with_parameter-sc-{v!r}",
            lambda v=v: with_parameter(v, "pd_multiplier", 1.0),
            "with_parameter: sc",
            short_repr(v),
        )


# ---- registered calendars that misbehave ------------------------------------------------------


def _raises(d: dt.date) -> bool:
    raise RuntimeError("calendar service down")


def _recurses(d: dt.date) -> bool:
    return _recurses(d)


CALENDARS: dict[str, tuple[Callable[[dt.date], Any], str, str]] = {
    # name: (function, field the error names, fragment of the message)
    "hostile_raises": (_raises, "dates.calendar.name", "calendar service down"),
    "hostile_recurses": (_recurses, "dates.calendar.name", "RecursionError"),
    "hostile_keyerror": (lambda d: {}[d], "dates.calendar.name", "KeyError"),
    "hostile_string": (lambda d: "yes", "dates.calendar.name", "'yes'"),
    "hostile_none": (lambda d: None, "dates.calendar.name", "None"),
    "hostile_never": (lambda d: False, "dates.first_payment", f"within {MAX_ROLL_DAYS} days"),
    "hostile_numpy": (lambda d: np.array([True, False]), "dates.calendar.name", "array"),
}


#: each calendar under one roll; the roll matters only to the calendar that never answers True
#: (the others fail on the first date asked, before any roll searches)
CALENDAR_ROLLS = [(name, "following") for name in sorted(CALENDARS)] + [
    ("hostile_never", "modified_following"),
    ("hostile_never", "preceding"),
]


@pytest.mark.parametrize(("name", "roll"), CALENDAR_ROLLS)
def test_registered_calendar_that_misbehaves(name: str, roll: str) -> None:
    fn, field, fragment = CALENDARS[name]
    register_calendar(name, fn)
    doc = base_deal()
    doc["dates"].update(business_day=roll, calendar={"kind": "named", "name": name})
    with pytest.raises(DealError) as info:
        ae.compile_deal(parse_deal(doc))
    text = str(info.value)
    assert field in text and fragment in text, text
    assert any(p.path == field for p in info.value.problems)


def test_calendar_without_business_days_does_not_hang_on_the_whole_range() -> None:
    """A calendar with no business day at all is refused after MAX_ROLL_DAYS probes per date,
    not after stepping to year 9999 (which takes minutes and then overflows)."""
    calls = []

    def never(d: dt.date) -> bool:
        calls.append(d)
        return False

    register_calendar("hostile_counted", never)
    doc = base_deal()
    doc["dates"].update(
        business_day="following", calendar={"kind": "named", "name": "hostile_counted"}
    )
    with pytest.raises(DealError, match="dates.first_payment"):
        ae.compile_deal(parse_deal(doc))
    assert len(calls) <= MAX_ROLL_DAYS + 1


# ---- the generated corpus ----------------------------------------------------------------------

WORLD_CASES = list(_world_cases())
PLAIN_CASES = list(_plain_cases())


def _check(exc: BaseException, case: Case) -> None:
    assert isinstance(exc, case.error), (type(exc), exc)
    text = str(exc)
    assert "Traceback" not in text
    for fragment in case.names:
        assert fragment in text, f"{fragment!r} not in {text!r}"


def test_grid_axes_and_bounds_take_any_sequence(world: dict[str, Any]) -> None:
    """The shape checks refuse strings and non-sequences, not the sequences a quant passes:
    a range, an array, a Series or a generator as an axis, an array as bounds."""
    import pandas as pd

    mc = ae.load_scenario("huake_mc", world["deal"])
    for values in (range(1, 3), np.array([1.0, 2.0]), pd.Series([1.0, 2.0]), (v for v in (1, 2))):
        grid = sensitivity(world["cd"], mc, ("pd_multiplier", values), ("recovery", [0.2]),
                           n_paths=50, progress=False)  # fmt: skip
        assert sorted(set(grid["pd_multiplier"])) == [1.0, 2.0]
    rate = solve_coupon(world["deal"], mc, "A", load_curve(0.02), bounds=np.array([0.0, 0.3]),
                        n_paths=50)  # fmt: skip
    assert 0.0 <= rate <= 0.3


@pytest.mark.parametrize("case", WORLD_CASES, ids=[c.id for c in WORLD_CASES])
def test_api_with_results(case: Case, world: dict[str, Any]) -> None:
    with pytest.raises(AbsEngineError) as info:
        case.call(world)  # type: ignore[call-arg]
    _check(info.value, case)


@pytest.mark.parametrize("case", PLAIN_CASES, ids=[c.id for c in PLAIN_CASES])
def test_api_plain(case: Case) -> None:
    with pytest.raises(AbsEngineError) as info:
        case.call()
    _check(info.value, case)


def test_error_types() -> None:
    """Wrong types are both ArgumentTypeError and TypeError; wrong values InputError and
    ValueError; all of them AbsEngineError (what the CLI turns into exit status 2)."""
    assert issubclass(ArgumentTypeError, TypeError) and issubclass(ArgumentTypeError, InputError)
    assert issubclass(InputError, ValueError) and issubclass(InputError, AbsEngineError)
    assert ae.InputError is InputError
    with pytest.raises(TypeError):
        ae.load_deal(123)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ae.load_deal("")


def test_every_public_function_is_covered() -> None:
    """Each public callable of ``abs_engine.__all__`` has at least one case above."""
    ids = " ".join(c.id for c in WORLD_CASES + PLAIN_CASES)
    callables = {
        "compile_deal": "compile_deal",
        "load_deal": "load_deal",
        "load_scenario": "load_scenario",
        "register_calendar": "register_calendar",
        "run_deterministic": "run_deterministic",
        "simulate": "simulate",
        "DeterministicResult": "result-",
        "SimulationResult": "loss_rate_quantile",
        "CompiledDeal": "tranche_index",
    }
    for name in ae.__all__:
        if name in callables:
            assert callables[name] in ids, name


# ---- valid neighbours stay valid ---------------------------------------------------------------


def test_valid_arguments_still_work(world: dict[str, Any]) -> None:
    det = world["det"]
    assert det["zero_default"] is det[1] is det[-1]
    assert det[np.int64(0)] is det[0] and det[0].name == "huake_base"
    assert det["zero_default"].tranches.equals(det[1].tranches)
    assert 0.0 <= world["mc"].loss_rate_quantile(0.99) <= 1.0
    assert world["mc"].loss_rate_quantile(np.float64(0.5)) >= 0.0
    assert world["cd"].tranche_index("Sub") == 1
    assert ae.load_deal(Path(ae.resources.bundled_deal_path())).name == world["deal"].name
    # an unchanged deal is not validated again, and the compiled deal keeps its own copy (an
    # edit to the caller's after compiling relabelled the results)
    own = ae.compile_deal(world["deal"]).deal
    assert own is not world["deal"] and own.model_dump() == world["deal"].model_dump()
    # a deal changed with model_copy to something valid compiles, with the change
    cd2 = ae.compile_deal(world["deal"].model_copy(update={"name": "renamed"}))
    assert cd2.deal.name == "renamed" and cd2.source == world["cd"].source
    assert world["cd"].warnings == ()


def test_model_copy_changes_to_a_tape_deal_keep_the_tape(tmp_path: Path) -> None:
    tape = tmp_path / "tape.csv"
    tape.write_text(
        "id,balance,rate,amortization,n_periods,annual_pd\nT1,60,0,bullet,3,0.01\n"
        "T2,40,0,bullet,3,0.01\n"
    )
    doc = base_deal(pool={"obligors": [obligor("O1", 50.0)], "tape": {"path": "tape.csv"}})
    doc["tranches"][0]["balance"] = 150.0
    deal = parse_deal(doc, source=tmp_path / "deal.json", base_dir=tmp_path)
    cd = ae.compile_deal(deal.model_copy(update={"name": "changed"}))
    assert cd.n_obligors == 3 and math.isclose(cd.original_pool, 150.0)
    with pytest.raises(DealError, match=r"tranches\[0\].balance"):
        ae.compile_deal(
            deal.model_copy(
                update={"tranches": [deal.tranches[0].model_copy(update={"balance": -5.0})]}
            )
        )


def test_keep_paths_that_cannot_fit_are_refused_up_front_with_the_estimate():
    """10^9 paths of kept per-path metrics (about 200 GiB on the bundled deal) are refused
    before anything is allocated or simulated, with the size in the message."""
    with pytest.raises(ae.AbsEngineError, match=r"1,000,000,000 paths needs about [\d,.]+ GiB"):
        ae.simulate(ae.load_deal(), n_paths=10**9, keep_paths=True, progress=False)


def test_ledger_paths_as_an_iterator_keeps_the_ledgers(world: dict[str, Any]) -> None:
    """The checked (consumed) iterator is passed on as its list, not the exhausted original."""
    res = ae.simulate(
        world["cd"], n_paths=16, ledger_paths=(p for p in [0, 1]), jit=False, progress=False
    )
    assert sorted(res.ledgers) == [0, 1]


def test_ledger_paths_that_cannot_fit_are_refused_up_front(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import abs_engine.simulation as sim

    one = sim.ledger_bytes(world["cd"])
    assert one > 8 * world["cd"].n_periods
    monkeypatch.setattr(sim, "KEEP_PATHS_MAX_BYTES", 2 * one)
    with pytest.raises(InputError, match=r"ledger_paths: .*3 paths needs about"):
        ae.simulate(world["cd"], n_paths=16, ledger_paths=[0, 1, 2], jit=False, progress=False)
    res = ae.simulate(world["cd"], n_paths=16, ledger_paths=[0, 1], jit=False, progress=False)
    assert sorted(res.ledgers) == [0, 1]


def test_calendar_failing_on_some_dates_is_not_retried_backwards() -> None:
    """Under modified_following a calendar that raises during the forward search (here on
    Mondays) is an error, not a reason to roll back to the Friday."""
    calls: list[dt.date] = []

    def flaky(d: dt.date) -> bool:
        calls.append(d)
        if d.weekday() == 0:
            raise RuntimeError("calendar service down on Mondays")
        return d.weekday() < 5

    register_calendar("hostile_flaky", flaky)
    doc = base_deal()
    doc["dates"].update(
        business_day="modified_following", calendar={"kind": "named", "name": "hostile_flaky"}
    )
    with pytest.raises(DealError) as info:
        ae.compile_deal(parse_deal(doc))
    assert "calendar service down on Mondays" in str(info.value)
    assert any(p.path == "dates.calendar.name" for p in info.value.problems)
    # the fault came from the forward search from a weekend payment date
    assert calls[-1].weekday() == 0 and calls[-2].weekday() >= 5, calls


def test_simulate_and_run_deterministic_issue_the_deals_warnings():
    """Notes of 115 million on the bundled 100 million pool: legal, under-collateralised;
    the Python API says so as a DealWarning (the command line prints warning: lines)."""
    doc = ae.load_deal().model_dump()
    doc["tranches"][0]["balance"] = 110_000_000.0
    over = parse_deal(doc)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ae.run_deterministic(over, ["huake_base"])
    texts = [str(w.message) for w in seen if issubclass(w.category, ae.DealWarning)]
    assert any("115,000,000" in t and "100,000,000" in t for t in texts), texts


# --- rating tables and solvers on unusual deals (red-team pass 2) --------------------------------

_RT_HEAD = "rating,horizon_years,expected_loss_pct\n"
RATING_TABLES = {
    "above_100_percent": _RT_HEAD + "AAA,1,500\n",
    "decimal_above_one": "rating,horizon_years,expected_loss\nAAA,1,2\n",
    "falls_with_horizon": _RT_HEAD + "AAA,1,0.5\nAAA,2,0.1\n",
    "worse_rating_below_better": _RT_HEAD + "AA,1,0.01\nAAA,1,0.001\nAA,2,0.02\nAAA,2,0.002\n",
    "empty_rating": _RT_HEAD + ",1,0.1\n",
    "pd_not_monotone": "rating,horizon_years,default_probability\nAAA,1,0.01\nAA,1,0.005\n",
}


@pytest.mark.parametrize("name", sorted(RATING_TABLES))
def test_rating_table_contents_are_checked(tmp_path: Path, name: str) -> None:
    """These loaded as valid tables (a 500% EL threshold, a worse rating with a lower
    threshold than a better one, a rating called 'nan')."""
    p = tmp_path / f"{name}.csv"
    p.write_text(RATING_TABLES[name])
    with pytest.raises(DealError) as err:
        load_rating_table(p)
    assert str(p) in str(err.value)


@pytest.mark.parametrize("bad", [123, b"table.csv", "", 1.5])
def test_rating_table_path_of_the_wrong_type(bad: Any) -> None:
    """``load_rating_table(123)`` raised a bare TypeError from pathlib."""
    with pytest.raises(AbsEngineError, match="load_rating_table: path"):
        load_rating_table(bad)


def _two_note_deal(b_principal: dict[str, Any]) -> ae.Deal:
    doc = quarterly_deal(0.02).model_dump(mode="json")
    doc["tranches"].insert(
        1, {"name": "B", "balance": 5e6, "coupon": {"kind": "fixed", "rate": 0.05}, **b_principal}
    )
    doc["tranches"][-1]["balance"] = 5e6
    doc["waterfalls"]["normal"].insert(1, {"kind": "pay_interest", "tranches": ["B"]})
    doc["waterfalls"]["normal"][2]["tranches"] = ["A", "B", "Sub"]
    return parse_deal(doc)


def test_size_a_target_balance_tranche_is_refused_by_name() -> None:
    """It failed as a deal-file problem (``tranches[1].target_balances: targets must not
    rise...``) in a file that is valid: the solver's own balance broke the schedule."""
    deal = _two_note_deal({"principal": "target_balance", "target_balances": [5e6] * 6 + [2e6, 0]})
    mc = MonteCarloScenario.model_validate({"kind": "monte_carlo", "name": "t", "seed": 7})
    with pytest.raises(AbsEngineError, match="'B'.*target_balance"):
        size_tranche(deal, mc, "B", target_el=0.01, n_paths=100)


def test_size_with_no_capital_between_the_tranches_says_so() -> None:
    """B and the junior at balance 0: "B misses the target even at 0.01% of its capital"
    blamed the target; there is no capital to size."""
    deal = _two_note_deal({})
    doc = deal.model_dump(mode="json")
    doc["tranches"][1]["balance"] = 0.0
    doc["tranches"][-1]["balance"] = 0.0
    mc = MonteCarloScenario.model_validate({"kind": "monte_carlo", "name": "t", "seed": 7})
    with pytest.raises(AbsEngineError, match="no balance between them: there is no capital"):
        size_tranche(parse_deal(doc), mc, "B", target_el=0.01, n_paths=100)


def test_price_the_residual_tranche_is_refused_by_name() -> None:
    """It searched coupons and reported 'no coupon in [0.00%, 50.00%] prices Sub at par'
    with the same PV at both ends: a residual's cash does not depend on a coupon."""
    deal = _two_note_deal({})
    mc = MonteCarloScenario.model_validate({"kind": "monte_carlo", "name": "t", "seed": 7})
    with pytest.raises(AbsEngineError, match="'Sub' is the residual"):
        solve_coupon(deal, mc, "Sub", load_curve(0.02), n_paths=100)


def test_numpy_scalars_are_shown_and_taken_as_the_python_values_they_hold(tmp_path):
    """Messages show a NumPy scalar as its number (not "np.float64(1e+300)"); NumPy's bool is
    a bool wherever True/False is asked for (numpy 2 names its type "bool", which was
    refused); an empty rating in a rating table is named by its row alone (it showed
    "rating=nan")."""
    from abs_engine.errors import check_bool, short_repr
    from abs_engine.metrics import load_rating_table

    assert short_repr(np.float64(1e300)) == "1e+300" and short_repr(np.int64(3)) == "3"
    assert short_repr(np.array([1.0])) == "array([1.])"
    assert check_bool(np.True_, "f", "a") is True and check_bool(np.bool_(False), "f", "a") is False
    with pytest.raises(ae.ArgumentTypeError):
        check_bool(np.int64(1), "f", "a")
    res = ae.simulate(n_paths=64, seed=1, progress=False, keep_paths=np.bool_(True))
    assert res.paths is not None and len(res.paths) == 64
    p = tmp_path / "t.csv"
    p.write_text("rating,horizon_years,expected_loss_pct\nAAA,1,0.1\n,2,0.2\n")
    with pytest.raises(ae.DealError) as info:
        load_rating_table(p)
    (problem,) = info.value.problems
    assert (problem.path, problem.value) == ("row 2.rating", "")


def test_a_compiled_deal_does_not_follow_edits_to_the_callers_deal():
    """compile_deal kept the caller's Deal object: reversing its tranche list after compiling
    relabelled the results (the senior's expected loss shown as Sub's, Sub paid 95m of
    principal) while the kernels ran the deal as compiled."""
    deal = ae.load_deal()
    cd = ae.compile_deal(deal)
    before = ae.simulate(cd, n_paths=2048, seed=3, progress=False).tranches
    det = ae.run_deterministic(cd, "huake_base")
    deal.tranches.reverse()
    after = ae.simulate(cd, n_paths=2048, seed=3, progress=False).tranches
    assert after.equals(before) and list(after.tranche) == ["A", "Sub"]
    assert list(det.tranches.tranche) == ["A", "Sub"]
    assert det.tranches.set_index("tranche").loc["A", "principal_paid"] > 90e6


def test_two_deterministic_scenarios_of_one_name_are_refused():
    """The result is indexed by scenario name: the second of two named alike could not be
    reached, its pool rows mixed with the first's and unstacking them failed in pandas."""
    cd = ae.compile_deal(ae.load_deal())
    base = ae.load_scenario("huake_base")
    twin = base.model_copy(update={"defaults": ae.load_scenario("cdr_stress").defaults})
    with pytest.raises(ae.InputError, match="run_deterministic: two scenarios are named"):
        ae.run_deterministic(cd, [base, twin])


def test_solver_and_agency_argument_errors_are_input_errors_named_by_function():
    """The solvers raised SolverError for bad arguments (neither an InputError nor a
    TypeError, so ``except ae.InputError`` missed them), mostly without the function's name
    ("n_paths must be ...", "seed: seed must be ..."); the agency tests a plain
    AbsEngineError; precision targets refused NumPy's float32."""
    from abs_engine.solvers.structuring import SolverError

    deal = ae.load_deal()
    cd = ae.compile_deal(deal)
    sc = ae.load_scenario("huake_mc")
    cases = [
        (lambda: ae.size_tranche(deal, sc, "A", target_rating="AA", n_paths=1000.0),
         ae.ArgumentTypeError, "size_tranche: n_paths must be an integer"),
        (lambda: ae.size_tranche(deal, sc, "A", target_rating="AA", seed=1.5),
         ae.ArgumentTypeError, "size_tranche: seed must be an integer"),
        (lambda: ae.size_tranche(deal, sc, "ZZ", target_rating="AA"),
         ae.InputError, "size_tranche: unknown tranche 'ZZ'"),
        (lambda: ae.size_stack(deal, sc, {"A": "ZZ"}),
         ae.InputError, "size_stack: unknown rating 'ZZ'"),
        (lambda: ae.large_obligor_test(cd, max_obligors=2.0),
         ae.ArgumentTypeError, "large_obligor_test: max_obligors must be an integer"),
        (lambda: ae.breakeven_default_rate(cd, "Z"),
         ae.InputError, "breakeven_default_rate: unknown tranche 'Z'"),
        (lambda: ae.breakeven_default_rate(cd, "A", recovery_rate="x"),
         ae.ArgumentTypeError, "breakeven_default_rate: recovery_rate must be a number"),
    ]  # fmt: skip
    cases += [
        (lambda: ae.size_tranche(deal, sc, "A", target_el=2.0),
         ae.InputError, "size_tranche: target_el must be in [0, 1)"),
        (lambda: ae.size_tranche(deal, sc, "A", target_rating="ZZ"),
         ae.InputError, "size_tranche: unknown rating 'ZZ'"),
        (lambda: ae.size_tranche(deal, sc, "A", target_rating="AA", tol=0),
         ae.InputError, "size_tranche: tol"),
        (lambda: ae.size_tranche(deal, "x", "A", target_rating="AA"),
         ae.ArgumentTypeError, "size_tranche: sc must be a Monte Carlo scenario"),
        (lambda: ae.condition("el_above", 5),
         ae.InputError, "condition: el_above takes a share in [0, 1]"),
        (lambda: ae.breakeven_default_rate(cd, "A", timing=0.5),
         ae.ArgumentTypeError, "breakeven_default_rate: timing must be a sequence"),
    ]  # fmt: skip
    for call, kind, start in cases:
        with pytest.raises(kind) as ei:
            call()
        assert str(ei.value).startswith(start), str(ei.value)
    with pytest.raises(SolverError):  # the solvers' own kind still catches them
        ae.size_tranche(deal, sc, "A", target_rating="AA", n_paths=0)
    res = ae.simulate(cd, n_paths=1024, target_se=np.float32(0.05), max_paths=2048,
                      progress=False)  # fmt: skip
    assert res.precision is not None
