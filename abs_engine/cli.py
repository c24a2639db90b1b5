"""The ``abs-engine`` command line.

Exit status: 0 success, 2 bad input (every problem printed, no traceback), 1 anything else
(an output folder that cannot be written, e.g. a full disk: nothing in it changed), 130 after
Ctrl-C (SIGINT), 143 after SIGTERM, 129 after SIGHUP ("interrupted" on stderr, no traceback).
A run's ``--out`` files are written as a set, with ``manifest.json`` last, or not at all (see
``abs_engine.files``); files get the usual permissions under the umask (0644 under 022).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import decimal
import json
import math
import os
import re
import signal
import stat
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

from . import __version__

# Ctrl-C, SIGTERM or SIGHUP while the heavy modules below load (about a second: pydantic,
# numba, pandas) ends the command like one later on: "interrupted", exit 128 + signum, no
# traceback. The signal is only noted while they load and acted on once they have: an
# exception raised inside the import machinery can land in a callback, where Python prints
# "Exception ignored ... Traceback" and carries on. main() installs the full handling.
_EARLY_SIGNALS: list[int] = []


def _note_signal(signum: int, frame: object) -> None:
    _EARLY_SIGNALS.append(signum)


_EARLY: dict[int, Any] = {}
if threading.current_thread() is threading.main_thread():
    for _name in ("SIGINT", "SIGTERM", "SIGHUP"):
        _sig = getattr(signal, _name, None)
        if _sig is None:
            continue
        _old = signal.getsignal(_sig)
        if _old == signal.SIG_DFL or (_sig == signal.SIGINT and _old is signal.default_int_handler):
            _EARLY[_sig] = signal.signal(_sig, _note_signal)
try:
    from .api import load_deal, load_scenario, nan_to_none, run_deterministic, simulate
    from .compile.deal import compile_deal
    from .compile.model import compile_model
    from .compile.scenario import scenario_source
    from .errors import AbsEngineError, DealError, DealWarning, Problem, short_repr
    from .files import OutputError, StagedOutputs, staged_outputs
    from .schema.common import MAX_RECOVERY_LAG
    from .schema.load import deal_source
    from .schema.scenario import DeterministicScenario
    from .schema.stochastic import MAX_PATHS, MAX_SEED, MonteCarloScenario
finally:
    for _sig, _old in _EARLY.items():
        signal.signal(_sig, _old)
if _EARLY_SIGNALS:
    _signum = _EARLY_SIGNALS[0]
    _how = "" if _signum == signal.SIGINT else f" ({signal.Signals(_signum).name})"
    print(f"interrupted{_how}", file=sys.stderr, flush=True)
    raise SystemExit(128 + int(_signum))

EXIT_OK, EXIT_ERROR, EXIT_INPUT = 0, 1, 2

#: documented limits of the command line (``--help`` states them; MAX_PATHS is the scenario
#: schema's)
MAX_LEDGER_PATHS = 100
MAX_GRID_VALUES = 25
MAX_SPREAD_BPS = 10_000
MAX_LARGEST = 1_000
SYNTH_MIN_OBLIGORS = 8


class UsageError(AbsEngineError):
    """A command-line argument that is malformed or out of its documented range."""


class _Parser(argparse.ArgumentParser):
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
            raise argparse.ArgumentError(self, f"given twice {_got(str(values))}")
        namespace._given_once = seen | {self.dest}
        super().__call__(parser, namespace, values, option_string)


def _got(text: str) -> str:
    return f"(got {short_repr(text)})"


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


def _int_type(lo: int, hi: int | Callable[[], int]) -> Callable[[str], int]:
    """argparse ``type``: an integer in [lo, hi] (``hi`` may be computed when parsing)."""

    def integer(text: str) -> int:
        top = hi() if callable(hi) else hi
        v = _to_int(text)
        if v is None or not lo <= v <= top:
            raise argparse.ArgumentTypeError(
                f"must be an integer from {lo:,} to {top:,} {_got(text)}"
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


def _float_type(
    lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False
) -> Callable[[str], float]:
    """argparse ``type``: a finite number in the interval (NaN and inf refused)."""

    def number(text: str) -> float:
        v = _to_float(text, lo, hi, lo_open, hi_open)
        if v is None:
            span = _span(lo, hi, lo_open, hi_open)
            raise argparse.ArgumentTypeError(f"must be a finite number in {span} {_got(text)}")
        return v

    return number


def _path_text(text: str) -> str:
    """argparse ``type`` for an input file (or a bundled name): refuse, before anything is
    read, a path the system cannot even look up (too long, NUL, no permission)."""
    if not text or "\x00" in text:
        raise argparse.ArgumentTypeError(f"is not a valid path {_got(text)}")
    try:
        os.stat(text)
    except (FileNotFoundError, NotADirectoryError):
        pass  # a bundled name, or the loader reports the missing file
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot be read: {exc.strerror} {_got(text)}") from None
    else:
        if os.path.isfile(text) and not os.access(text, os.R_OK):
            raise argparse.ArgumentTypeError(f"cannot be read: permission denied {_got(text)}")
    return text


def _curve_text(text: str) -> str:
    """argparse ``type`` of ``--curve``: a flat rate (finite, in the curve range) or a file."""
    if _number_text(text) is None:
        return _path_text(text)
    lo, hi = _curve_range()
    if _to_float(text, lo, hi, False, False) is None:
        raise argparse.ArgumentTypeError(
            f"a flat rate must be a finite decimal in [{lo:g}, {hi:g}] {_got(text)}"
        )
    return text


def _curve_range() -> tuple[float, float]:
    from .solvers.structuring import CURVE_RATE_RANGE

    return CURVE_RATE_RANGE


def _max_threads() -> int:
    import numba

    return int(getattr(numba.config, "NUMBA_NUM_THREADS", 1))


def _ledger_paths_type(text: str) -> list[int]:
    """argparse ``type`` of ``--ledger-paths``: distinct path indices, comma-separated."""
    parts = [x.strip() for x in text.split(",")]
    out = []
    for x in parts:
        v = _to_int(x) if x else None
        if v is None or not 0 <= v < MAX_PATHS:
            raise argparse.ArgumentTypeError(
                f"needs path indices 0 .. {MAX_PATHS - 1:,}, comma-separated {_got(text)}"
            )
        out.append(v)
    if len(out) > MAX_LEDGER_PATHS:
        raise argparse.ArgumentTypeError(
            f"at most {MAX_LEDGER_PATHS} paths, got {len(out):,} {_got(text)}"
        )
    if len(set(out)) != len(out):
        raise argparse.ArgumentTypeError(f"a path is named twice {_got(text)}")
    return out


def _attach_type(text: str) -> list[float]:
    """argparse ``type`` of ``synth --attach``: increasing points strictly inside (0, 1)."""
    from .synthetic import MAX_ATTACHMENTS

    parts = [x.strip() for x in text.split(",")]
    points = [_to_float(x, 0.0, 1.0, True, True) for x in parts]
    if not 1 <= len(points) <= MAX_ATTACHMENTS or any(v is None for v in points):
        raise argparse.ArgumentTypeError(
            f"needs 1 to {MAX_ATTACHMENTS} numbers strictly between 0 and 1, like "
            f"0.03,0.06,0.10 {_got(text)}"
        )
    vals = [float(v) for v in points if v is not None]
    if any(b <= a for a, b in zip(vals, vals[1:], strict=False)):
        raise argparse.ArgumentTypeError(
            f"attachment points must increase (no point twice) {_got(text)}"
        )
    return vals


def _name_type(text: str) -> str:
    """argparse ``type`` of ``synth --name``: a plain file-name stem."""
    from .synthetic import check_name

    try:
        return check_name(text)
    except AbsEngineError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _param_type(text: str) -> str:
    from .solvers import PARAMETERS

    if text not in PARAMETERS:
        raise argparse.ArgumentTypeError(
            f"unknown parameter {short_repr(text)}; choose from {sorted(PARAMETERS)}"
        )
    return text


def _grid_type(text: str) -> tuple[str, list[float]]:
    """argparse ``type`` of ``--x`` / ``--y``: ``param=v1,v2,...``, distinct finite values in
    the parameter's range, at most :data:`MAX_GRID_VALUES`."""
    from .solvers import PARAMETERS
    from .solvers.structuring import PARAMETER_RANGES, describe_range

    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep:
        raise argparse.ArgumentTypeError(
            f"expected param=v1,v2,... e.g. pd_multiplier=0.5,1,2 {_got(text)}"
        )
    if name not in PARAMETERS:
        raise argparse.ArgumentTypeError(
            f"unknown parameter {short_repr(name)}; choose from {sorted(PARAMETERS)} {_got(text)}"
        )
    lo, hi, closed = PARAMETER_RANGES[name]
    parts = [v.strip() for v in values.split(",")]
    vals = [_to_float(v, lo, hi, False, not closed) for v in parts]
    if any(v is None for v in vals):
        raise argparse.ArgumentTypeError(
            f"{name} takes finite numbers in {describe_range(name)}, comma-separated {_got(text)}"
        )
    out = [float(v) for v in vals if v is not None]
    if len(out) > MAX_GRID_VALUES:
        raise argparse.ArgumentTypeError(
            f"at most {MAX_GRID_VALUES} values, got {len(out)} {_got(text)}"
        )
    if len(set(out)) != len(out):
        raise argparse.ArgumentTypeError(f"a value of {name} appears twice {_got(text)}")
    return name, out


