"""Tests for fnbrrr/batching.py: the vmap API, its errors, and the batching-rule helpers.

The oracle is an explicit per-example Python loop over the mapped axis, stacked with NumPy.
The per-primitive registry walk lives in tests/test_primitive_rules.py, not here.
"""

from __future__ import annotations

import functools
from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnbrrr.numpy as jnp
from fnbrrr import core, lax
from fnbrrr.batching import (
    BatchTracer,
    batch_jaxpr,
    bdim_at_front,
    broadcast_batch,
    moveaxis,
    vectorized_batch_rule,
    vmap,
    vmap_flat,
)
from fnbrrr.tree_util import broadcast_prefix, tree_flatten, tree_structure

RNG = np.random.default_rng(0)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# --------------------------------------------------------------------------------------------
# The oracle: a per-example loop
# --------------------------------------------------------------------------------------------


def _take(x, axis, i):
    return x if axis is None else jnp.asarray(np.take(np.asarray(x), i, axis=axis))


def loop_oracle(f, in_axes, args, out_axes=0, axis_size=None):
    """Call f once per example (slicing each mapped leaf with NumPy) and stack the outputs.

    `out_axes` is an int for every output leaf, or a list with one int per output leaf.
    """
    flat_args, arg_tree = tree_flatten(tuple(args))
    if isinstance(in_axes, (tuple, list)):
        flat_axes = broadcast_prefix(tuple(in_axes), tuple(args))
    else:
        flat_axes = [in_axes] * len(flat_args)
    if axis_size is None:
        axis_size = next(np.shape(x)[a] for x, a in zip(flat_args, flat_axes) if a is not None)
    results = []
    for i in range(axis_size):
        sliced = [_take(x, a, i) for x, a in zip(flat_args, flat_axes)]
        results.append(f(*arg_tree.unflatten(sliced)))
    out_leaves = [tree_flatten(r)[0] for r in results]
    out_tree = tree_structure(results[0])
    if isinstance(out_axes, int):
        out_axes = [out_axes] * out_tree.num_leaves
    stacked = [
        np.stack([np.asarray(r[j]) for r in out_leaves], axis=a) for j, a in enumerate(out_axes)
    ]
    return out_tree.unflatten(stacked)


def assert_trees_close(actual, expected, rtol=1e-5, atol=1e-5):
    a_leaves, a_tree = tree_flatten(actual)
    e_leaves, e_tree = tree_flatten(expected)
    assert a_tree == e_tree, f"structure {a_tree} != {e_tree}"
    for a, e in zip(a_leaves, e_leaves):
        assert np.shape(a) == np.shape(e), f"shape {np.shape(a)} != {np.shape(e)}"
        assert np.asarray(a).dtype == np.asarray(e).dtype
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=rtol, atol=atol)


def check_vmap(f, in_axes, args, out_axes=0):
    """vmap(f) agrees with the per-example loop (int out_axes)."""
    assert_trees_close(vmap(f, in_axes, out_axes)(*args), loop_oracle(f, in_axes, args, out_axes))


# --------------------------------------------------------------------------------------------
# in_axes forms
# --------------------------------------------------------------------------------------------


def elementwise_and_sum(x):
    return jnp.sin(x) * 2.0 + jnp.exp(-x * x) - x.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_int_in_axes_match_loop(axis):
    check_vmap(elementwise_and_sum, axis, (rand(2, 3, 4),))


def test_negative_in_axis_is_the_same_as_positive():
    x = rand(3, 5)
    f = lambda v: v - v.max()
    np.testing.assert_array_equal(
        np.asarray(vmap(f, in_axes=-1)(x)), np.asarray(vmap(f, in_axes=1)(x))
    )


def test_tuple_in_axes_with_none_matmul():
    f = lambda x, w, b: jnp.tanh(x @ w + b)
    check_vmap(f, (0, None, None), (rand(5, 3), rand(3, 2), rand(2)))


def test_tuple_in_axes_mixed_axes():
    f = lambda x, y: jnp.dot(x, y) * x
    check_vmap(f, (1, 0), (rand(3, 4), rand(4, 3)))


