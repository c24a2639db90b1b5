"""The cold compile over two processes (abs_engine.kernel_compile): the callees it compiles
apart are the ones the block kernel calls, with the same signatures; a run compiled that way
gives the same results; and it stands aside when it cannot help."""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numba
import numpy as np
import pytest
from conftest import ROOT, homogeneous_deal, mc
from numba.core.registry import CPUDispatcher

import abs_engine as ae
from abs_engine import kernel_compile as kc
from abs_engine.kernels import _link, collateral, montecarlo, rng
from abs_engine.kernels.montecarlo import (
    BLOCK_CALLEES,
    block_callee_args,
    block_scratch,
    run_block,
)
from abs_engine.simulation import start_simulation_compiled


def _job(cd=None, sc=None, **kw):
    cd = cd if cd is not None else ae.compile_deal(ae.load_deal())
    sc = sc if sc is not None else ae.load_scenario("huake_mc")
    return start_simulation_compiled(cd, sc, n_paths=64, seed=1, progress=False, jit=False,
                                     **kw).job  # fmt: skip


def _record(monkeypatch, names):
    """Wrap the Python twins called ``names`` where the block kernel's twin finds them; the
    numba types of the arguments of each call go into the returned dict."""
    seen = {}
    for name in names:
        for module in (montecarlo, collateral, rng):
            fn = vars(module).get(name)
            if fn is None or isinstance(fn, CPUDispatcher):
                continue

            def record(*args, _fn=fn, _name=name):
                seen.setdefault(_name, set()).add(tuple(numba.typeof(a) for a in args))
                return _fn(*args)

            monkeypatch.setattr(module, name, record)
    return seen


def test_block_callees_are_what_the_block_kernel_calls(monkeypatch):
    # the block kernel's Python twin, each callee's arguments recorded: the numba types of
    # what it passes must be those block_callee_args builds (the other process compiles
    # these: a signature off by one array flag compiles what the kernel never loads). Two
    # models: the bundled deal as shipped, and a Student-t copula with twisting (the gamma
    # variate and the twist's root search)
    jobs = [_job(), _job(homogeneous_deal(50, 0.05, [0.0, 0.1]),
                         mc(0.2, copula="student_t", nu=6), sampling="importance")]  # fmt: skip
    expected = {}
    for job in jobs:
        sums = job.shape.sums(1)
        calls = block_callee_args(job.spec, job.model, job.deal, sums,
                                  *block_scratch(job.model, job.deal, sums))  # fmt: skip
        for dispatcher, call in zip(BLOCK_CALLEES, calls, strict=True):
            expected.setdefault(dispatcher.py_func.__name__, set()).add(
                tuple(numba.typeof(a) for a in call)
            )
    copies = ("_copy_py", "_copy_rows_py")  # one signature a shape of array
    assert all(len(sigs) == 1 for name, sigs in expected.items() if name not in copies)
    seen = _record(monkeypatch, expected)
    for job in jobs:
        sums = job.shape.sums(1)
        with np.errstate(over="ignore"):  # the generator's uint64 arithmetic wraps by design
            montecarlo.run_block_py(0, 0, job.spec, job.model, job.deal, sums,
                                    *block_scratch(job.model, job.deal, sums))  # fmt: skip
    assert set(seen) == set(expected)  # every callee called, each with the listed types
    for name, sigs in seen.items():
        assert sigs == expected[name], name
    assert BLOCK_CALLEES[0].py_func.__name__ == "waterfall_path_py"  # compiled in this process


