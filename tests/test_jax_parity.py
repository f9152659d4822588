"""Differential tests: the same code run on real JAX and on fnbrrr must agree (API.md §1-8).

Each case is a function `case(jax, jnp)` written once against JAX's names; it runs on
`jax`/`jax.numpy` and on `fnbrrr`/`fnbrrr.numpy`, and the two outcomes are compared: values
(float32 to rtol 1e-4, atol 1e-5; integers and bools exactly), dtypes, weak types, shapes,
pytree containers, and, when JAX raises, the builtin exception class it raises (fnbrrr must
raise the same one). Skipped where JAX is not installed (CI); run it with the peers venv:
`/tmp/peers/bin/python -m pytest tests/test_jax_parity.py -q`.
"""

from __future__ import annotations

import functools
import math
from collections import namedtuple

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jjnp  # noqa: E402

import fnbrrr  # noqa: E402
import fnbrrr.numpy as fnp  # noqa: E402

jax.config.update("jax_enable_x64", False)
jax.config.update("jax_platforms", "cpu")

BUILTIN_ERRORS = (IndexError, KeyError, TypeError, ValueError, ZeroDivisionError, AttributeError)
Point = namedtuple("Point", ["x", "y"])


def _error_class(exc: BaseException) -> type:
    """The most specific builtin exception class `exc` is an instance of."""
    for cls in type(exc).__mro__:
        if cls in BUILTIN_ERRORS:
            return cls
    return Exception


def _run(case, lib, np_mod):
    try:
        return ("ok", case(lib, np_mod))
    except Exception as exc:  # noqa: BLE001  (the exception class is what is compared)
        return ("raised", exc)


def _is_jax_array(x):
    return isinstance(x, jax.Array)


def _compare(ours, theirs, path="out", rtol=1e-4, atol=1e-5, weak=True):
    """Assert that fnbrrr's output `ours` matches JAX's `theirs` (recursively)."""
    if theirs is None:
        assert ours is None, f"{path}: JAX gives None, fnbrrr {ours!r}"
        return
    if isinstance(theirs, tuple) and hasattr(theirs, "_fields"):
        assert type(ours).__name__ == type(theirs).__name__, f"{path}: namedtuple {type(ours)}"
    if isinstance(theirs, (tuple, list)):
        assert type(ours) is type(theirs) or (
            hasattr(theirs, "_fields") and isinstance(ours, tuple)
        ), f"{path}: container {type(ours).__name__} vs JAX {type(theirs).__name__}"
        assert len(ours) == len(theirs), f"{path}: length {len(ours)} vs JAX {len(theirs)}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            _compare(a, b, f"{path}[{i}]", rtol, atol, weak)
        return
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), f"{path}: {type(ours)} is not a dict"
        assert sorted(ours) == sorted(theirs), f"{path}: keys {sorted(ours)} vs {sorted(theirs)}"
        for k in theirs:
            _compare(ours[k], theirs[k], f"{path}[{k!r}]", rtol, atol, weak)
        return
    if isinstance(theirs, (str, bytes)):
        assert ours == theirs, f"{path}: {ours!r} vs JAX {theirs!r}"
        return
    if isinstance(theirs, (bool, int, float, complex, np.dtype, type)) and not _is_jax_array(
        theirs
    ):
        assert type(ours) is type(theirs) or (
            isinstance(theirs, (np.dtype, type)) and ours == theirs
        ), f"{path}: Python {type(ours).__name__} vs JAX {type(theirs).__name__}"
        if isinstance(theirs, float) and math.isnan(theirs):
            assert math.isnan(ours), path
        elif isinstance(theirs, float):
            assert ours == pytest.approx(theirs, rel=rtol, abs=atol), f"{path}: {ours} vs {theirs}"
        else:
            assert ours == theirs, f"{path}: {ours!r} vs JAX {theirs!r}"
        return
    if _is_jax_array(theirs):
        assert isinstance(ours, fnbrrr.Array), f"{path}: {type(ours).__name__} is not an Array"
        assert not weak or theirs.dtype == np.bool_ or getattr(ours, "weak_type", False) == theirs.weak_type, (
            f"{path}: weak_type {getattr(ours, 'weak_type', None)} vs JAX {theirs.weak_type}"
        )
    a, b = np.asarray(ours), np.asarray(theirs)
    assert a.dtype == b.dtype, f"{path}: dtype {a.dtype} vs JAX {b.dtype}"
    assert a.shape == b.shape, f"{path}: shape {a.shape} vs JAX {b.shape}"
    if a.dtype.kind in "fc":
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=path, equal_nan=True)
    else:
        np.testing.assert_array_equal(a, b, err_msg=path)


def check(case, rtol=1e-4, atol=1e-5, strict_errors=False, permissive=False, weak=True):
    """Run `case` on JAX and fnbrrr and assert the outcomes agree.

    Where JAX raises, fnbrrr must raise too, with the same builtin class; TypeError and
    ValueError count as one (API.md allows either for shape errors) unless `strict_errors`.
    `permissive`: fnbrrr may succeed where JAX refuses (API.md allows more, e.g. nested lists).
    `weak=False`: do not compare weak types (JAX's gradient of a Python scalar is weak; fnbrrr's
    is not, an ad.py difference reported to the lead).
    """
    kind_j, out_j = _run(case, jax, jjnp)
    kind_f, out_f = _run(case, fnbrrr, fnp)
    if kind_j == "raised":
        if permissive and kind_f == "ok":
            return
        assert kind_f == "raised", f"JAX raised {out_j!r}, fnbrrr returned {out_f!r}"
        want = _error_class(out_j)
        if not strict_errors and want in (TypeError, ValueError):
            want = (TypeError, ValueError)
        assert isinstance(out_f, want), f"JAX raised {want} ({out_j}), fnbrrr {out_f!r}"
        return
    if kind_f == "raised":
        raise AssertionError(f"fnbrrr raised {out_f!r}; JAX returned {out_j!r}") from out_f
    _compare(out_f, out_j, rtol=rtol, atol=atol, weak=weak)


def cases(table):
    """`pytest.mark.parametrize` over a dict name -> case."""
    return pytest.mark.parametrize("case", list(table.values()), ids=list(table))


# ---------------------------------------------------------------------------------------------
# §1 Arrays, dtypes, promotion

RNG = np.random.default_rng(0)
A23 = RNG.standard_normal((2, 3)).astype(np.float32)
B23 = RNG.standard_normal((2, 3)).astype(np.float32)
I23 = np.arange(6, dtype=np.int32).reshape(2, 3) - 2
F64 = np.linspace(-1, 1, 5)

