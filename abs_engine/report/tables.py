"""The deal report's tables, built once from the report document
(:mod:`abs_engine.report.content`) and shown twice: as HTML tables (numbers formatted, the raw
value kept in ``data-value``) and as Excel sheets (raw numbers with number formats).

Each column has a kind that says how its numbers read: ``money`` (yuan, thousands separated),
``pct`` (a decimal shown as a percentage), ``pct4`` (small shares such as expected losses, four
decimals of a percent), ``ratio``, ``years``, ``int``, ``date``, ``bool`` and ``text``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .compare import COMPARISON_COLUMNS
from .i18n import LABELS, label

__all__ = [
    "TEXT_KINDS",
    "TRANSLATED_KINDS",
    "Column",
    "Section",
    "Table",
    "fmt_value",
    "report_sections",
]

#: the column kinds that hold words, not numbers (left-aligned; the rest right-aligned)
TEXT_KINDS = frozenset({"text", "date", "bool", "label", "rating", "role"})
#: the kinds whose words are the engine's English, shown in the report's language
TRANSLATED_KINDS = ("label", "rating", "role")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "text"


@dataclass
class Table:
    """A titled table: ``rows`` of raw values (None: no value), one per column; ``sheet``:
    the workbook sheet it goes to; ``scenario``: the scenario it is about, if one."""

    title: str
    columns: list[Column]
    rows: list[list[Any]]
    sheet: str
    scenario: str | None = None
    note: str | None = None
    #: for a two-column item/value table: the value column's kind row by row
    row_kinds: list[str] | None = None

    def kind(self, row: int, col: int) -> str:
        """The kind of cell (``row``, ``col``)."""
        if self.row_kinds is not None and col == len(self.columns) - 1:
            return self.row_kinds[row]
        return self.columns[col].kind


@dataclass
class Section:
    key: str
    title: str
    tables: list[Table] = field(default_factory=list)


def sig_decimals(v: float | None, digits: int = 3, lo: int = 2, hi: int = 10) -> int:
    """Decimals, from ``lo`` to ``hi``, that show ``digits`` significant digits of the share
    ``v`` as a percentage (``lo`` for a missing or zero one)."""
    if v is None or v != v or v == 0:
        return lo
    return min(hi, max(lo, digits - 1 - math.floor(math.log10(abs(v) * 100))))


def fmt_value(v: Any, kind: str, lang: str = "en") -> str:
    """A raw table value as the report shows it."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if kind == "bool" or isinstance(v, bool):
        return label("yes" if v else "no", lang)
    if kind == "date":
        return str(v)[:10]  # ISO dates; JSON records carry a time of day
    if kind in TRANSLATED_KINDS and isinstance(v, str):
        return _translate(v, kind, lang)
    if isinstance(v, str) or kind == "text":
        return str(v)
    if isinstance(v, float) and math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if kind == "money":
        return f"{v:,.2f}"
    if kind == "pct":
        return f"{v:.2%}"
    if kind == "pct4":
        return f"{v:.4%}" if v == 0 or abs(v) >= 1e-6 else f"{v * 100:.2e}%"
    if kind == "ratio":
        return f"{v:.3f}"
    if kind == "years":
        return f"{v:.2f}"
    if kind == "int":
        return f"{int(v):,}"
    return f"{v:,.6g}"


#: the engine's English words a ``label`` column translates: principal types, a rating's
#: ``n/a``, the waterfall's status
_WORDS = frozenset({"n/a", "sequential", "pro_rata", "target_balance", "residual", "normal",
                    "accelerated", "post_default"})  # fmt: skip


def _translate(v: str, kind: str, lang: str) -> str:
    """A value the engine writes as an English word: a principal type, a waterfall status, an
    implied rating (``below BBB-``, ``n/a``) or an input file's role."""
    if kind == "rating" and v.startswith("below "):
        return f"{label('below', lang)} {v[len('below ') :]}"
    if kind == "role":
        return label(f"role_{v}", lang) if f"role_{v}" in LABELS else v
    return label(v, lang) if v in _WORDS else v


def _cols(keys: list[tuple[str, str]], lang: str) -> list[Column]:
    return [Column(k, _label(k, lang), kind) for k, kind in keys]


