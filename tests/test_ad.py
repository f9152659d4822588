"""Tests of fnbrrr/ad/: jvp, vjp, linearize, the grad family, jacobians, composition.

Derivatives are checked against closed forms or central finite differences in float64.
Custom rules, checkpoint and stop_gradient are tested in test_custom_derivatives.py.
"""

from __future__ import annotations

import collections
import math

import numpy as np
import pytest
from helpers import close, f32, jit, needs_jit, staged
from hypothesis import given, settings
from hypothesis import strategies as st

import fnbrrr
import fnbrrr.numpy as jnp
from fnbrrr import core, lax, tree_util
from fnbrrr.ad import (
    grad,
    hessian,
    jacfwd,
    jacrev,
    jvp,
    linearize,
    value_and_grad,
    vjp,
)
from fnbrrr.ad_util import defjvp, defvjp
from fnbrrr.batching import vmap

# --------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------


def fd_grad(f, x, eps=1e-6):
    """Central finite-difference gradient of scalar `f` at float64 array `x` (NumPy)."""
    x = np.asarray(x, np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (float(f(x + e)) - float(f(x - e))) / (2 * eps)
    return g


@pytest.fixture
def counting_sin():
    """A sin primitive that counts its eager evaluations; unregistered after the test."""
    name = "test_ad_counting_sin"
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


Params = collections.namedtuple("Params", "w b")


@tree_util.register_pytree_node_class
class Box:
    """A registered custom pytree node with one child and aux data."""

    def __init__(self, value, tag="box"):
        self.value, self.tag = value, tag

    def tree_flatten(self):
        return (self.value,), self.tag

    @classmethod
    def tree_unflatten(cls, tag, children):
        return cls(children[0], tag)


# --------------------------------------------------------------------------------------------
# grad and value_and_grad
# --------------------------------------------------------------------------------------------


def test_grad_closed_forms():
    close(grad(jnp.sin)(0.7), math.cos(0.7))
    close(grad(lambda x: x**3)(2.0), 12.0)
    close(grad(lambda x: jnp.sum(jnp.exp(x)))(jnp.array([0.0, 1.0])), [1.0, math.e])


def test_grad_argnums_int_and_tuple():
    f = lambda x, y: x * y**2
    close(grad(f, argnums=1)(3.0, 2.0), 12.0)
    gx, gy = grad(f, argnums=(0, 1))(3.0, 2.0)
    close(gx, 4.0)
    close(gy, 12.0)
    one = grad(f, argnums=(1,))(3.0, 2.0)
    assert isinstance(one, tuple) and len(one) == 1
    close(one[0], 12.0)
    close(grad(f, argnums=-1)(3.0, 2.0), 12.0)


def test_grad_keyword_arguments_pass_through():
    f = lambda x, scale=1.0: scale * x**2
    close(grad(f)(3.0, scale=10.0), 60.0)


def test_grad_keeps_pytree_structure_and_dtype():
    params = {"a": [jnp.ones(2), Params(w=jnp.ones((2, 2)), b=2.0)], "box": Box(jnp.ones(3))}

    def loss(p):
        w = p["a"][1]
        return jnp.sum(p["a"][0] * 3.0) + jnp.sum(w.w) * w.b + jnp.sum(p["box"].value ** 2)

    g = grad(loss)(params)
    assert tree_util.tree_structure(g) == tree_util.tree_structure(params)
    assert isinstance(g["a"][1], Params) and isinstance(g["box"], Box) and g["box"].tag == "box"
    close(g["a"][0], [3.0, 3.0])
    close(g["a"][1].w, np.full((2, 2), 2.0))
    close(g["a"][1].b, 4.0)
    close(g["box"].value, [2.0, 2.0, 2.0])
    for leaf in tree_util.tree_leaves(g):
        assert leaf.dtype == jnp.float32


def test_grad_dtype_follows_argument(x64):
    g = grad(lambda x: jnp.sum(x * x))(np.ones(3, np.float64))
    assert g.dtype == np.float64
    g32 = grad(lambda x: jnp.sum(x * x).astype(np.float64))(jnp.ones(3, jnp.float32))
    assert g32.dtype == np.float32


def test_grad_of_unused_argument_is_zero():
    g = grad(lambda x, y: x * 2.0, argnums=1)(1.0, jnp.ones((2, 3)))
    assert g.shape == (2, 3)
    close(g, np.zeros((2, 3)))


def test_grad_has_aux():
    g, aux = grad(lambda x: (x**2, {"double": x * 2}), has_aux=True)(3.0)
    close(g, 6.0)
    close(aux["double"], 6.0)
    assert isinstance(aux["double"], fnbrrr.Array) and not isinstance(aux["double"], core.Tracer)


def test_value_and_grad():
    value, g = value_and_grad(lambda x: jnp.sum(x**2))(jnp.array([1.0, 2.0]))
    close(value, 5.0)
    close(g, [2.0, 4.0])
    (value, aux), g = value_and_grad(lambda x: (x * 3.0, "note"), has_aux=True)(2.0)
    close(value, 6.0)
    assert aux == "note"
    close(g, 3.0)
    value, (g0, g1) = value_and_grad(lambda x, y: x * y, argnums=(0, 1))(2.0, 5.0)
    close((value, g0, g1), (10.0, 5.0, 2.0))


def test_grad_python_control_flow_on_concrete_values():
    def f(x):
        if x > 0:
            return x**2
        total = x
        while total < 10.0:
            total = total * 2.0 + 20.0
        return total

    close(grad(f)(3.0), 6.0)
    close(grad(f)(-1.0), 2.0)


def test_grad_errors():
    with pytest.raises(TypeError, match="scalar"):
        grad(lambda x: x * 2.0)(jnp.ones(3))
    with pytest.raises(TypeError, match="scalar"):
        grad(lambda x: (x, x))(1.0)
    with pytest.raises(TypeError, match="int32"):
        grad(lambda x: x * 2.0)(3)
    with pytest.raises(TypeError, match=r"argument 0 \('p'\) at \['w'\]"):
        grad(lambda p: jnp.sum(p["w"] * 1.0))({"w": jnp.arange(3)})
    with pytest.raises(TypeError, match="bool"):
        grad(lambda x: 1.0)(jnp.array(True))
    with pytest.raises((TypeError, ValueError), match="pair"):
        grad(lambda x: x**2, has_aux=True)(1.0)
    with pytest.raises(TypeError, match="argnums"):
        grad(lambda x, y: x * y, argnums=2)(1.0, 2.0)
    with pytest.raises(TypeError, match="real-valued"):
        grad(lambda x: jnp.sum(x > 0.0))(1.0)


def test_grad_allow_int():
    gx, gn = grad(lambda x, n: x * n, argnums=(0, 1), allow_int=True)(2.0, 3)
    close(gx, 3.0)
    close(gn, 0)


def test_leaked_tracer_is_an_error():
    leaked = []
    grad(lambda x: leaked.append(x) or x * 2.0)(1.0)
    with pytest.raises(core.UnexpectedTracerError, match="ReverseTrace"):
        jnp.sin(leaked[0])


# --------------------------------------------------------------------------------------------
# jvp
# --------------------------------------------------------------------------------------------


def test_jvp_closed_form_and_pytrees():
    y, t = jvp(jnp.sin, (0.5,), (2.0,))
    close(y, math.sin(0.5))
    close(t, 2 * math.cos(0.5))
    f = lambda p, s: {"out": p["w"] * s, "c": 3.0}
    out, tan = jvp(f, ({"w": jnp.array([1.0, 2.0])}, 3.0), ({"w": jnp.array([1.0, 0.0])}, 1.0))
    close(out["out"], [3.0, 6.0])
    close(tan["out"], [3.0 + 1.0, 2.0])
    close(tan["c"], 0.0)


def test_jvp_has_aux_and_integer_primals():
    out, tan, aux = jvp(lambda x: (x * 2.0, x + 1.0), (1.0,), (1.0,), has_aux=True)
    close((out, tan, aux), (2.0, 2.0, 2.0))
    assert not isinstance(aux, core.Tracer)
    out, tan = jvp(lambda x, n: x * n, (2.0, 3), (1.0, 5))
    close(tan, 3.0)


def test_jvp_errors():
    with pytest.raises(TypeError, match="tuples or lists"):
        jvp(jnp.sin, 1.0, 1.0)
    with pytest.raises(ValueError, match=r"shapes.*f32\[3\].*f32\[2\]"):
        jvp(jnp.sin, (jnp.ones(3),), (jnp.ones(2),))
    with pytest.raises(TypeError, match="dtypes"):
        jvp(jnp.sin, (jnp.ones(3),), (jnp.ones(3, jnp.int32),))
    with pytest.raises(TypeError, match="structure"):
        jvp(lambda a: a[0], ((1.0, 2.0),), ([1.0, 2.0],))


def test_jvp_perturbation_confusion():
    inner = lambda x: jvp(lambda y: x * y, (1.0,), (1.0,))[1]  # d/dy (x * y) = x
    _, t = jvp(inner, (2.0,), (1.0,))
    close(t, 1.0)


# --------------------------------------------------------------------------------------------
# vjp
# --------------------------------------------------------------------------------------------


def test_vjp_multiple_primals_and_pytrees():
    f = lambda x, p: (x * p["a"], jnp.sum(p["b"]))
    x, p = jnp.array([1.0, 2.0]), {"a": 3.0, "b": jnp.ones(2)}
    out, vjp_fn = vjp(f, x, p)
    close(out[0], [3.0, 6.0])
    ct_x, ct_p = vjp_fn((jnp.array([1.0, 10.0]), 2.0))
    close(ct_x, [3.0, 30.0])
    close(ct_p["a"], 21.0)
    close(ct_p["b"], [2.0, 2.0])
    assert isinstance(vjp_fn((jnp.ones(2), 1.0)), tuple)


def test_vjp_has_aux_and_reuse():
    out, vjp_fn, aux = vjp(lambda x: (jnp.sin(x), x * 2.0), 0.3, has_aux=True)
    close(aux, 0.6)
    close(vjp_fn(1.0)[0], math.cos(0.3))
    close(vjp_fn(2.0)[0], 2 * math.cos(0.3))


def test_vjp_integer_primal_gets_zero_cotangent():
    out, vjp_fn = vjp(lambda x, n: x * n, 2.0, jnp.array([1, 2]))
    ct_x, ct_n = vjp_fn(jnp.ones(2))
    close(ct_x, 3.0)
    assert ct_n.dtype == jnp.int32 and ct_n.shape == (2,)
    close(ct_n, [0, 0])


def test_vjp_cotangent_errors():
    _, vjp_fn = vjp(lambda x: (x, x * 2.0), jnp.ones(3))
    with pytest.raises(ValueError, match="structure"):
        vjp_fn(jnp.ones(3))
    with pytest.raises(ValueError, match="shape"):
        vjp_fn((jnp.ones(3), jnp.ones(2)))
    with pytest.raises(TypeError, match="dtype"):
        vjp_fn((jnp.ones(3), jnp.ones(3, jnp.int32)))


# --------------------------------------------------------------------------------------------
# linearize
# --------------------------------------------------------------------------------------------


def test_linearize_matches_jvp():
    f = lambda x, y: jnp.sin(x) * y + x**2
    x, y = jnp.array([0.1, 0.2]), jnp.array([1.0, 3.0])
    out, f_jvp = linearize(f, x, y)
    close(out, f(x, y))
    for tx, ty in [(jnp.ones(2), jnp.zeros(2)), (jnp.array([1.0, -2.0]), jnp.array([0.5, 4.0]))]:
        close(f_jvp(tx, ty), jvp(f, (x, y), (tx, ty))[1])


def test_linearize_pytrees_and_errors():
    f = lambda p: {"y": p["a"] * jnp.exp(p["b"])}
    out, f_jvp = linearize(f, {"a": 2.0, "b": 0.0})
    close(out["y"], 2.0)
    close(f_jvp({"a": 1.0, "b": 1.0})["y"], 1.0 + 2.0)
    with pytest.raises(TypeError, match="structure"):
        f_jvp((1.0, 1.0))
    with pytest.raises(ValueError, match="shapes"):
        f_jvp({"a": jnp.ones(2), "b": 1.0})


def test_linearize_runs_primal_once(counting_sin):
    sin_p, calls = counting_sin
    out, f_jvp = linearize(lambda x: sin_p.bind(sin_p.bind(x)), f32(0.5))
    assert calls[0] == 2
    close(f_jvp(f32(1.0)), math.cos(math.sin(0.5)) * math.cos(0.5), rtol=1e-6)
    close(f_jvp(f32(2.0)), 2 * math.cos(math.sin(0.5)) * math.cos(0.5), rtol=1e-6)
    assert calls[0] == 2  # tangent work only


# --------------------------------------------------------------------------------------------
# Jacobians and Hessians
# --------------------------------------------------------------------------------------------


def _f_r3_r2(x):
    return jnp.stack([x[0] * x[1] * x[2], jnp.sin(x[0]) + x[2] ** 2])


def _jac_r3_r2(x):
    x0, x1, x2 = x
    return np.array([[x1 * x2, x0 * x2, x0 * x1], [math.cos(x0), 0.0, 2 * x2]])


@pytest.mark.parametrize("jac", [jacfwd, jacrev])
def test_jacobian_closed_form(jac):
    x = np.array([0.5, -1.0, 2.0], np.float32)
    j = jac(_f_r3_r2)(jnp.asarray(x))
    assert j.shape == (2, 3)
    close(j, _jac_r3_r2(x), rtol=1e-6)


@pytest.mark.parametrize("jac", [jacfwd, jacrev])
def test_jacobian_shapes_and_pytrees(jac):
    f = lambda p, s: {"y": jnp.sum(p["w"] * p["v"], axis=1) * s, "z": jnp.sum(p["w"])}
    p = {"w": jnp.ones((2, 3)), "v": jnp.arange(3.0)}
    j = jac(f)(p, 2.0)
    assert j["y"]["w"].shape == (2, 2, 3) and j["y"]["v"].shape == (2, 3)
    assert j["z"]["w"].shape == (2, 3) and j["z"]["v"].shape == (3,)
    close(j["y"]["v"], 2.0 * np.ones((2, 3)))
    close(j["y"]["w"][1, 1], 2.0 * np.arange(3.0))
    close(j["y"]["w"][1, 0], np.zeros(3))
    j = jac(f, argnums=(0, 1))(p, 2.0)  # outer structure: the output's; inner: per argnum
    assert isinstance(j["y"], tuple) and len(j["y"]) == 2
    close(j["y"][1], np.asarray(p["w"]) @ np.asarray(p["v"]))
    close(j["z"][0]["w"], np.ones((2, 3)))


@pytest.mark.parametrize("jac", [jacfwd, jacrev])
def test_jacobian_has_aux(jac):
    j, aux = jac(lambda x: (x**2, {"sum": jnp.sum(x)}), has_aux=True)(jnp.array([1.0, 2.0]))
    close(j, np.diag([2.0, 4.0]))
    close(aux["sum"], 3.0)


def test_jacobian_errors():
    with pytest.raises(TypeError, match="int32"):
        jacfwd(lambda x: x)(jnp.arange(3))
    with pytest.raises(TypeError, match="int32"):
        jacrev(lambda x: x)(jnp.arange(3))
    with pytest.raises(TypeError, match="argnums"):
        jacrev(lambda x: x, argnums="0")


def test_hessian_closed_form():
    h = hessian(lambda x: jnp.sum(x**3) + x[0] * x[1])(jnp.array([1.0, 2.0]))
    close(h, [[6.0, 1.0], [1.0, 12.0]])


def _rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def _rosenbrock_grad_np(x):
    g = np.zeros_like(x)
    g[:-1] = -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
    return g


def test_hessian_100_parameters_vs_finite_differences(x64):
    x = np.random.RandomState(0).uniform(-1, 1, 100)
    close(grad(_rosenbrock)(jnp.asarray(x)), _rosenbrock_grad_np(x), rtol=1e-12, atol=1e-12)
    h = np.asarray(hessian(_rosenbrock)(jnp.asarray(x)))
    assert h.shape == (100, 100) and h.dtype == np.float64
    eps = 1e-6
    fd = np.stack(
        [
            (_rosenbrock_grad_np(x + eps * e) - _rosenbrock_grad_np(x - eps * e)) / (2 * eps)
            for e in np.eye(100)
        ],
        axis=1,
    )
    close(h, fd, rtol=1e-6, atol=1e-5)
    close(h, h.T, rtol=1e-12, atol=1e-12)
    close(np.triu(h, 2), np.zeros((100, 100)), atol=0)  # Rosenbrock's Hessian is tridiagonal
    close(h[0, 0], 1200 * x[0] ** 2 - 400 * x[1] + 2)


def test_hessian_vector_product_vs_finite_differences(x64):
    rng = np.random.RandomState(1)
    x, v = rng.standard_normal(100), rng.standard_normal(100)
    hvp = jvp(grad(_rosenbrock), (jnp.asarray(x),), (jnp.asarray(v),))[1]
    eps = 1e-5
    g = lambda z: np.asarray(grad(_rosenbrock)(jnp.asarray(z)))
    close(hvp, (g(x + eps * v) - g(x - eps * v)) / (2 * eps), rtol=1e-6, atol=1e-5)
    close(hvp, np.asarray(hessian(_rosenbrock)(jnp.asarray(x))) @ v, rtol=1e-10)


# --------------------------------------------------------------------------------------------
# Composition
# --------------------------------------------------------------------------------------------


def test_higher_order_grads():
    x = 1.3
    close(grad(grad(grad(lambda x: x**4)))(x), 24 * x, rtol=1e-5)
    close(grad(grad(grad(jnp.sin)))(x), -math.cos(x), rtol=1e-5)
    close(grad(grad(grad(grad(jnp.sin))))(x), math.sin(x), rtol=1e-5)


def test_jacfwd_of_jacrev_is_hessian():
    f = lambda x: jnp.sum(jnp.sin(x) * x[::-1]) * x[0] * jnp.exp(x[1] * x[2])
    x = jnp.array([0.3, -0.7, 1.1])
    h = hessian(f)(x)
    close(jacfwd(jacrev(f))(x), h, rtol=1e-5)
    close(jacrev(jacfwd(f))(x), h, rtol=1e-4, atol=1e-5)
    close(jacrev(jacrev(f))(x), h, rtol=1e-4, atol=1e-5)
    close(h, np.asarray(h).T, rtol=1e-5, atol=1e-6)


def test_jvp_of_grad_and_grad_of_jvp():
    f = lambda x: x**3 * jnp.sin(x)
    d2 = lambda x: 6 * x * math.sin(x) + 6 * x**2 * math.cos(x) - x**3 * math.sin(x)
    close(jvp(grad(f), (0.8,), (1.0,))[1], d2(0.8), rtol=1e-5)
    close(grad(lambda x: jvp(f, (x,), (1.0,))[1])(0.8), d2(0.8), rtol=1e-5)


def test_grad_perturbation_confusion():
    close(grad(lambda x: grad(lambda y: x * y)(1.0))(2.0), 1.0)
    # the inner function closes over the outer variable and is differentiated in both
    f = lambda x: grad(lambda y: x * y**2 + x**2 * y)(x)
    close(grad(f)(1.5), 6 * 1.5)  # the inner grad is 2xy + x**2 at y = x, i.e. 3 x**2


def test_vmap_of_grad_and_grad_of_vmap():
    f = lambda x: jnp.sin(x) * x
    xs = jnp.array([0.1, 0.5, 2.0])
    close(vmap(grad(f))(xs), [float(grad(f)(x)) for x in xs])
    close(grad(lambda xs: jnp.sum(vmap(f)(xs)))(xs), vmap(grad(f))(xs))
    hs = vmap(hessian(lambda x: jnp.sum(x**3)))(jnp.ones((4, 2)))
    close(hs, np.broadcast_to(6.0 * np.eye(2), (4, 2, 2)))


def test_grad_inside_staging_and_vjp_under_staging():
    f = lambda x: jnp.sum(jnp.tanh(x) * x)
    x = jnp.array([0.2, -0.4])
    close(staged(grad(f))(x), grad(f)(x), rtol=1e-6)
    close(staged(grad(grad(jnp.sin)))(0.4), -math.sin(0.4), rtol=1e-6)
    _, vjp_fn = vjp(jnp.sin, x)
    close(staged(vjp_fn)(jnp.ones(2))[0], np.cos(x), rtol=1e-6)


@needs_jit
def test_grad_and_jit_compose():
    f = lambda x: jnp.sum(jnp.tanh(x) * x)
    x = jnp.array([0.2, -0.4])
    close(jit(grad(f))(x), grad(f)(x), rtol=1e-6)
    close(grad(jit(f))(x), grad(f)(x), rtol=1e-6)
    close(jit(hessian(f))(x), hessian(f)(x), rtol=1e-5)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=4))
