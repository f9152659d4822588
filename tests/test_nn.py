"""Tests of fnbrrr.nn: activations and normalisers against NumPy float64 references,
numerical stability (values and gradients finite at ±1000), first and second derivatives
against finite differences, one_hot edge cases, initialiser shapes and variances, losses, and
the (init, apply) layers, under grad, vmap and jit.
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnbrrr
import fnbrrr.nn as nn
import fnbrrr.numpy as jnp
import fnbrrr.random as random
from fnbrrr.nn import initializers, layers

_erf = np.vectorize(math.erf)


def _sigmoid(x):
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(
        -np.abs(x))))


def _softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


_ALPHA, _SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946

# name -> (fnbrrr function, float64 NumPy reference)
ELEMENTWISE = {
    "relu": (nn.relu, lambda x: np.maximum(x, 0)),
    "relu6": (nn.relu6, lambda x: np.clip(x, 0, 6)),
    "leaky_relu": (nn.leaky_relu, lambda x: np.where(x >= 0, x, 0.01 * x)),
    "elu": (nn.elu, lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0)))),
    "celu": (lambda x: nn.celu(x, 0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(
        np.minimum(x, 0) / 0.5))),
    "selu": (nn.selu, lambda x: _SCALE * np.where(x > 0, x, _ALPHA * np.expm1(np.minimum(x, 0)))),
    "sigmoid": (nn.sigmoid, _sigmoid),
    "log_sigmoid": (nn.log_sigmoid, lambda x: -_softplus(-x)),
    "softplus": (nn.softplus, _softplus),
    "silu": (nn.silu, lambda x: x * _sigmoid(x)),
    "gelu_tanh": (nn.gelu, lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (
        x + 0.044715 * x**3)))),
    "gelu_exact": (lambda x: nn.gelu(x, approximate=False),
                   lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2)))),
    "hard_tanh": (nn.hard_tanh, lambda x: np.clip(x, -1, 1)),
    "hard_sigmoid": (nn.hard_sigmoid, lambda x: np.clip(x + 3, 0, 6) / 6),
    "hard_silu": (nn.hard_silu, lambda x: x * np.clip(x + 3, 0, 6) / 6),
    "soft_sign": (nn.soft_sign, lambda x: x / (np.abs(x) + 1)),
    "tanh": (nn.tanh, np.tanh),
}

# Reductions over the last axis (or all axes): name -> (function, reference)
NORMALISERS = {
    "softmax": (nn.softmax, lambda x: np.exp(x - x.max(-1, keepdims=True)) / np.exp(
        x - x.max(-1, keepdims=True)).sum(-1, keepdims=True)),
    "log_softmax": (nn.log_softmax, lambda x: x - x.max(-1, keepdims=True) - np.log(np.exp(
        x - x.max(-1, keepdims=True)).sum(-1, keepdims=True))),
    "logsumexp": (nn.logsumexp, lambda x: x.max() + np.log(np.exp(x - x.max()).sum())),
    "standardize": (nn.standardize, lambda x: (x - x.mean(-1, keepdims=True)) / np.sqrt(
        x.var(-1, keepdims=True) + 1e-5)),
    "glu": (nn.glu, lambda x: x[..., :x.shape[-1] // 2] * _sigmoid(x[..., x.shape[-1] // 2:])),
}

ALL = {**ELEMENTWISE, **NORMALISERS}


@pytest.fixture
def x64():
    fnbrrr.config.update("jax_enable_x64", True)
    yield
    fnbrrr.config.update("jax_enable_x64", False)


def _inputs(seed: int, shape=(3, 4), scale=3.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Values against NumPy
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ALL))
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_values_match_numpy_float64_reference(name, seed):
    fn, ref = ALL[name]
    x = _inputs(seed)
    got = np.asarray(fn(x))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref(x.astype(np.float64)), rtol=1e-4, atol=1e-5)


def test_sigmoid_saturates_cleanly_and_relu_keeps_integer_dtype():
    np.testing.assert_array_equal(np.asarray(nn.sigmoid(jnp.array([-1000.0, 1000.0]))), [0, 1])
    assert nn.relu(jnp.array([-2, 3])).dtype == np.int32
    np.testing.assert_array_equal(np.asarray(nn.relu(jnp.array([-2, 3]))), [0, 3])
    assert nn.sigmoid(1).dtype == np.float32  # integers are promoted by transcendental ones


# --------------------------------------------------------------------------------------------
# Stability: no NaN or inf in values or gradients at large magnitudes
# --------------------------------------------------------------------------------------------

EXTREME = np.array([-1000.0, -300.0, -30.0, -1.0, 0.0, 1.0, 30.0, 300.0, 1000.0], np.float32)


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_values_and_first_second_derivatives_are_finite_at_extremes(name):
    fn, ref = ELEMENTWISE[name]
    values = np.asarray(fn(EXTREME))
    assert np.all(np.isfinite(values)), values
    np.testing.assert_allclose(values, ref(EXTREME.astype(np.float64)), rtol=1e-4, atol=1e-5)
    first = np.asarray(fnbrrr.vmap(fnbrrr.grad(fn))(EXTREME))
    second = np.asarray(fnbrrr.vmap(fnbrrr.grad(fnbrrr.grad(fn)))(EXTREME))
    assert np.all(np.isfinite(first)), first
    assert np.all(np.isfinite(second)), second


@pytest.mark.parametrize("name", sorted(NORMALISERS))
def test_normalisers_are_finite_with_huge_spread(name):
    fn, ref = NORMALISERS[name]
    x = np.array([[1000.0, -1000.0, 0.0, 999.0], [-1000.0, -1000.0, -999.0, -1000.0]], np.float32)
    values = np.asarray(fn(x))
    assert np.all(np.isfinite(values))
    np.testing.assert_allclose(values, ref(x.astype(np.float64)), rtol=1e-4, atol=1e-5)
    cotangent = np.random.default_rng(0).standard_normal(values.shape).astype(np.float32)
    grad = np.asarray(fnbrrr.grad(lambda v: jnp.sum(fn(v) * cotangent))(x))
    assert np.all(np.isfinite(grad))
    hessian_vector = np.asarray(fnbrrr.jvp(fnbrrr.grad(lambda v: jnp.sum(fn(v) * cotangent)),
                                           (x,), (np.ones_like(x),))[1])
    assert np.all(np.isfinite(hessian_vector))


def test_losses_are_finite_for_extreme_logits():
    logits = jnp.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0]])
    onehot = nn.one_hot(jnp.array([1, 2]), 3)
    for loss in (lambda z: nn.softmax_cross_entropy(z, onehot),
                 lambda z: nn.softmax_cross_entropy_with_integer_labels(z, jnp.array([1, 2])),
                 lambda z: nn.sigmoid_binary_cross_entropy(z, jnp.ones_like(z))):
        value = np.asarray(loss(logits))
        grad = np.asarray(fnbrrr.grad(lambda z, f=loss: jnp.sum(f(z)))(logits))
        assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(np.asarray(nn.softmax_cross_entropy(logits, onehot)), [2000, 0])


# --------------------------------------------------------------------------------------------
# Derivatives against finite differences (float64)
# --------------------------------------------------------------------------------------------


def _away_from_kinks(seed: int, shape=(2, 3)) -> np.ndarray:
    """Values avoiding the non-smooth points 0, ±1, ±3, 6 of the piecewise functions."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-8, 8, shape)
    kinks = np.array([-3.0, -1.0, 0.0, 1.0, 3.0, 6.0])
    near = np.abs(x[..., None] - kinks).min(-1) < 0.05
    return np.where(near, x + 0.1, x)


