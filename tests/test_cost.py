"""Cost analysis (fnbrrr/jit/cost.py): FLOP, transcendental and byte counts equal hand counts.

Counts come from the IR, never from timing (PERF.md fact 9), so every expectation here is
exact. The registry test fails when a primitive has no cost rule.
"""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest

import fnbrrr
import fnbrrr.numpy as jnp
from fnbrrr import core, lax
from fnbrrr.jit import cost
from fnbrrr.jit.codegen import generate


def _import_every_module():
    """Register every primitive: import all of fnbrrr (modules that fail to import are some
    other test's concern)."""
    for info in pkgutil.walk_packages(fnbrrr.__path__, "fnbrrr."):
        try:
            importlib.import_module(info.name)
        except Exception:  # noqa: BLE001
            pass


def analysis(f, *args) -> dict:
    return fnbrrr.jit(f).lower(*args).compile().cost_analysis()


# --- the registry ----------------------------------------------------------------------------


def test_every_registered_primitive_has_a_cost_rule():
    _import_every_module()
    assert cost.missing_rules() == [], (
        "add a line to fnbrrr/jit/cost.py COST_RULES for each of these primitives")


def test_cost_slots_are_filled_from_the_table():
    cost.install()
    for name in cost.COST_RULES:
        if name in core.primitives:
            assert core.primitives[name].cost is not None, name
    f32 = np.dtype(np.float32)
    dot = core.primitives["dot_general"].cost(
        core.ShapedArray((4, 3), f32), core.ShapedArray((3, 5), f32),
        dimension_numbers=(((1,), (0,)), ((), ())), preferred_element_type=None)
    assert dot == {"flops": 2 * 4 * 5 * 3, "transcendentals": 0.0,
                   "bytes accessed": 4 * (12 + 15 + 20)}


# --- hand counts ---------------------------------------------------------------------------


@pytest.mark.parametrize("m,k,n", [(32, 16, 8), (64, 64, 64), (5, 7, 3)])
def test_matmul_counts_2mnk_flops_and_each_matrix_once(m, k, n):
    a, b = jnp.ones((m, k)), jnp.ones((k, n))
    c = analysis(lambda a, b: a @ b, a, b)
    assert c["flops"] == 2 * m * n * k
    assert c["transcendentals"] == 0
    assert c["bytes accessed"] == 4 * (m * k + k * n + m * n)
    [kernel] = c["kernels"]
    assert kernel["kind"] == "kernel" and kernel["primitives"] == ["dot_general"]
    assert kernel["flops"] == 2 * m * n * k
    assert kernel["bytes accessed"] == 4 * (m * k + k * n + m * n)


def test_elementwise_chain_fused_bytes_are_one_read_and_one_write():
    n = 1000
    c = analysis(lambda x: (x * 2 + 1) * 3 - x, jnp.ones(n))
    assert c["flops"] == 4 * n  # mul, add, mul, sub
    assert c["transcendentals"] == 0
    assert c["bytes accessed"] == 4 * n + 4 * n  # read x, write the result
    # op by op: mul, add and mul read one array and write one; sub reads two
    assert c["bytes accessed unfused"] == 3 * 8 * n + 12 * n
    assert c["bytes saved by fusion"] == c["bytes accessed unfused"] - 8 * n
    [loop] = c["kernels"]
    assert loop["kind"] == "loop" and loop["shape"] == (n,)
    assert loop["primitives"] == ["mul", "add", "mul", "sub"]
    assert loop["bytes accessed"] == 8 * n


def test_transcendentals_are_counted_apart_from_flops():
    n = 64
    c = analysis(lambda x: jnp.tanh(x) + jnp.exp(x) * jnp.sqrt(x), jnp.ones(n))
    assert c["transcendentals"] == 3 * n
    assert c["flops"] == 2 * n


def test_reduction_combines_n_minus_one_times_per_result():
    c = analysis(lambda x: x.sum(axis=1), jnp.ones((8, 100)))
    assert c["flops"] == 8 * 99
    assert c["bytes accessed"] == 4 * 800 + 4 * 8


def test_integer_pow_counts_its_multiplies():
    c = analysis(lambda x: lax.integer_pow(x, 3), jnp.ones(10))
    assert c["flops"] == 2 * 10


