"""Automatic differentiation: forward mode (jvp), reverse mode (vjp, grad) and their friends.

Two transformations, each a trace (see `fnbrrr.core`):

* **Forward mode.** A `JVPTracer` carries a primal value and its tangent (or a symbolic
  `Zero`). `JVPTrace.process_primitive` applies the primitive's `jvp` rule. Used by `jvp`,
  `jacfwd` and `linearize`.
* **Reverse mode.** A `ReverseTracer` carries a value and the id of its node on a *tape*.
  `ReverseTrace.process_primitive` evaluates the primitive one level down and records what it
  did; the backward pass walks the tape in reverse, calling each primitive's `vjp` rule. Rules
  bind primitives, so the backward pass is itself traced by whatever transformations are
  active below: grad of grad, `jit` of grad, `vmap` of grad fall out of composition.

Levels keep nested derivatives apart (no perturbation confusion): a tracer of an outer `grad`
seen by an inner one is a constant there.

On top: `grad`, `value_and_grad`, `jvp`, `vjp`, `linearize`, `jacfwd`, `jacrev`, `hessian`,
`stop_gradient`, user-defined derivatives (`custom_jvp`, `custom_vjp`) and rematerialisation
(`checkpoint`). Testing helpers for rule writers live at the end (`jvp_of_primitive`,
`vjp_of_primitive`, `numerical_jvp`, `check_grads`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fnbrrr import core
from fnbrrr.ad_util import Zero, add_tangents, is_zero
from fnbrrr.core import (
    ArrayImpl,
    ClosedJaxpr,
    Jaxpr,
    MainTrace,
    Primitive,
    ShapedArray,
    Trace,
    Tracer,
    get_aval,
    new_main,
)
from fnbrrr.tree_util import (
    PyTreeDef,
    tree_flatten,
    tree_map,
    tree_structure,
    tree_unflatten,
)

__all__ = [
    "JVPTrace",
    "JVPTracer",
    "ReverseTrace",
    "ReverseTracer",
    "check_grads",
    "checkpoint",
    "checkpoint_p",
    "custom_jvp",
    "custom_jvp_call_p",
    "custom_vjp",
    "custom_vjp_call_p",
    "grad",
    "hessian",
    "jacfwd",
    "jacrev",
    "jvp",
    "jvp_flat",
    "jvp_of_primitive",
    "linearize",
    "numerical_jvp",
    "remat",
    "reverse_rules",
    "stop_gradient",
    "stop_gradient_p",
    "value_and_grad",
    "vjp",
    "vjp_flat",
    "vjp_of_primitive",
]

# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _lax():
    # fnbrrr.lax imports this module (for stop_gradient), so it is imported lazily.
    from fnbrrr import lax

    return lax


def _vmap(*args, **kwargs):
    from fnbrrr.batching import vmap

    return vmap(*args, **kwargs)


def _is_float(aval: ShapedArray) -> bool:
    return aval.dtype.kind == "f"


def _zeros(aval: ShapedArray):
    """A real zero array of `aval`'s shape and dtype (staged under jit, concrete otherwise)."""
    return _lax().full(aval.shape, 0, aval.dtype)


def _instantiate(t, aval: ShapedArray):
    """`t`, or zeros of `aval` where `t` is a symbolic zero or None."""
    return _zeros(aval) if is_zero(t) else t


def _as_array(x):
    """`x` as an fnbrrr array or tracer (NumPy arrays and Python scalars are converted)."""
    if isinstance(x, (Tracer, ArrayImpl)):
        return x
    aval = get_aval(x)
    return ArrayImpl(np.asarray(x, aval.dtype), aval.weak_type)


def _fun_name(fun) -> str:
    name = getattr(fun, "__name__", None)
    if name is None and isinstance(fun, functools.partial):
        return _fun_name(fun.func)
    return name or type(fun).__name__


class _LazyPaths:
    """Leaf paths for error messages, computed by `make()` only when one is asked for."""

    __slots__ = ("_make", "_paths")

    def __init__(self, make: Callable[[], list[str]]):
        self._make, self._paths = make, None

    def __getitem__(self, i: int) -> str:
        if self._paths is None:
            self._paths = self._make()
        return self._paths[i]


def _leaf_paths(tree, root: str) -> list[str]:
    """`root[1]['w']`-style paths of the leaves of `tree`, in flattening order."""
    paths: list[str] = []
    _collect_paths(tree, root, paths)
    if len(paths) != len(tree_flatten(tree)[0]):  # an exotic node: fall back to leaf numbers
        return [f"{root} leaf {i}" for i in range(len(tree_flatten(tree)[0]))]
    return paths


def _collect_paths(x, path: str, out: list[str]) -> None:
    if x is None:
        return
    children, treedef = tree_flatten(x, is_leaf=lambda y: y is not x)
    if treedef.num_leaves == 1 and children and children[0] is x:
        out.append(path)
        return
    if isinstance(x, tuple) and hasattr(x, "_fields") and len(x._fields) == len(children):
        labels = [f".{f}" for f in x._fields]
    elif isinstance(x, dict):
        keys = tree_flatten(
            {k: k for k in x} if type(x) is dict else type(x)((k, k) for k in x),
            is_leaf=lambda y: not isinstance(y, dict),
        )[0]
        labels = [f"[{k!r}]" for k in keys] if len(keys) == len(children) else None
    else:
        labels = None
    if labels is None:
        labels = [f"[{i}]" for i in range(len(children))]
    for label, child in zip(labels, children):
        _collect_paths(child, path + label, out)


def _describe(aval: ShapedArray) -> str:
    return aval.str_short()


def _flatten_fun(
    fun: Callable, in_tree: PyTreeDef, has_aux: bool = False, kwargs=None, name: str | None = None
):
    """`fun` on flat leaves: returns (flat_fun, store); store gets 'out_tree' (and 'aux')."""
    store: dict[str, Any] = {}
    kwargs = kwargs or {}
    name = name or _fun_name(fun)

    def flat_fun(*flat_args):
        args = tree_unflatten(in_tree, flat_args)
        out = fun(*args, **kwargs)
        if has_aux:
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise TypeError(
                    f"{name} was transformed with has_aux=True, so it must return a "
                    f"pair (output, auxiliary_data); it returned {_type_summary(out)}"
                )
            out, store["aux"] = out
        out_flat, store["out_tree"] = tree_flatten(out)
        return out_flat

    return flat_fun, store


def _type_summary(x) -> str:
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of length {len(x)}"
    aval = getattr(x, "aval", None)
    if aval is not None:
        return f"an array {aval.str_short()}"
    return f"a value of type {type(x).__name__}"


def _arg_names(fun) -> list[str] | None:
    try:
        params = inspect.signature(fun).parameters.values()
    except (TypeError, ValueError):
        return None
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


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


