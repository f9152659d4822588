"""Window arithmetic shared by convolutions and windowed reductions: padding modes, output
sizes, and the NumPy dilate/pad and strided-window views that their reference impls use."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def dilate_dim(size: int, dilation: int) -> int:
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


def explicit_padding(padding, nsp: int, op: str) -> tuple[tuple[int, int], ...]:
    pairs = tuple((int(lo), int(hi)) for lo, hi in padding)
    if len(pairs) != nsp:
        raise ValueError(f"{op}: padding {padding!r} needs one (low, high) pair per spatial "
                         f"axis ({nsp})")
    return pairs


def window_output_size(size: int, lo: int, hi: int, base_dilation: int, window: int,
                        window_dilation: int, stride: int) -> int:
    """Outputs of a strided window over a dilated, padded axis (negative: does not fit)."""
    span = dilate_dim(size, base_dilation) + lo + hi - dilate_dim(window, window_dilation)
    return span // stride + 1 if span >= 0 else -1


# --------------------------------------------------------------------------------------------
# NumPy helpers shared by the impls: dilate + pad, and strided window views
# --------------------------------------------------------------------------------------------


def dilate_and_pad(x: np.ndarray, fill, first_axis: int, dilation, padding) -> np.ndarray:
    """`x` with `dilation - 1` fills between elements and (lo, hi) fills around (negative
    crops) on the axes from `first_axis` on."""
    lead = x.shape[:first_axis]
    dilated = [dilate_dim(n, d) for n, d in zip(x.shape[first_axis:], dilation)]
    grown = [n + max(lo, 0) + max(hi, 0) for n, (lo, hi) in zip(dilated, padding)]
    out = np.full(lead + tuple(grown), fill, dtype=x.dtype)
    place = tuple(slice(max(lo, 0), max(lo, 0) + n, d)
                  for n, d, (lo, _) in zip(dilated, dilation, padding))
    out[(Ellipsis, *place)] = x
    crop = tuple(slice(max(-lo, 0), g - max(-hi, 0)) for g, (lo, hi) in zip(grown, padding))
    return out[(Ellipsis, *crop)]


def window_view(x: np.ndarray, first_axis: int, window, strides, dilation) -> np.ndarray:
    """A read-only view `x[..., y..., k...]` = x[..., y*stride + k*dilation] over the axes
    from `first_axis` on (window axes appended last)."""
    lead = x.shape[:first_axis]
    spans = [n - dilate_dim(w, d) for n, w, d in zip(x.shape[first_axis:], window, dilation)]
    outs = tuple(s // st + 1 for s, st in zip(spans, strides))
    byte_strides = x.strides[first_axis:]
    shape = lead + outs + tuple(window)
    strides = (x.strides[:first_axis] + tuple(b * s for b, s in zip(byte_strides, strides))
               + tuple(b * d for b, d in zip(byte_strides, dilation)))
    return np.lib.stride_tricks.as_strided(x, shape, strides, writeable=False)
