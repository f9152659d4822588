"""Vectorisable scalar math for fused kernels: exp, log, tanh, logistic, sin, cos, erf, ...

Why this module exists: inside a Numba loop `np.exp`, `np.tanh`, `np.sin` are scalar libm calls
(no SVML in PyPI llvmlite), and a call in the loop body stops LLVM from vectorising the loop;
`np.tanh` costs 13 ns per element where NumPy's ufunc costs 0.36 ns (shared/PERF.md, fact 2).
Each function here is straight-line arithmetic, integer bit tricks and branch-free selects, so

    for i in range(n):
        out[i] = tanh_f32(x[i])

compiles to packed SIMD code (`vfmadd...ps` on ymm/zmm registers). The code generator finds
the function for a primitive in `SCALAR_MATH[(primitive_name, dtype_name)]`.

How the functions are compiled (measured in bench/mathlib_bench.py and tests/test_mathlib.py):

* `numba.njit(cache=True, error_model="numpy", fastmath={"contract"})`, *without*
  `inline="always"`. Numba-level inlining re-types the callee inside the caller and applies the
  caller's flags: a caller with the default `error_model="python"` puts a zero check before each
  division (the loop then stays scalar: 2.4 vs 0.35 ns per element) and its `fastmath` flags
  would license LLVM to delete the NaN handling below. Called as an ordinary function, each
  keeps its own flags and LLVM inlines it (see `_force_inline`) before vectorising.
* `fastmath={"contract"}` lets LLVM fuse `a * b + c` into one FMA where the CPU has FMA. That is
  the only fast-math licence: every algorithm below is correct with or without fusion (its exact
  steps stay exact either way).
* Every float constant is a `np.float32` in the float32 functions, since a Python float would
  promote the arithmetic to float64 (PERF.md, fact 4).

Accuracy: max error in ulps against the function computed one precision up and rounded
(asserted by tests/test_mathlib.py). The float32 figures are maxima over all 2**32 inputs
(`make test-slow`, on a CPU with FMA); the float64 ones over about 10M random bit patterns
and ranges:

    float32: exp 1, log 1, log1p 1, expm1 1, tanh 5, logistic 2, sin 2, cos 2, erf 1
    float64: exp 1, log 1, log1p 2, expm1 2, tanh 3, logistic 2; sin, cos, erf call libm

Speed, ns per element in a loop over 4M float32 (bench/mathlib_bench.py, one AVX2 Zen 3 core):
exp 0.6, log 0.9, log1p 1.3, expm1 0.8, tanh 0.4, logistic 0.8, erf 1.0, sin/cos 3.3 (0.6 for
`sin_fast_f32`, exact only below 2**21); Numba's libm calls take 3-20, NumPy's ufuncs 1.7-14.

Special values follow NumPy: exp overflows to inf and underflows through the subnormals to 0,
log(0) = -inf, log(negative) = nan, tanh(+-large) = +-1, sin(inf) = nan, NaN propagates.

Coefficients: Cephes (S. L. Moshier) expf, logf, sinf/cosf; fdlibm (Sun) log; Taylor
series where noted; erf is fitted here (weighted least squares on Chebyshev nodes against
`math.erf`, iteratively re-weighted towards minimax, rounded to float32 and re-checked).

tanh is fitted here too, by `_fit_tanh_f32` (tests/test_mathlib.py checks that it reproduces
the constants): tanh(x) = x * P(x**2) / Q(x**2) with P and Q of degree 4 in x**2,
P(0) = Q(0) = 1, on [0, 9.02] (float32 tanh rounds to 1 from 9.011 on, and so does the
formula at the clamp). The float64 fit solves the linearised problem P - tanh(x)/x * Q = 0 by
least squares on 4000 Chebyshev nodes, dividing each row by the previous iterate's
tanh(x)/x * Q (Loeb) so the residual is the relative error, and multiplies the row weights by
that error each round (Lawson) to approach minimax: 2.8e-8 relative (0.47 units of 2**-24).
Each coefficient is then rounded to the float32 below or above it, keeping the one of 2**8
choices with the smallest maximum error: 3.1e-8 (plain rounding: 4.4e-8). Rounding in the
float32 evaluation (four roundings per polynomial, each up to 2**-24 relative) dominates: max
5 ulp over all float32 on a CPU with FMA, max relative error 3.2e-7; of the float32 in
[2**-12, 9.1] (the others are exact), 5.0 % are off by 2 ulp or more and 0.25 % by 3 or more.
Degrees (4, 5) fit to 1.2e-9 but still reach 5 ulp (0.2 % at 3 or more), for one more FMA (5 %
slower in the W2 loop); (3, 4) fits only to 5e-7; evaluating in float64 (at most 1 ulp) is
as slow as the exp-based tanh this replaced (1 ns per element).
"""

from __future__ import annotations

import hashlib
import itertools
import math
from fractions import Fraction

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = [
    "SCALAR_MATH",
    "SOURCE_DIGEST",
    "cos_f32",
    "cos_f64",
    "cos_fast_f32",
    "erf_f32",
    "erf_f64",
    "exp_f32",
    "exp_f64",
    "expm1_f32",
    "expm1_f64",
    "log1p_f32",
    "log1p_f64",
    "log_f32",
    "log_f64",
    "logistic_f32",
    "logistic_f64",
    "sin_f32",
    "sin_f64",
    "sin_fast_f32",
    "tanh_f32",
    "tanh_f64",
]

_scalar = numba.njit(cache=True, error_model="numpy", fastmath={"contract"})

