"""Hand-computed reference deals. The arithmetic is in each docstring; every test runs both
the plain-Python and the compiled kernel.

All deals use annual periods on 30/360 with no business-day roll, so every accrual fraction is
exactly 1 and an obligor's periodic rate is its annual rate.
"""

from __future__ import annotations

from typing import Any

import pytest

from abs_engine.compile import compile_deal
from abs_engine.errors import DealError
from abs_engine.kernels import layout as L
from abs_engine.schema import parse_deal
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

APPROX = {"abs": 1e-9}


def fixed(rate: float) -> dict:
    return {"kind": "fixed", "rate": rate}


EQUITY = {"name": "Equity", "balance": 0.0, "principal": "residual"}


@JIT
def test_one_tranche_bullet_three_periods(jit):
    """One obligor, 100,000,000 at 5%, bullet over 3 annual periods; tranche A 100,000,000 at
    4%; a fixed trustee fee of 100,000 a period; a zero-balance residual tranche.

    Each period: interest collected 5,000,000; fee 100,000; A interest 4,000,000;
    residual 5,000,000 - 100,000 - 4,000,000 = 900,000. Period 3 also collects the
    100,000,000 principal, all of it to A. A WAL = 3.0 years; nothing is lost.
    """
    deal = base_deal(
        dates=annual_dates(3),
        pool={"obligors": [obligor("O1", 100e6, rate=0.05, n=3)]},
        tranches=[{"name": "A", "balance": 100e6, "coupon": fixed(0.04)}, EQUITY],
        fees=[{"name": "trustee", "fixed": 100_000.0}],
        waterfalls={
            "normal": [
                {"kind": "pay_fee", "fee": "trustee"},
                {"kind": "pay_interest", "tranches": ["A"]},
                {"kind": "pay_principal", "tranches": ["A"]},
                {"kind": "pay_residual", "tranche": "Equity"},
            ]
        },
    )
    res = run(deal, jit=jit)
    assert tranche_item(res, "A", L.LT_INTEREST_PAID) == pytest.approx([4e6, 4e6, 4e6], **APPROX)
    assert tranche_item(res, "A", L.LT_PRINCIPAL_PAID) == pytest.approx([0, 0, 100e6], **APPROX)
    assert tranche_item(res, "A", L.LT_BALANCE_END) == pytest.approx([100e6, 100e6, 0], **APPROX)
    assert tranche_item(res, "Equity", L.LT_RESIDUAL_PAID) == pytest.approx(
        [9e5, 9e5, 9e5], **APPROX
    )
    assert res.led_fee[0, :, 0, L.LF_PAID] == pytest.approx([1e5, 1e5, 1e5], **APPROX)
    a = res.sum_tr[0, 0]
    assert a[L.ST_WAL_YEARS] == pytest.approx(3.0, abs=1e-12)
    assert a[L.ST_LOSS] == 0.0
    assert res.sum_pool[0, L.SP_CASH_RELEASED] == 0.0


@JIT
def test_senior_sub_sequential_default_in_period_2_recovered_two_periods_later(jit):
    """O1 60 and O2 40, both at 10%, bullet over 4 periods. A 80 at 5%, B 20 at 8%,
    sequential; zero-balance residual. O2 defaults in period 2; 50% recovery 2 periods later.

    t1: interest 10. A int 4, B int 1.6. Principal due 100 - 100 = 0. Residual 4.4.
    t2: O2 defaults (no interest from it): interest 6, default 40, pool 60.
        A int 4, B int 1.6; left 0.4; due 100 - 60 = 40 → A principal 0.4 (A 79.6).
    t3: interest 6. A int 79.6 × 5% = 3.98, B 1.6; left 0.42 → A principal 0.42 (A 79.18).
    t4: interest 6 + principal 60 + recovery 20 = 86. A int 79.18 × 5% = 3.959, B 1.6;
        left 80.441; final period, all due: A 79.18, then B 1.261; B writes off 18.739.
    Totals: A principal 80, interest 15.939; B principal 1.261, interest 6.4, loss 18.739;
    pool default 40, recovery 20, realised loss 20 (booked in period 4).
    """
    deal = base_deal(
        dates=annual_dates(4),
        pool={"obligors": [obligor("O1", 60, rate=0.1, n=4), obligor("O2", 40, rate=0.1, n=4)]},
        tranches=[
            {"name": "A", "balance": 80, "coupon": fixed(0.05)},
            {"name": "B", "balance": 20, "coupon": fixed(0.08)},
            EQUITY,
        ],
        waterfalls={
            "normal": [
                {"kind": "pay_interest", "tranches": ["A"]},
                {"kind": "pay_interest", "tranches": ["B"]},
                {"kind": "pay_principal", "tranches": ["A", "B"]},
                {"kind": "pay_residual", "tranche": "Equity"},
            ]
        },
    )
    scenario = {
        "obligor_defaults": [{"obligor": "O2", "period": 2}],
        "recovery": {"rate": 0.5, "lag_periods": 2},
    }
    res = run(deal, scenario, jit=jit)
    per = res.led_per[0]
    assert per[:, L.LP_INTEREST] == pytest.approx([10, 6, 6, 6], **APPROX)
    assert per[:, L.LP_DEFAULT] == pytest.approx([0, 40, 0, 0], **APPROX)
    assert per[:, L.LP_RECOVERY] == pytest.approx([0, 0, 0, 20], **APPROX)
    assert per[:, L.LP_LOSS] == pytest.approx([0, 0, 0, 20], **APPROX)
    assert tranche_item(res, "A", L.LT_INTEREST_PAID) == pytest.approx(
        [4, 4, 3.98, 3.959], **APPROX
    )
    assert tranche_item(res, "A", L.LT_PRINCIPAL_PAID) == pytest.approx(
        [0, 0.4, 0.42, 79.18], **APPROX
    )
    assert tranche_item(res, "B", L.LT_INTEREST_PAID) == pytest.approx([1.6] * 4, **APPROX)
    assert tranche_item(res, "B", L.LT_PRINCIPAL_PAID) == pytest.approx([0, 0, 0, 1.261], **APPROX)
    assert tranche_item(res, "B", L.LT_WRITE_DOWN) == pytest.approx([0, 0, 0, 18.739], **APPROX)
    assert tranche_item(res, "Equity", L.LT_RESIDUAL_PAID) == pytest.approx(
        [4.4, 0, 0, 0], **APPROX
    )
    b = res.sum_tr[0, 1]
    assert b[L.ST_LOSS] == pytest.approx(18.739, **APPROX)
    assert res.sum_tr[0, 0, L.ST_LOSS] == 0.0


