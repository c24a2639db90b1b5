"""Read deal and scenario files (TOML or JSON) and pool tapes (CSV or Parquet), turning every
validation failure into :class:`~abs_engine.errors.Problem` s that name file, field and value."""

from __future__ import annotations

import datetime as dt
import json
import math
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import DealError, Problem, format_loc
from .deal import Deal
from .pool import Obligor
from .scenario import DeterministicScenario

M = TypeVar("M", bound=BaseModel)

_MISSING = object()


def read_document(path: str | Path) -> dict[str, Any]:
    """Parse a TOML (``.toml``) or JSON (``.json``) file into a dict; errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise DealError.one(p, "<file>", "file not found")
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            with p.open("rb") as fh:
                return tomllib.load(fh)
        if suffix == ".json":
            with p.open("rb") as fh:
                data = json.load(fh)
            if not isinstance(data, dict):
                raise DealError.one(p, "<root>", "expected a JSON object at the top level")
            return data
    except tomllib.TOMLDecodeError as exc:
        raise DealError.one(p, "<syntax>", f"not valid TOML: {exc}") from None
    except json.JSONDecodeError as exc:
        raise DealError.one(p, "<syntax>", f"not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise DealError.one(p, "<syntax>", f"not UTF-8 text: {exc}") from None
    raise DealError.one(p, "<file>", "unknown file type; expected .toml or .json", p.suffix)


def _walk(data: Any, loc: tuple[Any, ...]) -> tuple[list[Any], Any]:
    """Follow ``loc`` into ``data``, dropping the parts pydantic adds for union members
    (tags such as ``'pay_fee'`` or ``'float'``) that are not keys of the input."""
    kept: list[Any] = []
    cur = data
    tagged = None  # the table whose discriminator tag was last dropped
    for part in loc:
        if isinstance(cur, dict) and cur.get("kind") == part and tagged is not cur:
            # The tag of a discriminated union (``{kind = "fixed", ...}`` → ``'fixed'``), even
            # when a key has the same name (``{kind = "cumulative", cumulative = 0.1}``).
            tagged = cur
            continue
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
            kept.append(part)
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            cur = cur[part]
            kept.append(part)
        elif isinstance(cur, dict | list):
            # A key the input lacks: a missing field (keep it) or a union tag (drop it).
            if isinstance(part, str) and not _looks_like_tag(part):
                kept.append(part)
                cur = _MISSING
            continue
        else:
            continue
    return kept, cur


def _looks_like_tag(part: str) -> bool:
    return (
        "[" in part
        or part
        in {
            "float",
            "int",
            "str",
            "list",
            "dict",
            "bool",
            "none",
        }
        or part.startswith("function-")
    )


def problems_from_validation(
    exc: ValidationError, data: Any, file: str, prefix: str = ""
) -> list[Problem]:
    """Convert a pydantic ``ValidationError`` into problems with clean field paths."""
    merged: dict[str, dict[str, Any]] = {}
    for err in exc.errors(include_url=False):
        loc = tuple(err.get("loc", ()))
        # A model validator that knows which field is wrong says so (FieldError.loc).
        loc += tuple(getattr(err.get("ctx", {}).get("error"), "loc", ()))
        kept, value = _walk(data, loc)
        typ = err.get("type", "")
        msg = str(err.get("msg", "invalid"))
        if typ == "union_tag_invalid" or typ == "union_tag_not_found":
            kept = [*kept, "kind"]
            value = value.get("kind", _MISSING) if isinstance(value, dict) else _MISSING
            if typ == "union_tag_invalid":
                expected = err.get("ctx", {}).get("expected_tags", "")
                msg = f"unknown kind; expected one of {expected}"
            else:
                msg = "missing 'kind'"
        elif typ == "missing":
            msg = "required field is missing"
            value = _MISSING
        elif typ == "extra_forbidden":
            msg = "unknown key (not part of the schema)"
            value = err.get("input", value)
        elif typ == "float_type" and isinstance(value, str):
            msg = "expected a number, not a string (remove the quotes)"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        path = format_loc(kept)
        if prefix:
            path = prefix + ("." + path if path != "<root>" and not path.startswith("[") else path)
            path = path.replace(".<root>", "")
        if isinstance(value, dict) or (
            isinstance(value, list) and any(isinstance(v, dict | list) for v in value)
        ):
            value = _MISSING  # a whole table is no help in a one-line message
        elif isinstance(value, list):
            value = [v.isoformat() if isinstance(v, dt.date) else v for v in value]
        elif isinstance(value, dt.date):
            value = value.isoformat()  # as written in the file, not datetime.date(...)
        slot = merged.setdefault(path, {"msgs": [], "value": value})
        if msg not in slot["msgs"]:
            slot["msgs"].append(msg)
    out = []
    for path, slot in merged.items():
        message = " or ".join(slot["msgs"])
        if slot["value"] is _MISSING:
            out.append(Problem(file, path, message))
        else:
            out.append(Problem(file, path, message, slot["value"]))
    return out


def validate_model(model: type[M], data: Any, file: str, prefix: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise DealError(problems_from_validation(exc, data, file, prefix)) from None


# --- pool tapes ------------------------------------------------------------------------------

TAPE_REQUIRED = ("id", "balance", "rate", "amortization", "n_periods", "annual_pd")
TAPE_OPTIONAL = (
    "name",
    "sector",
    "region",
    "first_period",
    "recovery_rate",
    "recovery_lag_periods",
    "appraisal",
    "patent_count",
)


def _py(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def read_tape(path: str | Path) -> list[Obligor]:
    """Read a CSV or Parquet pool tape into obligors. Problems name the tape file, the row
    (1-based data row) with its id, the column and the value."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise DealError.one(p, "<file>", "pool tape not found")
    try:
        if p.suffix.lower() == ".csv":
            df = pd.read_csv(p, dtype={"id": str, "name": str, "sector": str, "region": str})
        elif p.suffix.lower() in (".parquet", ".pq"):
            df = pd.read_parquet(p)
        else:
            msg = "unknown tape type; expected .csv or .parquet"
            raise DealError.one(p, "<file>", msg, p.suffix)
    except DealError:
        raise
    except Exception as exc:  # pandas / pyarrow parse errors
        raise DealError.one(p, "<syntax>", f"cannot read tape: {exc}") from None
    missing = [c for c in TAPE_REQUIRED if c not in df.columns]
    if missing:
        raise DealError.one(
            p, "<columns>", f"missing required column(s) {', '.join(missing)}", list(df.columns)
        )
    unknown = [c for c in df.columns if c not in TAPE_REQUIRED and c not in TAPE_OPTIONAL]
    if unknown:
        raise DealError.one(p, "<columns>", "unknown column(s)", unknown)
    if len(df) == 0:
        raise DealError.one(p, "<rows>", "tape has no rows")
    obligors: list[Obligor] = []
    problems: list[Problem] = []
    for k, row in enumerate(df.to_dict("records")):
        r = {c: _py(v) for c, v in row.items()}
        rid = r.get("id")
        prefix = f"row {k + 1} (id={rid})"
        amort: dict[str, Any] = {"kind": r.get("amortization"), "n_periods": r.get("n_periods")}
        if r.get("first_period") is not None:
            amort["first_period"] = r["first_period"]
        doc: dict[str, Any] = {
            "id": None if rid is None else str(rid),
            "balance": r.get("balance"),
            "rate": r.get("rate"),
            "amortization": amort,
            "pd": {"kind": "flat", "annual": r.get("annual_pd")},
        }
        for c in ("name", "sector", "region"):
            if r.get(c) is not None:
                doc[c] = str(r[c])
        if r.get("recovery_rate") is not None or r.get("recovery_lag_periods") is not None:
            doc["recovery"] = {
                k2: r[c2]
                for k2, c2 in (("rate", "recovery_rate"), ("lag_periods", "recovery_lag_periods"))
                if r.get(c2) is not None
            }
        if r.get("appraisal") is not None:
            doc["collateral"] = {"appraisal": r["appraisal"]}
            if r.get("patent_count") is not None:
                doc["collateral"]["patent_count"] = r["patent_count"]
        try:
            obligors.append(Obligor.model_validate(doc))
        except ValidationError as exc:
            for prob in problems_from_validation(exc, doc, str(p), prefix):
                problems.append(_tape_column_names(prob))
    if problems:
        raise DealError(problems)
    return obligors


