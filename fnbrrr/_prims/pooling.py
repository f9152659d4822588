"""Windowed reductions, `window_sum` and `window_max` (JAX's reduce_window_sum /
reduce_window_max), the two primitives behind max pooling's derivatives,
`select_and_gather_add` and `select_and_scatter_add`, and the user-facing `reduce_window`,
`max_pool` and `avg_pool`.

Windowed reductions apply a sum or a max over every window of an operand (pooling):
`window_dimensions`, `window_strides`, `padding`, `base_dilation` and `window_dilation` have
one entry per operand axis. Max pooling's JVP picks the tangent at each window's first
arg-max (`select_and_gather_add`); its VJP adds each cotangent there
(`select_and_scatter_add`), as JAX's select-and-scatter does. Those two are linear in their
first operand and transposes of each other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from fnbrrr._prims.common import check_dtype_kind, describe
from fnbrrr._prims.elementwise import convert_element_type, div, full
from fnbrrr._prims.shape import pad
from fnbrrr._prims.windowing import (
    dilate_and_pad,
    dilate_dim,
    explicit_padding,
    padtype_to_pads,
    window_output_size,
    window_view,
)
from fnbrrr.ad_util import Zero, is_zero
from fnbrrr.core import Primitive, ShapedArray, get_aval

# --------------------------------------------------------------------------------------------
# Windowed reductions: window_sum, window_max
# --------------------------------------------------------------------------------------------


def _lowest(dtype: np.dtype):
    """The identity of max: -inf, or the smallest integer."""
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _window_params_check(op: str, operand: ShapedArray, window_dimensions, window_strides,
                         padding, base_dilation, window_dilation) -> tuple[int, ...]:
    """Validate window params (one entry per operand axis); returns the output shape."""
    ndim = operand.ndim
    for name, values in (("window_dimensions", window_dimensions),
                         ("window_strides", window_strides), ("padding", padding),
                         ("base_dilation", base_dilation),
                         ("window_dilation", window_dilation)):
        if len(values) != ndim:
            raise ValueError(f"{op}: {name} {tuple(values)} must have one entry per axis of "
                             f"the operand {describe(operand)}")
    for name, values in (("window_dimensions", window_dimensions),
                         ("window_strides", window_strides), ("base_dilation", base_dilation),
                         ("window_dilation", window_dilation)):
        if any(v < 1 for v in values):
            raise ValueError(f"{op}: {name} must be positive, got {tuple(values)}")
    shape = []
    for axis in range(ndim):
        lo, hi = padding[axis]
        out = window_output_size(operand.shape[axis], lo, hi, base_dilation[axis],
                                  window_dimensions[axis], window_dilation[axis],
                                  window_strides[axis])
        if out < 0 or (out == 0 and operand.shape[axis] > 0):
            raise ValueError(
                f"{op}: on axis {axis} the window (size {window_dimensions[axis]}, dilation "
                f"{window_dilation[axis]}) is larger than the padded operand (size "
                f"{operand.shape[axis]}, padding {(lo, hi)}); operand {describe(operand)}")
        shape.append(max(out, 0))
    return tuple(shape)


def _reduce_window_impl(reducer, fill):
    def impl(x, *, window_dimensions, window_strides, padding, base_dilation, window_dilation):
        xp = dilate_and_pad(x, fill(x.dtype), 0, base_dilation, padding)
        windows = window_view(xp, 0, window_dimensions, window_strides, window_dilation)
        axes = tuple(range(x.ndim, 2 * x.ndim))
        return reducer(windows, axis=axes).astype(x.dtype, copy=False)

    return impl


def _reduce_window_abstract_eval(op: str, kinds: str):
    def abstract_eval(x: ShapedArray, **params):
        check_dtype_kind(op, x, kinds, "a numeric dtype")
        shape = _window_params_check(op, x, **params)
        return ShapedArray(shape, x.dtype, x.weak_type)

    return abstract_eval


def _prepend_window_axis(params: dict) -> dict:
    """Params for an operand with a new leading axis that every window covers singly."""
    return dict(window_dimensions=(1, *params["window_dimensions"]),
                window_strides=(1, *params["window_strides"]),
                padding=((0, 0), *params["padding"]),
                base_dilation=(1, *params["base_dilation"]),
                window_dilation=(1, *params["window_dilation"]))


def _window_batch_rule(primitive: Primitive) -> Callable:
    """vmap for the windowed primitives: the mapped axis becomes a leading window axis of 1."""

    def rule(vals, dims, **params):
        from fnbrrr.batching import batch_size, bdim_at_front

        size = batch_size(vals, dims)
        moved = [bdim_at_front(v, d, size) for v, d in zip(vals, dims)]
        return primitive.bind(*moved, **_prepend_window_axis(params)), 0

    rule.__name__ = f"{primitive.name}_batching_rule"
    return rule


window_sum_p = Primitive("window_sum")
window_max_p = Primitive("window_max")


def _reduce_window_sum_transpose(ct, x, *, window_dimensions, window_strides, padding,
                                 base_dilation, window_dilation):
    """Each input element receives the cotangents of every window that contains it: the
    cotangent spread out by the strides (interior padding) and summed over windows again."""
    x_aval = get_aval(x)
    ct_shape = get_aval(ct).shape
    if 0 in ct_shape:
        return [full(x_aval.shape, 0, x_aval.dtype)]
    config = []
    for axis, size in enumerate(x_aval.shape):
        dilated_in = dilate_dim(size, base_dilation[axis])
        dilated_w = dilate_dim(window_dimensions[axis], window_dilation[axis])
        dilated_out = dilate_dim(ct_shape[axis], window_strides[axis])
        lo = dilated_w - 1 - padding[axis][0]
        hi = dilated_in + dilated_w - 1 - dilated_out - lo
        config.append((lo, hi, window_strides[axis] - 1))
    spread = pad(ct, full((), 0, get_aval(ct).dtype), config)
    ones = (1,) * x_aval.ndim
    out = window_sum_p.bind(
        spread, window_dimensions=tuple(window_dimensions), window_strides=tuple(base_dilation),
        padding=((0, 0),) * x_aval.ndim, base_dilation=ones,
        window_dilation=tuple(window_dilation))
    return [out]


def _reduce_window_sum_jvp(primals, tangents, **params):
    (x,), (t,) = primals, tangents
    return window_sum_p.bind(x, **params), window_sum_p.bind(t, **params)


window_sum_p.impl = _reduce_window_impl(np.sum, lambda dtype: 0)
window_sum_p.abstract_eval = _reduce_window_abstract_eval("window_sum", "fiu")
window_sum_p.jvp = _reduce_window_sum_jvp
window_sum_p.vjp = lambda ct, ans, x, **params: _reduce_window_sum_transpose(
    ct, x, **params)
window_sum_p.batch = _window_batch_rule(window_sum_p)


def _reduce_window_max_jvp(primals, tangents, **params):
    (x,), (t,) = primals, tangents
    return window_max_p.bind(x, **params), select_and_gather_add_p.bind(t, x, **params)


window_max_p.impl = _reduce_window_impl(np.max, _lowest)
window_max_p.abstract_eval = _reduce_window_abstract_eval("window_max", "fiu")
window_max_p.jvp = _reduce_window_max_jvp
window_max_p.vjp = lambda ct, ans, x, **params: [
    select_and_scatter_add_p.bind(ct, x, **params)]
window_max_p.batch = _window_batch_rule(window_max_p)

# --------------------------------------------------------------------------------------------
# select_and_gather_add / select_and_scatter_add: max pooling's JVP and VJP
# --------------------------------------------------------------------------------------------

select_and_gather_add_p = Primitive("select_and_gather_add")
select_and_scatter_add_p = Primitive("select_and_scatter_add")


def _window_argmax(operand: np.ndarray, params: dict) -> np.ndarray:
    """Per window, the flat index into `operand` of its first maximum (-1: none)."""
    fill = _lowest(operand.dtype)
    dilation, padding = params["base_dilation"], params["padding"]
    values = dilate_and_pad(operand, fill, 0, dilation, padding)
    index = dilate_and_pad(np.arange(operand.size).reshape(operand.shape), -1, 0, dilation,
                            padding)
    window_args = (params["window_dimensions"], params["window_strides"],
                   params["window_dilation"])
    value_windows = window_view(values, 0, *window_args)
    index_windows = window_view(index, 0, *window_args)
    out_shape = value_windows.shape[:operand.ndim]
    flat_values = value_windows.reshape(out_shape + (-1,))
    flat_index = index_windows.reshape(out_shape + (-1,))
    # np.argmax picks the first maximum (and the first NaN), like the compiled kernels.
    pick = np.argmax(flat_values, axis=-1)[..., None] if flat_values.shape[-1] else None
    if pick is None:
        return np.full(out_shape, -1, np.int64)
    return np.take_along_axis(flat_index, pick, axis=-1)[..., 0]


def _select_and_gather_add_impl(tangent, operand, **params):
    where = _window_argmax(operand, params)
    flat = tangent.reshape(-1)
    picked = flat[np.maximum(where, 0)] if flat.size else np.zeros(where.shape, tangent.dtype)
    return np.where(where >= 0, picked, np.zeros((), tangent.dtype)).astype(tangent.dtype)


def _select_and_scatter_add_impl(source, operand, **params):
    where = _window_argmax(operand, params)
    out = np.zeros(operand.size, source.dtype)
    keep = where >= 0
    np.add.at(out, where[keep], source[keep])
    return out.reshape(operand.shape)


def _select_abstract_eval(op: str, gather: bool):
    def abstract_eval(values: ShapedArray, operand: ShapedArray, **params):
        check_dtype_kind(op, operand, "fiu", "a numeric dtype")
        out_shape = _window_params_check(op, operand, **params)
        expected = operand.shape if gather else out_shape
        if values.shape != expected:
            what = "the tangent" if gather else "the source"
            raise ValueError(f"{op}: {what} {describe(values)} must have shape {expected} for "
                             f"operand {describe(operand)} and these windows")
        if values.dtype.kind != "f":
            raise TypeError(f"{op}: {describe(values)} must be floating point")
        return ShapedArray(out_shape if gather else operand.shape, values.dtype,
                           values.weak_type)

    return abstract_eval


def _select_jvp(primitive: Primitive):
    def jvp(primals, tangents, **params):
        (values, operand), (t_values, _) = primals, tangents
        ans = primitive.bind(values, operand, **params)
        if is_zero(t_values):
            return ans, Zero.like(ans)
        return ans, primitive.bind(t_values, operand, **params)

    return jvp


select_and_gather_add_p.impl = _select_and_gather_add_impl
select_and_gather_add_p.abstract_eval = _select_abstract_eval("select_and_gather_add", True)
select_and_gather_add_p.jvp = _select_jvp(select_and_gather_add_p)
select_and_gather_add_p.vjp = lambda ct, ans, t, x, **params: [
    select_and_scatter_add_p.bind(ct, x, **params), None]
select_and_gather_add_p.batch = _window_batch_rule(select_and_gather_add_p)

select_and_scatter_add_p.impl = _select_and_scatter_add_impl
select_and_scatter_add_p.abstract_eval = _select_abstract_eval("select_and_scatter_add", False)
select_and_scatter_add_p.jvp = _select_jvp(select_and_scatter_add_p)
select_and_scatter_add_p.vjp = lambda ct, ans, s, x, **params: [
    select_and_gather_add_p.bind(ct, x, **params), None]
select_and_scatter_add_p.batch = _window_batch_rule(select_and_scatter_add_p)


# --------------------------------------------------------------------------------------------
# reduce_window and the pooling helpers
# --------------------------------------------------------------------------------------------


def _window_params(operand, window_dimensions, window_strides, padding, base_dilation,
                   window_dilation, op: str) -> dict:
    shape = get_aval(operand).shape
    ndim = len(shape)
    window = tuple(int(w) for w in window_dimensions)
    strides = tuple(int(s) for s in window_strides)
    base = (1,) * ndim if base_dilation is None else tuple(int(d) for d in base_dilation)
    wdil = (1,) * ndim if window_dilation is None else tuple(int(d) for d in window_dilation)
    if len(window) != ndim or len(strides) != ndim:
        raise ValueError(f"{op}: window_dimensions {window} and window_strides {strides} "
                         f"need one entry per axis of the operand (shape {shape})")
    if isinstance(padding, str):
        dilated_shape = [dilate_dim(n, d) for n, d in zip(shape, base)]
        dilated_window = [dilate_dim(w, d) for w, d in zip(window, wdil)]
        padding = padtype_to_pads(dilated_shape, dilated_window, strides, padding)
    return dict(window_dimensions=window, window_strides=strides,
                padding=explicit_padding(padding, ndim, op), base_dilation=base,
                window_dilation=wdil)


def _known_reducer(computation: Callable) -> str | None:
    """'add', 'max' or 'min' for the lax/numpy functions that reduce_window recognises."""
    import fnbrrr.numpy as jnp
    from fnbrrr._prims import elementwise

    table = {elementwise.add: "add", elementwise.max: "max", elementwise.min: "min",
             jnp.add: "add", jnp.maximum: "max", jnp.minimum: "min"}
    for fn, name in table.items():
        if computation is fn:
            return name
    return None


def reduce_window(operand, init_value, computation: Callable, window_dimensions: Sequence[int],
                  window_strides: Sequence[int], padding,
                  base_dilation: Sequence[int] | None = None,
                  window_dilation: Sequence[int] | None = None):
    """Reduce every window of `operand` with `computation` (lax.reduce_window).

    Supported computations: `lax.add` (with `init_value` 0), `lax.max` and `lax.min` (any
    `init_value`; -inf / +inf are their identities), and their `fnbrrr.numpy` twins
    `add`, `maximum`, `minimum`. Padding cells hold `init_value`'s identity.

    Args:
      operand: the array.
      init_value: the reduction's starting value (a scalar).
      computation: the binary reduction (see above).
      window_dimensions: window size per axis of the operand (1 for batch/feature axes).
      window_strides: stride per axis.
      padding: "VALID", "SAME" or one (low, high) pair per axis.
      base_dilation: operand dilation per axis (default 1).
      window_dilation: window dilation per axis (default 1).

    Returns:
      The reduced windows, one per output position.

    Raises:
      NotImplementedError: for other computations, or `add` with a non-zero init_value.

    Example:
        >>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)
        >>> reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")[0, :, :, 0]
        Array([[ 5.,  7.],
               [13., 15.]], dtype=float32)
    """
    kind = _known_reducer(computation)
    params = _window_params(operand, window_dimensions, window_strides, padding, base_dilation,
                            window_dilation, "reduce_window")
    concrete_init = _concrete_scalar(init_value)
    if kind == "add":
        if concrete_init is None or concrete_init != 0:
            raise NotImplementedError(
                "reduce_window with lax.add supports init_value 0 only (got "
                f"{init_value!r}); add the constant to the result instead")
        return window_sum_p.bind(operand, **params)
    if kind == "max":
        out = window_max_p.bind(operand, **params)
        return _combine_init(out, init_value, concrete_init, -np.inf, _max_scalar)
    if kind == "min":
        from fnbrrr._prims.elementwise import neg

        out = neg(window_max_p.bind(neg(operand), **params))
        return _combine_init(out, init_value, concrete_init, np.inf, _min_scalar)
    raise NotImplementedError(
        f"reduce_window supports the computations lax.add, lax.max and lax.min (and "
        f"fnbrrr.numpy's add, maximum, minimum), got {computation!r}")


def _concrete_scalar(value):
    """The Python value of a concrete scalar, or None for traced values."""
    from fnbrrr.core import concrete_or_error, is_concrete

    if not is_concrete(value):
        return None
    array = np.asarray(concrete_or_error(value, "reduce_window init_value"))
    return array.item() if array.size == 1 else None


def _max_scalar(a, b):
    from fnbrrr._prims.elementwise import max as lax_max

    return lax_max(a, b)


def _min_scalar(a, b):
    from fnbrrr._prims.elementwise import min as lax_min

    return lax_min(a, b)


def _combine_init(out, init, concrete_init, identity: float, combine: Callable):
    """max/min are idempotent: combining init once equals seeding every window with it."""
    if concrete_init is not None and concrete_init == identity:
        return out
    from fnbrrr._prims.shape import broadcast_in_dim

    aval = get_aval(out)
    init = convert_element_type(init, aval.dtype) if get_aval(init).dtype != aval.dtype else init
    return combine(out, broadcast_in_dim(init, aval.shape, ()))


def _pool_params(inputs, window_shape, strides, padding, op: str) -> dict:
    """Window params for a (batch..., spatial..., features) input (batch axes optional)."""
    shape = get_aval(inputs).shape
    window_shape = tuple(int(w) for w in window_shape)
    nsp = len(window_shape)
    if len(shape) < nsp + 1:
        raise ValueError(f"{op}: inputs of shape {shape} need at least {nsp + 1} axes "
                         f"(spatial axes for window_shape {window_shape}, then features)")
    strides = (1,) * nsp if strides is None else tuple(int(s) for s in strides)
    if len(strides) != nsp:
        raise ValueError(f"{op}: strides {strides} must match window_shape {window_shape}")
    lead = len(shape) - nsp - 1
    window = (1,) * lead + window_shape + (1,)
    all_strides = (1,) * lead + strides + (1,)
    if not isinstance(padding, str):
        padding = tuple((int(lo), int(hi)) for lo, hi in padding)
        if len(padding) != nsp:
            raise ValueError(f"{op}: padding {padding} needs one pair per spatial axis ({nsp})")
        padding = ((0, 0),) * lead + padding + ((0, 0),)
    return _window_params(inputs, window, all_strides, padding, None, None, op)


def max_pool(inputs, window_shape: Sequence[int], strides: Sequence[int] | None = None,
             padding="VALID"):
    """Max pooling over the spatial axes of channels-last `inputs` (flax.linen.max_pool).

    Args:
      inputs: `(batch..., spatial..., features)`; the spatial axes are the `len(window_shape)`
        axes before the last one.
      window_shape: window size per spatial axis, e.g. `(2, 2)`.
      strides: stride per spatial axis (default 1).
      padding: "VALID", "SAME" or one (low, high) pair per spatial axis; padded cells never
        win the max.

    Returns:
      The pooled array. Gradients flow to each window's first maximum (as in JAX).

    Example:
        >>> max_pool(jnp.ones((8, 28, 28, 16)), (2, 2), strides=(2, 2)).shape
        (8, 14, 14, 16)
    """
    params = _pool_params(inputs, window_shape, strides, padding, "max_pool")
    return window_max_p.bind(inputs, **params)


def avg_pool(inputs, window_shape: Sequence[int], strides: Sequence[int] | None = None,
             padding="VALID", count_include_pad: bool = True):
    """Average pooling over the spatial axes of channels-last `inputs` (flax.linen.avg_pool).

    Args:
      inputs: `(batch..., spatial..., features)`.
      window_shape: window size per spatial axis.
      strides: stride per spatial axis (default 1).
      padding: "VALID", "SAME" or one (low, high) pair per spatial axis.
      count_include_pad: divide by the full window size (True) or by the number of
        non-padding cells of each window (False).

    Returns:
      The pooled array, `reduce_window` sum divided by the count.

    Example:
        >>> avg_pool(jnp.ones((8, 28, 28, 16)), (2, 2), strides=(2, 2)).shape
        (8, 14, 14, 16)
    """
    params = _pool_params(inputs, window_shape, strides, padding, "avg_pool")
    aval = get_aval(inputs)
    if aval.dtype.kind != "f":
        raise TypeError(f"avg_pool: inputs must be floating point, got {describe(aval)}")
    sums = window_sum_p.bind(inputs, **params)
    if count_include_pad:
        count = full((), math.prod(params["window_dimensions"]), aval.dtype)
        from fnbrrr._prims.shape import broadcast_in_dim

        return div(sums, broadcast_in_dim(count, get_aval(sums).shape, ()))
    counts = window_sum_p.bind(full(aval.shape, 1, aval.dtype), **params)
    return div(sums, counts)


__all__ = [
    "avg_pool", "max_pool", "reduce_window", "select_and_gather_add_p",
    "select_and_scatter_add_p", "window_max_p", "window_sum_p",
]
