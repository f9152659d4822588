"""Pinned regressions from the JAX-parity audit of API.md §1, §2 and §8, checked without JAX.

Each test writes out the expected semantics (JAX's, where they differ from NumPy) with a NumPy
oracle, finite differences or explicit values; `tests/test_jax_parity_audit_numpy.py` checks
the same cases against JAX itself where it is installed.
"""

from __future__ import annotations

import numpy as np
import pytest

import fnbrrr
import fnbrrr.numpy as jnp

# --------------------------------------------------------------------------------------------
# Gathers at out-of-range indices: the value is the clamped element, but the gradient is
# dropped (JAX's x[idx], take, take_along_axis and at[].get), except with mode="clip".

OOB = np.array([5, -7, 1])  # on 3 elements: 5 clamps to 2, -7 (-4 after wrapping) to 0


def _traced_getitem(v):
    return fnbrrr.jit(lambda a, i: a[i])(v, OOB)


GATHERS = {  # name: (function of x = [0, 1, 2], its value, the gradient of its sum)
    "getitem": (lambda v: v[OOB], [2.0, 0.0, 1.0], [0.0, 1.0, 0.0]),
    "getitem_traced_index": (_traced_getitem, [2.0, 0.0, 1.0], [0.0, 1.0, 0.0]),
    "take_fill": (lambda v: jnp.take(v, OOB, fill_value=-1.0), [-1.0, -1.0, 1.0],
                  [0.0, 1.0, 0.0]),
    "take_clip": (lambda v: jnp.take(v, OOB, mode="clip"), [2.0, 0.0, 1.0], [1.0, 1.0, 1.0]),
    "take_wrap": (lambda v: jnp.take(v, OOB, mode="wrap"), [2.0, 2.0, 1.0], [0.0, 1.0, 2.0]),
    "at_get": (lambda v: v.at[OOB].get(), [2.0, 0.0, 1.0], [0.0, 1.0, 0.0]),
    "at_get_clip": (lambda v: v.at[OOB].get(mode="clip"), [2.0, 0.0, 1.0], [1.0, 1.0, 1.0]),
    "take_along_axis_in_bounds": (
        lambda v: jnp.take_along_axis(v, OOB, axis=0, mode="promise_in_bounds"),
        [2.0, 0.0, 1.0], [0.0, 1.0, 0.0]),
    "take_along_axis_clip": (lambda v: jnp.take_along_axis(v, OOB, axis=0, mode="clip"),
                             [2.0, 0.0, 1.0], [1.0, 1.0, 1.0]),
}


@pytest.mark.parametrize("wrap", ["eager", "jit"])
@pytest.mark.parametrize("name", list(GATHERS))
def test_out_of_range_gather_value_is_clamped_and_gradient_dropped_unless_clip(name, wrap):
    fn, value, gradient = GATHERS[name]
    x = jnp.arange(3.0)
    grad_fn = fnbrrr.grad(lambda v: jnp.sum(fn(v)))
    if wrap == "jit":
        fn, grad_fn = fnbrrr.jit(fn), fnbrrr.jit(grad_fn)
    np.testing.assert_array_equal(np.asarray(fn(x)), value)
    np.testing.assert_array_equal(np.asarray(grad_fn(x)), gradient)


def test_out_of_range_gather_gradient_under_vmap_and_jacrev():
    x = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    idx = np.array([[5, 0], [1, -9], [2, 2]])
    grads = fnbrrr.vmap(fnbrrr.grad(lambda row, i: jnp.sum(row[i])))(jnp.asarray(x), idx)
    expected = np.zeros((3, 4), np.float32)
    for r, (a, b) in enumerate(idx):
        for i in (a, b):
            i = i + 4 if i < 0 else i
            if 0 <= i < 4:
                expected[r, i] += 1.0
    np.testing.assert_array_equal(np.asarray(grads), expected)
    jac = fnbrrr.jacrev(lambda v: v[np.array([5, 1])])(jnp.arange(3.0))
    np.testing.assert_array_equal(np.asarray(jac), [[0, 0, 0], [0, 1, 0]])
    # Forward mode differentiates the clamped value, as JAX's jvp does.
    _, tangent = fnbrrr.jvp(lambda v: v[np.array([5, 1])], (jnp.arange(3.0),),
                            (jnp.array([1.0, 2.0, 3.0]),))
    np.testing.assert_array_equal(np.asarray(tangent), [3.0, 2.0])
