"""The vectorised-NumPy implementation in benchmarks/ (same model, same random numbers,
written independently of the kernels) agrees with the numba kernels path by path."""

from __future__ import annotations

import numpy as np
import pytest

import abs_engine as ae
from abs_engine.compile.model import compile_model
from benchmarks.numpy_model import simulate_numpy


@pytest.mark.parametrize("scenario", ["huake_mc", "huake_mc_independent_provider"])
def test_numpy_baseline_matches_kernels_path_by_path(scenario):
    cd = ae.compile_deal(ae.load_deal())
    sc = ae.load_scenario(scenario)
    n = 20_000
    res = ae.simulate(cd, sc, n_paths=n, seed=11, keep_paths=True, progress=False)
    ref = simulate_numpy(cd, compile_model(cd, sc), 11, np.arange(n))
    paths = res.paths
    assert np.array_equal(paths["pool.default_count"].to_numpy(), ref["default_count"])
    for j, name in enumerate(cd.tranche_names):
        bal = cd.deal.tranches[j].balance
        np.testing.assert_allclose(
            paths[f"{name}.principal_paid"], ref["principal_paid"][:, j], atol=1e-6
        )
        np.testing.assert_allclose(
            paths[f"{name}.interest_paid"], ref["interest_paid"][:, j], atol=1e-6
        )
        np.testing.assert_allclose(
            paths[f"{name}.principal_loss"] * bal, ref["loss"][:, j], atol=1e-6
        )
    # the comparison is not vacuous: some paths have senior losses and support draws
    assert (ref["loss"][:, 0] > 0).any() and (paths["A.support_received"] > 0).any()


def test_numpy_baseline_matches_kernels_on_the_benchmark_pool():
    """The homogeneous pool the benchmark sweeps use (fees, reserve, cumulative-default
    trigger switching to an accelerated waterfall): the same paths give the same cash."""
    from benchmarks.pools import homogeneous_deal, pool_scenario

    cd, sc = homogeneous_deal(300, pd=0.08), pool_scenario()
    n = 2_000
    res = ae.simulate(cd, sc, n_paths=n, seed=5, keep_paths=True, progress=False)
    ref = simulate_numpy(cd, compile_model(cd, sc), 5, np.arange(n))
    assert np.array_equal(res.paths["pool.default_count"].to_numpy(), ref["default_count"])
    for j, name in enumerate(cd.tranche_names):
        np.testing.assert_allclose(
            res.paths[f"{name}.principal_paid"], ref["principal_paid"][:, j], atol=1e-6
        )
        np.testing.assert_allclose(
            res.paths[f"{name}.interest_paid"], ref["interest_paid"][:, j], atol=1e-6
        )
    # not vacuous: the trigger fires on some paths and the mezzanine loses on some
    assert (res.paths["pool.accelerated_probability"] > 0).any()
    assert (res.paths["M.principal_loss"] > 0).any()


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_pending_recoveries_agree_with_the_numpy_twin():
    """The recoveries still to come at each period (what a write-off counts on and a clean-up
    call buys) computed two ways: per default in the collateral kernel, and vectorised from
    each obligor's default and recovery periods in the NumPy twin. Random recovery lags (4 to
    6 quarters) make the pending windows differ from path to path."""
    from abs_engine.kernels import layout as L
    from abs_engine.simulation import path_flows
    from benchmarks.numpy_model import _collateral

    cd = ae.compile_deal(ae.load_deal())
    model = compile_model(cd, ae.load_scenario("huake_mc"))
    paths = np.arange(5_000)
    kernel = path_flows(cd, model, 11, paths).flows
    twin, _, _ = _collateral(cd, model, 11, paths)
    pending = kernel[:, L.PF_PENDING_RECOVERY]
    assert (pending > 0).sum() > 100
    np.testing.assert_allclose(pending, twin[:, L.PF_PENDING_RECOVERY], rtol=1e-12, atol=1e-6)
    # a pending recovery is received later: by the end it has all arrived or was lost
    assert np.all(pending[:, -1] == 0.0)