def _central_difference(f, x: np.ndarray, direction: np.ndarray, eps=1e-6) -> np.ndarray:
    return (np.asarray(f(x + eps * direction)) - np.asarray(f(x - eps * direction))) / (2 * eps)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("name", sorted(ALL))
@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_gradients_match_finite_differences(name, seed):
    fn = ALL[name][0]
    x = _away_from_kinks(seed, (2, 4))
    rng = np.random.default_rng(seed + 1)
    direction, cotangent = rng.standard_normal(x.shape), rng.standard_normal(np.shape(fn(x)))

    def scalar(v):
        return jnp.sum(fn(v) * cotangent)

    grad = np.asarray(fnbrrr.grad(scalar)(jnp.asarray(x)))
    assert grad.dtype == np.float64
    np.testing.assert_allclose(np.sum(grad * direction),
                               _central_difference(scalar, x, direction), rtol=1e-6, atol=1e-8)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("name", sorted(ALL))
@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_second_derivatives_match_finite_differences_of_the_gradient(name, seed):
    fn = ALL[name][0]
    x = _away_from_kinks(seed, (2, 4))
    rng = np.random.default_rng(seed + 2)
    direction, cotangent = rng.standard_normal(x.shape), rng.standard_normal(np.shape(fn(x)))
    grad = fnbrrr.grad(lambda v: jnp.sum(fn(v) * cotangent))
    _, hvp = fnbrrr.jvp(grad, (jnp.asarray(x),), (jnp.asarray(direction),))
    np.testing.assert_allclose(np.asarray(hvp), _central_difference(grad, x, direction, 1e-5),
                               rtol=1e-5, atol=1e-6)


