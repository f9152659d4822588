"""jit: compiled programs agree with eager execution; the trace cache, errors and introspection.

Compiled programs are cached on disk by Numba, so examples are derandomised: the same
programs are generated on every run and later runs load them instead of compiling.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prim_cases import CASES, primitive_case

import fnbrrr
import fnbrrr.numpy as jnp
from fnbrrr import core, lax

JIT_SETTINGS = settings(max_examples=3, deadline=None, derandomize=True,
                        suppress_health_check=list(HealthCheck))
PRIMITIVES = sorted(n for n in CASES if n in core.primitives)


def _assert_same(compiled, eager, name=""):
    compiled, eager = np.asarray(compiled), np.asarray(eager)
    assert compiled.shape == eager.shape, name
    assert compiled.dtype == eager.dtype, name
    if eager.dtype.kind == "f":
        np.testing.assert_allclose(compiled, eager, rtol=2e-6, atol=1e-6, err_msg=name)
    else:
        np.testing.assert_array_equal(compiled, eager, err_msg=name)


@pytest.mark.parametrize("name", PRIMITIVES)
@JIT_SETTINGS
@given(data=st.data())
def test_every_primitive_compiles_to_its_eager_result(name, data):
    case = data.draw(primitive_case(name))
    prim = core.primitives[name]

    def program(*args):
        return prim.bind(*args, **case.params)

    eager = program(*case.args)
    compiled = fnbrrr.jit(program)(*case.args)
    if prim.multiple_results:
        for c, e in zip(compiled, eager):
            _assert_same(c, e, name)
    else:
        _assert_same(compiled, eager, name)


# --- random programs ---------------------------------------------------------------------------

UNARY = [jnp.sin, jnp.tanh, jnp.exp, lambda x: x * 2.0, lambda x: -x, jnp.abs, lambda x: x ** 2,
         lambda x: jnp.maximum(x, 0.0), lambda x: jnp.log1p(jnp.abs(x))]
BINARY = [lambda x, y: x + y, lambda x, y: x * y, lambda x, y: x - y,
          lambda x, y: jnp.where(x > y, x, y), lambda x, y: x / (1.0 + y * y)]
REDUCE = [lambda x: jnp.sum(x, axis=0), lambda x: jnp.max(x, axis=-1, keepdims=True),
          lambda x: jnp.mean(x), lambda x: x.T]


@st.composite
def random_program(draw):
    """A small random expression graph over two (3, 4) inputs."""
    ops = []
    n_values = 2
    for _ in range(draw(st.integers(1, 7))):
        kind = draw(st.sampled_from(["unary", "binary", "reduce"]))
        if kind == "unary":
            ops.append(("unary", draw(st.integers(0, len(UNARY) - 1)),
                        draw(st.integers(0, n_values - 1))))
        elif kind == "binary":
            ops.append(("binary", draw(st.integers(0, len(BINARY) - 1)),
                        draw(st.integers(0, n_values - 1)), draw(st.integers(0, n_values - 1))))
        else:
            ops.append(("reduce", draw(st.integers(0, len(REDUCE) - 1)),
                        draw(st.integers(0, n_values - 1))))
        n_values += 1
    outputs = sorted(set(draw(st.lists(st.integers(0, n_values - 1), min_size=1, max_size=3))))
    return ops, outputs


def _run_program(ops, outputs, x, y):
    values = [x, y]
    for op in ops:
        if op[0] == "unary":
            values.append(UNARY[op[1]](values[op[2]]))
        elif op[0] == "binary":
            a, b = values[op[2]], values[op[3]]
            try:
                values.append(BINARY[op[1]](a, b))
            except ValueError:  # incompatible shapes after a reduction: use a
                values.append(a)
        else:
            try:
                values.append(REDUCE[op[1]](values[op[2]]))
            except ValueError:  # e.g. an axis that a 0-d value lacks
                values.append(values[op[2]])
    return [values[i] for i in outputs]


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(program=random_program())
def test_random_programs_compile_to_their_eager_results(program):
    ops, outputs = program
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(3, 4)).astype(np.float32))
    y = jnp.asarray(rng.normal(size=(3, 4)).astype(np.float32))
    eager = _run_program(ops, outputs, x, y)
    compiled = fnbrrr.jit(lambda a, b: _run_program(ops, outputs, a, b))(x, y)
    for c, e in zip(compiled, eager):
        np.testing.assert_allclose(np.asarray(c), np.asarray(e), rtol=1e-5, atol=1e-6)


# --- the trace cache -----------------------------------------------------------------------------


def test_same_signature_traces_once_and_python_scalars_do_not_retrace():
    f = fnbrrr.jit(lambda x, s: x * s + 1.0)
    x = jnp.ones(3)
    f(x, 2.0)
    f(x, 3.0)
    np.testing.assert_allclose(np.asarray(f(x, 4.0)), np.full(3, 5.0))
    assert f.trace_count == 1
    f(jnp.ones(4), 2.0)  # a new shape retraces
    assert f.trace_count == 2
    f(jnp.ones(4, dtype=jnp.int32), 2.0)  # a new dtype retraces
    assert f.trace_count == 3


def test_pytree_structure_is_part_of_the_signature():
    f = fnbrrr.jit(lambda tree: tree["a"] * 2 + tree["b"])
    f({"a": jnp.ones(2), "b": jnp.ones(2)})
    f({"a": jnp.zeros(2), "b": jnp.ones(2)})
    assert f.trace_count == 1
    out = f({"a": jnp.ones(2), "b": 3.0})
    np.testing.assert_allclose(np.asarray(out), [5.0, 5.0])
    assert f.trace_count == 2


def test_static_arguments_key_the_cache_and_must_be_hashable():
    def power(x, n):
        out = x
        for _ in range(n - 1):
            out = out * x
        return out

    f = fnbrrr.jit(power, static_argnums=1)
    np.testing.assert_allclose(np.asarray(f(jnp.full(2, 2.0), 3)), [8.0, 8.0])
    np.testing.assert_allclose(np.asarray(f(jnp.full(2, 2.0), 4)), [16.0, 16.0])
    assert f.trace_count == 2
    g = fnbrrr.jit(lambda x, shape: jnp.reshape(x, shape), static_argnames="shape")
    assert g(jnp.ones(6), shape=(2, 3)).shape == (2, 3)
    with pytest.raises(TypeError, match="hashable"):
        fnbrrr.jit(lambda x, s: x, static_argnums=1)(jnp.ones(2), [1, 2])


def test_traced_value_in_python_control_flow_raises_with_guidance():
    def f(x):
        if x.sum() > 0:
            return x
        return -x

    with pytest.raises(TypeError) as info:
        fnbrrr.jit(f)(jnp.ones(3))
    assert isinstance(info.value, core.ConcretizationTypeError)
    message = str(info.value)
    assert "bool[]" in message and "`f`" in message and "test_jit.py" in message
    assert "lax.cond" in message and "static" in message


def test_shapes_are_static_inside_the_trace():
    f = fnbrrr.jit(lambda x: x.reshape(x.shape[0] * x.shape[1]))
    assert f(jnp.ones((2, 3))).shape == (6,)


def test_a_reshaped_output_that_the_program_also_reads_is_read_before_the_final_copy():
    # Found by a random-program fuzzer: reshaped outputs are copied after the last step, and
    # readers used to read the not-yet-filled output buffer.
    def scalar_case(x):
        m = jnp.mean(x).reshape(1, 1)
        return m, jnp.power(jnp.abs(x) + 0.5, jnp.clip(m, -2.0, 2.0))

    def row_case(x):  # the reduction sits in a row nest with its readers
        s = jnp.sum(jnp.exp(x), axis=1).reshape(-1, 1)
        return s, jnp.log(s) - x, jnp.exp(x) / s

    rng = np.random.default_rng(0)
    for f, shape in ((scalar_case, (1, 4)), (row_case, (96, 10))):
        x = jnp.asarray(rng.normal(size=shape).astype(np.float32))
        for got, want in zip(fnbrrr.jit(f)(x), f(x)):
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)


def test_inputs_are_never_mutated_and_results_are_fresh():
    x_np = np.arange(6, dtype=np.float32)
    x = jnp.asarray(x_np)
    f = fnbrrr.jit(lambda a: a.at[0].set(100.0))
    out = f(x)
    assert float(out[0]) == 100.0
    np.testing.assert_array_equal(np.asarray(x), np.arange(6, dtype=np.float32))
    identity = fnbrrr.jit(lambda a: a)
    first, second = identity(x), identity(x)
    assert np.shares_memory(np.asarray(first), np.asarray(second)) is False


def test_concurrent_calls_from_threads_give_correct_results():
    f = fnbrrr.jit(lambda x: jnp.tanh(x) * 2.0 + jnp.sum(x))
    inputs = [jnp.full((64,), float(i)) for i in range(8)]
    expected = [np.asarray(f(x)) for x in inputs]
    results: dict = {}

    def worker(i):
        for _ in range(50):
            results.setdefault(i, []).append(np.asarray(f(inputs[i])))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        for r in results[i]:
            np.testing.assert_array_equal(r, expected[i])


def test_disable_jit_runs_eagerly():
    calls = []

    def f(x):
        calls.append(type(x).__name__)
        return x + 1

    fnbrrr.config.update("jax_disable_jit", True)
    try:
        out = fnbrrr.jit(f)(jnp.ones(2))
    finally:
        fnbrrr.config.update("jax_disable_jit", False)
    np.testing.assert_allclose(np.asarray(out), [2.0, 2.0])
    assert calls == ["ArrayImpl"]


def test_none_leaves_pass_through_and_kwargs_are_accepted():
    f = fnbrrr.jit(lambda x, extra=None, *, scale: (x * scale, None))
    out, nothing = f(jnp.ones(2), scale=3.0)
    assert nothing is None
    np.testing.assert_allclose(np.asarray(out), [3.0, 3.0])


def test_decorator_and_partial_forms():
    import functools

    @fnbrrr.jit
    def double(x):
        return x * 2

    assert float(double(jnp.asarray(2.0))) == 4.0
    scaled = fnbrrr.jit(functools.partial(lambda s, x: x * s, 3.0))
    assert float(scaled(jnp.asarray(2.0))) == 6.0


# --- introspection -------------------------------------------------------------------------------


def test_lowered_text_shows_the_fused_kernel_with_ir_comments():
    def gelu(x):
        return 0.5 * x * (1.0 + jnp.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))

    text = fnbrrr.jit(gelu).lower(jnp.ones(1000)).as_text()
    assert "@numba.njit(cache=True" in text
    loops = [line for line in text.splitlines() if line.strip().startswith("for ")]
    assert len(loops) == 1, "an elementwise chain is one loop"
    assert "= tanh" in text and "= integer_pow[y=3]" in text
    assert "test_jit.py" in text  # the user's source line is in the comments


def test_compile_returns_a_callable_with_cost_analysis():
    compiled = fnbrrr.jit(lambda a, b: a @ b).lower(jnp.ones((4, 5)), jnp.ones((5, 3))).compile()
    out = compiled(jnp.ones((4, 5)), jnp.ones((5, 3)))
    np.testing.assert_allclose(np.asarray(out), np.full((4, 3), 5.0))
    cost = compiled.cost_analysis()
    assert cost["flops"] == 2 * 4 * 3 * 5
    assert cost["transcendentals"] == 0
    assert cost["bytes accessed"] == (4 * 5 + 5 * 3 + 4 * 3) * 4


def test_matmul_transposes_become_blas_flags_not_copies():
    a, b = jnp.ones((64, 32)), jnp.ones((64, 48))  # large enough for BLAS (not a loop)
    text = fnbrrr.jit(lambda a, b: a.T @ b).lower(a, b).as_text()
    assert "materialise" not in text and "ascontiguousarray" not in text
    assert "112" in text  # CblasTrans


def test_nested_jit_is_inlined():
    inner = fnbrrr.jit(lambda x: jnp.sin(x) * 2)
    outer = fnbrrr.jit(lambda x: inner(x) + 1)
    text = outer.lower(jnp.ones(3)).as_text()
    assert "pjit" not in text.split("@numba.njit")[1]
    np.testing.assert_allclose(np.asarray(outer(jnp.ones(3))), np.sin(np.ones(3)) * 2 + 1,
                               rtol=1e-6)


# --- composition with the other transformations --------------------------------------------------


def _loss(w, x):
    return jnp.sum(jnp.tanh(x @ w) ** 2)


def test_grad_of_jit_and_jit_of_grad_match_eager():
    w = jnp.asarray(np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2))
    x = jnp.asarray(np.linspace(-2, 2, 12, dtype=np.float32).reshape(4, 3))
    eager = np.asarray(fnbrrr.grad(_loss)(w, x))
    np.testing.assert_allclose(np.asarray(fnbrrr.grad(fnbrrr.jit(_loss))(w, x)), eager,
                               rtol=1e-5)
    np.testing.assert_allclose(np.asarray(fnbrrr.jit(fnbrrr.grad(_loss))(w, x)), eager,
                               rtol=1e-5)


def test_vmap_of_jit_and_jit_of_grad_of_vmap_match_eager():
    w = jnp.asarray(np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2))
    xs = jnp.asarray(np.linspace(-2, 2, 24, dtype=np.float32).reshape(2, 4, 3))
    eager = np.asarray(fnbrrr.vmap(_loss, in_axes=(None, 0))(w, xs))
    np.testing.assert_allclose(
        np.asarray(fnbrrr.vmap(fnbrrr.jit(_loss), in_axes=(None, 0))(w, xs)), eager, rtol=1e-5)

    def total(w, xs):
        return jnp.sum(fnbrrr.vmap(_loss, in_axes=(None, 0))(w, xs))

    np.testing.assert_allclose(np.asarray(fnbrrr.jit(fnbrrr.grad(total))(w, xs)),
                               np.asarray(fnbrrr.grad(total)(w, xs)), rtol=1e-5)


def test_jvp_of_jit_matches_eager():
    f = fnbrrr.jit(lambda x: jnp.sin(x) * x)
    x, t = jnp.asarray([0.5, 1.0]), jnp.asarray([1.0, 2.0])
    out, tangent = fnbrrr.jvp(f, (x,), (t,))
    expected = (np.cos([0.5, 1.0]) * [0.5, 1.0] + np.sin([0.5, 1.0])) * [1.0, 2.0]
    np.testing.assert_allclose(np.asarray(tangent), expected, rtol=1e-5)


def test_a_new_process_loads_the_compiled_program_from_the_disk_cache(tmp_path):
    script = (
        "import fnbrrr, fnbrrr.numpy as jnp\n"
        "f = fnbrrr.jit(lambda x: jnp.tanh(x) * 3.0 + 1.0)\n"
        "print(float(f(jnp.ones(5)).sum()))\n"
    )
    env = {**os.environ, "FNBRRR_CACHE_DIR": str(tmp_path), "NUMBA_DEBUG_CACHE": "1"}
    first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                           text=True, check=True)
    second = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, check=True)
    assert first.stdout.splitlines()[-1] == second.stdout.splitlines()[-1]
    assert "data saved" in first.stdout + first.stderr
    assert "data loaded" in second.stdout + second.stderr
    assert "data saved" not in second.stdout + second.stderr


def test_read_only_inputs_and_constants_use_the_one_compiled_signature():
    # A captured constant is read-only, and so may be a user's input; before, each made Numba
    # compile the whole program a second time at its first call.
    table = np.arange(6, dtype=np.float32)
    table.flags.writeable = False
    f = fnbrrr.jit(lambda x: x * 2.0 + table)
    frozen = np.linspace(0, 1, 6, dtype=np.float32)
    frozen.flags.writeable = False
    writable = frozen.copy()
    for x in (writable, frozen, writable):
        np.testing.assert_allclose(np.asarray(f(x)), x * 2.0 + table, rtol=1e-6)
    program = f.lower(writable).compile().executable.function
    assert len(program.signatures) == 1
    assert all(t.mutable is False for t in program.signatures[0][:2])


def test_generated_source_is_identical_across_processes(tmp_path):
    # The disk cache is keyed by the source's hash: any set-order dependence would recompile.
    script = (
        "import fnbrrr, fnbrrr.numpy as jnp\n"
        "def f(w, xs):\n"
        "    def step(h, x):\n"
        "        h = jnp.tanh(h @ w + x)\n"
        "        return h, (h.sum(), h * 2)\n"
        "    h, ys = fnbrrr.lax.scan(step, jnp.zeros((2, 3)), xs)\n"
        "    return h.sum() + ys[0].sum() + ys[1].mean()\n"
        "g = fnbrrr.jit(fnbrrr.vmap(fnbrrr.grad(f), in_axes=(None, 0)))\n"
        "print(g.lower(jnp.eye(3), jnp.ones((4, 5, 2, 3))).generated.key)\n"
    )
    env = {**os.environ, "FNBRRR_CACHE_DIR": str(tmp_path), "PYTHONHASHSEED": "random"}
    keys = {subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                           text=True, check=True).stdout.strip() for _ in range(3)}
    assert len(keys) == 1, keys


def test_lax_functions_work_under_jit_with_scalars():
    f = fnbrrr.jit(lambda x: lax.max(x, 0.0) + lax.integer_pow(x, 2))
    np.testing.assert_allclose(np.asarray(f(jnp.asarray([-1.0, 2.0]))), [1.0, 6.0])


def test_transposed_matmul_output_swaps_operands_instead_of_copying():
    a = jnp.asarray(np.random.default_rng(0).normal(size=(64, 32)).astype(np.float32))
    b = jnp.asarray(np.random.default_rng(1).normal(size=(32, 48)).astype(np.float32))
    f = fnbrrr.jit(lambda a, b: (a @ b).T)
    text = f.lower(a, b).as_text()
    assert "materialise" not in text and "transpose" not in text.split("@numba.njit")[1]
    np.testing.assert_allclose(np.asarray(f(a, b)), (np.asarray(a) @ np.asarray(b)).T,
                               rtol=1e-5, atol=1e-5)


def test_fusion_dependencies_name_only_steps_of_the_plan():
    # Merged-away groups used to stay in other steps' dependencies by id; a later step could
    # get the same id, and fusion then depended on memory layout (generated source, and so
    # the disk-cache key, changed from run to run).
    def f(x, y):
        a, b = jnp.sin(x), jnp.cos(x)  # two groups that `a + b` merges
        c = jnp.sum(a + b, axis=1, keepdims=True)
        return jnp.exp(y - c) * (a + 1.0), c

    x = jnp.ones((8, 5))
    plan = fnbrrr.jit(f).lower(x, x).plan
    live = {id(s) for s in plan.steps}
    live |= {id(g) for s in plan.steps for g in getattr(s, "groups", [])}
    for step in plan.steps:
        for part in getattr(step, "groups", [step]):
            assert part.deps <= live, f"stale dependencies in {part}"


def test_an_output_that_is_a_view_of_a_fused_value_gets_its_buffer():
    out = fnbrrr.jit(lambda x: jnp.tanh(x).T)(jnp.arange(12.0).reshape(4, 3))
    np.testing.assert_allclose(np.asarray(out), np.tanh(np.arange(12.0).reshape(4, 3)).T,
                               rtol=1e-6)


# Primitives the compiler handles without a `lower` slot, and why.
WITHOUT_LOWERING = {
    "reshape": "a view of its operand's buffer, emitted by codegen",
    "pjit": "inlined by passes.inline_calls",
    "custom_jvp_call": "inlined by passes.inline_calls",
    "custom_vjp_call": "inlined by passes.inline_calls",
    "checkpoint": "inlined by passes.inline_calls",
}


def test_every_primitive_compiles_without_the_object_mode_fallback():
    from fnbrrr.jit import passes
    from fnbrrr.jit.api import _install_rules

    _install_rules()
    missing = sorted(n for n, p in core.primitives.items()
                     if p.lower is None and n not in WITHOUT_LOWERING)
    assert not missing, f"primitives that would run in object mode under jit: {missing}"
    inlined = {n for n, why in WITHOUT_LOWERING.items() if "inline" in why}
    assert inlined <= set(passes.INLINABLE)


def test_softmax_compiles_without_object_mode():
    text = fnbrrr.jit(fnbrrr.nn.log_softmax).lower(jnp.ones((4, 10))).as_text()
    assert "objmode" not in text


# --- what keeps compile time down (docs/performance.md, W6) ----------------------------------


def test_view_intrinsic_shares_memory_at_an_offset():
    import numba

    from fnbrrr.jit.kernels import _view

    @numba.njit
    def views(a):
        block = _view(a, 2, (2, 3))
        block[1, 0] = -1.0
        return block, _view(a, 4, 3), _view(a, 7, ()).item()

    a = np.arange(10.0, dtype=np.float32)
    block, flat, scalar = views(a)
    np.testing.assert_array_equal(block, [[2, 3, 4], [-1, 6, 7]])
    np.testing.assert_array_equal(flat, [4, -1, 6])
    assert scalar == 7.0 and a[5] == -1.0  # a view, not a copy


def test_intermediates_share_one_arena_per_dtype():
    def f(x, w):
        h = jnp.maximum(x @ w, 0.0)
        mask = (h > 1.0).astype(jnp.int32)
        return jnp.sum(h * mask, axis=1), jnp.sum(mask)

    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 80)).astype(np.float32)
    w = rng.normal(size=(80, 96)).astype(np.float32)
    lowered = fnbrrr.jit(f).lower(x, w)
    temps = [a for a in lowered.generated.args if a.role == "temp"]
    assert sorted(a.name for a in temps) == ["a_float32"], temps  # the int mask is fused
    for got, want in zip(fnbrrr.jit(f)(x, w), f(jnp.asarray(x), jnp.asarray(w))):
        _assert_same(got, want)


def test_typed_constants_are_module_globals_not_calls():
    def f(x):
        return jnp.maximum(x * 0.25, -jnp.inf) + jnp.minimum(x, 0.5)

    text = fnbrrr.jit(f).lower(jnp.ones(8)).as_text()
    body = text.split("def program(")[1].split("\ndef ")[0]
    assert "np.float32(" not in body and "FLOAT32_" in body
    assert "= np.float32(-np.inf)" in text and "= np.float32(0.25)" in text
    x = jnp.asarray(np.linspace(-1.0, 8.0, 8, dtype=np.float32))
    _assert_same(fnbrrr.jit(f)(x), f(x))


def test_numba_start_up_does_not_import_scipy_linalg_yet_np_dot_still_works():
    script = (
        "import sys, numpy as np, numba, importlib\n"
        "importlib.import_module('fnbrrr.jit.runtime').defer_numba_blas_check()\n"
        "numba.njit(lambda a: a[0] + 1.0)(np.ones(2))\n"
        "print('scipy.linalg' in sys.modules)\n"
        "print(numba.njit(lambda a, b: np.dot(a, b))(np.ones(3), np.arange(3.0)))\n"
    )
    lines = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True).stdout.split()
    assert lines == ["False", "3.0"]


# --- fewer loop nests: row nests and sibling fusion (compile time grows with nests) ----------


def _program_body(text: str) -> str:
    return text.split("def program(")[1].split("\ndef ")[0]


def _top_level_loops(text: str) -> list[str]:
    """The `for` lines directly in the program's body (each one a loop nest to compile)."""
    return [line.strip() for line in _program_body(text).splitlines()
            if line.startswith("    for ") and not line.startswith("     ")]