# Numba's disk cache checks only a function's own source file, so a kernel cached before this
# module changed keeps the old, inlined mathlib code. Code generators should mix this digest
# into their cache keys (e.g. a comment line in the generated source).
with open(__file__, "rb") as _source:
    SOURCE_DIGEST = hashlib.sha256(_source.read()).hexdigest()[:16]

# --------------------------------------------------------------------------------------------
# Intrinsics: reinterpret bits (Numba has no scalar bit cast) and force LLVM inlining
# --------------------------------------------------------------------------------------------


@intrinsic
def _bitcast_f32_to_i32(typingctx, x):
    """The int32 with the same bits as the float32 `x`."""
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


@intrinsic
def _bitcast_i32_to_f32(typingctx, i):
    """The float32 with the bits of integer `i` (truncated to 32 bits)."""
    if not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        bits = context.cast(builder, args[0], signature.args[0], types.int32)
        return builder.bitcast(bits, ir.FloatType())

    return types.float32(i), codegen


@intrinsic
def _bitcast_f64_to_i64(typingctx, x):
    """The int64 with the same bits as the float64 `x`."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _bitcast_i64_to_f64(typingctx, i):
    """The float64 with the bits of integer `i`."""
    if not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        bits = context.cast(builder, args[0], signature.args[0], types.int64)
        return builder.bitcast(bits, ir.DoubleType())

    return types.float64(i), codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c rounded once (llvm.fma: one instruction on CPUs with FMA, a libm call else).

    Unlike the `contract` licence, which lets LLVM fuse where it likes, this is a guarantee,
    for the steps whose exactness depends on it.
    """
    if not (a == b == c and isinstance(a, types.Float)):
        return None

    def codegen(context, builder, signature, args):
        ty = context.get_value_type(signature.return_type)
        fma = builder.module.declare_intrinsic("llvm.fma", [ty], ir.FunctionType(ty, [ty] * 3))
        return builder.call(fma, args)

    return a(a, a, a), codegen


@intrinsic
def _force_inline(typingctx):
    """Mark the calling function `alwaysinline` for LLVM.

    A call that LLVM declines to inline leaves a call in the loop body, and a loop with a call
    is never vectorised. LLVM's own heuristics inlined every case measured (42 mathlib calls in
    one loop included); the attribute turns that into a guarantee. It travels with the bitcode
    Numba caches for linking, so it holds when a function comes from the disk cache too.
    """

    def codegen(context, builder, signature, args):
        builder.function.attributes.add("alwaysinline")
        return context.get_dummy_value()

    return types.none(), codegen


# --------------------------------------------------------------------------------------------
# Constants. Float32 functions see only np.float32 constants (a Python float promotes).
# --------------------------------------------------------------------------------------------

_F32 = np.float32
_ZERO_F32, _HALF_F32, _ONE_F32, _TWO_F32 = _F32(0.0), _F32(0.5), _F32(1.0), _F32(2.0)
_INF_F32, _NAN_F32 = _F32(np.inf), _F32(np.nan)
_INF, _NAN = math.inf, math.nan

# Adding 1.5 * 2**23 (2**52) to |v| < 2**22 (2**51) rounds v to an integer, kept in the low
# mantissa bits (read them with a bit cast: no float->int conversion, which is poison for NaN
# in LLVM); subtracting it again leaves round(v) as a float.
_ROUND_F32 = _F32(12582912.0)
_ROUND_F64 = 6755399441055744.0
_POW2_SHIFT_F32, _POW2_SHIFT_F64 = _ROUND_F32 + _F32(127.0), _ROUND_F64 + 1023.0
_QUARTER_F32, _SIXTY_FOUR_F32 = _F32(0.25), _F32(64.0)

_LOG2E_F32 = _F32(1.44269504088896341)
_LN2_HI_F32 = _F32(0.693359375)  # Cephes: 9 significant bits, so n * _LN2_HI_F32 is exact
_LN2_LO_F32 = _F32(-2.12194440e-4)
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # fdlibm: 32 significant bits, n * _LN2_HI exact
_LN2_LO = 1.90821492927058770002e-10

# Cephes expf: exp(r) = 1 + r + r**2 * P(r) on |r| <= ln2/2.
_EXPF_P0, _EXPF_P1, _EXPF_P2 = _F32(1.9875691500e-4), _F32(1.3981999507e-3), _F32(8.3334519073e-3)
_EXPF_P3, _EXPF_P4, _EXPF_P5 = _F32(4.1665795894e-2), _F32(1.6666665459e-1), _F32(5.0000001201e-1)
_EXP_HI_F32, _EXP_LO_F32 = _F32(89.0), _F32(-104.0)  # beyond these exp is inf / 0 in float32
_EXP_HI, _EXP_LO = 710.0, -746.0  # beyond these exp is inf / 0 in float64
_EXPM1_LO_F32, _EXPM1_LO = _F32(-20.0), -40.0  # below these expm1 rounds to -1

# Taylor coefficients 1/k!, k = 2..13: on |r| <= ln2/2 the first omitted term is < 2**-58.
_T2, _T3, _T4, _T5, _T6, _T7, _T8, _T9, _T10, _T11, _T12, _T13 = (
    1.0 / math.factorial(k) for k in range(2, 14)
)
_T2_F32, _T3_F32, _T4_F32, _T5_F32, _T6_F32, _T7_F32, _T8_F32 = (
    _F32(1.0 / math.factorial(k)) for k in range(2, 9)
)

