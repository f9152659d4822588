"""fnbrrr.random: functional, splittable pseudo-random numbers (JAX's `jax.random`).

A *key* is a uint32 array of shape (2,). Nothing is stateful: a sampler is a pure function of
its key, so the same key always gives the same numbers, and programs pass keys explicitly,
splitting one into independent children (`split`) or deriving one from data (`fold_in`)
instead of advancing a global generator. Because keys are ordinary arrays, every sampler works
under `jit` (traced keys) and `vmap` (e.g. mapped over `split(key, n)`).

How numbers are made:

* **Bits.** `n` random words under a key are the Threefry-2x32 hash (20 rounds; the
  `threefry2x32` primitive of `fnbrrr._prims.bits`) of the counters `0 .. n-1`, paired as
  `(i, half + i)`: each hash gives two words. `split(key, num)` takes `2 * num` such words as
  `num` new keys; `fold_in(key, data)` hashes the counter pair `(0, data)`.
* **Bits to floats.** With p the significand precision of the float type (24 for float32, 53
  for float64), the top p bits of a word are an integer `k` in [0, 2**p), converted exactly,
  and `k * 2**-p` is uniform on the grid {0, 2**-p, ..., 1 - 2**-p}: in [0, 1), never 1.
  Only integer division (by a power of two: a logical shift) and conversion are needed; no
  bit-casting. Samplers that must avoid an endpoint use the open grids `(2k + 1) * 2**-p`
  (in (0, 1)) and `(2k + 1 - 2**p) * 2**-p` (in (-1, 1), symmetric about 0); all exact.
  float64 (with `jax_enable_x64`) takes its 53 bits from two words.
* **Normals** are `sqrt(2) * erfinv(v)` with `v` on the open symmetric grid, so `log(0)` never
  occurs and the distribution is exactly symmetric; `erfinv` is Giles' single-precision
  polynomial approximation ("Approximating the erfinv function", GPU Computing Gems, 2011),
  refined by one Newton step for float64. `truncated_normal` inverts the CDF the same way.
* **Discrete.** `randint` reduces two words modulo the range (exact for ranges up to 2**16;
  bias below range / 2**32 beyond); `categorical` is the Gumbel-max trick; `permutation`
  sorts random words (`argsort`), in as many rounds as make ties negligible.

Example:
    >>> import fnbrrr.random as random
    >>> key = random.PRNGKey(0)
    >>> key, sub = random.split(key)
    >>> random.normal(sub, (2, 3)).shape
    (2, 3)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from fnbrrr import core, lax
from fnbrrr import numpy as jnp
from fnbrrr._prims.bits import threefry2x32
from fnbrrr._prims.sorting import argsort
from fnbrrr.dtypes import canonicalize, default_float, default_int

Array = core.Array
Shape = Sequence[int]
DTypeLike = Any

_UINT32 = np.dtype(np.uint32)
_UINT64 = np.dtype(np.uint64)

__all__ = [
    "PRNGKey", "bernoulli", "bits", "categorical", "choice", "exponential", "fold_in",
    "gumbel", "key", "key_data", "normal", "permutation", "randint", "split",
    "threefry_2x32", "truncated_normal", "uniform", "wrap_key_data",
]

# --------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------


def PRNGKey(seed: int | Array) -> Array:  # noqa: N802  (JAX's name)
    """A key from an integer seed: the uint32 array `[high 32 bits, low 32 bits]`.

    Args:
      seed: a Python int (any size; taken modulo 2**64, so -1 is all ones) or a 0-d integer
        array, possibly traced (int32 seeds are sign-extended to 64 bits).

    Returns:
      A uint32 array of shape (2,).

    Example:
      >>> PRNGKey(42)
      Array([ 0, 42], dtype=uint32)
    """
    if isinstance(seed, (bool, np.bool_)) or isinstance(seed, (float, np.floating)):
        raise TypeError(f"PRNGKey: seed must be an integer, got {type(seed).__name__} {seed!r}")
    if isinstance(seed, (int, np.integer)):
        seed = int(seed) % 2**64
        return jnp.asarray(np.array([seed >> 32, seed & 0xFFFFFFFF], _UINT32))
    seed = jnp.asarray(seed)
    if seed.shape != () or seed.dtype.kind not in "iu":
        raise TypeError(f"PRNGKey: seed must be a 0-d integer array, got {seed.aval.str_short()}")
    return jnp.stack(_seed_words(seed))


def _seed_words(seed: Array) -> tuple[Array, Array]:
    """(high, low) uint32 words of an integer seed array (sign-extended when signed)."""
    if seed.dtype.itemsize == 8:
        wide = lax.convert_element_type(seed, _UINT64)
        low = lax.convert_element_type(lax.rem(wide, _const(2**32, _UINT64)), _UINT32)
        high = lax.convert_element_type(lax.div(wide, _const(2**32, _UINT64)), _UINT32)
        return high, low
    low = lax.convert_element_type(seed, _UINT32)
    if seed.dtype.kind == "u":
        return jnp.zeros((), _UINT32), low
    negative = lax.lt(seed, _const(0, seed.dtype))
    return lax.select_n(negative, _const(0, _UINT32), _const(0xFFFFFFFF, _UINT32)), low


key = PRNGKey
"""`key(seed)`: the same as `PRNGKey` (fnbrrr keys are always raw uint32 arrays)."""


def key_data(keys: Array) -> Array:
    """The uint32 data of `keys` (fnbrrr keys are that data already): checked, unchanged.

    Example:
      >>> key_data(PRNGKey(1))
      Array([0, 1], dtype=uint32)
    """
    keys = jnp.asarray(keys)
    if keys.dtype != _UINT32 or not keys.shape or keys.shape[-1] != 2:
        raise TypeError(f"key_data: expected uint32 keys of shape (..., 2), got "
                        f"{keys.aval.str_short()}")
    return keys


wrap_key_data = key_data


def _check_key(key: Any, name: str) -> Array:
    """`key` as an fnbrrr array, or a TypeError naming the sampler and what it got."""
    if not isinstance(key, core.Array):
        key = jnp.asarray(key)
    aval = core.get_aval(key)
    if aval.dtype != _UINT32 or aval.shape != (2,):
        hint = ""
        if aval.dtype == _UINT32 and aval.shape[-1:] == (2,):
            hint = "; to use several keys at once, map over them with fnbrrr.vmap"
        raise TypeError(
            f"random.{name}: expected a single PRNG key (a uint32 array of shape (2,), from "
            f"random.PRNGKey or random.split), got {aval.str_short()}{hint}"
        )
    return key


def _key_words(key: Array) -> tuple[Array, Array]:
    k0 = lax.reshape(lax.slice(key, (0,), (1,)), ())
    k1 = lax.reshape(lax.slice(key, (1,), (2,)), ())
    return k0, k1


def _random_words(key: Array, n: int) -> Array:
    """`n` random uint32 words under `key`: hashes of the counter pairs (i, half + i)."""
    if n == 0:
        return jnp.zeros((0,), _UINT32)
    half = (n + 1) // 2
    counters = lax.iota(_UINT32, 2 * half)
    y0, y1 = threefry2x32(*_key_words(key), lax.slice(counters, (0,), (half,)),
                          lax.slice(counters, (half,), (2 * half,)))
    return lax.slice(lax.concatenate([y0, y1], 0), (0,), (n,))


def split(key: Array, num: int | tuple[int, ...] = 2) -> Array:
    """`num` new keys derived from `key`, independent of each other and of `key`'s samples.

    Args:
      key: a key.
      num: how many keys to make (a static Python int), or a shape tuple of keys.

    Returns:
      A uint32 array of shape (num, 2) (or num + (2,) for a tuple); unpack it
      (`k1, k2 = split(key)`) or index it.

    Example:
      >>> k1, k2 = split(PRNGKey(0))
      >>> bool((k1 != k2).any())
      True
    """
    key = _check_key(key, "split")
    if isinstance(num, (tuple, list)):
        shape = tuple(_static_int(d, "split", "num") for d in num)
        return lax.reshape(_random_words(key, 2 * math.prod(shape)), (*shape, 2))
    num = _static_int(num, "split", "num")
    return lax.reshape(_random_words(key, 2 * num), (num, 2))


def fold_in(key: Array, data: int | Array) -> Array:
    """A new key determined by `key` and an integer `data` (e.g. a step or an example index).

    Args:
      key: a key.
      data: an integer: a Python int in [0, 2**32) (others raise OverflowError, as in
        JAX), or a 0-d integer array, possibly traced, taken modulo 2**32.

    Returns:
      A new key (uint32, shape (2,)).

    Example:
      >>> bool((fold_in(PRNGKey(0), 1) != fold_in(PRNGKey(0), 2)).any())
      True
    """
    key = _check_key(key, "fold_in")
    if isinstance(data, int) and not isinstance(data, bool) and not 0 <= data < 2**32:
        raise OverflowError(f"random.fold_in: Python integer {data} out of bounds for uint32")
    if isinstance(data, (int, np.integer)) and not isinstance(data, (bool, np.bool_)):
        data = jnp.asarray(np.uint32(int(data) % 2**32))
    else:
        data = jnp.asarray(data)
        if data.shape != () or data.dtype.kind not in "iu":
            raise TypeError(f"random.fold_in: data must be a 0-d integer, got "
                            f"{data.aval.str_short()}")
        data = lax.convert_element_type(data, _UINT32)
    y0, y1 = threefry2x32(*_key_words(key), _const(0, _UINT32), data)
    return jnp.stack([y0, y1])


def threefry_2x32(keypair: Array | tuple, count: Array) -> Array:
    """The raw Threefry-2x32 hash of a uint32 `count` array under `keypair` (JAX's name).

    The counts are flattened, split into two halves (padded with a zero when odd) that form
    the counter pairs, and the two output words are joined in the same order.

    Args:
      keypair: a key, or a pair of uint32 scalars.
      count: a uint32 array of any shape.

    Returns:
      A uint32 array of `count`'s shape.

    Example:
      >>> import numpy as np
      >>> out = threefry_2x32(np.uint32([0x13198a2e, 0x03707344]),
      ...                     np.uint32([0x243f6a88, 0x85a308d3]))
      >>> [hex(int(w)) for w in out]
      ['0xc4923a9c', '0x483df7a0']
    """
    k0, k1 = (jnp.asarray(keypair[0], _UINT32), jnp.asarray(keypair[1], _UINT32))
    count = jnp.asarray(count)
    if count.dtype != _UINT32:
        raise TypeError(f"threefry_2x32: count must be uint32, got {count.aval.str_short()}")
    flat = jnp.ravel(count)
    n = flat.shape[0]
    if n % 2:
        flat = jnp.concatenate([flat, jnp.zeros((1,), _UINT32)])
    half = flat.shape[0] // 2
    y0, y1 = threefry2x32(k0, k1, flat[:half], flat[half:])
    return jnp.reshape(jnp.concatenate([y0, y1])[:n], count.shape)


# --------------------------------------------------------------------------------------------
# Raw bits and the bits-to-float conversion
# --------------------------------------------------------------------------------------------


def bits(key: Array, shape: Shape = (), dtype: DTypeLike = np.uint32) -> Array:
    """Uniformly random unsigned integers: every bit pattern equally likely.

    Args:
      key: a key.
      shape: the result's shape.
      dtype: uint8, uint16, uint32, or uint64 (with x64 enabled).

    Returns:
      An array of `shape` and `dtype`.

    Example:
      >>> bits(PRNGKey(0), (3,)).dtype
      dtype('uint32')
    """
    key = _check_key(key, "bits")
    shape = _canonical_shape(shape, "bits")
    dtype = canonicalize(dtype)
    if dtype.kind != "u":
        raise TypeError(f"random.bits: dtype must be unsigned, got {dtype.name}")
    return _bits(key, shape, dtype)


def _bits(key: Array, shape: tuple, dtype: np.dtype) -> Array:
    size = math.prod(shape)
    if dtype.itemsize == 8:
        words = lax.convert_element_type(_random_words(key, 2 * size), _UINT64)
        high, low = lax.slice(words, (0,), (size,)), lax.slice(words, (size,), (2 * size,))
        out = lax.add(lax.mul(high, _const(2**32, _UINT64)), low)
    else:
        out = _top_bits(_random_words(key, size), 8 * dtype.itemsize)
        out = lax.convert_element_type(out, dtype)
    return lax.reshape(out, shape)


def _top_bits(words: Array, nbits: int) -> Array:
    """The top `nbits` of uint32 words, as uint32 (a logical right shift)."""
    if nbits >= 32:
        return words
    return lax.div(words, _const(2 ** (32 - nbits), _UINT32))


def _mantissa_ints(key: Array, shape: tuple, nbits: int) -> Array:
    """Random integers in [0, 2**nbits): uint32 for nbits <= 32, else uint64 from two words.

    The grids below are built with integer arithmetic and one exact conversion, so they
    stay exact however a compiler reorders float operations (jit uses fast-math flags).
    """
    size = math.prod(shape)
    if nbits <= 32:
        return lax.reshape(_top_bits(_random_words(key, size), nbits), shape)
    words = _random_words(key, 2 * size)
    high = _top_bits(lax.slice(words, (0,), (size,)), nbits - 26)
    low = _top_bits(lax.slice(words, (size,), (2 * size,)), 26)
    high, low = (lax.convert_element_type(w, _UINT64) for w in (high, low))
    return lax.reshape(lax.add(lax.mul(high, _const(2**26, _UINT64)), low), shape)


def _precision(dtype: np.dtype) -> int:
    return np.finfo(dtype).nmant + 1


def _exact_scale(ints: Array, p: int, dtype: np.dtype) -> Array:
    """`ints * 2**-p` as `dtype`: exact, since |ints| < 2**p fits the significand."""
    return lax.mul(lax.convert_element_type(ints, dtype), _const(2.0**-p, dtype))


def _unit(key: Array, shape: tuple, dtype: np.dtype) -> Array:
    """Uniform on {0, 2**-p, ..., 1 - 2**-p}: in [0, 1)."""
    p = _precision(dtype)
    return _exact_scale(_mantissa_ints(key, shape, p), p, dtype)


def _open_unit(key: Array, shape: tuple, dtype: np.dtype) -> Array:
    """Uniform on {(2k + 1) * 2**-p : 0 <= k < 2**(p-1)}: in (0, 1), both ends excluded."""
    p = _precision(dtype)
    k = _mantissa_ints(key, shape, p - 1)
    return _exact_scale(lax.add(lax.add(k, k), _const(1, k.dtype)), p, dtype)


def _open_symmetric(key: Array, shape: tuple, dtype: np.dtype) -> Array:
    """Uniform on {(2k + 1 - 2**p) * 2**-p : 0 <= k < 2**p}: in (-1, 1), symmetric about 0."""
    p = _precision(dtype)
    signed = np.dtype(np.int64) if p > 32 else np.dtype(np.int32)
    k = lax.convert_element_type(_mantissa_ints(key, shape, p), signed)
    odd = lax.sub(lax.add(lax.add(k, k), _const(1, signed)), _const(2**p, signed))
    return _exact_scale(odd, p, dtype)


# --------------------------------------------------------------------------------------------
# Continuous distributions
# --------------------------------------------------------------------------------------------


def uniform(key: Array, shape: Shape = (), dtype: DTypeLike = float,
            minval: float | Array = 0.0, maxval: float | Array = 1.0) -> Array:
    """Uniform floats in [minval, maxval).

    Args:
      key: a key.
      shape: the result's shape; `minval` and `maxval` must broadcast to it.
      dtype: a float dtype.
      minval: the inclusive lower bound (scalar or array).
      maxval: the exclusive upper bound (scalar or array).

    Returns:
      An array of `shape` and `dtype`. Where rounding would give `maxval`, `minval` is
      returned instead (probability about 2**-24 per value), so `maxval` never occurs.

    Example:
      >>> x = uniform(PRNGKey(0), (1000,), minval=-1.0, maxval=1.0)
      >>> bool((x >= -1).all() and (x < 1).all())
      True
    """
    key = _check_key(key, "uniform")
    shape = _canonical_shape(shape, "uniform")
    dtype = _float_dtype(dtype, "uniform")
    u = _unit(key, shape, dtype)
    if _is_python_number(minval, 0) and _is_python_number(maxval, 1):
        return u
    minval, maxval = (_param(v, dtype, "uniform", shape) for v in (minval, maxval))
    return _scaled(u, minval, maxval)


def _scaled(u: Array, minval: Array, maxval: Array) -> Array:
    """`minval + u * (maxval - minval)` for u in [0, 1), kept inside [minval, maxval)."""
    out = jnp.maximum(minval, minval + u * (maxval - minval))
    return jnp.where(out < maxval, out, minval)


def normal(key: Array, shape: Shape = (), dtype: DTypeLike = float) -> Array:
    """Standard normal floats (mean 0, variance 1).

    Args:
      key: a key.
      shape: the result's shape.
      dtype: a float dtype.

    Returns:
      An array of `shape` and `dtype`; |values| stay below about 5.4 for float32 (the
      inverse CDF of the finest open grid; the tail beyond has probability 7e-8).

    Example:
      >>> x = normal(PRNGKey(0), (10000,))
      >>> abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1) < 0.05
      True
    """
    key = _check_key(key, "normal")
    shape = _canonical_shape(shape, "normal")
    dtype = _float_dtype(dtype, "normal")
    work = _work_dtype(dtype)
    z = lax.mul(_const(math.sqrt(2.0), work), erf_inv(_open_symmetric(key, shape, work)))
    return lax.convert_element_type(z, dtype)


def truncated_normal(key: Array, lower: float | Array, upper: float | Array,
                     shape: Shape | None = None, dtype: DTypeLike = float) -> Array:
    """Standard normal floats conditioned on lower <= x <= upper (inverse-CDF sampling).

    Args:
      key: a key.
      lower: the lower bound (scalar or array; -inf allowed).
      upper: the upper bound (scalar or array; inf allowed).
      shape: the result's shape (default: the broadcast shape of `lower` and `upper`).
      dtype: a float dtype.

    Returns:
      An array of `shape` and `dtype` with values in [lower, upper].

    Example:
      >>> x = truncated_normal(PRNGKey(0), -2.0, 2.0, (1000,))
      >>> bool((abs(x) <= 2).all())
      True
    """
    key = _check_key(key, "truncated_normal")
    dtype = _float_dtype(dtype, "truncated_normal")
    work = _work_dtype(dtype)
    if shape is None:
        shape = np.broadcast_shapes(jnp.shape(lower), jnp.shape(upper))
    shape = _canonical_shape(shape, "truncated_normal")
    lower, upper = (_param(v, work, "truncated_normal", shape) for v in (lower, upper))
    sqrt2 = math.sqrt(2.0)
    a, b = lax.erf(lower / sqrt2), lax.erf(upper / sqrt2)
    t = _open_unit(key, shape, work)
    z = sqrt2 * erf_inv(a + t * (b - a))
    return lax.convert_element_type(jnp.clip(z, lower, upper), dtype)


def exponential(key: Array, shape: Shape = (), dtype: DTypeLike = float) -> Array:
    """Exponential floats with rate 1 (density exp(-x) on x >= 0): `-log(1 - u)`.

    Example:
      >>> bool((exponential(PRNGKey(0), (100,)) >= 0).all())
      True
    """
    key = _check_key(key, "exponential")
    shape = _canonical_shape(shape, "exponential")
    dtype = _float_dtype(dtype, "exponential")
    return lax.neg(lax.log1p(lax.neg(_unit(key, shape, dtype))))


def gumbel(key: Array, shape: Shape = (), dtype: DTypeLike = float) -> Array:
    """Standard Gumbel floats: `-log(-log(u))` with u in the open interval (0, 1).

    Example:
      >>> bool(jnp.isfinite(gumbel(PRNGKey(0), (100,))).all())
      True
    """
    key = _check_key(key, "gumbel")
    shape = _canonical_shape(shape, "gumbel")
    dtype = _float_dtype(dtype, "gumbel")
    return _gumbel(key, shape, dtype)


def _gumbel(key: Array, shape: tuple, dtype: np.dtype) -> Array:
    return lax.neg(lax.log(lax.neg(lax.log(_open_unit(key, shape, dtype)))))


# --------------------------------------------------------------------------------------------
# Discrete distributions
# --------------------------------------------------------------------------------------------


def bernoulli(key: Array, p: float | Array = 0.5, shape: Shape | None = None) -> Array:
    """Random booleans, True with probability `p`.

    Args:
      key: a key.
      p: the probability of True (scalar or array broadcastable to `shape`).
      shape: the result's shape (default: `p`'s shape).

    Returns:
      A bool array.

    Example:
      >>> bernoulli(PRNGKey(0), 0.0, (3,))
      Array([False, False, False], dtype=bool)
    """
    key = _check_key(key, "bernoulli")
    p = jnp.asarray(p)
    if p.dtype.kind != "f":
        p = p.astype(default_float())
    shape = p.shape if shape is None else _canonical_shape(shape, "bernoulli")
    _check_broadcast("bernoulli", shape, p.shape)
    return _unit(key, shape, p.dtype) < p


def randint(key: Array, shape: Shape, minval: int | Array, maxval: int | Array,
            dtype: DTypeLike = int) -> Array:
    """Uniform integers in [minval, maxval).

    Two random words `hi, lo` are reduced as `(hi * 2**32 + lo) mod (maxval - minval)`,
    which is exact (bias below 2**-32) for ranges up to 2**16; wider ranges use `lo` alone,
    with a relative bias below range / 2**32. Where maxval <= minval the result is minval.

    Args:
      key: a key.
      shape: the result's shape; `minval` and `maxval` must broadcast to it.
      minval: the inclusive lower bound (int or integer array; clipped to `dtype`'s range).
      maxval: the exclusive upper bound.
      dtype: an integer dtype.

    Returns:
      An array of `shape` and `dtype`.

    Example:
      >>> x = randint(PRNGKey(0), (1000,), 0, 10)
      >>> int(x.min()), int(x.max())
      (0, 9)
    """
    key = _check_key(key, "randint")
    shape = _canonical_shape(shape, "randint")
    dtype = canonicalize(dtype)
    if dtype.kind not in "iu":
        raise TypeError(f"random.randint: dtype must be an integer dtype, got {dtype.name}")
    minval, maxval = (_int_param(v, dtype, shape) for v in (minval, maxval))
    unsigned = _UINT64 if dtype.itemsize == 8 else _UINT32
    # The difference wraps in `dtype`; read it as unsigned of the same width, then widen.
    same_width = np.dtype(f"uint{8 * dtype.itemsize}")
    span = lax.convert_element_type(lax.sub(maxval, minval), same_width)
    span = lax.convert_element_type(span, unsigned)
    span = lax.select_n(lax.le(maxval, minval), span, lax.full(shape, 1, unsigned))
    key_hi, key_lo = split(key)
    if unsigned == _UINT64:
        offset = lax.rem(_bits(key_lo, shape, unsigned), span)
    else:
        offset = _offset32(_bits(key_hi, shape, unsigned), _bits(key_lo, shape, unsigned), span)
    return lax.add(minval, lax.convert_element_type(offset, dtype))


def _offset32(hi: Array, lo: Array, span: Array) -> Array:
    """(hi * 2**32 + lo) mod span for spans up to 2**16, lo mod span above, in uint32.

    Every intermediate of the selected branch stays below 2**32, so the result does not
    depend on how wide the arithmetic is (NumPy wraps at 32 bits, compiled code may not).
    """
    def mod(x):
        return lax.rem(x, span)

    two32_mod = mod(lax.add(mod(lax.full_like(span, 0xFFFFFFFF)), _const(1, _UINT32)))
    combined = mod(lax.add(lax.mul(mod(hi), two32_mod), mod(lo)))
    small = lax.le(span, lax.full_like(span, 2**16))
    return lax.select_n(small, mod(lo), combined)


def categorical(key: Array, logits: Array, axis: int = -1, shape: Shape | None = None) -> Array:
    """Random indices along `axis`, index i drawn with probability softmax(logits)[i].

    Uses the Gumbel-max trick: argmax(logits + Gumbel noise). Logits of -inf are never drawn.

    Args:
      key: a key.
      logits: unnormalised log-probabilities.
      axis: the axis of `logits` that indexes the categories.
      shape: the result's shape (default: `logits.shape` without `axis`); its trailing
        dimensions must broadcast with that batch shape, leading ones draw repeated samples.

    Returns:
      An int32 array of `shape`.

    Example:
      >>> categorical(PRNGKey(0), jnp.array([0.0, -jnp.inf, -jnp.inf]), shape=(3,))
      Array([0, 0, 0], dtype=int32)
    """
    key = _check_key(key, "categorical")
    logits = jnp.asarray(logits)
    if logits.dtype.kind != "f":
        logits = logits.astype(default_float())
    if logits.ndim == 0:
        raise ValueError("random.categorical: logits must have at least one axis")
    axis = _normalize_axis(axis, logits.ndim, "categorical")
    batch_shape = logits.shape[:axis] + logits.shape[axis + 1:]
    shape = batch_shape if shape is None else _canonical_shape(shape, "categorical")
    if len(shape) < len(batch_shape):
        raise ValueError(f"random.categorical: shape {shape} has fewer dimensions than the "
                         f"logits' batch shape {batch_shape}")
    prefix = shape[:len(shape) - len(batch_shape)]
    _check_broadcast("categorical", shape[len(prefix):], batch_shape)
    noise_shape = (*prefix, *shape[len(prefix):axis + len(prefix)], logits.shape[axis],
                   *shape[axis + len(prefix):])
    noise = _gumbel(key, noise_shape, logits.dtype)
    return jnp.argmax(noise + logits, axis=axis + len(prefix)).astype(default_int())


def permutation(key: Array, x: int | Array, axis: int = 0, independent: bool = False) -> Array:
    """A random permutation of `arange(x)` (int `x`), or `x` shuffled along `axis`.

    Each round sorts random 32-bit words (`argsort` is stable); the number of rounds grows
    with log(n) so that ties, which would keep their order, are negligible (as in JAX).

    Args:
      key: a key.
      x: an int n (permute 0..n-1) or an array.
      axis: the axis of `x` to shuffle.
      independent: if True, shuffle each slice along `axis` independently.

    Returns:
      An int32 array of shape (n,), or an array like `x`.

    Example:
      >>> sorted(permutation(PRNGKey(0), 5).tolist())
      [0, 1, 2, 3, 4]
    """
    key = _check_key(key, "permutation")
    if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)):
        if x < 0:
            raise ValueError(f"random.permutation: x must be non-negative, got {x}")
        x = lax.iota(default_int(), int(x))
    x = jnp.asarray(x)
    if x.ndim == 0:
        # A 0-d integer array stands for its (concrete) value, as in JAX.
        if x.dtype.kind not in "iu":
            raise TypeError("random.permutation: x must be an int or an array with at least "
                            f"one axis, got a 0-d {x.dtype.name} array")
        return permutation(key, int(x), axis, independent)
    axis = _normalize_axis(axis, x.ndim, "permutation")
    n = x.shape[axis]
    if n <= 1:
        return x
    if independent:
        for sub in _round_keys(key, n):
            order = argsort(_bits(sub, x.shape, _UINT32), axis)
            x = jnp.take_along_axis(x, order, axis, mode="clip")
        return x
    order = lax.iota(default_int(), n)
    for sub in _round_keys(key, n):
        order = jnp.take(order, argsort(_bits(sub, (n,), _UINT32)), mode="clip")
    return jnp.take(x, order, axis=axis, mode="clip")


def _round_keys(key: Array, n: int) -> list[Array]:
    rounds = max(1, math.ceil(3 * math.log(max(n, 2)) / math.log(2.0**32)))
    keys = split(key, rounds)
    return [keys[i] for i in range(rounds)]


def choice(key: Array, a: int | Array, shape: Shape = (), replace: bool = True,
           p: Array | None = None, axis: int = 0) -> Array:
    """Random elements of `a` (or of `arange(a)`), with or without replacement.

    Args:
      key: a key.
      a: an int n (choose from 0..n-1) or an array (choose slices along `axis`).
      shape: how many to draw, as a shape.
      replace: draw with replacement (True) or without (False; then prod(shape) <= n).
      p: optional probabilities of the n candidates (non-negative, summing to 1).
      axis: the axis of `a` to choose along.

    Returns:
      An array of shape `shape` (int `a`), or `a.shape` with `axis` replaced by `shape`.

    Example:
      >>> sorted(choice(PRNGKey(0), 5, (5,), replace=False).tolist())
      [0, 1, 2, 3, 4]
    """
    key = _check_key(key, "choice")
    shape = _canonical_shape(shape, "choice")
    if isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_)):
        n, arr = int(a), None
    else:
        arr = jnp.asarray(a)
        if arr.ndim == 0:
            raise ValueError("random.choice: a must be an int or an array with at least one axis")
        axis = _normalize_axis(axis, arr.ndim, "choice")
        n = arr.shape[axis]
    count = math.prod(shape)
    if n <= 0 and count > 0:
        raise ValueError("random.choice: cannot choose from an empty population")
    if not replace and count > n:
        raise ValueError(f"random.choice: cannot take {count} samples from {n} without "
                         "replacement; use replace=True")
    index = _choice_indices(key, n, count, replace, p)
    if arr is None:
        return jnp.reshape(index, shape)
    taken = jnp.take(arr, index, axis=axis, mode="clip")
    return jnp.reshape(taken, arr.shape[:axis] + shape + arr.shape[axis + 1:])


def _choice_indices(key: Array, n: int, count: int, replace: bool, p) -> Array:
    if p is None:
        if replace:
            return randint(key, (count,), 0, n)
        return permutation(key, n)[:count]
    p = jnp.asarray(p)
    if p.shape != (n,):
        raise ValueError(f"random.choice: p must have shape ({n},), got {p.shape}")
    logits = jnp.log(p if p.dtype.kind == "f" else p.astype(default_float()))
    if replace:
        return categorical(key, logits, shape=(count,))
    # Gumbel-top-k: the `count` largest perturbed log-probabilities, a sample without
    # replacement with the right probabilities.
    perturbed = logits + _gumbel(key, (n,), logits.dtype)
    return argsort(-perturbed)[:count]


# --------------------------------------------------------------------------------------------
# erf_inv
# --------------------------------------------------------------------------------------------

# Giles (2011), single precision: erfinv(x) = x * P(w), w = -log((1 - x)(1 + x)), with one
# polynomial for the centre (w < 5) and one for the tails.
_ERFINV_CENTRE = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                  0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_ERFINV_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
                0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def erf_inv(x: Array) -> Array:
    """The inverse error function on (-1, 1), from primitives (so jit/vmap/grad apply).

    Giles' single-precision approximation (relative error about 1e-7 for float32); float64
    inputs get one Newton step on erf(z) = x where |z| < 3 (erf has full precision there).

    Args:
      x: a float array with values in (-1, 1) (±1 give ±inf).

    Returns:
      z with erf(z) = x, of `x`'s shape and dtype.

    Example:
      >>> round(float(erf_inv(jnp.float32(0.5))), 5)
      0.47694
    """
    x = jnp.asarray(x)
    w = -jnp.log((1 - x) * (1 + x))
    centre = _horner(_ERFINV_CENTRE, w - 2.5)
    tail = _horner(_ERFINV_TAIL, jnp.sqrt(w) - 3.0)
    z = jnp.where(w < 5.0, centre, tail) * x
    if x.dtype.itemsize == 8:
        step = (lax.erf(z) - x) / ((2 / math.sqrt(math.pi)) * jnp.exp(-z * z))
        z = jnp.where(jnp.abs(z) < 3.0, z - step, z)
    return z


def _horner(coefficients: Sequence[float], w: Array) -> Array:
    out = jnp.full_like(w, coefficients[0])
    for c in coefficients[1:]:
        out = c + out * w
    return out


# --------------------------------------------------------------------------------------------
# Argument checks and small helpers
# --------------------------------------------------------------------------------------------


def _const(value, dtype) -> Array:
    return lax.full((), value, dtype)


def _static_int(value, name: str, what: str) -> int:
    try:
        return int(value)
    except core.ConcretizationTypeError:
        raise core.ConcretizationTypeError(
            f"random.{name}: {what} must be a static Python int (it sets a shape), got a "
            "traced value; pass it with static_argnums under jit") from None


def _canonical_shape(shape, name: str) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        shape = tuple(int(d) for d in shape)
    except (TypeError, core.ConcretizationTypeError):
        raise TypeError(f"random.{name}: shape must be a tuple of static ints, got "
                        f"{shape!r}") from None
    if any(d < 0 for d in shape):
        raise ValueError(f"random.{name}: negative dimension in shape {shape}")
    return shape


def _is_python_number(value, number: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == number


def _float_dtype(dtype, name: str) -> np.dtype:
    dtype = canonicalize(dtype)
    if dtype.kind != "f":
        raise TypeError(f"random.{name}: dtype must be a floating dtype, got {dtype.name}; "
                        "use random.randint or random.bits for integers")
    return dtype


def _work_dtype(dtype: np.dtype) -> np.dtype:
    """Half precision is sampled in float32 and rounded: erfinv needs the extra bits."""
    return np.dtype(np.float32) if dtype.itemsize < 4 else dtype


def _normalize_axis(axis: int, ndim: int, name: str) -> int:
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"random.{name}: axis {axis} is out of bounds for rank {ndim}")
    return axis % ndim


def _check_broadcast(name: str, shape: tuple, param_shape: tuple) -> None:
    try:
        if np.broadcast_shapes(shape, param_shape) == shape:
            return
    except ValueError:
        pass
    raise ValueError(f"random.{name}: a parameter of shape {param_shape} does not broadcast "
                     f"to the requested shape {shape}")


def _param(value, dtype: np.dtype, name: str, shape: tuple) -> Array:
    value = jnp.asarray(value, dtype=dtype) if not isinstance(value, core.Array) else value
    _check_broadcast(name, shape, value.shape)
    return value.astype(dtype)


def _int_param(value, dtype: np.dtype, shape: tuple) -> Array:
    """An integer bound as a `dtype` array of `shape`; Python ints clipped to dtype's range."""
    if isinstance(value, (int, np.integer)):
        info = np.iinfo(dtype)
        value = np.asarray(min(max(int(value), info.min), info.max), dtype)
    value = jnp.asarray(value)
    if value.dtype.kind == "f":
        # As in JAX, float bounds are accepted and truncated toward zero.
        info = np.iinfo(dtype)
        hi = np.asarray(info.max, value.dtype)
        hi = np.nextafter(hi, 0) if hi > info.max else hi  # rounded up past the range
        value = jnp.clip(value, np.asarray(info.min, value.dtype), hi)
    elif value.dtype.kind not in "iu":
        raise TypeError(f"random.randint: minval and maxval must be numbers, got "
                        f"{value.dtype.name}")
    _check_broadcast("randint", shape, value.shape)
    return jnp.broadcast_to(value.astype(dtype), shape)
