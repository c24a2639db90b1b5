"""Numba kernels. Nothing here imports ``schema``; arguments are arrays and scalars only.

Numba's on-disk cache (``cache=True``) checks only the timestamp of the file defining a
function, not of the kernels it calls from other files: after an edit to ``waterfall.py``, a
cached ``run_blocks`` from ``montecarlo.py`` would still hold the old waterfall. So on import
we hash every kernel source file and, when the hash changed, drop this package's cache files.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def _invalidate_stale_cache() -> None:
    here = Path(__file__).resolve().parent
    if os.environ.get("NUMBA_CACHE_DIR"):
        cache = Path(os.environ["NUMBA_CACHE_DIR"])
    else:
        cache = here / "__pycache__"
    digest = hashlib.sha256()
    for src in sorted(here.glob("*.py")):
        digest.update(src.name.encode())
        digest.update(src.read_bytes())
    stamp = cache / "abs_engine_kernels.sha256"
    current = digest.hexdigest()
    try:
        if stamp.read_text() == current:
            return
    except OSError:
        pass
    try:
        cache.mkdir(parents=True, exist_ok=True)
        for f in cache.glob("*.nb[ic]"):
            if f.name.split(".")[0] in {p.stem for p in here.glob("*.py")}:
                f.unlink(missing_ok=True)
        stamp.write_text(current)
    except OSError:  # read-only install: numba falls back to its own checks
        pass


_invalidate_stale_cache()
