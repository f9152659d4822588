"""Elementwise primitives: unary math, binary arithmetic, comparisons, logic, select, casts.

Binary primitives take operands of one dtype and either one shape or a 0-d operand that
broadcasts (`mul a 2.0:f32[]`); fnbrrr.numpy promotes and broadcasts before binding.
Each primitive's rules are declared in one line beside it: derivative (jvp), reverse
(vjp) and batching; `lower` slots are filled by the jit compiler's emitters.
"""

from __future__ import annotations

import builtins
import math

import numpy as np

from fnbrrr._prims.common import all_weak, check_dtype_kind, check_same_dtype, describe
from fnbrrr.ad_util import Zero, defjvp, defjvp_with_ans, defnondiff, defvjp, instantiate
from fnbrrr.core import ArrayImpl, Primitive, ShapedArray, get_aval
from fnbrrr.dtypes import canonicalize

# --------------------------------------------------------------------------------------------
# Shape rules shared by the family
# --------------------------------------------------------------------------------------------

_KIND_NAMES = {"f": "a floating dtype", "fiu": "a numeric dtype", "iub": "an integer or bool dtype",
               "fiub": "any dtype", "fi": "a signed numeric dtype"}


def _unary_abstract_eval(name: str, kinds: str):
    def abstract_eval(x: ShapedArray) -> ShapedArray:
        if x.dtype.kind not in kinds:
            check_dtype_kind(name, x, kinds, _KIND_NAMES.get(kinds, kinds))
        return x

    return abstract_eval


def binary_shape(name: str, x: ShapedArray, y: ShapedArray) -> tuple[int, ...]:
    """Output shape of a binary elementwise op: equal shapes, or one 0-d operand."""
    if x.shape == y.shape or not y.shape:
        return x.shape
    if not x.shape:
        return y.shape
    raise ValueError(
        f"{name} got incompatible shapes {describe(x, y)}: lax-level operands must have equal "
        "shapes or be 0-d; use fnbrrr.numpy functions (which broadcast) or lax.broadcast_in_dim"
    )


def _binary_abstract_eval(name: str, kinds: str, out_dtype=None):
    # The hot path of eager execution: dtypes are interned, so `is` settles the common case.
    def abstract_eval(x: ShapedArray, y: ShapedArray) -> ShapedArray:
        dtype = x.dtype
        if dtype is not y.dtype and dtype != y.dtype:
            check_same_dtype(name, x, y)
        if dtype.kind not in kinds:
            check_dtype_kind(name, x, kinds, _KIND_NAMES.get(kinds, kinds))
        shape = x.shape
        if shape != y.shape:
            shape = binary_shape(name, x, y)
        if out_dtype is not None:
            return ShapedArray(shape, out_dtype, False)
        return ShapedArray(shape, dtype, x.weak_type and y.weak_type)

    return abstract_eval


# Batching: elementwise ops commute with any batch axis; align them, then apply once.
def _elementwise_batch(primitive: Primitive):
    def batch(vals, dims, **params):
        from fnbrrr.batching import moveaxis

        size = next(get_aval(v).shape[d] for v, d in zip(vals, dims) if d is not None)
        logical = [_shape_without(get_aval(v).shape, d) for v, d in zip(vals, dims)]
        out_shape = builtins.max(logical, key=len)
        aligned = []
        for v, d, shape in zip(vals, dims, logical):
            if d is None:
                if shape:  # 0-d operands keep broadcasting; full ones gain the batch axis
                    v = broadcast_in_dim(v, (size, *shape), tuple(range(1, len(shape) + 1)))
            else:
                v = moveaxis(v, d, 0)
                if len(shape) < len(out_shape):  # a batched scalar meets full-rank operands
                    v = broadcast_in_dim(v, (size, *out_shape), (0,))
            aligned.append(v)
        return primitive.bind(*aligned, **params), 0

    return batch


def _shape_without(shape: tuple, axis) -> tuple:
    return shape if axis is None else shape[:axis] + shape[axis + 1:]


