"""What the control-flow primitives share: tracing and closure conversion of sub-programs,
their dependence analysis, eager evaluation, and the checks and messages about pytrees."""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fnbrrr import core
from fnbrrr import dtypes as _dtypes
from fnbrrr._prims.elementwise import convert_element_type, full, select_n
from fnbrrr._prims.shape import broadcast_in_dim
from fnbrrr.ad import jvp_flat
from fnbrrr.ad_util import Zero
from fnbrrr.core import ArrayImpl, ClosedJaxpr, Jaxpr, Literal, ShapedArray, Var, get_aval
from fnbrrr.tree_util import PyTreeDef, leaf_paths, tree_flatten

# --------------------------------------------------------------------------------------------
# Sub-programs: tracing, closure conversion, evaluation, dependence
# --------------------------------------------------------------------------------------------


def _closure_convert(jaxpr: Jaxpr, consts: Sequence) -> tuple[ClosedJaxpr, list]:
    """Tracer constants become leading inputs (returned as `hoisted`); concrete ones stay."""
    closed, hoisted = core.closure_convert(jaxpr, consts)
    jaxpr, consts = core.eliminate_dead_code(closed.jaxpr, closed.consts)
    return ClosedJaxpr(jaxpr, consts), list(hoisted)


def _trace(fun: Callable, avals: Sequence[ShapedArray], name: str) -> tuple[ClosedJaxpr, list]:
    """Stage `fun(*flat) -> list` at `avals`; returns (program, hoisted tracers)."""
    jaxpr, consts = core.trace_to_jaxpr(fun, list(avals), name)
    return _closure_convert(jaxpr, consts)


def _hoist(closed: ClosedJaxpr) -> tuple[ClosedJaxpr, list]:
    """Closure-convert a program produced elsewhere (e.g. by `batch_jaxpr`)."""
    return _closure_convert(closed.jaxpr, closed.consts)


def _eval(closed: ClosedJaxpr, args: Sequence) -> list:
    """Run a program by binding its primitives (so it works under every trace)."""
    return core.eval_jaxpr(closed.jaxpr, closed.consts, *args)


def _as_fun(closed: ClosedJaxpr) -> Callable:
    """The program as a function of positional arguments returning a list."""
    return lambda *args: _eval(closed, args)


def _with_invars(closed: ClosedJaxpr, invars: Sequence[Var]) -> ClosedJaxpr:
    """The program with its input variables replaced (extra ones are simply unused)."""
    j = closed.jaxpr
    return ClosedJaxpr(Jaxpr(j.constvars, invars, j.eqns, j.outvars), closed.consts)


def _is_float(aval: ShapedArray) -> bool:
    return aval.dtype.kind == "f"


def _nonzero_outputs(jaxpr: Jaxpr, nonzero_in: Sequence[bool]) -> list[bool]:
    """Which outputs can have a nonzero tangent when the inputs marked True do.

    A sound over-approximation of forward mode: a differentiable primitive with a nonzero
    input tangent may give its float outputs nonzero tangents; anything else gives zeros.
    """
    nonzero = {v for v, nz in zip(jaxpr.invars, nonzero_in) if nz and _is_float(v.aval)}
    for eqn in jaxpr.eqns:
        if eqn.primitive.differentiable and any(
            type(a) is Var and a in nonzero for a in eqn.inputs
        ):
            nonzero.update(v for v in eqn.outvars if _is_float(v.aval))
    return [type(v) is Var and v in nonzero for v in jaxpr.outvars]


def _jvp_of(closed: ClosedJaxpr, nonzero_in: Sequence[bool]) -> Callable:
    """`(primals, given_tangents) -> (outs, tangents_out)` for a program, where
    `given_tangents` holds the tangents of the inputs marked in `nonzero_in` only."""
    avals = closed.in_avals

    def jvp(primals: Sequence, given: Sequence) -> tuple[list, list]:
        it = iter(given)
        tangents = [next(it) if nz else Zero(a) for nz, a in zip(nonzero_in, avals)]
        return jvp_flat(_as_fun(closed), list(primals), tangents)

    return jvp


def _tangent_aval(aval: ShapedArray) -> ShapedArray:
    return aval.update(weak_type=False)


def _split(seq: Sequence, sizes: Sequence[int]) -> list[list]:
    """`seq` cut into consecutive pieces of the given sizes (the last piece takes the rest)."""
    out, start = [], 0
    for n in sizes:
        out.append(list(seq[start:start + n]))
        start += n
    out.append(list(seq[start:]))
    return out


