"""Shared pydantic building blocks: strict numbers, dates, and the frozen base model."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr

#: the longest recovery lag, in periods (deal, scenarios, tapes and the stress command)
MAX_RECOVERY_LAG = 120
LagPeriods = Annotated[int, Field(strict=True, ge=0, le=MAX_RECOVERY_LAG)]


class FieldError(ValueError):
    """Raised by a model validator about one field: ``loc`` (relative to the model, e.g.
    ``("payments", 2, "date")``) lets the loader point at that field, not the whole table."""

    def __init__(self, loc: tuple[str | int, ...], message: str):
        super().__init__(message)
        self.loc = loc


class Model(BaseModel):
    """Base of every schema object: frozen, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


#: the keys of a validation context that name the file a document was read from, and where
#: in it (a stress grid's shock)
_SOURCE_KEY = "source"
_AT_KEY = "at"


def source_context(source: str | Path, at: str = "") -> dict[str, str]:
    """The validation context that records ``source`` on a :class:`SourcedModel`:
    ``Deal.model_validate(data, context=source_context(path))``; ``at``: the field path of
    the document inside that file when it is not the whole file (``shocks[2]``)."""
    return {_SOURCE_KEY: str(source), _AT_KEY: at}


class SourcedModel(Model):
    """A model read from a file of its own: a deal or a scenario. :attr:`source` names the
    file, for error messages; it is given when the document is validated (the validation
    context of :func:`source_context`), kept by ``model_copy``, and never set afterwards. A
    model built in Python, or validated without that context, says ``<memory>``."""

    _source: str = PrivateAttr(default="<memory>")
    _at: str = PrivateAttr(default="")

    def model_post_init(self, context: Any, /) -> None:
        # Part of construction: a frozen model is not changed once it has been built.
        if isinstance(context, dict) and _SOURCE_KEY in context:
            self._source = str(context[_SOURCE_KEY])
            self._at = str(context.get(_AT_KEY, ""))

    @property
    def source(self) -> str:
        """The file this was validated from, or ``<memory>``."""
        return self._source

    def field_path(self, field: str) -> str:
        """The path in :attr:`source` of this document's ``field``: ``name``, or
        ``shocks[2].name`` for a stress grid's shock."""
        return f"{self._at}.{field}" if self._at else field


def _to_date(value: Any) -> Any:
    # TOML gives datetime.date; JSON gives ISO strings. Anything else (an int such as
    # 20250715, a datetime with a time) is refused instead of being guessed at.
    if isinstance(value, dt.datetime):
        raise ValueError("expected a date (YYYY-MM-DD), not a date-time")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError("expected a date as YYYY-MM-DD") from None
    raise ValueError("expected a date as YYYY-MM-DD")


Date = Annotated[dt.date, BeforeValidator(_to_date)]


def _strict_one(value: Any) -> Any:
    # ``Literal[1]`` alone takes True and 1.0 for 1: the schema version must be the integer 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("schema_version must be the integer 1")
    return value


#: ``schema_version``: the integer 1 (not ``true``, not ``1.0``, not ``"1"``).
SchemaVersion = Annotated[Literal[1], BeforeValidator(_strict_one)]

#: The largest amount of money accepted anywhere (yuan): far above any deal, and small enough that
#: sums of many such amounts stay finite and exact to the yuan in float64.
MAX_AMOUNT = 1e15
#: The largest count (periods, obligors named, consecutive periods...) a field takes: keeps every
#: count inside the kernels' int64 tables.
MAX_COUNT = 1_000_000_000

#: A float that refuses strings ("0.0279" in quotes is an error, not a coupon); ints are fine.
Num = Annotated[float, Field(strict=True, allow_inf_nan=False)]
#: A non-negative amount of money, in yuan.
Money = Annotated[float, Field(strict=True, ge=0, le=MAX_AMOUNT, allow_inf_nan=False)]
#: A probability or share in [0, 1].
Share = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
#: An annual rate as a decimal (0.0279 for 2.79%); negative rates allowed for base rates only.
Rate = Annotated[float, Field(strict=True, ge=-0.05, le=1.0, allow_inf_nan=False)]
#: A non-negative annual rate (obligor rates, fixed coupons, fee rates).
NonNegRate = Annotated[float, Field(strict=True, ge=0, le=1.0, allow_inf_nan=False)]
PosInt = Annotated[int, Field(strict=True, ge=1, le=MAX_COUNT)]
NonNegInt = Annotated[int, Field(strict=True, ge=0, le=MAX_COUNT)]
#: A true/false flag: ``true``/``false`` only (not 1, 0, "yes").
Bool = Annotated[bool, Field(strict=True)]
#: A finite positive number (no upper bound but infinity).
PosNum = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
#: control characters (C0, DEL, C1) and the two non-characters XML 1.0 and so an xlsx file
#: cannot hold: no name may carry one (an ESC in a tranche's name reached the terminal as an
#: escape sequence)
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\ufffe\uffff]")


def printable(text: object) -> str:
    """``text`` for a message: its control characters and U+FFFE/U+FFFF escaped as Python
    writes them (``\\x1b``), so a refused name cannot send an escape sequence to the
    terminal in the label that names it (a tape row's ``(id=...)``)."""
    return CONTROL_CHARS.sub(lambda m: repr(m.group())[1:-1], str(text))


def _no_control_chars(name: str) -> str:
    m = CONTROL_CHARS.search(name)
    if m is not None:
        raise ValueError(
            f"a name may not contain control characters ({m.group()!r} at position {m.start()})"
        )
    return name


Name = Annotated[
    str,
    Field(strict=True, min_length=1, max_length=64, pattern=r"^[^\s].*$"),
    AfterValidator(_no_control_chars),
]

#: what a spreadsheet reads as the start of a formula in a CSV cell
FORMULA_START = ("=", "+", "-", "@")


def _not_a_formula(name: str) -> str:
    if name.startswith(FORMULA_START):
        raise ValueError(
            f"a name may not start with {name[0]!r}: a spreadsheet opening the CSV outputs, "
            "where it is a cell, would run it as a formula"
        )
    return name


def _not_ending_in_space(name: str) -> str:
    if name != name.rstrip():
        raise ValueError(
            "a name may not end with whitespace ('A ' and 'A' would be two names that read "
            "alike in every table and file)"
        )
    return name


#: The name of something the outputs label by it (a tranche, fee, account, support, trigger,
#: scenario or deal): a :data:`Name` that a spreadsheet would not read as a formula, and
#: that does not end with whitespace.
OutputName = Annotated[Name, AfterValidator(_not_a_formula), AfterValidator(_not_ending_in_space)]