def unary(name: str, impl, kinds: str = "f") -> Primitive:
    """Declare an elementwise unary primitive with its NumPy impl and dtype kinds."""
    p = Primitive(name)
    p.impl = impl
    p.abstract_eval = _unary_abstract_eval(name, kinds)
    p.batch = _elementwise_batch(p)
    p.eager = _eager_unary(impl, kinds)
    return p


def binary(name: str, impl, kinds: str = "fiu", out_dtype=None) -> Primitive:
    """Declare an elementwise binary primitive."""
    p = Primitive(name)
    p.impl = impl
    p.abstract_eval = _binary_abstract_eval(name, kinds, out_dtype)
    p.batch = _elementwise_batch(p)
    if out_dtype is None:
        p.eager = _eager_binary(impl, kinds)
    return p


# Eager shortcuts: the shape rule inlined for the common case (Arrays of a valid dtype; for
# binary ops equal shapes and dtypes). Anything else returns None and takes the general path,
# where abstract_eval raises the proper errors. These save about a microsecond per operation.


def _eager_unary(impl, kinds: str):
    def eager(x):
        if type(x) is not ArrayImpl:
            return None
        aval = x._aval or x.aval
        if aval.dtype.kind not in kinds:
            return None
        out = impl(x._value)
        if type(out) is not np.ndarray or out.dtype is not aval.dtype:
            return None if type(out) is np.ndarray else ArrayImpl(np.asarray(out, aval.dtype),
                                                                   aval.weak_type, aval)
        return ArrayImpl(out, aval.weak_type, aval)

    return eager


def _eager_binary(impl, kinds: str):
    def eager(x, y):
        if type(x) is not ArrayImpl or type(y) is not ArrayImpl:
            return None
        xa, ya = x._aval or x.aval, y._aval or y.aval
        if xa.dtype is not ya.dtype or xa.shape != ya.shape or xa.dtype.kind not in kinds:
            return None
        out = impl(x._value, y._value)
        if type(out) is not np.ndarray or out.dtype is not xa.dtype:
            return None
        aval = xa if xa.weak_type == ya.weak_type or not xa.weak_type else ya
        return ArrayImpl(out, aval.weak_type, aval)

    return eager


# --------------------------------------------------------------------------------------------
# NumPy implementations that NumPy lacks or spells differently
# --------------------------------------------------------------------------------------------


