"""Controlling derivatives: `stop_gradient`, `custom_jvp`, `custom_vjp` and `checkpoint` (remat).

Each is a primitive with its rules beside it:

* `stop_gradient` — the identity, marked non-differentiable.
* `custom_jvp_call`, `custom_vjp_call`, `checkpoint` — *call primitives*: they hold the traced
  program of the user's function as the `call_jaxpr` param, and a transformation either uses
  the user's rule or works on that program. `jit` inlines the program (see
  `fnbrrr.jit.passes.INLINABLE`): custom rules matter only to transformations.

Values the user's function closes over that are tracers of an enclosing transformation are
*hoisted* by `core.closure_convert`: they become the first `num_consts` inputs of the call, so
every trace sees them as ordinary inputs. A user rule still closes over the original values;
when a transformation owns one of them (it differentiates or batches a closed-over value),
calling the rule would mix levels, so that transformation falls back to the function body
(`_consts_untouched`).

Reverse mode reaches the custom rules through `fnbrrr.ad.reverse_rules`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from fnbrrr import core
from fnbrrr.ad import (
    _as_array,
    _avals,
    _checked_input,
    _checked_inputs,
    _concrete,
    _fun_name,
    _instantiate_all,
    _is_float,
    _lax,
    _LazyPaths,
    _leaf_paths,
    _type_summary,
    _vjp_core,
    _vmap,
    _zeros,
    jvp_flat,
    reverse_rules,
)
from fnbrrr.ad_util import Zero, add_tangents, is_zero
from fnbrrr.core import ArrayImpl, ClosedJaxpr, Primitive, ShapedArray, Tracer, get_aval
from fnbrrr.tree_util import (
    PyTreeDef,
    tree_flatten,
    tree_map,
    tree_structure,
    tree_unflatten,
)

__all__ = [
    "checkpoint",
    "checkpoint_p",
    "custom_jvp",
    "custom_jvp_call_p",
    "custom_vjp",
    "custom_vjp_call_p",
    "remat",
    "stop_gradient",
    "stop_gradient_p",
]

# --------------------------------------------------------------------------------------------
# stop_gradient
# --------------------------------------------------------------------------------------------

# Marked non-differentiable so that every transformation treats its output as a constant
# (zero derivative of any order); the rules below say the same for code that calls them.
stop_gradient_p = Primitive("stop_gradient", differentiable=False)
stop_gradient_p.impl = lambda x: x
stop_gradient_p.abstract_eval = lambda x: x
stop_gradient_p.jvp = lambda primals, tangents: (
    stop_gradient_p.bind(primals[0]),
    Zero(get_aval(primals[0])),
)
stop_gradient_p.vjp = lambda ct, ans, x: [None]
stop_gradient_p.batch = lambda vals, dims: (stop_gradient_p.bind(vals[0]), dims[0])
stop_gradient_p.doc = "identity on values; its derivative (of any order) is zero"


def stop_gradient(x: Any) -> Any:
    """The identity on values, whose derivative (of any order) is zero; works on pytrees.

    Args:
      x: an array or a pytree of arrays; non-float leaves pass through unchanged.

    Returns:
      `x`, with every float leaf cut off from differentiation.

    Example:
      >>> grad(lambda x: x * stop_gradient(x))(3.0)   # d/dx of x * c, c = 3
      Array(3., dtype=float32)
    """

    def stop(leaf):
        try:
            aval = get_aval(leaf)
        except TypeError:
            return leaf
        return stop_gradient_p.bind(leaf) if _is_float(aval) else leaf

    return tree_map(stop, x)


# --------------------------------------------------------------------------------------------
# Call primitives: a sub-program (ClosedJaxpr) applied to arguments
# --------------------------------------------------------------------------------------------


def _call_primitive(name: str) -> Primitive:
    p = Primitive(name, multiple_results=True)
    p.impl = _call_impl
    p.abstract_eval = _call_abstract_eval
    return p


def _call_impl(*values, call_jaxpr: ClosedJaxpr, **_):
    args = [ArrayImpl(v, a.weak_type) for v, a in zip(values, call_jaxpr.in_avals)]
    return [_concrete(o) for o in _eval_call(call_jaxpr, args)]


def _call_abstract_eval(*avals, call_jaxpr: ClosedJaxpr, **_):
    expected = call_jaxpr.in_avals
    if len(avals) != len(expected) or any(
        a.shape != e.shape or a.dtype != e.dtype for a, e in zip(avals, expected)
    ):
        raise TypeError(
            "internal error: a call primitive was applied to "
            f"({', '.join(a.str_short() for a in avals)}) but its program takes "
            f"({', '.join(a.str_short() for a in expected)})"
        )
    return list(call_jaxpr.out_avals)


def _eval_call(call_jaxpr: ClosedJaxpr, args: Sequence) -> list:
    return core.eval_jaxpr(call_jaxpr.jaxpr, call_jaxpr.consts, *args)


def _body(call_jaxpr: ClosedJaxpr) -> Callable:
    """The call's program as a function of flat arrays."""

    def body(*args):
        return _eval_call(call_jaxpr, args)

    return body


