"""The core: the IR printer, make_jaxpr, traces by level, leaked tracers, eval_jaxpr, Arrays."""

from __future__ import annotations

import numpy as np
import pytest

import fnbrrr
import fnbrrr.numpy as jnp
from fnbrrr import core, lax

MLP_JAXPR = """\
{ lambda ; a:f32[3,4] b:f32[4] c:f32[4,2] d:f32[2] e:f32[5,3] f:f32[5,2]. let
    g:f32[5,4] = dot_general[dimension_numbers=(((1,), (0,)), ((), ())) preferred_element_type=None] e a
    h:f32[5,4] = broadcast_in_dim[broadcast_dimensions=(1,) shape=(5, 4)] b
    i:f32[5,4] = add g h
    j:f32[5,4] = max i 0.0:f32[]
    k:f32[5,2] = dot_general[dimension_numbers=(((1,), (0,)), ((), ())) preferred_element_type=None] j c
    l:f32[5,2] = broadcast_in_dim[broadcast_dimensions=(1,) shape=(5, 2)] d
    m:f32[5,2] = add k l
    n:f32[5,2] = sub m f
    o:f32[5,2] = integer_pow[y=2] n
    p:f32[] = reduce_sum[axes=(0, 1)] o
    q:f32[] = div p 10.0:f32[]
  in (q,) }"""  # noqa: E501


def mlp_loss(params, x, y):
    (w1, b1), (w2, b2) = params
    h = jnp.maximum(x @ w1 + b1, 0.0)
    logits = h @ w2 + b2
    return jnp.mean((logits - y) ** 2)


def _mlp_args():
    params = ((jnp.ones((3, 4)), jnp.zeros(4)), (jnp.ones((4, 2)), jnp.zeros(2)))
    return params, jnp.ones((5, 3)), jnp.zeros((5, 2))


def test_make_jaxpr_prints_a_small_mlp_loss_readably():
    assert str(fnbrrr.make_jaxpr(mlp_loss)(*_mlp_args())) == MLP_JAXPR


def test_make_jaxpr_program_evaluates_to_the_function_value():
    args = _mlp_args()
    closed = fnbrrr.make_jaxpr(mlp_loss)(*args)
    flat = fnbrrr.tree_util.tree_leaves(args)
    (value,) = closed(*flat)
    assert float(value) == pytest.approx(float(mlp_loss(*args)))
    assert closed.out_tree == fnbrrr.tree_util.tree_structure(0.0)


def test_make_jaxpr_of_a_python_scalar_function_uses_weak_literals():
    text = str(fnbrrr.make_jaxpr(lambda x: jnp.sin(x) * 2.0)(1.0))
    assert text == ("{ lambda ; a:f32[]. let\n    b:f32[] = sin a\n"
                    "    c:f32[] = mul b 2.0:f32[]\n  in (c,) }")


def test_closed_over_arrays_become_constants():
    w = jnp.arange(3.0)
    closed = fnbrrr.make_jaxpr(lambda x: x * w)(jnp.ones(3))
    assert len(closed.consts) == 1
    np.testing.assert_array_equal(np.asarray(closed.consts[0]), np.arange(3.0))
    assert str(closed).startswith("{ lambda a:f32[3]; b:f32[3]. let")


def test_primitive_registry_has_every_family():
    for name in ("sin", "add", "select_n", "broadcast_in_dim", "reduce_sum", "argmax",
                 "dot_general", "gather", "scatter_add", "dynamic_slice", "pad", "iota",
                 "convert_element_type", "concatenate"):
        assert name in core.primitives


def test_eval_jaxpr_composes_with_transformations():
    closed = fnbrrr.make_jaxpr(lambda x: jnp.sin(x) * x)(1.0)
    f = lambda x: closed(x)[0]  # noqa: E731
    assert float(fnbrrr.grad(f)(0.5)) == pytest.approx(np.cos(0.5) * 0.5 + np.sin(0.5),
                                                      rel=1e-6)


def test_a_leaked_tracer_raises_naming_the_transformation():
    leaked = []

    def f(x):
        leaked.append(x)
        return x * 2

    fnbrrr.jit(f)(jnp.ones(2))
    with pytest.raises(core.UnexpectedTracerError, match="StagingTrace"):
        lax.add(leaked[0], 1.0)
    fnbrrr.grad(lambda x: f(x).sum())(jnp.ones(2))
    with pytest.raises(core.UnexpectedTracerError):
        jnp.sin(leaked[-1])


def test_traces_are_thread_local():
    import threading

    results = {}

    def other_thread():
        results["value"] = float(jnp.sum(jnp.ones(3)))  # eager, while the main thread traces

    def f(x):
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        return x + 1

    fnbrrr.make_jaxpr(f)(jnp.ones(3))
    assert results["value"] == 3.0


def test_tracer_conversions_outside_concrete_contexts_raise_type_errors():
    def f(x):
        return int(x)

    with pytest.raises(TypeError):
        fnbrrr.make_jaxpr(f)(1.0)
    with pytest.raises(TypeError, match="__array__"):
        fnbrrr.make_jaxpr(lambda x: np.asarray(x))(1.0)


def test_array_repr_looks_like_jax():
    assert repr(jnp.asarray([1.0, 2.0])) == "Array([1., 2.], dtype=float32)"
    assert repr(jnp.asarray(1.0)) == "Array(1., dtype=float32, weak_type=True)"
    assert repr(jnp.arange(3)) == "Array([0, 1, 2], dtype=int32)"
    assert repr(jnp.asarray([True, False])) == "Array([ True, False], dtype=bool)"


def test_arrays_are_immutable_and_np_views_are_read_only():
    x = jnp.arange(3.0)
    with pytest.raises(TypeError, match="immutable"):
        x[0] = 1.0
    view = np.asarray(x)
    with pytest.raises(ValueError):
        view[0] = 5.0
    assert float(x[0]) == 0.0


def test_isinstance_array_holds_for_concrete_and_traced_values():
    assert isinstance(jnp.ones(2), fnbrrr.Array)
    seen = []
    fnbrrr.grad(lambda x: (seen.append(isinstance(x, fnbrrr.Array)), x * x)[1])(1.0)
    fnbrrr.vmap(lambda x: (seen.append(isinstance(x, fnbrrr.Array)), x)[1])(jnp.ones(2))
    assert seen == [True, True]


def test_debug_nans_names_the_primitive_and_line():
    fnbrrr.config.update("jax_debug_nans", True)
    try:
        with pytest.raises(FloatingPointError, match="log.*test_core.py"):
            jnp.log(jnp.asarray(-1.0))
    finally:
        fnbrrr.config.update("jax_debug_nans", False)
    assert np.isnan(float(jnp.log(jnp.asarray(-1.0))))


def test_unknown_config_flag_is_an_error():
    with pytest.raises(AttributeError, match="jax_enable_x64"):
        fnbrrr.config.update("jax_enable_x46", True)
