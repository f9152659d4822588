"""Which lowering a convolution gets: a cost model over GEMM FLOPs and scratch elements."""

from __future__ import annotations

from fnbrrr.jit.blas import blas_available
from fnbrrr.jit.conv_kernels.geometry import conv_geometry, lhs_matrix_form
from fnbrrr.jit.conv_kernels.loops import SPATIAL

# Below this many multiply-adds a convolution runs as a direct loop (a BLAS call costs
# ~0.2 us of fixed overhead, and the scratch copies are not free).
DIRECT_MAX_MACS = 16_384
# Weight of one scratch-matrix element against one FLOP in the strategy cost model: writing
# an element in a copy loop and reading it back costs about as much as 40 FLOPs of an
# OpenBLAS sgemm on one core.
SCRATCH_ELEMENT_COST = 40
# Tests set this to "direct", "im2col" or "gemm_gather" to exercise one strategy wherever it
# applies.
FORCE_STRATEGY: str | None = None


def choose_strategy(eqn) -> str:
    """"im2col", "gemm_gather" or "direct" for a conv_general_dilated equation."""
    geom = conv_geometry(eqn)
    dtype = eqn.outvars[0].aval.dtype
    blas = dtype.name in ("float32", "float64") and blas_available(dtype.name)
    if not blas or geom.nsp > SPATIAL:
        return "direct"
    gather_ok = not geom.batch_groups and lhs_matrix_form(geom) is not None
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