def _checked_by(parse: Callable[[str], object]) -> Callable[[str], str]:
    """An argparse ``type`` that checks the text with ``parse`` (its AbsEngineError becomes
    argparse's error, naming the flag) and keeps the text, parsed again where it is used."""

    def check(text: str) -> str:
        try:
            parse(text)
        except AbsEngineError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    return check


def _out_path(text: str) -> Path:
    """argparse ``type`` of an output folder: a non-empty path (checked further, before
    anything runs, by :func:`_check_out_folder`)."""
    if not text.strip() or "\x00" in text:
        raise argparse.ArgumentTypeError(f"must be the path of a folder {_got(text)}")
    return Path(text)


def _show_path(text: str) -> str:
    return text if len(text) <= 200 else f"{text[:120]}...{text[-60:]} ({len(text):,} characters)"


def _check_out_folder(path: Path, flag: str) -> None:
    """Refuse, before anything runs or is written, an output folder that cannot be created or
    written: an existing file, a path under a file, a folder without write permission, a
    pseudo file system such as /proc, a name too long. The probe creates and removes an empty
    temporary folder, so nothing is left behind."""
    text = os.fspath(path)
    shown = _show_path(text)

    def fail(why: str, loc: str = "<folder>") -> NoReturn:
        raise DealError.one(shown, loc, f"{flag} {why}")

    if not text or "\x00" in text:
        fail("is not a valid path")
    if len(os.fsencode(text)) >= 4096:
        fail(f"is too long ({len(os.fsencode(text)):,} bytes; at most 4,095)")
    cur, missing = Path(text), []
    while True:
        try:
            st = os.stat(cur)
        except (FileNotFoundError, NotADirectoryError):
            if cur.parent == cur:
                fail("cannot be created: its root does not exist")
            missing.append(cur.name)
            cur = cur.parent
            continue
        except OSError as exc:
            where = "" if cur == Path(text) else f" ({_show_path(str(cur))})"
            fail(f"cannot be used: {exc.strerror}{where}")
        break
    if not stat.S_ISDIR(st.st_mode):
        if not missing:
            fail("must be a folder, not a file", "<file>")
        fail(f"cannot be created: {_show_path(str(cur))} is a file, not a folder")
    for name in missing:
        if len(os.fsencode(name)) > 255:
            fail("has a folder name longer than 255 bytes")
    try:
        probe = tempfile.mkdtemp(prefix=".abs-engine-probe-", dir=cur)
        os.rmdir(probe)
    except OSError as exc:
        where = "in it" if not missing else f"in {_show_path(str(cur))}"
        fail(f"is not writable: cannot create anything {where} ({exc.strerror})")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="abs-engine",
        description="Structuring engine for intellectual-property ABS.",
        epilog=f"Limits: --paths 1 .. {MAX_PATHS:,}; --seed 0 .. 2**63-1. Bad input exits "
        "with status 2 and one message naming the argument and its value.",
    )
    p.add_argument("--version", action="version", version=f"abs-engine {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    paths_type, seed_type = _int_type(1, MAX_PATHS), _int_type(0, MAX_SEED)
    deal_help = "deal file (.toml/.json); default: bundled Huake-style deal"
    run = sub.add_parser("run", help="run a deal through its waterfall on a scenario")
    run.add_argument("deal", nargs="?", type=_path_text, help=deal_help)
    run.add_argument(
        "--scenario",
        "-s",
        action="append",
        type=_path_text,
        help="scenario name or file (repeatable); default: the deal's base_scenario",
    )
    run.add_argument(
        "--json", action="store_true", help="print one JSON document instead of tables"
    )
    run.add_argument(
        "--out",
        type=_out_path,
        help="write ledger (Parquet and CSV), tranches and cash flows to this folder (checked "
        "before anything runs: it must be a folder that can be created and written)",
    )
    mc = run.add_argument_group("Monte Carlo scenarios")
    mc.add_argument(
        "--paths",
        type=paths_type,
        help=f"number of paths, 1 .. {MAX_PATHS:,} (default: the scenario's n_paths)",
    )
    mc.add_argument(
        "--seed", type=seed_type, help="random seed, 0 .. 2**63-1 (default: the scenario's)"
    )
    mc.add_argument(
        "--threads",
        type=_int_type(1, _max_threads),
        help="numba threads, 1 .. NUMBA_NUM_THREADS (default: all cores)",
    )
    mc.add_argument(
        "--keep-paths",
        action="store_true",
        help="with --out, also write per-path metrics (refused up front when they cannot fit "
        "in memory: paths × bytes a path above half the available memory or 16 GiB)",
    )
    mc.add_argument(
        "--ledger-paths",
        type=_ledger_paths_type,
        help="with --out, write the full ledgers of these paths (comma-separated, distinct, "
        f"at most {MAX_LEDGER_PATHS}; default 0)",
    )
    mc.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    st = sub.add_parser(
        "stress",
        help="agency-style deterministic analysis: breakeven default rate, large-obligor test, "
        "coverage-ratio table",
    )
    st.add_argument(
        "deal", nargs="?", type=_path_text, help="deal file; default: bundled Huake-style deal"
    )
    st.add_argument("--tranche", action="append", help="tranche(s) to test (default: all rated)")
    st.add_argument(
        "--recovery",
        type=_float_type(0.0, 1.0),
        default=0.0,
        help="recovery rate (decimal, 0 .. 1)",
    )
    st.add_argument(
        "--lag",
        type=_int_type(0, MAX_RECOVERY_LAG),
        default=0,
        help=f"recovery lag (0 .. {MAX_RECOVERY_LAG})",
    )
    st.add_argument(
        "--period",
        type=_int_type(1, 100_000),
        default=1,
        help="large-obligor default period (1 .. the deal's periods)",
    )
    st.add_argument(
        "--largest",
        type=_int_type(1, MAX_LARGEST),
        default=None,
        help=f"test the 1..N largest obligors (1 .. {MAX_LARGEST:,}, at most the pool's size; "
        "default 3, or the pool's size if smaller)",
    )
    st.add_argument(
        "--scenario",
        "-s",
        action="append",
        type=_path_text,
        help="deterministic scenarios for the coverage table (default: the deal's)",
    )
    st.add_argument("--json", action="store_true", help="print one JSON document")

    def mc_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "deal", nargs="?", type=_path_text, help="deal file; default: bundled Huake-style deal"
        )
        p.add_argument(
            "--scenario",
            "-s",
            type=_path_text,
            help="Monte Carlo scenario (default: the deal's base)",
        )
        p.add_argument(
            "--paths",
            type=paths_type,
            default=20_000,
            help=f"paths per evaluation, 1 .. {MAX_PATHS:,} (20,000)",
        )
        p.add_argument(
            "--seed", type=seed_type, help="seed, 0 .. 2**63-1 (default: the scenario's)"
        )
        p.add_argument("--json", action="store_true", help="print one JSON document")

    sz = sub.add_parser("size", help="largest tranche balance meeting a target rating or EL")
    mc_args(sz)
    sz.add_argument("--tranche", required=True, help="tranche to size (not the most junior)")
    grp = sz.add_mutually_exclusive_group(required=True)
    grp.add_argument("--target", help="target rating, e.g. AAA")
    grp.add_argument(
        "--target-el",
        type=_float_type(0.0, 1.0, lo_open=True, hi_open=True),
        help="target expected loss (decimal, strictly between 0 and 1)",
    )
    sz.add_argument(
        "--rating-table",
        type=_path_text,
        help="rating table CSV (default: the illustrative one)",
    )
    pr = sub.add_parser("price", help="coupon at which a tranche prices at par")
    mc_args(pr)
    pr.add_argument("--tranche", required=True)
    pr.add_argument(
        "--curve",
        required=True,
        type=_curve_text,
        help="flat rate (decimal, -0.05 .. 1) or CSV tenor_years,zero_rate",
    )
    pr.add_argument(
        "--spread-bps",
        type=_float_type(-MAX_SPREAD_BPS, MAX_SPREAD_BPS),
        default=0.0,
        help=f"spread over the curve in basis points (±{MAX_SPREAD_BPS:,}; default 0)",
    )
    be = sub.add_parser("breakeven", help="scenario parameter value at which a tranche fails")
    mc_args(be)
    be.add_argument("--tranche", required=True)
    be.add_argument(
        "--param",
        required=True,
        type=_param_type,
        help="pd_multiplier, recovery (a fixed rate), ip_haircut, correlation, cpr, "
        "provider_pd_multiplier",
    )
    be.add_argument(
        "--condition",
        default="first_loss",
        type=_checked_by(_parse_condition),
        help="first_loss, el_above:X, irr_below:Y or pd_above:P (default first_loss; X and P "
        "in [0, 1], Y in [-1, 1])",
    )
    be.add_argument(
        "--range",
        type=_checked_by(_parse_range),
        help="lo,hi: where the condition holds, and fails (defaults by param; both within the "
        "parameter's range; lo below hi except for recovery, where more is better)",
    )
    se = sub.add_parser("sensitivity", help="tranche metrics over a grid of two parameters")
    mc_args(se)
    grid_help = (
        "param=v1,v2,... e.g. {}; distinct values in the parameter's range, at most "
        f"{MAX_GRID_VALUES}"
    )
    se.add_argument(
        "--x", required=True, type=_grid_type, help=grid_help.format("pd_multiplier=0.5,1,2")
    )
    se.add_argument(
        "--y", required=True, type=_grid_type, help=grid_help.format("recovery=0.1,0.2,0.4")
    )
    se.add_argument("--tranche", help="tranche for the printed grid (default: the first)")
    from .synthetic import AMORTIZATIONS, MAX_OBLIGOR_PERIODS, MAX_OBLIGORS, MAX_PERIODS

    sy = sub.add_parser("synth", help="write a synthetic pool as deal, tape and scenario files")
    sy.add_argument(
        "out",
        metavar="OUT",
        type=_out_path,
        help="output folder (created; it must be writable and not a file)",
    )
    sy.add_argument(
        "--obligors",
        type=_int_type(SYNTH_MIN_OBLIGORS, MAX_OBLIGORS),
        required=True,
        help=f"number of obligors ({SYNTH_MIN_OBLIGORS} .. {MAX_OBLIGORS:,}; obligors × "
        f"periods at most {MAX_OBLIGOR_PERIODS:,})",
    )
    sy.add_argument(
        "--name",
        type=_name_type,
        help="file name stem (default synthetic_<N>; a plain name: no path separator, not "
        "starting with a dot)",
    )
    sy.add_argument(
        "--heterogeneous", action="store_true", help="random balances, rates, PD classes"
    )
    sy.add_argument(
        "--attach",
        default="0.03,0.06,0.10",
        type=_attach_type,
        help="attachment points, increasing, each in (0, 1) (default 0.03,0.06,0.10)",
    )
    sy.add_argument(
        "--pd",
        type=_float_type(0.0, 1.0, hi_open=True),
        default=0.02,
        help="annual PD, [0, 1) (default 0.02)",
    )
    sy.add_argument(
        "--correlation",
        type=_float_type(0.0, 1.0, hi_open=True),
        default=0.15,
        help="asset correlation, [0, 1) (0.15)",
    )
    sy.add_argument(
        "--recovery",
        type=_float_type(0.0, 1.0),
        default=0.3,
        help="recovery rate, [0, 1] (0.3)",
    )
    sy.add_argument(
        "--amortization",
        default="equal_principal",
        choices=AMORTIZATIONS,
    )
    sy.add_argument(
        "--periods",
        type=_int_type(1, MAX_PERIODS),
        default=12,
        help=f"quarterly periods, 1 .. {MAX_PERIODS} (12)",
    )
    sy.add_argument(
        "--seed",
        type=seed_type,
        default=0,
        help="seed of a heterogeneous pool, 0 .. 2**63-1",
    )
    val = sub.add_parser(
        "validate", help="check a deal file (and optional scenarios) and report every problem"
    )
    val.add_argument("deal", type=_path_text)
    val.add_argument(
        "--scenario",
        "-s",
        action="append",
        type=_path_text,
        help="also check these scenarios against the deal",
    )
    return p


