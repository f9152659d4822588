"""Control flow (fnbrrr/_prims/control_flow/): cond, switch, scan, fori_loop, while_loop, map.

Each construct is checked eagerly against a plain Python loop / if, under jit, under grad (against
the gradient of the equivalent unrolled Python program and against finite differences), under
vmap (against a per-example loop, with batched predicates and indices), and in compositions.
Errors are checked for the names and types they report. Reverse mode of scan is checked to
store residuals rather than re-run the forward pass (trace counts, primitive counts).
"""

from __future__ import annotations

import functools
from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnbrrr
import fnbrrr.numpy as jnp
from fnbrrr import core
from fnbrrr._prims import control_flow as cf

SETTINGS = settings(max_examples=15, deadline=None, derandomize=True)


def assert_close(got, want, rtol=1e-5, atol=1e-6):
    """Leafwise allclose; a single array `got` is compared with `want` as one array."""
    if isinstance(got, (fnbrrr.Array, np.ndarray, float, int)):
        got, want = [got], [np.asarray([np.asarray(w) for w in want]) if isinstance(
            want, list) else want]
    got_leaves = fnbrrr.tree_util.tree_leaves(got)
    want_leaves = fnbrrr.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64),
                                   rtol=rtol, atol=atol)


def numerical_grad(f, x, eps=1e-3):
    """Central differences of a scalar function of one float array, computed in float64."""
    x = np.asarray(x, np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        hi = float(f(jnp.asarray((x + step).astype(np.float32))))
        lo = float(f(jnp.asarray((x - step).astype(np.float32))))
        grad[i] = (hi - lo) / (2 * eps)
    return grad


def rnn_step(w):
    def step(h, x):
        h = jnp.tanh(w * h + x)
        return h, h * h
    return step


def python_scan(f, init, xs, length=None, reverse=False):
    """The reference semantics of scan, as a Python loop over concrete slices."""
    leaves = fnbrrr.tree_util.tree_leaves(xs)
    n = length if length is not None else len(leaves[0])
    carry, ys = init, [None] * n
    for i in (reversed(range(n)) if reverse else range(n)):
        x = None if xs is None else fnbrrr.tree_util.tree_map(lambda a, i=i: a[i], xs)
        carry, ys[i] = f(carry, x)
    if n == 0 or ys[0] is None:
        return carry, None
    return carry, fnbrrr.tree_util.tree_map(lambda *a: jnp.stack(a), *ys)


# --------------------------------------------------------------------------------------------
# scan
# --------------------------------------------------------------------------------------------


def test_scan_cumsum_eager():
    carry, ys = cf.scan(lambda c, x: (c + x, c + x), 0.0, jnp.arange(5.0))
    assert_close(carry, 10.0)
    assert_close(ys, np.cumsum(np.arange(5.0)))
    assert ys.dtype == np.float32 and ys.shape == (5,)


@SETTINGS
@given(length=st.integers(0, 6), width=st.integers(1, 3), reverse=st.booleans(),
       seed=st.integers(0, 2**16))
def test_scan_matches_python_loop(length, width, reverse, seed):
    rng = np.random.default_rng(seed)
    xs = {"a": jnp.asarray(rng.standard_normal((length, width)).astype(np.float32)),
          "b": jnp.asarray(rng.standard_normal((length,)).astype(np.float32))}
    init = (jnp.zeros(width), jnp.asarray(0.5))
    w = jnp.asarray(rng.standard_normal(width).astype(np.float32))

    def f(carry, x):
        h, s = carry
        h = jnp.tanh(h * w + x["a"] * s)
        return (h, s + x["b"]), {"h": h, "n": jnp.sum(h)}

    got = cf.scan(f, init, xs, reverse=reverse)
    if length == 0:
        assert_close(got[0], init)
        assert got[1]["h"].shape == (0, width) and got[1]["n"].shape == (0,)
        return
    assert_close(got, python_scan(f, init, xs, reverse=reverse))


def test_scan_xs_none_and_y_none():
    carry, ys = cf.scan(lambda c, _: (c * 2.0, None), 1.0, None, length=4)
    assert_close(carry, 16.0)
    assert ys is None


def test_scan_pytree_carry_namedtuple_and_int_counter():
    State = namedtuple("State", ["step", "total"])
    final, ys = cf.scan(lambda s, x: (State(s.step + 1, s.total + x), s.step),
                        State(0, 0.0), jnp.arange(3.0))
    assert isinstance(final, State)
    assert int(final.step) == 3 and float(final.total) == 3.0
    np.testing.assert_array_equal(np.asarray(ys), [0, 1, 2])
    assert ys.dtype == np.int32


def test_scan_reverse_keeps_positions():
    _, ys = cf.scan(lambda c, x: (c + x, c), 0.0, jnp.arange(4.0), reverse=True)
    assert_close(ys, [6.0, 5.0, 3.0, 0.0])


def test_scan_weak_initial_carry_takes_the_body_type():
    carry, _ = cf.scan(lambda c, x: (c + x, None), 0, jnp.arange(3.0))
    assert carry.dtype == np.float32 and not carry.weak_type
    assert_close(carry, 3.0)


def test_map():
    assert_close(cf.map(lambda r: jnp.sum(r * r), jnp.ones((3, 4))), [4.0, 4.0, 4.0])


def test_scan_is_one_primitive_in_the_ir():
    jaxpr = fnbrrr.make_jaxpr(lambda xs: cf.scan(rnn_step(0.5), 0.0, xs))(jnp.ones(100))
    assert [e.primitive.name for e in jaxpr.eqns].count("scan") == 1
    assert len(jaxpr.eqns) <= 2  # the scan (and possibly a cast of the initial carry)


# --------------------------------------------------------------------------------------------
# cond and switch
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pred", [True, False, 1, 0, np.bool_(True), jnp.asarray(False)])
def test_cond_eager(pred):
    got = cf.cond(pred, lambda x: x * 2.0, lambda x: -x, jnp.arange(3.0))
    assert_close(got, (np.arange(3.0) * 2.0) if bool(pred) else -np.arange(3.0))


def test_cond_no_operands_closure_and_pytree_output():
    x = jnp.asarray(2.0)
    out = cf.cond(x > 1, lambda: {"a": x, "b": (x * 3, 1)}, lambda: {"a": -x, "b": (x, 2)})
    assert_close(out, {"a": 2.0, "b": (6.0, 1)})
    assert out["b"][1].dtype == np.int32


def test_cond_runs_only_the_selected_branch_eagerly():
    calls = []

    def poison(x):
        calls.append("traced")
        return jnp.log(x - 10.0)  # nan here if it were evaluated on x = 1

    with np.errstate(invalid="raise"):
        out = cf.cond(True, lambda x: x + 1.0, poison, 1.0)
    assert calls == ["traced"]  # traced once, for its types
    assert_close(out, 2.0)


@pytest.mark.parametrize("index, expected", [(-3, 0), (0, 0), (1, 1), (2, 2), (9, 2)])
def test_switch_clamps_the_index(index, expected):
    branches = [lambda x, k=k: x + float(k) for k in range(3)]
    assert_close(cf.switch(index, branches, 10.0), 10.0 + expected)
    jitted = fnbrrr.jit(lambda i, x: cf.switch(i, branches, x))
    assert_close(jitted(jnp.asarray(index), 10.0), 10.0 + expected)


def test_switch_single_branch():
    assert_close(cf.switch(5, [lambda x: x * 2.0], 3.0), 6.0)


# --------------------------------------------------------------------------------------------
# fori_loop and while_loop
# --------------------------------------------------------------------------------------------


def test_fori_loop_static_bounds_is_a_scan():
    assert int(cf.fori_loop(0, 5, lambda i, t: t + i, 0)) == 10
    assert int(cf.fori_loop(3, 1, lambda i, t: t + i, 7)) == 7  # empty range
    jaxpr = fnbrrr.make_jaxpr(lambda x: cf.fori_loop(0, 4, lambda i, v: v * x, 1.0))(2.0)
    assert "scan" in [e.primitive.name for e in jaxpr.eqns]


def test_fori_loop_traced_bounds_is_a_while_loop():
    f = fnbrrr.jit(lambda lo, hi, x: cf.fori_loop(lo, hi, lambda i, v: v + i * x, 0.0))
    assert_close(f(2, 6, 0.5), (2 + 3 + 4 + 5) * 0.5)
    jaxpr = fnbrrr.make_jaxpr(lambda hi: cf.fori_loop(0, hi, lambda i, v: v + i, 0))(3)
    assert "while" in [e.primitive.name for e in jaxpr.eqns]


def test_while_loop_pytree_state():
    def body(s):
        return {"n": s["n"] + 1, "x": s["x"] * 2.0}

    out = cf.while_loop(lambda s: s["x"] < 100.0, body, {"n": 0, "x": 1.0})
    assert int(out["n"]) == 7 and float(out["x"]) == 128.0


def test_while_loop_never_entered():
    assert_close(cf.while_loop(lambda v: v < 0.0, lambda v: v - 1.0, 5.0), 5.0)


# --------------------------------------------------------------------------------------------
# jit (eager and jitted results agree)
# --------------------------------------------------------------------------------------------


def test_jit_agrees_with_eager():
    xs = jnp.asarray(np.linspace(-1, 1, 6).astype(np.float32))

    def program(w, xs):
        h, ys = cf.scan(rnn_step(w), 0.1, xs)
        h = cf.cond(h > 0, lambda v: v * 2.0, lambda v: v - 1.0, h)
        n = cf.while_loop(lambda s: s[1] < 50.0, lambda s: (s[0] + 1, s[1] * 3.0), (0, 1.0))
        return h + ys.sum() + n[0], cf.fori_loop(0, 3, lambda i, v: v * w, xs)

    for w in (0.3, -1.2):
        assert_close(fnbrrr.jit(program)(w, xs), program(w, xs), rtol=1e-5)


def test_jit_traced_predicate():
    f = fnbrrr.jit(lambda p, x: cf.cond(p, jnp.sin, jnp.cos, x))
    assert_close(f(True, 0.3), np.sin(0.3))
    assert_close(f(False, 0.3), np.cos(0.3))


# --------------------------------------------------------------------------------------------
# grad: against the unrolled Python program and finite differences
# --------------------------------------------------------------------------------------------

XS = jnp.asarray(np.array([0.3, -0.5, 0.8, 0.1, -0.2], np.float32))


def scan_loss(w, h0, xs, reverse=False):
    h, ys = cf.scan(rnn_step(w), h0, xs, reverse=reverse)
    return h + jnp.sum(ys * jnp.arange(1.0, 1.0 + xs.shape[0]))


def unrolled_loss(w, h0, xs, reverse=False):
    h, ys = h0, []
    order = range(xs.shape[0])
    for i in (reversed(order) if reverse else order):
        h, y = rnn_step(w)(h, xs[i])
        ys.append((i, y))
    return h + sum(y * (i + 1.0) for i, y in ys)


@pytest.mark.parametrize("reverse", [False, True])
def test_grad_scan_matches_unrolled_program(reverse):
    args = (jnp.asarray(0.7), jnp.asarray(0.2), XS)
    got = fnbrrr.grad(scan_loss, argnums=(0, 1, 2))(*args, reverse=reverse)
    want = fnbrrr.grad(unrolled_loss, argnums=(0, 1, 2))(*args, reverse=reverse)
    assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_grad_scan_matches_finite_differences():
    g = fnbrrr.grad(lambda xs: scan_loss(0.7, 0.2, xs))(XS)
    assert_close(g, numerical_grad(lambda xs: scan_loss(0.7, 0.2, xs), XS), rtol=2e-2,
                 atol=2e-3)


def test_grad_scan_pytree_carry_and_closed_over_matrix():
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.standard_normal((3, 3)).astype(np.float32) * 0.5)
    xs = jnp.asarray(rng.standard_normal((4, 3)).astype(np.float32))

    def loss(w, xs):
        def step(c, x):
            h = jnp.tanh(w @ c["h"] + x)
            return {"h": h, "count": c["count"] + 1}, None

        final, _ = cf.scan(step, {"h": jnp.zeros(3), "count": 0}, xs)
        return jnp.sum(final["h"] ** 2)

    def unrolled(w, xs):
        h = jnp.zeros(3)
        for i in range(4):
            h = jnp.tanh(w @ h + xs[i])
        return jnp.sum(h ** 2)

    assert_close(fnbrrr.grad(loss, argnums=(0, 1))(w, xs),
                 fnbrrr.grad(unrolled, argnums=(0, 1))(w, xs), rtol=1e-5)


