"""Monte Carlo against analytic answers, reproducibility, wrong-way risk, bad input.

Every comparison is within 4 standard errors of the same run (SE from that run). The long
analytic and statistical checks are marked ``slow``: ``pytest -m slow`` runs them (.ci/run
does); the default run keeps the binomial check at zero correlation."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pytest
from scipy import special, stats

import abs_engine as ae
from abs_engine.compile.model import NO_PD_BANDS, compile_model
from abs_engine.kernels import layout as L
from abs_engine.kernels.bundles import BLOCK_SUMS_HISTOGRAMS
from abs_engine.schema import parse_deal
from abs_engine.schema.stochastic import MonteCarloScenario
from tests.conftest import (
    GH_W,
    GH_Z,
    K_SE,
    annual_dates,
    assert_same_run,
    base_deal,
    binom_pmf,
    cond_pd_gauss,
    count_pmf_gauss,
    homogeneous_deal,
    mc,
    obligor,
    tranche_el,
)


def count_pmf_student(n: int, pd: float, rho: float, nu: float) -> np.ndarray:
    """P(k defaults) under the Student-t copula: conditional on (Z, W), W ~ chi2(nu), defaults
    are independent with p = Phi((t_nu^-1(PD)·sqrt(W/nu) - sqrt(rho)·Z) / sqrt(1 - rho)).
    W by generalised Gauss–Laguerre quadrature (W = 2u, u ~ Gamma(nu/2))."""
    u, wu = special.roots_genlaguerre(80, nu / 2 - 1)
    wu = wu / special.gamma(nu / 2)
    w = 2 * u
    thr = stats.t.ppf(pd, nu)
    out = np.zeros(n + 1)
    for wi, wwi in zip(w, wu, strict=True):
        p = stats.norm.cdf((thr * np.sqrt(wi / nu) - np.sqrt(rho) * GH_Z) / np.sqrt(1 - rho))
        out += wwi * (GH_W[:, None] * binom_pmf(n, p)).sum(axis=0)
    return out


def assert_pmf(res: ae.SimulationResult, exact: np.ndarray, min_p: float = 0.0) -> None:
    got = res.default_count_distribution().to_numpy()
    n = res.n_paths
    for k, (p_hat, p) in enumerate(zip(got, exact, strict=True)):
        if p < min_p:
            continue
        se = np.sqrt(max(p_hat * (1 - p_hat), 1.0 / n) / n)
        assert abs(p_hat - p) <= K_SE * se, f"k={k}: MC {p_hat:.5f} vs exact {p:.5f} (se {se:.5f})"


@pytest.mark.slow
@pytest.mark.parametrize("n", [8, 20])
def test_finite_pool_default_counts_and_tranche_el_match_conditional_binomial(n):
    pd, rho, rec = 0.05, 0.2, 0.4
    attach = [0.0, 0.05, 0.15]
    cd = homogeneous_deal(n, pd, attach)
    res = ae.simulate(cd, mc(rho, recovery=rec), n_paths=200_000, seed=11, progress=False)
    pmf = count_pmf_gauss(n, pd, rho)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-10)
    assert_pmf(res, pmf, min_p=1e-6)
    # tranches from the top: [0.15, 1], [0.05, 0.15], [0, 0.05]
    bounds = [(0.15, 1.0), (0.05, 0.15), (0.0, 0.05)]
    for row, (a, d) in zip(res.tranches.itertuples(), bounds, strict=True):
        exact = tranche_el(pmf, 1 - rec, a, d)
        assert abs(row.expected_loss - exact) <= K_SE * row.expected_loss_se + 1e-12, (
            row.tranche,
            row.expected_loss,
            exact,
        )
        # with zero coupons, PV loss and principal loss agree
        assert row.principal_loss == pytest.approx(row.expected_loss, abs=1e-12)
    # the finite pool is far from the large-pool (Vasicek) value: test against the right one
    vas = tranche_el_vasicek(pd, rho, 1 - rec, 0.05, 0.15)
    assert abs(tranche_el(pmf, 1 - rec, 0.05, 0.15) - vas) > 0.1 * vas


def tranche_el_vasicek(pd: float, rho: float, lgd: float, a: float, d: float) -> float:
    loss = lgd * cond_pd_gauss(pd, rho)
    return float((GH_W * np.minimum(np.maximum(loss - a, 0.0), d - a)).sum() / (d - a))


@pytest.mark.slow
def test_large_pool_matches_vasicek_quantiles():
    """N = 10,000: P(D <= x_q) at the Vasicek quantiles x_q is q within 4 SE. (The
    finite-pool correction at this size, computed exactly, is below one SE.)"""
    pd, rho, n, paths = 0.02, 0.1, 10_000, 20_000

    def vasicek_q(q: float) -> float:
        return stats.norm.cdf(
            (stats.norm.ppf(pd) + np.sqrt(rho) * stats.norm.ppf(q)) / np.sqrt(1 - rho)
        )

    assert vasicek_q(0.999) == pytest.approx(0.128, abs=5e-4)  # the reference sheet's anchor
    res = ae.simulate(
        homogeneous_deal(n, pd, [0.0]), mc(rho), n_paths=paths, seed=3, progress=False
    )
    dist = res.default_count_distribution()
    cdf = np.cumsum(dist.to_numpy())
    for q in (0.5, 0.9, 0.99, 0.999):
        x = vasicek_q(q)
        p_hat = cdf[int(np.floor(x * n))]
        se = np.sqrt(max(p_hat * (1 - p_hat), 1 / paths) / paths)
        assert abs(p_hat - q) <= K_SE * se, (q, p_hat, se)
        # exact finite-pool CDF: the conditional binomial CDF is nearly a step in z at this N,
        # so integrate on a dense grid rather than by Gauss-Hermite
        z = np.linspace(-9, 9, 72_001)
        p = stats.norm.cdf((stats.norm.ppf(pd) - np.sqrt(rho) * z) / np.sqrt(1 - rho))
        finite = np.trapezoid(stats.binom.cdf(np.floor(x * n), n, p) * stats.norm.pdf(z), z)
        assert abs(finite - q) < se


@pytest.mark.slow
def test_student_t_matches_quadrature_and_has_heavier_tail():
    n, pd, rho, nu = 20, 0.05, 0.2, 4.0
    cd = homogeneous_deal(n, pd, [0.0])
    t_res = ae.simulate(
        cd, mc(rho, copula="student_t", nu=nu), n_paths=200_000, seed=5, progress=False
    )
    g_res = ae.simulate(cd, mc(rho), n_paths=200_000, seed=5, progress=False)
    assert_pmf(t_res, count_pmf_student(n, pd, rho, nu), min_p=1e-6)
    # tail: P(at least 6 of 20 default)
    k = 6
    p_t = t_res.default_count_distribution().to_numpy()[k:].sum()
    p_g = g_res.default_count_distribution().to_numpy()[k:].sum()
    se = np.sqrt(p_t * (1 - p_t) / t_res.n_paths + p_g * (1 - p_g) / g_res.n_paths)
    assert p_t - p_g > K_SE * se, (p_t, p_g, se)
    # same marginal PD: mean default count agrees
    m_t, se_t = t_res.pool.loc["default_count", ["mean", "se"]]
    assert abs(m_t - n * pd) <= K_SE * se_t


def test_zero_correlation_gives_binomial_counts():
    n, pd = 20, 0.1
    res = ae.simulate(
        homogeneous_deal(n, pd, [0.0]), mc(0.0), n_paths=100_000, seed=9, progress=False
    )
    assert_pmf(res, stats.binom.pmf(np.arange(n + 1), n, pd))


# --- reproducibility -------------------------------------------------------------------------


def _huake(**kw):
    return ae.simulate(n_paths=5_000, seed=123, keep_paths=True, progress=False, **kw)


def test_same_results_for_any_thread_count_and_batch_size():
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        # a 1-core runner: the same test in a process given 2 numba threads (not a skip); the
        # project's addopts dropped so that a marker cannot deselect it there
        env = {**os.environ, "NUMBA_NUM_THREADS": "2"}
        test = f"{__file__}::test_same_results_for_any_thread_count_and_batch_size"
        cmd = [sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider"]
        done = subprocess.run([*cmd, test], env=env, capture_output=True, text=True)
        assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout + done.stderr
        return
    one = _huake(threads=1, batch_blocks=1)
    two = _huake(threads=2, batch_blocks=3)
    default = _huake()
    for other in (two, default):
        # histograms: one row a thread under crude sampling (whole counts, exact in any order)
        assert_same_run(one, other)
    # a path's numbers depend on its global index only: the first 2,000 of a longer run
    longer = ae.simulate(n_paths=7_000, seed=123, keep_paths=True, progress=False)
    assert np.array_equal(one.paths.to_numpy(), longer.paths.to_numpy()[:5_000], equal_nan=True)


def test_first_difference_compares_bits_and_provider_defaults():
    """A path restarts at the first period whose waterfall inputs differ from the memoised
    path's: a pool flow not bitwise equal (NaN never equal, -0.0 not 0.0), or a provider
    that has defaulted by then in one path only (default periods >= T all mean never)."""
    from abs_engine.kernels.montecarlo import _first_difference_py

    rng = np.random.default_rng(3)
    base = rng.random((7, 12))
    never = np.array([12, 13], dtype=np.int64)
    assert _first_difference_py(base.copy(), never.copy(), base, never) == 12
    assert _first_difference_py(base.copy(), np.array([99, 12]), base, never) == 12
    for t, v in ((0, np.nan), (5, base[2, 5] * (1 + 2**-52)), (11, -0.0)):
        flows = base.copy()
        if v == 0.0:
            base_z = base.copy()
            base_z[4, 11] = 0.0
            flows = base_z.copy()
            flows[4, 11] = -0.0
            assert _first_difference_py(flows, never, base_z, never) == 11
            continue
        flows[2, t] = v
        assert _first_difference_py(flows, never, base, never) == t
    assert _first_difference_py(base.copy(), np.array([12, 7]), base, never) == 7
    assert _first_difference_py(base.copy(), never.copy(), base, np.array([3, 13])) == 3
    flows = base.copy()
    flows[0, 9] += 1.0
    assert _first_difference_py(flows, np.array([12, 10]), base, never) == 9


def test_batches_sized_as_the_run_goes(monkeypatch):
    """Left to the run, a local batch is as many blocks as BATCH_TARGET_S takes at the last
    batch's pace: at least the first batch's 4 a thread (8 at least), at most twice the last
    and within BATCH_MAX_BYTES of sums (a row of histograms a block under importance
    sampling). Batches of any sizes give bitwise the same results."""
    import dataclasses

    from abs_engine import simulation as S

    job = S.start_simulation_compiled(ae.compile_deal(ae.load_deal()), ae.load_scenario("huake_mc"),
                                      n_paths=60_000, seed=4, progress=False).job  # fmt: skip
    least = max(8, 4 * S.kernel_threads(None))
    most = S.BATCH_MAX_BYTES // job.shape.block_bytes(False)
    target = S.BATCH_TARGET_S
    assert job.batch_blocks is None and S.first_batch_blocks(job) == least and most > 8 * least
    assert S.next_batch_blocks(job, least, least * target / (10 * least)) == 2 * least
    assert S.next_batch_blocks(job, 4 * least, 4 * least * target / (5 * least)) == 5 * least
    assert S.next_batch_blocks(job, 4 * least, 1e9) == least
    assert S.next_batch_blocks(job, most, 0.0) == most
    assert S.next_batch_blocks(dataclasses.replace(job, batch_blocks=3), 40, 1.0) == 3
    # a block's own histogram rows (importance sampling) and kept metric vectors count
    assert job.shape.block_bytes(True) > 50 * job.shape.block_bytes(False)
    kept = dataclasses.replace(job, spec=job.spec._replace(keep=1))
    assert S.next_batch_blocks(kept, most, 0.0) == max(
        least, S.BATCH_MAX_BYTES // job.shape.block_bytes(False, job.spec.block_size)
    )
    sizes = []
    real = S.run_range

    def spy(first, nb, *args):
        sizes.append(nb)
        return real(first, nb, *args)

    # one kernel thread: the first batch is 8 blocks on any machine, so 59 blocks make four
    kw = {"n_paths": 60_000, "seed": 4, "keep_paths": True, "progress": False, "threads": 1}
    monkeypatch.setattr(S, "BATCH_TARGET_S", 1e9)  # every batch twice the last
    monkeypatch.setattr(S, "run_range", spy)
    grown = ae.simulate(**kw)
    expected, left, nb = [], job.n_blocks, 8
    while left:
        expected.append(min(nb, left))
        left, nb = left - expected[-1], 2 * expected[-1]
    assert sizes == expected and len(sizes) >= 3, sizes
    fixed = ae.simulate(batch_blocks=1, **kw)
    assert np.array_equal(grown.paths.to_numpy(), fixed.paths.to_numpy(), equal_nan=True)
    assert grown.tranches.equals(fixed.tranches) and grown.cashflows.equals(fixed.cashflows)


@pytest.mark.parametrize("scenario", ["huake_mc", "memo_off", "importance"])
def test_scratch_carries_nothing_from_one_block_to_the_next(scenario):
    """The compiled block kernel allocates nothing (it keeps no reference counts): a thread
    runs its blocks on one set of scratch from ``block_scratch``. Whatever that scratch holds
    before a block (here NaN in every float, -1 in every integer, and the blocks run last to
    first) changes no result, bit for bit, against ``run_range``'s blocks in order: the
    bundled deal as shipped, with stochastic prepayment (every path computed), and under
    importance sampling (twisted obligor defaults, and the conditional-Monte-Carlo kernel)."""
    from abs_engine.compile.deal import compile_deal
    from abs_engine.kernels.montecarlo import block_scratch
    from abs_engine.simulation import block_kernel, run_range, start_simulation_compiled
    from benchmarks.scaling import memo_off

    cd = compile_deal(ae.load_deal())
    sc = ae.load_scenario("huake_mc", cd.deal)
    kw = {"n_paths": 3_000, "seed": 9, "progress": False}
    if scenario == "memo_off":
        sc = memo_off(sc)
    if scenario == "importance":
        kw["sampling"] = "importance"  # no kept paths: they would carry no weights
    else:
        kw["keep_paths"] = True
    job = start_simulation_compiled(cd, sc, **kw).job
    spec, model, deal = job.spec._replace(block_size=700), job.model, job.deal
    assert model.is_cmc_provider == (scenario == "importance")
    assert model.memo == (scenario != "memo_off")
    n_blocks = -(-spec.n_paths // spec.block_size)
    ref = run_range(0, n_blocks, spec, model, deal, job.shape, threads=1)
    # histograms: one row a block under importance sampling, the one thread's row otherwise
    assert ref.hist_count.shape[0] == (n_blocks if scenario == "importance" else 1)
    sums = job.shape.sums(n_blocks, ref.hist_count.shape[0])
    if spec.keep:
        sums = sums._replace(path_metrics=np.full((spec.n_paths, job.shape.n_m), np.nan))
    scratch = block_scratch(model, deal, sums)
    kernel = block_kernel(model)

    def arrays(bundle):  # a bundle's arrays, those of the bundles it holds included
        for a in bundle:
            yield from (arrays(a) if isinstance(a, tuple) else (a,))

    for bb in reversed(range(n_blocks)):
        for a in arrays(scratch):
            kind = a.dtype.kind
            a[...] = np.nan if kind == "f" else (np.iinfo(a.dtype).max if kind == "u" else -1)
        kernel(0, bb, spec, model, deal, sums, *scratch)
    for name, a, b in zip(ref._fields, ref, sums, strict=True):
        assert np.array_equal(a, b, equal_nan=True), name
    assert np.isfinite(ref.m).any() and np.isfinite(ref.w_tot).all()


def _block_sums_from_paths(metrics, path_cf, memoised):
    """The sums ``m`` [N_SUM, M] and ``cf`` [N_CF_SUM, T, N_CF] of one block of crude paths
    (every weight 1), from each path's metric vector [P, M] and cash flows [P, T, N_CF], in
    the kernel's order: the paths in turn, then the memoised no-default paths (``memoised``
    [P], bool) once, their count as weight (NumPy's elementwise IEEE arithmetic, the
    kernel's expressions as written: ``w·v·v`` is (w·v)·v)."""
    m = np.zeros((L.N_SUM, metrics.shape[1]))
    cf = np.zeros((L.N_CF_SUM, *path_cf.shape[1:]))

    def add(v, c, w):
        ok = ~np.isnan(v)
        for row, x in ((L.SUM_WV, w * v), (L.SUM_W2V2, w * v * v), (L.SUM_W, w), (L.SUM_N, w),
                       (L.SUM_WV2, w * v * v), (L.SUM_W2V, w * v), (L.SUM_W2, w)):  # fmt: skip
            m[row, ok] += np.broadcast_to(x, v.shape)[ok]
        cf[L.CF_WV] += w * c
        cf[L.CF_W2V2] += w * c * c
        cf[L.CF_W2V] += w * c

    for p in np.flatnonzero(~memoised):
        add(metrics[p], path_cf[p], 1.0)
    if memoised.any():
        p = np.flatnonzero(memoised)[0]
        add(metrics[p], path_cf[p], float(memoised.sum()))
    return m, cf


def _with_compensation_fund(deal):
    """The bundled deal with a loss-compensation fund (half of each loss, paid two periods
    later, capped) and both providers far likelier to default (30% a year): pending claims
    and provider defaults in the restarted paths' state."""
    d = deal.model_dump(mode="json", exclude_none=True)
    d["support"][0]["provider"]["annual_pd"] = 0.3
    d["support"].append({"kind": "loss_compensation", "name": "fund", "share": 0.5,
                         "lag_periods": 2, "cap": 3e6,
                         "provider": {"name": "fund provider", "annual_pd": 0.3,
                                      "correlation": 0.2}})  # fmt: skip
    return parse_deal(d)


@pytest.mark.parametrize(("jit", "fund"), [(True, False), (False, False), (True, True)])
def test_prefix_restarts_change_no_path(jit, fund):
    """In a block, a path with defaults restarts from the memoised no-default path's
    checkpoint at the first period its inputs differ. With one path a block there is no
    memoised path before any: every path runs from its first period, and its block's sums
    are its own figures. Added up in the kernel's order, those give bitwise the sums of one
    block of all the paths (metrics and expected cash flows), its histograms and its kept
    metric vectors: compiled kernel and Python twin, on the bundled deal, whose no-default
    path recurs in about half the paths, and with a loss-compensation fund and likely
    provider defaults."""
    from abs_engine.compile.deal import compile_deal
    from abs_engine.simulation import run_range, start_simulation_compiled

    deal = _with_compensation_fund(ae.load_deal()) if fund else ae.load_deal()
    cd = compile_deal(deal)
    sc = ae.load_scenario("huake_mc", cd.deal)
    n = 600 if jit else 120
    job = start_simulation_compiled(cd, sc, n_paths=n, seed=5, keep_paths=True, progress=False).job
    assert job.model.memo
    run = {size: run_range(0, -(-n // size), job.spec._replace(block_size=size), job.model,
                           job.deal, job.shape, jit=jit, threads=1)
           for size in (n, 1)}  # fmt: skip
    kept = run[1].path_metrics
    pool = kept[:, job.shape.n_j * L.N_MT :]
    memoised = (pool[:, L.MP_DEFAULT_COUNT] == 0) & (pool[:, L.MP_PROVIDER_DEFAULT] == 0)
    assert 0 < np.count_nonzero(~memoised) < n - 1  # restarts, and a memoised path to restart from
    bits = lambda a: a.view(np.int64)  # noqa: E731
    assert np.array_equal(bits(run[n].path_metrics), bits(kept))
    m, cf = _block_sums_from_paths(kept, run[1].cf[:, L.CF_WV], memoised)
    assert np.array_equal(bits(run[n].m[0]), bits(m))
    assert np.array_equal(bits(run[n].cf[0]), bits(cf))
    for name in BLOCK_SUMS_HISTOGRAMS:
        assert np.array_equal(getattr(run[n], name), getattr(run[1], name)), name


def test_different_seeds_differ_and_python_twin_agrees():
    a = ae.simulate(n_paths=2_000, seed=1, keep_paths=True, progress=False)
    b = ae.simulate(n_paths=2_000, seed=2, keep_paths=True, progress=False)
    assert not np.array_equal(a.paths.to_numpy(), b.paths.to_numpy(), equal_nan=True)
    twin = ae.simulate(n_paths=300, seed=1, keep_paths=True, progress=False, jit=False)
    assert np.array_equal(twin.paths.to_numpy(), a.paths.to_numpy()[:300], equal_nan=True)


def test_ledger_of_a_path_reproduces_its_metrics():
    res = ae.simulate(
        n_paths=3_000, seed=4, keep_paths=True, ledger_paths=[17, 2_999], progress=False
    )
    from abs_engine.kernels import layout as L
    from abs_engine.report.frames import ledger_long

    for p, led in res.ledgers.items():
        # labelled by its scenario ("path 17" in the scenario column before)
        assert set(ledger_long(led)["scenario"]) == {"huake_mc"}
        a_loss = led.sum_tr[0, 0, L.ST_LOSS] / 95_000_000
        assert res.paths.loc[p, "A.principal_loss"] == a_loss
        assert res.paths.loc[p, "A.principal_paid"] == led.sum_tr[0, 0, L.ST_PRINCIPAL_PAID]


# --- wrong-way risk ----------------------------------------------------------------------------


@pytest.mark.slow
def test_wrong_way_risk_senior_el_higher_with_correlated_provider():
    sc = ae.load_scenario("huake_mc")
    indep = MonteCarloScenario.model_validate(
        {**sc.model_dump(), "providers": {"correlated": False}}
    )
    cd = ae.compile_deal(ae.load_deal())
    a = ae.simulate(cd, sc, n_paths=100_000, seed=7, keep_paths=True, progress=False)
    b = ae.simulate(cd, indep, n_paths=100_000, seed=7, keep_paths=True, progress=False)
    # common random numbers: the paired difference has its own standard error
    d = (a.paths["A.expected_loss"] - b.paths["A.expected_loss"]).to_numpy()
    se = d.std(ddof=1) / np.sqrt(len(d))
    assert d.mean() > K_SE * se
    # the provider's own default rate is the same either way
    pa, sa = a.pool.loc["provider_default_probability", ["mean", "se"]]
    pb, sb = b.pool.loc["provider_default_probability", ["mean", "se"]]
    assert abs(pa - pb) <= K_SE * np.hypot(sa, sb)


def test_zero_pd_means_zero_loss_for_every_tranche():
    cd = homogeneous_deal(8, 0.0, [0.0, 0.05])
    res = ae.simulate(cd, mc(0.3), n_paths=5_000, seed=1, progress=False)
    assert (res.tranches["expected_loss"] == 0).all()
    assert (res.tranches["default_probability"] == 0).all()
    assert res.pool.loc["default_count", "mean"] == 0


def test_prepayment_and_ip_recovery_move_the_pool_the_right_way():
    cd = ae.compile_deal(ae.load_deal())
    base = ae.load_scenario("huake_mc")
    fast = MonteCarloScenario.model_validate(
        {**base.model_dump(), "prepayment": {"cpr": 0.2, "volatility": 0.5}}
    )
    r0 = ae.simulate(cd, base, n_paths=20_000, seed=2, progress=False)
    r1 = ae.simulate(cd, fast, n_paths=20_000, seed=2, progress=False)
    assert r1.pool.loc["prepayment_rate", "mean"] > 0.1
    assert r1.tranches.loc[0, "wal_years"] < r0.tranches.loc[0, "wal_years"] - 0.05
    rec, se = r0.pool.loc["recovery_rate", ["mean", "se"]]
    assert 0.0 < rec < 1.0 and se > 0


# --- bad input -----------------------------------------------------------------------------------


SECTORS = ["semiconductors", "biomedicine", "new_energy", "advanced_manufacturing", "software",
           "new_materials", "electronics", "ict"]  # fmt: skip


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        (
            {"defaults": {"correlation": {"kind": "fixed", "value": 1.0}}},
            "defaults.correlation.value",
        ),
        (
            {"defaults": {"correlation": {"kind": "fixed", "value": -0.1}}},
            "defaults.correlation.value",
        ),
        ({"prepayment": {"cpr": -0.05}}, "prepayment.cpr"),
        (
            {"defaults": {"factors": "sector", "sector_correlation": -0.9}},
            "defaults.sector_correlation",
        ),
        (
            {
                "defaults": {
                    "factors": "sector",
                    "sector_order": [
                        "semiconductors",
                        "biomedicine",
                        "new_energy",
                        "advanced_manufacturing",
                        "software",
                        "new_materials",
                        "electronics",
                        "ict",
                    ],
                    "sector_matrix": [
                        [1.0 if i == j else 0.99 if i + j == 1 else -0.5 for j in range(8)]
                        for i in range(8)
                    ],
                }
            },
            "defaults.sector_matrix",
        ),
        (  # not symmetric: the first entry that differs from its mirror, and both values
            {
                "defaults": {
                    "factors": "sector",
                    "sector_order": SECTORS,
                    "sector_matrix": [
                        [1.0 if i == j else 0.2 + 0.1 * (i < j) for j in range(8)] for i in range(8)
                    ],
                }
            },
            "defaults.sector_matrix[0][1]",
        ),
    ],
)
def test_bad_monte_carlo_input_is_a_clear_error(doc, path):
    full = {"kind": "monte_carlo", "name": "bad", **doc}
    with pytest.raises(ae.DealError) as info:
        from abs_engine.api import parse_any_scenario

        sc = parse_any_scenario(full, "bad.toml")
        ae.simulate(None, sc, n_paths=10, progress=False)
    assert any(p.path == path and p.file == "bad.toml" for p in info.value.problems), (
        info.value.problems
    )
    assert "(got None)" not in str(info.value)  # a value where there is one, else none


