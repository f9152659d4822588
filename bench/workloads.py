"""The benchmark workloads: sizes, data, one implementation list per library, references, targets.

    W1        tanh-GELU forward on 4,000,000 float32
    W2        jit(grad(sum(GELU)))                      W2-eager: the same grad without jit
    W3        one SGD step of a 784-512-512-10 ReLU MLP, softmax cross-entropy, batch 128
    W4        per-call latency: jitted x*2+1 on 10 elements, eager x*2+1, eager sin
    W5        per-example gradients of logistic regression, 100 features, batch 256
    W6        first call of W3 in a fresh process (see `first_call_report`)
    W8        jit(value_and_grad) of a tanh RNN through lax.scan, hidden 128, input 64, T=100
    W8-compile  W8's trace + compile time for T = 10, 100, 1000 (see `compile_report`)

fnbrrr and JAX run the same JAX-style source (`gelu`, `mlp_loss`, `logreg_loss`, `rnn_loss`
take the `jnp` module as an argument); NumPy runs hand-written code (derivatives by hand);
PyTorch runs its own idioms (eager autograd, `torch.func`, a Python loop over time). Every
input comes from NumPy with a fixed seed, so each library sees the same numbers, and the
reference of every result is the hand-written NumPy code run in float64.

Libraries are imported inside the functions that need them: a worker process imports only
the library it measures.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from harness import Case, TimingConfig, relative_error

F32 = np.float32
GELU_C = math.sqrt(2.0 / math.pi)
GELU_A = 0.044715
LEARNING_RATE = 0.01
SEED = 20240601


@dataclass(frozen=True)
class Sizes:
    """Problem sizes; `FULL` are the issue's, `CHECK` tiny ones for `--check`."""

    gelu_n: int = 4_000_000
    mlp_layers: tuple = (784, 512, 512, 10)
    mlp_batch: int = 128
    small_n: int = 10
    logreg_features: int = 100
    logreg_batch: int = 256
    rnn_input: int = 64
    rnn_hidden: int = 128
    rnn_length: int = 100
    rnn_batch: int = 32
    rnn_lengths: tuple = (10, 100, 1000)  # W8-compile


FULL = Sizes()
CHECK = Sizes(
    gelu_n=1003,
    mlp_layers=(12, 16, 16, 10),
    mlp_batch=8,
    logreg_features=7,
    logreg_batch=5,
    rnn_input=5,
    rnn_hidden=7,
    rnn_length=6,
    rnn_batch=3,
    rnn_lengths=(2, 6, 30),
)

DESCRIPTIONS = {
    "W1": "tanh-GELU forward, 4M float32",
    "W2": "jit(grad(sum(GELU))), 4M float32",
    "W2-eager": "grad(sum(GELU)) without jit, 4M float32, vs NumPy's hand derivative",
    "W3": "SGD step, MLP 784-512-512-10 ReLU, softmax cross-entropy, batch 128",
    "W4": "per-call latency on 10 float32: jitted x*2+1, eager x*2+1, eager sin",
    "W5": "per-example grads, logistic regression, 100 features, batch 256",
    "W6": "first call of the W3 step in a fresh process (cold / warm disk cache)",
    "W8": "jit(value_and_grad) of a tanh RNN via lax.scan, hidden 128, input 64, T=100, batch 32",
    "W8-compile": "trace + compile of the W8 step in a fresh process, empty cache, T=10/100/1000",
}
WORKLOADS = tuple(DESCRIPTIONS)

TIMING = {
    "W1": TimingConfig(warmup=3, repeat=15, min_sample_s=0.05),
    "W2": TimingConfig(warmup=3, repeat=15, min_sample_s=0.05),
    "W2-eager": TimingConfig(warmup=2, repeat=7, min_sample_s=0.2),
    "W3": TimingConfig(warmup=5, repeat=15, min_sample_s=0.1),
    "W4": TimingConfig(warmup=100, repeat=25, min_sample_s=0.05),
    "W5": TimingConfig(warmup=5, repeat=15, min_sample_s=0.05),
    "W8": TimingConfig(warmup=3, repeat=15, min_sample_s=0.1),
}

