"""Fusion: partition an optimised program into fused loops and kernels.

A *fused loop* iterates once over a domain (a shape) and evaluates a group of elementwise
equations at each point, possibly accumulating reductions over some axes of the domain. It
reads each input once and writes each output once: intermediates live in registers.

Rules:
* An elementwise equation's domain is its output shape; a reduction's is its input shape.
* A consumer joins its producer's group when both have the same domain, the producer is not a
  reduction (a reduced value is only complete after the loop), and joining creates no cycle.
* Remaps (broadcast, transpose, slice, rev, squeeze, iota) are never computed: whoever reads
  them reads their operand at remapped indices. Their operand must be a materialised buffer.
* Everything else is a kernel step of its own (matmul through BLAS, gather, concatenate...).
* A value is materialised (gets a buffer) when it is a program output, feeds a kernel, is read
  through a remap, or is used by another group.

Two passes then cut the number of loop nests, which is what compile time grows with (each
nest costs tens of milliseconds of Numba and LLVM time):
* Sibling fusion: groups over the same domain, neither of which needs the other, merge into
  one (the SGD updates of same-shaped parameters; stages of a softmax that read the same rows).
* Row nests: consecutive groups whose domains share their leading axis (the rows), each
  reading the others' values only in the row it computes, become one `RowNest`: one loop over
  the rows holding each group's inner loops (max -> sub -> exp -> sum -> log -> ... of a
  softmax cross-entropy). A reduction over the rows may sit in a nest; only a group after
  the nest may read its result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fnbrrr.core import Eqn, Jaxpr, Literal, Var
from fnbrrr.jit.lowering import Elementwise, Reduce, Remap


@dataclass(eq=False)  # identity semantics: groups are hashed and compared by object
class LoopGroup:
    """One fused loop nest over `domain`."""

    domain: tuple
    eqns: list = field(default_factory=list)
    deps: set = field(default_factory=set)  # ids of groups/steps this one transitively needs

    @property
    def kind(self) -> str:
        return "loop"


@dataclass(eq=False)
class KernelStep:
    """One equation lowered by its own emitter (or the object-mode fallback)."""

    eqn: Eqn
    deps: set = field(default_factory=set)

    @property
    def kind(self) -> str:
        return "kernel"


@dataclass(eq=False)
class RowNest:
    """Fused loops emitted as one loop over `rows`, the leading axis of every group's domain."""

    rows: int
    groups: list  # LoopGroups in execution order

    @property
    def kind(self) -> str:
        return "loop"

    @property
    def eqns(self) -> list:
        return [e for g in self.groups for e in g.eqns]


@dataclass
class Plan:
    """The fused program: steps in execution order, and which values need buffers."""

    jaxpr: Jaxpr
    steps: list
    materialized: set  # Vars that live in buffers
    remaps: dict  # Var -> Eqn for virtual (remapped) values
    group_of: dict  # Var -> LoopGroup for values computed inside fused loops


def lowering_kind(eqn: Eqn) -> str:
    lower = eqn.primitive.lower
    if isinstance(lower, Elementwise):
        return "elementwise"
    if isinstance(lower, Remap):
        return "remap"
    if isinstance(lower, Reduce):
        return "reduce"
    return "kernel"


def plan_fusion(jaxpr: Jaxpr) -> Plan:
    """Group `jaxpr`'s equations into fused loops and kernel steps (see the module doc)."""
    jaxpr = _give_read_output_reshapes_a_twin(jaxpr)
    producer: dict[Var, object] = {}  # Var -> group/step that computes it
    remaps: dict[Var, Eqn] = {}
    group_of: dict[Var, LoopGroup] = {}
    steps: list = []
    for eqn in jaxpr.eqns:
        kind = lowering_kind(eqn)
        if kind == "remap":
            remaps[eqn.outvars[0]] = eqn
            continue
        direct, through_remap = _input_sources(eqn, producer, remaps)
        deps = set()
        for src in direct | through_remap:
            deps.add(id(src))
            deps |= src.deps
        if kind == "kernel":
            step = KernelStep(eqn, deps)
            steps.append(step)
            for v in eqn.outvars:
                producer[v] = step
            continue
        domain = eqn.outvars[0].aval.shape if kind == "elementwise" else eqn.inputs[0].aval.shape
        candidates = _joinable_groups(eqn, domain, direct, through_remap, producer)
        if candidates:
            group = candidates[0]
            for other in candidates[1:]:
                _merge_into(group, other, producer, group_of, steps)
                if id(other) in deps:
                    deps.discard(id(other))
                    deps.add(id(group))
        else:
            group = LoopGroup(domain)
            steps.append(group)
        group.eqns.append(eqn)
        group.deps |= deps
        group.deps.discard(id(group))
        for v in eqn.outvars:
            producer[v] = group
            group_of[v] = group
    steps = _schedule(steps, producer, remaps)
    steps = _fuse_siblings(steps, producer, group_of, remaps)
    materialized = _materialized_values(jaxpr, steps, producer, remaps)
    steps = _nest_rows(steps, producer, remaps)
    return Plan(jaxpr, steps, materialized, remaps, group_of)


