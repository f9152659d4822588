"""Loss functions of `fnbrrr.nn`, in the shape of optax's: per-example values, no reduction.

Each loss returns one value per example (reduce with `.mean()`), except `mse`, which is the
mean squared error itself. All are written on the stable normalisers of `_activations`
(`log_softmax`, `log_sigmoid`), so they stay finite, with finite gradients, for logits of any
magnitude.
"""

from __future__ import annotations

from typing import Any

from fnbrrr import core
from fnbrrr import numpy as jnp
from fnbrrr.nn._activations import _float, log_sigmoid, log_softmax

Array = core.Array
ArrayLike = Any


def softmax_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> Array:
    """Cross-entropy between softmax(logits) and a label distribution (e.g. one-hot).

    Args:
      logits: unnormalised log-probabilities, shape (..., num_classes).
      labels: probabilities of the same shape (rows summing to 1).

    Returns:
      The losses, shape (...): `-sum(labels * log_softmax(logits), axis=-1)`. Entries whose
      label is 0 contribute 0 even where a logit is -inf.

    Example:
      >>> softmax_cross_entropy(jnp.array([[0.0, 0.0]]), jnp.array([[1.0, 0.0]]))
      Array([0.6931472], dtype=float32)
    """
    logits, labels = _float(logits), _float(labels)
    _check_same_shape("softmax_cross_entropy", logits, labels)
    terms = jnp.where(labels == 0, jnp.zeros_like(logits), labels * log_softmax(logits))
    return -jnp.sum(terms, axis=-1)


def softmax_cross_entropy_with_integer_labels(logits: ArrayLike, labels: ArrayLike) -> Array:
    """Cross-entropy of softmax(logits) for integer class labels.

    Args:
      logits: unnormalised log-probabilities, shape (..., num_classes).
      labels: integer class indices, shape (...).

    Returns:
      The losses, shape (...): `-log_softmax(logits)[..., labels]`.

    Example:
      >>> softmax_cross_entropy_with_integer_labels(jnp.array([[0.0, 0.0]]), jnp.array([1]))
      Array([0.6931472], dtype=float32)
    """
    logits, labels = _float(logits), jnp.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"softmax_cross_entropy_with_integer_labels: labels must be integers, "
                        f"got {labels.dtype.name}; use softmax_cross_entropy for probabilities")
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"softmax_cross_entropy_with_integer_labels: labels of shape "
                         f"{labels.shape} do not match logits of shape {logits.shape} (labels "
                         "must have the logits' shape without the class axis)")
    picked = jnp.take_along_axis(log_softmax(logits), labels[..., None], axis=-1)
    return -picked[..., 0]


def sigmoid_binary_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> Array:
    """Elementwise cross-entropy of sigmoid(logits) against binary (or soft) labels.

    Args:
      logits: unnormalised log-odds.
      labels: targets in [0, 1], broadcastable against `logits`.

    Returns:
      `-labels * log_sigmoid(logits) - (1 - labels) * log_sigmoid(-logits)`, elementwise.

    Example:
      >>> sigmoid_binary_cross_entropy(jnp.array([0.0]), jnp.array([1.0]))
      Array([0.6931472], dtype=float32)
    """
    logits, labels = _float(logits), _float(labels)
    return -labels * log_sigmoid(logits) - (1 - labels) * log_sigmoid(-logits)


def squared_error(predictions: ArrayLike, targets: ArrayLike | None = None) -> Array:
    """Elementwise `(predictions - targets) ** 2` (targets default to 0).

    Example:
      >>> squared_error(jnp.array([3.0]), jnp.array([1.0]))
      Array([4.], dtype=float32)
    """
    predictions = _float(predictions)
    errors = predictions if targets is None else predictions - targets
    return jnp.square(errors)


def l2_loss(predictions: ArrayLike, targets: ArrayLike | None = None) -> Array:
    """Elementwise `0.5 * (predictions - targets) ** 2` (optax's l2_loss).

    Example:
      >>> l2_loss(jnp.array([3.0]), jnp.array([1.0]))
      Array([2.], dtype=float32)
    """
    return 0.5 * squared_error(predictions, targets)


def mse(predictions: ArrayLike, targets: ArrayLike | None = None) -> Array:
    """The mean squared error over all elements, a scalar.

    Example:
      >>> mse(jnp.array([1.0, 3.0]), jnp.array([1.0, 1.0]))
      Array(2., dtype=float32)
    """
    return jnp.mean(squared_error(predictions, targets))


mean_squared_error = mse


def _check_same_shape(name: str, logits: Array, labels: Array) -> None:
    if logits.shape != labels.shape:
        raise ValueError(f"{name}: logits of shape {logits.shape} and labels of shape "
                         f"{labels.shape} must have the same shape")

