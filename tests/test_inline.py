"""Source-level inlining of kernel helpers (abs_engine.kernels._inline): the rewritten function
computes what the original computes, in Python and compiled by numba, and what cannot be
inlined faithfully is refused."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from abs_engine.kernels import collateral as C
from abs_engine.kernels import waterfall as W
from abs_engine.kernels._inline import inline_helpers

# --- helpers and callers used by the tests (module level: the inliner reads their source) ---


def _add_to(a, i, x):
    """Adds x to a[i] and returns the new value; assigns none of its parameters."""
    a[i] += x
    return a[i]


def _drain(avail, owed):
    """Assigns its parameter ``avail``: the caller's variable must not change unless the
    caller assigns the result to it."""
    x = owed if owed < avail else avail
    avail -= x
    return avail


def _split(total, share):
    """Two results; a local named like the caller's (``x``)."""
    x = total * share
    return x, total - x


def _loop_local(a, n):
    """A loop with break inside its own loop; returns nothing useful."""
    for k in range(n):
        if a[k] < 0.0:
            break
        a[k] *= 2.0
    return 0


def _outer(a, avail):
    """Calls helpers itself: nested inlining."""
    avail = _drain(avail, 3.0)
    _loop_local(a, 2)
    return avail


def caller(a, avail):
    x = 100.0
    left = _drain(avail, 1.5)  # avail itself unchanged
    y = _add_to(a, 0, left)
    p, q = _split(x, 0.25)
    r = _add_to(a, 2, a[3] + p)  # an expression argument: evaluated once, before the body
    _loop_local(a, 3)
    avail = _outer(a, avail)
    for k in range(2):  # _loop_local's k is renamed apart
        kx = k + 1.0
        v = _add_to(a, 1, kx)
        y += v
    return avail, left, x, y, p, q, r


HELPERS = (_add_to, _drain, _split, _loop_local, _outer)


def _early_return(x):
    if x > 0:
        return 1
    return 0


def calls_early_return(x):
    y = _early_return(x)
    return y


def calls_in_expression(a):
    y = 1.0 + _add_to(a, 0, 1.0)
    return y


def calls_with_keyword(a):
    y = _add_to(a, 0, x=1.0)
    return y


SCALE = 2.0


def _scaled(x):
    """Reads the module's SCALE."""
    y = x * SCALE
    return y


def shadows_a_global(x):
    SCALE = 3.0
    y = _scaled(x)
    return y + SCALE


def test_a_helper_not_of_the_callers_module_is_refused():
    """A helper must be the function its name means in the caller's module: one from another
    namespace (where SCALE means something else) or a stand-in of the same name is refused,
    since inlined its module-level names would be read in the caller's."""
    import types

    elsewhere = types.FunctionType(_scaled.__code__, {"SCALE": 5.0}, "_scaled")
    with pytest.raises(TypeError, match="not a function of _wrap_scaled's module"):
        inline_helpers(_wrap_scaled, (elsewhere,), dict(_wrap_scaled.__globals__))
    assert inline_helpers(_wrap_scaled, (_scaled,), dict(_wrap_scaled.__globals__))(1.0) == 2.0


def test_a_helper_of_another_module_is_inlined_with_its_environment():
    """A helper of another module comes with that module's compiled environment: the names
    it reads are added to the caller's globals from there (here SCALE = 5 for a caller that
    has none); a name the caller's module binds to something else, or one the environment
    does not bind, is refused."""
    import types

    elsewhere = types.FunctionType(_scaled.__code__, {"SCALE": 5.0}, "_scaled")
    env = {"_scaled": elsewhere, "SCALE": 5.0}
    caller_globals = {k: v for k, v in _wrap_scaled.__globals__.items() if k != "SCALE"}
    inlined = inline_helpers(_wrap_scaled, (elsewhere,), caller_globals, env)
    assert inlined(1.0) == 5.0 and caller_globals["SCALE"] == 5.0
    assert "_scaled" not in inlined.__code__.co_names
    with pytest.raises(TypeError, match="reads SCALE, which means something else"):
        inline_helpers(_wrap_scaled, (elsewhere,), dict(_wrap_scaled.__globals__), env)
    with pytest.raises(TypeError, match="reads SCALE, which its environment does not bind"):
        inline_helpers(_wrap_scaled, (elsewhere,), dict(caller_globals), {"_scaled": elsewhere})


