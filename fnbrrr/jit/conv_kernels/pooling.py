"""Windowed reductions (`window_sum`, `window_max`) and max pooling's derivatives
(`select_and_gather_add`, `select_and_scatter_add`).

Two families of compiled helpers:

* **tiles**: windows that tile the operand (window == stride, no padding, no dilation, every
  size divisible), the usual pooling layers. The operand is read as alternating output and
  window axes, (O0, W0, O1, W1, O2, W2, O3, W3) after merging neighbours and padding with
  size-1 axes; each tile is folded with no bounds checks, and 2x2 pools (NCHW or channels
  last) get constant tile sizes, so that LLVM unrolls the tiles and vectorises along a row.
  The derivatives are a per-tile arg-max (no two tiles share a cell): the max, then the
  first cell holding it, chosen with selects, never with branches on the data. Measured on
  the flagship's first pool (128x16x28x28 f32, one core): forward 0.51 ms, VJP 1.64 ms, where
  the `windows` helpers took 10.2 / 17.5 ms and a reshape to (N, C, H/2, 2, W/2, 2) and a max
  over the window axes 0.76 / 4.46 ms.
* **windows**: anything else of rank <= 6 (padding, dilations, overlapping windows), one window
  at a time: each loop level lists its axis's cells that are not padding, then the fold over
  their product checks nothing (compiles in 4 s where a bounds check per cell took 11 s, and
  runs ~20% faster). Operands of higher rank get generated loops.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numba
import numpy as np
from numba.np.unsafe.ndarray import to_fixed_tuple

from fnbrrr.core import ShapedArray
from fnbrrr.jit.conv_kernels.calls import Buffer, array_at, c_helper, emit_helper_call
from fnbrrr.jit.conv_kernels.loops import HELPER, INLINE, NEST, flat, inside, u, undilate
from fnbrrr.jit.conv_kernels.source import INDENT, Code, affine, contiguous_strides, dilated
from fnbrrr.jit.lowering import Kernel, literal

WINDOW_RANK = 6  # window helpers take operands of rank <= 6, padded with leading size-1 axes
TILE_AXES = 4  # tile helpers take (O0, W0, ..., O3, W3)

# ================================================================================================
# Tiles: non-overlapping windows
# ================================================================================================

# Per tile axis t: the output extent n_t, the window extent w_t, the operand stride of one
# output step a_t and of one window step b_t. The output is C-contiguous over (n0..n3).
TileGeo = namedtuple("TileGeo", ("n0", "n1", "n2", "n3", "w0", "w1", "w2", "w3",
                                 "a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3"))
TILE_SIZE = len(TileGeo._fields)


# What `_tile_nest` computes per tile.
TILE_SUM, TILE_MAX, TILE_GATHER, TILE_SCATTER = 0, 1, 2, 3
# Tile sizes: read from the geometry, or constant for 2x2 pools of NCHW / channels-last operands.
SHAPE_ANY, SHAPE_2X2, SHAPE_2X2_LAST = 0, 1, 2


# The passes over the cells first + k0*b0 + k1*b1 + k2*b2 + k3*b3 of one tile (b3 and the
# tile sizes w0..w3 as arguments: constants for 2x2 tiles). Every choice is a select, not a
# branch: branches on the data cost 3x (mispredictions). Each pass is a block of its own, so
# that a tile helper inlines only the code that it runs (Numba cannot drop the others).


@numba.njit(**INLINE)
def _tile_fold(is_max, src, first, acc, g, w0, w1, w2, w3, b3):
    """`acc` plus the sum of the tile's cells or, `is_max`, their max (a NaN wins)."""
    for k0 in range(w0):
        for k1 in range(w1):
            for k2 in range(w2):
                row = first + k0 * g.b0 + k1 * g.b1 + k2 * g.b2
                for k3 in range(w3):
                    x = src[u(row + k3 * b3)]
                    if is_max:
                        acc = acc if (acc >= x) | (acc != acc) else x
                    else:
                        acc += x
    return acc


@numba.njit(**INLINE)
def _tile_pick(src, first, best, g, w0, w1, w2, w3, b3):
    """The first cell of the tile holding `best` (its max) or a NaN (the pass runs
    backwards, so the first one found last wins)."""
    at = first
    for i0 in range(w0):
        for i1 in range(w1):
            for i2 in range(w2):
                row = (first + (w0 - 1 - i0) * g.b0 + (w1 - 1 - i1) * g.b1
                       + (w2 - 1 - i2) * g.b2)
                for i3 in range(w3):
                    c = row + (w3 - 1 - i3) * b3
                    x = src[u(c)]
                    at = c if (x == best) | (x != x) else at
    return at


