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
#: the longest name drawn whole in a legend entry, and in a chart's title
_LEGEND_CHARS, _TITLE_CHARS = 22, 48
#: a coverage ratio above this many times the chart's typical level (and above 3) is drawn at
#: the top edge with its value written beside it, so that one spike (the last period, when
#: the notes are nearly repaid) does not flatten the rest
_COVERAGE_CLIP = 3.0


def _text(name: Any, limit: int | None = None) -> str:
    """A name from the deal or a scenario as chart text: ``$`` escaped (matplotlib would read
    ``$...$`` as mathematics, and fail on some), control characters dropped, and at most
    ``limit`` characters (the rest as "…"). The report's tables carry the names whole."""
    text = "".join(ch for ch in str(name) if ch.isprintable())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def _colours(n: int) -> list[str]:
    """``n`` distinct colours: the report's palette, then matplotlib's ``tab20`` beyond it."""
    if n <= len(_COLOURS):
        return list(_COLOURS[:n])
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps["tab20"]
    order = [*range(0, 20, 2), *range(1, 20, 2)]  # the ten dark shades first, then the light
    return [to_hex(cmap(order[k % 20])) for k in range(n)]


def _tint(colour: str, amount: float = 0.5) -> str:
    """``colour`` mixed with white (``amount`` of white)."""
    from matplotlib.colors import to_hex, to_rgb

    r, g, b = (c + (1.0 - c) * amount for c in to_rgb(colour))
    return to_hex((r, g, b))


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
        "font.size": 10,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.unicode_minus": False,
    }
    with mpl.rc_context(rc):
        yield


