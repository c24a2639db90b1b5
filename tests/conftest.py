"""Shared test helpers: small deals as plain dicts run through the real loader, the command
line run in this process, folder snapshots, the analytic references of the Monte Carlo tests,
and the hypothesis profiles."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from numpy.polynomial.hermite_e import hermegauss

from abs_engine.cli import main
from abs_engine.compile import compile_deal, deterministic_flows
from abs_engine.compile.deal import CompiledDeal
from abs_engine.deterministic import WaterfallResult, run_waterfall
from abs_engine.kernels import layout as L
from abs_engine.schema import Deal, parse_deal, parse_scenario
from abs_engine.schema.stochastic import MonteCarloScenario
from abs_engine.synthetic import one_period_deal

# The test workers (pytest -n auto) already keep every core busy: a second compile process
# per worker on a cold cache (abs_engine.kernel_compile) only competes with them (the default
# set from an empty cache: 121 s with it, 103 s without, one run each: `find abs_engine -name
# "*.nb[ic]" -delete`, then the test command with ABS_ENGINE_COMPILE_PROCESSES=2 or 1).
# Its own tests set it.
os.environ.setdefault("ABS_ENGINE_COMPILE_PROCESSES", "1")

#: the repository root (waterfalls/, scenarios/, README.md, .ci/run)
ROOT = Path(__file__).resolve().parents[1]
#: the installed console script, next to the interpreter running the tests
ABS_ENGINE = Path(sys.executable).with_name("abs-engine")

# ---- hypothesis profiles (tests/test_properties.py) ------------------------------------------
# "dev", the default: a quick search on every run (about 1 s a property). "ci": hypothesis's own
# (derandomized, no example database, the blob to reproduce a failure) with a deeper search;
# loaded where hypothesis detects a CI service, and by .ci/run with --hypothesis-profile=ci.
# ABS_PROPERTY_EXAMPLES overrides the number of examples of either.
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("dev", max_examples=50, deadline=None, suppress_health_check=_QUIET)
settings.register_profile(
    "ci", settings.get_profile("ci"), max_examples=300, suppress_health_check=_QUIET
)
# (--hypothesis-profile=NAME is applied after this file and wins)
settings.load_profile("ci" if settings.get_current_profile_name() == "ci" else "dev")

#: run a reference test on both kernels
JIT = pytest.mark.parametrize("jit", [False, True], ids=["python", "numba"])
#: a zero fixed coupon
ZERO_COUPON: dict[str, Any] = {"kind": "fixed", "rate": 0.0}


def base_deal(**over: Any) -> dict[str, Any]:
    """A minimal valid deal: one bullet obligor of 100 at 0% over 3 annual periods, one
    fixed-rate tranche of 100 paid sequentially. Keys in ``over`` replace top-level keys."""
    d: dict[str, Any] = {
        "schema_version": 1,
        "name": "test deal",
        "dates": {
            "closing": "2025-01-01",
            "first_payment": "2026-01-01",
            "frequency": "annual",
            "legal_final": "2028-01-01",
            "business_day": "none",
        },
        "pool": {
            "obligors": [
                {
                    "id": "O1",
                    "balance": 100.0,
                    "rate": 0.0,
                    "amortization": {"kind": "bullet", "n_periods": 3},
                    "pd": {"kind": "flat", "annual": 0.02},
                }
            ]
        },
        "tranches": [{"name": "A", "balance": 100.0, "coupon": {"kind": "fixed", "rate": 0.0}}],
        "waterfalls": {
            "normal": [
                {"kind": "pay_interest", "tranches": ["A"]},
                {"kind": "pay_principal", "tranches": ["A"]},
            ]
        },
    }
    d.update(copy.deepcopy(over))
    return d


def annual_dates(n: int) -> dict[str, Any]:
    """``n`` annual periods from 2025-01-01 on 30/360 with no business-day roll: every accrual
    fraction is exactly 1 and an obligor's periodic rate is its annual rate."""
    return {
        "closing": "2025-01-01",
        "first_payment": "2026-01-01",
        "frequency": "annual",
        "legal_final": f"{2025 + n}-01-01",
        "day_count": "30/360",
        "business_day": "none",
    }


