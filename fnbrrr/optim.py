"""fnbrrr.optim: gradient transformations and optimisers in the shape of optax.

An optimiser is a `GradientTransformation(init, update)` of two pure functions:

    state = opt.init(params)
    updates, state = opt.update(grads, state, params)   # params: needed by weight decay
    params = apply_updates(params, updates)

States are pytrees of arrays (NamedTuples of the parameters' shape, and an int32 step count
where a schedule or a bias correction needs one), so `jit(opt.update)` works and a state can be
checkpointed like the parameters. Transformations compose with `chain`: `adam(lr)` is
`chain(scale_by_adam(), scale_by_learning_rate(lr))`, and `chain(clip_by_global_norm(1.0),
adam(lr))` clips first. Every learning rate may be a number or a schedule, a function of the
step count (`exponential_decay(...)`, `warmup_cosine_decay_schedule(...)`, ...).

Example:
    >>> import fnbrrr, fnbrrr.numpy as jnp
    >>> params = {"w": jnp.ones(3)}
    >>> opt = adam(1e-2)
    >>> state = opt.init(params)
    >>> grads = fnbrrr.grad(lambda p: (p["w"] ** 2).sum())(params)
    >>> updates, state = opt.update(grads, state, params)
    >>> apply_updates(params, updates)["w"].round(4)
    Array([0.99, 0.99, 0.99], dtype=float32)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from fnbrrr import core, lax
from fnbrrr import numpy as jnp
from fnbrrr.tree_util import tree_leaves, tree_map

Array = core.Array
Params = Any
Updates = Any
OptState = Any
Schedule = Callable[[Array], Array]
ScalarOrSchedule = float | Array | Schedule

__all__ = [
    "EmptyState", "GradientTransformation", "ScaleByAdamState", "ScaleByRmsState",
    "ScaleByScheduleState", "ScaleByStddevState", "TraceState", "adam", "adamw",
    "add_decayed_weights", "apply_updates", "chain", "clip", "clip_by_global_norm",
    "constant_schedule", "cosine_decay_schedule", "exponential_decay", "global_norm",
    "identity", "join_schedules", "linear_schedule", "piecewise_constant_schedule",
    "polynomial_schedule", "rmsprop", "scale", "scale_by_adam", "scale_by_learning_rate",
    "scale_by_rms", "scale_by_schedule", "scale_by_stddev", "sgd", "trace",
    "warmup_cosine_decay_schedule",
]


class GradientTransformation(NamedTuple):
    """A pair of pure functions: `init(params) -> state` and
    `update(updates, state, params=None) -> (updates, state)`."""

    init: Callable[[Params], OptState]
    update: Callable[..., tuple[Updates, OptState]]


class EmptyState(NamedTuple):
    """The state of a stateless transformation."""


class TraceState(NamedTuple):
    """Momentum: the running trace of past updates."""

    trace: Updates


class ScaleByAdamState(NamedTuple):
    """Adam's step count and first and second moment estimates."""

    count: Array
    mu: Updates
    nu: Updates


class ScaleByRmsState(NamedTuple):
    """RMSProp's running mean of squared gradients."""

    nu: Updates


class ScaleByStddevState(NamedTuple):
    """Centred RMSProp's running means of gradients and squared gradients."""

    mu: Updates
    nu: Updates


class ScaleByScheduleState(NamedTuple):
    """The step count a schedule is evaluated at."""

    count: Array


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

_INT32_MAX = np.iinfo(np.int32).max


def _zero_count() -> Array:
    return jnp.zeros((), np.int32)


def _increment(count: Array) -> Array:
    """count + 1, saturating at the largest int32 instead of wrapping."""
    return jnp.where(count < _INT32_MAX, count + 1, count)


def _zeros_like_tree(params: Params) -> Updates:
    return tree_map(jnp.zeros_like, params)


def _as_dtype(value: Any, like: Array) -> Array:
    return jnp.asarray(value).astype(jnp.asarray(like).dtype)


# --------------------------------------------------------------------------------------------
# Combinators and stateless transformations
# --------------------------------------------------------------------------------------------


