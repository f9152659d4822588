"""Activation functions and normalisers of `fnbrrr.nn`, written with fnbrrr.numpy.

Every function is a composition of primitives, so it is differentiable to any order, jit-able
and vmap-able with no rules of its own. Each is written to stay finite, in value and in every
derivative, for inputs of any magnitude:

* Non-smooth points use `where`, whose derivative flows only to the selected branch, so
  `relu`'s gradient at 0 is 0 (JAX's convention) without a custom rule.
* A branch that would overflow for inputs it does not serve is evaluated at a safe input
  (the "double where"): `where(x > 0, x, expm1(where(x > 0, 0, x)))`. Otherwise the unused
  branch's infinite value would meet a zero cotangent and make a NaN gradient.
* Reductions subtract the maximum first (`softmax`, `logsumexp`); the maximum is wrapped in
  `stop_gradient` because the result does not depend on it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fnbrrr import core, lax
from fnbrrr import numpy as jnp

Array = core.Array
ArrayLike = Any
Axis = int | tuple[int, ...] | None


def _float(x: ArrayLike) -> Array:
    """`x` as an fnbrrr array of a float dtype (integers become float32)."""
    x = jnp.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Rectifiers
# --------------------------------------------------------------------------------------------


def relu(x: ArrayLike) -> Array:
    """Rectified linear unit, `max(x, 0)`, with derivative 0 at 0.

    Example:
      >>> relu(jnp.array([-1.0, 0.0, 2.0]))
      Array([0., 0., 2.], dtype=float32)
    """
    x = jnp.asarray(x)
    return jnp.where(x > 0, x, jnp.zeros_like(x))


def relu6(x: ArrayLike) -> Array:
    """`min(max(x, 0), 6)`, with derivative 0 at 0 and at 6.

    Example:
      >>> relu6(jnp.array([-1.0, 3.0, 8.0]))
      Array([0., 3., 6.], dtype=float32)
    """
    x = jnp.asarray(x)
    return jnp.where(x > 0, jnp.where(x < 6, x, jnp.full_like(x, 6)), jnp.zeros_like(x))


def leaky_relu(x: ArrayLike, negative_slope: float = 1e-2) -> Array:
    """`x` where x >= 0, `negative_slope * x` elsewhere.

    Example:
      >>> leaky_relu(jnp.array([-2.0, 3.0]), 0.5)
      Array([-1.,  3.], dtype=float32)
    """
    x = _float(x)
    return jnp.where(x >= 0, x, negative_slope * x)


def elu(x: ArrayLike, alpha: float = 1.0) -> Array:
    """Exponential linear unit: `x` where x > 0, `alpha * (exp(x) - 1)` elsewhere.

    Example:
      >>> elu(jnp.array([0.0, 1.0]))
      Array([0., 1.], dtype=float32)
    """
    x = _float(x)
    positive = x > 0
    safe = jnp.where(positive, jnp.zeros_like(x), x)
    return jnp.where(positive, x, alpha * jnp.expm1(safe))


def celu(x: ArrayLike, alpha: float = 1.0) -> Array:
    """Continuously differentiable ELU: `x` where x > 0, `alpha * expm1(x / alpha)` elsewhere.

    Example:
      >>> celu(jnp.array([2.0]))
      Array([2.], dtype=float32)
    """
    x = _float(x)
    positive = x > 0
    safe = jnp.where(positive, jnp.zeros_like(x), x)
    return jnp.where(positive, x, alpha * jnp.expm1(safe / alpha))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(x: ArrayLike) -> Array:
    """Scaled ELU (Klambauer et al. 2017): `scale * elu(x, alpha)` with the paper's constants.

    Example:
      >>> selu(jnp.array([1.0]))
      Array([1.050701], dtype=float32)
    """
    return _SELU_SCALE * elu(x, _SELU_ALPHA)


# --------------------------------------------------------------------------------------------
# Sigmoids and smooth rectifiers
# --------------------------------------------------------------------------------------------


def sigmoid(x: ArrayLike) -> Array:
    """The logistic function `1 / (1 + exp(-x))`; saturates cleanly to exactly 0 and 1.

    Example:
      >>> sigmoid(jnp.array([-1000.0, 0.0, 1000.0]))
      Array([0. , 0.5, 1. ], dtype=float32)
    """
    return lax.logistic(_float(x))


def softplus(x: ArrayLike) -> Array:
    """`log(1 + exp(x))`, computed as `x + log1p(exp(-x))` for x > 0.

    Example:
      >>> softplus(jnp.array([0.0, 1000.0]))
      Array([6.931472e-01, 1.000000e+03], dtype=float32)
    """
    x = _float(x)
    positive = x > 0
    zero = jnp.zeros_like(x)
    pos = jnp.where(positive, x, zero)
    neg = jnp.where(positive, zero, x)
    return jnp.where(positive, pos + jnp.log1p(jnp.exp(-pos)), jnp.log1p(jnp.exp(neg)))


def log_sigmoid(x: ArrayLike) -> Array:
    """`log(sigmoid(x)) = -softplus(-x)`, finite for every finite x.

    Example:
      >>> log_sigmoid(jnp.array([-1000.0]))
      Array([-1000.], dtype=float32)
    """
    return -softplus(-_float(x))


def silu(x: ArrayLike) -> Array:
    """Sigmoid linear unit (swish): `x * sigmoid(x)`.

    Example:
      >>> silu(jnp.array([0.0]))
      Array([0.], dtype=float32)
    """
    x = _float(x)
    return x * sigmoid(x)


swish = silu


def gelu(x: ArrayLike, approximate: bool = True) -> Array:
    """Gaussian error linear unit, `x * Phi(x)`.

    Args:
      x: input array.
      approximate: use the tanh approximation
        `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` (default, as JAX), else the exact
        `0.5 x (1 + erf(x / sqrt(2)))`.

    Example:
      >>> gelu(jnp.array([0.0, 1000.0]))
      Array([   0., 1000.], dtype=float32)
    """
    x = _float(x)
    # Constants of x's dtype, strongly typed: the result is too, for a Python float as in JAX.
    if approximate:
        inner = np.asarray(math.sqrt(2 / math.pi), x.dtype) * (x + 0.044715 * (x * x * x))
        return 0.5 * x * (1 + jnp.tanh(inner))
    return 0.5 * x * (1 + lax.erf(x * np.asarray(1 / math.sqrt(2), x.dtype)))


def hard_tanh(x: ArrayLike) -> Array:
    """`x` clipped to [-1, 1]: derivative 1 on [-1, 1] (corners included, as JAX), 0 outside.

    Example:
      >>> hard_tanh(jnp.array([-3.0, 0.5, 3.0]))
      Array([-1. ,  0.5,  1. ], dtype=float32)
    """
    x = _float(x)
    one = jnp.ones_like(x)
    return jnp.where(x > 1, one, jnp.where(x < -1, -one, x))


def hard_sigmoid(x: ArrayLike) -> Array:
    """Piecewise-linear sigmoid: `relu6(x + 3) / 6`.

    Example:
      >>> hard_sigmoid(jnp.array([0.0]))
      Array([0.5], dtype=float32)
    """
    return relu6(_float(x) + 3.0) / 6.0


def hard_silu(x: ArrayLike) -> Array:
    """Hard swish: `x * hard_sigmoid(x)`.

    Example:
      >>> hard_silu(jnp.array([3.0]))
      Array([3.], dtype=float32)
    """
    x = _float(x)
    return x * hard_sigmoid(x)


hard_swish = hard_silu


def soft_sign(x: ArrayLike) -> Array:
    """`x / (|x| + 1)`.

    Example:
      >>> soft_sign(jnp.array([1.0]))
      Array([0.5], dtype=float32)
    """
    x = _float(x)
    return x / (jnp.abs(x) + 1)


def tanh(x: ArrayLike) -> Array:
    """Hyperbolic tangent (the same as `fnbrrr.numpy.tanh`).

    Example:
      >>> tanh(jnp.array([0.0]))
      Array([0.], dtype=float32)
    """
    return jnp.tanh(_float(x))


def glu(x: ArrayLike, axis: int = -1) -> Array:
    """Gated linear unit: split `x` in halves `a, b` along `axis`, return `a * sigmoid(b)`.

    Example:
      >>> glu(jnp.array([2.0, 0.0]))
      Array([1.], dtype=float32)
    """
    x = _float(x)
    if x.shape[axis] % 2:
        raise ValueError(f"glu: axis {axis} of an array of shape {x.shape} must have even size")
    a, b = jnp.split(x, 2, axis=axis)
    return a * sigmoid(b)


# --------------------------------------------------------------------------------------------
# Normalisers over an axis
# --------------------------------------------------------------------------------------------


def _safe_max(x: Array, axis: Axis, where: ArrayLike | None) -> Array:
    """The maximum over `axis` (keepdims), 0 where it is not finite, with no gradient."""
    masked = x if where is None else jnp.where(where, x, -jnp.inf)
    top = jnp.max(masked, axis=axis, keepdims=True)
    return lax.stop_gradient(jnp.where(jnp.isfinite(top), top, jnp.zeros_like(top)))


def logsumexp(a: ArrayLike, axis: Axis = None, b: ArrayLike | None = None,
              keepdims: bool = False, return_sign: bool = False) -> Array | tuple[Array, Array]:
    """`log(sum(b * exp(a), axis))`, computed without overflow.

    Args:
      a: input array.
      axis: the axis or axes to reduce (None: all).
      b: optional weights, broadcast against `a`.
      keepdims: keep the reduced axes with size 1.
      return_sign: also return the sign of the sum (for weights that may be negative);
        the log is then of its absolute value.

    Returns:
      The reduced array, or `(value, sign)` with `return_sign`.

    Example:
      >>> logsumexp(jnp.array([1000.0, 1000.0])).round(2)
      Array(1000.69, dtype=float32)
    """
    a = _float(a)
    top = _safe_max(a, axis, None)
    terms = jnp.exp(a - top)
    if b is not None:
        terms = terms * jnp.asarray(b)
    total = jnp.sum(terms, axis=axis, keepdims=keepdims)
    if not keepdims:
        top = jnp.squeeze(top, axis=axis)
    if not return_sign:
        return jnp.log(total) + top
    return jnp.log(jnp.abs(total)) + top, jnp.sign(total)


def softmax(x: ArrayLike, axis: Axis = -1, where: ArrayLike | None = None) -> Array:
    """`exp(x) / sum(exp(x), axis)`, shifted by the maximum so it never overflows.

    Args:
      x: input array.
      axis: the axis or axes to normalise over.
      where: optional boolean mask; masked-out entries get probability 0.

    Example:
      >>> softmax(jnp.array([1000.0, 0.0]))
      Array([1., 0.], dtype=float32)
    """
    x = _float(x)
    shifted = x - _safe_max(x, axis, where)
    if where is not None:
        shifted = jnp.where(where, shifted, -jnp.inf)
    unnormalized = jnp.exp(shifted)
    return unnormalized / jnp.sum(unnormalized, axis=axis, keepdims=True)


def log_softmax(x: ArrayLike, axis: Axis = -1, where: ArrayLike | None = None) -> Array:
    """`x - logsumexp(x, axis)`, finite for finite inputs of any size.

    Args:
      x: input array.
      axis: the axis or axes to normalise over.
      where: optional boolean mask; masked-out entries get -inf.

    Example:
      >>> log_softmax(jnp.array([0.0, 0.0]))
      Array([-0.6931472, -0.6931472], dtype=float32)
    """
    x = _float(x)
    shifted = x - _safe_max(x, axis, where)
    exps = jnp.exp(shifted if where is None else jnp.where(where, shifted, -jnp.inf))
    out = shifted - jnp.log(jnp.sum(exps, axis=axis, keepdims=True))
    return out if where is None else jnp.where(where, out, -jnp.inf)


def standardize(x: ArrayLike, axis: Axis = -1, mean: ArrayLike | None = None,
                variance: ArrayLike | None = None, epsilon: float = 1e-5) -> Array:
    """`(x - mean) / sqrt(variance + epsilon)` over `axis` (statistics computed if not given).

    Example:
      >>> standardize(jnp.array([1.0, 3.0]))
      Array([-0.999995,  0.999995], dtype=float32)
    """
    x = _float(x)
    if mean is None:
        mean = jnp.mean(x, axis=axis, keepdims=True)
    if variance is None:
        variance = jnp.mean(jnp.square(x - mean), axis=axis, keepdims=True)
    return (x - mean) * lax.rsqrt(jnp.asarray(variance + epsilon, x.dtype))


def one_hot(x: ArrayLike, num_classes: int, dtype: Any = float, axis: int = -1) -> Array:
    """One-hot encoding of integer labels; out-of-range labels give an all-zero row.

    Args:
      x: labels, an array of any rank.
      num_classes: the number of classes (a static int).
      dtype: the result's dtype.
      axis: where the class axis goes in the result.

    Returns:
      An array of shape `x.shape` with `num_classes` inserted at `axis`.

    Example:
      >>> one_hot(jnp.array([0, 2, 5]), 3)
      Array([[1., 0., 0.],
             [0., 0., 1.],
             [0., 0., 0.]], dtype=float32)
    """
    try:
        num_classes = int(num_classes)
    except core.ConcretizationTypeError:
        raise core.ConcretizationTypeError(
            "one_hot: num_classes sets the result's shape, so it must be a static int; "
            "under jit pass it with static_argnums") from None
    x = jnp.asarray(x)
    ndim = x.ndim + 1
    if not -ndim <= axis < ndim:
        raise ValueError(f"one_hot: axis {axis} is out of bounds for a result of rank {ndim}")
    axis %= ndim
    classes_shape = [1] * ndim
    classes_shape[axis] = num_classes
    classes = jnp.arange(num_classes).reshape(classes_shape)
    return (jnp.expand_dims(x, axis) == classes).astype(dtype)
