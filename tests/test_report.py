"""``abs-engine report``: the HTML report, the Excel workbook and their JSON document.

The workbook is read back with openpyxl and the HTML parsed with the standard library; their
numbers are compared with ``report.json`` and with what ``abs-engine run --json`` prints for
the same seed and paths. The browser test is in test_report_browser.py."""

from __future__ import annotations

import datetime as dt
import json
import math
import warnings
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import REPORT_PATHS, ROOT, run_cli, snapshot

from abs_engine.report.i18n import label

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
        "Summary", "Assumptions", "Tranches", "Pool", "Comparison", "CF huake_mc",
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
            assert _close(row[header.index(label(key, "en"))], tr[key]), key
    # cash flows: period by period
    cf = next(iter(_sheet_tables(wb["CF huake_mc"]).values()))
    header = list(cf["header"])
    col = header.index("A Balance (end)")
    se = header.index("A Balance (end) s.e.")
    for row, rec in zip(cf["rows"], mc["cashflows"], strict=True):
        assert _close(row[col], rec["A.balance_end"])
        assert _close(row[se], rec["A.balance_end_se"])
    # the pool's metrics (a validator: the report had none): the Monte Carlo means and
    # standard errors, and the deterministic scenario's pool summary
    pool = _sheet_tables(wb["Pool"])
    mc_pool = next(v for k, v in pool.items() if k.endswith("(Monte Carlo)"))
    (row,) = mc_pool["rows"]
    header = list(mc_pool["header"])
    assert row[0] == mc["scenario"]
    for key in ("default_rate", "loss_rate", "support_paid", "accelerated_probability"):
        assert _close(row[header.index(label(key, "en"))], mc["pool"][key]["mean"]), key
        assert _close(row[header.index(f"{label(key, 'en')} s.e.")], mc["pool"][key]["se"]), key
    det_pool = next(v for k, v in pool.items() if k.endswith("(deterministic)"))
    (row,) = det_pool["rows"]
    header = list(det_pool["header"])
    det = doc["deterministic"]
    assert row[0] == det["scenario"]
    for key in ("defaulted", "cumulative_default_rate", "realised_loss", "support_paid"):
        assert _close(row[header.index(label(key, "en"))], det["pool"][key]), key
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
    # the summary's first and last payment dates are dates too (they were text)
    dates = [c for c in wb["Summary"]["B"] if isinstance(c.value, dt.datetime)]
    assert [c.value.date().isoformat() for c in dates] == ["2025-10-15", "2028-07-17"]
    assert all(c.number_format == "yyyy-mm-dd" for c in dates)


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
    # a pool column whose label names the pool already is not prefixed again (a validator:
    # the deterministic cash flows' collections read 资产池 资产池回收款)
    texts = [
        c.value for ws in wb for row in ws.iter_rows() for c in row if isinstance(c.value, str)
    ]
    assert "资产池回收款" in texts and not [t for t in texts if "资产池 资产池" in t]
    assert "资产池 资产池" not in html


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


def test_html_ids_are_unique_and_every_reference_resolves(en):
    """The charts share one page: no id twice (matplotlib names a glyph ``DejaVuSans-31`` in
    every chart), and every ``#id`` a chart or the contents use is on the page."""
    import re
    from collections import Counter

    out, _ = en
    html = (out / "report.html").read_text(encoding="utf-8")
    ids = Counter(re.findall(r'\sid="([^"]+)"', html))
    assert [k for k, n in ids.items() if n > 1] == []
    refs = set(re.findall(r'href="#([^"]+)"', html)) | set(re.findall(r"url\(#([^)]+)\)", html))
    assert refs and refs <= set(ids)


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


def test_a_deal_path_that_is_not_utf8_is_written_escaped(tmp_path):
    """Linux allows any bytes in a file name; Python holds a non-UTF-8 one as a lone
    surrogate, which report.html and report.json could not encode: ``report`` ran the whole
    simulation, then failed with exit 1. The path is written escaped, and the JSON reads
    back the same path."""
    import os

    from abs_engine.cli import main

    deal = Path(os.fsdecode(bytes(tmp_path) + b"/d\xff.toml"))
    deal.write_bytes((ROOT / "waterfalls" / "huake_2025.toml").read_bytes())
    out = tmp_path / "out"
    assert main(["report", str(deal), "-s", "huake_base", "--out", str(out)]) == 0
    doc = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert doc["deal"]["source"] == str(deal)
    assert "d\\udcff.toml" in (out / "report.html").read_text(encoding="utf-8")


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


