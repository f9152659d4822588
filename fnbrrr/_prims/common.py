"""Helpers shared by the primitive families: shape checks and error messages."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fnbrrr.core import ShapedArray


def describe(*avals: ShapedArray) -> str:
    """`f32[3,4], i32[]` for error messages."""
    return ", ".join(a.str_short() for a in avals)


def check_axes(op: str, axes: Sequence[int], ndim: int, aval: ShapedArray) -> tuple[int, ...]:
    """Validate non-negative, unique axes of an operand of rank `ndim` (already normalised)."""
    axes = tuple(int(a) for a in axes)
    for a in axes:
        if not 0 <= a < ndim:
            raise ValueError(
                f"{op}: axis {a} is out of bounds for an operand of shape {aval.shape} "
                f"({aval.str_short()}, rank {ndim})"
            )
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: repeated axis in {axes} for operand {aval.str_short()}")
    return axes


def check_same_dtype(op: str, *avals: ShapedArray) -> np.dtype:
    """All operands of `op` must share one dtype (fnbrrr.numpy promotes before binding)."""
    dtype = avals[0].dtype
    if any(a.dtype != dtype for a in avals[1:]):
        raise TypeError(
            f"{op} requires arguments to have the same dtype, got {describe(*avals)}; "
            "convert them with .astype() or use the fnbrrr.numpy function, which promotes"
        )
    return dtype


def check_dtype_kind(op: str, aval: ShapedArray, kinds: str, wanted: str) -> None:
    """Raise TypeError unless `aval.dtype.kind` is one of `kinds` ('f', 'iu', 'b', ...)."""
    if aval.dtype.kind not in kinds:
        raise TypeError(f"{op} does not accept dtype {aval.dtype.name}; it needs {wanted}")


def all_weak(*avals: ShapedArray) -> bool:
    """An output is weakly typed only when every input is."""
    return all(a.weak_type for a in avals)


def normalize_axis(op: str, axis: int, ndim: int) -> int:
    """`axis` in [-ndim, ndim) as a non-negative int, or ValueError naming `op`."""
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of bounds for an array of rank {ndim}")
    return axis % ndim if ndim else 0
