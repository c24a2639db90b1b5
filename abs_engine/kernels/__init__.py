"""Numba kernels. Nothing here imports ``schema``; arguments are arrays, scalars and the named
bundles of arrays and scalars in :mod:`abs_engine.kernels.bundles`.

Numba's on-disk cache (``cache=True``) checks only the source of the file defining a
function, not of the kernels it calls from other files: after an edit to ``waterfall.py``, a
cached ``run_block`` from ``montecarlo.py`` would still hold the old waterfall. So on import
we hash every kernel source file and, when the hash changed, drop this package's cache files
wherever numba keeps them (``__pycache__``, ``NUMBA_CACHE_DIR``, or the user-wide cache),
with the inlined kernels' code objects kept beside them (:mod:`abs_engine.kernels._codecache`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

#: name prefix of the inlined kernels' code files in the cache folders
#: (:mod:`abs_engine.kernels._codecache`)
CODE_CACHE_PREFIX = "abs_engine_code-"


def _cache_dirs(here: Path) -> list[tuple[Path, bool]]:
    """Where numba may keep this package's cache: (folder, whether numba would create it)."""
    # numba names a cache folder outside the tree "<folder name>_<sha1 of the folder path>"
    sub = f"{here.name}_{hashlib.sha1(str(here).encode()).hexdigest()}"
    if os.environ.get("NUMBA_CACHE_DIR"):
        return [(Path(os.environ["NUMBA_CACHE_DIR"]) / sub, True)]
    dirs = [(here / "__pycache__", True)]
    try:
        from numba.misc.appdirs import AppDirs

        dirs.append((Path(AppDirs(appname="numba", appauthor=False).user_cache_dir) / sub, False))
    except Exception:  # pragma: no cover - numba internals moved
        pass
    return dirs


def source_digest(here: Path | None = None) -> str:
    """sha256 (hex) of every kernel source file, names and bytes: what a compiled kernel
    depends on (a cached caller elsewhere can carry it in its name, as the tests' do)."""
    digest = hashlib.sha256()
    for src in sorted((here or Path(__file__).resolve().parent).glob("*.py")):
        digest.update(src.name.encode())
        digest.update(src.read_bytes())
    return digest.hexdigest()


def _invalidate_stale_cache(
    here: Path | None = None, dirs: list[tuple[Path, bool]] | None = None
) -> str:
    """Drop the cache files of this package's kernels (numba's, and the inlined code beside
    them) from ``dirs`` (default: :func:`_cache_dirs`) where the stamp there is not the
    current :func:`source_digest` of ``here``, and stamp them; returns that digest."""
    here = here or Path(__file__).resolve().parent
    modules = {p.stem for p in here.glob("*.py")}
    current = source_digest(here)
    for cache, primary in dirs if dirs is not None else _cache_dirs(here):
        if not cache.is_dir():
            if not primary:
                continue
            try:  # stamp the folder numba is about to fill, so the next process trusts it
                cache.mkdir(parents=True, exist_ok=True)
            except OSError:
                continue
        stamp = cache / "abs_engine_kernels.sha256"
        try:
            if stamp.read_text() == current:
                continue
        except OSError:
            pass
        try:
            for f in cache.glob("*.nb[ic]"):
                if f.name.split(".")[0] in modules:
                    f.unlink(missing_ok=True)
            for f in cache.glob(CODE_CACHE_PREFIX + "*"):
                f.unlink(missing_ok=True)
            stamp.write_text(current)
        except OSError:  # read-only location: numba falls back to its own checks
            pass
    return current


#: :func:`source_digest` of the kernel sources as this process imported them (the code
#: cache's key, :mod:`abs_engine.kernels._codecache`)
IMPORTED_DIGEST = _invalidate_stale_cache()