def test_grad_of_grad_scan():
    f = lambda w: scan_loss(w, 0.2, XS)  # noqa: E731
    g = lambda w: unrolled_loss(w, 0.2, XS)  # noqa: E731
    assert_close(fnbrrr.grad(fnbrrr.grad(f))(0.7), fnbrrr.grad(fnbrrr.grad(g))(0.7), rtol=1e-4)
    assert_close(fnbrrr.jacfwd(fnbrrr.grad(f))(0.7), fnbrrr.grad(fnbrrr.grad(g))(0.7), rtol=1e-4)


def test_jvp_scan():
    primal, tangent = fnbrrr.jvp(lambda w: scan_loss(w, 0.2, XS), (0.7,), (1.0,))
    want = fnbrrr.jvp(lambda w: unrolled_loss(w, 0.2, XS), (0.7,), (1.0,))
    assert_close((primal, tangent), want, rtol=1e-5)


@pytest.mark.parametrize("x", [-0.8, 0.6])
def test_grad_cond_both_branches(x):
    def f(x):
        return cf.cond(x > 0, lambda v: jnp.sin(v) * v, lambda v: v ** 3 + 1.0, x)

    def python_f(x):
        return jnp.sin(x) * x if x > 0 else x ** 3 + 1.0

    assert_close(fnbrrr.grad(f)(x), fnbrrr.grad(python_f)(x))
    assert_close(fnbrrr.grad(f)(x), numerical_grad(f, x), rtol=1e-2, atol=1e-3)
    assert_close(fnbrrr.jvp(f, (x,), (1.0,)), fnbrrr.jvp(python_f, (x,), (1.0,)))
    assert_close(fnbrrr.grad(fnbrrr.grad(f))(x), fnbrrr.grad(fnbrrr.grad(python_f))(x))


