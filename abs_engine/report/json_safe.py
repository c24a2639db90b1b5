"""Plain Python values for JSON documents: NumPy scalars unwrapped, NaN and infinities as null."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["nan_to_none"]


def nan_to_none(x: Any) -> Any:
    """JSON-safe copy: NaN/inf → None, numpy scalars → Python, recursively through dicts,
    lists and tuples (tuples become lists)."""
    if isinstance(x, dict):
        return {k: nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [nan_to_none(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x
