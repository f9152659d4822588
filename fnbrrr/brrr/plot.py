"""The roofline plot of a brrr report (matplotlib, optional: `pip install fnbrrr[examples]`).

x: arithmetic intensity (FLOPs per byte; a transcendental counts as the FLOPs it costs at the
calibrated rates). y: achieved FLOP/s. The ceilings: the bandwidth slope (bytes/s x intensity;
sustained DRAM solid, the best cache-sized working set dashed) and the compute roofs (a serial
Numba loop solid, BLAS dashed). A kernel on a line runs at that ceiling; below them all, its
time goes elsewhere (overhead).
"""

from __future__ import annotations

import numpy as np

_COLORS = {"overhead": "tab:gray", "bandwidth": "tab:blue", "compute": "tab:red"}


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError(
            "report.plot needs matplotlib, an optional dependency of fnbrrr: install it with "
            "`pip install matplotlib` (or `pip install fnbrrr[examples]`), or print the report "
            "instead (`print(report)`)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _intensity_range(kernels) -> tuple[float, float]:
    xs = [k.effective_flops / k.bytes for k in kernels if k.bytes and k.effective_flops]
    low = min([1 / 64] + [x / 4 for x in xs])
    high = max([1024.0] + [x * 4 for x in xs])
    return low, high


def _draw_ceilings(ax, machine, low: float, high: float) -> None:
    x = np.geomspace(low, high, 200)
    cache = max(r for _, r in machine.bandwidth_curve)
    for peak, label, style in ((machine.loop_flops, "Numba loop", "-"),
                               (machine.blas_flops, "BLAS", "--")):
        ax.plot(x, np.minimum(peak, x * machine.memory_bandwidth), style, color="black", lw=1.5,
                label=f"{label} {peak / 1e9:.0f} GFLOP/s, DRAM {machine.memory_bandwidth / 1e9:.0f}"
                      " GB/s")
    ax.plot(x, np.minimum(max(machine.loop_flops, machine.blas_flops), x * cache), ":",
            color="gray", lw=1, label=f"cache-sized working sets {cache / 1e9:.0f} GB/s")


def _draw_kernels(ax, kernels) -> None:
    for k in kernels:
        if not k.bytes or k.seconds <= 0 or not k.effective_flops:
            continue
        x, y = k.effective_flops / k.bytes, k.effective_flops / k.seconds
        ax.scatter([x], [y], s=60, color=_COLORS.get(k.verdict, "black"), zorder=3)
        name = "+".join(dict.fromkeys(k.primitives))
        label = f"{k.index}: {name[:24]}"
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)


def plot_roofline(report, path: str) -> str:
    """Write the roofline of `report`'s kernels to `path` (PNG); returns `path`.

    Args:
      report: a `brrr` `Report`.
      path: the file to write.

    Returns:
      `path`.

    Example:
        >>> fnbrrr.brrr(f)(x).plot("roofline.png")
    """
    plt = _pyplot()
    machine = report.machine
    fig, ax = plt.subplots(figsize=(8, 5.5))
    low, high = _intensity_range(report.kernels)
    _draw_ceilings(ax, machine, low, high)
    _draw_kernels(ax, report.kernels)
    for verdict, color in _COLORS.items():
        ax.scatter([], [], color=color, label=f"{verdict}-bound kernel")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOPs per byte)")
    ax.set_ylabel("achieved FLOP/s")
    ax.set_title(f"brrr roofline: {report.name}({report.signature})"[:90], fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
