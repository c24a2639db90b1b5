"""Rating table: loading, log-linear interpolation, implied rating, bad tables."""

from __future__ import annotations

import math

import pytest

import abs_engine as ae
from abs_engine.metrics import DEFAULT_TABLE, load_rating_table


def test_shipped_table_is_illustrative_and_interpolates_log_linearly():
    t = load_rating_table()
    assert t.illustrative and t.basis == "el"
    assert t.ratings == ("AAA", "AA", "A", "BBB", "BBB-")
    assert t.threshold("AAA", 1.0) == pytest.approx(0.000028 / 100)
    # halfway between 1y (0.005979%) and 2y (0.0385%) for A: geometric mean
    assert t.threshold("A", 1.5) == pytest.approx(math.sqrt(0.005979 * 0.0385) / 100)
    # beyond the last knot: extrapolated along the last segment
    slope = math.log(0.869 / 0.4565) / 2
    assert t.threshold("BBB", 6.0) == pytest.approx(0.869 / 100 * math.exp(slope))


def test_implied_rating_is_best_rating_not_exceeded():
    t = load_rating_table()
    a_2y = 0.0385 / 100
    assert t.implied_rating(a_2y * 0.999, 2.0) == "A"
    assert t.implied_rating(a_2y * 1.001, 2.0) == "BBB"
    assert t.implied_rating(0.0, 3.0) == "AAA"
    assert t.implied_rating(0.5, 3.0) == "below BBB-"
    assert t.implied_rating(float("nan"), 3.0) == "n/a"


def test_exact_el_gets_the_rating_the_table_says(tmp_path):
    """A tranche whose EL is known exactly: a deal with a zero-PD pool has EL 0 → AAA; the
    simulated senior of the bundled deal gets the rating its EL and WAL imply."""
    res = ae.simulate(n_paths=20_000, seed=1, progress=False)
    a = res.tranches.iloc[0]
    assert a.implied_rating == res.rating_table.implied_rating(a.expected_loss, a.wal_years)


def test_user_table_and_pd_basis(tmp_path):
    p = tmp_path / "pd.csv"
    p.write_text("rating,horizon_years,default_probability_pct\nX,1,0.1\nX,3,0.5\nY,1,1\nY,3,5\n")
    t = load_rating_table(p)
    assert t.basis == "pd" and not t.illustrative
    assert t.implied_rating(0.004, 2.0) == "Y"
    assert t.implied_rating(0.002, 2.0) == "X"


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("rating,horizon_years\nAAA,1\n", "<columns>"),
        (
            "rating,horizon_years,expected_loss_pct\nAAA,-1,0.1\n",
            "row 1 (rating=AAA).horizon_years",
        ),
        (
            "rating,horizon_years,expected_loss_pct\nAAA,1,abc\n",
            "row 1 (rating=AAA).expected_loss_pct",
        ),
        (
            "rating,horizon_years,expected_loss_pct\nAAA,2,0.1\nAAA,1,0.2\n",
            "row 2 (rating=AAA).horizon_years",
        ),
    ],
)
def test_bad_rating_table_is_a_clear_error(tmp_path, text, path):
    p = tmp_path / "t.csv"
    p.write_text(text)
    with pytest.raises(ae.DealError) as info:
        load_rating_table(p)
    assert info.value.problems[0].path == path and info.value.problems[0].file == str(p)


def test_unknown_rating_is_a_clear_error():
    with pytest.raises(ae.DealError, match="unknown rating"):
        load_rating_table().threshold("AAA+", 1.0)


def test_default_table_file_exists():
    assert DEFAULT_TABLE.is_file()