def _concrete(value) -> np.ndarray:
    if isinstance(value, Tracer):
        return value.concrete_value()
    if type(value) is ArrayImpl:
        return value._value
    return np.asarray(value)


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
            f"{_describe(t_aval)} for an output {_describe(aval)}; a tangent must have its "
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
    return primals_out, [_instantiate(t, get_aval(p)) for p, t in zip(primals_out, tangents_out)]


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
            f"primal is {_describe(p_aval)} and the tangent {_describe(t_aval)}"
        )
    if not _is_float(p_aval):
        return Zero(p_aval)  # integer/bool inputs have no tangent space
    if t_aval.dtype != p_aval.dtype:
        raise TypeError(
            f"{what}: primal and tangent arguments must have equal dtypes, but at {paths[i]} the "
            f"primal is {_describe(p_aval)} and the tangent {_describe(t_aval)}; convert the "
            f"tangent with .astype({p_aval.dtype.name})"
        )
    return _as_array(tangent)


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
    paths = _LazyPaths(lambda: _leaf_paths(tuple(primals), "primals"))
    flat_p = _checked_inputs(flat_p, paths, "jvp")
    flat_t = [
        _check_tangent_arg(p, t, paths, i, "jvp") for i, (p, t) in enumerate(zip(flat_p, flat_t))
    ]
    flat_fun, store = _flatten_fun(fun, in_tree, has_aux)
    out_p, out_t, main = _jvp_core(flat_fun, flat_p, flat_t)
    out_t = [_instantiate(t, get_aval(p)) for p, t in zip(out_p, out_t)]
    out_tree = store["out_tree"]
    result = (
        tree_unflatten(out_tree, [_as_array(p) for p in out_p]),
        tree_unflatten(out_tree, out_t),
    )
    if has_aux:
        return (*result, _strip_tracers(store["aux"], main))
    return result


def _checked_input(x, path: str, what: str):
    """`x` as an array, or a TypeError naming where it came from."""
    try:
        return _as_array(x)
    except TypeError:
        raise TypeError(
            f"{what}: the value at {path} is a {type(x).__name__}, which is not an array; "
            "pass arrays, NumPy arrays or Python scalars (close over other values instead)"
        ) from None


def _checked_inputs(leaves: Sequence, paths: _LazyPaths, what: str) -> list:
    out = []
    for i, x in enumerate(leaves):
        try:
            out.append(_as_array(x))
        except TypeError:
            _checked_input(x, paths[i], what)
    return out


def _strip_tracers(tree, main: MainTrace):
    """Auxiliary outputs with this transformation's tracers replaced by their plain values."""

    def strip(x):
        if isinstance(x, JVPTracer) and x._trace.main is main:
            return x.primal
        if isinstance(x, ReverseTracer) and x._trace.main is main:
            return x.value
        return x

    return tree_map(strip, tree)


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
      Array(1.7551651, dtype=float32)
    """
    flat_p, in_tree = tree_flatten(primals)
    paths = _LazyPaths(lambda: _leaf_paths(primals, "primals"))
    flat_p = _checked_inputs(flat_p, paths, "linearize")
    in_avals = [get_aval(p) for p in flat_p]
    flat_fun, store = _flatten_fun(fun, in_tree)
    builder = core.JaxprBuilder(f"linearize({_fun_name(fun)})")
    # A non-dynamic staging trace below the JVP trace: operations on tangents are recorded,
    # operations on primals alone run now (concretely, so Python control flow works).
    with new_main(core.StagingTrace, builder) as staging_main:
        staging = core.StagingTrace(staging_main)
        tangent_args = [staging.new_arg(a) for a in in_avals]
        tangents = [t if _is_float(a) else Zero(a) for t, a in zip(tangent_args, in_avals)]
        out_p, out_t = jvp_flat(flat_fun, flat_p, tangents)
        jaxpr, consts = builder.to_jaxpr(tangent_args, [staging.full_raise(t) for t in out_t])
    jaxpr, consts = _dead_code_elimination(jaxpr, consts)
    out_tree = store["out_tree"]

    def f_jvp(*tangents):
        flat_t, t_tree = tree_flatten(tangents)
        if t_tree != in_tree:
            raise TypeError(
                f"linearize({_fun_name(fun)}): the linearized function takes tangents with the "
                f"structure of the primals, {in_tree}; got {t_tree}"
            )
        flat_t = [
            _instantiate(_check_tangent_arg(p, t, paths, i, "linearized function"), get_aval(p))
            for i, (p, t) in enumerate(zip(flat_p, flat_t))
        ]
        return tree_unflatten(out_tree, core.eval_jaxpr(jaxpr, consts, *flat_t))

    return tree_unflatten(out_tree, [_as_array(p) for p in out_p]), f_jvp


def _dead_code_elimination(jaxpr: Jaxpr, consts: list) -> tuple[Jaxpr, list]:
    """The same program without unused equations and constants."""
    live = {v for v in jaxpr.outvars if isinstance(v, core.Var)}
    kept = []
    for eqn in reversed(jaxpr.eqns):
        if any(v in live for v in eqn.outvars):
            kept.append(eqn)
            live.update(a for a in eqn.inputs if isinstance(a, core.Var))
    used = [(v, c) for v, c in zip(jaxpr.constvars, consts) if v in live]
    new = Jaxpr([v for v, _ in used], jaxpr.invars, kept[::-1], jaxpr.outvars)
    return new, [c for _, c in used]


# --------------------------------------------------------------------------------------------
# Reverse mode: ReverseTrace and the tape
# --------------------------------------------------------------------------------------------

reverse_rules: dict[Primitive, Callable] = {}
"""Primitives that reverse mode handles specially (custom_jvp/custom_vjp calls).

