"""Systematic checks that walk the primitive registry: no primitive escapes a rule or a check.

Each primitive is exercised on hypothesis-generated inputs from `prim_cases.CASES`:
its `abstract_eval` must agree with what its NumPy `impl` computes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prim_cases import CASES, TESTED_ELSEWHERE, primitive_case

import fnbrrr
from fnbrrr import core

ALL = sorted(core.primitives)
WITH_CASES = [name for name in ALL if name in CASES]


def test_every_primitive_has_generated_inputs_or_a_dedicated_test_file():
    missing = [n for n in ALL if n not in CASES and n not in TESTED_ELSEWHERE]
    assert not missing, f"primitives without generated test inputs: {missing}"


@pytest.mark.parametrize("name", ALL)
def test_every_primitive_has_impl_and_shape_rule(name):
    prim = core.primitives[name]
    assert callable(prim.impl), f"{name} has no impl"
    assert callable(prim.abstract_eval), f"{name} has no abstract_eval"


def _aval(x) -> core.ShapedArray:
    return core.ShapedArray(np.shape(x), np.asarray(x).dtype, False)


@pytest.mark.parametrize("name", WITH_CASES)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_abstract_eval_agrees_with_impl(name, data):
    case = data.draw(primitive_case(name))
    prim = core.primitives[name]
    expected = prim.abstract_eval(*[_aval(a) for a in case.args], **case.params)
    out = prim.impl(*case.args, **case.params)
    outs, expected = (out, expected) if prim.multiple_results else ([out], [expected])
    for o, e in zip(outs, expected):
        o = np.asarray(o)
        assert o.shape == e.shape, f"{name}: impl shape {o.shape} != abstract {e.shape}"
        assert o.dtype == e.dtype, f"{name}: impl dtype {o.dtype} != abstract {e.dtype}"


@pytest.mark.parametrize("name", WITH_CASES)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_staged_program_evaluates_to_eager_result(name, data):
    case = data.draw(primitive_case(name))
    prim = core.primitives[name]
    eager = prim.bind(*case.args, **case.params)
    jaxpr, consts = core.trace_to_jaxpr(
        lambda *xs: [prim.bind(*xs, **case.params)] if not prim.multiple_results
        else prim.bind(*xs, **case.params),
        [_aval(a) for a in case.args],
    )
    assert [e.primitive.name for e in jaxpr.eqns] == [name]
    staged = core.eval_jaxpr(jaxpr, consts, *case.args)
    eager = eager if prim.multiple_results else [eager]
    for s, e in zip(staged, eager):
        np.testing.assert_array_equal(np.asarray(s), np.asarray(e))
        assert s.dtype == e.dtype and s.shape == e.shape


# --------------------------------------------------------------------------------------------
# Derivatives: JVP against finite differences, VJP against JVP, second order (float64)
# --------------------------------------------------------------------------------------------

from hypothesis import HealthCheck, assume  # noqa: E402

# Casts to integer or float32 outputs are filtered out of the float64 derivative checks.
FILTERED = [HealthCheck.filter_too_much]

from fnbrrr import ad, test_util  # noqa: E402
from fnbrrr.batching import vmap  # noqa: E402

# Primitives with no derivative at all; each is marked so in the registry.
NOT_DIFFERENTIABLE = {
    "argmax", "argmin", "and", "or", "xor", "not", "eq", "ne", "lt", "le", "gt", "ge",
    "is_finite", "iota", "reduce_and", "reduce_or", "stop_gradient", "argsort", "threefry2x32",
}
DIFFERENTIABLE = [n for n in WITH_CASES if n not in NOT_DIFFERENTIABLE]


@pytest.fixture
def x64():
    fnbrrr.config.update("jax_enable_x64", True)
    yield
    fnbrrr.config.update("jax_enable_x64", False)


def test_registry_marks_exactly_the_non_differentiable_primitives():
    marked = {n for n, p in core.primitives.items() if not p.differentiable}
    assert marked == NOT_DIFFERENTIABLE | (marked - set(CASES)), marked
    for name in DIFFERENTIABLE:
        prim = core.primitives[name]
        assert prim.differentiable and callable(prim.jvp) and callable(prim.vjp), name


def _float_case(name, data):
    case = data.draw(primitive_case(name, np.float64))
    prim = core.primitives[name]
    out = prim.bind(*case.args, **case.params)
    outs = out if prim.multiple_results else [out]
    assume(case.diff and all(np.asarray(o).dtype == np.float64 for o in outs))
    return case, prim


def _directions(case, rng):
    return [rng.standard_normal(np.shape(a)) if i in case.diff else None
            for i, a in enumerate(case.args)]


def _inner(a, b) -> float:
    return float(np.sum(np.asarray(a, np.float64) * np.asarray(b, np.float64)))


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("name", DIFFERENTIABLE)
@settings(max_examples=12, deadline=None, suppress_health_check=FILTERED)
@given(data=st.data())
def test_jvp_agrees_with_central_finite_differences(name, data):
    case, prim = _float_case(name, data)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    tangents = _directions(case, rng)
    _, tangent_out = test_util.jvp_of_primitive(prim, case.args, tangents, **case.params)
    numeric = test_util.numerical_jvp(lambda *a: prim.bind(*a, **case.params), case.args,
                                      [t if t is not None else np.zeros(np.shape(a))
                                       for t, a in zip(tangents, case.args)], eps=1e-6)
    np.testing.assert_allclose(np.asarray(tangent_out), numeric[0], rtol=1e-6, atol=1e-7)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("name", DIFFERENTIABLE)
@settings(max_examples=12, deadline=None, suppress_health_check=FILTERED)
@given(data=st.data())
def test_vjp_is_the_transpose_of_jvp(name, data):
    case, prim = _float_case(name, data)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    tangents = _directions(case, rng)
    out, tangent_out = test_util.jvp_of_primitive(prim, case.args, tangents, **case.params)
    cotangent = rng.standard_normal(np.shape(out))
    cts = test_util.vjp_of_primitive(prim, case.args, cotangent, **case.params)
    lhs = _inner(cotangent, tangent_out)
    rhs = sum(_inner(c, t) for c, t in zip(cts, tangents) if t is not None)
    assert abs(lhs - rhs) <= 1e-9 * (1 + abs(lhs)), (lhs, rhs)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("name", DIFFERENTIABLE)
@settings(max_examples=6, deadline=None, suppress_health_check=FILTERED)
@given(data=st.data())
def test_second_order_derivatives_agree_with_finite_differences(name, data):
    case, prim = _float_case(name, data)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    out = prim.bind(*case.args, **case.params)
    cotangent = rng.standard_normal(np.shape(out))
    diff = list(case.diff)

    def pullback(*diff_args):  # the first-order VJP, as a function of the float inputs
        args = list(case.args)
        for i, a in zip(diff, diff_args):
            args[i] = a
        cts = test_util.vjp_of_primitive(prim, args, cotangent, **case.params)
        return [cts[i] for i in diff]

    point = [case.args[i] for i in diff]
    tangents = [rng.standard_normal(np.shape(p)) for p in point]
    # forward over reverse
    _, jvp_of_vjp = ad.jvp_flat(pullback, [np.asarray(p) for p in point], tangents)
    numeric = test_util.numerical_jvp(lambda *a: pullback(*a), point, tangents, eps=1e-5)
    for got, want in zip(jvp_of_vjp, numeric):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)
    # reverse over reverse: <c2, d(pullback) t> = <vjp(pullback)(c2), t>
    c2 = [rng.standard_normal(np.shape(p)) for p in point]
    _, pullback2 = ad.vjp_flat(pullback, [np.asarray(p) for p in point])
    lhs = sum(_inner(c, n) for c, n in zip(c2, numeric))
    rhs = sum(_inner(g, t) for g, t in zip(pullback2(c2), tangents))
    assert abs(lhs - rhs) <= 1e-5 * (1 + abs(lhs)), (lhs, rhs)


# --------------------------------------------------------------------------------------------
# Batching: vmap of each primitive equals stacking a per-example Python loop
# --------------------------------------------------------------------------------------------

NO_OPERANDS = {"iota"}  # nothing to map over: vmap does not apply
BATCHABLE = [n for n in WITH_CASES if n not in NO_OPERANDS]


def test_every_primitive_with_operands_has_a_batching_rule():
    missing = [n for n in ALL if n not in NO_OPERANDS and not callable(core.primitives[n].batch)]
    assert not missing, f"primitives without a batching rule: {missing}"


def _example_variant(arg, rng, k):
    """Example k of a batch: same shape and kind of values as `arg`."""
    arg = np.asarray(arg)
    if k == 0 or arg.size == 0:
        return arg
    if arg.dtype.kind == "f":
        return (arg + 0.05 * k * rng.standard_normal(arg.shape)).astype(arg.dtype)
    if arg.ndim == 0 and arg.dtype.kind in "iu":
        return (arg + rng.integers(-1, 2)).astype(arg.dtype)
    return rng.permutation(arg.reshape(-1)).reshape(arg.shape)


@pytest.mark.parametrize("name", BATCHABLE)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_vmap_equals_a_per_example_loop(name, data):
    case = data.draw(primitive_case(name))
    prim = core.primitives[name]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    size = data.draw(st.integers(1, 3))
    axes = [data.draw(st.one_of(st.none(), st.integers(0, np.ndim(a)))) for a in case.args]
    if all(a is None for a in axes):
        axes[data.draw(st.integers(0, len(axes) - 1))] = 0
    examples = [[_example_variant(a, rng, k) if ax is not None else np.asarray(a)
                 for a, ax in zip(case.args, axes)] for k in range(size)]
    batched = [np.stack([ex[i] for ex in examples], axis=ax) if ax is not None
               else np.asarray(a) for i, (a, ax) in enumerate(zip(case.args, axes))]

    def apply(*args):
        return prim.bind(*args, **case.params)

    expected = [np.asarray(apply(*ex)) for ex in examples]
    if prim.multiple_results:
        pytest.fail(f"{name}: multiple-result primitives need their own batching test")
    got = vmap(apply, in_axes=tuple(axes))(*batched)
    np.testing.assert_array_equal(np.asarray(got).shape, (size, *expected[0].shape))
    np.testing.assert_allclose(np.asarray(got), np.stack(expected), rtol=1e-6, atol=1e-6)