def test_list_in_axes_is_a_tuple():
    f = lambda x, y: x * y.sum()
    x, y = rand(4, 3), rand(2, 4)
    np.testing.assert_allclose(
        np.asarray(vmap(f, in_axes=[0, 1])(x, y)), np.asarray(vmap(f, in_axes=(0, 1))(x, y))
    )


def test_in_axes_none_for_every_argument_needs_axis_size():
    f = lambda x: x * 3.0
    out = vmap(f, in_axes=None, axis_size=4)(rand(2))
    assert out.shape == (4, 2)


def test_dict_prefix_in_axes():
    def f(params, x):
        return jnp.maximum(x @ params["w"] + params["b"], 0.0)

    params = {"w": rand(3, 2), "b": rand(5, 2)}
    check_vmap(f, ({"w": None, "b": 0}, 0), (params, rand(5, 3)))


def test_nested_prefix_in_axes():
    def f(pair, z):
        (a, b), c = pair
        return a * b[1] + c + z

    args = (((rand(4, 2), rand(2, 4)), rand(2)), rand(2))
    check_vmap(f, (((0, 1), None), None), args)


def test_in_axes_prefix_shorter_than_tree_maps_whole_subtree():
    f = lambda p: p["a"].sum() + p["b"][0]
    args = ({"a": rand(3, 2, 2), "b": rand(3, 5)},)
    check_vmap(f, (0,), args)
    check_vmap(f, 0, args)


def test_numpy_and_float64_inputs_are_canonicalised():
    x = np.arange(6.0).reshape(3, 2)  # float64 NumPy array
    out = vmap(lambda r: r * 2)(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.asarray(out), x * 2)


def test_tracer_has_per_example_shape():
    seen = []

    def f(x, y):
        seen.append((type(x), x.shape, x.ndim, type(y)))
        return x

    vmap(f, in_axes=(1, None))(rand(2, 7, 3), rand(4))
    assert seen == [(BatchTracer, (2, 3), 2, core.ArrayImpl)]  # NumPy args become Arrays


# --------------------------------------------------------------------------------------------
# out_axes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("out_axes", [0, 1, 2, -1, -2])
def test_int_out_axes(out_axes):
    f = lambda x: jnp.reshape(x, (2, 3)) * 2
    check_vmap(f, 0, (rand(4, 6),), out_axes=out_axes)


def test_out_axes_pytree_prefix():
    def f(x):
        return {"s": x.sum(axis=0), "pair": (x, x.T)}

    x = rand(5, 2, 3)
    out = vmap(f, in_axes=0, out_axes={"s": 0, "pair": (1, -1)})(x)
    expected = loop_oracle(f, 0, (x,), out_axes=[1, -1, 0])  # flat order: pair[0], pair[1], s
    assert_trees_close(out, expected)
    assert out["pair"][0].shape == (2, 5, 3) and out["pair"][1].shape == (3, 2, 5)


def test_out_axes_none_for_unbatched_output_is_returned_as_is():
    y = rand(3)
    out_mapped, out_plain = vmap(
        lambda x, y: (x + y, y * 2), in_axes=(0, None), out_axes=(0, None)
    )(rand(4, 3), y)
    assert out_mapped.shape == (4, 3)
    assert out_plain.shape == (3,)
    np.testing.assert_allclose(np.asarray(out_plain), y * 2)
    const = vmap(lambda x: (x, 3.0), out_axes=(0, None))(rand(2))[1]
    assert isinstance(const, core.Array) and const.shape == () and float(const) == 3.0


def test_unmapped_outputs_are_broadcast():
    y = rand(3)
    outs = vmap(lambda x, y: (x.sum(), y * 2, 7.0), in_axes=(0, None))(rand(4, 2), y)
    assert outs[1].shape == (4, 3)
    np.testing.assert_allclose(np.asarray(outs[1]), np.broadcast_to(y * 2, (4, 3)))
    assert outs[2].shape == (4,)
    np.testing.assert_allclose(np.asarray(outs[2]), np.full(4, 7.0))


