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
