"""fnbrrr's benchmark suite: medians of W1-W8 and their ratios to NumPy, JAX and the memory floor.

    python bench/run.py [--workloads W1,W2] [--quick] [--single-core] [--json out.json]
    python bench/run.py --check          # tiny sizes, correctness only, no timing

Each (workload, library) pair runs in its own process (this script with `--worker`), so thread
pools never share a process; W6 starts fresh processes (`--w6-child`) to time a first call,
W8-compile (`--w8-compile-child`) to time W8's trace + compile for several sequence lengths.
Libraries: fnbrrr, NumPy (hand-written), and JAX and PyTorch when they are importable
(`pip install -e '.[bench]'`). Every result is checked against NumPy in float64.
See bench/README.md for the method and how to read the tables.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback

import harness
import workloads
from harness import fmt_ratio, fmt_time

LIBRARIES = ("fnbrrr", "numpy", "jax", "torch")
PACKAGES = ("fnbrrr", "numpy", "numba", "llvmlite", "jax", "jaxlib", "torch")
RUN_PY = os.path.abspath(__file__)
ROOT = os.path.dirname(os.path.dirname(RUN_PY))
# An installed fnbrrr comes first; without one, the checkout this script belongs to.
sys.path.append(ROOT)


# ----------------------------------------------------------------------- one worker process
def measure_workload(
    workload: str, library: str, *, check: bool = False, quick: bool = False
) -> dict:
    """Time (or, with `check`, only verify) every implementation of one workload in one library.

    Returns {"rows": [...]}; an implementation that fails is a row with an "error".
    """
    impls = workloads.implementations(workload, library)
    sizes = workloads.CHECK if check else workloads.FULL
    data = workloads.make_data(workload, sizes)
    config = harness.QUICK if quick else workloads.TIMING[workload]
    rows, floor = [], None
    if workload in workloads.MEMORY_BOUND and not check:
        floor = harness.time_case(workloads.copy_floor_case(data), config)
        if library == "numpy":
            floor_row = dict(workload=workload, library="numpy", variant="floor", mode="eager")
            rows.append(dict(floor_row, impl="memory floor (np.copyto)", **floor))
    references = {}
    for impl in impls:
        rows.append(_measure_impl(workload, library, impl, data, config, check, references))
    for row in rows:
        if floor is not None and "median" in row:
            row["floor_s"] = floor["median"]
            row["gbps"] = 2 * data["x"].nbytes / row["median"] / 1e9
    if workload in workloads.FLOPS:
        flops = workloads.FLOPS[workload](sizes)
        for row in rows:
            row["flops"] = flops
            if "median" in row:
                row["gflops_per_s"] = flops / row["median"] / 1e9
    return {"rows": rows}


def _measure_impl(workload, library, impl, data, config, check, references) -> dict:
    row = dict(
        workload=workload, library=library, impl=impl.name, variant=impl.variant, mode=impl.mode
    )
    try:
        case = impl.build(data)
        if check:
            case.run()  # so that the checked result comes from a second call (a jit's hot path)
        else:
            row.update(harness.time_case(case, config))
        if impl.variant not in references:
            references[impl.variant] = workloads.reference(impl.variant, data)
        _record_error(row, harness.relative_error(case.output(), references[impl.variant]))
    except Exception as error:  # noqa: BLE001  (a failing implementation is a result row)
        row["error"] = f"{type(error).__name__}: {error}"
        row["traceback"] = traceback.format_exc(limit=8)
    return row


def _record_error(row: dict, rel_err: float) -> None:
    row["rel_err"] = rel_err
    row["tolerance"] = workloads.TOLERANCE.get(row["workload"], workloads.DEFAULT_TOLERANCE)
    row["correct"] = rel_err <= row["tolerance"]


def worker_main(spec: str, check: bool, quick: bool) -> None:
    """`--worker W1:fnbrrr`: measure one pair and emit the result for the driver."""
    workload, _, library = spec.partition(":")
    harness.emit_result(measure_workload(workload, library, check=check, quick=quick))


def first_call_child_main(library: str, check: bool) -> None:
    """`--w6-child LIB`: the body of one fresh W6 process."""
    sizes = workloads.CHECK if check else workloads.FULL
    harness.emit_result(workloads.first_call_report(library, sizes))


def compile_child_main(spec: str, check: bool) -> None:
    """`--w8-compile-child LIB:T`: the body of one fresh W8-compile process."""
    library, _, length = spec.partition(":")
    sizes = workloads.CHECK if check else workloads.FULL
    harness.emit_result(workloads.compile_report(library, sizes, int(length)))


# --------------------------------------------------------------------------------- driver
def error_row(workload: str, library: str, impl: str, error: Exception) -> dict:
    """The row of a worker process that failed as a whole."""
    return dict(
        workload=workload, library=library, impl=impl, variant="", mode="", error=str(error)
    )


def run_workload(workload: str, libraries, *, check, quick, single_core, timeout) -> list[dict]:
    """Every library's worker for one workload, one process each; returns their rows."""
    rows = []
    for library in libraries:
        print(f"# {workload} {library} ...", flush=True)
        argv = [RUN_PY, "--worker", f"{workload}:{library}"]
        argv += ["--check"] * check + ["--quick"] * quick
        try:
            result = harness.run_worker_process(argv, single_core=single_core, timeout=timeout)
        except (harness.WorkerError, OSError, ValueError) as error:
            result = {"rows": [error_row(workload, library, library, error)]}
        rows += result["rows"]
    return rows


