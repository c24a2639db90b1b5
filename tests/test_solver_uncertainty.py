"""Monte Carlo uncertainty of the solvers' answers: the par coupon's and the breakeven value's
standard errors (``with_se=True``) are positive, shrink like 1/sqrt(paths), match the spread of
the answers over seeds, and leave the answers themselves unchanged."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import abs_engine as ae
from abs_engine.report import console
from abs_engine.schema.stochastic import MonteCarloScenario
from abs_engine.solvers import breakeven, condition, load_curve, solve_coupon
from abs_engine.solvers.structuring import (
    _batch_plan,
    _breakeven_se,
    _condition_metric,
    _replicated_se,
    _secant_slope,
)
from tests.conftest import quarterly_deal, run_cli

MC = MonteCarloScenario.model_validate({"kind": "monte_carlo", "name": "t", "seed": 7})
#: a risky senior: 8% annual PDs and no recovery, so its PV is noisy in the paths
RISKY = quarterly_deal(0.08)
NO_RECOVERY = MC.model_copy(update={"recovery": None})
CURVE = load_curve(0.03)
EL_LIMIT = condition("el_above", 0.002)


def _coupon(n_paths: int, seed: int = 7) -> dict:
    return solve_coupon(RISKY, NO_RECOVERY, "A", CURVE, n_paths=n_paths, seed=seed, with_se=True)


@pytest.fixture(scope="module")
def cd_be():
    return ae.compile_deal(quarterly_deal(0.03))


def _breakeven(cd, n_paths: int, seed: int = 7) -> dict:
    return breakeven(cd, MC, "A", "pd_multiplier", EL_LIMIT, lo=0.1, hi=20.0, n_paths=n_paths,
                     seed=seed, with_se=True)  # fmt: skip


# --- the pieces -----------------------------------------------------------------------------


def test_replicated_se_is_the_batch_means_formula():
    x = [1.0, 2.0, 4.0, 7.0]
    assert _replicated_se(x, [10] * 4) == pytest.approx(np.std(x, ddof=1) / 2)
    # unequal batches weigh by their paths; all equal estimates give zero
    assert _replicated_se([3.0, 3.0, 3.0], [4, 5, 6]) == 0.0


def test_batch_plan_covers_the_paths_on_new_distinct_seeds():
    plan = _batch_plan(20_003, 7)
    assert len(plan) == 20 and sum(m for m, _ in plan) == 20_003
    seeds = [s for _, s in plan]
    assert len(set(seeds)) == 20 and 7 not in seeds
    assert plan == _batch_plan(20_003, 7) != _batch_plan(20_003, 8)  # reproducible, by seed
    assert len(_batch_plan(3, 7)) == 3 and len(_batch_plan(1, 7)) == 1


def test_secant_slope_takes_the_farthest_evaluations_within_the_window():
    pts = [(0.0, 0.0), (0.9, 0.9), (0.99, 0.99), (1.01, 1.03), (1.1, 1.3), (5.0, 99.0)]
    assert _secant_slope(pts, 1.0, 0.2) == pytest.approx((1.3 - 0.9) / 0.2)
    assert _secant_slope(pts, 1.0, 0.001) == pytest.approx((1.03 - 0.99) / 0.02)  # nearest
    assert math.isnan(_secant_slope(pts[:2], 1.0, 0.2))  # nothing on the right


@pytest.mark.parametrize(
    ("kind", "value", "metric"),
    [("el_above", 0.01, "expected_loss"), ("first_loss", 0.0, "expected_loss"),
     ("pd_above", 0.05, "default_probability"), ("irr_below", 0.02, "irr")],
)  # fmt: skip
def test_each_condition_names_its_metric(kind, value, metric):
    assert _condition_metric(condition(kind, value)) == metric


def test_a_condition_of_ones_own_has_no_single_metric():
    assert _condition_metric(lambda r: r.wal_years < 3) is None  # reads another column
    assert _condition_metric(lambda r: r.expected_loss < 0.01 and r.irr > 0.0) is None


# --- par coupon -----------------------------------------------------------------------------


def test_par_coupon_with_se_is_the_same_coupon_with_a_positive_se():
    c = solve_coupon(RISKY, NO_RECOVERY, "A", CURVE, n_paths=2_000)
    out = _coupon(2_000)
    assert out["par_coupon"] == c  # bitwise: the search is untouched
    assert out["method"] == "batch_replications" and out["batches"] == 20
    assert 0 < out["se"] < 0.01 and math.isfinite(out["se"])
    lo, hi = out["ci95"]
    assert lo < c < hi and hi - lo == pytest.approx(2 * 2.093 * out["se"], rel=1e-3)


def test_the_par_coupons_se_is_at_least_the_searchs_own_loss_se(monkeypatch):
    """Batch replications on other seeds can all miss a rare loss the search's own paths
    hold: a validator's coupon 0.9 bp off reported an SE of 4e-11. The SE is at least the
    search's own run's standard error of the tranche's PV loss (yuan) over the slope."""
    import abs_engine.solvers.structuring as S

    monkeypatch.setattr(S, "_replicated_se", lambda values, sizes: 1e-9)  # batches saw nothing
    out = _coupon(2_000)
    assert out["method"] == "search_loss_se"
    res = ae.simulate(S.with_tranche_terms(ae.compile_deal(RISKY), {"A": {"coupon": {
        "kind": "fixed", "rate": out["par_coupon"]}}}), NO_RECOVERY, n_paths=2_000,
        progress=False)  # fmt: skip
    row = res.tranches.set_index("tranche").loc["A"]
    assert row.expected_loss_se > 0
    # the floor, over a slope of about the balance × a year's accrual: far above 1e-9 yuan
    assert out["se"] > 1e-3 * row.expected_loss_se


