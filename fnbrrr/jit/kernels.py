"""Emitters for primitives that are kernels of their own: matmul through BLAS, gather/scatter,
pad, concatenate, dynamic slices, argmax/argmin; plus scalar helpers the fused loops call.

Each emitter returns the source lines of its kernel, written against preallocated buffers.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

from fnbrrr._prims import bits
from fnbrrr.jit.blas import CBLAS_NO_TRANS, CBLAS_TRANS, blas_available
from fnbrrr.jit.lowering import Kernel, literal, np_type
from fnbrrr.jit.mathlib import _force_inline as force_inline

# --- scalar helpers used inside fused loops ----------------------------------------------------


# Compiled functions that programs call, not `inline="always"`: Numba would re-type the body at
# every call site (randint's program had six); `force_inline` has LLVM inline them instead.
_SCALAR_HELPER = dict(cache=True, error_model="numpy")


@numba.njit(**_SCALAR_HELPER)
def _int_div(x, y):
    """C-style integer division (truncates toward zero); 0 where y == 0, as lax.div."""
    force_inline()
    if y == 0:
        return x - x
    q = abs(x) // abs(y)
    return q if (x < 0) == (y < 0) else -q


@numba.njit(**_SCALAR_HELPER)
def _int_rem(x, y):
    """C-style remainder (the sign of x); 0 where y == 0."""
    force_inline()
    if y == 0:
        return x - x
    return x - _int_div(x, y) * y


@intrinsic
def _view(typingctx, array, offset, shape):
    """A C-contiguous view of `array`'s memory from element `offset`, of `shape` (an int or a
    tuple of ints), sharing its owner. The caller guarantees the view fits in the array.

    Cheaper to compile than `array.reshape(shape)`, which Numba lowers with a size check and
    an exception path at every call site (about 20 ms of compile time each). Example:
    `flat = _view(x, 0, 6)` for a C-contiguous x of shape (2, 3).
    """
    ndim = len(shape) if isinstance(shape, types.BaseTuple) else 1
    signature = types.Array(array.dtype, ndim, "C")(array, offset, shape)

    def codegen(context, builder, sig, args):
        source = make_array(sig.args[0])(context, builder, args[0])
        result = make_array(sig.return_type)(context, builder)
        if isinstance(sig.args[2], types.BaseTuple):
            dims = cgutils.unpack_tuple(builder, args[2], ndim)
        else:
            dims = [args[2]]
        intp = context.get_value_type(types.intp)
        itemsize = context.get_abi_sizeof(context.get_data_type(sig.args[0].dtype))
        strides, stride = [], intp(itemsize)
        for dim in reversed(dims):
            strides.insert(0, stride)
            stride = builder.mul(stride, dim)
        data = builder.gep(source.data, [args[1]])
        populate_array(result, data=data, shape=dims, strides=strides, itemsize=intp(itemsize),
                       meminfo=source.meminfo, parent=source.parent)
        return impl_ret_borrowed(context, builder, sig.return_type, result._getvalue())

    return signature, codegen


class KernelContext:
    """What an emitter may ask of the code generator: fresh names, BLAS, sub-programs.

    `emitter` is the code generator itself, for kernels that hold programs (control flow):
    `emitter.emit(line, depth)`, `emitter.emit_subprogram(closed, ins, outs, depth)`,
    `emitter.temp(aval)` for scratch buffers.
    """

    def __init__(self, names, blas: set, emitter=None, addresses: dict | None = None,
                 before_direct_emission=None):
        self.names = names
        self.blas = blas
        self._emitter = emitter
        self._addresses = addresses or {}
        self._before_direct_emission = before_direct_emission

    @property
    def emitter(self):
        """The code generator, for kernels that emit lines themselves (control flow)."""
        if self._before_direct_emission is not None:
            self._before_direct_emission()  # define every operand view before those lines
            self._before_direct_emission = None
        return self._emitter

    def fresh(self, prefix: str) -> str:
        return self.names.fresh(prefix)

    def pointer(self, array: str) -> str:
        """An expression for the address of `array`'s first element (an integer), which for
        an intermediate needs no array view."""
        return self._addresses.get(array) or f"{array}.ctypes.data"

    def use_blas(self, dtype_name: str) -> str:
        self.blas.add(dtype_name)
        return f"blas_{dtype_name}"


def _loops(shape, prefix: str, ctx) -> tuple[list[str], list[str], int]:
    """`for` headers over `shape`: (lines, index names, indentation depth)."""
    names = [ctx.fresh(prefix) for _ in shape]
    lines = [INDENT * d + f"for {n} in range({s}):" for d, (n, s) in enumerate(zip(names, shape))]
    return lines, names, len(shape)


INDENT = "    "


def _at(name: str, index) -> str:
    """An element as an assignment target (0-d arrays: `a[()]`)."""
    return f"{name}[{', '.join(index)}]" if index else f"{name}[()]"


def _read(name: str, index) -> str:
    """An element's value (0-d arrays: `.item()`; in Numba `a[()]` stays a 0-d array)."""
    return f"{name}[{', '.join(index)}]" if index else f"{name}.item()"


