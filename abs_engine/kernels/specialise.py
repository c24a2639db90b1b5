"""The block kernel specialised to one deal's structure.

The waterfall interpreter reads a deal's structure from integer tables: the steps of each
waterfall (``ops``, ``n_steps``), the tranches a step pays (``groups``), the kinds of
tranches, fees, accounts, supports and triggers (``*_i``); and it loops over tranches, fees,
accounts and periods whose counts it reads from array shapes. For one deal these are fixed.
:func:`specialised_kernel` compiles the block kernel once for them:

- the deal's integer tables and scalars become compile-time constants (numba freezes a
  global array into the compiled code), so a branch on a tranche's or a fee's kind, or on a
  step's operand, is decided when compiling;
- the shapes of the arrays the waterfall reads (deal tables, ledgers, scratch, pool flows)
  become literal counts, so its loops over tranches, fees and accounts have fixed lengths;
- each status's waterfall is unrolled: per step, the opcode's own helper alone, its operands
  literal (the interpreter loops over the steps and tests the opcode at each); and so are
  the loops of at most :data:`UNROLL_MAX` iterations once their counts are literal (over
  tranches, fees, accounts...), so every index into a folded table is a constant. The fee
  and reserve base switch (``base_amount_py``) is inlined too.
- the unrollings stay within node budgets (:data:`UNROLL_NODES_MAX` a loop,
  :data:`STEP_NODES_MAX` the steps, :data:`TOTAL_NODES_MAX` the whole waterfall, past which
  every loop is kept and only the folds are made).

The floating-point tables (balances, coupons, fee rates, targets, accrual fractions) stay
arguments: the solvers' deals with new tranche terms (:mod:`abs_engine.compile.patch`) run on
the same kernel, and every floating-point operation is the interpreter's, in its order, so
results are bitwise those of the generic kernel (``tests/test_specialise.py`` compares the
runs; property 9 of ``tests/test_properties.py`` the ledgers, path for path, on generated
deals). Only integers are folded, and an array's shape only where the name is bound to that
one array everywhere in the kernel (:class:`_Bindings`).

Measured on the bundled deal, one thread, the block kernel (µs a path, medians of six
alternating rounds in one process, 2026-11-30): 2.98 generic against 1.62 specialised with
every path computed (memo off), 1.27 against 0.88 as shipped; ``python -m benchmarks.block``
prints the pair (best of seven loops: 2.632 against 1.657, 1.214 against 0.886 at
26f21a1). Measured and not kept (same method): folding the floating-point tables as well
(slower: 0.72 of the generic kernel against 0.685, and a solver's every new balance would
compile again); inlining the per-path metrics, cash flows and sums into the block kernel
with their shapes folded (within 1.5%); dropping the waterfall's stores to ledger columns
nothing in a Monte Carlo run reads (3-4%, not worth a ledger that lies).

A specialisation is compiled once per structure (the waterfall about 5.5 s against the
generic one's 3.4 s on this project's VM, then the block kernel) and cached on disk under
its own name, ``run_block_py__jit__s<key>``: numba tells cached functions apart by module,
name and first line, and :func:`structure_key` hashes everything folded. The rewrite's
result (the specialised waterfall's code object and the constants it folded, about 0.3 s to
build) is kept beside it under the same key (:mod:`abs_engine.kernels._codecache`), so a
later process builds nothing. Editing any kernel source drops both caches
(:mod:`abs_engine.kernels`), this file's rewrite included.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import os
import threading
from collections import defaultdict
from typing import Any

import numpy as np

from . import montecarlo as mc
from . import waterfall as wf
from ._inline import clone, inline_helpers
from ._twin import jit_twin
from .collateral import DRAWS_ENV
from .layout import N_PF

__all__ = [
    "failed",
    "is_specialised",
    "mark_failed",
    "specialised_kernel",
    "specialised_waterfall_py",
    "structure_key",
]

_UNKNOWN = object()
#: name prefix of the folded constants in the compiled copy's globals
_PREFIX = "_K_"
#: loops of at most this many (literal) iterations are unrolled (one-off measurements: 0.6 s
#: more to compile the bundled deal's waterfall, 4.9 s against 5.5 s; 4% less time a path
#: with every path computed)
UNROLL_MAX = 8
#: ... and only where the copies hold at most this many syntax-tree nodes in all (a deal with
#: many tranches or fees would otherwise multiply its waterfall's size and compile time)
UNROLL_NODES_MAX = 4_000
#: the step loop is unrolled only while its copies hold at most this many syntax-tree nodes
#: (the bundled deal's 29 steps over three statuses: about 6,200, counted once); a longer
#: waterfall keeps
#: the loop, its other folds still made, rather than compile for minutes
STEP_NODES_MAX = 20_000
#: a rewrite whose waterfall, unrolled, holds more than this many syntax-tree nodes in all is
#: made again with every loop kept (folds only): the budgets above bound each unrolling
#: alone, and a deal of 8 tranches, fees, accounts, supports and triggers with 32 steps a
#: status stayed within them at 40,600 nodes, which numba compiled in 56 s and 2.9 GB
#: against the generic kernel's 3 s and 0.4 GB (an independent review, twelfth session);
#: the bundled deal's is about 16,200
TOTAL_NODES_MAX = 25_000
#: the helpers inlined into the specialised waterfall: the interpreter's, and the fee and
#: reserve base switch (a compiled call in the generic one)
_INLINED = (*wf.INLINED_HELPERS, wf.base_amount_py)
_LOCK = threading.Lock()
_KERNELS: dict[str, tuple[Any, tuple[Any, ...]]] = {}
#: keys of the structures whose specialisation numba could not compile (this process)
_FAILED: set[str] = set()
#: (deal, periods, key) of the deals :func:`structure_key` hashed last, newest first
_KEYS: list[tuple[Any, int, str]] = []
_KEYS_KEPT = 4


def _folded(value: Any) -> bool:
    """Whether a deal field is folded into the kernel: an integer array or an integer."""
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "iub"
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _constant(value: Any) -> Any:
    """A folded field as the compiled copy's global: a read-only copy, or an int64."""
    if isinstance(value, np.ndarray):
        out = value.copy()
        out.setflags(write=False)
        return out
    return np.int64(value)


