"""Tests for NumPy indexing (`x[idx]`), `x.at[idx]` updates, and their lowering under staging:
generated index tuples are compared with NumPy on concrete arrays."""

from __future__ import annotations

import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fnbrrr.numpy as jnp
from fnbrrr import core

settings.register_profile(
    "fnbrrr-indexing",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.load_profile("fnbrrr-indexing")

shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5)


def arange_array(shape) -> np.ndarray:
    return np.arange(math.prod(shape), dtype=np.float32).reshape(shape) - 7


def assert_same(actual, expected):
    assert isinstance(actual, core.Array)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    np.testing.assert_array_equal(np.asarray(actual), expected)


def staged(fun, *args):
    """Evaluate `fun` through the IR builder (as jit does): tracers instead of arrays."""
    arrays = [np.asarray(a) for a in args]
    avals = [core.ShapedArray(a.shape, a.dtype, False) for a in arrays]
    jaxpr, consts = core.trace_to_jaxpr(lambda *xs: [fun(*xs)], avals)
    return core.eval_jaxpr(jaxpr, consts, *[jnp.asarray(a) for a in arrays])[0]


# --------------------------------------------------------------------------------------------
# Generated indices against NumPy
# --------------------------------------------------------------------------------------------


@given(shape=shapes, data=st.data())
def test_basic_indices_match_numpy(shape, data):
    xn = arange_array(shape)
    idx = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    assert_same(jnp.asarray(xn)[idx], xn[idx])


@st.composite
def mixed_indices(draw, shape):
    """A tuple mixing ints, slices (any step), None, `...` and integer arrays (any rank,
    negative and out-of-range-free entries), in any position."""
    n = len(shape)
    use_ellipsis = draw(st.booleans())
    k = draw(st.integers(0, n))
    suffix = draw(st.integers(0, n - k)) if use_ellipsis else 0
    dims = list(range(k)) + list(range(n - suffix, n))
    array_shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3))
    items = []
    placed = False
    for d in dims:
        if use_ellipsis and d == n - suffix and not placed:
            items.append(Ellipsis)
            placed = True
        size = shape[d]
        kind = draw(st.sampled_from(["int", "slice", "array", "array", "nparray", "full"]))
        if kind == "int":
            items.append(draw(st.integers(-size, size - 1)))
        elif kind == "slice":
            start = draw(st.none() | st.integers(-size - 2, size + 2))
            stop = draw(st.none() | st.integers(-size - 2, size + 2))
            step = draw(st.none() | st.integers(-3, 3).filter(bool))
            items.append(slice(start, stop, step))
        elif kind == "full":
            items.append(slice(None))
        else:
            sub = array_shape[len(array_shape) - draw(st.integers(0, len(array_shape))) :]
            idx = draw(hnp.arrays(np.int32, sub, elements=st.integers(-size, size - 1)))
            items.append(idx if kind == "nparray" else jnp.asarray(idx))
        if draw(st.integers(0, 5)) == 0:
            items.append(None)
    if use_ellipsis and not placed:
        items.append(Ellipsis)
    if draw(st.integers(0, 4)) == 0:
        items.insert(draw(st.integers(0, len(items))), None)
    return tuple(items)


def numpy_index(idx):
    return tuple(np.asarray(i) if isinstance(i, core.Array) else i for i in idx)


@given(shape=shapes, data=st.data())
def test_mixed_advanced_indices_match_numpy(shape, data):
    xn = arange_array(shape)
    idx = data.draw(mixed_indices(shape))
    assert_same(jnp.asarray(xn)[idx], xn[numpy_index(idx)])


@given(shape=shapes, data=st.data())
def test_boolean_masks_match_numpy(shape, data):
    xn = arange_array(shape)
    k = data.draw(st.integers(1, len(shape)))
    lead = data.draw(st.integers(0, len(shape) - k))
    mask = data.draw(hnp.arrays(np.bool_, shape[lead : lead + k]))
    idx = (slice(None),) * lead + (mask,)
    assert_same(jnp.asarray(xn)[idx], xn[idx])
    assert_same(jnp.asarray(xn)[idx[:lead] + (jnp.asarray(mask),)], xn[idx])


