"""Horace He's experiment: repeat an elementwise operation N times inside one fused kernel.

From "Making Deep Learning Go Brrrr From First Principles": a fused kernel that reads x,
applies N operations to each element in registers and writes the result moves the same
bytes for every N (4 bytes in, 4 out per element) while its arithmetic grows with N. So its
time is flat while memory is the limit, and grows linearly once the arithmetic is: the knee
between the two is where the kernel's arithmetic intensity crosses the machine's ridge point
(peak FLOP/s / bandwidth).

The essay repeats `x * 2`. Here that chain is *folded*: the generated loop is compiled with
fastmath `reassoc` (which lets reductions vectorise), and under reassociation LLVM rewrites
`((x * 2) * 2) * 2` as `x * 8`, so 256 multiplies cost one (PERF.md fact 9). The script shows
it (the `x * 2` chain runs as fast at N = 256 as at N = 1) and then measures a chain LLVM cannot
fold: `x = x * x + 0.25`. Each step squares the previous value, so there is no constant to
combine and no algebraic shortcut; starting from x = 0.5 (its fixed point: 0.5^2 + 0.25 = 0.5)
every value stays a normal float (no slow subnormals, no inf). Each step is 2 FLOPs in the IR
(a mul and an add; LLVM contracts them into one fused multiply-add). FLOPs are counted from
the IR by `cost_analysis()`, never inferred from the timing.

One more thing the CPU teaches. Just past the knee the kernel runs near the calibrated FMA
peak (on the machine this was written on: 64 of 89 GFLOP/s at N = 16, knee predicted at
N = 13, time flat up to N = 16). For longer chains the slope gets steeper than the peak
predicts: each element's chain is *dependent* (step k needs step k-1), and beyond a few
dozen steps per element the out-of-order core cannot hold enough independent chains in
flight to hide the FMA's latency (about 4 cycles), so the loop runs at the latency, not the
throughput (10 GFLOP/s at N = 256). The GPU of the essay hides latency with thousands of
threads; one CPU core has a window of a few hundred instructions.

Usage:
    python examples/brrr_essay.py --out essay.png          # N = 1..256, 4M float32
    python examples/brrr_essay.py --quick                  # fewer points

The plot needs matplotlib (`pip install fnbrrr[examples]`); without it the table still prints.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fnbrrr
import fnbrrr.numpy as jnp
from fnbrrr.brrr import calibrate

FULL_NS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
QUICK_NS = (1, 4, 16, 32, 64, 256)


def squaring_chain(n: int):
    """`x = x * x + 0.25`, n times: 2n FLOPs per element that the compiler cannot fold."""

    def chain(x):
        for _ in range(n):
            x = x * x + 0.25
        return x

    chain.__name__ = f"squaring_chain_{n}"
    return fnbrrr.jit(chain)


def doubling_chain(n: int):
    """The essay's `x = x * 2`, n times (folded into one multiply under fastmath reassoc)."""

    def chain(x):
        for _ in range(n):
            x = x * 2
        return x

    chain.__name__ = f"doubling_chain_{n}"
    return fnbrrr.jit(chain)


