"""All user-facing error types and messages of abs_engine.

Every input problem is reported as a :class:`Problem` naming the file, the field path
(``tranches[1].balance``) and the offending value. A :class:`DealError` carries one or more
problems; the CLI prints them all and exits with status 2, without a traceback.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "EXIT_ERROR",
    "EXIT_INPUT",
    "EXIT_OK",
    "AbsEngineError",
    "ArgumentTypeError",
    "DealError",
    "InputError",
    "Problem",
    "check_bool",
    "check_choice",
    "check_int",
    "check_optional_bool",
    "check_path",
    "check_real",
    "int_in",
    "names_its_arguments",
    "format_loc",
    "short_repr",
]


#: exit status of a command: success; a command that could not finish (an output folder that
#: cannot be written, an unexpected error); bad input (every problem printed, no traceback)
EXIT_OK, EXIT_ERROR, EXIT_INPUT = 0, 1, 2


class AbsEngineError(Exception):
    """Base class of every error raised on purpose by abs_engine."""


class DealWarning(UserWarning):
    """A deal that is legal but probably not meant (notes against the pool, ``pay_residual``
    placement): issued by ``simulate`` and ``run_deterministic``; the command line prints the
    same text as ``warning: ...`` lines instead."""


class InputError(AbsEngineError, ValueError):
    """A bad argument to the Python API (not a file problem). The message names the function's
    argument and the value given."""


class ArgumentTypeError(InputError, TypeError):
    """An argument of the wrong type (``load_deal(123)``, ``threads=1.5``): both an
    :class:`InputError` and a ``TypeError``."""


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr`` of a value, cut to ``limit`` characters so an error line stays readable; a
    NumPy scalar as the Python number it holds (``1e+300``, not ``np.float64(1e+300)``)."""
    if (
        type(value).__module__ == "numpy"
        and hasattr(value, "item")
        and getattr(value, "ndim", 1) == 0
    ):
        value = value.item()
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


def _short_file(file: str, limit: int = 160) -> str:
    """A file name for an error line: a path of thousands of characters is cut in the middle."""
    if len(file) <= limit:
        return file
    half = (limit - 20) // 2
    return f"{file[:half]}...({len(file):,} characters)...{file[-half:]}"


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
        text = f"{_short_file(self.file)}: {self.path}: {self.message}"
        if self.value is not _MISSING:
            text += f" (got {short_repr(self.value)})"
        return text

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"file": self.file, "path": self.path, "message": self.message}
        if self.value is not _MISSING:
            out["value"] = short_repr(self.value)
        return out


