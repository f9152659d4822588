"""Fused loop nests: how the code generator writes a `LoopGroup` or a `RowNest` as loops.

A group's loops run over its domain, either one flat loop over all elements (when every value
it reads has the domain's shape) or one loop per axis; reductions over a suffix of the axes
keep their accumulator in a local at the loop level they complete at, other reductions add
into their (pre-filled) buffer. Each equation becomes one line assigning a local, commented
with the IR equation and the user's source line; values other steps read are stored.

`FusedLoops` is mixed into the code generator's emitter (`codegen._Emitter`) and uses its
buffer bookkeeping: `emit`, `read`, `element`, `flat_accessor`, `names`, `plan`, `slots`,
`prefilled`, `_comment`, `_emit_fill` and `_note_helpers`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fnbrrr.core import Var
from fnbrrr.jit.fusion import LoopGroup, RowNest, lowering_kind


@dataclass
class _Loop:
    """How to emit one fused group's loops (see `FusedLoops._loop_prologue`)."""

    group: LoopGroup
    flat: bool  # one loop over all elements
    index_vars: list  # per loop axis; "0" for a size-1 axis that is not looped
    loop_dims: list
    local: dict  # Var -> scalar name (hoisted 0-d reads)
    views: dict  # Var -> (1-d array, offset) of flat loops
    accumulators: dict  # id(reduction eqn) -> accumulator name
    suffix_depth: dict  # id(reduction eqn) -> the loop level holding its accumulator
    reductions: dict  # id -> reduction eqn


