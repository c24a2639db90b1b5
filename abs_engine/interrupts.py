"""Ctrl-C, SIGTERM and SIGHUP in the ``abs-engine`` command: the command ends with
"interrupted" on stderr and exit status ``128 + signum``, no traceback, after every ``finally``
and cleanup has run (staging folders and temporary files removed; see ``abs_engine.files``).

Standard library only: :mod:`abs_engine.cli` imports this before its heavy modules.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "EXIT_INTERRUPTED",
    "Terminated",
    "ignore_signals",
    "interrupted_status",
    "interrupts_as_exceptions",
    "signals_noted",
]

#: exit status after Ctrl-C (SIGINT), as a shell reports a process killed by it (128 + 2);
#: after SIGTERM 143 (128 + 15), after SIGHUP 129 (128 + 1)
EXIT_INTERRUPTED = 130


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised as an exception by the handler of
    :func:`interrupts_as_exceptions` so that every ``finally`` and cleanup runs (staging
    folders and temporary files removed) before the process exits with ``128 + signum``."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def interrupted_status(exc: KeyboardInterrupt) -> int:
    """Print ``interrupted`` (naming the signal unless it is SIGINT) on stderr; return the
    exit status, ``128 + signum``."""
    signum: int = exc.signum if isinstance(exc, Terminated) else int(signal.SIGINT)
    how = "" if signum == signal.SIGINT else f" ({signal.Signals(signum).name})"
    with contextlib.suppress(Exception):
        print(f"interrupted{how}", file=sys.stderr, flush=True)
    return 128 + signum


@contextmanager
def signals_noted() -> Iterator[None]:
    """Around the command's heavy imports (about a second: pydantic, numba, pandas): Ctrl-C,
    SIGTERM or SIGHUP ends the command as it would later on ("interrupted", exit 128 + signum,
    no traceback). The signal is only noted while the block runs and acted on once it has
    finished: an exception raised inside the import machinery can land in a callback, where
    Python prints "Exception ignored ... Traceback" and carries on. Only signals left at their
    default are taken over, and only in the main thread."""
    noted: list[int] = []

    def note(signum: int, frame: object) -> None:
        noted.append(signum)

    previous: dict[int, Any] = {}
    # not in a worker process that multiprocessing spawned (a Dask worker imports the command's
    # script again as __mp_main__): its parent handles the command's interrupts
    if threading.current_thread() is threading.main_thread() and not _child_process():
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is None:
                continue
            old = signal.getsignal(sig)
            if old == signal.SIG_DFL or (
                sig == signal.SIGINT and old is signal.default_int_handler
            ):
                previous[sig] = signal.signal(sig, note)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    if noted:
        signum = noted[0]
        how = "" if signum == signal.SIGINT else f" ({signal.Signals(signum).name})"
        print(f"interrupted{how}", file=sys.stderr, flush=True)
        raise SystemExit(128 + int(signum))


def _child_process() -> bool:
    """This process was started by :mod:`multiprocessing` (spawn or forkserver)."""
    import multiprocessing

    return multiprocessing.parent_process() is not None


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


def _resend(signum: int, caught: threading.Event) -> None:
    if not caught.is_set():
        os.kill(os.getpid(), signum)


def ignore_signals() -> None:
    """SIGINT, SIGTERM and SIGHUP ignored from now on (main thread only): the command has
    been interrupted and is ending, and a second signal must not break into its message or
    its exit with a traceback (a validator's SIGTERM then SIGINT 5 ms later, exit -2)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


@contextmanager
def interrupts_as_exceptions(until_exit: bool = False) -> Iterator[threading.Event]:
    """For the duration of a command: SIGINT raises ``KeyboardInterrupt`` (Python's default,
    put back if something replaced it by the system default), SIGTERM and SIGHUP raise
    :class:`Terminated`; the previous handlers are restored afterwards. Ignored signals stay
    ignored (``nohup``); outside the main thread nothing changes (signals go to the main
    thread).

    An interrupt raised where it cannot propagate — in a ctypes callback of numba's compiler
    or a ``__del__``, where Python would print "Exception ignored" and carry on — is not lost:
    the signal is sent again a moment later, until the command has it. Set the yielded event
    once it has.

    ``until_exit``: the process ends after the command (the ``abs-engine`` entry point), so
    handlers :func:`ignore_signals` set to ignore stay so on the way out."""
    caught = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    previous = _install_raising_handlers()
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
            if not (until_exit and signal.getsignal(sig) == signal.SIG_IGN):
                signal.signal(sig, old)


def _install_raising_handlers() -> dict[int, Any]:
    """SIGINT → KeyboardInterrupt, SIGTERM and SIGHUP → :class:`Terminated`, where the handler
    in place allows it; returns the handlers replaced."""
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
    return previous
