"""A compiled kernel's call of another compiled function bound at load time
(abs_engine.kernels._link): the same results as a linked call, errors passed on, an unbound
or mistyped binding a clear error rather than a jump to nowhere, and the generic kernels'
waterfall bound to the waterfall's own compile."""

from __future__ import annotations

import collections
import functools
import importlib
import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from numba import njit
from numba.core import types

import abs_engine as ae
from abs_engine.kernels import _link, montecarlo, waterfall

pytestmark = pytest.mark.skipif(numba.config.DISABLE_JIT, reason="compiled kernels only")


def _ratio_py(x, y):
    if y == 0.0:
        raise ZeroDivisionError("y is zero")
    return x / y


_ratio = njit(_ratio_py)

_bound_ratio = _link.bound_call(_ratio, types.float64)
_mistyped_ratio = _link.bound_call(_ratio, types.int64)


@njit
def _sum_of_ratios(xs, y):
    total = 0.0
    for x in xs:
        total += _bound_ratio(x, y)
    return total


@njit
def _mistyped(x, y):
    return _mistyped_ratio(x, y)


def _cell_of(module, name, argtypes, restype=types.float64):
    return _link._CELLS[_link._symbol(module, name, argtypes, restype)]


def _bound_to_own_compile(target, restype=_link.RETURNS_ZERO):
    """How many of the compiled ``target``'s signatures have a cell (a bound caller
    compiled or loaded for them), each checked to hold the target's own compiled code."""
    module, name = _link.where(target)
    cells = 0
    for sig in target.signatures:
        symbol = _link._symbol(module, name, tuple(sig), restype)
        if symbol in _link._CELLS:  # (a signature only a linked caller compiled has none)
            cres = target.overloads[sig]
            address = cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name)
            assert _link._CELLS[symbol].value == address != 0, (name, sig)
            cells += 1
    return cells


def test_a_bound_call_returns_what_the_callee_returns():
    xs = np.array([1.0, 2.0, 3.5, -7.25])
    assert _sum_of_ratios(xs, 3.0) == sum(_ratio_py(x, 3.0) for x in xs)
    # bound to the callee's own compile for the signature it was called with
    cres = _ratio.overloads[(types.float64, types.float64)]
    address = cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name)
    assert _cell_of(__name__, "_ratio", (types.float64, types.float64)).value == address != 0


def test_an_error_raised_in_the_callee_is_raised_by_the_caller():
    with pytest.raises(ZeroDivisionError, match="y is zero"):
        _sum_of_ratios(np.array([1.0]), 0.0)


def test_a_call_before_its_binding_is_an_error_not_a_crash():
    xs = np.array([1.0])
    _sum_of_ratios(xs, 2.0)
    cell = _cell_of(__name__, "_ratio", (types.float64, types.float64))
    kept, cell.value = cell.value, None
    try:
        with pytest.raises(RuntimeError, match="_ratio is not bound"):
            _sum_of_ratios(xs, 2.0)
    finally:
        cell.value = kept
    assert _sum_of_ratios(xs, 2.0) == 0.5


def test_a_callee_returning_another_type_than_declared_is_refused_when_bound():
    with pytest.raises(TypeError, match="declared int64"):
        _mistyped(1.0, 2.0)
    assert _sum_of_ratios(np.array([1.0]), 4.0) == 0.25  # the well-typed binding unharmed


def test_the_generic_kernels_run_the_waterfalls_own_compile(monkeypatch):
    # a run on the generic block kernel, and a deterministic run (run_paths): both call the
    # waterfall through its cell, set to the waterfall's own compiled code
    monkeypatch.setenv("ABS_ENGINE_SPECIALISE", "0")
    ae.simulate(n_paths=200, progress=False)
    after_monte_carlo = set(waterfall.waterfall_path.signatures)
    ae.run_deterministic()
    # the deterministic driver passes what the block kernel passes: one waterfall compile
    assert set(waterfall.waterfall_path.signatures) == after_monte_carlo != set()
    assert _bound_to_own_compile(waterfall.waterfall_path)