def run_first_calls(libraries, *, reps, check, single_core, timeout) -> list[dict]:
    """W6: `reps` fresh processes per case; fnbrrr and JAX cold (empty cache dir) and warm."""
    rows = []
    for library in [lib for lib in libraries if lib != "numpy"]:
        print(f"# W6 {library} ...", flush=True)
        cache_var = {"fnbrrr": "FNBRRR_CACHE_DIR", "jax": "BENCH_JAX_CACHE_DIR"}.get(library)
        cases = ("cold cache", "warm cache") if cache_var else ("first call",)
        runs = {case: [] for case in cases}
        try:
            for _ in range(reps):
                with tempfile.TemporaryDirectory(prefix="fnbrrr-bench-w6-") as cache:
                    env = {cache_var: cache} if cache_var else {}
                    for case in cases:  # the second process finds the first one's cache
                        runs[case].append(
                            _spawn_first_call(library, env, check, single_core, timeout)
                        )
        except (harness.WorkerError, OSError, ValueError) as error:
            rows.append(error_row("W6", library, f"{library} first call", error))
            continue
        rows += [_first_call_row(library, case, samples) for case, samples in runs.items()]
    return rows


def _spawn_first_call(library, env, check, single_core, timeout) -> dict:
    argv = [RUN_PY, "--w6-child", library] + ["--check"] * check
    spawned = time.time()
    result = harness.run_worker_process(argv, single_core=single_core, env=env, timeout=timeout)
    result["start_to_result_s"] = result["result_wall_time"] - spawned
    return result


def _first_call_row(library: str, case: str, samples: list[dict]) -> dict:
    firsts = [s["first_call_s"] for s in samples]
    row = dict(
        workload="W6",
        library=library,
        impl=f"{library} {case}",
        variant=case,
        mode="eager" if library == "torch" else "jit",
        median=statistics.median(firsts),
        min=min(firsts),
        max=max(firsts),
        n=len(samples),
        step=samples[0]["impl"],
    )
    for key in ("import_s", "start_to_result_s", "second_call_s"):
        row[key] = statistics.median(s[key] for s in samples)
    _record_error(row, max(s["rel_err"] for s in samples))
    return row


COMPILED_LIBRARIES = ("fnbrrr", "jax")