def test_unmapped_output_broadcast_to_nonzero_out_axis():
    y = rand(2, 3)
    out = vmap(lambda x: y, out_axes=1)(rand(5))
    assert out.shape == (2, 5, 3)
    np.testing.assert_allclose(np.asarray(out), np.broadcast_to(y[:, None], (2, 5, 3)))


def test_axis_size_with_no_mapped_inputs():
    out = vmap(lambda: jnp.arange(3), in_axes=(), axis_size=4)()
    assert out.shape == (4, 3)
    np.testing.assert_array_equal(np.asarray(out), np.tile(np.arange(3), (4, 1)))


def test_axis_size_consistent_with_mapped_input_is_accepted():
    out = vmap(jnp.sin, axis_size=3)(np.zeros((3, 2), np.float32))
    assert out.shape == (3, 2)


# --------------------------------------------------------------------------------------------
# keyword arguments, pytrees, nesting, indexing
# --------------------------------------------------------------------------------------------


def test_kwargs_are_mapped_over_leading_axis():
    # As in JAX: keyword arguments are always mapped over axis 0, whatever in_axes says.
    f = lambda x, *, scale: x * scale
    x, scale = rand(3, 4), rand(4)
    out = vmap(f, in_axes=1)(x, scale=scale)
    np.testing.assert_allclose(np.asarray(out), (x * scale[None, :]).T, rtol=1e-6)


def test_kwargs_unmapped_via_partial():
    f = lambda x, scale: x * scale
    x = rand(3, 4)
    out = vmap(functools.partial(f, scale=2.0))(x)
    np.testing.assert_allclose(np.asarray(out), x * 2.0, rtol=1e-6)


def test_pytrees_in_and_out():
    Pair = namedtuple("Pair", ["first", "second"])

    def f(tree):
        a, b = tree["xs"]
        return Pair(first=a @ b, second={"norm": (a * a).sum(), "none": None})

    args = ({"xs": [rand(4, 2, 3), rand(4, 3, 2)]},)
    out = vmap(f)(*args)
    assert isinstance(out, Pair) and out.second["none"] is None
    assert_trees_close(out, loop_oracle(f, 0, args))


def test_nested_vmap_over_different_axes():
    def f(x, y):
        return jnp.sum(x * y) + x[0]

    x, y = rand(3, 4), rand(4, 5)
    inner = vmap(f, in_axes=(None, 1))  # over the columns of y
    out = vmap(inner, in_axes=(0, None))(x, y)  # over the rows of x
    expected = np.array([[np.sum(x[i] * y[:, j]) + x[i, 0] for j in range(5)] for i in range(3)])
    assert out.shape == (3, 5)
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-5, atol=1e-5)


def test_nested_vmap_closing_over_outer_tracer():
    x, y = rand(3, 2), rand(4, 2)
    out = vmap(lambda a: vmap(lambda b: jnp.dot(a, b))(y))(x)
    np.testing.assert_allclose(np.asarray(out), x @ y.T, rtol=1e-5, atol=1e-5)


def test_nested_vmap_out_axes():
    x = rand(2, 3, 4)
    f = vmap(vmap(lambda v: v * 2.0, in_axes=1, out_axes=0), in_axes=2, out_axes=2)
    out = f(x)  # inner maps axis 1 of (2, 3) -> (3, 2); outer puts its axis (4) at 2
    np.testing.assert_allclose(np.asarray(out), np.transpose(x, (1, 0, 2)) * 2.0)


def test_indexing_with_static_and_mapped_index():
    xs = rand(4, 6)
    idx = np.array([0, 5, -1, 2], np.int32)
    check_vmap(lambda x: x[2] + x[-1], 0, (xs,))
    check_vmap(lambda x, i: x[i], (0, 0), (xs, idx))
    check_vmap(lambda x, i: x[i], (None, 0), (rand(6, 3), idx))
    check_vmap(lambda x: x[1:4], 1, (rand(6, 3),))