@JIT
def test_reserve_drawn_and_refilled(jit):
    """O1 and O2, 50 each at 10%, bullet over 4 periods. A 90 at 6%, Sub 10 residual.
    Reserve: fixed target 6, funded 6 at closing. Waterfall: A interest, draw reserve for A
    interest, fund reserve, principal A then Sub, residual to Sub. O2 defaults in period 2,
    recovery 20% one period later.

    t1: interest 10; A int 5.4; reserve at target; residual 4.6.
    t2: interest 5; A int 5.4 → 5 paid from collections, 0.4 drawn from the reserve (6 → 5.6).
    t3: interest 5 + recovery 10 = 15; A int 5.4; reserve refilled by 0.4 (→ 6);
        due 100 - 50 = 50 → A principal 9.2 (A 80.8).
    t4: final: target 0 releases 6; available 5 + 50 + 6 = 61; A int 80.8 × 6% = 4.848;
        A principal 56.152; A writes off 24.648, Sub writes off 10.
    Cash: in 85, out 91 (A 86.4, Sub 4.6), reserve change -6.
    """
    deal = base_deal(
        dates=annual_dates(4),
        pool={"obligors": [obligor("O1", 50, rate=0.1, n=4), obligor("O2", 50, rate=0.1, n=4)]},
        tranches=[
            {"name": "A", "balance": 90, "coupon": fixed(0.06)},
            {"name": "Sub", "balance": 10, "principal": "residual"},
        ],
        accounts=[
            {"name": "reserve", "target": {"kind": "fixed", "amount": 6}, "initial_balance": 6}
        ],
        waterfalls={
            "normal": [
                {"kind": "pay_interest", "tranches": ["A"]},
                {"kind": "draw_reserve", "account": "reserve", "tranches": ["A"]},
                {"kind": "fund_reserve", "account": "reserve"},
                {"kind": "pay_principal", "tranches": ["A", "Sub"]},
                {"kind": "pay_residual", "tranche": "Sub"},
            ]
        },
    )
    scenario = {
        "obligor_defaults": [{"obligor": "O2", "period": 2}],
        "recovery": {"rate": 0.2, "lag_periods": 1},
    }
    res = run(deal, scenario, jit=jit)
    acc = res.led_acc[0, :, 0]
    assert acc[:, L.LA_BALANCE_START] == pytest.approx([6, 6, 5.6, 6], **APPROX)
    assert acc[:, L.LA_WITHDRAWAL] == pytest.approx([0, 0.4, 0, 6], **APPROX)
    assert acc[:, L.LA_DEPOSIT] == pytest.approx([0, 0, 0.4, 0], **APPROX)
    assert acc[:, L.LA_BALANCE_END] == pytest.approx([6, 5.6, 6, 0], **APPROX)
    assert tranche_item(res, "A", L.LT_INTEREST_PAID) == pytest.approx(
        [5.4, 5.4, 5.4, 4.848], **APPROX
    )
    assert tranche_item(res, "A", L.LT_FROM_RESERVE) == pytest.approx([0, 0.4, 0, 0], **APPROX)
    assert tranche_item(res, "A", L.LT_PRINCIPAL_PAID) == pytest.approx(
        [0, 0, 9.2, 56.152], **APPROX
    )
    assert tranche_item(res, "A", L.LT_WRITE_DOWN) == pytest.approx([0, 0, 0, 24.648], **APPROX)
    assert tranche_item(res, "Sub", L.LT_RESIDUAL_PAID) == pytest.approx([4.6, 0, 0, 0], **APPROX)
    assert tranche_item(res, "Sub", L.LT_WRITE_DOWN) == pytest.approx([0, 0, 0, 10], **APPROX)
    cash_in = res.led_per[0, :, L.LP_CASH_IN].sum()
    paid = res.led_per[0, :, L.LP_PAID_OUT].sum()
    assert cash_in == pytest.approx(85, **APPROX) and paid == pytest.approx(91, **APPROX)


@JIT
def test_cumulative_default_trigger_switches_to_accelerated_waterfall(jit):
    """O1 80 and O2 20 at 10%, equal principal over 4 periods. A 80 and B 20 at 5%.
    Normal: interest A and B pro rata, principal A and B pro rata by balance, residual.
    Accelerated (cumulative defaults above 10%, not curable): A interest, all cash to A
    principal, then B interest, B principal, residual. O2 defaults in period 2, no recovery.

    t1 (normal): collections 8+20 + 2+5 = 35; A int 4, B int 1; due 100 - 75 = 25 pro rata
        80:20 → A 20, B 5; residual 5.
    t2: O2 (balance 15) defaults: 15% > 10% → accelerated. Collections 6 + 20 = 26.
        A int 60 × 5% = 3; A principal 23 (A 37); B nothing (interest 0.75 short).
    t3: collections 4 + 20 = 24; A int 1.85, A principal 22.15 (A 14.85); B short 1.5.
    t4: collections 2 + 20 = 22; A int 0.7425, A principal 14.85; left 6.4075 → B interest
        2.25 (0.75 + 0.75 carried... = 0.75 current + 1.5 carried), B principal 4.1575;
        B writes off 10.8425.
    """
    deal = base_deal(
        dates=annual_dates(4),
        pool={
            "obligors": [
                obligor("O1", 80, rate=0.1, n=4, kind="equal_principal"),
                obligor("O2", 20, rate=0.1, n=4, kind="equal_principal"),
            ]
        },
        tranches=[
            {"name": "A", "balance": 80, "coupon": fixed(0.05), "principal": "pro_rata"},
            {"name": "B", "balance": 20, "coupon": fixed(0.05), "principal": "pro_rata"},
            EQUITY,
        ],
        triggers=[
            {
                "kind": "cumulative_default",
                "name": "cd10",
                "threshold": 0.10,
                "effect": "accelerate",
            }
        ],
        waterfalls={
            "normal": [
                {"kind": "pay_interest", "tranches": ["A", "B"]},
                {"kind": "pay_principal", "tranches": ["A", "B"], "mode": "pro_rata"},
                {"kind": "pay_residual", "tranche": "Equity"},
            ],
            "accelerated": [
                {"kind": "pay_interest", "tranches": ["A"]},
                {"kind": "pay_principal", "tranches": ["A"], "amount": "available"},
                {"kind": "pay_interest", "tranches": ["B"]},
                {"kind": "pay_principal", "tranches": ["B"], "amount": "available"},
                {"kind": "pay_residual", "tranche": "Equity"},
            ],
        },
    )
    res = run(
        deal,
        {
            "obligor_defaults": [{"obligor": "O2", "period": 2}],
            "recovery": {"rate": 0.0, "lag_periods": 0},
        },
        jit=jit,
    )
    assert res.led_per[0, :, L.LP_STATUS].tolist() == [0, 1, 1, 1]
    assert tranche_item(res, "A", L.LT_INTEREST_PAID) == pytest.approx(
        [4, 3, 1.85, 0.7425], **APPROX
    )
    assert tranche_item(res, "A", L.LT_PRINCIPAL_PAID) == pytest.approx(
        [20, 23, 22.15, 14.85], **APPROX
    )
    assert tranche_item(res, "B", L.LT_INTEREST_PAID) == pytest.approx([1, 0, 0, 2.25], **APPROX)
    assert tranche_item(res, "B", L.LT_INTEREST_SHORTFALL) == pytest.approx(
        [0, 0.75, 1.5, 0], **APPROX
    )
    assert tranche_item(res, "B", L.LT_PRINCIPAL_PAID) == pytest.approx([5, 0, 0, 4.1575], **APPROX)
    assert res.sum_tr[0, 1, L.ST_LOSS] == pytest.approx(10.8425, **APPROX)
    assert tranche_item(res, "Equity", L.LT_RESIDUAL_PAID) == pytest.approx([5, 0, 0, 0], **APPROX)
    assert res.sum_pool[0, L.SP_FIRST_TRIGGER_PERIOD] == 1  # 0-based: period 2


