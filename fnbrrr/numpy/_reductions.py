"""Reductions (sum, mean, max, var, argmax, all...) and cumulative sums, on `lax` primitives.

Axes follow NumPy: `axis` is None (all axes), an int (negative allowed) or a tuple of ints;
`keepdims` keeps reduced axes as size 1. Result dtypes follow JAX: sums and products of bools
and small integers are the default int (int32; unsigned stay unsigned), means and variances of
integers are floating point.
"""

from __future__ import annotations

import builtins
import math
import operator

import numpy as np

from fnbrrr import dtypes, lax
from fnbrrr.config import config
from fnbrrr.numpy._elementwise import _as_bool, _no_out
from fnbrrr.numpy._promotion import (
    BOOL,
    broadcast_to_shape,
    canonical_dtype,
    default_int,
    scalar_const,
    to_array,
    to_inexact_dtype,
)

_AXES_CACHE: dict = {}


def canonicalize_axis(name: str, axis, ndim: int) -> int:
    """One axis in [-ndim, ndim) as a non-negative int, or AxisError (a ValueError)."""
    try:
        a = operator.index(axis)
    except TypeError:
        raise TypeError(
            f"{name}: axis must be an integer, got {type(axis).__name__} {axis!r}"
        ) from None
    if not -ndim <= a < ndim:
        raise np.exceptions.AxisError(
            f"{name}: axis {a} is out of bounds for an array of dimension {ndim} "
            f"(valid axes are {-ndim}..{ndim - 1})"
            if ndim
            else f"{name}: axis {a} is out of bounds for a 0-d array (only axis=None is valid)"
        )
    return a % ndim if ndim else 0


def reduction_axes(name: str, axis, ndim: int) -> tuple[int, ...]:
    """`axis` (None, int or sequence of ints) as a sorted tuple of distinct non-negative axes."""
    if axis is None:
        return _ALL_AXES[ndim] if ndim < 33 else tuple(range(ndim))
    key = (name, axis, ndim) if isinstance(axis, (int, tuple)) else None
    if key is not None:
        cached = _AXES_CACHE.get(key)
        if cached is not None:
            return cached
    if isinstance(axis, (tuple, list)):
        axes = tuple(canonicalize_axis(name, a, ndim) for a in axis)
        if len(set(axes)) != len(axes):
            raise ValueError(f"{name}: duplicate value in axis {tuple(axis)}")
        axes = tuple(sorted(axes))
    else:
        axes = (canonicalize_axis(name, axis, ndim),)
    if key is not None:
        _AXES_CACHE[key] = axes
    return axes


def _keepdims_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def _finish(out, shape: tuple, axes: tuple, keepdims: bool):
    if keepdims:
        return lax.reshape(out, _keepdims_shape(shape, axes))
    return out


def _operand(name: str, a, axis):
    """`(a as an array, its aval, the reduced axes)`: what every reduction starts from."""
    a = _strong(to_array(a, name))
    return a, a.aval, reduction_axes(name, axis, a.aval.ndim)


def _strong(a):
    """`a` without a weak type: as in JAX, a reduction's result is strongly typed even when its
    operand is a Python scalar (`jnp.sum(3.0) + x16` stays float32)."""
    aval = a.aval
    return lax.convert_element_type(a, aval.dtype, False) if aval.weak_type else a


def _reduce_sum(x, axes: tuple):
    return lax.reduce_sum(x, axes) if axes else x


def _cast(x, aval, dt: np.dtype, dtype):
    """`x` (of abstract value `aval`) as `dt`; weakly typed only if `aval` was and no `dtype`
    was asked for."""
    return lax.convert_element_type(x, dt, aval.weak_type and dtype is None)


def _where_mask(name: str, where, shape: tuple):
    return broadcast_to_shape(_as_bool(name, where), shape)


def _fill_outside(mask, x, fill, shape: tuple, dt: np.dtype):
    """`x` where `mask` is true, `fill` elsewhere."""
    return lax.select_n(mask, lax.full(shape, fill, dt), x)


_ALL_AXES = [tuple(range(n)) for n in range(33)]
_SUM_DTYPES: dict = {}


def _sum_dtype(dt: np.dtype) -> np.dtype:
    """The accumulation dtype of sum/prod: bools and narrow ints widen to the default int."""
    try:
        return _SUM_DTYPES[dt]
    except KeyError:
        result = _SUM_DTYPES[dt] = _widened(dt)
        return result


def _reset_sum_dtypes(name, value) -> None:
    _SUM_DTYPES.clear()


config.on_change(_reset_sum_dtypes)


