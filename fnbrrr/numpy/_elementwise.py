"""Elementwise functions (NumPy's ufuncs), written with `fnbrrr.lax` primitives.

Unary math promotes integer and bool inputs to floating point as NumPy does (`sin(int32)` is
float32 here); binary functions promote with JAX's weak-type rules and broadcast NumPy-style
(`_promotion.promote2`). Integer `floor_divide`/`remainder` follow NumPy's sign conventions,
built from `lax.div`/`lax.rem` (C semantics) and `lax.select_n`.
"""

from __future__ import annotations

import math

import numpy as np

from fnbrrr import lax
from fnbrrr.numpy._promotion import (
    BOOL,
    ArrayImpl,
    broadcast_shapes,
    broadcast_to_shape,
    default_int,
    promote,
    promote2,
    scalar_const,
    to_array,
    to_inexact_dtype,
)


def _named(fn, name: str, doc: str):
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    fn.__module__ = "fnbrrr.numpy"
    return fn


def _dtype_of(x) -> np.dtype:
    return x._value.dtype if type(x) is ArrayImpl else x.aval.dtype


def _inexact(name: str, x):
    """`x` as an array, int/bool converted to floating point (weak stays weak)."""
    x = to_array(x, name)
    aval = x.aval
    if aval.dtype.kind != "f":
        x = lax.convert_element_type(
            x, to_inexact_dtype(aval.dtype, aval.weak_type), aval.weak_type
        )
    return x


def _zero(x):
    return scalar_const(0, _dtype_of(x))


def _one(x):
    return scalar_const(1, _dtype_of(x))


def _const_like(x, value):
    return scalar_const(value, _dtype_of(x))


# --------------------------------------------------------------------------------------------
# Unary functions
# --------------------------------------------------------------------------------------------


def _unary_inexact(name: str, lax_fn, doc: str):
    """A unary function on floats; ints and bools are converted to floating point first."""

    def fn(x, /):
        if type(x) is ArrayImpl and x._value.dtype.kind == "f":
            return lax_fn(x)
        return lax_fn(_inexact(name, x))

    return _named(fn, name, doc)


exp = _unary_inexact(
    "exp",
    lax.exp,
    "Elementwise e**x.\n\nExample:\n    >>> jnp.exp(0.0)\n"
    "    Array(1., dtype=float32, weak_type=True)",
)
log = _unary_inexact("log", lax.log, "Elementwise natural logarithm (nan below 0, -inf at 0).")
log1p = _unary_inexact("log1p", lax.log1p, "Elementwise log(1 + x), accurate for small x.")
expm1 = _unary_inexact("expm1", lax.expm1, "Elementwise exp(x) - 1, accurate for small x.")
sin = _unary_inexact(
    "sin",
    lax.sin,
    "Elementwise sine (radians).\n\nExample:\n"
    "    >>> jnp.sin(jnp.zeros(2))\n    Array([0., 0.], dtype=float32)",
)
cos = _unary_inexact("cos", lax.cos, "Elementwise cosine (radians).")
tan = _unary_inexact("tan", lax.tan, "Elementwise tangent (radians).")
tanh = _unary_inexact("tanh", lax.tanh, "Elementwise hyperbolic tangent.")
sqrt = _unary_inexact("sqrt", lax.sqrt, "Elementwise non-negative square root (nan below 0).")


def _unary_inexact_composite(name: str, doc: str):
    """Decorator: a unary float function built from several primitives."""

    def wrap(body):
        def fn(x, /):
            return body(_inexact(name, x))

        return _named(fn, name, doc)

    return wrap


@_unary_inexact_composite("sinh", "Elementwise hyperbolic sine.")
def sinh(x):
    return lax.mul(lax.sub(lax.expm1(x), lax.expm1(lax.neg(x))), _const_like(x, 0.5))


@_unary_inexact_composite("cosh", "Elementwise hyperbolic cosine.")
def cosh(x):
    return lax.mul(lax.add(lax.exp(x), lax.exp(lax.neg(x))), _const_like(x, 0.5))


@_unary_inexact_composite("arcsin", "Elementwise inverse sine, in [-pi/2, pi/2].")
def arcsin(x):
    return lax.atan2(x, lax.sqrt(lax.mul(lax.sub(_one(x), x), lax.add(_one(x), x))))


@_unary_inexact_composite("arccos", "Elementwise inverse cosine, in [0, pi].")
def arccos(x):
    return lax.atan2(lax.sqrt(lax.mul(lax.sub(_one(x), x), lax.add(_one(x), x))), x)