`rule(values, needs_grad, **params) -> (outs, backward)`: evaluate the primitive on `values`
(a list; `needs_grad[i]` says whether input i is being differentiated) and return its outputs
(a list) and `backward(cts) -> cotangent per input (None allowed)`, where `cts` has one entry
per output (symbolic `Zero` allowed). Used instead of `prim.vjp` when present.
"""


class ReverseTracer(Tracer):
    """A value being differentiated in reverse mode: its value and its tape node.

    `node` is None for values that do not depend on the inputs being differentiated.
    """

    __slots__ = ("value", "node")

    def __init__(self, trace: ReverseTrace, value, node: int | None):
        self._trace = trace
        self.value = value
        self.node = node

    @property
    def aval(self) -> ShapedArray:
        return get_aval(self.value)

    def concrete_value(self) -> np.ndarray:
        return _concrete(self.value)


class _TapeEntry:
    """One recorded primitive application: enough to run its VJP rule later."""

    __slots__ = ("primitive", "params", "in_nodes", "primals", "ans", "out_nodes", "backward")

    def __init__(self, primitive, params, in_nodes, primals, ans, out_nodes, backward=None):
        self.primitive = primitive
        self.params = params
        self.in_nodes = in_nodes
        self.primals = primals
        self.ans = ans
        self.out_nodes = out_nodes
        self.backward = backward


class _Tape:
    """The payload of a reverse-mode MainTrace: recorded entries and a node counter."""

    __slots__ = ("entries", "num_nodes")

    def __init__(self):
        self.entries: list[_TapeEntry] = []
        self.num_nodes = 0

    def new_node(self) -> int:
        self.num_nodes += 1
        return self.num_nodes - 1


class ReverseTrace(Trace):
    """Reverse-mode differentiation: evaluates each primitive below and records it on a tape."""

    def pure(self, val):
        return ReverseTracer(self, val, None)

    lift = pure

    def new_input(self, value) -> ReverseTracer:
        """A tracer for an input being differentiated (integer inputs get no node)."""
        node = self.main.payload.new_node() if _is_float(get_aval(value)) else None
        return ReverseTracer(self, value, node)

    def process_primitive(self, primitive, tracers, params):
        values = [t.value for t in tracers]
        in_nodes = [t.node for t in tracers]
        if not primitive.differentiable or in_nodes.count(None) == len(in_nodes):
            outs = primitive.bind(*values, **params)
            if primitive.multiple_results:
                return [ReverseTracer(self, o, None) for o in outs]
            return [ReverseTracer(self, outs, None)]
        rule = reverse_rules.get(primitive)
        if rule is not None:
            outs, backward = rule(values, [n is not None for n in in_nodes], **params)
        else:
            outs, backward = primitive.bind(*values, **params), None
            outs = outs if primitive.multiple_results else [outs]
        tape: _Tape = self.main.payload
        out_nodes = [tape.new_node() if _is_float(get_aval(o)) else None for o in outs]
        if out_nodes.count(None) == len(out_nodes):
            return [ReverseTracer(self, o, None) for o in outs]
        ans = outs if primitive.multiple_results else outs[0]
        tape.entries.append(
            _TapeEntry(primitive, params, in_nodes, values, ans, out_nodes, backward)
        )
        return [ReverseTracer(self, o, n) for o, n in zip(outs, out_nodes)]


def _backward_pass(tape: _Tape, out_nodes: Sequence, cts: Sequence, in_nodes: Sequence) -> list:
    """Propagate cotangents `cts` of the `out_nodes` back to the `in_nodes` (None = zero)."""
    ct_env: dict[int, Any] = {}
    for node, ct in zip(out_nodes, cts):
        if node is not None and not is_zero(ct):
            ct_env[node] = add_tangents(ct_env.get(node), ct)
    for entry in reversed(tape.entries):
        if not ct_env:
            break
        out_cts = [ct_env.pop(n, None) if n is not None else None for n in entry.out_nodes]
        if all(ct is None for ct in out_cts):
            continue
        in_cts = _apply_vjp(entry, out_cts)
        for node, primal, ct in zip(entry.in_nodes, entry.primals, in_cts):
            if node is None or is_zero(ct):
                continue
            _check_cotangent(entry.primitive, primal, ct)
            ct_env[node] = add_tangents(ct_env.get(node), ct)
    return [None if n is None else ct_env.get(n) for n in in_nodes]


def _apply_vjp(entry: _TapeEntry, out_cts: list) -> Sequence:
    primitive = entry.primitive
    if primitive.multiple_results:
        ct = [Zero(get_aval(o)) if c is None else c for c, o in zip(out_cts, entry.ans)]
    else:
        ct = out_cts[0]
    if entry.backward is not None:
        in_cts = entry.backward(ct if primitive.multiple_results else [ct])
    elif primitive.vjp is None:
        raise NotImplementedError(
            f"reverse-mode differentiation rule (vjp) for primitive '{primitive.name}' is "
            "not implemented"
        )
    else:
        in_cts = primitive.vjp(ct, entry.ans, *entry.primals, **entry.params)
    if len(in_cts) != len(entry.primals):
        raise TypeError(
            f"internal error: the vjp rule of primitive '{primitive.name}' returned "
            f"{len(in_cts)} cotangents for {len(entry.primals)} inputs"
        )
    return in_cts


def _check_cotangent(primitive: Primitive, primal, ct) -> None:
    p_aval, c_aval = get_aval(primal), get_aval(ct)
    if c_aval.shape != p_aval.shape or c_aval.dtype != p_aval.dtype:
        raise TypeError(
            f"internal error: the vjp rule of primitive '{primitive.name}' returned a "
            f"cotangent {_describe(c_aval)} for an input {_describe(p_aval)}; a cotangent "
            "must have its primal's shape and dtype"
        )


def _vjp_core(fun: Callable, primals: Sequence):
    """Run `fun` on reverse tracers; returns (out_values, backward(cts) -> in_cts, main)."""
    with new_main(ReverseTrace, _Tape()) as main:
        trace = ReverseTrace(main)
        tracers = [trace.new_input(p) for p in primals]
        outs = fun(*tracers)
        out_tracers = [trace.full_raise(o) for o in outs]
    tape = main.payload
    in_nodes = [t.node for t in tracers]
    out_nodes = [t.node for t in out_tracers]

    def backward(cts: Sequence) -> list:
        return _backward_pass(tape, out_nodes, cts, in_nodes)

    return [t.value for t in out_tracers], backward, main


def vjp_flat(fun: Callable, primals: Sequence) -> tuple[list, Callable]:
    """Reverse mode on flat lists: `fun(*primals) -> list of arrays`.

    Args:
      fun: a function of `len(primals)` arrays returning a list of arrays.
      primals: the point to differentiate at.

    Returns:
      `(outs, pullback)`; `pullback(cts)` takes one cotangent per output (symbolic `Zero` or
      None allowed) and returns one cotangent per primal (real arrays, zeros where none).

    Example:
      >>> outs, pullback = vjp_flat(lambda x: [lax.sin(x)], [0.0])
      >>> pullback([2.0])
      [Array(2., dtype=float32, weak_type=True)]
    """
    outs, backward, _ = _vjp_core(fun, primals)
    in_avals = [get_aval(p) for p in primals]

    def pullback(cts):
        return [_instantiate(c, a) for c, a in zip(backward(cts), in_avals)]

    return outs, pullback


def vjp(fun: Callable, *primals, has_aux: bool = False) -> tuple:
    """Reverse-mode vector-Jacobian product: evaluate `fun` and return its pullback.

    Args:
      fun: a function of pytrees of arrays returning a pytree of arrays (or `(out, aux)`).
      *primals: the arguments to evaluate at.
      has_aux: `fun` returns `(output, aux)`; aux is returned undifferentiated.

    Returns:
      `(out, vjp_fn)` or `(out, vjp_fn, aux)`. `vjp_fn(ct)` takes a cotangent with `out`'s
      structure, shapes and dtypes and returns a tuple with one cotangent per primal.

    Example:
      >>> y, vjp_fn = vjp(jnp.sin, 0.0)
      >>> vjp_fn(1.0)
      (Array(1., dtype=float32, weak_type=True),)
    """
    flat_p, in_tree = tree_flatten(primals)
    flat_p = _checked_inputs(flat_p, _LazyPaths(lambda: _leaf_paths(primals, "primals")), "vjp")
    flat_fun, store = _flatten_fun(fun, in_tree, has_aux)
    outs, backward, main = _vjp_core(flat_fun, flat_p)
    outs = [_as_array(o) for o in outs]
    out_tree = store["out_tree"]
    in_avals = [get_aval(p) for p in flat_p]
    out_avals = [get_aval(o) for o in outs]
    name = _fun_name(fun)

    def vjp_fn(ct):
        flat_ct = _check_cotangent_arg(ct, out_tree, out_avals, name)
        cts = backward(flat_ct)
        return tree_unflatten(in_tree, [_instantiate(c, a) for c, a in zip(cts, in_avals)])

    out = tree_unflatten(out_tree, outs)
    if has_aux:
        return out, vjp_fn, _strip_tracers(store["aux"], main)
    return out, vjp_fn


def _check_cotangent_arg(ct, out_tree: PyTreeDef, out_avals: list, name: str) -> list:
    flat_ct, ct_tree = tree_flatten(ct)
    if ct_tree != out_tree:
        raise ValueError(
            f"unexpected tree structure of the cotangent passed to the vjp function of {name}: "
            f"got {ct_tree}, but it must match the structure of the function's output, "
            f"{out_tree}"
        )
    out = []
    for i, (c, aval) in enumerate(zip(flat_ct, out_avals)):
        try:
            c_aval = get_aval(c)
        except TypeError:
            raise TypeError(
                f"the cotangent passed to the vjp function of {name} has a leaf of type "
                f"{type(c).__name__} (output leaf {i}); cotangents must be arrays"
            ) from None
        if c_aval.shape != aval.shape:
            raise ValueError(
                f"unexpected shape of the cotangent passed to the vjp function of {name}: got "
                f"{_describe(c_aval)} for output leaf {i}, but it must be {_describe(aval)} "
                "like the corresponding output of the function"
            )
        if not _is_float(aval):
            out.append(None)
            continue
        if c_aval.dtype != aval.dtype:
            raise TypeError(
                f"unexpected dtype of the cotangent passed to the vjp function of {name}: got "
                f"{_describe(c_aval)} for output leaf {i}, but it must be {_describe(aval)} "
                f"like the corresponding output; convert it with .astype({aval.dtype.name})"
            )
        out.append(_as_array(c))
    return out


# --------------------------------------------------------------------------------------------
# grad and value_and_grad
# --------------------------------------------------------------------------------------------


def grad(
    fun: Callable,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
) -> Callable:
    """The gradient of a scalar-valued function.

    Args:
      fun: a function whose output is a float scalar (0-d); its differentiated arguments are
        pytrees of float arrays. Keyword arguments pass through undifferentiated.
      argnums: which positional argument(s) to differentiate: an int, or a tuple of ints
        (then a tuple of gradients is returned, even for a 1-tuple).
      has_aux: `fun` returns `(value, aux)`; the gradient function returns `(grad, aux)`.
      holomorphic: complex differentiation; not supported (must be False).
      allow_int: allow integer inputs, whose gradients are zeros of their dtype.

    Returns:
      A function with `fun`'s signature returning the gradient(s), each with the structure
      and dtype of its argument.

    Example:
      >>> grad(lambda x: x ** 3)(2.0)
      Array(12., dtype=float32)
      >>> grad(lambda p: p["w"] * p["b"])({"w": 2.0, "b": 3.0})
      {'b': Array(2., dtype=float32), 'w': Array(3., dtype=float32)}
    """
    value_and_grad_f = _value_and_grad(fun, argnums, has_aux, holomorphic, allow_int, "grad")

    @functools.wraps(fun)
    def grad_f(*args, **kwargs):
        value, g = value_and_grad_f(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return grad_f


def value_and_grad(
    fun: Callable,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
) -> Callable:
    """Like `grad`, also returning the value: `(value, grad)` or `((value, aux), grad)`.

    Args:
      fun, argnums, has_aux, holomorphic, allow_int: as for `grad`.

    Returns:
      A function returning `(fun(*args), gradient)`; with `has_aux`, `((value, aux), grad)`.

    Example:
      >>> value_and_grad(lambda x: x ** 2)(3.0)
      (Array(9., dtype=float32, weak_type=True), Array(6., dtype=float32))
    """
    return _value_and_grad(fun, argnums, has_aux, holomorphic, allow_int, "value_and_grad")


def _value_and_grad(fun, argnums, has_aux, holomorphic, allow_int, what):
    if holomorphic:
        raise NotImplementedError(f"{what}(holomorphic=True): fnbrrr has no complex numbers")
    _check_argnums(argnums, what)
    name = _fun_name(fun)

    @functools.wraps(fun)
    def value_and_grad_f(*args, **kwargs):
        flat, in_tree, partial_fun, multiple = _split_args(fun, argnums, args, what, allow_int)
        flat_fun, store = _flatten_fun(partial_fun, in_tree, has_aux, kwargs, name)
        outs, backward, main = _vjp_core(flat_fun, flat)
        out = _check_scalar_output(outs, store["out_tree"], name, what)
        seed = ArrayImpl(np.ones((), get_aval(out).dtype), False)
        cts = backward([seed])
        grads = [_instantiate(c, get_aval(p)) for c, p in zip(cts, flat)]
        g = _unflatten_inner(in_tree, grads, multiple)
        value = _as_array(out)
        if has_aux:
            return (value, _strip_tracers(store["aux"], main)), g
        return value, g

    return value_and_grad_f


def _check_argnums(argnums, what: str) -> None:
    argnums_t = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not all(isinstance(a, int) for a in argnums_t):
        raise TypeError(f"{what}: argnums must be an int or a tuple of ints, got {argnums!r}")
    if not argnums_t:
        raise ValueError(f"{what}: argnums must not be an empty tuple")


def _split_args(fun, argnums, args, what, allow_int=False):
    """The differentiated arguments: (checked flat leaves, their tree, fun of them, tuple?).

    `fun of them` takes the differentiated arguments positionally (the others are fixed to
    their values in `args`) and passes keyword arguments through.
    """
    multiple = not isinstance(argnums, int)
    nums = _normalize_argnums(
        tuple(argnums) if multiple else (argnums,), len(args), _fun_name(fun), what
    )

    def partial_fun(*dyn_args, **kwargs):
        full = list(args)
        for i, a in zip(nums, dyn_args):
            full[i] = a
        return fun(*full, **kwargs)

    flat, in_tree = tree_flatten(tuple(args[i] for i in nums))
    flat = _checked_grad_inputs(fun, args, nums, flat, allow_int, what)
    return flat, in_tree, partial_fun, multiple


def _normalize_argnums(argnums: tuple, nargs: int, name: str, what: str) -> tuple:
    out = []
    for a in argnums:
        if not -nargs <= a < nargs:
            raise TypeError(
                f"{what}({name}): differentiating with respect to argnums={a} requires at least "
                f"{(a if a >= 0 else -a - 1) + 1} positional arguments, but got only {nargs}"
            )
        out.append(a % nargs)
    return tuple(out)


def _checked_grad_inputs(fun, args, nums, flat, allow_int, what) -> list:
    """The differentiated leaves as arrays; non-float ones are a TypeError naming the path."""
    paths = _LazyPaths(lambda: _argument_paths(fun, args, nums))
    out = _checked_inputs(flat, paths, what)
    if not allow_int:
        for i, x in enumerate(out):
            dtype = get_aval(x).dtype
            if dtype.kind != "f":
                raise TypeError(
                    f"{what}({_fun_name(fun)}) requires real-valued (floating-point) inputs, "
                    f"but {paths[i]} has dtype {dtype.name}. Pass floats (e.g. 2.0, not 2, or "
                    "x.astype(jnp.float32)), differentiate with respect to other arguments "
                    "via argnums, or use allow_int=True."
                )
    return out


def _argument_paths(fun, args, nums) -> list[str]:
    names = _arg_names(fun)
    paths = []
    for i in nums:
        label = f"argument {i}" + (f" ('{names[i]}')" if names and i < len(names) else "")
        paths += [f"{label} at {p}" if p else label for p in _leaf_paths(args[i], "")]
    return paths


def _check_scalar_output(outs: list, out_tree: PyTreeDef, name: str, what: str):
    if len(outs) != 1 or out_tree != tree_structure(0.0):
        raise TypeError(
            f"{what}({name}): gradient only defined for scalar-output functions, but the "
            f"output is a pytree with structure {out_tree}. Use jacrev/vjp for non-scalar "
            "outputs, or has_aux=True to return auxiliary data."
        )
    aval = get_aval(outs[0])
    if aval.shape != ():
        raise TypeError(
            f"{what}({name}): gradient only defined for scalar-output functions. Output had "
            f"shape {aval.shape} ({_describe(aval)}); reduce it (e.g. .sum()) or use jacrev/vjp."
        )
    if not _is_float(aval):
        raise TypeError(
            f"{what}({name}) requires real-valued (floating-point) outputs, but the output "
            f"has dtype {aval.dtype.name}"
        )
    return outs[0]


# --------------------------------------------------------------------------------------------
# Jacobians and Hessians
# --------------------------------------------------------------------------------------------


def _std_basis(avals: list[ShapedArray]) -> tuple[int, list]:
    """Rows of an identity matrix split into one block per leaf: leaf i gets (N,) + shape_i."""
    sizes = [a.size for a in avals]
    total = sum(sizes)
    eye = np.eye(total)
    blocks, start = [], 0
    for aval, n in zip(avals, sizes):
        block = eye[:, start : start + n].reshape((total, *aval.shape)).astype(aval.dtype)
        blocks.append(ArrayImpl(block, False))
        start += n
    return total, blocks


def _rows(x, start: int, n: int, total: int):
    """Rows [start, start + n) of `x` along axis 0."""
    if n == total:
        return x
    shape = get_aval(x).shape
    return _lax().slice(x, (start, *(0 for _ in shape[1:])), (start + n, *shape[1:]))


def jacfwd(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """The Jacobian of `fun` by forward mode: one jvp per input element, batched with vmap.

    Args:
      fun: a function of pytrees of float arrays.
      argnums: the argument(s) to differentiate (int or tuple of ints).
      has_aux: `fun` returns `(output, aux)`.

    Returns:
      A function returning the Jacobian: for each output leaf (outer structure: the output's)
      and each input leaf (inner structure: the argument's, or a tuple for tuple argnums),
      an array of shape `out.shape + in.shape`. With `has_aux`, `(jacobian, aux)`.

    Example:
      >>> jacfwd(lambda x: x ** 2)(jnp.array([1.0, 2.0]))
      Array([[2., 0.],
             [0., 4.]], dtype=float32)
    """
    _check_argnums(argnums, "jacfwd")

    @functools.wraps(fun)
    def jacfun(*args, **kwargs):
        flat_in, in_tree, partial_fun, multiple = _split_args(fun, argnums, args, "jacfwd")
        in_avals = [get_aval(x) for x in flat_in]
        total, basis = _std_basis(in_avals)
        flat_fun, store = _flatten_fun(partial_fun, in_tree, has_aux, kwargs, _fun_name(fun))
        pushfwd = _pushfwd(flat_fun, flat_in, store, has_aux)
        jac_rows, aux = _vmap(pushfwd, out_axes=(0, None))(*basis)
        per_out = []
        for rows, out_aval in zip(jac_rows, store["out_avals"]):
            per_in, start = [], 0
            for aval in in_avals:
                block = _rows(rows, start, aval.size, total)
                block = _lax().reshape(block, (*aval.shape, *out_aval.shape))
                nin = len(aval.shape)
                perm = (*range(nin, nin + len(out_aval.shape)), *range(nin))
                per_in.append(_lax().transpose(block, perm))
                start += aval.size
            per_out.append(_unflatten_inner(in_tree, per_in, multiple))
        jac = tree_unflatten(store["out_tree"], per_out)
        return (jac, aux) if has_aux else jac

    return jacfun


def _pushfwd(flat_fun, flat_in, store, has_aux):
    """tangents -> (tangents_out, aux) at the fixed primals; records output avals in store."""

    def pushfwd(*tangents):
        out_p, out_t, main = _jvp_core(flat_fun, flat_in, tangents)
        store["out_avals"] = [get_aval(p) for p in out_p]
        out_t = [_instantiate(t, get_aval(p)) for p, t in zip(out_p, out_t)]
        aux = _strip_tracers(store["aux"], main) if has_aux else None
        return out_t, aux

    return pushfwd


def _unflatten_inner(in_tree: PyTreeDef, leaves: list, multiple: bool):
    tree = tree_unflatten(in_tree, leaves)
    return tree if multiple else tree[0]


def jacrev(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """The Jacobian of `fun` by reverse mode: one pullback per output element, batched.

    Args:
      fun: a function of pytrees of float arrays.
      argnums: the argument(s) to differentiate (int or tuple of ints).
      has_aux: `fun` returns `(output, aux)`.

    Returns:
      A function returning the Jacobian, structured as for `jacfwd`: shape
      `out.shape + in.shape` per (output leaf, input leaf). With `has_aux`, `(jacobian, aux)`.

    Example:
      >>> jacrev(lambda x: x ** 2)(jnp.array([1.0, 2.0]))
      Array([[2., 0.],
             [0., 4.]], dtype=float32)
    """
    _check_argnums(argnums, "jacrev")

    @functools.wraps(fun)
    def jacfun(*args, **kwargs):
        flat_in, in_tree, partial_fun, multiple = _split_args(fun, argnums, args, "jacrev")
        in_avals = [get_aval(x) for x in flat_in]
        flat_fun, store = _flatten_fun(partial_fun, in_tree, has_aux, kwargs, _fun_name(fun))
        outs, backward, main = _vjp_core(flat_fun, flat_in)
        out_avals = [get_aval(o) for o in outs]
        total, basis = _std_basis(out_avals)

        def pullback(*cts):
            return [_instantiate(c, a) for c, a in zip(backward(cts), in_avals)]

        rows_per_in = _vmap(pullback)(*basis)
        per_out, start = [], 0
        for out_aval in out_avals:
            per_in = [
                _lax().reshape(
                    _rows(rows, start, out_aval.size, total), (*out_aval.shape, *aval.shape)
                )
                for rows, aval in zip(rows_per_in, in_avals)
            ]
            per_out.append(_unflatten_inner(in_tree, per_in, multiple))
            start += out_aval.size
        jac = tree_unflatten(store["out_tree"], per_out)
        if has_aux:
            return jac, _strip_tracers(store["aux"], main)
        return jac

    return jacfun


def hessian(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """The Hessian of a scalar function: `jacfwd(jacrev(fun))`, shape `in.shape + in.shape`.

    Args:
      fun: a scalar-valued function of pytrees of float arrays.
      argnums: the argument(s) to differentiate.
      has_aux: `fun` returns `(value, aux)`.

    Returns:
      A function returning the Hessian (nested per pair of input leaves for pytrees).

    Example:
      >>> hessian(lambda x: (x ** 3).sum())(jnp.array([1.0, 2.0]))
      Array([[ 6.,  0.],
             [ 0., 12.]], dtype=float32)
    """
    return jacfwd(jacrev(fun, argnums, has_aux), argnums, has_aux)


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
#
# custom_jvp_call, custom_vjp_call and checkpoint each hold the traced program of the user's
# function as `call_jaxpr`. Values the function closes over that are tracers of an enclosing
# transformation are *hoisted*: they become the first `num_consts` inputs of the call, so
# every trace sees them as ordinary inputs.


def _stage_call(flat_fun: Callable, flat_args: Sequence, name: str):
    """Trace `flat_fun` at the avals of `flat_args`; returns (ClosedJaxpr, hoisted tracers)."""
    jaxpr, consts = core.trace_to_jaxpr(flat_fun, [get_aval(a) for a in flat_args], name)
    return _closure_convert(jaxpr, consts)


def _closure_convert(jaxpr: Jaxpr, consts: Sequence):
    """Concrete constants stay in the ClosedJaxpr; tracer constants become leading inputs.

    Returns `(closed_jaxpr, hoisted)`: bind the call on `(*hoisted, *args)`. (Also used by
    `fnbrrr.jit.api` for the pjit primitive.)
    """
    kept_vars, kept, hoisted_vars, hoisted = [], [], [], []
    for var, value in zip(jaxpr.constvars, consts):
        if isinstance(value, Tracer):
            hoisted_vars.append(var)
            hoisted.append(value)
        else:
            kept_vars.append(var)
            kept.append(value)
    new = Jaxpr(kept_vars, hoisted_vars + jaxpr.invars, jaxpr.eqns, jaxpr.outvars)
    return ClosedJaxpr(new, kept), hoisted


def _eval_call(call_jaxpr: ClosedJaxpr, args: Sequence) -> list:
    return core.eval_jaxpr(call_jaxpr.jaxpr, call_jaxpr.consts, *args)


def _call_abstract_eval(*avals, call_jaxpr: ClosedJaxpr, **_):
    expected = call_jaxpr.in_avals
    if len(avals) != len(expected) or any(
        a.shape != e.shape or a.dtype != e.dtype for a, e in zip(avals, expected)
    ):
        raise TypeError(
            "internal error: a call primitive was applied to "
            f"({', '.join(map(_describe, avals))}) but its program takes "
            f"({', '.join(map(_describe, expected))})"
        )
    return list(call_jaxpr.out_avals)


def _call_impl(*values, call_jaxpr: ClosedJaxpr, **_):
    args = [ArrayImpl(v, a.weak_type) for v, a in zip(values, call_jaxpr.in_avals)]
    return [_concrete(o) for o in _eval_call(call_jaxpr, args)]


def _call_primitive(name: str) -> Primitive:
    p = Primitive(name, multiple_results=True)
    p.impl = _call_impl
    p.abstract_eval = _call_abstract_eval
    return p


def _batch_call_jaxpr(call_jaxpr: ClosedJaxpr, vals: Sequence, dims: Sequence):
    """The program mapped over `dims` (outputs batched along axis 0), for the values `vals`.

    Returns `(closed_jaxpr, hoisted)`; the new program takes `(*hoisted, *vals)` (hoisted is
    non-empty only when a rule inside closes over a tracer of an enclosing transformation).
    """
    size = next(get_aval(v).shape[d] for v, d in zip(vals, dims) if d is not None)

    def body(*args):
        return _eval_call(call_jaxpr, args)

    def batched(*args):
        return _vmap(body, in_axes=tuple(dims), axis_size=size)(*args)

    jaxpr, consts = core.trace_to_jaxpr(batched, [get_aval(v) for v in vals], "vmap")
    return _closure_convert(jaxpr, consts)


def _jvp_call_jaxpr(call_jaxpr: ClosedJaxpr, nonzero: Sequence[bool]):
    """The program `(primals, nonzero tangents) -> (outs, tangents out)`, and its hoisted
    closure values (inputs that come first, as for `_batch_call_jaxpr`)."""
    in_avals = call_jaxpr.in_avals
    n = len(in_avals)

    def jvp_program(*args):
        tangent_args = iter(args[n:])
        tangents = [next(tangent_args) if nz else Zero(a) for nz, a in zip(nonzero, in_avals)]
        outs, tangents_out = jvp_flat(lambda *a: _eval_call(call_jaxpr, a), args[:n], tangents)
        return [*outs, *tangents_out]

    tangent_avals = [a for a, nz in zip(in_avals, nonzero) if nz]
    jaxpr, consts = core.trace_to_jaxpr(jvp_program, [*in_avals, *tangent_avals], "jvp")
    return _closure_convert(jaxpr, consts)


def _reverse_through_body(call_jaxpr: ClosedJaxpr, values: Sequence):
    """A reverse rule result that differentiates the call's program itself."""
    outs, backward, _ = _vjp_core(lambda *a: _eval_call(call_jaxpr, a), values)
    return outs, backward


def _consts_untouched(values: Sequence, rule: Callable, num_consts: int) -> bool:
    """Whether the hoisted closure values reach the rule unchanged.

    A user rule closes over the original objects. When the transformation now applying the
    rule owns one of them (it is differentiating or batching a closed-over value), the values
    it passes differ from the originals, and calling the rule would mix levels; the caller
    then falls back to transforming the function body.
    """
    return all(v is c for v, c in zip(values[:num_consts], rule.closed_over))


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
                f"{i} is {_describe(x_aval)} where the function gives {_describe(aval)}"
            )
        out.append(x)
    return out


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
        dyn_idx, dyn, flat, in_tree = _flat_args_of(
            self.fun, args, self.nondiff_argnums, "custom_jvp"
        )

        def flat_fun(*leaves):
            out = self.fun(*_with_dyn(args, dyn_idx, tree_unflatten(in_tree, leaves)))
            out_flat, store["out_tree"] = tree_flatten(out)
            return out_flat

        store: dict[str, Any] = {}
        call_jaxpr, hoisted = _stage_call(flat_fun, flat, name)
        nondiff = [args[i] for i in self.nondiff_argnums]
        rule = _flat_jvp_rule(
            self.jvp, nondiff, in_tree, store["out_tree"], call_jaxpr.out_avals, name
        )
        rule.closed_over = tuple(hoisted)
        outs = custom_jvp_call_p.bind(
            *hoisted, *flat, call_jaxpr=call_jaxpr, jvp=rule, num_consts=len(hoisted)
        )
        return tree_unflatten(store["out_tree"], outs)


def _flat_jvp_rule(user_rule, nondiff, in_tree, out_tree, out_avals, name) -> Callable:
    """The user's rule on flat lists: `(primals, tangents) -> (outs, tangents_out)`."""
    what = f"the custom JVP rule of {name}"

    def rule(primals, tangents):
        p = tree_unflatten(in_tree, list(primals))
        t = tree_unflatten(in_tree, list(tangents))
        result = user_rule(*nondiff, p, t)
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise TypeError(
                f"{what} must return a pair (primal_out, tangent_out); it returned "
                f"{_type_summary(result)}"
            )
        flat_p, p_tree = tree_flatten(result[0])
        flat_t, t_tree = tree_flatten(result[1])
        outs = _check_outputs(flat_p, p_tree, out_tree, out_avals, f"the primal output of {what}")
        touts = _check_rule_tangents(flat_t, t_tree, out_tree, out_avals, what)
        return outs, touts

    rule.__name__ = f"{name}_jvp"
    return rule


def _check_rule_tangents(flat, tree, out_tree, out_avals, what) -> list:
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
                f"{i} is {_describe(t_aval)} where the primal is {_describe(aval)}"
            )
        if t_aval.dtype != aval.dtype:
            if not t_aval.weak_type:
                raise TypeError(
                    f"the tangent output of {what} must have the primal output's dtypes, but "
                    f"leaf {i} is {_describe(t_aval)} where the primal is {_describe(aval)}"
                )
            t = _lax().convert_element_type(t, aval.dtype)
        out.append(t)
    return out


