"""fnbrrr.lax: one function per primitive, with JAX's `jax.lax` names and semantics.

Operands of a binary function share one dtype and one shape (or one is 0-d); unlike
fnbrrr.numpy, nothing is promoted or broadcast implicitly.
"""

import builtins as _builtins

from fnbrrr._prims.control_flow import cond, fori_loop, map, scan, switch, while_loop
from fnbrrr._prims.convolution import (
    conv,
    conv_dimension_numbers,
    conv_general_dilated,
    conv_transpose,
    conv_with_general_padding,
    reduce_window,
)
from fnbrrr._prims.elementwise import (
    abs,
    add,
    and_,
    atan2,
    ceil,
    convert_element_type,
    cos,
    div,
    eq,
    erf,
    exp,
    expm1,
    floor,
    full,
    ge,
    gt,
    integer_pow,
    is_finite,
    le,
    log,
    log1p,
    logistic,
    lt,
    max,
    min,
    mul,
    ne,
    neg,
    not_,
    or_,
    pow,
    rem,
    round,
    rsqrt,
    select_n,
    sign,
    sin,
    sqrt,
    square,
    sub,
    tan,
    tanh,
    xor,
)
from fnbrrr._prims.indexing import (
    dynamic_slice,
    dynamic_update_slice,
    gather,
    scatter,
    scatter_add,
    scatter_mul,
)
from fnbrrr._prims.linalg import dot, dot_general
from fnbrrr._prims.reductions import (
    argmax,
    argmin,
    reduce_and,
    reduce_max,
    reduce_min,
    reduce_or,
    reduce_prod,
    reduce_sum,
)
from fnbrrr._prims.shape import (
    broadcast,
    broadcast_in_dim,
    broadcasted_iota,
    concatenate,
    expand_dims,
    iota,
    pad,
    reshape,
    rev,
    slice,
    squeeze,
    transpose,
)
from fnbrrr.core import get_aval as _get_aval


def stop_gradient(x):
    """`x` with a zero derivative of every order (pytrees too); see fnbrrr.custom_derivatives."""
    from fnbrrr.custom_derivatives import stop_gradient as _stop_gradient

    return _stop_gradient(x)


def full_like(x, fill_value, dtype=None, shape=None):
    """An array like `x` (or of `shape`) filled with `fill_value`."""
    aval = _get_aval(x)
    return full(aval.shape if shape is None else shape, fill_value,
                aval.dtype if dtype is None else dtype)


def select(pred, on_true, on_false):
    """`on_true` where `pred` else `on_false` (JAX's older lax.select)."""
    return select_n(pred, on_false, on_true)


def clamp(min, x, max):  # noqa: A002
    """Clip `x` into [min, max] (lax.clamp's argument order)."""
    return _min(_max(x, min), max)


def slice_in_dim(operand, start_index: int | None, limit_index: int | None, stride: int = 1,
                 axis: int = 0):
    """operand[start:limit:stride] along one `axis` (the others whole), as JAX's lax.

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> slice_in_dim(jnp.arange(6).reshape(2, 3), 1, 3, axis=1)
        Array([[1, 2],
               [4, 5]], dtype=int32)
    """
    shape = _get_aval(operand).shape
    axis = axis + len(shape) if axis < 0 else axis
    start, limit, step = _builtins.slice(start_index, limit_index, stride).indices(shape[axis])
    starts = [0] * len(shape)
    limits = list(shape)
    strides = [1] * len(shape)
    starts[axis], limits[axis], strides[axis] = start, _builtins.max(limit, start), step
    return slice(operand, starts, limits, strides)


_min, _max = min, max

__all__ = [
    "abs", "add", "and_", "cond", "conv", "conv_dimension_numbers", "conv_general_dilated",
    "conv_transpose", "conv_with_general_padding", "reduce_window", "fori_loop", "map", "scan",
    "switch", "while_loop", "argmax",
    "argmin", "atan2", "broadcast", "broadcast_in_dim",
    "broadcasted_iota", "ceil", "clamp", "concatenate", "convert_element_type", "cos", "div",
    "dot", "dot_general", "dynamic_slice", "dynamic_update_slice", "eq", "erf", "exp",
    "expand_dims", "expm1", "floor", "full", "full_like", "gather", "ge", "gt", "integer_pow",
    "iota", "is_finite", "le", "log", "log1p", "logistic", "lt", "max", "min", "mul", "ne", "neg",
    "not_", "or_", "pad", "pow", "reduce_and", "reduce_max", "reduce_min", "reduce_or",
    "reduce_prod", "reduce_sum", "rem", "reshape", "rev", "round", "rsqrt", "scatter",
    "scatter_add", "scatter_mul", "select", "select_n", "sign", "sin", "slice", "slice_in_dim",
    "sqrt", "square",
    "squeeze", "stop_gradient", "sub", "tan", "tanh", "transpose", "xor",
]