def test_gradients_at_non_smooth_points_follow_jax():
    at = jnp.array([0.0, 6.0, 1.0, -1.0])
    np.testing.assert_array_equal(np.asarray(fnbrrr.vmap(fnbrrr.grad(nn.relu))(at)), [0, 1, 1, 0])
    np.testing.assert_array_equal(np.asarray(fnbrrr.vmap(fnbrrr.grad(nn.relu6))(at)), [0, 0, 1, 0])
    np.testing.assert_array_equal(np.asarray(fnbrrr.vmap(fnbrrr.grad(nn.hard_tanh))(at)),
                                  [1, 0, 1, 1])
    assert float(fnbrrr.grad(nn.softplus)(0.0)) == 0.5
    assert float(fnbrrr.grad(fnbrrr.grad(nn.softplus))(0.0)) == 0.25


# --------------------------------------------------------------------------------------------
# softmax family: axes, masks, keepdims
# --------------------------------------------------------------------------------------------


def test_softmax_axes_and_mask():
    x = _inputs(0, (2, 3, 4))
    for axis in (0, 1, -1, (1, 2)):
        p = np.asarray(nn.softmax(x, axis=axis))
        np.testing.assert_allclose(p.sum(axis=axis), 1, rtol=1e-6)
        np.testing.assert_allclose(np.log(p), np.asarray(nn.log_softmax(x, axis=axis)),
                                   rtol=1e-5, atol=1e-6)
    mask = np.array([True, False, True, True])
    masked = np.asarray(nn.softmax(x, where=mask))
    assert np.all(masked[..., 1] == 0)
    np.testing.assert_allclose(masked.sum(-1), 1, rtol=1e-6)
    assert np.all(np.asarray(nn.log_softmax(x, where=mask))[..., 1] == -np.inf)
    grad = np.asarray(fnbrrr.grad(lambda v: nn.softmax(v * 1000.0, where=mask)[0, 0, 0])(x))
    assert np.all(np.isfinite(grad)) and np.all(grad[..., 1] == 0)


def test_logsumexp_axis_keepdims_weights_and_sign():
    x = _inputs(1, (2, 3))
    ref = np.log(np.exp(x.astype(np.float64)).sum(1))
    np.testing.assert_allclose(np.asarray(nn.logsumexp(x, axis=1)), ref, rtol=1e-5)
    assert nn.logsumexp(x, axis=1, keepdims=True).shape == (2, 1)
    assert nn.logsumexp(x, axis=(0, 1)).shape == ()
    assert nn.logsumexp(x).shape == ()
    b = np.array([1.0, -2.0, 0.5], np.float32)
    value, sign = nn.logsumexp(x, axis=1, b=b, return_sign=True)
    signed = (np.exp(x.astype(np.float64)) * b).sum(1)
    np.testing.assert_allclose(np.asarray(value), np.log(np.abs(signed)), rtol=1e-4)
    np.testing.assert_array_equal(np.asarray(sign), np.sign(signed))
    assert float(nn.logsumexp(jnp.array([-jnp.inf, 0.0]))) == 0.0
    assert float(nn.logsumexp(jnp.array([-jnp.inf, -jnp.inf]))) == -np.inf