def _custom_jvp_call_jvp(primals, tangents, *, call_jaxpr, jvp, num_consts):
    if not _consts_untouched(primals, jvp, num_consts):
        return jvp_flat(lambda *a: _eval_call(call_jaxpr, a), primals, tangents)
    args = primals[num_consts:]
    arg_tangents = [_instantiate(t, get_aval(p)) for p, t in zip(args, tangents[num_consts:])]
    return jvp(list(args), arg_tangents)


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


def _custom_jvp_call_vjp(ct, ans, *primals, **params):
    _, backward = _custom_jvp_call_reverse(list(primals), [True] * len(primals), **params)
    return backward(ct)


def _custom_jvp_call_batch(vals, dims, *, call_jaxpr, jvp, num_consts):
    batched_jaxpr, hoisted = _batch_call_jaxpr(call_jaxpr, vals, dims)
    num_outs = len(batched_jaxpr.out_avals)
    if not _consts_untouched(vals, jvp, num_consts):
        return _eval_call(batched_jaxpr, [*hoisted, *vals]), [0] * num_outs
    arg_dims = list(dims[num_consts:])

    def batched_rule(primals, tangents):
        tangents = [_instantiate(t, get_aval(p)) for p, t in zip(primals, tangents)]
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
custom_jvp_call_p.vjp = _custom_jvp_call_vjp
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
        dyn_idx, dyn, flat, in_tree = _flat_args_of(
            self.fun, args, self.nondiff_argnums, "custom_vjp"
        )

        def flat_fun(*leaves):
            out = self.fun(*_with_dyn(args, dyn_idx, tree_unflatten(in_tree, leaves)))
            out_flat, store["out_tree"] = tree_flatten(out)
            return out_flat

        store: dict[str, Any] = {}
        call_jaxpr, hoisted = _stage_call(flat_fun, flat, name)
        fwd, bwd = _flat_fwd_bwd(
            self,
            args,
            dyn_idx,
            dyn,
            in_tree,
            store["out_tree"],
            call_jaxpr.out_avals,
            [get_aval(x) for x in flat],
            name,
        )
        fwd.closed_over = tuple(hoisted)
        outs = custom_vjp_call_p.bind(
            *hoisted, *flat, call_jaxpr=call_jaxpr, fwd=fwd, bwd=bwd, num_consts=len(hoisted)
        )
        return tree_unflatten(store["out_tree"], outs)


