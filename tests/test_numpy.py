"""Tests for fnbrrr.numpy: every function against NumPy (values, dtypes, shapes), JAX's
promotion rules, broadcasting, axes handling and error messages."""

from __future__ import annotations

import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fnbrrr
import fnbrrr.numpy as jnp
from fnbrrr import core
from fnbrrr.config import config

settings.register_profile(
    "fnbrrr", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("fnbrrr")

F32 = np.dtype("float32")
I32 = np.dtype("int32")


def finite_f32(min_value=-10.0, max_value=10.0):
    lo, hi = float(np.float32(min_value)), float(np.float32(max_value))
    return st.floats(lo, hi, width=32, allow_nan=False, allow_infinity=False)


def f32_arrays(shape=None, min_value=-10.0, max_value=10.0, min_dims=0, max_dims=3):
    shapes = hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=4)
    return hnp.arrays(
        F32, shape if shape is not None else shapes, elements=finite_f32(min_value, max_value)
    )


def check(actual, expected, rtol=1e-5, atol=1e-6, dtype=None):
    """Values, shape and dtype of an fnbrrr result against a NumPy expectation."""
    assert isinstance(actual, core.Array), type(actual)
    expected = np.asarray(expected)
    want_dtype = np.dtype(dtype) if dtype is not None else expected.dtype
    assert actual.dtype == want_dtype, (actual.dtype, want_dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_allclose(
        np.asarray(actual, dtype=np.float64), expected.astype(np.float64), rtol=rtol, atol=atol
    )


# --------------------------------------------------------------------------------------------
# Promotion
# --------------------------------------------------------------------------------------------

PROMOTION_TABLE = [  # (lhs dtype, rhs dtype, result): JAX's lattice, not NumPy's
    ("bool", "bool", "bool"),
    ("bool", "int32", "int32"),
    ("uint8", "int8", "int16"),
    ("uint8", "uint16", "uint16"),
    ("int8", "float16", "float16"),
    ("float16", "float32", "float32"),
    ("uint8", "float16", "float16"),
    ("int32", "float32", "float32"),  # NumPy says float64
    ("int16", "float16", "float16"),  # NumPy says float32
    ("uint32", "int32", "int32"),  # int64, canonicalised without x64
]


@pytest.mark.parametrize("a,b,want", PROMOTION_TABLE)
def test_promotion_table(a, b, want):
    x = jnp.ones(3, a)
    y = jnp.ones(3, b)
    out = x + y if want != "bool" else x | y
    assert out.dtype == np.dtype(want)
    assert jnp.result_type(a, b) == np.dtype(want)
    assert jnp.promote_types(a, b) == np.dtype(want)
    assert (y + x).dtype == out.dtype if want != "bool" else True


def test_weak_python_scalars_follow_api_examples():
    f = jnp.ones(3)
    i = jnp.arange(3)
    assert (f * 2.0).dtype == F32 and not (f * 2.0).weak_type
    assert (2.0 * f).dtype == F32
    assert (i * 2).dtype == I32 and not (i * 2).weak_type
    assert (i * 0.5).dtype == F32
    assert (i / 2).dtype == F32
    assert (i + f).dtype == F32
    h = jnp.ones(3, jnp.float16)
    assert (h * 2.0).dtype == np.float16  # weak float does not upcast float16
    assert (h + jnp.asarray(1.0)).dtype == np.float16  # weak 0-d arrays are weak too
    u = jnp.ones(3, jnp.uint8)
    assert (u + 1).dtype == np.uint8
    assert (jnp.array([True, False]) + 1).dtype == I32
    check(i * 0.5, np.arange(3) * 0.5, dtype=F32)


def test_python_scalars_become_weak_arrays():
    a = jnp.asarray(1.0)
    assert a.dtype == F32 and a.weak_type
    b = jnp.asarray(3)
    assert b.dtype == I32 and b.weak_type
    assert not jnp.asarray(True).weak_type
    assert not jnp.asarray(1.0, dtype=jnp.float32).weak_type
    assert (a + b).weak_type and (a + b).dtype == F32


def test_numpy_float64_is_canonicalised_and_copied():
    n = np.arange(4.0)
    x = jnp.asarray(n)
    assert x.dtype == F32 and not x.weak_type
    n[0] = 100.0
    assert float(x[0]) == 0.0  # later mutation of the ndarray does not reach x
    assert jnp.asarray(np.arange(3, dtype=np.int64)).dtype == I32
    assert jnp.asarray(np.float64(2.5)).dtype == F32


def test_x64_mode_switches_defaults():
    config.update("jax_enable_x64", True)
    try:
        assert jnp.asarray(np.arange(3.0)).dtype == np.float64
        assert jnp.sum(jnp.arange(3, dtype=jnp.int32)).dtype == np.int64
        assert jnp.asarray(1.5).dtype == np.float64
        assert (jnp.ones(2, jnp.float32) * 2.0).dtype == F32
    finally:
        config.update("jax_enable_x64", False)
    assert jnp.asarray(1.5).dtype == F32
    assert jnp.sum(jnp.arange(3)).dtype == I32


def test_nested_lists_and_dtype_argument():
    check(jnp.array([[1, 2], [3, 4]]), np.array([[1, 2], [3, 4]], np.int32))
    check(jnp.array([1, 2.5]), np.array([1, 2.5], np.float32))
    check(jnp.asarray([True, False]), np.array([True, False]))
    check(jnp.array([1.7, -1.7], dtype=jnp.int32), np.array([1, -1], np.int32))
    check(jnp.array(3, ndmin=2), np.array(3, ndmin=2).astype(np.int32))
    with pytest.raises((ValueError, TypeError)):
        jnp.array([[1, 2], [3]])


def test_array_copies_and_asarray_passes_through():
    x = jnp.arange(3)
    assert jnp.asarray(x) is x
    y = jnp.array(x)
    assert y is not x
    check(y, np.arange(3, dtype=np.int32))
    assert jnp.asarray(x, dtype=jnp.float32).dtype == F32


# --------------------------------------------------------------------------------------------
# Elementwise
# --------------------------------------------------------------------------------------------

UNARY = [  # (name, domain)
    ("exp", (-5, 5)),
    ("log", (0.1, 10)),
    ("log1p", (-0.5, 10)),
    ("expm1", (-5, 5)),
    ("sin", (-10, 10)),
    ("cos", (-10, 10)),
    ("tan", (-1.2, 1.2)),
    ("tanh", (-10, 10)),
    ("sqrt", (0, 10)),
    ("square", (-10, 10)),
    ("abs", (-10, 10)),
    ("sign", (-10, 10)),
    ("negative", (-10, 10)),
    ("floor", (-10, 10)),
    ("ceil", (-10, 10)),
    ("sinh", (-5, 5)),
    ("cosh", (-5, 5)),
    ("arcsin", (-0.99, 0.99)),
    ("arccos", (-0.99, 0.99)),
    ("arctan", (-10, 10)),
    ("arcsinh", (-10, 10)),
    ("arccosh", (1.01, 10)),
    ("arctanh", (-0.9, 0.9)),
    ("log2", (0.1, 10)),
    ("log10", (0.1, 10)),
    ("exp2", (-5, 5)),
    ("cbrt", (-10, 10)),
    ("reciprocal", (0.5, 10)),
    ("trunc", (-10, 10)),
    ("rint", (-10, 10)),
    ("deg2rad", (-10, 10)),
    ("rad2deg", (-10, 10)),
]


@pytest.mark.parametrize("name,domain", UNARY, ids=[u[0] for u in UNARY])
@given(data=st.data())
def test_unary_matches_numpy(name, domain, data):
    xn = data.draw(f32_arrays(min_value=domain[0], max_value=domain[1]))
    out = getattr(jnp, name)(jnp.asarray(xn))
    check(out, getattr(np, name)(xn), rtol=2e-5, atol=2e-5, dtype=F32)


@pytest.mark.parametrize("name", ["sin", "exp", "sqrt", "tanh", "log1p"])
def test_unary_promotes_ints_to_float(name):
    out = getattr(jnp, name)(jnp.arange(1, 4))
    check(out, getattr(np, name)(np.arange(1, 4)).astype(np.float32), rtol=1e-6, dtype=F32)
    assert getattr(jnp, name)(jnp.array([1, 2], jnp.int8)).dtype == F32  # JAX: not float16
    assert getattr(jnp, name)(2).weak_type  # Python scalars stay weak
    assert getattr(jnp, name)(np.array([1.0])).dtype == F32


def test_integer_rounding_functions_keep_ints():
    i = jnp.arange(-3, 3)
    for name in ["floor", "ceil", "trunc", "round"]:
        out = getattr(jnp, name)(i)
        assert out.dtype == I32
        check(out, np.arange(-3, 3, dtype=np.int32))
    check(
        jnp.round(jnp.array([0.5, 1.5, 2.5, -0.5, 1.234])),
        np.round(np.array([0.5, 1.5, 2.5, -0.5, 1.234], np.float32)),
    )
    check(jnp.round(jnp.array([1.234, 5.678]), 2), np.round(np.array([1.234, 5.678], F32), 2))


BINARY = [
    "add",
    "subtract",
    "multiply",
    "maximum",
    "minimum",
    "arctan2",
    "hypot",
    "logaddexp",
    "equal",
    "not_equal",
    "less",
    "less_equal",
    "greater",
    "greater_equal",
]


@pytest.mark.parametrize("name", BINARY)
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4), data=st.data()
)
def test_binary_broadcasting_matches_numpy(name, shapes, data):
    a = data.draw(f32_arrays(shape=shapes.input_shapes[0]))
    b = data.draw(f32_arrays(shape=shapes.input_shapes[1]))
    out = getattr(jnp, name)(jnp.asarray(a), jnp.asarray(b))
    check(out, getattr(np, name)(a, b), rtol=1e-5, atol=1e-5)
    assert out.shape == shapes.result_shape


