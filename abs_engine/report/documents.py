"""Results as JSON documents: what ``abs-engine ... --json`` prints and ``--out`` writes as
``summary*.json``. Plain Python values only: NaN and infinities become ``null`` (see
:func:`abs_engine.report.json_safe.nan_to_none`); dates are ISO strings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .json_safe import nan_to_none
from .stamps import stamp

if TYPE_CHECKING:
    import pandas as pd

    from ..api import DeterministicResult
    from ..compile.deal import CompiledDeal
    from .montecarlo import SimulationResult

__all__ = ["mc_document", "result_document", "solver_document", "stress_document"]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A per-period frame as JSON records: dates as ``YYYY-MM-DD`` (as ``payment_dates``;
    pandas' ISO form added a time, ``T00:00:00.000``), every number whole (pandas' JSON
    writer kept 10 significant digits: a yuan's resolution above a billion)."""
    import pandas as pd

    plain = frame.copy()
    for c in plain.columns:
        if pd.api.types.is_datetime64_any_dtype(plain[c]):
            plain[c] = [None if pd.isna(d) else d.date().isoformat() for d in plain[c]]
    records: list[dict[str, Any]] = nan_to_none(plain.to_dict(orient="records"))
    return records


def _deal_header(cd: CompiledDeal) -> dict[str, Any]:
    """The deal's name, file and currency, and its warnings (allowed but probably wrong, as
    printed on stderr: a deliverable carries them too)."""
    return {"deal": cd.deal.name, "source": cd.source, "currency": cd.deal.currency,
            "deal_warnings": deal_warnings(cd)}  # fmt: skip


def deal_warnings(cd: CompiledDeal) -> list[str]:
    """The deal's warnings as text, one line each (``field: message (got value)``)."""
    return [str(w) for w in cd.warnings]


def result_document(res: DeterministicResult) -> dict[str, Any]:
    """A deterministic run: the deal, then per scenario its tranches, pool and cash flows (at
    the top level for one scenario; under ``scenarios`` for several, with the first one's
    tranches and pool also at the top level)."""
    docs = []
    for sc, view in zip(res.scenarios, res, strict=True):
        tr = view.tranches
        docs.append(
            {
                "scenario": sc.name,
                "tranches": [{"name": r["tranche"], **r} for r in tr.to_dict(orient="records")],
                "pool": view.pool_summary,
                "cashflows": _records(view.cashflows),
            }
        )
    cd = res.compiled
    doc: dict[str, Any] = {
        **_deal_header(cd),
        "stamp": stamp(cd, res.scenarios),
        "periods": cd.n_periods,
        "payment_dates": [d.isoformat() for d in cd.payment_dates],
    }
    if len(docs) == 1:
        doc.update(docs[0])
    else:
        doc["scenarios"] = docs
        doc.update({k: docs[0][k] for k in ("tranches", "pool")})
    out: dict[str, Any] = nan_to_none(doc)
    return out


def mc_document(res: SimulationResult) -> dict[str, Any]:
    """A Monte Carlo run: the deal, the run's paths, seed and timing, the rating table, then
    tranche means with standard errors (losses also in yuan), pool means and expected cash
    flows."""
    cd = res.deal
    tranches = []
    for row in res.tranches.to_dict(orient="records"):
        bal = row["balance"]
        tranches.append(
            {
                "name": row["tranche"],
                "tranche": row["tranche"],
                "balance": bal,
                "coupon": row["coupon"],
                "loss": row["principal_loss"] * bal if bal else 0.0,
                "loss_se": row["principal_loss_se"] * bal if bal else 0.0,
                **{k: v for k, v in row.items() if k not in ("tranche", "balance", "coupon")},
            }
        )
    pool = {m: {"mean": r["mean"], "se": r["se"]} for m, r in res.pool.iterrows()}
    out: dict[str, Any] = nan_to_none(
        {
            **_deal_header(cd),
            "scenario": res.scenario.name,
            "kind": "monte_carlo",
            "n_paths": res.n_paths,
            "seed": res.seed,
            "seconds": res.seconds,
            "compile_seconds": res.compile_seconds,
            "rating_table": {
                "source": res.rating_table.source,
                "basis": res.rating_table.basis,
                "illustrative": res.rating_table.illustrative,
            },
            "stamp": stamp(
                cd,
                [res.scenario],
                rating_table=res.rating_table,
                n_paths=res.n_paths,
                seed=res.seed,
                sampling=res.sampling["method"],
            ),  # fmt: skip
            "sampling": res.sampling,
            **({"precision": res.precision} if res.precision is not None else {}),
            "periods": cd.n_periods,
            "payment_dates": [d.isoformat() for d in cd.payment_dates],
            "tranches": tranches,
            "pool": pool,
            "cashflows": _records(res.cashflows),
        }
    )
    return out


def solver_document(
    deal: str,
    scenario: str,
    paths: int,
    seed: int,
    result: dict[str, Any],
    stamp: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A solver's answer (``size``, ``size-stack``, ``price``, ``breakeven``,
    ``sensitivity``) after the deal and scenario names and the paths and seed of each
    evaluation; ``stamp``: the engine version and the inputs' hashes (:func:`stamp`)."""
    doc = {"deal": deal, "scenario": scenario, "paths": paths, "seed": seed, **result}
    if stamp is not None:
        doc["stamp"] = stamp
    out: dict[str, Any] = nan_to_none(doc)
    return out


def stress_document(
    cd: CompiledDeal,
    *,
    recovery: float,
    lag: int,
    breakeven: list[dict[str, Any]],
    tranche: str | None,
    period: int,
    large_obligors: pd.DataFrame,
    coverage: pd.DataFrame | None,
    stamp: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``stress``: its assumptions, the breakeven default rates, the large-obligor test of
    ``tranche`` in ``period`` and the coverage ratio by period (None without scenarios),
    with the ``stamp`` of its inputs."""
    cov = None if coverage is None else coverage.reset_index().to_dict(orient="records")
    out: dict[str, Any] = nan_to_none(
        {
            "deal": cd.deal.name,
            "source": cd.source,
            **({"stamp": stamp} if stamp is not None else {}),
            "assumptions": {
                "recovery_rate": recovery,
                "recovery_lag": lag,
                "timing": "front-loaded over the first two thirds of the periods",
            },
            "breakeven": breakeven,
            "large_obligor_test": {
                "tranche": tranche,
                "period": period,
                "rows": large_obligors.to_dict(orient="records"),
            },
            "coverage_ratio": cov,
        }
    )
    return out