def test_grad_matches_finite_differences(values):
    previous = fnbrrr.config.jax_enable_x64
    fnbrrr.config.update("jax_enable_x64", True)
    try:
        x = np.array(values, np.float64)
        f = lambda z: jnp.sum(jnp.sin(z) * z**2 + jnp.exp(-z) * 0.5) * jnp.tanh(jnp.sum(z))
        f_np = lambda z: np.sum(np.sin(z) * z**2 + np.exp(-z) * 0.5) * np.tanh(np.sum(z))
        close(grad(f)(jnp.asarray(x)), fd_grad(f_np, x), rtol=1e-6, atol=1e-7)
    finally:
        fnbrrr.config.update("jax_enable_x64", previous)


def test_linearize_of_call_like_primitives_returns_concrete_primals():
    # jit and scan JVP rules bind primals and tangents in one equation; the primal output must
    # still come back as a concrete Array, not a leaked tracer.
    f = fnbrrr.jit(lambda x: jnp.sin(x) * 2)
    y, f_jvp = fnbrrr.linearize(f, 0.5)
    assert isinstance(y, fnbrrr.core.ArrayImpl)
    np.testing.assert_allclose(float(y), 2 * np.sin(0.5), rtol=1e-6)
    np.testing.assert_allclose(float(f_jvp(1.0)), 2 * np.cos(0.5), rtol=1e-6)
    cube = lambda x: fnbrrr.lax.scan(lambda c, _: (c * x, None), 1.0, None, length=3)[0]  # noqa: E731
    y, f_jvp = fnbrrr.linearize(cube, 2.0)
    assert float(y) == 8.0 and float(f_jvp(1.0)) == 12.0


