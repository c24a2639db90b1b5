"""Scenarios side by side: ``run -s A -s B`` ends with one table (tranche × scenario: loss,
P(shortfall), WAL, minimum coverage, implied rating), Monte Carlo and deterministic scenarios
together, also in ``--json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from abs_engine.cli import main
from abs_engine.report.compare import comparison_rows


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
        # every Monte Carlo figure with its standard error (WAL and coverage had none)
        assert r["wal_years_se"] == t["wal_years_se"]
        assert r["min_coverage_ratio_se"] == t["min_coverage_ratio_se"]
    # a deterministic row: its own loss over the balance, shortfall 0 or 1, no SE, no rating
    stress = next(d for d in det["scenarios"] if d["scenario"] == "cdr_stress")
    for r in rows[2::3]:
        t = next(x for x in stress["tranches"] if x["name"] == r["tranche"])
        assert r["expected_loss"] == pytest.approx(t["loss"] / t["balance"], rel=1e-15)
        assert r["default_probability"] in (0.0, 1.0) and r["expected_loss_se"] is None
        assert r["implied_rating"] is None and r["kind"] == "deterministic"
        assert r["wal_years_se"] is None and r["min_coverage_ratio_se"] is None
    sub = rows[5]
    assert sub["default_probability"] == 1.0 and sub["wal_years"] is None  # never repaid
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Scenarios side by side" in out and "huake_base" in out
    # the expected cash flows by period: each mean with its standard error under it
    table = out[out.index("Expected cash flows by period") :]
    assert table.count("±") >= 12 * 10


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


SCENARIO = 'schema_version = 1\nkind = "deterministic"\nname = "stress"\ndefaults = {}\n'


@pytest.mark.parametrize("defaults", ['{ kind = "none" }', '{ kind = "cdr", cdr = 0.5 }'])
@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_two_scenarios_of_one_name_are_refused_before_anything_runs(
    tmp_path, capsys, defaults, json_flag
):
    """Rows are labelled by scenario name: two files of one ``name`` (the second's figures
    showed in both rows) are refused, naming the second file and its name; one Monte Carlo
    scenario among them (the table of two kinds) too."""
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(SCENARIO.replace("{}", '{ kind = "none" }'))
    b.write_text(SCENARIO.replace("{}", defaults))
    assert main(["run", "-s", str(a), "-s", str(b), *json_flag]) == 2
    err = capsys.readouterr().err
    assert "b.toml" in err and "name" in err and "'stress'" in err and "Traceback" not in err
    mc = tmp_path / "mc.toml"
    mc.write_text((Path(__file__).parents[1] / "scenarios" / "huake_mc.toml").read_text()
                  .replace('name = "huake_mc"', 'name = "stress"'))  # fmt: skip
    assert 'name = "stress"' in mc.read_text()
    assert main(["run", "-s", str(a), "-s", str(mc), "--paths", "100", *json_flag]) == 2
    assert "mc.toml" in capsys.readouterr().err


def test_comparison_rows_refuse_repeated_names():
    with pytest.raises(ValueError, match="repeat"):
        comparison_rows(["x", "x"])


def test_report_of_a_deal_whose_two_scenario_fields_name_one_scenario(tmp_path, capsys):
    """A deal whose ``base_scenario`` and ``deterministic_scenario`` are one scenario: the
    report shows it once (it blamed a --scenario flag nobody gave)."""
    deal = Path(__file__).parents[1] / "waterfalls" / "huake_2025.toml"
    text = deal.read_text().replace('base_scenario = "huake_mc"', 'base_scenario = "huake_base"')
    assert text.count('"huake_base"') >= 2
    (tmp_path / "d.toml").write_text(text)
    out = tmp_path / "out"
    assert main(["report", str(tmp_path / "d.toml"), "--out", str(out), "--no-progress"]) == 0
    doc = json.loads((out / "report.json").read_text())
    assert [r["scenario"] for r in doc["comparison"]] == ["huake_base"] * 2


def test_a_deterministic_interest_shortfall_made_good_later_counts_as_a_shortfall():
    """P(shortfall) is the chance of any interest or principal shortfall: a Monte Carlo path
    counts an interest shortfall paid back later, and so does a deterministic scenario's row
    now (it counted only interest still unpaid at the end, and showed 0% where the same
    path under Monte Carlo showed 100%). O1 (50, bullet) defaults in period 1 and is
    recovered whole a period later; O2 pays 7.5 of interest in period 1, A takes its 4.8 and
    B 2.7 of its 3: short 0.3, paid back in period 2, no loss."""
    import abs_engine as ae
    from abs_engine.compile import compile_deal
    from abs_engine.kernels import layout as L
    from abs_engine.schema import parse_deal, parse_scenario
    from tests.conftest import annual_dates, base_deal, obligor

    deal = base_deal(
        dates=annual_dates(3),
        pool={"obligors": [obligor("O1", 50, rate=0.1), obligor("O2", 50, rate=0.15)]},
        tranches=[
            {"name": "A", "balance": 80, "coupon": {"kind": "fixed", "rate": 0.06}},
            {"name": "B", "balance": 20, "coupon": {"kind": "fixed", "rate": 0.15}},
        ],
        waterfalls={"normal": [
            {"kind": "pay_interest", "tranches": ["A"]},
            {"kind": "pay_interest", "tranches": ["B"]},
            {"kind": "pay_principal", "tranches": ["A", "B"]},
        ]},
    )  # fmt: skip
    sc = parse_scenario({
        "name": "cure",
        "obligor_defaults": [{"obligor": "O1", "period": 1}],
        "recovery": {"rate": 1.0, "lag_periods": 1},
    })  # fmt: skip
    res = ae.run_deterministic(compile_deal(parse_deal(deal)), [sc], jit=False)
    b = res[0].tranches.set_index("tranche").loc["B"]
    assert b["loss"] == 0.0 and b["interest_shortfall"] == 0.0  # made good by the end
    short = res.raw.led_tr[0, :, 1, L.LT_INTEREST_SHORTFALL]
    assert short.tolist() == pytest.approx([0.3, 0.0, 0.0])
    rows = {r["tranche"]: r for r in comparison_rows(["cure"], deterministic=res)}
    assert rows["B"]["default_probability"] == 1.0
    assert rows["A"]["default_probability"] == 0.0