def _undertaking_deal(cap: float | None = None) -> dict:
    sup = {
        "kind": "shortfall_undertaking",
        "name": "undertaking",
        "provider": {"name": "Parent"},
        "tranches": ["A"],
        "covers": "both",
    }
    if cap is not None:
        sup["cap"] = cap
    return base_deal(
        dates=annual_dates(3),
        pool={"obligors": [obligor("O1", 100, rate=0.02, n=3)]},
        tranches=[{"name": "A", "balance": 100, "coupon": fixed(0.05)}],
        support=[sup],
        waterfalls={
            "normal": [
                {"kind": "pay_interest", "tranches": ["A"]},
                {"kind": "pay_principal", "tranches": ["A"]},
                {"kind": "draw_support", "support": "undertaking"},
            ]
        },
    )


@JIT
def test_shortfall_undertaking_covers_senior_interest(jit):
    """O1 100 at 2% bullet over 3 periods; A 100 at 5%; an undertaking on A's interest and
    principal at maturity. Each period collects 2 of interest against 5 due: the undertaking
    pays 3. Period 3 collects 102: A interest 5, principal 97, and the undertaking pays the
    last 3 of principal. A is paid in full; the provider pays 9 in all."""
    res = run(_undertaking_deal(), jit=jit)
    sup = res.led_sup[0, :, 0]
    assert sup[:, L.LS_PAID] == pytest.approx([3, 3, 3], **APPROX)
    assert tranche_item(res, "A", L.LT_INTEREST_PAID) == pytest.approx([5, 5, 5], **APPROX)
    assert tranche_item(res, "A", L.LT_FROM_SUPPORT) == pytest.approx([3, 3, 3], **APPROX)
    assert tranche_item(res, "A", L.LT_PRINCIPAL_PAID) == pytest.approx([0, 0, 100], **APPROX)
    assert res.sum_tr[0, 0, L.ST_LOSS] == 0.0
    assert res.sum_pool[0, L.SP_SUPPORT_PAID] == pytest.approx(9, **APPROX)


@JIT
def test_shortfall_undertaking_whose_provider_defaulted_pays_nothing(jit):
    """As above, but the provider defaults in period 2. Period 1: it pays 3. Period 2: asked
    for 3, pays 0; A is 3 short. Period 3: A interest due 5 + 3 = 8 paid from 102, principal
    94; the provider is asked for the last 6 and pays nothing: A loses 6."""
    res = run(
        _undertaking_deal(),
        {"support_defaults": [{"support": "undertaking", "period": 2}]},
        jit=jit,
    )
    sup = res.led_sup[0, :, 0]
    assert sup[:, L.LS_PAID] == pytest.approx([3, 0, 0], **APPROX)
    assert sup[:, L.LS_REQUESTED] == pytest.approx([3, 3, 6], **APPROX)
    assert sup[:, L.LS_PROVIDER_DEFAULTED].tolist() == [0, 1, 1]
    assert tranche_item(res, "A", L.LT_INTEREST_SHORTFALL) == pytest.approx([0, 3, 0], **APPROX)
    assert tranche_item(res, "A", L.LT_INTEREST_PAID) == pytest.approx([5, 2, 8], **APPROX)
    assert tranche_item(res, "A", L.LT_PRINCIPAL_PAID) == pytest.approx([0, 0, 94], **APPROX)
    assert res.sum_tr[0, 0, L.ST_LOSS] == pytest.approx(6, **APPROX)
    assert res.sum_tr[0, 0, L.ST_FIRST_SHORTFALL_PERIOD] == 1


@JIT
def test_shortfall_undertaking_cap(jit):
    """Cap 4: period 1 pays 3, period 2 pays the last 1 (A 2 short), period 3 pays nothing:
    A interest 5 + 2 = 7 from 102, principal 95, loss 5."""
    res = run(_undertaking_deal(cap=4.0), jit=jit)
    assert res.led_sup[0, :, 0, L.LS_PAID] == pytest.approx([3, 1, 0], **APPROX)
    assert res.sum_tr[0, 0, L.ST_LOSS] == pytest.approx(5, **APPROX)


@JIT
def test_loss_compensation_pays_share_of_realised_loss_after_lag(jit):
    """O1 50 and O2 50 at 0%, bullet over 4 periods; A 100 at 0%. A risk-compensation fund
    reimburses 40% of realised losses one period later. O2 defaults in period 1 with 25%
    recovery one period later: realised loss 37.5 booked in period 2, compensation 15 in
    period 3. Final period: 50 principal; A receives 12.5 + 15 + 50 = 77.5, loses 22.5."""
    deal = base_deal(
        dates=annual_dates(4),
        pool={"obligors": [obligor("O1", 50, n=4), obligor("O2", 50, n=4)]},
        tranches=[{"name": "A", "balance": 100, "coupon": fixed(0.0)}],
        support=[compensation_fund(share=0.4, lag=1)],
    )
    res = run(
        deal,
        {
            "obligor_defaults": [{"obligor": "O2", "period": 1}],
            "recovery": {"rate": 0.25, "lag_periods": 1},
        },
        jit=jit,
    )
    assert res.led_per[0, :, L.LP_LOSS] == pytest.approx([0, 37.5, 0, 0], **APPROX)
    assert res.led_per[0, :, L.LP_COMPENSATION] == pytest.approx([0, 0, 15, 0], **APPROX)
    assert tranche_item(res, "A", L.LT_PRINCIPAL_PAID) == pytest.approx([0, 12.5, 15, 50], **APPROX)
    assert res.sum_tr[0, 0, L.ST_LOSS] == pytest.approx(22.5, **APPROX)


def test_trap_excess_spread_and_write_off_deficiency():
    """O1 60 and O2 40 at 10%, bullet over 3 periods; A 90 at 5%, Sub 10 residual. A curable
    coverage-ratio trigger (below 2.5 for one period) traps excess spread in an account with a
    zero target; a write_off step writes down the principal deficiency. O2 defaults in
    period 2 with no recovery.

    t1: interest 10; A int 4.5, principal due 0 → coverage 10 / 4.5 = 2.22 < 2.5: trap on.
        Residual 5.5 goes into the trap account, not to Sub.
    t2: interest 6, pool 60; A int 4.5, principal due 100 - 60 = 40 → coverage 6 / 44.5.
        A principal 1.5 (A 88.5); write-off: notes 98.5 - pool 60 = 38.5 → Sub 10, A 28.5
        (A 60). The trap account keeps its 5.5.
    t3 (final: target 0, no trap): 5.5 released; interest 6 + principal 60 = 66 (coverage
        66 / (3 + 60)); A int 60 × 5% = 3, principal 60; Sub gets 66 + 5.5 - 63 = 8.5.
    """
    deal = base_deal(
        dates=annual_dates(3),
        pool={"obligors": [obligor("O1", 60, rate=0.1), obligor("O2", 40, rate=0.1)]},
        tranches=[
            {"name": "A", "balance": 90, "coupon": fixed(0.05)},
            {"name": "Sub", "balance": 10, "principal": "residual"},
        ],
        accounts=[{"name": "trap", "target": {"kind": "fixed", "amount": 0}}],
        triggers=[
            {
                "kind": "coverage_ratio",
                "name": "cr",
                "threshold": 2.5,
                "periods": 1,
                "effect": "trap_excess_spread",
                "trap_account": "trap",
                "curable": True,
            }
        ],
        waterfalls={
            "normal": [
                {"kind": "pay_interest", "tranches": ["A"]},
                {"kind": "pay_principal", "tranches": ["A", "Sub"]},
                {"kind": "write_off"},
                {"kind": "pay_residual", "tranche": "Sub"},
            ]
        },
    )
    res = run(
        deal,
        {
            "obligor_defaults": [{"obligor": "O2", "period": 2}],
            "recovery": {"rate": 0.0, "lag_periods": 0},
        },
    )
    assert res.led_per[0, :, L.LP_COVERAGE_RATIO] == pytest.approx(
        [10 / 4.5, 6 / 44.5, 66 / 63], **APPROX
    )
    assert tranche_item(res, "A", L.LT_INTEREST_PAID) == pytest.approx([4.5, 4.5, 3], **APPROX)
    assert tranche_item(res, "A", L.LT_PRINCIPAL_PAID) == pytest.approx([0, 1.5, 60], **APPROX)
    assert tranche_item(res, "A", L.LT_WRITE_DOWN) == pytest.approx([0, 28.5, 0], **APPROX)
    assert tranche_item(res, "Sub", L.LT_WRITE_DOWN) == pytest.approx([0, 10, 0], **APPROX)
    assert tranche_item(res, "Sub", L.LT_RESIDUAL_PAID) == pytest.approx([0, 0, 8.5], **APPROX)
    assert res.led_per[0, :, L.LP_TRAPPED] == pytest.approx([5.5, 0, 0], **APPROX)
    assert res.led_acc[0, :, 0, L.LA_BALANCE_END] == pytest.approx([5.5, 5.5, 0], **APPROX)