def _logistic(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


_erf_scalar = np.frompyfunc(math.erf, 1, 1)


def _erf(x):
    return np.asarray(_erf_scalar(x), dtype=np.float64).astype(x.dtype)


def _int_div(x, y):
    if x.dtype.kind == "f":
        return np.true_divide(x, y)
    safe = np.where(y == 0, 1, y)
    q = np.abs(x) // np.abs(safe)
    q = np.where((x < 0) != (safe < 0), -q, q).astype(x.dtype)
    return np.where(y == 0, 0, q).astype(x.dtype) if np.any(y == 0) else q


def _rem(x, y):
    if x.dtype.kind == "f":
        return np.fmod(x, y)
    safe = np.where(y == 0, 1, y)
    return np.where(y == 0, 0, np.fmod(x, safe)).astype(x.dtype)


def _round_half_even(x):
    return np.round(x)


def _integer_pow_impl(x, *, y):
    if y == 0:
        return np.ones_like(x)
    if y < 0:
        return np.asarray(1, x.dtype) / _integer_pow_impl(x, y=-y)
    acc = None
    base = x
    while y:
        if y & 1:
            acc = base if acc is None else acc * base
        y >>= 1
        if y:
            base = base * base
    return acc


# --------------------------------------------------------------------------------------------
# The primitives. Rules read like the math: d sin = cos(x) * g.
# --------------------------------------------------------------------------------------------

neg_p = unary("neg", np.negative, "fi")
exp_p = unary("exp", np.exp)
log_p = unary("log", np.log)
log1p_p = unary("log1p", np.log1p)
expm1_p = unary("expm1", np.expm1)
sin_p = unary("sin", np.sin)
cos_p = unary("cos", np.cos)
tan_p = unary("tan", np.tan)
tanh_p = unary("tanh", np.tanh)
sqrt_p = unary("sqrt", np.sqrt)
rsqrt_p = unary("rsqrt", lambda x: 1 / np.sqrt(x))
logistic_p = unary("logistic", _logistic)
erf_p = unary("erf", _erf)
square_p = unary("square", np.square, "fiu")
abs_p = unary("abs", np.abs, "fi")
sign_p = unary("sign", np.sign, "fi")
floor_p = unary("floor", np.floor)
ceil_p = unary("ceil", np.ceil)
round_p = unary("round", _round_half_even)
is_finite_p = unary("is_finite", np.isfinite)
is_finite_p.abstract_eval = lambda x: (
    check_dtype_kind("is_finite", x, "f", "a floating dtype") or x.update(dtype=np.dtype(bool),
                                                                          weak_type=False)
)
not_p = unary("not", lambda x: np.logical_not(x) if x.dtype == bool else np.invert(x), "iub")

integer_pow_p = Primitive("integer_pow")
integer_pow_p.impl = _integer_pow_impl


def _integer_pow_abstract_eval(x: ShapedArray, *, y: int) -> ShapedArray:
    check_dtype_kind("integer_pow", x, "fiu", "a numeric dtype")
    if y < 0 and x.dtype.kind != "f":
        raise ValueError(f"integer_pow: negative exponent {y} for integer operand {describe(x)}")
    return x


integer_pow_p.abstract_eval = _integer_pow_abstract_eval

add_p = binary("add", np.add)
sub_p = binary("sub", np.subtract)
mul_p = binary("mul", np.multiply)
div_p = binary("div", _int_div)
rem_p = binary("rem", _rem)
pow_p = binary("pow", np.power, "f")
max_p = binary("max", np.maximum, "fiub")
min_p = binary("min", np.minimum, "fiub")
atan2_p = binary("atan2", np.arctan2, "f")
and_p = binary("and", np.bitwise_and, "iub")
or_p = binary("or", np.bitwise_or, "iub")
xor_p = binary("xor", np.bitwise_xor, "iub")

_BOOL = np.dtype(bool)
eq_p = binary("eq", np.equal, "fiub", _BOOL)
ne_p = binary("ne", np.not_equal, "fiub", _BOOL)
lt_p = binary("lt", np.less, "fiub", _BOOL)
le_p = binary("le", np.less_equal, "fiub", _BOOL)
gt_p = binary("gt", np.greater, "fiub", _BOOL)
ge_p = binary("ge", np.greater_equal, "fiub", _BOOL)


# --- select_n: which ? cases[1] : cases[0] ------------------------------------------------------

select_n_p = Primitive("select_n")


def _select_n_impl(which, *cases):
    if len(cases) == 2:
        return np.where(which, cases[1], cases[0])
    return np.choose(np.clip(which, 0, len(cases) - 1), cases)


def _select_n_abstract_eval(which: ShapedArray, *cases: ShapedArray) -> ShapedArray:
    if not cases:
        raise ValueError("select_n needs at least one case")
    dtype = check_same_dtype("select_n", *cases)
    if any(c.shape != cases[0].shape for c in cases):
        raise ValueError(f"select_n cases must have equal shapes, got {describe(*cases)}")
    if which.dtype == _BOOL:
        if len(cases) > 2:
            raise ValueError(f"select_n with a bool selector takes 2 cases, got {len(cases)}")
    elif which.dtype.kind not in "iu":
        raise TypeError(f"select_n selector must be bool or int32, got {describe(which)}")
    if which.shape and which.shape != cases[0].shape:
        raise ValueError(
            f"select_n selector must be 0-d or match the cases' shape, got {describe(which)} "
            f"for cases {describe(cases[0])}"
        )
    return ShapedArray(cases[0].shape, dtype, all_weak(*cases))


select_n_p.impl = _select_n_impl
select_n_p.abstract_eval = _select_n_abstract_eval


# --- convert_element_type ------------------------------------------------------------------------

convert_element_type_p = Primitive("convert_element_type")


def _convert_impl(x, *, new_dtype, weak_type):
    return x.astype(new_dtype)


def _convert_abstract_eval(x: ShapedArray, *, new_dtype, weak_type) -> ShapedArray:
    return ShapedArray(x.shape, np.dtype(new_dtype), bool(weak_type))


convert_element_type_p.impl = _convert_impl
convert_element_type_p.abstract_eval = _convert_abstract_eval


# Batching: elementwise ops commute with any batch axis (see _elementwise_batch).
for _p in (integer_pow_p, convert_element_type_p):
    _p.batch = _elementwise_batch(_p)


def _select_n_batch(vals, dims):
    """Cases must keep equal shapes: every case gets the batch axis in front."""
    from fnbrrr.batching import bdim_at_front, moveaxis

    size = next(get_aval(v).shape[d] for v, d in zip(vals, dims) if d is not None)
    which, *cases = vals
    which_dim, *case_dims = dims
    cases = [bdim_at_front(c, d, size) for c, d in zip(cases, case_dims)]
    shape = get_aval(cases[0]).shape
    if which_dim is not None:
        which = moveaxis(which, which_dim, 0)
        if get_aval(which).ndim == 1 and len(shape) > 1:  # a batched scalar selector
            which = broadcast_in_dim(which, shape, (0,))
    elif get_aval(which).shape:
        which = broadcast_in_dim(which, shape, tuple(range(1, len(shape))))
    return select_n(which, *cases), 0


select_n_p.batch = _select_n_batch


# --------------------------------------------------------------------------------------------
# Derivatives
# --------------------------------------------------------------------------------------------


def _unbroadcast(ct, aval: ShapedArray):
    """The cotangent of an operand that was 0-d against a full-shaped one: sum it."""
    if get_aval(ct).shape == aval.shape:
        return ct
    from fnbrrr._prims.reductions import reduce_sum

    return reduce_sum(ct, tuple(range(get_aval(ct).ndim)))


def _bcast_tangent(t, x, y):
    """A tangent of a 0-d operand must take the output's shape."""
    shape = binary_shape("", get_aval(x), get_aval(y))
    if get_aval(t).shape != shape:
        return broadcast_in_dim(t, shape, ())
    return t


def _ct_for(ct, x):
    return _unbroadcast(ct, get_aval(x))


# Unary: d f(x) = f'(x) g
defjvp(neg_p, lambda g, x: neg(g))
defjvp_with_ans(exp_p, lambda g, ans, x: mul(g, ans))
defjvp(log_p, lambda g, x: div(g, x))
defjvp(log1p_p, lambda g, x: div(g, add(_one(x), x)))
defjvp_with_ans(expm1_p, lambda g, ans, x: mul(g, add(ans, _one(x))))
defjvp(sin_p, lambda g, x: mul(g, cos(x)))
defjvp(cos_p, lambda g, x: neg(mul(g, sin(x))))
defjvp_with_ans(tan_p, lambda g, ans, x: mul(g, add(_one(x), mul(ans, ans))))
defjvp_with_ans(tanh_p, lambda g, ans, x: mul(g, sub(_one(x), mul(ans, ans))))
defjvp_with_ans(sqrt_p, lambda g, ans, x: div(g, mul(_const(x, 2), ans)))
defjvp_with_ans(rsqrt_p, lambda g, ans, x: mul(g, mul(_const(x, -0.5), div(ans, x))))
defjvp_with_ans(logistic_p, lambda g, ans, x: mul(g, mul(ans, sub(_one(x), ans))))
defjvp(erf_p, lambda g, x: mul(g, mul(_const(x, 2 / math.sqrt(math.pi)), exp(neg(mul(x, x))))))
defjvp(square_p, lambda g, x: mul(g, mul(_const(x, 2), x)))
defjvp(abs_p, lambda g, x: mul(g, _abs_derivative(x)))
defjvp(integer_pow_p, lambda g, x, *, y: mul(g, _integer_pow_derivative(x, y)))
defjvp(convert_element_type_p, lambda g, x, *, new_dtype, weak_type: _convert_tangent(
    g, new_dtype, weak_type))
for _p in (sign_p, floor_p, ceil_p, round_p):
    defjvp(_p, None)

# Binary: d f(x, y) = f_x g_x + f_y g_y
defjvp(add_p, lambda g, x, y: _bcast_tangent(g, x, y), lambda g, x, y: _bcast_tangent(g, x, y))
defjvp(sub_p, lambda g, x, y: _bcast_tangent(g, x, y),
       lambda g, x, y: neg(_bcast_tangent(g, x, y)))
defjvp(mul_p, lambda g, x, y: mul(g, y), lambda g, x, y: mul(x, g))
defjvp(div_p, lambda g, x, y: div(g, y), lambda g, x, y: mul(g, div(neg(x), mul(y, y))))
defjvp(rem_p, lambda g, x, y: _bcast_tangent(g, x, y),
       lambda g, x, y: mul(g, neg(round_toward_zero(div(x, y)))))
defjvp_with_ans(pow_p, lambda g, ans, x, y: mul(g, _pow_dx(x, y)),
                lambda g, ans, x, y: mul(g, _pow_dy(ans, x)))
defjvp(max_p, lambda g, x, y: mul(g, _balanced_eq(x, y, gt)),
       lambda g, x, y: mul(g, _balanced_eq(y, x, gt)))
defjvp(min_p, lambda g, x, y: mul(g, _balanced_eq(x, y, lt)),
       lambda g, x, y: mul(g, _balanced_eq(y, x, lt)))
defjvp(atan2_p, lambda g, x, y: mul(g, div(y, add(mul(x, x), mul(y, y)))),
       lambda g, x, y: mul(g, div(neg(x), add(mul(x, x), mul(y, y)))))

for _p in (is_finite_p, not_p, and_p, or_p, xor_p, eq_p, ne_p, lt_p, le_p, gt_p, ge_p):
    defnondiff(_p)


def _select_n_jvp(primals, tangents):
    which, *cases = primals
    ans = select_n(which, *cases)
    if all(type(t) is Zero for t in tangents[1:]):
        return ans, Zero.like(ans)
    tangent_cases = [instantiate(t, c) for t, c in zip(tangents[1:], cases)]
    return ans, select_n(which, *tangent_cases)


select_n_p.jvp = _select_n_jvp


def _convert_tangent(g, new_dtype, weak_type):
    if np.dtype(new_dtype).kind != "f":
        return Zero(get_aval(g).update(dtype=np.dtype(new_dtype)))
    return convert_element_type(g, new_dtype, weak_type)


# VJPs: the transpose of each linear tangent map above.
defvjp(neg_p, lambda ct, ans, x: neg(ct))
defvjp(exp_p, lambda ct, ans, x: mul(ct, ans))
defvjp(log_p, lambda ct, ans, x: div(ct, x))
defvjp(log1p_p, lambda ct, ans, x: div(ct, add(_one(x), x)))
defvjp(expm1_p, lambda ct, ans, x: mul(ct, add(ans, _one(x))))
defvjp(sin_p, lambda ct, ans, x: mul(ct, cos(x)))
defvjp(cos_p, lambda ct, ans, x: neg(mul(ct, sin(x))))
defvjp(tan_p, lambda ct, ans, x: mul(ct, add(_one(x), mul(ans, ans))))
defvjp(tanh_p, lambda ct, ans, x: mul(ct, sub(_one(x), mul(ans, ans))))
defvjp(sqrt_p, lambda ct, ans, x: div(ct, mul(_const(x, 2), ans)))
defvjp(rsqrt_p, lambda ct, ans, x: mul(ct, mul(_const(x, -0.5), div(ans, x))))
defvjp(logistic_p, lambda ct, ans, x: mul(ct, mul(ans, sub(_one(x), ans))))
defvjp(erf_p, lambda ct, ans, x: mul(ct, mul(_const(x, 2 / math.sqrt(math.pi)),
                                             exp(neg(mul(x, x))))))
defvjp(square_p, lambda ct, ans, x: mul(ct, mul(_const(x, 2), x)))
defvjp(abs_p, lambda ct, ans, x: mul(ct, _abs_derivative(x)))
defvjp(integer_pow_p, lambda ct, ans, x, *, y: mul(ct, _integer_pow_derivative(x, y)))
defvjp(convert_element_type_p, lambda ct, ans, x, *, new_dtype, weak_type: (
    convert_element_type(ct, get_aval(x).dtype, get_aval(x).weak_type)
    if get_aval(x).dtype.kind == "f" else None))
for _p in (sign_p, floor_p, ceil_p, round_p):
    defvjp(_p, None)

defvjp(add_p, lambda ct, ans, x, y: _ct_for(ct, x), lambda ct, ans, x, y: _ct_for(ct, y))
defvjp(sub_p, lambda ct, ans, x, y: _ct_for(ct, x), lambda ct, ans, x, y: _ct_for(neg(ct), y))
defvjp(mul_p, lambda ct, ans, x, y: _ct_for(mul(ct, y), x),
       lambda ct, ans, x, y: _ct_for(mul(x, ct), y))
defvjp(div_p, lambda ct, ans, x, y: _ct_for(div(ct, y), x),
       lambda ct, ans, x, y: _ct_for(mul(ct, div(neg(x), mul(y, y))), y))
defvjp(rem_p, lambda ct, ans, x, y: _ct_for(ct, x),
       lambda ct, ans, x, y: _ct_for(mul(ct, neg(round_toward_zero(div(x, y)))), y))
defvjp(pow_p, lambda ct, ans, x, y: _ct_for(mul(ct, _pow_dx(x, y)), x),
       lambda ct, ans, x, y: _ct_for(mul(ct, _pow_dy(ans, x)), y))
defvjp(max_p, lambda ct, ans, x, y: _ct_for(mul(ct, _balanced_eq(x, y, gt)), x),
       lambda ct, ans, x, y: _ct_for(mul(ct, _balanced_eq(y, x, gt)), y))
defvjp(min_p, lambda ct, ans, x, y: _ct_for(mul(ct, _balanced_eq(x, y, lt)), x),
       lambda ct, ans, x, y: _ct_for(mul(ct, _balanced_eq(y, x, lt)), y))
defvjp(atan2_p, lambda ct, ans, x, y: _ct_for(mul(ct, div(y, add(mul(x, x), mul(y, y)))), x),
       lambda ct, ans, x, y: _ct_for(mul(ct, div(neg(x), add(mul(x, x), mul(y, y)))), y))


def _select_n_vjp(ct, ans, which, *cases):
    zeros = _zeros_like(ct)
    return [None] + [select_n(which, *[ct if j == i else zeros for j in range(len(cases))])
                     for i in range(len(cases))]


select_n_p.vjp = _select_n_vjp


# --- pieces of the rules ---------------------------------------------------------------------


def _const(x, value):
    """A 0-d constant of x's dtype (it broadcasts against x in every binary primitive)."""
    return full((), value, get_aval(x).dtype)


def _one(x):
    return _const(x, 1)


def _zeros_like(x):
    aval = get_aval(x)
    return full(aval.shape, 0, aval.dtype)


def _balanced_eq(x, y, strictly_better):
    """1 where x wins, 0.5 on ties, 0 where y wins: JAX's convention for max/min gradients."""
    shape = binary_shape("", get_aval(x), get_aval(y))
    dtype = get_aval(x).dtype
    one, half, zero = full(shape, 1, dtype), full(shape, 0.5, dtype), full(shape, 0, dtype)
    wins = select_n(strictly_better(x, y), zero, one)
    ties = select_n(eq(x, y), zero, half)
    return add(wins, ties)


def _pow_dx(x, y):
    # d/dx x^y = y x^(y-1); written as y * x^y / x would divide by zero at x = 0.
    return mul(y, pow(x, sub(y, _one(y))))


def _pow_dy(ans, x):
    # d/dy x^y = log(x) x^y, defined as 0 where x == 0 (JAX's convention).
    aval = get_aval(x)
    safe_x = select_n(eq(x, _const(x, 0)), x, full(aval.shape, 1, aval.dtype))
    return mul(ans, log(safe_x))


def _abs_derivative(x):
    # sign(x), but 1 at x == 0: JAX's convention (the derivative of |x| at 0 from the right).
    aval = get_aval(x)
    return select_n(ge(x, _const(x, 0)), full(aval.shape, -1, aval.dtype),
                    full(aval.shape, 1, aval.dtype))


def _integer_pow_derivative(x, y):
    if y == 0:
        return _zeros_like(x)
    if y == 1:
        return full(get_aval(x).shape, 1, get_aval(x).dtype)
    return mul(_const(x, y), integer_pow(x, y - 1))


def round_toward_zero(x):
    """trunc(x) from primitives: floor for x >= 0, ceil otherwise."""
    return select_n(lt(x, _const(x, 0)), floor(x), ceil(x))


# --------------------------------------------------------------------------------------------
# The lax-level functions (one per primitive)
# --------------------------------------------------------------------------------------------


def _unary_fn(p):
    return lambda x: p.bind(x)


def _binary_fn(p):
    return lambda x, y: p.bind(x, y)


neg, exp, log, log1p, expm1 = map(_unary_fn, (neg_p, exp_p, log_p, log1p_p, expm1_p))
sin, cos, tan, tanh, sqrt, rsqrt = map(_unary_fn, (sin_p, cos_p, tan_p, tanh_p, sqrt_p, rsqrt_p))
logistic, erf, square, abs, sign = map(_unary_fn, (logistic_p, erf_p, square_p, abs_p, sign_p))
floor, ceil, round, is_finite, not_ = map(_unary_fn, (floor_p, ceil_p, round_p, is_finite_p,
                                                       not_p))
add, sub, mul, div, rem, pow, max, min, atan2 = map(
    _binary_fn, (add_p, sub_p, mul_p, div_p, rem_p, pow_p, max_p, min_p, atan2_p))
and_, or_, xor = map(_binary_fn, (and_p, or_p, xor_p))
eq, ne, lt, le, gt, ge = map(_binary_fn, (eq_p, ne_p, lt_p, le_p, gt_p, ge_p))


def integer_pow(x, y: int):
    """x ** y for a static Python int y, as repeated multiplication."""
    return integer_pow_p.bind(x, y=int(y))


def select_n(which, *cases):
    """cases[which] elementwise; a bool `which` picks cases[1] where True, cases[0] where False."""
    return select_n_p.bind(which, *cases)


def convert_element_type(x, new_dtype, weak_type: bool = False):
    """Cast `x` to `new_dtype` (float to int truncates toward zero); no-op when unchanged."""
    new_dtype = canonicalize(new_dtype)
    aval = get_aval(x)
    if aval.dtype == new_dtype and aval.weak_type == weak_type and not isinstance(
            x, (bool, int, float)):
        return x
    return convert_element_type_p.bind(x, new_dtype=new_dtype, weak_type=bool(weak_type))


def full(shape, fill_value, dtype):
    """An array of `shape` filled with `fill_value`, as a broadcast 0-d constant."""
    from fnbrrr import core
    from fnbrrr.core import ArrayImpl, Tracer

    dtype = canonicalize(dtype)
    shape = tuple(int(d) for d in shape)
    if isinstance(fill_value, Tracer):
        value = convert_element_type(fill_value, dtype)
    elif core.current_level() == 0:
        # Eagerly, a real (contiguous) array: a zero-stride broadcast view would be copied by
        # every jitted call that receives it.
        return ArrayImpl(np.full(shape, fill_value, dtype), False)
    else:
        value = ArrayImpl(np.asarray(fill_value, dtype), False)
    return value if not shape else broadcast_in_dim(value, shape, ())


def broadcast_in_dim(x, shape, broadcast_dimensions):
    from fnbrrr._prims.shape import broadcast_in_dim as _bid

    return _bid(x, shape, broadcast_dimensions)