# Relative error (max |out - ref| / max |ref| per output) allowed against the float64
# reference; W3's outputs are parameter updates, whose float32 rounding is relative to the
# parameters, a few hundred times larger.
TOLERANCE = {"W3": 2e-3, "W6": 2e-3}
DEFAULT_TOLERANCE = 2e-4

# Workloads whose time is compared with copying their 4M float32 input (read 16 MB, write
# 16 MB): the least any implementation can take.
MEMORY_BOUND = ("W1", "W2", "W2-eager")


@dataclass(frozen=True)
class Target:
    """A goal from the issue: at most `jax_ratio` times JAX's median and/or `seconds`."""

    jax_ratio: float | None = None
    seconds: float | None = None

    def describe(self) -> str:
        """E.g. `<=0.5x JAX, <=3 us`."""
        parts = []
        if self.jax_ratio is not None:
            parts.append(f"<={self.jax_ratio:g}x JAX")
        if self.seconds is not None:
            parts.append(
                f"<={self.seconds * 1e6:g} us" if self.seconds < 1e-3 else f"<={self.seconds:g} s"
            )
        return ", ".join(parts)

    def met(self, seconds: float, jax_ratio: float | None) -> bool | None:
        """Whether a median meets the target; None when the JAX ratio it needs is missing."""
        if self.seconds is not None and seconds > self.seconds:
            return False
        if self.jax_ratio is not None:
            return None if jax_ratio is None else jax_ratio <= self.jax_ratio
        return True


TARGETS = {
    ("W1", "fnbrrr jit"): Target(jax_ratio=0.75),
    ("W2", "fnbrrr jit(grad)"): Target(jax_ratio=0.7),
    ("W3", "fnbrrr jit"): Target(jax_ratio=1.1),
    ("W4", "fnbrrr jit x*2+1"): Target(jax_ratio=0.5, seconds=3e-6),
    ("W4", "fnbrrr eager sin"): Target(seconds=1.5e-6),
    ("W5", "fnbrrr jit(vmap(grad))"): Target(jax_ratio=1.0),
    ("W6", "fnbrrr cold cache"): Target(seconds=1.0),
    ("W6", "fnbrrr warm cache"): Target(seconds=0.3),
    ("W8", "fnbrrr jit(value_and_grad)"): Target(jax_ratio=1.2),
}


@dataclass(frozen=True)
class Impl:
    """One timed implementation of a workload.

    Attributes:
        name: the row label, library first (`fnbrrr jit`).
        variant: what it computes; rows of one variant are compared with each other.
        mode: `jit` or `eager`; a row's JAX reference has the same mode when JAX has one.
        build: data dict -> Case (converts the inputs, wraps the function).
    """

    name: str
    variant: str
    mode: str
    build: Callable[[dict], Case]


# ------------------------------------------------------------------------------------- data
def make_data(workload: str, sizes: Sizes = FULL) -> dict:
    """The inputs of a workload as float32 NumPy arrays, from a fixed seed."""
    rng = np.random.default_rng(SEED)
    if workload in ("W1", "W2", "W2-eager"):
        return {"x": rng.standard_normal(sizes.gelu_n, dtype=F32)}
    if workload in ("W3", "W6"):
        labels = rng.integers(0, sizes.mlp_layers[-1], sizes.mlp_batch)
        return {
            "params": mlp_init(rng, sizes.mlp_layers),
            "x": rng.standard_normal((sizes.mlp_batch, sizes.mlp_layers[0]), dtype=F32),
            "y": np.eye(sizes.mlp_layers[-1], dtype=F32)[labels],
        }
    if workload == "W4":
        return {"x": rng.standard_normal(sizes.small_n, dtype=F32)}
    if workload == "W5":
        features, batch = sizes.logreg_features, sizes.logreg_batch
        return {
            "w": rng.standard_normal(features, dtype=F32) * F32(0.1),
            "b": np.asarray(0.1, F32),
            "x": rng.standard_normal((batch, features), dtype=F32),
            "y": rng.integers(0, 2, batch).astype(F32),
        }
    if workload in ("W8", "W8-compile"):
        return rnn_data(rng, sizes, sizes.rnn_length)
    raise KeyError(f"unknown workload {workload!r}; known: {', '.join(WORKLOADS)}")


