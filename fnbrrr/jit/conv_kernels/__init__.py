"""Numba lowerings of convolutions and windowed reductions (`CONV_KERNELS`).

A convolution becomes matrix products through BLAS (PERF.md fact 6), in one of three ways,
picked per equation by a cost model (`strategy`: GEMM FLOPs plus the elements of a scratch
matrix):

* **im2col** (`im2col`; forward passes, kernel gradients): copy the input windows into a
  scratch matrix, then one GEMM per image (or one for all images) multiplies the kernel by it.
* **gemm_gather** (`gemm_gather`; input gradients): multiply first over the undilated input
  positions, then add the products up along the windows, skipping the zeros that padding and
  dilation would put into an im2col matrix.
* **direct** loops (`direct`): integer dtypes, tiny problems, no BLAS, or more than 3 spatial
  axes.

Pooling (`pooling`) has a fast path for windows that tile the operand and a general one.

The loops live in precompiled helpers (the emitted program itself only calls them and BLAS).
They take their geometry (sizes, strides, padding) as an int64 array at run time, read into a
named tuple, with 1-D and 2-D problems padded to 3 spatial axes of size 1, so one compiled
helper serves every shape. Programs call them through C function pointers (`calls`): each
helper has a `numba.cfunc(cache=True)` wrapper per dtype, compiled once per machine, and a
program that calls it compiles in milliseconds, where inline loop nests, or njit helpers
(which Numba links into the caller and optimises again), cost seconds of LLVM time per
convolution (PERF.md fact 8). Only rare configurations (more than 3 spatial axes, pooling of
rank > 6) get generated loops. Each loop nest is a helper of its own (per im2col copy loop,
window-sum loop, tile fold and 2x2 tile shape), picked when the program is emitted, so that a
program compiles only the loops it calls: 1-4 s each on a cold cache, where one helper holding
every variant behind a runtime flag, built from nested `inline="always"` blocks (whose IR
Numba deep-copies into every caller), took 30-36 s (flagship step: 88 s of helper compiles
down to 11 s, CPU time). Scratch matrices come from `ctx.emitter.temp(aval)`: allocated
by the driver once per call, outside compiled code (PERF.md fact 5), and reused through the
program's buffer pool.

Measured on W7 (one core): forward im2col 0.43 ms and the conv2 GEMMs ~2.1 ms each; the whole
jitted CNN step 13.9 ms against JAX's 19.3 ms in the same run (bench/conv_bench.py).
"""

from __future__ import annotations

from fnbrrr.jit.conv_kernels import strategy
from fnbrrr.jit.conv_kernels.direct import direct_conv, generated_direct_conv
from fnbrrr.jit.conv_kernels.gemm_gather import gemm_gather_conv
from fnbrrr.jit.conv_kernels.geometry import ConvGeometry, conv_geometry
from fnbrrr.jit.conv_kernels.im2col import IM2COL_VARIANTS, im2col_conv
from fnbrrr.jit.conv_kernels.loops import SPATIAL
from fnbrrr.jit.conv_kernels.pooling import POOLING_KERNELS
from fnbrrr.jit.conv_kernels.source import Code
from fnbrrr.jit.conv_kernels.strategy import choose_strategy
from fnbrrr.jit.lowering import Kernel, literal

_STRATEGIES = {"direct": direct_conv, "im2col": im2col_conv, "gemm_gather": gemm_gather_conv}


def _emit_conv(ctx, eqn, ins, outs):
    out_aval = eqn.outvars[0].aval
    if out_aval.size == 0:
        return ["pass"]
    geom = conv_geometry(eqn)
    if geom.in_features * geom.window == 0:
        return [f"{outs[0]}.fill({literal(0, out_aval.dtype)})"]
    chosen = choose_strategy(eqn)
    code = Code()
    code(f"# convolution strategy: {chosen}")
    args = (ctx, code, geom, out_aval.dtype, ins, outs[0])
    if chosen == "direct" and geom.nsp > SPATIAL:
        generated_direct_conv(eqn, *args)
    else:
        _STRATEGIES[chosen](*args)
    return code.lines


CONV_KERNELS = {"conv_general_dilated": Kernel(_emit_conv), **POOLING_KERNELS}

__all__ = ["CONV_KERNELS", "ConvGeometry", "IM2COL_VARIANTS", "choose_strategy",
           "conv_geometry", "strategy"]
