"""FLOP and byte counts of programs, from the IR (never from timing: PERF.md fact 9).

Three numbers describe the work of an equation, with JAX's key names:

* `flops`: arithmetic operations. One per result element for elementwise arithmetic and
  comparisons, `in - out` for a reduction (combining n values takes n - 1 steps per result),
  `2*M*N*K` for a matmul (a multiply and an add per term).
* `transcendentals`: exp, log, tanh, sin, sqrt... one per element, counted apart from FLOPs
  (a transcendental costs tens of FLOPs, and its speed is calibrated on its own).
* `bytes accessed`: memory traffic. An equation run alone reads its array operands and writes
  its results (literals live in registers and cost nothing).

A fused program moves fewer bytes: intermediates of a fused loop stay in registers. So a
program has two byte counts. *Unfused* is the sum over equations, as if they ran op by op.
*Fused* counts each buffer the plan materialises (inputs, constants, outputs and the
intermediates that need a buffer) once; fusion saved the difference. Loops in the program
(`scan`, `while`) add the traffic of their bodies, which run many times.

The rules live in one table, `COST_RULES`, keyed by primitive name: one line per primitive
where the rule is simple, a named function where it is not. `tests/test_cost.py` fails when a
registered primitive has no rule. Each rule maps `(in_avals, out_avals, params)` to a `Cost`.

Example:
    >>> compiled = fnbrrr.jit(lambda a, b: a @ b).lower(a, b).compile()
    >>> compiled.cost_analysis()["flops"]          # 2*M*N*K
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

from fnbrrr import core
from fnbrrr.core import Eqn, Jaxpr, Literal, Var, VarNames

# --------------------------------------------------------------------------------------------
# The rules
# --------------------------------------------------------------------------------------------


class Cost(NamedTuple):
    """What one equation costs. `bytes=None` means the default: operands + results."""

    flops: float = 0.0
    transcendentals: float = 0.0
    bytes: float | None = None
    unknown_trip_counts: int = 0  # while loops inside, counted as one trip each


Rule = Callable[[list, list, dict], Cost]


def _size(aval) -> int:
    return math.prod(aval.shape)


def _nbytes(aval) -> int:
    return _size(aval) * aval.dtype.itemsize


def per_element(flops: float = 0, transcendentals: float = 0) -> Rule:
    """Elementwise: `flops` and `transcendentals` per element of the (first) result."""

    def rule(ins, outs, params):
        n = _size(outs[0])
        return Cost(flops * n, transcendentals * n)

    return rule


def moves_data(ins, outs, params) -> Cost:
    """No arithmetic: reads the operands, writes the results."""
    return Cost()


def _reduction(ins, outs, params) -> Cost:
    return Cost(max(_size(ins[0]) - _size(outs[0]), 0))


def _arg_reduction(ins, outs, params) -> Cost:
    return Cost(_size(ins[0]))  # one comparison per element (the index rides along)


def _integer_pow(ins, outs, params) -> Cost:
    y = abs(params["y"])
    multiplies = max(y - 1, 0)  # the kernel writes x*x*...*x
    return Cost((multiplies + (params["y"] < 0)) * _size(outs[0]))


def _dot_general(ins, outs, params) -> Cost:
    (lhs_contract, _), _ = params["dimension_numbers"]
    k = math.prod(ins[0].shape[d] for d in lhs_contract)
    return Cost(2 * _size(outs[0]) * k)


def _gather(ins, outs, params) -> Cost:
    # Reads only the gathered elements (and the indices), not the whole operand.
    return Cost(bytes=_nbytes(ins[1]) + 2 * _nbytes(outs[0]))


def _dynamic_slice(ins, outs, params) -> Cost:
    return Cost(bytes=2 * _nbytes(outs[0]) + sum(_nbytes(a) for a in ins[1:]))


def _scatter_combine(ins, outs, params) -> Cost:
    return Cost(_size(ins[2]))  # one add (or multiply) per update element


def _argsort(ins, outs, params) -> Cost:
    n = ins[0].shape[params["axis"]]
    return Cost(_size(ins[0]) * max(math.ceil(math.log2(max(n, 1))), 1))


def _conv(ins, outs, params) -> Cost:
    """2 FLOPs per kernel tap: each result sums in-features (per group) x kernel window terms
    (taps that land on padding or dilation holes are counted, as XLA counts them)."""
    rhs, rhs_spec = ins[1], params["dimension_numbers"][1]
    taps = rhs.shape[rhs_spec[1]] * math.prod(rhs.shape[d] for d in rhs_spec[2:])
    return Cost(2 * _size(outs[0]) * taps)


def _window_reduction(ins, outs, params) -> Cost:
    return Cost(_size(outs[0]) * max(math.prod(params["window_dimensions"]) - 1, 0))


def _select_and_gather(ins, outs, params) -> Cost:
    return Cost(_size(outs[0]) * math.prod(params["window_dimensions"]))  # an arg-max per window


def _select_and_scatter(ins, outs, params) -> Cost:
    # an arg-max per window, then one add per source element
    return Cost(_size(ins[0]) * (math.prod(params["window_dimensions"]) + 1))


# Threefry-2x32 per counter: 20 rounds of (add, rotate = shl+shr+or, xor), 5 key injections of
# three adds, the initial two adds and the key parity (two xors): integer operations.
THREEFRY_OPS = 20 * 5 + 5 * 3 + 2 + 2

# --- sub-programs: calls, branches and loops ------------------------------------------------


def _closed_cost(closed, fused: bool) -> dict:
    """The cost of a closed sub-program: optimised, and fused when the compiler fuses it."""
    from fnbrrr.jit import passes
    from fnbrrr.jit.fusion import plan_fusion

    jaxpr, _ = passes.optimize(closed.jaxpr, closed.consts)
    return program_cost(jaxpr, plan=plan_fusion(jaxpr) if fused else None)


def _as_cost(total: dict, times: float = 1) -> Cost:
    return Cost(times * total["flops"], times * total["transcendentals"],
                times * total["bytes accessed"], int(total["unknown trip counts"]))


def _call(ins, outs, params) -> Cost:
    """A call (nested jit, custom rules, checkpoint): inlined, so its equations run op by op
    as far as this one equation is concerned."""
    closed = params.get("call_jaxpr") or params["jaxpr"]
    return _as_cost(_closed_cost(closed, fused=False))


def _scan(ins, outs, params) -> Cost:
    """`length` trips of the body, which is compiled as a fused loop of its own."""
    return _as_cost(_closed_cost(params["jaxpr"], fused=True), params["length"])


def _cond(ins, outs, params) -> Cost:
    """The most expensive branch (only one runs), plus reading the branch index."""
    branches = [_closed_cost(b, fused=True) for b in params["branches"]]
    worst = {key: max(b[key] for b in branches) for key in _KEYS}
    cost = _as_cost(worst)
    return cost._replace(bytes=cost.bytes + _nbytes(ins[0]))


def _while(ins, outs, params) -> Cost:
    """The trip count is not known before running: one trip of condition + body, flagged."""
    cond = _closed_cost(params["cond_jaxpr"], fused=True)
    body = _closed_cost(params["body_jaxpr"], fused=True)
    cost = _as_cost({key: cond[key] + body[key] for key in cond})
    return cost._replace(unknown_trip_counts=cost.unknown_trip_counts + 1)


# --- the table -------------------------------------------------------------------------------

ARITHMETIC = per_element(flops=1)
TRANSCENDENTAL = per_element(transcendentals=1)

COST_RULES: dict[str, Rule] = {
    # elementwise arithmetic, comparisons and bit operations: one FLOP per element
    "neg": ARITHMETIC, "add": ARITHMETIC, "sub": ARITHMETIC, "mul": ARITHMETIC,
    "div": ARITHMETIC, "rem": ARITHMETIC, "max": ARITHMETIC, "min": ARITHMETIC,
    "abs": ARITHMETIC, "sign": ARITHMETIC, "floor": ARITHMETIC, "ceil": ARITHMETIC,
    "round": ARITHMETIC, "square": ARITHMETIC, "is_finite": ARITHMETIC,
    "eq": ARITHMETIC, "ne": ARITHMETIC, "lt": ARITHMETIC, "le": ARITHMETIC,
    "gt": ARITHMETIC, "ge": ARITHMETIC, "and": ARITHMETIC, "or": ARITHMETIC,
    "xor": ARITHMETIC, "not": ARITHMETIC, "select_n": ARITHMETIC,
    "integer_pow": _integer_pow,
    # transcendentals: one per element, counted apart from FLOPs (XLA's list)
    "exp": TRANSCENDENTAL, "log": TRANSCENDENTAL, "log1p": TRANSCENDENTAL,
    "expm1": TRANSCENDENTAL, "sin": TRANSCENDENTAL, "cos": TRANSCENDENTAL,
    "tan": TRANSCENDENTAL, "tanh": TRANSCENDENTAL, "logistic": TRANSCENDENTAL,
    "erf": TRANSCENDENTAL, "sqrt": TRANSCENDENTAL, "rsqrt": TRANSCENDENTAL,
    "pow": TRANSCENDENTAL, "atan2": TRANSCENDENTAL,
    # no arithmetic: data movement, dtype changes, identities
    "convert_element_type": moves_data, "stop_gradient": moves_data,
    "broadcast_in_dim": moves_data, "reshape": moves_data, "transpose": moves_data,
    "squeeze": moves_data, "slice": moves_data, "rev": moves_data, "iota": moves_data,
    "pad": moves_data, "concatenate": moves_data, "dynamic_update_slice": moves_data,
    "scatter": moves_data, "gather": _gather, "dynamic_slice": _dynamic_slice,
    # reductions
    "reduce_sum": _reduction, "reduce_prod": _reduction, "reduce_max": _reduction,
    "reduce_min": _reduction, "reduce_and": _reduction, "reduce_or": _reduction,
    "argmax": _arg_reduction, "argmin": _arg_reduction, "argsort": _argsort,
    # linear algebra, convolutions and windows, scatters, random bits
    "dot_general": _dot_general, "conv_general_dilated": _conv,
    "window_sum": _window_reduction, "window_max": _window_reduction,
    "select_and_gather_add": _select_and_gather, "select_and_scatter_add": _select_and_scatter,
    "scatter_add": _scatter_combine, "scatter_mul": _scatter_combine,
    "threefry2x32": per_element(flops=THREEFRY_OPS),
    # sub-programs
    "pjit": _call, "custom_jvp_call": _call, "custom_vjp_call": _call, "checkpoint": _call,
    "scan": _scan, "cond": _cond, "while": _while,
}


def missing_rules() -> list[str]:
    """Registered primitives without a cost rule (the registry test asserts there are none)."""
    return sorted(name for name in core.primitives if name not in COST_RULES)


def install() -> None:
    """Fill every registered primitive's `cost(*avals, **params)` slot from `COST_RULES`."""
    for name, prim in core.primitives.items():
        rule = COST_RULES.get(name)
        if rule is not None and prim.cost is None:
            prim.cost = _slot(prim, rule)


