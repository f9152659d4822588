"""im2col + GEMM: copy the input windows into a scratch matrix, then multiply.

`cols` has one row per kernel in-feature/spatial offset (in the kernel's memory order) and one
column per output position (or per image and position, when all images share one GEMM); the
kernel times `cols` is the output. A kernel whose out-feature axis is not outermost is consumed
in chunks, one accumulating GEMM each, so the kernel gradient (whose "kernel" is the large
cotangent) needs no copy. The copy loop is picked so that its innermost index runs along the
input's contiguous axis.
"""

from __future__ import annotations

import math
from collections import namedtuple
from dataclasses import dataclass

import numba
from numba.np.unsafe.ndarray import to_fixed_tuple

from fnbrrr.core import ShapedArray
from fnbrrr.jit.blas import CBLAS_NO_TRANS, CBLAS_TRANS
from fnbrrr.jit.conv_kernels.calls import Buffer, array_at, c_helper, emit_helper_call
from fnbrrr.jit.conv_kernels.gemm import copy_kernel, gemm_call
from fnbrrr.jit.conv_kernels.geometry import ConvGeometry, role_size
from fnbrrr.jit.conv_kernels.loops import (
    NEST,
    POSITION_FIELDS,
    SPATIAL,
    StridedCopyGeo,
    copy_run,
    copy_valid,
    fill_run,
    flat,
    inside,
    undilate,
    valid_range,
)
from fnbrrr.jit.conv_kernels.source import Code, affine, contiguous_strides, pointer, same_strides
from fnbrrr.jit.lowering import literal

# Fold all images into one GEMM when each image has fewer output positions than this.
FOLD_MAX_POSITIONS = 64
# Copy the kernel into (O, I, K...) order when it would otherwise be consumed in chunks of
# fewer than this many rows (e.g. the flipped, role-swapped kernel of an input gradient).
MIN_CHUNK_ROWS = 32
# A cols matrix above this many elements is built and multiplied in chunks of kernel rows
# (keeping it in cache), as long as each chunk keeps at least CHUNK_MIN_ROWS rows.
CHUNK_TARGET = 1 << 18
CHUNK_MIN_ROWS = 256

# ================================================================================================
# The copy loops
# ================================================================================================

# Extents (i, k0, k1, k2, b, y0, y1, y2), their coefficients in cols, the src strides
# (feature, batch, x0, x1, x2), the position fields, then `dense` (1: no padding or input
# dilation: every window cell lies inside the input).
Im2colGeo = namedtuple("Im2colGeo", (
    "n_i", "n_k0", "n_k1", "n_k2", "n_b", "n_y0", "n_y1", "n_y2",
    "d_i", "d_k0", "d_k1", "d_k2", "d_b", "d_y0", "d_y1", "d_y2",
    "s_i", "s_b", "s0", "s1", "s2", *POSITION_FIELDS, "dense"))
IM2COL_SIZE = len(Im2colGeo._fields)

# Every copy loop takes (lhs, dst, src_base, dst_base, zero, g, kb0, kb1, kb2): `g` an
# `Im2colGeo`, `kb0..kb2` the offsets of the kernel axes that a chunked kernel fixes. Each call
# writes the whole of `dst` (one cols matrix). The checked and unchecked ("dense") variants
# are separate loop nests on purpose: sharing one keeps LLVM from vectorising the copies (3x).


@numba.njit(**NEST)
def im2col_positions_inner(lhs, dst, src_base, dst_base, zero, g, kb0, kb1, kb2):
    """The last output-position axis innermost (NCHW-like inputs), for inputs with padding
    or dilation: `dst` is zeroed, then only window cells inside are copied."""
    src = flat(lhs)
    dst[:] = zero
    for i in range(g.n_i):
        for k0 in range(g.n_k0):
            c0 = (k0 + kb0) * g.rd0 - g.lo0
            for k1 in range(g.n_k1):
                c1 = (k1 + kb1) * g.rd1 - g.lo1
                for k2 in range(g.n_k2):
                    c2 = (k2 + kb2) * g.rd2 - g.lo2
                    row = dst_base + i * g.d_i + k0 * g.d_k0 + k1 * g.d_k1 + k2 * g.d_k2
                    lo, hi = valid_range(c2, g.st2, g.L2, g.n_y2)
                    for b in range(g.n_b):
                        for y0 in range(g.n_y0):
                            p0 = y0 * g.st0 + c0
                            if not inside(p0, g.L0, g.ld0):
                                continue
                            s_0 = src_base + i * g.s_i + b * g.s_b + undilate(p0, g.ld0) * g.s0
                            for y1 in range(g.n_y1):
                                p1 = y1 * g.st1 + c1
                                if not inside(p1, g.L1, g.ld1):
                                    continue
                                s = s_0 + undilate(p1, g.ld1) * g.s1
                                d = row + b * g.d_b + y0 * g.d_y0 + y1 * g.d_y1
                                copy_valid(src, dst, s, d, c2, g.st2, g.L2, g.ld2, g.s2, g.d_y2,
                                           g.n_y2, lo, hi)


