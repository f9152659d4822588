"""W7: one SGD step of a small CNN, under fnbrrr's jit, hand-written NumPy, and (when they
import) JAX's jit and PyTorch eager; prints each one's time and its ratio to JAX.

The step (PERF.md's W7): batch 32 of 1x28x28 images, conv3x3 -> 16, relu, conv3x3 -> 32, relu,
global mean pool, dense -> 10, softmax cross-entropy, SGD (lr 0.01). Single-threaded by default
(BLAS, XLA, Numba and torch limited to one thread), as the PERF.md figures are.

The implementations run interleaved, round after round, so that a noisy neighbour slows them
alike; the table reports the median and the minimum of the per-round times. On a shared
2-core machine, compare ratios measured in one run, not absolute times across runs.

    .venv/bin/python bench/conv_bench.py                 # fnbrrr and NumPy
    /tmp/peers/bin/python bench/conv_bench.py --cpu 0    # + JAX and PyTorch, pinned to CPU 0
    .venv/bin/python bench/conv_bench.py --pools         # the flagship's max pools instead

`--pools` times the two 2x2 / stride-2 max pools of the flagship CNN (examples/mnist.py,
NCHW, batch 128), forward and VJP, under fnbrrr's jit: `lax.reduce_window` (window_max and
select_and_scatter_add) against a reshape to (N, C, H/2, 2, W/2, 2) and a max over the window
axes, with NumPy's reshape-max as a yardstick.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

BATCH, C1, C2, SIDE, CLASSES, LR = 32, 16, 32, 28, 10, 0.01
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds")
    parser.add_argument("--calls", type=int, default=10, help="steps per implementation per round")
    parser.add_argument("--threads", type=int, default=1, help="threads for BLAS/XLA/torch")
    parser.add_argument("--cpu", type=int, default=None, help="pin the process to this CPU")
    parser.add_argument("--only", default=None,
                        help="comma-separated subset of: fnbrrr,numpy,jax,torch")
    parser.add_argument("--pools", action="store_true",
                        help="time the flagship's max pools instead of the W7 step")
    return parser.parse_args(argv)


def limit_threads(threads: int) -> None:
    """Must run before NumPy, JAX or torch are imported."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    if threads == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false"
                                   " intra_op_parallelism_threads=1").strip()


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def make_data(np):
    rng = np.random.default_rng(0)

    def he(shape, fan_in):
        return (rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(np.float32)

    params = [he((C1, 1, 3, 3), 9), np.zeros(C1, np.float32), he((C2, C1, 3, 3), 9 * C1),
              np.zeros(C2, np.float32), he((C2, CLASSES), C2), np.zeros(CLASSES, np.float32)]
    x = rng.standard_normal((BATCH, 1, SIDE, SIDE)).astype(np.float32)
    y = np.zeros((BATCH, CLASSES), np.float32)
    y[np.arange(BATCH), rng.integers(0, CLASSES, BATCH)] = 1
    return params, x, y


def step_flops() -> int:
    """Convolution and dense FLOPs of one step (no input gradient for the first layer)."""
    h1, h2 = SIDE - 2, SIDE - 4
    conv1 = 2 * BATCH * C1 * h1 * h1 * 9
    conv2 = 2 * BATCH * C2 * h2 * h2 * 9 * C1
    dense = 2 * BATCH * C2 * CLASSES
    return 2 * conv1 + 3 * conv2 + 3 * dense


# --------------------------------------------------------------------------------------------
# The step, written once against a JAX-like library (fnbrrr or JAX)
# --------------------------------------------------------------------------------------------


def cnn_loss(params, x, y, lib, jnp):
    w1, b1, w2, b2, wd, bd = params

    def conv(h, w):
        return lib.lax.conv_general_dilated(h, w, (1, 1), "VALID",
                                            dimension_numbers=("NCHW", "OIHW", "NCHW"))

    h = jnp.maximum(conv(x, w1) + jnp.reshape(b1, (1, -1, 1, 1)), 0.0)
    h = jnp.maximum(conv(h, w2) + jnp.reshape(b2, (1, -1, 1, 1)), 0.0)
    logits = jnp.mean(h, axis=(2, 3)) @ wd + bd
    top = jnp.max(logits, axis=1, keepdims=True)
    lse = top + jnp.log(jnp.sum(jnp.exp(logits - top), axis=1, keepdims=True))
    return -jnp.mean(jnp.sum(y * (logits - lse), axis=1))


def library_step(lib, jnp):
    def step(params, x, y):
        loss, grads = lib.value_and_grad(lambda p: cnn_loss(p, x, y, lib, jnp))(params)
        return [p - LR * g for p, g in zip(params, grads)], loss

    return lib.jit(step)


def fnbrrr_runner(np, data):
    import fnbrrr
    import fnbrrr.numpy as fnp
    from fnbrrr import core

    if not hasattr(fnbrrr.lax, "conv_general_dilated"):  # not wired into fnbrrr.lax yet
        from fnbrrr._prims import convolution

        fnbrrr.lax.conv_general_dilated = convolution.conv_general_dilated
    if core.primitives["conv_general_dilated"].lower is None:  # nor into the jit's lowerings
        from fnbrrr.jit.conv_kernels import CONV_KERNELS

        for name, lowering in CONV_KERNELS.items():
            core.primitives[name].lower = lowering
    params, x, y = data
    return stateful(library_step(fnbrrr, fnp), [fnp.asarray(p) for p in params],
                    fnp.asarray(x), fnp.asarray(y), lambda tree: None, np.asarray)


def jax_runner(np, data):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_cpu_enable_async_dispatch", False)  # PERF.md: "jax-sync"
    params, x, y = data
    return stateful(library_step(jax, jnp), [jnp.asarray(p) for p in params], jnp.asarray(x),
                    jnp.asarray(y), jax.block_until_ready, np.asarray)


def stateful(step, params, x, y, block, to_numpy):
    """(run, first_loss): `run()` advances the parameters by one step, like a training loop."""
    state = {"params": params}

    def run():
        state["params"], loss = step(state["params"], x, y)
        block(loss)

    _, loss = step(params, x, y)
    return run, float(to_numpy(loss))


# --------------------------------------------------------------------------------------------
# Hand-written NumPy: im2col through sliding windows, backward pass by hand
# --------------------------------------------------------------------------------------------


def numpy_runner(np, data):
    from numpy.lib.stride_tricks import sliding_window_view

    def conv(x, w):  # VALID, stride 1: (N, C, H, W) x (O, C, K, K) -> (N, O, H', W')
        windows = sliding_window_view(x, w.shape[2:], axis=(2, 3))  # N C H' W' K K
        return np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)

    def conv_kernel_grad(x, dy, k):
        windows = sliding_window_view(x, (k, k), axis=(2, 3))
        return np.tensordot(dy, windows, axes=([0, 2, 3], [0, 2, 3]))  # O C K K

    def conv_input_grad(dy, w):
        k = w.shape[2]
        padded = np.pad(dy, ((0, 0), (0, 0), (k - 1, k - 1), (k - 1, k - 1)))
        return conv(padded, np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]))

    def step(params, x, y):
        w1, b1, w2, b2, wd, bd = params
        z1 = conv(x, w1) + b1[None, :, None, None]
        h1 = np.maximum(z1, 0)
        z2 = conv(h1, w2) + b2[None, :, None, None]
        h2 = np.maximum(z2, 0)
        pooled = h2.mean(axis=(2, 3))
        logits = pooled @ wd + bd
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = -(y * log_probs).sum(axis=1).mean()
        d_logits = (np.exp(log_probs) - y) / x.shape[0]
        d_pooled = d_logits @ wd.T
        d_z2 = (d_pooled[:, :, None, None] / (h2.shape[2] * h2.shape[3])) * (z2 > 0)
        d_z1 = conv_input_grad(d_z2, w2) * (z1 > 0)
        grads = [conv_kernel_grad(x, d_z1, 3), d_z1.sum(axis=(0, 2, 3)),
                 conv_kernel_grad(h1, d_z2, 3), d_z2.sum(axis=(0, 2, 3)),
                 pooled.T @ d_logits, d_logits.sum(axis=0)]
        return [(p - LR * g).astype(np.float32) for p, g in zip(params, grads)], loss

    params, x, y = data
    return stateful(step, params, x, y, lambda tree: None, np.asarray)


