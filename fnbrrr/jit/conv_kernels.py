"""Numba emitters for convolutions and windowed reductions (`CONV_KERNELS`).

A convolution becomes matrix products through BLAS (PERF.md fact 6), in one of three ways,
picked per equation by a cost model (GEMM FLOPs plus the elements of a scratch matrix):

* **im2col** (forward passes, kernel gradients): copy the input windows into a scratch matrix
  `cols` (rows: the kernel's in-feature/spatial axes in the kernel's memory order; columns:
  output positions), then one GEMM per image — or one for all images when the output layout
  allows — multiplies the kernel by it. A kernel whose out-feature axis is not outermost is
  consumed in chunks, one accumulating GEMM each, so the kernel gradient (whose "kernel" is the
  large cotangent) needs no copy. `cols` is laid out so that the copy's innermost index runs
  along the input's contiguous axis.
* **gemm_gather** (input gradients: convolutions of a padded, dilated cotangent): multiply
  first, `T[(o, k), x] = sum_c W[o, c, k] * lhs[c, x]` over the *undilated* input positions,
  then add `T` up along the windows, `out[o, y] = sum_k T[(o, k), x(y, k)]`. This skips the
  zeros that padding and dilation would put into an im2col matrix.
* **direct** loops: integer dtypes, tiny problems, no BLAS, or more than 3 spatial axes.

The loops live in precompiled helpers below (the emitted program itself only calls them and
BLAS). They take their geometry (sizes, strides, padding) as an int64 array at run time, with
1-D and 2-D problems padded to 3 spatial axes of size 1 (pooling: rank 6), so one compiled
helper serves every shape. Programs call them through C function pointers: each helper has a
`numba.cfunc(cache=True)` wrapper per dtype, compiled once per machine, and a program that
calls it compiles in milliseconds, where inline loop nests, or njit helpers (which Numba links
into the caller and optimises again), cost seconds of LLVM time per convolution (PERF.md fact
8). Only rare configurations (more than 3 spatial axes, pooling of rank > 6) get generated
loops. Scratch matrices come from `ctx.emitter.temp(aval)`: allocated by the driver once per
call, outside compiled code (PERF.md fact 5), and reused through the program's buffer pool.

Measured on W7 (one core): forward im2col 0.43 ms and the conv2 GEMMs ~2.1 ms each; the whole
jitted CNN step 13.9 ms against JAX's 19.3 ms in the same run (bench/conv_bench.py).
"""

from __future__ import annotations

import functools
import math
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numba
import numpy as np
from llvmlite import ir
from numba import carray, types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.unsafe.ndarray import to_fixed_tuple

from fnbrrr.core import ShapedArray
from fnbrrr.jit.blas import CBLAS_NO_TRANS, CBLAS_TRANS, blas_available
from fnbrrr.jit.lowering import Kernel, literal

INDENT = "    "

# Below this many multiply-adds a convolution runs as a direct loop (a BLAS call costs
# ~0.2 us of fixed overhead, and the scratch copies are not free).
DIRECT_MAX_MACS = 16_384
# Weight of one scratch-matrix element against one FLOP in the strategy cost model: writing
# an element in a copy loop and reading it back costs about as much as 40 FLOPs of an
# OpenBLAS sgemm on one core.
SCRATCH_ELEMENT_COST = 40
# Fold all images into one GEMM when each image has fewer output positions than this.
FOLD_MAX_POSITIONS = 64
# Copy the kernel into (O, I, K...) order when it would otherwise be consumed in chunks of
# fewer than this many rows (e.g. the flipped, role-swapped kernel of an input gradient).
MIN_CHUNK_ROWS = 32
# Tests set this to "direct", "im2col" or "gemm_gather" to exercise one strategy wherever it
# applies.
FORCE_STRATEGY: str | None = None

SPATIAL = 3  # helpers take 3 spatial axes; fewer are padded with axes of size 1
WINDOW_RANK = 6  # windowed-reduction helpers take operands of rank <= 6, padded likewise

# ================================================================================================
# Compiled helpers
# ================================================================================================

_HELPER = dict(cache=True, error_model="numpy", fastmath={"reassoc", "contract", "nsz"})

# Indices computed from runtime strides are cast to unsigned: Numba then drops its check for
# negative (wrap-around) indices, which otherwise keeps these loops scalar (2.7x measured).
_u = np.uint64


@numba.njit(inline="always", cache=True)
def _flat(array):
    """A 1-D view of a C-contiguous array. The program passes its N-D buffers as they are:
    a reshape in the generated program costs ~27 ms of compilation each, here it is paid once
    per helper and rank (then cached on disk)."""
    return array.reshape(array.size)


