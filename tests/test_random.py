"""Tests of fnbrrr.random and its primitives (`threefry2x32` in `_prims/bits.py`, `argsort` in
`_prims/sorting.py`): known-answer vectors, determinism, key splitting, independence,
distributions (moments and Kolmogorov-Smirnov statistics against exact CDFs), and agreement of
every sampler under vmap (against a loop over keys), staging (traced keys) and jit.

Distribution tests use fixed seeds, so they are deterministic; their thresholds are those of
a test at level 0.001, loose enough to pass for any correct generator and tight enough to
catch a wrong scale, shift, or a broken bit conversion.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnbrrr
import fnbrrr.numpy as jnp
import fnbrrr.random as random
from fnbrrr import core
from fnbrrr._prims import bits, sorting

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _ks_statistic(samples: np.ndarray, cdf) -> float:
    """The Kolmogorov-Smirnov distance between the empirical CDF of `samples` and `cdf`."""
    x = np.sort(np.asarray(samples, np.float64))
    n = len(x)
    f = cdf(x)
    return float(max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n)))


def _ks_limit(n: int) -> float:
    return 1.95 / math.sqrt(n)  # the level-0.001 critical value


_erf = np.vectorize(math.erf)


def _normal_cdf(x):
    return 0.5 * (1 + _erf(x / math.sqrt(2)))


def _chi_square_ok(counts: np.ndarray, probs: np.ndarray) -> bool:
    """Pearson's chi-square test at level ~0.001 (Wilson-Hilferty approximation)."""
    n = counts.sum()
    expected = n * probs
    keep = expected > 0
    stat = float(np.sum((counts[keep] - expected[keep]) ** 2 / expected[keep]))
    dof = int(keep.sum()) - 1
    limit = dof * (1 - 2 / (9 * dof) + 3.09 * math.sqrt(2 / (9 * dof))) ** 3
    return stat < limit


KEY = random.PRNGKey(1234)

# --------------------------------------------------------------------------------------------
# The threefry2x32 primitive
# --------------------------------------------------------------------------------------------

# Known-answer vectors of Threefry-2x32-20 from the Random123 distribution (kat_vectors).
KAT = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


@pytest.mark.parametrize("key,count,expected", KAT)
def test_threefry_matches_random123_known_answers(key, count, expected):
    u32 = np.uint32
    y0, y1 = bits.threefry2x32(u32(key[0]), u32(key[1]), u32(count[0]), u32(count[1]))
    assert (int(y0), int(y1)) == expected
    assert bits.threefry2x32_scalar(*key, *count) == expected
    out = random.threefry_2x32(np.array(key, np.uint32), np.array(count, np.uint32))
    assert [int(w) for w in out] == list(expected)


def test_threefry_scalar_helper_compiles_with_numba():
    numba = pytest.importorskip("numba")
    compiled = numba.njit(bits.threefry2x32_scalar)
    key, count, expected = KAT[2]
    assert compiled(np.uint32(key[0]), np.uint32(key[1]), np.uint32(count[0]),
                    np.uint32(count[1])) == expected


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), min_size=4, max_size=4), st.integers(0, 5))
def test_threefry_vectorised_impl_equals_scalar_definition(words, n):
    k0, k1, x0, x1 = words
    counts0 = np.array([(x0 + i) % 2**32 for i in range(n)], np.uint32)
    counts1 = np.array([(x1 * 3 + i) % 2**32 for i in range(n)], np.uint32)
    y0, y1 = bits.threefry2x32(np.uint32(k0), np.uint32(k1), counts0, counts1)
    for i in range(n):
        assert (int(y0[i]), int(y1[i])) == bits.threefry2x32_scalar(k0, k1, counts0[i],
                                                                     counts1[i])


def test_threefry_shape_rule_rejects_bad_operands():
    aval = core.ShapedArray
    u32, i32 = np.dtype(np.uint32), np.dtype(np.int32)
    with pytest.raises(TypeError, match="uint32"):
        bits.threefry2x32_p.abstract_eval(aval((), i32), aval((), u32), aval((3,), u32),
                                          aval((3,), u32))
    with pytest.raises(ValueError, match="share one shape"):
        bits.threefry2x32_p.abstract_eval(aval((), u32), aval((), u32), aval((3,), u32),
                                          aval((4,), u32))
    out = bits.threefry2x32_p.abstract_eval(aval((), u32), aval((), u32), aval((2, 3), u32),
                                            aval((), u32))
    assert [o.shape for o in out] == [(2, 3), (2, 3)]