def _pick(values: Sequence, mask: Sequence[bool]) -> list:
    return [v for v, m in zip(values, mask) if m]


def _fill(given: Sequence, mask: Sequence[bool], like: Sequence) -> list:
    """`given` spread over the True slots of `mask`; symbolic zeros (like `like`) elsewhere."""
    it = iter(given)
    return [next(it) if m else Zero(get_aval(x)) for m, x in zip(mask, like)]


def _fill_none(given: Sequence, mask: Sequence[bool]) -> list:
    it = iter(given)
    return [next(it) if m else None for m in mask]


def _zeros(aval: ShapedArray):
    return full(aval.shape, 0, aval.dtype)


def _stacked(aval: ShapedArray, length: int) -> ShapedArray:
    return ShapedArray((length, *aval.shape), aval.dtype, aval.weak_type)


def _same_type(a: ShapedArray, b: ShapedArray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype


def _carry_fixpoint(step: Callable[[list[bool]], list[bool]], start: Sequence[bool]) -> list:
    """The least `flags >= start` (elementwise or) with `step(flags) <= flags`."""
    flags = list(start)
    while True:
        new = [f or s for f, s in zip(flags, step(flags))]
        if new == flags:
            return flags
        flags = new


def _select_per_example(which, cases: Sequence):
    """`cases[which[i]][i]` for every example i (cases batched along axis 0)."""
    if len(cases) == 1:
        return cases[0]
    shape = get_aval(cases[0]).shape
    if len(shape) > 1:
        which = broadcast_in_dim(which, shape, (0,))
    return select_n(which, *cases)


# --- eager evaluation -----------------------------------------------------------------------


def _as_impl(value, aval: ShapedArray) -> ArrayImpl:
    if type(value) is ArrayImpl:
        return value
    return ArrayImpl(np.asarray(value, aval.dtype), aval.weak_type)


def _as_numpy(value, aval: ShapedArray) -> np.ndarray:
    if type(value) is ArrayImpl:
        return value._value
    return np.asarray(value, aval.dtype)


@contextlib.contextmanager
def _eager():
    """Evaluate eagerly even if the caller sits under a staging trace (e.g. constant folding):
    a dynamic eval trace on top takes every primitive whose inputs are concrete. With no
    transformation active there is nothing to guard against (and the eager fast path stays)."""
    if core.current_level() == 0:
        yield
        return
    with core.new_main(core.EvalTrace, dynamic=True):
        yield


def _run(closed: ClosedJaxpr, args: Sequence) -> list:
    """Evaluate a program on concrete fnbrrr Arrays (inside `_eager()`); returns Arrays.

    Like `eval_jaxpr`, but literals and constants are made Arrays once per program, not at
    every step of a loop (NumPy scalars would miss the eager fast path of each primitive).
    """
    jaxpr = closed.jaxpr
    prepared = _prepared.get(closed)
    if prepared is None:
        prepared = _prepared[closed] = _prepare(closed)
    env = dict(prepared)
    env.update(zip(jaxpr.invars, args))
    for eqn in jaxpr.eqns:
        outs = eqn.primitive.bind(*[env[a] for a in eqn.inputs], **eqn.params)
        if eqn.primitive.multiple_results:
            env.update(zip(eqn.outvars, outs))
        else:
            env[eqn.outvars[0]] = outs
    return [_as_impl(env[v], v.aval) for v in jaxpr.outvars]


_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _prepare(closed: ClosedJaxpr) -> dict:
    """The constants and literals of a program as fnbrrr Arrays, keyed by their atoms."""
    jaxpr = closed.jaxpr
    env: dict = {v: _as_impl(c, v.aval) for v, c in zip(jaxpr.constvars, closed.consts)}
    atoms = [a for e in jaxpr.eqns for a in e.inputs] + list(jaxpr.outvars)
    env.update((a, _as_impl(a.val, a.aval)) for a in atoms if type(a) is Literal)
    return env


# --- pytrees and error messages -------------------------------------------------------------


def _fun_name(fun: Any) -> str:
    if isinstance(fun, functools.partial):
        return _fun_name(fun.func)
    return getattr(fun, "__name__", None) or type(fun).__name__


def _array_leaves(tree: Any, root: str, what: str) -> tuple[list, PyTreeDef]:
    """The leaves of an argument pytree, each checked to be an array-like."""
    leaves, treedef = tree_flatten(tree)
    for i, leaf in enumerate(leaves):
        try:
            get_aval(leaf)
        except TypeError:
            path = leaf_paths(tree, root)[i]
            raise TypeError(
                f"{what}: {path} is a {type(leaf).__name__}, not an array; the values passed "
                "to control-flow functions must be arrays, NumPy arrays or Python scalars "
                "(close over other Python values instead)"
            ) from None
    return leaves, treedef


def _trace_fun(
    call: Callable[[list], Any], in_avals: Sequence[ShapedArray], what: str
) -> tuple[ClosedJaxpr, list, PyTreeDef]:
    """Stage `call(leaves) -> pytree of arrays`; returns (program, hoisted, output treedef)."""
    store: dict[str, Any] = {}

    def flat_fun(*leaves):
        out = call(list(leaves))
        flat, store["tree"] = tree_flatten(out)
        for i, leaf in enumerate(flat):
            try:
                get_aval(leaf)
            except TypeError:
                path = leaf_paths(out, "output")[i]
                raise TypeError(
                    f"{what} returned a {type(leaf).__name__} at {path}; it must return "
                    "arrays (a pytree of arrays)"
                ) from None
        return flat

    closed, hoisted = _trace(flat_fun, in_avals, what)
    return closed, hoisted, store["tree"]


def _promote_weak_carry(leaves: list, in_avals: Sequence[ShapedArray],
                        out_avals: Sequence[ShapedArray], strengthen: bool = False) -> list | None:
    """JAX's promotion of weakly typed initial carries; returns the new leaves, or None when
    nothing changes. A weak carry that the body turns into another dtype (`0` that becomes
    `0 + 1.5`) becomes a strongly typed value of the promoted dtype. One that only loses its
    weak type is made strong only with `strengthen` (while_loop); scan keeps it weak going in
    and gives its final carries the body's types."""
    new, changed = list(leaves), False
    for i, (x, a, o) in enumerate(zip(leaves, in_avals, out_avals)):
        if not a.weak_type or a.shape != o.shape or o.weak_type and a.dtype == o.dtype:
            continue
        if a.dtype == o.dtype and not strengthen:
            continue
        dtype = _dtypes.promote_types((a.dtype, True), (o.dtype, o.weak_type))[0]
        new[i] = convert_element_type(x, dtype)
        changed = True
    return new if changed else None


def _check_carry_types(what: str, tree: Any, root: str, in_avals, out_avals) -> None:
    """TypeError naming every carry leaf whose type the body changes."""
    problems = []
    paths = None
    for i, (a, o) in enumerate(zip(in_avals, out_avals)):
        if _same_type(a, o):
            continue
        paths = paths or leaf_paths(tree, root)
        kind = "shapes" if a.shape != o.shape else "dtypes"
        problems.append(f"  * the input carry component {paths[i]} has type {a.str_short()} "
                        f"but the corresponding output carry component has type "
                        f"{o.str_short()}, so the {kind} do not match")
    if problems:
        raise TypeError(
            f"{what} carry input and carry output must have equal types (shapes and dtypes), "
            "but they differ:\n" + "\n".join(problems) + "\nRevise the function so that its "
            "output carry has the type of its input carry (e.g. cast with .astype(), or give "
            "the initial value the right shape and dtype)."
        )


def _check_carry_tree(what: str, in_tree: PyTreeDef, out_tree: PyTreeDef) -> None:
    if in_tree != out_tree:
        raise TypeError(
            f"{what} carry input and carry output must have the same pytree structure, but "
            f"the input carry is {in_tree} and the output carry is {out_tree}. Return a new "
            "carry with the containers of the initial one."
        )


_INT32 = np.dtype(np.int32)


def _scalar_aval(x: Any, what: str, name: str) -> ShapedArray:
    try:
        aval = get_aval(x)
    except TypeError:
        raise TypeError(f"{what}: {name} must be a scalar array or Python scalar, got "
                        f"{type(x).__name__}") from None
    if aval.shape != ():
        raise TypeError(
            f"{what}: {name} must be a scalar, got an array {aval.str_short()}. Reduce it "
            "first (jnp.all / jnp.any), or use jnp.where for an elementwise choice."
        )
    return aval