@numba.njit(**INLINE)
def _tile_zero(dst, first, zero, g, w0, w1, w2, w3, b3):
    """dst = zero on the tile's cells."""
    for k0 in range(w0):
        for k1 in range(w1):
            for k2 in range(w2):
                row = first + k0 * g.b0 + k1 * g.b1 + k2 * g.b2
                for k3 in range(w3):
                    dst[u(row + k3 * b3)] = zero


@numba.njit(**HELPER)
def _tile_nest(mode, shape, src, dst, values, init, g):
    """Every tile: TILE_SUM / TILE_MAX fold it into dst; TILE_GATHER / TILE_SCATTER find its
    first maximum `at` (its max, then the first cell holding it), then dst[w] = values[at] /
    dst = values[w] at `at` and zero elsewhere in the tile (the tiles cover dst).

    `mode` and `shape` are compile-time constants (one specialisation each): SHAPE_2X2 and
    SHAPE_2X2_LAST fix the tile sizes, so that LLVM unrolls each tile and vectorises along
    the row."""
    numba.literally(mode)
    numba.literally(shape)
    if shape == SHAPE_2X2:
        w0, w1, w2, w3, a3, b3 = 1, 1, 2, 2, 2, 1
    elif shape == SHAPE_2X2_LAST:
        w0, w1, w2, w3, a3, b3 = 1, 2, 2, 1, 1, 0
    else:
        w0, w1, w2, w3, a3, b3 = g.w0, g.w1, g.w2, g.w3, g.a3, g.b3
    for o0 in range(g.n0):
        for o1 in range(g.n1):
            for o2 in range(g.n2):
                row = ((o0 * g.n1 + o1) * g.n2 + o2) * g.n3
                base = o0 * g.a0 + o1 * g.a1 + o2 * g.a2
                for v in range(g.n3):
                    first, w = base + v * a3, row + v
                    if mode == TILE_SUM:
                        dst[u(w)] = _tile_fold(False, src, first, init, g, w0, w1, w2, w3, b3)
                        continue
                    best = _tile_fold(True, src, first, src[u(first)], g, w0, w1, w2, w3, b3)
                    if mode == TILE_MAX:
                        dst[u(w)] = best
                        continue
                    at = _tile_pick(src, first, best, g, w0, w1, w2, w3, b3)
                    if mode == TILE_GATHER:
                        dst[u(w)] = values[u(at)]
                        continue
                    _tile_zero(dst, first, init, g, w0, w1, w2, w3, b3)
                    dst[u(at)] = values[u(w)]


def _tile_wrapper(mode: int, shape: int):
    """The C-ABI wrapper (see `calls`) of one `_tile_nest` specialisation: a program compiles
    only the ones it calls."""

    def c_tiles(src, n_src, values, n_values, dst, n_dst, init, geo):
        g = TileGeo(*to_fixed_tuple(array_at(geo, TILE_SIZE, geo), TILE_SIZE))
        _tile_nest(mode, shape, array_at(src, n_src, init), array_at(dst, n_dst, init),
                   array_at(values, n_values, init), init, g)

    return c_tiles


def tile_helper(mode: int, shape: int) -> str:
    """The name of the helper that runs `_tile_nest` for `mode` and `shape`, e.g.
    "tile_select_scatter_2x2"."""
    kind = ("tile_reduce_sum", "tile_reduce_max", "tile_select_gather", "tile_select_scatter")
    return kind[mode] + ("", "_2x2", "_2x2_last")[shape]


for _mode in (TILE_SUM, TILE_MAX, TILE_GATHER, TILE_SCATTER):
    for _shape in (SHAPE_ANY, SHAPE_2X2, SHAPE_2X2_LAST):
        c_helper(tile_helper(_mode, _shape), "iiiiiiTi")(_tile_wrapper(_mode, _shape))


def tile_shape(g: TileGeo) -> int:
    """The `_tile_nest` shape constant that serves tiles `g`."""
    if (g.w0, g.w1, g.w2, g.w3, g.a3, g.b3) == (1, 1, 2, 2, 2, 1):
        return SHAPE_2X2
    if (g.w0, g.w1, g.w2, g.w3, g.a3) == (1, 2, 2, 1, 1):
        return SHAPE_2X2_LAST
    return SHAPE_ANY


