"""A cache prefetch hint for numba kernels (LLVM's ``llvm.prefetch``).

The replay loops know which pages the next events touch (the trace is in
memory), so they can ask for those pages' cache lines a few dozen events
ahead; their loads otherwise miss one after another (a page's state byte,
then its slot or list links, then the victim's). A prefetch never faults and changes no
result: it only moves a line toward the core.
"""

from __future__ import annotations

import llvmlite.binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: How many events ahead the kernels ask for what they will touch: measured on
#: the bench stream for each user, 16 and 64 within noise of 32 (the gains:
#: docs/perf-log.md).
EVENTS_AHEAD = 32

# The intrinsic is overloaded on the pointer type: opaque pointers from LLVM 15 on.
_NAME = "llvm.prefetch.p0" if llvm.llvm_version_info >= (15,) else "llvm.prefetch.p0i8"


@intrinsic
def prefetch(typingctx, arr, idx):
    """Hint that ``arr[idx]`` will be read soon (1-d array, integer index; no bounds check)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and isinstance(idx, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        ary = context.make_array(arr)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, arr, ary, [args[1]], wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _NAME)
        # A read (0), high temporal locality (3), data cache (1).
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(arr, idx), codegen
