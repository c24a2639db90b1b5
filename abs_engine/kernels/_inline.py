"""Source-level inlining of phase helpers into the kernel that calls them, for its numba twin.

A kernel written as short phase helpers reads well, but numba calls cost: every array argument
is passed field by field and reference-counted, and numba's own inlining (``inline="always"``)
keeps the reference counts and compiles longer. Measured on the waterfall interpreter split
into per-opcode helpers (the bundled deal, every path computed, one process alternating with
the one-function version): plain calls 1.50x the time a path, ``_nrt=False`` calls 1.25x,
``inline="always"`` 1.24x and 3 s more to compile.

:func:`inline_helpers` rewrites a kernel's syntax tree instead: each statement
``x = helper(a, b)`` (or ``helper(a, b)``, or ``x, y = helper(...)``) becomes the helper's
body, its locals renamed apart, its parameters replaced by the argument names, and its final
``return`` assigned to the targets. Numba then compiles one function, as if it had been
written that way, while the plain-Python twin calls the helpers themselves: the twin tests
(bitwise equal results) check the two against each other.

What a helper may be (checked, :class:`TypeError` otherwise): a plain function of the
caller's own module (so its module-level names, and the compiled twins swapped in for them,
mean the same inlined), the one its name means there, or one of another module given with
that module's compiled environment (``foreign``: its globals with its compiled twins swapped
in; the names its helpers read are added to the caller's globals, and must not mean
something else there; their line numbers stay those of their own file, so a numba message
about an inlined line names the caller's file with the helper's line); whose body ends in
its only ``return`` (Python allows no ``break``/``continue`` outside its loops), not calling
itself, with no nested functions, lambdas or comprehensions, ``global``/``nonlocal``,
``yield``, ``del``, ``import``, ``try`` or ``match``. What a call may be: a statement of the
forms above, its arguments positional and without ``:=``. An argument that is a name the
helper does not assign is substituted for the parameter; any other is assigned to a renamed
local before the body, in order, as a call would evaluate it (the kernels' helpers assign
only scalar parameters; their other arguments are side-effect-free expressions).
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import itertools
import textwrap
import types
from collections.abc import Callable, Sequence
from typing import Any

from ._codecache import cached_code, code_key

__all__ = ["inline_helpers"]

_BANNED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.Global,
           ast.Nonlocal, ast.Yield, ast.YieldFrom, ast.Await, ast.Delete, ast.Import,
           ast.ImportFrom, ast.Try, ast.Match, ast.ListComp, ast.SetComp, ast.DictComp,
           ast.GeneratorExp)  # fmt: skip


def clone(node: Any) -> Any:
    """A deep copy of a syntax tree (a node, a list of nodes, or a leaf value): what
    ``copy.deepcopy`` gives for one, at a fraction of its cost (no memo, no ``__reduce_ex__``;
    a tree shares no node, and its leaves, names and constants, are immutable). The
    specialiser and the inliner copy a kernel's statements thousands of times a deal."""
    if isinstance(node, list):
        return [clone(x) for x in node]
    if not isinstance(node, ast.AST):
        return node
    new = node.__class__.__new__(node.__class__)
    new.__dict__.update({k: clone(v) for k, v in node.__dict__.items()})
    return new


def _function_def(fn: Callable[..., Any]) -> ast.FunctionDef:
    """``fn``'s definition, its line numbers those of its source file: a copy of its own, of
    the tree parsed once a process."""
    return clone(_parsed(fn))


@functools.cache
def _source(fn: Callable[..., Any]) -> tuple[str, int]:
    """``fn``'s source text and first line, read once a process: what :func:`_parsed` parses
    and the code cache's key hashes (:func:`inline_helpers`), so the two cannot differ."""
    lines, first = inspect.getsourcelines(fn)
    return "".join(lines), first


@functools.cache
def _parsed(fn: Callable[..., Any]) -> ast.FunctionDef:
    """``fn``'s definition as parsed (shared: :func:`_function_def` hands out copies)."""
    text, first = _source(fn)
    tree = ast.parse(textwrap.dedent(text))
    ast.increment_lineno(tree, first - 1)
    node = tree.body[0]
    if not isinstance(node, ast.FunctionDef):
        raise TypeError(f"{fn.__name__}: not a plain function")
    return node


