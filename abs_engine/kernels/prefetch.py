"""A hint to the processor: start loading a row of an array that a kernel will read soon.

The collateral kernel books each path's defaulters one after another, each reading its own
schedule row; on a pool of distinct rows (a heterogeneous tape) every row is a cache miss,
and the processor waits for one before it starts the next. ``prefetch(a, i, j)`` asks for
the cache line of ``a[i, j, 0, ...]`` (``a[i]`` of a 1-d array: ``j`` is then ignored) a few
defaulters ahead, so the loads overlap. It changes no value: the Python twin,
:func:`prefetch_py`, does nothing.
"""

from __future__ import annotations

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["prefetch", "prefetch_py"]


def prefetch_py(a, i, j):
    """Nothing (the plain-Python twin of :func:`prefetch`); returns 0."""
    return 0


@intrinsic
def _prefetch(typingctx, a, i, j):
    """LLVM's ``llvm.prefetch`` of ``&a[i, j, 0, ...]`` (``&a[i]`` of a 1-d array; read,
    keep in every cache level, data): no load, no fault on any address, no value changed;
    returns 0. Anything but an array and two integers is a typing error."""
    if not isinstance(a, types.Array) or not all(isinstance(x, types.Integer) for x in (i, j)):
        return None
    sig = types.int64(a, i, j)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        shape = cgutils.unpack_tuple(builder, ary.shape)
        strides = cgutils.unpack_tuple(builder, ary.strides)
        idx = [context.cast(builder, v, t, types.intp)
               for v, t in zip(args[1:], signature.args[1:], strict=True)]  # fmt: skip
        idx = (idx + [zero] * aryty.ndim)[: aryty.ndim]
        ptr = cgutils.get_item_pointer2(context, builder, ary.data, shape, strides,
                                        aryty.layout, idx)  # fmt: skip
        i32 = ir.IntType(32)
        ptr = builder.bitcast(ptr, ir.IntType(8).as_pointer())  # one declaration a module
        fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
        # named by llvmlite for its pointers: llvm.prefetch.p0 (opaque), .p0i8 (typed)
        fn = builder.module.declare_intrinsic("llvm.prefetch", [ptr.type], fnty)
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_constant(types.int64, 0)

    return sig, codegen


#: the compiled kernels' prefetch (Python's no-op where numba's JIT is disabled)
prefetch = prefetch_py if numba.config.DISABLE_JIT else _prefetch
