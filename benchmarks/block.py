"""The Monte Carlo block kernel alone, one thread: microseconds a path on the bundled deal,
as shipped (no-default memo on) and every path computed (memo off); with ``--batches``, whole
runs of 1,000,000 paths (all threads) with the default batch sizes against 8 blocks a batch,
in interleaved rounds.

    python -m benchmarks.block                     # this checkout
    python -m benchmarks.block --batches
    cd /tmp/wt && PYTHONPATH=/tmp/wt python /work/main/benchmarks/block.py   # another tree

The ninth session's before/after rows (benchmarks/HISTORY.md) came from this script (kept here from
that session's one-off copies): alternate two trees a few times, since this VM's speed moves
by tens of percent within minutes. Each block figure is the best of seven loops over 20 blocks
of 1,024 paths (process CPU time).
"""

from __future__ import annotations

import statistics
import sys
import time

import abs_engine as ae
from abs_engine import simulation as S
from abs_engine.compile.model import compile_model
from abs_engine.kernels import montecarlo as mc
from benchmarks.scaling import memo_off

BLOCKS = 20


def block_us(cd: ae.CompiledDeal, sc, repeats: int = 7, kernel=None, callees=()) -> float:
    """µs a path of the compiled block kernel (``kernel`` calling ``callees``, default the
    generic one), one thread, best of ``repeats``; readied as a run readies it (the driver's
    ``_compiled_or_generic``), where the tree has that."""
    if kernel is None:
        kernel, callees = mc.run_block, mc.BLOCK_CALLEES
    model, deal = compile_model(cd, sc).kernel, cd.kernel
    n = BLOCKS * S.BLOCK_SIZE
    spec = S.frozen(S.RunSpec(S.BLOCK_SIZE, n, 1, *S.hist_ranges(cd), 0))
    sums = S.OutputShape.of(cd).sums(BLOCKS)
    scratch = mc.block_scratch(model, deal, sums)
    ready = getattr(S, "_compiled_or_generic", None)  # another checkout's tree may have none
    if ready is not None:
        call = (0, 0, spec, model, deal, sums, *scratch)
        kernel = ready(kernel, callees, call, mc.block_callee_args(spec, model, deal, sums,
                                                                   *scratch))  # fmt: skip

    def run() -> None:
        for b in range(BLOCKS):
            kernel(0, b, spec, model, deal, sums, *scratch)

    run()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        run()
        best = min(best, time.process_time() - t0)
    return best / n * 1e6


def batches(cd: ae.CompiledDeal, sc, rounds: int = 6, paths: int = 1_000_000) -> dict:
    """Paths a second of whole runs with the default batches and with 8 blocks a batch,
    interleaved: medians, and the median of the rounds' ratios."""
    ae.simulate(cd, sc, n_paths=20_000, seed=1, progress=False)
    rate: dict = {None: [], 8: []}
    for _ in range(rounds):
        for bb in rate:
            t0 = time.perf_counter()
            ae.simulate(cd, sc, n_paths=paths, seed=1, progress=False, batch_blocks=bb)
            rate[bb].append(paths / (time.perf_counter() - t0))
    ratio = statistics.median(a / b for a, b in zip(rate[None], rate[8], strict=True))
    return {"default": statistics.median(rate[None]), "8": statistics.median(rate[8]),
            "ratio": ratio}  # fmt: skip


def main(argv: list[str]) -> int:
    cd, sc = ae.compile_deal(ae.load_deal()), ae.load_scenario("huake_mc")
    try:  # a tree from before the specialised kernel (another checkout's) has none
        from abs_engine.kernels.specialise import specialised_kernel

        specialised, spec_callees = specialised_kernel(cd.kernel, cd.n_periods)
    except ImportError:
        specialised, spec_callees = None, ()
    for label, scen in (("as shipped", sc), ("memo off", memo_off(sc))):
        if "--batches" in argv:
            r = batches(cd, scen)
            print(f"{label}: default batches {r['default']:,.0f} paths/s, 8 blocks a batch "
                  f"{r['8']:,.0f}; median ratio {r['ratio']:.3f}", flush=True)  # fmt: skip
        else:
            generic = block_us(cd, scen)
            line = f"{label}: block kernel {generic:.3f} µs a path"
            if specialised is not None:
                spec = block_us(cd, scen, kernel=specialised, callees=spec_callees)
                line += f"; specialised to the deal {spec:.3f} ({spec / generic:.3f}x)"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
