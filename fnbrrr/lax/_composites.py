"""The `fnbrrr.lax` functions that are not one primitive each: JAX's argument forms on top of a
primitive (rounding modes, negative start indices, `full` without a dtype), the `*_in_dim`
slicing helpers, cumulative reductions and `associative_scan`, sorting and `top_k`, and a few
aliases. Everything is built from primitives, so every transformation applies.

fnbrrr.numpy imports fnbrrr.lax, so fnbrrr.numpy is imported inside the functions that use it.
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fnbrrr._prims import elementwise as _ew
from fnbrrr._prims import indexing as _indexing
from fnbrrr._prims import shape as _shape
from fnbrrr._prims.sorting import argsort as _argsort
from fnbrrr.core import Tracer, get_aval
from fnbrrr.tree_util import tree_flatten, tree_unflatten


def _jnp():
    from fnbrrr import numpy

    return numpy


def _axis(axis: int, ndim: int, what: str) -> int:
    if not -ndim <= axis < builtins.max(ndim, 1):
        raise ValueError(f"{what}: axis {axis} is out of bounds for an array of rank {ndim}")
    return axis % builtins.max(ndim, 1)


# --- element types and rounding -------------------------------------------------------------


class RoundingMethod(enum.IntEnum):
    """How `round` breaks ties (JAX's `lax.RoundingMethod`)."""

    AWAY_FROM_ZERO = 0
    TO_NEAREST_EVEN = 1


def round(x, rounding_method: int = RoundingMethod.TO_NEAREST_EVEN):  # noqa: A001
    """`x` rounded to integral values, ties to even or away from zero.

    JAX's default is AWAY_FROM_ZERO; this one stays TO_NEAREST_EVEN until fnbrrr.numpy's
    `round`/`divmod`, which call `lax.round(x)` for NumPy's ties-to-even, pass it explicitly.

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> round(jnp.array([0.5, 1.5, -2.5]), RoundingMethod.AWAY_FROM_ZERO)
        Array([ 1.,  2., -3.], dtype=float32)
        >>> round(jnp.array([0.5, 1.5, -2.5]), RoundingMethod.TO_NEAREST_EVEN)
        Array([ 0.,  2., -2.], dtype=float32)
    """
    if RoundingMethod(int(rounding_method)) == RoundingMethod.TO_NEAREST_EVEN:
        return _ew.round(x)
    truncated = _ew.round_toward_zero(x)
    # x - trunc(x) is exact in floating point, so ties are found exactly.
    half = _ew.full((), 0.5, get_aval(x).dtype)
    tie_or_above = _ew.ge(_ew.abs(_ew.sub(x, truncated)), half)
    return _ew.select_n(tie_or_above, truncated, _ew.add(truncated, _ew.sign(x)))


def full(shape: Sequence[int], fill_value: Any, dtype: Any = None):
    """An array of `shape` filled with `fill_value`; without `dtype`, the fill value's type
    (weak for Python scalars, as in JAX).

    Example:
        >>> full((2,), 3.0)
        Array([3., 3.], dtype=float32, weak_type=True)
    """
    shape = (shape,) if isinstance(shape, (int, np.integer)) else shape
    if dtype is not None:
        return _ew.full(shape, fill_value, dtype)
    aval = get_aval(fill_value)
    out = _ew.full(shape, fill_value, aval.dtype)
    return _ew.convert_element_type(out, aval.dtype, weak_type=True) if aval.weak_type else out


def pow(x, y):  # noqa: A001
    """`x ** y` elementwise; `y` may be an integer array when `x` is a float one (as in JAX).

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> pow(jnp.array([-2.0, 3.0]), jnp.array([3, 2]))
        Array([-8.,  9.], dtype=float32)
    """
    x_dtype, y_dtype = get_aval(x).dtype, get_aval(y).dtype
    if x_dtype.kind == "f" and y_dtype.kind in "iu":
        y = _ew.convert_element_type(y, x_dtype)
    return _ew.pow(x, y)


def reshape(operand, new_sizes: Sequence[int], dimensions: Sequence[int] | None = None):
    """`operand` with shape `new_sizes`, its axes first permuted by `dimensions` if given.

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> reshape(jnp.arange(6).reshape(2, 3), (6,), dimensions=(1, 0))
        Array([0, 3, 1, 4, 2, 5], dtype=int32)
    """
    if dimensions is not None:
        operand = _shape.transpose(operand, tuple(dimensions))
    return _shape.reshape(operand, new_sizes)


# --- dynamic slicing: negative starts count from the end, then are clamped -------------------


def _start(index, size: int):
    """A start index as JAX reads it: a negative one counts from the end of the axis."""
    if isinstance(index, (int, np.integer)) and not isinstance(index, Tracer):
        return int(index) + size if index < 0 else int(index)
    index = _jnp().asarray(index)
    return _ew.select_n(_ew.lt(index, _ew.full((), 0, index.dtype)), index,
                        _ew.add(index, _ew.full((), size, index.dtype)))


def _starts(operand, start_indices: Sequence) -> list:
    shape = get_aval(operand).shape
    if len(start_indices) != len(shape):
        raise TypeError(f"dynamic slicing: {len(start_indices)} start indices for an operand of "
                        f"rank {len(shape)}; give one per axis")
    return [_start(i, n) for i, n in zip(start_indices, shape)]


def dynamic_slice(operand, start_indices: Sequence, slice_sizes: Sequence[int]):
    """operand[start:start + size] per axis; starts may be traced, negative ones count from
    the end, and all are clamped so that the slice fits (JAX's rules).

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> dynamic_slice(jnp.arange(10), (-1,), (3,))   # -1 -> 9, clamped to 7
        Array([7, 8, 9], dtype=int32)
    """
    return _indexing.dynamic_slice(operand, _starts(operand, start_indices), slice_sizes)


def dynamic_update_slice(operand, update, start_indices: Sequence):
    """`operand` with `update` written at `start_indices` (negative ones count from the end;
    all clamped so that `update` fits).

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> dynamic_update_slice(jnp.zeros(4), jnp.ones(2), (-1,))
        Array([0., 0., 1., 1.], dtype=float32)
    """
    return _indexing.dynamic_update_slice(operand, update, _starts(operand, start_indices))


def _in_dim_starts(operand, index, axis: int) -> tuple[list, int]:
    ndim = len(get_aval(operand).shape)
    axis = _axis(axis, ndim, "dynamic slicing")
    starts: list = [0] * ndim
    starts[axis] = index
    return starts, axis


def dynamic_slice_in_dim(operand, start_index, slice_size: int, axis: int = 0):
    """`dynamic_slice` along one `axis` (the other axes whole).

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> dynamic_slice_in_dim(jnp.arange(6).reshape(2, 3), 1, 2, axis=1)
        Array([[1, 2],
               [4, 5]], dtype=int32)
    """
    starts, axis = _in_dim_starts(operand, start_index, axis)
    sizes = list(get_aval(operand).shape)
    sizes[axis] = slice_size
    return dynamic_slice(operand, starts, sizes)


def dynamic_index_in_dim(operand, index, axis: int = 0, keepdims: bool = True):
    """The slice at `index` (may be traced) along `axis`; `keepdims=False` drops that axis.

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> dynamic_index_in_dim(jnp.arange(6).reshape(2, 3), 1, axis=1, keepdims=False)
        Array([1, 4], dtype=int32)
    """
    out = dynamic_slice_in_dim(operand, index, 1, axis)
    if keepdims:
        return out
    return _shape.squeeze(out, (_axis(axis, len(get_aval(operand).shape), "index_in_dim"),))


def index_in_dim(operand, index: int, axis: int = 0, keepdims: bool = True):
    """The slice at a static `index` (negative counts from the end) along `axis`.

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> index_in_dim(jnp.arange(6).reshape(2, 3), -1, axis=0)
        Array([[3, 4, 5]], dtype=int32)
    """
    size = get_aval(operand).shape[_axis(axis, len(get_aval(operand).shape), "index_in_dim")]
    index = int(index)
    if not -size <= index < size:
        raise IndexError(f"index_in_dim: index {index} is out of bounds for axis {axis} of "
                         f"size {size}")
    return dynamic_index_in_dim(operand, index % size, axis, keepdims)


def dynamic_update_slice_in_dim(operand, update, start_index, axis: int):
    """`dynamic_update_slice` along one `axis`: `update` written from `start_index` there.

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> dynamic_update_slice_in_dim(jnp.zeros(4), jnp.ones(2), 1, axis=0)
        Array([0., 1., 1., 0.], dtype=float32)
    """
    starts, _ = _in_dim_starts(operand, start_index, axis)
    return dynamic_update_slice(operand, update, starts)


def dynamic_update_index_in_dim(operand, update, index, axis: int):
    """`operand` with the slice at `index` along `axis` replaced by `update` (which may
    lack that axis).

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> dynamic_update_index_in_dim(jnp.zeros((2, 2)), jnp.ones(2), 1, axis=0)
        Array([[0., 0.],
               [1., 1.]], dtype=float32)
    """
    ndim = len(get_aval(operand).shape)
    axis = _axis(axis, ndim, "dynamic_update_index_in_dim")
    if len(get_aval(update).shape) == ndim - 1:
        update = _shape.expand_dims(update, (axis,))
    return dynamic_update_slice_in_dim(operand, update, index, axis)


# --- associative scans and cumulative reductions ---------------------------------------------


def associative_scan(fn: Callable, elems: Any, reverse: bool = False, axis: int = 0) -> Any:
    """Inclusive prefix scan of `elems` along `axis` with an associative `fn`, in
    O(log n) rounds of whole-array operations (the odd/even recursion of Blelloch's scan).

    Args:
      fn: associative `fn(a, b)` on pytrees like `elems` (applied elementwise to slices).
      elems: a pytree of arrays sharing the length of `axis`.
      reverse: scan from the end instead.
      axis: the scanned axis.

    Returns:
      A pytree like `elems`: element i combines elements 0..i (n-1..i when `reverse`).

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> associative_scan(lambda a, b: a + b, jnp.arange(1, 6))
        Array([ 1,  3,  6, 10, 15], dtype=int32)
    """
    leaves, tree = tree_flatten(elems)
    if not leaves:
        return elems
    ndim = len(get_aval(leaves[0]).shape)
    axis = _axis(axis, ndim, "associative_scan")
    lengths = {get_aval(x).shape[axis] for x in leaves}
    if len(lengths) != 1:
        raise ValueError(f"associative_scan: the arrays have different lengths {sorted(lengths)} "
                         f"along axis {axis}")
    if reverse:
        leaves = [_shape.rev(x, (axis,)) for x in leaves]

    def combine(a: list, b: list) -> list:
        out, _ = tree_flatten(fn(tree_unflatten(tree, a), tree_unflatten(tree, b)))
        return out

    out = _prefix_scan(combine, leaves, axis)
    if reverse:
        out = [_shape.rev(x, (axis,)) for x in out]
    return tree_unflatten(tree, out)


def _strided(xs: list, start: int, stop: int | None, axis: int) -> list:
    """xs[start:stop:2] along `axis`."""
    return [slice_in_dim(x, start, stop, 2, axis) for x in xs]


def _prefix_scan(combine: Callable, xs: list, axis: int) -> list:
    n = get_aval(xs[0]).shape[axis]
    if n < 2:
        return xs
    # Combine neighbours, scan the half-length sequence, then fill in the even positions.
    odd = _prefix_scan(combine, combine(_strided(xs, 0, -1, axis), _strided(xs, 1, None, axis)),
                       axis)
    later_evens = _strided(xs, 2, None, axis)
    even = combine([slice_in_dim(o, 0, -1, 1, axis) for o in odd] if n % 2 == 0 else odd,
                   later_evens)
    even = [_shape.concatenate([slice_in_dim(x, 0, 1, 1, axis), e], axis)
            for x, e in zip(xs, even)]
    return [_interleave(e, o, axis) for e, o in zip(even, odd)]


def _interleave(even, odd, axis: int):
    """e0, o0, e1, o1, ... along `axis` (`even` may be one longer than `odd`)."""
    n_even, n_odd = get_aval(even).shape[axis], get_aval(odd).shape[axis]
    if n_even > n_odd:
        pad = [(0, 0, 0)] * len(get_aval(odd).shape)
        pad[axis] = (0, 1, 0)
        odd = _shape.pad(odd, _ew.full((), 0, get_aval(odd).dtype), pad)
    pairs = _shape.concatenate([_shape.expand_dims(even, (axis + 1,)),
                                _shape.expand_dims(odd, (axis + 1,))], axis + 1)
    shape = list(get_aval(even).shape)
    shape[axis] *= 2
    return slice_in_dim(_shape.reshape(pairs, shape), 0, n_even + n_odd, 1, axis)


def slice_in_dim(operand, start_index: int | None, limit_index: int | None, stride: int = 1,
                 axis: int = 0):
    """operand[start:limit:stride] along one `axis` (the others whole), as JAX's lax.

    Example:
      >>> import fnbrrr.numpy as jnp
      >>> slice_in_dim(jnp.arange(6).reshape(2, 3), 1, 3, axis=1)
      Array([[1, 2],
             [4, 5]], dtype=int32)
    """
    shape = get_aval(operand).shape
    axis = _axis(axis, len(shape), "slice_in_dim")
    start, limit, step = builtins.slice(start_index, limit_index, stride).indices(shape[axis])
    starts = [0] * len(shape)
    limits = list(shape)
    strides = [1] * len(shape)
    starts[axis], limits[axis], strides[axis] = start, builtins.max(limit, start), step
    return _shape.slice(operand, starts, limits, strides)


def cumsum(operand, axis: int = 0, reverse: bool = False):
    """Cumulative sum along `axis` (from the end when `reverse`).

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> cumsum(jnp.arange(4), reverse=True)
        Array([6, 6, 5, 3], dtype=int32)
    """
    return _cumulative(_jnp().cumsum, operand, axis, reverse)


def cumprod(operand, axis: int = 0, reverse: bool = False):
    """Cumulative product along `axis` (from the end when `reverse`).

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> cumprod(jnp.arange(1, 5))
        Array([ 1,  2,  6, 24], dtype=int32)
    """
    return _cumulative(_jnp().cumprod, operand, axis, reverse)


def cummax(operand, axis: int = 0, reverse: bool = False):
    """Running maximum along `axis` (from the end when `reverse`).

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> cummax(jnp.array([1, 3, 2, 5]))
        Array([1, 3, 3, 5], dtype=int32)
    """
    return associative_scan(_ew.max, operand, reverse, axis)


def cummin(operand, axis: int = 0, reverse: bool = False):
    """Running minimum along `axis` (from the end when `reverse`).

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> cummin(jnp.array([3, 1, 2, 0]))
        Array([3, 1, 1, 0], dtype=int32)
    """
    return associative_scan(_ew.min, operand, reverse, axis)


def cumlogsumexp(operand, axis: int = 0, reverse: bool = False):
    """Running log(sum(exp(.))) along `axis`, computed stably (from the end when `reverse`).

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> cumlogsumexp(jnp.zeros(2))
        Array([0.       , 0.6931472], dtype=float32)
    """
    return associative_scan(_jnp().logaddexp, operand, reverse, axis)


def _cumulative(numpy_fn: Callable, operand, axis: int, reverse: bool):
    axis = _axis(axis, len(get_aval(operand).shape), "cumulative reduction")
    if not reverse:
        return numpy_fn(operand, axis=axis)
    return _shape.rev(numpy_fn(_shape.rev(operand, (axis,)), axis=axis), (axis,))


# --- sorting ----------------------------------------------------------------------------------


def sort(operand, dimension: int = -1, is_stable: bool = True, num_keys: int = 1):
    """Sort along `dimension`: one array, or a sequence of same-shape arrays sorted together
    by the first `num_keys` of them (lexicographically). Sorting is always stable.

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> sort((jnp.array([2, 1, 2]), jnp.array([0.0, 1.0, 2.0])))
        (Array([1, 2, 2], dtype=int32), Array([1., 0., 2.], dtype=float32))
    """
    if not isinstance(operand, (tuple, list)):
        return sort((operand,), dimension, is_stable, num_keys)[0]
    operands = list(operand)
    if not 1 <= num_keys <= len(operands):
        raise ValueError(f"sort: num_keys={num_keys} must be between 1 and the number of "
                         f"operands ({len(operands)})")
    axis = _axis(dimension, len(get_aval(operands[0]).shape), "sort")
    # Lexicographic order: stable sorts by the least significant key first.
    order = _argsort(operands[num_keys - 1], axis)
    for key in reversed(operands[:num_keys - 1]):
        order = _take_along(order, _argsort(_take_along(key, order, axis), axis), axis)
    return tuple(_take_along(x, order, axis) for x in operands)


def _take_along(x, indices, axis: int):
    """x at `indices` along `axis`, for indices known to be in bounds (a permutation)."""
    return _jnp().take_along_axis(x, indices, axis, mode="promise_in_bounds")


def sort_key_val(keys, values, dimension: int = -1, is_stable: bool = True):
    """`(sorted keys, values in the keys' order)` along `dimension`.

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> sort_key_val(jnp.array([3.0, 1.0]), jnp.array([0, 1]))
        (Array([1., 3.], dtype=float32), Array([1, 0], dtype=int32))
    """
    return sort((keys, values), dimension, is_stable, num_keys=1)


def top_k(operand, k: int) -> list:
    """The `k` largest entries along the last axis, in decreasing order, and their indices
    (ties: the lower index first, as in JAX).

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> top_k(jnp.array([1.0, 3.0, 2.0, 3.0]), 2)
        [Array([3., 3.], dtype=float32), Array([1, 3], dtype=int32)]
    """
    shape = get_aval(operand).shape
    if not shape:
        raise TypeError("top_k: the operand must have at least one axis")
    n, k = shape[-1], int(k)
    if not 0 <= k <= n:
        raise ValueError(f"top_k: k={k} must be between 0 and the last axis' size {n}")
    axis = len(shape) - 1
    # A stable ascending sort of the reversed row, read backwards, is descending with ties
    # in increasing index order; it needs no negation (so it works for unsigned ints too).
    ascending = _argsort(_shape.rev(operand, (axis,)), axis)
    indices = _ew.sub(_ew.full((), n - 1, get_aval(ascending).dtype),
                      _shape.rev(ascending, (axis,)))
    indices = slice_in_dim(indices, 0, k, 1, axis)
    return [_take_along(operand, indices, axis), indices]


# --- aliases and small functions under JAX's lax names -----------------------------------------


def batch_matmul(lhs, rhs, precision: Any = None):
    """Batched matrix product of arrays of equal rank >= 2 (`lhs @ rhs` per batch element).

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> batch_matmul(jnp.ones((2, 1, 3)), jnp.ones((2, 3, 1))).shape
        (2, 1, 1)
    """
    lhs_shape, rhs_shape = get_aval(lhs).shape, get_aval(rhs).shape
    if len(lhs_shape) != len(rhs_shape) or len(lhs_shape) < 2:
        raise ValueError(f"batch_matmul: operands must have equal rank >= 2, got shapes "
                         f"{lhs_shape} and {rhs_shape}")
    return _jnp().matmul(lhs, rhs)


def collapse(operand, start_dimension: int, stop_dimension: int | None = None):
    """`operand` with axes [start_dimension, stop_dimension) merged into one.

    Example:
        >>> import fnbrrr.numpy as jnp
        >>> collapse(jnp.zeros((2, 3, 4)), 1).shape
        (2, 12)
    """
    shape = get_aval(operand).shape
    start, stop, _ = builtins.slice(start_dimension, stop_dimension).indices(len(shape))
    merged = int(np.prod(shape[start:stop], dtype=np.int64))
    return _shape.reshape(operand, (*shape[:start], merged, *shape[stop:]))


def exp2(x):
    """2 ** x elementwise."""
    return _jnp().exp2(x)


def reciprocal(x):
    """1 / x elementwise."""
    return _jnp().reciprocal(x)


def cbrt(x):
    """The real cube root, elementwise."""
    return _jnp().cbrt(x)


def erf_inv(x):
    """The inverse error function on (-1, 1)."""
    from fnbrrr.random import erf_inv as _erf_inv

    return _erf_inv(x)


def _unary_numpy(lax_name: str, numpy_name: str) -> Callable:
    def fn(x):
        return getattr(_jnp(), numpy_name)(x)

    fn.__name__ = fn.__qualname__ = lax_name
    fn.__doc__ = f"`fnbrrr.numpy.{numpy_name}` under JAX's lax name."
    return fn


asin, acos, atan = (_unary_numpy(f"a{f}", f"arc{f}") for f in ("sin", "cos", "tan"))
asinh, acosh, atanh = (_unary_numpy(f"a{f}", f"arc{f}") for f in ("sinh", "cosh", "tanh"))
sinh, cosh = _unary_numpy("sinh", "sinh"), _unary_numpy("cosh", "cosh")
bitwise_and, bitwise_or, bitwise_xor, bitwise_not = _ew.and_, _ew.or_, _ew.xor, _ew.not_