def _label(key: str, lang: str) -> str:
    """Labels of dotted keys (``A.interest_paid`` → ``A Interest paid``; a tranche's name may
    hold dots itself: the item is what follows the last) and ``_se`` columns."""
    if "." in key:
        head, item = key.rsplit(".", 1)
        if head != "pool":
            return f"{head} {_label(item, lang)}"
        # a label that names the pool already (资产池回收款) is not prefixed again
        pool, what = label("pool", lang), _label(item, lang)
        return what if what.startswith(pool) else f"{pool} {what}"
    if key.endswith("_se") and key not in ("expected_loss_se", "default_probability_se"):
        return f"{label(key[:-3], lang)} {label('se', lang)}"
    return label(key, lang)


def _rows(records: list[dict[str, Any]], cols: list[Column]) -> list[list[Any]]:
    return [[r.get(c.key) for c in cols] for r in records]


# --- summary ---------------------------------------------------------------------------------


def _summary(doc: dict[str, Any], lang: str) -> Section:
    d = doc["deal"]
    kinds = {"original_pool": "money", "issued": "money", "obligors": "int", "periods": "int",
             "overcollateralisation": "pct", "first_payment_date": "date",
             "last_payment_date": "date"}  # fmt: skip
    keys = ["deal", "description", "source", "currency", "obligors", "original_pool", "issued",
            "overcollateralisation", "periods", "first_payment_date",
            "last_payment_date"]  # fmt: skip
    if not d.get("description"):
        keys.remove("description")
    kv = Table(
        label("deal_summary", lang),
        [Column("item", label("parameter", lang)), Column("value", label("value", lang))],
        [[label(k, lang), d[k]] for k in keys],
        label("summary", lang),
        row_kinds=[kinds.get(k, "text") for k in keys],
    )
    cap_cols = _cols(
        [("tranche", "text"), ("balance", "money"), ("share", "pct"), ("coupon", "pct"),
         ("coupon_terms", "text"), ("day_count", "text"), ("principal", "label"),
         ("attachment", "pct"), ("detachment", "pct")], lang,
    )  # fmt: skip
    cap = Table(
        label("capital_structure", lang), cap_cols, _rows(d["tranches"], cap_cols),
        label("summary", lang), note=label("attachment_note", lang),
    )  # fmt: skip
    return Section("summary", label("deal_summary", lang), [kv, cap])


# --- tranches and comparison -------------------------------------------------------------------

_MC_TRANCHE = [
    ("tranche", "text"), ("balance", "money"), ("coupon", "pct"), ("expected_loss", "pct4"),
    ("expected_loss_se", "pct4"), ("default_probability", "pct4"),
    ("default_probability_se", "pct4"), ("wal_years", "years"), ("wal_years_se", "years"),
    ("irr", "pct"), ("irr_se", "pct"), ("min_coverage_ratio", "ratio"),
    ("min_coverage_ratio_se", "ratio"), ("lgd", "pct"), ("lgd_se", "pct"),
    ("modified_duration", "years"), ("implied_rating", "rating"),
    ("principal_paid", "money"), ("principal_paid_se", "money"), ("interest_paid", "money"),
    ("interest_paid_se", "money"), ("residual_paid", "money"), ("residual_paid_se", "money"),
    ("support_received", "money"), ("support_received_se", "money"),
]  # fmt: skip
_DET_TRANCHE = [
    ("tranche", "text"), ("balance", "money"), ("principal_paid", "money"),
    ("interest_paid", "money"), ("loss", "money"), ("interest_shortfall", "money"),
    ("wal_years", "years"), ("min_coverage_ratio", "ratio"), ("support_received", "money"),
    ("reserve_received", "money"), ("residual_paid", "money"),
]  # fmt: skip
_COMPARISON_KINDS = {
    "implied_rating": "rating",
    "expected_loss": "pct4", "expected_loss_se": "pct4", "default_probability": "pct4",
    "default_probability_se": "pct4", "wal_years": "years", "wal_years_se": "years",
    "min_coverage_ratio": "ratio", "min_coverage_ratio_se": "ratio",
}  # fmt: skip


def _det_docs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    det = doc["deterministic"]
    if det is None:
        return []
    return list(det["scenarios"]) if "scenarios" in det else [det]