@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4), data=st.data()
)
def test_divide_and_power_broadcast(shapes, data):
    a = data.draw(f32_arrays(shape=shapes.input_shapes[0], min_value=0.5, max_value=4))
    b = data.draw(f32_arrays(shape=shapes.input_shapes[1], min_value=0.5, max_value=4))
    check(jnp.divide(a, b), a / b, rtol=1e-6)
    check(jnp.true_divide(jnp.asarray(a), b), a / b, rtol=1e-6)
    check(jnp.power(a, b), np.power(a, b), rtol=1e-5)


def test_incompatible_shapes_raise_with_op_and_shapes():
    with pytest.raises(ValueError, match=r"add.*\(3,\).*\(4,\)"):
        jnp.add(jnp.ones(3), jnp.ones(4))
    with pytest.raises(ValueError, match="multiply"):
        jnp.ones((2, 3)) * jnp.ones((3, 2))
    with pytest.raises(ValueError, match="where"):
        jnp.where(jnp.ones(3) > 0, jnp.ones(2), 0.0)


int_pairs = st.tuples(
    hnp.arrays(I32, st.integers(1, 6), elements=st.integers(-50, 50)),
    st.integers(-7, 7).filter(lambda v: v != 0),
)


@given(int_pairs)
def test_integer_floor_divide_and_remainder_have_numpy_signs(pair):
    a, d = pair
    x = jnp.asarray(a)
    check(jnp.floor_divide(x, d), np.floor_divide(a, np.int32(d)), dtype=I32)
    check(jnp.remainder(x, d), np.remainder(a, np.int32(d)), dtype=I32)
    check(x // d, a // np.int32(d))
    check(x % d, a % np.int32(d))
    check(jnp.fmod(x, d), np.fmod(a, np.int32(d)))
    q, r = jnp.divmod(x, d)
    check(q, a // np.int32(d))
    check(r, a % np.int32(d))
    divisors = np.where(a == 0, 3, a)
    check(jnp.floor_divide(d, jnp.asarray(divisors)), np.floor_divide(np.int32(d), divisors))


@given(f32_arrays(min_value=-20, max_value=20), st.sampled_from([-3.5, -1.0, 0.75, 2.0, 7.25]))
def test_float_floor_divide_and_remainder(a, d):
    x = jnp.asarray(a)
    check(x // d, np.floor_divide(a, np.float32(d)), atol=1e-5)
    check(x % d, np.remainder(a, np.float32(d)), atol=1e-5)
    check(jnp.mod(d, x + 30.5), np.mod(np.float32(d), a + np.float32(30.5)), atol=1e-5)


def test_power_variants():
    f = jnp.array([1.0, 2.0, -3.0])
    i = jnp.array([1, 2, -3])
    check(f**2, np.array([1.0, 4.0, 9.0], F32))
    check(f**-1, np.array([1.0, 0.5, -1 / 3], F32), rtol=1e-6)
    check(i**3, np.array([1, 8, -27], np.int32))
    with np.errstate(invalid="ignore"):  # the NumPy reference warns about sqrt(-3)
        check(i**0.5, np.power(np.array([1, 2, -3], np.float32), 0.5), dtype=F32)
    check(2 ** i.astype(jnp.float32), 2.0 ** np.array([1, 2, -3], F32))
    check(jnp.power(jnp.array([2, 3]), jnp.array([10, 3])), np.array([1024, 27], np.int32))
    check(2 ** jnp.array([0, 5]), np.array([1, 32], np.int32))
    with pytest.raises(ValueError, match="negative integer powers"):
        i**-1
    assert (jnp.ones(2, jnp.float16) ** 2).dtype == np.float16


def test_clip_and_where():
    x = jnp.arange(6)
    check(jnp.clip(x, 1, 4), np.clip(np.arange(6), 1, 4).astype(np.int32))
    check(jnp.clip(x, max=3), np.minimum(np.arange(6), 3).astype(np.int32))
    check(jnp.clip(x, a_min=2), np.maximum(np.arange(6), 2).astype(np.int32))
    check(x.clip(1.5, 3.5), np.clip(np.arange(6), 1.5, 3.5).astype(F32))
    cond = np.array([[True], [False]])
    check(jnp.where(cond, x, -1.0), np.where(cond, np.arange(6), -1.0).astype(F32))
    check(jnp.where(x > 2, 1, 0), np.where(np.arange(6) > 2, 1, 0).astype(np.int32))
    check(
        jnp.where(np.arange(6) % 2, x, x * 10),
        np.where(np.arange(6) % 2, np.arange(6), np.arange(6) * 10).astype(np.int32),
    )
    assert jnp.where(True, 1.0, 2.0).weak_type


def test_logic_and_bits():
    a = np.array([True, False, True, False])
    b = np.array([True, True, False, False])
    x, y = jnp.asarray(a), jnp.asarray(b)
    check(jnp.logical_and(x, y), a & b)
    check(jnp.logical_or(x, y), a | b)
    check(jnp.logical_xor(x, y), a ^ b)
    check(jnp.logical_not(x), ~a)
    check(jnp.logical_and(jnp.arange(4), 2.0), np.logical_and(np.arange(4), 2.0))
    check(x & y, a & b)
    check(x | y, a | b)
    check(x ^ y, a ^ b)
    check(~x, ~a)
    i = np.array([5, 3, 12], np.int32)
    check(jnp.asarray(i) & 6, i & 6)
    check(~jnp.asarray(i), ~i)
    check(jnp.bitwise_xor(i, 1), i ^ 1)
    check(x + y, a | b)  # bool add is logical or, as in NumPy
    check(x * y, a & b)
    with pytest.raises(TypeError, match="floating"):
        jnp.ones(2) & jnp.ones(2)
    with pytest.raises(TypeError, match="bool"):
        x - y


def test_isnan_isinf_isfinite_and_closeness():
    v = np.array([1.0, np.nan, np.inf, -np.inf, 0.0], F32)
    for name in ["isnan", "isinf", "isfinite", "signbit"]:
        check(getattr(jnp, name)(v), getattr(np, name)(v))
    check(jnp.isnan(jnp.arange(3)), np.zeros(3, bool))
    a, b = np.array([1.0, 2.0, np.inf]), np.array([1.0 + 1e-7, 2.1, np.inf])
    check(jnp.isclose(a, b), np.isclose(a.astype(F32), b.astype(F32)))
    assert bool(jnp.allclose(jnp.ones(3), jnp.ones(3) + 1e-7))
    assert not bool(jnp.allclose(jnp.ones(3), jnp.zeros(3)))
    assert bool(jnp.array_equal(jnp.arange(3), np.arange(3)))
    assert not bool(jnp.array_equal(jnp.arange(3), jnp.arange(4)))


def test_unsigned_negative_and_abs():
    u = np.array([0, 1, 200], np.uint8)
    check(jnp.negative(u), np.negative(u))
    check(jnp.abs(u), u)
    check(jnp.sign(u), np.sign(u))
    with pytest.raises(TypeError, match="bool"):
        jnp.negative(jnp.array([True]))


def test_logaddexp_is_stable():
    out = jnp.logaddexp(
        jnp.array([1000.0, -1000.0, -np.inf]), jnp.array([1000.0, -1000.0, -np.inf])
    )
    np.testing.assert_allclose(
        np.asarray(out)[:2], [1000 + math.log(2), -1000 + math.log(2)], rtol=1e-6
    )
    assert np.asarray(out)[2] == -np.inf


# --------------------------------------------------------------------------------------------
# Reductions
# --------------------------------------------------------------------------------------------


@st.composite
def array_and_axis(draw, dtype=F32, min_dims=1):
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=4, min_side=1, max_side=4))
    if dtype == F32:
        a = draw(hnp.arrays(F32, shape, elements=finite_f32(-3, 3)))
    else:
        a = draw(
            hnp.arrays(
                dtype, shape, elements=st.integers(-5, 5) if dtype.kind == "i" else st.booleans()
            )
        )
    ndim = len(shape)
    axis = draw(
        st.one_of(
            st.none(),
            st.integers(-ndim, ndim - 1),
            st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim).map(
                lambda axes: tuple(ax - ndim if i % 2 else ax for i, ax in enumerate(axes))
            ),
        )
    )
    keepdims = draw(st.booleans())
    return a, axis, keepdims


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "prod", "var", "std"])
@given(args=array_and_axis())
def test_float_reductions_match_numpy(name, args):
    a, axis, keepdims = args
    if name == "prod":  # keep products of up to 256 factors inside float32's range
        a = (a / np.float32(3.0)).astype(F32)
    out = getattr(jnp, name)(jnp.asarray(a), axis=axis, keepdims=keepdims)
    want = getattr(np, name)(a.astype(np.float64), axis=axis, keepdims=keepdims)
    check(out, want.astype(F32), rtol=1e-4, atol=1e-4)
    method = getattr(jnp.asarray(a), name)(axis=axis, keepdims=keepdims)
    check(method, want.astype(F32), rtol=1e-4, atol=1e-4)


