"""Read deal and scenario files (TOML or JSON) and pool tapes (CSV or Parquet), turning every
validation failure into :class:`~abs_engine.errors.Problem` s that name file, field and value."""

from __future__ import annotations

import datetime as dt
import json
import re
import stat
import tomllib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel, ValidationError

from ..errors import DealError, Problem, check_path, format_loc
from .common import SourcedModel, source_context
from .deal import Deal
from .files import decode_text, note_input
from .pool import ObligorTable
from .scenario import DeterministicScenario
from .tape import TAPE_OPTIONAL, TAPE_REQUIRED, read_tape_columns  # noqa: F401 (re-exported)

M = TypeVar("M", bound=BaseModel)
_PROBLEM_NO_VALUE = Problem("", "", "").value  # the "no value" marker of Problem

_MISSING = object()

#: Deal and scenario documents nest a handful of levels. Deeper nesting (brackets, braces or
#: dotted keys) is refused before parsing: it would exhaust the JSON parser's recursion, and
#: TOML's dotted keys cost time and memory quadratic in their depth.
MAX_NESTING = 64
#: The largest deal or scenario file read (bytes); a pool of that size belongs in a tape.
MAX_DOCUMENT_BYTES = 512 * 2**20


def require_file(
    p: Path,
    what: str = "file",
    *,
    file: str | Path | None = None,
    field: str | None = None,
    value: Any = _MISSING,
) -> int:
    """Check that ``p`` is a regular file that exists (no folder, device or broken path) and
    return its size in bytes; else a :class:`DealError` saying why — at ``file``'s ``field``
    when the path was written in another file (a deal's ``pool.tape.path``), else at ``p``."""

    def fail(reason: str, prefix: bool = True) -> DealError:
        text = f"{what} {reason}" if prefix else reason
        if field is not None:
            return DealError.one(file if file is not None else p, field, text, value)
        return DealError.one(p, "<file>", text)

    try:
        st = p.stat()
    except FileNotFoundError:
        raise fail("not found" + (f" (looked for {p})" if field is not None else "")) from None
    except NotADirectoryError:
        raise fail("not found (a folder on its path is a file)") from None
    except PermissionError:
        raise fail("cannot be opened: permission denied on a folder of its path") from None
    except OSError as exc:  # ENAMETOOLONG, ELOOP, EIO...
        raise fail(f"cannot be opened: {exc.strerror or exc}") from None
    except ValueError as exc:  # a NUL character
        raise fail(f"has an invalid path: {exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise fail(f"the path is a folder, not a {what}", prefix=False)
    if not stat.S_ISREG(st.st_mode):
        raise fail("the path is not a regular file but a device, pipe or socket", prefix=False)
    return int(st.st_size)


def is_file(p: Path) -> bool:
    """``Path.is_file`` that answers False, instead of raising, for paths the system refuses
    (too long, a NUL character, a loop of links)."""
    try:
        return p.is_file()
    except (OSError, ValueError):
        return False


#: strings (TOML's four kinds, JSON's one) and TOML comments: what the nesting scan skips
_STRINGS_AND_COMMENTS = re.compile(
    r'''"""(?:[^"\\]|\\[\s\S]|"(?!""))*"""|'''
    r"'''[\s\S]*?'''|"
    r""""(?:[^"\\\n]|\\.)*"|"""
    r"'[^'\n]*'|"
    r"#[^\n]*"
)
#: runs of text between separators (a key's dots lie in one run)
_SEGMENT = re.compile(r"[^\n=,\[\]{}]+")


def _too_many_dots(text: str) -> bool:
    """Whether a run of ``text`` with no separator holds more than :data:`MAX_NESTING` dots
    (a dotted key too deep) — one linear pass."""
    return any(m.group().count(".") > MAX_NESTING for m in _SEGMENT.finditer(text))


def _nesting(text: str, dotted_keys: bool = True) -> tuple[int, bool]:
    """(deepest bracket/brace nesting, whether a key has more than :data:`MAX_NESTING` dotted
    parts) of a TOML or JSON text, skipping strings and comments — without parsing it."""
    brackets = max(text.count("["), text.count("{")) > MAX_NESTING
    dots = dotted_keys and text.count(".") > MAX_NESTING
    if not (brackets or dots):
        return 0, False  # cannot be too deep: nothing to scan
    bare = _STRINGS_AND_COMMENTS.sub("", text)
    deepest = 0
    if brackets:
        b = np.frombuffer(bare.encode("utf-8"), dtype=np.uint8)
        step = (
            (b == ord("[")).astype(np.int64) + (b == ord("{")) - (b == ord("]")) - (b == ord("}"))
        )
        deepest = int(np.cumsum(step).max(initial=0))
    return deepest, bool(dots and _too_many_dots(bare))


class _DuplicateKeys(dict):
    """A JSON object in which a key was repeated (``dups`` lists them)."""

    dups: list[str]


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        dups = []
        for k, _ in pairs:
            if k in seen and k not in dups:
                dups.append(k)
            seen.add(k)
        marked = _DuplicateKeys(out)
        marked.dups = dups
        return marked
    return out


class _JsonConstant(ValueError):
    pass


def _json_constant(name: str) -> Any:
    raise _JsonConstant(name)


def _nodes(data: Any) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    """Every node of a parsed document (the document, each value of its tables and lists,
    depth first) with its location (keys and indices), without recursion."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    while stack:
        node, loc = stack.pop()
        yield node, loc
        if isinstance(node, dict):
            stack.extend((v, (*loc, k)) for k, v in node.items())
        elif isinstance(node, list | tuple):
            stack.extend((v, (*loc, i)) for i, v in enumerate(node))


def _duplicate_key_problems(data: Any, file: str) -> list[Problem]:
    """Every repeated key in a parsed JSON document, with its field path."""
    out: list[Problem] = []
    for node, loc in _nodes(data):
        if isinstance(node, _DuplicateKeys):
            for k in node.dups:
                out.append(
                    Problem(
                        file,
                        format_loc((*loc, k)),
                        "duplicate key: a JSON object names it more than once (the parser would "
                        "keep only the last)",
                        k,
                    )
                )
    return sorted(out, key=lambda pr: pr.path)


def read_document(path: str | Path) -> dict[str, Any]:
    """Parse a TOML (``.toml``) or JSON (``.json``) file into a dict; errors name the file.

    Refused with a :class:`DealError`: a missing, unreadable, empty, binary or non-UTF-8 file, a
    folder, nesting deeper than :data:`MAX_NESTING`, a JSON object that repeats a key, and
    ``NaN``/``Infinity`` in JSON."""
    p = check_path(path, "read_document", "path")
    suffix = p.suffix.lower()
    text = _document_text(p, suffix)
    deepest, dotted = _nesting(text, dotted_keys=suffix == ".toml")
    if deepest > MAX_NESTING or dotted:
        what = "brackets or braces" if deepest > MAX_NESTING else "dotted key parts"
        raise DealError.one(
            p, "<syntax>", f"nested too deeply: more than {MAX_NESTING} levels of {what}"
        )
    data = _parse_document(p, text, suffix)
    if not isinstance(data, dict):
        raise DealError.one(p, "<root>", "expected a JSON object at the top level")
    return data


def _document_text(p: Path, suffix: str) -> str:
    """The text of a deal or scenario file: a regular ``.toml`` or ``.json`` file of at most
    :data:`MAX_DOCUMENT_BYTES`, not blank, in UTF-8."""
    size = require_file(p)
    if suffix not in (".toml", ".json"):
        raise DealError.one(p, "<file>", "unknown file type; expected .toml or .json", p.suffix)
    if size > MAX_DOCUMENT_BYTES:
        raise DealError.one(
            p,
            "<file>",
            f"file too large for a deal or scenario ({size:,} bytes; at most "
            f"{MAX_DOCUMENT_BYTES:,}): put a large pool in a tape file",
        )
    try:
        raw = p.read_bytes()
    except OSError as exc:  # permission denied, EIO, a file replaced by a folder...
        raise DealError.one(p, "<file>", f"cannot read the file: {exc.strerror or exc}") from None
    note_input(p)
    if not raw.strip():
        raise DealError.one(p, "<file>", "the file is empty")
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DealError.one(p, "<syntax>", "UTF-16 text, not UTF-8; save it as UTF-8")
    return decode_text(p, raw)


def _parse_document(p: Path, text: str, suffix: str) -> Any:
    """``text`` parsed as TOML or JSON; a parser's complaint (or a repeated JSON key) as a
    :class:`DealError` at ``<syntax>``."""
    repeated: list[bool] = []  # set when a JSON object repeats a key

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = _json_object(pairs)
        if isinstance(out, _DuplicateKeys):
            repeated.append(True)
        return out

    try:
        if suffix == ".toml":
            return tomllib.loads(text)
        data = json.loads(text, object_pairs_hook=hook, parse_constant=_json_constant)
    except tomllib.TOMLDecodeError as exc:
        raise DealError.one(p, "<syntax>", f"not valid TOML: {exc}") from None
    except json.JSONDecodeError as exc:
        raise DealError.one(p, "<syntax>", f"not valid JSON: {exc}") from None
    except _JsonConstant as exc:
        raise DealError.one(
            p, "<syntax>", f"{exc} is not a JSON number; write a finite number", str(exc)
        ) from None
    except RecursionError:
        raise DealError.one(p, "<syntax>", "nested too deeply for the parser") from None
    except MemoryError:
        raise DealError.one(p, "<syntax>", "not enough memory to parse the file") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        why = str(exc)
        if "integer string conversion" in why:
            why = "a number with more than 4,300 digits"
        raise DealError.one(p, "<syntax>", f"cannot parse the file: {why}") from None
    if repeated:
        raise DealError(_duplicate_key_problems(data, str(p)))
    return data


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
        or part.startswith(("function-", "constrained-"))
    )


#: pydantic error types of a scalar that was not given
_SCALAR_TYPE_ERRORS = {"float_type", "int_type", "bool_type", "string_type", "literal_error"}


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
        # A union (a number or a list of numbers) reports every member; the member of the other
        # shape ("a valid number" for a list) is said only when nothing else is.
        other_shape = (typ in _SCALAR_TYPE_ERRORS and isinstance(value, list | dict)) or (
            typ == "list_type" and not isinstance(value, list)
        )
        path = _prefixed(prefix, format_loc(kept))
        if isinstance(value, dict) or (
            isinstance(value, list) and any(isinstance(v, dict | list) for v in value)
        ):
            value = _MISSING  # a whole table is no help in a one-line message
        elif isinstance(value, list):
            value = [v.isoformat() if isinstance(v, dt.date) else v for v in value]
        elif isinstance(value, dt.date):
            value = value.isoformat()  # as written in the file, not datetime.date(...)
        slot = merged.setdefault(path, {"msgs": [], "other": [], "value": value})
        key = "other" if other_shape else "msgs"
        if msg not in slot[key]:
            slot[key].append(msg)
    out = []
    for path, slot in merged.items():
        message = " or ".join(slot["msgs"] or slot["other"])
        if slot["value"] is _MISSING:
            out.append(Problem(file, path, message))
        else:
            out.append(Problem(file, path, message, slot["value"]))
    return out


def _has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate (JSON's ``\\ud800`` escapes parse to one):
    no file, console or Arrow column can hold it."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _surrogate_problems(data: Any, file: str, prefix: str = "") -> list[Problem]:
    """Every key and string value of ``data`` with a lone surrogate, by field path."""
    out: list[Problem] = []
    for node, loc in _nodes(data):
        if isinstance(node, str) and _has_surrogate(node):
            out.append(_surrogate(file, prefix, loc, node))
        elif isinstance(node, dict):
            out += [_surrogate(file, prefix, (*loc, ascii(k)[1:-1]), k)
                    for k in node if isinstance(k, str) and _has_surrogate(k)]  # fmt: skip
    return sorted(out, key=lambda pr: pr.path)


def _prefixed(prefix: str, path: str) -> str:
    """A field path inside the document under ``prefix`` (a grid's shock, say) as a path of
    the file."""
    if prefix:
        path = prefix + ("." + path if path != "<root>" and not path.startswith("[") else path)
        path = path.replace(".<root>", "")
    return path


def _surrogate(file: str, prefix: str, loc: tuple[Any, ...], text: str) -> Problem:
    return Problem(
        file,
        _prefixed(prefix, format_loc(loc)),
        "text with a lone surrogate (an unpaired \\ud800-\\udfff escape), not a character: "
        "write the character itself",
        text,
    )


def validate_model(
    model: type[M], data: Any, file: str, prefix: str = "", *, source: str | Path | None = None
) -> M:
    """``data`` validated as a ``model``; what the schema refuses raised as a
    :class:`DealError` whose problems name ``file`` (and field paths under ``prefix``).
    ``source``: the file a :class:`~abs_engine.schema.common.SourcedModel` records as its
    ``source`` (default: none, ``<memory>``)."""
    context = None if source is None else source_context(source)
    broken = _surrogate_problems(data, file, prefix)
    if broken:
        raise DealError(broken)
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise DealError(problems_from_validation(exc, data, file, prefix)) from None


# --- pool tapes ------------------------------------------------------------------------------


def read_tape(path: str | Path, encoding: str = "auto", sheet: str | None = None) -> ObligorTable:
    """Read a CSV or Parquet pool tape into columns (an :class:`ObligorTable`, no Python object
    per row), checked as the ``Obligor`` schema would check each row. Problems name the tape
    file, the row (1-based data row) with its id, the column and the value; at most
    ``MAX_TAPE_PROBLEMS`` are listed, then a count of the rest (see ``schema.tape``).
    ``encoding`` of a CSV: ``auto`` (UTF-8, with or without a byte-order mark, else GB18030),
    ``utf-8``, ``gb18030`` or ``gbk``; ``sheet``: of an Excel workbook (default: the first)."""
    p = check_path(path, "read_tape", "path")
    require_file(p, "pool tape")
    return read_tape_columns(p, encoding, sheet)


# --- deals and scenarios ------------------------------------------------------------------------


def parse_deal(
    data: dict[str, Any],
    source: str | Path = "<memory>",
    base_dir: Path | None = None,
    table: ObligorTable | None = None,
) -> Deal:
    """Validate a deal document (already parsed into a dict). A pool ``tape`` is read relative
    to ``base_dir`` (the deal file's folder) into ``pool.table``, after the inline obligors.
    ``table``: obligors already read from a tape, for a deal rebuilt from another's
    ``model_dump`` (its ``pool.tape`` cleared so that the tape is not read again)."""
    deal = validate_model(Deal, data, str(source), source=source)
    if deal.pool.tape is not None:
        tape_path = Path(deal.pool.tape.path)
        if not tape_path.is_absolute():
            tape_path = (base_dir or Path.cwd()) / tape_path
        # Name the deal's field: that is where the wrong path is written.
        require_file(
            tape_path, "pool tape", file=source, field="pool.tape.path", value=deal.pool.tape.path
        )
        table = read_tape_columns(tape_path, deal.pool.tape.encoding, deal.pool.tape.sheet)
    if table is not None:
        pool = deal.pool.model_copy()
        pool._table = table
        deal = deal.model_copy(update={"pool": pool})  # keeps the source
    mark_validated(deal)
    return deal


# --- re-validation of objects changed in Python ---------------------------------------------------
#
# ``model_copy(update=...)`` (and ``model_construct``) skip pydantic's validation, so a deal may
# reach ``compile_deal`` with values the schema refuses. A validated deal records a fingerprint
# of the identity of every object in it; ``compile_deal`` re-validates the deal (as a document,
# ``model_dump``) when the fingerprint is missing or no longer matches.

#: lists longer than this are fingerprinted by their items' identity only (a pool's tape rows
#: are not in such lists but in ``pool.table``, an ObligorTable checked when the tape is read;
#: this bounds the cost for a long inline list)
_SHALLOW_LIST = 1000


def _fingerprint(model: BaseModel) -> int:
    parts: list[int] = []
    stack: list[Any] = [model]
    while stack:
        x = stack.pop()
        parts.append(id(x))
        if isinstance(x, BaseModel):
            stack.extend(x.__dict__.values())
        elif isinstance(x, list | tuple):
            parts.append(len(x))
            if len(x) > _SHALLOW_LIST:
                parts.append(hash(tuple(map(id, x))))
            else:
                stack.extend(x)
        elif isinstance(x, dict):
            parts.append(len(x))
            stack.extend(x.keys())
            stack.extend(x.values())
    return hash(tuple(parts))


def mark_validated(deal: Deal) -> None:
    """Record that ``deal`` is valid as it stands (see :func:`revalidated_deal`)."""
    deal._fingerprint = _fingerprint(deal)


def revalidated_deal(deal: Deal) -> Deal:
    """``deal`` itself when it is unchanged since validation; otherwise the deal validated
    afresh from its ``model_dump`` (source and tape table kept), or a :class:`DealError`
    naming the field and value the schema refuses."""
    if deal._fingerprint is not None and deal._fingerprint == _fingerprint(deal):
        return deal
    try:
        fresh = revalidated(deal)
    except DealError as exc:
        note = " (the deal was changed in Python after it was validated, e.g. by model_copy)"
        raise DealError(
            [Problem(p.file, p.path, p.message + note, *_value_of(p)) for p in exc.problems]
        ) from None
    if deal.pool.table is not None and fresh.pool.table is None:
        fresh.pool._table = deal.pool.table  # the tape's rows (checked when read)
    mark_validated(fresh)
    return fresh


def _value_of(p: Problem) -> tuple[Any, ...]:
    return () if p.value is _PROBLEM_NO_VALUE else (p.value,)


def revalidated(obj: M) -> M:
    """A new ``type(obj)`` validated from ``obj.model_dump()``, keeping the file it came from
    (the ``source`` of a deal or scenario): catches values put in with ``model_copy(update=...)``
    or ``model_construct``, which skip validation."""
    file = obj.source if isinstance(obj, SourcedModel) else "<memory>"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # serializing a wrongly typed field warns
            data = obj.model_dump(mode="python", warnings=False)
    except Exception as exc:  # an object pydantic cannot even serialize
        raise DealError.one(
            file, "<root>", f"not a valid {type(obj).__name__}: {exc}".splitlines()[0]
        ) from None
    return validate_model(type(obj), data, file, source=file)


def obligor_location(deal: Deal, k: int, field: str = "") -> tuple[str, str]:
    """(file, field path) of obligor k of the validated pool: the deal file's
    ``pool.obligors[k]`` or the tape's ``row r (id=...)``, with ``field`` appended."""
    inline = len(deal.pool.obligors)
    table = deal.pool.table
    if table is None or k < inline:
        return deal.source, f"pool.obligors[{k}]" + (f".{field}" if field else "")
    return table.file, table.row_label(k - inline) + (f".{field}" if field else "")


def deal_source(deal: Deal) -> str:
    """The file a deal was loaded from, or ``<memory>`` (its :attr:`~Deal.source`)."""
    return deal.source


def load_deal(path: str | Path) -> Deal:
    """Load and validate a deal file (``.toml`` or ``.json``)."""
    p = check_path(path, "load_deal", "path")
    data = read_document(p)
    return parse_deal(data, source=p, base_dir=p.parent)


def parse_scenario(data: dict[str, Any], source: str | Path = "<memory>") -> DeterministicScenario:
    return validate_model(DeterministicScenario, data, str(source), source=source)
