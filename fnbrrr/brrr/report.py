"""The brrr report: run a jitted function kernel by kernel and say what limits each kernel.

`brrr(f)(*args)` compiles `f` for `args` in split mode (`codegen.generate(plan, split=True)`:
every fused loop or kernel becomes its own compiled function and a Python loop times each
one), runs it a few times and joins three things per kernel:

* what it does: the IR equations fused into it, with the user's source lines, and its shape;
* how much work that is, from the IR (`fnbrrr.jit.cost`): FLOPs, transcendentals, bytes;
* how long it took (the median over repeats), against the machine's calibrated ceilings
  (`fnbrrr.brrr.calibration`): achieved GB/s and GFLOP/s as percentages, and the verdict.

The verdict, from first principles (the package docstring explains the three regimes):

1. "overhead" when the fixed cost of calling a compiled function is at least half the time
   (time <= 2 x the calibrated empty call with as many arguments), or when the kernel's work
   at the machine's ceilings would take less than 5 % of its time: the time goes neither to
   arithmetic nor to memory traffic (Python, thread wake-ups, a call per tiny kernel);
2. otherwise the roofline: the kernel needs `compute = flops / peak + transcendentals / rate`
   seconds of arithmetic and `memory = bytes / bandwidth` seconds of traffic; it is
   "compute"-bound when compute >= memory, else "bandwidth"-bound. Equivalently: its
   arithmetic intensity (FLOPs per byte) is above or below the ridge point (peak / bandwidth).
   Matmul kernels use the BLAS peak; transcendentals use their own calibrated rate; the
   bandwidth is the calibrated stream at the kernel's working set (caches are faster than
   DRAM).

Besides the kernels, the report has the per-call overhead ledger of a normal (not split)
jitted call (argument flattening, cache look-up, dispatch, allocation, kernels, each measured
on its own) and the bytes fusion saved against running the same IR op by op.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from fnbrrr.brrr.calibration import Machine, calibrate

OVERHEAD_SHARE = 2.0  # overhead-bound when time <= this x the fixed cost of a call
IDLE_SHARE = 0.05  # ... or when the work at the ceilings needs less than this share of the time


# --------------------------------------------------------------------------------------------
# One kernel
# --------------------------------------------------------------------------------------------


@dataclass
class KernelReport:
    """One step of the compiled program: its work, its time, and what limits it.

    Rates are per second. `compute_share` and `memory_share` are the fractions of the measured
    time that the work needs at the machine's ceilings (1.0 = running at the ceiling).
    """

    index: int
    kind: str  # "loop" (a fused loop), "kernel" (BLAS, gather...) or "outputs" (final copies)
    shape: tuple
    equations: list
    sources: list
    primitives: list
    flops: float
    transcendentals: float
    bytes: float
    seconds: float
    peak_flops: float  # the compute ceiling used: BLAS for matmuls, the Numba loop otherwise
    bandwidth: float  # the bandwidth ceiling at this kernel's working set
    transcendental_seconds: float  # the transcendentals' time at their calibrated rates
    call_seconds: float  # fixed cost of one call of this step
    verdict: str = ""

    @property
    def compute_seconds(self) -> float:
        """Seconds the arithmetic needs at the ceiling."""
        return self.flops / self.peak_flops + self.transcendental_seconds

    @property
    def memory_seconds(self) -> float:
        """Seconds the traffic needs at the ceiling."""
        return self.bytes / self.bandwidth

    @property
    def ideal_seconds(self) -> float:
        """The roofline's time: the larger of compute and memory."""
        return max(self.compute_seconds, self.memory_seconds)

    @property
    def gbytes_per_s(self) -> float:
        return self.bytes / self.seconds / 1e9 if self.seconds > 0 else 0.0

    @property
    def gflops_per_s(self) -> float:
        return self.flops / self.seconds / 1e9 if self.seconds > 0 else 0.0

    @property
    def memory_share(self) -> float:
        """Achieved bandwidth / ceiling."""
        return self.memory_seconds / self.seconds if self.seconds > 0 else 0.0

    @property
    def compute_share(self) -> float:
        """Achieved arithmetic throughput / ceiling (transcendentals at their own rate)."""
        return self.compute_seconds / self.seconds if self.seconds > 0 else 0.0

    @property
    def intensity(self) -> float:
        """Arithmetic intensity: FLOPs per byte moved."""
        return self.flops / self.bytes if self.bytes else float("inf")

    @property
    def effective_flops(self) -> float:
        """FLOPs with each transcendental counted as the FLOPs it costs at the ceilings."""
        return self.flops + self.transcendental_seconds * self.peak_flops