@given(args=array_and_axis(dtype=I32))
def test_integer_reductions_dtypes(args):
    a, axis, keepdims = args
    x = jnp.asarray(a)
    check(jnp.sum(x, axis, keepdims=keepdims), np.sum(a, axis, keepdims=keepdims), dtype=I32)
    check(jnp.max(x, axis, keepdims=keepdims), np.max(a, axis, keepdims=keepdims))
    check(
        jnp.mean(x, axis, keepdims=keepdims),
        np.mean(a, axis, keepdims=keepdims).astype(F32),
        rtol=1e-5,
        dtype=F32,
    )
    check(
        jnp.var(x, axis, keepdims=keepdims),
        np.var(a, axis, keepdims=keepdims).astype(F32),
        rtol=1e-4,
        atol=1e-4,
        dtype=F32,
    )
    small = x.astype(jnp.int8)
    assert jnp.sum(small).dtype == I32
    assert jnp.prod(small, axis).dtype == I32
    assert jnp.sum(x.astype(jnp.uint8)).dtype == np.uint32


@given(args=array_and_axis(dtype=np.dtype(bool)))
def test_bool_reductions(args):
    a, axis, keepdims = args
    x = jnp.asarray(a)
    check(jnp.all(x, axis, keepdims=keepdims), np.all(a, axis, keepdims=keepdims))
    check(jnp.any(x, axis, keepdims=keepdims), np.any(a, axis, keepdims=keepdims))
    check(jnp.sum(x, axis, keepdims=keepdims), np.sum(a, axis, keepdims=keepdims), dtype=I32)
    check(jnp.count_nonzero(x, axis), np.count_nonzero(a, axis), dtype=I32)


