"""Structuring analysis on top of the engine: agency-style deterministic analysis and the
Monte Carlo solvers (par coupon, tranche sizing, breakeven, sensitivity)."""

from .agency import (
    BreakevenResult,
    base_case_default_rate,
    breakeven_default_rate,
    coverage_table,
    default_timing,
    large_obligor_test,
)
from .stack import StackSizing, size_stack
from .structuring import (
    PARAMETERS,
    DiscountCurve,
    SolverError,
    breakeven,
    condition,
    load_curve,
    sensitivity,
    size_tranche,
    solve_coupon,
    with_parameter,
)

__all__ = [
    "PARAMETERS",
    "DiscountCurve",
    "SolverError",
    "breakeven",
    "condition",
    "load_curve",
    "sensitivity",
    "size_stack",
    "size_tranche",
    "solve_coupon",
    "StackSizing",
    "with_parameter",
    "BreakevenResult",
    "base_case_default_rate",
    "breakeven_default_rate",
    "coverage_table",
    "default_timing",
    "large_obligor_test",
]
