"""``with_tranche_terms``: new tranche balances and coupons on a compiled deal equal, array for
array, a full compile of the changed deal — results, warnings and errors alike."""

from __future__ import annotations

import copy
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np
import pytest

from abs_engine.compile import compile_deal, deterministic_flows
from abs_engine.compile.deal import CompiledDeal
from abs_engine.compile.patch import with_tranche_terms
from abs_engine.deterministic import run_waterfall
from abs_engine.errors import AbsEngineError, DealError
from abs_engine.resources import bundled_deal_path
from abs_engine.schema import parse_deal, parse_scenario
from abs_engine.schema.load import read_document
from tests.conftest import annual_dates, base_deal, obligor

SOURCE = "patched_deal.toml"


def _same(a: Any, b: Any, where: str) -> None:
    """Bitwise for arrays (dtype, shape and bytes), field by field for dataclasses."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), where
        assert (a.dtype, a.shape) == (b.dtype, b.shape), where
        assert a.tobytes() == b.tobytes(), where
    elif is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), where
        for f in fields(a):
            if f.compare:
                _same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    else:
        assert a == b, where


def assert_same_compiled(patched: CompiledDeal, full: CompiledDeal) -> None:
    for f in fields(CompiledDeal):
        x, y = getattr(patched, f.name), getattr(full, f.name)
        if f.name == "deal":
            assert x.model_dump() == y.model_dump()
            assert x.source == y.source
        else:
            _same(x, y, f.name)
    for f in fields(patched.structure):
        arr = getattr(patched.structure, f.name)
        if isinstance(arr, np.ndarray):
            assert not arr.flags.writeable, f.name


def changed_doc(doc: dict[str, Any], changes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for t in out["tranches"]:
        t.update(copy.deepcopy(changes.get(t["name"], {})))
    return out


def check(doc: dict[str, Any], changes: dict[str, dict[str, Any]]) -> CompiledDeal:
    """Patch ``doc``'s compiled deal and compile the changed document; both must agree."""
    cd = compile_deal(parse_deal(doc, source=SOURCE))
    patched = with_tranche_terms(cd, changes)
    full = compile_deal(parse_deal(changed_doc(doc, changes), source=SOURCE))
    assert_same_compiled(patched, full)
    assert patched.pool is cd.pool  # the pool is not compiled again
    return patched


def check_error(doc: dict[str, Any], changes: dict[str, dict[str, Any]]) -> DealError:
    """The patch refuses what a full compile of the changed document refuses, in its words."""
    cd = compile_deal(parse_deal(doc, source=SOURCE))
    with pytest.raises(DealError) as full:
        compile_deal(parse_deal(changed_doc(doc, changes), source=SOURCE))
    with pytest.raises(DealError) as patched:
        with_tranche_terms(cd, changes)
    assert patched.value.problems == full.value.problems
    return patched.value


@pytest.fixture(scope="module")
def bundled() -> dict[str, Any]:
    return read_document(bundled_deal_path())


def targets_and_percent_reserves() -> dict[str, Any]:
    """A target-balance senior, a sequential mezzanine and a residual; two percentage
    reserves (of the notes, of the mezzanine) and fees on the notes and on a tranche."""
    return base_deal(
        dates=annual_dates(4),
        pool={
            "obligors": [
                obligor("O1", 60, rate=0.08, n=4, kind="equal_principal"),
                obligor("O2", 40, rate=0.08, n=4, kind="level_pay"),
            ]
        },
        tranches=[
            {
                "name": "A",
                "balance": 70.0,
                "coupon": {"kind": "fixed", "rate": 0.03},
                "principal": "target_balance",
                "target_balances": [55.0, 35.0, 15.0, 0.0],
            },
            {
                "name": "B",
                "balance": 20.0,
                "coupon": {"kind": "floating", "spread": 0.02, "floor": 0.0, "cap": 0.09},
            },
            {"name": "E", "balance": 10.0, "principal": "residual"},
        ],
        fees=[
            {"name": "manager", "rate": 0.001, "base": "notes"},
            {"name": "mezz_agent", "rate": 0.002, "base": "B"},
        ],
        accounts=[
            {"name": "liquidity", "target": {"kind": "percent", "rate": 0.02, "of": "notes"}},
            {"name": "mezz", "target": {"kind": "percent", "rate": 0.05, "of": "B", "floor": 1}},
        ],
        waterfalls={
            "normal": [
                {"kind": "pay_fee", "fee": "manager"},
                {"kind": "pay_fee", "fee": "mezz_agent"},
                {"kind": "pay_interest", "tranches": ["A", "B"]},
                {"kind": "fund_reserve", "account": "liquidity"},
                {"kind": "fund_reserve", "account": "mezz"},
                {"kind": "pay_principal", "tranches": ["A", "B", "E"]},
                {"kind": "pay_residual", "tranche": "E"},
            ]
        },
    )