@_unary_inexact_composite("arctan", "Elementwise inverse tangent, in [-pi/2, pi/2].")
def arctan(x):
    return lax.atan2(x, _one(x))


@_unary_inexact_composite("arcsinh", "Elementwise inverse hyperbolic sine.")
def arcsinh(x):
    a = lax.abs(x)
    # log(a + sqrt(a^2 + 1)) = log1p(a + a^2 / (1 + sqrt(a^2 + 1))): no cancellation near 0.
    a2 = lax.mul(a, a)
    inner = lax.add(a, lax.div(a2, lax.add(_one(x), lax.sqrt(lax.add(a2, _one(x))))))
    return lax.mul(lax.sign(x), lax.log1p(inner))


@_unary_inexact_composite("arccosh", "Elementwise inverse hyperbolic cosine (x >= 1).")
def arccosh(x):
    return lax.log(lax.add(x, lax.sqrt(lax.mul(lax.sub(x, _one(x)), lax.add(x, _one(x))))))


@_unary_inexact_composite("arctanh", "Elementwise inverse hyperbolic tangent (|x| < 1).")
def arctanh(x):
    return lax.mul(
        _const_like(x, 0.5), lax.log1p(lax.div(lax.mul(_const_like(x, 2), x), lax.sub(_one(x), x)))
    )


@_unary_inexact_composite("log2", "Elementwise base-2 logarithm.")
def log2(x):
    return lax.div(lax.log(x), _const_like(x, math.log(2)))


@_unary_inexact_composite("log10", "Elementwise base-10 logarithm.")
def log10(x):
    return lax.div(lax.log(x), _const_like(x, math.log(10)))


@_unary_inexact_composite("exp2", "Elementwise 2**x.")
def exp2(x):
    return lax.exp(lax.mul(x, _const_like(x, math.log(2))))


@_unary_inexact_composite("cbrt", "Elementwise real cube root.")
def cbrt(x):
    return lax.mul(lax.sign(x), lax.pow(lax.abs(x), _const_like(x, 1 / 3)))


@_unary_inexact_composite("reciprocal", "Elementwise 1 / x.")
def reciprocal(x):
    return lax.div(_one(x), x)


@_unary_inexact_composite("deg2rad", "Degrees to radians.")
def deg2rad(x):
    return lax.mul(x, _const_like(x, math.pi / 180))


@_unary_inexact_composite("rad2deg", "Radians to degrees.")
def rad2deg(x):
    return lax.mul(x, _const_like(x, 180 / math.pi))


radians = _named(lambda x, /: deg2rad(x), "radians", "Degrees to radians (same as deg2rad).")
degrees = _named(lambda x, /: rad2deg(x), "degrees", "Radians to degrees (same as rad2deg).")


@_unary_inexact_composite("rint", "Round to the nearest integer (halves to even), as floats.")
def rint(x):
    return lax.round(x)


def _unary_keep_ints(name: str, lax_fn, doc: str):
    """floor/ceil/trunc: identity on integer and bool arrays (NumPy 2 keeps their dtype)."""

    def fn(x, /):
        x = to_array(x, name)
        if _dtype_of(x).kind != "f":
            return x
        return lax_fn(x)

    return _named(fn, name, doc)


def _trunc(x):
    return lax.select_n(lax.lt(x, _zero(x)), lax.floor(x), lax.ceil(x))


floor = _unary_keep_ints("floor", lax.floor, "Elementwise floor (largest integer <= x).")
ceil = _unary_keep_ints("ceil", lax.ceil, "Elementwise ceiling (smallest integer >= x).")
trunc = _unary_keep_ints("trunc", _trunc, "Elementwise rounding toward zero.")
fix = _named(lambda x, /: trunc(x), "fix", "Round toward zero (same as trunc).")


def round(a, decimals: int = 0, out=None):  # noqa: A001
    """Round to `decimals` decimal places, halves to even (NumPy's `round`).

    Example:
        >>> jnp.round(jnp.array([0.5, 1.5, 2.25]), 1)
        Array([0.5, 1.5, 2.2], dtype=float32)
    """
    _no_out("round", out)
    a = to_array(a, "round")
    decimals = int(decimals)
    if _dtype_of(a).kind != "f":
        if decimals >= 0:
            return a
        factor = scalar_const(10 ** (-decimals), _dtype_of(a))
        f = lax.convert_element_type(a, to_inexact_dtype(_dtype_of(a), a.weak_type))
        q = lax.round(lax.div(f, lax.convert_element_type(factor, _dtype_of(f))))
        return lax.mul(lax.convert_element_type(q, _dtype_of(a), a.weak_type), factor)
    if decimals == 0:
        return lax.round(a)
    factor = _const_like(a, 10.0**decimals)
    return lax.div(lax.round(lax.mul(a, factor)), factor)