PROMOTION = {
    "f32_plus_int": lambda j, n: n.float32(1) + 1,
    "f32_times_float": lambda j, n: n.ones(3, n.float32) * 2.0,
    "i32_times_int": lambda j, n: n.arange(3) * 2,
    "i32_times_half": lambda j, n: n.arange(3) * 0.5,
    "i32_div_int": lambda j, n: n.arange(3) / 2,
    "i32_floordiv": lambda j, n: n.arange(-3, 3) // 2,
    "i32_mod": lambda j, n: n.arange(-3, 3) % 2,
    "f32_mod": lambda j, n: n.linspace(-3, 3, 7) % 2.5,
    "i32_plus_f32": lambda j, n: n.arange(3) + n.ones(3),
    "bool_plus_int": lambda j, n: n.array([True, False]) + 1,
    "bool_plus_bool": lambda j, n: n.array([True, False]) + n.array([True, True]),
    "bool_times_float": lambda j, n: n.array([True, False]) * 1.5,
    "bool_plus_i32": lambda j, n: n.array([True, False]) + n.array([1, 2]),
    "u32_plus_int": lambda j, n: n.array([1, 2], n.uint32) + 1,
    "u32_plus_i32": lambda j, n: n.array([1, 2], n.uint32) + n.array([1, 2], n.int32),
    "u32_plus_float": lambda j, n: n.array([1, 2], n.uint32) + 1.5,
    "int_pow": lambda j, n: n.arange(4) ** 2,
    "int_pow_float": lambda j, n: n.arange(4) ** 0.5,
    "float_rpow": lambda j, n: 2.0 ** n.arange(4.0),
    "int_rpow": lambda j, n: 2 ** n.arange(4),
    "rsub": lambda j, n: 1 - n.arange(3),
    "rdiv": lambda j, n: 1 / n.arange(1, 4),
    "rfloordiv": lambda j, n: 7 // n.arange(1, 4),
    "rmod": lambda j, n: 7 % n.arange(1, 4),
    "neg_int": lambda j, n: -n.arange(3),
    "abs_builtin": lambda j, n: abs(n.arange(-2, 2)),
    "weak_scalar_array": lambda j, n: n.asarray(1.0),
    "weak_scalar_int": lambda j, n: n.asarray(3),
    "weak_sum_propagates": lambda j, n: n.asarray(1.0) + 2,
    "array_of_float": lambda j, n: n.array(1.5),
    "array_of_list": lambda j, n: n.array([1, 2.5]),
    "array_of_bool_list": lambda j, n: n.array([True, False]),
    "array_of_nested": lambda j, n: n.array([[1, 2], [3, 4]]),
    "array_f64_converted": lambda j, n: n.array(F64),
    "asarray_f64_converted": lambda j, n: n.asarray(F64),
    "array_int64_np": lambda j, n: n.array(np.arange(3, dtype=np.int64)),
    "array_dtype_arg": lambda j, n: n.array([1, 2], dtype=n.float32),
    "array_np_dtype_arg": lambda j, n: n.array([1, 2], dtype=np.float32),
    "array_dtype_str": lambda j, n: n.zeros(2, dtype="int32"),
    "array_dtype_builtin_float": lambda j, n: n.zeros(2, dtype=float),
    "array_dtype_builtin_int": lambda j, n: n.zeros(2, dtype=int),
    "array_dtype_builtin_bool": lambda j, n: n.zeros(2, dtype=bool),
    "dtype_eq": lambda j, n: (n.ones(2).dtype == n.float32, n.arange(2).dtype == n.int32),
    "dtype_is_np_dtype": lambda j, n: isinstance(n.ones(2).dtype, np.dtype),
    "float32_scalar_ctor": lambda j, n: n.float32(3),
    "int32_scalar_ctor": lambda j, n: n.int32(3.7),
    "float32_ctor_list": lambda j, n: n.float32([1, 2]),
    "astype_trunc": lambda j, n: n.array([-1.7, -0.5, 0.5, 1.7]).astype(n.int32),
    "astype_bool": lambda j, n: n.array([-1.7, 0.0, 0.5]).astype(bool),
    "astype_from_bool": lambda j, n: n.array([True, False]).astype(n.float32),
    "astype_uint32": lambda j, n: n.array([1.7, 3.2]).astype(n.uint32),
    "compare_weak": lambda j, n: n.arange(3) < 1.5,
    "eq_scalar": lambda j, n: n.arange(3) == 1,
    "and_bool": lambda j, n: n.array([True, False]) & n.array([True, True]),
    "or_bool": lambda j, n: n.array([True, False]) | n.array([False, False]),
    "invert_bool": lambda j, n: ~n.array([True, False]),
    "xor_bool": lambda j, n: n.array([True, False]) ^ n.array([True, True]),
    "and_int": lambda j, n: n.arange(4) & 2,
    "invert_int": lambda j, n: ~n.arange(4),
    "and_bool_pyscalar": lambda j, n: n.array([True, False]) & True,
    "matmul_op": lambda j, n: n.asarray(A23) @ n.asarray(B23).T,
    "rmatmul_np": lambda j, n: A23 @ n.asarray(B23).T,
    "np_on_right": lambda j, n: n.asarray(A23) + B23,
    "np_on_right_mul": lambda j, n: n.arange(3) * np.arange(3),
    "np_f64_on_right": lambda j, n: n.arange(3.0) + np.arange(3.0),
    "np_scalar_on_right": lambda j, n: n.arange(3) + np.float32(1.5),
    "np_int64_scalar": lambda j, n: n.arange(3) + np.int64(1),
    "np_f64_scalar": lambda j, n: n.ones(3) * np.float64(2),
    "float_of_scalar": lambda j, n: float(n.asarray(2.5)),
    "int_of_scalar": lambda j, n: int(n.asarray(2.5)),
    "bool_of_scalar": lambda j, n: bool(n.asarray(0.0)),
    "item_int": lambda j, n: n.asarray(3).item(),
    "item_float": lambda j, n: n.asarray([2.5]).item(),
    "float_of_size1": lambda j, n: float(n.ones((1, 1))),
    "float_of_size2": lambda j, n: float(n.ones(2)),
    "bool_of_size2": lambda j, n: bool(n.ones(2)),
    "index_dunder": lambda j, n: [10, 20, 30][n.asarray(1)],
    "setitem_raises": lambda j, n: n.zeros(3).__setitem__(0, 1.0),
    "np_asarray_dtype": lambda j, n: np.asarray(n.arange(3)).dtype,
    "np_sum": lambda j, n: float(np.sum(n.arange(4.0))),
    "np_asarray_bool": lambda j, n: np.asarray(n.arange(3) > 0).dtype,
    "shape_tuple": lambda j, n: n.zeros((2, 3)).shape,
    "ndim_size": lambda j, n: (n.zeros((2, 3)).ndim, n.zeros((2, 3)).size),
    "len": lambda j, n: len(n.zeros((4, 3))),
    "len_0d": lambda j, n: len(n.zeros(())),
    "iter": lambda j, n: list(n.arange(6).reshape(3, 2)),
    "iter_0d": lambda j, n: list(n.asarray(1.0)),
    "T": lambda j, n: n.asarray(A23).T,
    "T_1d": lambda j, n: n.arange(3).T,
    "reshape_varargs": lambda j, n: n.arange(6).reshape(3, -1),
    "reshape_tuple": lambda j, n: n.arange(6).reshape((3, 2)),
    "reshape_bad": lambda j, n: n.arange(6).reshape(4, -1),
    "reshape_two_neg": lambda j, n: n.arange(6).reshape(-1, -1),
    "transpose_none": lambda j, n: n.zeros((2, 3, 4)).transpose().shape,
    "transpose_varargs": lambda j, n: n.zeros((2, 3, 4)).transpose(1, 0, 2).shape,
    "transpose_tuple": lambda j, n: n.zeros((2, 3, 4)).transpose((2, 0, 1)).shape,
    "transpose_neg": lambda j, n: n.zeros((2, 3, 4)).transpose((-1, 0, 1)).shape,
    "ravel": lambda j, n: n.asarray(A23).ravel(),
    "squeeze_method": lambda j, n: n.zeros((1, 3, 1)).squeeze().shape,
    "squeeze_axis": lambda j, n: n.zeros((1, 3, 1)).squeeze(axis=0).shape,
    "squeeze_bad_axis": lambda j, n: n.zeros((1, 3, 1)).squeeze(axis=1),
    "methods_reduce": lambda j, n: [
        getattr(n.asarray(A23), m)(axis=ax, keepdims=kd)
        for m in ("sum", "mean", "max", "min", "prod", "var", "std")
        for ax in (None, 0, -1, (0, 1))
        for kd in (False, True)
    ],
    "methods_arg": lambda j, n: [
        n.asarray(A23).argmax(),
        n.asarray(A23).argmin(axis=1),
        n.asarray(A23).argmax(axis=-1),
    ],
    "sum_int_method": lambda j, n: n.arange(4).sum(),
    "mean_int_method": lambda j, n: n.arange(4).mean(),
    "repr_contains": lambda j, n: "Array" in repr(n.arange(3)),
    "str_no_crash": lambda j, n: isinstance(str(n.arange(3.0)), str),
    "isinstance_array": lambda j, n: isinstance(n.sin(1.0), j.Array),
    "isinstance_np_input": lambda j, n: isinstance(n.sin(np.ones(2)), j.Array),
    "pow_neg_int_exponent": lambda j, n: n.arange(1, 4) ** -1,
    "int_div_zero": lambda j, n: n.arange(3) // 0,
    "int_mod_zero": lambda j, n: n.arange(3) % 0,
    "float_div_zero": lambda j, n: n.arange(3.0) / 0,
    "bool_neg": lambda j, n: -n.array([True, False]),
    "bool_sub": lambda j, n: n.array([True, False]) - n.array([True, True]),
    "uint_neg": lambda j, n: -n.array([1, 2], n.uint32),
    "i32_overflow_wraps": lambda j, n: n.array([2**31 - 1], n.int32) + 1,
    "big_int_literal": lambda j, n: n.arange(3) + 2**40,
    "big_int_array": lambda j, n: n.array(2**40),
    "float_to_int_nan": lambda j, n: n.array([1e10, -1e10]).astype(n.int32),
}