@pytest.mark.slow  # a few seconds: run by .ci/run and -m slow
def test_par_coupon_se_shrinks_like_one_over_root_paths():
    ratio = np.mean([_coupon(4_000, s)["se"] for s in (1, 2)]) / np.mean(
        [_coupon(1_000, s)["se"] for s in (1, 2)]
    )
    assert 0.3 <= ratio <= 0.7


def test_a_riskless_par_coupon_has_no_uncertainty():
    out = solve_coupon(quarterly_deal(0.0), MC, "A", load_curve(0.0315), n_paths=500,
                       with_se=True)  # fmt: skip
    assert out["par_coupon"] == pytest.approx(0.0315, abs=1e-8) and out["se"] == 0.0


def test_one_path_gives_no_par_coupon_se():
    out = solve_coupon(RISKY, NO_RECOVERY, "A", CURVE, n_paths=1, with_se=True)
    assert out["se"] is None and out["ci95"] is None


@pytest.mark.slow
def test_par_coupon_se_matches_the_spread_over_seeds():
    outs = [_coupon(1_000, seed) for seed in range(1, 9)]
    spread = np.std([o["par_coupon"] for o in outs], ddof=1)
    assert 0.4 <= spread / np.mean([o["se"] for o in outs]) <= 2.5


# --- breakeven ------------------------------------------------------------------------------


def test_breakeven_with_se_is_the_same_value_with_a_positive_se(cd_be):
    v = breakeven(cd_be, MC, "A", "pd_multiplier", EL_LIMIT, lo=0.1, hi=20.0, n_paths=2_000)
    out = _breakeven(cd_be, 2_000)
    assert out["value"] == v and out["method"] == "delta"
    assert 0 < out["se"] < 1 and math.isfinite(out["se"])
    lo, hi = out["ci95"]
    assert lo < v < hi and hi - lo == pytest.approx(2 * 1.96 * out["se"])


@pytest.mark.slow  # a few seconds: run by .ci/run and -m slow
def test_breakeven_se_shrinks_like_one_over_root_paths(cd_be):
    ratio = np.mean([_breakeven(cd_be, 4_000, s)["se"] for s in (1, 2)]) / np.mean(
        [_breakeven(cd_be, 1_000, s)["se"] for s in (1, 2)]
    )
    assert 0.3 <= ratio <= 0.7


def test_breakeven_searched_downwards_has_an_se(cd_be):
    out = breakeven(cd_be, MC.model_copy(update={"recovery": None}), "A", "recovery",
                    condition("el_above", 0.002), lo=1.0, hi=0.0, n_paths=2_000,
                    with_se=True)  # fmt: skip
    assert out["method"] == "delta" and 0 < out["se"] < 1
    assert 0.0 <= out["ci95"][0] < out["value"] < out["ci95"][1] <= 1.0


