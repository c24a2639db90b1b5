"""Stress-grid files: a base Monte Carlo scenario and named shocks that shift its own
assumptions (PD ×, correlation +, IP haircut on top, recovery lag +, CPR, provider PD ×,
provider default), run as one command into one side-by-side table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import abs_engine as ae
from abs_engine.api import load_scenarios
from abs_engine.cli import main
from abs_engine.compile.model import compile_model
from abs_engine.errors import DealError


@pytest.fixture(scope="module")
def grid():
    deal = ae.load_deal()
    return deal, {s.name: s for s in load_scenarios("stress_grid_huake", deal)}


def test_the_bundled_grid_expands_into_its_base_and_shifted_scenarios(grid):
    deal, scs = grid
    base = scs["huake_mc"]
    assert list(scs)[0] == "huake_mc" and len(scs) == 8
    assert scs["pd_x2"].defaults.pd_multiplier == 2 * base.defaults.pd_multiplier
    assert scs["provider_pd_x3"].providers.pd_multiplier == 3 * base.providers.pd_multiplier
    assert scs["provider_default"].providers.disabled and not base.providers.disabled
    h0 = base.recovery.haircut
    assert scs["ip_haircut_30pct_more"].recovery.haircut == pytest.approx(1 - (1 - h0) * 0.7)
    assert scs["recovery_lag_plus_4"].recovery.lag_periods == base.recovery.lag_periods + 4
    both = scs["pd_x2_and_provider_default"]
    assert both.defaults.pd_multiplier == 2.0 and both.providers.disabled
    # everything a shock does not name is the base's
    for name, sc in scs.items():
        assert sc.n_paths == base.n_paths and sc.seed == base.seed, name
        assert sc.prepayment == base.prepayment, name


def test_a_correlation_shift_adds_to_the_basel_correlation(grid):
    deal, scs = grid
    from abs_engine.compile.model import _asset_correlation
    from abs_engine.errors import ProblemCollector

    cd = ae.compile_deal(deal)
    pc = ProblemCollector("x")
    rho0 = _asset_correlation(cd, scs["huake_mc"], pc)
    rho1 = _asset_correlation(cd, scs["correlation_plus_10pt"], pc)
    compile_model(cd, scs["correlation_plus_10pt"])  # the shifted scenario compiles
    assert np.allclose(rho1, np.clip(rho0 + 0.10, 0.0, 0.999), rtol=0, atol=1e-15)
    assert (rho1 > rho0).all()


def _grid_file(tmp_path, shocks: str, base: str = "huake_mc"):
    p = tmp_path / "g.toml"
    p.write_text(
        f'schema_version = 1\nkind = "stress_grid"\nname = "g"\nbase = "{base}"\n' + shocks
    )
    return p


def test_grid_problems_name_the_file_and_the_shock(tmp_path):
    deal = ae.load_deal()
    p = _grid_file(tmp_path, '[[shocks]]\nname = "a"\npd_multiplier = 2\n'
                   '[[shocks]]\nname = "a"\ncpr = 0.1\n')  # fmt: skip
    with pytest.raises(DealError) as ei:
        load_scenarios(str(p), deal)
    assert "shocks[1].name" in str(ei.value) and "used twice" in str(ei.value)
    # a base PD multiplier of 30, times 2, is past the schema's 50
    base = tmp_path / "b.toml"
    base.write_text('schema_version = 1\nkind = "monte_carlo"\nname = "b"\n'
                    "[defaults]\npd_multiplier = 30.0\n")  # fmt: skip
    p = _grid_file(tmp_path, '[[shocks]]\nname = "x2"\npd_multiplier = 2\n', base="b.toml")
    with pytest.raises(DealError) as ei:
        load_scenarios(str(p), deal)
    (problem,) = ei.value.problems
    assert problem.path == "shocks[0].pd_multiplier" and problem.value == 2
    assert "defaults.pd_multiplier" in problem.message and "60.0" in problem.message
    # the field of the shock that made it, its value, and the shifted one: the message showed
    # the shock's name as the value and a union tag no file has (recovery.ip_value.lag_periods)
    p = _grid_file(tmp_path, '[[shocks]]\nname = "lag"\nrecovery_lag_add = 120\n')
    with pytest.raises(DealError) as ei:
        load_scenarios(str(p), deal)
    problem = ei.value.problems[0]
    assert (problem.path, problem.value) == ("shocks[0].recovery_lag_add", 120)
    assert "recovery.lag_periods:" in problem.message and "124" in problem.message
    assert "ip_value" not in problem.message
    p = _grid_file(tmp_path, '[[shocks]]\nname = "h"\nip_haircut = 0.3\n', base="b.toml")
    with pytest.raises(DealError) as ei:
        load_scenarios(str(p), deal)
    (problem,) = ei.value.problems
    assert (problem.path, problem.value) == ("shocks[0].ip_haircut", 0.3)
    assert "recovery kind = 'ip_value'" in problem.message
    p = _grid_file(tmp_path, '[[shocks]]\nname = "s"\ncpr = 0.1\n', base="huake_base")
    with pytest.raises(DealError, match="must be a Monte Carlo scenario"):
        load_scenarios(str(p), deal)


def test_run_a_grid_into_one_table(capsys):
    assert main(["run", "-s", "stress_grid_huake", "--paths", "1500", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = doc["comparison"]
    assert len(doc["scenarios"]) == 8 and len(rows) == 16
    el = {(r["tranche"], r["scenario"]): r["expected_loss"] for r in rows}
    # common random numbers: doubling the PDs cannot lower the senior's loss here
    assert el[("A", "pd_x2")] >= el[("A", "huake_mc")]


def test_a_stress_grid_where_one_scenario_is_taken_is_named_as_such(tmp_path, capsys):
    """A stress grid as the deal's ``base_scenario`` is valid (``run`` runs its base and every
    shock); as its ``deterministic_scenario``, or loaded as one scenario, the error says it
    is a stress grid (it was pydantic's "Input should be 'deterministic'")."""
    from abs_engine.cli import main

    deal = Path(__file__).resolve().parents[1] / "waterfalls" / "huake_2025.toml"
    for field in ("base_scenario", "deterministic_scenario"):
        text = deal.read_text()
        start = text.index(f"{field} = ")
        end = text.index("\n", start)
        p = tmp_path / f"{field}.toml"
        p.write_text(text[:start] + f'{field} = "stress_grid_huake"' + text[end:])
        code = main(["validate", str(p)])
        err = capsys.readouterr().err
        if field == "base_scenario":
            assert code == 0, err
        else:
            assert code == 2 and "stress grid stands for several" in err and field in err
        # a command that takes the deal's one scenario from that field blames the deal's
        # field, as validate does (it blamed the grid file's kind, which is right as it is)
        one = ["size", str(p), "--tranche", "A", "--target", "AAA", "--paths", "100"]
        code = main(one if field == "base_scenario" else ["stress", str(p)])
        err = capsys.readouterr().err
        assert code == 2 and f"{p.name}: {field}: scenario cannot be loaded" in err, err
        assert "stress grid stands for several" in err, err
    with pytest.raises(ae.DealError, match="stress grid stands for several") as info:
        ae.load_scenario("stress_grid_huake")
    assert info.value.problems[0].path == "kind"


def test_a_shock_name_no_file_can_carry_is_named_by_its_shock(tmp_path):
    """Under ``--out`` a scenario's name is part of file names: a shock named "a/b" is
    refused at ``shocks[k].name``, not at the grid's own ``name`` (a control character, as
    the grid is read); so is a shock named as the base in the side-by-side check."""
    from abs_engine.report.compare import check_distinct_names
    from abs_engine.report.writers import check_out_names

    p = _grid_file(tmp_path, '[[shocks]]\nname = "a/b"\ncpr = 0.1\n'
                   '[[shocks]]\nname = "x/\\u00e9"\ncpr = 0.2\n')  # fmt: skip
    scenarios = load_scenarios(str(p), ae.load_deal())
    with pytest.raises(DealError) as ei:
        check_out_names(scenarios)
    assert [pr.path for pr in ei.value.problems] == ["shocks[0].name", "shocks[1].name"]
    assert all(pr.file == str(p) for pr in ei.value.problems)
    # a control character no name may hold: refused as the grid is read
    p = _grid_file(tmp_path, '[[shocks]]\nname = "ok"\ncpr = 0.1\n'
                   '[[shocks]]\nname = "x\\u0001"\ncpr = 0.2\n')  # fmt: skip
    with pytest.raises(DealError) as ei:
        load_scenarios(str(p), ae.load_deal())
    assert [pr.path for pr in ei.value.problems] == ["shocks[1].name"]
    assert "control characters" in ei.value.problems[0].message
    p = _grid_file(tmp_path, '[[shocks]]\nname = "huake_mc"\ncpr = 0.1\n')
    with pytest.raises(DealError) as ei:
        check_distinct_names(load_scenarios(str(p), ae.load_deal()))
    assert [pr.path for pr in ei.value.problems] == ["shocks[0].name"]


def test_a_base_that_cannot_be_loaded_is_told_at_the_grids_base(tmp_path):
    """The base's problems named the reference as if it were a file ("nope: <file>:
    scenario not found"), neither the grid nor its field; now at the grid's ``base``, with
    the value, and a base file's own problems after a line saying whose base it is."""
    deal = ae.load_deal()
    shock = '[[shocks]]\nname = "x2"\npd_multiplier = 2.0\n'
    for base, words in (("nope", "scenario not found"), ("/tmp", "is a folder")):
        p = _grid_file(tmp_path, shock, base=base)
        with pytest.raises(DealError) as ei:
            load_scenarios(str(p), deal)
        (problem,) = ei.value.problems
        assert (problem.file, problem.path, problem.value) == (str(p), "base", base)
        assert words in problem.message
    # a deal where the base scenario should be (beside the grid: the base field holds 64
    # characters at most)
    (tmp_path / "deal.toml").write_text(ae.resources.bundled_deal_path().read_text())
    deal_file = str(tmp_path / "deal.toml")
    p = _grid_file(tmp_path, shock, base="deal.toml")
    with pytest.raises(DealError) as ei:
        load_scenarios(str(p), deal)
    head, *rest = ei.value.problems
    assert (head.file, head.path, head.value) == (str(p), "base", "deal.toml")
    assert rest and all(q.file == deal_file for q in rest)
    # a syntax error inside the base file is the base file's, at its line
    (tmp_path / "b.toml").write_text('schema_version = 1\nkind = "monte_carlo"\nname = x\n')
    p = _grid_file(tmp_path, shock, base="b.toml")
    with pytest.raises(DealError) as ei:
        load_scenarios(str(p), deal)
    head, problem = ei.value.problems
    assert (head.path, head.value) == ("base", "b.toml")
    assert problem.file == str(tmp_path / "b.toml") and problem.path == "<syntax>"