def run_compile_scaling(libraries, *, reps, check, single_core, timeout) -> list[dict]:
    """W8-compile: for each sequence length, `reps` fresh processes with an empty cache dir."""
    sizes = workloads.CHECK if check else workloads.FULL
    rows = []
    for library in [lib for lib in libraries if lib in COMPILED_LIBRARIES]:
        print(f"# W8-compile {library} ...", flush=True)
        try:
            library_rows = [
                _compile_row(
                    library,
                    length,
                    _spawn_compiles(library, length, reps, check, single_core, timeout),
                )
                for length in sizes.rnn_lengths
            ]
        except (harness.WorkerError, OSError, ValueError) as error:
            rows.append(error_row("W8-compile", library, f"{library} compile", error))
            continue
        for row in library_rows:  # flat compile time: every length near the shortest one's
            row["x_shortest"] = row["median"] / library_rows[0]["median"]
        rows += library_rows
    return rows


def _spawn_compiles(library, length, reps, check, single_core, timeout) -> list[dict]:
    argv = [RUN_PY, "--w8-compile-child", f"{library}:{length}"] + ["--check"] * check
    samples = []
    for _ in range(reps):
        with tempfile.TemporaryDirectory(prefix="fnbrrr-bench-w8-") as cache:
            env = {"FNBRRR_CACHE_DIR": cache}  # empty: fnbrrr compiles; JAX has no disk cache
            samples.append(
                harness.run_worker_process(argv, single_core=single_core, env=env, timeout=timeout)
            )
    return samples


def _compile_row(library: str, length: int, samples: list[dict]) -> dict:
    totals = [s["lower_s"] + s["compile_s"] for s in samples]
    row = dict(
        workload="W8-compile",
        library=library,
        impl=f"{library} T={length}",
        variant=f"T={length}",
        mode="jit",
        length=length,
        median=statistics.median(totals),
        min=min(totals),
        max=max(totals),
        n=len(samples),
        lines=samples[0]["lines"],
    )
    for key in ("lower_s", "compile_s", "first_run_s", "second_run_s"):
        row[key] = statistics.median(s[key] for s in samples)
    _record_error(row, max(s["rel_err"] for s in samples))
    return row


# ---------------------------------------------------------------------------------- ratios
def attach_ratios(rows: list[dict]) -> None:
    """Add x_numpy, x_jax, x_floor and the issue's target to every timed row."""
    timed = [r for r in rows if "median" in r]
    for row in timed:
        peers = [
            r for r in timed if r["workload"] == row["workload"] and r["variant"] == row["variant"]
        ]
        numpy_ref = next((r for r in peers if r["library"] == "numpy"), None)
        jax_rows = [r for r in peers if r["library"] == "jax"]
        jax_ref = next(
            (r for r in jax_rows if r["mode"] == row["mode"]),
            next((r for r in jax_rows if r["mode"] == "jit"), None),
        )
        row["x_numpy"] = _ratio(row, numpy_ref)
        row["x_jax"] = _ratio(row, jax_ref)
        if "floor_s" in row:
            row["x_floor"] = row["median"] / row["floor_s"]
        target = workloads.TARGETS.get((row["workload"], row["impl"]))
        if target is not None:
            row["target"] = target.describe()
            row["target_met"] = target.met(row["median"], row["x_jax"])


def _ratio(row: dict, ref: dict | None) -> float | None:
    return None if ref is None else row["median"] / ref["median"]


# ---------------------------------------------------------------------------------- tables
def _target_cell(row: dict) -> str:
    if "target" not in row:
        return ""
    verdict = {True: "met", False: "MISSED", None: "no JAX"}[row["target_met"]]
    return f"{row['target']}: {verdict}"


def _check_cell(row: dict) -> str:
    if "error" in row:
        return "ERROR"
    if "rel_err" not in row:
        return "-"
    return f"{row['rel_err']:.1e}" + ("" if row["correct"] else " WRONG")


