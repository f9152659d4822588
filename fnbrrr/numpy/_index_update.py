"""Functional updates: `x.at[idx].set/add/multiply/min/max/power/apply/get`, as JAX's.

An update parses its index with `_indexing.parse_index`, the plan `x[idx]` uses, and runs it
in reverse: unit-step basic indices become a `dynamic_update_slice`, everything else one
scatter whose out-of-range updates are dropped (an out-of-range static int drops the whole
update, as in JAX). `get` is `x[idx]` with a choice of out-of-range behaviour (`mode`).
"""

from __future__ import annotations

import builtins
import math

import numpy as np

from fnbrrr import lax
from fnbrrr.numpy._indexing import (
    ENTRY_ARRAY,
    ENTRY_INT,
    ENTRY_NONE,
    ENTRY_SLICE,
    IndexPlan,
    const_indices,
    getitem,
    index_columns,
    index_error_for_list,
    parse_index,
)
from fnbrrr.numpy._promotion import (
    BOOL,
    Tracer,
    broadcast_to_shape,
    scalar_const,
    to_array,
)
from fnbrrr.numpy._take import fill_value_for, take

# --------------------------------------------------------------------------------------------
# x.at[idx].set / add / multiply / get
# --------------------------------------------------------------------------------------------


def _updates_for(name: str, x, plan: IndexPlan, values):
    """`values` as x's dtype, broadcast to the shape of x[idx]."""
    v = to_array(values, f"at[].{name}")
    dt, weak = x.aval.dtype, x.aval.weak_type
    if v.aval.dtype != dt:
        v = lax.convert_element_type(v, dt, weak)
    target = plan.out_shape
    s = v.shape
    ok = len(s) <= len(target) and builtins.all(
        d == t or d == 1 for d, t in zip(s[::-1], target[::-1])
    )
    if not ok:
        # NumPy also accepts values with extra leading size-1 axes.
        squeezed = s
        while len(squeezed) > len(target) and squeezed[0] == 1:
            squeezed = squeezed[1:]
        if squeezed != s and builtins.all(
            d == t or d == 1 for d, t in zip(squeezed[::-1], target[::-1])
        ):
            v = lax.reshape(v, squeezed)
            s = squeezed
        else:
            raise ValueError(
                f"at[].{name}: shape mismatch: value array of shape {s} could not be broadcast "
                f"to indexing result of shape {target}"
            )
    return broadcast_to_shape(v, target)


def _combine(name: str, old, new):
    if name == "add":
        return lax.add(old, new)
    if name == "multiply":
        return lax.mul(old, new) if old.aval.dtype != BOOL else lax.and_(old, new)
    return new


_SCATTERS = {"set": "scatter", "add": "scatter_add", "multiply": "scatter_mul"}


def scatter_update(x, idx, values, name: str):
    """x.at[idx].<name>(values) for name in set / add / multiply."""
    x = to_array(x, f"at[].{name}")
    shape = x.shape
    plan = parse_index(shape, idx)
    v = _updates_for(name, x, plan, values)
    if plan.out_of_bounds:
        return x
    entries = plan.entries
    if x.aval.dtype == BOOL and name == "add":
        name = "add_bool"
    indexed = [
        e
        for e in entries
        if e.kind in (ENTRY_INT, ENTRY_ARRAY)
        or (e.kind == ENTRY_SLICE
            and not (e.start == 0 and e.step == 1 and e.length == shape[e.dim]))
    ]
    if not indexed:  # x.at[...].op(v): the whole array
        v = lax.reshape(v, shape) if v.shape != shape else v
        if name == "add_bool":
            return lax.or_(x, v)
        return _combine(name, x, v)
    unit_basic = not plan.advanced and builtins.all(
        e.kind in (ENTRY_INT, ENTRY_NONE) or (e.kind == ENTRY_SLICE and e.step == 1)
        for e in entries
    )
    if unit_basic:
        if builtins.any(e.kind == ENTRY_SLICE and e.length == 0 for e in entries):
            return x
        starts = [0] * len(shape)
        window = list(shape)
        for e in entries:
            if e.kind == ENTRY_INT:
                starts[e.dim], window[e.dim] = e.start, 1
            elif e.kind == ENTRY_SLICE:
                starts[e.dim], window[e.dim] = e.start, e.length
        v = lax.reshape(v, tuple(window))
        if name != "set":
            limit = [s + w for s, w in zip(starts, window)]
            old = lax.slice(x, starts, limit)
            v = lax.or_(old, v) if name == "add_bool" else _combine(name, old, v)
        return lax.dynamic_update_slice(x, v, starts)
    return _general_scatter(x, plan, v, "add" if name == "add_bool" else name)