def test_vmap_of_softmax_over_rows_equals_axis_minus_one():
    x = _inputs(2, (5, 4))
    np.testing.assert_allclose(np.asarray(fnbrrr.vmap(nn.softmax)(x)),
                               np.asarray(nn.softmax(x)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(fnbrrr.vmap(nn.logsumexp)(x)),
                               np.asarray(nn.logsumexp(x, axis=1)), rtol=1e-6)


# --------------------------------------------------------------------------------------------
# one_hot
# --------------------------------------------------------------------------------------------


def test_one_hot_edge_cases():
    np.testing.assert_array_equal(np.asarray(nn.one_hot(jnp.array([0, 2, 3, -1]), 3)),
                                  [[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]])
    assert nn.one_hot(2, 4).tolist() == [0, 0, 1, 0]  # a scalar label
    grid = nn.one_hot(jnp.array([[0, 1], [1, 5]]), 2)
    assert grid.shape == (2, 2, 2) and grid.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(grid[1, 1]), [0, 0])
    first_axis = nn.one_hot(jnp.array([0, 1, 1]), 2, axis=0)
    np.testing.assert_array_equal(np.asarray(first_axis), [[1, 0, 0], [0, 1, 1]])
    assert nn.one_hot(jnp.array([1]), 3, dtype=jnp.int32).dtype == np.int32
    assert nn.one_hot(jnp.zeros((0,), jnp.int32), 3).shape == (0, 3)
    assert nn.one_hot(jnp.array([0, 1]), 0).shape == (2, 0)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(-3, 8), min_size=0, max_size=6), st.integers(1, 6))
def test_one_hot_matches_numpy_for_any_labels(labels, num_classes):
    labels = np.array(labels, np.int32)
    want = (labels[:, None] == np.arange(num_classes)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(nn.one_hot(labels, num_classes)), want)


def test_one_hot_under_jit_and_vmap():
    labels = jnp.array([[0, 2], [1, 7]])
    jitted = fnbrrr.jit(lambda y: nn.one_hot(y, 3))(labels)
    np.testing.assert_array_equal(np.asarray(jitted), np.asarray(nn.one_hot(labels, 3)))
    mapped = fnbrrr.vmap(lambda y: nn.one_hot(y, 3))(labels)
    np.testing.assert_array_equal(np.asarray(mapped), np.asarray(nn.one_hot(labels, 3)))
    with pytest.raises(TypeError, match="static"):
        fnbrrr.jit(lambda y, n: nn.one_hot(y, n))(labels, 3)


# --------------------------------------------------------------------------------------------
# jit: one compiled program computing every function
# --------------------------------------------------------------------------------------------


