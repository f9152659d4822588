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

import fnbrrr  # noqa: F401  (registers every primitive)
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
