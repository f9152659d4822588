"""dot_general: contraction of two arrays over given axes, with batch axes (the matmul family).

dimension_numbers = ((lhs_contracting, rhs_contracting), (lhs_batch, rhs_batch)); the result's
axes are the batch axes, then lhs's free axes, then rhs's free axes (in operand order).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fnbrrr._prims.common import check_axes, check_dtype_kind, check_same_dtype, describe
from fnbrrr._prims.shape import transpose
from fnbrrr.ad_util import Zero, add_tangents, is_zero
from fnbrrr.core import Primitive, ShapedArray, get_aval

dot_general_p = Primitive("dot_general")


def _free_axes(ndim: int, contracting: Sequence[int], batch: Sequence[int]) -> list[int]:
    return [d for d in range(ndim) if d not in contracting and d not in batch]


def _prod(shape) -> int:
    return math.prod(shape)


def _dot_general_impl(lhs, rhs, *, dimension_numbers, preferred_element_type):
    (lc, rc), (lb, rb) = dimension_numbers
    lf = _free_axes(lhs.ndim, lc, lb)
    rf = _free_axes(rhs.ndim, rc, rb)
    batch_shape = tuple(lhs.shape[d] for d in lb)
    lf_shape = tuple(lhs.shape[d] for d in lf)
    rf_shape = tuple(rhs.shape[d] for d in rf)
    k = _prod([lhs.shape[d] for d in lc])
    # (batch, m, k) @ (batch, k, n): transposes are views; matmul picks BLAS for floats.
    a = np.transpose(lhs, (*lb, *lf, *lc)).reshape((_prod(batch_shape), _prod(lf_shape), k))
    b = np.transpose(rhs, (*rb, *rc, *rf)).reshape((_prod(batch_shape), k, _prod(rf_shape)))
    out = np.matmul(a, b)
    out_dtype = preferred_element_type or lhs.dtype
    return out.reshape(batch_shape + lf_shape + rf_shape).astype(out_dtype, copy=False)


def _dot_general_abstract_eval(lhs: ShapedArray, rhs: ShapedArray, *, dimension_numbers,
                               preferred_element_type):
    op = "dot_general"
    (lc, rc), (lb, rb) = dimension_numbers
    check_same_dtype(op, lhs, rhs)
    check_dtype_kind(op, lhs, "fiu", "a numeric dtype")
    check_axes(op, tuple(lc) + tuple(lb), lhs.ndim, lhs)
    check_axes(op, tuple(rc) + tuple(rb), rhs.ndim, rhs)
    if len(lc) != len(rc) or len(lb) != len(rb):
        raise TypeError(
            f"{op}: contracting dims {lc} vs {rc} and batch dims {lb} vs {rb} must pair up, "
            f"for operands {describe(lhs, rhs)}"
        )
    for a, b in zip(lc, rc):
        if lhs.shape[a] != rhs.shape[b]:
            raise TypeError(
                f"{op}: contracting dimension sizes differ: lhs axis {a} has size {lhs.shape[a]},"
                f" rhs axis {b} has size {rhs.shape[b]} (operands {describe(lhs, rhs)})"
            )
    for a, b in zip(lb, rb):
        if lhs.shape[a] != rhs.shape[b]:
            raise TypeError(
                f"{op}: batch dimension sizes differ: lhs axis {a} has size {lhs.shape[a]}, "
                f"rhs axis {b} has size {rhs.shape[b]} (operands {describe(lhs, rhs)})"
            )
    shape = (
        tuple(lhs.shape[d] for d in lb)
        + tuple(lhs.shape[d] for d in _free_axes(lhs.ndim, lc, lb))
        + tuple(rhs.shape[d] for d in _free_axes(rhs.ndim, rc, rb))
    )
    dtype = np.dtype(preferred_element_type) if preferred_element_type else lhs.dtype
    return ShapedArray(shape, dtype, lhs.weak_type and rhs.weak_type)


def _dot_general_jvp(primals, tangents, *, dimension_numbers, preferred_element_type):
    lhs, rhs = primals
    t_lhs, t_rhs = tangents
    params = dict(dimension_numbers=dimension_numbers,
                  preferred_element_type=preferred_element_type)
    ans = dot_general_p.bind(lhs, rhs, **params)
    out = None
    if not is_zero(t_lhs):
        out = dot_general_p.bind(t_lhs, rhs, **params)
    if not is_zero(t_rhs):
        out = add_tangents(out, dot_general_p.bind(lhs, t_rhs, **params))
    return ans, Zero.like(ans) if out is None else out


def _transpose_operand(ct, x_ndim, y, x_contract, y_contract, x_batch, y_batch, x_is_lhs,
                       x_dtype):
    """The cotangent of operand x of dot(x, y): contract ct with y over y's free axes."""
    y_ndim = get_aval(y).ndim
    x_free = _free_axes(x_ndim, x_contract, x_batch)
    y_free = _free_axes(y_ndim, y_contract, y_batch)
    n_batch = len(x_batch)
    if x_is_lhs:
        ct_y_axes = list(range(n_batch + len(x_free), n_batch + len(x_free) + len(y_free)))
    else:
        ct_y_axes = list(range(n_batch, n_batch + len(y_free)))
    dims = ((tuple(ct_y_axes), tuple(y_free)), (tuple(range(n_batch)), tuple(y_batch)))
    out = dot_general(ct, y, dims, None)
    # out's axes: batch, x's free axes, then y's contracting axes in increasing order.
    x_axes_of_out = list(x_batch) + x_free + [x_contract[list(y_contract).index(d)]
                                              for d in sorted(y_contract)]
    out = transpose(out, tuple(np.argsort(x_axes_of_out)))
    from fnbrrr._prims.elementwise import convert_element_type

    return convert_element_type(out, x_dtype)