@numba.njit(**NEST)
def im2col_positions_inner_dense(lhs, dst, src_base, dst_base, zero, g, kb0, kb1, kb2):
    """`im2col_positions_inner` when every window cell lies inside the input: no checks."""
    src = flat(lhs)
    for i in range(g.n_i):
        for k0 in range(g.n_k0):
            for k1 in range(g.n_k1):
                for k2 in range(g.n_k2):
                    row = dst_base + i * g.d_i + k0 * g.d_k0 + k1 * g.d_k1 + k2 * g.d_k2
                    s_k = (src_base + i * g.s_i + ((k0 + kb0) * g.rd0 - g.lo0) * g.s0
                           + ((k1 + kb1) * g.rd1 - g.lo1) * g.s1
                           + ((k2 + kb2) * g.rd2 - g.lo2) * g.s2)
                    for b in range(g.n_b):
                        for y0 in range(g.n_y0):
                            for y1 in range(g.n_y1):
                                s = s_k + b * g.s_b + y0 * g.st0 * g.s0 + y1 * g.st1 * g.s1
                                d = row + b * g.d_b + y0 * g.d_y0 + y1 * g.d_y1
                                copy_run(src, dst, s, d, g.st2 * g.s2, g.d_y2, g.n_y2)


@numba.njit(**NEST)
def im2col_kernel_inner(lhs, dst, src_base, dst_base, zero, g, kb0, kb1, kb2):
    """The last kernel spatial axis innermost (kernel gradients: long windows), for inputs
    with padding or dilation."""
    src = flat(lhs)
    dst[:] = zero
    for b in range(g.n_b):
        for y0 in range(g.n_y0):
            e0 = y0 * g.st0 - g.lo0
            for y1 in range(g.n_y1):
                e1 = y1 * g.st1 - g.lo1
                for y2 in range(g.n_y2):
                    e2 = y2 * g.st2 - g.lo2 + kb2 * g.rd2
                    lo, hi = valid_range(e2, g.rd2, g.L2, g.n_k2)
                    column = dst_base + b * g.d_b + y0 * g.d_y0 + y1 * g.d_y1 + y2 * g.d_y2
                    for i in range(g.n_i):
                        for k0 in range(g.n_k0):
                            p0 = (k0 + kb0) * g.rd0 + e0
                            if not inside(p0, g.L0, g.ld0):
                                continue
                            s_0 = src_base + i * g.s_i + b * g.s_b + undilate(p0, g.ld0) * g.s0
                            for k1 in range(g.n_k1):
                                p1 = (k1 + kb1) * g.rd1 + e1
                                if not inside(p1, g.L1, g.ld1):
                                    continue
                                s = s_0 + undilate(p1, g.ld1) * g.s1
                                d = column + i * g.d_i + k0 * g.d_k0 + k1 * g.d_k1
                                copy_valid(src, dst, s, d, e2, g.rd2, g.L2, g.ld2, g.s2, g.d_k2,
                                           g.n_k2, lo, hi)


@numba.njit(**NEST)
def im2col_kernel_inner_dense(lhs, dst, src_base, dst_base, zero, g, kb0, kb1, kb2):
    """`im2col_kernel_inner` when every window cell lies inside the input: no checks."""
    src = flat(lhs)
    for b in range(g.n_b):
        for y0 in range(g.n_y0):
            for y1 in range(g.n_y1):
                for y2 in range(g.n_y2):
                    column = dst_base + b * g.d_b + y0 * g.d_y0 + y1 * g.d_y1 + y2 * g.d_y2
                    s_y = (src_base + b * g.s_b + (y0 * g.st0 - g.lo0 + kb0 * g.rd0) * g.s0
                           + (y1 * g.st1 - g.lo1 + kb1 * g.rd1) * g.s1
                           + (y2 * g.st2 - g.lo2 + kb2 * g.rd2) * g.s2)
                    for i in range(g.n_i):
                        for k0 in range(g.n_k0):
                            for k1 in range(g.n_k1):
                                s = s_y + i * g.s_i + k0 * g.rd0 * g.s0 + k1 * g.rd1 * g.s1
                                d = column + i * g.d_i + k0 * g.d_k0 + k1 * g.d_k1
                                copy_run(src, dst, s, d, g.rd2 * g.s2, g.d_k2, g.n_k2)


