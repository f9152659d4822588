"""Control flow: the higher-order primitives `cond`, `scan` and `while`, and the lax functions
built on them (`cond`, `switch`, `scan`, `fori_loop`, `while_loop`, `map`).

Each primitive holds its sub-programs as `ClosedJaxpr` params, traced once from the user's
Python functions, and has all of its rules beside it:

    primitive  operands                                   params
    cond       index, *operands                           branches
    scan       *consts, *init_carry, *xs                  jaxpr, num_consts, num_carry,
                                                          length, reverse
    while      *cond_consts, *body_consts, *init_carry    cond_jaxpr, body_jaxpr,
                                                          cond_nconsts, body_nconsts

Values a user function closes over that are tracers of an enclosing transformation are
*hoisted* (closure conversion): they become leading operands, so every transformation sees
them as ordinary inputs. Concrete closed-over values stay in the ClosedJaxpr.

The rules transform the sub-programs and bind the same primitive again, so a derivative or a
batched loop is still a loop (jit compiles it as one), and is differentiable again:

* jvp: the sub-programs' JVPs. Which loop carries have nonzero tangents is found by a
  fixpoint over a dependence analysis of the body (`_nonzero_outputs`).
* vjp of scan: the body's reverse-mode program is traced once and split by dependence into
  loop-invariant, forward and backward parts (`_Linearized`). A forward scan computes
  the primal outputs and stacks the per-step residuals the backward part needs; a reverse
  scan runs only the backward part over them. Nothing is recomputed per step.
* vjp of cond: a cond of the branches' reverse-mode programs (the taken branch's forward is
  re-run inside its backward program). while has no vjp (as in JAX): use scan or fori_loop.
* batch: the sub-programs batched with `batch_jaxpr`; carries that become batched are
  batched from the start (a fixpoint). A batched predicate runs every branch and selects
  (cond), or iterates while any example's predicate holds and updates only those (while).
"""

from __future__ import annotations

import contextlib
import functools
import operator
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fnbrrr import core
from fnbrrr import dtypes as _dtypes
from fnbrrr._prims.elementwise import add, convert_element_type, full, lt, ne, select_n
from fnbrrr._prims.elementwise import max as _lax_max
from fnbrrr._prims.elementwise import min as _lax_min
from fnbrrr._prims.reductions import reduce_or
from fnbrrr._prims.shape import broadcast_in_dim
from fnbrrr.ad import jvp_flat, reverse_rules, vjp_flat
from fnbrrr.ad_util import Zero, instantiate, is_zero
from fnbrrr.batching import batch_jaxpr, batch_size, bdim_at_front, moveaxis
from fnbrrr.core import (
    ArrayImpl,
    ClosedJaxpr,
    Jaxpr,
    Literal,
    Primitive,
    ShapedArray,
    Tracer,
    Var,
    get_aval,
)
from fnbrrr.tree_util import (
    PyTreeDef,
    leaf_paths,
    tree_flatten,
    tree_structure,
    tree_unflatten,
)

__all__ = [
    "cond", "cond_p", "fori_loop", "map", "scan", "scan_p", "switch", "while_loop", "while_p",
]

# --------------------------------------------------------------------------------------------
# Sub-programs: tracing, closure conversion, evaluation, dead code, dependence
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


def _zeros(aval: ShapedArray):
    return full(aval.shape, 0, aval.dtype)


def _stacked(aval: ShapedArray, length: int) -> ShapedArray:
    return ShapedArray((length, *aval.shape), aval.dtype, aval.weak_type)


def _same_type(a: ShapedArray, b: ShapedArray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype


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
                        out_avals: Sequence[ShapedArray]) -> list | None:
    """Weakly typed initial carries that the body turns strong (or into another dtype) are
    converted to the body's type, as JAX does, so that `scan(f, 0.0, xs)` works. Returns
    the new leaves, or None when nothing changes."""
    new, changed = list(leaves), False
    for i, (x, a, o) in enumerate(zip(leaves, in_avals, out_avals)):
        if not a.weak_type or a.shape != o.shape or (a.dtype == o.dtype and o.weak_type):
            continue
        dtype, weak = _dtypes.promote_types((a.dtype, True), (o.dtype, o.weak_type))
        if dtype != a.dtype or not weak:
            new[i] = convert_element_type(x, dtype, weak_type=weak)
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


# --------------------------------------------------------------------------------------------
# cond: index, *operands -> branches[index](*operands)
# --------------------------------------------------------------------------------------------

cond_p = Primitive("cond", multiple_results=True)
cond_p.doc = "branches[clamp(index)](*operands); branches: a tuple of ClosedJaxprs"


def _cond_impl(index, *operands, branches: tuple[ClosedJaxpr, ...]):
    branch = branches[int(np.clip(int(index), 0, len(branches) - 1))]
    with _eager():
        args = [_as_impl(x, a) for x, a in zip(operands, branch.in_avals)]
        return [_as_numpy(o, a) for o, a in zip(_run(branch, args), branch.out_avals)]