@cases(PROMOTION)
def test_arrays_and_promotion(case):
    check(case)


# ---------------------------------------------------------------------------------------------
# §2.1 Creation

CREATION = {
    "zeros_int": lambda j, n: n.zeros(3),
    "zeros_tuple": lambda j, n: n.zeros((2, 3), n.int32),
    "zeros_list_shape": lambda j, n: n.zeros([2, 3]),
    "zeros_0d": lambda j, n: n.zeros(()),
    "ones_dtype_bool": lambda j, n: n.ones(2, bool),
    "full_float": lambda j, n: n.full((2, 2), 1.5),
    "full_int": lambda j, n: n.full(3, 7),
    "full_bool": lambda j, n: n.full(3, True),
    "full_dtype": lambda j, n: n.full(3, 7, n.float32),
    "full_array_fill": lambda j, n: n.full((2, 3), n.arange(3)),
    "full_np_f64_fill": lambda j, n: n.full(2, np.float64(1.5)),
    "zeros_like": lambda j, n: n.zeros_like(n.arange(3)),
    "zeros_like_np": lambda j, n: n.zeros_like(I23),
    "zeros_like_scalar": lambda j, n: n.zeros_like(1.5),
    "ones_like_dtype": lambda j, n: n.ones_like(n.arange(3), dtype=n.float32),
    "ones_like_f64_np": lambda j, n: n.ones_like(F64),
    "arange_int": lambda j, n: n.arange(5),
    "arange_start_stop": lambda j, n: n.arange(2, 7),
    "arange_step": lambda j, n: n.arange(2, 11, 3),
    "arange_neg_step": lambda j, n: n.arange(5, 0, -1),
    "arange_neg_step_float": lambda j, n: n.arange(1.0, -1.0, -0.25),
    "arange_float": lambda j, n: n.arange(0.0, 1.0, 0.1),
    "arange_float_stop": lambda j, n: n.arange(3.0),
    "arange_dtype": lambda j, n: n.arange(4, dtype=n.float32),
    "arange_empty": lambda j, n: n.arange(5, 2),
    "arange_np_int": lambda j, n: n.arange(np.int64(4)),
    "arange_kw": lambda j, n: n.arange(start=1, stop=4),
    "linspace": lambda j, n: n.linspace(0, 1, 5),
    "linspace_default": lambda j, n: n.linspace(0, 1),
    "linspace_noend": lambda j, n: n.linspace(0, 1, 4, endpoint=False),
    "linspace_int_dtype": lambda j, n: n.linspace(0, 10, 4, dtype=n.int32),
    "linspace_one": lambda j, n: n.linspace(2, 3, 1),
    "linspace_zero": lambda j, n: n.linspace(2, 3, 0),
    "linspace_rev": lambda j, n: n.linspace(3, -1, 9),
    "eye": lambda j, n: n.eye(3),
    "eye_rect": lambda j, n: n.eye(2, 4),
    "eye_dtype": lambda j, n: n.eye(3, dtype=n.int32),
    "eye_M_kw": lambda j, n: n.eye(3, M=2),
    "newaxis": lambda j, n: n.newaxis is None,
    "dtype_consts": lambda j, n: [np.dtype(d) for d in (n.float32, n.int32, n.uint32, n.bool_)],
    "asarray_dtype": lambda j, n: n.asarray([1, 2], dtype=n.float32),
    "asarray_of_array": lambda j, n: n.asarray(n.arange(3), n.float32),
    "array_of_arrays": lambda j, n: n.array([n.arange(2), n.arange(2)]),
    "array_mixed_list": lambda j, n: n.array([n.float32(1), 2, 3.5]),
    "array_empty_list": lambda j, n: n.array([]),
    "array_tuple": lambda j, n: n.array((1, 2, 3)),
    "array_ragged": lambda j, n: n.array([[1, 2], [3]]),
    "array_bool_to_float": lambda j, n: n.array([True, False], dtype=n.float32),
    "array_string_raises": lambda j, n: n.array("abc"),
    "zeros_neg_shape": lambda j, n: n.zeros(-1),
    "zeros_float_shape": lambda j, n: n.zeros(2.0),
}


@cases(CREATION)
def test_creation(case):
    check(case)


# ---------------------------------------------------------------------------------------------
# §2.2 Elementwise, §2.3 reductions

UNARY = ["negative", "exp", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "sqrt",
         "square", "abs", "sign"]
BINARY = ["add", "subtract", "multiply", "divide", "power", "maximum", "minimum", "equal",
          "not_equal", "less", "less_equal", "greater", "greater_equal", "logical_and",
          "logical_or"]
POS = np.abs(A23) + 0.1
INPUTS = {
    "f32": A23,
    "pos": POS,
    "i32": I23,
    "bool": I23 > 0,
    "pyfloat": 0.7,
    "pyint": 3,
    "list": [1.0, -2.0, 0.0],
    "f64np": F64,
    "specials": np.array([0.0, -0.0, np.inf, -np.inf, np.nan], np.float32),
}
ELEMENTWISE = {}
for _name in UNARY:
    for _in, _v in INPUTS.items():
        ELEMENTWISE[f"{_name}-{_in}"] = functools.partial(
            lambda j, n, name, v: getattr(n, name)(v), name=_name, v=_v
        )
