"""Deal dates: closing, payment schedule, day count, business-day convention, calendar."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .common import Date, FieldError, Model

Frequency = Literal["monthly", "quarterly", "semi_annual", "annual"]
DayCount = Literal["ACT/365F", "ACT/360", "30/360", "ACT/ACT ISDA", "NL/365"]
BusinessDayRoll = Literal["modified_following", "following", "preceding", "none"]

#: the longest first (stub) period, closing to first_payment: two years
MAX_FIRST_PERIOD_DAYS = 731

#: payments per year for each frequency
PERIODS_PER_YEAR = {"monthly": 12, "quarterly": 4, "semi_annual": 2, "annual": 1}


class WeekendCalendar(Model):
    """Saturdays and Sundays are holidays; nothing else."""

    kind: Literal["weekends"] = "weekends"


class HolidayCalendar(Model):
    """Weekends plus an explicit list of holidays (e.g. the PRC public holidays of the deal's
    years). ``working_weekends`` lists weekend days that are business days (调休)."""

    kind: Literal["holidays"]
    holidays: list[Date] = Field(default_factory=list)
    working_weekends: list[Date] = Field(default_factory=list)

    @model_validator(mode="after")
    def _weekends_only(self) -> HolidayCalendar:
        holidays = set(self.holidays)
        for k, d in enumerate(self.working_weekends):
            if d.weekday() < 5:
                raise FieldError(
                    ("working_weekends", k),
                    f"{d} is a {d:%A}, not a Saturday or Sunday: working_weekends lists weekend "
                    "days that are business days",
                )
            if d in holidays:
                raise FieldError(
                    ("working_weekends", k), f"{d} is listed both as a holiday and a working day"
                )
        return self


class NamedCalendar(Model):
    """A bundled calendar — ``CN`` (mainland working days: public holidays off, 调休 make-up
    weekend days on) or ``CN_EXCHANGE`` (Shanghai/Shenzhen exchanges: closed on make-up
    weekend days too); see :mod:`abs_engine.compile.calendars` — or one registered in Python
    with :func:`abs_engine.compile.schedule.register_calendar`."""

    kind: Literal["named"]
    name: str


Calendar = Annotated[WeekendCalendar | HolidayCalendar | NamedCalendar, Field(discriminator="kind")]


class Dates(Model):
    """Key dates and conventions of the deal.

    Payment dates run from ``first_payment`` every ``frequency`` months up to ``legal_final``
    (the last period ends at ``legal_final`` even if it is not on the grid). End-of-month
    rule: a ``first_payment`` on its month's last day (28 February, 30 April) puts every later
    date on its month's last day (31 May, 31 August), before the business-day roll. Accrual
    runs from the previous adjusted payment date (``closing`` for the first period).
    """

    closing: Date
    first_payment: Date
    frequency: Frequency = "quarterly"
    legal_final: Date
    day_count: DayCount = "ACT/365F"
    business_day: BusinessDayRoll = "modified_following"
    calendar: Calendar = Field(default_factory=WeekendCalendar)

    @model_validator(mode="after")
    def _ordered(self) -> Dates:
        if self.first_payment <= self.closing:
            raise FieldError(
                ("first_payment",),
                f"dates out of order: first_payment {self.first_payment} must be after "
                f"closing {self.closing}",
            )
        if self.legal_final < self.first_payment:
            raise FieldError(
                ("legal_final",),
                f"dates out of order: legal_final {self.legal_final} is before "
                f"first_payment {self.first_payment}",
            )
        if (self.first_payment - self.closing).days > MAX_FIRST_PERIOD_DAYS:
            raise FieldError(
                ("first_payment",),
                f"first_payment {self.first_payment} is more than two years after closing "
                f"{self.closing}: the first period would accrue "
                f"{(self.first_payment - self.closing).days:,} days of interest",
            )
        return self