def test_floating_coupon_floor_cap_and_step_up():
    """A floating tranche at base + 1% with floor 2% and cap 4%, stepping up 0.5% from
    period 3: base 0.5% → 2% (floor) in periods 1-2, 2.5% in period 3; base shocked +400bp
    → 4% (cap) then 4.5% with the step-up."""
    deal = base_deal(
        dates=annual_dates(3),
        tranches=[
            {
                "name": "A",
                "balance": 100,
                "coupon": {"kind": "floating", "spread": 0.01, "floor": 0.02, "cap": 0.04},
                "step_up": {"from_period": 3, "spread": 0.005},
            }
        ],
        base_rate=0.005,
    )
    res = run(deal, {}, {"rate_shock_bps": 400})
    assert res.led_tr[0, :, 0, L.LT_COUPON_RATE] == pytest.approx([0.02, 0.02, 0.025], abs=1e-15)
    assert res.led_tr[1, :, 0, L.LT_COUPON_RATE] == pytest.approx([0.04, 0.04, 0.045], abs=1e-15)


def test_clean_up_call_ends_the_deal():
    """Equal principal 100 over 4 periods, call at pool factor 30%: after period 3 the pool
    is 25 ≤ 30, so the servicer pays 25 and A is repaid in period 3; period 4 is empty."""
    deal = base_deal(
        dates=annual_dates(4),
        pool={"obligors": [obligor("O1", 100, n=4, kind="equal_principal")]},
        clean_up_call={"pool_factor": 0.3},
    )
    res = run(deal)
    assert res.led_per[0, :, L.LP_CALL_PROCEEDS] == pytest.approx([0, 0, 25, 0], **APPROX)
    assert tranche_item(res, "A", L.LT_PRINCIPAL_PAID) == pytest.approx([25, 25, 50, 0], **APPROX)
    assert res.sum_pool[0, L.SP_CALL_PERIOD] == 2


def test_target_balance_tranche_amortises_to_schedule():
    """A target-balance tranche pays down to its schedule (80, 50, 0) even when more principal
    is collected; the rest goes to the sequential tranche after it."""
    deal = base_deal(
        dates=annual_dates(3),
        pool={"obligors": [obligor("O1", 100, n=3, kind="equal_principal")]},
        tranches=[
            {
                "name": "A",
                "balance": 90,
                "coupon": fixed(0.0),
                "principal": "target_balance",
                "target_balances": [80, 50, 0],
            },
            {"name": "B", "balance": 10, "coupon": fixed(0.0)},
        ],
        waterfalls={"normal": [{"kind": "pay_principal", "tranches": ["A", "B"]}]},
    )
    res = run(deal)
    third = 100 / 3
    # t1: due 33.33 → A to its target 80 (10), B 10 in full, 13.33 carried; t2: A 30 to 50;
    # t3 (final): A 50 from 33.33 collected + 16.67 carried.
    assert tranche_item(res, "A", L.LT_PRINCIPAL_PAID) == pytest.approx([10, 30, 50], **APPROX)
    assert tranche_item(res, "A", L.LT_BALANCE_END) == pytest.approx([80, 50, 0], **APPROX)
    assert tranche_item(res, "B", L.LT_PRINCIPAL_PAID) == pytest.approx([10, 0, 0], **APPROX)
    assert res.led_per[0, :, L.LP_CASH_END] == pytest.approx([third - 20, 50 - third, 0], **APPROX)


def _scheduled_deal(tranches: list, normal: list, rate: float) -> dict:
    """One equal-principal receivable of 1,000,000 at ``rate`` over four quarters (30/360:
    accruals of exactly 0.25), the tranches and normal waterfall given."""
    return base_deal(
        dates={"closing": "2025-01-15", "first_payment": "2025-04-15", "frequency": "quarterly",
               "legal_final": "2026-01-15", "day_count": "30/360", "business_day": "none"},
        pool={"obligors": [obligor("O", 1e6, rate=rate, n=4, kind="equal_principal")]},
        tranches=tranches,
        waterfalls={"normal": normal},
    )  # fmt: skip


@pytest.mark.parametrize("jit", [False, True])
def test_a_target_balance_tranche_is_paid_its_schedule_before_any_residual(jit):
    """A 900,000 at 3% with targets 450,000, 0, 0, 0; Sub 100,000 residual. Period 1: 325,000
    collected (75,000 interest at 30%, 250,000 principal), A's interest 6,750, A owed 450,000
    and paid the other 318,250, nothing left for the residual. Period 2: 306,250 collected,
    interest 4,363.125 on 581,750, A paid 301,886.875. Period 3: 287,500, interest
    2,098.9734375, A paid its last 279,863.125 and the residual 5,537.9015625. (A was paid
    only the notes' 250,000 excess over the pool each period and the residual the rest:
    68,250, 51,375 and 34,500 while A stayed above its schedule.)"""
    a = {"name": "A", "balance": 9e5, "coupon": fixed(0.03), "principal": "target_balance",
         "target_balances": [4.5e5, 0.0, 0.0, 0.0]}  # fmt: skip
    sub = {"name": "Sub", "balance": 1e5, "principal": "residual"}
    normal = [
        {"kind": "pay_interest", "tranches": ["A"]},
        {"kind": "pay_principal", "tranches": ["A", "Sub"]},
        {"kind": "pay_residual", "tranche": "Sub"},
    ]
    res = run(_scheduled_deal([a, sub], normal, 0.30), jit=jit)
    paid = tranche_item(res, "A", L.LT_PRINCIPAL_PAID)
    assert paid[:3] == pytest.approx([318_250, 301_886.875, 279_863.125], abs=1e-6)
    assert tranche_item(res, "A", L.LT_INTEREST_PAID)[:3] == pytest.approx(
        [6_750, 4_363.125, 2_098.9734375], abs=1e-6
    )
    residual = tranche_item(res, "Sub", L.LT_RESIDUAL_PAID)
    assert residual[:3] == pytest.approx([0, 0, 5_537.9015625], abs=1e-6)
    assert tranche_item(res, "Sub", L.LT_PRINCIPAL_PAID)[:3] == pytest.approx([0, 0, 0])
    assert tranche_item(res, "Sub", L.LT_PRINCIPAL_PAID)[3] == pytest.approx(1e5, abs=1e-6)