def test_first_loss_and_conditions_of_ones_own_get_no_se_and_say_why(cd_be):
    first = breakeven(cd_be, MC, "A", "pd_multiplier", condition("first_loss"), lo=0.0,
                      hi=20.0, n_paths=1_000, with_se=True)  # fmt: skip
    assert first["se"] is None and first["method"] == "none"
    assert "first path" in first["reason"]
    own = breakeven(cd_be, MC, "A", "pd_multiplier", lambda r: r.expected_loss < 0.002 or
                    r.wal_years > 99, lo=0.1, hi=20.0, n_paths=1_000, with_se=True)  # fmt: skip
    assert own["se"] is None and own["ci95"] is None and "reason" in own
    assert own["value"] == _breakeven(cd_be, 1_000)["value"]  # the same search


@pytest.mark.slow
def test_breakeven_se_matches_the_spread_over_seeds(cd_be):
    outs = [_breakeven(cd_be, 1_000, seed) for seed in range(1, 9)]
    spread = np.std([o["value"] for o in outs], ddof=1)
    assert 0.4 <= spread / np.mean([o["se"] for o in outs]) <= 2.5


# --- the commands -----------------------------------------------------------------------------


@pytest.mark.slow  # a few seconds: run by .ci/run and -m slow
def test_price_and_breakeven_commands_report_the_se():
    r = run_cli("price", "--tranche", "A", "--curve", "0.0185", "--paths", "2000", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert 0 < doc["par_coupon_se"] < doc["par_coupon"]
    assert doc["par_coupon_ci95"][0] < doc["par_coupon"] < doc["par_coupon_ci95"][1]
    assert doc["par_coupon_se_method"] == "batch_replications"
    text = run_cli("price", "--tranche", "A", "--curve", "0.0185", "--paths", "2000").stdout
    assert f"{doc['par_coupon']:.4%} (SE {doc['par_coupon_se']:.4%}; 95% CI" in text

    be = ["breakeven", "--tranche", "A", "--param", "pd_multiplier", "--paths", "2000"]
    r = run_cli(*be, "--condition", "el_above:0.001", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert 0 < doc["breakeven_se"] and doc["breakeven_se_method"] == "delta"
    assert doc["breakeven_ci95"][0] < doc["breakeven"] < doc["breakeven_ci95"][1]
    doc = json.loads(run_cli(*be, "--json").stdout)  # first_loss: none, and why
    assert doc["breakeven_se"] is None and doc["breakeven_ci95"] is None
    assert doc["breakeven_se_method"] == "none" and doc["breakeven_se_reason"]


def test_the_printed_answers_carry_the_se_or_why_not():
    text = console.breakeven_text("A", "el_above:0.001", "pd_multiplier", 0.98, 0.07, [0.84, 1.12])
    assert text.endswith("= 0.9800 (SE 0.0700; 95% CI 0.8400 to 1.1200)")
    text = console.breakeven_text("A", "first_loss", "cpr", 0.1, None, None, "a reason")
    assert text.endswith("= 0.1000 (no standard error: a reason)")
    # no standard error says so; a search where no path lost warns (a validator: 2 paths
    # printed 2.0000% with a zero-width interval, 2,000 paths gave 2.0299% ± 0.0229%)
    assert console.price_text("A", "0.02", 0, 0.021) == (
        "par coupon of A over 0.02 + 0 bp: 2.1000% (SE n/a: too few paths, or a value the "
        "coupon does not move)"
    )
    text = console.price_text("A", "0.02", 0, 0.02, 0.0, [0.02, 0.02], n_paths=2, no_loss=True)
    assert "warning: no path lost at this par coupon: 2 paths cannot tell" in text
    assert "warning" not in console.price_text("A", "0.02", 0, 0.02, 1e-4, [0.0198, 0.0202])


def test_the_price_command_warns_when_no_path_of_its_search_lost():
    r = run_cli("price", "--tranche", "A", "--curve", "0.02", "--paths", "2")
    assert r.returncode == 0 and "warning: no path lost at this par coupon: 2 paths" in r.stdout
    out = solve_coupon(RISKY, NO_RECOVERY, "A", CURVE, n_paths=2_000, with_se=True)
    assert out["search_loss_se"] > 0.0


def test_tiny_limits_and_their_standard_errors_are_printed_with_their_digits():
    """An AAA limit of 1.65e-7 and an SE of 1.6e-8 (8.5% of the estimate) printed as
    "0.00002% ± 0.00000%"; sensitivity printed no standard errors at all."""
    import pandas as pd

    out = {"balance": 38e6, "share_of_capital": 0.38, "basis": "el", "metric": 1.93e-7,
           "metric_se": 1.6e-8, "limit": 1.6535e-7, "wal_years": 0.6, "balance_ci95": None,
           "sampling": "importance", "effective_sample_size": 900.0,
           "effective_loss_paths": 5_000.0}  # fmt: skip
    text = console.size_text("A", "AAA", out)
    assert "0.0000193% ± 0.0000016%, limit 0.0000165%" in text
    grid = pd.DataFrame({"pd_multiplier": [1.0, 2.0], "recovery": [0.2, 0.2],
                         "tranche": ["A", "A"], "expected_loss": [2e-7, 4e-7],
                         "expected_loss_se": [3e-8, 5e-8],
                         "implied_rating": ["AAA", "AA+"]})  # fmt: skip
    lines = console.sensitivity_text(grid, "pd_multiplier", "recovery", "A").splitlines()
    assert "0.0000200% (  AAA)" in lines[2] and lines[4] == "standard errors:"
    assert "0.0000030%" in lines[5] and "0.0000050%" in lines[6]


def test_the_sizing_interval_takes_the_metrics_slope_at_the_answer():
    """An expected loss exponential in the balance, m(b) = 1e-5·exp(b / 2M), evaluated as a
    bisection would: 0.4M below the answer and 5.9M above it, among others. The slope at the
    answer is m(answer) / 2M; the secant between those two (the interval's old choice) was
    about twice it, the interval half as wide as it should be."""
    from abs_engine.solvers.structuring import _balance_ci

    answer, total, scale = 37.5e6, 100e6, 2e6
    m = lambda b: 1e-5 * math.exp((b - answer) / scale)  # noqa: E731
    points = [answer - 0.4e6, answer - 0.1e6, answer, answer + 0.2e6, answer + 5.9e6]
    history = [(b, m(b) - m(answer), 1e-6, m(b)) for b in points]
    lo, hi = _balance_ci(history, answer, total)
    slope = m(answer) / scale
    assert (hi - lo) / 2 == pytest.approx(1.96 * 1e-6 / slope, rel=1e-9)
    secant = (m(answer + 5.9e6) - m(answer - 0.4e6)) / 6.3e6
    assert secant > 1.8 * slope  # what the old choice took


@pytest.mark.slow  # a 200,000-path sizing and eight of 10,000: about a minute
def test_the_sizing_interval_covers_a_long_runs_answer_over_seeds():
    """AAA sizing of the bundled deal's senior: over eight seeds of 10,000 paths, the
    intervals' z-scores against a 200,000-path answer spread like a standard normal (they
    spread 1.7 times too wide, four of twelve intervals missing it, before)."""
    from abs_engine.solvers import size_tranche

    deal = ae.load_deal()
    sc = ae.load_scenario("huake_mc", deal)
    kw = {"target_rating": "AAA", "progress": False}
    ref = size_tranche(deal, sc, "A", n_paths=200_000, seed=424242, **kw)["balance"]
    z = []
    for seed in range(1, 9):
        out = size_tranche(deal, sc, "A", n_paths=10_000, seed=seed, **kw)
        lo, hi = out["balance_ci95"]
        z.append((out["balance"] - ref) / ((hi - lo) / 3.92))
    assert np.std(z, ddof=1) < 1.6 and max(abs(v) for v in z) < 3.5, z


def test_a_breakeven_without_a_standard_error_says_why_truly():
    """A standard error of 0 at the bracket's ends was always read as "expected_loss is zero
    where the condition holds", also where every path gives the same nonzero loss (every
    obligor defaulting: a validator's expected loss of 0.0999 at the answer). Each reason
    now says what the bracket's ends show."""

    def reason(history):
        out = _breakeven_se(0.65, 0.649, 0.651, "expected_loss", history, "recovery")
        assert out["se"] is None and out["method"] == "none"
        return out["reason"]

    assert "is zero where the condition holds" in reason([(0.649, 0.0, 0.0), (0.651, 0.2, 0.01)])
    same = reason([(0.649, 0.0999, 0.0), (0.651, 0.1001, 0.0)])
    assert "the same on every path at the bracket's ends" in same and "0.002 wide" in same
    one = reason([(0.649, 0.0999, 0.0), (0.651, 0.1001, 0.01)])
    assert "the same on every path at an end of the bracket" in one
    assert "no finite standard error" in reason([(0.649, 0.1, math.nan), (0.651, 0.1, 0.01)])
    # a standard error at both ends: the delta method's
    out = _breakeven_se(0.65, 0.649, 0.651, "expected_loss",
                        [(0.649, 0.0999, 0.001), (0.651, 0.1001, 0.001)], "recovery")  # fmt: skip
    assert out["method"] == "delta" and out["se"] > 0
