"""Importance sampling (``sampling="importance"``): unbiased against crude sampling and against
exact finite-pool values down to expected losses of 1e-10, the weights' bookkeeping (zero
shifts are crude sampling bit for bit), reproducibility, and bad arguments."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import binom_pmf, homogeneous_deal, mc, run_cli
from scipy import integrate, special, stats

import abs_engine as ae
from abs_engine.compile.deal import compile_deal
from abs_engine.compile.model import compile_model
from abs_engine.compile.sampling import ImportanceSampling, choose_importance_sampling
from abs_engine.errors import ArgumentTypeError, InputError

K_SE = 4.0


def _simpson(x: np.ndarray) -> np.ndarray:
    """Simpson's weights on an evenly spaced grid with an even number of intervals."""
    c = np.ones(len(x))
    c[1:-1:2], c[2:-1:2] = 4.0, 2.0
    return c * (x[1] - x[0]) / 3.0


def exact_senior_el(
    n: int, pd: float, rho: float, lgd: float, a: float, copula: str = "gaussian", nu: float = 6
) -> float:
    """Expected loss (share of the tranche) of the senior [a, 1] of a homogeneous one-period
    pool of ``n`` obligors: the finite-pool conditional binomial, integrated by Simpson's rule
    over the factor on [-12, 12] (and, Student-t, over the log of the chi-square mixing
    variable between its 1e-13 quantiles). Checked against adaptive quadrature (scipy's
    quad, interval by interval): the same to 1e-12 relative, for ELs down to 1e-9."""
    k = np.arange(n + 1)
    pay = np.minimum(np.maximum(k * lgd / n - a, 0.0), 1.0 - a) / (1.0 - a)
    thr = special.stdtrit(nu, pd) if copula == "student_t" else special.ndtri(pd)
    z = np.linspace(-12.0, 12.0, 4801 if copula == "gaussian" else 1201)
    wz = stats.norm.pdf(z) * _simpson(z)
    if copula == "gaussian":
        scale, ww = np.ones(1), np.ones(1)
    else:
        lw = np.linspace(np.log(stats.chi2.ppf(1e-13, nu)), np.log(stats.chi2.ppf(1 - 1e-13, nu)),
                         121)  # fmt: skip
        w = np.exp(lw)
        scale, ww = np.sqrt(w / nu), stats.chi2.pdf(w, nu) * w * _simpson(lw)
    p = special.ndtr((thr * scale[:, None] - np.sqrt(rho) * z[None, :]) / np.sqrt(1 - rho))
    # C(N,k) p^k (1 − p)^(N−k) directly: scipy's binom.pmf overflows at p near 0 and 1
    given = binom_pmf(n, p.ravel()).reshape(*p.shape, n + 1) @ pay  # [W, Z]
    return float(ww @ given @ wz)


def test_the_exact_values_agree_with_adaptive_quadrature():
    """The grid integral against scipy's adaptive quad, for one Gaussian senior."""
    n, pd, rho, lgd, a = 100, 0.01, 0.2, 0.6, 0.3
    k = np.arange(n + 1)
    pay = np.minimum(np.maximum(k * lgd / n - a, 0.0), 1.0 - a) / (1.0 - a)
    thr = special.ndtri(pd)

    def f(z: float) -> float:
        p = special.ndtr((thr - np.sqrt(rho) * z) / np.sqrt(1 - rho))
        return float(stats.norm.pdf(z) * (stats.binom.pmf(k, n, p) * pay).sum())

    edges = np.linspace(-12, 12, 49)
    quad = sum(integrate.quad(f, lo, hi, epsabs=0, epsrel=1e-10, limit=200)[0]
               for lo, hi in zip(edges[:-1], edges[1:], strict=True))  # fmt: skip
    assert exact_senior_el(n, pd, rho, lgd, a) == pytest.approx(quad, rel=1e-9)