def mlp_init(rng: np.random.Generator, layers: tuple) -> list:
    """He-initialised [(w, b), ...] for a ReLU MLP with the given layer widths."""
    params = []
    for fan_in, fan_out in zip(layers[:-1], layers[1:]):
        w = rng.standard_normal((fan_in, fan_out), dtype=F32) * F32(math.sqrt(2.0 / fan_in))
        params.append((w, np.zeros(fan_out, F32)))
    return params


def rnn_data(rng: np.random.Generator, sizes: Sizes, length: int) -> dict:
    """W8's weights (scaled by 1/sqrt(fan_in), so that tanh stays off its plateaus) and
    inputs `xs` of shape (length, batch, input)."""
    inputs, hidden = sizes.rnn_input, sizes.rnn_hidden
    return {
        "wx": rng.standard_normal((inputs, hidden), dtype=F32) * F32(1 / math.sqrt(inputs)),
        "wh": rng.standard_normal((hidden, hidden), dtype=F32) * F32(1 / math.sqrt(hidden)),
        "b": rng.standard_normal(hidden, dtype=F32) * F32(0.1),
        "xs": rng.standard_normal((length, sizes.rnn_batch, inputs), dtype=F32),
    }


def rnn_flops(sizes: Sizes = FULL, length: int | None = None) -> int:
    """Multiply-add FLOPs of one W8 step: per time step, the forward's x@Wx and h@Wh, and the
    backward's Wx and Wh gradients and its h gradient (dz @ Wh.T); elementwise work excluded.

    Example: 0.47 GFLOP at the issue's sizes (T=100, batch 32, input 64, hidden 128).
    """
    length = sizes.rnn_length if length is None else length
    batch, inputs, hidden = sizes.rnn_batch, sizes.rnn_input, sizes.rnn_hidden
    return length * 3 * (2 * batch * inputs * hidden + 2 * batch * hidden * hidden)


# FLOPs per call, for the rows' GFLOP/s.
FLOPS = {"W8": rnn_flops}


def leaves(tree) -> list:
    """The arrays of a nested list/tuple, in order."""
    if isinstance(tree, (list, tuple)):
        return [leaf for item in tree for leaf in leaves(item)]
    return [tree]


def as_numpy(value) -> np.ndarray:
    """A NumPy array from a NumPy, fnbrrr, JAX or PyTorch array."""
    if hasattr(value, "detach"):
        return value.detach().numpy()
    return np.asarray(value)


def step_output(new_params, loss, old_params) -> list:
    """[loss, update of each parameter]: what a training step is checked on.

    The updates (new - old, in float64) are compared rather than the new parameters, whose
    size would hide a wrong gradient behind the small learning rate.
    """
    updates = [
        as_numpy(new).astype(np.float64) - np.asarray(old, np.float64)
        for new, old in zip(leaves(new_params), leaves(old_params))
    ]
    return [as_numpy(loss)] + updates


# ------------------------------------------------------------------------ hand-written NumPy
def np_gelu(x):
    """Tanh-GELU; `x*x*x` because NumPy's float32 `x**3` calls powf per element."""
    return 0.5 * x * (1.0 + np.tanh(GELU_C * (x + GELU_A * (x * x * x))))


def np_gelu_grad(x):
    """d/dx of tanh-GELU, by hand."""
    x2 = x * x
    t = np.tanh(GELU_C * (x + GELU_A * (x2 * x)))
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * (GELU_C * (1.0 + 3.0 * GELU_A * x2))


