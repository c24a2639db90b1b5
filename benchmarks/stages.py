"""Where a computed path's time goes, one thread: microseconds a path of each stage of the
Monte Carlo block kernel on the bundled deal with every path computed (memo off), measured as
differences of cumulative runs over the same paths: the draws alone, then with the survivors'
flows, then with the waterfall (deal-specialised, and the generic interpreter), the per-path
metrics (and the tranche yields among them), the cash-flow items, the block sums and the
histograms.

    python -m benchmarks.stages

Each stage runs on real paths (its inputs are the earlier stages' outputs), so a figure is
that stage's cost on the paths a run computes, not on a stand-in; the compiled functions are
those the block kernel calls (its own inlining aside: the draws and the restart helpers are
inlined into it at the source level; the draws' figure here includes their call with whole
bundles, argument passing that the block kernel does not pay). Best of seven loops over
20,480 paths (process CPU time); this VM's speed moves by tens of percent within minutes, so
read the stages of one run against each other.
"""

from __future__ import annotations

import sys
import time

import numba
import numpy as np

import abs_engine as ae
from abs_engine import simulation as S
from abs_engine.compile.model import compile_model
from abs_engine.kernels import collateral as C
from abs_engine.kernels import montecarlo as mc
from abs_engine.kernels.layout import LP_COVERAGE_RATIO
from abs_engine.kernels.specialise import specialised_kernel
from benchmarks.scaling import memo_off

PATHS = 20 * 1024
#: the cumulative runs: how many stages each runs, and the name of its last stage
STAGES = ("draws", "survivor flows", "waterfall", "metrics", "cash flows", "block sums",
          "histograms")  # fmt: skip


def _stage_loop(waterfall):
    """A compiled loop over paths that runs the first ``n_stages`` of :data:`STAGES`."""
    draws, survivors = C.collateral_draws, C.survivor_flows
    metrics_fn, cashflows, add_path, add_hist = (
        mc.path_metrics, mc.path_cashflows, mc._add_path, mc._add_histograms
    )  # fmt: skip

    @numba.njit
    def loop(n_stages, n, spec, model, deal, sums, coll, led, wf, buf):
        n_t = coll.flows.shape[1]
        n_obl = model.obligor_class.shape[0]
        defaults = 0.0
        for p in range(n):
            defaults += draws(spec.seed, p, model, coll)
            if n_stages > 1:
                survivors(model, coll)
            if n_stages > 2:
                waterfall(coll.flows, coll.support_default_period, model.base_rate, deal, led,
                          wf, 0, n_t + 1)  # fmt: skip
            if n_stages > 3:
                metrics_fn(led.tr, led.sum_tr, led.sum_pool, coll.stats, deal.tranche_f,
                           deal.tranche_accrual, deal.original_pool,
                           coll.support_default_period, buf.cash, buf.metrics)  # fmt: skip
            if n_stages > 4:
                cashflows(led.tr, led.per, led.sup, deal.support_i, buf.path_cf)
            if n_stages > 5:
                add_path(sums.m, sums.cf, sums.w_tot, 0, buf.metrics, buf.path_cf, 1.0, 1.0,
                         1.0, 1)  # fmt: skip
            if n_stages > 6:
                for t in range(n_t):
                    buf.coverage[t] = led.per[t, LP_COVERAGE_RATIO]
                add_hist(sums.hist_count, sums.hist_loss, sums.hist_tr, sums.hist_cov,
                         spec.hist_lo, spec.hist_hi, 0, coll.stats, buf.metrics, buf.coverage,
                         n_obl, deal.original_pool, 1.0)  # fmt: skip
        return defaults

    return loop


