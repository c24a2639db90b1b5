"""Agency-style deterministic analysis: breakeven default rate, large-obligor test, coverage."""

from __future__ import annotations

import numpy as np
import pytest

import abs_engine as ae
from abs_engine.kernels import layout as L
from abs_engine.schema import DeterministicScenario, parse_deal
from abs_engine.solvers import (
    base_case_default_rate,
    breakeven_default_rate,
    coverage_table,
    default_timing,
    large_obligor_test,
)
from tests.conftest import ZERO_COUPON, annual_dates, base_deal, obligor


def simple_sequential() -> ae.CompiledDeal:
    """Pool 100m bullet over 3 years at 0%, A 90m / B 10m at 0%, no fees: no excess spread,
    so with zero recovery the senior survives exactly its 10% credit enhancement."""
    deal = base_deal(
        dates=annual_dates(3),
        pool={"obligors": [obligor(f"O{i}", 10e6, n=3) for i in range(10)]},
        tranches=[
            {"name": "A", "balance": 90e6, "coupon": ZERO_COUPON},
            {"name": "B", "balance": 10e6, "coupon": ZERO_COUPON},
        ],
        waterfalls={"normal": [{"kind": "pay_principal", "tranches": ["A", "B"]}]},
    )
    return ae.compile_deal(parse_deal(deal))


def test_breakeven_equals_credit_enhancement_without_excess_spread_or_recovery():
    cd = simple_sequential()
    a = breakeven_default_rate(cd, "A")
    assert a.breakeven_default_rate == pytest.approx(0.10, abs=2e-6)
    assert breakeven_default_rate(cd, "B").breakeven_default_rate < 1e-5
    # base case: 2% annual PD over 3 years
    assert base_case_default_rate(cd) == pytest.approx(1 - 0.98**3)
    assert a.multiple == pytest.approx(a.breakeven_default_rate / (1 - 0.98**3))
    # recovery raises the breakeven: with 50% recovered, 20% of defaults cost 10%
    assert breakeven_default_rate(
        cd, "A", recovery_rate=0.5
    ).breakeven_default_rate == pytest.approx(0.2, abs=2e-6)


def test_breakeven_with_and_without_support_on_the_bundled_deal():
    cd = ae.compile_deal(ae.load_deal())
    with_sup = breakeven_default_rate(cd, "A", recovery_rate=0.2, recovery_lag=4)
    without = breakeven_default_rate(cd, "A", recovery_rate=0.2, recovery_lag=4, support=False)
    # an uncapped undertaking from a provider that stands pays every shortfall
    assert with_sup.breakeven_default_rate == 1.0
    assert 0.05 < without.breakeven_default_rate < 0.5
    assert without.multiple == pytest.approx(
        without.breakeven_default_rate / base_case_default_rate(cd)
    )


def test_default_timing_is_a_valid_curve():
    cd = ae.compile_deal(ae.load_deal())
    t = default_timing(cd)
    assert len(t) == cd.n_periods and sum(t) == pytest.approx(1.0, abs=1e-12)
    assert all(t[k] >= t[k + 1] for k in range(len(t) - 1))


def test_large_obligor_test_on_the_bundled_deal():
    cd = ae.compile_deal(ae.load_deal())
    table = large_obligor_test(cd, max_obligors=3, period=4, recovery_rate=0.2, recovery_lag=4)
    assert table["defaulted_balance"].tolist() == [18e6, 34e6, 48e6]
    assert table["paid_in_full_with_support"].all()
    assert not table.loc[1, "paid_in_full_without_support"]
    # the same figure as the equivalent explicit scenario (provider absent from period 1)
    sc = DeterministicScenario.model_validate({
        "name": "x", "obligor_defaults": [{"largest": 2, "period": 4}],
        "recovery": {"rate": 0.2, "lag_periods": 4},
        "support_defaults": [{"support": "originator_undertaking", "period": 1}],
    })  # fmt: skip
    res = ae.run_deterministic(cd, [sc])
    assert table.loc[1, "loss_without_support"] == res.raw.sum_tr[0, 0, L.ST_LOSS] > 0


