"""Payment dates, business-day adjustment, calendars and day-count fractions."""

from __future__ import annotations

import calendar as _calendar
import datetime as dt
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import ArgumentTypeError, DealError, InputError, short_repr
from ..schema.dates import PERIODS_PER_YEAR, Dates, HolidayCalendar, NamedCalendar
from .calendars import BUILTIN_CALENDARS, DataCalendar, builtin_calendar

__all__ = [
    "MAX_PERIODS",
    "MAX_ROLL_DAYS",
    "PeriodSchedule",
    "add_months",
    "adjust",
    "register_calendar",
    "year_fraction",
]

#: A calendar is a predicate: is this date a business day?
BusinessDayFn = Callable[[dt.date], bool]
_REGISTRY: dict[str, BusinessDayFn] = {}

#: the most payment periods a deal may have (a century of monthly payments)
MAX_PERIODS = 1200
#: a business-day roll gives up when no business day lies within this many days
MAX_ROLL_DAYS = 366


class CalendarError(Exception):
    """A date that cannot be rolled to a business day, or a calendar function that fails;
    :class:`PeriodSchedule` turns it into a :class:`~abs_engine.errors.DealError` naming the
    deal's field."""


class CalendarFault(CalendarError):
    """A registered calendar function that raises or answers something other than a bool."""


def register_calendar(name: str, is_business_day: BusinessDayFn) -> None:
    """Make a calendar available to deal files as ``calendar = {kind = "named", name = ...}``.

    ``is_business_day(date) -> bool``. A calendar that raises, answers anything but True or
    False, or has no business day within :data:`MAX_ROLL_DAYS` days of a payment date makes
    ``compile_deal`` fail with a ``DealError`` naming ``dates.calendar``."""
    if not isinstance(name, str):
        raise ArgumentTypeError(
            f"register_calendar: name must be a string, got {short_repr(name)} "
            f"({type(name).__name__})"
        )
    if not name.strip():
        raise InputError("register_calendar: name must not be empty")
    if not callable(is_business_day):
        raise ArgumentTypeError(
            "register_calendar: is_business_day must be a function of a date returning "
            f"True or False, got {short_repr(is_business_day)} ({type(is_business_day).__name__})"
        )
    _REGISTRY[name] = is_business_day


def _weekends(d: dt.date) -> bool:
    return d.weekday() < 5


def calendar_fn(spec: object) -> BusinessDayFn:
    """The business-day predicate for a schema calendar."""
    return _business_days(spec)[0]


def _business_days(spec: object) -> tuple[BusinessDayFn, DataCalendar | None]:
    """The business-day predicate for a schema calendar, and the bundled data calendar behind
    it (which notes the years its data does not cover), if any. A registered calendar of the
    same name as a bundled one takes precedence."""
    if isinstance(spec, HolidayCalendar):
        hols = set(spec.holidays)
        work = set(spec.working_weekends)
        return (lambda d: d in work or (d.weekday() < 5 and d not in hols)), None
    if isinstance(spec, NamedCalendar):
        if spec.name in _REGISTRY:
            return _checked(_REGISTRY[spec.name], spec.name), None
        data = builtin_calendar(spec.name)
        if data is None:
            raise CalendarError(
                f"unknown calendar; bundled: {list(BUILTIN_CALENDARS)}, registered: "
                f"{sorted(_REGISTRY)}"
            )
        return data.is_business_day, data
    return _weekends, None


def _checked(fn: BusinessDayFn, name: str) -> BusinessDayFn:
    """A registered calendar whose failures (an exception, an answer that is not a bool)
    become :class:`CalendarError`."""

    def is_business_day(d: dt.date) -> bool:
        try:
            out = fn(d)
        except Exception as exc:
            text = str(exc).splitlines()[0] if str(exc) else ""
            raise CalendarFault(
                f"calendar {name!r} failed on {d}: {type(exc).__name__}: {text}"[:300]
            ) from None
        if not isinstance(out, bool | np.bool_):
            raise CalendarFault(
                f"calendar {name!r} answered {short_repr(out)} for {d}; it must return "
                "True or False"
            )
        return bool(out)

    return is_business_day


