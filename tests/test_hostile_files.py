"""Hostile deal, scenario and tape files: every case must fail with a
:class:`~abs_engine.errors.DealError` naming the file, the field path and the value, both through
the Python API and through the command line (``abs-engine validate``, in-process: exit status
2, one ``error:`` message on stderr, no traceback) — never a raw exception, a hang or a wrong
success.

The corpus is generated: deal variants from the shared builder ``base_deal`` and from the
bundled deal ``waterfalls/huake_2025.toml`` (read, mutated, written to ``tmp_path`` as JSON and
as TOML), scenario variants checked against the bundled deal, and files that are broken as
files (nesting 100,000 levels deep, binary, not UTF-8, empty, a folder, a 5,000-character
path, repeated JSON keys...). A second, smaller corpus checks the warnings: deals that are
allowed but probably wrong validate with exit status 0 and a ``warning:`` line.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import os
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import abs_engine as ae
from abs_engine.compile.model import compile_model
from abs_engine.errors import AbsEngineError, DealError
from abs_engine.schema.load import MAX_NESTING
from abs_engine.schema.scenario import DeterministicScenario
from tests.conftest import ROOT, base_deal, run_cli

HUAKE: dict[str, Any] = tomllib.loads((ROOT / "waterfalls" / "huake_2025.toml").read_text())
LONG = "/tmp/" + "x" * 4990 + ".toml"  # 5,000 characters
DEEP = 100_000


# ---- writing documents ---------------------------------------------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string (\\uXXXX escapes are TOML too)
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        items = [f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items() if x is not None]
        return "{" + ", ".join(items) + "}"
    raise TypeError(type(v))


def to_toml(doc: dict[str, Any]) -> str:
    """A document as TOML: one line per top-level key, tables inline (None values dropped:
    TOML has no null)."""
    return "".join(f"{json.dumps(k)} = {_toml_value(v)}\n" for k, v in doc.items() if v is not None)


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, default=lambda d: d.isoformat())


def write(folder: Path, name: str, doc: dict[str, Any] | str | bytes) -> Path:
    p = folder / name
    if isinstance(doc, bytes):
        p.write_bytes(doc)
    elif isinstance(doc, str):
        p.write_text(doc)
    else:
        p.write_text(to_toml(doc) if name.endswith(".toml") else to_json(doc))
    return p


def huake() -> dict[str, Any]:
    return copy.deepcopy(HUAKE)


def base() -> dict[str, Any]:
    return base_deal()


# ---- cases ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileCase:
    id: str
    #: writes the files into the folder; returns (deal, scenario or None)
    make: Callable[[Path], tuple[Path | str, Path | str | None]]
    path: str | None  # a problem must have exactly this field path (None: not checked)
    value: str  # a fragment of the error text: the offending value (or a word for it)
    #: the command-line arguments after ``validate DEAL`` (default: ``--scenario SCEN``)
    cli: bool = True
    run: bool = False  # also ``abs-engine run DEAL`` (fails before anything runs)
    extra: tuple[str, ...] = field(default=())


def _deal_case(
    id: str,
    start: Callable[[], dict[str, Any]],
    mutate: Callable[[dict[str, Any]], Any],
    path: str | None,
    value: str,
    formats: tuple[str, ...] = ("json", "toml"),
) -> Iterator[FileCase]:
    for fmt in formats:

        def make(folder: Path, fmt: str = fmt) -> tuple[Path, None]:
            doc = start()
            mutate(doc)
            return write(folder, f"deal.{fmt}", doc), None

        yield FileCase(f"deal-{id}-{fmt}", make, path, value)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation: set ``a.b[2].c`` to ``value``."""

    def mutate(doc: dict[str, Any]) -> None:
        parts: list[str | int] = []
        for part in path.replace("]", "").replace("[", ".").split("."):
            parts.append(int(part) if part.isdigit() else part)
        cur: Any = doc
        for part in parts[:-1]:
            cur = cur.setdefault(part, {}) if isinstance(cur, dict) else cur[part]
        cur[parts[-1]] = copy.deepcopy(value)

    return mutate


