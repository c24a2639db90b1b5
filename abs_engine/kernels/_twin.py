"""One source, two kernels: build the compiled twin of a plain-Python kernel.

A kernel is written once as ``foo_py``, calling other kernels by their ``*_py`` names.
``jit_twin(foo_py, {"bar_py": bar})`` compiles a copy of it whose global names point at the
compiled helpers instead, so the Python reference and the numba kernel cannot drift apart.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from typing import Any

import numba
import numpy as np
from numba import njit
from numba.core.compiler import CompilerBase, DefaultPassBuilder
from numba.core.registry import CPUDispatcher
from numba.core.typed_passes import NopythonRewrites
from numba.core.untyped_passes import InlineClosureLikes, ReconstructSSA

from ._inline import inline_helpers

__all__ = ["KernelCompiler", "jit_twin"]

#: numba passes the kernels have no use for: inlining closures (the kernels define none; the
#: inliner refuses nested functions, lambdas and comprehensions), the rewrites after type
#: inference (array expressions fused into loops, string-literal indexing: the kernels use
#: neither, and the compiled twins of those that do not allocate may not), and the SSA
#: reconstruction, which lets a variable take different types at different assignments: a
#: kernel variable has one type throughout (without it numba unifies its assignments' types:
#: an int and a float assignment make a float, holding the same values; what it cannot unify
#: fails to compile. The twin tests check the result; every output bitwise as with it, 123 of
#: 123 arrays). The first two took about 1 s of the
#: waterfall's 8-9 s compile (numba's pass timings), SSA about 1 s more and a slower type
#: inference after it (the waterfall 6.0-6.5 s without it against 7.6-8.9 s, two pairs)
_SKIPPED_PASSES = (InlineClosureLikes, ReconstructSSA, NopythonRewrites)


class KernelCompiler(CompilerBase):
    """numba's nopython pipeline without :data:`_SKIPPED_PASSES` (``njit(pipeline_class=...)``,
    numba's documented way to customise the pipeline)."""

    def define_pipelines(self):
        pm = DefaultPassBuilder.define_nopython_pipeline(self.state)
        pm.passes = [(p, d) for p, d in pm.passes if p not in _SKIPPED_PASSES]
        pm.finalize()
        return [pm]


class KernelOnlyDispatcher(CPUDispatcher):
    """A compiled twin built without a Python wrapper (``no_cpython_wrapper=True``): other
    kernels call it, and a call from Python, which numba would run into the missing wrapper
    (the process killed by a segmentation fault: a validator's ``ndtri(0.3)``), is a
    :class:`TypeError` naming the plain-Python twin instead."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        name = self.py_func.__name__
        short = name.removesuffix("_py")
        raise TypeError(
            f"the compiled {short} is for other kernels only (no Python wrapper): call "
            f"{self.py_func.__module__}.{name} from Python"
        )


def jit_twin(
    py_fn: Callable[..., Any],
    replacements: dict[str, Any] | None = None,
    *,
    inline_source: Sequence[Callable[..., Any]] = (),
    inline_env: dict[str, Any] | None = None,
    refcounts: bool = True,
    transform: Callable[[Any], Any] | None = None,
    transform_key: str | None = None,
    transform_state: dict[str, Any] | None = None,
    suffix: str = "",
    **njit_kw: Any,
):
    """``njit(**njit_kw)`` of a copy of ``py_fn`` whose globals named in ``replacements`` are
    swapped (typically ``{"helper_py": helper}``), and whose calls of the helpers in
    ``inline_source`` are replaced by their bodies
    (:func:`abs_engine.kernels._inline.inline_helpers`: one compiled function, no numba call
    per helper; helpers of another module come with ``inline_env``, that module's globals
    with its compiled twins swapped in).

    Compiled kernels are called from other kernels only, so numba builds no Python wrapper
    for them (``no_cpython_wrapper=True``: unboxing bundles of 20-40 arrays is a large part of
    a wrapper; the cold compile took 13% less, 28.5 and 31.2 s against 32.8 and 36.1 s, both
    trees compiling at the same time on swapped cores). The kernels Python calls pass
    ``no_cpython_wrapper=False``: the block kernels, ``run_paths``, ``collateral_path`` and
    ``collateral_scratch``, and the random-number functions.

    ``refcounts=False`` compiles without numba's reference counting (its private option
    ``_nrt=False``, in every numba since 0.2x): no atomic increment and decrement for each
    array argument and each array read from a bundle. For the kernels called once a path or
    more (the block kernel and all it calls), which allocate nothing, return no array and keep
    none past the call: numba refuses to compile an allocation without reference counts, but
    not a returned array (a caller that counts would then release it once too often), and
    the caller holds the arrays. Those counts took a third of the samples of a perf profile
    (the bundled deal, every path computed) but about 5% of a path's time (alternating
    one-thread processes); without them the cold compile took about a fifth less (24-29 s
    against 30-32 s), the compiled code being shorter.

    ``transform`` rewrites the inlined definition before it is compiled (``inline_source``
    required; :func:`~abs_engine.kernels._inline.inline_helpers`; what it leaves in the dict
    ``transform_state`` is part of its result), and ``suffix`` is added to the compiled copy's
    name: numba's on-disk cache tells functions apart by module, name and first line, so each
    specialisation of one kernel needs a name of its own.

    With ``cache=True`` the inlined code object is kept on disk too
    (:mod:`abs_engine.kernels._codecache`: no inlining in later processes), with a
    ``transform`` only where ``transform_key`` names all it reads besides the sources."""
    g = dict(py_fn.__globals__)
    g.update(replacements or {})
    if transform is not None and not inline_source:
        raise TypeError("jit_twin: a transform needs inline_source")
    if inline_source:
        keep = bool(njit_kw.get("cache")) and (transform is None or transform_key is not None)
        f = inline_helpers(py_fn, inline_source, g, inline_env, transform, cache=keep,
                           cache_extra=transform_key or "", state=transform_state)  # fmt: skip
    else:
        f = types.FunctionType(py_fn.__code__, g, py_fn.__name__, py_fn.__defaults__,
                               py_fn.__closure__)  # fmt: skip
    # the module's int constants (layout columns, codes) as int64 scalars in the compiled
    # copy's globals: numba types an int global as a literal, so each distinct column of
    # ``a[t, j, LT_X]`` was another index type to resolve; int64 scalars share one (the
    # waterfall's type inference 1.0-1.1 s instead of 1.1-1.4 s in three alternating pairs)
    if not numba.config.DISABLE_JIT:  # Python runs the copy then: keep Python ints
        for name, value in list(f.__globals__.items()):
            if type(value) is int and name.isupper() and -(2**63) <= value < 2**63:
                f.__globals__[name] = np.int64(value)
    f.__qualname__ = py_fn.__qualname__ + "__jit" + suffix
    f.__module__ = py_fn.__module__
    f.__doc__ = py_fn.__doc__
    njit_kw.setdefault("no_cpython_wrapper", True)
    njit_kw.setdefault("pipeline_class", KernelCompiler)
    if not refcounts:
        njit_kw["_nrt"] = False
    compiled = njit(**njit_kw)(f)
    if njit_kw["no_cpython_wrapper"] and isinstance(compiled, CPUDispatcher):
        compiled.__class__ = KernelOnlyDispatcher  # (a plain function when JIT is disabled)
    return compiled