around = _named(
    lambda a, decimals=0, out=None: round(a, decimals, out), "around", "Alias of round."
)


def _no_out(name: str, out) -> None:
    if out is not None:
        raise NotImplementedError(
            f"{name}: the `out` argument is not supported: fnbrrr arrays are immutable; use "
            "the returned array"
        )


def negative(x, /):
    """Elementwise -x (unsigned integers wrap around, as in NumPy).

    Example:
        >>> jnp.negative(jnp.array([1, -2]))
        Array([-1,  2], dtype=int32)
    """
    if type(x) is not ArrayImpl:
        x = to_array(x, "negative")
    dt = _dtype_of(x)
    if dt.kind == "u":
        return lax.sub(_zero(x), x)
    if dt.kind == "b":
        raise TypeError("negative: not supported for bool arrays; use jnp.logical_not or ~x")
    return lax.neg(x)


def positive(x, /):
    """Elementwise +x (returns the array unchanged)."""
    return to_array(x, "positive")


def abs(x, /):  # noqa: A001
    """Elementwise absolute value (identity on unsigned and bool arrays)."""
    if type(x) is not ArrayImpl:
        x = to_array(x, "abs")
    if _dtype_of(x).kind in "ub":
        return x
    return lax.abs(x)


absolute = _named(lambda x, /: abs(x), "absolute", "Elementwise absolute value (alias of abs).")
fabs = _named(
    lambda x, /: abs(_inexact("fabs", x)), "fabs", "Elementwise absolute value as floats."
)


def sign(x, /):
    """Elementwise sign: -1, 0 or 1 (0 for 0, nan for nan)."""
    x = to_array(x, "sign")
    dt = _dtype_of(x)
    if dt.kind == "u":
        return lax.convert_element_type(lax.ne(x, _zero(x)), dt, x.weak_type)
    if dt.kind == "b":
        raise TypeError("sign: not supported for bool arrays")
    return lax.sign(x)


def square(x, /):
    """Elementwise x * x (bools count as integers: the result is int32, as in JAX).

    Example:
        >>> jnp.square(jnp.array([-2, 3]))
        Array([4, 9], dtype=int32)
    """
    x = to_array(x, "square")
    if _dtype_of(x).kind == "b":
        return lax.convert_element_type(x, default_int(), x.aval.weak_type)
    return lax.square(x)


def conjugate(x, /):
    """Complex conjugate; fnbrrr arrays are real, so this returns `x`."""
    return to_array(x, "conjugate")


conj = _named(lambda x, /: conjugate(x), "conj", "Complex conjugate (identity on real arrays).")


def real(val, /):
    """Real part; fnbrrr arrays are real, so this returns `val`."""
    return to_array(val, "real")


def imag(val, /):
    """Imaginary part; zeros for real arrays."""
    val = to_array(val, "imag")
    return lax.full(val.shape, 0, _dtype_of(val))


def isnan(x, /):
    """Elementwise test for NaN (False for integer and bool arrays)."""
    x = to_array(x, "isnan")
    if _dtype_of(x).kind != "f":
        return lax.full(x.shape, False, BOOL)
    return lax.ne(x, x)


def isinf(x, /):
    """Elementwise test for +inf or -inf."""
    x = to_array(x, "isinf")
    if _dtype_of(x).kind != "f":
        return lax.full(x.shape, False, BOOL)
    return lax.eq(lax.abs(x), _const_like(x, np.inf))


def isfinite(x, /):
    """Elementwise test for finite values (not inf, not nan)."""
    x = to_array(x, "isfinite")
    if _dtype_of(x).kind != "f":
        return lax.full(x.shape, True, BOOL)
    return lax.is_finite(x)