def _softmax_cross_entropy(logits, labels):
    shifted = logits - jnp.max(logits, axis=1, keepdims=True)
    log_sum_exp = jnp.log(jnp.sum(jnp.exp(shifted), axis=1, keepdims=True))
    return -jnp.mean(jnp.sum(labels * (shifted - log_sum_exp), axis=1))


def test_softmax_cross_entropy_and_its_gradient_are_one_loop_over_the_rows():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(128, 10)).astype(np.float32)
    labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 128)]
    fn = fnbrrr.value_and_grad(_softmax_cross_entropy)
    text = fnbrrr.jit(fn).lower(logits, labels).as_text()
    assert _top_level_loops(text) == ["for i0 in range(128):"]
    assert "one loop over 128 rows" in text
    body = _program_body(text)
    assert "= reduce_max" in body and "= exp" in body and "= log" in body  # IR comments kept
    (loss, grad), (eager_loss, eager_grad) = fnbrrr.jit(fn)(logits, labels), fn(logits, labels)
    _assert_same(loss, eager_loss)
    np.testing.assert_allclose(np.asarray(grad), np.asarray(eager_grad), rtol=1e-5, atol=1e-7)


def test_layer_norm_is_one_row_loop_and_matches_eager():
    def layer_norm(x, gain):
        mean = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean((x - mean) ** 2, axis=-1, keepdims=True)
        return gain * (x - mean) / jnp.sqrt(var + 1e-5)

    rng = np.random.default_rng(6)
    x = rng.normal(size=(32, 24)).astype(np.float32)
    gain = rng.normal(size=(24,)).astype(np.float32)
    text = fnbrrr.jit(layer_norm).lower(x, gain).as_text()
    assert _top_level_loops(text) == ["for i0 in range(32):"]
    np.testing.assert_allclose(np.asarray(fnbrrr.jit(layer_norm)(x, gain)),
                               np.asarray(layer_norm(x, gain)), rtol=1e-5, atol=1e-5)
    grad = fnbrrr.grad(lambda x, gain: jnp.sum(jnp.tanh(layer_norm(x, gain))), argnums=(0, 1))
    for got, want in zip(fnbrrr.jit(grad)(x, gain), grad(x, gain)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-5)


