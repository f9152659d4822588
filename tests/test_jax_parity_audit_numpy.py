"""JAX-parity cases found by the audit of API.md §1, §2 and §8 (edge cases that
`test_jax_parity.py` does not cover): each runs on JAX and on fnbrrr and the outcomes are
compared with that file's `check`. Their JAX-free twins are in `tests/test_audit_numpy.py`.
Run with the peers venv: `/tmp/peers/bin/python -m pytest tests/test_jax_parity_audit_numpy.py`.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("jax")

from test_jax_parity import cases, check  # noqa: E402

X34 = np.arange(12.0, dtype=np.float32).reshape(3, 4)
OOB = np.array([5, -7, 1])


def _grad_sum(fn, x):
    return lambda j, n: j.grad(lambda v: n.sum(fn(j, n, v)))(n.asarray(x))


OUT_OF_RANGE_GATHERS = {
    "getitem": _grad_sum(lambda j, n, v: v[OOB], np.arange(3.0, dtype=np.float32)),
    "getitem_jit": lambda j, n: j.jit(j.grad(lambda v: v[OOB].sum()))(n.arange(3.0)),
    "getitem_traced_index": lambda j, n: j.jit(j.grad(lambda v, i: v[i].sum()))(
        n.arange(3.0), OOB),
    "getitem_axis1": _grad_sum(lambda j, n, v: v[:, np.array([4, 9, -9])], X34),
    "getitem_two_arrays": _grad_sum(lambda j, n, v: v[np.array([0, 5]), np.array([9, 1])], X34),
    "take": _grad_sum(lambda j, n, v: n.take(v, OOB), np.arange(3.0, dtype=np.float32)),
    "take_clip": _grad_sum(lambda j, n, v: n.take(v, OOB, mode="clip"),
                           np.arange(3.0, dtype=np.float32)),
    "take_wrap": _grad_sum(lambda j, n, v: n.take(v, OOB, mode="wrap"),
                           np.arange(3.0, dtype=np.float32)),
    "take_along_axis": _grad_sum(
        lambda j, n, v: n.take_along_axis(v, np.array([[5, 0]] * 3), axis=1), X34),
    "take_along_axis_clip": _grad_sum(
        lambda j, n, v: n.take_along_axis(v, np.array([[5, 0]] * 3), axis=1, mode="clip"), X34),
    "take_along_axis_in_bounds": _grad_sum(
        lambda j, n, v: n.take_along_axis(v, np.array([[5, 0]] * 3), axis=1,
                                          mode="promise_in_bounds"), X34),
    "at_get": _grad_sum(lambda j, n, v: v.at[OOB].get(), np.arange(3.0, dtype=np.float32)),
    "at_get_clip": _grad_sum(lambda j, n, v: v.at[OOB].get(mode="clip"),
                             np.arange(3.0, dtype=np.float32)),
    "at_get_fill": _grad_sum(lambda j, n, v: v.at[OOB].get(mode="fill"),
                             np.arange(3.0, dtype=np.float32)),
    "vmap_grad": lambda j, n: j.vmap(j.grad(lambda x, i: x[i].sum()))(
        n.asarray(X34), np.array([[5, 0], [1, -9], [2, 2]])),
    "jvp": lambda j, n: j.jvp(lambda x: x[np.array([5, 1])], (n.arange(3.0),), (n.ones(3),)),
    "jacrev": lambda j, n: j.jacrev(lambda x: x[np.array([5, 1])])(n.arange(3.0)),
    "traced_scalar_index": lambda j, n: j.jit(j.grad(lambda x, i: x[i]))(n.arange(3.0), 5),
    "static_int": lambda j, n: j.grad(lambda x: x[5])(n.arange(3.0)),
}


@cases(OUT_OF_RANGE_GATHERS)
def test_out_of_range_gather_gradients(case):
    check(case)


BOOLS = np.array([True, False, True, False])
DIVISION_AND_POWERS = {
    "float_floor_divide_by_zero": lambda j, n: n.array([1.0, -1.0, 0.0, 3.0]) // 0.0,
    "float_divmod_by_zero": lambda j, n: n.divmod(n.array([1.0, -1.0, 3.0]), 0.0)[0],
    "floor_divide_by_inf": lambda j, n: n.array([1.0, -1.0]) // n.inf,
    "remainder_by_inf": lambda j, n: n.array([3.0, -3.0]) % n.inf,
    "floor_divide_0d_by_1d_zero": lambda j, n: n.floor_divide(3.0, n.array([0.0, 2.0])),
    "bool_floor_divide_dtype": lambda j, n: (n.asarray(BOOLS) // True).dtype,
    "bool_remainder": lambda j, n: n.asarray(BOOLS) % n.array([True] * 4),
    "bool_fmod": lambda j, n: n.fmod(n.asarray(BOOLS), True),
    "bool_divmod": lambda j, n: n.divmod(n.asarray(BOOLS), n.array([True] * 4)),
    "weak_int_power": lambda j, n: n.asarray(2) ** n.asarray(3),
    "bool_power_int": lambda j, n: n.asarray(BOOLS) ** 2,
    "bool_power_negative": lambda j, n: n.asarray(BOOLS) ** -1,
    "weak_float_power_int": lambda j, n: n.asarray(2.0) ** 3,
}


@cases(DIVISION_AND_POWERS)
def test_division_and_powers(case):
    check(case)


U8 = np.array([1, 2, 250, 0], np.uint8)
PYTHON_INTS = {
    "u8_plus_300": lambda j, n: n.asarray(U8) + 300,
    "i8_plus_300": lambda j, n: n.array([1, -2], np.int8) + 300,
    "u32_plus_minus_one": lambda j, n: n.array([1, 0], n.uint32) + (-1),
    "u32_less_minus_one": lambda j, n: n.array([1, 0], n.uint32) < -1,
    "u8_times_256": lambda j, n: n.asarray(U8) * 256,
    "left_operand": lambda j, n: 300 + n.asarray(U8),
    "where_u8": lambda j, n: n.where(n.array([True, False, True, False]), n.asarray(U8), 300),
    "maximum_i8": lambda j, n: n.maximum(n.array([1], np.int8), 200),
    "clip_u8": lambda j, n: n.clip(n.asarray(U8), -1, 300),
    "i32_plus_2_31": lambda j, n: n.arange(3) + 2**31,
    "i32_plus_minus_2_31": lambda j, n: n.arange(3) + (-2**31),
    "f32_times_2_40": lambda j, n: n.ones(3) * 2**40,
    "u32_plus_3e9": lambda j, n: n.array([1], n.uint32) + 3_000_000_000,
    "u32_scalar_3e9": lambda j, n: n.uint32(3_000_000_000),
    "full_u32_3e9": lambda j, n: n.full(2, 3_000_000_000, n.uint32),
}


@cases(PYTHON_INTS)
def test_python_int_operands(case):
    check(case, strict_errors=True)


EMPTY = np.zeros((0, 3), np.float32)
REDUCTIONS = {
    "argmax_empty_rows": lambda j, n: n.argmax(EMPTY, axis=1),
    "argmin_empty_rows_keepdims": lambda j, n: n.argmin(EMPTY, axis=-1, keepdims=True),
    "argmax_empty_rows_jit": lambda j, n: j.jit(lambda a: n.argmax(a, axis=1))(EMPTY),
    "argmax_empty_axis": lambda j, n: n.argmax(EMPTY, axis=0),
    "argmin_empty_all": lambda j, n: n.argmin(EMPTY),
    "cumsum_u8": lambda j, n: n.cumsum(n.array([1, 255, 2], np.uint8)),
    "cumprod_i8": lambda j, n: n.cumprod(n.array([1, 100, 2], np.int8)),
    "cumsum_bool": lambda j, n: n.cumsum(n.array([True, True])),
    "cumprod_bool": lambda j, n: n.cumprod(n.array([True, False])),
}


@cases(REDUCTIONS)
def test_reduction_edge_cases(case):
    check(case)


CREATION_AND_SHAPES = {
    "array_int_beyond_int32": lambda j, n: n.array([2**31]),
    "array_negative_to_uint32": lambda j, n: n.array([-1], n.uint32),
    "asarray_list_u8_overflow": lambda j, n: n.asarray([300], np.uint8),
    "array_u32_max": lambda j, n: n.array([2**32 - 1], n.uint32),
    "array_nan_to_int": lambda j, n: n.array([np.nan], n.int32),
    "array_floats_to_int": lambda j, n: n.array([1.7, -1.7], n.int32),
    "array_tuple_dtype": lambda j, n: n.array((1, 2), n.float32),
    "arange_zero_step": lambda j, n: n.arange(0, 5, 0),
    "repeat_0d_axis0": lambda j, n: n.repeat(n.asarray(2.0), 3, axis=0),
    "repeat_0d_axis_neg": lambda j, n: n.repeat(n.asarray(2.0), 2, axis=-1),
    "take_bad_mode": lambda j, n: n.take(n.ones(3), np.array([0]), mode="foo"),
}


@cases(CREATION_AND_SHAPES)
def test_creation_and_shapes(case):
    check(case, strict_errors=True)
