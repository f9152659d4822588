"""Regressions found by the JAX-parity audit of API.md §3-7 and §10 (transformations, lax,
random, tree_util, nn, config), pinned without JAX: NumPy oracles, per-example loops for vmap,
eager results for jit. `tests/test_jax_parity_audit_transforms.py` holds the same cases
compared with JAX itself.
"""

from __future__ import annotations

import numpy as np
import pytest

import fnbrrr
import fnbrrr.numpy as jnp
from fnbrrr import core, lax, random
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