def tile_geometry(shape, params: dict) -> TileGeo | None:
    """The `TileGeo` of windows that tile an operand of `shape`, or None if they do not.

    Args:
      shape: the operand's shape.
      params: the windowed primitive's params.

    Returns:
      None unless window == stride on every axis, with no padding or dilation and sizes
      divisible by the windows, and the operand fits the (O, W) x 4 pattern.

    Example:
        >>> params = dict(window_dimensions=(1, 1, 2, 2), window_strides=(1, 1, 2, 2),
        ...               padding=((0, 0),) * 4, base_dilation=(1,) * 4,
        ...               window_dilation=(1,) * 4)
        >>> tile_geometry((8, 16, 28, 28), params)[:8]
        (1, 1, 1792, 14, 1, 1, 2, 2)
    """
    window, strides = params["window_dimensions"], params["window_strides"]
    if (tuple(window) != tuple(strides) or any(lo or hi for lo, hi in params["padding"])
            or set(params["base_dilation"]) | set(params["window_dilation"]) != {1}
            or any(n % w for n, w in zip(shape, window))):
        return None
    axes = []  # (kind, extent, stride): "o" output steps, "w" window steps
    for n, w, stride in zip(shape, window, contiguous_strides(shape)):
        axes += [("o", n // w, stride * w), ("w", w, stride)]
    merged = []
    for kind, n, stride in (a for a in axes if a[1] != 1):
        if merged and merged[-1][0] == kind and merged[-1][2] == n * stride:
            merged[-1] = (kind, merged[-1][1] * n, stride)
        else:
            merged.append((kind, n, stride))
    if not merged or merged[0][0] == "w":
        merged.insert(0, ("o", 1, 0))
    if merged[-1][0] == "o":
        merged.append(("w", 1, 0))
    kinds = [kind for kind, _, _ in merged]
    if len(merged) > 2 * TILE_AXES or kinds != ["o", "w"] * (len(merged) // 2):
        return None
    merged = [("o", 1, 0), ("w", 1, 0)] * (TILE_AXES - len(merged) // 2) + merged
    outs, wins = merged[0::2], merged[1::2]
    return TileGeo(*(n for _, n, _ in outs), *(n for _, n, _ in wins),
                   *(s for _, _, s in outs), *(s for _, _, s in wins))


# ================================================================================================
# Windows: the general case (padding, dilation, overlap), rank <= 6
# ================================================================================================

# Per axis (rank 6, grouped by field): output extent, window size, stride, window dilation,
# low padding, dilated operand size, operand dilation, operand stride.
WindowGeo = namedtuple("WindowGeo", tuple(
    f"{field}{axis}" for field in ("n", "w", "st", "wd", "lo", "L", "bd", "s")
    for axis in range(WINDOW_RANK)))
WINDOW_SIZE = len(WindowGeo._fields)

# What `window_fold` computes per window.
FOLD_SUM, FOLD_MAX, FOLD_ARGMAX = 0, 1, 2


@numba.njit(**HELPER)
def _axis_cells(cells, start, o, w, stride, wdil, lo, limit, bdil, step):
    """Along one axis, the offsets (operand index * `step`) of the cells of window `o` that
    are not padding, written to cells[start:]; returns how many."""
    count = 0
    for k in range(w):
        p = o * stride + k * wdil - lo
        if inside(p, limit, bdil):
            cells[u(start + count)] = undilate(p, bdil) * step
            count += 1
    return count


@numba.njit(**INLINE)
def _fold_cell(acc, at, v, index, mode):
    """One cell of a window fold: the running sum, max (a NaN wins) or first arg-max."""
    if mode == FOLD_SUM:
        return acc + v, at
    if mode == FOLD_MAX:
        return (acc if (acc >= v or acc != acc) else v), at
    if at < 0 or v > acc or (v != v and acc == acc):
        return v, index
    return acc, at


@numba.njit(**INLINE)
def _fold_window(src, cells, width, n0, n1, n2, n3, n4, n5, mode, init):
    """(value, flat index of the arg-max or -1) of one window, whose cells along axis a are
    the n_a offsets at cells[a * width:] (from `_axis_cells`)."""
    acc, at = init, -1
    for i0 in range(n0):
        x0 = cells[u(i0)]
        for i1 in range(n1):
            x1 = x0 + cells[u(width + i1)]
            for i2 in range(n2):
                x2 = x1 + cells[u(2 * width + i2)]
                for i3 in range(n3):
                    x3 = x2 + cells[u(3 * width + i3)]
                    for i4 in range(n4):
                        x4 = x3 + cells[u(4 * width + i4)]
                        for i5 in range(n5):
                            index = x4 + cells[u(5 * width + i5)]
                            acc, at = _fold_cell(acc, at, src[u(index)], index, mode)
    return acc, at


@numba.njit(**NEST)
def window_fold(operand, result, where, mode, init, g):
    """Per window (C order), its sum or max into `result`, or (FOLD_ARGMAX) the flat index of
    its first maximum into `where` (-1: all padding); `g` a `WindowGeo`. Each loop level finds
    its axis's cells once (`_axis_cells`), so that the fold itself checks nothing."""
    src = flat(operand)
    width = max(g.w0, g.w1, g.w2, g.w3, g.w4, g.w5)
    cells = np.empty(WINDOW_RANK * width, np.int64)
    out = 0
    for o0 in range(g.n0):
        n0 = _axis_cells(cells, 0, o0, g.w0, g.st0, g.wd0, g.lo0, g.L0, g.bd0, g.s0)
        for o1 in range(g.n1):
            n1 = _axis_cells(cells, width, o1, g.w1, g.st1, g.wd1, g.lo1, g.L1, g.bd1, g.s1)
            for o2 in range(g.n2):
                n2 = _axis_cells(cells, 2 * width, o2, g.w2, g.st2, g.wd2, g.lo2, g.L2, g.bd2,
                                 g.s2)
                for o3 in range(g.n3):
                    n3 = _axis_cells(cells, 3 * width, o3, g.w3, g.st3, g.wd3, g.lo3, g.L3,
                                     g.bd3, g.s3)
                    for o4 in range(g.n4):
                        n4 = _axis_cells(cells, 4 * width, o4, g.w4, g.st4, g.wd4, g.lo4, g.L4,
                                         g.bd4, g.s4)
                        for o5 in range(g.n5):
                            n5 = _axis_cells(cells, 5 * width, o5, g.w5, g.st5, g.wd5, g.lo5,
                                             g.L5, g.bd5, g.s5)
                            acc, at = _fold_window(src, cells, width, n0, n1, n2, n3, n4, n5,
                                                   mode, init)
                            if mode == FOLD_ARGMAX:
                                where[out] = at
                            else:
                                result[out] = acc
                            out += 1


@numba.njit(**NEST)
def select_where(values_array, where, out_array, gather, zero):
    """gather: out[w] = values[where[w]] (zero where none); scatter: out = 0, then
    out[where[w]] += values[w]."""
    values, out = flat(values_array), flat(out_array)
    if gather:
        for w in range(where.size):
            out[w] = values[where[w]] if where[w] >= 0 else zero
        return
    out[:] = zero
    for w in range(where.size):
        if where[w] >= 0:
            out[where[w]] += values[w]


@c_helper("window_fold", "iiiiiiiTi")
def c_window_fold(src, n_src, dst, n_dst, where, n_where, mode, init, geo):
    """The C-ABI wrapper of `window_fold` (see `calls`)."""
    g = WindowGeo(*to_fixed_tuple(array_at(geo, WINDOW_SIZE, geo), WINDOW_SIZE))
    window_fold(array_at(src, n_src, init), array_at(dst, n_dst, init),
                array_at(where, n_where, where), mode, init, g)


@c_helper("select", "iiiiiiiTi")
def c_select(gather, values, n_values, where, n_where, out, n_out, zero, geo):
    """The C-ABI wrapper of `select` (see `calls`)."""
    select_where(array_at(values, n_values, zero), array_at(where, n_where, where),
                 array_at(out, n_out, zero), gather != 0, zero)


def window_geometry(params: dict, operand_shape, windows_shape) -> WindowGeo | None:
    """The `WindowGeo` (rank padded to 6), or None when the rank is larger."""
    ndim = len(operand_shape)
    if ndim > WINDOW_RANK:
        return None
    lead = WINDOW_RANK - ndim

    def padded(values, fill):
        return [fill] * lead + list(values)

    sizes = [dilated(n, d) for n, d in zip(operand_shape, params["base_dilation"])]
    return WindowGeo(*padded(windows_shape, 1), *padded(params["window_dimensions"], 1),
                     *padded(params["window_strides"], 1), *padded(params["window_dilation"], 1),
                     *padded((lo for lo, _ in params["padding"]), 0), *padded(sizes, 1),
                     *padded(params["base_dilation"], 1),
                     *padded(contiguous_strides(operand_shape), 0))


# ================================================================================================
# Emitters
# ================================================================================================


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
        code = Code()
        tiles = tile_geometry(operand_aval.shape, eqn.params)
        geo = window_geometry(eqn.params, operand_aval.shape, out_aval.shape)
        if tiles is not None:
            name = tile_helper(TILE_MAX if kind == "max" else TILE_SUM, tile_shape(tiles))
            emit_helper_call(ctx, code, name, out_aval.dtype,  # (folds read no values)
                             [Buffer(ins[0]), Buffer(outs[0]), Buffer(outs[0]), init], tiles)
        elif geo is not None:
            emit_helper_call(ctx, code, "window_fold", out_aval.dtype,
                             [Buffer(ins[0]), Buffer(outs[0]), 0, 0,
                              FOLD_MAX if kind == "max" else FOLD_SUM, init], geo)
        else:
            src, dst = ctx.fresh("flat"), ctx.fresh("flat")
            code(f"{src} = {ins[0]}.reshape({operand_aval.size})")
            code(f"{dst} = {outs[0]}.reshape({out_aval.size})")
            _generated_window_loops(ctx, code, eqn, operand_aval, out_aval.shape,
                                    _ReduceVisitor(ctx, code, kind, init, src, dst))
        return code.lines

    return emit


def _emit_select(gather: bool):
    """select_and_gather_add (gather) / select_and_scatter_add: find each window's first
    maximum, then read the tangent there / add the source there."""

    def emit(ctx, eqn, ins, outs):
        values_aval, operand_aval = (a.aval for a in eqn.inputs)
        out_aval = eqn.outvars[0].aval
        windows_shape = out_aval.shape if gather else values_aval.shape
        zero = literal(0, out_aval.dtype)
        if math.prod(windows_shape) == 0 or operand_aval.size == 0:
            return [f"{outs[0]}.fill({zero})"]
        code = Code()
        tiles = tile_geometry(operand_aval.shape, eqn.params)
        if tiles is not None and operand_aval.dtype == out_aval.dtype:
            name = tile_helper(TILE_GATHER if gather else TILE_SCATTER, tile_shape(tiles))
            emit_helper_call(ctx, code, name, out_aval.dtype,
                             [Buffer(ins[1]), Buffer(ins[0]), Buffer(outs[0]), zero], tiles)
            return code.lines
        where = ctx.emitter.temp(ShapedArray((math.prod(windows_shape),), np.dtype(np.int64)))
        geo = window_geometry(eqn.params, operand_aval.shape, windows_shape)
        if geo is None:
            operand = ctx.fresh("flat")
            code(f"{operand} = {ins[1]}.reshape({operand_aval.size})")
            _generated_window_loops(ctx, code, eqn, operand_aval, windows_shape,
                                    _ArgmaxVisitor(ctx, code, operand, where))
        else:
            emit_helper_call(ctx, code, "window_fold", operand_aval.dtype,
                             [Buffer(ins[1]), 0, 0, Buffer(where), FOLD_ARGMAX,
                              literal(0, operand_aval.dtype)], geo)
        emit_helper_call(ctx, code, "select", out_aval.dtype,
                         [int(gather), Buffer(ins[0]), Buffer(where), Buffer(outs[0]), zero])
        return code.lines

    return emit


# --- generated loops for operands of rank > 6 ----------------------------------------------------

def _generated_window_loops(ctx, code: Code, eqn, operand_aval, out_shape, visit) -> None:
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
    for d, stride in enumerate(contiguous_strides(operand_aval.shape)):
        k, pos = ctx.fresh("k"), ctx.fresh("p")
        code(f"for {k} in range({p['window_dimensions'][d]}):")
        code.depth += 1
        moved = affine((out_index[d], p["window_strides"][d]), (k, p["window_dilation"][d]))
        code(f"{pos} = {moved} - {p['padding'][d][0]}")
        size, bd = dilated(operand_aval.shape[d], p["base_dilation"][d]), p["base_dilation"][d]
        code(f"if 0 <= {pos} < {size} and {pos} % {bd} == 0:")
        code.depth += 1
        terms.append((f"({pos} // {bd})", stride))
    visit.cell(affine(*terms))
    code.depth = body
    visit.finish(affine(*zip(out_index, contiguous_strides(out_shape))))
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
    def __init__(self, ctx, code, operand, where):
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



POOLING_KERNELS = {
    "window_sum": Kernel(_emit_reduce_window("sum")),
    "window_max": Kernel(_emit_reduce_window("max")),
    "select_and_gather_add": Kernel(_emit_select(gather=True)),
    "select_and_scatter_add": Kernel(_emit_select(gather=False)),
}