# Cephes logf: log(1 + f) = f - f**2/2 + f**3 * P(f) on sqrt(1/2) - 1 <= f < sqrt(2) - 1.
_SQRT_HALF_F32 = _F32(0.707106781186547524)
_LOGF_P0, _LOGF_P1, _LOGF_P2 = _F32(7.0376836292e-2), _F32(-1.1514610310e-1), _F32(1.1676998740e-1)
_LOGF_P3, _LOGF_P4, _LOGF_P5 = _F32(-1.2420140846e-1), _F32(1.4249322787e-1), _F32(-1.6668057665e-1)
_LOGF_P6, _LOGF_P7, _LOGF_P8 = _F32(2.0000714765e-1), _F32(-2.4999993993e-1), _F32(3.3333331174e-1)
_MIN_NORMAL_F32, _TWO23_F32 = _F32(2.0**-126), _F32(2.0**23)

# fdlibm e_log.c: log(1 + f) = f - f**2/2 + s * (f**2/2 + R(s**2)), s = f / (2 + f).
_LG1, _LG2, _LG3 = 6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01
_LG4, _LG5, _LG6 = 2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_SQRT_HALF = 0.70710678118654752440
_MIN_NORMAL, _TWO54 = 2.0**-1022, 2.0**54

# tanh, fitted here (see module docstring and `_fit_tanh_f32`): tanh(x) = x * P(x**2) / Q(x**2)
# on |x| <= _TANH_CLAMP_F32, where tanh rounds to 1 in float32 (and so does this formula).
_TANH_P1, _TANH_P2 = _F32(0.13386782), _F32(0.0035022465)
_TANH_P3, _TANH_P4 = _F32(2.0710515e-05), _F32(1.3477733e-08)
_TANH_Q1, _TANH_Q2 = _F32(0.46720102), _F32(0.025902783)
_TANH_Q3, _TANH_Q4 = _F32(0.0003296187), _F32(7.83074e-07)
_TANH_CLAMP_F32 = _F32(9.02)
_TANH_CLAMP_SQUARED_F32 = _TANH_CLAMP_F32 * _TANH_CLAMP_F32
_TANH_CLAMP = 20.0  # tanh(20) rounds to 1 in float64

# erf, fitted here (see module docstring). |x| < 1: erf(x) = x + x * A(x**2);
# 1 <= |x| < 3.95: erf(x) = 1 - exp(-x**2) * B(|x| - 2), B ~ erfc(x) * exp(x**2).
_ERF_A0, _ERF_A1, _ERF_A2 = _F32(0.12837917), _F32(-0.3761263), _F32(0.112836115)
_ERF_A3, _ERF_A4, _ERF_A5, _ERF_A6 = (
    _F32(-0.026854774),
    _F32(0.0051899976),
    _F32(-0.000802392),
    _F32(7.896918e-05),
)
_ERF_B0, _ERF_B1, _ERF_B2 = _F32(0.25539622), _F32(-0.10679854), _F32(0.041771974)
_ERF_B3, _ERF_B4, _ERF_B5 = _F32(-0.015500998), _F32(0.005555009), _F32(-0.0016012774)
_ERF_B6, _ERF_B7 = _F32(0.00058160344), _F32(-0.0003779266)
_ERF_CLAMP_F32 = _F32(3.95)  # erf(3.95) rounds to 1 in float32

# Cephes sinf/cosf on |r| <= pi/4.
_SINF_S1, _SINF_S2, _SINF_S3 = _F32(-1.6666654611e-1), _F32(8.3321608736e-3), _F32(-1.9515295891e-4)
_COSF_C1, _COSF_C2, _COSF_C3 = (
    _F32(4.166664568298827e-2),
    _F32(-1.388731625493765e-3),
    _F32(2.443315711809948e-5),
)
_PI_OVER_4_F32 = _F32(0.785398163397448)
_TWO_OVER_PI_F32 = _F32(0.636619772367581343)
_FAST_TRIG_LIMIT_F32 = _F32(2.0**21)  # sin_fast_f32 / cos_fast_f32 are exact below this
_TINY_F32 = _F32(2.0**-12)  # below this sin(x) rounds to x
_TINY = 2.0**-27  # below this tanh(x) rounds to x in float64
_PI_OVER_2 = 1.5707963267948966


_PRECISION = 700  # bits after the binary point of the fixed-point pi below


def _pi_fixed_point() -> int:
    """pi * 2**_PRECISION (to within a few units), by Machin's formula in Python integers."""

    def arctan_inverse(n: int) -> int:  # atan(1/n) * 2**_PRECISION, by its Taylor series
        total, power, k = 0, (1 << _PRECISION) // n, 0
        while power:
            term = power // (2 * k + 1)
            total += -term if k % 2 else term
            power //= n * n
            k += 1
        return total

    return 4 * (4 * arctan_inverse(5) - arctan_inverse(239))


def _reduction_table() -> tuple[np.ndarray, ...]:
    """Three float64 pieces of (2/pi * 2**(E - 150)) mod 4 for each float32 biased exponent E.

    A float32 of exponent E >= 126 is m * 2**(E - 150) with m < 2**24 an integer, so
    x * 2/pi mod 4 = m * G_E mod 4 with G_E = (2/pi * 2**(E - 150)) mod 4: the bits of 2/pi that
    would only add multiples of 4 are dropped (Payne-Hanek reduction). G_E is cut into three
    pieces of 29 bits at fixed positions below its leading bit L <= 1, so each m * piece is exact
    in float64 (24 + 29 bits), the second is below 2**(L - 4) and the dropped tail leaves an
    error below 2**-61 in x * 2/pi (see `_reduce_pi_over_2_f32`).
    Row E - 126, for E = 126..255 (255 is inf/nan, whose result is replaced).
    """
    precision = _PRECISION
    two_over_pi = (2 << (2 * precision)) // _pi_fixed_point()  # 2/pi * 2**precision
    rows = []
    for exponent in range(126, 256):
        shift = exponent - 150
        g = two_over_pi << shift if shift >= 0 else two_over_pi >> -shift
        g %= 4 << precision
        leading = g.bit_length() - 1 - precision
        pieces = []
        for i in range(3):
            low = leading - 28 - 29 * i
            chunk = (g >> (low + precision)) & ((1 << 29) - 1)
            pieces.append(math.ldexp(float(chunk), low))
        rows.append(pieces)
    table = np.array(rows, dtype=np.float64)
    return tuple(np.ascontiguousarray(table[:, i]) for i in range(3))


