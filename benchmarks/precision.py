"""The ``precision`` section: the cost of equal precision for a senior tranche's expected loss,
crude Monte Carlo against each importance-sampling method, measured in one run.

Cost = seconds × variance of the estimate (a method twice as fast at the same standard error,
or as fast at 1/√2 of it, costs half). Cases on the bundled deal: senior A as issued (95M,
where the rare event is the support provider's default with pool losses) and A sized to about
AAA (38M, the junior taking the rest). Methods: crude; importance sampling with the factor
and provider shifts of the cross-entropy pilot ("shift"); with exponential twisting of the
conditional default probabilities too ("shift + twist"); and with the provider's default
integrated out by conditional Monte Carlo as well ("shift + twist + conditional", the
default). An importance run's time includes its pilot.

Crude sampling resolves the AAA-sized senior's EL only with ~10^9 paths, so its variance per
path is the in-run estimate of the importance-sampled runs (Σw·v² / P − mean², the crude
second moment estimated under the weights: see ``abs_engine.metrics.montecarlo``); its time
per path comes from a crude run of the same deal. Nothing is asserted.
"""

from __future__ import annotations

import time
from typing import Any

import abs_engine as ae
from abs_engine.compile.deal import compile_deal
from abs_engine.compile.model import compile_model
from abs_engine.compile.patch import with_tranche_terms
from abs_engine.importance import tuned_sampling

from . import progress as bars
from .scaling import warm

#: (case, balance of A) and paths per run, quick and full
CASES = (("senior_as_issued", 95_000_000.0), ("aaa_sized_senior", 38_000_000.0))
PATHS = {True: 50_000, False: 200_000}
SEED = 20250715


def n_measurements(quick: bool) -> int:
    """Timed runs: four methods for each case."""
    return 4 * len(CASES)


def _deal(balance: float) -> Any:
    deal = ae.load_deal()
    cd = compile_deal(deal)
    junior = cd.tranche_names[-1]
    total = deal.tranches[0].balance + deal.tranches[-1].balance
    return with_tranche_terms(cd, {"A": {"balance": balance}, junior: {"balance": total - balance}})


def _timed(run: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = run()
    return time.perf_counter() - t0, out


def _method(cd: Any, sc: Any, n: int, sampling: Any) -> dict:
    """One run: its seconds (the pilot included), A's EL ± SE, the cost (s × SE²), and the
    in-run crude variance per path of A's EL (importance runs only)."""

    def run() -> Any:
        s = sampling() if callable(sampling) else sampling
        return ae.simulate(cd, sc, n_paths=n, seed=SEED, sampling=s, progress=False)

    seconds, res = _timed(run)
    bars.measured()
    a = res.tranches.iloc[0]
    out = {
        "seconds": seconds,
        "paths": n,
        "expected_loss": float(a.expected_loss),
        "expected_loss_se": float(a.expected_loss_se),
        "cost": seconds * float(a.expected_loss_se) ** 2,
    }
    if res.sampling["method"] != "crude":
        vr = res.sampling["variance_reduction"]["A"]["expected_loss"]
        out["in_run_variance_reduction"] = vr
        out["crude_variance_per_path"] = vr * float(a.expected_loss_se) ** 2 * n
        out["effective_sample_size"] = res.sampling["effective_sample_size"]
    return out


def run(quick: bool, log: Any = print) -> dict:
    """Every case and method: their costs and the ratios crude / method."""
    sc = ae.load_scenario("huake_mc")
    n = PATHS[quick]
    out: dict = {"paths": n, "seed": SEED, "cases": {}}
    for s in ("crude", "importance"):  # compiled (or loaded from the cache) before any timing
        ae.simulate(n_paths=1_024, seed=SEED, sampling=s, progress=False)
    warm(ae.compile_deal(ae.load_deal()), sc, 1_024)  # the deal-specialised kernel too
    for name, balance in CASES:
        cd = _deal(balance)
        model = compile_model(cd, sc)
        log(f"  {name}: A = {balance:,.0f}")
        crude = _method(cd, sc, n, "crude")
        shift = _method(cd, sc, n, lambda cd=cd, m=model: tuned_sampling(cd, m, SEED, twist=False))
        twist = _method(
            cd, sc, n, lambda cd=cd, m=model: tuned_sampling(cd, m, SEED, provider_cmc=False)
        )
        full = _method(cd, sc, n, "importance")
        # crude cost from its time per path and the best in-run estimate of its variance
        var1 = full["crude_variance_per_path"]
        crude["crude_variance_per_path_in_run"] = var1
        crude_cost = crude["seconds"] / n * var1
        crude["cost_from_in_run_variance"] = crude_cost
        out["cases"][name] = {
            "balance_a": balance,
            "crude": crude,
            "shift": shift,
            "shift_and_twist": twist,
            "shift_twist_conditional": full,
            "cost_ratio": {
                m: crude_cost / r["cost"] if r["cost"] > 0 else None
                for m, r in (
                    ("shift", shift),
                    ("shift_and_twist", twist),
                    ("shift_twist_conditional", full),
                )
            },  # fmt: skip
        }
    return out
