"""Where the bundled deals and scenarios live: in the wheel under ``abs_engine/_data``, or at
the repository root (``waterfalls/``, ``scenarios/``) in an editable install or a checkout."""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUNDLED_DEAL", "bundled_deal_path", "data_dir"]

BUNDLED_DEAL = "huake_2025.toml"
_PKG = Path(__file__).resolve().parent


def data_dir(kind: str) -> Path:
    """Folder of bundled ``waterfalls`` or ``scenarios``."""
    for cand in (_PKG / "_data" / kind, _PKG.parent / kind):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"bundled {kind}/ folder not found next to {_PKG}")


def bundled_deal_path() -> Path:
    return data_dir("waterfalls") / BUNDLED_DEAL