def _flat_fwd_bwd(cv: custom_vjp, args, dyn_idx, dyn, in_tree, out_tree, out_avals, in_avals, name):
    """The user's fwd and bwd on flat lists of leaves."""
    nondiff = [args[i] for i in cv.nondiff_argnums]
    res_tree: list[PyTreeDef] = []

    def fwd(*leaves):
        result = cv.fwd(*_with_dyn(args, dyn_idx, tree_unflatten(in_tree, leaves)))
        what = f"the custom_vjp fwd rule of {name}"
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise TypeError(
                f"{what} must return a pair (output, residuals); it returned "
                f"{_type_summary(result)}"
            )
        flat_out, tree = tree_flatten(result[0])
        outs = _check_outputs(flat_out, tree, out_tree, out_avals, f"the output of {what}")
        flat_res, tree = tree_flatten(result[1])
        res_tree[:] = [tree]
        res = [_checked_input(r, f"residual leaf {i}", what) for i, r in enumerate(flat_res)]
        return outs, res

    arg_trees = [tree_structure(a) for a in dyn]

    def bwd(res, cts):
        cts = [_instantiate(c, a) for c, a in zip(cts, out_avals)]
        g = tree_unflatten(out_tree, cts)
        result = cv.bwd(*nondiff, tree_unflatten(res_tree[0], list(res)), g)
        return _flat_bwd_output(result, arg_trees, in_avals, f"the custom_vjp bwd rule of {name}")

    fwd.__name__, bwd.__name__ = f"{name}_fwd", f"{name}_bwd"
    return fwd, bwd