def median_seconds(f, x, repeats: int) -> float:
    """Median time of `f(x)` after one warm-up call (which also compiles it)."""
    f(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def measure(ns, x, repeats: int) -> list[dict]:
    """For each N: the IR's FLOPs and bytes (`cost_analysis`) and the measured time."""
    rows = []
    for n in ns:
        f = squaring_chain(n)
        cost = f.lower(x).compile().cost_analysis()
        seconds = median_seconds(f, x, repeats)
        rows.append({"n": n, "seconds": seconds, "flops": cost["flops"],
                     "bytes": cost["bytes accessed"]})
        print(f"N = {n:>3}: {seconds * 1e3:8.3f} ms  {cost['flops'] / seconds / 1e9:7.2f} GFLOP/s  "
              f"{cost['bytes accessed'] / seconds / 1e9:6.2f} GB/s", flush=True)
    return rows


def folding_check(x, repeats: int) -> float:
    """Time ratio of the `x * 2` chain at N = 256 and N = 1 (about 1 when LLVM folds it)."""
    one = median_seconds(doubling_chain(1), x, repeats)
    many = median_seconds(doubling_chain(256), x, repeats)
    return many / one


def predicted_seconds(row: dict, machine) -> float:
    """The roofline's time: the larger of the traffic and the arithmetic at the ceilings."""
    return max(row["bytes"] / machine.bandwidth_for(row["bytes"]),
               row["flops"] / machine.loop_flops)


def knee(rows: list[dict], rise: float = 1.25) -> tuple[int, int, float]:
    """(last N on the flat stretch, first N above it, flat time): the flat floor is the
    fastest of the first three points; a point is off the floor `rise` x above it."""
    flat = min(r["seconds"] for r in rows[:3])
    first_up = next((i for i, r in enumerate(rows) if r["seconds"] > rise * flat), len(rows) - 1)
    return rows[max(first_up - 1, 0)]["n"], rows[first_up]["n"], flat


def predicted_knee(rows: list[dict], machine) -> float:
    """N where the calibrated arithmetic time (2N FLOPs per element) equals the traffic time."""
    row = rows[0]
    per_step = row["flops"] / row["n"]  # FLOPs of one step over the whole array
    return (row["bytes"] / machine.bandwidth_for(row["bytes"])) / (per_step / machine.loop_flops)


def plot(rows, machine, path: str) -> None:
    """Time against N: measured points, the roofline prediction, the predicted knee."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = np.array([r["n"] for r in rows])
    fig, ax = plt.subplots(figsize=(7.5, 5))
    ax.plot(ns, [r["seconds"] * 1e3 for r in rows], "o-", label="measured (median)")
    ax.plot(ns, [predicted_seconds(r, machine) * 1e3 for r in rows], "--", color="gray",
            label="roofline: max(bytes / bandwidth, FLOPs / FMA peak)")
    ridge = predicted_knee(rows, machine)
    ax.axvline(ridge, color="tab:red", lw=1, ls=":", label=f"ridge point, N = {ridge:.0f}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("N: repetitions of x = x * x + 0.25 in one fused loop")
    ax.set_ylabel("time per call (ms)")
    ax.set_title(f"{rows[0]['bytes'] / 8:,.0f} float32: flat while memory-bound, "
                 "then compute-bound", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the plot to this PNG file")
    parser.add_argument("--quick", action="store_true", help="fewer points and repeats")
    parser.add_argument("--elements", type=int, default=1 << 22)
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else 7
    machine = calibrate()
    print(f"ceilings: {machine.summary()}\n")
    # A real buffer: jnp.full gives a broadcast view, which every call would copy first.
    x = jnp.asarray(np.full(args.elements, 0.5, np.float32))
    ratio = folding_check(x, repeats)
    print(f"x * 2 repeated 256 times takes {ratio:.2f}x the time of once: "
          + ("folded by LLVM (fastmath reassoc), as PERF.md fact 9 warns\n" if ratio < 2 else
             "not folded on this build\n"))
    rows = measure(QUICK_NS if args.quick else FULL_NS, x, repeats)
    last_flat, first_up, flat = knee(rows)
    print(f"\nflat (memory-bound) stretch: {flat * 1e3:.2f} ms for {rows[0]['bytes'] / 1e6:.1f} "
          f"MB ({rows[0]['bytes'] / flat / 1e9:.1f} GB/s) up to N = {last_flat}; slower from "
          f"N = {first_up} on")
    print(f"knee: between N = {last_flat} and N = {first_up} measured; N = "
          f"{predicted_knee(rows, machine):.0f} predicted by the calibrated roofline")
    best = max(rows, key=lambda r: r["flops"] / r["seconds"])
    print(f"compute-bound: best {best['flops'] / best['seconds'] / 1e9:.0f} GFLOP/s at N = "
          f"{best['n']} (FMA peak {machine.loop_flops / 1e9:.0f}); "
          f"{rows[-1]['flops'] / rows[-1]['seconds'] / 1e9:.0f} GFLOP/s at N = {rows[-1]['n']}, "
          "where each element's long dependent chain runs at the FMA latency")
    if args.out:
        try:
            plot(rows, machine, args.out)
            print(f"plot written to {args.out}")
        except ImportError:
            print("matplotlib is not installed (pip install fnbrrr[examples]): no plot")


if __name__ == "__main__":
    main()
