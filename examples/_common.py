"""Shared helpers of the examples: command line, BLAS threads, progress bar, timing, loss plots.

Every example is a script with the same shape: parse `--seed`, `--steps`, `--quick`, `--out`;
train with a jitted step inside a progress bar that shows the loss; print one summary line;
write a loss-curve PNG into `examples/out/`. The pieces they share live here so that each
example reads as the model and its training loop only.

tqdm and matplotlib come with `pip install fnbrrr[examples]`; without them the examples still
run (progress is printed every tenth of the way, and the plot is skipped with a message).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Iterable, Sequence

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def make_parser(description: str, steps: int, quick_steps: int) -> argparse.ArgumentParser:
    """The options every example takes; add your own, then call `parse_args`.

    Args:
      description: shown by `--help` (pass the module docstring).
      steps: the default number of training steps.
      quick_steps: the number of steps under `--quick` (a run of a few seconds, for tests).

    Returns:
      An `argparse.ArgumentParser` with `--seed`, `--steps`, `--quick`, `--out`,
      `--blas-threads`, `--no-progress` and `--no-jit`.
    """
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0,
                        help="PRNG seed: the same seed gives the same run (default 0)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"training steps (default {steps}; {quick_steps} with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny run of a few seconds (used by the tests)")
    parser.add_argument("--out", default=OUT_DIR,
                        help="directory for the plot (default examples/out)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="threads for BLAS matrix products (default 1; see limit_blas_threads)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-jit", action="store_true",
                        help="run eagerly (fnbrrr.config jax_disable_jit): no compilation, "
                             "slower steps; for debugging")
    parser.set_defaults(_steps=steps, _quick_steps=quick_steps)
    return parser


def parse_args(parser: argparse.ArgumentParser,
               argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse `argv` (default `sys.argv[1:]`), resolve `args.steps`, limit BLAS threads,
    disable jit if asked (for the whole process) and create the output directory."""
    args = parser.parse_args(argv)
    if args.no_jit:
        import fnbrrr

        fnbrrr.config.update("jax_disable_jit", True)
    if args.steps is None:
        args.steps = args._quick_steps if args.quick else args._steps
    if args.steps < 1:
        parser.error(f"--steps must be positive, got {args.steps}")
    limit_blas_threads(args.blas_threads)
    os.makedirs(args.out, exist_ok=True)
    return args


def limit_blas_threads(n: int) -> None:
    """Let BLAS (the OpenBLAS that NumPy ships, which fnbrrr's compiled GEMMs call) use at most
    `n` threads; `n <= 0` leaves it alone.

    Why one thread by default: the examples' matrix products are small (a batch of 128 by a
    few hundred features), where a second thread buys little, and OpenBLAS threads spin while
    they wait for each other. On a machine whose cores are busy with other work, a thread that
    is descheduled stalls every product: measured here under a load of ~7 on 2 cores, a
    128x784 @ 784x256 product took 66 ms with 2 threads and 1.2 ms with one. An explicit
    `OPENBLAS_NUM_THREADS` in the environment wins over this.
    """
    if n <= 0 or "OPENBLAS_NUM_THREADS" in os.environ:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # threadpoolctl comes with scikit-learn; without it, keep the default
        return
    threadpool_limits(limits=n, user_api="blas")


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def shuffled_split(key, n: int, n_test: int):
    """Indices of a random train/test split of `n` examples: `(train_idx, test_idx)` as NumPy
    int arrays, shuffled with `fnbrrr.random.permutation(key, n)`."""
    import numpy as np

    from fnbrrr import random

    order = np.asarray(random.permutation(key, n))
    return order[n_test:], order[:n_test]


def minibatches(key, n: int, batch_size: int):
    """Endless minibatch indices over `n` examples: each epoch a fresh permutation made from
    `fold_in(key, epoch)`; the last incomplete batch of an epoch is dropped, so every batch
    has the same shape and a jitted step is traced once."""
    import numpy as np

    from fnbrrr import random

    if batch_size > n:
        raise ValueError(f"batch size {batch_size} exceeds the {n} training examples")
    epoch = 0
    while True:
        order = np.asarray(random.permutation(random.fold_in(key, epoch), n))
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start:start + batch_size]
        epoch += 1


