"""What the deal report says, as one JSON document (``report.json`` of ``abs-engine report``):
the HTML report, the Excel workbook and the charts are all drawn from it, so the three show the
same numbers, and those numbers are the ones ``abs-engine run --json`` prints.

The document:

- ``deal``: name, description, source, currency, obligors, original pool, payment dates, and
  the capital structure (balance, share of the pool, coupon, attachment and detachment points);
- ``stamp``: engine version and commit, every input file with its SHA-256, the rating table;
- ``scenarios``: each scenario's kind and parameters (flattened ``a.b.c`` paths);
- ``monte_carlo``: each Monte Carlo scenario's document, as ``run --json`` prints it, plus
  ``loss_rate_hist`` (paths by pool loss rate, 1000 bins on [0, 1]) and ``bands`` (5th and
  95th percentiles per period of each tranche's balance and of the coverage ratio, over the
  first ``sample_paths`` paths' full ledgers);
- ``deterministic``: the deterministic scenarios' document (``run --json``), or None;
- ``comparison``: the side-by-side rows (tranche × scenario);
- ``stress``: the document ``abs-engine stress --json`` prints.
"""

from __future__ import annotations

import datetime as _dt
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..kernels import layout as L
from ..schema.tranche import tranche_classes
from .documents import deal_warnings
from .json_safe import nan_to_none

if TYPE_CHECKING:
    from ..api import DeterministicResult
    from ..compile.deal import CompiledDeal
    from .montecarlo import SimulationResult

__all__ = ["BAND_MAX_PATHS", "band_sample_size", "capital_structure", "report_document"]

#: the most paths whose full ledgers are re-run for the bands of the balance and coverage charts
BAND_MAX_PATHS = 2_000
#: below this many ledgers a 5–95% band says little: no band is drawn
BAND_MIN_PATHS = 200
#: obligor-periods re-run for the bands at most (a 100,000-obligor pool gets no band)
BAND_WORK = 40_000_000