def _result_document(res: Any) -> dict[str, Any]:
    docs = []
    for k, sc in enumerate(res.scenarios):
        tr = res.tranches(k)
        docs.append(
            {
                "scenario": sc.name,
                "tranches": [{"name": r["tranche"], **r} for r in tr.to_dict(orient="records")],
                "pool": res.pool(k),
                "cashflows": json.loads(
                    res.cashflows(k).to_json(orient="records", date_format="iso")
                ),
            }
        )
    cd = res.compiled
    doc: dict[str, Any] = {
        "deal": cd.deal.name,
        "source": cd.source,
        "currency": cd.deal.currency,
        "periods": cd.n_periods,
        "payment_dates": [d.isoformat() for d in cd.payment_dates],
    }
    if len(docs) == 1:
        doc.update(docs[0])
    else:
        doc["scenarios"] = docs
        doc.update({k: docs[0][k] for k in ("tranches", "pool")})
    return nan_to_none(doc)


def _deal_console(cd: Any) -> Any:
    """A rich console (200 columns when not a terminal) with the deal's header printed."""
    from rich.console import Console

    probe = Console()
    console = Console(width=probe.width if probe.is_terminal else 200)
    console.print(f"[bold]{cd.deal.name}[/bold]  ({cd.source})")
    console.print(
        f"{cd.n_obligors} obligors, pool {cd.original_pool:,.0f} {cd.deal.currency}, "
        f"{cd.n_periods} periods {cd.payment_dates[0]} .. {cd.payment_dates[-1]}"
    )
    return console