def _pi_over_2_pieces_f32() -> tuple[np.float32, np.float32, np.float32]:
    """pi/2 as a sum of three float32 (each the float32 nearest to what the others leave)."""
    remainder = Fraction(_pi_fixed_point(), 1 << (_PRECISION + 1))
    pieces = []
    for _ in range(3):
        pieces.append(_F32(float(remainder)))
        remainder -= Fraction(float(pieces[-1]))
    return tuple(pieces)


_REDUCE_G1, _REDUCE_G2, _REDUCE_G3 = _reduction_table()
_PI_OVER_2_HI_F32, _PI_OVER_2_MID_F32, _PI_OVER_2_LO_F32 = _pi_over_2_pieces_f32()


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------


# Scale factors are built from integer-valued floats k, never from Numba integers: Numba
# widens integer arithmetic to int64, and a right shift of an int64 stays 64-bit in the vector
# code (4 lanes per ymm instead of 8; it cost tanh 0.4 ns per element).


@_scalar
def _pow2_f32(k):
    """2.0**k as float32 for an integer-valued float32 k in [-126, 127], built from its bits.

    k + 1.5 * 2**23 + 127 holds k + 127 in its low mantissa bits; shifting them into the
    exponent field also shifts out every bit of the 1.5 * 2**23.
    """
    _force_inline()
    return _bitcast_i32_to_f32(_bitcast_f32_to_i32(k + _POW2_SHIFT_F32) << 23)


@_scalar
def _pow2_f64(k):
    """2.0**k as float64 for an integer-valued float64 k in [-1022, 1023] (as _pow2_f32)."""
    _force_inline()
    return _bitcast_i64_to_f64(_bitcast_f64_to_i64(k + _POW2_SHIFT_F64) << 52)


@_scalar
def _times_pow2_f32(e, k):
    """e * 2**k for an integer-valued float32 k in [-252, 254], rounded once.

    Two factors 2**floor(k/2) and 2**ceil(k/2) are normal floats, and e * first is exact
    when e is in [1/2, 2], so a subnormal or overflowing result is rounded by the last multiply.
    """
    _force_inline()
    half = (k * _HALF_F32 - _QUARTER_F32 + _ROUND_F32) - _ROUND_F32  # floor(k / 2)
    return e * _pow2_f32(half) * _pow2_f32(k - half)


@_scalar
def _times_pow2_f64(e, k):
    """e * 2**k for an integer-valued float64 k in [-2044, 2046], rounded once (as above)."""
    _force_inline()
    half = (k * 0.5 - 0.25 + _ROUND_F64) - _ROUND_F64
    return e * _pow2_f64(half) * _pow2_f64(k - half)


@_scalar
def _reduce_ln2_f32(x):
    """Split x = k * ln2 + r with k integer-valued and |r| <= ln2/2 (Cody-Waite); (r, k)."""
    _force_inline()
    k = (x * _LOG2E_F32 + _ROUND_F32) - _ROUND_F32
    r = x - k * _LN2_HI_F32
    return r - k * _LN2_LO_F32, k


@_scalar
def _reduce_ln2_f64(x):
    """Split x = k * ln2 + r with k integer-valued and |r| <= ln2/2 (Cody-Waite); (r, k)."""
    _force_inline()
    k = (x * _LOG2E + _ROUND_F64) - _ROUND_F64
    r = x - k * _LN2_HI
    return r - k * _LN2_LO, k


@_scalar
def _exp_parts_f32(x):
    """(e, k) with e**x = e * 2**k, e in [0.7, 1.42] (Cephes expf polynomial), k integer."""
    _force_inline()
    r, k = _reduce_ln2_f32(x)
    p = _EXPF_P0 * r + _EXPF_P1
    p = p * r + _EXPF_P2
    p = p * r + _EXPF_P3
    p = p * r + _EXPF_P4
    p = p * r + _EXPF_P5
    return p * (r * r) + r + _ONE_F32, k


@_scalar
def _expm1_taylor_f32(r):
    """exp(r) - 1 on |r| <= ln2/2 by its Taylor series to r**8 (truncation < 2**-27 r)."""
    _force_inline()
    q = _T8_F32 * r + _T7_F32
    q = q * r + _T6_F32
    q = q * r + _T5_F32
    q = q * r + _T4_F32
    q = q * r + _T3_F32
    q = q * r + _T2_F32
    return r + r * r * q


@_scalar
def _expm1_taylor_f64(r):
    """exp(r) - 1 on |r| <= ln2/2 by its Taylor series to r**13 (truncation < 2**-58)."""
    _force_inline()
    q = _T13 * r + _T12
    q = q * r + _T11
    q = q * r + _T10
    q = q * r + _T9
    q = q * r + _T8
    q = q * r + _T7
    q = q * r + _T6
    q = q * r + _T5
    q = q * r + _T4
    q = q * r + _T3
    q = q * r + _T2
    return r + r * r * q


