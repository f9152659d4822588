"""The `scan` primitive with its rules (reverse mode: `_Linearized`), and the lax functions
`scan` and `map`."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fnbrrr import core
from fnbrrr._prims.control_flow._common import (
    _array_leaves,
    _as_fun,
    _as_impl,
    _carry_fixpoint,
    _check_carry_tree,
    _check_carry_types,
    _closure_convert,
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
    _promote_weak_carry,
    _run,
    _same_type,
    _split,
    _stacked,
    _tangent_aval,
    _trace,
    _trace_fun,
    _zeros,
)
from fnbrrr._prims.elementwise import add
from fnbrrr.ad import reverse_rules, vjp_flat
from fnbrrr.ad_util import instantiate, is_zero
from fnbrrr.batching import batch_jaxpr, batch_size, bdim_at_front, moveaxis
from fnbrrr.core import ArrayImpl, ClosedJaxpr, Jaxpr, Primitive, ShapedArray, Var, get_aval
from fnbrrr.tree_util import PyTreeDef, leaf_paths, tree_structure, tree_unflatten

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
    return [*carry_out, *[_stacked(a, length) for a in jaxpr.out_avals[num_carry:]]]


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


# Reverse mode (grad, vjp) uses this instead of the vjp rule: it keeps the residuals of the
# one forward scan it runs (the tape's vjp rule would run a second forward scan for them).
reverse_rules[scan_p] = _scan_reverse


# --------------------------------------------------------------------------------------------
# The lax functions: scan and map
# --------------------------------------------------------------------------------------------


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