def test_at_set_with_static_and_mapped_index():
    xs = rand(4, 5)
    vs = rand(4)
    idx = np.array([0, 4, 1, 1], np.int32)
    check_vmap(lambda x, v: x.at[1].set(v), (0, 0), (xs, vs))
    check_vmap(lambda x, i, v: x.at[i].set(v), (0, 0, 0), (xs, idx, vs))
    check_vmap(lambda x, i: x.at[i].add(1.0), (None, 0), (jnp.asarray(xs[0]), idx))


def test_reshape_transpose_matmul_pipeline():
    w = rand(3, 4)
    f = lambda x: (x.reshape(2, 3) @ w).T.reshape(-1)
    check_vmap(f, 1, (rand(6, 5),))


def test_integer_and_bool_outputs_keep_dtype():
    x = rand(5, 3)
    out = vmap(lambda r: (jnp.argmax(r), r > 0))(x)
    assert out[0].dtype == np.int32 and out[1].dtype == np.bool_
    np.testing.assert_array_equal(np.asarray(out[0]), np.argmax(x, axis=1))
    np.testing.assert_array_equal(np.asarray(out[1]), x > 0)


def test_wraps_keeps_name_and_doc():
    def my_fun(x):
        """My docstring."""
        return x

    mapped = vmap(my_fun)
    assert mapped.__name__ == "my_fun"
    assert mapped.__doc__ == "My docstring."
    assert mapped.__wrapped__ is my_fun


def test_identity_over_axis_returns_unchanged_values():
    x = rand(3, 4)
    np.testing.assert_array_equal(np.asarray(vmap(lambda v: v, 1, 1)(x)), x)
    np.testing.assert_array_equal(np.asarray(vmap(lambda v: v, 1, 0)(x)), x.T)


# --------------------------------------------------------------------------------------------
# Property test: random shapes, axes and out_axes against the loop
# --------------------------------------------------------------------------------------------


@st.composite
def mapped_problem(draw):
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    in_axis = draw(st.integers(-len(shape), len(shape) - 1))
    out_axis = draw(st.integers(-len(shape), len(shape) - 1))
    y_mapped = draw(st.booleans())
    return shape, in_axis, out_axis, y_mapped


@settings(max_examples=25, deadline=None)
@given(mapped_problem())
def test_vmap_matches_loop_property(problem):
    shape, in_axis, out_axis, y_mapped = problem
    x = rand(*shape)
    axis = in_axis % len(shape)
    example_shape = shape[:axis] + shape[axis + 1 :]
    n = shape[in_axis]
    y = rand(n, *example_shape) if y_mapped else rand(*example_shape)

    def f(a, b):
        return jnp.cos(a) * b - jnp.sum(a * b) / (1.0 + b * b)

    args = (x, y)
    axes = (in_axis, 0 if y_mapped else None)
    expected = loop_oracle(f, axes, args, out_axes=out_axis)
    assert_trees_close(vmap(f, axes, out_axis)(*args), expected)


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_error_inconsistent_sizes_names_paths_and_sizes():
    f = lambda x, p: x + p["w"].sum()
    with pytest.raises(ValueError) as info:
        vmap(f, in_axes=(0, {"w": 1}))(rand(3, 2), {"w": rand(2, 4)})
    msg = str(info.value)
    assert "inconsistent sizes" in msg
    assert "args[0]" in msg and "(3, 2)" in msg and "size 3" in msg
    assert "args[1]['w']" in msg and "(2, 4)" in msg and "size 4" in msg


def test_error_axis_size_disagrees_with_inputs():
    with pytest.raises(ValueError, match=r"axis_size=5(.|\n)*args\[0\](.|\n)*size 3"):
        vmap(jnp.sin, axis_size=5)(rand(3))


def test_error_in_axis_out_of_range():
    with pytest.raises(ValueError) as info:
        vmap(lambda a, b: a + b, in_axes=(0, 2))(rand(2, 2), rand(2, 2))
    msg = str(info.value)
    assert "args[1]" in msg and "(2, 2)" in msg and "out of bounds" in msg and "2" in msg
    with pytest.raises(ValueError, match=r"-3.*args\[0\]"):
        vmap(jnp.sin, in_axes=-3)(rand(2, 2))