class FusedLoops:
    """The loop-nest half of the code generator's emitter (see the module doc)."""

    def _emit_loop(self, group: LoopGroup) -> None:
        loop = self._loop_prologue(group, nested=False)
        self._emit_levels(loop, 0, 1)

    def _emit_row_nest(self, nest: RowNest) -> None:
        """One loop over the rows; inside it, each group's loops over the rest of its domain."""
        self.emit(f"# one loop over {nest.rows} rows, {len(nest.groups)} fused loops in it")
        loops = [self._loop_prologue(group, nested=True) for group in nest.groups]
        for loop in loops:
            self._emit_accumulator_inits(loop, 0, 1)
        self.emit(f"for {loops[0].index_vars[0]} in range({nest.rows}):")
        for loop in loops:
            self._emit_levels(loop, 1, 2)
        for loop in loops:
            self._emit_accumulator_stores(loop, 0, 1)

    def _loop_prologue(self, group: LoopGroup, nested: bool) -> _Loop:
        """Emit what comes before a group's loops (its comment, 0-d reads, fills of reductions
        over leading axes, flat views) and return how to emit the loops. A nested group's
        first axis is the nest's row loop; its size-1 axes are indexed by 0, not looped."""
        domain = group.domain
        produced = {v for e in group.eqns for v in e.outvars}
        reads = [a for e in group.eqns for a in e.inputs if type(a) is Var and a not in produced]
        flat = not nested and self._can_flatten(group, reads)
        size = int(np.prod(domain, dtype=np.int64))
        names = [e.primitive.name for e in group.eqns]
        self.emit(f"# fused loop over {shape_str(domain)}: {', '.join(names)}")
        local: dict = {}
        # hoist 0-d reads out of the loop
        for atom in dict.fromkeys(reads):
            if atom.aval.ndim == 0 and atom not in self.plan.remaps:
                scalar = self.names.fresh("s")
                self.emit(f"{scalar} = {self.read(atom, [], {})}")
                local[atom] = scalar
        views = {}
        if flat:
            stored = [v for e in group.eqns for v in e.outvars if v in self.plan.materialized]
            for atom in dict.fromkeys(reads + stored):  # program order, never set order
                if atom.aval.ndim and atom.aval.shape == domain and (
                        atom not in self.plan.remaps):
                    views[atom] = self.flat_accessor(atom)
            index_vars = ["i"]
            loop_dims = [size]
        else:
            index_vars = [f"i{d}" for d in range(len(domain))]
            loop_dims = list(domain)
            if nested:
                index_vars = [v if d == 0 or n != 1 else "0"
                              for d, (v, n) in enumerate(zip(index_vars, domain))]
        reductions = [e for e in group.eqns if lowering_kind(e) == "reduce"]
        suffix_depth = {}
        for e in reductions:
            axes = e.params["axes"]
            n = len(domain)
            is_suffix = tuple(axes) == tuple(range(n - len(axes), n))
            if flat or is_suffix:
                suffix_depth[id(e)] = 0 if flat else n - len(axes)
            elif e.outvars[0] not in self.prefilled:
                out = e.outvars[0]
                identity = e.primitive.lower.identity(out.aval.dtype)
                self._emit_fill(out, identity, self._comment(e))
        accumulators = {key: self.names.fresh("acc") for key in suffix_depth}
        return _Loop(group, flat, index_vars, loop_dims, local, views, accumulators,
                     suffix_depth, {id(e): e for e in reductions})

    def _emit_levels(self, loop: _Loop, level: int, depth: int) -> None:
        """The loops of `loop` from axis `level` in, emitted at indentation `depth`."""
        self._emit_accumulator_inits(loop, level, depth)
        if level == len(loop.loop_dims):
            self._emit_body(loop.group, loop.index_vars, loop.local, loop.views,
                            loop.accumulators, depth)
        elif loop.index_vars[level] == "0":  # a size-1 axis of a nested group
            self._emit_levels(loop, level + 1, depth)
        else:
            self.emit(f"for {loop.index_vars[level]} in range({loop.loop_dims[level]}):", depth)
            self._emit_levels(loop, level + 1, depth + 1)
        self._emit_accumulator_stores(loop, level, depth)

    def _emit_accumulator_inits(self, loop: _Loop, level: int, depth: int) -> None:
        """Start the reductions whose accumulators live at loop `level` (over the axes inside)."""
        for key, d in loop.suffix_depth.items():
            if d == level:
                e = loop.reductions[key]
                ident = e.primitive.lower.identity(e.outvars[0].aval.dtype)
                self.emit(f"{loop.accumulators[key]} = {ident}", depth)

    def _emit_accumulator_stores(self, loop: _Loop, level: int, depth: int) -> None:
        """Store the reductions completed at loop `level`."""
        domain = loop.group.domain
        for key, d in loop.suffix_depth.items():
            if d == level:
                e = loop.reductions[key]
                kept = [loop.index_vars[i] for i in range(len(domain))
                        if i not in e.params["axes"]] if not loop.flat else []
                target = self.element(e.outvars[0], kept)
                self.emit(f"{target} = {loop.accumulators[key]}", depth)

    def _can_flatten(self, group: LoopGroup, reads: list) -> bool:
        domain = group.domain
        if len(domain) <= 1:
            return len(domain) == 1
        for atom in reads:
            if atom in self.plan.remaps or (atom.aval.ndim and atom.aval.shape != domain):
                return False
        for e in group.eqns:
            if lowering_kind(e) == "reduce" and len(e.params["axes"]) != len(domain):
                return False
        return True

    def _emit_body(self, group, index_vars, local, views, accumulators, depth):
        local = dict(local)
        outer_linear = self._linear
        self._linear = self._linear_index(group, index_vars, depth)
        try:
            self._emit_body_equations(group, index_vars, local, views, accumulators, depth)
        finally:
            self._linear = outer_linear

    def _linear_index(self, group, index_vars, depth):
        """Name the C-order position in the group's domain once per iteration (`k = i0 * 10 +
        i1`) when arena slots of the domain's shape are accessed: each access is then
        `a_float32[offset + k]`, two fewer operations for Numba to type and lower."""
        domain = group.domain
        looped = [v for v in index_vars if v != "0"]
        if len(looped) < 2:
            return None
        atoms = [a for e in group.eqns for a in (*e.inputs, *e.outvars)]
        if not any(type(a) is Var and a in self.slots and a.aval.shape == domain
                   for a in atoms):
            return None
        name = self.names.fresh("k")
        self.emit(f"{name} = {flat_index(0, domain, index_vars)}", depth)
        return tuple(index_vars), domain, name

    def _emit_body_equations(self, group, index_vars, local, views, accumulators, depth):
        domain = group.domain
        for e in group.eqns:
            kind = lowering_kind(e)
            if kind == "reduce":
                operand = e.inputs[0]
                value = self._read_in_loop(operand, index_vars, local, views, domain)
                combine = e.primitive.lower.combine
                if id(e) in accumulators:
                    acc = accumulators[id(e)]
                    self.emit(f"{acc} = {combine(acc, value)}{self._comment(e)}", depth)
                else:
                    kept = [index_vars[i] for i in range(len(domain)) if i not in e.params["axes"]]
                    target = self.element(e.outvars[0], kept)
                    self.emit(f"{target} = {combine(target, value)}{self._comment(e)}", depth)
                continue
            args = [self._read_in_loop(a, index_vars, local, views, domain) for a in e.inputs]
            expr = e.primitive.lower.expr(args, [a.aval for a in e.inputs], e.outvars[0].aval,
                                          e.params)
            self._note_helpers(expr)
            out = e.outvars[0]
            name = self.names.fresh("v")
            self.emit(f"{name} = {expr}{self._comment(e)}", depth)
            local[out] = name
            if out in self.plan.materialized and out not in self.plan.remaps:
                view = views.get(out)
                if view is not None:
                    self.emit(f"{offset_element(*view, index_vars[0])} = {name}", depth)
                else:
                    self.emit(f"{self.element(out, index_vars if out.aval.ndim else [])} = "
                              f"{name}", depth)

    def _read_in_loop(self, atom, index_vars, local, views, domain):
        if type(atom) is Var and atom in local:
            return local[atom]
        if type(atom) is Var and atom in views:
            return offset_element(*views[atom], index_vars[0])
        index = index_vars if (type(atom) is Var and atom.aval.ndim) else []
        if type(atom) is Var and atom.aval.ndim and atom.aval.shape != domain and (
                atom not in self.plan.remaps):
            raise AssertionError(f"fused read of {atom.aval} in domain {domain}")
        return self.read(atom, index, local)


def offset_element(array: str, offset: int, index: str) -> str:
    """`array[offset + index]`, or `array[index]` when the offset is 0."""
    return f"{array}[{offset} + {index}]" if offset else f"{array}[{index}]"


def flat_index(offset: int, shape: tuple, index: list[str]) -> str:
    """The C-order position of `index` in an array of `shape` stored from `offset`."""
    terms, stride, constant = [], 1, offset
    for expr, size in zip(reversed(index), reversed(shape)):
        if size != 1:  # the only valid index of a size-1 axis is 0
            if expr.isdigit():
                constant += int(expr) * stride
            else:
                expr = expr if expr.isidentifier() else f"({expr})"
                terms.append(expr if stride == 1 else f"{expr} * {stride}")
        stride *= size
    if constant or not terms:
        terms.append(str(constant))
    return " + ".join(reversed(terms))


def shape_str(shape) -> str:
    """`[2,3]`: a domain as the loop comments write it."""
    return "[" + ",".join(map(str, shape)) + "]"
