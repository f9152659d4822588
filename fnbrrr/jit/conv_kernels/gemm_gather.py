"""GEMM first, then add up along the windows (input gradients).

The input gradient of a convolution is a convolution of the padded, dilated cotangent; an
im2col matrix of it would be mostly zeros. Instead, multiply first over the *undilated* input
positions, `T[(o, k), x] = sum_c W[o, c, k] * lhs[c, x]`, then add `T` up along the windows,
`out[o, y] = sum_k T[(o, k), x(y, k)]` (the `window_sums` helpers).
"""

from __future__ import annotations

from collections import namedtuple

import numba
from numba.np.unsafe.ndarray import to_fixed_tuple

from fnbrrr.core import ShapedArray
from fnbrrr.jit.blas import CBLAS_NO_TRANS, CBLAS_TRANS
from fnbrrr.jit.conv_kernels.calls import Buffer, array_at, c_helper, emit_helper_call
from fnbrrr.jit.conv_kernels.gemm import copy_kernel, gemm_call
from fnbrrr.jit.conv_kernels.geometry import ConvGeometry, lhs_matrix_form
from fnbrrr.jit.conv_kernels.loops import (
    INLINE,
    NEST,
    POSITION_FIELDS,
    add_run,
    fill_run,
    flat,
    inside,
    u,
    valid_range,
)
from fnbrrr.jit.conv_kernels.source import affine, contiguous_strides, pointer
from fnbrrr.jit.lowering import literal

# Extents (o, k0, k1, k2, y0, y1, y2), table strides (o, k0, k1, k2 rows; x0, x1, x2
# positions), dst strides (o, y0, y1, y2), then the position fields.
WindowSumsGeo = namedtuple("WindowSumsGeo", (
    "n_o", "n_k0", "n_k1", "n_k2", "n_y0", "n_y1", "n_y2",
    "t_o", "t_k0", "t_k1", "t_k2", "t_x0", "t_x1", "t_x2",
    "d_o", "d_y0", "d_y1", "d_y2", *POSITION_FIELDS))
WINDOW_SUMS_SIZE = len(WindowSumsGeo._fields)


@numba.njit(**INLINE)
def _box(g, k0, k1, k2):
    """Kernel offset k's input offsets c0..c2 (of output position 0) and, per axis, the output
    positions [lo, hi) whose input position exists: without input dilation these form a box,
    which the window sums cover with no per-row checks."""
    c0, c1, c2 = k0 * g.rd0 - g.lo0, k1 * g.rd1 - g.lo1, k2 * g.rd2 - g.lo2
    lo_0, hi_0 = valid_range(c0, g.st0, g.L0, g.n_y0)
    lo_1, hi_1 = valid_range(c1, g.st1, g.L1, g.n_y1)
    lo_2, hi_2 = valid_range(c2, g.st2, g.L2, g.n_y2)
    return c0, c1, c2, lo_0, hi_0, lo_1, hi_1, lo_2, hi_2


@numba.njit(**INLINE)
def _zero_windows(dst, dst_base, zero, g):
    """dst[o, y] = zero for every output feature o and position y."""
    for o in range(g.n_o):
        for y0 in range(g.n_y0):
            for y1 in range(g.n_y1):
                fill_run(dst, dst_base + o * g.d_o + y0 * g.d_y0 + y1 * g.d_y1, g.d_y2, 0,
                         g.n_y2, zero)


@numba.njit(**NEST)
def window_sums(table, out, dst_base, zero, g):
    """dst[o, y] = sum_k table[(o, k), x(y, k)] over the k whose input position x exists;
    `g` a `WindowSumsGeo`, with no input dilation (`window_sums_dilated` has it)."""
    dst = flat(out)
    _zero_windows(dst, dst_base, zero, g)
    for o in range(g.n_o):
        for k0 in range(g.n_k0):
            for k1 in range(g.n_k1):
                for k2 in range(g.n_k2):
                    c0, c1, c2, lo_0, hi_0, lo_1, hi_1, lo_2, hi_2 = _box(g, k0, k1, k2)
                    row = (o * g.t_o + k0 * g.t_k0 + k1 * g.t_k1 + k2 * g.t_k2 + c0 * g.t_x0
                           + c1 * g.t_x1 + (lo_2 * g.st2 + c2) * g.t_x2)
                    base = dst_base + o * g.d_o + lo_2 * g.d_y2
                    for y0 in range(lo_0, hi_0):
                        for y1 in range(lo_1, hi_1):
                            add_run(table, dst, row + y0 * g.st0 * g.t_x0 + y1 * g.st1 * g.t_x1,
                                    base + y0 * g.d_y0 + y1 * g.d_y1, g.st2 * g.t_x2, g.d_y2,
                                    hi_2 - lo_2)


