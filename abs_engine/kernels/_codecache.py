"""The inlined kernels' code objects, kept on disk beside numba's cache between processes.

Every process builds the compiled twins' source-level inlining
(:func:`~abs_engine.kernels._inline.inline_helpers`) before numba loads their machine code
from its cache: about 0.35 s at import (the waterfall interpreter, the collateral draws,
the block kernels) and 0.3 s more for a deal-specialised block kernel
(:mod:`abs_engine.kernels.specialise`), measured on the bundled deal, of the 2.2 s a new
process took to import and run a small simulate. The result is a plain code object (and,
for a specialisation, the constants it folded), made from the source text the inliner
parsed, the kernel modules as imported, and the specialisation's structure; here it is
stored under a hash of all of them (:func:`code_key`: the caller hashes the texts it
parsed, this module adds the interpreter, numpy, and the kernel sources' digest taken when
the package was imported) with :mod:`marshal` (the extra data with :mod:`pickle`, as numba's
own index files are), and read back instead of being built again.

Files are named ``abs_engine_code-<sha256>.bin`` in the first of the kernels' cache folders
(:func:`abs_engine.kernels._cache_dirs`: ``NUMBA_CACHE_DIR``'s, the package's
``__pycache__``, or numba's user-wide one) where one can be written, written to a temporary
file of the same prefix and renamed (a reader sees a whole file or none), with the
permissions of any file the process creates (its umask), as numba's. Each carries the
sha256 of its contents: a file that cannot be read, fails its checksum or its shape check,
or is of another interpreter is built again and replaced; a folder that cannot be written
costs only the time. The stale-cache guard deletes them (and any temporary file a killed
process left) with numba's files at the next change to a kernel source.

The checksum detects damage, not tampering: whoever can write the cache folder can have
code run by every process that reads it, as with numba's own cache files (pickled indexes
and object code). The key covers the source texts and the kernel modules as imported, not
module values changed at run time: a monkeypatched budget or constant that a transform reads
must be named in its ``cache_extra``, or the transform not cached (the tests patch them only
on paths that cache nothing, :func:`~abs_engine.kernels.specialise.specialised_waterfall_py`).
"""

from __future__ import annotations

import hashlib
import marshal
import os
import pickle
import sys
import types
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from . import CODE_CACHE_PREFIX, IMPORTED_DIGEST, _cache_dirs

__all__ = ["cached_code", "code_key"]

_FORMAT = b"abs_engine code cache 3"
#: what the code and its pickled data depend on besides the sources
_INTERPRETER = (
    f"{sys.version}|{sys.implementation.cache_tag}|optimize={sys.flags.optimize}"
    f"|numpy {np.__version__}"
)
_KERNELS_DIR = Path(__file__).resolve().parent


def code_key(sources: Iterable[str], extra: str = "") -> str:
    """The cache key of code generated from ``sources`` (what the caller parsed and how it
    used it: each function's name, file, first line and source text) and ``extra`` (what
    else the generation read, e.g. a specialisation's structure key), for this interpreter
    and numpy, and the kernel modules as this process imported them."""
    h = hashlib.sha256(_FORMAT)
    h.update(_INTERPRETER.encode())
    h.update(IMPORTED_DIGEST.encode())
    for text in sources:
        h.update(hashlib.sha256(text.encode()).digest())
    h.update(b"|" + extra.encode())
    return h.hexdigest()


def _folders() -> list[Path]:
    return [folder for folder, _ in _cache_dirs(_KERNELS_DIR)]


def _load(key: str, valid: Callable[[Any], bool]) -> tuple[types.CodeType, Any] | None:
    """The code object and extra data stored under ``key`` in the first folder holding a
    good one, or None (none there; a file that fails its checksum, does not load, or whose
    extra data ``valid`` refuses is passed over)."""
    for folder in _folders():
        try:
            data = (folder / f"{CODE_CACHE_PREFIX}{key}.bin").read_bytes()
        except OSError:
            continue
        digest, payload = data[:32], data[32:]
        if hashlib.sha256(payload).digest() != digest:
            continue
        try:
            code_bytes, extra = pickle.loads(payload)
            code = marshal.loads(code_bytes)
        except Exception:  # of another interpreter, or written by another version
            continue
        if isinstance(code, types.CodeType) and valid(extra):
            return code, extra
    return None


def _store(key: str, code: types.CodeType, extra: Any) -> None:
    """Write ``code`` and ``extra`` under ``key`` into the first folder that takes them (a
    temporary file renamed; the temporary file removed whatever stops the write); nothing
    where none does. Not :func:`abs_engine.files.atomic_write`: the kernels import nothing
    above them (that module reads ``schema``), and its temporary names are not this
    prefix's, which the stale-cache guard removes."""
    try:
        payload = pickle.dumps((marshal.dumps(code), extra))
    except Exception:  # extra data that does not pickle: not cached
        return
    data = hashlib.sha256(payload).digest() + payload
    for folder in _folders():
        tmp = folder / f"{CODE_CACHE_PREFIX}{key}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(tmp, "xb") as f:
                f.write(data)
            os.replace(tmp, folder / f"{CODE_CACHE_PREFIX}{key}.bin")
            return
        except OSError:
            continue
        finally:  # after the rename there is none: nothing to remove
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass


def cached_code(
    key: str | None,
    build: Callable[[], tuple[types.CodeType, Any]],
    valid: Callable[[Any], bool] = lambda extra: True,
) -> tuple[types.CodeType, Any]:
    """``build()`` (a code object and picklable extra data), read from the disk cache under
    ``key`` where it is there whole and its extra data passes ``valid``, else built and
    stored (``key`` None: built, not stored)."""
    if key is None:
        return build()
    hit = _load(key, valid)
    if hit is not None:
        return hit
    code, extra = build()
    _store(key, code, extra)
    return code, extra