@given(args=array_and_axis(min_dims=1))
def test_argmax_argmin_match_numpy(args):
    a, axis, keepdims = args
    a = np.round(a)  # many ties: first occurrence must win
    if isinstance(axis, tuple):
        axis = axis[0] if axis else None
    for name in ["argmax", "argmin"]:
        out = getattr(jnp, name)(jnp.asarray(a), axis=axis, keepdims=keepdims)
        check(out, getattr(np, name)(a, axis=axis, keepdims=keepdims).astype(np.int32), dtype=I32)


def test_reduction_options_and_errors():
    x = jnp.arange(6.0).reshape(2, 3)
    check(jnp.sum(x, dtype=jnp.int32), np.array(15, np.int32))
    check(jnp.mean(jnp.arange(4), dtype=jnp.float16), np.array(1.5, np.float16))
    check(jnp.sum(x, initial=10.0), np.array(25.0, F32))
    check(jnp.max(x, axis=1, initial=4.0), np.array([4.0, 5.0], F32))
    check(jnp.sum(x, where=np.array([True, False, True])), np.array(10.0, F32))
    check(jnp.mean(x, axis=1, where=np.array([True, False, True])), np.array([1.0, 4.0], F32))
    check(jnp.var(x, ddof=1), np.var(np.arange(6.0), ddof=1).astype(F32), rtol=1e-6)
    check(
        jnp.std(x, axis=0, ddof=1),
        np.std(np.arange(6.0).reshape(2, 3), 0, ddof=1).astype(F32),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="zero-size"):
        jnp.max(jnp.zeros((0, 3)))
    with pytest.raises(ValueError, match="min.*zero-size"):
        jnp.min(jnp.zeros((2, 0)), axis=1)
    check(jnp.max(jnp.zeros((2, 0)), axis=0), np.zeros(0, F32))
    with pytest.raises(ValueError, match="argmax.*empty"):
        jnp.argmax(jnp.zeros(0))
    with pytest.raises(ValueError, match=r"sum.*axis 2.*dimension 2"):
        jnp.sum(x, axis=2)
    with pytest.raises(ValueError, match="duplicate"):
        jnp.sum(x, axis=(0, -2))
    with pytest.raises(TypeError, match="axis"):
        jnp.sum(x, axis=1.5)
    with pytest.raises(NotImplementedError, match="out"):
        jnp.sum(x, out=np.zeros(()))
    check(jnp.mean(jnp.zeros((0,))), np.array(np.nan, F32))


@given(args=array_and_axis())
def test_cumulative_reductions(args):
    a, axis, _ = args
    if isinstance(axis, tuple):
        axis = axis[0] if axis else None
    check(jnp.cumsum(a, axis), np.cumsum(a, axis), rtol=1e-4, atol=1e-4)
    check(jnp.cumprod(a, axis), np.cumprod(a, axis), rtol=1e-4, atol=1e-3)
    check(jnp.cumsum(a.astype(np.int32), axis), np.cumsum(a.astype(np.int32), axis), dtype=I32)
    check(jnp.asarray(a).cumsum(axis), np.cumsum(a, axis), rtol=1e-4, atol=1e-4)
    check(jnp.cumsum(np.array([True, True, False])), np.array([1, 2, 2], np.int32))


# --------------------------------------------------------------------------------------------
# Creation
# --------------------------------------------------------------------------------------------


