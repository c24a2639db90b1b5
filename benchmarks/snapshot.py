"""Bitwise snapshots of the engine's outputs, to prove a refactor changed no result.

    python -m benchmarks.snapshot save DIR      # before the change
    python -m benchmarks.snapshot compare DIR   # after: exit 1 on the first difference

What is stored (every array compared bit for bit, NaN equal to NaN):

- the bundled deal's Monte Carlo run (``huake_mc``, seed 7, 30,000 paths, per-path metrics
  kept, two full ledgers) and its stress variants without support and with an independent
  provider: every tranche, pool and cash-flow figure, both histograms, every kept path;
- every bundled deterministic scenario: the full ledgers of every path;
- the benchmark pool of 1,000 homogeneous obligors: under a Student-t sector copula with
  random prepayment and IP recoveries (at the fallback rate: the pool has no IP values) with
  random lags, and under a Gaussian copula: tranche, pool and cash-flow figures;
- importance sampling (weighted sums): the bundled deal (twisting and conditional Monte
  Carlo) and the Gaussian benchmark pool (twisting).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import abs_engine as ae


def _frames(prefix: str, res) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name in ("tranches", "pool", "cashflows", "paths"):
        df = getattr(res, name)
        if df is None:
            continue
        num = df.select_dtypes(include=[np.number, bool])
        out[f"{prefix}/{name}"] = num.to_numpy(float)
        out[f"{prefix}/{name}.columns"] = np.array([str(c) for c in num.columns])
    out[f"{prefix}/default_count_hist"] = np.asarray(res.default_count_hist)
    out[f"{prefix}/loss_rate_hist"] = np.asarray(res.loss_rate_hist)
    for p, led in sorted(res.ledgers.items()):
        for item in ("led_tr", "led_fee", "led_acc", "led_sup", "led_per", "sum_tr", "sum_pool"):
            out[f"{prefix}/ledger{p}/{item}"] = getattr(led, item)
    return out


def collect() -> dict[str, np.ndarray]:
    """Every stored figure, by name."""
    from benchmarks.pools import homogeneous_deal, pool_scenario

    out: dict[str, np.ndarray] = {}
    for sc in ("huake_mc", "huake_mc_no_support", "huake_mc_independent_provider"):
        res = ae.simulate(
            None, sc, n_paths=30_000, seed=7, keep_paths=True, ledger_paths=(3, 29_999),
            progress=False,
        )  # fmt: skip
        out.update(_frames(sc, res))
    deal = None  # the bundled deal
    det = ae.run_deterministic(deal)
    raw = det.raw
    for item in ("led_tr", "led_fee", "led_acc", "led_sup", "led_per", "sum_tr", "sum_pool"):
        out[f"deterministic/{item}"] = getattr(raw, item)
    for sc in ("cdr_stress", "large_obligor_2", "zero_default"):
        raw = ae.run_deterministic(deal, sc).raw
        for item in ("led_tr", "led_per", "sum_tr", "sum_pool"):
            out[f"{sc}/{item}"] = getattr(raw, item)
    cd = homogeneous_deal(1_000)
    sc_t = pool_scenario(
        defaults={
            "correlation": {"kind": "basel"},
            "copula": "student_t",
            "nu": 5.0,
            "factors": "sector",
        },
        prepayment={"cpr": 0.05, "volatility": 0.3},
        recovery={"kind": "ip_value", "lag_periods": 1, "lag_max_periods": 3},
    )
    out.update(_frames("pool1000_t", ae.simulate(cd, sc_t, n_paths=4_096, seed=3, progress=False)))
    out.update(
        _frames("pool1000", ae.simulate(cd, pool_scenario(), n_paths=8_192, seed=5, progress=False))
    )
    # importance sampling: weighted sums; twisting and conditional Monte Carlo on the bundled
    # deal, twisting alone on the pool
    res = ae.simulate(None, "huake_mc", n_paths=8_192, seed=11, sampling="importance",
                      progress=False)  # fmt: skip
    out.update(_frames("huake_mc_is", res))
    res = ae.simulate(cd, pool_scenario(), n_paths=4_096, seed=13, sampling="importance",
                      progress=False)  # fmt: skip
    out.update(_frames("pool1000_is", res))
    return out


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit for bit: same shape, dtype and bytes (so -0.0 differs from 0.0 and NaN payloads
    count); text arrays (column names) by value."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind in "US":
        return bool(np.array_equal(a, b))
    return a.tobytes() == b.tobytes()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("save", "compare"):
        print(__doc__)
        return 2
    folder = Path(argv[1])
    now = collect()
    if argv[0] == "save":
        folder.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(folder / "snapshot.npz", **now)
        print(f"saved {len(now)} arrays to {folder / 'snapshot.npz'}")
        return 0
    with np.load(folder / "snapshot.npz") as f:
        before = {k: f[k] for k in f.files}
    bad = [k for k in before if k not in now or not _same(before[k], now[k])]
    bad += [k for k in now if k not in before]
    for k in bad:
        print(f"DIFFERENT: {k}")
    print(f"{len(before) - len(bad)} of {len(before)} arrays bitwise identical")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