def add_months(d: dt.date, months: int, day: int | None = None) -> dt.date:
    """``d`` moved by ``months`` calendar months, on ``day`` (default d.day) clipped to the
    month's end."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    last = _calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(day or d.day, last))


def _search(d: dt.date, step: int, is_business_day: BusinessDayFn) -> dt.date:
    """The first business day after (step 1) or before (step -1) ``d``, looking at most
    :data:`MAX_ROLL_DAYS` days; :class:`CalendarError` past the calendar's end or beyond."""
    x = d
    for _ in range(MAX_ROLL_DAYS):
        try:
            x = x + dt.timedelta(days=step)
        except OverflowError:
            edge = "after 9999-12-31" if step > 0 else "before 0001-01-01"
            raise CalendarError(f"rolling {d} would need a business day {edge}") from None
        if is_business_day(x):
            return x
    side = "after" if step > 0 else "before"
    raise CalendarError(f"the calendar has no business day within {MAX_ROLL_DAYS} days {side} {d}")


def adjust(d: dt.date, roll: str, is_business_day: BusinessDayFn) -> dt.date:
    """Roll a date to a business day: following, modified following (stay in the month,
    else roll back), preceding, or none. Raises :class:`CalendarError` when no business day
    lies within :data:`MAX_ROLL_DAYS` days or the roll would leave the years 1–9999."""
    if roll == "none" or is_business_day(d):
        return d
    if roll == "preceding":
        return _search(d, -1, is_business_day)
    try:
        x = _search(d, 1, is_business_day)
    except CalendarFault:
        raise  # the calendar itself failed: not a reason to search backwards
    except CalendarError:
        if roll != "modified_following":
            raise
        return _search(d, -1, is_business_day)
    # the month of the year (a search of up to a year could land in the same month a year on)
    if roll == "modified_following" and (x.year, x.month) != (d.year, d.month):
        return _search(d, -1, is_business_day)
    return x


def _act_act_isda(start: dt.date, end: dt.date) -> float:
    """ACT/ACT (ISDA): the days in each calendar year over that year's length (365 or 366)."""
    total, a = 0.0, start
    while a < end:
        b = min(end, dt.date(a.year + 1, 1, 1)) if a.year < 9999 else end
        total += (b - a).days / (366.0 if _calendar.isleap(a.year) else 365.0)
        a = b
    return total


def _leap_days(start: dt.date, end: dt.date) -> int:
    """29 Februaries in (start, end]."""
    return sum(
        1
        for y in range(start.year, end.year + 1)
        if _calendar.isleap(y) and start < dt.date(y, 2, 29) <= end
    )


def year_fraction(start: dt.date, end: dt.date, day_count: str) -> float:
    """Accrual fraction in years between two dates: ACT/365F, ACT/360, 30/360 (bond basis),
    ACT/ACT ISDA (days in each calendar year over 365 or 366) or NL/365 (actual days less any
    29 February in (start, end], over 365)."""
    if day_count == "ACT/365F":
        return (end - start).days / 365.0
    if day_count == "ACT/360":
        return (end - start).days / 360.0
    if day_count == "ACT/ACT ISDA":
        return _act_act_isda(start, end)
    if day_count == "NL/365":
        return ((end - start).days - _leap_days(start, end)) / 365.0
    if day_count == "30/360":
        d1 = min(start.day, 30)
        d2 = min(end.day, 30) if d1 == 30 else end.day
        return (360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)) / 360.0
    raise ValueError(f"unknown day count {day_count!r}")


