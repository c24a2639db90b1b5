"""Results as files: the ``--out`` folder of ``abs-engine run``.

A run's files are written as a set, with ``manifest.json`` last, or not at all (staged, then
moved into place: see :mod:`abs_engine.files`). The checks here run before anything does: an
output folder that cannot be created or written, or scenario names that cannot be file names,
are refused up front rather than after a long simulation.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ..compile.scenario import scenario_source
from ..errors import DealError, Problem
from ..files import StagedOutputs, staged_outputs, write_parquet
from .documents import result_document
from .stamps import stamp

if TYPE_CHECKING:
    import pandas as pd

    from ..api import DeterministicResult
    from .montecarlo import SimulationResult

__all__ = ["check_out_folder", "check_out_names", "stage_mc_outputs", "write_run_outputs"]

#: CSV files are UTF-8 with a byte-order mark, so that Excel opens names in Chinese correctly
#: (pandas, pyarrow and Python's "utf-8-sig" read them back; the mark is three bytes)
CSV_ENCODING = "utf-8-sig"


def _csv(frame: pd.DataFrame, index: bool = False) -> Callable[[Path], object]:
    """A writer of ``frame`` as CSV (:data:`CSV_ENCODING`) to the path it is given."""
    return lambda p: frame.to_csv(p, index=index, encoding=CSV_ENCODING)


def _table(stem: str, frame: pd.DataFrame, index: bool = False) -> list[tuple[str, Any]]:
    """``stem.csv`` (for Excel) and ``stem.parquet`` (typed, for code) of one table."""
    return [
        (f"{stem}.csv", _csv(frame, index)),
        (f"{stem}.parquet", write_parquet(_parquet_ready(frame), index)),
    ]


def _parquet_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each column of mixed Python types (e.g. ``coupon``: a rate, or
    ``"residual"`` for the residual tranche) as text, which Parquet can store."""
    mixed = [
        c
        for c in frame.columns
        if frame[c].dtype == object
        and len({type(v) for v in frame[c] if v is not None and v == v}) > 1
    ]
    if not mixed:
        return frame
    return frame.assign(**{c: frame[c].map(lambda v: None if v is None else str(v)) for c in mixed})


_MAX_NAME_BYTES = 255  # the longest file name most file systems allow
# the --out files named after a scenario: prefix, suffix
_OUT_AFFIXES = (
    ("summary_", ".json"),
    ("tranches_", ".csv"),
    ("pool_", ".csv"),
    ("cashflows_", ".csv"),
    ("tranches_", ".parquet"),
    ("cashflows_", ".parquet"),
    ("paths_", ".parquet"),
    ("ledger_", ".parquet"),
    ("ledger_", ".csv"),
)


def _show_path(text: str) -> str:
    return text if len(text) <= 200 else f"{text[:120]}...{text[-60:]} ({len(text):,} characters)"


def check_out_folder(path: Path, flag: str) -> None:
    """Refuse, before anything runs or is written, an output folder that cannot be created or
    written: an existing file, a path under a file, a folder without write permission, a
    pseudo file system such as /proc, a name too long, a symbolic link to nothing. The probe
    creates and removes an empty temporary folder, so nothing is left behind. ``flag`` names
    the argument in the error."""
    text = os.fspath(path)
    shown = _show_path(text)

    def fail(why: str, loc: str = "<folder>") -> NoReturn:
        raise DealError.one(shown, loc, f"{flag} {why}")

    if not text or "\x00" in text:
        fail("is not a valid path")
    if len(os.fsencode(text)) >= 4096:
        fail(f"is too long ({len(os.fsencode(text)):,} bytes; at most 4,095)")
    cur, missing = Path(text), []

    def where() -> str:  # the part of the path at fault, when it is not the whole path
        return "" if cur == Path(text) else f" ({_show_path(str(cur))})"

    while True:
        try:
            st = os.stat(cur)
        except (FileNotFoundError, NotADirectoryError):
            if cur.parent == cur:
                fail("cannot be created: its root does not exist")
            if os.path.islink(cur):  # a link to nothing: no folder can be made at its name
                target = _show_path(os.readlink(cur))
                fail(f"cannot be created: it is a symbolic link to {target}, which leads "
                     f"nowhere{where()}")  # fmt: skip
            missing.append(cur.name)
            cur = cur.parent
            continue
        except OSError as exc:
            fail(f"cannot be used: {exc.strerror}{where()}")
        break
    if not stat.S_ISDIR(st.st_mode):
        if not missing:
            fail("must be a folder, not a file", "<file>")
        fail(f"cannot be created: {_show_path(str(cur))} is a file, not a folder")
    for name in missing:
        if len(os.fsencode(name)) > 255:
            fail("has a folder name longer than 255 bytes")
    try:
        probe = tempfile.mkdtemp(prefix=".abs-engine-probe-", dir=cur)
        os.rmdir(probe)
    except OSError as exc:
        inside = "in it" if not missing else f"in {_show_path(str(cur))}"
        fail(f"is not writable: cannot create anything {inside} ({exc.strerror})")


