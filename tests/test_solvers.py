"""Monte Carlo solvers: hand-checkable answers, monotonicity, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import abs_engine as ae
from abs_engine.schema import parse_deal
from abs_engine.schema.stochastic import MonteCarloScenario
from abs_engine.solvers import (
    SolverError,
    breakeven,
    condition,
    load_curve,
    sensitivity,
    size_tranche,
    solve_coupon,
    with_parameter,
)
from tests.conftest import quarterly_deal

MC = MonteCarloScenario.model_validate({"kind": "monte_carlo", "name": "t", "seed": 7})


def test_solve_coupon_on_a_riskless_tranche_returns_the_discount_rate():
    c = solve_coupon(quarterly_deal(0.0), MC, "A", load_curve(0.0315), n_paths=2_000)
    assert c == pytest.approx(0.0315, abs=1e-8)
    # a spread of 50bp adds 50bp
    c2 = solve_coupon(
        quarterly_deal(0.0), MC, "A", load_curve(0.0315), spread_bps=50, n_paths=2_000
    )
    assert c2 == pytest.approx(0.0365, abs=1e-8)


def test_solve_coupon_on_a_risky_tranche_is_above_the_discount_rate():
    c = solve_coupon(
        quarterly_deal(0.08),
        MC.model_copy(update={"recovery": None}),
        "A",
        load_curve(0.03),
        n_paths=20_000,
    )
    assert c > 0.03


def test_size_tranche_with_no_default_risk_returns_the_whole_pool():
    out = size_tranche(quarterly_deal(0.0), MC, "A", target_rating="AAA", n_paths=2_000)
    assert out["balance"] == 100e6 and out["share_of_capital"] == 1.0


def test_size_tranche_meets_its_target_and_one_more_step_would_not():
    deal = quarterly_deal(0.06)
    out = size_tranche(deal, MC, "A", target_el=0.001, n_paths=20_000, tol=1e-3)
    assert out["expected_loss"] <= 0.001
    assert 0.5e8 < out["balance"] < 1e8


def test_more_subordination_never_worsens_senior_el_and_higher_pd_never_improves_it():
    deal = quarterly_deal(0.05)
    els = []
    for a in (95e6, 90e6, 85e6, 80e6):
        d = parse_deal({**deal.model_dump(mode="json"), "tranches": [
            {"name": "A", "balance": a, "coupon": {"kind": "fixed", "rate": 0.03}},
            {"name": "Sub", "balance": 100e6 - a, "principal": "residual"},
        ]})  # fmt: skip
        els.append(ae.simulate(d, MC, n_paths=20_000, progress=False).tranches.expected_loss[0])
    assert all(els[k + 1] <= els[k] for k in range(3)) and els[0] > els[-1]
    cd = ae.compile_deal(deal)
    by_pd = [ae.simulate(cd, with_parameter(MC, "pd_multiplier", m), n_paths=20_000, progress=False)
             .tranches.expected_loss[0] for m in (0.5, 1.0, 2.0, 4.0)]  # fmt: skip
    assert all(by_pd[k + 1] >= by_pd[k] for k in range(3)) and by_pd[-1] > by_pd[0]


def test_breakeven_pd_multiplier_for_first_loss_of_the_senior():
    cd = ae.compile_deal(quarterly_deal(0.02))
    m = breakeven(
        cd, MC, "A", "pd_multiplier", condition("el_above", 1e-4), lo=0.1, hi=20.0, n_paths=5_000
    )
    below = ae.simulate(
        cd, with_parameter(MC, "pd_multiplier", m * 0.98), n_paths=5_000, progress=False
    )
    above = ae.simulate(
        cd, with_parameter(MC, "pd_multiplier", m * 1.02), n_paths=5_000, progress=False
    )
    assert below.tranches.expected_loss[0] <= 1e-4 < above.tranches.expected_loss[0]


def test_sensitivity_grid_is_long_form_and_monotone_in_pd():
    cd = ae.compile_deal(quarterly_deal(0.03))
    grid = sensitivity(
        cd, MC, ("pd_multiplier", [1.0, 3.0]), ("recovery", [0.0, 0.5]), n_paths=5_000
    )
    assert len(grid) == 2 * 2 * 2
    a = grid[grid.tranche == "A"].set_index(["pd_multiplier", "recovery"]).expected_loss
    assert a[(3.0, 0.0)] >= a[(1.0, 0.0)] and a[(3.0, 0.0)] >= a[(3.0, 0.5)]


@pytest.mark.parametrize(
    ("text", "path"),
    [("tenor_years,zero_rate\n2,0.02\n1,0.03\n", "row 2.tenor_years"),
     ("tenor_years,zero_rate\n-1,0.02\n", "row 1.tenor_years"),
     # a repeated column with a trailing space went unseen (pandas: "tenor_years .1")
     ("tenor_years ,zero_rate,tenor_years \n1,0.02,5\n5,0.025,1\n", "<columns>"),
     # "#" is no comment: Excel's #N/A dropped its row, 0.025#x read as 0.025
     ("tenor_years,zero_rate\n1,0.02\n#N/A,0.9\n5,0.025\n", "row 2.tenor_years"),
     ("tenor_years,zero_rate\n1,0.02\n5,0.025#x\n", "row 2.zero_rate"),
     # a blank first line: the header is the next (a repeat there went unseen)
     ("\ntenor_years,zero_rate,tenor_years\n1,0.02,5\n5,0.025,1\n", "<columns>")],
)  # fmt: skip
def test_bad_curves_are_clear_errors(tmp_path, text, path):
    p = tmp_path / "curve.csv"
    p.write_text(text)
    with pytest.raises(ae.DealError) as info:
        load_curve(p)
    assert info.value.problems[0].path == path


def test_curve_headers_the_csv_module_reads_otherwise(tmp_path):
    """Lone-CR line ends (Excel's "CSV (Macintosh)") and a header cell over the csv module's
    field limit: the header check raised csv.Error, a traceback; both curves load."""
    p = tmp_path / "cr.csv"
    p.write_text("tenor_years,zero_rate\r1,0.02\r5,0.025\r", newline="")
    assert list(load_curve(p).tenors) == [1.0, 5.0]
    p.write_text("tenor_years,zero_rate," + "x" * 200_000 + "\n1,0.02,1\n5,0.025,1\n")
    assert list(load_curve(p).tenors) == [1.0, 5.0]


def test_curve_table_interpolates_zero_rates(tmp_path):
    p = tmp_path / "curve_test.csv"
    p.write_text("tenor_years,zero_rate\n1,0.02\n3,0.04\n")
    c = load_curve(p)
    df = c.discount_factors(np.array([2.0]), np.array([1.0]))
    assert df[0] == pytest.approx(1.03**-2)


def test_unmeetable_targets_and_bad_names_are_clear_errors():
    deal = quarterly_deal(0.3)
    with pytest.raises(SolverError, match="unknown rating"):
        size_tranche(deal, MC, "A", target_rating="AAAA", n_paths=1_000)
    # principal shared pro rata: the senior loses its share at any size
    doc = deal.model_dump(mode="json")
    doc["waterfalls"]["normal"][1] = {
        "kind": "pay_principal",
        "tranches": ["A", "Sub"],
        "mode": "pro_rata",
    }
    no_rec = MC.model_copy(update={"recovery": None})
    with pytest.raises(SolverError, match="misses the target"):
        size_tranche(parse_deal(doc), no_rec, "A", target_el=0.0, n_paths=2_000)
    with pytest.raises(SolverError, match="no coupon"):
        solve_coupon(deal, MC, "A", load_curve(0.03), n_paths=2_000, bounds=(0.0, 0.001))
    with pytest.raises(SolverError, match="unknown parameter"):
        with_parameter(MC, "volatility", 1.0)


def test_solver_commands_print_json(capsys):
    import json

    from abs_engine.cli import main

    assert main(["price", "--tranche", "A", "--curve", "0.0185", "--paths", "2000", "--json"]) == 0
    assert 0.0185 < json.loads(capsys.readouterr().out)["par_coupon"] < 0.05
    assert (
        main(["size", "--tranche", "A", "--target-el", "0.002", "--paths", "2000", "--json"]) == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["expected_loss"] <= 0.002 and doc["rating_table"]["illustrative"]
    args = [
        "breakeven",
        "--tranche",
        "A",
        "--param",
        "pd_multiplier",
        "--condition",
        "el_above:0.001",
    ]
    assert main([*args, "--paths", "2000", "--json"]) == 0
    assert 0 < json.loads(capsys.readouterr().out)["breakeven"] < 20
    grid = [
        "sensitivity",
        "--x",
        "pd_multiplier=1,2",
        "--y",
        "correlation=0.1,0.3",
        "--paths",
        "2000",
    ]
    assert main([*grid, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["grid"]) == 2 * 2 * 2


def test_solver_commands_bad_input_exit_2(tmp_path, capsys):
    from abs_engine.cli import main

    assert main(["size", "--tranche", "A", "--target", "AAAA", "--paths", "1000"]) == 2
    assert "unknown rating" in capsys.readouterr().err
    curve = tmp_path / "c.csv"
    curve.write_text("tenor_years,zero_rate\n3,0.02\n1,0.03\n")
    assert main(["price", "--tranche", "A", "--curve", str(curve), "--paths", "1000"]) == 2
    err = capsys.readouterr().err
    assert "tenors must increase" in err and "Traceback" not in err
    assert (
        main(
            [
                "breakeven",
                "--tranche",
                "A",
                "--param",
                "cpr",
                "--range",
                "0,0.01",
                "--paths",
                "1000",
            ]
        )
        == 2
    )
    assert "already fails" in capsys.readouterr().err  # the senior has some EL even at cpr 0
    assert main(["price", "--tranche", "Z", "--curve", "0.02", "--paths", "1000"]) == 2
    assert "unknown tranche" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--range", "0.5"], "two numbers"),
        (["--range", "1,2,3"], "two numbers"),
        (["--condition", "el_above:x"], "needs a number"),
        (["--condition", "el_above"], "needs a number"),
        (["--condition", "first_loss:0.5"], "takes no value"),
        (["--condition", "nope"], "unknown --condition"),
    ],
)
def test_breakeven_argument_errors_are_clean(capsys, args, message):
    from abs_engine.cli import main

    base = ["breakeven", "--tranche", "A", "--param", "pd_multiplier", "--paths", "500"]
    assert main([*base, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_size_tranche_uses_the_tables_basis(tmp_path):
    """With a default-probability table the sized tranche meets the PD threshold."""
    p = tmp_path / "pd.csv"
    p.write_text("rating,horizon_years,default_probability_pct\nX,1,0.5\nX,3,1.5\nY,1,5\nY,3,15\n")
    from abs_engine.metrics import load_rating_table

    out = size_tranche(quarterly_deal(0.05), MC, "A", target_rating="X", n_paths=5_000,
                       rating_table=load_rating_table(p))  # fmt: skip
    assert out["basis"] == "pd" and out["default_probability"] <= out["limit"]


def test_default_timing_never_negative():
    from abs_engine.solvers import default_timing

    class Fake:
        def __init__(self, n: int) -> None:
            self.n_periods = n

    for n in range(1, 200):
        t = default_timing(Fake(n))  # type: ignore[arg-type]
        assert min(t) >= 0.0 and abs(sum(t) - 1.0) < 1e-12


def test_a_tranche_without_balance_is_refused_by_breakeven_and_sensitivity(tmp_path, capsys):
    """A tranche of no balance has no loss, shortfall probability or yield (NaN): breakeven
    said the condition "already fails at 0", and sensitivity's table showed NaN in every
    cell; both refuse it by name, and sensitivity's table shows the most senior tranche with
    a balance by default."""
    from abs_engine.cli import main

    deal = Path(__file__).resolve().parents[1] / "waterfalls" / "huake_2025.toml"
    text = deal.read_text().replace("balance = 95_000_000", "balance = 0", 1)
    p = tmp_path / "d.toml"
    p.write_text(text.replace("balance = 5_000_000", "balance = 100_000_000", 1))
    cd = ae.compile_deal(ae.load_deal(p))
    assert cd.deal.tranches[0].balance == 0 and cd.deal.tranches[1].balance == 100_000_000
    with pytest.raises(SolverError, match="'A' has no balance"):
        breakeven(cd, ae.load_scenario("huake_mc"), "A", "pd_multiplier",
                  condition("el_above", 0.01), lo=0.0, hi=5.0)  # fmt: skip
    grid = ["--x", "pd_multiplier=1,2", "--y", "recovery=0.2,0.3", "--paths", "500"]
    for argv in (["breakeven", str(p), "--tranche", "A", "--param", "pd_multiplier"],
                 ["sensitivity", str(p), "--tranche", "A", *grid]):  # fmt: skip
        assert main(argv) == 2
        assert "'A' has no balance" in capsys.readouterr().err
    assert main(["sensitivity", str(p), *grid]) == 0
    out = capsys.readouterr().out
    assert "Sub expected loss" in out and "nan" not in out


def test_solver_arguments_found_by_an_independent_review(tmp_path, capsys):
    """recovery and ip_haircut together: refused in either order (with recovery last, the
    haircut axis changed nothing); a curve and spread discounting at -100% or below:
    refused (scipy's brentq raised on a NaN, a traceback); breakeven given a Deal or None:
    an ArgumentTypeError (an AttributeError)."""
    from abs_engine.cli import main
    from abs_engine.errors import ArgumentTypeError

    cd = ae.compile_deal(ae.load_deal())
    sc = ae.load_scenario("huake_mc")
    for x, y in (("ip_haircut", "recovery"), ("recovery", "ip_haircut")):
        with pytest.raises(SolverError, match="cannot be varied together"):
            sensitivity(cd, sc, (x, [0.5, 0.9]), (y, [0.1, 0.3]), n_paths=100)
    curve = tmp_path / "z.csv"
    curve.write_text("tenor_years,zero_rate\n0.5,-0.05\n3,-0.05\n")
    argv = ["price", "--tranche", "A", "--curve", str(curve), "--spread-bps", "-10000"]
    assert main([*argv, "--paths", "200"]) == 2
    err = capsys.readouterr().err
    assert "-100%" in err and "Traceback" not in err
    for bad in (ae.load_deal(), None):
        with pytest.raises(ArgumentTypeError, match="CompiledDeal"):
            breakeven(bad, sc, "A", "pd_multiplier", condition("el_above", 1e-3), lo=0, hi=20)
    # a search that still holds at the parameter's own limit says it never fails there
    # (it said "widen the range", which cannot be)
    never = condition("el_above", 0.5)
    with pytest.raises(SolverError, match="it never fails"):
        breakeven(cd, sc, "A", "cpr", never, lo=0.0, hi=1.0, n_paths=300)
    # the loss falls as prepayment rises, and cpr cannot go below 0: nothing to widen
    with pytest.raises(SolverError, match="lo is the end of the values it may take"):
        breakeven(cd, sc, "A", "cpr", never, lo=0.0, hi=0.5, n_paths=300)
    with pytest.raises(SolverError, match=r"pd_multiplier = 1.2, the range's hi .*: widen the"):
        breakeven(cd, sc, "A", "pd_multiplier", never, lo=1.0, hi=1.2, n_paths=300)
    # what to try when it holds at both ends (a validator: "widen the range" was the advice
    # for 2 paths where no path lost, and for a range the wrong way round)
    el = condition("el_above", 1e-3)
    with pytest.raises(SolverError, match=r"the same at both ends with 2 paths; raise the paths"):
        breakeven(cd, sc, "A", "pd_multiplier", el, lo=1.0, hi=20.0, n_paths=2)
    with pytest.raises(SolverError, match=r"moves away from failing .* the other way round"):
        breakeven(cd, sc, "A", "recovery", el, lo=0.3, hi=0.9, n_paths=1_000)
    with pytest.raises(SolverError, match=r"lo is the end of the values it may take: it never"):
        breakeven(cd, sc, "A", "recovery", el, lo=0.0, hi=0.9, n_paths=1_000)


def test_the_recovery_parameter_keeps_the_deals_own_lags():
    """A scenario without a recovery model of its own uses the deal's (here 40%, received at
    once); moving ``recovery`` replaces the rate and keeps each obligor's lag from the deal
    (a lag of 4 periods was forced on it, past the one-period deal's end: every recovery
    was lost, and recovery 0.4 and 0.9 gave the same loss as 0)."""
    from abs_engine.compile.model import compile_model
    from abs_engine.synthetic import one_period_deal

    doc = one_period_deal(50, 0.02, [0.0, 0.1])
    doc["pool"]["recovery"] = {"rate": 0.4, "lag_periods": 0}
    cd = ae.compile_deal(parse_deal(doc))
    sc = MonteCarloScenario.model_validate(
        {"kind": "monte_carlo", "name": "inherit",
         "defaults": {"correlation": {"kind": "fixed", "value": 0.2}}}
    )  # fmt: skip
    moved = with_parameter(sc, "recovery", 0.4)
    assert moved.recovery is not None and moved.recovery.lag_periods is None
    model = compile_model(cd, moved)
    assert (model.lag_min == 0).all() and (model.recovery_rate == 0.4).all()
    kw = {"n_paths": 4_000, "seed": 3, "progress": False}
    base = ae.simulate(cd, sc, **kw).tranches.iloc[-1]
    same = ae.simulate(cd, moved, **kw).tranches.iloc[-1]
    assert same.expected_loss == base.expected_loss  # the deal's own assumptions, bit for bit
    better = ae.simulate(cd, with_parameter(sc, "recovery", 0.9), **kw).tranches.iloc[-1]
    assert better.expected_loss < 0.5 * base.expected_loss


def test_solver_and_stress_documents_carry_the_stamp(capsys):
    """Every JSON document carries a ``stamp`` (README): the solvers' and ``stress``'s had
    none. The deal's hash is its file's, and the run's paths, seed and sampling are there."""
    import hashlib
    import json

    from abs_engine.cli import main
    from tests.conftest import ROOT

    deal = ROOT / "waterfalls" / "huake_2025.toml"
    digest = hashlib.sha256(deal.read_bytes()).hexdigest()
    for argv in (["price", "--tranche", "A", "--curve", "0.02", "--paths", "500", "--json"],
                 ["stress", "--json"]):  # fmt: skip
        assert main(argv) == 0
        doc = json.loads(capsys.readouterr().out)
        inputs = {i["role"]: i for i in doc["stamp"]["inputs"]}
        assert inputs["deal"]["sha256"] == digest, argv[0]
        assert doc["stamp"]["engine"].startswith("abs-engine")
    price = json.loads((main(["price", "--tranche", "A", "--curve", "0.02", "--paths", "500",
                              "--seed", "3", "--json"]), capsys.readouterr().out)[1])  # fmt: skip
    assert price["stamp"]["n_paths"] == 500 and price["stamp"]["seed"] == 3


@pytest.mark.parametrize("day_count", ["30/360", "ACT/360"])
def test_a_riskless_tranche_with_its_own_day_count_prices_at_par_at_the_flat_rate(day_count):
    """A validator's A2 (ACT/360 in a 30/360 deal) priced at 2.5634% on a flat 2.6% curve:
    the curve compounded at the deal's accruals, the coupons at the tranche's. A riskless
    tranche prices at par exactly at the flat rate under any day count of its own."""
    doc = quarterly_deal(0.0).model_dump(mode="json")
    doc["dates"]["day_count"] = "ACT/365F"
    doc["tranches"][0]["day_count"] = day_count
    deal = parse_deal(doc)
    c = solve_coupon(deal, MC, "A", load_curve(0.026), n_paths=1_000)
    assert c == pytest.approx(0.026, abs=1e-8)


def test_a_floating_tranche_is_priced_by_its_spread_over_the_base_rate():
    """A floater at base + 0.1% (deal base rate 2%), riskless, on a flat 2.5% curve: its par
    spread is 0.5% exactly, and it stays a floater; a floor of 3% above base + spread makes
    the coupon 3% whatever the spread: no spread prices it at par (a validator's floater
    was priced as a fixed coupon of 2.5%, its spread, floor and cap dropped)."""
    doc = quarterly_deal(0.0).model_dump(mode="json")
    doc["base_rate"] = 0.02
    doc["tranches"][0]["coupon"] = {"kind": "floating", "spread": 0.001}
    s = solve_coupon(parse_deal(doc), MC, "A", load_curve(0.025), n_paths=1_000)
    assert s == pytest.approx(0.005, abs=1e-8)
    doc["tranches"][0]["coupon"]["floor"] = 0.03
    with pytest.raises(SolverError, match="no spread over the base rate in"):
        solve_coupon(parse_deal(doc), MC, "A", load_curve(0.025), n_paths=1_000,
                     bounds=(-0.01, 0.005))  # fmt: skip


def test_a_floaters_par_spread_may_be_negative_by_default():
    """A riskless floater on a base rate of 3% priced on a flat 2.6% curve: its par spread
    is -0.4%, found within the default bounds (-0.05, 0.5) for a spread (a reviewer's LPR
    above the curve: no spread in [0%, 50%] under a coupon's bounds)."""
    doc = quarterly_deal(0.0).model_dump(mode="json")
    doc["base_rate"] = 0.03
    doc["tranches"][0]["coupon"] = {"kind": "floating", "spread": 0.005}
    s = solve_coupon(parse_deal(doc), MC, "A", load_curve(0.026), n_paths=1_000)
    assert s == pytest.approx(-0.004, abs=1e-8)