def identity() -> GradientTransformation:
    """The transformation that leaves updates unchanged.

    Example:
      >>> identity().update({"w": 1.0}, EmptyState())[0]
      {'w': 1.0}
    """

    def init(params: Params) -> EmptyState:
        return EmptyState()

    def update(updates: Updates, state: EmptyState, params: Params = None):
        return updates, state

    return GradientTransformation(init, update)


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply `transforms` in order; the state is the tuple of their states.

    Example:
      >>> opt = chain(clip_by_global_norm(1.0), sgd(0.1))
      >>> updates, _ = opt.update({"w": jnp.array([3.0, 4.0])}, opt.init({"w": jnp.zeros(2)}))
      >>> updates["w"].round(4)
      Array([-0.06, -0.08], dtype=float32)
    """

    def init(params: Params) -> tuple:
        return tuple(t.init(params) for t in transforms)

    def update(updates: Updates, state: tuple, params: Params = None):
        if len(state) != len(transforms):
            raise ValueError(f"chain: the state has {len(state)} entries for "
                             f"{len(transforms)} transformations; use this chain's init")
        new_state = []
        for transform, s in zip(transforms, state):
            updates, s = transform.update(updates, s, params)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init, update)


def scale(step_size: float) -> GradientTransformation:
    """Multiply updates by a constant `step_size`.

    Example:
      >>> scale(2.0).update({"w": jnp.ones(2)}, EmptyState())[0]["w"]
      Array([2., 2.], dtype=float32)
    """

    def update(updates: Updates, state: EmptyState, params: Params = None):
        return tree_map(lambda g: g * _as_dtype(step_size, g), updates), state

    return GradientTransformation(lambda params: EmptyState(), update)


def scale_by_schedule(step_size_fn: Schedule) -> GradientTransformation:
    """Multiply updates by `step_size_fn(count)`, count being the number of steps taken.

    Example:
      >>> t = scale_by_schedule(lambda count: 1.0 / (count + 1))
      >>> state = t.init({"w": jnp.ones(1)})
      >>> updates, state = t.update({"w": jnp.ones(1)}, state)
      >>> updates, state = t.update({"w": jnp.ones(1)}, state)
      >>> updates["w"]
      Array([0.5], dtype=float32)
    """

    def init(params: Params) -> ScaleByScheduleState:
        return ScaleByScheduleState(count=_zero_count())

    def update(updates: Updates, state: ScaleByScheduleState, params: Params = None):
        step_size = step_size_fn(state.count)
        updates = tree_map(lambda g: g * _as_dtype(step_size, g), updates)
        return updates, ScaleByScheduleState(count=_increment(state.count))

    return GradientTransformation(init, update)


def scale_by_learning_rate(learning_rate: ScalarOrSchedule,
                           flip_sign: bool = True) -> GradientTransformation:
    """Multiply updates by `-learning_rate` (a number or a schedule; `+` without flip_sign).

    Example:
      >>> scale_by_learning_rate(0.1).update({"w": jnp.ones(1)}, EmptyState())[0]["w"]
      Array([-0.1], dtype=float32)
    """
    sign = -1 if flip_sign else 1
    if callable(learning_rate):
        return scale_by_schedule(lambda count: sign * learning_rate(count))
    return scale(sign * learning_rate)


def add_decayed_weights(weight_decay: float = 0.0,
                        mask: Any | Callable[[Params], Any] | None = None
                        ) -> GradientTransformation:
    """Add `weight_decay * params` to the updates (decoupled weight decay, as in AdamW).

    Args:
      weight_decay: the decay coefficient.
      mask: optional pytree of bools with the params' structure (or a function of the params
        returning one): decay only where True (e.g. not biases).

    Example:
      >>> t = add_decayed_weights(0.5)
      >>> t.update({"w": jnp.zeros(1)}, t.init(None), {"w": jnp.ones(1)})[0]["w"]
      Array([0.5], dtype=float32)
    """

    def update(updates: Updates, state: EmptyState, params: Params = None):
        if params is None:
            raise ValueError("add_decayed_weights needs the parameters: call "
                             "update(grads, state, params)")
        where = mask(params) if callable(mask) else mask
        if where is None:
            return tree_map(lambda g, p: g + weight_decay * p, updates, params), state
        return tree_map(lambda g, p, m: g + weight_decay * p if m else g,
                        updates, params, where), state

    return GradientTransformation(lambda params: EmptyState(), update)


def global_norm(updates: Updates) -> Array:
    """The l2 norm of all leaves of a pytree taken together.

    Example:
      >>> global_norm({"a": jnp.array([3.0]), "b": jnp.array([4.0])})
      Array(5., dtype=float32)
    """
    return jnp.sqrt(_squared_norm(updates))


def _squared_norm(updates: Updates) -> Array:
    leaves = tree_leaves(updates)
    if not leaves:
        return jnp.zeros((), np.float32)
    return sum(jnp.sum(jnp.square(leaf)) for leaf in leaves)


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Rescale updates so their global norm is at most `max_norm` (directions unchanged).

    Example:
      >>> t = clip_by_global_norm(1.0)
      >>> t.update({"w": jnp.array([3.0, 4.0])}, t.init(None))[0]["w"]
      Array([0.6, 0.8], dtype=float32)
    """

    def update(updates: Updates, state: EmptyState, params: Params = None):
        squared = _squared_norm(updates)
        small = squared < max_norm**2
        # Both branches are computed (and differentiated): take the square root and divide only
        # where the norm is large, so a zero update never meets sqrt'(0) or 0 / 0.
        norm = jnp.sqrt(jnp.where(small, jnp.ones_like(squared), squared))
        factor = max_norm / norm
        return tree_map(lambda g: jnp.where(small, g, g * _as_dtype(factor, g)),
                        updates), state

    return GradientTransformation(lambda params: EmptyState(), update)