_PAIRS = {
    "f32-f32": (A23, B23),
    "f32-pos_pow": (POS, B23),
    "i32-i32": (I23, np.abs(I23[::-1])),  # JAX gives garbage for negative int exponents
    "i32-pyfloat": (I23, 1.5),
    "pyint-i32": (2, I23),
    "i32-pyint": (I23, 2),
    "bool-bool": (I23 > 0, I23 > 1),
    "bool-pyint": (I23 > 0, 1),
    "f32-row": (A23, B23[0]),
    "col-row": (A23[:, :1], B23[0]),
    "f32-pyint": (A23, 3),
    "i32-f32": (I23, A23),
    "pyfloat-pyfloat": (1.5, 2.5),
    "pyint-pyint": (2, 3),
}
for _name in BINARY:
    for _in, (_a, _b) in _PAIRS.items():
        ELEMENTWISE[f"{_name}-{_in}"] = functools.partial(
            lambda j, n, name, a, b: getattr(n, name)(a, b), name=_name, a=_a, b=_b
        )
ELEMENTWISE.update({
    "add_bad_broadcast": lambda j, n: n.add(n.ones(3), n.ones(4)),
    "add_bad_broadcast_op": lambda j, n: n.ones((2, 3)) + n.ones((3, 2)),
    "logical_not": lambda j, n: n.logical_not(I23 > 0),
    "logical_not_int": lambda j, n: n.logical_not(I23),
    "logical_and_int": lambda j, n: n.logical_and(I23, 1),
    "clip_pos": lambda j, n: n.clip(A23, -0.5, 0.5),
    "clip_kw": lambda j, n: n.clip(A23, min=-0.5, max=0.5),
    "clip_min_only": lambda j, n: n.clip(A23, -0.5),
    "clip_max_only": lambda j, n: n.clip(A23, max=0.5),
    "clip_int_float": lambda j, n: n.clip(I23, 0.5, 2.5),
    "clip_int": lambda j, n: n.clip(I23, 0, 2),
    "clip_array_bounds": lambda j, n: n.clip(A23, B23, B23 + 1),
    "where": lambda j, n: n.where(A23 > 0, A23, B23),
    "where_scalars": lambda j, n: n.where(A23 > 0, 1.0, 0.0),
    "where_int_scalars": lambda j, n: n.where(A23 > 0, 1, 0),
    "where_mixed": lambda j, n: n.where(A23 > 0, I23, 0.5),
    "where_int_cond": lambda j, n: n.where(I23, A23, 0),
    "where_broadcast": lambda j, n: n.where(A23[:, :1] > 0, B23[0], 0.0),
    "all": lambda j, n: n.all(A23 > -5),
    "all_axis": lambda j, n: n.all(A23 > 0, axis=0),
    "any_axis_neg": lambda j, n: n.any(A23 > 0, axis=-1),
    "any_float": lambda j, n: n.any(A23),
    "all_empty": lambda j, n: n.all(n.zeros(0)),
    "pow_int_float_base": lambda j, n: n.power(I23, 2.0),
    "pow_zero_zero": lambda j, n: n.power(0.0, 0.0),
    "pow_neg_base_frac": lambda j, n: n.power(-2.0, 0.5),
    "pow_neg_base_int": lambda j, n: n.power(n.array([-2.0, -3.0]), 3),
    "pow_neg_base_float_int": lambda j, n: n.power(n.array([-2.0, -3.0]), 2.0),
    "sqrt_int": lambda j, n: n.sqrt(4),
    "sign_zero": lambda j, n: n.sign(n.array([-0.0, 0.0, -3.0])),
    "abs_int_min": lambda j, n: n.abs(n.array([-(2**31)], n.int32)),
    "divide_ints": lambda j, n: n.divide(7, 2),
    "true_divide": lambda j, n: n.true_divide(I23, 2),
    "floor_divide_float": lambda j, n: n.floor_divide(A23, 0.3),
    "floor_divide_neg": lambda j, n: n.floor_divide(n.array([-7, 7]), n.array([2, -2])),
    "mod_neg": lambda j, n: n.mod(n.array([-7, 7, -7.5]), n.array([2, -2, 2])),
    "remainder_float": lambda j, n: n.remainder(A23, 0.3),
    "maximum_nan": lambda j, n: n.maximum(n.array([np.nan, 1.0]), n.array([0.0, np.nan])),
    "minimum_nan": lambda j, n: n.minimum(n.array([np.nan, 1.0]), n.array([0.0, np.nan])),
    "exp_large": lambda j, n: n.exp(n.array([100.0, -100.0])),
    "log_neg": lambda j, n: n.log(n.array([-1.0, 0.0])),
})


@cases(ELEMENTWISE)
def test_elementwise(case):
    check(case, permissive=True)  # JAX refuses lists, API.md accepts them


REDUCTIONS = {}
for _name in ("sum", "mean", "max", "min", "prod", "var", "std"):
    for _in, _v in {"f32": A23, "i32": I23, "bool": I23 > 0, "f64np": F64}.items():
        for _ax in (None, 0, 1, -1, -2, (0, 1), (1, 0), (-1, 0), ()):
            if _in == "f64np" and _ax not in (None, 0, -1):
                continue
            for _kd in (False, True):
                REDUCTIONS[f"{_name}-{_in}-{_ax}-{_kd}"] = functools.partial(
                    lambda j, n, name, v, ax, kd: getattr(n, name)(v, axis=ax, keepdims=kd),
                    name=_name, v=_v, ax=_ax, kd=_kd,
                )
for _name in ("argmax", "argmin"):
    for _in, _v in {"f32": A23, "i32": I23, "bool": I23 > 0,
                    "ties": np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], np.float32)}.items():
        for _ax in (None, 0, 1, -1):
            REDUCTIONS[f"{_name}-{_in}-{_ax}"] = functools.partial(
                lambda j, n, name, v, ax: getattr(n, name)(v, axis=ax), name=_name, v=_v, ax=_ax
            )
REDUCTIONS.update({
    "sum_axis_oob": lambda j, n: n.sum(A23, axis=2),
    "sum_axis_dup": lambda j, n: n.sum(A23, axis=(0, 0)),
    "argmax_axis_oob": lambda j, n: n.argmax(A23, axis=2),
    "max_empty": lambda j, n: n.max(n.zeros((0,))),
    "argmax_empty": lambda j, n: n.argmax(n.zeros((0,))),
    "sum_empty": lambda j, n: n.sum(n.zeros((0, 3)), axis=0),
    "mean_empty": lambda j, n: n.mean(n.zeros((0,))),
    "sum_scalar": lambda j, n: n.sum(3),
    "sum_pyfloat": lambda j, n: n.sum(3.0),
    "mean_list": lambda j, n: n.mean([1, 2, 4]),
    "max_nan": lambda j, n: n.max(n.array([1.0, np.nan, 3.0])),
    "argmax_nan": lambda j, n: n.argmax(n.array([1.0, np.nan, 3.0])),
    "sum_dtype": lambda j, n: n.sum(I23, dtype=n.float32),
    "mean_dtype": lambda j, n: n.mean(A23, dtype=n.float32),
    "argmax_keepdims": lambda j, n: n.argmax(A23, axis=1, keepdims=True),
    "var_ddof": lambda j, n: n.var(A23, ddof=1),
    "std_ddof_axis": lambda j, n: n.std(A23, axis=0, ddof=1),
    "sum_u32": lambda j, n: n.sum(n.array([1, 2], n.uint32)),
    "prod_bool": lambda j, n: n.prod(n.array([True, False])),
    "max_bool": lambda j, n: n.max(n.array([True, False])),
    "var_int": lambda j, n: n.var(n.arange(4)),
})


