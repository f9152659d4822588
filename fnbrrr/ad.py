"""Automatic differentiation: forward mode (jvp), reverse mode (vjp, grad) and what builds on them.

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

The file reads top to bottom: shared helpers, forward mode (`jvp_flat`, `jvp`), `linearize`,
reverse mode (`vjp_flat`, `vjp`), `grad`/`value_and_grad`, then `jacfwd`, `jacrev` and
`hessian`. User-defined derivatives (`custom_jvp`, `custom_vjp`), `checkpoint` and
`stop_gradient` live in `fnbrrr.custom_derivatives`; helpers for testing rules in
`fnbrrr.test_util`.
"""

from __future__ import annotations

import functools
import inspect
import itertools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from fnbrrr import core
from fnbrrr.ad_util import Zero, add_tangents, is_zero
from fnbrrr.core import (
    ArrayImpl,
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
    leaf_paths,
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
    "grad",
    "hessian",
    "jacfwd",
    "jacrev",
    "jvp",
    "jvp_flat",
    "linearize",
    "reverse_rules",
    "value_and_grad",
    "vjp",
    "vjp_flat",
]

# --------------------------------------------------------------------------------------------
# Helpers (also used by fnbrrr.custom_derivatives and fnbrrr.test_util)
# --------------------------------------------------------------------------------------------


def _lax():
    # Imported lazily so that fnbrrr.lax (and control flow built there) may import this module.
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


def _instantiate_all(ts: Sequence, avals: Sequence[ShapedArray]) -> list:
    """`_instantiate` over a list: one real array per aval."""
    return [_instantiate(t, a) for t, a in zip(ts, avals)]


def _avals(xs: Sequence) -> list[ShapedArray]:
    return [get_aval(x) for x in xs]


def _as_array(x):
    """`x` as an fnbrrr array or tracer (NumPy arrays and Python scalars are converted)."""
    if isinstance(x, (Tracer, ArrayImpl)):
        return x
    aval = get_aval(x)
    return ArrayImpl(np.asarray(x, aval.dtype), aval.weak_type)


def _concrete(value) -> np.ndarray:
    """The NumPy value of an array, a tracer with a concrete value, or anything array-like."""
    if isinstance(value, Tracer):
        return value.concrete_value()
    if type(value) is ArrayImpl:
        return value._value
    return np.asarray(value)


def _fun_name(fun) -> str:
    name = getattr(fun, "__name__", None)
    if name is None and isinstance(fun, functools.partial):
        return _fun_name(fun.func)
    return name or type(fun).__name__


def _type_summary(x) -> str:
    """`a tuple of length 3`, `an array f32[2]`...: what a user function returned, for errors."""
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of length {len(x)}"
    aval = getattr(x, "aval", None)
    if aval is not None:
        return f"an array {aval.str_short()}"
    return f"a value of type {type(x).__name__}"


# --- where a bad leaf sits, for error messages ------------------------------------------------


class _LazyPaths:
    """Leaf paths for error messages, computed by `make()` only when one is asked for."""

    __slots__ = ("_make", "_paths")

    def __init__(self, make: Callable[[], list[str]]):
        self._make, self._paths = make, None

    def __getitem__(self, i: int) -> str:
        if self._paths is None:
            self._paths = self._make()
        return self._paths[i]


_leaf_paths = leaf_paths  # the name fnbrrr.custom_derivatives imports


def _not_an_array(x, path: str, what: str) -> TypeError:
    return TypeError(
        f"{what}: the value at {path} is a {type(x).__name__}, which is not an array; "
        "pass arrays, NumPy arrays or Python scalars (close over other values instead)"
    )


def _checked_input(x, path: str, what: str):
    """`x` as an array, or a TypeError naming where it came from."""
    try:
        return _as_array(x)
    except TypeError:
        raise _not_an_array(x, path, what) from None


def _checked_inputs(leaves: Sequence, paths: _LazyPaths, what: str) -> list:
    """`_checked_input` over leaves; the paths are computed only for an error."""
    out = []
    for i, x in enumerate(leaves):
        try:
            out.append(_as_array(x))
        except TypeError:
            raise _not_an_array(x, paths[i], what) from None
    return out


# --- pytrees in, pytrees out --------------------------------------------------------------------


def _flatten_fun(
    fun: Callable, in_tree: PyTreeDef, has_aux: bool = False, kwargs=None, name: str | None = None
):
    """`fun` on flat leaves: returns (flat_fun, store); store gets 'out_tree' (and 'aux')."""
    store: dict[str, Any] = {}
    kwargs = kwargs or {}
    name = name or _fun_name(fun)

    def flat_fun(*flat_args):
        out = fun(*tree_unflatten(in_tree, flat_args), **kwargs)
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
    out_t = _instantiate_all(out_t, _avals(out_p))
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
      Array(1.7551651, dtype=float32)
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
        return tree_unflatten(out_tree, core.eval_jaxpr(jaxpr, consts, *flat_t))

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


