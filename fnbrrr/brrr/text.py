"""The brrr report as a text table (what `print(report)` shows)."""

from __future__ import annotations


def seconds_text(t: float) -> str:
    """`2.31 ms`, `640 ns`: three significant digits in a readable unit."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t / 1e-9:.3g} ns"


def bytes_text(n: float) -> str:
    """`33.6 MB`, `80 B` (decimal units, as bandwidths are quoted)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def count_text(n: float) -> str:
    """`12.6 M`, `2.15 G`, `40`."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f}"


def _shape_text(shape) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


_HEADER = (f"{'#':>3}  {'kind':<7} {'shape':<14} {'time':>9} {'bytes':>9} {'GB/s':>7} "
           f"{'mem%':>5} {'FLOPs':>8} {'GFLOP/s':>8} {'cmp%':>5} {'FLOP/B':>7}  verdict")


def _kernel_row(k) -> str:
    trans = f" +{count_text(k.transcendentals)} transc." if k.transcendentals else ""
    return (f"{k.index:>3}  {k.kind:<7} {_shape_text(k.shape):<14} {seconds_text(k.seconds):>9} "
            f"{bytes_text(k.bytes):>9} {k.gbytes_per_s:>7.2f} {k.memory_share:>5.0%} "
            f"{count_text(k.flops):>8} {k.gflops_per_s:>8.2f} {k.compute_share:>5.0%} "
            f"{k.intensity:>7.2f}  {k.verdict}{trans}")


def _equation_rows(k, width: int = 60) -> list:
    rows = []
    for eqn, source in zip(k.equations, k.sources):
        text = eqn if len(eqn) <= width else eqn[:width - 3] + "..."
        rows.append(f"       {text:<{width}}  {source}" if source else f"       {text}")
    if k.kind == "outputs":
        rows.append("       (copies remapped or reshaped values into the outputs)")
    return rows


def _ledger_rows(ledger: dict) -> list:
    total = ledger["total"]
    rows = [f"per call (a normal jitted call, medians): {seconds_text(total)}"]
    for phase in ("argument flattening", "cache look-up", "dispatch", "allocation", "kernels"):
        share = ledger[phase] / total if total else 0.0
        rows.append(f"  {phase:<20} {seconds_text(ledger[phase]):>9}  {share:>4.0%}")
    return rows


def _fusion_row(cost: dict) -> str:
    fused, unfused = cost["bytes accessed"], cost["bytes accessed unfused"]
    saved = cost["bytes saved by fusion"]
    share = saved / unfused if unfused else 0.0
    return (f"fusion: {bytes_text(fused)} moved instead of {bytes_text(unfused)} op by op "
            f"(saved {bytes_text(saved)}, {share:.0%})")


def _ceilings_row(machine) -> str:
    return f"ceilings: {machine.summary()}"


def format_report(report) -> str:
    """The whole report: header, kernel table with equations, ledger, fusion, notes."""
    lines = [f"brrr: {report.name}({report.signature})", _ceilings_row(report.machine), "",
             _HEADER]
    for k in report.kernels:
        lines.append(_kernel_row(k))
        lines.extend(_equation_rows(k))
    kernels_total = sum(k.seconds for k in report.kernels)
    lines += [f"{'':>3}  {'all':<7} {'':<14} {seconds_text(kernels_total):>9} "
              f"{bytes_text(sum(k.bytes for k in report.kernels)):>9}", ""]
    lines += _ledger_rows(report.ledger)
    lines.append(_fusion_row(report.cost))
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines)
