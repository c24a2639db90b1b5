"""The performance guard's decision (``python -m benchmarks --check``), with the measurement
replaced: no timing is taken or asserted here."""

from __future__ import annotations

import json

from benchmarks import guard

BASE = {"a": 10.0, "b": 40.0}


def _baseline(tmp_path):
    p = tmp_path / "baseline.json"
    p.write_text(json.dumps({"machine": {}, "tolerance": 0.30, "ratios": BASE}))
    return p


def test_guard_passes_within_tolerance(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(guard, "measure", lambda repeats=3: {"a": 7.1, "b": 60.0})
    assert guard.check(_baseline(tmp_path)) == 0
    assert "FAIL" not in capsys.readouterr().out


def test_guard_fails_when_a_ratio_falls_more_than_30_percent(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(guard, "measure", lambda repeats=3: {"a": 6.9, "b": 40.0})
    assert guard.check(_baseline(tmp_path)) == 1
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("a "))
    assert "FAIL" in line and "-31%" in line


def test_guard_without_baseline_says_how_to_make_one(tmp_path, capsys):
    assert guard.check(tmp_path / "none.json") == 2
    assert "--write-baseline" in capsys.readouterr().out


def test_report_renders_the_stored_results(tmp_path):
    """The stored benchmark results (benchmarks/results/montecarlo.json) render as the
    summary table, the Parquet table and the chart."""
    from pathlib import Path

    import pandas as pd

    from benchmarks import report

    res = json.loads(
        (Path(__file__).parents[1] / "benchmarks" / "results" / "montecarlo.json").read_text()
    )
    out = tmp_path / "r.json"
    written = report.write_all(res, out)
    assert {p.suffix for p in written} >= {".json", ".parquet", ".md"}
    table = pd.read_parquet(out.with_suffix(".parquet"))
    assert {"engine (memo off)", "numpy twin", "financepy mc"} <= set(table["implementation"])
    assert (table.dropna(subset=["median_s"])["median_s"] > 0).all()
    md = out.with_suffix(".md").read_text()
    assert md.count("\n|") == len(report.summary_rows(res)) + 2  # header, rule, rows
    assert all(line.count("|") == 4 for line in md.splitlines() if line.startswith("|"))
    assert not list(tmp_path.glob("*.tmp"))


def test_guard_refuses_a_baseline_of_other_ratios(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(guard, "measure", lambda repeats=3: {"a": 10.0})
    assert guard.check(_baseline(tmp_path)) == 2
    assert "--write-baseline" in capsys.readouterr().out