def np_mlp_step(params, x, y, lr=LEARNING_RATE):
    """One SGD step of the ReLU MLP with softmax cross-entropy; backward pass by hand."""
    activations, pre_activations = [x], []
    for w, b in params[:-1]:
        z = activations[-1] @ w + b
        pre_activations.append(z)
        activations.append(np.maximum(z, 0.0))
    w, b = params[-1]
    logits = activations[-1] @ w + b
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    loss = -np.mean(np.sum(y * (shifted - np.log(total)), axis=1))
    delta = (exp / total - y) / x.shape[0]  # d loss / d logits (one-hot labels)
    grads = []
    for layer in reversed(range(len(params))):
        grads.append((activations[layer].T @ delta, delta.sum(axis=0)))
        if layer:
            delta = (delta @ params[layer][0].T) * (pre_activations[layer - 1] > 0)
    grads.reverse()
    new = [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(params, grads)]
    return new, loss


def np_per_example_grads(w, b, x, y):
    """Per-example (d loss/d w, d loss/d b) of logistic regression: (sigmoid(z) - y) * (x, 1)."""
    z = x @ w + b
    e = np.exp(-np.abs(z))
    sigmoid = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    delta = sigmoid - y
    return delta[:, None] * x, delta


def np_rnn_value_and_grad(wx, wh, b, xs) -> list:
    """[loss, dWx, dWh, db] of loss = sum(h_T), h_t = tanh(x_t @ Wx + h_{t-1} @ Wh + b), h_0 = 0.

    Forward: one matmul for every x_t @ Wx, then a loop storing each h_t; backward through
    time by hand: dz_t = dh_t * (1 - h_t**2), dh_{t-1} = dz_t @ Wh.T.
    """
    length, batch, inputs = xs.shape
    hidden = wh.shape[0]
    hs = np.zeros((length + 1, batch, hidden), wh.dtype)  # hs[t + 1] = h_t; hs[0] = h_0
    input_terms = (xs.reshape(-1, inputs) @ wx + b).reshape(length, batch, hidden)
    for t in range(length):
        hs[t + 1] = np.tanh(input_terms[t] + hs[t] @ wh)
    dzs = np.empty_like(input_terms)
    dh = np.ones((batch, hidden), wh.dtype)
    for t in reversed(range(length)):
        dzs[t] = dh * (1.0 - hs[t + 1] * hs[t + 1])
        dh = dzs[t] @ wh.T
    flat_dz = dzs.reshape(-1, hidden)
    grad_wx = xs.reshape(-1, inputs).T @ flat_dz
    grad_wh = hs[:-1].reshape(-1, hidden).T @ flat_dz
    return [hs[-1].sum(), grad_wx, grad_wh, flat_dz.sum(axis=0)]


def _float64(tree):
    if isinstance(tree, dict):
        return {key: _float64(value) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_float64(item) for item in tree)
    return np.asarray(tree, np.float64)


REFERENCES = {
    "gelu": lambda d: [np_gelu(d["x"])],
    "grad": lambda d: [np_gelu_grad(d["x"])],
    "step": lambda d: step_output(*np_mlp_step(d["params"], d["x"], d["y"]), d["params"]),
    "x*2+1": lambda d: [d["x"] * 2 + 1],
    "sin": lambda d: [np.sin(d["x"])],
    "per-example grads": lambda d: list(np_per_example_grads(d["w"], d["b"], d["x"], d["y"])),
    "rnn value_and_grad": lambda d: np_rnn_value_and_grad(d["wx"], d["wh"], d["b"], d["xs"]),
}


def reference(variant: str, data: dict) -> list:
    """The float64 result of `variant` on `data`, by the hand-written NumPy code."""
    return REFERENCES[variant](_float64(data))


# -------------------------------------------------------------------------- case builders
def _identity(tree):
    return tree