def test_a_target_balance_tranche_in_a_pro_rata_step_of_principal_due_is_refused():
    """The step shared principal by balance and paid A below its target (125,000 a period
    from 500,000, targets 500,000, 500,000, 500,000, 0); with ``amount = "available"`` every
    tranche takes its share by balance, and that is allowed."""
    a = {"name": "A", "balance": 5e5, "coupon": fixed(0.03), "principal": "target_balance",
         "target_balances": [5e5, 5e5, 5e5, 0.0]}  # fmt: skip
    b = {"name": "B", "balance": 5e5, "coupon": fixed(0.03), "principal": "pro_rata"}
    step = {"kind": "pay_principal", "tranches": ["A", "B"], "mode": "pro_rata"}
    normal = [{"kind": "pay_interest", "tranches": ["A", "B"]}, step]
    with pytest.raises(DealError) as err:
        compile_deal(parse_deal(_scheduled_deal([a, b], normal, 0.05)))
    (problem,) = err.value.problems
    assert problem.path == "waterfalls.normal[1].mode" and problem.value == "pro_rata"
    assert "'A' has principal = 'target_balance'" in problem.message
    step["amount"] = "available"
    compile_deal(parse_deal(_scheduled_deal([a, b], normal, 0.05)))


# ---- from review: defects found earlier, each with the hand arithmetic ----


def test_pay_principal_defaults_to_pro_rata_for_pro_rata_tranches():
    deal = base_deal(
        pool={"obligors": [obligor("O1", 100, n=2, kind="equal_principal")]},
        dates=annual_dates(2),
        tranches=[
            {"name": "A", "balance": 60, "coupon": ZERO_COUPON, "principal": "pro_rata"},
            {"name": "B", "balance": 40, "coupon": ZERO_COUPON, "principal": "pro_rata"},
        ],
        waterfalls={"normal": [{"kind": "pay_principal", "tranches": ["A", "B"]}]},
    )
    res = run(deal)
    assert tranche_item(res, "A", L.LT_PRINCIPAL_PAID) == pytest.approx([30, 30], **APPROX)
    assert tranche_item(res, "B", L.LT_PRINCIPAL_PAID) == pytest.approx([20, 20], **APPROX)


def _pro_rata_reserve_deal(steps: list[dict], kinds=("pro_rata", "pro_rata"), draw=("A", "B")):
    """O1 60 and O2 40 at 0%, equal principal over 4 periods (25 a period); A 50 and B 50,
    zero coupons, of the principal kinds given; a reserve of 10 drawn on principal for
    ``draw`` after ``steps``."""
    tranches = [{"name": n, "balance": 50, "coupon": ZERO_COUPON, "principal": k}
                for n, k in zip(("A", "B"), kinds, strict=True)]  # fmt: skip
    return base_deal(
        dates=annual_dates(4),
        pool={"obligors": [obligor("O1", 60, n=4, kind="equal_principal"),
                           obligor("O2", 40, n=4, kind="equal_principal")]},
        tranches=tranches,
        accounts=[{"name": "r", "target": {"kind": "fixed", "amount": 10}, "initial_balance": 10}],
        waterfalls={"normal": [*steps, {"kind": "draw_reserve", "account": "r",
                                        "tranches": list(draw), "covers": "principal"}]},
    )  # fmt: skip


@JIT
def test_a_reserve_draw_on_principal_after_a_pro_rata_step(jit):
    """A and B pro rata, paid by one principal step, then a reserve of 10 drawn on their
    principal. No defaults: each period the notes exceed the pool by 25, due 12.5 and 12.5,
    paid 12.5 and 12.5 from collections: nothing is short, and the reserve pays nothing (it
    paid A 10 in period 1, when dues were allocated in seniority order, and broke the split
    after). The same with the draw on A alone, with the tranches sequential under a pro-rata
    step, and with A and B pro rata under a sequential step (the draw is capped by what the
    group and the notes were paid, whichever way the step shared it).

    O2 defaults in period 2 (its 30 left, no recovery): the notes (75) exceed the pool (30)
    by 45, due 22.5 each; collections 15 pay 7.5 each; the group is short 30, and the
    reserve's 10 goes to A, the first listed with a shortfall (draws pay in list order; A and
    B pro rata, not pari passu: see the class tests below)."""
    step = {"kind": "pay_principal", "tranches": ["A", "B"]}
    cases = [
        (_pro_rata_reserve_deal([step]), 12.5),
        (_pro_rata_reserve_deal([step], draw=("A",)), 12.5),
        (_pro_rata_reserve_deal([{**step, "mode": "pro_rata"}], ("sequential",) * 2), 12.5),
        (_pro_rata_reserve_deal([{**step, "mode": "sequential"}]), None),
    ]
    for deal, each in cases:
        res = run(deal, jit=jit)
        for name in ("A", "B"):
            assert tranche_item(res, name, L.LT_FROM_RESERVE) == pytest.approx([0] * 4, **APPROX)
            if each is not None:
                paid = tranche_item(res, name, L.LT_PRINCIPAL_PAID)
                assert paid == pytest.approx([each] * 4, **APPROX)
        assert res.led_acc[0, :3, 0, L.LA_BALANCE_END] == pytest.approx([10] * 3, **APPROX)
    deal = cases[0][0]
    for name in ("A", "B"):  # pro-rata tranches share the due by balance, as the step pays
        due = tranche_item(run(deal, jit=jit), name, L.LT_PRINCIPAL_DUE)
        assert due == pytest.approx([12.5] * 4, **APPROX)
    # a target-balance A (targets 40, 30, 20, 10) ahead of a sequential B, a draw on B: the
    # step pays A 10 and B the other 15 of the 25; B's due is that 15 (it was 25, the
    # target's part not taken out, and the reserve paid B 10 with nothing short)
    target = _pro_rata_reserve_deal([step], ("target_balance", "sequential"), draw=("B",))
    target["tranches"][0]["target_balances"] = [40, 30, 20, 10]
    res = run(target, jit=jit)
    assert tranche_item(res, "B", L.LT_PRINCIPAL_DUE)[:3] == pytest.approx([15] * 3, **APPROX)
    assert tranche_item(res, "B", L.LT_FROM_RESERVE) == pytest.approx([0] * 4, **APPROX)
    scenario = {
        "obligor_defaults": [{"obligor": "O2", "period": 2}],
        "recovery": {"rate": 0.0, "lag_periods": 0},
    }
    res = run(deal, scenario, jit=jit)
    assert tranche_item(res, "A", L.LT_FROM_RESERVE)[:2] == pytest.approx([0, 10], **APPROX)
    assert tranche_item(res, "B", L.LT_FROM_RESERVE)[:2] == pytest.approx([0, 0], **APPROX)
    assert tranche_item(res, "A", L.LT_PRINCIPAL_PAID)[1] == pytest.approx(17.5, **APPROX)
    assert tranche_item(res, "B", L.LT_PRINCIPAL_PAID)[1] == pytest.approx(7.5, **APPROX)
    # the draw on B alone: B's pro-rata due 22.5, paid 7.5: short 15, the reserve pays 10
    # (with dues allocated in seniority order B was owed nothing while 30 was short)
    res = run(_pro_rata_reserve_deal([step], draw=("B",)), scenario, jit=jit)
    assert tranche_item(res, "B", L.LT_FROM_RESERVE)[:2] == pytest.approx([0, 10], **APPROX)