# ---- equal to a full compile --------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"A": {"balance": 81_416_653.44238281}, "Sub": {"balance": 18_583_346.55761719}},
        {"A": {"balance": 0.0}, "Sub": {"balance": 100_000_000.0}},
        {"A": {"coupon": {"kind": "fixed", "rate": 0.025609083805023497}}},
        {"A": {"coupon": {"kind": "floating", "spread": 0.01, "cap": 0.05}}},
        {"A": {"coupon": {"kind": "none"}}},
        {"Sub": {"coupon": {"kind": "fixed", "rate": 0.05}}},  # a residual with a coupon: warns
        {"A": {"balance": 60e6, "coupon": {"kind": "fixed", "rate": 0.0}}},  # pool 1.6x the notes
        {"A": {"balance": 120e6}},  # notes above the pool: a warning, not yet an error
    ],
    ids=["size", "senior_zero", "coupon", "floating", "no_coupon", "sub_coupon", "oc", "uc"],
)
def test_bundled_deal_patched_equals_full_compile(bundled, changes):
    check(bundled, changes)


@pytest.mark.parametrize(
    "changes",
    [
        {"A": {"balance": 75.0}, "E": {"balance": 5.0}},
        {"B": {"balance": 30.0}},  # the percentage reserve of B and the fee on B follow
        {"A": {"coupon": {"kind": "fixed", "rate": 0.045}}},
        {"B": {"coupon": {"kind": "fixed", "rate": 0.06}}},
        {"B": {"coupon": {"kind": "floating", "spread": -0.01}}},
        {"A": {"balance": 55.0}, "B": {"balance": 0.0}, "E": {"balance": 0.0}},
    ],
    ids=["size", "mezz", "senior_coupon", "mezz_fixed", "mezz_spread", "thin"],
)
def test_target_balances_and_percent_reserves_patched_equals_full_compile(changes):
    check(targets_and_percent_reserves(), changes)


def test_a_patched_deal_patched_again_equals_a_full_compile(bundled):
    cd = compile_deal(parse_deal(bundled, source=SOURCE))
    once = with_tranche_terms(cd, {"A": {"balance": 90e6}, "Sub": {"balance": 10e6}})
    twice = with_tranche_terms(once, {"A": {"coupon": {"kind": "fixed", "rate": 0.03}}})
    full = compile_deal(
        parse_deal(
            changed_doc(
                bundled,
                {
                    "A": {"balance": 90e6, "coupon": {"kind": "fixed", "rate": 0.03}},
                    "Sub": {"balance": 10e6},
                },
            ),
            source=SOURCE,
        )
    )
    assert_same_compiled(twice, full)
    assert cd.deal.tranches[0].balance == 95e6  # the original is untouched


def test_patched_deal_runs_as_the_full_compile():
    doc = targets_and_percent_reserves()
    changes = {"A": {"balance": 65.0}, "B": {"coupon": {"kind": "fixed", "rate": 0.07}}}
    patched = with_tranche_terms(compile_deal(parse_deal(doc)), changes)
    full = compile_deal(parse_deal(changed_doc(doc, changes)))
    sc = [parse_scenario({"name": "cdr", "defaults": {"kind": "cdr", "cdr": 0.1}})]
    a = run_waterfall(patched, deterministic_flows(patched, sc))
    b = run_waterfall(full, deterministic_flows(full, sc))
    for name in ("led_tr", "led_per", "sum_tr", "sum_pool"):
        _same(getattr(a, name), getattr(b, name), name)