@numba.njit(**NEST)
def window_sums_features_last(table, out, dst_base, zero, g):
    """`window_sums` for a channels-last output from a table laid out T[x, (k, o)]: every
    (output position, kernel offset) adds one contiguous run over the features. No input
    dilation. `g` as for `window_sums` (with t_o the features' stride in a table row)."""
    dst = flat(out)
    for y0 in range(g.n_y0):
        for y1 in range(g.n_y1):
            for y2 in range(g.n_y2):
                fill_run(dst, dst_base + y0 * g.d_y0 + y1 * g.d_y1 + y2 * g.d_y2, g.d_o, 0,
                         g.n_o, zero)
    for k0 in range(g.n_k0):
        for k1 in range(g.n_k1):
            for k2 in range(g.n_k2):
                c0, c1, c2, lo_0, hi_0, lo_1, hi_1, lo_2, hi_2 = _box(g, k0, k1, k2)
                row = (k0 * g.t_k0 + k1 * g.t_k1 + k2 * g.t_k2 + c0 * g.t_x0 + c1 * g.t_x1
                       + c2 * g.t_x2)
                for y0 in range(lo_0, hi_0):
                    for y1 in range(lo_1, hi_1):
                        t = row + y0 * g.st0 * g.t_x0 + y1 * g.st1 * g.t_x1
                        d = dst_base + y0 * g.d_y0 + y1 * g.d_y1
                        for y2 in range(lo_2, hi_2):
                            add_run(table, dst, t + y2 * g.st2 * g.t_x2, d + y2 * g.d_y2, g.t_o,
                                    g.d_o, g.n_o)


