"""Machine calibration: the limits a kernel is measured against, measured once and cached.

A roofline needs the machine's ceilings, measured the way fnbrrr's kernels run (serial Numba
loops compiled with the same flags as generated code, BLAS through NumPy's OpenBLAS):

* memory bandwidth: a read+write stream (`dst[i] = src[i] * s`) over arrays much larger than
  the caches, counting read + write bytes, and the same stream over smaller working sets
  (the bandwidth curve: caches are faster than DRAM, and a kernel whose data fits in them
  sees their bandwidth);
* arithmetic peak of a Numba loop: chains of fused multiply-adds `v = v * a + b` on values in
  registers, with coefficients only known at run time and each step depending on the last.
  The kernel is compiled without `reassoc` (PERF.md fact 9: fastmath can fold repeated
  arithmetic), and checked: a chain twice as long must take about twice as long;
* transcendental throughput: `mathlib.tanh_f32` and `exp_f32` in a loop (elements/s);
* BLAS: sgemm 512x512x512 (`np.matmul`, the OpenBLAS that fnbrrr's kernels call), with
  OpenBLAS's own thread count (as kernels run it) and with one thread; the ceiling is the
  better of the two (with a neighbour on the other core, two spinning threads can lose to one);
* the cost of an empty compiled call, timed the way the brrr report times each kernel, and
  how it grows with the number of array arguments;
* the launch cost of a parallel region: a tiny `prange` loop against the same loop serial.

Single-threaded figures are the default roofline: fnbrrr's generated loops are serial
(PERF.md fact 7). Ceilings are the fastest of several runs: on a shared machine the slower
runs measure the neighbours.

The result is a JSON file in the jit cache directory (`fnbrrr.jit.runtime.cache_dir()`),
keyed by CPU model, core count, the NumPy and Numba versions and the math helpers' digest;
`FNBRRR_RECALIBRATE=1` measures again. The whole calibration takes a few seconds (most of it
Numba start-up).

Example:
    >>> from fnbrrr.brrr import calibrate
    >>> machine = calibrate()
    >>> machine.memory_bandwidth / 1e9      # GB/s, read + write
"""

from __future__ import annotations

import ast
import ctypes
import dataclasses
import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass, field

import numba
import numpy as np

from fnbrrr.jit.codegen import FASTMATH
from fnbrrr.jit.mathlib import exp_f32, tanh_f32

FORMAT = 1  # bump when the measurements change meaning
# The generated code's flags, so that the stream runs like a fused loop.
_FASTMATH = ast.literal_eval(FASTMATH)
_MEMO: dict[str, Machine] = {}


