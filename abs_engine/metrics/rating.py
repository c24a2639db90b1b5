"""Data-driven rating mapping: a table of (rating, horizon, threshold) loaded from CSV.

The implied rating of a tranche is the best rating whose threshold at the tranche's WAL is not
exceeded by its metric (expected loss on the EL basis, probability of default on the PD
basis). Thresholds are interpolated log-linearly in the horizon (log threshold linear in
years) and extrapolated along the first segment below the table's first horizon. Beyond a
rating's last horizon H its threshold grows at the constant hazard of its value there:
1 - (1 - th(H))^(h / H) (a rating listed at one horizon keeps its threshold at every
horizon). That stays below 100%, and a table is loaded only if its ratings stay in order
at every horizon it lists and on a grid out to 300 years; the last segment's log-slope
would not have kept them so: the shipped table's AAA threshold, extended along its
3-5 year segment, passed AA+'s at 17.6 years and 100% at 20.1, so that a tranche of a 29-year
WAL losing 18% came out AAA.

The table shipped with the package, ``idealized_el_illustrative.csv``, is ILLUSTRATIVE: its
letter grades (AAA, AA, A, BBB, BBB-) are values as commonly reproduced from idealized
expected-loss tables in public ABS literature, not verified against any agency; the notches
between them (AA+, AA-, A+, A-, BBB+) are derived from those letters by log-linear
interpolation at each horizon (the file's header says how). Production users load their
agency's table.
"""

from __future__ import annotations

import functools
import io
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ArgumentTypeError, DealError, ProblemCollector, check_path, short_repr
from ..schema.common import FORMULA_START
from ..schema.files import csv_header, note_input, repeated
from ..schema.load import require_file

__all__ = [
    "DEFAULT_TABLE",
    "RatingTable",
    "default_rating_table",
    "implied_ratings",
    "load_rating_table",
    "rating_table_arg",
]

DEFAULT_TABLE = Path(__file__).resolve().parents[1] / "data" / "idealized_el_illustrative.csv"

#: accepted threshold columns and the factor that turns them into decimals
_THRESHOLD_COLUMNS = {
    "expected_loss_pct": ("el", 0.01),
    "expected_loss": ("el", 1.0),
    "default_probability_pct": ("pd", 0.01),
    "default_probability": ("pd", 1.0),
    "threshold": ("el", 1.0),
}


@dataclass(frozen=True)
class RatingTable:
    """Ratings best first, each with increasing horizons (years) and decimal thresholds.

    Attributes
    ----------
    ratings : tuple[str, ...]          best first (file order)
    horizons : dict[str, ndarray]      years, increasing
    thresholds : dict[str, ndarray]    decimals (0.0001 = 0.01%), > 0
    basis : str                        "el" (expected loss) or "pd" (default probability)
    source : str
    illustrative : bool                True for the table shipped with the package
    """

    ratings: tuple[str, ...]
    horizons: Mapping[str, np.ndarray]
    thresholds: Mapping[str, np.ndarray]
    basis: str
    source: str
    illustrative: bool

    def threshold(self, rating: str, horizon_years: float) -> float:
        """The rating's threshold at a horizon: log-linear in years up to its last horizon,
        at that threshold's constant hazard beyond (see the module docstring); one horizon:
        the same threshold at every horizon."""
        if rating not in self.horizons:
            raise DealError.one(
                self.source, "rating", f"unknown rating; the table has {list(self.ratings)}", rating
            )
        h, th = self.horizons[rating], np.log(self.thresholds[rating])
        if len(h) == 1:
            return float(self.thresholds[rating][0])
        if horizon_years > h[-1]:
            return _constant_hazard(float(self.thresholds[rating][-1]), h[-1], horizon_years)
        k = int(np.clip(np.searchsorted(h, horizon_years), 1, len(h) - 1))
        w = (horizon_years - h[k - 1]) / (h[k] - h[k - 1])
        if w == 0.0 or w == 1.0:  # a listed horizon: its threshold exactly (exp(log(x)) is
            # a few ulps off, and an EL equal to it was rated a notch down)
            return float(self.thresholds[rating][k - 1 if w == 0.0 else k])
        return float(math.exp(th[k - 1] + w * (th[k] - th[k - 1])))

    def implied_rating(
        self, metric: float, horizon_years: float, longest_years: float = math.nan
    ) -> str:
        """Best rating whose threshold at ``horizon_years`` is at least ``metric``; below the
        worst, ``"below <worst>"``. A NaN metric gives ``"n/a"``; so does a NaN horizon (a WAL
        no path defines: no principal ever paid) unless the metric is above the worst
        rating's threshold at ``longest_years``, the longest the notes can live (legal
        final): thresholds grow with the horizon, so it is then below the scale at any
        horizon the tranche can have (a tranche losing everything was "n/a")."""
        worst = self.ratings[-1]
        if np.isfinite(metric) and np.isnan(horizon_years):
            if not np.isfinite(longest_years) or longest_years <= 0.0:
                return "n/a"
            return f"below {worst}" if metric > self.threshold(worst, longest_years) else "n/a"
        if not (np.isfinite(metric) and np.isfinite(horizon_years)):
            return "n/a"
        for r in self.ratings:
            if metric <= self.threshold(r, max(horizon_years, 1e-6)):
                return r
        return f"below {worst}"


