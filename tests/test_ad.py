"""Tests of fnbrrr/ad.py: jvp, vjp, grad family, jacobians, custom rules, checkpoint.

Derivatives are checked against closed forms or central finite differences in float64.
"""

from __future__ import annotations

import collections
import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnbrrr
import fnbrrr.numpy as jnp
from fnbrrr import core, lax, tree_util
from fnbrrr.ad import (
    check_grads,
    checkpoint,
    custom_jvp,
    custom_vjp,
    grad,
    hessian,
    jacfwd,
    jacrev,
    jvp,
    jvp_of_primitive,
    linearize,
    numerical_jvp,
    remat,
    stop_gradient,
    value_and_grad,
    vjp,
    vjp_of_primitive,
)
from fnbrrr.ad_util import defjvp, defvjp
from fnbrrr.batching import vmap

# --------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture
def x64():
    """Run a test with 64-bit types on, restoring the previous setting afterwards."""
    previous = fnbrrr.config.jax_enable_x64
    fnbrrr.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        fnbrrr.config.update("jax_enable_x64", previous)


def staged(f):
    """`f` traced to IR and evaluated from it: the path `jit` takes, without the compiler."""

    def run(*args):
        flat, in_tree = tree_util.tree_flatten(args)
        out_tree = []

        def flat_fun(*leaves):
            out, tree = tree_util.tree_flatten(f(*tree_util.tree_unflatten(in_tree, leaves)))
            out_tree.append(tree)
            return out

        jaxpr, consts = core.trace_to_jaxpr(flat_fun, [core.get_aval(x) for x in flat])
        return tree_util.tree_unflatten(out_tree[0], core.eval_jaxpr(jaxpr, consts, *flat))

    return run


def _find_jit():
    jit = getattr(fnbrrr, "jit", None)
    if callable(jit):
        return jit
    try:
        from fnbrrr.jit.api import jit
    except ImportError:
        return None
    return jit


jit = _find_jit()
needs_jit = pytest.mark.skipif(jit is None, reason="fnbrrr.jit not available yet")


def fd_grad(f, x, eps=1e-6):
    """Central finite-difference gradient of scalar `f` at float64 array `x` (NumPy)."""
    x = np.asarray(x, np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (float(f(x + e)) - float(f(x - e))) / (2 * eps)
    return g


def f32(v):
    return jnp.array(v, jnp.float32)


def close(a, b, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(
        np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol, atol=atol
    )


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


# --------------------------------------------------------------------------------------------
# Helpers for rule writers
# --------------------------------------------------------------------------------------------


def test_primitive_helpers():
    sin_p = core.primitives["sin"]
    out, t = jvp_of_primitive(sin_p, [f32(0.5)], [f32(2.0)])
    close((out, t), (math.sin(0.5), 2 * math.cos(0.5)), rtol=1e-6)
    mul_p = core.primitives["mul"]
    cts = vjp_of_primitive(mul_p, [f32(2.0), f32(3.0)], f32(1.0))
    close(cts, [3.0, 2.0])
    num = numerical_jvp(lambda x: x * x, [f32(3.0)], [f32(1.0)], eps=1e-2)
    close(num[0], 6.0, rtol=1e-5)


def test_check_grads(x64):
    check_grads(
        lambda x, y: jnp.sin(x) * y**2, (np.array([0.3, 0.8]), np.array([1.5, -2.0])), order=2
    )

    @custom_jvp
    def wrong(x):
        return jnp.sin(x)

    wrong.defjvp(lambda p, t: (jnp.sin(p[0]), 2.0 * t[0]))
    with pytest.raises(AssertionError):
        check_grads(wrong, (np.array([0.3]),), order=1, modes=("fwd",))
