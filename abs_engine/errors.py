"""All user-facing error types and messages of abs_engine.

Every input problem is reported as a :class:`Problem` naming the file, the field path
(``tranches[1].balance``) and the offending value. A :class:`DealError` carries one or more
problems; the CLI prints them all and exits with status 2, without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Problem", "DealError", "AbsEngineError", "format_loc", "short_repr"]


class AbsEngineError(Exception):
    """Base class of every error raised on purpose by abs_engine."""


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr`` of a value, cut to ``limit`` characters so an error line stays readable."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def format_loc(loc: Iterable[Any]) -> str:
    """Turn a pydantic location tuple into a field path: ``('tranches', 1, 'balance')`` →
    ``tranches[1].balance``. Union-member tags that pydantic inserts are dropped by the caller."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


_MISSING = object()


@dataclass(frozen=True)
class Problem:
    """One problem in one input file.

    Attributes
    ----------
    file : str
        The file the problem is in (``<memory>`` for objects built in Python).
    path : str
        Field path inside the file, e.g. ``waterfalls.normal[2].tranches[0]``.
    message : str
        What was expected and what was got.
    value : Any
        The offending value (omitted from the text when not meaningful).
    """

    file: str
    path: str
    message: str
    value: Any = _MISSING

    def __str__(self) -> str:
        text = f"{self.file}: {self.path}: {self.message}"
        if self.value is not _MISSING:
            text += f" (got {short_repr(self.value)})"
        return text

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"file": self.file, "path": self.path, "message": self.message}
        if self.value is not _MISSING:
            out["value"] = short_repr(self.value)
        return out


class DealError(AbsEngineError, ValueError):
    """One or more problems in a deal, tape or scenario file. ``problems`` lists them all."""

    def __init__(self, problems: Sequence[Problem]):
        if not problems:
            raise ValueError("DealError needs at least one problem")
        self.problems = list(problems)
        super().__init__(self._text())

    def _text(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} problems:"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)

    @classmethod
    def one(cls, file: str | Path, path: str, message: str, value: Any = _MISSING) -> DealError:
        return cls([Problem(str(file), path, message, value)])


class ProblemCollector:
    """Collects problems during a multi-check pass so that every problem is reported at once."""

    def __init__(self, file: str | Path):
        self.file = str(file)
        self.problems: list[Problem] = []

    def add(self, path: str, message: str, value: Any = _MISSING) -> None:
        self.problems.append(Problem(self.file, path, message, value))

    def add_at(self, file: str | Path, path: str, message: str, value: Any = _MISSING) -> None:
        """A problem located in another file (e.g. a pool tape named by the deal)."""
        self.problems.append(Problem(str(file), path, message, value))

    def raise_if_any(self) -> None:
        if self.problems:
            raise DealError(self.problems)