def clip(max_delta: float) -> GradientTransformation:
    """Clip every update element to [-max_delta, max_delta].

    Example:
      >>> clip(1.0).update({"w": jnp.array([-3.0, 0.5])}, EmptyState())[0]["w"]
      Array([-1. ,  0.5], dtype=float32)
    """

    def update(updates: Updates, state: EmptyState, params: Params = None):
        return tree_map(lambda g: jnp.clip(g, -max_delta, max_delta), updates), state

    return GradientTransformation(lambda params: EmptyState(), update)


# --------------------------------------------------------------------------------------------
# Stateful transformations: momentum, Adam, RMSProp
# --------------------------------------------------------------------------------------------


def trace(decay: float, nesterov: bool = False) -> GradientTransformation:
    """Momentum: `t = g + decay * t`; the update is `t` (or `g + decay * t`, Nesterov).

    Example:
      >>> t = trace(0.9)
      >>> state = t.init({"w": jnp.zeros(1)})
      >>> _, state = t.update({"w": jnp.ones(1)}, state)
      >>> t.update({"w": jnp.ones(1)}, state)[0]["w"]
      Array([1.9], dtype=float32)
    """

    def init(params: Params) -> TraceState:
        return TraceState(trace=_zeros_like_tree(params))

    def update(updates: Updates, state: TraceState, params: Params = None):
        new_trace = tree_map(lambda g, t: g + decay * t, updates, state.trace)
        if nesterov:
            updates = tree_map(lambda g, t: g + decay * t, updates, new_trace)
        else:
            updates = new_trace
        return updates, TraceState(trace=new_trace)

    return GradientTransformation(init, update)


def _moment(updates: Updates, moments: Updates, decay: float, power: int) -> Updates:
    """The exponential moving average `decay * m + (1 - decay) * g**power`."""
    if power == 1:
        return tree_map(lambda g, m: decay * m + (1 - decay) * g, updates, moments)
    return tree_map(lambda g, m: decay * m + (1 - decay) * (g * g), updates, moments)