def test_every_compiled_function_the_block_kernel_calls_is_listed():
    # the names the compiled block kernel reads (its draws inlined) that are numba functions
    # it calls rather than inlines: each must be in BLOCK_CALLEES, or a cold compile would
    # compile it in this process after all
    fn = run_block.py_func
    called = {
        name: value
        for name, value in fn.__globals__.items()
        if name in fn.__code__.co_names
        and isinstance(value, CPUDispatcher)
        and value.targetoptions.get("inline", "never") != "always"
    }
    assert called, "no compiled callee found: the check itself is broken"
    missing = sorted(name for name, d in called.items() if d not in BLOCK_CALLEES)
    assert not missing
    # and those it calls bound (kernels._link): their targets too
    calls = {
        name: value
        for name, value in fn.__globals__.items()
        if name in fn.__code__.co_names and hasattr(value, "bound_target")
    }
    assert _link.bound_targets(fn) == {c.bound_target for c in calls.values()}  # as compiled
    bound = {name: getattr(importlib.import_module(c.bound_target[0]), c.bound_target[1])
             for name, c in calls.items()}  # fmt: skip
    assert {"waterfall_path_py", "path_metrics_py", "path_cashflows_py", "_add_path_py",
            "_add_histograms_py"} <= set(bound)  # fmt: skip
    assert not sorted(name for name, d in bound.items() if d not in BLOCK_CALLEES)
    # the waterfall first: the one the other process compiles, by the name it is bound by
    assert BLOCK_CALLEES[0] is bound["waterfall_path_py"]
    assert _link.where(BLOCK_CALLEES[0]) == fn.__globals__["waterfall_path_py"].bound_target


def _kernel(cache_path, module="abs_engine.kernels.montecarlo", name="run_block_py__jit"):
    return SimpleNamespace(
        stats=SimpleNamespace(cache_path=cache_path),
        py_func=SimpleNamespace(__module__=module, __qualname__=name),
    )


def test_cold_means_no_index_for_the_kernel_in_its_cache_folder(tmp_path):
    assert kc.is_cold(_kernel(str(tmp_path / "missing")))  # numba creates it when it saves
    assert kc.is_cold(_kernel(str(tmp_path)))
    (tmp_path / "montecarlo.run_block_cmc_py__jit-5.py311.nbi").write_text("")
    (tmp_path / "waterfall.run_block_py__jit-440.py311.nbc").write_text("")
    assert kc.is_cold(_kernel(str(tmp_path)))  # another kernel's index, a data file
    (tmp_path / "montecarlo.run_block_py__jit-440.py311.nbi").write_text("")
    assert not kc.is_cold(_kernel(str(tmp_path)))
    assert not kc.is_cold(_kernel(None))  # no disk cache: another process cannot help
    assert not kc.is_cold(object())  # unsure: compile as before


def test_a_kernel_loaded_or_compiled_is_not_cold():
    ae.simulate(n_paths=100, progress=False)  # compiled or loaded, and saved to its cache
    assert not kc.is_cold(run_block)


def test_no_second_process_when_told_on_one_core_or_without_a_python(monkeypatch):
    for value in ("1", "0", " 1 "):
        monkeypatch.setenv(kc.PROCESSES_ENV, value)
        assert kc.start_helper([]) is None
    monkeypatch.delenv(kc.PROCESSES_ENV)
    monkeypatch.setattr(kc, "_cores", lambda: 1)
    assert kc.start_helper([]) is None
    monkeypatch.setattr(kc, "_cores", lambda: 2)
    monkeypatch.setattr(sys, "executable", "/usr/sbin/uwsgi")  # an embedding host
    assert kc.start_helper([]) is None


def test_the_other_process_runs_this_package_with_the_signatures(monkeypatch):
    started = {}

    class FakePopen:
        def __init__(self, argv, stdin, stdout, stderr, env):
            started.update(argv=argv, env=env)
            self.stdin = io.BytesIO()
            self.stdin.close = lambda: started.update(payload=self.stdin.getvalue())

        def poll(self):
            return 0

    monkeypatch.delenv(kc.PROCESSES_ENV, raising=False)
    monkeypatch.setattr(kc, "_cores", lambda: 2)
    monkeypatch.setattr(kc.subprocess, "Popen", FakePopen)
    sigs = [(0, (numba.float64, numba.int64[:]))]
    assert isinstance(kc.start_helper(sigs), FakePopen)
    assert started["argv"][1:] == ["-P", "-m", "abs_engine.kernel_compile"]
    assert pickle.loads(started["payload"]) == sigs
    root = str(Path(kc.__file__).resolve().parents[1])
    if Path(root).name not in ("site-packages", "dist-packages"):
        assert started["env"]["PYTHONPATH"].split(os.pathsep)[0] == root