def _cond_abstract_eval(index: ShapedArray, *operands: ShapedArray, branches):
    if index.shape != () or index.dtype.kind not in "iu":
        raise TypeError(f"cond: the branch index must be an integer scalar, got "
                        f"{index.str_short()}")
    for i, branch in enumerate(branches):
        expected = branch.in_avals
        if len(expected) != len(operands) or not all(
            _same_type(a, e) for a, e in zip(operands, expected)
        ):
            raise TypeError(
                f"internal error: cond branch {i} takes "
                f"({', '.join(a.str_short() for a in expected)}) but the operands are "
                f"({', '.join(a.str_short() for a in operands)})"
            )
    outs = branches[0].out_avals
    return [
        a.update(weak_type=all(b.out_avals[i].weak_type for b in branches))
        for i, a in enumerate(outs)
    ]


class _Branches(tuple):
    """cond's `branches` param: a tuple of ClosedJaxprs that prints one program per branch."""

    __slots__ = ()

    def __repr__(self) -> str:
        shown = (core.pretty_print(b.jaxpr).replace("\n", "\n      ") for b in self)
        return "(" + "".join(f"\n      {text}" for text in shown) + "\n    )"


def _join_branches(traced: Sequence[tuple[ClosedJaxpr, list]]) -> tuple[_Branches, list]:
    """Branches with their own hoisted values -> branches that all take the union first."""
    hoisted: list = []
    position: dict[int, int] = {}
    for _, values in traced:
        for x in values:
            if id(x) not in position:
                position[id(x)] = len(hoisted)
                hoisted.append(x)
    joined = []
    for closed, values in traced:
        own = {id(x): v for x, v in zip(values, closed.jaxpr.invars)}
        lead = [own[id(x)] if id(x) in own else Var(get_aval(x)) for x in hoisted]
        joined.append(_with_invars(closed, lead + closed.jaxpr.invars[len(values):]))
    return _Branches(joined), hoisted


def _cond_jvp(primals, tangents, *, branches):
    index, *operands = primals
    nonzero = [not is_zero(t) for t in tangents[1:]]
    out_nonzero = [
        any(column)
        for column in zip(*[_nonzero_outputs(b.jaxpr, nonzero) for b in branches])
    ]
    tangent_avals = [_tangent_aval(a) for a in _pick(branches[0].in_avals, nonzero)]

    def jvp_branch(branch: ClosedJaxpr) -> tuple[ClosedJaxpr, list]:
        jvp = _jvp_of(branch, nonzero)
        n = len(operands)

        def program(*args):
            outs, tangents_out = jvp(args[:n], args[n:])
            return [*outs, *_pick(tangents_out, out_nonzero)]

        return _trace(program, [*branch.in_avals, *tangent_avals], "cond_jvp")

    joined, hoisted = _join_branches([jvp_branch(b) for b in branches])
    given = [t for t in tangents[1:] if not is_zero(t)]
    outs = cond_p.bind(index, *hoisted, *operands, *given, branches=joined)
    n_out = len(branches[0].out_avals)
    primals_out = outs[:n_out]
    return primals_out, _fill(outs[n_out:], out_nonzero, primals_out)


def _cond_vjp(cts, ans, index, *operands, branches):
    float_in = [_is_float(a) for a in branches[0].in_avals]
    out_avals = branches[0].out_avals
    given_mask = [not is_zero(c) and _is_float(a) for c, a in zip(cts, out_avals)]
    ct_avals = [_tangent_aval(a) for a in _pick(out_avals, given_mask)]
    n = len(operands)

    def vjp_branch(branch: ClosedJaxpr) -> tuple[ClosedJaxpr, list]:
        def program(*args):
            _, pullback = vjp_flat(_as_fun(branch), list(args[:n]))
            cts_in = pullback(_fill_none(args[n:], given_mask))
            return _pick(cts_in, float_in)

        return _trace(program, [*branch.in_avals, *ct_avals], "cond_vjp")

    joined, hoisted = _join_branches([vjp_branch(b) for b in branches])
    given = _pick(cts, given_mask)
    cts_in = iter(cond_p.bind(index, *hoisted, *operands, *given, branches=joined))
    return [None] + [next(cts_in) if f else None for f in float_in]


def _fill_none(given: Sequence, mask: Sequence[bool]) -> list:
    it = iter(given)
    return [next(it) if m else None for m in mask]


def _cond_batch(vals, dims, *, branches):
    size = batch_size(vals, dims)
    index, *operands = vals
    index_dim, *operand_dims = dims
    if index_dim is not None:
        return _cond_batch_selecting(index, index_dim, operands, operand_dims, size, branches)
    out_batched = [False] * len(branches[0].out_avals)
    for branch in branches:
        _, out_dims = batch_jaxpr(branch, size, operand_dims)
        out_batched = [b or d is not None for b, d in zip(out_batched, out_dims)]
    batched = [
        _hoist(batch_jaxpr(b, size, operand_dims, instantiate=out_batched)[0]) for b in branches
    ]
    joined, hoisted = _join_branches(batched)
    outs = cond_p.bind(index, *hoisted, *operands, branches=joined)
    return outs, [0 if b else None for b in out_batched]


def _cond_batch_selecting(index, index_dim, operands, operand_dims, size, branches):
    """A batched index: every branch runs on the whole batch; each example picks its own."""
    index = moveaxis(index, index_dim, 0)
    per_branch = [
        _eval(batch_jaxpr(b, size, operand_dims, instantiate=True)[0], operands)
        for b in branches
    ]
    outs = [_select_per_example(index, cases) for cases in zip(*per_branch)]
    return outs, [0] * len(outs)