def _dot_general_vjp(ct, ans, lhs, rhs, *, dimension_numbers, preferred_element_type):
    (lc, rc), (lb, rb) = dimension_numbers
    lhs_aval, rhs_aval = get_aval(lhs), get_aval(rhs)
    ct_lhs = _transpose_operand(ct, lhs_aval.ndim, rhs, lc, rc, lb, rb, True, lhs_aval.dtype)
    ct_rhs = _transpose_operand(ct, rhs_aval.ndim, lhs, rc, lc, rb, lb, False, rhs_aval.dtype)
    return [ct_lhs, ct_rhs]


def _dot_general_batch(vals, dims, *, dimension_numbers, preferred_element_type):
    from fnbrrr.batching import moveaxis

    (lhs, rhs), (dl, dr) = vals, dims
    (lc, rc), (lb, rb) = dimension_numbers
    shift = lambda axes: tuple(a + 1 for a in axes)  # noqa: E731
    if dl is not None and dr is not None:
        lhs, rhs = moveaxis(lhs, dl, 0), moveaxis(rhs, dr, 0)
        new = ((shift(lc), shift(rc)), ((0, *shift(lb)), (0, *shift(rb))))
        return dot_general(lhs, rhs, new, preferred_element_type), 0
    if dl is not None:
        lhs = moveaxis(lhs, dl, 0)
        new = ((shift(lc), tuple(rc)), (shift(lb), tuple(rb)))
        return dot_general(lhs, rhs, new, preferred_element_type), len(lb)
    rhs = moveaxis(rhs, dr, 0)
    new = ((tuple(lc), shift(rc)), (tuple(lb), shift(rb)))
    lhs_free = len(_free_axes(get_aval(lhs).ndim, lc, lb))
    return dot_general(lhs, rhs, new, preferred_element_type), len(lb) + lhs_free


dot_general_p.impl = _dot_general_impl
dot_general_p.abstract_eval = _dot_general_abstract_eval
dot_general_p.jvp = _dot_general_jvp
dot_general_p.vjp = _dot_general_vjp
dot_general_p.batch = _dot_general_batch


def dot_general(lhs, rhs, dimension_numbers, preferred_element_type=None):
    """Contract `lhs` and `rhs` as `dimension_numbers` says (see the module docstring).

    Example:
        >>> dot_general(a, b, (((1,), (0,)), ((), ())))   # a @ b for 2-D a, b
    """
    (lc, rc), (lb, rb) = dimension_numbers
    dims = ((tuple(int(d) for d in lc), tuple(int(d) for d in rc)),
            (tuple(int(d) for d in lb), tuple(int(d) for d in rb)))
    pet = None if preferred_element_type is None else np.dtype(preferred_element_type)
    return dot_general_p.bind(lhs, rhs, dimension_numbers=dims, preferred_element_type=pet)


def dot(lhs, rhs, preferred_element_type=None):
    """Matrix/vector product of 1-D or 2-D operands (lax.dot)."""
    lhs_ndim = get_aval(lhs).ndim
    return dot_general(lhs, rhs, (((lhs_ndim - 1,), (0,)), ((), ())), preferred_element_type)