def test_threefry_is_marked_non_differentiable_and_has_all_rules():
    p = bits.threefry2x32_p
    assert not p.differentiable and p.multiple_results
    assert callable(p.impl) and callable(p.abstract_eval) and callable(p.batch)
    assert core.primitives["threefry2x32"] is p


@settings(max_examples=15, deadline=None)
@given(st.data())
def test_threefry_batching_rule_equals_a_loop(data):
    """Any operand may be batched, on any axis; 0-d and full operands mix."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    size = data.draw(st.integers(1, 3))
    shape = data.draw(st.sampled_from([(), (3,), (2, 2)]))
    ops, axes = [], []
    for i in range(4):
        own = shape if i >= 2 and data.draw(st.booleans()) else ()
        batched = data.draw(st.booleans())
        if batched:
            axis = data.draw(st.integers(0, len(own)))
            ops.append(np.moveaxis(rng.integers(0, 2**32, (size, *own), dtype=np.uint32), 0, axis))
            axes.append(axis)
        else:
            ops.append(rng.integers(0, 2**32, own, dtype=np.uint32))
            axes.append(None)
    if all(a is None for a in axes):
        ops[0] = rng.integers(0, 2**32, (size,), dtype=np.uint32)
        axes[0] = 0
    got = fnbrrr.vmap(lambda *a: bits.threefry2x32(*a), in_axes=tuple(axes))(*ops)
    for k in range(size):
        example = [np.take(o, k, axis=a) if a is not None else o for o, a in zip(ops, axes)]
        want = bits.threefry2x32(*example)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(np.asarray(g)[k], np.asarray(w))


# --------------------------------------------------------------------------------------------
# argsort
# --------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_argsort_is_stable_and_batches(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = rng.integers(0, 3, shape).astype(np.float32)  # many ties
    np.testing.assert_array_equal(np.asarray(sorting.argsort(x, axis)),
                                  np.argsort(x, axis=axis, kind="stable"))
    batched = np.stack([x, x[::-1].copy() if x.ndim else x])
    got = fnbrrr.vmap(lambda v: sorting.argsort(v, axis))(batched)
    for i in range(2):
        np.testing.assert_array_equal(np.asarray(got)[i],
                                      np.argsort(batched[i], axis=axis, kind="stable"))


def test_argsort_rejects_scalars_and_is_non_differentiable():
    with pytest.raises(ValueError, match="at least one axis"):
        sorting.argsort(np.float32(1.0))
    assert not sorting.argsort_p.differentiable


# --------------------------------------------------------------------------------------------
# Keys: PRNGKey, split, fold_in
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed,expected", [
    (0, [0, 0]), (42, [0, 42]), (-1, [2**32 - 1, 2**32 - 1]), (2**40 + 5, [256, 5]),
])
def test_prng_key_from_python_ints(seed, expected):
    key = random.PRNGKey(seed)
    assert key.shape == (2,) and key.dtype == np.uint32
    assert key.tolist() == expected


def test_prng_key_from_traced_seed_equals_concrete():
    for seed in (-7, 0, 123456):
        staged = fnbrrr.make_jaxpr(random.PRNGKey)(jnp.int32(seed))
        np.testing.assert_array_equal(np.asarray(staged(jnp.int32(seed))[0]),
                                      np.asarray(random.PRNGKey(seed)))
    keys = fnbrrr.vmap(random.PRNGKey)(jnp.arange(3))
    np.testing.assert_array_equal(np.asarray(keys), [[0, 0], [0, 1], [0, 2]])


def test_prng_key_rejects_non_integer_seeds():
    with pytest.raises(TypeError, match="integer"):
        random.PRNGKey(1.5)
    with pytest.raises(TypeError, match="integer"):
        random.PRNGKey(jnp.ones(2, jnp.int32))


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 8))
def test_split_gives_distinct_children_distinct_from_parent(seed, num):
    key = random.PRNGKey(seed)
    children = np.asarray(random.split(key, num))
    assert children.shape == (num, 2) and children.dtype == np.uint32
    rows = {tuple(r) for r in children.tolist()} | {tuple(np.asarray(key).tolist())}
    assert len(rows) == num + 1
    np.testing.assert_array_equal(children, np.asarray(random.split(key, num)))  # deterministic


def test_split_default_is_unpackable_into_two_keys():
    k1, k2 = random.split(KEY)
    assert k1.shape == k2.shape == (2,)
    assert not np.array_equal(np.asarray(k1), np.asarray(k2))
    k_only, = random.split(KEY, 1)
    assert k_only.shape == (2,)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_fold_in_is_deterministic_and_data_dependent(seed, a, b):
    key = random.PRNGKey(seed)
    fa, fb = np.asarray(random.fold_in(key, a)), np.asarray(random.fold_in(key, b))
    np.testing.assert_array_equal(fa, np.asarray(random.fold_in(key, a)))
    assert fa.shape == (2,) and fa.dtype == np.uint32
    assert not np.array_equal(fa, np.asarray(key))
    assert (a == b) == np.array_equal(fa, fb)


def test_fold_in_accepts_traced_and_array_data():
    staged = fnbrrr.make_jaxpr(lambda k, d: random.fold_in(k, d))(KEY, jnp.int32(7))
    np.testing.assert_array_equal(np.asarray(staged(KEY, jnp.int32(7))[0]),
                                  np.asarray(random.fold_in(KEY, 7)))
    folded = fnbrrr.vmap(lambda d: random.fold_in(KEY, d))(jnp.arange(4))
    for i in range(4):
        np.testing.assert_array_equal(np.asarray(folded[i]), np.asarray(random.fold_in(KEY, i)))


def test_split_and_fold_in_are_consistent_with_jax_reference_streams():
    # JAX's (pre-"partitionable") threefry split of PRNGKey(0), a published value: the same
    # counter layout gives the same children.
    np.testing.assert_array_equal(np.asarray(random.split(random.PRNGKey(0))),
                                  [[4146024105, 967050713], [2718843009, 1272950319]])


@pytest.mark.parametrize("bad", [np.zeros(2, np.int32), np.zeros(3, np.uint32),
                                 np.zeros((4, 2), np.uint32)])
def test_samplers_reject_invalid_keys_with_clear_errors(bad):
    with pytest.raises(TypeError, match=r"random\.normal: expected a single PRNG key"):
        random.normal(bad, (2,))
    if bad.shape == (4, 2):
        with pytest.raises(TypeError, match="vmap"):
            random.uniform(bad)


# --------------------------------------------------------------------------------------------
# Determinism and independence
# --------------------------------------------------------------------------------------------

SAMPLERS = {
    "bits": lambda k: random.bits(k, (3,)),
    "uniform": lambda k: random.uniform(k, (4,), minval=-1.0, maxval=2.0),
    "normal": lambda k: random.normal(k, (2, 3)),
    "truncated_normal": lambda k: random.truncated_normal(k, -1.0, 1.5, (4,)),
    "exponential": lambda k: random.exponential(k, (3,)),
    "gumbel": lambda k: random.gumbel(k, (3,)),
    "bernoulli": lambda k: random.bernoulli(k, 0.4, (5,)),
    "randint": lambda k: random.randint(k, (5,), -3, 9),
    "categorical": lambda k: random.categorical(k, jnp.array([[0.0, 1.0, 2.0], [2.0, 0.0, -1.0]])),
    "categorical_shape": lambda k: random.categorical(k, jnp.array([0.0, 1.0, 2.0]), shape=(4,)),
    "permutation": lambda k: random.permutation(k, 6),
    "permutation_array": lambda k: random.permutation(k, jnp.arange(12.0).reshape(4, 3)),
    "permutation_independent": lambda k: random.permutation(
        k, jnp.arange(12.0).reshape(4, 3), axis=1, independent=True),
    "choice": lambda k: random.choice(k, 7, (3,)),
    "choice_without_replacement": lambda k: random.choice(k, 7, (3,), replace=False),
    "choice_p": lambda k: random.choice(k, jnp.arange(7.0), (3,), p=jnp.arange(7.0) / 21),
    "choice_p_without_replacement": lambda k: random.choice(k, 7, (3,), replace=False,
                                                            p=jnp.arange(7.0) / 21),
    "split": lambda k: random.split(k, 3),
    "fold_in": lambda k: random.fold_in(k, 5),
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_same_key_same_numbers_different_keys_different_numbers(name):
    sample = SAMPLERS[name]
    a, b = np.asarray(sample(KEY)), np.asarray(sample(KEY))
    np.testing.assert_array_equal(a, b)
    others = [np.asarray(sample(random.PRNGKey(s))) for s in range(8)]
    assert any(not np.array_equal(a, o) for o in others), f"{name} ignores its key"


def _correlation(a, b) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def test_streams_from_split_and_fold_in_keys_are_uncorrelated():
    n = 20000
    limit = 4 / math.sqrt(n)
    k1, k2, k3 = random.split(KEY, 3)
    streams = [random.uniform(k, (n,)) for k in (k1, k2, k3)]
    streams += [random.uniform(random.fold_in(KEY, i), (n,)) for i in (0, 1)]
    streams.append(random.normal(k1, (n,)))  # a different sampler on the same key
    for i in range(len(streams) - 1):
        for j in range(i + 1, len(streams) - 1):
            assert abs(_correlation(streams[i], streams[j])) < limit, (i, j)
    u = np.asarray(streams[0])
    assert abs(_correlation(u[:-1], u[1:])) < limit  # no serial correlation within a stream


def test_bits_are_balanced():
    words = np.asarray(random.bits(KEY, (4096,)))
    ones = np.unpackbits(words.view(np.uint8)).reshape(-1, 32).mean(axis=0)
    assert np.all(np.abs(ones - 0.5) < 0.04), ones  # every bit position is a fair coin
    small = np.asarray(random.bits(KEY, (4096,), jnp.uint8))
    assert small.dtype == np.uint8 and len(np.unique(small)) == 256


# --------------------------------------------------------------------------------------------
# Distributions
# --------------------------------------------------------------------------------------------

N = 20000


def test_uniform_range_moments_and_ks():
    u = np.asarray(random.uniform(KEY, (N,)))
    assert u.dtype == np.float32 and u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.003
    assert _ks_statistic(u, lambda x: x) < _ks_limit(N)


def test_floats_are_exact_functions_of_the_top_bits():
    """The documented bits-to-float route: top 24 bits k, uniform k / 2**24, normal
    sqrt(2) * erfinv((2k + 1 - 2**24) / 2**24)."""
    k = np.asarray(random.bits(KEY, (1000,))) >> 8
    u = np.asarray(random.uniform(KEY, (1000,)))
    np.testing.assert_array_equal(u, (k / 2.0**24).astype(np.float32))
    v = (2.0 * k + 1 - 2**24) / 2**24
    z = np.asarray(random.normal(KEY, (1000,)), np.float64)
    np.testing.assert_allclose(_erf(z / math.sqrt(2)), v, rtol=0, atol=5e-7)


def test_randint_equals_the_documented_reduction_of_two_words():
    key_hi, key_lo = random.split(KEY)
    hi = np.asarray(random.bits(key_hi, (500,))).astype(object)
    lo = np.asarray(random.bits(key_lo, (500,))).astype(object)
    for minval, maxval in ((-7, 1000), (3, 3 + 2**16), (-(2**20), 2**21)):
        span = maxval - minval
        if span <= 2**16:
            expected = (hi * 2**32 + lo) % span + minval
        else:
            expected = lo % span + minval
        got = np.asarray(random.randint(KEY, (500,), minval, maxval))
        np.testing.assert_array_equal(got, expected.astype(np.int64))


@settings(max_examples=15, deadline=None)
@given(st.floats(-100, 100), st.floats(1e-3, 100), st.integers(0, 2**31))
def test_uniform_bounds_are_half_open(minval, width, seed):
    maxval = minval + width
    x = np.asarray(random.uniform(random.PRNGKey(seed), (500,), minval=minval, maxval=maxval))
    assert np.all(x >= np.float32(minval)) and np.all(x < np.float32(maxval))


def test_uniform_accepts_array_bounds_and_float_dtypes():
    lo, hi = jnp.array([0.0, 10.0]), jnp.array([1.0, 20.0])
    x = np.asarray(random.uniform(KEY, (1000, 2), minval=lo, maxval=hi))
    assert np.all(x[:, 0] < 1) and np.all(x[:, 1] >= 10)
    half = random.uniform(KEY, (100,), jnp.float16)
    assert half.dtype == np.float16 and float(half.max()) < 1
    with pytest.raises(TypeError, match="floating"):
        random.uniform(KEY, (2,), jnp.int32)
    with pytest.raises(ValueError, match="broadcast"):
        random.uniform(KEY, (3,), minval=jnp.zeros(2))


def test_normal_moments_ks_and_symmetry():
    z = np.asarray(random.normal(KEY, (N,)), np.float64)
    assert np.all(np.isfinite(z))
    assert abs(z.mean()) < 0.03 and abs(z.var() - 1) < 0.04
    assert abs(np.mean(z**3)) < 0.1 and abs(np.mean(z**4) - 3) < 0.25  # skew, kurtosis
    assert _ks_statistic(z, _normal_cdf) < _ks_limit(N)
    assert np.abs(z).max() < 6


def test_normal_float64_with_x64():
    fnbrrr.config.update("jax_enable_x64", True)
    try:
        z = np.asarray(random.normal(KEY, (5000,), jnp.float64))
        assert z.dtype == np.float64
        assert _ks_statistic(z, _normal_cdf) < _ks_limit(5000)
        u = np.asarray(random.uniform(KEY, (5000,), jnp.float64))
        assert u.dtype == np.float64 and 0 <= u.min() and u.max() < 1
        assert len(np.unique(u)) == 5000  # 53 random bits, not 24
    finally:
        fnbrrr.config.update("jax_enable_x64", False)


def test_erf_inv_inverts_erf():
    x = np.concatenate([np.linspace(-0.999, 0.999, 101),
                        1 - np.logspace(-7, -3, 9), -(1 - np.logspace(-7, -3, 9))])
    z = np.asarray(random.erf_inv(jnp.asarray(x, np.float32)), np.float64)
    np.testing.assert_allclose(_erf(z), x.astype(np.float32), rtol=0, atol=3e-7)


@pytest.mark.parametrize("lower,upper", [(-2.0, 2.0), (-1.0, 0.5), (1.0, 3.0)])
def test_truncated_normal_bounds_and_ks(lower, upper):
    x = np.asarray(random.truncated_normal(KEY, lower, upper, (N,)), np.float64)
    assert x.min() >= lower and x.max() <= upper
    a, b = _normal_cdf(np.float64(lower)), _normal_cdf(np.float64(upper))
    assert _ks_statistic(x, lambda t: (_normal_cdf(t) - a) / (b - a)) < _ks_limit(N)


def test_truncated_normal_default_shape_broadcasts_bounds():
    x = random.truncated_normal(KEY, jnp.zeros(3), jnp.array([1.0, 2.0, 3.0]))
    assert x.shape == (3,)
    assert np.all(np.asarray(x) <= [1, 2, 3])


def test_exponential_and_gumbel_moments():
    e = np.asarray(random.exponential(KEY, (N,)), np.float64)
    assert e.min() >= 0 and abs(e.mean() - 1) < 0.03
    assert _ks_statistic(e, lambda x: 1 - np.exp(-x)) < _ks_limit(N)
    g = np.asarray(random.gumbel(KEY, (N,)), np.float64)
    assert np.all(np.isfinite(g)) and abs(g.mean() - 0.5772156649) < 0.04
    assert _ks_statistic(g, lambda x: np.exp(-np.exp(-x))) < _ks_limit(N)


def test_bernoulli_frequencies_and_edges():
    for p in (0.1, 0.5, 0.83):
        b = np.asarray(random.bernoulli(KEY, p, (N,)))
        assert b.dtype == np.bool_ and abs(b.mean() - p) < 4 * math.sqrt(p * (1 - p) / N)
    assert not np.asarray(random.bernoulli(KEY, 0.0, (1000,))).any()
    assert np.asarray(random.bernoulli(KEY, 1.0, (1000,))).all()
    per_row = random.bernoulli(KEY, jnp.array([0.0, 1.0]), (500, 2))
    assert per_row.shape == (500, 2)
    assert not np.asarray(per_row[:, 0]).any() and np.asarray(per_row[:, 1]).all()
    assert random.bernoulli(KEY, jnp.full((3, 2), 0.5)).shape == (3, 2)


@pytest.mark.parametrize("minval,maxval", [(0, 10), (-3, 4), (-5, 300)])
def test_randint_range_and_uniform_frequencies(minval, maxval):
    x = np.asarray(random.randint(KEY, (N,), minval, maxval))
    assert x.dtype == np.int32 and x.min() == minval and x.max() == maxval - 1
    counts = np.bincount(x - minval, minlength=maxval - minval)
    assert _chi_square_ok(counts, np.full(maxval - minval, 1 / (maxval - minval)))


def test_randint_wide_and_degenerate_ranges():
    full = np.asarray(random.randint(KEY, (N,), -(2**31), 2**31 - 1))
    assert full.min() < -(2**30) and full.max() > 2**30  # spans the whole int32 range
    assert abs(full.astype(np.float64).mean()) < 0.05 * 2**31
    wide = np.asarray(random.randint(KEY, (N,), 0, 3 * 2**20))
    assert wide.min() >= 0 and wide.max() < 3 * 2**20
    assert _chi_square_ok(np.bincount(wide // 2**20, minlength=3), np.full(3, 1 / 3))
    np.testing.assert_array_equal(np.asarray(random.randint(KEY, (4,), 5, 5)), 5)
    np.testing.assert_array_equal(np.asarray(random.randint(KEY, (4,), 5, 2)), 5)
    clipped = np.asarray(random.randint(KEY, (1000,), 0, 2**40))  # maxval clipped to int32
    assert clipped.dtype == np.int32 and clipped.min() >= 0
    small = np.asarray(random.randint(KEY, (1000,), -128, 127, jnp.int8))
    assert small.dtype == np.int8 and small.min() == -128 and small.max() == 126
    per_column = np.asarray(random.randint(KEY, (1000, 2), jnp.array([0, 10]),
                                           jnp.array([2, 12])))
    assert set(per_column[:, 0]) == {0, 1} and set(per_column[:, 1]) == {10, 11}


def test_categorical_frequencies_follow_softmax():
    logits = jnp.array([1.0, -0.5, 2.0, 0.0, -jnp.inf])
    x = np.asarray(random.categorical(KEY, logits, shape=(N,)))
    assert x.dtype == np.int32 and x.shape == (N,)
    e = np.exp(np.asarray(logits, np.float64))
    counts = np.bincount(x, minlength=5)
    assert counts[4] == 0  # probability 0 is never drawn
    assert _chi_square_ok(counts, e / e.sum())


def test_categorical_batches_axes_and_shape_prefix():
    logits = jnp.array([[0.0, -jnp.inf, -jnp.inf], [-jnp.inf, -jnp.inf, 0.0]])
    np.testing.assert_array_equal(np.asarray(random.categorical(KEY, logits)), [0, 2])
    np.testing.assert_array_equal(np.asarray(random.categorical(KEY, logits.T, axis=0)), [0, 2])
    drawn = random.categorical(KEY, logits, shape=(5, 2))
    assert drawn.shape == (5, 2)
    np.testing.assert_array_equal(np.asarray(drawn), np.tile([0, 2], (5, 1)))
    with pytest.raises(ValueError):
        random.categorical(KEY, logits, shape=(5, 3))


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 40), st.integers(0, 2**31))
def test_permutation_is_a_permutation(n, seed):
    perm = np.asarray(random.permutation(random.PRNGKey(seed), n))
    assert perm.dtype == np.int32 and sorted(perm.tolist()) == list(range(n))


def test_permutation_of_arrays_keeps_rows_and_is_uniform_enough():
    x = jnp.arange(12.0).reshape(4, 3)
    shuffled = np.asarray(random.permutation(KEY, x))
    assert sorted(map(tuple, shuffled.tolist())) == sorted(map(tuple, np.asarray(x).tolist()))
    cols = np.asarray(random.permutation(KEY, x, axis=1, independent=True))
    for row, original in zip(cols, np.asarray(x)):
        assert sorted(row) == sorted(original)
    firsts = [int(random.permutation(random.PRNGKey(s), 4)[0]) for s in range(400)]
    assert _chi_square_ok(np.bincount(firsts, minlength=4), np.full(4, 0.25))
    big = np.asarray(random.permutation(KEY, 5000))  # two sorting rounds
    assert sorted(big.tolist()) == list(range(5000)) and not np.array_equal(big, np.arange(5000))


def test_permutation_is_differentiable_in_the_array():
    x = jnp.arange(5.0)
    grad = fnbrrr.grad(lambda v: jnp.sum(random.permutation(KEY, v) * jnp.arange(5.0)))(x)
    perm = np.asarray(random.permutation(KEY, 5))
    expected = np.empty(5)
    expected[perm] = np.arange(5.0)
    np.testing.assert_allclose(np.asarray(grad), expected)


def test_choice_with_and_without_replacement():
    drawn = np.asarray(random.choice(KEY, 5, (5,), replace=False))
    assert sorted(drawn.tolist()) == [0, 1, 2, 3, 4]
    rows = np.asarray(random.choice(KEY, jnp.arange(20.0).reshape(10, 2), (3,), replace=False))
    assert rows.shape == (3, 2) and len({tuple(r) for r in rows.tolist()}) == 3
    p = np.array([0.1, 0.0, 0.6, 0.3])
    x = np.asarray(random.choice(KEY, 4, (N,), p=jnp.asarray(p)))
    assert _chi_square_ok(np.bincount(x, minlength=4), p)
    no_rep = np.asarray(random.choice(KEY, 4, (2,), replace=False, p=jnp.asarray(p)))
    assert len(set(no_rep.tolist())) == 2 and 1 not in no_rep
    with pytest.raises(ValueError, match="without replacement"):
        random.choice(KEY, 3, (4,), replace=False)


# --------------------------------------------------------------------------------------------
# Transformations: vmap over split keys, traced keys, jit
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_vmap_over_split_keys_equals_a_loop(name):
    sample = SAMPLERS[name]
    keys = random.split(KEY, 3)
    got = np.asarray(fnbrrr.vmap(sample)(keys))
    want = np.stack([np.asarray(sample(keys[i])) for i in range(3)])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_traced_keys_give_the_eager_numbers(name):
    """Staging with an abstract key (what jit traces) and evaluating the program."""
    sample = SAMPLERS[name]
    program = fnbrrr.make_jaxpr(sample)(KEY)
    other = random.PRNGKey(99)
    np.testing.assert_allclose(np.asarray(program(other)[0]), np.asarray(sample(other)),
                               rtol=1e-6)


def test_jit_compiled_sampler_equals_eager():
    """One compiled program (compiling is slow); every sampler is compiled in the slow tests."""
    compiled = fnbrrr.jit(lambda key: random.normal(key, (8,)))
    for seed in (0, 1):
        key = random.PRNGKey(seed)
        got, want = compiled(key), random.normal(key, (8,))
        assert got.dtype == want.dtype
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_jit_of_a_program_with_several_samplers_equals_eager():
    def sample(key):
        k1, k2, k3 = random.split(key, 3)
        return random.uniform(k1, (8,)), random.normal(k2, (8,)), random.randint(k3, (8,), -5, 5)

    compiled = fnbrrr.jit(sample)
    for seed in (0, 1):
        key = random.PRNGKey(seed)
        for got, want in zip(compiled(key), sample(key)):
            assert got.dtype == want.dtype
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_jit_of_every_sampler_equals_eager(name):
    sample = SAMPLERS[name]
    got, want = fnbrrr.jit(sample)(KEY), sample(KEY)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_jit_randint_equals_eager_at_extreme_ranges():
    """uint32 intermediates must not depend on the compiled code's integer width."""
    for lo, hi in ((-(2**31), 2**31 - 1), (-5, 2**20), (-5, 300)):
        f = fnbrrr.jit(lambda k, lo=lo, hi=hi: random.randint(k, (1000,), lo, hi))
        np.testing.assert_array_equal(np.asarray(f(KEY)),
                                      np.asarray(random.randint(KEY, (1000,), lo, hi)))


# --------------------------------------------------------------------------------------------
# The docstring examples run
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [random, bits, sorting])
def test_docstring_examples(module):
    import doctest

    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_split_with_a_shape_tuple_gives_a_grid_of_distinct_keys():
    keys = random.split(random.PRNGKey(3), (2, 3))
    assert keys.shape == (2, 3, 2) and keys.dtype == np.uint32
    flat = np.asarray(keys).reshape(6, 2)
    assert len({tuple(k) for k in flat}) == 6
    np.testing.assert_array_equal(flat, np.asarray(random.split(random.PRNGKey(3), 6)))
