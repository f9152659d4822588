"""Nanoseconds per element of fnbrrr's vectorisable math against Numba's libm calls and NumPy.

For each function, on 4,000,000 elements (float32 by default), single-threaded:

* fnbrrr: `fnbrrr.jit.mathlib` called in a Numba loop, as generated kernels call it;
* Numba libm: the same loop calling `np.<fn>` (`math.erf` for erf), which Numba lowers to a
  scalar libm call (PERF.md, fact 2);
* NumPy: the ufunc writing into a preallocated output (logistic as four ufunc passes,
  1 / (1 + exp(-x)); NumPy has no erf).

A `copy` row (a loop computing x * 2 + 1) gives the memory floor. Each figure is the median of
`--repeat` timed calls after one warm-up call; `packed` says whether the fnbrrr loop's assembly
holds packed (SIMD) arithmetic. Quote ratios from one run, not absolute times across days.

Run: `python bench/mathlib_bench.py [--n 4000000] [--repeat 15] [--dtype float32]
[--functions tanh,logistic]`
"""

from __future__ import annotations

import argparse
import math
import platform
import re
import statistics
import time

import numba
import numpy as np

from fnbrrr.jit import mathlib
from fnbrrr.jit.mathlib import SCALAR_MATH

# name: (low, high) of the uniform inputs: the range where each function does real work.
INPUT_RANGES = {
    "exp": (-10.0, 10.0),
    "log": (1e-3, 1e3),
    "log1p": (-0.9, 10.0),
    "expm1": (-5.0, 5.0),
    "tanh": (-5.0, 5.0),
    "logistic": (-10.0, 10.0),
    "sin": (-100.0, 100.0),
    "cos": (-100.0, 100.0),
    "erf": (-4.0, 4.0),
}

LIBM = {
    "exp": numba.njit(lambda v: np.exp(v)),
    "log": numba.njit(lambda v: np.log(v)),
    "log1p": numba.njit(lambda v: np.log1p(v)),
    "expm1": numba.njit(lambda v: np.expm1(v)),
    "tanh": numba.njit(lambda v: np.tanh(v)),
    # float32 constants keep float32 arithmetic and promote exactly for float64 inputs.
    "logistic": numba.njit(lambda v: np.float32(1) / (np.float32(1) + np.exp(-v))),
    "sin": numba.njit(lambda v: np.sin(v)),
    "cos": numba.njit(lambda v: np.cos(v)),
    "erf": numba.njit(lambda v: math.erf(v)),
}


def numpy_logistic(x, out):
    np.negative(x, out=out)
    np.exp(out, out=out)
    out += out.dtype.type(1)
    np.divide(out.dtype.type(1), out, out=out)


NUMPY = {name: getattr(np, name) for name in ("exp", "log", "log1p", "expm1", "tanh", "sin", "cos")}
NUMPY["logistic"] = numpy_logistic


@numba.njit(error_model="numpy")
def loop(function, x, out):
    for i in range(x.size):
        out[i] = function(x[i])


@numba.njit(error_model="numpy")
def copy_loop(x, out):
    two, one = x.dtype.type(2), x.dtype.type(1)
    for i in range(x.size):
        out[i] = x[i] * two + one


def median_ns_per_element(call, n: int, repeat: int) -> float:
    call()  # compile / warm up
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) / n * 1e9


def is_packed(function, dtype) -> bool:
    """Whether the loop's assembly holds packed (SIMD) arithmetic in `dtype`, on any width."""
    numba_array = numba.typeof(np.empty(1, dtype))
    asm = loop.inspect_asm((numba.typeof(function), numba_array, numba_array))
    suffix = "ps" if dtype == np.float32 else "pd"
    packed = re.findall(rf"\bv(?:fmadd\w*|mul|add|sub|div){suffix}\s+[^\n]*%[xyz]mm", asm)
    return len(packed) >= 8


def row(label: str, fn, name: str, x: np.ndarray, out: np.ndarray, repeat: int) -> str:
    """One line of the table: fnbrrr's `fn`, then Numba libm and NumPy computing `name`."""
    n = x.size
    ours = median_ns_per_element(lambda: loop(fn, x, out), n, repeat)
    libm = median_ns_per_element(lambda: loop(LIBM[name], x, out), n, repeat)
    numpy_text = ratio_text = "-"
    if name in NUMPY:
        with np.errstate(all="ignore"):
            numpy_ns = median_ns_per_element(lambda: NUMPY[name](x, out=out), n, repeat)
        numpy_text, ratio_text = f"{numpy_ns:.3f}", f"{numpy_ns / ours:.1f}x"
    packed = "yes" if is_packed(fn, x.dtype) else "NO"
    inputs = f"[{x.min():.3g}, {x.max():.3g}]"
    return (
        f"{label:9s} {inputs:>14s} {ours:8.3f} {packed:>6s} {libm:11.3f} {numpy_text:>8s} "
        f"{libm / ours:7.1f}x {ratio_text:>8s}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--functions", default=",".join(INPUT_RANGES), help="comma-separated")
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(0)
    out = np.empty(args.n, dtype)

    cpu = numba.core.config.CPU_NAME or __import__("llvmlite.binding").binding.get_host_cpu_name()
    print(
        f"{args.n:,} x {dtype.name}, single thread, medians of {args.repeat}; "
        f"{platform.machine()} {cpu}, numba {numba.__version__}, numpy {np.__version__}"
    )
    x = rng.uniform(-1, 1, args.n).astype(dtype)
    floor = median_ns_per_element(lambda: copy_loop(x, out), args.n, args.repeat)
    print(f"memory floor (copy loop x*2+1): {floor:.3f} ns/element\n")
    header = f"{'function':9s} {'inputs':>14s} {'fnbrrr':>8s} {'packed':>6s} {'Numba libm':>11s} "
    header += f"{'NumPy':>8s} {'vs libm':>8s} {'vs NumPy':>8s}"
    print(header + "\n" + "-" * len(header))
    for name in args.functions.split(","):
        low, high = INPUT_RANGES[name]
        x = rng.uniform(low, high, args.n).astype(dtype)
        print(row(name, SCALAR_MATH[(name, dtype.name)], name, x, out, args.repeat))
        if name in ("sin", "cos") and dtype == np.float32:  # exact below 2**21 only
            fast = getattr(mathlib, f"{name}_fast_f32")
            print(row(f"{name}_fast", fast, name, x, out, args.repeat))
    print("\nns per element; 'vs' columns are how many times faster fnbrrr is.")


if __name__ == "__main__":
    main()
