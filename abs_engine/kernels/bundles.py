"""Named bundles of kernel arguments: ``collections.namedtuple`` s of arrays and scalars.

A kernel takes a few bundles instead of 30-70 positional arrays, so an argument is found by its
name and two same-typed arrays cannot be swapped silently. Namedtuples type in numba (a
heterogeneous tuple whose fields are read by name), are cached with ``cache=True`` and work
unchanged in the plain-Python twins; jitclass would not cache and ``typing.NamedTuple`` is
not supported in nopython mode.

One numba pitfall (0.68), should a kernel use ``prange`` again (none does: threads are
started by :func:`abs_engine.simulation.run_range`): in the body of a ``prange`` loop, a write
through a tuple field (``sums.m[b, SUM_WV, k] += v``) is lost; writes inside a function called
from the loop are kept.

Owners: :class:`abs_engine.compile.deal.CompiledDeal` builds its :class:`DealArrays` once
(``CompiledDeal.kernel``), the compiled Monte Carlo model its :class:`CollateralModel`
(``MonteCarloModel.kernel``). Both bundles hold read-only arrays and Python scalars of one type
per field (``float`` or ``int``), so every deal compiles to the same numba signature.

Axes: P paths, T periods, J tranches, F fees, A accounts, S supports, G triggers, N obligors,
C PD classes, K opcode rows, R tranche groups, M metrics, B blocks in a kernel call.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

__all__ = [
    "BLOCK_SUMS_HISTOGRAMS",
    "BlockSums",
    "CollateralModel",
    "CollateralScratch",
    "DealArrays",
    "Ledgers",
    "PathBuffers",
    "RunSpec",
    "WaterfallScratch",
    "frozen",
]

#: The deal's static waterfall inputs (read-only arrays; column meanings in ``layout``).
#:
#: original_pool : float           pool balance at closing (yuan)
#: deal_accrual : float64[T]       accrual fractions under the deal's day count (years)
#: years : float64[T]              ACT/365F years from closing to each payment date (WAL)
#: tranche_f, tranche_i : float64[J, N_TF], int64[J, N_TI]   most senior first
#: tranche_accrual : float64[J, T] accrual fraction per tranche (its day count, years)
#: tranche_target : float64[J, T]  target balances of ``target_balance`` tranches (yuan)
#: fee_f, fee_i : float64[F, N_FF], int64[F, N_FI]
#: account_f, account_i : float64[A, N_AF], int64[A, N_AI]
#: support_f, support_i : float64[S, N_SF], int64[S, N_SI]
#: trigger_f, trigger_i : float64[G, N_GF], int64[G, N_GI]
#: ops : int64[N_STATUS, K, N_OPC]  opcode table per status (``OP_*``)
#: n_steps : int64[N_STATUS]        rows of ``ops`` used per status (0: no such waterfall)
#: groups, group_len : int64[R, J], int64[R]   tranche index lists used by steps and triggers
#: cr_tranche : int                 tranche whose coverage ratio is the deal's headline ratio
#: cr_include_fees : int            1: coverage-ratio obligations include fees
#: call_factor : float              clean-up call pool factor (< 0: no call)
#: call_price : float               call price, share of the performing balance
DealArrays = namedtuple(
    "DealArrays",
    [
        "original_pool",
        "deal_accrual",
        "years",
        "tranche_f",
        "tranche_i",
        "tranche_accrual",
        "tranche_target",
        "fee_f",
        "fee_i",
        "account_f",
        "account_i",
        "support_f",
        "support_i",
        "trigger_f",
        "trigger_i",
        "ops",
        "n_steps",
        "groups",
        "group_len",
        "cr_tranche",
        "cr_include_fees",
        "call_factor",
        "call_price",
    ],
)

#: The collateral model of a Monte Carlo scenario (read-only arrays): meanings and shapes in
#: :class:`abs_engine.compile.model.MonteCarloModel`. ``memo`` is 1 when the no-default path
#: (no obligor or provider default) has the same pool flows every time — deterministic
#: prepayment — so the driver runs it once per block and counts it (an explicit flag, not a
#: mode read off ``prepay_vol``). The obligors' schedules are a table of distinct rows:
#: ``sched`` float64[K, T, N_SC] (``SC_*`` of :mod:`abs_engine.kernels.layout`: interest,
#: principal, balance after principal, balance at the start) and ``obligor_sched`` int64[N],
#: each obligor's row (see :func:`abs_engine.compile.pool.schedule_table`).
#: ``is_factor_shift`` float64[F], ``is_provider_shift`` float64[S] and ``is_mix_scale``
#: (float) are the importance sampling's shifts of the factors' and the providers' normals
#: and scale of the Student-t mixing variable (zeros and 1: crude sampling; see
#: :mod:`abs_engine.compile.sampling`); ``is_twist_weight`` float64[N] and ``is_twist_level``
#: (float; 0: no twisting) the exponential twisting of the obligors' conditional default
#: probabilities; ``is_cmc_provider`` (int) 1: the first support provider's default
#: integrated out by conditional Monte Carlo (the driver runs the waterfall with and without
#: it and mixes by its conditional probability).
CollateralModel = namedtuple(
    "CollateralModel",
    [
        "obligor_class",
        "class_threshold",
        "class_sqrt_rho",
        "class_sqrt_1mrho",
        "class_factor",
        "class_pd_bound",
        "class_pd_band",
        "chol",
        "copula",
        "nu",
        "provider_threshold",
        "provider_sqrt_rho",
        "provider_factor",
        "smm",
        "prepay_vol",
        "recovery_kind",
        "recovery_rate",
        "ip_value",
        "obligor_factor",
        "haircut",
        "disposal_cost",
        "ip_vol",
        "ip_loading",
        "lag_min",
        "lag_max",
        "obligor_sched",
        "sched",
        "agg_interest",
        "agg_principal",
        "agg_balance",
        "base_rate",
        "memo",
        "is_factor_shift",
        "is_provider_shift",
        "is_mix_scale",
        "is_twist_weight",
        "is_twist_level",
        "is_cmc_provider",
    ],
)

#: One path's collateral outputs and scratch, allocated once per thread and reused:
#: flows float64[N_PF, T] (output), support_default_period int64[S] (output; T + 1 = never),
#: stats float64[N_CS] (output), z and g float64[F] (factors), cache float64[C, T] and stamp
#: int64[C, T] (conditional PDs computed on this path: valid where stamp == p + 1),
#: prepay_factor float64[T + 1], rem float64[T, N_SC] (the defaulters' schedule rows summed
#: from their default periods on, items ``layout.SC_*``), def_idx and def_t int64[N]
#: (defaulters; while drawing, the candidates under their PD bound and the obligors drawn to
#: default),
#: twist_p float64[N] (the obligors' conditional PDs on this path, under twisting),
#: bound_row int64[F] (each factor's row of ``CollateralModel.class_pd_bound`` and
#: ``class_pd_band`` on this path),
#: class_bound float64[C] (each class's PD bound on this path), row_state int64[C] (p + 1:
#: the class has had an obligor drawn to default on path p; -(p + 1): its whole row of
#: ``cache`` is computed and never decreases), flag uint8[N] (1 where the obligor's uniform
#: is under the largest class bound on this path: the first pass over the candidates).
CollateralScratch = namedtuple(
    "CollateralScratch",
    [
        "flows",
        "support_default_period",
        "stats",
        "z",
        "g",
        "cache",
        "stamp",
        "prepay_factor",
        "rem",
        "def_idx",
        "def_t",
        "twist_p",
        "bound_row",
        "class_bound",
        "row_state",
        "flag",
    ],
)

#: Ledgers of one path (written by the waterfall; yuan unless the item says otherwise):
#: tr float64[T, J, N_LT], fee float64[T, F, N_LF], acc float64[T, A, N_LA],
#: sup float64[T, S, N_LS], per float64[T, N_LP] (pool and deal items per period),
#: sum_tr float64[J, N_ST] and sum_pool float64[N_SP] (per-path summaries).
#: With a leading path axis P for :func:`abs_engine.kernels.waterfall.run_paths`.
Ledgers = namedtuple("Ledgers", ["tr", "fee", "acc", "sup", "per", "sum_tr", "sum_pool"])

#: The waterfall's per-path scratch: work float64[N_WORK, W] (running balances, see
#: ``waterfall.W_*``; W >= max(J, F, A, S, G)) and pending float64[S', T] (loss-compensation
#: claims not yet paid; S' = max(S, 1)); and checkpoints of a path's state at the start of
#: each period t and at its end (t = T), C = T + 1 of them (the block kernel saves t >= 1:
#: a path never restarts at 0), or C = 0 where no path saves any: ck_work
#: float64[C, N_WORK, W], ck_pending float64[C, S', T], ck_sum_tr float64[C, J, N_ST] and
#: ck_sum_pool float64[C, N_SP] (the summaries as they stand), ck_state float64[C, N_CK]
#: (the period loop's scalars, ``waterfall.CK_*``).
WaterfallScratch = namedtuple(
    "WaterfallScratch",
    ["work", "pending", "ck_work", "ck_pending", "ck_sum_tr", "ck_sum_pool", "ck_state"],
)

#: A Monte Carlo block's per-path buffers: cash float64[T] (a tranche's cash per period, for
#: its yield), metrics float64[M] (the path's metric vector), path_cf float64[T, N_CF] (its
#: expected-cash-flow items), coverage float64[T] (its headline coverage ratio per period;
#: NaN where undefined), and the same four for the memoised no-default path: base_metrics,
#: base_cf, base_cov, and base_stats float64[N_CS] (its collateral statistics); and that
#: path's inputs and ledgers, for the prefix restarts of the paths that share its first
#: periods: base_flows float64[N_PF, T], base_sdp int64[S] (its providers' default periods),
#: base_led a :class:`Ledgers` (its ledger arrays; its summaries are not read: a restart
#: takes them from the checkpoint).
PathBuffers = namedtuple(
    "PathBuffers",
    ["cash", "metrics", "path_cf", "coverage", "base_metrics", "base_cf", "base_cov",
     "base_stats", "base_flows", "base_sdp", "base_led"],
)  # fmt: skip

#: What a Monte Carlo kernel call runs: paths are numbered globally, ``block_size`` to a
#: block; n_paths and seed (ints); hist_lo, hist_hi float64[N_HT + 1] the ranges of the
#: per-tranche histograms and, last, of the coverage-ratio histogram; keep (1: write each
#: path's metric vector to ``BlockSums.path_metrics``).
RunSpec = namedtuple("RunSpec", ["block_size", "n_paths", "seed", "hist_lo", "hist_hi", "keep"])

#: Monte Carlo outputs per block b of a kernel call (b = 0 .. B - 1), added in block order by
#: the caller. m float64[B, N_SUM, M]: per metric, the sums ``SUM_*`` of
#: :mod:`abs_engine.kernels.layout` over the block's paths (Σw·v, Σw²·v², Σw, the count,
#: Σw·v², Σw²·v, Σw² of its finite values; w a path's likelihood-ratio weight, 1 under crude
#: sampling); cf float64[B, N_CF_SUM, T, N_CF]: the sums ``CF_*`` of the expected-cash-flow
#: items (Σw·v, Σw²·v², Σw²·v); w_tot float64[B, 2] (Σw, Σw² over the block's paths);
#: histograms of path weights (path counts under crude sampling), R rows: one a block
#: (R = B), or one only (R = 1: every block adds to it; the caller gives each kernel thread
#: its own where the weights are all 1, see ``simulation.run_range``): hist_count
#: float64[R, H1] (by default count), hist_loss float64[R, H2] (pool loss rate on [0, 1]),
#: hist_tr float64[R, J, N_HT, H3] (per-tranche metrics), hist_cov float64[R, T, H3]
#: (headline coverage ratio per period); path_metrics float64[paths, M] (the call's paths,
#: when ``RunSpec.keep``; else shape (0, M)).
BlockSums = namedtuple(
    "BlockSums",
    ["m", "cf", "w_tot", "hist_count", "hist_loss", "hist_tr", "hist_cov", "path_metrics"],
)
#: the histogram fields of :class:`BlockSums` (R rows each, as above)
BLOCK_SUMS_HISTOGRAMS = ("hist_count", "hist_loss", "hist_tr", "hist_cov")


def frozen(bundle):
    """``bundle`` with every array field C-contiguous and read-only and every scalar a Python
    ``float`` or ``int``: one numba signature for every deal, whatever built the arrays."""
    fields = {}
    for name, v in zip(bundle._fields, bundle, strict=True):
        if isinstance(v, np.ndarray):
            a = np.ascontiguousarray(v)
            if a is v and v.flags.writeable:
                a = v.view()
            a.setflags(write=False)
            fields[name] = a
        elif isinstance(v, bool | np.bool_ | int | np.integer):
            fields[name] = int(v)
        else:
            fields[name] = float(v)
    return type(bundle)(**fields)
