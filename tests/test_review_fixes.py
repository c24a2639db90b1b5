"""Regression tests for defects found in review, each with the hand arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

import abs_engine as ae
from abs_engine.compile.model import compile_model
from abs_engine.kernels import layout as L
from abs_engine.schema import parse_deal
from abs_engine.schema.stochastic import MonteCarloScenario
from tests.conftest import base_deal, obligor, run, tranche_item
from tests.test_reference_deals import annual_dates

APPROX = {"abs": 1e-9}
ZERO = {"kind": "fixed", "rate": 0.0}


def test_clean_up_call_buys_defaulted_receivables_at_their_recovery():
    """O1 40 (bullet) defaults in period 1, 50% recovered two periods later; O2 60 pays 15 a
    period. After period 2 the performing pool is 30 (factor 0.3): the call pays 30 plus the
    20 still to be recovered. A receives 15, 65: 80 in all, as without the call."""
    deal = base_deal(
        dates=annual_dates(4),
        pool={"obligors": [obligor("O1", 40, n=3), obligor("O2", 60, n=4, kind="equal_principal")]},
        clean_up_call={"pool_factor": 0.3},
    )
    sc = {
        "obligor_defaults": [{"obligor": "O1", "period": 1}],
        "recovery": {"rate": 0.5, "lag_periods": 2},
    }
    res = run(deal, sc)
    assert res.led_per[0, :, L.LP_CALL_PROCEEDS] == pytest.approx([0, 50, 0, 0], **APPROX)
    assert tranche_item(res, "A", L.LT_PRINCIPAL_PAID) == pytest.approx([15, 65, 0, 0], **APPROX)
    no_call = run({k: v for k, v in deal.items() if k != "clean_up_call"}, sc)
    assert no_call.sum_tr[0, 0, L.ST_PRINCIPAL_PAID] == pytest.approx(80, **APPROX)


def test_no_clean_up_call_on_a_pool_emptied_by_defaults():
    """O1 100 defaults in period 1, half recovered a period later: the performing pool is 0,
    nothing to buy, no call; A gets the 50 recovery."""
    deal = base_deal(
        pool={"obligors": [obligor("O1", 100, n=3)]}, clean_up_call={"pool_factor": 0.3}
    )
    res = run(
        deal,
        {
            "obligor_defaults": [{"obligor": "O1", "period": 1}],
            "recovery": {"rate": 0.5, "lag_periods": 1},
        },
    )
    assert res.sum_pool[0, L.SP_CALL_PERIOD] == -1
    assert tranche_item(res, "A", L.LT_PRINCIPAL_PAID) == pytest.approx([0, 50, 0], **APPROX)


def test_write_off_spares_recoveries_still_to_come():
    """A 80, B 20; O1 50 defaults in period 1 with 25 to be recovered a period later. The
    deficiency is 100 - 50 performing - 25 pending = 25: B 20, A 5. The recovery then pays A
    (not the residual), and O2's 50 pays A's last 50: A loses 5, B 20."""
    deal = base_deal(
        pool={"obligors": [obligor("O1", 50, n=3), obligor("O2", 50, n=3)]},
        tranches=[
            {"name": "A", "balance": 80, "coupon": ZERO},
            {"name": "B", "balance": 20, "coupon": ZERO},
            {"name": "E", "balance": 0.0, "principal": "residual"},
        ],
        waterfalls={"normal": [
            {"kind": "pay_principal", "tranches": ["A", "B"]},
            {"kind": "write_off"},
            {"kind": "pay_residual", "tranche": "E"},
        ]},
    )  # fmt: skip
    res = run(
        deal,
        {
            "obligor_defaults": [{"obligor": "O1", "period": 1}],
            "recovery": {"rate": 0.5, "lag_periods": 1},
        },
    )
    assert tranche_item(res, "A", L.LT_WRITE_DOWN) == pytest.approx([5, 0, 0], **APPROX)
    assert tranche_item(res, "B", L.LT_WRITE_DOWN) == pytest.approx([20, 0, 0], **APPROX)
    assert tranche_item(res, "A", L.LT_PRINCIPAL_PAID) == pytest.approx([0, 25, 50], **APPROX)
    assert tranche_item(res, "E", L.LT_RESIDUAL_PAID).sum() == 0.0


def test_loss_recovered_after_legal_final_is_booked_and_compensated():
    """O1 100 defaults in the last period; its recovery would come after legal final, so the
    deal books the whole 100 as lost then, and a fund paying 100% with no lag makes A whole."""
    deal = base_deal(
        dates=annual_dates(2),
        pool={"obligors": [obligor("O1", 100, n=2)]},
        support=[
            {
                "kind": "loss_compensation",
                "name": "fund",
                "provider": {"name": "Gov"},
                "share": 1.0,
                "lag_periods": 0,
            }
        ],
    )
    res = run(
        deal,
        {
            "obligor_defaults": [{"obligor": "O1", "period": 2}],
            "recovery": {"rate": 0.5, "lag_periods": 1},
        },
    )
    assert res.led_per[0, :, L.LP_LOSS] == pytest.approx([0, 100], **APPROX)
    assert res.led_per[0, :, L.LP_COMPENSATION] == pytest.approx([0, 100], **APPROX)
    assert res.sum_tr[0, 0, L.ST_LOSS] == 0.0
    # a claim that falls due after legal final is recorded, not paid
    deal["support"][0]["lag_periods"] = 1
    res = run(
        deal,
        {
            "obligor_defaults": [{"obligor": "O1", "period": 2}],
            "recovery": {"rate": 0.5, "lag_periods": 1},
        },
    )
    assert res.led_sup[0, :, 0, L.LS_REQUESTED] == pytest.approx([0, 100], **APPROX)
    assert res.led_sup[0, :, 0, L.LS_PAID].sum() == 0.0


def test_independent_provider_is_independent_under_student_t():
    """With providers.correlated = false the provider draws its own chi-square too, so its
    default rate in the pool's worst 5% of paths equals its overall rate (within 4 SE)."""
    sc = ae.load_scenario("huake_mc")
    doc = {
        **sc.model_dump(),
        "defaults": {
            "copula": "student_t",
            "nu": 3.0,
            "correlation": {"kind": "fixed", "value": 0.3},
        },
    }
    deal = ae.compile_deal(ae.load_deal())
    indep = MonteCarloScenario.model_validate(
        {**doc, "providers": {"correlated": False, "pd_multiplier": 10.0}}
    )
    res = ae.simulate(deal, indep, n_paths=60_000, seed=3, keep_paths=True, progress=False)
    prov = res.paths["pool.provider_default_probability"].to_numpy()
    worst = res.paths["pool.default_rate"].to_numpy() >= np.quantile(
        res.paths["pool.default_rate"], 0.95
    )
    p_all, p_tail = prov.mean(), prov[worst].mean()
    se = np.sqrt(p_tail * (1 - p_tail) / worst.sum())
    assert abs(p_tail - p_all) <= 4 * se, (p_tail, p_all, se)
    corr = MonteCarloScenario.model_validate(
        {**doc, "providers": {"correlated": True, "pd_multiplier": 10.0}}
    )
    res_c = ae.simulate(deal, corr, n_paths=60_000, seed=3, keep_paths=True, progress=False)
    prov_c = res_c.paths["pool.provider_default_probability"].to_numpy()
    assert prov_c[worst].mean() - prov_c.mean() > 4 * se  # and the correlated one is not


