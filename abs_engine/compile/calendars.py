"""Bundled named calendars: in a deal file ``calendar = { kind = "named", name = "CN" }``.

``CN``            mainland China working days: Monday to Friday except the State Council's
                  public holidays, plus the weekend make-up working days (调休) — the calendar
                  banks and trust payments follow.
``CN_EXCHANGE``   the Shanghai and Shenzhen exchanges: Monday to Friday except the public
                  holidays; the exchanges stay closed on make-up weekend days.

Holiday data: the ``chinesecalendar`` package (github.com/LKI/chinese-calendar, MIT licence),
which transcribes the State Council's annual holiday notices; it covers the years in
:func:`covered_years` (2004–2026 for version 1.11). Dates outside those years fall back to
weekends only, and :class:`~abs_engine.compile.schedule.PeriodSchedule` reports which years did
(a warning on ``dates.calendar.name``). No interbank variant is shipped: the interbank market's
treatment of make-up weekend days has changed over the years, so register your own with
:func:`abs_engine.register_calendar` where it matters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = ["BUILTIN_CALENDARS", "DataCalendar", "builtin_calendar", "covered_years"]

#: the bundled calendars' names, for messages
BUILTIN_CALENDARS = ("CN", "CN_EXCHANGE")


@lru_cache(maxsize=1)
def covered_years() -> tuple[int, int]:
    """First and last year of the holiday data (inclusive)."""
    from chinese_calendar import constants

    years = [d.year for d in constants.holidays]
    return min(years), max(years)


@lru_cache(maxsize=1)
def _data_version() -> str:
    from importlib.metadata import version

    return f"chinesecalendar {version('chinesecalendar')}"


@dataclass
class DataCalendar:
    """A calendar from holiday data: ``is_business_day(date)``, with the years it was asked
    about that the data does not cover (answered by weekends only) kept in ``outside``."""

    name: str
    rule: Callable[[dt.date], bool]
    outside: set[int] = field(default_factory=set)

    def is_business_day(self, d: dt.date) -> bool:
        lo, hi = covered_years()
        if not lo <= d.year <= hi:
            self.outside.add(d.year)
            return d.weekday() < 5
        return self.rule(d)

    def note(self) -> str | None:
        """The warning for dates outside the data, or None."""
        if not self.outside:
            return None
        lo, hi = covered_years()
        years = ", ".join(str(y) for y in sorted(self.outside))
        return (
            f"calendar {self.name!r} has holiday data for {lo}–{hi} ({_data_version()}); dates "
            f"in {years} were rolled on weekends only (holidays not known)"
        )


def _cn(d: dt.date) -> bool:
    from chinese_calendar import is_workday

    return bool(is_workday(d))


def _cn_exchange(d: dt.date) -> bool:
    from chinese_calendar import is_holiday

    return d.weekday() < 5 and not bool(is_holiday(d))


_RULES = {"CN": _cn, "CN_EXCHANGE": _cn_exchange}


def builtin_calendar(name: str) -> DataCalendar | None:
    """A fresh :class:`DataCalendar` for a bundled name, or None."""
    rule = _RULES.get(name)
    return None if rule is None else DataCalendar(name, rule)
