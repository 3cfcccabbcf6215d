"""LLVM's prefetch hint, for the numba intrinsics of the kernel modules.

A prefetch changes no result, only when a cache line arrives. Kernel files compiled with
these are recompiled when this file changes (see :mod:`accum.config`).
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core import config as numba_config
from numba.extending import intrinsic


def emit_prefetch(builder, ptr) -> None:
    """Emit ``llvm.prefetch`` of the cache line at ``ptr`` (read, keep in all cache levels, data)."""
    i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                        "llvm.prefetch.p0i8")
    builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])


@intrinsic
def prefetch(typingctx, arr, i):
    """Start loading the cache line of ``arr[i]`` (a 1-D array; a hint: it changes no result)."""

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        emit_prefetch(builder, cgutils.get_item_pointer(context, builder, sig.args[0], ary, [args[1]]))
        return context.get_dummy_value()

    return types.void(arr, i), codegen


@intrinsic
def prefetch_row(typingctx, arr, idx):
    """Start loading the cache lines of row ``arr[idx]`` of a 2-D C array (its first and
    last item), so that a table read a step ahead overlaps this one."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        last = builder.sub(cgutils.unpack_tuple(builder, ary.shape)[1], context.get_constant(types.intp, 1))
        for col in (context.get_constant(types.intp, 0), last):
            emit_prefetch(builder, cgutils.get_item_pointer(context, builder, aryty, ary, [args[1], col],
                                                            wraparound=False))
        return context.get_dummy_value()

    return sig, codegen


if numba_config.DISABLE_JIT:  # kernel bodies run as Python (NUMBA_DISABLE_JIT=1): a hint is nothing to do

    def prefetch(arr, i):  # noqa: F811
        pass

    def prefetch_row(arr, idx):  # noqa: F811
        pass