@pytest.mark.parametrize("jit", [False, True])
def test_a_next_period_interest_reserve_counts_a_step_up_starting_next_period(jit):
    """A 90,000,000 at 3%, stepping up 2% from period 3 (quarterly, ACT/365F: accruals 90,
    91, 92, 92 days): the reserve's target in period 2 is period 3's interest at 5%,
    90,000,000 × 5% × 92/365 = 1,134,246.58 (it was 680,547.95 at 3%, the reserve short of
    the step-up's first coupon by 453,698.63)."""
    deal = base_deal(
        dates={"closing": "2025-01-01", "first_payment": "2025-04-01", "frequency": "quarterly",
               "legal_final": "2026-01-01", "business_day": "none"},
        pool={"obligors": [obligor("O", 1e8, rate=0.06, n=4)]},
        tranches=[
            {"name": "A", "balance": 9e7, "coupon": fixed(0.03),
             "step_up": {"from_period": 3, "spread": 0.02}},
            {"name": "Sub", "balance": 1e7, "principal": "residual"},
        ],
        accounts=[{"name": "res", "target": {"kind": "next_period_interest", "tranches": ["A"]}}],
        waterfalls={"normal": [
            {"kind": "pay_interest", "tranches": ["A"]},
            {"kind": "draw_reserve", "account": "res", "tranches": ["A"]},
            {"kind": "fund_reserve", "account": "res"},
            {"kind": "pay_principal", "tranches": ["A", "Sub"]},
            {"kind": "pay_residual", "tranche": "Sub"},
        ]},
    )  # fmt: skip
    res = run(deal, jit=jit)
    target = res.led_acc[0, :, 0, L.LA_TARGET]
    due = tranche_item(res, "A", L.LT_INTEREST_DUE)
    rates_days = zip([0.03, 0.03, 0.05, 0.05], [90, 91, 92, 92], strict=True)
    assert due == pytest.approx([9e7 * r * d / 365 for r, d in rates_days], abs=1e-6)
    assert target[:3] == pytest.approx(due[1:], abs=1e-6)
    assert target[1] == pytest.approx(1_134_246.58, abs=0.01)


@JIT
def test_a_next_period_interest_reserve_with_fees_counts_next_periods_fees(jit):
    """A validator's deal: closing 2025-01-01, a 181-day stub to 2025-07-01, then quarterly
    (92 and 92 days, ACT/365F); A 10,000,000 at 4%, a trustee fee of 1% of the pool. The
    reserve's target with ``include_fees`` in period 1 is period 2's interest and fee,
    10,000,000 × (4% + 1%) × 92/365 = 126,027.40, not the stub's fee of 49,589.04 added to
    the interest (150,410.96)."""
    deal = base_deal(
        dates={"closing": "2025-01-01", "first_payment": "2025-07-01", "frequency": "quarterly",
               "legal_final": "2026-01-01", "business_day": "none"},
        pool={"obligors": [obligor("O", 1e7, rate=0.05, n=3)]},
        tranches=[{"name": "A", "balance": 1e7, "coupon": fixed(0.04)}],
        fees=[{"name": "trustee", "rate": 0.01, "base": "pool"}],
        accounts=[{"name": "res", "target": {"kind": "next_period_interest", "tranches": ["A"],
                                             "include_fees": True}}],
        waterfalls={"normal": [
            {"kind": "pay_fee", "fee": "trustee"},
            {"kind": "pay_interest", "tranches": ["A"]},
            {"kind": "fund_reserve", "account": "res"},
            {"kind": "pay_principal", "tranches": ["A"]},
        ]},
    )  # fmt: skip
    res = run(deal, jit=jit)
    target = res.led_acc[0, :, 0, L.LA_TARGET]
    fee_due = res.led_fee[0, :, 0, L.LF_DUE]
    assert fee_due == pytest.approx([1e5 * 181 / 365, 1e5 * 92 / 365, 1e5 * 92 / 365], abs=1e-6)
    expected = 1e7 * 0.05 * 92 / 365
    assert target[:2] == pytest.approx([expected, expected], abs=1e-6)
    assert target[0] == pytest.approx(126_027.40, abs=0.01)
    assert target[2] == 0.0


@JIT
def test_a_pro_rata_class_is_written_down_and_covered_as_one(jit):
    """O1 60 and O2 40 at 10%, bullet over 3 periods; A1 54 and A2 36 at 5%, pro rata and
    pari passu (one class), Sub 10 residual; pay interest, the class's principal (pro rata),
    Sub's, write off, residual. O2 defaults in period 2 with no recovery.

    t1: interest 10; A1 2.7 and A2 1.8: the class's coverage 10 / 4.5 for both.
    t2: interest 6, pool 60; principal due 40 shared 24 / 16; coverage 6 / (4.5 + 40) for
        both; 1.5 left pays A1 0.9 and A2 0.6 (53.1 and 35.4); the deficiency 98.5 - 60 =
        38.5 writes Sub off (10), then 28.5 off the class by balance: A1 17.1, A2 11.4 (a
        validator's A2 was written down alone, the last in file order, at 46.8% against
        A1's 0%).
    t3: A1 36 and A2 24 repaid with 1.8 and 1.2 of interest; Sub gets 66 - 63 = 3."""
    deal = base_deal(
        dates=annual_dates(3),
        pool={"obligors": [obligor("O1", 60, rate=0.1), obligor("O2", 40, rate=0.1)]},
        tranches=[
            {"name": "A1", "balance": 54, "coupon": fixed(0.05), "principal": "pro_rata",
             "pari_passu": "A"},
            {"name": "A2", "balance": 36, "coupon": fixed(0.05), "principal": "pro_rata",
             "pari_passu": "A"},
            {"name": "Sub", "balance": 10, "principal": "residual"},
        ],
        waterfalls={"normal": [
            {"kind": "pay_interest", "tranches": ["A1", "A2"]},
            {"kind": "pay_principal", "tranches": ["A1", "A2"]},
            {"kind": "pay_principal", "tranches": ["Sub"]},
            {"kind": "write_off"},
            {"kind": "pay_residual", "tranche": "Sub"},
        ]},
    )  # fmt: skip
    res = run(
        deal,
        {"obligor_defaults": [{"obligor": "O2", "period": 2}],
         "recovery": {"rate": 0.0, "lag_periods": 0}},
        jit=jit,
    )  # fmt: skip
    for name in ("A1", "A2"):
        cr = tranche_item(res, name, L.LT_COVERAGE_RATIO)
        assert cr == pytest.approx([10 / 4.5, 6 / 44.5, 66 / 63], **APPROX)
    assert tranche_item(res, "A1", L.LT_PRINCIPAL_DUE)[1] == pytest.approx(24, **APPROX)
    assert tranche_item(res, "A1", L.LT_PRINCIPAL_PAID) == pytest.approx([0, 0.9, 36], **APPROX)
    assert tranche_item(res, "A2", L.LT_PRINCIPAL_PAID) == pytest.approx([0, 0.6, 24], **APPROX)
    assert tranche_item(res, "A1", L.LT_WRITE_DOWN) == pytest.approx([0, 17.1, 0], **APPROX)
    assert tranche_item(res, "A2", L.LT_WRITE_DOWN) == pytest.approx([0, 11.4, 0], **APPROX)
    assert tranche_item(res, "Sub", L.LT_WRITE_DOWN) == pytest.approx([0, 10, 0], **APPROX)
    assert tranche_item(res, "Sub", L.LT_RESIDUAL_PAID) == pytest.approx([5.5, 0, 3], **APPROX)
    assert tranche_item(res, "A1", L.LT_INTEREST_PAID) == pytest.approx([2.7, 2.7, 1.8], **APPROX)


