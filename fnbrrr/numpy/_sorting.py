"""Sorting: argsort and sort, on the stable `argsort` primitive."""

from __future__ import annotations

from fnbrrr._prims.sorting import argsort as _argsort_primitive
from fnbrrr.numpy._promotion import to_array
from fnbrrr.numpy._take import take_along_axis


def argsort(a, axis: int | None = -1, *, stable: bool = True, descending: bool = False):
    """Indices that sort `a` along `axis` (stable: ties keep their order); None flattens.

    Example:
        >>> jnp.argsort(jnp.array([3.0, 1.0, 2.0]))
        Array([1, 2, 0], dtype=int32)
    """
    a = to_array(a, "argsort")
    if axis is None:
        a, axis = a.reshape(-1), 0
    if descending:
        from fnbrrr.numpy._shape import flip

        n = a.shape[axis]
        return (n - 1) - flip(_argsort_primitive(flip(a, axis), axis), axis)
    return _argsort_primitive(a, axis)


def sort(a, axis: int | None = -1, *, stable: bool = True, descending: bool = False):
    """`a` sorted along `axis` (None flattens first).

    Example:
        >>> jnp.sort(jnp.array([3.0, 1.0, 2.0]))
        Array([1., 2., 3.], dtype=float32)
    """
    a = to_array(a, "sort")
    if axis is None:
        a, axis = a.reshape(-1), 0
    return take_along_axis(a, argsort(a, axis, descending=descending), axis, mode="clip")