def test_creation_functions():
    check(jnp.zeros(3), np.zeros(3, F32))
    check(jnp.zeros((2, 3), jnp.int32), np.zeros((2, 3), np.int32))
    check(jnp.ones([2]), np.ones(2, F32))
    check(jnp.full((2, 2), 7), np.full((2, 2), 7, np.int32))
    assert jnp.full((2,), 1.5).dtype == F32
    check(jnp.full((2, 3), jnp.arange(3)), np.broadcast_to(np.arange(3, dtype=np.int32), (2, 3)))
    check(jnp.full(3, 2, dtype=jnp.float32), np.full(3, 2.0, F32))
    x = jnp.arange(6).reshape(2, 3)
    check(jnp.zeros_like(x), np.zeros((2, 3), np.int32))
    check(jnp.ones_like(x, dtype=jnp.float32), np.ones((2, 3), F32))
    check(jnp.full_like(x, 4.7), np.full((2, 3), 4, np.int32))
    check(jnp.empty((2,)), np.zeros(2, F32))
    assert jnp.zeros_like(jnp.asarray(1.0)).weak_type
    check(jnp.eye(3), np.eye(3, dtype=F32))
    check(jnp.eye(2, 4, k=1, dtype=jnp.int32), np.eye(2, 4, k=1, dtype=np.int32))
    check(jnp.eye(3, k=-2), np.eye(3, k=-2, dtype=F32))
    check(jnp.identity(2, dtype=bool), np.identity(2, dtype=bool))
    check(jnp.tri(3, 4, 1), np.tri(3, 4, 1, dtype=F32))
    with pytest.raises(ValueError, match="negative"):
        jnp.zeros((2, -1))
    with pytest.raises(TypeError, match="shape"):
        jnp.zeros((2.5,))


@given(st.integers(-20, 20), st.integers(-20, 20), st.integers(-5, 5).filter(bool))
def test_arange_ints(start, stop, step):
    check(jnp.arange(start, stop, step), np.arange(start, stop, step).astype(np.int32))
    if stop >= 0:
        check(jnp.arange(stop), np.arange(stop).astype(np.int32))


@given(finite_f32(-10, 10), finite_f32(-10, 10), st.sampled_from([0.5, -0.25, 1.5, 3.0]))
def test_arange_floats(start, stop, step):
    want = np.arange(start, stop, step)
    if want.size > 200:
        return
    check(jnp.arange(start, stop, step), want.astype(F32), rtol=1e-5, atol=1e-5)


def test_arange_errors_and_dtypes():
    assert jnp.arange(5).dtype == I32
    assert jnp.arange(5.0).dtype == F32
    assert jnp.arange(5, dtype=jnp.float32).dtype == F32
    check(jnp.arange(3, dtype=jnp.uint8), np.arange(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="step"):
        jnp.arange(0, 5, 0)


@given(finite_f32(-5, 5), finite_f32(-5, 5), st.integers(0, 12), st.booleans())
def test_linspace(start, stop, num, endpoint):
    want = np.linspace(start, stop, num, endpoint=endpoint)
    check(jnp.linspace(start, stop, num, endpoint=endpoint), want.astype(F32), rtol=1e-5, atol=1e-5)


def test_linspace_options():
    out, step = jnp.linspace(0, 1, 5, retstep=True)
    check(out, np.linspace(0, 1, 5).astype(F32))
    np.testing.assert_allclose(float(step), 0.25)
    check(
        jnp.linspace(np.zeros(2), np.array([1.0, 2.0]), 3),
        np.linspace(np.zeros(2), np.array([1.0, 2.0]), 3).astype(F32),
    )
    check(
        jnp.linspace(np.zeros(2), np.array([1.0, 2.0]), 3, axis=1),
        np.linspace(np.zeros(2), np.array([1.0, 2.0]), 3, axis=1).astype(F32),
    )
    check(jnp.linspace(0, 10, 4, dtype=jnp.int32), np.linspace(0, 10, 4, dtype=np.int32))
    with pytest.raises(ValueError, match="non-negative"):
        jnp.linspace(0, 1, -1)


# --------------------------------------------------------------------------------------------
# Linear algebra
# --------------------------------------------------------------------------------------------

MATMUL_SHAPES = [
    ((3,), (3,)),
    ((2, 3), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)),
    ((2, 3), (5, 3, 4)),
    ((5, 2, 3), (5, 3, 4)),
    ((1, 2, 3), (5, 3, 4)),
    ((6, 1, 2, 3), (5, 3, 4)),
    ((3,), (5, 3, 4)),
    ((5, 2, 3), (3,)),
]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul_shapes(sa, sb):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(sa).astype(F32)
    b = rng.standard_normal(sb).astype(F32)
    check(jnp.matmul(a, b), np.matmul(a, b), rtol=1e-5, atol=1e-5)
    check(jnp.asarray(a) @ b, a @ b, rtol=1e-5, atol=1e-5)
    check(a @ jnp.asarray(b), a @ b, rtol=1e-5, atol=1e-5)


