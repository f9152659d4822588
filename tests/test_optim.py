"""Tests of fnbrrr.optim: every optimiser and transformation against a hand-written NumPy
update over several steps, schedules against their formulas (also as learning rates inside
optimisers), the states as pytrees of arrays, and jit(update) against the eager update.
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnbrrr
import fnbrrr.numpy as jnp
from fnbrrr import optim
from fnbrrr.tree_util import tree_leaves, tree_map

STEPS = 5


def _problem(seed: int = 0):
    """Parameters (a dict pytree) and a sequence of gradients, as float32 NumPy arrays."""
    rng = np.random.default_rng(seed)
    params = {"w": rng.standard_normal((3, 2)).astype(np.float32),
              "b": rng.standard_normal(2).astype(np.float32)}
    grads = [{k: (rng.standard_normal(v.shape) * 2).astype(np.float32) for k, v in params.items()}
             for _ in range(STEPS)]
    return params, grads


def _run(opt: optim.GradientTransformation, params, grads, update=None):
    """Run `opt` over the gradients; returns the list of (updates, params) after each step."""
    update = update or opt.update
    state = opt.init(tree_map(jnp.asarray, params))
    current = tree_map(jnp.asarray, params)
    history = []
    for g in grads:
        updates, state = update(tree_map(jnp.asarray, g), state, current)
        current = optim.apply_updates(current, updates)
        history.append((updates, current))
    return history, state


def _reference_run(step, params, grads):
    """Run a NumPy reference `step(g, p, slots, t) -> update` (t counts from 1) per leaf."""
    history = []
    current = {k: v.astype(np.float64) for k, v in params.items()}
    slots = {k: {} for k in params}
    for t, g in enumerate(grads, start=1):
        updates = {k: step(g[k].astype(np.float64), current[k], slots[k], t) for k in params}
        current = {k: current[k] + updates[k] for k in params}
        history.append((updates, current))
    return history


def _assert_matches(history, reference, rtol=1e-5, atol=1e-6):
    for step, ((updates, params), (ref_updates, ref_params)) in enumerate(zip(history, reference)):
        for k in ref_params:
            np.testing.assert_allclose(np.asarray(updates[k]), ref_updates[k], rtol=rtol,
                                       atol=atol, err_msg=f"updates[{k}] at step {step}")
            # Parameters are float32: an update's own float32 rounding error is relative to
            # the update, so the parameters' absolute tolerance scales with the update size.
            scale = float(np.max(np.abs(ref_updates[k]), initial=0.0))
            np.testing.assert_allclose(np.asarray(params[k]), ref_params[k], rtol=rtol,
                                       atol=max(atol, rtol * scale * 10),
                                       err_msg=f"params[{k}] at step {step}")


# --------------------------------------------------------------------------------------------
# NumPy references (the update of one leaf at step t)
# --------------------------------------------------------------------------------------------


def sgd_ref(lr, momentum=None, nesterov=False):
    def step(g, p, s, t):
        if momentum is None:
            return -lr * g
        s["trace"] = g + momentum * s.get("trace", 0.0)
        return -lr * (g + momentum * s["trace"] if nesterov else s["trace"])

    return step


def adam_ref(lr, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, weight_decay=0.0):
    def step(g, p, s, t):
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        m_hat, v_hat = s["m"] / (1 - b1**t), s["v"] / (1 - b2**t)
        return -lr * (m_hat / (np.sqrt(v_hat + eps_root) + eps) + weight_decay * p)

    return step


def rmsprop_ref(lr, decay=0.9, eps=1e-8, centered=False, momentum=None, initial_scale=0.0):
    def step(g, p, s, t):
        s["v"] = decay * s.get("v", initial_scale) + (1 - decay) * g * g
        denominator = s["v"] + eps
        if centered:
            s["m"] = decay * s.get("m", 0.0) + (1 - decay) * g
            denominator = denominator - s["m"] ** 2
        u = -lr * g / np.sqrt(denominator)
        if momentum is not None:
            s["trace"] = u + momentum * s.get("trace", 0.0)
            u = s["trace"]
        return u

    return step


CASES = {
    "sgd": (lambda: optim.sgd(0.1), sgd_ref(0.1)),
    "sgd_momentum": (lambda: optim.sgd(0.1, momentum=0.9), sgd_ref(0.1, 0.9)),
    "sgd_nesterov": (lambda: optim.sgd(0.05, momentum=0.8, nesterov=True),
                     sgd_ref(0.05, 0.8, True)),
    "adam": (lambda: optim.adam(0.01), adam_ref(0.01)),
    "adam_hyper": (lambda: optim.adam(0.3, b1=0.5, b2=0.7, eps=1e-3, eps_root=1e-4),
                   adam_ref(0.3, 0.5, 0.7, 1e-3, 1e-4)),
    "adamw": (lambda: optim.adamw(0.01, weight_decay=0.1),
              adam_ref(0.01, weight_decay=0.1)),
    "rmsprop": (lambda: optim.rmsprop(0.01), rmsprop_ref(0.01)),
    "rmsprop_centered_momentum": (
        lambda: optim.rmsprop(0.01, decay=0.8, centered=True, momentum=0.9, initial_scale=1.0),
        rmsprop_ref(0.01, 0.8, centered=True, momentum=0.9, initial_scale=1.0)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_optimiser_matches_numpy_reference_over_several_steps(name):
    make, reference = CASES[name]
    params, grads = _problem()
    history, _ = _run(make(), params, grads)
    _assert_matches(history, _reference_run(reference, params, grads))


@settings(max_examples=10, deadline=None)
@given(st.floats(1e-4, 1.0), st.floats(0.0, 0.99), st.floats(0.5, 0.9999),
       st.floats(1e-8, 1e-2), st.integers(0, 2**31))
def test_adam_matches_reference_for_any_hyperparameters(lr, b1, b2, eps, seed):
    params, grads = _problem(seed)
    history, _ = _run(optim.adam(lr, b1=b1, b2=b2, eps=eps), params, grads)
    # float32 computes the bias correction 1 - b2**t with a relative error up to
    # 6e-8 / (1 - b2), about 6e-4 for b2 = 0.9999 (optax has the same); hence the tolerance.
    _assert_matches(history, _reference_run(adam_ref(lr, b1, b2, eps), params, grads),
                    rtol=1e-3, atol=1e-3 * lr)


def test_adamw_mask_exempts_leaves_from_decay():
    params, grads = _problem(1)
    mask = {"w": True, "b": False}
    history, _ = _run(optim.adamw(0.01, weight_decay=0.5, mask=mask), params, grads)
    with_decay = _reference_run(adam_ref(0.01, weight_decay=0.5), params, grads)
    without = _reference_run(adam_ref(0.01), params, grads)
    for (updates, _), (ref_w, _), (ref_b, _) in zip(history, with_decay, without):
        np.testing.assert_allclose(np.asarray(updates["w"]), ref_w["w"], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(np.asarray(updates["b"]), ref_b["b"], rtol=1e-5, atol=1e-7)
    history_fn, _ = _run(optim.adamw(0.01, weight_decay=0.5, mask=lambda p: mask), params, grads)
    np.testing.assert_allclose(np.asarray(history_fn[-1][1]["w"]), np.asarray(history[-1][1]["w"]))


# --------------------------------------------------------------------------------------------
# Clipping, scaling, decay, chain
# --------------------------------------------------------------------------------------------


def test_clip_by_global_norm():
    clip = optim.clip_by_global_norm(1.0)
    state = clip.init(None)
    big = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([[4.0]])}
    clipped, _ = clip.update(big, state)
    np.testing.assert_allclose(np.asarray(clipped["a"]), [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(clipped["b"]), [[0.8]], rtol=1e-6)
    assert abs(float(optim.global_norm(clipped)) - 1.0) < 1e-6
    small = {"a": jnp.array([0.3, 0.0]), "b": jnp.array([[0.4]])}
    unchanged, _ = clip.update(small, state)
    np.testing.assert_array_equal(np.asarray(unchanged["a"]), np.asarray(small["a"]))
    zeros, _ = clip.update({"a": jnp.zeros(2)}, state)
    assert np.all(np.asarray(zeros["a"]) == 0)
    grad = fnbrrr.grad(lambda g: jnp.sum(clip.update({"a": g}, state)[0]["a"]))(jnp.zeros(2))
    assert np.all(np.isfinite(np.asarray(grad)))  # no 0/0 in the unused branch


def test_chain_applies_transforms_in_order():
    params, grads = _problem(2)
    opt = optim.chain(optim.clip_by_global_norm(0.5), optim.trace(0.9), optim.scale(-0.1))

    history, state = _run(opt, params, grads)
    assert isinstance(state, tuple) and len(state) == 3
    trace = {k: np.zeros_like(v, np.float64) for k, v in params.items()}
    for (updates, _), g in zip(history, grads):
        norm = math.sqrt(sum(float(np.sum(np.square(v.astype(np.float64)))) for v in g.values()))
        factor = min(1.0, 0.5 / norm)
        for k in g:
            trace[k] = g[k] * factor + 0.9 * trace[k]
            np.testing.assert_allclose(np.asarray(updates[k]), -0.1 * trace[k], rtol=1e-5,
                                       atol=1e-7)
    with pytest.raises(ValueError, match="state"):
        opt.update(grads[0], state[:2])


def test_stateless_transformations():
    g = {"w": jnp.array([-3.0, 0.5, 2.0])}
    np.testing.assert_allclose(np.asarray(optim.clip(1.0).update(g, None)[0]["w"]),
                               [-1.0, 0.5, 1.0])
    np.testing.assert_allclose(np.asarray(optim.scale(3.0).update(g, None)[0]["w"]),
                               [-9.0, 1.5, 6.0])
    decay = optim.add_decayed_weights(0.1)
    out, _ = decay.update(g, decay.init(None), {"w": jnp.array([10.0, 0.0, -10.0])})
    np.testing.assert_allclose(np.asarray(out["w"]), [-2.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="parameters"):
        decay.update(g, decay.init(None))
    assert optim.identity().update(g, optim.identity().init(None))[0] is g


def test_apply_updates_keeps_dtypes_and_structure():
    params = {"a": jnp.ones(2, jnp.float16), "b": (jnp.ones(3), None)}
    updates = {"a": jnp.full(2, 0.5, jnp.float32), "b": (jnp.full(3, -1.0), None)}
    out = optim.apply_updates(params, updates)
    assert out["a"].dtype == np.float16 and out["b"][1] is None
    np.testing.assert_allclose(np.asarray(out["b"][0]), 0.0)


# --------------------------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------------------------


def _values(schedule, steps):
    return np.array([float(schedule(jnp.int32(t))) for t in steps])


STEPS_GRID = [0, 1, 2, 5, 9, 10, 11, 50, 99, 100, 150]


def test_schedules_match_their_formulas():
    t = np.array(STEPS_GRID, np.float64)
    np.testing.assert_allclose(_values(optim.constant_schedule(0.3), STEPS_GRID), 0.3)
    np.testing.assert_allclose(_values(optim.linear_schedule(1.0, 0.1, 100, 10), STEPS_GRID),
                               1.0 + (0.1 - 1.0) * np.clip(t - 10, 0, 100) / 100, rtol=1e-6)
    np.testing.assert_allclose(
        _values(optim.polynomial_schedule(2.0, 0.0, 2, 100), STEPS_GRID),
        2.0 * (1 - np.clip(t, 0, 100) / 100) ** 2, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        _values(optim.exponential_decay(1.0, 10, 0.5), STEPS_GRID), 0.5 ** (t / 10), rtol=1e-5)
    np.testing.assert_allclose(
        _values(optim.exponential_decay(1.0, 10, 0.5, staircase=True, end_value=0.01),
                STEPS_GRID), np.maximum(0.5 ** np.floor(t / 10), 0.01), rtol=1e-5)
    np.testing.assert_allclose(
        _values(optim.exponential_decay(1.0, 10, 0.5, transition_begin=5), STEPS_GRID),
        np.where(t <= 5, 1.0, 0.5 ** ((t - 5) / 10)), rtol=1e-5)
    np.testing.assert_allclose(
        _values(optim.cosine_decay_schedule(1.0, 100, alpha=0.1), STEPS_GRID),
        0.9 * 0.5 * (1 + np.cos(np.pi * np.minimum(t, 100) / 100)) + 0.1, rtol=1e-5, atol=1e-7)
    warm = _values(optim.warmup_cosine_decay_schedule(0.0, 1.0, 10, 110, end_value=0.1),
                   STEPS_GRID)
    expected = np.where(t < 10, t / 10, 0.1 + 0.9 * 0.5 * (
        1 + np.cos(np.pi * np.clip(t - 10, 0, 100) / 100)))
    np.testing.assert_allclose(warm, expected, rtol=1e-5, atol=1e-7)
    piecewise = optim.piecewise_constant_schedule(1.0, {10: 0.5, 100: 0.1})
    np.testing.assert_allclose(_values(piecewise, STEPS_GRID),
                               np.where(t < 10, 1.0, np.where(t < 100, 0.5, 0.05)), rtol=1e-6)
    with pytest.raises(ValueError):
        optim.cosine_decay_schedule(1.0, 0)


@pytest.mark.parametrize("make", [lambda lr: optim.sgd(lr), lambda lr: optim.adam(lr),
                                  lambda lr: optim.rmsprop(lr)])
def test_schedules_are_accepted_as_learning_rates(make):
    schedule = optim.exponential_decay(0.1, 1, 0.5)
    params, grads = _problem(3)
    history, state = _run(make(schedule), params, grads)
    constant_runs = []
    for t in range(STEPS):  # step t uses the learning rate schedule(t)
        h, _ = _run(make(0.1 * 0.5**t), params, grads[: t + 1])
        constant_runs.append(h[-1][0])
    for t in range(STEPS):
        # the state evolves the same way for any learning rate (sgd, adam, rmsprop have no
        # state downstream of the learning rate), so the updates differ only by the rate
        for k in params:
            np.testing.assert_allclose(np.asarray(history[t][0][k]),
                                       np.asarray(constant_runs[t][k]), rtol=1e-5, atol=1e-7)
    counts = [leaf for leaf in tree_leaves(state) if leaf.dtype == np.int32]
    assert counts and int(counts[-1]) == STEPS


def test_step_count_is_an_int32_array_that_saturates():
    opt = optim.adam(0.1)
    state = opt.init({"w": jnp.zeros(2)})
    assert state[0].count.dtype == np.int32 and int(state[0].count) == 0
    _, state = opt.update({"w": jnp.ones(2)}, state)
    assert int(state[0].count) == 1
    full = state[0]._replace(count=jnp.int32(np.iinfo(np.int32).max))
    _, (after, _) = opt.update({"w": jnp.ones(2)}, (full, state[1]))
    assert int(after.count) == np.iinfo(np.int32).max


# --------------------------------------------------------------------------------------------
# States are pytrees; jit(update) equals the eager update; optimisers optimise
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_state_is_a_pytree_of_arrays(name):
    opt = CASES[name][0]()
    params, grads = _problem()
    state = opt.init(tree_map(jnp.asarray, params))
    leaves = tree_leaves(state)
    assert all(isinstance(leaf, fnbrrr.Array) for leaf in leaves)
    _, new_state = opt.update(tree_map(jnp.asarray, grads[0]), state,
                              tree_map(jnp.asarray, params))
    assert fnbrrr.tree_util.tree_structure(new_state) == fnbrrr.tree_util.tree_structure(state)


JIT_CASES = {
    "sgd_nesterov": CASES["sgd_nesterov"][0],
    "adamw": CASES["adamw"][0],
    "rmsprop_centered_momentum": CASES["rmsprop_centered_momentum"][0],
    "chain_clip_adam_schedule": lambda: optim.chain(
        optim.clip_by_global_norm(1.0),
        optim.adam(optim.warmup_cosine_decay_schedule(0.0, 0.1, 2, 10))),
}


@pytest.mark.parametrize("name", sorted(JIT_CASES))
def test_jit_update_equals_eager_update(name):
    opt = JIT_CASES[name]()
    params, grads = _problem(4)
    eager, eager_state = _run(opt, params, grads[:3])
    jitted, jit_state = _run(opt, params, grads[:3], update=fnbrrr.jit(opt.update))
    for (u1, p1), (u2, p2) in zip(eager, jitted):
        for a, b in zip(tree_leaves((u1, p1)), tree_leaves((u2, p2))):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-7)
    for a, b in zip(tree_leaves(eager_state), tree_leaves(jit_state)):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("make", [lambda: optim.sgd(0.1, momentum=0.9), lambda: optim.adam(0.1),
                                  lambda: optim.rmsprop(0.05), lambda: optim.adamw(0.1)])
def test_optimisers_minimise_a_quadratic(make):
    target = jnp.array([1.0, -2.0, 3.0])

    def loss(p):
        return jnp.sum((p["x"] - target) ** 2)

    opt = make()
    params = {"x": jnp.zeros(3)}
    state = opt.init(params)
    for _ in range(150):
        updates, state = opt.update(fnbrrr.grad(loss)(params), state, params)
        params = optim.apply_updates(params, updates)
    assert float(loss(params)) < 0.05


def test_docstring_examples():
    result = doctest.testmod(optim, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
