"""Dates, day counts, business-day rolls, obligor schedules, PD curves, IP valuation."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from abs_engine import DealError, compile_deal, register_calendar
from abs_engine.compile.pool import cumulative_pd
from abs_engine.compile.schedule import adjust, year_fraction
from abs_engine.compile.valuation import relief_from_royalty
from abs_engine.schema import parse_deal
from tests.conftest import base_deal, obligor, run

D = dt.date


def test_day_counts():
    assert year_fraction(D(2025, 1, 1), D(2026, 1, 1), "ACT/365F") == 1.0
    assert year_fraction(D(2024, 1, 1), D(2025, 1, 1), "ACT/365F") == 366 / 365
    assert year_fraction(D(2025, 1, 15), D(2025, 4, 15), "ACT/360") == 90 / 360
    # 30/360 bond basis: 31st treated as 30th when the start is the 30th/31st
    assert year_fraction(D(2025, 1, 31), D(2025, 3, 31), "30/360") == 60 / 360
    assert year_fraction(D(2025, 2, 28), D(2025, 3, 31), "30/360") == 33 / 360


def test_modified_following_on_weekends():
    wk = lambda d: d.weekday() < 5  # noqa: E731
    assert adjust(D(2028, 7, 15), "modified_following", wk) == D(2028, 7, 17)  # Sat → Mon
    # Sat 31 May 2025: following would leave the month, so roll back to Fri 30 May
    assert adjust(D(2025, 5, 31), "modified_following", wk) == D(2025, 5, 30)
    assert adjust(D(2025, 5, 31), "following", wk) == D(2025, 6, 2)
    assert adjust(D(2025, 5, 31), "preceding", wk) == D(2025, 5, 30)
    assert adjust(D(2025, 5, 31), "none", wk) == D(2025, 5, 31)
    # a calendar closed from 15 Oct 2025 to 13 Oct 2026: following lands in October a year
    # on, another month; it was taken (the month compared, not the year)
    shut = lambda d: wk(d) and not D(2025, 10, 15) <= d <= D(2026, 10, 13)  # noqa: E731
    assert adjust(D(2025, 10, 15), "modified_following", shut) == D(2025, 10, 14)


def test_holiday_calendar_and_registered_calendar():
    dates = {
        "closing": "2025-07-15",
        "first_payment": "2025-10-01",
        "frequency": "quarterly",
        "legal_final": "2026-01-01",
    }
    cal = {"kind": "holidays", "holidays": [f"2025-10-0{d}" for d in range(1, 9)]}
    cd = compile_deal(
        parse_deal(
            base_deal(
                dates={**dates, "calendar": cal}, pool={"obligors": [obligor("O1", 100, n=2)]}
            )
        )
    )
    assert cd.payment_dates[0] == D(2025, 10, 9)  # National Day week skipped
    register_calendar("never_fridays", lambda d: d.weekday() < 4)
    cd = compile_deal(
        parse_deal(
            base_deal(
                dates={**dates, "calendar": {"kind": "named", "name": "never_fridays"}},
                pool={"obligors": [obligor("O1", 100, n=2)]},
            )
        )
    )
    assert cd.payment_dates[1] == D(2026, 1, 1)  # a Thursday


def test_huake_schedule():
    import abs_engine as ae

    cd = ae.compile_deal(ae.load_deal())
    assert cd.n_periods == 12
    assert cd.payment_dates[0] == D(2025, 10, 15)
    assert cd.payment_dates[-1] == D(2028, 7, 17)  # 15 July 2028 is a Saturday
    assert cd.deal_accrual[0] == pytest.approx(92 / 365)
    assert cd.original_pool == 100_000_000
    sched = cd.pool.sched_principal
    assert sched.sum(axis=1) == pytest.approx(cd.pool.balance)
    assert sched[0] == pytest.approx(np.full(12, 1_500_000))  # 18m equal principal / 12


def test_wal_anchor_from_validation_sheet():
    """50 paid on 2023-06-30 and 50 on 2023-12-31, from 2023-01-01, ACT/365F: 0.74 years."""
    pays = [{"date": "2023-06-30", "principal": 50.0}, {"date": "2023-12-31", "principal": 50.0}]
    deal = base_deal(
        dates={
            "closing": "2023-01-01",
            "first_payment": "2023-06-30",
            "frequency": "semi_annual",
            "legal_final": "2023-12-31",
            "business_day": "none",
        },
        pool={
            "obligors": [
                obligor("O1", 100.0, amortization={"kind": "license_fee", "payments": pays})
            ]
        },
    )
    res = run(deal)
    assert [d.isoformat() for d in res.deal.payment_dates] == ["2023-06-30", "2023-12-31"]
    wal = res.sum_tr[0, 0, 4]
    assert wal == pytest.approx((180 + 364) / 2 / 365)  # 272 days: "0.74 years"
    assert np.floor(wal * 100) / 100 == 0.74


def test_level_pay_matches_annuity_formula():
    """Level payment = r·B / (1 - (1 + r)^-n) with r the periodic rate (numpy_financial.pmt)."""
    deal = base_deal(
        dates={
            "closing": "2025-01-01",
            "first_payment": "2025-02-01",
            "frequency": "monthly",
            "legal_final": "2026-01-01",
            "business_day": "none",
        },
        pool={
            "obligors": [
                obligor(
                    "O1", 1_000_000, rate=0.06, n=12, kind="level_pay", interest_basis="periodic"
                )
            ]
        },
    )
    cd = compile_deal(parse_deal(deal))
    r = 0.06 / 12
    pmt = r * 1_000_000 / (1 - (1 + r) ** -12)
    total = cd.pool.sched_principal[0] + cd.pool.sched_interest[0]
    assert total == pytest.approx(np.full(12, pmt), abs=1e-6)
    assert cd.pool.sched_principal[0].sum() == pytest.approx(1_000_000, abs=1e-6)


def test_equal_principal_and_bullet_with_late_start():
    deal = base_deal(
        pool={
            "obligors": [
                obligor(
                    "E",
                    90,
                    rate=0.1,
                    n=2,
                    kind="equal_principal",
                    amortization={"kind": "equal_principal", "n_periods": 2, "first_period": 2},
                ),
                obligor("B", 10, rate=0.1, n=3),
            ]
        }
    )
    cd = compile_deal(parse_deal(deal))
    assert cd.pool.sched_principal[0].tolist() == [0, 45, 45]
    assert cd.pool.sched_interest[0] == pytest.approx([9, 9, 4.5])
    assert cd.pool.sched_principal[1].tolist() == [0, 0, 10]


def test_pd_term_structure_hits_knots_and_flat_pd_formula():
    years = np.array([0.5, 1.0, 2.0, 3.0])
    cum = cumulative_pd([1.0, 2.0], [0.02, 0.05], years)
    assert cum[1] == pytest.approx(0.02) and cum[2] == pytest.approx(0.05)
    assert cum[0] == pytest.approx(1 - np.sqrt(0.98))  # flat hazard inside the first year
    assert cum[3] == pytest.approx(1 - 0.95 * (0.95 / 0.98))  # last hazard carried on
    cd = compile_deal(parse_deal(base_deal()))
    assert cd.pool.cum_pd[0] == pytest.approx(1 - 0.98**cd.years)


def test_relief_from_royalty_by_hand():
    # 100 revenue × 10% royalty × (1 - 25%) = 7.5 a year for 2 years at 10%
    assert relief_from_royalty(100, 0.10, 0.25, 0.10, 2) == pytest.approx(7.5 / 1.1 + 7.5 / 1.21)
    # growth 10%: second year 8.25
    assert relief_from_royalty(100, 0.10, 0.25, 0.10, 2, 0.10) == pytest.approx(
        7.5 / 1.1 + 8.25 / 1.21
    )


def test_pool_tape_csv_and_parquet(tmp_path):
    import pandas as pd

    tape = pd.DataFrame(
        {
            "id": ["T1", "T2"],
            "balance": [60.0, 40.0],
            "rate": [0.05, 0.06],
            "amortization": ["bullet", "equal_principal"],
            "n_periods": [3, 2],
            "annual_pd": [0.01, 0.03],
            "sector": ["software", "ict"],
            "recovery_rate": [0.3, None],
        }
    )
    for name, write in (
        ("tape.csv", lambda p: tape.to_csv(p, index=False)),
        ("tape.parquet", lambda p: tape.to_parquet(p)),
    ):
        write(tmp_path / name)
        deal = base_deal(pool={"tape": {"path": name}})
        cd = compile_deal(parse_deal(deal, source=tmp_path / "deal.toml", base_dir=tmp_path))
        assert cd.pool.ids == ("T1", "T2")
        assert cd.pool.sched_principal[1].tolist() == [20, 20, 0]
        assert cd.pool.recovery_rate.tolist() == [0.3, 0.2]


def test_preceding_roll_before_closing_is_an_error():
    """Closing Sat 4 Jan 2025, first payment Sun 5 Jan: 'preceding' rolls it to Fri 3 Jan."""
    deal = base_deal(
        dates={
            "closing": "2025-01-04",
            "first_payment": "2025-01-05",
            "frequency": "annual",
            "legal_final": "2027-01-05",
            "business_day": "preceding",
        },
        pool={"obligors": [obligor("O1", 100, n=3)]},
    )
    with pytest.raises(DealError) as info:
        compile_deal(parse_deal(deal))
    assert info.value.problems[0].path == "dates.first_payment"
    assert "2025-01-03" in info.value.problems[0].message


@pytest.mark.parametrize(
    ("where", "value"),
    [("pool.obligors[0].rate", -0.01), ("tranches[0].coupon.rate", -0.01)],
)
def test_negative_obligor_rate_or_fixed_coupon_is_rejected(where, value):
    deal = base_deal()
    if where.startswith("pool"):
        deal["pool"]["obligors"][0]["rate"] = value
    else:
        deal["tranches"][0]["coupon"]["rate"] = value
    with pytest.raises(DealError) as info:
        parse_deal(deal)
    assert info.value.problems[0].path == where


def test_floating_coupon_below_zero_is_floored_at_zero():
    deal = base_deal(
        tranches=[{"name": "A", "balance": 100, "coupon": {"kind": "floating", "spread": 0.001}}],
        base_rate=-0.02,
    )
    res = run(deal)
    assert (res.led_tr[0, :, 0, 1] == 0.0).all()  # LT_COUPON_RATE
    assert (res.led_tr[0, :, 0, 2] == 0.0).all()  # LT_INTEREST_DUE


def test_stub_first_period_accrues_a_stub_of_obligor_interest():
    """One-month stub, then annual periods on 30/360: the obligor pays 12% x 30/360 in the
    stub on the accrual basis, a full period's 12% on the periodic basis."""
    dates = {
        "closing": "2025-12-01",
        "first_payment": "2026-01-01",
        "frequency": "annual",
        "legal_final": "2028-01-01",
        "day_count": "30/360",
        "business_day": "none",
    }
    acc = compile_deal(
        parse_deal(base_deal(dates=dates, pool={"obligors": [obligor("O1", 100, rate=0.12)]}))
    )
    per = compile_deal(
        parse_deal(
            base_deal(
                dates=dates,
                pool={"obligors": [obligor("O1", 100, rate=0.12, interest_basis="periodic")]},
            )
        )
    )
    assert acc.pool.sched_interest[0] == pytest.approx([1.0, 12.0, 12.0])
    assert per.pool.sched_interest[0] == pytest.approx([12.0, 12.0, 12.0])


