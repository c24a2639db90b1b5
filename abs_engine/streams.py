"""The ``abs-engine`` command's standard streams: what it cannot encode written as escapes,
Python warnings as ``warning: ...`` lines, a failing stdout told apart from the command's
other disk errors, and a quiet exit after a closed pipe or a full device.

Standard library only: :mod:`abs_engine.cli` imports this before its heavy modules.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["StdoutFailed", "printable", "quiet_stdout_at_exit", "warning_line", "watched_stdout"]


@contextlib.contextmanager
def printable() -> Iterator[None]:
    """stdout and stderr write what they cannot encode as backslash escapes for the command:
    a path in another encoding than the terminal's (a GBK-named folder on a UTF-8 system,
    bytes Linux allows, held as surrogates) stopped ``run --out`` with a UnicodeEncodeError
    as it said where it wrote. Their settings are put back after."""
    changed = []
    for stream in (sys.stdout, sys.stderr):
        errors = getattr(stream, "errors", None)
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
            changed.append((stream, errors))
    try:
        yield
    finally:
        for stream, errors in changed:
            with contextlib.suppress(AttributeError, ValueError, OSError):
                stream.reconfigure(errors=errors)  # type: ignore[union-attr]


def warning_line(message: Warning | str, *_: object, **__: object) -> None:
    """A warning on stderr as one ``warning: ...`` line, as the commands print the deal's
    (Python's own format added the source line and the code that warned): a
    ``warnings.showwarning``."""
    print(f"warning: {message}", file=sys.stderr)


class StdoutFailed(Exception):
    """Writing the command's standard output failed other than by a closed pipe (a full
    device): told apart from the command's other disk errors (a full kernel cache)."""

    def __init__(self, exc: OSError):
        super().__init__(exc)
        self.exc = exc


class _Stdout:
    """``sys.stdout`` during a command: a write or flush failing with an OSError other than a
    closed pipe raises :class:`StdoutFailed`; everything else is the stream's."""

    def __init__(self, stream: Any):
        self._stream = stream

    def _guarded(self, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise StdoutFailed(exc) from None

    def write(self, text: str) -> int:
        return int(self._guarded(self._stream.write, text))

    def flush(self) -> None:
        self._guarded(self._stream.flush)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def watched_stdout() -> Iterator[None]:
    """:class:`_Stdout` as ``sys.stdout`` for the command; the stream put back after."""
    stream = sys.stdout
    if stream is None:
        yield
        return
    sys.stdout = _Stdout(stream)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout = stream


def quiet_stdout_at_exit() -> None:
    """Before the process ends: what is left in stdout's buffer written, or, where it cannot
    be (a closed pipe, a full device: the command has said so), stdout pointed at /dev/null
    so that Python's own flush at exit prints no "Exception ignored"."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError, AttributeError):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
