"""The `cond` primitive (also behind `switch`) with its rules, and the lax functions `cond` and
`switch`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fnbrrr import core
from fnbrrr._prims.control_flow._common import (
    _INT32,
    _array_leaves,
    _as_fun,
    _as_impl,
    _as_numpy,
    _eager,
    _eval,
    _fill,
    _fill_none,
    _fun_name,
    _hoist,
    _is_float,
    _jvp_of,
    _nonzero_outputs,
    _pick,
    _run,
    _same_type,
    _scalar_aval,
    _select_per_example,
    _tangent_aval,
    _trace,
    _trace_fun,
    _with_invars,
)
from fnbrrr._prims.elementwise import convert_element_type, full, ne
from fnbrrr._prims.elementwise import max as _lax_max
from fnbrrr._prims.elementwise import min as _lax_min
from fnbrrr.ad import vjp_flat
from fnbrrr.ad_util import is_zero
from fnbrrr.batching import batch_jaxpr, batch_size, moveaxis
from fnbrrr.core import ClosedJaxpr, Primitive, ShapedArray, Var, get_aval
from fnbrrr.tree_util import leaf_paths, tree_unflatten

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


cond_p.impl = _cond_impl
cond_p.abstract_eval = _cond_abstract_eval
cond_p.jvp = _cond_jvp
cond_p.vjp = _cond_vjp
cond_p.batch = _cond_batch


# --------------------------------------------------------------------------------------------
# The lax functions: cond and switch
# --------------------------------------------------------------------------------------------


def cond(pred: Any, true_fun: Callable, false_fun: Callable, *operands: Any) -> Any:
    """`true_fun(*operands)` if `pred` else `false_fun(*operands)`, as one staged primitive.

    Both branches are traced (so their outputs must agree), and only the selected one runs.
    Use it instead of a Python `if` on a traced value (under jit, or inside scan bodies).

    Args:
      pred: a Python bool or a scalar boolean array (or a number: nonzero, NaN included,
        is True, as in JAX).
      true_fun, false_fun: functions of `*operands` returning pytrees of arrays with
        identical structure, shapes and dtypes. They may take no operands and close over
        values instead.
      *operands: pytrees of arrays passed to the branch.

    Returns:
      The selected branch's output.

    Raises:
      TypeError: a non-scalar `pred`, or branches whose outputs differ (the message names
        the output leaf and both types).

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
    if branches is None or not all(callable(b) for b in branches):
        raise TypeError("switch: branches must be a list or tuple of callables")
    if not branches:
        raise ValueError("switch: branches is empty; pass at least one function")
    index = _clamped_index(index, len(branches))
    if len(branches) == 1:
        return branches[0](*operands)
    names = [f"branches[{i}]" for i in range(len(branches))]
    return _staged_cond(index, branches, names, operands, "switch")


def _pred_to_index(pred: Any):
    aval = _scalar_aval(pred, "cond", "pred")
    if aval.dtype.kind == "b":
        return convert_element_type(pred, _INT32)
    if aval.dtype.kind in "iuf":
        return convert_element_type(ne(pred, full((), 0, aval.dtype)), _INT32)
    raise TypeError(f"cond: pred must be a boolean or numeric scalar, got {aval.str_short()}; "
                    "compare it explicitly, e.g. cond(x > 0, ...)")


def _clamped_index(index: Any, n: int):
    aval = _scalar_aval(index, "switch", "index")
    if aval.dtype.kind not in "iu":
        raise TypeError(f"switch: the branch index must be an integer scalar, got "
                        f"{aval.str_short()}; convert it with .astype(jnp.int32)")
    index = convert_element_type(index, _INT32)
    return _lax_max(_lax_min(index, full((), n - 1, _INT32)), full((), 0, _INT32))


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