def _stage_call(flat_fun: Callable, flat_args: Sequence, name: str):
    """Trace `flat_fun` at the avals of `flat_args`; returns (ClosedJaxpr, hoisted tracers)."""
    jaxpr, consts = core.trace_to_jaxpr(flat_fun, _avals(flat_args), name)
    return core.closure_convert(jaxpr, consts)


def _batch_call_jaxpr(call_jaxpr: ClosedJaxpr, vals: Sequence, dims: Sequence):
    """The program mapped over `dims` (outputs batched along axis 0), for the values `vals`.

    Returns `(closed_jaxpr, hoisted)`; the new program takes `(*hoisted, *vals)` (hoisted is
    non-empty only when a rule inside closes over a tracer of an enclosing transformation).
    """
    size = next(get_aval(v).shape[d] for v, d in zip(vals, dims) if d is not None)

    def batched(*args):
        return _vmap(_body(call_jaxpr), in_axes=tuple(dims), axis_size=size)(*args)

    return _stage_call(batched, vals, "vmap")


def _jvp_call_jaxpr(call_jaxpr: ClosedJaxpr, nonzero: Sequence[bool]):
    """The program `(primals, nonzero tangents) -> (outs, tangents out)`, and its hoisted
    closure values (inputs that come first, as for `_batch_call_jaxpr`)."""
    in_avals = call_jaxpr.in_avals
    n = len(in_avals)

    def jvp_program(*args):
        tangent_args = iter(args[n:])
        tangents = [next(tangent_args) if nz else Zero(a) for nz, a in zip(nonzero, in_avals)]
        outs, tangents_out = jvp_flat(_body(call_jaxpr), args[:n], tangents)
        return [*outs, *tangents_out]

    tangent_avals = [a for a, nz in zip(in_avals, nonzero) if nz]
    jaxpr, consts = core.trace_to_jaxpr(jvp_program, [*in_avals, *tangent_avals], "jvp")
    return core.closure_convert(jaxpr, consts)


def _reverse_through_body(call_jaxpr: ClosedJaxpr, values: Sequence):
    """A reverse rule result that differentiates the call's program itself."""
    outs, backward, _ = _vjp_core(_body(call_jaxpr), values)
    return outs, backward


def _vjp_from_reverse_rule(reverse_rule: Callable) -> Callable:
    """A `vjp` rule for code that calls `prim.vjp` directly, from the primitive's reverse rule."""

    def vjp_rule(ct, ans, *primals, **params):
        _, backward = reverse_rule(list(primals), [True] * len(primals), **params)
        return backward(ct)

    return vjp_rule


def _consts_untouched(values: Sequence, rule: Callable, num_consts: int) -> bool:
    """Whether the hoisted closure values reach the rule unchanged.

    A user rule closes over the original objects. When the transformation now applying the
    rule owns one of them (it is differentiating or batching a closed-over value), the values
    it passes differ from the originals, and calling the rule would mix levels; the caller
    then falls back to transforming the function body.
    """
    return all(v is c for v, c in zip(values[:num_consts], rule.closed_over))


# --------------------------------------------------------------------------------------------
# Staging a user's function for custom_jvp / custom_vjp
# --------------------------------------------------------------------------------------------


class _StagedCall(NamedTuple):
    """A call of a custom_jvp/custom_vjp function, traced: what its rules need."""

    args: tuple  # all positional arguments (keywords resolved)
    dyn_idx: list[int]  # positions of the differentiable arguments
    dyn: tuple  # the differentiable arguments
    flat: list  # their leaves, as arrays: the call's inputs after the hoisted ones
    in_tree: PyTreeDef  # the structure of `dyn`
    out_tree: PyTreeDef  # the structure of the function's output
    call_jaxpr: ClosedJaxpr  # the function's program
    hoisted: list  # tracer closure values: the call's first inputs