def _example_roots(deal: Any, n_t: int) -> dict[str, Any]:
    """Arrays shaped as the block kernel passes them to :func:`~abs_engine.kernels.waterfall.
    waterfall_path_py`, by its parameter names: their shapes are what the specialised
    waterfall takes for granted (:func:`~abs_engine.kernels.montecarlo.block_scratch` sizes
    the real ones from the same deal and period count)."""
    n_j, n_f = deal.tranche_f.shape[0], deal.fee_f.shape[0]
    n_a, n_s, n_g = deal.account_f.shape[0], deal.support_f.shape[0], deal.trigger_f.shape[0]
    led = wf.ledgers_py(n_t, n_j, n_f, n_a, n_s)
    return {
        "pool_flows": np.zeros((N_PF, n_t)),
        "support_default_period": np.zeros(n_s, dtype=np.int64),
        "base_rate": np.zeros(n_t),
        "deal": deal,
        "led": led,
        "scratch": wf.waterfall_scratch_py(n_j, n_f, n_a, n_s, n_g, n_t, checkpoints=True),
    }


def structure_key(deal: Any, n_t: int) -> str:
    """A hash of all a specialisation folds: the deal's integer tables and scalars, and the
    dtype and shape of each array the waterfall reads (16 hex digits). The last few deals'
    keys are kept by identity (the bundles are read-only): a run asks for its deal's at each
    batch, and a hash takes about 60 µs."""
    for known, periods, key in tuple(_KEYS):
        if known is deal and periods == n_t:
            return key
    key = _hashed_structure(deal, n_t)
    with _LOCK:
        _KEYS.insert(0, (deal, n_t, key))
        del _KEYS[_KEYS_KEPT:]
    return key


def _hashed_structure(deal: Any, n_t: int) -> str:
    """:func:`structure_key`, computed."""
    h = hashlib.sha256(b"abs_engine specialised block kernel 1")
    for name, value in _example_roots(deal, n_t).items():
        for field, v in value._asdict().items() if hasattr(value, "_asdict") else [("", value)]:
            h.update(f"{name}.{field}:{type(v).__name__}".encode())
            if isinstance(v, np.ndarray):
                h.update(f"{v.dtype.str}{v.shape}".encode())
            if _folded(v):
                h.update(np.ascontiguousarray(v).tobytes() if isinstance(v, np.ndarray)
                         else str(int(v)).encode())  # fmt: skip
    return h.hexdigest()[:16]