# --- dot_general -------------------------------------------------------------------------------


def _prod(xs) -> int:
    return int(np.prod(list(xs), dtype=np.int64))


def _free(ndim, contract, batch):
    return [d for d in range(ndim) if d not in contract and d not in batch]


def _emit_dot_general(ctx, eqn, ins, outs):
    lhs, rhs = eqn.inputs
    out = eqn.outvars[0]
    dtype = out.aval.dtype
    if (dtype.name in ("float32", "float64") and lhs.aval.dtype == dtype
            and blas_available(dtype.name) and _gemm_size(eqn) >= BLAS_MIN_MNK):
        return _gemm_lines(ctx, eqn, ins, outs)
    return _loop_dot_lines(ctx, eqn, ins, outs)


# A BLAS call costs ~0.2 us of fixed overhead: below this m*n*k per call (e.g. the 256 1x1x100
# outer products of per-example gradients), a compiled loop is faster.
BLAS_MIN_MNK = 4096


def _gemm_size(eqn) -> int:
    """m * n * k of each GEMM call the product would make."""
    lhs, rhs = eqn.inputs
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    m = _prod(lhs.aval.shape[d] for d in _free(lhs.aval.ndim, lc, lb))
    n = _prod(rhs.aval.shape[d] for d in _free(rhs.aval.ndim, rc, rb))
    k = _prod(lhs.aval.shape[d] for d in lc)
    return m * n * k


def _operand_layout(name, aval, batch, free, contract, want_contract_last, ctx, lines):
    """View an operand as (B, rows, cols) for BLAS; a transpose flag instead of a copy where
    the memory order allows, else a contiguous copy."""
    ndim = aval.ndim
    first, second = (free, contract) if want_contract_last else (contract, free)
    if tuple(batch) + tuple(first) + tuple(second) == tuple(range(ndim)):
        return name, CBLAS_NO_TRANS
    if tuple(batch) + tuple(second) + tuple(first) == tuple(range(ndim)):
        return name, CBLAS_TRANS
    perm = tuple(batch) + tuple(first) + tuple(second)
    copy = ctx.fresh("c")
    lines.append(f"{copy} = np.ascontiguousarray({name}.transpose({perm!r}))  # no BLAS layout")
    return copy, CBLAS_NO_TRANS


def _gemm_lines(ctx, eqn, ins, outs):
    lhs, rhs = eqn.inputs
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    lf, rf = _free(lhs.aval.ndim, lc, lb), _free(rhs.aval.ndim, rc, rb)
    shape_l, shape_r = lhs.aval.shape, rhs.aval.shape
    batch = _prod(shape_l[d] for d in lb)
    m, k, n = _prod(shape_l[d] for d in lf), _prod(shape_l[d] for d in lc), _prod(
        shape_r[d] for d in rf)
    lines: list[str] = []
    a, trans_a = _operand_layout(ins[0], lhs.aval, lb, lf, lc, True, ctx, lines)
    b, trans_b = _operand_layout(ins[1], rhs.aval, rb, rc, rf, True, ctx, lines)
    out = outs[0]
    dtype = eqn.outvars[0].aval.dtype
    if m == 0 or n == 0:
        return lines + ["pass"]
    if k == 0:
        return lines + assign_whole(ctx, out, "", eqn.outvars[0].aval, value=literal(0, dtype))
    lda = max(1, k if trans_a == CBLAS_NO_TRANS else m)
    ldb = max(1, n if trans_b == CBLAS_NO_TRANS else k)
    item = dtype.itemsize
    blas = ctx.use_blas(dtype.name)
    call = "gemm_call_f32" if dtype.name == "float32" else "gemm_call_f64"
    zero = literal(0, dtype)
    if batch == 1:
        lines.append(f"{call}({blas}, {trans_a}, {trans_b}, {m}, {n}, {k}, {ctx.pointer(a)}, "
                     f"{lda}, {ctx.pointer(b)}, {ldb}, {ctx.pointer(out)}, {n}, {zero})")
        return lines
    i = ctx.fresh("b")
    lines.append(f"for {i} in range({batch}):")
    lines.append(f"{INDENT}{call}({blas}, {trans_a}, {trans_b}, {m}, {n}, {k}, "
                 f"{ctx.pointer(a)} + {i} * {m * k * item}, {lda}, "
                 f"{ctx.pointer(b)} + {i} * {k * n * item}, {ldb}, "
                 f"{ctx.pointer(out)} + {i} * {m * n * item}, {n}, {zero})")
    return lines