def select(condlist, choicelist, default=0):
    """The first choice whose condition holds, elementwise (`default` where none does).

    Example:
        >>> x = jnp.arange(5)
        >>> jnp.select([x < 2, x > 3], [x, -x], 9)
        Array([ 0,  1,  9,  9, -4], dtype=int32)
    """
    if len(condlist) != len(choicelist):
        raise ValueError(
            f"select: condlist and choicelist must have the same length, got {len(condlist)} "
            f"and {len(choicelist)}"
        )
    if not condlist:
        raise ValueError("select: condlist must not be empty")
    out = default
    for cond, choice in reversed(list(zip(condlist, choicelist))):
        cond = to_array(cond, "select")
        if _dtype_of(cond) != BOOL:
            raise TypeError(f"select: conditions must be bool arrays, got {_dtype_of(cond)}")
        out = where(cond, choice, out)
    return out


def nan_to_num(x, copy: bool = True, nan: float = 0.0, posinf: float | None = None,
               neginf: float | None = None):
    """`x` with NaN replaced by `nan`, +inf by `posinf` and -inf by `neginf` (by default the
    largest and the most negative finite values of x's dtype); integer arrays pass through.

    Example:
        >>> jnp.nan_to_num(jnp.array([np.nan, 1.0, -np.inf]), neginf=-9.0)
        Array([ 0.,  1., -9.], dtype=float32)
    """
    x = to_array(x, "nan_to_num")
    dt = _dtype_of(x)
    if dt.kind != "f":
        return x
    info = np.finfo(dt)
    big = info.max if posinf is None else posinf
    small = info.min if neginf is None else neginf
    out = lax.select_n(lax.ne(x, x), x, lax.full(x.shape, nan, dt))
    out = lax.select_n(lax.eq(out, _const_like(x, np.inf)), out, lax.full(x.shape, big, dt))
    return lax.select_n(lax.eq(out, _const_like(x, -np.inf)), out, lax.full(x.shape, small, dt))


def signbit(x, /):
    """Elementwise test for a set sign bit (x < 0, and -0.0)."""
    x = to_array(x, "signbit")
    dt = _dtype_of(x)
    if dt.kind in "ub":
        return lax.full(x.shape, False, BOOL)
    if dt.kind == "i":
        return lax.lt(x, _zero(x))
    # -0.0 has its sign bit set: 1 / -0.0 is -inf.
    neg_zero = lax.and_(lax.eq(x, _zero(x)), lax.lt(lax.div(_one(x), x), _zero(x)))
    return lax.or_(lax.lt(x, _zero(x)), neg_zero)


# --------------------------------------------------------------------------------------------
# Binary arithmetic
# --------------------------------------------------------------------------------------------


def _binary(name: str, lax_fn, doc: str, on_bool=None):
    """A binary function: promote, broadcast, then one lax primitive."""

    def fn(x, y, /):
        x, y, dt = promote2(name, x, y)
        if dt is BOOL and on_bool is not None:
            return on_bool(x, y)
        return lax_fn(x, y)

    return _named(fn, name, doc)


def _bool_subtract(x, y):
    raise TypeError(
        "subtract: not supported for bool arrays (NumPy does not define it); use "
        "jnp.logical_xor or ^ instead"
    )


add = _binary(
    "add",
    lax.add,
    "Elementwise x + y, with broadcasting (logical or on bools).\n\n"
    "Example:\n    >>> jnp.add(jnp.ones(2), 1)\n    Array([2., 2.], dtype=float32)",
    lax.or_,
)
subtract = _binary("subtract", lax.sub, "Elementwise x - y, with broadcasting.", _bool_subtract)
multiply = _binary(
    "multiply", lax.mul, "Elementwise x * y, with broadcasting (logical and on bools).", lax.and_
)
maximum = _binary("maximum", lax.max, "Elementwise maximum (nan propagates).")
minimum = _binary("minimum", lax.min, "Elementwise minimum (nan propagates).")

equal = _binary("equal", lax.eq, "Elementwise x == y as a bool array.")
not_equal = _binary("not_equal", lax.ne, "Elementwise x != y as a bool array.")
less = _binary("less", lax.lt, "Elementwise x < y as a bool array.")
less_equal = _binary("less_equal", lax.le, "Elementwise x <= y as a bool array.")
greater = _binary("greater", lax.gt, "Elementwise x > y as a bool array.")
greater_equal = _binary("greater_equal", lax.ge, "Elementwise x >= y as a bool array.")


def _inexact_pair(name: str, x, y):
    x, y, dt = promote2(name, x, y)
    if dt.kind != "f":
        weak = x.weak_type and y.weak_type
        new = to_inexact_dtype(dt, weak)
        x = lax.convert_element_type(x, new, weak)
        y = lax.convert_element_type(y, new, weak)
    return x, y


