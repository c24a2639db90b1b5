"""Property tests (hypothesis) over generated deals and scenarios.

Deals are drawn at random: 1-5 obligors (bullet / level-pay / equal-principal / explicit
license-fee schedules) on monthly to annual grids of 2-16 periods, with stub first periods,
month-end dates and business-day rolling; 1-4 tranches (fixed, floating or no coupon, step-ups,
interest on shortfall, the odd target-balance or empty tranche; the last may be residual) whose
total is at, below or above the pool; fees (rate on pool / notes / a tranche, fixed, floor,
cap); up to two reserve accounts (fixed / percent / next-period-interest targets, initial
balances) with draw and fund steps; shortfall undertakings and guarantees (interest /
principal at maturity / both, caps); loss compensation; triggers (cumulative default, coverage
ratio, missed interest, support default; accelerate / event of default / trap excess spread)
with accelerated and post-default waterfalls; write-offs; residual payments; a clean-up call.
Scenarios: no defaults, CDR (scalar or vector), cumulative with a timing curve, CPR, recovery
overrides, named obligor defaults, support-provider defaults, base rates and rate shocks.

Properties (every path, every period):

1. cash is conserved: cash carried in + cash in + account withdrawals == paid out + account
   deposits + cash carried out; ``LP_CASH_IN``, ``LP_PAID_OUT``, ``LP_AVAILABLE`` and
   ``LP_COMPENSATION`` agree with the entity ledgers; each account moves by deposits less
   withdrawals and is empty at the end; the pool runs off by principal, prepayments and
   defaults (or is bought by the call) and nothing performing is left at the end;
2. nothing goes negative (balances, amounts paid, due, unpaid, requested);
3. tranche bookkeeping: balance_end = balance_start - principal paid - write-down, the next
   period opens at the last one's close, principal paid + loss == original balance, and the
   per-path summaries agree with the ledgers;
4. sequential order of principal (see :func:`test_sequential_principal_order` for exactly
   what the kernel guarantees);
5. with no defaults and no prepayment, notes at or below the pool, coupons and fees inside the
   pool's rate and no call, every tranche is repaid in full with no interest shortfall;
6. the compiled (numba) kernel and its plain-Python twin give identical ledgers;
7. no defaults means no pool-side default, recovery, loss or compensation.

The last section keeps minimal counterexamples the properties found, as plain tests.

Examples per property: the hypothesis profile's (tests/conftest.py: 50 in the default "dev"
profile, 300 in "ci", which .ci/run loads with ``--hypothesis-profile=ci``); set
``ABS_PROPERTY_EXAMPLES`` for a deeper search. Drawing a deal costs more than running it (about
20 ms of hypothesis's choices against 5 ms to compile and run), so there is no setup to share.
"""

from __future__ import annotations

import calendar
import datetime as dt
import os
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from conftest import assert_same_run, mc
from hypothesis import given, reject, settings
from hypothesis import strategies as st

import abs_engine as ae
from abs_engine.compile import compile_deal, deterministic_flows
from abs_engine.compile.deal import CompiledDeal
from abs_engine.compile.schedule import add_months
from abs_engine.deterministic import WaterfallResult, run_waterfall
from abs_engine.errors import DealError
from abs_engine.kernels import _cache_dirs, source_digest
from abs_engine.kernels import layout as L
from abs_engine.kernels._twin import jit_twin
from abs_engine.kernels.bundles import Ledgers
from abs_engine.kernels.montecarlo import _checkpointed_path_py
from abs_engine.kernels.specialise import specialised_waterfall_py
from abs_engine.kernels.waterfall import (
    _checkpoint,
    _restart_path,
    _restart_path_py,
    waterfall_path,
    waterfall_path_py,
    waterfall_scratch_py,
)
from abs_engine.schema import DeterministicScenario, parse_deal, parse_scenario

FREQ_MONTHS = {"monthly": 1, "quarterly": 3, "semi_annual": 6, "annual": 12}
TRANCHE_NAMES = ("A", "B", "C", "D")

#: ABS_PROPERTY_EXAMPLES=5000 pytest tests/test_properties.py  for a deeper search (~8 min);
#: otherwise the loaded hypothesis profile's max_examples
_DEEP = os.environ.get("ABS_PROPERTY_EXAMPLES")
SETTINGS = settings(**({"max_examples": int(_DEEP)} if _DEEP else {}))


# ---------------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------------


@dataclass
class Case:
    """A generated deal dict, its scenarios and facts the checks need."""

    deal: dict[str, Any]
    scenarios: list[dict[str, Any]]
    n_periods: int

    def compile(self) -> tuple[CompiledDeal, list[DeterministicScenario]]:
        try:
            cd = compile_deal(parse_deal(self.deal))
        except DealError as exc:
            # the generator may roll two payment dates onto one business day (a stub legal
            # final just after a weekend date); the compiler rightly refuses such deals
            if all(p.path.startswith("dates.") for p in exc.problems):
                reject()
            raise
        scs = [parse_scenario({"name": f"s{k}", **s}) for k, s in enumerate(self.scenarios)]
        assert cd.n_periods == self.n_periods
        return cd, scs

    def run(self, jit: bool = False) -> WaterfallResult:
        cd, scs = self.compile()
        return run_waterfall(cd, deterministic_flows(cd, scs), jit=jit)


def _subset(draw, items: list[str], min_size: int = 1) -> list[str]:
    """A non-empty subset of ``items`` in their original (seniority) order."""
    keep = draw(st.lists(st.booleans(), min_size=len(items), max_size=len(items)))
    out = [x for x, k in zip(items, keep, strict=True) if k]
    if len(out) < min_size:
        out = items[:min_size]
    return out


def _chunks(draw, items: list[str]) -> list[list[str]]:
    """``items`` cut into consecutive non-empty runs (senior first)."""
    cuts = draw(st.lists(st.booleans(), min_size=len(items) - 1, max_size=len(items) - 1))
    out = [[items[0]]]
    for name, cut in zip(items[1:], cuts, strict=True):
        if cut:
            out.append([name])
        else:
            out[-1].append(name)
    return out


@st.composite
def _dates(draw, regular: bool) -> tuple[dict[str, Any], int]:
    freq = draw(st.sampled_from(list(FREQ_MONTHS)))
    step = FREQ_MONTHS[freq]
    n_t = draw(st.integers(2, 16))
    year, month = draw(st.integers(2024, 2026)), draw(st.integers(1, 12))
    if regular:
        # closing one period before the first payment, legal final on the grid, no rolling,
        # 30/360, never a month end: every accrual fraction is exactly 1 / periods_per_year
        fp = dt.date(year, month, draw(st.integers(1, 27)))
        closing = add_months(fp, -step)
        extra = 0
        roll, day_count = "none", "30/360"
    else:
        # any day (month ends follow the end-of-month rule), a stub first period (long or
        # short) and possibly a short last period off the grid
        fp = add_months(dt.date(year, month, 1), 0, draw(st.integers(1, 31)))
        closing = fp - dt.timedelta(days=draw(st.integers(7, 400)))
        extra = draw(st.one_of(st.just(0), st.integers(1, 27)))
        roll = draw(st.sampled_from(["none", "following", "modified_following", "preceding"]))
        day_count = draw(st.sampled_from(["ACT/365F", "ACT/360", "30/360"]))
    eom = fp.day == calendar.monthrange(fp.year, fp.month)[1]
    n_grid = n_t - 1 if extra else n_t
    legal_final = add_months(fp, step * (n_grid - 1), 31 if eom else fp.day)
    legal_final += dt.timedelta(days=extra)
    dates = {
        "closing": closing.isoformat(),
        "first_payment": fp.isoformat(),
        "frequency": freq,
        "legal_final": legal_final.isoformat(),
        "day_count": day_count,
        "business_day": roll,
    }
    return dates, n_t


