"""Parameter initialisers (`fnbrrr.nn.initializers`, JAX's `jax.nn.initializers`).

An initialiser is a function `init(key, shape, dtype=float32) -> array`. `zeros` and `ones`
are initialisers themselves; the others are factories that take their hyper-parameters and
return one (`normal(stddev=0.1)(key, (3, 4))`).

The variance-scaling family (`glorot_*`, `he_*`, `lecun_*`) reads the fan-in and fan-out of a
weight from its shape: `shape[in_axis]` and `shape[out_axis]` (by default the last two axes,
as for a `(in, out)` dense kernel or an `HWIO` convolution kernel), each multiplied by the
receptive field (the product of the other, non-batch axes). For `OIHW` convolution kernels pass
`in_axis=1, out_axis=0`.

Example:
    >>> import fnbrrr.random as random
    >>> w = glorot_uniform()(random.PRNGKey(0), (784, 128))
    >>> w.shape, w.dtype
    ((784, 128), dtype('float32'))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fnbrrr import core, random
from fnbrrr import numpy as jnp

Array = core.Array
Initializer = Callable[..., Array]
DTypeLike = Any
Axes = int | Sequence[int]

__all__ = [
    "constant", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "kaiming_normal",
    "kaiming_uniform", "lecun_normal", "lecun_uniform", "normal", "ones", "truncated_normal",
    "uniform", "variance_scaling", "xavier_normal", "xavier_uniform", "zeros",
]

# The standard deviation of a standard normal truncated to [-2, 2].
_TRUNCATED_STDDEV = 0.87962566103423978


def _shape(shape) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)


def zeros(key: Array | None = None, shape: Sequence[int] | None = None,
          dtype: DTypeLike = float) -> Array | Initializer:
    """An initialiser: an array of zeros (the key is unused).

    Called with no arguments it returns itself, so `zeros()` works like the factories.

    Example:
      >>> zeros(None, (2,))
      Array([0., 0.], dtype=float32)
    """
    if key is None and shape is None:
        return zeros
    return jnp.zeros(_shape(shape), dtype)


def ones(key: Array | None = None, shape: Sequence[int] | None = None,
         dtype: DTypeLike = float) -> Array | Initializer:
    """An initialiser: an array of ones (the key is unused); `ones()` returns itself.

    Example:
      >>> ones(None, (2,))
      Array([1., 1.], dtype=float32)
    """
    if key is None and shape is None:
        return ones
    return jnp.ones(_shape(shape), dtype)


def constant(value: Any, dtype: DTypeLike = float) -> Initializer:
    """An initialiser that fills with `value`.

    Example:
      >>> constant(0.5)(None, (2,))
      Array([0.5, 0.5], dtype=float32)
    """

    def init(key: Array | None, shape: Sequence[int], dtype: DTypeLike = dtype) -> Array:
        return jnp.full(_shape(shape), value, dtype)

    return init


def normal(stddev: float = 1e-2, dtype: DTypeLike = float) -> Initializer:
    """An initialiser drawing from N(0, stddev**2).

    Example:
      >>> normal(1.0)(random.PRNGKey(0), (3,)).shape
      (3,)
    """

    def init(key: Array, shape: Sequence[int], dtype: DTypeLike = dtype) -> Array:
        return random.normal(key, _shape(shape), dtype) * stddev

    return init


def uniform(scale: float = 1e-2, dtype: DTypeLike = float) -> Initializer:
    """An initialiser drawing uniformly from [0, scale).

    Example:
      >>> bool((uniform(1.0)(random.PRNGKey(0), (100,)) < 1).all())
      True
    """

    def init(key: Array, shape: Sequence[int], dtype: DTypeLike = dtype) -> Array:
        return random.uniform(key, _shape(shape), dtype) * scale

    return init


def truncated_normal(stddev: float = 1e-2, dtype: DTypeLike = float,
                     lower: float = -2.0, upper: float = 2.0) -> Initializer:
    """An initialiser drawing `stddev * z`, z standard normal truncated to [lower, upper].

    (`stddev` scales the underlying normal; the samples' own deviation is smaller.)

    Example:
      >>> bool((abs(truncated_normal(1.0)(random.PRNGKey(0), (100,))) <= 2).all())
      True
    """

    def init(key: Array, shape: Sequence[int], dtype: DTypeLike = dtype) -> Array:
        return random.truncated_normal(key, lower, upper, _shape(shape), dtype) * stddev

    return init


def _axis_size(shape: tuple, axes: Axes) -> int:
    if isinstance(axes, (int, np.integer)):
        return shape[axes]
    return math.prod(shape[a] for a in axes)


def compute_fans(shape: Sequence[int], in_axis: Axes = -2, out_axis: Axes = -1,
                 batch_axis: Axes = ()) -> tuple[float, float]:
    """(fan_in, fan_out) of a weight of `shape`: the in/out sizes times the receptive field.

    Example:
      >>> compute_fans((3, 3, 16, 32))   # an HWIO convolution kernel
      (144.0, 288.0)
    """
    shape = _shape(shape)
    if len(shape) < 2:
        raise ValueError(
            f"variance scaling: cannot compute the fan-in and fan-out of a {len(shape)}-"
            f"dimensional weight of shape {shape}; the weight must be at least 2-D (use "
            "`normal`, `zeros`... for biases)")
    in_size, out_size = _axis_size(shape, in_axis), _axis_size(shape, out_axis)
    batch_size = _axis_size(shape, batch_axis)
    receptive_field = math.prod(shape) / in_size / out_size / batch_size
    return in_size * receptive_field, out_size * receptive_field


_MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
_DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")


def variance_scaling(scale: float, mode: str, distribution: str, in_axis: Axes = -2,
                     out_axis: Axes = -1, batch_axis: Axes = (),
                     dtype: DTypeLike = float) -> Initializer:
    """An initialiser with variance `scale / n`, n the fan selected by `mode`.

    Args:
      scale: the variance numerator (1 for LeCun/Glorot, 2 for He).
      mode: "fan_in", "fan_out", "fan_avg" (their mean) or "fan_geo_avg" (geometric mean).
      distribution: "truncated_normal" (to ±2 standard deviations, rescaled to keep the
        variance), "normal", or "uniform" (on ±sqrt(3 * variance)).
      in_axis, out_axis, batch_axis: which axes of the shape are inputs, outputs and batch.
      dtype: the default dtype of the initialiser.

    Example:
      >>> w = variance_scaling(2.0, "fan_in", "normal")(random.PRNGKey(0), (1000, 100))
      >>> abs(float(w.var()) - 2 / 1000) < 2e-4
      True
    """
    if mode not in _MODES:
        raise ValueError(f"variance_scaling: mode must be one of {_MODES}, got {mode!r}")
    if distribution not in _DISTRIBUTIONS:
        raise ValueError(f"variance_scaling: distribution must be one of {_DISTRIBUTIONS}, "
                         f"got {distribution!r}")

    def init(key: Array, shape: Sequence[int], dtype: DTypeLike = dtype) -> Array:
        shape = _shape(shape)
        if math.prod(shape) == 0:
            return jnp.zeros(shape, dtype)
        fan_in, fan_out = compute_fans(shape, in_axis, out_axis, batch_axis)
        denominator = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2,
                       "fan_geo_avg": math.sqrt(fan_in * fan_out)}[mode]
        variance = scale / denominator
        if distribution == "truncated_normal":
            stddev = math.sqrt(variance) / _TRUNCATED_STDDEV
            return random.truncated_normal(key, -2.0, 2.0, shape, dtype) * stddev
        if distribution == "normal":
            return random.normal(key, shape, dtype) * math.sqrt(variance)
        limit = math.sqrt(3 * variance)
        return random.uniform(key, shape, dtype, -limit, limit)

    return init


def _scaling(scale: float, mode: str, distribution: str, name: str, doc: str):
    def factory(in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (),
                dtype: DTypeLike = float) -> Initializer:
        return variance_scaling(scale, mode, distribution, in_axis, out_axis, batch_axis, dtype)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = (
        f"{doc}: `variance_scaling({scale}, {mode!r}, {distribution!r})`.\n\n"
        "    Args:\n"
        "      in_axis, out_axis, batch_axis: the weight's input, output and batch axes.\n"
        "      dtype: the default dtype of the returned initialiser.\n\n"
        "    Returns:\n"
        "      An initialiser `init(key, shape, dtype)`.\n\n"
        "    Example:\n"
        f"      >>> {name}()(random.PRNGKey(0), (64, 32)).shape\n"
        "      (64, 32)\n"
    )
    return factory


glorot_uniform = _scaling(1.0, "fan_avg", "uniform", "glorot_uniform",
                          "Glorot/Xavier uniform (Glorot and Bengio 2010)")
glorot_normal = _scaling(1.0, "fan_avg", "truncated_normal", "glorot_normal",
                         "Glorot/Xavier normal")
lecun_uniform = _scaling(1.0, "fan_in", "uniform", "lecun_uniform", "LeCun uniform")
lecun_normal = _scaling(1.0, "fan_in", "truncated_normal", "lecun_normal", "LeCun normal")
he_uniform = _scaling(2.0, "fan_in", "uniform", "he_uniform", "He/Kaiming uniform (He et al. 2015)")
he_normal = _scaling(2.0, "fan_in", "truncated_normal", "he_normal", "He/Kaiming normal")
xavier_uniform, xavier_normal = glorot_uniform, glorot_normal
kaiming_uniform, kaiming_normal = he_uniform, he_normal