def _timed_cells(row: dict) -> list[str]:
    if "median" not in row:
        return [row["impl"]] + ["-"] * 9 + [_check_cell(row), ""]
    gbps = f"{row['gbps']:.1f}" if "gbps" in row else "-"
    return [
        row["impl"],
        fmt_time(row["median"]),
        fmt_time(row["min"]),
        fmt_time(row["max"]),
        f"{row['faults_per_call']:.1f}",
        fmt_ratio(row.get("x_numpy")),
        fmt_ratio(row.get("x_jax")),
        fmt_ratio(row.get("x_floor")),
        gbps,
        fmt_time(row.get("first_call_s")),
        _check_cell(row),
        _target_cell(row),
    ]


def _first_call_cells(row: dict) -> list[str]:
    if "median" not in row:
        return [row["impl"]] + ["-"] * 7 + [_check_cell(row), ""]
    return [
        row["impl"],
        fmt_time(row["median"]),
        fmt_time(row["min"]),
        fmt_time(row["max"]),
        fmt_time(row["import_s"]),
        fmt_time(row["start_to_result_s"]),
        fmt_time(row["second_call_s"]),
        fmt_ratio(row.get("x_jax")),
        _check_cell(row),
        _target_cell(row),
    ]


TIMED_HEADERS = (
    "impl|median|min|max|faults/call|vs NumPy|vs JAX|vs floor|GB/s|1st call|rel.err|target"
).split("|")
FIRST_CALL_HEADERS = (
    "impl|first call|min|max|import|start->result|2nd call|vs JAX|rel.err|target"
).split("|")
COMPILE_HEADERS = (
    "impl|trace+compile|min|max|vs shortest T|trace+lower|compile|lines|1st run|2nd run|vs JAX"
    "|rel.err"
).split("|")


def _compile_cells(row: dict) -> list[str]:
    if "median" not in row:
        return [row["impl"]] + ["-"] * 10 + [_check_cell(row)]
    return [
        row["impl"],
        fmt_time(row["median"]),
        fmt_time(row["min"]),
        fmt_time(row["max"]),
        fmt_ratio(row["x_shortest"]),
        fmt_time(row["lower_s"]),
        fmt_time(row["compile_s"]),
        str(row["lines"]),
        fmt_time(row["first_run_s"]),
        fmt_time(row["second_run_s"]),
        fmt_ratio(row.get("x_jax")),
        _check_cell(row),
    ]


CHECK_HEADERS = ["impl", "rel.err", "tolerance", "result"]


def _check_cells(row: dict) -> list[str]:
    tolerance = f"{row['tolerance']:.0e}" if "tolerance" in row else "-"
    result = "ERROR" if "error" in row else ("ok" if row.get("correct") else "WRONG")
    rel_err = f"{row['rel_err']:.1e}" if "rel_err" in row else "-"
    return [row["impl"], rel_err, tolerance, result]


def print_workload(workload: str, rows: list[dict], notes: list[str], check: bool) -> None:
    """One table for one workload, then its errors and skipped libraries."""
    print(f"\n{workload}: {workloads.DESCRIPTIONS[workload]}")
    if check:
        headers, cells = CHECK_HEADERS, _check_cells
    elif workload == "W6":
        headers, cells = FIRST_CALL_HEADERS, _first_call_cells
    elif workload == "W8-compile":
        headers, cells = COMPILE_HEADERS, _compile_cells
    else:
        headers, cells = TIMED_HEADERS, _timed_cells
    print(harness.format_table(headers, [cells(row) for row in rows]))
    rated = [row for row in rows if "gflops_per_s" in row]
    if rated:
        rates = ", ".join(f"{row['impl']} {row['gflops_per_s']:.1f}" for row in rated)
        print(f"  GFLOP/s ({rated[0]['flops'] / 1e9:.3g} GFLOP per call): {rates}")
    for row in rows:
        if "error" in row:
            lines = [line.strip() for line in row["error"].splitlines() if line.strip()]
            print(f"  ! {row['impl']}: {' / '.join(lines[:3])[:240]}")
    for note in notes:
        print(f"  ({note}: skipped)")


