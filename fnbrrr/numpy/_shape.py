"""Shape manipulation: reshape, transpose, concatenate/stack/split, broadcast, tile/repeat, flips,
rolls, padding and the diagonal family, each a few `lax` shape primitives.

Shapes are static (Python ints) under every transformation, so all shape checks here happen
eagerly and under `jit` alike, with NumPy's error types (ValueError / AxisError) and messages
that name the function and the shapes.
"""

from __future__ import annotations

import builtins
import math
import operator

import numpy as np

from fnbrrr import lax
from fnbrrr.numpy._promotion import (
    Tracer,
    broadcast_shapes,
    broadcast_to_shape,
    canonical_dtype,
    default_float,
    default_int,
    promote,
    scalar_const,
    to_array,
)
from fnbrrr.numpy._reductions import canonicalize_axis, reduction_axes


class ReshapeError(TypeError, ValueError):
    """A reshape to a different total size: a TypeError as in JAX, a ValueError as in NumPy."""


def _as_shape(name: str, shape) -> tuple[int, ...]:
    """An int, a sequence of ints or a 1-d integer array (concrete) as a tuple of Python ints."""
    if isinstance(shape, (list, tuple)):
        items = shape
    elif np.ndim(shape) == 1:  # a NumPy array of ints, as JAX accepts
        items = list(shape)
    else:
        items = (shape,)
    try:
        return tuple(operator.index(d) for d in items)
    except TypeError:
        raise TypeError(
            f"{name}: shape must be an int or a sequence of ints, got {shape!r}; shapes are "
            "static in fnbrrr (use x.shape, not a traced value)"
        ) from None


def _check_nonnegative(name: str, shape: tuple) -> tuple:
    if builtins.any(d < 0 for d in shape):
        raise ValueError(f"{name}: negative dimensions are not allowed, got shape {shape}")
    return shape


def shape(a) -> tuple[int, ...]:
    """The shape of an array-like, as a tuple of Python ints."""
    s = getattr(a, "shape", None)
    return tuple(s) if s is not None else np.shape(a)


def ndim(a) -> int:
    """The number of dimensions of an array-like."""
    return len(shape(a))


def size(a, axis=None) -> int:
    """The number of elements of an array-like (along `axis` when given)."""
    s = shape(a)
    if axis is not None:
        return s[canonicalize_axis("size", axis, len(s))]
    n = 1
    for d in s:
        n *= d
    return n