def _select_per_example(which, cases: Sequence):
    """`cases[which[i]][i]` for every example i (cases batched along axis 0)."""
    if len(cases) == 1:
        return cases[0]
    shape = get_aval(cases[0]).shape
    if len(shape) > 1:
        which = broadcast_in_dim(which, shape, (0,))
    return select_n(which, *cases)


cond_p.impl = _cond_impl
cond_p.abstract_eval = _cond_abstract_eval
cond_p.jvp = _cond_jvp
cond_p.vjp = _cond_vjp
cond_p.batch = _cond_batch


# --------------------------------------------------------------------------------------------
# scan: a loop over the leading axis of xs, carrying state
# --------------------------------------------------------------------------------------------

scan_p = Primitive("scan", multiple_results=True)
scan_p.doc = ("loop `jaxpr: (consts, carry, x) -> (carry, y)` over the leading axis of xs; "
              "outputs the final carry and the stacked ys")


def _scan_impl(*args, jaxpr: ClosedJaxpr, num_consts: int, num_carry: int, length: int,
               reverse: bool):
    in_avals = jaxpr.in_avals
    consts, carry, xs = _split(args, [num_consts, num_carry])
    x_avals = in_avals[num_consts + num_carry:]
    y_avals = jaxpr.out_avals[num_carry:]
    ys = [np.empty((length, *a.shape), a.dtype) for a in y_avals]
    with _eager():
        consts = [_as_impl(c, a) for c, a in zip(consts, in_avals)]
        carry = [_as_impl(c, a) for c, a in zip(carry, in_avals[num_consts:])]
        for step in range(length):
            i = length - 1 - step if reverse else step
            x = [ArrayImpl(np.asarray(v[i]), a.weak_type) for v, a in zip(xs, x_avals)]
            outs = _run(jaxpr, [*consts, *carry, *x])
            carry = outs[:num_carry]
            for y, out in zip(ys, outs[num_carry:]):
                y[i] = out._value
    return [*[c._value for c in carry], *ys]


def _scan_abstract_eval(*avals, jaxpr, num_consts, num_carry, length, reverse):
    expected = jaxpr.in_avals
    if len(avals) != len(expected):
        raise TypeError(f"internal error: scan body takes {len(expected)} inputs, got "
                        f"{len(avals)} operands")
    for i, (a, e) in enumerate(zip(avals, expected)):
        want = e if i < num_consts + num_carry else _stacked(e, length)
        if not _same_type(a, want):
            raise TypeError(
                f"internal error: scan operand {i} is {a.str_short()} but the body expects "
                f"{want.str_short()} (num_consts={num_consts}, num_carry={num_carry}, "
                f"length={length})"
            )
    carry_out = jaxpr.out_avals[:num_carry]
    carry_in = expected[num_consts:num_consts + num_carry]
    for i, (a, e) in enumerate(zip(carry_out, carry_in)):
        if not _same_type(a, e):
            raise TypeError(f"internal error: scan body carry {i} goes in as {e.str_short()} "
                            f"and comes out as {a.str_short()}")
    return [*carry_in, *[_stacked(a, length) for a in jaxpr.out_avals[num_carry:]]]


def _carry_fixpoint(step: Callable[[list[bool]], list[bool]], start: Sequence[bool]) -> list:
    """The least `flags >= start` (elementwise or) with `step(flags) <= flags`."""
    flags = list(start)
    while True:
        new = [f or s for f, s in zip(flags, step(flags))]
        if new == flags:
            return flags
        flags = new


def _scan_jvp(primals, tangents, *, jaxpr, num_consts, num_carry, length, reverse):
    n_x = len(primals) - num_consts - num_carry
    nonzero = [not is_zero(t) for t in tangents]
    consts_nz, init_nz, xs_nz = _split(nonzero, [num_consts, num_carry])

    def carry_out_nonzero(carry_nz: list[bool]) -> list[bool]:
        return _nonzero_outputs(jaxpr.jaxpr, consts_nz + carry_nz + xs_nz)[:num_carry]

    carry_nz = _carry_fixpoint(carry_out_nonzero, init_nz)
    body_nz = consts_nz + carry_nz + xs_nz
    ys_nz = _nonzero_outputs(jaxpr.jaxpr, body_nz)[num_carry:]
    jvp = _jvp_of(jaxpr, body_nz)
    c_av, k_av, x_av = _split(jaxpr.in_avals, [num_consts, num_carry])
    sizes = [num_consts, sum(consts_nz), num_carry, sum(carry_nz), n_x]

    def body(*args):
        c, ct, k, kt, x, xt = _split(args, sizes)
        outs, tangents_out = jvp([*c, *k, *x], [*ct, *kt, *xt])
        carry_t, ys_t = _split(tangents_out, [num_carry])
        return [*outs[:num_carry], *_pick(carry_t, carry_nz),
                *outs[num_carry:], *_pick(ys_t, ys_nz)]

    avals = [*c_av, *[_tangent_aval(a) for a in _pick(c_av, consts_nz)],
             *k_av, *[_tangent_aval(a) for a in _pick(k_av, carry_nz)],
             *x_av, *[_tangent_aval(a) for a in _pick(x_av, xs_nz)]]
    closed, hoisted = _trace(body, avals, "scan_jvp")
    consts, init, xs = _split(primals, [num_consts, num_carry])
    consts_t, init_t, xs_t = _split(tangents, [num_consts, num_carry])
    init_t = [instantiate(t) for t in _pick(init_t, carry_nz)]
    outs = scan_p.bind(
        *hoisted, *consts, *_pick(consts_t, consts_nz), *init, *init_t,
        *xs, *_pick(xs_t, xs_nz),
        jaxpr=closed, num_consts=len(hoisted) + num_consts + sum(consts_nz),
        num_carry=num_carry + sum(carry_nz), length=length, reverse=reverse,
    )
    carry, carry_t, ys, ys_t = _split(outs, [num_carry, sum(carry_nz), len(ys_nz)])
    return [*carry, *ys], [*_fill(carry_t, carry_nz, carry), *_fill(ys_t, ys_nz, ys)]