def _widened(dt: np.dtype) -> np.dtype:
    if dt.kind == "b":
        return default_int()
    if dt.kind == "i" and dt.itemsize < default_int().itemsize:
        return default_int()
    if dt.kind == "u" and dt.itemsize < default_int().itemsize:
        return dtypes.canonicalize(np.dtype(f"uint{default_int().itemsize * 8}"))
    return dt


def _accumulation_dtype(aval, dtype, promote_ints: bool) -> np.dtype:
    """The dtype sums and products (plain or cumulative) compute in."""
    if dtype is not None:
        return canonical_dtype(dtype)
    return _sum_dtype(aval.dtype) if promote_ints else aval.dtype


def _prepare(name: str, a, axis, dtype, where_mask, fill, promote_ints: bool = True):
    a, aval, axes = _operand(name, a, axis)
    dt = _accumulation_dtype(aval, dtype, promote_ints)
    if dt != aval.dtype:
        a = _cast(a, aval, dt, dtype)
    if where_mask is not None:
        a = _fill_outside(_where_mask(name, where_mask, aval.shape), a, fill, aval.shape, dt)
    return a, aval.shape, axes, dt


def sum(
    a,
    axis=None,
    dtype=None,
    out=None,
    keepdims: bool = False,
    initial=None,
    where=None,
    promote_integers: bool = True,
):  # noqa: A001
    """Sum of elements over `axis`; bools and narrow ints sum as the default int (int32).

    Example:
        >>> jnp.sum(jnp.array([[1, 2], [3, 4]]), axis=0)
        Array([4, 6], dtype=int32)
    """
    _no_out("sum", out)
    a, shape, axes, dt = _prepare("sum", a, axis, dtype, where, 0, promote_integers)
    if dt.kind == "b":
        r = lax.reduce_or(a, axes)
    else:
        r = _reduce_sum(a, axes)
    if initial is not None:
        r = lax.add(r, scalar_const(initial, dt))
    return _finish(r, shape, axes, keepdims)


def prod(
    a,
    axis=None,
    dtype=None,
    out=None,
    keepdims: bool = False,
    initial=None,
    where=None,
    promote_integers: bool = True,
):
    """Product of elements over `axis` (bools and narrow ints widen to the default int).

    Example:
        >>> jnp.prod(jnp.array([1., 2., 3.]))
        Array(6., dtype=float32)
    """
    _no_out("prod", out)
    a, shape, axes, dt = _prepare("prod", a, axis, dtype, where, 1, promote_integers)
    if dt.kind == "b":
        r = lax.reduce_and(a, axes)
    else:
        r = lax.reduce_prod(a, axes) if axes else a
    if initial is not None:
        r = lax.mul(r, scalar_const(initial, dt))
    return _finish(r, shape, axes, keepdims)


def _extremum(name: str, lax_reduce, lax_combine, a, axis, out, keepdims, initial, where_mask):
    _no_out(name, out)
    a, aval, axes = _operand(name, a, axis)
    if where_mask is not None and initial is None:
        raise ValueError(f"{name}: reduction with `where` needs an `initial` value")
    if initial is None and builtins.any(aval.shape[i] == 0 for i in axes):
        raise ValueError(
            f"{name}: zero-size array to reduction operation {name} which has no identity "
            f"(shape {aval.shape}, axis={axis}); pass `initial=` or a non-empty array"
        )
    if where_mask is not None:
        mask = _where_mask(name, where_mask, aval.shape)
        a = _fill_outside(mask, a, initial, aval.shape, aval.dtype)
    if builtins.any(aval.shape[i] == 0 for i in axes):
        r = lax.full(
            tuple(d for i, d in enumerate(aval.shape) if i not in axes), initial, aval.dtype
        )
    else:
        r = lax_reduce(a, axes) if axes else a
        if initial is not None:
            r = lax_combine(r, scalar_const(initial, aval.dtype))
    return _finish(r, aval.shape, axes, keepdims)


def max(a, axis=None, out=None, keepdims: bool = False, initial=None, where=None):  # noqa: A001
    """Maximum over `axis` (nan propagates); empty reductions need `initial`.

    Example:
        >>> jnp.max(jnp.array([[1, 5], [3, 2]]), axis=1)
        Array([5, 3], dtype=int32)
    """
    return _extremum("max", lax.reduce_max, lax.max, a, axis, out, keepdims, initial, where)


def min(a, axis=None, out=None, keepdims: bool = False, initial=None, where=None):  # noqa: A001
    """Minimum over `axis` (nan propagates); empty reductions need `initial`."""
    return _extremum("min", lax.reduce_min, lax.min, a, axis, out, keepdims, initial, where)


amax = max
amin = min