def test_error_in_axes_length_differs_from_positional_args():
    with pytest.raises(ValueError, match=r"length 1 for 2 positional arguments"):
        vmap(lambda a, b: a + b, in_axes=(0,))(rand(2), rand(2))
    with pytest.raises(ValueError, match=r"length 3 for 2 positional arguments"):
        vmap(lambda a, b: a + b, in_axes=(0, 0, 0))(rand(2), rand(2))


def test_error_mapping_a_0d_value():
    with pytest.raises(ValueError) as info:
        vmap(lambda a, p: a * p["s"], in_axes=(0, {"s": 0}))(rand(3), {"s": 2.0})
    msg = str(info.value)
    assert "args[1]['s']" in msg and "0-d" in msg and "shape ()" in msg


def test_error_no_mapped_argument_and_no_axis_size():
    with pytest.raises(ValueError, match="axis_size"):
        vmap(jnp.sin, in_axes=None)(rand(3))
    with pytest.raises(ValueError, match="axis_size"):
        vmap(lambda: 1.0, in_axes=())()


def test_error_mapped_output_with_out_axes_none():
    with pytest.raises(ValueError) as info:
        vmap(lambda x: {"a": x, "b": x.sum()}, out_axes={"a": 0, "b": None})(rand(3, 2))
    msg = str(info.value)
    assert "out_axes is None" in msg and "out['b']" in msg


def test_error_out_axis_out_of_range():
    with pytest.raises(ValueError, match=r"out_axes 3 .*out"):
        vmap(lambda x: x, out_axes=3)(rand(3, 2))


def test_error_in_axes_prefix_structure_mismatch():
    with pytest.raises(ValueError, match="prefix"):
        vmap(lambda p: p["a"], in_axes=({"a": 0, "c": None},))({"a": rand(2), "b": rand(2)})


def test_error_in_axes_bad_type():
    with pytest.raises(TypeError, match="in_axes"):
        vmap(jnp.sin, in_axes=1.5)
    with pytest.raises(TypeError, match="in_axes"):
        vmap(jnp.sin, in_axes=({"a": "0"},))
    with pytest.raises(TypeError, match="out_axes"):
        vmap(jnp.sin, out_axes="x")


def test_error_python_control_flow_on_batched_value():
    def f(x):
        if x.sum() > 0:
            return x
        return -x

    with pytest.raises(core.ConcretizationTypeError, match="vmap"):
        vmap(f)(rand(3, 2))


def test_python_control_flow_on_unmapped_value_works():
    def f(x, flag):
        return x * 2 if flag > 0 else x

    out = vmap(f, in_axes=(0, None))(rand(3), jnp.asarray(1.0))
    assert out.shape == (3,)


@pytest.fixture
def temporary_primitive():
    created = []

    def make(name, **kwargs):
        p = core.Primitive(name, **kwargs)
        created.append(name)
        return p

    yield make
    for name in created:
        core.primitives.pop(name, None)


def test_error_primitive_without_batching_rule(temporary_primitive):
    p = temporary_primitive("_test_batching_no_rule")
    p.impl = lambda x: x
    p.abstract_eval = lambda x: x
    with pytest.raises(TypeError, match="vmap: primitive _test_batching_no_rule has no batching"):
        vmap(lambda x: p.bind(x))(rand(3))
    # an unbatched operand never needs the rule
    out = vmap(lambda x, y: x + p.bind(y), in_axes=(0, None))(rand(3), rand(3))
    assert out.shape == (3, 3)


# --------------------------------------------------------------------------------------------
# Helpers for batching rules, and vmap_flat
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("src", "dst"), [(0, 2), (2, 0), (1, -1), (-1, 0), (1, 1)])
def test_moveaxis_matches_numpy(src, dst):
    x = rand(2, 3, 4)
    np.testing.assert_array_equal(np.asarray(moveaxis(x, src, dst)), np.moveaxis(x, src, dst))


def test_moveaxis_noop_returns_input():
    x = jnp.asarray(rand(2, 3))
    assert moveaxis(x, 1, -1) is x