def call_case(fn, args, sync=_identity) -> Case:
    """A Case calling `fn(*args)` (then `sync` on the result) each run."""
    return Case(
        run=lambda: sync(fn(*args)), output=lambda: [as_numpy(leaf) for leaf in leaves(fn(*args))]
    )


def training_case(step, params, x, y, data, sync=_identity) -> Case:
    """A Case whose runs feed the updated parameters back, like a training loop."""
    state = [params]

    def run():
        new_params, loss = step(state[0], x, y)
        sync((new_params, loss))
        state[0] = new_params

    def output():
        return step_output(*step(params, x, y), data["params"])

    return Case(run=run, output=output)


# ------------------------------------------------------------- JAX-style source (fnbrrr, JAX)
def gelu(x, jnp):
    """Tanh-GELU as a JAX user writes it."""
    return 0.5 * x * (1.0 + jnp.tanh(GELU_C * (x + GELU_A * x**3)))


def softmax_cross_entropy(logits, labels, jnp):
    """Mean cross-entropy of one-hot `labels`, with a max-subtracted log-sum-exp."""
    shifted = logits - jnp.max(logits, axis=1, keepdims=True)
    log_sum_exp = jnp.log(jnp.sum(jnp.exp(shifted), axis=1, keepdims=True))
    return -jnp.mean(jnp.sum(labels * (shifted - log_sum_exp), axis=1))


def mlp_loss(params, x, y, jnp):
    """Softmax cross-entropy of a ReLU MLP given as [(w, b), ...]."""
    h = x
    for w, b in params[:-1]:
        h = jnp.maximum(h @ w + b, 0.0)
    w, b = params[-1]
    return softmax_cross_entropy(h @ w + b, y, jnp)


def make_sgd_step(lib, jnp, lr=LEARNING_RATE):
    """step(params, x, y) -> (new params, loss) for `lib` (fnbrrr or jax)."""

    def step(params, x, y):
        loss, grads = lib.value_and_grad(lambda p: mlp_loss(p, x, y, jnp))(params)
        return lib.tree_util.tree_map(lambda p, g: p - lr * g, params, grads), loss

    return step


def logreg_loss(w, b, x, y, jnp):
    """Logistic loss of one example, as softplus(z) - z*y in a numerically stable form."""
    z = jnp.dot(x, w) + b
    return jnp.maximum(z, 0.0) - z * y + jnp.log1p(jnp.exp(-jnp.abs(z)))


def make_per_example_grads(lib, jnp):
    """vmap(grad(loss, argnums=(0, 1)), in_axes=(None, None, 0, 0))."""
    grad = lib.grad(lambda w, b, x, y: logreg_loss(w, b, x, y, jnp), argnums=(0, 1))
    return lib.vmap(grad, in_axes=(None, None, 0, 0))


def rnn_loss(wx, wh, b, xs, jnp, lax):
    """sum(h_T) of a tanh RNN run over `xs` (time first) by `lax.scan`, from h_0 = 0."""

    def cell(h, x):
        return jnp.tanh(x @ wx + h @ wh + b), None

    h0 = jnp.zeros((xs.shape[1], wh.shape[0]), xs.dtype)
    h_final, _ = lax.scan(cell, h0, xs)
    return jnp.sum(h_final)


def make_rnn_step(lib, jnp):
    """jit(value_and_grad(rnn_loss)) w.r.t. (wx, wh, b): (wx, wh, b, xs) -> (loss, grads)."""
    loss = lambda wx, wh, b, xs: rnn_loss(wx, wh, b, xs, jnp, lib.lax)
    return lib.jit(lib.value_and_grad(loss, argnums=(0, 1, 2)))


RNN_KEYS = ("wx", "wh", "b", "xs")