def _body(node: ast.FunctionDef) -> list[ast.stmt]:
    """The statements of ``node`` without its docstring."""
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return body


class _Helper:
    """A helper's parameters, the names it assigns, its body and its returned expression
    (read-only once built, as its body is copied where it is inlined: :func:`_helper`
    shares one a function)."""

    def __init__(self, fn: Callable[..., Any]):
        node = _parsed(fn)
        self.name = fn.__name__
        a = node.args
        if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs or a.defaults:
            raise TypeError(f"{self.name}: only plain positional parameters can be inlined")
        self.params = [p.arg for p in a.args]
        body = _body(node)
        if not body or not isinstance(body[-1], ast.Return):
            raise TypeError(f"{self.name}: must end in its only return")
        self.returned = body[-1].value
        self.body = body[:-1]
        self._check(body)
        self.assigned = _names(body, ast.Store)  # the return's too (a walrus)
        # the names it reads from its module (constants, other kernels): they must mean the
        # same in the caller, so the caller may not have a local of that name
        read = _names(body, ast.Load)
        self.free = read - self.assigned - set(self.params)

    def _check(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            for n in ast.walk(stmt):
                if isinstance(n, _BANNED):
                    raise TypeError(f"{self.name}: {type(n).__name__} cannot be inlined")
                if isinstance(n, ast.Return) and n is not body[-1]:
                    raise TypeError(f"{self.name}: must end in its only return")


@functools.cache
def _helper(fn: Callable[..., Any]) -> _Helper:
    """``fn`` read as a helper, once a process (the specialiser inlines the same helpers
    into the waterfall for every deal structure)."""
    return _Helper(fn)


def _names(stmts: list[ast.stmt], ctx: type) -> set[str]:
    """The names ``stmts`` use in context ``ctx`` (``ast.Store`` or ``ast.Load``)."""
    return {
        n.id
        for stmt in stmts
        for n in ast.walk(stmt)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)
    }


class _Rename(ast.NodeTransformer):
    """Names of a helper's locals → their names in the caller (renamed apart, or the
    caller's argument names for parameters it does not assign)."""

    def __init__(self, mapping: dict[str, str]):
        self.mapping = mapping

    def visit_Name(self, node: ast.Name) -> ast.AST:
        new = self.mapping.get(node.id)
        if new is None:
            return node
        return ast.copy_location(ast.Name(id=new, ctx=node.ctx), node)


