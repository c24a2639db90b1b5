"""Stress-grid files (``kind = "stress_grid"``): a base Monte Carlo scenario and named shocks
that *shift* it — a shocked scenario is the base with each shock applied on top of its own
assumptions, not replacing them:

``pd_multiplier``            × the base's PD multiplier
``correlation_add``          + to every obligor's asset correlation (fixed or Basel), clipped
                             to [0, 0.999]
``ip_haircut``               on top of the base's IP-value haircut: 1 - (1 - h_base)(1 - h)
``recovery_lag_add``         + periods to the recovery lag (both ends of a random lag)
``cpr``                      the prepayment rate (replaces: a CPR has no natural shift)
``provider_pd_multiplier``   × the support providers' PD multiplier
``provider_default``         every support provider in default from the first period

``abs-engine run -s stress_grid_huake`` runs the base and every shock and ends with the
side-by-side table.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from ..errors import DealError, Problem
from .common import (
    MAX_RECOVERY_LAG,
    Bool,
    FieldError,
    Model,
    Name,
    OutputName,
    SchemaVersion,
    Share,
    source_context,
)
from .load import _walk
from .stochastic import MonteCarloScenario

__all__ = ["Shock", "StressGrid", "shocked"]

Multiplier = Annotated[float, Field(strict=True, ge=0, le=50, allow_inf_nan=False)]


class Shock(Model):
    """One named shift of the base scenario (see the module docstring)."""

    name: OutputName
    pd_multiplier: Multiplier | None = None
    correlation_add: Annotated[float, Field(strict=True, ge=-1, le=1)] | None = None
    ip_haircut: Share | None = None
    recovery_lag_add: Annotated[int, Field(strict=True, ge=0, le=MAX_RECOVERY_LAG)] | None = None
    cpr: Share | None = None
    provider_pd_multiplier: Multiplier | None = None
    provider_default: Bool = False


class StressGrid(Model):
    """A stress-grid file: ``base`` (a Monte Carlo scenario name or path, looked up like
    ``--scenario``) and its ``shocks``."""

    schema_version: SchemaVersion = 1
    kind: Literal["stress_grid"]
    name: OutputName
    description: str = ""
    base: Name
    shocks: list[Shock] = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _distinct(self) -> StressGrid:
        seen: set[str] = set()
        for k, s in enumerate(self.shocks):
            if s.name in seen or s.name == self.base:
                raise FieldError(("shocks", k, "name"), f"shock name {s.name!r} used twice")
            seen.add(s.name)
        return self


def _shift_correlation(defaults: dict[str, Any], add: float) -> None:
    corr = defaults.setdefault("correlation", {"kind": "basel"})
    if corr.get("kind") == "fixed":
        corr["value"] = min(max(corr["value"] + add, 0.0), 0.999)
        corr["by_sector"] = {
            k: min(max(v + add, 0.0), 0.999) for k, v in corr.get("by_sector", {}).items()
        }
    else:
        corr["add"] = corr.get("add", 0.0) + add


def _shift_recovery(doc: dict[str, Any], shock: Shock) -> None:
    rec = doc.get("recovery")
    if shock.ip_haircut is not None:
        if not rec or rec.get("kind") != "ip_value":
            raise _ShockError("ip_haircut", "needs a base scenario with recovery kind = 'ip_value'")
        rec["haircut"] = 1.0 - (1.0 - rec.get("haircut", 0.5)) * (1.0 - shock.ip_haircut)
    if shock.recovery_lag_add:
        if not rec or rec.get("lag_periods") is None:
            raise _ShockError(
                "recovery_lag_add",
                "needs a base scenario with its own recovery model and lag_periods",
            )
        rec["lag_periods"] += shock.recovery_lag_add
        if rec.get("lag_max_periods") is not None:
            rec["lag_max_periods"] += shock.recovery_lag_add


def _apply(doc: dict[str, Any], shock: Shock) -> None:
    defaults = doc.setdefault("defaults", {})
    providers = doc.setdefault("providers", {})
    if shock.pd_multiplier is not None:
        defaults["pd_multiplier"] = defaults.get("pd_multiplier", 1.0) * shock.pd_multiplier
    if shock.correlation_add is not None:
        _shift_correlation(defaults, shock.correlation_add)
    _shift_recovery(doc, shock)
    if shock.cpr is not None:
        doc.setdefault("prepayment", {})["cpr"] = shock.cpr
    if shock.provider_pd_multiplier is not None:
        providers["pd_multiplier"] = (
            providers.get("pd_multiplier", 1.0) * shock.provider_pd_multiplier
        )
    if shock.provider_default:
        providers["disabled"] = True


def shocked(base: MonteCarloScenario, shock: Shock, grid: str, k: int) -> MonteCarloScenario:
    """The base scenario with ``shock`` (the grid's ``k``-th) applied, named after the shock;
    a result the scenario schema refuses (a PD multiplier over 50, a lag past its limit) is a
    :class:`DealError` naming the grid file and the shock."""
    doc = base.model_dump(mode="json", exclude_none=True)
    doc.update(name=shock.name, description=f"{base.name} with shock {shock.name}")
    try:
        _apply(doc, shock)
        return MonteCarloScenario.model_validate(doc, context=source_context(grid, f"shocks[{k}]"))
    except _ShockError as exc:
        problem = Problem(grid, f"shocks[{k}].{exc.field}", exc.why, getattr(shock, exc.field))
        raise DealError([problem]) from None
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [str(key) for key in _walk(doc, tuple(err.get("loc", ())))[0]]
            field = _shock_field(loc)
            where = f"{'.'.join(loc)}: " if loc else ""
            why = f"gives an invalid scenario: {where}{err.get('msg', exc)}"
            if field is None:  # no one field of the shock made it: the shock, by its name
                problems.append(Problem(grid, f"shocks[{k}]", why, shock.name))
            else:
                if "input" in err:
                    why += f" (the shifted value: {err['input']!r})"
                problems.append(Problem(grid, f"shocks[{k}].{field}", why, getattr(shock, field)))
        raise DealError(problems) from None
    except ValueError as exc:  # anything else the shifted scenario cannot be: the shock
        raise DealError([Problem(grid, f"shocks[{k}]", str(exc), shock.name)]) from None


class _ShockError(ValueError):
    """A shock field the base scenario cannot take (``field``: the shock's field)."""

    def __init__(self, field: str, why: str):
        super().__init__(f"{field} {why}")
        self.field, self.why = field, why


def _shock_field(keys: list[str]) -> str | None:
    """The shock field that shifted the scenario field at ``keys``, if one did."""
    head, last = keys[:1], keys[-1] if keys else ""
    if head == ["defaults"] and last == "pd_multiplier":
        return "pd_multiplier"
    if keys[:2] == ["defaults", "correlation"]:
        return "correlation_add"
    if head == ["recovery"] and last in ("lag_periods", "lag_max_periods"):
        return "recovery_lag_add"
    if head == ["recovery"] and last == "haircut":
        return "ip_haircut"
    if head == ["prepayment"] and last == "cpr":
        return "cpr"
    if head == ["providers"] and last == "pd_multiplier":
        return "provider_pd_multiplier"
    return None
