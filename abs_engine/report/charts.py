"""The deal report's charts, drawn with matplotlib from the report document
(:mod:`abs_engine.report.content`) as self-contained SVG: text as glyph outlines, so the
browser needs no font, and no reference to anything outside the file.

Per Monte Carlo scenario: the pool loss distribution with the tranches' attachment points,
each tranche's balance over time (mean, with a 5–95% band), the coverage ratio by period
(mean, with the 5th percentile of the whole run and a 5–95% band) and the period cash-flow
waterfall (stacked bars of what each tranche is paid, with the pool's collections). Per
deterministic scenario: the same balance, coverage and waterfall charts of its one path.

Chinese labels need a CJK font known to matplotlib (e.g. Debian's ``fonts-noto-cjk``); without
one the charts are labelled in English and a warning says so.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache, partial
from typing import Any

import numpy as np

from .i18n import label

__all__ = ["Chart", "cjk_font", "report_charts"]

#: CJK font families tried in order (matplotlib names)
CJK_FAMILIES = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
    "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Microsoft YaHei", "SimHei", "PingFang SC",
    "Heiti SC", "Noto Sans CJK JP", "Noto Sans CJK TC",
)  # fmt: skip
#: file-name fragments of CJK fonts looked for among the system's fonts when matplotlib's font
#: cache predates them
_CJK_FILES = ("notosanscjk", "notoserifcjk", "sourcehansans", "wqy", "msyh", "simhei", "pingfang")

_WIDTH, _HEIGHT = 7.2, 3.4  # inches, at 100 dpi in the SVG
_COLOURS = ("#1f4e79", "#c55a11", "#548235", "#7030a0", "#bf9000", "#2e75b6", "#a5a5a5")


class Chart(dict):  # type: ignore[type-arg]
    """One chart: ``id``, ``title``, ``scenario``, ``kind`` and ``svg`` (the SVG element's
    text, ready to be placed inline)."""


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The name of a CJK font matplotlib can use, or None. Fonts installed after matplotlib
    built its font cache are looked for among the system's fonts and added."""
    from matplotlib import font_manager as fm

    def known() -> str | None:
        names = {f.name for f in fm.fontManager.ttflist}
        return next((n for n in CJK_FAMILIES if n in names), None)

    found = known()
    if found is not None:
        return found
    for path in fm.findSystemFonts():
        if any(frag in path.lower().replace("-", "").replace("_", "") for frag in _CJK_FILES):
            try:
                fm.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue
    return known()


def chart_language(lang: str) -> str:
    """The charts' language: ``lang``, or English (with a warning) for Chinese without a CJK
    font."""
    if lang == "zh" and cjk_font() is None:
        warnings.warn(
            "no CJK font found for the charts' Chinese labels (install e.g. fonts-noto-cjk): "
            "the charts are labelled in English; the report's text stays in Chinese",
            RuntimeWarning,
            stacklevel=2,
        )
        return "en"
    return lang


@contextmanager
def _style(salt: str) -> Iterator[None]:
    import matplotlib as mpl

    font = cjk_font()
    rc: Any = {
        "svg.fonttype": "path",
        "svg.hashsalt": salt,  # ids unique per chart (they share one HTML page), reproducible
        "font.family": "sans-serif",
        "font.sans-serif": ([font] if font else []) + ["DejaVu Sans"],
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.unicode_minus": False,
    }
    with mpl.rc_context(rc):
        yield


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buf.getvalue()
    svg = text[text.find("<svg") :]
    # the RDF metadata block (creator, format) is dropped: an inline chart carries no
    # namespaces but SVG's and XLink's
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, count=1, flags=re.S)
    svg = re.sub(r'\s+xmlns:(?:dc|cc|rdf)="[^"]*"', "", svg)
    # scale with the page: the viewBox keeps the drawing, CSS gives the size
    return re.sub(r'(<svg[^>]*?) width="[^"]*" height="[^"]*"', r"\1", svg, count=1)


def _figure() -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(_WIDTH, _HEIGHT), dpi=100)
    return fig, fig.add_subplot()


def _millions(ax: Any, axis: str = "y") -> None:
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _: f"{v / 1e6:,.0f}M" if abs(v) >= 1e6 or v == 0 else "")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _column(records: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if r.get(key) is None else r[key] for r in records], dtype=float)