class _TapeEntry(NamedTuple):
    """One recorded primitive application: enough to run its VJP rule later."""

    primitive: Primitive
    params: dict
    in_nodes: list  # tape node per input (None: not differentiated)
    primals: list  # the input values
    ans: Any  # the output value (a list for multiple-result primitives)
    out_nodes: list  # tape node per output (None: integer output)
    backward: Callable | None  # from a `reverse_rules` rule; None: use `primitive.vjp`


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
        if not primitive.differentiable or all(n is None for n in in_nodes):
            outs = primitive.bind(*values, **params)
            outs = outs if primitive.multiple_results else [outs]
            return [ReverseTracer(self, o, None) for o in outs]
        rule = reverse_rules.get(primitive)
        if rule is not None:
            outs, backward = rule(values, [n is not None for n in in_nodes], **params)
        else:
            outs, backward = primitive.bind(*values, **params), None
            outs = outs if primitive.multiple_results else [outs]
        tape: _Tape = self.main.payload
        out_nodes = [tape.new_node() if _is_float(get_aval(o)) else None for o in outs]
        if all(n is None for n in out_nodes):
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
    """The input cotangents of one tape entry, from its `backward` or its primitive's `vjp`."""
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
            f"cotangent {c_aval.str_short()} for an input {p_aval.str_short()}; a cotangent "
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
    in_avals = _avals(primals)

    def pullback(cts):
        return _instantiate_all(backward(cts), in_avals)

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
    flat_p = _checked_inputs(flat_p, _LazyPaths(lambda: leaf_paths(primals, "primals")), "vjp")
    flat_fun, store = _flatten_fun(fun, in_tree, has_aux)
    outs, backward, main = _vjp_core(flat_fun, flat_p)
    outs = [_as_array(o) for o in outs]
    out_tree = store["out_tree"]
    in_avals, out_avals = _avals(flat_p), _avals(outs)
    name = _fun_name(fun)

    def vjp_fn(ct):
        flat_ct = _check_cotangent_arg(ct, out_tree, out_avals, name)
        return tree_unflatten(in_tree, _instantiate_all(backward(flat_ct), in_avals))

    out = tree_unflatten(out_tree, outs)
    if has_aux:
        return out, vjp_fn, _strip_tracers(store["aux"], main)
    return out, vjp_fn


def _check_cotangent_arg(ct, out_tree: PyTreeDef, out_avals: list, name: str) -> list:
    """The user's cotangent as flat arrays (None for integer outputs), checked against `out`."""
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
                f"{c_aval.str_short()} for output leaf {i}, but it must be {aval.str_short()} "
                "like the corresponding output of the function"
            )
        if not _is_float(aval):
            out.append(None)
            continue
        if c_aval.dtype != aval.dtype:
            raise TypeError(
                f"unexpected dtype of the cotangent passed to the vjp function of {name}: got "
                f"{c_aval.str_short()} for output leaf {i}, but it must be {aval.str_short()} "
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
        grads = _instantiate_all(backward([seed]), _avals(flat))
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
    """`argument 0 ('p') at ['w']`-style paths of the differentiated leaves."""
    names = _arg_names(fun)
    paths = []
    for i in nums:
        label = f"argument {i}" + (f" ('{names[i]}')" if names and i < len(names) else "")
        paths += [f"{label} at {p}" if p else label for p in leaf_paths(args[i], "")]
    return paths


def _arg_names(fun) -> list[str] | None:
    try:
        params = inspect.signature(fun).parameters.values()
    except (TypeError, ValueError):
        return None
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


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
            f"shape {aval.shape} ({aval.str_short()}); reduce it (e.g. .sum()) or use jacrev/vjp."
        )
    if not _is_float(aval):
        raise TypeError(
            f"{what}({name}) requires real-valued (floating-point) outputs, but the output "
            f"has dtype {aval.dtype.name}"
        )
    return outs[0]


def _unflatten_inner(in_tree: PyTreeDef, leaves: list, multiple: bool):
    """Per-argument results in the arguments' structure: a tuple for tuple argnums."""
    tree = tree_unflatten(in_tree, leaves)
    return tree if multiple else tree[0]


