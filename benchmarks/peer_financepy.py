"""FinancePy beside the engine, on the same homogeneous pool.

FinancePy (``pip install financepy``, part of the ``dev`` and ``bench`` extras) is what a
quant would otherwise reach for: its one-factor credit models draw copula default times by
Monte Carlo and build semi-analytic loss distributions. The peer pool: N obligors of equal
size, a one-year horizon, annual PD ``pd``, one-factor copula with asset correlation ``rho``,
fixed recovery; tranches cut at attachment points with losses allocated reverse-sequentially
(in the engine: a deal with one bullet period and a sequential principal waterfall, so a
tranche's loss is exactly its slice of the pool loss).

For each tranche, expected loss as a fraction of the tranche, from
  * the engine's Monte Carlo (through its waterfall; standard error from the run),
  * FinancePy's Monte Carlo ``models.gauss_copula.default_times_gc`` (antithetic pairs;
    standard error from the pair means) and, for the Student-t copula,
    ``models.student_t_copula.StudentTCopula.default_times``,
  * FinancePy's semi-analytic loss distributions (``models.gauss_copula_onefactor``): the
    exact recursion ``homog_basket_loss_dbn`` and the adjusted binomial
    ``loss_dbn_hetero_adj_binomial`` (integration error far below the Monte Carlo error),
  * FinancePy's large-homogeneous-pool limit ``models.gauss_copula_lhp.tr_surv_prob_lhp``,
    which ignores granularity: exact only as N grows, so it is compared on a large pool too.

Agreement is stated as z = (engine − peer) / standard error (the engine's for the
semi-analytic values, the two runs' combined for FinancePy's Monte Carlo), beside the exact
finite-pool value from a SciPy quadrature, which also measures the LHP's granularity gap. The
z of one run is one draw: ``se_calibration`` repeats the run over many seeds to show the
engine's standard errors are calibrated. Speed: time per path of the two Monte Carlos on the
same pool, at several pool sizes.
"""

from __future__ import annotations

import time
from importlib import metadata
from typing import Any

import numpy as np

import abs_engine as ae
from abs_engine.schema import parse_deal
from abs_engine.schema.stochastic import MonteCarloScenario
from abs_engine.synthetic import one_period_deal

from .progress import measured
from .scaling import timed, warm

ATTACH = (0.0, 0.03, 0.07)


def financepy_version() -> str | None:
    """The installed FinancePy version, or None."""
    try:
        return metadata.version("financepy")
    except metadata.PackageNotFoundError:
        return None


class _Curve:
    """The survival curve attributes FinancePy's default-time samplers read (``times``/``qs``
    in 1.0, ``_times``/``_qs`` in 1.1): survival 1 - pd at one year, flat hazard after."""

    def __init__(self, pd: float):
        self.times = self._times = np.array([0.0, 1.0, 100.0])
        self.qs = self._qs = np.array([1.0, 1.0 - pd, (1.0 - pd) ** 100])


def layers(attach: tuple[float, ...]) -> list[tuple[float, float]]:
    """Tranche [attachment, detachment) pairs, most senior first (the engine's order)."""
    bounds = sorted(attach, reverse=True)
    return list(zip(bounds, [1.0, *bounds[:-1]], strict=True))


def peer_deal(n: int, pd: float, attach: tuple[float, ...] = ATTACH) -> ae.CompiledDeal:
    """:func:`abs_engine.synthetic.one_period_deal`, compiled: N obligors of 1,000,000 yuan,
    one annual bullet period, PD ``pd``; zero-coupon tranches cut at ``attach``, paid
    sequentially (so losses hit them reverse-sequentially)."""
    return ae.compile_deal(parse_deal(one_period_deal(n, pd, attach)))


def peer_scenario(rho: float, recovery: float, nu: float | None = None) -> MonteCarloScenario:
    """Fixed asset correlation ``rho``; Gaussian copula, or Student-t with ``nu`` degrees of
    freedom; recovery ``recovery`` received at default."""
    defaults: dict[str, Any] = {"correlation": {"kind": "fixed", "value": rho}}
    if nu is not None:
        defaults.update(copula="student_t", nu=nu)
    return MonteCarloScenario.model_validate(
        {
            "kind": "monte_carlo",
            "name": "peer",
            "defaults": defaults,
            "recovery": {"kind": "rate", "rate": recovery, "lag_periods": 0},
        }
    )


def _tranche_el(losses: np.ndarray, a: float, d: float) -> np.ndarray:
    """Loss of the [a, d) tranche as a fraction of its size, for pool loss fractions."""
    return np.minimum(np.maximum(losses - a, 0.0), d - a) / (d - a)


