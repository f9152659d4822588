"""Tests of fnbrrr/custom_derivatives.py: stop_gradient, custom_jvp, custom_vjp, checkpoint.

Each is checked under every transformation it must compose with: jvp, grad/vjp (to second
order), vmap, staging to IR and jit.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from helpers import close, f32, jit, needs_jit, staged

import fnbrrr.numpy as jnp
from fnbrrr import core, lax, tree_util
from fnbrrr.ad import grad, jacfwd, jvp, vjp
from fnbrrr.ad_util import defjvp, defvjp
from fnbrrr.batching import vmap
from fnbrrr.custom_derivatives import checkpoint, custom_jvp, custom_vjp, remat, stop_gradient


@pytest.fixture
def counting_sin():
    """A sin primitive that counts its eager evaluations; unregistered after the test."""
    name = "test_custom_derivatives_counting_sin"
    p = core.Primitive(name)
    calls = [0]

    def impl(x):
        calls[0] += 1
        return np.sin(x)

    p.impl = impl
    p.abstract_eval = lambda x: x
    defjvp(p, lambda g, x: lax.mul(g, lax.cos(x)))
    defvjp(p, lambda ct, ans, x: lax.mul(ct, lax.cos(x)))
    p.batch = lambda vals, dims: (p.bind(vals[0]), dims[0])
    try:
        yield p, calls
    finally:
        del core.primitives[name]


# --------------------------------------------------------------------------------------------
# stop_gradient
# --------------------------------------------------------------------------------------------


def test_stop_gradient_values_and_pytrees():
    x = jnp.array([1.0, 2.0])
    tree = {"f": x, "i": jnp.arange(3), "s": "name"}
    out = stop_gradient(tree)
    close(out["f"], x)
    assert out["i"] is tree["i"] and out["s"] == "name"


def test_stop_gradient_zero_derivative_of_any_order():
    f = lambda x: x * stop_gradient(x**2)  # as if x * c with c = x0 ** 2
    close(grad(f)(3.0), 9.0)
    close(grad(grad(f))(3.0), 0.0)
    close(grad(lambda x: stop_gradient(jnp.sin(x)))(1.0), 0.0)
    close(grad(grad(grad(lambda x: stop_gradient(x) ** 3)))(2.0), 0.0)
    close(jvp(lambda x: stop_gradient(x) * x, (2.0,), (1.0,))[1], 2.0)
    close(jacfwd(lambda x: stop_gradient(x) * x)(jnp.ones(2)), np.eye(2))
    close(vmap(grad(lambda x: stop_gradient(x) * x))(jnp.array([1.0, 5.0])), [1.0, 5.0])


# --------------------------------------------------------------------------------------------
# custom_jvp
# --------------------------------------------------------------------------------------------


@custom_jvp
def log1pexp(x):
    return jnp.log1p(jnp.exp(x))


@log1pexp.defjvp
def _log1pexp_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return log1pexp(x), t * (1.0 - 1.0 / (1.0 + jnp.exp(x)))


@custom_jvp
def fake_sin(x):
    """sin with a deliberately wrong derivative (3 * t), so tests can tell the rule is used."""
    return jnp.sin(x)


@fake_sin.defjvp
def _fake_sin_jvp(primals, tangents):
    return fake_sin(primals[0]), 3.0 * tangents[0]


@pytest.mark.filterwarnings("ignore:overflow encountered")  # log1pexp(100.) is inf in float32
def test_custom_jvp_under_jvp_grad_vjp():
    close(jvp(fake_sin, (0.5,), (2.0,)), (math.sin(0.5), 6.0))
    close(grad(fake_sin)(0.5), 3.0)
    close(vjp(fake_sin, jnp.ones(2))[1](jnp.array([1.0, 2.0]))[0], [3.0, 6.0])
    assert not math.isnan(float(grad(log1pexp)(100.0)))
    close(grad(log1pexp)(100.0), 1.0)
    close(grad(log1pexp)(0.0), 0.5)
    close(log1pexp(1.0), math.log1p(math.e), rtol=1e-6)


def test_custom_jvp_second_order_differentiates_the_rule():
    close(grad(grad(fake_sin))(0.5), 0.0)  # d/dx of the constant 3
    close(grad(grad(log1pexp))(0.0), 0.25)  # sigmoid'(0)


def test_custom_jvp_vmap_and_staging():
    xs = jnp.array([0.1, 0.2, 0.3])
    close(vmap(fake_sin)(xs), np.sin(xs), rtol=1e-6)
    close(vmap(grad(fake_sin))(xs), [3.0] * 3)
    close(grad(lambda xs: jnp.sum(vmap(fake_sin)(xs)))(xs), [3.0] * 3)
    close(jvp(vmap(fake_sin), (xs,), (jnp.ones(3),))[1], [3.0] * 3)
    close(staged(fake_sin)(0.5), math.sin(0.5), rtol=1e-6)
    close(staged(grad(fake_sin))(0.5), 3.0)
    close(grad(staged(fake_sin))(0.5), 3.0)


@needs_jit
def test_custom_jvp_jit():
    close(jit(fake_sin)(0.5), math.sin(0.5), rtol=1e-6)
    close(jit(grad(fake_sin))(0.5), 3.0)
    close(grad(jit(fake_sin))(0.5), 3.0)


def test_custom_jvp_pytrees_multiple_args_and_nondiff():
    @custom_jvp
    def f(p, y):
        return {"s": p["a"] * y, "d": p["b"] - y}

    @f.defjvp
    def f_jvp(primals, tangents):
        (p, y), (tp, ty) = primals, tangents
        return f(p, y), {"s": 10.0 * tp["a"] + ty, "d": tp["b"] - ty}

    p = {"a": 2.0, "b": 5.0}
    out, t = jvp(f, (p, 3.0), ({"a": 1.0, "b": 1.0}, 1.0))
    close((out["s"], out["d"], t["s"], t["d"]), (6.0, 2.0, 11.0, 0.0))
    gp, gy = grad(lambda p, y: f(p, y)["s"] + f(p, y)["d"], argnums=(0, 1))(p, 3.0)
    close((gp["a"], gp["b"], gy), (10.0, 1.0, 0.0))

    @functools.partial(custom_jvp, nondiff_argnums=(0,))
    def power(n, x):
        return x**n

    @power.defjvp
    def power_jvp(n, primals, tangents):
        (x,), (t,) = primals, tangents
        return x**n, 100.0 * n * t

    close(grad(power, argnums=1)(3, 2.0), 300.0)
    close(power(3, x=2.0), 8.0)


def test_custom_jvp_closure_over_differentiated_value_uses_body():
    def outer(w):
        @custom_jvp
        def scaled(x):
            return w * x

        scaled.defjvp(lambda p, t: (scaled(p[0]), 0.0 * t[0]))
        return scaled(3.0)

    close(grad(outer)(2.0), 3.0)  # d/dw of w * 3, through the body


def test_custom_jvp_errors():
    @custom_jvp
    def f(x):
        return x

    with pytest.raises(AttributeError, match="No JVP defined"):
        f(1.0)
    f.defjvp(lambda p, t: (p[0], (t[0], t[0])))
    with pytest.raises(TypeError, match="structure"):
        jvp(f, (1.0,), (1.0,))
    f.defjvp(lambda p, t: (p[0], jnp.ones(3)))
    with pytest.raises(TypeError, match="shape"):
        grad(f)(1.0)
    f.defjvp(lambda p, t: p[0])
    with pytest.raises(TypeError, match="pair"):
        jvp(f, (1.0,), (1.0,))


def test_custom_jvp_defjvps():
    @custom_jvp
    def f(x, y):
        return x * y

    f.defjvps(lambda tx, ans, x, y: 2.0 * tx, lambda ty, ans, x, y: 5.0 * ty)
    close(jvp(f, (1.0, 1.0), (1.0, 1.0))[1], 7.0)
    close(grad(f, argnums=(0, 1))(1.0, 1.0), (2.0, 5.0))


# --------------------------------------------------------------------------------------------
# custom_vjp
# --------------------------------------------------------------------------------------------


@custom_vjp
def clip_gradient(x):
    return x


clip_gradient.defvjp(lambda x: (x, None), lambda _, g: (jnp.clip(g, -1.0, 1.0),))


@custom_vjp
def scaled_sum(x, p):
    """sum(x * p['k']), whose bwd scales p's cotangent by 100 to be recognisable."""
    return jnp.sum(x * p["k"])


