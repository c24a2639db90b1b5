"""Rating table: loading, log-linear interpolation, implied rating, bad tables."""

from __future__ import annotations

import math

import pytest

import abs_engine as ae
from abs_engine.metrics import DEFAULT_TABLE, load_rating_table
from tests.conftest import count_pmf_gauss, homogeneous_deal, mc, tranche_el

#: the shipped table's scale, best first: letter grades and the notches derived between them
NOTCHED_SCALE = ("AAA", "AA+", "AA", "AA-", "A+", "A", "A-", "BBB+", "BBB", "BBB-")
#: each derived notch: (better letter, worse letter, weight of the worse one in log space)
DERIVED_NOTCHES = {
    "AA+": ("AAA", "AA", 1 / 2),
    "AA-": ("AA", "A", 1 / 3),
    "A+": ("AA", "A", 2 / 3),
    "A-": ("A", "BBB", 1 / 3),
    "BBB+": ("A", "BBB", 2 / 3),
}


def _shipped_rows() -> dict[str, dict[float, float]]:
    """The shipped CSV's rows as written (not through the loader): rating → horizon → %."""
    import csv

    lines = DEFAULT_TABLE.read_text().splitlines()
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    out: dict[str, dict[float, float]] = {}
    for r in rows:
        out.setdefault(r["rating"], {})[float(r["horizon_years"])] = float(r["expected_loss_pct"])
    return out


def test_shipped_notches_are_log_linear_between_the_letter_grades():
    """Every notch row of the shipped table is the geometric interpolation of its two
    neighbouring letter rows at the same horizon, rounded to 6 significant digits (the
    derivation the file's header states), so the file cannot drift from it unnoticed."""
    rows = _shipped_rows()
    assert tuple(rows) == NOTCHED_SCALE  # file order, best first
    horizons = set(rows["AAA"])
    assert horizons == {1.0, 2.0, 3.0, 5.0}
    for notch, (better, worse, w) in DERIVED_NOTCHES.items():
        assert set(rows[notch]) == horizons, notch
        for h in horizons:
            a, b = rows[better][h], rows[worse][h]
            expected = math.exp((1 - w) * math.log(a) + w * math.log(b))
            assert rows[notch][h] == pytest.approx(expected, rel=1e-5), (notch, h)
            assert rows[notch][h] == float(f"{expected:.6g}"), (notch, h)
    header = DEFAULT_TABLE.read_text().split("\nrating,")[0]
    assert "illustrative" in header.lower() and "log-linear" in header


def test_shipped_thresholds_strictly_increase_down_the_scale():
    """At every horizon of the file, and in between, each rating's threshold is strictly
    above the one of the rating above it."""
    rows = _shipped_rows()
    t = load_rating_table()
    for h in rows["AAA"]:
        values = [rows[r][h] for r in NOTCHED_SCALE]
        assert all(a < b for a, b in zip(values, values[1:], strict=False)), (h, values)
    for h in (0.5, 1.5, 4.0, 7.0, 15.0, 17.64, 20.2, 30.0, 100.0, 1000.0):
        values = [t.threshold(r, h) for r in NOTCHED_SCALE]
        assert all(a < b for a, b in zip(values, values[1:], strict=False)), (h, values)
        assert values[-1] < 1.0, (h, values)


def test_shipped_table_is_illustrative_and_interpolates_log_linearly():
    t = load_rating_table()
    assert t.illustrative and t.basis == "el"
    assert t.ratings == NOTCHED_SCALE
    assert t.threshold("AAA", 1.0) == pytest.approx(0.000028 / 100)
    # halfway between 1y (0.005979%) and 2y (0.0385%) for A: geometric mean
    assert t.threshold("A", 1.5) == pytest.approx(math.sqrt(0.005979 * 0.0385) / 100)
    # below the first knot: along the first segment
    slope = math.log(0.0385 / 0.005979)
    assert t.threshold("A", 0.5) == pytest.approx(0.005979 / 100 * math.exp(-0.5 * slope))
    # beyond the last knot (5 years): the 5-year threshold's constant hazard, continuous there
    assert t.threshold("BBB", 5.0) == pytest.approx(0.869 / 100)
    for h in (6.0, 10.0, 29.0):
        assert t.threshold("BBB", h) == pytest.approx(1 - (1 - 0.869 / 100) ** (h / 5), rel=1e-12)
    assert t.threshold("BBB", 5.0 + 1e-9) == pytest.approx(0.869 / 100, rel=1e-8)


