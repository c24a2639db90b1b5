"""Scale-out on Dask (abs_engine.distributed): a run's path blocks as tasks on a local cluster of
worker processes give bitwise the results of one process — for any number of workers, task
size or threads —, grids and solvers too; a worker killed mid-run changes nothing; a scheduler
out of reach or lost is a clear error."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ABS_ENGINE, ROOT, in_simulation

import abs_engine as ae
from abs_engine import simulation
from abs_engine.cli import main
from abs_engine.compile.deal import compile_deal
from abs_engine.distributed import ClusterError, DaskRunner, connect, parse_cluster
from abs_engine.errors import ArgumentTypeError, InputError
from abs_engine.solvers import breakeven, condition, sensitivity, size_tranche

distributed = pytest.importorskip("distributed")


def _same(a: ae.SimulationResult, b: ae.SimulationResult) -> None:
    """Every reported number bitwise equal (frames exactly, histograms, kept paths)."""
    for name in ("tranches", "pool", "cashflows"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    assert np.array_equal(a.default_count_hist, b.default_count_hist)
    assert np.array_equal(a.loss_rate_hist, b.loss_rate_hist)
    if a.paths is not None or b.paths is not None:
        assert np.array_equal(a.paths.to_numpy(), b.paths.to_numpy(), equal_nan=True)
    assert a.ledgers.keys() == b.ledgers.keys()
    for p, led in a.ledgers.items():
        assert np.array_equal(led.sum_tr, b.ledgers[p].sum_tr, equal_nan=True)


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes (spawned), one numba thread each."""
    with connect("local:2", threads=1) as runner:
        yield runner


def _run(**kw):
    """8 blocks of 1,024 paths (the last one short): task sizes 1 and 7 cut them unevenly."""
    return ae.simulate(n_paths=7_500, seed=11, progress=False, **kw)


# --- bitwise identity ----------------------------------------------------------------------------


def test_cluster_run_is_bitwise_the_local_run(cluster):
    local = _run()
    _same(local, _run(client=cluster))
    # the Client itself, task sizes of one block and of a size that does not divide the run,
    # and other thread counts: the same numbers
    _same(local, _run(client=cluster.client))
    _same(local, _run(client=DaskRunner(cluster.client, threads=2, task_blocks=1)))
    _same(local, _run(client=DaskRunner(cluster.client, threads=1, task_blocks=7)))


def test_an_importance_sampled_run_on_the_cluster_is_bitwise_the_local_run(cluster):
    """Weighted sums and float histograms, added in block order: the same bits for any task
    size (the shifts' pilot runs where the run is started)."""
    local = _run(sampling="importance")
    _same(local, _run(sampling="importance", client=cluster))
    _same(local, _run(sampling="importance",
                      client=DaskRunner(cluster.client, threads=1, task_blocks=3)))  # fmt: skip
    assert local.loss_rate_hist.dtype == np.float64


def test_kept_paths_and_ledgers_come_back_from_the_workers(cluster):
    kw = {"n_paths": 3_000, "seed": 5, "keep_paths": True, "ledger_paths": [0, 2_999]}
    local = ae.simulate(progress=False, **kw)
    remote = ae.simulate(progress=False, client=DaskRunner(cluster.client, 1, 1), **kw)
    assert remote.paths is not None and len(remote.paths) == 3_000
    _same(local, remote)


def test_a_pool_with_sectors_and_a_student_t_copula(cluster, tmp_path):
    """A 300-obligor synthetic pool (tape, PD classes, sector factors): bitwise identical."""
    from abs_engine.synthetic import write_synthetic

    paths = write_synthetic(tmp_path, 300, heterogeneous=True, n_periods=8, seed=3)
    cd = compile_deal(ae.load_deal(paths["deal"]))
    doc = json.loads(paths["scenario"].read_text())
    doc["defaults"].update({"copula": "student_t", "nu": 5.0, "factors": "sector"})
    scenario = tmp_path / "t_sector.json"
    scenario.write_text(json.dumps(doc))
    sc = ae.load_scenario(scenario, cd.deal)
    local = ae.simulate(cd, sc, n_paths=8_000, seed=2, progress=False)
    _same(local, ae.simulate(cd, sc, n_paths=8_000, seed=2, progress=False, client=cluster))


