"""Kernel arrays → pandas DataFrames for people (tranche table, pool summary, ledgers)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..compile.waterfall import STATUS_NAMES
from ..deterministic import WaterfallResult
from ..kernels import layout as L

__all__ = [
    "cashflows_long",
    "LEDGER_ITEMS",
    "POOL_TEXT_ITEMS",
    "cashflow_table",
    "ledger_long",
    "period_table",
    "pool_frame",
    "pool_summary",
    "tranche_table",
]


#: deal-level ledger items named as the cash flows name the same amounts (the layout's short
#: names otherwise: ``cash_end``, ``call_proceeds``...)
_DEAL_ITEM_NAMES = {
    "pool_start": "pool_balance_start",
    "interest": "pool_interest",
    "sched_prin": "scheduled_principal",
    "prepay": "prepayment",
    "default": "defaults",
    "recovery": "recoveries",
    "loss": "realised_loss",
    "pool_end": "pool_balance_end",
    "compensation": "compensation_received",
    "cum_default_ratio": "cumulative_default_rate",
}


def _items(prefix: str, names: dict[str, str] | None = None) -> list[tuple[str, int]]:
    out = [(k[len(prefix) :].lower(), getattr(L, k)) for k in dir(L) if k.startswith(prefix)]
    out = [((names or {}).get(name, name), col) for name, col in out]
    return sorted(out, key=lambda x: x[1])


#: ledger item names per entity type, in column order
LEDGER_ITEMS = {
    "tranche": _items("LT_"),
    "fee": _items("LF_"),
    "account": _items("LA_"),
    "support": _items("LS_"),
    "deal": _items("LP_", _DEAL_ITEM_NAMES),
}


def tranche_table(res: WaterfallResult, path: int = 0) -> pd.DataFrame:
    """One row per tranche for one path: name, balance, coupon, principal_paid, interest_paid,
    loss, interest_shortfall, wal_years, min_coverage_ratio, support_received,
    reserve_received, residual_paid (yuan; coupon as a decimal, WAL in years)."""
    cd = res.deal
    st = res.sum_tr[path]
    rows = []
    for j, tr in enumerate(cd.deal.tranches):
        c = tr.coupon
        coupon: float | str
        if c.kind == "fixed":
            coupon = c.rate
        elif c.kind == "floating":
            coupon = f"base{c.spread:+.4%}"
        else:
            coupon = "residual" if tr.principal == "residual" else "none"
        rows.append(
            {
                "tranche": tr.name,
                "balance": tr.balance,
                "coupon": coupon,
                "principal_paid": st[j, L.ST_PRINCIPAL_PAID],
                "interest_paid": st[j, L.ST_INTEREST_PAID],
                "loss": st[j, L.ST_LOSS],
                "interest_shortfall": st[j, L.ST_INTEREST_SHORTFALL],
                "wal_years": st[j, L.ST_WAL_YEARS],
                "min_coverage_ratio": st[j, L.ST_MIN_COVERAGE],
                "support_received": st[j, L.ST_FROM_SUPPORT],
                "reserve_received": st[j, L.ST_FROM_RESERVE],
                "residual_paid": st[j, L.ST_RESIDUAL_PAID],
            }
        )
    return pd.DataFrame(rows)


def pool_summary(res: WaterfallResult, path: int = 0) -> dict[str, float | int | str | None]:
    """Pool and deal totals for one path (yuan, ratios as decimals)."""
    cd = res.deal
    sp = res.sum_pool[path]
    orig = cd.original_pool

    def period_label(v: float) -> int | None:
        return None if v < 0 else int(v) + 1

    # the trust's defaults are those up to a clean-up call (the buyer takes the later ones)
    call = sp[L.SP_CALL_PERIOD]
    owned = cd.n_periods if call < 0 else int(call) + 1

    return {
        "scenario": res.flows.labels[path],
        "obligors": cd.n_obligors,
        "original_balance": orig,
        "defaulted": sp[L.SP_DEFAULT],
        "cumulative_default_rate": sp[L.SP_DEFAULT] / orig if orig else 0.0,
        "recovered": sp[L.SP_RECOVERY],
        "recovery_after_legal_final": float(res.flows.lost_recovery[path, :owned].sum()),
        "realised_loss": sp[L.SP_LOSS],
        "prepaid": sp[L.SP_PREPAY],
        "compensation_received": sp[L.SP_COMPENSATION],
        "support_paid": sp[L.SP_SUPPORT_PAID],
        "worst_status": STATUS_NAMES[int(sp[L.SP_MAX_STATUS])],
        "first_trigger_period": period_label(sp[L.SP_FIRST_TRIGGER_PERIOD]),
        "clean_up_call_period": period_label(sp[L.SP_CALL_PERIOD]),
        "min_coverage_ratio": sp[L.SP_MIN_COVERAGE],
        "cash_released": sp[L.SP_CASH_RELEASED],
    }


#: the items of :func:`pool_summary` that are not numbers, left out of :func:`pool_frame`
POOL_TEXT_ITEMS = ("scenario", "worst_status")


def pool_frame(summary: dict[str, float | int | str | None]) -> pd.DataFrame:
    """A :func:`pool_summary` as a frame in the layout of the Monte Carlo pool frame: indexed
    by ``metric`` (the summary's keys, in order), one float64 column ``value``. A period that
    never came (a trigger or a clean-up call, None in the summary) is NaN; the items of
    :data:`POOL_TEXT_ITEMS` are left out (the scenario names the frame, the worst status is
    text)."""
    values = {
        k: np.nan if v is None else float(v) for k, v in summary.items() if k not in POOL_TEXT_ITEMS
    }
    index = pd.Index(list(values), name="metric")
    return pd.DataFrame({"value": np.array(list(values.values()), dtype=float)}, index=index)


def _dates(res: WaterfallResult) -> pd.DatetimeIndex:
    return pd.to_datetime(list(res.deal.payment_dates))


def period_table(res: WaterfallResult, path: int = 0) -> pd.DataFrame:
    """Deal-level items per period (pool collections, available funds, coverage, status)."""
    df = pd.DataFrame(res.led_per[path], columns=[n for n, _ in LEDGER_ITEMS["deal"]])
    df.insert(0, "period", np.arange(1, res.deal.n_periods + 1))
    df.insert(1, "payment_date", _dates(res))
    df["status"] = [STATUS_NAMES[int(s)] for s in df["status"]]
    return df


def cashflow_table(res: WaterfallResult, path: int = 0) -> pd.DataFrame:
    """Per period: interest, principal and balance of every tranche, plus pool items — the
    'expected cash flows' view (columns like ``A.interest_paid``)."""
    cd = res.deal
    out = pd.DataFrame({"period": np.arange(1, cd.n_periods + 1), "payment_date": _dates(res)})
    per = res.led_per[path]
    # the pool's columns named as the Monte Carlo cash flows name them
    out["pool.balance_end"] = per[:, L.LP_POOL_END]
    collected = [L.LP_INTEREST, L.LP_SCHED_PRIN, L.LP_PREPAY, L.LP_RECOVERY]
    out["pool.collections"] = per[:, collected].sum(axis=1)
    out["pool.defaults"] = per[:, L.LP_DEFAULT]
    for j, name in enumerate(cd.tranche_names):
        lt = res.led_tr[path, :, j]
        out[f"{name}.interest_paid"] = lt[:, L.LT_INTEREST_PAID]
        out[f"{name}.principal_paid"] = lt[:, L.LT_PRINCIPAL_PAID]
        if np.any(lt[:, L.LT_RESIDUAL_PAID]):
            out[f"{name}.residual_paid"] = lt[:, L.LT_RESIDUAL_PAID]
        out[f"{name}.balance_end"] = lt[:, L.LT_BALANCE_END]
    out["coverage_ratio"] = per[:, L.LP_COVERAGE_RATIO]
    out["status"] = [STATUS_NAMES[int(s)] for s in per[:, L.LP_STATUS]]
    return out


def ledger_long(res: WaterfallResult, paths: list[int] | None = None) -> pd.DataFrame:
    """The full ledger in long form: one row per (path, period, entity, item) with columns
    ``path, scenario, period, payment_date, entity_type, entity, item, amount``."""
    cd = res.deal
    if paths is None:
        paths = list(range(res.flows.n_paths))
    dates = _dates(res)
    n_t = cd.n_periods
    parts = []
    spec = [
        ("tranche", cd.tranche_names, res.led_tr),
        ("fee", cd.fee_names, res.led_fee),
        ("account", cd.account_names, res.led_acc),
        ("support", cd.support_names, res.led_sup),
    ]
    for p in paths:
        for etype, names, arr in spec:
            items = LEDGER_ITEMS[etype]
            for e, name in enumerate(names):
                for item, col in items:
                    parts.append(
                        pd.DataFrame(
                            {
                                "path": p,
                                "scenario": res.flows.labels[p],
                                "period": np.arange(1, n_t + 1),
                                "payment_date": dates,
                                "entity_type": etype,
                                "entity": name,
                                "item": item,
                                "amount": arr[p, :, e, col],
                            }
                        )
                    )
        for item, col in LEDGER_ITEMS["deal"]:
            parts.append(
                pd.DataFrame(
                    {
                        "path": p,
                        "scenario": res.flows.labels[p],
                        "period": np.arange(1, n_t + 1),
                        "payment_date": dates,
                        "entity_type": "deal",
                        "entity": "deal",
                        "item": item,
                        "amount": res.led_per[p, :, col],
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)


def cashflows_long(wide: pd.DataFrame, tranche_names: Sequence[str]) -> pd.DataFrame:
    """A wide cash-flow table (columns ``<tranche>.<item>``, Monte Carlo ones with
    ``<tranche>.<item>_se``) in long form: one row per period, tranche and item, columns
    ``period, payment_date, tranche, item, value`` and, for Monte Carlo, ``se``. Pool and
    deal-level columns are left out (they stay in the wide table)."""
    id_cols = [c for c in ("period", "payment_date") if c in wide.columns]
    parts = []
    for t in tranche_names:
        # ``<t>.<item>`` exactly: not another tranche's "<t>.x.<item>"
        items = [
            c
            for c in wide.columns
            if c.startswith(f"{t}.") and "." not in c[len(t) + 1 :] and not c.endswith("_se")
        ]
        for c in items:
            part = wide[id_cols].copy()
            part["tranche"] = t
            part["item"] = c[len(t) + 1 :]
            part["value"] = wide[c].to_numpy()
            if f"{c}_se" in wide.columns:
                part["se"] = wide[f"{c}_se"].to_numpy()
            parts.append(part)
    cols = [*id_cols, "tranche", "item", "value"]
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True)
