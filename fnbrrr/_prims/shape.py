"""Shape primitives: broadcast_in_dim, reshape, transpose, squeeze, concatenate, pad, slice,
rev and iota. All are linear, so each VJP is the transpose of the data movement.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence

import numpy as np

from fnbrrr._prims.common import check_axes, check_same_dtype, describe
from fnbrrr.ad_util import deflinear, defnondiff
from fnbrrr.core import Primitive, ShapedArray, get_aval

# --- broadcast_in_dim ----------------------------------------------------------------------------

broadcast_in_dim_p = Primitive("broadcast_in_dim")


def _broadcast_in_dim_impl(x, *, shape, broadcast_dimensions):
    expanded = [1] * len(shape)
    for src, dst in enumerate(broadcast_dimensions):
        expanded[dst] = x.shape[src]
    return np.broadcast_to(x.reshape(expanded), shape)


def _broadcast_in_dim_abstract_eval(x: ShapedArray, *, shape, broadcast_dimensions):
    op = "broadcast_in_dim"
    if len(broadcast_dimensions) != x.ndim:
        raise ValueError(
            f"{op}: operand {describe(x)} has rank {x.ndim} but broadcast_dimensions "
            f"{broadcast_dimensions} has {len(broadcast_dimensions)} entries"
        )
    if any(d < 0 for d in shape):
        raise ValueError(f"{op}: negative dimension in target shape {shape}")
    check_axes(op, broadcast_dimensions, len(shape), x)
    if list(broadcast_dimensions) != sorted(broadcast_dimensions):
        raise ValueError(f"{op}: broadcast_dimensions {broadcast_dimensions} must be increasing")
    for src, dst in enumerate(broadcast_dimensions):
        if x.shape[src] not in (1, shape[dst]):
            raise ValueError(
                f"{op}: cannot broadcast operand {describe(x)} to shape {shape}: operand "
                f"dimension {src} has size {x.shape[src]}, target dimension {dst} has size "
                f"{shape[dst]} (sizes must match or the operand's must be 1)"
            )
    return ShapedArray(tuple(shape), x.dtype, x.weak_type)


def _broadcast_in_dim_transpose(ct, x, *, shape, broadcast_dimensions):
    from fnbrrr._prims.reductions import reduce_sum

    x_shape = get_aval(x).shape
    summed = tuple(d for d in range(len(shape)) if d not in broadcast_dimensions)
    stretched = tuple(dst for src, dst in enumerate(broadcast_dimensions)
                      if x_shape[src] == 1 and shape[dst] != 1)
    out = reduce_sum(ct, tuple(sorted(summed + stretched))) if summed or stretched else ct
    return [reshape(out, x_shape)]


def _broadcast_in_dim_batch(vals, dims, *, shape, broadcast_dimensions):
    (x,), (d,) = vals, dims
    from fnbrrr.batching import moveaxis

    x = moveaxis(x, d, 0)
    size = get_aval(x).shape[0]
    return broadcast_in_dim(x, (size, *shape), (0, *(b + 1 for b in broadcast_dimensions))), 0


broadcast_in_dim_p.impl = _broadcast_in_dim_impl
broadcast_in_dim_p.abstract_eval = _broadcast_in_dim_abstract_eval
broadcast_in_dim_p.batch = _broadcast_in_dim_batch
deflinear(broadcast_in_dim_p, _broadcast_in_dim_transpose)


def broadcast_in_dim(x, shape: Sequence[int], broadcast_dimensions: Sequence[int]):
    """Broadcast `x` to `shape`, operand dimension i going to `broadcast_dimensions[i]`."""
    shape = tuple(int(d) for d in shape)
    broadcast_dimensions = tuple(int(d) for d in broadcast_dimensions)
    aval = get_aval(x)
    if aval.shape == shape and broadcast_dimensions == tuple(range(len(shape))) and not (
            isinstance(x, (bool, int, float))):
        return x
    return broadcast_in_dim_p.bind(x, shape=shape, broadcast_dimensions=broadcast_dimensions)


def broadcast(x, sizes: Sequence[int]):
    """Prepend dimensions of `sizes` to `x` (JAX's lax.broadcast)."""
    aval = get_aval(x)
    sizes = tuple(int(s) for s in sizes)
    return broadcast_in_dim(x, sizes + aval.shape, tuple(range(len(sizes), len(sizes) + aval.ndim)))


# --- reshape -------------------------------------------------------------------------------------

reshape_p = Primitive("reshape")


def _reshape_abstract_eval(x: ShapedArray, *, new_sizes, dimensions):
    if dimensions is not None:
        raise ValueError("reshape: the `dimensions` argument is not supported; transpose first")
    if any(d < 0 for d in new_sizes):
        raise ValueError(f"reshape: negative dimension in new shape {new_sizes}")
    if math.prod(new_sizes) != x.size:
        raise TypeError(
            f"reshape: cannot reshape array of shape {x.shape} ({x.size} elements) into shape "
            f"{tuple(new_sizes)} ({math.prod(new_sizes)} elements); the "
            "total size must be unchanged"
        )
    return ShapedArray(tuple(new_sizes), x.dtype, x.weak_type)


def _reshape_batch(vals, dims, *, new_sizes, dimensions):
    from fnbrrr.batching import moveaxis

    x = moveaxis(vals[0], dims[0], 0)
    return reshape(x, (get_aval(x).shape[0], *new_sizes)), 0


reshape_p.impl = lambda x, *, new_sizes, dimensions: np.reshape(x, new_sizes)
reshape_p.abstract_eval = _reshape_abstract_eval
reshape_p.batch = _reshape_batch
deflinear(reshape_p, lambda ct, x, **_: [reshape(ct, get_aval(x).shape)])


def reshape(x, new_sizes: Sequence[int], dimensions=None):
    """`x` with a new shape of the same size (no -1 here: fnbrrr.numpy resolves it)."""
    new_sizes = tuple(int(d) for d in new_sizes)
    if get_aval(x).shape == new_sizes and dimensions is None:
        return x
    return reshape_p.bind(x, new_sizes=new_sizes, dimensions=dimensions)


def expand_dims(x, dimensions: Sequence[int]):
    """Insert size-1 axes at `dimensions` (positions in the result)."""
    shape = list(get_aval(x).shape)
    ndim_out = len(shape) + len(dimensions)
    for d in sorted(int(d) % ndim_out for d in dimensions):
        shape.insert(d, 1)
    return reshape(x, shape)


# --- transpose -----------------------------------------------------------------------------------

transpose_p = Primitive("transpose")


def _transpose_abstract_eval(x: ShapedArray, *, permutation):
    if sorted(permutation) != list(range(x.ndim)):
        raise ValueError(
            f"transpose: permutation {permutation} is not a permutation of the axes of "
            f"operand {describe(x)}"
        )
    return ShapedArray(tuple(x.shape[p] for p in permutation), x.dtype, x.weak_type)


def _transpose_batch(vals, dims, *, permutation):
    from fnbrrr.batching import moveaxis

    x = moveaxis(vals[0], dims[0], 0)
    return transpose(x, (0, *(p + 1 for p in permutation))), 0


transpose_p.impl = lambda x, *, permutation: np.transpose(x, permutation)
transpose_p.abstract_eval = _transpose_abstract_eval
transpose_p.batch = _transpose_batch
deflinear(transpose_p, lambda ct, x, *, permutation: [
    transpose(ct, tuple(np.argsort(permutation)))])


def transpose(x, permutation: Sequence[int]):
    """Permute the axes of `x`: result axis i is operand axis permutation[i]."""
    permutation = tuple(int(p) for p in permutation)
    if permutation == tuple(range(len(permutation))):
        return x
    return transpose_p.bind(x, permutation=permutation)


# --- squeeze -------------------------------------------------------------------------------------

squeeze_p = Primitive("squeeze")


def _squeeze_abstract_eval(x: ShapedArray, *, dimensions):
    dimensions = check_axes("squeeze", dimensions, x.ndim, x)
    for d in dimensions:
        if x.shape[d] != 1:
            raise ValueError(
                f"squeeze: cannot remove axis {d} of size {x.shape[d]} from operand {describe(x)}; "
                "only size-1 axes can be squeezed"
            )
    shape = tuple(s for i, s in enumerate(x.shape) if i not in dimensions)
    return ShapedArray(shape, x.dtype, x.weak_type)


def _squeeze_batch(vals, dims, *, dimensions):
    from fnbrrr.batching import moveaxis

    x = moveaxis(vals[0], dims[0], 0)
    return squeeze(x, tuple(d + 1 for d in dimensions)), 0


squeeze_p.impl = lambda x, *, dimensions: np.squeeze(x, axis=dimensions)
squeeze_p.abstract_eval = _squeeze_abstract_eval
squeeze_p.batch = _squeeze_batch
deflinear(squeeze_p, lambda ct, x, **_: [reshape(ct, get_aval(x).shape)])


def squeeze(x, dimensions: Sequence[int]):
    """Remove the size-1 axes `dimensions` of `x`."""
    ndim = get_aval(x).ndim
    dimensions = tuple(sorted(int(d) % ndim if ndim else int(d) for d in dimensions))
    if not dimensions:
        return x
    return squeeze_p.bind(x, dimensions=dimensions)


# --- concatenate ---------------------------------------------------------------------------------

concatenate_p = Primitive("concatenate")


def _concatenate_abstract_eval(*xs: ShapedArray, dimension):
    op = "concatenate"
    if not xs:
        raise ValueError(f"{op} needs at least one operand")
    dtype = check_same_dtype(op, *xs)
    first = xs[0]
    check_axes(op, (dimension,), first.ndim, first)
    for x in xs[1:]:
        if x.ndim != first.ndim or any(
            a != b for i, (a, b) in enumerate(zip(x.shape, first.shape)) if i != dimension
        ):
            raise ValueError(
                f"{op}: operands must have equal shapes except along dimension {dimension}, "
                f"got {describe(*xs)}"
            )
    shape = list(first.shape)
    shape[dimension] = sum(x.shape[dimension] for x in xs)
    return ShapedArray(tuple(shape), dtype, all(x.weak_type for x in xs))


def _concatenate_transpose(ct, *xs, dimension):
    outs, start = [], 0
    ct_shape = get_aval(ct).shape
    for x in xs:
        size = get_aval(x).shape[dimension]
        starts = [0] * len(ct_shape)
        limits = list(ct_shape)
        starts[dimension], limits[dimension] = start, start + size
        outs.append(slice(ct, starts, limits))
        start += size
    return outs


def _concatenate_batch(vals, dims, *, dimension):
    from fnbrrr.batching import bdim_at_front

    size = next(get_aval(v).shape[d] for v, d in zip(vals, dims) if d is not None)
    vals = [bdim_at_front(v, d, size) for v, d in zip(vals, dims)]
    return concatenate(vals, dimension + 1), 0


concatenate_p.impl = lambda *xs, dimension: np.concatenate(xs, axis=dimension)
concatenate_p.abstract_eval = _concatenate_abstract_eval
concatenate_p.batch = _concatenate_batch
deflinear(concatenate_p, _concatenate_transpose)


def concatenate(operands: Sequence, dimension: int):
    """Join `operands` (same dtype, equal shapes but along `dimension`) along `dimension`."""
    operands = list(operands)
    if len(operands) == 1:
        return operands[0]
    return concatenate_p.bind(*operands, dimension=int(dimension))


# --- pad -----------------------------------------------------------------------------------------

pad_p = Primitive("pad")


def _padded_size(size: int, lo: int, hi: int, interior: int) -> int:
    return lo + hi + size + max(size - 1, 0) * interior


def _pad_impl(x, padding_value, *, padding_config):
    shape = tuple(_padded_size(s, lo, hi, it) for s, (lo, hi, it) in zip(x.shape, padding_config))
    # Place x on the grid that includes negative padding, then crop the negative parts away.
    full_shape = tuple(s + max(-lo, 0) + max(-hi, 0) for s, (lo, hi, _) in zip(
        shape, padding_config))
    out = np.full(full_shape, padding_value, dtype=x.dtype)
    index = tuple(
        builtins.slice(max(lo, 0), max(lo, 0) + _padded_size(s, 0, 0, it), it + 1)
        for s, (lo, hi, it) in zip(x.shape, padding_config)
    )
    out[index] = x
    crop = tuple(
        builtins.slice(max(-lo, 0), max(-lo, 0) + n)
        for n, (lo, hi, _) in zip(shape, padding_config))
    return out[crop]


def _pad_abstract_eval(x: ShapedArray, padding_value: ShapedArray, *, padding_config):
    op = "pad"
    check_same_dtype(op, x, padding_value)
    if padding_value.shape:
        raise ValueError(f"{op}: padding_value must be 0-d, got {describe(padding_value)}")
    if len(padding_config) != x.ndim:
        raise ValueError(
            f"{op}: padding_config has {len(padding_config)} entries for operand {describe(x)}"
        )
    shape = []
    for s, (lo, hi, interior) in zip(x.shape, padding_config):
        if interior < 0:
            raise ValueError(f"{op}: interior padding must be >= 0, got {padding_config}")
        n = _padded_size(s, lo, hi, interior)
        if n < 0:
            raise ValueError(f"{op}: padding {padding_config} gives a negative size for "
                             f"operand {describe(x)}")
        shape.append(n)
    return ShapedArray(tuple(shape), x.dtype, x.weak_type)


def _pad_transpose(ct, x, padding_value, *, padding_config):
    from fnbrrr._prims.reductions import reduce_sum

    x_shape = get_aval(x).shape
    unpadded = pad(ct, _zero_scalar(ct), [(-lo, -hi, 0) for lo, hi, _ in padding_config])
    ct_x = slice(unpadded, [0] * len(x_shape), get_aval(unpadded).shape,
                 [it + 1 for _, _, it in padding_config])
    axes = tuple(range(len(x_shape)))
    ct_pad = None
    if not isinstance(padding_value, (int, float)):
        from fnbrrr._prims.elementwise import sub

        ct_pad = sub(reduce_sum(ct, axes), reduce_sum(ct_x, axes)) if axes else sub(ct, ct_x)
    return [ct_x, ct_pad]


def _zero_scalar(x):
    from fnbrrr._prims.elementwise import full

    return full((), 0, get_aval(x).dtype)


def _pad_batch(vals, dims, *, padding_config):
    from fnbrrr._prims.elementwise import full, select_n
    from fnbrrr.batching import bdim_at_front, moveaxis

    (x, pv), (dx, dpv) = vals, dims
    if dpv is None:
        x = moveaxis(x, dx, 0)
        return pad(x, pv, ((0, 0, 0), *padding_config)), 0
    size = get_aval(pv).shape[dpv]
    x = bdim_at_front(x, dx, size)
    zero = _zero_scalar(x)
    padded = pad(x, zero, ((0, 0, 0), *padding_config))
    out_shape = get_aval(padded).shape
    inside = pad(full(get_aval(x).shape[1:], True, np.bool_), full((), False, np.bool_),
                 padding_config)
    pv = broadcast_in_dim(moveaxis(pv, dpv, 0), out_shape, (0,))
    return select_n(broadcast_in_dim(inside, out_shape, tuple(range(1, len(out_shape)))),
                    pv, padded), 0


pad_p.impl = _pad_impl
pad_p.abstract_eval = _pad_abstract_eval
pad_p.batch = _pad_batch
deflinear(pad_p, _pad_transpose)


def pad(x, padding_value, padding_config: Sequence[tuple[int, int, int]]):
    """Pad `x` by (low, high, interior) per axis with `padding_value`; negative lo/hi crop."""
    config = tuple((int(lo), int(hi), int(it)) for lo, hi, it in padding_config)
    return pad_p.bind(x, padding_value, padding_config=config)


# --- slice ---------------------------------------------------------------------------------------

slice_p = Primitive("slice")


def _slice_abstract_eval(x: ShapedArray, *, start_indices, limit_indices, strides):
    op = "slice"
    if not len(start_indices) == len(limit_indices) == len(strides) == x.ndim:
        raise ValueError(
            f"{op}: start {start_indices}, limit {limit_indices} and strides {strides} must "
            f"each have one entry per axis of operand {describe(x)}"
        )
    shape = []
    for size, start, limit, stride in zip(x.shape, start_indices, limit_indices, strides):
        if not 0 <= start <= limit <= size or stride < 1:
            raise ValueError(
                f"{op}: invalid slice start={start_indices} limit={limit_indices} "
                f"strides={strides} for operand {describe(x)}"
            )
        shape.append((limit - start + stride - 1) // stride)
    return ShapedArray(tuple(shape), x.dtype, x.weak_type)


def _slice_transpose(ct, x, *, start_indices, limit_indices, strides):
    x_shape = get_aval(x).shape
    ct_shape = get_aval(ct).shape
    config = []
    for size, start, n, stride in zip(x_shape, start_indices, ct_shape, strides):
        used = (n - 1) * stride + 1 if n else 0
        config.append((start, size - start - used, stride - 1) if n else (0, size, 0))
    if any(n == 0 for n in ct_shape):
        from fnbrrr._prims.elementwise import full

        return [full(x_shape, 0, get_aval(ct).dtype)]
    return [pad(ct, _zero_scalar(ct), config)]


def _slice_batch(vals, dims, *, start_indices, limit_indices, strides):
    from fnbrrr.batching import moveaxis

    x = moveaxis(vals[0], dims[0], 0)
    size = get_aval(x).shape[0]
    return slice(x, (0, *start_indices), (size, *limit_indices), (1, *strides)), 0


slice_p.impl = lambda x, *, start_indices, limit_indices, strides: x[tuple(
    np.s_[s:lim:st] for s, lim, st in zip(start_indices, limit_indices, strides))]
slice_p.abstract_eval = _slice_abstract_eval
slice_p.batch = _slice_batch
deflinear(slice_p, _slice_transpose)


def slice(x, start_indices: Sequence[int], limit_indices: Sequence[int], strides=None):  # noqa: A001
    """The static slice x[start:limit:stride] on every axis."""
    start = tuple(int(s) for s in start_indices)
    limit = tuple(int(s) for s in limit_indices)
    strides = (1,) * len(start) if strides is None else tuple(int(s) for s in strides)
    if start == (0,) * len(start) and limit == get_aval(x).shape and set(strides) <= {1}:
        return x
    return slice_p.bind(x, start_indices=start, limit_indices=limit, strides=strides)


# --- rev -----------------------------------------------------------------------------------------

rev_p = Primitive("rev")


def _rev_abstract_eval(x: ShapedArray, *, dimensions):
    check_axes("rev", dimensions, x.ndim, x)
    return x


def _rev_batch(vals, dims, *, dimensions):
    from fnbrrr.batching import moveaxis

    x = moveaxis(vals[0], dims[0], 0)
    return rev(x, tuple(d + 1 for d in dimensions)), 0


rev_p.impl = lambda x, *, dimensions: np.flip(x, dimensions) if dimensions else x
rev_p.abstract_eval = _rev_abstract_eval
rev_p.batch = _rev_batch
deflinear(rev_p, lambda ct, x, *, dimensions: [rev(ct, dimensions)])


def rev(x, dimensions: Sequence[int]):
    """Reverse `x` along `dimensions`."""
    dimensions = tuple(int(d) for d in dimensions)
    return rev_p.bind(x, dimensions=dimensions) if dimensions else x


# --- iota ----------------------------------------------------------------------------------------

iota_p = Primitive("iota")


def _iota_impl(*, dtype, shape, dimension):
    index = np.arange(shape[dimension], dtype=dtype)
    view = [1] * len(shape)
    view[dimension] = shape[dimension]
    return np.broadcast_to(index.reshape(view), shape)


def _iota_abstract_eval(*, dtype, shape, dimension):
    if not 0 <= dimension < len(shape):
        raise ValueError(f"iota: dimension {dimension} out of range for shape {shape}")
    if np.dtype(dtype).kind not in "iuf":
        raise TypeError(f"iota: dtype must be numeric, got {np.dtype(dtype).name}")
    return ShapedArray(tuple(shape), np.dtype(dtype), False)


iota_p.impl = _iota_impl
iota_p.abstract_eval = _iota_abstract_eval
defnondiff(iota_p)


def broadcasted_iota(dtype, shape: Sequence[int], dimension: int):
    """An array of `shape` whose value is its index along `dimension`."""
    return iota_p.bind(dtype=np.dtype(dtype), shape=tuple(int(s) for s in shape),
                       dimension=int(dimension))


def iota(dtype, size: int):
    """[0, 1, ..., size-1] of `dtype`."""
    return broadcasted_iota(dtype, (int(size),), 0)