def test_a_cached_kernel_compiles_nothing_apart(monkeypatch):
    started = []
    monkeypatch.setattr(kc, "is_cold", lambda kernel: False)
    monkeypatch.setattr(kc, "start_helper", lambda sigs: started.append(sigs))
    kc.compile_callees(run_block, [None], [()])  # would fail if it compiled anything
    assert started == []


def test_a_helper_that_fails_costs_nothing_but_time(monkeypatch):
    # a process that exits at once without reading its input: this side carries on
    monkeypatch.setattr(kc, "is_cold", lambda kernel: True)
    monkeypatch.setattr(kc, "_DONE", set())
    proc = subprocess.Popen([sys.executable, "-c", "pass"], stdin=subprocess.PIPE)
    monkeypatch.setattr(kc, "start_helper", lambda sigs: proc)
    compiled = []
    callee = SimpleNamespace(compile=compiled.append)
    kc.compile_callees(run_block, [callee], [(1.0,), (2.0,)])
    assert compiled == [(numba.float64,)] and proc.poll() == 0


def test_callees_are_compiled_apart_once_a_process(monkeypatch):
    # two threads starting cold runs: the second finds the first's work done
    monkeypatch.setattr(kc, "is_cold", lambda kernel: True)
    monkeypatch.setattr(kc, "_DONE", set())
    started, compiled = [], []
    monkeypatch.setattr(kc, "start_helper", lambda sigs: started.append(sigs))
    callee = SimpleNamespace(compile=compiled.append)
    for _ in range(2):
        kc.compile_callees(run_block, [callee], [(1.0,), (2,)])
    assert started == [[(1, (numba.int64,))]] and compiled == [(numba.float64,)]


def test_a_kernel_that_binds_its_waterfall_compiles_here_while_the_other_process_compiles_it(
    monkeypatch,
):
    # the generic kernels: the other process gets the callees the kernel binds (here the
    # waterfall, callee 0), this one compiles the kernel itself, and binding the waterfall
    # waits for the other process
    monkeypatch.setattr(kc, "is_cold", lambda kernel: True)
    monkeypatch.setattr(kc, "_DONE", set())
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    started, events = [], []
    monkeypatch.setattr(kc, "start_helper", lambda sigs: started.append(sigs) or proc)
    monkeypatch.setattr(kc, "_bound_apart", lambda kernel, callees, sigs: {0: ("m", "waterfall")})

    def compile_kernel(sig):
        events.append(("kernel", sig, proc.poll(), set(_link.AWAITED)))
        kc._wait_for_helpers("m", "metrics")  # binding a callee compiled here: no wait
        events.append(("metrics", proc.poll()))
        kc._wait_for_helpers("m", "waterfall")  # what binding the waterfall does first
        events.append(("bound", proc.poll()))

    kernel = SimpleNamespace(compile=compile_kernel)
    waterfall = SimpleNamespace(compile=lambda sig: events.append(("waterfall here", sig)))
    kc.compile_callees(kernel, [waterfall, None], [(1.0,), (2,)], (3, 4.0))
    assert started == [[(0, (numba.float64,))]]
    assert events[0] == ("kernel", (numba.int64, numba.float64), None, {("m", "waterfall")})
    assert events[1] == ("metrics", None)  # still running
    assert events[2] == ("bound", 0) and len(events) == 3  # the waterfall not compiled here
    assert kc._HELPERS == {} and _link.AWAITED == set()