class _Bindings:
    """What a name of an inlined kernel stands for, where it is one object everywhere: a
    parameter given in ``roots`` and never assigned, or a name every assignment of which is a
    field of such an object (``x = deal.tranche_f``; ``a, b = deal.a, deal.b``; ``tr, fee,
    ... = led``) or another such name. Anything else (a loop variable, an augmented
    assignment, two different objects) is unknown, and nothing is folded for it."""

    def __init__(self, fn: ast.FunctionDef, roots: dict[str, Any], constants: dict[str, Any]):
        self._roots = roots
        self._constants = constants
        self._sources: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        for a in fn.args.args:
            self._sources[a.arg].append(("root", a.arg))
        for node in ast.walk(fn):  # fn is only read: its expressions are evaluated lazily
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    self._collect(target, node.value)
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.NamedExpr,
                                   ast.comprehension)):  # fmt: skip
                self._unknown(node.target)
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                self._unknown(node.optional_vars)
        self._memo: dict[str, Any] = {}

    def _collect(self, target: ast.expr, value: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self._sources[target.id].append(("expr", value))
        elif isinstance(target, ast.Tuple) and any(isinstance(t, ast.Starred) for t in target.elts):
            self._unknown(target)  # the names after a star count from the end: not followed
        elif isinstance(target, ast.Tuple):
            if isinstance(value, ast.Tuple) and len(value.elts) == len(target.elts):
                for t, v in zip(target.elts, value.elts, strict=True):
                    self._collect(t, v)
            else:
                for i, t in enumerate(target.elts):
                    if isinstance(t, ast.Name):
                        self._sources[t.id].append(("item", value, i))
                    else:
                        self._unknown(t)
        else:
            self._unknown(target)

    def _unknown(self, target: ast.expr) -> None:
        """Each name ``target`` binds stands for something unknown (an element or a field
        written, ``a[i] += x``, binds no name)."""
        if isinstance(target, ast.Name):
            self._sources[target.id].append(("unknown",))
        elif isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                self._unknown(t)
        elif isinstance(target, ast.Starred):
            self._unknown(target.value)

    def name(self, name: str) -> Any:
        """The one object ``name`` stands for, or ``_UNKNOWN``."""
        if name in self._memo:
            return self._memo[name]
        if name not in self._sources:
            return self._constants.get(name, _UNKNOWN)
        self._memo[name] = _UNKNOWN  # a cycle of aliases stays unknown
        values = [self._source(s) for s in self._sources[name]]
        one = values[0]
        self._memo[name] = one if all(v is one for v in values) else _UNKNOWN
        return self._memo[name]

    def _source(self, source: tuple[Any, ...]) -> Any:
        if source[0] == "root":
            return self._roots.get(source[1], _UNKNOWN)
        if source[0] == "expr":
            return self.value(source[1])
        if source[0] == "item":
            owner = self.value(source[1])
            if _is_bundle(owner) and 0 <= source[2] < len(owner):
                return owner[source[2]]
        return _UNKNOWN

    def value(self, expr: ast.expr) -> Any:
        """The one object ``expr`` (a name, or a field of one) stands for, or ``_UNKNOWN``."""
        if isinstance(expr, ast.Name):
            return self.name(expr.id)
        if isinstance(expr, ast.Attribute):
            owner = self.value(expr.value)
            if _is_bundle(owner) and expr.attr in owner._fields:
                return getattr(owner, expr.attr)
        return _UNKNOWN


def _is_bundle(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(value, "_fields")


def _nodes(statements: list[ast.stmt]) -> int:
    """Syntax-tree nodes in ``statements`` (what an unrolling copies)."""
    return sum(1 for stmt in statements for _ in ast.walk(stmt))


class _Specialise(ast.NodeTransformer):
    """Folds the deal's integer fields and known array shapes, and unrolls the step loop."""

    def __init__(self, fn: ast.FunctionDef, roots: dict[str, Any], module: dict[str, Any],
                 unroll: bool = True):  # fmt: skip
        self.unroll = unroll
        self.deal = roots["deal"]
        self.module = module
        self.constants: dict[str, Any] = {}
        self.bindings = _Bindings(fn, roots, self.constants)
        self.unrolled = 0

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        self.generic_visit(node)
        if not isinstance(node.ctx, ast.Load):
            return node
        owner = self.bindings.value(node.value)
        if node.attr == "size" and isinstance(owner, np.ndarray):
            return ast.copy_location(ast.Constant(int(owner.size)), node)
        if owner is self.deal:
            value = getattr(self.deal, node.attr)
            if _folded(value):
                name = _PREFIX + node.attr
                self.constants[name] = _constant(value)
                return ast.copy_location(ast.Name(id=name, ctx=ast.Load()), node)
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        self.generic_visit(node)
        v, k = node.value, node.slice
        if (isinstance(v, ast.Attribute) and v.attr == "shape" and isinstance(k, ast.Constant)
                and type(k.value) is int):  # fmt: skip
            arr = self.bindings.value(v.value)
            if isinstance(arr, np.ndarray) and -arr.ndim <= k.value < arr.ndim:
                return ast.copy_location(ast.Constant(int(arr.shape[k.value])), node)
        return node

    def visit_For(self, node: ast.For) -> Any:
        if not self.unroll:
            self.generic_visit(node)
            return node
        unrolled = self._unrolled_steps(node)
        if unrolled is not None:
            self.unrolled += 1
            return self.visit(unrolled)
        self.generic_visit(node)
        return self._unrolled_loop(node)

    def _unrolled_loop(self, node: ast.For) -> Any:
        """``for j in range(C): body`` with a literal 1 <= C <= :data:`UNROLL_MAX` (a count of
        tranches, fees, accounts... once folded) as ``j = 0; body; j = 1; body ...``, so
        that every index into a folded table is a constant; other loops as they are (an
        empty one too: numba types the names its body assigns, which code after it may
        read in a branch never taken)."""
        it = node.iter
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range"
                and len(it.args) == 1 and isinstance(it.args[0], ast.Constant)
                and type(it.args[0].value) is int and 1 <= it.args[0].value <= UNROLL_MAX
                and isinstance(node.target, ast.Name) and not node.orelse
                and not any(isinstance(n, (ast.Break, ast.Continue)) for b in node.body
                            for n in ast.walk(b))):  # fmt: skip
            return node
        if _nodes(node.body) * it.args[0].value > UNROLL_NODES_MAX:
            return node  # a long body copied many times: compile time for little gain
        out: list[ast.stmt] = []
        for k in range(it.args[0].value):
            out.append(ast.copy_location(ast.Assign(targets=[ast.Name(id=node.target.id,
                                                                      ctx=ast.Store())],
                                                    value=ast.Constant(k)), node))  # fmt: skip
            out.extend(clone(node.body))
        return out

    def _unrolled_steps(self, node: ast.For) -> ast.stmt | None:
        """``for k in range(n_steps[status]): op, pa, pb, pc = ops[status, k, ...]; if op ==
        OP_X: ... elif ...`` as ``if status == 0: <step 0 of status 0> <step 1> ... elif
        status == 1: ...``, each step its opcode's branch alone after its operands assigned as
        literals; None for any other loop (or one whose body reads ``k`` elsewhere)."""
        it, deal = node.iter, self.deal
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range"
                and len(it.args) == 1 and isinstance(it.args[0], ast.Subscript)
                and self.bindings.value(it.args[0].value) is deal.n_steps
                and isinstance(node.target, ast.Name) and not node.orelse):  # fmt: skip
            return None
        status, k = it.args[0].slice, node.target.id
        if not isinstance(status, ast.Name):
            return None  # a status read from an array: its stores are not followed
        operands = self._step_operands(node.body, k, status)
        if operands is None:
            return None
        names, columns, chain = operands
        assigned = {k, status.id, *names}
        if columns[0] != self._int(ast.Name(id="OPC_CODE", ctx=ast.Load())) or any(
            isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and n.id in assigned
            for n in ast.walk(chain)
        ):
            return None  # not the opcode first, or a branch assigns the status or an operand
        cases = []
        size = 0  # syntax-tree nodes of the steps' copies
        for s in range(deal.ops.shape[0]):
            body: list[ast.stmt] = []
            for step in range(int(deal.n_steps[s])):
                values = [int(deal.ops[s, step, c]) for c in columns]
                body += [ast.Assign(targets=[ast.Name(id=n, ctx=ast.Store())],
                                    value=ast.Constant(v), lineno=node.lineno)
                         for n, v in zip(names, values, strict=True)]  # fmt: skip
                branch = self._branch(chain, names[0], values[0])
                if branch is None or any(isinstance(n, ast.Name) and n.id == k
                                         for b in branch for n in ast.walk(b)):  # fmt: skip
                    return None
                size += _nodes(branch)
                if size > STEP_NODES_MAX:
                    return None  # a very long waterfall: its copies would compile for minutes
                body += clone(branch)
            if body:
                test = ast.Compare(left=clone(status), ops=[ast.Eq()],
                                   comparators=[ast.Constant(s)])  # fmt: skip
                cases.append(ast.If(test=test, body=body, orelse=[]))
        if not cases:
            return ast.Pass()
        for outer, inner in itertools.pairwise(cases):
            outer.orelse = [inner]
        return ast.copy_location(cases[0], node)

    def _step_operands(self, body: list[ast.stmt], k: str, status: ast.expr):
        """The loop body's leading ``x = ops[status, k, COLUMN]`` statements (names and column
        numbers; the first is the opcode), ``status`` the loop's own, and the ``if`` chain
        after them, or None."""
        names, columns = [], []
        for stmt in body:
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)
                    and isinstance(stmt.value, ast.Subscript)
                    and self.bindings.value(stmt.value.value) is self.deal.ops):  # fmt: skip
                break
            index = stmt.value.slice
            if not (isinstance(index, ast.Tuple) and len(index.elts) == 3
                    and ast.dump(index.elts[0]) == ast.dump(status)
                    and isinstance(index.elts[1], ast.Name) and index.elts[1].id == k):  # fmt: skip
                return None
            column = self._int(index.elts[2])
            if column is None:
                return None
            names.append(stmt.targets[0].id)
            columns.append(column)
        rest = body[len(names) :]
        if not names or len(rest) != 1 or not isinstance(rest[0], ast.If):
            return None
        return names, columns, rest[0]

    def _int(self, expr: ast.expr) -> int | None:
        """The int an expression names: a literal, or a module constant."""
        if isinstance(expr, ast.Constant) and type(expr.value) is int:
            return expr.value
        if isinstance(expr, ast.Name) and isinstance(self.module.get(expr.id), (int, np.integer)):
            return int(self.module[expr.id])
        return None

    def _branch(self, chain: ast.If, op: str, code: int) -> list[ast.stmt] | None:
        """The statements ``if op == A: ... elif op == B: ... else: ...`` runs for ``op ==
        code`` (none when no branch matches and there is no ``else``), or None when a test
        is of another form."""
        node: ast.stmt = chain
        while isinstance(node, ast.If):
            t = node.test
            if not (isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq)
                    and isinstance(t.left, ast.Name) and t.left.id == op):  # fmt: skip
                return None
            value = self._int(t.comparators[0])
            if value is None:
                return None
            if value == code:
                return node.body
            if len(node.orelse) != 1 or not isinstance(node.orelse[0], ast.If):
                return list(node.orelse)
            node = node.orelse[0]
        return None