def _general_scatter(x, plan: IndexPlan, v, name: str):
    shape = x.shape
    entries = plan.entries
    # The dims of x[idx] (None dims excluded): advanced block, slices, in the result's order.
    layout = []  # ("B", j) or ("S", entry)
    if plan.advanced and not plan.adjacent:
        layout.extend(("B", j) for j in range(len(plan.bshape)))
    placed = plan.advanced and not plan.adjacent
    none_dims = []
    k = 0
    for e in entries:
        if e.kind == ENTRY_NONE:
            none_dims.append(len(layout) + k)
            k += 1
        elif e.kind == ENTRY_SLICE:
            layout.append(("S", e))
        elif e.kind == ENTRY_ARRAY and plan.advanced and not placed:
            layout.extend(("B", j) for j in range(len(plan.bshape)))
            placed = True
    # Drop None axes from the updates (they have size 1).
    kept_shape = tuple(d for i, d in enumerate(v.shape) if i not in none_dims)
    if kept_shape != v.shape:
        v = lax.reshape(v, kept_shape)

    def is_rest(item) -> bool:
        if item[0] != "S":
            return False
        e = item[1]
        return e.start == 0 and e.step == 1 and e.length == shape[e.dim]

    batch_items = [i for i, item in enumerate(layout) if not is_rest(item)]
    rest_items = [i for i, item in enumerate(layout) if is_rest(item)]
    batch_shape = tuple(v.shape[i] for i in batch_items)
    bpos = {layout[i][1]: p for p, i in enumerate(batch_items) if layout[i][0] == "B"}

    columns = []
    axes = []
    b_positions = tuple(bpos[j] for j in range(len(plan.bshape)))
    for e in entries:
        if e.kind == ENTRY_ARRAY:
            r = e.value.ndim
            columns.append((e.value, b_positions[len(b_positions) - r :], shape[e.dim]))
            axes.append(e.dim)
        elif e.kind == ENTRY_INT:
            columns.append((np.asarray(e.start), (), shape[e.dim]))
            axes.append(e.dim)
        elif e.kind == ENTRY_SLICE and not is_rest(("S", e)):
            p = next(p for p, i in enumerate(batch_items) if layout[i] == ("S", e))
            coords = e.start + e.step * np.arange(e.length)
            columns.append((coords, (p,), shape[e.dim]))
            axes.append(e.dim)
    order = sorted(range(len(axes)), key=lambda i: axes[i])
    columns = [columns[i] for i in order]
    axes = tuple(axes[i] for i in order)
    indices = index_columns(columns, batch_shape, clamp=False)
    perm = tuple(batch_items) + tuple(rest_items)
    if perm != tuple(range(len(perm))):
        v = lax.transpose(v, perm)
    return getattr(lax, _SCATTERS[name])(x, indices, v, axes)


