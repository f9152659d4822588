"""take, take_along_axis, nonzero, flatnonzero, argwhere, extract: indexing by functions.

`take` and `take_along_axis` build an index and go through `x[idx]` (`_indexing.getitem`) or,
for `mode="fill"`, `x.at[idx].get`; `nonzero` and friends need concrete inputs (their output
shape depends on the values) unless `size=` is given.
"""

from __future__ import annotations

import builtins

import numpy as np

from fnbrrr import core, lax
from fnbrrr.numpy._indexing import const_indices, getitem, normalize_traced
from fnbrrr.numpy._promotion import (
    default_int,
    scalar_const,
    to_array,
)

# --------------------------------------------------------------------------------------------
# take, take_along_axis, nonzero
# --------------------------------------------------------------------------------------------


def fill_value_for(dt: np.dtype, fill_value):
    if fill_value is not None:
        return fill_value
    if dt.kind == "f":
        return np.nan
    if dt.kind == "i":
        return np.iinfo(dt).min
    if dt.kind == "u":
        return np.iinfo(dt).max
    return True


def take(
    a,
    indices,
    axis: int | None = None,
    out=None,
    mode=None,
    unique_indices=False,
    indices_are_sorted=False,
    fill_value=None,
):
    """Elements of `a` at `indices` along `axis` (of the flattened array if None).

    `mode`: None or 'fill' (out-of-range indices give `fill_value`, NaN for floats, as in
    JAX), 'clip' (clamp) or 'wrap' (modulo). Negative indices count from the end.

    Example:
        >>> jnp.take(jnp.array([10, 20, 30]), jnp.array([2, 0]))
        Array([30, 10], dtype=int32)
    """
    from fnbrrr.numpy._reductions import canonicalize_axis
    from fnbrrr.numpy._shape import ravel

    if out is not None:
        raise NotImplementedError("take: the `out` argument is not supported")
    a = to_array(a, "take")
    if axis is None:
        a = ravel(a)
        axis = 0
    ax = canonicalize_axis("take", axis, a.ndim)
    n = a.shape[ax]
    idx = to_array(indices, "take")
    if idx.aval.dtype.kind not in "iu":
        raise TypeError(f"take: indices must be integers, got {idx.aval.dtype}")
    idx_dt = default_int()
    if idx.aval.dtype != idx_dt:
        idx = lax.convert_element_type(idx, idx_dt)
    if mode not in (None, "fill", "clip", "wrap"):
        error = NotImplementedError if mode == "raise" else ValueError
        raise error(f"take: mode {mode!r} is not supported; use 'fill', 'clip' or 'wrap'")
    if n == 0:
        raise IndexError(f"take: cannot take from an empty axis {ax} (shape {a.shape})")
    if mode == "wrap":
        nn = scalar_const(n, idx_dt)
        idx = lax.rem(lax.add(lax.rem(idx, nn), nn), nn)
    else:
        idx = normalize_traced(idx, n)
    gather_mode = "clip" if mode == "clip" else "promise_in_bounds"
    g = lax.gather(a, lax.reshape(idx, idx.shape + (1,)), (ax,), gather_mode)
    r = idx.ndim
    if ax:
        perm = tuple(range(r, r + ax)) + tuple(range(r)) + tuple(range(r + ax, g.ndim))
        g = lax.transpose(g, perm)
    if mode in (None, "fill"):
        zero, nn = scalar_const(0, idx_dt), scalar_const(n, idx_dt)
        valid = lax.and_(lax.ge(idx, zero), lax.lt(idx, nn))
        dims = tuple(range(ax, ax + r))
        valid = lax.broadcast_in_dim(valid, g.shape, dims)
        fill = lax.full(g.shape, fill_value_for(g.aval.dtype, fill_value), g.aval.dtype)
        g = lax.select_n(valid, fill, g)
    return g


