"""Scenarios side by side: ``run -s A -s B`` ends with one table (tranche × scenario: loss,
P(shortfall), WAL, minimum coverage, implied rating), Monte Carlo and deterministic scenarios
together, also in ``--json``."""

from __future__ import annotations

import json

import pytest

from abs_engine.cli import main


def _strict(text: str) -> dict:
    def refuse(name: str):
        raise AssertionError(f"{name} in the JSON")

    return json.loads(text, parse_constant=refuse)


def test_monte_carlo_and_deterministic_side_by_side(capsys):
    argv = ["run", "-s", "huake_mc", "-s", "huake_base", "-s", "cdr_stress", "--paths", "3000"]
    assert main([*argv, "--json"]) == 0
    doc = _strict(capsys.readouterr().out)
    (mc,) = doc["scenarios"]
    det = doc["deterministic"]
    rows = doc["comparison"]
    # tranche by tranche, scenarios in the order given
    assert [(r["tranche"], r["scenario"]) for r in rows] == [
        (t, s) for t in ("A", "Sub") for s in ("huake_mc", "huake_base", "cdr_stress")
    ]
    # the Monte Carlo rows are the Monte Carlo document's numbers
    for r, t in zip(rows[::3], mc["tranches"], strict=True):
        assert r["kind"] == "monte_carlo" and r["implied_rating"] == t["implied_rating"]
        assert r["expected_loss"] == t["expected_loss"]
        assert r["expected_loss_se"] == t["expected_loss_se"]
        assert r["default_probability"] == t["default_probability"]
    # a deterministic row: its own loss over the balance, shortfall 0 or 1, no SE, no rating
    stress = next(d for d in det["scenarios"] if d["scenario"] == "cdr_stress")
    for r in rows[2::3]:
        t = next(x for x in stress["tranches"] if x["name"] == r["tranche"])
        assert r["expected_loss"] == pytest.approx(t["loss"] / t["balance"], rel=1e-15)
        assert r["default_probability"] in (0.0, 1.0) and r["expected_loss_se"] is None
        assert r["implied_rating"] is None and r["kind"] == "deterministic"
    sub = rows[5]
    assert sub["default_probability"] == 1.0 and sub["wal_years"] is None  # never repaid
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Scenarios side by side" in out and "huake_base" in out


def test_several_scenarios_of_one_kind_get_the_table_too(capsys):
    assert main(["run", "-s", "huake_base", "-s", "cdr_stress", "--json"]) == 0
    doc = _strict(capsys.readouterr().out)
    assert len(doc["comparison"]) == 4 and {r["kind"] for r in doc["comparison"]} == {
        "deterministic"
    }
    assert main(["run", "-s", "huake_mc", "-s", "huake_mc_no_support", "--paths", "1000",
                 "--json"]) == 0  # fmt: skip
    doc = _strict(capsys.readouterr().out)
    assert [r["scenario"] for r in doc["comparison"][:2]] == ["huake_mc", "huake_mc_no_support"]
    # one scenario: the document as before, no comparison
    assert main(["run", "--paths", "1000", "--json"]) == 0
    assert "comparison" not in _strict(capsys.readouterr().out)


def test_mixed_kinds_with_out_are_refused_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", "-s", "huake_mc", "-s", "huake_base", "--out", str(out)]) == 2
    assert "separate commands" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
