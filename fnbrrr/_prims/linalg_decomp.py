"""solve, det and slogdet of square matrices: primitives over an LU factorisation.

Each primitive takes a stack of float32/float64 matrices (..., n, n) and factorises each one
with partial pivoting (P a = L U); `cofactors` (C = adj(a)^T, the gradient of det) serves
det's derivatives. Their rules:

* `impl`: NumPy's LAPACK (`np.linalg.solve/det/slogdet/inv`); where NumPy refuses a singular
  matrix, `solve` is redone by `_lu_solve_numpy` (inf/nan, as IEEE division gives) and
  `cofactors` by the compiled helper (exact at rank n - 1).
* `jvp`: x = a^-1 b gives dx = a^-1 (db - da x); d det = <C, da>; d log|det| = tr(a^-1 da);
  dC = tr(a^-1 da) C - a^-T da^T C. All written with these primitives, so they differentiate
  again.
* `vjp`: b_bar = a^-T x_bar, a_bar = -b_bar x^T; a_bar = det_bar C; a_bar = logabsdet_bar a^-T
  (the sign is piecewise constant); and the transpose of dC.
* `batch`: the batch axis goes in front: the primitives take any leading axes.
* `lower` (jit): one call of a precompiled Numba helper (`_lu_helper`, one for all four)
  through a C function pointer, as the convolution kernels do
  (`jit/conv_kernels/calls.py`): the program holds one equation whatever n is, and compiles in
  a fraction of a second; the helper compiles once per dtype and machine (about 5 s CPU), then
  loads from Numba's cache.

The helpers are plain row-oriented loops (each row update vectorises), not blocked: at
n = 128 they run level with NumPy's LAPACK on one core; far larger matrices would want
LAPACK's blocked getrf.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from fnbrrr._prims.common import describe
from fnbrrr._prims.elementwise import convert_element_type, eq, mul, neg, sub
from fnbrrr._prims.linalg import dot_general
from fnbrrr._prims.reductions import reduce_sum
from fnbrrr._prims.shape import broadcast_in_dim, broadcasted_iota, transpose
from fnbrrr.ad_util import Zero, is_zero
from fnbrrr.core import Primitive, ShapedArray, get_aval
from fnbrrr.jit.conv_kernels.calls import Buffer, array_at, c_helper, emit_helper_call
from fnbrrr.jit.conv_kernels.source import Code
from fnbrrr.jit.cost import COST_RULES, Cost
from fnbrrr.jit.lowering import Kernel, literal

solve_p = Primitive("solve")
solve_p.doc = "x with a @ x = b for a (..., n, n), b (..., n, m): LU with partial pivoting"
det_p = Primitive("det")
det_p.doc = "the determinant of a (..., n, n): LU with partial pivoting"
slogdet_p = Primitive("slogdet", multiple_results=True)
slogdet_p.doc = "(sign, log|det|) of a (..., n, n): LU with partial pivoting"
cofactors_p = Primitive("cofactors")
cofactors_p.doc = "the cofactor matrix of a (..., n, n), adj(a)^T: the gradient of det"


# --------------------------------------------------------------------------------------------
# Shape rules
# --------------------------------------------------------------------------------------------


def _check_square(op: str, a: ShapedArray) -> None:
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op} needs float32 or float64 matrices, got {a.str_short()}; "
                        "fnbrrr.numpy.linalg converts integers and float16 first")
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{op}: needs square matrices (..., n, n), got {a.str_short()}")


def _solve_abstract_eval(a: ShapedArray, b: ShapedArray) -> ShapedArray:
    _check_square("solve", a)
    if b.dtype != a.dtype or b.ndim != a.ndim or b.shape[:-1] != a.shape[:-1]:
        raise TypeError(
            f"solve: b must be (..., n, m) with a's dtype and leading axes (..., n), got "
            f"{describe(a, b)}; fnbrrr.numpy.linalg.solve broadcasts and promotes first"
        )
    return ShapedArray(b.shape, b.dtype, a.weak_type and b.weak_type)


def _det_abstract_eval(a: ShapedArray) -> ShapedArray:
    _check_square("det", a)
    return ShapedArray(a.shape[:-2], a.dtype, a.weak_type)


def _slogdet_abstract_eval(a: ShapedArray) -> list[ShapedArray]:
    _check_square("slogdet", a)
    return [ShapedArray(a.shape[:-2], a.dtype, a.weak_type)] * 2


def _cofactors_abstract_eval(a: ShapedArray) -> ShapedArray:
    _check_square("cofactors", a)
    return a


# --------------------------------------------------------------------------------------------
# Eager evaluation
# --------------------------------------------------------------------------------------------


def _lu_solve_numpy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a^-1 b by LU with partial pivoting, vectorised over the leading axes; a zero pivot
    divides by zero (inf/nan) instead of raising as `np.linalg.solve` does."""
    n = a.shape[-1]
    m = np.concatenate([a, b], axis=-1).reshape(-1, n, n + b.shape[-1])
    at = np.arange(len(m))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for k in range(n):
            p = k + np.argmax(np.abs(m[:, k:, k]), axis=-1)
            m[at, k], m[at, p] = m[at, p], m[at, k].copy()
            factors = m[:, k + 1:, k:k + 1] / m[:, k:k + 1, k:k + 1]
            m[:, k + 1:] -= factors * m[:, k:k + 1]
        for k in range(n - 1, -1, -1):
            m[:, k, n:] /= m[:, k, k:k + 1]
            m[:, :k, n:] -= m[:, :k, k:k + 1] * m[:, k:k + 1, n:]
    return m[:, :, n:].reshape(b.shape)