def _file_name_problem(name: str) -> str | None:
    """Why a scenario name cannot be part of an ``--out`` file name; None if it can."""
    if "/" in name or "\\" in name:
        return "scenario name cannot be used in an --out file name (no / or \\)"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "scenario name cannot be used in an --out file name (no control characters)"
    longest = max(len(f"{a}{name}{b}".encode("utf-8", "surrogatepass")) for a, b in _OUT_AFFIXES)
    if longest > _MAX_NAME_BYTES:
        return (
            f"scenario name too long for an --out file name (its files, e.g. "
            f"'cashflows_<name>.csv', must be at most {_MAX_NAME_BYTES} bytes in UTF-8)"
        )
    return None


def check_out_names(scenarios: Iterable[Any]) -> None:
    """Scenario names become file names under ``--out``: refuse, before anything is written,
    names that are not plain file names or that two scenarios share."""
    problems, seen = [], set()
    for sc in scenarios:
        name = sc.name
        why = _file_name_problem(name)
        if why is None and name in seen:
            why = "two scenarios have this name; their --out files would overwrite each other"
        if why is not None:
            problems.append(Problem(scenario_source(sc), sc.field_path("name"), why, name))
        seen.add(name)
    if problems:
        raise DealError(problems)


def write_run_outputs(res: DeterministicResult, out: Path) -> list[Path]:
    """A deterministic run's files, all or none: the long ledger, the JSON summary, and each
    scenario's tranches and cash flows, every table as CSV and Parquet; staged, then moved
    into ``out`` with ``manifest.json`` last. Returns the paths written."""
    ledger = res.ledger()
    targets: list[tuple[str, Callable[[Path], object]]] = [
        ("ledger.parquet", write_parquet(ledger)),
        ("ledger.csv", _csv(ledger)),
        ("summary.json", lambda p: p.write_text(json.dumps(result_document(res), indent=2))),
    ]
    for sc, view in zip(res.scenarios, res, strict=True):
        tranches, cashflows = view.tranches, view.cashflows
        targets += _table(f"tranches_{sc.name}", tranches)
        targets += _table(f"cashflows_{sc.name}", cashflows)
    info = {
        "command": "run",
        "scenarios": [sc.name for sc in res.scenarios],
        "stamp": stamp(res.compiled, res.scenarios),
    }
    with staged_outputs(out, info=info) as stage:
        for name, fn in targets:
            stage.write(name, fn)
    return [stage.path(name) for name in stage.names]


def stage_mc_outputs(res: SimulationResult, doc: dict[str, Any], stage: StagedOutputs) -> None:
    """One Monte Carlo scenario's files, staged (committed with the run's other files): the
    JSON summary ``doc``, tranches, pool and cash flows (CSV and Parquet each), per-path
    metrics when kept, and the long ledgers of the ledger paths."""
    import pandas as pd

    from .frames import ledger_long

    name = res.scenario.name
    targets: list[tuple[str, Callable[[Path], object]]] = [
        (f"summary_{name}.json", lambda p: p.write_text(json.dumps(doc, indent=2))),
        *_table(f"tranches_{name}", res.tranches),
        *_table(f"pool_{name}", res.pool, index=True),
        *_table(f"cashflows_{name}", res.cashflows),
    ]
    paths = res.paths
    if paths is not None:
        targets.append((f"paths_{name}.parquet", write_parquet(paths, index=None)))
    if res.ledgers:
        led = pd.concat(
            [ledger_long(w).assign(path=p) for p, w in res.ledgers.items()], ignore_index=True
        )
        targets.append((f"ledger_{name}.parquet", write_parquet(led)))
        targets.append((f"ledger_{name}.csv", _csv(led)))
    for fname, fn in targets:
        stage.write(fname, fn)