def _transform(deal: Any, n_t: int, state: dict[str, Any]) -> Any:
    """The rewrite of the inlined waterfall for ``deal``'s structure; the constants it folds
    are put in ``state["constants"]`` (to be added to the copy's globals), the count of step
    loops it unrolled in ``state["step_loops_unrolled"]`` and its size in ``state["nodes"]``
    (syntax-tree nodes)."""
    roots = _example_roots(deal, n_t)

    def transform(fn: ast.FunctionDef) -> ast.FunctionDef:
        module = wf.waterfall_path_py.__globals__
        sp = _Specialise(fn, roots, module)
        # the rewrite works on copies: fn stays as inlined, for the bindings to read and for
        # a second pass
        out = sp.visit(clone(fn))
        nodes = _nodes([out])
        if nodes > TOTAL_NODES_MAX:  # too big to compile: folds only
            sp = _Specialise(fn, roots, module, unroll=False)
            out = sp.visit(clone(fn))
            nodes = _nodes([out])
        state["constants"] = dict(sp.constants)
        state["step_loops_unrolled"] = sp.unrolled
        state["nodes"] = nodes
        return out

    return transform


def _folded_constants(state: dict[str, Any]) -> dict[str, Any]:
    """The constants a rewrite folded (``state["constants"]``, as :func:`_transform` left
    them or as the disk cache gave them back: an unpickled array is writable again), each
    as :func:`_constant` makes it."""
    return {name: _constant(value) for name, value in state["constants"].items()}


