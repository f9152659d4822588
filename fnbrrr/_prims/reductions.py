"""Reduction primitives: reduce_sum/max/min/prod/and/or over static axes, argmax/argmin."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fnbrrr._prims.common import check_axes, check_dtype_kind, describe
from fnbrrr._prims.elementwise import (
    convert_element_type,
    div,
    eq,
    full,
    mul,
    select_n,
)
from fnbrrr._prims.shape import broadcast_in_dim
from fnbrrr.ad_util import defjvp, defnondiff, defvjp
from fnbrrr.core import Primitive, ShapedArray, get_aval


def _reduced_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def _reduce_abstract_eval(name: str, kinds: str):
    def abstract_eval(x: ShapedArray, *, axes) -> ShapedArray:
        check_axes(name, axes, x.ndim, x)
        check_dtype_kind(name, x, kinds, "a numeric dtype" if "b" not in kinds else "any dtype")
        if name in ("reduce_max", "reduce_min") and any(x.shape[a] == 0 for a in axes):
            raise ValueError(
                f"{name}: zero-size reduction over axes {axes} of operand {describe(x)} has no "
                "identity; pass a non-empty array"
            )
        return ShapedArray(_reduced_shape(x.shape, axes), x.dtype, x.weak_type)

    return abstract_eval


def _reduce_batch(primitive: Primitive):
    def batch(vals, dims, *, axes):
        from fnbrrr.batching import moveaxis

        x = moveaxis(vals[0], dims[0], 0)
        return primitive.bind(x, axes=tuple(a + 1 for a in axes)), 0

    return batch


def reduction(name: str, impl, kinds: str) -> Primitive:
    """Declare a reduction primitive over static `axes`."""
    p = Primitive(name)
    p.impl = impl
    p.abstract_eval = _reduce_abstract_eval(name, kinds)
    p.batch = _reduce_batch(p)
    return p


def _restore_axes(v, x_shape: tuple, axes: tuple):
    """Broadcast a reduced value back to the operand's shape."""
    kept = tuple(i for i in range(len(x_shape)) if i not in axes)
    return broadcast_in_dim(v, x_shape, kept)


reduce_sum_p = reduction("reduce_sum", lambda x, *, axes: np.sum(x, axis=axes, dtype=x.dtype),
                         "fiu")
reduce_max_p = reduction("reduce_max", lambda x, *, axes: np.max(x, axis=axes), "fiub")
reduce_min_p = reduction("reduce_min", lambda x, *, axes: np.min(x, axis=axes), "fiub")
reduce_prod_p = reduction("reduce_prod", lambda x, *, axes: np.prod(x, axis=axes, dtype=x.dtype),
                          "fiu")
reduce_and_p = reduction("reduce_and", lambda x, *, axes: np.all(x, axis=axes), "b")
reduce_or_p = reduction("reduce_or", lambda x, *, axes: np.any(x, axis=axes), "b")
defnondiff(reduce_and_p)
defnondiff(reduce_or_p)

# d sum = sum of the tangent; the cotangent is broadcast back.
defjvp(reduce_sum_p, lambda g, x, *, axes: reduce_sum(g, axes))
defvjp(reduce_sum_p, lambda ct, ans, x, *, axes: _restore_axes(ct, get_aval(x).shape, axes))


def _extremum_weights(ans, x, axes):
    """1/k at each of the k positions that attain the extremum: ties share the gradient."""
    x_shape = get_aval(x).shape
    hits = convert_element_type(eq(x, _restore_axes(ans, x_shape, axes)), get_aval(x).dtype)
    return div(hits, _restore_axes(reduce_sum(hits, axes), x_shape, axes))


def _extremum_jvp(primitive):
    def jvp(primals, tangents, *, axes):
        (x,), (g,) = primals, tangents
        ans = primitive.bind(x, axes=axes)
        return ans, reduce_sum(mul(g, _extremum_weights(ans, x, axes)), axes)

    return jvp


def _extremum_vjp(ct, ans, x, *, axes):
    x_shape = get_aval(x).shape
    return [mul(_restore_axes(ct, x_shape, axes), _extremum_weights(ans, x, axes))]


for _p in (reduce_max_p, reduce_min_p):
    _p.jvp = _extremum_jvp(_p)
    _p.vjp = _extremum_vjp


def _prod_jvp(primals, tangents, *, axes):
    # d prod(x) = sum_i g_i * prod_{j != i} x_j, computed without dividing by x (zeros allowed).
    (x,), (g,) = primals, tangents
    ans = reduce_prod(x, axes)
    return ans, reduce_sum(mul(g, _prod_others(x, axes)), axes)


