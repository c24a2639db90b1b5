"""Pool tapes (CSV or Parquet) read as columns: one NumPy or Arrow array per column, every check
a vectorised mask, no Python object per row — a tape of a million rows loads in seconds.

The checks are those of the :class:`~abs_engine.schema.pool.Obligor` schema (the same bounds and,
where it can, the same words); problems name the tape file, the row (``row 12345 (id=S0012344)``,
1-based data row), the column and the value. At most :data:`MAX_TAPE_PROBLEMS` problems are
listed, in row order, then one line counting the rest.

Semantics of the cells, as for inline obligors: an empty cell (or ``NA``, ``null``, ``nan``...)
is a missing value — an error in a required column, the default in an optional one. A row with
``recovery_rate`` or ``recovery_lag_periods`` gets its own recovery (the other one at the
:class:`~abs_engine.schema.pool.Recovery` default: rate 0.2, lag 4); a row with neither uses the
pool's. IP is pledged where ``appraisal`` is given, or else ``revenue`` and ``royalty_rate`` (a
relief-from-royalty value, with ``revenue_growth``, ``tax_rate``, ``discount_rate`` and
``useful_life_years`` at their defaults where empty); ``patent_count`` and those parameters
count only where IP is pledged. In a CSV every cell is text:
a number column holding a cell that is not a number is an error at that cell. In a Parquet tape
the column types count: text in a number column is an error (as quoted numbers are in a deal
file), and integers are accepted for decimals, not decimals for integers (``4.0`` is accepted
for ``n_periods``, ``4.5`` is not).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel

from ..errors import DealError, Problem
from .common import printable
from .files import decode_text, note_input, repeated
from .pool import (
    TAPE_KINDS,
    TAPE_SUFFIXES,
    TRAILING_SPACE,
    Bullet,
    FlatPd,
    IpCollateral,
    Labels,
    Obligor,
    ObligorTable,
    Recovery,
)

__all__ = ["MAX_TAPE_PROBLEMS", "TAPE_OPTIONAL", "TAPE_REQUIRED", "read_tape_columns"]

TAPE_REQUIRED = ("id", "balance", "rate", "amortization", "n_periods", "annual_pd")
TAPE_OPTIONAL = (
    "name",
    "sector",
    "region",
    "first_period",
    "recovery_rate",
    "recovery_lag_periods",
    "appraisal",
    "patent_count",
    # relief-from-royalty inputs (used where a row has no appraisal)
    "revenue",
    "royalty_rate",
    "revenue_growth",
    "tax_rate",
    "discount_rate",
    "useful_life_years",
)
_COLUMNS = TAPE_REQUIRED + TAPE_OPTIONAL
#: the relief-from-royalty parameters with defaults (IpCollateral's)
_RFR_DEFAULTED = ("revenue_growth", "tax_rate", "discount_rate", "useful_life_years")

#: problems listed one by one; the rest are counted
MAX_TAPE_PROBLEMS = 20


@dataclass(frozen=True)
class _Number:
    """A number column's constraints, in the schema's words."""

    required: bool
    integer: bool = False
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None


def _number_spec(column: str, model: type[BaseModel], field: str) -> _Number:
    """The constraints of the schema field that ``column`` fills (the bounds are written once,
    in the schema)."""
    info = model.model_fields[field]
    kind, meta = info.annotation, info.metadata
    if not meta:  # ``Money | None``: the constraints are those of the member that is not None
        (member,) = [a for a in get_args(kind) if a is not type(None)]
        kind, *infos = get_args(member)
        meta = [m for fi in infos for m in fi.metadata]
    bounds = {b: getattr(m, b) for m in meta for b in ("gt", "ge", "lt", "le") if hasattr(m, b)}
    return _Number(column in TAPE_REQUIRED, integer=kind is int, **bounds)


#: the schema field that each number column fills: the column takes its constraints
_FIELDS: dict[str, tuple[type[BaseModel], str]] = {
    "balance": (Obligor, "balance"),
    "rate": (Obligor, "rate"),
    "n_periods": (Bullet, "n_periods"),  # the same in every TAPE_KINDS schedule
    "annual_pd": (FlatPd, "annual"),
    "first_period": (Bullet, "first_period"),
    "recovery_rate": (Recovery, "rate"),
    "recovery_lag_periods": (Recovery, "lag_periods"),
    "appraisal": (IpCollateral, "appraisal"),
    "patent_count": (IpCollateral, "patent_count"),
    **{c: (IpCollateral, c) for c in ("revenue", "royalty_rate", *_RFR_DEFAULTED)},
}
_NUMBERS = {column: _number_spec(column, *field) for column, field in _FIELDS.items()}


def _bound(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else str(float(x))


class _Problems:
    """Problems of a tape found column by column as masks over the rows: all are counted, the
    first :data:`MAX_TAPE_PROBLEMS` by row are kept."""

    def __init__(self, file: str, ids: pa.Array):
        self.file = file
        self.ids = ids
        self.total = 0
        self.rows_flagged: list[np.ndarray] = []
        #: (row, column order, column, message (or its getter by row), value getter)
        self.items: list[
            tuple[int, int, str, str | Callable[[int], str], Callable[[int], Any] | None]
        ] = []

    def flag(
        self,
        column: str,
        mask: np.ndarray,
        message: str | Callable[[int], str],
        value: Callable[[int], Any] | None = None,
    ) -> None:
        rows = np.flatnonzero(mask)
        if not len(rows):
            return
        self.total += len(rows)
        self.rows_flagged.append(rows)
        order = _COLUMNS.index(column)
        for r in rows[:MAX_TAPE_PROBLEMS]:
            self.items.append((int(r), order, column, message, value))

    def raise_if_any(self) -> None:
        if not self.total:
            return
        self.items.sort(key=lambda it: (it[0], it[1]))
        out = []
        for row, _, column, text, value in self.items[:MAX_TAPE_PROBLEMS]:
            path = f"row {row + 1} (id={printable(self.ids[row].as_py())}).{column}"
            message = text(row) if callable(text) else text
            if value is None:
                out.append(Problem(self.file, path, message))
            else:
                out.append(Problem(self.file, path, message, value(row)))
        rest = self.total - len(out)
        if rest > 0:
            rows = len(np.unique(np.concatenate(self.rows_flagged)))
            out.append(
                Problem(
                    self.file,
                    "<rows>",
                    f"{rest:,} more problems not listed ({self.total:,} in {rows:,} rows; the "
                    f"first {len(out)} by row are above)",
                )
            )
        raise DealError(out, total=self.total)


# --- reading ----------------------------------------------------------------------------------


#: CSV encodings a tape may name (``auto``: UTF-8, else GB18030)
TAPE_ENCODINGS = ("auto", "utf-8", "gb18030", "gbk")


def _csv_encoding(p: Path, head: bytes, encoding: str) -> str:
    """The encoding to read a CSV tape with: the one named, or for ``auto`` UTF-8 (a
    byte-order mark or not) when its first 64 KiB decode as UTF-8, else GB18030 (the superset
    of GBK and GB2312 that Chinese Excel saves) when they decode as that; else the not-UTF-8
    error, naming the byte. A tape read as UTF-8 that is not, further on, is read again as
    GB18030 when the whole of it decodes as that (:func:`_load`)."""
    if encoding != "auto":
        return encoding
    try:
        decode_text(p, head, "a CSV text file", "the tape", final=False)
        return "utf-8"
    except DealError as utf8:
        try:
            codecs.getincrementaldecoder("gb18030")().decode(head, final=False)
        except UnicodeDecodeError:
            (problem,) = utf8.problems
            why = problem.message.replace("not UTF-8 text", "not UTF-8 (nor GB18030/GBK) text")
            raise DealError.one(p, "<syntax>", why) from None
        return "gb18030"


def _read_csv(p: Path, encoding: str = "utf-8") -> pa.Table:
    import pyarrow.csv as pcsv

    # Every column as text (a CSV has no types): numbers are parsed below, so that a cell that
    # is not a number is reported at its row instead of failing the whole read.
    # through a Python file: pyarrow takes a path as UTF-8 text, and a folder named in
    # another encoding (bytes Linux allows) could not be read
    with open(p, "rb") as fh:
        return pcsv.read_csv(
            fh,
            read_options=pcsv.ReadOptions(encoding=encoding),
            convert_options=pcsv.ConvertOptions(
                column_types={c: pa.string() for c in _COLUMNS},
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )


def _xlsx_text(v: Any) -> str | None:
    """A worksheet cell as the text a CSV would hold: numbers without a spurious ``.0``."""
    if v is None:
        return None
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return str(int(v))
    if isinstance(v, float):
        return repr(v)
    return str(v).strip() if isinstance(v, str) else str(v)


def _read_xlsx(p: Path, sheet: str | None) -> pa.Table:
    """The first (or the named) worksheet of an Excel workbook as text columns, its first row
    the header, like a CSV; rows with no value at all are skipped."""
    import openpyxl

    wb = openpyxl.load_workbook(p, read_only=True, data_only=True)
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise DealError.one(
                p, "<sheet>", f"no sheet of that name; the workbook has {wb.sheetnames}", sheet
            )
        ws = wb[sheet] if sheet is not None else wb.worksheets[0]
        rows = ws.iter_rows(values_only=False)  # cells: a value's type too (16% slower)
        header = next(rows, None)
        if header is None:
            raise DealError.one(p, "<syntax>", "cannot read tape: the sheet is empty")
        names = [_xlsx_text(c.value) or f"column {k + 1}" for k, c in enumerate(header)]
        cols: list[list[str | None]] = [[] for _ in names]
        # empty cells saved as no value at all (a blank, or a formula never computed; not a
        # formula whose saved value is the empty text, typed "str"): sheet row -> (column,
        # tape row)
        empty: dict[int, list[tuple[int, int]]] = {}
        for at, row in enumerate(rows, start=2):
            if all(c.value is None for c in row):
                continue
            for k in range(len(names)):
                cell = row[k] if k < len(row) else None
                cols[k].append(None if cell is None else _xlsx_text(cell.value))
                if cell is not None and cell.value is None and cell.data_type == "n":
                    empty.setdefault(at, []).append((k, len(cols[k])))
    finally:
        wb.close()
    if empty:
        _formulas_without_values(p, sheet, names, empty)
    # from arrays and names, not a dict: a name given twice must reach the header check (a
    # dict kept the last column of the name: a second annual_pd of 90% replaced the 2%)
    return pa.Table.from_arrays([pa.array(c, type=pa.string()) for c in cols], names=names)


def _formulas_without_values(
    p: Path, sheet: str | None, names: list[str], empty: dict[int, list[tuple[int, int]]]
) -> None:
    """Refuse the empty cells (``empty``: by sheet row, the column and the tape row) that
    hold a formula: a workbook written by a program that computes no formulas (openpyxl,
    a script's template) saves none of their values, and such a cell read as empty (a
    validator's obligor recovery of 0.5, written =0.1*5, became the pool's)."""
    import openpyxl

    wb = openpyxl.load_workbook(p, read_only=True, data_only=False)
    problems = []
    try:
        ws = wb[sheet] if sheet is not None else wb.worksheets[0]
        for at, row in enumerate(ws.iter_rows(min_row=2, values_only=True), start=2):
            for k, tape_row in empty.get(at, ()):
                v = row[k] if k < len(row) else None
                if isinstance(v, str) and v.startswith("="):
                    problems.append(Problem(
                        str(p), f"row {tape_row}.{names[k]}",
                        "a formula without a saved value (the workbook was written by a "
                        "program that does not compute formulas): open and save it in "
                        "Excel, or write the values", v,
                    ))  # fmt: skip
    finally:
        wb.close()
    if problems:
        raise DealError(problems[:MAX_TAPE_PROBLEMS], total=len(problems))


def _read_parquet(p: Path) -> pa.Table:
    import pyarrow.parquet as pq

    with open(p, "rb") as fh:  # a path pyarrow could not encode (see _read_csv)
        # on the calling thread: after pyarrow's threaded read of a Python file, a process
        # that exited soon after (a refused tape) could abort as the interpreter tore the
        # threads down (exit 134, apache/arrow#34314: 15 of 40 runs of a read-and-exit script on
        # an empty tape, 15 of 30 of a validator's validate of one)
        table = pq.read_table(fh, use_threads=False)
    meta = table.schema.pandas_metadata or {}
    # a pandas index written as a column (``to_parquet`` with a non-default index) is no data
    index = [c for c in meta.get("index_columns", []) if isinstance(c, str)]
    return table.drop_columns([c for c in index if c in table.column_names])


def _load(p: Path, encoding: str = "auto", sheet: str | None = None) -> tuple[pa.Table, bool]:
    """The tape as an Arrow table, and whether its columns are text to parse (CSV, Excel)."""
    note_input(p)
    suffix = p.suffix.lower()
    if suffix not in TAPE_SUFFIXES:
        msg = "unknown tape type; expected .csv, .parquet or .xlsx"
        raise DealError.one(p, "<file>", msg, p.suffix)
    if suffix == ".xlsx":
        return _load_xlsx(p, sheet), True
    if encoding not in TAPE_ENCODINGS:
        raise DealError.one(p, "<file>", f"unknown encoding; use one of {list(TAPE_ENCODINGS)}",
                            encoding)  # fmt: skip
    detect = encoding == "auto"
    if suffix == ".csv":
        try:
            with open(p, "rb") as fh:
                head = fh.read(1 << 16)
        except OSError as exc:
            raise DealError.one(p, "<file>", f"cannot read tape: {exc.strerror or exc}") from None
        if head.find(b"\x00") >= 0:
            decode_text(p, head, "a CSV text file", "the tape", final=False)  # says "binary"
        encoding = _csv_encoding(p, head, encoding)
    try:
        table = _read_csv(p, encoding) if suffix == ".csv" else _read_parquet(p)
    except MemoryError:
        raise DealError.one(p, "<syntax>", "not enough memory to read the tape") from None
    except Exception as exc:  # pyarrow parse errors: bad UTF-8, ragged rows, not Parquet...
        lines = str(exc).strip().splitlines()
        text = lines[0] if lines else type(exc).__name__
        undecoded = "invalid utf8" in text.lower() or "decode" in text.lower()
        if undecoded and detect and encoding == "utf-8" and head.isascii() and _is_gb18030(p):
            # the head was ASCII (it decodes as both): a GBK tape's first Chinese text came
            # after the first 64 KiB the detection reads. Not after UTF-8 text in the head:
            # a UTF-8 tape with a few bytes of another encoding appended was read as GB18030,
            # every Chinese name garbled
            return _load(p, "gb18030", sheet)
        if undecoded:
            text = f"not {encoding} text (save the tape as UTF-8, or name its encoding)"
        ragged = re.match(r"(CSV parse error: Expected \d+ columns, got \d+)", text)
        if ragged:  # without the row's text, which may be anything; with the row's number
            text = ragged.group(1) + _ragged_row(p)
        # a line of a binary file is no help: printable characters only, cut short
        text = "".join(c if c.isprintable() else "?" for c in text)
        text = text if len(text) <= 200 else text[:197] + "..."
        raise DealError.one(p, "<syntax>", f"cannot read tape: {text}") from None
    try:
        table.column_names  # noqa: B018 (decoded here: a header that is not UTF-8 fails)
    except UnicodeDecodeError:
        msg = "cannot read tape: the header is not UTF-8 text (save the tape as UTF-8)"
        raise DealError.one(p, "<syntax>", msg) from None
    if suffix == ".csv":
        _check_csv_rows(p, table.num_rows)
    return table, suffix == ".csv"


def _is_gb18030(p: Path) -> bool:
    """Whether the whole file decodes as GB18030 (the superset of GBK and GB2312)."""
    try:
        _csv_bytes(p).decode("gb18030")
    except UnicodeDecodeError:
        return False
    return True


def _csv_bytes(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except OSError as exc:
        raise DealError.one(p, "<file>", f"cannot read tape: {exc.strerror or exc}") from None


def _csv_lines(raw: bytes) -> list[bytes]:
    """A tape's lines that are not blank (the header first), as bytes, split at CRLF, LF or
    a lone CR (old Mac Excel's ending, which the reader takes too): a double quote is the
    byte 0x22, and a line end 0x0A or 0x0D, in UTF-8 and in GB18030 alike, never part of
    another character."""
    return [line for line in re.split(rb"\r\n|\r|\n", raw) if line.strip()]


def _check_csv_rows(p: Path, n_rows: int) -> None:
    """Every data line of a CSV tape is a row read: an unmatched double quote makes the
    reader take the lines after it into one quoted cell, and on a large tape it dropped
    34,178 rows of 40,000 without a word (a cell may not hold a line break either). The
    first line with an odd number of quotes is named. A tape without a quote has a row a
    line (the reader's ragged-row check holds it): its lines are not split again."""
    raw = _csv_bytes(p)
    if b'"' not in raw:
        return
    lines = _csv_lines(raw)
    if n_rows == len(lines) - 1:
        return
    counts = f"{n_rows:,} rows read of {len(lines) - 1:,} lines"
    opened = 0  # the row whose odd number of quotes left a quoted cell open (0: none)
    for k, line in enumerate(lines[1:], start=1):
        if line.count(b'"') % 2 == 0:
            continue
        if opened:  # closed on a later line: a cell holding a line break
            raise DealError.one(p, f"row {opened}", f"a quoted cell holds a line break, "
                                f"which a tape may not ({counts})")  # fmt: skip
        opened = k
    if opened:
        raise DealError.one(
            p, f"row {opened}", "an unmatched double quote (\") joins the lines after it into "
            f"one cell: {counts}; remove it or close it",
            lines[opened].decode("utf-8", "replace").strip()[:80],
        )  # fmt: skip
    raise DealError.one(p, "<rows>", f"{counts}: a quoted cell holds a line break, which a "
                        "tape may not")  # fmt: skip


def _ragged_row(p: Path) -> str:
    """Where the first line whose cell count differs from the header's is, as " at row k"
    (data rows from 1; cells counted as the csv module reads them), or "" if none is found."""
    import csv
    import io

    text = [line.decode("utf-8", "replace") for line in _csv_lines(_csv_bytes(p))]
    reader = csv.reader(io.StringIO("\n".join(text)))
    width = None
    for k, row in enumerate(reader):
        if width is None:
            width = len(row)
        elif len(row) != width:
            return f" at row {k}"
    return ""


def _load_xlsx(p: Path, sheet: str | None) -> pa.Table:
    try:
        return _read_xlsx(p, sheet)
    except DealError:
        raise
    except MemoryError:
        raise DealError.one(p, "<syntax>", "not enough memory to read the tape") from None
    except Exception as exc:  # not a zip, not a workbook, a damaged sheet ...
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        text = "".join(c if c.isprintable() else "?" for c in text)[:200]
        msg = f"cannot read tape as an Excel workbook: {text}"
        raise DealError.one(p, "<syntax>", msg) from None


# --- columns ----------------------------------------------------------------------------------


def _null_mask(col: pa.ChunkedArray) -> np.ndarray:
    if col.null_count == 0:
        return np.zeros(len(col), dtype=bool)
    return np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _text(p: Path, name: str, col: pa.ChunkedArray) -> pa.Array:
    """A text column as one Arrow string array (nulls kept)."""
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        try:
            col = col.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise DealError.one(
                p, "<columns>", f"column {name} cannot be read as text: {exc}", str(t)
            ) from None
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return arr.cast(pa.string()) if pa.types.is_large_string(arr.type) else arr


def _plain_number_text(v: str) -> bool:
    """ASCII without spaces or underscores: text Python's ``int``/``float`` read as it spells."""
    return v.isascii() and "_" not in v and not any(c.isspace() for c in v)


def _cell(col: pa.ChunkedArray, csv: bool) -> Callable[[int], Any]:
    """The value of a cell as the file has it (CSV text read as the number it spells)."""

    def get(row: int) -> Any:
        v = col[row].as_py()
        # only text the tape reader could read as it spells: Python also reads "60_000_000",
        # full-width or Arabic-Indic digits and padding spaces as numbers, which the tape
        # reader refuses, and the message showed the number it refused ("got 10000000" for
        # "１０００００００")
        if csv and isinstance(v, str) and _plain_number_text(v):
            for conv in (int, float):
                try:
                    return conv(v)
                except ValueError:
                    pass
        return v

    return get


#: ``flag(mask bool[n], message, value getter or None)``: a problem at every row of the mask
_Flag = Callable[..., None]


def _not_a_number(t: pa.DataType) -> str:
    """Why a column of Arrow type ``t`` (neither a number nor CSV text) holds no numbers."""
    if pa.types.is_boolean(t):
        return "expected a number, not true/false"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "expected a number, not a string (remove the quotes)"
    return f"expected a number, not {t}"


def _typed_numbers(
    col: pa.ChunkedArray, t: pa.DataType, spec: _Number
) -> tuple[np.ndarray, np.ndarray | None]:
    """A column of Arrow number type ``t`` as float64[n] (NaN where null) and, for an integer
    column of an integer type, its exact values int64[n] (null: 0; None otherwise)."""
    exact_int: np.ndarray | None = None
    if pa.types.is_integer(t) and spec.integer:
        raw = np.asarray(pc.fill_null(col, 0).to_numpy())
        if raw.dtype.kind == "u":
            # above int64 (a uint64 near 2**64 would wrap negative): clamp, so the upper
            # bound (every integer column has one) refuses it, showing the real value
            raw = np.minimum(raw, np.uint64(np.iinfo(np.int64).max))
        exact_int = raw.astype(np.int64)
    vals = np.asarray(
        pc.fill_null(col.cast(pa.float64(), safe=False), np.nan).to_numpy(), dtype=np.float64
    )
    return vals, exact_int


#: a number written with thousands separators: 1,500,000 or -12,345.67 (groups of three)
_THOUSANDS = r"\s*[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?\s*"


def _csv_numbers(
    col: pa.ChunkedArray,
    spec: _Number,
    missing: np.ndarray,
    flag: _Flag,
    get: Callable[[int], Any],
) -> tuple[np.ndarray, np.ndarray]:
    """A CSV text column parsed as float64[n] (NaN where empty or not a number) and the rows
    refused bool[n] (not empty and not a number: flagged here)."""
    refused = np.zeros(len(missing), dtype=bool)
    try:
        parsed = col.cast(pa.float64())
        vals = np.asarray(pc.fill_null(parsed, np.nan).to_numpy(), dtype=np.float64)
    except pa.ArrowInvalid:  # some cells are not numbers (or have thousands separators)
        import pandas as pd

        text = pd.Series(col.to_numpy(zero_copy_only=False), dtype=object)
        grouped = text.str.fullmatch(_THOUSANDS, na=False)
        text[grouped] = text[grouped].str.replace(",", "", regex=False)
        vals = np.asarray(pd.to_numeric(text, errors="coerce"), dtype=np.float64)
        refused = ~missing & np.isnan(vals)
        what = "an integer" if spec.integer else "a number"
        flag(refused, f"expected {what}", get)
    return vals, refused


def _column_numbers(
    col: pa.ChunkedArray,
    spec: _Number,
    n: int,
    csv: bool,
    flag: _Flag,
    get: Callable[[int], Any],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """A number column's cells by its Arrow type: float64[n] values (NaN: none), missing and
    refused bool[n] (a refused cell is flagged here), exact int64[n] values or None (see
    :func:`_typed_numbers`)."""
    t = col.type
    missing = _null_mask(col)
    refused = np.zeros(n, dtype=bool)  # flagged already: not "missing" too
    exact_int: np.ndarray | None = None
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    if pa.types.is_null(t):
        vals = np.full(n, np.nan)
    elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        vals, exact_int = _typed_numbers(col, t, spec)
    elif csv and (pa.types.is_string(t) or pa.types.is_large_string(t)):
        vals, refused = _csv_numbers(col, spec, missing, flag, get)
    else:
        flag(~missing, _not_a_number(t), get)
        refused = ~missing
        vals = np.full(n, np.nan)
    return vals, missing, refused, exact_int


def _check_bounds(
    spec: _Number,
    vals: np.ndarray,
    exact_int: np.ndarray | None,
    ok: np.ndarray,
    flag: _Flag,
    get: Callable[[int], Any],
) -> np.ndarray:
    """Flag the ``ok`` rows (bool[n]) that the schema refuses: a fraction in an integer column,
    an infinity in a decimal one, a value out of bounds (compared exactly for ``exact_int``).
    Returns ``ok`` less those rows."""
    with np.errstate(invalid="ignore"):
        if spec.integer:
            if exact_int is None:
                frac = ok & (np.isinf(vals) | (vals != np.floor(vals)))
                why = "Input should be a valid integer, got a number with a fractional part"
                flag(frac, why, get)
                ok &= ~frac
        else:
            inf = ok & np.isinf(vals)
            flag(inf, "Input should be a finite number", get)
            ok &= ~inf
        for bound, fails, words in (
            (spec.gt, lambda b: vals <= b, "greater than"),
            (spec.ge, lambda b: vals < b, "greater than or equal to"),
            (spec.lt, lambda b: vals >= b, "less than"),
            (spec.le, lambda b: vals > b, "less than or equal to"),
        ):
            if bound is None:
                continue
            if exact_int is not None:
                out = ok & _fails_int(exact_int, bound, words)
            else:
                out = ok & fails(bound)
            flag(out, f"Input should be {words} {_bound(bound)}", get)
            ok &= ~out
    return ok


def _number(
    probs: _Problems,
    name: str,
    col: pa.ChunkedArray | None,
    n: int,
    csv: bool,
    scope: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(values, missing) of a number column, flagging what the schema refuses (in the rows of
    ``scope`` only, when given). Values are float64 (int64 for integer columns); rows missing
    or refused hold 0 and are flagged as missing."""
    spec = _NUMBERS[name]

    def flag(mask: np.ndarray, message: str, value: Callable[[int], Any] | None = None) -> None:
        probs.flag(name, mask if scope is None else mask & scope, message, value)

    if col is None:
        values = np.zeros(n, dtype=np.int64 if spec.integer else np.float64)
        return values, np.ones(n, dtype=bool)
    get = _cell(col, csv)
    vals, null, refused, exact_int = _column_numbers(col, spec, n, csv, flag, get)
    missing = (null | np.isnan(vals)) & ~refused
    ok = ~missing & ~refused
    if spec.required:
        kind = "integer" if spec.integer else "number"
        flag(missing & null, f"Input should be a valid {kind} (the cell is empty, or a word for "
             "a missing value: NA, NaN, null...)")  # fmt: skip
        flag(missing & ~null, f"Input should be a valid {kind}, not NaN", get)
    ok = _check_bounds(spec, vals, exact_int, ok, flag, get)
    if not spec.integer:
        return np.where(ok, vals, 0.0), ~ok
    if exact_int is not None:
        return np.where(ok, exact_int, 0), ~ok
    return np.where(ok, vals, 0.0).astype(np.int64), ~ok


def _fails_int(values: np.ndarray, bound: float, words: str) -> np.ndarray:
    """Integer column against a bound, exactly (no trip through float64)."""
    b = int(bound)
    if words == "greater than":
        return values <= b
    if words == "greater than or equal to":
        return values < b
    if words == "less than":
        return values >= b
    return values > b


def _check_ids(probs: _Problems, ids: pa.Array) -> None:
    missing = _null_mask(pa.chunked_array([ids]))
    probs.flag("id", missing, "Input should be a valid string")
    length = pc.fill_null(pc.utf8_length(ids), 1).to_numpy(zero_copy_only=False)

    def value(row: int) -> Any:
        return ids[row].as_py()

    probs.flag("id", length < 1, "String should have at least 1 character", value)
    probs.flag("id", length > 64, "String should have at most 64 characters", value)
    # the schema's pattern ^[^\s].*$: no whitespace first, no line break anywhere
    breaks = pc.fill_null(pc.match_substring(ids, "\n"), False).to_numpy(zero_copy_only=False)
    pattern = (np.asarray(breaks, dtype=bool) | _space_at(ids, 0)) & (length >= 1)
    probs.flag("id", pattern, "String should match pattern '^[^\\s].*$'", value)
    trailing = _space_at(ids, -1) & ~pattern & (length >= 1)
    probs.flag("id", trailing, TRAILING_SPACE, value)
    # schema.common.CONTROL_CHARS, in RE2's syntax (one message a cell: a trailing tab is
    # told as trailing whitespace)
    control = pc.match_substring_regex(ids, r"[\x00-\x1f\x7f-\x9f\x{fffe}\x{ffff}]")
    control = np.asarray(pc.fill_null(control, False).to_numpy(zero_copy_only=False), dtype=bool)
    probs.flag("id", control & ~pattern & ~trailing, "a name may not contain control characters",
               value)  # fmt: skip


def _flag_repeats(probs: _Problems, ids: pa.Array) -> None:
    """Every repeat of an id in the tape, at the repeat, naming the first row: called when
    the tape has other problems, to list them together (they were missing from that list).
    A tape with none leaves them to the deal's compile, which lists them with its schedule
    problems and the repeats between the deal's obligors and the tape's."""
    first = first_rows(ids)
    if first is None:
        return
    repeat = (first != np.arange(len(first))) & ~_null_mask(pa.chunked_array([ids]))

    def message(row: int) -> str:
        return f"duplicate obligor id (also row {int(first[row]) + 1})"

    probs.flag("id", repeat, message, lambda row: ids[row].as_py())


def first_rows(ids: pa.Array) -> np.ndarray | None:
    """int64[n]: the row at which each row's id first appears (an empty id counts as one
    more id), or None when no id repeats. A repeat is a row whose entry is not itself."""
    if len(ids) < 2 or pc.count_distinct(ids, mode="all").as_py() == len(ids):
        return None
    encoded = ids.dictionary_encode()
    # an empty id is code K, after the K ids: the codes stay 0..K
    codes = pc.fill_null(encoded.indices, len(encoded.dictionary)).to_numpy(zero_copy_only=False)
    codes = np.asarray(codes, dtype=np.int64)
    _, first = np.unique(codes, return_index=True)
    return np.asarray(first[codes])


def _space_at(ids: pa.Array, at: int) -> np.ndarray:
    """bool[n]: the ids whose character at ``at`` (0 the first, -1 the last) is whitespace
    (tested once per distinct character, not per row)."""
    chars = pc.utf8_slice_codeunits(ids, at, at + 1 if at >= 0 else None)
    spaces = [c for c in pc.unique(chars).to_pylist() if c and re.match(r"\s", c)]
    if not spaces:
        return np.zeros(len(ids), dtype=bool)
    hit = pc.fill_null(pc.is_in(chars, value_set=pa.array(spaces)), False)
    return np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)


def _check_header(p: Path, table: pa.Table) -> None:
    """Refuse a tape whose columns are named twice, missing or unknown, or that has no rows."""
    names = table.column_names
    twice = repeated(names)
    if twice:
        raise DealError.one(p, "<columns>", "column(s) named more than once", sorted(twice))
    missing = [c for c in TAPE_REQUIRED if c not in names]
    if missing:
        raise DealError.one(
            p, "<columns>", f"missing required column(s) {', '.join(missing)}", names
        )
    unknown = [c for c in names if c not in _COLUMNS]
    if unknown:
        raise DealError.one(p, "<columns>", "unknown column(s)", unknown)
    if table.num_rows == 0:
        raise DealError.one(p, "<rows>", "tape has no rows")


#: ``column(name)``: a tape column taken out of the table (None when the tape has none)
_Take = Callable[[str], pa.ChunkedArray | None]


def _number_columns(
    probs: _Problems, column: _Take, n: int, csv: bool
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every number column as (values, missing) (see :func:`_number`), by column name."""
    later = ("patent_count", *_RFR_DEFAULTED)
    num = {c: _number(probs, c, column(c), n, csv) for c in _NUMBERS if c not in later}
    # IP is pledged where an appraisal is given, or revenue and royalty_rate for a
    # relief-from-royalty value (as IpCollateral requires); the rest count only there
    appraised = ~num["appraisal"][1]
    revenue, royalty = ~num["revenue"][1], ~num["royalty_rate"][1]
    probs.flag(
        "royalty_rate" if bool((revenue & ~royalty & ~appraised).any()) else "revenue",
        ~appraised & (revenue ^ royalty),
        "give either appraisal or both revenue and royalty_rate",
    )
    has_ip = appraised | (revenue & royalty)
    num["patent_count"] = _number(probs, "patent_count", column("patent_count"), n, csv, has_ip)
    for c in _RFR_DEFAULTED:
        num[c] = _number(probs, c, column(c), n, csv, has_ip & ~appraised)
    return num


def _amortization_codes(probs: _Problems, amort: pa.Array) -> pa.Array:
    """The amortization column as indices into :data:`TAPE_KINDS` (null where missing or
    unknown: both flagged)."""
    code = pc.index_in(amort, value_set=pa.array(TAPE_KINDS))
    kind_missing = _null_mask(pa.chunked_array([amort]))
    unknown_kind = np.asarray(code.is_null().to_numpy(zero_copy_only=False), bool) & ~kind_missing
    expected = ", ".join(repr(k) for k in TAPE_KINDS)
    probs.flag("amortization", kind_missing, f"missing: give one of {expected}")
    probs.flag(
        "amortization",
        unknown_kind,
        f"unknown kind; expected one of {expected} (a license-fee schedule needs a deal file)",
        lambda row: amort[row].as_py(),
    )
    return code


def _sectors(p: Path, col: pa.ChunkedArray | None, n: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """Sector codes int64[n] into the sector names (an empty cell or no column:
    ``unspecified``)."""
    if col is None:
        return np.zeros(n, dtype=np.int64), ("unspecified",)
    enc = pc.fill_null(_text(p, "sector", col), "unspecified").dictionary_encode()
    sector_code = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return sector_code, tuple(enc.dictionary.to_pylist())


def _obligor_table(
    p: Path,
    n: int,
    ids: pa.Array,
    num: dict[str, tuple[np.ndarray, np.ndarray]],
    code: pa.Array,
    column: _Take,
) -> ObligorTable:
    """The checked columns as an :class:`~abs_engine.schema.pool.ObligorTable`, with the
    defaults of the module docstring where a cell is empty; the text columns are taken here."""

    def text_or(name: str, default: str) -> Labels:
        col = column(name)
        if col is None:
            return Labels(pa.repeat(pa.scalar(default, type=pa.string()), n))
        return Labels(pc.fill_null(_text(p, name, col), default))

    sector_code, sectors = _sectors(p, column("sector"), n)
    rec_rate, rate_missing = num["recovery_rate"]
    rec_lag, lag_missing = num["recovery_lag_periods"]
    own = ~(rate_missing & lag_missing)
    default = Recovery()
    first, first_missing = num["first_period"]
    appraisal, appraisal_missing = num["appraisal"]
    rfr = appraisal_missing & ~num["revenue"][1] & ~num["royalty_rate"][1]
    has_ip = ~appraisal_missing | rfr
    patents, patents_missing = num["patent_count"]
    ip = IpCollateral(appraisal=1.0)  # the defaults of the relief-from-royalty parameters

    def rfr_column(name: str) -> np.ndarray:
        vals, missing = num[name]
        default = getattr(ip, name) if name in _RFR_DEFAULTED else np.nan
        return np.where(rfr, np.where(missing, default, vals), np.nan)

    return ObligorTable(
        file=str(p),
        ids=Labels(ids),
        names=text_or("name", ""),
        regions=text_or("region", ""),
        sector_code=sector_code,
        sectors=sectors,
        balance=num["balance"][0],
        rate=num["rate"][0],
        kind=np.asarray(pc.fill_null(code, 0).to_numpy(zero_copy_only=False), dtype=np.int8),
        n_periods=num["n_periods"][0],
        first_period=np.where(first_missing, 1, first),
        annual_pd=num["annual_pd"][0],
        recovery_rate=np.where(own, np.where(rate_missing, default.rate, rec_rate), np.nan),
        recovery_lag=np.where(own, np.where(lag_missing, default.lag_periods, rec_lag), -1),
        appraisal=np.where(~appraisal_missing, appraisal, np.nan),
        patent_count=np.where(has_ip & ~patents_missing, patents, 0),
        revenue=rfr_column("revenue"),
        royalty_rate=rfr_column("royalty_rate"),
        revenue_growth=rfr_column("revenue_growth"),
        tax_rate=rfr_column("tax_rate"),
        discount_rate=rfr_column("discount_rate"),
        useful_life_years=np.where(rfr, rfr_column("useful_life_years"), 0).astype(np.int64),
    )


def read_tape_columns(p: Path, encoding: str = "auto", sheet: str | None = None) -> ObligorTable:
    """Read and check a CSV, Excel (.xlsx) or Parquet pool tape (see the module docstring) into
    an :class:`~abs_engine.schema.pool.ObligorTable`; a :class:`DealError` lists its problems.
    ``encoding``: of a CSV (:data:`TAPE_ENCODINGS`); ``sheet``: of a workbook (default: the
    first)."""
    table, csv = _load(p, encoding, sheet)
    _check_header(p, table)
    n = table.num_rows
    # each column is taken once and let go once converted: the Arrow table is not kept whole
    cols = {c: table.column(c) for c in table.column_names}
    del table

    def column(name: str) -> pa.ChunkedArray | None:
        return cols.pop(name, None)

    ids = _text(p, "id", cols.pop("id"))
    probs = _Problems(str(p), ids)
    _check_ids(probs, ids)
    num = _number_columns(probs, column, n, csv)
    code = _amortization_codes(probs, _text(p, "amortization", cols.pop("amortization")))
    if probs.total:
        _flag_repeats(probs, ids)
    probs.raise_if_any()
    out = _obligor_table(p, n, ids, num, code, column)
    pa.default_memory_pool().release_unused()  # what reading took, back to the system
    return out
