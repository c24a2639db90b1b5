"""Deterministic and Monte Carlo results have the same shape: ``tranches``, ``pool`` and
``cashflows`` are DataFrame attributes of both (``res[k]`` for one deterministic scenario,
``res`` itself for all of them), with the same index and column conventions, holding the
numbers the frame builders of :mod:`abs_engine.report.frames` give."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

import abs_engine as ae
from abs_engine.report import frames
from tests.conftest import ROOT

SCENARIOS = ["huake_base", "cdr_stress", "large_obligor_2"]


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    """Three deterministic scenarios (large_obligor_2 alone pays Sub a residual) and a small
    Monte Carlo run, both on the plain-Python twin kernels (nothing to compile)."""
    cd = ae.compile_deal(ae.load_deal())
    det = ae.run_deterministic(cd, SCENARIOS, jit=False)
    mc = ae.simulate(cd, n_paths=64, seed=3, jit=False, progress=False)
    return {"det": det, "mc": mc}


def test_one_scenario_has_the_attributes_of_a_monte_carlo_result(results):
    det, mc = results["det"], results["mc"]
    for res in (det[0], det["cdr_stress"], mc):
        for name in ("tranches", "pool", "cashflows"):
            assert isinstance(getattr(res, name), pd.DataFrame), (type(res).__name__, name)
        assert isinstance(res.tranches.index, pd.RangeIndex)
        assert res.tranches.columns[:3].tolist() == ["tranche", "balance", "coupon"]
        assert res.tranches["tranche"].tolist() == ["A", "Sub"]
        assert res.pool.index.name == "metric" and res.pool.index.is_unique
        assert all(res.pool.dtypes == np.float64)
        assert res.cashflows.columns[:2].tolist() == ["period", "payment_date"]
        assert isinstance(res.cashflows_long(), pd.DataFrame)
        assert isinstance(res.deal, ae.CompiledDeal)
    assert mc.pool.columns.tolist() == ["mean", "se"]
    assert det[0].pool.columns.tolist() == ["value"]
    assert det["cdr_stress"].scenario.name == "cdr_stress" == det["cdr_stress"].name
    assert mc.scenario.name == "huake_mc"


def test_one_scenarios_frames_hold_the_frame_builders_numbers(results):
    det = results["det"]
    for k, view in enumerate(det):
        assert_frame_equal(view.tranches, frames.tranche_table(det.raw, k))
        assert_frame_equal(view.cashflows, frames.cashflow_table(det.raw, k))
        assert_frame_equal(view.periods, frames.period_table(det.raw, k))
        summary = frames.pool_summary(det.raw, k)
        assert view.pool_summary == summary
        assert view.worst_status == summary["worst_status"]
        text = set(frames.POOL_TEXT_ITEMS)
        assert view.pool.index.tolist() == [m for m in summary if m not in text]
        for metric, value in view.pool["value"].items():
            old = summary[metric]
            assert (math.isnan(value) and old is None) or value == old, (metric, value, old)
    # a trigger that never came reads NaN in the frame, None in the summary
    base = det["huake_base"]
    if base.pool_summary["clean_up_call_period"] is None:
        assert math.isnan(base.pool.loc["clean_up_call_period", "value"])
    assert det["cdr_stress"].pool.loc["first_trigger_period", "value"] == float(
        det["cdr_stress"].pool_summary["first_trigger_period"]
    )
    # pool_summary is a copy: changing it changes nothing in the result
    s = base.pool_summary
    s["defaulted"] = -1.0
    assert base.pool_summary["defaulted"] != -1.0


def test_the_result_holds_every_scenario_in_one_frame(results):
    det = results["det"]
    assert len(det) == 3 and [v.name for v in det] == SCENARIOS
    assert det["cdr_stress"] is det[1] is det[-2]
    assert "cdr_stress" in det and "no_such" not in det and det[0] in det
    assert det.deal is det.compiled
    for name in ("tranches", "cashflows"):
        whole = getattr(det, name)
        assert isinstance(whole, pd.DataFrame) and whole.columns[0] == "scenario"
        assert isinstance(whole.index, pd.RangeIndex)
        assert whole["scenario"].unique().tolist() == SCENARIOS
    for view in det:
        tr = det.tranches[det.tranches["scenario"] == view.name].drop(columns="scenario")
        assert_frame_equal(tr.reset_index(drop=True), view.tranches)
        assert_frame_equal(det.pool.loc[view.name], view.pool)
        cf = det.cashflows[det.cashflows["scenario"] == view.name].drop(columns="scenario")
        cf = cf.reset_index(drop=True)
        # a column a scenario lacks (no residual paid) reads 0; the others are its own
        missing = [c for c in cf.columns if c not in view.cashflows.columns]
        assert all(c.endswith(".residual_paid") for c in missing)
        assert (cf[missing] == 0.0).all().all()
        assert_frame_equal(cf.drop(columns=missing), view.cashflows, check_like=False)
    assert det.pool.index.names == ["scenario", "metric"]
    assert set(det.pool["value"].unstack("scenario").columns) == set(SCENARIOS)
    # the residual column sits with its tranche, not at the end
    cols = det.cashflows.columns.tolist()
    assert cols.index("Sub.residual_paid") == cols.index("Sub.principal_paid") + 1
    long = det.cashflows_long()
    assert long.columns.tolist() == [
        "scenario", "period", "payment_date", "tranche", "item", "value",
    ]  # fmt: skip
    for view in det:
        part = long[long["scenario"] == view.name].drop(columns="scenario")
        assert_frame_equal(part.reset_index(drop=True), view.cashflows_long())


def test_a_scenarios_ledger_is_its_part_of_the_whole(results):
    det = results["det"]
    whole = det.ledger()
    part = det["cdr_stress"].ledger()
    expected = whole[whole["scenario"] == "cdr_stress"].reset_index(drop=True)
    assert_frame_equal(part, expected)


def test_a_scenario_prints_short(results):
    view = results["det"]["cdr_stress"]
    text = repr(view)
    assert text.startswith("DeterministicScenarioResult(") and "cdr_stress" in text
    assert len(text) < 1_000 and text.count("\n") < 8
    assert "<table" in view._repr_html_() and "cdr_stress" in view._repr_html_()


def test_tranche_names_with_dots(tmp_path, capsys):
    """Columns are ``<tranche>.<item>``, and a tranche's name may hold a dot: ``run`` of
    the bundled deal with A renamed "A.1" (it raised "too many values to unpack" in the
    console's cash-flow table) labels A.1's columns by its whole name, Monte Carlo and
    deterministic; and the long cash flows of tranches "A" and "A.x" give each its own
    five items (A's listed A.x's again, as "x.interest_paid" and so on)."""
    from abs_engine.cli import main

    text = (ROOT / "waterfalls" / "huake_2025.toml").read_text()
    text = text.replace('name = "A"', 'name = "A.1"').replace('"A"]', '"A.1"]')
    text = text.replace('["A", "Sub"]', '["A.1", "Sub"]')
    deal = tmp_path / "dotted.toml"
    deal.write_text(text)
    for extra in (["--paths", "300"], ["-s", "huake_base"]):
        assert main(["run", str(deal), *extra]) == 0
        out = capsys.readouterr().out
        assert "bal A.1" in out and " bal 1" not in out, out
    cols = {"period": [1, 2], "payment_date": ["2025-10-15", "2026-01-15"]}
    items = ("interest_paid", "principal_paid", "residual_paid", "balance_end", "write_down")
    wide = pd.DataFrame({**cols, **{f"{t}.{i}": [1.0, 2.0] for t in ("A", "A.x") for i in items}})
    long = frames.cashflows_long(wide, ["A", "A.x"])
    for t in ("A", "A.x"):
        assert long[long["tranche"] == t]["item"].tolist() == [
            i for i in items for _ in cols["period"]
        ]
    assert len(long) == 2 * 2 * len(items)
