"""The ``abs-engine`` argument parser's pieces: the parser class (every error a
:class:`UsageError`, no option given twice), the argparse ``type`` converters that check each
value against its documented range, and the parsers of ``--condition`` and ``--range``.

A converter refuses what is not a number written in ASCII, NaN and infinities, and values out
of range, with a message that names the expected form and quotes what was given.
"""

from __future__ import annotations

import argparse
import decimal
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from .errors import AbsEngineError, short_repr
from .schema.stochastic import MAX_PATHS

__all__ = [
    "MAX_GRID_VALUES",
    "MAX_LARGEST",
    "MAX_LEDGER_PATHS",
    "MAX_SPREAD_BPS",
    "SYNTH_MIN_OBLIGORS",
    "Parser",
    "UsageError",
    "attach_type",
    "checked_by",
    "curve_text",
    "float_type",
    "got",
    "grid_type",
    "int_type",
    "ledger_paths_type",
    "max_threads",
    "name_type",
    "out_path",
    "param_type",
    "parse_condition",
    "parse_range",
    "path_text",
]

#: documented limits of the command line (``--help`` states them; MAX_PATHS is the scenario
#: schema's)
MAX_LEDGER_PATHS = 100
MAX_GRID_VALUES = 25
MAX_SPREAD_BPS = 10_000
MAX_LARGEST = 1_000
SYNTH_MIN_OBLIGORS = 8


class UsageError(AbsEngineError):
    """A command-line argument that is malformed or out of its documented range."""


class Parser(argparse.ArgumentParser):
    """argparse, raising :class:`UsageError` (exit status 2 through ``main``) instead of
    printing the usage and exiting."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.register("action", None, _Once)
        self.register("action", "store", _Once)

    def error(self, message: str) -> NoReturn:
        # argparse quotes the whole offending value ("invalid choice: 'xxx...'"): keep the
        # line readable whatever its length
        message = _LONG_QUOTED.sub(lambda m: short_repr(m.group(1)), message)
        if len(message) > 1_000:
            message = message[:600] + f"... ({len(message):,} characters)"
        raise UsageError(f"{self.prog}: {message}")


#: a quoted value longer than 80 characters in an argparse message
_LONG_QUOTED = re.compile(r"'([^']{80,})'")


class _Once(argparse._StoreAction):
    """``store``, refusing an option given twice (``--paths 1 --paths 2``: which one was
    meant?) instead of silently keeping the last."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        seen: set[str] = getattr(namespace, "_given_once", set())
        if self.dest in seen:
            raise argparse.ArgumentError(self, f"given twice {got(str(values))}")
        namespace._given_once = seen | {self.dest}
        super().__call__(parser, namespace, values, option_string)


def got(text: str) -> str:
    """``(got '...')``: the end of a message, quoting the value given (cut if long)."""
    return f"(got {short_repr(text)})"


# --- numbers -------------------------------------------------------------------------------------

#: a number as the command line takes it: ASCII digits (``1e6``, ``-0.5``, ``1_000``), or the
#: words nan/inf that the range checks then refuse by name; not ``١٢`` or full-width ``１``
_NUMBER = re.compile(
    r"[+-]?(?:(?:\d(?:_?\d)*)?\.?\d(?:_?\d)*(?:[eE][+-]?\d+)?|\d+\.|nan|inf|infinity)",
    re.ASCII | re.IGNORECASE,
)


def _number_text(text: str) -> str | None:
    """``text`` stripped, when it is a number written in ASCII; None otherwise."""
    t = text.strip()
    return t if _NUMBER.fullmatch(t) else None


def _to_int(text: str) -> int | None:
    """An integer written as such or as an exactly integral number (``1e6``, ``12.0``; not
    ``1e-400``, which is not an integer though it rounds to 0); None otherwise."""
    t = _number_text(text)
    if t is None:
        return None
    try:
        return int(t)
    except ValueError:
        pass
    try:
        d = decimal.Decimal(t.replace("_", ""))
    except decimal.InvalidOperation:
        return None
    if not d.is_finite() or d != d.to_integral_value() or abs(d.adjusted()) > 30:
        return None
    return int(d)


def int_type(lo: int, hi: int | Callable[[], int]) -> Callable[[str], int]:
    """argparse ``type``: an integer in [lo, hi] (``hi`` may be computed when parsing)."""

    def integer(text: str) -> int:
        top = hi() if callable(hi) else hi
        v = _to_int(text)
        if v is None or not lo <= v <= top:
            raise argparse.ArgumentTypeError(
                f"must be an integer from {lo:,} to {top:,} {got(text)}"
            )
        return v

    return integer


