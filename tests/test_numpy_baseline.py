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
            paths[f"{name}.principal_received"], ref["principal_paid"][:, j], atol=1e-6
        )
        np.testing.assert_allclose(
            paths[f"{name}.interest_received"], ref["interest_paid"][:, j], atol=1e-6
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
            res.paths[f"{name}.principal_received"], ref["principal_paid"][:, j], atol=1e-6
        )
        np.testing.assert_allclose(
            res.paths[f"{name}.interest_received"], ref["interest_paid"][:, j], atol=1e-6
        )
    # not vacuous: the trigger fires on some paths and the mezzanine loses on some
    assert (res.paths["pool.accelerated_probability"] > 0).any()
    assert (res.paths["M.principal_loss"] > 0).any()