@dataclass
class Machine:
    """Calibrated ceilings of this machine (rates per second, times in seconds).

    `bandwidth_curve` holds (bytes moved per pass, bytes/s) for working sets from cache-sized
    to much larger than the caches; `memory_bandwidth` is its last (sustained, DRAM) point.
    """

    cpu: str
    cores: int
    versions: dict
    memory_bandwidth: float
    bandwidth_curve: list
    loop_flops: float
    fma_chain_ratio: float  # time of a 16-FMA chain / an 8-FMA chain: about 2 when not folded
    transcendental_rates: dict
    blas_flops: float  # the ceiling: the better of the two below
    blas_flops_1thread: float
    blas_flops_threaded: float  # with OpenBLAS's own thread count, as fnbrrr's kernels call it
    blas_threads: int
    call_seconds: float
    call_seconds_per_arg: float
    parallel_launch_seconds: float
    numba_threads: int
    quick: bool
    seconds: float = 0.0
    notes: list = field(default_factory=list)

    @property
    def transcendental_rate(self) -> float:
        """Elements/s of the calibrated transcendentals together (their mean time each)."""
        rates = list(self.transcendental_rates.values())
        return len(rates) / sum(1 / r for r in rates)

    def transcendental_rate_for(self, primitive: str) -> float:
        """Elements/s of one transcendental: its own calibrated rate, else the mean rate."""
        for name, rate in self.transcendental_rates.items():
            if name.split("_")[0] == primitive:
                return rate
        return self.transcendental_rate

    def bandwidth_for(self, nbytes: float) -> float:
        """The bandwidth a stream moving `nbytes` sees: the curve, log-interpolated."""
        curve = sorted(self.bandwidth_curve)
        if nbytes <= curve[0][0]:
            return curve[0][1]
        for (b0, r0), (b1, r1) in zip(curve, curve[1:]):
            if nbytes <= b1:
                t = (np.log(nbytes) - np.log(b0)) / (np.log(b1) - np.log(b0))
                return float(np.exp(np.log(r0) + t * (np.log(r1) - np.log(r0))))
        return curve[-1][1]

    def call_cost(self, n_args: int = 1) -> float:
        """Seconds of an empty compiled call with `n_args` array arguments, timed."""
        return self.call_seconds + self.call_seconds_per_arg * max(n_args - 1, 0)

    def summary(self) -> str:
        """One paragraph of the figures, for reports."""
        rates = ", ".join(f"{k} {v / 1e9:.2f} G/s" for k, v in self.transcendental_rates.items())
        return (f"{self.cpu} ({self.cores} cores), single-threaded roofline: memory "
                f"{self.memory_bandwidth / 1e9:.1f} GB/s sustained (cache-sized working sets up "
                f"to {max(r for _, r in self.bandwidth_curve) / 1e9:.0f} GB/s), Numba loop "
                f"{self.loop_flops / 1e9:.0f} GFLOP/s, BLAS {self.blas_flops / 1e9:.0f} GFLOP/s "
                f"({self.blas_flops_1thread / 1e9:.0f} on one thread, "
                f"{self.blas_flops_threaded / 1e9:.0f} on {self.blas_threads}), "
                f"{rates}, empty call {self.call_seconds * 1e6:.2f} us, parallel launch "
                f"{self.parallel_launch_seconds * 1e6:.1f} us")


# --------------------------------------------------------------------------------------------
# The measuring kernels (real file + cache=True: loaded from Numba's cache after the first run)
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True, error_model="numpy", fastmath=_FASTMATH)
def _stream(src, dst, scale):
    for i in range(src.size):
        dst[i] = src[i] * scale
    return 0


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def _fma_chain_8(x, a, b, sweeps):
    for _ in range(sweeps):
        for i in range(x.size):
            v = x[i]
            v = v * a + b; v = v * a + b; v = v * a + b; v = v * a + b  # noqa: E702
            v = v * a + b; v = v * a + b; v = v * a + b; v = v * a + b  # noqa: E702
            x[i] = v
    return 0


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def _fma_chain_16(x, a, b, sweeps):
    for _ in range(sweeps):
        for i in range(x.size):
            v = x[i]
            v = v * a + b; v = v * a + b; v = v * a + b; v = v * a + b  # noqa: E702
            v = v * a + b; v = v * a + b; v = v * a + b; v = v * a + b  # noqa: E702
            v = v * a + b; v = v * a + b; v = v * a + b; v = v * a + b  # noqa: E702
            v = v * a + b; v = v * a + b; v = v * a + b; v = v * a + b  # noqa: E702
            x[i] = v
    return 0


@numba.njit(cache=True, error_model="numpy", fastmath=_FASTMATH)
def _tanh_loop(x, out):
    for i in range(x.size):
        out[i] = tanh_f32(x[i])
    return 0


@numba.njit(cache=True, error_model="numpy", fastmath=_FASTMATH)
def _exp_loop(x, out):
    for i in range(x.size):
        out[i] = exp_f32(x[i])
    return 0


@numba.njit(cache=True)
def _empty_1(a):
    return 0


@numba.njit(cache=True)
def _empty_8(a, b, c, d, e, f, g, h):
    return 0


@numba.njit(cache=True)
def _tiny_serial(x):
    for i in range(x.size):
        x[i] += 1.0
    return 0


@numba.njit(cache=True, parallel=True)
def _tiny_parallel(x):
    for i in numba.prange(x.size):
        x[i] += 1.0
    return 0


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


