"""Progress bars: one bar over a solver's evaluations (its Monte Carlo runs show none), one
per benchmark section over its measurements; the bars change no result."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

import abs_engine as ae
from abs_engine import simulation
from abs_engine.errors import ArgumentTypeError
from abs_engine.solvers import (
    breakeven,
    condition,
    load_curve,
    size_tranche,
    solve_coupon,
    structuring,
)
from benchmarks import progress as bars
from benchmarks import suite
from benchmarks.scaling import timed


class Recorder:
    """Stands in for :class:`abs_engine.simulation.Progress`, recording how it is driven."""

    made: list[Recorder] = []

    def __init__(
        self,
        total: int,
        enabled: bool | None,
        what: str = "simulating",
        unit: str = "paths",
        auto_refresh: bool = True,
    ) -> None:
        self.total, self.enabled, self.what, self.unit = total, enabled, what, unit
        self.auto_refresh = auto_refresh
        self.updates: list[int] = []
        self.finished = self.stopped = False
        type(self).made.append(self)

    def update(self, done: int) -> None:
        self.updates.append(done)

    def grow(self, total: int) -> None:
        self.total = max(self.total, total)

    def finish(self) -> None:
        self.finished = True
        self.stop()

    def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def recorders(monkeypatch) -> dict[str, type[Recorder]]:
    """The solvers' bar class and the Monte Carlo runs' bar class, each a fresh Recorder."""
    out = {}
    for name, module in (("solver", structuring), ("run", simulation)):
        cls = type(f"{name}Recorder", (Recorder,), {"made": []})
        monkeypatch.setattr(module, "Progress", cls)
        out[name] = cls
    return out


@pytest.fixture
def evaluations(monkeypatch) -> list[int]:
    """Counts the solvers' Monte Carlo evaluations."""
    calls: list[int] = []
    run = structuring._run

    def counted(*args: Any) -> Any:
        calls.append(1)
        return run(*args)

    monkeypatch.setattr(structuring, "_run", counted)
    return calls


@pytest.fixture(scope="module")
def deal_and_scenario() -> tuple[Any, Any]:
    deal = ae.load_deal()
    return deal, ae.load_scenario("huake_mc", deal)


SOLVES = {
    # crude: one Monte Carlo run per balance tried (importance sampling may add a crude run
    # for a balance whose weighted estimate is degenerate), which the counts below rely on
    "size": lambda d, sc, **kw: size_tranche(
        d, sc, "A", target_rating="AA", n_paths=1_000, tol=1e-3, sampling="crude", **kw
    ),
    "price": lambda d, sc, **kw: solve_coupon(d, sc, "A", load_curve(0.025), n_paths=1_000, **kw),
    "breakeven": lambda d, sc, **kw: breakeven(
        ae.compile_deal(d), sc, "A", "pd_multiplier", condition("first_loss"), lo=0.0, hi=20.0,
        n_paths=1_000, **kw,
    ),
}  # fmt: skip
WHAT = {"size": "sizing A", "price": "pricing A", "breakeven": "breakeven pd_multiplier (A)"}


@pytest.mark.parametrize("solver", list(SOLVES))
@pytest.mark.parametrize("progress", [True, None, False])
def test_a_solver_drives_one_bar_over_its_evaluations(
    solver, progress, recorders, evaluations, deal_and_scenario
):
    SOLVES[solver](*deal_and_scenario, progress=progress)
    (bar,) = recorders["solver"].made
    assert (bar.what, bar.unit, bar.enabled) == (WHAT[solver], "evaluations", progress)
    n = len(evaluations)
    assert n >= 3 and bar.updates == list(range(1, n + 1))
    assert bar.total >= n and bar.finished
    # its Monte Carlo runs show no bar of their own
    runs = recorders["run"].made
    assert len(runs) == n and all(r.enabled is False for r in runs)


def test_the_expected_counts_of_the_bisections_are_exact(recorders, evaluations, deal_and_scenario):
    """size_tranche (when the whole capital fails) and breakeven take the evaluations the
    bar expects; the coupon search's count is an estimate."""
    for solver in ("size", "breakeven"):
        recorders["solver"].made.clear()
        evaluations.clear()
        SOLVES[solver](*deal_and_scenario, progress=False)
        assert recorders["solver"].made[0].total == len(evaluations), solver