@cases(REDUCTIONS)
def test_reductions(case):
    check(case, permissive=True)


# ---------------------------------------------------------------------------------------------
# §2.4 Linear algebra, §2.5 shapes

V3 = RNG.standard_normal(3).astype(np.float32)
W3 = RNG.standard_normal(3).astype(np.float32)
M34 = RNG.standard_normal((3, 4)).astype(np.float32)
BATCH = RNG.standard_normal((5, 2, 3)).astype(np.float32)
BATCH2 = RNG.standard_normal((5, 3, 4)).astype(np.float32)

LINALG = {
    "dot_vv": lambda j, n: n.dot(V3, W3),
    "dot_mv": lambda j, n: n.dot(A23, V3),
    "dot_vm": lambda j, n: n.dot(V3, M34),
    "dot_mm": lambda j, n: n.dot(A23, M34),
    "dot_scalar": lambda j, n: n.dot(2.0, A23),
    "dot_int": lambda j, n: n.dot(I23, np.arange(3, dtype=np.int32)),
    "dot_int_float": lambda j, n: n.dot(I23, V3),
    "dot_3d": lambda j, n: n.dot(BATCH, M34),
    "dot_bad": lambda j, n: n.dot(A23, A23),
    "matmul_mm": lambda j, n: n.matmul(A23, M34),
    "matmul_vm": lambda j, n: n.matmul(V3, M34),
    "matmul_mv": lambda j, n: n.matmul(A23, V3),
    "matmul_vv": lambda j, n: n.matmul(V3, W3),
    "matmul_batched": lambda j, n: n.matmul(BATCH, BATCH2),
    "matmul_broadcast": lambda j, n: n.matmul(BATCH, M34),
    "matmul_broadcast_batch": lambda j, n: n.matmul(BATCH[:, None], BATCH2[None, :3]),
    "matmul_batched_v": lambda j, n: n.matmul(BATCH, V3),
    "matmul_v_batched": lambda j, n: n.matmul(V3[:2], BATCH),
    "matmul_op_int": lambda j, n: n.asarray(I23) @ n.ones((3, 2), n.int32),
    "matmul_bad": lambda j, n: n.matmul(A23, A23),
    "matmul_scalar": lambda j, n: n.matmul(2.0, A23),
    "matmul_bad_batch": lambda j, n: n.matmul(BATCH, BATCH2[:4]),
    "outer": lambda j, n: n.outer(V3, W3[:2]),
    "outer_2d": lambda j, n: n.outer(A23, V3),
    "outer_int": lambda j, n: n.outer(np.arange(3), np.arange(2)),
    "einsum_mm": lambda j, n: n.einsum("ij,jk->ik", A23, M34),
    "einsum_bmm": lambda j, n: n.einsum("bij,bjk->bik", BATCH, BATCH2),
    "einsum_inner": lambda j, n: n.einsum("i,i->", V3, W3),
    "einsum_outer": lambda j, n: n.einsum("i,j->ij", V3, W3),
    "einsum_T": lambda j, n: n.einsum("ij->ji", A23),
    "einsum_rowsum": lambda j, n: n.einsum("ij->i", A23),
    "einsum_colsum": lambda j, n: n.einsum("ij->j", A23),
    "einsum_mv": lambda j, n: n.einsum("ij,j->i", A23, V3),
    "einsum_batched_inner": lambda j, n: n.einsum("bi,bi->b", A23, B23),
    "einsum_elementwise": lambda j, n: n.einsum("ij,ij->ij", A23, B23),
    "einsum_implicit": lambda j, n: n.einsum("ij,jk", A23, M34),
    "einsum_trace": lambda j, n: n.einsum("ii->", M34[:, :3]),
    "einsum_diag": lambda j, n: n.einsum("ii->i", M34[:, :3]),
    "einsum_ellipsis": lambda j, n: n.einsum("...ij,...jk->...ik", BATCH, BATCH2),
    "einsum_spaces": lambda j, n: n.einsum("ij, jk -> ik", A23, M34),
    "einsum_three": lambda j, n: n.einsum("ij,jk,k->i", A23, M34, np.ones(4, np.float32)),
    "einsum_sum_all": lambda j, n: n.einsum("ij->", A23),
    "einsum_int": lambda j, n: n.einsum("ij,jk->ik", I23, np.ones((3, 2), np.int32)),
    "einsum_mismatch": lambda j, n: n.einsum("ij,jk->ik", A23, A23),
    "einsum_mismatch_jit": lambda j, n: j.jit(lambda a, b: n.einsum("ij,jk->ik", a, b))(A23, A23),
    "matmul_mismatch_jit": lambda j, n: j.jit(lambda a, b: a @ b)(n.asarray(A23), A23),
    "einsum_bad_operands": lambda j, n: n.einsum("ij,jk->ik", A23),
}


@cases(LINALG)
def test_linalg(case):
    check(case)


