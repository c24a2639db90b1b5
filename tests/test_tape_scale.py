"""Large pool tapes: read as columns (no model per row), checked as the Obligor schema checks
each row, compiled from arrays bitwise as inline obligors would be, problems named by row and
value and capped. No timing assertions: the 1,000,000-row figures are in the report.

The tests on the 200,000-row tape are marked ``slow`` (``pytest -m slow``; .ci/run runs them);
the columnar path itself is checked bitwise on 600 rows in the default run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import abs_engine as ae
from abs_engine.cli import main
from abs_engine.errors import DealError
from abs_engine.schema import parse_deal, read_tape
from abs_engine.schema.pool import Labels, ObligorTable
from abs_engine.schema.tape import MAX_TAPE_PROBLEMS
from abs_engine.synthetic import synthetic_deal

N = 200_000


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> tuple[Path, pd.DataFrame, dict]:
    """A 200,000-row heterogeneous synthetic tape (CSV and Parquet) and its deal document."""
    folder = tmp_path_factory.mktemp("big")
    deal, tape = synthetic_deal(N, heterogeneous=True, seed=11)
    tape.to_csv(folder / "tape.csv", index=False)
    tape.to_parquet(folder / "tape.parquet", index=False)
    for suffix in ("csv", "parquet"):
        doc = json.loads(json.dumps(deal))
        doc["pool"]["tape"] = {"path": f"tape.{suffix}"}
        (folder / f"deal_{suffix}.json").write_text(json.dumps(doc))
    return folder, tape, deal


@pytest.mark.slow
@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_200k_row_tape_validates_and_compiles(big, suffix, capsys):
    folder, tape, _ = big
    deal = ae.load_deal(folder / f"deal_{suffix}.json")
    table = deal.pool.table
    assert isinstance(table, ObligorTable) and len(table) == N and deal.pool.obligors == []
    assert deal.pool.n_obligors == N
    cd = ae.compile_deal(deal)
    assert cd.n_obligors == N and cd.pool.ids[12344] == "S0012344"
    assert cd.original_pool == pytest.approx(tape["balance"].sum())
    assert cd.pool.sched_principal.shape == (N, cd.n_periods)
    np.testing.assert_allclose(cd.pool.sched_principal.sum(axis=1), tape["balance"], rtol=1e-12)
    assert main(["validate", str(folder / f"deal_{suffix}.json")]) == 0
    assert f"OK — {N} obligors" in capsys.readouterr().out


def _problems(tape_file: Path) -> list:
    with pytest.raises(DealError) as info:
        read_tape(tape_file)
    return info.value.problems


@pytest.mark.slow
def test_bad_rows_are_named_by_row_and_value(big, tmp_path):
    _, tape, _ = big
    bad = tape.copy()
    bad["n_periods"] = bad["n_periods"].astype(object)
    bad.loc[12344, "balance"] = -5.0
    bad.loc[149_999, "annual_pd"] = 1.5
    bad.loc[6, "amortization"] = "balloon"
    bad.loc[199_998, "n_periods"] = "twelve"
    bad.loc[500, "recovery_rate"] = float("inf")
    bad.to_csv(tmp_path / "bad.csv", index=False)
    problems = _problems(tmp_path / "bad.csv")
    got = [(p.path, p.value) for p in problems]
    assert got == [
        ("row 7 (id=S0000006).amortization", "balloon"),
        ("row 501 (id=S0000500).recovery_rate", float("inf")),
        ("row 12345 (id=S0012344).balance", -5.0),
        ("row 150000 (id=S0149999).annual_pd", 1.5),
        ("row 199999 (id=S0199998).n_periods", "twelve"),
    ]
    assert all(p.file == str(tmp_path / "bad.csv") for p in problems)
    text = "\n".join(map(str, problems))
    assert "balance: Input should be greater than 0 (got -5.0)" in text
    assert "annual_pd: Input should be less than 1 (got 1.5)" in text
    assert "recovery_rate: Input should be a finite number" in text
    assert "n_periods: expected an integer (got 'twelve')" in text
    # the same tape behind a deal: the error names the tape, not the deal
    doc = {**synthetic_deal(8)[0], "pool": {"tape": {"path": "bad.csv"}}}
    with pytest.raises(DealError) as info:
        parse_deal(doc, source=tmp_path / "deal.json", base_dir=tmp_path)
    assert [p.path for p in info.value.problems][:1] == ["row 7 (id=S0000006).amortization"]


@pytest.mark.slow
def test_problems_are_capped_with_a_count(big, tmp_path):
    _, tape, _ = big
    bad = tape.copy()
    bad["balance"] = -1.0
    bad.loc[3, "rate"] = 2.0
    bad.to_parquet(tmp_path / "bad.parquet")
    problems = _problems(tmp_path / "bad.parquet")
    assert len(problems) == MAX_TAPE_PROBLEMS + 1
    listed = problems[:MAX_TAPE_PROBLEMS]
    assert listed[0].path == "row 1 (id=S0000000).balance"
    assert "row 4 (id=S0000003).rate" in [p.path for p in listed]
    last = problems[-1]
    assert last.path == "<rows>"
    assert f"{N + 1 - MAX_TAPE_PROBLEMS:,} more problems not listed" in last.message
    assert f"{N + 1:,} in {N:,} rows" in last.message


@pytest.mark.slow
def test_duplicate_ids_and_long_schedules_are_capped(big, tmp_path):
    _, tape, deal = big
    bad = tape.iloc[:5_000].copy()
    bad.loc[100:, "id"] = "DUP"
    bad.loc[:49, "n_periods"] = 99
    bad.to_csv(tmp_path / "bad.csv", index=False)
    doc = {**deal, "pool": {"tape": {"path": "bad.csv"}}}
    d = parse_deal(doc, source=tmp_path / "deal.json", base_dir=tmp_path)
    with pytest.raises(DealError) as info:
        ae.compile_deal(d)
    problems = info.value.problems
    dups = [p for p in problems if p.message.startswith("duplicate obligor id")]
    assert len(dups) == MAX_TAPE_PROBLEMS
    assert dups[0].path == "row 102 (id=DUP).id" and "(also row 101 (id=DUP))" in dups[0].message
    long = [p for p in problems if p.message.startswith("schedule runs to period 99")]
    assert len(long) == MAX_TAPE_PROBLEMS
    assert long[0].path == "row 1 (id=S0000000).amortization"
    counts = [p.message for p in problems if p.path == "<rows>"]
    assert f"{4_899 - MAX_TAPE_PROBLEMS:,} more duplicate obligor ids not listed" in counts
    assert f"{50 - MAX_TAPE_PROBLEMS:,} more schedules beyond legal_final not listed" in counts


def _random_tape(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    kinds = np.array(["bullet", "level_pay", "equal_principal"])
    df = pd.DataFrame(
        {
            "id": [f"R{i}" for i in range(n)],
            "balance": np.round(rng.lognormal(13, 1, n), 2),
            "rate": np.round(rng.uniform(0, 0.12, n), 6),
            "amortization": kinds[rng.integers(0, 3, n)],
            "n_periods": rng.integers(1, 9, n),
            "annual_pd": rng.choice([0.005, 0.01, 0.02, 0.0123456], n),
            "sector": rng.choice(["a", "b", "c", None], n),
            "first_period": np.where(rng.random(n) < 0.5, rng.integers(1, 4, n), np.nan),
            "recovery_rate": np.where(rng.random(n) < 0.5, rng.uniform(0, 1, n), np.nan),
            "recovery_lag_periods": np.where(rng.random(n) < 0.5, rng.integers(0, 8, n), np.nan),
            "appraisal": np.where(rng.random(n) < 0.5, rng.uniform(1e5, 1e7, n), np.nan),
            "patent_count": rng.integers(0, 5, n),
            "name": rng.choice(["x", "yy", None], n),
        }
    )
    df.loc[5, "rate"] = 1e-17  # level pay at a rate that rounds the annuity to 1
    df.loc[6, "rate"] = 0.0
    return df


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_tape_compiles_bitwise_as_inline_obligors(tmp_path, suffix):
    """The columnar path and the obligor-by-obligor path give the same bits: the tape's rows
    written out as inline obligors (via ObligorTable.obligor) compile to identical arrays."""
    tape = _random_tape(600, seed=5)
    path = tmp_path / f"t.{suffix}"
    tape.to_csv(path, index=False) if suffix == "csv" else tape.to_parquet(path)
    base = {
        "schema_version": 1,
        "name": "bitwise",
        "dates": {
            "closing": "2025-01-15",
            "first_payment": "2025-04-15",
            "frequency": "quarterly",
            "legal_final": "2028-01-15",
            "business_day": "modified_following",
        },
        "tranches": [{"name": "A", "balance": 1e6, "coupon": {"kind": "fixed", "rate": 0.03}}],
        "waterfalls": {"normal": [{"kind": "pay_principal", "tranches": ["A"]}]},
    }
    head = {
        "id": "I0",
        "balance": 1000.0,
        "rate": 0.05,
        "sector": "c",
        "amortization": {"kind": "level_pay", "n_periods": 4},
        "pd": {"kind": "flat", "annual": 0.02},
    }
    rec = {"rate": 0.35, "lag_periods": 3}
    from_tape = parse_deal(
        {**base, "pool": {"recovery": rec, "obligors": [head], "tape": {"path": path.name}}},
        source=tmp_path / "deal.json",
        base_dir=tmp_path,
    )
    table = from_tape.pool.table
    assert table is not None
    rows = [table.obligor(k).model_dump(mode="json") for k in range(len(table))]
    inline = parse_deal({**base, "pool": {"recovery": rec, "obligors": [head, *rows]}})
    a, b = ae.compile_deal(from_tape).pool, ae.compile_deal(inline).pool
    for f in ("balance", "rate", "sched_principal", "sched_interest", "sched_balance_start",
              "cum_pd", "recovery_rate", "ip_value"):  # fmt: skip
        x, y = getattr(a, f), getattr(b, f)
        assert x.shape == y.shape and np.array_equal(x.view(np.int64), y.view(np.int64)), f
    for f in ("recovery_lag", "sector"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    assert a.ids == b.ids and a.names == b.names and a.sectors == b.sectors
    assert a.sectors[0] == "c"  # the inline obligor's first


def test_cell_semantics(tmp_path):
    """Missing optional cells take their defaults; a row with one recovery column gets the
    Recovery defaults for the other (as an inline obligor would); patent_count counts only
    with an appraisal; integral floats are integers; Parquet text in a number column is an
    error."""
    df = pd.DataFrame(
        {
            "id": ["A", "B", "C"],
            "balance": [10.0, 20.0, 30.0],
            "rate": [0.01, 0.02, 0.03],
            "amortization": ["bullet", "level_pay", "equal_principal"],
            "n_periods": [2.0, 3.0, 4.0],
            "annual_pd": [0.01, 0.02, 0.03],
            "recovery_rate": [0.5, None, None],
            "appraisal": [None, 100.0, None],
            "patent_count": [-3, 7, None],
        }
    )
    df.to_parquet(tmp_path / "t.parquet")
    t = read_tape(tmp_path / "t.parquet")
    assert t.n_periods.tolist() == [2, 3, 4] and t.first_period.tolist() == [1, 1, 1]
    assert t.recovery_lag.tolist() == [4, -1, -1]
    assert t.recovery_rate[0] == 0.5 and np.isnan(t.recovery_rate[1:]).all()
    assert t.patent_count.tolist() == [0, 7, 0]  # row A's -3 ignored: no appraisal
    assert t.sectors == ("unspecified",) and list(t.names) == ["", "", ""]
    assert isinstance(t.ids, Labels) and t.ids == ("A", "B", "C")
    df["n_periods"] = [2.0, 3.5, 4.0]
    df["rate"] = ["0.01", "0.02", None]
    df.to_parquet(tmp_path / "t2.parquet")
    got = {(p.path, p.message) for p in _problems(tmp_path / "t2.parquet")}
    assert got == {
        ("row 1 (id=A).rate", "expected a number, not a string (remove the quotes)"),
        ("row 2 (id=B).rate", "expected a number, not a string (remove the quotes)"),
        (
            "row 3 (id=C).rate",
            "Input should be a valid number (the cell is empty, or a word for a missing "
            "value: NA, NaN, null...)",
        ),
        (
            "row 2 (id=B).n_periods",
            "Input should be a valid integer, got a number with a fractional part",
        ),
    }


def test_ids_checked_as_names(tmp_path):
    (tmp_path / "t.csv").write_text(
        "id,balance,rate,amortization,n_periods,annual_pd\n"
        f"{'x' * 65},1,0,bullet,1,0.01\n"
        '" lead",1,0,bullet,1,0.01\n'
        ",1,0,bullet,1,0.01\n"
        "ok,1,0,bullet,1,0.01\n"
    )
    got = [(p.path, p.message) for p in _problems(tmp_path / "t.csv")]
    assert got == [
        (f"row 1 (id={'x' * 65}).id", "String should have at most 64 characters"),
        ("row 2 (id= lead).id", "String should match pattern '^[^\\s].*$'"),
        ("row 3 (id=None).id", "Input should be a valid string"),
    ]


def test_solvers_and_revalidation_keep_the_tape_rows(tmp_path):
    from abs_engine.compile.patch import with_tranche_terms

    doc, tape = synthetic_deal(1000, heterogeneous=True, seed=3)
    tape.to_parquet(tmp_path / "tape.parquet")
    doc["pool"]["tape"] = {"path": "tape.parquet"}
    deal = parse_deal(doc, source=tmp_path / "deal.json", base_dir=tmp_path)
    a = deal.tranches[0].balance
    # a solver's copy of the deal
    cd = with_tranche_terms(ae.compile_deal(deal), {"A": {"balance": a - 1.0}})
    assert cd.n_obligors == 1000 and cd.deal.tranches[0].balance == a - 1.0
    changed = deal.model_copy(update={"description": "changed in Python"})  # re-validated
    assert ae.compile_deal(changed).n_obligors == 1000


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"id,balance\x00,rate\n", "binary data (a NUL byte at byte 10), not a CSV text file"),
        (b"id,balance,rate,amortization,n_periods,annual_pd\nT\xe9,1,0,bullet,1,0.01\n",
         "not UTF-8 (nor GB18030/GBK) text (byte 50 is b'\\xe9,1,'); save the tape as UTF-8"),
        (b"id,balance,rate,amortization,n_periods,annual_pd\nT1,1,0,bullet,1,0.01,x\n",
         "cannot read tape: CSV parse error: Expected 6 columns, got 7 at row 1"),
        (b"", "cannot read tape: Empty CSV file"),
        (b"id,balance,rate,amortization,n_periods,annual_pd\n", "tape has no rows"),
    ],
    ids=["binary", "latin-1", "ragged", "empty", "header-only"],
)  # fmt: skip
def test_broken_csv_files_are_clean_errors(tmp_path, content, message):
    (tmp_path / "t.csv").write_bytes(content)
    (problem,) = _problems(tmp_path / "t.csv")
    assert problem.message == message and problem.file == str(tmp_path / "t.csv")


def test_uint64_beyond_int64_is_reported_with_its_value(tmp_path):
    """A Parquet uint64 n_periods of 2**64-1 does not wrap to a negative int64 (which was
    reported against the lower bound): it is out of range above, shown as written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    big = 2**64 - 1
    table = pa.table(
        {
            "id": ["A", "B"],
            "balance": [10.0, 20.0],
            "rate": [0.01, 0.02],
            "amortization": ["bullet", "bullet"],
            "n_periods": pa.array([big, 3], type=pa.uint64()),
            "annual_pd": [0.01, 0.02],
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    got = [(p.path, p.message, p.value) for p in _problems(tmp_path / "t.parquet")]
    assert len(got) == 1, got
    path, message, value = got[0]
    assert path == "row 1 (id=A).n_periods" and "less than or equal to" in message, got
    assert value == big
