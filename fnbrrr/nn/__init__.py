"""fnbrrr.nn: activations, normalisers, losses, initialisers and layers (JAX's `jax.nn`, plus).

Everything is a pure function of arrays built from fnbrrr primitives, so it differentiates (to
any order), jits and vmaps with no rules of its own.

* Activations and normalisers (`relu`, `gelu`, `softmax`, `logsumexp`, `one_hot`, ...) follow
  `jax.nn` and stay finite, with finite gradients, for inputs of any magnitude.
* Losses (`softmax_cross_entropy`, ...) follow optax: per-example values, no reduction.
* `nn.initializers` follows `jax.nn.initializers`: `init(key, shape, dtype)` functions.
* Layers (`Dense`, `Conv2d`, `MaxPool2d`, `MLP`, `Embedding`, `LayerNorm`, `Dropout`,
  `Sequential`, ...) are `(init, apply)` pairs of pure functions over parameter pytrees;
  see `fnbrrr.nn.layers`.

Example:
    >>> import fnbrrr.numpy as jnp
    >>> import fnbrrr.nn as nn
    >>> nn.softmax(jnp.array([1000.0, 0.0]))
    Array([1., 0.], dtype=float32)
"""

from fnbrrr._prims.convolution import avg_pool, max_pool  # pooling, on lax.reduce_window
from fnbrrr.nn import initializers, layers
from fnbrrr.nn._activations import (
    celu,
    elu,
    gelu,
    glu,
    hard_sigmoid,
    hard_silu,
    hard_swish,
    hard_tanh,
    leaky_relu,
    log_sigmoid,
    log_softmax,
    logsumexp,
    one_hot,
    relu,
    relu6,
    selu,
    sigmoid,
    silu,
    soft_sign,
    softmax,
    softplus,
    standardize,
    swish,
    tanh,
)
from fnbrrr.nn._losses import (
    l2_loss,
    mean_squared_error,
    mse,
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
    softmax_cross_entropy_with_integer_labels,
    squared_error,
)
from fnbrrr.nn.layers import (
    MLP,
    AvgPool2d,
    Conv2d,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Lambda,
    Layer,
    LayerNorm,
    Linear,
    MaxPool2d,
    Sequential,
    serial,
)

__all__ = [
    "avg_pool", "max_pool", "AvgPool2d", "Conv2d", "MLP", "Dense", "Dropout", "Embedding",
    "Flatten", "Lambda", "Layer", "LayerNorm", "Linear", "MaxPool2d", "Sequential", "celu",
    "elu", "gelu", "glu", "hard_sigmoid", "hard_silu", "hard_swish", "hard_tanh", "initializers",
    "l2_loss", "layers", "leaky_relu", "log_sigmoid", "log_softmax", "logsumexp",
    "mean_squared_error", "mse", "one_hot", "relu", "relu6", "selu", "serial", "sigmoid",
    "sigmoid_binary_cross_entropy", "silu", "soft_sign", "softmax", "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels", "softplus", "squared_error", "standardize",
    "swish", "tanh",
]