@numba.njit(**INLINE)
def _dilated_range(offset, dilation, limit, n_in):
    """For window sums over a dilated input with stride 1: the input positions x < n_in
    whose output position x * dilation - offset lies in [0, limit)."""
    lo = -((-offset) // dilation)  # ceil(offset / dilation)
    hi = (limit - 1 + offset) // dilation + 1
    lo = min(max(lo, 0), n_in)
    return lo, max(min(hi, n_in), lo)


@numba.njit(**NEST)
def window_sums_dilated(table, out, dst_base, zero, g):
    """`window_sums` when the input is dilated (the input gradient of a strided convolution).

    Runs over input positions: with stride 1 (the usual case), input position x feeds output
    position x * dilation - offset, a strided run with no per-element test.
    """
    dst = flat(out)
    _zero_windows(dst, dst_base, zero, g)
    x0_n, x1_n, x2_n = ((g.L0 - 1) // g.ld0 + 1, (g.L1 - 1) // g.ld1 + 1,
                        (g.L2 - 1) // g.ld2 + 1)
    unit_strides = g.st0 == 1 and g.st1 == 1 and g.st2 == 1
    for o in range(g.n_o):
        for k0 in range(g.n_k0):
            c0 = k0 * g.rd0 - g.lo0
            for k1 in range(g.n_k1):
                c1 = k1 * g.rd1 - g.lo1
                for k2 in range(g.n_k2):
                    c2 = k2 * g.rd2 - g.lo2
                    row = o * g.t_o + k0 * g.t_k0 + k1 * g.t_k1 + k2 * g.t_k2
                    base = dst_base + o * g.d_o
                    if unit_strides:
                        a0, b0 = _dilated_range(c0, g.ld0, g.n_y0, x0_n)
                        a1, b1 = _dilated_range(c1, g.ld1, g.n_y1, x1_n)
                        a2, b2 = _dilated_range(c2, g.ld2, g.n_y2, x2_n)
                        for x0 in range(a0, b0):
                            for x1 in range(a1, b1):
                                d = (base + (x0 * g.ld0 - c0) * g.d_y0
                                     + (x1 * g.ld1 - c1) * g.d_y1 + (a2 * g.ld2 - c2) * g.d_y2)
                                add_run(table, dst, row + x0 * g.t_x0 + x1 * g.t_x1
                                        + a2 * g.t_x2, d, g.t_x2, g.ld2 * g.d_y2, b2 - a2)
                        continue
                    for y0 in range(g.n_y0):
                        p0 = y0 * g.st0 + c0
                        if not inside(p0, g.L0, g.ld0):
                            continue
                        for y1 in range(g.n_y1):
                            p1 = y1 * g.st1 + c1
                            if not inside(p1, g.L1, g.ld1):
                                continue
                            t = row + (p0 // g.ld0) * g.t_x0 + (p1 // g.ld1) * g.t_x1
                            d = base + y0 * g.d_y0 + y1 * g.d_y1
                            for y2 in range(g.n_y2):
                                p2 = y2 * g.st2 + c2
                                if inside(p2, g.L2, g.ld2):
                                    dst[u(d + y2 * g.d_y2)] += table[u(t + (p2 // g.ld2) * g.t_x2)]


# The window-sum loops, each a helper of its own (a program compiles only those it calls).
_WINDOW_SUMS = ("window_sums", "window_sums_dilated", "window_sums_features_last")


def _window_sums_wrapper(which: int):
    """The C-ABI wrapper (see `calls`) of loop `_WINDOW_SUMS[which]` (Numba drops the branches
    that `which`, a constant, rules out)."""

    def c_window_sums(table, n_table, out, n_out, dst_base, zero, geo):
        t, o = array_at(table, n_table, zero), array_at(out, n_out, zero)
        g = WindowSumsGeo(*to_fixed_tuple(array_at(geo, WINDOW_SUMS_SIZE, geo),
                                          WINDOW_SUMS_SIZE))
        if which == 0:
            window_sums(t, o, dst_base, zero, g)
        elif which == 1:
            window_sums_dilated(t, o, dst_base, zero, g)
        else:
            window_sums_features_last(t, o, dst_base, zero, g)

    return c_window_sums


for _which, _name in enumerate(_WINDOW_SUMS):
    c_helper(_name, "iiiiiTi")(_window_sums_wrapper(_which))


def gemm_gather_conv(ctx, code, geom: ConvGeometry, dtype, ins, out) -> None:
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
    kernel, _ = copy_kernel(ctx, code, geom, ins[1], dtype, ("o", 0, 1, 2, "i"))
    table = ctx.emitter.temp(ShapedArray((og * window * x_total,), dtype))
    form = lhs_matrix_form(geom)
    sb, sf, *ss = geom.lhs_strides
    tb, to, *ty = geom.out_strides
    k_strides = contiguous_strides(geom.kernel)
    x_strides = contiguous_strides(geom.in_sizes)
    geo = WindowSumsGeo(og, *geom.kernel, *geom.out_sizes, window * x_total,
                        *(s * x_total for s in k_strides), *x_strides, to, *ty,
                        *geom.position_fields())
    g, b = ctx.fresh("g"), ctx.fresh("b")
    code("# gemm_gather: T = kernel (O*K x I) @ image (I x X), then sums along the windows")
    with code.block(f"for {b} in range({geom.batch}):"), \
            code.block(f"for {g} in range({geom.groups}):" if geom.groups > 1 else None):
        g_expr = g if geom.groups > 1 else "0"
        a_ptr = pointer(f"{kernel}.ctypes.data", affine((g_expr, og * window * n_in)), item)
        b_ptr = pointer(f"{ins[0]}.ctypes.data",
                     affine((b, sb), (geom.lhs_feature(g_expr, "0"), sf)), item)
        trans_b, ldb = (CBLAS_NO_TRANS, sf) if form == "FX" else (CBLAS_TRANS, geom.features)
        code(gemm_call(ctx, dtype, CBLAS_NO_TRANS, trans_b, og * window, x_total, n_in,
                        a_ptr, n_in, b_ptr, ldb, f"{table}.ctypes.data", x_total, "0"))
        out_base = affine((b, tb), (g_expr, og * to))
        name = "window_sums" if set(geom.lhs_dilation) == {1} else "window_sums_dilated"
        emit_helper_call(ctx, code, name, dtype,
                         [Buffer(table), Buffer(out), out_base, literal(0, dtype)], geo)


def _gather_features_last(ctx, code, geom: ConvGeometry, dtype, ins, out) -> None:
    item = dtype.itemsize
    n_out, n_in, window, x_total = geom.out_features, geom.in_features, geom.window, (
        geom.in_positions)
    kernel, _ = copy_kernel(ctx, code, geom, ins[1], dtype, ("i", 0, 1, 2, "o"))
    row = window * n_out
    table = ctx.emitter.temp(ShapedArray((x_total * row,), dtype))
    form = lhs_matrix_form(geom)
    sb, sf, *ss = geom.lhs_strides
    tb, to, *ty = geom.out_strides
    k_strides = contiguous_strides(geom.kernel)
    x_strides = contiguous_strides(geom.in_sizes)
    geo = WindowSumsGeo(n_out, *geom.kernel, *geom.out_sizes, 1,
                        *(s * n_out for s in k_strides), *(s * row for s in x_strides), to,
                        *ty, *geom.position_fields())
    b = ctx.fresh("b")
    code("# gemm_gather: T = image (X x I) @ kernel (I x K*O), then sums along the windows")
    with code.block(f"for {b} in range({geom.batch}):"):
        a_ptr = pointer(f"{ins[0]}.ctypes.data", affine((b, sb)), item)
        trans_a, lda = (CBLAS_TRANS, sf) if form == "FX" else (CBLAS_NO_TRANS, geom.features)
        code(gemm_call(ctx, dtype, trans_a, CBLAS_NO_TRANS, x_total, row, n_in, a_ptr, lda,
                        f"{kernel}.ctypes.data", row, f"{table}.ctypes.data", row, "0"))
        emit_helper_call(ctx, code, "window_sums_features_last", dtype,
                         [Buffer(table), Buffer(out), affine((b, tb)), literal(0, dtype)], geo)