def take_along_axis(arr, indices, axis: int | None, mode=None, fill_value=None):
    """Pick `arr` values along `axis` at `indices` (same rank as `arr`, broadcasting the
    other axes), as used with argsort/argmax results.

    `mode`: None or "fill" (out-of-range indices give `fill_value`, NaN for floats, as in
    JAX), "clip" or "promise_in_bounds" (clamped). Negative indices count from the end.

    Example:
        >>> jnp.take_along_axis(jnp.array([[10, 20, 30]]), jnp.array([[2, 0]]), axis=1)
        Array([[30, 10]], dtype=int32)
    """
    from fnbrrr.numpy._reductions import canonicalize_axis
    from fnbrrr.numpy._shape import ravel

    a = to_array(arr, "take_along_axis")
    idx = to_array(indices, "take_along_axis")
    if axis is None:
        a, idx, axis = ravel(a), ravel(idx), 0
    if idx.ndim != a.ndim:
        raise ValueError(
            f"take_along_axis: indices (shape {idx.shape}) must have the same number of "
            f"dimensions as arr (shape {a.shape})"
        )
    ax = canonicalize_axis("take_along_axis", axis, a.ndim)
    index = []
    for d in range(a.ndim):
        if d == ax:
            index.append(idx)
        else:
            view = [1] * a.ndim
            view[d] = a.shape[d]
            index.append(np.arange(a.shape[d]).reshape(view))
    if mode in ("clip", "promise_in_bounds"):
        return getitem(a, tuple(index), clamp=mode == "clip")
    if mode not in (None, "fill"):
        raise NotImplementedError(f"take_along_axis: mode {mode!r} is not supported")
    from fnbrrr.numpy._index_update import _IndexUpdateRef  # it imports this module

    return _IndexUpdateRef(a, tuple(index)).get(mode="fill", fill_value=fill_value)


def _concrete(name: str, a) -> np.ndarray:
    try:
        return np.asarray(core.concrete_or_error(a, name))
    except core.ConcretizationTypeError as e:
        raise core.ConcretizationTypeError(
            f"{name}: the output shape depends on the values, so the input must be concrete "
            f"(not traced under jit/vmap); pass `size=` where supported. ({e})"
        ) from None


def nonzero(a, *, size=None, fill_value=None) -> tuple:
    """Indices of the nonzero elements, one integer array per axis (concrete input only,
    unless `size` fixes the output length).

    Example:
        >>> jnp.nonzero(jnp.array([0, 3, 0, 4]))
        (Array([1, 3], dtype=int32),)
    """
    value = _concrete("nonzero", a)
    coords = np.nonzero(np.atleast_1d(value))
    if size is not None:
        fill = 0 if fill_value is None else fill_value
        fills = fill if isinstance(fill, (tuple, list)) else (fill,) * len(coords)
        coords = tuple(
            np.concatenate([c[:size], np.full(builtins.max(0, size - c.size), f)])
            for c, f in zip(coords, fills)
        )
    return tuple(const_indices(c) for c in coords)


def flatnonzero(a, *, size=None, fill_value=None):
    """Indices of the nonzero elements of the flattened array (concrete input only)."""
    value = _concrete("flatnonzero", a)
    return nonzero(np.ravel(value), size=size, fill_value=fill_value)[0]


def argwhere(a, *, size=None, fill_value=None):
    """(N, ndim) indices of the nonzero elements (concrete input only)."""
    value = _concrete("argwhere", a)
    coords = nonzero(value, size=size, fill_value=fill_value)
    if not coords:
        return const_indices(np.zeros((0, 0)))
    return const_indices(np.stack([np.asarray(c) for c in coords], axis=-1))


def extract(condition, arr):
    """The elements of `arr` where `condition` is true, flattened (concrete condition)."""
    from fnbrrr.numpy._shape import ravel

    cond = _concrete("extract", condition)
    return getitem(ravel(arr), np.ravel(cond).astype(bool))