def test_monte_carlo_uses_the_deals_recovery_unless_the_scenario_overrides():
    deal = base_deal(
        dates=annual_dates(3),
        pool={
            "obligors": [obligor("O1", 100, n=3, pd={"kind": "flat", "annual": 0.3})],
            "recovery": {"rate": 0.8, "lag_periods": 0},
        },
    )
    cd = ae.compile_deal(parse_deal(deal))
    sc = MonteCarloScenario.model_validate({"kind": "monte_carlo", "name": "x"})
    res = ae.simulate(cd, sc, n_paths=5_000, seed=1, progress=False)
    assert res.pool.loc["recovery_rate", "mean"] == pytest.approx(0.8, abs=1e-12)
    over = MonteCarloScenario.model_validate(
        {
            "kind": "monte_carlo",
            "name": "x",
            "recovery": {"kind": "rate", "rate": 0.1, "lag_periods": 0},
        }
    )
    assert ae.simulate(cd, over, n_paths=5_000, seed=1, progress=False).pool.loc[
        "recovery_rate", "mean"
    ] == pytest.approx(0.1)


def test_pay_principal_defaults_to_pro_rata_for_pro_rata_tranches():
    deal = base_deal(
        pool={"obligors": [obligor("O1", 100, n=2, kind="equal_principal")]},
        dates=annual_dates(2),
        tranches=[
            {"name": "A", "balance": 60, "coupon": ZERO, "principal": "pro_rata"},
            {"name": "B", "balance": 40, "coupon": ZERO, "principal": "pro_rata"},
        ],
        waterfalls={"normal": [{"kind": "pay_principal", "tranches": ["A", "B"]}]},
    )
    res = run(deal)
    assert tranche_item(res, "A", L.LT_PRINCIPAL_PAID) == pytest.approx([30, 30], **APPROX)
    assert tranche_item(res, "B", L.LT_PRINCIPAL_PAID) == pytest.approx([20, 20], **APPROX)


def test_provider_loads_on_its_sector_factor():
    doc = ae.load_deal().model_dump(mode="json")
    doc["support"][0]["provider"]["sector"] = "software"
    cd = ae.compile_deal(parse_deal(doc))
    sc = MonteCarloScenario.model_validate(
        {"kind": "monte_carlo", "name": "s", "defaults": {"factors": "sector"}}
    )
    m = compile_model(cd, sc)
    assert m.factor_names[m.provider_factor[0]] == "software"
    doc["support"][0]["provider"].pop("sector")
    m = compile_model(ae.compile_deal(parse_deal(doc)), sc)
    assert m.factor_names[m.provider_factor[0]] == "semiconductors"  # the largest sector
    doc["support"][0]["provider"]["sector"] = "shipping"
    with pytest.raises(ae.DealError) as info:
        compile_model(ae.compile_deal(parse_deal(doc)), sc)
    assert info.value.problems[0].path == "support[0].provider.sector"


def test_disabled_providers_pay_nothing():
    res = ae.simulate(None, "huake_mc_no_support", n_paths=3_000, seed=1, progress=False)
    assert res.pool.loc["provider_default_probability", "mean"] == 1.0
    assert res.pool.loc["support_paid", "mean"] == 0.0
    assert res.pool.loc["accelerated_probability", "mean"] == 1.0  # the support-default trigger
