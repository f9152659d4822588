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