def test_gather_reads_only_the_gathered_rows():
    table, idx = jnp.ones((1000, 16)), jnp.asarray(np.array([[1], [5], [7]], np.int32))
    jaxpr = fnbrrr.make_jaxpr(lambda t, i: lax.gather(t, i, (0,)))(table, idx)
    [eqn] = jaxpr.eqns
    assert cost.eqn_cost(eqn)["bytes accessed"] == 3 * 4 + 2 * 3 * 16 * 4


def test_kernels_add_up_to_the_program():
    def f(x, w):
        h = jnp.tanh(x @ w + 1)
        return (h * h).sum()

    c = analysis(f, jnp.ones((32, 16)), jnp.ones((16, 8)))
    assert [k["kind"] for k in c["kernels"]] == ["kernel", "loop"]
    for key in ("flops", "transcendentals"):
        assert sum(k[key] for k in c["kernels"]) == c[key]
    assert c["flops"] == 2 * 32 * 8 * 16 + 32 * 8 * 2 + (32 * 8 - 1)
    assert all(k["sources"] and "test_cost.py" in k["sources"][0] for k in c["kernels"])


def test_steps_mirror_the_code_generator():
    def f(x, w):
        y = (x @ w).reshape(-1)
        return jnp.exp(y) * 2, y.sum()

    lowered = fnbrrr.jit(f).lower(jnp.ones((4, 3)), jnp.ones((3, 5)))
    mine = cost.plan_steps(lowered.plan)
    theirs = generate(lowered.plan).steps
    assert [(s.kind, s.eqns) for s in mine] == [(s.kind, s.eqns) for s in theirs]


# --- control flow --------------------------------------------------------------------------


def test_scan_costs_length_times_its_body():
    def step(c, x):
        c = c * 2 + x
        return c, jnp.tanh(c)

    c = analysis(lambda xs: lax.scan(step, jnp.zeros(8), xs), jnp.ones((5, 8)))
    assert c["flops"] == 5 * 2 * 8
    assert c["transcendentals"] == 5 * 8
    assert c["unknown trip counts"] == 0


def test_while_counts_one_trip_and_flags_it():
    c = analysis(lambda x: lax.while_loop(lambda v: v.sum() < 100.0, lambda v: v * 2 + 1, x),
                 jnp.ones(8))
    assert c["unknown trip counts"] == 1
    assert c["flops"] == 7 + 1 + 2 * 8  # sum, compare; one trip of the body


def test_cond_costs_its_most_expensive_branch():
    jaxpr = fnbrrr.make_jaxpr(lambda p, x: lax.cond(p, lambda v: v * 2, lambda v: v + v * v, x))(
        True, jnp.ones(8))
    eqn = next(e for e in jaxpr.eqns if e.primitive.name == "cond")
    assert cost.eqn_cost(eqn)["flops"] == 2 * 8


def test_calls_cost_their_programs():
    jaxpr = fnbrrr.make_jaxpr(lambda x: fnbrrr.jit(jnp.sin)(x) * 2)(jnp.ones(4))
    total = cost.program_cost(jaxpr.jaxpr)
    assert total["transcendentals"] == 4 and total["flops"] == 4


# --- convolutions and windows ------------------------------------------------------------------


def test_convolution_counts_two_flops_per_kernel_tap():
    from fnbrrr._prims.convolution import conv_general_dilated

    x, w = jnp.ones((2, 3, 8, 8)), jnp.ones((4, 3, 3, 3))  # NCHW, OIHW; VALID: 6x6 outputs
    jaxpr = fnbrrr.make_jaxpr(lambda x, w: conv_general_dilated(x, w, (1, 1), "VALID"))(x, w)
    eqn = next(e for e in jaxpr.eqns if e.primitive.name == "conv_general_dilated")
    assert cost.eqn_cost(eqn)["flops"] == 2 * (2 * 4 * 6 * 6) * (3 * 3 * 3)


def test_max_pool_compares_within_each_window():
    from fnbrrr._prims.convolution import max_pool

    jaxpr = fnbrrr.make_jaxpr(lambda x: max_pool(x, (2, 2), (2, 2)))(jnp.ones((1, 4, 4, 1)))
    eqn = next(e for e in jaxpr.eqns if e.primitive.name == "window_max")
    assert cost.eqn_cost(eqn)["flops"] == 4 * 3  # 4 windows of 4: 3 comparisons each