# --------------------------------------------------------------------------------------------
# PyTorch eager
# --------------------------------------------------------------------------------------------


def torch_runner(np, data, threads):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    params, x, y = data
    params = [torch.tensor(p, requires_grad=True) for p in params]
    x, y = torch.tensor(x), torch.tensor(y)

    def loss_fn(p):
        w1, b1, w2, b2, wd, bd = p
        h = torch.relu(F.conv2d(x, w1, b1))
        h = torch.relu(F.conv2d(h, w2, b2))
        logits = h.mean(dim=(2, 3)) @ wd + bd
        return -(y * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()

    def run():
        loss = loss_fn(params)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= LR * p.grad
                p.grad = None
        return loss

    with torch.no_grad():
        first_loss = float(loss_fn(params))
    return run, first_loss


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


def interleaved_times(runners: dict, rounds: int, calls: int) -> dict:
    """Per implementation, the mean time of one call in each round (seconds)."""
    for run in runners.values():  # warm-up: compilation, caches, allocator
        for _ in range(3):
            run()
    times = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            for _ in range(calls):
                run()
            times[name].append((time.perf_counter() - start) / calls)
    return times


def report(times: dict, losses: dict, first_call: dict) -> str:
    reference = "jax jit" if "jax jit" in times else None
    lines = [f"{'implementation':<18} {'median':>9} {'min':>9} {'GFLOP/s':>8} "
             f"{'vs JAX':>7} {'first call':>11} {'loss':>9}"]
    ref_median = statistics.median(times[reference]) if reference else None
    for name, samples in times.items():
        median, best = statistics.median(samples), min(samples)
        ratio = f"{median / ref_median:6.2f}x" if ref_median else "      -"
        lines.append(f"{name:<18} {median * 1e3:7.2f}ms {best * 1e3:7.2f}ms "
                     f"{step_flops() / median / 1e9:8.1f} {ratio} "
                     f"{first_call[name]:10.2f}s {losses[name]:9.5f}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# --pools: the flagship's max pools
# --------------------------------------------------------------------------------------------

POOL_SHAPES = ((128, 16, 28, 28), (128, 32, 14, 14))  # the inputs of examples/mnist.py's pools


def pool_runners(np, shape) -> dict:
    """Name -> a call that runs one pooling variant on a random NCHW input of `shape`."""
    import fnbrrr
    import fnbrrr.numpy as fnp
    from fnbrrr import lax

    n, c, h, w = shape
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    ct = np.random.default_rng(1).standard_normal((n, c, h // 2, w // 2)).astype(np.float32)

    def window_max(a):
        return lax.reduce_window(a, -fnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def reshape_max(a):
        return fnp.max(a.reshape(n, c, h // 2, 2, w // 2, 2), axis=(3, 5))

    runners = {}
    for name, pool in (("window_max", window_max), ("reshape+max", reshape_max)):
        forward = fnbrrr.jit(pool)
        backward = fnbrrr.jit(lambda a, g, pool=pool: fnbrrr.vjp(pool, a)[1](g)[0])
        runners[f"{name} fwd"] = lambda f=forward: f(x)
        runners[f"{name} vjp"] = lambda f=backward: f(x, ct)
    runners["numpy reshape-max fwd"] = lambda: x.reshape(n, c, h // 2, 2, w // 2, 2).max((3, 5))
    return runners


def pool_report(args, np) -> None:
    """Print the median and minimum time of each pooling variant, per pool shape."""
    for shape in POOL_SHAPES:
        times = interleaved_times(pool_runners(np, shape), args.rounds, args.calls)
        print(f"max pool 2x2 / stride 2 of {shape} f32, {args.threads} thread(s); "
              f"{args.rounds} rounds x {args.calls} calls")
        for name, samples in times.items():
            print(f"  {name:<22} median {statistics.median(samples) * 1e3:7.3f} ms   "
                  f"min {min(samples) * 1e3:7.3f} ms")


def main(argv=None) -> None:
    args = parse_args(argv)
    limit_threads(args.threads)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    import numpy as np

    if args.pools:
        pool_report(args, np)
        return
    data = make_data(np)
    wanted = set((args.only or "fnbrrr,numpy,jax,torch").split(","))
    factories = {"fnbrrr jit": ("fnbrrr", lambda: fnbrrr_runner(np, data)),
                 "numpy": ("numpy", lambda: numpy_runner(np, data)),
                 "jax jit": ("jax", lambda: jax_runner(np, data)),
                 "torch eager": ("torch", lambda: torch_runner(np, data, args.threads))}
    runners, losses, first_call = {}, {}, {}
    for name, (key, factory) in factories.items():
        if key not in wanted:
            continue
        start = time.perf_counter()
        try:
            runners[name], losses[name] = factory()
        except ImportError as e:
            print(f"({name} skipped: {e})", file=sys.stderr)
            continue
        first_call[name] = time.perf_counter() - start
    spread = max(losses.values()) - min(losses.values())
    if spread > 1e-4:
        raise SystemExit(f"the implementations disagree on the first step's loss: {losses}")
    times = interleaved_times(runners, args.rounds, args.calls)
    print(f"W7 CNN SGD step, batch {BATCH}, {args.threads} thread(s)"
          f"{'' if args.cpu is None else f', pinned to CPU {args.cpu}'}; "
          f"{step_flops() / 1e6:.0f} MFLOP per step; {args.rounds} rounds x {args.calls} calls")
    print(report(times, losses, first_call))


if __name__ == "__main__":
    main()
