"""Array creation: array/asarray, zeros/ones/full(_like), arange, linspace, eye, identity.

Constant arrays are built with `lax.full`, `lax.iota` and `lax.broadcasted_iota`, so inside
`jit` they are staged into the program rather than computed eagerly.
"""

from __future__ import annotations

import builtins
import math
import operator

import numpy as np

from fnbrrr import lax
from fnbrrr.numpy._promotion import (
    BOOL,
    ArrayImpl,
    Tracer,
    asarray_with_dtype,
    canonical_dtype,
    default_float,
    default_int,
    promote,
    scalar_const,
    to_array,
    typeinfo,
)
from fnbrrr.numpy._shape import _as_shape, _check_nonnegative, broadcast_to


class ZeroStepError(ValueError, ZeroDivisionError):
    """arange with step 0: NumPy and JAX raise ZeroDivisionError; it is a ValueError too."""


def asarray(a, dtype=None, order=None, *, copy=None):
    """`a` as an fnbrrr array: Arrays and tracers pass through; NumPy arrays are copied and
    converted to their canonical dtype (float64 -> float32 unless x64); Python scalars become
    weakly typed 0-d arrays; nested lists become arrays.

    Example:
        >>> jnp.asarray([1.0, 2.0])
        Array([1., 2.], dtype=float32)
    """
    if dtype is None and type(a) is ArrayImpl:
        return a
    return asarray_with_dtype(a, dtype, "asarray")


def array(object, dtype=None, copy: bool = True, order="K", ndmin: int = 0):  # noqa: A002
    """A new fnbrrr array from `object` (like asarray, but an Array argument is copied).

    Example:
        >>> jnp.array([[1, 2], [3, 4]]).shape
        (2, 2)
    """
    if type(object) is ArrayImpl and dtype is None:
        out = ArrayImpl(object._value, object._weak)
    else:
        out = asarray_with_dtype(object, dtype, "array")
    if ndmin and out.ndim < ndmin:
        out = lax.reshape(out, (1,) * (ndmin - out.ndim) + out.shape)
    return out


def _shape_arg(name: str, shape) -> tuple[int, ...]:
    return _check_nonnegative(name, _as_shape(name, shape))


def _dtype_or(dtype, default) -> np.dtype:
    return default if dtype is None else canonical_dtype(dtype)


def zeros(shape, dtype=None):
    """An array of zeros (float32 by default).

    Example:
        >>> jnp.zeros((2,), jnp.int32)
        Array([0, 0], dtype=int32)
    """
    return lax.full(_shape_arg("zeros", shape), 0, _dtype_or(dtype, default_float()))


def ones(shape, dtype=None):
    """An array of ones (float32 by default)."""
    return lax.full(_shape_arg("ones", shape), 1, _dtype_or(dtype, default_float()))


def empty(shape, dtype=None):
    """Same as zeros (fnbrrr arrays are always initialised)."""
    return zeros(shape, dtype)


def full(shape, fill_value, dtype=None):
    """An array of `shape` filled with `fill_value`; the dtype comes from the fill value
    (a Python scalar gives a weakly typed default-dtype array) unless `dtype` is given.

    Example:
        >>> jnp.full((2,), 7)
        Array([7, 7], dtype=int32, weak_type=True)
    """
    shape = _shape_arg("full", shape)
    if dtype is not None:
        dt = canonical_dtype(dtype)
        value = asarray_with_dtype(fill_value, dt, "full")
    else:
        value = to_array(fill_value, "full")
    return _materialized(broadcast_to(value, shape))


def _materialized(x):
    """An eager result as a real C-contiguous array, not NumPy's zero-stride broadcast view:
    such a view would be copied by every jitted call that receives it."""
    if type(x) is ArrayImpl and not x._value.flags.c_contiguous:
        return ArrayImpl(np.ascontiguousarray(x._value), x._weak, x._aval)
    return x


def _like_shape(name: str, a, shape):
    if shape is not None:
        return _shape_arg(name, shape)
    return tuple(a.shape)