def _unadjusted(dates: Dates, source: str) -> list[dt.date]:
    """The payment dates before any roll: from ``first_payment`` every period, to
    ``legal_final`` (the last). End-of-month rule: a first payment on a month's last day (30
    April, 28 February) keeps every later date on its month's end."""
    step = 12 // PERIODS_PER_YEAR[dates.frequency]
    fp, lf = dates.first_payment, dates.legal_final
    months = (lf.year - fp.year) * 12 + (lf.month - fp.month)
    if months // step + 1 > MAX_PERIODS:
        raise DealError.one(
            source,
            "dates.legal_final",
            f"{dates.frequency} payments from first_payment {fp} to legal_final {lf} make "
            f"about {months // step + 1:,} periods; at most {MAX_PERIODS:,}",
            lf.isoformat(),
        )
    eom = fp.day == _calendar.monthrange(fp.year, fp.month)[1]
    unadj: list[dt.date] = []
    k = 0
    while True:
        try:
            d = add_months(fp, step * k, 31 if eom else fp.day)
        except ValueError:  # past 9999-12-31: beyond legal final anyway
            break
        if d >= lf:
            break
        unadj.append(d)
        k += 1
    unadj.append(lf)
    return unadj


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

    def __init__(self, dates: Dates, source: str = "<memory>"):
        fp, lf = dates.first_payment, dates.legal_final
        try:
            is_bd, data_calendar = _business_days(dates.calendar)
        except CalendarError as exc:
            cal = dates.calendar
            raise DealError.one(
                source, "dates.calendar.name", str(exc), getattr(cal, "name", None)
            ) from None
        unadj = _unadjusted(dates, source)
        self.periods_per_year = PERIODS_PER_YEAR[dates.frequency]
        self.closing = dates.closing
        self.unadjusted = unadj
        self.payment_dates = []
        for k, d in enumerate(unadj):
            try:
                self.payment_dates.append(adjust(d, dates.business_day, is_bd))
            except CalendarFault as exc:
                cal_name = getattr(dates.calendar, "name", None)
                raise DealError.one(source, "dates.calendar.name", str(exc), cal_name) from None
            except CalendarError as exc:
                if k == len(unadj) - 1:
                    field, value = "dates.legal_final", lf.isoformat()
                elif k == 0:
                    field, value = "dates.first_payment", fp.isoformat()
                else:
                    field, value = "dates.calendar", d.isoformat()
                msg = (
                    f"period {k + 1}'s payment date cannot be rolled ({dates.business_day}): {exc}"
                )
                raise DealError.one(source, field, msg, value) from None
        #: a bundled calendar asked about years its holiday data does not cover: the warning
        self.calendar_note = None if data_calendar is None else data_calendar.note()
        self.accrual_start = [dates.closing, *self.payment_dates[:-1]]
        self.accrual_end = list(self.payment_dates)
        self.day_count = dates.day_count

    @classmethod
    def adjusted(
        cls, dates: Dates, payment_dates: Sequence[dt.date], source: str = "<memory>"
    ) -> PeriodSchedule:
        """The schedule of ``dates`` with its adjusted ``payment_dates`` as already rolled (a
        compiled deal's): the calendar is not asked again. A calendar registered anew since
        gave a patched deal (``with_tranche_terms``) tranche accruals of other dates than its
        pool's and fees'."""
        self = cls.__new__(cls)
        self.periods_per_year = PERIODS_PER_YEAR[dates.frequency]
        self.closing = dates.closing
        self.unadjusted = _unadjusted(dates, source)
        self.payment_dates = list(payment_dates)
        self.calendar_note = None
        self.accrual_start = [dates.closing, *self.payment_dates[:-1]]
        self.accrual_end = list(self.payment_dates)
        self.day_count = dates.day_count
        return self

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
        """0-based period whose accrual interval (previous payment date, payment date], on
        the adjusted dates, contains ``d``: cash received on ``d`` is paid out on or after
        it (on the unadjusted dates, a payment due Saturday the 31st rolled back to Friday
        the 30th was paid out the day before it came in). The final period runs to the
        later of its payment date and legal final. -1 if on or before closing, T if after
        both."""
        if d <= self.closing:
            return -1
        n_t = len(self.payment_dates)
        for k, end in enumerate(self.payment_dates):
            if k == n_t - 1:
                end = max(end, self.unadjusted[-1])
            if d <= end:
                return k
        return n_t