def test_a_bar_stops_when_the_search_fails(recorders, deal_and_scenario):
    deal, sc = deal_and_scenario
    with pytest.raises(structuring.SolverError):
        solve_coupon(deal, sc, "A", load_curve(0.025), n_paths=1_000, bounds=(0.0, 0.001))
    (bar,) = recorders["solver"].made
    assert bar.updates == [1, 2] and bar.stopped


@pytest.mark.parametrize("solver", list(SOLVES))
def test_results_are_bitwise_the_same_with_and_without_a_bar(solver, deal_and_scenario):
    on = SOLVES[solver](*deal_and_scenario, progress=True)
    off = SOLVES[solver](*deal_and_scenario, progress=False)
    assert repr(on) == repr(off)


def test_the_bar_is_drawn_on_stderr(monkeypatch, deal_and_scenario):
    """With ``progress=True`` the rich bar is drawn (here on a captured terminal), labelled
    with the search and counting evaluations."""
    out = io.StringIO()
    monkeypatch.setattr(
        simulation, "_stderr_console", lambda: Console(file=out, force_terminal=True, width=100)
    )
    SOLVES["size"](*deal_and_scenario, progress=True)
    text = out.getvalue()
    assert "sizing A" in text and "evaluations" in text


@pytest.mark.parametrize("solver", list(SOLVES))
def test_progress_must_be_a_bool_or_none(solver, deal_and_scenario):
    with pytest.raises(ArgumentTypeError, match="progress"):
        SOLVES[solver](*deal_and_scenario, progress="yes")


def test_progress_grows_and_finishes_a_rich_bar():
    p = simulation.Progress(3, True, "x", "evaluations", auto_refresh=False)
    p.update(1)
    task = p.bar.tasks[0]
    assert (task.completed, task.total) == (1, 3)
    assert getattr(p.bar.live, "_refresh_thread", None) is None  # drawn on updates only
    p.grow(5)
    assert p.bar.tasks[0].total == 5
    p.finish()
    assert p.bar.tasks[0].completed == 5


# --- benchmarks ----------------------------------------------------------------------------------


@pytest.fixture
def bench_bar(monkeypatch) -> type[Recorder]:
    cls = type("BenchRecorder", (Recorder,), {"made": []})
    monkeypatch.setattr(bars, "Progress", cls)
    return cls


def test_a_section_counts_its_timed_measurements(bench_bar):
    with bars.section("floor", 4, True):
        timed(lambda: None, 3)
    bars.measured()  # no section open: nothing
    (bar,) = bench_bar.made
    assert (bar.what, bar.unit, bar.total, bar.enabled) == ("floor", "measurements", 4, True)
    assert bar.updates == [1, 2, 3] and bar.finished and bar.auto_refresh is False


def test_run_sections_opens_one_bar_per_section(bench_bar, monkeypatch):
    def fake_compile() -> dict:
        bars.measured()
        bars.measured()
        return {}

    monkeypatch.setattr(suite, "bench_compile", fake_compile)
    monkeypatch.setattr(suite, "machine", lambda: {"commit": "x", "processor": "p", "cpus": 2})
    res = suite.run_sections(["compile"], True, log=lambda *_: None, progress=None)
    assert res["compile"] == {}
    (bar,) = bench_bar.made
    assert (bar.what, bar.total, bar.enabled) == ("compile", 2, None)
    assert bar.updates == [1, 2] and bar.finished


def test_bars_are_off_when_stderr_is_not_a_terminal_unless_asked():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert bars.enabled(None, io.StringIO()) is False
    assert bars.enabled(None, Tty()) is None
    assert bars.enabled(True, io.StringIO()) is True
    assert bars.enabled(False, Tty()) is False


def test_every_section_has_an_expected_count():
    for quick in (True, False):
        for name in suite.SECTIONS:
            assert suite.expected_measurements(name, quick, None) >= 0
    # the distributed sweep's cuts follow the workers of the last cluster
    from benchmarks import distributed

    # two deals × 3 repeats in one process and on each cluster; the sweep on two workers
    # cuts 128 blocks 7 ways and 16 blocks 4 ways, twice each
    assert distributed.n_measurements(True, None) == 2 * 3 * 3 + (7 + 4) * 2
    assert distributed.n_measurements(True, "local:2") == 2 * 3 * 2 + (7 + 4) * 2
    with pytest.raises(ValueError, match="unknown section"):
        suite.expected_measurements("nope", True)
