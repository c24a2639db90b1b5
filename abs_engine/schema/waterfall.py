"""Priorities of payments (waterfalls), triggers and the clean-up call.

A waterfall is a list of steps with named keys; the deal has one per status it can be in:
``normal`` (required), ``accelerated`` and ``post_default`` (optional). Triggers move the deal
from one status to a more severe one.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .common import Bool, Model, OutputName, PosInt, Share


class PayFee(Model):
    """Pay the named fee's amount due (current + carried forward)."""

    kind: Literal["pay_fee"]
    fee: str


class PayInterest(Model):
    """Pay interest due (current + carried shortfall) on ``tranches``; ``pro_rata`` shares
    scarce cash by amount due (pari passu), ``sequential`` pays in the listed order."""

    kind: Literal["pay_interest"]
    tranches: list[str] = Field(min_length=1)
    mode: Literal["pro_rata", "sequential"] = "pro_rata"


class PayPrincipal(Model):
    """Pay principal on ``tranches``.

    amount: ``principal_due`` pays the notes down to the performing pool balance
    (par-to-pool: all principal collections plus cover for new defaults; everything in the
    final period); ``available`` pays every yuan left (turbo, as in an accelerated waterfall).
    Tranches with ``principal = target_balance`` are paid down to their target instead, out
    of all available funds (their schedule is owed whatever the pool did), and what they take
    comes out of the excess left to the tranches after them; a pro-rata step of principal
    due may not list one (the share would ignore its schedule).
    """

    kind: Literal["pay_principal"]
    tranches: list[str] = Field(min_length=1)
    #: default: pro_rata when every listed tranche has principal = "pro_rata", else sequential
    mode: Literal["sequential", "pro_rata"] | None = None
    amount: Literal["principal_due", "available"] = "principal_due"
    allow_out_of_order: Bool = False


class FundReserve(Model):
    """Top the account up to its target from available funds."""

    kind: Literal["fund_reserve"]
    account: str


class DrawReserve(Model):
    """Pay from the account what is still unpaid on ``tranches`` at this point: interest
    due, this period's and any carried shortfall (``covers = interest``), or principal due
    (``covers = principal``), in the listed order (a ``pari_passu`` class listed together:
    shared by what each is owed)."""

    kind: Literal["draw_reserve"]
    account: str
    tranches: list[str] = Field(min_length=1)
    covers: Literal["interest", "principal"] = "interest"


class DrawSupport(Model):
    """Call the named shortfall undertaking / guarantee for what its covered tranches are
    still owed at this point, in their listed order (a ``pari_passu`` class listed together:
    shared by what each is owed, up to the cap); a defaulted provider pays nothing."""

    kind: Literal["draw_support"]
    support: str


class WriteOff(Model):
    """Write tranches down, most junior first (a ``pari_passu`` class together, by balance),
    by the principal deficiency: the amount the notes exceed the
    performing pool balance plus the recoveries still to come on defaulted receivables
    (carried at their recovery value). Balances left unpaid in the final period are always
    written off."""

    kind: Literal["write_off"]


class PayResidual(Model):
    """Pay every yuan left to the residual tranche (or into the trap account while an
    excess-spread trap is active)."""

    kind: Literal["pay_residual"]
    tranche: str


Step = Annotated[
    PayFee
    | PayInterest
    | PayPrincipal
    | FundReserve
    | DrawReserve
    | DrawSupport
    | WriteOff
    | PayResidual,
    Field(discriminator="kind"),
]


class Waterfalls(Model):
    normal: list[Step] = Field(min_length=1)
    accelerated: Annotated[list[Step], Field(min_length=1)] | None = None
    post_default: Annotated[list[Step], Field(min_length=1)] | None = None


Effect = Literal["accelerate", "event_of_default", "trap_excess_spread"]


class _TriggerBase(Model):
    name: OutputName
    effect: Effect = "accelerate"
    curable: Bool = False
    trap_account: str | None = None


class CumulativeDefaultTrigger(_TriggerBase):
    """Cumulative defaulted principal / original pool balance above ``threshold``."""

    kind: Literal["cumulative_default"]
    threshold: Share


class CoverageRatioTrigger(_TriggerBase):
    """Coverage ratio (available funds / senior fees + interest + principal due) below
    ``threshold`` for ``periods`` consecutive periods (at most the deal's periods: more
    could never fire, and are refused when the deal compiles)."""

    kind: Literal["coverage_ratio"]
    threshold: Annotated[float, Field(strict=True, gt=0, le=100)]
    periods: PosInt = 1


class SupportDefaultTrigger(_TriggerBase):
    """The provider of the named support has defaulted."""

    kind: Literal["support_default"]
    support: str


class MissedInterestTrigger(_TriggerBase):
    """Interest due on ``tranches`` was not paid in full (after all support) last period."""

    kind: Literal["missed_senior_interest"]
    tranches: list[str] = Field(min_length=1)


Trigger = Annotated[
    CumulativeDefaultTrigger | CoverageRatioTrigger | SupportDefaultTrigger | MissedInterestTrigger,
    Field(discriminator="kind"),
]


class CleanUpCall(Model):
    """The servicer buys back the pool once the pool factor (performing / original balance)
    is at or below ``pool_factor`` (and above zero): performing receivables at ``price`` ×
    balance, defaulted ones at their recovery value. The deal then ends."""

    pool_factor: Share
    price: Annotated[float, Field(strict=True, gt=0, le=2)] = 1.0


class CoverageRatioSpec(Model):
    """The deal's headline coverage ratio is that of ``tranche`` (default: the first): available
    funds / (fees due + interest and principal due on ``tranche``'s class, the tranche or its
    ``pari_passu`` class, and every tranche senior to it). ``include_fees = false`` leaves
    fees out of the denominator."""

    tranche: str | None = None
    include_fees: Bool = True


__all__ = [
    "CleanUpCall",
    "CoverageRatioSpec",
    "CoverageRatioTrigger",
    "CumulativeDefaultTrigger",
    "DrawReserve",
    "DrawSupport",
    "FundReserve",
    "MissedInterestTrigger",
    "PayFee",
    "PayInterest",
    "PayPrincipal",
    "PayResidual",
    "Step",
    "SupportDefaultTrigger",
    "Trigger",
    "Waterfalls",
    "WriteOff",
]
