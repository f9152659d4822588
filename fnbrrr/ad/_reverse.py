"""Reverse mode: `ReverseTrace` and its tape, the backward pass, `vjp_flat` and `vjp`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from fnbrrr.ad._helpers import (
    _as_array,
    _avals,
    _checked_inputs,
    _concrete,
    _derivatives_out,
    _flatten_fun,
    _fun_name,
    _instantiate_all,
    _is_float,
    _LazyPaths,
    _strip_tracers,
)
from fnbrrr.ad_util import DifferentiationError, Zero, add_tangents, is_zero
from fnbrrr.core import Primitive, ShapedArray, Trace, Tracer, get_aval, new_main
from fnbrrr.tree_util import PyTreeDef, leaf_paths, tree_flatten, tree_unflatten

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
        return tree_unflatten(in_tree, _derivatives_out(backward(flat_ct), in_avals))

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
            raise DifferentiationError(
                f"unexpected dtype of the cotangent passed to the vjp function of {name}: got "
                f"{c_aval.str_short()} for output leaf {i}, but it must be {aval.str_short()} "
                f"like the corresponding output; convert it with .astype({aval.dtype.name})"
            )
        out.append(_as_array(c))
    return out