def _loop_dot_lines(ctx, eqn, ins, outs):
    lhs, rhs = eqn.inputs
    out_aval = eqn.outvars[0].aval
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    lf, rf = _free(lhs.aval.ndim, lc, lb), _free(rhs.aval.ndim, rc, rb)
    lines, out_index, depth = _loops(out_aval.shape, "d", ctx)
    nb, nlf = len(lb), len(lf)
    contract_shape = [lhs.aval.shape[d] for d in lc]
    acc = ctx.fresh("acc")
    lines.append(INDENT * depth + f"{acc} = {literal(0, out_aval.dtype)}")
    loop_lines, cidx, cdepth = _loops(contract_shape, "k", ctx)
    lines += [INDENT * depth + line for line in loop_lines]
    li = [None] * lhs.aval.ndim
    ri = [None] * rhs.aval.ndim
    for j, (a, b) in enumerate(zip(lb, rb)):
        li[a] = ri[b] = out_index[j]
    for j, a in enumerate(lf):
        li[a] = out_index[nb + j]
    for j, b in enumerate(rf):
        ri[b] = out_index[nb + nlf + j]
    for j, (a, b) in enumerate(zip(lc, rc)):
        li[a] = ri[b] = cidx[j]
    cast = np_type(out_aval.dtype)
    lines.append(INDENT * (depth + cdepth) + f"{acc} += {cast}({_read(ins[0], li)}) * "
                 f"{cast}({_read(ins[1], ri)})")
    lines.append(INDENT * depth + f"{_at(outs[0], out_index)} = {acc}")
    return lines


# --- argmax / argmin ---------------------------------------------------------------------------


def _emit_arg(better: str):
    def emit(ctx, eqn, ins, outs):
        operand = eqn.inputs[0]
        axis = eqn.params["axis"]
        kept_shape = [s for d, s in enumerate(operand.aval.shape) if d != axis]
        lines, kept, depth = _loops(kept_shape, "a", ctx)
        pad = INDENT * depth

        def at(pos):
            index = list(kept)
            index.insert(axis, pos)
            return _read(ins[0], index)

        best, where, k, v = ctx.fresh("best"), ctx.fresh("where"), ctx.fresh("k"), ctx.fresh("v")
        lines += [
            pad + f"{best} = {at('0')}",
            pad + f"{where} = 0",
            pad + f"for {k} in range(1, {operand.aval.shape[axis]}):",
            pad + INDENT + f"{v} = {at(k)}",
            pad + INDENT + f"if {v} {better} {best} or ({v} != {v} and {best} == {best}):",
            pad + INDENT * 2 + f"{best} = {v}",
            pad + INDENT * 2 + f"{where} = {k}",
            pad + f"{_at(outs[0], kept)} = {where}",
        ]
        return lines

    return emit


# --- data movement -----------------------------------------------------------------------------


