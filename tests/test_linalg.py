"""solve, inv, det and slogdet (`fnbrrr/numpy/linalg.py` over `fnbrrr/_prims/linalg_decomp.py`):
NumPy as the oracle, finite differences for derivatives, eager against jit (the compiled LU
helper), vmap against a per-example loop, and a traced program whose size does not grow with n.
"""

from __future__ import annotations

import numpy as np
import pytest

import fnbrrr
import fnbrrr.numpy as jnp
from fnbrrr import test_util
from fnbrrr._prims import linalg_decomp


def _well_conditioned(rng, shape, dtype=np.float32):
    a = rng.standard_normal(shape)
    return (a + shape[-1] * np.eye(shape[-1]) * rng.choice([-1, 1])).astype(dtype)


def _close(got, want, rtol, atol=0.0):
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                               rtol=rtol, atol=atol)


# --- values: eager and jit against NumPy ---------------------------------------------------------

SHAPES = [(1, 1), (2, 2), (3, 3), (8, 8), (4, 5, 5), (2, 3, 6, 6), (33, 33)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "jit"])
def test_solve_inv_det_slogdet_match_numpy(shape, compiled):
    rng = np.random.default_rng(shape[-1] + len(shape))
    a = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape[:-1] + (3,)).astype(np.float32)
    wrap = fnbrrr.jit if compiled else (lambda f: f)
    tol = dict(rtol=2e-3, atol=2e-4)
    # a random matrix can be ill-conditioned: compare a @ x with b, not x with NumPy's x
    x = np.asarray(wrap(jnp.linalg.solve)(a, b), np.float64)
    _close(a.astype(np.float64) @ x, b, **tol)
    inverse = np.asarray(wrap(jnp.linalg.inv)(a), np.float64)
    _close(a.astype(np.float64) @ inverse, np.broadcast_to(np.eye(shape[-1]), shape), **tol)
    _close(wrap(jnp.linalg.det)(a), np.linalg.det(a.astype(np.float64)), rtol=2e-4,
           atol=1e-5 * np.abs(np.linalg.det(a.astype(np.float64))).max())
    sign, logabsdet = wrap(jnp.linalg.slogdet)(a)
    want_sign, want_logabsdet = np.linalg.slogdet(a.astype(np.float64))
    _close(sign, want_sign, rtol=0)
    _close(logabsdet, want_logabsdet, rtol=1e-4, atol=1e-4)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "jit"])
def test_float64_is_computed_in_float64(compiled):
    rng = np.random.default_rng(7)
    a = _well_conditioned(rng, (2, 6, 6), np.float64)
    b = rng.standard_normal((2, 6, 2))
    wrap = fnbrrr.jit if compiled else (lambda f: f)
    x = wrap(jnp.linalg.solve)(a, b)
    assert x.dtype == np.float64
    _close(x, np.linalg.solve(a, b), rtol=1e-10, atol=1e-12)
    _close(wrap(jnp.linalg.inv)(a), np.linalg.inv(a), rtol=1e-10, atol=1e-12)
    _close(wrap(jnp.linalg.det)(a), np.linalg.det(a), rtol=1e-10)


def test_solve_vector_and_broadcast_right_hand_sides():
    rng = np.random.default_rng(1)
    a = _well_conditioned(rng, (4, 4))
    stack = _well_conditioned(rng, (3, 4, 4))
    v = rng.standard_normal(4).astype(np.float32)
    b = rng.standard_normal((4, 2)).astype(np.float32)
    _close(jnp.linalg.solve(a, v), np.linalg.solve(a, v), rtol=1e-4, atol=1e-5)
    _close(fnbrrr.jit(jnp.linalg.solve)(a, v), np.linalg.solve(a, v), rtol=1e-4, atol=1e-5)
    # a stack of matrices against one right-hand side matrix, and the other way round
    _close(jnp.linalg.solve(stack, b), np.linalg.solve(stack, b), rtol=1e-4, atol=1e-5)
    bs = rng.standard_normal((3, 4, 2)).astype(np.float32)
    _close(fnbrrr.jit(jnp.linalg.solve)(a, bs), np.linalg.solve(a, bs), rtol=1e-4, atol=1e-5)


def test_integer_and_float16_inputs_keep_numpy_like_dtypes():
    a = np.array([[2, 1], [1, 3]])
    assert jnp.linalg.det(a).dtype == np.float32
    _close(jnp.linalg.det(a), 5.0, rtol=1e-6)
    half = np.array([[2.0, 1.0], [1.0, 3.0]], np.float16)
    assert jnp.linalg.inv(half).dtype == np.float16
    _close(jnp.linalg.inv(half), np.linalg.inv(half.astype(np.float32)), rtol=1e-3)
    _close(jnp.linalg.solve(half, np.ones(2, np.float32)), [0.4, 0.2], rtol=1e-3)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "jit"])