def _constant_hazard(th_last: float, h_last: float, horizon_years: float) -> float:
    """A cumulative threshold ``th_last`` at ``h_last`` years carried to ``horizon_years`` at
    its constant hazard -ln(1 - th_last) / h_last: 1 - (1 - th_last)^(horizon / h_last)
    (100% stays 100%)."""
    if th_last >= 1.0:
        return 1.0
    return float(-math.expm1(math.log1p(-th_last) * (horizon_years / h_last)))


def implied_ratings(
    table: RatingTable,
    expected_loss: np.ndarray,
    default_probability: np.ndarray,
    wal_years: np.ndarray,
    longest_years: float = math.nan,
) -> list[str]:
    """The implied rating of each tranche, on the table's basis (``longest_years``: the
    deal's legal final in years from closing, for a WAL no path defines: see
    :meth:`RatingTable.implied_rating`).

    Parameters
    ----------
    table : RatingTable
    expected_loss : float64[J]        PV loss, share of balance (the "el" basis)
    default_probability : float64[J]  probability of any shortfall (the "pd" basis)
    wal_years : float64[J]            the horizon each tranche is rated at

    Returns
    -------
    list[str]  J ratings (see :meth:`RatingTable.implied_rating`)
    """
    metric = expected_loss if table.basis == "el" else default_probability
    return [
        table.implied_rating(m, w, longest_years) for m, w in zip(metric, wal_years, strict=True)
    ]


@functools.lru_cache(maxsize=1)
def default_rating_table() -> RatingTable:
    """The shipped (illustrative) table, read once per process: every ``simulate`` call
    needs it, and reading the CSV costs about 3 ms. Its arrays are read-only, as the one
    table is shared by every caller."""
    table = load_rating_table()
    for arr in (*table.horizons.values(), *table.thresholds.values()):
        arr.flags.writeable = False
    return table  # the dicts stay plain (a mapping proxy would not pickle)


def rating_table_arg(value: Any, func: str, arg: str = "rating_table") -> RatingTable:
    """A function's ``rating_table`` argument as a table: None gives the shipped illustrative
    table, a CSV path (``str`` or ``os.PathLike``) is loaded (a missing file, a folder or a
    bad row is a :class:`DealError` naming the file), a :class:`RatingTable` is used as given;
    anything else is an :class:`ArgumentTypeError` naming ``func``, ``arg`` and the value."""
    if value is None:
        return default_rating_table()
    if isinstance(value, RatingTable):
        return value
    if isinstance(value, str | os.PathLike):
        from ..schema.load import require_file

        p = check_path(value, func, arg)
        require_file(p, "rating table")
        return load_rating_table(p)
    raise ArgumentTypeError(
        f"{func}: {arg} must be a CSV path or a RatingTable (load_rating_table), got "
        f"{short_repr(value)} ({type(value).__name__})"
    )


def _number(cell: Any) -> float:
    """A cell as a float; NaN for text that is no number (an integer of 2**64 or more came
    back from pandas as a Python int, which NumPy's isfinite refused with a TypeError)."""
    try:
        return float(pd.to_numeric(cell, errors="coerce"))
    except (TypeError, ValueError, OverflowError):
        return math.nan