def _scaled_sum_fwd(x, p):
    return scaled_sum(x, p), (x, p["k"])


def _scaled_sum_bwd(res, g):
    x, k = res
    return g * k, {"k": 100.0 * g * x}


scaled_sum.defvjp(_scaled_sum_fwd, _scaled_sum_bwd)


def test_custom_vjp_under_grad_and_vjp():
    close(grad(lambda x: 5.0 * clip_gradient(x))(2.0), 1.0)
    close(grad(lambda x: -5.0 * clip_gradient(x))(2.0), -1.0)
    close(clip_gradient(2.0), 2.0)
    x, p = jnp.array([1.0, 2.0]), {"k": jnp.array([3.0, 4.0])}
    gx, gp = grad(scaled_sum, argnums=(0, 1))(x, p)
    close(gx, [3.0, 4.0])
    close(gp["k"], [100.0, 200.0])
    out, vjp_fn = vjp(scaled_sum, x, p)
    close(out, 11.0)
    close(vjp_fn(2.0)[1]["k"], [200.0, 400.0])


def test_custom_vjp_none_cotangent_and_nondiff():
    @custom_vjp
    def f(x, y):
        return x * y

    f.defvjp(lambda x, y: (x * y, y), lambda y, g: (g * y, None))
    gx, gy = grad(f, argnums=(0, 1))(2.0, 3.0)
    close((gx, gy), (3.0, 0.0))

    @functools.partial(custom_vjp, nondiff_argnums=(0,))
    def g(n, x):
        return x * n

    g.defvjp(lambda n, x: (x * n, None), lambda n, res, ct: (ct * n * 10.0,))
    close(grad(g, argnums=1)(2.0, 1.0), 20.0)