SHAPES = {
    "reshape": lambda j, n: n.reshape(n.arange(6), (2, 3)),
    "reshape_neg": lambda j, n: n.reshape(n.arange(6), (-1, 2)),
    "reshape_int": lambda j, n: n.reshape(n.arange(6), 6),
    "reshape_neg_only": lambda j, n: n.reshape(A23, -1),
    "reshape_bad": lambda j, n: n.reshape(n.arange(6), (4, 2)),
    "reshape_bad_neg": lambda j, n: n.reshape(n.arange(6), (4, -1)),
    "reshape_0d": lambda j, n: n.reshape(n.ones((1, 1)), ()),
    "reshape_list": lambda j, n: n.reshape(n.arange(6), [3, 2]),
    "reshape_np_ints": lambda j, n: n.reshape(n.arange(6), (np.int64(3), np.int32(2))),
    "reshape_kw": lambda j, n: n.reshape(n.arange(6), shape=(3, 2)),
    "transpose": lambda j, n: n.transpose(BATCH),
    "transpose_axes": lambda j, n: n.transpose(BATCH, (1, 2, 0)),
    "transpose_neg": lambda j, n: n.transpose(BATCH, (-1, 0, 1)),
    "transpose_bad": lambda j, n: n.transpose(BATCH, (0, 1)),
    "transpose_dup": lambda j, n: n.transpose(BATCH, (0, 0, 1)),
    "swapaxes": lambda j, n: n.swapaxes(BATCH, 0, 2),
    "swapaxes_neg": lambda j, n: n.swapaxes(BATCH, -1, 0),
    "moveaxis": lambda j, n: n.moveaxis(BATCH, 0, -1),
    "moveaxis_tuple": lambda j, n: n.moveaxis(BATCH, (0, 1), (2, 0)),
    "moveaxis_bad": lambda j, n: n.moveaxis(BATCH, 3, 0),
    "expand_dims": lambda j, n: n.expand_dims(A23, 0),
    "expand_dims_neg": lambda j, n: n.expand_dims(A23, -1),
    "expand_dims_tuple": lambda j, n: n.expand_dims(A23, (0, 2)),
    "expand_dims_bad": lambda j, n: n.expand_dims(A23, 4),
    "squeeze": lambda j, n: n.squeeze(n.ones((1, 2, 1))),
    "squeeze_axis": lambda j, n: n.squeeze(n.ones((1, 2, 1)), axis=-1),
    "squeeze_tuple": lambda j, n: n.squeeze(n.ones((1, 2, 1)), axis=(0, 2)),
    "squeeze_bad": lambda j, n: n.squeeze(n.ones((1, 2, 1)), axis=1),
    "concat_list": lambda j, n: n.concatenate([A23, B23]),
    "concat_tuple_axis": lambda j, n: n.concatenate((A23, B23), axis=1),
    "concat_neg_axis": lambda j, n: n.concatenate((A23, B23), axis=-1),
    "concat_mixed_dtype": lambda j, n: n.concatenate([A23, I23]),
    "concat_int_bool": lambda j, n: n.concatenate([I23, I23 > 0]),
    "concat_bad": lambda j, n: n.concatenate([A23, V3]),
    "concat_one": lambda j, n: n.concatenate([A23]),
    "concat_none_axis": lambda j, n: n.concatenate([A23, B23], axis=None),
    "concat_0d": lambda j, n: n.concatenate([n.ones(()), n.ones(())]),
    "stack": lambda j, n: n.stack([A23, B23]),
    "stack_axis": lambda j, n: n.stack([A23, B23], axis=1),
    "stack_neg": lambda j, n: n.stack([A23, B23], axis=-1),
    "stack_scalars": lambda j, n: n.stack([1.0, 2.0]),
    "stack_mixed": lambda j, n: n.stack([n.float32(1), 2, 3]),
    "stack_bad": lambda j, n: n.stack([A23, V3]),
    "stack_array": lambda j, n: n.stack(n.asarray(A23)),
    "split_sections": lambda j, n: n.split(n.arange(6), 3),
    "split_indices": lambda j, n: n.split(n.arange(6), [1, 4]),
    "split_tuple_idx": lambda j, n: n.split(n.arange(6), (2,)),
    "split_axis": lambda j, n: n.split(BATCH2, 2, axis=2),
    "split_neg_axis": lambda j, n: n.split(BATCH2, 2, axis=-1),
    "split_uneven": lambda j, n: n.split(n.arange(5), 2),
    "broadcast_to": lambda j, n: n.broadcast_to(V3, (2, 3)),
    "broadcast_to_int": lambda j, n: n.broadcast_to(1.0, 3),
    "broadcast_to_bad": lambda j, n: n.broadcast_to(V3, (3, 2)),
    "broadcast_to_fewer": lambda j, n: n.broadcast_to(A23, (3,)),
    "ravel": lambda j, n: n.ravel(BATCH),
    "ravel_scalar": lambda j, n: n.ravel(3.0),
    "tile": lambda j, n: n.tile(V3, 2),
    "tile_tuple": lambda j, n: n.tile(A23, (2, 1)),
    "tile_more": lambda j, n: n.tile(V3, (2, 2)),
    "tile_fewer": lambda j, n: n.tile(A23, 2),
    "tile_zero": lambda j, n: n.tile(V3, 0),
    "repeat": lambda j, n: n.repeat(A23, 2),
    "repeat_axis": lambda j, n: n.repeat(A23, 2, axis=0),
    "repeat_neg_axis": lambda j, n: n.repeat(A23, 3, axis=-1),
    "repeat_zero": lambda j, n: n.repeat(A23, 0, axis=1),
    "repeat_scalar": lambda j, n: n.repeat(2.0, 3),
    "repeat_array_repeats": lambda j, n: n.repeat(V3, np.array([1, 0, 2])),
    "take": lambda j, n: n.take(A23, np.array([0, 2, 5])),
    "take_axis": lambda j, n: n.take(A23, np.array([2, 0]), axis=1),
    "take_neg": lambda j, n: n.take(A23, np.array([-1, 0]), axis=0),
    "take_2d_idx": lambda j, n: n.take(V3, np.array([[0, 1], [2, 2]])),
    "take_scalar_idx": lambda j, n: n.take(A23, 1, axis=1),
    "take_oob": lambda j, n: n.take(V3, np.array([5, -7])),
    "take_mode_clip": lambda j, n: n.take(V3, np.array([5, -7]), mode="clip"),
    "take_mode_wrap": lambda j, n: n.take(V3, np.array([5, -7]), mode="wrap"),
}


@cases(SHAPES)
def test_shapes(case):
    check(case)


# ---------------------------------------------------------------------------------------------
# §2.7 Indexing and §1 functional updates

X345 = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
IDX = {
    "int": lambda x: x[1],
    "neg_int": lambda x: x[-1],
    "int_int": lambda x: x[1, -2],
    "int3": lambda x: x[2, 3, 4],
    "slice": lambda x: x[1:],
    "slice_step": lambda x: x[::2],
    "slice_neg_step": lambda x: x[::-1],
    "slice_neg_step2": lambda x: x[2:0:-1, ::-2],
    "slice_neg_bounds": lambda x: x[-2:, -3:-1],
    "slice_oob": lambda x: x[1:10, -10:2],
    "slice_empty": lambda x: x[2:1],
    "ellipsis": lambda x: x[..., 1],
    "ellipsis_mid": lambda x: x[0, ..., 2],
    "ellipsis_only": lambda x: x[...],
    "none": lambda x: x[None],
    "none_mid": lambda x: x[:, None, 1],
    "none_ellipsis": lambda x: x[..., None],
    "tuple_mix": lambda x: x[1, ::2, None, -1],
    "int_array": lambda x: x[np.array([0, 2])],
    "int_array_neg": lambda x: x[np.array([-1, 0, -3])],
    "int_array_2d": lambda x: x[np.array([[0, 1], [2, 0]])],
    "int_array_axis1": lambda x: x[:, np.array([3, 0])],
    "int_array_axis2": lambda x: x[..., np.array([4, 0, 1])],
    "int_arrays_two": lambda x: x[np.array([0, 2]), np.array([1, 3])],
    "int_arrays_broadcast": lambda x: x[np.array([[0], [2]]), np.array([1, 3])],
    "int_arrays_separated": lambda x: x[np.array([0, 2]), :, np.array([1, 3])],
    "int_and_array": lambda x: x[1, np.array([0, 3])],
    "int_and_array_sep": lambda x: x[np.array([0, 1]), 1:3, 2],
    "slice_and_array": lambda x: x[1:, np.array([0, 2]), ::2],
    "array_and_none": lambda x: x[None, np.array([0, 1])],
    "zero_d_int_array": lambda x: x[np.array(1)],
    "zero_d_neg": lambda x: x[np.array(-1), 2],
    "np_int_scalar": lambda x: x[np.int64(2)],
    "int_array_oob": lambda x: x[np.array([5, -7])],
    "int_array_oob_axis1": lambda x: x[:, np.array([4, 9])],
    "int_oob": lambda x: x[3],
    "int_oob_neg": lambda x: x[-4],
    "too_many": lambda x: x[0, 0, 0, 0],
    "two_ellipsis": lambda x: x[..., ...],
    "float_index": lambda x: x[1.0],
    "float_array_index": lambda x: x[np.array([1.0])],
    "bool_mask": lambda x: x[x > 30],
    "bool_mask_row": lambda x: x[np.array([True, False, True])],
    "bool_mask_2d": lambda x: x[np.ones((3, 4), bool)],
    "bool_scalar_true": lambda x: x[True],
    "uint_array": lambda x: x[np.array([1, 2], np.uint32)],
    "empty_int_array": lambda x: x[np.array([], np.int32)],
}