DOT_SHAPES = [((), (3,)), ((3,), (3,)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((2, 2, 3), (4, 3, 5))]


@pytest.mark.parametrize("sa,sb", DOT_SHAPES)
def test_dot_inner_vdot(sa, sb):
    rng = np.random.default_rng(1)
    a = rng.standard_normal(sa).astype(F32)
    b = rng.standard_normal(sb).astype(F32)
    check(jnp.dot(a, b), np.dot(a, b), rtol=1e-5, atol=1e-5)
    check(jnp.asarray(a).dot(b) if sa else jnp.dot(a, b), np.dot(a, b), rtol=1e-5, atol=1e-5)


def test_products_misc():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.arange(12, dtype=np.float32).reshape(4, 3)
    check(jnp.inner(a, b), np.inner(a, b))
    check(jnp.vdot(a, a), np.vdot(a, a))
    check(
        jnp.outer(np.arange(3), np.arange(4)), np.outer(np.arange(3), np.arange(4)).astype(np.int32)
    )
    check(jnp.outer(a, b), np.outer(a, b))
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    y = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    check(jnp.tensordot(x, y), np.tensordot(x, y))
    check(jnp.tensordot(x, y, axes=([1], [0])), np.tensordot(x, y, ([1], [0])))
    check(jnp.tensordot(x, y, axes=([1, 2], [0, 1])), np.tensordot(x, y, ([1, 2], [0, 1])))
    check(jnp.tensordot(a, b.T, axes=1), np.tensordot(a, b.T, axes=1))
    check(
        jnp.kron(np.eye(2), np.arange(4).reshape(2, 2)),
        np.kron(np.eye(2), np.arange(4).reshape(2, 2)).astype(F32),
    )
    check(jnp.matmul(jnp.arange(4), jnp.arange(4)), np.array(14, np.int32))
    check(jnp.matmul(np.eye(2, dtype=bool), np.eye(2, dtype=bool)), np.eye(2, dtype=bool))


def test_contraction_mismatch_errors():
    with pytest.raises(ValueError, match=r"matmul.*\(2, 3\).*\(4, 5\)"):
        jnp.matmul(jnp.ones((2, 3)), jnp.ones((4, 5)))
    with pytest.raises(ValueError, match="dot"):
        jnp.dot(jnp.ones(3), jnp.ones(4))
    with pytest.raises(ValueError, match="at least 1-D"):
        jnp.matmul(jnp.ones(()), jnp.ones(3))
    with pytest.raises(ValueError, match="matmul"):
        jnp.matmul(jnp.ones((2, 2, 3)), jnp.ones((3, 3, 4)))
    with pytest.raises(ValueError, match="tensordot"):
        jnp.tensordot(jnp.ones((2, 3)), jnp.ones((4, 5)), axes=1)
    with pytest.raises((ValueError, TypeError), match="einsum"):
        jnp.einsum("ij,jk->ik", jnp.ones((2, 3)), jnp.ones((4, 5)))


def _staged_shapes(fun, *args):
    """Run `fun` under the IR builder (as jit does) and return the output avals."""
    avals = [core.ShapedArray(np.shape(a), np.asarray(a).dtype, False) for a in args]
    jaxpr, _ = core.trace_to_jaxpr(lambda *xs: [fun(*xs)], avals)
    return jaxpr.out_avals


def test_contraction_mismatch_raises_under_staging():
    with pytest.raises((ValueError, TypeError), match="matmul"):
        _staged_shapes(jnp.matmul, np.ones((2, 3), F32), np.ones((4, 5), F32))
    with pytest.raises((ValueError, TypeError), match="einsum"):
        _staged_shapes(
            lambda a, b: jnp.einsum("ij,jk", a, b), np.ones((2, 3), F32), np.ones((4, 5), F32)
        )


EINSUM_CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),  # matrix product
    ("bij,bjk->bik", [(5, 2, 3), (5, 3, 4)]),  # batched matrix product
    ("i,i->", [(4,), (4,)]),  # inner product
    ("i,j->ij", [(3,), (4,)]),  # outer product
    ("ij->ji", [(2, 3)]),  # transpose
    ("ij->i", [(2, 3)]),  # row sums
    ("ij->j", [(2, 3)]),  # column sums
    ("ij,j->i", [(2, 3), (3,)]),  # matrix-vector
    ("bi,bi->b", [(5, 3), (5, 3)]),  # batched inner product
    ("ij,ij->ij", [(2, 3), (2, 3)]),  # elementwise product
    ("ii->i", [(3, 3)]),  # diagonal
    ("ii->", [(3, 3)]),  # trace
    ("ij,jk", [(2, 3), (3, 4)]),  # implicit output
    ("ba,ca", [(2, 3), (4, 3)]),  # implicit output, sorted labels
    ("...ij,...jk->...ik", [(5, 2, 3), (3, 4)]),
    ("i...,i...->...", [(3, 2, 2), (3, 1, 2)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("abc,cd,bd->a", [(2, 3, 4), (4, 5), (3, 5)]),
    ("ij->", [(2, 3)]),
    ("i,i,i->i", [(4,), (4,), (4,)]),
]


@pytest.mark.parametrize("spec,shapes", EINSUM_CASES, ids=[c[0] for c in EINSUM_CASES])
def test_einsum_matches_numpy(spec, shapes):
    rng = np.random.default_rng(2)
    ops = [rng.standard_normal(s).astype(F32) for s in shapes]
    check(jnp.einsum(spec, *ops), np.einsum(spec, *ops), rtol=1e-5, atol=1e-5)


def test_einsum_errors():
    with pytest.raises(ValueError, match="operands"):
        jnp.einsum("ij,jk->ik", jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="output label"):
        jnp.einsum("ij->k", jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        jnp.einsum("ijk->i", jnp.ones((2, 3)))
    with pytest.raises(TypeError):
        jnp.einsum(jnp.ones(3), jnp.ones(3))


def test_linalg_norm():
    v = np.array([3.0, -4.0, 12.0], F32)
    m = np.arange(6, dtype=F32).reshape(2, 3) - 2
    check(jnp.linalg.norm(v), np.linalg.norm(v), rtol=1e-6)
    for ord_ in [1, 2, np.inf, -np.inf, 0, 3]:
        check(jnp.linalg.norm(v, ord_), np.linalg.norm(v, ord_).astype(F32), rtol=1e-5)
    for ord_ in [None, "fro", 1, -1, np.inf, -np.inf]:
        check(jnp.linalg.norm(m, ord_), np.linalg.norm(m, ord_).astype(F32), rtol=1e-5)
    check(jnp.linalg.norm(m, axis=1), np.linalg.norm(m, axis=1), rtol=1e-6)
    check(
        jnp.linalg.norm(m, axis=0, keepdims=True),
        np.linalg.norm(m, axis=0, keepdims=True),
        rtol=1e-6,
    )
    check(jnp.linalg.norm(np.arange(3)), np.linalg.norm(np.arange(3)).astype(F32), rtol=1e-6)


# --------------------------------------------------------------------------------------------
# Shape manipulation
# --------------------------------------------------------------------------------------------


@given(hnp.array_shapes(min_dims=0, max_dims=4, max_side=4), st.data())
def test_reshape_with_inferred_dimension(shape, data):
    a = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
    new = data.draw(st.permutations(shape)) if shape else []
    new = list(new)
    if new and data.draw(st.booleans()):
        new[data.draw(st.integers(0, len(new) - 1))] = -1
    if any(d == 0 for d in shape) and -1 in new:
        return
    check(jnp.reshape(a, new), a.reshape(new))
    check(jnp.asarray(a).reshape(new), a.reshape(new))
    if len(new) > 1:
        check(jnp.asarray(a).reshape(*new), a.reshape(*new))
    check(jnp.ravel(a), a.ravel())


def test_reshape_errors():
    x = jnp.arange(6)
    with pytest.raises((TypeError, ValueError), match=r"reshape.*\(6,\).*\(4,\)"):
        x.reshape(4)
    with pytest.raises(ValueError, match="one unknown"):
        x.reshape(-1, -1)
    with pytest.raises((TypeError, ValueError), match="-1"):
        x.reshape(4, -1)
    with pytest.raises(TypeError):
        jnp.reshape(x, (2, 3.0))


def test_shapes_and_axes_given_as_integer_arrays_are_accepted_when_concrete():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    x = jnp.asarray(a)
    check(jnp.reshape(x, np.array([3, 2])), a.reshape(3, 2))
    check(x.reshape(jnp.array([3, 2])), a.reshape(3, 2))
    check(jnp.transpose(x, np.array([1, 0])), a.T)
    check(x.transpose(np.array([1, 0])), a.T)
    check(jnp.broadcast_to(jnp.float32(1.0), np.array([2, 2])), np.ones((2, 2), np.float32))
    assert jnp.zeros(np.array([2, 3])).shape == (2, 3)
    with pytest.raises(TypeError, match="static"):  # a traced shape cannot be one
        fnbrrr.jit(lambda v, s: jnp.reshape(v, s))(x, jnp.array([3, 2]))


@given(hnp.array_shapes(min_dims=1, max_dims=4, max_side=3), st.data())
def test_transpose_swapaxes_moveaxis(shape, data):
    a = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
    n = len(shape)
    perm = data.draw(st.permutations(range(n)))
    check(jnp.transpose(a, perm), np.transpose(a, perm))
    check(jnp.transpose(a), np.transpose(a))
    check(
        jnp.asarray(a).transpose(*perm) if n > 1 else jnp.asarray(a).transpose(perm),
        a.transpose(perm),
    )
    check(jnp.asarray(a).T, a.T)
    i, j = data.draw(st.integers(-n, n - 1)), data.draw(st.integers(-n, n - 1))
    check(jnp.swapaxes(a, i, j), np.swapaxes(a, i, j))
    check(jnp.moveaxis(a, i, j), np.moveaxis(a, i, j))
    k = data.draw(st.integers(1, 2))
    axes = data.draw(
        st.lists(
            st.integers(-n - k, n + k - 1), min_size=k, max_size=k, unique_by=lambda v: v % (n + k)
        )
    )
    check(jnp.expand_dims(a, tuple(axes)), np.expand_dims(a, tuple(axes)))


def test_shape_errors():
    x = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match="transpose"):
        jnp.transpose(x, (0,))
    with pytest.raises(ValueError, match="repeated"):
        jnp.transpose(x, (0, 0))
    with pytest.raises(ValueError, match="squeeze.*size"):
        jnp.squeeze(x, 0)
    with pytest.raises(ValueError, match=r"concatenate.*\(2, 3\).*\(2, 4\)"):
        jnp.concatenate([x, jnp.zeros((2, 4))])
    with pytest.raises(ValueError, match="zero-dimensional"):
        jnp.concatenate([jnp.zeros(()), jnp.zeros(())])
    with pytest.raises(ValueError, match="same shape"):
        jnp.stack([x, jnp.zeros((3, 2))])
    with pytest.raises(ValueError, match="equal division"):
        jnp.split(jnp.arange(5), 2)
    with pytest.raises(ValueError, match=r"broadcast_to.*\(3,\).*\(4,\)"):
        jnp.broadcast_to(jnp.arange(3), (4,))
    with pytest.raises(ValueError, match="axis"):
        jnp.moveaxis(x, 2, 0)


def test_shape_functions_match_numpy():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    check(jnp.squeeze(np.zeros((1, 3, 1))), np.zeros(3, F32))
    check(jnp.squeeze(np.zeros((1, 3, 1)), axis=-1), np.zeros((1, 3), F32))
    check(jnp.concatenate([a, a], axis=-1), np.concatenate([a, a], -1))
    check(jnp.concatenate((a, a.astype(np.int32)), axis=None), np.concatenate([a, a], None))
    check(jnp.concatenate([np.arange(2), np.arange(2.0)]), np.array([0, 1, 0, 1], F32))
    check(jnp.stack([a, a], axis=2), np.stack([a, a], 2))
    check(jnp.stack([np.arange(3)] * 2, axis=-1), np.stack([np.arange(3)] * 2, -1).astype(np.int32))
    for got, want in zip(jnp.split(a, 2), np.split(a, 2)):
        check(got, want)
    for got, want in zip(jnp.split(a, [1, 3], axis=2), np.split(a, [1, 3], axis=2)):
        check(got, want)
    for got, want in zip(jnp.array_split(np.arange(7), 3), np.array_split(np.arange(7), 3)):
        check(got, want.astype(np.int32))
    assert isinstance(jnp.split(a, 2), list)
    check(
        jnp.broadcast_to(np.arange(3), (2, 3)),
        np.broadcast_to(np.arange(3), (2, 3)).astype(np.int32),
    )
    check(jnp.broadcast_to(1.0, (2,)), np.ones(2, F32))
    x, y = jnp.broadcast_arrays(np.zeros((2, 1)), np.zeros(3))
    assert x.shape == y.shape == (2, 3)
    assert jnp.broadcast_shapes((2, 1), (3,)) == (2, 3)
    check(jnp.tile(np.array([1, 2]), (2, 2)), np.tile(np.array([1, 2]), (2, 2)).astype(np.int32))
    check(jnp.tile(a, 2), np.tile(a, 2))
    check(jnp.repeat(a, 2, axis=1), np.repeat(a, 2, axis=1))
    check(jnp.repeat(a, 3), np.repeat(a, 3))
    check(jnp.repeat(np.arange(3), [1, 0, 2]), np.repeat(np.arange(3), [1, 0, 2]).astype(np.int32))
    check(jnp.flip(a), np.flip(a))
    check(jnp.flip(a, (0, 2)), np.flip(a, (0, 2)))
    check(jnp.fliplr(a), np.fliplr(a))
    check(jnp.flipud(a), np.flipud(a))
    for shift, axis in [(1, None), (-2, None), (5, 1), ((1, 2), (0, 2)), (7, -1)]:
        check(jnp.roll(a, shift, axis), np.roll(a, shift, axis))
    check(
        jnp.hstack([np.arange(2), np.arange(3)]),
        np.hstack([np.arange(2), np.arange(3)]).astype(np.int32),
    )
    check(jnp.vstack([np.arange(3), np.arange(3)]), np.vstack([np.arange(3)] * 2).astype(np.int32))
    check(jnp.hstack([a, a]), np.hstack([a, a]))
    check(jnp.dstack([a[0], a[0]]), np.dstack([a[0], a[0]]))
    check(
        jnp.column_stack([np.arange(3), np.arange(3)]),
        np.column_stack([np.arange(3)] * 2).astype(np.int32),
    )
    check(jnp.atleast_2d(np.arange(3)), np.atleast_2d(np.arange(3)).astype(np.int32))
    check(jnp.atleast_3d(np.arange(3)), np.atleast_3d(np.arange(3)).astype(np.int32))
    check(jnp.append(np.arange(3), [[7]]), np.append(np.arange(3), [[7]]).astype(np.int32))
    for got, want in zip(
        jnp.meshgrid(np.arange(3), np.arange(2)), np.meshgrid(np.arange(3), np.arange(2))
    ):
        check(got, want.astype(np.int32))
    for got, want in zip(
        jnp.meshgrid(np.arange(3), np.arange(2), indexing="ij"),
        np.meshgrid(np.arange(3), np.arange(2), indexing="ij"),
    ):
        check(got, want.astype(np.int32))
    assert jnp.ndim(a) == 3 and jnp.shape(a) == (2, 3, 4) and jnp.size(a) == 24
    assert jnp.size(a, 1) == 3 and jnp.ndim(1.0) == 0 and jnp.shape([[1, 2]]) == (1, 2)
    parts = jnp.unstack(a, axis=1)
    assert len(parts) == 3
    check(parts[1], a[:, 1])


def test_pad_diag_trace_triangles():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    check(jnp.pad(a, 1), np.pad(a, 1))
    check(
        jnp.pad(a, ((1, 0), (2, 3)), constant_values=-1),
        np.pad(a, ((1, 0), (2, 3)), constant_values=-1),
    )
    check(
        jnp.pad(a, ((1, 2), (0, 1)), constant_values=((1, 2), (3, 4))),
        np.pad(a, ((1, 2), (0, 1)), constant_values=((1, 2), (3, 4))),
    )
    for mode in ["edge", "wrap", "reflect", "symmetric"]:
        check(jnp.pad(a, ((1, 2), (2, 1)), mode=mode), np.pad(a, ((1, 2), (2, 1)), mode=mode))
    with pytest.raises(ValueError, match="negative"):
        jnp.pad(a, -1)
    for k in [-2, -1, 0, 1, 3]:
        check(jnp.diag(a, k), np.diag(a, k))
        check(jnp.diag(np.arange(3.0), k), np.diag(np.arange(3.0), k).astype(F32))
        check(jnp.triu(a, k), np.triu(a, k))
        check(jnp.tril(a, k), np.tril(a, k))
        check(jnp.trace(a, k), np.trace(a, k))
    b = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    check(jnp.diagonal(b, 1, 2, 1), np.diagonal(b, 1, 2, 1))
    check(jnp.diagonal(b, -1, 0, 2), np.diagonal(b, -1, 0, 2))
    check(jnp.trace(b, axis1=1, axis2=2), np.trace(b, axis1=1, axis2=2))
    check(jnp.tril(b), np.tril(b))


def test_take_modes():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    idx = np.array([[0, -1], [2, 1]])
    check(jnp.take(a, idx, axis=1), np.take(a, idx, axis=1))
    check(jnp.take(a, idx), np.take(a, idx))
    check(jnp.take(a, np.array([5, 0]), axis=0, mode="clip"), np.take(a, [5, 0], 0, mode="clip"))
    check(jnp.take(a, np.array([5, -4]), axis=1, mode="wrap"), np.take(a, [5, -4], 1, mode="wrap"))
    out = np.asarray(jnp.take(a, np.array([1, 7]), axis=0))
    assert np.isnan(out[1]).all() and (out[0] == a[1]).all()  # JAX's default mode='fill'
    check(jnp.take(np.arange(3), np.array([9]), fill_value=-5), np.array([-5], np.int32))
    check(
        jnp.take_along_axis(a, np.argsort(a, axis=1), axis=1),
        np.take_along_axis(a, np.argsort(a, axis=1), axis=1),
    )


def test_nonzero_family_on_concrete_arrays():
    a = np.array([[0, 2, 0], [3, 0, 4]])
    for got, want in zip(jnp.nonzero(a), np.nonzero(a)):
        check(got, want.astype(np.int32))
    check(jnp.argwhere(a), np.argwhere(a).astype(np.int32))
    check(jnp.flatnonzero(a), np.flatnonzero(a).astype(np.int32))
    check(jnp.where(a > 1)[0], np.where(a > 1)[0].astype(np.int32))
    check(
        jnp.nonzero(np.array([0, 1, 1]), size=4, fill_value=-1)[0],
        np.array([1, 2, -1, -1], np.int32),
    )
    with pytest.raises(TypeError, match="concrete"):
        _staged_shapes(lambda x: jnp.nonzero(x)[0], np.ones(3, F32))


@pytest.mark.parametrize("reduce", [jnp.sum, jnp.prod, jnp.max, jnp.min, jnp.mean, jnp.var,
                                    jnp.std, jnp.cumsum, jnp.cumprod])
def test_reductions_of_weak_values_are_strongly_typed(reduce):
    """As in JAX: `jnp.sum(3.0)` is a strong float32, so it does not defer to a float16."""
    for value in (3.0, jnp.asarray(2.0) * 1.5):  # a Python scalar and a weak Array
        out = reduce(value)
        assert out.dtype == jnp.float32 and not out.weak_type
        assert (out + jnp.ones(2, jnp.float16)).dtype == jnp.float32


def test_an_array_built_from_a_sequence_of_weak_tracers_is_strongly_typed():
    # JAX: a list is never weakly typed, even when its elements are Python-float tracers.
    out = fnbrrr.jit(lambda a, b: jnp.array([a, b, 1.0]))(2.0, 3.0)
    assert out.dtype == np.float32 and not out.weak_type
    np.testing.assert_array_equal(np.asarray(out), [2.0, 3.0, 1.0])
    assert fnbrrr.jit(lambda a: jnp.array(a))(2.0).weak_type  # a scalar tracer stays weak