def _print_tables(res: Any) -> None:
    from rich.table import Table

    cd = res.compiled
    console = _deal_console(cd)
    for k, sc in enumerate(res.scenarios):
        console.print(f"\n[bold]Scenario {sc.name}[/bold]: {sc.description}")
        t = Table(title="Tranches", title_justify="left")
        for col in (
            "tranche",
            "balance",
            "coupon",
            "principal paid",
            "interest paid",
            "loss",
            "WAL (y)",
            "min coverage",
            "support recv'd",
        ):
            t.add_column(col, justify="left" if col == "tranche" else "right")
        for row in res.tranches(k).itertuples(index=False):
            coupon = f"{row.coupon:.2%}" if isinstance(row.coupon, float) else str(row.coupon)
            t.add_row(
                row.tranche,
                f"{row.balance:,.0f}",
                coupon,
                f"{row.principal_paid:,.0f}",
                f"{row.interest_paid:,.0f}",
                f"{row.loss:,.0f}",
                _fmt(row.wal_years, "{:.2f}"),
                _fmt(row.min_coverage_ratio, "{:.2f}x"),
                f"{row.support_received:,.0f}",
            )
        console.print(t)
        pool = res.pool(k)
        console.print(
            f"Pool: defaulted {pool['defaulted']:,.0f} ({pool['cumulative_default_rate']:.2%}), "
            f"recovered {pool['recovered']:,.0f}, realised loss {pool['realised_loss']:,.0f}, "
            f"support paid {pool['support_paid']:,.0f}, worst status {pool['worst_status']}"
            + (f" from period {first}" if (first := pool["first_trigger_period"]) else "")
        )
        cf = res.cashflows(k)
        t = Table(title="Cash flows by period", title_justify="left")
        cols = ["period", "payment_date", "collections", "defaults", "pool_balance_end"]
        for name in cd.tranche_names:
            cols += [
                c
                for c in (
                    f"{name}.interest_paid",
                    f"{name}.principal_paid",
                    f"{name}.residual_paid",
                    f"{name}.balance_end",
                )
                if c in cf.columns
            ]
        cols += ["coverage_ratio", "status"]
        for c in cols:
            head = _HEADERS.get(c.split(".")[-1], c) + (f" {c.split('.')[0]}" if "." in c else "")
            t.add_column(head, justify="right", no_wrap=True)
        for _, r in cf[cols].iterrows():
            cells = [_cell(c, r[c], "{:.2f}x") for c in cols]
            t.add_row(*cells)
        console.print(t)


_HEADERS = {
    "period": "t",
    "payment_date": "date",
    "collections": "collections",
    "defaults": "defaults",
    "pool_balance_end": "pool bal",
    "interest_paid": "int",
    "principal_paid": "prin",
    "residual_paid": "resid",
    "balance_end": "bal",
    "coverage_ratio": "cov",
    "status": "status",
}


def _cell(column: str, v: Any, coverage_spec: str) -> str:
    """One cell of a per-period table: dates, labels, probabilities, coverage, yuan."""
    if column == "payment_date":
        return str(v.date())
    if column in ("period", "status"):
        return str(v)
    if column.endswith("probability"):
        return f"{v:.2%}"
    if column.startswith("coverage_ratio"):
        return _fmt(v, coverage_spec)
    return f"{v:,.0f}"


def _fmt(v: float, spec: str) -> str:
    return "-" if v is None or v != v else spec.format(v)


_MAX_NAME_BYTES = 255  # the longest file name most file systems allow
# the --out files named after a scenario: prefix, suffix
_OUT_AFFIXES = (
    ("summary_", ".json"),
    ("tranches_", ".csv"),
    ("pool_", ".csv"),
    ("cashflows_", ".csv"),
    ("paths_", ".parquet"),
    ("ledger_", ".parquet"),
    ("ledger_", ".csv"),
)


def _check_out_names(scenarios: Any) -> None:
    """Scenario names become file names under ``--out``: refuse, before anything is written,
    names that are not plain file names or that two scenarios share."""
    problems, seen = [], set()
    for sc in scenarios:
        name = sc.name
        if "/" in name or "\\" in name:
            why = "scenario name cannot be used in an --out file name (no / or \\)"
            problems.append(Problem(scenario_source(sc), "name", why, name))
        elif any(ord(c) < 32 or ord(c) == 127 for c in name):
            why = "scenario name cannot be used in an --out file name (no control characters)"
            problems.append(Problem(scenario_source(sc), "name", why, name))
        elif (
            max(len(f"{a}{name}{b}".encode("utf-8", "surrogatepass")) for a, b in _OUT_AFFIXES)
            > _MAX_NAME_BYTES
        ):
            why = (
                f"scenario name too long for an --out file name (its files, e.g. "
                f"'cashflows_<name>.csv', must be at most {_MAX_NAME_BYTES} bytes in UTF-8)"
            )
            problems.append(Problem(scenario_source(sc), "name", why, name))
        elif name in seen:
            why = "two scenarios have this name; their --out files would overwrite each other"
            problems.append(Problem(scenario_source(sc), "name", why, name))
        seen.add(name)
    if problems:
        raise DealError(problems)


def _write_out(res: Any, out: Path) -> list[Path]:
    """The run's files, all or none: staged, then moved into ``out`` with ``manifest.json``
    last (see ``abs_engine.files``)."""
    ledger = res.ledger()
    targets: list[tuple[str, Callable[[Path], object]]] = [
        ("ledger.parquet", lambda p: ledger.to_parquet(p, index=False)),
        ("ledger.csv", lambda p: ledger.to_csv(p, index=False)),
        ("summary.json", lambda p: p.write_text(json.dumps(_result_document(res), indent=2))),
    ]
    for k, sc in enumerate(res.scenarios):
        tranches, cashflows = res.tranches(k), res.cashflows(k)
        targets.append((f"tranches_{sc.name}.csv", partial(tranches.to_csv, index=False)))
        targets.append((f"cashflows_{sc.name}.csv", partial(cashflows.to_csv, index=False)))
    info = {"command": "run", "scenarios": [sc.name for sc in res.scenarios]}
    with staged_outputs(out, info=info) as stage:
        for name, fn in targets:
            stage.write(name, fn)
    return [stage.path(name) for name in stage.names]


def _cmd_run(args: argparse.Namespace) -> int:
    for flag, given in (("--keep-paths", args.keep_paths), ("--ledger-paths", args.ledger_paths)):
        if given and args.out is None:
            raise UsageError(f"{flag} needs --out DIR (the folder its files are written to)")
    if args.out is not None:
        _check_out_folder(args.out, "--out")
    deal = load_deal(args.deal)
    cd = compile_deal(deal)  # the deal's problems before anything runs, its warnings once
    _print_warnings(cd)
    names = args.scenario or ([deal.base_scenario] if deal.base_scenario else [])
    scenarios = [load_scenario(s, deal) for s in names]
    stochastic = [s for s in scenarios if isinstance(s, MonteCarloScenario)]
    if stochastic:
        if len(stochastic) != len(scenarios):
            raise UsageError(
                "--scenario: run Monte Carlo and deterministic scenarios in separate commands "
                f"(Monte Carlo: {[s.name for s in stochastic]})"
            )
        return _run_monte_carlo(args, cd, stochastic)
    mc_only = [
        f"--{o.replace('_', '-')}"
        for o in ("paths", "seed", "threads", "ledger_paths")
        if getattr(args, o) is not None
    ]
    if mc_only or args.keep_paths:
        raise AbsEngineError(
            f"{', '.join(mc_only or ['--keep-paths'])}: only for Monte Carlo scenarios"
        )
    if args.out:
        _check_out_names(scenarios)  # before the run: its files could not be written
    res = run_deterministic(cd, scenarios or None)
    if args.out:
        _check_out_names(res.scenarios)
    if args.json:
        print(json.dumps(_result_document(res), indent=2))
    else:
        _print_tables(res)
    if args.out:
        files = _write_out(res, args.out)
        if not args.json:
            print(f"\nwrote {len(files)} files to {args.out}")
    return EXIT_OK