def classify(kernel: KernelReport) -> str:
    """The verdict for one kernel: "overhead", "bandwidth" or "compute" (see the module doc)."""
    if kernel.seconds <= OVERHEAD_SHARE * kernel.call_seconds:
        return "overhead"
    if kernel.ideal_seconds < IDLE_SHARE * kernel.seconds:
        return "overhead"
    return "compute" if kernel.compute_seconds >= kernel.memory_seconds else "bandwidth"


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


@dataclass
class Report:
    """What one jitted call did, kernel by kernel; `print(report)` shows it as a table.

    Attributes:
      name: the function's name; `signature` its flat input types.
      kernels: a `KernelReport` per step, in execution order (`kernels[i].verdict`).
      ledger: seconds per phase of a normal jitted call (`"argument flattening"`, `"cache
        look-up"`, `"dispatch"`, `"allocation"`, `"kernels"`, `"total"`).
      cost: the program's `cost_analysis()` dict (fused and unfused bytes, bytes saved).
      machine: the calibrated `Machine`.
      source: the generated split-mode module (what ran).
    """

    name: str
    signature: str
    kernels: list
    ledger: dict
    cost: dict
    machine: Machine
    source: str = ""
    notes: list = field(default_factory=list)

    @property
    def bytes_saved(self) -> float:
        """Bytes fusion saved against running the same IR op by op."""
        return self.cost["bytes saved by fusion"]

    def plot(self, path: str) -> str:
        """Write a roofline PNG of the kernels under the machine's ceilings; returns `path`."""
        from fnbrrr.brrr.plot import plot_roofline

        return plot_roofline(self, path)

    def __str__(self) -> str:
        from fnbrrr.brrr.text import format_report

        return format_report(self)

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython
        printer.text(str(self))


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def brrr(fun: Callable, *, static_argnums: int | Sequence[int] | None = None,
         seconds: float = 0.5, machine: Machine | None = None) -> Callable[..., Report]:
    """Profile a jitted call: per kernel its equations, work, time, and what limits it.

    Args:
      fun: the function to profile (a plain function or a `jit`-wrapped one).
      static_argnums: arguments that are compile-time constants, as in `jit`.
      seconds: about how long to spend timing (at least 5 runs after a warm-up).
      machine: the ceilings to compare against (default: `calibrate()`, cached on disk).

    Returns:
      A function of `fun`'s arguments that runs it and returns a `Report`.

    Example:
        >>> report = fnbrrr.brrr(lambda x: x * 2 + 1)(jnp.ones(4_000_000))
        >>> print(report)
        >>> report.kernels[0].verdict          # 2 FLOPs per 8 bytes: memory is the limit
        'bandwidth'
    """
    from fnbrrr.jit.api import JitFunction

    if isinstance(fun, JitFunction):
        static_argnums = fun.static_argnums if static_argnums is None else static_argnums
        fun = fun.fun

    def run(*args, **kwargs) -> Report:
        return _profile(fun, static_argnums, args, kwargs, seconds, machine or calibrate())

    return run


def _profile(fun, static_argnums, args, kwargs, seconds, machine) -> Report:
    from fnbrrr.jit import jit
    from fnbrrr.jit.codegen import generate
    from fnbrrr.jit.cost import program_cost
    from fnbrrr.jit.runtime import Executable

    jitted = jit(fun, static_argnums=static_argnums)
    lowered = jitted.lower(*args, **kwargs)
    generated = generate(lowered.plan, split=True)
    consts = list(lowered.consts) + list(generated.extra_consts)
    executable = Executable(generated, consts, lowered.original.out_avals)
    executable.compile()
    inputs = _flat_inputs(jitted, args, kwargs, lowered.original.in_avals)
    step_seconds = _time_steps(executable, inputs, len(generated.steps), seconds)
    cost = program_cost(lowered.jaxpr, plan=lowered.plan, steps=generated.steps)
    n_args = len(generated.args) + len(generated.uses_blas)
    kernels = [kernel_report(i, k, t, machine, n_args)
               for i, (k, t) in enumerate(zip(cost["kernels"], step_seconds))]
    ledger = measure_ledger(jitted, lowered, args, kwargs, inputs, seconds)
    return Report(getattr(fun, "__name__", "function"), _signature(lowered), kernels, ledger,
                  cost, machine, generated.source, _notes(cost, generated, machine))