# --------------------------------------------------------------------------------------------
# exp, expm1
# --------------------------------------------------------------------------------------------


@_scalar
def exp_f32(x):
    """e**x for float32: Cephes expf polynomial, scaled by 2**k from its bits; max 1 ulp.

    Overflows to inf above 88.72, underflows through the subnormals to 0 below -103.97.

    >>> float(exp_f32(np.float32(1.0)))
    2.7182817459106445
    """
    _force_inline()
    x = _EXP_HI_F32 if x > _EXP_HI_F32 else x  # NaN fails both tests and passes through
    x = _EXP_LO_F32 if x < _EXP_LO_F32 else x
    e, k = _exp_parts_f32(x)
    return _times_pow2_f32(e, k)  # k in [-150, 128]


@_scalar
def exp_f64(x):
    """e**x for float64: Cody-Waite reduction, Taylor series to r**13, 2**k from bits; 1 ulp.

    >>> float(exp_f64(2.0))
    7.38905609893065
    """
    _force_inline()
    x = _EXP_HI if x > _EXP_HI else x
    x = _EXP_LO if x < _EXP_LO else x
    r, k = _reduce_ln2_f64(x)
    return _times_pow2_f64(_expm1_taylor_f64(r) + 1.0, k)


@_scalar
def expm1_f32(x):
    """e**x - 1 for float32, accurate near 0: 2**k * (e**r - 1) + (2**k - 1); max 1 ulp.

    >>> float(expm1_f32(np.float32(1e-10)))
    1.000000013351432e-10
    """
    _force_inline()
    x = _EXP_HI_F32 if x > _EXP_HI_F32 else x
    x = _EXPM1_LO_F32 if x < _EXPM1_LO_F32 else x
    r, k = _reduce_ln2_f32(x)
    em = _expm1_taylor_f32(r)
    # k <= 64: 2**k - 1 is exact or dwarfed, so one rounding joins the parts. Larger k would
    # overflow 2**k alone; there e**x - 1 = e**x and it is scaled in two factors as in exp.
    s = _pow2_f32(k if k < _SIXTY_FOUR_F32 else _ZERO_F32)
    small = s * em + (s - _ONE_F32)
    large = _times_pow2_f32(em + _ONE_F32, k)
    result = small if k < _SIXTY_FOUR_F32 else large
    return x if x == _ZERO_F32 else result  # keeps the sign of -0.0


@_scalar
def expm1_f64(x):
    """e**x - 1 for float64, accurate near 0 (same scheme as expm1_f32); max 2 ulp."""
    _force_inline()
    x = _EXP_HI if x > _EXP_HI else x
    x = _EXPM1_LO if x < _EXPM1_LO else x
    r, k = _reduce_ln2_f64(x)
    em = _expm1_taylor_f64(r)
    s = _pow2_f64(k if k < 512.0 else 0.0)
    small = s * em + (s - 1.0)
    large = _times_pow2_f64(em + 1.0, k)
    result = small if k < 512.0 else large
    return x if x == 0.0 else result


# --------------------------------------------------------------------------------------------
# log, log1p
# --------------------------------------------------------------------------------------------


@_scalar
def log_f32(x):
    """Natural log for float32: exponent from the bits, Cephes logf polynomial; max 1 ulp.

    log(0) = -inf, log(negative) = nan, log(inf) = inf; subnormals are scaled up first.

    >>> float(log_f32(np.float32(2.0)))
    0.6931471824645996
    """
    _force_inline()
    subnormal = x < _MIN_NORMAL_F32
    bits = _bitcast_f32_to_i32(x * _TWO23_F32 if subnormal else x)
    e = _F32((bits >> 23) - 126) - (_F32(23.0) if subnormal else _ZERO_F32)
    m = _bitcast_i32_to_f32((bits & 0x007FFFFF) | 0x3F000000)  # x = m * 2**e, m in [0.5, 1)
    below = m < _SQRT_HALF_F32
    e = e - _ONE_F32 if below else e
    f = (m + m - _ONE_F32) if below else (m - _ONE_F32)  # exact; f in [-0.293, 0.414)
    z = f * f
    z2 = z * z
    p = (
        ((_LOGF_P7 * f + _LOGF_P8) + (_LOGF_P5 * f + _LOGF_P6) * z)
        + ((_LOGF_P3 * f + _LOGF_P4) + (_LOGF_P1 * f + _LOGF_P2) * z) * z2
        + _LOGF_P0 * (z2 * z2)
    )
    y = p * f * z + e * _LN2_LO_F32 - _HALF_F32 * z
    result = f + y + e * _LN2_HI_F32
    result = -_INF_F32 if x == _ZERO_F32 else result
    result = _NAN_F32 if x < _ZERO_F32 else result
    return x if not (x < _INF_F32) else result  # inf -> inf, nan -> nan


@_scalar
def log_f64(x):
    """Natural log for float64: exponent from the bits, fdlibm's polynomial; max 1 ulp."""
    _force_inline()
    subnormal = x < _MIN_NORMAL
    bits = _bitcast_f64_to_i64(x * _TWO54 if subnormal else x)
    e = np.float64((bits >> 52) - 1022) - (54.0 if subnormal else 0.0)
    m = _bitcast_i64_to_f64((bits & 0x000FFFFFFFFFFFFF) | 0x3FE0000000000000)
    below = m < _SQRT_HALF
    e = e - 1.0 if below else e
    f = (m + m - 1.0) if below else (m - 1.0)
    half_f2 = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    r = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7))) + w * (_LG2 + w * (_LG4 + w * _LG6))
    result = e * _LN2_HI - ((half_f2 - (s * (half_f2 + r) + e * _LN2_LO)) - f)
    result = -_INF if x == 0.0 else result
    result = _NAN if x < 0.0 else result
    return x if not (x < _INF) else result