def true_divide(x1, x2, /):
    """Elementwise x1 / x2 as floating point (int / int gives float32).

    Example:
        >>> jnp.true_divide(jnp.array([1, 2]), 2)
        Array([0.5, 1. ], dtype=float32)
    """
    x, y = _inexact_pair("true_divide", x1, x2)
    return lax.div(x, y)


divide = _named(
    lambda x1, x2, /: true_divide(x1, x2),
    "divide",
    "Elementwise x1 / x2 as floating point (alias of true_divide).",
)


def arctan2(x1, x2, /):
    """Elementwise arctan(x1 / x2) in the quadrant of (x2, x1), in [-pi, pi]."""
    x, y = _inexact_pair("arctan2", x1, x2)
    return lax.atan2(x, y)


atan2 = _named(lambda x1, x2, /: arctan2(x1, x2), "atan2", "Alias of arctan2.")
# The array-API names JAX also exports.
acos = _named(lambda x, /: arccos(x), "acos", "Alias of arccos.")
asin = _named(lambda x, /: arcsin(x), "asin", "Alias of arcsin.")
atan = _named(lambda x, /: arctan(x), "atan", "Alias of arctan.")
acosh = _named(lambda x, /: arccosh(x), "acosh", "Alias of arccosh.")
asinh = _named(lambda x, /: arcsinh(x), "asinh", "Alias of arcsinh.")
atanh = _named(lambda x, /: arctanh(x), "atanh", "Alias of arctanh.")


def hypot(x1, x2, /):
    """Elementwise sqrt(x1**2 + x2**2), scaled to avoid overflow."""
    x, y = _inexact_pair("hypot", x1, x2)
    shape = broadcast_shapes("hypot", (x.shape, y.shape))
    x, y = broadcast_to_shape(lax.abs(x), shape), broadcast_to_shape(lax.abs(y), shape)
    big, small = lax.max(x, y), lax.min(x, y)
    safe = lax.select_n(lax.eq(big, _zero(big)), big, lax.full(shape, 1, _dtype_of(big)))
    ratio = lax.div(small, safe)
    return lax.mul(big, lax.sqrt(lax.add(_one(big), lax.mul(ratio, ratio))))


def logaddexp(x1, x2, /):
    """Elementwise log(exp(x1) + exp(x2)), computed without overflow.

    Example:
        >>> jnp.logaddexp(1000.0, 1000.0)
        Array(1000.6932, dtype=float32, weak_type=True)
    """
    x, y = _inexact_pair("logaddexp", x1, x2)
    amax = lax.max(x, y)
    delta = lax.sub(x, y)
    out = lax.add(amax, lax.log1p(lax.exp(lax.neg(lax.abs(delta)))))
    # inf - inf is nan: the answer is then amax itself (or nan if an input is nan).
    return lax.select_n(lax.ne(delta, delta), out, lax.add(x, y))


def logaddexp2(x1, x2, /):
    """Elementwise log2(2**x1 + 2**x2), computed without overflow."""
    x, y = _inexact_pair("logaddexp2", x1, x2)
    ln2 = _const_like(x, math.log(2))
    return lax.div(logaddexp(lax.mul(x, ln2), lax.mul(y, ln2)), ln2)


def _float_divmod(x, y):
    # NumPy's divmod for floats: the remainder takes the divisor's sign.
    zero = _zero(x)
    mod = lax.rem(x, y)
    # x // 0.0 is x / 0.0 (+-inf, or NaN for 0 // 0), as in NumPy and JAX, not rem's NaN.
    by_zero = broadcast_to_shape(lax.eq(y, zero), mod.shape)
    div = lax.div(lax.select_n(by_zero, lax.sub(x, mod), broadcast_to_shape(x, mod.shape)), y)
    fix = lax.and_(lax.ne(mod, zero), lax.ne(lax.lt(y, zero), lax.lt(mod, zero)))
    mod = lax.select_n(fix, mod, lax.add(mod, y))
    div = lax.select_n(fix, div, lax.sub(div, _one(x)))
    return lax.round(div), mod


def _int_operands(name: str, x1, x2):
    x, y, dt = promote2(name, x1, x2)
    if dt is BOOL:  # bool // bool is an integer division in the default int type (JAX)
        dt = default_int()
        x = lax.convert_element_type(x, dt)
        y = lax.convert_element_type(y, dt)
    return x, y, dt


