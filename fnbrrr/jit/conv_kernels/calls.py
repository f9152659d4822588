"""Calling the compiled helpers from a generated program: through C function pointers.

A program that calls an njit helper directly links the helper's LLVM module into its own and
optimises it again: about 2 s of compilation per helper and signature, in every program (a
program making one conv_direct call compiled in 2.8 s; through a pointer, 0.14 s). So each
helper has a C-ABI wrapper (registered with `c_helper`), compiled once per dtype with
`numba.cfunc(cache=True)`. Programs call it through its address, which travels in a constant
argument, never in the source, so Numba's disk cache of the program stays valid across
processes (blas.py passes gemm's address the same way). The loop nest a wrapper runs is
inlined into it (`loops.NEST`), so that LLVM optimises it once, with `HELPER_FLAGS`.

The wrappers take arrays as (address, size) pairs, ints as int64 and the array dtype's
scalars (`zero`, `init`, `like`) as themselves; the last argument is the address of the
helper's int64 geometry, which each wrapper reads into its geometry named tuple.
"""

from __future__ import annotations

import functools
import types as python_types
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np
from llvmlite import ir
from numba import carray, types
from numba.core import cgutils
from numba.extending import intrinsic

# Options of every compiled helper: its C-ABI wrapper and the loops that it calls.
HELPER_FLAGS = dict(error_model="numpy", fastmath={"reassoc", "contract", "nsz"})

# name -> (wrapper, parameter kinds: "i" an int64 (addresses and sizes too), "T" the dtype)
_WRAPPERS: dict[str, tuple[Callable, str]] = {}


def c_helper(name: str, params: str) -> Callable:
    """Register `function` as the C-ABI wrapper of helper `name` (see the module docstring).

    Args:
      name: the name programs call it by (`emit_helper_call(..., name, ...)`).
      params: one letter per parameter: "i" (int64) or "T" (the array dtype).

    Returns:
      A decorator that registers the wrapper and returns it unchanged.

    Example:
        >>> @c_helper("fill", "iiTi")
        ... def c_fill(dst, n_dst, value, geo): ...
    """

    def register(function: Callable) -> Callable:
        _WRAPPERS[name] = (function, params)
        return function

    return register


@intrinsic
def typed_pointer(typingctx, address, like):
    """The integer `address` as a pointer to values of `like`'s type (for `numba.carray`)."""
    pointer = types.CPointer(like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(pointer))

    return pointer(address, like), codegen


@numba.njit(inline="always", cache=True)
def array_at(address, size, like):
    """The `size` values of `like`'s dtype at `address`, as a 1-D array."""
    return carray(typed_pointer(address, like), size)


@intrinsic
def call_helper(typingctx, address, args):
    """Call the C function at `address` with the values of the tuple `args` (ints as int64,
    floats as themselves): `call_helper(k3[0], (x0.ctypes.data, x0.size, ...))`."""
    if not isinstance(args, types.BaseTuple):
        return None

    def codegen(context, builder, signature, llargs):
        address_value, packed = llargs
        values = cgutils.unpack_tuple(builder, packed, len(args))
        function_type = ir.FunctionType(ir.VoidType(), [v.type for v in values])
        builder.call(builder.inttoptr(address_value, function_type.as_pointer()), values)
        return context.get_dummy_value()

    return types.void(address, args), codegen


@functools.cache
def helper_cfunc(name: str, dtype_name: str):
    """The compiled C-ABI wrapper `name` for arrays of `dtype_name` (cached on disk).

    Args:
      name: a name registered with `c_helper`.
      dtype_name: the NumPy name of the arrays' dtype, e.g. "float32".

    Returns:
      The `numba.cfunc` object (its `.address` is what programs call).

    Example:
        >>> helper_cfunc("strided_copy", "float32").address > 0
        True
    """
    function, params = _WRAPPERS[name]
    element = numba.from_dtype(np.dtype(dtype_name))
    signature = types.void(*(element if p == "T" else types.int64 for p in params))
    return numba.cfunc(signature, cache=True, **HELPER_FLAGS)(
        _with_own_cache_file(function, name, dtype_name))


def _with_own_cache_file(function: Callable, name: str, dtype_name: str) -> Callable:
    """A copy of `function` whose qualified name, which Numba's disk cache names its files
    after, is "{name}_{dtype_name}".

    Wrappers that share one function (or one closure body) would otherwise share one cache
    index, and Numba numbers the data files of an index without a lock: two processes (pytest
    workers) compiling two entries at once can both write `.1.nbc`, leaving an index that
    points at the other entry's code, which has the same C signature.
    """
    copy = python_types.FunctionType(function.__code__, function.__globals__, function.__name__,
                                     function.__defaults__, function.__closure__)
    copy.__qualname__ = f"{name}_{dtype_name}"
    return copy


@dataclass(frozen=True)
class Buffer:
    """A buffer argument of a helper call (passed as its address and size)."""

    name: str


def emit_helper_call(ctx, code, name: str, dtype, args, geo=()) -> None:
    """Emit a call of helper `name` into `code`.

    Args:
      ctx: the lowering context.
      code: the `Code` being written.
      name: a helper registered with `c_helper`.
      dtype: the arrays' dtype (picks the compiled wrapper).
      args: `Buffer`s (passed as address and size), int expressions or float literals.
      geo: ints, put into a constant array whose first element is the helper's address.

    Example:
        >>> emit_helper_call(ctx, code, "strided_copy", np.float32,
        ...                  [Buffer("x0"), Buffer("t1"), 0, 0, "np.float32(0.0)"], geo)
    """
    address = helper_cfunc(name, np.dtype(dtype).name).address
    const = ctx.emitter.add_const(np.asarray([address, *(int(v) for v in geo)], np.int64))
    rendered = []
    for arg in args:
        if isinstance(arg, Buffer):
            rendered += [f"{arg.name}.ctypes.data", f"{arg.name}.size"]
        else:
            rendered.append(str(arg))
    rendered.append(f"{const}.ctypes.data + 8")
    code(f"{_import(ctx, 'call_helper')}({const}[0], ({', '.join(rendered)},))  # {name}")


def _import(ctx, name: str) -> str:
    """Make the generated module import `name` from this module; returns what to call.

    Prefers a `ctx.use_helper(module, name)` hook of the code generator. Until it has one,
    the generated module imports what `helpers_used` lists from `fnbrrr.jit.kernels`, so the
    name is exposed there with a `conv_` prefix (this module is imported whenever its
    lowerings are in use, hence before any generated module that needs it is loaded).
    """
    hook = getattr(ctx, "use_helper", None)
    if hook is not None:
        hook(__name__, name)
        return name
    from fnbrrr.jit import kernels

    alias = f"conv_{name}"
    setattr(kernels, alias, globals()[name])
    ctx.emitter.helpers_used.add(alias)
    return alias