def _svg(fig: Any, prefix: str = "") -> str:
    """The figure as an inline ``<svg>`` element; every id in it (and every reference to one)
    starts with ``prefix``: the charts share one HTML page, and matplotlib names a glyph or a
    collection the same in each (``DejaVuSans-31``), which would make the page's ids repeat."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buf.getvalue()
    svg = text[text.find("<svg") :]
    # the RDF metadata block (creator, format) is dropped: an inline chart carries no
    # namespaces but SVG's and XLink's
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, count=1, flags=re.S)
    svg = re.sub(r'\s+xmlns:(?:dc|cc|rdf)="[^"]*"', "", svg)
    if prefix:
        svg = re.sub(r'(\sid=")', rf"\g<1>{prefix}", svg)
        svg = re.sub(r'(href="#|url\(#)', rf"\g<1>{prefix}", svg)
    # scale with the page: the viewBox keeps the drawing, CSS gives the size
    return re.sub(r'(<svg[^>]*?) width="[^"]*" height="[^"]*"', r"\1", svg, count=1)


def _figure(extra_height: float = 0.0) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    # constrained layout: a legend placed "outside" gets room beside the axes, never on the data
    fig = Figure(figsize=(_WIDTH, _HEIGHT + extra_height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def _below_columns(labels: list[str]) -> int:
    """Columns of a legend under the axes: three, two when its labels are long (so that it is
    never wider than the figure)."""
    return 3 if max((len(t) for t in labels), default=0) <= 26 else 2


def _outside_legend(ax: Any, handles: list[Any], labels: list[str], where: str = "right") -> None:
    """The legend beside the axes (``right``, from their top edge: under the figure's title)
    or under them (``below``), off the data; constrained layout makes room for it."""
    if not handles:
        return
    if where == "right":
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  borderaxespad=0.0, fontsize=8.5, frameon=False)  # fmt: skip
    else:
        ax.figure.legend(handles, labels, loc="outside lower center", fontsize=8,
                         frameon=False, ncols=_below_columns(labels))  # fmt: skip


def _periods(ax: Any, x: np.ndarray) -> None:
    """The x axis over every period, whether or not the last ones have a value."""
    if len(x):
        ax.set_xlim(float(x.min()) - 0.6, float(x.max()) + 0.6)


def _yuan(v: float) -> str:
    """A yuan tick: thousands, millions or billions with the digits it needs ("500k",
    "1.5M", "2B"), small amounts as they are; never a milli or micro prefix (an empty axis
    spans about ±0.06)."""
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:,.3g}{unit}"
    return "0" if abs(v) < 1e-9 else f"{v:.3g}"


def _millions(ax: Any, axis: str = "y") -> None:
    """Yuan ticks in k, M or B with the digits they need (:func:`_yuan`): whole millions
    blanked every tick under 1M and rounded 1.5M and 2.5M both to "2M" (a small deal's axis
    read "0M" and blanks)."""
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _: _yuan(v))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _column(records: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if r.get(key) is None else r[key] for r in records], dtype=float)


def loss_distribution(doc: dict[str, Any], mc: dict[str, Any], lang: str) -> Any:
    """Share of paths by pool loss rate (1000 bins on [0, 1]) and the tranches' attachment
    points (dashed lines, named in the legend beside the axes)."""
    hist = np.asarray(mc["loss_rate_hist"], dtype=float)
    share = hist / max(hist.sum(), 1.0)
    edges = np.linspace(0.0, 1.0, len(hist) + 1)
    tranches = doc["deal"]["tranches"]
    colours = _colours(len(tranches))
    attach = [(t, colours[k]) for k, t in enumerate(tranches) if 0.0 < t["attachment"] < 1.0]
    cum = np.cumsum(share)
    top = edges[min(int(np.searchsorted(cum, 0.9999)) + 1, len(hist))]
    top = min(1.0, max(top, *(t["attachment"] for t, _ in attach), 0.02) * 1.15)
    fig, ax = _figure()
    ax.stairs(share, edges, fill=True, color=_COLOURS[0], alpha=0.8, label=label("pool", lang))
    for t, c in attach:
        ax.axvline(
            t["attachment"], color=c, linestyle="--", linewidth=1.2,
            label=f"{label('attachment_of', lang)} {_text(t['tranche'], _LEGEND_CHARS)} "
                  f"({t['attachment']:.1%})",
        )  # fmt: skip
    ax.set_xlim(0.0, top)
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(_percent())
    ax.set_xlabel(label("loss_rate_axis", lang))
    ax.set_ylabel(label("probability_axis", lang))
    fig.suptitle(f"{label('chart_loss_distribution', lang)}: {_text(mc['scenario'], _TITLE_CHARS)}")
    _outside_legend(ax, *ax.get_legend_handles_labels())
    return fig


def _percent() -> Any:
    """Percent ticks with the decimals the axis's range needs (whole percents turned 0.5%
    into 0% and 1.5% into 2% on a narrow axis)."""
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0, decimals=None)


def _x(records: list[dict[str, Any]]) -> np.ndarray:
    return np.array([r["period"] for r in records])


def balance_chart(
    doc: dict[str, Any], name: str, records: list[dict[str, Any]], bands: dict | None, lang: str
) -> Any:
    """Each tranche's end-of-period balance (yuan): mean (Monte Carlo) or the path's own, with
    the 5–95% band where ``bands`` has one."""
    fig, ax = _figure()
    x = _x(records)
    tranches = doc["deal"]["tranches"]
    lines = []
    for t, c in zip(tranches, _colours(len(tranches)), strict=True):
        y = _column(records, f"{t['tranche']}.balance_end")
        lines += ax.plot(x, y, color=c, marker="o", markersize=3)
        band = (bands or {}).get("tranche_balance", {}).get(t["tranche"])
        if band:
            lo, hi = np.array(band["p05"], dtype=float), np.array(band["p95"], dtype=float)
            ax.fill_between(x, lo, hi, color=c, alpha=0.18, linewidth=0)
    _millions(ax)
    _periods(ax, x)
    ax.set_xlabel(label("period", lang))
    ax.set_ylabel(label("amount_axis", lang))
    fig.suptitle(f"{label('chart_balance', lang)}: {_text(name, _TITLE_CHARS)}")
    # the tranches' lines passed with their names: matplotlib leaves a label starting with "_"
    # out of the legend it gathers itself (a tranche "_Sub" was missing from it)
    names = [_text(t["tranche"], _LEGEND_CHARS) for t in tranches]
    _legend(ax, bool(bands and bands.get("sample_paths")), lang, (lines, names))
    return fig


def _legend(ax: Any, banded: bool, lang: str, entries: tuple[list, list] | None = None) -> None:
    """The legend beside the axes: ``entries`` (handles, labels), or the labelled artists';
    the 5–95% band's patch after them where ``banded``."""
    from matplotlib.patches import Patch

    handles, labels = (list(e) for e in entries) if entries else ax.get_legend_handles_labels()
    if banded:
        handles.append(Patch(color="#808080", alpha=0.3))
        labels.append(label("band", lang))
    _outside_legend(ax, handles, labels)


def coverage_chart(name: str, records: list[dict[str, Any]], bands: dict | None, lang: str) -> Any:
    """The deal's coverage ratio by period: mean (Monte Carlo) or the path's own; the run's
    5th percentile where it has one; the 5–95% band where ``bands`` has one. A spike far
    above the rest (see :data:`_COVERAGE_CLIP`) is drawn at the top edge, its value written."""
    fig, ax = _figure()
    x = _x(records)
    y = _column(records, "coverage_ratio")
    mc = "coverage_ratio_p05" in records[0]
    # a deterministic scenario's one line needs no legend: the title names the scenario
    ax.plot(x, y, color=_COLOURS[0], marker="o", markersize=3,
            label=label("mean", lang) if mc else None)  # fmt: skip
    shown = [y]
    if mc:
        p05 = _column(records, "coverage_ratio_p05")
        ax.plot(x, p05, color=_COLOURS[1], linestyle="--", label=label("coverage_ratio_p05", lang))
        shown.append(p05)
    band = (bands or {}).get("coverage_ratio")
    if band:
        lo, hi = np.array(band["p05"], dtype=float), np.array(band["p95"], dtype=float)
        ax.fill_between(x, lo, hi, color=_COLOURS[0], alpha=0.18, linewidth=0)
        shown += [lo, hi]
    ax.axhline(1.0, color="#808080", linewidth=0.8)
    _clip_spikes(ax, x, y, np.concatenate(shown))
    _periods(ax, x)
    ax.set_xlabel(label("period", lang))
    ax.set_ylabel(label("ratio_axis", lang))
    fig.suptitle(f"{label('chart_coverage', lang)}: {_text(name, _TITLE_CHARS)}")
    _legend(ax, bool(band), lang)
    return fig