def floor_divide(x1, x2, /):
    """Elementwise floor(x1 / x2); integer results round toward -inf, as in NumPy.

    Example:
        >>> jnp.floor_divide(jnp.array([7, -7]), 2)
        Array([ 3, -4], dtype=int32)
    """
    x, y, dt = _int_operands("floor_divide", x1, x2)
    if dt.kind == "f":
        return _float_divmod(x, y)[0]
    q = lax.div(x, y)
    if dt.kind == "u":
        return q
    zero = _zero(x)
    r = lax.rem(x, y)
    fix = lax.and_(lax.ne(r, zero), lax.ne(lax.lt(r, zero), lax.lt(y, zero)))
    if q.shape != fix.shape:
        q = broadcast_to_shape(q, fix.shape)
    return lax.select_n(fix, q, lax.sub(q, _one(x)))


def remainder(x1, x2, /):
    """Elementwise remainder with the sign of the divisor (Python's and NumPy's `%`).

    Example:
        >>> jnp.remainder(jnp.array([7, -7]), 3)
        Array([1, 2], dtype=int32)
    """
    x, y, dt = _int_operands("remainder", x1, x2)
    if dt.kind == "f":
        return _float_divmod(x, y)[1]
    r = lax.rem(x, y)
    if dt.kind == "u":
        return r
    zero = _zero(x)
    fix = lax.and_(lax.ne(r, zero), lax.ne(lax.lt(r, zero), lax.lt(y, zero)))
    return lax.select_n(fix, r, lax.add(r, y))


mod = _named(lambda x1, x2, /: remainder(x1, x2), "mod", "Alias of remainder.")


def fmod(x1, x2, /):
    """Elementwise remainder with the sign of the dividend (C's fmod)."""
    x, y, _ = _int_operands("fmod", x1, x2)
    return lax.rem(x, y)


def divmod(x1, x2, /):  # noqa: A001
    """`(floor_divide(x1, x2), remainder(x1, x2))`."""
    x, y, dt = _int_operands("divmod", x1, x2)
    if dt.kind == "f":
        return _float_divmod(x, y)
    return floor_divide(x, y), remainder(x, y)


def _int_power(x, y, dt):
    # Square-and-multiply over the bits of y (NumPy raises for negative integer exponents;
    # here they give 0 except for bases 1 and -1, like C's repeated division).
    shape = broadcast_shapes("power", (x.shape, y.shape))
    x, y = broadcast_to_shape(x, shape), broadcast_to_shape(y, shape)
    base, exponent = x, y
    acc = lax.full(shape, 1, dt)
    one, zero = scalar_const(1, dt), scalar_const(0, dt)
    for _ in range(dt.itemsize * 8 - (dt.kind == "i")):
        # Division truncates toward zero, so a negative y walks the bits of |y|: acc = x**|y|.
        odd = lax.ne(lax.and_(y, one), zero)
        acc = lax.select_n(odd, acc, lax.mul(acc, x))
        x = lax.mul(x, x)
        y = lax.div(y, scalar_const(2, dt))
    if dt.kind == "u":
        return acc
    # x ** -k is 1 / x**k truncated: x**|k| for x = +-1, 0 otherwise.
    unit_base = lax.eq(lax.mul(base, base), lax.full(shape, 1, dt))
    vanishes = lax.and_(lax.lt(exponent, lax.full(shape, 0, dt)), lax.not_(unit_base))
    return lax.select_n(vanishes, acc, lax.full(shape, 0, dt))


class NegativeIntegerPowerError(ValueError, TypeError):
    """An integer array raised to a negative Python int: NumPy raises ValueError, JAX
    TypeError; this is both."""


def power(x1, x2, /):
    """Elementwise x1 ** x2. A Python int exponent uses repeated multiplication
    (`lax.integer_pow`); other exponents use `lax.pow`.

    Example:
        >>> jnp.power(jnp.array([1., 2., 3.]), 2)
        Array([1., 4., 9.], dtype=float32)
    """
    if type(x2) is int:
        x = to_array(x1, "power")
        dt = _dtype_of(x)
        if dt.kind == "b":  # the result type is the base's alone: a strong int
            x, dt = lax.convert_element_type(x, default_int(), False), default_int()
        if x2 < 0 and dt.kind != "f":
            raise NegativeIntegerPowerError(
                f"power: integers to negative integer powers are not allowed (got "
                f"{dt.name} ** {x2}); convert the base to float first"
            )
        return lax.integer_pow(x, x2)
    x, y, dt = promote2("power", x1, x2)
    if dt.kind == "f":
        return lax.pow(x, y)
    if dt is BOOL:  # bool ** bool is an int32 power in JAX
        return lax.convert_element_type(lax.or_(x, lax.not_(y)), default_int(), False)
    out = _int_power(x, y, dt)  # its constants are strong: restore a weak result's type
    return lax.convert_element_type(out, dt, True) if x.weak_type and y.weak_type else out


