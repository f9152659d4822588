"""Helpers for testing derivatives and derivative rules; mirrors `jax.test_util`.

* `check_grads`: a function's jvp and vjp, up to some order, against finite differences.
* `numerical_jvp`: central finite differences.
* `jvp_of_primitive`, `vjp_of_primitive`: one primitive through the JVP trace or the reverse
  trace, as `jvp`/`grad` would run it (what `tests/test_primitive_rules.py` walks the
  registry with).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from fnbrrr.ad import (
    _as_array,
    _concrete,
    _fun_name,
    _is_float,
    _zeros,
    jvp,
    jvp_flat,
    vjp,
    vjp_flat,
)
from fnbrrr.ad_util import Zero
from fnbrrr.core import Primitive, get_aval

__all__ = ["check_grads", "jvp_of_primitive", "numerical_jvp", "vjp_of_primitive"]

# --------------------------------------------------------------------------------------------
# One primitive through the AD machinery
# --------------------------------------------------------------------------------------------


def jvp_of_primitive(primitive: Primitive, primals: Sequence, tangents: Sequence, **params):
    """`(out, tangent_out)` of one application of `primitive`, through the JVP trace.

    Args:
      primitive: the primitive.
      primals: its inputs (arrays, NumPy arrays or scalars).
      tangents: one tangent per input; `None` for no tangent (integer inputs, say).
      **params: the primitive's parameters.

    Returns:
      `(out, tangent_out)`; lists for multiple-result primitives. Tangents are real arrays.

    Example:
      >>> jvp_of_primitive(core.primitives["sin"], [0.0], [1.0])
      (Array(0., dtype=float32, weak_type=True), Array(1., dtype=float32, weak_type=True))
    """
    primals = [_as_array(p) for p in primals]
    tangents = [Zero(get_aval(p)) if t is None else _as_array(t) for p, t in zip(primals, tangents)]
    outs, tangents_out = jvp_flat(_bind_as_list(primitive, params), primals, tangents)
    if primitive.multiple_results:
        return outs, tangents_out
    return outs[0], tangents_out[0]


def vjp_of_primitive(primitive: Primitive, primals: Sequence, cotangent, **params) -> list:
    """The cotangent of each input of `primitive` for output cotangent `cotangent`.

    Goes through the reverse trace (tape, `vjp` rule, zero handling), like `grad` does.

    Args:
      primitive: the primitive.
      primals: its inputs.
      cotangent: the output cotangent (a list for multiple-result primitives).
      **params: the primitive's parameters.

    Returns:
      A list with one cotangent per input (zeros for integer inputs and unused ones).

    Example:
      >>> vjp_of_primitive(core.primitives["mul"], [2.0, 3.0], 1.0)
      [Array(3., dtype=float32, weak_type=True), Array(2., dtype=float32, weak_type=True)]
    """
    primals = [_as_array(p) for p in primals]
    _, pullback = vjp_flat(_bind_as_list(primitive, params), primals)
    cts = cotangent if primitive.multiple_results else [cotangent]
    return pullback([_as_array(c) for c in cts])


def _bind_as_list(primitive: Primitive, params: dict) -> Callable:
    def f(*args):
        out = primitive.bind(*args, **params)
        return list(out) if primitive.multiple_results else [out]

    f.__name__ = primitive.name
    return f


# --------------------------------------------------------------------------------------------
# Finite differences
# --------------------------------------------------------------------------------------------


def numerical_jvp(
    fun: Callable, primals: Sequence, tangents: Sequence, eps: float = 1e-3
) -> list[np.ndarray]:
    """Central finite differences `(f(x + eps t) - f(x - eps t)) / (2 eps)`, per output.

    Args:
      fun: a function of flat arrays returning an array or a list/tuple of arrays.
      primals: the point (float arrays; integer ones are held fixed).
      tangents: the direction, one per primal (ignored for integer primals).
      eps: the step. In float32 keep it large (1e-2..1e-3); with float64
        (`config.update("jax_enable_x64", True)`) 1e-5..1e-6 is accurate.

    Returns:
      One NumPy array per output of `fun`.

    Example:
      >>> numerical_jvp(lambda x: x * x, [3.0], [1.0], eps=1e-2)
      [np.float64(5.999994277954102)]
    """

    def shifted(sign):
        args = [_shifted_arg(p, t, sign * eps) for p, t in zip(primals, tangents)]
        return [np.asarray(_concrete(_as_array(o)), np.float64) for o in _as_list(fun(*args))]

    plus, minus = shifted(1), shifted(-1)
    return [(a - b) / (2 * eps) for a, b in zip(plus, minus)]


def _shifted_arg(primal, tangent, step: float):
    """`primal + step * tangent` in the primal's dtype (integer primals stay where they are)."""
    p_np = np.asarray(_concrete(_as_array(primal)))
    if p_np.dtype.kind == "f":
        p_np = p_np + step * np.asarray(_concrete(_as_array(tangent)), p_np.dtype)
    return _as_array(p_np.astype(_concrete(_as_array(primal)).dtype))