def _give_read_output_reshapes_a_twin(jaxpr: Jaxpr) -> Jaxpr:
    """A program output made by a reshape is copied into its output buffer after the last
    step (its operand may still be computed in a row nest until then), so no equation may read
    it from there. Equations that read one get a twin reshape of their own (a free view); the
    output's reshape is then read only by the final copy."""
    outputs = {a for a in jaxpr.outvars if type(a) is Var}
    read = {a for e in jaxpr.eqns for a in e.inputs if type(a) is Var}
    if not any(e.primitive.name == "reshape" and e.outvars[0] in outputs & read
               for e in jaxpr.eqns):
        return jaxpr
    eqns: list[Eqn] = []
    twin: dict[Var, Var] = {}
    for eqn in jaxpr.eqns:
        eqn = eqn._replace(inputs=[twin.get(a, a) if type(a) is Var else a
                                   for a in eqn.inputs])
        out = eqn.outvars[0] if eqn.outvars else None
        if eqn.primitive.name == "reshape" and out in outputs & read:
            twin[out] = Var(out.aval)
            eqns.append(eqn._replace(outvars=[twin[out]]))
        eqns.append(eqn)
    return Jaxpr(jaxpr.constvars, jaxpr.invars, eqns, jaxpr.outvars)


def _root_source(var, remaps: dict):
    """Follow remaps back to the value they read (a Var) or None for iota/literals."""
    while type(var) is Var and var in remaps:
        eqn = remaps[var]
        if not eqn.inputs:
            return None
        var = eqn.inputs[0]
    return var if type(var) is Var else None


def _input_sources(eqn: Eqn, producer: dict, remaps: dict):
    """Groups/steps feeding `eqn` directly, and those feeding it through remaps."""
    direct, through = set(), set()
    for atom in eqn.inputs:
        if type(atom) is Literal:
            continue
        if atom in remaps:
            src = _root_source(atom, remaps)
            if src is not None and src in producer:
                through.add(producer[src])
        elif atom in producer:
            direct.add(producer[atom])
    return direct, through


def _joinable_groups(eqn, domain, direct, through_remap, producer) -> list:
    """The producer groups `eqn` may join (all of them get merged), in input order."""
    found = []
    for atom in eqn.inputs:
        if type(atom) is not Var or atom not in producer:
            continue
        group = producer[atom]
        if not isinstance(group, LoopGroup) or group.domain != domain or group in found:
            continue
        if lowering_kind(_eqn_producing(group, atom)) == "reduce":
            continue
        if group in through_remap:
            continue  # would read its own unfinished values at other indices
        others = [s for s in direct | through_remap if s is not group]
        if any(id(group) in s.deps for s in others if s not in found):
            continue  # another input needs this group finished first: a cycle
        if any(id(group) in g.deps or id(g) in group.deps for g in found):
            continue  # one candidate needs the other finished (through another step)
        found.append(group)
    return found


def _merge_into(group: LoopGroup, other: LoopGroup, producer, group_of, steps) -> None:
    """Fuse `other` into `group` (independent groups with the same domain)."""
    order = {id(e): i for i, e in enumerate(group.eqns + other.eqns)}
    group.eqns = sorted(group.eqns + other.eqns, key=lambda e: order[id(e)])
    group.deps |= other.deps
    group.deps.discard(id(group))
    group.deps.discard(id(other))
    for e in other.eqns:
        for v in e.outvars:
            producer[v] = group
            group_of[v] = group
    steps.remove(other)
    for s in steps:  # `other` is gone, and its id may be reused by a new step: forget it
        if id(other) in s.deps:
            s.deps.discard(id(other))
            s.deps.add(id(group))


