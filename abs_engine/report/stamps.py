"""What a result was made from, stamped into every JSON document and output manifest: the
engine version, each input file with its SHA-256 (the deal, its pool tape, the scenarios, a
rating table), and for Monte Carlo the seed, the paths and the sampling method."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["stamp"]

#: the sampling of a Monte Carlo run given none
SAMPLING = "crude"


@lru_cache(maxsize=256)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file, remembered for its size and modification time."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _file(role: str, path: str | Path | None) -> dict[str, Any] | None:
    if path is None or str(path) == "<memory>":
        return None
    p = Path(path)
    try:
        st = p.stat()
        digest = _sha256(str(p.resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        return {"role": role, "path": str(p), "sha256": None}
    return {"role": role, "path": str(p), "sha256": digest}


def _tape(cd: Any) -> Path | None:
    tape = cd.deal.pool.tape
    if tape is None or cd.source == "<memory>":
        return None
    p = Path(tape.path)
    return p if p.is_absolute() else Path(cd.source).parent / p


def stamp(
    cd: Any,
    scenarios: Iterable[Any] = (),
    *,
    rating_table: Any = None,
    n_paths: int | list[int] | None = None,
    seed: int | list[int] | None = None,
    sampling: str | list[str] = SAMPLING,
) -> dict[str, Any]:
    """The stamp of a run of ``cd`` (a CompiledDeal) on ``scenarios``: ``engine``,
    ``inputs`` (role, path, sha256; files read from memory are left out) and, for a Monte
    Carlo run, ``n_paths``, ``seed`` (one each, or one per scenario) and ``sampling``."""
    from .. import __version__

    inputs = [
        _file("deal", cd.source),
        _file("tape", _tape(cd)),
        *(_file("scenario", getattr(s, "source", None)) for s in scenarios),
    ]
    if rating_table is not None and not rating_table.illustrative:
        inputs.append(_file("rating_table", rating_table.source))
    out: dict[str, Any] = {
        "engine": f"abs-engine {__version__}",
        "inputs": [i for i in inputs if i is not None],
    }
    if n_paths is not None:
        out.update(n_paths=n_paths, seed=seed, sampling=sampling)
    return out