def finite_pool_el(
    n: int,
    pd: float,
    rho: float,
    recovery: float,
    attach: tuple[float, ...] = ATTACH,
    nu: float | None = None,
) -> np.ndarray:
    """Exact tranche ELs (most senior first) of the finite pool, from SciPy, independent of
    both the engine and FinancePy.

    Gaussian: the conditional binomial expectation integrated over the factor by adaptive
    quadrature, with breakpoints where the conditional loss crosses an attachment point.
    Student-t (``nu``): X_i = (sqrt(rho)·Z + sqrt(1-rho)·eps_i) / sqrt(W/nu), W ~ chi2(nu);
    the conditional binomial integrated over Z (200 Gauss-Hermite nodes) and W (120
    generalised Gauss-Laguerre nodes); meant for pools of a few hundred obligors."""
    from scipy import integrate, special, stats

    lgd, b = 1.0 - recovery, np.sqrt(rho)
    k = np.arange(n + 1)
    pays = [_tranche_el(lgd * k / n, a, d) for a, d in layers(attach)]
    if nu is not None:
        x, wx = special.roots_genlaguerre(120, nu / 2.0 - 1.0)
        wx = wx / special.gamma(nu / 2.0)  # W = 2x has the chi2(nu) law
        z, wz = np.polynomial.hermite_e.hermegauss(200)
        wz = wz / wz.sum()
        thr = stats.t.ppf(pd, nu) * np.sqrt(2.0 * x / nu)
        pz = stats.norm.cdf((thr[:, None] - b * z[None, :]) / np.sqrt(1.0 - rho)).ravel()
        pz = np.clip(pz, 1e-300, 1.0 - 1e-16)  # Boost's binomial pmf overflows at 0 and 1
        w = (wx[:, None] * wz[None, :]).ravel()
        dbn = np.zeros(n + 1)
        for chunk in range(0, pz.size, 2_000):
            sl = slice(chunk, chunk + 2_000)
            dbn += w[sl] @ stats.binom.pmf(k[None, :], n, pz[sl, None])
        return np.array([float(dbn @ pay) for pay in pays])
    c = stats.norm.ppf(pd)
    out = []
    for (a, d), pay in zip(layers(attach), pays, strict=True):

        def f(z: float, pay: np.ndarray = pay) -> float:
            p = stats.norm.cdf((c - b * z) / np.sqrt(1.0 - rho))
            return float(stats.binom.pmf(k, n, p) @ pay) * stats.norm.pdf(z)

        kinks = [
            (c - np.sqrt(1.0 - rho) * stats.norm.ppf(x / lgd)) / b for x in (a, d) if 0 < x < lgd
        ]
        out.append(integrate.quad(f, -9.0, 9.0, points=kinks or None, limit=400)[0])
    return np.array(out)


def se_calibration(n: int = 100, paths: int = 20_000, seeds: int = 100) -> dict:
    """Are the engine's standard errors right? z = (EL - exact) / SE over ``seeds``
    independent runs on the Gaussian peer pool: mean near 0 and standard deviation near 1
    (the sample standard deviation of s draws of N(0, 1) is within 1 ± 1.82/sqrt(s - 1) 99
    times in 100). Needs enough paths that many reach the senior tranche: with a few dozen,
    the estimated SE is itself noisy and z is skewed."""
    cd, sc = peer_deal(n, 0.03), peer_scenario(0.2, 0.4)
    exact = finite_pool_el(n, 0.03, 0.2, 0.4)
    zs = []
    for s in range(seeds):
        r = ae.simulate(cd, sc, n_paths=paths, seed=10_000 + s, progress=False)
        measured()
        el, se = r.tranches.expected_loss.to_numpy(), r.tranches.expected_loss_se.to_numpy()
        zs.append((el - exact) / se)
    z = np.array(zs)
    return {
        "obligors": n,
        "paths": paths,
        "seeds": seeds,
        "tranches": [f"[{a:.0%}, {d:.0%})" for a, d in layers(ATTACH)],
        "z_mean": z.mean(axis=0).tolist(),
        "z_std": z.std(axis=0, ddof=1).tolist(),
        "share_abs_z_above_2": (np.abs(z) > 2).mean(axis=0).tolist(),
    }


def _engine(n, pd, rho, recovery, attach, paths, nu=None, threads=None) -> tuple[Any, float]:
    """The engine's run and its wall-clock seconds (the whole ``simulate`` call)."""
    cd, sc = peer_deal(n, pd, attach), peer_scenario(rho, recovery, nu)
    warm(cd, sc, 256)  # compiled and warm, the deal-specialised kernel too
    t0 = time.perf_counter()
    res = ae.simulate(cd, sc, n_paths=paths, seed=1, threads=threads, progress=False)
    dt = time.perf_counter() - t0
    measured()
    return res, dt


