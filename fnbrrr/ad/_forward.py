"""Forward mode: `JVPTrace` and `JVPTracer`, `jvp_flat` and `jvp`, and `linearize` (jvp with the
tangent half staged into IR)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fnbrrr import core
from fnbrrr.ad._helpers import (
    _as_array,
    _avals,
    _checked_inputs,
    _concrete,
    _derivatives_out,
    _flatten_fun,
    _fun_name,
    _instantiate,
    _instantiate_all,
    _is_float,
    _LazyPaths,
    _strip_tracers,
    _zeros,
)
from fnbrrr.ad_util import Zero
from fnbrrr.core import Jaxpr, Primitive, ShapedArray, Trace, Tracer, get_aval, new_main
from fnbrrr.tree_util import PyTreeDef, leaf_paths, tree_flatten, tree_unflatten

# --------------------------------------------------------------------------------------------
# Forward mode: JVPTrace
# --------------------------------------------------------------------------------------------


class JVPTracer(Tracer):
    """A value being differentiated in forward mode: its primal and its tangent.

    `tangent` is an array of the primal's shape and dtype, or a symbolic `Zero`.
    """

    __slots__ = ("primal", "tangent")

    def __init__(self, trace: JVPTrace, primal, tangent):
        self._trace = trace
        self.primal = primal
        self.tangent = tangent

    @property
    def aval(self) -> ShapedArray:
        return get_aval(self.primal)

    def concrete_value(self) -> np.ndarray:
        return _concrete(self.primal)


class JVPTrace(Trace):
    """Forward-mode differentiation: each primitive is replaced by its `jvp` rule."""

    def pure(self, val):
        return JVPTracer(self, val, Zero(get_aval(val)))

    lift = pure

    def process_primitive(self, primitive, tracers, params):
        primals = [t.primal for t in tracers]
        tangents = [t.tangent for t in tracers]
        if not primitive.differentiable or all(type(t) is Zero for t in tangents):
            outs = primitive.bind(*primals, **params)
            outs = outs if primitive.multiple_results else [outs]
            return [JVPTracer(self, o, Zero(get_aval(o))) for o in outs]
        if primitive.jvp is None:
            raise NotImplementedError(
                f"forward-mode differentiation rule (jvp) for primitive '{primitive.name}' is "
                "not implemented"
            )
        primal_out, tangent_out = primitive.jvp(primals, tangents, **params)
        if not primitive.multiple_results:
            primal_out, tangent_out = [primal_out], [tangent_out]
        return [
            JVPTracer(self, p, _checked_tangent(primitive, p, t))
            for p, t in zip(primal_out, tangent_out)
        ]


def _checked_tangent(primitive: Primitive, primal, tangent):
    """The rule's tangent, or a Zero for integer outputs; shape/dtype mismatches are bugs."""
    aval = get_aval(primal)
    if not _is_float(aval) or tangent is None:
        return Zero(aval)
    if type(tangent) is Zero:
        return tangent
    t_aval = get_aval(tangent)
    if t_aval.shape != aval.shape or t_aval.dtype != aval.dtype:
        raise TypeError(
            f"internal error: the jvp rule of primitive '{primitive.name}' returned a tangent "
            f"{t_aval.str_short()} for an output {aval.str_short()}; a tangent must have its "
            "primal's shape and dtype"
        )
    return tangent


def _jvp_core(fun: Callable, primals: Sequence, tangents: Sequence):
    """Run `fun` on JVP tracers. Returns (primals_out, tangents_out (Zero allowed), main)."""
    with new_main(JVPTrace) as main:
        trace = JVPTrace(main)
        tracers = [JVPTracer(trace, p, t) for p, t in zip(primals, tangents)]
        outs = fun(*tracers)
        out_tracers = [trace.full_raise(o) for o in outs]
    return [t.primal for t in out_tracers], [t.tangent for t in out_tracers], main


