"""Distribution metrics of the Monte Carlo: percentiles, LGD, modified duration, support."""

from __future__ import annotations

import numpy as np
import pytest

import abs_engine as ae
from abs_engine.metrics.montecarlo import (
    hist_quantile,
    hist_upper_edge,
    loss_given_default,
    mean_se,
    modified_duration,
    sample_quantile,
)
from abs_engine.metrics.rating import RatingTable, implied_ratings
from abs_engine.report.montecarlo import MP_NAMES, MT_NAMES, metric_names
from abs_engine.schema import parse_deal
from abs_engine.schema.stochastic import MonteCarloScenario
from tests.conftest import annual_dates, base_deal, obligor

MC = MonteCarloScenario.model_validate({"kind": "monte_carlo", "name": "m", "seed": 3})


def test_histogram_percentiles_agree_with_exact_ones_within_a_bin():
    hist = ae.simulate(n_paths=30_000, seed=2, progress=False)
    exact = ae.simulate(n_paths=30_000, seed=2, keep_paths=True, progress=False)
    for col, width in (
        ("irr_p05", 1.5 / 4000),
        ("wal_years_p05", 3.01 / 4000),
        ("coverage_ratio_p05", 5 / 4000),
    ):
        np.testing.assert_allclose(hist.tranches[col], exact.tranches[col], atol=width)
    # the per-period coverage 5th percentile never exceeds the mean
    cf = hist.cashflows.dropna(subset=["coverage_ratio"])
    assert (cf["coverage_ratio_p05"] <= cf["coverage_ratio"] + 5 / 4000).all()


def test_lgd_is_el_over_default_probability():
    res = ae.simulate(n_paths=30_000, seed=2, progress=False)
    a = res.tranches.iloc[0]
    assert a.lgd == pytest.approx(a.expected_loss / a.default_probability)
    assert 0 < a.lgd_se < a.lgd


def test_yields_are_floored_at_minus_100_percent():
    res = ae.simulate(n_paths=20_000, seed=2, keep_paths=True, progress=False)
    assert res.paths["Sub.irr"].min() >= -1.0
    assert (res.paths["A.irr"] <= 0.0279 + 1e-12).all()  # never more than its coupon


def test_yield_floor_pass_is_skipped_only_where_it_cannot_return():
    """tranche_yield skips the floor pass where g = -balance + the cash added in order is
    > 0 (no negative cash or accrual) and the floor is below 0: the pass's value (in floats,
    divisions and all) is then never <= 0, so it cannot return the floor. Checked on
    adversarial cash and accruals (zeros, denormals, tiny and huge periods up to infinite
    ones, whose floor is not below 0; cash just above the balance), and against the solver:
    where the pass would return the floor, the solver does."""
    from abs_engine.kernels.montecarlo import _value_at_floor_py, tranche_yield_py

    rng = np.random.default_rng(11)
    seen = {"skipped": 0, "floor": 0}
    scales = (0.0, 5e-324, 1e-300, 1e-9, 0.25, 1.0, 7.5, 1e3)
    for _ in range(4_000):
        n = int(rng.integers(1, 14))
        accrual = rng.choice(scales, n) * rng.random(n)
        accrual[rng.integers(n)] = rng.choice((1e-12, 0.25, 1.0, 40.0, 2e9, np.inf))
        cash = rng.choice(scales, n) * rng.random(n)
        balance = float(cash.sum() * rng.choice((0.5, 1.0 - 1e-15, 1.0, 1.0 + 1e-15, 2.0)))
        if balance <= 0.0:
            continue
        g = -balance
        for c in cash.tolist():
            g += c
        lo = -1.0
        if lo <= -1.0 / accrual.max():
            lo = -1.0 / accrual.max() + 1e-9
        with np.errstate(all="ignore"):
            f_lo = _value_at_floor_py(cash, accrual, balance, lo)
            y = tranche_yield_py(cash, accrual, balance, 0.03)
        if g > 0.0 and lo < 0.0:
            seen["skipped"] += 1
            assert not f_lo <= 0.0, (cash, accrual, balance)
        elif f_lo <= 0.0 and cash.sum() > 0.0:
            seen["floor"] += 1
            assert y == lo
    assert min(seen.values()) > 100, seen
    # the floor at or above 0 (an accrual of 1e9 or more): the pass decides, bound or not
    for big in (2e9, np.inf):
        cash, accrual = np.array([0.0, 150.0]), np.array([0.25, big])
        lo = -1.0 / big + 1e-9
        with np.errstate(all="ignore"):
            assert _value_at_floor_py(cash, accrual, 100.0, lo) <= 0.0
            assert tranche_yield_py(cash, accrual, 100.0, 0.03) == lo


