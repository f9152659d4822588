"""Convolutions and windowed reductions: `conv_general_dilated`, `window_sum`, `window_max`
(JAX's reduce_window_sum / reduce_window_max), and the two primitives behind max pooling's
derivatives, `select_and_gather_add` and `select_and_scatter_add`.

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

Windowed reductions apply a sum or a max over every window of an operand (pooling):
`window_dimensions`, `window_strides`, `padding`, `base_dilation` and `window_dilation` have
one entry per operand axis. Max pooling's JVP picks the tangent at each window's first
arg-max (`select_and_gather_add`); its VJP adds each cotangent there
(`select_and_scatter_add`), as JAX's select-and-scatter does. Those two are linear in their
first operand and transposes of each other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from fnbrrr._prims.common import all_weak, check_dtype_kind, check_same_dtype, describe
from fnbrrr._prims.elementwise import convert_element_type, div, full
from fnbrrr._prims.shape import pad, reshape, rev
from fnbrrr.ad_util import Zero, defjvp, is_zero
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


def _dilate_dim(size: int, dilation: int) -> int:
    return 0 if size == 0 else 1 + dilation * (size - 1)


def padtype_to_pads(in_shape: Sequence[int], window_shape: Sequence[int],
                    window_strides: Sequence[int], padding: str) -> list[tuple[int, int]]:
    """Explicit (lo, hi) pads for `"VALID"`, `"SAME"` or `"SAME_LOWER"` (lax.padtype_to_pads).

    SAME gives `ceil(in / stride)` outputs; an odd total goes to the high side (SAME_LOWER:
    the low side).

    Example:
        >>> padtype_to_pads((5, 5), (3, 3), (1, 1), "SAME")
        [(1, 1), (1, 1)]
    """
    mode = padding.upper()
    if mode == "VALID":
        return [(0, 0)] * len(in_shape)
    if mode not in ("SAME", "SAME_LOWER"):
        raise ValueError(f"padding must be 'SAME', 'SAME_LOWER', 'VALID' or a sequence of "
                         f"(low, high) pairs, got {padding!r}")
    pads = []
    for n, w, s in zip(in_shape, window_shape, window_strides):
        total = max(0, (-(-n // s) - 1) * s + w - n)
        small, big = total // 2, total - total // 2
        pads.append((small, big) if mode == "SAME" else (big, small))
    return pads


def _explicit_padding(padding, nsp: int, op: str) -> tuple[tuple[int, int], ...]:
    pairs = tuple((int(lo), int(hi)) for lo, hi in padding)
    if len(pairs) != nsp:
        raise ValueError(f"{op}: padding {padding!r} needs one (low, high) pair per spatial "
                         f"axis ({nsp})")
    return pairs


def _window_output_size(size: int, lo: int, hi: int, base_dilation: int, window: int,
                        window_dilation: int, stride: int) -> int:
    """Outputs of a strided window over a dilated, padded axis (negative: does not fit)."""
    span = _dilate_dim(size, base_dilation) + lo + hi - _dilate_dim(window, window_dilation)
    return span // stride + 1 if span >= 0 else -1


# --------------------------------------------------------------------------------------------
# NumPy helpers shared by the impls: dilate + pad, and strided window views
# --------------------------------------------------------------------------------------------


def _dilate_and_pad(x: np.ndarray, fill, first_axis: int, dilation, padding) -> np.ndarray:
    """`x` with `dilation - 1` fills between elements and (lo, hi) fills around (negative
    crops) on the axes from `first_axis` on."""
    lead = x.shape[:first_axis]
    dilated = [_dilate_dim(n, d) for n, d in zip(x.shape[first_axis:], dilation)]
    grown = [n + max(lo, 0) + max(hi, 0) for n, (lo, hi) in zip(dilated, padding)]
    out = np.full(lead + tuple(grown), fill, dtype=x.dtype)
    place = tuple(slice(max(lo, 0), max(lo, 0) + n, d)
                  for n, d, (lo, _) in zip(dilated, dilation, padding))
    out[(Ellipsis, *place)] = x
    crop = tuple(slice(max(-lo, 0), g - max(-hi, 0)) for g, (lo, hi) in zip(grown, padding))
    return out[(Ellipsis, *crop)]


def _window_view(x: np.ndarray, first_axis: int, window, strides, dilation) -> np.ndarray:
    """A read-only view `x[..., y..., k...]` = x[..., y*stride + k*dilation] over the axes
    from `first_axis` on (window axes appended last)."""
    lead = x.shape[:first_axis]
    spans = [n - _dilate_dim(w, d) for n, w, d in zip(x.shape[first_axis:], window, dilation)]
    outs = tuple(s // st + 1 for s, st in zip(spans, strides))
    byte_strides = x.strides[first_axis:]
    shape = lead + outs + tuple(window)
    strides = (x.strides[:first_axis] + tuple(b * s for b, s in zip(byte_strides, strides))
               + tuple(b * d for b, d in zip(byte_strides, dilation)))
    return np.lib.stride_tricks.as_strided(x, shape, strides, writeable=False)


# --------------------------------------------------------------------------------------------
# conv_general_dilated
# --------------------------------------------------------------------------------------------

conv_general_dilated_p = Primitive("conv_general_dilated")


def _conv_impl(lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
               dimension_numbers, feature_group_count, batch_group_count):
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    x = np.transpose(lhs, lhs_spec)  # N C X...
    w = np.transpose(rhs, rhs_spec)  # O I K...
    xp = _dilate_and_pad(x, 0, 2, lhs_dilation, padding)
    windows = _window_view(xp, 2, w.shape[2:], window_strides, rhs_dilation)  # N C Y... K...
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
        out = _window_output_size(size, lo, hi, lhs_dilation[j], window, rhs_dilation[j],
                                  window_strides[j])
        if out < 1:
            raise ValueError(
                f"{op}: on spatial axis {j} the kernel (size {window}, dilated to "
                f"{_dilate_dim(window, rhs_dilation[j])}) is larger than the padded input "
                f"(size {size}, dilated to {_dilate_dim(size, lhs_dilation[j])}, padding "
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
        dilated_in = _dilate_dim(lhs_aval.shape[lhs_spec[2 + j]], lhs_dilation[j])
        dilated_k = _dilate_dim(rhs_shape[rhs_spec[2 + j]], rhs_dilation[j])
        dilated_out = _dilate_dim(get_aval(ct).shape[out_spec[2 + j]], window_strides[j])
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
        dilated_in = _dilate_dim(lhs_aval.shape[lhs_spec[2 + j]], lhs_dilation[j])
        dilated_k = _dilate_dim(rhs_aval.shape[rhs_spec[2 + j]], rhs_dilation[j])
        dilated_out = _dilate_dim(ct_aval.shape[out_spec[2 + j]], window_strides[j])
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
        window = [_dilate_dim(rhs_shape[a], d) for a, d in zip(dims.rhs_spec[2:], rhs_dilation)]
        padding = padtype_to_pads(in_shape, window, strides, padding)
    out = conv_general_dilated_p.bind(
        lhs, rhs, window_strides=strides,
        padding=_explicit_padding(padding, nsp, "conv_general_dilated"),
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
        kernel = [_dilate_dim(rhs_shape[a], d) for a, d in zip(dims.rhs_spec[2:], rhs_dilation)]
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


# --------------------------------------------------------------------------------------------
# Windowed reductions: window_sum, window_max
# --------------------------------------------------------------------------------------------


def _lowest(dtype: np.dtype):
    """The identity of max: -inf, or the smallest integer."""
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _window_params_check(op: str, operand: ShapedArray, window_dimensions, window_strides,
                         padding, base_dilation, window_dilation) -> tuple[int, ...]:
    """Validate window params (one entry per operand axis); returns the output shape."""
    ndim = operand.ndim
    for name, values in (("window_dimensions", window_dimensions),
                         ("window_strides", window_strides), ("padding", padding),
                         ("base_dilation", base_dilation),
                         ("window_dilation", window_dilation)):
        if len(values) != ndim:
            raise ValueError(f"{op}: {name} {tuple(values)} must have one entry per axis of "
                             f"the operand {describe(operand)}")
    for name, values in (("window_dimensions", window_dimensions),
                         ("window_strides", window_strides), ("base_dilation", base_dilation),
                         ("window_dilation", window_dilation)):
        if any(v < 1 for v in values):
            raise ValueError(f"{op}: {name} must be positive, got {tuple(values)}")
    shape = []
    for axis in range(ndim):
        lo, hi = padding[axis]
        out = _window_output_size(operand.shape[axis], lo, hi, base_dilation[axis],
                                  window_dimensions[axis], window_dilation[axis],
                                  window_strides[axis])
        if out < 0 or (out == 0 and operand.shape[axis] > 0):
            raise ValueError(
                f"{op}: on axis {axis} the window (size {window_dimensions[axis]}, dilation "
                f"{window_dilation[axis]}) is larger than the padded operand (size "
                f"{operand.shape[axis]}, padding {(lo, hi)}); operand {describe(operand)}")
        shape.append(max(out, 0))
    return tuple(shape)


def _reduce_window_impl(reducer, fill):
    def impl(x, *, window_dimensions, window_strides, padding, base_dilation, window_dilation):
        xp = _dilate_and_pad(x, fill(x.dtype), 0, base_dilation, padding)
        windows = _window_view(xp, 0, window_dimensions, window_strides, window_dilation)
        axes = tuple(range(x.ndim, 2 * x.ndim))
        return reducer(windows, axis=axes).astype(x.dtype, copy=False)

    return impl


def _reduce_window_abstract_eval(op: str, kinds: str):
    def abstract_eval(x: ShapedArray, **params):
        check_dtype_kind(op, x, kinds, "a numeric dtype")
        shape = _window_params_check(op, x, **params)
        return ShapedArray(shape, x.dtype, x.weak_type)

    return abstract_eval


def _prepend_window_axis(params: dict) -> dict:
    """Params for an operand with a new leading axis that every window covers singly."""
    return dict(window_dimensions=(1, *params["window_dimensions"]),
                window_strides=(1, *params["window_strides"]),
                padding=((0, 0), *params["padding"]),
                base_dilation=(1, *params["base_dilation"]),
                window_dilation=(1, *params["window_dilation"]))


def _window_batch_rule(primitive: Primitive) -> Callable:
    """vmap for the windowed primitives: the mapped axis becomes a leading window axis of 1."""

    def rule(vals, dims, **params):
        from fnbrrr.batching import batch_size, bdim_at_front

        size = batch_size(vals, dims)
        moved = [bdim_at_front(v, d, size) for v, d in zip(vals, dims)]
        return primitive.bind(*moved, **_prepend_window_axis(params)), 0

    rule.__name__ = f"{primitive.name}_batching_rule"
    return rule


window_sum_p = Primitive("window_sum")
window_max_p = Primitive("window_max")


def _reduce_window_sum_transpose(ct, x, *, window_dimensions, window_strides, padding,
                                 base_dilation, window_dilation):
    """Each input element receives the cotangents of every window that contains it: the
    cotangent spread out by the strides (interior padding) and summed over windows again."""
    x_aval = get_aval(x)
    ct_shape = get_aval(ct).shape
    if 0 in ct_shape:
        return [full(x_aval.shape, 0, x_aval.dtype)]
    config = []
    for axis, size in enumerate(x_aval.shape):
        dilated_in = _dilate_dim(size, base_dilation[axis])
        dilated_w = _dilate_dim(window_dimensions[axis], window_dilation[axis])
        dilated_out = _dilate_dim(ct_shape[axis], window_strides[axis])
        lo = dilated_w - 1 - padding[axis][0]
        hi = dilated_in + dilated_w - 1 - dilated_out - lo
        config.append((lo, hi, window_strides[axis] - 1))
    spread = pad(ct, full((), 0, get_aval(ct).dtype), config)
    ones = (1,) * x_aval.ndim
    out = window_sum_p.bind(
        spread, window_dimensions=tuple(window_dimensions), window_strides=tuple(base_dilation),
        padding=((0, 0),) * x_aval.ndim, base_dilation=ones,
        window_dilation=tuple(window_dilation))
    return [out]


def _reduce_window_sum_jvp(primals, tangents, **params):
    (x,), (t,) = primals, tangents
    return window_sum_p.bind(x, **params), window_sum_p.bind(t, **params)


window_sum_p.impl = _reduce_window_impl(np.sum, lambda dtype: 0)
window_sum_p.abstract_eval = _reduce_window_abstract_eval("window_sum", "fiu")
window_sum_p.jvp = _reduce_window_sum_jvp
window_sum_p.vjp = lambda ct, ans, x, **params: _reduce_window_sum_transpose(
    ct, x, **params)
window_sum_p.batch = _window_batch_rule(window_sum_p)


def _reduce_window_max_jvp(primals, tangents, **params):
    (x,), (t,) = primals, tangents
    return window_max_p.bind(x, **params), select_and_gather_add_p.bind(t, x, **params)


window_max_p.impl = _reduce_window_impl(np.max, _lowest)
window_max_p.abstract_eval = _reduce_window_abstract_eval("window_max", "fiu")
window_max_p.jvp = _reduce_window_max_jvp
window_max_p.vjp = lambda ct, ans, x, **params: [
    select_and_scatter_add_p.bind(ct, x, **params)]
window_max_p.batch = _window_batch_rule(window_max_p)

# --------------------------------------------------------------------------------------------
# select_and_gather_add / select_and_scatter_add: max pooling's JVP and VJP
# --------------------------------------------------------------------------------------------

select_and_gather_add_p = Primitive("select_and_gather_add")
select_and_scatter_add_p = Primitive("select_and_scatter_add")


def _window_argmax(operand: np.ndarray, params: dict) -> np.ndarray:
    """Per window, the flat index into `operand` of its first maximum (-1: none)."""
    fill = _lowest(operand.dtype)
    dilation, padding = params["base_dilation"], params["padding"]
    values = _dilate_and_pad(operand, fill, 0, dilation, padding)
    index = _dilate_and_pad(np.arange(operand.size).reshape(operand.shape), -1, 0, dilation,
                            padding)
    window_args = (params["window_dimensions"], params["window_strides"],
                   params["window_dilation"])
    value_windows = _window_view(values, 0, *window_args)
    index_windows = _window_view(index, 0, *window_args)
    out_shape = value_windows.shape[:operand.ndim]
    flat_values = value_windows.reshape(out_shape + (-1,))
    flat_index = index_windows.reshape(out_shape + (-1,))
    # np.argmax picks the first maximum (and the first NaN), like the compiled kernels.
    pick = np.argmax(flat_values, axis=-1)[..., None] if flat_values.shape[-1] else None
    if pick is None:
        return np.full(out_shape, -1, np.int64)
    return np.take_along_axis(flat_index, pick, axis=-1)[..., 0]


def _select_and_gather_add_impl(tangent, operand, **params):
    where = _window_argmax(operand, params)
    flat = tangent.reshape(-1)
    picked = flat[np.maximum(where, 0)] if flat.size else np.zeros(where.shape, tangent.dtype)
    return np.where(where >= 0, picked, np.zeros((), tangent.dtype)).astype(tangent.dtype)


def _select_and_scatter_add_impl(source, operand, **params):
    where = _window_argmax(operand, params)
    out = np.zeros(operand.size, source.dtype)
    keep = where >= 0
    np.add.at(out, where[keep], source[keep])
    return out.reshape(operand.shape)


def _select_abstract_eval(op: str, gather: bool):
    def abstract_eval(values: ShapedArray, operand: ShapedArray, **params):
        check_dtype_kind(op, operand, "fiu", "a numeric dtype")
        out_shape = _window_params_check(op, operand, **params)
        expected = operand.shape if gather else out_shape
        if values.shape != expected:
            what = "the tangent" if gather else "the source"
            raise ValueError(f"{op}: {what} {describe(values)} must have shape {expected} for "
                             f"operand {describe(operand)} and these windows")
        if values.dtype.kind != "f":
            raise TypeError(f"{op}: {describe(values)} must be floating point")
        return ShapedArray(out_shape if gather else operand.shape, values.dtype,
                           values.weak_type)

    return abstract_eval


def _select_jvp(primitive: Primitive):
    def jvp(primals, tangents, **params):
        (values, operand), (t_values, _) = primals, tangents
        ans = primitive.bind(values, operand, **params)
        if is_zero(t_values):
            return ans, Zero.like(ans)
        return ans, primitive.bind(t_values, operand, **params)

    return jvp


select_and_gather_add_p.impl = _select_and_gather_add_impl
select_and_gather_add_p.abstract_eval = _select_abstract_eval("select_and_gather_add", True)
select_and_gather_add_p.jvp = _select_jvp(select_and_gather_add_p)
select_and_gather_add_p.vjp = lambda ct, ans, t, x, **params: [
    select_and_scatter_add_p.bind(ct, x, **params), None]
select_and_gather_add_p.batch = _window_batch_rule(select_and_gather_add_p)

select_and_scatter_add_p.impl = _select_and_scatter_add_impl
select_and_scatter_add_p.abstract_eval = _select_abstract_eval("select_and_scatter_add", False)
select_and_scatter_add_p.jvp = _select_jvp(select_and_scatter_add_p)
select_and_scatter_add_p.vjp = lambda ct, ans, s, x, **params: [
    select_and_gather_add_p.bind(ct, x, **params), None]
select_and_scatter_add_p.batch = _window_batch_rule(select_and_scatter_add_p)


# --------------------------------------------------------------------------------------------
# reduce_window and the pooling helpers
# --------------------------------------------------------------------------------------------


def _window_params(operand, window_dimensions, window_strides, padding, base_dilation,
                   window_dilation, op: str) -> dict:
    shape = get_aval(operand).shape
    ndim = len(shape)
    window = tuple(int(w) for w in window_dimensions)
    strides = tuple(int(s) for s in window_strides)
    base = (1,) * ndim if base_dilation is None else tuple(int(d) for d in base_dilation)
    wdil = (1,) * ndim if window_dilation is None else tuple(int(d) for d in window_dilation)
    if len(window) != ndim or len(strides) != ndim:
        raise ValueError(f"{op}: window_dimensions {window} and window_strides {strides} "
                         f"need one entry per axis of the operand (shape {shape})")
    if isinstance(padding, str):
        dilated_shape = [_dilate_dim(n, d) for n, d in zip(shape, base)]
        dilated_window = [_dilate_dim(w, d) for w, d in zip(window, wdil)]
        padding = padtype_to_pads(dilated_shape, dilated_window, strides, padding)
    return dict(window_dimensions=window, window_strides=strides,
                padding=_explicit_padding(padding, ndim, op), base_dilation=base,
                window_dilation=wdil)


def _known_reducer(computation: Callable) -> str | None:
    """'add', 'max' or 'min' for the lax/numpy functions that reduce_window recognises."""
    import fnbrrr.numpy as jnp
    from fnbrrr._prims import elementwise

    table = {elementwise.add: "add", elementwise.max: "max", elementwise.min: "min",
             jnp.add: "add", jnp.maximum: "max", jnp.minimum: "min"}
    for fn, name in table.items():
        if computation is fn:
            return name
    return None


def reduce_window(operand, init_value, computation: Callable, window_dimensions: Sequence[int],
                  window_strides: Sequence[int], padding,
                  base_dilation: Sequence[int] | None = None,
                  window_dilation: Sequence[int] | None = None):
    """Reduce every window of `operand` with `computation` (lax.reduce_window).

    Supported computations: `lax.add` (with `init_value` 0), `lax.max` and `lax.min` (any
    `init_value`; -inf / +inf are their identities), and their `fnbrrr.numpy` twins
    `add`, `maximum`, `minimum`. Padding cells hold `init_value`'s identity.

    Args:
      operand: the array.
      init_value: the reduction's starting value (a scalar).
      computation: the binary reduction (see above).
      window_dimensions: window size per axis of the operand (1 for batch/feature axes).
      window_strides: stride per axis.
      padding: "VALID", "SAME" or one (low, high) pair per axis.
      base_dilation: operand dilation per axis (default 1).
      window_dilation: window dilation per axis (default 1).

    Returns:
      The reduced windows, one per output position.

    Raises:
      NotImplementedError: for other computations, or `add` with a non-zero init_value.

    Example:
        >>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)
        >>> reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")[0, :, :, 0]
        Array([[ 5.,  7.],
               [13., 15.]], dtype=float32)
    """
    kind = _known_reducer(computation)
    params = _window_params(operand, window_dimensions, window_strides, padding, base_dilation,
                            window_dilation, "reduce_window")
    concrete_init = _concrete_scalar(init_value)
    if kind == "add":
        if concrete_init is None or concrete_init != 0:
            raise NotImplementedError(
                "reduce_window with lax.add supports init_value 0 only (got "
                f"{init_value!r}); add the constant to the result instead")
        return window_sum_p.bind(operand, **params)
    if kind == "max":
        out = window_max_p.bind(operand, **params)
        return _combine_init(out, init_value, concrete_init, -np.inf, _max_scalar)
    if kind == "min":
        from fnbrrr._prims.elementwise import neg

        out = neg(window_max_p.bind(neg(operand), **params))
        return _combine_init(out, init_value, concrete_init, np.inf, _min_scalar)
    raise NotImplementedError(
        f"reduce_window supports the computations lax.add, lax.max and lax.min (and "
        f"fnbrrr.numpy's add, maximum, minimum), got {computation!r}")


def _concrete_scalar(value):
    """The Python value of a concrete scalar, or None for traced values."""
    from fnbrrr.core import concrete_or_error, is_concrete

    if not is_concrete(value):
        return None
    array = np.asarray(concrete_or_error(value, "reduce_window init_value"))
    return array.item() if array.size == 1 else None


def _max_scalar(a, b):
    from fnbrrr._prims.elementwise import max as lax_max

    return lax_max(a, b)


def _min_scalar(a, b):
    from fnbrrr._prims.elementwise import min as lax_min

    return lax_min(a, b)


def _combine_init(out, init, concrete_init, identity: float, combine: Callable):
    """max/min are idempotent: combining init once equals seeding every window with it."""
    if concrete_init is not None and concrete_init == identity:
        return out
    from fnbrrr._prims.shape import broadcast_in_dim

    aval = get_aval(out)
    init = convert_element_type(init, aval.dtype) if get_aval(init).dtype != aval.dtype else init
    return combine(out, broadcast_in_dim(init, aval.shape, ()))


def _pool_params(inputs, window_shape, strides, padding, op: str) -> dict:
    """Window params for a (batch..., spatial..., features) input (batch axes optional)."""
    shape = get_aval(inputs).shape
    window_shape = tuple(int(w) for w in window_shape)
    nsp = len(window_shape)
    if len(shape) < nsp + 1:
        raise ValueError(f"{op}: inputs of shape {shape} need at least {nsp + 1} axes "
                         f"(spatial axes for window_shape {window_shape}, then features)")
    strides = (1,) * nsp if strides is None else tuple(int(s) for s in strides)
    if len(strides) != nsp:
        raise ValueError(f"{op}: strides {strides} must match window_shape {window_shape}")
    lead = len(shape) - nsp - 1
    window = (1,) * lead + window_shape + (1,)
    all_strides = (1,) * lead + strides + (1,)
    if not isinstance(padding, str):
        padding = tuple((int(lo), int(hi)) for lo, hi in padding)
        if len(padding) != nsp:
            raise ValueError(f"{op}: padding {padding} needs one pair per spatial axis ({nsp})")
        padding = ((0, 0),) * lead + padding + ((0, 0),)
    return _window_params(inputs, window, all_strides, padding, None, None, op)


def max_pool(inputs, window_shape: Sequence[int], strides: Sequence[int] | None = None,
             padding="VALID"):
    """Max pooling over the spatial axes of channels-last `inputs` (flax.linen.max_pool).

    Args:
      inputs: `(batch..., spatial..., features)`; the spatial axes are the `len(window_shape)`
        axes before the last one.
      window_shape: window size per spatial axis, e.g. `(2, 2)`.
      strides: stride per spatial axis (default 1).
      padding: "VALID", "SAME" or one (low, high) pair per spatial axis; padded cells never
        win the max.

    Returns:
      The pooled array. Gradients flow to each window's first maximum (as in JAX).

    Example:
        >>> max_pool(jnp.ones((8, 28, 28, 16)), (2, 2), strides=(2, 2)).shape
        (8, 14, 14, 16)
    """
    params = _pool_params(inputs, window_shape, strides, padding, "max_pool")
    return window_max_p.bind(inputs, **params)


def avg_pool(inputs, window_shape: Sequence[int], strides: Sequence[int] | None = None,
             padding="VALID", count_include_pad: bool = True):
    """Average pooling over the spatial axes of channels-last `inputs` (flax.linen.avg_pool).

    Args:
      inputs: `(batch..., spatial..., features)`.
      window_shape: window size per spatial axis.
      strides: stride per spatial axis (default 1).
      padding: "VALID", "SAME" or one (low, high) pair per spatial axis.
      count_include_pad: divide by the full window size (True) or by the number of
        non-padding cells of each window (False).

    Returns:
      The pooled array, `reduce_window` sum divided by the count.

    Example:
        >>> avg_pool(jnp.ones((8, 28, 28, 16)), (2, 2), strides=(2, 2)).shape
        (8, 14, 14, 16)
    """
    params = _pool_params(inputs, window_shape, strides, padding, "avg_pool")
    aval = get_aval(inputs)
    if aval.dtype.kind != "f":
        raise TypeError(f"avg_pool: inputs must be floating point, got {describe(aval)}")
    sums = window_sum_p.bind(inputs, **params)
    if count_include_pad:
        count = full((), math.prod(params["window_dimensions"]), aval.dtype)
        from fnbrrr._prims.shape import broadcast_in_dim

        return div(sums, broadcast_in_dim(count, get_aval(sums).shape, ()))
    counts = window_sum_p.bind(full(aval.shape, 1, aval.dtype), **params)
    return div(sums, counts)


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
