"""LLVM's prefetch hint, for the numba intrinsics of the kernel modules.

A prefetch changes no result, only when a cache line arrives; so, unlike the kernels
themselves, this code can be shared across kernel files even though numba's on-disk
cache does not notice when it changes.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def emit_prefetch(builder, ptr) -> None:
    """Emit ``llvm.prefetch`` of the cache line at ``ptr`` (read, keep in all cache levels, data)."""
    i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                        "llvm.prefetch.p0i8")
    builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])


@intrinsic
def prefetch(typingctx, arr, i):
    """Start loading the cache line of ``arr[i]`` (a hint: it changes no result)."""

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        emit_prefetch(builder, cgutils.get_item_pointer(context, builder, sig.args[0], ary, [args[1]]))
        return context.get_dummy_value()

    return types.void(arr, i), codegen