# --- hostile input: names that are HTML, Excel formulas, matplotlib mathematics ------------------

#: the rated tranches of the hostile deal, most senior first (a zero-balance one among them), and
#: their balances (with the subordinated 5m: the bundled deal's 100m pool)
# names may not start with "=", "+", "-" or "@" (a spreadsheet would run the CSV cell: the
# schema refuses them); a description may, and the workbook keeps it text
HOSTILE_RATED = [
    "x=cmd|' /C calc'!A0", "<script>alert(1)</script>", "B & \"C\" 'q'", "S+SUM(1,2)", "2-2+3",
    "x@x", "L" * 64, "Z0", "A.2 $\\frac$",
]  # fmt: skip
HOSTILE_BALANCES = [60e6, 10e6, 5e6, 5e6, 5e6, 3e6, 2e6, 0.0, 5e6]
HOSTILE_SUB = "次级 Sub"
HOSTILE_DEAL = 'y=HYPERLINK("http://x","y") <b>交易</b> $\\frac$'
HOSTILE_MC = "m=1+1 <b>压力</b> $x^$ & '情景'"
HOSTILE_DET = 'd@SUM(A1) "det"'


def _toml(s: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(s, ensure_ascii=False)


def hostile_files(folder: Path) -> tuple[Path, Path, Path]:
    """The bundled deal with ten tranches named to break an HTML page, an Excel sheet and
    matplotlib (``$...$`` is mathematics to it); its Monte Carlo and deterministic scenarios
    renamed likewise (the deterministic one's description with a control character and a
    non-character, which names may not hold)."""
    import re

    root = ROOT
    t = (root / "waterfalls" / "huake_2025.toml").read_text(encoding="utf-8")
    t = t.replace(
        'name = "Huake Chuanghe IP ABS 2025-1 (illustrative)"', f"name = {_toml(HOSTILE_DEAL)}"
    )
    blocks = "".join(
        f"[[tranches]]\nname = {_toml(n)}\nbalance = {b}\n"
        'coupon = { kind = "fixed", rate = 0.03 }\n\n'
        for n, b in zip(HOSTILE_RATED, HOSTILE_BALANCES, strict=True)
    )
    t = re.sub(r'\[\[tranches\]\]\nname = "A"\n.*?\n\n', lambda m: blocks, t, count=1, flags=re.S)
    rated = ", ".join(_toml(n) for n in HOSTILE_RATED)
    t = t.replace('name = "Sub"', f"name = {_toml(HOSTILE_SUB)}")
    t = t.replace('{ kind = "pay_interest", tranches = ["A"] }',
                  f'{{ kind = "pay_interest", tranches = [{rated}] }}')  # fmt: skip
    t = t.replace('tranches = ["A", "Sub"]', f"tranches = [{rated}, {_toml(HOSTILE_SUB)}]")
    t = t.replace('tranches = ["A"], amount', f"tranches = [{rated}], amount")
    t = t.replace('["A"]', f"[{_toml(HOSTILE_RATED[0])}]").replace(
        '["Sub"]', f"[{_toml(HOSTILE_SUB)}]"
    )
    t = t.replace('tranche = "Sub"', f"tranche = {_toml(HOSTILE_SUB)}")
    deal = folder / "hostile.toml"
    deal.write_text(t, encoding="utf-8")
    mc = (root / "scenarios" / "huake_mc.toml").read_text(encoding="utf-8")
    mc = mc.replace('name = "huake_mc"', f"name = {_toml(HOSTILE_MC)}")
    mc = mc.replace('description = "', 'description = "=2+2 <img src=x onerror=alert(1)> ')
    det = (root / "scenarios" / "huake_base.toml").read_text(encoding="utf-8")
    det = det.replace('name = "huake_base"', f"name = {_toml(HOSTILE_DET)}")
    det = det.replace('description = "', 'description = "ctl\\u0001 nc\\uFFFF ', 1)
    (folder / "mc.toml").write_text(mc, encoding="utf-8")
    (folder / "det.toml").write_text(det, encoding="utf-8")
    return deal, folder / "mc.toml", folder / "det.toml"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The hostile deal's report (Monte Carlo at 300 paths and deterministic; about 8 s)."""
    folder = tmp_path_factory.mktemp("hostile")
    deal, mc, det = hostile_files(folder)
    out = folder / "out"
    r = run_cli("report", deal, "-s", mc, "-s", det, "--out", out, "--paths", "300",
                "--no-progress")  # fmt: skip
    assert r.returncode == 0, r.stderr
    return out, json.loads((out / "report.json").read_text(encoding="utf-8"))


def test_hostile_names_are_text_in_the_workbook_never_formulas(hostile):
    """openpyxl stores a string starting with "=" as a formula: the deal, tranche and scenario
    names (and header labels made of them) must come back as the same text, none a formula,
    the ones Excel would read as a formula when edited marked with the quote prefix."""
    out, doc = hostile
    wb = openpyxl.load_workbook(out / "report.xlsx")
    texts = set()
    for ws in wb:
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f", (ws.title, c.coordinate, c.value)
                if isinstance(c.value, str):
                    texts.add(c.value)
                    if c.value[:1] in "=+-@":
                        assert c.quotePrefix, (ws.title, c.coordinate, c.value)
    assert {HOSTILE_DEAL, *HOSTILE_RATED, HOSTILE_SUB, HOSTILE_MC} <= texts
    assert f"{HOSTILE_RATED[0]} Interest paid" in texts  # a header made of a name
    # the control character and the non-character (no xlsx file can hold them) as U+FFFD
    assert HOSTILE_DET in texts
    assert any(t.startswith("ctl\ufffd nc\ufffd ") for t in texts)
    # the description, with the scenario's parameters
    assert any(t.startswith("=2+2 <img") for t in texts)
    assert [t["tranche"] for t in doc["deal"]["tranches"]] == [*HOSTILE_RATED, HOSTILE_SUB]
    assert all(len(n) <= 31 for n in wb.sheetnames) and len(set(wb.sheetnames)) == 8


def test_hostile_names_are_escaped_in_the_html(hostile):
    out, doc = hostile
    page = _page(out)
    assert not {"script", "img", "b"} & page.tags
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html and "<img" not in html and "\x01" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "=HYPERLINK(&#34;http://x&#34;,&#34;y&#34;) &lt;b&gt;交易&lt;/b&gt;" in html
    # every table cell of a tranche column holds the name as the JSON has it
    cap = next(t for t in page.tables if "attachment" in t["keys"])
    assert [r[0] for r in cap["rows"]] == [t["tranche"] for t in doc["deal"]["tranches"]]
    # four charts for the Monte Carlo scenario, three for the deterministic one ("$" is no
    # mathematics to matplotlib here: "$\frac$" would not parse)
    assert page.svgs == len(page.figures) == 7


def test_hostile_report_columns_and_capital_structure(hostile):
    """A tranche name with a dot labels its columns whole; the zero-balance tranche attaches
    and detaches at the same point; the note says list order is seniority."""
    out, doc = hostile
    wb = openpyxl.load_workbook(out / "report.xlsx")
    cf = _sheet_tables(wb[next(n for n in wb.sheetnames if n.startswith("CF m=1+1"))])
    header = list(next(iter(cf.values()))["header"])
    assert "A.2 $\\frac$ Balance (end)" in header and "A.2 $\\frac$ Balance (end) s.e." in header
    rows = {t["tranche"]: t for t in doc["deal"]["tranches"]}
    assert rows["Z0"]["attachment"] == rows["Z0"]["detachment"] == pytest.approx(0.10)
    assert rows[HOSTILE_RATED[0]]["attachment"] == 0.40  # exactly: (100m - 60m) / 100m
    assert rows[HOSTILE_SUB]["detachment"] == 0.05
    summary = (out / "report.html").read_text(encoding="utf-8")
    assert "the deal schema takes as their seniority" in summary


def test_deterministic_scenario_named_like_a_coverage_column_is_refused(tmp_path):
    """The coverage table's columns are period, payment date and one per deterministic
    scenario: a scenario named "period" stops before anything runs, naming its file, the field
    and the value (it crashed in pandas)."""
    sc = tmp_path / "period.toml"
    root = ROOT
    base = (root / "scenarios" / "huake_base.toml").read_text(encoding="utf-8")
    sc.write_text(base.replace('name = "huake_base"', 'name = "period"'), encoding="utf-8")
    out = tmp_path / "out"
    r = run_cli("report", "-s", sc, "--out", out, "--no-progress")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert str(sc) in r.stderr and "name:" in r.stderr and "'period'" in r.stderr
    assert not out.exists()


# --- one path, other files in --out ---------------------------------------------------------------


@pytest.mark.slow  # a few seconds: run by .ci/run and -m slow
def test_one_path_report_has_no_band_and_dashes_for_standard_errors(tmp_path):
    """At one path no standard error exists: "–" in the HTML, an empty cell in the workbook,
    null in the JSON; the charts have no band, and the caption says why (not "the pool is too
    large")."""
    doc = _report(tmp_path, "-s", "huake_mc", paths="1")
    (mc,) = doc["monte_carlo"]
    assert mc["bands"] == {"sample_paths": 0} and mc["tranches"][0]["expected_loss_se"] is None
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "needs at least two paths" in html and "too large" not in html
    page = _page(tmp_path)
    t = next(t for t in page.tables if "expected_loss_se" in t["keys"] and "irr" in t["keys"])
    assert all(r[t["keys"].index("expected_loss_se")] == "" for r in t["rows"])
    assert ">nan<" not in html.lower() and ">none<" not in html.lower()
    wb = openpyxl.load_workbook(tmp_path / "report.xlsx")
    tr = next(iter(_sheet_tables(wb["Tranches"]).values()))
    col = list(tr["header"]).index("EL s.e.")
    assert all(row[col] is None for row in tr["rows"])


def test_report_into_a_folder_with_other_files_keeps_them(tmp_path):
    """--out may hold other files: they stay as they were, and an older report's files are
    replaced."""
    (tmp_path / "notes.txt").write_text("keep me", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "report.html").write_text("not ours", encoding="utf-8")
    (tmp_path / "report.html").write_text("an old report", encoding="utf-8")
    _report_det(tmp_path)
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert (tmp_path / "sub" / "report.html").read_text(encoding="utf-8") == "not ours"
    assert "<!DOCTYPE html>" in (tmp_path / "report.html").read_text(encoding="utf-8")
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert [f["name"] for f in man["files"]] == ["report.html", "report.xlsx", "report.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "manifest.json", "notes.txt", "report.html", "report.json", "report.xlsx", "sub",
    ]  # fmt: skip


def test_report_into_a_read_only_folder_fails_before_running(tmp_path, monkeypatch):
    """--out inside a folder nothing can be created in (simulated: the tests may run as root,
    whom permissions do not stop): exit 2 before anything runs, naming --out and the folder,
    and nothing left there."""
    import tempfile

    from abs_engine.report import writers

    ro = tmp_path / "ro"
    ro.mkdir()
    real = tempfile.mkdtemp

    def mkdtemp(*a: Any, dir: Any = None, **k: Any) -> str:
        if dir is not None and Path(dir) == ro:
            raise PermissionError(13, "Permission denied")
        return real(*a, dir=dir, **k)

    monkeypatch.setattr(writers.tempfile, "mkdtemp", mkdtemp)
    r = run_cli("report", "--out", ro / "out", "-s", "huake_base", "--no-progress")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--out is not writable" in r.stderr and str(ro) in r.stderr
    assert list(ro.iterdir()) == []


# --- the numbers of the other tables --------------------------------------------------------------


def _html_table(page: _Page, first_keys: list[str]) -> dict[str, Any]:
    return next(t for t in page.tables if t["keys"][: len(first_keys)] == first_keys)


def test_deterministic_cash_flows_large_obligors_and_coverage_equal_the_json(en):
    """Beyond the Monte Carlo tables: the deterministic cash flows, the large-obligor test and
    the coverage table, each cell in the HTML (data-value) and the workbook equal to
    report.json."""
    out, doc = en
    page = _page(out)
    wb = openpyxl.load_workbook(out / "report.xlsx")
    det = doc["deterministic"]
    # the deterministic tranches, with what supports and reserves paid each (a validator:
    # the table had neither, and 15.2m yuan of guarantee draws appeared nowhere)
    t = _html_table(page, ["tranche", "balance", "principal_paid", "interest_paid", "loss"])
    for row, rec in zip(t["rows"], det["tranches"], strict=True):
        for key in ("support_received", "reserve_received", "residual_paid"):
            assert _close(float(row[t["keys"].index(key)]), rec[key]), key
    # deterministic cash flows
    t = _html_table(page, ["period", "payment_date", "pool.collections"])
    sheet = next(iter(_sheet_tables(wb[f"CF {det['scenario']}"]).values()))
    for i, rec in enumerate(det["cashflows"]):
        for key in ("pool.collections", "pool.defaults", "A.principal_paid", "Sub.balance_end",
                    "coverage_ratio"):  # fmt: skip
            k = t["keys"].index(key)
            assert _close(float(t["rows"][i][k]), rec[key]), key
            assert _close(sheet["rows"][i][k], rec[key]), key
        assert sheet["rows"][i][1].date().isoformat() == rec["payment_date"][:10]
    stress = _sheet_tables(wb["Stresses"])
    # the large-obligor test
    lot = doc["stress"]["large_obligor_test"]
    keys = list(lot["rows"][0])
    t = _html_table(page, keys[:2])
    x = next(v for k, v in stress.items() if k.startswith("Large-obligor test"))
    for hrow, xrow, rec in zip(t["rows"], x["rows"], lot["rows"], strict=True):
        for k, key in enumerate(keys):
            want = rec[key]
            got = hrow[k]
            if isinstance(want, bool):
                assert got == ("true" if want else "false") and xrow[k] is want, key
            else:
                assert _close(float(got), want) and _close(xrow[k], want), key
    assert x["header"][0] == "Largest obligors defaulted"  # a label, not the JSON key
    # the coverage table
    cov = doc["stress"]["coverage_ratio"]
    t = _html_table(page, ["period", "payment_date", det["scenario"]])
    x = next(v for k, v in stress.items() if k.startswith("Coverage ratio by period"))
    for hrow, xrow, rec in zip(t["rows"], x["rows"], cov, strict=True):
        assert _close(float(hrow[2]), rec[det["scenario"]])
        assert _close(xrow[2], rec[det["scenario"]])


def test_percent_columns_hold_decimals(en):
    """A percentage cell holds the decimal (0.95, not 95) with a percent format."""
    out, doc = en
    wb = openpyxl.load_workbook(out / "report.xlsx")
    ws = wb["Summary"]
    cells = {c.value: c for row in ws.iter_rows() for c in row if c.value is not None}
    share = cells[doc["deal"]["tranches"][0]["share"]]
    assert share.value == pytest.approx(0.95) and share.number_format == "0.00%"
    ws = wb["Comparison"]
    el = next(c for row in ws.iter_rows(min_row=3) for c in row[3:4] if c.value is not None)
    assert el.number_format == "0.0000%" and 0.0 <= el.value < 1.0


def test_chinese_report_translates_every_column(zh):
    """No column heading of the Chinese workbook is an engine key left untranslated
    (``defaulted_obligors``, ``support_paid``, ...), and the engine's words in cells (the
    waterfall's status, input roles) are Chinese too."""
    import re

    out, doc = zh
    wb = openpyxl.load_workbook(out / "report.xlsx")
    key = re.compile(r"^[a-z0-9_]+$")
    scenarios = {s["name"] for s in doc["scenarios"]}  # the coverage table's columns
    for ws in wb:
        for title, table in _sheet_tables(ws).items():
            heads = [h for h in table["header"] if isinstance(h, str) and h not in scenarios]
            assert not [h for h in heads if key.match(h)], (ws.title, title, heads)
    cells = {c.value for ws in wb for row in ws.iter_rows() for c in row}
    assert "正常" in cells and "normal" not in cells  # the deterministic cash flows' status
    assert "交易文件" in cells and "情景文件" in cells  # input roles
    assert "兑付不足概率" in cells and "附着点" in cells and "本息覆盖倍数" in cells


# --- the charts and the formatting, piece by piece ------------------------------------------------


def test_chart_text_escapes_mathematics_and_shortens_names():
    from abs_engine.report.charts import _text

    assert _text("$\\frac$") == "\\$\\frac\\$"
    assert _text("a\x01b") == "ab"
    assert _text("L" * 64, 22) == "L" * 21 + "…"
    assert _text("short", 22) == "short"


def _overlaps(a: Any, b: Any) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_chart_legends_lie_off_the_data():
    """Ten tranches, long names: the legends of the balance, coverage and loss charts lie
    beside the axes, the waterfall's under them, none on the plotting area; the colours are
    distinct."""
    from abs_engine.report import charts

    names = [f"Tranche {k} " + "L" * 40 for k in range(10)]
    tranches = [{"tranche": n, "attachment": 0.1 * (9 - k), "detachment": 0.1 * (10 - k)}
                for k, n in enumerate(names)]  # fmt: skip
    doc = {"deal": {"tranches": tranches}}
    records = [
        {"period": p, "coverage_ratio": 1.0, "pool.collections": 9e6,
         **{f"{n}.{i}": 1e6 for n in names for i in ("balance_end", "interest_paid",
                                                        "principal_paid")}}
        for p in range(1, 13)
    ]  # fmt: skip
    mc = {"scenario": "s", "loss_rate_hist": [100] + [1] * 999}
    figs = [
        charts.balance_chart(doc, "s", records, None, "en"),
        charts.waterfall_chart(doc, "s", records, "en"),
        charts.loss_distribution(doc, mc, "en"),
    ]
    for fig in figs:
        fig.draw_without_rendering()  # runs the constrained layout
        (ax,) = fig.axes
        legend = ax.get_legend() or fig.legends[0]
        box = legend.get_window_extent()
        assert not _overlaps(box, ax.get_window_extent()), fig
    assert len(set(charts._colours(10))) == 10


def test_every_tranche_is_in_the_legends_and_missing_glyphs_warn_once():
    """matplotlib leaves labels starting with "_" out of the legend it gathers: a tranche
    "_Sub" was missing from the balance chart's. A name with a glyph no font has gave a raw
    matplotlib warning for every time it was drawn (39); now one warning. The character is
    the Egyptian hieroglyph U+13000 (in neither DejaVu Sans nor Noto Sans CJK): the emoji
    U+1F600 this test used first is drawn, with no warning, from matplotlib 3.11's DejaVu."""
    import warnings

    from abs_engine.report import charts

    names = ["_A", "_Sub\U00013000"]
    tranches = [{"tranche": n, "attachment": a, "detachment": d}
                for n, a, d in (("_A", 0.05, 1.0), ("_Sub\U00013000", 0.0, 0.05))]  # fmt: skip
    doc = {"deal": {"tranches": tranches}, "monte_carlo": [], "deterministic": {
        "scenario": "s", "cashflows": [
            {"period": p, "coverage_ratio": 1.0, "pool.collections": 9e6,
             **{f"{n}.{i}": 1e6 for n in names for i in ("balance_end", "interest_paid",
                                                            "principal_paid")}}
            for p in range(1, 5)]}}  # fmt: skip
    records = doc["deterministic"]["cashflows"]
    fig = charts.balance_chart(doc, "s", records, None, "en")
    legend = fig.axes[0].get_legend() or fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == names
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        charts.report_charts(doc, "en")
    glyphs = [str(w.message) for w in caught if "glyph" in str(w.message).lower()]
    assert len(glyphs) == 1 and "\U00013000" in glyphs[0], glyphs


def test_coverage_spike_does_not_flatten_the_chart():
    """A last-period coverage ratio of 27 (notes nearly repaid) with the rest near 0.9: the y
    axis stops at three times the typical level and the spike's value is written."""
    from abs_engine.report import charts

    cov = [0.95, 0.9, 0.88, 0.87, 0.9, 27.2]
    records = [{"period": p + 1, "coverage_ratio": c} for p, c in enumerate(cov)]
    fig = charts.coverage_chart("s", records, None, "en")
    (ax,) = fig.axes
    assert ax.get_ylim()[1] == pytest.approx(3.0)
    assert "27.20" in [t.get_text() for t in ax.texts]
    # no spike: the axis is left to matplotlib
    flat = charts.coverage_chart("s", records[:-1], None, "en")
    assert flat.axes[0].get_ylim()[1] < 1.5


def test_missing_and_infinite_values_format_as_dashes_and_infinity():
    from abs_engine.report.tables import fmt_value
    from abs_engine.report.workbook import _cell_value

    for kind in ("money", "pct", "pct4", "ratio", "years", "int", "text", "date"):
        assert fmt_value(None, kind) == "–" and fmt_value(float("nan"), kind) == "–"
    assert fmt_value(float("inf"), "ratio") == "∞" and fmt_value(float("-inf"), "pct") == "−∞"
    assert _cell_value(float("nan"), "ratio", "en") is None
    assert _cell_value(float("inf"), "ratio", "en") == "∞"


def test_sheet_titles_drop_control_characters_and_edge_apostrophes():
    from abs_engine.report.tables import Section, Table
    from abs_engine.report.workbook import sheet_titles

    tables = [Table("t", [], [], "CF1", "'a\x01b'"), Table("t", [], [], "CF2", "x" * 27 + "'yy")]
    titles = list(sheet_titles([Section("cashflows", "c", tables)], "en").values())
    assert titles[0] == "CF 'ab"
    assert all(not t.endswith("'") and t.isprintable() and len(t) <= 31 for t in titles)


def test_residual_support_and_payments_are_in_the_monte_carlo_tables(en):
    """The Monte Carlo cash-flow table shows the residual paid where any is (Sub's excess
    spread was in the JSON and the console, in no report table), and the tranche table its
    principal, interest, residual and support received, each with its standard error; the
    summary's last payment date says what it is (it was labelled the legal final date)."""
    out, doc = en
    page = _page(out)
    (mc,) = doc["monte_carlo"]
    cf = next(t for t in page.tables if t["keys"][:2] == ["period", "payment_date"])
    assert "Sub.residual_paid" in cf["keys"] and "Sub.residual_paid_se" in cf["keys"]
    assert "A.residual_paid" not in cf["keys"]  # A is paid no residual
    k = cf["keys"].index("Sub.residual_paid")
    for row, rec in zip(cf["rows"], mc["cashflows"], strict=True):
        assert _close(float(row[k].replace(",", "")) if row[k] else None,
                      rec["Sub.residual_paid"])  # fmt: skip
    tr = next(t for t in page.tables if "implied_rating" in t["keys"])
    for key in ("principal_paid", "interest_paid_se", "residual_paid", "support_received_se"):
        assert key in tr["keys"], key
    wb = openpyxl.load_workbook(out / "report.xlsx")
    labels = [c.value for c in wb["Summary"]["A"]]
    assert "Last payment date" in labels and "Legal final payment date" not in labels


def test_tiny_shares_show_their_digits_in_the_workbook():
    """An expected loss of 1.7e-7 (an importance-sampled AAA senior) showed as 0.0000%."""
    from abs_engine.report.workbook import _number_format

    assert _number_format("pct4", 0.0123) == _number_format("pct4", 0.0) == "0.0000%"
    assert _number_format("pct4", 1.67e-7) == "0.000000%"  # 0.000017%: two digits shown
    assert _number_format("pct4", 1.44e-8) == "0.0000000%"
    assert _number_format("money", 1e-9) == "#,##0.00"


def test_deal_warnings_are_handed_over_with_the_report_and_the_json(tmp_path):
    """A deal's warnings (here: payment dates past the Chinese calendar's data rolled on
    weekends only) were on stderr alone: they are in report.json, its HTML and workbook,
    and in the documents of run --json and --out."""
    deal = ROOT / "waterfalls" / "huake_2025.toml"
    text = deal.read_text()
    weekends = 'calendar = { kind = "weekends" }'
    assert weekends in text
    p = tmp_path / "d.toml"
    p.write_text(text.replace(weekends, 'calendar = { kind = "named", name = "CN" }'))
    out = tmp_path / "r"
    r = run_cli("report", p, "--out", out, "-s", "huake_base", "--no-progress")
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "report.json").read_text(encoding="utf-8"))
    (warning,) = [w for w in doc["deal"]["warnings"] if "weekends only" in w]
    assert "weekends only" in (out / "report.html").read_text(encoding="utf-8")
    wb = openpyxl.load_workbook(out / "report.xlsx")
    cells = [c.value for row in wb["Assumptions"].iter_rows() for c in row]
    assert warning in cells
    r = run_cli("run", p, "-s", "huake_base", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["deal_warnings"] == doc["deal"]["warnings"]
    r = run_cli("run", p, "--paths", "200", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["deal_warnings"] == doc["deal"]["warnings"]


def test_chart_ticks_keep_their_digits_on_small_axes():
    """A 5M-yuan deal's axis read "0M" then blanks, and 1.5M, 2M and 2.5M all read "2M"; a
    loss axis under 3% read 0%, 0%, 1%, 2%, 2%."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from abs_engine.report import charts

    fig, ax = plt.subplots()
    try:
        ax.set_ylim(0, 2.6e6)
        ax.set_xlim(0, 0.025)
        charts._millions(ax)
        ax.xaxis.set_major_formatter(charts._percent())
        fig.canvas.draw()
        ys = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        xs = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    finally:
        plt.close(fig)
    assert len(set(ys)) == len(ys) and "500k" in ys and "1.5M" in ys
    assert len(set(xs)) == len(xs) and "0.50%" in xs
    # an all-zero series' axis (about ±0.06) has no milli prefix to read as millions
    assert not any(charts._yuan(v).endswith("m") for v in (-0.04, 0.02, 0.06))
    assert charts._yuan(2e9) == "2B" and charts._yuan(0.0) == "0"


def test_names_and_descriptions_print_as_written(tmp_path: Path, capsys: pytest.CaptureFixture):
    """The console reads no markup in names (a deal named ``[/x]`` stopped ``run`` with rich's
    MarkupError and a traceback) and prints no control character of a description (an ESC
    cleared the screen): names may hold none, descriptions show U+FFFD for them."""
    import abs_engine as ae
    from abs_engine.cli import main

    doc = ae.load_deal().model_dump(mode="json", exclude_none=True)
    doc["name"] = "Huake[/x] [red]RED[/red]"
    deal = tmp_path / "deal.json"
    deal.write_text(json.dumps(doc), encoding="utf-8")
    scenario = tmp_path / "sc.json"
    scenario.write_text(json.dumps({"schema_version": 1, "kind": "deterministic", "name": "s",
                                    "description": "line\x1b[2J\nnext\ttab"}))  # fmt: skip
    assert main(["run", str(deal), "-s", str(scenario)]) == 0
    out = capsys.readouterr().out
    assert "Huake[/x] [red]RED[/red]" in out
    assert "\x1b" not in out
    assert "line\ufffd[2J\nnext" in out


def test_a_pro_rata_class_has_one_attachment_and_detachment_point():
    """A validator's stack: A1 90 and A2 60 pro rata (one class), B 30, Sub 20 on a pool of
    200: A1 and A2 both attach at 25% and detach at 100% (they were given 55%-100% and
    25%-55%, as if A2 were junior to A1), B 10%-25%, Sub 0%-10%."""
    from conftest import base_deal, obligor

    import abs_engine as ae
    from abs_engine.report.content import capital_structure
    from abs_engine.schema import parse_deal

    doc = base_deal(
        pool={"obligors": [obligor("O", 200.0)]},
        tranches=[
            {"name": "A1", "balance": 90.0, "principal": "pro_rata", "pari_passu": "A"},
            {"name": "A2", "balance": 60.0, "principal": "pro_rata", "pari_passu": "A"},
            {"name": "B", "balance": 30.0},
            {"name": "Sub", "balance": 20.0, "principal": "residual"},
        ],
        waterfalls={"normal": [
            {"kind": "pay_principal", "tranches": ["A1", "A2"]},
            {"kind": "pay_principal", "tranches": ["B", "Sub"]},
            {"kind": "pay_residual", "tranche": "Sub"},
        ]},
    )  # fmt: skip
    rows = capital_structure(ae.compile_deal(parse_deal(doc)))
    points = [(r["tranche"], r["attachment"], r["detachment"]) for r in rows]
    assert points == [
        ("A1", pytest.approx(0.25), 1.0),
        ("A2", pytest.approx(0.25), 1.0),
        ("B", pytest.approx(0.10), pytest.approx(0.25)),
        ("Sub", 0.0, pytest.approx(0.10)),
    ]


def test_the_report_states_each_coupons_terms_and_the_base_rate_applied():
    """A validator's floater (base + 0.5%, floor 0, cap 6%, ACT/360) and a fixed tranche
    stepping up 1% from period 3: the capital structure states the floor, cap, step-up and
    day count (it showed "base+0.5000%" alone); each scenario states the base rate its
    floating coupons were set on, the deal's 2% plus a 25 bp shock (it showed none)."""
    from conftest import base_deal, obligor

    import abs_engine as ae
    from abs_engine.report.content import _scenario_entry, capital_structure
    from abs_engine.schema import parse_deal

    doc = base_deal(
        base_rate=0.02,
        pool={"obligors": [obligor("O", 100.0)]},
        tranches=[
            {"name": "A", "balance": 80.0, "day_count": "ACT/360",
             "coupon": {"kind": "floating", "spread": 0.005, "floor": 0.0, "cap": 0.06}},
            {"name": "B", "balance": 20.0, "coupon": {"kind": "fixed", "rate": 0.03},
             "step_up": {"from_period": 3, "spread": 0.01}},
        ],
    )  # fmt: skip
    for step in doc["waterfalls"]["normal"]:
        step["tranches"] = ["A", "B"]
    cd = ae.compile_deal(parse_deal(doc))
    a, b = capital_structure(cd)
    assert a["coupon_terms"] == "base + 0.5000%, floor 0.0000%, cap 6.0000%"
    assert (a["day_count"], b["day_count"]) == ("ACT/360", cd.deal.dates.day_count)
    assert b["coupon_terms"] == "fixed 3.0000%; +1.0000% from period 3"
    sc = ae.load_scenario("huake_mc").model_copy(update={"base_rate": None, "rate_shock_bps": 25})
    entry = _scenario_entry(sc, 1_000, 1, cd.deal.base_rate)
    applied = {p["parameter"]: p["value"] for p in entry["parameters"]}["base_rate_applied"]
    assert applied == pytest.approx(0.0225, abs=1e-15)