def compensation_fund(share: float, lag: int, name: str = "fund") -> dict[str, Any]:
    """A loss-compensation support (风险补偿资金池) paying ``share`` of each realised loss
    ``lag`` periods later, from a provider named Gov."""
    return {
        "kind": "loss_compensation",
        "name": name,
        "provider": {"name": "Gov"},
        "share": share,
        "lag_periods": lag,
    }


def obligor(
    oid: str, balance: float, rate: float = 0.0, n: int = 3, kind: str = "bullet", **kw: Any
) -> dict[str, Any]:
    o = {
        "id": oid,
        "balance": balance,
        "rate": rate,
        "amortization": {"kind": kind, "n_periods": n},
        "pd": {"kind": "flat", "annual": 0.02},
    }
    o.update(kw)
    return o


def run(deal: dict[str, Any], *scenarios: dict[str, Any], jit: bool = False) -> WaterfallResult:
    """Validate, compile and run ``deal`` on each scenario dict (default: no defaults)."""
    cd = compile_deal(parse_deal(deal))
    scs = [parse_scenario({"name": f"s{k}", **s}) for k, s in enumerate(scenarios or ({},))]
    return run_waterfall(cd, deterministic_flows(cd, scs), jit=jit)


def tranche_item(res: WaterfallResult, tranche: str, item: int, path: int = 0) -> np.ndarray:
    """Ledger column ``item`` (an ``LT_*`` index) of one tranche, one value per period."""
    j = res.deal.tranche_names.index(tranche)
    return res.led_tr[path, :, j, item]


def quarterly_deal(pd: float) -> Deal:
    """Pool 100m at 8%, equal principal over 8 quarters; A 90m at 3%, Sub 10m residual."""
    deal = base_deal(
        dates={"closing": "2025-01-15", "first_payment": "2025-04-15", "frequency": "quarterly",
               "legal_final": "2027-01-15"},
        pool={"obligors": [
            obligor(f"O{i}", 10e6, rate=0.08, n=8, kind="equal_principal",
                    pd={"kind": "flat", "annual": pd})
            for i in range(10)
        ]},
        tranches=[
            {"name": "A", "balance": 90e6, "coupon": {"kind": "fixed", "rate": 0.03}},
            {"name": "Sub", "balance": 10e6, "principal": "residual"},
        ],
        waterfalls={"normal": [
            {"kind": "pay_interest", "tranches": ["A"]},
            {"kind": "pay_principal", "tranches": ["A", "Sub"]},
            {"kind": "pay_residual", "tranche": "Sub"},
        ]},
    )  # fmt: skip
    return parse_deal(deal)


@pytest.fixture
def layout():
    return L


# ---- the command line, in this process ---------------------------------------------------------


def assert_same_run(a: Any, b: Any, paths: bool = True) -> None:
    """Two Monte Carlo results bitwise the same: per-path metrics (with ``paths``: runs that
    kept them), tranche and pool summaries, cash-flow statistics and the histograms."""
    if paths:
        assert np.array_equal(a.paths.to_numpy(), b.paths.to_numpy(), equal_nan=True)
    assert a.tranches.equals(b.tranches)
    assert a.pool.equals(b.pool)
    assert a.cashflows.equals(b.cashflows)
    assert np.array_equal(a.default_count_hist, b.default_count_hist)
    assert np.array_equal(a.loss_rate_hist, b.loss_rate_hist)


