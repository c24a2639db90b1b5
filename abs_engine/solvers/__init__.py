"""Structuring analysis on top of the engine (agency-style deterministic analysis so far)."""

from .agency import (
    BreakevenResult,
    base_case_default_rate,
    breakeven_default_rate,
    coverage_table,
    default_timing,
    large_obligor_test,
)

__all__ = [
    "BreakevenResult",
    "base_case_default_rate",
    "breakeven_default_rate",
    "coverage_table",
    "default_timing",
    "large_obligor_test",
]
