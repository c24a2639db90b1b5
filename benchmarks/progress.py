"""One progress bar per benchmark section, on stderr, over the section's measurements.

A measurement is one timed call (a repeat of :func:`benchmarks.scaling.timed`, of the
distributed section's runs, of the FinancePy comparison's engine and peer runs) or one
measuring subprocess (memory, compile). :func:`section` opens a section's bar with the count
of measurements it is expected to take (:func:`benchmarks.suite.expected_measurements`; the
total grows if a section takes more, and the bar completes when it ends), and
:func:`measured` counts one on the open bar (nothing when none is open). The bar is the
engine's :class:`abs_engine.simulation.Progress`: it appears once the section is expected to
take over a second, is removed when the section ends, and measures nothing itself (it is
updated between measurements, outside their timers).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from abs_engine.simulation import Progress

__all__ = ["enabled", "measured", "section"]


class _SectionBar:
    """A section's bar and its count of measurements so far."""

    def __init__(self, name: str, expected: int, show: bool | None) -> None:
        self.bar = Progress(max(1, expected), show, name, "measurements", auto_refresh=False)
        self.done = 0

    def measured(self) -> None:
        self.done += 1
        self.bar.grow(self.done)
        self.bar.update(self.done)


_current: _SectionBar | None = None


def enabled(flag: bool | None, stream: object = None) -> bool | None:
    """The ``progress`` of the sections' bars for ``--progress`` (True), ``--no-progress``
    (False) or neither (None): then none when stderr (``stream``) is not a terminal, else
    the engine's default (shown once a section is expected to take over a second)."""
    if flag is not None:
        return flag
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return None if callable(isatty) and isatty() else False


@contextmanager
def section(name: str, expected: int, show: bool | None) -> Iterator[None]:
    """A bar for section ``name`` while the block runs: ``expected`` measurements;
    ``show`` as ``progress`` of :class:`~abs_engine.simulation.Progress` (False: none)."""
    global _current
    bar = _SectionBar(name, expected, show)
    outer, _current = _current, bar
    try:
        yield
    finally:
        _current = outer
        bar.bar.finish()


def measured() -> None:
    """One measurement done, on the open section's bar (none open: nothing)."""
    if _current is not None:
        _current.measured()
