"""Neural-network layers as `(init, apply)` pairs of pure functions over pytrees.

A layer is a `Layer(init, apply)` named tuple (so `init, apply = Dense(10)` also works):

    init(key, input_shape) -> (output_shape, params)
    apply(params, x, *, key=None, deterministic=False) -> y

Why this shape, rather than objects that hold their parameters:

* **Transformations see plain data.** Parameters are dicts and tuples of arrays, so `grad`,
  `jit`, `vmap`, the optimisers of `fnbrrr.optim` and checkpointing work on them as on any
  pytree; no framework state has to be threaded through or hidden from a trace.
* **`apply` is a pure function** of parameters, input and (for stochastic layers) a key: the
  same call always gives the same result, and `jit(apply)` needs no special casing.
* **`init` infers shapes** (as in `jax.example_libraries.stax`): it receives the input shape
  and returns the output shape, so a `Sequential` is declared with output sizes only and
  every layer learns its input size from the one before. Unknown dimensions (the batch) may
  be given as -1.
* **One calling convention.** Every `apply` accepts `key` and `deterministic`, so combinators
  pass them through without knowing which layers use them (`Dropout` does).

Parameter pytrees use readable names (`{"w": ..., "b": ...}` for `Dense`) and tuples for
sequences of layers, so an optimiser state or a checkpoint can be read by eye.

Example:
    >>> import fnbrrr.random as random
    >>> model = Sequential(Dense(32), relu, Dense(10))
    >>> out_shape, params = model.init(random.PRNGKey(0), (-1, 784))
    >>> out_shape
    (-1, 10)
    >>> model.apply(params, jnp.ones((2, 784))).shape
    (2, 10)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from fnbrrr import core, random
from fnbrrr import numpy as jnp
from fnbrrr.nn import initializers
from fnbrrr.nn._activations import relu, standardize

Array = core.Array
Shape = tuple[int, ...]
Params = Any

__all__ = [
    "AvgPool2d", "Conv2d", "Dense", "Dropout", "Embedding", "Flatten", "Lambda", "Layer",
    "LayerNorm", "Linear", "MaxPool2d", "MLP", "Sequential", "serial",
]


class Layer(NamedTuple):
    """A layer: `init(key, input_shape) -> (output_shape, params)` and
    `apply(params, x, *, key=None, deterministic=False) -> y`."""

    init: Callable[[Array, Shape], tuple[Shape, Params]]
    apply: Callable[..., Array]


def _shape(shape: Sequence[int]) -> Shape:
    return tuple(int(d) for d in shape)


def _last_dim(name: str, input_shape: Shape) -> int:
    if not input_shape or input_shape[-1] < 0:
        raise ValueError(f"{name}: the last input dimension must be known, got input shape "
                         f"{input_shape}")
    return input_shape[-1]


# --------------------------------------------------------------------------------------------
# Layers with parameters
# --------------------------------------------------------------------------------------------


def Dense(features: int, use_bias: bool = True,  # noqa: N802  (a layer constructor)
          kernel_init: Callable | None = None, bias_init: Callable | None = None) -> Layer:
    """A fully connected layer: `x @ w + b` over the last axis.

    Args:
      features: the output size.
      use_bias: add a bias `b`.
      kernel_init: initialiser of `w`, shape (in_features, features); default
        `initializers.lecun_normal()`.
      bias_init: initialiser of `b`, shape (features,); default `initializers.zeros`.

    Returns:
      A `Layer` with params `{"w": w, "b": b}` (no "b" without bias).

    Example:
      >>> shape, params = Dense(3).init(random.PRNGKey(0), (2, 5))
      >>> shape, params["w"].shape
      ((2, 3), (5, 3))
    """
    features = int(features)
    kernel_init = kernel_init or initializers.lecun_normal()
    bias_init = bias_init or initializers.zeros

    def init(key: Array, input_shape: Sequence[int]) -> tuple[Shape, Params]:
        input_shape = _shape(input_shape)
        in_features = _last_dim("Dense", input_shape)
        key_w, key_b = random.split(key)
        params = {"w": kernel_init(key_w, (in_features, features))}
        if use_bias:
            params["b"] = bias_init(key_b, (features,))
        return input_shape[:-1] + (features,), params

    def apply(params: Params, x: Array, *, key: Array | None = None,
              deterministic: bool = False) -> Array:
        y = jnp.matmul(x, params["w"])
        return y + params["b"] if "b" in params else y

    return Layer(init, apply)


Linear = Dense


def MLP(features: Sequence[int], activation: Callable = relu,  # noqa: N802
        activate_final: bool = False, kernel_init: Callable | None = None,
        bias_init: Callable | None = None) -> Layer:
    """A multi-layer perceptron: Dense layers of sizes `features` with `activation` between.

    Args:
      features: the output size of each Dense layer, in order.
      activation: applied after every layer but the last (and after the last too if
        `activate_final`).
      activate_final: apply `activation` to the output.
      kernel_init, bias_init: initialisers of every layer's weights and biases (defaults as
        in `Dense`).

    Returns:
      A `Layer` whose params are a tuple of `{"w", "b"}` dicts, one per Dense layer.

    Example:
      >>> mlp = MLP([16, 16, 1])
      >>> shape, params = mlp.init(random.PRNGKey(0), (-1, 4))
      >>> shape, len(params)
      ((-1, 1), 3)
    """
    dense = [Dense(f, kernel_init=kernel_init, bias_init=bias_init) for f in features]

    def init(key: Array, input_shape: Sequence[int]) -> tuple[Shape, Params]:
        keys = random.split(key, len(dense))
        shape, params = _shape(input_shape), []
        for i, layer in enumerate(dense):
            shape, p = layer.init(keys[i], shape)
            params.append(p)
        return shape, tuple(params)

    def apply(params: Params, x: Array, *, key: Array | None = None,
              deterministic: bool = False) -> Array:
        for i, (layer, p) in enumerate(zip(dense, params)):
            x = layer.apply(p, x)
            if activate_final or i < len(dense) - 1:
                x = activation(x)
        return x

    return Layer(init, apply)


def Embedding(num_embeddings: int, features: int,  # noqa: N802
              embedding_init: Callable | None = None) -> Layer:
    """A lookup table from integer ids to vectors.

    Args:
      num_embeddings: the number of ids (rows of the table).
      features: the vector size.
      embedding_init: initialiser of the table, shape (num_embeddings, features); default
        `initializers.normal(stddev=1.0)`.

    Returns:
      A `Layer` with params `{"embedding": table}`; `apply` maps ids of shape S to vectors of
      shape S + (features,). Out-of-range ids give NaN rows (as `jnp.take`).

    Example:
      >>> shape, params = Embedding(10, 4).init(random.PRNGKey(0), (2, 3))
      >>> shape
      (2, 3, 4)
    """
    num_embeddings, features = int(num_embeddings), int(features)
    embedding_init = embedding_init or initializers.normal(stddev=1.0)

    def init(key: Array, input_shape: Sequence[int]) -> tuple[Shape, Params]:
        table = embedding_init(key, (num_embeddings, features))
        return _shape(input_shape) + (features,), {"embedding": table}

    def apply(params: Params, ids: Array, *, key: Array | None = None,
              deterministic: bool = False) -> Array:
        ids = jnp.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"Embedding: ids must be integers, got {ids.dtype.name}")
        return jnp.take(params["embedding"], ids, axis=0)

    return Layer(init, apply)


def LayerNorm(epsilon: float = 1e-5, use_scale: bool = True,  # noqa: N802
              use_bias: bool = True) -> Layer:
    """Layer normalisation over the last axis, with a learned scale and bias per feature.

    Args:
      epsilon: added to the variance before the square root.
      use_scale: multiply by a learned `scale` (initialised to 1).
      use_bias: add a learned `bias` (initialised to 0).

    Returns:
      A `Layer` with params `{"scale": ..., "bias": ...}` of shape (features,).

    Example:
      >>> shape, params = LayerNorm().init(random.PRNGKey(0), (-1, 8))
      >>> sorted(params)
      ['bias', 'scale']
    """

    def init(key: Array, input_shape: Sequence[int]) -> tuple[Shape, Params]:
        input_shape = _shape(input_shape)
        features = _last_dim("LayerNorm", input_shape)
        params = {}
        if use_scale:
            params["scale"] = jnp.ones((features,), np.float32)
        if use_bias:
            params["bias"] = jnp.zeros((features,), np.float32)
        return input_shape, params

    def apply(params: Params, x: Array, *, key: Array | None = None,
              deterministic: bool = False) -> Array:
        y = standardize(x, axis=-1, epsilon=epsilon)
        if "scale" in params:
            y = y * params["scale"]
        if "bias" in params:
            y = y + params["bias"]
        return y

    return Layer(init, apply)


# --------------------------------------------------------------------------------------------
# Layers without parameters
# --------------------------------------------------------------------------------------------


def Dropout(rate: float) -> Layer:  # noqa: N802
    """Randomly zero a fraction `rate` of the inputs in training, scaling the rest by
    1 / (1 - rate) so the expected value is unchanged.

    `apply(params, x, key=key)` drops (a key is required); `apply(params, x,
    deterministic=True)` is the identity, for evaluation.

    Args:
      rate: the drop probability, in [0, 1].

    Returns:
      A `Layer` with params `()`.

    Example:
      >>> drop = Dropout(0.5)
      >>> _, params = drop.init(random.PRNGKey(0), (4,))
      >>> drop.apply(params, jnp.ones(4), deterministic=True)
      Array([1., 1., 1., 1.], dtype=float32)
    """
    rate = float(rate)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"Dropout: rate must be in [0, 1], got {rate}")

    def init(key: Array, input_shape: Sequence[int]) -> tuple[Shape, Params]:
        return _shape(input_shape), ()

    def apply(params: Params, x: Array, *, key: Array | None = None,
              deterministic: bool = False) -> Array:
        x = jnp.asarray(x)
        if deterministic or rate == 0.0:
            return x
        if key is None:
            raise ValueError(
                "Dropout: a PRNG key is needed in training mode: call apply(params, x, "
                "key=key), or pass deterministic=True to evaluate without dropout")
        if rate == 1.0:
            return jnp.zeros_like(x)
        keep = random.bernoulli(key, 1.0 - rate, x.shape)
        return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))

    return Layer(init, apply)


def Flatten() -> Layer:  # noqa: N802
    """Flatten every axis but the first (the batch): (N, d1, d2, ...) -> (N, d1 * d2 * ...).

    Example:
      >>> Flatten().init(random.PRNGKey(0), (-1, 2, 3))[0]
      (-1, 6)
    """

    def init(key: Array, input_shape: Sequence[int]) -> tuple[Shape, Params]:
        input_shape = _shape(input_shape)
        if len(input_shape) < 1 or any(d < 0 for d in input_shape[1:]):
            raise ValueError(f"Flatten: all but the first dimension must be known, got "
                             f"{input_shape}")
        return (input_shape[0], math.prod(input_shape[1:])), ()

    def apply(params: Params, x: Array, *, key: Array | None = None,
              deterministic: bool = False) -> Array:
        x = jnp.asarray(x)
        return jnp.reshape(x, (x.shape[0], -1))

    return Layer(init, apply)


def Lambda(fn: Callable[[Array], Array]) -> Layer:  # noqa: N802
    """A layer without parameters that applies `fn` (e.g. an activation) to its input.

    `Sequential` wraps plain functions this way. The output shape is found by tracing `fn`
    on an abstract input (no computation); unknown (-1) dimensions are traced with a
    placeholder size and reported as -1 again.

    Example:
      >>> Lambda(relu).init(random.PRNGKey(0), (-1, 3))[0]
      (-1, 3)
    """

    def init(key: Array, input_shape: Sequence[int]) -> tuple[Shape, Params]:
        return _traced_output_shape(fn, _shape(input_shape)), ()

    def apply(params: Params, x: Array, *, key: Array | None = None,
              deterministic: bool = False) -> Array:
        return fn(x)

    return Layer(init, apply)


_PLACEHOLDER = 7919  # a size unlikely to arise from known dimensions (a prime)


def _traced_output_shape(fn: Callable, input_shape: Shape) -> Shape:
    concrete = tuple(_PLACEHOLDER if d < 0 else d for d in input_shape)
    jaxpr, _ = core.trace_to_jaxpr(lambda x: [fn(x)],
                                   [core.ShapedArray(concrete, np.dtype(np.float32))])
    out = jaxpr.outvars[0].aval.shape
    return tuple(-1 if d == _PLACEHOLDER else d for d in out)


# --------------------------------------------------------------------------------------------
# Combinators
# --------------------------------------------------------------------------------------------


def Sequential(*layers: Layer | Callable[[Array], Array]) -> Layer:  # noqa: N802
    """Layers applied one after another; plain functions (e.g. `nn.relu`) become `Lambda`s.

    `init` splits its key among the layers and threads the shape through them; `apply`
    splits its `key` (if given) the same way and passes `deterministic` to every layer.

    Returns:
      A `Layer` whose params are a tuple with one entry per layer (`()` for layers without
      parameters).

    Example:
      >>> model = Sequential(Dense(4), relu, Dropout(0.1), Dense(2))
      >>> shape, params = model.init(random.PRNGKey(0), (-1, 3))
      >>> model.apply(params, jnp.ones((5, 3)), deterministic=True).shape
      (5, 2)
    """
    layers = tuple(layer if isinstance(layer, Layer) else Lambda(layer) for layer in layers)

    def init(key: Array, input_shape: Sequence[int]) -> tuple[Shape, Params]:
        shape, params = _shape(input_shape), []
        keys = random.split(key, max(len(layers), 1))
        for i, layer in enumerate(layers):
            shape, p = layer.init(keys[i], shape)
            params.append(p)
        return shape, tuple(params)

    def apply(params: Params, x: Array, *, key: Array | None = None,
              deterministic: bool = False) -> Array:
        if len(params) != len(layers):
            raise ValueError(f"Sequential: got {len(params)} parameter entries for "
                             f"{len(layers)} layers; use the params from this model's init")
        keys = random.split(key, len(layers)) if key is not None and layers else None
        for i, (layer, p) in enumerate(zip(layers, params)):
            x = layer.apply(p, x, key=None if keys is None else keys[i],
                            deterministic=deterministic)
        return x

    return Layer(init, apply)


serial = Sequential

# --------------------------------------------------------------------------------------------
# Convolution and pooling (NCHW inputs, OIHW kernels)
# --------------------------------------------------------------------------------------------


def _pair(name: str, what: str, value: int | Sequence[int]) -> tuple[int, int]:
    pair = (int(value), int(value)) if np.ndim(value) == 0 else tuple(int(v) for v in value)
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"{name}: {what} must be a positive int or a pair of them, got {value!r}")
    return pair


def _nchw_channels(name: str, input_shape: Shape) -> int:
    if len(input_shape) != 4 or input_shape[1] < 0:
        raise ValueError(f"{name}: expects NCHW inputs (batch, channels, height, width) with a "
                         f"known channel count, got input shape {input_shape}")
    return input_shape[1]


def Conv2d(features: int, kernel_size: int | Sequence[int] = 3,  # noqa: N802
           strides: int | Sequence[int] = 1, padding: str | Sequence[tuple[int, int]] = "SAME",
           dilation: int | Sequence[int] = 1, use_bias: bool = True,
           kernel_init: Callable | None = None, bias_init: Callable | None = None) -> Layer:
    """A 2-D convolution of NCHW inputs with an OIHW kernel, plus a bias per output channel.

    Args:
      features: the number of output channels.
      kernel_size: the window, an int or (height, width).
      strides: the step between windows, an int or a pair.
      padding: "SAME", "VALID", or ((top, bottom), (left, right)).
      dilation: the kernel dilation (spacing of its taps), an int or a pair.
      use_bias: add a bias `b` of shape (features,).
      kernel_init: initialiser of `w`, shape (features, in_channels, kh, kw); default LeCun
        normal with the fans of an OIHW kernel (in: in_channels * kh * kw).
      bias_init: initialiser of `b`; default `initializers.zeros`.

    Returns:
      A `Layer` with params `{"w": w, "b": b}`; `apply` runs `lax.conv_general_dilated`.

    Example:
      >>> conv = Conv2d(8, kernel_size=3, strides=2)
      >>> shape, params = conv.init(random.PRNGKey(0), (-1, 1, 28, 28))
      >>> shape, params["w"].shape
      ((-1, 8, 14, 14), (8, 1, 3, 3))
    """
    from fnbrrr import lax

    features = int(features)
    window = _pair("Conv2d", "kernel_size", kernel_size)
    strides = _pair("Conv2d", "strides", strides)
    dilation = _pair("Conv2d", "dilation", dilation)
    kernel_init = kernel_init or initializers.lecun_normal(in_axis=1, out_axis=0)
    bias_init = bias_init or initializers.zeros

    def apply(params: Params, x: Array, *, key: Array | None = None,
              deterministic: bool = False) -> Array:
        y = lax.conv_general_dilated(x, params["w"], strides, padding, rhs_dilation=dilation)
        return y + params["b"][None, :, None, None] if "b" in params else y

    def init(key: Array, input_shape: Sequence[int]) -> tuple[Shape, Params]:
        input_shape = _shape(input_shape)
        channels = _nchw_channels("Conv2d", input_shape)
        key_w, key_b = random.split(key)
        params = {"w": kernel_init(key_w, (features, channels) + window)}
        if use_bias:
            params["b"] = bias_init(key_b, (features,))
        return _traced_output_shape(lambda x: apply(params, x), input_shape), params

    return Layer(init, apply)


def _pool_layer(name: str, pool: Callable, window_shape, strides, padding) -> Layer:
    window = _pair(name, "window_shape", window_shape)
    strides = window if strides is None else _pair(name, "strides", strides)
    if not isinstance(padding, str):
        padding = ((0, 0), (0, 0)) + tuple(tuple(p) for p in padding)

    def apply(params: Params, x: Array, *, key: Array | None = None,
              deterministic: bool = False) -> Array:
        return pool(jnp.asarray(x), (1, 1) + window, (1, 1) + strides, padding)

    def init(key: Array, input_shape: Sequence[int]) -> tuple[Shape, Params]:
        input_shape = _shape(input_shape)
        _nchw_channels(name, input_shape)
        return _traced_output_shape(lambda x: apply((), x), input_shape), ()

    return Layer(init, apply)


def MaxPool2d(window_shape: int | Sequence[int] = 2,  # noqa: N802
              strides: int | Sequence[int] | None = None,
              padding: str | Sequence[tuple[int, int]] = "VALID") -> Layer:
    """Max pooling over the two spatial axes of NCHW inputs (`lax.reduce_window` with max).

    Args:
      window_shape: the window, an int or (height, width).
      strides: the step between windows; default the window (non-overlapping).
      padding: "VALID", "SAME" or ((top, bottom), (left, right)); padding never wins the max.

    Returns:
      A `Layer` with params `()`.

    Example:
      >>> pool = MaxPool2d(2)
      >>> pool.apply((), jnp.arange(16.0).reshape(1, 1, 4, 4))
      Array([[[[ 5.,  7.],
               [13., 15.]]]], dtype=float32)
    """
    from fnbrrr import lax

    def max_pool(x, window, strides, padding):
        return lax.reduce_window(x, -jnp.inf, lax.max, window, strides, padding)

    return _pool_layer("MaxPool2d", max_pool, window_shape, strides, padding)


def AvgPool2d(window_shape: int | Sequence[int] = 2,  # noqa: N802
              strides: int | Sequence[int] | None = None,
              padding: str | Sequence[tuple[int, int]] = "VALID") -> Layer:
    """Average pooling over the two spatial axes of NCHW inputs (padding counts as zeros).

    Args:
      window_shape: the window, an int or (height, width).
      strides: the step between windows; default the window (non-overlapping).
      padding: "VALID", "SAME" or ((top, bottom), (left, right)).

    Returns:
      A `Layer` with params `()`.

    Example:
      >>> AvgPool2d(2).apply((), jnp.arange(16.0).reshape(1, 1, 4, 4))
      Array([[[[ 2.5,  4.5],
               [10.5, 12.5]]]], dtype=float32)
    """
    from fnbrrr import lax

    def avg_pool(x, window, strides, padding):
        sums = lax.reduce_window(x, 0.0, lax.add, window, strides, padding)
        return sums / (window[2] * window[3])

    return _pool_layer("AvgPool2d", avg_pool, window_shape, strides, padding)
