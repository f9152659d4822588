"""fnbrrr.numpy.linalg: norms, solve/inv/det/slogdet, cholesky (and the matrix products'
linalg-namespace names).

The factorisations are compositions of fnbrrr.numpy operations, unrolled over the (static)
matrix size: Gauss-Jordan elimination with partial pivoting for solve/inv/det, the
column-by-column algorithm for cholesky. So they are differentiable, batchable and jit-able
like everything else, and meant for small matrices (the program grows linearly with n).
"""

from __future__ import annotations

import math
import operator
from typing import NamedTuple

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


def _square_matrices(name: str, a):
    a = _e._inexact(name, to_array(a, name))
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{name}: needs square matrices (..., n, n), got shape {a.shape}")
    return a


def _gauss_jordan(a, b, zero_pivots_ok: bool = False):
    """Reduce [a | b] (a: (..., n, n), b: (..., n, m)) to [I | a^-1 b] with partial pivoting.

    Returns (a^-1 b, the pivots (..., n), the row swaps (..., n) as bool flags). With
    `zero_pivots_ok` a zero pivot (a singular matrix) scales by 1 instead of dividing by 0, so
    the pivots stay finite (det and slogdet then see the 0).
    """
    from fnbrrr.numpy import _indexing, _shape

    n = a.shape[-1]
    m = _shape.concatenate([a, b], axis=-1)
    rows = _creation_arange(n)
    pivots, swaps = [], []
    for k in range(n):
        # Row with the largest |entry| in column k, among rows k..n-1.
        candidates = _e.where(rows >= k, _e.abs(m[..., :, k]), -1.0)
        p = _r.argmax(candidates, axis=-1)
        swapped = _e.where(rows == k, p[..., None], _e.where(rows == p[..., None], k, rows))
        m = _indexing.take_along_axis(m, swapped[..., :, None], axis=-2, mode="clip")
        pivot = m[..., k, k]
        divisor = _e.where(pivot == 0, 1.0, pivot) if zero_pivots_ok else pivot
        row_k = m[..., k, :] / divisor[..., None]
        m = m - m[..., :, k : k + 1] * row_k[..., None, :]
        m = _e.where((rows == k)[:, None], row_k[..., None, :], m)
        pivots.append(pivot)
        swaps.append(p != k)
    return m[..., :, n:], _shape.stack(pivots, axis=-1), _shape.stack(swaps, axis=-1)


def _creation_arange(n: int):
    from fnbrrr.numpy._creation import arange

    return arange(n)


def solve(a, b):
    """The solution x of a @ x = b, for square a (..., n, n) and b (n,) or (..., n, k).

    Example:
        >>> jnp.linalg.solve(jnp.array([[2.0, 0.0], [0.0, 4.0]]), jnp.array([2.0, 2.0]))
        Array([1. , 0.5], dtype=float32)
    """
    a = _square_matrices("solve", a)
    b = _e._inexact("solve", to_array(b, "solve"))
    vector = b.ndim == 1  # as in JAX >= 0.5: a batched b is always (..., n, k)
    bm = b[..., None] if vector else b
    if bm.shape[-2] != a.shape[-1]:
        raise ValueError(f"solve: shapes {a.shape} and {b.shape} do not match")
    from fnbrrr.numpy._shape import broadcast_to

    batch = np.broadcast_shapes(a.shape[:-2], bm.shape[:-2])
    a = broadcast_to(a, batch + a.shape[-2:])
    bm = broadcast_to(bm, batch + bm.shape[-2:])
    x = _gauss_jordan(a, bm)[0]
    return x[..., 0] if vector else x


def inv(a):
    """The inverse of square matrices a (..., n, n).

    Example:
        >>> jnp.linalg.inv(jnp.array([[2.0, 0.0], [0.0, 4.0]]))
        Array([[0.5 , 0.  ],
               [0.  , 0.25]], dtype=float32)
    """
    from fnbrrr.numpy._creation import eye
    from fnbrrr.numpy._shape import broadcast_to

    a = _square_matrices("inv", a)
    ident = broadcast_to(eye(a.shape[-1], dtype=a.dtype), a.shape)
    return _gauss_jordan(a, ident)[0]


class SlogdetResult(NamedTuple):
    """`slogdet`'s result: det = sign * exp(logabsdet)."""

    sign: object
    logabsdet: object


def slogdet(a) -> SlogdetResult:
    """(sign, log|det|) of square matrices a (..., n, n), as a `SlogdetResult` namedtuple.

    Example:
        >>> jnp.linalg.slogdet(jnp.array([[0.0, 2.0], [3.0, 0.0]]))[0]
        Array(-1., dtype=float32)
    """
    from fnbrrr.numpy._creation import ones, zeros

    a = _square_matrices("slogdet", a)
    if a.shape[-1] == 0:
        return SlogdetResult(ones(a.shape[:-2], a.dtype), zeros(a.shape[:-2], a.dtype))
    _, pivots, swaps = _gauss_jordan(a, a[..., :, :0], zero_pivots_ok=True)
    flips = _r.sum(swaps, axis=-1) % 2
    sign = _r.prod(_e.sign(pivots), axis=-1) * (1 - 2 * flips).astype(a.dtype)
    return SlogdetResult(sign, _r.sum(_e.log(_e.abs(pivots)), axis=-1))


def det(a):
    """The determinant of square matrices a (..., n, n).

    Example:
        >>> jnp.linalg.det(jnp.array([[2.0, 1.0], [1.0, 3.0]]))
        Array(5., dtype=float32)
    """
    from fnbrrr.numpy._creation import ones

    a = _square_matrices("det", a)
    if a.shape[-1] == 0:
        return ones(a.shape[:-2], a.dtype)
    _, pivots, swaps = _gauss_jordan(a, a[..., :, :0], zero_pivots_ok=True)
    flips = _r.sum(swaps, axis=-1) % 2
    return _r.prod(pivots, axis=-1) * (1 - 2 * flips).astype(a.dtype)


def cholesky(a, *, upper: bool = False):
    """The lower Cholesky factor L (a = L @ L.T) of symmetric positive-definite a (..., n, n);
    NaN where a is not positive definite. Only the symmetric part (a + a.T) / 2 is used.

    Example:
        >>> jnp.linalg.cholesky(jnp.array([[4.0, 2.0], [2.0, 2.0]]))
        Array([[2., 0.],
               [1., 1.]], dtype=float32)
    """
    from fnbrrr.numpy._creation import zeros_like

    a = _square_matrices("cholesky", a)
    a = (a + matrix_transpose(a)) / 2
    n = a.shape[-1]
    rows = _creation_arange(n)
    lower = zeros_like(a)
    for j in range(n):
        v = a[..., :, j] - matmul(lower[..., :, :j], lower[..., j, :j][..., None])[..., 0]
        col = v / _e.sqrt(v[..., j : j + 1])
        lower = lower.at[..., :, j].set(_e.where(rows >= j, col, 0.0))
    return matrix_transpose(lower) if upper else lower


__all__ = [
    "cholesky",
    "det",
    "inv",
    "matmul",
    "matrix_norm",
    "matrix_transpose",
    "norm",
    "outer",
    "slogdet",
    "solve",
    "tensordot",
    "vecdot",
    "vector_norm",
]