def test_a_reduction_over_the_rows_is_complete_before_anything_reads_it():
    def f(x):
        centred = x - jnp.mean(x, axis=0)  # needs every row first
        scaled = x / jnp.max(x, axis=1, keepdims=True)  # a row nest may hold this
        return centred * jnp.sum(scaled, axis=0), jnp.sum(scaled) / jnp.sum(x)

    x = np.random.default_rng(7).uniform(1.0, 2.0, size=(16, 9)).astype(np.float32)
    for got, want in zip(fnbrrr.jit(f)(x), f(jnp.asarray(x))):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)


def test_a_transposed_read_of_a_row_value_is_not_nested():
    def f(x):  # row i of the result reads column i of `e`: every row of `e` comes first
        e = jnp.exp(x - jnp.max(x, axis=1, keepdims=True))
        return e.T * jnp.sum(e, axis=1)

    x = np.random.default_rng(8).normal(size=(12, 12)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(fnbrrr.jit(f)(x)), np.asarray(f(jnp.asarray(x))),
                               rtol=1e-5, atol=1e-6)


def test_sgd_updates_of_same_shaped_parameters_share_one_loop():
    def sgd(params, grads):
        return [p - 0.1 * g for p, g in zip(params, grads)]

    rng = np.random.default_rng(9)
    params = [rng.normal(size=(64, 32)).astype(np.float32) for _ in range(3)]
    grads = [rng.normal(size=(64, 32)).astype(np.float32) for _ in range(3)]
    text = fnbrrr.jit(sgd).lower(params, grads).as_text()
    assert len(_top_level_loops(text)) == 1, _top_level_loops(text)
    for got, want in zip(fnbrrr.jit(sgd)(params, grads), sgd(params, grads)):
        _assert_same(got, want)


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(program=random_program(), rows=st.sampled_from([2, 5, 7]))
def test_random_row_programs_compile_to_their_eager_results(program, rows):
    """Random programs over [rows, 4] inputs: reductions along and across rows, transposes."""
    ops, outputs = program
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(rows, 4)).astype(np.float32))
    y = jnp.asarray(rng.normal(size=(rows, 4)).astype(np.float32))
    eager = _run_program(ops, outputs, x, y)
    compiled = fnbrrr.jit(lambda a, b: _run_program(ops, outputs, a, b))(x, y)
    for c, e in zip(compiled, eager):
        np.testing.assert_allclose(np.asarray(c), np.asarray(e), rtol=1e-5, atol=1e-6)