def _solve_impl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.shape[-1] == 0 or b.shape[-1] == 0:
        return np.zeros(b.shape, b.dtype)
    try:
        return np.linalg.solve(a, b).astype(b.dtype, copy=False)
    except np.linalg.LinAlgError:  # singular: IEEE results, as the compiled kernel gives
        return _lu_solve_numpy(a, b)


def _det_impl(a: np.ndarray) -> np.ndarray:
    return np.asarray(np.linalg.det(a), a.dtype)


def _slogdet_impl(a: np.ndarray) -> list[np.ndarray]:
    sign, logabsdet = np.linalg.slogdet(a)
    return [np.asarray(sign, a.dtype), np.asarray(logabsdet, a.dtype)]


def _cofactors_impl(a: np.ndarray) -> np.ndarray:
    if a.shape[-1] == 0:
        return np.zeros(a.shape, a.dtype)
    try:
        inverse = np.linalg.inv(a)
        return (np.linalg.det(a)[..., None, None] * np.swapaxes(inverse, -1, -2)).astype(a.dtype)
    except np.linalg.LinAlgError:  # a singular matrix: the compiled helper's exact path
        return _run_helper_eagerly(a, _COFACTORS)


def _run_helper_eagerly(a: np.ndarray, mode: int) -> np.ndarray:
    """`_lu_helper` called from Python on NumPy arrays (compiled on first use)."""
    n = a.shape[-1]
    flat = np.ascontiguousarray(a).reshape(-1)
    out = np.empty(a.shape, a.dtype)
    scratch = np.empty(_scratch_size(n), a.dtype)
    _lu_helper(flat, flat, out.reshape(-1), out.reshape(-1), scratch, mode, a.dtype.type(0),
               flat.size // (n * n), n, n)
    return out


# --------------------------------------------------------------------------------------------
# Derivatives
# --------------------------------------------------------------------------------------------


def _batch_axes(ndim: int) -> tuple[int, ...]:
    return tuple(range(ndim - 2))


def _matmul(x, y):
    """x @ y over matching leading axes: (..., n, k) @ (..., k, m)."""
    nd = get_aval(x).ndim
    return dot_general(x, y, (((nd - 1,), (nd - 2,)), (_batch_axes(nd), _batch_axes(nd))))


def _matmul_transposed(x, y):
    """x @ y^T over matching leading axes: (..., n, k) @ (..., m, k)^T."""
    nd = get_aval(x).ndim
    return dot_general(x, y, (((nd - 1,), (nd - 1,)), (_batch_axes(nd), _batch_axes(nd))))


def _matrix_transpose(x):
    nd = get_aval(x).ndim
    return transpose(x, (*_batch_axes(nd), nd - 1, nd - 2))


def _identity_like(a):
    """The identity matrix broadcast to a's shape (..., n, n), in a's dtype."""
    aval = get_aval(a)
    rows = broadcasted_iota(np.int32, aval.shape, aval.ndim - 2)
    cols = broadcasted_iota(np.int32, aval.shape, aval.ndim - 1)
    return convert_element_type(eq(rows, cols), aval.dtype)


def _inverse_transposed(a):
    """a^-T (..., n, n), as one `solve` of a^T against the identity."""
    return solve_p.bind(_matrix_transpose(a), _identity_like(a))


def _trace_of_solve(a, a_dot):
    """tr(a^-1 a_dot) per matrix: the derivative of log|det a| along a_dot."""
    nd = get_aval(a).ndim
    return reduce_sum(mul(solve_p.bind(a, a_dot), _identity_like(a)), (nd - 2, nd - 1))


def _scale_matrices(scale, matrices):
    """scale (...) times each matrix of (..., n, n)."""
    aval = get_aval(matrices)
    spread = broadcast_in_dim(scale, aval.shape, _batch_axes(aval.ndim))
    return mul(spread, matrices)


def _solve_jvp(primals, tangents):
    a, b = primals
    a_dot, b_dot = tangents
    x = solve_p.bind(a, b)
    rhs = None if is_zero(b_dot) else b_dot
    if not is_zero(a_dot):
        moved = _matmul(a_dot, x)
        rhs = neg(moved) if rhs is None else sub(rhs, moved)
    return x, Zero.like(x) if rhs is None else solve_p.bind(a, rhs)


def _solve_vjp(ct, x, a, b):
    ct_b = solve_p.bind(_matrix_transpose(a), ct)
    return [neg(_matmul_transposed(ct_b, x)), ct_b]


def _sum_matrices(x):
    nd = get_aval(x).ndim
    return reduce_sum(x, (nd - 2, nd - 1))


def _det_jvp(primals, tangents):
    (a,), (a_dot,) = primals, tangents
    d = det_p.bind(a)
    if is_zero(a_dot):
        return d, Zero.like(d)
    return d, _sum_matrices(mul(cofactors_p.bind(a), a_dot))


def _det_vjp(ct, d, a):
    return [_scale_matrices(ct, cofactors_p.bind(a))]


def _cofactors_jvp(primals, tangents):
    """C = det(a) a^-T, so dC = tr(a^-1 da) C - a^-T da^T C (where a is invertible)."""
    (a,), (a_dot,) = primals, tangents
    c = cofactors_p.bind(a)
    if is_zero(a_dot):
        return c, Zero.like(c)
    scaled = _scale_matrices(_trace_of_solve(a, a_dot), c)
    return c, sub(scaled, solve_p.bind(_matrix_transpose(a), _matmul(_matrix_transpose(a_dot),
                                                                      c)))


def _cofactors_vjp(ct, c, a):
    """The transpose of `_cofactors_jvp`: <ct, C> a^-T - (a^-1 ct C^T)^T."""
    first = _scale_matrices(_sum_matrices(mul(ct, c)), _inverse_transposed(a))
    return [sub(first, _matrix_transpose(solve_p.bind(a, _matmul_transposed(ct, c))))]


def _slogdet_jvp(primals, tangents):
    (a,), (a_dot,) = primals, tangents
    sign, logabsdet = slogdet_p.bind(a)
    if is_zero(a_dot):
        return [sign, logabsdet], [Zero.like(sign), Zero.like(logabsdet)]
    return [sign, logabsdet], [Zero.like(sign), _trace_of_solve(a, a_dot)]


def _slogdet_vjp(cts, ans, a):
    ct_logabsdet = cts[1]
    if is_zero(ct_logabsdet):
        return [None]
    return [_scale_matrices(ct_logabsdet, _inverse_transposed(a))]


# --------------------------------------------------------------------------------------------
# Batching: the primitives take any leading axes, so the batch axis goes in front
# --------------------------------------------------------------------------------------------


def _solve_batch(vals, dims):
    from fnbrrr.batching import batch_size, bdim_at_front

    size = batch_size(vals, dims)
    a, b = (bdim_at_front(v, d, size) for v, d in zip(vals, dims))
    return solve_p.bind(a, b), 0


def _det_batch(vals, dims):
    from fnbrrr.batching import moveaxis

    return det_p.bind(moveaxis(vals[0], dims[0], 0)), 0


def _slogdet_batch(vals, dims):
    from fnbrrr.batching import moveaxis

    return slogdet_p.bind(moveaxis(vals[0], dims[0], 0)), [0, 0]


def _cofactors_batch(vals, dims):
    from fnbrrr.batching import moveaxis

    return cofactors_p.bind(moveaxis(vals[0], dims[0], 0)), 0


solve_p.impl = _solve_impl
solve_p.abstract_eval = _solve_abstract_eval
solve_p.jvp = _solve_jvp
solve_p.vjp = _solve_vjp
solve_p.batch = _solve_batch

det_p.impl = _det_impl
det_p.abstract_eval = _det_abstract_eval
det_p.jvp = _det_jvp
det_p.vjp = _det_vjp
det_p.batch = _det_batch

slogdet_p.impl = _slogdet_impl
slogdet_p.abstract_eval = _slogdet_abstract_eval
slogdet_p.jvp = _slogdet_jvp
slogdet_p.vjp = _slogdet_vjp
slogdet_p.batch = _slogdet_batch

cofactors_p.impl = _cofactors_impl
cofactors_p.abstract_eval = _cofactors_abstract_eval
cofactors_p.jvp = _cofactors_jvp
cofactors_p.vjp = _cofactors_vjp
cofactors_p.batch = _cofactors_batch


# --------------------------------------------------------------------------------------------
# The lax-level functions
# --------------------------------------------------------------------------------------------


def solve(a, b):
    """x with a @ x = b, for a (..., n, n) and b (..., n, m) of one float dtype and the same
    leading axes (no broadcasting; `fnbrrr.numpy.linalg.solve` broadcasts and promotes).

    Args:
      a: square matrices (..., n, n).
      b: right-hand sides (..., n, m).

    Returns:
      x (..., n, m); inf/nan where a matrix is singular.

    Example:
        >>> solve(jnp.array([[2.0, 0.0], [0.0, 4.0]]), jnp.ones((2, 1)))[:, 0]
        Array([0.5 , 0.25], dtype=float32)
    """
    return solve_p.bind(a, b)


def det(a):
    """The determinant of each matrix of a (..., n, n) (float dtype).

    Example:
        >>> det(jnp.array([[2.0, 1.0], [1.0, 3.0]]))
        Array(5., dtype=float32)
    """
    return det_p.bind(a)


def slogdet(a) -> tuple:
    """(sign, log|det|) of each matrix of a (..., n, n) (float dtype); (0, -inf) if singular.

    Example:
        >>> slogdet(jnp.array([[0.0, 2.0], [3.0, 0.0]]))[0]
        Array(-1., dtype=float32)
    """
    sign, logabsdet = slogdet_p.bind(a)
    return sign, logabsdet


# --------------------------------------------------------------------------------------------
# jit: precompiled helpers, called through C function pointers
# --------------------------------------------------------------------------------------------

_HELPER_OPTIONS = dict(cache=True, error_model="numpy")


# The loops below index row slices from 0: an index Numba cannot prove non-negative (`x[at + j]`,
# or `j` in `range(k, n)`) is checked for wraparound, and then the loop does not vectorise
# (13x slower at n = 128). Row updates stay inline for the same reason: as calls of a helper
# function they took 5x longer.


@numba.njit(**_HELPER_OPTIONS)
def _swap_rows(x, row, other, width):
    first, second = x[row:row + width], x[other:other + width]
    for j in range(width):
        first[j], second[j] = second[j], first[j]


@numba.njit(**_HELPER_OPTIONS)
def _factorise(lu, n, rhs, m, skip_zero_pivots):
    """LU of the n x n row-major `lu` in place (unit L below the diagonal, U on and above),
    with partial pivoting; the row operations are applied to the n x m row-major `rhs` too.
    A zero pivot is skipped when `skip_zero_pivots` (its column is zero below it, so there is
    nothing to eliminate), else it divides by zero. Returns the number of row swaps."""
    swaps = 0
    for k in range(n):
        p, best = k, abs(lu[k * n + k])
        for i in range(k + 1, n):
            if abs(lu[i * n + k]) > best:
                p, best = i, abs(lu[i * n + k])
        if p != k:
            swaps += 1
            _swap_rows(lu, k * n, p * n, n)
            _swap_rows(rhs, k * m, p * m, m)
        pivot = lu[k * n + k]
        if pivot == 0 and skip_zero_pivots:
            continue
        width = n - k - 1
        top, top_rhs = lu[k * n + k + 1:(k + 1) * n], rhs[k * m:(k + 1) * m]
        for i in range(k + 1, n):
            factor = lu[i * n + k] / pivot
            lu[i * n + k] = factor
            row, row_rhs = lu[i * n + k + 1:(i + 1) * n], rhs[i * m:(i + 1) * m]
            for j in range(width):
                row[j] -= factor * top[j]
            for j in range(m):
                row_rhs[j] -= factor * top_rhs[j]
    return swaps


@numba.njit(**_HELPER_OPTIONS)
def _back_substitute(lu, n, rhs, m):
    """rhs = U^-1 rhs, for the upper triangle U of the n x n row-major `lu`."""
    for k in range(n - 1, -1, -1):
        pivot = lu[k * n + k]
        row_k = rhs[k * m:(k + 1) * m]
        for j in range(m):
            row_k[j] /= pivot
        for i in range(k):
            factor = lu[i * n + k]
            row_i = rhs[i * m:(i + 1) * m]
            for j in range(m):
                row_i[j] -= factor * row_k[j]


@numba.njit(**_HELPER_OPTIONS)
def _copy(source, start, target, size):
    """target[:size] = source[start:start + size], as a loop: Numba compiles a slice
    assignment as a broadcasting function of its own (~0.4 s of compile each)."""
    part = source[start:start + size]
    for j in range(size):
        target[j] = part[j]


_SOLVE, _DET, _SLOGDET, _COFACTORS = 0, 1, 2, 3  # what `_lu_helper` computes


def _scratch_size(n: int) -> int:
    """`_lu_helper`'s scratch: the n x n factors and three vectors (for `_cofactors`)."""
    return max(n * n + 3 * n, 1)


@numba.njit(**_HELPER_OPTIONS)
def _determinant(lu, n, swaps, zero):
    """det from the factors: the product of U's diagonal, negated after an odd number of row
    swaps."""
    det = zero - 1 if swaps % 2 else zero + 1
    for i in range(n):
        det *= lu[i * n + i]
    return det


@numba.njit(**_HELPER_OPTIONS)
def _log_determinant(lu, n, swaps, zero):
    """(sign, log|det|) from the factors; (0, -inf) when a pivot is 0."""
    sign, total = (zero - 1 if swaps % 2 else zero + 1), zero
    for i in range(n):
        pivot = lu[i * n + i]
        sign *= np.sign(pivot)
        total += np.log(abs(pivot))
    return sign, total


@numba.njit(**_HELPER_OPTIONS)
def _cofactors(a, out, scratch, zero, n):
    """The cofactor matrix C = adj(a)^T of one n x n matrix into `out`, exact at singular
    matrices of rank n - 1 too (where det(a) a^-T is 0 * inf).

    With P a = L U and M = L^-1 P (the row operations applied to the identity):
    no zero pivot: C = det(a) a^-T, with a^-1 = U^-1 M.
    One zero pivot, at j: adj(U) = c x y^T, where U x = 0 and y^T U = 0 with x_j = y_j = 1 and
    c the product of the other pivots; then adj(a) = det(P) c x (y^T M).
    More zero pivots: C = 0 (as JAX gives; exact where the rank is below n - 1).
    """
    lu, x, y, w = (scratch[:n * n], scratch[n * n:n * n + n], scratch[n * n + n:n * n + 2 * n],
                   scratch[n * n + 2 * n:n * n + 3 * n])
    _copy(a, 0, lu, n * n)
    for i in range(n * n):
        out[i] = zero
    for i in range(n):
        out[i * n + i] = zero + 1
    swaps = _factorise(lu, n, out, n, True)
    zeros, j, others = 0, 0, zero - 1 if swaps % 2 else zero + 1
    for i in range(n):
        if lu[i * n + i] == 0:
            zeros, j = zeros + 1, i
        else:
            others *= lu[i * n + i]
    if zeros > 1:
        for i in range(n * n):
            out[i] = zero
        return
    if zeros == 0:
        _back_substitute(lu, n, out, n)
        for r in range(n):
            for s in range(r, n):
                out[r * n + s], out[s * n + r] = others * out[s * n + r], others * out[r * n + s]
        return
    for i in range(n):
        x[i], y[i], w[i] = zero, zero, zero
    x[j], y[j] = zero + 1, zero + 1
    for i in range(j - 1, -1, -1):  # U[:j, :j] x[:j] = -U[:j, j]
        total = lu[i * n + j]
        for t in range(i + 1, j):
            total += lu[i * n + t] * x[t]
        x[i] = -total / lu[i * n + i]
    for t in range(j + 1, n):  # y^T U[:, t] = 0 for the columns after j
        total = zero
        for i in range(j, t):
            total += y[i] * lu[i * n + t]
        y[t] = -total / lu[t * n + t]
    for i in range(j, n):  # w = y^T M
        row = out[i * n:(i + 1) * n]
        for s in range(n):
            w[s] += y[i] * row[s]
    for r in range(n):
        for s in range(n):
            out[r * n + s] = others * w[r] * x[s]


@numba.njit(**_HELPER_OPTIONS)
def _lu_helper(a, b, first, second, scratch, mode, zero, batch, n, m):
    """For each of the `batch` flat n x n matrices of `a`: `_SOLVE` writes a^-1 b (b: n x m
    each) into `first`; `_DET` the determinant into `first`; `_SLOGDET` the sign into `first`
    and log|det| into `second`; `_COFACTORS` the cofactor matrix into `first`. `scratch` has
    `_scratch_size(n)` elements; `zero` is 0 in the arrays' dtype. One helper for all modes,
    so it compiles once per dtype."""
    lu = scratch[:n * n]
    for k in range(batch):
        if mode == _COFACTORS:
            _cofactors(a[k * n * n:(k + 1) * n * n], first[k * n * n:(k + 1) * n * n], scratch,
                       zero, n)
            continue
        _copy(a, k * n * n, lu, n * n)
        if mode == _SOLVE:
            rhs = first[k * n * m:(k + 1) * n * m]
            _copy(b, k * n * m, rhs, n * m)
            _factorise(lu, n, rhs, m, False)
            _back_substitute(lu, n, rhs, m)
            continue
        swaps = _factorise(lu, n, lu[:0], 0, True)
        if mode == _DET:
            first[k] = _determinant(lu, n, swaps, zero)
        else:
            first[k], second[k] = _log_determinant(lu, n, swaps, zero)


@c_helper("lu", "iiiiiiiiiiiTi")
def _c_lu(a, n_a, b, n_b, first, n_first, second, n_second, lu, n_lu, mode, zero, geo):
    """The C-ABI wrapper of `_lu_helper`; geo = (batch, n, m)."""
    g = array_at(geo, 3, geo)
    _lu_helper(array_at(a, n_a, zero), array_at(b, n_b, zero), array_at(first, n_first, zero),
               array_at(second, n_second, zero), array_at(lu, n_lu, zero), mode, zero,
               g[0], g[1], g[2])


def _emit_lu(mode: int):
    def emit(ctx, eqn, ins, outs):
        a_aval, out_aval = eqn.inputs[0].aval, eqn.outvars[0].aval
        if out_aval.size == 0:
            return ["pass"]
        n = a_aval.shape[-1]
        m = out_aval.shape[-1] if mode == _SOLVE else 0
        batch = math.prod(a_aval.shape[:-2])
        scratch = ctx.emitter.temp(ShapedArray((_scratch_size(n),), a_aval.dtype))
        b = ins[1] if mode == _SOLVE else ins[0]
        second = outs[1] if mode == _SLOGDET else outs[0]
        code = Code()
        emit_helper_call(ctx, code, "lu", a_aval.dtype,
                         [Buffer(ins[0]), Buffer(b), Buffer(outs[0]), Buffer(second),
                          Buffer(scratch), mode, literal(0, a_aval.dtype)], (batch, n, m))
        return code.lines

    return emit


def _cost(ins, outs, params) -> Cost:
    """2/3 n^3 for the factorisation plus 2 n^2 m for m right-hand sides, per matrix (the
    cofactors solve for n)."""
    n = ins[0].shape[-1]
    m = outs[0].shape[-1] if outs[0].ndim == ins[0].ndim else 0
    return Cost(math.prod(ins[0].shape[:-2]) * (2 * n**3 / 3 + 2 * n * n * m))


solve_p.lower = Kernel(_emit_lu(_SOLVE))
det_p.lower = Kernel(_emit_lu(_DET))
slogdet_p.lower = Kernel(_emit_lu(_SLOGDET))
cofactors_p.lower = Kernel(_emit_lu(_COFACTORS))
COST_RULES.update({"solve": _cost, "det": _cost, "slogdet": _cost, "cofactors": _cost})
