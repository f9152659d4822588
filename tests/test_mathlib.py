"""Tests for fnbrrr/jit/mathlib.py: accuracy in ulps against NumPy, special values, dtypes,
vectorisation of a loop that calls a mathlib function, and Numba's disk cache across processes.

References are computed one precision up and rounded to the tested dtype: NumPy's float64
functions for float32 results, NumPy's long double (x87 80-bit) for float64 results, and
`math.erf` where NumPy has no erf. The exhaustive check of every float32 (marked slow, about
15 minutes) compares against libm's float64 functions rounded to float32.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys

import numba
import numpy as np
import pytest

from fnbrrr.jit import mathlib
from fnbrrr.jit.mathlib import (
    SCALAR_MATH,
    _bitcast_f32_to_i32,  # for the exhaustive test
    _bitcast_i32_to_f32,
    exp_f32,
    log_f32,
    sin_f32,
    tanh_f32,
)

PRIMITIVES = ["exp", "log", "log1p", "expm1", "tanh", "logistic", "sin", "cos", "erf"]

# Max ulps allowed; the module docstring quotes the same numbers. The float32 ones are the
# maxima over all 2**32 inputs (test_every_float32) on a CPU with FMA.
MAX_ULPS = {
    "float32": dict(exp=1, log=1, log1p=1, expm1=1, tanh=5, logistic=2, sin=2, cos=2, erf=1),
    "float64": dict(exp=1, log=1, log1p=2, expm1=2, tanh=3, logistic=2, sin=1, cos=1, erf=1),
}


def ulp_distance(a, b) -> np.ndarray:
    """Elementwise distance between two float arrays of one dtype in units in the last place.

    Counts the representable floats between a and b (so the distance across 0 adds both sides,
    and +0.0 and -0.0 are 0 apart); equal infinities are 0 apart, two NaNs are 0 apart, and a
    NaN against a number is inf. Returned as float64 so that any distance fits.
    """
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.dtype in (np.float32, np.float64), (a.dtype, b.dtype)
    int_type = np.int32 if a.dtype == np.float32 else np.int64
    magnitude = np.iinfo(int_type).max

    def ordinal(v):  # the float's position on the number line, as a signed integer
        bits = v.view(int_type).astype(np.int64)
        return np.where(bits < 0, -(bits & magnitude), bits)

    oa, ob = ordinal(a), ordinal(b)
    same_side = (oa >= 0) == (ob >= 0)
    with np.errstate(over="ignore"):  # only in the branch np.where discards
        across = np.abs(oa.astype(np.float64)) + np.abs(ob.astype(np.float64))
        distance = np.where(same_side, np.abs(oa - ob).astype(np.float64), across)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    return np.where(nan_a & nan_b, 0.0, np.where(nan_a | nan_b, np.inf, distance))


def test_ulp_distance():
    f = np.float32
    one_up = np.nextafter(f(1), f(2))
    assert ulp_distance(np.array([f(1)]), np.array([one_up]))[0] == 1
    assert ulp_distance(np.array([f(0.0)]), np.array([f(-0.0)]))[0] == 0
    tiny = np.array([np.float32(1e-45)])
    assert ulp_distance(tiny, -tiny)[0] == 2
    assert ulp_distance(np.array([np.inf], f), np.array([np.inf], f))[0] == 0
    assert ulp_distance(np.array([np.nan], f), np.array([np.nan], f))[0] == 0
    assert ulp_distance(np.array([np.nan], f), np.array([1.0], f))[0] == np.inf
    big = np.array([np.finfo(np.float64).max])
    assert ulp_distance(big, -big)[0] > 1e18


# --------------------------------------------------------------------------------------------
# Running a mathlib function the way generated kernels do: inside a compiled loop
# --------------------------------------------------------------------------------------------


@numba.njit(error_model="numpy")
def _apply(function, x, out):
    for i in range(x.size):
        out[i] = function(x[i])


def run(name: str, x: np.ndarray) -> np.ndarray:
    fn = SCALAR_MATH[(name, x.dtype.name)]
    out = np.empty_like(x)
    _apply(fn, x, out)
    return out


_erf = np.vectorize(math.erf, otypes=[np.float64])


def reference(name: str, x: np.ndarray) -> np.ndarray:
    """The function one precision up, rounded to x's dtype."""
    wide = x.astype(np.float64 if x.dtype == np.float32 else np.longdouble)
    with np.errstate(all="ignore"):
        if name == "logistic":
            value = 1 / (1 + np.exp(-wide))
        elif name == "erf":
            value = _erf(x.astype(np.float64))  # libm erf, correctly rounded in practice
        else:
            value = getattr(np, name)(wide)
        return value.astype(x.dtype)