def _slot(prim, rule: Rule) -> Callable:
    def cost(*avals, **params) -> dict:
        outs = prim.abstract_eval(*avals, **params)
        outs = list(outs) if prim.multiple_results else [outs]
        c = rule(list(avals), outs, params)
        moved = c.bytes if c.bytes is not None else sum(map(_nbytes, [*avals, *outs]))
        return {"flops": float(c.flops), "transcendentals": float(c.transcendentals),
                "bytes accessed": float(moved)}

    return cost


# --------------------------------------------------------------------------------------------
# Equations and programs
# --------------------------------------------------------------------------------------------


def _atom_bytes(atom) -> int:
    return 0 if type(atom) is Literal else _nbytes(atom.aval)


def rule_cost(eqn: Eqn) -> Cost:
    """The rule's `Cost` for one equation (bytes filled in); a primitive without a rule counts
    one FLOP per result element and is flagged by `missing_rules`."""
    rule = COST_RULES.get(eqn.primitive.name, ARITHMETIC)
    cost = rule([a.aval for a in eqn.inputs], [v.aval for v in eqn.outvars], eqn.params)
    if cost.bytes is None:
        moved = sum(_atom_bytes(a) for a in eqn.inputs) + sum(_atom_bytes(v) for v in
                                                              eqn.outvars)
        cost = cost._replace(bytes=moved)
    return cost