def _scan_batch(vals, dims, *, jaxpr, num_consts, num_carry, length, reverse):
    size = batch_size(vals, dims)
    const_dims, init_dims, xs_dims = _split(dims, [num_consts, num_carry])
    # Batched xs get their batch axis right after the scan axis, so each slice the body sees
    # has it in front; stacked ys come out the same way (batch axis 1).
    x_dims = [None if d is None else 0 for d in xs_dims]
    n_ys = len(jaxpr.out_avals) - num_carry

    def body_dims(carry_batched: list[bool]) -> list:
        return [*const_dims, *[0 if b else None for b in carry_batched], *x_dims]

    def carry_out_batched(carry_batched: list[bool]) -> list[bool]:
        _, out_dims = batch_jaxpr(jaxpr, size, body_dims(carry_batched))
        return [d is not None for d in out_dims[:num_carry]]

    carry_batched = _carry_fixpoint(carry_out_batched, [d is not None for d in init_dims])
    batched, out_dims = batch_jaxpr(
        jaxpr, size, body_dims(carry_batched), instantiate=carry_batched + [False] * n_ys
    )
    batched, hoisted = _hoist(batched)
    consts, init, xs = _split(vals, [num_consts, num_carry])
    init = [bdim_at_front(v, d, size) if b else v
            for v, d, b in zip(init, init_dims, carry_batched)]
    xs = [v if d is None else moveaxis(v, d, 1) for v, d in zip(xs, xs_dims)]
    outs = scan_p.bind(
        *hoisted, *consts, *init, *xs, jaxpr=batched, num_consts=len(hoisted) + num_consts,
        num_carry=num_carry, length=length, reverse=reverse,
    )
    ys_dims = [None if d is None else 1 for d in out_dims[num_carry:]]
    return outs, [*[0 if b else None for b in carry_batched], *ys_dims]


# --- reverse mode ---------------------------------------------------------------------------