def band_sample_size(cd: CompiledDeal, n_paths: int) -> int:
    """Paths whose full ledgers give the bands: the first ``k`` of the run's, ``k`` at most
    :data:`BAND_MAX_PATHS` and within :data:`BAND_WORK`; 0 when fewer than
    :data:`BAND_MIN_PATHS` would fit."""
    k = min(n_paths, BAND_MAX_PATHS, BAND_WORK // max(cd.n_obligors * cd.n_periods, 1))
    return k if k >= min(BAND_MIN_PATHS, n_paths) and k >= 2 else 0


def _class_balances(cd: CompiledDeal) -> list[tuple[float, float]]:
    """Per tranche, the balances of the notes senior to its class and of its class (yuan)
    (:func:`~abs_engine.schema.tranche.tranche_classes`)."""
    tranches = cd.deal.tranches
    out = []
    for first, end in tranche_classes(tranches):
        above = sum(t.balance for t in tranches[:first])
        out.append((above, sum(t.balance for t in tranches[first:end])))
    return out


def coupon_terms(tr: Any) -> str:
    """A tranche's coupon in words, for the capital structure: "fixed 2.7900%", "base +
    0.5000%, floor 0.0000%, cap 6.0000%", "" for none; a step-up as "+1.0000% from period
    3" and "interest on shortfall", each after a "; "."""
    c = tr.coupon
    parts = []
    if c.kind == "fixed":
        parts.append(f"fixed {c.rate:.4%}")
    elif c.kind == "floating":
        bounds = [f"{k} {v:.4%}" for k, v in (("floor", c.floor), ("cap", c.cap)) if v is not None]
        sign = "-" if c.spread < 0 else "+"
        parts.append(", ".join([f"base {sign} {abs(c.spread):.4%}", *bounds]))
    if tr.step_up is not None:
        parts.append(f"{tr.step_up.spread:+.4%} from period {tr.step_up.from_period}")
    if tr.interest_on_shortfall:
        parts.append("interest on shortfall")
    return "; ".join(parts)


def capital_structure(cd: CompiledDeal) -> list[dict[str, Any]]:
    """The tranches in the deal file's order, which the schema takes as their seniority
    (most senior first; :class:`~abs_engine.schema.tranche.Tranche`; write-offs hit the last
    first, a run of consecutive pro-rata tranches together): balance (yuan), share of the
    original pool, coupon (decimal, or a label), its terms in words (:func:`coupon_terms`:
    floor, cap, step-up), day count, principal type, and the attachment and
    detachment points as shares of the original pool (the pool loss at which the tranche's
    class starts and finishes losing, tranche balances alone)."""
    pool = cd.original_pool
    rows = []
    for tr, (above, size) in zip(cd.deal.tranches, _class_balances(cd), strict=True):
        c = tr.coupon
        coupon: float | str | None
        if c.kind == "fixed":
            coupon = c.rate
        elif c.kind == "floating":
            coupon = f"base{c.spread:+.4%}"
        else:
            coupon = None
        # (pool - above) / pool, not 1 - above / pool: 5m of a 100m pool is 0.05 exactly
        detach = max(0.0, (pool - above) / pool) if pool else 0.0
        attach = max(0.0, (pool - (above + size)) / pool) if pool else 0.0
        rows.append(
            {
                "tranche": tr.name,
                "balance": tr.balance,
                "share": tr.balance / pool if pool else 0.0,
                "coupon": coupon,
                "coupon_terms": coupon_terms(tr),
                "day_count": tr.day_count or cd.deal.dates.day_count,
                "principal": tr.principal,
                "attachment": attach,
                "detachment": detach,
            }
        )
    return rows


def _flatten(doc: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``{"a": {"b": 1}}`` → ``[("a.b", 1)]``; lists of scalars stay whole."""
    if isinstance(doc, dict):
        out = []
        for k, v in doc.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(doc, list) and any(isinstance(v, dict | list) for v in doc):
        out = []
        for i, v in enumerate(doc):
            out += _flatten(v, f"{prefix}[{i}]")
        return out
    return [(prefix, doc)]


def _scenario_entry(
    sc: Any, n_paths: int | None, seed: int | None, deal_base_rate: float
) -> dict[str, Any]:
    """A scenario's name, kind, description and parameters as given, with the base rate its
    floating coupons were set on: its own ``base_rate`` (or the deal's where it has none)
    plus ``rate_shock_bps``."""
    params = sc.model_dump(mode="json")
    skip = {"schema_version", "kind", "name", "description", "n_paths", "seed"}
    base = deal_base_rate if sc.base_rate is None else sc.base_rate
    entry: dict[str, Any] = {
        "name": sc.name,
        "kind": params.get("kind", "deterministic"),
        "description": params.get("description"),
        "parameters": [
            {"parameter": k, "value": v}
            for k, v in _flatten({k: v for k, v in params.items() if k not in skip})
        ]
        + [{"parameter": "base_rate_applied", "value": base + sc.rate_shock_bps / 1e4}],
    }
    if n_paths is not None:
        entry.update(n_paths=n_paths, seed=seed)
    return entry


def engine_commit() -> str | None:
    """The git commit the engine runs from (``+dirty`` with uncommitted changes), or None
    outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def path_bands(cd: CompiledDeal, res: SimulationResult) -> dict[str, Any]:
    """5th and 95th percentiles per period of each tranche's end balance (yuan) and of the
    deal's coverage ratio, over the full ledgers of the run's first
    :func:`band_sample_size` paths (bitwise the paths of the run). ``sample_paths`` 0: none."""
    from ..deterministic import run_waterfall
    from ..simulation import path_flows

    if res.model.sampling != "crude":
        # a path's weight would be needed, and a few thousand weighted paths give no band
        return {"sample_paths": 0, "reason": "importance"}
    k = band_sample_size(cd, res.n_paths)
    if k == 0:
        return {"sample_paths": 0}
    led = run_waterfall(cd, path_flows(cd, res.model, res.seed, range(k)))
    bal = led.led_tr[:, :, :, L.LT_BALANCE_END]  # [k, T, J]
    cov = led.led_per[:, :, L.LP_COVERAGE_RATIO]  # [k, T]

    def pct(a: np.ndarray, q: float) -> list[float | None]:
        with np.errstate(all="ignore"):
            defined = np.isfinite(a).any(axis=0)
            filled = np.where(np.isfinite(a), a, np.nan)
            out = np.full(a.shape[1:], np.nan)
            if defined.any():
                out[defined] = np.nanpercentile(filled[:, defined], q, axis=0)
        values: list[float | None] = nan_to_none(out.tolist())
        return values

    return {
        "sample_paths": k,
        "tranche_balance": {
            name: {"p05": pct(bal[:, :, j], 5), "p95": pct(bal[:, :, j], 95)}
            for j, name in enumerate(cd.tranche_names)
        },
        "coverage_ratio": {"p05": pct(cov, 5), "p95": pct(cov, 95)},
    }


def report_document(
    cd: CompiledDeal,
    scenarios: Sequence[Any],
    mc: Sequence[tuple[SimulationResult, dict[str, Any]]],
    det: tuple[DeterministicResult, dict[str, Any]] | None,
    comparison: list[dict[str, Any]],
    stress: dict[str, Any],
    stamp: dict[str, Any],
    *,
    lang: str,
) -> dict[str, Any]:
    """The report's document (see the module docstring). ``mc``: each Monte Carlo result with
    its ``run --json`` document; ``det``: the deterministic result with its document; the
    scenarios in the order given."""
    by_name = {res.scenario.name: res for res, _ in mc}
    scenario_rows = [
        _scenario_entry(
            s,
            by_name[s.name].n_paths if s.name in by_name else None,
            by_name[s.name].seed if s.name in by_name else None,
            cd.deal.base_rate,
        )
        for s in scenarios
    ]
    mc_docs = []
    for res, doc in mc:
        mc_docs.append(
            {
                **doc,
                "loss_rate_hist": res.loss_rate_hist.tolist(),  # weights under importance sampling
                "bands": path_bands(cd, res),
            }
        )
    pool = cd.original_pool
    issued = sum(t.balance for t in cd.deal.tranches)
    out: dict[str, Any] = nan_to_none(
        {
            "report": "abs-engine deal report",
            "lang": lang,
            "generated": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
            "deal": {
                "deal": cd.deal.name,
                "description": cd.deal.description,
                "source": str(cd.source),
                "currency": cd.deal.currency,
                "obligors": cd.n_obligors,
                "original_pool": pool,
                "periods": cd.n_periods,
                "first_payment_date": cd.payment_dates[0].isoformat(),
                "last_payment_date": cd.payment_dates[-1].isoformat(),
                "issued": issued,
                "overcollateralisation": (pool - issued) / pool if pool else 0.0,
                "tranches": capital_structure(cd),
                "warnings": deal_warnings(cd),
            },
            "stamp": {**stamp, "commit": engine_commit()},
            "scenarios": scenario_rows,
            "monte_carlo": mc_docs,
            "deterministic": None if det is None else det[1],
            "comparison": comparison,
            "stress": stress,
        }
    )
    return out