def _tape_column_names(prob: Problem) -> Problem:
    # Report tape problems by tape column, not by the internal document path.
    path = prob.path
    for internal, column in (
        ("amortization.kind", "amortization"),
        ("amortization.n_periods", "n_periods"),
        ("amortization.first_period", "first_period"),
        ("pd.annual", "annual_pd"),
        ("recovery.rate", "recovery_rate"),
        ("recovery.lag_periods", "recovery_lag_periods"),
        ("collateral.appraisal", "appraisal"),
        ("collateral.patent_count", "patent_count"),
    ):
        path = path.replace(internal, column)
    return Problem(prob.file, path, prob.message, prob.value)


# --- deals and scenarios ------------------------------------------------------------------------


def parse_deal(
    data: dict[str, Any], source: str | Path = "<memory>", base_dir: Path | None = None
) -> Deal:
    """Validate a deal document (already parsed into a dict). A pool ``tape`` is read relative
    to ``base_dir`` (the deal file's folder) and appended to the inline obligors."""
    deal = validate_model(Deal, data, str(source))
    if deal.pool.tape is not None:
        tape_path = Path(deal.pool.tape.path)
        if not tape_path.is_absolute():
            tape_path = (base_dir or Path.cwd()) / tape_path
        if not tape_path.is_file():
            # Name the deal's field: that is where the wrong path is written.
            msg = f"pool tape not found (looked for {tape_path})"
            raise DealError.one(source, "pool.tape.path", msg, deal.pool.tape.path)
        obligors = read_tape(tape_path)
        origins = [None] * len(deal.pool.obligors) + [
            (str(tape_path), f"row {k + 1} (id={o.id})") for k, o in enumerate(obligors)
        ]
        pool = deal.pool.model_copy(update={"obligors": [*deal.pool.obligors, *obligors]})
        deal = deal.model_copy(update={"pool": pool})
    deal._source = str(source)
    if deal.pool.tape is not None:
        deal._origins = origins
    return deal


def obligor_location(deal: Deal, k: int, field: str = "") -> tuple[str, str]:
    """(file, field path) of obligor k of the validated pool: the deal file's
    ``pool.obligors[k]`` or the tape's ``row r (id=...)``, with ``field`` appended."""
    origin = deal._origins[k] if k < len(deal._origins) else None
    if origin is None:
        return deal._source, f"pool.obligors[{k}]" + (f".{field}" if field else "")
    return origin[0], origin[1] + (f".{field}" if field else "")


def deal_source(deal: Deal) -> str:
    """The file a deal was loaded from, or ``<memory>``."""
    return deal._source


def load_deal(path: str | Path) -> Deal:
    """Load and validate a deal file (``.toml`` or ``.json``)."""
    p = Path(path)
    data = read_document(p)
    return parse_deal(data, source=p, base_dir=p.parent)


def parse_scenario(data: dict[str, Any], source: str | Path = "<memory>") -> DeterministicScenario:
    sc = validate_model(DeterministicScenario, data, str(source))
    sc._source = str(source)
    return sc


def load_scenario_file(path: str | Path) -> DeterministicScenario:
    p = Path(path)
    return parse_scenario(read_document(p), source=p)