def _flat_bwd_output(result, arg_trees: list, in_avals: list, what: str) -> list:
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
    out = []
    for i, (ct, aval) in enumerate(zip(leaves, in_avals)):
        if ct is None or not _is_float(aval):
            out.append(None)
            continue
        ct = _checked_input(ct, f"cotangent leaf {i}", what)
        c_aval = get_aval(ct)
        if c_aval.shape != aval.shape:
            raise ValueError(
                f"{what} returned a cotangent {_describe(c_aval)} for an argument "
                f"{_describe(aval)} (leaf {i}); shapes must match"
            )
        if c_aval.dtype != aval.dtype:
            ct = _lax().convert_element_type(ct, aval.dtype)
        out.append(ct)
    return out


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


def _custom_vjp_call_vjp(ct, ans, *primals, **params):
    _, backward = _custom_vjp_call_reverse(list(primals), [True] * len(primals), **params)
    return backward(ct)


def _custom_vjp_call_batch(vals, dims, *, call_jaxpr, fwd, bwd, num_consts):
    batched_jaxpr, hoisted = _batch_call_jaxpr(call_jaxpr, vals, dims)
    out_avals = batched_jaxpr.out_avals
    if not _consts_untouched(vals, fwd, num_consts):
        return _eval_call(batched_jaxpr, [*hoisted, *vals]), [0] * len(out_avals)
    arg_dims = list(dims[num_consts:])

    def batched_fwd(*args):
        return _vmap(fwd, in_axes=tuple(arg_dims))(*args)

    def batched_bwd(res, cts):
        cts = [_instantiate(c, a) for c, a in zip(cts, out_avals)]
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
custom_vjp_call_p.vjp = _custom_vjp_call_vjp
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
      Array(0.3600077, dtype=float32)
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

        def flat_fun(*dyn_leaves):
            it = iter(dyn_leaves)
            call_args, call_kwargs = tree_unflatten(
                in_tree, [next(it) if d else x for x, d in zip(leaves, dynamic)]
            )
            out_flat, store["out_tree"] = tree_flatten(fun(*call_args, **call_kwargs))
            return out_flat

        store: dict[str, Any] = {}
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
    _, backward, _ = _vjp_core(lambda *a: _eval_call(call_jaxpr, a), primals)
    return backward(cts)