# --- exact rare-event values -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("attach", "max_rel_se"),
    [(0.1, 0.05), (0.2, 0.08), (0.3, 0.1), (0.35, 0.12)],
)
def test_gaussian_senior_el_matches_the_conditional_binomial(attach, max_rel_se):
    """N = 100, PD 1%, ρ = 0.2, 40% recovery: senior ELs from about 2e-5 down to 1e-9, each
    within 4 SE of the exact value, at a relative SE crude sampling could not reach (crude
    20,000 paths resolve nothing below 5e-5)."""
    n, pd, rho, rec = 100, 0.01, 0.2, 0.4
    exact = exact_senior_el(n, pd, rho, 1 - rec, attach)
    res = ae.simulate(
        homogeneous_deal(n, pd, [0.0, attach]), mc(rho, recovery=rec), n_paths=20_000,
        seed=5, sampling="importance", progress=False,
    )  # fmt: skip
    row = res.tranches.iloc[0]
    assert 1e-10 < exact < 1e-4
    assert abs(row.expected_loss - exact) <= K_SE * row.expected_loss_se, (exact, row)
    assert row.expected_loss_se <= max_rel_se * exact
    vr = res.sampling["variance_reduction"]["T0"]["expected_loss"]
    assert vr > 100  # against crude sampling, estimated in the run
    # crude sampling's relative standard error at the same 20,000 paths, from the run's own
    # estimate of the crude variance: 30% at the 2e-5 senior, thousands of % below 1e-8
    crude_rel_se = row.expected_loss_se / exact * np.sqrt(vr)
    assert crude_rel_se > 0.25 and crude_rel_se > 10 * row.expected_loss_se / exact


@pytest.mark.slow  # the exact value is a double integral: about 5 s
def test_student_t_senior_el_matches_the_conditional_binomial():
    """Student-t (ν = 6): the factor shift and the chi-square scaling of the mixing variable
    together; the importance-sampled EL is within 4 SE of the exact one."""
    n, pd, rho, rec, a = 100, 0.01, 0.2, 0.4, 0.25
    exact = exact_senior_el(n, pd, rho, 1 - rec, a, copula="student_t", nu=6)
    res = ae.simulate(
        homogeneous_deal(n, pd, [0.0, a]), mc(rho, recovery=rec, copula="student_t", nu=6),
        n_paths=40_000, seed=8, sampling="importance", progress=False,
    )  # fmt: skip
    row = res.tranches.iloc[0]
    assert res.sampling["mix_scale"] < 1.0
    assert abs(row.expected_loss - exact) <= K_SE * row.expected_loss_se, (exact, row)
    assert row.expected_loss_se <= 0.15 * exact


# --- unbiased on the bundled deal ------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled_pair():
    crude = ae.simulate(n_paths=40_000, seed=3, progress=False)
    imp = ae.simulate(n_paths=40_000, seed=3, sampling="importance", progress=False)
    return crude, imp


def test_importance_and_crude_agree_where_crude_is_precise(bundled_pair):
    """The bundled deal: every tranche's EL and shortfall probability, and the pool's default
    and loss rates, agree within 4 combined standard errors."""
    crude, imp = bundled_pair
    for col in ("expected_loss", "default_probability", "wal_years"):
        for a, b in zip(crude.tranches.itertuples(), imp.tranches.itertuples(), strict=True):
            se = np.hypot(getattr(a, f"{col}_se"), getattr(b, f"{col}_se"))
            assert abs(getattr(a, col) - getattr(b, col)) <= K_SE * se, (col, a.tranche)
    for metric in ("default_rate", "loss_rate", "provider_default_probability"):
        a, b = crude.pool.loc[metric], imp.pool.loc[metric]
        assert abs(a["mean"] - b["mean"]) <= K_SE * np.hypot(a["se"], b["se"]), metric


def test_weights_average_to_one_and_the_senior_gains(bundled_pair):
    """The likelihood-ratio weights average to 1 within 4 SE; aimed at the senior, whose rare
    event is the provider's default with pool losses, the provider's normal is shifted and
    the in-run variance reduction of A's expected loss is well above 1."""
    _, imp = bundled_pair
    s = imp.sampling
    assert s["method"] == "importance" and s["target_tranche"] == "A"
    assert abs(s["weight_mean"] - 1.0) <= K_SE * s["weight_mean_se"]
    assert s["provider_shift"][0] < -0.5 and s["factor_shift"][0] < 0.0
    assert s["variance_reduction"]["A"]["expected_loss"] > 5.0
    assert 1 <= s["effective_sample_size"] <= imp.n_paths
    a_crude = bundled_pair[0].tranches.iloc[0]
    a_imp = imp.tranches.iloc[0]
    assert a_imp.expected_loss_se < 0.5 * a_crude.expected_loss_se


def test_weighted_histograms_hold_the_weights(bundled_pair):
    """Under importance sampling the histograms hold path weights: the loss-rate histogram's
    total is the weights' sum, and its upper-tail share estimates the crude one."""
    crude, imp = bundled_pair
    assert imp.loss_rate_hist.dtype == np.float64 and crude.loss_rate_hist.dtype == np.int64
    assert imp.loss_rate_hist.sum() == pytest.approx(imp.sampling["weight_mean"] * imp.n_paths)
    q_c, q_i = crude.loss_rate_quantile(0.9), imp.loss_rate_quantile(0.9)
    assert abs(q_c - q_i) <= 0.02