def _flat_inputs(jitted, args, kwargs, in_avals) -> list:
    """The program's flat inputs: dynamic leaves as C-contiguous NumPy arrays of its dtypes."""
    from fnbrrr.tree_util import tree_flatten

    dynamic_args, dynamic_kwargs, _ = jitted._split(args, kwargs)
    flat, _ = tree_flatten((dynamic_args, dynamic_kwargs))
    flat = [x for x in flat if x is not None]
    return [np.ascontiguousarray(np.asarray(x), dtype=a.dtype) for x, a in zip(flat, in_avals)]


def _time_steps(executable, inputs: list, n_steps: int, seconds: float) -> list:
    """Median seconds per step over repeated runs (one warm-up run first)."""
    if n_steps == 0:
        return []
    module = executable.module
    start = time.perf_counter()
    executable(inputs)  # warm-up: caches, page faults of fresh buffers, the pool's temps
    once = time.perf_counter() - start
    repeats = int(np.clip(seconds / max(once, 1e-7), 5, 1000))
    module.TIMINGS = timings = []
    try:
        for _ in range(repeats):
            executable(inputs)
    finally:
        module.TIMINGS = None
    per_step = np.array(timings, dtype=np.float64).reshape(repeats, n_steps)
    return [float(t) for t in np.median(per_step, axis=0)]


def kernel_report(index: int, cost: dict, seconds: float, machine: Machine,
                  n_args: int = 2) -> KernelReport:
    """Judge one kernel: its cost (a `cost_analysis()["kernels"]` entry) and measured time.

    Args:
      index: the kernel's position in the program.
      cost: the kernel's cost dict (`kind`, `shape`, `equations`, `flops`, `bytes accessed`...).
      seconds: its measured time.
      machine: the calibrated ceilings.
      n_args: the compiled function's argument count (the fixed cost of a call grows with it).

    Returns:
      A `KernelReport` with its `verdict`.

    Example:
        >>> c = fnbrrr.jit(f).lower(x).compile().cost_analysis()
        >>> kernel_report(0, c["kernels"][0], 2.1e-3, calibrate()).verdict
        'bandwidth'
    """
    blas = "dot_general" in cost["primitives"]
    kernel = KernelReport(
        index=index, kind=cost["kind"], shape=cost["shape"], equations=cost["equations"],
        sources=cost["sources"], primitives=cost["primitives"], flops=cost["flops"],
        transcendentals=cost["transcendentals"], bytes=cost["bytes accessed"], seconds=seconds,
        peak_flops=machine.blas_flops if blas else machine.loop_flops,
        bandwidth=machine.bandwidth_for(cost["bytes accessed"]),
        transcendental_seconds=sum(
            n / machine.transcendental_rate_for(p)
            for p, n in cost.get("transcendentals by primitive", {}).items()),
        call_seconds=machine.call_cost(n_args))
    kernel.verdict = classify(kernel)
    return kernel


def _signature(lowered) -> str:
    return ", ".join(a.str_short() for a in lowered.original.in_avals)


def _notes(cost: dict, generated, machine: Machine) -> list:
    notes = list(machine.notes)
    if cost.get("unknown trip counts"):
        notes.append(f"{int(cost['unknown trip counts'])} while loop(s): the trip count is not "
                     "known from the IR, so their work is counted for one trip")
    for prim, _, _ in generated.fallbacks.values():
        notes.append(f"{prim.name} has no compiled lowering: it runs NumPy in object mode")
    if machine.quick:
        notes.append("the machine was calibrated in quick mode: ceilings are approximate")
    return notes


# --------------------------------------------------------------------------------------------
# The per-call ledger of a normal jitted call
# --------------------------------------------------------------------------------------------


