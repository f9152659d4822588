"""fnbrrr.numpy.linalg: norms (and the matrix products' linalg-namespace names).

Decompositions (inv, solve, det, cholesky) need primitives fnbrrr does not have yet.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from fnbrrr import lax
from fnbrrr.numpy import _elementwise as _e
from fnbrrr.numpy import _reductions as _r
from fnbrrr.numpy._linalg import matmul, outer, tensordot, vecdot
from fnbrrr.numpy._promotion import to_array
from fnbrrr.numpy._shape import matrix_transpose, squeeze


def _as_inexact(x):
    return _e._inexact("norm", x)


def norm(x, ord=None, axis=None, keepdims: bool = False):  # noqa: A002
    """Vector or matrix norm.

    Vector norms (1-D input, or an int `axis`): ord None/2 (Euclidean), 1, inf, -inf, 0,
    or any p. Matrix norms (2-D input, or a 2-tuple `axis`): 'fro' (default), 'nuc' is not
    supported, 1, -1, inf, -inf.

    Example:
        >>> jnp.linalg.norm(jnp.array([3.0, 4.0]))
        Array(5., dtype=float32)
    """
    x = _as_inexact(to_array(x, "norm"))
    if axis is None:
        if ord is None:
            return lax.sqrt(_r.sum(lax.mul(x, x), keepdims=keepdims))
        axis = tuple(range(x.ndim))
        if x.ndim not in (1, 2):
            raise ValueError(f"norm: improper number of dimensions to norm ({x.ndim}); pass axis")
    if isinstance(axis, (int, np.integer)) or (isinstance(axis, tuple) and len(axis) == 1):
        ax = operator.index(axis if not isinstance(axis, tuple) else axis[0])
        return _vector_norm(x, ord, ax, keepdims)
    if len(axis) == 2:
        return _matrix_norm(x, ord, tuple(axis), keepdims)
    raise ValueError(f"norm: axis must be an int or a 2-tuple, got {axis!r}")


def _vector_norm(x, ord, axis: int, keepdims: bool):  # noqa: A002
    a = _e.abs(x)
    if ord is None or ord == 2:
        return lax.sqrt(_r.sum(lax.mul(x, x), axis=axis, keepdims=keepdims))
    if ord == np.inf:
        return _r.max(a, axis=axis, keepdims=keepdims)
    if ord == -np.inf:
        return _r.min(a, axis=axis, keepdims=keepdims)
    if ord == 0:
        return _r.sum(_e.not_equal(x, 0), axis=axis, keepdims=keepdims).astype(x.dtype)
    if ord == 1:
        return _r.sum(a, axis=axis, keepdims=keepdims)
    if isinstance(ord, str):
        raise ValueError(f"norm: invalid norm order {ord!r} for vectors")
    p = float(ord)
    return _e.power(_r.sum(_e.power(a, p), axis=axis, keepdims=keepdims), 1.0 / p)


def _matrix_norm(x, ord, axis: tuple, keepdims: bool):  # noqa: A002
    r_ax, c_ax = (_r.canonicalize_axis("norm", a, x.ndim) for a in axis)
    if r_ax == c_ax:
        raise ValueError("norm: duplicate axes given")
    a = _e.abs(x)
    if ord is None or ord == "fro":
        return lax.sqrt(_r.sum(lax.mul(x, x), axis=axis, keepdims=keepdims))
    if ord in (1, -1):
        col = _r.sum(a, axis=r_ax, keepdims=True)
        out = (_r.max if ord == 1 else _r.min)(col, axis=c_ax, keepdims=True)
    elif ord in (np.inf, -np.inf):
        row = _r.sum(a, axis=c_ax, keepdims=True)
        out = (_r.max if ord == np.inf else _r.min)(row, axis=r_ax, keepdims=True)
    else:
        raise NotImplementedError(f"norm: matrix norm ord={ord!r} is not supported")
    return out if keepdims else squeeze(out, (r_ax, c_ax))


def vector_norm(x, /, *, axis=None, keepdims: bool = False, ord=2):  # noqa: A002
    """Array-API vector norm (over all axes when axis is None)."""
    x = _as_inexact(to_array(x, "vector_norm"))
    if axis is None:
        x = lax.reshape(x, (math.prod(x.shape),))
        out = _vector_norm(x, ord, 0, False)
        return lax.reshape(out, (1,) * len(x.shape)) if keepdims else out
    return _vector_norm(x, ord, axis, keepdims)


def matrix_norm(x, /, *, keepdims: bool = False, ord="fro"):  # noqa: A002
    """Array-API matrix norm over the last two axes."""
    return _matrix_norm(_as_inexact(to_array(x, "matrix_norm")), ord, (-2, -1), keepdims)


__all__ = [
    "matmul",
    "matrix_norm",
    "matrix_transpose",
    "norm",
    "outer",
    "tensordot",
    "vecdot",
    "vector_norm",
]