def test_sensitivity_grid_on_the_cluster(cluster):
    cd = compile_deal(ae.load_deal())
    sc = ae.load_scenario("huake_mc", cd.deal)
    x, y = ("pd_multiplier", [1.0, 3.0]), ("recovery", [0.1, 0.4])
    local = sensitivity(cd, sc, x, y, n_paths=4_000, seed=9)
    pd.testing.assert_frame_equal(
        local, sensitivity(cd, sc, x, y, n_paths=4_000, seed=9, client=cluster), check_exact=True
    )


@pytest.mark.slow
def test_solvers_give_the_same_answer_on_the_cluster(cluster):
    deal = ae.load_deal()
    cd = compile_deal(deal)
    sc = ae.load_scenario("huake_mc", deal)
    kw = {"target_el": 1e-3, "n_paths": 4_000, "seed": 3, "tol": 1e-3}
    assert size_tranche(deal, sc, "A", **kw) == size_tranche(deal, sc, "A", client=cluster, **kw)
    be = {"lo": 1.0, "hi": 50.0, "n_paths": 3_000, "seed": 3, "tol": 1e-2}
    ok = condition("el_above", 1e-3)
    assert breakeven(cd, sc, "A", "pd_multiplier", ok, **be) == breakeven(
        cd, sc, "A", "pd_multiplier", ok, client=cluster, **be
    )


# --- the command line ----------------------------------------------------------------------------


def _json(capsys, *argv: str) -> dict:
    assert main(list(argv)) == 0
    doc = json.loads(capsys.readouterr().out)
    doc.pop("seconds", None)
    doc.pop("compile_seconds", None)
    return doc


def test_cli_run_on_a_running_scheduler_is_bitwise_the_plain_run(capsys, cluster):
    """``--cluster tcp://HOST:PORT``: the module's cluster, reached by its address."""
    argv = ["run", "--json", "--paths", "6000", "--seed", "7"]
    assert cluster.address.startswith("tcp://")
    assert _json(capsys, *argv, "--cluster", cluster.address) == _json(capsys, *argv)


@pytest.mark.slow
def test_cli_run_with_a_local_cluster_is_bitwise_the_plain_run(capsys):
    """The issue's check: ``run --json --paths 100000 --seed 7 --cluster local:2``."""
    argv = ["run", "--json", "--paths", "100000", "--seed", "7"]
    assert _json(capsys, *argv, "--cluster", "local:2") == _json(capsys, *argv)


@pytest.mark.slow
def test_cli_stress_tasks_on_a_cluster(capsys):
    argv = ["stress", "--json", "-s", "cdr_stress"]
    assert _json(capsys, *argv, "--cluster", "local:1") == _json(capsys, *argv)


@pytest.mark.parametrize(
    "value",
    ["local:0", "local:257", "local:", "local:two", "foo:2", "tcp://", "tcp://host", "http://h:1",
     "tcp://h:0", "tcp://h:70000", "", "local:2 extra", "tls://h:8786"],
)  # fmt: skip
def test_bad_cluster_values_are_refused_before_anything_runs(value, capsys):
    assert main(["run", "--cluster", value]) == 2
    err = capsys.readouterr().err
    assert "--cluster" in err and "Traceback" not in err
    with pytest.raises(InputError):
        parse_cluster(value)


def test_cluster_is_refused_for_a_deterministic_run(capsys):
    assert main(["run", "-s", "cdr_stress", "--cluster", "local:2"]) == 2
    assert "--cluster: only for Monte Carlo scenarios" in capsys.readouterr().err