@pytest.mark.parametrize("n_paths", [0, -5, 2.5])
def test_n_paths_must_be_positive(n_paths):
    with pytest.raises(ae.InputError, match="n_paths"):
        ae.simulate(n_paths=n_paths, progress=False)


def test_pd_of_one_is_rejected_in_the_deal():
    deal = base_deal()
    deal["pool"]["obligors"][0]["pd"]["annual"] = 1.0
    with pytest.raises(ae.DealError) as info:
        parse_deal(deal)
    assert info.value.problems[0].path == "pool.obligors[0].pd.annual"


# ---- from review: defects found earlier, each with the hand arithmetic ----


@pytest.mark.slow
def test_independent_provider_is_independent_under_student_t():
    """With providers.correlated = false the provider draws its own chi-square too, so its
    default rate in the pool's worst 5% of paths equals its overall rate (within 4 SE)."""
    sc = ae.load_scenario("huake_mc")
    doc = {
        **sc.model_dump(),
        "defaults": {
            "copula": "student_t",
            "nu": 3.0,
            "correlation": {"kind": "fixed", "value": 0.3},
        },
    }
    deal = ae.compile_deal(ae.load_deal())
    indep = MonteCarloScenario.model_validate(
        {**doc, "providers": {"correlated": False, "pd_multiplier": 10.0}}
    )
    res = ae.simulate(deal, indep, n_paths=60_000, seed=3, keep_paths=True, progress=False)
    prov = res.paths["pool.provider_default_probability"].to_numpy()
    worst = res.paths["pool.default_rate"].to_numpy() >= np.quantile(
        res.paths["pool.default_rate"], 0.95
    )
    p_all, p_tail = prov.mean(), prov[worst].mean()
    se = np.sqrt(p_tail * (1 - p_tail) / worst.sum())
    assert abs(p_tail - p_all) <= 4 * se, (p_tail, p_all, se)
    corr = MonteCarloScenario.model_validate(
        {**doc, "providers": {"correlated": True, "pd_multiplier": 10.0}}
    )
    res_c = ae.simulate(deal, corr, n_paths=60_000, seed=3, keep_paths=True, progress=False)
    prov_c = res_c.paths["pool.provider_default_probability"].to_numpy()
    assert prov_c[worst].mean() - prov_c.mean() > 4 * se  # and the correlated one is not


