"""Payment dates, business-day adjustment, calendars and day-count fractions."""

from __future__ import annotations

import calendar as _calendar
import datetime as dt
from collections.abc import Callable

import numpy as np

from ..schema.dates import PERIODS_PER_YEAR, Dates, HolidayCalendar, NamedCalendar

__all__ = [
    "PeriodSchedule",
    "add_months",
    "adjust",
    "build_schedule",
    "register_calendar",
    "year_fraction",
]

#: A calendar is a predicate: is this date a business day?
BusinessDayFn = Callable[[dt.date], bool]
_REGISTRY: dict[str, BusinessDayFn] = {}


def register_calendar(name: str, is_business_day: BusinessDayFn) -> None:
    """Make a calendar available to deal files as ``calendar = {kind = "named", name = ...}``."""
    _REGISTRY[name] = is_business_day


def _weekends(d: dt.date) -> bool:
    return d.weekday() < 5


def calendar_fn(spec: object) -> BusinessDayFn:
    """The business-day predicate for a schema calendar."""
    if isinstance(spec, HolidayCalendar):
        hols = set(spec.holidays)
        work = set(spec.working_weekends)
        return lambda d: d in work or (d.weekday() < 5 and d not in hols)
    if isinstance(spec, NamedCalendar):
        if spec.name not in _REGISTRY:
            raise KeyError(spec.name)
        return _REGISTRY[spec.name]
    return _weekends


def add_months(d: dt.date, months: int, day: int | None = None) -> dt.date:
    """``d`` moved by ``months`` calendar months, on ``day`` (default d.day) clipped to the
    month's end."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    last = _calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(day or d.day, last))


def adjust(d: dt.date, roll: str, is_business_day: BusinessDayFn) -> dt.date:
    """Roll a date to a business day: following, modified following (stay in the month,
    else roll back), preceding, or none."""
    if roll == "none" or is_business_day(d):
        return d
    one = dt.timedelta(days=1)
    if roll == "preceding":
        x = d
        while not is_business_day(x):
            x -= one
        return x
    x = d
    while not is_business_day(x):
        x += one
    if roll == "modified_following" and x.month != d.month:
        x = d
        while not is_business_day(x):
            x -= one
    return x


def year_fraction(start: dt.date, end: dt.date, day_count: str) -> float:
    """Accrual fraction in years between two dates: ACT/365F, ACT/360 or 30/360 (bond basis)."""
    if day_count == "ACT/365F":
        return (end - start).days / 365.0
    if day_count == "ACT/360":
        return (end - start).days / 360.0
    if day_count == "30/360":
        d1 = min(start.day, 30)
        d2 = min(end.day, 30) if d1 == 30 else end.day
        return (360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)) / 360.0
    raise ValueError(f"unknown day count {day_count!r}")


class PeriodSchedule:
    """The deal's payment periods.

    Attributes
    ----------
    unadjusted : list[date]  (T)
        Scheduled payment dates before business-day adjustment.
    payment_dates : list[date]  (T)
        Adjusted payment dates.
    accrual_start, accrual_end : list[date]  (T)
        Accrual interval of each period (closing → first adjusted date, then date to date).
    periods_per_year : int
    """

    def __init__(self, dates: Dates):
        is_bd = calendar_fn(dates.calendar)
        step = 12 // PERIODS_PER_YEAR[dates.frequency]
        fp = dates.first_payment
        # end-of-month rule: a first payment on a month's last day keeps later dates on month ends
        eom = fp.day == _calendar.monthrange(fp.year, fp.month)[1]
        unadj: list[dt.date] = []
        k = 0
        while True:
            d = add_months(fp, step * k, 31 if eom else fp.day)
            if d >= dates.legal_final:
                break
            unadj.append(d)
            k += 1
        unadj.append(dates.legal_final)
        self.periods_per_year = PERIODS_PER_YEAR[dates.frequency]
        self.closing = dates.closing
        self.unadjusted = unadj
        self.payment_dates = [adjust(d, dates.business_day, is_bd) for d in unadj]
        self.accrual_start = [dates.closing, *self.payment_dates[:-1]]
        self.accrual_end = list(self.payment_dates)
        self.day_count = dates.day_count

    def __len__(self) -> int:
        return len(self.payment_dates)

    def accruals(self, day_count: str | None = None) -> np.ndarray:
        """Accrual fraction per period (years), float64[T]."""
        dc = day_count or self.day_count
        return np.array(
            [
                year_fraction(a, b, dc)
                for a, b in zip(self.accrual_start, self.accrual_end, strict=True)
            ],
            dtype=np.float64,
        )

    def years_from_closing(self) -> np.ndarray:
        """ACT/365F years from closing to each adjusted payment date, float64[T]."""
        return np.array(
            [(d - self.closing).days / 365.0 for d in self.payment_dates], dtype=np.float64
        )

    def period_of(self, d: dt.date) -> int:
        """0-based period whose unadjusted interval (previous date, date] contains ``d``;
        -1 if on or before closing, T if after legal final."""
        if d <= self.closing:
            return -1
        for k, end in enumerate(self.unadjusted):
            if d <= end:
                return k
        return len(self.unadjusted)


def build_schedule(dates: Dates) -> PeriodSchedule:
    return PeriodSchedule(dates)
