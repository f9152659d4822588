"""Generated inputs for every primitive in the registry, shared by the systematic tests.

`CASES[name](draw, rng, dtype)` returns a `Case`: positional operands (NumPy arrays), the
primitive's params, and which operands are differentiable. Values avoid non-smooth points
(ties, integers for floor, zero for abs...) so finite differences are meaningful. Primitives
that take functions or programs as parameters (higher-order ones: jit, control flow, custom
rules) are exercised by their own test files and listed in `TESTED_ELSEWHERE`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st


@dataclass
class Case:
    args: list
    params: dict = field(default_factory=dict)
    diff: tuple = ()  # indices of float operands the primitive is differentiable in


# Higher-order primitives (their params hold programs or Python callables) are tested in their
# own test files, where meaningful programs can be built: listed here so nothing is skipped
# silently.
TESTED_ELSEWHERE = {
    "custom_jvp_call": "tests/test_custom_derivatives.py",
    "custom_vjp_call": "tests/test_custom_derivatives.py",
    "checkpoint": "tests/test_custom_derivatives.py",
    "pjit": "tests/test_jit.py",
    "threefry2x32": "tests/test_random.py",  # two outputs: its own vmap/jit tests
    "conv_general_dilated": "tests/test_convolution.py",
    "window_sum": "tests/test_convolution.py",
    "window_max": "tests/test_convolution.py",
    "select_and_gather_add": "tests/test_convolution.py",
    "select_and_scatter_add": "tests/test_convolution.py",
    "cond": "tests/test_control_flow.py",
    "scan": "tests/test_control_flow.py",
    "while": "tests/test_control_flow.py",
    "slogdet": "tests/test_linalg.py",  # two outputs: its own vmap/JVP tests
}


def shapes(draw, min_dims=0, max_dims=3, max_side=4):
    ndim = draw(st.integers(min_dims, max_dims))
    return tuple(draw(st.integers(1, max_side)) for _ in range(ndim))


def _values(rng, shape, dtype, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, size=shape).astype(dtype)


def _away_from(rng, shape, dtype, points_step=1.0, offset=0.0, margin=0.2, lo=-3, hi=3):
    """Values at least `margin` away from offset + k * points_step."""
    base = rng.integers(lo, hi, size=shape).astype(np.float64) * points_step + offset
    frac = rng.uniform(margin, points_step - margin, size=shape)
    return (base + frac).astype(dtype)


def _distinct(rng, shape, dtype, spread=4.0):
    """Values without ties (spaced by at least 0.1), for max/min/argmax derivatives."""
    n = int(np.prod(shape, dtype=np.int64))
    vals = rng.permutation(n) * (spread / max(n, 1)) + 0.1 * rng.uniform(0.0, 0.5, size=n)
    vals = vals - spread / 2
    return vals.reshape(shape).astype(dtype)


def _second_operand_shape(draw, shape):
    return () if shape and draw(st.booleans()) and draw(st.booleans()) else shape


def unary(lo=-2.0, hi=2.0, smooth=True):
    def build(draw, rng, dtype):
        return Case([_values(rng, shapes(draw), dtype, lo, hi)], diff=(0,) if smooth else ())

    return build


def unary_away_from_zero(draw, rng, dtype):
    x = _values(rng, shapes(draw), dtype, 0.3, 2.0) * rng.choice([-1, 1])
    return Case([x.astype(dtype)], diff=(0,))


def unary_away_from_integers(offset=0.0):
    def build(draw, rng, dtype):
        return Case([_away_from(rng, shapes(draw), dtype, offset=offset)], diff=(0,))

    return build


def binary(lo=-2.0, hi=2.0, lo2=None, hi2=None, swap=True):
    def build(draw, rng, dtype):
        shape = shapes(draw)
        other = _second_operand_shape(draw, shape)
        x = _values(rng, shape, dtype, lo, hi)
        y = _values(rng, other, dtype, lo if lo2 is None else lo2, hi if hi2 is None else hi2)
        if swap and draw(st.booleans()):
            x, y = y, x
        return Case([x, y], diff=(0, 1))

    return build


def binary_nonzero_divisor(draw, rng, dtype):
    shape = shapes(draw)
    x = _values(rng, shape, dtype)
    y = (_values(rng, _second_operand_shape(draw, shape), dtype, 0.5, 2.0)
         * rng.choice([-1, 1])).astype(dtype)
    return Case([x, y], diff=(0, 1))


def rem_case(draw, rng, dtype):
    shape = shapes(draw)
    y = (_values(rng, shape, dtype, 0.7, 1.5) * rng.choice([-1, 1])).astype(dtype)
    q = _away_from(rng, shape, np.float64, margin=0.15)
    return Case([(q * y).astype(dtype), y], diff=(0, 1))


def minmax_case(draw, rng, dtype):
    shape = shapes(draw)
    x = _distinct(rng, shape, dtype)
    y = (x + rng.choice([-0.3, 0.3], size=shape)).astype(dtype)
    return Case([x, y], diff=(0, 1))


def compare_case(draw, rng, dtype):
    shape = shapes(draw)
    x = rng.integers(-2, 3, size=shape).astype(dtype)
    y = rng.integers(-2, 3, size=_second_operand_shape(draw, shape)).astype(dtype)
    return Case([x, y])


def logical_binary(draw, rng, dtype):
    shape = shapes(draw)
    if draw(st.booleans()):
        return Case([rng.random(shape) < 0.5, rng.random(shape) < 0.5])
    return Case([rng.integers(-8, 8, size=shape).astype(np.int32),
                 rng.integers(-8, 8, size=shape).astype(np.int32)])


def not_case(draw, rng, dtype):
    shape = shapes(draw)
    if draw(st.booleans()):
        return Case([rng.random(shape) < 0.5])
    return Case([rng.integers(-8, 8, size=shape).astype(np.int32)])


def is_finite_case(draw, rng, dtype):
    x = _values(rng, shapes(draw), dtype)
    flat = x.reshape(-1)
    if flat.size:
        flat[rng.integers(0, flat.size)] = rng.choice([np.inf, -np.inf, np.nan])
    return Case([x])


def integer_pow_case(draw, rng, dtype):
    y = draw(st.integers(-2, 4))
    x = (_values(rng, shapes(draw), dtype, 0.5, 1.5) * rng.choice([-1, 1])).astype(dtype)
    return Case([x], {"y": y}, diff=(0,))


def select_n_case(draw, rng, dtype):
    shape = shapes(draw)
    n = draw(st.sampled_from([2, 2, 3]))
    which_shape = () if draw(st.booleans()) else shape
    if n == 2:
        which = rng.random(which_shape) < 0.5
    else:
        which = rng.integers(0, n, size=which_shape).astype(np.int32)
    cases = [_values(rng, shape, dtype) for _ in range(n)]
    return Case([which, *cases], diff=tuple(range(1, n + 1)))


def convert_case(draw, rng, dtype):
    new = draw(st.sampled_from([np.float32, np.int32, np.bool_, np.float64]))
    x = _values(rng, shapes(draw), dtype, -5, 5)
    diff = (0,) if np.dtype(new).kind == "f" else ()
    return Case([x], {"new_dtype": np.dtype(new), "weak_type": False}, diff=diff)


def broadcast_in_dim_case(draw, rng, dtype):
    out_shape = shapes(draw, 0, 4)
    dims = tuple(i for i in range(len(out_shape)) if draw(st.booleans()))
    operand_shape = tuple(out_shape[d] if draw(st.booleans()) else 1 for d in dims)
    return Case([_values(rng, operand_shape, dtype)],
                {"shape": out_shape, "broadcast_dimensions": dims}, diff=(0,))


def reshape_case(draw, rng, dtype):
    shape = shapes(draw, 0, 3)
    size = int(np.prod(shape, dtype=np.int64))
    factors = [f for f in range(1, size + 1) if size % f == 0]
    first = draw(st.sampled_from(factors))
    new = (first, size // first) if draw(st.booleans()) else (size,)
    return Case([_values(rng, shape, dtype)], {"new_sizes": new, "dimensions": None}, diff=(0,))


def transpose_case(draw, rng, dtype):
    shape = shapes(draw)
    perm = tuple(draw(st.permutations(range(len(shape)))))
    return Case([_values(rng, shape, dtype)], {"permutation": perm}, diff=(0,))


def squeeze_case(draw, rng, dtype):
    shape = list(shapes(draw, 0, 3))
    where = draw(st.integers(0, len(shape)))
    shape.insert(where, 1)
    return Case([_values(rng, tuple(shape), dtype)], {"dimensions": (where,)}, diff=(0,))


def concatenate_case(draw, rng, dtype):
    shape = shapes(draw, 1, 3)
    axis = draw(st.integers(0, len(shape) - 1))
    n = draw(st.integers(1, 3))
    parts = []
    for _ in range(n):
        s = list(shape)
        s[axis] = draw(st.integers(1, 3))
        parts.append(_values(rng, tuple(s), dtype))
    return Case(parts, {"dimension": axis}, diff=tuple(range(n)))


def pad_case(draw, rng, dtype):
    shape = shapes(draw, 1, 3)
    config = []
    for s in shape:
        interior = draw(st.integers(0, 2))
        lo = draw(st.integers(-1, 2))
        hi = draw(st.integers(-1, 2))
        if s + max(s - 1, 0) * interior + lo + hi < 0:
            lo = hi = 0
        config.append((lo, hi, interior))
    return Case([_values(rng, shape, dtype), np.asarray(rng.uniform(-1, 1), dtype)],
                {"padding_config": tuple(config)}, diff=(0, 1))


def slice_case(draw, rng, dtype):
    shape = shapes(draw, 1, 3)
    start, limit, strides = [], [], []
    for s in shape:
        a = draw(st.integers(0, s - 1))
        b = draw(st.integers(a, s))
        start.append(a)
        limit.append(b)
        strides.append(draw(st.integers(1, 2)))
    return Case([_values(rng, shape, dtype)], {"start_indices": tuple(start),
                                               "limit_indices": tuple(limit),
                                               "strides": tuple(strides)}, diff=(0,))


def rev_case(draw, rng, dtype):
    shape = shapes(draw, 1, 3)
    dims = tuple(d for d in range(len(shape)) if draw(st.booleans()))
    return Case([_values(rng, shape, dtype)], {"dimensions": dims}, diff=(0,))


def iota_case(draw, rng, dtype):
    shape = shapes(draw, 1, 3)
    return Case([], {"dtype": np.dtype(np.int32), "shape": shape,
                     "dimension": draw(st.integers(0, len(shape) - 1))})


def _axes(draw, ndim):
    return tuple(a for a in range(ndim) if draw(st.booleans()))


def reduce_case(values="uniform", nonempty=True, diff=True):
    def build(draw, rng, dtype):
        shape = shapes(draw, 1, 3)
        if values == "distinct":
            x = _distinct(rng, shape, dtype)
        elif values == "bool":
            x = rng.random(shape) < 0.5
        elif values == "positive":
            x = _values(rng, shape, dtype, 0.5, 1.5)
        else:
            x = _values(rng, shape, dtype)
        return Case([x], {"axes": _axes(draw, len(shape))}, diff=(0,) if diff else ())

    return build


def arg_case(draw, rng, dtype):
    shape = shapes(draw, 1, 3)
    x = rng.integers(-2, 3, size=shape).astype(dtype)  # ties: first occurrence wins
    return Case([x], {"axis": draw(st.integers(0, len(shape) - 1)),
                      "index_dtype": np.dtype(np.int32)})


def argsort_case(draw, rng, dtype):
    shape = shapes(draw, 1, 3)
    x = rng.integers(-2, 3, size=shape).astype(dtype)  # ties: the sort is stable
    return Case([x], {"axis": draw(st.integers(0, len(shape) - 1)),
                      "index_dtype": np.dtype(np.int32)})


def dot_general_case(draw, rng, dtype):
    n_batch, n_contract = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    n_lfree, n_rfree = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    side = lambda: draw(st.integers(1, 3))  # noqa: E731
    batch = [side() for _ in range(n_batch)]
    contract = [side() for _ in range(n_contract)]
    lfree = [side() for _ in range(n_lfree)]
    rfree = [side() for _ in range(n_rfree)]
    # logical layouts: lhs = batch + lfree + contract, rhs = batch + contract + rfree; permute
    lhs_roles = [("b", i) for i in range(n_batch)] + [("f", i) for i in range(n_lfree)] + [
        ("c", i) for i in range(n_contract)]
    rhs_roles = [("b", i) for i in range(n_batch)] + [("c", i) for i in range(n_contract)] + [
        ("g", i) for i in range(n_rfree)]
    lhs_roles = draw(st.permutations(lhs_roles))
    rhs_roles = draw(st.permutations(rhs_roles))
    size = {"b": batch, "c": contract, "f": lfree, "g": rfree}
    lhs_shape = tuple(size[k][i] for k, i in lhs_roles)
    rhs_shape = tuple(size[k][i] for k, i in rhs_roles)
    lc = tuple(lhs_roles.index(("c", i)) for i in range(n_contract))
    rc = tuple(rhs_roles.index(("c", i)) for i in range(n_contract))
    lb = tuple(lhs_roles.index(("b", i)) for i in range(n_batch))
    rb = tuple(rhs_roles.index(("b", i)) for i in range(n_batch))
    return Case([_values(rng, lhs_shape, dtype), _values(rng, rhs_shape, dtype)],
                {"dimension_numbers": ((lc, rc), (lb, rb)), "preferred_element_type": None},
                diff=(0, 1))


def _gather_setup(draw, rng, dtype, allow_oob):
    shape = shapes(draw, 1, 3)
    axes = tuple(a for a in range(len(shape)) if draw(st.booleans())) or (0,)
    axes = tuple(draw(st.permutations(axes)))
    batch = shapes(draw, 0, 2, 3)
    cols = []
    for a in axes:
        hi = shape[a] + (2 if allow_oob else 0)
        lo = -2 if allow_oob else 0
        cols.append(rng.integers(lo, hi, size=batch))
    indices = np.stack(cols, axis=-1).astype(np.int32)
    return shape, axes, batch, indices


def gather_case(draw, rng, dtype):
    shape, axes, batch, indices = _gather_setup(draw, rng, dtype, allow_oob=draw(st.booleans()))
    return Case([_values(rng, shape, dtype), indices], {"axes": axes}, diff=(0,))


def scatter_case(mode_choices=("clip", "drop"), unique=False):
    def build(draw, rng, dtype):
        shape, axes, batch, indices = _gather_setup(draw, rng, dtype,
                                                    allow_oob=draw(st.booleans()))
        if unique:  # scatter (set) with repeated indices has no defined winner
            flat = indices.reshape(-1, len(axes))
            _, first = np.unique(flat, axis=0, return_index=True)
            indices = flat[np.sort(first)]
            batch = (indices.shape[0],)
        rest = tuple(s for i, s in enumerate(shape) if i not in axes)
        updates = _values(rng, batch + rest, dtype, 0.5, 1.5)
        mode = draw(st.sampled_from(mode_choices))
        if unique and mode == "clip":
            mode = "drop"
        return Case([_values(rng, shape, dtype, 0.5, 1.5), indices, updates],
                    {"axes": axes, "mode": mode}, diff=(0, 2))

    return build


def dynamic_slice_case(draw, rng, dtype):
    shape = shapes(draw, 1, 3)
    sizes = tuple(draw(st.integers(0, s)) for s in shape)
    starts = [np.asarray(draw(st.integers(-1, s + 1)), np.int32) for s in shape]
    return Case([_values(rng, shape, dtype), *starts], {"slice_sizes": sizes}, diff=(0,))


def dynamic_update_slice_case(draw, rng, dtype):
    shape = shapes(draw, 1, 3)
    sizes = tuple(draw(st.integers(0, s)) for s in shape)
    starts = [np.asarray(draw(st.integers(-1, s + 1)), np.int32) for s in shape]
    return Case([_values(rng, shape, dtype), _values(rng, sizes, dtype), *starts], {},
                diff=(0, 1))


def _well_conditioned(draw, rng, dtype):
    """A stack of square matrices dominated by their diagonal: far from singular, so finite
    differences of solve/det/cofactors are meaningful."""
    batch = tuple(draw(st.integers(1, 2)) for _ in range(draw(st.integers(0, 1))))
    n = draw(st.integers(1, 4))
    sign = rng.choice([-1.0, 1.0], size=batch + (n, 1))  # some determinants negative
    a = rng.uniform(-0.5, 0.5, size=batch + (n, n)) + n * np.eye(n) * sign
    return a.astype(dtype), batch, n


def solve_case(draw, rng, dtype):
    a, batch, n = _well_conditioned(draw, rng, dtype)
    b = _values(rng, batch + (n, draw(st.integers(1, 3))), dtype)
    return Case([a, b], {}, diff=(0, 1))


def square_matrix_case(draw, rng, dtype):
    return Case([_well_conditioned(draw, rng, dtype)[0]], {}, diff=(0,))


CASES = {
    "neg": unary(), "exp": unary(), "log": unary(0.3, 3.0), "log1p": unary(-0.5, 2.0),
    "expm1": unary(), "sin": unary(), "cos": unary(), "tan": unary(-1.2, 1.2),
    "tanh": unary(), "sqrt": unary(0.3, 3.0), "rsqrt": unary(0.3, 3.0), "logistic": unary(-4, 4),
    "erf": unary(), "square": unary(), "abs": unary_away_from_zero, "sign": unary_away_from_zero,
    "floor": unary_away_from_integers(), "ceil": unary_away_from_integers(),
    "round": unary_away_from_integers(offset=0.5), "is_finite": is_finite_case,
    "not": not_case, "integer_pow": integer_pow_case,
    "add": binary(), "sub": binary(), "mul": binary(), "div": binary_nonzero_divisor,
    "rem": rem_case, "pow": binary(0.5, 2.0, -1.5, 1.5, swap=False), "max": minmax_case,
    "min": minmax_case,
    "atan2": binary(0.3, 2.0), "and": logical_binary, "or": logical_binary,
    "xor": logical_binary, "eq": compare_case, "ne": compare_case, "lt": compare_case,
    "le": compare_case, "gt": compare_case, "ge": compare_case, "select_n": select_n_case,
    "convert_element_type": convert_case,
    "broadcast_in_dim": broadcast_in_dim_case, "reshape": reshape_case,
    "transpose": transpose_case, "squeeze": squeeze_case, "concatenate": concatenate_case,
    "pad": pad_case, "slice": slice_case, "rev": rev_case, "iota": iota_case,
    "reduce_sum": reduce_case(), "reduce_max": reduce_case("distinct"),
    "reduce_min": reduce_case("distinct"), "reduce_prod": reduce_case("positive"),
    "reduce_and": reduce_case("bool", diff=False), "reduce_or": reduce_case("bool", diff=False),
    "argmax": arg_case, "argmin": arg_case, "argsort": argsort_case,
    "dot_general": dot_general_case,
    "gather": gather_case, "scatter_add": scatter_case(),
    "scatter": scatter_case(unique=True), "scatter_mul": scatter_case(),
    "dynamic_slice": dynamic_slice_case, "dynamic_update_slice": dynamic_update_slice_case,
    "stop_gradient": unary(),
    "solve": solve_case, "det": square_matrix_case, "cofactors": square_matrix_case,
}


@st.composite
def primitive_case(draw, name: str, dtype=np.float32) -> Case:
    """A hypothesis strategy for one valid input of primitive `name`."""
    seed = draw(st.integers(0, 2**32 - 1))
    return CASES[name](draw, np.random.default_rng(seed), np.dtype(dtype))