@given(shape=shapes, data=st.data())
def test_at_updates_match_numpy(shape, data):
    xn = arange_array(shape)
    idx = data.draw(mixed_indices(shape) | hnp.basic_indices(shape, allow_newaxis=True))
    nidx = numpy_index(idx) if isinstance(idx, tuple) else idx
    target = xn[nidx].shape
    values = data.draw(hnp.arrays(np.float32, target, elements=st.floats(-4, 4, width=32)))
    x = jnp.asarray(xn)
    for op, ufunc in [("set", None), ("add", np.add), ("multiply", np.multiply)]:
        want = xn.copy()
        if ufunc is None:
            want[nidx] = values
        else:
            ufunc.at(want, nidx, values)
        assert_same(getattr(x.at[idx], op)(values), want)
    assert_same(x.at[idx].get(), xn[nidx])
    assert_same(x, xn)  # the original is unchanged


# --------------------------------------------------------------------------------------------
# Specific semantics
# --------------------------------------------------------------------------------------------


def test_numpy_placement_rule_for_advanced_indices():
    xn = arange_array((3, 4, 5))
    x = jnp.asarray(xn)
    cases = [
        (0, slice(None), np.array([0, 1])),  # separated: broadcast dims go first
        (slice(None), 0, np.array([0, 1])),  # adjacent: stay in place
        (np.array([0, 1]), Ellipsis, np.array([0, 1])),
        (slice(None), np.array([0, 1]), Ellipsis, np.array([0, 1])),  # `...` separates
        (None, 0, np.array([0, 1])),
        (0, None, np.array([0, 1])),  # None separates
        (slice(None), np.array([[0], [2]]), np.array([1, 3])),
    ]
    for idx in cases:
        assert_same(x[idx], xn[idx])


def test_negative_and_out_of_range_array_indices():
    x = jnp.arange(5)
    assert_same(x[np.array([-1, -5, 0])], np.array([4, 0, 0], np.int32))
    # Out-of-range integer-array entries are clamped, as JAX's gather does.
    assert_same(x[np.array([7, -9])], np.array([4, 0], np.int32))
    assert_same(x[jnp.array(10)], np.array(4, np.int32))
    # Out-of-range updates are dropped.
    assert_same(x.at[np.array([1, 9])].set(100), np.array([0, 100, 2, 3, 4], np.int32))


def test_repeated_indices_accumulate_in_add_and_multiply():
    x = jnp.zeros(4)
    assert_same(x.at[np.array([0, 0, 2, 0])].add(1.0), np.array([3, 0, 1, 0], np.float32))
    y = jnp.full(3, 2.0)
    assert_same(y.at[jnp.array([1, 1, 1])].multiply(3.0), np.array([2, 54, 2], np.float32))
    m = jnp.zeros((2, 3))
    assert_same(
        m.at[np.array([0, 0]), np.array([1, 1])].add(jnp.array([1.0, 2.0])),
        np.array([[0, 3, 0], [0, 0, 0]], np.float32),
    )


def test_at_update_forms():
    x = jnp.arange(6.0).reshape(2, 3)
    assert_same(x.at[0].set(9), np.array([[9, 9, 9], [3, 4, 5]], np.float32))
    assert_same(x.at[:, 1].add(1), np.array([[0, 2, 2], [3, 5, 5]], np.float32))
    assert_same(x.at[..., ::-2].multiply(2), np.array([[0, 1, 4], [6, 4, 10]], np.float32))
    assert_same(x.at[-1, -1].set(jnp.asarray(7.0)), np.array([[0, 1, 2], [3, 4, 7]], np.float32))
    assert_same(x.at[1].subtract(1.0), np.array([[0, 1, 2], [2, 3, 4]], np.float32))
    assert_same(x.at[0, 0].divide(2.0), np.array([[0, 1, 2], [3, 4, 5]], np.float32))
    assert_same(x.at[1:].set(np.array([[1, 1, 1]])), np.array([[0, 1, 2], [1, 1, 1]], np.float32))
    i = jnp.arange(3)
    assert_same(i.at[1].set(2.7), np.array([0, 2, 2], np.int32))  # cast to the array's dtype
    assert i.at[0].add(1).dtype == np.int32
    b = jnp.zeros(3, bool)
    assert_same(b.at[np.array([0, 0])].add(True), np.array([True, False, False]))
    with pytest.raises(ValueError, match="shape mismatch"):
        x.at[0].set(jnp.ones(4))
    with pytest.raises(TypeError, match="tuple"):
        x.at[[0, 1]]