def test_grad_switch_closed_over_values():
    def f(w, i):
        return cf.switch(i, [lambda: w * w, lambda: jnp.sin(w), lambda: 3.0 * w])

    for i, want in ((0, 2 * 0.5), (1, np.cos(0.5)), (2, 3.0)):
        assert_close(fnbrrr.grad(f)(0.5, i), want)
        assert_close(fnbrrr.jit(fnbrrr.grad(f))(0.5, i), want)


def test_grad_fori_loop_static_bounds():
    f = lambda x: cf.fori_loop(0, 4, lambda i, v: jnp.sin(v) * x + i, x)  # noqa: E731

    def unrolled(x):
        v = x
        for i in range(4):
            v = jnp.sin(v) * x + i
        return v

    assert_close(fnbrrr.grad(f)(0.4), fnbrrr.grad(unrolled)(0.4), rtol=1e-5)


def test_jvp_while_loop_and_reverse_mode_error():
    def f(x):
        return cf.while_loop(lambda s: s[0] < 4, lambda s: (s[0] + 1, jnp.sin(s[1]) * x),
                             (0, x))[1]

    def unrolled(x):
        v = x
        for _ in range(4):
            v = jnp.sin(v) * x
        return v

    assert_close(fnbrrr.jvp(f, (0.9,), (1.0,)), fnbrrr.jvp(unrolled, (0.9,), (1.0,)))
    assert_close(fnbrrr.jacfwd(f)(0.9), fnbrrr.grad(unrolled)(0.9), rtol=1e-5)
    with pytest.raises(TypeError, match="while_loop is not supported.*scan.*fori_loop"):
        fnbrrr.grad(f)(0.9)
    with pytest.raises(TypeError, match="while_loop"):
        fnbrrr.jit(fnbrrr.grad(f))(0.9)


