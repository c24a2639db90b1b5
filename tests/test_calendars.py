"""Bundled Chinese calendars (CN, CN_EXCHANGE) and the ACT/ACT ISDA and NL/365 day counts,
checked against dates read off the State Council's holiday notices and fractions worked by
hand."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import base_deal, obligor

from abs_engine import DealError, compile_deal, register_calendar
from abs_engine.compile.calendars import builtin_calendar, covered_years
from abs_engine.compile.schedule import adjust, year_fraction
from abs_engine.schema.load import parse_deal

D = dt.date


def _bd(name: str):
    cal = builtin_calendar(name)
    assert cal is not None
    return cal.is_business_day


# --- CN and CN_EXCHANGE ---------------------------------------------------------------------


def test_national_day_2025_rolls_to_the_ninth():
    """2025: National Day and Mid-Autumn, 1–8 October off; make-up working days Sunday
    28 September and Saturday 11 October (国务院办公厅 notice for 2025)."""
    for name in ("CN", "CN_EXCHANGE"):
        bd = _bd(name)
        assert not any(bd(D(2025, 10, d)) for d in range(1, 9))
        for roll in ("following", "modified_following"):
            assert adjust(D(2025, 10, 1), roll, bd) == D(2025, 10, 9)
        assert adjust(D(2025, 10, 1), "preceding", bd) == D(2025, 9, 30)


def test_make_up_weekend_days_count_under_cn_only():
    cn, exchange = _bd("CN"), _bd("CN_EXCHANGE")
    for d in (D(2025, 9, 28), D(2025, 10, 11), D(2025, 1, 26), D(2025, 2, 8), D(2025, 4, 27)):
        assert d.weekday() >= 5
        assert cn(d) and not exchange(d)
    # an ordinary weekend and an ordinary weekday
    assert not cn(D(2025, 10, 12)) and not exchange(D(2025, 10, 12))
    assert cn(D(2025, 10, 10)) and exchange(D(2025, 10, 10))
    # Spring Festival 2025: 28 January – 4 February off
    assert not any(cn(D(2025, 1, d)) for d in range(28, 32))
    assert not any(cn(D(2025, 2, d)) for d in range(1, 5))
    # a Saturday payment under CN on a make-up day is not rolled at all
    assert adjust(D(2025, 10, 11), "following", cn) == D(2025, 10, 11)
    assert adjust(D(2025, 10, 11), "following", exchange) == D(2025, 10, 13)


def _deal(calendar: dict, first: str = "2025-10-01", final: str = "2026-07-01") -> dict:
    dates = {
        "closing": "2025-07-15",
        "first_payment": first,
        "frequency": "quarterly",
        "legal_final": final,
        "business_day": "following",
        "calendar": calendar,
    }
    return base_deal(dates=dates, pool={"obligors": [obligor("O1", 100, n=4)]})


def test_a_deal_on_the_cn_calendar():
    cd = compile_deal(parse_deal(_deal({"kind": "named", "name": "CN"})))
    assert cd.payment_dates[0] == D(2025, 10, 9)
    assert cd.payment_dates[1] == D(2026, 1, 4)  # 1 Jan holiday, 2–3 Jan off; Sunday 4 Jan works
    assert not [w for w in cd.warnings if w.path == "dates.calendar.name"]
    ex = compile_deal(parse_deal(_deal({"kind": "named", "name": "CN_EXCHANGE"})))
    assert ex.payment_dates[1] == D(2026, 1, 5)  # the exchange skips the make-up Sunday


def test_years_beyond_the_data_fall_back_to_weekends_with_a_warning():
    lo, hi = covered_years()
    assert lo <= 2025 <= hi
    deal = _deal({"kind": "named", "name": "CN"}, f"{hi + 1}-10-01", f"{hi + 2}-07-01")
    deal["dates"]["closing"] = f"{hi + 1}-07-15"
    cd = compile_deal(parse_deal(deal))
    (w,) = [w for w in cd.warnings if w.path == "dates.calendar.name"]
    assert f"{lo}–{hi}" in w.message and f"in {hi + 1}, {hi + 2} " in w.message
    assert "weekends only" in w.message
    # 1 October of a year without data is just a weekday (or rolled past the weekend)
    d = D(hi + 1, 10, 1)
    assert cd.payment_dates[0] == d if d.weekday() < 5 else cd.payment_dates[0] > d


def test_unknown_named_calendar_lists_the_bundled_ones():
    with pytest.raises(DealError) as ei:
        compile_deal(parse_deal(_deal({"kind": "named", "name": "HK"})))
    (p,) = ei.value.problems
    assert p.path == "dates.calendar.name" and "CN_EXCHANGE" in p.message


def test_a_registered_calendar_overrides_a_bundled_name():
    register_calendar("CN", lambda d: d.weekday() < 4)  # no Fridays: plainly not the data
    try:
        cd = compile_deal(parse_deal(_deal({"kind": "named", "name": "CN"})))
        assert cd.payment_dates[0] == D(2025, 10, 1)  # a Wednesday: business day here
    finally:
        from abs_engine.compile import schedule

        schedule._REGISTRY.pop("CN", None)


# --- day counts ----------------------------------------------------------------------------------


def test_act_act_isda_across_a_leap_year():
    # 15 Nov 2023 → 15 Feb 2024: 47 days in 2023 (of 365), 45 in 2024 (of 366)
    assert year_fraction(D(2023, 11, 15), D(2024, 2, 15), "ACT/ACT ISDA") == 47 / 365 + 45 / 366
    # all of 2024: exactly one year; all of 2023 too
    assert year_fraction(D(2024, 1, 1), D(2025, 1, 1), "ACT/ACT ISDA") == 1.0
    assert year_fraction(D(2023, 1, 1), D(2024, 1, 1), "ACT/ACT ISDA") == 1.0
    # 30 Dec 2023 → 2 Jan 2025: 2/365 + 366/366 + 1/365
    got = year_fraction(D(2023, 12, 30), D(2025, 1, 2), "ACT/ACT ISDA")
    assert got == pytest.approx(2 / 365 + 1 + 1 / 365, abs=1e-15)
    assert year_fraction(D(2024, 3, 1), D(2024, 3, 1), "ACT/ACT ISDA") == 0.0


def test_nl_365_skips_29_february():
    # 15 Feb 2024 → 15 May 2024: 90 actual days, less 29 Feb: 89/365
    assert year_fraction(D(2024, 2, 15), D(2024, 5, 15), "NL/365") == 89 / 365
    # a period ending on 29 Feb counts it out; one starting on it does not
    assert year_fraction(D(2024, 2, 1), D(2024, 2, 29), "NL/365") == 27 / 365
    assert year_fraction(D(2024, 2, 29), D(2024, 3, 31), "NL/365") == 31 / 365
    # a non-leap period: the same as ACT/365F
    assert year_fraction(D(2025, 2, 15), D(2025, 5, 15), "NL/365") == 89 / 365
    # four years with one 29 February: 1,461 − 1 days
    assert year_fraction(D(2023, 1, 1), D(2027, 1, 1), "NL/365") == 1460 / 365


@pytest.mark.parametrize("dc", ["ACT/ACT ISDA", "NL/365"])
def test_deal_and_tranche_day_counts_accept_the_new_bases(dc):
    deal = _deal({"kind": "weekends"}, "2024-01-15", "2024-10-15")
    deal["dates"].update({"closing": "2023-11-15", "day_count": dc})
    deal["tranches"][0]["day_count"] = dc
    cd = compile_deal(parse_deal(deal))
    a, b = cd.accrual_start[0], cd.accrual_end[0]
    assert cd.deal_accrual[0] == year_fraction(a, b, dc)
    if dc == "ACT/ACT ISDA":
        assert cd.deal_accrual[0] == 47 / 365 + 14 / 366  # 15 Nov 2023 → 15 Jan 2024