def _print_warnings(cd: Any) -> None:
    """The deal's warnings (allowed but probably wrong) on stderr, one ``warning: ...`` line
    each; the exit status is unchanged."""
    for w in cd.warnings:
        print(f"warning: {w}", file=sys.stderr)


def _named_scenario_problems(deal: Any) -> list[Problem]:
    """The deal's ``base_scenario`` and ``deterministic_scenario``: each must name a scenario
    that loads (``run`` and ``stress`` use them when no ``--scenario`` is given), and
    ``deterministic_scenario`` a deterministic one."""
    problems, source = [], deal_source(deal)
    for field in ("base_scenario", "deterministic_scenario"):
        name = getattr(deal, field)
        if name is None:
            continue
        try:
            sc = load_scenario(name, deal)
        except DealError as exc:
            why = exc.problems[0].message
            problems.append(Problem(source, field, f"scenario cannot be loaded: {why}", name))
            continue
        if field == "deterministic_scenario" and not isinstance(sc, DeterministicScenario):
            why = "names a Monte Carlo scenario, not a deterministic one"
            problems.append(Problem(source, field, why, name))
    return problems


def _cmd_validate(args: argparse.Namespace) -> int:
    deal = load_deal(args.deal)
    cd = compile_deal(deal)
    _print_warnings(cd)
    problems = _named_scenario_problems(deal)
    for s in args.scenario or []:
        try:
            sc = load_scenario(s, deal)
            if isinstance(sc, DeterministicScenario):
                run_deterministic(cd, [sc])
            else:
                compile_model(cd, sc)
        except DealError as exc:
            problems.extend(exc.problems)
    if problems:
        raise DealError(problems)
    print(
        f"{args.deal}: OK — {cd.n_obligors} obligors, {len(cd.tranche_names)} tranches, "
        f"{cd.n_periods} periods"
    )
    return EXIT_OK


def _mc_document(res: Any) -> dict[str, Any]:
    cd = res.deal
    tranches = []
    for row in res.tranches.to_dict(orient="records"):
        bal = row["balance"]
        tranches.append(
            {
                "name": row["tranche"],
                "balance": bal,
                "coupon": row["coupon"],
                "loss": row["principal_loss"] * bal if bal else 0.0,
                "loss_se": row["principal_loss_se"] * bal if bal else 0.0,
                **{k: v for k, v in row.items() if k not in ("tranche", "balance", "coupon")},
            }
        )
    pool = {m: {"mean": r["mean"], "se": r["se"]} for m, r in res.pool.iterrows()}
    return nan_to_none(
        {
            "deal": cd.deal.name,
            "source": cd.source,
            "currency": cd.deal.currency,
            "scenario": res.scenario.name,
            "kind": "monte_carlo",
            "n_paths": res.n_paths,
            "seed": res.seed,
            "seconds": res.seconds,
            "compile_seconds": res.compile_seconds,
            "rating_table": {
                "source": res.rating_table.source,
                "basis": res.rating_table.basis,
                "illustrative": res.rating_table.illustrative,
            },
            "periods": cd.n_periods,
            "payment_dates": [d.isoformat() for d in cd.payment_dates],
            "tranches": tranches,
            "pool": pool,
            "cashflows": json.loads(res.cashflows.to_json(orient="records", date_format="iso")),
        }
    )


def _print_monte_carlo(res: Any) -> None:
    from rich.table import Table

    cd, sc = res.deal, res.scenario
    console = _deal_console(cd)
    console.print(
        f"\n[bold]Scenario {sc.name}[/bold] (Monte Carlo): {sc.description}\n"
        f"{res.n_paths:,} paths, seed {res.seed}, {res.seconds:.2f} s "
        f"({res.n_paths / max(res.seconds, 1e-9):,.0f} paths/s"
        + (
            f"; plus {res.compile_seconds:.1f} s compiling the kernels, once: they are cached"
            if res.compile_seconds >= 1.0
            else ""
        )
        + "). Figures are means ± one standard error."
    )
    t = Table(title="Tranches", title_justify="left")
    for col in (
        "tranche",
        "balance",
        "coupon",
        "expected loss (PV)",
        "P(shortfall)",
        "WAL (y)",
        "yield",
        "min coverage",
        "support recv'd",
        "implied rating*",
    ):
        t.add_column(col, justify="left" if col == "tranche" else "right")
    for r in res.tranches.to_dict(orient="records"):
        c = r["coupon"]
        coupon = (
            f"{c:.2%}"
            if isinstance(c, float) and c == c
            else (c if isinstance(c, str) else "residual")
        )
        t.add_row(
            r["tranche"],
            f"{r['balance']:,.0f}",
            coupon,
            _pm(r["expected_loss"], r["expected_loss_se"], "{:.4%}"),
            _pm(r["default_probability"], r["default_probability_se"], "{:.3%}"),
            _pm(r["wal_years"], r["wal_years_se"], "{:.3f}"),
            _pm(r["irr"], r["irr_se"], "{:.3%}"),
            _pm(r["min_coverage_ratio"], r["min_coverage_ratio_se"], "{:.3f}x"),
            _pm(r["support_received"], r["support_received_se"], "{:,.0f}"),
            r["implied_rating"],
        )
    console.print(t)
    rt = res.rating_table
    note = "ILLUSTRATIVE table shipped with abs_engine" if rt.illustrative else rt.source
    console.print(f"* implied rating: expected loss vs the idealized table at the WAL ({note})")
    t = Table(title="Pool", title_justify="left")
    t.add_column("metric")
    t.add_column("mean ± se", justify="right")
    fmts = {
        "default_count": "{:.4f}",
        "support_paid": "{:,.0f}",
        "compensation_received": "{:,.0f}",
        "cash_released": "{:,.0f}",
        "min_coverage_ratio": "{:.3f}x",
    }
    for m, r in res.pool.iterrows():
        t.add_row(str(m).replace("_", " "), _pm(r["mean"], r["se"], fmts.get(str(m), "{:.4%}")))
    console.print(t)
    cf = res.cashflows
    t = Table(title="Expected cash flows by period (means)", title_justify="left")
    cols = [
        "period",
        "payment_date",
        "pool.interest",
        "pool.scheduled_principal",
        "pool.defaults",
        "pool.recoveries",
        "pool.balance_end",
    ]
    for j, name in enumerate(cd.tranche_names):
        interest = (
            "residual_paid" if cd.deal.tranches[j].principal == "residual" else "interest_paid"
        )
        cols += [f"{name}.{interest}", f"{name}.principal_paid", f"{name}.balance_end"]
    cols += ["pool.support_paid", "pool.accelerated_probability", "coverage_ratio"]
    for c in cols:
        if c in _MC_HEADERS:
            head = _MC_HEADERS[c]
        else:
            owner, item = c.split(".")
            head = f"{_HEADERS.get(item, item)} {owner}"
        t.add_column(head, justify="right", no_wrap=True)
    for _, r in cf[cols].iterrows():
        cells = [_cell(c, r[c], "{:.3f}x") for c in cols]
        t.add_row(*cells)
    console.print(t)