def _stage_user_function(fun: Callable, args: tuple, nondiff_argnums: tuple, what: str):
    """Trace `fun(*args)` with the non-differentiable arguments fixed; a `_StagedCall`."""
    name = _fun_name(fun)
    dyn_idx, dyn, flat, in_tree = _flat_args_of(fun, args, nondiff_argnums, what)
    store: dict[str, Any] = {}

    def flat_fun(*leaves):
        out = fun(*_with_dyn(args, dyn_idx, tree_unflatten(in_tree, leaves)))
        out_flat, store["out_tree"] = tree_flatten(out)
        return out_flat

    call_jaxpr, hoisted = _stage_call(flat_fun, flat, name)
    return _StagedCall(args, dyn_idx, dyn, flat, in_tree, store["out_tree"], call_jaxpr, hoisted)


def _resolve_kwargs(fun, args, kwargs) -> tuple:
    """Keyword arguments moved into their positions (custom_jvp/custom_vjp take them so)."""
    if not kwargs:
        return tuple(args)
    try:
        bound = inspect.signature(fun).bind(*args, **kwargs)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{_fun_name(fun)}: {e}") from None
    bound.apply_defaults()
    if bound.kwargs:
        raise TypeError(
            f"{_fun_name(fun)}: keyword arguments {sorted(bound.kwargs)} could not be resolved "
            "to positions; pass them positionally"
        )
    return tuple(bound.args)


def _flat_args_of(fun, args: tuple, nondiff_argnums: tuple, what: str):
    """Split `args` into the differentiable ones (flattened, checked) and the rest."""
    name = _fun_name(fun)
    for i in nondiff_argnums:
        if not -len(args) <= i < len(args):
            raise TypeError(
                f"{what} function {name}: nondiff_argnums contains {i}, but the function was "
                f"called with {len(args)} positional arguments"
            )
    nondiff = {i % len(args) for i in nondiff_argnums}
    dyn_idx = [i for i in range(len(args)) if i not in nondiff]
    dyn = tuple(args[i] for i in dyn_idx)
    flat, in_tree = tree_flatten(dyn)
    paths = _LazyPaths(lambda: _leaf_paths(dyn, "args"))
    flat = _checked_inputs(flat, paths, f"{what} function {name}")
    return dyn_idx, dyn, flat, in_tree


def _with_dyn(args: tuple, dyn_idx: list, dyn: Sequence) -> list:
    """`args` with the differentiable ones (at `dyn_idx`) replaced by `dyn`."""
    full = list(args)
    for i, a in zip(dyn_idx, dyn):
        full[i] = a
    return full


def _check_outputs(flat, tree, out_tree, out_avals, what: str) -> list:
    """Leaves of a rule's output, checked against the function's output structure/types."""
    if tree != out_tree:
        raise TypeError(
            f"{what} must have the same container structure as the function's output: got "
            f"{tree}, expected {out_tree}"
        )
    out = []
    for i, (x, aval) in enumerate(zip(flat, out_avals)):
        x = _checked_input(x, f"output leaf {i}", what)
        x_aval = get_aval(x)
        if x_aval.shape != aval.shape or x_aval.dtype != aval.dtype:
            raise TypeError(
                f"{what} must match the function's output shapes and dtypes, but output leaf "
                f"{i} is {x_aval.str_short()} where the function gives {aval.str_short()}"
            )
        out.append(x)
    return out


def _check_pair(result, what: str, pair: str) -> None:
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise TypeError(f"{what} must return a pair {pair}; it returned {_type_summary(result)}")


# --------------------------------------------------------------------------------------------
# custom_jvp
# --------------------------------------------------------------------------------------------

custom_jvp_call_p = _call_primitive("custom_jvp_call")
custom_jvp_call_p.doc = "a function with a user-defined JVP rule (`jvp` param)"


