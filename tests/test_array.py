"""Tests for the Array type as fnbrrr.numpy equips it: operators, methods, repr, NumPy interop,
scalar types and dtype helpers."""

from __future__ import annotations

import operator
import pickle

import numpy as np
import pytest

import fnbrrr
import fnbrrr.numpy as jnp
from fnbrrr import core

F32 = np.dtype("float32")
I32 = np.dtype("int32")


def assert_same(actual, expected, dtype=None):
    assert isinstance(actual, core.Array), type(actual)
    expected = np.asarray(expected)
    assert actual.dtype == (np.dtype(dtype) if dtype else expected.dtype)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(
        np.asarray(actual, np.float64), expected.astype(np.float64), rtol=1e-6
    )


BINARY_OPS = [
    operator.add,
    operator.sub,
    operator.mul,
    operator.truediv,
    operator.floordiv,
    operator.mod,
    operator.pow,
    operator.lt,
    operator.le,
    operator.gt,
    operator.ge,
    operator.eq,
    operator.ne,
]


@pytest.mark.parametrize("op", BINARY_OPS, ids=lambda op: op.__name__)
def test_operators_with_arrays_scalars_and_numpy(op):
    an = np.array([[1.5, 2.0, 3.0], [0.5, 4.0, 2.5]], np.float32)
    bn = np.array([2.0, 0.5, 3.0], np.float32)
    a, b = jnp.asarray(an), jnp.asarray(bn)
    assert_same(op(a, b), op(an, bn))
    assert_same(op(a, bn), op(an, bn))  # fnbrrr on the left, NumPy on the right
    assert_same(op(an, b), op(an, bn))  # NumPy on the left gives an fnbrrr result
    assert_same(op(a, 2.0), op(an, np.float32(2.0)))
    assert_same(op(3.0, a), op(np.float32(3.0), an))