def _prod_others(x, axes):
    """For each element, the product of the other elements of its reduction group.

    Without dividing by zero: a group with one zero gives the zero's position the product of
    the rest and every other position 0; a group with two or more zeros gives 0 everywhere.
    """
    aval = get_aval(x)
    zero, one = full(aval.shape, 0, aval.dtype), full(aval.shape, 1, aval.dtype)
    is_zero = eq(x, zero)
    nonzero = select_n(is_zero, x, one)
    prod_nonzero = _restore_axes(reduce_prod(nonzero, axes), aval.shape, axes)
    zeros_in_group = _restore_axes(
        reduce_sum(convert_element_type(is_zero, aval.dtype), axes), aval.shape, axes)
    at_zero = select_n(eq(zeros_in_group, one), zero, prod_nonzero)
    elsewhere = select_n(eq(zeros_in_group, zero), zero, div(prod_nonzero, nonzero))
    return select_n(is_zero, elsewhere, at_zero)


reduce_prod_p.jvp = _prod_jvp
reduce_prod_p.vjp = lambda ct, ans, x, *, axes: [
    mul(_restore_axes(ct, get_aval(x).shape, axes), _prod_others(x, axes))]


def reduce_sum(x, axes: Sequence[int]):
    """Sum of `x` over `axes` (non-negative ints)."""
    axes = tuple(sorted(int(a) for a in axes))
    return reduce_sum_p.bind(x, axes=axes) if axes else x


def reduce_max(x, axes: Sequence[int]):
    """Maximum of `x` over `axes`."""
    axes = tuple(sorted(int(a) for a in axes))
    return reduce_max_p.bind(x, axes=axes) if axes else x


def reduce_min(x, axes: Sequence[int]):
    """Minimum of `x` over `axes`."""
    axes = tuple(sorted(int(a) for a in axes))
    return reduce_min_p.bind(x, axes=axes) if axes else x


def reduce_prod(x, axes: Sequence[int]):
    """Product of `x` over `axes`."""
    axes = tuple(sorted(int(a) for a in axes))
    return reduce_prod_p.bind(x, axes=axes) if axes else x


def reduce_and(x, axes: Sequence[int]):
    """Logical and of a bool `x` over `axes`."""
    axes = tuple(sorted(int(a) for a in axes))
    return reduce_and_p.bind(x, axes=axes) if axes else x


def reduce_or(x, axes: Sequence[int]):
    """Logical or of a bool `x` over `axes`."""
    axes = tuple(sorted(int(a) for a in axes))
    return reduce_or_p.bind(x, axes=axes) if axes else x


# --- argmax / argmin -----------------------------------------------------------------------------


def _arg_abstract_eval(name: str):
    def abstract_eval(x: ShapedArray, *, axis, index_dtype) -> ShapedArray:
        check_axes(name, (axis,), x.ndim, x)
        check_dtype_kind(name, x, "fiub", "any dtype")
        if x.shape[axis] == 0:
            raise ValueError(f"{name}: empty axis {axis} of operand {describe(x)}")
        return ShapedArray(_reduced_shape(x.shape, (axis,)), np.dtype(index_dtype), False)

    return abstract_eval


def _arg_batch(primitive):
    def batch(vals, dims, *, axis, index_dtype):
        from fnbrrr.batching import moveaxis

        x = moveaxis(vals[0], dims[0], 0)
        return primitive.bind(x, axis=axis + 1, index_dtype=index_dtype), 0

    return batch


def _argmax_impl(x, *, axis, index_dtype):
    return np.argmax(x, axis=axis).astype(index_dtype)


def _argmin_impl(x, *, axis, index_dtype):
    return np.argmin(x, axis=axis).astype(index_dtype)


argmax_p = Primitive("argmax", differentiable=False)
argmax_p.impl = _argmax_impl
argmax_p.abstract_eval = _arg_abstract_eval("argmax")
argmax_p.batch = _arg_batch(argmax_p)

argmin_p = Primitive("argmin", differentiable=False)
argmin_p.impl = _argmin_impl
argmin_p.abstract_eval = _arg_abstract_eval("argmin")
argmin_p.batch = _arg_batch(argmin_p)


def argmax(x, axis: int, index_dtype):
    """Index of the first maximum of `x` along `axis` (NaN counts as the maximum)."""
    return argmax_p.bind(x, axis=int(axis), index_dtype=np.dtype(index_dtype))


def argmin(x, axis: int, index_dtype):
    """Index of the first minimum of `x` along `axis`."""
    return argmin_p.bind(x, axis=int(axis), index_dtype=np.dtype(index_dtype))

