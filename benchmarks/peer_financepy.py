"""FinancePy beside the engine, on the same homogeneous pool (``pip install financepy``).

Pool: N obligors, one-year horizon, PD, one-factor Gaussian copula with asset correlation rho,
fixed recovery; tranches cut at attachment points, losses allocated reverse-sequentially. We
compare the tranche expected losses of
  * the engine's Monte Carlo (through its waterfall; SE from the run),
  * FinancePy's Monte Carlo ``models.gauss_copula.default_times_gc`` (antithetic pairs; SE
    from the pair means),
  * FinancePy's semi-analytic ``models.gauss_copula_onefactor.homog_basket_loss_dbn``,
and the time per path of the two Monte Carlos. Run: ``python -m benchmarks.peer_financepy``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

import abs_engine as ae
from abs_engine.schema import parse_deal
from abs_engine.schema.stochastic import MonteCarloScenario

ROOT = Path(__file__).resolve().parent


class _Curve:
    """The two attributes FinancePy's default_times_gc reads from an issuer curve."""

    def __init__(self, pd: float):
        self._times = np.array([0.0, 1.0, 100.0])
        self._qs = np.array([1.0, 1.0 - pd, (1.0 - pd) ** 100])


def _deal(n: int, pd: float, attach: list[float]) -> ae.CompiledDeal:
    bounds = sorted(attach, reverse=True)
    names = [f"T{k}" for k in range(len(bounds))]
    tranches, top = [], 1.0
    for name, a in zip(names, bounds, strict=True):
        tranches.append(
            {"name": name, "balance": (top - a) * n * 1e6, "coupon": {"kind": "fixed", "rate": 0.0}}
        )
        top = a
    doc = {
        "schema_version": 1,
        "name": "peer pool",
        "dates": {
            "closing": "2025-01-01",
            "first_payment": "2026-01-01",
            "frequency": "annual",
            "legal_final": "2026-01-01",
            "business_day": "none",
        },
        "pool": {
            "obligors": [
                {
                    "id": f"O{i}",
                    "balance": 1e6,
                    "rate": 0.0,
                    "amortization": {"kind": "bullet", "n_periods": 1},
                    "pd": {"kind": "flat", "annual": pd},
                }
                for i in range(n)
            ]
        },
        "tranches": tranches,
        "waterfalls": {"normal": [{"kind": "pay_principal", "tranches": names}]},
    }
    return ae.compile_deal(parse_deal(doc))


def _tranche_el(losses: np.ndarray, a: float, d: float) -> np.ndarray:
    return np.minimum(np.maximum(losses - a, 0.0), d - a) / (d - a)


def compare(
    n: int = 100,
    pd: float = 0.03,
    rho: float = 0.2,
    recovery: float = 0.4,
    attach: tuple[float, ...] = (0.0, 0.03, 0.07),
    paths: int = 200_000,
    peer_trials: int = 20_000,
) -> dict:
    from financepy.models.gauss_copula import default_times_gc
    from financepy.models.gauss_copula_onefactor import homog_basket_loss_dbn

    lgd = 1.0 - recovery
    bounds = sorted(attach, reverse=True)
    layers = [(a, d) for a, d in zip(bounds, [1.0, *bounds[:-1]], strict=True)]
    cd = _deal(n, pd, list(attach))
    sc = MonteCarloScenario.model_validate(
        {
            "kind": "monte_carlo",
            "name": "peer",
            "defaults": {"correlation": {"kind": "fixed", "value": rho}},
            "recovery": {"kind": "rate", "rate": recovery, "lag_periods": 0},
        }
    )
    ae.simulate(cd, sc, n_paths=1_000, progress=False)
    t0 = time.perf_counter()
    ours = ae.simulate(cd, sc, n_paths=paths, seed=1, progress=False)
    t_ours = time.perf_counter() - t0

    corr = np.full((n, n), rho)
    np.fill_diagonal(corr, 1.0)
    curves = [_Curve(pd) for _ in range(n)]
    t0 = time.perf_counter()
    times = default_times_gc(curves, corr, peer_trials, 7)
    t_peer = time.perf_counter() - t0
    k = (times < 1.0).sum(axis=0)  # defaults by one year, 2 x trials (antithetic pairs)
    loss_peer = lgd * k / n

    dbn = np.asarray(
        homog_basket_loss_dbn(
            np.full(n, 1.0 - pd), np.full(n, recovery), np.full(n, np.sqrt(rho)), 200
        )
    )
    loss_grid = lgd * np.arange(len(dbn)) / n

    rows = []
    for (a, d), row in zip(layers, ours.tranches.itertuples(), strict=True):
        el_pair = 0.5 * (
            _tranche_el(loss_peer[:peer_trials], a, d) + _tranche_el(loss_peer[peer_trials:], a, d)
        )
        peer_el, peer_se = float(el_pair.mean()), float(el_pair.std(ddof=1) / np.sqrt(peer_trials))
        semi = float((dbn * _tranche_el(loss_grid, a, d)).sum())
        rows.append(
            {
                "tranche": f"[{a:.0%}, {d:.0%}]",
                "engine_el": row.expected_loss,
                "engine_se": row.expected_loss_se,
                "financepy_mc_el": peer_el,
                "financepy_mc_se": peer_se,
                "financepy_semi_analytic_el": semi,
                "z_engine_vs_semi": (row.expected_loss - semi) / row.expected_loss_se
                if row.expected_loss_se
                else 0.0,
                "z_engine_vs_peer_mc": (row.expected_loss - peer_el)
                / np.hypot(row.expected_loss_se, peer_se),
            }
        )
    return {
        "pool": {"obligors": n, "pd": pd, "rho": rho, "recovery": recovery, "horizon_years": 1},
        "engine": {"paths": paths, "seconds": t_ours, "us_per_path": 1e6 * t_ours / paths},
        "financepy_mc": {
            "paths": 2 * peer_trials,
            "seconds": t_peer,
            "us_per_path": 1e6 * t_peer / (2 * peer_trials),
        },
        "speed_ratio_per_path": (t_peer / (2 * peer_trials)) / (t_ours / paths),
        "tranches": rows,
    }


def main() -> int:
    res = compare()
    out = ROOT / "results" / "peer_financepy.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=2))
    tmp.replace(out)
    for r in res["tranches"]:
        print(
            f"{r['tranche']:>12}  engine {r['engine_el']:.5f} ± {r['engine_se']:.5f}  "
            f"FinancePy MC {r['financepy_mc_el']:.5f} ± {r['financepy_mc_se']:.5f}  "
            f"semi-analytic {r['financepy_semi_analytic_el']:.5f}  "
            f"z {r['z_engine_vs_semi']:+.2f} / {r['z_engine_vs_peer_mc']:+.2f}"
        )
    print(
        f"per path: engine {res['engine']['us_per_path']:.2f} us, FinancePy MC "
        f"{res['financepy_mc']['us_per_path']:.2f} us: {res['speed_ratio_per_path']:.0f}x"
    )
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