class DealError(AbsEngineError, ValueError):
    """One or more problems in a deal, tape or scenario file. ``problems`` lists them all, or
    the first of them and a line counting the rest; ``total`` counts them all (a tape's 100
    bad rows: 20 listed, a line for the other 80, a total of 100)."""

    def __init__(self, problems: Sequence[Problem], total: int | None = None):
        if not problems:
            raise ValueError("DealError needs at least one problem")
        self.problems = list(problems)
        self.total = len(self.problems) if total is None else total
        super().__init__(self._text())

    def _text(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{self.total} problems:"]
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
        #: things that are allowed but probably wrong (reported, never raised)
        self.warnings: list[Problem] = []

    def warn(self, path: str, message: str, value: Any = _MISSING) -> None:
        self.warnings.append(Problem(self.file, path, message, value))

    def add(self, path: str, message: str, value: Any = _MISSING) -> None:
        self.problems.append(Problem(self.file, path, message, value))

    def add_at(self, file: str | Path, path: str, message: str, value: Any = _MISSING) -> None:
        """A problem located in another file (e.g. a pool tape named by the deal)."""
        self.problems.append(Problem(str(file), path, message, value))

    def raise_if_any(self) -> None:
        if self.problems:
            raise DealError(self.problems)


# --- argument checks for the public Python API ----------------------------------------------------
#
# Each names the argument as the caller wrote it (``simulate: threads``) and the value given, and
# raises ArgumentTypeError for a wrong type, InputError for a value out of range. Booleans are not
# integers or numbers here: ``n_paths=True`` is refused, not taken as 1.


_T = TypeVar("_T")


def _where(func: str, arg: str) -> str:
    return f"{func}: {arg}" if func else arg


def check_instance(value: Any, cls: type[_T], func: str, arg: str, hint: str = "") -> _T:
    """``value`` when it is a ``cls``; else :class:`ArgumentTypeError`, "func: arg must be a
    Cls<hint>, got <value> (<type>)" (``hint``, e.g. " (from compile_deal)", says where
    one comes from)."""
    if not isinstance(value, cls):
        raise ArgumentTypeError(
            f"{_where(func, arg)} must be a {cls.__name__}{hint}, got {short_repr(value)} "
            f"({type(value).__name__})"
        )
    return value


def int_in(value: Any, lo: int, hi: int, what: str) -> int:
    """An integer (not a bool) in [lo, hi], or an :class:`ArgumentTypeError` (not an
    integer) or :class:`InputError` (out of range) naming ``what``: "``what`` must be an
    integer from lo to hi, got ..."."""
    msg = f"{what} must be an integer from {lo:,} to {hi:,}, got {short_repr(value)}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(msg)
    if not lo <= int(value) <= hi:
        raise InputError(msg)
    return int(value)


_F = TypeVar("_F", bound=Callable[..., Any])


def names_its_arguments(func: str) -> Callable[[_F], _F]:
    """A public function's argument errors (:class:`InputError` and its kinds, raised by the
    checks it calls) carry its name first, ``func: ...``, as the README's API contract has
    them (a solver's said "n_paths must be ..." or named a helper)."""

    def decorate(f: _F) -> _F:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return f(*args, **kwargs)
            except InputError as exc:
                msg = str(exc)
                if msg.startswith(f"{func}: "):
                    raise
                try:
                    named = type(exc)(f"{func}: {msg}")
                except Exception:  # a kind built otherwise: as it is
                    raise exc from None
                raise named from None

        return wrapper  # type: ignore[return-value]

    return decorate


def check_int(value: Any, func: str, arg: str, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an ``int`` (a Python or NumPy integer, not a bool) in [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(
            f"{_where(func, arg)} must be an integer, got {short_repr(value)} "
            f"({type(value).__name__})"
        )
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = (
            f"from {lo:,} to {hi:,}"
            if lo is not None and hi is not None
            else (f"at least {lo:,}" if lo is not None else f"at most {hi:,}")
        )
        raise InputError(f"{_where(func, arg)} must be an integer {rng}, got {short_repr(value)}")
    return v


def check_real(
    value: Any,
    func: str,
    arg: str,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
) -> float:
    """``value`` as a finite ``float`` (an int or float, not a bool) in [lo, hi] (or (lo, hi]
    with ``lo_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(
            f"{_where(func, arg)} must be a number, got {short_repr(value)} "
            f"({type(value).__name__})"
        )
    try:
        v = float(value)
    except (OverflowError, ValueError):
        raise InputError(f"{_where(func, arg)} is out of range: {short_repr(value)}") from None
    if not math.isfinite(v):
        raise InputError(f"{_where(func, arg)} must be a finite number, got {short_repr(value)}")
    below = lo is not None and (v <= lo if lo_open else v < lo)
    if below or (hi is not None and v > hi):
        left = "(" if lo_open else "["
        rng = (
            f"in {left}{lo:g}, {hi:g}]"
            if lo is not None and hi is not None
            else (
                f"{'above' if lo_open else 'at least'} {lo:g}"
                if lo is not None
                else f"at most {hi:g}"
            )
        )
        raise InputError(f"{_where(func, arg)} must be a number {rng}, got {short_repr(value)}")
    return v


def check_bool(value: Any, func: str, arg: str) -> bool:
    """``value`` as a ``bool`` (True/False or a NumPy bool; not ``"no"`` or 0)."""
    # NumPy's bool is numpy.bool_ before 2.0 and numpy.bool from it
    if isinstance(value, bool) or (
        type(value).__module__ == "numpy" and type(value).__name__ in ("bool_", "bool")
    ):
        return bool(value)
    raise ArgumentTypeError(
        f"{_where(func, arg)} must be True or False, got {short_repr(value)} "
        f"({type(value).__name__})"
    )


def check_optional_bool(value: Any, func: str, arg: str) -> bool | None:
    return None if value is None else check_bool(value, func, arg)


def check_choice(value: Any, func: str, arg: str, choices: Sequence[str]) -> str:
    """``value`` is one of the strings ``choices``."""
    if not isinstance(value, str):
        raise ArgumentTypeError(
            f"{_where(func, arg)} must be a string, one of {list(choices)}, got "
            f"{short_repr(value)} ({type(value).__name__})"
        )
    if value not in choices:
        raise InputError(
            f"{_where(func, arg)}: unknown value {short_repr(value)}; expected one of "
            f"{list(choices)}"
        )
    return value


def check_path(value: Any, func: str, arg: str) -> Path:
    """``value`` (a ``str`` or ``os.PathLike`` naming a file) as a ``Path``; an empty string or
    one with a NUL character is refused."""
    if isinstance(value, bytes) or not isinstance(value, str | os.PathLike):
        raise ArgumentTypeError(
            f"{_where(func, arg)} must be a file path (str or pathlib.Path), got "
            f"{short_repr(value)} ({type(value).__name__})"
        )
    try:
        text = os.fspath(value)
    except TypeError as exc:  # a PathLike whose __fspath__ returns something odd
        raise ArgumentTypeError(f"{_where(func, arg)} is not a usable path: {exc}") from None
    if not isinstance(text, str):
        raise ArgumentTypeError(f"{_where(func, arg)} must be a text path, got {short_repr(text)}")
    if not text.strip():
        raise InputError(f"{_where(func, arg)} is an empty path")
    if "\x00" in text:
        raise InputError(f"{_where(func, arg)} contains a NUL character: {short_repr(text)}")
    return Path(text)