def test_index_errors():
    x = jnp.arange(6).reshape(2, 3)
    with pytest.raises(TypeError, match="non-tuple sequence"):
        x[[0, 1]]
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match="single ellipsis"):
        x[..., ...]
    with pytest.raises(IndexError, match="integer or boolean"):
        x[np.array([0.5])]
    with pytest.raises(IndexError, match="valid indices"):
        x["a"]
    with pytest.raises(IndexError, match="boolean index did not match"):
        x[np.array([True, False, True])]
    with pytest.raises(IndexError, match="broadcast"):
        x[np.array([0, 1]), np.array([0, 1, 2])]


def test_lists_inside_a_tuple_are_array_indices():
    xn = arange_array((3, 4))
    assert_same(jnp.asarray(xn)[[0, 2], :], xn[[0, 2], :])
    assert_same(jnp.asarray(xn)[:, [True, False, True, False]], xn[:, [True, False, True, False]])


def test_traced_integer_index_uses_normalised_dynamic_index():
    xn = arange_array((4, 3))
    for i in [0, 2, -1, -4]:
        assert_same(staged(lambda x, i: x[i], xn, np.int32(i)), xn[i])
        assert_same(staged(lambda x, i: x[1:, i], xn, np.int32(i % 3)), xn[1:, i % 3])
    idx = np.array([[0, -1], [2, 1]], np.int32)
    assert_same(staged(lambda x, j: x[j, ::-1], xn, idx), xn[idx, ::-1])
    assert_same(
        staged(lambda x, j: x[:, j], xn, np.array([2, -3], np.int32)), xn[:, np.array([2, -3])]
    )
    out = staged(lambda x, j: x.at[j].add(1.0), xn, np.array([0, 0, -1], np.int32))
    want = xn.copy()
    np.add.at(want, np.array([0, 0, -1]), 1.0)
    assert_same(out, want)
    assert_same(
        staged(lambda x, i: x.at[i, 1].set(0.0), xn, np.int32(-2)),
        np.where((np.arange(4)[:, None] == 2) & (np.arange(3) == 1), 0, xn).astype(np.float32),
    )


def test_traced_boolean_mask_needs_concrete_values():
    xn = arange_array((4,))
    with pytest.raises(IndexError, match="boolean indices must be concrete"):
        staged(lambda x: x[x > 0], xn)
    assert isinstance(jnp.NonConcreteBooleanIndexError("m"), IndexError)


def test_traced_slice_bounds_are_rejected():
    xn = arange_array((4,))
    with pytest.raises(IndexError, match="static start/stop/step"):
        staged(lambda x, i: x[i:], xn, np.int32(1))


def test_indexing_returns_new_arrays_and_is_immutable():
    x = jnp.arange(4)
    y = x[1:3]
    assert_same(y, np.array([1, 2], np.int32))
    with pytest.raises(TypeError, match="immutable"):
        x[0] = 5
    with pytest.raises(TypeError, match="at"):
        x[0] = 5
    x.at[0].set(5)
    assert_same(x, np.arange(4, dtype=np.int32))


def test_zero_d_index_arrays():
    xn = arange_array((3, 4))
    assert_same(jnp.asarray(xn)[jnp.array(1)], xn[1])
    assert_same(jnp.asarray(xn)[np.int64(-1), jnp.array(2)], xn[-1, 2])
    assert_same(jnp.asarray(xn)[jnp.array(1), np.array([0, 3])], xn[1, [0, 3]])
    assert_same(jnp.asarray(xn)[:, jnp.array(-1)], xn[:, -1])


def test_iteration_and_empty_results():
    x = jnp.arange(6).reshape(3, 2)
    rows = list(x)
    assert len(rows) == 3
    assert_same(rows[2], np.array([4, 5], np.int32))
    assert_same(x[2:1], np.zeros((0, 2), np.int32))
    assert_same(x[np.array([], np.int32)], np.zeros((0, 2), np.int32))
    assert_same(x.at[3:].set(1), np.arange(6, dtype=np.int32).reshape(3, 2))