@numba.njit(**NEST)
def im2col_features_inner(lhs, dst, src_base, dst_base, zero, g, kb0, kb1, kb2):
    """The in-feature axis innermost (NHWC-like inputs): one run of features per cell."""
    src = flat(lhs)
    dense = g.dense != 0
    for b in range(g.n_b):
        for y0 in range(g.n_y0):
            for y1 in range(g.n_y1):
                for y2 in range(g.n_y2):
                    column = dst_base + b * g.d_b + y0 * g.d_y0 + y1 * g.d_y1 + y2 * g.d_y2
                    for k0 in range(g.n_k0):
                        p0 = y0 * g.st0 + (k0 + kb0) * g.rd0 - g.lo0
                        for k1 in range(g.n_k1):
                            p1 = y1 * g.st1 + (k1 + kb1) * g.rd1 - g.lo1
                            for k2 in range(g.n_k2):
                                p2 = y2 * g.st2 + (k2 + kb2) * g.rd2 - g.lo2
                                d = column + k0 * g.d_k0 + k1 * g.d_k1 + k2 * g.d_k2
                                if dense or (inside(p0, g.L0, g.ld0) and inside(p1, g.L1, g.ld1)
                                             and inside(p2, g.L2, g.ld2)):
                                    s = (src_base + b * g.s_b + undilate(p0, g.ld0) * g.s0
                                         + undilate(p1, g.ld1) * g.s1
                                         + undilate(p2, g.ld2) * g.s2)
                                    copy_run(src, dst, s, d, g.s_i, g.d_i, g.n_i)
                                else:
                                    fill_run(dst, d, g.d_i, 0, g.n_i, zero)


@numba.njit(**NEST)
def im2col_features_runs(lhs, dst, src_base, dst_base, zero, g, kb0, kb1, kb2):
    """`im2col_features_inner` when a kernel row (k2, then features) is contiguous in both the
    input and cols (channels-last input, HWIO kernel, no input dilation along the last axis):
    each (k0, k1) cell copies one run of n_k2 * n_i values instead of n_k2 runs of n_i."""
    src = flat(lhs)
    row = g.n_k2 * g.n_i
    for b in range(g.n_b):
        for y0 in range(g.n_y0):
            for y1 in range(g.n_y1):
                for y2 in range(g.n_y2):
                    column = dst_base + b * g.d_b + y0 * g.d_y0 + y1 * g.d_y1 + y2 * g.d_y2
                    e2 = y2 * g.st2 - g.lo2 + kb2 * g.rd2
                    lo, hi = valid_range(e2, g.rd2, g.L2, g.n_k2)
                    for k0 in range(g.n_k0):
                        p0 = y0 * g.st0 + (k0 + kb0) * g.rd0 - g.lo0
                        for k1 in range(g.n_k1):
                            p1 = y1 * g.st1 + (k1 + kb1) * g.rd1 - g.lo1
                            d = column + k0 * g.d_k0 + k1 * g.d_k1
                            if inside(p0, g.L0, g.ld0) and inside(p1, g.L1, g.ld1):
                                fill_run(dst, d, 1, 0, lo * g.n_i, zero)
                                s = (src_base + b * g.s_b + undilate(p0, g.ld0) * g.s0
                                     + undilate(p1, g.ld1) * g.s1 + (lo * g.rd2 + e2) * g.s2)
                                copy_run(src, dst, s, d + lo * g.n_i, 1, 1, (hi - lo) * g.n_i)
                                fill_run(dst, d, 1, hi * g.n_i, row, zero)
                            else:
                                fill_run(dst, d, 1, 0, row, zero)


# The copy loop a call runs, by (innermost index, dense): the `im2col_*` helper it calls.
_COPY_LOOPS = ("im2col_positions_inner", "im2col_positions_inner_dense", "im2col_kernel_inner",
               "im2col_kernel_inner_dense", "im2col_features_inner", "im2col_features_runs")