class _IndexUpdateRef:
    """`x.at[idx]`: the target of a functional update."""

    __slots__ = ("array", "index")

    def __init__(self, array, index):
        self.array = array
        self.index = index

    def __repr__(self) -> str:
        return f"_IndexUpdateRef({self.array!r}, {self.index!r})"

    def get(self, *, indices_are_sorted=False, unique_indices=False, mode=None, fill_value=None):
        """`x[idx]`: out-of-range index-array entries are clamped, or with `mode="fill"` give
        `fill_value` (NaN for floats, the minimum for ints, True for bools, as in JAX).

        Example:
            >>> jnp.arange(3.0).at[jnp.array([0, 5])].get(mode="fill", fill_value=-1.0)
            Array([ 0., -1.], dtype=float32)
        """
        _check_mode(mode, (None, "clip", "promise_in_bounds", "fill"))
        out = getitem(self.array, self.index, clamp=mode == "clip")
        if mode != "fill":
            return out
        x = to_array(self.array, "at[].get")
        valid = _valid_mask(x.shape, self.index)
        if valid is None:
            return out
        from fnbrrr.numpy._elementwise import where

        fill = fill_value_for(out.aval.dtype, fill_value)
        return where(valid, out, lax.convert_element_type(to_array(fill), out.aval.dtype))

    def set(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """A copy of x with x[idx] = values.

        Example:
            >>> jnp.zeros(3).at[1].set(5.0)
            Array([0., 5., 0.], dtype=float32)
        """
        _check_mode(mode)
        return scatter_update(self.array, self.index, values, "set")

    def add(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """A copy of x with x[idx] += values; repeated indices accumulate.

        Example:
            >>> jnp.zeros(3).at[jnp.array([0, 0, 2])].add(1.0)
            Array([2., 0., 1.], dtype=float32)
        """
        _check_mode(mode)
        return scatter_update(self.array, self.index, values, "add")

    def subtract(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """A copy of x with x[idx] -= values; repeated indices accumulate."""
        from fnbrrr.numpy._elementwise import negative

        return self.add(negative(values), mode=mode)

    def multiply(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """A copy of x with x[idx] *= values; repeated indices multiply."""
        _check_mode(mode)
        return scatter_update(self.array, self.index, values, "multiply")

    mul = multiply

    def divide(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """A copy of x with x[idx] /= values (floating-point arrays)."""
        from fnbrrr.numpy._elementwise import true_divide

        if to_array(self.array).aval.dtype.kind != "f":
            raise TypeError("at[].divide: needs a floating-point array")
        return self.multiply(true_divide(1, values), mode=mode)


    def min(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """A copy of x with x[idx] = minimum(x[idx], values).

        Example:
            >>> jnp.arange(3.0).at[1:].min(1.5)
            Array([0. , 1. , 1.5], dtype=float32)
        """
        from fnbrrr.numpy._elementwise import minimum

        return self._read_modify_write("min", minimum, values, mode, reduce_repeats="min")

    def max(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """A copy of x with x[idx] = maximum(x[idx], values)."""
        from fnbrrr.numpy._elementwise import maximum

        return self._read_modify_write("max", maximum, values, mode, reduce_repeats="max")

    def power(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """A copy of x with x[idx] = x[idx] ** values."""
        from fnbrrr.numpy._elementwise import power

        return self._read_modify_write("power", power, values, mode)

    def apply(self, func, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """A copy of x with x[idx] = func(x[idx]) (`func` a unary elementwise function)."""
        return self._read_modify_write("apply", lambda old, _: func(old), None, mode)

    def _read_modify_write(self, name, combine, values, mode, reduce_repeats=None):
        # Read x[idx], combine, write back with `set`: exact when no element is indexed twice.
        # min/max first reduce the values aimed at one element (concrete index arrays only).
        _check_mode(mode)
        x = to_array(self.array, f"at[].{name}")
        index = self.index
        if _may_index_twice(x.shape, index):
            merged = None
            if reduce_repeats is not None:
                merged = _merge_repeated(x, index, values, reduce_repeats)
            if merged is None:
                raise NotImplementedError(
                    f"at[].{name}: index arrays that are traced or hit an element more than once "
                    "are not supported here; use unique concrete indices, or .set/.add/.multiply"
                )
            index, values = merged
        new = combine(getitem(x, index), values)
        return scatter_update(x, index, new, "set")


def _may_index_twice(shape: tuple, idx) -> bool:
    """Whether index `idx` may select one element of an array of `shape` more than once."""
    plan = parse_index(shape, idx)
    arrays = [e for e in plan.entries if e.kind == ENTRY_ARRAY]
    if not plan.advanced:
        return False
    if builtins.any(isinstance(e.value, Tracer) for e in arrays):
        return True
    dims = tuple(shape[e.dim] for e in arrays)
    coords = [
        np.broadcast_to(np.clip(np.where(v < 0, v + n, v), 0, builtins.max(n - 1, 0)), plan.bshape)
        for v, n in ((np.asarray(e.value), n) for e, n in zip(arrays, dims))
    ]
    flat = np.ravel_multi_index([c.ravel() for c in coords], dims)
    return len(np.unique(flat)) != flat.size


def _valid_mask(shape: tuple, idx):
    """A bool array broadcastable to x[idx]'s shape, False where an index is out of range
    (negative indices count from the end once); None when every index is in range."""
    plan = parse_index(shape, idx)
    if plan.out_of_bounds:
        return scalar_const(False, BOOL)
    arrays = [e for e in plan.entries if e.kind == ENTRY_ARRAY]
    if not plan.advanced or not arrays:
        return None
    valid = None
    for e in arrays:
        n = shape[e.dim]
        v = e.value if isinstance(e.value, Tracer) else const_indices(np.asarray(e.value))
        dt = v.aval.dtype
        ok = lax.lt(v, scalar_const(n, dt))
        if dt.kind == "i":
            ok = lax.and_(ok, lax.ge(v, scalar_const(-n, dt)))
        ok = broadcast_to_shape(ok, plan.bshape)
        valid = ok if valid is None else lax.and_(valid, ok)
    # Place the broadcast block where x[idx] has it; the other axes broadcast.
    at = 0
    if plan.adjacent:
        lead = next(k for k, e in enumerate(plan.entries) if e.kind == ENTRY_ARRAY)
        at = builtins.sum(1 for e in plan.entries[:lead] if e.kind in (ENTRY_NONE, ENTRY_SLICE))
    nb = len(plan.bshape)
    return lax.broadcast_in_dim(valid, plan.out_shape, tuple(range(at, at + nb)))


def _merge_repeated(x, idx, values, reduce: str):
    """(index, values) with one entry per distinct element hit by `idx`, the values aimed at
    one element combined by `reduce` ("min" or "max"); None when that cannot be done statically
    (traced index arrays, boolean masks)."""
    from fnbrrr.numpy import _reductions

    shape = x.shape
    plan = parse_index(shape, idx)
    arrays = [e for e in plan.entries if e.kind == ENTRY_ARRAY]
    items = idx if isinstance(idx, tuple) else (idx,)
    if builtins.any(isinstance(e.value, Tracer) for e in arrays) or len(
        {e.pos for e in arrays}
    ) != len(arrays):  # traced, or a boolean mask (one item, several axes)
        return None
    dims = tuple(shape[e.dim] for e in arrays)
    coords = [np.broadcast_to(np.where(v < 0, v + n, v), plan.bshape).ravel()
              for v, n in ((np.asarray(e.value), n) for e, n in zip(arrays, dims))]
    inside = np.all([(c >= 0) & (c < n) for c, n in zip(coords, dims)], axis=0)
    members = np.flatnonzero(inside)  # out-of-range updates are dropped, as by `set`
    flat = np.ravel_multi_index([c[members] for c in coords], dims)
    _, first, group = np.unique(flat, return_index=True, return_inverse=True)
    width = int(np.bincount(group).max())
    table = np.repeat(members[first][:, None], width, axis=1)  # pad with the group's first
    for g in range(len(first)):
        hits = members[group == g]
        table[g, : len(hits)] = hits
    # The broadcast block of x[idx] sits at the front, or at the first advanced position.
    at = 0
    if plan.adjacent:
        lead = next(k for k, e in enumerate(plan.entries) if e.kind == ENTRY_ARRAY)
        at = builtins.sum(1 for e in plan.entries[:lead] if e.kind in (ENTRY_NONE, ENTRY_SLICE))
    v = _updates_for(reduce, x, plan, values)
    nb = len(plan.bshape)
    v = lax.reshape(v, v.shape[:at] + (math.prod(plan.bshape),) + v.shape[at + nb :])
    v = take(v, const_indices(table), axis=at)
    v = getattr(_reductions, reduce)(v, axis=at + 1)
    new_items = list(items)
    for e, c in zip(arrays, coords):
        new_items[e.pos] = const_indices(c[members[first]])
    return tuple(new_items), v


def _check_mode(mode, supported=(None, "drop", "fill", "promise_in_bounds")) -> None:
    """Gathers clamp and scatters drop out-of-range indices ("fill" means drop for an update,
    as in JAX); other modes are not implemented."""
    if mode not in supported:
        raise NotImplementedError(
            f"at[]: mode={mode!r} is not supported here; supported: "
            f"{', '.join(repr(m) for m in supported)}"
        )


class _IndexUpdateHelper:
    """`x.at`: index it (`x.at[idx]`) to choose what to update."""

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __getitem__(self, index) -> _IndexUpdateRef:
        if isinstance(index, list):
            raise index_error_for_list()
        return _IndexUpdateRef(self.array, index)

    def __repr__(self) -> str:
        return f"_IndexUpdateHelper({self.array!r})"