# --- the weights' bookkeeping and reproducibility -----------------------------------------------


def test_zero_shifts_are_crude_sampling():
    """An ImportanceSampling with no shift gives weights of exactly 1: every mean equals the
    crude run's bit for bit; standard errors: the loss-like figures' exactly (the same
    formula), the others' but for the factor sqrt((k − 1) / k) between the self-normalised
    estimator's delta-method variance (over k, the paths defining the figure) and the sample
    variance (over k − 1)."""
    cd = compile_deal(ae.load_deal())
    sc = ae.load_scenario("huake_mc")
    model = compile_model(cd, sc)
    none = ImportanceSampling(np.zeros(model.chol.shape[0]),
                              np.zeros(model.provider_threshold.shape[0]))  # fmt: skip
    n = 5_000
    a = ae.simulate(cd, sc, n_paths=n, seed=2, progress=False)
    b = ae.simulate(cd, sc, n_paths=n, seed=2, progress=False, sampling=none)
    means = [c for c in a.tranches.select_dtypes("number").columns if not c.endswith("_se")]
    ses = [c for c in a.tranches.columns if c.endswith("_se")]
    np.testing.assert_array_equal(a.tranches[means].to_numpy(), b.tranches[means].to_numpy())
    np.testing.assert_array_equal(a.pool["mean"].to_numpy(), b.pool["mean"].to_numpy())
    for x, y in ((a.tranches[ses], b.tranches[ses]), (a.pool["se"], b.pool["se"])):
        # within a factor sqrt((k - 1) / k), k >= 1,000 paths defining the figure
        np.testing.assert_allclose(y.to_numpy(dtype=float), x.to_numpy(dtype=float), rtol=1e-3)
    # the shortfall probability and EL are loss-like: their SEs are the crude ones exactly
    for col in ("expected_loss_se", "default_probability_se"):
        np.testing.assert_array_equal(a.tranches[col].to_numpy(), b.tranches[col].to_numpy())
    np.testing.assert_array_equal(a.loss_rate_hist, b.loss_rate_hist)
    assert b.sampling["effective_sample_size"] == n and b.sampling["weight_mean"] == 1.0
    # the coverage ratio's mean and SE and every cash flow's mean: the crude ones
    cols = ["coverage_ratio", "coverage_ratio_se", "A.interest_paid", "pool.defaults"]
    np.testing.assert_allclose(b.cashflows[cols].to_numpy(float),
                               a.cashflows[cols].to_numpy(float), rtol=2e-3)  # fmt: skip


def test_unit_weights_only_where_no_draw_is_weighted():
    """The runs whose histograms are kept a row a kernel thread (whole path counts) are those
    whose every weight is exactly 1: crude sampling, or importance sampling with every shift
    zero; any factor or provider shift, Student-t mixing scale, twist or conditional Monte
    Carlo keeps them a row a block. Checked against the draws: a run the predicate calls
    unit-weighted has every path's weight 1.0."""
    import dataclasses

    from abs_engine.compile.sampling import with_sampling
    from abs_engine.simulation import unit_weights

    cd = compile_deal(ae.load_deal())
    model = compile_model(cd, ae.load_scenario("huake_mc"))
    n_f, n_s, n = model.chol.shape[0], model.provider_threshold.shape[0], cd.n_obligors
    none = ImportanceSampling(np.zeros(n_f), np.zeros(n_s))
    assert unit_weights(model.kernel) and unit_weights(with_sampling(model, none).kernel)
    weighted = [
        dataclasses.replace(none, factor_shift=np.full(n_f, -0.5)),
        dataclasses.replace(none, provider_shift=np.full(n_s, -0.5)),
        dataclasses.replace(none, mix_scale=0.8),
        dataclasses.replace(none, twist_weight=np.ones(n), twist_level=3.0),
        dataclasses.replace(none, provider_cmc=True),
    ]
    for sampling in weighted:
        assert not unit_weights(with_sampling(model, sampling).kernel), sampling
    res = ae.simulate(cd, "huake_mc", n_paths=2_000, seed=3, progress=False, sampling=none)
    assert res.sampling["weight_mean"] == 1.0 and res.sampling["effective_sample_size"] == 2_000


def test_importance_sampling_is_reproducible_for_any_threads_and_batches():
    kw = {"n_paths": 9_000, "seed": 4, "sampling": "importance", "progress": False}
    a = ae.simulate(threads=1, batch_blocks=1, **kw)
    b = ae.simulate(threads=2, batch_blocks=3, **kw)
    num = a.tranches.select_dtypes("number").columns
    np.testing.assert_array_equal(a.tranches[num].to_numpy(), b.tranches[num].to_numpy())
    np.testing.assert_array_equal(a.loss_rate_hist, b.loss_rate_hist)
    assert a.sampling == b.sampling


