"""fnbrrr.lax: one function per primitive, with JAX's `jax.lax` names and semantics.

Operands of a binary function share one dtype and one shape (or one is 0-d); unlike
fnbrrr.numpy, nothing is promoted or broadcast implicitly.
"""

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
    rem,
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
    rev,
    slice,
    squeeze,
    transpose,
)
from fnbrrr.core import get_aval as _get_aval
from fnbrrr.lax._composites import (
    RoundingMethod,
    acos,
    acosh,
    asin,
    asinh,
    associative_scan,
    atan,
    atanh,
    batch_matmul,
    bitwise_and,
    bitwise_not,
    bitwise_or,
    bitwise_xor,
    cbrt,
    collapse,
    cosh,
    cumlogsumexp,
    cummax,
    cummin,
    cumprod,
    cumsum,
    dynamic_index_in_dim,
    dynamic_slice,
    dynamic_slice_in_dim,
    dynamic_update_index_in_dim,
    dynamic_update_slice,
    dynamic_update_slice_in_dim,
    erf_inv,
    exp2,
    full,
    index_in_dim,
    pow,
    reciprocal,
    reshape,
    round,
    sinh,
    slice_in_dim,
    sort,
    sort_key_val,
    top_k,
)


def stop_gradient(x):
    """`x` with a zero derivative of every order (pytrees too); see fnbrrr.custom_derivatives."""
    from fnbrrr.custom_derivatives import stop_gradient as _stop_gradient

    return _stop_gradient(x)


def full_like(x, fill_value, dtype=None, shape=None):
    """An array like `x` (or of `shape`) filled with `fill_value`; weakly typed when `x` is
    and no `dtype` is given (as in JAX)."""
    aval = _get_aval(x)
    out = full(aval.shape if shape is None else shape, fill_value,
               aval.dtype if dtype is None else dtype)
    if dtype is None and aval.weak_type:
        return convert_element_type(out, aval.dtype, weak_type=True)
    return out


def select(pred, on_true, on_false):
    """`on_true` where `pred` else `on_false` (JAX's older lax.select)."""
    return select_n(pred, on_false, on_true)


def clamp(min, x, max):  # noqa: A002
    """Clip `x` into [min, max] (lax.clamp's argument order)."""
    return _min(_max(x, min), max)


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
    "RoundingMethod", "acos", "acosh", "asin", "asinh", "associative_scan", "atan", "atanh",
    "batch_matmul", "bitwise_and", "bitwise_not", "bitwise_or", "bitwise_xor", "cbrt",
    "collapse", "cosh", "cumlogsumexp", "cummax", "cummin", "cumprod", "cumsum",
    "dynamic_index_in_dim", "dynamic_slice_in_dim", "dynamic_update_index_in_dim",
    "dynamic_update_slice_in_dim", "erf_inv", "exp2", "index_in_dim", "reciprocal", "sinh",
    "sort", "sort_key_val", "top_k",
]