def _eqn_producing(group: LoopGroup, var: Var) -> Eqn:
    return next(e for e in group.eqns if var in e.outvars)


def _direct_needs(step, producer: dict, remaps: dict) -> set:
    """Ids of the steps whose values `step` reads (directly or through remaps)."""
    eqns = step.eqns if isinstance(step, LoopGroup) else [step.eqn]
    own = {v for e in eqns for v in e.outvars}
    srcs = set()
    for e in eqns:
        for atom in e.inputs:
            if type(atom) is not Var or atom in own:
                continue
            root = _root_source(atom, remaps) if atom in remaps else atom
            if root is not None and root in producer and producer[root] is not step:
                srcs.add(id(producer[root]))
    return srcs


def _schedule(steps: list, producer: dict, remaps: dict) -> list:
    """Order steps so each runs after everything it reads (groups grow after creation)."""
    index = {id(s): i for i, s in enumerate(steps)}
    needs = {id(step): _direct_needs(step, producer, remaps) for step in steps}
    ordered, done = [], set()
    pending = list(steps)
    while pending:
        progressed = False
        for step in list(pending):
            if needs[id(step)] <= done:
                ordered.append(step)
                done.add(id(step))
                pending.remove(step)
                progressed = True
        if not progressed:  # cannot happen when joins respect deps; keep program order
            ordered.extend(sorted(pending, key=lambda s: index[id(s)]))
            break
    return ordered


def _materialized_values(jaxpr: Jaxpr, steps: list, producer: dict, remaps: dict) -> set:
    needed = set()
    for atom in jaxpr.outvars:
        if type(atom) is Var:
            needed.add(atom)
            if atom in remaps:  # an output read through a remap needs its source in a buffer
                root = _root_source(atom, remaps)
                if root is not None:
                    needed.add(root)
    for step in steps:
        eqns = step.eqns if isinstance(step, LoopGroup) else [step.eqn]
        own = {v for e in eqns for v in e.outvars}
        for e in eqns:
            for atom in e.inputs:
                if type(atom) is not Var:
                    continue
                if atom in remaps:
                    root = _root_source(atom, remaps)
                    if root is not None:
                        needed.add(root)
                    if isinstance(step, KernelStep):
                        needed.add(atom)  # a kernel needs the remapped value as a real array
                elif atom not in own or isinstance(step, KernelStep):
                    needed.add(atom)
        if isinstance(step, LoopGroup):
            for e in eqns:
                if lowering_kind(e) == "reduce":
                    needed.update(e.outvars)
    return needed


# --- fewer loop nests: sibling fusion and row nests ----------------------------------------


def _fuse_siblings(steps: list, producer: dict, group_of: dict, remaps: dict) -> list:
    """Merge each group into an earlier one over the same domain that it does not need
    (directly or through other steps); returns the steps, rescheduled."""
    reach: dict[int, set] = {}  # id of a step -> ids of every step it needs, transitively
    kept: list = []
    for step in steps:
        needs = set()
        for src in _direct_needs(step, producer, remaps):
            needs |= {src} | reach[src]
        reach[id(step)] = needs
        partner = None
        if isinstance(step, LoopGroup):
            partner = next((g for g in kept if isinstance(g, LoopGroup)
                            and g.domain == step.domain and id(g) not in needs), None)
        if partner is None:
            kept.append(step)
            continue
        _merge_into(partner, step, producer, group_of, [step])
        grown = reach[id(partner)] | needs
        for ids in reach.values():  # whoever needed the partner now needs what `step` needed
            if id(partner) in ids:
                ids |= grown
        reach[id(partner)] = grown
    return _schedule(kept, producer, remaps) if len(kept) < len(steps) else steps


def _nest_rows(steps: list, producer: dict, remaps: dict) -> list:
    """Gather groups whose domains share their leading axis into `RowNest`s (module doc)."""
    needs = {id(s): _direct_needs(s, producer, remaps) for s in steps}
    done, pending = [], list(steps)
    while pending:
        ready, pending = _next_nest(pending, needs, producer, remaps)
        done += ready
    return done


