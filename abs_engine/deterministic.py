"""The deterministic driver: pool flows of given paths through the compiled waterfall, with
full ledgers (``run_waterfall``). The Monte Carlo driver, which keeps only per-path metrics
and block sums, is :mod:`abs_engine.simulation`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .compile.deal import CompiledDeal
from .compile.scenario import PoolFlows
from .kernels import layout as L
from .kernels.bundles import Ledgers
from .kernels.waterfall import run_paths, run_paths_py, work_shape

__all__ = ["WaterfallResult", "run_waterfall"]


@dataclass(frozen=True)
class WaterfallResult:
    """Ledgers and per-path summaries of P paths (yuan unless stated).

    Attributes
    ----------
    led_tr : float64[P, T, J, N_LT]     tranche ledger (``LT_*`` items)
    led_fee : float64[P, T, F, N_LF]
    led_acc : float64[P, T, A, N_LA]
    led_sup : float64[P, T, S, N_LS]
    led_per : float64[P, T, N_LP]       pool and deal items per period
    sum_tr : float64[P, J, N_ST]        per-path tranche summaries
    sum_pool : float64[P, N_SP]         per-path pool/deal summaries
    """

    deal: CompiledDeal
    flows: PoolFlows
    led_tr: np.ndarray
    led_fee: np.ndarray
    led_acc: np.ndarray
    led_sup: np.ndarray
    led_per: np.ndarray
    sum_tr: np.ndarray
    sum_pool: np.ndarray


def run_waterfall(cd: CompiledDeal, flows: PoolFlows, *, jit: bool = True) -> WaterfallResult:
    """Run every path of ``flows`` through the deal's waterfall and keep full ledgers.

    ``jit=False`` runs the plain-Python twin (slow; for tests)."""
    n_p, n_t = flows.n_paths, cd.n_periods
    if flows.flows.shape[2] != n_t:
        raise ValueError(f"flows have {flows.flows.shape[2]} periods, the deal has {n_t}")
    n_j, n_f = len(cd.tranche_names), len(cd.fee_names)
    n_a, n_s = len(cd.account_names), len(cd.support_names)
    led_tr = np.zeros((n_p, n_t, n_j, L.N_LT))
    led_fee = np.zeros((n_p, n_t, n_f, L.N_LF))
    led_acc = np.zeros((n_p, n_t, n_a, L.N_LA))
    led_sup = np.zeros((n_p, n_t, n_s, L.N_LS))
    led_per = np.zeros((n_p, n_t, L.N_LP))
    sum_tr = np.zeros((n_p, n_j, L.N_ST))
    sum_pool = np.zeros((n_p, L.N_SP))
    rows, cols = work_shape(n_j, n_f, n_a, n_s, len(cd.trigger_names))
    fn: Callable[..., int] = run_paths if jit else run_paths_py
    led = Ledgers(led_tr, led_fee, led_acc, led_sup, led_per, sum_tr, sum_pool)
    # the base rate read-only, as the Monte Carlo model's frozen one: the waterfall then has
    # the block kernel's signature, and one compile of it serves both (a cold deterministic
    # run after a Monte Carlo one compiles run_paths' loop alone, not the waterfall again)
    base_rate = flows.base_rate.view()
    base_rate.flags.writeable = False
    fn(
        flows.flows,
        flows.support_default_period,
        base_rate,
        cd.kernel,
        led,
        rows,
        cols,
    )
    return WaterfallResult(cd, flows, led_tr, led_fee, led_acc, led_sup, led_per, sum_tr, sum_pool)