def _walrus_return(a):
    return (y := a + 1)  # noqa: F841 (the walrus is the point)


def calls_walrus_return(a):
    y = 100
    z = _walrus_return(a)
    return y, z


def _recursive(x):
    y = _recursive(x)
    return y


def calls_recursive(x):
    y = _recursive(x)
    return y


def _has_try(x):
    try:
        y = 1 / x
    except ZeroDivisionError:
        y = 0.0
    return y


def calls_has_try(x):
    y = _has_try(x)
    return y


def calls_with_walrus_argument(x):
    y = _drain(x, (x := 5.0))
    return y


def test_a_walrus_in_the_return_is_renamed_apart():
    inlined = inline_helpers(calls_walrus_return, (_walrus_return,), dict(globals()))
    assert inlined(1) == calls_walrus_return(1) == (100, 2)


def _wrap_scaled(x):
    y = _scaled(x)
    return y


def _fresh():
    return np.array([1.0, 2.0, -1.0, 4.0])


def test_inlined_caller_computes_what_the_original_computes():
    inlined = inline_helpers(caller, HELPERS, dict(caller.__globals__))
    names = set(inlined.__code__.co_names)
    assert not names & {h.__name__ for h in HELPERS}  # no call left
    a1, a2 = _fresh(), _fresh()
    assert caller(a1, 10.0) == inlined(a2, 10.0)
    assert np.array_equal(a1, a2)


def test_inlined_caller_compiles_with_numba_and_agrees():
    inlined = njit(inline_helpers(caller, HELPERS, dict(caller.__globals__)))
    a1, a2 = _fresh(), _fresh()
    assert caller(a1, 10.0) == inlined(a2, 10.0)
    assert np.array_equal(a1, a2)


def test_line_numbers_stay_those_of_the_source_file():
    inlined = inline_helpers(caller, HELPERS, dict(caller.__globals__))
    assert inlined.__code__.co_filename == caller.__code__.co_filename
    assert inlined.__code__.co_firstlineno == caller.__code__.co_firstlineno


@pytest.mark.parametrize(
    ("fn", "helpers", "message"),
    [
        (calls_early_return, (_early_return,), "must end in its only return"),
        (calls_in_expression, (_add_to,), "must be called as a statement"),
        (calls_with_keyword, (_add_to,), "positional arguments"),
        (shadows_a_global, (_scaled,), r"reads \['SCALE'\] from its module"),
        (calls_recursive, (_recursive,), "calls itself"),
        (calls_has_try, (_has_try,), "Try cannot be inlined"),
        (calls_with_walrus_argument, (_drain,), "no := in _drain's arguments"),
    ],
)
def test_what_cannot_be_inlined_faithfully_is_refused(fn, helpers, message):
    with pytest.raises(TypeError, match=message):
        inline_helpers(fn, helpers, dict(fn.__globals__))


def test_the_compiled_waterfall_calls_no_helper():
    """Every phase and opcode helper of the interpreter is inlined into its compiled twin
    (none left as a numba call), and the Python twin is the function that calls them."""
    compiled_names = set(W.waterfall_path.py_func.__code__.co_names)
    helper_names = {h.__name__ for h in W.INLINED_HELPERS}
    assert not compiled_names & helper_names
    assert helper_names & set(W.waterfall_path_py.__code__.co_names)
    assert W.waterfall_path.py_func.__code__.co_filename == W.__file__


def test_the_compiled_collateral_draws_call_no_phase():
    """The collateral phases (factors, prepayment, providers, obligor defaults, booking) are
    inlined into the compiled draws, and the draws with their phases into the compiled block
    kernel (helpers of another module: ``collateral.DRAWS_ENV``); the Python twins call
    them."""
    from abs_engine.kernels import montecarlo as M

    helper_names = {h.__name__ for h in C._PARTS}
    assert not set(C.collateral_draws.py_func.__code__.co_names) & helper_names
    assert helper_names & set(C.collateral_draws_py.__code__.co_names)
    draws_names = {h.__name__ for h in C.DRAWS_SOURCE}
    assert not set(M.run_block.py_func.__code__.co_names) & draws_names
    assert "collateral_draws_py" in M.run_block_py.__code__.co_names
