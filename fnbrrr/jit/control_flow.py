"""Lowering of control flow: `scan`, `cond` and `while` become real loops and branches inside
the one compiled function, not unrolled traces and not Python loops calling kernels.

A loop body is an IR program: it is optimised and fused like any program and emitted inline
(`emit_subprogram`), so compile time does not grow with the trip count. Carries live in two
scratch buffers per carried value that swap roles after every iteration (the body reads one
and writes the other, so no kernel ever reads a value the same iteration already overwrote).
The body's own intermediates are scratch buffers allocated once per call and reused by every
iteration (PERF.md fact 5).
"""

from __future__ import annotations

from fnbrrr.core import Literal
from fnbrrr.jit.kernels import assign_atom
from fnbrrr.jit.lowering import Kernel, literal


def _scalar(name: str, atom) -> str:
    return literal(atom.val, atom.aval.dtype) if type(atom) is Literal else f"{name}.item()"


def _step_slices(em, ctx, arrays, avals, index: str, depth: int, reading: bool):
    """Per-iteration views `a[index]` of stacked arrays; 0-d slices go through a scratch."""
    views, after = [], []
    for name, aval in zip(arrays, avals):
        item = aval.update(shape=aval.shape[1:])
        if item.ndim == 0:
            scratch = em.temp(item)
            if reading:
                em.emit(f"{scratch}[()] = {name}[{index}]", depth)
            else:
                after.append(f"{name}[{index}] = {scratch}.item()")
            views.append(scratch)
        else:
            view = ctx.fresh("sl")
            em.emit(f"{view} = {name}[{index}]", depth)
            views.append(view)
    return views, after


def _copy(em, ctx, dst: str, src: str, atom, depth: int = 1) -> None:
    """`dst[...] = src` for the value `atom`, as loops (`assign_atom`)."""
    em.emit_lines(assign_atom(ctx, dst, src, atom), depth)


def _swap(em, current: list[str], following: list[str], depth: int) -> None:
    """Exchange the two carry buffers' roles: what was written becomes what is read."""
    if current:
        em.emit(f"{', '.join(current + following)} = {', '.join(following + current)}", depth)


def _emit_scan(ctx, eqn, ins, outs):
    em = ctx.emitter
    p = eqn.params
    body, n_consts, n_carry = p["jaxpr"], p["num_consts"], p["num_carry"]
    length, reverse = p["length"], p["reverse"]
    consts, init, xs = ins[:n_consts], ins[n_consts:n_consts + n_carry], ins[n_consts + n_carry:]
    carry_avals = [a.aval for a in eqn.inputs[n_consts:n_consts + n_carry]]
    xs_avals = [a.aval for a in eqn.inputs[n_consts + n_carry:]]
    ys_avals = [v.aval for v in eqn.outvars[n_carry:]]
    current = [em.temp(a) for a in carry_avals]
    following = [em.temp(a) for a in carry_avals]
    em.emit(f"# scan over {length} steps{' (reversed)' if reverse else ''}: the body is fused "
            "and inlined; carries swap between two buffers")
    for buf, value, atom in zip(current, init, eqn.inputs[n_consts:n_consts + n_carry]):
        _copy(em, ctx, buf, value, atom)
    step, index = ctx.fresh("step"), ctx.fresh("at")
    em.emit(f"for {step} in range({length}):")
    em.emit(f"{index} = {length - 1} - {step}" if reverse else f"{index} = {step}", 2)
    x_views, _ = _step_slices(em, ctx, xs, xs_avals, index, 2, reading=True)
    y_views, y_stores = _step_slices(em, ctx, outs[n_carry:], ys_avals, index, 2, reading=False)
    em.emit_subprogram(body, list(consts) + current + x_views, following + y_views, 2)
    for line in y_stores:
        em.emit(line, 2)
    _swap(em, current, following, 2)
    for out, buf, var in zip(outs[:n_carry], current, eqn.outvars):
        _copy(em, ctx, out, buf, var)
    return []


def _emit_cond(ctx, eqn, ins, outs):
    em = ctx.emitter
    branches = eqn.params["branches"]
    index = ctx.fresh("branch")
    em.emit(f"{index} = min(max({_scalar(ins[0], eqn.inputs[0])}, 0), {len(branches) - 1})")
    for i, branch in enumerate(branches):
        keyword = "if" if i == 0 else ("else" if i == len(branches) - 1 else "elif")
        em.emit(f"{keyword} {index} == {i}:" if keyword != "else" else "else:")
        em.emit_subprogram(branch, list(ins[1:]), list(outs), 2)
    return []


def _emit_while(ctx, eqn, ins, outs):
    em = ctx.emitter
    p = eqn.params
    cond, body = p["cond_jaxpr"], p["body_jaxpr"]
    n_cond, n_body = p["cond_nconsts"], p["body_nconsts"]
    cond_consts, body_consts = ins[:n_cond], ins[n_cond:n_cond + n_body]
    init = ins[n_cond + n_body:]
    avals = [a.aval for a in eqn.inputs[n_cond + n_body:]]
    current = [em.temp(a) for a in avals]
    following = [em.temp(a) for a in avals]
    predicate = em.temp(cond.out_avals[0])
    em.emit("# while loop: condition and body are fused and inlined")
    for buf, value, atom in zip(current, init, eqn.inputs[n_cond + n_body:]):
        _copy(em, ctx, buf, value, atom)
    em.emit("while True:")
    em.emit_subprogram(cond, list(cond_consts) + current, [predicate], 2)
    em.emit(f"if not {predicate}.item():", 2)
    em.emit("break", 3)
    em.emit_subprogram(body, list(body_consts) + current, following, 2)
    _swap(em, current, following, 2)
    for out, buf, var in zip(outs, current, eqn.outvars):
        _copy(em, ctx, out, buf, var)
    return []


CONTROL_FLOW = {
    "scan": Kernel(_emit_scan),
    "cond": Kernel(_emit_cond),
    "while": Kernel(_emit_while),
}
