"""The deal report as an Excel workbook (openpyxl): the report's tables
(:mod:`abs_engine.report.tables`) as sheets of numbers — Summary, Assumptions, Tranches, Pool,
Comparison, one cash-flow sheet per scenario, Stresses — each number stored as the value it has
in the report document (``report.json``) to 16 significant digits (openpyxl writes ``%.16g``:
a last digit of 17 may differ, an ulp or so, never a displayed digit), shown with the number
format its column calls for (yuan ``#,##0.00``, percentages, ratios, years, dates)."""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import Any

from ..schema.common import FORMULA_START
from .i18n import label
from .tables import TRANSLATED_KINDS, Section, Table, fmt_value, sig_decimals

__all__ = ["NUMBER_FORMATS", "sheet_titles", "write_workbook"]

#: column kind → Excel number format
NUMBER_FORMATS = {
    "money": "#,##0.00",
    "pct": "0.00%",
    "pct4": "0.0000%",
    "ratio": "0.000",
    "years": "0.00",
    "int": "#,##0",
    "date": "yyyy-mm-dd",
}
#: a small share (``pct4``) gets as many decimals as show its first two significant digits
_PCT4_MAX_DECIMALS = 12


def _number_format(kind: str, value: Any) -> str | None:
    """The Excel number format of a cell of this kind and value: ``NUMBER_FORMATS``, except
    that a ``pct4`` share below 0.0001% (an importance-sampled senior's expected loss, 1.7e-7,
    showed as 0.0000%) gets the decimals that show it."""
    fmt = NUMBER_FORMATS.get(kind)
    if kind == "pct4" and isinstance(value, float) and 0.0 < abs(value) < 1e-6:
        fmt = "0." + "0" * sig_decimals(value, 2, 4, _PCT4_MAX_DECIMALS) + "%"
    return fmt


_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
#: characters an xlsx file cannot hold (XML 1.0's control characters, which openpyxl refuses,
#: and its two non-characters U+FFFE and U+FFFF, which openpyxl writes into XML no reader
#: parses: a free-text field holding one gave a workbook Excel calls damaged)
_ILLEGAL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
#: a text cell starting with one of these would read as a formula when edited in Excel
_FORMULA_START = (*FORMULA_START, "\t", "\r")
_MAX_WIDTH = 48


def _sheet_name(table: Table, lang: str) -> str:
    if table.sheet.startswith("CF") and table.scenario is not None:
        return f"{label('cashflows_sheet', lang)} {table.scenario}"
    return table.sheet


def sheet_titles(sections: list[Section], lang: str) -> dict[int, str]:
    """Each table's sheet title (by ``id`` of the table): Excel-safe (no ``[]:*?/\\``, at most
    31 characters, no leading or trailing apostrophe) and distinct."""
    titles: dict[int, str] = {}
    by_name: dict[str, str] = {}
    used: set[str] = set()
    for sec in sections:
        for t in sec.tables:
            name = _sheet_name(t, lang)
            if name not in by_name:
                clean = "".join(ch for ch in name if ch.isprintable())
                base = _BAD_SHEET_CHARS.sub("_", clean).strip("'")[:31].strip("'") or "Sheet"
                title, n = base, 1
                while title.lower() in used:
                    n += 1
                    title = f"{base[: 31 - len(str(n)) - 1]}~{n}"
                used.add(title.lower())
                by_name[name] = title
            titles[id(t)] = by_name[name]
    return titles


def _cell_value(v: Any, kind: str, lang: str) -> Any:
    if v is None or (isinstance(v, float) and v != v):
        return None
    if kind in TRANSLATED_KINDS and isinstance(v, str):
        return fmt_value(v, kind, lang)  # an English word of the engine's, in ``lang``
    if kind == "date" and isinstance(v, str):
        try:
            return _dt.date.fromisoformat(v[:10])
        except ValueError:
            return v
    if isinstance(v, float) and v in (float("inf"), float("-inf")):
        return "∞" if v > 0 else "−∞"
    if isinstance(v, list | dict):
        return str(v)
    return v


def _put(ws: Any, row: int, column: int, value: Any) -> Any:
    """Write ``value`` into a cell, text always as text: openpyxl stores a string starting
    with "=" as a formula, so a deal, tranche or scenario named ``=cmd|' /C calc'!A0`` would
    run in Excel. Strings are stored as strings, those that Excel would read as a formula once
    edited (``= + - @``) with the quote prefix that keeps them text, and characters an xlsx
    file cannot hold (control characters) as U+FFFD."""
    if isinstance(value, str):
        value = _ILLEGAL_CHARS.sub("\ufffd", value)
    cell = ws.cell(row=row, column=column, value=value)
    if isinstance(value, str):
        cell.data_type = "s"
        if value.startswith(_FORMULA_START):
            cell.quotePrefix = True
    return cell


def _write_table(ws: Any, row: int, t: Table, widths: dict[int, int], lang: str) -> int:
    """``t`` from ``row`` down (title, header, rows, note); returns the next free row."""
    from openpyxl.styles import Alignment, Font, PatternFill

    _put(ws, row, 1, t.title).font = Font(bold=True, size=12, color="1F4E79")
    row += 1
    fill = PatternFill("solid", fgColor="1F4E79")
    for j, c in enumerate(t.columns, start=1):
        cell = _put(ws, row, j, c.label)
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = fill
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        widths[j] = max(widths.get(j, 8), min(len(c.label) + 2, _MAX_WIDTH))
    row += 1
    for i, values in enumerate(t.rows):
        for j, v in enumerate(values, start=1):
            kind = t.kind(i, j - 1)
            cell = _put(ws, row, j, _cell_value(v, kind, lang))
            fmt = _number_format(kind, cell.value)
            if fmt is not None and not isinstance(cell.value, str | bool):
                cell.number_format = fmt
            shown = len(str(v)) if isinstance(v, str) else 14
            widths[j] = max(widths.get(j, 8), min(shown + 2, _MAX_WIDTH))
        row += 1
    if t.note:
        _put(ws, row, 1, t.note).font = Font(italic=True, color="5F6B76")
        row += 1
    return row + 1


def write_workbook(
    doc: dict[str, Any], sections: list[Section], path: Path, lang: str
) -> list[str]:
    """Write the workbook to ``path``; returns its sheet titles in order."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    wb.properties.title = _ILLEGAL_CHARS.sub(
        "\ufffd", f"{label('report_title', lang)}: {doc['deal']['deal']}"
    )
    wb.properties.creator = doc["stamp"]["engine"]
    titles = sheet_titles(sections, lang)
    order = ["summary", "assumptions", "tranches", "pool", "comparison", "cashflows", "stresses"]
    by_key = {s.key: s for s in sections}
    next_row: dict[str, int] = {}
    widths: dict[str, dict[int, int]] = {}
    for key in order:
        for t in by_key[key].tables if key in by_key else []:
            title = titles[id(t)]
            if title not in next_row:
                wb.create_sheet(title)
                next_row[title], widths[title] = 1, {}
            ws = wb[title]
            if key == "cashflows":
                ws.freeze_panes = ws.cell(row=next_row[title] + 2, column=3)
            next_row[title] = _write_table(ws, next_row[title], t, widths[title], lang)
    for title, w in widths.items():
        for j, width in w.items():
            wb[title].column_dimensions[get_column_letter(j)].width = width
    wb.save(path)
    return list(wb.sheetnames)
