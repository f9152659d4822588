"""brrr: why a jitted program is fast or slow, kernel by kernel, against this machine's limits.

Horace He's essay "Making Deep Learning Go Brrrr From First Principles" splits the time a
program takes into three regimes. Knowing which one a kernel is in says what will (and what
will not) make it faster.

**Compute-bound.** The processor is busy doing arithmetic. A core can finish a fixed number
of floating-point operations per second (with AVX2 fused multiply-adds, 2 units x 8 float32
lanes x 2 FLOPs per cycle); a matrix multiply of n x n matrices does 2n^3 of them on 3n^2
numbers, so for large n the arithmetic is the limit. Only less arithmetic (a better
algorithm, lower precision) or faster arithmetic (BLAS, vector instructions) helps.

**Bandwidth-bound.** The processor waits for memory. DRAM delivers a fixed number of bytes
per second, far fewer than the arithmetic units could consume: at 10 GB/s and 80 GFLOP/s a
kernel must do about 8 FLOPs per byte it moves (32 per float32) to keep the arithmetic busy.
`y = x * 2 + 1` does 2 FLOPs per 8 bytes, so it runs at the speed of memory however the
arithmetic is written. What helps is moving fewer bytes: *fusion* (one loop computing
`x * 2 + 1` reads x once and writes y once, instead of writing and re-reading `x * 2`),
smaller dtypes, and data that stays in cache.

**Overhead-bound.** Neither: the time goes to everything around the kernel. Python
interpreting the call, flattening arguments, looking up the compiled program, allocating
outputs, calling into compiled code (a Numba call costs about 0.2 us; a jitted fnbrrr call a
few us). A 10-element `x * 2 + 1` does 20 FLOPs in nanoseconds and spends microseconds
getting there. What helps is doing more per call: bigger batches, more of the program in one
jitted function.

The *roofline* puts the first two on one picture: with arithmetic intensity I (FLOPs per
byte moved), a kernel can run at most min(peak, I x bandwidth) FLOP/s. Below the ridge point
I = peak / bandwidth it is bandwidth-bound; above it, compute-bound. Overhead is the floor the
roofline does not show: a kernel whose time is mostly the fixed cost of a call.

This package measures all three:

* `calibrate()`: the machine's ceilings (memory bandwidth, peak arithmetic of a Numba loop,
  transcendental and BLAS throughput, the cost of a call), measured once and cached on disk;
* `brrr(f)(*args)`: a `Report` of one jitted call: per kernel its fused equations with the
  user's source lines, bytes, FLOPs, time, achieved GB/s and GFLOP/s as a share of the
  ceilings and the verdict (`report.kernels[i].verdict` is "overhead", "bandwidth" or
  "compute"); the per-call overhead ledger; the bytes fusion saved. `print(report)` shows a
  table and `report.plot(path)` draws the roofline.

Example:
    >>> import fnbrrr, fnbrrr.numpy as jnp
    >>> report = fnbrrr.brrr(lambda x: (x * 2 + 1) * 3 - x)(jnp.ones(4_000_000))
    >>> print(report)
    >>> report.kernels[0].verdict
    'bandwidth'
    >>> fnbrrr.brrr(jnp.sin)(jnp.ones(4_000_000)).kernels[0].verdict   # ~3 ns per sin
    'compute'
    >>> report.plot("roofline.png")
"""

from fnbrrr.brrr.calibration import Machine, calibrate
from fnbrrr.brrr.report import KernelReport, Report, brrr, classify, kernel_report

__all__ = ["KernelReport", "Machine", "Report", "brrr", "calibrate", "classify", "kernel_report"]