def load_jaxlike(name: str):
    """(lib, jnp, sync) for `fnbrrr` or `jax`; JAX dispatches synchronously (PERF.md fact 5)."""
    if name == "jax":
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_cpu_enable_async_dispatch", False)
        cache_dir = os.environ.get("BENCH_JAX_CACHE_DIR")
        if cache_dir:  # W6: JAX's persistent compilation cache, every program stored
            jax.config.update("jax_compilation_cache_dir", cache_dir)
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        return jax, jnp, jax.block_until_ready
    import fnbrrr
    import fnbrrr.numpy as jnp

    return fnbrrr, jnp, _identity  # fnbrrr computes synchronously


def _jaxlike_impls(workload: str, name: str) -> list[Impl]:
    lib, jnp, sync = load_jaxlike(name)
    ours = name == "fnbrrr"  # eager rows of W1/W3 only for fnbrrr: JAX's are not references

    def on_x(fn):
        return lambda d: call_case(fn, [jnp.asarray(d["x"])], sync)

    if workload == "W1":
        fn = lambda x: gelu(x, jnp)
        eager = [Impl(f"{name} eager", "gelu", "eager", on_x(fn))] if ours else []
        return [Impl(f"{name} jit", "gelu", "jit", on_x(lib.jit(fn))), *eager]
    grad_fn = lib.grad(lambda x: jnp.sum(gelu(x, jnp)))
    if workload == "W2":
        return [Impl(f"{name} jit(grad)", "grad", "jit", on_x(lib.jit(grad_fn)))]
    if workload == "W2-eager":
        label = "grad (eager)" if ours else "grad (no jit)"
        return [Impl(f"{name} {label}", "grad", "eager", on_x(grad_fn))]
    if workload == "W3":
        return _jaxlike_mlp_impls(lib, jnp, sync, name, with_eager=ours)
    if workload == "W4":
        affine = lambda x: x * 2 + 1
        return [
            Impl(f"{name} jit x*2+1", "x*2+1", "jit", on_x(lib.jit(affine))),
            Impl(f"{name} eager x*2+1", "x*2+1", "eager", on_x(affine)),
            Impl(f"{name} eager sin", "sin", "eager", on_x(jnp.sin)),
        ]
    if workload == "W5":
        return _jaxlike_per_example_impls(lib, jnp, sync, name)
    if workload == "W8":
        step = make_rnn_step(lib, jnp)
        build = lambda d: call_case(step, [jnp.asarray(d[k]) for k in RNN_KEYS], sync)
        return [Impl(f"{name} jit(value_and_grad)", "rnn value_and_grad", "jit", build)]
    raise KeyError(workload)


def _jaxlike_per_example_impls(lib, jnp, sync, name) -> list[Impl]:
    per_example = make_per_example_grads(lib, jnp)

    def build(fn):
        return lambda d: call_case(fn, [jnp.asarray(d[k]) for k in "wbxy"], sync)

    return [
        Impl(f"{name} jit(vmap(grad))", "per-example grads", "jit", build(lib.jit(per_example))),
        Impl(f"{name} vmap(grad)", "per-example grads", "eager", build(per_example)),
    ]


def _jaxlike_mlp_impls(lib, jnp, sync, name, with_eager) -> list[Impl]:
    step = make_sgd_step(lib, jnp)

    def build(step_fn):
        def build_case(d):
            params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in d["params"]]
            x, y = jnp.asarray(d["x"]), jnp.asarray(d["y"])
            return training_case(step_fn, params, x, y, d, sync)

        return build_case

    impls = [Impl(f"{name} jit", "step", "jit", build(lib.jit(step)))]
    if with_eager:
        impls.append(Impl(f"{name} eager", "step", "eager", build(step)))
    return impls