# ------------------------------------------------------------------------------------ main
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workloads",
        default=",".join(workloads.WORKLOADS),
        help="comma-separated subset of " + ",".join(workloads.WORKLOADS),
    )
    parser.add_argument(
        "--libraries",
        default=",".join(LIBRARIES),
        help="comma-separated subset of " + ",".join(LIBRARIES),
    )
    parser.add_argument("--quick", action="store_true", help="few, short samples (smoke test)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="tiny sizes; only compare each result with NumPy's float64",
    )
    parser.add_argument(
        "--single-core",
        action="store_true",
        help="pin workers to CPU 0 and give every library one thread",
    )
    parser.add_argument("--json", metavar="PATH", help="also write every row as JSON")
    parser.add_argument(
        "--w6-reps", type=int, default=3, help="fresh processes per W6 and W8-compile case"
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds per worker")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--w6-child", help=argparse.SUPPRESS)
    parser.add_argument("--w8-compile-child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def available(libraries: list[str]) -> tuple[list[str], list[str]]:
    """(importable libraries, notes on the missing ones), without importing them."""
    found = [lib for lib in libraries if importlib.util.find_spec(lib) is not None]
    return found, [f"{lib} not installed" for lib in libraries if lib not in found]


def run_metadata(args: argparse.Namespace) -> dict:
    """Date, machine, package versions and options, for the header and the JSON."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "single_core": args.single_core,
        "quick": args.quick,
        "check": args.check,
        "versions": versions,
        "loadavg_start": os.getloadavg(),
    }


def run_all(args: argparse.Namespace, workload_ids: list[str], libraries: list[str]) -> list:
    """[(workload, rows)] for every requested workload, one worker process per library."""
    options = dict(check=args.check, single_core=args.single_core, timeout=args.timeout)
    results = []
    reps = 1 if args.quick or args.check else args.w6_reps
    for workload in workload_ids:
        if workload == "W6":
            rows = run_first_calls(libraries, reps=reps, **options)
        elif workload == "W8-compile":
            rows = run_compile_scaling(libraries, reps=reps, **options)
        else:
            rows = run_workload(workload, libraries, quick=args.quick, **options)
        results.append((workload, rows))
    return results


def main(argv=None) -> int:
    """Run the suite; returns 1 when a result is wrong or an implementation failed."""
    args = parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.check, args.quick)
        return 0
    if args.w6_child:
        first_call_child_main(args.w6_child, args.check)
        return 0
    if args.w8_compile_child:
        compile_child_main(args.w8_compile_child, args.check)
        return 0
    workload_ids = args.workloads.split(",")
    unknown = [w for w in workload_ids if w not in workloads.WORKLOADS]
    if unknown:
        raise SystemExit(f"unknown workloads {unknown}; known: {', '.join(workloads.WORKLOADS)}")
    meta = run_metadata(args)
    print(
        f"# {meta['date_utc']}  python {meta['python']}  single_core={args.single_core} "
        f"quick={args.quick} check={args.check}  load average {meta['loadavg_start']}"
    )
    print("# " + "  ".join(f"{k} {v}" for k, v in meta["versions"].items()), flush=True)
    if args.check:
        print("# --check: tiny sizes (workloads.CHECK), results only, no timing")
    libraries, missing = available(args.libraries.split(","))
    results = run_all(args, workload_ids, libraries)
    all_rows = [row for _, rows in results for row in rows]
    attach_ratios(all_rows)
    for workload, rows in results:
        print_workload(workload, rows, missing, args.check)
    meta["loadavg_end"] = os.getloadavg()
    print(f"\n# load average at the end {meta['loadavg_end']} (2 shared vCPUs: run twice)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": all_rows}, f, indent=1)
        print(f"# wrote {args.json}")
    failed = [r for r in all_rows if "error" in r or not r.get("correct", True)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