_MC_HEADERS = {
    "period": "t",
    "payment_date": "date",
    "pool.interest": "pool int",
    "pool.scheduled_principal": "pool prin",
    "pool.defaults": "defaults",
    "pool.recoveries": "recoveries",
    "pool.balance_end": "pool bal",
    "pool.support_paid": "support",
    "coverage_ratio": "cov (mean)",
    "pool.accelerated_probability": "P(accel)",
}


def _pm(mean: float, se: float, spec: str) -> str:
    if mean is None or mean != mean:
        return "-"
    text = spec.format(mean)
    if se is not None and se == se:
        text += " ± " + spec.format(se).rstrip("x")
    return text


def _run_monte_carlo(args: argparse.Namespace, cd: Any, scenarios: list[MonteCarloScenario]) -> int:
    if args.out:
        _check_out_names(scenarios)
    _check_monte_carlo_size(args, cd, scenarios)
    docs = []
    # every scenario's files staged, then moved into --out together (none if one fails)
    info = {"command": "run", "scenarios": [sc.name for sc in scenarios]}
    with staged_outputs(args.out, info=info) if args.out else nullcontext() as stage:
        for sc in scenarios:
            res = simulate(
                cd,
                sc,
                n_paths=args.paths,
                seed=args.seed,
                threads=args.threads,
                keep_paths=bool(args.keep_paths and args.out),
                ledger_paths=args.ledger_paths or ([0] if args.out else []),
                progress=False if (args.no_progress or args.json) else None,
            )
            doc = _mc_document(res)
            docs.append(doc)
            if not args.json:
                _print_monte_carlo(res)
            if stage is not None:
                _write_mc_out(res, doc, stage)
    if args.json:
        print(json.dumps(docs[0] if len(docs) == 1 else {"scenarios": docs}, indent=2))
    elif args.out:
        print(f"\nwrote results to {args.out}")
    return EXIT_OK


def _check_monte_carlo_size(
    args: argparse.Namespace, cd: Any, scenarios: list[MonteCarloScenario]
) -> None:
    """Before any scenario runs: ledger paths within the run, kept per-path results that fit
    in memory. (Path counts are already within MAX_PATHS: --paths by its argparse type, a
    scenario's n_paths by the schema.)"""
    from .simulation import check_keep_paths_memory, kept_bytes_per_path

    for sc in scenarios:
        n = sc.n_paths if args.paths is None else args.paths
        for p in args.ledger_paths or []:
            if p >= n:
                raise UsageError(
                    f"--ledger-paths: path {p:,} is outside the run's paths 0 .. {n - 1:,} "
                    f"(scenario {sc.name!r}, {n:,} paths)"
                )
        if args.keep_paths:
            check_keep_paths_memory(
                n, kept_bytes_per_path(len(cd.tranche_names)), what=f"--keep-paths --paths {n}"
            )


def _write_mc_out(res: Any, doc: dict[str, Any], stage: StagedOutputs) -> None:
    """One scenario's files, staged (committed with the run's other files)."""
    import pandas as pd

    from .report.frames import ledger_long

    name = res.scenario.name
    targets: list[tuple[str, Callable[[Path], object]]] = [
        (f"summary_{name}.json", lambda p: p.write_text(json.dumps(doc, indent=2))),
        (f"tranches_{name}.csv", lambda p: res.tranches.to_csv(p, index=False)),
        (f"pool_{name}.csv", lambda p: res.pool.to_csv(p)),
        (f"cashflows_{name}.csv", lambda p: res.cashflows.to_csv(p, index=False)),
    ]
    if res.paths is not None:
        targets.append((f"paths_{name}.parquet", lambda p: res.paths.to_parquet(p)))
    if res.ledgers:
        led = pd.concat(
            [ledger_long(w).assign(path=p) for p, w in res.ledgers.items()], ignore_index=True
        )
        targets.append((f"ledger_{name}.parquet", lambda p: led.to_parquet(p, index=False)))
        targets.append((f"ledger_{name}.csv", lambda p: led.to_csv(p, index=False)))
    for fname, fn in targets:
        stage.write(fname, fn)


def _parse_condition(text: str) -> tuple[str, float]:
    """``first_loss``, ``el_above:X``, ``pd_above:P`` (X, P in [0, 1]) or ``irr_below:Y``
    (Y in [-1, 1]); finite numbers only."""
    kind, sep, value = text.partition(":")
    if kind == "first_loss":
        if sep:
            raise AbsEngineError(f"first_loss takes no value {_got(text)}")
        return kind, 0.0
    if kind not in ("el_above", "irr_below", "pd_above"):
        raise AbsEngineError(
            f"unknown --condition {short_repr(kind)}; use first_loss, el_above:X, irr_below:Y, "
            f"pd_above:P {_got(text)}"
        )
    lo = -1.0 if kind == "irr_below" else 0.0
    v = _to_float(value, lo, 1.0, False, False)
    if v is None:
        raise AbsEngineError(
            f"{kind} needs a number, finite and in [{lo:g}, 1], e.g. {kind}:0.001 {_got(text)}"
        )
    return kind, v


def _parse_range(text: str) -> tuple[float, float]:
    """``lo,hi``: two finite, different numbers."""
    parts = text.split(",")
    vals = [_to_float(x, -math.inf, math.inf, True, True) for x in parts]
    if len(vals) != 2 or vals[0] is None or vals[1] is None:
        raise AbsEngineError(
            f"needs two numbers lo,hi, both finite {_got(text)}; write --range=-1,0 for negatives"
        )
    if vals[0] == vals[1]:
        raise AbsEngineError(f"lo and hi must differ {_got(text)}")
    return vals[0], vals[1]


_DEFAULT_RANGES = {
    "pd_multiplier": (0.0, 20.0),
    "recovery": (1.0, 0.0),
    "ip_haircut": (0.0, 1.0),
    "correlation": (0.0, 0.95),
    "cpr": (0.0, 0.5),
    "provider_pd_multiplier": (0.0, 50.0),
}


@contextmanager
def _naming(flag: str) -> Iterator[None]:
    """Problems in the file an option names carry the option's name."""
    try:
        yield
    except DealError as exc:
        raise DealError(
            [dataclasses.replace(p, message=f"{flag}: {p.message}") for p in exc.problems]
        ) from None
    except AbsEngineError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _check_solver_args(args: argparse.Namespace, deal: Any) -> None:
    """The solver arguments that need the deal, checked before any evaluation runs."""
    from .solvers.structuring import check_parameter, describe_range

    names = [t.name for t in deal.tranches]
    tranche = args.tranche
    if tranche is not None and tranche not in names:
        raise UsageError(f"--tranche: unknown tranche {short_repr(tranche)}; tranches are {names}")
    if args.command == "size" and tranche == names[-1]:
        raise UsageError(
            f"--tranche: {tranche!r} is the most junior tranche, which absorbs the change; "
            f"size a more senior one ({names[:-1]})"
        )
    if args.command == "price" and deal.tranches[names.index(tranche)].balance <= 0:
        raise UsageError(f"--tranche: {tranche!r} has no balance to price")
    if args.command == "breakeven" and args.range is not None:
        lo, hi = _parse_range(args.range)
        for v in (lo, hi):
            try:
                check_parameter(args.param, v)
            except AbsEngineError:
                raise UsageError(
                    f"--range: {args.param} must be in {describe_range(args.param)} "
                    f"{_got(args.range)}"
                ) from None
    if args.command == "sensitivity" and args.x[0] == args.y[0]:
        raise UsageError(f"--x and --y vary the same parameter {args.x[0]!r}: choose two")


