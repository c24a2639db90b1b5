"""Synthetic pools: written files load like any deal; the tranche stack follows the
attachment points; losses fall reverse-sequentially."""

from __future__ import annotations

import json

import pytest

import abs_engine as ae
from abs_engine.cli import main
from abs_engine.synthetic import synthetic_deal, write_synthetic


def test_homogeneous_pool_and_tranche_stack(tmp_path):
    paths = write_synthetic(tmp_path, 200, attachments=(0.03, 0.06, 0.10), annual_pd=0.05)
    deal = ae.load_deal(paths["deal"])
    cd = ae.compile_deal(deal)
    assert cd.n_obligors == 200 and cd.original_pool == pytest.approx(100e6)
    assert [(t.name, t.balance) for t in deal.tranches] == [
        ("A", 90e6), ("B", 4e6), ("C", 3e6), ("E", 3e6),
    ]  # fmt: skip
    res = ae.simulate(
        cd, ae.load_scenario(paths["scenario"]), n_paths=4_000, seed=1, progress=False
    )
    el = res.tranches.set_index("tranche").expected_loss
    assert el["A"] <= el["B"] <= el["C"] <= el["E"]  # junior first
    assert el["E"] > 0


def test_heterogeneous_pool_is_reproducible_and_varied():
    d1, t1 = synthetic_deal(1_000, heterogeneous=True, seed=4)
    d2, t2 = synthetic_deal(1_000, heterogeneous=True, seed=4)
    assert t1.equals(t2) and d1 == d2
    assert t1["balance"].std() > 0 and t1["annual_pd"].nunique() == 4
    assert t1["balance"].sum() == pytest.approx(100e6, abs=1.0)


def test_synth_command_writes_loadable_files(tmp_path, capsys):
    assert main(["synth", str(tmp_path), "--obligors", "50", "--attach", "0.05,0.2"]) == 0
    out = capsys.readouterr().out
    assert "deal:" in out and "run it:" in out
    deal = json.loads((tmp_path / "synthetic_50.json").read_text())
    assert [t["name"] for t in deal["tranches"]] == ["A", "B", "E"]


@pytest.mark.parametrize("attach", ["0.2,0.2", "0,0.1", "1.5", "x"])
def test_bad_attachments_are_clear_errors(tmp_path, capsys, attach):
    assert main(["synth", str(tmp_path), "--obligors", "10", "--attach", attach]) == 2
    assert "Traceback" not in capsys.readouterr().err