def _next_nest(steps: list, needs: dict, producer: dict, remaps: dict) -> tuple[list, list]:
    """Grow a nest from the first group that can start one. Returns (the steps that run up to
    and including it, the steps left: those that need the nest, in order)."""
    start = next((k for k, s in enumerate(steps) if isinstance(s, LoopGroup)
                  and s.domain and s.domain[0] > 1), None)
    if start is None:
        return steps, []
    first = steps[start]
    rows = first.domain[0]
    before, nest, deferred = steps[:start], [first], []
    inside, held = {id(first)}, set()  # ids: the nest's groups and views of them; deferred steps
    for step in steps[start + 1:]:
        step_needs = needs[id(step)]
        if isinstance(step, LoopGroup) and not step_needs & held and _worth_nesting(
                step, remaps) and _reads_rows_only(step, rows, {id(g) for g in nest},
                                                   producer, remaps):
            nest.append(step)
            inside.add(id(step))
        elif not step_needs & (inside | held):
            before.append(step)  # independent of the nest: runs before it
        elif _is_view_reshape(step, remaps) and not step_needs & held:
            before.append(step)  # a view of a nest value, defined before the loop
            inside.add(id(step))
        else:
            deferred.append(step)
            held.add(id(step))
    if len(nest) == 1:
        return steps[:start + 1], steps[start + 1:]
    return before + [RowNest(rows, nest)], deferred


# A flat loop over a domain with short rows vectorises better than short inner loops.
MIN_NESTED_ROW = 64


def _worth_nesting(group: LoopGroup, remaps: dict) -> bool:
    """Whether `group` may join a row nest without running slower: its rows are one element
    (no inner loop) or long, or it could not run as one flat loop anyway."""
    row = 1
    for size in group.domain[1:]:
        row *= size
    return row == 1 or row >= MIN_NESTED_ROW or not _flattenable(group, remaps)


def _flattenable(group: LoopGroup, remaps: dict) -> bool:
    """Whether the code generator may run `group` as one loop over all its elements (it reads
    whole buffers of its domain's shape and reduces over all axes, if at all)."""
    own = {v for e in group.eqns for v in e.outvars}
    for e in group.eqns:
        if lowering_kind(e) == "reduce" and len(e.params["axes"]) != len(group.domain):
            return False
        for atom in e.inputs:
            if type(atom) is Var and atom not in own and (
                    atom in remaps or (atom.aval.ndim and atom.aval.shape != group.domain)):
                return False
    return True


def _is_view_reshape(step, remaps: dict) -> bool:
    """A reshape of a buffer: the code generator defines it as a view, no loop."""
    if not isinstance(step, KernelStep) or step.eqn.primitive.name != "reshape":
        return False
    operand = step.eqn.inputs[0]
    return type(operand) is Var and operand not in remaps


def _reads_rows_only(group: LoopGroup, rows: int, nest_ids: set, producer, remaps) -> bool:
    """Whether `group` iterates over `rows` rows and reads values of the nest's groups only in
    the row it computes, once that row is complete."""
    if not group.domain or group.domain[0] != rows:
        return False
    own = {v for e in group.eqns for v in e.outvars}
    return all(_row_local(atom, rows, nest_ids, producer, remaps)
               for e in group.eqns for atom in e.inputs
               if type(atom) is Var and atom not in own)


_ROW = "_row"


def _row_local(atom: Var, rows: int, nest_ids: set, producer, remaps) -> bool:
    """Whether reading `atom` at row r reads a nest value only at row r, after the nest has
    computed it (true for values from outside the nest)."""
    keeps_rows = True
    while True:
        if atom.aval.ndim == 0 or atom.aval.shape[0] != rows:
            keeps_rows = False
        if atom in remaps:
            eqn = remaps[atom]
            if not eqn.inputs or type(eqn.inputs[0]) is not Var:
                return True  # iota, or a broadcast literal
            operand = eqn.inputs[0]
            probe = [_ROW] + [f"_col{d}" for d in range(1, atom.aval.ndim)]
            index = eqn.primitive.lower.index(probe, operand.aval, atom.aval, eqn.params)
            if not index or index[0] != _ROW or any(_ROW in i for i in index[1:]):
                keeps_rows = False
            atom = operand
            continue
        step = producer.get(atom)
        if isinstance(step, KernelStep) and _is_view_reshape(step, remaps):
            atom = step.eqn.inputs[0]
            continue
        break
    step = producer.get(atom)
    if step is None or id(step) not in nest_ids:
        return True
    eqn = _eqn_producing(step, atom)
    return keeps_rows and not (lowering_kind(eqn) == "reduce" and 0 in eqn.params["axes"])