def _peer_inputs(n: int, pd: float, rho: float) -> tuple[list[_Curve], np.ndarray]:
    """FinancePy's inputs for the peer pool: issuer curves and the full correlation matrix."""
    corr = np.full((n, n), rho)
    np.fill_diagonal(corr, 1.0)
    return [_Curve(pd) for _ in range(n)], corr


def _peer_mc(n, pd, rho, trials, nu=None, seed=7) -> tuple[np.ndarray, float]:
    """FinancePy's default counts by one year, shape (2, trials) (antithetic halves), and
    the wall-clock seconds it took."""
    from financepy.models.gauss_copula import default_times_gc
    from financepy.models.student_t_copula import StudentTCopula

    curves, corr = _peer_inputs(n, pd, rho)
    t0 = time.perf_counter()
    if nu is None:
        times = default_times_gc(curves, corr, trials, seed)
    else:
        times = StudentTCopula().default_times(curves, corr, nu, trials, seed)
    dt = time.perf_counter() - t0
    measured()
    return (times < 1.0).sum(axis=0).reshape(2, trials), dt


def _mc_el(k: np.ndarray, n: int, lgd: float, a: float, d: float) -> tuple[float, float]:
    """Tranche EL and its standard error from antithetic default counts (2, trials): the
    pair means are independent draws."""
    pair = 0.5 * (_tranche_el(lgd * k[0] / n, a, d) + _tranche_el(lgd * k[1] / n, a, d))
    return float(pair.mean()), float(pair.std(ddof=1) / np.sqrt(pair.size))


def agreement(
    n: int = 100,
    pd: float = 0.03,
    rho: float = 0.2,
    recovery: float = 0.4,
    attach: tuple[float, ...] = ATTACH,
    paths: int = 1_000_000,
    peer_trials: int = 20_000,
    nu: float | None = None,
    semi_analytic: bool = True,
) -> dict:
    """Tranche expected losses of the engine and FinancePy on one pool (see the module
    docstring); ``nu`` set: the Student-t copula (FinancePy has only Monte Carlo for it; the
    exact value comes from :func:`finite_pool_el`)."""
    from financepy.models.gauss_copula_lhp import tr_surv_prob_lhp
    from financepy.models.gauss_copula_onefactor import (
        homog_basket_loss_dbn,
        loss_dbn_hetero_adj_binomial,
    )

    lgd = 1.0 - recovery
    ours, t_ours = _engine(n, pd, rho, recovery, attach, paths, nu)
    k, t_peer = _peer_mc(n, pd, rho, peer_trials, nu) if peer_trials else (None, 0.0)
    beta = np.full(n, np.sqrt(rho))
    dbn: dict[str, np.ndarray] = {}
    if semi_analytic and nu is None and n <= 2_000:  # the recursion is O(N^2) per step
        surv, rec = np.full(n, 1.0 - pd), np.full(n, recovery)
        dbn["recursion"] = np.asarray(homog_basket_loss_dbn(surv, rec, beta, 200))
        dbn["adjusted_binomial"] = np.asarray(
            loss_dbn_hetero_adj_binomial(n, np.full(n, pd), np.ones(n), beta, 200)
        )
    grid = lgd * np.arange(n + 1) / n
    exact = finite_pool_el(n, pd, rho, recovery, attach, nu)
    rows = []
    for (a, d), row, x in zip(layers(attach), ours.tranches.itertuples(), exact, strict=True):
        el, se = float(row.expected_loss), float(row.expected_loss_se)
        r: dict[str, Any] = {"tranche": f"[{a:.0%}, {d:.0%})", "engine_el": el, "engine_se": se}
        if k is not None:
            p_el, p_se = _mc_el(k, n, lgd, a, d)
            r.update(financepy_mc_el=p_el, financepy_mc_se=p_se)
            r["z_financepy_mc"] = (el - p_el) / float(np.hypot(se, p_se))
            # cost of equal precision: seconds x variance, FinancePy's over the engine's
            r["efficiency_ratio"] = (t_peer * p_se**2) / (t_ours * se**2) if se else None
        for name, dist in dbn.items():
            r[f"{name}_el"] = v = float((dist * _tranche_el(grid, a, d)).sum())
            r[f"z_{name}"] = (el - v) / se if se else 0.0
        if semi_analytic and nu is None:
            v = 1.0 - tr_surv_prob_lhp(
                a, d, n, np.full(n, 1.0 - pd), np.full(n, recovery), float(np.sqrt(rho))
            )
            r["lhp_el"] = float(v)
            r["z_lhp"] = (el - v) / se if se else 0.0
            r["lhp_granularity_gap"] = float(x) - r["lhp_el"]
        r["exact_finite_pool_el"] = float(x)
        r["z_exact_finite_pool"] = (el - x) / se if se else 0.0
        rows.append(r)
    out: dict[str, Any] = {
        "pool": {
            "obligors": n,
            "pd": pd,
            "rho": rho,
            "recovery": recovery,
            "horizon_years": 1,
            "copula": "gaussian" if nu is None else f"student_t nu={nu:g}",
        },
        "engine": {"paths": paths, "seconds": t_ours, "us_per_path": 1e6 * t_ours / paths},
        "tranches": rows,
        "max_abs_z": {
            key: max(abs(r[key]) for r in rows) for key in rows[0] if key.startswith("z_")
        },
    }
    if k is not None:
        out["financepy_mc"] = {
            "paths": 2 * peer_trials,
            "seconds": t_peer,
            "us_per_path": 1e6 * t_peer / (2 * peer_trials),
        }
        out["speed_ratio_per_path"] = (
            out["financepy_mc"]["us_per_path"] / (out["engine"]["us_per_path"])
        )
    return out