def _like(name: str, a, fill, dtype, shape):
    a = to_array(a, name)
    dt, weak, _ = typeinfo(a, name)
    out_shape = _like_shape(name, a, shape)
    if dtype is not None:
        return lax.full(out_shape, fill, canonical_dtype(dtype))
    value = scalar_const(fill, dt) if weak else ArrayImpl(np.array(fill, dt), False)
    return _materialized(broadcast_to(value, out_shape))


def zeros_like(a, dtype=None, shape=None):
    """Zeros with the shape and dtype of `a` (weak type preserved)."""
    return _like("zeros_like", a, 0, dtype, shape)


def ones_like(a, dtype=None, shape=None):
    """Ones with the shape and dtype of `a` (weak type preserved)."""
    return _like("ones_like", a, 1, dtype, shape)


def empty_like(prototype, dtype=None, shape=None):
    """Same as zeros_like."""
    return _like("empty_like", prototype, 0, dtype, shape)


def full_like(a, fill_value, dtype=None, shape=None):
    """An array with the shape (and dtype, unless given) of `a`, filled with `fill_value`."""
    a = to_array(a, "full_like")
    dt, weak, _ = typeinfo(a, "full_like")
    out_shape = _like_shape("full_like", a, shape)
    if dtype is not None:
        dt, weak = canonical_dtype(dtype), False
    value = to_array(fill_value, "full_like")
    if value.aval.dtype != dt or value.aval.weak_type != weak:
        value = lax.convert_element_type(value, dt, weak)
    return _materialized(broadcast_to(value, out_shape))


def _static_scalar(name: str, x, what: str):
    if isinstance(x, Tracer):
        try:
            return x.concrete_value().item()
        except Exception:
            raise TypeError(
                f"{name}: `{what}` must be a concrete Python number (the output shape depends on "
                "it), not a traced value; under jit make it a static argument"
            ) from None
    if type(x) is ArrayImpl or isinstance(x, (np.ndarray, np.generic)):
        v = np.asarray(x)
        if v.ndim:
            raise TypeError(f"{name}: `{what}` must be a scalar, got an array of shape {v.shape}")
        return v.item()
    if isinstance(x, (bool, int, float)):
        return x
    raise TypeError(f"{name}: `{what}` must be a number, got {type(x).__name__}")


def arange(start, stop=None, step=None, dtype=None):
    """Evenly spaced values in [start, stop) with `step` (negative steps allowed); ints give
    int32, any float gives float32.

    Example:
        >>> jnp.arange(5, 0, -2)
        Array([5, 3, 1], dtype=int32)
    """
    start = _static_scalar("arange", start, "start")
    if stop is not None:
        stop = _static_scalar("arange", stop, "stop")
    if step is not None:
        step = _static_scalar("arange", step, "step")
    if stop is None:
        start, stop = 0, start
    if step is None:
        step = 1
    if step == 0:
        raise ZeroStepError("arange: step must not be zero")
    values = (start, stop, step)
    if dtype is not None:
        dt = canonical_dtype(dtype)
    elif builtins.any(isinstance(v, float) for v in values):
        dt = default_float()
    else:
        dt = default_int()
    n = builtins.max(0, math.ceil((stop - start) / step))
    if dt.kind == "b":
        raise TypeError("arange: dtype bool is not supported")
    if dt.kind in "iu" and builtins.all(isinstance(v, int) for v in values):
        ramp = lax.iota(dt, n)
        if step != 1:
            ramp = lax.mul(ramp, scalar_const(step, dt))
        if start != 0:
            ramp = lax.add(ramp, scalar_const(start, dt))
        return ramp
    # Floating point: start + i * step, computed in the result dtype (float32 by default).
    acc = dt if dt.kind == "f" else default_float()
    ramp = lax.iota(acc, n)
    ramp = lax.add(lax.mul(ramp, scalar_const(step, acc)), scalar_const(start, acc))
    return lax.convert_element_type(ramp, dt) if acc != dt else ramp