# --------------------------------------------------------------------------------- NumPy
def _numpy_impls(workload: str) -> list[Impl]:
    def build(fn, *keys):
        return lambda d: call_case(fn, [d[k] for k in keys])

    if workload == "W1":
        return [Impl("numpy", "gelu", "eager", build(np_gelu, "x"))]
    if workload in ("W2", "W2-eager"):
        return [Impl("numpy hand derivative", "grad", "eager", build(np_gelu_grad, "x"))]
    if workload == "W3":
        build_step = lambda d: training_case(np_mlp_step, d["params"], d["x"], d["y"], d)
        return [Impl("numpy hand-written", "step", "eager", build_step)]
    if workload == "W4":
        return [
            Impl("numpy x*2+1", "x*2+1", "eager", build(lambda x: x * 2 + 1, "x")),
            Impl("numpy sin", "sin", "eager", build(np.sin, "x")),
        ]
    if workload == "W5":
        return [
            Impl(
                "numpy hand-written",
                "per-example grads",
                "eager",
                build(np_per_example_grads, "w", "b", "x", "y"),
            )
        ]
    if workload == "W8":
        build_rnn = build(np_rnn_value_and_grad, *RNN_KEYS)
        return [Impl("numpy hand BPTT", "rnn value_and_grad", "eager", build_rnn)]
    raise KeyError(workload)


def copy_floor_case(data: dict) -> Case:
    """np.copyto of the input into a preallocated buffer: the memory-bandwidth floor."""
    x = data["x"]
    out = np.empty_like(x)
    return Case(run=lambda: np.copyto(out, x))


# ------------------------------------------------------------------------------- PyTorch
def _torch_impls(workload: str) -> list[Impl]:
    import torch
    import torch.nn.functional as functional

    def tensors(d, *keys):
        return [torch.from_numpy(d[k]) for k in keys]

    def build(fn, *keys):
        return lambda d: call_case(fn, tensors(d, *keys))

    if workload == "W1":
        formula = lambda x: 0.5 * x * (1.0 + torch.tanh(GELU_C * (x + GELU_A * x**3)))
        return [
            Impl(
                "torch F.gelu(tanh)",
                "gelu",
                "eager",
                build(lambda x: functional.gelu(x, approximate="tanh"), "x"),
            ),
            Impl("torch formula", "gelu", "eager", build(formula, "x")),
        ]
    if workload in ("W2", "W2-eager"):

        def grad_of_gelu_sum(x):
            x = x.detach().requires_grad_(True)
            return torch.autograd.grad(functional.gelu(x, approximate="tanh").sum(), x)[0]

        return [Impl("torch autograd F.gelu", "grad", "eager", build(grad_of_gelu_sum, "x"))]
    if workload == "W3":
        return [Impl("torch eager", "step", "eager", _torch_mlp_case)]
    if workload == "W4":
        return [
            Impl("torch x*2+1", "x*2+1", "eager", build(lambda x: x * 2 + 1, "x")),
            Impl("torch sin", "sin", "eager", build(torch.sin, "x")),
        ]
    if workload == "W5":
        return [
            Impl(
                "torch.func vmap(grad)",
                "per-example grads",
                "eager",
                build(_torch_per_example_grads(), "w", "b", "x", "y"),
            )
        ]
    if workload == "W8":
        rnn = build(_torch_rnn_value_and_grad, *RNN_KEYS)
        return [Impl("torch loop + autograd", "rnn value_and_grad", "eager", rnn)]
    raise KeyError(workload)


def _torch_mlp_case(data: dict) -> Case:
    import torch

    def loss_fn(params, x, y):
        h = x
        for w, b in params[:-1]:
            h = torch.relu(h @ w + b)
        w, b = params[-1]
        return -(y * torch.log_softmax(h @ w + b, dim=1)).sum(dim=1).mean()

    def step(params, x, y):
        loss = loss_fn(params, x, y)
        flat = leaves(params)
        grads = torch.autograd.grad(loss, flat)
        with torch.no_grad():
            new = [(p - LEARNING_RATE * g).requires_grad_(True) for p, g in zip(flat, grads)]
        return list(zip(new[::2], new[1::2])), loss.detach()

    params = [
        (torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True))
        for w, b in data["params"]
    ]
    x, y = torch.from_numpy(data["x"]), torch.from_numpy(data["y"])
    return training_case(step, params, x, y, data)