def jvp_flat(fun: Callable, primals: Sequence, tangents: Sequence) -> tuple[list, list]:
    """Forward mode on flat lists: `fun(*primals) -> list`; tangents may be symbolic `Zero`s.

    Args:
      fun: a function of `len(primals)` arrays returning a list of arrays.
      primals: the point to differentiate at.
      tangents: one tangent per primal (an array of its shape and dtype, or a `Zero`).

    Returns:
      `(primals_out, tangents_out)`, lists; every tangent out is a real array.

    Example:
      >>> jvp_flat(lambda x: [lax.sin(x)], [0.0], [1.0])[1]
      [Array(1., dtype=float32, weak_type=True)]
    """
    primals_out, tangents_out, _ = _jvp_core(fun, primals, tangents)
    return primals_out, _instantiate_all(tangents_out, _avals(primals_out))


def jvp(fun: Callable, primals: Sequence, tangents: Sequence, has_aux: bool = False) -> tuple:
    """Forward-mode Jacobian-vector product of `fun` at `primals` along `tangents`.

    Args:
      fun: a function of `len(primals)` positional arguments (pytrees of arrays) returning a
        pytree of arrays (or `(output, aux)` with `has_aux`).
      primals: a tuple or list with the arguments.
      tangents: a tuple or list of the same structure, with the primals' shapes and dtypes.
      has_aux: `fun` returns `(output, aux)`; aux is returned undifferentiated.

    Returns:
      `(primals_out, tangents_out)`, or `(primals_out, tangents_out, aux)` with `has_aux`.

    Example:
      >>> jvp(jnp.sin, (0.0,), (2.0,))
      (Array(0., dtype=float32, weak_type=True), Array(2., dtype=float32, weak_type=True))
    """
    flat_p, flat_t, in_tree = _flatten_jvp_args(fun, primals, tangents)
    flat_fun, store = _flatten_fun(fun, in_tree, has_aux)
    out_p, out_t, main = _jvp_core(flat_fun, flat_p, flat_t)
    out_t = _derivatives_out(out_t, _avals(out_p))
    out_tree = store["out_tree"]
    result = (
        tree_unflatten(out_tree, [_as_array(p) for p in out_p]),
        tree_unflatten(out_tree, out_t),
    )
    if has_aux:
        return (*result, _strip_tracers(store["aux"], main))
    return result


def _flatten_jvp_args(fun, primals, tangents) -> tuple[list, list, PyTreeDef]:
    """jvp's primals and tangents as checked flat lists (Zero tangents for integer primals)."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError(
            "primal and tangent arguments to jvp must be tuples or lists with one entry per "
            f"positional argument of {_fun_name(fun)}; found {type(primals).__name__} and "
            f"{type(tangents).__name__}"
        )
    if len(primals) != len(tangents):
        raise TypeError(
            f"jvp: primals has {len(primals)} entries but tangents has {len(tangents)}; "
            "they must have one entry per positional argument each"
        )
    flat_p, in_tree = tree_flatten(tuple(primals))
    flat_t, t_tree = tree_flatten(tuple(tangents))
    if in_tree != t_tree:
        raise TypeError(
            "primal and tangent arguments to jvp must have the same tree structure; primals "
            f"have {in_tree} and tangents have {t_tree}"
        )
    paths = _LazyPaths(lambda: leaf_paths(tuple(primals), "primals"))
    flat_p = _checked_inputs(flat_p, paths, "jvp")
    flat_t = [
        _check_tangent_arg(p, t, paths, i, "jvp") for i, (p, t) in enumerate(zip(flat_p, flat_t))
    ]
    return flat_p, flat_t, in_tree


def _check_tangent_arg(primal, tangent, paths: _LazyPaths, i: int, what: str):
    """The user's tangent as an array, checked against its primal (Zero for integer primals)."""
    p_aval = get_aval(primal)
    try:
        t_aval = get_aval(tangent)
    except TypeError:
        raise TypeError(
            f"{what}: the tangent at {paths[i]} is a {type(tangent).__name__}, not an array"
        ) from None
    if t_aval.shape != p_aval.shape:
        raise ValueError(
            f"{what}: primal and tangent arguments must have equal shapes, but at {paths[i]} the "
            f"primal is {p_aval.str_short()} and the tangent {t_aval.str_short()}"
        )
    if not _is_float(p_aval):
        return Zero(p_aval)  # integer/bool inputs have no tangent space
    if t_aval.dtype != p_aval.dtype:
        raise TypeError(
            f"{what}: primal and tangent arguments must have equal dtypes, but at {paths[i]} the "
            f"primal is {p_aval.str_short()} and the tangent {t_aval.str_short()}; convert the "
            f"tangent with .astype({p_aval.dtype.name})"
        )
    return _as_array(tangent)


