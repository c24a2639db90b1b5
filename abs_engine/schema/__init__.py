"""Deal, pool and scenario schema (pydantic v2): the representation of a deal for people."""

from .deal import SCHEMA_VERSION, Deal
from .load import deal_source, load_deal, parse_deal, parse_scenario, read_tape
from .scenario import DeterministicScenario

__all__ = [
    "SCHEMA_VERSION",
    "Deal",
    "DeterministicScenario",
    "deal_source",
    "load_deal",
    "parse_deal",
    "parse_scenario",
    "read_tape",
]