def test_pd_classes_are_the_distinct_rows_numbered_by_first_appearance():
    """Obligors with the same PD curve, correlation and factor share a class: against
    np.unique over the rows (classes renumbered in order of first appearance), on 200 random
    tables with repeated rows, zeros and negative zeros (-0.0 equals 0.0), some with NaN."""
    from abs_engine.compile.model import _classes

    rng = np.random.default_rng(1)
    for trial in range(200):
        n, t = int(rng.integers(1, 300)), int(rng.integers(1, 6))
        base = rng.random((int(rng.integers(1, 8)), t))
        cum_pd = base[rng.integers(0, len(base), n)]
        cum_pd[rng.random(n) < 0.2] = 0.0
        cum_pd[rng.random(n) < 0.2] *= -0.0
        if trial % 10 == 0:  # not from a validated deal: np.unique's classes all the same
            cum_pd[rng.random(n) < 0.1] = np.nan
        rho, factor = rng.choice([0.1, 0.2, 0.0, -0.0], n), rng.integers(0, 3, n)
        table = np.concatenate([cum_pd, rho[:, None], factor[:, None].astype(float)], axis=1)
        _, first, inverse = np.unique(table, axis=0, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        got_class, got_first = _classes(cum_pd, rho, factor)
        assert np.array_equal(got_class, rank[inverse.reshape(-1)]), trial
        assert np.array_equal(got_first, first[order]), trial


def test_a_license_fee_is_paid_out_no_earlier_than_it_comes_in():
    """Fees fall in the accrual interval (previous payment date, payment date] on the
    adjusted dates: 400,000 due Saturday 2025-05-31, whose quarter's payment date rolls back
    to Friday 05-30 (modified following), is paid out on 08-29, not the day before it came
    in; the final 600,000, due on Sunday 11-30 = legal final, still falls in the final
    period (which runs to legal final). With a CN calendar the reverse: a fee dated
    2025-10-05 is paid on 10-09, the first payment date rolled past the holiday, not in the
    next quarter."""
    pays = [{"date": "2025-05-31", "principal": 4e5}, {"date": "2025-11-30", "principal": 6e5}]
    deal = base_deal(
        dates={"closing": "2025-02-28", "first_payment": "2025-05-31", "frequency": "quarterly",
               "legal_final": "2025-11-30", "business_day": "modified_following"},
        pool={"obligors": [obligor("L", 1e6, amortization={"kind": "license_fee",
                                                            "payments": pays})]},
        tranches=[{"name": "A", "balance": 1e6, "coupon": {"kind": "fixed", "rate": 0.0}}],
    )  # fmt: skip
    cd = compile_deal(parse_deal(deal))
    assert [d.isoformat() for d in cd.payment_dates] == ["2025-05-30", "2025-08-29", "2025-11-28"]
    assert cd.pool.sched_principal[0].tolist() == [0.0, 4e5, 6e5]
    pays = [{"date": "2025-10-05", "principal": 5e5}, {"date": "2026-01-01", "principal": 5e5}]
    deal = base_deal(
        dates={"closing": "2025-07-01", "first_payment": "2025-10-01", "frequency": "quarterly",
               "legal_final": "2026-01-01", "business_day": "following",
               "calendar": {"kind": "named", "name": "CN"}},
        pool={"obligors": [obligor("L", 1e6, amortization={"kind": "license_fee",
                                                            "payments": pays})]},
        tranches=[{"name": "A", "balance": 1e6, "coupon": {"kind": "fixed", "rate": 0.0}}],
    )  # fmt: skip
    cd = compile_deal(parse_deal(deal))
    assert cd.payment_dates[0].isoformat() == "2025-10-09"
    assert cd.pool.sched_principal[0].tolist() == [5e5, 5e5]


def test_the_basel_correlation_takes_each_obligors_pd_at_one_year():
    """R = 0.12·w + 0.24·(1 − w), w = (1 − e^(−50·PD)) / (1 − e^(−50)), on the one-year PD:
    4% for a flat 4% and for a term structure through 4% at one year, whatever the payment
    dates (a six-month deal took the PD to legal final, 2.02%, and R 0.164; a first payment
    1.75 years out interpolated the curve linearly from 0: R 0.137 and 0.130)."""
    from abs_engine.compile.model import basel_correlation, compile_model
    from abs_engine.schema.stochastic import MonteCarloScenario

    basel = {"correlation": {"kind": "basel"}}
    sc = MonteCarloScenario.model_validate({"kind": "monte_carlo", "name": "m", "defaults": basel})
    expected = float(basel_correlation(np.array([0.04]))[0])
    w = (1 - np.exp(-50 * 0.04)) / (1 - np.exp(-50))
    assert expected == pytest.approx(0.12 * w + 0.24 * (1 - w), rel=1e-12)  # 0.136240
    term = {"kind": "term_structure", "horizons_years": [1.0, 2.0], "cumulative": [0.04, 0.10]}
    for final, first in (("2025-07-01", "2025-04-01"), ("2027-01-01", "2026-10-01")):
        deal = base_deal(
            dates={"closing": "2025-01-01", "first_payment": first, "frequency": "quarterly",
                   "legal_final": final, "business_day": "none"},
            pool={"obligors": [obligor("O", 1e6, n=1, pd={"kind": "flat", "annual": 0.04}),
                               obligor("P", 1e6, n=1, pd=term)]},
            tranches=[{"name": "A", "balance": 2e6, "coupon": {"kind": "fixed", "rate": 0.0}}],
        )  # fmt: skip
        rho = compile_model(compile_deal(parse_deal(deal)), sc).asset_correlation
        assert rho == pytest.approx([expected, expected], rel=1e-12), (final, rho)


def test_interest_on_shortfall_that_could_overflow_is_refused():
    """A 100% coupon compounding on its shortfall over 1,100 annual periods grows 4m to
    about 1e338 yuan: float64 overflowed and the CSV outputs held inf. Refused at the field;
    a long deal at a real coupon (360 monthly periods at 10%, 1,100 annual at 20% capped)
    is not."""
    from tests.conftest import annual_dates

    def deal(n: int, coupon: dict, dates: dict | None = None) -> dict:
        return base_deal(
            dates=dates or annual_dates(n),
            pool={"obligors": [obligor("O1", 4e6, n=n)]},
            tranches=[{"name": "A", "balance": 4e6, "coupon": coupon,
                       "interest_on_shortfall": True}],
        )  # fmt: skip

    with pytest.raises(DealError) as ei:
        compile_deal(parse_deal(deal(1100, {"kind": "fixed", "rate": 1.0})))
    (q,) = ei.value.problems
    assert q.path == "tranches[0].interest_on_shortfall" and "1e338" in q.message
    floating = {"kind": "floating", "spread": 0.01, "cap": 0.2}
    compile_deal(parse_deal(deal(1100, floating)))  # 1.2^1100 · 4e6 ≈ 1e94
    with pytest.raises(DealError):  # no cap: a base rate and shock of up to 150%
        compile_deal(parse_deal(deal(1100, {"kind": "floating", "spread": 0.01})))
    monthly = {
        "closing": "2025-01-01",
        "first_payment": "2025-02-01",
        "frequency": "monthly",
        "legal_final": "2055-01-01",
        "day_count": "30/360",
        "business_day": "none",
    }
    compile_deal(parse_deal(deal(360, {"kind": "fixed", "rate": 0.1}, monthly)))