def test_long_tranches_are_not_rated_above_short_ones_with_the_same_loss():
    """A tranche's rating does not improve as its WAL passes the table's last horizon (the
    last segment's log-slope made a 29-year tranche losing 18% AAA): at a given loss, the
    implied rating can only get better with a longer WAL up to where the thresholds stop
    growing, and losses of several percent never rate AAA."""
    t = load_rating_table()
    order = {r: k for k, r in enumerate(NOTCHED_SCALE)}
    order["below BBB-"] = len(NOTCHED_SCALE)
    for loss in (1e-6, 1e-4, 1e-3, 0.01, 0.05, 0.183):
        ranks = [order[t.implied_rating(loss, w)] for w in (1, 3, 5, 8, 14.1, 20, 29, 60)]
        assert ranks == sorted(ranks, reverse=True), (loss, ranks)
    assert t.implied_rating(0.183, 29.0) == "below BBB-"
    assert t.implied_rating(0.0485, 14.1) == "below BBB-"
    assert t.implied_rating(0.05, 29.9) != "AAA"


def test_ratings_listed_to_different_horizons_stay_in_order_beyond(tmp_path):
    """A table whose ratings end at different horizons loads when they are in order at the
    horizons it lists, and then stays in order at every horizon beyond (each carried at its
    own constant hazard); one out of order at a listed horizon is refused."""
    p = tmp_path / "t.csv"
    rows = "rating,horizon_years,expected_loss_pct\nX,1,0.1\nX,10,1.0\nY,1,0.2\nY,2,0.25\n"
    p.write_text(rows)
    t = load_rating_table(p)
    for h in (2.0, 9.0, 10.0, 11.0, 50.0, 1e3, 1e5):
        assert t.threshold("X", h) <= t.threshold("Y", h) <= 1.0, h
    p.write_text(rows.replace("X,10,1.0", "X,10,2.0"))
    with pytest.raises(ae.DealError, match="thresholds must not fall"):
        load_rating_table(p)
    # in order where both list a horizon, crossing where neither does (a review's cases):
    # a rating of one horizon stays flat while the other grows; the better one ends first
    for text in ("X,1,0.1\nX,2,0.2\nY,1,0.3\n",
                 "AAA,1,1\nAAA,2,2\nAA,1,2.01\nAA,2,2.01\nAA,5,4.94\n"):  # fmt: skip
        p.write_text("rating,horizon_years,expected_loss_pct\n" + text)
        with pytest.raises(ae.DealError, match="thresholds must not fall"):
            load_rating_table(p)


def test_a_fall_the_table_lists_is_named_at_its_listed_horizon_and_value(tmp_path):
    """AA under AAA at 3 years, as listed, was named at 2.70884 years of the check's grid
    with a value the file does not hold (0.2557; a one-horizon table "at 0.1 years"): a
    validator. A fall at a listed horizon is named there, with the file's value; one only
    between the listed horizons says so."""
    p = tmp_path / "t.csv"
    head = "rating,horizon_years,expected_loss_pct\n"
    cases = [
        ("AAA,1,0.01\nAAA,3,0.5\nAA,1,0.1\nAA,3,0.3\n", "at 3 years (AAA 0.5)", 0.3),
        ("AAA,2,0.5\nAA,2,0.3\n", "at 2 years (AAA 0.5)", 0.3),
        ("AAA,1,0.01\nAAA,3,0.5\nAA,2,0.1\n", "at 3 years (AAA 0.5; AA's threshold carried", 0.1),
        ("X,1,0.1\nX,2,0.2\nY,1,0.3\n", "the table lists neither", None),
        # the better rating's own value at a horizon it does not list, and that it is carried
        ("AAA,1,0.1\nAAA,2,0.19\nAA,1,0.15\nAA,2,0.2\nAA,3,0.22\n", "at 3 years (AAA 0.28", 0.22),
        (
            "AAA,1,0.1\nAAA,2,0.19\nAA,1,0.15\nAA,2,0.2\nAA,3,0.22\n",
            "; AAA's threshold carried",
            0.22,
        ),
    ]
    for text, where, value in cases:
        p.write_text(head + text)
        with pytest.raises(ae.DealError) as ei:
            load_rating_table(p)
        (q,) = ei.value.problems
        assert where in q.message, (text, q.message)
        if value is not None:
            assert q.value == pytest.approx(value), text