IM2COL_VARIANTS = {("y", False): _COPY_LOOPS[0], ("y", True): _COPY_LOOPS[1],
                   ("k", False): _COPY_LOOPS[2], ("k", True): _COPY_LOOPS[3],
                   ("i", False): _COPY_LOOPS[4], ("i", True): _COPY_LOOPS[4],
                   ("runs", False): _COPY_LOOPS[5], ("runs", True): _COPY_LOOPS[5]}


def _im2col_wrapper(which: int):
    """The C-ABI wrapper (see `calls`) of copy loop `_COPY_LOOPS[which]`: a separate helper
    per loop, so that a program compiles only the loops it calls (Numba drops the branches
    that `which`, a constant, rules out)."""

    def c_im2col(lhs, n_lhs, dst, n_dst, src_base, dst_base, kb0, kb1, kb2, zero, geo):
        src, cols = array_at(lhs, n_lhs, zero), array_at(dst, n_dst, zero)
        g = Im2colGeo(*to_fixed_tuple(array_at(geo, IM2COL_SIZE, geo), IM2COL_SIZE))
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

    return c_im2col


for _which, _name in enumerate(_COPY_LOOPS):
    c_helper(_name, "iiiiiiiiiTi")(_im2col_wrapper(_which))


# ================================================================================================
# The plan and the emitted program
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