# --------------------------------------------------------------------------------------------
# Under transformations: indexing is differentiable, batchable and jit-able
# --------------------------------------------------------------------------------------------


def _transform(name: str):
    import fnbrrr

    return getattr(fnbrrr, name)


def test_gradient_of_indexing_accumulates_repeated_indices():
    grad = _transform("grad")
    x = jnp.arange(5.0)
    g = grad(lambda x: jnp.sum(x[np.array([0, 0, 3, -1])] * jnp.arange(1.0, 5.0)))(x)
    assert_same(g, np.array([3, 0, 0, 3, 4], np.float32))
    g = grad(lambda x: jnp.sum(x[::-2] ** 2))(x)
    assert_same(g, np.array([0, 0, 4, 0, 8], np.float32))
    m = jnp.arange(6.0).reshape(2, 3)
    g = grad(lambda m: m[1, jnp.array([2, 2])].sum() + m[:, None, 0].sum())(m)
    assert_same(g, np.array([[1, 0, 0], [1, 0, 2]], np.float32))


def test_gradient_of_at_updates():
    grad = _transform("grad")
    x = jnp.arange(4.0)

    def f(x, v):
        return jnp.sum(x.at[np.array([1, 1])].add(v) ** 2) + jnp.sum(x.at[0].set(v[0]))

    gx, gv = grad(f, argnums=(0, 1))(x, jnp.array([1.0, 2.0]))
    # d/dx: 2 * updated (x[1] -> 1 + 1 + 2 = 4) plus 1 where not overwritten by set.
    assert_same(gx, np.array([0 + 0, 8 + 1, 4 + 1, 6 + 1], np.float32))
    assert_same(gv, np.array([8 + 1, 8], np.float32))


def test_vmap_of_indexing_with_batched_indices():
    vmap = _transform("vmap")
    xn = arange_array((3, 4))
    idx = np.array([0, -1, 2], np.int32)
    out = vmap(lambda row, i: row[i])(jnp.asarray(xn), jnp.asarray(idx))
    assert_same(out, xn[np.arange(3), idx])
    out = vmap(lambda row, i: row.at[i].add(10.0))(jnp.asarray(xn), jnp.asarray(idx))
    want = xn.copy()
    want[np.arange(3), idx] += 10
    assert_same(out, want)
    out = vmap(lambda i: jnp.asarray(xn)[:, i])(jnp.asarray(idx))
    assert_same(out, xn[:, idx].T)


def test_jit_of_indexing_matches_eager():
    jit = _transform("jit")
    xn = arange_array((3, 4))
    x = jnp.asarray(xn)

    def f(x, i):
        return x[i, ::-1] + x[np.array([0, 2]), 1:3].sum() + x.at[i, 0].add(1.0)[-1]

    for i in [0, 1, -1]:
        eager = f(x, i)
        staged_out = jit(f)(x, i)
        np.testing.assert_allclose(np.asarray(staged_out), np.asarray(eager), rtol=1e-6)


def test_out_of_range_static_ints_clamp_on_read_and_drop_on_update():
    # JAX's behaviour (NumPy raises): reads clamp to the nearest row, updates are dropped.
    xn = arange_array((3, 4))
    x = jnp.asarray(xn)
    assert_same(x[3], xn[2])
    assert_same(x[-7], xn[0])
    assert_same(x[1, 9], xn[1, 3])
    assert_same(x.at[3].set(-1.0), xn)
    assert_same(x.at[1, -9].add(5.0), xn)
    assert_same(x.at[1:, 5].set(2.0), xn)
    assert_same(staged(lambda a: a.at[7].set(0.0), xn), xn)
    with pytest.raises(IndexError, match="out of bounds"):
        jnp.zeros((0, 2))[0]


def test_wrong_index_types_raise_type_error_and_index_error():
    x = jnp.arange(6.0)
    for bad in (1.0, np.array([1.0]), "a"):
        with pytest.raises(TypeError):
            x[bad]
        with pytest.raises(IndexError):
            x[bad]


def test_true_as_index_adds_a_unit_axis():
    xn = arange_array((2, 3))
    assert_same(jnp.asarray(xn)[True], xn[True])
    assert_same(jnp.asarray(xn)[1, True], xn[1, True])