pow = _named(lambda x1, x2, /: power(x1, x2), "pow", "Alias of power.")  # noqa: A001


def float_power(x1, x2, /):
    """x1 ** x2 in the widest available floating dtype."""
    x, y = _inexact_pair("float_power", x1, x2)
    return lax.pow(x, y)


def clip(arr=None, /, min=None, max=None, *, a=None, a_min=None, a_max=None):  # noqa: A002
    """Limit values to [min, max] (either bound may be None).

    Example:
        >>> jnp.clip(jnp.arange(5), 1, 3)
        Array([1, 1, 2, 3, 3], dtype=int32)
    """
    if arr is None:
        arr = a
    if min is None:
        min = a_min  # noqa: A001
    if max is None:
        max = a_max  # noqa: A001
    if arr is None:
        raise TypeError("clip: missing the array argument")
    out = to_array(arr, "clip")
    if min is not None:
        out = maximum(min, out)
    if max is not None:
        out = minimum(max, out)
    return out


def where(condition, x=None, y=None, /, *, size=None, fill_value=None):
    """Elementwise `x if condition else y`, broadcasting all three.

    With only `condition`, returns `nonzero(condition)` (concrete arrays only).

    Example:
        >>> jnp.where(jnp.array([True, False]), 1.0, 0.0)
        Array([1., 0.], dtype=float32, weak_type=True)
    """
    if x is None and y is None:
        from fnbrrr.numpy._take import nonzero

        return nonzero(condition, size=size, fill_value=fill_value)
    if x is None or y is None:
        raise ValueError("where: pass both x and y, or neither (for nonzero)")
    cond = _as_bool("where", condition)
    (x, y), _ = promote("where", x, y, broadcast=False)
    shape = broadcast_shapes("where", (cond.shape, x.shape, y.shape))
    x, y = broadcast_to_shape(x, shape), broadcast_to_shape(y, shape)
    if cond.shape:
        cond = broadcast_to_shape(cond, shape)
    return lax.select_n(cond, y, x)


# --------------------------------------------------------------------------------------------
# Logic and bits
# --------------------------------------------------------------------------------------------


def _as_bool(name: str, x):
    x = to_array(x, name)
    if _dtype_of(x) is not BOOL:
        x = lax.ne(x, _zero(x))
    return x


def _logical(name: str, lax_fn, doc: str):
    def fn(x1, x2, /):
        x, y = _as_bool(name, x1), _as_bool(name, x2)
        x, y, _ = promote2(name, x, y)
        return lax_fn(x, y)

    return _named(fn, name, doc)


logical_and = _logical("logical_and", lax.and_, "Elementwise truth of x1 and x2 (bool array).")
logical_or = _logical("logical_or", lax.or_, "Elementwise truth of x1 or x2 (bool array).")
logical_xor = _logical("logical_xor", lax.xor, "Elementwise truth of x1 xor x2 (bool array).")


def logical_not(x, /):
    """Elementwise truth of not x (bool array)."""
    return lax.not_(_as_bool("logical_not", x))


def _bitwise(name: str, lax_fn, doc: str):
    def fn(x1, x2, /):
        x, y, dt = promote2(name, x1, x2)
        if dt.kind == "f":
            raise TypeError(
                f"{name}: not supported for floating-point arrays ({dt.name}); it needs integer "
                "or bool operands (use jnp.logical_* for truth values)"
            )
        return lax_fn(x, y)

    return _named(fn, name, doc)


bitwise_and = _bitwise("bitwise_and", lax.and_, "Elementwise x1 & x2 on ints and bools.")
bitwise_or = _bitwise("bitwise_or", lax.or_, "Elementwise x1 | x2 on ints and bools.")
bitwise_xor = _bitwise("bitwise_xor", lax.xor, "Elementwise x1 ^ x2 on ints and bools.")


def invert(x, /):
    """Elementwise bitwise not (logical not for bools): `~x`."""
    x = to_array(x, "invert")
    dt = _dtype_of(x)
    if dt.kind == "f":
        raise TypeError(
            f"invert: not supported for floating-point arrays ({dt.name}); it needs integer or "
            "bool operands"
        )
    return lax.not_(x)