def _bias_corrected(moments: Updates, decay: float, count: Array) -> Updates:
    correction = 1 - jnp.asarray(decay, np.float32) ** count
    return tree_map(lambda m: m / _as_dtype(correction, m), moments)


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                  eps_root: float = 0.0) -> GradientTransformation:
    """Adam's rescaling (Kingma and Ba 2015): `m_hat / (sqrt(v_hat + eps_root) + eps)`.

    `m` and `v` are moving averages of the gradients and their squares with decays `b1` and
    `b2`, bias-corrected by `1 - b**t` at step t.

    Example:
      >>> t = scale_by_adam()
      >>> t.update({"w": jnp.array([2.0])}, t.init({"w": jnp.zeros(1)}))[0]["w"].round(4)
      Array([1.], dtype=float32)
    """

    def init(params: Params) -> ScaleByAdamState:
        return ScaleByAdamState(count=_zero_count(), mu=_zeros_like_tree(params),
                                nu=_zeros_like_tree(params))

    def update(updates: Updates, state: ScaleByAdamState, params: Params = None):
        count = _increment(state.count)
        mu = _moment(updates, state.mu, b1, 1)
        nu = _moment(updates, state.nu, b2, 2)
        mu_hat, nu_hat = _bias_corrected(mu, b1, count), _bias_corrected(nu, b2, count)
        updates = tree_map(lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat)
        return updates, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init, update)


def scale_by_rms(decay: float = 0.9, eps: float = 1e-8,
                 initial_scale: float = 0.0) -> GradientTransformation:
    """RMSProp's rescaling: `g / sqrt(v + eps)`, v the moving average of g**2.

    Example:
      >>> t = scale_by_rms(decay=0.0)
      >>> t.update({"w": jnp.array([-2.0])}, t.init({"w": jnp.zeros(1)}))[0]["w"]
      Array([-1.], dtype=float32)
    """

    def init(params: Params) -> ScaleByRmsState:
        return ScaleByRmsState(nu=tree_map(lambda p: jnp.full_like(p, initial_scale), params))

    def update(updates: Updates, state: ScaleByRmsState, params: Params = None):
        nu = _moment(updates, state.nu, decay, 2)
        updates = tree_map(lambda g, v: g * lax.rsqrt(v + eps), updates, nu)
        return updates, ScaleByRmsState(nu=nu)

    return GradientTransformation(init, update)


def scale_by_stddev(decay: float = 0.9, eps: float = 1e-8,
                    initial_scale: float = 0.0) -> GradientTransformation:
    """Centred RMSProp's rescaling: `g / sqrt(v - m**2 + eps)` with moving averages m of g
    and v of g**2.

    Example:
      >>> t = scale_by_stddev(decay=0.5)
      >>> t.update({"w": jnp.array([2.0])}, t.init({"w": jnp.zeros(1)}))[0]["w"]
      Array([2.], dtype=float32)
    """

    def init(params: Params) -> ScaleByStddevState:
        return ScaleByStddevState(mu=_zeros_like_tree(params),
                                  nu=tree_map(lambda p: jnp.full_like(p, initial_scale), params))

    def update(updates: Updates, state: ScaleByStddevState, params: Params = None):
        mu = _moment(updates, state.mu, decay, 1)
        nu = _moment(updates, state.nu, decay, 2)
        updates = tree_map(lambda g, m, v: g * lax.rsqrt(v - m * m + eps), updates, mu, nu)
        return updates, ScaleByStddevState(mu=mu, nu=nu)

    return GradientTransformation(init, update)


# --------------------------------------------------------------------------------------------
# Optimisers
# --------------------------------------------------------------------------------------------


