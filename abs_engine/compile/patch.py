"""New tranche balances and coupons for a compiled deal, without compiling its pool again.

The structuring solvers evaluate one deal at many tranche balances or coupons. Validating and
compiling the whole deal at each evaluation costs most in the pool (every obligor validated
again, its schedule, PD curve and IP value computed again), and tranche terms change nothing
there. :func:`with_tranche_terms` keeps the pool and dates of a :class:`CompiledDeal`,
validates only the changed tranches, compiles the structure again from the changed deal (a
few tables of tranches, fees, accounts and steps: about a millisecond) and repeats the checks
of the notes against the pool. Recompiling the structure, rather than writing new values into
a few columns, means every table and check that depends on a balance or a coupon — the
tranche table, the target-balance schedules checked against the balance, a tranche with a
balance never paid principal, the residual tranche's coupon, notes against the pool — comes
out exactly as :func:`~abs_engine.compile.deal.compile_deal` makes it, without a second list
of those dependencies to keep in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

import numpy as np

from ..errors import (
    ArgumentTypeError,
    InputError,
    Problem,
    ProblemCollector,
    check_instance,
    short_repr,
)
from ..schema.deal import Deal
from ..schema.load import mark_validated, validate_model
from ..schema.tranche import Tranche
from .deal import CompiledDeal, collateral_problems
from .schedule import PeriodSchedule
from .waterfall import StructureArrays, compile_structure

__all__ = ["TRANCHE_TERMS", "with_tranche_terms"]

#: the tranche fields :func:`with_tranche_terms` changes: balance (yuan) and coupon
TRANCHE_TERMS = ("balance", "coupon")


def with_tranche_terms(cd: CompiledDeal, changes: Mapping[str, Mapping[str, Any]]) -> CompiledDeal:
    """``cd`` with new terms for some of its tranches.

    Parameters
    ----------
    cd : CompiledDeal
        A compiled deal (from :func:`~abs_engine.compile.deal.compile_deal` or from this
        function).
    changes : mapping of tranche name to mapping of field to value
        For each tranche to change, a new ``balance`` (yuan) and/or ``coupon`` (a coupon
        table as in a deal file, e.g. ``{"kind": "fixed", "rate": 0.03}``, or a coupon
        model).

    Returns
    -------
    CompiledDeal
        Equal, field for field and array for array, to ``compile_deal`` of ``cd.deal`` with
        those terms: the same pool object, new structure tables (read-only), the changed
        :class:`~abs_engine.schema.deal.Deal` and the warnings the changed deal has.

    Raises
    ------
    DealError
        What ``compile_deal`` would raise for the changed deal, naming ``cd.source`` and the
        field: a value the schema refuses (``tranches[0].balance``), notes above
        :data:`~abs_engine.compile.deal.MAX_NOTES_TO_POOL` times the pool, target balances
        above a new balance, a tranche with a balance that no step pays principal...
    ArgumentTypeError, InputError
        ``cd`` not a CompiledDeal, an unknown tranche, a field other than
        :data:`TRANCHE_TERMS`.
    """
    _check_changes(cd, changes)
    deal = cd.deal
    tranches = list(deal.tranches)
    for name, terms in changes.items():
        j = cd.tranche_names.index(name)
        doc = {**tranches[j].model_dump(), **terms}
        tranches[j] = validate_model(Tranche, doc, cd.source, prefix=f"tranches[{j}]")
    # Only tranches changed, each validated above; nothing in Deal checks one part against
    # another (compile_structure does), so the whole is valid as it stands.
    new_deal = deal.model_copy(update={"tranches": tranches})
    mark_validated(new_deal)
    structure, pc = _structure(new_deal, cd)
    pc.raise_if_any()
    for f in fields(structure):
        arr = getattr(structure, f.name)
        if isinstance(arr, np.ndarray):
            arr.setflags(write=False)
    return replace(
        cd, deal=new_deal, structure=structure, warnings=_kept_warnings(cd) + tuple(pc.warnings)
    )


def _structure(deal: Deal, cd: CompiledDeal) -> tuple[StructureArrays, ProblemCollector]:
    """What ``compile_deal`` derives from ``deal``'s structure, with ``cd``'s pool: the
    structure tables, and the problems and warnings of the structure and of the notes against
    the pool."""
    pc = ProblemCollector(cd.source)
    # cd's dates as rolled: a calendar registered anew since is not asked
    sched = PeriodSchedule.adjusted(deal.dates, cd.payment_dates, cd.source)
    structure = compile_structure(deal, sched, pc)
    collateral_problems(deal, cd.original_pool, pc)
    return structure, pc


def _kept_warnings(cd: CompiledDeal) -> tuple[Problem, ...]:
    """The warnings of ``cd`` that tranche terms take no part in: ``compile_deal`` collects
    them before the structure's and the notes' (none today: dates and the pool only raise
    problems)."""
    n = len(_structure(cd.deal, cd)[1].warnings)
    return cd.warnings[: len(cd.warnings) - n]


def _check_changes(cd: object, changes: object) -> None:
    """``cd`` a CompiledDeal; ``changes`` a mapping of its tranche names to mappings of
    :data:`TRANCHE_TERMS` fields."""
    cd = check_instance(cd, CompiledDeal, "with_tranche_terms", "cd", " (from compile_deal)")
    if not isinstance(changes, Mapping):
        raise ArgumentTypeError(
            f"with_tranche_terms: changes must be a mapping of tranche names to new terms, got "
            f"{short_repr(changes)} ({type(changes).__name__})"
        )
    for name, terms in changes.items():
        if not isinstance(name, str) or name not in cd.tranche_names:
            raise InputError(
                f"with_tranche_terms: unknown tranche {short_repr(name)}; tranches are "
                f"{list(cd.tranche_names)}"
            )
        if not isinstance(terms, Mapping):
            raise ArgumentTypeError(
                f"with_tranche_terms: the terms of tranche {name!r} must be a mapping such as "
                f"{{'balance': 1e6}}, got {short_repr(terms)} ({type(terms).__name__})"
            )
        other = [k for k in terms if k not in TRANCHE_TERMS]
        if other:
            raise InputError(
                f"with_tranche_terms: tranche {name!r}: only {', '.join(TRANCHE_TERMS)} can "
                f"change here, got {short_repr(other[0])}; compile the changed deal with "
                "compile_deal"
            )
