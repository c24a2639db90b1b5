"""The ``abs-engine`` command line: parsing (the parser is :mod:`abs_engine.cli_parser`'s), and
dispatch to the commands of :mod:`abs_engine.commands`, loaded only once the arguments parse.

Exit status: 0 success, 2 bad input (every problem printed, no traceback), 1 anything else
(an output folder that cannot be written, e.g. a full disk: nothing in it changed; a Dask
scheduler out of reach or lost during the run), 130 after
Ctrl-C (SIGINT), 143 after SIGTERM, 129 after SIGHUP ("interrupted" on stderr, no traceback).
A run's ``--out`` files are written as a set, with ``manifest.json`` last, or not at all (see
``abs_engine.files``); files get the usual permissions under the umask (0644 under 022).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import warnings
from typing import NoReturn

from . import streams
from .interrupts import (
    EXIT_INTERRUPTED,
    Terminated,
    ignore_signals,
    interrupted_status,
    interrupts_as_exceptions,
    signals_noted,
)


def _check_numba_threads() -> None:
    """``NUMBA_NUM_THREADS`` set to a whole number below 1 stops ``import numba`` with a
    ValueError (a traceback from every command, ``validate`` included): exit 2 with one line
    naming it instead. Other values numba reads itself (text it warns of and ignores)."""
    raw = os.environ.get("NUMBA_NUM_THREADS", "").strip()
    try:
        bad = int(raw) < 1
    except ValueError:
        return
    if bad:
        print(f"error: NUMBA_NUM_THREADS: must be a whole number of threads, 1 or more "
              f"(got {raw!r}); unset it to use every core", file=sys.stderr)  # fmt: skip
        raise SystemExit(2)


_check_numba_threads()

# Ctrl-C, SIGTERM or SIGHUP while the modules below load (pydantic and the schema; the
# commands, with numba and pandas, load in _main) ends the command like one later on; main()
# installs the full handling.
with signals_noted():
    from .cli_parser import parser as _parser
    from .cli_types import MAX_GRID_VALUES, MAX_LEDGER_PATHS, UsageError
    from .distributed.cluster import ClusterError
    from .errors import EXIT_ERROR, EXIT_INPUT, EXIT_OK, AbsEngineError, DealError, DealWarning
    from .files import OutputError, commits
    from .schema.files import inputs_recorded

__all__ = [
    "EXIT_ERROR",
    "EXIT_INPUT",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "MAX_GRID_VALUES",
    "MAX_LEDGER_PATHS",
    "Terminated",
    "UsageError",
    "entry",
    "main",
]


def main(argv: list[str] | None = None, *, until_exit: bool = False) -> int:
    """Run one ``abs-engine`` command; returns the exit status.

    0 success; 2 bad input (every problem printed, no traceback); 1 the command could not
    finish for another reason — an output folder that could not be written (a full disk):
    nothing in it was changed — or an unexpected error; 130 interrupted by Ctrl-C (SIGINT),
    143 by SIGTERM, 129 by SIGHUP: ``interrupted`` on stderr, no traceback, and no output
    file changed or left half-written (see ``abs_engine.files``).

    ``until_exit`` (:func:`entry`): the process ends after the command, so once interrupted
    it ignores further signals (a second one broke into the ending with a traceback)."""
    written = commits()
    with streams.printable(), interrupts_as_exceptions(until_exit) as caught:
        try:
            with warnings.catch_warnings():
                # the commands print the deal's warnings themselves, as warning: lines
                warnings.simplefilter("ignore", DealWarning)
                warnings.showwarning = streams.warning_line
                with inputs_recorded():  # its outputs never replace them
                    return _main(argv)
        except KeyboardInterrupt as exc:
            caught.set()
            if until_exit:
                ignore_signals()
            if commits() > written:
                # its outputs were in place: the command had done its work (130 says the
                # output folder is as it was)
                print("interrupted after the outputs were written: they are complete",
                      file=sys.stderr, flush=True)  # fmt: skip
                return EXIT_OK
            return interrupted_status(exc)


def _main(argv: list[str] | None) -> int:
    try:
        args = _parser().parse_args(argv)  # bad arguments: UsageError, exit 2
        # the commands, with pandas, numba and the kernels, load only now: --help, -V and a
        # usage error answer in a third of the time (under main's handling of signals)
        from . import commands

        with commands.compile_notice(), streams.watched_stdout():
            code = _dispatch(args)
            # a small output is still in the buffer: written here, where a full device or a
            # closed pipe is told as below (at exit it was Python's "Exception ignored")
            sys.stdout.flush()
            return code
    except DealError as exc:
        n = exc.total  # with a line counting those not listed, more than the lines below
        print(f"error: {n} problem{'s' if n > 1 else ''} found", file=sys.stderr)
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
        return EXIT_INPUT
    except (OutputError, ClusterError) as exc:
        # a full disk, a scheduler out of reach: not bad input; no output folder was changed
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except AbsEngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except BrokenPipeError:
        return EXIT_OK
    except streams.StdoutFailed as failed:
        # the command's output on a full device (> /dev/full): the files, if any, are in
        # place already (they come first); it was a traceback
        why = failed.exc.strerror or failed.exc
        print(f"error: cannot write the output: {why}", file=sys.stderr)
        return EXIT_ERROR


def _dispatch(args: argparse.Namespace) -> int:
    """The command's implementation, looked up when called (tests replace one)."""
    from . import commands

    if args.command == "run":
        return commands.cmd_run(args)
    if args.command == "stress":
        return commands.cmd_stress(args)
    if args.command == "report":
        return commands.cmd_report(args)
    if args.command == "synth":
        return commands.cmd_synth(args)
    if args.command in ("size", "size-stack", "price", "breakeven", "sensitivity"):
        return commands.cmd_solver(args)
    return commands.cmd_validate(args)


def entry() -> NoReturn:
    """The ``abs-engine`` command: :func:`main`, then exit with its status. After an interrupt
    the process ends at once, its streams flushed (``os._exit``): an interrupt that landed
    inside numba's compiler can leave half-built llvmlite objects whose finalizers would
    print "Exception ignored ... Traceback" while Python shuts down, after "interrupted"."""
    code = main(until_exit=True)
    streams.quiet_stdout_at_exit()
    if code < 128:
        # done: a signal now (while Python shuts its modules down) would kill the process
        # with that signal's status, as if the command had not finished
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            with contextlib.suppress(AttributeError, ValueError, OSError):
                signal.signal(getattr(signal, name), signal.SIG_IGN)
    if code >= 128:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