def _index_case(fn, wrap):
    def case(j, n):
        x = n.asarray(X345)
        if wrap == "jit":
            return j.jit(fn)(x)
        if wrap == "fnarray":
            return fn(_FnIndexed(x, n))
        return fn(x)

    return case


class _FnIndexed:
    """Wraps an array so numpy index arrays are converted to the library's arrays first."""

    def __init__(self, x, n):
        self.x, self.n = x, n

    def __getitem__(self, idx):
        conv = lambda i: self.n.asarray(i) if isinstance(i, np.ndarray) else i  # noqa: E731
        idx = tuple(map(conv, idx)) if isinstance(idx, tuple) else conv(idx)
        return self.x[idx]


INDEXING = {}
for _name, _fn in IDX.items():
    for _wrap in ("eager", "jit", "fnarray"):
        INDEXING[f"{_name}-{_wrap}"] = _index_case(_fn, _wrap)
INDEXING.update({
    "grad_repeated_gather": lambda j, n: j.grad(lambda x: x[np.array([0, 0, 2])].sum())(
        n.arange(4.0)),
    "grad_slice": lambda j, n: j.grad(lambda x: (x[::-2, 1:] ** 2).sum())(n.asarray(A23)),
    "grad_mask": lambda j, n: j.grad(lambda x: x[x > 0].sum())(n.asarray(A23)),
    "grad_oob_gather": lambda j, n: j.grad(lambda x: x[np.array([1, 7])].sum())(n.arange(4.0)),
    "vmap_batched_index": lambda j, n: j.vmap(lambda x, i: x[i])(n.asarray(A23), np.array([2, 0])),
    "vmap_slice": lambda j, n: j.vmap(lambda x: x[::-1, None])(n.asarray(A23)),
    "jit_traced_int": lambda j, n: j.jit(lambda x, i: x[i])(n.asarray(A23), 1),
    "jit_traced_int_oob": lambda j, n: j.jit(lambda x, i: x[i])(n.asarray(A23), 5),
    "jit_traced_neg": lambda j, n: j.jit(lambda x, i: x[i])(n.asarray(A23), -1),
    "jit_dynamic_slice_start": lambda j, n: j.jit(lambda x, i: x[i:])(n.asarray(A23), 1),
})

UPDATES = {
    "set_int": lambda x: x.at[1].set(-1.0),
    "set_neg": lambda x: x.at[-1, 2].set(7.0),
    "set_slice": lambda x: x.at[:, 1:3].set(0.0),
    "set_step_neg": lambda x: x.at[::-2].set(5.0),
    "set_broadcast": lambda x: x.at[0].set(np.arange(5, dtype=np.float32)),
    "set_array_value": lambda x: x.at[0, 0].set(np.arange(5, dtype=np.float32)),
    "set_int_array": lambda x: x.at[np.array([0, 2])].set(1.0),
    "set_int_arrays": lambda x: x.at[np.array([0, 2]), np.array([1, 3])].set(-2.0),
    "add_repeated": lambda x: x.at[np.array([0, 0, 2])].add(1.0),
    "add_repeated_2": lambda x: x.at[1, np.array([0, 0, 0])].add(np.array([1.0, 2.0, 3.0])),
    "multiply": lambda x: x.at[1:].multiply(2.0),
    "multiply_repeated": lambda x: x.at[np.array([1, 1])].multiply(3.0),
    "set_oob_int_array": lambda x: x.at[np.array([1, 9])].set(-1.0),
    "add_oob_int_array": lambda x: x.at[np.array([-9, 9, 0])].add(100.0),
    "set_oob_int": lambda x: x.at[7].set(-1.0),
    "set_ellipsis": lambda x: x.at[..., 0].set(3.0),
    "set_none": lambda x: x.at[None, 0].set(3.0),
    "set_int_value_to_float": lambda x: x.at[0].set(3),
    "set_mask": lambda x: x.at[x > 50].set(0.0),
    "get": lambda x: x.at[np.array([0, 5])].get(),
    "min": lambda x: x.at[0].min(10.0),
    "max": lambda x: x.at[np.array([0, 0])].max(np.array([[[100.0]], [[200.0]]], np.float32)),
    "set_bad_shape": lambda x: x.at[0].set(np.ones(3, np.float32)),
    "divide": lambda x: x.at[0].divide(2.0),
    "power": lambda x: x.at[0].power(2.0),
    "apply": lambda x: x.at[0].apply(lambda v: v * 2),
    "set_0d_array_idx": lambda x: x.at[np.array(2)].set(1.0),
}


def _update_case(fn, wrap):
    def case(j, n):
        x = n.asarray(X345)
        if wrap == "jit":
            out = j.jit(fn)(x)
        elif wrap == "vmap":
            out = j.vmap(fn)(n.stack([x, x + 1]))
        else:
            out = fn(x)
        return out, x

    return case


for _name, _fn in UPDATES.items():
    for _wrap in ("eager", "jit", "vmap"):
        INDEXING[f"at_{_name}-{_wrap}"] = _update_case(_fn, _wrap)
INDEXING.update({
    "at_int_on_int": lambda j, n: n.arange(5).at[1].add(2.7),
    "at_grad_x_v": lambda j, n: j.grad(
        lambda x, v: (x.at[np.array([0, 0, 1])].add(v) ** 2).sum(), argnums=(0, 1))(
        n.arange(4.0), n.ones(3)),
    "at_grad_set": lambda j, n: j.grad(
        lambda x, v: (x.at[1:3].set(v) ** 2).sum(), argnums=(0, 1))(n.arange(4.0), 2.0),
    "at_grad_multiply": lambda j, n: j.grad(
        lambda x, v: (x.at[np.array([1, 1])].multiply(v)).sum(), argnums=(0, 1))(
        n.arange(1.0, 5.0), 3.0),
    "at_vmap_batched_index": lambda j, n: j.vmap(lambda x, i: x.at[i].set(0.0))(
        n.asarray(A23), np.array([2, 0])),
    "at_vmap_batched_index_add": lambda j, n: j.vmap(lambda i: n.zeros(4).at[i].add(1.0))(
        np.array([[1, 1], [0, 3]])),
    "at_vmap_value_only": lambda j, n: j.vmap(lambda v: n.zeros(3).at[1].set(v))(
        n.arange(2.0)),
    "at_jit_traced_index": lambda j, n: j.jit(lambda x, i: x.at[i].set(9.0))(n.arange(4.0), 2),
    "at_jit_traced_index_oob": lambda j, n: j.jit(lambda x, i: x.at[i].set(9.0))(
        n.arange(4.0), 7),
    "at_jit_traced_index_neg": lambda j, n: j.jit(lambda x, i: x.at[i].add(9.0))(
        n.arange(4.0), -1),
}, )


