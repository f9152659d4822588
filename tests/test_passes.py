"""Tests of the IR passes that run before fusion (fnbrrr.jit.passes): each removes or rewrites
what it promises to and nothing else, and the program computes the same bits afterwards."""

from __future__ import annotations

import numpy as np
import pytest

import fnbrrr
import fnbrrr.numpy as jnp
from fnbrrr import core, lax
from fnbrrr.jit import passes


def _closed(fun, *args):
    closed = fnbrrr.make_jaxpr(fun)(*args)
    return closed.jaxpr, list(closed.consts)


def _names(jaxpr) -> list[str]:
    return [eqn.primitive.name for eqn in jaxpr.eqns]


def _same_values(before, after, *args):
    """Both programs give bit-identical outputs on `args`."""
    (jaxpr_a, consts_a), (jaxpr_b, consts_b) = before, after
    outs_a = core.eval_jaxpr(jaxpr_a, consts_a, *args)
    outs_b = core.eval_jaxpr(jaxpr_b, consts_b, *args)
    assert len(outs_a) == len(outs_b)
    for a, b in zip(outs_a, outs_b):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


X = np.linspace(-2.0, 3.0, 12, dtype=np.float32).reshape(3, 4)


def test_dead_code_elimination_drops_unused_equations_and_constants():
    table = np.arange(12.0, dtype=np.float32).reshape(3, 4)  # a constant only dead code reads

    def f(x):
        unused = jnp.exp(x) + jnp.asarray(table)
        del unused
        return jnp.sin(x) * 2.0

    program = _closed(f, X)
    assert "exp" in _names(program[0])
    jaxpr, consts = passes.eliminate_dead_code(*program)
    assert _names(jaxpr) == ["sin", "mul"]
    assert len(consts) == len(jaxpr.constvars) == 0
    assert jaxpr.invars == program[0].invars  # inputs are all kept
    _same_values(program, (jaxpr, consts), X)


def test_dead_code_elimination_keeps_what_an_output_needs_through_a_chain():
    def f(x):
        a = jnp.cos(x)
        b = a * a
        jnp.tanh(b)  # dead, reads a live value
        return b + 1.0, a

    jaxpr, consts = passes.eliminate_dead_code(*_closed(f, X))
    assert _names(jaxpr) == ["cos", "mul", "add"]


def test_common_subexpressions_are_computed_once():
    def f(x):
        return jnp.sin(x) * jnp.sin(x) + jnp.sin(x), jnp.sum(x, axis=0) - jnp.sum(x, axis=0)

    program = _closed(f, X)
    assert _names(program[0]).count("sin") == 3
    assert _names(program[0]).count("reduce_sum") == 2
    jaxpr = passes.eliminate_common_subexpressions(program[0])
    assert _names(jaxpr).count("sin") == 1 and _names(jaxpr).count("reduce_sum") == 1
    _same_values(program, (jaxpr, program[1]), X)


def test_equations_with_different_params_or_inputs_are_not_merged():
    def f(x):
        return jnp.sum(x, axis=0)[:3] + jnp.sum(x, axis=1), jnp.sin(x) + jnp.sin(x * 2.0)

    program = _closed(f, X)
    jaxpr = passes.eliminate_common_subexpressions(program[0])
    assert _names(jaxpr).count("reduce_sum") == 2 and _names(jaxpr).count("sin") == 2


def test_random_draws_from_different_keys_are_not_merged_but_equal_keys_are():
    def f(key):
        k1, k2 = fnbrrr.random.split(key)
        return (fnbrrr.random.uniform(k1, (3,)), fnbrrr.random.uniform(k2, (3,)),
                fnbrrr.random.uniform(k1, (3,)))

    key = fnbrrr.random.PRNGKey(0)
    a, b, c = fnbrrr.jit(f)(key)
    assert not np.array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(c))


def test_constant_folding_evaluates_input_free_equations():
    def f(x):
        scale = jnp.exp(jnp.float32(2.0)) * 3.0  # no input: computed at compile time
        return x * scale

    program = _closed(f, X)
    assert "exp" in _names(program[0])
    jaxpr, consts = passes.fold_constants(*program)
    assert "exp" not in _names(jaxpr) and _names(jaxpr) == ["mul"]
    _same_values(program, (jaxpr, consts), X)