def _tranches(doc: dict[str, Any], lang: str) -> Section:
    sec = Section("tranches", label("tranche_metrics", lang))
    sheet = label("tranches", lang)
    cols = _cols(_MC_TRANCHE, lang)
    for mc in doc["monte_carlo"]:
        records = [{"tranche": t["name"], **t} for t in mc["tranches"]]
        title = (
            f"{mc['scenario']} ({label('monte_carlo', lang)}, "
            f"{label('n_paths', lang)} {mc['n_paths']:,}, {label('seed', lang)} {mc['seed']})"
        )
        sec.tables.append(
            Table(title, cols, _rows(records, cols), sheet, mc["scenario"], label("se_note", lang))
        )
    dcols = _cols(_DET_TRANCHE, lang)
    for sc in _det_docs(doc):
        records = [{"tranche": t["name"], **t} for t in sc["tranches"]]
        title = f"{sc['scenario']} ({label('deterministic', lang)})"
        sec.tables.append(Table(title, dcols, _rows(records, dcols), sheet, sc["scenario"]))
    return sec


#: the Monte Carlo pool metrics (each with its standard error) and their kinds
_MC_POOL = [
    ("default_count", "ratio"), ("default_rate", "pct4"), ("loss_rate", "pct4"),
    ("recovery_rate", "pct"), ("prepayment_rate", "pct4"), ("support_paid", "money"),
    ("support_drawn_probability", "pct4"), ("provider_default_probability", "pct4"),
    ("accelerated_probability", "pct4"), ("compensation_received", "money"),
    ("min_coverage_ratio", "ratio"), ("cash_released", "money"),
]  # fmt: skip
#: the deterministic pool's summary and its kinds
_DET_POOL = [
    ("original_balance", "money"), ("defaulted", "money"), ("cumulative_default_rate", "pct4"),
    ("recovered", "money"), ("recovery_after_legal_final", "money"), ("realised_loss", "money"),
    ("prepaid", "money"), ("compensation_received", "money"), ("support_paid", "money"),
    ("worst_status", "label"), ("first_trigger_period", "int"),
    ("clean_up_call_period", "int"), ("min_coverage_ratio", "ratio"), ("cash_released", "money"),
]  # fmt: skip


def _pool(doc: dict[str, Any], lang: str) -> Section:
    """The pool's metrics, one row a scenario: the Monte Carlo means with their standard
    errors, then the deterministic scenarios' pool summaries."""
    sec = Section("pool", label("pool_metrics", lang))
    sheet = label("pool", lang)
    mc_docs = doc["monte_carlo"]
    if mc_docs:
        keys = [("scenario", "text")]
        for k, kind in _MC_POOL:
            if k in mc_docs[0]["pool"]:
                keys += [(k, kind), (f"{k}_se", kind)]
        cols = _cols(keys, lang)
        records = []
        for mc in mc_docs:
            rec: dict[str, Any] = {"scenario": mc["scenario"]}
            for k, v in mc["pool"].items():
                rec[k], rec[f"{k}_se"] = v["mean"], v["se"]
            records.append(rec)
        title = f"{label('pool_metrics', lang)} ({label('monte_carlo', lang)})"
        sec.tables.append(
            Table(title, cols, _rows(records, cols), sheet, note=label("se_note", lang))
        )
    det_docs = _det_docs(doc)
    if det_docs:
        keys = [("scenario", "text")] + [kv for kv in _DET_POOL if kv[0] in det_docs[0]["pool"]]
        cols = _cols(keys, lang)
        records = [{**sc["pool"], "scenario": sc["scenario"]} for sc in det_docs]
        title = f"{label('pool_metrics', lang)} ({label('deterministic', lang)})"
        sec.tables.append(Table(title, cols, _rows(records, cols), sheet))
    return sec


def _comparison(doc: dict[str, Any], lang: str) -> Section:
    cols = _cols([(c, _COMPARISON_KINDS.get(c, "text")) for c in COMPARISON_COLUMNS], lang)
    rows = [r | {"kind": label(r["kind"], lang)} for r in doc["comparison"]]
    table = Table(
        label("comparison", lang), cols, _rows(rows, cols), label("sheet_comparison", lang),
        note=label("det_loss_note", lang),
    )  # fmt: skip
    return Section("comparison", label("comparison", lang), [table])