def test_monte_carlo_uses_the_deals_recovery_unless_the_scenario_overrides():
    deal = base_deal(
        dates=annual_dates(3),
        pool={
            "obligors": [obligor("O1", 100, n=3, pd={"kind": "flat", "annual": 0.3})],
            "recovery": {"rate": 0.8, "lag_periods": 0},
        },
    )
    cd = ae.compile_deal(parse_deal(deal))
    sc = MonteCarloScenario.model_validate({"kind": "monte_carlo", "name": "x"})
    res = ae.simulate(cd, sc, n_paths=5_000, seed=1, progress=False)
    assert res.pool.loc["recovery_rate", "mean"] == pytest.approx(0.8, abs=1e-12)
    over = MonteCarloScenario.model_validate(
        {
            "kind": "monte_carlo",
            "name": "x",
            "recovery": {"kind": "rate", "rate": 0.1, "lag_periods": 0},
        }
    )
    assert ae.simulate(cd, over, n_paths=5_000, seed=1, progress=False).pool.loc[
        "recovery_rate", "mean"
    ] == pytest.approx(0.1)


def test_provider_loads_on_its_sector_factor():
    doc = ae.load_deal().model_dump(mode="json")
    doc["support"][0]["provider"]["sector"] = "software"
    cd = ae.compile_deal(parse_deal(doc))
    sc = MonteCarloScenario.model_validate(
        {"kind": "monte_carlo", "name": "s", "defaults": {"factors": "sector"}}
    )
    m = compile_model(cd, sc)
    assert m.factor_names[m.provider_factor[0]] == "software"
    doc["support"][0]["provider"].pop("sector")
    m = compile_model(ae.compile_deal(parse_deal(doc)), sc)
    assert m.factor_names[m.provider_factor[0]] == "semiconductors"  # the largest sector
    doc["support"][0]["provider"]["sector"] = "shipping"
    with pytest.raises(ae.DealError) as info:
        compile_model(ae.compile_deal(parse_deal(doc)), sc)
    assert info.value.problems[0].path == "support[0].provider.sector"


