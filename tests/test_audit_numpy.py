"""Pinned regressions from the JAX-parity audit of API.md §1, §2 and §8, checked without JAX.

Each test writes out the expected semantics (JAX's, where they differ from NumPy) with a NumPy
oracle, finite differences or explicit values; `tests/test_jax_parity_audit_numpy.py` checks
the same cases against JAX itself where it is installed.
"""

from __future__ import annotations

import numpy as np
import pytest

import fnbrrr
import fnbrrr.numpy as jnp

# --------------------------------------------------------------------------------------------
# Gathers at out-of-range indices: the value is the clamped element, but the gradient is
# dropped (JAX's x[idx], take, take_along_axis and at[].get), except with mode="clip".

OOB = np.array([5, -7, 1])  # on 3 elements: 5 clamps to 2, -7 (-4 after wrapping) to 0


def _traced_getitem(v):
    return fnbrrr.jit(lambda a, i: a[i])(v, OOB)


GATHERS = {  # name: (function of x = [0, 1, 2], its value, the gradient of its sum)
    "getitem": (lambda v: v[OOB], [2.0, 0.0, 1.0], [0.0, 1.0, 0.0]),
    "getitem_traced_index": (_traced_getitem, [2.0, 0.0, 1.0], [0.0, 1.0, 0.0]),
    "take_fill": (lambda v: jnp.take(v, OOB, fill_value=-1.0), [-1.0, -1.0, 1.0],
                  [0.0, 1.0, 0.0]),
    "take_clip": (lambda v: jnp.take(v, OOB, mode="clip"), [2.0, 0.0, 1.0], [1.0, 1.0, 1.0]),
    "take_wrap": (lambda v: jnp.take(v, OOB, mode="wrap"), [2.0, 2.0, 1.0], [0.0, 1.0, 2.0]),
    "at_get": (lambda v: v.at[OOB].get(), [2.0, 0.0, 1.0], [0.0, 1.0, 0.0]),
    "at_get_clip": (lambda v: v.at[OOB].get(mode="clip"), [2.0, 0.0, 1.0], [1.0, 1.0, 1.0]),
    "take_along_axis_in_bounds": (
        lambda v: jnp.take_along_axis(v, OOB, axis=0, mode="promise_in_bounds"),
        [2.0, 0.0, 1.0], [0.0, 1.0, 0.0]),
    "take_along_axis_clip": (lambda v: jnp.take_along_axis(v, OOB, axis=0, mode="clip"),
                             [2.0, 0.0, 1.0], [1.0, 1.0, 1.0]),
}


@pytest.mark.parametrize("wrap", ["eager", "jit"])
@pytest.mark.parametrize("name", list(GATHERS))
def test_out_of_range_gather_value_is_clamped_and_gradient_dropped_unless_clip(name, wrap):
    fn, value, gradient = GATHERS[name]
    x = jnp.arange(3.0)
    grad_fn = fnbrrr.grad(lambda v: jnp.sum(fn(v)))
    if wrap == "jit":
        fn, grad_fn = fnbrrr.jit(fn), fnbrrr.jit(grad_fn)
    np.testing.assert_array_equal(np.asarray(fn(x)), value)
    np.testing.assert_array_equal(np.asarray(grad_fn(x)), gradient)


def test_out_of_range_gather_gradient_under_vmap_and_jacrev():
    x = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    idx = np.array([[5, 0], [1, -9], [2, 2]])
    grads = fnbrrr.vmap(fnbrrr.grad(lambda row, i: jnp.sum(row[i])))(jnp.asarray(x), idx)
    expected = np.zeros((3, 4), np.float32)
    for r, (a, b) in enumerate(idx):
        for i in (a, b):
            i = i + 4 if i < 0 else i
            if 0 <= i < 4:
                expected[r, i] += 1.0
    np.testing.assert_array_equal(np.asarray(grads), expected)
    jac = fnbrrr.jacrev(lambda v: v[np.array([5, 1])])(jnp.arange(3.0))
    np.testing.assert_array_equal(np.asarray(jac), [[0, 0, 0], [0, 1, 0]])
    # Forward mode differentiates the clamped value, as JAX's jvp does.
    _, tangent = fnbrrr.jvp(lambda v: v[np.array([5, 1])], (jnp.arange(3.0),),
                            (jnp.array([1.0, 2.0, 3.0]),))
    np.testing.assert_array_equal(np.asarray(tangent), [3.0, 2.0])


# --------------------------------------------------------------------------------------------
# Division and powers: NumPy's float floor division by zero, JAX's result types.