class _Linearized:
    """The scan body's reverse-mode program, split by what each of its values depends on.

    `joint(consts, carry, x, cts_out) -> (outs, cts_in)` (the body under `vjp_flat`, then its
    pullback) is traced once. Each equation of it is *invariant* (reads consts only),
    *forward* (reads the carry or x, not the output cotangents) or *backward* (reads the
    cotangents). The backward equations read some values of the other two kinds, the
    residuals, which reach the reverse scan as:

      const_res  consts (hoisted values included): passed to the reverse scan as they are
      inv_res    invariant values: computed once, before the loops, by `invariant`
      xs_res     slices of xs: the stacked xs are passed to the reverse scan as they are
      step_res   carries and forward values: emitted by `forward` as extra ys (stacked)

    Programs:
      invariant(consts) -> inv_res
      forward(consts, carry, x) -> (carry, y, *step_res)            body of the forward scan
      backward(const_res, inv_res, xs_res, step_res, cts_out) -> cts_in    reverse scan body
    `hoisted` are tracers that the joint program closed over; they lead the consts.
    `wanted_in` says which inputs get a cotangent (float carries always do).
    """

    def __init__(self, body: ClosedJaxpr, num_consts: int, num_carry: int,
                 wanted_in: Sequence[bool]):
        in_avals, out_avals = body.in_avals, body.out_avals
        n_in = len(in_avals)
        self.float_out = [_is_float(a) for a in out_avals]
        self.wanted_in = list(wanted_in)
        self.const_ct_avals = [_tangent_aval(a) for a, w in
                               zip(in_avals[:num_consts], wanted_in) if w]

        def joint(*args):
            outs, pullback = vjp_flat(_as_fun(body), list(args[:n_in]))
            cts_in = pullback(_fill_none(args[n_in:], self.float_out))
            return [*outs, *_pick(cts_in, self.wanted_in)]

        ct_avals = [_tangent_aval(a) for a in _pick(out_avals, self.float_out)]
        jaxpr, consts = core.trace_to_jaxpr(joint, [*in_avals, *ct_avals], "scan_vjp")
        closed, self.hoisted = _closure_convert(jaxpr, consts)
        n_xs = n_in - num_consts - num_carry
        self._partition(closed, len(self.hoisted) + num_consts, num_carry, n_xs, len(out_avals))

    def _partition(self, closed: ClosedJaxpr, n_consts: int, n_carry: int, n_xs: int,
                   n_out: int) -> None:
        j = closed.jaxpr
        consts_v, carry_v, xs_v, cts_v = _split(j.invars, [n_consts, n_carry, n_xs])
        level = {**dict.fromkeys(consts_v, 0), **dict.fromkeys(carry_v + xs_v, 1),
                 **dict.fromkeys(cts_v, 2)}
        eqn_level = []
        for eqn in j.eqns:
            lv = max((level.get(a, 0) for a in eqn.inputs if type(a) is Var), default=0)
            eqn_level.append(lv)
            level.update(dict.fromkeys(eqn.outvars, lv))
        outs, cts_in = j.outvars[:n_out], j.outvars[n_out:]
        invariant_eqns = [e for e, lv in zip(j.eqns, eqn_level) if lv == 0]
        forward_eqns = [e for e, lv in zip(j.eqns, eqn_level) if lv < 2]
        backward_eqns = core.live_eqns([e for e, lv in zip(j.eqns, eqn_level) if lv == 2], cts_in)
        constvars = set(j.constvars)
        read = [a for e in backward_eqns for a in e.inputs] + list(cts_in)
        residuals = list(dict.fromkeys(
            a for a in read if type(a) is Var and a not in constvars and level[a] < 2
        ))
        const_set, xs_set = set(consts_v), set(xs_v)
        const_res = [r for r in residuals if r in const_set]
        xs_res = [r for r in residuals if r in xs_set]
        inv_res = [r for r in residuals if r not in const_set and level[r] == 0]
        step_res = [r for r in residuals if r not in xs_set and level[r] == 1]
        # Residuals that are also outputs y of the body reuse the stacked ys.
        ys_v = outs[n_carry:]
        self.res_from_ys = [next((i for i, y in enumerate(ys_v) if y is r), None)
                            for r in step_res]
        emitted = [r for r, i in zip(step_res, self.res_from_ys) if i is None]
        self.const_res = [consts_v.index(r) for r in const_res]
        self.xs_res = [xs_v.index(r) for r in xs_res]
        self.invariant = _closed(j.constvars, closed.consts, consts_v,
                                 core.live_eqns(invariant_eqns, inv_res), inv_res)
        forward_outs = [*outs, *emitted]
        self.forward = _closed(j.constvars, closed.consts, consts_v + carry_v + xs_v,
                               core.live_eqns(forward_eqns, forward_outs), forward_outs)
        self.backward = _closed(j.constvars, closed.consts,
                                [*const_res, *inv_res, *xs_res, *step_res, *cts_v],
                                backward_eqns, cts_in)
        self.sizes = [len(const_res), len(inv_res), len(xs_res), len(step_res), len(cts_v)]


def _closed(constvars, consts, invars, eqns, outvars) -> ClosedJaxpr:
    jaxpr, consts = core.eliminate_dead_code(Jaxpr(constvars, invars, eqns, outvars), consts)
    return ClosedJaxpr(jaxpr, consts)


def _scan_reverse(values, needs_grad, *, jaxpr, num_consts, num_carry, length, reverse):
    """Reverse mode of scan: `(outs, backward)`, with `backward(cts) -> cts_in`.

    A forward scan computes the outputs and stacks the residuals; `backward` runs a reverse
    scan of the body's backward part over them (see `_Linearized`).
    """
    float_c, float_k, float_x = _split([_is_float(a) for a in jaxpr.in_avals],
                                       [num_consts, num_carry])
    need_c, need_k, need_x = _split(list(needs_grad), [num_consts, num_carry])
    wanted_c = [f and n for f, n in zip(float_c, need_c)]
    wanted_x = [f and n for f, n in zip(float_x, need_x)]
    lin = _Linearized(jaxpr, num_consts, num_carry, wanted_c + float_k + wanted_x)
    consts, init, xs = _split(values, [num_consts, num_carry])
    all_consts = [*lin.hoisted, *consts]
    outs = scan_p.bind(
        *all_consts, *init, *xs, jaxpr=lin.forward, num_consts=len(all_consts),
        num_carry=num_carry, length=length, reverse=reverse,
    )
    n_out = len(jaxpr.out_avals)
    emitted = iter(outs[n_out:])
    step_res = [next(emitted) if i is None else outs[num_carry + i] for i in lin.res_from_ys]
    residuals = [
        [all_consts[i] for i in lin.const_res],
        _eval(lin.invariant, all_consts),
        [xs[i] for i in lin.xs_res],
        step_res,
    ]

    def backward(cts: Sequence) -> list:
        ct_c, ct_k, ct_x = _scan_backward(lin, residuals, cts, jaxpr.out_avals, num_carry,
                                          length, reverse)
        return [*_fill_none(ct_c, wanted_c),
                *[c if n else None for c, n in zip(_fill_none(ct_k, float_k), need_k)],
                *_fill_none(ct_x, wanted_x)]

    return outs[:n_out], backward