def _resolve_shape(name: str, old: tuple, new) -> tuple[int, ...]:
    new = _as_shape(name, new)
    total = 1
    for d in old:
        total *= d
    unknown = [i for i, d in enumerate(new) if d == -1]
    if builtins.any(d < -1 for d in new):
        raise ValueError(f"{name}: invalid dimension in new shape {new} (only -1 may be negative)")
    if len(unknown) > 1:
        raise ValueError(f"{name}: can only specify one unknown dimension (-1), got {new}")
    known = 1
    for d in new:
        if d != -1:
            known *= d
    if unknown:
        if known == 0 or total % known:
            raise ReshapeError(
                f"{name}: cannot reshape array of shape {old} (size {total}) into shape {new}: "
                "the -1 dimension cannot be inferred"
            )
        new = new[: unknown[0]] + (total // known,) + new[unknown[0] + 1 :]
    elif known != total:
        raise ReshapeError(
            f"{name}: cannot reshape array of shape {old} (size {total}) into shape {new} "
            f"(size {known}); the total size must stay the same"
        )
    return new


def reshape(a, shape=None, order: str = "C", *, newshape=None, copy=None):
    """`a` with a new shape of the same size; one dimension may be -1 (inferred).

    Example:
        >>> jnp.reshape(jnp.arange(6), (2, -1))
        Array([[0, 1, 2],
               [3, 4, 5]], dtype=int32)
    """
    if shape is None:
        shape = newshape
    if shape is None:
        raise TypeError("reshape: missing the `shape` argument")
    if order != "C":
        raise NotImplementedError(f"reshape: only order='C' is supported, got {order!r}")
    a = to_array(a, "reshape")
    old = a.shape
    return lax.reshape(a, _resolve_shape("reshape", old, shape))


def ravel(a, order: str = "C"):
    """`a` flattened to one dimension (row-major)."""
    if order != "C":
        raise NotImplementedError(f"ravel: only order='C' is supported, got {order!r}")
    a = to_array(a, "ravel")
    return lax.reshape(a, (math.prod(a.shape),))


def transpose(a, axes=None):
    """Permute the axes of `a` (reverse them when `axes` is None).

    Example:
        >>> jnp.transpose(jnp.zeros((2, 3, 4)), (1, 0, 2)).shape
        (3, 2, 4)
    """
    a = to_array(a, "transpose")
    n = a.ndim
    if axes is None:
        perm = tuple(range(n - 1, -1, -1))
    else:
        axes = _as_shape("transpose", axes)
        if len(axes) != n:
            raise ValueError(
                f"transpose: axes {axes} don't match an array of shape {a.shape} (need {n} axes)"
            )
        perm = tuple(canonicalize_axis("transpose", ax, n) for ax in axes)
        if len(set(perm)) != n:
            raise ValueError(f"transpose: repeated axis in axes {axes}")
    if perm == tuple(range(n)):
        return a
    return lax.transpose(a, perm)


def permute_dims(a, axes=None):
    """Array-API name of transpose."""
    return transpose(a, axes)


def matrix_transpose(x):
    """Swap the last two axes."""
    x = to_array(x, "matrix_transpose")
    if x.ndim < 2:
        raise ValueError(f"matrix_transpose: needs at least 2 dimensions, got shape {x.shape}")
    return swapaxes(x, -1, -2)


def swapaxes(a, axis1: int, axis2: int):
    """Interchange two axes of `a`."""
    a = to_array(a, "swapaxes")
    n = a.ndim
    i, j = canonicalize_axis("swapaxes", axis1, n), canonicalize_axis("swapaxes", axis2, n)
    perm = list(range(n))
    perm[i], perm[j] = perm[j], perm[i]
    return transpose(a, perm)


def moveaxis(a, source, destination):
    """Move axes `source` to positions `destination` (ints or sequences of ints)."""
    a = to_array(a, "moveaxis")
    n = a.ndim
    src = _as_shape("moveaxis", source)
    dst = _as_shape("moveaxis", destination)
    if len(src) != len(dst):
        raise ValueError(
            f"moveaxis: source {src} and destination {dst} must have the same number of entries"
        )
    src = [canonicalize_axis("moveaxis", s, n) for s in src]
    dst = [canonicalize_axis("moveaxis", d, n) for d in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError(f"moveaxis: repeated axis in source {src} or destination {dst}")
    order = [i for i in range(n) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(a, order)


def expand_dims(a, axis):
    """Insert size-1 axes at the positions `axis` (int or tuple) of the result.

    Example:
        >>> jnp.expand_dims(jnp.zeros(3), (0, -1)).shape
        (1, 3, 1)
    """
    a = to_array(a, "expand_dims")
    axes = _as_shape("expand_dims", axis)
    out_ndim = a.ndim + len(axes)
    axes = [canonicalize_axis("expand_dims", ax, out_ndim) for ax in axes]
    if len(set(axes)) != len(axes):
        raise ValueError(f"expand_dims: repeated axis in {axis}")
    shape = list(a.shape)
    for ax in sorted(axes):
        shape.insert(ax, 1)
    return lax.reshape(a, tuple(shape))


def squeeze(a, axis=None):
    """Remove size-1 axes (all of them, or those in `axis`, which must have size 1).

    Example:
        >>> jnp.squeeze(jnp.zeros((1, 3, 1))).shape
        (3,)
    """
    a = to_array(a, "squeeze")
    s = a.shape
    if axis is None:
        axes = tuple(i for i, d in enumerate(s) if d == 1)
    else:
        axes = reduction_axes("squeeze", axis, len(s))
        bad = [i for i in axes if s[i] != 1]
        if bad:
            raise ValueError(
                f"squeeze: cannot squeeze axis {bad[0]} of an array of shape {s}: it has size "
                f"{s[bad[0]]}, not 1"
            )
    if not axes:
        return a
    return lax.reshape(a, tuple(d for i, d in enumerate(s) if i not in axes))


def _array_list(name: str, arrays) -> list:
    if isinstance(arrays, (list, tuple)):
        return [to_array(x, name) for x in arrays]
    arrays = to_array(arrays, name)
    if not arrays.ndim:
        raise ValueError(f"{name}: needs a sequence of arrays, got a 0-d array")
    return [arrays[i] for i in range(arrays.shape[0])]


def concatenate(arrays, axis: int | None = 0, dtype=None):
    """Join a sequence of arrays along an existing axis (flattened first if axis is None).

    Example:
        >>> jnp.concatenate([jnp.zeros(2), jnp.ones(1)])
        Array([0., 0., 1.], dtype=float32)
    """
    xs = _array_list("concatenate", arrays)
    if not xs:
        raise ValueError("concatenate: need at least one array to concatenate")
    if axis is None:
        xs = [ravel(x) for x in xs]
        axis = 0
    xs, dt = promote("concatenate", *xs, broadcast=False)
    if dtype is not None:
        dt = canonical_dtype(dtype)
        xs = [lax.convert_element_type(x, dt) for x in xs]
    ref = xs[0].shape
    if not ref:
        raise ValueError("concatenate: zero-dimensional arrays cannot be concatenated")
    ax = canonicalize_axis("concatenate", axis, len(ref))
    for x in xs[1:]:
        s = x.shape
        if len(s) != len(ref) or builtins.any(
            d != r for i, (d, r) in enumerate(zip(s, ref)) if i != ax
        ):
            shapes = ", ".join(str(tuple(x.shape)) for x in xs)
            raise ValueError(
                f"concatenate: all input arrays must have the same shape except along axis {ax}; "
                f"got shapes {shapes}"
            )
    if len(xs) == 1:
        return xs[0]
    return lax.concatenate(xs, ax)


def concat(arrays, /, *, axis: int | None = 0):
    """Array-API name of concatenate."""
    return concatenate(arrays, axis)


def stack(arrays, axis: int = 0, out=None, dtype=None):
    """Join arrays of one shape along a new axis.

    Example:
        >>> jnp.stack([jnp.zeros(2), jnp.ones(2)], axis=1).shape
        (2, 2)
    """
    xs = _array_list("stack", arrays)
    if not xs:
        raise ValueError("stack: need at least one array to stack")
    ref = xs[0].shape
    for x in xs[1:]:
        if x.shape != ref:
            shapes = ", ".join(str(tuple(x.shape)) for x in xs)
            raise ValueError(f"stack: all input arrays must have the same shape, got {shapes}")
    ax = canonicalize_axis("stack", axis, len(ref) + 1)
    new_shape = ref[:ax] + (1,) + ref[ax:]
    return concatenate([lax.reshape(x, new_shape) for x in xs], ax, dtype)


def atleast_1d(*arys):
    """Arrays with at least one dimension (0-d become shape (1,))."""
    out = [to_array(a, "atleast_1d") for a in arys]
    out = [lax.reshape(a, (1,)) if a.ndim == 0 else a for a in out]
    return out[0] if len(out) == 1 else out


def atleast_2d(*arys):
    """Arrays with at least two dimensions (leading size-1 axes added)."""
    out = []
    for a in arys:
        a = to_array(a, "atleast_2d")
        out.append(lax.reshape(a, (1,) * (2 - a.ndim) + a.shape) if a.ndim < 2 else a)
    return out[0] if len(out) == 1 else out


def atleast_3d(*arys):
    """Arrays with at least three dimensions, as NumPy places the new axes."""
    out = []
    for a in arys:
        a = to_array(a, "atleast_3d")
        if a.ndim == 0:
            a = lax.reshape(a, (1, 1, 1))
        elif a.ndim == 1:
            a = lax.reshape(a, (1, a.shape[0], 1))
        elif a.ndim == 2:
            a = lax.reshape(a, a.shape + (1,))
        out.append(a)
    return out[0] if len(out) == 1 else out


def hstack(tup, dtype=None):
    """Stack horizontally: along axis 1 (axis 0 for 1-D arrays)."""
    xs = atleast_1d(*_array_list("hstack", tup))
    xs = xs if isinstance(xs, list) else [xs]
    return concatenate(xs, 0 if xs[0].ndim == 1 else 1, dtype)


def vstack(tup, dtype=None):
    """Stack vertically: along axis 0, 1-D arrays becoming rows."""
    xs = atleast_2d(*_array_list("vstack", tup))
    xs = xs if isinstance(xs, list) else [xs]
    return concatenate(xs, 0, dtype)


row_stack = vstack


def dstack(tup, dtype=None):
    """Stack along the third axis."""
    xs = atleast_3d(*_array_list("dstack", tup))
    xs = xs if isinstance(xs, list) else [xs]
    return concatenate(xs, 2, dtype)


def column_stack(tup):
    """Stack 1-D arrays as columns of a 2-D array (2-D arrays are stacked as they are)."""
    xs = []
    for a in _array_list("column_stack", tup):
        xs.append(lax.reshape(a, (a.shape[0] if a.ndim else 1, 1)) if a.ndim < 2 else a)
    return concatenate(xs, 1)


def _split(name: str, ary, indices_or_sections, axis: int, equal: bool) -> list:
    a = to_array(ary, name)
    ax = canonicalize_axis(name, axis, a.ndim)
    n = a.shape[ax]
    if isinstance(indices_or_sections, (list, tuple, np.ndarray)) or (
        hasattr(indices_or_sections, "ndim") and indices_or_sections.ndim == 1
    ):
        cuts = [operator.index(i) for i in np.asarray(indices_or_sections).tolist()]
        cuts = [builtins.min(builtins.max(c + n if c < 0 else c, 0), n) for c in cuts]
        bounds = [0, *cuts, n]
    else:
        sections = operator.index(indices_or_sections)
        if sections <= 0:
            raise ValueError(f"{name}: number of sections must be larger than 0, got {sections}")
        if equal and n % sections:
            raise ValueError(
                f"{name}: array split does not result in an equal division: axis {ax} has size "
                f"{n}, not divisible into {sections} sections (use array_split for unequal parts)"
            )
        base, extra = divmod(n, sections)
        sizes = [base + 1] * extra + [base] * (sections - extra)
        bounds = [0]
        for s in sizes:
            bounds.append(bounds[-1] + s)
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        hi = builtins.max(lo, hi)
        start = [0] * a.ndim
        limit = list(a.shape)
        start[ax], limit[ax] = lo, hi
        out.append(lax.slice(a, start, limit))
    return out


def split(ary, indices_or_sections, axis: int = 0) -> list:
    """Split into equal sections (an int) or at the given indices, returning a list.

    Example:
        >>> [p.shape for p in jnp.split(jnp.arange(6), 3)]
        [(2,), (2,), (2,)]
    """
    return _split("split", ary, indices_or_sections, axis, True)


def array_split(ary, indices_or_sections, axis: int = 0) -> list:
    """Like split, but an int number of sections need not divide the axis."""
    return _split("array_split", ary, indices_or_sections, axis, False)


def hsplit(ary, indices_or_sections) -> list:
    """Split along axis 1 (axis 0 for 1-D arrays)."""
    a = to_array(ary, "hsplit")
    return _split("hsplit", a, indices_or_sections, 1 if a.ndim > 1 else 0, True)


def vsplit(ary, indices_or_sections) -> list:
    """Split along axis 0."""
    return _split("vsplit", ary, indices_or_sections, 0, True)


def broadcast_to(array, shape):
    """Broadcast `array` to `shape` with NumPy's rules.

    Example:
        >>> jnp.broadcast_to(jnp.arange(3), (2, 3)).shape
        (2, 3)
    """
    a = to_array(array, "broadcast_to")
    target = _check_nonnegative("broadcast_to", _as_shape("broadcast_to", shape))
    s = a.shape
    ok = len(s) <= len(target) and builtins.all(
        d == t or d == 1 for d, t in zip(s[::-1], target[::-1])
    )
    if not ok:
        raise ValueError(
            f"broadcast_to: cannot broadcast an array of shape {s} to shape {target}; each "
            "trailing dimension must equal the target's or be 1"
        )
    return broadcast_to_shape(a, target)


def broadcast_arrays(*args) -> list:
    """The arguments broadcast against each other."""
    xs = [to_array(a, "broadcast_arrays") for a in args]
    target = broadcast_shapes("broadcast_arrays", tuple(x.shape for x in xs)) if xs else ()
    return [broadcast_to_shape(x, target) for x in xs]


def broadcast_shapes_public(*shapes) -> tuple:
    """The shape that arrays of `shapes` broadcast to."""
    shapes = tuple(_as_shape("broadcast_shapes", s) for s in shapes)
    if not shapes:
        return ()
    return broadcast_shapes("broadcast_shapes", shapes)


def tile(A, reps):
    """Repeat the whole array `reps` times along each axis.

    Example:
        >>> jnp.tile(jnp.array([1, 2]), 2)
        Array([1, 2, 1, 2], dtype=int32)
    """
    a = to_array(A, "tile")
    reps = _check_nonnegative("tile", _as_shape("tile", reps))
    n = builtins.max(a.ndim, len(reps))
    s = (1,) * (n - a.ndim) + a.shape
    reps = (1,) * (n - len(reps)) + reps
    a = lax.reshape(a, s)
    interleaved = tuple(v for pair in zip(reps, s) for v in pair)
    b = lax.broadcast_in_dim(a, interleaved, tuple(range(1, 2 * n, 2)))
    return lax.reshape(b, tuple(r * d for r, d in zip(reps, s)))


def repeat(a, repeats, axis: int | None = None, *, total_repeat_length=None):
    """Repeat each element `repeats` times along `axis` (flattened when None).

    `repeats` is an int, or a concrete sequence with one count per element.

    Example:
        >>> jnp.repeat(jnp.array([1, 2]), 2)
        Array([1, 1, 2, 2], dtype=int32)
    """
    a = to_array(a, "repeat")
    if axis is None or a.ndim == 0:  # JAX repeats a 0-d array as a 1-d one, whatever the axis
        a = ravel(a)
        axis = 0
    ax = canonicalize_axis("repeat", axis, a.ndim)
    s = a.shape
    if isinstance(repeats, Tracer):
        raise TypeError(
            "repeat: `repeats` must be concrete (the output shape depends on it); under jit "
            "pass it as a static argument"
        )
    reps = np.asarray(repeats)
    if reps.ndim == 0:
        r = operator.index(reps.item())
        if r < 0:
            raise ValueError(f"repeat: repeats may not be negative, got {r}")
        expanded = s[: ax + 1] + (r,) + s[ax + 1 :]
        dims = tuple(range(ax + 1)) + tuple(range(ax + 2, len(s) + 1))
        b = lax.broadcast_in_dim(a, expanded, dims)
        return lax.reshape(b, s[:ax] + (s[ax] * r,) + s[ax + 1 :])
    if reps.shape != (s[ax],):
        raise ValueError(
            f"repeat: repeats has shape {reps.shape}; it must be an int or have one entry per "
            f"element along axis {ax} (size {s[ax]})"
        )
    if (reps < 0).any():
        raise ValueError("repeat: repeats may not be negative")
    from fnbrrr.numpy._take import take

    index = np.repeat(np.arange(s[ax], dtype=default_int()), reps)
    return take(a, index, axis=ax)


def flip(m, axis=None):
    """Reverse the order of elements along `axis` (all axes when None)."""
    m = to_array(m, "flip")
    axes = reduction_axes("flip", axis, m.ndim)
    return lax.rev(m, axes)


def fliplr(m):
    """Reverse along axis 1."""
    return flip(m, 1)


def flipud(m):
    """Reverse along axis 0."""
    return flip(m, 0)


def _roll_static(a, shift: int, ax: int):
    n = a.shape[ax]
    if n == 0:
        return a
    shift %= n
    if shift == 0:
        return a
    start, limit = [0] * a.ndim, list(a.shape)
    limit[ax] = n - shift
    head = lax.slice(a, start, limit)
    start2, limit2 = [0] * a.ndim, list(a.shape)
    start2[ax] = n - shift
    tail = lax.slice(a, start2, limit2)
    return lax.concatenate([tail, head], ax)


def _roll_dynamic(a, shift, ax: int):
    n = a.shape[ax]
    if n == 0:
        return a
    shift = to_array(shift, "roll")
    idx_dt = shift.aval.dtype
    twice = lax.concatenate([a, a], ax)
    k = lax.rem(
        lax.add(lax.rem(lax.neg(shift), scalar_const(n, idx_dt)), scalar_const(n, idx_dt)),
        scalar_const(n, idx_dt),
    )
    starts = [scalar_const(0, idx_dt)] * a.ndim
    starts[ax] = k
    return lax.dynamic_slice(twice, starts, a.shape)


def roll(a, shift, axis=None):
    """Shift elements along `axis` cyclically (of the flattened array when None).

    Example:
        >>> jnp.roll(jnp.arange(4), 1)
        Array([3, 0, 1, 2], dtype=int32)
    """
    a = to_array(a, "roll")
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), a.shape)
    shifts = shift if isinstance(shift, (list, tuple)) else (shift,)
    axes = axis if isinstance(axis, (list, tuple)) else (axis,)
    if len(shifts) == 1:
        shifts = shifts * len(axes)
    if len(axes) == 1:
        axes = axes * len(shifts)
    if len(shifts) != len(axes):
        raise ValueError(f"roll: shift {shift} and axis {axis} must have the same length")
    for s, ax in zip(shifts, axes):
        ax = canonicalize_axis("roll", ax, a.ndim)
        if isinstance(s, Tracer):
            a = _roll_dynamic(a, s, ax)
        else:
            a = _roll_static(a, operator.index(s), ax)
    return a


def _pad_widths(name: str, pad_width, ndim: int) -> list[tuple[int, int]]:
    widths = np.asarray(pad_width)
    if widths.dtype.kind not in "iu":
        raise TypeError(f"{name}: pad_width must be integers, got {pad_width!r}")
    try:
        widths = np.broadcast_to(widths, (ndim, 2))
    except ValueError:
        raise ValueError(
            f"{name}: pad_width {pad_width!r} does not fit an array with {ndim} dimensions"
        ) from None
    if (widths < 0).any():
        raise ValueError(f"{name}: pad_width may not be negative, got {pad_width!r}")
    return [(int(lo), int(hi)) for lo, hi in widths.tolist()]


def _slice_axis(a, ax: int, lo: int, hi: int):
    start, limit = [0] * a.ndim, list(a.shape)
    start[ax], limit[ax] = lo, hi
    return lax.slice(a, start, limit)


def pad(array, pad_width, mode: str = "constant", **kwargs):
    """Pad an array. Modes: 'constant' (constant_values, default 0), 'edge', 'wrap',
    'reflect' and 'symmetric' (the last three with padding no larger than the axis).

    Example:
        >>> jnp.pad(jnp.array([1, 2]), 1)
        Array([0, 1, 2, 0], dtype=int32)
    """
    a = to_array(array, "pad")
    widths = _pad_widths("pad", pad_width, a.ndim)
    if mode == "constant":
        values = np.asarray(kwargs.get("constant_values", 0))
        if isinstance(kwargs.get("constant_values"), Tracer) or values.ndim == 0:
            fill = kwargs.get("constant_values", 0)
            fill = (
                lax.convert_element_type(to_array(fill, "pad"), a.aval.dtype)
                if isinstance(fill, Tracer)
                else scalar_const(np.asarray(fill).item(), a.aval.dtype)
            )
            return lax.pad(a, fill, [(lo, hi, 0) for lo, hi in widths])
        per_axis = np.broadcast_to(values, (a.ndim, 2))
        for ax, ((lo, hi), (vlo, vhi)) in enumerate(zip(widths, per_axis.tolist())):
            config = [(0, 0, 0)] * a.ndim
            config[ax] = (lo, 0, 0)
            a = lax.pad(a, scalar_const(vlo, a.aval.dtype), config)
            config[ax] = (0, hi, 0)
            a = lax.pad(a, scalar_const(vhi, a.aval.dtype), config)
        return a
    if mode not in ("edge", "wrap", "reflect", "symmetric"):
        raise NotImplementedError(
            f"pad: mode {mode!r} is not supported; use 'constant', 'edge', 'wrap', 'reflect' "
            "or 'symmetric'"
        )
    for ax, (lo, hi) in enumerate(widths):
        n = a.shape[ax]
        if not lo and not hi:
            continue
        limit = n - 1 if mode == "reflect" else n
        if lo > limit or hi > limit or n == 0:
            raise NotImplementedError(
                f"pad: mode {mode!r} with padding ({lo}, {hi}) larger than axis {ax} of size {n} "
                "is not supported"
            )
        if mode == "edge":
            before = broadcast_to_shape(
                _slice_axis(a, ax, 0, 1), a.shape[:ax] + (lo,) + a.shape[ax + 1 :]
            )
            after = broadcast_to_shape(
                _slice_axis(a, ax, n - 1, n), a.shape[:ax] + (hi,) + a.shape[ax + 1 :]
            )
        elif mode == "wrap":
            before, after = _slice_axis(a, ax, n - lo, n), _slice_axis(a, ax, 0, hi)
        elif mode == "reflect":
            before = lax.rev(_slice_axis(a, ax, 1, lo + 1), (ax,))
            after = lax.rev(_slice_axis(a, ax, n - 1 - hi, n - 1), (ax,))
        else:
            before = lax.rev(_slice_axis(a, ax, 0, lo), (ax,))
            after = lax.rev(_slice_axis(a, ax, n - hi, n), (ax,))
        a = lax.concatenate([before, a, after], ax)
    return a


def _tri_mask(n: int, m: int, k: int):
    rows = lax.broadcasted_iota(default_int(), (n, m), 0)
    cols = lax.broadcasted_iota(default_int(), (n, m), 1)
    return lax.ge(lax.add(rows, scalar_const(k, default_int())), cols)


def tri(N: int, M: int | None = None, k: int = 0, dtype=None):
    """An (N, M) array with ones at and below the k-th diagonal, zeros elsewhere."""
    M = N if M is None else M
    dt = canonical_dtype(dtype) if dtype is not None else default_float()
    return lax.convert_element_type(_tri_mask(operator.index(N), operator.index(M), k), dt)


def _masked_triangle(name: str, m, k: int, lower: bool):
    m = to_array(m, name)
    if m.ndim < 2:
        raise ValueError(f"{name}: input must be at least 2-D, got shape {m.shape}")
    n_rows, n_cols = m.shape[-2:]
    mask = _tri_mask(n_rows, n_cols, k if lower else k - 1)
    if not lower:
        mask = lax.not_(mask)
    mask = broadcast_to_shape(mask, m.shape)
    return lax.select_n(mask, lax.full(m.shape, 0, m.aval.dtype), m)


def tril(m, k: int = 0):
    """Lower triangle of the last two axes (zeros above the k-th diagonal)."""
    return _masked_triangle("tril", m, k, True)


def triu(m, k: int = 0):
    """Upper triangle of the last two axes (zeros below the k-th diagonal)."""
    return _masked_triangle("triu", m, k, False)


def tril_indices(n: int, k: int = 0, m: int | None = None) -> tuple:
    """(rows, cols) of the lower triangle of an (n, m) array (at and below diagonal k).

    Example:
        >>> jnp.tril_indices(2)
        (Array([0, 1, 1], dtype=int32), Array([0, 0, 1], dtype=int32))
    """
    from fnbrrr.numpy._indexing import const_indices

    return tuple(const_indices(i) for i in np.tril_indices(n, k, m))


def triu_indices(n: int, k: int = 0, m: int | None = None) -> tuple:
    """(rows, cols) of the upper triangle of an (n, m) array (at and above diagonal k).

    Example:
        >>> jnp.triu_indices(2)
        (Array([0, 0, 1], dtype=int32), Array([0, 1, 1], dtype=int32))
    """
    from fnbrrr.numpy._indexing import const_indices

    return tuple(const_indices(i) for i in np.triu_indices(n, k, m))


def diff(a, n: int = 1, axis: int = -1, prepend=None, append=None):
    """The n-th discrete difference along `axis`: a[1:] - a[:-1], n times.

    Example:
        >>> jnp.diff(jnp.array([1, 4, 9, 16]))
        Array([3, 5, 7], dtype=int32)
    """
    from fnbrrr.numpy._elementwise import not_equal, subtract

    a = to_array(a, "diff")
    ax = canonicalize_axis("diff", axis, a.ndim)
    parts = []
    for extra in (prepend, append):
        if extra is None:
            parts.append(None)
            continue
        e = to_array(extra, "diff")
        if e.ndim == 0:
            e = broadcast_to(e, a.shape[:ax] + (1,) + a.shape[ax + 1 :])
        parts.append(e)
    pieces = [p for p in (parts[0], a, parts[1]) if p is not None]
    if len(pieces) > 1:
        a = concatenate(pieces, axis=ax)
    for _ in range(operator.index(n)):
        head = lax.slice_in_dim(a, 1, None, axis=ax)
        tail = lax.slice_in_dim(a, 0, -1, axis=ax)
        a = not_equal(head, tail) if a.aval.dtype == np.bool_ else subtract(head, tail)
    return a


def diagonal(a, offset: int = 0, axis1: int = 0, axis2: int = 1):
    """The `offset` diagonal of the (axis1, axis2) planes, as the last axis.

    Example:
        >>> jnp.diagonal(jnp.arange(4).reshape(2, 2))
        Array([0, 3], dtype=int32)
    """
    a = to_array(a, "diagonal")
    if a.ndim < 2:
        raise ValueError(f"diagonal: needs at least 2 dimensions, got shape {a.shape}")
    i = canonicalize_axis("diagonal", axis1, a.ndim)
    j = canonicalize_axis("diagonal", axis2, a.ndim)
    if i == j:
        raise ValueError("diagonal: axis1 and axis2 cannot be the same")
    n, m = a.shape[i], a.shape[j]
    offset = operator.index(offset)
    rows = np.arange(builtins.max(0, -offset), builtins.min(n, m - offset))
    rest = tuple(d for k, d in enumerate(a.shape) if k not in (i, j))
    if rows.size == 0:
        return lax.full(rest + (0,), 0, a.aval.dtype)
    coords = np.stack([rows, rows + offset], axis=-1).astype(default_int())
    if i > j:  # gather wants its axes increasing: swap the coordinate columns
        coords = coords[:, ::-1].copy()
    from fnbrrr.numpy._indexing import const_indices

    g = lax.gather(a, const_indices(coords), (builtins.min(i, j), builtins.max(i, j)))
    return lax.transpose(g, tuple(range(1, g.ndim)) + (0,)) if g.ndim > 1 else g


def diag(v, k: int = 0):
    """The k-th diagonal of a 2-D array, or a 2-D array with 1-D `v` on its k-th diagonal."""
    v = to_array(v, "diag")
    if v.ndim == 2:
        return diagonal(v, k)
    if v.ndim != 1:
        raise ValueError(f"diag: input must be 1-D or 2-D, got shape {v.shape}")
    k = operator.index(k)
    n = v.shape[0] + builtins.abs(k)
    padded = lax.pad(v, scalar_const(0, v.aval.dtype), [(0, builtins.abs(k), 0)])
    rows = lax.broadcasted_iota(default_int(), (n, n), 0)
    cols = lax.broadcasted_iota(default_int(), (n, n), 1)
    on_diag = lax.eq(lax.sub(cols, rows), scalar_const(k, default_int()))
    spread = lax.broadcast_in_dim(padded, (n, n), (0,) if k >= 0 else (1,))
    return lax.select_n(on_diag, lax.full((n, n), 0, v.aval.dtype), spread)


def trace(a, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype=None, out=None):
    """Sum along the `offset` diagonal of the (axis1, axis2) planes."""
    from fnbrrr.numpy._reductions import sum as _sum

    return _sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype, out=out)