@cases(INDEXING)
def test_indexing(case):
    check(case)


# ---------------------------------------------------------------------------------------------
# §2.6 gradient conventions, §8 gradients of every listed op

TIES = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], np.float32)
KINKS = np.array([-1.0, 0.0, 0.0, 2.0], np.float32)


def _g(fn, *args, argnums=0):
    return lambda j, n: j.grad(lambda *a: n.sum(fn(n, *a)), argnums=argnums)(
        *[n.asarray(a) for a in args]
    )


GRADS = {
    "max_ties": _g(lambda n, x: n.max(x), TIES),
    "max_ties_axis": _g(lambda n, x: n.max(x, axis=1), TIES),
    "min_ties_axis0": _g(lambda n, x: n.min(x, axis=0), TIES),
    "max_ties_keepdims": _g(lambda n, x: n.max(x, axis=-1, keepdims=True) * 2, TIES),
    "amax_method": _g(lambda n, x: x.max(axis=0), TIES),
    "maximum_equal": _g(lambda n, x, y: n.maximum(x, y), KINKS, np.zeros(4, np.float32),
                        argnums=(0, 1)),
    "minimum_equal": _g(lambda n, x, y: n.minimum(x, y), KINKS, np.zeros(4, np.float32),
                        argnums=(0, 1)),
    "maximum_scalar": _g(lambda n, x: n.maximum(x, 0.0), KINKS),
    "where_branch": _g(lambda n, x: n.where(x > 0, x * 3, x * 5), KINKS),
    "where_nan_branch": _g(lambda n, x: n.where(x > 0, n.sqrt(n.abs(x)), 0.0), KINKS),
    "abs": _g(lambda n, x: n.abs(x), KINKS),
    "sign": _g(lambda n, x: n.sign(x) * x, KINKS),
    "relu": lambda j, n: j.grad(lambda x: j.nn.relu(x).sum())(n.asarray(KINKS)),
    "relu_scalar": lambda j, n: j.grad(j.nn.relu)(0.0),
    "clip_edges": _g(lambda n, x: n.clip(x, 0.0, 2.0), KINKS),
    "sqrt_zero": _g(lambda n, x: n.sqrt(x), np.array([0.0, 1.0], np.float32)),
    "pow_zero_base": _g(lambda n, x: x ** 2.5, np.array([0.0, 1.0], np.float32)),
    "pow_int_zero": _g(lambda n, x: x ** 2, np.array([0.0, -1.0], np.float32)),
    "pow_exponent": _g(lambda n, x, y: n.power(x, y), np.array([0.0, 2.0], np.float32),
                       np.array([2.0, 0.5], np.float32), argnums=(0, 1)),
    "norm_like_zero": _g(lambda n, x: n.sqrt(n.sum(x * x)), np.zeros(3, np.float32)),
    "var_grad": _g(lambda n, x: n.var(x, axis=0), A23),
    "std_grad": _g(lambda n, x: n.std(x), A23),
    "prod_with_zero": _g(lambda n, x: n.prod(x), np.array([0.0, 2.0, 3.0], np.float32)),
    "prod_two_zeros": _g(lambda n, x: n.prod(x), np.array([0.0, 0.0, 3.0], np.float32)),
    "mean_axis": _g(lambda n, x: n.mean(x, axis=(0, 1)), BATCH),
    "argmax_no_grad": _g(lambda n, x: x[n.argmax(x)], V3),
    "floor_divide": _g(lambda n, x: x // 0.5 + x % 0.5, V3),
    "round_trip_astype": _g(lambda n, x: x.astype(n.int32).astype(n.float32) + x, V3),
    "log1p_expm1": _g(lambda n, x: n.log1p(n.abs(x)) + n.expm1(x), V3),
    "tan_tanh": _g(lambda n, x: n.tan(x) + n.tanh(x), V3),
    "matmul": _g(lambda n, a, b: a @ b, A23, M34, argnums=(0, 1)),
    "matmul_vec": _g(lambda n, a, b: n.matmul(a, b), V3, M34, argnums=(0, 1)),
    "einsum": _g(lambda n, a, b: n.einsum("bij,bjk->bik", a, b), BATCH, BATCH2,
                 argnums=(0, 1)),
    "outer_dot": _g(lambda n, a, b: n.outer(a, b) + n.dot(a, b), V3, W3, argnums=(0, 1)),
    "shape_ops": _g(lambda n, x: n.concatenate([n.tile(x, (1, 2)), n.repeat(x, 2, axis=1)])
                    * n.arange(24.0).reshape(4, 6), A23),
    "split_stack": _g(lambda n, x: n.stack(n.split(x, 3, axis=1)) ** 2, A23),
    "take_repeated": _g(lambda n, x: n.take(x, np.array([0, 0, 4])) ** 2, A23),
    "broadcast_to": _g(lambda n, x: n.broadcast_to(x, (4, 3)) * n.arange(12.0).reshape(4, 3),
                       V3),
    "softmax_like": _g(lambda n, x: n.exp(x) / n.sum(n.exp(x)) * n.arange(3.0), V3),
    "grad_int_input_raises": lambda j, n: j.grad(lambda x: x * 1.0)(n.arange(3)),
    "grad_pyint_raises": lambda j, n: j.grad(lambda x: x * 1.0)(3),
    "grad_bool_raises": lambda j, n: j.grad(lambda x: x * 1.0)(True),
    "grad_pyfloat": lambda j, n: j.grad(lambda x: x * x)(3.0),
    "grad_nonscalar_raises": lambda j, n: j.grad(lambda x: x * 2)(n.ones(3)),
}


@cases(GRADS)
def test_gradients(case):
    check(case, weak=False)


def _second(fn, x):
    return lambda j, n: j.grad(j.grad(lambda v: fn(n, v)))(x)


SECOND = {
    "tanh": _second(lambda n, v: n.tanh(v), 0.3),
    "exp_sin": _second(lambda n, v: n.exp(n.sin(v)), 0.7),
    "log_sqrt": _second(lambda n, v: n.log(n.sqrt(v)), 1.7),
    "pow": _second(lambda n, v: v ** 3.5, 1.3),
    "sigmoid": lambda j, n: j.grad(j.grad(j.nn.sigmoid))(0.4),
    "gelu": lambda j, n: j.grad(j.grad(j.nn.gelu))(0.4),
    "gelu_exact": lambda j, n: j.grad(j.grad(lambda v: j.nn.gelu(v, approximate=False)))(0.4),
    "silu": lambda j, n: j.grad(j.grad(j.nn.silu))(-0.4),
    "logsumexp": lambda j, n: j.hessian(j.nn.logsumexp)(n.asarray(V3)),
    "softmax": lambda j, n: j.hessian(lambda v: j.nn.softmax(v)[0])(n.asarray(V3)),
    "third": lambda j, n: j.grad(j.grad(j.grad(lambda v: n.sin(v) * v ** 2)))(0.9),
}


@cases(SECOND)
def test_second_derivatives(case):
    check(case, rtol=2e-3, atol=1e-4, weak=False)