def test_pivoting_and_singular_matrices(compiled):
    wrap = fnbrrr.jit if compiled else (lambda f: f)
    swap = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)  # no LU without a row swap
    _close(wrap(jnp.linalg.det)(swap), -1.0, rtol=0)
    _close(wrap(jnp.linalg.inv)(swap), swap, rtol=0)
    assert float(wrap(jnp.linalg.slogdet)(swap).sign) == -1.0
    for singular in (np.zeros((2, 2), np.float32), np.array([[1, 2], [2, 4]], np.float32),
                     np.array([[1, 2, 3], [2, 4, 6], [0, 1, 1]], np.float32)):
        assert float(wrap(jnp.linalg.det)(singular)) == 0.0
        sign, logabsdet = wrap(jnp.linalg.slogdet)(singular)
        assert float(sign) == 0.0 and float(logabsdet) == -np.inf
        # NumPy raises LinAlgError here; fnbrrr, like JAX, returns non-finite values
        assert not np.isfinite(np.asarray(wrap(jnp.linalg.inv)(singular))).all()
        x = wrap(jnp.linalg.solve)(singular, np.ones(singular.shape[0], np.float32))
        assert not np.isfinite(np.asarray(x)).all()


def test_non_square_and_mismatched_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="inv: needs square matrices"):
        jnp.linalg.inv(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="det: needs square matrices"):
        fnbrrr.jit(jnp.linalg.det)(np.ones((3,), np.float32))
    with pytest.raises(ValueError, match="solve: shapes"):
        jnp.linalg.solve(np.eye(3, dtype=np.float32), np.ones(2, np.float32))
    with pytest.raises(TypeError, match="solve: b must be"):
        linalg_decomp.solve(np.eye(2, dtype=np.float32), np.ones((3, 1), np.float32))


def test_empty_matrices():
    empty = np.zeros((3, 0, 0), np.float32)
    _close(jnp.linalg.det(empty), np.ones(3), rtol=0)
    assert jnp.linalg.inv(empty).shape == (3, 0, 0)
    assert fnbrrr.jit(jnp.linalg.inv)(empty).shape == (3, 0, 0)
    sign, logabsdet = jnp.linalg.slogdet(empty)
    _close(sign, np.ones(3), rtol=0)
    _close(logabsdet, np.zeros(3), rtol=0)


# --- the traced program does not grow with n ---------------------------------------------------


@pytest.mark.parametrize("fun", [
    jnp.linalg.inv, jnp.linalg.det, lambda a: jnp.linalg.slogdet(a)[1],
    lambda a: jnp.linalg.solve(a, a[:, 0]), fnbrrr.grad(jnp.linalg.det),
    fnbrrr.grad(lambda a: jnp.linalg.inv(a).sum()),
], ids=["inv", "det", "slogdet", "solve", "grad_det", "grad_inv"])
def test_program_size_does_not_grow_with_n(fun):
    sizes = {len(fnbrrr.make_jaxpr(fun)(np.eye(n, dtype=np.float32)).eqns) for n in (2, 8, 64)}
    assert len(sizes) == 1, sizes
    assert sizes.pop() <= 16


# --- derivatives against finite differences ----------------------------------------------------


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "jit"])
def test_derivatives_agree_with_finite_differences(compiled):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 4)) + 2 * np.eye(4)
    b = rng.standard_normal((4, 2))
    wrap = fnbrrr.jit if compiled else (lambda f: f)
    test_util.check_grads(wrap(jnp.linalg.solve), (a, b), order=2)
    test_util.check_grads(wrap(jnp.linalg.inv), (a,), order=2)
    test_util.check_grads(wrap(jnp.linalg.det), (a,), order=2)
    test_util.check_grads(wrap(lambda m: jnp.linalg.slogdet(m)[1]), (a,), order=2)
    test_util.check_grads(wrap(lambda m: jnp.linalg.slogdet(m)[0]), (a,), order=1)


@pytest.mark.usefixtures("x64")
def test_batched_derivatives_and_closed_forms():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((2, 3, 3)) + 3 * np.eye(3)
    test_util.check_grads(jnp.linalg.det, (a,), order=1)
    test_util.check_grads(lambda m: jnp.linalg.solve(m, m[..., 0, :, None]), (a,), order=1)
    inv_t = np.swapaxes(np.linalg.inv(a), -1, -2)
    _close(fnbrrr.jit(fnbrrr.grad(lambda m: jnp.linalg.det(m).sum()))(a),
           np.linalg.det(a)[:, None, None] * inv_t, rtol=1e-10)
    _close(fnbrrr.grad(lambda m: jnp.linalg.slogdet(m).logabsdet.sum())(a), inv_t, rtol=1e-10)


def _cofactors_by_minors(a):
    n = a.shape[-1]
    out = np.empty(a.shape)
    for i in range(n):
        for j in range(n):
            minor = np.delete(np.delete(a.astype(np.float64), i, 0), j, 1)
            out[i, j] = (-1) ** (i + j) * np.linalg.det(minor)
    return out