def test_a_client_of_the_wrong_type_is_refused():
    with pytest.raises(ArgumentTypeError, match="client must be a distributed.Client"):
        ae.simulate(n_paths=10, client="tcp://127.0.0.1:8786")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_scheduler_out_of_reach_is_a_clear_error(monkeypatch, capsys):
    from abs_engine.distributed import cluster as cl

    monkeypatch.setattr(cl, "CONNECT_TIMEOUT_S", 0.3)
    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(ClusterError, match="cannot reach the Dask scheduler"), connect(address):
        pass
    assert main(["run", "--paths", "1000", "--cluster", address]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot reach the Dask scheduler at {address}"), err
    assert "Traceback" not in err


# --- faults --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_worker_killed_mid_run_changes_nothing(monkeypatch):
    """SIGKILL to a worker process that holds tasks, when the first results are in: its tasks
    are re-run on the other worker (and on its restarted self); the totals are bitwise the
    local run's."""
    kw = {"n_paths": 600_000, "seed": 21, "progress": False}
    local = ae.simulate(**kw)
    with connect("local:2", threads=1, task_blocks=4) as runner:
        ae.simulate(n_paths=2_000, client=runner, progress=False)  # workers load the kernels
        pids = list(runner.client.run(os.getpid).values())
        killed: list[int] = []
        update = simulation.Progress.update

        def kill_one(self, done: int) -> None:
            if not killed:
                processing = runner.client.processing()
                busy = [w for w, keys in processing.items() if keys]
                assert busy, "no worker holds tasks"
                victim = runner.client.run(os.getpid, workers=[busy[0]])[busy[0]]
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)
            update(self, done)

        monkeypatch.setattr(simulation.Progress, "update", kill_one)
        remote = ae.simulate(client=runner, **kw)
        assert killed and killed[0] in pids
        assert killed[0] not in runner.client.run(os.getpid).values()  # it really died
    _same(local, remote)


def test_the_event_loop_s_tracebacks_stay_off_the_console_while_connected():
    """A scheduler that dies mid-run leaves the client's event loop logging every message it
    could not send, with a traceback, on ``tornado.application`` (Dask gives it its own stderr
    handler); inside a connection those lines are silenced (the run's own error says it once),
    and the level comes back after."""
    import logging

    from abs_engine.distributed.cluster import _quiet_logs

    log = logging.getLogger("tornado.application")
    seen: list[logging.LogRecord] = []
    catch = logging.Handler()
    catch.emit = seen.append  # type: ignore[method-assign]
    old = log.level
    log.addHandler(catch)
    log.setLevel(logging.ERROR)
    try:
        with _quiet_logs():
            log.error("Exception in callback _send_to_scheduler_safe")
        assert not seen
        assert log.level == logging.ERROR
        log.error("after the run")
        assert [r.getMessage() for r in seen] == ["after the run"]
    finally:
        log.removeHandler(catch)
        log.setLevel(old)


