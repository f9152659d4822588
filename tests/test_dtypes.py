"""dtypes: JAX's promotion lattice, weak Python scalars, and the x64 switch."""

from __future__ import annotations

import numpy as np
import pytest

import fnbrrr
import fnbrrr.numpy as jnp
from fnbrrr import dtypes

F32, F64, I32, I64 = dtypes.float32, dtypes.float64, dtypes.int32, dtypes.int64
U8, I8, U32, B = dtypes.uint8, dtypes.int8, dtypes.uint32, dtypes.bool_


@pytest.mark.parametrize("a, b, expected", [
    ((F32, False), (F32, True), (F32, False)),  # float32 array * 2.0 stays float32
    ((I32, False), (I32, True), (I32, False)),  # int32 array * 2 stays int32
    ((I32, False), (F32, True), (F32, True)),  # int32 array * 0.5 -> weak float32
    ((I32, False), (F32, False), (F32, False)),
    ((U8, False), (I8, False), (dtypes.int16, False)),
    ((B, False), (I32, True), (I32, True)),
    ((U8, False), (I32, True), (U8, False)),  # weak ints take the array's type
    ((B, False), (F32, False), (F32, False)),
    ((dtypes.float16, False), (F32, True), (dtypes.float16, False)),
])
def test_promotion_lattice(a, b, expected):
    assert dtypes.promote_types(a, b) == expected
    assert dtypes.promote_types(b, a) == expected


def test_64_bit_types_are_canonicalised_unless_x64():
    assert dtypes.canonicalize(np.float64) == F32
    assert dtypes.canonicalize(np.int64) == I32
    assert dtypes.promote_types((U32, False), (I32, False)) == (I32, False)
    fnbrrr.config.update("jax_enable_x64", True)
    try:
        assert dtypes.canonicalize(np.float64) == F64
        assert dtypes.promote_types((U32, False), (I32, False)) == (I64, False)
        assert jnp.asarray(1.0).dtype == F64
        assert jnp.arange(3).dtype == I64
    finally:
        fnbrrr.config.update("jax_enable_x64", False)
    assert jnp.asarray(np.ones(2)).dtype == F32


def test_array_level_promotion_matches_api_md():
    f = jnp.ones(2, dtype=jnp.float32)
    i = jnp.ones(2, dtype=jnp.int32)
    assert (f * 2.0).dtype == F32 and not (f * 2.0).weak_type
    assert (i * 2).dtype == I32
    assert (i * 0.5).dtype == F32
    assert (i / 2).dtype == F32
    assert (i + f).dtype == F32
    assert jnp.sum(jnp.ones(3, dtype=jnp.bool_)).dtype == I32
    assert jnp.mean(i).dtype == F32


def test_unsupported_dtypes_raise_clearly():
    with pytest.raises(TypeError, match="not supported"):
        dtypes.canonicalize(np.complex64)


def test_small_ints_become_float32_in_inexact_functions_like_jax():
    # NumPy picks float16 for int8/uint8; JAX (the reference) picks float32.
    for dt in (np.int8, np.uint8, np.int16, np.bool_):
        x = jnp.array([1, 2], dt)
        for out in (jnp.sqrt(x), jnp.sin(x), x / x, x / 2, jnp.mean(x), jnp.var(x)):
            assert out.dtype == np.float32, (dt, out.dtype)