@_scalar
def log1p_f32(x):
    """log(1 + x) for float32, accurate near 0; max 1 ulp.

    log(u) for u = fl(1 + x), plus the rounding error of that sum relative to u (Goldberg's
    correction: log(1 + x) = log(u) + (x - (u - 1)) / u to first order).

    >>> float(log1p_f32(np.float32(1e-10)))
    1.000000013351432e-10
    """
    _force_inline()
    u = x + _ONE_F32
    finite = (u > _ZERO_F32) & (u < _INF_F32)
    c = (x - (u - _ONE_F32)) / u
    result = log_f32(u) + (c if finite else _ZERO_F32)
    return x if x == _ZERO_F32 else result  # keeps the sign of -0.0


@_scalar
def log1p_f64(x):
    """log(1 + x) for float64, accurate near 0 (same scheme as log1p_f32); max 2 ulp."""
    _force_inline()
    u = x + 1.0
    finite = (u > 0.0) & (u < _INF)
    c = (x - (u - 1.0)) / u
    result = log_f64(u) + (c if finite else 0.0)
    return x if x == 0.0 else result


# --------------------------------------------------------------------------------------------
# tanh, logistic
# --------------------------------------------------------------------------------------------


@_scalar
def tanh_f32(x):
    """tanh for float32 as x * P(x**2) / Q(x**2), a rational function fitted here (see
    `_fit_tanh_f32`), with x**2 clamped to 9.02**2 and the result to [-1, 1]; max 5 ulp.

    Beyond 9.02 the clamped quotient times |x| is at least 1, and so is rounded tanh. No other
    special cases: tiny x and -0.0 give x (P and Q round to 1), +-inf +-1, NaN NaN, and the
    sign symmetry is exact (the rounding of x * r is).

    >>> float(tanh_f32(np.float32(100.0)))
    1.0
    """
    _force_inline()
    # min and max, not conditional expressions: Numba lowers these builtins to one select each,
    # which becomes one vminps/vmaxps, while `a if a < b else b` goes through control flow and
    # came out as compare and blend (5 % slower in the W2 loop). NaN passes through both.
    z = min(x * x, _TANH_CLAMP_SQUARED_F32)
    p = _TANH_P4 * z + _TANH_P3
    p = p * z + _TANH_P2
    p = p * z + _TANH_P1
    p = p * z + _ONE_F32
    q = _TANH_Q4 * z + _TANH_Q3
    q = q * z + _TANH_Q2
    q = q * z + _TANH_Q1
    q = q * z + _ONE_F32
    # Clamped to [-1, 1] for |x| > 9.02, and where rounding goes a few ulp past 1 below 9.02.
    return min(max(x * (p / q), -_ONE_F32), _ONE_F32)


@_scalar
def tanh_f64(x):
    """tanh for float64 as expm1(2|x|) / (expm1(2|x|) + 2), sign restored; max 3 ulp."""
    _force_inline()
    a = abs(x)
    e = expm1_f64(2.0 * (_TANH_CLAMP if a > _TANH_CLAMP else a))
    result = e / (e + 2.0)
    result = result if x >= 0.0 else -result
    return x if a < _TINY else result


@_scalar
def logistic_f32(x):
    """1 / (1 + e**-x) for float32, stable for large |x|: with e = e**-|x| <= 1 it is
    1 / (1 + e) for x >= 0 and e / (1 + e) below; max 2 ulp.

    >>> float(logistic_f32(np.float32(-200.0)))
    0.0
    """
    _force_inline()
    e = exp_f32(-abs(x))
    return (_ONE_F32 if x >= _ZERO_F32 else e) / (_ONE_F32 + e)


@_scalar
def logistic_f64(x):
    """1 / (1 + e**-x) for float64, stable for large |x| (as logistic_f32); max 2 ulp."""
    _force_inline()
    e = exp_f64(-abs(x))
    return (1.0 if x >= 0.0 else e) / (1.0 + e)


# --------------------------------------------------------------------------------------------
# sin, cos
# --------------------------------------------------------------------------------------------


@_scalar
def _reduce_pi_over_2_f32(a):
    """For a float32 a >= 0: (r, q) with a = (4j + q) * pi/2 + r, |r| <= pi/4 (a little more
    for huge a), r as float32, exact for every finite float32 (Payne-Hanek, see
    `_reduction_table`). Below pi/4, (a, 0)."""
    _force_inline()
    bits = _bitcast_f32_to_i32(a)
    row = (bits >> 23) - 126
    row = 0 if row < 0 else row
    m = np.float64(_bitcast_i32_to_f32((bits & 0x007FFFFF) | 0x4B000000))  # 24-bit mantissa
    p1 = m * _REDUCE_G1[row]  # exact, < 2**26
    t1 = p1 + _ROUND_F64
    # p1 - round(p1) is exact and in [-1/2, 1/2]; adding m * G2 < 1/8 cannot bring the sum near
    # +-1, so its rounding error is relative to the sum even where the sum cancels towards 0.
    s = (p1 - (t1 - _ROUND_F64)) + m * _REDUCE_G2[row]
    t2 = s + _ROUND_F64
    theta = (s - (t2 - _ROUND_F64)) + m * _REDUCE_G3[row]
    quadrant = (_bitcast_f64_to_i64(t1) + _bitcast_f64_to_i64(t2)) & 3
    reduced = _F32(theta * _PI_OVER_2)
    small = a < _PI_OVER_4_F32
    return (a if small else reduced), (0 if small else quadrant)