@numba.njit(inline="always", cache=True)
def _valid_range(offset, step, limit, n):
    """[lo, hi): the v in [0, n) with 0 <= v * step + offset < limit (step > 0)."""
    if step == 1:  # an integer division costs ~25 cycles: skip it in the common case
        lo, hi = -offset, limit - offset
    else:
        lo, hi = -(offset // step), (limit - 1 - offset) // step + 1
    lo = min(max(lo, 0), n)
    return lo, max(min(hi, n), lo)


@numba.njit(inline="always", cache=True)
def _inside(p, limit, dilation):
    """Whether dilated coordinate p holds an element of an axis whose dilated size is limit."""
    if dilation == 1:
        return 0 <= p < limit
    return 0 <= p < limit and p % dilation == 0


@numba.njit(inline="always", cache=True)
def _undilate(p, dilation):
    return p if dilation == 1 else p // dilation


@numba.njit(inline="always", cache=True)
def _copy(src, dst, s, d, s_step, d_step, n):
    """dst[d + v*d_step] = src[s + v*s_step] for v < n; unit strides get their own loop,
    which LLVM vectorises."""
    if s_step == 1 and d_step == 1:
        for v in range(n):
            dst[_u(d + v)] = src[_u(s + v)]
    else:
        for v in range(n):
            dst[_u(d + v * d_step)] = src[_u(s + v * s_step)]


@numba.njit(inline="always", cache=True)
def _fill(dst, d, d_step, start, stop, zero):
    for v in range(start, stop):
        dst[_u(d + v * d_step)] = zero


@numba.njit(inline="always", cache=True)
def _copy_valid(src, dst, s, d, offset, step, limit, dilation, s_step, d_step, n, lo, hi):
    """dst[d + v*d_step] = src at dilated position v*step + offset for the v < n that land
    inside the input (`lo, hi` from `_valid_range` when dilation is 1); others untouched."""
    if dilation == 1:
        _copy(src, dst, s + (lo * step + offset) * s_step, d + lo * d_step, step * s_step,
              d_step, hi - lo)
    else:
        for v in range(n):
            p = v * step + offset
            if _inside(p, limit, dilation):
                dst[_u(d + v * d_step)] = src[_u(s + (p // dilation) * s_step)]


# The im2col helpers. `geo` (int64[37]): extents (i, k0, k1, k2, b, y0, y1, y2), their
# coefficients in dst, src strides (feature, batch, x0, x1, x2); per spatial axis the stride,
# kernel dilation, low padding, dilated input size and input dilation; then `dense` (1: no
# padding or input dilation: every window cell lies inside the input). `kb0..kb2` offset the
# kernel axes that a chunked kernel fixes. Each call writes the whole of `dst` (one cols
# matrix).


@numba.njit(**_HELPER)
def im2col_positions_inner(lhs, dst, src_base, dst_base, zero, geo, kb0, kb1, kb2):
    """im2col with the last output-position axis innermost (NCHW-like inputs), for inputs
    with padding or dilation: `dst` is zeroed, then only window cells inside are copied."""
    (n_i, n_k0, n_k1, n_k2, n_b, n_y0, n_y1, n_y2,
     d_i, d_k0, d_k1, d_k2, d_b, d_y0, d_y1, d_y2,
     s_i, s_b, s0, s1, s2,
     st0, st1, st2, rd0, rd1, rd2, lo0, lo1, lo2, L0, L1, L2, ld0, ld1, ld2,
     dense_flag) = to_fixed_tuple(geo, 37)
    src = _flat(lhs)
    dst[:] = zero
    for i in range(n_i):
        for k0 in range(n_k0):
            c0 = (k0 + kb0) * rd0 - lo0
            for k1 in range(n_k1):
                c1 = (k1 + kb1) * rd1 - lo1
                for k2 in range(n_k2):
                    c2 = (k2 + kb2) * rd2 - lo2
                    row = dst_base + i * d_i + k0 * d_k0 + k1 * d_k1 + k2 * d_k2
                    lo, hi = _valid_range(c2, st2, L2, n_y2)
                    for b in range(n_b):
                        for y0 in range(n_y0):
                            p0 = y0 * st0 + c0
                            if not _inside(p0, L0, ld0):
                                continue
                            s_0 = src_base + i * s_i + b * s_b + _undilate(p0, ld0) * s0
                            for y1 in range(n_y1):
                                p1 = y1 * st1 + c1
                                if not _inside(p1, L1, ld1):
                                    continue
                                s = s_0 + _undilate(p1, ld1) * s1
                                d = row + b * d_b + y0 * d_y0 + y1 * d_y1
                                _copy_valid(src, dst, s, d, c2, st2, L2, ld2, s2, d_y2, n_y2,
                                            lo, hi)


@numba.njit(**_HELPER)
def im2col_kernel_inner(lhs, dst, src_base, dst_base, zero, geo, kb0, kb1, kb2):
    """im2col with the last kernel spatial axis innermost (kernel gradients: long windows),
    for inputs with padding or dilation."""
    (n_i, n_k0, n_k1, n_k2, n_b, n_y0, n_y1, n_y2,
     d_i, d_k0, d_k1, d_k2, d_b, d_y0, d_y1, d_y2,
     s_i, s_b, s0, s1, s2,
     st0, st1, st2, rd0, rd1, rd2, lo0, lo1, lo2, L0, L1, L2, ld0, ld1, ld2,
     dense_flag) = to_fixed_tuple(geo, 37)
    src = _flat(lhs)
    dst[:] = zero
    for b in range(n_b):
        for y0 in range(n_y0):
            e0 = y0 * st0 - lo0
            for y1 in range(n_y1):
                e1 = y1 * st1 - lo1
                for y2 in range(n_y2):
                    e2 = y2 * st2 - lo2 + kb2 * rd2
                    lo, hi = _valid_range(e2, rd2, L2, n_k2)
                    column = dst_base + b * d_b + y0 * d_y0 + y1 * d_y1 + y2 * d_y2
                    for i in range(n_i):
                        for k0 in range(n_k0):
                            p0 = (k0 + kb0) * rd0 + e0
                            if not _inside(p0, L0, ld0):
                                continue
                            s_0 = src_base + i * s_i + b * s_b + _undilate(p0, ld0) * s0
                            for k1 in range(n_k1):
                                p1 = (k1 + kb1) * rd1 + e1
                                if not _inside(p1, L1, ld1):
                                    continue
                                s = s_0 + _undilate(p1, ld1) * s1
                                d = column + i * d_i + k0 * d_k0 + k1 * d_k1
                                _copy_valid(src, dst, s, d, e2, rd2, L2, ld2, s2, d_k2, n_k2,
                                            lo, hi)


@numba.njit(**_HELPER)
def im2col_features_inner(lhs, dst, src_base, dst_base, zero, geo, kb0, kb1, kb2):
    """im2col with the in-feature axis innermost (NHWC-like inputs)."""
    (n_i, n_k0, n_k1, n_k2, n_b, n_y0, n_y1, n_y2,
     d_i, d_k0, d_k1, d_k2, d_b, d_y0, d_y1, d_y2,
     s_i, s_b, s0, s1, s2,
     st0, st1, st2, rd0, rd1, rd2, lo0, lo1, lo2, L0, L1, L2, ld0, ld1, ld2,
     dense_flag) = to_fixed_tuple(geo, 37)
    src = _flat(lhs)
    dense = dense_flag != 0
    for b in range(n_b):
        for y0 in range(n_y0):
            for y1 in range(n_y1):
                for y2 in range(n_y2):
                    column = dst_base + b * d_b + y0 * d_y0 + y1 * d_y1 + y2 * d_y2
                    for k0 in range(n_k0):
                        p0 = y0 * st0 + (k0 + kb0) * rd0 - lo0
                        for k1 in range(n_k1):
                            p1 = y1 * st1 + (k1 + kb1) * rd1 - lo1
                            for k2 in range(n_k2):
                                p2 = y2 * st2 + (k2 + kb2) * rd2 - lo2
                                d = column + k0 * d_k0 + k1 * d_k1 + k2 * d_k2
                                if dense or (_inside(p0, L0, ld0) and _inside(p1, L1, ld1)
                                             and _inside(p2, L2, ld2)):
                                    s = (src_base + b * s_b + _undilate(p0, ld0) * s0
                                         + _undilate(p1, ld1) * s1 + _undilate(p2, ld2) * s2)
                                    _copy(src, dst, s, d, s_i, d_i, n_i)
                                else:
                                    _fill(dst, d, d_i, 0, n_i, zero)


@numba.njit(**_HELPER)
def im2col_features_runs(lhs, dst, src_base, dst_base, zero, geo, kb0, kb1, kb2):
    """`im2col_features_inner` when a kernel row (k2, then features) is contiguous in both the
    input and cols (channels-last input, HWIO kernel, no input dilation along the last axis):
    each (k0, k1) cell copies one run of n_k2 * n_i values instead of n_k2 runs of n_i."""
    (n_i, n_k0, n_k1, n_k2, n_b, n_y0, n_y1, n_y2,
     d_i, d_k0, d_k1, d_k2, d_b, d_y0, d_y1, d_y2,
     s_i, s_b, s0, s1, s2,
     st0, st1, st2, rd0, rd1, rd2, lo0, lo1, lo2, L0, L1, L2, ld0, ld1, ld2,
     dense_flag) = to_fixed_tuple(geo, 37)
    src = _flat(lhs)
    for b in range(n_b):
        for y0 in range(n_y0):
            for y1 in range(n_y1):
                for y2 in range(n_y2):
                    column = dst_base + b * d_b + y0 * d_y0 + y1 * d_y1 + y2 * d_y2
                    e2 = y2 * st2 - lo2 + kb2 * rd2
                    lo, hi = _valid_range(e2, rd2, L2, n_k2)
                    for k0 in range(n_k0):
                        p0 = y0 * st0 + (k0 + kb0) * rd0 - lo0
                        for k1 in range(n_k1):
                            p1 = y1 * st1 + (k1 + kb1) * rd1 - lo1
                            d = column + k0 * d_k0 + k1 * d_k1
                            if _inside(p0, L0, ld0) and _inside(p1, L1, ld1):
                                _fill(dst, d, 1, 0, lo * n_i, zero)
                                s = (src_base + b * s_b + _undilate(p0, ld0) * s0
                                     + _undilate(p1, ld1) * s1 + (lo * rd2 + e2) * s2)
                                _copy(src, dst, s, d + lo * n_i, 1, 1, (hi - lo) * n_i)
                                _fill(dst, d, 1, hi * n_i, n_k2 * n_i, zero)
                            else:
                                _fill(dst, d, 1, 0, n_k2 * n_i, zero)


@numba.njit(**_HELPER)
def im2col_positions_inner_dense(lhs, dst, src_base, dst_base, zero, geo, kb0, kb1, kb2):
    """`im2col_positions_inner` when every window cell lies inside the input: no checks.
    (A loop nest of its own: sharing one with the checked path keeps LLVM from vectorising
    the copies, 3x slower.)"""
    (n_i, n_k0, n_k1, n_k2, n_b, n_y0, n_y1, n_y2,
     d_i, d_k0, d_k1, d_k2, d_b, d_y0, d_y1, d_y2,
     s_i, s_b, s0, s1, s2,
     st0, st1, st2, rd0, rd1, rd2, lo0, lo1, lo2, L0, L1, L2, ld0, ld1, ld2,
     dense_flag) = to_fixed_tuple(geo, 37)
    src = _flat(lhs)
    for i in range(n_i):
        for k0 in range(n_k0):
            for k1 in range(n_k1):
                for k2 in range(n_k2):
                    row = dst_base + i * d_i + k0 * d_k0 + k1 * d_k1 + k2 * d_k2
                    s_k = (src_base + i * s_i + ((k0 + kb0) * rd0 - lo0) * s0
                           + ((k1 + kb1) * rd1 - lo1) * s1 + ((k2 + kb2) * rd2 - lo2) * s2)
                    for b in range(n_b):
                        for y0 in range(n_y0):
                            for y1 in range(n_y1):
                                s = s_k + b * s_b + y0 * st0 * s0 + y1 * st1 * s1
                                d = row + b * d_b + y0 * d_y0 + y1 * d_y1
                                _copy(src, dst, s, d, st2 * s2, d_y2, n_y2)


@numba.njit(**_HELPER)
def im2col_kernel_inner_dense(lhs, dst, src_base, dst_base, zero, geo, kb0, kb1, kb2):
    """`im2col_kernel_inner` when every window cell lies inside the input: no checks."""
    (n_i, n_k0, n_k1, n_k2, n_b, n_y0, n_y1, n_y2,
     d_i, d_k0, d_k1, d_k2, d_b, d_y0, d_y1, d_y2,
     s_i, s_b, s0, s1, s2,
     st0, st1, st2, rd0, rd1, rd2, lo0, lo1, lo2, L0, L1, L2, ld0, ld1, ld2,
     dense_flag) = to_fixed_tuple(geo, 37)
    src = _flat(lhs)
    for b in range(n_b):
        for y0 in range(n_y0):
            for y1 in range(n_y1):
                for y2 in range(n_y2):
                    column = dst_base + b * d_b + y0 * d_y0 + y1 * d_y1 + y2 * d_y2
                    s_y = (src_base + b * s_b + (y0 * st0 - lo0 + kb0 * rd0) * s0
                           + (y1 * st1 - lo1 + kb1 * rd1) * s1 + (y2 * st2 - lo2 + kb2 * rd2) * s2)
                    for i in range(n_i):
                        for k0 in range(n_k0):
                            for k1 in range(n_k1):
                                s = s_y + i * s_i + k0 * rd0 * s0 + k1 * rd1 * s1
                                d = column + i * d_i + k0 * d_k0 + k1 * d_k1
                                _copy(src, dst, s, d, rd2 * s2, d_k2, n_k2)


@numba.njit(inline="always", cache=True)
def _add_run(src, dst, s, d, s_step, d_step, n):
    """dst[d + v*d_step] += src[s + v*s_step] for v < n (unit strides vectorise)."""
    if s_step == 1 and d_step == 1:
        for v in range(n):
            dst[_u(d + v)] += src[_u(s + v)]
    else:
        for v in range(n):
            dst[_u(d + v * d_step)] += src[_u(s + v * s_step)]


@numba.njit(**_HELPER)
def window_sums(table, out, dst_base, zero, geo):
    """dst[o, y] = sum_k table[(o, k), x(y, k)] over the k whose input position x exists.

    `geo`: extents (o, k0, k1, k2, y0, y1, y2), table strides (o, k0, k1, k2 rows; x0, x1, x2
    positions), dst strides (o, y0, y1, y2), then per spatial axis the stride, kernel
    dilation, low padding, dilated input size and input dilation.
    """
    (n_o, n_k0, n_k1, n_k2, n_y0, n_y1, n_y2,
     t_o, t_k0, t_k1, t_k2, t_x0, t_x1, t_x2,
     d_o, d_y0, d_y1, d_y2,
     st0, st1, st2, rd0, rd1, rd2, lo0, lo1, lo2, L0, L1, L2, ld0, ld1,
     ld2) = to_fixed_tuple(geo, 33)
    dst = _flat(out)
    for o in range(n_o):
        for y0 in range(n_y0):
            for y1 in range(n_y1):
                _fill(dst, dst_base + o * d_o + y0 * d_y0 + y1 * d_y1, d_y2, 0, n_y2, zero)
    if ld0 != 1 or ld1 != 1 or ld2 != 1:
        _window_sums_dilated(table, dst, dst_base, geo)
        return
    # No input dilation: for each kernel offset, the output positions whose input position
    # exists form a box; add the shifted table rows over it, with no per-row checks.
    for o in range(n_o):
        for k0 in range(n_k0):
            c0 = k0 * rd0 - lo0
            lo_0, hi_0 = _valid_range(c0, st0, L0, n_y0)
            for k1 in range(n_k1):
                c1 = k1 * rd1 - lo1
                lo_1, hi_1 = _valid_range(c1, st1, L1, n_y1)
                for k2 in range(n_k2):
                    c2 = k2 * rd2 - lo2
                    lo_2, hi_2 = _valid_range(c2, st2, L2, n_y2)
                    row = (o * t_o + k0 * t_k0 + k1 * t_k1 + k2 * t_k2 + c0 * t_x0 + c1 * t_x1
                           + (lo_2 * st2 + c2) * t_x2)
                    base = dst_base + o * d_o + lo_2 * d_y2
                    for y0 in range(lo_0, hi_0):
                        for y1 in range(lo_1, hi_1):
                            _add_run(table, dst, row + y0 * st0 * t_x0 + y1 * st1 * t_x1,
                                     base + y0 * d_y0 + y1 * d_y1, st2 * t_x2, d_y2,
                                     hi_2 - lo_2)


@numba.njit(**_HELPER)
def window_sums_features_last(table, out, dst_base, zero, geo):
    """`window_sums` for a channels-last output from a table laid out T[x, (k, o)]: every
    (output position, kernel offset) adds one contiguous run over the features. No input
    dilation. `geo` as for `window_sums` (with t_o the features' stride in a table row)."""
    (n_o, n_k0, n_k1, n_k2, n_y0, n_y1, n_y2,
     t_o, t_k0, t_k1, t_k2, t_x0, t_x1, t_x2,
     d_o, d_y0, d_y1, d_y2,
     st0, st1, st2, rd0, rd1, rd2, lo0, lo1, lo2, L0, L1, L2, ld0, ld1,
     ld2) = to_fixed_tuple(geo, 33)
    dst = _flat(out)
    for y0 in range(n_y0):
        for y1 in range(n_y1):
            for y2 in range(n_y2):
                _fill(dst, dst_base + y0 * d_y0 + y1 * d_y1 + y2 * d_y2, d_o, 0, n_o, zero)
    for k0 in range(n_k0):
        c0 = k0 * rd0 - lo0
        lo_0, hi_0 = _valid_range(c0, st0, L0, n_y0)
        for k1 in range(n_k1):
            c1 = k1 * rd1 - lo1
            lo_1, hi_1 = _valid_range(c1, st1, L1, n_y1)
            for k2 in range(n_k2):
                c2 = k2 * rd2 - lo2
                lo_2, hi_2 = _valid_range(c2, st2, L2, n_y2)
                row = k0 * t_k0 + k1 * t_k1 + k2 * t_k2 + c0 * t_x0 + c1 * t_x1 + c2 * t_x2
                for y0 in range(lo_0, hi_0):
                    for y1 in range(lo_1, hi_1):
                        t = row + y0 * st0 * t_x0 + y1 * st1 * t_x1
                        d = dst_base + y0 * d_y0 + y1 * d_y1
                        for y2 in range(lo_2, hi_2):
                            _add_run(table, dst, t + y2 * st2 * t_x2, d + y2 * d_y2, t_o, d_o,
                                     n_o)


@numba.njit(inline="always", cache=True)
def _dilated_range(offset, dilation, limit, n_in):
    """For window sums over a dilated input with stride 1: the input positions x < n_in
    whose output position x * dilation - offset lies in [0, limit)."""
    lo = -((-offset) // dilation)  # ceil(offset / dilation)
    hi = (limit - 1 + offset) // dilation + 1
    lo = min(max(lo, 0), n_in)
    return lo, max(min(hi, n_in), lo)


@numba.njit(cache=True)
def _window_sums_dilated(table, dst, dst_base, geo):
    """`window_sums` when the input is dilated (the input gradient of a strided convolution).

    Runs over input positions: with stride 1 (the usual case), input position x feeds output
    position x * dilation - offset, a strided run with no per-element test.
    """
    (n_o, n_k0, n_k1, n_k2, n_y0, n_y1, n_y2,
     t_o, t_k0, t_k1, t_k2, t_x0, t_x1, t_x2,
     d_o, d_y0, d_y1, d_y2,
     st0, st1, st2, rd0, rd1, rd2, lo0, lo1, lo2, L0, L1, L2, ld0, ld1,
     ld2) = to_fixed_tuple(geo, 33)
    x0_n, x1_n, x2_n = (L0 - 1) // ld0 + 1, (L1 - 1) // ld1 + 1, (L2 - 1) // ld2 + 1
    for o in range(n_o):
        for k0 in range(n_k0):
            c0 = k0 * rd0 - lo0
            for k1 in range(n_k1):
                c1 = k1 * rd1 - lo1
                for k2 in range(n_k2):
                    c2 = k2 * rd2 - lo2
                    row = o * t_o + k0 * t_k0 + k1 * t_k1 + k2 * t_k2
                    if st0 == 1 and st1 == 1 and st2 == 1:
                        a0, b0 = _dilated_range(c0, ld0, n_y0, x0_n)
                        a1, b1 = _dilated_range(c1, ld1, n_y1, x1_n)
                        a2, b2 = _dilated_range(c2, ld2, n_y2, x2_n)
                        for x0 in range(a0, b0):
                            for x1 in range(a1, b1):
                                d = (dst_base + o * d_o + (x0 * ld0 - c0) * d_y0
                                     + (x1 * ld1 - c1) * d_y1 + (a2 * ld2 - c2) * d_y2)
                                _add_run(table, dst, row + x0 * t_x0 + x1 * t_x1 + a2 * t_x2, d,
                                         t_x2, ld2 * d_y2, b2 - a2)
                        continue
                    for y0 in range(n_y0):
                        p0 = y0 * st0 + c0
                        if not _inside(p0, L0, ld0):
                            continue
                        for y1 in range(n_y1):
                            p1 = y1 * st1 + c1
                            if not _inside(p1, L1, ld1):
                                continue
                            t = row + (p0 // ld0) * t_x0 + (p1 // ld1) * t_x1
                            d = dst_base + o * d_o + y0 * d_y0 + y1 * d_y1
                            for y2 in range(n_y2):
                                p2 = y2 * st2 + c2
                                if _inside(p2, L2, ld2):
                                    dst[_u(d + y2 * d_y2)] += table[_u(t + (p2 // ld2) * t_x2)]


@numba.njit(**_HELPER)
def strided_copy(source, target, src_base, dst_base, geo):
    """dst[base + sum i_a * d_a] = src[base + sum i_a * s_a] over a 5-D index space.

    `geo`: extents (n0..n4), src strides (s0..s4), dst strides (d0..d4).
    """
    n0, n1, n2, n3, n4, s0, s1, s2, s3, s4, d0, d1, d2, d3, d4 = to_fixed_tuple(geo, 15)
    src, dst = _flat(source), _flat(target)
    for a in range(n0):
        for b in range(n1):
            for c in range(n2):
                for d in range(n3):
                    s = src_base + a * s0 + b * s1 + c * s2 + d * s3
                    t = dst_base + a * d0 + b * d1 + c * d2 + d * d3
                    for e in range(n4):
                        dst[_u(t + e * d4)] = src[_u(s + e * s4)]


@numba.njit(**_HELPER)
def conv_direct(lhs_array, rhs_array, out_array, zero, geo):
    """A convolution as plain loops (integer dtypes, tiny problems, no BLAS).

    `geo`: extents (out batch, groups, out features per group, in features, k0..k2, y0..y2),
    lhs strides (batch, feature, x0..x2) and per-group offsets (batch, feature), rhs strides
    (out, in, k0..k2), out strides (batch, feature, y0..y2), then per spatial axis the stride,
    kernel dilation, low padding, dilated input size and input dilation.
    """
    (n_b, n_g, n_o, n_i, n_k0, n_k1, n_k2, n_y0, n_y1, n_y2,
     l_b, l_f, l0, l1, l2, g_b, g_f,
     r_o, r_i, r0, r1, r2,
     t_b, t_o, t0, t1, t2,
     st0, st1, st2, rd0, rd1, rd2, lo0, lo1, lo2, L0, L1, L2, ld0, ld1,
     ld2) = to_fixed_tuple(geo, 42)
    lhs, rhs, out = _flat(lhs_array), _flat(rhs_array), _flat(out_array)
    for b in range(n_b):
        for g in range(n_g):
            for o in range(n_o):
                oo = g * n_o + o
                for y0 in range(n_y0):
                    for y1 in range(n_y1):
                        for y2 in range(n_y2):
                            acc = zero
                            for i in range(n_i):
                                lhs_base = (b + g * g_b) * l_b + (i + g * g_f) * l_f
                                rhs_base = oo * r_o + i * r_i
                                for k0 in range(n_k0):
                                    p0 = y0 * st0 + k0 * rd0 - lo0
                                    if not _inside(p0, L0, ld0):
                                        continue
                                    for k1 in range(n_k1):
                                        p1 = y1 * st1 + k1 * rd1 - lo1
                                        if not _inside(p1, L1, ld1):
                                            continue
                                        for k2 in range(n_k2):
                                            p2 = y2 * st2 + k2 * rd2 - lo2
                                            if not _inside(p2, L2, ld2):
                                                continue
                                            x = (lhs_base + _undilate(p0, ld0) * l0
                                                 + _undilate(p1, ld1) * l1
                                                 + _undilate(p2, ld2) * l2)
                                            w = rhs_base + k0 * r0 + k1 * r1 + k2 * r2
                                            acc += lhs[_u(x)] * rhs[_u(w)]
                            out[_u(b * t_b + oo * t_o + y0 * t0 + y1 * t1 + y2 * t2)] = acc


@numba.njit(inline="always", cache=True)
def _window_cell(o, k, stride, wdil, lo, limit, bdil):
    """The operand index of window cell k of output o along one axis, or -1 (padding)."""
    p = o * stride + k * wdil - lo
    if _inside(p, limit, bdil):
        return _undilate(p, bdil)
    return -1


@numba.njit(**_HELPER)
def window_reduce(operand, result, is_max, init, geo):
    """dst[o] = sum (or NaN-propagating max) of src over window o; padding cells are skipped.

    `geo`: per axis (rank 6): output extent, window size, stride, window dilation, low
    padding, dilated operand size, operand dilation, operand stride; grouped by field.
    """
    (n0, n1, n2, n3, n4, n5, w0, w1, w2, w3, w4, w5, st0, st1, st2, st3, st4, st5,
     wd0, wd1, wd2, wd3, wd4, wd5, lo0, lo1, lo2, lo3, lo4, lo5,
     L0, L1, L2, L3, L4, L5, bd0, bd1, bd2, bd3, bd4, bd5, s0, s1, s2, s3, s4,
     s5) = to_fixed_tuple(geo, 48)
    src, dst = _flat(operand), _flat(result)
    out = 0
    for o0 in range(n0):
        for o1 in range(n1):
            for o2 in range(n2):
                for o3 in range(n3):
                    for o4 in range(n4):
                        for o5 in range(n5):
                            acc = init
                            for k0 in range(w0):
                                x0 = _window_cell(o0, k0, st0, wd0, lo0, L0, bd0)
                                if x0 < 0:
                                    continue
                                for k1 in range(w1):
                                    x1 = _window_cell(o1, k1, st1, wd1, lo1, L1, bd1)
                                    if x1 < 0:
                                        continue
                                    for k2 in range(w2):
                                        x2 = _window_cell(o2, k2, st2, wd2, lo2, L2, bd2)
                                        if x2 < 0:
                                            continue
                                        a2 = x0 * s0 + x1 * s1 + x2 * s2
                                        for k3 in range(w3):
                                            x3 = _window_cell(o3, k3, st3, wd3, lo3, L3, bd3)
                                            if x3 < 0:
                                                continue
                                            for k4 in range(w4):
                                                x4 = _window_cell(o4, k4, st4, wd4, lo4, L4, bd4)
                                                if x4 < 0:
                                                    continue
                                                a4 = a2 + x3 * s3 + x4 * s4
                                                for k5 in range(w5):
                                                    x5 = _window_cell(o5, k5, st5, wd5, lo5, L5,
                                                                      bd5)
                                                    if x5 < 0:
                                                        continue
                                                    v = src[_u(a4 + x5 * s5)]
                                                    if not is_max:
                                                        acc += v
                                                    elif not (acc >= v or acc != acc):
                                                        acc = v
                            dst[out] = acc
                            out += 1


@numba.njit(**_HELPER)
def window_argmax(operand, where, geo):
    """where[o] = flat index into src of window o's first maximum (NaN wins), -1 if none.

    `geo` as for `window_reduce`.
    """
    (n0, n1, n2, n3, n4, n5, w0, w1, w2, w3, w4, w5, st0, st1, st2, st3, st4, st5,
     wd0, wd1, wd2, wd3, wd4, wd5, lo0, lo1, lo2, lo3, lo4, lo5,
     L0, L1, L2, L3, L4, L5, bd0, bd1, bd2, bd3, bd4, bd5, s0, s1, s2, s3, s4,
     s5) = to_fixed_tuple(geo, 48)
    src = _flat(operand)
    out = 0
    for o0 in range(n0):
        for o1 in range(n1):
            for o2 in range(n2):
                for o3 in range(n3):
                    for o4 in range(n4):
                        for o5 in range(n5):
                            best = src[0]
                            at = -1
                            for k0 in range(w0):
                                x0 = _window_cell(o0, k0, st0, wd0, lo0, L0, bd0)
                                if x0 < 0:
                                    continue
                                for k1 in range(w1):
                                    x1 = _window_cell(o1, k1, st1, wd1, lo1, L1, bd1)
                                    if x1 < 0:
                                        continue
                                    for k2 in range(w2):
                                        x2 = _window_cell(o2, k2, st2, wd2, lo2, L2, bd2)
                                        if x2 < 0:
                                            continue
                                        a2 = x0 * s0 + x1 * s1 + x2 * s2
                                        for k3 in range(w3):
                                            x3 = _window_cell(o3, k3, st3, wd3, lo3, L3, bd3)
                                            if x3 < 0:
                                                continue
                                            for k4 in range(w4):
                                                x4 = _window_cell(o4, k4, st4, wd4, lo4, L4, bd4)
                                                if x4 < 0:
                                                    continue
                                                a4 = a2 + x3 * s3 + x4 * s4
                                                for k5 in range(w5):
                                                    x5 = _window_cell(o5, k5, st5, wd5, lo5, L5,
                                                                      bd5)
                                                    if x5 < 0:
                                                        continue
                                                    v = src[_u(a4 + x5 * s5)]
                                                    if at < 0 or v > best or (
                                                            v != v and best == best):
                                                        best = v
                                                        at = a4 + x5 * s5
                            where[out] = at
                            out += 1


@numba.njit(**_HELPER)
def gather_selected(values_array, where, out_array, zero):
    """out[w] = values[where[w]] (zero where no cell was selected): select_and_gather_add."""
    values, out = _flat(values_array), _flat(out_array)
    for w in range(where.size):
        out[w] = values[where[w]] if where[w] >= 0 else zero


@numba.njit(**_HELPER)
def scatter_selected(values_array, where, out_array, zero):
    """out = 0, then out[where[w]] += values[w]: select_and_scatter_add."""
    values, out = _flat(values_array), _flat(out_array)
    out[:] = zero
    for w in range(where.size):
        if where[w] >= 0:
            out[where[w]] += values[w]


# ================================================================================================
# Calling the helpers from a program: through C function pointers
# ================================================================================================
#
# A program that calls an njit helper directly links the helper's LLVM module into its own and
# optimises it again: about 2 s of compilation per helper and signature, in every program (a
# program making one conv_direct call compiled in 2.8 s; through a pointer, 0.14 s). So each
# helper has a C-ABI wrapper below, compiled once per dtype with `numba.cfunc(cache=True)`.
# Programs call it through its address, which travels in a constant argument, never in the
# source, so Numba's disk cache of the program stays valid across processes (blas.py passes
# gemm's address the same way).


@intrinsic
def _typed_pointer(typingctx, address, like):
    """The integer `address` as a pointer to values of `like`'s type (for `numba.carray`)."""
    pointer = types.CPointer(like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(pointer))

    return pointer(address, like), codegen


@intrinsic
def call_helper(typingctx, address, args):
    """Call the C function at `address` with the values of the tuple `args` (ints as int64,
    floats as themselves): `call_helper(k3[0], (x0.ctypes.data, x0.size, ...))`."""
    if not isinstance(args, types.BaseTuple):
        return None

    def codegen(context, builder, signature, llargs):
        address_value, packed = llargs
        values = cgutils.unpack_tuple(builder, packed, len(args))
        function_type = ir.FunctionType(ir.VoidType(), [v.type for v in values])
        builder.call(builder.inttoptr(address_value, function_type.as_pointer()), values)
        return context.get_dummy_value()

    return types.void(address, args), codegen


# The wrappers: arrays arrive as (address, size) pairs; `geo` is the address of the int64
# geometry; `zero` / `like` / `init` carry the array dtype.

IM2COL_VARIANTS = {("y", False): 0, ("y", True): 1, ("k", False): 2, ("k", True): 3,
                   ("i", False): 4, ("i", True): 4, ("runs", False): 5, ("runs", True): 5}


def c_im2col(which, lhs, n_lhs, dst, n_dst, src_base, dst_base, kb0, kb1, kb2, zero, geo):
    src = carray(_typed_pointer(lhs, zero), n_lhs)
    cols = carray(_typed_pointer(dst, zero), n_dst)
    g = carray(_typed_pointer(geo, geo), 37)
    if which == 0:
        im2col_positions_inner(src, cols, src_base, dst_base, zero, g, kb0, kb1, kb2)
    elif which == 1:
        im2col_positions_inner_dense(src, cols, src_base, dst_base, zero, g, kb0, kb1, kb2)
    elif which == 2:
        im2col_kernel_inner(src, cols, src_base, dst_base, zero, g, kb0, kb1, kb2)
    elif which == 3:
        im2col_kernel_inner_dense(src, cols, src_base, dst_base, zero, g, kb0, kb1, kb2)
    elif which == 4:
        im2col_features_inner(src, cols, src_base, dst_base, zero, g, kb0, kb1, kb2)
    else:
        im2col_features_runs(src, cols, src_base, dst_base, zero, g, kb0, kb1, kb2)


def c_window_sums(features_last, table, n_table, out, n_out, dst_base, zero, geo):
    t = carray(_typed_pointer(table, zero), n_table)
    o = carray(_typed_pointer(out, zero), n_out)
    g = carray(_typed_pointer(geo, geo), 33)
    if features_last != 0:
        window_sums_features_last(t, o, dst_base, zero, g)
    else:
        window_sums(t, o, dst_base, zero, g)


def c_strided_copy(src, n_src, dst, n_dst, src_base, dst_base, like, geo):
    strided_copy(carray(_typed_pointer(src, like), n_src),
                 carray(_typed_pointer(dst, like), n_dst), src_base, dst_base,
                 carray(_typed_pointer(geo, geo), 15))


def c_conv_direct(lhs, n_lhs, rhs, n_rhs, out, n_out, zero, geo):
    conv_direct(carray(_typed_pointer(lhs, zero), n_lhs),
                carray(_typed_pointer(rhs, zero), n_rhs),
                carray(_typed_pointer(out, zero), n_out), zero,
                carray(_typed_pointer(geo, geo), 42))


def c_window_reduce(src, n_src, dst, n_dst, is_max, init, geo):
    window_reduce(carray(_typed_pointer(src, init), n_src),
                  carray(_typed_pointer(dst, init), n_dst), is_max != 0, init,
                  carray(_typed_pointer(geo, geo), 48))


def c_window_argmax(src, n_src, where, n_where, like, geo):
    window_argmax(carray(_typed_pointer(src, like), n_src),
                  carray(_typed_pointer(where, where), n_where),
                  carray(_typed_pointer(geo, geo), 48))


def c_select(gather, values, n_values, where, n_where, out, n_out, zero, geo):
    v = carray(_typed_pointer(values, zero), n_values)
    w = carray(_typed_pointer(where, where), n_where)
    o = carray(_typed_pointer(out, zero), n_out)
    if gather != 0:
        gather_selected(v, w, o, zero)
    else:
        scatter_selected(v, w, o, zero)


# Per wrapper: its parameters, "i" for an int64 (addresses and sizes too), "T" for the dtype.
_WRAPPERS = {
    "im2col": (c_im2col, "iiiiiiiiiiTi"),
    "window_sums": (c_window_sums, "iiiiiiTi"),
    "strided_copy": (c_strided_copy, "iiiiiiTi"),
    "conv_direct": (c_conv_direct, "iiiiiiTi"),
    "window_reduce": (c_window_reduce, "iiiiiTi"),
    "window_argmax": (c_window_argmax, "iiiiTi"),
    "select": (c_select, "iiiiiiiTi"),
}


@functools.cache
def helper_cfunc(name: str, dtype_name: str):
    """The compiled C-ABI wrapper `name` for arrays of `dtype_name` (cached on disk)."""
    function, params = _WRAPPERS[name]
    element = numba.from_dtype(np.dtype(dtype_name))
    signature = types.void(*(element if p == "T" else types.int64 for p in params))
    return numba.cfunc(signature, cache=True, error_model="numpy")(function)


def _call_helper(ctx, code, name: str, dtype, args, geo=()) -> None:
    """Emit a call of helper `name`: `args` are buffer names (passed as address and size),
    int expressions, or float literals; `geo` (ints) goes into a constant array whose first
    element is the helper's address."""
    address = helper_cfunc(name, np.dtype(dtype).name).address
    const = ctx.emitter.add_const(np.asarray([address, *(int(v) for v in geo)], np.int64))
    rendered = []
    for arg in args:
        if isinstance(arg, Buffer):
            rendered += [f"{arg.name}.ctypes.data", f"{arg.name}.size"]
        else:
            rendered.append(str(arg))
    rendered.append(f"{const}.ctypes.data + 8")
    code(f"{_import(ctx, 'call_helper')}({const}[0], ({', '.join(rendered)},))  # {name}")


@dataclass(frozen=True)
class Buffer:
    """A buffer argument of a helper call (passed as its address and size)."""

    name: str


def _import(ctx, name: str) -> str:
    """Make the generated module import `name` from this module; returns what to call.

    Prefers a `ctx.use_helper(module, name)` hook of the code generator. Until it has one,
    the generated module imports what `helpers_used` lists from `fnbrrr.jit.kernels`, so the
    name is exposed there with a `conv_` prefix (this module is imported whenever its
    lowerings are in use, hence before any generated module that needs it is loaded).
    """
    hook = getattr(ctx, "use_helper", None)
    if hook is not None:
        hook(__name__, name)
        return name
    from fnbrrr.jit import kernels

    alias = f"conv_{name}"
    setattr(kernels, alias, globals()[name])
    ctx.emitter.helpers_used.add(alias)
    return alias


# ================================================================================================
# Generated-source utilities
# ================================================================================================


class _Code:
    """Generated source lines with an indentation level."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def __call__(self, line: str) -> None:
        self.lines.append(INDENT * self.depth + line)

    @contextmanager
    def block(self, header: str | None):
        """An indented block under `header` (None: no block, same level)."""
        if header is None:
            yield
            return
        self(header)
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1


def _contiguous_strides(shape) -> list[int]:
    """Element strides of a C-contiguous array."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return strides[::-1]


def _affine(*terms) -> str:
    """`a + (b + c) * 2 + ...` from (expr, coefficient) terms, dropping zeros and unit factors."""
    parts = []
    for expr, coef in terms:
        if coef == 0 or expr == "0":
            continue
        if expr == "1":
            parts.append(str(coef))
        elif coef == 1:
            parts.append(expr)
        else:
            simple = expr.isidentifier() or expr.isdigit()
            parts.append(f"{expr if simple else f'({expr})'} * {coef}")
    return " + ".join(parts) if parts else "0"


def _ptr(base: str, offset: str, itemsize: int) -> str:
    return base if offset == "0" else f"{base} + ({offset}) * {itemsize}"


def _dilated(size: int, dilation: int) -> int:
    return 0 if size == 0 else (size - 1) * dilation + 1


# ================================================================================================
# Convolution geometry
# ================================================================================================


@dataclass(frozen=True)
class ConvGeometry:
    """Sizes and element strides of one convolution equation, by role.

    Spatial fields have one entry per spatial axis in `dimension_numbers` order; `padded()`
    gives the 3-axis form the helpers take.
    """

    batch: int  # lhs batch N
    features: int  # lhs features (in_features * groups, unless the groups split the batch)
    out_batch: int  # N / batch_group_count
    in_features: int  # rhs in-feature size I (per group)
    out_features: int  # O
    groups: int  # feature_group_count * batch_group_count
    batch_groups: bool  # the groups split the batch (True) or the features (False)
    in_sizes: tuple  # X_j
    kernel: tuple  # K_j
    out_sizes: tuple  # Y_j
    strides: tuple
    pad_lo: tuple
    lhs_dilation: tuple
    rhs_dilation: tuple
    lhs_strides: tuple  # (batch, feature, *spatial) element strides of lhs
    rhs_strides: tuple  # (out, in, *spatial) of rhs
    out_strides: tuple  # (batch, feature, *spatial) of the output
    rhs_order: tuple  # rhs roles in memory order: "o", "i", or a spatial index j

    nsp = property(lambda self: len(self.kernel))
    group_out = property(lambda self: self.out_features // self.groups)
    window = property(lambda self: math.prod(self.kernel))
    positions = property(lambda self: math.prod(self.out_sizes))
    in_positions = property(lambda self: math.prod(self.in_sizes))

    def padded(self) -> ConvGeometry:
        """The same convolution with leading spatial axes of size 1 up to 3 axes."""
        n = SPATIAL - self.nsp

        def lead(values, fill):
            return (fill,) * n + tuple(values)

        order = []
        for r in self.rhs_order:  # size-1 axes go right after "o": they never end a run
            order.append(r + n if isinstance(r, int) else r)
            if r == "o":
                order.extend(range(n))
        return replace(
            self, in_sizes=lead(self.in_sizes, 1), kernel=lead(self.kernel, 1),
            out_sizes=lead(self.out_sizes, 1), strides=lead(self.strides, 1),
            pad_lo=lead(self.pad_lo, 0), lhs_dilation=lead(self.lhs_dilation, 1),
            rhs_dilation=lead(self.rhs_dilation, 1),
            lhs_strides=self.lhs_strides[:2] + lead(self.lhs_strides[2:], 0),
            rhs_strides=self.rhs_strides[:2] + lead(self.rhs_strides[2:], 0),
            out_strides=self.out_strides[:2] + lead(self.out_strides[2:], 0),
            rhs_order=tuple(order))

    def lhs_batch(self, g: str, b: str) -> str:
        """The lhs batch index of output image `b` in group `g` (expressions)."""
        if self.batch_groups and self.groups > 1:
            return _affine((g, self.out_batch), (b, 1))
        return b

    def lhs_feature(self, g: str, i: str) -> str:
        """The lhs feature index of in-feature `i` of group `g` (expressions)."""
        if not self.batch_groups and self.groups > 1:
            return _affine((g, self.in_features), (i, 1))
        return i

    def position_fields(self) -> list:
        """Per spatial axis: strides, kernel dilations, low pads, dilated sizes, dilations."""
        dilated = [_dilated(x, d) for x, d in zip(self.in_sizes, self.lhs_dilation)]
        return [*self.strides, *self.rhs_dilation, *self.pad_lo, *dilated, *self.lhs_dilation]


def conv_geometry(eqn) -> ConvGeometry:
    """The `ConvGeometry` of a conv_general_dilated equation."""
    lhs, rhs = (a.aval for a in eqn.inputs)
    out = eqn.outvars[0].aval
    p = eqn.params
    lhs_spec, rhs_spec, out_spec = p["dimension_numbers"]
    ls, rs, os_ = (_contiguous_strides(a.shape) for a in (lhs, rhs, out))
    roles = {rhs_spec[0]: "o", rhs_spec[1]: "i"}
    roles.update({a: j for j, a in enumerate(rhs_spec[2:])})
    fgc, bgc = p["feature_group_count"], p["batch_group_count"]
    return ConvGeometry(
        batch=lhs.shape[lhs_spec[0]], features=lhs.shape[lhs_spec[1]],
        out_batch=out.shape[out_spec[0]], in_features=rhs.shape[rhs_spec[1]],
        out_features=rhs.shape[rhs_spec[0]], groups=fgc * bgc, batch_groups=bgc > 1,
        in_sizes=tuple(lhs.shape[a] for a in lhs_spec[2:]),
        kernel=tuple(rhs.shape[a] for a in rhs_spec[2:]),
        out_sizes=tuple(out.shape[a] for a in out_spec[2:]),
        strides=tuple(p["window_strides"]), pad_lo=tuple(lo for lo, _ in p["padding"]),
        lhs_dilation=tuple(p["lhs_dilation"]), rhs_dilation=tuple(p["rhs_dilation"]),
        lhs_strides=tuple(ls[a] for a in lhs_spec), rhs_strides=tuple(rs[a] for a in rhs_spec),
        out_strides=tuple(os_[a] for a in out_spec),
        rhs_order=tuple(roles[a] for a in range(rhs.ndim)))


# ================================================================================================
# Strategy
# ================================================================================================


def _lhs_matrix_form(geom: ConvGeometry) -> str | None:
    """How one image of lhs reads as a matrix: "FX" (features x positions), "XF", or None."""
    _, sf, *ss = geom.lhs_strides
    spatial = _contiguous_strides(geom.in_sizes)
    if _same_strides(ss, spatial, geom.in_sizes):
        return "FX"
    if sf == 1 and _same_strides(ss, [s * geom.features for s in spatial], geom.in_sizes):
        return "XF"
    return None


def choose_strategy(eqn) -> str:
    """"im2col", "gemm_gather" or "direct" for a conv_general_dilated equation."""
    geom = conv_geometry(eqn)
    dtype = eqn.outvars[0].aval.dtype
    blas = dtype.name in ("float32", "float64") and blas_available(dtype.name)
    if not blas or geom.nsp > SPATIAL:
        return "direct"
    gather_ok = not geom.batch_groups and _lhs_matrix_form(geom) is not None
    if FORCE_STRATEGY is not None:
        if FORCE_STRATEGY == "gemm_gather" and not gather_ok:
            return "im2col"
        return FORCE_STRATEGY
    macs = (geom.out_batch * geom.out_features * geom.positions * geom.in_features
            * geom.window)
    if macs < DIRECT_MAX_MACS:
        return "direct"
    im2col = 2 * macs + SCRATCH_ELEMENT_COST * (
        geom.out_batch * geom.groups * geom.in_features * geom.window * geom.positions)
    if not gather_ok:
        return "im2col"
    table = geom.batch * geom.out_features * geom.window * geom.in_positions
    gather = 2 * table * geom.in_features + SCRATCH_ELEMENT_COST * table
    return "gemm_gather" if gather < im2col else "im2col"


def _emit_conv(ctx, eqn, ins, outs):
    out_aval = eqn.outvars[0].aval
    if out_aval.size == 0:
        return ["pass"]
    geom = conv_geometry(eqn)
    if geom.in_features * geom.window == 0:
        return [f"{outs[0]}.fill({literal(0, out_aval.dtype)})"]
    strategy = choose_strategy(eqn)
    code = _Code()
    code(f"# convolution strategy: {strategy}")
    args = (ctx, code, geom, out_aval.dtype, ins, outs[0])
    if strategy == "direct" and geom.nsp > SPATIAL:
        _generated_direct_conv(eqn, *args)
    else:
        {"direct": _direct_conv, "im2col": _im2col_conv,
         "gemm_gather": _gemm_gather_conv}[strategy](*args)
    return code.lines


# ================================================================================================
# Direct loops
# ================================================================================================


def _direct_conv(ctx, code, geom: ConvGeometry, dtype, ins, out) -> None:
    g = geom.padded()
    group_batch = g.out_batch if g.batch_groups and g.groups > 1 else 0
    group_feature = g.in_features if not g.batch_groups and g.groups > 1 else 0
    geo = [g.out_batch, g.groups, g.group_out, g.in_features, *g.kernel, *g.out_sizes,
           *g.lhs_strides, group_batch, group_feature, *g.rhs_strides, *g.out_strides,
           *g.position_fields()]
    _call_helper(ctx, code, "conv_direct", dtype,
                 [Buffer(ins[0]), Buffer(ins[1]), Buffer(out), literal(0, dtype)], geo)


def _generated_direct_conv(eqn, ctx, code, geom: ConvGeometry, dtype, ins, out) -> None:
    """Loops generated for this equation: more spatial axes than the helpers take (rare)."""
    lhs, rhs, outf = (ctx.fresh("flat") for _ in range(3))
    for flat, name, atom in ((lhs, ins[0], eqn.inputs[0]), (rhs, ins[1], eqn.inputs[1]),
                             (outf, out, eqn.outvars[0])):
        code(f"{flat} = {name}.reshape({atom.aval.size})")
    b, g, o, i, acc = (ctx.fresh(p) for p in ("b", "g", "o", "i", "acc"))
    ys = [ctx.fresh("y") for _ in range(geom.nsp)]
    tb, to, *ty = geom.out_strides
    sb, sf, *ss = geom.lhs_strides
    so, si, *sk = geom.rhs_strides
    with code.block(f"for {b} in range({geom.out_batch}):"), \
            code.block(f"for {g} in range({geom.groups}):"), \
            code.block(f"for {o} in range({geom.group_out}):"):
        oo = _affine((g, geom.group_out), (o, 1))
        depth = code.depth
        for y, n in zip(ys, geom.out_sizes):
            code(f"for {y} in range({n}):")
            code.depth += 1
        code(f"{acc} = {literal(0, dtype)}")
        lhs_terms = [(geom.lhs_batch(g, b), sb), (geom.lhs_feature(g, i), sf)]
        rhs_terms = [(oo, so), (i, si)]
        with code.block(f"for {i} in range({geom.in_features}):"):
            inner = code.depth
            for j in range(geom.nsp):
                k, pos = ctx.fresh("k"), ctx.fresh("p")
                code(f"for {k} in range({geom.kernel[j]}):")
                code.depth += 1
                moved = _affine((ys[j], geom.strides[j]), (k, geom.rhs_dilation[j]))
                code(f"{pos} = {moved} - {geom.pad_lo[j]}")
                size = _dilated(geom.in_sizes[j], geom.lhs_dilation[j])
                code(f"if 0 <= {pos} < {size} and {pos} % {geom.lhs_dilation[j]} == 0:")
                code.depth += 1
                lhs_terms.append((f"({pos} // {geom.lhs_dilation[j]})", ss[j]))
                rhs_terms.append((k, sk[j]))
            code(f"{acc} += {lhs}[{_affine(*lhs_terms)}] * {rhs}[{_affine(*rhs_terms)}]")
            code.depth = inner
        target = _affine((b, tb), (oo, to), *zip(ys, ty))
        code(f"{outf}[{target}] = {acc}")
        code.depth = depth


# ================================================================================================
# im2col + GEMM
# ================================================================================================


@dataclass
class _Im2colPlan:
    chunk_roles: tuple  # rhs roles consumed one chunk (one accumulating GEMM) at a time
    row_roles: tuple  # the other rhs roles but "o", in memory order: the rows of cols
    o_last: bool  # the rhs is (K, O) row-major: GEMMs read it transposed
    out_form: str  # "OY": C = (o, columns); "YO": C = (columns, o); "scratch"
    ldc: int  # C's row stride in the output
    fold: str  # "": one GEMM per image; "by" / "yb": columns (image, position) / (position,
    #            image) over all images, one GEMM for all of them
    variant: str  # the copy loop's innermost index: "y" (cols[row, col]), "k" or "i"


# A cols matrix above this many elements is built and multiplied in chunks of kernel rows
# (keeping it in cache), as long as each chunk keeps at least CHUNK_MIN_ROWS rows.
CHUNK_TARGET = 1 << 18
CHUNK_MIN_ROWS = 256


def _role_size(geom: ConvGeometry, role) -> int:
    if role == "o":
        return geom.out_features
    if role == "i":
        return geom.in_features
    return geom.kernel[role]


def _out_forms(geom: ConvGeometry) -> dict:
    """How GEMMs can write the output: {(form, fold): ldc} for the layouts it allows.

    The output positions must be evenly spaced (stride `unit` per position, row-major); then
    C = (o, positions) when unit is 1, C = (positions, o) when the features are contiguous,
    and images can join the columns before or after the positions when their stride fits.
    """
    tb, to, *ty = geom.out_strides
    y_strides = _contiguous_strides(geom.out_sizes)
    units = {t // y for t, y, n in zip(ty, y_strides, geom.out_sizes) if n > 1 and t % y == 0}
    unit = units.pop() if len(units) == 1 else (1 if geom.positions == 1 else None)
    if unit is None or not _same_strides(ty, [y * unit for y in y_strides], geom.out_sizes):
        return {}
    positions, images = geom.positions, geom.out_batch
    forms = {}
    if unit == 1:
        forms["OY", ""] = to
        if tb == positions:
            forms["OY", "by"] = to
    if unit == images and tb == 1:
        forms["OY", "yb"] = to
    if to == 1:
        forms["YO", ""] = unit
        if tb == positions * unit:
            forms["YO", "by"] = unit
        if unit == images * tb:
            forms["YO", "yb"] = tb
    return forms


def _im2col_plan(geom: ConvGeometry) -> _Im2colPlan:
    order = geom.rhs_order
    p = order.index("o")
    o_last = all(r == "o" or _role_size(geom, r) == 1 for r in order[p + 1:])
    # (with "o" last, only size-1 axes follow it: put them first, the run's end stays real)
    rows = order[p + 1:] + order[:p] if o_last else order[p + 1:]
    chunks = () if o_last else tuple(r for r in order[:p] if _role_size(geom, r) > 1)
    forms = _out_forms(geom)

    def writable(fold):
        return [form for form, f in forms if f == fold]

    fold = ""  # one GEMM per image, unless images are small or only a folded form fits
    if geom.out_batch > 1 and (geom.positions < FOLD_MAX_POSITIONS or not writable("")):
        fold = next((f for f in ("by", "yb") if writable(f)), "")
    form = writable(fold)[0] if writable(fold) else "scratch"
    ldc = forms.get((form, fold), 0)
    n_cols = geom.positions * (geom.out_batch if fold else 1)
    while o_last:  # a long (K, O) kernel: consume its leading rows in chunks
        lead = next((r for r in rows if _role_size(geom, r) > 1), None)
        count = math.prod(_role_size(geom, r) for r in rows)
        size = _role_size(geom, lead) if lead is not None else 1
        if count * n_cols <= CHUNK_TARGET or count // size < CHUNK_MIN_ROWS:
            break
        chunks += (lead,)
        rows = tuple(r for r in rows if r != lead)
    plan = _Im2colPlan(chunks, tuple(rows), o_last, form, ldc, fold, "y")
    plan.variant = _copy_variant(geom, plan)
    return plan


def _same_strides(strides, expected, sizes) -> bool:
    """Equal strides, ignoring axes of size 1 (their stride never matters)."""
    return all(s == e or n == 1 for s, e, n in zip(strides, expected, sizes))


def _copy_variant(geom: ConvGeometry, plan: _Im2colPlan) -> str:
    """Pick the copy loop whose innermost index runs longest along lhs's contiguous axis."""
    sb, sf, *ss = geom.lhs_strides
    last = geom.nsp - 1
    candidates = {"y": (geom.out_sizes[last], geom.strides[last] * ss[last])}
    last_row = plan.row_roles[-1]
    if last_row == "i":
        candidates["i"] = (geom.in_features, sf)
    elif last_row == last:
        candidates["k"] = (geom.kernel[last], geom.rhs_dilation[last] * ss[last])
    scores = {v: n * (4 if step == 1 else 1) for v, (n, step) in candidates.items()}
    return max(scores, key=lambda v: (scores[v], v == "y"))


def _cols_coefficients(geom: ConvGeometry, plan: _Im2colPlan) -> tuple[dict, int, int]:
    """Each role's coefficient in cols's flat address; (coefficients, rows, columns)."""
    rows = [r for r in plan.row_roles]
    positions = [("y", j) for j in range(geom.nsp)]
    columns = {"": positions, "by": ["b", *positions], "yb": [*positions, "b"]}[plan.fold]
    row_extents = [_role_size(geom, r) for r in rows]
    col_extents = [geom.out_batch if r == "b" else geom.out_sizes[r[1]] for r in columns]
    n_rows, n_cols = math.prod(row_extents), math.prod(col_extents)
    by_rows = plan.variant == "y"  # cols[row, column]; else cols[column, row]
    coef = {}
    for r, s in zip(rows, _contiguous_strides(row_extents)):
        coef[r] = s * (n_cols if by_rows else 1)
    for r, s in zip(columns, _contiguous_strides(col_extents)):
        coef[r] = s * (1 if by_rows else n_rows)
    return coef, n_rows, n_cols


def _im2col_conv(ctx, code, geom: ConvGeometry, dtype, ins, out) -> None:
    geom = geom.padded()
    lhs, rhs = ins
    rhs_ptr = f"{ins[1]}.ctypes.data"
    plan = _im2col_plan(geom)
    if plan.chunk_roles and math.prod(_role_size(geom, r) for r in plan.row_roles) < (
            MIN_CHUNK_ROWS):
        rhs, geom = _copy_rhs(ctx, code, geom, rhs, dtype, ("o", "i", 0, 1, 2))
        rhs_ptr = f"{rhs}.ctypes.data"
        plan = _im2col_plan(geom)
    coef, n_rows, n_cols = _cols_coefficients(geom, plan)
    cols = ctx.emitter.temp(ShapedArray((n_rows * n_cols,), dtype))
    result = None
    if plan.out_form == "scratch":
        result = ctx.emitter.temp(ShapedArray((geom.group_out * n_cols,), dtype))
    chunk_sizes = [_role_size(geom, r) for r in plan.chunk_roles]
    n_chunks = math.prod(chunk_sizes)
    g, b, chunk = ctx.fresh("g"), ctx.fresh("b"), ctx.fresh("ch")
    per_image = not plan.fold and geom.out_batch > 1
    code(f"# im2col: cols {n_rows} x {n_cols}, {n_chunks} chunk(s), "
         f"{'per image' if per_image else 'all images'}, innermost {plan.variant}")
    with code.block(f"for {g} in range({geom.groups}):" if geom.groups > 1 else None), \
            code.block(f"for {b} in range({geom.out_batch}):" if per_image else None):
        g_expr = g if geom.groups > 1 else "0"
        b_expr = b if per_image else "0"
        with code.block(f"for {chunk} in range({n_chunks}):" if n_chunks > 1 else None):
            fixed = _decode_chunk(ctx, code, plan.chunk_roles, chunk_sizes,
                                  chunk if n_chunks > 1 else "0")
            _call_im2col(ctx, code, geom, plan, coef, lhs, cols, g_expr, b_expr, fixed, dtype)
            beta = "0" if n_chunks == 1 else f"(0 if {chunk} == 0 else 1)"
            _emit_im2col_gemm(ctx, code, geom, plan, n_rows, n_cols, cols, rhs_ptr,
                              f"{out}.ctypes.data", result, g_expr, b_expr,
                              chunk if n_chunks > 1 else "0", beta, dtype)
        if result is not None:  # an output layout no GEMM writes directly
            tb, to, *ty = geom.out_strides
            geo = [1, geom.group_out, *geom.out_sizes, 0,
                   *_contiguous_strides((geom.group_out, *geom.out_sizes)), 0, to, *ty]
            base = _affine((b_expr, tb), (g_expr, geom.group_out * to))
            _call_helper(ctx, code, "strided_copy", dtype,
                         [Buffer(result), Buffer(out), 0, base, literal(0, dtype)], geo)


def _decode_chunk(ctx, code: _Code, roles, sizes, chunk: str) -> dict:
    """Values of the chunk roles for chunk index `chunk` (row-major over `sizes`)."""
    fixed = {}
    divisor = math.prod(sizes)
    for role, size in zip(roles, sizes):
        divisor //= size
        name = ctx.fresh("c")
        code(f"{name} = ({chunk} // {divisor}) % {size}")
        fixed[role] = name
    return fixed


def _dense(geom: ConvGeometry) -> bool:
    """Whether every window cell of every output position lies inside the (undilated) input:
    then the copy loops need no bounds checks."""
    return all(ld == 1 and lo <= 0 and (y - 1) * st + (k - 1) * rd - lo <= x - 1
               for x, k, y, st, rd, lo, ld in zip(geom.in_sizes, geom.kernel, geom.out_sizes,
                                                  geom.strides, geom.rhs_dilation, geom.pad_lo,
                                                  geom.lhs_dilation))


def _call_im2col(ctx, code, geom: ConvGeometry, plan: _Im2colPlan, coef: dict, lhs: str,
                 cols: str, g: str, b: str, fixed: dict, dtype) -> None:
    """cols[row, column] = lhs at the row's kernel offset and the column's output position."""
    sb, sf, *ss = geom.lhs_strides
    rows = set(plan.row_roles)
    extent = {"i": geom.in_features if "i" in rows else 1, "b": geom.out_batch if plan.fold
              else 1}
    geo = [extent["i"], *(geom.kernel[j] if j in rows else 1 for j in range(SPATIAL)),
           extent["b"], *geom.out_sizes,
           coef.get("i", 0), *(coef.get(j, 0) for j in range(SPATIAL)), coef.get("b", 0),
           *(coef[("y", j)] for j in range(SPATIAL)),
           sf, sb, *ss, *geom.position_fields(), int(_dense(geom))]
    src_base = _affine((geom.lhs_batch(g, "0" if plan.fold else b), sb),
                       (geom.lhs_feature(g, fixed.get("i", "0")), sf))
    variant = plan.variant
    # features innermost, and the kernel's last spatial axis right outside them, contiguous
    # in cols and in lhs: copy whole (k2, features) rows
    if variant == "i" and plan.row_roles[-2:] == (SPATIAL - 1, "i") and coef.get("i") == 1 and (
            coef.get(SPATIAL - 1) == geom.in_features and sf == 1
            and geom.rhs_dilation[-1] * ss[-1] == geom.in_features
            and geom.lhs_dilation[-1] == 1):
        variant = "runs"
    which = IM2COL_VARIANTS[variant, _dense(geom)]
    _call_helper(ctx, code, "im2col", dtype,
                 [which, Buffer(lhs), Buffer(cols), src_base, 0,
                  *(fixed.get(j, 0) for j in range(SPATIAL)), literal(0, dtype)], geo)


def _copy_rhs(ctx, code, geom: ConvGeometry, rhs: str, dtype, order) -> tuple[str, ConvGeometry]:
    """Copy rhs into a scratch laid out in role `order`; returns it and the new geometry."""
    scratch = ctx.emitter.temp(ShapedArray((geom.out_features * geom.in_features
                                            * geom.window,), dtype))
    shape = [_role_size(geom, r) for r in order]
    dst = dict(zip(order, _contiguous_strides(shape)))
    src = {"o": geom.rhs_strides[0], "i": geom.rhs_strides[1],
           **{j: geom.rhs_strides[2 + j] for j in range(geom.nsp)}}
    geo = [*shape, *(src[r] for r in order), *(dst[r] for r in order)]
    code(f"# the kernel, copied in role order {order}")
    _call_helper(ctx, code, "strided_copy", dtype,
                 [Buffer(rhs), Buffer(scratch), 0, 0, literal(0, dtype)], geo)
    rhs_strides = (dst["o"], dst["i"], *(dst[j] for j in range(geom.nsp)))
    return scratch, replace(geom, rhs_strides=rhs_strides, rhs_order=tuple(order))


def _gemm_call(ctx, dtype, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, beta) -> str:
    blas = ctx.use_blas(dtype.name)
    call = "gemm_call_f32" if dtype.name == "float32" else "gemm_call_f64"
    beta = literal(0, dtype) if beta == "0" else f"np.{dtype.name}({beta})"
    return (f"{call}({blas}, {trans_a}, {trans_b}, {m}, {n}, {k}, {a}, {max(lda, 1)}, {b}, "
            f"{max(ldb, 1)}, {c}, {max(ldc, 1)}, {beta})")


def _emit_im2col_gemm(ctx, code, geom: ConvGeometry, plan: _Im2colPlan, rows, n_cols, cols,
                      rhs_ptr, out_ptr, result, g, b, chunk, beta, dtype) -> None:
    """out (or the scratch result) (+)= kernel chunk x cols, as one GEMM."""
    item = dtype.itemsize
    og = geom.group_out
    if plan.o_last:  # the kernel is (rows, O) row-major; chunk `chunk` is a block of rows
        w_ptr = _ptr(rhs_ptr, _affine((chunk, rows * geom.out_features), (g, og)), item)
        w_trans_oy, w_trans_yo, w_ld = CBLAS_TRANS, CBLAS_NO_TRANS, geom.out_features
    else:  # chunk `chunk` of the kernel is (O, rows) row-major
        w_ptr = _ptr(rhs_ptr, _affine((chunk, geom.out_features * rows), (g, og * rows)), item)
        w_trans_oy, w_trans_yo, w_ld = CBLAS_NO_TRANS, CBLAS_TRANS, rows
    cols_ptr = f"{cols}.ctypes.data"
    by_rows = plan.variant == "y"
    cols_ld = n_cols if by_rows else rows
    tb, to, *_ = geom.out_strides
    if plan.out_form == "YO":  # out[(b, y), o] = cols^T @ W^T
        c_ptr = _ptr(out_ptr, _affine((b, tb), (g, og)), item)
        code(_gemm_call(ctx, dtype, CBLAS_TRANS if by_rows else CBLAS_NO_TRANS, w_trans_yo,
                        n_cols, og, rows, cols_ptr, cols_ld, w_ptr, w_ld, c_ptr, plan.ldc,
                        beta))
        return
    if plan.out_form == "OY":  # out[o, (b, y)] = W @ cols
        c_ptr, ldc = _ptr(out_ptr, _affine((b, tb), (g, og * to)), item), plan.ldc
    else:
        c_ptr, ldc = f"{result}.ctypes.data", n_cols
    code(_gemm_call(ctx, dtype, w_trans_oy, CBLAS_NO_TRANS if by_rows else CBLAS_TRANS, og,
                    n_cols, rows, w_ptr, w_ld, cols_ptr, cols_ld, c_ptr, ldc, beta))


# ================================================================================================
# GEMM first, then add up along the windows
# ================================================================================================


def _gemm_gather_conv(ctx, code, geom: ConvGeometry, dtype, ins, out) -> None:
    """T[(o, k), x] = W[o, :, k] . lhs[:, x] by GEMM, then out[o, y] = sum_k T[(o, k), x(y, k)].

    For a channels-last output (one group, no input dilation) the table is transposed,
    T[x, (k, o)] = lhs[x, :] . W[:, k, o], so that each window add runs along the features.
    """
    geom = geom.padded()
    _, to, *_ = geom.out_strides
    features_last = (to == 1 and geom.groups == 1 and geom.group_out > 1
                     and set(geom.lhs_dilation) == {1})
    (_gather_features_last if features_last else _gather_features_first)(
        ctx, code, geom, dtype, ins, out)


def _gather_features_first(ctx, code, geom: ConvGeometry, dtype, ins, out) -> None:
    item = dtype.itemsize
    og, n_in, window, x_total = geom.group_out, geom.in_features, geom.window, geom.in_positions
    kernel, _ = _copy_rhs(ctx, code, geom, ins[1], dtype, ("o", 0, 1, 2, "i"))
    table = ctx.emitter.temp(ShapedArray((og * window * x_total,), dtype))
    form = _lhs_matrix_form(geom)
    sb, sf, *ss = geom.lhs_strides
    tb, to, *ty = geom.out_strides
    k_strides = _contiguous_strides(geom.kernel)
    x_strides = _contiguous_strides(geom.in_sizes)
    geo = [og, *geom.kernel, *geom.out_sizes, window * x_total,
           *(s * x_total for s in k_strides), *x_strides, to, *ty, *geom.position_fields()]
    g, b = ctx.fresh("g"), ctx.fresh("b")
    code("# gemm_gather: T = kernel (O*K x I) @ image (I x X), then sums along the windows")
    with code.block(f"for {b} in range({geom.batch}):"), \
            code.block(f"for {g} in range({geom.groups}):" if geom.groups > 1 else None):
        g_expr = g if geom.groups > 1 else "0"
        a_ptr = _ptr(f"{kernel}.ctypes.data", _affine((g_expr, og * window * n_in)), item)
        b_ptr = _ptr(f"{ins[0]}.ctypes.data",
                     _affine((b, sb), (geom.lhs_feature(g_expr, "0"), sf)), item)
        trans_b, ldb = (CBLAS_NO_TRANS, sf) if form == "FX" else (CBLAS_TRANS, geom.features)
        code(_gemm_call(ctx, dtype, CBLAS_NO_TRANS, trans_b, og * window, x_total, n_in,
                        a_ptr, n_in, b_ptr, ldb, f"{table}.ctypes.data", x_total, "0"))
        out_base = _affine((b, tb), (g_expr, og * to))
        _call_helper(ctx, code, "window_sums", dtype,
                     [0, Buffer(table), Buffer(out), out_base, literal(0, dtype)], geo)


def _gather_features_last(ctx, code, geom: ConvGeometry, dtype, ins, out) -> None:
    item = dtype.itemsize
    n_out, n_in, window, x_total = geom.out_features, geom.in_features, geom.window, (
        geom.in_positions)
    kernel, _ = _copy_rhs(ctx, code, geom, ins[1], dtype, ("i", 0, 1, 2, "o"))
    row = window * n_out
    table = ctx.emitter.temp(ShapedArray((x_total * row,), dtype))
    form = _lhs_matrix_form(geom)
    sb, sf, *ss = geom.lhs_strides
    tb, to, *ty = geom.out_strides
    k_strides = _contiguous_strides(geom.kernel)
    x_strides = _contiguous_strides(geom.in_sizes)
    geo = [n_out, *geom.kernel, *geom.out_sizes, 1, *(s * n_out for s in k_strides),
           *(s * row for s in x_strides), to, *ty, *geom.position_fields()]
    b = ctx.fresh("b")
    code("# gemm_gather: T = image (X x I) @ kernel (I x K*O), then sums along the windows")
    with code.block(f"for {b} in range({geom.batch}):"):
        a_ptr = _ptr(f"{ins[0]}.ctypes.data", _affine((b, sb)), item)
        trans_a, lda = (CBLAS_TRANS, sf) if form == "FX" else (CBLAS_NO_TRANS, geom.features)
        code(_gemm_call(ctx, dtype, trans_a, CBLAS_NO_TRANS, x_total, row, n_in, a_ptr, lda,
                        f"{kernel}.ctypes.data", row, f"{table}.ctypes.data", row, "0"))
        _call_helper(ctx, code, "window_sums", dtype,
                     [1, Buffer(table), Buffer(out), _affine((b, tb)), literal(0, dtype)], geo)


# ================================================================================================
# Windowed reductions and max pooling's derivatives
# ================================================================================================


def _window_geo(eqn, operand_aval, windows_shape) -> list | None:
    """The helpers' geometry tuple (rank padded to 6), or None when the rank is larger."""
    p = eqn.params
    ndim = operand_aval.ndim
    if ndim > WINDOW_RANK:
        return None
    lead = WINDOW_RANK - ndim

    def padded(values, fill):
        return [fill] * lead + list(values)

    dilated = [_dilated(n, d) for n, d in zip(operand_aval.shape, p["base_dilation"])]
    return (padded(windows_shape, 1) + padded(p["window_dimensions"], 1)
            + padded(p["window_strides"], 1) + padded(p["window_dilation"], 1)
            + padded((lo for lo, _ in p["padding"]), 0) + padded(dilated, 1)
            + padded(p["base_dilation"], 1)
            + padded(_contiguous_strides(operand_aval.shape), 0))


def _lowest(dtype) -> str:
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return literal(-np.inf, dtype)
    return literal(np.iinfo(dtype).min, dtype)


def _emit_reduce_window(kind: str):
    def emit(ctx, eqn, ins, outs):
        operand_aval, out_aval = eqn.inputs[0].aval, eqn.outvars[0].aval
        if out_aval.size == 0:
            return ["pass"]
        init = literal(0, out_aval.dtype) if kind == "sum" else _lowest(out_aval.dtype)
        if operand_aval.size == 0:
            return [f"{outs[0]}.fill({init})"]
        geo = _window_geo(eqn, operand_aval, out_aval.shape)
        code = _Code()
        if geo is None:
            src, dst = ctx.fresh("flat"), ctx.fresh("flat")
            code(f"{src} = {ins[0]}.reshape({operand_aval.size})")
            code(f"{dst} = {outs[0]}.reshape({out_aval.size})")
            _generated_window_loops(ctx, code, eqn, operand_aval, out_aval.shape,
                                    _ReduceVisitor(ctx, code, kind, init, src, dst))
            return code.lines
        _call_helper(ctx, code, "window_reduce", out_aval.dtype,
                     [Buffer(ins[0]), Buffer(outs[0]), int(kind == "max"), init], geo)
        return code.lines

    return emit


def _emit_select(gather: bool):
    """select_and_gather_add (gather) / select_and_scatter_add: find each window's first
    maximum, then read the tangent there / add the source there."""

    def emit(ctx, eqn, ins, outs):
        values_aval, operand_aval = (a.aval for a in eqn.inputs)
        out_aval = eqn.outvars[0].aval
        windows_shape = out_aval.shape if gather else values_aval.shape
        n_windows = math.prod(windows_shape)
        zero = literal(0, out_aval.dtype)
        if n_windows == 0 or operand_aval.size == 0:
            return [f"{outs[0]}.fill({zero})"]
        code = _Code()
        where = ctx.emitter.temp(ShapedArray((n_windows,), np.dtype(np.int64)))
        geo = _window_geo(eqn, operand_aval, windows_shape)
        if geo is None:
            operand = ctx.fresh("flat")
            code(f"{operand} = {ins[1]}.reshape({operand_aval.size})")
            _generated_window_loops(ctx, code, eqn, operand_aval, windows_shape,
                                    _ArgmaxVisitor(ctx, code, operand, where, windows_shape))
        else:
            _call_helper(ctx, code, "window_argmax", operand_aval.dtype,
                         [Buffer(ins[1]), Buffer(where), literal(0, operand_aval.dtype)], geo)
        _call_helper(ctx, code, "select", out_aval.dtype,
                     [int(gather), Buffer(ins[0]), Buffer(where), Buffer(outs[0]), zero])
        return code.lines

    return emit


# --- generated loops for operands of rank > 6 ----------------------------------------------------


def _generated_window_loops(ctx, code: _Code, eqn, operand_aval, out_shape, visit) -> None:
    """Loops over output positions and their windows; `visit` writes the body."""
    p = eqn.params
    out_index = [ctx.fresh("w") for _ in out_shape]
    depth = code.depth
    for index, n in zip(out_index, out_shape):
        code(f"for {index} in range({n}):")
        code.depth += 1
    visit.start()
    body = code.depth
    terms = []
    for d, stride in enumerate(_contiguous_strides(operand_aval.shape)):
        k, pos = ctx.fresh("k"), ctx.fresh("p")
        code(f"for {k} in range({p['window_dimensions'][d]}):")
        code.depth += 1
        moved = _affine((out_index[d], p["window_strides"][d]), (k, p["window_dilation"][d]))
        code(f"{pos} = {moved} - {p['padding'][d][0]}")
        size, bd = _dilated(operand_aval.shape[d], p["base_dilation"][d]), p["base_dilation"][d]
        code(f"if 0 <= {pos} < {size} and {pos} % {bd} == 0:")
        code.depth += 1
        terms.append((f"({pos} // {bd})", stride))
    visit.cell(_affine(*terms))
    code.depth = body
    visit.finish(_affine(*zip(out_index, _contiguous_strides(out_shape))))
    code.depth = depth


class _ReduceVisitor:
    def __init__(self, ctx, code, kind, init, src, dst):
        self.code, self.kind, self.init, self.src, self.dst = code, kind, init, src, dst
        self.acc = ctx.fresh("acc")

    def start(self):
        self.code(f"{self.acc} = {self.init}")

    def cell(self, flat):
        acc, x = self.acc, f"{self.src}[{flat}]"
        if self.kind == "sum":
            self.code(f"{acc} = {acc} + {x}")
        else:
            self.code(f"{acc} = {acc} if ({acc} >= {x} or {acc} != {acc}) else {x}")

    def finish(self, window):
        self.code(f"{self.dst}[{window}] = {self.acc}")


class _ArgmaxVisitor:
    def __init__(self, ctx, code, operand, where, windows_shape):
        self.ctx, self.code, self.operand, self.where = ctx, code, operand, where
        self.best, self.at = ctx.fresh("best"), ctx.fresh("at")

    def start(self):
        self.code(f"{self.best} = {self.operand}[0]")
        self.code(f"{self.at} = -1")

    def cell(self, flat):
        v = self.ctx.fresh("v")
        self.code(f"{v} = {self.operand}[{flat}]")
        self.code(f"if {self.at} < 0 or {v} > {self.best} or ({v} != {v} and "
                  f"{self.best} == {self.best}):")
        self.code(f"{INDENT}{self.best} = {v}")
        self.code(f"{INDENT}{self.at} = {flat}")

    def finish(self, window):
        self.code(f"{self.where}[{window}] = {self.at}")


CONV_KERNELS = {
    "conv_general_dilated": Kernel(_emit_conv),
    "window_sum": Kernel(_emit_reduce_window("sum")),
    "window_max": Kernel(_emit_reduce_window("max")),
    "select_and_gather_add": Kernel(_emit_select(gather=True)),
    "select_and_scatter_add": Kernel(_emit_select(gather=False)),
}