def test_implied_rating_is_best_rating_not_exceeded():
    t = load_rating_table()
    a_2y = 0.0385 / 100
    assert t.implied_rating(a_2y * 0.999, 2.0) == "A"
    assert t.implied_rating(a_2y * 1.001, 2.0) == "A-"  # the next notch down
    aa_2y = 0.0044 / 100
    assert t.implied_rating(aa_2y * 1.001, 2.0) == "AA-"
    assert t.implied_rating(aa_2y * 0.999, 2.0) == "AA"
    assert t.implied_rating(0.0, 3.0) == "AAA"
    assert t.implied_rating(0.5, 3.0) == "below BBB-"
    assert t.implied_rating(float("nan"), 3.0) == "n/a"


def test_a_tranche_that_never_repays_is_below_the_scale_when_it_loses_enough():
    """No path paid principal (WAL undefined): a tranche losing everything was rated "n/a"
    (a validator's EL of 1.0, and 0.9985 for a Sub paid residual cash only). Above the
    worst rating's threshold at the notes' longest life (legal final), where thresholds are
    largest, it is below the scale at any horizon it can have; a smaller loss, or no
    longest life given, stays unrated (a reviewer: the table's thresholds grow past its
    listed horizons, so the listed ones could not say "below")."""
    t = load_rating_table()
    worst = t.ratings[-1]
    nan = float("nan")
    at_3y = t.threshold(worst, 3.0)
    assert t.implied_rating(1.0, nan, 3.0) == f"below {worst}"
    assert t.implied_rating(0.9985, nan, 3.0) == f"below {worst}"
    assert t.implied_rating(at_3y * 1.001, nan, 3.0) == f"below {worst}"
    assert t.implied_rating(at_3y, nan, 3.0) == "n/a"
    # past the listed horizons the threshold grows: 2% is below the scale at 5 years, not
    # at 30
    assert t.implied_rating(0.02, 5.0) == f"below {worst}" and t.implied_rating(0.02, 30.0) != (
        f"below {worst}"
    )
    assert t.implied_rating(0.02, nan, 30.0) == "n/a"
    assert t.implied_rating(1.0, nan) == "n/a"  # no longest life: nothing to say
    assert t.implied_rating(nan, nan, 3.0) == "n/a"
    # and a run: ten obligors with PD 1 - 1e-16, the junior tranche losing all
    res = ae.simulate(homogeneous_deal(10, 1 - 1e-16, [0.0, 0.1]), mc(0.2, recovery=0.4),
                      n_paths=500, seed=1, progress=False)  # fmt: skip
    junior = res.tranches.iloc[1]
    assert junior.expected_loss == 1.0 and math.isnan(junior.wal_years)
    assert junior.implied_rating == f"below {worst}"


def test_an_el_equal_to_a_listed_threshold_gets_that_rating():
    """metric <= threshold: at a listed horizon the threshold is the table's value exactly
    (exp(log(x)) was a few ulps low, and 5.979e-05 at 1 year rated A-, not A)."""
    t = load_rating_table()
    for rating, horizons in t.horizons.items():
        for h, th in zip(horizons, t.thresholds[rating], strict=True):
            assert t.threshold(rating, float(h)) == th, (rating, h)
            assert t.implied_rating(float(th), float(h)) == rating, (rating, h, th)


@pytest.mark.slow
def test_exact_el_gets_the_rating_the_table_says():
    """Finite pool of 20 (PD 5%, rho 0.2, 40% recovery), senior above 30% of the pool, one
    year: its EL by conditional-binomial quadrature is 3.33e-5, inside the illustrative
    table's A band at 1 year (A+ 2.99e-5 < EL <= A 5.98e-5). The simulated tranche gets A
    (400,000 paths: slow)."""
    table = load_rating_table()
    exact = tranche_el(count_pmf_gauss(20, 0.05, 0.2), 0.6, 0.3, 1.0)
    assert table.implied_rating(exact, 1.0) == "A"
    res = ae.simulate(
        homogeneous_deal(20, 0.05, [0.0, 0.3]),
        mc(0.2, recovery=0.4),
        n_paths=400_000,
        seed=8,
        progress=False,
    )
    senior = res.tranches.iloc[0]
    assert abs(senior.expected_loss - exact) <= 4 * senior.expected_loss_se
    assert senior.wal_years == pytest.approx(1.0)
    assert senior.implied_rating == "A"


