"""Indexing primitives: dynamic_slice, dynamic_update_slice, gather and the scatters.

fnbrrr's gather addresses a set of operand axes with integer coordinates (simpler than
XLA's dimension numbers, and enough for NumPy indexing):

    gather(operand, indices, axes)[b..., rest...] = operand[rest, with axes[j] = indices[b..., j]]

`indices` has shape batch_shape + (len(axes),); the result has shape batch_shape + the
operand's shape without `axes`. Gathers clamp out-of-range coordinates; scatters either clamp
(`mode="clip"`) or drop them (`mode="drop"`, NumPy-style `.at[]` updates), as JAX does. A
gather's `mode` says where the gradient of an out-of-range coordinate goes: to the clamped
element (`"clip"`, the transpose of the forward pass) or nowhere (`"promise_in_bounds"`: the
transposed scatter drops it, which is what JAX's `x[idx]` does).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fnbrrr._prims.common import check_axes, check_dtype_kind, check_same_dtype, describe
from fnbrrr._prims.elementwise import (
    add,
    and_,
    convert_element_type,
    div,
    full,
    ge,
    lt,
    max,
    min,
    mul,
    select_n,
)
from fnbrrr._prims.reductions import reduce_and
from fnbrrr._prims.shape import (
    broadcast_in_dim,
    broadcasted_iota,
    concatenate,
)
from fnbrrr.ad_util import Zero, instantiate, is_zero
from fnbrrr.core import Primitive, ShapedArray, get_aval

# --- gather --------------------------------------------------------------------------------------

gather_p = Primitive("gather")


def _rest_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(s for i, s in enumerate(shape) if i not in axes)


GATHER_MODES = ("clip", "promise_in_bounds")


def _gather_impl(operand, indices, *, axes, mode="clip"):
    k = len(axes)
    moved = np.moveaxis(operand, axes, tuple(range(k)))
    coords = tuple(
        np.clip(indices[..., j], 0, operand.shape[a] - 1) for j, a in enumerate(axes))
    return moved[coords]


def _check_indices(op: str, operand: ShapedArray, indices: ShapedArray, axes) -> tuple:
    check_dtype_kind(op, indices, "iu", "integer indices")
    axes = check_axes(op, axes, operand.ndim, operand)
    if indices.ndim < 1 or indices.shape[-1] != len(axes):
        raise ValueError(
            f"{op}: indices {describe(indices)} must have a last dimension of size {len(axes)} "
            f"(one coordinate per indexed axis {axes}) for operand {describe(operand)}"
        )
    for a in axes:
        if operand.shape[a] == 0:
            raise IndexError(
                f"{op}: cannot index axis {a} of size 0 of operand {describe(operand)}")
    return indices.shape[:-1] + _rest_shape(operand.shape, axes)


def _gather_abstract_eval(operand: ShapedArray, indices: ShapedArray, *, axes, mode="clip"):
    if mode not in GATHER_MODES:
        raise ValueError(f"gather: mode must be one of {GATHER_MODES}, got {mode!r}")
    shape = _check_indices("gather", operand, indices, axes)
    return ShapedArray(shape, operand.dtype, operand.weak_type)


def _gather_jvp(primals, tangents, *, axes, mode="clip"):
    operand, indices = primals
    ans = gather(operand, indices, axes, mode)
    if is_zero(tangents[0]):
        return ans, Zero.like(ans)
    return ans, gather(tangents[0], indices, axes, mode)


def _gather_vjp(ct, ans, operand, indices, *, axes, mode="clip"):
    scatter_mode = "clip" if mode == "clip" else "drop"
    return [scatter_add(_zeros_like(operand), indices, ct, axes, mode=scatter_mode), None]


def _with_batch_coordinate(indices, size: int):
    """Prepend a coordinate equal to the batch position to indices of shape (B, ..., k)."""
    aval = get_aval(indices)
    coord = broadcasted_iota(aval.dtype, (*aval.shape[:-1], 1), 0)
    return concatenate([coord, indices], aval.ndim - 1)


def _gather_batch(vals, dims, *, axes, mode="clip"):
    from fnbrrr.batching import bdim_at_front, moveaxis

    (operand, indices), (d_op, d_idx) = vals, dims
    if d_idx is None:  # the batch axis becomes one of the "rest" axes of the result
        operand = moveaxis(operand, d_op, 0)
        out = gather(operand, indices, tuple(a + 1 for a in axes), mode)
        return out, get_aval(indices).ndim - 1
    size = get_aval(indices).shape[d_idx]
    indices = moveaxis(indices, d_idx, 0)
    if d_op is None:
        return gather(operand, indices, axes, mode), 0
    operand = bdim_at_front(operand, d_op, size)
    indices = _with_batch_coordinate(indices, size)
    return gather(operand, indices, (0, *(a + 1 for a in axes)), mode), 0


gather_p.impl = _gather_impl
gather_p.abstract_eval = _gather_abstract_eval
gather_p.jvp = _gather_jvp
gather_p.vjp = _gather_vjp
gather_p.batch = _gather_batch


def gather(operand, indices, axes: Sequence[int], mode: str = "clip"):
    """Pick elements of `operand` along `axes` at integer `indices` (see the module doc).

    Out-of-range coordinates are clamped; `mode="promise_in_bounds"` gives them no gradient
    (JAX's `x[idx]`), `"clip"` sends it to the clamped element.

    Example:
        >>> gather(np.arange(5.0), np.array([[3], [9]], np.int32), (0,))
        Array([3., 4.], dtype=float32)
    """
    return gather_p.bind(operand, indices, axes=tuple(int(a) for a in axes), mode=mode)


# --- scatters ------------------------------------------------------------------------------------


def _scatter_impl(combine):
    def impl(operand, indices, updates, *, axes, mode):
        out = operand.copy()
        k = len(axes)
        moved = np.moveaxis(out, axes, tuple(range(k)))
        sizes = [operand.shape[a] for a in axes]
        coords = [indices[..., j] for j in range(k)]
        if mode == "clip":
            coords = [np.clip(c, 0, s - 1) for c, s in zip(coords, sizes)]
        else:
            valid = np.ones(indices.shape[:-1], dtype=bool)
            for c, s in zip(coords, sizes):
                valid &= (c >= 0) & (c < s)
            coords = [c[valid] for c in coords]
            updates = updates[valid]
        combine(moved, tuple(coords), updates)
        return out

    return impl


def _set(target, coords, updates):
    target[coords] = updates


def _scatter_abstract_eval(name: str):
    def abstract_eval(operand: ShapedArray, indices: ShapedArray, updates: ShapedArray, *, axes,
                      mode):
        check_same_dtype(name, operand, updates)
        expected = _check_indices(name, operand, indices, axes)
        if updates.shape != expected:
            raise ValueError(
                f"{name}: updates {describe(updates)} must have shape {expected} for operand "
                f"{describe(operand)}, indices {describe(indices)} and axes {tuple(axes)}"
            )
        if mode not in ("clip", "drop"):
            raise ValueError(f"{name}: mode must be 'clip' or 'drop', got {mode!r}")
        return ShapedArray(operand.shape, operand.dtype, operand.weak_type)

    return abstract_eval


def _in_bounds(indices, operand, axes, mode):
    """For mode='drop': a mask over the index batch of which updates land."""
    if mode == "clip":
        return None
    aval = get_aval(indices)
    sizes = np.array([get_aval(operand).shape[a] for a in axes], dtype=aval.dtype)
    sizes = broadcast_in_dim(_const_array(sizes), aval.shape, (aval.ndim - 1,))
    ok = and_(ge(indices, full((), 0, aval.dtype)), lt(indices, sizes))
    return reduce_and(ok, (aval.ndim - 1,))


def _const_array(value: np.ndarray):
    from fnbrrr.core import ArrayImpl

    return ArrayImpl(value, False)


def _mask_updates(ct_updates, mask):
    if mask is None:
        return ct_updates
    aval = get_aval(ct_updates)
    mask = broadcast_in_dim(mask, aval.shape, tuple(range(get_aval(mask).ndim)))
    return select_n(mask, _zeros_like(ct_updates), ct_updates)


def _scatter_batch(primitive):
    def batch(vals, dims, *, axes, mode):
        from fnbrrr.batching import bdim_at_front

        size = next(get_aval(v).shape[d] for v, d in zip(vals, dims) if d is not None)
        operand, indices, updates = (bdim_at_front(v, d, size) for v, d in zip(vals, dims))
        indices = _with_batch_coordinate(indices, size)
        return primitive.bind(operand, indices, updates, axes=(0, *(a + 1 for a in axes)),
                              mode=mode), 0

    return batch


def _scatter_primitive(name: str, combine) -> Primitive:
    p = Primitive(name)
    p.impl = _scatter_impl(combine)
    p.abstract_eval = _scatter_abstract_eval(name)
    p.batch = _scatter_batch(p)
    return p


scatter_add_p = _scatter_primitive("scatter_add", np.add.at)
scatter_p = _scatter_primitive("scatter", _set)
scatter_mul_p = _scatter_primitive("scatter_mul", np.multiply.at)


def _linear_scatter_jvp(primitive):
    """scatter and scatter_add are linear in (operand, updates) jointly: scatter the tangents."""

    def jvp(primals, tangents, *, axes, mode):
        operand, indices, updates = primals
        ans = primitive.bind(operand, indices, updates, axes=axes, mode=mode)
        t_op, _, t_up = tangents
        if is_zero(t_op) and is_zero(t_up):
            return ans, Zero.like(ans)
        return ans, primitive.bind(instantiate(t_op, operand), indices,
                                   instantiate(t_up, updates), axes=axes, mode=mode)

    return jvp


def _scatter_add_vjp(ct, ans, operand, indices, updates, *, axes, mode):
    ct_updates = _mask_updates(gather(ct, indices, axes), _in_bounds(indices, operand, axes, mode))
    return [ct, None, ct_updates]


def _scatter_vjp(ct, ans, operand, indices, updates, *, axes, mode):
    overwritten = scatter(ct, indices, _zeros_like(updates), axes, mode)
    ct_updates = _mask_updates(gather(ct, indices, axes), _in_bounds(indices, operand, axes, mode))
    return [overwritten, None, ct_updates]


def _scatter_mul_jvp(primals, tangents, *, axes, mode):
    # out = operand * P where P is the scattered product of the updates.
    operand, indices, updates = primals
    ans = scatter_mul(operand, indices, updates, axes, mode)
    t_op, _, t_up = tangents
    tangent = None
    if not is_zero(t_op):
        tangent = scatter_mul(t_op, indices, updates, axes, mode)
    if not is_zero(t_up):
        rel = scatter_add(_zeros_like(operand), indices, div(t_up, updates), axes, mode)
        part = mul(ans, rel)
        tangent = part if tangent is None else add(tangent, part)
    return ans, tangent


def _scatter_mul_vjp(ct, ans, operand, indices, updates, *, axes, mode):
    ct_operand = scatter_mul(ct, indices, updates, axes, mode)
    ct_updates = _mask_updates(div(gather(mul(ct, ans), indices, axes), updates),
                               _in_bounds(indices, operand, axes, mode))
    return [ct_operand, None, ct_updates]


scatter_add_p.jvp, scatter_add_p.vjp = _linear_scatter_jvp(scatter_add_p), _scatter_add_vjp
scatter_p.jvp, scatter_p.vjp = _linear_scatter_jvp(scatter_p), _scatter_vjp
scatter_mul_p.jvp, scatter_mul_p.vjp = _scatter_mul_jvp, _scatter_mul_vjp


def scatter_add(operand, indices, updates, axes: Sequence[int], mode: str = "drop"):
    """`operand` with `updates` added at `indices` (repeated indices accumulate)."""
    return scatter_add_p.bind(operand, indices, updates, axes=tuple(int(a) for a in axes),
                              mode=mode)


def scatter(operand, indices, updates, axes: Sequence[int], mode: str = "drop"):
    """`operand` with `updates` written at `indices`."""
    return scatter_p.bind(operand, indices, updates, axes=tuple(int(a) for a in axes), mode=mode)


def scatter_mul(operand, indices, updates, axes: Sequence[int], mode: str = "drop"):
    """`operand` multiplied by `updates` at `indices` (repeated indices multiply)."""
    return scatter_mul_p.bind(operand, indices, updates, axes=tuple(int(a) for a in axes),
                              mode=mode)


def _zeros_like(x):
    aval = get_aval(x)
    return full(aval.shape, 0, aval.dtype)


# --- dynamic_slice / dynamic_update_slice --------------------------------------------------------

dynamic_slice_p = Primitive("dynamic_slice")


def _clamped_starts(shape, starts, sizes):
    return tuple(int(np.clip(int(s), 0, dim - n)) for dim, s, n in zip(shape, starts, sizes))


def _dynamic_slice_impl(operand, *starts, slice_sizes):
    starts = _clamped_starts(operand.shape, starts, slice_sizes)
    return operand[tuple(np.s_[s:s + n] for s, n in zip(starts, slice_sizes))]


def _check_starts(op: str, operand: ShapedArray, starts) -> None:
    if len(starts) != operand.ndim:
        raise ValueError(f"{op}: {len(starts)} start indices for operand {describe(operand)}")
    for s in starts:
        if s.shape or s.dtype.kind not in "iu":
            raise TypeError(f"{op}: start indices must be integer scalars, got {describe(s)}")


def _dynamic_slice_abstract_eval(operand: ShapedArray, *starts: ShapedArray, slice_sizes):
    op = "dynamic_slice"
    _check_starts(op, operand, starts)
    if len(slice_sizes) != operand.ndim or any(
            not 0 <= n <= d for n, d in zip(slice_sizes, operand.shape)):
        raise ValueError(
            f"{op}: slice_sizes {slice_sizes} must have one entry per axis, each within the "
            f"operand's size, for operand {describe(operand)}"
        )
    return ShapedArray(tuple(slice_sizes), operand.dtype, operand.weak_type)


def _window_indices(operand_shape, starts, slice_sizes, batched_size=None):
    """The gather indices of a dynamic slice: clamped start + offsets, shape (*sizes, ndim)."""
    columns = []
    for axis, (dim, start, n) in enumerate(zip(operand_shape, starts, slice_sizes)):
        dtype = get_aval(start).dtype
        lead = () if batched_size is None else (batched_size,)
        clamped = max(min(start, full((), dim - n, dtype)), full((), 0, dtype))
        offset = broadcasted_iota(dtype, (*lead, *slice_sizes, 1), len(lead) + axis)
        start_b = broadcast_in_dim(clamped, (*lead, *slice_sizes, 1),
                                   (0,) if batched_size is not None else ())
        columns.append(add(offset, start_b))
    return concatenate([convert_element_type(c, np.int32) for c in columns],
                       len(get_aval(columns[0]).shape) - 1)


def _dynamic_slice_batch(vals, dims, *, slice_sizes):
    from fnbrrr.batching import bdim_at_front, moveaxis

    operand, *starts = vals
    d_op, *d_starts = dims
    if all(d is None for d in d_starts):
        operand = moveaxis(operand, d_op, 0)
        size = get_aval(operand).shape[0]
        zero = full((), 0, get_aval(starts[0]).dtype) if starts else None
        return dynamic_slice(operand, (zero, *starts), (size, *slice_sizes)), 0
    size = next(get_aval(v).shape[d] for v, d in zip(vals, dims) if d is not None)
    starts = [bdim_at_front(s, d, size) for s, d in zip(starts, d_starts)]
    operand_shape = get_aval(operand).shape if d_op is None else None
    if d_op is None:
        indices = _window_indices(operand_shape, starts, slice_sizes, size)
        return gather(operand, indices, tuple(range(len(slice_sizes)))), 0
    operand = bdim_at_front(operand, d_op, size)
    indices = _window_indices(get_aval(operand).shape[1:], starts, slice_sizes, size)
    indices = _with_batch_coordinate(indices, size)
    return gather(operand, indices, tuple(range(len(slice_sizes) + 1))), 0


dynamic_slice_p.impl = _dynamic_slice_impl
dynamic_slice_p.abstract_eval = _dynamic_slice_abstract_eval
dynamic_slice_p.batch = _dynamic_slice_batch


def _dynamic_slice_jvp(primals, tangents, *, slice_sizes):
    operand, *starts = primals
    ans = dynamic_slice(operand, starts, slice_sizes)
    if is_zero(tangents[0]):
        return ans, Zero.like(ans)
    return ans, dynamic_slice(tangents[0], starts, slice_sizes)


def _dynamic_slice_vjp(ct, ans, operand, *starts, slice_sizes):
    return [dynamic_update_slice(_zeros_like(operand), ct, starts)] + [None] * len(starts)


dynamic_slice_p.jvp = _dynamic_slice_jvp
dynamic_slice_p.vjp = _dynamic_slice_vjp


def dynamic_slice(operand, start_indices: Sequence, slice_sizes: Sequence[int]):
    """operand[start:start+size] per axis, with starts that may be traced (clamped to fit)."""
    starts = [_as_index(s) for s in start_indices]
    return dynamic_slice_p.bind(operand, *starts, slice_sizes=tuple(int(n) for n in slice_sizes))


def _as_index(s):
    if isinstance(s, (int, np.integer)):
        return _const_array(np.asarray(s, np.int32))
    return s


dynamic_update_slice_p = Primitive("dynamic_update_slice")


def _dynamic_update_slice_impl(operand, update, *starts):
    starts = _clamped_starts(operand.shape, starts, update.shape)
    out = operand.copy()
    out[tuple(np.s_[s:s + n] for s, n in zip(starts, update.shape))] = update
    return out


def _dynamic_update_slice_abstract_eval(operand: ShapedArray, update: ShapedArray, *starts):
    op = "dynamic_update_slice"
    check_same_dtype(op, operand, update)
    _check_starts(op, operand, starts)
    if update.ndim != operand.ndim or any(u > d for u, d in zip(update.shape, operand.shape)):
        raise ValueError(f"{op}: update {describe(update)} does not fit in operand "
                         f"{describe(operand)}")
    return operand


def _dynamic_update_slice_jvp(primals, tangents):
    operand, update, *starts = primals
    ans = dynamic_update_slice(operand, update, starts)
    t_op, t_up = tangents[:2]
    if is_zero(t_op) and is_zero(t_up):
        return ans, Zero.like(ans)
    return ans, dynamic_update_slice(instantiate(t_op, operand), instantiate(t_up, update),
                                     starts)


def _dynamic_update_slice_vjp(ct, ans, operand, update, *starts):
    update_shape = get_aval(update).shape
    ct_operand = dynamic_update_slice(ct, _zeros_like(update), starts)
    ct_update = dynamic_slice(ct, starts, update_shape)
    return [ct_operand, ct_update] + [None] * len(starts)


def _dynamic_update_slice_batch(vals, dims):
    from fnbrrr.batching import bdim_at_front

    operand, update, *starts = vals
    d_op, d_up, *d_starts = dims
    size = next(get_aval(v).shape[d] for v, d in zip(vals, dims) if d is not None)
    operand = bdim_at_front(operand, d_op, size)
    update = bdim_at_front(update, d_up, size)
    if all(d is None for d in d_starts):
        zero = full((), 0, get_aval(starts[0]).dtype) if starts else None
        return dynamic_update_slice(operand, update, (zero, *starts)), 0
    starts = [bdim_at_front(s, d, size) for s, d in zip(starts, d_starts)]
    update_shape = get_aval(update).shape[1:]
    indices = _window_indices(get_aval(operand).shape[1:], starts, update_shape, size)
    indices = _with_batch_coordinate(indices, size)
    return scatter(operand, indices, update, tuple(range(len(update_shape) + 1)), "clip"), 0


dynamic_update_slice_p.impl = _dynamic_update_slice_impl
dynamic_update_slice_p.abstract_eval = _dynamic_update_slice_abstract_eval
dynamic_update_slice_p.jvp = _dynamic_update_slice_jvp
dynamic_update_slice_p.vjp = _dynamic_update_slice_vjp
dynamic_update_slice_p.batch = _dynamic_update_slice_batch


def dynamic_update_slice(operand, update, start_indices: Sequence):
    """`operand` with `update` written at `start_indices` (clamped so it fits)."""
    starts = [_as_index(s) for s in start_indices]
    return dynamic_update_slice_p.bind(operand, update, *starts)