def speed(sizes: list[int], paths: int, peer_paths: int, repeats: int = 3) -> list[dict]:
    """Wall-clock time per path on the Gaussian peer pool of each size: the engine on all its
    threads and on one, FinancePy's Monte Carlo (one thread; its path count shrinks with N to
    bound its time; antithetic pairs count as two paths). Medians over ``repeats``."""
    from financepy.models.gauss_copula import default_times_gc

    rows = []
    for n in sizes:
        cd, sc = peer_deal(n, 0.03), peer_scenario(0.2, 0.4)
        warm(cd, sc, 256)
        ours = timed(lambda c=cd, s=sc: ae.simulate(c, s, n_paths=paths, progress=False), repeats)
        ours1 = timed(
            lambda c=cd, s=sc: ae.simulate(c, s, n_paths=paths, threads=1, progress=False),
            repeats,
        )
        trials = max(50, peer_paths // 2 // max(1, n // 100))
        curves, corr = _peer_inputs(n, 0.03, 0.2)
        peer = timed(lambda c=curves, m=corr, t=trials: default_times_gc(c, m, t, 1), repeats)
        e_us, e1_us = 1e6 * ours[0] / paths, 1e6 * ours1[0] / paths
        p_us = 1e6 * peer[0] / (2 * trials)
        rows.append(
            {
                "obligors": n,
                "engine_paths": paths,
                "engine_us_per_path": e_us,
                "engine_min_us": 1e6 * ours[1] / paths,
                "engine_max_us": 1e6 * ours[2] / paths,
                "engine_1thread_us_per_path": e1_us,
                "financepy_paths": 2 * trials,
                "financepy_us_per_path": p_us,
                "financepy_min_us": 1e6 * peer[1] / (2 * trials),
                "financepy_max_us": 1e6 * peer[2] / (2 * trials),
                "ratio": p_us / e_us,
                "ratio_1thread": p_us / e1_us,
                "repeats": repeats,
            }
        )
    return rows


#: pool sizes of the speed comparison, and seeds of the standard-error calibrations
SPEED_SIZES = [10, 100, 1_000]
SPEED_REPEATS = 3
SE_SEEDS = {True: 50, False: 100}
SE_SEEDS_10000 = 40


def n_measurements(quick: bool) -> int:
    """The timed runs of :func:`run` (its progress bar's total): the engine and FinancePy in
    three agreements (no FinancePy run in the 10,000-obligor one), a run per calibration seed,
    and the speed comparison's repeats; none without FinancePy."""
    if financepy_version() is None:
        return 0
    n = 5 + SE_SEEDS[quick] + len(SPEED_SIZES) * 3 * SPEED_REPEATS
    return n if quick else n + SE_SEEDS_10000


def run(quick: bool) -> dict:
    """The whole peer comparison: about 11 s in quick mode, 80 s in full."""
    version = financepy_version()
    if version is None:
        return {"skipped": "financepy is not installed: pip install -e '.[bench]'"}
    out = {
        "financepy": version,
        "gaussian_100": agreement(
            paths=200_000 if quick else 1_000_000, peer_trials=5_000 if quick else 20_000
        ),
        "student_t_100": agreement(
            paths=200_000 if quick else 1_000_000,
            peer_trials=300 if quick else 2_000,
            nu=6.0,
        ),
        "lhp_10000": agreement(n=10_000, paths=5_000 if quick else 40_000, peer_trials=0),
        "se_calibration": se_calibration(seeds=SE_SEEDS[quick]),
        "speed": speed(
            SPEED_SIZES, 20_000 if quick else 100_000, 4_000 if quick else 20_000, SPEED_REPEATS
        ),
    }
    if not quick:  # about 40 s: 40 runs of 20,000 paths of 10,000 obligors
        out["se_calibration_10000"] = se_calibration(n=10_000, paths=20_000, seeds=SE_SEEDS_10000)
    return out
