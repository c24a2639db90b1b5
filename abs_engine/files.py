"""Writing output files so that nothing half-written is left behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(path: Path, write: Callable[[Path], object], mode: int | None = None) -> None:
    """Write via ``write(tmp)`` into a temporary file beside ``path``, then rename it over
    ``path``; on any error the temporary file is removed and ``path`` is untouched.
    ``mode``: permissions to give the file (the temporary file is created 0600)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
