"""The inlined kernels' code objects, kept on disk beside numba's cache between processes.

Every process builds the compiled twins' source-level inlining
(:func:`~abs_engine.kernels._inline.inline_helpers`) before numba loads their machine code
from its cache: about 0.35 s at import (the waterfall interpreter, the collateral draws,
the block kernels) and 0.3 s more for a deal-specialised block kernel
(:mod:`abs_engine.kernels.specialise`), measured on the bundled deal, of the 2.2 s a new
process takes to import and run a small simulate. The result is a plain code object (and,
for a specialisation, the constants it folded), a pure function of the source files it was
built from, the interpreter, and the specialisation's key; here it is stored under a hash of
all of them with :mod:`marshal` (and the constants with :mod:`pickle`, as numba's own index
files are), and read back instead of being built again.

Files are named ``abs_engine_code-<sha256>.bin`` in the first of the kernels' cache folders
(:func:`abs_engine.kernels._cache_dirs`: ``NUMBA_CACHE_DIR``'s, the package's
``__pycache__``, or numba's user-wide one) where one can be written, written to a temporary
file and renamed (a reader sees a whole file or none). A file that cannot be read, is of
another interpreter or is damaged is built again; a folder that cannot be written costs only
the time. The stale-cache guard deletes them with numba's files when a kernel source changes
(their keys would no longer match anyway).
"""

from __future__ import annotations

import functools
import hashlib
import marshal
import os
import pickle
import sys
import tempfile
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from . import CODE_CACHE_PREFIX as PREFIX
from . import _cache_dirs, source_digest

__all__ = ["PREFIX", "cached_code", "code_key"]
_FORMAT = b"abs_engine code cache 1"


@functools.cache
def _kernels_dir() -> Path:
    return Path(__file__).resolve().parent


@functools.cache
def _digest() -> str:
    """:func:`abs_engine.kernels.source_digest`, once a process."""
    return source_digest(_kernels_dir())


@functools.cache
def _file_digest(path: str) -> str:
    """sha256 of one source file's bytes, once a process ('' when it cannot be read)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def code_key(functions: Iterable[Callable[..., Any]], extra: str = "") -> str | None:
    """The cache key of code generated from ``functions`` (the kernel first, then its
    helpers) and ``extra`` (what else the generation read, e.g. a specialisation's structure
    key): the interpreter, numpy, every kernel source file, and each function's module,
    qualified name, file (with its bytes) and first line. None where a function's file
    cannot be read: then nothing is cached."""
    h = hashlib.sha256(_FORMAT)
    h.update(f"{sys.version}|{sys.implementation.cache_tag}|{np.__version__}".encode())
    h.update(_digest().encode())
    for fn in functions:
        code = fn.__code__
        file_digest = _file_digest(code.co_filename)
        if not file_digest:
            return None
        h.update(f"|{fn.__module__}.{fn.__qualname__}@{code.co_filename}:{code.co_firstlineno}"
                 f":{file_digest}".encode())  # fmt: skip
    h.update(b"|" + extra.encode())
    return h.hexdigest()


def _folders() -> list[Path]:
    return [folder for folder, _ in _cache_dirs(_kernels_dir())]


def _load(key: str) -> tuple[types.CodeType, Any] | None:
    """The code object and extra data stored under ``key``, or None (none, or unreadable)."""
    for folder in _folders():
        try:
            data = (folder / f"{PREFIX}{key}.bin").read_bytes()
        except OSError:
            continue
        try:
            code_bytes, extra_bytes = pickle.loads(data)
            code = marshal.loads(code_bytes)
            extra = pickle.loads(extra_bytes)
        except Exception:  # damaged, or of another interpreter: built again
            return None
        return (code, extra) if isinstance(code, types.CodeType) else None
    return None


def _store(key: str, code: types.CodeType, extra: Any) -> None:
    """Write ``code`` and ``extra`` under ``key`` into the first folder that takes them (a
    temporary file renamed); nothing where none does."""
    try:
        data = pickle.dumps((marshal.dumps(code), pickle.dumps(extra)))
    except Exception:  # extra data that does not pickle: not cached
        return
    for folder in _folders():
        tmp = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-" + PREFIX, dir=folder)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, folder / f"{PREFIX}{key}.bin")
            return
        except OSError:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


def cached_code(
    key: str | None, build: Callable[[], tuple[types.CodeType, Any]]
) -> tuple[types.CodeType, Any]:
    """``build()`` (a code object and picklable extra data), read from the disk cache under
    ``key`` where it is there, else built and stored (``key`` None: built, not stored)."""
    if key is None:
        return build()
    hit = _load(key)
    if hit is not None:
        return hit
    code, extra = build()
    _store(key, code, extra)
    return code, extra