def _yield_loop():
    """A compiled loop of the tranche yields alone, over cash vectors [P, J, T] saved from
    real paths."""
    tranche_yield = mc.tranche_yield

    @numba.njit
    def loop(cash, accrual, balance, guess):
        s = 0.0
        for p in range(cash.shape[0]):
            for j in range(cash.shape[1]):
                if balance[j] > 0.0:
                    s += tranche_yield(cash[p, j], accrual[j], balance[j], guess[p, j])
        return s

    return loop


def _best(fn, *args, repeats: int = 7) -> float:
    """µs a path of ``fn(*args)`` over :data:`PATHS` paths, best of ``repeats``."""
    fn(*args)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        fn(*args)
        best = min(best, time.process_time() - t0)
    return best / PATHS * 1e6


def _yield_inputs(waterfall):
    """A compiled loop that saves the cash [P, J, T] and Newton starting points [P, J] the
    metrics hand the yield solver on the first P paths (the stages before it run first)."""
    draws, survivors = C.collateral_draws, C.survivor_flows
    lt_i, lt_p, lt_r, lt_c = (mc.LT_INTEREST_PAID, mc.LT_PRINCIPAL_PAID, mc.LT_RESIDUAL_PAID,
                              mc.LT_COUPON_RATE)  # fmt: skip

    @numba.njit
    def loop(cash, guess, spec, model, deal, coll, led, wf):
        n_t = coll.flows.shape[1]
        for p in range(cash.shape[0]):
            draws(spec.seed, p, model, coll)
            survivors(model, coll)
            waterfall(coll.flows, coll.support_default_period, model.base_rate, deal, led, wf,
                      0, n_t + 1)  # fmt: skip
            for j in range(cash.shape[1]):
                rate = 0.0
                for t in range(n_t):
                    cash[p, j, t] = led.tr[t, j, lt_i] + led.tr[t, j, lt_p] + led.tr[t, j, lt_r]
                    rate += led.tr[t, j, lt_c]
                guess[p, j] = rate / n_t
        return 0

    return loop


def main(argv: list[str]) -> int:
    cd = ae.compile_deal(ae.load_deal())
    sc = memo_off(ae.load_scenario("huake_mc"))
    model, deal = compile_model(cd, sc).kernel, cd.kernel
    spec = S.frozen(S.RunSpec(S.BLOCK_SIZE, PATHS, 1, *S.hist_ranges(cd), 0))
    sums = S.OutputShape.of(cd).sums(1)
    scratch = mc.block_scratch(model, deal, sums)
    specialised = specialised_kernel(deal, cd.n_periods)[1][0]
    rows = {}
    for label, waterfall in (("specialised", specialised), ("generic", mc.waterfall_path)):
        loop = _stage_loop(waterfall)
        cum = [_best(loop, k, PATHS, spec, model, deal, sums, *scratch)
               for k in range(1, len(STAGES) + 1)]  # fmt: skip
        rows[label] = [cum[0]] + [b - a for a, b in zip(cum, cum[1:], strict=False)] + [cum[-1]]
    defaults = loop(1, PATHS, spec, model, deal, sums, *scratch) / PATHS  # the draws alone
    n_j = deal.tranche_f.shape[0]
    cash, guess = np.zeros((PATHS, n_j, cd.n_periods)), np.zeros((PATHS, n_j))
    coll, led, wf, _ = scratch
    _yield_inputs(specialised)(cash, guess, spec, model, deal, coll, led, wf)
    args = (cash, deal.tranche_accrual, deal.tranche_f[:, mc.TF_BALANCE].copy(), guess)
    yields = _best(_yield_loop(), *args)
    print(
        f"bundled deal, every path computed, one thread, µs a path ({defaults:.3f} "
        f"obligors drawn to default a path):"
    )
    print(f"{'stage':<16}{'specialised':>13}{'generic':>10}")
    for k, name in enumerate((*STAGES, "total")):
        print(f"{name:<16}{rows['specialised'][k]:>13.3f}{rows['generic'][k]:>10.3f}")
    print(f"{'  of metrics: tranche yields':<29}{yields:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