def test_float_floor_divide_by_zero_is_true_division_as_in_numpy():
    x = np.array([1.0, -1.0, 0.0, 3.0], np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.floor_divide(x, np.float32(0.0))  # [inf, -inf, nan, inf]
    for out in (jnp.floor_divide(x, 0.0), jnp.asarray(x) // 0.0, jnp.divmod(x, 0.0)[0],
                fnbrrr.jit(lambda a: a // 0.0)(x)):
        np.testing.assert_array_equal(np.asarray(out), expected)
    # A 0-d dividend and a 1-d divisor broadcast as before.
    np.testing.assert_array_equal(np.asarray(jnp.floor_divide(3.0, jnp.array([0.0, 2.0]))),
                                  [np.inf, 1.0])


@pytest.mark.parametrize("fn", [jnp.floor_divide, jnp.remainder, jnp.fmod,
                                lambda a, b: jnp.divmod(a, b)[0]])
def test_integer_division_of_bools_gives_the_default_int(fn):
    out = fn(jnp.array([True, True]), jnp.array([True, True]))
    assert out.dtype == np.int32 and not out.weak_type


def test_power_result_types():
    weak = jnp.asarray(2) ** jnp.asarray(3)  # two weak ints: a weak int
    assert (int(weak), weak.dtype, weak.weak_type) == (8, np.int32, True)
    strong = jnp.array([True, False]) ** 2  # the base alone decides: a strong int32
    assert strong.dtype == np.int32 and not strong.weak_type
    np.testing.assert_array_equal(np.asarray(strong), [1, 0])
    with pytest.raises(TypeError):
        jnp.array([True]) ** -1


# --------------------------------------------------------------------------------------------
# Python int operands: they must fit the default int type, then wrap into narrower dtypes.


@pytest.mark.parametrize("fn, expected, dtype", [
    (lambda: jnp.array([1], np.uint8) + 300, [45], np.uint8),
    (lambda: jnp.array([1], np.int8) + 300, [45], np.int8),
    (lambda: jnp.array([1], np.uint32) + (-1), [0], np.uint32),
    (lambda: jnp.array([1], np.uint32) < -1, [True], np.bool_),
    (lambda: jnp.maximum(jnp.array([1], np.int8), 200), [1], np.int8),  # 200 wraps to -56
    (lambda: jnp.clip(jnp.array([1, 200], np.uint8), -1, 300), [44, 44], np.uint8),
    (lambda: 300 + jnp.array([1], np.uint8), [45], np.uint8),
])
def test_python_int_wraps_into_a_narrower_integer_dtype(fn, expected, dtype):
    out = fn()
    assert out.dtype == dtype
    np.testing.assert_array_equal(np.asarray(out), expected)


@pytest.mark.parametrize("fn", [
    lambda: jnp.arange(3) + 2**31,
    lambda: jnp.ones(3) * 2**40,
    lambda: jnp.array([1], np.uint32) + 3_000_000_000,
    lambda: 2**40 - jnp.arange(3),
])
def test_python_int_beyond_the_default_int_raises_overflow_error(fn):
    with pytest.raises(OverflowError):
        fn()


# --------------------------------------------------------------------------------------------
# Reductions


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_arg_extremum_over_a_nonempty_axis_of_an_empty_array(name):
    z = np.zeros((0, 3), np.float32)
    for axis, keepdims, shape in ((1, False, (0,)), (-1, True, (0, 1))):
        out = getattr(jnp, name)(z, axis=axis, keepdims=keepdims)
        assert out.shape == shape and out.dtype == np.int32
    assert fnbrrr.jit(lambda a: getattr(jnp, name)(a, axis=1))(z).shape == (0,)
    for axis in (0, None):  # the reduced axis is empty: nothing to pick
        with pytest.raises(ValueError):
            getattr(jnp, name)(z, axis=axis)


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
def test_cumulative_sum_and_product_keep_narrow_integer_dtypes(name):
    x = np.array([1, 255, 2], np.uint8)
    out = getattr(jnp, name)(x)
    assert out.dtype == np.uint8  # wraps modulo 256, as JAX's does
    np.testing.assert_array_equal(np.asarray(out), getattr(np, name)(x, dtype=np.uint8))
    assert getattr(jnp, name)(np.array([True, True])).dtype == np.int32


# --------------------------------------------------------------------------------------------
# Creation and shapes


@pytest.mark.parametrize("fn", [
    lambda: jnp.array([2**31]),  # Python ints beyond int32 raise rather than wrap
    lambda: jnp.array([[1, -2**31 - 1]]),
    lambda: jnp.array([-1], jnp.uint32),  # NumPy's conversion: no negative unsigned
    lambda: jnp.asarray([300], jnp.uint8),
])
def test_python_int_lists_that_overflow_raise(fn):
    with pytest.raises(OverflowError):
        fn()


def test_python_int_lists_in_range_convert_exactly():
    np.testing.assert_array_equal(np.asarray(jnp.array([2**32 - 1], jnp.uint32)), [2**32 - 1])
    np.testing.assert_array_equal(np.asarray(jnp.array([-2**31, 2**31 - 1])),
                                  [-2**31, 2**31 - 1])
    assert jnp.array((1, 2), jnp.float32).dtype == np.float32
    with pytest.raises(ValueError):
        jnp.array([np.nan], jnp.int32)


def test_arange_with_zero_step_raises_zero_division_error():
    with pytest.raises(ZeroDivisionError):
        jnp.arange(0, 5, 0)


@pytest.mark.parametrize("axis", [0, -1, None])
def test_repeat_of_a_0d_array_is_a_1d_repeat(axis):
    out = jnp.repeat(jnp.asarray(2.0), 3, axis=axis)
    np.testing.assert_array_equal(np.asarray(out), [2.0, 2.0, 2.0])


def test_take_with_an_unknown_mode_raises_value_error():
    with pytest.raises(ValueError):
        jnp.take(jnp.ones(3), np.array([0]), mode="foo")
    with pytest.raises(NotImplementedError):
        jnp.take(jnp.ones(3), np.array([0]), mode="raise")