def in_simulation(pid: int) -> bool:
    """The Monte Carlo kernels are running in process ``pid``: a thread of it has the kernel
    threads' name (they are started by the first kernel call after the compile)."""
    from abs_engine.simulation import KERNEL_THREAD_NAME

    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False
    for task in tasks:
        try:
            if (task / "comm").read_text().strip() == KERNEL_THREAD_NAME:
                return True
        except OSError:
            continue
    return False


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``abs-engine ARGS`` run in this process (``main(argv)``, its stdout and stderr captured;
    an argparse exit counts as its status): a subprocess per call would cost about 2 CPU-seconds
    of start-up. tests/test_smoke.py and tests/test_faults.py run the installed command in real
    processes where the process is the point."""
    out, err = io.StringIO(), io.StringIO()
    argv = [str(a) for a in args]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = int(exc.code or 0)
    return subprocess.CompletedProcess(["abs-engine", *argv], rc, out.getvalue(), err.getvalue())


#: the paths of the shared deal reports (tests/test_report*.py)
REPORT_PATHS = "3000"


@pytest.fixture(scope="session")
def deal_report(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, list]]:
    """``deal_report(lang)``: the bundled deal's ``abs-engine report`` folder in ``lang`` at
    :data:`REPORT_PATHS` paths, made once a session (about 2 s each, most of it the charts),
    with the warnings raised while it was made."""
    made: dict[str, tuple[Path, list]] = {}

    def get(lang: str) -> tuple[Path, list]:
        if lang not in made:
            out = tmp_path_factory.mktemp(f"deal_report_{lang}")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                r = run_cli("report", "--out", out, "--paths", REPORT_PATHS, "--no-progress",
                            "--lang", lang)  # fmt: skip
            assert r.returncode == 0, r.stderr
            made[lang] = (out, list(caught))
        return made[lang]

    return get


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (hidden ones included) with the SHA-256 of its bytes."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
    return out


# ---- analytic references for the Monte Carlo tests ---------------------------------------------
# (scipy is imported inside the helpers: importing scipy.stats takes most of a second, which a
# test session that calls none of them should not pay)

#: a Monte Carlo estimate must lie within this many of its own standard errors of the exact value
K_SE = 4.0
#: Gauss-Hermite nodes and weights for E[f(Z)], Z ~ N(0, 1) (probabilists' Hermite, 160 nodes)
GH_Z, GH_W = hermegauss(160)
GH_W = GH_W / np.sqrt(2 * np.pi)


def homogeneous_deal(n: int, pd: float, attach: list[float]) -> CompiledDeal:
    """:func:`abs_engine.synthetic.one_period_deal`, compiled: N obligors of 1,000,000 over
    one annual period, tranches by attachment points losing reverse-sequentially."""
    return compile_deal(parse_deal(one_period_deal(n, pd, attach)))


def mc(
    rho: float, recovery: float = 0.0, copula: str = "gaussian", nu: float = 6.0, **kw: Any
) -> MonteCarloScenario:
    """A Monte Carlo scenario: one-factor ``copula`` with correlation ``rho``, a flat
    ``recovery`` with no lag; ``kw`` replaces top-level fields."""
    doc: dict[str, Any] = {
        "kind": "monte_carlo",
        "name": "test",
        "defaults": {"copula": copula, "nu": nu, "correlation": {"kind": "fixed", "value": rho}},
        "recovery": {"kind": "rate", "rate": recovery, "lag_periods": 0},
    }
    doc.update(kw)
    return MonteCarloScenario.model_validate(doc)


def cond_pd_gauss(pd: float, rho: float) -> np.ndarray:
    """The Gaussian copula's default probability given the factor, at each node of ``GH_Z``."""
    from scipy import stats

    return stats.norm.cdf((stats.norm.ppf(pd) - np.sqrt(rho) * GH_Z) / np.sqrt(1 - rho))


def binom_pmf(n: int, p: np.ndarray) -> np.ndarray:
    """C(N,k) p^k (1-p)^(N-k) for k = 0..N, shape (len(p), N+1); exact at p = 0 and 1."""
    from scipy import special

    k = np.arange(n + 1)
    p = np.asarray(p)[:, None]
    return special.comb(n, k) * p**k * (1.0 - p) ** (n - k)


def count_pmf_gauss(n: int, pd: float, rho: float) -> np.ndarray:
    """P(k defaults) = ∫ C(N,k) p(z)^k (1-p(z))^(N-k) φ(z) dz by Gauss–Hermite quadrature."""
    return (GH_W[:, None] * binom_pmf(n, cond_pd_gauss(pd, rho))).sum(axis=0)


def tranche_el(pmf: np.ndarray, lgd: float, a: float, d: float) -> float:
    """Expected loss of the tranche [a, d] of a pool of len(pmf) - 1 equal obligors, as a
    fraction of its size, from the distribution of the default count."""
    n = len(pmf) - 1
    loss = lgd * np.arange(n + 1) / n
    return float((pmf * np.minimum(np.maximum(loss - a, 0.0), d - a)).sum() / (d - a))
