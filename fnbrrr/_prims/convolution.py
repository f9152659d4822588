"""Convolutions: `conv_general_dilated` and the user-facing `conv`, `conv_transpose`,
`conv_nhwc` built on it.

Convolution, in the canonical layout (lhs `N C X...`, rhs `O I K...`, out `N O Y...`):

    out[n, o, y] = sum_{c, k} lhs_padded[n, g*I + c, y*stride + k*rhs_dilation] * rhs[o, c, k]

where `lhs_padded` is lhs with `lhs_dilation - 1` zeros between elements and
`padding` (lo, hi) zeros around (negative padding crops), and `g = o // (O / groups)` picks
the feature group. `dimension_numbers` (a `ConvDimensionNumbers` of axis indices) says where
the batch, feature and spatial axes of each operand live, so one primitive serves NCHW, NHWC
and the role-swapped convolutions that its own derivative rules produce. The derivatives are
convolutions again (JAX's formulation): w.r.t. lhs, the cotangent convolved with the flipped
kernel (its lhs dilated by the forward strides); w.r.t. rhs, lhs convolved with the
cotangent (batch and feature roles swapped). `batch_group_count` exists for the latter.

The windowed reductions and pooling live in `pooling.py` (re-exported here), the window
arithmetic both families share in `windowing.py`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from fnbrrr._prims.common import all_weak, check_dtype_kind, check_same_dtype, describe
from fnbrrr._prims.elementwise import convert_element_type
from fnbrrr._prims.pooling import (  # the family's public names stay importable from here
    avg_pool,
    max_pool,
    reduce_window,
    select_and_gather_add_p,
    select_and_scatter_add_p,
    window_max_p,
    window_sum_p,
)
from fnbrrr._prims.shape import reshape, rev
from fnbrrr._prims.windowing import (
    dilate_and_pad,
    dilate_dim,
    explicit_padding,
    padtype_to_pads,
    window_output_size,
    window_view,
)
from fnbrrr.ad_util import defjvp
from fnbrrr.core import Primitive, ShapedArray, get_aval

# --------------------------------------------------------------------------------------------
# Dimension numbers and padding
# --------------------------------------------------------------------------------------------


class ConvDimensionNumbers(NamedTuple):
    """Where each role lives: `lhs_spec = (batch, feature, *spatial)` axes of lhs,
    `rhs_spec = (out feature, in feature, *spatial)` of rhs, `out_spec = (batch, feature,
    *spatial)` of the output. Spatial axes pair up in order across the three.

    Example:
        >>> conv_dimension_numbers((1, 5, 5, 3), (3, 3, 3, 8), ("NHWC", "HWIO", "NHWC"))
        ConvDimensionNumbers(lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2))
    """

    lhs_spec: tuple[int, ...]
    rhs_spec: tuple[int, ...]
    out_spec: tuple[int, ...]


def conv_dimension_numbers(lhs_shape: Sequence[int], rhs_shape: Sequence[int],
                           dimension_numbers) -> ConvDimensionNumbers:
    """Normalise `dimension_numbers` (None, three layout strings, or ConvDimensionNumbers).

    Args:
      lhs_shape, rhs_shape: the operands' shapes (for their rank).
      dimension_numbers: None (NCHW/OIHW/NCHW and their N-D analogues), a tuple of three
        strings such as `("NHWC", "HWIO", "NHWC")` (`N` batch, `C` feature, `O`/`I` out/in
        feature, any other letters spatial; spatial axes pair up in the order the rhs string
        lists them), or a `ConvDimensionNumbers` of axis indices.

    Returns:
      A `ConvDimensionNumbers` of axis indices.

    Example:
        >>> conv_dimension_numbers((8, 3, 5, 5), (4, 3, 3, 3), None).lhs_spec
        (0, 1, 2, 3)
    """
    ndim = len(lhs_shape)
    if len(rhs_shape) != ndim:
        raise TypeError(
            f"conv_general_dilated: lhs and rhs must have the same rank, got shapes "
            f"{tuple(lhs_shape)} and {tuple(rhs_shape)}")
    if dimension_numbers is None:
        spec = tuple(range(ndim))
        return ConvDimensionNumbers(spec, spec, spec)
    if isinstance(dimension_numbers, ConvDimensionNumbers):
        return dimension_numbers
    if len(dimension_numbers) != 3:
        raise TypeError(f"conv_general_dilated: dimension_numbers must have three entries "
                        f"(lhs, rhs, out), got {dimension_numbers!r}")
    if all(isinstance(s, str) for s in dimension_numbers):
        return _specs_from_strings(*dimension_numbers, ndim)
    return ConvDimensionNumbers(*(tuple(int(a) for a in s) for s in dimension_numbers))


def _specs_from_strings(lhs: str, rhs: str, out: str, ndim: int) -> ConvDimensionNumbers:
    for name, spec, pair in (("lhs", lhs, "NC"), ("rhs", rhs, "OI"), ("out", out, "NC")):
        if len(spec) != ndim or len(set(spec)) != ndim or not set(pair) <= set(spec):
            raise TypeError(
                f"conv_general_dilated: {name} layout {spec!r} must name {ndim} distinct axes "
                f"(the operands' rank), including {pair[0]!r} and {pair[1]!r}")
    spatial = [c for c in rhs if c not in "OI"]
    if {c for c in lhs if c not in "NC"} != set(spatial) or (
            {c for c in out if c not in "NC"} != set(spatial)):
        raise TypeError(f"conv_general_dilated: layouts {lhs!r}, {rhs!r}, {out!r} must name "
                        "the same spatial axes")

    def spec(layout: str, batch: str, feature: str) -> tuple[int, ...]:
        return (layout.index(batch), layout.index(feature),
                *(layout.index(c) for c in spatial))

    return ConvDimensionNumbers(spec(lhs, "N", "C"), spec(rhs, "O", "I"), spec(out, "N", "C"))


# --------------------------------------------------------------------------------------------
# conv_general_dilated
# --------------------------------------------------------------------------------------------

conv_general_dilated_p = Primitive("conv_general_dilated")


def _conv_impl(lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
               dimension_numbers, feature_group_count, batch_group_count):
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    x = np.transpose(lhs, lhs_spec)  # N C X...
    w = np.transpose(rhs, rhs_spec)  # O I K...
    xp = dilate_and_pad(x, 0, 2, lhs_dilation, padding)
    windows = window_view(xp, 2, w.shape[2:], window_strides, rhs_dilation)  # N C Y... K...
    n, c = x.shape[:2]
    o, i = w.shape[:2]
    out_spatial = windows.shape[2:2 + len(window_strides)]
    p, k = math.prod(out_spatial), math.prod(w.shape[2:])
    groups = feature_group_count * batch_group_count
    if batch_group_count > 1:  # (G, N/G, C, P, K): group g takes a slice of the batch
        cols = windows.reshape(groups, n // groups, c, p, k).transpose(0, 1, 3, 2, 4)
        n_out = n // groups
    else:  # (G, N, C/G, P, K): group g takes a slice of the features
        cols = windows.reshape(n, groups, c // groups, p, k).transpose(1, 0, 3, 2, 4)
        n_out = n
    cols = cols.reshape(groups, n_out * p, i * k)
    kernel = w.reshape(groups, o // groups, i * k).transpose(0, 2, 1)
    out = np.matmul(cols, kernel)  # G, N*P, O/G
    out = out.reshape(groups, n_out, p, o // groups).transpose(1, 0, 3, 2)
    out = out.reshape((n_out, o) + out_spatial).astype(lhs.dtype, copy=False)
    return np.transpose(out, np.argsort(out_spec))


def _check_spec(op: str, name: str, spec, ndim: int) -> None:
    if sorted(spec) != list(range(ndim)):
        raise ValueError(f"{op}: {name} {tuple(spec)} must be a permutation of the "
                         f"{ndim} axes of the operands")


def _check_conv_params(op, lhs, rhs, dims, window_strides, padding, lhs_dilation, rhs_dilation,
                       feature_group_count, batch_group_count) -> int:
    check_same_dtype(op, lhs, rhs)
    check_dtype_kind(op, lhs, "fiu", "a numeric dtype")
    if lhs.ndim != rhs.ndim or lhs.ndim < 2:
        raise TypeError(f"{op}: lhs and rhs must have the same rank (at least 2: batch and "
                        f"feature axes), got {describe(lhs, rhs)}")
    for name, spec in zip(("lhs_spec", "rhs_spec", "out_spec"), dims):
        _check_spec(op, name, spec, lhs.ndim)
    nsp = lhs.ndim - 2
    for name, values in (("window_strides", window_strides), ("padding", padding),
                         ("lhs_dilation", lhs_dilation), ("rhs_dilation", rhs_dilation)):
        if len(values) != nsp:
            raise ValueError(f"{op}: {name} {tuple(values)} must have one entry per spatial "
                             f"axis ({nsp}) of operands {describe(lhs, rhs)}")
    for name, values in (("window_strides", window_strides), ("lhs_dilation", lhs_dilation),
                         ("rhs_dilation", rhs_dilation)):
        if any(v < 1 for v in values):
            raise ValueError(f"{op}: {name} must be positive, got {tuple(values)}")
    if feature_group_count < 1 or batch_group_count < 1:
        raise ValueError(f"{op}: feature_group_count ({feature_group_count}) and "
                         f"batch_group_count ({batch_group_count}) must be positive")
    if feature_group_count > 1 and batch_group_count > 1:
        raise ValueError(f"{op}: at most one of feature_group_count ({feature_group_count}) "
                         f"and batch_group_count ({batch_group_count}) may exceed 1")
    return nsp


def _check_features(op, lhs, rhs, dims, feature_group_count, batch_group_count) -> None:
    (lb, lf, *_), (ro, ri, *_), _ = dims
    n, c, o, i = lhs.shape[lb], lhs.shape[lf], rhs.shape[ro], rhs.shape[ri]
    operands = describe(lhs, rhs)
    if c % feature_group_count or c // feature_group_count != i:
        groups = f" / feature_group_count {feature_group_count}" if feature_group_count > 1 else ""
        raise TypeError(
            f"{op}: channel mismatch: lhs has {c} input features (axis {lf}){groups}, but rhs "
            f"expects {i} (its in-feature axis {ri}); operands {operands}. Check "
            "dimension_numbers (the default is NCHW / OIHW / NCHW).")
    groups = feature_group_count * batch_group_count
    if o % groups:
        raise TypeError(f"{op}: rhs out-feature size {o} (axis {ro}) must be divisible by the "
                        f"group count {groups}; operands {operands}")
    if n % batch_group_count:
        raise TypeError(f"{op}: lhs batch size {n} (axis {lb}) must be divisible by "
                        f"batch_group_count {batch_group_count}; operands {operands}")


def _conv_abstract_eval(lhs: ShapedArray, rhs: ShapedArray, *, window_strides, padding,
                        lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count,
                        batch_group_count):
    op = "conv_general_dilated"
    dims = dimension_numbers
    nsp = _check_conv_params(op, lhs, rhs, dims, window_strides, padding, lhs_dilation,
                             rhs_dilation, feature_group_count, batch_group_count)
    _check_features(op, lhs, rhs, dims, feature_group_count, batch_group_count)
    lhs_spec, rhs_spec, out_spec = dims
    shape = [0] * lhs.ndim
    shape[out_spec[0]] = lhs.shape[lhs_spec[0]] // batch_group_count
    shape[out_spec[1]] = rhs.shape[rhs_spec[0]]
    for j in range(nsp):
        size, window = lhs.shape[lhs_spec[2 + j]], rhs.shape[rhs_spec[2 + j]]
        lo, hi = padding[j]
        out = window_output_size(size, lo, hi, lhs_dilation[j], window, rhs_dilation[j],
                                  window_strides[j])
        if out < 1:
            raise ValueError(
                f"{op}: on spatial axis {j} the kernel (size {window}, dilated to "
                f"{dilate_dim(window, rhs_dilation[j])}) is larger than the padded input "
                f"(size {size}, dilated to {dilate_dim(size, lhs_dilation[j])}, padding "
                f"{(lo, hi)}); operands {describe(lhs, rhs)}. Pad the input (padding='SAME') "
                "or use a smaller kernel.")
        shape[out_spec[2 + j]] = out
    return ShapedArray(tuple(shape), lhs.dtype, all_weak(lhs, rhs))


def _swap_roles(spec: tuple) -> tuple:
    """(a, b, *spatial) -> (b, a, *spatial): the batch and feature roles trade places."""
    return (spec[1], spec[0], *spec[2:])


def _split_axis(x, axis: int, sizes: Sequence[int]):
    """Reshape `axis` of `x` into several axes of `sizes` (row-major)."""
    shape = get_aval(x).shape
    return reshape(x, shape[:axis] + tuple(sizes) + shape[axis + 1:])


def _merge_axes(x, axis: int, count: int):
    """Reshape `count` consecutive axes starting at `axis` into one (row-major)."""
    shape = get_aval(x).shape
    merged = math.prod(shape[axis:axis + count])
    return reshape(x, shape[:axis] + (merged,) + shape[axis + count:])


def _move_axis(x, src: int, dst: int):
    from fnbrrr.batching import moveaxis

    return moveaxis(x, src, dst)


def _group_major_into(x, src: int, dst: int, groups: int):
    """Split axis `src` into (groups, m) and merge `groups` into axis `dst` as its major part.

    Axis numbers refer to `x`; the result has one axis fewer than `x` has after the split,
    i.e. the same rank as `x`.
    """
    m = get_aval(x).shape[src] // groups
    x = _split_axis(x, src, (groups, m))  # groups at src, m at src + 1
    dst_after = dst + (dst > src)  # dst's index after the split
    x = _move_axis(x, src, dst_after - (dst_after > src))  # groups right before dst
    pos = dst_after - (dst_after > src)
    return _merge_axes(x, pos, 2)


def _conv_transpose_lhs(ct, lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
                        dimension_numbers, feature_group_count, batch_group_count):
    """Cotangent of lhs: the cotangent convolved with the flipped kernel, roles swapped."""
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    lhs_aval = get_aval(lhs)
    groups = feature_group_count * batch_group_count
    if groups > 1:  # each group's out features become the transposed kernel's in features
        rhs = _group_major_into(rhs, rhs_spec[0], rhs_spec[1], groups)
    rhs_shape = get_aval(rhs).shape
    nsp = len(window_strides)
    pads = []
    for j in range(nsp):
        dilated_in = dilate_dim(lhs_aval.shape[lhs_spec[2 + j]], lhs_dilation[j])
        dilated_k = dilate_dim(rhs_shape[rhs_spec[2 + j]], rhs_dilation[j])
        dilated_out = dilate_dim(get_aval(ct).shape[out_spec[2 + j]], window_strides[j])
        lo = dilated_k - 1 - padding[j][0]
        pads.append((lo, dilated_in + dilated_k - 1 - dilated_out - lo))
    flipped = rev(rhs, tuple(rhs_spec[2:]))
    dims = ConvDimensionNumbers(out_spec, _swap_roles(rhs_spec), lhs_spec)
    out = conv_general_dilated_p.bind(
        ct, flipped, window_strides=tuple(lhs_dilation), padding=tuple(pads),
        lhs_dilation=tuple(window_strides), rhs_dilation=tuple(rhs_dilation),
        dimension_numbers=dims, feature_group_count=groups, batch_group_count=1)
    if batch_group_count > 1:  # the groups came out as features; they belong to the batch
        out = _group_major_into(out, lhs_spec[1], lhs_spec[0], batch_group_count)
    assert get_aval(out).shape == lhs_aval.shape, (get_aval(out), lhs_aval)
    return out


def _conv_transpose_rhs(ct, lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
                        dimension_numbers, feature_group_count, batch_group_count):
    """Cotangent of rhs: lhs convolved with the cotangent, batch and feature roles swapped."""
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    lhs_aval, rhs_aval, ct_aval = get_aval(lhs), get_aval(rhs), get_aval(ct)
    pads = []
    for j in range(len(window_strides)):
        dilated_in = dilate_dim(lhs_aval.shape[lhs_spec[2 + j]], lhs_dilation[j])
        dilated_k = dilate_dim(rhs_aval.shape[rhs_spec[2 + j]], rhs_dilation[j])
        dilated_out = dilate_dim(ct_aval.shape[out_spec[2 + j]], window_strides[j])
        lo = padding[j][0]
        pads.append((lo, dilated_out - dilated_in + dilated_k - lo - 1))
    dims = ConvDimensionNumbers(_swap_roles(lhs_spec), _swap_roles(out_spec),
                                _swap_roles(rhs_spec))
    # feature groups of the forward pass become batch groups here, and vice versa
    out = conv_general_dilated_p.bind(
        lhs, ct, window_strides=tuple(rhs_dilation), padding=tuple(pads),
        lhs_dilation=tuple(lhs_dilation), rhs_dilation=tuple(window_strides),
        dimension_numbers=dims, feature_group_count=batch_group_count,
        batch_group_count=feature_group_count)
    assert get_aval(out).shape == rhs_aval.shape, (get_aval(out), rhs_aval)
    return out


def _conv_vjp(ct, ans, lhs, rhs, **params):
    return [_conv_transpose_lhs(ct, lhs, rhs, **params),
            _conv_transpose_rhs(ct, lhs, rhs, **params)]


def _fold_batch(x, bdim: int, axis: int, groups: int):
    """Merge vmap's batch axis `bdim` of `x` into `axis` (an axis of the unbatched value).

    The merged axis is laid out (groups, batch, rest): within each of `groups` contiguous
    groups, the examples are major, so a grouped convolution still sees whole groups.
    """
    x = _move_axis(x, bdim, 0)  # axis `axis` of the example is now axis + 1
    size = get_aval(x).shape[axis + 1]
    x = _split_axis(x, axis + 1, (groups, size // groups))  # (B, ..., groups, rest, ...)
    x = _move_axis(x, 0, axis + 1)  # (..., groups, B, rest, ...)
    return _merge_axes(x, axis, 3)


def _unfold_batch(y, axis: int, groups: int, size: int):
    """Split the (groups, batch, rest) axis `axis` of `y`; returns (value, batch dim 0)."""
    n = get_aval(y).shape[axis]
    y = _split_axis(y, axis, (groups, size, n // (groups * size)))
    y = _move_axis(y, axis + 1, 0)  # (B, ..., groups, rest, ...)
    return _merge_axes(y, axis + 1, 2), 0


def _conv_batch(vals, dims, *, dimension_numbers, feature_group_count, batch_group_count,
                **params):
    """vmap: fold the mapped axis into the batch axis (lhs mapped), the out-feature axis (rhs
    mapped), or into feature groups (both mapped): one convolution, no loop."""
    (lhs, rhs), (dl, dr) = vals, dims
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    size = get_aval(lhs).shape[dl] if dl is not None else get_aval(rhs).shape[dr]
    fgc, bgc = feature_group_count, batch_group_count
    if dl is not None and dr is not None:
        if bgc == 1:  # examples become feature groups
            lhs = _fold_batch(lhs, dl, lhs_spec[1], 1)
            fgc *= size
        else:  # examples become more batch groups
            lhs = _fold_batch(lhs, dl, lhs_spec[0], 1)
            bgc *= size
        rhs = _fold_batch(rhs, dr, rhs_spec[0], 1)
        out = _bind_conv(lhs, rhs, dimension_numbers, fgc, bgc, params)
        return _unfold_batch(out, out_spec[1], 1, size)
    if dl is not None:  # examples join the batch (inside each batch group)
        lhs = _fold_batch(lhs, dl, lhs_spec[0], bgc)
        out = _bind_conv(lhs, rhs, dimension_numbers, fgc, bgc, params)
        return _unfold_batch(out, out_spec[0], 1, size)
    groups = fgc * bgc  # examples join the out features (inside each group)
    rhs = _fold_batch(rhs, dr, rhs_spec[0], groups)
    out = _bind_conv(lhs, rhs, dimension_numbers, fgc, bgc, params)
    return _unfold_batch(out, out_spec[1], groups, size)


def _bind_conv(lhs, rhs, dimension_numbers, fgc, bgc, params):
    return conv_general_dilated_p.bind(lhs, rhs, dimension_numbers=dimension_numbers,
                                       feature_group_count=fgc, batch_group_count=bgc, **params)


conv_general_dilated_p.impl = _conv_impl
conv_general_dilated_p.abstract_eval = _conv_abstract_eval
defjvp(conv_general_dilated_p,
       lambda t, lhs, rhs, **params: conv_general_dilated_p.bind(t, rhs, **params),
       lambda t, lhs, rhs, **params: conv_general_dilated_p.bind(lhs, t, **params))
conv_general_dilated_p.vjp = _conv_vjp
conv_general_dilated_p.batch = _conv_batch


def _tuple_or_ones(values, n: int, name: str) -> tuple[int, ...]:
    if values is None:
        return (1,) * n
    if isinstance(values, (int, np.integer)):
        return (int(values),) * n
    values = tuple(int(v) for v in values)
    if len(values) != n:
        raise ValueError(f"conv_general_dilated: {name} {values} must have one entry per "
                         f"spatial axis ({n})")
    return values


def conv_general_dilated(lhs, rhs, window_strides: Sequence[int], padding,
                         lhs_dilation: Sequence[int] | None = None,
                         rhs_dilation: Sequence[int] | None = None, dimension_numbers=None,
                         feature_group_count: int = 1, batch_group_count: int = 1,
                         precision=None, preferred_element_type=None):
    """General N-D convolution with strides, padding, dilations and groups (lax's).

    Args:
      lhs: the input, e.g. `(N, C, H, W)` in the default layout.
      rhs: the kernel, e.g. `(O, I, KH, KW)` with `I = C / feature_group_count`.
      window_strides: one stride per spatial axis.
      padding: `"VALID"`, `"SAME"`, `"SAME_LOWER"` or one `(low, high)` pair per spatial
        axis (negative values crop).
      lhs_dilation: input dilation per spatial axis (`d - 1` zeros between elements: the
        transpose of a strided convolution); default 1.
      rhs_dilation: kernel (atrous) dilation per spatial axis; default 1.
      dimension_numbers: None (NCHW / OIHW / NCHW), three layout strings such as
        `("NHWC", "HWIO", "NHWC")`, or a `ConvDimensionNumbers`.
      feature_group_count: split the features into this many independent groups
        (depthwise convolution: `C`).
      batch_group_count: split the batch into groups, each convolved with its own slice of
        the out features (used by the kernel gradient of grouped convolutions).
      precision: accepted for compatibility; ignored (float32 math throughout).
      preferred_element_type: the result's dtype (default: the operands').

    Returns:
      The convolution, laid out as the output spec says.

    Raises:
      TypeError: different ranks or dtypes, or a channel mismatch between lhs and rhs.
      ValueError: bad strides/dilations/padding, or a kernel larger than the padded input.

    Example:
        >>> x, w = jnp.ones((1, 1, 4, 4)), jnp.ones((2, 1, 3, 3))
        >>> conv_general_dilated(x, w, (1, 1), "VALID").shape
        (1, 2, 2, 2)
    """
    del precision
    lhs_shape, rhs_shape = get_aval(lhs).shape, get_aval(rhs).shape
    dims = conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers)
    nsp = len(lhs_shape) - 2
    strides = _tuple_or_ones(window_strides, nsp, "window_strides")
    lhs_dilation = _tuple_or_ones(lhs_dilation, nsp, "lhs_dilation")
    rhs_dilation = _tuple_or_ones(rhs_dilation, nsp, "rhs_dilation")
    if isinstance(padding, str):
        in_shape = [lhs_shape[a] for a in dims.lhs_spec[2:]]
        window = [dilate_dim(rhs_shape[a], d) for a, d in zip(dims.rhs_spec[2:], rhs_dilation)]
        padding = padtype_to_pads(in_shape, window, strides, padding)
    out = conv_general_dilated_p.bind(
        lhs, rhs, window_strides=strides,
        padding=explicit_padding(padding, nsp, "conv_general_dilated"),
        lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation, dimension_numbers=dims,
        feature_group_count=int(feature_group_count), batch_group_count=int(batch_group_count))
    if preferred_element_type is not None and np.dtype(preferred_element_type) != get_aval(
            out).dtype:
        out = convert_element_type(out, np.dtype(preferred_element_type))
    return out


def conv(lhs, rhs, window_strides: Sequence[int], padding, precision=None,
         preferred_element_type=None):
    """Convolution in the NCHW / OIHW / NCHW layout, without dilation (lax.conv).

    Example:
        >>> conv(jnp.ones((2, 3, 8, 8)), jnp.ones((4, 3, 3, 3)), (1, 1), "SAME").shape
        (2, 4, 8, 8)
    """
    return conv_general_dilated(lhs, rhs, window_strides, padding, precision=precision,
                                preferred_element_type=preferred_element_type)


def conv_with_general_padding(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                              precision=None, preferred_element_type=None):
    """`conv_general_dilated` in the default layout (lax.conv_with_general_padding)."""
    return conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                precision=precision,
                                preferred_element_type=preferred_element_type)


def conv_transpose(lhs, rhs, strides: Sequence[int], padding, rhs_dilation=None,
                   dimension_numbers=None, transpose_kernel: bool = False, precision=None,
                   preferred_element_type=None):
    """Transposed ("deconvolution") convolution (lax.conv_transpose): the input is dilated by
    `strides` and convolved with stride 1.

    Args:
      lhs: the input; rhs: the kernel.
      strides: the upsampling factor per spatial axis.
      padding: "SAME" (output = input * strides), "VALID", or explicit (low, high) pairs
        applied to the dilated input.
      rhs_dilation: kernel dilation per spatial axis.
      dimension_numbers: as for `conv_general_dilated`; the default is channels-last,
        ("NHWC", "HWIO", "NHWC") and its 1-D/3-D analogues, as in JAX.
      transpose_kernel: flip the kernel spatially and swap its in/out feature axes, which
        makes this the gradient of `conv_general_dilated` with these strides.

    Returns:
      The upsampled convolution.

    Example:
        >>> conv_transpose(jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 5)), (2, 2), "SAME").shape
        (1, 8, 8, 5)
    """
    del precision
    lhs_shape, rhs_shape = get_aval(lhs).shape, get_aval(rhs).shape
    nsp = len(lhs_shape) - 2
    if dimension_numbers is None:
        if not 0 <= nsp <= 3:
            raise ValueError(f"conv_transpose: no default layout for rank {len(lhs_shape)}; "
                             "pass dimension_numbers")
        spatial = "HWD"[:nsp]
        dimension_numbers = ("N" + spatial + "C", spatial + "IO", "N" + spatial + "C")
    dims = conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers)
    strides = _tuple_or_ones(strides, nsp, "strides")
    rhs_dilation = _tuple_or_ones(rhs_dilation, nsp, "rhs_dilation")
    if isinstance(padding, str):
        kernel = [dilate_dim(rhs_shape[a], d) for a, d in zip(dims.rhs_spec[2:], rhs_dilation)]
        padding = [_conv_transpose_padding(k, s, padding) for k, s in zip(kernel, strides)]
    if transpose_kernel:
        rhs = rev(rhs, tuple(dims.rhs_spec[2:]))
        dims = dims._replace(rhs_spec=_swap_roles(dims.rhs_spec))
    return conv_general_dilated(lhs, rhs, (1,) * nsp, padding, lhs_dilation=strides,
                                rhs_dilation=rhs_dilation, dimension_numbers=dims,
                                preferred_element_type=preferred_element_type)


def _conv_transpose_padding(k: int, s: int, padding: str) -> tuple[int, int]:
    """JAX's padding of the dilated input for conv_transpose's "SAME" and "VALID"."""
    mode = padding.upper()
    if mode == "SAME":  # output = input * stride
        total = k + s - 2
        lo = k - 1 if s > k - 1 else -(-total // 2)
    elif mode == "VALID":  # every position a window touches
        total = k + s - 2 + max(k - s, 0)
        lo = k - 1
    else:
        raise ValueError(f"conv_transpose: padding must be 'SAME', 'VALID' or explicit pairs, "
                         f"got {padding!r}")
    return lo, total - lo


def conv_nhwc(inputs, kernel, bias=None, strides: Sequence[int] | None = None,
              padding="SAME", rhs_dilation: Sequence[int] | None = None,
              feature_group_count: int = 1):
    """Channels-last convolution layer math, as flax.linen.Conv applies it.

    Args:
      inputs: `(batch, spatial..., in_features)`.
      kernel: `(spatial..., in_features / feature_group_count, out_features)` (HWIO).
      bias: optional `(out_features,)`, added to every position.
      strides: stride per spatial axis (default 1).
      padding: "SAME" (default), "VALID" or explicit (low, high) pairs.
      rhs_dilation: kernel dilation per spatial axis.
      feature_group_count: feature groups (depthwise: in_features).

    Returns:
      `(batch, spatial_out..., out_features)`.

    Example:
        >>> conv_nhwc(jnp.ones((2, 8, 8, 3)), jnp.ones((3, 3, 3, 4))).shape
        (2, 8, 8, 4)
    """
    ndim = get_aval(inputs).ndim
    spatial = "".join("HWDXYZUV"[j] for j in range(ndim - 2))
    dims = ("N" + spatial + "C", spatial + "IO", "N" + spatial + "C")
    out = conv_general_dilated(inputs, kernel, strides, padding, rhs_dilation=rhs_dilation,
                               dimension_numbers=dims, feature_group_count=feature_group_count)
    if bias is None:
        return out
    from fnbrrr._prims.elementwise import add
    from fnbrrr._prims.shape import broadcast_in_dim

    aval = get_aval(out)
    return add(out, broadcast_in_dim(bias, aval.shape, (aval.ndim - 1,)))


__all__ = [
    "ConvDimensionNumbers", "avg_pool", "conv", "conv_dimension_numbers",
    "conv_general_dilated", "conv_general_dilated_p", "conv_nhwc", "conv_transpose",
    "conv_with_general_padding", "max_pool", "padtype_to_pads", "reduce_window",
    "select_and_gather_add_p", "select_and_scatter_add_p", "window_max_p", "window_sum_p",
]