def _cmd_solver(args: argparse.Namespace) -> int:
    from . import solvers as S
    from .metrics.rating import load_rating_table

    deal = load_deal(args.deal)
    cd = compile_deal(deal)  # its problems and warnings up front; breakeven/sensitivity reuse it
    _print_warnings(cd)
    name = args.scenario or deal.base_scenario
    if name is None:
        raise AbsEngineError("the deal names no base_scenario: give --scenario")
    sc = load_scenario(name, deal)
    if not isinstance(sc, MonteCarloScenario):
        raise UsageError(
            f"--scenario: {args.command} needs a Monte Carlo scenario; {sc.name!r} is deterministic"
        )
    _check_solver_args(args, deal)
    doc: dict[str, Any] = {
        "deal": deal.name,
        "scenario": sc.name,
        "paths": args.paths,
        "seed": sc.seed if args.seed is None else args.seed,
    }
    if args.command == "size":
        with _naming("--rating-table"):
            table = load_rating_table(args.rating_table)
        if args.target is not None and args.target not in table.ratings:
            raise UsageError(
                f"--target: unknown rating {short_repr(args.target)}; the table "
                f"({table.source}) has {list(table.ratings)}"
            )
        out = S.size_tranche(
            deal,
            sc,
            args.tranche,
            target_rating=args.target,
            target_el=args.target_el,
            n_paths=args.paths,
            seed=args.seed,
            rating_table=table,
        )
        doc.update(
            {
                "tranche": args.tranche,
                "target": args.target or args.target_el,
                **out,
                "rating_table": {"source": table.source, "illustrative": table.illustrative},
            }
        )
        what = "default probability" if out["basis"] == "pd" else "expected loss"
        text = (
            f"largest {args.tranche} meeting {args.target or f'EL {args.target_el:.4%}'}: "
            f"{out['balance']:,.0f} ({out['share_of_capital']:.2%} of its capital and the "
            f"junior's); {what} {out['metric']:.5%} ± {out['metric_se']:.5%}, limit "
            f"{out['limit']:.5%} at WAL {out['wal_years']:.2f} y"
        )
        if out["metric_se"] > 0.5 * out["limit"]:
            text += (
                "\nnote: the standard error is comparable to the limit: too few loss paths "
                "to size this precisely; raise --paths"
            )
    elif args.command == "price":
        with _naming("--curve"):
            curve = S.load_curve(args.curve)
        coupon = S.solve_coupon(
            deal,
            sc,
            args.tranche,
            curve,
            spread_bps=args.spread_bps,
            n_paths=args.paths,
            seed=args.seed,
        )
        doc.update(
            {
                "tranche": args.tranche,
                "curve": args.curve,
                "spread_bps": args.spread_bps,
                "par_coupon": coupon,
            }
        )
        text = (
            f"par coupon of {args.tranche} over {args.curve} + {args.spread_bps:g} bp: {coupon:.4%}"
        )
    elif args.command == "breakeven":
        cond = S.condition(*_parse_condition(args.condition))
        lo, hi = _DEFAULT_RANGES[args.param]
        if args.range:
            lo, hi = _parse_range(args.range)
        v = S.breakeven(
            cd, sc, args.tranche, args.param, cond, lo=lo, hi=hi, n_paths=args.paths, seed=args.seed
        )
        doc.update(
            {
                "tranche": args.tranche,
                "param": args.param,
                "condition": args.condition,
                "breakeven": v,
            }
        )
        text = f"{args.tranche} fails {args.condition} at {args.param} = {v:.4f}"
    else:
        x, y = args.x, args.y
        grid = S.sensitivity(cd, sc, x, y, n_paths=args.paths, seed=args.seed)
        doc.update({"x": x[0], "y": y[0], "grid": grid.to_dict(orient="records")})
        tr = args.tranche or cd.tranche_names[0]
        sub_g = grid[grid.tranche == tr]
        el = sub_g.pivot(index=x[0], columns=y[0], values="expected_loss")
        rt = sub_g.pivot(index=x[0], columns=y[0], values="implied_rating")
        lines = [f"{tr} expected loss (implied rating*), rows {x[0]}, columns {y[0]}:"]
        lines.append(" " * 10 + "".join(f"{c:>20g}" for c in el.columns))
        for idx in el.index:
            cells = "".join(f"{el.loc[idx, c]:>11.4%} ({rt.loc[idx, c]:>5})" for c in el.columns)
            lines.append(f"{idx:>10g}" + cells)
        lines.append("* against the ILLUSTRATIVE idealized table")
        text = "\n".join(lines)
    if args.json:
        print(json.dumps(nan_to_none(doc), indent=2))
    else:
        print(text)
    return EXIT_OK


def _cmd_synth(args: argparse.Namespace) -> int:
    from .synthetic import MAX_OBLIGOR_PERIODS, write_synthetic

    if args.obligors * args.periods > MAX_OBLIGOR_PERIODS:
        raise UsageError(
            f"--obligors × --periods must be at most {MAX_OBLIGOR_PERIODS:,} "
            f"(got {args.obligors:,} × {args.periods:,} = {args.obligors * args.periods:,})"
        )
    _check_out_folder(args.out, "synth OUT (the output folder)")
    paths = write_synthetic(
        args.out,
        args.obligors,
        name=args.name,
        correlation=args.correlation,
        heterogeneous=args.heterogeneous,
        attachments=args.attach,
        annual_pd=args.pd,
        recovery_rate=args.recovery,
        amortization=args.amortization,
        n_periods=args.periods,
        seed=args.seed,
        # what is written loads and compiles, checked before it is moved into place
        verify=lambda deal: compile_deal(load_deal(deal)),
    )
    for kind, p in paths.items():
        print(f"{kind}: {p}")
    print(f"run it: abs-engine run {paths['deal']} -s {paths['scenario']} --paths 10000")
    return EXIT_OK