class _Inliner(ast.NodeTransformer):
    """Replace the helper-call statements of a function body by the helpers' bodies."""

    def __init__(self, helpers: dict[str, _Helper]):
        self.helpers = helpers
        self.count = itertools.count()
        self.expanding: list[str] = []  # helpers being expanded, outermost first

    def _call(self, value: ast.AST | None) -> tuple[_Helper, ast.Call] | None:
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
            helper = self.helpers.get(value.func.id)
            if helper is not None:
                return helper, value
        return None

    def visit_Assign(self, node: ast.Assign) -> Any:
        found = self._call(node.value)
        if found is None:
            return self.generic_visit(node)
        if len(node.targets) != 1:
            raise TypeError(f"line {node.lineno}: one target per inlined call")
        return self._expand(*found, node.targets[0], node)

    def visit_Expr(self, node: ast.Expr) -> Any:
        found = self._call(node.value)
        if found is None:
            return self.generic_visit(node)
        return self._expand(*found, None, node)

    def visit_Call(self, node: ast.Call) -> Any:
        if self._call(node) is not None:
            raise TypeError(f"line {node.lineno}: {node.func.id} must be called as a statement")  # type: ignore[attr-defined]
        return self.generic_visit(node)

    def _expand(self, helper: _Helper, call: ast.Call, target: ast.expr | None,
                where: ast.stmt) -> list[ast.stmt]:  # fmt: skip
        if call.keywords or len(call.args) != len(helper.params):
            raise TypeError(f"line {where.lineno}: {helper.name} takes "
                            f"{len(helper.params)} positional arguments")  # fmt: skip
        if helper.name in self.expanding:
            raise TypeError(f"{helper.name} calls itself (through {self.expanding})")
        if any(isinstance(n, ast.NamedExpr) for arg in call.args for n in ast.walk(arg)):
            raise TypeError(f"line {where.lineno}: no := in {helper.name}'s arguments")
        tag = f"_i{next(self.count)}_{helper.name.strip('_')}_"
        mapping = {name: tag + name for name in helper.assigned}
        out: list[ast.stmt] = []
        for param, arg in zip(helper.params, call.args, strict=True):
            if isinstance(arg, ast.Starred):
                raise TypeError(f"line {where.lineno}: {helper.name}: no *arguments")
            if param in helper.assigned or not isinstance(arg, ast.Name):
                # evaluated once, before the body, in order: as a call evaluates its arguments
                mapping[param] = tag + param
                assign = ast.Assign(targets=[ast.Name(id=tag + param, ctx=ast.Store())],
                                    value=arg)  # fmt: skip
                out.append(ast.copy_location(assign, where))
            else:
                mapping[param] = arg.id
        rename = _Rename(mapping)
        for stmt in helper.body:
            out.append(rename.visit(clone(stmt)))
        returned = rename.visit(clone(helper.returned)) if helper.returned else None
        if target is not None:
            if returned is None:
                raise TypeError(f"line {where.lineno}: {helper.name} returns nothing")
            out.append(ast.copy_location(ast.Assign(targets=[target], value=returned), where))
        elif returned is not None and not isinstance(returned, ast.Constant | ast.Name):
            raise TypeError(f"line {where.lineno}: {helper.name}'s result is dropped")
        # helpers that call helpers: expand those too (their names renamed apart again)
        self.expanding.append(helper.name)
        expanded = [s for stmt in out for s in _as_list(self.visit(stmt))]
        self.expanding.pop()
        return expanded


def _as_list(x: Any) -> list[ast.stmt]:
    return x if isinstance(x, list) else [x]


def _merge_names(name: str, free: Sequence[str], foreign: dict[str, Any],
                 globals_: dict[str, Any], caller: str) -> None:  # fmt: skip
    """Add the module-level names ``free`` that the helper ``name`` of another module reads
    to the caller's globals, as ``foreign`` (its module's compiled environment) binds them; a
    name the caller's globals bind to something else is refused (inlined, the helper would
    read that)."""
    for read in free:
        if read in foreign:
            value = foreign[read]
        elif hasattr(builtins, read):
            continue
        else:
            raise TypeError(f"{name} reads {read}, which its environment does not bind")
        if read in globals_ and globals_[read] is not value:
            raise TypeError(f"{name} reads {read}, which means something else in "
                            f"{caller}'s module")  # fmt: skip
        globals_[read] = value


@functools.cache
def _inlined(py_fn: Callable[..., Any], helpers: tuple[Callable[..., Any], ...]) -> ast.FunctionDef:
    """``py_fn``'s definition with the calls of ``helpers`` expanded, once a process (shared:
    :func:`inline_helpers` transforms a copy; the specialiser inlines the same waterfall for
    every deal structure)."""
    node = _function_def(py_fn)
    a = node.args
    if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs:
        raise TypeError(f"{py_fn.__name__}: only plain positional parameters")
    inliner = _Inliner({fn.__name__: _helper(fn) for fn in helpers})
    node.body = [s for stmt in node.body for s in _as_list(inliner.visit(stmt))]
    local = _names(node.body, ast.Store) | {a.arg for a in node.args.args}
    for helper in inliner.helpers.values():
        clash = helper.free & local
        if clash:
            raise TypeError(
                f"{helper.name} reads {sorted(clash)} from its module, which {py_fn.__name__} "
                "assigns: inlined, it would read the local"
            )
    node.decorator_list = []
    return node