def _scan_backward(lin: _Linearized, residuals: list[list], cts: Sequence,
                   out_avals: Sequence[ShapedArray], num_carry: int, length: int,
                   reverse: bool) -> list[list]:
    """The reverse scan: carries the consts' accumulated cotangents and the carry's
    cotangent; its ys are the xs' cotangents. Returns `[ct_consts, ct_carry, ct_xs]`."""
    const_res, inv_res, xs_res, step_res = residuals
    carry_avals, y_avals = _split(out_avals, [num_carry])
    carry_cts, y_cts = _split(cts, [num_carry])
    ct_carry = [_zeros(_tangent_aval(a)) if is_zero(c) else c
                for c, a in zip(carry_cts, carry_avals) if _is_float(a)]
    float_y = [_is_float(a) for a in y_avals]
    y_given = [not is_zero(c) for c, f in zip(y_cts, float_y) if f]
    given = [c for c, f in zip(y_cts, float_y) if f and not is_zero(c)]
    n_cr, n_ir, n_xr, n_sr, n_cts = lin.sizes
    res_avals, ct_avals = _split(lin.backward.in_avals, [n_cr + n_ir + n_xr + n_sr])
    cr_av, ir_av, xr_av, sr_av = _split(res_avals, [n_cr, n_ir, n_xr])
    ck_av, gy_av = _split(ct_avals, [len(ct_carry)])
    acc_av = lin.const_ct_avals
    sizes = [n_cr, n_ir, len(acc_av), len(ct_carry), n_xr, n_sr]

    def step(*args):
        cr, ir, acc, ck, xr, sr, gy = _split(args, sizes)
        it = iter(gy)
        g_ys = [next(it) if g else _zeros(a) for g, a in zip(y_given, gy_av)]
        cts_in = _eval(lin.backward, [*cr, *ir, *xr, *sr, *ck, *g_ys])
        ct_c, ct_k, ct_x = _split(cts_in, [len(acc), len(ck)])
        return [*[add(a, c) for a, c in zip(acc, ct_c)], *ct_k, *ct_x]

    avals = [*cr_av, *ir_av, *acc_av, *ck_av, *xr_av, *sr_av, *_pick(gy_av, y_given)]
    closed, hoisted = _trace(step, avals, "scan_transpose")
    outs = scan_p.bind(
        *hoisted, *const_res, *inv_res, *[_zeros(a) for a in acc_av], *ct_carry,
        *xs_res, *step_res, *given,
        jaxpr=closed, num_consts=len(hoisted) + n_cr + n_ir,
        num_carry=len(acc_av) + len(ct_carry), length=length, reverse=not reverse,
    )
    return _split(outs, [len(acc_av), len(ct_carry)])


def _scan_vjp(cts, ans, *primals, **params):
    _, backward = _scan_reverse(list(primals), [True] * len(primals), **params)
    return backward(cts)


scan_p.impl = _scan_impl
scan_p.abstract_eval = _scan_abstract_eval
scan_p.jvp = _scan_jvp
scan_p.vjp = _scan_vjp
scan_p.batch = _scan_batch


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
    raise TypeError(_WHILE_VJP_MESSAGE)


def _while_reverse(values, needs_grad, *, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts):
    """Raise at once (not in the backward pass) when a float body input is differentiated.

    Only the condition's constants being differentiated is fine: the predicate is
    piecewise constant, so the outputs' derivative with respect to them is zero.
    """
    floats = [_is_float(get_aval(v)) for v in values]
    if any(f and n for f, n in zip(floats[cond_nconsts:], needs_grad[cond_nconsts:])):
        raise TypeError(_WHILE_VJP_MESSAGE)
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


# Reverse mode (grad, vjp) uses these instead of the vjp rules: scan's keeps the residuals of
# the one forward scan it runs (the tape's vjp rule would run a second forward scan for
# them); while's fails before any work is done.
reverse_rules[scan_p] = _scan_reverse
reverse_rules[while_p] = _while_reverse


# --------------------------------------------------------------------------------------------
# The lax functions
# --------------------------------------------------------------------------------------------

_INT32 = np.dtype(np.int32)


def cond(pred: Any, true_fun: Callable, false_fun: Callable, *operands: Any) -> Any:
    """`true_fun(*operands)` if `pred` else `false_fun(*operands)`, as one staged primitive.

    Both branches are traced (so their outputs must agree), and only the selected one runs.
    Use it instead of a Python `if` on a traced value (under jit, or inside scan bodies).

    Args:
      pred: a Python bool or a scalar boolean (or integer: nonzero is True) array.
      true_fun, false_fun: functions of `*operands` returning pytrees of arrays with
        identical structure, shapes and dtypes. They may take no operands and close over
        values instead.
      *operands: pytrees of arrays passed to the branch.

    Returns:
      The selected branch's output.

    Raises:
      TypeError: a non-scalar or float `pred`, or branches whose outputs differ (the message
        names the output leaf and both types).

    Example:
      >>> cond(True, lambda v: v * 2.0, lambda v: -v, 3.0)
      Array(6., dtype=float32, weak_type=True)
      >>> vmap(lambda x: cond(x > 0, jnp.sin, jnp.cos, x))(jnp.array([0.0, 1.0]))  # both run
      Array([1.      , 0.841471], dtype=float32)
    """
    for fun, name in ((true_fun, "true_fun"), (false_fun, "false_fun")):
        if not callable(fun):
            raise TypeError(f"cond: {name} must be callable, got {type(fun).__name__}")
    index = _pred_to_index(pred)
    return _staged_cond(index, [false_fun, true_fun], ["false_fun", "true_fun"], operands,
                        "cond")


