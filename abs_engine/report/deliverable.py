"""``abs-engine report``'s files: from the results of a deal's scenarios to ``report.html``,
``report.xlsx`` and ``report.json`` in one folder, written as a set (staged, then moved into
place with a manifest; see :mod:`abs_engine.files`) or not at all.

The document (:mod:`~abs_engine.report.content`) is built first; the tables
(:mod:`~abs_engine.report.tables`), charts (:mod:`~abs_engine.report.charts`), HTML
(:mod:`~abs_engine.report.html`) and workbook (:mod:`~abs_engine.report.workbook`) are drawn
from it alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..files import staged_outputs
from .charts import report_charts
from .content import report_document
from .html import render_html
from .tables import report_sections
from .workbook import write_workbook

if TYPE_CHECKING:
    from ..api import DeterministicResult
    from ..compile.deal import CompiledDeal
    from .montecarlo import SimulationResult

__all__ = ["REPORT_FILES", "build_report", "write_report"]

#: the files a report folder holds (with ``manifest.json``)
REPORT_FILES = ("report.html", "report.xlsx", "report.json")


def build_report(
    cd: CompiledDeal,
    scenarios: Sequence[Any],
    mc: Sequence[tuple[SimulationResult, dict[str, Any]]],
    det: tuple[DeterministicResult, dict[str, Any]] | None,
    comparison: list[dict[str, Any]],
    stress: dict[str, Any],
    stamp: dict[str, Any],
    lang: str,
    step: Callable[[], None] = lambda: None,
) -> tuple[dict[str, Any], list[Any], list[Any], str]:
    """The report's document, sections, charts and HTML text; ``step()`` after each stage."""
    doc = report_document(cd, scenarios, mc, det, comparison, stress, stamp, lang=lang)
    step()
    sections = report_sections(doc, lang)
    charts = report_charts(doc, lang)
    step()
    html = render_html(doc, sections, charts, lang)
    step()
    return doc, sections, charts, html


def write_report(
    out: Path, doc: dict[str, Any], sections: list[Any], html: str, lang: str
) -> list[Path]:
    """Write the report's files into ``out`` as one set; returns their paths. A file path
    that is not UTF-8 (a byte Linux allows, held as a lone surrogate) is written escaped,
    ``\\udcff``: the HTML shows it so, and the JSON reads back the same path."""
    info = {"command": "report", "lang": lang, "stamp": doc["stamp"]}
    text = {"encoding": "utf-8", "errors": "backslashreplace"}
    writers: list[tuple[str, Callable[[Path], object]]] = [
        ("report.html", lambda p: p.write_text(html, **text)),
        ("report.xlsx", lambda p: write_workbook(doc, sections, p, lang)),
        ("report.json", lambda p: p.write_text(json.dumps(doc, indent=2, ensure_ascii=False),
                                               **text)),
    ]  # fmt: skip
    with staged_outputs(out, info=info) as stage:
        return [stage.write(name, fn) for name, fn in writers]