# --- cash flows ----------------------------------------------------------------------------------


def _nonzero(v: Any) -> bool:
    """A number other than 0 (None and NaN are not)."""
    return v is not None and v == v and v != 0


def _mc_cashflow_keys(mc: dict[str, Any], tranches: list[str]) -> list[tuple[str, str]]:
    """The Monte Carlo cash-flow table's columns: each tranche's interest, principal, the
    residual where any is paid (a residual tranche's excess spread) and end balance, each
    with its standard error; the coverage ratio; the pool's defaults, recoveries, balance."""
    rows = mc["cashflows"]
    keys = [("period", "int"), ("payment_date", "date")]
    for t in tranches:
        items = ["interest_paid", "principal_paid", "balance_end"]
        if any(_nonzero(r.get(f"{t}.residual_paid")) for r in rows):
            items.insert(2, "residual_paid")
        for item in items:
            keys += [(f"{t}.{item}", "money"), (f"{t}.{item}_se", "money")]
    keys += [("coverage_ratio", "ratio"), ("coverage_ratio_se", "ratio"),
             ("coverage_ratio_p05", "ratio"), ("pool.defaults", "money"),
             ("pool.defaults_se", "money"), ("pool.recoveries", "money"),
             ("pool.recoveries_se", "money"), ("pool.balance_end", "money"),
             ("pool.balance_end_se", "money")]  # fmt: skip
    return [(k, kind) for k, kind in keys if k in rows[0]]


def _det_cashflow_keys(sc: dict[str, Any], tranches: list[str]) -> list[tuple[str, str]]:
    keys = [("period", "int"), ("payment_date", "date"), ("pool.collections", "money"),
            ("pool.defaults", "money")]  # fmt: skip
    for t in tranches:
        for item in ("interest_paid", "principal_paid", "residual_paid", "balance_end"):
            keys.append((f"{t}.{item}", "money"))
    keys += [("pool.balance_end", "money"), ("coverage_ratio", "ratio"), ("status", "label")]
    return [(k, kind) for k, kind in keys if k in sc["cashflows"][0]]


def _cashflows(doc: dict[str, Any], lang: str) -> Section:
    sec = Section("cashflows", label("cashflows", lang))
    names = [t["tranche"] for t in doc["deal"]["tranches"]]
    for i, mc in enumerate(doc["monte_carlo"]):
        cols = _cols(_mc_cashflow_keys(mc, names), lang)
        title = f"{mc['scenario']} ({label('monte_carlo', lang)})"
        sec.tables.append(
            Table(title, cols, _rows(mc["cashflows"], cols), f"CF{i + 1}", mc["scenario"])
        )
    n_mc = len(doc["monte_carlo"])
    for i, sc in enumerate(_det_docs(doc)):
        cols = _cols(_det_cashflow_keys(sc, names), lang)
        title = f"{sc['scenario']} ({label('deterministic', lang)})"
        sec.tables.append(
            Table(title, cols, _rows(sc["cashflows"], cols), f"CF{n_mc + i + 1}", sc["scenario"])
        )
    return sec


# --- stresses ------------------------------------------------------------------------------------

#: the stress document's default-timing sentence → its label
_TIMINGS = {"front-loaded over the first two thirds of the periods": "timing_front_loaded"}