def test_modified_duration_of_a_riskless_bullet():
    """100 at 4% bullet over 3 years (30/360): cash 4, 4, 104; Macaulay
    (1·4/1.04 + 2·4/1.04² + 3·104/1.04³) / 100 = 2.8861; modified = that / 1.04."""
    deal = base_deal(
        dates=annual_dates(3),
        pool={
            "obligors": [obligor("O1", 100.0, rate=0.05, n=3, pd={"kind": "flat", "annual": 0.0})]
        },
        tranches=[{"name": "A", "balance": 100.0, "coupon": {"kind": "fixed", "rate": 0.04}}],
    )
    res = ae.simulate(parse_deal(deal), MC, n_paths=2_000, progress=False)
    mac = (1 * 4 / 1.04 + 2 * 4 / 1.04**2 + 3 * 104 / 1.04**3) / 100
    assert res.tranches.modified_duration[0] == pytest.approx(mac / 1.04, rel=1e-12)
    assert res.tranches.irr[0] == pytest.approx(0.04, abs=1e-12)


def test_modified_duration_discounts_at_the_tranches_own_day_count():
    """The bullet above with the deal on ACT/360 (accruals 365/360) and the tranche on 30/360
    (accruals 1): the tranche's cash is still 4, 4, 104, and its duration at its coupon is
    the same 2.8861 / 1.04 = 2.77509, compounded at its own accruals as its coupons and its
    yield are (at the deal's it was 2.77500)."""
    deal = base_deal(
        dates={**annual_dates(3), "day_count": "ACT/360"},
        pool={
            "obligors": [obligor("O1", 100.0, rate=0.05, n=3, pd={"kind": "flat", "annual": 0.0})]
        },
        tranches=[{"name": "A", "balance": 100.0, "coupon": {"kind": "fixed", "rate": 0.04},
                   "day_count": "30/360"}],
    )  # fmt: skip
    res = ae.simulate(parse_deal(deal), MC, n_paths=1_000, progress=False)
    mac = (1 * 4 / 1.04 + 2 * 4 / 1.04**2 + 3 * 104 / 1.04**3) / 100
    assert res.cashflows["A.interest_paid"].to_numpy() == pytest.approx([4, 4, 4], abs=1e-12)
    assert res.tranches.modified_duration[0] == pytest.approx(mac / 1.04, rel=1e-12)
    assert res.tranches.irr[0] == pytest.approx(0.04, abs=1e-12)


def test_support_drawn_probability_and_amount():
    res = ae.simulate(n_paths=30_000, seed=2, keep_paths=True, progress=False)
    drawn = res.paths["A.support_received"] > 0.01
    p, se = res.pool.loc["support_drawn_probability", ["mean", "se"]]
    assert abs(p - drawn.mean()) < 1e-12 and se > 0


# --- the reductions themselves (abs_engine.metrics.montecarlo), on hand-computed inputs -------


def test_mean_se_from_sums():
    """Values 1, 2, 3, 4: sum 10, squares 30; mean 2.5, sample variance (30 - 4·2.5²)/3 = 5/3,
    se sqrt(5/3 / 4). One value has no standard error; none has no mean."""
    s, sq, n = np.array([10.0, 7.0, 0.0]), np.array([30.0, 49.0, 0.0]), np.array([4.0, 1.0, 0.0])
    mean, se = mean_se(s, sq, n)
    np.testing.assert_allclose(mean[:2], [2.5, 7.0])
    assert se[0] == pytest.approx(np.sqrt(5 / 12))
    assert np.isnan(se[1]) and np.isnan(mean[2]) and np.isnan(se[2])


def test_histogram_quantiles():
    """Counts 0, 2, 2, 0 on [0, 4]: half the paths are in bin 1 (centre 1.5), three quarters
    by bin 2 (centre 2.5). Counts 1, 1, 1, 1 on [0, 1]: the median's bin ends at 0.5."""
    h = np.array([0, 2, 2, 0])
    assert hist_quantile(h, 0.5, 0.0, 4.0) == 1.5
    assert hist_quantile(h, 0.75, 0.0, 4.0) == 2.5
    assert np.isnan(hist_quantile(np.zeros(4, dtype=np.int64), 0.5, 0.0, 4.0))
    assert hist_upper_edge(np.ones(4, dtype=np.int64), 0.5) == 0.5
    assert hist_upper_edge(np.ones(4, dtype=np.int64), 0.0) == 0.25


