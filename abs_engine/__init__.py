"""abs_engine: structuring engine for intellectual-property asset-backed securities.

>>> import abs_engine as ae
>>> res = ae.run_deterministic()            # bundled Huake-style deal, base scenario
>>> res.tranches()                          # doctest: +SKIP
"""

from .api import DeterministicResult, load_deal, load_scenario, run_deterministic, simulate
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
from .simulation import SimulationResult

__version__ = "0.1.0"
__all__ = [
    "AbsEngineError",
    "ArgumentTypeError",
    "CompiledDeal",
    "DealError",
    "DealWarning",
    "InputError",
    "DeterministicResult",
    "Problem",
    "__version__",
    "compile_deal",
    "load_deal",
    "load_scenario",
    "register_calendar",
    "run_deterministic",
    "simulate",
    "SimulationResult",
]
