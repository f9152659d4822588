"""Helpers shared by the modules of `fnbrrr.ad` (and imported by `fnbrrr.custom_derivatives`
and `fnbrrr.test_util`): arrays and avals, checked inputs with readable paths for error
messages, and functions of pytrees as functions of flat leaves."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fnbrrr.ad_util import is_zero
from fnbrrr.core import ArrayImpl, MainTrace, ShapedArray, Tracer, get_aval
from fnbrrr.tree_util import PyTreeDef, tree_flatten, tree_map, tree_unflatten


def _lax():
    # Imported lazily so that fnbrrr.lax (and control flow built there) may import this module.
    from fnbrrr import lax

    return lax


def _vmap(*args, **kwargs):
    from fnbrrr.batching import vmap

    return vmap(*args, **kwargs)


def _is_float(aval: ShapedArray) -> bool:
    return aval.dtype.kind == "f"


def _zeros(aval: ShapedArray):
    """A real zero array of `aval`'s shape and dtype (staged under jit, concrete otherwise)."""
    return _lax().full(aval.shape, 0, aval.dtype)


def _instantiate(t, aval: ShapedArray):
    """`t`, or zeros of `aval` where `t` is a symbolic zero or None."""
    return _zeros(aval) if is_zero(t) else t


def _instantiate_all(ts: Sequence, avals: Sequence[ShapedArray]) -> list:
    """`_instantiate` over a list: one real array per aval."""
    return [_instantiate(t, a) for t, a in zip(ts, avals)]


def _derivatives_out(ts: Sequence, avals: Sequence[ShapedArray]) -> list:
    """The derivatives that grad/jvp/vjp/linearize/the Jacobians hand back to their caller:
    real arrays, weakly typed where the value they belong to is, as in JAX (d/dx at a Python
    float is a weakly typed float32, which then promotes like the float it stands for). An
    integer value's float0 tangent stays as it is. Only at the API's edge: inside a loop's
    derivative rules the conversion would be an operation per step."""
    from fnbrrr._prims.elementwise import convert_element_type

    def typed(t, aval):
        t = _instantiate(t, aval)
        if aval.weak_type:
            t_aval = get_aval(t)
            if not t_aval.weak_type and t_aval.dtype == aval.dtype:
                return convert_element_type(t, aval.dtype, weak_type=True)
        return t

    return [typed(t, a) for t, a in zip(ts, avals)]


def _avals(xs: Sequence) -> list[ShapedArray]:
    return [get_aval(x) for x in xs]


def _as_array(x):
    """`x` as an fnbrrr array or tracer (NumPy arrays and Python scalars are converted)."""
    if isinstance(x, (Tracer, ArrayImpl)):
        return x
    aval = get_aval(x)
    return ArrayImpl(np.asarray(x, aval.dtype), aval.weak_type)


def _concrete(value) -> np.ndarray:
    """The NumPy value of an array, a tracer with a concrete value, or anything array-like."""
    if isinstance(value, Tracer):
        return value.concrete_value()
    if type(value) is ArrayImpl:
        return value._value
    return np.asarray(value)


def _fun_name(fun) -> str:
    name = getattr(fun, "__name__", None)
    if name is None and isinstance(fun, functools.partial):
        return _fun_name(fun.func)
    return name or type(fun).__name__


def _type_summary(x) -> str:
    """`a tuple of length 3`, `an array f32[2]`...: what a user function returned, for errors."""
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of length {len(x)}"
    aval = getattr(x, "aval", None)
    if aval is not None:
        return f"an array {aval.str_short()}"
    return f"a value of type {type(x).__name__}"


# --- where a bad leaf sits, for error messages ----------------------------------------------


class _LazyPaths:
    """Leaf paths for error messages, computed by `make()` only when one is asked for."""

    __slots__ = ("_make", "_paths")

    def __init__(self, make: Callable[[], list[str]]):
        self._make, self._paths = make, None

    def __getitem__(self, i: int) -> str:
        if self._paths is None:
            self._paths = self._make()
        return self._paths[i]


def _not_an_array(x, path: str, what: str) -> TypeError:
    return TypeError(
        f"{what}: the value at {path} is a {type(x).__name__}, which is not an array; "
        "pass arrays, NumPy arrays or Python scalars (close over other values instead)"
    )


def _checked_input(x, path: str, what: str):
    """`x` as an array, or a TypeError naming where it came from."""
    try:
        return _as_array(x)
    except TypeError:
        raise _not_an_array(x, path, what) from None


def _checked_inputs(leaves: Sequence, paths: _LazyPaths, what: str) -> list:
    """`_checked_input` over leaves; the paths are computed only for an error."""
    out = []
    for i, x in enumerate(leaves):
        try:
            out.append(_as_array(x))
        except TypeError:
            raise _not_an_array(x, paths[i], what) from None
    return out


# --- pytrees in, pytrees out ----------------------------------------------------------------


def _flatten_fun(
    fun: Callable, in_tree: PyTreeDef, has_aux: bool = False, kwargs=None, name: str | None = None
):
    """`fun` on flat leaves: returns (flat_fun, store); store gets 'out_tree' (and 'aux')."""
    store: dict[str, Any] = {}
    kwargs = kwargs or {}
    name = name or _fun_name(fun)

    def flat_fun(*flat_args):
        out = fun(*tree_unflatten(in_tree, flat_args), **kwargs)
        if has_aux:
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise TypeError(
                    f"{name} was transformed with has_aux=True, so it must return a "
                    f"pair (output, auxiliary_data); it returned {_type_summary(out)}"
                )
            out, store["aux"] = out
        out_flat, store["out_tree"] = tree_flatten(out)
        return out_flat

    return flat_fun, store


def _strip_tracers(tree, main: MainTrace):
    """Auxiliary outputs with this transformation's tracers replaced by their plain values."""
    # Imported here: the modules of the two tracer types import this one.
    from fnbrrr.ad._forward import JVPTracer
    from fnbrrr.ad._reverse import ReverseTracer

    def strip(x):
        if isinstance(x, JVPTracer) and x._trace.main is main:
            return x.primal
        if isinstance(x, ReverseTracer) and x._trace.main is main:
            return x.value
        return x

    return tree_map(strip, tree)