def test_disabled_providers_pay_nothing():
    res = ae.simulate(None, "huake_mc_no_support", n_paths=3_000, seed=1, progress=False)
    assert res.pool.loc["provider_default_probability", "mean"] == 1.0
    assert res.pool.loc["support_paid", "mean"] == 0.0
    assert res.pool.loc["accelerated_probability", "mean"] == 1.0  # the support-default trigger


def test_a_long_first_compile_is_announced(monkeypatch, capsys):
    """A warm-up that takes longer than the notice delay says "compiling ..." and how long it
    took, on stderr; a quick one (kernels loaded from the cache) and ``say=False`` say
    nothing."""
    from abs_engine import simulation

    class SlowKernel:
        signatures: list = []

        def __init__(self, seconds: float):
            self.seconds = seconds

        def __call__(self, *args):
            time.sleep(self.seconds)

    args = (simulation.RunSpec(1024, 1, 0, None, None, 0), _Kernel(), _Kernel(), _Shape())
    monkeypatch.setattr(simulation, "COMPILE_NOTICE_AFTER_S", 0.05)
    monkeypatch.setattr(simulation, "block_scratch", lambda model, deal, sums: ())
    monkeypatch.setattr(simulation, "block_callee_args", lambda *a: ())
    monkeypatch.setattr(simulation, "compile_callees", lambda kernel, callees, args, call: None)
    monkeypatch.setattr(simulation, "block_kernel_and_callees",
                        lambda *a, **kw: (SlowKernel(0.3), ()))  # fmt: skip
    assert simulation._warm_up(*args, say=True) >= 0.3
    err = capsys.readouterr().err
    assert err.startswith("compiling the Monte Carlo kernels") and "compiled in 0 s" in err
    assert simulation._warm_up(*args, say=False) >= 0.3
    assert capsys.readouterr().err == ""
    # a quick warm-up, against a delay no stall of a loaded machine reaches before it ends;
    # the notice, had it been left scheduled, would print within the sleep after
    monkeypatch.setattr(simulation, "COMPILE_NOTICE_AFTER_S", 1.0)
    monkeypatch.setattr(simulation, "block_kernel_and_callees",
                        lambda *a, **kw: (SlowKernel(0.0), ()))  # fmt: skip
    simulation._warm_up(*args, say=True)
    time.sleep(1.2)
    assert capsys.readouterr().err == ""


