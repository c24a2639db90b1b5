"""Files checked as text before they are parsed: one wording for deal, scenario and tape files."""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from ..errors import DealError

__all__ = ["decode_text", "forget_input", "input_at", "inputs_recorded", "note_input"]


#: the input files the current command has read (deal, scenario, tape, curve, rating table),
#: by (device, inode), with the path they were read by and their modification time then: its
#: output folder refuses to replace one (:class:`abs_engine.files.StagedOutputs`). Recorded
#: only inside :func:`inputs_recorded` (each ``abs-engine`` command), so a Python session that
#: loads a deal and later regenerates it is not refused; the time must match too, so a new
#: file that reuses a deleted input's inode is not one.
_INPUTS: ContextVar[dict[tuple[int, int], tuple[str, int]] | None] = ContextVar(
    "abs_engine_inputs", default=None
)


@contextmanager
def inputs_recorded() -> Iterator[None]:
    """Record the input files read inside the block (a command's), and no longer after."""
    token = _INPUTS.set({})
    try:
        yield
    finally:
        _INPUTS.reset(token)


def _identity(p: Path) -> tuple[tuple[int, int], int] | None:
    """``p``'s (device, inode) and modification time (ns), or None if it cannot be looked up."""
    try:
        st = os.stat(p)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino), st.st_mtime_ns


def note_input(p: Path) -> None:
    """Remember ``p`` as an input file of the current command (nothing outside
    :func:`inputs_recorded`, or if it cannot be looked up)."""
    inputs, ident = _INPUTS.get(), _identity(p)
    if inputs is not None and ident is not None:
        inputs[ident[0]] = (str(p), ident[1])


def forget_input(p: Path) -> None:
    """``p`` is an output now (a staged file read back to check it, then moved into place)."""
    inputs, ident = _INPUTS.get(), _identity(p)
    if inputs is not None and ident is not None:
        inputs.pop(ident[0], None)


def input_at(p: Path) -> str | None:
    """The path the current command read an input file by, if ``p`` is that file (the same
    device, inode and modification time: another spelling, a symbolic or hard link), else
    None."""
    inputs = _INPUTS.get()
    ident = _identity(p) if inputs else None
    if not inputs or ident is None:
        return None
    read = inputs.get(ident[0])
    return read[0] if read is not None and read[1] == ident[1] else None


def decode_text(
    p: Path, raw: bytes, what: str = "a text file", it: str = "it", *, final: bool = True
) -> str:
    """``raw``, the bytes of ``p``, as text (a UTF-8 byte-order mark dropped); a
    :class:`DealError` for binary data (a NUL byte) or bytes that are not UTF-8. ``what`` and
    ``it`` name the file in the messages (``"a CSV text file"``, ``"the tape"``);
    ``final=False``: ``raw`` is only the head of the file (it may end inside a character)."""
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DealError.one(p, "<file>", f"binary data (a NUL byte at byte {nul:,}), not {what}")
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(raw[bom:], final=final)
    except UnicodeDecodeError as exc:
        at = bom + exc.start  # a byte of the file, counting the mark
        why = f"not UTF-8 text (byte {at:,} is {raw[at : at + 4]!r}); save {it} as UTF-8"
        raise DealError.one(p, "<syntax>", why) from None


def csv_header(text: str, comments: bool = False) -> list[str]:
    """The column names of a CSV text's header, each stripped of surrounding spaces, as
    written (pandas renames a repeated name ``x.1``, and ``x `` and ``x`` apart, so a
    repeated column went unseen): its first line that is not blank (lines end at CRLF, LF or
    a lone CR), with ``comments`` what a ``#`` starts cut off first (as pandas reads such a
    file). A header the csv module cannot split (a cell over its field limit) is split at
    its commas."""
    import csv

    for line in text.splitlines():
        if comments:
            line = line.split("#", 1)[0]
        if not line.strip():
            continue
        try:
            row = next(csv.reader([line]), [])
        except csv.Error:
            row = line.split(",")
        return [name.strip() for name in row]
    return []


def repeated(names: list[str]) -> list[str]:
    """The names that appear more than once, in their order."""
    seen: set[str] = set()
    out: list[str] = []
    for n in names:
        if n in seen and n not in out:
            out.append(n)
        seen.add(n)
    return out