def linspace(
    start,
    stop,
    num: int = 50,
    endpoint: bool = True,
    retstep: bool = False,
    dtype=None,
    axis: int = 0,
):
    """`num` evenly spaced values from start to stop (inclusive when `endpoint`); start and
    stop may be arrays (the new axis is `axis`).

    Example:
        >>> jnp.linspace(0, 1, 5)
        Array([0.  , 0.25, 0.5 , 0.75, 1.  ], dtype=float32)
    """
    num = operator.index(num)
    if num < 0:
        raise ValueError(f"linspace: number of samples, {num}, must be non-negative")
    (lo, hi), dt = promote("linspace", start, stop)
    out_dt = canonical_dtype(dtype) if dtype is not None else None
    acc = dt if dt.kind == "f" else default_float()
    if out_dt is not None and out_dt.kind == "f":
        acc = out_dt
    lo = lax.convert_element_type(lo, acc)
    hi = lax.convert_element_type(hi, acc)
    bshape = lo.shape if lo.shape else hi.shape
    lo = _bcast(lo, bshape)
    hi = _bcast(hi, bshape)
    div = (num - 1) if endpoint else num
    out_shape = (num,) + bshape
    dims = tuple(range(1, len(out_shape)))
    delta = lax.sub(hi, lo)
    lo_b = lax.broadcast_in_dim(lo, out_shape, dims)
    ramp = lax.broadcasted_iota(acc, out_shape, 0)
    if div > 0:
        step = lax.div(delta, scalar_const(div, acc))
        # lo + i * step, NumPy's order of operations.
        out = lax.add(lax.mul(ramp, lax.broadcast_in_dim(step, out_shape, dims)), lo_b)
        if endpoint and num > 1:
            last = lax.reshape(hi, (1,) + bshape)
            start_idx = [0] * len(out_shape)
            out = lax.dynamic_update_slice(out, last, [num - 1] + start_idx[1:])
    else:
        step = lax.full(bshape, np.nan, acc)
        out = lax.mul(lo_b, scalar_const(1, acc)) if num else lax.full(out_shape, 0, acc)
    if axis != 0 and bshape:
        from fnbrrr.numpy._shape import moveaxis

        out = moveaxis(out, 0, axis)
    if out_dt is not None and out_dt != acc:
        if out_dt.kind in "iu":
            out = lax.floor(out)
        out = lax.convert_element_type(out, out_dt)
    if retstep:
        return out, step
    return out


def _bcast(x, shape):
    return (
        x
        if x.shape == shape
        else lax.broadcast_in_dim(x, shape, tuple(range(len(shape) - x.ndim, len(shape))))
    )


def logspace(
    start, stop, num: int = 50, endpoint: bool = True, base: float = 10.0, dtype=None, axis: int = 0
):
    """`base ** linspace(start, stop, num)`."""
    from fnbrrr.numpy._elementwise import power

    out = power(base, linspace(start, stop, num, endpoint, axis=axis))
    return out if dtype is None else lax.convert_element_type(out, canonical_dtype(dtype))


def eye(N: int, M: int | None = None, k: int = 0, dtype=None):
    """A 2-D array with ones on the k-th diagonal and zeros elsewhere (float32 by default).

    Example:
        >>> jnp.eye(2)
        Array([[1., 0.],
               [0., 1.]], dtype=float32)
    """
    N = operator.index(N)
    M = N if M is None else operator.index(M)
    _check_nonnegative("eye", (N, M))
    dt = _dtype_or(dtype, default_float())
    idx = default_int()
    rows = lax.broadcasted_iota(idx, (N, M), 0)
    cols = lax.broadcasted_iota(idx, (N, M), 1)
    on = lax.eq(lax.add(rows, scalar_const(operator.index(k), idx)), cols)
    return on if dt == BOOL else lax.convert_element_type(on, dt)


def identity(n: int, dtype=None):
    """The n x n identity matrix."""
    return eye(n, dtype=dtype)


def copy(a, order=None):
    """A copy of `a` (arrays are immutable, so this is a new handle on the same values)."""
    return array(a, copy=True)
