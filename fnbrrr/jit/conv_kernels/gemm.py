"""BLAS GEMM calls in generated source, and the kernel copy that some GEMMs need."""

from __future__ import annotations

from dataclasses import replace

from fnbrrr.core import ShapedArray
from fnbrrr.jit.conv_kernels.calls import Buffer, emit_helper_call
from fnbrrr.jit.conv_kernels.geometry import ConvGeometry, role_size
from fnbrrr.jit.conv_kernels.loops import StridedCopyGeo
from fnbrrr.jit.conv_kernels.source import contiguous_strides
from fnbrrr.jit.lowering import literal


def copy_kernel(ctx, code, geom: ConvGeometry, rhs: str, dtype,
                order) -> tuple[str, ConvGeometry]:
    """Copy rhs into a scratch laid out in role `order`; returns it and the new geometry."""
    scratch = ctx.emitter.temp(ShapedArray((geom.out_features * geom.in_features
                                            * geom.window,), dtype))
    shape = [role_size(geom, r) for r in order]
    dst = dict(zip(order, contiguous_strides(shape)))
    src = {"o": geom.rhs_strides[0], "i": geom.rhs_strides[1],
           **{j: geom.rhs_strides[2 + j] for j in range(geom.nsp)}}
    geo = StridedCopyGeo(*shape, *(src[r] for r in order), *(dst[r] for r in order))
    code(f"# the kernel, copied in role order {order}")
    emit_helper_call(ctx, code, "strided_copy", dtype,
                     [Buffer(rhs), Buffer(scratch), 0, 0, literal(0, dtype)], geo)
    rhs_strides = (dst["o"], dst["i"], *(dst[j] for j in range(geom.nsp)))
    return scratch, replace(geom, rhs_strides=rhs_strides, rhs_order=tuple(order))


def gemm_call(ctx, dtype, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, beta) -> str:
    """The source of one CBLAS gemm call, C = A op B (+ beta C), row-major.

    Args: as cblas_?gemm's, all as source expressions; `beta` "0" or an expression.
    Returns: the statement, e.g. `gemm_call_f32(k2, 111, 112, 16, 676, 9, ...)`.
    """
    blas = ctx.use_blas(dtype.name)
    call = "gemm_call_f32" if dtype.name == "float32" else "gemm_call_f64"
    beta = literal(0, dtype) if beta == "0" else f"np.{dtype.name}({beta})"
    return (f"{call}({blas}, {trans_a}, {trans_b}, {m}, {n}, {k}, {a}, {max(lda, 1)}, {b}, "
            f"{max(ldb, 1)}, {c}, {max(ldc, 1)}, {beta})")