def switch(index: Any, branches: Sequence[Callable], *operands: Any) -> Any:
    """`branches[index](*operands)`, with `index` clamped to `[0, len(branches) - 1]`.

    Args:
      index: a Python int or a scalar integer array (traced values allowed).
      branches: a non-empty sequence of functions of `*operands`, all returning pytrees of
        arrays with identical structure, shapes and dtypes.
      *operands: pytrees of arrays passed to the selected branch.

    Returns:
      The selected branch's output.

    Example:
      >>> switch(7, [jnp.sin, jnp.cos, jnp.tanh], 1.0)   # clamped: jnp.tanh(1.0)
      Array(0.7615942, dtype=float32, weak_type=True)
    """
    branches = list(branches) if isinstance(branches, (list, tuple)) else None
    if not branches or not all(callable(b) for b in branches):
        raise TypeError("switch: branches must be a non-empty list or tuple of callables")
    index = _clamped_index(index, len(branches))
    if len(branches) == 1:
        return branches[0](*operands)
    names = [f"branches[{i}]" for i in range(len(branches))]
    return _staged_cond(index, branches, names, operands, "switch")


def _pred_to_index(pred: Any):
    aval = _scalar_aval(pred, "cond", "pred")
    if aval.dtype.kind == "b":
        return convert_element_type(pred, _INT32)
    if aval.dtype.kind in "iu":
        return convert_element_type(ne(pred, full((), 0, aval.dtype)), _INT32)
    raise TypeError(f"cond: pred must be a boolean (or integer) scalar, got {aval.str_short()}; "
                    "compare it explicitly, e.g. cond(x > 0, ...)")


def _clamped_index(index: Any, n: int):
    aval = _scalar_aval(index, "switch", "index")
    if aval.dtype.kind not in "iu":
        raise TypeError(f"switch: the branch index must be an integer scalar, got "
                        f"{aval.str_short()}; convert it with .astype(jnp.int32)")
    index = convert_element_type(index, _INT32)
    return _lax_max(_lax_min(index, full((), n - 1, _INT32)), full((), 0, _INT32))


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


def _staged_cond(index, funs: list[Callable], names: list[str], operands: tuple, what: str):
    leaves, in_tree = _array_leaves(operands, "operands", what)
    avals = [get_aval(x) for x in leaves]
    traced, trees = [], []
    for fun, name in zip(funs, names):
        closed, hoisted, out_tree = _trace_fun(
            lambda xs, fun=fun: fun(*tree_unflatten(in_tree, xs)), avals,
            f"{what} {name} ({_fun_name(fun)})",
        )
        traced.append((closed, hoisted))
        trees.append(out_tree)
    _check_branch_outputs(what, names, trees, [c.out_avals for c, _ in traced])
    branches, hoisted = _join_branches(traced)
    outs = cond_p.bind(index, *hoisted, *leaves, branches=branches)
    return tree_unflatten(trees[0], outs)


def _check_branch_outputs(what: str, names: list[str], trees: list, avals: list) -> None:
    """TypeError naming the branch and the output leaf where branches disagree."""
    for name, tree, out in zip(names[1:], trees[1:], avals[1:]):
        if tree != trees[0]:
            raise TypeError(
                f"{what}: branch outputs must have the same pytree structure, but {names[0]} "
                f"returns {trees[0]} and {name} returns {tree}"
            )
        for i, (a, b) in enumerate(zip(avals[0], out)):
            if not _same_type(a, b):
                path = leaf_paths(tree_unflatten(tree, out), "output")[i]
                raise TypeError(
                    f"{what}: branch outputs must have identical types (shapes and dtypes), "
                    f"but the output at {path} is {a.str_short()} in {names[0]} and "
                    f"{b.str_short()} in {name}. Make the branches agree (e.g. with .astype() "
                    "or jnp.broadcast_to)."
                )


