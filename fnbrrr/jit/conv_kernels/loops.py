"""Compiled building blocks shared by the convolution and pooling helpers.

Everything here is `numba.njit(inline="always")`: the helpers that use these pieces are
compiled once per machine (`cache=True`) and LLVM sees one flat loop nest. Array arguments
are 1-D (`flat`), indices are element offsets. Keep them small and their nesting shallow:
Numba deep-copies a callee's IR into every call site, so inlined blocks that inline blocks
multiply the compile time (a helper built that way took 30 s to compile).
"""

from __future__ import annotations

from collections import namedtuple

import numba
import numpy as np
from numba.np.unsafe.ndarray import to_fixed_tuple

from fnbrrr.jit.conv_kernels.calls import HELPER_FLAGS, array_at, c_helper

# Options of the njit functions that wrappers call. Not cached on disk: the wrappers' cache holds
# their code, and a shared njit cache index is open to the race described in `calls`.
HELPER = dict(**HELPER_FLAGS)
# Building blocks, inlined into every caller.
INLINE = dict(inline="always", cache=True)
# The loop nest of a helper: inlined into its one caller, the C-ABI wrapper, so that LLVM
# optimises it once; as a function of its own, it was optimised, then linked into the wrapper
# and optimised again (conv_direct: 7.3 s -> 4.2 s cold).
NEST = dict(inline="always")

SPATIAL = 3  # helpers take 3 spatial axes; fewer are padded with axes of size 1

# Per spatial axis: the stride, kernel dilation, low padding, dilated input size and input
# dilation (grouped by field), the tail of every convolution geometry.
POSITION_FIELDS = ("st0", "st1", "st2", "rd0", "rd1", "rd2", "lo0", "lo1", "lo2",
                   "L0", "L1", "L2", "ld0", "ld1", "ld2")

# Indices computed from runtime strides are cast to unsigned: Numba then drops its check for
# negative (wrap-around) indices, which otherwise keeps these loops scalar (2.7x measured).
u = np.uint64


@numba.njit(**INLINE)
def flat(array):
    """A 1-D view of a C-contiguous array. The program passes its N-D buffers as they are:
    a reshape in the generated program costs ~27 ms of compilation each, here it is paid once
    per helper and rank (then cached on disk)."""
    return array.reshape(array.size)


@numba.njit(**INLINE)
def valid_range(offset, step, limit, n):
    """[lo, hi): the v in [0, n) with 0 <= v * step + offset < limit (step > 0)."""
    if step == 1:  # an integer division costs ~25 cycles: skip it in the common case
        lo, hi = -offset, limit - offset
    else:
        lo, hi = -(offset // step), (limit - 1 - offset) // step + 1
    lo = min(max(lo, 0), n)
    return lo, max(min(hi, n), lo)


@numba.njit(**INLINE)
def inside(p, limit, dilation):
    """Whether dilated coordinate p holds an element of an axis whose dilated size is limit."""
    if dilation == 1:
        return 0 <= p < limit
    return 0 <= p < limit and p % dilation == 0


@numba.njit(**INLINE)
def undilate(p, dilation):
    """The element index of dilated coordinate p (one that is `inside`)."""
    return p if dilation == 1 else p // dilation


@numba.njit(**INLINE)
def copy_run(src, dst, s, d, s_step, d_step, n):
    """dst[d + v*d_step] = src[s + v*s_step] for v < n; unit strides get their own loop,
    which LLVM vectorises."""
    if s_step == 1 and d_step == 1:
        for v in range(n):
            dst[u(d + v)] = src[u(s + v)]
    else:
        for v in range(n):
            dst[u(d + v * d_step)] = src[u(s + v * s_step)]


@numba.njit(**INLINE)
def add_run(src, dst, s, d, s_step, d_step, n):
    """dst[d + v*d_step] += src[s + v*s_step] for v < n (unit strides vectorise)."""
    if s_step == 1 and d_step == 1:
        for v in range(n):
            dst[u(d + v)] += src[u(s + v)]
    else:
        for v in range(n):
            dst[u(d + v * d_step)] += src[u(s + v * s_step)]


@numba.njit(**INLINE)
def fill_run(dst, d, d_step, start, stop, zero):
    """dst[d + v*d_step] = zero for start <= v < stop."""
    for v in range(start, stop):
        dst[u(d + v * d_step)] = zero


@numba.njit(**INLINE)
def copy_valid(src, dst, s, d, offset, step, limit, dilation, s_step, d_step, n, lo, hi):
    """dst[d + v*d_step] = src at dilated position v*step + offset for the v < n that land
    inside the input (`lo, hi` from `valid_range` when dilation is 1); others untouched."""
    if dilation == 1:
        copy_run(src, dst, s + (lo * step + offset) * s_step, d + lo * d_step, step * s_step,
                 d_step, hi - lo)
    else:
        for v in range(n):
            p = v * step + offset
            if inside(p, limit, dilation):
                dst[u(d + v * d_step)] = src[u(s + (p // dilation) * s_step)]


# --- a strided copy over a 5-D index space (kernel reordering, scattered GEMM results) ---------

StridedCopyGeo = namedtuple("StridedCopyGeo", ("n0", "n1", "n2", "n3", "n4", "s0", "s1", "s2",
                                               "s3", "s4", "d0", "d1", "d2", "d3", "d4"))
STRIDED_COPY_SIZE = len(StridedCopyGeo._fields)


@numba.njit(**NEST)
def strided_copy(source, target, src_base, dst_base, g):
    """dst[base + sum i_a * d_a] = src[base + sum i_a * s_a] over a 5-D index space.

    `g`: a `StridedCopyGeo`, extents (n0..n4), src strides (s0..s4), dst strides (d0..d4).
    """
    src, dst = flat(source), flat(target)
    for a in range(g.n0):
        for b in range(g.n1):
            for c in range(g.n2):
                for d in range(g.n3):
                    s = src_base + a * g.s0 + b * g.s1 + c * g.s2 + d * g.s3
                    t = dst_base + a * g.d0 + b * g.d1 + c * g.d2 + d * g.d3
                    copy_run(src, dst, s, t, g.s4, g.d4, g.n4)


@c_helper("strided_copy", "iiiiiiTi")
def c_strided_copy(src, n_src, dst, n_dst, src_base, dst_base, like, geo):
    """The C-ABI wrapper of `strided_copy` (see `calls`)."""
    g = StridedCopyGeo(*to_fixed_tuple(array_at(geo, STRIDED_COPY_SIZE, geo), STRIDED_COPY_SIZE))
    strided_copy(array_at(src, n_src, like), array_at(dst, n_dst, like), src_base, dst_base, g)