def meshgrid(*xi, copy: bool = True, sparse: bool = False, indexing: str = "xy") -> list:
    """Coordinate arrays from 1-D coordinate vectors ('xy' or 'ij' indexing)."""
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    xs = [ravel(to_array(x, "meshgrid")) for x in xi]
    n = len(xs)
    shapes = [x.shape[0] for x in xs]
    if indexing == "xy" and n >= 2:
        shapes[0], shapes[1] = shapes[1], shapes[0]
    out = []
    for i, x in enumerate(xs):
        dim = i
        if indexing == "xy" and n >= 2 and i < 2:
            dim = 1 - i
        if sparse:
            s = [1] * n
            s[dim] = x.shape[0]
            out.append(lax.reshape(x, tuple(s)))
        else:
            out.append(lax.broadcast_in_dim(x, tuple(shapes), (dim,)))
    return out


def append(arr, values, axis: int | None = None):
    """`arr` with `values` appended (both flattened when axis is None)."""
    if axis is None:
        return concatenate([ravel(arr), ravel(values)], 0)
    return concatenate([arr, values], axis)


def unstack(x, /, *, axis: int = 0) -> tuple:
    """The slices of `x` along `axis`, as a tuple."""
    x = to_array(x, "unstack")
    ax = canonicalize_axis("unstack", axis, x.ndim)
    parts = _split("unstack", x, x.shape[ax], ax, True) if x.shape[ax] else []
    return tuple(squeeze(p, ax) for p in parts)