def loss_distribution(doc: dict[str, Any], mc: dict[str, Any], lang: str) -> Any:
    """Share of paths by pool loss rate (1000 bins on [0, 1]) and the tranches' attachment
    points."""
    hist = np.asarray(mc["loss_rate_hist"], dtype=float)
    share = hist / max(hist.sum(), 1.0)
    edges = np.linspace(0.0, 1.0, len(hist) + 1)
    tranches = doc["deal"]["tranches"]
    attach = [t for t in tranches if 0.0 < t["attachment"] < 1.0]
    cum = np.cumsum(share)
    top = edges[min(int(np.searchsorted(cum, 0.9999)) + 1, len(hist))]
    top = min(1.0, max(top, *(t["attachment"] for t in attach), 0.02) * 1.15)
    fig, ax = _figure()
    ax.stairs(share, edges, fill=True, color=_COLOURS[0], alpha=0.8, label=label("pool", lang))
    for k, t in enumerate(attach):
        ax.axvline(t["attachment"], color=_COLOURS[1 + k % 5], linestyle="--", linewidth=1.2)
        ax.annotate(
            f"{label('attachment_of', lang)} {t['tranche']} ({t['attachment']:.1%})",
            (t["attachment"], 0.95), xycoords=("data", "axes fraction"),
            rotation=90, ha="right", va="top", fontsize=8,
        )  # fmt: skip
    ax.set_xlim(0.0, top)
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(_percent())
    ax.set_xlabel(label("loss_rate_axis", lang))
    ax.set_ylabel(label("probability_axis", lang))
    ax.set_title(f"{label('chart_loss_distribution', lang)}: {mc['scenario']}")
    return fig


def _percent() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0, decimals=0)


def _x(records: list[dict[str, Any]]) -> np.ndarray:
    return np.array([r["period"] for r in records])


def balance_chart(
    doc: dict[str, Any], name: str, records: list[dict[str, Any]], bands: dict | None, lang: str
) -> Any:
    """Each tranche's end-of-period balance (yuan): mean (Monte Carlo) or the path's own, with
    the 5–95% band where ``bands`` has one."""
    fig, ax = _figure()
    x = _x(records)
    for k, t in enumerate(doc["deal"]["tranches"]):
        c = _COLOURS[k % len(_COLOURS)]
        y = _column(records, f"{t['tranche']}.balance_end")
        ax.plot(x, y, color=c, marker="o", markersize=3, label=f"{t['tranche']}")
        band = (bands or {}).get("tranche_balance", {}).get(t["tranche"])
        if band:
            lo, hi = np.array(band["p05"], dtype=float), np.array(band["p95"], dtype=float)
            ax.fill_between(x, lo, hi, color=c, alpha=0.18, linewidth=0)
    _millions(ax)
    ax.set_xlabel(label("period", lang))
    ax.set_ylabel(label("amount_axis", lang))
    ax.set_title(f"{label('chart_balance', lang)}: {name}")
    _legend(ax, bool(bands and bands.get("sample_paths")), lang)
    return fig


def _legend(ax: Any, banded: bool, lang: str) -> None:
    from matplotlib.patches import Patch

    handles, labels = ax.get_legend_handles_labels()
    if banded:
        handles.append(Patch(color="#808080", alpha=0.3))
        labels.append(label("band", lang))
    ax.legend(handles, labels, fontsize=8, frameon=False)


def coverage_chart(name: str, records: list[dict[str, Any]], bands: dict | None, lang: str) -> Any:
    """The deal's coverage ratio by period: mean (Monte Carlo) or the path's own; the run's
    5th percentile where it has one; the 5–95% band where ``bands`` has one."""
    fig, ax = _figure()
    x = _x(records)
    y = _column(records, "coverage_ratio")
    ax.plot(x, y, color=_COLOURS[0], marker="o", markersize=3, label=label("mean", lang)
            if "coverage_ratio_p05" in records[0] else name)  # fmt: skip
    if "coverage_ratio_p05" in records[0]:
        p05 = _column(records, "coverage_ratio_p05")
        ax.plot(x, p05, color=_COLOURS[1], linestyle="--", label=label("coverage_ratio_p05", lang))
    band = (bands or {}).get("coverage_ratio")
    if band:
        lo, hi = np.array(band["p05"], dtype=float), np.array(band["p95"], dtype=float)
        ax.fill_between(x, lo, hi, color=_COLOURS[0], alpha=0.18, linewidth=0)
    ax.axhline(1.0, color="#808080", linewidth=0.8)
    ax.set_xlabel(label("period", lang))
    ax.set_ylabel(label("ratio_axis", lang))
    ax.set_title(f"{label('chart_coverage', lang)}: {name}")
    _legend(ax, bool(band), lang)
    return fig