def specialised_waterfall_py(deal: Any, n_t: int) -> Any:
    """The specialised waterfall as plain Python, with the interpreter's parameters (for a
    ``scratch`` with checkpoints, as the block kernel's): the source numba compiles for
    :func:`specialised_kernel`, which the tests run against the interpreter path by path;
    its attributes ``step_loops_unrolled`` and ``nodes`` count the step loops the rewrite
    unrolled and the syntax-tree nodes of its definition."""
    g = dict(wf.waterfall_path_py.__globals__)
    state: dict[str, Any] = {}
    fn = inline_helpers(wf.waterfall_path_py, _INLINED, g, None, _transform(deal, n_t, state))
    g.update(_folded_constants(state))
    fn.step_loops_unrolled = state["step_loops_unrolled"]  # type: ignore[attr-defined]
    fn.nodes = state["nodes"]  # type: ignore[attr-defined]
    return fn


def _specialised_waterfall(deal: Any, n_t: int, key: str) -> Any:
    """The compiled waterfall for ``deal``'s structure (not compiled yet: numba compiles it at
    its first call, or loads it from its cache)."""
    state: dict[str, Any] = {}
    kernel = jit_twin(wf.waterfall_path_py, {"base_amount_py": wf.base_amount, **wf.CLASS_HELPERS},
                      inline_source=_INLINED, transform=_transform(deal, n_t, state),
                      transform_key=key, transform_state=state,
                      cache=True, refcounts=False, suffix=f"__s{key}")  # fmt: skip
    # the copy's globals are a dict of its own (jit_twin's): the folded constants join it
    # before numba first compiles it (the structure's key names all the rewrite reads
    # besides the kernel sources: its code is kept on disk under it)
    kernel.py_func.__globals__.update(_folded_constants(state))
    return kernel