def _pari_passu(steps: list[dict], obligors: list[dict], n: int, **over: Any) -> dict:
    """A1 60 and A2 30, pro rata and pari passu (one class), zero coupons unless ``over``
    says otherwise, and Sub 10 residual, over ``n`` annual periods."""
    tranches = [
        {
            "name": "A1",
            "balance": 60,
            "coupon": ZERO_COUPON,
            "principal": "pro_rata",
            "pari_passu": "A",
        },
        {
            "name": "A2",
            "balance": 30,
            "coupon": ZERO_COUPON,
            "principal": "pro_rata",
            "pari_passu": "A",
        },
        {"name": "Sub", "balance": 10, "principal": "residual"},
    ]
    return base_deal(dates=annual_dates(n), pool={"obligors": obligors}, tranches=tranches,
                     waterfalls={"normal": steps}, **over)  # fmt: skip


@JIT
@pytest.mark.parametrize("order", [["A1", "A2"], ["A2", "A1"]])
def test_a_reserve_draw_shares_a_pro_rata_class_by_what_each_is_owed(jit, order):
    """A1 60 and A2 30 at 5% (one class), a zero-rate bullet pool: nothing is collected in
    period 1, when A1 is owed 3 of interest and A2 1.5. A reserve of 3 drawn on the class's
    interest pays them 2 and 1 (two thirds of each), listed either way (a validator's
    reserve paid the first listed all it had and the other nothing)."""
    deal = _pari_passu(
        [{"kind": "pay_interest", "tranches": ["A1", "A2"]},
         {"kind": "draw_reserve", "account": "r", "tranches": order},
         {"kind": "pay_principal", "tranches": ["A1", "A2", "Sub"]},
         {"kind": "pay_residual", "tranche": "Sub"}],
        [obligor("O", 100, n=2)], 2,
        accounts=[{"name": "r", "target": {"kind": "fixed", "amount": 3}, "initial_balance": 3}],
    )  # fmt: skip
    for t in deal["tranches"][:2]:
        t["coupon"] = fixed(0.05)
    res = run(deal, jit=jit)
    assert tranche_item(res, "A1", L.LT_FROM_RESERVE)[0] == pytest.approx(2, **APPROX)
    assert tranche_item(res, "A2", L.LT_FROM_RESERVE)[0] == pytest.approx(1, **APPROX)
    assert res.led_acc[0, 0, 0, L.LA_BALANCE_END] == pytest.approx(0, **APPROX)


@JIT
def test_a_sequential_step_pays_a_pro_rata_class_listed_in_it_by_balance(jit):
    """O1 45 due in period 1 and O2 55 in period 2; A1 60 and A2 30 (one class), Sub 10,
    zero coupons, one step ``pay_principal [A1, A2, Sub]`` (sequential: not all pro rata).
    Period 1: 45 of principal due pays the class by balance, A1 30 and A2 15 (a validator's
    step paid A1 all 45 while the ledger's principal due said 30 and 15); period 2: A1 30,
    A2 15, Sub 10."""
    deal = _pari_passu(
        [{"kind": "pay_principal", "tranches": ["A1", "A2", "Sub"]},
         {"kind": "pay_residual", "tranche": "Sub"}],
        [obligor("O1", 45, n=1), obligor("O2", 55, n=2)], 2,
    )  # fmt: skip
    res = run(deal, jit=jit)
    assert tranche_item(res, "A1", L.LT_PRINCIPAL_DUE)[0] == pytest.approx(30, **APPROX)
    assert tranche_item(res, "A1", L.LT_PRINCIPAL_PAID) == pytest.approx([30, 30], **APPROX)
    assert tranche_item(res, "A2", L.LT_PRINCIPAL_PAID) == pytest.approx([15, 15], **APPROX)
    assert tranche_item(res, "Sub", L.LT_PRINCIPAL_PAID) == pytest.approx([0, 10], **APPROX)


@JIT
@pytest.mark.parametrize("order", [["A1", "A2"], ["A2", "A1"]])
def test_a_capped_guarantee_shares_a_pro_rata_class_by_what_each_is_owed(jit, order):
    """One period: O1 60 and O2 40 due, O2 defaults with no recovery; A1 60 and A2 30 (one
    class) are paid 40 and 20 pro rata, then a guarantee of their principal at maturity,
    capped at 15, is asked for 20 and 10 and pays 10 and 5 (half of each), listed either
    way: A1 loses 10 and A2 5, the same share (a validator's guarantee paid the first listed
    in full and left the other's loss whole)."""
    deal = _pari_passu(
        [{"kind": "pay_principal", "tranches": ["A1", "A2"]},
         {"kind": "draw_support", "support": "g"},
         {"kind": "pay_principal", "tranches": ["Sub"]},
         {"kind": "pay_residual", "tranche": "Sub"}],
        [obligor("O1", 60, n=1), obligor("O2", 40, n=1)], 1,
        support=[{"kind": "guarantee", "name": "g", "provider": {"name": "P"},
                  "tranches": order, "covers": "principal_at_maturity", "cap": 15}],
    )  # fmt: skip
    res = run(deal, {"obligor_defaults": [{"obligor": "O2", "period": 1}],
                     "recovery": {"rate": 0.0, "lag_periods": 0}}, jit=jit)  # fmt: skip
    assert tranche_item(res, "A1", L.LT_FROM_SUPPORT) == pytest.approx([10], **APPROX)
    assert tranche_item(res, "A2", L.LT_FROM_SUPPORT) == pytest.approx([5], **APPROX)
    assert res.led_sup[0, 0, 0, L.LS_REQUESTED] == pytest.approx(30, **APPROX)
    assert tranche_item(res, "A1", L.LT_WRITE_DOWN) == pytest.approx([10], **APPROX)
    assert tranche_item(res, "A2", L.LT_WRITE_DOWN) == pytest.approx([5], **APPROX)


