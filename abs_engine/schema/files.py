"""Files checked as text before they are parsed: one wording for deal, scenario and tape files."""

from __future__ import annotations

import codecs
from pathlib import Path

from ..errors import DealError

__all__ = ["decode_text"]


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