def test_grad_through_while_condition_constant_only_is_zero():
    f = lambda t: cf.while_loop(lambda v: v < t, lambda v: v + 1.0, 0.0)  # noqa: E731
    assert_close(fnbrrr.grad(f)(3.5), 0.0)


def test_jit_of_grad_of_scan():
    g = fnbrrr.jit(fnbrrr.grad(scan_loss, argnums=(0, 2)))
    want = fnbrrr.grad(unrolled_loss, argnums=(0, 2))(0.7, 0.2, XS)
    assert_close(g(0.7, 0.2, XS), want, rtol=1e-5)


def test_grad_of_scan_of_cond():
    def loss(w, xs):
        def step(c, x):
            c = cf.cond(x > 0, lambda: jnp.sin(c * w) + x, lambda: c * x - w)
            return c, c
        c, ys = cf.scan(step, 0.3, xs)
        return c + jnp.sum(ys)

    def unrolled(w, xs):
        c, total = 0.3, 0.0
        for i, x_value in enumerate(np.asarray(XS)):
            x = xs[i]
            c = jnp.sin(c * w) + x if x_value > 0 else c * x - w
            total = total + c
        return c + total

    assert_close(fnbrrr.grad(loss, argnums=(0, 1))(0.7, XS),
                 fnbrrr.grad(unrolled, argnums=(0, 1))(0.7, XS), rtol=1e-5)


def test_scan_inside_scan_grad():
    xs = jnp.asarray(np.arange(6.0, dtype=np.float32).reshape(2, 3) / 6)

    def loss(w):
        def outer(c, row):
            inner, _ = cf.scan(lambda d, x: (jnp.sin(d * w + x), None), c, row)
            return inner, inner
        c, ys = cf.scan(outer, 0.1, xs)
        return c + ys.sum()

    def unrolled(w):
        c, total = 0.1, 0.0
        for row in xs:
            for x in row:
                c = jnp.sin(c * w + x)
            total = total + c
        return c + total

    assert_close(fnbrrr.grad(loss)(0.8), fnbrrr.grad(unrolled)(0.8), rtol=1e-5)
    assert_close(fnbrrr.grad(fnbrrr.grad(loss))(0.8), fnbrrr.grad(fnbrrr.grad(unrolled))(0.8),
                 rtol=1e-4)


_RNG = np.random.default_rng(0)
_W = jnp.asarray(_RNG.standard_normal((3, 3)).astype(np.float32) * 0.5)
_XS3 = jnp.asarray(_RNG.standard_normal((4, 3)).astype(np.float32))
_IDX = jnp.asarray([2, 0, 1, 1])

# Scan bodies `(params, carry, x, i) -> (carry, y)` covering the residual kinds of the scan VJP:
# xs read in the backward pass, y equal to x, carries replaced by consts, selects, gathers by
# an integer x, loop-invariant values (W * p), integer carries and ys, max.
BODIES = {
    "x_squared": lambda p, c, x, i: (c + x * x, c.sum()),
    "y_is_x": lambda p, c, x, i: (c * p[0], x),
    "carry_from_consts": lambda p, c, x, i: (p * 1.0 + x, c),
    "where": lambda p, c, x, i: (jnp.where(x > 0, c * x, c + p[1]), jnp.max(c)),
    "gather": lambda p, c, x, i: (c * p[i] + x, c[i]),
    "matmul": lambda p, c, x, i: (jnp.tanh(_W @ c * p[0] + x), (_W * p[1]).sum() * c),
    "int_y": lambda p, c, x, i: (c + (i * 2).astype(jnp.float32) * p[2], i + 1),
    "maximum": lambda p, c, x, i: (jnp.maximum(c, x * p[0]), jnp.exp(c).sum()),
}