def test_custom_vjp_vmap_and_staging():
    xs = jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    p = {"k": jnp.array([1.0, -1.0])}
    close(vmap(scaled_sum, in_axes=(0, None))(xs, p), np.asarray(xs) @ np.array([1.0, -1.0]))
    gp = vmap(grad(scaled_sum, argnums=1), in_axes=(0, None))(xs, p)
    close(gp["k"], 100.0 * np.asarray(xs))
    # grad of vmap: p is shared across examples, so its cotangents add up
    gx, gp = grad(
        lambda xs, p: jnp.sum(vmap(scaled_sum, in_axes=(0, None))(xs, p)), argnums=(0, 1)
    )(xs, p)
    close(gp["k"], 100.0 * np.asarray(xs).sum(0))
    close(gx, np.broadcast_to([1.0, -1.0], (3, 2)))
    gx_t = grad(lambda xs: jnp.sum(vmap(scaled_sum, in_axes=(1, None))(xs, p)))(xs.T)
    close(gx_t, np.broadcast_to([1.0, -1.0], (3, 2)).T)
    close(staged(grad(lambda x: 5.0 * clip_gradient(x)))(2.0), 1.0)
    close(grad(staged(lambda x: 5.0 * clip_gradient(x)))(2.0), 1.0)


def test_custom_vjp_closure_over_differentiated_value_uses_body():
    def outer(w):
        @custom_vjp
        def scaled(x):
            return w * x

        scaled.defvjp(lambda x: (scaled(x), None), lambda _, g: (0.0 * g,))
        return scaled(3.0)

    close(grad(outer)(2.0), 3.0)
    close(vmap(outer)(jnp.array([1.0, 2.0])), [3.0, 6.0])


