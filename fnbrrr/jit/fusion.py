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
    materialized = _materialized_values(jaxpr, steps, producer, remaps)
    return Plan(jaxpr, steps, materialized, remaps, group_of)


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
    for s in steps:
        if id(other) in s.deps:
            s.deps.add(id(group))


def _eqn_producing(group: LoopGroup, var: Var) -> Eqn:
    return next(e for e in group.eqns if var in e.outvars)


def _schedule(steps: list, producer: dict, remaps: dict) -> list:
    """Order steps so each runs after everything it reads (groups grow after creation)."""
    index = {id(s): i for i, s in enumerate(steps)}
    needs: dict[int, set] = {}
    for step in steps:
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
        needs[id(step)] = srcs
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