def _body_losses(body, reverse):
    def scanned(p, c0, xs):
        c, ys = cf.scan(lambda c, xi: body(p, c, *xi), c0, (xs, _IDX), reverse=reverse)
        return (c ** 2).sum() + jnp.sin(ys.astype(jnp.float32)).sum()

    def unrolled(p, c, xs):
        ys = [None] * 4
        for k in (reversed(range(4)) if reverse else range(4)):
            c, ys[k] = body(p, c, xs[k], _IDX[k])
        return (c ** 2).sum() + jnp.sin(jnp.stack(ys).astype(jnp.float32)).sum()

    return scanned, unrolled


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("name", sorted(BODIES))
def test_scan_derivatives_of_many_bodies(name, reverse):
    scanned, unrolled = _body_losses(BODIES[name], reverse)
    p, c0 = jnp.asarray([0.7, -0.3, 0.5]), jnp.asarray([0.1, 0.2, -0.3])
    tol = {"rtol": 1e-4, "atol": 1e-5}
    assert_close(fnbrrr.grad(scanned, argnums=(0, 1, 2))(p, c0, _XS3),
                 fnbrrr.grad(unrolled, argnums=(0, 1, 2))(p, c0, _XS3), **tol)
    assert_close(fnbrrr.jvp(lambda p: scanned(p, c0, _XS3), (p,), (c0,)),
                 fnbrrr.jvp(lambda p: unrolled(p, c0, _XS3), (p,), (c0,)), **tol)
    batch = jnp.stack([_XS3, _XS3 * 2])
    assert_close(fnbrrr.vmap(fnbrrr.grad(scanned), in_axes=(None, None, 0))(p, c0, batch),
                 [fnbrrr.grad(unrolled)(p, c0, xs) for xs in batch], **tol)
    assert_close(fnbrrr.grad(lambda p: fnbrrr.grad(scanned)(p, c0, _XS3).sum())(p),
                 fnbrrr.grad(lambda p: fnbrrr.grad(unrolled)(p, c0, _XS3).sum())(p),
                 rtol=1e-3, atol=1e-4)


def test_scan_vjp_rule_on_the_tape_matches_grad():
    """The registry's vjp rule (used when no reverse rule is installed) gives the same."""
    xs = XS
    jaxpr = fnbrrr.make_jaxpr(lambda w, h0, xs: cf.scan(rnn_step(w), h0, xs))(0.7, 0.2, xs)
    (eqn,) = [e for e in jaxpr.eqns if e.primitive is cf.scan_p]
    primals = [jnp.asarray(0.7), jnp.asarray(0.2), xs]
    outs = cf.scan_p.bind(*primals, **eqn.params)
    ct_ys = jnp.arange(1.0, 6.0)
    cts = cf.scan_p.vjp([jnp.asarray(1.0), ct_ys], outs, *primals, **eqn.params)
    want = fnbrrr.grad(scan_loss, argnums=(0, 1, 2))(0.7, 0.2, xs)
    assert_close(cts, want, rtol=1e-5)
    with pytest.raises(TypeError, match="while_loop"):
        cf.while_p.vjp([1.0], None, 1.0)


def test_grad_scan_over_integer_indices_into_closed_over_array():
    table = jnp.asarray([0.5, -1.0, 2.0, 0.25])
    idx = jnp.asarray([3, 0, 0, 2, 1])

    def loss(table):
        return cf.scan(lambda c, i: (c * table[i] + 1.0, None), 1.0, idx)[0]

    def unrolled(table):
        c = 1.0
        for i in np.asarray(idx):
            c = c * table[int(i)] + 1.0
        return c

    assert_close(fnbrrr.grad(loss)(table), fnbrrr.grad(unrolled)(table), rtol=1e-5)


def test_grad_through_ys_only_and_hessian():
    f = lambda xs: jnp.sum(cf.scan(rnn_step(0.6), 0.1, xs)[1])  # noqa: E731

    def unrolled(xs):
        h, total = 0.1, 0.0
        for i in range(xs.shape[0]):
            h, y = rnn_step(0.6)(h, xs[i])
            total = total + y
        return total

    assert_close(fnbrrr.grad(f)(XS), fnbrrr.grad(unrolled)(XS), rtol=1e-5)
    assert_close(fnbrrr.hessian(f)(XS), fnbrrr.hessian(unrolled)(XS), rtol=1e-4, atol=1e-5)


