"""The `while` primitive with its rules, and the lax functions `while_loop` and `fori_loop`
(a scan when its trip count is static, a while otherwise)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fnbrrr import core
from fnbrrr import dtypes as _dtypes
from fnbrrr._prims.control_flow._common import (
    _array_leaves,
    _as_impl,
    _carry_fixpoint,
    _check_carry_tree,
    _check_carry_types,
    _eager,
    _eval,
    _fill,
    _fun_name,
    _hoist,
    _is_float,
    _jvp_of,
    _nonzero_outputs,
    _pick,
    _promote_weak_carry,
    _run,
    _same_type,
    _scalar_aval,
    _select_per_example,
    _split,
    _tangent_aval,
    _trace,
    _trace_fun,
    _with_invars,
)
from fnbrrr._prims.control_flow._scan import scan
from fnbrrr._prims.elementwise import add, convert_element_type, lt
from fnbrrr._prims.reductions import reduce_or
from fnbrrr.ad import reverse_rules
from fnbrrr.ad_util import DifferentiationError, instantiate, is_zero
from fnbrrr.batching import batch_jaxpr, batch_size, bdim_at_front
from fnbrrr.core import ArrayImpl, ClosedJaxpr, Primitive, ShapedArray, Tracer, Var, get_aval
from fnbrrr.tree_util import tree_unflatten

# --------------------------------------------------------------------------------------------
# while: iterate the body while the condition holds
# --------------------------------------------------------------------------------------------


while_p = Primitive("while", multiple_results=True)
while_p.doc = "carry = body_jaxpr(carry) while cond_jaxpr(carry); forward-differentiable only"


def _while_impl(*args, cond_jaxpr: ClosedJaxpr, body_jaxpr: ClosedJaxpr, cond_nconsts: int,
                body_nconsts: int):
    cond_consts, body_consts, carry = _split(args, [cond_nconsts, body_nconsts])
    with _eager():
        cond_consts = [_as_impl(c, a) for c, a in zip(cond_consts, cond_jaxpr.in_avals)]
        body_consts = [_as_impl(c, a) for c, a in zip(body_consts, body_jaxpr.in_avals)]
        carry = [_as_impl(c, a) for c, a in zip(carry, body_jaxpr.in_avals[body_nconsts:])]
        while _run(cond_jaxpr, [*cond_consts, *carry])[0]._value:
            carry = _run(body_jaxpr, [*body_consts, *carry])
    return [c._value for c in carry]


def _while_abstract_eval(*avals, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts):
    cond_consts, body_consts, carry = _split(avals, [cond_nconsts, body_nconsts])
    for what, program, args in (("cond", cond_jaxpr, cond_consts + carry),
                                ("body", body_jaxpr, body_consts + carry)):
        expected = program.in_avals
        if len(expected) != len(args) or not all(
            _same_type(a, e) for a, e in zip(args, expected)
        ):
            raise TypeError(
                f"internal error: while {what} takes "
                f"({', '.join(a.str_short() for a in expected)}), got "
                f"({', '.join(a.str_short() for a in args)})"
            )
    carry_in = body_jaxpr.in_avals[body_nconsts:]
    if not all(_same_type(a, e) for a, e in zip(body_jaxpr.out_avals, carry_in)):
        raise TypeError("internal error: while body does not keep the carry's types")
    return list(carry_in)


def _while_jvp(primals, tangents, *, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts):
    nonzero = [not is_zero(t) for t in tangents]
    _, bconsts_nz, init_nz = _split(nonzero, [cond_nconsts, body_nconsts])

    def carry_out_nonzero(carry_nz: list[bool]) -> list[bool]:
        return _nonzero_outputs(body_jaxpr.jaxpr, bconsts_nz + carry_nz)

    carry_nz = _carry_fixpoint(carry_out_nonzero, init_nz)
    jvp = _jvp_of(body_jaxpr, bconsts_nz + carry_nz)
    bc_av, k_av = _split(body_jaxpr.in_avals, [body_nconsts])
    n_carry = len(k_av)
    sizes = [body_nconsts, sum(bconsts_nz), n_carry]

    def body(*args):
        c, ct, k, kt = _split(args, sizes)
        outs, tangents_out = jvp([*c, *k], [*ct, *kt])
        return [*outs, *_pick(tangents_out, carry_nz)]

    carry_t_avals = [_tangent_aval(a) for a in _pick(k_av, carry_nz)]
    avals = [*bc_av, *[_tangent_aval(a) for a in _pick(bc_av, bconsts_nz)], *k_av,
             *carry_t_avals]
    body_closed, hoisted = _trace(body, avals, "while_jvp")
    # The condition reads the primal carry only: the tangents are extra, unused inputs.
    cond_closed = _with_invars(cond_jaxpr, [*cond_jaxpr.jaxpr.invars,
                                            *[Var(a) for a in carry_t_avals]])
    cond_consts, body_consts, init = _split(primals, [cond_nconsts, body_nconsts])
    _, bconsts_t, init_t = _split(tangents, [cond_nconsts, body_nconsts])
    outs = while_p.bind(
        *cond_consts, *hoisted, *body_consts, *_pick(bconsts_t, bconsts_nz), *init,
        *[instantiate(t) for t in _pick(init_t, carry_nz)],
        cond_jaxpr=cond_closed, body_jaxpr=body_closed, cond_nconsts=cond_nconsts,
        body_nconsts=len(hoisted) + body_nconsts + sum(bconsts_nz),
    )
    carry, carry_t = _split(outs, [n_carry])
    return carry, _fill(carry_t, carry_nz, carry)


_WHILE_VJP_MESSAGE = (
    "Reverse-mode differentiation (grad, vjp, jacrev) of lax.while_loop is not supported: "
    "its number of iterations is not known in advance, so the values its backward pass "
    "needs cannot be stored. Use lax.scan, or lax.fori_loop with static (Python int) "
    "bounds, which are reverse-differentiable; forward mode (jvp, jacfwd) of while_loop works."
)


def _while_vjp(cts, ans, *primals, **params):
    raise DifferentiationError(_WHILE_VJP_MESSAGE)


def _while_reverse(values, needs_grad, *, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts):
    """Raise at once (not in the backward pass) when a float body input is differentiated.

    Only the condition's constants being differentiated is fine: the predicate is
    piecewise constant, so the outputs' derivative with respect to them is zero.
    """
    floats = [_is_float(get_aval(v)) for v in values]
    if any(f and n for f, n in zip(floats[cond_nconsts:], needs_grad[cond_nconsts:])):
        raise DifferentiationError(_WHILE_VJP_MESSAGE)
    outs = while_p.bind(*values, cond_jaxpr=cond_jaxpr, body_jaxpr=body_jaxpr,
                        cond_nconsts=cond_nconsts, body_nconsts=body_nconsts)
    return outs, lambda cts: [None] * len(values)


def _while_batch(vals, dims, *, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts):
    size = batch_size(vals, dims)
    cond_dims, body_dims, init_dims = _split(dims, [cond_nconsts, body_nconsts])
    cond_consts, body_consts, init = _split(vals, [cond_nconsts, body_nconsts])

    def carry_dims(batched: list[bool]) -> list:
        return [0 if b else None for b in batched]

    def carry_out_batched(batched: list[bool]) -> list[bool]:
        _, out_dims = batch_jaxpr(body_jaxpr, size, body_dims + carry_dims(batched))
        return [d is not None for d in out_dims]

    batched = _carry_fixpoint(carry_out_batched, [d is not None for d in init_dims])
    _, (pred_dim,) = batch_jaxpr(cond_jaxpr, size, cond_dims + carry_dims(batched))
    if pred_dim is not None:  # examples stop at different steps: everything is batched
        batched = [True] * len(batched)
    body_b, _ = batch_jaxpr(body_jaxpr, size, body_dims + carry_dims(batched),
                            instantiate=batched)
    cond_b, _ = batch_jaxpr(cond_jaxpr, size, cond_dims + carry_dims(batched))
    init = [bdim_at_front(v, d, size) if b else v for v, d, b in zip(init, init_dims, batched)]
    if pred_dim is None:
        cond_b, cond_hoisted = _hoist(cond_b)
        body_b, body_hoisted = _hoist(body_b)
        outs = while_p.bind(
            *cond_hoisted, *cond_consts, *body_hoisted, *body_consts, *init,
            cond_jaxpr=cond_b, body_jaxpr=body_b, cond_nconsts=len(cond_hoisted) + cond_nconsts,
            body_nconsts=len(body_hoisted) + body_nconsts,
        )
        return outs, carry_dims(batched)
    outs = _while_batched_predicate(cond_b, body_b, cond_consts, body_consts, init)
    return outs, [0] * len(outs)


def _while_batched_predicate(cond_b: ClosedJaxpr, body_b: ClosedJaxpr, cond_consts: list,
                             body_consts: list, init: list) -> list:
    """Loop while any example's predicate holds; only those examples take the body's step."""
    n_cc, n_bc = len(cond_consts), len(body_consts)

    def any_cond(*args):
        return [reduce_or(_eval(cond_b, args)[0], (0,))]

    def select_body(*args):
        cc, bc, carry = _split(args, [n_cc, n_bc])
        active = _eval(cond_b, [*cc, *carry])[0]
        stepped = _eval(body_b, [*bc, *carry])
        return [_select_per_example(active, [old, new]) for old, new in zip(carry, stepped)]

    cond_avals = [get_aval(v) for v in (*cond_consts, *init)]
    body_avals = [get_aval(v) for v in (*cond_consts, *body_consts, *init)]
    cond_closed, cond_hoisted = _trace(any_cond, cond_avals, "while_cond_any")
    body_closed, body_hoisted = _trace(select_body, body_avals, "while_body_select")
    return while_p.bind(
        *cond_hoisted, *cond_consts, *body_hoisted, *cond_consts, *body_consts, *init,
        cond_jaxpr=cond_closed, body_jaxpr=body_closed,
        cond_nconsts=len(cond_hoisted) + n_cc, body_nconsts=len(body_hoisted) + n_cc + n_bc,
    )


while_p.impl = _while_impl
while_p.abstract_eval = _while_abstract_eval
while_p.jvp = _while_jvp
while_p.vjp = _while_vjp
while_p.batch = _while_batch


# Reverse mode (grad, vjp) uses this instead of the vjp rule, so that it fails before any
# work is done.
reverse_rules[while_p] = _while_reverse


# --------------------------------------------------------------------------------------------
# The lax functions: fori_loop and while_loop
# --------------------------------------------------------------------------------------------


def fori_loop(lower: Any, upper: Any, body_fun: Callable, init_val: Any, *,
              unroll: int | bool | None = None) -> Any:
    """`val = body_fun(i, val)` for `i` in `range(lower, upper)`; returns the final `val`.

    With concrete bounds (Python ints, or concrete arrays) this is a `scan` of
    `upper - lower` steps, so it is reverse-differentiable. With traced bounds (e.g. jit
    arguments) it is a `while_loop`: forward-differentiable only.

    Args:
      lower, upper: integer scalars.
      body_fun: `body_fun(i, val) -> val`, keeping `val`'s structure, shapes and dtypes;
        `i` is an integer scalar array.
      init_val: the initial value, a pytree of arrays.
      unroll: accepted for JAX compatibility; no effect.

    Returns:
      The value after the last iteration (`init_val` when `upper <= lower`).

    Example:
      >>> fori_loop(0, 5, lambda i, total: total + i, 0)   # 0+1+2+3+4
      Array(10, dtype=int32, weak_type=True)
    """
    dtype = _bound_dtype(lower, upper)
    lo, hi = _static_int(lower), _static_int(upper)
    if lo is not None and hi is not None:
        # Known bounds count as Python ints, whatever their type (as in JAX): `i` is weak.
        one = ArrayImpl(np.asarray(1, _dtypes.default_int()), True)

        def scan_step(carry, _):
            i, val = carry
            return (add(i, one), body_fun(i, val)), None

        start = ArrayImpl(np.asarray(lo, one.dtype), True)
        (_, result), _ = scan(scan_step, (start, init_val), None, length=hi - lo if hi > lo else 0)
        return result

    one = ArrayImpl(np.asarray(1, dtype), True)  # weak: `i` keeps the type of `lower`

    def keep_going(carry):
        return lt(carry[0], carry[1])

    def while_step(carry):
        i, stop, val = carry
        return add(i, one), stop, body_fun(i, val)

    # As in JAX, `i` starts as `lower` itself (weakly typed if it is), converted only when
    # its dtype differs from the loop's.
    bounds = [b if get_aval(b).dtype == dtype else convert_element_type(b, dtype)
              for b in (lower, upper)]
    _, _, result = while_loop(keep_going, while_step, (*bounds, init_val))
    return result


def _bound_dtype(lower: Any, upper: Any) -> np.dtype:
    avals = [_scalar_aval(b, "fori_loop", name) for b, name in ((lower, "lower"),
                                                                 (upper, "upper"))]
    if any(a.dtype.kind not in "iu" for a in avals):
        raise TypeError(
            "fori_loop: lower and upper must be integers, got "
            f"{avals[0].str_short()} and {avals[1].str_short()}"
        )
    return _dtypes.promote_types(*[(a.dtype, a.weak_type) for a in avals])[0]


def _static_int(x: Any) -> int | None:
    """The Python int value of a bound, or None when it is traced (not known now)."""
    if isinstance(x, Tracer):
        try:
            x = x.concrete_value()
        except core.ConcretizationTypeError:
            return None
    return int(np.asarray(x._value if type(x) is ArrayImpl else x))


def while_loop(cond_fun: Callable, body_fun: Callable, init_val: Any) -> Any:
    """`val = body_fun(val)` while `cond_fun(val)`; returns the final `val`.

    One primitive, compiled as a loop by jit. Forward-mode differentiable (jvp, jacfwd);
    reverse mode raises a TypeError (as in JAX): use `scan` or `fori_loop` with static
    bounds for that. Under vmap with a per-example condition, the loop runs until every
    example is done, and examples that are done keep their value.

    Args:
      cond_fun: `cond_fun(val) -> bool scalar`.
      body_fun: `body_fun(val) -> val`, keeping `val`'s structure, shapes and dtypes.
      init_val: the initial value, a pytree of arrays.

    Returns:
      The value for which `cond_fun` first returned False.

    Example:
      >>> while_loop(lambda v: v < 100, lambda v: v * 2, 1)
      Array(128, dtype=int32, weak_type=True)
    """
    for fun, name in ((cond_fun, "cond_fun"), (body_fun, "body_fun")):
        if not callable(fun):
            raise TypeError(f"while_loop: {name} must be callable, got {type(fun).__name__}")
    leaves, tree = _array_leaves(init_val, "init_val", "while_loop")
    cond_what = f"while_loop cond_fun ({_fun_name(cond_fun)})"
    body_what = f"while_loop body_fun ({_fun_name(body_fun)})"
    while True:
        avals = [get_aval(x) for x in leaves]
        cond_closed, cond_hoisted, _ = _trace_fun(
            lambda xs: cond_fun(tree_unflatten(tree, xs)), avals, cond_what)
        _check_predicate(cond_what, cond_closed.out_avals)
        body_closed, body_hoisted, out_tree = _trace_fun(
            lambda xs: body_fun(tree_unflatten(tree, xs)), avals, body_what)
        _check_carry_tree(body_what, tree, out_tree)
        promoted = _promote_weak_carry(leaves, avals, body_closed.out_avals, strengthen=True)
        if promoted is None:
            break
        leaves = promoted
    _check_carry_types(body_what, init_val, "init_val", avals, body_closed.out_avals)
    outs = while_p.bind(
        *cond_hoisted, *body_hoisted, *leaves, cond_jaxpr=cond_closed, body_jaxpr=body_closed,
        cond_nconsts=len(cond_hoisted), body_nconsts=len(body_hoisted),
    )
    return tree_unflatten(tree, outs)


def _check_predicate(what: str, out_avals: Sequence[ShapedArray]) -> None:
    if len(out_avals) != 1 or out_avals[0].shape != () or out_avals[0].dtype.kind != "b":
        got = ", ".join(a.str_short() for a in out_avals) or "nothing"
        raise TypeError(f"{what} must return a boolean scalar, but got output type(s) [{got}]; "
                        "reduce an array condition with jnp.all / jnp.any")
