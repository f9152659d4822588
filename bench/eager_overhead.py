"""Per-operation overhead of fnbrrr's eager mode against raw NumPy on tiny arrays.

On 10-element arrays the arithmetic is negligible: what is measured is the cost of the
library's dispatch (promotion, the shape rule, the impl call, wrapping the result). Reference
figures measured on this kind of machine (PERF.md): one eager `jnp.sin` costs 6.2 us in JAX,
1.1 us in PyTorch and 0.35 us in NumPy; fnbrrr aims for at most 1.5 us.

Timing is `harness.measure` (warm-up, samples of at least `--min-sample-s`, GC off, median);
`run.py --workloads W4` measures eager sin and x*2+1 against JAX and PyTorch too.

Run: `python bench/eager_overhead.py` (add `--repeat 15` for steadier medians).
"""

from __future__ import annotations

import argparse

import numpy as np
from harness import TimingConfig, measure

import fnbrrr.numpy as jnp


def median_us(fn, config: TimingConfig) -> float:
    """Median time per call of `fn`, in microseconds."""
    return measure(fn, config)["median"] * 1e6


def workloads(n: int):
    """(label, fnbrrr call, NumPy call) on n-element float32 arrays."""
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
    parser.add_argument("--repeat", type=int, default=7, help="samples per operation")
    parser.add_argument(
        "--min-sample-s",
        type=float,
        default=0.02,
        help="each sample loops the call at least this long",
    )
    parser.add_argument(
        "--number", type=int, default=None, help="calls per sample (default: from --min-sample-s)"
    )
    args = parser.parse_args()
    config = TimingConfig(
        warmup=100, repeat=args.repeat, min_sample_s=args.min_sample_s, number=args.number
    )
    print(f"eager overhead on {args.size}-element float32 arrays (median of {args.repeat})")
    print(f"{'op':<18}{'fnbrrr us':>11}{'numpy us':>10}{'overhead us':>13}{'ratio':>8}")
    for name, ours, theirs in workloads(args.size):
        t_ours = median_us(ours, config)
        t_np = median_us(theirs, config)
        print(f"{name:<18}{t_ours:>11.2f}{t_np:>10.2f}{t_ours - t_np:>13.2f}{t_ours / t_np:>7.1f}x")
    print("targets: one eager sin <= 1.5 us total (JAX 6.2 us, PyTorch 1.1 us, NumPy 0.35 us)")


if __name__ == "__main__":
    main()