@_scalar
def _sin_cos_poly_f32(r):
    """(sin r, cos r) on |r| <= pi/4 by the Cephes sinf/cosf polynomials."""
    _force_inline()
    z = r * r
    s = _SINF_S3 * z + _SINF_S2
    s = s * z + _SINF_S1
    c = _COSF_C3 * z + _COSF_C2
    c = c * z + _COSF_C1
    return r + r * z * s, _ONE_F32 - _HALF_F32 * z + z * z * c


@_scalar
def sin_f32(x):
    """sin for float32 over the whole finite range (exact argument reduction); max 2 ulp.

    The exactness has a price: three table reads per element, which LLVM does one lane at a
    time on AVX2, and float64 arithmetic, which halves the vector width of the whole loop it is
    fused into. 3.3 ns per element against 0.6 for `sin_fast_f32` (exact below 2**21 only).

    >>> float(sin_f32(np.float32(1e30)))
    -0.791163444519043
    """
    _force_inline()
    a = abs(x)
    r, q = _reduce_pi_over_2_f32(a)
    s, c = _sin_cos_poly_f32(r)
    result = c if q & 1 else s
    result = -result if ((q & 2) != 0) != (x < _ZERO_F32) else result
    result = x if a < _TINY_F32 else result  # -0.0, subnormals
    return result if a < _INF_F32 else x - x  # inf -> nan, nan -> nan


@_scalar
def cos_f32(x):
    """cos for float32 over the whole finite range (exact argument reduction); max 2 ulp.

    >>> float(cos_f32(np.float32(0.0)))
    1.0
    """
    _force_inline()
    a = abs(x)
    r, q = _reduce_pi_over_2_f32(a)
    s, c = _sin_cos_poly_f32(r)
    result = s if q & 1 else c
    result = -result if (q + 1) & 2 else result
    return result if a < _INF_F32 else x - x


@_scalar
def _reduce_pi_over_2_fast_f32(a):
    """(r, q) as `_reduce_pi_over_2_f32`, by Cody-Waite in float32: right for a < 2**21.

    j = round(a * 2/pi); a - j * hi is exact with one fused multiply-add (both sides lie on the
    2**-24 grid and the difference is below 1), and the two lower pieces of pi/2 bring the error
    to about j * 2**-74, far below an ulp of r for every float32 under 2**21 (checked
    exhaustively in tests/test_mathlib.py).
    """
    _force_inline()
    t = a * _TWO_OVER_PI_F32 + _ROUND_F32
    j = t - _ROUND_F32
    r = _fma(-j, _PI_OVER_2_HI_F32, a)
    r = _fma(-j, _PI_OVER_2_MID_F32, r)
    return _fma(-j, _PI_OVER_2_LO_F32, r), _bitcast_f32_to_i32(t) & 3


@_scalar
def sin_fast_f32(x):
    """sin for float32 with float32-only argument reduction: max 2 ulp for |x| < 2**21, NaN
    at and above. About 5x faster than sin_f32 (whose exact reduction reads a table and works
    in float64); not in SCALAR_MATH, since it is wrong where NumPy is not.

    >>> float(sin_fast_f32(np.float32(2.0)))
    0.9092974066734314
    """
    _force_inline()
    a = abs(x)
    r, q = _reduce_pi_over_2_fast_f32(a)
    s, c = _sin_cos_poly_f32(r)
    result = c if q & 1 else s
    result = -result if ((q & 2) != 0) != (x < _ZERO_F32) else result
    result = x if a < _TINY_F32 else result
    return result if a < _FAST_TRIG_LIMIT_F32 else _NAN_F32 + x  # NaN, also for inf and NaN


@_scalar
def cos_fast_f32(x):
    """cos for float32 with float32-only argument reduction: max 2 ulp for |x| < 2**21, NaN
    at and above (see sin_fast_f32)."""
    _force_inline()
    a = abs(x)
    r, q = _reduce_pi_over_2_fast_f32(a)
    s, c = _sin_cos_poly_f32(r)
    result = s if q & 1 else c
    result = -result if (q + 1) & 2 else result
    return result if a < _FAST_TRIG_LIMIT_F32 else _NAN_F32 + x


@_scalar
def sin_f64(x):
    """sin for float64. Calls libm (`math.sin`): a scalar call, so a loop using it does not
    vectorise; an exact float64 argument reduction has not been written yet."""
    return math.sin(x)


@_scalar
def cos_f64(x):
    """cos for float64. Calls libm (`math.cos`), so a loop using it does not vectorise."""
    return math.cos(x)


# --------------------------------------------------------------------------------------------
# erf
# --------------------------------------------------------------------------------------------


@_scalar
def erf_f32(x):
    """The error function for float32: x + x * A(x**2) below 1, 1 - e**-x**2 * B(|x| - 2)
    above (both fitted here, see module docstring); max 1 ulp.

    >>> float(erf_f32(np.float32(0.5)))
    0.5204998850822449
    """
    _force_inline()
    z = x * x
    p = _ERF_A6 * z + _ERF_A5
    p = p * z + _ERF_A4
    p = p * z + _ERF_A3
    p = p * z + _ERF_A2
    p = p * z + _ERF_A1
    p = p * z + _ERF_A0
    small = x + x * p
    a = abs(x)
    a = _ERF_CLAMP_F32 if a > _ERF_CLAMP_F32 else a
    v = a - _TWO_F32
    q = _ERF_B7 * v + _ERF_B6
    q = q * v + _ERF_B5
    q = q * v + _ERF_B4
    q = q * v + _ERF_B3
    q = q * v + _ERF_B2
    q = q * v + _ERF_B1
    q = q * v + _ERF_B0
    e, k = _exp_parts_f32(-(a * a))
    large = _ONE_F32 - e * _pow2_f32(k) * q  # k >= -23: one factor does
    large = large if x >= _ZERO_F32 else -large
    return small if a < _ONE_F32 else large