def interleaved_medians(phases: dict, seconds: float, at_least: int = 5) -> dict:
    """Median seconds of each `phases[name]()`, timed in turns for about `seconds`.

    Taking turns (one call of each, again and again) exposes every phase to the same
    neighbours on a shared machine, so the phases of one call add up.
    """
    clock = time.perf_counter
    times = {name: [] for name in phases}
    for fn in phases.values():
        fn()  # warm-up
    deadline = clock() + seconds
    rounds = 0
    while rounds < 20000:
        for name, fn in phases.items():
            start = clock()
            fn()
            times[name].append(clock() - start)
        rounds += 1
        if rounds >= at_least and clock() > deadline:
            break
    return {name: float(np.median(t)) for name, t in times.items()}


def _program_arguments(executable, inputs: list) -> list:
    """The compiled `program`'s arguments for one call, in order (as the driver builds them)."""
    module = executable.module
    temps = iter(module.new_temps())
    inputs, consts = iter(inputs), iter(executable.consts)
    arrays = []
    for spec in executable.generated.args:
        if spec.role == "input":
            arrays.append(next(inputs))
        elif spec.role == "const":
            arrays.append(next(consts))
        elif spec.role == "temp":
            arrays.append(next(temps))
        else:
            arrays.append(np.empty(spec.shape, spec.dtype))
    return arrays + list(executable.blas)


def measure_ledger(jitted, lowered, args, kwargs, inputs, seconds: float) -> dict:
    """Seconds per phase of a normal jitted call, each phase measured on its own.

    The phases, as the call path runs them: flattening the arguments to leaves (the hot path
    for positional Arrays just unwraps them), looking the signature up in the compilation
    cache, allocating the outputs (intermediates come from a pool), the compiled `program`
    ("kernels"), and "dispatch": the rest of the measured total (the Python driver, wrapping
    outputs as Arrays, the calls between them).
    """
    from fnbrrr.jit.runtime import Executable

    generated = lowered.generated
    executable = Executable(generated, list(lowered.consts) + list(generated.extra_consts),
                            lowered.original.out_avals)
    executable.compile()
    outputs = [(s.shape, s.dtype) for s in generated.args if s.role == "output"]
    program_args = _program_arguments(executable, inputs)
    program = executable.function
    flatten, lookup = _argument_phases(jitted, args, kwargs)
    jitted(*args, **kwargs)  # compiles the normal path (or finds it in the cache)
    timer = "(timing an empty lambda)"  # subtracted: each phase is timed through a lambda
    heavy = interleaved_medians({"total": lambda: jitted(*args, **kwargs),
                                 "kernels": lambda: program(*program_args),
                                 timer: lambda: None}, seconds / 2)
    cheap = interleaved_medians({"argument flattening": flatten, "cache look-up": lookup,
                                 "allocation": lambda: [np.empty(s, d) for s, d in outputs],
                                 timer: lambda: None}, seconds / 4, at_least=200)
    times = {name: max(t - (cheap if name in cheap else heavy)[timer], 0.0)
             for name, t in {**heavy, **cheap}.items() if name != timer}
    measured = sum(t for name, t in times.items() if name != "total")
    times["dispatch"] = max(times["total"] - measured, 0.0)
    return times


def _argument_phases(jitted, args, kwargs) -> tuple[Callable, Callable]:
    """What the call path does with the arguments before the driver: (flatten, look-up)."""
    from fnbrrr.config import config
    from fnbrrr.core import ArrayImpl, get_aval
    from fnbrrr.tree_util import tree_flatten

    fast = getattr(jitted, "_fast", None)
    if fast is not None and not kwargs and all(type(a) is ArrayImpl for a in args):
        # the hot path: positional Arrays, keyed by their avals, unwrapped to NumPy
        table = {(config.jax_enable_x64, *[a.aval for a in args]): None}

        def unwrap():
            values = [a._value for a in args]
            if not all(v.flags.c_contiguous for v in values):  # e.g. a broadcast jnp.full
                values = [np.ascontiguousarray(v) for v in values]
            return values

        def look_up():
            return table.get((config.jax_enable_x64, *[a._aval or a.aval for a in args]))

        return unwrap, look_up
    flat, tree = tree_flatten((args, kwargs))
    table = {(tree, config.jax_enable_x64, *[get_aval(x) for x in flat]): None}
    return (lambda: tree_flatten((args, kwargs)),
            lambda: table.get((tree, config.jax_enable_x64, *[get_aval(x) for x in flat])))