# --------------------------------------------------------------------------------------------
# linearize: jvp with the tangent half staged into IR, the primal half evaluated once
# --------------------------------------------------------------------------------------------


def linearize(fun: Callable, *primals) -> tuple[Any, Callable]:
    """Evaluate `fun` at `primals` and return its linear approximation there.

    The primal computation runs once, now; `f_jvp(*tangents)` runs only the tangent work,
    from a recorded program whose constants are the residuals it needs.

    Args:
      fun: a function of pytrees of arrays.
      *primals: the point of linearisation.

    Returns:
      `(primals_out, f_jvp)` where `f_jvp(*tangents) == jvp(fun, primals, tangents)[1]`.

    Example:
      >>> y, f_jvp = linearize(jnp.sin, 0.5)
      >>> f_jvp(2.0)   # 2 * cos(0.5)
      Array(1.7551651, dtype=float32, weak_type=True)
    """
    name = _fun_name(fun)
    flat_p, in_tree = tree_flatten(primals)
    paths = _LazyPaths(lambda: leaf_paths(primals, "primals"))
    flat_p = _checked_inputs(flat_p, paths, "linearize")
    flat_fun, store = _flatten_fun(fun, in_tree)
    out_p, jaxpr, consts = _linearize_flat(flat_fun, flat_p, f"linearize({name})")
    out_tree = store["out_tree"]

    def f_jvp(*tangents):
        flat_t, t_tree = tree_flatten(tangents)
        if t_tree != in_tree:
            raise TypeError(
                f"linearize({name}): the linearized function takes tangents with the "
                f"structure of the primals, {in_tree}; got {t_tree}"
            )
        flat_t = [
            _instantiate(_check_tangent_arg(p, t, paths, i, "linearized function"), get_aval(p))
            for i, (p, t) in enumerate(zip(flat_p, flat_t))
        ]
        out_t = core.eval_jaxpr(jaxpr, consts, *flat_t)
        return tree_unflatten(out_tree, _derivatives_out(out_t, out_avals))

    out_avals = _avals(out_p)
    return tree_unflatten(out_tree, [_as_array(p) for p in out_p]), f_jvp


def _linearize_flat(flat_fun: Callable, flat_p: list, name: str) -> tuple[list, Jaxpr, list]:
    """`(primals_out, jaxpr, consts)`: the outputs now, the map tangents -> tangents_out as IR."""
    in_avals = _avals(flat_p)
    builder = core.JaxprBuilder(name)
    # A non-dynamic staging trace below the JVP trace: operations on tangents are recorded,
    # operations on primals alone run now (concretely, so Python control flow works).
    with new_main(core.StagingTrace, builder) as staging_main:
        staging = core.StagingTrace(staging_main)
        tangent_args = [staging.new_arg(a) for a in in_avals]
        tangents = [t if _is_float(a) else Zero(a) for t, a in zip(tangent_args, in_avals)]
        out_p, out_t = jvp_flat(flat_fun, flat_p, tangents)
        jaxpr, consts = builder.to_jaxpr(tangent_args, [staging.full_raise(t) for t in out_t])
        # A rule that binds primals and tangents in one equation (jit, scan, cond...) leaves
        # its primal outputs staged: compute them from the recording, with zero tangents.
        staged = [i for i, p in enumerate(out_p)
                  if isinstance(p, Tracer) and p._trace.main is staging_main]
        if staged:
            primal_jaxpr, primal_consts = builder.to_jaxpr(
                tangent_args, [out_p[i] for i in staged])
    if staged:
        primal_jaxpr, primal_consts = core.eliminate_dead_code(primal_jaxpr, primal_consts)
        values = core.eval_jaxpr(primal_jaxpr, primal_consts, *[_zeros(a) for a in in_avals])
        out_p = list(out_p)
        for i, value in zip(staged, values):
            out_p[i] = value
    jaxpr, consts = core.eliminate_dead_code(jaxpr, consts)
    return out_p, jaxpr, consts