def _clip_spikes(ax: Any, x: np.ndarray, y: np.ndarray, every: np.ndarray) -> None:
    """Cap the y axis at :data:`_COVERAGE_CLIP` times the typical level (the median of ``y``,
    at least 1) when ``every`` drawn value reaches far above it; the points of ``y`` beyond
    the cap are drawn on the edge with their values."""
    finite = every[np.isfinite(every)]
    level = float(np.nanmedian(y)) if np.isfinite(y).any() else float("nan")
    if not finite.size or not np.isfinite(level):
        return
    cap = _COVERAGE_CLIP * max(level, 1.0)
    if finite.max() <= cap:
        return
    low = min(0.0, float(finite.min()))
    ax.set_ylim(low, cap)
    for xi, yi in zip(x, y, strict=True):
        if np.isfinite(yi) and yi > cap:
            ax.plot([xi], [cap], marker="^", color=_COLOURS[0], markersize=6, clip_on=False)
            ax.annotate(f"{yi:,.2f}", (xi, cap), xytext=(0, -4), textcoords="offset points",
                        ha="right", va="top", fontsize=7.5, color=_COLOURS[0])  # fmt: skip


def _collections(records: list[dict[str, Any]]) -> np.ndarray:
    if "pool.collections" in records[0]:  # deterministic: collected in one column
        return _column(records, "pool.collections")
    keys = ("pool.interest", "pool.scheduled_principal", "pool.prepayment", "pool.recoveries")
    return sum((_column(records, k) for k in keys), np.zeros(len(records)))


def waterfall_chart(
    doc: dict[str, Any], name: str, records: list[dict[str, Any]], lang: str
) -> Any:
    """Per period, stacked: each tranche's interest (light), principal (full colour) and
    residual (hatched) paid (yuan), one colour per tranche; the pool's collections as a
    line. The legend lies under the axes (the figure grows with it)."""
    from matplotlib.patches import Patch

    tranches = doc["deal"]["tranches"]
    styles: dict[str, tuple[dict[str, Any], bool]] = {
        "interest_paid": ({}, True),
        "principal_paid": ({}, False),
        "residual_paid": ({"hatch": "///", "edgecolor": "white"}, False),
    }
    series = []  # (values, colour, style, legend label)
    for t, c in zip(tranches, _colours(len(tranches)), strict=True):
        for item, (style, light) in styles.items():
            key = f"{t['tranche']}.{item}"
            y = np.nan_to_num(_column(records, key)) if key in records[0] else None
            if y is not None and y.any():
                text = f"{_text(t['tranche'], _LEGEND_CHARS)} {label(item, lang)}"
                series.append((y, _tint(c) if light else c, style, text))
    labels = [label("collections_line", lang), *(text for *_, text in series)]
    rows = -(-len(labels) // _below_columns(labels))  # the legend's rows
    fig, ax = _figure(0.17 * max(0, rows - 3))
    x = _x(records)
    bottom = np.zeros(len(records))
    for y, colour, style, _ in series:
        ax.bar(x, y, bottom=bottom, color=colour, width=0.7, linewidth=0, **style)
        bottom += y
    (line,) = ax.plot(x, _collections(records), color="black", marker="_", linestyle="none",
                      markersize=14)  # fmt: skip
    _millions(ax)
    ax.set_ylim(bottom=0.0)
    _periods(ax, x)
    ax.set_xlabel(label("period", lang))
    ax.set_ylabel(label("amount_axis", lang))
    fig.suptitle(f"{label('chart_waterfall', lang)}: {_text(name, _TITLE_CHARS)}")
    handles = [line, *(Patch(facecolor=colour, **style) for _, colour, style, _ in series)]
    _outside_legend(ax, handles, labels, "below")
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
    missing: set[str] = set()
    for cid, name, kind, draw in plans:
        with _style(cid), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fig = draw()
            svg = _svg(fig, f"{cid}-")
        missing |= _warn_again(caught)
        charts.append(Chart(id=cid, scenario=name, kind=kind, title=label(kind, lang), svg=svg))
    if missing:
        warnings.warn(
            f"the charts' fonts have no glyph for {''.join(sorted(missing))!r} in the names: "
            "drawn as blanks there (the report's tables carry the names whole)",
            RuntimeWarning,
            stacklevel=2,
        )
    return charts


_MISSING_GLYPH = re.compile(r"Glyph (\d+) .*missing from font")


def _warn_again(caught: list[warnings.WarningMessage]) -> set[str]:
    """The characters matplotlib warned it has no glyph for (a warning for each, every time it
    draws one: 39 for a tranche named with an emoji); every other warning issued again."""
    missing = set()
    for w in caught:
        m = _MISSING_GLYPH.search(str(w.message))
        if m is not None:
            missing.add(chr(int(m.group(1))))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return missing