def test_the_analytic_shift_reaches_the_attachment():
    """The analytic rule's factor value makes the pool's conditional expected loss equal the
    senior's attachment (a homogeneous pool, where both are known)."""
    from abs_engine.compile.sampling import conditional_pool_loss

    cd = homogeneous_deal(50, 0.02, [0.0, 0.2])
    model = compile_model(cd, mc(0.3, recovery=0.5))
    isp = choose_importance_sampling(cd, model)
    assert isp.target == "T0" and isp.factor_value < -1
    loss = conditional_pool_loss(cd, model, isp.factor_value)
    assert loss == pytest.approx(0.2 * cd.original_pool, rel=1e-6)
    # by hand: 50 obligors of 1m, LGD 0.5, P(default | z) at z*
    p = special.ndtr((special.ndtri(0.02) - np.sqrt(0.3) * isp.factor_value) / np.sqrt(0.7))
    assert loss == pytest.approx(50 * 1e6 * 0.5 * p, rel=1e-12)


def test_a_first_loss_tranche_is_aimed_at_one_default():
    """A tranche attached at 0 (here one note the size of the pool) was aimed at no loss: no
    shift, no twist, crude sampling under another name, and at PD 1e-6 an expected loss of
    0 ± 0 rated AAA without a word (exactly PD × LGD = 6e-7 whatever the copula). It is aimed
    at the smallest loss one default gives."""
    from abs_engine.compile.sampling import conditional_pool_loss

    cd = homogeneous_deal(20, 1e-6, [0.0])
    model = compile_model(cd, mc(0.2, recovery=0.4))
    isp = choose_importance_sampling(cd, model)
    assert isp.factor_value < -1 and isp.twist_level > 0.0
    one_default = cd.original_pool / 20 * 0.6
    assert conditional_pool_loss(cd, model, isp.factor_value) == pytest.approx(one_default)
    for seed in (2, 3):
        res = ae.simulate(cd, mc(0.2, recovery=0.4), n_paths=20_000, seed=seed,
                          sampling="importance", progress=False)  # fmt: skip
        el, se = res.tranches.loc[0, ["expected_loss", "expected_loss_se"]]
        assert se > 0 and abs(el - 6e-7) < K_SE * se, (seed, el, se)
        assert not any(w.startswith("no path lost") for w in res.sampling["warnings"])


def test_the_target_without_a_loss_path_is_warned_of():
    """An importance-sampled run whose target tranche saw no loss said nothing: 0 ± 0."""
    from abs_engine.metrics.sampling import degeneracy_warnings

    quiet = {"effective_sample_size": 898.0, "weight_mean": 1.0, "weight_mean_se": 0.01}
    (w,) = degeneracy_warnings(["A", "B"], [0.0, 0.0], quiet, target="A")
    assert w.startswith("no path lost on A") and "0 ± 0" in w


# --- structuring --------------------------------------------------------------------------------


@pytest.mark.slow  # a few seconds: run by .ci/run and -m slow
def test_size_with_importance_sampling_gives_an_interval():
    deal = ae.load_deal()
    sc = ae.load_scenario("huake_mc")
    out = ae.size_tranche(deal, sc, "A", target_el=1e-5, n_paths=4_000, sampling="importance",
                          progress=False)  # fmt: skip
    assert out["sampling"] == "importance"
    lo, hi = out["balance_ci95"]
    assert lo <= out["balance"] <= hi and hi > lo
    assert out["metric"] <= out["limit"]


@pytest.mark.slow  # a sizing under importance sampling: about 20 s
def test_size_reads_the_rating_threshold_at_a_crude_wal():
    """Under importance sampling the WAL is a weighted mean over a few effective paths and
    biased past its SE (a validator's senior read 0.587-0.647 years for a true 0.516, and
    was sized 11 SEs over its AAA limit): ``size`` reads the threshold at the WAL of a crude
    run (:data:`WAL_CRUDE_PATHS` paths, common random numbers) at each balance."""
    from abs_engine.compile.patch import with_tranche_terms
    from abs_engine.solvers.structuring import WAL_CRUDE_PATHS

    deal, sc = ae.load_deal(), ae.load_scenario("huake_mc")
    out = ae.size_tranche(deal, sc, "A", target_rating="AA", n_paths=4_096, seed=5,
                          sampling="importance", progress=False)  # fmt: skip
    total = sum(t.balance for t in deal.tranches)
    terms = {"A": {"balance": out["balance"]}, "Sub": {"balance": total - out["balance"]}}
    cd = with_tranche_terms(ae.compile_deal(deal), terms)
    crude = ae.simulate(cd, sc, n_paths=WAL_CRUDE_PATHS, seed=5, progress=False)
    assert out["wal_years"] == crude.tranches.iloc[0].wal_years
    assert out["limit"] == ae.load_rating_table().threshold("AA", out["wal_years"])


