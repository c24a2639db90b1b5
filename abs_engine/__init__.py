"""abs_engine: structuring engine for intellectual-property asset-backed securities.

>>> import abs_engine as ae
>>> res = ae.run_deterministic()            # bundled Huake-style deal, base scenario
>>> res.tranches                            # doctest: +SKIP
>>> res["huake_base"].pool                  # doctest: +SKIP
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import (
        DeterministicResult,
        DeterministicScenarioResult,
        load_deal,
        load_scenario,
        run_deterministic,
        simulate,
    )
    from .compile.deal import CompiledDeal, compile_deal
    from .compile.schedule import register_calendar
    from .errors import (
        AbsEngineError,
        ArgumentTypeError,
        DealError,
        DealWarning,
        InputError,
        Problem,
    )
    from .metrics.rating import load_rating_table
    from .report.montecarlo import SimulationResult
    from .solvers import (
        breakeven,
        breakeven_default_rate,
        condition,
        coverage_table,
        large_obligor_test,
        load_curve,
        sensitivity,
        size_stack,
        size_tranche,
        solve_coupon,
    )

#: public name → the module defining it. Imported on first use (PEP 562), so that
#: ``import abs_engine.cli`` can guard its own heavy imports against Ctrl-C and SIGTERM.
_LAZY = {
    **dict.fromkeys(
        ["DeterministicResult", "DeterministicScenarioResult", "load_deal", "load_scenario"]
        + ["run_deterministic", "simulate"],
        ".api",
    ),
    "CompiledDeal": ".compile.deal",
    "compile_deal": ".compile.deal",
    "register_calendar": ".compile.schedule",
    **dict.fromkeys(
        ["AbsEngineError", "ArgumentTypeError", "DealError", "DealWarning", "InputError"]
        + ["Problem"],
        ".errors",
    ),
    "SimulationResult": ".report.montecarlo",
    **dict.fromkeys(
        [
            "size_tranche",
            "size_stack",
            "solve_coupon",
            "breakeven",
            "sensitivity",
            "condition",
            "load_curve",
            "breakeven_default_rate",
            "large_obligor_test",
            "coverage_table",
        ],
        ".solvers",
    ),  # fmt: skip
    "load_rating_table": ".metrics.rating",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__version__ = "0.1.0"
__all__ = [
    "AbsEngineError",
    "ArgumentTypeError",
    "CompiledDeal",
    "DealError",
    "DealWarning",
    "InputError",
    "DeterministicResult",
    "DeterministicScenarioResult",
    "Problem",
    "__version__",
    "compile_deal",
    "load_deal",
    "load_scenario",
    "register_calendar",
    "run_deterministic",
    "simulate",
    "SimulationResult",
    # solvers and agency-style tables
    "breakeven",
    "breakeven_default_rate",
    "condition",
    "coverage_table",
    "large_obligor_test",
    "load_curve",
    "load_rating_table",
    "sensitivity",
    "size_stack",
    "size_tranche",
    "solve_coupon",
]