def _dates(**kw: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        doc["dates"].update(kw)

    return mutate


def _all(*fns: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        for fn in fns:
            fn(doc)

    return mutate


JAN_0001 = [f"0001-01-{d:02d}" for d in range(1, 32)]
ALL_2026 = [(dt.date(2026, 1, 1) + dt.timedelta(days=k)).isoformat() for k in range(400)]


def deal_cases() -> Iterator[FileCase]:
    # ---- a NUL in a scenario the deal names (the message named neither file nor field) ----
    for named in ("base_scenario", "deterministic_scenario"):
        yield from _deal_case(f"nul-in-{named}", huake, _set(named, "huake_mc\0"), named,
                              "NUL character")  # fmt: skip
    # ---- names a spreadsheet would run as formulas in the CSV outputs -------------------------
    for where, name in (("tranches[0].name", '=HYPERLINK("http://x.example","A")'),
                        ("fees[0].name", "@custodian"), ("accounts[0].name", "+reserve"),
                        ("name", "-deal")):  # fmt: skip
        yield from _deal_case(f"formula-{where}", huake, _set(where, name), where,
                              "would run it as a formula")  # fmt: skip
    # ---- control characters in names: an ESC reached the terminal as an escape sequence, and
    # U+FFFF made the workbook's XML invalid ------------------------------------------------------
    for where, name in (("name", "Huake\x1b[2J"), ("tranches[0].name", "A\x07"),
                        ("fees[0].name", "fee\x9b1m"), ("tranches[1].name", "Sub\uffff"),
                        ("pool.obligors[0].id", "HK\r01"), ("currency", "CN\x1b[2J")):  # fmt: skip
        yield from _deal_case(f"control-{where}", huake, _set(where, name), where,
                              "control characters")  # fmt: skip
    # ---- dates that overflow the calendar -------------------------------------------------------
    for freq in ("monthly", "quarterly", "semi_annual", "annual"):
        yield from _deal_case(
            f"legal-final-9999-{freq}",
            base,
            _dates(legal_final="9999-12-31", frequency=freq),
            "dates.legal_final",
            "9999-12-31",
        )
    yield from _deal_case(
        "huake-legal-final-9999",
        huake,
        _dates(legal_final=dt.date(9999, 12, 31)),
        "dates.legal_final",
        "9999-12-31",
    )
    yield from _deal_case(
        "legal-final-2200-monthly",
        base,
        _dates(legal_final="2200-01-01", frequency="monthly"),
        "dates.legal_final",
        "2200-01-01",
    )
    # ---- business-day rolls that leave the calendar (monthly, on a holidays calendar) --------
    rolls = [
        ("closing-0001-preceding-before-year-1", "0001-01-01", "0001-01-02", "0001-12-31",
         "preceding", ["0001-01-01", "0001-01-02"], "dates.first_payment", "0001-01-02"),
        ("closing-0001-modified-following-holiday-month", "0001-01-01", "0001-01-06",
         "0001-12-31", "modified_following", JAN_0001, "dates.first_payment", "0001-01-06"),
        ("first-payment-rolled-past-9999", "9999-12-01", "9999-12-30", "9999-12-31",
         "following", ["9999-12-30", "9999-12-31"], "dates.first_payment", "9999-12-30"),
        ("legal-final-rolled-past-9999", "9999-01-01", "9999-06-30", "9999-12-31", "following",
         ["9999-12-31"], "dates.legal_final", "9999-12-31"),
    ]  # fmt: skip
    for id, closing, first, final, roll, holidays, path, value in rolls:
        calendar = {"kind": "holidays", "holidays": holidays}
        mutate = _dates(
            closing=closing, first_payment=first, legal_final=final, frequency="monthly",
            business_day=roll, calendar=calendar,
        )  # fmt: skip
        yield from _deal_case(id, base, mutate, path, value)
    # an empty name fell back to no scenario (run) or blamed load_scenario (validate)
    for ref in ("base_scenario", "deterministic_scenario"):
        for v in ("", "   "):
            yield from _deal_case(f"{ref}-{v!r}", base, _set(ref, v), ref, repr(v))
    yield from _deal_case(
        "no-business-day-in-a-year",
        base,
        _dates(business_day="following", calendar={"kind": "holidays", "holidays": ALL_2026}),
        "dates.first_payment",
        "no business day",
    )
    yield from _deal_case(
        "first-payment-after-legal-final",
        base,
        _dates(first_payment="2029-01-01"),
        "dates.legal_final",
        "2028-01-01",
    )
    yield from _deal_case(
        "first-payment-on-closing",
        base,
        _dates(first_payment="2025-01-01"),
        "dates.first_payment",
        "2025-01-01",
    )
    for key, bad in [
        ("closing", "0000-01-01"),
        ("legal_final", "10000-01-01"),
        ("legal_final", "2028-02-30"),
        ("closing", 20250101),
        ("first_payment", "2026-01-01T00:00:00"),
    ]:
        yield from _deal_case(
            f"date-{key}-{bad}", base, _dates(**{key: bad}), f"dates.{key}", str(bad)
        )
    yield from _deal_case(
        "calendar-not-registered",
        base,
        _dates(calendar={"kind": "named", "name": "no_such_calendar"}),
        "dates.calendar.name",
        "no_such_calendar",
    )
    yield from _deal_case(
        "frequency-weekly", base, _dates(frequency="weekly"), "dates.frequency", "weekly"
    )

    # ---- a tranche named twice in one step, empty lists where a value is needed ------------------
    twice = [
        ("pay-interest", base, "waterfalls.normal[0].tranches", ["A", "A"], 1),
        ("pay-principal", base, "waterfalls.normal[1].tranches", ["A", "A"], 1),
        ("huake-pay-principal", huake, "waterfalls.normal[7].tranches", ["A", "Sub", "A"], 2),
        ("huake-accelerated", huake, "waterfalls.accelerated[4].tranches", ["A", "A"], 1),
        ("huake-draw-reserve", huake, "waterfalls.normal[5].tranches", ["A", "A"], 1),
        ("huake-support", huake, "support[0].tranches", ["A", "A"], 1),
        ("huake-trigger", huake, "triggers[2].tranches", ["A", "A"], 1),
        ("huake-reserve-target", huake, "accounts[0].target.tranches", ["A", "A"], 1),
    ]
    for id, start, path, names, k in twice:
        yield from _deal_case(
            f"twice-{id}", start, _set(path, names), f"{path}[{k}]", "named twice"
        )
    empties = [
        ("tranches", base, "tranches"),
        ("pay-interest-tranches", base, "waterfalls.normal[0].tranches"),
        ("normal-waterfall", base, "waterfalls.normal"),
        ("huake-accelerated", huake, "waterfalls.accelerated"),
        ("huake-post-default", huake, "waterfalls.post_default"),
        ("huake-support-tranches", huake, "support[0].tranches"),
        ("huake-trigger-tranches", huake, "triggers[2].tranches"),
    ]
    for id, start, path in empties:
        yield from _deal_case(f"empty-{id}", start, _set(path, []), path, "[]")
    yield from _deal_case(
        "empty-pool", base, _set("pool.obligors", []), "pool.obligors", "the pool is empty"
    )

    # ---- schema_version must be the integer 1 ----------------------------------------------------
    for v in [True, False, 1.0, "1", 2, 0]:
        yield from _deal_case(
            f"schema-version-{v!r}", base, _set("schema_version", v), "schema_version", repr(v)
        )
    yield from _deal_case(
        "schema-version-null",
        base,
        _set("schema_version", None),
        "schema_version",
        "None",
        formats=("json",),
    )

    # ---- strict booleans, huge and non-finite numbers ----------------------------------------
    for path, v, start in [
        ("tranches[0].interest_on_shortfall", 1, base),
        ("tranches[0].interest_on_shortfall", "yes", base),
        ("waterfalls.normal[1].allow_out_of_order", "true", base),
        ("triggers[0].curable", 1, huake),
        ("coverage_ratio.include_fees", 0, huake),
        ("pool.obligors[0].guarantor", "no", base),
    ]:
        yield from _deal_case(f"bool-{path}-{v!r}", start, _set(path, v), path, repr(v))
    for path, v in [
        ("tranches[0].balance", 1e300),
        ("pool.obligors[0].balance", 1e300),
        ("tranches[0].balance", 1e16),
    ]:
        yield from _deal_case(f"huge-{path}-{v:g}", base, _set(path, v), path, f"{v:g}")
    yield from _deal_case(
        "trigger-periods-1e20",
        huake,
        _set(
            "triggers[0]",
            {"kind": "coverage_ratio", "name": "cov", "threshold": 1.0, "periods": 10**20},
        ),
        "triggers[0].periods",
        str(10**20),
    )
    for path, v in [("tranches[0].balance", math.nan), ("base_rate", math.inf)]:
        yield from _deal_case(
            f"nonfinite-{path}-{v}", base, _set(path, v), path, repr(v), formats=("toml",)
        )
        yield from _deal_case(
            f"nonfinite-{path}-{v}", base, _set(path, v), "<syntax>", "JSON", formats=("json",)
        )
    yield from _deal_case(
        "base-rate-string", base, _set("base_rate", "0.02"), "base_rate", "'0.02'"
    )

    # ---- PD curves -----------------------------------------------------------------------------
    pd_ts = "pool.obligors[0].pd"
    for id, curve, path in [
        (
            "flat-horizons",
            {"horizons_years": [1.0, 1.0], "cumulative": [0.1, 0.2]},
            "horizons_years[1]",
        ),
        ("falling-pd", {"horizons_years": [1.0, 2.0], "cumulative": [0.2, 0.1]}, "cumulative[1]"),
        ("lengths", {"horizons_years": [1.0, 2.0], "cumulative": [0.1]}, "cumulative"),
        ("empty", {"horizons_years": [], "cumulative": []}, "horizons_years"),
    ]:
        yield from _deal_case(
            f"pd-term-structure-{id}",
            base,
            _set(pd_ts, {"kind": "term_structure", **curve}),
            f"{pd_ts}.{path}",
            "",
        )
        yield from _deal_case(
            f"pd-rating-class-{id}",
            base,
            _all(
                _set(pd_ts, {"kind": "rating_class", "rating_class": "B"}),
                _set("pool.pd_classes", [{"name": "B", **curve}]),
            ),
            f"pool.pd_classes[0].{path}",
            "",
        )
    yield from _deal_case(
        "pd-horizon-inf",
        base,
        _set(pd_ts, {"kind": "term_structure", "horizons_years": [1.0, math.inf],
                     "cumulative": [0.1, 0.2]}),
        f"{pd_ts}.horizons_years[1]",
        "inf",
        formats=("toml",),
    )  # fmt: skip

    # ---- notes that do not match the pool ----------------------------------------------------
    yield from _deal_case(
        "notes-3x-pool", base, _set("tranches[0].balance", 300.0), "tranches", "300.00"
    )

    def pool_of_35m(doc: dict[str, Any]) -> None:  # 100 million of notes on 35 million
        for o in doc["pool"]["obligors"]:
            o["balance"] *= 0.35

    yield from _deal_case(
        "huake-notes-on-35m", huake, pool_of_35m, "tranches", "35,000,000.00 yuan"
    )

    # ---- found by fuzzing: references and bounds the first corpus missed -----------------------
    ts = {"horizons_years": [1.0], "cumulative": [0.05]}
    yield from _deal_case(
        "pd-classes-duplicate-name",
        base,
        _all(
            _set("pool.obligors[0].pd", {"kind": "rating_class", "rating_class": "B"}),
            _set("pool.pd_classes", [{"name": "B", **ts}, {"name": "B", **ts}]),
        ),
        "pool.pd_classes[1].name",
        "duplicate rating class",
    )
    yield from _deal_case(
        "huake-provider-sector-unknown",
        huake,
        _set("support[0].provider.sector", "ZZZ"),
        "support[0].provider.sector",
        "'ZZZ'",
    )
    yield from _deal_case(
        "huake-trap-account-without-trap-effect",
        huake,
        _set("triggers[0].trap_account", "reserve"),
        "triggers[0].trap_account",
        "trap_excess_spread",
    )
    for count in (2**53 + 1, 10**30):
        yield from _deal_case(
            f"patent-count-{count}",
            base,
            _set("pool.obligors[0].collateral", {"appraisal": 50.0, "patent_count": count}),
            "pool.obligors[0].collateral.patent_count",
            str(count)[:12],
        )
    for closing in ("0001-01-01", "2022-12-31"):
        yield from _deal_case(
            f"first-period-from-{closing}",
            base,
            _dates(closing=closing),
            "dates.first_payment",
            "more than two years",
        )
    for id, cal, where in [
        ("weekday", {"working_weekends": ["2026-01-07"]}, "Wednesday"),
        ("also-holiday", {"holidays": ["2026-01-03"], "working_weekends": ["2026-01-03"]}, "both"),
    ]:
        yield from _deal_case(
            f"calendar-working-weekend-{id}",
            base,
            _dates(calendar={"kind": "holidays", **cal}),
            "dates.calendar.working_weekends[0]",
            where,
        )

    # ---- a pool tape path that is no file --------------------------------------------------------
    for id, tape_path, value in [
        ("missing", "no_such_tape.csv", "not found"),
        ("folder", ".", "folder"),
        ("empty-path", "", "folder"),
        ("long", "t" * 5000 + ".csv", "cannot be opened"),
        ("nul", "a\x00b.csv", "invalid path"),
        ("device", "/dev/null", "device"),
    ]:
        yield from _deal_case(
            f"tape-path-{id}",
            base,
            _set("pool", {"tape": {"path": tape_path}}),
            "pool.tape.path",
            value,
            formats=("json",),
        )


def _scenario_case(
    id: str, doc: dict[str, Any], path: str, value: str, formats: tuple[str, ...] = ("toml", "json")
) -> Iterator[FileCase]:
    for fmt in formats:

        def make(folder: Path, fmt: str = fmt) -> tuple[Path, Path]:
            return write(folder, "deal.json", huake()), write(folder, f"scenario.{fmt}", doc)

        yield FileCase(f"scenario-{id}-{fmt}", make, path, value)


def scenario_cases() -> Iterator[FileCase]:
    det = {"schema_version": 1, "kind": "deterministic", "name": "hostile"}
    mc = {"schema_version": 1, "kind": "monte_carlo", "name": "hostile_mc", "n_paths": 1000}
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        ("det-name-a-formula", {**det, "name": "+s"}, "name", "'+s'"),
        ("mc-name-a-formula", {**mc, "name": "@mc"}, "name", "'@mc'"),
        ("det-name-an-escape", {**det, "name": "s\x1b]0;x\x07"}, "name", "control characters"),
        ("det-cdr-empty", {**det, "defaults": {"kind": "cdr", "cdr": []}}, "defaults.cdr", "[]"),
        ("det-cpr-empty", {**det, "prepayment": {"cpr": []}}, "prepayment.cpr", "[]"),
        ("det-cdr-too-long", {**det, "defaults": {"kind": "cdr", "cdr": [0.01] * 20}},
         "defaults.cdr", "20"),
        ("det-timing-empty", {**det, "defaults": {"kind": "cumulative", "cumulative": 0.1,
                                                  "timing": []}}, "defaults.timing", "[]"),
        ("det-timing-sum", {**det, "defaults": {"kind": "cumulative", "cumulative": 0.1,
                                                "timing": [0.5, 0.4]}}, "defaults.timing", "0.9"),
        ("det-obligor-twice", {**det, "obligor_defaults": [{"obligor": "HK01", "period": 1},
                                                           {"obligor": "HK01", "period": 2}]},
         "obligor_defaults[1].obligor", "HK01"),
        ("det-obligor-twice-same-period", {**det, "obligor_defaults": [
            {"obligor": "HK03", "period": 2}, {"obligor": "HK03", "period": 2}]},
         "obligor_defaults[1].obligor", "HK03"),
        ("det-obligor-then-largest", {**det, "obligor_defaults": [
            {"obligor": "HK01", "period": 1}, {"largest": 1, "period": 3}]},
         "obligor_defaults[1].largest", "HK01"),
        ("det-largest-overlap", {**det, "obligor_defaults": [
            {"largest": 2, "period": 1}, {"largest": 3, "period": 3}]},
         "obligor_defaults[1].largest", "HK01"),
        ("det-largest-then-obligor", {**det, "obligor_defaults": [
            {"largest": 2, "period": 1}, {"obligor": "HK02", "period": 5}]},
         "obligor_defaults[1].obligor", "HK02"),
        ("det-support-twice", {**det, "support_defaults": [
            {"support": "originator_undertaking", "period": 1},
            {"support": "originator_undertaking", "period": 4}]},
         "support_defaults[1].support", "originator_undertaking"),
        ("det-unknown-obligor", {**det, "obligor_defaults": [{"obligor": "ZZ", "period": 1}]},
         "obligor_defaults[0].obligor", "ZZ"),
        ("det-period-0", {**det, "obligor_defaults": [{"obligor": "HK01", "period": 0}]},
         "obligor_defaults[0].period", "0"),
        ("det-period-past-end", {**det, "obligor_defaults": [{"obligor": "HK01", "period": 13}]},
         "obligor_defaults[0].period", "13"),
        ("det-largest-beyond-pool", {**det, "obligor_defaults": [{"largest": 9, "period": 1}]},
         "obligor_defaults[0].largest", "9"),
        ("det-schema-version-true", {**det, "schema_version": True}, "schema_version", "True"),
        ("det-kind-typo", {**det, "kind": "deterministik"}, "kind", "deterministik"),
        ("mc-cpr-empty", {**mc, "prepayment": {"cpr": []}}, "prepayment.cpr", "[]"),
        ("mc-cpr-too-long", {**mc, "prepayment": {"cpr": [0.01] * 13}}, "prepayment.cpr", "13"),
        ("mc-paths-0", {**mc, "n_paths": 0}, "n_paths", "0"),
        ("mc-paths-1e12", {**mc, "n_paths": 10**12}, "n_paths", str(10**12)),
        ("mc-paths-true", {**mc, "n_paths": True}, "n_paths", "True"),
        ("mc-paths-float", {**mc, "n_paths": 1.5}, "n_paths", "1.5"),
        ("mc-seed-negative", {**mc, "seed": -1}, "seed", "-1"),
        ("mc-seed-2e63", {**mc, "seed": 2**63}, "seed", str(2**63)),
        ("mc-correlation-1", {**mc, "defaults": {"correlation": {"kind": "fixed", "value": 1.0}}},
         "defaults.correlation.value", "1.0"),
        ("mc-copula", {**mc, "defaults": {"copula": "clayton"}}, "defaults.copula", "clayton"),
        ("mc-recovery-lags", {**mc, "recovery": {"kind": "ip_value", "lag_periods": 6,
                                                 "lag_max_periods": 4}},
         "recovery", "lag_max_periods"),
        ("mc-correlated-int", {**mc, "providers": {"correlated": 1}}, "providers.correlated", "1"),
        ("mc-sector-correlation-not-psd", {**mc, "defaults": {"factors": "sector",
                                                              "sector_correlation": -1.0}},
         "defaults.sector_correlation", "positive semi-definite"),
        ("mc-sector-matrix-strings", {**mc, "defaults": {
            "factors": "sector", "sector_order": ["a"], "sector_matrix": [["1"]]}},
         "defaults.sector_matrix[0][0]", "'1'"),
        ("mc-sector-matrix-ragged", {**mc, "defaults": {  # numpy's inhomogeneous-shape error
            "factors": "sector", "sector_order": ["a", "b"], "sector_matrix": [[1.0], [0.0, 1.0]]}},
         "defaults.sector_matrix", "row 0 has 1 entries"),
        ("mc-sector-matrix-huge", {**mc, "defaults": {  # eigvalsh's "did not converge"
            "factors": "sector", "sector_order": ["a", "b"],
            "sector_matrix": [[1.0, 0.0], [0.0, 1e308]]}},
         "defaults.sector_matrix[1][1]", "1e+308"),
        ("mc-sector-matrix-above-1", {**mc, "defaults": {
            "factors": "sector", "sector_order": ["a", "b"],
            "sector_matrix": [[1.0, 1.5], [1.5, 1.0]]}},
         "defaults.sector_matrix[0][1]", "1.5"),
        ("mc-sector-order-twice", {**mc, "defaults": {"factors": "sector", "sector_order": [
            "semiconductors", "biomedicine", "new_energy", "advanced_manufacturing", "software",
            "new_materials", "electronics", "ict", "ict"],
            "sector_matrix": [[float(i == j) for j in range(9)] for i in range(9)]}},
         "defaults.sector_order", "['ict']"),
        ("mc-rate-shock", {**mc, "rate_shock_bps": 1e9}, "rate_shock_bps", "1000000000"),
        ("mc-schema-version-float", {**mc, "schema_version": 1.0}, "schema_version", "1.0"),
    ]  # fmt: skip
    for id, doc, path, value in cases:
        yield from _scenario_case(id, doc, path, value)
    yield from _scenario_case(
        "mc-volatility-nan",
        {**mc, "prepayment": {"volatility": math.nan}},
        "prepayment.volatility",
        "nan",
        formats=("toml",),
    )


# ---- files that are broken as files --------------------------------------------------------------


def _raw(id: str, name: str, content: str | bytes, path: str, value: str, **kw: Any) -> FileCase:
    def make(folder: Path) -> tuple[Path, None]:
        return write(folder, name, content), None

    return FileCase(f"file-{id}", make, path, value, run=True, **kw)


def _raw_scenario(id: str, name: str, content: str | bytes, path: str, value: str) -> FileCase:
    def make(folder: Path) -> tuple[Path, Path]:
        return write(folder, "deal.json", base()), write(folder, name, content)

    return FileCase(f"scenario-file-{id}", make, path, value)


def _tape(id: str, name: str, content: str | bytes | None, value: str) -> FileCase:
    def make(folder: Path) -> tuple[Path, None]:
        if content is None:
            (folder / name).mkdir()
        else:
            write(folder, name, content)
        return write(folder, "deal.json", base_deal(pool={"tape": {"path": name}})), None

    return FileCase(f"tape-{id}", make, None, value, run=True)


TAPE_HEADER = "id,balance,rate,amortization,n_periods,annual_pd\n"
VALID = to_json(base_deal())


def file_cases() -> Iterator[FileCase]:
    deep_json = [
        ("json-arrays", "[" * DEEP + "]" * DEEP),
        ("json-objects", '{"a": ' * DEEP + "1" + "}" * DEEP),
        ("json-in-a-field", VALID[:-1] + ', "nested": ' + "[" * DEEP + "]" * DEEP + "}"),
        ("json-just-too-deep", "[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1)),
    ]
    for id, text in deep_json:
        yield _raw(f"deep-{id}", "deal.json", text, "<syntax>", "nested too deeply")
    deep_toml = [
        ("toml-arrays", "a = " + "[" * DEEP + "]" * DEEP),
        ("toml-inline-tables", "a = " + "{b = " * DEEP + "1" + "}" * DEEP),
        ("toml-dotted-keys", "a." * DEEP + "b = 1"),
        ("toml-table-header", "[" + "a." * DEEP + "b]\nc = 1"),
        ("toml-array-of-tables", "[[" + "a." * DEEP + "b]]\nc = 1"),
        ("toml-quoted-dotted-keys", '"a".' * DEEP + "b = 1"),
    ]
    for id, text in deep_toml:
        yield _raw(f"deep-{id}", "deal.toml", text, "<syntax>", "nested too deeply")
        yield _raw_scenario(f"deep-{id}", "scenario.toml", text, "<syntax>", "nested too deeply")
    binary = bytes(range(256)) * 4
    latin1 = ('name = "Caf\xe9 deal"\n').encode("latin-1")
    for ext in ("toml", "json"):
        yield _raw(f"binary-{ext}", f"deal.{ext}", binary, "<file>", "binary")
        yield _raw(f"latin1-{ext}", f"deal.{ext}", latin1, "<syntax>", "not UTF-8")
        yield _raw(f"empty-{ext}", f"deal.{ext}", "", "<file>", "empty")
        yield _raw(f"blank-{ext}", f"deal.{ext}", " \n\t\n", "<file>", "empty")
    yield _raw("utf16-json", "deal.json", VALID.encode("utf-16"), "<syntax>", "UTF-16")
    yield _raw("json-array", "deal.json", "[1, 2]", "<root>", "JSON object")
    yield _raw("json-nan", "deal.json", VALID.replace("100.0", "NaN", 1), "<syntax>", "NaN")
    yield _raw(
        "json-infinity", "deal.json", VALID.replace("100.0", "-Infinity", 1), "<syntax>", "Infinity"
    )
    yield _raw(
        "json-5000-digits",
        "deal.json",
        VALID.replace('"schema_version": 1', '"schema_version": ' + "9" * 5000),
        "<syntax>",
        "4,300 digits",
    )
    yield _raw("toml-5000-digits", "deal.toml", "a = " + "9" * 5000, "<syntax>", "4,300 digits")
    # more than MAX_NESTING dots in the file and a long run with none: the dotted-key scan
    # once backtracked quadratically here (minutes for 200,000 digits)
    many_dots = "".join(f"x{i} = 1.5\n" for i in range(MAX_NESTING + 6))
    yield _raw(
        "toml-dots-then-long-run", "deal.toml", many_dots + "y = " + "9" * 200_000, "<syntax>",
        "4,300 digits",
    )  # fmt: skip
    yield _raw("toml-syntax", "deal.toml", "a = = 1", "<syntax>", "not valid TOML")
    yield _raw("toml-duplicate-key", "deal.toml", "a = 1\na = 2\n", "<syntax>", "not valid TOML")
    yield _raw("json-syntax", "deal.json", '{"a": }', "<syntax>", "not valid JSON")
    yield _raw("unknown-suffix", "deal.yaml", "a: 1", "<file>", ".yaml")
    # JSON objects that repeat a key: the parser would silently keep the last
    yield _raw(
        "json-duplicate-top",
        "deal.json",
        VALID.replace('"name": "test deal"', '"name": "test deal", "name": "other"'),
        "name",
        "duplicate key",
    )
    yield _raw(
        "json-duplicate-nested",
        "deal.json",
        VALID.replace('"balance": 100.0, "coupon"', '"balance": 100.0, "balance": 5, "coupon"'),
        "tranches[0].balance",
        "duplicate key",
    )
    yield _raw(
        "json-duplicate-dates",
        "deal.json",
        VALID.replace(
            '"closing": "2025-01-01"', '"closing": "2025-01-01", "closing": "2025-02-01"'
        ),
        "dates.closing",
        "duplicate key",
    )

    def folder_as_deal(folder: Path) -> tuple[Path, None]:
        (folder / "deal.toml").mkdir()
        return folder / "deal.toml", None

    yield FileCase("file-folder", folder_as_deal, "<file>", "folder", run=True)
    yield FileCase(
        "file-missing", lambda f: (f / "no_such_deal.toml", None), "<file>", "not found", run=True
    )
    yield FileCase("file-device", lambda f: ("/dev/null", None), "<file>", "device", run=True)
    yield FileCase("file-long-path", lambda f: (LONG, None), "<file>", "cannot be opened", run=True)

    def folder_as_scenario(folder: Path) -> tuple[Path, Path]:
        (folder / "scenario.toml").mkdir()
        return write(folder, "deal.json", base()), folder / "scenario.toml"

    yield FileCase("scenario-file-folder", folder_as_scenario, "<file>", "folder")
    yield _raw_scenario("binary", "scenario.toml", binary, "<file>", "binary")
    yield _raw_scenario("latin1", "scenario.toml", latin1, "<syntax>", "not UTF-8")
    yield _raw_scenario("empty", "scenario.toml", "", "<file>", "empty")
    yield _raw_scenario(
        "json-duplicate",
        "scenario.json",
        '{"name": "a", "name": "b"}',
        "name",
        "duplicate key",
    )
    # pool tapes broken as files (the tape's own errors name the tape)
    yield _tape("binary", "tape.csv", binary, "tape.csv: <file>: binary")
    yield _tape(
        "latin1",
        "tape.csv",
        (TAPE_HEADER + "Caf\xe9,100,0,bullet,3,0.02\n").encode("latin-1"),
        "tape.csv: <syntax>: not UTF-8",
    )
    # JSON's \ud800 escapes parse to lone surrogates, which no file or console can hold:
    # a plain text field let them through to a traceback in the tape's Arrow column or the
    # console (TOML refuses them itself)
    yield _raw("surrogate-in-a-text-field", "deal.json",
               VALID[:-1] + ', "currency": "CNY\\udc00"}', "currency", "CNY\\udc00")  # fmt: skip
    named = base_deal()
    named["pool"]["obligors"][0]["name"] = "\ud800"
    yield _raw("surrogate-in-an-obligor-name", "deal.json", to_json(named),
               "pool.obligors[0].name", "\\ud800")  # fmt: skip
    described = '{"name": "s", "description": "\\ud800"}'
    yield _raw_scenario("surrogate-in-a-description", "sc.json", described, "description",
                        "\\ud800")  # fmt: skip
    yield _tape("empty", "tape.csv", "", "tape.csv: <syntax>: cannot read tape")
    yield _tape("header-only", "tape.csv", TAPE_HEADER, "tape.csv: <rows>: tape has no rows")
    yield _tape("folder", "tape.csv", None, "folder")
    yield _tape(
        "bad-parquet", "tape.parquet", b"PAR1 not parquet", "tape.parquet: <syntax>: cannot read"
    )
    yield _tape("unknown-suffix", "tape.xls", "x", "tape.xls: <file>: unknown tape type")
    yield _tape(
        "bad-xlsx", "tape.xlsx", b"PK not a workbook",
        "tape.xlsx: <syntax>: cannot read tape as an Excel workbook",
    )  # fmt: skip


CASES = [*deal_cases(), *scenario_cases(), *file_cases()]


def _api(deal: Path | str, scenario: Path | str | None) -> None:
    cd = ae.compile_deal(ae.load_deal(deal))
    if scenario is not None:
        sc = ae.load_scenario(scenario, cd.deal)
        if isinstance(sc, DeterministicScenario):
            ae.run_deterministic(cd, [sc], jit=False)
        else:
            compile_model(cd, sc)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_file(case: FileCase, tmp_path: Path) -> None:
    deal, scenario = case.make(tmp_path)
    with pytest.raises(AbsEngineError) as info:
        _api(deal, scenario)
    exc = info.value
    assert isinstance(exc, DealError), (type(exc), exc)
    text = str(exc)
    assert case.value in text, f"{case.value!r} not in {text!r}"
    if case.path is not None:
        paths = [p.path for p in exc.problems]
        assert case.path in paths, f"{case.path!r} not in {paths} ({text})"
        offending = Path(str(scenario if scenario is not None else deal)).name
        if case.path.startswith("<") or case.path == "pool.tape.path":
            # a file-level problem names the file
            assert offending[:40] in text, text
    if case.cli:
        argv = ["validate", str(deal)] + (["--scenario", str(scenario)] if scenario else [])
        for args in [argv] + ([["run", str(deal)]] if case.run else []):
            done = run_cli(*args)
            rc, err = done.returncode, done.stderr
            assert rc == 2, (args[0], rc, err)
            # one error message (after any warnings about the deal), no traceback
            assert "Traceback" not in err, err
            assert len([ln for ln in err.splitlines() if ln.startswith("error")]) == 1, err
            if case.path is not None and not case.path.startswith("<"):
                assert case.path in err, err


def test_corpus_size() -> None:
    assert len(CASES) >= 150


# ---- no read permission -------------------------------------------------------------------------


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root reads files whatever their permission bits",
)
@pytest.mark.parametrize("what", ["deal", "scenario", "tape"])
def test_unreadable_file(what: str, tmp_path: Path) -> None:
    deal = write(tmp_path, "deal.json", base())
    scenario = None
    if what == "scenario":
        scenario = write(tmp_path, "scenario.toml", {"name": "s"})
        target = scenario
    elif what == "tape":
        write(tmp_path, "tape.csv", TAPE_HEADER + "T1,100,0,bullet,3,0.02\n")
        deal = write(tmp_path, "deal.json", base_deal(pool={"tape": {"path": "tape.csv"}}))
        target = tmp_path / "tape.csv"
    else:
        target = deal
    target.chmod(0)
    try:
        with pytest.raises(DealError, match="ermission"):
            _api(deal, scenario)
        done = run_cli("validate", deal, *(["--scenario", scenario] if scenario else []))
        assert done.returncode == 2 and "Traceback" not in done.stderr
    finally:
        target.chmod(0o644)


def test_permission_error_is_handled_in_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also as root: a read that fails with PermissionError gives a DealError."""
    deal = write(tmp_path, "deal.json", base())

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(DealError, match="Permission denied"):
        ae.load_deal(deal)


# ---- valid neighbours stay valid ---------------------------------------------------------------


def test_valid_neighbours(tmp_path: Path) -> None:
    # a UTF-8 byte-order mark, nesting at the limit, a legal final in year 9999 with few periods
    p = write(tmp_path, "bom.json", b"\xef\xbb\xbf" + VALID.encode())
    assert ae.load_deal(p).name == "test deal"
    doc = base_deal()
    doc["description"] = "[" * 200 + " {{ a.b.c " * 100  # brackets inside a string are text
    for fmt in ("json", "toml"):
        assert ae.load_deal(write(tmp_path, f"d.{fmt}", doc)).description == doc["description"]
    nested = "[" * (MAX_NESTING - 2) + "]" * (MAX_NESTING - 2)
    p = write(tmp_path, "near.json", VALID[:-1] + f', "nested": {nested}}}')
    with pytest.raises(DealError) as info:
        ae.load_deal(p)
    assert [pr.path for pr in info.value.problems] == ["nested"]  # the schema speaks, not depth
    doc = base_deal()
    doc["dates"].update(
        closing="9998-12-31", first_payment="9999-01-31", legal_final="9999-12-31",
        frequency="monthly", business_day="modified_following",
    )  # fmt: skip
    doc["pool"]["obligors"][0]["amortization"]["n_periods"] = 12
    cd = ae.compile_deal(ae.load_deal(write(tmp_path, "y9999.json", doc)))
    assert cd.n_periods == 12 and cd.payment_dates[-1] == dt.date(9999, 12, 31)
    # the bundled deal and its scenarios give no warning
    assert ae.compile_deal(ae.load_deal()).warnings == ()


# ---- warnings: allowed, probably wrong; exit status 0 and a ``warning:`` line ----------------


def _huake_step(waterfall: str, k: int, step: dict[str, Any]) -> Callable[[dict], None]:
    def mutate(doc: dict[str, Any]) -> None:
        doc["waterfalls"][waterfall][k] = step

    return mutate


def _move_residual_first(doc: dict[str, Any]) -> None:
    steps = doc["waterfalls"]["normal"]
    steps.insert(0, steps.pop())


def _never_drawn(doc: dict[str, Any]) -> None:
    for steps in doc["waterfalls"].values():
        steps[:] = [st for st in steps if st["kind"] != "draw_support"]


def _second_support(doc: dict[str, Any]) -> None:
    """A guarantee on Sub from the provider of the bundled deal's undertaking."""
    provider = copy.deepcopy(doc["support"][0]["provider"])
    guarantee = {"kind": "guarantee", "name": "parent_guarantee", "provider": provider}
    doc["support"].append({**guarantee, "tranches": ["Sub"]})


WARNINGS: list[tuple[str, Callable[[], dict[str, Any]], Callable[[dict], Any], str, list[str]]] = [
    ("no-pay-residual", base, lambda d: None, "waterfalls.normal",
     ["no pay_residual", "carried into the next period", "released"]),
    ("under-collateralised", base, _set("tranches[0].balance", 150.0), "tranches",
     ["150.00", "100.00", "under-collateralised by 33.33%"]),
    ("over-collateralised", base, _set("pool.obligors[0].balance", 200.0), "tranches",
     ["100.00", "200.00", "over-collateralised by 100.00%"]),
    ("huake-residual-to-senior", huake,
     _huake_step("normal", 9, {"kind": "pay_residual", "tranche": "A"}),
     "waterfalls.normal[9].tranche", ["'A'", "fixed coupon"]),
    ("huake-residual-first", huake, _move_residual_first, "waterfalls.normal[0]",
     ["pay_fee (waterfalls.normal[1])", "pay_interest (waterfalls.normal[5])", "last step"]),
    ("huake-accelerated-without-residual", huake,
     lambda d: d["waterfalls"]["accelerated"].pop(), "waterfalls.accelerated", ["no pay_residual"]),
    ("huake-notes-1.5x-pool", huake, _set("tranches[0].balance", 145_000_000.0), "tranches",
     ["150,000,000.00", "100,000,000.00", "33.33%"]),
    # one provider behind two supports: drawn apart, they default independently
    ("huake-provider-behind-two-supports", huake, _second_support, "support[1].provider.name",
     ["also behind support 'originator_undertaking'", "independently"]),
    # a validator's B, left out of every pay_interest step: its coupon drawn from a support
    ("huake-no-interest-step", huake, lambda d: d["waterfalls"]["normal"].pop(4),
     "waterfalls.normal", ["tranche 'A' bears a coupon", "no pay_interest step"]),
    ("huake-fee-never-paid", huake, lambda d: d["waterfalls"]["normal"].pop(3),
     "waterfalls.normal", ["fee 'admin' is never paid"]),
    ("huake-support-drawn-only-accelerated", huake, lambda d: d["waterfalls"]["normal"].pop(8),
     "waterfalls.normal",
     ["shortfall_undertaking 'originator_undertaking' is drawn only in the accelerated"]),
    ("huake-support-never-drawn", huake, _never_drawn, "support[0]",
     ["shortfall_undertaking 'originator_undertaking' is never drawn", "pays nothing"]),
]  # fmt: skip


@pytest.mark.parametrize("fmt", ["json", "toml"])
@pytest.mark.parametrize("id,start,mutate,path,words", WARNINGS, ids=[w[0] for w in WARNINGS])
def test_warning(
    id: str,
    start: Callable[[], dict[str, Any]],
    mutate: Callable[[dict], Any],
    path: str,
    words: list[str],
    fmt: str,
    tmp_path: Path,
) -> None:
    doc = start()
    mutate(doc)
    deal = write(tmp_path, f"deal.{fmt}", doc)
    cd = ae.compile_deal(ae.load_deal(deal))
    found = [w for w in cd.warnings if w.path == path]
    assert found, [str(w) for w in cd.warnings]
    for word in words:
        assert word in str(found[0]), str(found[0])
    done = run_cli("validate", deal)
    rc, err = done.returncode, done.stderr
    assert rc == 0, err
    lines = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert any(path in ln and words[0] in ln for ln in lines), err
    assert "Traceback" not in err