def test_at_min_max_power_apply_match_numpy_for_unique_indices():
    xn = arange_array((3, 4))
    x = jnp.asarray(xn)
    rows = np.array([0, 2])
    want = xn.copy()
    want[1] = np.minimum(want[1], -5.5)
    assert_same(x.at[1].min(-5.5), want)
    want = xn.copy()
    want[rows, 1:] = np.maximum(want[rows, 1:], 0.5)
    assert_same(x.at[rows, 1:].max(0.5), want)
    want = xn.copy()
    want[:, -1] **= 2
    assert_same(x.at[:, -1].power(2), want)
    want = xn.copy()
    want[rows] = np.exp(want[rows])
    np.testing.assert_allclose(np.asarray(x.at[rows].apply(jnp.exp)), want, rtol=1e-6)
    assert_same(staged(lambda a: a.at[1:].max(0.0), xn), np.where(np.arange(3)[:, None] > 0,
                                                                   np.maximum(xn, 0), xn))
    with pytest.raises(NotImplementedError, match="more than once"):
        x.at[np.array([0, -3])].power(1.0)


def test_at_max_min_with_repeated_indices_match_numpy_ufunc_at():
    xn = arange_array((3, 4, 5))
    x = jnp.asarray(xn)
    rows = np.array([0, 2, 0, -3, 7])  # 0 three times; 7 is out of range (dropped)
    vals = np.arange(5 * 4 * 5, dtype=np.float32).reshape(5, 4, 5) - 50
    for name, ufunc in (("max", np.maximum), ("min", np.minimum)):
        want = xn.copy()
        ufunc.at(want, rows[:4], vals[:4])
        assert_same(getattr(x.at[rows], name)(vals), want)
        assert_same(staged(lambda a, n=name: getattr(a.at[rows], n)(vals), xn), want)
    cols = np.array([[1, 1], [3, 1]])
    vals = np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 2, 2)
    want = xn.copy()
    np.maximum.at(want, (slice(None), cols, 2), vals)
    assert_same(x.at[:, cols, 2].max(vals), want)


def test_at_get_fill_mode_fills_out_of_range_entries():
    xn = arange_array((3, 4))
    x = jnp.asarray(xn)
    rows = np.array([0, 5, -1, -4])
    got = x.at[rows].get(mode="fill", fill_value=-1.0)
    inside = (rows >= -3) & (rows < 3)
    want = np.where(inside[:, None], xn[np.clip(rows, -3, 2)], -1.0).astype(np.float32)
    assert_same(got, want)
    assert_same(staged(lambda a, i: a.at[:, i].get(mode="fill", fill_value=0.0), xn,
                       np.array([[1, 9], [-5, 3]], np.int32)),
                np.stack([np.where([[True, False], [False, True]], row[[[1, 0], [0, 3]]], 0.0)
                          for row in xn]).astype(np.float32))
    assert np.isnan(np.asarray(x.at[np.array([7])].get(mode="fill"))).all()
    ints = jnp.arange(3).at[np.array([0, 3])].get(mode="fill")
    np.testing.assert_array_equal(ints, [0, np.iinfo(np.int32).min])


def test_fill_mode_drops_out_of_range_updates():
    xn = arange_array((4,))
    want = xn.copy()
    want[1] = -1.0
    assert_same(jnp.asarray(xn).at[np.array([1, 9])].set(-1.0, mode="fill"), want)


def test_take_along_axis_fills_out_of_range_by_default_like_jax():
    xn = arange_array((3, 4))
    idx = np.array([[0, 5], [-1, 2], [3, -7]])
    got = jnp.take_along_axis(xn, idx, axis=1)
    valid = (idx >= -4) & (idx < 4)
    want = np.where(valid, np.take_along_axis(xn, np.clip(idx, -4, 3), axis=1), np.nan)
    np.testing.assert_array_equal(np.asarray(got), want.astype(np.float32))
    clamped = np.where(idx < 0, np.maximum(idx + 4, 0), np.minimum(idx, 3))
    assert_same(jnp.take_along_axis(xn, idx, axis=1, mode="clip"),
                np.take_along_axis(xn, clamped, axis=1))
    filled = jnp.take_along_axis(xn.astype(np.int32), idx, axis=1, fill_value=-1)
    np.testing.assert_array_equal(filled, np.where(valid, want, -1).astype(np.int32))
