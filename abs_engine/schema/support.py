"""Credit support: shortfall-payment undertakings (差额支付承诺), guarantees, and loss
compensation (风险补偿资金池 / IP-pledge insurance)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .common import Model, Money, OutputName, Share


class Provider(Model):
    """Who stands behind a support. ``annual_pd`` and ``correlation`` feed the Monte Carlo
    (the provider is one more latent variable); deterministic scenarios switch it off by name.
    ``sector``: the pool sector whose factor the provider loads on in a sector-factor model
    (default: the sector with the largest pool balance)."""

    name: str
    annual_pd: Annotated[float, Field(strict=True, ge=0, lt=1)] = 0.0
    correlation: Annotated[float, Field(strict=True, ge=0, lt=1)] = 0.0
    sector: str | None = None


class ShortfallSupport(Model):
    """A shortfall-payment undertaking or a guarantee, drawn with a ``draw_support`` step.

    covers: ``interest`` (the interest of ``tranches`` unpaid at the draw, this period's and
    any carried shortfall), ``principal_at_maturity`` (their outstanding balance in the final
    period), or ``both``. ``cap`` bounds the cumulative amount paid (yuan); none means
    unlimited. After the provider defaults it pays nothing.
    """

    kind: Literal["shortfall_undertaking", "guarantee"]
    name: OutputName
    provider: Provider
    tranches: list[str] = Field(min_length=1)
    covers: Literal["interest", "principal_at_maturity", "both"] = "both"
    cap: Money | None = None


class LossCompensation(Model):
    """A government risk-compensation fund or IP-pledge insurance: reimburses ``share`` of
    each period's realised default loss (defaulted principal less recovery, booked when the
    recovery is received), ``lag_periods`` later, up to a cumulative ``cap`` (yuan)."""

    kind: Literal["loss_compensation"]
    name: OutputName
    provider: Provider
    share: Share
    cap: Money | None = None
    lag_periods: Annotated[int, Field(strict=True, ge=0, le=40)] = 1


Support = Annotated[ShortfallSupport | LossCompensation, Field(discriminator="kind")]

__all__ = ["LossCompensation", "Provider", "ShortfallSupport", "Support"]