def test_constant_folding_never_expands_a_scalar_into_a_large_array():
    def f(x):
        big = jnp.zeros((1024, 1024), jnp.float32) + 1.0  # 4 MB if folded
        return x + big[:3, :4]

    jaxpr, consts = passes.fold_constants(*_closed(f, X))
    assert all(np.asarray(c).size < 1 << 16 for c in consts)


@pytest.mark.parametrize("fun,kept", [
    (lambda x: x * 1.0, []),
    (lambda x: 1.0 * x, []),
    (lambda x: x / 1.0, []),
    (lambda x: x * jnp.ones_like(x), []),  # a broadcast of the literal 1
    (lambda x: jnp.negative(-x), []),
    (lambda x: x.astype(jnp.float32), []),
    (lambda x: jnp.reshape(x, x.shape), []),
    (lambda x: jnp.transpose(x, (0, 1)), []),
    (lambda x: x + 0.0, ["add"]),  # -0.0 + 0.0 is +0.0: not an identity for floats
    (lambda x: x - 0.0, ["sub"]),  # kept as well: not claimed exact for floats here
    (lambda x: x * 2.0, ["mul"]),
])
def test_simplify_removes_exact_identities_only(fun, kept):
    program = _closed(fun, X)
    jaxpr = passes.simplify(program[0])
    jaxpr, consts = passes.eliminate_dead_code(jaxpr, program[1])
    assert _names(jaxpr) == kept
    x = np.array([[-0.0, 0.0, np.inf, np.nan], [1.5, -2.0, 1e-45, -1e30], [3, 4, 5, 6]],
                 np.float32)
    _same_values(program, (jaxpr, consts), x)


def test_integer_additive_identities_are_removed():
    ints = np.arange(6, dtype=np.int32)
    for fun in (lambda i: i + 0, lambda i: 0 + i, lambda i: i - 0):
        jaxpr = passes.simplify(_closed(fun, ints)[0])
        assert _names(passes.eliminate_dead_code(jaxpr, [])[0]) == []


def test_transposes_fold_into_matmul_flags():
    a = np.ones((5, 3), np.float32)
    b = np.ones((5, 4), np.float32)
    program = _closed(lambda a, b: jnp.matmul(a.T, b), a, b)
    assert "transpose" in _names(program[0])
    jaxpr = passes.fold_transposes_into_dot(program[0])
    jaxpr, consts = passes.eliminate_dead_code(jaxpr, program[1])
    assert _names(jaxpr) == ["dot_general"]
    _same_values(program, (jaxpr, consts), a, b)


def test_inline_calls_flattens_nested_jit_and_custom_rules():
    @fnbrrr.custom_jvp
    def softplus(x):
        return jnp.log1p(jnp.exp(x))

    softplus.defjvp(lambda primals, tangents: (softplus(primals[0]),
                                               tangents[0] * lax.logistic(primals[0])))
    inner = fnbrrr.jit(lambda x: jnp.cos(x) + 1.0)
    program = _closed(lambda x: inner(softplus(x)), X)
    assert set(_names(program[0])) & {"pjit", "custom_jvp_call"}
    jaxpr, consts = passes.inline_calls(*program)
    assert _names(jaxpr) == ["exp", "log1p", "cos", "add"]
    _same_values(program, (jaxpr, consts), X)


def test_optimize_runs_the_whole_pipeline_and_keeps_values():
    def f(x, w):
        h = jnp.tanh(x @ w.T) * 1.0
        dead = jnp.exp(h)
        del dead
        return jnp.sum(h * h, axis=1) + jnp.sum(h * h, axis=1)

    w = np.linspace(-1, 1, 20, dtype=np.float32).reshape(5, 4)
    program = _closed(f, X, w)
    jaxpr, consts = passes.optimize(*program)
    names = _names(jaxpr)
    assert "exp" not in names and "transpose" not in names
    assert names.count("reduce_sum") == 1 and names.count("tanh") == 1
    _same_values(program, (jaxpr, consts), X, w)
