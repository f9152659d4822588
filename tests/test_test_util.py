"""Tests of fnbrrr/test_util.py: the helpers for testing derivatives and derivative rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import close, f32

import fnbrrr.numpy as jnp
from fnbrrr import core
from fnbrrr.custom_derivatives import custom_jvp
from fnbrrr.test_util import check_grads, jvp_of_primitive, numerical_jvp, vjp_of_primitive

# --------------------------------------------------------------------------------------------
# Helpers for rule writers
# --------------------------------------------------------------------------------------------


def test_primitive_helpers():
    sin_p = core.primitives["sin"]
    out, t = jvp_of_primitive(sin_p, [f32(0.5)], [f32(2.0)])
    close((out, t), (math.sin(0.5), 2 * math.cos(0.5)), rtol=1e-6)
    mul_p = core.primitives["mul"]
    cts = vjp_of_primitive(mul_p, [f32(2.0), f32(3.0)], f32(1.0))
    close(cts, [3.0, 2.0])
    num = numerical_jvp(lambda x: x * x, [f32(3.0)], [f32(1.0)], eps=1e-2)
    close(num[0], 6.0, rtol=1e-5)


def test_check_grads(x64):
    check_grads(
        lambda x, y: jnp.sin(x) * y**2, (np.array([0.3, 0.8]), np.array([1.5, -2.0])), order=2
    )

    @custom_jvp
    def wrong(x):
        return jnp.sin(x)

    wrong.defjvp(lambda p, t: (jnp.sin(p[0]), 2.0 * t[0]))
    with pytest.raises(AssertionError):
        check_grads(wrong, (np.array([0.3]),), order=1, modes=("fwd",))