def accuracy(predict, x, labels, batch_size: int = 500) -> float:
    """The fraction of `labels` that `argmax(predict(x_chunk), -1)` gets right.

    `x` is cut into chunks of `batch_size` (the last one padded by repeating its first row),
    so a jitted `predict` sees one shape and is traced once.
    """
    import numpy as np

    correct = 0
    for start in range(0, len(x), batch_size):
        chunk = x[start:start + batch_size]
        real = len(chunk)
        if real < batch_size and len(x) > batch_size:
            chunk = np.concatenate([chunk, np.repeat(chunk[:1], batch_size - real, axis=0)])
        predicted = np.asarray(predict(chunk)).argmax(-1)[:real]
        correct += int((predicted == np.asarray(labels[start:start + real])).sum())
    return correct / len(x)


# --------------------------------------------------------------------------------------------
# Progress and timing
# --------------------------------------------------------------------------------------------


class _PlainProgress:
    """A stand-in for tqdm (when it is not installed): prints every tenth of the way."""

    def __init__(self, iterable: Iterable, total: int, desc: str, disable: bool):
        self._iterable, self._total, self._desc, self._disable = iterable, total, desc, disable
        self._postfix = ""
        self._done = 0

    def __iter__(self):
        every = max(1, self._total // 10)
        for item in self._iterable:
            yield item
            self._done += 1
            if not self._disable and (self._done % every == 0 or self._done == self._total):
                print(f"{self._desc}: {self._done}/{self._total} {self._postfix}",
                      file=sys.stderr, flush=True)

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self._postfix = text

    def close(self) -> None:
        pass


def progress(steps: int, desc: str, disable: bool = False):
    """A progress bar over `range(steps)`; call `.set_postfix_str(f"loss {loss:.3f}")`.

    tqdm when it is installed, otherwise a plain printout every tenth of the way.
    """
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _PlainProgress(range(steps), steps, desc, disable)
    return tqdm(range(steps), total=steps, desc=desc, disable=disable, dynamic_ncols=True,
                leave=True, file=sys.stderr)


class StepTimer:
    """Wall time per training step, with the first step (tracing and compilation) apart.

    Usage: `with timer: state = step(state, ...)` around each step; the step must return
    concrete arrays (fnbrrr's jitted calls run synchronously, so the time is the step's own).
    """

    def __init__(self):
        self.times: list[float] = []
        self._start = 0.0

    def __enter__(self) -> StepTimer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.times.append(time.perf_counter() - self._start)

    @property
    def first_s(self) -> float:
        """Seconds taken by the first step (trace, compile or load from cache, run)."""
        return self.times[0] if self.times else math.nan

    @property
    def median_ms(self) -> float:
        """Median milliseconds of the steps after the first (the first if there is one)."""
        rest = sorted(self.times[1:] or self.times)
        if not rest:
            return math.nan
        mid = len(rest) // 2
        middle = rest[mid] if len(rest) % 2 else 0.5 * (rest[mid - 1] + rest[mid])
        return 1e3 * middle


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def smooth(values: Sequence[float], weight: float = 0.9) -> list[float]:
    """An exponential moving average with bias correction (as TensorBoard's smoothing)."""
    out, average = [], 0.0
    for i, value in enumerate(values):
        average = weight * average + (1 - weight) * float(value)
        out.append(average / (1 - weight ** (i + 1)))
    return out


def plot_curves(path: str, curves: dict[str, tuple[Sequence[float], Sequence[float]]],
                title: str, xlabel: str = "step", ylabel: str = "loss", log_y: bool = False,
                log_x: bool = False, smooth_weight: float = 0.0) -> str | None:
    """Write a line plot of `curves` (label -> (xs, ys)) to `path` as PNG.

    Args:
      path: the PNG file to write.
      curves: the lines to draw, in order.
      title, xlabel, ylabel: the labels.
      log_y, log_x: logarithmic axes.
      smooth_weight: if > 0, draw each curve faintly and its moving average on top.

    Returns:
      `path`, or None if matplotlib is not installed (a message says so).
    """
    try:
        import matplotlib
    except ImportError:
        print(f"matplotlib is not installed: no plot written to {path} "
              "(pip install fnbrrr[examples])", file=sys.stderr)
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for label, (xs, ys) in curves.items():
        if len(ys) == 1:  # a single measurement (e.g. a held-out loss at the end): a marker
            ax.plot(xs, ys, "o", label=label)
        elif smooth_weight > 0:
            (line,) = ax.plot(xs, ys, alpha=0.25, linewidth=0.8)
            ax.plot(xs, smooth(ys, smooth_weight), color=line.get_color(), label=label)
        else:
            ax.plot(xs, ys, label=label)
    if log_y:
        ax.set_yscale("log")
    if log_x:
        ax.set_xscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if curves:
        ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def report_plot(path: str | None) -> None:
    """Print where the plot went (nothing if it was not written)."""
    if path is not None:
        print(f"plot: {os.path.relpath(path)}")