def test_integer_operators_and_reflected_forms():
    an = np.array([7, -7, 3], np.int32)
    a = jnp.asarray(an)
    assert_same(a + 1, an + 1)
    assert_same(1 - a, 1 - an)
    assert_same(2 * a, 2 * an)
    assert_same(10 // a, 10 // an)
    assert_same(10 % a, 10 % an)
    assert_same(a // 2, an // 2)
    assert_same(a % 2, an % 2)
    assert_same(a / 2, (an / 2).astype(F32))
    assert_same(2 ** jnp.array([1, 3]), np.array([2, 8], np.int32))
    assert_same(-a, -an)
    assert_same(+a, an)
    assert_same(abs(a), np.abs(an))
    assert_same(~a, ~an)
    assert_same(a & 3, an & 3)
    assert_same(3 | a, 3 | an)
    assert_same(a ^ 1, an ^ 1)
    q, r = divmod(a, 4)
    assert_same(q, an // 4)
    assert_same(r, an % 4)
    m = jnp.ones((2, 3))
    assert_same(m @ np.ones((3, 2), np.float32), np.full((2, 2), 3.0, F32))
    assert_same(np.ones((4, 2), np.float32) @ m, np.full((4, 3), 2.0, F32))
    assert_same(round(jnp.array([1.26, 2.5]), 1), np.round(np.array([1.26, 2.5], F32), 1))
    assert round(jnp.asarray(2.6)) == 3


def test_unknown_operand_types_give_notimplemented():
    x = jnp.arange(3)
    with pytest.raises(TypeError):
        x + [1, 2, 3]
    with pytest.raises(TypeError):
        x * "a"

    class Other:
        def __radd__(self, other):
            return "other handled it"

    assert x + Other() == "other handled it"
    assert (x == "a") is False  # NotImplemented both ways: Python falls back to identity


def test_numpy_interop_both_ways():
    x = jnp.arange(4.0)
    n = np.asarray(x)
    assert isinstance(n, np.ndarray) and n.dtype == F32
    assert np.array(x).dtype == F32
    with pytest.raises(ValueError):
        n[0] = 3.0  # the view on an immutable array is read-only
    total = np.sum(x)
    assert float(total) == 6.0
    assert float(np.mean(x)) == 1.5
    assert isinstance(np.sin(x), np.ndarray)  # ufuncs convert to NumPy
    out = np.float32(2.0) * x
    assert isinstance(out, core.Array)
    assert isinstance(np.arange(4.0) + x, core.Array)
    assert isinstance(np.arange(4.0) < x, core.Array)
    assert_same(np.arange(4.0) + x, np.arange(4.0, dtype=F32) * 2)


def test_repr_matches_jax_style():
    assert repr(jnp.array([1.0, 2.0])) == "Array([1., 2.], dtype=float32)"
    assert repr(jnp.array([1, 2])) == "Array([1, 2], dtype=int32)"
    assert repr(jnp.asarray(1.0)) == "Array(1., dtype=float32, weak_type=True)"
    assert repr(jnp.zeros((2, 2))) == "Array([[0., 0.],\n       [0., 0.]], dtype=float32)"
    assert str(jnp.array([1, 2])) == "[1 2]"
    assert f"{jnp.asarray(1.5):.2f}" == "1.50"


def test_scalar_conversions_and_python_protocols():
    x = jnp.asarray(2.5)
    assert float(x) == 2.5 and int(x) == 2 and bool(x) is True
    assert x.item() == 2.5
    assert len(jnp.zeros((3, 2))) == 3
    assert [int(v) for v in jnp.arange(3)] == [0, 1, 2]
    with pytest.raises(TypeError):
        len(jnp.asarray(1.0))
    with pytest.raises(TypeError, match="unhashable"):
        hash(jnp.arange(2))
    assert list(range(10))[jnp.asarray(3)] == 3
    y = pickle.loads(pickle.dumps(jnp.arange(3)))
    assert_same(y, np.arange(3, dtype=np.int32))


def test_immutability():
    x = jnp.arange(3)
    with pytest.raises(TypeError, match=r"immutable.*\.at\["):
        x[1] = 10
    y = x.at[1].set(10)
    assert_same(x, np.arange(3, dtype=np.int32))
    assert_same(y, np.array([0, 10, 2], np.int32))


def test_methods():
    an = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 10
    a = jnp.asarray(an)
    assert_same(a.reshape(6, 4), an.reshape(6, 4))
    assert_same(a.reshape((4, -1)), an.reshape(4, -1))
    assert_same(a.reshape(-1), an.reshape(-1))
    assert_same(a.transpose(), an.transpose())
    assert_same(a.transpose(2, 0, 1), an.transpose(2, 0, 1))
    assert_same(a.transpose((1, 0, 2)), an.transpose(1, 0, 2))
    assert_same(a.T, an.T)
    assert_same(a.mT, np.swapaxes(an, -1, -2))
    assert_same(a.ravel(), an.ravel())
    assert_same(a.flatten(), an.flatten())
    assert_same(a[:1].squeeze(), an[:1].squeeze())
    assert_same(a[:1].squeeze(0), an[:1].squeeze(0))
    assert_same(a.swapaxes(0, 2), an.swapaxes(0, 2))
    assert_same(a.sum(), an.sum())
    assert_same(a.sum(axis=(0, 2), keepdims=True), an.sum(axis=(0, 2), keepdims=True))
    assert_same(a.mean(-1), an.mean(-1))
    assert_same(a.max(0), an.max(0))
    assert_same(a.min(axis=1), an.min(axis=1))
    assert_same(a.prod(axis=0), an.prod(axis=0))
    assert_same(a.var(), np.float32(an.var()))
    assert_same(a.std(axis=2), an.std(axis=2))
    assert_same(a.argmax(), np.int32(an.argmax()))
    assert_same(a.argmin(axis=1), an.argmin(axis=1).astype(np.int32))
    assert_same((a > 0).all(axis=0), (an > 0).all(axis=0))
    assert_same((a > 0).any(), (an > 0).any())
    assert_same(a.cumsum(axis=1), an.cumsum(axis=1))
    assert_same(a.clip(-2, 3), an.clip(-2, 3))
    assert_same(a[0].dot(np.ones(4, np.float32)), an[0].dot(np.ones(4)).astype(F32))
    assert_same(a.copy(), an)
    assert_same(a.round(), an.round())
    assert_same(a[0].diagonal(), an[0].diagonal())
    assert_same(a.repeat(2, axis=0), an.repeat(2, axis=0))
    assert_same(a.take(np.array([0, 3]), axis=2), an.take([0, 3], axis=2))
    assert a.block_until_ready() is a
    assert a.nbytes == an.nbytes and a.itemsize == 4
    assert_same(a.real, an)
    assert_same(a.conj(), an)


def test_astype_truncates_toward_zero():
    x = jnp.array([-1.7, -0.5, 0.5, 1.7, 2.9])
    assert_same(x.astype(jnp.int32), np.array([-1, 0, 0, 1, 2], np.int32))
    assert_same(x.astype("int32"), np.array([-1, 0, 0, 1, 2], np.int32))
    assert_same(x.astype(np.float16), np.array([-1.7, -0.5, 0.5, 1.7, 2.9], np.float16))
    assert_same(x.astype(bool), np.array([True, True, True, True, True]))
    assert x.astype(jnp.float64).dtype == F32  # canonicalised without x64
    w = jnp.asarray(1.0)
    assert not w.astype(jnp.float32).weak_type


def test_scalar_types_and_dtype_helpers():
    x = jnp.arange(3.0)
    assert x.dtype == jnp.float32 and jnp.float32 == x.dtype
    assert jnp.float32 == np.float32 and jnp.int32 != jnp.float32
    assert np.zeros(2, jnp.float32).dtype == F32
    assert jnp.dtype(jnp.int32) == I32
    y = jnp.float32(3)
    assert isinstance(y, core.Array) and y.dtype == F32 and y.shape == () and not y.weak_type
    assert_same(jnp.int32(jnp.array([1.9, -1.9])), np.array([1, -1], np.int32))
    assert jnp.uint32(5).dtype == np.uint32
    assert jnp.bool_(1).dtype == np.bool_
    assert isinstance(np.float32(1), jnp.float32)
    assert jnp.issubdtype(jnp.float32, jnp.floating)
    assert jnp.issubdtype(x.dtype, jnp.inexact)
    assert not jnp.issubdtype(jnp.int32, jnp.floating)
    assert jnp.finfo(jnp.float32).eps == np.finfo(np.float32).eps
    assert jnp.iinfo(jnp.int32).max == 2**31 - 1
    assert jnp.finfo(x.dtype).bits == 32
    assert jnp.result_type(jnp.int32, 0.5) == F32
    assert jnp.result_type(x, 1) == F32
    assert jnp.result_type(jnp.arange(2), jnp.uint8) == I32
    assert jnp.isdtype(jnp.float32, "real floating")
    assert jnp.can_cast(jnp.int8, jnp.int32)
    assert jnp.newaxis is None and jnp.pi == np.pi and jnp.e == np.e
    assert jnp.inf == np.inf and np.isnan(jnp.nan)
    assert isinstance(jnp.zeros(2), jnp.ndarray)
    assert hash(jnp.float32) == hash(np.float32)
    with pytest.raises(TypeError):
        jnp.zeros(2, dtype=object)
    with pytest.raises(TypeError, match="complex"):
        jnp.zeros(2, dtype=complex)


def test_every_result_is_an_fnbrrr_array():
    checks = [
        jnp.sin(1.0),
        jnp.add(1, 2),
        jnp.sum(np.ones(3)),
        jnp.zeros(2),
        jnp.eye(2),
        jnp.arange(3)[1],
        jnp.asarray(np.float32(1)),
        jnp.einsum("i->", np.ones(2)),
        jnp.where(True, 1, 2),
    ]
    for value in checks:
        assert isinstance(value, core.Array)
        assert isinstance(value, core.ArrayImpl)


def test_public_names_are_exported():
    for name in jnp.__all__:
        assert hasattr(jnp, name), name
    for name in [
        "sum",
        "mean",
        "dot",
        "matmul",
        "einsum",
        "where",
        "reshape",
        "linalg",
        "float32",
        "int32",
        "uint32",
        "bool_",
        "newaxis",
        "tensordot",
        "cumsum",
    ]:
        assert name in jnp.__all__


@pytest.mark.parametrize(
    "module",
    [
        "fnbrrr.numpy",
        "fnbrrr.numpy._creation",
        "fnbrrr.numpy._elementwise",
        "fnbrrr.numpy._reductions",
        "fnbrrr.numpy._shape",
        "fnbrrr.numpy._linalg",
        "fnbrrr.numpy._indexing",
        "fnbrrr.numpy._index_update",
        "fnbrrr.numpy._take",
        "fnbrrr.numpy._dtypes",
        "fnbrrr.numpy.linalg",
    ],
)
def test_docstring_examples_run(module):
    import doctest
    import importlib

    mod = importlib.import_module(module)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder().find(mod, globs={"jnp": jnp, "np": np}):
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0
    assert results.attempted > 0


def test_block_until_ready_device_put_and_get_round_trip():
    """JAX's host/device helpers: put makes Arrays, get makes NumPy arrays, block returns x."""
    tree = {"w": np.arange(3.0), "b": [np.float32(2.0), 7]}
    put = fnbrrr.device_put(tree)
    assert isinstance(put["w"], fnbrrr.Array) and put["w"].dtype == jnp.float32
    assert fnbrrr.block_until_ready(put) is put
    got = fnbrrr.device_get(put)
    assert type(got["w"]) is np.ndarray and got["w"].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="device_put.*one device"):
        fnbrrr.device_put(tree, device="gpu:0")


def test_jit_outputs_carry_their_exact_aval():
    """The compiled fast path hands each output its type; it must be the value's own."""
    f = fnbrrr.jit(lambda x, n: (x * n, jnp.sum(x)))
    x = jnp.arange(6.0).reshape(2, 3)
    for _ in range(2):  # the second call takes the fast path
        for out in f(x, 2):
            assert out.aval == fnbrrr.core.ShapedArray(out.shape, out.dtype, out.weak_type)
    g = fnbrrr.jit(lambda x: x * 2)
    y = g(g(x))
    assert y.aval == fnbrrr.core.ShapedArray((2, 3), jnp.float32, False)


def test_abs_derivative_is_one_at_zero_like_jax():
    # JAX takes d|x|/dx at 0 from the right (1); elsewhere it is sign(x).
    x = jnp.array([-2.0, -0.0, 0.0, 3.0])
    want = np.array([-1.0, 1.0, 1.0, 1.0], np.float32)
    np.testing.assert_array_equal(fnbrrr.vmap(fnbrrr.grad(jnp.abs))(x), want)
    np.testing.assert_array_equal(fnbrrr.jvp(jnp.abs, (x,), (jnp.ones(4),))[1], want)
    np.testing.assert_array_equal(fnbrrr.jit(fnbrrr.grad(lambda v: jnp.abs(v).sum()))(x), want)


def test_square_and_power_of_bools_are_int32_like_jax():
    b = jnp.array([True, False])
    for out, want in ((jnp.square(b), [1, 0]), (jnp.power(b, jnp.array([False, True])), [1, 0]),
                      (b**2, [1, 0])):
        assert out.dtype == np.int32
        np.testing.assert_array_equal(out, want)


def test_integer_power_with_negative_array_exponents_truncates_like_repeated_division():
    base = np.arange(-3, 4, dtype=np.int32)
    for k in range(-3, 4):
        out = jnp.power(jnp.asarray(base), jnp.full(7, k, jnp.int32))
        if k >= 0:
            want = base**k
        else:  # 1 / base**|k| truncated toward zero (0 for base 0, as C's integer division)
            want = np.where(np.abs(base) == 1, base ** abs(k), 0)
        np.testing.assert_array_equal(out, want)
        np.testing.assert_array_equal(
            fnbrrr.jit(jnp.power)(jnp.asarray(base), jnp.full(7, k, jnp.int32)), want)


@pytest.mark.parametrize("dtype", [np.int32, np.uint32, np.int8])
def test_shift_operators_match_python_integers(dtype):
    bits = np.dtype(dtype).itemsize * 8
    if np.dtype(dtype).kind == "u":
        xn = np.array([0, 1, 5, 7, 100, 2**31 + 3, 2**32 - 1], dtype)
    else:
        xn = np.array([-7, -5, -1, 0, 1, 5, 7, 100], dtype)
    x = jnp.asarray(xn)
    for k in (0, 1, 2, 7, bits - 1, bits, bits + 3):
        want_left = np.array([(int(v) << k) % 2**bits for v in xn], np.uint64).astype(dtype)
        want_right = np.array([int(v) >> k if k < bits else -(int(v) < 0) for v in xn]).astype(
            dtype)
        np.testing.assert_array_equal(x << k, want_left)
        np.testing.assert_array_equal(x >> k, want_right)
        np.testing.assert_array_equal(jnp.right_shift(x, jnp.full(len(xn), k, dtype)),
                                      want_right)
    np.testing.assert_array_equal(fnbrrr.jit(lambda a: (a << 3) >> 1)(x), (xn << 3) >> 1)
    with pytest.raises(TypeError):
        jnp.ones(2) << 1


def test_sort_and_argsort_methods():
    xn = np.array([[3.0, 1.0, 2.0], [0.0, -1.0, 5.0]], np.float32)
    x = jnp.asarray(xn)
    np.testing.assert_array_equal(x.sort(), np.sort(xn))
    np.testing.assert_array_equal(x.sort(axis=0), np.sort(xn, axis=0))
    np.testing.assert_array_equal(x.argsort(), np.argsort(xn, kind="stable"))


def _well_conditioned(rng, shape):
    a = rng.standard_normal(shape).astype(np.float32)
    return a + 3 * np.eye(shape[-1], dtype=np.float32)


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (2, 4, 4), (6, 6)])
def test_linalg_solve_inv_det_cholesky_match_numpy(shape):
    rng = np.random.default_rng(sum(shape))
    a = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape[:-1] + (2,)).astype(np.float32)
    spd = (a @ np.swapaxes(a, -1, -2) + np.eye(shape[-1])).astype(np.float32)
    tol = dict(rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(jnp.linalg.inv(a), np.linalg.inv(a), **tol)
    np.testing.assert_allclose(jnp.linalg.solve(a, b), np.linalg.solve(a, b), **tol)
    np.testing.assert_allclose(jnp.linalg.det(a), np.linalg.det(a), **tol)
    sign, logabs = jnp.linalg.slogdet(a)
    want_sign, want_logabs = np.linalg.slogdet(a)
    np.testing.assert_array_equal(sign, want_sign)
    np.testing.assert_allclose(logabs, want_logabs, **tol)
    np.testing.assert_allclose(jnp.linalg.cholesky(spd), np.linalg.cholesky(spd), **tol)
    if shape == (3, 3):  # one jitted check: the unrolled program takes a while to compile
        np.testing.assert_allclose(fnbrrr.jit(jnp.linalg.inv)(a), np.linalg.inv(a), **tol)


def test_linalg_vector_solve_singular_det_and_non_pd_cholesky():
    rng = np.random.default_rng(0)
    a = _well_conditioned(rng, (3, 3))
    v = rng.standard_normal(3).astype(np.float32)
    np.testing.assert_allclose(jnp.linalg.solve(a, v), np.linalg.solve(a, v), rtol=2e-4)
    assert float(jnp.linalg.det(np.zeros((2, 2), np.float32))) == 0.0
    assert float(jnp.linalg.det(np.array([[1.0, 2.0], [2.0, 4.0]], np.float32))) == 0.0
    assert float(jnp.linalg.slogdet(np.zeros((2, 2), np.float32)).logabsdet) == -np.inf
    assert np.isnan(np.asarray(jnp.linalg.cholesky(-np.eye(2, dtype=np.float32)))).any()
    with pytest.raises(ValueError):
        jnp.linalg.inv(np.ones((2, 3), np.float32))


def test_linalg_gradients_match_closed_forms():
    rng = np.random.default_rng(1)
    a = _well_conditioned(rng, (3, 3))
    inv_t = np.linalg.inv(a).T
    # d det(A)/dA = det(A) A^-T;  d log|det A|/dA = A^-T
    np.testing.assert_allclose(fnbrrr.grad(jnp.linalg.det)(a), np.linalg.det(a) * inv_t,
                               rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(fnbrrr.grad(lambda m: jnp.linalg.slogdet(m)[1])(a), inv_t,
                               rtol=1e-3, atol=1e-4)
    # d sum(A^-1 b)/db = A^-T 1
    b = rng.standard_normal(3).astype(np.float32)
    np.testing.assert_allclose(fnbrrr.grad(lambda v: jnp.linalg.solve(a, v).sum())(b),
                               inv_t @ np.ones(3), rtol=1e-3, atol=1e-4)
    batched = fnbrrr.vmap(jnp.linalg.det)(np.stack([a, 2 * a]))
    np.testing.assert_allclose(batched, [np.linalg.det(a), 8 * np.linalg.det(a)], rtol=1e-4)


def test_nan_to_num_matches_numpy():
    xn = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 2.0], np.float32)
    np.testing.assert_array_equal(jnp.nan_to_num(xn), np.nan_to_num(xn))
    np.testing.assert_array_equal(jnp.nan_to_num(xn, nan=1.0, posinf=2.0, neginf=3.0),
                                  np.nan_to_num(xn, nan=1.0, posinf=2.0, neginf=3.0))
    np.testing.assert_array_equal(jnp.nan_to_num(np.arange(3)), np.arange(3))
    np.testing.assert_array_equal(fnbrrr.grad(lambda v: jnp.nan_to_num(v).sum())(xn),
                                  np.isfinite(xn).astype(np.float32))


