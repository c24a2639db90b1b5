"""Write-down timing, the clean-up call's price and cash released at the end: regression tests
for three bugs an independent validation found, with hand-computed and analytic references.

1. ``write_off`` counted every future recovery as "still to come", including recoveries of
   receivables that had not defaulted yet, so losses were written down late.
2. The clean-up call paid for recoveries of receivables that default after the call (which
   the buyer took performing, at the call price).
3. A path without a shortfall reported a loss of 1e-16 (the PV's rounding residue), so the
   ``first_loss`` breakeven failed at a PD multiplier of 0.

At the end, the earlier review's tests of the same subject (call, write-off, losses recovered
after legal final).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermegauss
from scipy import special, stats

import abs_engine as ae
from abs_engine.cli import main
from abs_engine.compile.model import compile_model
from abs_engine.deterministic import run_waterfall
from abs_engine.kernels import layout as L
from abs_engine.report.frames import pool_summary
from abs_engine.schema import parse_deal
from abs_engine.schema.stochastic import MonteCarloScenario
from abs_engine.simulation import path_flows
from tests.conftest import (
    JIT,
    ZERO_COUPON,
    annual_dates,
    base_deal,
    compensation_fund,
    obligor,
    run,
    tranche_item,
)

APPROX = {"abs": 1e-6}
M = 1_000_000.0


def _five_obligor_deal(**over) -> dict:
    """Five bullet receivables of 1,000,000 at 0% over 4 annual periods; A 3,000,000 and
    B 2,000,000 at 0%, principal due paid sequentially, then write_off."""
    doc = base_deal(
        dates=annual_dates(4),
        pool={"obligors": [obligor(f"O{i}", M, n=4) for i in range(1, 6)]},
        tranches=[
            {"name": "A", "balance": 3 * M, "coupon": {"kind": "fixed", "rate": 0.0}},
            {"name": "B", "balance": 2 * M, "coupon": {"kind": "fixed", "rate": 0.0}},
        ],
        waterfalls={
            "normal": [
                {"kind": "pay_principal", "tranches": ["A", "B"]},
                {"kind": "write_off"},
            ]
        },
    )
    doc.update(over)
    return doc


TWO_THEN_ONE = {
    "obligor_defaults": [
        {"obligor": "O1", "period": 1},
        {"obligor": "O2", "period": 1},
        {"obligor": "O3", "period": 3},
    ]
}


@JIT
@pytest.mark.parametrize("lag", [0, 1])
def test_write_off_counts_only_recoveries_of_receivables_already_defaulted(jit, lag):
    """O1 and O2 default in period 1, O3 in period 3; recovery 40%.

    Lag 0: period 1 receives 800,000 of recoveries, paid to A (principal due 5m − 3m); the
    notes are 4.2m against a performing pool of 3m and nothing to come: write down 1.2m
    (B). The old code also counted O3's 400,000, which has not defaulted yet: 0.8m.
    Period 3: 400,000 recovered and paid to A; notes 3.8m − 0.4m = 3.4m against 2m: write
    down 0.6m (B to 0.2m... B had 0.8m: to 0.2m). Period 4: the 2m pool repays A 1.8m and B
    0.2m. Total written down 1.8m = 3m defaulted less 1.2m recovered.

    Lag 1: the same write-downs — the 800,000 still to come in period 2 counts in period 1
    (defaulted already), O3's does not.
    """
    res = run(
        _five_obligor_deal(),
        {**TWO_THEN_ONE, "recovery": {"rate": 0.4, "lag_periods": lag}},
        jit=jit,
    )
    assert tranche_item(res, "B", L.LT_WRITE_DOWN) == pytest.approx([1.2 * M, 0, 0.6 * M, 0])
    assert tranche_item(res, "A", L.LT_WRITE_DOWN) == pytest.approx([0, 0, 0, 0], **APPROX)
    assert res.sum_tr[0, :, L.ST_LOSS].sum() == pytest.approx(1.8 * M)
    pending = res.flows.flows[0, L.PF_PENDING_RECOVERY]
    assert pending == pytest.approx([0.8 * M, 0, 0.4 * M, 0] if lag else [0, 0, 0, 0])


def _call_deal() -> dict:
    """Four equal-principal receivables of 1,000,000 over 4 annual periods; A 4,000,000 at 0%;
    a clean-up call at pool factor 40% and price 100%; residual to a zero-balance Equity."""
    return base_deal(
        dates=annual_dates(4),
        pool={"obligors": [obligor(f"O{i}", M, n=4, kind="equal_principal") for i in range(4)]},
        tranches=[
            {"name": "A", "balance": 4 * M, "coupon": {"kind": "fixed", "rate": 0.0}},
            {"name": "Equity", "balance": 0.0, "principal": "residual"},
        ],
        waterfalls={
            "normal": [
                {"kind": "pay_principal", "tranches": ["A"]},
                {"kind": "write_off"},
                {"kind": "pay_residual", "tranche": "Equity"},
            ]
        },
        clean_up_call={"pool_factor": 0.4, "price": 1.0},
    )


@JIT
def test_call_buys_only_recoveries_of_receivables_defaulted_by_the_call(jit):
    """Recovery 30% one period after default. Period 1: the four receivables repay 250,000
    each (pool 3m). Period 2: O0 defaults with 750,000 outstanding (recovery 225,000, due in
    period 3); the other three repay 750,000; pool 1.5m = 37.5% ≤ 40%: called. The buyer pays
    1.5m at par plus 225,000 for O0's pending recovery. O1 defaults in period 3 (recovery
    150,000 in period 4): the buyer took it performing, so its recovery is not the trust's
    (the old price added it: 1,875,000).

    Whole deal: cash in 1m + 0.75m + 1.725m = 3.475m, all paid to A; A loses 525,000 =
    O0's 750,000 exposure less its 225,000 recovery value; nothing is released. The pool's
    totals: defaulted 750,000 (O1 defaulted after the call), recovered 225,000 (O0's, sold
    at the call: its recovery would have come after the deal ended, so it was never booked),
    realised loss 525,000."""
    res = run(
        _call_deal(),
        {
            "obligor_defaults": [
                {"obligor": "O0", "period": 2},
                {"obligor": "O1", "period": 3},
            ],
            "recovery": {"rate": 0.3, "lag_periods": 1},
        },
        jit=jit,
    )
    per = res.led_per[0]
    assert res.sum_pool[0, L.SP_CALL_PERIOD] == 1
    assert per[1, L.LP_CALL_PROCEEDS] == pytest.approx(1.725 * M)
    cash_in = per[:, L.LP_CASH_IN].sum()
    cash_out = per[:, L.LP_PAID_OUT].sum() + per[:, L.LP_CASH_RELEASED].sum()
    assert cash_in == pytest.approx(3.475 * M)
    assert cash_out == pytest.approx(cash_in)
    assert res.sum_tr[0, 0, L.ST_LOSS] == pytest.approx(0.525 * M)
    assert res.sum_tr[0, 0, L.ST_PRINCIPAL_PAID] == pytest.approx(3.475 * M)
    assert per[:, L.LP_CASH_RELEASED].sum() == 0.0
    sp = res.sum_pool[0]
    assert sp[L.SP_DEFAULT] == pytest.approx(0.75 * M)
    assert sp[L.SP_RECOVERY] == pytest.approx(0.225 * M)
    assert sp[L.SP_LOSS] == pytest.approx(0.525 * M)


@JIT
def test_cash_left_without_pay_residual_is_released_on_the_record(jit):
    """One bullet receivable of 100 at 10% over 3 periods; A 100 at 5% and no pay_residual
    step. Each period 10 comes in and 5 goes to A; the excess is carried, and in the final
    period 100 + 10 + 10 carried repays A 100 + 5: 15 is left, released and recorded."""
    deal = base_deal(
        dates=annual_dates(3),
        pool={"obligors": [obligor("O1", 100.0, rate=0.10)]},
        tranches=[{"name": "A", "balance": 100.0, "coupon": {"kind": "fixed", "rate": 0.05}}],
    )
    res = run(deal, jit=jit)
    per = res.led_per[0]
    assert per[:, L.LP_CASH_END] == pytest.approx([5, 10, 0], **APPROX)
    assert per[:, L.LP_CASH_RELEASED] == pytest.approx([0, 0, 15], **APPROX)
    assert res.sum_pool[0, L.SP_CASH_RELEASED] == pytest.approx(15)
    total_in = per[:, L.LP_CASH_IN].sum()
    assert total_in == pytest.approx(per[:, L.LP_PAID_OUT].sum() + 15)


# ---- analytic: expected write-down at every quarter against exact finite-pool quadrature ----

N_OBLIGORS, PD, RHO, RECOVERY, EQUITY = 20, 0.08, 0.2, 0.4, 0.05
N_QUARTERS, N_PATHS, SEED = 8, 40_000, 11


def _quarterly_pool(lag: int) -> tuple[ae.CompiledDeal, object]:
    """20 bullet receivables of 1,000,000 at 0% over 8 quarters, flat annual PD 8%; Senior
    95% and Equity 5% at 0%; pay principal due sequentially, then write off. Gaussian
    copula, ρ = 0.2, recovery 40% after ``lag`` quarters."""
    doc = base_deal(
        dates={
            "closing": "2025-01-01",
            "first_payment": "2025-04-01",
            "frequency": "quarterly",
            "legal_final": "2027-01-01",
            "day_count": "30/360",
            "business_day": "none",
        },
        pool={
            "obligors": [
                {**obligor(f"O{i}", M, n=N_QUARTERS), "pd": {"kind": "flat", "annual": PD}}
                for i in range(N_OBLIGORS)
            ]
        },
        tranches=[
            {
                "name": "Senior",
                "balance": (1 - EQUITY) * N_OBLIGORS * M,
                "coupon": {"kind": "fixed", "rate": 0.0},
            },
            {
                "name": "Equity",
                "balance": EQUITY * N_OBLIGORS * M,
                "coupon": {"kind": "fixed", "rate": 0.0},
            },
        ],
        waterfalls={
            "normal": [
                {"kind": "pay_principal", "tranches": ["Senior", "Equity"]},
                {"kind": "write_off"},
            ]
        },
    )
    cd = ae.compile_deal(parse_deal(doc))
    sc = MonteCarloScenario.model_validate(
        {
            "kind": "monte_carlo",
            "name": "quarterly",
            "defaults": {"copula": "gaussian", "correlation": {"kind": "fixed", "value": RHO}},
            "recovery": {"kind": "rate", "rate": RECOVERY, "lag_periods": lag},
        }
    )
    return cd, compile_model(cd, sc)


def _exact_cumulative_write_down(cum_pd: float) -> tuple[float, float]:
    """Expected cumulative write-down (share of the pool) of Equity and Senior by a horizon
    whose cumulative PD is ``cum_pd``: E[min(L, e)] and E[max(L − e, 0)] with
    L = (1 − R)·K/N and K | Z ~ Binomial(N, p(Z)), p(z) = Φ((Φ⁻¹(PD) − √ρ z) / √(1 − ρ)),
    by 96-node Gauss–Hermite quadrature over Z."""
    z, w = hermegauss(96)
    w = w / w.sum()
    p = special.ndtr((special.ndtri(cum_pd) - np.sqrt(RHO) * z) / np.sqrt(1 - RHO))
    k = np.arange(N_OBLIGORS + 1)
    pmf = (w[:, None] * stats.binom.pmf(k[None, :], N_OBLIGORS, p[:, None])).sum(0)
    loss = (1 - RECOVERY) * k / N_OBLIGORS
    return float(pmf @ np.minimum(loss, EQUITY)), float(pmf @ np.maximum(loss - EQUITY, 0.0))


@pytest.mark.slow
@pytest.mark.parametrize("lag", [0, 2])
def test_expected_write_down_at_every_quarter_matches_finite_pool_quadrature(lag):
    """With the receivables bullet at 0%, a quarter's defaults stop the performing pool and
    their recoveries (received, or pending from defaults already happened) repay the Senior;
    the write-off leaves the notes equal to performing pool + recoveries to come, so the
    cumulative write-down by quarter q is min(L_q, 5%) for the Equity and max(L_q − 5%, 0) for
    the Senior, whatever the recovery lag. Every quarter's Monte Carlo mean (40,000 paths,
    full ledgers) is within 4 standard errors of the exact value. (With a lag, defaults of
    the last quarters recover after legal final and lose everything in the final quarter,
    so the final quarter is checked only with lag 0.)"""
    cd, model = _quarterly_pool(lag)
    res = run_waterfall(cd, path_flows(cd, model, SEED, range(N_PATHS)))
    pool = N_OBLIGORS * M
    cum = np.cumsum(res.led_tr[:, :, :, L.LT_WRITE_DOWN], axis=1) / pool  # [P, T, J]
    cum_pd = special.ndtr(model.class_threshold[0])  # unconditional cumulative PD by quarter
    quarters = range(N_QUARTERS) if lag == 0 else range(N_QUARTERS - lag)
    for q in quarters:
        exact = _exact_cumulative_write_down(float(cum_pd[q]))
        for j, name in enumerate(("Equity", "Senior")):
            col = cum[:, q, 1 - j]
            mean, se = col.mean(), col.std(ddof=1) / np.sqrt(N_PATHS)
            # within 4 standard errors (a column without spread must equal the exact value)
            assert abs(mean - exact[j]) <= 4.0 * se, (lag, q + 1, name, mean, exact[j], se)
    # the Equity is written down early: by the first quarter already, not only at the end
    assert cum[:, 0, 1].mean() > 0.2 * _exact_cumulative_write_down(float(cum_pd[0]))[0]


# ---- bug 3: a path with no shortfall loses exactly 0 ----


def test_zero_defaults_give_exactly_zero_loss_on_the_bundled_deal():
    """PD multiplier 0: no obligor or provider defaults, every tranche paid in full: the
    expected loss, its standard error and P(shortfall) are exactly 0, not 1e-16."""
    deal = ae.load_deal()
    doc = ae.load_scenario("huake_mc", deal).model_dump()
    doc["defaults"]["pd_multiplier"] = 0.0
    sc = MonteCarloScenario.model_validate(doc)
    res = ae.simulate(deal, sc, n_paths=2_000, seed=3, progress=False)
    a = res.tranches.set_index("tranche").loc["A"]
    assert a["expected_loss"] == 0.0
    assert a["expected_loss_se"] == 0.0
    assert a["default_probability"] == 0.0


def test_first_loss_breakeven_answers_on_the_bundled_deal(capsys):
    rc = main(
        ["breakeven", "--tranche", "A", "--param", "pd_multiplier", "--paths", "2000", "--json"]
    )
    out = capsys.readouterr()
    assert rc == 0, out.err
    doc = json.loads(out.out)
    assert doc["breakeven"] > 0.0


# ---- from review: defects found earlier, each with the hand arithmetic ----

EXACT = {"abs": 1e-9}


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
    assert res.led_per[0, :, L.LP_CALL_PROCEEDS] == pytest.approx([0, 50, 0, 0], **EXACT)
    assert tranche_item(res, "A", L.LT_PRINCIPAL_PAID) == pytest.approx([15, 65, 0, 0], **EXACT)
    no_call = run({k: v for k, v in deal.items() if k != "clean_up_call"}, sc)
    assert no_call.sum_tr[0, 0, L.ST_PRINCIPAL_PAID] == pytest.approx(80, **EXACT)
    # the pool's totals: O1's 40 defaulted, 20 recovered through the call, 20 lost; had
    # its recovery been due after legal final (a lag of 5), nothing sold and 40 lost (both
    # were booked after the deal ended: recovered 0 and lost 0 before)
    for lag, recovered in ((2, 20.0), (5, 0.0)):
        sc["recovery"]["lag_periods"] = lag
        for jit in (False, True):
            sp = run(deal, sc, jit=jit).sum_pool[0]
            assert sp[L.SP_CALL_PERIOD] == 1, (lag, jit)
            assert sp[L.SP_DEFAULT] == pytest.approx(40, **EXACT)
            assert sp[L.SP_RECOVERY] == pytest.approx(recovered, **EXACT), (lag, jit)
            assert sp[L.SP_LOSS] == pytest.approx(40 - recovered, **EXACT), (lag, jit)


def test_recoveries_after_legal_final_count_only_the_trusts_defaults():
    """The deterministic pool summary is the trust's up to a clean-up call: of the recoveries
    due after legal final it counts those of receivables defaulted by the call. O1 40 defaults
    in period 1 and O2 (30 left after two payments of 15) in period 3; each recovers 50% five
    periods later, after the 4-period deal. Called after period 2, the trust loses O1's 20
    only (it counted O2's 15 too: a validator's 2,226 yuan on the bundled deal, all of it
    recoveries of defaults after the call); without the call, both: 35."""
    deal = base_deal(
        dates=annual_dates(4),
        pool={"obligors": [obligor("O1", 40, n=3), obligor("O2", 60, n=4, kind="equal_principal")]},
        clean_up_call={"pool_factor": 0.3},
    )
    sc = {
        "obligor_defaults": [{"obligor": "O1", "period": 1}, {"obligor": "O2", "period": 3}],
        "recovery": {"rate": 0.5, "lag_periods": 5},
    }
    uncalled = {k: v for k, v in deal.items() if k != "clean_up_call"}
    for doc, call_period, lost in ((deal, 2, 20.0), (uncalled, None, 35.0)):
        summary = pool_summary(run(doc, sc))
        assert summary["clean_up_call_period"] == call_period
        assert summary["recovery_after_legal_final"] == pytest.approx(lost, **EXACT)
        # with one recovery rate: defaulted x rate = recovered + recovered after legal final
        assert summary["defaulted"] * 0.5 == pytest.approx(
            summary["recovered"] + summary["recovery_after_legal_final"], **EXACT
        )


def test_no_coverage_ratio_after_a_clean_up_call():
    """The periods after a call have no coverage ratio: their ledger rows held 0.0, which
    Monte Carlo averaged as a defined ratio of 0 (a validator's deal called on every path
    showed 0.000x ± 0.000 with a defined share of 1; the bundled deal's last period 1.877
    instead of 1.900, 3.7 SE off)."""
    deal = base_deal(
        dates=annual_dates(4),
        pool={"obligors": [obligor("O1", 40, n=3), obligor("O2", 60, n=4, kind="equal_principal")]},
        clean_up_call={"pool_factor": 0.3},
    )
    sc = {"obligor_defaults": [{"obligor": "O1", "period": 1}]}
    for jit in (False, True):
        res = run(deal, sc, jit=jit)
        assert res.sum_pool[0, L.SP_CALL_PERIOD] == 1
        cov = res.led_per[0, :, L.LP_COVERAGE_RATIO]
        assert np.isfinite(cov[:2]).all() and np.isnan(cov[2:]).all(), (jit, cov)
        assert np.isnan(res.led_tr[0, 2:, :, L.LT_COVERAGE_RATIO]).all()
    # Monte Carlo: the bundled deal called in period 1 on every path (the first quarter's
    # principal alone takes the pool factor to 0.917)
    doc = ae.load_deal().model_dump(mode="json", exclude_none=True)
    called = parse_deal({**doc, "clean_up_call": {"pool_factor": 0.95, "price": 1.0}})
    res = ae.simulate(called, "huake_mc", n_paths=2_000, seed=5, progress=False)
    cf = res.cashflows
    assert (cf["coverage_ratio_defined_share"].iloc[1:] == 0.0).all()
    assert cf["coverage_ratio"].iloc[1:].isna().all()
    assert cf["coverage_ratio_defined_share"].iloc[0] == 1.0


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
    assert tranche_item(res, "A", L.LT_PRINCIPAL_PAID) == pytest.approx([0, 50, 0], **EXACT)


def test_write_off_spares_recoveries_still_to_come():
    """A 80, B 20; O1 50 defaults in period 1 with 25 to be recovered a period later. The
    deficiency is 100 - 50 performing - 25 pending = 25: B 20, A 5. The recovery then pays A
    (not the residual), and O2's 50 pays A's last 50: A loses 5, B 20."""
    deal = base_deal(
        pool={"obligors": [obligor("O1", 50, n=3), obligor("O2", 50, n=3)]},
        tranches=[
            {"name": "A", "balance": 80, "coupon": ZERO_COUPON},
            {"name": "B", "balance": 20, "coupon": ZERO_COUPON},
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
    assert tranche_item(res, "A", L.LT_WRITE_DOWN) == pytest.approx([5, 0, 0], **EXACT)
    assert tranche_item(res, "B", L.LT_WRITE_DOWN) == pytest.approx([20, 0, 0], **EXACT)
    assert tranche_item(res, "A", L.LT_PRINCIPAL_PAID) == pytest.approx([0, 25, 50], **EXACT)
    assert tranche_item(res, "E", L.LT_RESIDUAL_PAID).sum() == 0.0


def test_loss_recovered_after_legal_final_is_booked_and_compensated():
    """O1 100 defaults in the last period; its recovery would come after legal final, so the
    deal books the whole 100 as lost then, and a fund paying 100% with no lag makes A whole."""
    deal = base_deal(
        dates=annual_dates(2),
        pool={"obligors": [obligor("O1", 100, n=2)]},
        support=[compensation_fund(share=1.0, lag=0)],
    )
    res = run(
        deal,
        {
            "obligor_defaults": [{"obligor": "O1", "period": 2}],
            "recovery": {"rate": 0.5, "lag_periods": 1},
        },
    )
    assert res.led_per[0, :, L.LP_LOSS] == pytest.approx([0, 100], **EXACT)
    assert res.led_per[0, :, L.LP_COMPENSATION] == pytest.approx([0, 100], **EXACT)
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
    assert res.led_sup[0, :, 0, L.LS_REQUESTED] == pytest.approx([0, 100], **EXACT)
    assert res.led_sup[0, :, 0, L.LS_PAID].sum() == 0.0


def test_monte_carlo_pool_metrics_are_the_collaterals_whatever_the_call():
    """The pool's default count, default, loss, recovery and prepayment rates describe the
    collateral over its whole term (README, Conventions): the bundled deal with a clean-up
    call at a pool factor of 0.9 (called in its first periods on most paths) gives every
    path the same pool metrics as without a call, while the notes are paid off early."""
    doc = ae.load_deal().model_dump(mode="json", exclude_none=True)
    called = parse_deal({**doc, "clean_up_call": {"pool_factor": 0.9, "price": 1.0}})
    uncalled = parse_deal({k: v for k, v in doc.items() if k != "clean_up_call"})
    sc = ae.load_scenario("huake_mc")
    kw = {"n_paths": 2_000, "seed": 5, "keep_paths": True, "progress": False}
    a, b = ae.simulate(called, sc, **kw), ae.simulate(uncalled, sc, **kw)
    pool_cols = ["pool.default_count", "pool.default_rate", "pool.loss_rate",
                 "pool.recovery_rate", "pool.prepayment_rate"]  # fmt: skip
    assert set(pool_cols) <= set(a.paths.columns)
    assert a.paths[pool_cols].equals(b.paths[pool_cols])
    assert (a.paths["pool.default_count"] > 0).mean() > 0.2  # defaults to count
    # the call did end it
    assert a.paths["A.wal_years"].mean() < 0.8 * b.paths["A.wal_years"].mean()


@pytest.mark.parametrize("jit", [False, True])
def test_a_clean_up_call_records_the_compensation_claims_it_cuts_off(jit):
    """O2 (90 of 100) defaults in period 1, nothing recovered; a fund owes 50% of the loss,
    45, two periods later. The pool factor is then 10%: the deal is called in period 1 and
    ends. The 45 falls due after the deal: it is claimed in the call period and never paid,
    as a claim due after legal final is (it vanished: requested 0 in every period, while
    A lost the 45 the fund pays without the call)."""
    deal = base_deal(
        dates=annual_dates(4),
        pool={"obligors": [obligor("O1", 10, n=4), obligor("O2", 90, n=4)]},
        tranches=[{"name": "A", "balance": 100, "coupon": {"kind": "fixed", "rate": 0.0}}],
        support=[compensation_fund(share=0.5, lag=2)],
        clean_up_call={"pool_factor": 0.10, "price": 1.0},
    )
    sc = {"obligor_defaults": [{"obligor": "O2", "period": 1}],
          "recovery": {"rate": 0.0, "lag_periods": 0}}  # fmt: skip
    res = run(deal, sc, jit=jit)
    call = int(res.sum_pool[0, L.SP_CALL_PERIOD])
    assert call >= 0
    requested = res.led_sup[0, :, 0, L.LS_REQUESTED]
    assert requested.sum() == pytest.approx(45.0, **EXACT) and requested[call] == requested.sum()
    assert res.led_sup[0, :, 0, L.LS_PAID].sum() == 0.0
    no_call = run({k: v for k, v in deal.items() if k != "clean_up_call"}, sc, jit=jit)
    assert no_call.led_sup[0, :, 0, L.LS_PAID].sum() == pytest.approx(45.0, **EXACT)