def scan(f: Callable, init: Any, xs: Any = None, length: int | None = None,
         reverse: bool = False, unroll: int | bool = 1, _split_transpose: bool = False
         ) -> tuple[Any, Any]:
    """Loop `f` over the leading axis of `xs`, carrying state; stack the per-step outputs.

    Semantics (for `reverse=False`):

        carry = init
        for i in range(length):
            carry, y_i = f(carry, x_i)           # x_i: every leaf of xs indexed at i
        return carry, stack(y_0 ... y_{length-1})

    With `reverse=True` the steps run from the last index to the first (ys keep their
    positions). The loop is one primitive: jit compiles it as a loop, and it is
    differentiable in both modes (reverse mode stores per-step residuals, not the whole
    unrolled program) and batchable.

    Args:
      f: `f(carry, x) -> (new_carry, y)`; `new_carry` must have `init`'s pytree structure,
        shapes and dtypes; `y` is any pytree of arrays (or None).
      init: the initial carry, a pytree of arrays.
      xs: a pytree of arrays with a common leading axis, or None (then `length` is needed and
        `f` receives None as x).
      length: the number of steps; must agree with the leading axis of `xs` if both given.
      reverse: iterate from the end.
      unroll, _split_transpose: accepted for JAX compatibility; no effect.

    Returns:
      `(final_carry, stacked_ys)`: each leaf of `stacked_ys` has a leading axis of `length`.

    Example:
      >>> def cumsum_step(total, x):
      ...     return total + x, total + x
      >>> scan(cumsum_step, 0.0, jnp.arange(4.0))
      (Array(6., dtype=float32), Array([0., 1., 3., 6.], dtype=float32))
    """
    if not callable(f):
        raise TypeError(f"scan: f must be callable, got {type(f).__name__}")
    x_leaves, xs_tree = _array_leaves(xs, "xs", "scan")
    length = _scan_length(x_leaves, xs, length)
    init_leaves, init_tree = _array_leaves(init, "init", "scan")
    x_avals = [_slice_aval(get_aval(x)) for x in x_leaves]
    what = f"scan body function {_fun_name(f)}"
    n_carry = len(init_leaves)
    trees: dict[str, PyTreeDef] = {}

    def call(leaves: list):
        carry = tree_unflatten(init_tree, leaves[:n_carry])
        out = f(carry, tree_unflatten(xs_tree, leaves[n_carry:]))
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(f"{what} must return a pair (new_carry, y), got "
                            f"{_type_summary(out)}")
        trees["carry"], trees["y"] = tree_structure(out[0]), tree_structure(out[1])
        return [out[0], out[1]]

    while True:
        carry_avals = [get_aval(x) for x in init_leaves]
        closed, hoisted, _ = _trace_fun(call, [*carry_avals, *x_avals], what)
        _check_carry_tree(what, init_tree, trees["carry"])
        promoted = _promote_weak_carry(init_leaves, carry_avals, closed.out_avals[:n_carry])
        if promoted is None:
            break
        init_leaves = promoted
    _check_carry_types(what, init, "carry", carry_avals, closed.out_avals[:n_carry])
    outs = scan_p.bind(
        *hoisted, *init_leaves, *x_leaves, jaxpr=closed, num_consts=len(hoisted),
        num_carry=n_carry, length=length, reverse=bool(reverse),
    )
    return tree_unflatten(init_tree, outs[:n_carry]), tree_unflatten(trees["y"], outs[n_carry:])


def _slice_aval(aval: ShapedArray) -> ShapedArray:
    return ShapedArray(aval.shape[1:], aval.dtype, aval.weak_type)


def _type_summary(x: Any) -> str:
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of length {len(x)}"
    aval = getattr(x, "aval", None)
    return f"an array {aval.str_short()}" if aval is not None else f"a {type(x).__name__}"


def _scan_length(x_leaves: list, xs: Any, length: Any) -> int:
    """The number of steps, checked against every leaf of xs (ValueError on disagreement)."""
    sizes = []
    for i, x in enumerate(x_leaves):
        shape = get_aval(x).shape
        if not shape:
            path = leaf_paths(xs, "xs")[i]
            raise ValueError(f"scan: {path} is 0-d, but every leaf of xs needs a leading axis "
                             "to scan over")
        sizes.append(shape[0])
    if length is not None:
        try:
            length = operator.index(length)
        except TypeError:
            raise TypeError(f"scan: length must be a Python int, got {length!r}") from None
        if length < 0:
            raise ValueError(f"scan: length must be non-negative, got {length}")
        if any(s != length for s in sizes):
            raise ValueError(f"scan got `length` argument of {length} which disagrees with "
                             f"the leading axis sizes of xs {sorted(set(sizes))}")
        return length
    if not sizes:
        raise ValueError("scan got no values to scan over and `length` not provided: pass "
                         "length=... when xs is None (or has no leaves)")
    if len(set(sizes)) > 1:
        paths = leaf_paths(xs, "xs")
        detail = ", ".join(f"{p}: {s}" for p, s in zip(paths, sizes))
        raise ValueError(f"scan got values with different leading axis sizes: {detail}")
    return sizes[0]


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
      Array(10, dtype=int32)
    """
    dtype = _bound_dtype(lower, upper)
    one = full((), 1, dtype)
    lo, hi = _static_int(lower), _static_int(upper)
    if lo is not None and hi is not None:

        def scan_step(carry, _):
            i, val = carry
            return (add(i, one), body_fun(i, val)), None

        start = full((), lo, dtype)
        (_, result), _ = scan(scan_step, (start, init_val), None, length=hi - lo if hi > lo else 0)
        return result

    def keep_going(carry):
        return lt(carry[0], carry[1])

    def while_step(carry):
        i, stop, val = carry
        return add(i, one), stop, body_fun(i, val)

    bounds = (convert_element_type(lower, dtype), convert_element_type(upper, dtype))
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
        promoted = _promote_weak_carry(leaves, avals, body_closed.out_avals)
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


def map(f: Callable, xs: Any, *, batch_size: int | None = None) -> Any:
    """`f` applied to each slice of `xs` along its leading axis, stacked: a scan with no carry.

    Unlike vmap, the slices are processed one after another (less memory, a loop).

    Args:
      f: a function of one slice (a pytree of arrays) returning a pytree of arrays.
      xs: a pytree of arrays with a common leading axis.
      batch_size: accepted for JAX compatibility; slices are processed one at a time.

    Returns:
      The stacked outputs.

    Example:
      >>> map(lambda row: row.sum(), jnp.ones((3, 4)))
      Array([4., 4., 4.], dtype=float32)
    """
    _, ys = scan(lambda carry, x: (carry, f(x)), (), xs)
    return ys