def _flat_copy(ctx, dst: str, src: str, count: int, dst_start="0", src_start="0",
               rows: int = 1, dst_row: int = 0, src_row: int = 0) -> list[str]:
    """Loops copying `rows` runs of `count` elements between flat views of C-contiguous arrays:
    run r goes from `src[src_start + r * src_row:]` to `dst[dst_start + r * dst_row:]`.

    Explicit loops, not `dst[a:b] = src`: Numba lowers every slice assignment inline with its
    broadcasting and overlap checks, about 0.4 s of compile time each (measured: six of them
    were 70% of a 3.4 s compile); a loop costs a tenth of that."""
    if count == 0 or rows == 0:
        return []
    flat_dst, flat_src, q = ctx.fresh("c"), ctx.fresh("c"), ctx.fresh("q")
    lines = [f"{flat_dst} = _view({dst}, 0, {dst}.size)",
             f"{flat_src} = _view({src}, 0, {src}.size)"]
    if rows == 1:
        lines += [f"for {q} in range({count}):",
                  f"{INDENT}{flat_dst}[{dst_start} + {q}] = {flat_src}[{src_start} + {q}]"]
        return lines
    r = ctx.fresh("o")
    lines += [f"for {r} in range({rows}):", f"{INDENT}for {q} in range({count}):",
              f"{INDENT * 2}{flat_dst}[{dst_start} + {r} * {dst_row} + {q}] = "
              f"{flat_src}[{src_start} + {r} * {src_row} + {q}]"]
    return lines


def _emit_concatenate(ctx, eqn, ins, outs):
    """Each operand is `rows` runs (the axes before `dimension`) of contiguous elements."""
    axis = eqn.params["dimension"]
    shape = eqn.outvars[0].aval.shape
    rows, inner = _prod(shape[:axis]), _prod(shape[axis + 1:])
    lines, offset = [], 0
    for name, atom in zip(ins, eqn.inputs):
        run = atom.aval.shape[axis] * inner
        lines += _flat_copy(ctx, outs[0], name, run, dst_start=str(offset), rows=rows,
                            dst_row=shape[axis] * inner, src_row=run)
        offset += run
    return lines


def assign_whole(ctx, dst: str, src: str, aval, value: str | None = None) -> list[str]:
    """`dst[...] = src`, or `dst[...] = value` for a scalar expression, as loops.

    For C-contiguous `dst` and `src` of `aval`'s shape. Numba lowers `a[...] = b` through its
    general broadcasting assignment: about 0.45 s of compile time each (the eleven in W8's
    two scans were 4.9 s of a 6.7 s compile); a flat loop costs a tenth of that. `ctx` needs
    only `fresh(prefix)`.
    """
    if aval.size == 0:
        return []
    if aval.ndim == 0:
        return [f"{dst}[()] = {value if value is not None else src + '.item()'}"]
    if value is None:
        return _flat_copy(ctx, dst, src, aval.size)
    flat, q = ctx.fresh("c"), ctx.fresh("q")
    return [f"{flat} = _view({dst}, 0, {aval.size})", f"for {q} in range({aval.size}):",
            f"{INDENT}{flat}[{q}] = {value}"]


def assign_atom(ctx, dst: str, src: str, atom) -> list[str]:
    """`dst[...] = atom` as loops (`assign_whole`): a copy of the array `src` holding `atom`,
    or a fill when `atom` is a literal."""
    from fnbrrr.core import Literal

    if type(atom) is Literal:
        return assign_whole(ctx, dst, src, atom.aval, value=literal(atom.val, atom.aval.dtype))
    return assign_whole(ctx, dst, src, atom.aval)


def _scalar(name: str, atom) -> str:
    from fnbrrr.core import Literal

    return literal(atom.val, atom.aval.dtype) if type(atom) is Literal else f"{name}.item()"


def _emit_pad(ctx, eqn, ins, outs):
    operand, value = eqn.inputs
    config = eqn.params["padding_config"]
    out_shape = eqn.outvars[0].aval.shape
    lines = assign_whole(ctx, outs[0], "", eqn.outvars[0].aval, value=_scalar(ins[1], value))
    loop_lines, index, depth = _loops(operand.aval.shape, "p", ctx)
    lines += loop_lines
    targets, checks = [], []
    for i, (lo, _, interior), size in zip(index, config, out_shape):
        t = ctx.fresh("q")
        lines.append(INDENT * depth + f"{t} = {lo} + {i} * {interior + 1}")
        targets.append(t)
        checks.append(f"0 <= {t} < {size}")
    cond = " and ".join(checks) or "True"
    lines.append(INDENT * depth + f"if {cond}:")
    lines.append(INDENT * (depth + 1) + f"{_at(outs[0], targets)} = {_read(ins[0], index)}")
    return lines


def _gather_coords(ctx, lines, depth, indices_name, batch_index, axes, operand_shape, mode):
    coords = []
    pad = INDENT * depth
    for j, axis in enumerate(axes):
        c = ctx.fresh("c")
        raw = _read(indices_name, list(batch_index) + [str(j)])
        if mode == "clip":
            lines.append(pad + f"{c} = min(max({raw}, 0), {operand_shape[axis] - 1})")
        else:
            lines.append(pad + f"{c} = {raw}")
        coords.append(c)
    return coords