def test_a_comment_after_the_header_is_no_column(tmp_path):
    """A rating table's "#" starts a comment anywhere (as pandas reads it): a header with a
    trailing comment naming its columns was refused as naming one twice."""
    p = tmp_path / "t.csv"
    p.write_text("rating,horizon_years,expected_loss_pct  # was rating,horizon_years\n"
                 "AAA,1,0.01\n")  # fmt: skip
    assert load_rating_table(p).ratings == ("AAA",)


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
        # an implied rating is a cell of the CSV outputs: a spreadsheet would run it
        ("rating,horizon_years,expected_loss_pct\n=2+3,1,0.1\n", "row 1 (rating==2+3).rating"),
        ("rating,horizon_years,expected_loss_pct\n@S(1),1,0.1\n", "row 1 (rating=@S(1)).rating"),
        # an integer of 2**64 or more: a TypeError from NumPy and a traceback; now a horizon
        # beyond 100 years, or a threshold above 100%
        ("rating,horizon_years,expected_loss_pct\nAAA,18446744073709551616,0.1\n",
         "row 1 (rating=AAA).horizon_years"),
        ("rating,horizon_years,expected_loss_pct\nAAA,1,99999999999999999999\n",
         "row 1 (rating=AAA).expected_loss_pct"),
        # a repeated column was ignored (pandas renames it x.1), and so was a second horizon
        ("rating,horizon_years,expected_loss_pct,expected_loss_pct\nAAA,1,0.1,50\n", "<columns>"),
        ("rating,horizon_years,horizon,expected_loss_pct\nAAA,1,9,0.1\n", "<columns>"),
        ("# a note\nrating ,rating,horizon_years,expected_loss_pct\nA,AAA,1,0.1\n", "<columns>"),
    ],
)  # fmt: skip
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


# --- --rating-table wherever a rating is printed (issue #12, item 3) -----------------------------


@pytest.fixture
def strict_table(tmp_path):
    """A two-grade table under which every tranche of the bundled deal rates BB."""
    p = tmp_path / "strict.csv"
    p.write_text(
        "rating,horizon_years,expected_loss_pct\nAAA,1,1e-12\nAAA,5,1e-12\nBB,1,100\nBB,5,100\n"
    )
    return p


