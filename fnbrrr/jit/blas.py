"""BLAS GEMM callable from Numba-compiled code, through NumPy's own bundled OpenBLAS.

Numba's `np.dot` binds BLAS through SciPy (PERF.md, fact 6); fnbrrr avoids that dependency
and uses the library NumPy itself links: NumPy's wheels ship OpenBLAS with CBLAS symbols such
as `scipy_cblas_sgemm64_` (64-bit integers). The symbol's address is looked up once per
process with ctypes and passed to the compiled program as an ordinary integer argument; the
intrinsic `gemm_f32`/`gemm_f64` call it through a function pointer. Because the address is an
argument and not a constant baked into the machine code, Numba's on-disk cache stays valid
across processes.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

CBLAS_ROW_MAJOR = 101
CBLAS_NO_TRANS = 111
CBLAS_TRANS = 112

# (symbol, integer width in bits), most specific first.
_SYMBOLS = {
    "float32": [("scipy_cblas_sgemm64_", 64), ("cblas_sgemm64_", 64), ("cblas_sgemm", 32)],
    "float64": [("scipy_cblas_dgemm64_", 64), ("cblas_dgemm64_", 64), ("cblas_dgemm", 32)],
}


def _candidate_libraries() -> list[str]:
    root = os.path.dirname(np.__file__)
    patterns = [os.path.join(root, "..", "numpy.libs", "*openblas*"),
                os.path.join(root, ".libs", "*openblas*"),
                os.path.join(root, "..", "scipy_openblas*", "lib", "*openblas*")]
    found = []
    for pattern in patterns:
        found.extend(sorted(glob.glob(pattern)))
    return found


@functools.cache
def gemm_address(dtype_name: str) -> tuple[int, int]:
    """(address, integer bits) of the CBLAS gemm for `dtype_name`, or (0, 0) if none is found."""
    for path in _candidate_libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol, bits in _SYMBOLS[dtype_name]:
            try:
                fn = getattr(lib, symbol)
            except AttributeError:
                continue
            return ctypes.cast(fn, ctypes.c_void_p).value, bits
    return 0, 0


def blas_available(dtype_name: str) -> bool:
    """Whether compiled code can call BLAS gemm for this dtype on this installation."""
    return gemm_address(dtype_name)[0] != 0


def _make_gemm_intrinsic(float_type, int_bits: int):
    @intrinsic
    def gemm(typingctx, address, trans_a, trans_b, m, n, k, a_ptr, lda, b_ptr, ldb, c_ptr, ldc,
             beta):
        sig = types.void(types.intp, types.intp, types.intp, types.intp, types.intp, types.intp,
                         types.uintp, types.intp, types.uintp, types.intp, types.uintp,
                         types.intp, beta)

        def codegen(context, builder, signature, args):
            (address, trans_a, trans_b, m, n, k, a_ptr, lda, b_ptr, ldb, c_ptr, ldc,
             beta) = args
            enum_t = ir.IntType(32)
            int_t = ir.IntType(int_bits)
            flt = ir.FloatType() if float_type == "float32" else ir.DoubleType()
            ptr = ir.IntType(8).as_pointer()
            fnty = ir.FunctionType(ir.VoidType(), [
                enum_t, enum_t, enum_t, int_t, int_t, int_t, flt, ptr, int_t, ptr, int_t, flt,
                ptr, int_t])
            fn = builder.inttoptr(address, fnty.as_pointer())

            def as_int(v):
                return builder.trunc(v, int_t) if int_bits < 64 else v

            def as_enum(v):
                return builder.trunc(v, enum_t)

            one = ir.Constant(flt, 1.0)
            builder.call(fn, [
                ir.Constant(enum_t, CBLAS_ROW_MAJOR), as_enum(trans_a), as_enum(trans_b),
                as_int(m), as_int(n), as_int(k), one,
                builder.inttoptr(a_ptr, ptr), as_int(lda),
                builder.inttoptr(b_ptr, ptr), as_int(ldb), beta,
                builder.inttoptr(c_ptr, ptr), as_int(ldc)])
            return context.get_dummy_value()

        return sig, codegen

    return gemm


gemm_f32 = _make_gemm_intrinsic("float32", 64)
gemm_f64 = _make_gemm_intrinsic("float64", 64)
gemm_f32_lp64 = _make_gemm_intrinsic("float32", 32)
gemm_f64_lp64 = _make_gemm_intrinsic("float64", 32)


def gemm_function_name(dtype_name: str) -> str:
    """The intrinsic the code generator should call for this dtype on this installation."""
    _, bits = gemm_address(dtype_name)
    suffix = "" if bits == 64 else "_lp64"
    return f"gemm_{'f32' if dtype_name == 'float32' else 'f64'}{suffix}"