def all(a, axis=None, out=None, keepdims: bool = False, *, where=None):  # noqa: A001
    """Whether every element over `axis` is true (nonzero).

    Example:
        >>> jnp.all(jnp.array([1, 0, 2]) > 0)
        Array(False, dtype=bool)
    """
    _no_out("all", out)
    a = _as_bool("all", a)
    axes = reduction_axes("all", axis, a.ndim)
    if where is not None:
        a = lax.or_(a, lax.not_(_where_mask("all", where, a.shape)))
    return _finish(lax.reduce_and(a, axes), a.shape, axes, keepdims)


def any(a, axis=None, out=None, keepdims: bool = False, *, where=None):  # noqa: A001
    """Whether some element over `axis` is true (nonzero)."""
    _no_out("any", out)
    a = _as_bool("any", a)
    axes = reduction_axes("any", axis, a.ndim)
    if where is not None:
        a = lax.and_(a, _where_mask("any", where, a.shape))
    return _finish(lax.reduce_or(a, axes), a.shape, axes, keepdims)


def _count(shape: tuple, axes: tuple) -> int:
    n = 1
    for i in axes:
        n *= shape[i]
    return n


def _mean_dtype(aval, dtype) -> tuple[np.dtype, np.dtype]:
    """(result dtype, accumulation dtype): float16 accumulates in float32, as in JAX."""
    if dtype is not None:
        out = canonical_dtype(dtype)
    else:
        out = to_inexact_dtype(aval.dtype, aval.weak_type)
    acc = np.dtype("float32") if out == np.dtype("float16") else out
    return out, acc


def mean(a, axis=None, dtype=None, out=None, keepdims: bool = False, *, where=None):
    """Arithmetic mean over `axis`; integer inputs give floating point.

    Example:
        >>> jnp.mean(jnp.array([1, 2, 3, 4]))
        Array(2.5, dtype=float32)
    """
    _no_out("mean", out)
    a, aval, axes = _operand("mean", a, axis)
    out_dt, acc_dt = _mean_dtype(aval, dtype)
    x = _cast(a, aval, acc_dt, dtype)
    if where is None:
        r = lax.div(_reduce_sum(x, axes), scalar_const(_count(aval.shape, axes), acc_dt))
    else:
        mask = _where_mask("mean", where, aval.shape)
        total = lax.reduce_sum(_fill_outside(mask, x, 0, aval.shape, acc_dt), axes)
        count = lax.reduce_sum(lax.convert_element_type(mask, acc_dt), axes)
        r = lax.div(total, count)
    return _finish(_cast(r, aval, out_dt, dtype), aval.shape, axes, keepdims)


def var(
    a,
    axis=None,
    dtype=None,
    out=None,
    ddof: int = 0,
    keepdims: bool = False,
    *,
    where=None,
    correction=None,
):
    """Variance over `axis`: mean of squared deviations divided by (N - ddof); ddof=0 is the
    population variance.

    Example:
        >>> jnp.var(jnp.array([1., 2., 3., 4.]))
        Array(1.25, dtype=float32)
    """
    _no_out("var", out)
    if correction is not None:
        ddof = correction
    a, aval, axes = _operand("var", a, axis)
    out_dt, acc_dt = _mean_dtype(aval, dtype)
    x = _cast(a, aval, acc_dt, dtype)
    if where is None:
        n = _count(aval.shape, axes)
        centered = lax.sub(x, broadcast_to_shape(mean(x, axes, keepdims=True), aval.shape))
        total = _reduce_sum(lax.mul(centered, centered), axes)
        r = lax.div(total, scalar_const(builtins.max(n - ddof, 0), acc_dt))
    else:
        mask = _where_mask("var", where, aval.shape)
        mu = mean(x, axes, keepdims=True, where=mask)
        centered = lax.sub(x, broadcast_to_shape(mu, aval.shape))
        sq = _fill_outside(mask, lax.mul(centered, centered), 0, aval.shape, acc_dt)
        count = lax.reduce_sum(lax.convert_element_type(mask, acc_dt), axes)
        denom = lax.max(lax.sub(count, scalar_const(ddof, acc_dt)), scalar_const(0, acc_dt))
        r = lax.div(lax.reduce_sum(sq, axes), denom)
    return _finish(_cast(r, aval, out_dt, dtype), aval.shape, axes, keepdims)


def std(
    a,
    axis=None,
    dtype=None,
    out=None,
    ddof: int = 0,
    keepdims: bool = False,
    *,
    where=None,
    correction=None,
):
    """Standard deviation over `axis`: sqrt(var(...)); ddof=0 is the population statistic."""
    _no_out("std", out)
    return lax.sqrt(var(a, axis, dtype, None, ddof, keepdims, where=where, correction=correction))