# --- bad arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "exc", "message"),
    [
        ({"sampling": "clever"}, InputError, "sampling must be one of"),
        ({"sampling": 3}, ArgumentTypeError, "sampling must be one of"),
        ({"sampling": "importance", "sampling_target": "Z"}, InputError, "unknown tranche 'Z'"),
        ({"sampling": "importance", "sampling_target": 1}, ArgumentTypeError, "tranche name"),
        ({"sampling_target": "A"}, InputError, "for importance sampling"),
        ({"sampling": "importance", "keep_paths": True}, InputError, "keep_paths"),
        ({"sampling": "importance", "ledger_paths": [0]}, InputError, "ledger_paths"),
    ],
)
def test_bad_sampling_arguments(kw, exc, message):
    with pytest.raises(exc, match=message):
        ae.simulate(n_paths=100, progress=False, **kw)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--sampling", "clever"], "--sampling"),
        (["run", "-s", "huake_base", "--sampling", "importance"], "--sampling"),
        (["run", "--sampling-target", "A", "--paths", "100"], "--sampling-target"),
        (["run", "--sampling", "importance", "--sampling-target", "Z", "--paths", "100"],
         "unknown tranche 'Z'"),
        (["size", "--tranche", "A", "--target", "AAA", "--sampling", "x"], "--sampling"),
    ],
)  # fmt: skip
def test_bad_sampling_options(args, message):
    r = run_cli(*args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr


def test_a_run_with_no_variance_prints_no_nan():
    """Every PD zero under importance sampling: the in-run variance reduction is 0/0 (null in
    the JSON); the console line says it is not defined instead of printing "nanx smaller"."""
    from abs_engine.report.console import sampling_text

    doc = {"target_tranche": "A", "effective_sample_size": 2000.0, "weight_mean": 1.0,
           "weight_mean_se": 0.0}  # fmt: skip
    for vr in (float("nan"), None, float("inf")):
        line = sampling_text({**doc, "variance_reduction": {"A": {"expected_loss": vr}}})
        assert "nan" not in line and "inf" not in line and "not defined" in line, line
    line = sampling_text({**doc, "variance_reduction": {"A": {"expected_loss": 12.34}}})
    assert "12.3x smaller than crude sampling's" in line


def test_every_run_says_how_many_effective_paths_its_expected_losses_rest_on():
    """``sampling["effective_loss_paths"]``, crude runs included: (Σv)² / Σv² over the paths'
    own losses (every weight 1), checked against the kept per-path figures."""
    res = ae.simulate(n_paths=4_000, seed=6, keep_paths=True, progress=False)
    assert res.sampling["method"] == "crude"
    for name, k in res.sampling["effective_loss_paths"].items():
        v = res.paths[f"{name}.expected_loss"].to_numpy()
        v = v[~np.isnan(v)]
        assert k == pytest.approx(v.sum() ** 2 / (v * v).sum(), rel=1e-9), name


def test_a_size_resting_on_few_loss_paths_says_so():
    """``size``'s answer on a handful of loss paths (a target EL of 1e-12: 20,000 paths gave
    a ±0.5% interval on 4.7 effective paths, without a word) or on none at all warns; a
    well-measured one and a tranche that meets the target at its full size do not."""
    from abs_engine.report.console import size_text

    out = {"balance": 6e6, "share_of_capital": 0.06, "basis": "el", "metric": 1e-13,
           "metric_se": 1e-14, "limit": 1e-12, "wal_years": 0.3, "balance_ci95": (5.9e6, 6.1e6),
           "sampling": "crude", "effective_sample_size": 20_000.0}  # fmt: skip
    few = size_text("A", "EL 0%", {**out, "effective_loss_paths": 4.7})
    assert "rests on 4.7 effective paths" in few and "--sampling importance" in few
    aimed = size_text("A", "EL 0%", {**out, "effective_loss_paths": 4.7, "sampling": "importance"})
    assert "rests on 4.7" in aimed and "--sampling importance" not in aimed
    none = size_text("A", "EL 0%", {**out, "metric": 0.0, "effective_loss_paths": 0.0})
    assert "no path lost at this balance: 20,000 paths" in none
    one = {**out, "metric_se": float("nan"), "effective_sample_size": 1.0}  # --paths 1
    one_text = size_text("A", "EL 0%", {**one, "metric": 0.0, "effective_loss_paths": 0.0})
    assert "nan" not in one_text and "± n/a" in one_text and "1 path cannot" in one_text
    full_size = {"effective_loss_paths": 0.0, "metric": 0.0, "share_of_capital": 1.0}
    for quiet in ({"effective_loss_paths": 1_500.0}, full_size):
        assert "warning" not in size_text("A", "EL 0%", {**out, **quiet})
    cd = ae.compile_deal(ae.load_deal())
    sized = ae.size_tranche(cd.deal, ae.load_scenario("huake_mc"), "A", target_el=1e-12,
                            n_paths=2_000, sampling="crude", progress=False)  # fmt: skip
    assert sized["effective_loss_paths"] < 100


def test_run_json_says_how_it_sampled():
    import json

    r = run_cli("run", "--paths", "3000", "--sampling", "importance", "--json", "--no-progress")
    doc = json.loads(r.stdout)
    assert doc["sampling"]["method"] == "importance"
    assert doc["stamp"]["sampling"] == "importance"
    assert doc["sampling"]["effective_sample_size"] > 0
    assert "variance_reduction" in doc["sampling"]


# --- honest standard errors ---------------------------------------------------------------------


@pytest.mark.slow  # 60 runs, each with its pilot: about 40 s
def test_standard_errors_are_calibrated_over_many_seeds():
    """z = (estimate − exact) / SE over 60 seeds of a 4e-7 senior (2,000 paths each): the
    z-scores' standard deviation is near 1 and their mean near 0."""
    n, pd, rho, rec, a = 100, 0.01, 0.2, 0.4, 0.2
    exact = exact_senior_el(n, pd, rho, 1 - rec, a)
    cd = homogeneous_deal(n, pd, [0.0, a])
    z = []
    for seed in range(60):
        res = ae.simulate(cd, mc(rho, recovery=rec), n_paths=2_000, seed=seed,
                          sampling="importance", progress=False)  # fmt: skip
        row = res.tranches.iloc[0]
        z.append((row.expected_loss - exact) / row.expected_loss_se)
    z = np.array(z)
    assert 0.7 <= z.std(ddof=1) <= 1.4, z
    assert abs(z.mean()) <= 0.5, z


def test_degenerate_weights_are_detected_and_said():
    """A factor shift without twisting on a 10-obligor pool (EL 2e-8): the estimate rests
    on few effective paths, and the run says so; with twisting (the default) it does not."""
    from abs_engine.importance import tuned_sampling

    cd = homogeneous_deal(10, 0.02, [0.0, 0.5])
    sc = mc(0.2, recovery=0.4)
    shift_only = tuned_sampling(cd, compile_model(cd, sc), 5, twist=False)
    res = ae.simulate(cd, sc, n_paths=20_000, seed=5, sampling=shift_only, progress=False)
    assert res.sampling["effective_loss_paths"]["T0"] < 100
    assert any(w.startswith("T0's expected loss rests on") for w in res.sampling["warnings"])
    good = ae.simulate(cd, sc, n_paths=20_000, seed=5, sampling="importance", progress=False)
    assert good.sampling["effective_loss_paths"]["T0"] > 1_000
    assert not any(w.startswith("T0's") for w in good.sampling["warnings"])


def test_the_providers_default_integrated_out_matches_its_exact_probability(bundled_pair):
    """Under conditional Monte Carlo each path carries the provider's default probability given
    the factors; their weighted mean is the provider's unconditional probability of defaulting
    within the deal's life, known exactly from its threshold."""
    _, imp = bundled_pair
    assert imp.model.is_cmc_provider == 1 and imp.sampling["twisting"]
    exact = float(special.ndtr(imp.model.provider_threshold[0, -1]))
    row = imp.pool.loc["provider_default_probability"]
    assert abs(row["mean"] - exact) <= K_SE * row["se"], (row["mean"], exact, row["se"])
    assert row["se"] < 0.002  # crude sampling's SE at 40,000 paths is about 0.00085


def test_python_twin_agrees_under_twisting_and_conditional_monte_carlo():
    """The plain-Python twins of the importance-sampling kernels (twisted obligor defaults,
    the conditional-Monte-Carlo block kernel) give bitwise the compiled run's figures on the
    bundled deal, where both are on."""
    kw = {"n_paths": 100, "seed": 7, "sampling": "importance", "progress": False}
    compiled = ae.simulate(**kw)
    twin = ae.simulate(jit=False, **kw)
    assert compiled.sampling["twisting"] and compiled.sampling["provider_conditional"]
    num = compiled.tranches.select_dtypes("number").columns
    a, b = compiled.tranches[num].to_numpy(), twin.tranches[num].to_numpy()
    assert np.array_equal(a, b, equal_nan=True)
    np.testing.assert_array_equal(compiled.loss_rate_hist, twin.loss_rate_hist)
    assert compiled.sampling == twin.sampling


@pytest.mark.parametrize("nu", [2.5, 5.0, 30.0])
def test_the_defensive_mixture_keeps_the_weights_bounded(nu):
    """W ~ chi-square(ν) drawn from q = a·f + (1 − a)·f(·/c)/c (a share a as the model draws
    it, the rest as c·W): the kernel's log q/f is that of scipy's densities, the likelihood
    ratio f/q integrates against q to 1 and is at most 1/a, so its second moment is finite
    for every scale (drawn as c·W alone it was infinite for c <= 1/2, and the scale was
    floored there)."""
    from abs_engine.kernels.collateral import log_mixture_density_py
    from abs_engine.kernels.layout import IS_MIX_DEFENSIVE as a

    for c in (1e-3, 0.05, 0.5, 0.9):

        def q(w: float, c: float = c) -> float:
            return a * stats.chi2.pdf(w, nu) + (1 - a) * stats.chi2.pdf(w / c, nu) / c

        for w in (1e-6, 0.01 * c * nu, c * nu, nu, 5 * nu):
            expect = np.log(q(w)) - stats.chi2.logpdf(w, nu)
            assert log_mixture_density_py(w, nu, c) == pytest.approx(expect, rel=1e-9, abs=1e-12)

        def ratio(w: float, c: float = c) -> float:
            return float(np.exp(-log_mixture_density_py(w, nu, c)))

        one = integrate.quad(lambda w: ratio(w) * q(w), 0, np.inf, limit=400)[0]
        assert one == pytest.approx(1.0, rel=1e-6), c
        assert max(ratio(w) for w in np.geomspace(1e-8, 50 * nu, 400)) <= 1 / a + 1e-12


def test_student_t_rare_losses_driven_by_small_mixing_values_are_reached():
    """A validator's pool: 100 one-year obligors at PD 1e-4, ν = 4, ρ = 0.3, 40% recovery,
    senior above 20%. Its loss needs a small chi-square W, which c·W with c floored at
    2 − √2 could not reach: with the validator's coupons (exact EL 2.77e-6, AA) one seed
    gave 1.2e-9 ± 1.2e-9 (AAA) on one effective path. With the defensive mixture the pilot
    takes c near 0.008, and here (zero coupons: exact 3.32e-6) the estimate lies within reach
    of its standard error, on thousands of effective loss paths."""
    n, pd, rho, rec, a, nu = 100, 1e-4, 0.3, 0.4, 0.2, 4.0
    exact = exact_senior_el(n, pd, rho, 1 - rec, a, copula="student_t", nu=nu)
    assert 3.2e-6 < exact < 3.4e-6
    cd = homogeneous_deal(n, pd, [0.0, a])
    sc = mc(rho, recovery=rec, copula="student_t", nu=nu)
    for seed in (3,):  # the seed that was 2,300 standard errors off
        res = ae.simulate(cd, sc, n_paths=8_000, seed=seed, sampling="importance",
                          progress=False)  # fmt: skip
        row = res.tranches.iloc[0]
        assert abs(row.expected_loss - exact) <= K_SE * row.expected_loss_se, (seed, row)
        assert row.expected_loss_se < 0.05 * exact
        assert res.sampling["effective_loss_paths"]["T0"] > 1_000
        assert res.sampling["mix_scale"] < 0.1


def test_with_sampling_takes_a_mixing_scale_in_its_range():
    from abs_engine.compile.sampling import MIX_SCALE_MIN, with_sampling

    cd = compile_deal(ae.load_deal())
    model = compile_model(cd, ae.load_scenario("huake_mc"))
    none = ImportanceSampling(np.zeros(model.chol.shape[0]), np.zeros(1))
    for bad in (0.0, -0.5, MIX_SCALE_MIN / 2, 1.5, float("nan")):
        with pytest.raises(ValueError, match="mix_scale must be in"):
            with_sampling(model, dataclasses.replace(none, mix_scale=bad))
    with_sampling(model, dataclasses.replace(none, mix_scale=MIX_SCALE_MIN))


def test_an_expected_loss_estimated_above_one_is_warned_of():
    """The weighted mean Σw·v / P is unbiased, not bounded: with every PD near 1 the shifted
    sample put a tranche's expected loss at 1.026 with no warning."""
    res = ae.simulate(
        homogeneous_deal(20, 0.999999, [0.0, 0.25]), mc(0.2), n_paths=4_000, seed=1,
        sampling="importance", progress=False,
    )  # fmt: skip
    over = res.tranches[res.tranches.expected_loss > 1.0]
    assert len(over) > 0
    for name in over.tranche:
        assert any(w.startswith(f"{name}'s expected loss is estimated at")
                   for w in res.sampling["warnings"])  # fmt: skip


def test_a_pool_probability_estimated_above_one_is_warned_of():
    """The pool's figures too: with the provider in default from the start, its default
    probability (exactly 1) came out 1.014 ± 0.016, and the accelerated probability with it,
    without a word; so can an expected default count above the pool's obligors."""
    from abs_engine.kernels import layout as L
    from abs_engine.metrics.sampling import impossible_shares

    res = ae.simulate(None, "huake_mc_no_support", n_paths=5_000, seed=20250715,
                      sampling="importance", progress=False)  # fmt: skip
    over = res.pool[res.pool["mean"] > 1.0].index
    assert "provider_default_probability" in over
    for name in over:
        what = name.replace("_", " ")
        assert any(w.startswith(f"the pool's {what} is estimated at")
                   for w in res.sampling["warnings"]), name  # fmt: skip
    mean = np.zeros(L.N_MT + L.N_MP)
    mean[L.N_MT + L.MP_DEFAULT_COUNT] = 8.0002
    (w,) = impossible_shares(["A"], mean, n_obligors=8)
    assert w.startswith("the pool's expected default count is estimated at 8.0002, above 8")
    assert impossible_shares(["A"], mean, n_obligors=9) == []


def test_a_small_effective_sample_warns_about_the_figures_not_aimed_at():
    """Self-normalised means of WAL, yield and amounts paid rest on the effective sample
    (Σw)² / Σw²: below 100 paths they are biased by more than their standard errors (a
    validator's target-tranche WAL z-scores averaged −4 over 20 seeds at effective samples
    of 3 to 50, two of them without a word). The target tranche's thin loss is told to use
    more paths or crude sampling, not to aim at itself."""
    from abs_engine.metrics.sampling import degeneracy_warnings

    summary = {"effective_sample_size": 3.2, "weight_mean": 1.0, "weight_mean_se": 0.3}
    out = degeneracy_warnings(["A", "B"], [4.0, 4.0], summary, target="A")
    assert len(out) == 3
    assert "effective sample of 3.2 paths" in out[2] and "crude sampling" in out[2]
    assert "(--sampling-target)" not in out[0] and "crude sampling" in out[0]
    assert "aim the sampling at B (--sampling-target)" in out[1]
    # the figures it rests on: not B's expected loss and shortfall probability (it said
    # "every figure but the expected losses and shortfall probabilities")
    assert (
        "every figure but A's expected loss and shortfall probability (the expected losses "
        "and shortfall probabilities of B," in out[2]
    )
    quiet = {**summary, "effective_sample_size": 898.0}
    assert degeneracy_warnings(["A", "B"], [6e3, 2e3], quiet, target="A") == []
    # weights off 1 on a sample that is not small: B's figures named (a validator's B, not
    # aimed at, had its shortfall probability 6 SE low on 252 effective loss paths)
    off = {**quiet, "weight_mean": 0.016, "weight_mean_se": 0.006}
    (w,) = degeneracy_warnings(["A", "B", "E"], [6e3, 252.0, 2e3], off, target="A")
    assert "expected losses and shortfall probabilities of B, E," in w and "biased" in w


def test_a_solvers_importance_sampling_of_the_wrong_shape_is_a_solver_argument_error():
    """Shifts for 3 factors and 5 providers given to the solvers for the bundled deal (one
    factor, one provider): the same clear error as ``simulate`` gives, before any run (it was
    a plain ValueError from inside the first evaluation)."""
    from abs_engine.solvers import SolverError

    deal, sc = ae.load_deal(), ae.load_scenario("huake_mc")
    bad = ImportanceSampling(np.zeros(3), np.zeros(5))
    calls = [
        lambda: ae.size_tranche(deal, sc, "A", target_rating="AA", n_paths=1_000, sampling=bad),
        lambda: ae.solve_coupon(deal, sc, "A", ae.load_curve(0.03), n_paths=1_000,
                                sampling=bad),
    ]  # fmt: skip
    for call in calls:
        with pytest.raises(SolverError, match="sampling: factor_shift must have one value"):
            call()