@needs_jit
def test_custom_vjp_jit():
    close(jit(grad(lambda x: 5.0 * clip_gradient(x)))(2.0), 1.0)
    close(grad(jit(lambda x: 5.0 * clip_gradient(x)))(2.0), 1.0)


def test_custom_vjp_errors():
    with pytest.raises(TypeError, match="forward-mode"):
        jvp(clip_gradient, (1.0,), (1.0,))

    @custom_vjp
    def f(x, y):
        return x * y

    with pytest.raises(AttributeError, match="No VJP defined"):
        f(1.0, 2.0)
    f.defvjp(lambda x, y: (x * y, None), lambda _, g: (g,))
    with pytest.raises(TypeError, match="one cotangent per"):
        grad(f)(1.0, 2.0)
    f.defvjp(lambda x, y: (x * y, None), lambda _, g: (jnp.ones(3), g))
    with pytest.raises(ValueError, match="shapes must match"):
        grad(f)(1.0, 2.0)
    f.defvjp(lambda x, y: x * y, lambda _, g: (g, g))
    with pytest.raises(TypeError, match="pair"):
        grad(f)(1.0, 2.0)


# --------------------------------------------------------------------------------------------
# checkpoint
# --------------------------------------------------------------------------------------------


def test_checkpoint_same_values_and_gradients():
    def block(x, w):
        return jnp.tanh(x * w["a"]) * jnp.sin(x) + w["b"]

    w = {"a": jnp.array([0.5, -1.0]), "b": 0.3}
    x = jnp.array([0.2, 0.9])
    loss = lambda w, x, blk: jnp.sum(blk(blk(x, w), w) ** 2)
    ref = grad(loss, argnums=(0, 1))(w, x, block)
    got = grad(loss, argnums=(0, 1))(w, x, checkpoint(block))
    for r, g in zip(tree_util.tree_leaves(ref), tree_util.tree_leaves(got)):
        close(g, r, rtol=1e-6)
    close(checkpoint(block)(x, w), block(x, w))
    assert remat is checkpoint


def test_checkpoint_recomputes_forward(counting_sin):
    sin_p, calls = counting_sin
    f = lambda x: sin_p.bind(sin_p.bind(x))
    x = f32(0.7)
    g_plain = grad(f)(x)
    plain_calls = calls[0]
    calls[0] = 0
    g_remat = grad(checkpoint(f))(x)
    assert plain_calls == 2  # the forward pass
    assert calls[0] == 4  # the forward pass, and again in the backward pass
    close(g_remat, g_plain, rtol=1e-7)


def test_checkpoint_composes():
    f = checkpoint(lambda x: jnp.sin(x) * x**2)
    g = lambda x: jnp.sin(x) * x**2
    close(grad(grad(f))(0.7), grad(grad(g))(0.7), rtol=1e-5)
    close(jvp(f, (0.7,), (1.0,))[1], grad(g)(0.7), rtol=1e-6)
    close(grad(lambda x: jvp(f, (x,), (1.0,))[1])(0.7), grad(grad(g))(0.7), rtol=1e-5)
    xs = jnp.array([0.1, 0.5])
    close(vmap(grad(f))(xs), vmap(grad(g))(xs), rtol=1e-6)
    close(grad(lambda xs: jnp.sum(vmap(f)(xs)))(xs), vmap(grad(g))(xs), rtol=1e-6)
    close(staged(grad(f))(0.7), grad(g)(0.7), rtol=1e-6)


def test_checkpoint_static_argnums_and_closure():
    w = 3.0

    def outer(w):
        f = checkpoint(lambda x, n: (x * w) ** n, static_argnums=(1,))
        return f(2.0, 3)

    close(grad(outer)(w), 3 * (2.0 * w) ** 2 * 2.0)
