"""Tests for `fnbrrr/_prims/convolution.py` (conv_general_dilated), `fnbrrr/_prims/pooling.py`
(windowed reductions, pooling) and their Numba lowerings in `fnbrrr/jit/conv_kernels/`.

Forward values are checked against direct NumPy loops written independently of the impls;
derivatives against finite differences (float64); vmap against per-example loops; jit against
eager evaluation, once per lowering strategy.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

import fnbrrr
import fnbrrr.numpy as jnp
from fnbrrr import core, lax
from fnbrrr._prims import convolution as conv_mod
from fnbrrr._prims.convolution import (
    ConvDimensionNumbers,
    conv_dimension_numbers,
    conv_general_dilated,
    conv_transpose,
    padtype_to_pads,
)
from fnbrrr._prims.pooling import avg_pool, max_pool, reduce_window
from fnbrrr.jit import conv_kernels
from fnbrrr.test_util import check_grads

# Until fnbrrr.jit.lowering.install() registers them, the tests install the lowerings here.
for _name, _lowering in conv_kernels.CONV_KERNELS.items():
    core.primitives[_name].lower = _lowering

RNG = np.random.default_rng(0)  # (the `x64` fixture comes from conftest.py)


# --------------------------------------------------------------------------------------------
# Independent references: loops over output positions and window offsets
# --------------------------------------------------------------------------------------------


def reference_conv(lhs, rhs, strides, padding, lhs_dilation, rhs_dilation, dims,
                   feature_group_count=1, batch_group_count=1):
    """Direct convolution: for every output position and kernel offset, add the products."""
    lhs_spec, rhs_spec, out_spec = dims
    x = np.transpose(lhs, lhs_spec).astype(np.float64)
    w = np.transpose(rhs, rhs_spec).astype(np.float64)
    n, c = x.shape[:2]
    o, i = w.shape[:2]
    in_sizes, kernel = x.shape[2:], w.shape[2:]
    out_sizes = [
        ((size - 1) * ld + 1 + lo + hi - ((k - 1) * rd + 1)) // s + 1
        for size, k, s, (lo, hi), ld, rd in zip(in_sizes, kernel, strides, padding,
                                                lhs_dilation, rhs_dilation)]
    groups = feature_group_count * batch_group_count
    n_out, o_group = n // batch_group_count, o // groups
    out = np.zeros((n_out, o) + tuple(out_sizes))
    for y in itertools.product(*map(range, out_sizes)):
        for k in itertools.product(*map(range, kernel)):
            index = []
            for j, (yj, kj) in enumerate(zip(y, k)):
                p = yj * strides[j] + kj * rhs_dilation[j] - padding[j][0]
                if p < 0 or p % lhs_dilation[j] or p // lhs_dilation[j] >= in_sizes[j]:
                    break
                index.append(p // lhs_dilation[j])
            else:
                for g in range(groups):
                    outs = slice(g * o_group, (g + 1) * o_group)
                    if batch_group_count > 1:
                        image = x[(slice(g * n_out, (g + 1) * n_out), slice(None), *index)]
                    else:
                        image = x[(slice(None), slice(g * i, (g + 1) * i), *index)]
                    out[(slice(None), outs, *y)] += image @ w[(outs, slice(None), *k)].T
    return np.transpose(out, np.argsort(out_spec))


def reference_window(x, kind, window, strides, padding, base_dilation, window_dilation):
    """Direct windowed sum/max (padding cells do not take part)."""
    out_sizes = [
        ((n - 1) * bd + 1 + lo + hi - ((w - 1) * wd + 1)) // s + 1
        for n, w, s, (lo, hi), bd, wd in zip(x.shape, window, strides, padding, base_dilation,
                                             window_dilation)]
    out = np.zeros(out_sizes)
    for o in itertools.product(*map(range, out_sizes)):
        values = []
        for k in itertools.product(*map(range, window)):
            index = []
            for a, (oa, ka) in enumerate(zip(o, k)):
                p = oa * strides[a] + ka * window_dilation[a] - padding[a][0]
                if p < 0 or p % base_dilation[a] or p // base_dilation[a] >= x.shape[a]:
                    break
                index.append(p // base_dilation[a])
            else:
                values.append(x[tuple(index)])
        out[o] = sum(values) if kind == "sum" else max(values, default=-np.inf)
    return out


def explicit_padding(lhs_shape, rhs_shape, strides, padding, rhs_dilation, dims):
    if not isinstance(padding, str):
        return padding
    in_sizes = [lhs_shape[a] for a in dims.lhs_spec[2:]]
    window = [(rhs_shape[a] - 1) * d + 1 for a, d in zip(dims.rhs_spec[2:], rhs_dilation)]
    return padtype_to_pads(in_sizes, window, strides, padding)


# (lhs shape, rhs shape, strides, padding, lhs_dilation, rhs_dilation, layouts, fgc, bgc)
CONFIGS = [
    ((2, 3, 6, 7), (4, 3, 3, 2), (1, 1), "VALID", (1, 1), (1, 1), None, 1, 1),
    ((2, 3, 6, 7), (4, 3, 3, 3), (2, 1), "SAME", (1, 1), (1, 2), None, 1, 1),
    ((1, 2, 5, 6), (3, 2, 3, 3), (2, 2), "SAME_LOWER", (1, 1), (1, 1), None, 1, 1),
    ((2, 3, 5, 6), (4, 3, 3, 2), (2, 3), ((1, -1), (2, 0)), (2, 1), (1, 1), None, 1, 1),
    ((2, 5, 6, 3), (3, 2, 3, 4), (1, 2), "SAME", (1, 1), (1, 1), ("NHWC", "HWIO", "NHWC"), 1, 1),
    ((2, 5, 6, 3), (4, 3, 2, 3), (1, 1), ((1, 1), (0, 2)), (1, 1), (2, 1),
     ("NHWC", "OHWI", "NCHW"), 1, 1),
    ((2, 3, 6, 5), (3, 4, 2, 2), (1, 1), "VALID", (1, 1), (1, 1), ("NCHW", "IOHW", "HWNC"), 1, 1),
    ((2, 4, 5, 6), (6, 2, 3, 2), (2, 1), "VALID", (1, 1), (1, 1), None, 2, 1),
    ((3, 4, 5, 6), (4, 1, 3, 3), (1, 1), "SAME", (1, 1), (1, 1), None, 4, 1),
    ((4, 4, 5, 6), (6, 4, 3, 2), (1, 1), "VALID", (1, 1), (1, 1), None, 1, 2),
    ((2, 3, 9), (4, 3, 3), (2,), "SAME", (1,), (2,), None, 1, 1),
    ((1, 2, 4, 5, 3), (2, 2, 2, 2, 2), (1, 2, 1), "VALID", (1, 1, 1), (1, 1, 1), None, 1, 1),
    ((2, 3), (4, 3), (), (), (), (), None, 1, 1),
]
IDS = [f"{c[0]}*{c[1]}/s{c[2]}/{c[3] if isinstance(c[3], str) else 'pad'}/g{c[7]}b{c[8]}"
       for c in CONFIGS]


def run_config(config, lhs, rhs):
    _, _, strides, padding, lhs_dil, rhs_dil, layouts, fgc, bgc = config
    return conv_general_dilated(lhs, rhs, strides, padding, lhs_dil, rhs_dil, layouts, fgc, bgc)


def random_operands(config, dtype=np.float32):
    return (RNG.standard_normal(config[0]).astype(dtype),
            RNG.standard_normal(config[1]).astype(dtype))


# --------------------------------------------------------------------------------------------
# Forward values and shapes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_conv_matches_direct_loops(config):
    lhs_shape, rhs_shape, strides, padding, lhs_dil, rhs_dil, layouts, fgc, bgc = config
    lhs, rhs = random_operands(config)
    out = run_config(config, lhs, rhs)
    dims = conv_dimension_numbers(lhs_shape, rhs_shape, layouts)
    pads = explicit_padding(lhs_shape, rhs_shape, strides, padding, rhs_dil, dims)
    expected = reference_conv(lhs, rhs, strides, pads, lhs_dil, rhs_dil, dims, fgc, bgc)
    assert isinstance(out, core.Array) and out.dtype == np.float32
    assert out.shape == expected.shape
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-4, atol=1e-4)


def test_same_padding_keeps_the_spatial_size_and_lax_conv_is_the_default_layout():
    x, w = RNG.standard_normal((2, 3, 7, 8)), RNG.standard_normal((5, 3, 3, 3))
    assert conv_mod.conv(x, w, (1, 1), "SAME").shape == (2, 5, 7, 8)
    assert conv_mod.conv(x, w, (2, 2), "SAME").shape == (2, 5, 4, 4)
    np.testing.assert_allclose(
        np.asarray(conv_mod.conv(x, w, (1, 1), "VALID")),
        np.asarray(conv_general_dilated(x, w, (1, 1), "VALID",
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"))))


def test_layout_strings_become_axis_specs():
    dims = conv_dimension_numbers((1, 5, 5, 3), (3, 3, 3, 8), ("NHWC", "HWIO", "NHWC"))
    assert dims == ConvDimensionNumbers((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))
    # spatial axes pair up in the order the kernel's layout names them
    dims = conv_dimension_numbers((1, 3, 4, 5), (2, 3, 2, 2), ("NCWH", "OIHW", "NHWC"))
    assert dims == ConvDimensionNumbers((0, 1, 3, 2), (0, 1, 2, 3), (0, 3, 1, 2))


def test_padtype_to_pads_puts_the_odd_pad_high_for_same_and_low_for_same_lower():
    assert padtype_to_pads((5,), (4,), (1,), "SAME") == [(1, 2)]
    assert padtype_to_pads((5,), (4,), (1,), "SAME_LOWER") == [(2, 1)]
    assert padtype_to_pads((6, 6), (3, 3), (2, 2), "SAME") == [(0, 1), (0, 1)]
    assert padtype_to_pads((6,), (3,), (1,), "VALID") == [(0, 0)]


def test_preferred_element_type_converts_the_result():
    x, w = np.ones((1, 1, 3, 3), np.float32), np.ones((1, 1, 2, 2), np.float32)
    out = conv_general_dilated(x, w, (1, 1), "VALID", preferred_element_type=np.int32)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(out), np.full((1, 1, 2, 2), 4))


def test_conv_transpose_is_the_adjoint_of_a_strided_conv():
    x = RNG.standard_normal((2, 7, 7, 3)).astype(np.float32)
    w = RNG.standard_normal((3, 3, 3, 4)).astype(np.float32)
    layouts = ("NHWC", "HWIO", "NHWC")
    y = conv_general_dilated(x, w, (2, 2), "VALID", dimension_numbers=layouts)
    ct = RNG.standard_normal(y.shape).astype(np.float32)
    back = conv_transpose(ct, w, (2, 2), "VALID", transpose_kernel=True)
    assert back.shape == x.shape
    np.testing.assert_allclose(float(jnp.sum(y * ct)), float(jnp.sum(x * back)), rtol=1e-4)
    same = conv_transpose(np.ones((1, 4, 4, 2), np.float32), np.ones((3, 3, 2, 5), np.float32),
                          (2, 2), "SAME")
    assert same.shape == (1, 8, 8, 5)


# --------------------------------------------------------------------------------------------
# Derivatives (float64, finite differences)
# --------------------------------------------------------------------------------------------

GRAD_CONFIGS = [CONFIGS[k] for k in (1, 3, 4, 6, 7, 9, 10)]


@pytest.mark.parametrize("config", GRAD_CONFIGS, ids=[IDS[CONFIGS.index(c)] for c in GRAD_CONFIGS])
def test_conv_gradients_match_finite_differences(config, x64):
    lhs, rhs = random_operands(config, np.float64)
    check_grads(lambda a, b: run_config(config, a, b), (lhs, rhs), order=1)


@pytest.mark.parametrize("index", [3, 7, 9])
def test_conv_second_derivatives_match_finite_differences(index, x64):
    config = CONFIGS[index]
    lhs, rhs = random_operands(config, np.float64)
    check_grads(lambda a, b: run_config(config, a, b), (lhs, rhs), order=2, modes=("rev",))


def test_gradient_flows_to_the_kernel_alone_when_the_input_is_constant(x64):
    config = CONFIGS[1]
    lhs, rhs = random_operands(config, np.float64)
    grad = fnbrrr.grad(lambda w: jnp.sum(run_config(config, lhs, w) ** 2))(rhs)
    eps = 1e-6
    bump = np.zeros_like(rhs)
    bump[1, 2, 0, 1] = eps
    loss = lambda w: float(jnp.sum(run_config(config, lhs, w) ** 2))  # noqa: E731
    numeric = (loss(rhs + bump) - loss(rhs - bump)) / (2 * eps)
    np.testing.assert_allclose(float(grad[1, 2, 0, 1]), numeric, rtol=1e-6)


# --------------------------------------------------------------------------------------------
# vmap
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [1, 4, 7, 9, 10])
@pytest.mark.parametrize("in_axes", [(0, None), (None, 0), (0, 0), (2, 1)])
def test_vmap_matches_a_per_example_loop(index, in_axes):
    config = CONFIGS[index]
    lhs, rhs = random_operands(config)
    batch = 3
    lhs_b = np.stack([lhs + k for k in range(batch)], axis=in_axes[0] or 0)
    rhs_b = np.stack([rhs * (k + 1) for k in range(batch)], axis=in_axes[1] or 0)
    args = (lhs_b if in_axes[0] is not None else lhs, rhs_b if in_axes[1] is not None else rhs)
    got = fnbrrr.vmap(lambda a, b: run_config(config, a, b), in_axes=in_axes)(*args)
    per_example = [
        np.asarray(run_config(config,
                              np.take(lhs_b, k, in_axes[0]) if in_axes[0] is not None else lhs,
                              np.take(rhs_b, k, in_axes[1]) if in_axes[1] is not None else rhs))
        for k in range(batch)]
    np.testing.assert_allclose(np.asarray(got), np.stack(per_example), rtol=1e-5, atol=1e-5)


def test_per_example_gradients_of_a_convolution_vmap_the_kernel_gradient():
    config = CONFIGS[7]  # feature groups: the kernel gradient is a batch-grouped conv
    lhs, rhs = random_operands(config)
    examples = np.stack([lhs, 2 * lhs, -lhs])[:, :1]  # 3 examples of batch 1

    def loss(w, x):
        return jnp.sum(run_config(config, x, w) ** 2)

    got = fnbrrr.vmap(fnbrrr.grad(loss), in_axes=(None, 0))(rhs, examples)
    expected = np.stack([np.asarray(fnbrrr.grad(loss)(rhs, e)) for e in examples])
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------------------------
# jit: one program per lowering strategy, many configurations in each
# --------------------------------------------------------------------------------------------

JIT_CONFIGS = [
    # dense (no padding): the unchecked copy loops; its kernel gradient is chunked
    ((2, 3, 9, 8), (4, 3, 3, 3), (1, 1), "VALID", (1, 1), (1, 1), None, 1, 1),
    # padding, strides, kernel dilation, feature groups
    ((2, 4, 7, 8), (6, 2, 3, 3), (2, 1), "SAME", (1, 1), (1, 2), None, 2, 1),
    # input dilation, negative padding
    ((2, 3, 5, 6), (4, 3, 3, 2), (2, 3), ((1, -1), (2, 0)), (2, 1), (1, 1), None, 1, 1),
    # channels-last with batch groups: features innermost, (positions, features) GEMM output
    ((4, 7, 8, 3), (3, 2, 3, 4), (1, 2), "SAME", (1, 1), (1, 1), ("NHWC", "HWIO", "NHWC"), 1, 2),
    # a kernel read in tiny chunks (copied) and an output no GEMM writes directly
    ((2, 3, 6, 5), (3, 4, 2, 2), (1, 1), "VALID", (1, 1), (1, 1), ("NCHW", "IOHW", "HWNC"), 1, 1),
    ((2, 3, 9), (4, 3, 3), (2,), "SAME", (1,), (2,), None, 1, 1),
    ((1, 2, 4, 5, 3), (2, 2, 2, 2, 2), (1, 2, 1), "VALID", (1, 1, 1), (1, 1, 1), None, 1, 1),
]


def jit_loss(operands):
    total = 0.0
    for config, (lhs, rhs) in zip(JIT_CONFIGS, operands):
        out = run_config(config, lhs, rhs)
        total = total + jnp.sum(out * out)
    return total


def assert_close_to(got, want):
    want = np.asarray(want)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("strategy", ["im2col", "gemm_gather"])
def test_jit_matches_eager_values_and_gradients(strategy, monkeypatch):
    monkeypatch.setattr(conv_kernels.strategy, "FORCE_STRATEGY", strategy)
    operands = [random_operands(config) for config in JIT_CONFIGS]
    step = fnbrrr.value_and_grad(jit_loss)
    expected_value, expected_grads = step(operands)
    value, grads = fnbrrr.jit(step)(operands)
    np.testing.assert_allclose(float(value), float(expected_value), rtol=1e-4)
    for got, want in zip(fnbrrr.tree_util.tree_leaves(grads),
                         fnbrrr.tree_util.tree_leaves(expected_grads)):
        assert_close_to(got, want)


def test_jit_with_direct_loops_matches_eager(monkeypatch):
    monkeypatch.setattr(conv_kernels.strategy, "FORCE_STRATEGY", "direct")
    operands = [random_operands(config) for config in JIT_CONFIGS]

    def forward(operands):
        return [run_config(config, lhs, rhs) for config, (lhs, rhs) in zip(JIT_CONFIGS, operands)]

    for got, want in zip(fnbrrr.jit(forward)(operands), forward(operands)):
        assert_close_to(got, want)


def test_jit_of_channels_last_convolutions_matches_eager(monkeypatch):
    """The channels-last copy loops: whole (kernel column, features) runs, and per-cell runs
    when the kernel is dilated along its last axis."""
    monkeypatch.setattr(conv_kernels.strategy, "FORCE_STRATEGY", "im2col")
    x = RNG.standard_normal((2, 6, 7, 5)).astype(np.float32)
    w = RNG.standard_normal((3, 3, 5, 4)).astype(np.float32)
    layouts = ("NHWC", "HWIO", "NHWC")

    def f(x, w):
        return [conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=layouts),
                conv_general_dilated(x, w, (2, 1), "SAME", rhs_dilation=(1, 2),
                                     dimension_numbers=layouts)]

    text = fnbrrr.jit(f).lower(x, w).as_text()
    variants = set(re.findall(r"# (im2col_\w+)", text))
    runs, cells = (conv_kernels.IM2COL_VARIANTS["runs", False],
                   conv_kernels.IM2COL_VARIANTS["i", False])
    assert {runs, cells} <= variants, variants
    for got, want in zip(fnbrrr.jit(f)(x, w), f(x, w)):
        assert_close_to(got, want)


def test_jit_of_a_channels_last_input_gradient_matches_eager(monkeypatch):
    """gemm_gather into a channels-last output: the table is (positions, kernel x features)."""
    monkeypatch.setattr(conv_kernels.strategy, "FORCE_STRATEGY", "gemm_gather")
    x = RNG.standard_normal((2, 6, 7, 5)).astype(np.float32)
    w = RNG.standard_normal((3, 2, 5, 4)).astype(np.float32)

    def loss(x):
        out = conv_general_dilated(x, w, (1, 1), "SAME", rhs_dilation=(2, 1),
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jnp.sum(out * out)

    assert "image (X x I) @ kernel (I x K*O)" in fnbrrr.jit(fnbrrr.grad(loss)).lower(x).as_text()
    assert_close_to(fnbrrr.jit(fnbrrr.grad(loss))(x), fnbrrr.grad(loss)(x))


def test_jit_of_an_integer_convolution_uses_direct_loops():
    lhs = RNG.integers(-3, 4, (2, 3, 6, 6)).astype(np.int32)
    rhs = RNG.integers(-3, 4, (4, 3, 3, 3)).astype(np.int32)
    f = lambda a, b: conv_general_dilated(a, b, (1, 1), "SAME")  # noqa: E731
    assert "convolution strategy: direct" in fnbrrr.jit(f).lower(lhs, rhs).as_text()
    np.testing.assert_array_equal(np.asarray(fnbrrr.jit(f)(lhs, rhs)), np.asarray(f(lhs, rhs)))


def test_every_helper_and_dtype_gets_a_cache_index_of_its_own():
    """Variants of one wrapper body (the tile folds) and dtypes of one wrapper get distinct
    Numba cache indexes: writers of a shared index (pytest workers) can corrupt it."""
    from numba.core.caching import FunctionCache

    from fnbrrr.jit.conv_kernels import calls

    dtypes = ("float32", "float64")
    indexes = {FunctionCache(calls._with_own_cache_file(function, name, dtype))
               ._cache_file._index_name
               for name, (function, _) in calls._WRAPPERS.items() for dtype in dtypes}
    assert len(indexes) == len(dtypes) * len(calls._WRAPPERS)
    assert len([name for name in calls._WRAPPERS if name.startswith("tile_")]) == 12


def _conv_eqns(jaxpr):
    return [e for e in jaxpr.eqns if e.primitive.name == "conv_general_dilated"]


def test_w7_convolutions_lower_to_im2col_forward_and_gemm_gather_for_the_input_gradient():
    """The CNN of the W7 benchmark: which strategy each of its convolutions gets."""
    x = np.zeros((32, 1, 28, 28), np.float32)
    w1, w2 = np.zeros((16, 1, 3, 3), np.float32), np.zeros((32, 16, 3, 3), np.float32)

    def loss(w1, w2):
        h = jnp.maximum(conv_general_dilated(x, w1, (1, 1), "VALID"), 0.0)
        h = jnp.maximum(conv_general_dilated(h, w2, (1, 1), "VALID"), 0.0)
        return jnp.mean(h)

    eqns = _conv_eqns(fnbrrr.make_jaxpr(fnbrrr.grad(loss, argnums=(0, 1)))(w1, w2))

    def strategy(lhs_shape, rhs_shape):
        found = [conv_kernels.choose_strategy(e) for e in eqns
                 if (e.inputs[0].aval.shape, e.inputs[1].aval.shape) == (lhs_shape, rhs_shape)]
        assert len(found) == 1, (lhs_shape, rhs_shape, found)
        return found[0]

    assert strategy((32, 1, 28, 28), (16, 1, 3, 3)) == "im2col"  # conv1
    assert strategy((32, 16, 26, 26), (32, 16, 3, 3)) == "im2col"  # conv2
    assert strategy((32, 32, 24, 24), (32, 16, 3, 3)) == "gemm_gather"  # conv2's input grad
    assert strategy((32, 16, 26, 26), (32, 32, 24, 24)) == "im2col"  # conv2's kernel grad
    assert strategy((32, 1, 28, 28), (32, 16, 26, 26)) == "im2col"  # conv1's kernel grad


# --------------------------------------------------------------------------------------------
# Windowed reductions and pooling
# --------------------------------------------------------------------------------------------

WINDOW_CONFIGS = [
    ((5, 6), (2, 3), (1, 2), ((0, 0), (1, 1)), (1, 1), (1, 1)),
    ((7, 6), (3, 2), (2, 2), ((1, 2), (0, -1)), (2, 1), (1, 2)),
    ((2, 7, 6, 3), (1, 3, 3, 1), (1, 2, 2, 1), ((0, 0), (1, 1), (1, 1), (0, 0)), (1,) * 4,
     (1,) * 4),
]


def distinct_values(shape, dtype=np.float32):
    """No ties, so that max derivatives are well defined for finite differences."""
    n = int(np.prod(shape))
    return (RNG.permutation(n).reshape(shape) * 0.37 - n * 0.15).astype(dtype)


@pytest.mark.parametrize("kind", ["sum", "max"])
@pytest.mark.parametrize("config", WINDOW_CONFIGS)
def test_reduce_window_matches_direct_loops(config, kind):
    shape, window, strides, padding, base_dil, window_dil = config
    x = distinct_values(shape)
    computation, init = (lax.add, 0.0) if kind == "sum" else (lax.max, -np.inf)
    out = reduce_window(x, init, computation, window, strides, padding, base_dil, window_dil)
    expected = reference_window(x, kind, window, strides, padding, base_dil, window_dil)
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["sum", "max"])
@pytest.mark.parametrize("config", WINDOW_CONFIGS)
def test_reduce_window_derivatives_match_finite_differences(config, kind, x64):
    shape, window, strides, padding, base_dil, window_dil = config
    x = distinct_values(shape, np.float64)
    computation, init = (lax.add, 0.0) if kind == "sum" else (lax.max, -np.inf)
    check_grads(lambda a: reduce_window(a, init, computation, window, strides, padding,
                                        base_dil, window_dil), (x,), order=2)


def test_max_pool_gradient_goes_to_the_first_maximum_of_each_window():
    x = np.array([[1.0, 3.0, 3.0, 0.0], [3.0, 2.0, 0.0, 3.0]], np.float32)[None, :, :, None]
    grad = fnbrrr.grad(lambda a: jnp.sum(max_pool(a, (2, 2), (2, 2))))(x)
    np.testing.assert_array_equal(np.asarray(grad)[0, :, :, 0],
                                  [[0, 1, 1, 0], [0, 0, 0, 0]])


def test_pooling_helpers_follow_flax_semantics():
    x = np.arange(32, dtype=np.float32).reshape(2, 4, 4, 1)
    np.testing.assert_array_equal(np.asarray(max_pool(x, (2, 2), (2, 2)))[1, :, :, 0],
                                  [[21, 23], [29, 31]])
    np.testing.assert_allclose(np.asarray(avg_pool(x, (2, 2), (2, 2)))[0, :, :, 0],
                               [[2.5, 4.5], [10.5, 12.5]])
    # SAME padding: the corner window holds 4 cells, counted as 4 of 9 or as 9 of 9
    exact = avg_pool(x, (3, 3), padding="SAME", count_include_pad=False)
    padded = avg_pool(x, (3, 3), padding="SAME")
    np.testing.assert_allclose(float(exact[0, 0, 0, 0]), (0 + 1 + 4 + 5) / 4)
    np.testing.assert_allclose(float(padded[0, 0, 0, 0]), (0 + 1 + 4 + 5) / 9)
    assert max_pool(np.ones((5, 6, 3), np.float32), (2, 2)).shape == (4, 5, 3)  # no batch axis


def test_reduce_window_min_and_a_non_identity_init():
    x = distinct_values((6, 5))
    out = reduce_window(x, np.inf, lax.min, (2, 2), (1, 1), "VALID")
    expected = -reference_window(-x, "max", (2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1))
    np.testing.assert_allclose(np.asarray(out), expected)
    clipped = reduce_window(x, 0.0, lax.max, (2, 2), (1, 1), "VALID")
    np.testing.assert_allclose(np.asarray(clipped), np.maximum(
        reference_window(x, "max", (2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1)), 0.0))


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_pooling_vmaps_like_a_loop(pool):
    fn = max_pool if pool == "max" else avg_pool
    xs = distinct_values((3, 2, 6, 5, 2))

    def f(x):
        return jnp.sum(fn(x, (2, 3), (2, 1), "SAME") ** 2)

    got = fnbrrr.vmap(fnbrrr.value_and_grad(f))(xs)
    expected = [fnbrrr.value_and_grad(f)(x) for x in xs]
    np.testing.assert_allclose(np.asarray(got[0]), [float(v) for v, _ in expected], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(got[1]), np.stack([np.asarray(g) for _, g in expected]),
                               rtol=1e-5, atol=1e-5)


def test_pooling_under_jit_matches_eager_including_forward_mode():
    x = distinct_values((2, 7, 6, 3))
    t = RNG.standard_normal(x.shape).astype(np.float32)
    big = distinct_values((2, 2, 2, 5, 2, 2, 3))  # rank 7: generated loops, not the helpers

    def f(x, t, big):
        pooled = max_pool(x, (3, 3), (2, 2), "SAME")
        averaged = avg_pool(x, (2, 2), (1, 2), "VALID", count_include_pad=False)
        _, tangent = fnbrrr.jvp(lambda a: max_pool(a, (2, 2), (1, 1), "SAME"), (x,), (t,))
        deep = reduce_window(big, -np.inf, lax.max, (1, 1, 1, 2, 1, 1, 2), (1,) * 7, "VALID")
        return jnp.sum(pooled ** 2) + jnp.sum(jnp.sin(averaged)) + jnp.sum(deep ** 2), tangent

    step = fnbrrr.value_and_grad(f, argnums=(0, 2), has_aux=True)
    (value, tangent), grads = step(x, t, big)
    (jvalue, jtangent), jgrads = fnbrrr.jit(step)(x, t, big)
    np.testing.assert_allclose(float(jvalue), float(value), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(jtangent), np.asarray(tangent), rtol=1e-6)
    for got, want in zip(jgrads, grads):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)


# --- non-overlapping windows (tiles): the compiled fast path --------------------------------

# (shape, window == strides): NCHW 2x2 (the flagship's pools), NHWC, 3-D, global pooling over
# the last two axes, a window on the leading axis, and a rank-7 operand.
TILE_CONFIGS = [
    ((3, 4, 6, 8), (1, 1, 2, 2)),
    ((2, 6, 4, 5), (1, 3, 2, 1)),
    ((2, 3, 4, 4, 6), (1, 1, 2, 2, 3)),
    ((3, 2, 4, 5), (1, 1, 4, 5)),
    ((4, 6), (2, 3)),
    ((2, 1, 2, 2, 4, 2, 3), (1, 1, 1, 2, 2, 1, 3)),
]


def reference_tile_select(x, values, window, gather):
    """Per tile, the first maximum of x in window order (a NaN wins); then the tangent there
    (gather) or the cotangent added there (scatter)."""
    out_shape = tuple(n // w for n, w in zip(x.shape, window))
    out = np.zeros(out_shape if gather else x.shape)
    for o in itertools.product(*map(range, out_shape)):
        cells = [tuple(oa * w + ka for oa, w, ka in zip(o, window, k))
                 for k in itertools.product(*map(range, window))]
        first = cells[0]
        for cell in cells[1:]:
            if x[cell] > x[first] or (np.isnan(x[cell]) and not np.isnan(x[first])):
                first = cell
        if gather:
            out[o] = values[first]
        else:
            out[first] += values[o]
    return out


def tied_values(shape):
    """Few distinct values (many ties within a window) and a NaN."""
    x = RNG.integers(0, 3, shape).astype(np.float32)
    x.reshape(-1)[5] = np.nan
    return x


@pytest.mark.parametrize("shape, window", TILE_CONFIGS)
def test_tiled_pooling_under_jit_matches_direct_loops(shape, window):
    x = distinct_values(shape)
    no_pad = ((0, 0),) * len(shape)

    def f(x):
        return (reduce_window(x, -np.inf, lax.max, window, window, "VALID"),
                reduce_window(x, 0.0, lax.add, window, window, "VALID"))

    text = fnbrrr.jit(f).lower(x).as_text()
    if len(shape) <= 6:
        assert "# tile_reduce" in text and "# window_fold" not in text, text
    got_max, got_sum = fnbrrr.jit(f)(x)
    ones = (1,) * len(shape)
    np.testing.assert_allclose(np.asarray(got_max),
                               reference_window(x, "max", window, window, no_pad, ones, ones))
    np.testing.assert_allclose(np.asarray(got_sum),
                               reference_window(x, "sum", window, window, no_pad, ones, ones),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape, window", TILE_CONFIGS)
def test_tiled_max_pool_derivatives_under_jit_go_to_the_first_maximum(shape, window):
    """select_and_scatter_add (VJP) and select_and_gather_add (JVP) of tiled max pooling, with
    ties and a NaN, against direct loops."""
    x = tied_values(shape)
    out_shape = tuple(n // w for n, w in zip(shape, window))
    ct = RNG.standard_normal(out_shape).astype(np.float32)
    t = RNG.standard_normal(shape).astype(np.float32)

    def pool(a):
        return reduce_window(a, -np.inf, lax.max, window, window, "VALID")

    def derivatives(x, ct, t):
        return fnbrrr.vjp(pool, x)[1](ct)[0], fnbrrr.jvp(pool, (x,), (t,))[1]

    text = fnbrrr.jit(derivatives).lower(x, ct, t).as_text()
    if len(shape) <= 6:
        assert text.count("# tile_select") == 2, text
    grad, tangent = fnbrrr.jit(derivatives)(x, ct, t)
    np.testing.assert_allclose(np.asarray(grad), reference_tile_select(x, ct, window, False),
                               rtol=1e-6)
    np.testing.assert_allclose(np.asarray(tangent), reference_tile_select(x, t, window, True),
                               rtol=1e-6)


def test_tiled_pooling_of_integers_under_jit_matches_direct_loops():
    x = RNG.integers(-50, 50, (2, 3, 4, 6)).astype(np.int32)
    window, no_pad, ones = (1, 1, 2, 3), ((0, 0),) * 4, (1,) * 4

    def f(x):
        return (reduce_window(x, np.iinfo(np.int32).min, lax.max, window, window, "VALID"),
                reduce_window(x, 0, lax.add, window, window, "VALID"))

    got_max, got_sum = fnbrrr.jit(f)(x)
    np.testing.assert_array_equal(np.asarray(got_max),
                                  reference_window(x, "max", window, window, no_pad, ones, ones))
    np.testing.assert_array_equal(np.asarray(got_sum),
                                  reference_window(x, "sum", window, window, no_pad, ones, ones))


def test_jitted_tiled_max_pool_gradients_match_finite_differences(x64):
    x = distinct_values((2, 3, 4, 6), np.float64)

    def f(a):
        return reduce_window(a, -np.inf, lax.max, (1, 1, 2, 3), (1, 1, 2, 3), "VALID") ** 2

    check_grads(fnbrrr.jit(f), (x,), order=1)


def test_windows_that_do_not_tile_use_the_general_helper():
    x = distinct_values((2, 3, 6, 6))

    def f(x):
        overlap = reduce_window(x, -np.inf, lax.max, (1, 1, 3, 3), (1, 1, 2, 2), "VALID")
        padded = reduce_window(x[:, :, :5], -np.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2),
                               "SAME")
        ragged = reduce_window(x[:, :, :5], -np.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2),
                               "VALID")
        return overlap, padded, ragged

    text = fnbrrr.jit(f).lower(x).as_text()
    assert "# tile_reduce" not in text and text.count("# window_fold") == 3, text
    for got, want in zip(fnbrrr.jit(f)(x), f(x)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want))


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_channel_mismatch_names_both_feature_sizes():
    with pytest.raises(TypeError, match=r"channel mismatch: lhs has 3 input features.*expects 4"):
        conv_general_dilated(np.ones((1, 3, 5, 5)), np.ones((2, 4, 3, 3)), (1, 1), "VALID")
    with pytest.raises(TypeError, match="channel mismatch"):  # under jit too (trace time)
        fnbrrr.jit(lambda a, b: conv_general_dilated(a, b, (1, 1), "VALID"))(
            np.ones((1, 3, 5, 5)), np.ones((2, 4, 3, 3)))
    with pytest.raises(TypeError, match="feature_group_count 2"):
        conv_general_dilated(np.ones((1, 3, 5, 5)), np.ones((2, 1, 3, 3)), (1, 1), "VALID",
                             feature_group_count=2)


def test_a_kernel_larger_than_the_padded_input_is_an_error():
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv_general_dilated(np.ones((1, 1, 2, 4)), np.ones((1, 1, 3, 3)), (1, 1), "VALID")
    with pytest.raises(ValueError, match="dilated to 5"):
        conv_general_dilated(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), (1, 1), "VALID",
                             rhs_dilation=(2, 2))


def test_malformed_parameters_are_reported():
    x, w = np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3))
    with pytest.raises(TypeError, match="same rank"):
        conv_general_dilated(x, np.ones((1, 1, 3)), (1, 1), "VALID")
    with pytest.raises(TypeError, match="rhs layout 'OIH' must name 4 distinct axes"):
        conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NCHW", "OIH", "NCHW"))
    with pytest.raises(TypeError, match="must name the same spatial axes"):
        conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NCHW", "OIHX", "NCHW"))
    with pytest.raises(ValueError, match="one .low, high. pair per spatial axis"):
        conv_general_dilated(x, w, (1, 1), [(0, 0)])
    with pytest.raises(ValueError, match="padding must be 'SAME'"):
        conv_general_dilated(x, w, (1, 1), "FULL")
    with pytest.raises(ValueError, match="window_strides must be positive"):
        conv_general_dilated(x, w, (0, 1), "VALID")
    with pytest.raises(TypeError, match="same dtype"):
        conv_general_dilated(x.astype(np.float32), w.astype(np.int32), (1, 1), "VALID")


def test_reduce_window_errors():
    x = np.ones((4, 4), np.float32)
    with pytest.raises(NotImplementedError, match="lax.add, lax.max and lax.min"):
        reduce_window(x, 1.0, lax.mul, (2, 2), (1, 1), "VALID")
    with pytest.raises(NotImplementedError, match="init_value 0"):
        reduce_window(x, 1.0, lax.add, (2, 2), (1, 1), "VALID")
    with pytest.raises(ValueError, match="window .size 5, dilation 1. is larger"):
        reduce_window(x, 0.0, lax.add, (5, 1), (1, 1), "VALID")
    with pytest.raises(ValueError, match="need at least 3 axes"):
        max_pool(np.ones((4, 4)), (2, 2))


# --------------------------------------------------------------------------------------------
# Generated inputs for the registry tests (tests/test_primitive_rules.py)
# --------------------------------------------------------------------------------------------


def registry_cases(case, values, distinct) -> dict:
    """Hypothesis input generators for this family's primitives, in `tests/prim_cases.py`'s
    form. Passing prim_cases' `Case`, `_values` and `_distinct` in avoids importing it here:

        from test_convolution import registry_cases
        CASES.update(registry_cases(Case, _values, _distinct))

    Window cases for `window_max` have no padding or holes, so every max is finite.
    """
    from hypothesis import strategies as st

    def dilated(n, d):
        return 0 if n == 0 else (n - 1) * d + 1

    def place(logical_shape, spec):  # the array shape whose axis spec[i] is logical axis i
        shape = [0] * len(spec)
        for role, axis in enumerate(spec):
            shape[axis] = logical_shape[role]
        return tuple(shape)

    def conv(draw, rng, dtype):
        nsp = draw(st.integers(1, 2))
        fgc, bgc = draw(st.sampled_from([(1, 1), (1, 1), (2, 1), (1, 2)]))
        in_features, per_group = draw(st.integers(1, 2)), draw(st.integers(1, 2))
        batch = draw(st.integers(1, 2)) * bgc
        kernel = [draw(st.integers(1, 3)) for _ in range(nsp)]
        strides = tuple(draw(st.integers(1, 2)) for _ in range(nsp))
        lhs_dil = tuple(draw(st.integers(1, 2)) for _ in range(nsp))
        rhs_dil = tuple(draw(st.integers(1, 2)) for _ in range(nsp))
        sizes, padding = [], []
        for j in range(nsp):
            size, lo, hi = draw(st.integers(1, 4)), draw(st.integers(-1, 2)), draw(
                st.integers(-1, 2))
            short = dilated(kernel[j], rhs_dil[j]) - (dilated(size, lhs_dil[j]) + lo + hi)
            sizes.append(size)
            padding.append((lo, hi + max(short, 0)))
        specs = [tuple(draw(st.permutations(range(nsp + 2)))) for _ in range(3)]
        lhs = place((batch, in_features * fgc, *sizes), specs[0])
        rhs = place((per_group * fgc * bgc, in_features, *kernel), specs[1])
        params = dict(window_strides=strides, padding=tuple(padding), lhs_dilation=lhs_dil,
                      rhs_dilation=rhs_dil, dimension_numbers=ConvDimensionNumbers(*specs),
                      feature_group_count=fgc, batch_group_count=bgc)
        return case([values(rng, lhs, dtype), values(rng, rhs, dtype)], params, diff=(0, 1))

    def window_params(draw, shape, padded):
        fields = {k: [] for k in ("window_dimensions", "window_strides", "padding",
                                  "base_dilation", "window_dilation")}
        for n in shape:
            w, d, b = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
            lo, hi = (draw(st.integers(0, 1)), draw(st.integers(0, 1))) if padded else (0, 0)
            b = b if padded else 1
            if dilated(n, b) + lo + hi < dilated(w, d):
                w = 1
            for key, value in zip(fields, (w, draw(st.integers(1, 2)), (lo, hi), b, d)):
                fields[key].append(value)
        return {k: tuple(v) for k, v in fields.items()}

    def window_shape(draw):
        return tuple(draw(st.integers(1, 4)) for _ in range(draw(st.integers(1, 3))))

    def window(kind):
        def build(draw, rng, dtype):
            shape = window_shape(draw)
            x = distinct(rng, shape, dtype) if kind == "max" else values(rng, shape, dtype)
            return case([x], window_params(draw, shape, padded=kind == "sum"), diff=(0,))

        return build

    def select(gather):
        def build(draw, rng, dtype):
            shape = window_shape(draw)
            params = window_params(draw, shape, padded=True)
            operand = distinct(rng, shape, dtype)
            windows = core.primitives["window_max"].impl(operand, **params).shape
            return case([values(rng, shape if gather else windows, dtype), operand], params,
                        diff=(0,))

        return build

    return {"conv_general_dilated": conv, "window_sum": window("sum"),
            "window_max": window("max"), "select_and_gather_add": select(True),
            "select_and_scatter_add": select(False)}