def _collections(records: list[dict[str, Any]]) -> np.ndarray:
    if "collections" in records[0]:
        return _column(records, "collections")
    keys = ("pool.interest", "pool.scheduled_principal", "pool.prepayment", "pool.recoveries")
    return sum((_column(records, k) for k in keys), np.zeros(len(records)))


def waterfall_chart(
    doc: dict[str, Any], name: str, records: list[dict[str, Any]], lang: str
) -> Any:
    """Per period, stacked: each tranche's interest, principal and residual paid (yuan); the
    pool's collections as a line."""
    fig, ax = _figure()
    x = _x(records)
    bottom = np.zeros(len(records))
    k = 0
    for t in doc["deal"]["tranches"]:
        for item in ("interest_paid", "principal_paid", "residual_paid"):
            key = f"{t['tranche']}.{item}"
            if key not in records[0]:
                continue
            y = np.nan_to_num(_column(records, key))
            if not y.any():
                continue
            ax.bar(x, y, bottom=bottom, color=_COLOURS[k % len(_COLOURS)], width=0.7,
                   label=f"{t['tranche']} {label(item, lang)}")  # fmt: skip
            bottom += y
            k += 1
    ax.plot(x, _collections(records), color="black", marker="_", linestyle="none",
            markersize=14, label=label("collections_line", lang))  # fmt: skip
    _millions(ax)
    ax.set_xlabel(label("period", lang))
    ax.set_ylabel(label("amount_axis", lang))
    ax.set_title(f"{label('chart_waterfall', lang)}: {name}")
    ax.legend(fontsize=7, frameon=False, ncols=3, loc="upper center",
              bbox_to_anchor=(0.5, -0.16))  # fmt: skip
    return fig


def _det_scenarios(det: dict[str, Any] | None) -> list[dict[str, Any]]:
    if det is None:
        return []
    return list(det["scenarios"]) if "scenarios" in det else [det]


def report_charts(doc: dict[str, Any], lang: str) -> list[Chart]:
    """Every chart of the report, in the report's order (Monte Carlo scenarios first)."""
    lang = chart_language(lang)
    plans: list[tuple[str, str, str, Callable[[], Any]]] = []
    for i, mc in enumerate(doc["monte_carlo"]):
        name, cf, bands = mc["scenario"], mc["cashflows"], mc["bands"]
        plans += [
            (f"mc{i}-loss", name, "chart_loss_distribution",
             partial(loss_distribution, doc, mc, lang)),
            (f"mc{i}-balance", name, "chart_balance",
             partial(balance_chart, doc, name, cf, bands, lang)),
            (f"mc{i}-coverage", name, "chart_coverage",
             partial(coverage_chart, name, cf, bands, lang)),
            (f"mc{i}-waterfall", name, "chart_waterfall",
             partial(waterfall_chart, doc, name, cf, lang)),
        ]  # fmt: skip
    for i, sc in enumerate(_det_scenarios(doc["deterministic"])):
        name, cf = sc["scenario"], sc["cashflows"]
        plans += [
            (f"det{i}-balance", name, "chart_balance",
             partial(balance_chart, doc, name, cf, None, lang)),
            (f"det{i}-coverage", name, "chart_coverage",
             partial(coverage_chart, name, cf, None, lang)),
            (f"det{i}-waterfall", name, "chart_waterfall",
             partial(waterfall_chart, doc, name, cf, lang)),
        ]  # fmt: skip
    charts = []
    for cid, name, kind, draw in plans:
        with _style(cid):
            fig = draw()
            svg = _svg(fig)
        charts.append(Chart(id=cid, scenario=name, kind=kind, title=label(kind, lang), svg=svg))
    return charts