def _checkpoint_batch(vals, dims, *, call_jaxpr, **params):
    batched_jaxpr, hoisted = _batch_call_jaxpr(call_jaxpr, vals, dims)
    outs = checkpoint_p.bind(*hoisted, *vals, call_jaxpr=batched_jaxpr, **params)
    return outs, [0] * len(outs)


checkpoint_p.jvp = _checkpoint_jvp
checkpoint_p.vjp = _checkpoint_vjp
checkpoint_p.batch = _checkpoint_batch


# --------------------------------------------------------------------------------------------
# Helpers for testing derivative rules
# --------------------------------------------------------------------------------------------


def _bind_as_list(primitive: Primitive, params: dict) -> Callable:
    def f(*args):
        out = primitive.bind(*args, **params)
        return list(out) if primitive.multiple_results else [out]

    f.__name__ = primitive.name
    return f


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
        args = []
        for p, t in zip(primals, tangents):
            p_np = np.asarray(_concrete(_as_array(p)))
            if p_np.dtype.kind == "f":
                p_np = p_np + sign * eps * np.asarray(_concrete(_as_array(t)), p_np.dtype)
            args.append(_as_array(p_np.astype(_concrete(_as_array(p)).dtype)))
        out = fun(*args)
        outs = out if isinstance(out, (list, tuple)) else [out]
        return [np.asarray(_concrete(_as_array(o)), np.float64) for o in outs]

    plus, minus = shifted(1), shifted(-1)
    return [(a - b) / (2 * eps) for a, b in zip(plus, minus)]


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

    Example:
      >>> check_grads(jnp.sin, (0.5,), order=2)
    """
    args = [_as_array(a) for a in args]
    f64 = all(get_aval(a).dtype == np.float64 for a in args if _is_float(get_aval(a)))
    eps = eps if eps is not None else (1e-5 if f64 else 2e-3)
    atol = atol if atol is not None else (1e-6 if f64 else 2e-2)
    rtol = rtol if rtol is not None else (1e-5 if f64 else 2e-2)
    rng = np.random.RandomState(0)
    _check_grads(fun, args, order, tuple(modes), atol, rtol, eps, rng)


def _random_like(x, rng):
    aval = get_aval(x)
    if not _is_float(aval):
        return _zeros(aval)
    return _as_array(rng.standard_normal(aval.shape).astype(aval.dtype))


def _as_list(out) -> list:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _check_grads(fun, args, order, modes, atol, rtol, eps, rng):
    if order <= 0:
        return
    tangents = [_random_like(a, rng) for a in args]
    expected = numerical_jvp(fun, args, tangents, eps)
    if "fwd" in modes:
        _, got = jvp(lambda *a: _as_list(fun(*a)), tuple(args), tuple(tangents))
        for g, e in zip(got, expected):
            np.testing.assert_allclose(
                np.asarray(g, np.float64),
                e,
                atol=atol,
                rtol=rtol,
                err_msg=f"jvp of {_fun_name(fun)} vs finite differences",
            )
        _check_grads(
            lambda *a: _as_list(jvp(fun, tuple(a), tuple(tangents))[1]),
            args,
            order - 1,
            modes,
            atol,
            rtol,
            eps,
            rng,
        )
    if "rev" in modes:
        outs, vjp_fn = vjp(lambda *a: _as_list(fun(*a)), *args)
        cts = [_random_like(o, rng) for o in outs]
        got_cts = vjp_fn(cts)
        lhs = sum(float(np.vdot(np.asarray(c, np.float64), e)) for c, e in zip(cts, expected))
        rhs = sum(
            float(np.vdot(np.asarray(c, np.float64), np.asarray(t, np.float64)))
            for c, t in zip(got_cts, tangents)
        )
        np.testing.assert_allclose(
            rhs, lhs, atol=atol, rtol=rtol, err_msg=f"vjp of {_fun_name(fun)} vs finite differences"
        )
        _check_grads(
            lambda *a: list(vjp(lambda *b: _as_list(fun(*b)), *a)[1](cts)),
            args,
            order - 1,
            modes,
            atol,
            rtol,
            eps,
            rng,
        )