def test_coverage_table_matches_the_ledgers():
    cd = ae.compile_deal(ae.load_deal())
    scs = [ae.load_scenario(s) for s in ("huake_base", "cdr_stress")]
    table = coverage_table(cd, scs)
    res = ae.run_deterministic(cd, scs)
    for k, name in enumerate(("huake_base", "cdr_stress")):
        np.testing.assert_array_equal(
            table[name].to_numpy(), res.raw.led_per[k, :, L.LP_COVERAGE_RATIO]
        )
    assert (table["cdr_stress"] <= table["huake_base"] + 1e-12).all()


def test_coverage_table_columns_are_one_a_scenario(capsys):
    """The table's columns are the scenarios' names: a name given twice (pandas would keep two
    columns of one name, and the console table failed on them) or the name of another column
    is an error, from the API and, before any breakeven is computed, from ``stress``."""
    from abs_engine.cli import main

    cd = ae.compile_deal(ae.load_deal())
    sc = ae.load_scenario("cdr_stress")
    with pytest.raises(ae.InputError, match="two scenarios are named 'cdr_stress'"):
        coverage_table(cd, [sc, ae.load_scenario("huake_base"), sc])
    for name in ("period", "payment_date"):
        with pytest.raises(ae.InputError, match=f"cannot be named '{name}'"):
            coverage_table(cd, [sc.model_copy(update={"name": name})])
    for json_flag in ([], ["--json"]):
        assert main(["stress", "-s", "cdr_stress", "-s", "cdr_stress", *json_flag]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --scenario: two scenarios are named 'cdr_stress'"), err


def test_unknown_tranche_is_a_clear_error():
    with pytest.raises(ae.AbsEngineError, match="unknown tranche"):
        breakeven_default_rate(simple_sequential(), "Z")


def test_stress_command_json(capsys):
    import json

    from abs_engine.cli import main

    assert main(["stress", "--recovery", "0.2", "--lag", "4", "-s", "huake_base", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    by_support = {r["support"]: r for r in doc["breakeven"] if r["tranche"] == "A"}
    assert by_support[True]["breakeven_default_rate"] == 1.0
    assert 0 < by_support[False]["breakeven_default_rate"] < 1
    assert len(doc["large_obligor_test"]["rows"]) == 3
    assert len(doc["coverage_ratio"]) == 12 and "huake_base" in doc["coverage_ratio"][0]


def test_a_multiple_over_a_base_case_of_no_defaults():
    """With no base-case defaults the multiple is infinite for a tranche that withstands
    some defaults, and undefined (NaN, printed "-") for a first-loss tranche whose
    breakeven is 0 too: 0/0 was reported as infinite ("infx")."""
    from abs_engine.report.console import _multiple

    m = 50_000_000.0
    pool = {"obligors": [{**obligor("O1", m), "pd": {"kind": "flat", "annual": 0.0}},
                         {**obligor("O2", m), "pd": {"kind": "flat", "annual": 0.0}}]}  # fmt: skip
    tranches = [{"name": "A", "balance": m, "coupon": ZERO_COUPON},
                {"name": "B", "balance": m, "coupon": ZERO_COUPON}]  # fmt: skip
    waterfall = {"normal": [{"kind": "pay_principal", "tranches": ["A", "B"]}]}
    cd = ae.compile_deal(parse_deal(base_deal(pool=pool, tranches=tranches, waterfalls=waterfall)))
    senior, junior = (breakeven_default_rate(cd, t) for t in ("A", "B"))
    assert senior.base_case_default_rate == 0.0 and senior.breakeven_default_rate > 0.4
    assert senior.multiple == np.inf and _multiple(senior.multiple, False) == "∞"
    assert junior.breakeven_default_rate == 0.0 and np.isnan(junior.multiple)
    assert _multiple(junior.multiple, False) == "-"
