"""The brrr report (fnbrrr/brrr/): calibration, verdicts on this machine, the table, the plot.

Verdicts compare a kernel's work against the calibrated ceilings, so they hold on a noisy
shared machine: the cases are chosen orders of magnitude away from the boundaries (10
elements: nanoseconds of work against a microsecond of call; a 4M-element chain: a few FLOPs
per 8 bytes against a ridge of several FLOPs per byte; a 1024^3 matmul: 170 FLOPs per byte).
Calibration runs once per test session in quick mode into a temporary cache directory.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import fnbrrr
import fnbrrr.numpy as jnp
from fnbrrr.brrr import Machine, brrr, calibrate, calibration, classify, kernel_report


@pytest.fixture(scope="module")
def machine(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FNBRRR_CACHE_DIR", str(tmp_path_factory.mktemp("brrr_cache")))
        patch.delenv("FNBRRR_RECALIBRATE", raising=False)
        yield calibrate(quick=True)


# --- calibration -----------------------------------------------------------------------------


def test_calibration_figures_are_sane(machine):
    assert 1e9 < machine.memory_bandwidth < 1e12  # GB/s to TB/s
    assert machine.loop_flops > 1e9
    assert machine.fma_chain_ratio > 1.4, "the FMA chain was folded by the compiler"
    assert machine.loop_flops < 64 * 2 * 6e9, "faster than 64 FLOPs/cycle at 6 GHz: folded"
    assert machine.blas_flops > 1e9
    assert all(r > 1e7 for r in machine.transcendental_rates.values())
    assert 1e-8 < machine.call_seconds < 1e-4
    assert machine.parallel_launch_seconds >= 0
    assert machine.bandwidth_for(1e3) >= machine.bandwidth_for(1e12) == machine.memory_bandwidth
    assert "GB/s" in machine.summary()


def test_calibration_is_cached_on_disk(machine):
    path = calibration.cache_path(quick=True)
    assert os.path.exists(path)
    with open(path) as f:
        data = json.load(f)
    assert data["cpu"] == calibration.cpu_model() and data["quick"] is True
    assert calibrate(quick=True) is machine  # memoised in the process
    loaded = calibration._load(path)
    assert loaded.memory_bandwidth == machine.memory_bandwidth


def test_recalibrate_env_forces_a_new_measurement(machine, tmp_path, monkeypatch):
    monkeypatch.setenv("FNBRRR_CACHE_DIR", str(tmp_path))
    calls = []

    def fake_measure(quick=False):
        calls.append(quick)
        return machine

    monkeypatch.setattr(calibration, "measure", fake_measure)
    monkeypatch.setattr(calibration, "_MEMO", {})
    calibrate(quick=True)
    assert calls == [True]  # nothing cached in this directory yet
    monkeypatch.setattr(calibration, "_MEMO", {})
    calibrate(quick=True)
    assert calls == [True]  # loaded from the file
    monkeypatch.setattr(calibration, "_MEMO", {})
    monkeypatch.setenv("FNBRRR_RECALIBRATE", "1")
    calibrate(quick=True)
    assert calls == [True, True]


# --- verdicts on this machine --------------------------------------------------------------------


def test_ten_elements_are_overhead_bound(machine):
    report = brrr(lambda x: x * 2 + 1, machine=machine, seconds=0.2)(jnp.ones(10))
    assert [k.verdict for k in report.kernels] == ["overhead"]


def test_a_4m_element_chain_is_bandwidth_bound(machine):
    report = brrr(lambda x: (x * 2 + 1) * 3 - x, machine=machine, seconds=0.2)(
        jnp.ones(4_000_000))
    [kernel] = report.kernels
    assert kernel.verdict == "bandwidth"
    assert kernel.bytes == 32_000_000 and kernel.flops == 16_000_000
    assert kernel.seconds > 0 and kernel.gbytes_per_s > 0


def test_a_large_matmul_is_compute_bound(machine):
    a = jnp.asarray(np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32))
    report = brrr(lambda a, b: a @ b, machine=machine, seconds=0.2)(a, a)
    [kernel] = report.kernels
    assert kernel.verdict == "compute"
    assert kernel.flops == 2 * 1024 ** 3
    assert kernel.peak_flops == machine.blas_flops


def test_classify_from_first_principles():
    machine = Machine(cpu="test", cores=1, versions={}, memory_bandwidth=10e9,
                      bandwidth_curve=[(1e3, 10e9), (1e9, 10e9)], loop_flops=100e9,
                      fma_chain_ratio=2.0, transcendental_rates={"tanh_f32": 1e9},
                      blas_flops=100e9, blas_flops_1thread=100e9, blas_flops_threaded=100e9,
                      blas_threads=1, call_seconds=1e-6, call_seconds_per_arg=0.0,
                      parallel_launch_seconds=0.0, numba_threads=1, quick=True)

    def verdict(flops, nbytes, seconds, transcendentals=0.0):
        cost = {"kind": "loop", "shape": (), "equations": [], "sources": [], "primitives": [],
                "flops": flops, "transcendentals": transcendentals, "bytes accessed": nbytes,
                "transcendentals by primitive": {"tanh": transcendentals}}
        kernel = kernel_report(0, cost, seconds, machine)
        assert classify(kernel) == kernel.verdict
        return kernel.verdict

    assert verdict(20, 80, 1.5e-6) == "overhead"  # mostly the 1 us call
    assert verdict(1e6, 8e6, 1e-3) == "bandwidth"  # 0.125 FLOP/B, ridge 10 FLOP/B
    assert verdict(1e9, 8e6, 1e-2) == "compute"  # 125 FLOP/B
    assert verdict(0, 8e6, 5e-3, transcendentals=2e6) == "compute"  # 2 ms of tanh, 0.8 of memory
    assert verdict(1e6, 8e6, 8e-3) == "bandwidth"  # slow (10 % of the ceiling), still memory
    assert verdict(1e3, 8e3, 1e-3) == "overhead"  # the work needs 0.1 % of the time


# --- the report ------------------------------------------------------------------------------


def gelu_mlp(x, w):
    h = x @ w
    return 0.5 * h * (1 + jnp.tanh(0.79788456 * (h + 0.044715 * h * h * h)))


def test_the_report_prints_each_kernel_with_its_equations(machine):
    x, w = jnp.ones((256, 128)), jnp.ones((128, 64))
    report = brrr(gelu_mlp, machine=machine, seconds=0.1)(x, w)
    text = str(report)
    assert [k.kind for k in report.kernels] == ["kernel", "loop"]
    assert "dot_general" in report.kernels[0].primitives
    assert "tanh" in report.kernels[1].primitives
    for kernel in report.kernels:
        assert kernel.verdict in ("overhead", "bandwidth", "compute")
        for equation in kernel.equations:
            assert equation[:40] in text
        assert all("gelu_mlp" in s for s in kernel.sources)
    assert "test_brrr.py" in text and "verdict" in text
    for phase in ("argument flattening", "cache look-up", "dispatch", "allocation", "kernels"):
        assert phase in text and report.ledger[phase] >= 0
    assert report.ledger["total"] > 0
    assert report.bytes_saved == report.cost["bytes accessed unfused"] - report.cost[
        "bytes accessed"] > 0
    assert "fusion:" in text and "saved" in text


def test_static_arguments_and_jitted_functions(machine):
    def scale(x, n):
        return x * n

    report = brrr(scale, static_argnums=1, machine=machine, seconds=0.05)(jnp.ones(16), 3)
    assert report.kernels[0].flops == 16
    jitted = fnbrrr.jit(scale, static_argnums=1)
    report = brrr(jitted, machine=machine, seconds=0.05)(jnp.ones(16), 3)
    assert report.kernels[0].flops == 16


def test_plot_writes_a_png(machine, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is in the `examples` extra")
    report = brrr(gelu_mlp, machine=machine, seconds=0.05)(jnp.ones((64, 32)), jnp.ones((32, 16)))
    path = report.plot(str(tmp_path / "roofline.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_says_how_to_install_it(machine, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    report = brrr(lambda x: x + 1, machine=machine, seconds=0.02)(jnp.ones(4))
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        report.plot(str(tmp_path / "r.png"))