def _span(lo: float, hi: float, lo_open: bool, hi_open: bool) -> str:
    return f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


def _to_float(text: str, lo: float, hi: float, lo_open: bool, hi_open: bool) -> float | None:
    """A finite number, written in ASCII, in the interval; None otherwise."""
    t = _number_text(text)
    if t is None:
        return None
    try:
        v = float(t)
    except ValueError:
        return None
    if not math.isfinite(v):
        return None
    if (v <= lo if lo_open else v < lo) or (v >= hi if hi_open else v > hi):
        return None
    return v


def float_type(
    lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False
) -> Callable[[str], float]:
    """argparse ``type``: a finite number in the interval (NaN and inf refused)."""

    def number(text: str) -> float:
        v = _to_float(text, lo, hi, lo_open, hi_open)
        if v is None:
            span = _span(lo, hi, lo_open, hi_open)
            raise argparse.ArgumentTypeError(f"must be a finite number in {span} {got(text)}")
        return v

    return number


def max_threads() -> int:
    """NUMBA_NUM_THREADS, the top of ``--threads`` (numba imported only when it is given)."""
    import numba

    return int(getattr(numba.config, "NUMBA_NUM_THREADS", 1))


# --- files and folders ---------------------------------------------------------------------------


def path_text(text: str) -> str:
    """argparse ``type`` for an input file (or a bundled name): refuse, before anything is
    read, a path the system cannot even look up (too long, NUL, no permission)."""
    if not text or "\x00" in text:
        raise argparse.ArgumentTypeError(f"is not a valid path {got(text)}")
    try:
        os.stat(text)
    except (FileNotFoundError, NotADirectoryError):
        pass  # a bundled name, or the loader reports the missing file
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot be read: {exc.strerror} {got(text)}") from None
    else:
        if os.path.isfile(text) and not os.access(text, os.R_OK):
            raise argparse.ArgumentTypeError(f"cannot be read: permission denied {got(text)}")
    return text


def curve_text(text: str) -> str:
    """argparse ``type`` of ``--curve``: a flat rate (finite, in the curve range) or a file."""
    if _number_text(text) is None:
        return path_text(text)
    lo, hi = _curve_range()
    if _to_float(text, lo, hi, False, False) is None:
        raise argparse.ArgumentTypeError(
            f"a flat rate must be a finite decimal in [{lo:g}, {hi:g}] {got(text)}"
        )
    return text


def _curve_range() -> tuple[float, float]:
    from .solvers.structuring import CURVE_RATE_RANGE

    return CURVE_RATE_RANGE


def out_path(text: str) -> Path:
    """argparse ``type`` of an output folder: a non-empty path (checked further, before
    anything runs, by :func:`abs_engine.report.writers.check_out_folder`)."""
    if not text.strip() or "\x00" in text:
        raise argparse.ArgumentTypeError(f"must be the path of a folder {got(text)}")
    return Path(text)


# --- lists ---------------------------------------------------------------------------------------


def ledger_paths_type(text: str) -> list[int]:
    """argparse ``type`` of ``--ledger-paths``: distinct path indices, comma-separated."""
    parts = [x.strip() for x in text.split(",")]
    out = []
    for x in parts:
        v = _to_int(x) if x else None
        if v is None or not 0 <= v < MAX_PATHS:
            raise argparse.ArgumentTypeError(
                f"needs path indices 0 .. {MAX_PATHS - 1:,}, comma-separated {got(text)}"
            )
        out.append(v)
    if len(out) > MAX_LEDGER_PATHS:
        raise argparse.ArgumentTypeError(
            f"at most {MAX_LEDGER_PATHS} paths, got {len(out):,} {got(text)}"
        )
    if len(set(out)) != len(out):
        raise argparse.ArgumentTypeError(f"a path is named twice {got(text)}")
    return out


def attach_type(text: str) -> list[float]:
    """argparse ``type`` of ``synth --attach``: increasing points strictly inside (0, 1)."""
    from .synthetic import MAX_ATTACHMENTS

    parts = [x.strip() for x in text.split(",")]
    points = [_to_float(x, 0.0, 1.0, True, True) for x in parts]
    if not 1 <= len(points) <= MAX_ATTACHMENTS or any(v is None for v in points):
        raise argparse.ArgumentTypeError(
            f"needs 1 to {MAX_ATTACHMENTS} numbers strictly between 0 and 1, like "
            f"0.03,0.06,0.10 {got(text)}"
        )
    vals = [float(v) for v in points if v is not None]
    if any(b <= a for a, b in zip(vals, vals[1:], strict=False)):
        raise argparse.ArgumentTypeError(
            f"attachment points must increase (no point twice) {got(text)}"
        )
    return vals