def test_the_generic_block_kernels_helpers_run_their_own_compile(monkeypatch):
    # the per-path helpers the generic block kernel calls bound: each cell it set holds its
    # target's own compiled code
    monkeypatch.setenv("ABS_ENGINE_SPECIALISE", "0")
    ae.simulate(n_paths=200, progress=False)
    calls = [v for v in montecarlo.GENERIC_BLOCK_REPLACEMENTS.values()
             if hasattr(v, "bound_target")]  # fmt: skip
    assert len(calls) == 5
    for call in calls:
        target = getattr(importlib.import_module(call.bound_target[0]), call.bound_target[1])
        assert _bound_to_own_compile(target), call.bound_target


def test_with_the_jit_disabled_a_bound_call_is_the_function_itself(monkeypatch):
    monkeypatch.setattr(numba.config, "DISABLE_JIT", True)
    assert _link.bound_call(_ratio_py) is _ratio_py


def test_a_caller_binds_the_callees_another_process_compiles_last(monkeypatch):
    # the callees compiled here meanwhile come first; the ones awaited, after
    order = []

    class Library:
        def finalize(self):
            order.append("finalized")

    library = Library()
    binders = [functools.partial(lambda m, n: order.append(n), "m", n) for n in "abc"]
    monkeypatch.setattr(_link, "AWAITED", {("m", "a")})
    for b in binders:
        _link._bind_after(library, b)
    _link._bind_after(library, binders[1])  # once each
    library.finalize()
    assert order == ["finalized", "b", "c", "a"]


def test_two_types_that_print_alike_never_share_a_binding():
    # two named tuple classes of one name whose fields come in another order: their numba
    # types print alike, alone or nested; the binding tells them apart, and refuses a
    # symbol already taken by other types
    P1 = collections.namedtuple("P", ["x", "y"])
    P2 = collections.namedtuple("P", ["y", "x"])
    for v1, v2 in ((P1(1.0, 2.0), P2(1.0, 2.0)), ((P1(1.0, 2.0),) * 2, (P2(1.0, 2.0),) * 2)):
        t1, t2 = numba.typeof(v1), numba.typeof(v2)
        assert str(t1) == str(t2) and t1 != t2
        assert _link._symbol("m", "f", (t1,), types.float64) != _link._symbol(
            "m", "f", (t2,), types.float64
        )
    t1, t2 = numba.typeof(P1(1.0, 2.0)), numba.typeof(P2(1.0, 2.0))
    s2 = _link._symbol("m", "f", (t2,), types.float64)
    _link._TYPES[s2] = ((t1,), types.float64)  # as if the text had collided
    try:
        with pytest.raises(TypeError, match="would share one binding"):
            _link._symbol("m", "f", (t2,), types.float64)
    finally:
        del _link._TYPES[s2]


_LINKED = """
import numpy as np
from numba import njit
from numba.core import types
from abs_engine.kernels import _link

@njit(cache=True)
def callee(x, y):
    return x * y + 1.0

bound = _link.bound_call(callee, types.float64)

@njit(cache=True)
def helper(x, y):
    return bound(x, y)

@njit(cache=True)
def kernel(xs, y):
    t = 0.0
    for x in xs:
        t += helper(x, y)
    return t
"""

_STEP = """
import sys
import numpy as np
from numba.core import types
sys.path.insert(0, sys.argv[1])
import linked_mod as m
if sys.argv[2] == "helper":
    m.helper.compile((types.float64, types.float64))
else:
    print(m.kernel(np.arange(3.0), 2.0), sum(m.kernel.stats.cache_hits.values()))
"""


@pytest.mark.slow
def test_a_caller_linking_a_cached_function_with_a_bound_call_binds_it_when_loaded(tmp_path):
    # a function holding a bound call, compiled and cached alone; a caller linking it
    # compiled in a later process that loads it from the cache; a third process loading the
    # caller alone must bind the call (numba's rebuilt library keeps its hooks: _link), not
    # jump to an unknown address
    (tmp_path / "linked_mod.py").write_text(_LINKED)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("NUMBA_DISABLE_JIT", None)
    outs = []
    for step in ("helper", "kernel", "kernel"):
        r = subprocess.run([sys.executable, "-c", _STEP, str(tmp_path), step], env=env,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
        assert r.returncode == 0, (step, r.returncode, r.stderr[-2000:])
        outs.append(r.stdout.split())
    assert outs[1] == ["9.0", "0"]  # 1 + 3 + 5, the kernel compiled there
    assert outs[2] == ["9.0", "1"]  # loaded from the cache alone
