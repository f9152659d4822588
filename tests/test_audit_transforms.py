"""Regressions found by the JAX-parity audit of API.md §3-7 and §10 (transformations, lax,
random, tree_util, nn, config), pinned without JAX: NumPy oracles, per-example loops for vmap,
eager results for jit. `tests/test_jax_parity_audit_transforms.py` holds the same cases
compared with JAX itself.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple

import numpy as np
import pytest

import fnbrrr
import fnbrrr.numpy as jnp
from fnbrrr import core, lax, random
from fnbrrr import tree_util as tu
from fnbrrr.batching import batch_jaxpr

KEY = random.PRNGKey(0)
V3 = np.array([0.3, -1.2, 2.0], np.float32)


# --- §10 jax_enable_x64: default dtypes follow the flag --------------------------------------


@pytest.mark.parametrize("sample,want", [
    (lambda: random.normal(KEY, (2,)), np.float64),
    (lambda: random.uniform(KEY, (2,)), np.float64),
    (lambda: random.truncated_normal(KEY, -1.0, 1.0, (2,)), np.float64),
    (lambda: random.randint(KEY, (2,), 0, 5), np.int64),
    (lambda: random.categorical(KEY, jnp.zeros(4)), np.int64),
    (lambda: random.permutation(KEY, 5), np.int64),
    (lambda: random.choice(KEY, 5, (2,)), np.int64),
    (lambda: fnbrrr.nn.one_hot(jnp.array([0, 1]), 2), np.float64),
    (lambda: fnbrrr.nn.initializers.glorot_normal()(KEY, (2, 3)), np.float64),
    (lambda: fnbrrr.nn.initializers.zeros(KEY, (2,)), np.float64),
    (lambda: random.normal(KEY, (2,), np.float32), np.float32),  # explicit dtypes are kept
    (lambda: fnbrrr.nn.one_hot(jnp.array([0, 1]), 2, dtype=jnp.float32), np.float32),
])
def test_default_dtypes_are_64_bit_with_x64(x64, sample, want):
    assert sample().dtype == want


def test_default_dtypes_are_32_bit_without_x64():
    assert random.normal(KEY, (2,)).dtype == np.float32
    assert random.randint(KEY, (2,), 0, 5).dtype == np.int32
    assert fnbrrr.nn.one_hot(jnp.array([0, 1]), 2).dtype == np.float32


# --- §5 random: argument forms JAX accepts ---------------------------------------------------


def test_randint_float_bounds_are_truncated_toward_zero():
    x = np.asarray(random.randint(KEY, (4000,), -1.5, 2.5))
    assert x.dtype == np.int32
    assert set(np.unique(x)) == {-1, 0, 1}  # [trunc(-1.5), trunc(2.5)) = [-1, 2)


def test_permutation_of_a_0d_integer_array_is_the_permutation_of_its_value():
    np.testing.assert_array_equal(random.permutation(KEY, jnp.asarray(6)),
                                  random.permutation(KEY, 6))
    with pytest.raises(TypeError):
        random.permutation(KEY, jnp.asarray(6.0))


def test_fold_in_python_int_out_of_uint32_range_raises_overflow_error():
    for bad in (-1, 2**32, 2**40):
        with pytest.raises(OverflowError):
            random.fold_in(KEY, bad)
    np.testing.assert_array_equal(random.fold_in(KEY, 2**32 - 1),
                                  random.fold_in(KEY, np.uint32(2**32 - 1)))


# --- §4 cond and switch ------------------------------------------------------------------------


@pytest.mark.parametrize("pred,want", [(0.0, 2.0), (0.5, 1.0), (-3.0, 1.0), (np.nan, 1.0)])
def test_cond_float_predicate_is_true_when_nonzero(pred, want):
    def pick(p):
        return lax.cond(p, lambda: 1.0, lambda: 2.0)

    assert float(pick(jnp.asarray(pred, jnp.float32))) == want
    assert float(fnbrrr.jit(pick)(pred)) == want


def test_cond_float_predicate_under_vmap_matches_per_example_loop():
    preds = np.array([0.0, -1.0, 2.5, 0.0], np.float32)
    got = fnbrrr.vmap(lambda p, x: lax.cond(p, lambda v: v * 2.0, lambda v: -v, x))(
        preds, jnp.asarray(V3[:1].repeat(4)))
    want = [V3[0] * 2.0 if p != 0 else -V3[0] for p in preds]
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)


def test_switch_with_no_branches_raises_value_error():
    with pytest.raises(ValueError, match="empty"):
        lax.switch(0, [])
    with pytest.raises(TypeError):
        lax.switch(0, [1.0])


@pytest.mark.parametrize("run", [
    lambda: fnbrrr.vmap(lambda p: lax.cond(p, lambda: 1.0, lambda: 2.0))(
        jnp.array([True, False])),
    lambda: fnbrrr.vmap(lambda p: lax.cond(p, lambda x: x * 2, lambda x: x, 1.0))(
        jnp.array([True, False])),
    lambda: fnbrrr.vmap(lambda i: lax.switch(i, [lambda: 1.0, lambda: 2.0, lambda: 3.0]))(
        jnp.array([0, 2])),
    lambda: fnbrrr.vmap(lambda k: lax.fori_loop(0, k, lambda i, v: v + 1, 0))(
        jnp.array([1, 4, 0])),
])
def test_batched_control_flow_keeps_weak_types_of_python_scalars(run):
    assert run().weak_type  # as the unbatched results are (JAX agrees)


def test_batch_jaxpr_keeps_weak_literals():
    jaxpr, consts = core.trace_to_jaxpr(
        lambda x: [x * 2], [core.ShapedArray((), np.dtype(np.float32), True)])
    batched, _ = batch_jaxpr(core.ClosedJaxpr(jaxpr, consts), 3, [None], instantiate=True)
    assert batched.out_avals[0].weak_type
    (out,) = core.eval_jaxpr(jaxpr, consts, jnp.asarray(1.5))
    assert out.weak_type and float(out) == 3.0


def test_fori_loop_index_is_weak_for_any_concrete_bounds():
    for lo, hi in ((0, 3), (np.int32(0), np.int32(3)), (jnp.asarray(0), jnp.asarray(3))):
        out = lax.fori_loop(lo, hi, lambda i, v: v + i, 0)
        assert int(out) == 3 and out.weak_type and out.dtype == np.int32


# --- §3 transformations: errors and keyword arguments -----------------------------------------


def test_reverse_mode_through_while_loop_raises_type_and_value_error():
    def f(a):
        return lax.while_loop(lambda v: v < 10, lambda v: v * 2, a)

    for exc in (TypeError, ValueError):
        with pytest.raises(exc, match="while_loop"):
            fnbrrr.grad(f)(1.0)
    with pytest.raises(ValueError, match="while_loop"):
        fnbrrr.jit(fnbrrr.grad(lambda a, k: lax.fori_loop(0, k, lambda i, v: v * a, 1.0)))(
            1.5, 3)


def test_vjp_cotangent_of_wrong_dtype_raises_value_error():
    _, pullback = fnbrrr.vjp(jnp.sin, jnp.asarray(V3))
    with pytest.raises(ValueError, match="dtype"):
        pullback(jnp.ones(3, jnp.int32))


def test_jacobians_accept_jaxs_keyword_arguments():
    x = jnp.asarray(V3)
    want = np.diag(2 * V3)
    np.testing.assert_allclose(fnbrrr.jacfwd(lambda a: a**2, holomorphic=False)(x), want)
    np.testing.assert_allclose(fnbrrr.jacrev(lambda a: a**2, holomorphic=False,
                                             allow_int=True)(x), want)
    np.testing.assert_allclose(fnbrrr.hessian(lambda a: (a**3).sum(), holomorphic=False)(x),
                               np.diag(6 * V3), rtol=1e-6)
    jac_x, jac_k = fnbrrr.jacrev(lambda a, k: a * k, argnums=(0, 1), allow_int=True)(x, 2)
    np.testing.assert_allclose(jac_x, 2 * np.eye(3))
    assert not np.asarray(jac_k).any()
    for jac in (fnbrrr.jacfwd, fnbrrr.jacrev, fnbrrr.hessian):
        with pytest.raises(NotImplementedError):
            jac(lambda a: a, holomorphic=True)
    with pytest.raises(TypeError, match="int32"):
        fnbrrr.jacrev(lambda a: a * 2.0)(jnp.arange(3))


# --- §4 lax: argument forms and functions JAX programs use ----------------------------------

RNG = np.random.default_rng(0)
X234 = RNG.standard_normal((2, 3, 4)).astype(np.float32)


def test_round_rounding_methods():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.49999997, 2.0, -2.7], np.float32)
    away = np.trunc(x) + np.where(np.abs(x - np.trunc(x)) >= 0.5, np.sign(x), 0)
    np.testing.assert_array_equal(lax.round(x, lax.RoundingMethod.AWAY_FROM_ZERO), away)
    np.testing.assert_array_equal(lax.round(x, 0), away)
    np.testing.assert_array_equal(lax.round(x, lax.RoundingMethod.TO_NEAREST_EVEN), np.round(x))
    assert float(fnbrrr.grad(lambda v: lax.round(v, 0) * v)(1.5)) == 2.0  # round's slope is 0


def test_full_without_dtype_takes_the_fill_values_type():
    assert lax.full((2,), 3.0).weak_type and lax.full((2,), 3.0).dtype == np.float32
    assert lax.full((2,), 3).dtype == np.int32 and lax.full((2,), 3).weak_type
    assert not lax.full((2,), jnp.float32(3)).weak_type
    assert lax.full(3, 1.0).shape == (3,)
    assert lax.full_like(2.0, 3).weak_type and not lax.full_like(jnp.ones(2), 3).weak_type


def test_pow_with_integer_exponent_array():
    x, y = np.array([-2.0, -3.0, 1.5], np.float32), np.array([3, -2, 2], np.int32)
    np.testing.assert_allclose(lax.pow(x, y), x.astype(np.float64) ** y, rtol=1e-6)
    assert float(fnbrrr.grad(lambda v: lax.pow(v, jnp.asarray(3)))(-2.0)) == 12.0


def test_reshape_with_dimensions_transposes_first():
    np.testing.assert_array_equal(lax.reshape(X234, (4, 6), (2, 0, 1)),
                                  X234.transpose(2, 0, 1).reshape(4, 6))


def _clamped_start(i: int, n: int, size: int) -> int:
    i = i + n if i < 0 else i
    return min(max(i, 0), n - size)


@pytest.mark.parametrize("i", [-12, -3, -1, 0, 2, 8, 12])
def test_dynamic_slice_negative_starts_count_from_the_end(i):
    x = np.arange(10, dtype=np.float32)
    s = _clamped_start(i, 10, 3)
    np.testing.assert_array_equal(lax.dynamic_slice(x, (i,), (3,)), x[s:s + 3])
    np.testing.assert_array_equal(
        fnbrrr.jit(lambda k: lax.dynamic_slice(jnp.asarray(x), (k,), (3,)))(i), x[s:s + 3])
    want = x.copy()
    want[s:s + 3] = -1
    np.testing.assert_array_equal(lax.dynamic_update_slice(x, -np.ones(3, np.float32), (i,)),
                                  want)


def test_dynamic_slice_negative_starts_under_vmap_and_grad():
    x = np.arange(10, dtype=np.float32)
    starts = [-1, 2, -12, 30]
    got = fnbrrr.vmap(lambda k: lax.dynamic_slice(jnp.asarray(x), (k,), (3,)))(
        jnp.array(starts))
    want = [x[_clamped_start(i, 10, 3):][:3] for i in starts]
    np.testing.assert_array_equal(got, want)
    g = fnbrrr.grad(lambda v: lax.dynamic_slice(v, (-2,), (2,)).sum())(jnp.arange(4.0))
    np.testing.assert_array_equal(g, [0, 0, 1, 1])


def test_in_dim_slicing_helpers():
    x = X234
    np.testing.assert_array_equal(lax.dynamic_slice_in_dim(x, -1, 2, axis=-1), x[..., 2:4])
    np.testing.assert_array_equal(lax.dynamic_index_in_dim(x, 1, axis=1), x[:, 1:2])
    np.testing.assert_array_equal(lax.dynamic_index_in_dim(x, 1, axis=1, keepdims=False),
                                  x[:, 1])
    np.testing.assert_array_equal(lax.index_in_dim(x, -1, axis=1, keepdims=False), x[:, -1])
    with pytest.raises(IndexError):
        lax.index_in_dim(x, 3, axis=1)
    want = x.copy()
    want[:, 2] = 0
    np.testing.assert_array_equal(
        lax.dynamic_update_index_in_dim(x, np.zeros((2, 4), np.float32), -1, axis=1), want)
    np.testing.assert_array_equal(
        lax.dynamic_update_slice_in_dim(x, np.zeros((2, 1, 4), np.float32), 2, axis=1), want)


@pytest.mark.parametrize("n", [1, 2, 5, 6, 8, 13])
@pytest.mark.parametrize("reverse", [False, True])
def test_cumulative_reductions_match_numpy(n, reverse):
    x = RNG.standard_normal((3, n)).astype(np.float32)

    def oracle(fn):
        y = x[:, ::-1] if reverse else x
        out = fn(y, axis=1)
        return out[:, ::-1] if reverse else out

    for lax_fn, np_fn in ((lax.cumsum, np.cumsum), (lax.cumprod, np.cumprod),
                          (lax.cummax, np.maximum.accumulate),
                          (lax.cummin, np.minimum.accumulate),
                          (lax.cumlogsumexp, np.logaddexp.accumulate)):
        np.testing.assert_allclose(lax_fn(x, axis=1, reverse=reverse), oracle(np_fn),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [1, 2, 3, 6, 7, 16, 17])
def test_associative_scan_of_a_linear_recurrence_matches_a_loop(n):
    a = RNG.uniform(0.5, 1.0, n).astype(np.float32)
    b = RNG.standard_normal(n).astype(np.float32)
    _, h = lax.associative_scan(lambda p, q: (p[0] * q[0], p[1] * q[0] + q[1]), (a, b))
    want, acc = [], 0.0
    for ai, bi in zip(a, b):
        acc = ai * acc + bi
        want.append(acc)
    np.testing.assert_allclose(h, want, rtol=1e-5, atol=1e-6)
    rev = lax.associative_scan(lax.add, b, reverse=True)
    np.testing.assert_allclose(rev, np.cumsum(b[::-1])[::-1], rtol=1e-5, atol=1e-5)


def test_associative_scan_under_jit_vmap_and_grad():
    got = fnbrrr.jit(fnbrrr.vmap(lambda r: lax.associative_scan(lax.max, r)))(X234[0])
    np.testing.assert_array_equal(got, np.maximum.accumulate(X234[0], axis=1))
    g = fnbrrr.grad(lambda v: lax.cumsum(v, reverse=True).sum())(jnp.ones(4))
    np.testing.assert_allclose(g, [1, 2, 3, 4])


def test_sort_several_operands_by_keys_matches_lexsort():
    k1 = np.array([2, 1, 2, 1, 0, 2], np.int32)
    k2 = np.array([3.0, 1.0, 2.0, 0.5, 9.0, 2.0], np.float32)
    payload = np.arange(6, dtype=np.int32)
    order = np.lexsort((k2, k1))  # k1 most significant; stable
    got = lax.sort((k1, k2, payload), num_keys=2)
    assert isinstance(got, tuple) and len(got) == 3
    for g, w in zip(got, (k1[order], k2[order], payload[order])):
        np.testing.assert_array_equal(g, w)
    one_key = lax.sort((k1, payload))
    np.testing.assert_array_equal(one_key[1], payload[np.argsort(k1, kind="stable")])
    np.testing.assert_array_equal(lax.sort(X234, dimension=0), np.sort(X234, axis=0))
    keys, vals = lax.sort_key_val(k2, payload)
    np.testing.assert_array_equal(vals, payload[np.argsort(k2, kind="stable")])
    g = fnbrrr.grad(lambda v: (lax.sort(v) * jnp.arange(3.0)).sum())(jnp.asarray(V3))
    np.testing.assert_array_equal(g, np.argsort(np.argsort(V3)).astype(np.float32))


@pytest.mark.parametrize("x", [
    np.array([1.0, 3.0, 2.0, 3.0, 3.0], np.float32),
    np.array([5, -1, 7, 7], np.int32),
    np.array([5, 1, 7, 0], np.uint32),
])
def test_top_k_is_descending_with_ties_in_index_order(x):
    values, indices = lax.top_k(x, 3)
    want = sorted(range(len(x)), key=lambda i: (-float(x[i]), i))[:3]
    np.testing.assert_array_equal(indices, want)
    np.testing.assert_array_equal(values, x[want])
    assert indices.dtype == np.int32 and values.dtype == x.dtype


def test_top_k_batched_and_differentiated():
    values, indices = fnbrrr.vmap(lambda r: lax.top_k(r, 2))(X234[0])
    for row, v, i in zip(X234[0], np.asarray(values), np.asarray(indices)):
        np.testing.assert_array_equal(i, np.argsort(-row, kind="stable")[:2])
        np.testing.assert_array_equal(v, row[i])
    g = fnbrrr.grad(lambda v: lax.top_k(v, 2)[0].sum())(jnp.asarray(V3))
    np.testing.assert_array_equal(g, [1, 0, 1])


def test_small_lax_functions_match_numpy():
    x = V3
    np.testing.assert_allclose(lax.exp2(x), np.exp2(x), rtol=1e-6)
    np.testing.assert_allclose(lax.reciprocal(x), 1 / x, rtol=1e-6)
    np.testing.assert_allclose(lax.cbrt(np.array([-8.0, 27.0], np.float32)), [-2, 3], rtol=1e-6)
    np.testing.assert_allclose(lax.asinh(x), np.arcsinh(x), rtol=1e-6)
    np.testing.assert_allclose(lax.atan(x), np.arctan(x), rtol=1e-6)
    np.testing.assert_allclose(lax.erf_inv(np.array([-0.5, 0.0, 0.9], np.float32)),
                               [-0.4769363, 0.0, 1.1630871], rtol=1e-5)
    np.testing.assert_array_equal(lax.bitwise_and(np.array([3, 5]), np.array([1, 4])), [1, 4])
    np.testing.assert_array_equal(lax.bitwise_not(np.array([True, False])), [False, True])
    assert lax.collapse(jnp.zeros((2, 3, 4)), 1).shape == (2, 12)
    assert lax.batch_matmul(jnp.ones((2, 1, 3)), jnp.ones((2, 3, 5))).shape == (2, 1, 5)
    with pytest.raises(ValueError):
        lax.batch_matmul(jnp.ones((2, 3)), jnp.ones((2, 3, 1)))


# --- §3/§10 entry points JAX programs use: eval_shape, flag context managers ---------------


def test_eval_shape_traces_without_computing():
    calls = []

    def f(x, y, scale=1.0):
        calls.append(type(x).__name__)
        return x @ y * scale, 3.0, {"a": x.sum()}

    out = fnbrrr.eval_shape(f, jnp.ones((2, 3)), fnbrrr.ShapeDtypeStruct((3, 4), np.float32),
                            scale=2.0)
    assert out[0] == fnbrrr.ShapeDtypeStruct((2, 4), np.float32)
    assert out[1] == fnbrrr.ShapeDtypeStruct((), np.float32, weak_type=True)
    assert out[2]["a"].shape == () and out[2]["a"].dtype == np.float32
    assert calls and calls[0] != "ArrayImpl"  # traced, not run on values
    assert fnbrrr.eval_shape(lambda x: x, fnbrrr.ShapeDtypeStruct((2,), np.float64)).dtype \
        == np.float32  # canonicalized, as an argument would be
    _, shape = fnbrrr.make_jaxpr(lambda x: (x * 2, 1), return_shape=True)(1.0)
    assert shape[1] == fnbrrr.ShapeDtypeStruct((), np.int32, weak_type=True)
    assert repr(shape[0]) == "ShapeDtypeStruct(shape=(), dtype=float32, weak_type=True)"


def test_flag_context_managers_restore_the_previous_value():
    def branchy(a):
        return a * 2 if a.sum() > 0 else -a  # Python control flow: needs eager execution

    with fnbrrr.disable_jit():
        np.testing.assert_allclose(fnbrrr.jit(branchy)(jnp.asarray(V3)), V3 * 2)
    assert not fnbrrr.config.jax_disable_jit
    with fnbrrr.enable_x64():
        assert jnp.ones(2).dtype == np.float64
    assert jnp.ones(2).dtype == np.float32 and not fnbrrr.config.jax_enable_x64
    with fnbrrr.debug_nans():
        assert fnbrrr.config.jax_debug_nans
    assert not fnbrrr.config.jax_debug_nans
    np.testing.assert_allclose(fnbrrr.jacobian(lambda a: a**2)(jnp.asarray(V3)), np.diag(2 * V3))


# --- §6 tree_util: key paths ------------------------------------------------------------------

_Point = namedtuple("_Point", ["x", "y"])


class _Keyed:
    def __init__(self, a, b):
        self.a, self.b = a, b


tu.register_pytree_with_keys(
    _Keyed, lambda k: (((tu.GetAttrKey("a"), k.a), (tu.GetAttrKey("b"), k.b)), None),
    lambda _, children: _Keyed(*children))


def test_leaves_with_path_name_every_container_kind():
    tree = {"a": [1, _Point(2, 3)], "b": None, "d": OrderedDict(z=4, y=5), "k": _Keyed(6, 7),
            "p": tu.Partial(max, 8)}
    with_path = tu.tree_leaves_with_path(tree)
    assert [x for _, x in with_path] == tu.tree_leaves(tree)
    assert [tu.keystr(p) for p, _ in with_path] == [
        "['a'][0]", "['a'][1].x", "['a'][1].y", "['d']['z']", "['d']['y']", "['k'].a", "['k'].b",
        "['p'][<flat index 0>][0]"]
    assert [tu.keystr(p, simple=True, separator="/") for p, _ in with_path][:3] == [
        "a/0", "a/1/x", "a/1/y"]
    paths, treedef = tu.tree_flatten_with_path(tree)
    assert paths == with_path and treedef == tu.tree_structure(tree)


def test_map_with_path_and_is_leaf():
    got = tu.tree_map_with_path(lambda p, x, y: (tu.keystr(p), x + y), [1, (2,)], [10, (20,)])
    assert got == [("[0]", 11), (("[1][0]", 22),)]
    assert tu.tree_leaves_with_path([1, (2,)], is_leaf=lambda x: isinstance(x, tuple)) == [
        ((tu.SequenceKey(0),), 1), ((tu.SequenceKey(1),), (2,))]
    with pytest.raises(ValueError):
        tu.tree_map_with_path(lambda p, x, y: x, [1, 2], [1])
    assert fnbrrr.tree.map_with_path(lambda p, x: len(p), {"a": [1]}) == {"a": [2]}


def test_classes_registered_with_keys_are_pytrees_for_transformations():
    g = fnbrrr.grad(lambda k: k.a * k.b)(_Keyed(2.0, 3.0))
    assert type(g) is _Keyed and float(g.a) == 3.0 and float(g.b) == 2.0
