"""What a call of the compiled waterfall costs by itself, one thread: nanoseconds a call of a
numba loop that calls it with ``t_start = t_stop = T`` (no period runs: the call, the loop's
state kept and the return) against the same loop without the call, for the generic
interpreter and the waterfall specialised to the bundled deal's structure.

    python -m benchmarks.call_cost

The generic block kernel calls the generic waterfall once a computed path (bound, through a
pointer, with numba's calling convention: every array of the bundles passed flattened); the
specialised kernel links its own. Best of seven loops of 2,000,000 calls (process CPU time).
"""

from __future__ import annotations

import sys
import time

import numba

import abs_engine as ae
from abs_engine import simulation as S
from abs_engine.compile.model import compile_model
from abs_engine.kernels import montecarlo as mc
from abs_engine.kernels.specialise import specialised_kernel

CALLS = 2_000_000


def _loop(waterfall, n_t: int, call: bool):
    """A compiled loop of ``n`` calls of ``waterfall`` that run no period (or none)."""

    @numba.njit
    def loop(n, model, deal, coll, led, wf):
        s = 0
        for p in range(n):
            if call:
                s += waterfall(coll.flows, coll.support_default_period, model.base_rate, deal,
                               led, wf, n_t, n_t)  # fmt: skip
            else:
                s += p & 1
        return s

    return loop


def _best_ns(loop, *args) -> float:
    loop(10, *args)
    best = float("inf")
    for _ in range(7):
        t0 = time.process_time()
        loop(CALLS, *args)
        best = min(best, time.process_time() - t0)
    return best / CALLS * 1e9


def main(argv: list[str]) -> int:
    cd = ae.compile_deal(ae.load_deal())
    model, deal = compile_model(cd, ae.load_scenario("huake_mc")).kernel, cd.kernel
    coll, led, wf, _ = mc.block_scratch(model, deal, S.OutputShape.of(cd).sums(1))
    args = (model, deal, coll, led, wf)
    n_t = cd.n_periods
    specialised = specialised_kernel(deal, n_t)[1][0]
    for label, waterfall in (("generic", mc.waterfall_path), ("specialised", specialised)):
        empty = _best_ns(_loop(waterfall, n_t, False), *args)
        called = _best_ns(_loop(waterfall, n_t, True), *args)
        print(f"{label:<12} {called:7.1f} ns a call ({empty:.1f} ns the loop without it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