@settings(max_examples=8, deadline=None, derandomize=True)
@given(length=st.integers(1, 5), reverse=st.booleans(), seed=st.integers(0, 2**16))
def test_grad_scan_property(length, reverse, seed):
    rng = np.random.default_rng(seed)
    xs = jnp.asarray(rng.uniform(-1, 1, length).astype(np.float32))
    w, h0 = (float(v) for v in rng.uniform(-1, 1, 2))
    got = fnbrrr.grad(scan_loss, argnums=(0, 1, 2))(w, h0, xs, reverse=reverse)
    want = fnbrrr.grad(unrolled_loss, argnums=(0, 1, 2))(w, h0, xs, reverse=reverse)
    assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_jvp_with_respect_to_a_while_condition_constant_is_zero():
    f = lambda t: cf.while_loop(lambda v: v < t, lambda v: v + 1.0, 0.0)  # noqa: E731
    primal, tangent = fnbrrr.jvp(f, (3.5,), (1.0,))
    assert_close((primal, tangent), (4.0, 0.0))


# --------------------------------------------------------------------------------------------
# vmap: against a per-example loop
# --------------------------------------------------------------------------------------------


def test_vmap_scan_batched_xs_init_and_closure():
    rng = np.random.default_rng(1)
    ws = jnp.asarray(rng.standard_normal(3).astype(np.float32))
    h0s = jnp.asarray(rng.standard_normal(3).astype(np.float32))
    xss = jnp.asarray(rng.standard_normal((3, 5)).astype(np.float32))
    got = fnbrrr.vmap(scan_loss)(ws, h0s, xss)
    want = [scan_loss(ws[i], h0s[i], xss[i]) for i in range(3)]
    assert_close(got, want, rtol=1e-5)
    # xs batched along its second axis, the carry unbatched at first
    got = fnbrrr.vmap(lambda xs: cf.scan(rnn_step(0.5), 0.0, xs), in_axes=1)(xss.T)
    want = [cf.scan(rnn_step(0.5), 0.0, xss[i]) for i in range(3)]
    assert_close(got[0], [w[0] for w in want])
    assert_close(got[1], [w[1] for w in want])


def test_vmap_cond_batched_predicate_runs_both_and_selects():
    xs = jnp.asarray([-1.5, 0.5, 2.0, -0.1])
    f = lambda x: cf.cond(x > 0, lambda v: jnp.sin(v), lambda v: v * v, x)  # noqa: E731
    assert_close(fnbrrr.vmap(f)(xs), [f(x) for x in xs])
    assert_close(fnbrrr.vmap(fnbrrr.grad(f))(xs), [fnbrrr.grad(f)(x) for x in xs])
    # unbatched predicate, batched operand: stays a cond
    g = lambda x: cf.cond(True, jnp.sin, jnp.cos, x)  # noqa: E731
    jaxpr = fnbrrr.make_jaxpr(fnbrrr.vmap(g))(xs)
    assert "cond" in [e.primitive.name for e in jaxpr.eqns]
    assert_close(fnbrrr.vmap(g)(xs), np.sin(np.asarray(xs)))


def test_vmap_switch_batched_index():
    idx = jnp.asarray([0, 2, 1, 7, -1])
    xs = jnp.asarray([1.0, 2.0, 3.0, 4.0, 5.0])
    branches = [lambda v: v + 1.0, lambda v: v * 10.0, lambda v: -v]
    got = fnbrrr.vmap(lambda i, x: cf.switch(i, branches, x))(idx, xs)
    assert_close(got, [cf.switch(i, branches, x) for i, x in zip(idx, xs)])
    got = fnbrrr.vmap(lambda i: cf.switch(i, branches, jnp.ones(2)))(idx)  # batched index only
    assert got.shape == (5, 2)
    assert_close(got[1], [-1.0, -1.0])


def test_vmap_while_batched_predicate():
    limits = jnp.asarray([1.0, 10.0, 100.0, 0.5])

    def f(limit):
        return cf.while_loop(lambda s: s[1] < limit, lambda s: (s[0] + 1, s[1] * 2.0), (0, 1.0))

    got = fnbrrr.vmap(f)(limits)
    want = [f(lim) for lim in limits]
    np.testing.assert_array_equal(np.asarray(got[0]), [int(w[0]) for w in want])
    assert_close(got[1], [w[1] for w in want])


def test_vmap_fori_loop_batched_upper_bound():
    f = lambda n: cf.fori_loop(0, n, lambda i, v: v + i, 0)  # noqa: E731
    got = fnbrrr.vmap(f)(jnp.asarray([0, 3, 5]))
    np.testing.assert_array_equal(np.asarray(got), [0, 3, 10])


def test_vmap_of_grad_and_grad_of_vmap_of_scan():
    ws = jnp.asarray([0.2, 0.7, -0.4])
    per_example = [fnbrrr.grad(unrolled_loss)(w, 0.2, XS) for w in ws]
    assert_close(fnbrrr.vmap(fnbrrr.grad(scan_loss), in_axes=(0, None, None))(ws, 0.2, XS),
                 per_example, rtol=1e-5)
    total = lambda ws: jnp.sum(fnbrrr.vmap(scan_loss, in_axes=(0, None, None))(ws, 0.2, XS))  # noqa: E731
    assert_close(fnbrrr.grad(total)(ws), per_example, rtol=1e-5)
    assert_close(fnbrrr.jit(fnbrrr.vmap(fnbrrr.grad(scan_loss), in_axes=(0, None, None)))(
        ws, 0.2, XS), per_example, rtol=1e-5)


