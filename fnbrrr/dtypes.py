"""Dtypes: canonical dtypes, weak Python scalars, and JAX's type-promotion lattice.

A value's type is a pair (dtype, weak). Python scalars are *weak*: they take the dtype of the
array they meet (`float32_array * 2.0` stays float32). Promotion is the least upper bound in
the lattice below, where `i*` and `f*` are the weak integer and float kinds:

    bool -> i* -> u8 -> u16 -> u32 -> u64 -> f*        i* -> i8 -> i16 -> i32 -> i64 -> f*
    u8 -> i16,  u16 -> i32,  u32 -> i64                 f* -> f16 -> f32 -> f64

64-bit types exist only with `config.update("jax_enable_x64", True)`; otherwise they are
canonicalised to their 32-bit counterparts, as in JAX.
"""

from __future__ import annotations

import functools

import numpy as np

from fnbrrr.config import config

bool_ = np.dtype(np.bool_)
int8, int16, int32, int64 = (np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64))
uint8, uint16, uint32, uint64 = (np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64))
float16, float32, float64 = (np.dtype(t) for t in (np.float16, np.float32, np.float64))

SUPPORTED = (bool_, int8, int16, int32, int64, uint8, uint16, uint32, uint64,
             float16, float32, float64)
_SUPPORTED_SET = frozenset(SUPPORTED)

_WEAK_INT, _WEAK_FLOAT = "i*", "f*"

# Each node's immediate successors in the promotion lattice.
_LATTICE = {
    bool_: [_WEAK_INT],
    _WEAK_INT: [uint8, int8],
    uint8: [int16, uint16], uint16: [int32, uint32], uint32: [int64, uint64], uint64: [_WEAK_FLOAT],
    int8: [int16], int16: [int32], int32: [int64], int64: [_WEAK_FLOAT],
    _WEAK_FLOAT: [float16], float16: [float32], float32: [float64], float64: [],
}


def _upper_bounds(node) -> frozenset:
    seen, stack = set(), [node]
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(_LATTICE[n])
    return frozenset(seen)


_UPPER = {node: _upper_bounds(node) for node in _LATTICE}
_X64_CANONICAL = {int64: int32, uint64: uint32, float64: float32}


def x64_enabled() -> bool:
    """Whether 64-bit types are on (`config.update("jax_enable_x64", True)`)."""
    return config.jax_enable_x64


def default_float() -> np.dtype:
    """float32, or float64 with x64 on."""
    return float64 if config.jax_enable_x64 else float32


def default_int() -> np.dtype:
    """int32, or int64 with x64 on."""
    return int64 if config.jax_enable_x64 else int32


def canonicalize(dtype) -> np.dtype:
    """The dtype fnbrrr stores for `dtype`: 64-bit types become 32-bit unless x64 is on.

    Example:
        >>> canonicalize(np.float64)
        dtype('float32')
    """
    dt = np.dtype(dtype)
    if dt not in _SUPPORTED_SET:
        raise TypeError(
            f"dtype {dt} is not supported by fnbrrr; use one of "
            + ", ".join(str(d) for d in SUPPORTED)
        )
    if not config.jax_enable_x64:
        return _X64_CANONICAL.get(dt, dt)
    return dt


def is_float(dtype) -> bool:
    """True for floating dtypes."""
    return np.dtype(dtype).kind == "f"


def is_int(dtype) -> bool:
    """True for signed or unsigned integer dtypes (not bool)."""
    return np.dtype(dtype).kind in "iu"


def _node(dtype: np.dtype, weak: bool):
    if weak:
        if dtype.kind == "f":
            return _WEAK_FLOAT
        if dtype.kind in "iu":
            return _WEAK_INT
    return dtype


def _node_dtype(node) -> tuple[np.dtype, bool]:
    if node == _WEAK_FLOAT:
        return default_float(), True
    if node == _WEAK_INT:
        return default_int(), True
    return node, False


@functools.lru_cache(maxsize=4096)
def _promote_cached(pairs: tuple, x64: bool) -> tuple[np.dtype, bool]:
    dtypes = {d for d, _ in pairs}
    if len(dtypes) == 1:
        return pairs[0][0], all(w for _, w in pairs)
    nodes = {_node(d, w) for d, w in pairs}
    common = frozenset.intersection(*(_UPPER[n] for n in nodes))
    # The least upper bound is the common bound from which every other common bound is reachable.
    lub = next(n for n in common if _UPPER[n] >= common)
    dtype, weak = _node_dtype(lub)
    return canonicalize(dtype), weak


def promote_types(*typed: tuple[np.dtype, bool]) -> tuple[np.dtype, bool]:
    """Join (dtype, weak) pairs in JAX's lattice; returns the result's (dtype, weak).

    Example:
        >>> promote_types((int32, False), (float32, True))   # int32 array * 0.5
        (dtype('float32'), True)
    """
    return _promote_cached(tuple(typed), config.jax_enable_x64)


def python_scalar_dtype(x) -> np.dtype:
    """The (canonical) dtype a Python scalar gets: bool, default int, or default float."""
    if isinstance(x, bool):
        return bool_
    if isinstance(x, int):
        return default_int()
    if isinstance(x, float):
        return default_float()
    if isinstance(x, complex):
        raise TypeError("fnbrrr does not support complex numbers")
    raise TypeError(f"{type(x).__name__} is not a Python scalar")


def _reset_cache(name, value) -> None:
    if name == "jax_enable_x64":
        _promote_cached.cache_clear()


config.on_change(_reset_cache)