bitwise_not = _named(lambda x, /: invert(x), "bitwise_not", "Alias of invert.")
bitwise_invert = _named(lambda x, /: invert(x), "bitwise_invert", "Alias of invert.")


def _shift_operands(name: str, x1, x2):
    x, y, dt = promote2(name, x1, x2)
    if dt.kind not in "iu":
        raise TypeError(f"{name}: needs integer operands, got {dt.name}")
    shape = broadcast_shapes(name, (x.shape, y.shape))
    return broadcast_to_shape(x, shape), broadcast_to_shape(y, shape), dt, shape


def left_shift(x1, x2, /):
    """Elementwise x1 << x2 for integers (shifts of the bit width or more give 0).

    Example:
        >>> jnp.left_shift(jnp.array([1, 3]), 2)
        Array([ 4, 12], dtype=int32)
    """
    x, y, dt, shape = _shift_operands("left_shift", x1, x2)
    # x * 2**y wraps around exactly like a shift; 2**y is 0 once y reaches the bit width.
    return lax.mul(x, _int_power(lax.full(shape, 2, dt), y, dt))


def right_shift(x1, x2, /):
    """Elementwise x1 >> x2: arithmetic for signed integers (rounds toward -inf), logical for
    unsigned ones; shifts of the bit width or more give 0 (-1 for negative signed values).

    Example:
        >>> jnp.right_shift(jnp.array([-5, 12]), 1)
        Array([-3,  6], dtype=int32)
    """
    x, y, dt, shape = _shift_operands("right_shift", x1, x2)
    bits = dt.itemsize * 8
    too_far = lax.ge(y, lax.full(shape, bits - 1, dt))
    safe_y = lax.select_n(too_far, y, lax.full(shape, 0, dt))
    shifted = floor_divide(x, _int_power(lax.full(shape, 2, dt), safe_y, dt))
    if dt.kind == "u":
        # 2**(bits - 1) is representable for unsigned types: only y >= bits is "too far".
        beyond = lax.ge(y, lax.full(shape, bits, dt))
        last = floor_divide(x, _int_power(lax.full(shape, 2, dt), lax.full(shape, bits - 1, dt),
                                          dt))
        shifted = lax.select_n(too_far, shifted, last)
        return lax.select_n(beyond, shifted, lax.full(shape, 0, dt))
    negative = lax.lt(x, lax.full(shape, 0, dt))
    saturated = lax.select_n(negative, lax.full(shape, 0, dt), lax.full(shape, -1, dt))
    return lax.select_n(too_far, shifted, saturated)


bitwise_left_shift = _named(lambda x1, x2, /: left_shift(x1, x2), "bitwise_left_shift",
                            "Alias of left_shift.")
bitwise_right_shift = _named(lambda x1, x2, /: right_shift(x1, x2), "bitwise_right_shift",
                             "Alias of right_shift.")


def isclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
    """Elementwise |a - b| <= atol + rtol * |b| (and equal infinities)."""
    a, b = _inexact_pair("isclose", a, b)
    dt = _dtype_of(a)
    close = lax.le(
        lax.abs(lax.sub(a, b)),
        lax.add(scalar_const(atol, dt), lax.mul(scalar_const(rtol, dt), lax.abs(b))),
    )
    both_inf = lax.and_(lax.eq(a, b), lax.eq(lax.abs(a), scalar_const(np.inf, dt)))
    out = lax.or_(lax.and_(close, lax.is_finite(b)), both_inf)
    if equal_nan:
        out = lax.or_(out, lax.and_(lax.ne(a, a), lax.ne(b, b)))
    if out.shape != a.shape and a.shape:
        out = broadcast_to_shape(out, a.shape)
    return out


def allclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
    """True (a 0-d bool array) when `isclose(a, b, ...)` holds everywhere."""
    close = isclose(a, b, rtol, atol, equal_nan)
    return lax.reduce_and(close, tuple(range(close.ndim)))


def array_equal(a1, a2, equal_nan: bool = False):
    """True (a 0-d bool array) when both arrays have one shape and equal elements."""
    a1, a2 = to_array(a1, "array_equal"), to_array(a2, "array_equal")
    if a1.shape != a2.shape:
        return scalar_const(False, BOOL)
    eq = equal(a1, a2)
    if equal_nan:
        eq = lax.or_(eq, lax.and_(isnan(a1), isnan(a2)))
    return lax.reduce_and(eq, tuple(range(eq.ndim)))
