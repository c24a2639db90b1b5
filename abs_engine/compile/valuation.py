"""IP collateral valuation: relief-from-royalty DCF or a given appraisal."""

from __future__ import annotations

import math

from ..schema.pool import IpCollateral

__all__ = ["ip_base_value", "relief_from_royalty"]


def relief_from_royalty(
    revenue: float,
    royalty_rate: float,
    tax_rate: float,
    discount_rate: float,
    useful_life_years: int,
    revenue_growth: float = 0.0,
) -> float:
    """Value of IP as the after-tax royalties its owner is relieved from paying (yuan).

    value = sum_{y=1..L} revenue·(1+g)^(y-1)·royalty_rate·(1-tax_rate) / (1+discount_rate)^y
    """
    value = 0.0
    for y in range(1, useful_life_years + 1):
        royalty = revenue * (1.0 + revenue_growth) ** (y - 1) * royalty_rate * (1.0 - tax_rate)
        value += royalty / (1.0 + discount_rate) ** y
    return value


def ip_base_value(c: IpCollateral | None) -> float:
    """Base value of an obligor's IP collateral (yuan); NaN when none is pledged."""
    if c is None:
        return math.nan
    if c.appraisal is not None:
        return float(c.appraisal)
    assert c.revenue is not None and c.royalty_rate is not None  # schema guarantees
    return relief_from_royalty(
        c.revenue,
        c.royalty_rate,
        c.tax_rate,
        c.discount_rate,
        c.useful_life_years,
        c.revenue_growth,
    )