class _Kernel:
    kernel = None


class _Shape:
    def sums(self, n):
        return None


def test_progress_bars_are_labelled_and_can_be_switched_off():
    from abs_engine.simulation import Progress

    on = Progress(10, True, "sensitivity grid", "points")
    on.update(1)
    assert on.bar is not None
    assert "sensitivity grid" in str(on.bar.columns[0].text_format)
    on.stop()
    off = Progress(10, False, "sensitivity grid", "points")
    off.update(1)
    assert off.bar is None
    quick = Progress(1_000_000, None)  # expected to end within a second: no bar
    quick.update(999_999)
    assert quick.bar is None


def test_schedule_table_reads_back_every_schedule_bit_for_bit():
    """The collateral kernel's schedule table: each obligor's row gives back its interest,
    principal, balance and balance after principal exactly; rows the same bit for bit are
    stored once, in order of first appearance; 0.0 and -0.0 are different rows."""
    from abs_engine.compile.pool import schedule_table
    from abs_engine.kernels.layout import SC_AFTER, SC_BALANCE, SC_INTEREST, SC_PRINCIPAL

    rng = np.random.default_rng(7)
    distinct = rng.random((5, 3, 6)) * 1e6
    distinct[4, 0, 2] = -0.0  # row 4 is row 3 but for the sign of one zero
    distinct[3] = distinct[4]
    distinct[3, 0, 2] = 0.0
    pick = np.array([2, 2, 0, 3, 4, 2, 0, 1, 4])
    interest, principal, balance = (distinct[pick, k] for k in range(3))
    row, table = schedule_table(interest, principal, balance)
    assert table.shape == (5, 6, 4)
    assert row.tolist() == [0, 0, 1, 2, 3, 0, 1, 4, 3]
    for item, want in ((SC_INTEREST, interest), (SC_PRINCIPAL, principal),
                       (SC_BALANCE, balance), (SC_AFTER, balance - principal)):  # fmt: skip
        got = table[row][:, :, item]
        assert np.array_equal(got.view(np.uint64), want.view(np.uint64))
    row0, table0 = schedule_table(*(np.zeros((0, 6)) for _ in range(3)))
    assert row0.shape == (0,) and table0.shape == (0, 6, 4)


def test_schedule_table_keeps_rows_apart_when_their_hashes_collide(monkeypatch):
    """Rows are merged only when their bits are the same: with every hash equal, distinct
    rows get a row each (and equal rows still share one)."""
    import abs_engine.compile.pool as pool_module

    monkeypatch.setattr(pool_module, "_row_hashes", lambda bits: np.zeros(bits.shape[0], np.uint64))
    rng = np.random.default_rng(5)
    a = rng.random((4, 3))
    row, table = pool_module.schedule_table(a, a * 0.5, a * 2.0)
    assert row.tolist() == [0, 1, 2, 3] and table.shape == (4, 3, 4)
    same = np.tile(a[:1], (4, 1))
    row, table = pool_module.schedule_table(same, same, same)
    assert row.tolist() == [0, 0, 0, 0] and table.shape == (1, 3, 4)


def test_shared_schedule_rows_give_the_paths_of_one_row_per_obligor():
    """Obligors on the same terms share a schedule row; the collateral kernel then books each
    path's defaults exactly as with a row of its own per obligor (bitwise, 300 paths)."""
    from abs_engine.kernels.bundles import frozen
    from abs_engine.kernels.collateral import collateral_path, collateral_scratch

    doc = base_deal(dates=annual_dates(6))
    doc["pool"]["obligors"] = [
        obligor(f"O{i}", 100.0 + 50.0 * (i % 3), 0.05, n=6, kind="level_pay",
                pd={"kind": "flat", "annual": 0.2})
        for i in range(30)
    ]  # fmt: skip
    doc["tranches"][0]["balance"] = sum(o["balance"] for o in doc["pool"]["obligors"])
    cd = ae.compile_deal(parse_deal(doc))
    model = compile_model(cd, mc(0.3, recovery=0.4)).kernel
    assert model.sched.shape[0] == 3
    n = cd.n_obligors
    mm = compile_model(cd, mc(0.3, recovery=0.4))
    interest, principal, balance = mm.sched_interest, mm.sched_principal, mm.sched_balance
    full = np.ascontiguousarray(np.stack([interest, principal, balance - principal, balance], 2))
    own = frozen(model._replace(obligor_sched=np.arange(n, dtype=np.int64), sched=full))
    args = (n, model.class_threshold.shape[0], model.chol.shape[0], cd.n_periods,
            model.provider_threshold.shape[0])  # fmt: skip
    a, b = collateral_scratch(*args), collateral_scratch(*args)
    n_default = 0
    for p in range(300):
        n_default += collateral_path(5, p, model, a)
        collateral_path(5, p, own, b)
        for x, y in zip(a, b, strict=True):
            assert np.array_equal(np.asarray(x).view(np.uint8), np.asarray(y).view(np.uint8))
    assert n_default > 300  # the rows were read: many defaults, at every period