def test_vmap_while_batched_body_only():
    ws = jnp.asarray([0.5, 1.0, 2.0])
    f = lambda w: cf.while_loop(lambda s: s[0] < 3, lambda s: (s[0] + 1, s[1] * w), (0, 1.0))  # noqa: E731
    got = fnbrrr.vmap(f)(ws)
    assert_close(got[1], [float(f(w)[1]) for w in ws])
    np.testing.assert_array_equal(np.asarray(got[0]), 3)  # the predicate stayed unbatched
    assert got[0].shape == () or got[0].shape == (3,)


def test_vmap_cond_branches_close_over_batched_values():
    ws = jnp.asarray([0.5, -1.0, 2.0])
    f = lambda w: cf.cond(True, lambda: w * 2.0, lambda: w)  # noqa: E731
    assert_close(fnbrrr.vmap(f)(ws), np.asarray(ws) * 2.0)
    g = lambda w: cf.cond(w > 0, lambda: jnp.sin(w), lambda: w * w)  # noqa: E731
    assert_close(fnbrrr.jit(fnbrrr.vmap(g))(ws), [g(w) for w in ws])


@SETTINGS
@given(indices=st.lists(st.integers(-2, 5), min_size=1, max_size=6), seed=st.integers(0, 99))
def test_vmap_switch_property(indices, seed):
    xs = jnp.asarray(np.random.default_rng(seed).standard_normal((len(indices), 2))
                     .astype(np.float32))
    branches = [jnp.sin, lambda v: v * 3.0, lambda v: jnp.flip(v), jnp.cos]
    got = fnbrrr.vmap(lambda i, x: cf.switch(i, branches, x))(jnp.asarray(indices), xs)
    want = [branches[min(max(i, 0), 3)](x) for i, x in zip(indices, xs)]
    assert_close(got, want)


def test_jacrev_and_jacfwd_of_scan_agree():
    f = lambda xs: cf.scan(rnn_step(0.6), 0.1, xs)[1]  # noqa: E731
    assert_close(fnbrrr.jacrev(f)(XS), fnbrrr.jacfwd(f)(XS), rtol=1e-5)


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_scan_carry_shape_mismatch_names_the_leaf():
    with pytest.raises(TypeError, match=r"carry\['h'\] has type f32\[\] .* f32\[3\].*shapes"):
        cf.scan(lambda c, x: ({"h": c["h"] * jnp.ones(3)}, None), {"h": 1.0}, jnp.ones(2))


def test_scan_carry_dtype_mismatch_names_the_leaf():
    with pytest.raises(TypeError, match=r"carry\[1\] has type i32\[\] .* f32\[\].*dtypes"):
        cf.scan(lambda c, x: ((c[0], c[1] * 0.5), None), (1.0, np.int32(2)), jnp.ones(2))


def test_scan_carry_structure_mismatch():
    with pytest.raises(TypeError, match="same pytree structure"):
        cf.scan(lambda c, x: ((c, c), None), 1.0, jnp.ones(2))


def test_scan_body_must_return_a_pair():
    with pytest.raises(TypeError, match="must return a pair"):
        cf.scan(lambda c, x: c + x, 0.0, jnp.ones(2))


def test_scan_length_errors():
    with pytest.raises(ValueError, match="length"):
        cf.scan(lambda c, x: (c, None), 0.0, None)
    with pytest.raises(ValueError, match="different leading axis sizes"):
        cf.scan(lambda c, x: (c, None), 0.0, (jnp.ones(2), jnp.ones(3)))
    with pytest.raises(ValueError, match="disagrees"):
        cf.scan(lambda c, x: (c, None), 0.0, jnp.ones(2), length=3)


def test_cond_branch_type_mismatch_names_branch_and_leaf():
    with pytest.raises(TypeError, match=r"output at output\['b'\] is f32\[2\] in false_fun "
                                        r"and f32\[3\] in true_fun"):
        cf.cond(True, lambda: {"a": 1.0, "b": jnp.ones(3)}, lambda: {"a": 2.0, "b": jnp.ones(2)})
    with pytest.raises(TypeError, match="i32.*branches\\[1\\]"):
        cf.switch(0, [lambda: 1.0, lambda: 1], )
    with pytest.raises(TypeError, match="same pytree structure"):
        cf.cond(True, lambda: (1.0, 2.0), lambda: [1.0, 2.0])


def test_cond_predicate_errors():
    with pytest.raises(TypeError, match="scalar"):
        cf.cond(jnp.ones(2) > 0, lambda: 1.0, lambda: 2.0)
    assert float(cf.cond(1.5, lambda: 1.0, lambda: 2.0)) == 1.0  # nonzero is True, as in JAX
    with pytest.raises(TypeError, match="integer"):
        cf.switch(1.0, [lambda: 1.0, lambda: 2.0])


