"""``abs-engine report``: the HTML report, the Excel workbook and their JSON document.

The workbook is read back with openpyxl and the HTML parsed with the standard library; their
numbers are compared with ``report.json`` and with what ``abs-engine run --json`` prints for
the same seed and paths. The browser test is in test_report_browser.py."""

from __future__ import annotations

import json
import math
import warnings
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import REPORT_PATHS, run_cli, snapshot

openpyxl = pytest.importorskip("openpyxl")

PATHS = REPORT_PATHS


def _report(out: Path, *args: str, paths: str = PATHS) -> dict[str, Any]:
    r = run_cli("report", "--out", out, "--paths", paths, "--no-progress", *args)
    assert r.returncode == 0, r.stderr
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def _shared(deal_report: Any, lang: str) -> tuple[Path, dict[str, Any]]:
    out, _ = deal_report(lang)
    return out, json.loads((out / "report.json").read_text(encoding="utf-8"))


@pytest.fixture
def en(deal_report: Any) -> tuple[Path, dict[str, Any]]:
    return _shared(deal_report, "en")


@pytest.fixture
def zh(deal_report: Any) -> tuple[Path, dict[str, Any]]:
    return _shared(deal_report, "zh")


class _Page(HTMLParser):
    """Tables (their header keys and cells' data-value), figures, and every attribute that
    could load something."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict[str, Any]] = []
        self.figures: list[dict[str, str]] = []
        self.svgs = 0
        self.loads: list[tuple[str, str, str]] = []
        self.tags: set[str] = set()
        self.styles: list[str] = []
        self._in_style = False
        self._row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.add(tag)
        for k in ("src", "href", "srcset", "data", "xlink:href", "action", "poster"):
            if k in a and not a[k].startswith("#"):
                self.loads.append((tag, k, a[k]))
        if tag == "table":
            self.tables.append({"sheet": a.get("data-sheet"), "keys": [], "rows": []})
        elif tag == "th" and self.tables:
            self.tables[-1]["keys"].append(a.get("data-key"))
        elif tag == "tr":
            self._row = []
        elif tag == "td" and self._row is not None:
            self._row.append(a.get("data-value", ""))
        elif tag == "figure":
            self.figures.append(a)
        elif tag == "svg":
            self.svgs += 1
        elif tag == "style":
            self._in_style = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._row:
            self.tables[-1]["rows"].append(self._row)
            self._row = None
        elif tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def _page(out: Path) -> _Page:
    p = _Page()
    p.feed((out / "report.html").read_text(encoding="utf-8"))
    return p


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-9)


# --- the files -----------------------------------------------------------------------------------


def test_report_writes_its_files_with_a_manifest(en):
    out, doc = en
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json", "report.html", "report.json", "report.xlsx",
    ]  # fmt: skip
    man = json.loads((out / "manifest.json").read_text())
    assert [f["name"] for f in man["files"]] == ["report.html", "report.xlsx", "report.json"]
    assert man["command"] == "report"
    # the stamp: engine, every input with its SHA-256, paths, seed, sampling
    roles = {i["role"] for i in doc["stamp"]["inputs"]}
    assert {"deal", "scenario"} <= roles
    assert all(len(i["sha256"]) == 64 for i in doc["stamp"]["inputs"])
    assert doc["stamp"]["n_paths"] == [int(PATHS)]
    assert doc["stamp"]["sampling"] == "crude"


def test_report_numbers_are_those_of_run_json(en):
    """The report's Monte Carlo and deterministic documents are what ``run --json`` prints
    for the same scenario, seed and paths (timings aside)."""
    _, doc = en
    (mc,) = doc["monte_carlo"]
    r = run_cli("run", "-s", mc["scenario"], "--paths", PATHS, "--json", "--no-progress")
    alone = json.loads(r.stdout)
    for key in ("tranches", "pool", "cashflows", "n_paths", "seed"):
        assert mc[key] == alone[key], key
    det = json.loads(run_cli("run", "-s", doc["deterministic"]["scenario"], "--json").stdout)
    for key in ("tranches", "pool", "cashflows"):
        assert doc["deterministic"][key] == det[key], key


def test_capital_structure_by_hand(en):
    """The bundled deal: pool 100m, A 95m then Sub 5m: A attaches at 5% and detaches at
    100%, Sub from 0% to 5%."""
    _, doc = en
    a, sub = doc["deal"]["tranches"]
    assert (a["tranche"], a["attachment"], a["detachment"]) == ("A", pytest.approx(0.05), 1.0)
    assert (sub["attachment"], sub["detachment"]) == (0.0, pytest.approx(0.05))
    assert a["share"] == pytest.approx(0.95) and a["coupon"] == 0.0279
    assert doc["deal"]["overcollateralisation"] == pytest.approx(0.0)


def test_bands_bracket_the_mean_balance(en):
    """The 5–95% band of each tranche's balance, from the first paths' ledgers, holds the
    all-path mean in every period where the band is not degenerate, and p05 <= p95."""
    _, doc = en
    (mc,) = doc["monte_carlo"]
    bands = mc["bands"]
    assert bands["sample_paths"] == int(PATHS) if int(PATHS) <= 2000 else 2000
    for name, band in bands["tranche_balance"].items():
        mean = [r[f"{name}.balance_end"] for r in mc["cashflows"]]
        for lo, hi, m in zip(band["p05"], band["p95"], mean, strict=True):
            assert lo <= hi
            assert lo - 1.0 <= m <= hi + 1.0 or hi - lo < 1.0
    hist = mc["loss_rate_hist"]
    assert len(hist) == 1000 and sum(hist) == mc["n_paths"]


# --- the workbook --------------------------------------------------------------------------------


def _sheet_tables(ws: Any) -> dict[str, dict[str, Any]]:
    """A sheet's tables by title: header labels and the rows' values, as written."""
    tables: dict[str, dict[str, Any]] = {}
    rows = list(ws.iter_rows(values_only=True))
    i = 0
    while i < len(rows):
        row = rows[i]
        if row and row[0] is not None and all(v is None for v in row[1:]) and i + 1 < len(rows):
            title, header = row[0], rows[i + 1]
            body = []
            j = i + 2
            while j < len(rows) and any(v is not None for v in rows[j][1:]):
                body.append(rows[j])
                j += 1
            tables[title] = {"header": header, "rows": body}
            i = j
        else:
            i += 1
    return tables


def test_workbook_sheets_and_numbers_equal_the_json(en):
    out, doc = en
    wb = openpyxl.load_workbook(out / "report.xlsx")
    assert wb.sheetnames == [
        "Summary", "Assumptions", "Tranches", "Comparison", "CF huake_mc",
        "CF huake_base", "Stresses",
    ]  # fmt: skip
    (mc,) = doc["monte_carlo"]
    # tranche metrics: each number as in the JSON document
    tables = _sheet_tables(wb["Tranches"])
    t = next(v for k, v in tables.items() if k.startswith("huake_mc"))
    header = list(t["header"])
    for row, tr in zip(t["rows"], mc["tranches"], strict=True):
        assert row[0] == tr["name"]
        for key in ("expected_loss", "expected_loss_se", "default_probability", "wal_years"):
            from abs_engine.report.i18n import label

            assert _close(row[header.index(label(key, "en"))], tr[key]), key
    # cash flows: period by period
    cf = next(iter(_sheet_tables(wb["CF huake_mc"]).values()))
    header = list(cf["header"])
    col = header.index("A Balance (end)")
    se = header.index("A Balance (end) s.e.")
    for row, rec in zip(cf["rows"], mc["cashflows"], strict=True):
        assert _close(row[col], rec["A.balance_end"])
        assert _close(row[se], rec["A.balance_end_se"])
    # the side-by-side table and the stress sheet
    comp = next(iter(_sheet_tables(wb["Comparison"]).values()))
    assert len(comp["rows"]) == len(doc["comparison"])
    for row, rec in zip(comp["rows"], doc["comparison"], strict=True):
        assert (row[0], row[1]) == (rec["tranche"], rec["scenario"])
        assert _close(row[3], rec["expected_loss"])
    stress = _sheet_tables(wb["Stresses"])
    be = next(v for k, v in stress.items() if k.startswith("Breakeven"))
    for row, rec in zip(be["rows"], doc["stress"]["breakeven"], strict=True):
        assert _close(row[2], rec["breakeven_default_rate"])


def test_workbook_number_formats(en):
    out, _ = en
    wb = openpyxl.load_workbook(out / "report.xlsx")
    ws = wb["CF huake_mc"]
    header = [c.value for c in ws[2]]
    bal = ws.cell(row=3, column=header.index("A Balance (end)") + 1)
    assert bal.number_format == "#,##0.00" and isinstance(bal.value, float)
    date = ws.cell(row=3, column=2)
    assert date.number_format == "yyyy-mm-dd" and date.value.year == 2025
    summary = _sheet_tables(wb["Summary"])
    cap = summary["Capital structure"]
    row_a = cap["rows"][0]
    assert row_a[0] == "A" and row_a[1] == 95_000_000
    cells = {c.value: c for c in wb["Summary"]["B"]}
    assert cells[95_000_000].number_format == "#,##0.00"
    assert ws.freeze_panes == "C3"


def test_chinese_workbook_and_labels(zh):
    out, doc = zh
    wb = openpyxl.load_workbook(out / "report.xlsx")
    assert wb.sheetnames[:2] == ["概况", "假设"]
    assert "现金流 huake_mc" in wb.sheetnames
    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in html and "资产支持证券分析报告" in html
    assert "预期损失" in html and "隐含评级" in html
    # the engine's English words in Chinese: principal types, "below BBB-"
    assert "顺序偿付" in html and "低于 BBB-" in html and ">below " not in html
    cells = {c.value for row in wb["概况"].iter_rows() for c in row}
    assert "顺序偿付" in cells and "sequential" not in cells
    assert doc["lang"] == "zh"


# --- the HTML ------------------------------------------------------------------------------------


def test_html_has_every_table_and_chart_and_loads_nothing(en):
    out, doc = en
    page = _page(out)
    # 4 charts for the Monte Carlo scenario, 3 for the deterministic one, each an inline svg
    kinds = [f.get("data-kind") for f in page.figures]
    assert kinds.count("chart_loss_distribution") == 1
    assert kinds.count("chart_balance") == 2 and kinds.count("chart_waterfall") == 2
    assert page.svgs == len(page.figures) == 7
    # nothing loaded from anywhere: no attribute pointing outside the page, no scripts
    assert page.loads == []
    assert not {"script", "link", "img", "iframe", "object", "embed"} & page.tags
    assert not any("url(" in s or "@import" in s for s in page.styles)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "http://" not in html.replace("http://www.w3.org/", "")
    assert "https://" not in html
    # tables: the tranche metrics of the Monte Carlo run match the JSON document
    (mc,) = doc["monte_carlo"]
    t = next(t for t in page.tables if "expected_loss" in t["keys"] and "irr" in t["keys"])
    for row, tr in zip(t["rows"], mc["tranches"], strict=True):
        for key in ("expected_loss", "expected_loss_se", "implied_rating"):
            v = row[t["keys"].index(key)]
            assert _close(v if key == "implied_rating" else float(v), tr[key])


def test_html_cashflow_tables_match_the_json(en):
    out, doc = en
    page = _page(out)
    cf_tables = [t for t in page.tables if t["keys"][:2] == ["period", "payment_date"]]
    (mc,) = doc["monte_carlo"]
    t = cf_tables[0]
    k = t["keys"].index("coverage_ratio_p05")
    for row, rec in zip(t["rows"], mc["cashflows"], strict=True):
        assert _close(float(row[k]) if row[k] else None, rec["coverage_ratio_p05"])


# --- scenarios, stress grids, languages ----------------------------------------------------------


@pytest.mark.slow  # nine scenarios' charts: about 10 s
def test_report_of_a_stress_grid_has_a_column_per_shock(tmp_path):
    doc = _report(tmp_path, "-s", "stress_grid_huake", "-s", "huake_base", paths="500")
    names = [m["scenario"] for m in doc["monte_carlo"]]
    assert names[0] == "huake_mc" and "pd_x2" in names and len(names) == 8
    assert {r["scenario"] for r in doc["comparison"]} == {*names, "huake_base"}
    # the doubled PD loses more on the senior than the base case
    a = {r["scenario"]: r for r in doc["comparison"] if r["tranche"] == "A"}
    assert a["pd_x2"]["expected_loss"] > a["huake_mc"]["expected_loss"]
    wb = openpyxl.load_workbook(tmp_path / "report.xlsx")
    assert sum(n.startswith("CF ") for n in wb.sheetnames) == 9


@pytest.mark.slow  # a two-worker cluster
def test_report_on_a_cluster_has_the_same_numbers(tmp_path, en):
    _, doc = en
    r = run_cli(
        "report", "--out", tmp_path, "--paths", PATHS, "--no-progress", "--cluster", "local:2"
    )
    assert r.returncode == 0, r.stderr
    again = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    for key in ("monte_carlo", "deterministic", "comparison", "stress"):
        a, b = again[key], doc[key]
        if key == "monte_carlo":
            a = [{k: v for k, v in m.items() if k not in ("seconds", "compile_seconds")} for m in a]
            b = [{k: v for k, v in m.items() if k not in ("seconds", "compile_seconds")} for m in b]
        assert a == b, key


def test_deterministic_only_report(tmp_path):
    doc = _report_det(tmp_path)
    assert doc["monte_carlo"] == [] and doc["deterministic"]["scenario"] == "huake_base"
    assert "sampling" not in doc["stamp"]


def _report_det(out: Path) -> dict[str, Any]:
    r = run_cli("report", "--out", out, "-s", "huake_base", "--no-progress")
    assert r.returncode == 0, r.stderr
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def test_charts_fall_back_to_english_without_a_cjk_font(monkeypatch):
    from abs_engine.report import charts

    monkeypatch.setattr(charts, "cjk_font", lambda: None)
    with pytest.warns(RuntimeWarning, match="no CJK font"):
        assert charts.chart_language("zh") == "en"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert charts.chart_language("en") == "en"


def test_chinese_charts_have_no_missing_glyphs(deal_report):
    """With a CJK font, making the Chinese report (its charts' labels) raised no warning: no
    missing glyph, no fallback to English."""
    from abs_engine.report import charts

    if charts.cjk_font() is None:
        pytest.skip("no CJK font on this machine (install fonts-noto-cjk)")
    _, caught = deal_report("zh")
    assert [str(w.message) for w in caught] == []


def test_sheet_names_are_excel_safe_and_distinct():
    from abs_engine.report.tables import Section, Table
    from abs_engine.report.workbook import sheet_titles

    long = "x" * 40
    tables = [
        Table("t", [], [], "CF1", "a:b/c"),
        Table("t", [], [], "CF2", "a?b*c"),
        Table("t", [], [], "CF3", long),
        Table("t", [], [], "CF4", long + "y"),
    ]
    titles = list(sheet_titles([Section("cashflows", "c", tables)], "en").values())
    assert len(set(titles)) == 4
    assert all(len(t) <= 31 and not set("[]:*?/\\") & set(t) for t in titles)


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-s", "huake_mc", "-s", "huake_mc"], "two scenarios are named 'huake_mc'"),
        (["-s", "no_such_scenario"], "no_such_scenario"),
        (["-s", "huake_base", "--paths", "10"], "--paths"),
        (["--lang", "fr"], "--lang"),
        (["--paths", "0"], "--paths"),
    ],
)
def test_bad_report_arguments_fail_cleanly_and_write_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    r = run_cli("report", "--out", out, "--no-progress", *args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_report_needs_out():
    r = run_cli("report")
    assert r.returncode == 2 and "--out" in r.stderr


def test_report_into_a_file_fails_and_keeps_it(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    before = snapshot(tmp_path)
    r = run_cli("report", "--out", target, "--no-progress")
    assert r.returncode != 0 and "--out" in r.stderr and "Traceback" not in r.stderr
    assert snapshot(tmp_path) == before


def test_a_failure_while_writing_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    """An error while the workbook is written (after the HTML is staged): nothing of the new
    report lands in --out, and an earlier report there is untouched."""
    from abs_engine.report import deliverable

    out = tmp_path / "out"
    _report_det(out)
    before = snapshot(out)

    def boom(*a: Any, **k: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(deliverable, "write_workbook", boom)
    r = run_cli("report", "--out", out, "-s", "huake_base", "--no-progress")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert snapshot(out) == before
