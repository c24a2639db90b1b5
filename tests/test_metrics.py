"""Distribution metrics of the Monte Carlo: percentiles, LGD, modified duration, support."""

from __future__ import annotations

import numpy as np
import pytest

import abs_engine as ae
from abs_engine.schema import parse_deal
from abs_engine.schema.stochastic import MonteCarloScenario
from tests.conftest import base_deal, obligor
from tests.test_reference_deals import annual_dates

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


def test_support_drawn_probability_and_amount():
    res = ae.simulate(n_paths=30_000, seed=2, keep_paths=True, progress=False)
    drawn = res.paths["A.support_received"] > 0.01
    p, se = res.pool.loc["support_drawn_probability", ["mean", "se"]]
    assert abs(p - drawn.mean()) < 1e-12 and se > 0