def _arg_extremum(name: str, lax_fn, a, axis, out, keepdims):
    _no_out(name, out)
    a = to_array(a, name)
    aval = a.aval
    ax = None if axis is None or not aval.ndim else canonicalize_axis(name, axis, aval.ndim)
    if (math.prod(aval.shape) if ax is None else aval.shape[ax]) == 0:
        raise ValueError(f"{name}: attempt to get {name} of an empty sequence (shape {aval.shape})")
    if axis is None:
        flat = lax.reshape(a, (math.prod(aval.shape),))
        r = lax_fn(flat, 0, default_int())
        if keepdims:
            r = lax.reshape(r, (1,) * aval.ndim)
        return r
    if not aval.ndim:
        ax = canonicalize_axis(name, axis, aval.ndim)
        a = lax.reshape(a, (1,))
    r = lax_fn(a, ax, default_int())
    return _finish(r, aval.shape, (ax,), keepdims) if aval.ndim else r


def argmax(a, axis=None, out=None, keepdims: bool = False):
    """Index of the maximum along `axis` (of the flattened array if None); ties go to the
    first occurrence.

    Example:
        >>> jnp.argmax(jnp.array([1, 3, 3]))
        Array(1, dtype=int32)
    """
    return _arg_extremum("argmax", lax.argmax, a, axis, out, keepdims)


def argmin(a, axis=None, out=None, keepdims: bool = False):
    """Index of the minimum along `axis` (of the flattened array if None); ties go first."""
    return _arg_extremum("argmin", lax.argmin, a, axis, out, keepdims)


def count_nonzero(a, axis=None, keepdims: bool = False):
    """Number of nonzero elements over `axis` (default int)."""
    return sum(_as_bool("count_nonzero", a), axis, keepdims=keepdims)


def ptp(a, axis=None, out=None, keepdims: bool = False):
    """Peak to peak: max - min over `axis`."""
    return lax.sub(max(a, axis, out, keepdims), min(a, axis, None, keepdims))


# --------------------------------------------------------------------------------------------
# Cumulative reductions: an associative scan of log2(n) shifted combines (Hillis-Steele), so
# they need no primitive of their own and differentiate through pad/slice/add.
# --------------------------------------------------------------------------------------------


def _cumulative(name: str, combine, identity, a, axis, dtype, promote_ints: bool):
    a = _strong(to_array(a, name))
    if axis is None:
        a = lax.reshape(a, (math.prod(a.shape),))
        axis = 0
    aval = a.aval
    ax = canonicalize_axis(name, axis, aval.ndim)
    dt = _accumulation_dtype(aval, dtype, promote_ints)
    if dt != aval.dtype:
        a = _cast(a, aval, dt, dtype)
    n = aval.shape[ax]
    pad_value = scalar_const(identity, dt)
    shift = 1
    while shift < n:
        config = [(0, 0, 0)] * aval.ndim
        config[ax] = (shift, -shift, 0)
        a = combine(a, lax.pad(a, pad_value, config))
        shift *= 2
    return a


def cumsum(a, axis=None, dtype=None, out=None):
    """Cumulative sum along `axis` (of the flattened array if None).

    Example:
        >>> jnp.cumsum(jnp.array([1, 2, 3]))
        Array([1, 3, 6], dtype=int32)
    """
    _no_out("cumsum", out)
    if _is_bool_array(a) and dtype is None:
        dtype = default_int()
    return _cumulative("cumsum", lax.add, 0, a, axis, dtype, False)  # JAX keeps int8/uint8


def cumprod(a, axis=None, dtype=None, out=None):
    """Cumulative product along `axis` (of the flattened array if None)."""
    _no_out("cumprod", out)
    if _is_bool_array(a) and dtype is None:
        dtype = default_int()
    return _cumulative("cumprod", lax.mul, 1, a, axis, dtype, False)  # JAX keeps int8/uint8


def cummax(a, axis=None):
    """Cumulative maximum along `axis`."""
    a = to_array(a, "cummax")
    dt = a.aval.dtype
    lowest = False if dt == BOOL else (-np.inf if dt.kind == "f" else np.iinfo(dt).min)
    return _cumulative("cummax", lax.max, lowest, a, axis, None, False)


def cummin(a, axis=None):
    """Cumulative minimum along `axis`."""
    a = to_array(a, "cummin")
    dt = a.aval.dtype
    highest = True if dt == BOOL else (np.inf if dt.kind == "f" else np.iinfo(dt).max)
    return _cumulative("cummin", lax.min, highest, a, axis, None, False)


def _is_bool_array(a) -> bool:
    return getattr(a, "dtype", None) == BOOL


cumulative_sum = cumsum
cumulative_prod = cumprod