def special_values(dtype) -> np.ndarray:
    """Zeros, infinities, NaN, the subnormal and overflow edges, and points where branches meet."""
    info = np.finfo(dtype)
    ordinary = [0.0, 0.5, 1.0, 2.0, np.pi / 4, np.pi / 2, np.pi, 1e-3, 1e-10, 1e-30, 2.0**24, 1e30]
    branch_points = [0.625, 0.875, 3.9, 3.95, 4.0, 9.0, 10.0, 20.0, 40.0]
    overflow = [88.72, 88.7228, 88.723, 89.0, 103.97, 104.0, 709.78, 710.0, 745.13, 746.0]
    edges = [info.tiny, info.smallest_subnormal, info.max, np.inf, np.nan, info.eps]
    values = np.array(ordinary + branch_points + overflow + edges, dtype=dtype)
    values = np.concatenate([values, -values])
    with np.errstate(over="ignore"):
        neighbours = [np.nextafter(values, 0), np.nextafter(values, 2 * values)]
    return np.concatenate([values, *neighbours]).astype(dtype)


def inputs(dtype, count: int = 100_000) -> np.ndarray:
    """Every exponent (random bit patterns), the usual ranges densely, and the special values."""
    rng = np.random.default_rng(1)
    int_type = np.int32 if dtype == np.float32 else np.int64
    info = np.iinfo(int_type)
    bits = rng.integers(info.min, info.max, count, dtype=int_type, endpoint=True).view(dtype)
    parts = [bits[np.isfinite(bits)]]
    for low, high in [(-1, 1), (-5, 5), (-100, 100), (-1e-3, 1e-3), (-1, 0)]:
        parts.append(rng.uniform(low, high, count // 5).astype(dtype))
    log_uniform = np.exp(rng.uniform(-80, 80, count // 5)) * rng.choice([-1, 1], count // 5)
    parts.append(log_uniform.astype(dtype))
    parts.append(special_values(dtype))
    return np.concatenate(parts)


INPUTS = {dtype: inputs(dtype) for dtype in (np.float32, np.float64)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", PRIMITIVES)
def test_max_ulp_error(name, dtype):
    x = INPUTS[np.dtype(dtype).type]
    got, want = run(name, x), reference(name, x)
    distance = ulp_distance(got, want)
    worst = int(np.argmax(distance))
    assert distance[worst] <= MAX_ULPS[dtype][name], (
        f"{name}_{dtype}: {distance[worst]} ulps at x={x[worst]!r}: got {got[worst]!r}, "
        f"want {want[worst]!r}"
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", PRIMITIVES)
def test_special_values_match_numpy(name, dtype):
    """Exactly NumPy's result (to the bit, signed zeros included) at every special value,
    except where both are finite and nonzero, which must be within the ulp bound."""
    x = special_values(np.dtype(dtype).type)
    got, want = run(name, x), reference(name, x)
    exact = ~np.isfinite(want) | (want == 0) | ~np.isfinite(x)
    signed = exact & ~np.isnan(want)  # a NaN's sign bit means nothing
    np.testing.assert_array_equal(np.signbit(got[signed]), np.signbit(want[signed]))
    np.testing.assert_array_equal(got[exact], want[exact])
    assert ulp_distance(got, want).max() <= MAX_ULPS[dtype][name]


@pytest.mark.parametrize("name", ["sin", "cos"])
def test_fast_trig_below_its_limit(name):
    fast = getattr(mathlib, f"{name}_fast_f32")
    x = INPUTS[np.float32]
    inside = np.abs(x) < 2.0**21
    got = np.empty_like(x)
    _apply(fast, x, got)
    assert ulp_distance(got[inside], reference(name, x[inside])).max() <= 2
    assert np.isnan(got[~inside]).all()  # inf, nan and |x| >= 2**21: NaN, never a wrong number
    assert np.signbit(fast(np.float32(-0.0))) == (name == "sin")


def assert_same_bits(a: np.ndarray, b: np.ndarray) -> None:
    """Bit-for-bit equality of two float32 arrays (tells -0.0 from 0.0)."""
    np.testing.assert_array_equal(a.view(np.int32), b.view(np.int32))


def test_tanh_is_odd_bounded_and_exact_where_tanh_rounds_to_x_or_1():
    """The rational tanh has no special cases: these properties come from its arithmetic."""
    x = INPUTS[np.float32]
    x = x[~np.isnan(x)]
    got = run("tanh", x)
    assert_same_bits(run("tanh", -x), -got)
    assert np.abs(got).max() <= 1.0
    tiny = np.concatenate([x[np.abs(x) < 2.0**-12], [np.float32(2.0**-12)]])
    assert_same_bits(run("tanh", tiny), tiny)  # subnormals and -0.0 included
    assert np.isnan(run("tanh", np.array([np.nan], np.float32))[0])
    clamp = mathlib._TANH_CLAMP_F32
    assert np.float32(np.tanh(np.float64(clamp))) == 1.0  # so clamping loses nothing
    at_and_above = x[np.abs(x) >= clamp]
    np.testing.assert_array_equal(run("tanh", at_and_above), np.sign(at_and_above))


def test_tanh_coefficients_are_reproduced_by_their_fit():
    p, q = mathlib._fit_tanh_f32()
    assert p == (mathlib._TANH_P1, mathlib._TANH_P2, mathlib._TANH_P3, mathlib._TANH_P4)
    assert q == tuple(getattr(mathlib, f"_TANH_Q{k}") for k in range(1, 5))


def test_named_special_values():
    f = np.float32
    assert exp_f32(f(89.0)) == np.inf and exp_f32(f(-104.0)) == 0.0
    assert exp_f32(f(-np.inf)) == 0.0 and np.isnan(exp_f32(f(np.nan)))
    assert log_f32(f(0.0)) == -np.inf and np.isnan(log_f32(f(-1.0)))
    assert log_f32(f(np.inf)) == np.inf
    assert tanh_f32(f(1e30)) == 1.0 and tanh_f32(f(-np.inf)) == -1.0
    assert np.isnan(sin_f32(f(np.inf)))
    assert mathlib.logistic_f32(f(-1e30)) == 0.0 and mathlib.logistic_f32(f(1e30)) == 1.0
    assert mathlib.log1p_f32(f(-1.0)) == -np.inf and np.isnan(mathlib.log1p_f32(f(-2.0)))
    assert mathlib.expm1_f32(f(-np.inf)) == -1.0 and mathlib.erf_f32(f(np.inf)) == 1.0


# --------------------------------------------------------------------------------------------
# The table, dtypes, vectorisation, caching
# --------------------------------------------------------------------------------------------


def test_scalar_math_table_covers_primitives_by_name():
    assert set(SCALAR_MATH) == {(p, d) for p in PRIMITIVES for d in ("float32", "float64")}
    for (primitive, dtype), fn in SCALAR_MATH.items():
        suffix = {"float32": "f32", "float64": "f64"}[dtype]
        # The code generator imports a function by its __name__.
        assert fn.__name__ == f"{primitive}_{suffix}"
        assert getattr(mathlib, fn.__name__) is fn and fn.__name__ in mathlib.__all__


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_is_preserved(dtype):
    numba_type = getattr(numba.types, dtype)
    for (_, table_dtype), fn in SCALAR_MATH.items():
        if table_dtype == dtype:
            fn.compile((numba_type,))
            assert fn.overloads[(numba_type,)].signature.return_type == numba_type, fn.__name__
            out = run(fn.__name__.split("_")[0], np.ones(3, dtype))
            assert out.dtype == np.dtype(dtype)


# Not cached, so that its assembly can be inspected; Numba's default error_model on purpose:
# a mathlib function must vectorise whatever the caller's flags.
@numba.njit
def _tanh_loop(x, out):
    for i in range(x.size):
        out[i] = tanh_f32(x[i])


def test_loop_vectorises():
    x = np.linspace(-5, 5, 64, dtype=np.float32)
    out = np.empty_like(x)
    _tanh_loop(x, out)
    np.testing.assert_array_equal(out, run("tanh", x))
    asm = _tanh_loop.inspect_asm(_tanh_loop.signatures[0])
    packed = re.findall(r"\bv(?:fmadd\w*|mul|add|div)ps\s+[^\n]*%[yz]mm", asm)
    assert len(packed) >= 8, "no packed float32 arithmetic: the loop was not vectorised"
    calls = re.findall(r"call\w*\s+\S*(?:tanh|exp)", asm)
    assert not calls, f"math calls left in the loop: {calls}"


def test_disk_cache_is_used_by_a_fresh_process():
    exp_f32(np.float32(1.0))  # compiled (or loaded) and saved by this process
    script = (
        "import numpy as np\n"
        "from fnbrrr.jit.mathlib import exp_f32\n"
        "exp_f32(np.float32(1.0))\n"
        "print(sum(exp_f32.stats.cache_hits.values()), sum(exp_f32.stats.cache_misses.values()))"
    )
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert child.returncode == 0, child.stderr
    hits, misses = map(int, child.stdout.split())
    assert (hits, misses) == (1, 0)


# --------------------------------------------------------------------------------------------
# Every float32 (make test-slow)
# --------------------------------------------------------------------------------------------


@numba.njit
def _libm_reference(code, x):
    if code == 0:
        return math.exp(x) if x < 709.0 else math.inf
    if code == 1:
        return math.log(x) if x > 0.0 else (-math.inf if x == 0.0 else math.nan)
    if code == 2:
        return math.log1p(x) if x > -1.0 else (-math.inf if x == -1.0 else math.nan)
    if code == 3:
        return math.expm1(x) if x < 709.0 else math.inf
    if code == 4:
        return math.tanh(x)
    if code == 5:
        return 1.0 / (1.0 + math.exp(-x)) if x > -709.0 else 0.0
    if code == 6:
        return math.sin(x)
    if code == 7:
        return math.cos(x)
    return math.erf(x)


@numba.njit(error_model="numpy", parallel=True)
def _worst_over_all_float32(function, code, limit):
    """(max ulps, bits of an input attaining it) over every finite float32 with |x| < limit."""
    chunks = 1024
    worst = np.zeros(chunks, np.int64)
    where = np.zeros(chunks, np.int64)
    per_chunk = (1 << 32) // chunks
    for c in numba.prange(chunks):
        for b in range(c * per_chunk, (c + 1) * per_chunk):
            x = _bitcast_i32_to_f32(b)
            if not abs(x) < limit:  # also skips inf and NaN
                continue
            got = function(x)
            want = np.float32(_libm_reference(code, np.float64(x)))
            if got == want or (np.isnan(got) and np.isnan(want)):
                continue
            g, w = np.int64(_bitcast_f32_to_i32(got)), np.int64(_bitcast_f32_to_i32(want))
            g = -(g & 0x7FFFFFFF) if g < 0 else g
            w = -(w & 0x7FFFFFFF) if w < 0 else w
            distance = abs(g - w) if not (np.isnan(got) or np.isnan(want)) else 1 << 40
            if distance > worst[c]:
                worst[c], where[c] = distance, b
    c = np.argmax(worst)
    return worst[c], where[c]


@pytest.mark.slow
@pytest.mark.parametrize("name", PRIMITIVES + ["sin_fast", "cos_fast"])
def test_every_float32(name):
    base = name.removesuffix("_fast")
    limit = 2.0**21 if name.endswith("_fast") else np.inf
    fn = getattr(mathlib, f"{name}_f32")
    worst, bits = _worst_over_all_float32(fn, PRIMITIVES.index(base), np.float32(limit))
    x = np.array([bits], np.uint32).view(np.float32)[0]
    assert worst <= MAX_ULPS["float32"][base], f"{name}_f32: {worst} ulps at x={x!r}"