def load_rating_table(path: str | Path | None = None) -> RatingTable:
    """Load a rating table CSV (lines starting with ``#`` are comments).

    Columns: ``rating``, ``horizon_years`` (or ``horizon``), and one threshold column:
    ``expected_loss_pct`` / ``expected_loss`` (EL basis) or ``default_probability_pct`` /
    ``default_probability`` (PD basis); ``_pct`` columns are in percent. Ratings appear best
    first. Errors name the file, the row and the value."""
    p = DEFAULT_TABLE if path is None else check_path(path, "load_rating_table", "path")
    pc = ProblemCollector(p)
    require_file(p, "rating table")  # missing, a folder, a device: each said as it is
    try:
        note_input(p)
        text = p.read_text(encoding="utf-8-sig")
        df = pd.read_csv(io.StringIO(text), comment="#", dtype={"rating": str})
    except Exception as exc:
        raise DealError.one(p, "<syntax>", f"cannot read rating table: {exc}") from None
    names = csv_header(text, comments=True)
    if repeated(names) or {"horizon", "horizon_years"} <= set(names):
        # as written (pandas renames a repeat "x.1", and the copy was ignored)
        raise DealError.one(p, "<columns>", "a column is named twice (or both horizon and "
                            "horizon_years)", names)  # fmt: skip
    df.columns = [c.strip() for c in df.columns]
    hcol = "horizon_years" if "horizon_years" in df.columns else "horizon"
    tcols = [c for c in df.columns if c in _THRESHOLD_COLUMNS]
    if "rating" not in df.columns or hcol not in df.columns or len(tcols) != 1:
        raise DealError.one(
            p,
            "<columns>",
            "need columns rating, horizon_years and exactly one of "
            + ", ".join(_THRESHOLD_COLUMNS),
            list(df.columns),
        )
    basis, scale = _THRESHOLD_COLUMNS[tcols[0]]
    ratings: list[str] = []
    horizons: dict[str, list[float]] = {}
    thresholds: dict[str, list[float]] = {}
    for k, row in enumerate(df.itertuples(index=False)):
        r = row.rating.strip() if isinstance(row.rating, str) else ""  # empty: NaN
        h = _number(getattr(row, hcol))
        v = _number(getattr(row, tcols[0]))
        where = f"row {k + 1} (rating={r})" if r else f"row {k + 1}"
        if not np.isfinite(h) or h <= 0 or h > 100:
            pc.add(
                f"{where}.{hcol}",
                "horizon must be a positive number of years, at most 100",
                getattr(row, hcol),
            )
            continue
        if not np.isfinite(v) or v <= 0 or v * scale > 1:
            pc.add(
                f"{where}.{tcols[0]}",
                f"threshold must be a positive number, at most {1 / scale:g} (100%)",
                getattr(row, tcols[0]),
            )
            continue
        if not r or r.lower() == "nan":
            pc.add(f"{where}.rating", "rating must be a non-empty name", r)
            continue
        if r.startswith(FORMULA_START):  # an implied rating is a cell of the CSV outputs
            pc.add(f"{where}.rating", f"a rating may not start with {r[0]!r}: a spreadsheet "
                   "opening the CSV outputs would run it as a formula", r)  # fmt: skip
            continue
        if r not in horizons:
            ratings.append(r)
            horizons[r], thresholds[r] = [], []
        elif h <= horizons[r][-1]:
            pc.add(f"{where}.{hcol}", "horizons of a rating must increase", h)
            continue
        elif v * scale < thresholds[r][-1]:
            pc.add(f"{where}.{tcols[0]}", "thresholds of a rating must not fall with horizon", v)
            continue
        horizons[r].append(float(h))
        thresholds[r].append(float(v) * scale)
    if not ratings:
        pc.add("<rows>", "the table has no ratings")
    pc.raise_if_any()
    table = RatingTable(
        ratings=tuple(ratings),
        horizons={r: np.array(v) for r, v in horizons.items()},
        thresholds={r: np.array(v) for r, v in thresholds.items()},
        basis=basis,
        source=str(p),
        illustrative=p.resolve() == DEFAULT_TABLE.resolve(),
    )
    _check_order(table, pc, tcols[0], scale)
    return table


#: horizons (years) where every pair of neighbouring ratings is checked for order, besides
#: those the table lists: 0.1 to 300 years, 200 points evenly spaced in log
_ORDER_GRID = np.geomspace(0.1, 300.0, 200)


def _check_order(table: RatingTable, pc: ProblemCollector, column: str, scale: float) -> None:
    """Ratings are listed best first: a worse rating may not have a lower threshold than a
    better one at any horizon either of them lists, nor on :data:`_ORDER_GRID` (else implied
    ratings jump around): between and beyond the listed horizons a rating's threshold is
    log-linear, carried at a constant hazard or flat (one horizon), and two ratings whose
    listed horizons differ can cross where neither lists one. The listed horizons are
    checked first, so a fall the file shows is named at its own horizon and value."""
    for better, worse in zip(table.ratings, table.ratings[1:], strict=False):
        listed = np.union1d(table.horizons[better], table.horizons[worse])
        for h in (*listed, *np.setdiff1d(_ORDER_GRID, listed)):
            if table.threshold(worse, h) < table.threshold(better, h) * (1 - 1e-9):
                carried = [r for r in (better, worse) if h not in table.horizons[r]]
                notes = [f"{better} {table.threshold(better, h) / scale:g}"]
                if len(carried) == 2:
                    notes.append("the table lists neither: each carried from its horizons")
                elif carried:
                    notes.append(f"{carried[0]}'s threshold carried from the horizons it lists")
                where = f"at {h:g} years ({'; '.join(notes)})"
                pc.add(
                    f"rating {worse}.{column}",
                    f"thresholds must not fall from a better rating to a worse one (ratings "
                    f"best first): {worse} is below {better} {where}",
                    table.threshold(worse, h) / scale,
                )
                break
    pc.raise_if_any()