def _stresses(doc: dict[str, Any], lang: str) -> Section:
    st = doc["stress"]
    sheet = label("stresses", lang)
    a = st["assumptions"]
    sub = (
        f"{label('recovery_rate', lang)} {fmt_value(a['recovery_rate'], 'pct', lang)}, "
        f"{label('recovery_lag', lang)} {a['recovery_lag']}"
    )
    timing = _TIMINGS.get(a["timing"])
    timing_note = f"{label('timing', lang)}: {label(timing, lang) if timing else a['timing']}"
    be_cols = _cols(
        [("tranche", "text"), ("support", "bool"), ("breakeven_default_rate", "pct"),
         ("base_case_default_rate", "pct"), ("multiple", "ratio"), ("never_fails", "bool")], lang,
    )  # fmt: skip
    tables = [
        Table(f"{label('breakeven', lang)} ({sub})", be_cols, _rows(st["breakeven"], be_cols),
              sheet, note=timing_note),
    ]  # fmt: skip
    lot = st["large_obligor_test"]
    if lot["rows"]:
        kinds = {"defaulted_obligors": "int", "defaulted_share": "pct"}
        keys = [(k, kinds.get(k, "bool" if k.startswith("paid_in_full") else "money"))
                for k in lot["rows"][0]]  # fmt: skip
        cols = _cols(keys, lang)
        title = (
            f"{label('large_obligor_test', lang)}: {lot['tranche']}, "
            f"{label('period', lang)} {lot['period']}"
        )
        tables.append(Table(title, cols, _rows(lot["rows"], cols), sheet))
    cov = st["coverage_ratio"]
    if cov:
        keys = [("period", "int"), ("payment_date", "date")]
        keys += [(k, "ratio") for k in cov[0] if k not in ("period", "payment_date")]
        cols = [Column(k, _label(k, lang) if k in ("period", "payment_date") else k, kind)
                for k, kind in keys]  # fmt: skip
        tables.append(Table(label("coverage_table", lang), cols, _rows(cov, cols), sheet))
    return Section("stresses", label("agency_tables", lang), tables)


# --- assumptions ---------------------------------------------------------------------------------


def _assumptions(doc: dict[str, Any], lang: str) -> Section:
    s = doc["stamp"]
    sheet = label("sheet_assumptions", lang)
    rt = next((m["rating_table"] for m in doc["monte_carlo"]), None)
    run_rows = [
        [label("engine", lang), s["engine"]],
        [label("commit", lang), s.get("commit")],
        [label("generated", lang), doc["generated"]],
    ]
    if doc["monte_carlo"]:
        run_rows.append([label("sampling", lang), s.get("sampling")])
    if rt is not None:
        note = f" ({label('illustrative_table', lang)})" if rt["illustrative"] else ""
        run_rows.append([label("rating_table", lang), f"{rt['source']}{note}"])
    kv = [Column("item", label("parameter", lang)), Column("value", label("value", lang))]
    in_cols = _cols([("role", "role"), ("path", "text"), ("sha256", "text")], lang)
    tables = [
        Table(label("assumptions", lang), kv, run_rows, sheet),
        Table(label("inputs", lang), in_cols, _rows(s["inputs"], in_cols), sheet),
    ]
    if doc["deal"].get("warnings"):  # allowed but probably wrong: printed, and handed over
        w_cols = [Column("warning", label("deal_warnings", lang))]
        rows_w = [[w] for w in doc["deal"]["warnings"]]
        tables.insert(0, Table(label("deal_warnings", lang), w_cols, rows_w, sheet))
    sc_cols = [
        Column("scenario", label("scenario", lang)), Column("kind", label("kind", lang)),
        Column("n_paths", label("n_paths", lang), "int"), Column("seed", label("seed", lang)),
        Column("parameter", label("parameter", lang)), Column("value", label("value", lang)),
    ]  # fmt: skip
    rows = []
    for sc in doc["scenarios"]:
        head = [sc["name"], label("monte_carlo" if sc["kind"] == "monte_carlo"
                                  else "deterministic", lang),
                sc.get("n_paths"), None if sc.get("seed") is None else str(sc["seed"])]  # fmt: skip
        if sc.get("description"):
            rows.append([*head, label("description", lang), sc["description"]])
        for p in sc["parameters"]:
            v = p["value"]
            rows.append([*head, p["parameter"], v if not isinstance(v, list) else str(v)])
    tables.append(Table(label("scenario_parameters", lang), sc_cols, rows, sheet))
    return Section("assumptions", label("assumptions", lang), tables)


def report_sections(doc: dict[str, Any], lang: str) -> list[Section]:
    """The report's sections in order: summary, tranche metrics, pool metrics, comparison,
    cash flows, stress tables, assumptions."""
    return [
        _summary(doc, lang),
        _tranches(doc, lang),
        _pool(doc, lang),
        _comparison(doc, lang),
        _cashflows(doc, lang),
        _stresses(doc, lang),
        _assumptions(doc, lang),
    ]
