"""Code generation: a fusion plan becomes the source of one Numba function per program.

The generated module holds one `@njit(cache=True)` function, `program`, whose arguments are
the program's inputs, its constants, the buffers of its intermediates and outputs (all
allocated by NumPy outside compiled code, PERF.md fact 5) and the BLAS addresses. Every fused
line carries a comment with the IR equation it came from and the user's source line, so a
reader can map the kernel back to their code. One compiled function per program keeps the
compile count at one (PERF.md fact 8: a compilation costs about 0.17 s). `loop_nests`
writes the fused loops, `kernels` the other steps (BLAS calls, gathers, ...), and
`module_source` wraps the emitted lines into the module (imports, typed constants, the
driver, the cache key).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from fnbrrr.core import Literal, Var, VarNames, pretty_print
from fnbrrr.jit import mathlib
from fnbrrr.jit.fusion import KernelStep, LoopGroup, Plan, RowNest, lowering_kind
from fnbrrr.jit.loop_nests import FusedLoops, flat_index, offset_element
from fnbrrr.jit.lowering import literal

INDENT = "    "
# Reassociation lets LLVM vectorise reductions; no nnan/ninf, so inf and nan stay exact.
FASTMATH = "{'reassoc', 'contract', 'nsz'}"


@dataclass
class BufferSpec:
    """A buffer the runtime allocates: its argument name, shape and dtype, and its role."""

    name: str
    shape: tuple
    dtype: np.dtype
    role: str  # "input", "const", "temp", "output"


@dataclass
class Generated:
    """The generated module's source, the program's arguments, and where outputs land."""

    source: str
    args: list  # BufferSpec per array argument, in order
    output_atoms: list  # per program output: ("buffer", name) or ("input", i) / ("const", i)
    #                     or ("literal", value)
    uses_blas: tuple  # dtype names whose gemm address the runtime must pass
    fallbacks: dict  # name -> (primitive, params, n_inputs) for object-mode calls
    key: str  # content hash: the module's file name on disk
    extra_consts: list  # values of sub-programs' constants, after the program's own
    steps: list = None  # StepInfo per step (fused loop or kernel), for reports


class _Names:
    def __init__(self):
        self.counter = 0

    def fresh(self, prefix: str) -> str:
        # The underscore keeps locals apart from arguments (x0, k0, t0, o0: inputs, constants,
        # scratch buffers, outputs), whatever prefix an emitter picks.
        self.counter += 1
        return f"{prefix}_{self.counter}"


def generate(plan: Plan, name: str = "program", split: bool = False) -> Generated:
    """Write the Numba source for `plan`.

    With `split=True` (used by the brrr report), every step becomes its own compiled function
    and `program` is a Python loop over them that can time each one (`TIMINGS`).
    """
    emitter = _Emitter(plan, name)
    emitter.split = split
    return emitter.run()


@dataclass
class StepInfo:
    """One step of the generated program: a fused loop or a kernel, and its equations."""

    kind: str  # "loop", "kernel" or "outputs"
    eqns: list
    lines: tuple  # (start, end) in the program body

class _Shared:
    """What every (sub)program of one generated function shares: its arguments, names, lines."""

    def __init__(self):
        self.lines: list[str] = []
        self.names = _Names()
        self.args: list[BufferSpec] = []
        self.math_used: set[str] = set()
        self.helpers_used: set[str] = set()
        self.blas: set[str] = set()
        self.fallbacks: dict[str, tuple] = {}
        self.extra_consts: list = []  # constants of sub-programs (loop bodies, branches)
        self.arenas: dict[str, BufferSpec] = {}  # dtype name -> the flat buffer of its temps


class _Emitter(FusedLoops):
    def __init__(self, plan: Plan, name: str, shared: _Shared | None = None,
                 base_depth: int = 0):
        self.plan = plan
        self.jaxpr = plan.jaxpr
        self.name = name
        self.shared = shared or _Shared()
        self.lines = self.shared.lines
        self.names = self.shared.names
        self.args = self.shared.args
        self.math_used = self.shared.math_used
        self.helpers_used = self.shared.helpers_used
        self.blas = self.shared.blas
        self.fallbacks = self.shared.fallbacks
        self.base_depth = base_depth
        self.buffer: dict[Var, str] = {}
        self.materialized_remaps: set[Var] = set()
        self.var_names = VarNames()
        self.ir_text = pretty_print(self.jaxpr, self.var_names)
        self.split = False
        self.steps: list[StepInfo] = []
        self.view_lines: list[tuple[int, str]] = []  # (line index, reshape-view definition)
        self._linear = None  # (index names, domain, name of their C-order position) in a body
        # array name -> a 1-d view of it emitted at this emitter's top level (valid from there
        # on; a child emitter, whose lines may sit in a loop or branch, keeps its own)
        self.flat_names: dict[str, str] = {}
        # intermediates kept in an arena (one flat buffer per dtype): var -> (arena, offset).
        # Few arguments compile faster (each costs ~8 ms of unboxing and LLVM), and loops
        # index the arena directly.
        self.slots: dict[Var, tuple[str, int]] = {}
        self.prefilled: dict = {}  # reductions the driver starts (top level only)

    # --- arguments and buffers ---------------------------------------------------------------

    def _declare(self, var: Var, prefix: str, role: str) -> str:
        name = f"{prefix}{len([a for a in self.args if a.role == role])}"
        self.buffer[var] = name
        self.args.append(BufferSpec(name, var.aval.shape, var.aval.dtype, role))
        return name

    def _declare_buffers(self) -> list:
        jaxpr = self.jaxpr
        for v in jaxpr.invars:
            self._declare(v, "x", "input")
        for v in jaxpr.constvars:
            self._declare(v, "k", "const")
        output_atoms = []
        for atom in jaxpr.outvars:
            if type(atom) is Literal:
                output_atoms.append(("literal", atom.val))
            elif atom in jaxpr.invars:
                output_atoms.append(("input", jaxpr.invars.index(atom)))
            elif atom in jaxpr.constvars:
                output_atoms.append(("const", jaxpr.constvars.index(atom)))
            else:
                if atom not in self.buffer:
                    self._declare(atom, "o", "output")
                output_atoms.append(("buffer", self.buffer[atom]))
        prefilled = self._prefillable_reductions()
        for var in sorted(self.plan.materialized, key=self._var_order):
            if var not in self.buffer and not self._is_view(var) and var not in prefilled:
                self._slot(var)
        for var in prefilled:  # after the rest, side by side: one fill covers them
            self._slot(var)
        self.prefilled = prefilled
        return output_atoms

    def _prefillable_reductions(self) -> dict:
        """Arena values of reductions that accumulate in their buffer (over leading axes),
        each -> its starting value, ordered by dtype and value. The Python driver fills each
        such run of slots before the call (`prefill_runs`), so the program has no fill loops.
        Not in split mode, whose steps each run on their own."""
        found = {}
        if self.split:
            return found
        for step in self.plan.steps:
            groups = step.groups if isinstance(step, RowNest) else [step]
            for group in groups:
                if not isinstance(group, LoopGroup):
                    continue
                nested = isinstance(step, RowNest)
                for e in self._filled_reductions(group, nested):
                    out = e.outvars[0]
                    if out not in self.buffer and not self._is_view(out):
                        found[out] = e.primitive.lower.identity(out.aval.dtype)
        order = sorted(found, key=lambda v: (v.aval.dtype.name, found[v], self._var_order(v)))
        return {v: found[v] for v in order}

    def _filled_reductions(self, group: LoopGroup, nested: bool) -> list:
        """The reductions of `group` whose buffer is filled before its loops (not over a suffix
        of the domain's axes, in a loop that is not flat)."""
        produced = {v for e in group.eqns for v in e.outvars}
        reads = [a for e in group.eqns for a in e.inputs if type(a) is Var and a not in produced]
        if not nested and self._can_flatten(group, reads):
            return []
        n = len(group.domain)
        return [e for e in group.eqns if lowering_kind(e) == "reduce"
                and tuple(e.params["axes"]) != tuple(range(n - len(e.params["axes"]), n))]

    def prefill_runs(self) -> list:
        """(arena, start, end, value) per run of prefilled slots (same arena and value): the
        Python driver fills each with one NumPy slice assignment before the call, which costs
        no compile time (a fill loop in the program costs ~35 ms)."""
        runs: dict[tuple, list] = {}
        for var, value in self.prefilled.items():
            arena, offset = self.slots[var]
            runs.setdefault((arena, value), []).append((offset, offset + max(1, var.aval.size)))
        return [(arena, spans[0][0], spans[-1][1], value)
                for (arena, value), spans in runs.items()]

    def _slot(self, var: Var) -> tuple[str, int]:
        """Place an intermediate in its dtype's arena, 64-byte aligned; returns (arena, offset)."""
        dtype = var.aval.dtype
        arena = self.shared.arenas.get(dtype.name)
        if arena is None:
            arena = BufferSpec(f"a_{dtype.name}", (0,), dtype, "temp")
            self.shared.arenas[dtype.name] = arena
            self.args.append(arena)
        align = max(1, 64 // dtype.itemsize)
        offset = -(-arena.shape[0] // align) * align
        arena.shape = (offset + max(1, var.aval.size),)
        self.slots[var] = (arena.name, offset)
        return self.slots[var]

    def element(self, var: Var, index: list[str]) -> str:
        """`var`'s element at `index` (one expression per dimension), to read or assign."""
        slot = self.slots.get(var)
        if slot is not None:
            linear = self._linear
            if linear is not None and var.aval.shape == linear[1] and tuple(index) == linear[0]:
                return offset_element(slot[0], slot[1], linear[2])
            return f"{slot[0]}[{flat_index(slot[1], var.aval.shape, index)}]"
        name = self.buffer[var]
        return f"{name}[{', '.join(index)}]" if index else f"{name}[()]"

    def flat_accessor(self, var: Var) -> tuple[str, int]:
        """(1-d array, offset) through which a loop reads `var` element by element."""
        slot = self.slots.get(var)
        if slot is not None:
            return slot
        return self.flat(self.array(var), var.aval.ndim, var.aval.size), 0

    def _var_order(self, var: Var) -> tuple[int, int]:
        """A total order on values (equation, output position): generated source, and so the
        disk-cache key, must not depend on set iteration order."""
        order = self.__dict__.get("_order")
        if order is None:
            order = self._order = {v: (i, j) for i, eqn in enumerate(self.jaxpr.eqns)
                                   for j, v in enumerate(eqn.outvars)}
            for j, v in enumerate(self.jaxpr.invars + self.jaxpr.constvars):
                order.setdefault(v, (-1, j))
        return order[var]

    def _is_view(self, var: Var) -> bool:
        """Reshapes of buffers are free views, unless they are program outputs."""
        eqn = self._producer(var)
        return (eqn is not None and eqn.primitive.name == "reshape"
                and var not in self.jaxpr.outvars)

    def _producer(self, var: Var):
        for eqn in self.jaxpr.eqns:
            if var in eqn.outvars:
                return eqn
        return None

    # --- reading values ----------------------------------------------------------------------

    def array(self, atom, view_name: str | None = None) -> str:
        """The name of an array holding `atom` (materialising a remapped value if needed; an
        arena slot gets a view, named `view_name` if given)."""
        if type(atom) is Literal:
            return f"np.asarray({literal(atom.val, atom.aval.dtype)})"
        if atom in self.plan.remaps and atom not in self.materialized_remaps:
            self._materialize_remap(atom)
        name = self.buffer.get(atom)
        if name is None:  # an arena slot: a view of it, kept for the rest of this level
            arena, offset = self.slots[atom]
            name = self.buffer[atom] = view_name or self.names.fresh("t")
            self.helpers_used.add("_view")
            self.emit(f"{name} = _view({arena}, {offset}, {atom.aval.shape!r})")
            self.view_lines.append((len(self.lines) - 1, self.lines[-1]))
        return name

    def read(self, atom, index: list[str], local: dict) -> str:
        """A scalar expression for `atom` at `index` inside a loop body."""
        if type(atom) is Literal:
            return literal(atom.val, atom.aval.dtype)
        if atom in local:
            return local[atom]
        if atom in self.plan.remaps and atom not in self.materialized_remaps:
            eqn = self.plan.remaps[atom]
            lower = eqn.primitive.lower
            if lower.value is not None:
                return lower.value(index, atom.aval, eqn.params)
            operand = eqn.inputs[0]
            inner = lower.index(index, operand.aval, atom.aval, eqn.params)
            return self.read(operand, inner, local)
        if atom in self.slots:
            return self.element(atom, index)
        name = self.buffer[atom]
        if atom.aval.ndim == 0:
            return f"{name}.item()"  # a[()] would be a 0-d array in Numba
        return f"{name}[{', '.join(index)}]"

    # --- emission ----------------------------------------------------------------------------

    def emit(self, line: str, depth: int = 1) -> None:
        self.lines.append(INDENT * (depth + self.base_depth) + line)

    def emit_lines(self, lines: list[str], depth: int = 1) -> None:
        """Emit lines a kernel wrote (their own indentation kept), noting the helpers they
        call so the module imports them."""
        for line in lines:
            self._note_helpers(line)
            self.emit(line, depth)

    def run(self) -> Generated:
        output_atoms = self._declare_buffers()
        self._emit_steps()
        self.emit("return 0")
        return self._module(output_atoms)

    def _emit_steps(self) -> None:
        for step in self.plan.steps:
            start = len(self.lines)
            if isinstance(step, (LoopGroup, RowNest)):
                if isinstance(step, RowNest):
                    self._emit_row_nest(step)
                else:
                    self._emit_loop(step)
                self.steps.append(StepInfo("loop", list(step.eqns), (start, len(self.lines))))
            else:
                self._emit_kernel(step)
                if step.eqn.primitive.name != "reshape":
                    self.steps.append(StepInfo("kernel", [step.eqn], (start, len(self.lines))))
        start = len(self.lines)
        for atom in self.jaxpr.outvars:
            if type(atom) is Var and atom in self.plan.remaps:
                self._materialize_remap(atom, into=self.buffer[atom])
            elif type(atom) is Var and self._is_reshape_output(atom):
                self._emit_flat_copy(self._producer(atom).inputs[0], atom)
        if len(self.lines) > start:
            self.steps.append(StepInfo("outputs", [], (start, len(self.lines))))

    # --- sub-programs (loop bodies, branches) ---------------------------------------------------

    def temp(self, aval, prefix: str = "t") -> str:
        """A scratch buffer argument, allocated by the driver once per call."""
        name = f"{prefix}{len([a for a in self.args if a.role == 'temp'])}"
        self.args.append(BufferSpec(name, aval.shape, aval.dtype, "temp"))
        return name

    def add_const(self, value) -> str:
        """An extra constant argument (a sub-program's closed-over array)."""
        value = np.asarray(value)
        name = f"k{len([a for a in self.args if a.role == 'const'])}"
        self.args.append(BufferSpec(name, value.shape, value.dtype, "const"))
        self.shared.extra_consts.append(value)
        return name

    def emit_subprogram(self, closed, inputs: list[str], outputs: list[str], depth: int) -> None:
        """Inline a closed program at `depth`: read `inputs` (array names), write `outputs`.

        The program is optimised and fused like a top-level one; its intermediates become
        scratch arguments, allocated once per call and reused on every iteration.
        """
        from fnbrrr.jit import passes
        from fnbrrr.jit.fusion import plan_fusion
        from fnbrrr.jit.kernels import assign_atom

        jaxpr, consts = passes.optimize(closed.jaxpr, closed.consts)
        plan = plan_fusion(jaxpr)
        child = _Emitter(plan, self.name, self.shared, self.base_depth + depth - 1)
        child.buffer.update(zip(jaxpr.invars, inputs))
        for var, value in zip(jaxpr.constvars, consts):
            child.buffer[var] = self.add_const(value)
        copies = []
        for var, out in zip(jaxpr.outvars, outputs):
            if type(var) is Var and var not in child.buffer and not child._is_view(var):
                child.buffer[var] = out
            else:
                copies.append((var, out))
        for var in sorted(plan.materialized, key=child._var_order):
            if var not in child.buffer and not child._is_view(var) and var not in plan.remaps:
                child._slot(var)
        child._emit_steps()
        for var, out in copies:
            source = "" if type(var) is Literal else child.array(var)
            child.emit_lines(assign_atom(child.names, out, source, var))

    def _is_reshape_output(self, var: Var) -> bool:
        eqn = self._producer(var)
        return eqn is not None and eqn.primitive.name == "reshape"

    def _comment(self, eqn) -> str:
        text = " ".join(self.var_names.eqn(eqn).split())
        return f"  # {text}  ({eqn.source})" if eqn.source else f"  # {text}"

    # --- whole-buffer loops ------------------------------------------------------------------

    def flat(self, array: str, ndim: int, size: int) -> str:
        """A 1-d name for the C-contiguous `array` of `ndim` dimensions and `size` elements
        (the array itself when it is 1-d; else a view, cheaper to compile than `reshape`)."""
        if ndim == 1:
            return array
        view = self.flat_names.get(array)
        if view is None:
            self.helpers_used.add("_view")
            view = self.flat_names[array] = self.names.fresh("f")
            self.emit(f"{view} = _view({array}, 0, {size})")
            self.view_lines.append((len(self.lines) - 1, self.lines[-1]))
        return view

    def _emit_fill(self, var: Var, value: str, comment: str = "") -> None:
        """`var[...] = value` as a loop (Numba's `fill` compiles a function of its own)."""
        flat, offset = self.flat_accessor(var)
        index = self.names.fresh("j")
        self.emit(f"for {index} in range({var.aval.size}):{comment}")
        self.emit(f"{offset_element(flat, offset, index)} = {value}", 2)

    def _emit_flat_copy(self, source, target: Var) -> None:
        """Copy every element of `source` (a value of the same size) into `target`."""
        index = self.names.fresh("j")
        if type(source) is Literal:
            value = literal(source.val, source.aval.dtype)
        else:
            if source in self.plan.remaps and source not in self.materialized_remaps:
                self._materialize_remap(source)
            value = offset_element(*self.flat_accessor(source), index)
        flat, offset = self.flat_accessor(target)
        self.emit(f"for {index} in range({target.aval.size}):")
        self.emit(f"{offset_element(flat, offset, index)} = {value}", 2)

    def _note_helpers(self, expr: str) -> None:
        for fn in mathlib.SCALAR_MATH.values():
            if fn.__name__ + "(" in expr:
                self.math_used.add(fn.__name__)
        for helper in ("_int_div", "_int_rem", "_threefry2x32", "_view", "_argsort_lines"):
            if helper + "(" in expr:
                self.helpers_used.add(helper)

    def _materialize_remap(self, var: Var, into: str | None = None) -> None:
        """Copy a remapped (virtual) value into a real buffer."""
        if into is None and var not in self.buffer and var not in self.slots:
            self._slot(var)
        eqn = self.plan.remaps[var]
        index = [f"j{d}" for d in range(var.aval.ndim)]
        self.emit(f"# materialise {self.var_names.eqn(eqn)}")
        for d, size in enumerate(var.aval.shape):
            self.emit(f"for {index[d]} in range({size}):", d + 1)
        value = self.read(var, index, {})
        if into is None:
            target = self.element(var, index)
        else:
            target = f"{into}[{', '.join(index)}]" if index else f"{into}[()]"
        self.emit(f"{target} = {value}{self._comment(eqn)}", var.aval.ndim + 1)
        self.materialized_remaps.add(var)

    # --- kernels -------------------------------------------------------------------------------

    def _emit_kernel(self, step: KernelStep) -> None:
        from fnbrrr.jit.kernels import KernelContext

        eqn = step.eqn
        lower = eqn.primitive.lower
        if eqn.primitive.name == "reshape":
            out = eqn.outvars[0]
            if out in self.buffer:  # a program output: copied at the end
                return
            operand = eqn.inputs[0]
            if type(operand) is Var and operand in self.plan.remaps and (
                    operand not in self.materialized_remaps):
                self._materialize_remap(operand)
            if type(operand) is Var and operand in self.slots:
                self.slots[out] = self.slots[operand]  # the same memory, another shape
                self.emit(f"#{self._comment(eqn)[3:]}  [same arena slot]")
                return
            self.buffer[out] = self.names.fresh("r")
            source = self.array(operand)
            self.helpers_used.add("_view")
            self.emit(f"{self.buffer[out]} = _view({source}, 0, {out.aval.shape!r})"
                      f"{self._comment(eqn)}")
            if eqn.inputs[0].aval.ndim == 1:
                self.flat_names[self.buffer[out]] = source
            elif source in self.flat_names:
                self.flat_names[self.buffer[out]] = self.flat_names[source]
            self.view_lines.append((len(self.lines) - 1, self.lines[-1]))
            return
        if lower is not None:
            self.emit(f"#{self._comment(eqn)[3:]}")
        for v in eqn.outvars:
            if v not in self.buffer and v not in self.slots:
                self._slot(v)
        if lower is not None:
            self._emit_lowered_kernel(KernelContext, eqn)
            return
        ins = [self.array(a) for a in eqn.inputs]
        outs = [self.array(v) for v in eqn.outvars]
        fallback = f"_fallback_{len(self.fallbacks)}"
        self.fallbacks[fallback] = (eqn.primitive, eqn.params, len(ins))
        self.emit(f"# {eqn.primitive.name}: no compiled lowering; runs NumPy in object mode (slow)")
        self.emit("with numba.objmode():")
        self.emit(f"{fallback}({', '.join(ins + outs)})", 2)

    def _emit_lowered_kernel(self, context_class, eqn) -> None:
        """Run a kernel's emitter. Views of arena slots are defined only if its lines name them:
        a BLAS call needs just an address (`ctx.pointer`), and a view costs ~5 ms to compile."""
        pending: dict[Var, str] = {}
        names = [self._kernel_operand(a, pending) for a in [*eqn.inputs, *eqn.outvars]]
        ins, outs = names[:len(eqn.inputs)], names[len(eqn.inputs):]
        addresses = {name: self._slot_address(var) for var, name in pending.items()}

        def define_views(used) -> None:
            for var, name in list(pending.items()):
                del pending[var]
                if used(name):
                    self.array(var, view_name=name)

        ctx = context_class(self.names, self.blas, self, addresses,
                            before_direct_emission=lambda: define_views(lambda name: True))
        lines = list(eqn.primitive.lower.emit(ctx, eqn, ins, outs))
        text = "\n".join(lines)
        define_views(lambda name: re.search(rf"\b{name}\b", text) is not None)
        self.emit_lines(lines)

    def _kernel_operand(self, atom, pending: dict) -> str:
        """The array name a kernel sees; for an arena slot without a view yet, a name whose
        view is defined later, only if used (`pending`). A remapped value is written into its
        slot first: a kernel reads memory, and a BLAS call sees only the slot's address."""
        if type(atom) is Var and atom in self.plan.remaps and atom not in self.materialized_remaps:
            self._materialize_remap(atom)
        if type(atom) is Var and atom in self.slots and atom not in self.buffer:
            if atom not in pending:
                pending[atom] = self.names.fresh("t")
            return pending[atom]
        return self.array(atom)

    def _slot_address(self, var: Var) -> str:
        arena, offset = self.slots[var]
        address = f"{arena}.ctypes.data"
        return f"{address} + {offset * var.aval.dtype.itemsize}" if offset else address

    # --- the module ----------------------------------------------------------------------------

    def _module(self, output_atoms) -> Generated:
        from fnbrrr.jit.module_source import assemble_module

        self.shared.output_atoms = output_atoms
        return assemble_module(self, output_atoms)