def test_the_other_process_gets_the_callees_the_kernel_binds_not_yet_compiled_here(
    monkeypatch,
):
    # the generic block kernel binds the waterfall and four per-path helpers: those go to the
    # other process, each once, unless compiled here already (another kernel's cold compile,
    # run_block_cmc's after run_block's, finds the waterfall loaded)
    sigs = [(numba.float64, numba.float64)] * len(BLOCK_CALLEES)  # compiled for none of them
    there = kc._bound_apart(run_block, BLOCK_CALLEES, sigs)
    names = {BLOCK_CALLEES[i].py_func.__name__ for i in there}
    assert names == {"waterfall_path_py", "path_metrics_py", "path_cashflows_py",
                     "_add_path_py", "_add_histograms_py"}  # fmt: skip
    assert 0 in there and all(_link.where(BLOCK_CALLEES[i]) == w for i, w in there.items())
    monkeypatch.setattr(BLOCK_CALLEES[0], "overloads", {sigs[0]: object()})
    assert 0 not in kc._bound_apart(run_block, BLOCK_CALLEES, sigs)
    assert kc._bound_apart(SimpleNamespace(), BLOCK_CALLEES, sigs) == {}  # binds nothing


def test_a_failed_kernel_compile_stops_the_process_compiling_its_waterfall(monkeypatch):
    monkeypatch.setattr(kc, "is_cold", lambda kernel: True)
    monkeypatch.setattr(kc, "_DONE", set())
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    monkeypatch.setattr(kc, "start_helper", lambda sigs: proc)
    monkeypatch.setattr(kc, "_bound_apart", lambda kernel, callees, sigs: {0: ("m", "waterfall")})

    def fails(sig):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        kc.compile_callees(SimpleNamespace(compile=fails), [None], [(1.0,)], (2,))
    assert proc.poll() is not None and kc._HELPERS == {} and _link.AWAITED == set()


def test_the_helper_is_told_which_callee_by_its_place_in_its_module():
    from abs_engine.kernels import waterfall

    assert _link.where(waterfall.waterfall_path) == ("abs_engine.kernels.waterfall",
                                                   "waterfall_path")  # fmt: skip
    assert _link.where(SimpleNamespace()) is None  # no module: nothing started for it
    # a function its module holds under no name (a copy): none either
    assert _link.where(SimpleNamespace(py_func=waterfall.waterfall_path_py)) is None


def test_an_interrupted_compile_stops_the_other_process(monkeypatch):
    monkeypatch.setattr(kc, "is_cold", lambda kernel: True)
    monkeypatch.setattr(kc, "_DONE", set())
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                            stdin=subprocess.PIPE)  # fmt: skip
    monkeypatch.setattr(kc, "start_helper", lambda sigs: proc)

    def interrupted(sig):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        kc.compile_callees(run_block, [SimpleNamespace(compile=interrupted)], [(1.0,), (2.0,)])
    assert proc.poll() is not None  # stopped, not waited for


def test_a_helper_that_hangs_is_stopped_after_the_wait(monkeypatch):
    monkeypatch.setattr(kc, "WAIT_S", 0.2)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    kc._finish(proc)
    assert proc.poll() is not None


_CHILD = r"""
import json, sys
from numba.core import event
compiled = []
class Listener(event.Listener):
    def on_start(self, ev):
        compiled.append(ev.data["dispatcher"].py_func.__name__)
    def on_end(self, ev):
        pass
event.register("numba:compile", Listener())
import abs_engine as ae
from abs_engine.kernels.montecarlo import BLOCK_CALLEES
r = ae.simulate(n_paths=3000, seed=5, progress=False)
loaded = [d.py_func.__name__ for d in BLOCK_CALLEES if sum(d.stats.cache_hits.values())]
print(json.dumps({"compiled": compiled, "loaded": loaded,
                  "tranches": json.dumps(r.tranches.to_dict())}))
"""