def _full_index(operand_ndim, axes, coords, rest_index):
    it = iter(rest_index)
    return [coords[axes.index(d)] if d in axes else next(it) for d in range(operand_ndim)]


def _emit_gather(ctx, eqn, ins, outs):
    operand, indices = eqn.inputs
    axes = list(eqn.params["axes"])
    batch_shape = indices.aval.shape[:-1]
    rest_shape = [s for d, s in enumerate(operand.aval.shape) if d not in axes]
    lines, bidx, depth = _loops(batch_shape, "g", ctx)
    coords = _gather_coords(ctx, lines, depth, ins[1], bidx, axes, operand.aval.shape, "clip")
    inner, ridx, rdepth = _loops(rest_shape, "r", ctx)
    lines += [INDENT * depth + line for line in inner]
    source = _read(ins[0], _full_index(operand.aval.ndim, axes, coords, ridx))
    lines.append(INDENT * (depth + rdepth) + f"{_at(outs[0], bidx + ridx)} = {source}")
    return lines


def _emit_scatter(combine: str | None):
    def emit(ctx, eqn, ins, outs):
        operand, indices, updates = eqn.inputs
        axes = list(eqn.params["axes"])
        mode = eqn.params["mode"]
        batch_shape = indices.aval.shape[:-1]
        rest_shape = [s for d, s in enumerate(operand.aval.shape) if d not in axes]
        lines = assign_whole(ctx, outs[0], ins[0], operand.aval)
        loop_lines, bidx, depth = _loops(batch_shape, "g", ctx)
        lines += loop_lines
        coords = _gather_coords(ctx, lines, depth, ins[1], bidx, axes, operand.aval.shape, mode)
        if mode == "drop":
            inside = " and ".join(f"0 <= {c} < {operand.aval.shape[a]}"
                                  for c, a in zip(coords, axes))
            lines.append(INDENT * depth + f"if {inside}:")
            depth += 1
        inner, ridx, rdepth = _loops(rest_shape, "r", ctx)
        lines += [INDENT * depth + line for line in inner]
        target = _at(outs[0], _full_index(operand.aval.ndim, axes, coords, ridx))
        update = _read(ins[2], bidx + ridx)
        value = update if combine is None else f"{target} {combine} {update}"
        lines.append(INDENT * (depth + rdepth) + f"{target} = {value}")
        return lines

    return emit


def _clamped_starts(ctx, lines, starts, start_atoms, operand_shape, sizes):
    names = []
    for name, atom, dim, size in zip(starts, start_atoms, operand_shape, sizes):
        s = ctx.fresh("s")
        lines.append(f"{s} = min(max({_scalar(name, atom)}, 0), {dim - size})")
        names.append(s)
    return names


def _emit_dynamic_slice(ctx, eqn, ins, outs):
    operand, *starts = eqn.inputs
    sizes = eqn.params["slice_sizes"]
    lines: list[str] = []
    s = _clamped_starts(ctx, lines, ins[1:], starts, operand.aval.shape, sizes)
    loop_lines, index, depth = _loops(sizes, "w", ctx)
    source = [f"{a} + {i}" for a, i in zip(s, index)]
    copy = f"{_at(outs[0], index)} = {_read(ins[0], source)}"
    return lines + loop_lines + [INDENT * depth + copy]


def _emit_dynamic_update_slice(ctx, eqn, ins, outs):
    operand, update, *starts = eqn.inputs
    sizes = update.aval.shape
    lines = assign_whole(ctx, outs[0], ins[0], operand.aval)
    s = _clamped_starts(ctx, lines, ins[2:], starts, operand.aval.shape, sizes)
    loop_lines, index, depth = _loops(sizes, "w", ctx)
    target = [f"{a} + {i}" for a, i in zip(s, index)]
    copy = f"{_at(outs[0], target)} = {_read(ins[1], index)}"
    return lines + loop_lines + [INDENT * depth + copy]


_threefry2x32_rounds = numba.njit(inline="always", cache=True)(bits.threefry2x32_scalar)


