"""JAX-parity cases found by the audit of API.md §3-7 and §10 (see test_audit_transforms.py
for the same regressions pinned without JAX). Run with the peers venv:
`/tmp/peers/bin/python -m pytest tests/test_jax_parity_audit_transforms.py -q`.
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")

from test_jax_parity import cases, check, check_meta  # noqa: E402

V3 = np.array([0.3, -1.2, 2.0], np.float32)


def _key(j):
    return j.random.PRNGKey(0)


def _with_x64(case):
    """`case` run with jax_enable_x64 on (in the library under test), then switched off."""

    def run(j, n):
        j.config.update("jax_enable_x64", True)
        try:
            return case(j, n)
        finally:
            j.config.update("jax_enable_x64", False)

    return run


X64_DTYPES = {
    "normal": lambda j, n: j.random.normal(_key(j), (2,)).dtype,
    "uniform": lambda j, n: j.random.uniform(_key(j), (2,)).dtype,
    "randint": lambda j, n: j.random.randint(_key(j), (2,), 0, 5).dtype,
    "categorical": lambda j, n: j.random.categorical(_key(j), n.zeros(4)).dtype,
    "permutation": lambda j, n: j.random.permutation(_key(j), 5).dtype,
    "one_hot": lambda j, n: j.nn.one_hot(n.array([0, 1]), 2),
    "initializer": lambda j, n: j.nn.initializers.glorot_normal()(_key(j), (2, 3)).dtype,
    "initializer_f32": lambda j, n: j.nn.initializers.glorot_normal()(
        _key(j), (2, 3), n.float32).dtype,
    "normal_f32": lambda j, n: j.random.normal(_key(j), (2,), n.float32).dtype,
}


@cases({k: _with_x64(v) for k, v in X64_DTYPES.items()})
def test_x64_default_dtypes(case):
    check(case)


RANDOM = {
    "randint_float_bounds": lambda j, n: j.random.randint(_key(j), (3,), 0.0, 10.5),
    "permutation_0d_array": lambda j, n: j.random.permutation(_key(j), n.asarray(5)),
    "fold_in_negative": lambda j, n: j.random.fold_in(_key(j), -1),
    "fold_in_too_big": lambda j, n: j.random.fold_in(_key(j), 2**33),
}


@cases(RANDOM)
def test_random_argument_forms(case):
    check_meta(case)


CONTROL = {
    "cond_float_pred": lambda j, n: [j.lax.cond(n.asarray(v), lambda: 1.0, lambda: 2.0)
                                     for v in (0.0, 0.5, np.nan)],
    "cond_float_pred_jit": lambda j, n: [j.jit(lambda p: j.lax.cond(
        p, lambda: 1.0, lambda: 2.0))(v) for v in (0.0, 0.5)],
    "cond_float_pred_vmap": lambda j, n: j.vmap(lambda p: j.lax.cond(
        p, lambda: 1.0, lambda: 2.0))(n.array([0.0, -1.0])),
    "cond_vmap_weak": lambda j, n: j.vmap(lambda p: j.lax.cond(
        p, lambda x: x * 2, lambda x: x, 1.0))(n.array([True, False])),
    "cond_vmap_weak_int": lambda j, n: j.vmap(lambda p: j.lax.cond(p, lambda: 1, lambda: 2))(
        n.array([True, False])),
    "switch_vmap_weak": lambda j, n: j.vmap(lambda i: j.lax.switch(
        i, [lambda: 1.0, lambda: 2.0, lambda: 3.0]))(n.array([0, 2])),
    "switch_empty": lambda j, n: j.lax.switch(0, []),
    "fori_np_bounds": lambda j, n: j.lax.fori_loop(np.int32(0), np.int32(3),
                                                   lambda i, v: v + i, 0),
    "fori_vmap_batched_upper": lambda j, n: j.vmap(lambda k: j.lax.fori_loop(
        0, k, lambda i, v: v + i, 0))(n.array([1, 4, 0])),
    "grad_through_while": lambda j, n: j.grad(lambda a: j.lax.while_loop(
        lambda v: v < 10, lambda v: v * 2, a))(1.0),
    "grad_fori_traced_bounds": lambda j, n: j.jit(j.grad(lambda a, k: j.lax.fori_loop(
        0, k, lambda i, v: v * a, 1.0)))(1.5, 3),
    "vjp_cotangent_dtype": lambda j, n: (lambda o, f: f(n.ones(3, n.int32)))(
        *j.vjp(n.sin, n.asarray(V3))),
    "jacrev_allow_int": lambda j, n: j.jacrev(lambda a: a * 2, allow_int=True)(n.asarray(V3)),
    "jacfwd_holomorphic_false": lambda j, n: j.jacfwd(lambda a: a * 2, holomorphic=False)(
        n.asarray(V3)),
    "hessian_holomorphic_false": lambda j, n: j.hessian(lambda a: (a ** 3).sum(),
                                                        holomorphic=False)(n.asarray(V3)),
}


@cases(CONTROL)
def test_transformations_and_control_flow(case):
    check(case, strict_errors=True)


X234 = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7 - 1.5
A23 = np.array([[0.1, -0.5, 0.6], [0.1, 0.4, -0.2]], np.float32)
RISING = np.array([1.0, 5.0, 2.0, 7.0, 3.0, 0.0, 4.0], np.float32)

LAX = {
    "round_away": lambda j, n: j.lax.round(n.array([0.5, 1.5, -0.5, 0.49999997, -2.7]),
                                           j.lax.RoundingMethod.AWAY_FROM_ZERO),
    "round_even": lambda j, n: j.lax.round(n.array([0.5, 1.5, 2.5, -0.5]), 1),
    "full_no_dtype": lambda j, n: (j.lax.full((2,), 3.0), j.lax.full((2,), 3),
                                   j.lax.full((2,), n.float32(3))),
    "full_like_weak": lambda j, n: j.lax.full_like(2.0, 3),
    "pow_int_exponent": lambda j, n: j.lax.pow(n.array([-2.0, -3.0]), n.array([3, -2])),
    "reshape_dimensions": lambda j, n: j.lax.reshape(n.asarray(X234), (4, 6), (2, 0, 1)),
    "dynamic_slice_negative": lambda j, n: [j.lax.dynamic_slice(n.arange(10.0), (i,), (3,))
                                            for i in (-1, -3, -12, 8, 12)],
    "dynamic_slice_negative_jit": lambda j, n: [j.jit(lambda k: j.lax.dynamic_slice(
        n.arange(10.0), (k,), (3,)))(i) for i in (-1, -12, 12)],
    "dynamic_slice_negative_vmap": lambda j, n: j.vmap(lambda k: j.lax.dynamic_slice(
        n.arange(10.0), (k,), (3,)))(n.array([-1, 2, -12, 30])),
    "dynamic_update_slice_negative": lambda j, n: j.lax.dynamic_update_slice(
        n.zeros((3, 4)), n.ones((2, 2)), (-1, n.asarray(-3))),
    "dynamic_update_slice_grad": lambda j, n: j.grad(lambda x, u: (j.lax.dynamic_update_slice(
        x, u, (-2,)) ** 2).sum(), argnums=(0, 1))(n.arange(4.0), n.ones(2)),
    "dynamic_slice_in_dim": lambda j, n: j.lax.dynamic_slice_in_dim(n.asarray(X234), -1, 2,
                                                                    axis=-1),
    "dynamic_index_in_dim": lambda j, n: j.lax.dynamic_index_in_dim(n.asarray(X234), 1, axis=1,
                                                                    keepdims=False),
    "index_in_dim": lambda j, n: j.lax.index_in_dim(n.asarray(X234), -1, axis=1),
    "dynamic_update_index_in_dim": lambda j, n: j.lax.dynamic_update_index_in_dim(
        n.asarray(X234), n.zeros((2, 4)), -1, axis=1),
    "dynamic_update_slice_in_dim": lambda j, n: j.lax.dynamic_update_slice_in_dim(
        n.asarray(X234), n.zeros((2, 1, 4)), 2, axis=1),
    "cumsum_reverse": lambda j, n: j.lax.cumsum(n.asarray(X234), axis=1, reverse=True),
    "cumprod": lambda j, n: j.lax.cumprod(n.asarray(RISING) / 3, reverse=True),
    "cummax": lambda j, n: j.lax.cummax(n.asarray(RISING)),
    "cummin_reverse": lambda j, n: j.lax.cummin(n.asarray(RISING), reverse=True),
    "cummax_grad": lambda j, n: j.grad(lambda x: j.lax.cummax(x).sum())(n.asarray(RISING)),
    "cumlogsumexp": lambda j, n: j.lax.cumlogsumexp(n.asarray(A23), axis=1),
    "associative_scan_pytree": lambda j, n: j.lax.associative_scan(
        lambda a, b: (a[0] + b[0], a[1] * b[1]), (n.arange(7.0), n.ones(7) * 1.1)),
    "associative_scan_reverse": lambda j, n: j.lax.associative_scan(j.lax.add, n.arange(6.0),
                                                                    reverse=True),
    "associative_scan_axis": lambda j, n: j.lax.associative_scan(j.lax.add, n.asarray(X234),
                                                                 axis=2),
    "associative_scan_jit_vmap": lambda j, n: j.jit(j.vmap(lambda r: j.lax.associative_scan(
        j.lax.max, r)))(n.asarray(A23)),
    "sort_tuple": lambda j, n: j.lax.sort((n.array([2, 1, 2, 0]), n.array([0.0, 1.0, 2.0, 3.0]))),
    "sort_two_keys": lambda j, n: j.lax.sort((n.array([2, 1, 2, 1]), n.array([3.0, 1.0, 2.0, 0.5]),
                                              n.arange(4)), num_keys=2),
    "sort_dimension": lambda j, n: j.lax.sort(n.asarray(A23), dimension=0),
    "sort_grad": lambda j, n: j.grad(lambda x: (j.lax.sort(x) * n.arange(3.0)).sum())(
        n.asarray(V3)),
    "sort_key_val": lambda j, n: j.lax.sort_key_val(n.asarray(A23), n.arange(6).reshape(2, 3),
                                                    dimension=0),
    "top_k_ties": lambda j, n: j.lax.top_k(n.array([1.0, 3.0, 2.0, 3.0, 3.0]), 3),
    "top_k_uint": lambda j, n: j.lax.top_k(n.array([5, 1, 7], n.uint32), 2),
    "top_k_grad": lambda j, n: j.grad(lambda x: j.lax.top_k(x, 2)[0].sum())(n.asarray(V3)),
    "top_k_vmap": lambda j, n: j.vmap(lambda r: j.lax.top_k(r, 2))(n.asarray(A23)),
    "collapse": lambda j, n: j.lax.collapse(n.asarray(X234), 0, 2),
    "bitwise": lambda j, n: (j.lax.bitwise_or(n.array([1, 4]), n.array([2, 4])),
                             j.lax.bitwise_xor(n.array([3]), n.array([1])),
                             j.lax.bitwise_not(n.array([0, -1]))),
    "trig": lambda j, n: (j.lax.asin(n.asarray(V3 / 3)), j.lax.acosh(n.asarray(V3 + 3)),
                          j.lax.sinh(n.asarray(V3)), j.lax.atanh(n.asarray(V3 / 3))),
    "cbrt_exp2_reciprocal": lambda j, n: (j.lax.cbrt(n.array([-8.0, 2.0])),
                                          j.lax.exp2(n.asarray(V3)),
                                          j.lax.reciprocal(n.asarray(V3))),
    "erf_inv": lambda j, n: j.lax.erf_inv(n.array([-0.9, 0.0, 0.5, 0.99])),
    "batch_matmul": lambda j, n: j.lax.batch_matmul(n.asarray(X234),
                                                    n.asarray(X234).transpose(0, 2, 1)),
}


@cases(LAX)
def test_lax_functions(case):
    check(case)


def _repr_of(case):
    return lambda j, n: repr(case(j, n))


def _disable_jit_case(j, n):
    with j.disable_jit():
        out = j.jit(lambda a: a * 2 if a.sum() > 0 else -a)(n.asarray(V3))
    return out, j.config.jax_disable_jit


def _enable_x64_case(j, n):
    with j.enable_x64(True):
        inside = n.ones(2).dtype
    return inside, n.ones(2).dtype, j.config.jax_enable_x64


API = {
    "eval_shape": _repr_of(lambda j, n: j.eval_shape(
        lambda x, y: (x @ y, 3.0, {"a": x.sum()}), n.ones((2, 3)),
        j.ShapeDtypeStruct((3, 4), n.float32))),
    "eval_shape_int": _repr_of(lambda j, n: j.eval_shape(lambda x: x, 2)),
    "eval_shape_f64_struct": _repr_of(lambda j, n: j.eval_shape(
        lambda x: x, j.ShapeDtypeStruct((2,), np.float64))),
    "shape_dtype_struct": lambda j, n: (repr(j.ShapeDtypeStruct((3, 4), n.float32)),
                                        j.ShapeDtypeStruct((3, 4), n.float32).size,
                                        j.ShapeDtypeStruct((3,), "float64").dtype),
    "make_jaxpr_return_shape": _repr_of(lambda j, n: j.make_jaxpr(
        lambda x: (x * 2, 1), return_shape=True)(1.0)[1]),
    "disable_jit": _disable_jit_case,
    "enable_x64": _enable_x64_case,
    "jacobian": lambda j, n: j.jacobian(lambda a: a ** 2)(n.asarray(V3)),
}


@cases(API)
def test_entry_points(case):
    check(case, strict_errors=True)


class _Keyed:
    def __init__(self, a, b):
        self.a, self.b = a, b


def _with_keyed(case):
    def run(j, n):
        tu = j.tree_util
        try:
            tu.register_pytree_with_keys(
                _Keyed, lambda k: (((tu.GetAttrKey("a"), k.a), (tu.GetAttrKey("b"), k.b)), None),
                lambda _, children: _Keyed(*children))
        except ValueError:
            pass  # already registered
        return case(tu, n)

    return run


_TREE = {"a": [1, ("x", 2)], "b": None, "k": _Keyed(3, 4)}

PATHS = {
    "leaves_with_path": lambda tu, n: repr(tu.tree_leaves_with_path(_TREE)),
    "flatten_with_path": lambda tu, n: repr(tu.tree_flatten_with_path(_TREE)[0]),
    "keystr": lambda tu, n: [tu.keystr(p) for p, _ in tu.tree_leaves_with_path(_TREE)],
    "keystr_simple": lambda tu, n: [tu.keystr(p, simple=True, separator="/")
                                    for p, _ in tu.tree_leaves_with_path(_TREE)],
    "map_with_path": lambda tu, n: tu.tree_map_with_path(lambda p, x, y: (len(p), x + y),
                                                         [1, (2,)], [10, (20,)]),
    "map_with_path_mismatch": lambda tu, n: tu.tree_map_with_path(lambda p, x, y: x, [1, 2],
                                                                  [1]),
    "is_leaf": lambda tu, n: repr(tu.tree_leaves_with_path(
        [1, (2,)], is_leaf=lambda x: isinstance(x, tuple))),
    "key_reprs": lambda tu, n: [repr(k) for k in (tu.SequenceKey(3), tu.DictKey("k"),
                                                  tu.GetAttrKey("n"), tu.FlattenedIndexKey(2))],
}


@cases({k: _with_keyed(v) for k, v in PATHS.items()})
def test_key_paths(case):
    check(case, strict_errors=True)