def test_jit_of_every_elementwise_function_equals_eager():
    names = sorted(ELEMENTWISE)
    compiled = fnbrrr.jit(lambda v: [ELEMENTWISE[n][0](v) for n in names])
    x = _inputs(3, (3, 4))
    for name, got in zip(names, compiled(x)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(ELEMENTWISE[name][0](x)),
                                   rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("name", sorted(NORMALISERS))
def test_jit_of_normalisers_equals_eager(name):
    fn = NORMALISERS[name][0]
    x = _inputs(4, (3, 4)) * 100
    np.testing.assert_allclose(np.asarray(fnbrrr.jit(fn)(x)), np.asarray(fn(x)), rtol=1e-5,
                               atol=1e-6)


# --------------------------------------------------------------------------------------------
# Initialisers
# --------------------------------------------------------------------------------------------

KEY = random.PRNGKey(0)


def test_constant_initialisers():
    assert initializers.zeros(KEY, (2, 3)).tolist() == [[0.0] * 3] * 2
    assert initializers.zeros() is initializers.zeros
    assert initializers.ones(KEY, 2, jnp.int32).dtype == np.int32
    assert initializers.constant(-0.5)(KEY, (3,)).tolist() == [-0.5] * 3


@pytest.mark.parametrize("name,variance,distribution", [
    ("glorot_uniform", lambda fi, fo: 2 / (fi + fo), "uniform"),
    ("glorot_normal", lambda fi, fo: 2 / (fi + fo), "truncated"),
    ("he_uniform", lambda fi, fo: 2 / fi, "uniform"),
    ("he_normal", lambda fi, fo: 2 / fi, "truncated"),
    ("lecun_uniform", lambda fi, fo: 1 / fi, "uniform"),
    ("lecun_normal", lambda fi, fo: 1 / fi, "truncated"),
])
def test_variance_scaling_initialisers(name, variance, distribution):
    init = getattr(initializers, name)()
    fan_in, fan_out = 400, 100
    raw = init(KEY, (fan_in, fan_out))
    assert raw.shape == (fan_in, fan_out) and raw.dtype == np.float32
    w = np.asarray(raw, np.float64)
    target = variance(fan_in, fan_out)
    assert abs(w.var() / target - 1) < 0.05, (w.var(), target)
    assert abs(w.mean()) < 0.05 * math.sqrt(target)
    bound = math.sqrt(3 * target) if distribution == "uniform" else 2 * math.sqrt(
        target) / 0.87962566103423978
    assert np.abs(w).max() <= bound * (1 + 1e-6)
    assert np.abs(w).max() > 0.9 * bound  # the distribution reaches its bounds
    np.testing.assert_array_equal(w, np.asarray(init(KEY, (fan_in, fan_out))))
    assert init(KEY, (4, 5), jnp.float16).dtype == np.float16


def test_fans_of_convolution_kernels_and_errors():
    assert initializers.compute_fans((3, 3, 16, 32)) == (144.0, 288.0)  # HWIO
    assert initializers.compute_fans((32, 16, 3, 3), in_axis=1, out_axis=0) == (144.0, 288.0)
    w = np.asarray(initializers.he_normal()(KEY, (3, 3, 32, 64)), np.float64)
    assert abs(w.var() / (2 / 288) - 1) < 0.05
    with pytest.raises(ValueError, match="at least 2-D"):
        initializers.glorot_uniform()(KEY, (5,))
    with pytest.raises(ValueError, match="mode"):
        initializers.variance_scaling(1.0, "fan_sideways", "normal")


def test_simple_random_initialisers():
    n = np.asarray(initializers.normal(0.5)(KEY, (20000,)), np.float64)
    assert abs(n.std() - 0.5) < 0.01
    u = np.asarray(initializers.uniform(2.0)(KEY, (20000,)))
    assert u.min() >= 0 and u.max() < 2 and abs(u.mean() - 1) < 0.03
    t = np.asarray(initializers.truncated_normal(1.0)(KEY, (20000,)))
    assert np.abs(t).max() <= 2 and abs(t.std() - 0.8796) < 0.02


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------


def test_cross_entropies_match_references_and_each_other():
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((5, 4)).astype(np.float32) * 3
    labels = rng.integers(0, 4, 5)
    onehot = np.eye(4, dtype=np.float32)[labels]
    logp = NORMALISERS["log_softmax"][1](logits.astype(np.float64))
    ref = -logp[np.arange(5), labels]
    np.testing.assert_allclose(np.asarray(nn.softmax_cross_entropy(logits, onehot)), ref,
                               rtol=1e-5)
    np.testing.assert_allclose(
        np.asarray(nn.softmax_cross_entropy_with_integer_labels(logits, labels)), ref, rtol=1e-5)
    grad = np.asarray(fnbrrr.grad(lambda z: jnp.sum(nn.softmax_cross_entropy(z, onehot)))(logits))
    np.testing.assert_allclose(grad, np.exp(logp) - onehot, rtol=1e-5, atol=1e-6)
    soft = np.full((5, 4), 0.25, np.float32)
    np.testing.assert_allclose(np.asarray(nn.softmax_cross_entropy(logits, soft)),
                               -(0.25 * logp).sum(-1), rtol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        nn.softmax_cross_entropy_with_integer_labels(logits, labels[:3])
    with pytest.raises(TypeError, match="integers"):
        nn.softmax_cross_entropy_with_integer_labels(logits, onehot[:, 0])


def test_cross_entropy_ignores_minus_inf_logits_with_zero_labels():
    logits = jnp.array([[0.0, -jnp.inf, 1.0]])
    labels = jnp.array([[0.5, 0.0, 0.5]])
    value = nn.softmax_cross_entropy(logits, labels)
    grad = fnbrrr.grad(lambda z: jnp.sum(nn.softmax_cross_entropy(z, labels)))(logits)
    assert np.all(np.isfinite(np.asarray(value))) and not np.any(np.isnan(np.asarray(grad)))


def test_sigmoid_binary_cross_entropy_and_squared_losses():
    logits = np.array([-3.0, 0.0, 2.0], np.float32)
    labels = np.array([0.0, 1.0, 0.25], np.float32)
    p = _sigmoid(logits.astype(np.float64))
    ref = -labels * np.log(p) - (1 - labels) * np.log(1 - p)
    np.testing.assert_allclose(np.asarray(nn.sigmoid_binary_cross_entropy(logits, labels)), ref,
                               rtol=1e-5)
    pred, target = jnp.array([1.0, 4.0]), jnp.array([0.0, 2.0])
    np.testing.assert_allclose(np.asarray(nn.squared_error(pred, target)), [1, 4])
    np.testing.assert_allclose(np.asarray(nn.l2_loss(pred, target)), [0.5, 2])
    np.testing.assert_allclose(np.asarray(nn.l2_loss(pred)), [0.5, 8])
    assert float(nn.mse(pred, target)) == 2.5
    np.testing.assert_allclose(np.asarray(fnbrrr.grad(nn.mse)(pred, target)), [1, 2])


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------


def test_dense_and_mlp_shapes_and_values():
    out_shape, params = nn.Dense(3).init(KEY, (-1, 5))
    assert out_shape == (-1, 3) and params["w"].shape == (5, 3) and params["b"].shape == (3,)
    x = _inputs(5, (2, 5))
    np.testing.assert_allclose(np.asarray(nn.Dense(3).apply(params, x)),
                               x @ np.asarray(params["w"]) + np.asarray(params["b"]), rtol=1e-5)
    _, no_bias = nn.Dense(3, use_bias=False).init(KEY, (5,))
    assert set(no_bias) == {"w"}
    mlp = nn.MLP([8, 8, 2], activation=nn.tanh)
    shape, mlp_params = mlp.init(KEY, (-1, 5))
    assert shape == (-1, 2) and [p["w"].shape for p in mlp_params] == [(5, 8), (8, 8), (8, 2)]
    h = x
    for i, p in enumerate(mlp_params):
        h = h @ np.asarray(p["w"]) + np.asarray(p["b"])
        h = np.tanh(h) if i < 2 else h
    np.testing.assert_allclose(np.asarray(mlp.apply(mlp_params, x)), h, rtol=1e-5, atol=1e-6)
    init, apply = nn.Linear(4)  # a Layer unpacks into its two functions
    assert callable(init) and callable(apply)


def test_embedding_and_layer_norm():
    shape, params = nn.Embedding(10, 4).init(KEY, (2, 3))
    assert shape == (2, 3, 4) and params["embedding"].shape == (10, 4)
    ids = jnp.array([[0, 9, 3], [3, 3, 1]])
    out = np.asarray(nn.Embedding(10, 4).apply(params, ids))
    np.testing.assert_array_equal(out, np.asarray(params["embedding"])[np.asarray(ids)])
    with pytest.raises(TypeError, match="integers"):
        nn.Embedding(10, 4).apply(params, jnp.zeros((2,)))
    norm = nn.LayerNorm()
    _, ln = norm.init(KEY, (-1, 6))
    y = np.asarray(norm.apply(ln, _inputs(6, (4, 6)) * 10 + 3))
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(-1), 1, atol=1e-3)
    scaled = {"scale": jnp.full((6,), 2.0), "bias": jnp.ones(6)}
    np.testing.assert_allclose(np.asarray(norm.apply(scaled, _inputs(6, (4, 6)))).mean(-1), 1,
                               atol=1e-5)


def test_dropout_modes_rates_and_expected_value():
    drop = nn.Dropout(0.25)
    _, params = drop.init(KEY, (10000,))
    x = jnp.ones(10000)
    assert drop.apply(params, x, deterministic=True) is not None
    np.testing.assert_array_equal(np.asarray(drop.apply(params, x, deterministic=True)), 1)
    y = np.asarray(drop.apply(params, x, key=random.PRNGKey(1)))
    assert set(np.unique(y).tolist()) == {0.0, float(np.float32(1 / 0.75))}
    assert abs((y == 0).mean() - 0.25) < 0.02 and abs(y.mean() - 1) < 0.03
    other = np.asarray(drop.apply(params, x, key=random.PRNGKey(2)))
    assert not np.array_equal(y, other)
    with pytest.raises(ValueError, match="key"):
        drop.apply(params, x)
    np.testing.assert_array_equal(np.asarray(nn.Dropout(1.0).apply((), x, key=KEY)), 0)
    np.testing.assert_array_equal(np.asarray(nn.Dropout(0.0).apply((), x)), 1)
    with pytest.raises(ValueError, match="rate"):
        nn.Dropout(1.5)


def test_sequential_infers_shapes_wraps_functions_and_splits_keys():
    model = nn.Sequential(nn.Dense(16), nn.relu, nn.Dropout(0.5), nn.Dense(16), nn.Dropout(0.5),
                          nn.Flatten(), lambda h: h[:, :4])
    shape, params = model.init(KEY, (-1, 3))
    assert shape == (-1, 4) and len(params) == 7 and params[1] == ()
    x = _inputs(7, (2, 3))
    eval_out = model.apply(params, x, deterministic=True)
    assert eval_out.shape == (2, 4)
    train = np.asarray(model.apply(params, x, key=random.PRNGKey(3)))
    assert not np.allclose(train, np.asarray(eval_out))
    np.testing.assert_array_equal(train, np.asarray(model.apply(params, x, key=random.PRNGKey(3))))
    with pytest.raises(ValueError, match="parameter entries"):
        model.apply(params[:-1], x, deterministic=True)
    assert nn.Flatten().init(KEY, (-1, 2, 3))[0] == (-1, 6)
    assert nn.Sequential().apply((), x) is x


def test_layers_compose_with_grad_vmap_and_jit_and_learn():
    model = nn.Sequential(nn.Dense(16), nn.gelu, nn.LayerNorm(), nn.Dense(1))
    _, params = model.init(KEY, (-1, 2))
    xs = random.normal(random.PRNGKey(4), (64, 2))
    ys = jnp.sin(xs[:, :1]) + xs[:, 1:] ** 2

    def loss(p, x, y):
        return nn.mse(model.apply(p, x), y)

    step = fnbrrr.jit(fnbrrr.value_and_grad(loss))
    eager_value, eager_grads = fnbrrr.value_and_grad(loss)(params, xs, ys)
    value, grads = step(params, xs, ys)
    np.testing.assert_allclose(float(value), float(eager_value), rtol=1e-5)
    for g, e in zip(fnbrrr.tree_util.tree_leaves(grads), fnbrrr.tree_util.tree_leaves(eager_grads)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-4, atol=1e-6)
    per_example = fnbrrr.vmap(lambda x: model.apply(params, x))(xs)
    np.testing.assert_allclose(np.asarray(per_example), np.asarray(model.apply(params, xs)),
                               rtol=1e-5, atol=1e-6)
    first = float(value)
    for _ in range(30):
        value, grads = step(params, xs, ys)
        params = fnbrrr.tree_util.tree_map(lambda p, g: p - 0.05 * g, params, grads)
    assert float(value) < 0.5 * first


# --------------------------------------------------------------------------------------------
# The docstring examples run
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [nn, nn._activations, nn._losses, layers, initializers])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def _conv_reference(x, w, stride, pad):
    """NCHW/OIHW cross-correlation by explicit loops over output pixels (float64)."""
    x = np.pad(x, ((0, 0), (0, 0), pad[0], pad[1]))
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return out


