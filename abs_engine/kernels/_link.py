"""A compiled kernel's call of another compiled function, bound when the kernel is loaded
instead of linked into it.

numba links the code of every function a kernel calls into the kernel's own module and
optimises and compiles the whole once more: the generic block kernel's cold compile repeated
the waterfall interpreter's (its LLVM optimisation and code generation), and could not start
before the waterfall was compiled, since numba types a call by compiling the callee.
:func:`bound_call` gives a callable for the compiled twins that calls the callee through a
pointer instead: typing the call needs only the callee's declared return type, the kernel's
module holds a load of a cell (a pointer-sized global, one a callee and signature, kept in this
module and made known to LLVM by name) and an indirect call, and the callee is compiled (or
loaded from numba's cache) on its own, the cell then set to its compiled code.

When the cell is set:

* after a compile of the kernel, once numba has finished the kernel's machine code (the
  callee compiled meanwhile in another process can then be loaded from the cache:
  :data:`BEFORE_BIND`);
* when the kernel is loaded from numba's cache, before its machine code is loaded (numba's
  ``reload_init`` hook of a compile result, kept in the cache with it).

A call with the cell unset (nothing above ran: not expected) raises ``RuntimeError`` in the
kernel instead of jumping to address 0. Results are those of a linked call, bit for bit: the
same compiled callee runs. A cell is one a callee, argument types and return type (its symbol
spells out the classes in the types, so two types that print alike never share one).

Importing this module wraps numba's ``CompileResult._rebuild`` once, so that a compile result
loaded from the cache keeps its ``reload_init`` hooks with its code library, as a fresh compile
does: a caller linking such a function (one holding a bound call) then carries the binding
into its own cache entry (:func:`_rebuild_keeping_hooks`).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib
import sys
from collections.abc import Callable
from typing import Any

import numba
from llvmlite import binding as llvm
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.compiler import CompileResult as _CompileResult
from numba.extending import intrinsic

#: the return type of the kernels' helpers (``return 0``): a bound call's default
RETURNS_ZERO = types.literal(0)
#: name prefix of the cells' symbols
SYMBOL_PREFIX = "abs_engine.bound$"
#: symbol name -> its cell (a ``c_void_p`` holding the callee's address, 0 until bound)
_CELLS: dict[str, ctypes.c_void_p] = {}
#: symbol name -> the argument and return types it stands for
_TYPES: dict[str, tuple[tuple[Any, ...], Any]] = {}
#: called with (module name, callee name) before a cell is bound: the compile driver waits
#: there for another process compiling the callee (``abs_engine.kernel_compile``)
BEFORE_BIND: list[Callable[[str, str], None]] = []
#: (module name, callee name) of the callees another process is compiling: a compiled caller
#: binds them after its other callees, which this process compiles meanwhile
AWAITED: set[tuple[str, str]] = set()


def _type_text(t: Any) -> str:
    """``t`` (a numba type, or a part of one's key) as text, the classes in it (a named
    tuple's) by module, name and fields, nested types too: two named tuple classes of one
    name and field types print alike."""
    if isinstance(t, type):
        return f"{t.__module__}.{t.__qualname__}{tuple(getattr(t, '_fields', ()))}"
    if isinstance(t, (tuple, list)):
        return "(" + ", ".join(_type_text(x) for x in t) + ")"
    if isinstance(t, types.Type):
        key = t.key
        return str(t) if isinstance(key, str) else f"{type(t).__name__}{_type_text(key)}"
    return repr(t)


def _symbol(module: str, name: str, argtypes: tuple[Any, ...], restype: Any) -> str:
    """The cell's symbol for ``module.name`` called with ``argtypes`` and typed as returning
    ``restype`` (numba types); refuses (``TypeError``) other types that would share it."""
    text = repr((tuple(_type_text(t) for t in argtypes), _type_text(restype)))
    symbol = f"{SYMBOL_PREFIX}{module}.{name}.{hashlib.sha256(text.encode()).hexdigest()[:24]}"
    seen = _TYPES.setdefault(symbol, (argtypes, restype))
    if seen != (argtypes, restype):
        raise TypeError(f"{module}.{name}: {argtypes} and {seen[0]} would share one binding")
    return symbol


def _cell(symbol: str) -> ctypes.c_void_p:
    """The cell named ``symbol``, made and made known to LLVM on first use."""
    cell = _CELLS.get(symbol)
    if cell is None:
        cell = _CELLS[symbol] = ctypes.c_void_p(0)
        llvm.add_symbol(symbol, ctypes.addressof(cell))
    return cell


def _rebuild_keeping_hooks(rebuild: Any) -> Any:
    """numba's ``CompileResult._rebuild`` (a compile result loaded from the cache), which
    runs the result's ``reload_init`` hooks but leaves its code library without them: a
    caller compiled here that links such a library (a function holding a bound call, loaded
    from the cache) would then be cached without the binding, and a later process loading
    that caller alone would call an unknown symbol. The library keeps them here, as a
    library compiled in this process does."""

    @functools.wraps(rebuild)
    def rebuilt(cls: Any, *args: Any, **kwargs: Any) -> Any:
        result = rebuild(cls, *args, **kwargs)
        hooks = getattr(result, "reload_init", None) or ()
        library = getattr(result, "library", None)
        if hooks and isinstance(getattr(library, "_reload_init", None), set):
            library._reload_init.update(hooks)
        return result

    rebuilt.__abs_engine_keeps_hooks__ = True  # type: ignore[attr-defined]
    return classmethod(rebuilt)


if not getattr(_CompileResult._rebuild, "__abs_engine_keeps_hooks__", False):
    _CompileResult._rebuild = _rebuild_keeping_hooks(_CompileResult._rebuild.__func__)


def bind(module: str, name: str, argtypes: tuple[Any, ...], restype: Any) -> None:
    """Compile (or load from numba's cache) ``module.name`` for ``argtypes`` and set its cell
    to the compiled code; raises ``TypeError`` when it returns another type than the one the
    kernel was typed with."""
    cell = _cell(_symbol(module, name, argtypes, restype))
    if cell.value:
        return
    for wait in BEFORE_BIND:
        wait(module, name)
    callee = getattr(importlib.import_module(module), name)
    callee.compile(argtypes)
    cres = callee.overloads[argtypes]
    if cres.objectmode:
        raise TypeError(f"{module}.{name}{argtypes} compiled in object mode: not callable bound")
    if cres.signature.return_type != restype:
        raise TypeError(
            f"{module}.{name}{argtypes} returns {cres.signature.return_type}, declared {restype}"
        )
    address = cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name)
    if not address:
        raise RuntimeError(f"{module}.{name}: no compiled code for {argtypes}")
    cell.value = address


@functools.cache
def _binder(module: str, name: str, argtypes: tuple[Any, ...], restype: Any) -> Any:
    """One ``reload_init`` entry a callee and signature (numba keeps a set of them)."""
    return functools.partial(bind, module, name, argtypes, restype)


def _bind_after(library: Any, binder: Any) -> None:
    """Run ``binder`` once ``library`` (the kernel being compiled) is finalized."""
    pending = library.__dict__.setdefault("_abs_engine_binders", [])
    if not pending:
        finalize = library.finalize

        def finalize_then_bind() -> None:
            finalize()
            for b in sorted(pending, key=lambda b: (b.args[0], b.args[1]) in AWAITED):
                b()

        library.finalize = finalize_then_bind
    if binder not in pending:
        pending.append(binder)


def where(callee: Any) -> tuple[str, str] | None:
    """(module name, name) under which ``callee``'s module holds it (a compiled twin's module
    is its plain-Python twin's): how a bound call names its callee, picklably; None where the
    module holds it under no name."""
    module = getattr(getattr(callee, "py_func", None), "__module__", None)
    if not isinstance(module, str) or module not in sys.modules:
        return None
    found = ((module, k) for k, v in vars(sys.modules[module]).items() if v is callee)
    return next(found, None)


def bound_targets(fn: Any) -> set[tuple[str, str]]:
    """The callees (as :func:`where` names them) that the plain function ``fn`` (a compiled
    kernel's ``py_func``) calls bound: the bound calls among the globals its code names."""
    names = getattr(getattr(fn, "__code__", None), "co_names", ())
    return {
        value.bound_target
        for name, value in getattr(fn, "__globals__", {}).items()
        if name in names and hasattr(value, "bound_target")
    }


def bound_call(callee: Any, restype: Any = RETURNS_ZERO) -> Any:
    """An intrinsic calling the compiled function ``callee`` through its cell, with as many
    arguments as its plain-Python twin takes; typed as returning ``restype`` (checked when
    bound; default the ``return 0`` of the kernels' helpers). With numba's JIT disabled,
    ``callee`` itself (the plain-Python twin then)."""
    if numba.config.DISABLE_JIT:
        return callee
    target = where(callee)
    if target is None:
        raise ValueError(f"bound_call: {callee!r} is held by its module under no name")
    module, name = target
    n_args = callee.py_func.__code__.co_argcount

    def typer(typingctx: Any, *argtypes: Any) -> Any:
        argtypes = tuple(argtypes)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return _lower_call(context, builder, module, name, restype, argtypes, args)

        return restype(*argtypes), codegen

    # numba's intrinsics take their arguments by name: a typer of exactly ``n_args``
    params = ", ".join(f"a{i}" for i in range(n_args))
    scope: dict[str, Any] = {"typer": typer}
    exec(f"def bound_{name}(typingctx, {params}):\n    return typer(typingctx, {params})", scope)
    call = intrinsic(scope[f"bound_{name}"])
    call.bound_target = (module, name)  # what it calls (abs_engine.kernel_compile, tests)
    return call


def _lower_call(
    context: Any, builder: Any, module: str, name: str, restype: Any, argtypes: tuple, args: Any
) -> Any:
    """The call's code: load the cell, raise where it is unset, call, pass on an error."""
    symbol = _symbol(module, name, argtypes, restype)
    _cell(symbol)
    fnty = context.call_conv.get_function_type(restype, argtypes)
    mod = builder.module
    try:
        gv = mod.get_global(symbol)
    except KeyError:
        gv = ir.GlobalVariable(mod, fnty.as_pointer(), name=symbol)
        gv.linkage = "external"
    fn = builder.load(gv)
    with cgutils.if_unlikely(builder, cgutils.is_null(builder, fn)):
        context.call_conv.return_user_exc(builder, RuntimeError, (f"{module}.{name} is not bound",))
    status, res = context.call_conv.call_function(builder, fn, restype, argtypes, args)
    with cgutils.if_unlikely(builder, status.is_error):
        context.call_conv.return_status_propagate(builder, status)
    binder = _binder(module, name, argtypes, restype)
    library = context.active_code_library
    library._reload_init.add(binder)
    _bind_after(library, binder)
    return context.get_dummy_value() if restype == types.none else res