def _money(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def _license_fees(draw, dates: dict[str, Any], balance: float) -> list[dict[str, Any]]:
    """An explicit license-fee schedule: 1-6 dates after closing up to legal final, principal
    summing to the balance, some financing interest."""
    closing = dt.date.fromisoformat(dates["closing"])
    span = (dt.date.fromisoformat(dates["legal_final"]) - closing).days
    days = sorted(draw(st.sets(st.integers(1, span), min_size=1, max_size=6)))
    w = [draw(_money(0.0, 1.0)) for _ in days]
    w[-1] += 1e-3
    prin = [balance * x / sum(w) for x in w]
    prin[-1] = max(0.0, balance - sum(prin[:-1]))
    return [
        {
            "date": (closing + dt.timedelta(days=d)).isoformat(),
            "principal": pr,
            "interest": draw(st.one_of(st.just(0.0), _money(0.0, balance * 0.05))),
        }
        for d, pr in zip(days, prin, strict=True)
    ]


@st.composite
def cases(
    draw,
    *,
    safe: bool = False,
    sequential: bool = False,
    triggers: bool = True,
    zero_defaults: bool = False,
    max_scenarios: int = 3,
) -> Case:
    """A generated deal and 1..max_scenarios scenarios.

    safe: the deal of property 5 (regular 30/360 periods, notes <= pool, coupon + fee rates
    <= every obligor rate, no fixed fees, no triggers or call, reserve funded only after
    principal, write-off after principal); scenarios are then ``{}``.
    sequential: every normal principal step is sequential with amount principal_due, and
    principal reserve draws cover a senior-first prefix of the tranches.
    """
    if safe:
        sequential = sequential or draw(st.booleans())
        triggers = False
    dates, n_t = draw(_dates(regular=safe))

    # ---- pool ----
    n_ob = draw(st.integers(1, 5))
    obligors = []
    for i in range(n_ob):
        n = draw(st.integers(1, n_t))
        first = draw(st.one_of(st.just(1), st.integers(1, n_t - n + 1)))
        kinds = ["bullet", "level_pay", "equal_principal"]
        if not safe:
            kinds.append("license_fee")
        kind = draw(st.sampled_from(kinds))
        balance = draw(_money(1e3, 1e8))
        if kind == "license_fee":
            amort: dict[str, Any] = {"kind": kind, "payments": draw(_license_fees(dates, balance))}
        else:
            amort = {"kind": kind, "n_periods": n, "first_period": first}
        ob: dict[str, Any] = {
            "id": f"O{i}",
            "balance": balance,
            "rate": draw(_money(0.0, 0.12)),
            "amortization": amort,
            "pd": {"kind": "flat", "annual": 0.02},
        }
        if draw(st.booleans()):
            ob["recovery"] = {
                "rate": draw(_money(0.0, 1.0)),
                "lag_periods": draw(st.integers(0, 6)),
            }
        obligors.append(ob)
    pool_bal = sum(o["balance"] for o in obligors)
    min_rate = min(o["rate"] for o in obligors)

    # ---- fees (drawn before the coupons so that property 5 can leave them room) ----
    n_tr = draw(st.integers(1, 4))
    names = list(TRANCHE_NAMES[:n_tr])
    fees = []
    fee_rate_total = 0.0
    for f in range(draw(st.integers(0, 3))):
        fee: dict[str, Any] = {"name": f"fee{f}"}
        if safe:
            fee["rate"] = draw(_money(0.0, min_rate / 6.0))
            fee["base"] = draw(st.sampled_from(["pool", "notes"]))
        else:
            if draw(st.booleans()):
                fee["rate"] = draw(_money(0.0, 0.01))
            fee["base"] = draw(st.sampled_from(["pool", "notes", "original_pool", *names]))
            if draw(st.booleans()):
                fee["fixed"] = draw(_money(0.0, pool_bal * 1e-3))
        if draw(st.booleans()):
            fee["cap"] = draw(_money(0.0, pool_bal * 0.01))
        if not safe and draw(st.integers(0, 3)) == 0:
            fee["floor"] = draw(_money(0.0, fee.get("cap", pool_bal * 1e-3)))
        fee_rate_total += fee.get("rate", 0.0)
        fees.append(fee)
    fee_names = [f["name"] for f in fees]

    # ---- tranches ----
    if safe:
        ratio = draw(st.one_of(st.just(1.0), _money(0.3, 1.0)))
    else:
        ratio = draw(st.one_of(st.just(1.0), _money(0.3, 1.0), _money(1.0, 1.5)))
    weights = [draw(_money(0.05, 1.0)) for _ in range(n_tr)]
    if not safe and n_tr > 1 and draw(st.integers(0, 9)) == 0:
        weights[draw(st.integers(0, n_tr - 1))] = 0.0  # a tranche with nothing outstanding
    total = pool_bal * ratio
    balances = [total * w / sum(weights) for w in weights]
    if safe and sum(balances) > pool_bal:
        balances = [b * (1.0 - 1e-12) for b in balances]
    margin = max(0.0, min_rate - fee_rate_total)
    residual = draw(st.booleans())
    tranches = []
    for j, name in enumerate(names):
        tr: dict[str, Any] = {"name": name, "balance": balances[j]}
        if residual and j == n_tr - 1:
            tr["principal"] = "residual"
            tr["coupon"] = {"kind": "none"}
        else:
            kind = draw(st.sampled_from(["fixed", "floating", "none"]))
            hi = margin if safe else 0.12
            if kind == "fixed":
                tr["coupon"] = {"kind": "fixed", "rate": draw(_money(0.0, hi))}
            elif kind == "floating":
                cp: dict[str, Any] = {"kind": "floating", "spread": draw(_money(0.0, hi / 2.0))}
                if draw(st.booleans()):
                    cp["floor"] = draw(_money(0.0, hi / 2.0))
                if draw(st.booleans()):
                    cp["cap"] = cp.get("floor", 0.0) + draw(_money(0.0, hi / 2.0))
                tr["coupon"] = cp
            else:
                tr["coupon"] = {"kind": "none"}
            if not safe and not sequential and draw(st.integers(0, 5)) == 0:
                # scheduled notes: paid down to a non-rising target each period
                cut = sorted(draw(st.lists(_money(0.0, 1.0), min_size=n_t, max_size=n_t)))
                tr["principal"] = "target_balance"
                tr["target_balances"] = [balances[j] * x for x in reversed(cut)]
            elif not safe and not sequential and draw(st.integers(0, 3)) == 0:
                tr["principal"] = "pro_rata"  # runs of them share principal due by balance
            if not safe:
                if draw(st.booleans()):
                    tr["interest_on_shortfall"] = True
                if draw(st.integers(0, 3)) == 0:
                    tr["step_up"] = {
                        "from_period": draw(st.integers(1, n_t)),
                        "spread": draw(_money(0.0, 0.03)),
                    }
                if draw(st.integers(0, 3)) == 0:
                    tr["day_count"] = draw(st.sampled_from(["ACT/365F", "ACT/360", "30/360"]))
        tranches.append(tr)
    if not safe and not sequential and n_tr > 1 and draw(st.integers(0, 2)) == 0:
        # a pari-passu class of two or more consecutive tranches (not the residual; not in
        # the sequential-order property's deals: a class's tranches are of one rank)
        last = n_tr - 1 if residual else n_tr
        if last >= 2:
            first = draw(st.integers(0, last - 2))
            for tr in tranches[first : draw(st.integers(first + 2, last))]:
                tr["pari_passu"] = "class"

    # ---- reserve accounts ----
    accounts = []
    for a in range(draw(st.integers(0, 2)) if draw(st.booleans()) else 0):
        kind = draw(st.sampled_from(["fixed", "percent", "next_period_interest"]))
        if kind == "fixed":
            target: dict[str, Any] = {"kind": "fixed", "amount": draw(_money(0.0, pool_bal * 0.05))}
        elif kind == "percent":
            target = {
                "kind": "percent",
                "rate": draw(_money(0.0, 0.1)),
                "of": draw(st.sampled_from(["pool", "notes", "original_pool", *names])),
            }
            if draw(st.booleans()):
                target["floor"] = draw(_money(0.0, pool_bal * 0.01))
        else:
            target = {
                "kind": "next_period_interest",
                "tranches": _subset(draw, names),
                "include_fees": draw(st.booleans()),
            }
        acc: dict[str, Any] = {"name": f"reserve{a}", "target": target}
        if draw(st.booleans()):
            acc["initial_balance"] = draw(_money(0.0, pool_bal * 0.05))
        accounts.append(acc)
    acc_names = [x["name"] for x in accounts]

    # ---- support ----
    support = []
    for k in range(draw(st.integers(0, 2)) if draw(st.booleans()) else 0):
        sup: dict[str, Any] = {
            "kind": draw(st.sampled_from(["shortfall_undertaking", "guarantee"])),
            "name": f"undertaking{k}",
            "provider": {"name": "originator"},
            "tranches": _subset(draw, names),
            "covers": draw(st.sampled_from(["interest", "principal_at_maturity", "both"])),
        }
        if draw(st.booleans()):
            sup["cap"] = draw(st.one_of(st.just(0.0), _money(0.0, pool_bal * 0.3)))
        support.append(sup)
    shortfall_names = [x["name"] for x in support]
    if draw(st.booleans()):
        comp: dict[str, Any] = {
            "kind": "loss_compensation",
            "name": "compensation",
            "provider": {"name": "fund"},
            "share": draw(_money(0.0, 1.0)),
            "lag_periods": draw(st.integers(0, 3)),
        }
        if draw(st.booleans()):
            comp["cap"] = draw(_money(0.0, pool_bal * 0.2))
        support.append(comp)

    # ---- triggers ----
    trig_list = []
    if triggers:
        effects = ["accelerate", "event_of_default"] + (["trap_excess_spread"] if accounts else [])
        for g in range(draw(st.integers(0, 3))):
            kinds = ["cumulative_default", "coverage_ratio", "missed_senior_interest"]
            if support:
                kinds.append("support_default")
            kind = draw(st.sampled_from(kinds))
            trg: dict[str, Any] = {"kind": kind, "name": f"trigger{g}"}
            if kind == "cumulative_default":
                trg["threshold"] = draw(_money(0.0, 0.3))
            elif kind == "coverage_ratio":
                trg["threshold"] = draw(_money(0.5, 2.0))
                trg["periods"] = draw(st.integers(1, min(3, n_t)))
            elif kind == "missed_senior_interest":
                trg["tranches"] = _subset(draw, names)
            else:
                trg["support"] = draw(st.sampled_from([x["name"] for x in support]))
            trg["effect"] = draw(st.sampled_from(effects))
            if trg["effect"] == "trap_excess_spread":
                trg["trap_account"] = draw(st.sampled_from(acc_names))
            trg["curable"] = draw(st.booleans())
            trig_list.append(trg)

    # ---- normal waterfall ----
    interest_steps: list[dict[str, Any]] = []
    if draw(st.booleans()):
        mode = draw(st.sampled_from(["pro_rata", "sequential"]))
        interest_steps.append({"kind": "pay_interest", "tranches": names, "mode": mode})
    else:
        interest_steps += [{"kind": "pay_interest", "tranches": [n]} for n in names]
    principal_steps = []
    for chunk in _chunks(draw, names):
        ps: dict[str, Any] = {"kind": "pay_principal", "tranches": chunk}
        if not sequential:
            ps["mode"] = draw(st.sampled_from(["sequential", "pro_rata"]))
            if draw(st.integers(0, 4)) == 0:
                ps["amount"] = "available"
            scheduled = {t["name"] for t in tranches if t.get("principal") == "target_balance"}
            if ps.get("amount") != "available" and scheduled & set(chunk):
                ps["mode"] = "sequential"  # refused pro rata: the schedule would be ignored
        principal_steps.append(ps)
    pre: list[dict[str, Any]] = [{"kind": "pay_fee", "fee": f} for f in fee_names]
    pre += interest_steps
    post: list[dict[str, Any]] = []
    for acc_name in acc_names:
        if draw(st.booleans()):
            pre.append(
                {"kind": "draw_reserve", "account": acc_name, "tranches": _subset(draw, names)}
            )
        if draw(st.booleans()):
            # principal draws cover a senior-first prefix (see test_sequential_principal_order)
            k = draw(st.integers(1, n_tr))
            post.append(
                {
                    "kind": "draw_reserve",
                    "account": acc_name,
                    "tranches": names[:k],
                    "covers": "principal",
                }
            )
        if draw(st.integers(0, 4)) > 0:
            fund = {"kind": "fund_reserve", "account": acc_name}
            (pre if not safe and draw(st.booleans()) else post).append(fund)
    for sup_name in shortfall_names:
        if draw(st.integers(0, 4)) > 0:
            (pre if draw(st.booleans()) else post).append(
                {"kind": "draw_support", "support": sup_name}
            )
    if draw(st.booleans()):
        if not safe and draw(st.booleans()):
            pre.append({"kind": "write_off"})
        else:
            post.append({"kind": "write_off"})
    if draw(st.booleans()):
        post.append({"kind": "pay_residual", "tranche": names[-1]})
    normal = pre + principal_steps + post
    if not safe and not sequential and draw(st.integers(0, 3)) == 0:
        # any order at all, principal steps kept senior first among themselves
        perm = draw(st.permutations(normal))
        slots = [k for k, x in enumerate(perm) if x["kind"] == "pay_principal"]
        perm = list(perm)
        for k, x in zip(slots, principal_steps, strict=True):
            perm[k] = x
        normal = perm
    waterfalls: dict[str, Any] = {"normal": normal}

    # ---- accelerated and post-default waterfalls ----
    effects_used = {t["effect"] for t in trig_list}
    fee_steps = [{"kind": "pay_fee", "fee": f} for f in fee_names]
    if "accelerate" in effects_used or (triggers and draw(st.booleans())):
        acc_steps = [*fee_steps, {"kind": "pay_interest", "tranches": names}]
        if accounts:
            acc_steps.append(
                {"kind": "draw_reserve", "account": acc_names[0], "tranches": names[:1]}
            )
        acc_steps.append({"kind": "pay_principal", "tranches": names, "amount": "available"})
        acc_steps += [{"kind": "draw_support", "support": x} for x in shortfall_names]
        acc_steps.append({"kind": "pay_residual", "tranche": names[-1]})
        waterfalls["accelerated"] = acc_steps
    if "event_of_default" in effects_used or (triggers and draw(st.booleans())):
        pd_steps = [*fee_steps, {"kind": "pay_interest", "tranches": names[:1]}]
        pd_steps.append({"kind": "pay_principal", "tranches": names[:1], "amount": "available"})
        if n_tr > 1:
            pd_steps.append({"kind": "pay_interest", "tranches": names[1:], "mode": "sequential"})
            pd_steps.append({"kind": "pay_principal", "tranches": names[1:], "amount": "available"})
        if draw(st.booleans()):
            pd_steps.append({"kind": "write_off"})
        waterfalls["post_default"] = pd_steps

    deal: dict[str, Any] = {
        "schema_version": 1,
        "name": "generated deal",
        "dates": dates,
        "pool": {"obligors": obligors},
        "tranches": tranches,
        "fees": fees,
        "accounts": accounts,
        "support": support,
        "triggers": trig_list,
        "waterfalls": waterfalls,
    }
    if not safe and draw(st.booleans()):
        deal["clean_up_call"] = {
            "pool_factor": draw(st.one_of(_money(0.0, 0.3), _money(0.0, 1.0))),
            "price": draw(_money(0.5, 1.2)),
        }
    if not safe and draw(st.booleans()):
        deal["base_rate"] = draw(_money(0.0, 0.05))
    if not safe and draw(st.booleans()):
        deal["coverage_ratio"] = {
            "tranche": draw(st.sampled_from(names)),
            "include_fees": draw(st.booleans()),
        }

    if safe:
        scenarios: list[dict[str, Any]] = [{}]
    else:
        n_sc = draw(st.integers(1, max_scenarios))
        scenarios = [
            draw(
                _scenario(
                    n_t, [o["id"] for o in obligors], [s["name"] for s in support], zero_defaults
                )
            )
            for _ in range(n_sc)
        ]
    return Case(deal, scenarios, n_t)


def _rate_or_vector(n_t: int, hi: float) -> st.SearchStrategy[Any]:
    one = st.one_of(_money(0.0, hi), st.sampled_from([0.0, 1.0]))
    return st.one_of(one, st.lists(one, min_size=1, max_size=n_t))


@st.composite
def _scenario(draw, n_t: int, obligor_ids: list[str], supports: list[str], zero_defaults: bool):
    sc: dict[str, Any] = {}
    kind = "none" if zero_defaults else draw(st.sampled_from(["none", "cdr", "cumulative"]))
    if kind == "cdr":
        sc["defaults"] = {"kind": "cdr", "cdr": draw(_rate_or_vector(n_t, 0.5))}
    elif kind == "cumulative":
        w = draw(st.lists(_money(0.0, 1.0), min_size=1, max_size=n_t))
        if sum(w) <= 0.0:
            w = [1.0]
        timing = [x / sum(w) for x in w]
        timing[-1] = max(0.0, 1.0 - sum(timing[:-1]))
        sc["defaults"] = {
            "kind": "cumulative",
            "cumulative": draw(_money(0.0, 0.6)),
            "timing": timing,
        }
    elif draw(st.booleans()):
        sc["defaults"] = {"kind": "none"}
    if draw(st.booleans()):
        sc["prepayment"] = {"cpr": draw(_rate_or_vector(n_t, 0.5))}
    if draw(st.booleans()):
        sc["recovery"] = {"rate": draw(_money(0.0, 1.0)), "lag_periods": draw(st.integers(0, n_t))}
    if not zero_defaults:
        # an obligor defaults once: distinct named obligors, or one largest-k event
        events: list[dict[str, Any]] = []
        if draw(st.booleans()):
            named = draw(st.lists(st.sampled_from(obligor_ids), max_size=2, unique=True))
            events = [{"period": draw(st.integers(1, n_t)), "obligor": o} for o in named]
        elif draw(st.booleans()):
            k = draw(st.integers(1, len(obligor_ids)))
            events = [{"period": draw(st.integers(1, n_t)), "largest": k}]
        if events:
            sc["obligor_defaults"] = events
    sd = [
        {"support": s, "period": draw(st.integers(1, n_t))} for s in supports if draw(st.booleans())
    ]
    if sd:
        sc["support_defaults"] = sd
    if draw(st.booleans()):
        sc["base_rate"] = draw(_money(0.0, 0.06))
    if draw(st.integers(0, 4)) == 0:
        sc["rate_shock_bps"] = draw(_money(0.0, 500.0))
    return sc


# ---------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------


def _scale(case: Case) -> float:
    d = case.deal
    scale = sum(o["balance"] for o in d["pool"]["obligors"])
    scale += sum(t["balance"] for t in d["tranches"])
    return scale + sum(a.get("initial_balance", 0.0) for a in d["accounts"])


def _tol(case: Case) -> float:
    """1e-6 yuan, mildly scaled with the deal's size (1e-12 relative)."""
    return 1e-6 + 1e-12 * _scale(case)


def _active(res: WaterfallResult, p: int) -> int:
    """Number of periods that ran on path p (the deal stops after a clean-up call)."""
    call = res.sum_pool[p, L.SP_CALL_PERIOD]
    return int(call) + 1 if call >= 0 else res.deal.n_periods


def _shortfall_mask(res: WaterfallResult) -> np.ndarray:
    si = res.deal.structure.support_i
    return si[:, L.SI_KIND] == L.SUPPORT_SHORTFALL if len(si) else np.zeros(0, dtype=bool)


def check_cash_conservation(case: Case, res: WaterfallResult) -> None:
    tol = _tol(case)
    per, tr, fee, acc, sup = res.led_per, res.led_tr, res.led_fee, res.led_acc, res.led_sup
    short = _shortfall_mask(res)
    for p in range(per.shape[0]):
        for t in range(per.shape[1]):
            lp = per[p, t]
            withdrawals = acc[p, t, :, L.LA_WITHDRAWAL].sum()
            deposits = acc[p, t, :, L.LA_DEPOSIT].sum()
            lhs = lp[L.LP_CASH_START] + lp[L.LP_CASH_IN] + withdrawals
            rhs = lp[L.LP_PAID_OUT] + deposits + lp[L.LP_CASH_END] + lp[L.LP_CASH_RELEASED]
            assert abs(lhs - rhs) <= tol, (p, t, "cash not conserved", lhs, rhs)
            paid = (
                fee[p, t, :, L.LF_PAID].sum()
                + tr[p, t, :, L.LT_INTEREST_PAID].sum()
                + tr[p, t, :, L.LT_PRINCIPAL_PAID].sum()
                + tr[p, t, :, L.LT_RESIDUAL_PAID].sum()
            )
            assert abs(lp[L.LP_PAID_OUT] - paid) <= tol, (p, t, "paid out", lp[L.LP_PAID_OUT], paid)
            collections = (
                lp[L.LP_INTEREST] + lp[L.LP_SCHED_PRIN] + lp[L.LP_PREPAY] + lp[L.LP_RECOVERY]
            )
            support_paid = sup[p, t, short, L.LS_PAID].sum()
            cash_in = collections + lp[L.LP_COMPENSATION] + lp[L.LP_CALL_PROCEEDS] + support_paid
            assert abs(lp[L.LP_CASH_IN] - cash_in) <= tol, (
                p,
                t,
                "cash in",
                lp[L.LP_CASH_IN],
                cash_in,
            )
            comp = sup[p, t, ~short, L.LS_PAID].sum()
            assert abs(lp[L.LP_COMPENSATION] - comp) <= tol, (p, t, "compensation")
            avail = (
                lp[L.LP_CASH_START] + collections + lp[L.LP_COMPENSATION] + lp[L.LP_CALL_PROCEEDS]
            )
            assert abs(lp[L.LP_AVAILABLE] - avail) <= tol, (p, t, "available funds")
            assert lp[L.LP_TRAPPED] <= deposits + tol, (p, t, "trapped but not deposited")
            for a in range(acc.shape[2]):
                la = acc[p, t, a]
                move = la[L.LA_BALANCE_END] - la[L.LA_BALANCE_START]
                net = la[L.LA_DEPOSIT] - la[L.LA_WITHDRAWAL]
                assert abs(move - net) <= tol, (p, t, a, "account balance", move, net)
            if 0 < t < _active(res, p):
                prev = per[p, t - 1]
                assert lp[L.LP_CASH_START] == prev[L.LP_CASH_END], (p, t, "cash carried")
                assert lp[L.LP_POOL_START] == prev[L.LP_POOL_END], (p, t, "pool carried")
                # accounts open at last period's close (a release above target is booked as a
                # withdrawal of this period)
                assert np.array_equal(
                    acc[p, t, :, L.LA_BALANCE_START], acc[p, t - 1, :, L.LA_BALANCE_END]
                ), (p, t, "account carried")
        # whole-deal identity: everything that came in went out or is still in the trust
        last = _active(res, p) - 1
        initial = res.deal.structure.account_f[:, L.AF_INITIAL].sum()
        total_in = per[p, :, L.LP_CASH_IN].sum() + initial
        total_out = per[p, :, L.LP_PAID_OUT].sum() + per[p, :, L.LP_CASH_RELEASED].sum()
        total_out += per[p, last, L.LP_CASH_END] + acc[p, last, :, L.LA_BALANCE_END].sum()
        assert abs(total_in - total_out) <= tol * 2 * per.shape[1], (
            p,
            "deal totals",
            total_in,
            total_out,
        )
        assert res.sum_pool[p, L.SP_CASH_RELEASED] == per[p, last, L.LP_CASH_RELEASED]
        # the trust closes with nothing in it, and releases cash only then
        assert per[p, last, L.LP_CASH_END] == 0.0, (p, "cash left in the trust")
        assert np.all(per[p, :last, L.LP_CASH_RELEASED] == 0.0), (p, "released before the end")
        # no waterfall step adds to available funds, so a period whose waterfall pays the
        # residual ends with no cash (without a trap it goes to the residual tranche)
        ops, n_steps = res.deal.structure.ops, res.deal.structure.n_steps
        for t in range(last + 1):
            w = int(per[p, t, L.LP_STATUS])
            if np.any(ops[w, : n_steps[w], L.OPC_CODE] == L.OP_PAY_RESIDUAL):
                assert per[p, t, L.LP_CASH_END] == 0.0, (p, t, "cash left after pay_residual")
        # accounts are released in full in the final (or call) period
        assert np.all(acc[p, last, :, L.LA_BALANCE_END] == 0.0), (p, "account left at the end")
        # after the deal: nothing happens, and there is no coverage ratio (NaN)
        after = per[p, last + 1 :]
        assert np.all(np.delete(after, L.LP_COVERAGE_RATIO, axis=1) == 0.0), (p, "activity after")
        assert np.isnan(after[:, L.LP_COVERAGE_RATIO]).all(), (p, "a coverage ratio after")
        check_pool_side(case, res, p)


def check_pool_side(case: Case, res: WaterfallResult, p: int) -> None:
    """The performing pool runs off by scheduled principal, prepayments and defaults; a
    clean-up call buys what is left at ``price`` and the defaulted receivables at the
    recoveries still to come; nothing performing is left at the end."""
    tol = _tol(case)
    per = res.led_per[p]
    last = _active(res, p) - 1
    call = res.deal.structure.call_price
    for t in range(last + 1):
        lp = per[t]
        run_off = lp[L.LP_POOL_START] - lp[L.LP_SCHED_PRIN] - lp[L.LP_PREPAY] - lp[L.LP_DEFAULT]
        if res.sum_pool[p, L.SP_CALL_PERIOD] == t:
            assert lp[L.LP_POOL_END] == 0.0 and run_off > 0.0
            # only receivables defaulted by now: a default after the call was bought at par
            pending = res.flows.flows[p, L.PF_PENDING_RECOVERY, t]
            expected = call * run_off + pending
            assert abs(lp[L.LP_CALL_PROCEEDS] - expected) <= tol, (p, t, "call")
        else:
            assert lp[L.LP_CALL_PROCEEDS] == 0.0
            assert abs(lp[L.LP_POOL_END] - max(run_off, 0.0)) <= tol, (p, t, "pool run-off")
        if t > 0:
            assert lp[L.LP_POOL_START] == per[t - 1, L.LP_POOL_END]
            assert lp[L.LP_CUM_DEFAULT_RATIO] >= per[t - 1, L.LP_CUM_DEFAULT_RATIO]
    assert per[last, L.LP_POOL_END] <= tol, (p, "pool left at the end", per[last, L.LP_POOL_END])
    if res.sum_pool[p, L.SP_CALL_PERIOD] < 0:
        # whole deal: every defaulted yuan is recovered in time or booked as a loss (a
        # recovery after legal final counts as lost in the final period)
        defaulted = per[:, L.LP_DEFAULT].sum()
        settled = per[:, L.LP_RECOVERY].sum() + per[:, L.LP_LOSS].sum()
        assert abs(defaulted - settled) <= tol * per.shape[0], (p, "defaults unsettled")
        assert res.flows.flows[p, L.PF_PENDING_RECOVERY, -1] == 0.0
    assert abs(per[0, L.LP_POOL_START] - res.deal.original_pool) <= tol
    # recoveries never exceed what defaulted
    assert per[:, L.LP_RECOVERY].sum() <= per[:, L.LP_DEFAULT].sum() + tol


def check_no_negatives(case: Case, res: WaterfallResult) -> None:
    tol = 1e-9 + 1e-15 * _scale(case)  # -1e-9, mildly scaled with the deal size
    for name in ("led_tr", "led_fee", "led_acc", "led_sup", "led_per", "sum_tr", "sum_pool"):
        arr = getattr(res, name)
        if name == "sum_tr":
            arr = np.delete(arr, L.ST_FIRST_SHORTFALL_PERIOD, axis=-1)
        if name == "sum_pool":
            arr = np.delete(arr, [L.SP_FIRST_TRIGGER_PERIOD, L.SP_CALL_PERIOD], axis=-1)
        finite = np.where(np.isnan(arr), 0.0, arr)
        assert finite.min(initial=0.0) >= -tol, (name, np.argwhere(finite < -tol)[:5])


def check_tranche_bookkeeping(case: Case, res: WaterfallResult) -> None:
    tol = _tol(case)
    tr = res.led_tr
    orig = res.deal.structure.tranche_f[:, L.TF_BALANCE]
    for p in range(tr.shape[0]):
        n_act = _active(res, p)
        for t in range(n_act):
            x = tr[p, t]
            expect = x[:, L.LT_BALANCE_START] - x[:, L.LT_PRINCIPAL_PAID] - x[:, L.LT_WRITE_DOWN]
            assert np.allclose(x[:, L.LT_BALANCE_END], expect, rtol=0, atol=tol), (p, t)
            if t == 0:
                assert np.array_equal(x[:, L.LT_BALANCE_START], orig)
            else:
                assert np.array_equal(x[:, L.LT_BALANCE_START], tr[p, t - 1, :, L.LT_BALANCE_END])
        # every balance is gone after the last period that ran
        assert np.all(tr[p, n_act - 1, :, L.LT_BALANCE_END] == 0.0), p
        after = tr[p, n_act:]
        assert np.all(np.delete(after, L.LT_COVERAGE_RATIO, axis=2) == 0.0), p
        assert np.isnan(after[:, :, L.LT_COVERAGE_RATIO]).all(), p
        s = res.sum_tr[p]
        assert np.allclose(s[:, L.ST_PRINCIPAL_PAID] + s[:, L.ST_LOSS], orig, rtol=0, atol=tol), (
            p,
            s[:, L.ST_PRINCIPAL_PAID],
            s[:, L.ST_LOSS],
            orig,
        )
        assert np.allclose(
            s[:, L.ST_PRINCIPAL_PAID], tr[p, :, :, L.LT_PRINCIPAL_PAID].sum(0), atol=tol
        )
        assert np.allclose(
            s[:, L.ST_INTEREST_PAID], tr[p, :, :, L.LT_INTEREST_PAID].sum(0), atol=tol
        )
        # interest bookkeeping: the shortfall is what was due and not paid
        x = tr[p, :n_act]
        short = x[:, :, L.LT_INTEREST_DUE] - x[:, :, L.LT_INTEREST_PAID]
        assert np.all(x[:, :, L.LT_INTEREST_PAID] <= x[:, :, L.LT_INTEREST_DUE] + tol)
        assert np.allclose(x[:, :, L.LT_INTEREST_SHORTFALL], np.maximum(short, 0.0), atol=tol)


def check_summary_interest_shortfall(case: Case, res: WaterfallResult) -> None:
    """``ST_INTEREST_SHORTFALL`` ("interest unpaid at the end") is the shortfall left at the
    end of the last period that ran."""
    tol = _tol(case)
    for p in range(res.led_tr.shape[0]):
        end = res.led_tr[p, _active(res, p) - 1, :, L.LT_INTEREST_SHORTFALL]
        got = res.sum_tr[p, :, L.ST_INTEREST_SHORTFALL]
        assert np.allclose(got, end, rtol=0, atol=tol), (
            p,
            got,
            res.led_tr[p, :, :, L.LT_INTEREST_SHORTFALL],
        )


def check_summaries(case: Case, res: WaterfallResult) -> None:
    """Per-path summaries agree with the ledgers they summarise (all but the interest
    shortfall, checked on its own by :func:`check_summary_interest_shortfall`)."""
    tol = _tol(case)
    tr, per, sup, fee = res.led_tr, res.led_per, res.led_sup, res.led_fee
    short = _shortfall_mask(res)
    years = res.deal.years
    caps = res.deal.structure.support_f[:, L.SF_CAP]
    for p in range(tr.shape[0]):
        n_act = _active(res, p)
        s = res.sum_tr[p]
        for item, col in (
            (L.ST_FROM_SUPPORT, L.LT_FROM_SUPPORT),
            (L.ST_FROM_RESERVE, L.LT_FROM_RESERVE),
            (L.ST_RESIDUAL_PAID, L.LT_RESIDUAL_PAID),
            (L.ST_LOSS, L.LT_WRITE_DOWN),
        ):
            assert np.allclose(s[:, item], tr[p, :, :, col].sum(0), atol=tol), (p, item)
        pp = tr[p, :, :, L.LT_PRINCIPAL_PAID]
        for j in range(tr.shape[2]):
            if pp[:, j].sum() > 1e-9:
                wal = (pp[:, j] * years).sum() / pp[:, j].sum()
                assert abs(s[j, L.ST_WAL_YEARS] - wal) <= 1e-9 * max(1.0, wal), (p, j)
            miss = np.nonzero(tr[p, :n_act, j, L.LT_INTEREST_SHORTFALL] > 0.01)[0]
            first = miss[0] if len(miss) else -1
            assert s[j, L.ST_FIRST_SHORTFALL_PERIOD] == first, (p, j)
            cr = tr[p, :n_act, j, L.LT_COVERAGE_RATIO]
            m = np.nanmin(cr) if np.any(~np.isnan(cr)) else np.nan
            assert np.array_equal(s[j, L.ST_MIN_COVERAGE], m, equal_nan=True), (p, j)
        sp = res.sum_pool[p]
        for item, col in (
            (L.SP_DEFAULT, L.LP_DEFAULT),
            (L.SP_PREPAY, L.LP_PREPAY),
            (L.SP_COMPENSATION, L.LP_COMPENSATION),
        ):
            assert abs(sp[item] - per[p, :, col].sum()) <= tol, (p, item)
        # recoveries and losses: the periods', and at a clean-up call the defaulted
        # receivables sold at their recovery value (recovered then, the rest lost)
        rec, loss = per[p, :, L.LP_RECOVERY].sum(), per[p, :, L.LP_LOSS].sum()
        if sp[L.SP_CALL_PERIOD] < 0:
            assert abs(sp[L.SP_RECOVERY] - rec) <= tol and abs(sp[L.SP_LOSS] - loss) <= tol, p
        else:
            assert sp[L.SP_RECOVERY] >= rec - tol and sp[L.SP_LOSS] >= loss - tol, p
        # every receivable that defaulted was recovered or lost by the end (or the call)
        assert abs(sp[L.SP_DEFAULT] - sp[L.SP_RECOVERY] - sp[L.SP_LOSS]) <= tol, (p, sp)
        assert abs(sp[L.SP_SUPPORT_PAID] - sup[p, :, short, L.LS_PAID].sum()) <= tol, p
        status = per[p, :n_act, L.LP_STATUS]
        assert sp[L.SP_MAX_STATUS] == status.max(), p
        moved = np.nonzero(status > 0)[0]
        assert sp[L.SP_FIRST_TRIGGER_PERIOD] == (moved[0] if len(moved) else -1), p
        # support: paid <= requested, cumulative within the cap, nothing after a provider default
        s_paid = sup[p, :, :, L.LS_PAID]
        assert np.all(s_paid <= sup[p, :, :, L.LS_REQUESTED] + tol), p
        assert np.allclose(
            np.cumsum(s_paid, axis=0)[:n_act], sup[p, :n_act, :, L.LS_CUMULATIVE], atol=tol
        )
        assert np.all(sup[p, :, :, L.LS_CUMULATIVE] <= caps + tol), p
        assert np.all(s_paid[sup[p, :, :, L.LS_PROVIDER_DEFAULTED] > 0] == 0.0), p
        # fees: paid <= due, unpaid is the rest
        f = fee[p, :n_act]
        assert np.all(f[:, :, L.LF_PAID] <= f[:, :, L.LF_DUE] + tol), p
        assert np.allclose(f[:, :, L.LF_UNPAID], f[:, :, L.LF_DUE] - f[:, :, L.LF_PAID], atol=tol)


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------


@SETTINGS
@given(cases())
def test_cash_is_conserved(case: Case) -> None:
    """Property 1 (and the per-account identity) on arbitrary generated deals."""
    check_cash_conservation(case, case.run())


@SETTINGS
@given(cases())
def test_nothing_goes_negative(case: Case) -> None:
    """Property 2."""
    check_no_negatives(case, case.run())


@SETTINGS
@given(cases())
def test_tranche_bookkeeping(case: Case) -> None:
    """Property 3, and the per-path summaries agree with the ledgers."""
    res = case.run()
    check_tranche_bookkeeping(case, res)
    check_summaries(case, res)


@SETTINGS
@given(cases())
def test_summary_interest_shortfall_is_the_shortfall_at_the_end(case: Case) -> None:
    """Property 3 (summaries); it found the bug kept as
    test_summary_interest_shortfall_after_the_notes_are_repaid."""
    check_summary_interest_shortfall(case, case.run())


@SETTINGS
@given(cases(sequential=True, triggers=False))
def test_sequential_principal_order(case: Case) -> None:
    """Property 4: sequential order of principal.

    What the kernel guarantees, read off ``waterfall_path_py``: in a sequential
    ``pay_principal`` step a tranche is paid only once every tranche listed before it in the
    step is at zero (it pays ``owed = balance`` exactly, so the senior lands on 0.0). With
    ``amount = principal_due`` the step budget is ``notes - pool_end`` over *all* notes, so a
    later step for juniors gets nothing while a senior paid in an earlier step still has a
    balance (its step was cut by the budget, leaving ``notes - pool_end = 0``, or by cash,
    leaving nothing). Principal reserve draws pay the start-of-period sequential allocation of
    ``notes - pool_end`` in the listed order; with a senior-first prefix of the tranches that
    keeps the order too. In the final period (or the call period) everything is due and the
    waterfall still pays senior first; the one source that can break the order there is a
    shortfall undertaking covering ``principal_at_maturity`` of a set of tranches that is not a
    senior-first prefix (it pays a junior's whole balance while a senior is left unpaid and
    then written off), so the check skips the final period only in that case.

    "Balance after the period's payments" is ``balance_end + write_down`` (before
    write-offs; a write-off only reduces balances, most junior first).
    """
    res = case.run()
    tol = _tol(case)
    names = [t["name"] for t in case.deal["tranches"]]
    exception = any(
        x["kind"] != "loss_compensation"
        and x["covers"] != "interest"
        and x["tranches"] != names[: len(x["tranches"])]
        for x in case.deal["support"]
    )
    tr = res.led_tr
    for p in range(tr.shape[0]):
        n_act = _active(res, p)
        for t in range(n_act):
            if t == n_act - 1 and exception:
                continue
            after = tr[p, t, :, L.LT_BALANCE_END] + tr[p, t, :, L.LT_WRITE_DOWN]
            paid = tr[p, t, :, L.LT_PRINCIPAL_PAID]
            for j in range(1, len(names)):
                if paid[j] > tol:
                    assert np.all(after[:j] <= tol), (p, t, j, paid, after)


@SETTINGS
@given(cases(safe=True))
def test_no_defaults_pays_every_tranche_in_full(case: Case) -> None:
    """Property 5. The generated deal has regular 30/360 periods (tranche accrual per period
    == the obligors' rate / periods_per_year), notes <= pool, every fixed coupon, floating
    spread, floor and cap <= min obligor rate - sum of fee rates, fees on pool or notes with no
    fixed part, no triggers or clean-up call, reserve funding and write-offs after principal.
    Then each period's principal due (notes - pool_end) is at most the scheduled principal
    collected, interest and fees at most the interest collected, so notes stay <= pool and the
    final period repays everything."""
    res = case.run()
    tol = _tol(case)
    orig = res.deal.structure.tranche_f[:, L.TF_BALANCE]
    s = res.sum_tr[0]
    assert np.all(s[:, L.ST_LOSS] <= tol), s[:, L.ST_LOSS]
    assert np.allclose(s[:, L.ST_PRINCIPAL_PAID], orig, rtol=0, atol=tol)
    assert np.all(s[:, L.ST_INTEREST_SHORTFALL] <= tol), s[:, L.ST_INTEREST_SHORTFALL]
    # stronger: no interest shortfall in any period, and notes never above the pool
    assert np.all(res.led_tr[0, :, :, L.LT_INTEREST_SHORTFALL] <= tol)
    notes_end = res.led_tr[0, :, :, L.LT_BALANCE_END].sum(axis=1)
    assert np.all(notes_end <= res.led_per[0, :, L.LP_POOL_END] + tol)
    assert res.sum_pool[0, L.SP_LOSS] == 0.0
    check_cash_conservation(case, res)


@SETTINGS
@given(cases(zero_defaults=True))
def test_no_defaults_no_pool_loss(case: Case) -> None:
    """Property 7: no defaults (CPR, recovery overrides, support defaults allowed)."""
    res = case.run()
    assert np.all(res.sum_pool[:, L.SP_DEFAULT] == 0.0)
    assert np.all(res.sum_pool[:, L.SP_LOSS] == 0.0)
    assert np.all(res.sum_pool[:, L.SP_RECOVERY] == 0.0)
    assert np.all(res.led_per[:, :, L.LP_DEFAULT] == 0.0)
    assert np.all(res.led_per[:, :, L.LP_LOSS] == 0.0)
    assert np.all(res.led_per[:, :, L.LP_COMPENSATION] == 0.0)


@settings(SETTINGS, max_examples=max(40, SETTINGS.max_examples // 4))
@given(cases(max_scenarios=4))
def test_compiled_kernel_matches_python_twin(case: Case) -> None:
    """Property 6: identical ledgers from the numba kernel and its plain-Python twin (several
    paths per call), on one compiled deal. The twin calls the waterfall's phase and opcode
    helpers; the compiled kernel has them inlined at the source level: this checks the
    inlining on every generated structure."""
    cd, scs = case.compile()
    py = run_waterfall(cd, deterministic_flows(cd, scs), jit=False)
    nb = run_waterfall(cd, deterministic_flows(cd, scs), jit=True)
    for name in ("led_tr", "led_fee", "led_acc", "led_sup", "led_per", "sum_tr", "sum_pool"):
        a, b = getattr(py, name), getattr(nb, name)
        assert a.shape == b.shape, name
        assert np.array_equal(a, b, equal_nan=True), (
            name,
            np.argwhere(~np.isclose(a, b, equal_nan=True))[:5],
        )


def _restarted_py(t0, flows, sdp, rate, deal, led, scratch):
    """A path restarted at t0 from the checkpoint, as the block kernel restarts one."""
    _restart_path_py(t0, led, scratch)
    waterfall_path_py(flows, sdp, rate, deal, led, scratch, t0, flows.shape[1] + 1)


def _full_py(flows, sdp, rate, deal, led, scratch):
    """The path from period 0 in one call."""
    waterfall_path_py(flows, sdp, rate, deal, led, scratch, 0, flows.shape[1] + 1)


# the block kernel's run of its memoised path and these two, compiled (called from Python).
# A cached caller holds its own copy of the kernels it calls, and numba checks only this
# file's date: so their cache names carry a hash of the kernels' sources, and a kernel edit
# compiles them afresh (uncached, their compile was 4 s of each test run)
_KERNELS_SOURCE = source_digest()[:12]
# entries of other kernels, or of this file's earlier lines, are never read again: deleted
# wherever numba keeps them
_CURRENT = tuple(
    f"{Path(__file__).stem}.{f.__qualname__}__jit__k{_KERNELS_SOURCE}-{f.__code__.co_firstlineno}."
    for f in (_restarted_py, _full_py)
)
for _folder, _ in _cache_dirs(Path(__file__).resolve().parent):
    for _stale in _folder.glob(f"{Path(__file__).stem}.*__jit__k*"):
        if not _stale.name.startswith(_CURRENT):
            _stale.unlink(missing_ok=True)
_COMPILED = {"waterfall_path_py": waterfall_path, "_checkpoint_py": _checkpoint,
             "_restart_path_py": _restart_path}  # fmt: skip
_checkpointed_nb, _restarted_nb, _full_nb = (
    jit_twin(f, _COMPILED, cache=True, no_cpython_wrapper=False, suffix=f"__k{_KERNELS_SOURCE}")
    for f in (_checkpointed_path_py, _restarted_py, _full_py)
)


def _ledgers(cd: CompiledDeal, fill: float = 0.0) -> Ledgers:
    n_t, n_j = cd.n_periods, len(cd.tranche_names)
    n_f, n_a, n_s = len(cd.fee_names), len(cd.account_names), len(cd.support_names)
    shapes = ((n_t, n_j, L.N_LT), (n_t, n_f, L.N_LF), (n_t, n_a, L.N_LA), (n_t, n_s, L.N_LS),
              (n_t, L.N_LP), (n_j, L.N_ST), (L.N_SP,))  # fmt: skip
    return Ledgers(*(np.full(shape, fill) for shape in shapes))


@settings(SETTINGS, max_examples=max(30, SETTINGS.max_examples // 3))
@given(cases(max_scenarios=3), st.data())
def test_a_prefix_restart_equals_the_run_from_the_first_period(case: Case, data) -> None:
    """Property 8, the prefix restart of the Monte Carlo block kernel: the checkpointed path
    run a period at a time has bitwise the ledgers of its run in one call; a path whose
    inputs (pool flows, base rate, which providers have defaulted) are those of that path
    before period k, restarted at any t0 <= k from its checkpoint with its ledger rows
    before t0, has bitwise the ledgers and summaries of its run from period 0, in both
    twins. Everything else the restart starts from holds NaN. The second path is the first
    scenario's up to k and the last one's from k on (a provider defaulting in the last
    scenario before k defaults at k)."""
    cd, scs = case.compile()
    fl = deterministic_flows(cd, scs)
    n_t, n_s = cd.n_periods, len(cd.support_names)
    k = data.draw(st.integers(0, n_t), label="k")
    base = (fl.flows[0], fl.support_default_period[0], fl.base_rate[0])
    flows, sdp, rate = (a.copy() for a in base)
    flows[:, k:] = fl.flows[-1][:, k:]
    rate[k:] = fl.base_rate[-1][k:]
    for s in range(n_s):
        if base[1][s] >= k:
            sdp[s] = max(fl.support_default_period[-1][s], k)
    shape = (len(cd.tranche_names), len(cd.fee_names), len(cd.account_names), n_s,
             len(cd.trigger_names), n_t)  # fmt: skip

    def full_of(inputs, full_run):  # the path's ledgers run from period 0 in one call
        led = _ledgers(cd)
        full_run(*inputs, cd.kernel, led, waterfall_scratch_py(*shape))
        return led

    twins = (
        (_checkpointed_path_py, _restarted_py, _full_py),
        (_checkpointed_nb, _restarted_nb, _full_nb),
    )
    for checkpointed, restarted, full_run in twins:
        scratch = waterfall_scratch_py(*shape, checkpoints=True)
        base_led = _ledgers(cd)
        checkpointed(*base, cd.kernel, base_led, scratch)
        for name, a, b in zip(Ledgers._fields, full_of(base, full_run), base_led, strict=True):
            assert np.array_equal(a.view(np.int64), b.view(np.int64)), (checkpointed, name)
        full = full_of((flows, sdp, rate), full_run)
        for t0 in range(1, k + 1):
            led = _ledgers(cd, np.nan)
            for a, b in zip(led[:5], base_led[:5], strict=True):
                a[:t0] = b[:t0]
            for a in scratch[:2]:
                a[...] = np.nan
            restarted(t0, flows, sdp, rate, cd.kernel, led, scratch)
            for name, a, b in zip(Ledgers._fields, full, led, strict=True):
                assert np.array_equal(a.view(np.int64), b.view(np.int64)), (restarted, t0, name)


def _calling(f, waterfall):
    """``f`` with ``waterfall`` for the ``waterfall_path_py`` it calls."""
    return types.FunctionType(f.__code__, {**f.__globals__, "waterfall_path_py": waterfall},
                              f.__name__)  # fmt: skip


@settings(SETTINGS, max_examples=max(20, SETTINGS.max_examples // 4))  # 75 in CI's profile
@given(cases(max_scenarios=3), st.data())
def test_the_specialised_waterfall_is_the_interpreter(case: Case, data) -> None:
    """Property 9, the block kernel specialised to a deal's structure
    (:mod:`abs_engine.kernels.specialise`: integer tables and shapes folded, each status's
    steps unrolled): its waterfall, run as plain Python (the source numba compiles), leaves
    bitwise the interpreter's ledgers, summaries, scratch and checkpoints, on every path
    from period 0, and on a path checkpointed period by period and restarted at a drawn
    period, as the block kernel runs them."""
    cd, scs = case.compile()
    fl = deterministic_flows(cd, scs)
    n_t, n_s = cd.n_periods, len(cd.support_names)
    special = specialised_waterfall_py(cd.kernel, n_t)
    assert special.step_loops_unrolled == 1
    shape = (len(cd.tranche_names), len(cd.fee_names), len(cd.account_names), n_s,
             len(cd.trigger_names), n_t)  # fmt: skip

    def same(a_led, a_scr, b_led, b_scr, what):
        for name, a, b in zip((*Ledgers._fields, *a_scr._fields), (*a_led, *a_scr),
                              (*b_led, *b_scr), strict=True):  # fmt: skip
            assert np.array_equal(a.view(np.int64), b.view(np.int64)), (what, name)

    for p in range(fl.flows.shape[0]):
        inputs = (fl.flows[p], fl.support_default_period[p], fl.base_rate[p])
        runs = []
        for waterfall in (waterfall_path_py, special):
            led, scratch = _ledgers(cd), waterfall_scratch_py(*shape, checkpoints=True)
            waterfall(*inputs, cd.kernel, led, scratch, 0, n_t + 1)
            runs.append((led, scratch))
        same(*runs[0], *runs[1], ("path", p))
    t0 = data.draw(st.integers(1, n_t), label="t0")
    base = (fl.flows[0], fl.support_default_period[0], fl.base_rate[0])
    last = (fl.flows[-1], fl.support_default_period[-1], fl.base_rate[-1])
    runs = []
    for waterfall in (waterfall_path_py, special):
        led, scratch = _ledgers(cd), waterfall_scratch_py(*shape, checkpoints=True)
        _calling(_checkpointed_path_py, waterfall)(*base, cd.kernel, led, scratch)
        _calling(_restarted_py, waterfall)(t0, *last, cd.kernel, led, scratch)
        runs.append((led, scratch))
    same(*runs[0], *runs[1], ("restarted", t0))


@pytest.mark.slow
@settings(SETTINGS, max_examples=4, deadline=None)
@given(cases(max_scenarios=1))
def test_the_compiled_specialised_kernel_runs_as_the_generic_one(case: Case) -> None:
    """Property 9 compiled: on generated deals, a Monte Carlo run with the block kernel
    specialised to the deal's structure (``ABS_ENGINE_SPECIALISE=1``: numba must compile
    it) gives bitwise the generic kernel's per-path metrics and summaries. Slow: each
    structure is a compile of its own (about 10 s)."""
    cd, _ = case.compile()
    sc = mc(0.3, recovery=0.4)
    runs = []
    for flag in ("0", "1"):
        with mock.patch.dict(os.environ, {"ABS_ENGINE_SPECIALISE": flag}):
            runs.append(ae.simulate(cd, sc, n_paths=1_500, seed=3, keep_paths=True,
                                    progress=False))  # fmt: skip
    assert_same_run(*runs)


# ---------------------------------------------------------------------------------------------
# minimal counterexamples found by the properties above (kept as plain examples)
# ---------------------------------------------------------------------------------------------

_ANNUAL_2 = {
    "closing": "2025-01-01",
    "first_payment": "2026-01-01",
    "frequency": "annual",
    "legal_final": "2027-01-01",
    "business_day": "none",
}


def _deal(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "schema_version": 1,
        "name": "counterexample",
        "dates": _ANNUAL_2,
        "pool": {
            "obligors": [
                {
                    "id": "O1",
                    "balance": 100.0,
                    "rate": 0.0,
                    "amortization": {"kind": "bullet", "n_periods": 1},
                    "pd": {"kind": "flat", "annual": 0.02},
                }
            ]
        },
        "tranches": [{"name": "A", "balance": 100.0, "coupon": {"kind": "fixed", "rate": 0.05}}],
        "waterfalls": {
            "normal": [
                {"kind": "pay_principal", "tranches": ["A"], "amount": "available"},
                {"kind": "pay_interest", "tranches": ["A"]},
            ]
        },
    }
    d.update(over)
    return d


def test_level_pay_with_a_tiny_positive_rate() -> None:
    """Regression: the level-pay instalment ``bal * r / (1 - (1 + r) ** -n)`` was guarded only
    by ``r == 0``; for 0 < r/periods_per_year below ~1.1e-16, ``(1 + r) ** -n == 1.0`` and
    compile_deal raised ZeroDivisionError (found by hypothesis with rate 1e-66)."""
    d = _deal()
    d["dates"] = {**_ANNUAL_2, "frequency": "monthly", "legal_final": "2026-02-01"}
    ob = d["pool"]["obligors"][0]
    ob["rate"] = 1e-17
    ob["amortization"] = {"kind": "level_pay", "n_periods": 1}
    res = Case(d, [{}], 2).run()
    assert res.sum_tr[0, 0, L.ST_PRINCIPAL_PAID] == 100.0


def test_summary_interest_shortfall_after_the_notes_are_repaid() -> None:
    """Regression: ``ST_INTEREST_SHORTFALL`` is documented as "interest unpaid at the end", but
    the kernel took it from the last period in which the pool or the tranche's balance was
    outstanding at the start. A shortfall carried into later periods, after the balance is
    gone, can still change there:

    - grow, with ``interest_on_shortfall`` (interest accrues on the carried shortfall):
      ledger shortfall [5.0, 5.25], summary 5.0 (understated);
    - be paid, e.g. from a reserve released in the final period: ledger [5.0, 0.0],
      summary 5.0 (overstated).

    The fix: the shortfall of the last period that ran (the call period or T-1)."""
    grows = _deal()
    grows["tranches"][0]["interest_on_shortfall"] = True
    paid = _deal(
        accounts=[
            {"name": "R", "target": {"kind": "fixed", "amount": 10.0}, "initial_balance": 10.0}
        ]
    )
    for deal, at_end in ((grows, 5.25), (paid, 0.0)):
        res = Case(deal, [{}], 2).run()
        assert abs(res.led_tr[0, -1, 0, L.LT_INTEREST_SHORTFALL] - at_end) < 1e-9
        assert abs(res.sum_tr[0, 0, L.ST_INTEREST_SHORTFALL] - at_end) < 1e-9, (
            res.sum_tr[0, 0, L.ST_INTEREST_SHORTFALL],
            res.led_tr[0, :, 0, L.LT_INTEREST_SHORTFALL],
        )