@_scalar
def erf_f64(x):
    """The error function for float64. Calls libm (`math.erf`), so a loop using it does not
    vectorise; a float64 fit has not been written yet."""
    return math.erf(x)


# --------------------------------------------------------------------------------------------
# Fitting the tanh coefficients (run by tests/test_mathlib.py, never at import)
# --------------------------------------------------------------------------------------------


def _fit_tanh_f32(
    clamp: float = float(_TANH_CLAMP_F32),
    degrees: tuple[int, int] = (4, 4),
    nodes: int = 4000,
    iterations: int = 100,
) -> tuple[tuple[np.float32, ...], tuple[np.float32, ...]]:
    """Fit float32 P, Q with P(0) = Q(0) = 1 and tanh(x) ~= x * P(x**2) / Q(x**2) on [0, clamp].

    Minimises the maximum relative error in float64, then rounds to float32 (see the module
    docstring). Args: the interval's end, the degrees of P and Q in x**2, the number of
    Chebyshev nodes and of re-weighting iterations. Returns (P's, Q's) coefficients from
    degree 1 up: with the defaults, `_TANH_P1.._TANH_P4` and `_TANH_Q1.._TANH_Q4` (about 1 s).
    """
    m, n = degrees
    k = np.arange(nodes)
    x = np.append(clamp * (1.0 - np.cos(np.pi * (k + 0.5) / nodes)) / 2.0, clamp)
    s = (x / clamp) ** 2  # fitted in s = (x / clamp)**2 in [0, 1]: better conditioned than x**2
    f = np.tanh(x) / x
    powers = s[:, None] ** np.arange(1, max(m, n) + 1)
    # P(s) - f * Q(s) = 0 is linear in the unknown coefficients: P's then Q's, degree >= 1.
    matrix = np.hstack([powers[:, :m], -f[:, None] * powers[:, :n]])
    weights, q_previous = np.ones_like(x), np.ones_like(x)
    best_error, best = np.inf, None
    for _ in range(iterations):
        scale = weights / (f * q_previous)  # divide by f * Q: the residual becomes relative
        solution = np.linalg.lstsq(matrix * scale[:, None], (f - 1.0) * scale, rcond=None)[0]
        p_values = 1.0 + powers[:, :m] @ solution[:m]
        q_previous = 1.0 + powers[:, :n] @ solution[m:]
        error = np.abs(p_values / (f * q_previous) - 1.0)
        if error.max() < best_error:
            best_error, best = error.max(), solution
        weights = np.maximum(weights * error / np.sum(weights * error), 1e-300)
    p_wide = best[:m] / clamp ** (2 * np.arange(1, m + 1))  # back to powers of x**2
    q_wide = best[m:] / clamp ** (2 * np.arange(1, n + 1))
    return _round_tanh_coefficients(p_wide, q_wide, clamp)


def _round_tanh_coefficients(p_wide, q_wide, clamp):
    """The float32 neighbours of the float64 coefficients (one of the two for each) whose
    rational function has the smallest maximum relative error on a fine grid of (0, clamp]."""
    x = np.linspace(0.0, clamp, 40001)[1:]
    z, f = x * x, np.tanh(x) / x

    def neighbours(value):
        nearest = _F32(value)
        return [nearest, np.nextafter(nearest, _F32(np.inf) if nearest < value else _F32(-np.inf))]

    def candidates(wide):  # every choice of neighbours, and the polynomial's values on the grid
        choices = list(itertools.product(*(neighbours(v) for v in wide)))
        powers = z[None, :] ** np.arange(1, len(wide) + 1)[:, None]
        return choices, 1.0 + np.array(choices, np.float64) @ powers

    p_choices, p_values = candidates(p_wide)
    q_choices, q_values = candidates(q_wide)
    best_error, best = np.inf, None
    for p_choice, p_value in zip(p_choices, p_values):
        errors = np.max(np.abs(p_value / (q_values * f) - 1.0), axis=1)
        i = int(np.argmin(errors))
        if errors[i] < best_error:
            best_error, best = errors[i], (p_choice, q_choices[i])
    return best


# --------------------------------------------------------------------------------------------
# The table the code generator reads: (fnbrrr primitive name, dtype name) -> function
# --------------------------------------------------------------------------------------------

SCALAR_MATH = {
    ("exp", "float32"): exp_f32,            ("exp", "float64"): exp_f64,
    ("log", "float32"): log_f32,            ("log", "float64"): log_f64,
    ("log1p", "float32"): log1p_f32,        ("log1p", "float64"): log1p_f64,
    ("expm1", "float32"): expm1_f32,        ("expm1", "float64"): expm1_f64,
    ("tanh", "float32"): tanh_f32,          ("tanh", "float64"): tanh_f64,
    ("logistic", "float32"): logistic_f32,  ("logistic", "float64"): logistic_f64,
    ("sin", "float32"): sin_f32,            ("sin", "float64"): sin_f64,
    ("cos", "float32"): cos_f32,            ("cos", "float64"): cos_f64,
    ("erf", "float32"): erf_f32,            ("erf", "float64"): erf_f64,
}  # fmt: skip