def eqn_cost(eqn: Eqn) -> dict:
    """FLOPs, transcendentals and bytes of one equation run on its own.

    Args:
      eqn: an IR equation.

    Returns:
      `{"flops", "transcendentals", "bytes accessed", "unknown trip counts"}` as floats.

    Example:
        >>> eqn_cost(make_jaxpr(jnp.tanh)(jnp.ones(8)).eqns[0])["transcendentals"]
        8.0
    """
    cost = rule_cost(eqn)
    return {"flops": float(cost.flops), "transcendentals": float(cost.transcendentals),
            "bytes accessed": float(cost.bytes),
            "unknown trip counts": float(cost.unknown_trip_counts)}


_KEYS = ("flops", "transcendentals", "bytes accessed", "unknown trip counts")


def _sum_costs(eqns) -> dict:
    total = dict.fromkeys(_KEYS, 0.0)
    for eqn in eqns:
        for key, value in eqn_cost(eqn).items():
            total[key] += value
    return total


def program_cost(jaxpr: Jaxpr, materialized: set | None = None, *, plan=None,
                 steps: list | None = None) -> dict:
    """Totals over a program, and per fused kernel when the fusion plan is known.

    Args:
      jaxpr: the (optimised) program.
      materialized: the fusion plan's buffers; kept for callers that pass only these. When
        given without `plan`, the plan is recomputed from `jaxpr` (it is deterministic).
      plan: the `fusion.Plan` of `jaxpr`. Without a plan (and `materialized`), bytes are the
        unfused count.
      steps: the generated program's `StepInfo` list (`Generated.steps`); by default the steps
        the code generator makes of `plan`.

    Returns:
      A dict with `flops`, `transcendentals`, `bytes accessed` (fused when a plan is known),
      `bytes accessed unfused`, `bytes saved by fusion`, `unknown trip counts` (while loops,
      counted as one trip) and `kernels`: one dict per step of the compiled program with its
      `kind`, `equations` (printed, with the user's source lines), `shape`, `flops`,
      `transcendentals` and `bytes accessed`.

    Example:
        >>> program_cost(lowered.jaxpr, plan=lowered.plan)["bytes saved by fusion"]
    """
    total = _sum_costs(jaxpr.eqns)
    total["bytes accessed unfused"] = total["bytes accessed"]
    if plan is None and materialized is not None:
        from fnbrrr.jit.fusion import plan_fusion

        plan = plan_fusion(jaxpr)
    if plan is None:
        total["bytes saved by fusion"] = 0.0
        total["kernels"] = []
        return total
    total["bytes accessed"] = float(fused_bytes(plan))
    total["bytes saved by fusion"] = total["bytes accessed unfused"] - total["bytes accessed"]
    names = VarNames()
    core.pretty_print(jaxpr, names)  # name variables in program order, as the printer does
    steps = steps if steps is not None else plan_steps(plan)
    total["kernels"] = [step_cost(step, plan, names) for step in steps]
    return total