def test_diff_select_and_triangle_indices_match_numpy():
    xn = np.array([[1, 4, 9, 16], [2, 3, 5, 8]], np.int32)
    np.testing.assert_array_equal(jnp.diff(xn), np.diff(xn))
    np.testing.assert_array_equal(jnp.diff(xn, n=2, axis=0 + 1), np.diff(xn, n=2, axis=1))
    np.testing.assert_array_equal(jnp.diff(xn, axis=0), np.diff(xn, axis=0))
    np.testing.assert_array_equal(jnp.diff(xn, prepend=0, append=np.array([[1], [2]])),
                                  np.diff(xn, prepend=0, append=np.array([[1], [2]])))
    np.testing.assert_array_equal(jnp.diff(xn > 4), np.diff(xn > 4))
    np.testing.assert_array_equal(jnp.select([xn < 3, xn > 8], [xn, -xn], 7),
                                  np.select([xn < 3, xn > 8], [xn, -xn], 7))
    for got, want in zip(jnp.tril_indices(3, -1), np.tril_indices(3, -1)):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(jnp.triu_indices(3, 1, 4), np.triu_indices(3, 1, 4)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(jnp.acos(0.3), np.arccos(np.float32(0.3)), rtol=1e-6)
    np.testing.assert_array_equal(fnbrrr.lax.slice_in_dim(xn, 1, None, 2, axis=1), xn[:, 1::2])
    np.testing.assert_array_equal(fnbrrr.grad(lambda v: jnp.diff(v**2).sum())(
        np.arange(4.0, dtype=np.float32)), [0.0, 0.0, 0.0, 6.0])


def test_negative_python_int_power_of_int_array_raises_value_and_type_error():
    for err in (ValueError, TypeError):
        with pytest.raises(err, match="negative integer powers"):
            jnp.arange(1, 4) ** -1
