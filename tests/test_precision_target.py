"""Precision-targeted runs (``target_se``, ``target_rel_se``; ``--target-se``,
``--target-rel-se``): more paths until a tranche's expected loss is precise enough, within a
cap, and the result says what it reached."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import homogeneous_deal, mc, run_cli

import abs_engine as ae
from abs_engine.errors import ArgumentTypeError, InputError


def test_a_reached_target_is_the_plain_run_of_its_paths():
    res = ae.simulate(n_paths=4_096, seed=3, sampling="importance", target_rel_se=0.01,
                      progress=False)  # fmt: skip
    p = res.precision
    assert p["reached"] and p["tranche"] == "A" and p["note"] is None
    assert p["rel_se"] <= 0.01 and p["paths"] == res.n_paths
    assert p["paths"] % 1024 == 0 or p["paths"] == 4_096
    assert [r["paths"] for r in p["rounds"]] == sorted(r["paths"] for r in p["rounds"])
    plain = ae.simulate(n_paths=p["paths"], seed=3, sampling="importance", progress=False)
    num = plain.tranches.select_dtypes("number").columns
    np.testing.assert_array_equal(plain.tranches[num].to_numpy(), res.tranches[num].to_numpy())


def test_a_target_out_of_reach_stops_at_the_cap_and_says_so():
    res = ae.simulate(n_paths=10_000, seed=3, target_rel_se=0.001, max_paths=25_000,
                      progress=False)  # fmt: skip
    p = res.precision
    assert not p["reached"] and p["paths"] == 25_000 == res.n_paths
    assert "cap of 25,000 paths" in p["note"]
    assert p["expected_loss_se"] > 0.001 * p["expected_loss"]


@pytest.mark.parametrize("kw", [{"target_rel_se": 1e-300}, {"target_se": 1e-300}])
def test_a_goal_too_small_for_a_float_goes_to_the_cap(kw):
    """The paths a goal of 1e-300 asks for overflow a float (an OverflowError traceback
    before): the next round takes the cap, and the run says the target was not reached."""
    res = ae.simulate(n_paths=1_000, seed=3, max_paths=3_000, progress=False, **kw)
    p = res.precision
    assert not p["reached"] and p["paths"] == 3_000 == res.n_paths
    assert "cap of 3,000 paths" in p["note"]


def test_a_relative_target_with_no_loss_at_all_says_why():
    res = ae.simulate(homogeneous_deal(10, 0.0, [0.0, 0.5]), mc(0.2), n_paths=2_000,
                      target_rel_se=0.05, max_paths=8_000, progress=False)  # fmt: skip
    p = res.precision
    assert not p["reached"] and p["expected_loss"] == 0.0
    assert "no path lost anything" in p["note"]
    # no loss path says nothing yet: it grew to the cap, and reports the paths it ran
    assert p["paths"] == res.n_paths == 8_000 == p["rounds"][-1]["paths"]


def test_an_absolute_target_on_a_named_tranche():
    res = ae.simulate(n_paths=2_048, seed=1, target_se=0.002, target_tranche="Sub",
                      progress=False)  # fmt: skip
    p = res.precision
    assert p["tranche"] == "Sub" and p["reached"]
    sub = res.tranches.set_index("tranche").loc["Sub"]
    assert sub.expected_loss_se <= 0.002 and sub.expected_loss_se == p["expected_loss_se"]


@pytest.mark.parametrize(
    ("kw", "exc", "message"),
    [
        ({"target_se": 0.01, "target_rel_se": 0.1}, InputError, "not both"),
        ({"target_se": -1.0}, InputError, "target_se must be above 0"),
        ({"target_rel_se": 1.5}, InputError, "below 1"),
        ({"target_rel_se": True}, ArgumentTypeError, "must be a number"),
        ({"max_paths": 100}, InputError, "max_paths is for a run with"),
        ({"target_se": 0.01, "max_paths": 0}, InputError, "max_paths"),
        ({"target_se": 0.01, "target_tranche": "Z"}, InputError, "unknown tranche 'Z'"),
    ],
)
def test_bad_targets(kw, exc, message):
    with pytest.raises(exc, match=message):
        ae.simulate(n_paths=1_000, progress=False, **kw)


def test_the_command_says_what_it_reached():
    r = run_cli("run", "--paths", "2048", "--target-rel-se", "0.05", "--sampling", "importance",
                "--json", "--no-progress")  # fmt: skip
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)["precision"]
    assert p["reached"] and p["rel_se"] <= 0.05
    r = run_cli("run", "--paths", "2048", "--target-rel-se", "0.05", "--sampling", "importance",
                "--no-progress")  # fmt: skip
    assert "target: A's expected loss to a relative standard error of 5.00%: reached" in r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target-se", "0.1", "--target-rel-se", "0.1"], "give one of them"),
        (["--max-paths", "100"], "--max-paths is for a run with --target-se"),
        (["--target-tranche", "A"], "--target-tranche is for a run with"),
        (["--target-se", "0"], "--target-se"),
        (["-s", "huake_base", "--target-se", "0.01"], "--target-se"),
    ],
)
def test_bad_target_options(args, message):
    r = run_cli("run", *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_every_scenario_is_checked_before_the_first_targeted_run(tmp_path, monkeypatch):
    """A precision-targeted run of two scenarios checked the second against the deal only
    when its turn came, after the first's rounds (a validator's 13 CPR values for a
    12-period deal, found after 5 s of simulation). Nothing is simulated before the error."""
    import abs_engine.commands as commands

    bad = tmp_path / "bad.toml"
    bad.write_text('schema_version = 1\nkind = "monte_carlo"\nname = "bad"\n'
                   "[prepayment]\ncpr = [" + ", ".join(["0.01"] * 13) + "]\n")  # fmt: skip
    started = []
    real = commands.start_simulation_compiled

    def spy(*a, **kw):
        started.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(commands, "start_simulation_compiled", spy)
    r = run_cli("run", "-s", "huake_mc", "-s", bad, "--paths", "1000", "--target-se", "1e-9",
                "--max-paths", "2000", "--no-progress")  # fmt: skip
    assert r.returncode == 2 and "prepayment.cpr" in r.stderr, r.stderr
    assert started == []