def test_patched_deal_is_validated_as_it_stands(bundled):
    cd = compile_deal(parse_deal(bundled, source=SOURCE))
    patched = with_tranche_terms(cd, {"A": {"balance": 90e6}})
    import abs_engine.schema.load as load

    def refuse(obj):
        raise AssertionError("validated a second time")

    original = load.revalidated
    load.revalidated = refuse
    try:
        again = compile_deal(patched.deal).deal  # not validated a second time
        assert again.model_dump() == patched.deal.model_dump()
    finally:
        load.revalidated = original


# ---- refused as a full compile refuses ---------------------------------------------------------


def test_notes_above_twice_the_pool_are_refused(bundled):
    err = check_error(bundled, {"A": {"balance": 250e6}})
    assert err.problems[0].path == "tranches"
    assert "at most 2x the pool" in str(err)


def test_schema_values_are_refused_naming_the_field(bundled):
    err = check_error(bundled, {"A": {"balance": -1.0}})
    assert err.problems[0].path == "tranches[0].balance"
    assert err.problems[0].file == SOURCE
    check_error(bundled, {"A": {"coupon": {"kind": "fixed", "rate": 1.5}}})
    check_error(
        bundled, {"A": {"coupon": {"kind": "floating", "spread": 0.01, "floor": 0.05, "cap": 0.01}}}
    )


def test_target_balances_above_a_new_balance_are_refused():
    err = check_error(targets_and_percent_reserves(), {"A": {"balance": 50.0}})
    assert err.problems[0].path == "tranches[0].target_balances"


def test_a_balance_no_step_pays_principal_is_refused():
    doc = base_deal(
        tranches=[
            {"name": "A", "balance": 100.0, "coupon": {"kind": "fixed", "rate": 0.0}},
            {"name": "X", "balance": 0.0, "coupon": {"kind": "fixed", "rate": 0.0}},
        ]
    )
    err = check_error(doc, {"X": {"balance": 5.0}})
    assert "never paid principal" in str(err)


@pytest.mark.parametrize(
    "cd, changes, text",
    [
        ("deal", {"A": {"balance": 1.0}}, "cd must be a CompiledDeal"),
        (None, [("A", {"balance": 1.0})], "changes must be a mapping"),
        (None, {"Z": {"balance": 1.0}}, "unknown tranche 'Z'; tranches are ['A', 'Sub']"),
        (None, {"A": 1.0}, "the terms of tranche 'A' must be a mapping"),
        (None, {"A": {"name": "B"}}, "only balance, coupon can change here, got 'name'"),
    ],
)
def test_bad_arguments_are_refused(bundled, cd, changes, text):
    real = compile_deal(parse_deal(bundled, source=SOURCE))
    with pytest.raises(AbsEngineError, match=text.replace("[", r"\[").replace("]", r"\]")):
        with_tranche_terms(real if cd is None else cd, changes)


def test_a_calendar_registered_anew_does_not_reach_a_patched_deal():
    """The patch rebuilt the schedule from the calendar registry as it stood: a calendar
    registered anew between compiling and sizing gave tranche accruals of other dates than
    the deal's pool and fees (a validator's: payment date 2025-10-15 with tranche accruals of
    a 2025-10-16 one). The compiled deal's rolled dates are kept."""
    import datetime as dt

    from abs_engine import register_calendar

    D = dt.date
    register_calendar("PATCH_TEST", lambda d: d.weekday() < 5)
    doc = base_deal(
        dates={"closing": "2025-07-15", "first_payment": "2025-10-15", "frequency": "quarterly",
               "legal_final": "2026-10-15", "day_count": "ACT/365F",
               "business_day": "following",
               "calendar": {"kind": "named", "name": "PATCH_TEST"}},
        pool={"obligors": [obligor("O1", 100.0, n=5)]},
    )  # fmt: skip
    cd = compile_deal(parse_deal(doc))
    try:
        register_calendar("PATCH_TEST", lambda d: d.weekday() < 5 and d != D(2025, 10, 15))
        patched = with_tranche_terms(cd, {"A": {"balance": 90.0}})
    finally:
        register_calendar("PATCH_TEST", lambda d: d.weekday() < 5)
    assert patched.payment_dates == cd.payment_dates
    np.testing.assert_array_equal(patched.structure.tranche_accrual, cd.structure.tranche_accrual)