# --------------------------------------------------------------------------------------------
# Jacobians and Hessians
# --------------------------------------------------------------------------------------------


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
        inputs = _jacobian_inputs(fun, argnums, has_aux, args, kwargs, "jacfwd")
        total, basis = _std_basis(inputs.avals)
        pushfwd = _pushfwd(inputs.flat_fun, inputs.flat, inputs.store, has_aux)
        jac_rows, aux = _vmap(pushfwd, out_axes=(0, None))(*basis)

        def block(o: int, _, i: int, in_start: int):
            out_aval, in_aval = inputs.store["out_avals"][o], inputs.avals[i]
            return _jacfwd_block(jac_rows[o], out_aval, in_aval, in_start, total)

        jac = _jacobian_tree(inputs, inputs.store["out_avals"], block)
        return (jac, aux) if has_aux else jac

    return jacfun


class _JacobianInputs(NamedTuple):
    """What jacfwd and jacrev need from their arguments: the differentiated leaves, their
    avals and structure, and `fun` as a function of the flat leaves."""

    flat: list
    avals: list[ShapedArray]
    tree: PyTreeDef
    multiple: bool
    flat_fun: Callable
    store: dict


def _jacobian_inputs(fun, argnums, has_aux, args, kwargs, what: str) -> _JacobianInputs:
    flat, tree, partial_fun, multiple = _split_args(fun, argnums, args, what)
    flat_fun, store = _flatten_fun(partial_fun, tree, has_aux, kwargs, _fun_name(fun))
    return _JacobianInputs(flat, _avals(flat), tree, multiple, flat_fun, store)


def _jacobian_tree(inputs: _JacobianInputs, out_avals: list, block: Callable):
    """The Jacobian as a pytree: the output's structure outside, the arguments' inside.

    `block(o, out_start, i, in_start)` is the `out.shape + in.shape` array for output leaf
    `o` and input leaf `i`, whose elements start at `out_start` and `in_start` in the flat
    outputs and inputs.
    """
    out_starts, in_starts = _starts(out_avals), _starts(inputs.avals)
    per_out = [
        _unflatten_inner(
            inputs.tree, [block(o, out_start, i, s) for i, s in enumerate(in_starts)],
            inputs.multiple,
        )
        for o, out_start in enumerate(out_starts)
    ]
    return tree_unflatten(inputs.store["out_tree"], per_out)


def _starts(avals: list[ShapedArray]) -> list[int]:
    """Where each leaf's elements start when all the leaves are flattened one after another."""
    return list(itertools.accumulate((a.size for a in avals), initial=0))[:-1]


def _pushfwd(flat_fun, flat_in, store, has_aux):
    """tangents -> (tangents_out, aux) at the fixed primals; records output avals in store."""

    def pushfwd(*tangents):
        out_p, out_t, main = _jvp_core(flat_fun, flat_in, tangents)
        store["out_avals"] = _avals(out_p)
        out_t = _instantiate_all(out_t, store["out_avals"])
        aux = _strip_tracers(store["aux"], main) if has_aux else None
        return out_t, aux

    return pushfwd


def _jacfwd_block(rows, out_aval: ShapedArray, in_aval: ShapedArray, start: int, total: int):
    """The `out.shape + in.shape` block of one output and one input leaf, from the rows
    `(total input elements, *out.shape)` that jacfwd's batched jvp produced for that output."""
    lax = _lax()
    block = lax.reshape(_rows(rows, start, in_aval.size, total), (*in_aval.shape, *out_aval.shape))
    nin = len(in_aval.shape)
    return lax.transpose(block, (*range(nin, nin + len(out_aval.shape)), *range(nin)))


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
        inputs = _jacobian_inputs(fun, argnums, has_aux, args, kwargs, "jacrev")
        outs, backward, main = _vjp_core(inputs.flat_fun, inputs.flat)
        out_avals = _avals(outs)
        total, basis = _std_basis(out_avals)

        def pullback(*cts):
            return _instantiate_all(backward(cts), inputs.avals)

        rows_per_in = _vmap(pullback)(*basis)

        def block(o: int, out_start: int, i: int, _):
            out_aval, in_aval = out_avals[o], inputs.avals[i]
            return _jacrev_block(rows_per_in[i], out_aval, in_aval, out_start, total)

        jac = _jacobian_tree(inputs, out_avals, block)
        if has_aux:
            return jac, _strip_tracers(inputs.store["aux"], main)
        return jac

    return jacfun


def _jacrev_block(rows, out_aval: ShapedArray, in_aval: ShapedArray, start: int, total: int):
    """The `out.shape + in.shape` block of one output and one input leaf, from the rows
    `(total output elements, *in.shape)` that jacrev's batched pullback produced for that
    input."""
    block_rows = _rows(rows, start, out_aval.size, total)
    return _lax().reshape(block_rows, (*out_aval.shape, *in_aval.shape))


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
