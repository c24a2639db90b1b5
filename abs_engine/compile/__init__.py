"""Validated deal → ``CompiledDeal`` of arrays; deterministic scenarios → pool flows."""

from .deal import CompiledDeal, compile_deal
from .scenario import PoolFlows, deterministic_flows

__all__ = ["CompiledDeal", "PoolFlows", "compile_deal", "deterministic_flows"]