SINGULAR = {
    "rank1_2x2": [[1.0, 2.0], [2.0, 4.0]],
    "zero": [[0.0, 0.0], [0.0, 0.0]],
    "rank2_last_pivot": [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 1.0, 1.0]],
    "rank2_zero_column": [[0.0, 1.0, 2.0], [0.0, 3.0, 4.0], [0.0, 5.0, 7.0]],
    "rank2_3x3": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]],
    "rank1_3x3": [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [3.0, 6.0, 9.0]],
}


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", sorted(SINGULAR))
def test_gradient_of_det_at_singular_matrices_is_the_cofactor_matrix(name, compiled):
    a = np.array(SINGULAR[name], np.float32)
    wrap = fnbrrr.jit if compiled else (lambda f: f)
    got = wrap(fnbrrr.grad(jnp.linalg.det))(a)
    _close(got, _cofactors_by_minors(a), rtol=1e-5, atol=1e-5)
    batched = wrap(fnbrrr.vmap(fnbrrr.grad(jnp.linalg.det)))(np.stack([a, a + np.eye(len(a))]))
    _close(batched[0], _cofactors_by_minors(a), rtol=1e-5, atol=1e-5)
    _close(batched[1], _cofactors_by_minors(a + np.eye(len(a))), rtol=1e-4, atol=1e-4)


def test_float32_gradient_of_det_under_jit():
    rng = np.random.default_rng(5)
    a = _well_conditioned(rng, (3, 3))
    got = fnbrrr.jit(fnbrrr.grad(lambda m: jnp.linalg.det(m)))(a)
    want = np.linalg.det(a.astype(np.float64)) * np.linalg.inv(a.astype(np.float64)).T
    _close(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


# --- vmap against a per-example loop -------------------------------------------------------------


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "jit"])
def test_vmap_equals_a_per_example_loop(compiled):
    rng = np.random.default_rng(6)
    stack = _well_conditioned(rng, (5, 4, 4))
    rhs = rng.standard_normal((5, 4)).astype(np.float32)
    wrap = fnbrrr.jit if compiled else (lambda f: f)
    for fun, args, axes in [
        (jnp.linalg.solve, (stack, rhs), (0, 0)),
        (jnp.linalg.solve, (stack[0], rhs), (None, 0)),  # one matrix, many right-hand sides
        (jnp.linalg.solve, (stack, rhs[0]), (0, None)),
        (jnp.linalg.inv, (np.moveaxis(stack, 0, 2),), (2,)),
        (jnp.linalg.det, (stack,), (0,)),
        (lambda m: jnp.linalg.slogdet(m)[1], (stack,), (0,)),
        (fnbrrr.grad(jnp.linalg.det), (stack,), (0,)),
    ]:
        batched = wrap(fnbrrr.vmap(fun, in_axes=axes))(*args)
        size = next(np.shape(x)[ax] for x, ax in zip(args, axes) if ax is not None)
        for i in range(size):
            one = [x if ax is None else np.take(x, i, axis=ax) for x, ax in zip(args, axes)]
            _close(np.asarray(batched)[i], fun(*one), rtol=1e-4, atol=1e-4)


# --- the primitives' own rules -------------------------------------------------------------------


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("prim, make_args", [
    (linalg_decomp.solve_p, lambda rng: [rng.standard_normal((2, 3, 3)) + 3 * np.eye(3),
                                         rng.standard_normal((2, 3, 4))]),
    (linalg_decomp.det_p, lambda rng: [rng.standard_normal((3, 3)) + 3 * np.eye(3)]),
    (linalg_decomp.slogdet_p, lambda rng: [rng.standard_normal((2, 3, 3)) - 3 * np.eye(3)]),
    (linalg_decomp.cofactors_p, lambda rng: [rng.standard_normal((2, 3, 3)) + 3 * np.eye(3)]),
], ids=["solve", "det", "slogdet", "cofactors"])
def test_vjp_is_the_transpose_of_jvp(prim, make_args):
    rng = np.random.default_rng(8)
    args = make_args(rng)
    tangents = [rng.standard_normal(np.shape(x)) for x in args]
    _, out_tangent = test_util.jvp_of_primitive(prim, args, tangents)
    outs = out_tangent if prim.multiple_results else [out_tangent]
    cts = [rng.standard_normal(np.shape(o)) for o in outs]
    in_cts = test_util.vjp_of_primitive(prim, args, cts if prim.multiple_results else cts[0])
    lhs = sum(np.vdot(c, np.asarray(o)) for c, o in zip(cts, outs) if o is not None)
    rhs = sum(np.vdot(np.asarray(c), t) for c, t in zip(in_cts, tangents) if c is not None)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-9)


def test_each_primitive_is_one_compiled_helper_call():
    a = np.eye(4, dtype=np.float32)
    for fun in (jnp.linalg.inv, jnp.linalg.det, jnp.linalg.slogdet):
        text = fnbrrr.jit(fun).lower(a).as_text()
        assert any(line.endswith("# lu") for line in text.splitlines()), text
        assert "objmode" not in text
    cost = fnbrrr.jit(jnp.linalg.det).lower(a).compile().cost_analysis()
    assert cost["flops"] >= 2 * 4**3 / 3