class custom_jvp:  # noqa: N801  (JAX's name)
    """A function with a user-defined forward-mode derivative.

    Decorate the function, then register `rule(primals, tangents) -> (primal_out,
    tangent_out)` with `defjvp`; `primals` and `tangents` are tuples with one entry per
    (differentiable) argument. jvp uses the rule; grad/vjp differentiate it in reverse (the
    transpose of `tangents -> tangent_out`); vmap and jit keep it.

    Args of the constructor:
      fun: the function (pytrees of arrays in and out).
      nondiff_argnums: positions of arguments that are not differentiated (e.g. Python
        values); they are passed first to the rule: `rule(*nondiff, primals, tangents)`.

    Values `fun` closes over are constants for the rule; when they are themselves being
    differentiated (or batched) by an enclosing transformation, that transformation works on
    the body of `fun` instead of the rule. Pass such values as arguments to use the rule.

    Example:
      >>> @custom_jvp
      ... def log1pexp(x):
      ...     return jnp.log1p(jnp.exp(x))
      >>> @log1pexp.defjvp
      ... def log1pexp_jvp(primals, tangents):
      ...     (x,), (t,) = primals, tangents
      ...     return log1pexp(x), t / (1.0 + jnp.exp(-x))
      >>> grad(log1pexp)(100.0)
      Array(1., dtype=float32)
    """

    def __init__(self, fun: Callable, nondiff_argnums: Sequence[int] = ()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.jvp: Callable | None = None

    def defjvp(self, jvp: Callable, symbolic_zeros: bool = False) -> Callable:
        """Register `jvp(*nondiff_args, primals, tangents) -> (primal_out, tangent_out)`."""
        if symbolic_zeros:
            raise NotImplementedError("custom_jvp.defjvp(symbolic_zeros=True) is not supported")
        self.jvp = jvp
        return jvp

    def defjvps(self, *jvps: Callable | None) -> None:
        """Register one rule per argument: `jvp_i(tangent_i, primal_out, *primals)`.

        The tangent out is the sum over arguments; `None` marks an argument with zero
        derivative.
        """
        if self.nondiff_argnums:
            raise TypeError("custom_jvp.defjvps cannot be used with nondiff_argnums")

        def rule(primals, tangents):
            ans = self(*primals)
            out = None
            for f, t in zip(jvps, tangents):
                if f is not None:
                    term = f(t, ans, *primals)
                    out = term if out is None else tree_map(add_tangents, out, term)
            return ans, tree_map(lambda a: a * 0, ans) if out is None else out

        self.defjvp(rule)

    def __get__(self, obj, objtype=None):
        return self if obj is None else functools.partial(self, obj)

    def __call__(self, *args, **kwargs):
        name = _fun_name(self.fun)
        if self.jvp is None:
            raise AttributeError(f"No JVP defined for custom_jvp function {name} using defjvp.")
        args = _resolve_kwargs(self.fun, args, kwargs)
        if core.current_level() == 0:  # nothing to transform: just run it
            return self.fun(*args)
        call = _stage_user_function(self.fun, args, self.nondiff_argnums, "custom_jvp")
        nondiff = [args[i] for i in self.nondiff_argnums]
        rule = _flat_jvp_rule(self.jvp, nondiff, call, name)
        rule.closed_over = tuple(call.hoisted)
        outs = custom_jvp_call_p.bind(
            *call.hoisted,
            *call.flat,
            call_jaxpr=call.call_jaxpr,
            jvp=rule,
            num_consts=len(call.hoisted),
        )
        return tree_unflatten(call.out_tree, outs)


def _flat_jvp_rule(user_rule: Callable, nondiff: list, call: _StagedCall, name: str) -> Callable:
    """The user's rule on flat lists: `(primals, tangents) -> (outs, tangents_out)`."""
    what = f"the custom JVP rule of {name}"
    in_tree, out_tree, out_avals = call.in_tree, call.out_tree, call.call_jaxpr.out_avals

    def rule(primals, tangents):
        p = tree_unflatten(in_tree, list(primals))
        t = tree_unflatten(in_tree, list(tangents))
        result = user_rule(*nondiff, p, t)
        _check_pair(result, what, "(primal_out, tangent_out)")
        flat_p, p_tree = tree_flatten(result[0])
        flat_t, t_tree = tree_flatten(result[1])
        outs = _check_outputs(flat_p, p_tree, out_tree, out_avals, f"the primal output of {what}")
        touts = _check_rule_tangents(flat_t, t_tree, out_tree, out_avals, what)
        return outs, touts

    rule.__name__ = f"{name}_jvp"
    return rule


def _check_rule_tangents(flat, tree, out_tree, out_avals, what) -> list:
    """The tangent output of a custom JVP rule, checked; weakly typed scalars are converted."""
    if tree != out_tree:
        raise TypeError(
            f"the tangent output of {what} must have the same container structure as the "
            f"function's output: got {tree}, expected {out_tree}"
        )
    out = []
    for i, (t, aval) in enumerate(zip(flat, out_avals)):
        if not _is_float(aval):
            out.append(Zero(aval))
            continue
        t = _checked_input(t, f"tangent output leaf {i}", what)
        t_aval = get_aval(t)
        if t_aval.shape != aval.shape:
            raise TypeError(
                f"the tangent output of {what} must have the primal output's shapes, but leaf "
                f"{i} is {t_aval.str_short()} where the primal is {aval.str_short()}"
            )
        if t_aval.dtype != aval.dtype:
            if not t_aval.weak_type:
                raise TypeError(
                    f"the tangent output of {what} must have the primal output's dtypes, but "
                    f"leaf {i} is {t_aval.str_short()} where the primal is {aval.str_short()}"
                )
            t = _lax().convert_element_type(t, aval.dtype)
        out.append(t)
    return out


def _custom_jvp_call_jvp(primals, tangents, *, call_jaxpr, jvp, num_consts):
    if not _consts_untouched(primals, jvp, num_consts):
        return jvp_flat(_body(call_jaxpr), primals, tangents)
    args = primals[num_consts:]
    return jvp(list(args), _instantiate_all(tangents[num_consts:], _avals(args)))


def _custom_jvp_call_reverse(values, needs_grad, *, call_jaxpr, jvp, num_consts):
    """Reverse mode through the rule: transpose the linear map tangents -> tangent_out."""
    if not _consts_untouched(values, jvp, num_consts):
        return _reverse_through_body(call_jaxpr, values)
    args = list(values[num_consts:])
    num_outs = len(call_jaxpr.out_avals)

    def primal_and_tangent_outs(*tangents):
        outs, tangents_out = jvp(args, list(tangents))
        return [*outs, *tangents_out]

    # The tangent map is linear: evaluating it at zero tangents records it without cost to the
    # result, and its outputs' primal half is the rule's primal output.
    zero_tangents = [_zeros(get_aval(a)) for a in args]
    outs, backward, _ = _vjp_core(primal_and_tangent_outs, zero_tangents)

    def backward_to_args(cts):
        arg_cts = backward([None] * num_outs + list(cts))
        return [None] * num_consts + arg_cts

    return outs[:num_outs], backward_to_args


def _custom_jvp_call_batch(vals, dims, *, call_jaxpr, jvp, num_consts):
    batched_jaxpr, hoisted = _batch_call_jaxpr(call_jaxpr, vals, dims)
    num_outs = len(batched_jaxpr.out_avals)
    if not _consts_untouched(vals, jvp, num_consts):
        return _eval_call(batched_jaxpr, [*hoisted, *vals]), [0] * num_outs
    arg_dims = list(dims[num_consts:])

    def batched_rule(primals, tangents):
        tangents = _instantiate_all(tangents, _avals(primals))
        outs, tangents_out = _vmap(jvp, in_axes=(arg_dims, arg_dims))(list(primals), tangents)
        return outs, tangents_out

    batched_rule.__name__ = f"vmap({jvp.__name__})"
    batched_rule.closed_over = (*hoisted, *jvp.closed_over)
    outs = custom_jvp_call_p.bind(
        *hoisted,
        *vals,
        call_jaxpr=batched_jaxpr,
        jvp=batched_rule,
        num_consts=len(hoisted) + num_consts,
    )
    return outs, [0] * num_outs


custom_jvp_call_p.jvp = _custom_jvp_call_jvp
custom_jvp_call_p.vjp = _vjp_from_reverse_rule(_custom_jvp_call_reverse)
custom_jvp_call_p.batch = _custom_jvp_call_batch
reverse_rules[custom_jvp_call_p] = _custom_jvp_call_reverse


# --------------------------------------------------------------------------------------------
# custom_vjp
# --------------------------------------------------------------------------------------------

custom_vjp_call_p = _call_primitive("custom_vjp_call")
custom_vjp_call_p.doc = "a function with a user-defined VJP (`fwd`, `bwd` params)"


class custom_vjp:  # noqa: N801  (JAX's name)
    """A function with a user-defined reverse-mode derivative.

    Register `fwd(*args) -> (out, residuals)` and `bwd(residuals, g) -> tuple` (one cotangent
    per argument, `None` for zero) with `defvjp`. grad/vjp use them; vmap and jit keep them;
    forward mode (jvp, jacfwd, hessian) raises a TypeError, as in JAX.

    Args of the constructor:
      fun: the function (pytrees of arrays in and out).
      nondiff_argnums: positions of non-differentiated arguments; `bwd` receives them first:
        `bwd(*nondiff, residuals, g)`, and returns cotangents for the other arguments only.

    Example:
      >>> @custom_vjp
      ... def clip_gradient(x):
      ...     return x
      >>> clip_gradient.defvjp(lambda x: (x, None), lambda _, g: (jnp.clip(g, -1, 1),))
      >>> grad(lambda x: 5 * clip_gradient(x))(2.0)
      Array(1., dtype=float32)
    """

    def __init__(self, fun: Callable, nondiff_argnums: Sequence[int] = ()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None

    def defvjp(
        self,
        fwd: Callable,
        bwd: Callable,
        symbolic_zeros: bool = False,
        optimize_remat: bool = False,
    ) -> None:
        """Register the forward pass `fwd(*args) -> (out, res)` and `bwd(res, g) -> tuple`."""
        if symbolic_zeros:
            raise NotImplementedError("custom_vjp.defvjp(symbolic_zeros=True) is not supported")
        self.fwd, self.bwd = fwd, bwd

    def __get__(self, obj, objtype=None):
        return self if obj is None else functools.partial(self, obj)

    def __call__(self, *args, **kwargs):
        name = _fun_name(self.fun)
        if self.fwd is None:
            raise AttributeError(f"No VJP defined for custom_vjp function {name} using defvjp.")
        args = _resolve_kwargs(self.fun, args, kwargs)
        if core.current_level() == 0:
            return self.fun(*args)
        call = _stage_user_function(self.fun, args, self.nondiff_argnums, "custom_vjp")
        fwd, bwd = _flat_fwd_bwd(self, call, name)
        fwd.closed_over = tuple(call.hoisted)
        outs = custom_vjp_call_p.bind(
            *call.hoisted,
            *call.flat,
            call_jaxpr=call.call_jaxpr,
            fwd=fwd,
            bwd=bwd,
            num_consts=len(call.hoisted),
        )
        return tree_unflatten(call.out_tree, outs)


def _flat_fwd_bwd(cv: custom_vjp, call: _StagedCall, name: str) -> tuple[Callable, Callable]:
    """The user's fwd and bwd on flat lists of leaves.

    `fwd(*leaves) -> (outs, residuals)`; `bwd(residuals, cts) -> one cotangent per leaf (None
    allowed)`. They look up `cv.fwd`/`cv.bwd` when called.
    """
    nondiff = [call.args[i] for i in cv.nondiff_argnums]
    out_avals = call.call_jaxpr.out_avals
    in_avals = _avals(call.flat)
    arg_trees = [tree_structure(a) for a in call.dyn]
    res_tree: list[PyTreeDef] = []  # the residuals' structure: set by fwd, read by bwd

    def fwd(*leaves):
        result = cv.fwd(*_with_dyn(call.args, call.dyn_idx, tree_unflatten(call.in_tree, leaves)))
        what = f"the custom_vjp fwd rule of {name}"
        _check_pair(result, what, "(output, residuals)")
        flat_out, tree = tree_flatten(result[0])
        outs = _check_outputs(flat_out, tree, call.out_tree, out_avals, f"the output of {what}")
        flat_res, tree = tree_flatten(result[1])
        res_tree[:] = [tree]
        res = [_checked_input(r, f"residual leaf {i}", what) for i, r in enumerate(flat_res)]
        return outs, res

    def bwd(res, cts):
        g = tree_unflatten(call.out_tree, _instantiate_all(cts, out_avals))
        result = cv.bwd(*nondiff, tree_unflatten(res_tree[0], list(res)), g)
        return _flat_bwd_output(result, arg_trees, in_avals, f"the custom_vjp bwd rule of {name}")

    fwd.__name__, bwd.__name__ = f"{name}_fwd", f"{name}_bwd"
    return fwd, bwd


def _flat_bwd_output(result, arg_trees: list, in_avals: list, what: str) -> list:
    """The cotangents `bwd` returned, one per argument, as checked flat leaves (None: zero)."""
    if not isinstance(result, (tuple, list)) or len(result) != len(arg_trees):
        raise TypeError(
            f"{what} must return a tuple with one cotangent per differentiable argument "
            f"({len(arg_trees)}), in the structure of the arguments (None for zero); it "
            f"returned {_type_summary(result)}"
        )
    leaves: list = []
    for i, (ct, tree) in enumerate(zip(result, arg_trees)):
        if ct is None:
            leaves += [None] * tree.num_leaves
            continue
        try:
            leaves += tree.flatten_up_to(ct)
        except (ValueError, TypeError):
            raise TypeError(
                f"{what} returned a cotangent for argument {i} with structure "
                f"{tree_structure(ct)}, but the argument has structure {tree}"
            ) from None
    return [
        _checked_bwd_leaf(ct, aval, i, what) for i, (ct, aval) in enumerate(zip(leaves, in_avals))
    ]


def _checked_bwd_leaf(ct, aval: ShapedArray, i: int, what: str):
    """One cotangent leaf from `bwd`: None for integer inputs, converted to the input's dtype."""
    if ct is None or not _is_float(aval):
        return None
    ct = _checked_input(ct, f"cotangent leaf {i}", what)
    c_aval = get_aval(ct)
    if c_aval.shape != aval.shape:
        raise ValueError(
            f"{what} returned a cotangent {c_aval.str_short()} for an argument "
            f"{aval.str_short()} (leaf {i}); shapes must match"
        )
    if c_aval.dtype != aval.dtype:
        ct = _lax().convert_element_type(ct, aval.dtype)
    return ct


def _custom_vjp_call_jvp(primals, tangents, *, fwd, **_):
    raise TypeError(
        f"can't apply forward-mode autodiff (jvp) to a custom_vjp function "
        f"({fwd.__name__.removesuffix('_fwd')}): it defines only a reverse-mode rule. Use "
        "grad/vjp/jacrev, or define the function with custom_jvp instead."
    )


def _custom_vjp_call_reverse(values, needs_grad, *, call_jaxpr, fwd, bwd, num_consts):
    if not _consts_untouched(values, fwd, num_consts):
        return _reverse_through_body(call_jaxpr, values)
    outs, res = fwd(*values[num_consts:])
    return outs, lambda cts: [None] * num_consts + bwd(res, list(cts))


def _custom_vjp_call_batch(vals, dims, *, call_jaxpr, fwd, bwd, num_consts):
    batched_jaxpr, hoisted = _batch_call_jaxpr(call_jaxpr, vals, dims)
    out_avals = batched_jaxpr.out_avals
    if not _consts_untouched(vals, fwd, num_consts):
        return _eval_call(batched_jaxpr, [*hoisted, *vals]), [0] * len(out_avals)
    arg_dims = list(dims[num_consts:])

    def batched_fwd(*args):
        return _vmap(fwd, in_axes=tuple(arg_dims))(*args)

    def batched_bwd(res, cts):
        cts = _instantiate_all(cts, out_avals)
        arg_cts = _vmap(bwd)(list(res), cts)
        return [_unbatch_cotangent(c, d) for c, d in zip(arg_cts, arg_dims)]

    batched_fwd.__name__ = fwd.__name__
    batched_fwd.closed_over = (*hoisted, *fwd.closed_over)
    batched_bwd.__name__ = f"vmap({bwd.__name__})"
    outs = custom_vjp_call_p.bind(
        *hoisted,
        *vals,
        call_jaxpr=batched_jaxpr,
        fwd=batched_fwd,
        bwd=batched_bwd,
        num_consts=len(hoisted) + num_consts,
    )
    return outs, [0] * len(out_avals)


def _unbatch_cotangent(ct, dim):
    """A per-example cotangent stacked on axis 0, laid out like its argument (batched at dim)."""
    if ct is None:
        return None
    if dim is None:  # the argument was shared by all examples: its cotangents add up
        return _lax().reduce_sum(ct, (0,))
    from fnbrrr.batching import moveaxis

    return moveaxis(ct, 0, dim)


custom_vjp_call_p.jvp = _custom_vjp_call_jvp
custom_vjp_call_p.vjp = _vjp_from_reverse_rule(_custom_vjp_call_reverse)
custom_vjp_call_p.batch = _custom_vjp_call_batch
reverse_rules[custom_vjp_call_p] = _custom_vjp_call_reverse


# --------------------------------------------------------------------------------------------
# checkpoint (remat)
# --------------------------------------------------------------------------------------------

checkpoint_p = _call_primitive("checkpoint")
checkpoint_p.doc = "a sub-program whose intermediates are recomputed in the backward pass"


def checkpoint(
    fun: Callable,
    *,
    prevent_cse: bool = True,
    policy: Callable | None = None,
    static_argnums: int | Sequence[int] = (),
) -> Callable:
    """Rematerialisation: reverse mode stores only `fun`'s inputs and recomputes the rest.

    Under grad/vjp, the intermediates of `fun` are not kept on the tape; the backward pass
    runs `fun` forward again (under reverse mode) to get them. This trades compute for memory.
    Values are unchanged; outside transformations `fun` simply runs.

    Args:
      fun: a function of pytrees of arrays.
      prevent_cse: kept as a parameter for the compiler (JAX's meaning).
      policy: accepted for JAX compatibility; everything is recomputed.
      static_argnums: positions of non-array arguments (passed through, not traced).

    Returns:
      A function with `fun`'s signature and values.

    Example:
      >>> f = checkpoint(lambda x: jnp.sin(jnp.sin(x)))
      >>> grad(f)(1.0)   # the same number as without checkpoint
      Array(0.36003944, dtype=float32)
    """
    del policy
    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    name = _fun_name(fun)

    @functools.wraps(fun)
    def remat_fun(*args, **kwargs):
        if core.current_level() == 0:
            return fun(*args, **kwargs)
        static_idx = {i % len(args) for i in static if -len(args) <= i < len(args)}
        leaves, in_tree = tree_flatten((args, kwargs))
        dynamic = _is_dynamic_leaves(leaves, in_tree, static_idx, len(args))
        flat = [_as_array(x) for x, d in zip(leaves, dynamic) if d]
        store: dict[str, Any] = {}

        def flat_fun(*dyn_leaves):
            it = iter(dyn_leaves)
            call_args, call_kwargs = tree_unflatten(
                in_tree, [next(it) if d else x for x, d in zip(leaves, dynamic)]
            )
            out_flat, store["out_tree"] = tree_flatten(fun(*call_args, **call_kwargs))
            return out_flat

        call_jaxpr, hoisted = _stage_call(flat_fun, flat, f"checkpoint({name})")
        outs = checkpoint_p.bind(*hoisted, *flat, call_jaxpr=call_jaxpr, prevent_cse=prevent_cse)
        return tree_unflatten(store["out_tree"], outs)

    return remat_fun


remat = checkpoint


def _is_dynamic_leaves(leaves, in_tree, static_idx, nargs) -> list[bool]:
    """Which leaves of `(args, kwargs)` are traced: arrays not inside static arguments."""
    owner = []
    for i in range(nargs):  # leaf positions owned by each positional argument, in order
        owner += [i] * in_tree.children()[0].children()[i].num_leaves
    owner += [None] * (len(leaves) - len(owner))
    return [
        o not in static_idx
        and isinstance(x, (Tracer, ArrayImpl, np.ndarray, np.generic, float, int))
        for x, o in zip(leaves, owner)
    ]


def _checkpoint_jvp(primals, tangents, *, call_jaxpr, **params):
    nonzero = [not is_zero(t) for t in tangents]
    jvp_jaxpr, hoisted = _jvp_call_jaxpr(call_jaxpr, nonzero)
    nonzero_tangents = [t for t in tangents if not is_zero(t)]
    outs = checkpoint_p.bind(*hoisted, *primals, *nonzero_tangents, call_jaxpr=jvp_jaxpr, **params)
    num_outs = len(call_jaxpr.out_avals)
    return outs[:num_outs], outs[num_outs:]


def _checkpoint_vjp(cts, ans, *primals, call_jaxpr, **params):
    # The rematerialisation: run the program forward again, under reverse mode, now.
    _, backward = _reverse_through_body(call_jaxpr, primals)
    return backward(cts)


def _checkpoint_batch(vals, dims, *, call_jaxpr, **params):
    batched_jaxpr, hoisted = _batch_call_jaxpr(call_jaxpr, vals, dims)
    outs = checkpoint_p.bind(*hoisted, *vals, call_jaxpr=batched_jaxpr, **params)
    return outs, [0] * len(outs)


checkpoint_p.jvp = _checkpoint_jvp
checkpoint_p.vjp = _checkpoint_vjp
checkpoint_p.batch = _checkpoint_batch