# --------------------------------------------------------------------------------------------
# Fused bytes: buffers of the plan, and the steps of the generated program
# --------------------------------------------------------------------------------------------


def _is_view(var: Var, plan) -> bool:
    """A reshape of a buffer is a view of it (no copy), unless it is a program output."""
    producer = _producer(plan.jaxpr, var)
    return (producer is not None and producer.primitive.name == "reshape"
            and var not in plan.jaxpr.outvars)


def _producer(jaxpr: Jaxpr, var: Var):
    return next((e for e in jaxpr.eqns if var in e.outvars), None)


def _read_roots(eqns, plan) -> set:
    """The variables the equations read from memory, following remaps to their operand."""
    read = set()
    for eqn in eqns:
        for atom in eqn.inputs:
            while type(atom) is Var and atom in plan.remaps:
                inputs = plan.remaps[atom].inputs
                atom = inputs[0] if inputs else None
            if type(atom) is Var:
                read.add(atom)
    return read


def _loop_carried_surplus(plan) -> float:
    """Extra traffic of loops (scan, while, cond bodies) beyond their operands and results."""
    surplus = 0.0
    for step in plan.steps:
        eqn = getattr(step, "eqn", None)
        if eqn is not None and eqn.primitive.name in ("scan", "while", "cond"):
            own = sum(_atom_bytes(a) for a in eqn.inputs) + sum(map(_atom_bytes, eqn.outvars))
            surplus += max(rule_cost(eqn).bytes - own, 0)
    return surplus


def fused_bytes(plan) -> float:
    """Bytes the fused program moves: every buffer it touches, once, plus loop bodies' traffic.

    Buffers: the inputs and constants that are read, the materialised intermediates (reshape
    views share their operand's buffer) and the outputs.
    """
    jaxpr = plan.jaxpr
    arguments = set(jaxpr.invars) | set(jaxpr.constvars)
    touched = (_read_roots(jaxpr.eqns, plan) & arguments) | set(plan.materialized)
    # outputs that are inputs or constants are copied by the Python driver, not by a kernel
    touched |= {a for a in jaxpr.outvars if type(a) is Var and a not in arguments}
    touched = {v for v in touched if v not in plan.remaps or v in plan.materialized}
    moved = sum(_nbytes(v.aval) for v in touched if not _is_view(v, plan))
    return float(moved + _loop_carried_surplus(plan))