def sgd(learning_rate: ScalarOrSchedule, momentum: float | None = None,
        nesterov: bool = False) -> GradientTransformation:
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    Update: `-lr * t` with `t = g + momentum * t` (or `-lr * (g + momentum * t)`, Nesterov);
    without momentum, `-lr * g`.

    Example:
      >>> opt = sgd(0.1)
      >>> opt.update({"w": jnp.ones(1)}, opt.init({"w": jnp.zeros(1)}))[0]["w"]
      Array([-0.1], dtype=float32)
    """
    return chain(trace(momentum, nesterov) if momentum is not None else identity(),
                 scale_by_learning_rate(learning_rate))


def adam(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-8, eps_root: float = 0.0) -> GradientTransformation:
    """Adam: `scale_by_adam(b1, b2, eps, eps_root)` then `-learning_rate`.

    Example:
      >>> opt = adam(0.1)
      >>> opt.update({"w": jnp.ones(1)}, opt.init({"w": jnp.zeros(1)}))[0]["w"].round(4)
      Array([-0.1], dtype=float32)
    """
    return chain(scale_by_adam(b1, b2, eps, eps_root), scale_by_learning_rate(learning_rate))


def adamw(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
          eps: float = 1e-8, eps_root: float = 0.0, weight_decay: float = 1e-4,
          mask: Any | Callable[[Params], Any] | None = None) -> GradientTransformation:
    """Adam with decoupled weight decay (Loshchilov and Hutter 2019).

    Update: `-lr * (adam_direction + weight_decay * params)`; `update` needs `params`.

    Example:
      >>> opt = adamw(0.1, weight_decay=0.5)
      >>> params = {"w": jnp.ones(1)}
      >>> opt.update({"w": jnp.ones(1)}, opt.init(params), params)[0]["w"].round(4)
      Array([-0.15], dtype=float32)
    """
    return chain(scale_by_adam(b1, b2, eps, eps_root), add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))


def rmsprop(learning_rate: ScalarOrSchedule, decay: float = 0.9, eps: float = 1e-8,
            initial_scale: float = 0.0, centered: bool = False, momentum: float | None = None,
            nesterov: bool = False) -> GradientTransformation:
    """RMSProp (Tieleman and Hinton 2012): `-lr * g / sqrt(v + eps)`, optionally centred
    (`v - m**2`) and with momentum applied after the learning rate (as optax).

    Example:
      >>> opt = rmsprop(0.1, decay=0.0)
      >>> opt.update({"w": jnp.array([4.0])}, opt.init({"w": jnp.zeros(1)}))[0]["w"]
      Array([-0.1], dtype=float32)
    """
    rescale = (scale_by_stddev if centered else scale_by_rms)(decay, eps, initial_scale)
    return chain(rescale, scale_by_learning_rate(learning_rate),
                 trace(momentum, nesterov) if momentum is not None else identity())


def apply_updates(params: Params, updates: Updates) -> Params:
    """`params + updates`, leaf by leaf, keeping each parameter's dtype.

    Example:
      >>> apply_updates({"w": jnp.ones(2)}, {"w": jnp.array([0.5, -1.0])})["w"]
      Array([1.5, 0. ], dtype=float32)
    """
    return tree_map(lambda p, u: jnp.asarray(p + u).astype(jnp.asarray(p).dtype),
                    params, updates)


# --------------------------------------------------------------------------------------------
# Schedules: functions of the int32 step count (traced under jit) to a step size
# --------------------------------------------------------------------------------------------


def constant_schedule(value: float) -> Schedule:
    """`value` at every step.

    Example:
      >>> constant_schedule(0.1)(5)
      0.1
    """
    return lambda count: value


def polynomial_schedule(init_value: float, end_value: float, power: float,
                        transition_steps: int, transition_begin: int = 0) -> Schedule:
    """From `init_value` to `end_value` along `(1 - t)**power` over `transition_steps`
    steps that start at `transition_begin`; constant before and after.

    Example:
      >>> float(polynomial_schedule(1.0, 0.0, 2, 10)(5))
      0.25
    """
    if transition_steps <= 0:
        return constant_schedule(init_value)

    def schedule(count):
        done = jnp.clip(jnp.asarray(count) - transition_begin, 0, transition_steps)
        remaining = 1 - done / transition_steps
        return (init_value - end_value) * remaining**power + end_value

    return schedule


def linear_schedule(init_value: float, end_value: float, transition_steps: int,
                    transition_begin: int = 0) -> Schedule:
    """Linear interpolation from `init_value` to `end_value` over `transition_steps` steps.

    Example:
      >>> float(linear_schedule(1.0, 0.0, 4)(1))
      0.75
    """
    return polynomial_schedule(init_value, end_value, 1, transition_steps, transition_begin)


def exponential_decay(init_value: float, transition_steps: int, decay_rate: float,
                      transition_begin: int = 0, staircase: bool = False,
                      end_value: float | None = None) -> Schedule:
    """`init_value * decay_rate ** ((count - transition_begin) / transition_steps)`.

    Args:
      init_value: the value up to `transition_begin`.
      transition_steps: steps per factor of `decay_rate`.
      decay_rate: the decay per `transition_steps`.
      transition_begin: steps before the decay starts.
      staircase: decay in whole steps (floor of the exponent).
      end_value: a bound the value does not cross (a floor when decaying, a cap when
        growing).

    Example:
      >>> float(exponential_decay(1.0, 10, 0.5)(20))
      0.25
    """
    if transition_steps <= 0 or decay_rate == 0:
        return constant_schedule(init_value)

    def schedule(count):
        elapsed = jnp.asarray(count) - transition_begin
        exponent = elapsed / transition_steps
        if staircase:
            exponent = jnp.floor(exponent)
        value = jnp.where(elapsed <= 0, init_value, init_value * decay_rate**exponent)
        if end_value is not None:
            value = (jnp.maximum(value, end_value) if decay_rate < 1
                     else jnp.minimum(value, end_value))
        return value

    return schedule


def cosine_decay_schedule(init_value: float, decay_steps: int, alpha: float = 0.0,
                          exponent: float = 1.0) -> Schedule:
    """Cosine decay from `init_value` to `alpha * init_value` over `decay_steps` steps
    (Loshchilov and Hutter 2017, without restarts).

    Example:
      >>> round(float(cosine_decay_schedule(1.0, 10)(5)), 4)
      0.5
    """
    if decay_steps <= 0:
        raise ValueError(f"cosine_decay_schedule: decay_steps must be positive, got {decay_steps}")

    def schedule(count):
        done = jnp.minimum(jnp.asarray(count), decay_steps)
        cosine = 0.5 * (1 + jnp.cos(math.pi * done / decay_steps))
        return init_value * ((1 - alpha) * cosine**exponent + alpha)

    return schedule


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """`schedules[i]` from `boundaries[i-1]` on, each restarted at 0 at its boundary.

    Example:
      >>> s = join_schedules([constant_schedule(1.0), constant_schedule(2.0)], [3])
      >>> float(s(2)), float(s(3))
      (1.0, 2.0)
    """
    if len(schedules) != len(boundaries) + 1:
        raise ValueError(f"join_schedules: {len(schedules)} schedules need "
                         f"{len(schedules) - 1} boundaries, got {len(boundaries)}")

    def schedule(count):
        count = jnp.asarray(count)
        value = jnp.asarray(schedules[0](count))
        for boundary, later in zip(boundaries, schedules[1:]):
            value = jnp.where(count < boundary, value, later(count - boundary))
        return value

    return schedule


def warmup_cosine_decay_schedule(init_value: float, peak_value: float, warmup_steps: int,
                                 decay_steps: int, end_value: float = 0.0,
                                 exponent: float = 1.0) -> Schedule:
    """Linear warm-up from `init_value` to `peak_value` over `warmup_steps`, then cosine
    decay to `end_value` at step `decay_steps` (counted from the start, warm-up included).

    Example:
      >>> s = warmup_cosine_decay_schedule(0.0, 1.0, 10, 110)
      >>> float(s(5)), float(s(10)), float(s(110))
      (0.5, 1.0, 0.0)
    """
    alpha = 0.0 if peak_value == 0 else end_value / peak_value
    return join_schedules(
        [linear_schedule(init_value, peak_value, warmup_steps),
         cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent)],
        [warmup_steps])


def piecewise_constant_schedule(init_value: float,
                                boundaries_and_scales: dict[int, float] | None = None
                                ) -> Schedule:
    """`init_value`, multiplied by `scale` from each step `boundary` on.

    Example:
      >>> s = piecewise_constant_schedule(1.0, {2: 0.5, 4: 0.5})
      >>> [float(s(i)) for i in (1, 2, 4)]
      [1.0, 0.5, 0.25]
    """
    items = sorted((boundaries_and_scales or {}).items())

    def schedule(count):
        count = jnp.asarray(count)
        value = jnp.asarray(init_value, np.float32)
        for boundary, factor in items:
            value = jnp.where(count < boundary, value, value * factor)
        return value

    return schedule
