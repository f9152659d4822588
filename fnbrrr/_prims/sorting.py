"""Sorting primitives: `argsort`, a stable sort's permutation along one axis.

    argsort(x, axis, index_dtype)[..., i, ...] = the index along `axis` of the i-th smallest

Ties keep their original order (a stable sort), and NaNs sort last, as in NumPy. The result
is integer valued, so the primitive is not differentiable; a differentiable `sort` is a
gather with these indices (`take_along_axis(x, argsort(x))`), whose derivative routes each
cotangent back to the element that moved.
"""

from __future__ import annotations

import numpy as np

from fnbrrr._prims.common import check_axes, check_dtype_kind
from fnbrrr.core import Primitive, ShapedArray

argsort_p = Primitive("argsort", differentiable=False)
argsort_p.doc = "the permutation that stably sorts an axis"


def _argsort_impl(x, *, axis, index_dtype):
    return np.argsort(x, axis=axis, kind="stable").astype(index_dtype)


def _argsort_abstract_eval(x: ShapedArray, *, axis, index_dtype) -> ShapedArray:
    check_axes("argsort", (axis,), x.ndim, x)
    check_dtype_kind("argsort", x, "fiub", "a numeric or bool dtype")
    return ShapedArray(x.shape, np.dtype(index_dtype), False)


def _argsort_batch(vals, dims, *, axis, index_dtype):
    from fnbrrr.batching import moveaxis

    x = moveaxis(vals[0], dims[0], 0)
    return argsort_p.bind(x, axis=axis + 1, index_dtype=index_dtype), 0


argsort_p.impl = _argsort_impl
argsort_p.abstract_eval = _argsort_abstract_eval
argsort_p.batch = _argsort_batch


def argsort(x, axis: int = -1, index_dtype=np.int32):
    """Indices that stably sort `x` along `axis` (ties keep their order; NaNs go last).

    Args:
      x: an array of a numeric or bool dtype, with at least one axis.
      axis: the axis to sort along (negative counts from the end).
      index_dtype: the integer dtype of the result.

    Returns:
      An integer array of `x`'s shape.

    Example:
      >>> argsort(np.array([3.0, 1.0, 2.0, 1.0]))
      Array([1, 3, 2, 0], dtype=int32)
    """
    from fnbrrr.core import get_aval

    ndim = get_aval(x).ndim
    if ndim == 0:
        raise ValueError("argsort: the operand must have at least one axis, got a 0-d array")
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"argsort: axis {axis} is out of bounds for an array of rank {ndim}")
    return argsort_p.bind(x, axis=axis % ndim, index_dtype=np.dtype(index_dtype))