@pytest.mark.slow
def test_a_lost_scheduler_ends_the_run_with_a_clear_error(tmp_path):
    """The scheduler killed while a run is on its worker: ``abs-engine`` ends with status 1
    and one error line, no traceback, no hang."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    py = sys.executable
    sched = subprocess.Popen(
        [py, "-m", "distributed.cli.dask_scheduler", "--port", str(port), "--no-dashboard"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    worker = run = None
    try:
        worker = subprocess.Popen(
            [py, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
             "--no-dashboard"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        with distributed.Client(address, timeout=60) as watcher:
            # the worker up before the run starts: the run waits only 10 s for the scheduler
            watcher.wait_for_workers(1, timeout=120)
            run = subprocess.Popen(
                [str(ABS_ENGINE), "run", "--paths", "20000000", "--no-progress", "--cluster",
                 address],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
            )  # fmt: skip
            end = time.monotonic() + 120
            while not any(watcher.processing().values()):  # the run's tasks are on the worker
                assert run.poll() is None and time.monotonic() < end, run.stderr.read()
                time.sleep(0.2)
        sched.kill()
        _, err = run.communicate(timeout=120)
    finally:
        for p in (sched, worker, run):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    assert run.returncode == 1, err
    assert "lost the Dask cluster" in err and "Traceback" not in err, err


# --- several deals in one command ----------------------------------------------------------------

DEAL = str(ROOT / "waterfalls" / "huake_2025.toml")


def test_several_deals_in_one_run(capsys, tmp_path):
    """``run DEAL1 DEAL2``: one JSON document with each deal's scenarios, each the same as the
    deal run alone; a deterministic deal beside a Monte Carlo one; --out refused (named by
    scenario, its files would collide) before anything runs."""
    argv = ["--json", "--paths", "3000", "--seed", "2"]
    alone = _json(capsys, "run", DEAL, *argv)
    both = _json(capsys, "run", DEAL, DEAL, *argv)
    assert [d["deal"] for d in both["deals"]] == [alone["deal"]] * 2
    for d in both["deals"]:
        d["result"].pop("seconds", None)
        d["result"].pop("compile_seconds", None)
        assert d["kind"] == "monte_carlo" and d["result"] == alone
    det = tmp_path / "det.toml"
    text = Path(DEAL).read_text()
    det.write_text(text.replace('base_scenario = "huake_mc"', 'base_scenario = "huake_base"'))
    assert 'base_scenario = "huake_base"' in det.read_text()
    mixed = _json(capsys, "run", DEAL, str(det), "--json", "--paths", "1000")
    assert [d["kind"] for d in mixed["deals"]] == ["monte_carlo", "deterministic"]
    assert mixed["deals"][1]["result"]["scenario"] == "huake_base"
    assert main(["run", DEAL, DEAL, "--out", str(tmp_path / "o")]) == 2
    assert "--out takes one deal" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_several_deals_on_a_cluster_compute_together(capsys):
    argv = ["run", DEAL, DEAL, "--json", "--paths", "20000", "--seed", "4"]
    plain = _json(capsys, *argv)
    clustered = _json(capsys, *argv, "--cluster", "local:2")
    for d in (*plain["deals"], *clustered["deals"]):
        d["result"].pop("seconds", None)
        d["result"].pop("compile_seconds", None)
    assert plain == clustered


# --- the collector and pending runs --------------------------------------------------------------


def _job_and_ranges(n_paths: int = 5_000, keep: bool = True):
    from abs_engine.simulation import LOCAL_RUNNER, run_range, start_simulation_compiled

    cd = compile_deal(ae.load_deal())
    sc = ae.load_scenario("huake_mc", cd.deal)
    pending = start_simulation_compiled(
        cd, sc, n_paths=n_paths, seed=3, keep_paths=keep, progress=False, batch_blocks=1
    )
    job = pending.job
    ranges = [(f, run_range(f, nb, job.spec, job.model, job.deal, job.shape))
              for f, nb in job.ranges(2)]  # fmt: skip
    assert LOCAL_RUNNER.eager is False
    return pending, job, ranges


class _Quiet:
    def update(self, done: int) -> None:
        pass


def test_collect_adds_ranges_in_block_order_whatever_order_they_come_in():
    from abs_engine.simulation import collect

    pending, job, ranges = _job_and_ranges()
    n_m = job.shape.n_m

    def totals(order):
        out = np.full((job.spec.n_paths, n_m), np.nan)
        return collect(job, [ranges[k] for k in order], out, _Quiet()), out

    a, pa = totals(range(len(ranges)))
    b, pb = totals(reversed(range(len(ranges))))
    for name in ("m", "cf", "count_hist", "loss_hist", "tranche_hist", "coverage_hist"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(pa, pb, equal_nan=True) and not np.isnan(pa).all(axis=1).any()
    # the local run itself: the same totals and kept paths
    res = pending.result()
    assert np.array_equal(res.paths.to_numpy(), pa, equal_nan=True)
    assert pending.result() is res  # collected once


def test_collect_refuses_a_range_twice_and_a_missing_one():
    from abs_engine.simulation import collect

    _, job, ranges = _job_and_ranges(keep=False)
    out = np.zeros((0, job.shape.n_m))
    with pytest.raises(RuntimeError, match="arrived twice"):
        collect(job, [ranges[0], ranges[0]], out, _Quiet())
    with pytest.raises(RuntimeError, match="never arrived"):
        collect(job, ranges[1:], out, _Quiet())


def test_a_pending_local_run_is_timed_from_its_collection():
    """Several scenarios submitted at once: each local run's seconds are its own (a run left
    waiting does not count the wait), and kept paths are allocated only when collected."""
    from abs_engine.simulation import start_simulation_compiled

    cd = compile_deal(ae.load_deal())
    sc = ae.load_scenario("huake_mc", cd.deal)
    runs = [start_simulation_compiled(cd, sc, n_paths=500, seed=s, keep_paths=True,
                                      progress=False) for s in (1, 2)]  # fmt: skip
    assert all(r._result is None for r in runs)
    time.sleep(0.6)
    for r in runs:
        assert r.result().seconds < 0.6


# --- failures on the cluster ---------------------------------------------------------------------


def _divide_by_zero(shared):
    return 1 / 0


def test_a_task_that_fails_on_a_worker_is_a_clear_error(cluster):
    with pytest.raises(ClusterError, match="a task failed on a worker .*ZeroDivisionError"):
        cluster.map_calls(None, [(_divide_by_zero, (), {})])
    # the cluster is still usable afterwards
    assert cluster.map_calls(2, [(pow, (3,), {})]) == [8]


@pytest.mark.slow
def test_a_scheduler_without_workers_is_a_clear_error_not_a_hang(monkeypatch):
    from abs_engine.distributed import runner as rn

    monkeypatch.setattr(rn, "NO_WORKERS_TIMEOUT_S", 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Port 8787 is already in use"
        empty = distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=None)
    try:
        with connect(empty.scheduler_address) as runner:
            with pytest.raises(ClusterError, match="has no workers"):
                ae.simulate(n_paths=1_000, client=runner, progress=False)
    finally:
        empty.close()


def test_task_blocks_and_threads_are_checked(cluster):
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InputError, match="whole number >= 1"):
            DaskRunner(cluster.client, task_blocks=bad)
        with pytest.raises(InputError, match="whole number >= 1"):
            DaskRunner(cluster.client, threads=bad)


@pytest.mark.slow
def test_ctrl_c_during_a_cluster_run(tmp_path):
    """SIGINT to the command while its local cluster computes: status 130, one
    "interrupted", no traceback, no worker process left behind."""
    import psutil

    run = subprocess.Popen(
        [str(ABS_ENGINE), "run", "--paths", "50000000", "--no-progress", "--cluster", "local:2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    parent = psutil.Process(run.pid)
    end = time.monotonic() + 300
    # a worker computing: its kernel threads started (a sleep was a guess on a loaded machine)
    while not any(in_simulation(p.pid) for p in parent.children(recursive=True)):
        assert run.poll() is None and time.monotonic() < end, run.stderr.read()
        time.sleep(0.2)
    children = parent.children(recursive=True)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert err.count("interrupted") == 1 and "Traceback" not in err, err
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, [p.pid for p in alive]


def test_a_cluster_run_lets_each_tasks_sums_go_once_they_are_added(cluster, monkeypatch):
    """A run held every task's future until it ended, so every task's block sums stayed in
    the workers' memory (205 MB at 2,000,000 importance-sampled paths, growing with the
    paths): the results still held on the workers while the run collects stay a few, however
    many tasks it has."""
    from abs_engine import simulation

    client = cluster.client
    held: list[int] = []
    update = simulation.Progress.update

    def spy(self, done):
        held.append(sum(client.run(lambda dask_worker: len(dask_worker.data)).values()))
        update(self, done)

    monkeypatch.setattr(simulation.Progress, "update", spy)
    runner = DaskRunner(client, threads=1, task_blocks=1)
    ae.simulate(n_paths=40 * 1024, seed=3, progress=False, client=runner)
    assert len(held) >= 10  # one update a task or so: 40 tasks
    # the run's shipped bundles and the results not yet collected: those that finished
    # before the driver took them pile up, then go as it does (they all stayed: 44 to the
    # end, before)
    assert held[-1] <= 20, held


def test_a_workers_address_or_a_closed_client_is_a_clear_error(cluster, capsys):
    """--cluster at a worker's port gave a traceback (TypeError from the worker's identity
    call); a closed Client gave RuntimeError ("IOLoop is closed"), not a ClusterError."""
    worker = next(iter(cluster.client.scheduler_info()["workers"]))
    assert main(["run", "--paths", "1000", "--cluster", worker]) == 1
    err = capsys.readouterr().err
    assert "did not answer as a Dask scheduler" in err and "Traceback" not in err
    closed = distributed.Client(cluster.client.scheduler.address, timeout=30)
    closed.close()
    with pytest.raises(ClusterError):
        ae.simulate(n_paths=1000, seed=1, progress=False, client=closed)
