"""Per-operation overhead of fnbrrr's eager mode against raw NumPy on tiny arrays.

On 10-element arrays the arithmetic is negligible: what is measured is the cost of the
library's dispatch (promotion, the shape rule, the impl call, wrapping the result). Reference
figures measured on this kind of machine (PERF.md): one eager `jnp.sin` costs 6.2 us in JAX,
1.1 us in PyTorch and 0.35 us in NumPy; fnbrrr aims for at most 1.5 us.

Run: `python bench/eager_overhead.py` (add `--repeat 9` for steadier medians).
"""

from __future__ import annotations

import argparse
import statistics
import timeit

import numpy as np

import fnbrrr.numpy as jnp


def median_us(fn, number: int, repeat: int) -> float:
    """Median over `repeat` samples of the time per call, in microseconds."""
    samples = timeit.repeat(fn, number=number, repeat=repeat)
    return statistics.median(samples) / number * 1e6


def workloads(n: int):
    x_np = np.linspace(-1.0, 1.0, n, dtype=np.float32)
    y_np = np.linspace(1.0, 2.0, n, dtype=np.float32)
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)
    return [
        ("sin(x)", lambda: jnp.sin(x), lambda: np.sin(x_np)),
        ("x * y", lambda: x * y, lambda: x_np * y_np),
        ("x * 2.0", lambda: x * 2.0, lambda: x_np * np.float32(2.0)),
        ("x * 2 + 1", lambda: x * 2 + 1, lambda: x_np * np.float32(2) + np.float32(1)),
        ("sum(x)", lambda: jnp.sum(x), lambda: np.sum(x_np)),
        ("x[3]", lambda: x[3], lambda: x_np[3]),
        ("x.reshape(2, -1)", lambda: x.reshape(2, -1), lambda: x_np.reshape(2, -1)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10)
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"eager overhead on {args.size}-element float32 arrays (median of {args.repeat})")
    print(f"{'op':<18}{'fnbrrr us':>11}{'numpy us':>10}{'overhead us':>13}{'ratio':>8}")
    for name, ours, theirs in workloads(args.size):
        ours()
        theirs()
        t_ours = median_us(ours, args.number, args.repeat)
        t_np = median_us(theirs, args.number, args.repeat)
        print(f"{name:<18}{t_ours:>11.2f}{t_np:>10.2f}{t_ours - t_np:>13.2f}"
              f"{t_ours / t_np:>7.1f}x")
    print("targets: one eager sin <= 1.5 us total (JAX 6.2 us, PyTorch 1.1 us, NumPy 0.35 us)")


if __name__ == "__main__":
    main()