def test_a_step_paying_part_of_a_pro_rata_class_is_warned_of():
    """``pay_principal [A1]`` then ``[A2, Sub]``: each step lists part of the class A1/A2,
    which is then paid A1 first, silently (a validator's); a warning at each step."""
    deal = _pari_passu(
        [{"kind": "pay_principal", "tranches": ["A1"]},
         {"kind": "pay_principal", "tranches": ["A2", "Sub"]},
         {"kind": "pay_residual", "tranche": "Sub"}],
        [obligor("O", 100, n=2)], 2,
    )  # fmt: skip
    warned = {w.path: str(w) for w in compile_deal(parse_deal(deal)).warnings}
    assert "'A1' of the pro-rata tranches ['A1', 'A2']" in warned["waterfalls.normal[0].tranches"]
    assert "'A2' of the pro-rata tranches ['A1', 'A2']" in warned["waterfalls.normal[1].tranches"]
    whole = _pari_passu(
        [
            {"kind": "pay_principal", "tranches": ["A1", "A2", "Sub"]},
            {"kind": "pay_residual", "tranche": "Sub"},
        ],
        [obligor("O", 100, n=2)],
        2,
    )
    assert not compile_deal(parse_deal(whole)).warnings


@JIT
def test_a_cumulative_default_rate_at_its_threshold_does_not_breach_it(jit):
    """O1 0.1, O2 0.2 and O3 0.7 (pool 1), O1 defaulting in period 1 and O2 in period 2: the
    cumulative default rate is 0.3, at a threshold of 0.3, not above it; its sum
    0.1 + 0.2 = 0.30000000000000004 had fired the trigger (a validator's 0.166)."""
    deal = base_deal(
        dates=annual_dates(3),
        pool={"obligors": [obligor("O1", 0.1), obligor("O2", 0.2), obligor("O3", 0.7)]},
        tranches=[{"name": "A", "balance": 1.0, "coupon": fixed(0.0)}],
        triggers=[{"kind": "cumulative_default", "name": "cd", "threshold": 0.3}],
        waterfalls={"normal": [{"kind": "pay_principal", "tranches": ["A"]}],
                    "accelerated": [{"kind": "pay_principal", "tranches": ["A"],
                                     "amount": "available"}]},
    )  # fmt: skip
    scenario = {"obligor_defaults": [{"obligor": "O1", "period": 1},
                                     {"obligor": "O2", "period": 2}]}  # fmt: skip
    res = run(deal, scenario, jit=jit)
    assert 0.1 + 0.2 > 0.3  # the sum as the engine adds it
    assert res.led_per[0, :, L.LP_STATUS] == pytest.approx([0, 0, 0])
    above = {**scenario, "obligor_defaults": [*scenario["obligor_defaults"],
                                             {"obligor": "O3", "period": 3}]}  # fmt: skip
    assert run(deal, above, jit=jit).led_per[0, :, L.LP_STATUS] == pytest.approx([0, 0, 1])


@JIT
def test_a_pro_rata_class_member_without_balance_shares_the_class_ratio(jit):
    """A1 0 and A2 70 (one class), B 30, the headline coverage ratio A1's: it is the class's,
    defined while A2 is outstanding (it was NaN in every period, and a coverage trigger on it
    never fired, a validator's)."""
    deal = base_deal(
        dates=annual_dates(3),
        pool={"obligors": [obligor("O", 100, rate=0.05)]},
        tranches=[
            {"name": "A1", "balance": 0.0, "coupon": fixed(0.03), "principal": "pro_rata",
             "pari_passu": "A"},
            {"name": "A2", "balance": 70.0, "coupon": fixed(0.03), "principal": "pro_rata",
             "pari_passu": "A"},
            {"name": "B", "balance": 30.0, "coupon": fixed(0.04)},
        ],
        coverage_ratio={"tranche": "A1"},
        waterfalls={"normal": [
            {"kind": "pay_interest", "tranches": ["A1", "A2", "B"]},
            {"kind": "pay_principal", "tranches": ["A1", "A2", "B"]},
        ]},
    )  # fmt: skip
    res = run(deal, jit=jit)
    a1 = tranche_item(res, "A1", L.LT_COVERAGE_RATIO)
    assert a1 == pytest.approx(tranche_item(res, "A2", L.LT_COVERAGE_RATIO), nan_ok=True)
    assert a1[0] == pytest.approx(5 / 2.1, **APPROX)
    assert res.led_per[0, 0, L.LP_COVERAGE_RATIO] == pytest.approx(5 / 2.1, **APPROX)


@JIT
def test_pro_rata_tranches_without_a_pari_passu_label_keep_their_rank(jit):
    """The class test's deal without ``pari_passu`` labels: A1 and A2 share principal by
    balance but rank as listed, so the write-off takes 28.5 off A2 (36 less 0.6 paid) alone
    (a reviewer's A at 5% and B at 8%, both pro rata, B junior, had been written down
    together by balance and B's coverage counted as A's); a step of mixed kinds still pays
    them by balance (0.9 and 0.6), and one with ``mode = "sequential"`` strictly in order."""
    deal = base_deal(
        dates=annual_dates(3),
        pool={"obligors": [obligor("O1", 60, rate=0.1), obligor("O2", 40, rate=0.1)]},
        tranches=[
            {"name": "A1", "balance": 54, "coupon": fixed(0.05), "principal": "pro_rata"},
            {"name": "A2", "balance": 36, "coupon": fixed(0.05), "principal": "pro_rata"},
            {"name": "Sub", "balance": 10, "principal": "residual"},
        ],
        waterfalls={"normal": [
            {"kind": "pay_interest", "tranches": ["A1", "A2"]},
            {"kind": "pay_principal", "tranches": ["A1", "A2", "Sub"]},
            {"kind": "write_off"},
            {"kind": "pay_residual", "tranche": "Sub"},
        ]},
    )  # fmt: skip
    scenario = {"obligor_defaults": [{"obligor": "O2", "period": 2}],
                "recovery": {"rate": 0.0, "lag_periods": 0}}  # fmt: skip
    res = run(deal, scenario, jit=jit)
    assert tranche_item(res, "A1", L.LT_PRINCIPAL_PAID)[1] == pytest.approx(0.9, **APPROX)
    assert tranche_item(res, "A1", L.LT_WRITE_DOWN)[1] == pytest.approx(0, **APPROX)
    assert tranche_item(res, "A2", L.LT_WRITE_DOWN)[1] == pytest.approx(28.5, **APPROX)
    cr = tranche_item(res, "A1", L.LT_COVERAGE_RATIO)[0]
    assert cr == pytest.approx(10 / 2.7, **APPROX)  # A1's dues alone
    deal["waterfalls"]["normal"][1]["mode"] = "sequential"
    res = run(deal, scenario, jit=jit)
    assert tranche_item(res, "A1", L.LT_PRINCIPAL_PAID)[1] == pytest.approx(1.5, **APPROX)
    assert tranche_item(res, "A2", L.LT_PRINCIPAL_PAID)[1] == pytest.approx(0, **APPROX)


def test_a_pari_passu_class_is_listed_together():
    """A1, B, A2 with A1 and A2 labelled one class: refused at the label that is not next to
    its class, naming the other tranche."""
    deal = base_deal(
        tranches=[{"name": "A1", "balance": 50.0, "pari_passu": "A"},
                  {"name": "B", "balance": 20.0},
                  {"name": "A2", "balance": 30.0, "pari_passu": "A"}],
        waterfalls={"normal": [{"kind": "pay_principal", "tranches": ["A1", "B", "A2"],
                                "allow_out_of_order": True}]},
    )  # fmt: skip
    with pytest.raises(DealError) as err:
        compile_deal(parse_deal(deal))
    (problem,) = err.value.problems
    assert problem.path == "tranches[2].pari_passu"
    assert "tranches[0] ('A1'), not next to it" in str(problem)