def test_run_and_sensitivity_take_a_rating_table(strict_table, capsys):
    import json

    from abs_engine.cli import main

    assert main(["run", "--json", "--paths", "2000", "--rating-table", str(strict_table)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {t["implied_rating"] for t in doc["tranches"]} == {"BB"}
    argv = ["sensitivity", "--x", "pd_multiplier=1,2", "--y", "recovery=0.1", "--paths", "1000"]
    assert main([*argv, "--rating-table", str(strict_table)]) == 0
    out = capsys.readouterr().out
    assert "(   BB)" in out and f"against the rating table {strict_table}" in out
    assert main([*argv, "--json", "--rating-table", str(strict_table)]) == 0
    grid = json.loads(capsys.readouterr().out)["grid"]
    assert {r["implied_rating"] for r in grid} == {"BB"}


def test_rating_table_flag_problems(tmp_path, capsys):
    from abs_engine.cli import main

    missing = tmp_path / "missing.csv"
    assert main(["run", "--paths", "100", "--rating-table", str(missing)]) == 2
    assert "--rating-table" in capsys.readouterr().err
    assert main(["run", "-s", "huake_base", "--rating-table", str(missing)]) == 2
    assert "--rating-table: only for Monte Carlo scenarios" in capsys.readouterr().err


def test_sensitivity_function_takes_a_rating_table(strict_table):
    import abs_engine as ae
    from abs_engine.metrics.rating import load_rating_table
    from abs_engine.solvers import sensitivity

    cd = ae.compile_deal(ae.load_deal())
    sc = ae.load_scenario("huake_mc", cd.deal)
    axes = (("pd_multiplier", [1.0]), ("recovery", [0.2]))
    grid = sensitivity(cd, sc, *axes, n_paths=500, rating_table=load_rating_table(strict_table))
    assert set(grid.implied_rating) == {"BB"}
    # a CSV path works as well as a loaded table (str or pathlib.Path)
    for path in (str(strict_table), strict_table):
        grid = sensitivity(cd, sc, *axes, n_paths=500, rating_table=path)
        assert set(grid.implied_rating) == {"BB"}


def test_size_tranche_takes_a_rating_table_or_a_path(strict_table):
    """``size_tranche``'s result carries an ``implied_rating``: the table (loaded or a path)
    rates it. Under the strict table the whole capital meets target BB at once."""
    from abs_engine.metrics.rating import load_rating_table
    from abs_engine.solvers import size_tranche

    deal = ae.load_deal()
    sc = ae.load_scenario("huake_mc", deal)
    for table in (load_rating_table(strict_table), strict_table, str(strict_table)):
        out = size_tranche(deal, sc, "A", target_rating="BB", n_paths=500, rating_table=table)
        assert out["implied_rating"] == "BB" and out["share_of_capital"] == 1.0


@pytest.mark.parametrize("func", ["size_tranche", "sensitivity"])
@pytest.mark.parametrize("bad", [123, 1.5, b"table.csv", ["t.csv"]])
def test_solver_rating_table_of_the_wrong_type(func, bad):
    """Anything but a path or a RatingTable: an ArgumentTypeError naming the function, the
    argument and the value, before any path runs."""
    from abs_engine.errors import short_repr
    from abs_engine.solvers import sensitivity, size_tranche

    deal = ae.load_deal()
    sc = ae.load_scenario("huake_mc", deal)
    with pytest.raises(ae.ArgumentTypeError) as info:
        if func == "size_tranche":
            size_tranche(deal, sc, "A", target_el=0.01, n_paths=10, rating_table=bad)
        else:
            axes = (("pd_multiplier", [1.0]), ("recovery", [0.2]))
            sensitivity(ae.compile_deal(deal), sc, *axes, n_paths=10, rating_table=bad)
    assert f"{func}: rating_table" in str(info.value) and short_repr(bad) in str(info.value)


def test_the_cli_names_a_folder_given_as_the_rating_table_as_a_folder(tmp_path):
    """``--rating-table FOLDER`` said "rating table not found" where the API said it is a
    folder (a validator); a missing file is still "not found"."""
    from tests.conftest import run_cli

    r = run_cli("run", "--paths", "100", "--no-progress", "--rating-table", tmp_path)
    assert r.returncode == 2 and "the path is a folder, not a rating table" in r.stderr
    with pytest.raises(ae.DealError, match="rating table not found"):
        load_rating_table(tmp_path / "missing.csv")


def test_solver_rating_table_path_problems(tmp_path):
    """A missing file or a folder: a DealError naming the path; a bad row: the file, the row
    and the value."""
    from abs_engine.solvers import size_tranche

    deal = ae.load_deal()
    sc = ae.load_scenario("huake_mc", deal)
    missing = tmp_path / "missing.csv"
    with pytest.raises(ae.DealError, match="rating table not found") as info:
        size_tranche(deal, sc, "A", target_el=0.01, n_paths=10, rating_table=missing)
    assert info.value.problems[0].file == str(missing)
    with pytest.raises(ae.DealError, match="folder"):
        size_tranche(deal, sc, "A", target_el=0.01, n_paths=10, rating_table=tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("rating,horizon_years,expected_loss_pct\nAAA,1,abc\n")
    with pytest.raises(ae.DealError) as info:
        size_tranche(deal, sc, "A", target_el=0.01, n_paths=10, rating_table=str(bad))
    p = info.value.problems[0]
    assert (p.file, p.path, p.value) == (str(bad), "row 1 (rating=AAA).expected_loss_pct", "abc")


def test_size_command_takes_a_rating_table(strict_table, capsys):
    import json

    from abs_engine.cli import main

    argv = ["size", "--tranche", "A", "--target", "BB", "--paths", "500", "--json"]
    assert main([*argv, "--rating-table", str(strict_table)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["implied_rating"] == "BB" and doc["rating_table"]["source"] == str(strict_table)


@pytest.mark.parametrize(
    "argv",
    [
        ["price", "--tranche", "A", "--curve", "0.02"],
        ["breakeven", "--tranche", "A", "--param", "pd_multiplier"],
        ["stress"],
        ["validate", "deal.toml"],
    ],
)
def test_commands_that_print_no_rating_take_no_rating_table(argv, capsys):
    """``price`` (a coupon), ``breakeven`` (a parameter value), ``stress`` (deterministic
    tables) and ``validate`` print no implied rating, so they have no ``--rating-table``."""
    from abs_engine.cli import main

    assert main([*argv, "--rating-table", "t.csv"]) == 2
    assert "--rating-table" in capsys.readouterr().err
