"""Tranches (notes), senior fees and cash accounts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Literal

from pydantic import Field, model_validator

from .common import (
    Bool,
    FieldError,
    Model,
    Money,
    NonNegInt,
    NonNegRate,
    OutputName,
    PosInt,
    Rate,
)
from .dates import DayCount


class FixedCoupon(Model):
    """Fixed annual coupon rate (decimal)."""

    kind: Literal["fixed"]
    rate: NonNegRate


class FloatingCoupon(Model):
    """Base rate (from the scenario's ``base_rate``) + ``spread``, bounded by floor and cap."""

    kind: Literal["floating"]
    spread: Rate
    floor: Rate | None = None
    cap: Rate | None = None

    @model_validator(mode="after")
    def _bounds(self) -> FloatingCoupon:
        if self.floor is not None and self.cap is not None and self.cap < self.floor:
            raise ValueError(f"cap {self.cap} is below floor {self.floor}")
        return self


class NoCoupon(Model):
    """No stated coupon (a residual / equity tranche paid only principal and excess cash)."""

    kind: Literal["none"]


Coupon = Annotated[FixedCoupon | FloatingCoupon | NoCoupon, Field(discriminator="kind")]


class StepUp(Model):
    """Coupon step-up of ``spread`` (decimal) from payment period ``from_period`` (1-based)."""

    from_period: PosInt
    spread: Rate


#: words a tranche may not be named, and what they mean: a fee's ``base`` and a reserve
#: target's ``of`` take a tranche name or one of these (compile.waterfall's bases); outputs
#: name the pool's columns ``pool.<item>`` beside the tranches' ``<tranche>.<item>`` (a
#: tranche named "pool" overwrote them)
RESERVED_TRANCHE_NAMES = {
    "pool": "the performing pool balance (and the pool's output columns are 'pool.<item>')",
    "notes": "the notes' total balance",
    "original_pool": "the original pool balance",
}


class Tranche(Model):
    """One class of notes. Listed in order of seniority, most senior first.

    principal:
      ``sequential``  principal paid in seniority order within a ``pay_principal`` step;
      ``pro_rata``    principal shared by balance with the other tranches of the step (a
                      step whose tranches are all pro_rata defaults to mode = pro_rata; a
                      step of mixed kinds, mode not given, pays a run of consecutive
                      pro_rata tranches it lists by balance in its place, as their principal
                      due is shared; ``mode = "sequential"`` pays strictly in list order);
      ``target_balance``  paid down to ``target_balances[t]`` each period (scheduled notes),
                      out of all available funds (not in a pro-rata step of principal due);
      ``residual``    equity: principal after all notes, then every yuan left (``pay_residual``).

    pari_passu: a class label; consecutive tranches with the same label are one class, of
    equal rank: written down together by balance, one coverage ratio (over the class's
    dues), one attachment point, and reserve and support draws for the class's tranches
    listed together share what they pay by what each is owed. Without it a tranche is a
    class of its own, ranked by its place in the list.
    """

    name: OutputName
    balance: Money
    coupon: Coupon = Field(default_factory=lambda: NoCoupon(kind="none"))
    day_count: DayCount | None = None
    principal: Literal["sequential", "pro_rata", "target_balance", "residual"] = "sequential"
    target_balances: list[Money] | None = None
    step_up: StepUp | None = None
    interest_on_shortfall: Bool = False
    pari_passu: OutputName | None = None

    @model_validator(mode="after")
    def _not_reserved(self) -> Tranche:
        if self.name in RESERVED_TRANCHE_NAMES:
            raise FieldError(
                ("name",),
                f"{self.name!r} is reserved: as a fee's base or a reserve target's balance it "
                f"means {RESERVED_TRANCHE_NAMES[self.name]}; name the tranche otherwise",
            )
        return self

    @model_validator(mode="after")
    def _targets(self) -> Tranche:
        if self.principal == "target_balance" and not self.target_balances:
            raise FieldError(
                ("target_balances",),
                "principal 'target_balance' needs target_balances (one per period)",
            )
        if self.principal != "target_balance" and self.target_balances:
            raise FieldError(
                ("target_balances",),
                "target_balances is only used with principal = 'target_balance'",
            )
        return self


class Fee(Model):
    """A senior fee (trustee, custodian, manager, rating...), paid with a ``pay_fee`` step.

    Per period: ``rate`` × base balance × accrual fraction + ``fixed`` (yuan), bounded by
    ``floor`` and ``cap`` (yuan per period). Unpaid amounts carry forward.
    base: ``pool`` (performing pool balance at period start), ``notes`` (all tranches), or a
    tranche name.
    """

    name: OutputName
    rate: Annotated[float, Field(strict=True, ge=0, le=0.2)] = 0.0
    base: str = "pool"
    fixed: Money = 0.0
    floor: Money | None = None
    cap: Money | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Fee:
        if self.floor is not None and self.cap is not None and self.cap < self.floor:
            raise ValueError(f"cap {self.cap} is below floor {self.floor}")
        return self


class FixedTarget(Model):
    kind: Literal["fixed"]
    amount: Money


class PercentTarget(Model):
    """``rate`` × a balance at period start: ``pool``, ``notes``, ``original_pool`` or a tranche."""

    kind: Literal["percent"]
    rate: Annotated[float, Field(strict=True, ge=0, le=1)]
    of: str = "notes"
    floor: Money = 0.0


class NextInterestTarget(Model):
    """The next period's interest (and senior fees, when ``include_fees``) on ``tranches``."""

    kind: Literal["next_period_interest"]
    tranches: list[str] = Field(min_length=1)
    include_fees: Bool = False


ReserveTarget = Annotated[
    FixedTarget | PercentTarget | NextInterestTarget, Field(discriminator="kind")
]


class Account(Model):
    """A cash reserve account. ``initial_balance`` is funded at closing (outside the pool);
    ``fund_reserve`` steps top it up to ``target`` from the waterfall, ``draw_reserve`` steps
    pay shortfalls from it. Balance above target is released into available funds, and the
    whole balance is released in the final period."""

    name: OutputName
    target: ReserveTarget
    initial_balance: Money = 0.0


def _runs(tranches: Sequence[Tranche], key: Callable[[Tranche], object]) -> list[tuple[int, int]]:
    """Each tranche's run as (first, end) indices into ``tranches``: the consecutive
    tranches with its ``key``, not None; the tranche alone where its key is None."""
    out: list[tuple[int, int]] = []
    j = 0
    while j < len(tranches):
        end = j + 1
        k = key(tranches[j])
        if k is not None:
            while end < len(tranches) and key(tranches[end]) == k:
                end += 1
        out += [(j, end)] * (end - j)
        j = end
    return out


def tranche_classes(tranches: Sequence[Tranche]) -> list[tuple[int, int]]:
    """Each tranche's class as (first, end) indices into ``tranches``, listed most senior
    first: the tranche alone, or its run of consecutive tranches of one ``pari_passu`` label
    (one class, of equal rank: drawn for and written down by balance together, with one
    coverage ratio and one attachment point). The compiler refuses a label whose tranches
    are not consecutive."""
    return _runs(tranches, lambda t: t.pari_passu)


def pro_rata_runs(tranches: Sequence[Tranche]) -> list[tuple[int, int]]:
    """Each tranche's run of consecutive ``pro_rata`` tranches as (first, end) indices (the
    tranche alone for any other kind): principal due is shared by balance over a run, and a
    sequential step of mixed kinds pays a run it lists so."""
    return _runs(tranches, lambda t: t.principal if t.principal == "pro_rata" else None)


__all__ = [
    "Account",
    "Coupon",
    "Fee",
    "FixedCoupon",
    "FixedTarget",
    "FloatingCoupon",
    "NextInterestTarget",
    "NoCoupon",
    "NonNegInt",
    "PercentTarget",
    "ReserveTarget",
    "StepUp",
    "Tranche",
    "pro_rata_runs",
    "tranche_classes",
]
