"""Random-bit primitives: `threefry2x32`, the counter-based hash under `fnbrrr.random`.

Threefry-2x32 with 20 rounds (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy
as 1, 2, 3", SC 2011; the Random123 library) maps a 64-bit key and a 64-bit counter to 64
pseudo-random bits. It is a pure function of its inputs, so a random stream is just
`threefry2x32(key, 0), threefry2x32(key, 1), ...`: no state, nothing to thread through a
program, and every element can be computed independently (it vectorises, batches and
compiles like any elementwise operation).

    threefry2x32(k0, k1, x0, x1) -> (y0, y1)      all operands and results uint32

Each operand is 0-d or has the common shape of the others (the lax convention for elementwise
operations: a 0-d operand broadcasts). The primitive is not differentiable (its outputs are
integers) and batches elementwise.

`threefry2x32_scalar` is the same function on Python/Numba scalars, for a compiled lowering.
"""

from __future__ import annotations

import numpy as np

from fnbrrr._prims.common import describe
from fnbrrr.core import Primitive, ShapedArray, get_aval

# Rotation amounts and the key-schedule parity constant of Threefry-2x32 (Random123).
ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
KEY_PARITY = 0x1BD11BDA
_UINT32 = np.dtype(np.uint32)

# --------------------------------------------------------------------------------------------
# The NumPy implementation: uint32 arrays, whose arithmetic wraps modulo 2**32
# --------------------------------------------------------------------------------------------


def _rotate_left(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def _threefry2x32_impl(k0, k1, x0, x1):
    shape = np.broadcast_shapes(*(np.shape(a) for a in (k0, k1, x0, x1)))
    # 1-D copies: 0-d NumPy results are scalars, whose overflow would warn instead of wrap.
    k0, k1, x0, x1 = (np.broadcast_to(np.asarray(a, _UINT32), shape).reshape(-1).copy()
                      for a in (k0, k1, x0, x1))
    ks = (k0, k1, k0 ^ k1 ^ np.uint32(KEY_PARITY))
    x0 += ks[0]
    x1 += ks[1]
    for block in range(5):  # 5 blocks of 4 rounds, a key injection after each block
        for r in ROTATIONS[block % 2]:
            x0 += x1
            x1 = _rotate_left(x1, r)
            x1 ^= x0
        x0 += ks[(block + 1) % 3]
        x1 += ks[(block + 2) % 3] + np.uint32(block + 1)
    return x0.reshape(shape), x1.reshape(shape)


def threefry2x32_scalar(k0: int, k1: int, x0: int, x1: int) -> tuple[int, int]:
    """Threefry-2x32 on one counter, with 64-bit integer arithmetic masked to 32 bits.

    Written for Numba (`numba.njit(inline="always")`) as well as plain Python: every value is
    widened to int64 first and masked after each operation, so no step relies on a type's
    wraparound (Numba computes uint32 arithmetic in 64 bits).

    Args:
      k0, k1: the key words.
      x0, x1: the counter words.

    Returns:
      The two output words, as ints in [0, 2**32).

    Example:
      >>> [hex(y) for y in threefry2x32_scalar(0, 0, 0, 0)]
      ['0x6b200159', '0x99ba4efe']
    """
    mask = 0xFFFFFFFF
    k0, k1, x0, x1 = int(k0) & mask, int(k1) & mask, int(x0) & mask, int(x1) & mask
    k2 = k0 ^ k1 ^ 0x1BD11BDA
    x0 = (x0 + k0) & mask
    x1 = (x1 + k1) & mask
    for block in range(5):
        rotations = (13, 15, 26, 6) if block % 2 == 0 else (17, 29, 16, 24)
        for r in rotations:
            x0 = (x0 + x1) & mask
            x1 = ((x1 << r) | (x1 >> (32 - r))) & mask
            x1 ^= x0
        inject = block % 3
        x0 = (x0 + (k1 if inject == 0 else k2 if inject == 1 else k0)) & mask
        x1 = (x1 + (k2 if inject == 0 else k0 if inject == 1 else k1) + block + 1) & mask
    return x0, x1


# --------------------------------------------------------------------------------------------
# The primitive and its rules
# --------------------------------------------------------------------------------------------

threefry2x32_p = Primitive("threefry2x32", multiple_results=True, differentiable=False)
threefry2x32_p.doc = "Threefry-2x32 (20 rounds): (key words, counter words) -> 64 random bits"


def _threefry2x32_abstract_eval(*avals: ShapedArray) -> list[ShapedArray]:
    if any(a.dtype != _UINT32 for a in avals):
        raise TypeError(
            f"threefry2x32 requires uint32 operands (k0, k1, x0, x1), got {describe(*avals)}; "
            "convert keys and counters with .astype(jnp.uint32)"
        )
    shapes = {a.shape for a in avals if a.shape}
    if len(shapes) > 1:
        raise ValueError(
            f"threefry2x32 operands must be 0-d or share one shape, got {describe(*avals)}; "
            "broadcast the counters with lax.broadcast_in_dim first"
        )
    shape = shapes.pop() if shapes else ()
    return [ShapedArray(shape, _UINT32, False), ShapedArray(shape, _UINT32, False)]


def _threefry2x32_batch(vals, dims):
    """Elementwise: every operand gets the batch axis in front; 0-d unbatched ones broadcast."""
    from fnbrrr._prims.shape import broadcast_in_dim
    from fnbrrr.batching import batch_size, moveaxis

    size = batch_size(vals, dims)
    logical = [get_aval(v).shape if d is None else _drop_axis(get_aval(v).shape, d)
               for v, d in zip(vals, dims)]
    shape = max(logical, key=len)
    aligned = []
    for v, d, own in zip(vals, dims, logical):
        if d is None:
            if own:
                v = broadcast_in_dim(v, (size, *own), tuple(range(1, len(own) + 1)))
        else:
            v = moveaxis(v, d, 0)
            if len(own) < len(shape):  # a batched 0-d operand meets full-shaped ones
                v = broadcast_in_dim(v, (size, *shape), (0,))
        aligned.append(v)
    return threefry2x32_p.bind(*aligned), [0, 0]


def _drop_axis(shape: tuple, axis: int) -> tuple:
    return shape[:axis] + shape[axis + 1:]


threefry2x32_p.impl = _threefry2x32_impl
threefry2x32_p.abstract_eval = _threefry2x32_abstract_eval
threefry2x32_p.batch = _threefry2x32_batch


def threefry2x32(k0, k1, x0, x1) -> tuple:
    """Threefry-2x32 (20 rounds) of counters `(x0, x1)` under key `(k0, k1)`.

    Args:
      k0, k1: uint32 key words, 0-d or of the counters' shape.
      x0, x1: uint32 counter words, 0-d or of one common shape.

    Returns:
      `(y0, y1)`: two uint32 arrays of the common shape.

    Example:
      >>> import numpy as np
      >>> y0, y1 = threefry2x32(*np.zeros(4, np.uint32))
      >>> hex(int(y0)), hex(int(y1))
      ('0x6b200159', '0x99ba4efe')
    """
    y0, y1 = threefry2x32_p.bind(k0, k1, x0, x1)
    return y0, y1
