"""Benchmark machinery: timing, page-fault counts, result checks, worker processes, tables.

Nothing here knows a workload (those live in `workloads.py`); `run.py` puts the two together.

Method (the same as the shared peer harness in `../shared/bench`, whose figures PERF.md quotes):

* a first call is timed on its own (a jit compile lands there), then `warmup` untimed calls;
* `repeat` samples, each looping the call `number` times, `number` chosen so that one sample
  lasts at least `min_sample_s` (tiny calls are not lost in timer resolution);
* median (the figure to quote), min and max of the per-call times; the garbage collector is
  off while sampling, so a collection never lands in one sample;
* minor page faults per call (`getrusage`) after sampling: output memory on fresh pages costs
  about 2 us per 4 KiB page on these machines (PERF.md fact 5), and this column shows it.

Every (workload, library) pair runs in its own process (`run_worker_process`), so the thread
pools of OpenBLAS, Numba, XLA and PyTorch never share a process; `--single-core` pins that
process to CPU 0 and gives every library one thread (`worker_env`).
"""

from __future__ import annotations

import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TimingConfig:
    """How one implementation is sampled.

    Attributes:
        warmup: untimed calls after the (separately timed) first call.
        repeat: number of samples; the median over them is reported.
        min_sample_s: each sample loops the call until it lasts at least this long.
        number: calls per sample; `None` picks it from `min_sample_s`.
        fault_budget_s: about how long the page-fault count runs (at least 5 calls).
    """

    warmup: int = 3
    repeat: int = 15
    min_sample_s: float = 0.05
    number: int | None = None
    fault_budget_s: float = 0.2


QUICK = TimingConfig(warmup=1, repeat=3, min_sample_s=0.005, fault_budget_s=0.02)


@dataclass(frozen=True)
class Case:
    """One ready-to-time implementation.

    Attributes:
        run: one complete, synchronous call (the timed thing).
        output: returns the result as a list of NumPy arrays, for the correctness check.
    """

    run: Callable[[], object]
    output: Callable[[], list] | None = None


# ------------------------------------------------------------------------------------ timing
def calls_per_sample(fn: Callable[[], object], min_sample_s: float, limit: int = 10**6) -> int:
    """The number of back-to-back calls of `fn` that last at least `min_sample_s`."""
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_sample_s or number >= limit:
            return number
        # Aim 20 % above the target so the next try usually suffices.
        estimate = int(number * min_sample_s / max(elapsed, 1e-9) * 1.2) + 1
        number = min(max(estimate, 2 * number), limit)


def measure(fn: Callable[[], object], config: TimingConfig) -> dict:
    """Warm `fn` up, then sample it; returns median/min/max seconds per call, n and number.

    Example:
        >>> stats = measure(lambda: sum(range(100)), TimingConfig(repeat=3, min_sample_s=0.001))
        >>> stats["min"] <= stats["median"] <= stats["max"]
        True
    """
    for _ in range(config.warmup):
        fn()
    number = config.number or calls_per_sample(fn, config.min_sample_s)
    samples = []
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(config.repeat):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            samples.append((time.perf_counter() - start) / number)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
        "number": number,
    }


def page_faults_per_call(fn: Callable[[], object], calls: int) -> float:
    """Minor page faults of this process per call of `fn`, over `calls` calls."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / calls


def time_case(case: Case, config: TimingConfig) -> dict:
    """First call, samples and page faults of one case, as one result row's fields."""
    start = time.perf_counter()
    case.run()
    first_call_s = time.perf_counter() - start
    stats = measure(case.run, config)
    calls = max(5, min(1000, int(config.fault_budget_s / max(stats["median"], 1e-9))))
    stats["faults_per_call"] = page_faults_per_call(case.run, calls)
    stats["first_call_s"] = first_call_s
    return stats


# ------------------------------------------------------------------------------- correctness
def relative_error(outputs: Sequence, reference: Sequence) -> float:
    """Largest, over the outputs, of max |output - reference| / max |reference|, in float64.

    Raises ValueError when the number or the shapes of the outputs differ from the reference.
    """
    if len(outputs) != len(reference):
        raise ValueError(f"{len(outputs)} outputs, the reference has {len(reference)}")
    worst = 0.0
    for index, (out, ref) in enumerate(zip(outputs, reference)):
        out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
        if out.shape != ref.shape:
            raise ValueError(f"output {index} has shape {out.shape}, reference {ref.shape}")
        if out.size == 0:
            continue
        scale = float(np.max(np.abs(ref))) or 1.0
        worst = max(worst, float(np.max(np.abs(out - ref))) / scale)
    return worst


# -------------------------------------------------------------------------- worker processes
SINGLE_CORE_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}

RESULT_MARKER = "BENCH-RESULT "


class WorkerError(RuntimeError):
    """A worker process failed or printed no result line."""


def worker_env(single_core: bool, extra: dict | None = None) -> dict:
    """The environment of a worker: ours, one thread per library if `single_core`, `extra`."""
    env = dict(os.environ)
    if single_core:
        env.update(SINGLE_CORE_ENV)
    env.update(extra or {})
    return env


def pin_to_cpu0() -> None:
    """Runs in the child before exec: every thread it will start inherits CPU 0 only."""
    os.sched_setaffinity(0, {0})


def emit_result(result: object) -> None:
    """Print a worker's result as the one marked line `run_worker_process` looks for."""
    print(RESULT_MARKER + json.dumps(result), flush=True)


def run_worker_process(
    argv: Sequence[str], *, single_core: bool, env: dict | None = None, timeout: float = 900
) -> object:
    """Run `python argv...` in a fresh process and return the result it emitted.

    Raises WorkerError (with the last lines of its stderr) when it fails or emits nothing.
    """
    proc = subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        env=worker_env(single_core, env),
        preexec_fn=pin_to_cpu0 if single_core else None,
        timeout=timeout,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
    raise WorkerError(f"worker exited with {proc.returncode}: {tail}")


# -------------------------------------------------------------------------------- formatting
def fmt_time(seconds: float | None) -> str:
    """A duration with a unit that keeps three or four significant digits."""
    if seconds is None:
        return "-"
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds:.3f} s"


def fmt_ratio(ratio: float | None) -> str:
    """`1.23x`, or `-` when there is nothing to compare with."""
    return "-" if ratio is None else f"{ratio:.2f}x"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the first column left-aligned, the rest right."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def line(cells):
        first = f"{cells[0]:<{widths[0]}}"
        rest = [f"{cell:>{width}}" for cell, width in zip(cells[1:], widths[1:])]
        return "  ".join([first, *rest]).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])