def test_a_percentile_past_an_open_histogram_top_is_unknown():
    """Yields above 50% and coverage ratios above 5 are counted in their histogram's last
    bin: a percentile that falls there is only known to be at least its lower edge, and is
    NaN, not the bin's centre. End to end: a residual tranche of a pool at 8% over notes at
    3% yields above 100%, and its median yield from the histogram is NaN (it was 0.4998),
    while its kept paths give the exact one; the notes' stays inside the range."""
    h = np.array([0, 2, 2, 5])
    assert hist_quantile(h, 0.5, 0.0, 4.0) == 3.5
    assert np.isnan(hist_quantile(h, 0.5, 0.0, 4.0, open_top=True))
    assert hist_quantile(h, 0.2, 0.0, 4.0, open_top=True) == 1.5
    deal = base_deal(
        pool={"obligors": [obligor(f"O{i}", 1e6, rate=0.08, n=3) for i in range(8)]},
        tranches=[
            {"name": "A", "balance": 7.6e6, "coupon": {"kind": "fixed", "rate": 0.03}},
            {"name": "E", "balance": 0.4e6, "principal": "residual"},
        ],
        waterfalls={"normal": [
            {"kind": "pay_interest", "tranches": ["A"]},
            {"kind": "pay_principal", "tranches": ["A", "E"]},
            {"kind": "pay_residual", "tranche": "E"},
        ]},
    )  # fmt: skip
    cd = ae.compile_deal(parse_deal(deal))
    sc = MonteCarloScenario.model_validate(
        {
            "kind": "monte_carlo",
            "name": "t",
            "recovery": {"kind": "rate", "rate": 0.4, "lag_periods": 1},
        }
    )
    kw = {"n_paths": 2_000, "seed": 7, "progress": False}
    binned = ae.simulate(cd, sc, **kw).tranches.set_index("tranche")
    kept = ae.simulate(cd, sc, keep_paths=True, **kw).tranches.set_index("tranche")
    assert kept.loc["E", "irr_p50"] > 0.5 and np.isnan(binned.loc["E", "irr_p50"])
    assert abs(binned.loc["A", "irr_p50"] - kept.loc["A", "irr_p50"]) < 0.001


def test_sample_quantile_leaves_out_undefined_paths():
    assert sample_quantile(np.array([np.nan, 1.0, 2.0, 3.0]), 0.5) == 2.0
    assert np.isnan(sample_quantile(np.array([np.nan, np.nan]), 0.5))


def test_loss_given_default_and_duration_by_hand():
    """EL 2%, P 5%: LGD 40%; no shortfall: no LGD. A 3-year zero-coupon 100 at 5% a year:
    Macaulay duration 3, modified 3 / 1.05."""
    lgd, lgd_se = loss_given_default(
        np.array([0.02, 0.0]), np.array([0.001, 0.0]), np.array([0.05, 0.0]),
        np.array([0.002, 0.0]), 10_000,
    )  # fmt: skip
    assert lgd[0] == pytest.approx(0.4) and lgd_se[0] > 0
    assert np.isnan(lgd[1]) and np.isnan(lgd_se[1])
    ones = np.ones(3)
    d = modified_duration(np.array([0.0, 0.0, 100.0]), np.cumsum(ones), ones, 0.05, 1)
    assert d == pytest.approx(3 / 1.05, rel=1e-14)
    assert np.isnan(modified_duration(np.zeros(3), np.cumsum(ones), ones, 0.05, 1))


def test_implied_ratings_follow_the_table_basis():
    """Thresholds AAA 0.1%, BBB 1% at every horizon: EL 0.05% with P 5% is AAA on the EL
    basis and below BBB on the PD basis."""
    kw = {"ratings": ("AAA", "BBB"), "source": "<test>", "illustrative": False}
    h = {"AAA": np.array([1.0]), "BBB": np.array([1.0])}
    th = {"AAA": np.array([0.001]), "BBB": np.array([0.01])}
    el, p, wal = np.array([0.0005, np.nan]), np.array([0.05, 0.0]), np.array([2.0, 2.0])
    by_el = RatingTable(horizons=h, thresholds=th, basis="el", **kw)
    by_pd = RatingTable(horizons=h, thresholds=th, basis="pd", **kw)
    assert implied_ratings(by_el, el, p, wal) == ["AAA", "n/a"]
    assert implied_ratings(by_pd, el, p, wal) == ["below BBB", "AAA"]


def test_one_vocabulary_for_means_and_paths():
    """Every per-path tranche column averages to the tranche-table column of the same name."""
    res = ae.simulate(n_paths=2_048, seed=2, keep_paths=True, progress=False)
    assert list(res.paths.columns) == metric_names(res.deal.tranche_names)
    for name, _ in MT_NAMES:
        for j, t in enumerate(res.deal.tranche_names):
            assert res.tranches[name][j] == pytest.approx(
                res.paths[f"{t}.{name}"].mean(), rel=1e-9, nan_ok=True
            )
    for name, _ in MP_NAMES:
        assert res.pool.loc[name, "mean"] == pytest.approx(
            res.paths[f"pool.{name}"].mean(), rel=1e-9, nan_ok=True
        )
