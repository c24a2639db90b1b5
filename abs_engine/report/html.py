"""The deal report as one self-contained HTML file: the report document's tables
(:mod:`abs_engine.report.tables`) and charts (:mod:`abs_engine.report.charts`, inline SVG)
through a Jinja2 template (``templates/report.html.j2``). Nothing is loaded from elsewhere: no
scripts, no fonts, no images but the inline charts."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from .charts import Chart
from .i18n import label
from .tables import TEXT_KINDS, Section, fmt_value

__all__ = ["render_html"]

TEMPLATES = Path(__file__).resolve().parent / "templates"


#: control characters (a name may hold them): not allowed in HTML, shown as U+FFFD as in the
#: workbook
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _finalize(v: Any) -> Any:
    """Each ``{{ ... }}`` value before it is escaped: control characters in text replaced
    (markup, the inline charts, is left as it is)."""
    from markupsafe import Markup

    if isinstance(v, str) and not isinstance(v, Markup):
        return _CONTROL.sub("\ufffd", v)
    return v


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_finalize,
    )


def _raw(v: Any) -> str:
    """A cell's raw value for ``data-value``: floats as Python writes them (they read back
    exactly), None as empty."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


def _caption(doc: dict[str, Any], chart: Chart, lang: str) -> str | None:
    if chart["kind"] == "chart_loss_distribution":
        return label("attachment_note", lang)
    if not chart["id"].startswith("mc") or chart["kind"] == "chart_waterfall":
        return None
    mc = next(m for m in doc["monte_carlo"] if m["scenario"] == chart["scenario"])
    k = mc["bands"]["sample_paths"]
    if mc["bands"].get("reason") == "importance":
        return label("importance_band_note", lang)
    if k == 0:
        return label("one_path_band_note" if mc["n_paths"] < 2 else "no_band_note", lang)
    return label("band_note", lang).format(k=k, n=mc["n_paths"])


def render_html(
    doc: dict[str, Any], sections: list[Section], charts: list[Chart], lang: str
) -> str:
    """The report's HTML text."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for c in charts:
        groups.setdefault(c["scenario"], []).append({**c, "caption": _caption(doc, c, lang)})
    template = _environment().get_template("report.html.j2")
    text: str = template.render(
        doc=doc,
        sections=sections,
        chart_groups=list(groups.items()),
        html_lang="zh-CN" if lang == "zh" else "en",
        L=lambda key: label(key, lang),
        fmt=lambda v, kind: fmt_value(v, kind, lang),
        raw=_raw,
        text_kinds=TEXT_KINDS,
    )
    return text