def test_derivatives_keep_the_weak_type_of_python_scalars_as_in_jax():
    g = fnbrrr.grad(lambda x: x * x)
    assert g(3.0).weak_type and g(3.0).dtype == np.float32
    assert not g(np.float32(3.0)).weak_type
    assert fnbrrr.jit(g)(3.0).weak_type
    grads = fnbrrr.grad(lambda p: p["w"] * p["b"])({"w": 2.0, "b": np.float32(3.0)})
    assert grads["w"].weak_type and not grads["b"].weak_type
    _, tangent = fnbrrr.jvp(lambda a: a ** 2, (3.0,), (1.0,))
    assert tangent.weak_type and float(tangent) == 6.0
    # a weak gradient promotes like the Python float it stands for
    assert (g(3.0) * np.float16(1)).dtype == np.float16
    assert fnbrrr.jacrev(lambda a: a ** 3)(2.0).weak_type
    assert fnbrrr.jacfwd(lambda a: a ** 3)(2.0).weak_type
    assert fnbrrr.vjp(lambda a: a * a, 3.0)[1](1.0)[0].weak_type
    assert fnbrrr.linearize(lambda a: a * a, 3.0)[1](1.0).weak_type
    hess = fnbrrr.hessian(lambda p: jnp.sum(p["a"] ** 3) * p["b"])(
        {"a": jnp.ones(2), "b": 2.0})
    assert hess["b"]["b"].weak_type and not hess["a"]["a"].weak_type
