"""How compiled kernels receive their operands: values the fusion planner keeps virtual (remaps
such as broadcasts, reshapes and transposes) must be written to memory before a kernel that
reads memory (BLAS, a gather) runs."""

from __future__ import annotations

import numpy as np
import pytest

import fnbrrr
import fnbrrr.numpy as jnp

RNG = np.random.default_rng(7)


def _rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("batch", [1, 3])
def test_broadcast_operand_of_a_batched_matmul_is_materialised(batch):
    """(5,27) @ (batch,27,36): the (5,27) side is broadcast over the batch; BLAS reads it."""
    w, p = _rand(5, 27), _rand(batch, 27, 36)

    def f(w, p):
        return jnp.matmul(jnp.reshape(w * 2.0, (5, 27)), p)

    np.testing.assert_allclose(np.asarray(fnbrrr.jit(f)(w, p)), np.matmul(w * 2.0, p),
                               rtol=1e-5, atol=1e-5)


def test_transposed_and_sliced_operands_of_matmuls_inside_a_larger_program():
    x, w1, w2 = _rand(4, 1, 10, 10), _rand(3, 1, 3, 3), _rand(5, 3, 3, 3)

    def conv(x, w):  # a 3x3 VALID convolution as shifted slices and one batched matmul
        b, c, h, wd = x.shape
        patches = jnp.stack([x[:, :, i:i + h - 2, j:j + wd - 2] for i in range(3)
                             for j in range(3)], axis=2)
        patches = jnp.reshape(patches, (b, c * 9, (h - 2) * (wd - 2)))
        out = jnp.matmul(jnp.reshape(w, (w.shape[0], c * 9)), patches)
        return jnp.reshape(out, (b, w.shape[0], h - 2, wd - 2))

    def loss(x, w1, w2):
        return jnp.sum(jnp.tanh(conv(jnp.maximum(conv(x, w1), 0.0), w2)) ** 2)

    eager = fnbrrr.value_and_grad(loss, argnums=(1, 2))(x, w1, w2)
    jitted = fnbrrr.jit(fnbrrr.value_and_grad(loss, argnums=(1, 2)))(x, w1, w2)
    np.testing.assert_allclose(float(jitted[0]), float(eager[0]), rtol=1e-5)
    for a, b in zip(jitted[1], eager[1]):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_concatenate_and_dynamic_slices_copy_with_loops_not_slice_assignments(axis):
    """Numba compiles each slice assignment for ~0.4 s: copies are emitted as loops."""
    from fnbrrr import lax

    a, b = _rand(2, 3, 4), _rand(2, 3, 4) + 10.0

    def f(a, b, i):
        both = jnp.concatenate([a, b * 2.0, a], axis=axis)
        window = lax.dynamic_slice(both, (i, 0, 1), (2, 2, 2))
        return both, lax.dynamic_update_slice(both, -window, (0, i, 1))

    jitted = fnbrrr.jit(f)
    for i in (0, 1, 7):  # 7 is clamped, as in JAX
        for got, want in zip(jitted(a, b, i), f(a, b, i)):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    both = np.concatenate([a, b * 2.0, a], axis=axis)
    np.testing.assert_array_equal(np.asarray(jitted(a, b, 0)[0]), both)
    source = jitted.lower(a, b, 0).as_text()
    code = [line.split("#")[0] for line in source.splitlines()]
    targets = [line.split("=")[0] for line in code if "=" in line]
    assert not [t for t in targets if "[" in t and ":" in t]
    assert "dynamic_update_slice" in source and "concatenate" in source