def test_pd_bounds_are_above_every_conditional_pd_of_their_cell():
    """A class's PD bound for a cell of the factor is at least its conditional PD, computed
    as the kernel does, anywhere in the cell (and above it, for the last row); none for the
    Student-t copula or for very many classes."""
    from abs_engine.compile.model import pd_bounds
    from abs_engine.kernels import layout as L
    from abs_engine.kernels.collateral import _bound_row_py, cond_pd_py

    rng = np.random.default_rng(3)
    # correlations up to within 1e-15 of 1 (the schema allows any below 1), thresholds near
    # each cell's left end as seen from the factor there (where a PD moves fastest)
    rho = np.concatenate([rng.uniform(0.0, 0.6, 30), [1 - 1e-6, 1 - 1e-12, 1 - 1e-15, 0.2, 0.2]])
    thr = special.ndtri(rng.uniform(1e-6, 0.6, rho.size))
    thr[30:33] = np.sqrt(rho[30:33]) * 0.25 - 3.0 * np.sqrt(1.0 - rho[30:33])
    thr[-2:] = [-np.inf, np.inf]
    bound = pd_bounds(thr, rho, L.COPULA_GAUSSIAN)
    assert bound.shape == (L.PD_BOUND_CELLS + 2, thr.size)
    assert (bound[0] == 2.0).all()
    srho, s1 = np.sqrt(rho), np.sqrt(1.0 - rho)
    zero = np.zeros(thr.size, dtype=np.int64)
    edges = L.PD_BOUND_Z_LO + L.PD_BOUND_DZ * np.arange(L.PD_BOUND_CELLS + 1)
    zs = [*edges, *np.nextafter(edges, -np.inf), *np.nextafter(edges, np.inf),
          *rng.uniform(-4.5, 8.0, 200)]  # fmt: skip
    for z in zs:
        row = _bound_row_py(z)  # the cell the kernel gives it
        for c in range(thr.size):
            pd = cond_pd_py(c, 0, 1.0, np.array([z]), thr[:, None], srho, s1, zero)
            assert pd <= bound[row, c], (row, z, c)
    assert (bound[1:, -2] < 1e-299).all() and (bound[:, -1] == 2.0).all()
    assert pd_bounds(thr, rho, L.COPULA_STUDENT_T).shape == (1, thr.size)
    many = np.full(L.PD_BOUND_MAX_CLASSES + 1, -2.0)
    assert pd_bounds(many, np.full(many.size, 0.2), L.COPULA_GAUSSIAN).shape == (1, many.size)