def best_time(fn, *args, repeats: int = 7) -> float:
    """Fastest of `repeats` timed calls of `fn(*args)`, after one warm-up call.

    A ceiling is what the machine can do, so calibration takes the fastest run: on a shared
    machine the slower runs measure the neighbours (the report's kernel times are medians).
    """
    fn(*args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return float(min(times))


def timed_call_seconds(fn, *args, calls: int = 2000, budget: float = 0.25) -> float:
    """Median of single calls each timed with `perf_counter`, as the report times a kernel.

    Stops after `calls` calls or `budget` seconds, whichever comes first (a parallel region
    on a busy machine can take milliseconds per call).
    """
    fn(*args)
    clock = time.perf_counter
    times = []
    deadline = clock() + budget
    for _ in range(calls):
        start = clock()
        fn(*args)
        end = clock()
        times.append(end - start)
        if end > deadline and len(times) >= 5:
            break
    return float(np.median(times))


# --------------------------------------------------------------------------------------------
# The measurements
# --------------------------------------------------------------------------------------------


def measure_bandwidth(quick: bool) -> list:
    """(bytes moved per pass, bytes/s) of the read+write stream, small to much larger than
    the caches (the last point: 2 x 64 MiB, twice a large L3)."""
    sizes = [1 << 16, 1 << 20, 1 << 22, 1 << 24]  # float32 elements per array
    curve = []
    scale = np.float32(1.0)
    for n in sizes:
        src = np.ones(n, np.float32)
        dst = np.ones(n, np.float32)  # touched now: page faults are not bandwidth
        moved = 2 * 4 * n
        budget = 3e8 if quick else 1e9  # bytes per size: about 0.03 or 0.1 s at 10 GB/s
        repeats = int(np.clip(budget / moved, 3, 200))
        curve.append((moved, moved / best_time(_stream, src, dst, scale, repeats=repeats)))
    return curve


def measure_loop_flops(quick: bool) -> tuple[float, float]:
    """FLOP/s of dependent FMA chains on an L1-resident array, and the 16:8 chain time ratio."""
    x = np.full(1024, 0.3, np.float32)
    a, b = np.float32(0.5), np.float32(0.25)  # v -> v/2 + 1/4 stays near 0.5: no denormals
    sweeps = 400 if quick else 1500
    t8 = best_time(_fma_chain_8, x, a, b, sweeps, repeats=5)
    t16 = best_time(_fma_chain_16, x, a, b, sweeps, repeats=5)
    peak = max(2 * 8 * x.size * sweeps / t8, 2 * 16 * x.size * sweeps / t16)
    return peak, t16 / t8


def measure_transcendentals(quick: bool) -> dict:
    """Elements/s of fnbrrr's vectorisable tanh and exp (an L2-resident array)."""
    x = np.linspace(-3, 3, 1 << 16, dtype=np.float32)
    out = np.empty_like(x)
    repeats = 5 if quick else 15
    return {"tanh_f32": x.size / best_time(_tanh_loop, x, out, repeats=repeats),
            "exp_f32": x.size / best_time(_exp_loop, x, out, repeats=repeats)}


def _openblas_threads():
    """(get, set) for the thread count of NumPy's OpenBLAS, or None where not found."""
    from fnbrrr.jit.blas import _candidate_libraries

    for path in _candidate_libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", ""):
                get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    return get, put
    return None


def measure_blas(quick: bool) -> tuple[float, float, int]:
    """sgemm 512^3 FLOP/s with OpenBLAS's threads and with one thread, and that thread count."""
    n = 512
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    out = np.empty_like(a)
    repeats = 5 if quick else 15
    flops = 2 * n ** 3
    threaded = flops / best_time(np.matmul, a, a, out, repeats=repeats)
    control = _openblas_threads()
    if control is None:
        return threaded, threaded, 0
    get, put = control
    threads = int(get())
    put(1)
    try:
        single = flops / best_time(np.matmul, a, a, out, repeats=repeats)
    finally:
        put(threads)
    return threaded, single, threads


def measure_calls(quick: bool) -> tuple[float, float]:
    """An empty compiled call (1 array argument), timed, and the extra cost per argument."""
    arrays = [np.zeros(4, np.float32) for _ in range(8)]
    calls = 1000 if quick else 4000
    one = timed_call_seconds(_empty_1, arrays[0], calls=calls)
    eight = timed_call_seconds(_empty_8, *arrays, calls=calls)
    return one, max(eight - one, 0.0) / 7


def measure_parallel_launch(quick: bool) -> float:
    """Seconds a `prange` region adds to a 16-element loop (thread wake-up and join).

    The best case: with a neighbour on the other core a spinning pool can take milliseconds
    per region (PERF.md fact 7), which says more about the neighbour than the machine.
    """
    x = np.zeros(16, np.float64)
    repeats = 100 if quick else 300
    serial = best_time(_tiny_serial, x, repeats=repeats)
    parallel = best_time(_tiny_parallel, x, repeats=repeats)
    return max(parallel - serial, 0.0)


# --------------------------------------------------------------------------------------------
# Running, caching
# --------------------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _identity() -> dict:
    return {"cpu": cpu_model(), "cores": os.cpu_count() or 1,
            "versions": {"numpy": np.__version__, "numba": numba.__version__,
                         "format": FORMAT, "mathlib": mathlib_digest()}}


def mathlib_digest() -> str:
    """The digest of fnbrrr's math helpers: the transcendental rates measured here belong to
    one version of them (a faster tanh must not be judged against the old one's rate)."""
    from fnbrrr.jit.mathlib import SOURCE_DIGEST

    return SOURCE_DIGEST


def cache_path(quick: bool = False) -> str:
    """Where this machine's calibration is cached (one file per machine and versions)."""
    from fnbrrr.jit.runtime import cache_dir

    key = hashlib.sha256(json.dumps(_identity(), sort_keys=True).encode()).hexdigest()[:16]
    return os.path.join(cache_dir(), f"brrr_calibration_{key}{'_quick' if quick else ''}.json")


def measure(quick: bool = False) -> Machine:
    """Run every measurement now (a few seconds; `quick` trades precision for time)."""
    start = time.perf_counter()
    curve = measure_bandwidth(quick)
    loop_flops, ratio = measure_loop_flops(quick)
    notes = []
    if ratio < 1.5:
        notes.append(f"the FMA chain did not scale with its length (16:8 time ratio {ratio:.2f}): "
                     "the compiler may have folded it; the loop peak is unreliable")
    blas, blas_1, blas_threads = measure_blas(quick)
    call, per_arg = measure_calls(quick)
    machine = Machine(
        **_identity(), memory_bandwidth=curve[-1][1], bandwidth_curve=curve,
        loop_flops=loop_flops, fma_chain_ratio=ratio,
        transcendental_rates=measure_transcendentals(quick), blas_flops=max(blas, blas_1),
        blas_flops_1thread=blas_1, blas_flops_threaded=blas, blas_threads=blas_threads,
        call_seconds=call, call_seconds_per_arg=per_arg,
        parallel_launch_seconds=measure_parallel_launch(quick),
        numba_threads=numba.config.NUMBA_NUM_THREADS, quick=quick, notes=notes)
    machine.seconds = time.perf_counter() - start
    return machine


def _load(path: str) -> Machine | None:
    try:
        with open(path) as f:
            data = json.load(f)
        data["bandwidth_curve"] = [tuple(p) for p in data["bandwidth_curve"]]
        return Machine(**data)
    except (OSError, ValueError, TypeError):
        return None


def _save(machine: Machine, path: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(dataclasses.asdict(machine), f, indent=1)
    os.replace(tmp, path)  # atomic: a concurrent process reads all or nothing


def calibrate(quick: bool = False, force: bool = False) -> Machine:
    """This machine's ceilings: from the disk cache, or measured now (and cached).

    Args:
      quick: a faster, less precise calibration (for tests); a cached full calibration is
        used when there is one.
      force: measure again even if cached. `FNBRRR_RECALIBRATE=1` forces it once per process.

    Returns:
      A `Machine` with the calibrated figures.

    Example:
        >>> machine = calibrate()
        >>> print(machine.summary())
    """
    memo_key = f"{cache_path(False)}|{quick}"
    if not force and memo_key in _MEMO:
        return _MEMO[memo_key]
    force = force or os.environ.get("FNBRRR_RECALIBRATE", "") not in ("", "0")
    machine = None
    if not force:
        machine = _load(cache_path(False)) or (_load(cache_path(True)) if quick else None)
    if machine is None:
        machine = measure(quick)
        _save(machine, cache_path(quick))
    _MEMO[memo_key] = machine
    return machine