class StepEqns(NamedTuple):
    """A step of the compiled program (the shape of `codegen.StepInfo`)."""

    kind: str  # "loop", "kernel" or "outputs"
    eqns: list


def plan_steps(plan) -> list:
    """The steps the code generator emits for `plan`, in order (mirrors `codegen`).

    Reshapes are views, not steps; outputs that are remapped or reshaped values are copied by
    a final "outputs" step.
    """
    steps = []
    for step in plan.steps:
        if step.kind == "loop":
            steps.append(StepEqns("loop", list(step.eqns)))
        elif step.eqn.primitive.name != "reshape":
            steps.append(StepEqns("kernel", [step.eqn]))
    if _output_copies(plan):
        steps.append(StepEqns("outputs", []))
    return steps


def _output_copies(plan) -> list:
    """Program outputs written by the final copy step: remapped or reshaped values."""
    copies = []
    for atom in plan.jaxpr.outvars:
        if type(atom) is not Var:
            continue
        producer = _producer(plan.jaxpr, atom)
        if atom in plan.remaps or (producer is not None and producer.primitive.name == "reshape"):
            copies.append(atom)
    return copies


def _loop_step_bytes(eqns, plan) -> float:
    """A fused loop reads each outside buffer once and writes each materialised result once.

    A value read through a remap costs at most the remapped value's size: a slice reads part
    of its operand, a broadcast re-reads a small operand from cache.
    """
    produced = {v for e in eqns for v in e.outvars}
    moved = 0
    seen = set()
    for eqn in eqns:
        for atom in eqn.inputs:
            if type(atom) is not Var or atom in produced:
                continue
            root = atom
            while type(root) is Var and root in plan.remaps:
                inputs = plan.remaps[root].inputs
                root = inputs[0] if inputs else None
            if type(root) is not Var or root in produced or root in seen:
                continue
            seen.add(root)
            moved += min(_nbytes(root.aval), _nbytes(atom.aval))
    written = [v for v in produced if v in plan.materialized]
    return float(moved + sum(_nbytes(v.aval) for v in written))


def _step_shape(step, plan) -> tuple:
    if step.kind == "loop":
        eqn = step.eqns[0]
        group = plan.group_of.get(eqn.outvars[0])
        return tuple(group.domain) if group is not None else tuple(eqn.outvars[0].aval.shape)
    if step.kind == "kernel":
        return tuple(step.eqns[0].outvars[0].aval.shape) if step.eqns[0].outvars else ()
    return ()


def step_cost(step, plan, names: VarNames | None = None) -> dict:
    """The cost of one step of the compiled program (a fused loop, a kernel, output copies).

    Args:
      step: a `codegen.StepInfo` or `StepEqns` (`kind`, `eqns`).
      plan: the program's fusion plan.
      names: variable names shared with the program's printout.

    Returns:
      A dict with `kind`, `shape`, `equations` (printed), `sources` (the user's source line
      of each), `primitives`, `flops`, `transcendentals` (also `transcendentals by
      primitive`) and `bytes accessed`.
    """
    names = names or VarNames()
    totals = _sum_costs(step.eqns)
    by_primitive: dict[str, float] = {}
    for eqn in step.eqns:
        count = rule_cost(eqn).transcendentals
        if count:
            name = eqn.primitive.name
            by_primitive[name] = by_primitive.get(name, 0.0) + float(count)
    if step.kind == "loop":
        totals["bytes accessed"] = _loop_step_bytes(step.eqns, plan)
    elif step.kind == "outputs":
        totals["bytes accessed"] = float(sum(2 * _nbytes(v.aval) for v in _output_copies(plan)))
    return {
        "kind": step.kind,
        "shape": _step_shape(step, plan),
        "equations": [" ".join(names.eqn(e).split()) for e in step.eqns],
        "sources": [e.source for e in step.eqns],
        "primitives": [e.primitive.name for e in step.eqns],
        "transcendentals by primitive": by_primitive,
        **totals,
    }


install()