def name_type(text: str) -> str:
    """argparse ``type`` of ``synth --name``: a plain file-name stem."""
    from .synthetic import check_name

    try:
        return check_name(text)
    except AbsEngineError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# --- solver parameters ---------------------------------------------------------------------------


def param_type(text: str) -> str:
    """argparse ``type`` of ``breakeven --param``: a scenario parameter the solvers vary."""
    from .solvers import PARAMETERS

    if text not in PARAMETERS:
        raise argparse.ArgumentTypeError(
            f"unknown parameter {short_repr(text)}; choose from {sorted(PARAMETERS)}"
        )
    return text


def grid_type(text: str) -> tuple[str, list[float]]:
    """argparse ``type`` of ``--x`` / ``--y``: ``param=v1,v2,...``, distinct finite values in
    the parameter's range, at most :data:`MAX_GRID_VALUES`."""
    from .solvers import PARAMETERS
    from .solvers.structuring import PARAMETER_RANGES, describe_range

    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep:
        raise argparse.ArgumentTypeError(
            f"expected param=v1,v2,... e.g. pd_multiplier=0.5,1,2 {got(text)}"
        )
    if name not in PARAMETERS:
        raise argparse.ArgumentTypeError(
            f"unknown parameter {short_repr(name)}; choose from {sorted(PARAMETERS)} {got(text)}"
        )
    lo, hi, closed = PARAMETER_RANGES[name]
    parts = [v.strip() for v in values.split(",")]
    vals = [_to_float(v, lo, hi, False, not closed) for v in parts]
    if any(v is None for v in vals):
        raise argparse.ArgumentTypeError(
            f"{name} takes finite numbers in {describe_range(name)}, comma-separated {got(text)}"
        )
    out = [float(v) for v in vals if v is not None]
    if len(out) > MAX_GRID_VALUES:
        raise argparse.ArgumentTypeError(
            f"at most {MAX_GRID_VALUES} values, got {len(out)} {got(text)}"
        )
    if len(set(out)) != len(out):
        raise argparse.ArgumentTypeError(f"a value of {name} appears twice {got(text)}")
    return name, out


def checked_by(parse: Callable[[str], object]) -> Callable[[str], str]:
    """An argparse ``type`` that checks the text with ``parse`` (its AbsEngineError becomes
    argparse's error, naming the flag) and keeps the text, parsed again where it is used."""

    def check(text: str) -> str:
        try:
            parse(text)
        except AbsEngineError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    return check


def parse_condition(text: str) -> tuple[str, float]:
    """``first_loss``, ``el_above:X``, ``pd_above:P`` (X, P in [0, 1]) or ``irr_below:Y``
    (Y in [-1, 1]); finite numbers only."""
    kind, sep, value = text.partition(":")
    if kind == "first_loss":
        if sep:
            raise AbsEngineError(f"first_loss takes no value {got(text)}")
        return kind, 0.0
    if kind not in ("el_above", "irr_below", "pd_above"):
        raise AbsEngineError(
            f"unknown --condition {short_repr(kind)}; use first_loss, el_above:X, irr_below:Y, "
            f"pd_above:P {got(text)}"
        )
    lo = -1.0 if kind == "irr_below" else 0.0
    v = _to_float(value, lo, 1.0, False, False)
    if v is None:
        raise AbsEngineError(
            f"{kind} needs a number, finite and in [{lo:g}, 1], e.g. {kind}:0.001 {got(text)}"
        )
    return kind, v


def parse_range(text: str) -> tuple[float, float]:
    """``lo,hi``: two finite, different numbers."""
    parts = text.split(",")
    vals = [_to_float(x, -math.inf, math.inf, True, True) for x in parts]
    if len(vals) != 2 or vals[0] is None or vals[1] is None:
        raise AbsEngineError(
            f"needs two numbers lo,hi, both finite {got(text)}; write --range=-1,0 for negatives"
        )
    if vals[0] == vals[1]:
        raise AbsEngineError(f"lo and hi must differ {got(text)}")
    return vals[0], vals[1]


# --- clusters ------------------------------------------------------------------------------------


def cluster_type(text: str) -> Any:
    """argparse ``type`` of ``--cluster``: ``local:N`` or ``tcp://HOST:PORT``
    (:func:`abs_engine.distributed.parse_cluster`); nothing is started while parsing."""
    from .distributed.cluster import parse_cluster

    try:
        return parse_cluster(text)
    except AbsEngineError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