def specialised_kernel(deal: Any, n_t: int) -> tuple[Any, tuple[Any, ...]]:
    """The block kernel specialised to ``deal``'s structure (a ``DealArrays`` of a deal with
    ``n_t`` periods), and the functions it calls (as
    :data:`~abs_engine.kernels.montecarlo.BLOCK_CALLEES`, its own waterfall first): built
    once per structure in a process, compiled at its first call or loaded from numba's
    cache. It takes the arguments of :data:`~abs_engine.kernels.montecarlo.run_block`, for
    this structure only: the caller makes sure of it (:func:`structure_key`)."""
    key = structure_key(deal, n_t)
    with _LOCK:
        if key not in _KERNELS:
            waterfall = _specialised_waterfall(deal, n_t, key)
            kernel = jit_twin(mc.run_block_py, {**mc.BLOCK_REPLACEMENTS,
                                                "waterfall_path_py": waterfall},
                              inline_source=mc.BLOCK_INLINE, inline_env=DRAWS_ENV, cache=True,
                              nogil=True, no_cpython_wrapper=False, refcounts=False,
                              suffix=f"__s{key}")  # fmt: skip
            _KERNELS[key] = (kernel, (waterfall, *mc.BLOCK_CALLEES[1:]))
        return _KERNELS[key]


def mark_failed(deal: Any, n_t: int) -> None:
    """Note that numba could not compile ``deal``'s specialisation: :func:`failed` then says
    so, and the driver runs the generic kernel for it in this process."""
    key = structure_key(deal, n_t)
    with _LOCK:
        _FAILED.add(key)


def failed(deal: Any, n_t: int) -> bool:
    """Whether :func:`mark_failed` was called for ``deal``'s structure in this process."""
    key = structure_key(deal, n_t)
    with _LOCK:
        return key in _FAILED


def is_specialised(deal: Any, n_t: int) -> bool:
    """Whether the block kernel specialised to ``deal``'s structure is compiled in this
    process, or cached on disk by numba (an index file of its name in the cache folder of
    :data:`~abs_engine.kernels.montecarlo.run_block`; a stale one costs a compile)."""
    key = structure_key(deal, n_t)
    with _LOCK:
        built = _KERNELS.get(key)
    if built is not None and built[0].signatures:
        return True
    try:
        folder = mc.run_block.stats.cache_path
        prefix = f"{mc.run_block.py_func.__module__.rsplit('.', 1)[-1]}.{_qualname(key)}-"
        return bool(folder) and any(
            f.name.startswith(prefix) and f.name.endswith(".nbi") for f in os.scandir(folder)
        )
    except Exception:  # no cache folder, or numba's dispatcher internals moved: not cached
        return False


def _qualname(key: str) -> str:
    """The specialised block kernel's name (numba names its cache files after it)."""
    return f"{mc.run_block_py.__qualname__}__jit__s{key}"