def inline_helpers(
    py_fn: Callable[..., Any],
    helpers: Sequence[Callable[..., Any]],
    globals_: dict[str, Any],
    foreign: dict[str, Any] | None = None,
    transform: Callable[[ast.FunctionDef], ast.FunctionDef] | None = None,
    *,
    cache: bool = False,
    cache_extra: str = "",
    state: dict[str, Any] | None = None,
) -> types.FunctionType:
    """A copy of ``py_fn`` with every call statement of a function in ``helpers`` replaced by
    that helper's body (helpers calling helpers are expanded too), its globals ``globals_``
    (to which the names read by helpers of another module are added from ``foreign``, that
    module's compiled environment). Line numbers stay those of the source file, so numba's
    messages point at the real lines. ``transform``, if given, rewrites the inlined
    definition before it is compiled (:mod:`abs_engine.kernels.specialise`); what it leaves
    in ``state`` (a dict) is part of its result.

    ``cache``: the code object (and ``state``) kept on disk between processes
    (:mod:`abs_engine.kernels._codecache`), under a key of the sources of ``py_fn`` and its
    helpers and of ``cache_extra``, which must name everything else the ``transform``
    reads (a specialisation's structure key)."""
    own = set()
    for fn in helpers:
        # a helper is the function its name means in the caller's module: its module-level
        # names (constants, kernels, and the twins swapped in) then mean the same inlined;
        # or the one its name means in ``foreign``, whose names are then merged in below
        if fn.__globals__ is py_fn.__globals__ and py_fn.__globals__.get(fn.__name__) is fn:
            own.add(fn.__name__)
        elif foreign is None or foreign.get(fn.__name__) is not fn:
            raise TypeError(f"{fn.__name__}: not a function of {py_fn.__name__}'s module, nor of "
                            "the environment given for another module's helpers")  # fmt: skip

    def build() -> tuple[types.CodeType, Any]:
        node = clone(_inlined(py_fn, tuple(helpers)))
        free = {fn.__name__: sorted(_helper(fn).free) for fn in helpers if fn.__name__ not in own}
        if transform is not None:
            node = transform(node)
        module = ast.fix_missing_locations(ast.Module(body=[node], type_ignores=[]))
        code = compile(module, py_fn.__code__.co_filename, "exec")
        fn_code = next(c for c in code.co_consts if isinstance(c, types.CodeType))
        return fn_code, (free, dict(state) if state is not None else None)

    # a transformed definition's key is never an untransformed one's, whatever the extra
    # (and one kept with its state never a call's that keeps none)
    extra = (f"{'transformed' if transform is not None else 'plain'}, "
             f"{'state' if state is not None else 'no state'}: {cache_extra}")  # fmt: skip
    key = _key(py_fn, helpers, own, extra) if cache else None
    fn_code, (free, saved) = cached_code(key, build, _valid_extra)
    if state is not None and saved is not None:
        state.update(saved)
    for name, names in free.items():
        _merge_names(name, names, foreign or {}, globals_, py_fn.__name__)
    return types.FunctionType(fn_code, globals_, py_fn.__name__, py_fn.__defaults__)


def _key(py_fn: Callable[..., Any], helpers: Sequence[Callable[..., Any]], own: set[str],
         extra: str) -> str:  # fmt: skip
    """The code cache's key of inlining ``helpers`` (those named in ``own`` of the caller's
    module, the others of another's) into ``py_fn``: each one's role, name, file, first
    line and the source text the inliner parses, and ``extra``."""
    parts = []
    for role, fn in (("kernel", py_fn), *((("own" if f.__name__ in own else "foreign"), f)
                                          for f in helpers)):  # fmt: skip
        text, first = _source(fn)
        parts.append(f"{role}|{fn.__module__}.{fn.__qualname__}|{fn.__code__.co_filename}|"
                     f"{first}\n{text}")  # fmt: skip
    return code_key(parts, extra)


def _valid_extra(extra: Any) -> bool:
    """Whether a cached entry's extra data has :func:`inline_helpers`' shape: the free names
    of each foreign helper, and the transform's state or None."""
    if not (isinstance(extra, tuple) and len(extra) == 2):
        return False
    free, state = extra
    return (
        isinstance(free, dict)
        and all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(n, str) for n in v)
            for k, v in free.items()
        )
        and (state is None or isinstance(state, dict))
    )