def test_broadcast_batch_and_bdim_at_front():
    x = rand(2, 3)
    for axis in (0, 1, 2, -1):
        expected = np.broadcast_to(
            np.expand_dims(x, axis), np.insert(np.array(x.shape), axis % 3, 5)
        )
        np.testing.assert_array_equal(np.asarray(broadcast_batch(x, 5, axis)), expected)
    np.testing.assert_array_equal(np.asarray(bdim_at_front(x, 1, 3)), x.T)
    np.testing.assert_array_equal(
        np.asarray(bdim_at_front(x, None, 4)), np.broadcast_to(x, (4, 2, 3))
    )
    assert broadcast_batch(2.0, 3, 0).shape == (3,)


def test_vectorized_batch_rule(temporary_primitive):
    # rowwise_scale(x, s)[..., j] = x[..., j] * s[..., 0]: acts on each leading slice alone
    p = temporary_primitive("_test_batching_rowwise_scale")
    p.impl = lambda x, s: x * s[..., :1]
    p.abstract_eval = lambda x, s: x
    p.batch = vectorized_batch_rule(p)
    assert p.batch.__name__ == "_test_batching_rowwise_scale_batching_rule"
    x, s = rand(3, 4, 2), rand(3, 1)
    check_vmap(lambda a, b: p.bind(a, b), (1, None), (x, s))
    check_vmap(lambda a, b: p.bind(a, b), (2, 0), (rand(4, 3, 5), rand(5, 4, 1)))


def test_vectorized_batch_rule_multiple_results(temporary_primitive):
    p = temporary_primitive("_test_batching_split_pair", multiple_results=True)
    p.impl = lambda x: (x * 2, x + 1)
    p.abstract_eval = lambda x: [x, x]
    p.batch = vectorized_batch_rule(p)
    x = rand(3, 2)
    a, b = vmap(lambda v: tuple(p.bind(v)), in_axes=1)(x)
    np.testing.assert_allclose(np.asarray(a), x.T * 2)
    np.testing.assert_allclose(np.asarray(b), x.T + 1)


def test_vmap_flat():
    x, y = rand(3, 2), rand(2)
    outs = vmap_flat(lambda a, b: [a * b, b], [0, None], x, y, out_axes=[1, None])
    np.testing.assert_allclose(np.asarray(outs[0]), (x * y).T)
    np.testing.assert_allclose(np.asarray(outs[1]), y)
    (out,) = vmap_flat(lambda: [jnp.ones(2)], [], axis_size=3)
    assert out.shape == (3, 2)
    with pytest.raises(ValueError, match=r"args\[1\].*size 4"):
        vmap_flat(lambda a, b: [a + b], [0, 0], rand(3), rand(4))


def test_lax_level_ops_under_vmap():
    x = rand(4, 3, 2)
    f = lambda v: lax.reduce_sum(lax.transpose(v, (1, 0)), (1,))
    check_vmap(f, 0, (x,))


def test_batch_jaxpr_matches_vmap():
    def f(x, w):
        return [jnp.tanh(x * w).sum(axis=0), w * 2.0]

    f32 = np.dtype("float32")
    jaxpr, consts = core.trace_to_jaxpr(f, [core.ShapedArray((3, 2), f32)] * 2)
    closed = core.ClosedJaxpr(jaxpr, consts)
    batched, out_dims = batch_jaxpr(closed, 4, [1, None])
    assert out_dims == [0, None]
    assert [a.shape for a in batched.in_avals] == [(3, 4, 2), (3, 2)]
    x, w = rand(3, 4, 2), rand(3, 2)
    outs = batched(x, w)
    expected = vmap(f, in_axes=(1, None), out_axes=[0, None])(x, w)
    assert_trees_close(outs, expected)
    forced, forced_dims = batch_jaxpr(closed, 4, [1, None], instantiate=True)
    assert forced_dims == [0, 0]
    np.testing.assert_allclose(np.asarray(forced(x, w)[1]), np.broadcast_to(w * 2.0, (4, 3, 2)))