def test_while_loop_errors():
    with pytest.raises(TypeError, match="boolean scalar"):
        cf.while_loop(lambda v: v, lambda v: v + 1.0, 1.0)
    with pytest.raises(TypeError, match=r"init_val\[1\] has type f32\[\] .* f32\[2\]"):
        cf.while_loop(lambda s: s[0] < 3, lambda s: (s[0] + 1, s[1] * jnp.ones(2)), (0, 1.0))
    with pytest.raises(TypeError, match="same pytree structure"):
        cf.while_loop(lambda s: s < 3, lambda s: (s, s), 0)


def test_fori_loop_float_bounds_error():
    with pytest.raises(TypeError, match="integers"):
        cf.fori_loop(0.0, 3, lambda i, v: v, 1.0)


def test_python_control_flow_on_traced_values_points_to_lax():
    with pytest.raises(core.ConcretizationTypeError, match="lax.cond"):
        fnbrrr.jit(lambda x: x if x > 0 else -x)(1.0)


# --------------------------------------------------------------------------------------------
# Reverse mode of scan stores residuals: no re-tracing, no re-running per step
# --------------------------------------------------------------------------------------------


def test_scan_body_is_traced_once_whatever_the_length():
    traces = []

    def body(c, x):
        traces.append(1)
        return jnp.sin(c * x), c

    for n in (5, 50):
        loss = functools.partial(lambda x0, xs: cf.scan(body, x0, xs)[0], xs=jnp.ones(n) * 0.5)

        traces.clear()
        fnbrrr.grad(loss)(np.float32(0.3))
        assert len(traces) == 1  # by scan(); the derivative rules transform the traced IR
        traces.clear()
        fnbrrr.make_jaxpr(fnbrrr.grad(loss))(0.3)
        assert len(traces) == 1  # a weakly typed 0.3 stays weak going in (JAX's rule): no retrace


def _count_evaluations(monkeypatch, f, *args):
    counts = {"all": 0, "sin": 0}
    original = core.eval_primitive

    def counting(primitive, args_, params):
        counts["all"] += 1
        counts["sin"] += primitive.name == "sin"
        return original(primitive, args_, params)

    monkeypatch.setattr(core, "eval_primitive", counting)
    f(*args)
    monkeypatch.setattr(core, "eval_primitive", original)
    return counts


def test_scan_backward_pass_cost_is_linear_in_length(monkeypatch):
    def loss(w, n):
        return cf.scan(lambda c, x: (jnp.sin(c * w + x), None), 0.1, jnp.ones(n))[0]

    fwd = {n: _count_evaluations(monkeypatch, loss, 0.7, n) for n in (25, 50, 100)}
    rev = {n: _count_evaluations(monkeypatch, fnbrrr.grad(loss), 0.7, n) for n in (25, 50, 100)}
    # sin runs once per step: the forward pass is not re-run for the backward pass
    assert [rev[n]["sin"] for n in (25, 50, 100)] == [25, 50, 100]
    # linear: 50 more steps cost twice what 25 more steps cost (quadratic would be 4 times)
    more_25, more_50 = rev[50]["all"] - rev[25]["all"], rev[100]["all"] - rev[50]["all"]
    assert more_50 == 2 * more_25, rev
    assert rev[100]["all"] <= 4 * fwd[100]["all"], (rev, fwd)  # 8 ops per step against 2


@pytest.mark.parametrize("name,run,expected", [
    # (weak types of the results, as JAX 0.10 gives them)
    ("scan carry made strong by xs", lambda: cf.scan(lambda c, x: (c + x, c), 0.0,
                                                     jnp.ones(3)), [False, True]),
    ("scan int carry made float", lambda: cf.scan(lambda c, x: (c + 1.5, x), 0, jnp.ones(3)),
     [False, False]),
    ("fori_loop index of Python bounds", lambda: cf.fori_loop(0, 5, lambda i, v: v + i, 0),
     [True]),
    ("fori_loop traced bound", lambda: fnbrrr.jit(
        lambda k: cf.fori_loop(0, k, lambda i, v: v + i, 0))(5), [True]),
    ("while_loop made strong", lambda: cf.while_loop(lambda v: v < 10,
                                                     lambda v: v + jnp.int32(3), 0), [False]),
    ("while_loop int made float", lambda: cf.while_loop(lambda v: v < 10, lambda v: v + 1.5, 0),
     [False]),
    ("while_loop stays weak", lambda: cf.while_loop(lambda v: v < 10, lambda v: v + 3, 0),
     [True]),
])
def test_loop_results_have_jaxs_weak_types(name, run, expected):
    leaves = fnbrrr.tree_util.tree_leaves(run())
    assert [leaf.weak_type for leaf in leaves] == expected, name
