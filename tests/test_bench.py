"""Tests of the benchmark suite in bench/: every workload, at tiny sizes, agrees with NumPy.

This is `python bench/run.py --check` in-process: each implementation's result is compared
with the hand-written NumPy code run in float64. Nothing here times anything (timing never
belongs in unit tests); the harness's own pieces are tested on their outputs' structure.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import harness  # noqa: E402
import run  # noqa: E402
import workloads  # noqa: E402

FRESH_PROCESS_WORKLOADS = ("W6", "W8-compile")
IN_PROCESS_WORKLOADS = [w for w in workloads.WORKLOADS if w not in FRESH_PROCESS_WORKLOADS]


def _library(name):
    """fnbrrr and NumPy always; the peers only where installed (`pip install -e '.[bench]'`)."""
    installed = importlib.util.find_spec(name) is not None
    return pytest.param(name, marks=pytest.mark.skipif(not installed, reason=f"no {name}"))


@pytest.mark.parametrize("library", [_library(n) for n in run.LIBRARIES])
@pytest.mark.parametrize("workload", IN_PROCESS_WORKLOADS)
def test_every_implementation_matches_numpy_float64(workload, library):
    rows = run.measure_workload(workload, library, check=True)["rows"]
    assert rows, f"{library} has no implementation of {workload}"
    for row in rows:
        assert "error" not in row, f"{row['impl']}: {row['error']}\n{row.get('traceback')}"
        assert row["correct"], f"{row['impl']}: rel. error {row['rel_err']:.1e} on {workload}"


def test_first_call_report_checks_the_training_step():
    report = workloads.first_call_report("fnbrrr", workloads.CHECK)  # W6's child, in-process
    assert report["impl"] == "fnbrrr jit"
    assert report["rel_err"] <= workloads.TOLERANCE["W6"]
    assert report["first_call_s"] > 0 and report["second_call_s"] > 0


@pytest.mark.slow  # two fresh processes, the first compiling with an empty cache
def test_first_call_runs_in_fresh_processes_cold_then_warm():
    rows = run.run_first_calls(["fnbrrr"], reps=1, check=True, single_core=False, timeout=600)
    assert [row["impl"] for row in rows] == ["fnbrrr cold cache", "fnbrrr warm cache"]
    for row in rows:
        assert "error" not in row, row["error"]
        assert row["correct"], f"{row['impl']}: rel. error {row['rel_err']:.1e}"
        assert row["start_to_result_s"] >= row["median"] > 0  # the median first call


def test_hand_written_bptt_matches_finite_differences():
    data = workloads._float64(workloads.make_data("W8", workloads.CHECK))
    keys = workloads.RNN_KEYS
    loss, *grads = workloads.np_rnn_value_and_grad(*(data[k] for k in keys))

    def loss_at(key, index, delta):
        moved = dict(data, **{key: data[key].copy()})
        moved[key][index] += delta
        return workloads.np_rnn_value_and_grad(*(moved[k] for k in keys))[0]

    rng = np.random.default_rng(0)
    for key, grad in zip(keys[:3], grads):
        for _ in range(4):
            index = tuple(rng.integers(0, n) for n in grad.shape)
            slope = (loss_at(key, index, 1e-6) - loss_at(key, index, -1e-6)) / 2e-6
            assert slope == pytest.approx(grad[index], rel=1e-5, abs=1e-8), (key, index)
    h = np.zeros((data["xs"].shape[1], data["wh"].shape[0]))
    for x in data["xs"]:
        h = np.tanh(x @ data["wx"] + h @ data["wh"] + data["b"])
    assert loss == pytest.approx(h.sum(), rel=1e-12)


def test_compile_report_checks_the_rnn_step():
    length = workloads.CHECK.rnn_lengths[0]
    report = workloads.compile_report("fnbrrr", workloads.CHECK, length)  # in-process child
    assert report["length"] == length and report["lines"] > 0
    assert report["rel_err"] <= workloads.DEFAULT_TOLERANCE
    assert report["lower_s"] > 0 and report["compile_s"] > 0 and report["second_run_s"] > 0


def test_generated_rnn_program_does_not_grow_with_the_sequence_length():
    import fnbrrr
    import fnbrrr.numpy as jnp

    step = workloads.make_rnn_step(fnbrrr, jnp)
    texts = []
    for length in (2, 50):
        data = workloads.rnn_data(np.random.default_rng(1), workloads.CHECK, length)
        texts.append(step.lower(*(jnp.asarray(data[k]) for k in workloads.RNN_KEYS)).as_text())
    assert len(texts[0].splitlines()) == len(texts[1].splitlines())  # a loop, not unrolled


@pytest.mark.slow  # one fresh process per length, each compiling with an empty cache
def test_compile_scaling_runs_every_length_in_fresh_processes():
    rows = run.run_compile_scaling(["fnbrrr"], reps=1, check=True, single_core=False, timeout=600)
    lengths = workloads.CHECK.rnn_lengths
    assert [row["impl"] for row in rows] == [f"fnbrrr T={n}" for n in lengths]
    for row in rows:
        assert "error" not in row, row["error"]
        assert row["correct"], f"{row['impl']}: rel. error {row['rel_err']:.1e}"
        assert row["median"] == pytest.approx(row["lower_s"] + row["compile_s"])
    assert rows[0]["x_shortest"] == 1.0


def test_check_sizes_are_no_larger_than_the_issue_sizes():
    def size(data):
        return sum(a.size for a in workloads.leaves(list(data.values())))

    for workload in workloads.WORKLOADS:
        small = workloads.make_data(workload, workloads.CHECK)
        full = workloads.make_data(workload, workloads.FULL)
        assert size(small) <= size(full)
        assert [a.ndim for a in workloads.leaves(list(small.values()))] == [
            a.ndim for a in workloads.leaves(list(full.values()))
        ]


def test_reference_data_is_float32_and_deterministic():
    first, second = workloads.make_data("W5"), workloads.make_data("W5")
    for key in first:
        assert first[key].dtype == np.float32
        np.testing.assert_array_equal(first[key], second[key])


def test_relative_error_is_relative_to_the_largest_reference_value():
    ref = [np.array([1.0, -4.0]), np.array([10.0])]
    assert harness.relative_error([np.array([1.0, -4.0]), np.array([11.0])], ref) == 0.1
    assert harness.relative_error([np.array([1.5, -4.0]), np.array([10.0])], ref) == 0.125
    with pytest.raises(ValueError, match="shape"):
        harness.relative_error([np.zeros(3), np.zeros(1)], ref)
    with pytest.raises(ValueError, match="outputs"):
        harness.relative_error([np.zeros(2)], ref)


def test_measure_reports_ordered_statistics_and_page_faults():
    calls = []
    case = harness.Case(run=lambda: calls.append(1))
    stats = harness.time_case(case, harness.TimingConfig(warmup=2, repeat=3, number=4))
    assert stats["n"] == 3 and stats["number"] == 4
    assert stats["min"] <= stats["median"] <= stats["max"]
    assert stats["faults_per_call"] >= 0
    assert len(calls) >= 1 + 2 + 3 * 4 + 5  # first call, warm-up, samples, fault count


def test_targets_compare_with_jax_and_absolute_times():
    target = workloads.Target(jax_ratio=0.5, seconds=3e-6)
    assert target.describe() == "<=0.5x JAX, <=3 us"
    assert target.met(2e-6, 0.4) is True
    assert target.met(2e-6, 0.6) is False
    assert target.met(4e-6, 0.4) is False
    assert target.met(2e-6, None) is None
    assert workloads.Target(seconds=1.0).describe() == "<=1 s"


def test_ratios_pair_rows_by_variant_and_mode():
    rows = [
        dict(
            workload="W4",
            library="fnbrrr",
            impl="fnbrrr jit x*2+1",
            variant="x*2+1",
            mode="jit",
            median=2e-6,
        ),
        dict(
            workload="W4",
            library="fnbrrr",
            impl="fnbrrr eager sin",
            variant="sin",
            mode="eager",
            median=1e-6,
        ),
        dict(
            workload="W4",
            library="numpy",
            impl="numpy sin",
            variant="sin",
            mode="eager",
            median=0.5e-6,
        ),
        dict(
            workload="W4",
            library="jax",
            impl="jax jit x*2+1",
            variant="x*2+1",
            mode="jit",
            median=8e-6,
        ),
    ]
    run.attach_ratios(rows)
    assert rows[0]["x_jax"] == 0.25 and rows[0]["x_numpy"] is None
    assert rows[0]["target_met"] is True
    assert rows[1]["x_numpy"] == 2.0 and rows[1]["x_jax"] is None
    assert rows[1]["target_met"] is True


def test_format_table_aligns_columns():
    table = harness.format_table(["impl", "median"], [["a", "1 ms"], ["longer", "10 ms"]])
    lines = table.splitlines()
    assert len({len(line) for line in lines}) == 1
    assert lines[2].startswith("a ") and lines[3].endswith("10 ms")
