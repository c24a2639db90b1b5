"""The file a deal or scenario came from: given when it is validated, kept by ``model_copy`` and
re-validation, named in the problems of everything compiled from it, never set afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

import abs_engine as ae
from abs_engine.errors import DealError
from abs_engine.resources import bundled_deal_path
from abs_engine.schema import parse_deal, parse_scenario
from abs_engine.schema.load import read_document, revalidated
from abs_engine.solvers import with_parameter
from tests.conftest import base_deal


def test_a_loaded_deal_names_its_file_through_copies_and_compiles():
    deal = ae.load_deal()
    path = str(bundled_deal_path())
    assert deal.source == path
    copied = deal.model_copy(update={"name": "renamed"})
    assert copied.source == path
    assert ae.compile_deal(copied).source == path  # re-validated, source kept
    assert revalidated(copied).source == path


def test_a_deal_built_in_python_says_memory():
    assert parse_deal(base_deal()).source == "<memory>"
    assert parse_deal(base_deal(), source=Path("x.toml")).source == "x.toml"


def test_the_source_cannot_be_set_or_written_in_a_document():
    deal = parse_deal(base_deal(), source="a.toml")
    with pytest.raises((AttributeError, ValidationError)):
        deal.source = "b.toml"  # type: ignore[misc]
    with pytest.raises(DealError, match="unknown key"):
        parse_deal({**base_deal(), "source": "b.toml"})


def test_problems_found_in_compile_name_the_file(tmp_path: Path):
    doc = base_deal(tranches=[{"name": "A", "balance": 300.0}])  # notes 3x the pool
    with pytest.raises(DealError) as err:
        ae.compile_deal(parse_deal(doc, source=tmp_path / "d.toml"))
    assert {p.file for p in err.value.problems} == {str(tmp_path / "d.toml")}


def test_scenarios_name_their_file():
    mc = ae.load_scenario("huake_mc")
    assert mc.source.endswith("huake_mc.toml")
    assert with_parameter(mc, "cpr", 0.1).source == mc.source
    assert mc.model_copy(update={"n_paths": 10}).source == mc.source
    assert parse_scenario({"name": "s"}).source == "<memory>"
    assert parse_scenario({"name": "s"}, source="s.toml").source == "s.toml"
    doc = read_document(bundled_deal_path())
    assert parse_deal(doc).source == "<memory>"