@pytest.mark.slow
def test_a_cold_compile_over_two_processes_gives_the_same_results(tmp_path):
    # an empty cache: the other process compiles the waterfall, this one the kernel and its
    # other callees, then loads the waterfall from the cache to bind it; the results are
    # those of a kernel compiled here in one process (this test session's)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), kc.PROCESSES_ENV: "2",
           "ABS_ENGINE_COMPILE_WAIT_S": "3600"}  # fmt: skip
    env.pop("NUMBA_DISABLE_JIT", None)
    out = subprocess.run([sys.executable, "-c", _CHILD], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=600, check=True)  # fmt: skip
    child = json.loads(out.stdout.strip().splitlines()[-1])
    mine = ae.simulate(n_paths=3000, seed=5, progress=False)
    assert child["tranches"] == json.dumps(mine.tranches.to_dict())  # floats exactly (repr)
    ours = {name for name in child["compiled"] if name.endswith("_py")}
    if kc._cores() >= 2:  # the waterfall with its callees (the fee base, a class's pays) there
        waterfall = {"waterfall_path_py", "base_amount_py", "_pay_class_py",
                     "_reserve_class_py", "_support_class_py"}  # fmt: skip
        assert "run_block_py" in ours and not ours & waterfall, ours
        assert "waterfall_path_py" in child["loaded"], child["loaded"]


_LOAD_ORDER = r"""
import json, sys
from numba.core.dispatcher import Dispatcher
order = []
compile_ = Dispatcher.compile
def compile(self, sig):
    fresh = tuple(sig) not in self.overloads
    out = compile_(self, sig)
    if fresh:
        order.append([self.py_func.__name__, sum(self.stats.cache_misses.values())])
    return out
Dispatcher.compile = compile
import abs_engine as ae
from abs_engine.simulation import run_range, start_simulation_compiled
if sys.argv[1] == "simulate":
    ae.simulate(n_paths=100, seed=1, progress=False)
else:  # a Dask task's entry point: the job built without loading any kernel
    job = start_simulation_compiled(ae.compile_deal(ae.load_deal()),
                                    ae.load_scenario("huake_mc"), n_paths=100, seed=1,
                                    progress=False, jit=False).job
    assert order == [], order
    run_range(0, 1, job.spec, job.model, job.deal, job.shape, True, 1, False)
print(json.dumps(order))
"""


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="compiled kernels only")
@pytest.mark.parametrize("entry", ["simulate", "run_range"])
def test_a_process_loads_the_cached_waterfall_before_the_generic_kernel(entry, monkeypatch):
    # this process's run puts the generic kernel in the cache where it is not (a run of the
    # specialised one would not); a new process loading the kernel binds the waterfall it
    # calls first (kernels._link: numba's reload hook of the cached kernel), loading it from
    # the cache too, and compiles neither
    monkeypatch.setenv("ABS_ENGINE_SPECIALISE", "0")
    ae.simulate(n_paths=100, seed=1, progress=False)
    out = subprocess.run([sys.executable, "-c", _LOAD_ORDER, entry], cwd=ROOT,
                         capture_output=True, text=True, timeout=600, check=True)  # fmt: skip
    order = json.loads(out.stdout.strip().splitlines()[-1])
    names = [name for name, _ in order]
    assert "waterfall_path_py" in names and "run_block_py" in names, order
    assert names.index("waterfall_path_py") < names.index("run_block_py"), order
    assert all(misses == 0 for _, misses in order), order  # loaded, not compiled


def test_a_compiled_kernel_without_a_python_wrapper_refuses_a_python_call():
    """A compiled twin built for other kernels only has no Python wrapper: called from
    Python, numba ran into it and the process died (a validator's ``cond_pd`` and
    ``ndtri``, both exported: exit 139). Now a TypeError names the Python twin (``ndtri``
    stays without one: a wrapper took 0.3 s more of the cold compile); the random-number
    draws have their wrappers."""
    from abs_engine.kernels.collateral import cond_pd
    from abs_engine.kernels.rng import ndtri, normal, normal_py

    args = (0, 0, 1.0, np.zeros(1), np.zeros((1, 1)), np.full(1, 0.5), np.full(1, 0.8),
            np.zeros(1, dtype=np.int64))  # fmt: skip
    with pytest.raises(TypeError, match=r"call abs_engine\.kernels\.collateral\.cond_pd_py"):
        cond_pd(*args)
    with pytest.raises(TypeError, match=r"call abs_engine\.kernels\.rng\.ndtri_py"):
        ndtri(0.3)
    key, counter = np.uint64(5), np.int64(1)
    assert normal(key, counter) == normal_py(key, counter)
