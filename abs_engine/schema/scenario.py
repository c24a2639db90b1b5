"""Deterministic scenarios: default, prepayment and recovery assumptions, named obligor
defaults, support-provider defaults and rate shocks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import Field, model_validator

from .common import (
    FieldError,
    LagPeriods,
    Model,
    OutputName,
    PosInt,
    Rate,
    SchemaVersion,
    Share,
    SourcedModel,
)

#: one value per period (the last repeats): at least one value
ShareList = Annotated[list[Share], Field(min_length=1)]


class NoDefaults(Model):
    kind: Literal["none"]


class CdrDefaults(Model):
    """Constant annual default rate, or one annual rate per payment period (the last value
    repeats). Applied to the performing balance at the start of each period as
    d = 1 - (1 - cdr)^(1 / periods_per_year)."""

    kind: Literal["cdr"]
    cdr: Share | ShareList


class CumulativeDefaults(Model):
    """Cumulative defaults of ``cumulative`` × original pool balance, spread over periods by
    ``timing`` (shares per period from period 1, summing to 1)."""

    kind: Literal["cumulative"]
    cumulative: Share
    timing: list[Share] = Field(min_length=1)

    @model_validator(mode="after")
    def _sum(self) -> CumulativeDefaults:
        total = sum(self.timing)
        if abs(total - 1.0) > 1e-9:
            raise FieldError(("timing",), f"timing shares must sum to 1, they sum to {total:.10g}")
        return self


DefaultAssumption = Annotated[
    NoDefaults | CdrDefaults | CumulativeDefaults, Field(discriminator="kind")
]


class ObligorDefault(Model):
    """Named obligors default in full in ``period`` (1-based): by ``obligor`` id, or the
    ``largest`` k obligors by original balance."""

    period: PosInt
    obligor: str | None = None
    largest: PosInt | None = None

    @model_validator(mode="after")
    def _one(self) -> ObligorDefault:
        if (self.obligor is None) == (self.largest is None):
            raise ValueError("give exactly one of obligor or largest")
        return self


class Prepayment(Model):
    """Constant annual CPR or one per period (last value repeats); period SMM =
    1 - (1 - cpr)^(1 / periods_per_year), applied after defaults and scheduled principal."""

    cpr: Share | ShareList = 0.0


class RecoveryOverride(Model):
    rate: Share
    lag_periods: LagPeriods


class SupportDefault(Model):
    """The provider of ``support`` defaults in ``period`` (1-based) and pays nothing from then."""

    support: str
    period: PosInt = 1


class DeterministicScenario(SourcedModel):
    """A deterministic (rating-agency style) scenario, applied to every obligor alike."""

    schema_version: SchemaVersion = 1
    kind: Literal["deterministic"] = "deterministic"
    name: OutputName
    description: str = ""
    defaults: DefaultAssumption = Field(default_factory=lambda: NoDefaults(kind="none"))
    obligor_defaults: list[ObligorDefault] = Field(default_factory=list)
    prepayment: Prepayment = Field(default_factory=Prepayment)
    recovery: RecoveryOverride | None = None
    support_defaults: list[SupportDefault] = Field(default_factory=list)
    base_rate: Rate | None = None
    rate_shock_bps: Annotated[float, Field(strict=True, ge=-1000, le=5000)] = 0.0

    @model_validator(mode="after")
    def _no_twice(self) -> DeterministicScenario:
        # An obligor defaults once, a provider defaults once: naming one twice is a mistake
        # (overlaps between ``largest`` events need the pool and are checked when compiled).
        obligors = (ev.obligor for ev in self.obligor_defaults)
        _named_once("obligor_defaults", "obligor", obligors, "an obligor")
        supports = (sd.support for sd in self.support_defaults)
        _named_once("support_defaults", "support", supports, "a provider")
        return self


def _named_once(events: str, key: str, names: Iterable[str | None], who: str) -> None:
    """A :class:`FieldError` at the second event of ``events`` that names the same ``key``
    (None: an event that names none)."""
    seen: dict[str, int] = {}
    for k, name in enumerate(names):
        if name is None:
            continue
        if name in seen:
            raise FieldError(
                (events, k, key),
                f"{key} {name!r} already defaults in {events}[{seen[name]}] ({who} can default "
                "only once)",
            )
        seen[name] = k


__all__ = [
    "CdrDefaults",
    "CumulativeDefaults",
    "DefaultAssumption",
    "DeterministicScenario",
    "NoDefaults",
    "ObligorDefault",
    "Prepayment",
    "RecoveryOverride",
    "SupportDefault",
]