@pytest.mark.parametrize("stride,padding,pad", [(1, "SAME", ((1, 1), (1, 1))),
                                                (2, "VALID", ((0, 0), (0, 0))),
                                                (1, ((2, 0), (0, 1)), ((2, 0), (0, 1)))])
def test_conv2d_layer_matches_loop_reference(stride, padding, pad):
    conv = nn.Conv2d(4, kernel_size=3, strides=stride, padding=padding)
    shape, params = conv.init(KEY, (-1, 2, 7, 6))
    assert params["w"].shape == (4, 2, 3, 3) and params["b"].shape == (4,)
    x = _inputs(3, (2, 2, 7, 6))
    y = np.asarray(conv.apply(params, x))
    expected = _conv_reference(x.astype(np.float64), np.asarray(params["w"], np.float64), stride,
                               pad) + np.asarray(params["b"])[None, :, None, None]
    assert shape == (-1,) + expected.shape[1:]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    fan_in = 2 * 3 * 3  # LeCun normal over an OIHW kernel's in-channels and window
    assert 0.3 < np.std(np.asarray(nn.Conv2d(64).init(KEY, (1, 2, 5, 5))[1]["w"])) * math.sqrt(
        fan_in) < 1.7


def test_pool_layers_match_numpy_and_cnn_learns():
    x = _inputs(4, (2, 3, 6, 4))
    blocks = x.reshape(2, 3, 3, 2, 2, 2)
    np.testing.assert_array_equal(np.asarray(nn.MaxPool2d(2).apply((), x)), blocks.max((3, 5)))
    np.testing.assert_allclose(np.asarray(nn.AvgPool2d(2).apply((), x)), blocks.mean((3, 5)),
                               rtol=1e-6)
    assert nn.MaxPool2d(3, strides=1, padding="SAME").init(KEY, (-1, 3, 6, 4))[0] == (-1, 3, 6, 4)
    with pytest.raises(ValueError, match="MaxPool2d: expects NCHW"):
        nn.MaxPool2d(2).init(KEY, (6, 4))
    with pytest.raises(ValueError, match="Conv2d: kernel_size must be"):
        nn.Conv2d(4, kernel_size=(3, 0))
    model = nn.Sequential(nn.Conv2d(4), nn.relu, nn.MaxPool2d(2), nn.Flatten(), nn.Dense(2))
    shape, params = model.init(KEY, (-1, 1, 6, 6))
    assert shape == (-1, 2)
    images = _inputs(5, (8, 1, 6, 6))
    labels = (images[:, 0, :3].sum((1, 2)) > images[:, 0, 3:].sum((1, 2))).astype(np.int32)

    def loss(p):
        logits = model.apply(p, images)
        return jnp.mean(nn.softmax_cross_entropy_with_integer_labels(logits, labels))

    step = fnbrrr.jit(lambda p: fnbrrr.tree_util.tree_map(lambda a, g: a - 0.1 * g, p,
                                                          fnbrrr.grad(loss)(p)))
    first = float(loss(params))
    for _ in range(30):
        params = step(params)
    assert float(loss(params)) < 0.5 * first


def test_gelu_of_a_python_float_is_strongly_typed_as_in_jax():
    # JAX computes gelu with constants of x's dtype, so the result is a plain float32.
    for approximate in (True, False):
        out = fnbrrr.nn.gelu(0.7, approximate=approximate)
        assert out.dtype == np.float32 and not out.weak_type