def _cmd_stress(args: argparse.Namespace) -> int:
    from .solvers import breakeven_default_rate, coverage_table, large_obligor_test

    deal = load_deal(args.deal)
    cd = compile_deal(deal)
    _print_warnings(cd)
    if args.largest is not None and args.largest > cd.n_obligors:
        raise UsageError(
            f"--largest must be at most the pool's {cd.n_obligors} obligors (got {args.largest})"
        )
    rated = [t.name for t in deal.tranches if t.principal != "residual" and t.balance > 0]
    names = args.tranche or rated
    for name in args.tranche or []:
        if name not in cd.tranche_names:
            raise UsageError(
                f"--tranche: unknown tranche {short_repr(name)}; tranches are "
                f"{list(cd.tranche_names)}"
            )
    if len(set(names)) != len(names):
        raise UsageError(f"--tranche: a tranche is named twice (got {names})")
    if args.period > cd.n_periods:
        raise UsageError(
            f"--period must be from 1 to the deal's {cd.n_periods} periods (got {args.period})"
        )
    sc_names = args.scenario or (
        [deal.deterministic_scenario] if deal.deterministic_scenario else []
    )
    scs = [load_scenario(s, deal) for s in sc_names]
    det = [s for s in scs if isinstance(s, DeterministicScenario)]
    if len(det) != len(scs):
        mc = [s.name for s in scs if not isinstance(s, DeterministicScenario)]
        raise UsageError(
            f"--scenario: the coverage table takes deterministic scenarios only (got {mc})"
        )
    rows = []
    for name in names:
        for support in (True, False):
            be = breakeven_default_rate(
                cd, name, recovery_rate=args.recovery, recovery_lag=args.lag, support=support
            )
            rows.append(
                {
                    "tranche": name,
                    "support": support,
                    "breakeven_default_rate": be.breakeven_default_rate,
                    "never_fails": be.never_fails,
                    "base_case_default_rate": be.base_case_default_rate,
                    "multiple": be.multiple,
                }
            )
    lot = large_obligor_test(
        cd,
        names[0] if names else None,
        max_obligors=min(3, cd.n_obligors) if args.largest is None else args.largest,
        period=args.period,
        recovery_rate=args.recovery,
        recovery_lag=args.lag,
    )
    cov = coverage_table(cd, det) if det else None
    doc = nan_to_none(
        {
            "deal": cd.deal.name,
            "source": cd.source,
            "assumptions": {
                "recovery_rate": args.recovery,
                "recovery_lag": args.lag,
                "timing": "front-loaded over the first two thirds of the periods",
            },
            "breakeven": rows,
            "large_obligor_test": {
                "tranche": names[0] if names else None,
                "period": args.period,
                "rows": lot.to_dict(orient="records"),
            },
            "coverage_ratio": None if cov is None else cov.reset_index().to_dict(orient="records"),
        }
    )
    if args.json:
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    from rich.table import Table

    console = _deal_console(cd)
    title = (
        f"Breakeven cumulative default rate (recovery {args.recovery:.0%} after {args.lag} "
        "periods, front-loaded timing)"
    )
    t = Table(title=title, title_justify="left")
    for col in ("tranche", "support", "breakeven", "base case", "multiple"):
        t.add_column(col, justify="left" if col == "tranche" else "right")
    for r in rows:
        never = bool(r["never_fails"])
        t.add_row(
            str(r["tranche"]),
            "with" if r["support"] else "without",
            "never fails" if never else f"{r['breakeven_default_rate']:.2%}",
            f"{r['base_case_default_rate']:.2%}",
            "-" if never else f"{r['multiple']:.2f}x",
        )
    console.print(t)
    t = Table(
        title=f"Large-obligor test: the k largest default in period {args.period}",
        title_justify="left",
    )
    for col in (
        "k",
        "defaulted",
        "share",
        "paid with support",
        "loss",
        "support paid",
        "paid without support",
        "loss without",
    ):
        t.add_column(col, justify="right")
    for r in lot.to_dict(orient="records"):
        t.add_row(
            str(r["defaulted_obligors"]),
            f"{r['defaulted_balance']:,.0f}",
            f"{r['defaulted_share']:.1%}",
            "yes" if r["paid_in_full_with_support"] else "NO",
            f"{r['loss_with_support']:,.0f}",
            f"{r['support_paid']:,.0f}",
            "yes" if r["paid_in_full_without_support"] else "NO",
            f"{r['loss_without_support']:,.0f}",
        )
    console.print(t)
    if cov is not None:
        t = Table(title="Coverage ratio by period (现金流覆盖倍数)", title_justify="left")
        t.add_column("t", justify="right")
        t.add_column("date", justify="right")
        for s in det:
            t.add_column(s.name, justify="right")
        for period, r in cov.iterrows():
            t.add_row(str(period), r["payment_date"], *(_fmt(r[s.name], "{:.3f}x") for s in det))
        console.print(t)
    return EXIT_OK


#: exit status after Ctrl-C (SIGINT), as a shell reports a process killed by it (128 + 2);
#: after SIGTERM 143 (128 + 15), after SIGHUP 129 (128 + 1)
EXIT_INTERRUPTED = 130


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised as an exception by :func:`main`'s handler so that every
    ``finally`` and cleanup runs (staging folders and temporary files removed) before the
    process exits with ``128 + signum``."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


def _resend(signum: int, caught: threading.Event) -> None:
    if not caught.is_set():
        os.kill(os.getpid(), signum)


@contextmanager
def _interrupts_as_exceptions() -> Iterator[threading.Event]:
    """For the duration of a command: SIGINT raises ``KeyboardInterrupt`` (Python's default,
    put back if something replaced it by the system default), SIGTERM and SIGHUP raise
    :class:`Terminated`; the previous handlers are restored afterwards. Ignored signals stay
    ignored (``nohup``); outside the main thread nothing changes (signals go to the main
    thread).

    An interrupt raised where it cannot propagate — in a ctypes callback of numba's compiler
    or a ``__del__``, where Python would print "Exception ignored" and carry on — is not lost:
    the signal is sent again a moment later, until the command has it. Set the yielded event
    once it has."""
    caught = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    previous: dict[int, Any] = {}
    wanted: dict[int, Any] = {signal.SIGINT: signal.default_int_handler}
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            wanted[getattr(signal, name)] = _raise_terminated
    for sig, handler in wanted.items():
        old = signal.getsignal(sig)
        if old is None or old == signal.SIG_IGN or (sig == signal.SIGINT and old != signal.SIG_DFL):
            continue  # set outside Python, ignored, or a Python SIGINT handler: leave it
        previous[sig] = old
        signal.signal(sig, handler)
    old_hook = sys.unraisablehook

    def unraisable(u: Any) -> None:
        exc = u.exc_value
        if isinstance(exc, KeyboardInterrupt) and not caught.is_set():
            signum = exc.signum if isinstance(exc, Terminated) else int(signal.SIGINT)
            timer = threading.Timer(0.05, _resend, (signum, caught))
            timer.daemon = True
            timer.start()
            return
        old_hook(u)

    sys.unraisablehook = unraisable
    try:
        yield caught
    finally:
        caught.set()
        sys.unraisablehook = old_hook
        for sig, old in previous.items():
            signal.signal(sig, old)


def main(argv: list[str] | None = None) -> int:
    """Run one ``abs-engine`` command; returns the exit status.

    0 success; 2 bad input (every problem printed, no traceback); 1 the command could not
    finish for another reason — an output folder that could not be written (a full disk):
    nothing in it was changed — or an unexpected error; 130 interrupted by Ctrl-C (SIGINT),
    143 by SIGTERM, 129 by SIGHUP: ``interrupted`` on stderr, no traceback, and no output
    file changed or left half-written (see ``abs_engine.files``)."""
    with _interrupts_as_exceptions() as caught:
        try:
            with warnings.catch_warnings():
                # the commands print the deal's warnings themselves, as warning: lines
                warnings.simplefilter("ignore", DealWarning)
                return _main(argv)
        except KeyboardInterrupt as exc:
            caught.set()
            signum: int = exc.signum if isinstance(exc, Terminated) else int(signal.SIGINT)
            how = "" if signum == signal.SIGINT else f" ({signal.Signals(signum).name})"
            with contextlib.suppress(Exception):
                print(f"interrupted{how}", file=sys.stderr, flush=True)
            return 128 + signum


def _main(argv: list[str] | None) -> int:
    try:
        args = _parser().parse_args(argv)  # bad arguments: UsageError, exit 2
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "stress":
            return _cmd_stress(args)
        if args.command == "synth":
            return _cmd_synth(args)
        if args.command in ("size", "price", "breakeven", "sensitivity"):
            return _cmd_solver(args)
        return _cmd_validate(args)
    except DealError as exc:
        n = len(exc.problems)
        print(f"error: {n} problem{'s' if n > 1 else ''} found", file=sys.stderr)
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
        return EXIT_INPUT
    except OutputError as exc:  # a full disk: not bad input; the output folder is unchanged
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except AbsEngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except BrokenPipeError:
        return EXIT_OK


def entry() -> NoReturn:
    """The ``abs-engine`` command: :func:`main`, then exit with its status. After an interrupt
    the process ends at once, its streams flushed (``os._exit``): an interrupt that landed
    inside numba's compiler can leave half-built llvmlite objects whose finalizers would
    print "Exception ignored ... Traceback" while Python shuts down, after "interrupted"."""
    code = main()
    if code >= 128:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