def test_reductions_over_leading_axes_are_started_by_the_driver_not_by_fill_loops():
    def f(x, y):
        return (jnp.sum(jnp.exp(x), axis=0) - 1.0, jnp.sum(y * 2.0, axis=0) + 1.0,
                jnp.max(jnp.sin(y), axis=0) * 3.0)

    rng = np.random.default_rng(10)
    x = rng.normal(size=(16, 8)).astype(np.float32)
    y = rng.normal(size=(16, 5)).astype(np.float32)
    text = fnbrrr.jit(f).lower(x, y).as_text()
    assert _top_level_loops(text)[0] == "for i0 in range(16):", _top_level_loops(text)
    driver = text.split("\ndef call(")[1]
    fills = [line.split("]")[0].split("[")[1] for line in driver.splitlines()
             if "reductions over leading axes" in line]
    assert len(fills) == 2, driver  # one slice for the max, one for both sums
    assert int(fills[1].split(":")[1]) - int(fills[1].split(":")[0]) > 8 + 5 - 1
    for got, want in zip(fnbrrr.jit(f)(x, y), f(jnp.asarray(x), jnp.asarray(y))):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint8, np.bool_])
@pytest.mark.parametrize("shape,axis", [((37,), 0), ((3, 40), 1), ((4, 33, 2), 1), ((5, 3), 0)])
def test_compiled_argsort_is_stable_and_puts_nans_last(dtype, shape, axis):
    # Lines longer than the 16-element insertion-sorted runs exercise the merges too.
    rng = np.random.default_rng(7)
    x = rng.integers(-3, 4, size=shape).astype(dtype)  # many ties
    if dtype == np.float32:
        x[rng.random(shape) < 0.2] = np.nan
    got = fnbrrr.jit(lambda a: jnp.argsort(a, axis=axis))(x)
    np.testing.assert_array_equal(np.asarray(got), np.argsort(x, axis=axis, kind="stable"))


def test_the_disk_cache_key_ignores_source_locations():
    # Comments in the generated module name the user's lines; editing lines above a jitted
    # function must not recompile it in the next process.
    def f(x):
        return jnp.tanh(x) * 2.0 + 1.0

    namespace = {"jnp": jnp}
    exec("\n" * 7 + "def g(x):\n    return jnp.tanh(x) * 2.0 + 1.0\n", namespace)
    x = np.ones(3, np.float32)
    first = fnbrrr.jit(f).lower(x).generated
    moved = fnbrrr.jit(namespace["g"]).lower(x).generated
    assert first.source != moved.source  # the comments differ
    assert first.key == moved.key
    other = fnbrrr.jit(lambda x: jnp.tanh(x) * 3.0 + 1.0).lower(x).generated
    assert other.key != first.key