@numba.njit(**_SCALAR_HELPER)
def _threefry2x32(key0, key1, count0, count1):
    """Threefry-2x32 of one counter pair, as a compiled function that programs call.

    Numba compiles (and caches on disk) the rounds once per signature here, where
    `inline="always"` in the program itself re-typed all 20 rounds at every call site (1.3 s
    of compile per threefry in a program); `force_inline` still has LLVM inline it into the
    caller's loop, so that loop vectorises.
    """
    force_inline()
    return _threefry2x32_rounds(key0, key1, count0, count1)


def _emit_threefry(ctx, eqn, ins, outs):
    """Both output words per counter, in one loop over the output shape."""
    shape = eqn.outvars[0].aval.shape
    lines, index, depth = _loops(shape, "r", ctx)
    words = [_read(name, index if atom.aval.ndim else []) for name, atom in zip(ins, eqn.inputs)]
    lines.append(INDENT * depth + f"{_at(outs[0], index)}, {_at(outs[1], index)} = "
                 f"_threefry2x32({', '.join(words)})")
    return lines


@numba.njit(**_SCALAR_HELPER)
def _sorts_before(a, b) -> bool:
    """NumPy's sort order: NaN after every number (and equal to NaN)."""
    force_inline()
    return a < b or (b != b and a == a)


_SORT_RUN = 16


@numba.njit(**_SCALAR_HELPER)
def _argsort_lines(values, order):
    """`order[i, :, j]` = the permutation that stably sorts `values[i, :, j]`, NaNs last.

    Both are C-contiguous 3-D views (before the axis, the axis, after it). A bottom-up merge
    sort of indices over insertion-sorted runs of 16 (1000 lines of 1000 float32: 156 ms,
    NumPy's stable argsort 124 ms), compiled once per dtype pair and cached beside the
    package, where `np.argsort` in a program cost 5 s of compilation at each call site.
    """
    outer, n, inner = values.shape
    keys = np.empty(n, values.dtype)
    index, spare = np.empty(n, np.int64), np.empty(n, np.int64)
    for i in range(outer):
        for j in range(inner):
            for k in range(n):
                keys[k] = values[i, k, j]
                index[k] = k
            for lo in range(0, n, _SORT_RUN):  # insertion sort of short runs, then merges
                for k in range(lo + 1, min(lo + _SORT_RUN, n)):
                    moving, at = index[k], k
                    while at > lo and _sorts_before(keys[moving], keys[index[at - 1]]):
                        index[at] = index[at - 1]
                        at -= 1
                    index[at] = moving
            width = _SORT_RUN
            while width < n:
                for lo in range(0, n, 2 * width):
                    mid, hi = min(lo + width, n), min(lo + 2 * width, n)
                    left, right = lo, mid
                    for k in range(lo, hi):
                        # take from the right only when strictly smaller: ties keep their order
                        if right < hi and (left >= mid or _sorts_before(keys[index[right]],
                                                                         keys[index[left]])):
                            spare[k] = index[right]
                            right += 1
                        else:
                            spare[k] = index[left]
                            left += 1
                index, spare = spare, index
                width *= 2
            for k in range(n):
                order[i, k, j] = index[k]
    return 0


def _emit_argsort(ctx, eqn, ins, outs):
    """A stable sort of each line along the axis, by the precompiled `_argsort_lines`."""
    shape = eqn.inputs[0].aval.shape
    axis = eqn.params["axis"]
    lines3 = (_prod(shape[:axis]), shape[axis], _prod(shape[axis + 1:]))
    if 0 in lines3:
        return ["pass"]
    return [f"_argsort_lines(_view({ins[0]}, 0, {lines3!r}), _view({outs[0]}, 0, {lines3!r}))"]


KERNELS = {
    "argsort": Kernel(_emit_argsort),
    "threefry2x32": Kernel(_emit_threefry),
    "dot_general": Kernel(_emit_dot_general),
    "argmax": Kernel(_emit_arg(">")),
    "argmin": Kernel(_emit_arg("<")),
    "concatenate": Kernel(_emit_concatenate),
    "pad": Kernel(_emit_pad),
    "gather": Kernel(_emit_gather),
    "scatter_add": Kernel(_emit_scatter("+")),
    "scatter_mul": Kernel(_emit_scatter("*")),
    "scatter": Kernel(_emit_scatter(None)),
    "dynamic_slice": Kernel(_emit_dynamic_slice),
    "dynamic_update_slice": Kernel(_emit_dynamic_update_slice),
}