def test_pd_bands_hold_every_conditional_pd_of_their_cell():
    """A class's PD band for a cell of the factor and a period holds its conditional PD by
    that period, computed as the kernel does, anywhere in the cell (row 0 and the last row's
    lower end decide nothing); thresholds of -inf and +inf (PDs 0 and 1) and correlations up
    to within 1e-15 of 1 included. None for the Student-t copula or too large a table."""
    from abs_engine.compile.model import pd_bands
    from abs_engine.kernels import layout as L
    from abs_engine.kernels.collateral import _bound_row_py, cond_pd_py

    rng = np.random.default_rng(5)
    rho = np.concatenate([rng.uniform(0.0, 0.6, 20), [1 - 1e-6, 1 - 1e-12, 1 - 1e-15, 0.0, 0.2]])
    n_c, n_t = rho.size, 7
    thr = np.sort(special.ndtri(rng.uniform(1e-6, 0.6, (n_c, n_t))), axis=1)
    thr[20:23, 3] = np.sqrt(rho[20:23]) * 0.25 - 3.0 * np.sqrt(1.0 - rho[20:23])
    thr[-1, :2] = -np.inf
    thr[-1, -1] = np.inf
    band = pd_bands(thr, rho, L.COPULA_GAUSSIAN)
    assert band.shape == (L.PD_BOUND_CELLS + 2, n_c, n_t, 2)
    assert (band[0, ..., 0] == -1.0).all() and (band[0, ..., 1] == 2.0).all()
    assert (band[-1, ..., 0] == -1.0).all()
    srho, s1 = np.sqrt(rho), np.sqrt(1.0 - rho)
    zero = np.zeros(n_c, dtype=np.int64)
    edges = L.PD_BOUND_Z_LO + L.PD_BOUND_DZ * np.arange(L.PD_BOUND_CELLS + 1)
    zs = [*edges, *np.nextafter(edges, -np.inf), *np.nextafter(edges, np.inf),
          *rng.uniform(-4.5, 8.0, 100)]  # fmt: skip
    for z in zs:
        row = _bound_row_py(z)  # the cell the kernel gives it
        for c in range(n_c):
            for t in range(n_t):
                pd = cond_pd_py(c, t, 1.0, np.array([z]), thr, srho, s1, zero)
                lo, hi = band[row, c, t]
                assert not lo > pd and not hi < pd, (row, z, c, t, lo, pd, hi)
    # narrow: a uniform falls between a band's ends (a PD computed) seldom
    inner = band[1:-1, :20]
    assert np.mean(inner[..., 1] - inner[..., 0]) < 0.05
    # a uniform u below the lower end defaults and one at or above the upper end survives
    assert (band[1:-1, -1, :2, 0] < 0.0).all() and (band[1:, -1, :2, 1] <= 1e-300).all()
    assert (band[1:-1, -1, -1, 0] > 1.0 - 2e-9).all()
    one = NO_PD_BANDS
    assert np.array_equal(pd_bands(thr, rho, L.COPULA_STUDENT_T), one)
    wide = np.zeros((L.PD_BAND_MAX_DOUBLES // (2 * (L.PD_BOUND_CELLS + 2)) + 1, 1))
    assert np.array_equal(pd_bands(wide, np.full(wide.shape[0], 0.2), L.COPULA_GAUSSIAN), one)


def _many_per_class_model(copula: str, rho: float = 0.3) -> tuple[Any, Any]:
    """600 obligors in three PD classes, six annual periods, schedules ending in periods 4
    to 6: a compiled deal and its collateral model."""
    doc = base_deal(dates=annual_dates(6))
    doc["pool"]["obligors"] = [
        obligor(f"O{i}", 100.0, 0.05, n=4 + i % 3, kind="level_pay",
                pd={"kind": "flat", "annual": (0.05, 0.12, 0.25)[i % 3]})
        for i in range(600)
    ]  # fmt: skip
    doc["tranches"][0]["balance"] = sum(o["balance"] for o in doc["pool"]["obligors"])
    cd = ae.compile_deal(parse_deal(doc))
    return cd, compile_model(cd, mc(rho, copula=copula)).kernel


@pytest.mark.parametrize(("copula", "rho"), [("gaussian", 0.3), ("student_t", 0.3),
                                             ("gaussian", 0.97)])  # fmt: skip
def test_a_defaulters_period_is_the_first_whose_conditional_pd_exceeds_its_uniform(copula, rho):
    """The kernel's defaulters and default periods against a brute-force reading of the model
    (every class's conditional PD in every period, each obligor's uniform against them, in
    plain Python): equal on 40 paths, with the binary search (a class's first two defaulters
    on a path, its probes compared with the PD bands first under the Gaussian copula) and
    the count over a whole row (its later ones) both used."""
    from abs_engine.kernels import layout as L
    from abs_engine.kernels.collateral import (
        CS_STUDENT_SCALE,
        collateral_path,
        collateral_scratch,
        cond_pd_py,
    )
    from abs_engine.kernels.rng import STREAM_OBLIGORS, path_key_py, uniform_py

    cd, model = _many_per_class_model(copula, rho)
    assert (model.class_pd_band.shape[0] > 1) == (copula == "gaussian")
    n, n_c, n_t = cd.n_obligors, model.class_threshold.shape[0], cd.n_periods
    scratch = collateral_scratch(n, n_c, model.chol.shape[0], n_t, 0)
    whole_rows = 0
    for p in range(40):
        n_def = collateral_path(3, p, model, scratch)
        scale = scratch.stats[CS_STUDENT_SCALE]
        pd = np.array([[cond_pd_py(c, t, scale, scratch.z, model.class_threshold,
                                   model.class_sqrt_rho, model.class_sqrt_1mrho,
                                   model.class_factor) for t in range(n_t)]
                       for c in range(n_c)])  # fmt: skip
        key = path_key_py(3, p, STREAM_OBLIGORS)
        expected = []
        for i in range(n):
            u, c = uniform_py(key, i), model.obligor_class[i]
            below = np.nonzero(u < pd[c])[0]
            if below.size == 0:
                continue
            t = int(below[0])
            if model.sched[model.obligor_sched[i], t, L.SC_BALANCE] > 0.0:
                expected.append((i, t))
        got = list(
            zip(scratch.def_idx[:n_def].tolist(), scratch.def_t[:n_def].tolist(), strict=True)
        )
        assert got == expected
        whole_rows += int((scratch.row_state == -(p + 1)).sum())
    assert whole_rows > 40  # the count over whole rows was used, on most paths


def test_a_row_of_pds_that_decreases_keeps_the_binary_search():
    """A class whose row of conditional PDs decreases somewhere (thresholds out of order: no
    compiled model has them) is never counted over; each defaulter's period is then the
    binary search's (the Python twin, 20 paths)."""
    from abs_engine.kernels.bundles import frozen
    from abs_engine.kernels.collateral import (
        CS_STUDENT_SCALE,
        _default_period_py,
        collateral_draws_py,
        collateral_scratch_py,
    )
    from abs_engine.kernels.rng import STREAM_OBLIGORS, path_key_py, uniform_py

    cd, model = _many_per_class_model("gaussian")
    thr = model.class_threshold.copy()
    thr[:, 2] = thr[:, 4] + 0.3  # period 2 above periods 3 and 4
    no_bound = np.full((1, len(thr)), 2.0)  # the bounds were computed for the other thresholds
    bent = frozen(
        model._replace(class_threshold=thr, class_pd_bound=no_bound, class_pd_band=NO_PD_BANDS)
    )
    n_c, n_t = thr.shape
    scratch = collateral_scratch_py(cd.n_obligors, n_c, bent.chol.shape[0], n_t, 0)
    checked = 0
    for p in range(20):
        n_def = collateral_draws_py(5, p, bent, scratch)
        assert not (scratch.row_state == -(p + 1)).any()
        key = path_key_py(5, p, STREAM_OBLIGORS)
        pds = (scratch.stats[CS_STUDENT_SCALE], scratch.z, thr, bent.class_sqrt_rho,
               bent.class_sqrt_1mrho, bent.class_factor, scratch.cache, scratch.stamp)  # fmt: skip
        for i, t in zip(scratch.def_idx[:n_def], scratch.def_t[:n_def], strict=True):
            u = uniform_py(key, i)
            c = bent.obligor_class[i]
            assert t == _default_period_py(u, c, n_t - 1, 0, bent.class_pd_band, p + 1, *pds)
            checked += 1
    assert checked > 100


def test_prefetch_compiles_for_the_arrays_it_is_given_and_changes_nothing():
    """The booking's prefetch hint (an LLVM intrinsic) compiles for 1-d and 3-d arrays of
    floats and ints, at their first and last elements, returns 0 and leaves every array as it
    was; its Python twin does nothing; anything but an array is refused at typing."""
    from numba import njit
    from numba.core.errors import TypingError

    from abs_engine.kernels.prefetch import prefetch, prefetch_py

    @njit
    def hint(a3, a1, b1):
        s = 0
        for i in range(a3.shape[0]):
            for t in range(a3.shape[1]):
                s += prefetch(a3, i, t)
        for i in range(a1.shape[0]):
            s += prefetch(a1, i, 0) + prefetch(b1, i, 0)
        return s

    a3 = np.arange(2 * 12 * 4, dtype=float).reshape(2, 12, 4)
    a1, b1 = np.arange(5, dtype=np.int64), np.linspace(0.0, 1.0, 5)
    before = [x.copy() for x in (a3, a1, b1)]
    assert hint(a3, a1, b1) == 0 and prefetch_py(a3, 1, 11) == 0
    for x, y in zip((a3, a1, b1), before, strict=True):
        assert np.array_equal(x, y)

    @njit
    def misuse(x):
        return prefetch(x, 0, 0)

    with pytest.raises(TypingError):  # not an array: refused at typing, not at code generation
        misuse(1.0)


def test_candidates_are_the_obligors_under_their_own_class_bound():
    """The candidate passes (the uniforms against the largest bound, then each flagged one
    against its class's own), and the one loop of pools under ``CANDIDATE_PASSES_MIN``
    obligors, keep exactly the obligors whose uniform is not at or above their class's
    bound, in obligor order, compiled and in Python: classes of many bounds, bounds of 0,
    above 1 and NaN (no bound: every obligor of the class kept). A pass that skips the
    second test, or takes the smallest bound for the largest, fails."""
    from abs_engine.kernels._twin import jit_twin
    from abs_engine.kernels.collateral import (
        CANDIDATE_PASSES_MIN,
        _bound_max_py,
        _candidates_py,
    )
    from abs_engine.kernels.rng import uniform, uniform_py

    compiled = jit_twin(_candidates_py, {"uniform_py": uniform}, inline_source=(_bound_max_py,),
                        no_cpython_wrapper=False)  # fmt: skip
    rng = np.random.default_rng(20261130)
    specials = (np.nan, 0.0, 1.5, 1.0)
    sizes = (1, 2, CANDIDATE_PASSES_MIN - 1, CANDIDATE_PASSES_MIN, CANDIDATE_PASSES_MIN + 1)
    for case in range(50):
        n = sizes[case] if case < len(sizes) else int(rng.integers(1, 400))
        n_c = int(rng.integers(1, 7))
        bound = rng.uniform(0.0, 0.4, n_c) ** 2
        for c in np.flatnonzero(rng.random(n_c) < 0.25):
            bound[c] = specials[int(rng.integers(len(specials)))]
        cls = rng.integers(0, n_c, n).astype(np.int64)
        key = np.uint64(rng.integers(0, 2**63))
        u = np.array([uniform_py(key, i) for i in range(n)])
        want = np.flatnonzero(~(u >= bound[cls]))
        for fn in (compiled, _candidates_py):
            cand, flag = np.full(n, -1, dtype=np.int64), np.full(n, 7, dtype=np.uint8)
            k = fn(key, cls, bound, cand, flag)
            assert np.array_equal(cand[:k], want), (case, fn)
    assert _bound_max_py(np.array([0.1, np.nan, 0.3])) == 2.0
    assert _bound_max_py(np.array([0.1, 0.3, 0.2])) == 0.3


def test_pd_bounds_and_bands_change_no_path():
    """Obligors above their class's PD bound survive without their PD computed, and most of
    a defaulter's periods are decided by its PD band: every path's draws are bit for bit
    those without bounds or bands (300 paths of the bundled deal)."""
    from abs_engine.kernels.bundles import frozen
    from abs_engine.kernels.collateral import collateral_path, collateral_scratch

    cd = ae.compile_deal(ae.load_deal())
    model = compile_model(cd, ae.load_scenario("huake_mc")).kernel
    assert model.class_pd_bound.shape[0] > 1
    n_c = model.class_threshold.shape[0]
    assert model.class_pd_band.shape[0] > 1
    plain = frozen(model._replace(class_pd_bound=np.full((1, n_c), 2.0),
                                  class_pd_band=NO_PD_BANDS))  # fmt: skip
    band_only = frozen(model._replace(class_pd_bound=np.full((1, n_c), 2.0)))
    args = (cd.n_obligors, n_c, model.chol.shape[0], cd.n_periods,
            model.provider_threshold.shape[0])  # fmt: skip
    a, b = collateral_scratch(*args), collateral_scratch(*args)
    a2, b2 = collateral_scratch(*args), collateral_scratch(*args)
    n_default = 0
    computed = [0, 0]  # PDs by the last period computed on the path, with and without bounds
    earlier = [0, 0]  # and by earlier periods (the binary search's)
    # what the path computed and when, and the defaulter lists past their length (with
    # bounds they held the candidates first)
    scratch_only = ("cache", "stamp", "bound_row", "class_bound", "row_state", "def_idx", "def_t",
                    "flag")  # fmt: skip
    for p in range(300):
        n_def = collateral_path(11, p, model, a)
        n_default += n_def
        assert collateral_path(11, p, plain, b) == n_def
        for name, x, y in zip(a._fields, a, b, strict=True):
            if name not in scratch_only:
                assert np.array_equal(np.asarray(x).view(np.uint8), np.asarray(y).view(np.uint8))
        assert np.array_equal(a.def_idx[:n_def], b.def_idx[:n_def])
        assert np.array_equal(a.def_t[:n_def], b.def_t[:n_def])
        computed[0] += int((a.stamp[:, -1] == p + 1).sum())
        computed[1] += int((b.stamp[:, -1] == p + 1).sum())
        earlier[0] += int((a.stamp[:, :-1] == p + 1).sum())
        earlier[1] += int((b.stamp[:, :-1] == p + 1).sum())
        # bands without bounds (no compiled model has them) are not read: the factor's row
        # in the scratch, set only with bounds, is a path's before (the model's, on path p)
        collateral_path(11, p, model, a2)
        k = collateral_path(11, p + 1, band_only, a2)
        assert k == collateral_path(11, p + 1, plain, b2)
        assert np.array_equal(a2.def_t[:k], b2.def_t[:k]) and np.array_equal(a2.flows, b2.flows)
    assert n_default > 50
    assert computed[1] == 300 * n_c and computed[0] < computed[1] / 2  # the bounds were used
    assert earlier[0] < earlier[1] / 2  # and the bands


def test_an_obligor_prepaid_in_full_cannot_default():
    """A default is counted only on a balance left after prepayments: with a CPR of 100% the
    whole pool prepays in the first period, and an obligor drawn to default later has nothing
    to default on (every path counted up to 8 defaults with a default rate of 0 before).
    Paths that default in the first period count as before."""
    sc = ae.load_scenario("huake_mc")
    doc = sc.model_dump(mode="json", exclude_none=True)
    doc["prepayment"] = {"cpr": 1.0}
    doc["defaults"]["pd_multiplier"] = 40.0
    prepaid = MonteCarloScenario.model_validate(doc)
    res = ae.simulate(None, prepaid, n_paths=2_000, seed=3, keep_paths=True, progress=False)
    count, rate = res.paths["pool.default_count"], res.paths["pool.default_rate"]
    assert ((count > 0) == (rate > 0)).all()
    assert (count > 0).mean() > 0.05  # first-period defaults still happen
    hist = res.default_count_hist
    assert hist[0] == (count == 0).sum()


def test_cash_flows_split_support_from_loss_compensation_as_the_pool_does():
    """``pool.support_paid`` in the cash flows counted loss compensation too, while the pool
    metric of that name, the tranches' support received and the deterministic summary count
    guarantees and undertakings only: a validator's bundled deal with a 50% compensation
    fund summed to 1,740,334 in the cash flows against 422,150. The cash flows carry
    compensation in ``pool.compensation_received``, and each column sums over the periods to
    its pool metric."""
    doc = ae.load_deal().model_dump(mode="json", exclude_none=True)
    doc["support"] = [*doc["support"], {"kind": "loss_compensation", "name": "comp",
                                        "provider": {"name": "Gov"}, "share": 0.5,
                                        "lag_periods": 1}]  # fmt: skip
    res = ae.simulate(parse_deal(doc), n_paths=3_000, seed=1, progress=False)
    cf, pool = res.cashflows, res.pool["mean"]
    for column, metric in (("pool.support_paid", "support_paid"),
                           ("pool.compensation_received", "compensation_received")):  # fmt: skip
        assert pool[metric] > 0.0, metric
        assert cf[column].sum() == pytest.approx(pool[metric], rel=1e-12), metric


def test_a_histogram_bin_is_clamped_before_its_integer_conversion():
    """The histograms' bin of a value, compiled and in the Python twin, against the bin's
    definition (floor((v - lo) / width · n) clamped to the end bins), for values far outside
    the range too: a float of 2^63 or more converted to an integer is undefined compiled
    (x86 gave -2^63, the first bin, for a coverage ratio of 10^17); +inf goes to the last
    bin, -inf and NaN to the first."""
    from numba import njit

    from abs_engine.kernels.montecarlo import _bin as _bin_kernel
    from abs_engine.kernels.montecarlo import _bin_py

    @njit
    def _bin(v, lo, width, n_float, top):  # the kernels' own call (no Python wrapper)
        return _bin_kernel(v, lo, width, n_float, top)

    n = 4000
    lo, width = 0.0, 5.0
    edges = lo + width * np.arange(n + 1) / n
    values = [*edges, *np.nextafter(edges, -np.inf), *np.nextafter(edges, np.inf),
              -1.0, -1e-300, 0.0, -0.0, 4.999999, 5.0, 5.5, 1e15, 1.2e16, 1e17, 2.0**63,
              -(2.0**63), 1e300, -1e300, np.inf, -np.inf]  # fmt: skip
    for v in values:
        x = (v - lo) / width * float(n)
        want = int(np.clip(np.floor(x), 0, n - 1))  # the definition, in floats: no overflow
        assert _bin_py(v, lo, width, float(n), n - 1) == want, v
        assert _bin(v, lo, width, float(n), n - 1) == want, v
    nan = np.nan
    assert _bin(nan, lo, width, float(n), n - 1) == 0 == _bin_py(nan, lo, width, float(n), n - 1)