def _out_forms(geom: ConvGeometry) -> dict:
    """How GEMMs can write the output: {(form, fold): ldc} for the layouts it allows.

    The output positions must be evenly spaced (stride `unit` per position, row-major); then
    C = (o, positions) when unit is 1, C = (positions, o) when the features are contiguous,
    and images can join the columns before or after the positions when their stride fits.
    """
    tb, to, *ty = geom.out_strides
    y_strides = contiguous_strides(geom.out_sizes)
    units = {t // y for t, y, n in zip(ty, y_strides, geom.out_sizes) if n > 1 and t % y == 0}
    unit = units.pop() if len(units) == 1 else (1 if geom.positions == 1 else None)
    if unit is None or not same_strides(ty, [y * unit for y in y_strides], geom.out_sizes):
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
    o_last = all(r == "o" or role_size(geom, r) == 1 for r in order[p + 1:])
    # (with "o" last, only size-1 axes follow it: put them first, the run's end stays real)
    rows = order[p + 1:] + order[:p] if o_last else order[p + 1:]
    chunks = () if o_last else tuple(r for r in order[:p] if role_size(geom, r) > 1)
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
        lead = next((r for r in rows if role_size(geom, r) > 1), None)
        count = math.prod(role_size(geom, r) for r in rows)
        size = role_size(geom, lead) if lead is not None else 1
        if count * n_cols <= CHUNK_TARGET or count // size < CHUNK_MIN_ROWS:
            break
        chunks += (lead,)
        rows = tuple(r for r in rows if r != lead)
    plan = _Im2colPlan(chunks, tuple(rows), o_last, form, ldc, fold, "y")
    plan.variant = _copy_variant(geom, plan)
    return plan


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
    row_extents = [role_size(geom, r) for r in rows]
    col_extents = [geom.out_batch if r == "b" else geom.out_sizes[r[1]] for r in columns]
    n_rows, n_cols = math.prod(row_extents), math.prod(col_extents)
    by_rows = plan.variant == "y"  # cols[row, column]; else cols[column, row]
    coef = {}
    for r, s in zip(rows, contiguous_strides(row_extents)):
        coef[r] = s * (n_cols if by_rows else 1)
    for r, s in zip(columns, contiguous_strides(col_extents)):
        coef[r] = s * (1 if by_rows else n_rows)
    return coef, n_rows, n_cols


def im2col_conv(ctx, code, geom: ConvGeometry, dtype, ins, out) -> None:
    """Emit out = lhs (*) rhs as im2col copies and GEMMs (see the module docstring)."""
    geom = geom.padded()
    lhs, rhs = ins
    rhs_ptr = f"{ins[1]}.ctypes.data"
    plan = _im2col_plan(geom)
    if plan.chunk_roles and math.prod(role_size(geom, r) for r in plan.row_roles) < (
            MIN_CHUNK_ROWS):
        rhs, geom = copy_kernel(ctx, code, geom, rhs, dtype, ("o", "i", 0, 1, 2))
        rhs_ptr = f"{rhs}.ctypes.data"
        plan = _im2col_plan(geom)
    coef, n_rows, n_cols = _cols_coefficients(geom, plan)
    cols = ctx.emitter.temp(ShapedArray((n_rows * n_cols,), dtype))
    result = None
    if plan.out_form == "scratch":
        result = ctx.emitter.temp(ShapedArray((geom.group_out * n_cols,), dtype))
    chunk_sizes = [role_size(geom, r) for r in plan.chunk_roles]
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
            geo = StridedCopyGeo(1, geom.group_out, *geom.out_sizes, 0,
                                 *contiguous_strides((geom.group_out, *geom.out_sizes)), 0,
                                 to, *ty)
            base = affine((b_expr, tb), (g_expr, geom.group_out * to))
            emit_helper_call(ctx, code, "strided_copy", dtype,
                             [Buffer(result), Buffer(out), 0, base, literal(0, dtype)], geo)


def _decode_chunk(ctx, code: Code, roles, sizes, chunk: str) -> dict:
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
    geo = Im2colGeo(extent["i"], *(geom.kernel[j] if j in rows else 1 for j in range(SPATIAL)),
                    extent["b"], *geom.out_sizes,
                    coef.get("i", 0), *(coef.get(j, 0) for j in range(SPATIAL)),
                    coef.get("b", 0), *(coef[("y", j)] for j in range(SPATIAL)),
                    sf, sb, *ss, *geom.position_fields(), int(_dense(geom)))
    src_base = affine((geom.lhs_batch(g, "0" if plan.fold else b), sb),
                      (geom.lhs_feature(g, fixed.get("i", "0")), sf))
    variant = plan.variant
    # features innermost, and the kernel's last spatial axis right outside them, contiguous
    # in cols and in lhs: copy whole (k2, features) rows
    if variant == "i" and plan.row_roles[-2:] == (SPATIAL - 1, "i") and coef.get("i") == 1 and (
            coef.get(SPATIAL - 1) == geom.in_features and sf == 1
            and geom.rhs_dilation[-1] * ss[-1] == geom.in_features
            and geom.lhs_dilation[-1] == 1):
        variant = "runs"
    emit_helper_call(ctx, code, IM2COL_VARIANTS[variant, _dense(geom)], dtype,
                     [Buffer(lhs), Buffer(cols), src_base, 0,
                      *(fixed.get(j, 0) for j in range(SPATIAL)), literal(0, dtype)], geo)


def _emit_im2col_gemm(ctx, code, geom: ConvGeometry, plan: _Im2colPlan, rows, n_cols, cols,
                      rhs_ptr, out_ptr, result, g, b, chunk, beta, dtype) -> None:
    """out (or the scratch result) (+)= kernel chunk x cols, as one GEMM."""
    item = dtype.itemsize
    og = geom.group_out
    if plan.o_last:  # the kernel is (rows, O) row-major; chunk `chunk` is a block of rows
        w_ptr = pointer(rhs_ptr, affine((chunk, rows * geom.out_features), (g, og)), item)
        w_trans_oy, w_trans_yo, w_ld = CBLAS_TRANS, CBLAS_NO_TRANS, geom.out_features
    else:  # chunk `chunk` of the kernel is (O, rows) row-major
        w_ptr = pointer(rhs_ptr, affine((chunk, geom.out_features * rows), (g, og * rows)), item)
        w_trans_oy, w_trans_yo, w_ld = CBLAS_NO_TRANS, CBLAS_TRANS, rows
    cols_ptr = f"{cols}.ctypes.data"
    by_rows = plan.variant == "y"
    cols_ld = n_cols if by_rows else rows
    tb, to, *_ = geom.out_strides
    if plan.out_form == "YO":  # out[(b, y), o] = cols^T @ W^T
        c_ptr = pointer(out_ptr, affine((b, tb), (g, og)), item)
        code(gemm_call(ctx, dtype, CBLAS_TRANS if by_rows else CBLAS_NO_TRANS, w_trans_yo,
                        n_cols, og, rows, cols_ptr, cols_ld, w_ptr, w_ld, c_ptr, plan.ldc,
                        beta))
        return
    if plan.out_form == "OY":  # out[o, (b, y)] = W @ cols
        c_ptr, ldc = pointer(out_ptr, affine((b, tb), (g, og * to)), item), plan.ldc
    else:
        c_ptr, ldc = f"{result}.ctypes.data", n_cols
    code(gemm_call(ctx, dtype, w_trans_oy, CBLAS_NO_TRANS if by_rows else CBLAS_TRANS, og,
                    n_cols, rows, w_ptr, w_ld, cols_ptr, cols_ld, c_ptr, ldc, beta))