def _torch_rnn_value_and_grad(wx, wh, b, xs):
    """W8 in PyTorch's idiom: a Python loop over time, then autograd."""
    import torch

    params = [p.detach().requires_grad_(True) for p in (wx, wh, b)]
    wx, wh, b = params
    h = torch.zeros(xs.shape[1], wh.shape[0])
    for x in xs:
        h = torch.tanh(x @ wx + h @ wh + b)
    loss = h.sum()
    return [loss.detach(), *torch.autograd.grad(loss, params)]


def _torch_per_example_grads():
    import torch
    from torch.func import grad, vmap

    def loss(w, b, x, y):
        z = x @ w + b
        return torch.clamp(z, min=0.0) - z * y + torch.log1p(torch.exp(-torch.abs(z)))

    return vmap(grad(loss, argnums=(0, 1)), in_dims=(None, None, 0, 0))


# ------------------------------------------------------------------------------- registry
def implementations(workload: str, library: str) -> list[Impl]:
    """The implementations of `workload` in `library` (imports the library)."""
    if library in ("fnbrrr", "jax"):
        return _jaxlike_impls(workload, library)
    if library == "numpy":
        return _numpy_impls(workload)
    if library == "torch":
        return _torch_impls(workload)
    raise KeyError(f"unknown library {library!r}")


# ---------------------------------------------------------------------------------- W6
def first_call_report(library: str, sizes: Sizes = FULL) -> dict:
    """W6, run in a fresh process: import time, first and second call of the W3 step.

    `first_call_s` is trace + compile (or disk-cache load) + run, import excluded; the caller
    adds the process's start-up and imports by comparing wall clocks (`result_wall_time`).
    """
    start = time.perf_counter()
    impl = implementations("W3", library)[0]  # jit for fnbrrr and JAX, eager for PyTorch
    import_s = time.perf_counter() - start
    data = make_data("W3", sizes)
    case = impl.build(data)
    start = time.perf_counter()
    case.run()
    first_call_s = time.perf_counter() - start
    result_wall_time = time.time()
    start = time.perf_counter()
    case.run()
    second_call_s = time.perf_counter() - start
    return {
        "impl": impl.name,
        "import_s": import_s,
        "first_call_s": first_call_s,
        "second_call_s": second_call_s,
        "result_wall_time": result_wall_time,
        "rel_err": relative_error(case.output(), reference("step", data)),
    }


# ----------------------------------------------------------------------------- W8-compile
def compile_report(library: str, sizes: Sizes = FULL, length: int | None = None) -> dict:
    """W8-compile, run in a fresh process: trace + compile of the W8 step for one sequence length.

    `lower_s` is trace + lowering (fnbrrr: code generation), `compile_s` the compile (fnbrrr:
    Numba, or a disk-cache load when `FNBRRR_CACHE_DIR` is not empty; JAX: XLA), `lines` the
    length of `jit(step).lower(...).as_text()` (fnbrrr: the generated module; JAX: StableHLO),
    `first_run_s` and `second_run_s` two calls of the compiled program.
    """
    length = sizes.rnn_length if length is None else length
    lib, jnp, sync = load_jaxlike(library)
    data = rnn_data(np.random.default_rng(SEED), sizes, length)
    args = [jnp.asarray(data[k]) for k in RNN_KEYS]
    step = make_rnn_step(lib, jnp)
    start = time.perf_counter()
    lowered = step.lower(*args)
    lower_s = time.perf_counter() - start
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start - lower_s
    run_s = []
    for _ in range(2):
        start = time.perf_counter()
        result = sync(compiled(*args))
        run_s.append(time.perf_counter() - start)
    outputs = [as_numpy(leaf) for leaf in leaves(result)]
    return {
        "length": length,
        "lower_s": lower_s,
        "compile_s": compile_s,
        "lines": len(lowered.as_text().splitlines()),
        "first_run_s": run_s[0],
        "second_run_s": run_s[1],
        "rel_err": relative_error(outputs, reference("rnn value_and_grad", data)),
    }