def _as_list(out) -> list:
    return list(out) if isinstance(out, (list, tuple)) else [out]


# --------------------------------------------------------------------------------------------
# check_grads
# --------------------------------------------------------------------------------------------


class _Tolerances(NamedTuple):
    atol: float
    rtol: float
    eps: float  # the finite-difference step


def check_grads(
    fun: Callable,
    args: Sequence,
    order: int = 1,
    modes: Sequence[str] = ("fwd", "rev"),
    atol: float | None = None,
    rtol: float | None = None,
    eps: float | None = None,
) -> None:
    """Check `fun`'s derivatives up to `order` against finite differences (AssertionError).

    Forward mode: `jvp` along random tangents equals the numerical jvp. Reverse mode: for
    random `t` and cotangent `c`, `<c, J t>` (numerical) equals `<vjp(c), t>`. Higher orders
    apply the same checks to the jvp / vjp functions themselves. Mirrors
    `jax.test_util.check_grads`.

    Args:
      fun: a function of flat array arguments returning an array or a tuple of arrays.
      args: the point.
      order: the highest derivative order to check.
      modes: any of "fwd", "rev".
      atol, rtol: tolerances (defaults depend on the dtype: looser for float32).
      eps: the finite-difference step (default 1e-5 for float64, 2e-3 for float32).

    Returns:
      None; raises AssertionError where a derivative disagrees.

    Example:
      >>> check_grads(jnp.sin, (0.5,), order=2)
    """
    args = [_as_array(a) for a in args]
    f64 = all(get_aval(a).dtype == np.float64 for a in args if _is_float(get_aval(a)))
    tol = _Tolerances(
        atol=atol if atol is not None else (1e-6 if f64 else 2e-2),
        rtol=rtol if rtol is not None else (1e-5 if f64 else 2e-2),
        eps=eps if eps is not None else (1e-5 if f64 else 2e-3),
    )
    _check_grads(fun, args, order, tuple(modes), tol, np.random.RandomState(0))


def _check_grads(fun, args, order, modes, tol: _Tolerances, rng) -> None:
    if order <= 0:
        return
    tangents = [_random_like(a, rng) for a in args]
    expected = numerical_jvp(fun, args, tangents, tol.eps)
    if "fwd" in modes:
        _check_jvp(fun, args, tangents, expected, tol)
        jvp_fun = lambda *a: _as_list(jvp(fun, tuple(a), tuple(tangents))[1])
        _check_grads(jvp_fun, args, order - 1, modes, tol, rng)
    if "rev" in modes:
        cts = _check_vjp(fun, args, tangents, expected, tol, rng)
        vjp_fun = lambda *a: list(vjp(lambda *b: _as_list(fun(*b)), *a)[1](cts))
        _check_grads(vjp_fun, args, order - 1, modes, tol, rng)


def _check_jvp(fun, args, tangents, expected, tol: _Tolerances) -> None:
    """`jvp` of `fun` along `tangents` against the finite differences `expected`."""
    _, got = jvp(lambda *a: _as_list(fun(*a)), tuple(args), tuple(tangents))
    for g, e in zip(got, expected):
        np.testing.assert_allclose(
            np.asarray(g, np.float64),
            e,
            atol=tol.atol,
            rtol=tol.rtol,
            err_msg=f"jvp of {_fun_name(fun)} vs finite differences",
        )


def _check_vjp(fun, args, tangents, expected, tol: _Tolerances, rng) -> list:
    """`<c, J t>` from finite differences against `<vjp(c), t>`, for a random `c` (returned)."""
    outs, vjp_fn = vjp(lambda *a: _as_list(fun(*a)), *args)
    cts = [_random_like(o, rng) for o in outs]
    got_cts = vjp_fn(cts)
    lhs = sum(float(np.vdot(np.asarray(c, np.float64), e)) for c, e in zip(cts, expected))
    rhs = sum(
        float(np.vdot(np.asarray(c, np.float64), np.asarray(t, np.float64)))
        for c, t in zip(got_cts, tangents)
    )
    np.testing.assert_allclose(
        rhs,
        lhs,
        atol=tol.atol,
        rtol=tol.rtol,
        err_msg=f"vjp of {_fun_name(fun)} vs finite differences",
    )
    return cts


def _random_like(x, rng):
    """A standard-normal array like `x` (zeros for integer `x`)."""
    aval = get_aval(x)
    if not _is_float(aval):
        return _zeros(aval)
    return _as_array(rng.standard_normal(aval.shape).astype(aval.dtype))
