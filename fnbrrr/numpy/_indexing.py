"""NumPy indexing (`x[idx]`), functional updates (`x.at[idx].set/add/multiply/get`), take,
nonzero: all lowered to `lax` slice/rev/reshape, dynamic_slice, gather and the scatters.

An index is first *parsed* into a plan (static work only: NumPy's rules, shapes, bounds):

* basic indices (ints, slices with any step, `...`, None) become one `rev` for negative
  steps, one `slice`, and one `reshape` that drops integer-indexed axes and inserts None axes;
* 0-d traced integers (`x[i]` inside a loop) add a `dynamic_slice`;
* integer arrays (and concrete boolean masks, turned into integer arrays) become one `gather`
  over the indexed axes, after the slices. NumPy's placement rule applies: when the advanced
  indices are adjacent in the index tuple their broadcast dimensions replace them in place,
  otherwise they go first.

Out-of-range entries of index arrays are clamped by gather (after negative indices are
normalised), as in JAX; so are out-of-range static ints (`x[5]` on 3 rows is `x[2]`, JAX's
behaviour, where NumPy raises). Updates use the same plan in reverse: unit-step basic indices
become a `dynamic_update_slice`, everything else one scatter whose out-of-range updates are
dropped (an out-of-range static int drops the whole update, as in JAX).
"""

from __future__ import annotations

import builtins
import math
import operator
from typing import NamedTuple

import numpy as np

from fnbrrr import core, lax
from fnbrrr.numpy._promotion import (
    BOOL,
    ArrayImpl,
    Tracer,
    broadcast_shapes,
    broadcast_to_shape,
    default_int,
    scalar_const,
    to_array,
)


class NonConcreteBooleanIndexError(IndexError):
    """A boolean mask index whose values are not known (under jit/vmap)."""


class InvalidIndexerError(IndexError, TypeError):
    """An index of the wrong type (a float, a string): JAX raises TypeError, NumPy IndexError."""


def const_indices(value: np.ndarray) -> ArrayImpl:
    """A constant integer index array of the default int dtype."""
    return ArrayImpl(np.asarray(value, default_int()), False)


# --------------------------------------------------------------------------------------------
# Parsing an index into a plan
# --------------------------------------------------------------------------------------------

_NONE, _SLICE, _INT, _ARRAY = "none", "slice", "int", "array"


class _Entry(NamedTuple):
    kind: str  # none | slice | int | array
    dim: int  # the operand axis it indexes (-1 for None)
    pos: int  # its position in the user's index tuple (for NumPy's adjacency rule)
    start: int = 0  # slice: normalised start, step, length; int: the index
    step: int = 1
    length: int = 0
    value: object = None  # array: a NumPy int array (concrete) or an integer tracer


class _Plan(NamedTuple):
    entries: list
    advanced: bool  # any index array of rank >= 1 (then ints are advanced too)
    adjacent: bool  # the advanced indices are next to each other in the index tuple
    bshape: tuple  # broadcast shape of the advanced indices
    out_shape: tuple  # shape of x[idx]
    out_of_bounds: bool = False  # a static int was out of range (clamped; updates are dropped)


def _index_error_for_list() -> TypeError:
    return TypeError(
        "Using a non-tuple sequence for multidimensional indexing is not allowed; use "
        "`arr[tuple(seq)]` for a tuple of indices or `arr[jnp.array(seq)]` for an integer-array "
        "index"
    )


def _slice_length(start: int, stop: int, step: int) -> int:
    if step > 0:
        return builtins.max(0, (stop - start + step - 1) // step)
    return builtins.max(0, (start - stop - step - 1) // (-step))


def _classify_array(item, pos: int):
    """('mask', concrete bool array) or ('array', int array value) for an array index."""
    if isinstance(item, Tracer):
        dt = item.aval.dtype
        if dt == BOOL:
            try:
                return "mask", np.asarray(item.concrete_value())
            except core.ConcretizationTypeError as e:
                raise NonConcreteBooleanIndexError(
                    f"Array boolean indices must be concrete: the mask at index position {pos} "
                    f"is a traced {item.aval.str_short()} whose values (hence the result's shape)"
                    " are unknown here. Use jnp.where(mask, x, fill) to keep the shape, or index "
                    f"outside jit/vmap. ({e})"
                ) from None
        if dt.kind not in "iu":
            raise InvalidIndexerError(
                f"Indexer must have integer or boolean type, got a traced {item.aval.str_short()}"
            )
        return "array", item
    if type(item) is ArrayImpl:
        value = item._value
    elif isinstance(item, (list, tuple)):
        value = np.asarray(item)
        if value.size == 0 and value.dtype.kind == "f":
            value = value.astype(default_int())
    else:
        value = np.asarray(item)
    if value.dtype == BOOL:
        return "mask", value
    if value.dtype.kind not in "iu":
        raise InvalidIndexerError(
            f"Indexer must have integer or boolean type, got an array of dtype {value.dtype} at "
            f"index position {pos}"
        )
    return "array", value


def _bad_slice(s: slice) -> IndexError:
    return IndexError(
        f"Array slice indices must have static start/stop/step to be used with NumPy indexing "
        f"syntax; found {s}. To index a statically sized window at a traced position use "
        "lax.dynamic_slice (or jnp.take / x[i] with an integer array)"
    )


def parse_index(shape: tuple, idx) -> _Plan:
    """Turn a NumPy index into a plan over an operand of `shape` (static work only)."""
    if isinstance(idx, list):
        raise _index_error_for_list()
    if not isinstance(idx, tuple):
        idx = (idx,)
    ndim = len(shape)
    # First pass: classify each item; count the axes consumed.
    items = []
    consumed = 0
    ellipsis_at = None
    for pos, it in enumerate(idx):
        if it is None:
            items.append((_NONE, None, pos))
        elif it is Ellipsis:
            if ellipsis_at is not None:
                raise IndexError("an index can only have a single ellipsis ('...')")
            ellipsis_at = len(items)
            items.append(("ellipsis", None, pos))
        elif isinstance(it, slice):
            items.append((_SLICE, it, pos))
            consumed += 1
        elif isinstance(it, (bool, np.bool_)):
            if not it:
                raise IndexError("x[False] (an empty new axis) is not supported")
            items.append((_NONE, None, pos))  # x[True] adds a unit axis, as in NumPy and JAX
        elif isinstance(it, (int, np.integer)):
            items.append((_INT, operator.index(it), pos))
            consumed += 1
        elif isinstance(it, (Tracer, ArrayImpl, np.ndarray, list, tuple)) or isinstance(
            it, core.Array
        ):
            kind, value = _classify_array(it, pos)
            items.append((kind, value, pos))
            consumed += value.ndim if kind == "mask" else 1
        else:
            raise InvalidIndexerError(
                f"only integers, slices (`:`), ellipsis (`...`), None (`jnp.newaxis`) and "
                f"integer or boolean arrays are valid indices; got {type(it).__name__} {it!r}"
            )
    if consumed > ndim:
        raise IndexError(
            f"too many indices for array: array is {ndim}-dimensional, but {consumed} were indexed"
        )
    fill = [(_SLICE, slice(None), -1)] * (ndim - consumed)
    if ellipsis_at is None:
        items.extend(fill)
    else:
        items[ellipsis_at : ellipsis_at + 1] = fill

    # Second pass: walk the operand's axes.
    entries: list[_Entry] = []
    dim = 0
    out_of_bounds = False
    for kind, value, pos in items:
        if kind == _NONE:
            entries.append(_Entry(_NONE, -1, pos))
        elif kind == _SLICE:
            n = shape[dim]
            try:
                start, stop, step = value.indices(n)
            except TypeError:
                raise _bad_slice(value) from None
            entries.append(_Entry(_SLICE, dim, pos, start, step, _slice_length(start, stop, step)))
            dim += 1
        elif kind == _INT:
            n = shape[dim]
            if n == 0:
                raise IndexError(f"index {value} is out of bounds for axis {dim} with size 0")
            if not -n <= value < n:
                out_of_bounds = True
                value = builtins.min(builtins.max(value, -n), n - 1)
            entries.append(_Entry(_INT, dim, pos, value % n))
            dim += 1
        elif kind == "mask":
            k = value.ndim
            for j in range(k):
                if value.shape[j] != shape[dim + j]:
                    raise IndexError(
                        f"boolean index did not match indexed array along axis {dim + j}; size "
                        f"of axis is {shape[dim + j]} but size of corresponding boolean axis is "
                        f"{value.shape[j]}"
                    )
            if k == 0:
                raise IndexError("0-d boolean array indices are not supported")
            for j, coords in enumerate(np.nonzero(value)):
                entries.append(_Entry(_ARRAY, dim + j, pos, value=coords))
            dim += k
        else:  # integer array
            entries.append(_Entry(_ARRAY, dim, pos, value=value))
            dim += 1

    arrays = [e for e in entries if e.kind == _ARRAY]
    advanced = builtins.any(e.value.ndim for e in arrays)
    if arrays and not advanced:
        # Only 0-d index arrays: concrete ones act as (clamped) static ints.
        fixed = []
        for e in entries:
            if e.kind == _ARRAY and not isinstance(e.value, Tracer):
                n = shape[e.dim]
                i = int(np.asarray(e.value))
                i = builtins.min(builtins.max(i + n if i < 0 else i, 0), n - 1) if n else 0
                e = _Entry(_INT, e.dim, e.pos, i)
            fixed.append(e)
        entries = fixed
    bshape = ()
    adjacent = True
    if advanced:
        entries = [
            e._replace(kind=_ARRAY, value=np.asarray(e.start, default_int()))
            if e.kind == _INT
            else e
            for e in entries
        ]
        adv = [e for e in entries if e.kind == _ARRAY]
        try:
            bshape = broadcast_shapes("index", tuple(tuple(e.value.shape) for e in adv))
        except ValueError:
            shapes = " ".join(str(tuple(e.value.shape)) for e in adv)
            raise IndexError(
                f"shape mismatch: indexing arrays could not be broadcast together with shapes "
                f"{shapes}"
            ) from None
        positions = sorted({e.pos for e in adv})
        adjacent = positions == list(range(positions[0], positions[-1] + 1))
    out_shape = []
    placed = False
    if advanced and not adjacent:
        out_shape.extend(bshape)
        placed = True
    for e in entries:
        if e.kind == _NONE:
            out_shape.append(1)
        elif e.kind == _SLICE:
            out_shape.append(e.length)
        elif e.kind == _ARRAY and advanced and not placed:
            out_shape.extend(bshape)
            placed = True
    return _Plan(entries, advanced, adjacent, bshape, tuple(out_shape), out_of_bounds)


# --------------------------------------------------------------------------------------------
# x[idx]
# --------------------------------------------------------------------------------------------


def _apply_slices(x, shape: tuple, entries: list, include_ints: bool):
    """rev + slice for the slice entries (and static ints, kept as size-1 axes)."""
    start = [0] * len(shape)
    limit = list(shape)
    strides = [1] * len(shape)
    reversed_dims = []
    for e in entries:
        if e.kind == _SLICE:
            n = shape[e.dim]
            if e.length == 0:
                start[e.dim] = limit[e.dim] = 0
                continue
            s, step = e.start, e.step
            if step < 0:
                reversed_dims.append(e.dim)
                s, step = n - 1 - s, -step
            start[e.dim] = s
            limit[e.dim] = s + (e.length - 1) * step + 1
            strides[e.dim] = step
        elif e.kind == _INT and include_ints:
            start[e.dim], limit[e.dim] = e.start, e.start + 1
    if reversed_dims:
        x = lax.rev(x, tuple(reversed_dims))
    if start != [0] * len(shape) or limit != list(shape) or builtins.any(s != 1 for s in strides):
        x = lax.slice(x, start, limit, strides)
    return x


def _normalize_traced(i, n: int):
    """A traced integer index (any shape) with negative entries wrapped, as default int."""
    dt = i.aval.dtype
    idx_dt = default_int()
    if dt != idx_dt:
        i = lax.convert_element_type(i, idx_dt)
    if dt.kind == "u":
        return i
    return lax.select_n(lax.lt(i, scalar_const(0, idx_dt)), i, lax.add(i, scalar_const(n, idx_dt)))


def _normalize_concrete(v: np.ndarray, n: int, clamp: bool) -> np.ndarray:
    v = np.asarray(v).astype(np.int64)
    v = np.where(v < 0, v + n, v)
    if clamp:
        v = np.clip(v, 0, builtins.max(n - 1, 0))
    else:  # keep out-of-range entries out of range (scatter drops them) without overflow
        v = np.clip(v, -1, n)
    return v.astype(default_int())


def _index_columns(columns: list, batch_shape: tuple, clamp: bool):
    """Stack index columns into a (batch_shape + (k,)) integer array.

    `columns` holds (value, positions, axis_size): value a NumPy int array or a traced int
    array, its axes placed at `positions` of the batch shape and broadcast along the others.
    """
    nb = len(batch_shape)
    if not builtins.any(isinstance(v, Tracer) for v, _, _ in columns):
        cols = []
        for v, positions, n in columns:
            v = _normalize_concrete(v, n, clamp)
            view = [1] * nb
            for p, s in zip(positions, v.shape):
                view[p] = s
            cols.append(np.broadcast_to(v.reshape(view), batch_shape))
        return const_indices(np.stack(cols, axis=-1) if cols else np.zeros(batch_shape + (0,)))
    cols = []
    for v, positions, n in columns:
        if isinstance(v, Tracer):
            v = _normalize_traced(v, n)
        else:
            v = const_indices(_normalize_concrete(v, n, clamp))
        v = lax.broadcast_in_dim(v, batch_shape, tuple(positions))
        cols.append(lax.reshape(v, batch_shape + (1,)))
    return lax.concatenate(cols, nb) if len(cols) > 1 else cols[0]


_RECIPES: dict = {}


def _static_key(idx):
    """A hashable key for an index made only of ints, slices of ints, None and `...`."""
    t = type(idx)
    if t is int or idx is None or idx is Ellipsis:
        return idx
    if t is slice:
        a, b, c = idx.start, idx.stop, idx.step
        if (
            (a is None or type(a) is int)
            and (b is None or type(b) is int)
            and (c is None or type(c) is int)
        ):
            return (_SLICE, a, b, c)
        return None
    if t is tuple:
        parts = []
        for item in idx:
            if type(item) is tuple:
                return None
            k = _static_key(item)
            if k is None and item is not None:
                return None
            parts.append(k)
        return tuple(parts)
    return None


def _basic_recipe(shape: tuple, plan: _Plan):
    """(rev dims, slice start/limit/strides or None, output shape) of a basic index."""
    start = [0] * len(shape)
    limit = list(shape)
    strides = [1] * len(shape)
    reversed_dims = []
    for e in plan.entries:
        if e.kind == _SLICE:
            n = shape[e.dim]
            if e.length == 0:
                start[e.dim] = limit[e.dim] = 0
                continue
            s, step = e.start, e.step
            if step < 0:
                reversed_dims.append(e.dim)
                s, step = n - 1 - s, -step
            start[e.dim] = s
            limit[e.dim] = s + (e.length - 1) * step + 1
            strides[e.dim] = step
        elif e.kind == _INT:
            start[e.dim], limit[e.dim] = e.start, e.start + 1
    sliced = (
        start != [0] * len(shape) or limit != list(shape) or builtins.any(s != 1 for s in strides)
    )
    window = (tuple(start), tuple(limit), tuple(strides)) if sliced else None
    return tuple(reversed_dims), window, plan.out_shape


def _run_recipe(x, recipe):
    reversed_dims, window, out_shape = recipe
    if reversed_dims:
        x = lax.rev(x, reversed_dims)
    if window is not None:
        x = lax.slice(x, *window)
    return lax.reshape(x, out_shape) if x.shape != out_shape else x


def getitem(x, idx):
    """`x[idx]` with NumPy semantics (see the module docstring)."""
    if type(x) is not ArrayImpl:
        x = to_array(x, "getitem")
    shape = x.shape
    key = _static_key(idx)
    if key is not None:
        recipe = _RECIPES.get((shape, key))
        if recipe is None:
            recipe = _basic_recipe(shape, parse_index(shape, idx))
            if len(_RECIPES) > 4096:
                _RECIPES.clear()
            _RECIPES[(shape, key)] = recipe
        return _run_recipe(x, recipe)
    plan = parse_index(shape, idx)
    entries = plan.entries
    if not plan.advanced:
        dynamic = [e for e in entries if e.kind == _ARRAY]
        if not dynamic:
            return _run_recipe(x, _basic_recipe(shape, plan))
        y = _apply_slices(x, shape, entries, include_ints=True)
        # 0-d traced integers: one dynamic_slice over their axes.
        idx_dt = default_int()
        starts = [scalar_const(0, idx_dt)] * len(shape)
        sizes = list(y.shape)
        for e in dynamic:
            starts[e.dim] = _normalize_traced(e.value, shape[e.dim])
            sizes[e.dim] = 1
        y = lax.dynamic_slice(y, starts, sizes)
        return lax.reshape(y, plan.out_shape) if y.shape != plan.out_shape else y
    # Advanced: slices first, then one gather over the advanced axes.
    y = _apply_slices(x, shape, entries, include_ints=False)
    adv = [e for e in entries if e.kind == _ARRAY]
    bshape = plan.bshape
    nb = len(bshape)
    columns = [(e.value, tuple(range(nb - e.value.ndim, nb)), shape[e.dim]) for e in adv]
    indices = _index_columns(columns, bshape, clamp=True)
    axes = tuple(e.dim for e in adv)
    if len(set(axes)) != len(axes):
        raise IndexError("an axis is indexed twice")
    g = lax.gather(y, indices, axes)
    # g is bshape + (the sliced axes in order); NumPy puts bshape at the first advanced
    # position when the advanced indices are adjacent.
    if plan.adjacent:
        before = builtins.sum(1 for e in entries if e.kind == _SLICE and e.dim < axes[0])
        if before:
            rest = g.ndim - nb
            perm = (
                tuple(range(nb, nb + before))
                + tuple(range(nb))
                + tuple(range(nb + before, nb + rest))
            )
            g = lax.transpose(g, perm)
    return lax.reshape(g, plan.out_shape) if g.shape != plan.out_shape else g


# --------------------------------------------------------------------------------------------
# x.at[idx].set / add / multiply / get
# --------------------------------------------------------------------------------------------


def _updates_for(name: str, x, plan: _Plan, values):
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
        if e.kind in (_INT, _ARRAY)
        or (e.kind == _SLICE and not (e.start == 0 and e.step == 1 and e.length == shape[e.dim]))
    ]
    if not indexed:  # x.at[...].op(v): the whole array
        v = lax.reshape(v, shape) if v.shape != shape else v
        if name == "add_bool":
            return lax.or_(x, v)
        return _combine(name, x, v)
    unit_basic = not plan.advanced and builtins.all(
        e.kind == _INT or e.kind == _NONE or (e.kind == _SLICE and e.step == 1) for e in entries
    )
    if unit_basic:
        if builtins.any(e.kind == _SLICE and e.length == 0 for e in entries):
            return x
        starts = [0] * len(shape)
        window = list(shape)
        for e in entries:
            if e.kind == _INT:
                starts[e.dim], window[e.dim] = e.start, 1
            elif e.kind == _SLICE:
                starts[e.dim], window[e.dim] = e.start, e.length
        v = lax.reshape(v, tuple(window))
        if name != "set":
            limit = [s + w for s, w in zip(starts, window)]
            old = lax.slice(x, starts, limit)
            v = lax.or_(old, v) if name == "add_bool" else _combine(name, old, v)
        return lax.dynamic_update_slice(x, v, starts)
    return _general_scatter(x, plan, v, "add" if name == "add_bool" else name)


def _general_scatter(x, plan: _Plan, v, name: str):
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
        if e.kind == _NONE:
            none_dims.append(len(layout) + k)
            k += 1
        elif e.kind == _SLICE:
            layout.append(("S", e))
        elif e.kind == _ARRAY and plan.advanced and not placed:
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
        if e.kind == _ARRAY:
            r = e.value.ndim
            columns.append((e.value, b_positions[len(b_positions) - r :], shape[e.dim]))
            axes.append(e.dim)
        elif e.kind == _INT:
            columns.append((np.asarray(e.start), (), shape[e.dim]))
            axes.append(e.dim)
        elif e.kind == _SLICE and not is_rest(("S", e)):
            p = next(p for p, i in enumerate(batch_items) if layout[i] == ("S", e))
            coords = e.start + e.step * np.arange(e.length)
            columns.append((coords, (p,), shape[e.dim]))
            axes.append(e.dim)
    order = sorted(range(len(axes)), key=lambda i: axes[i])
    columns = [columns[i] for i in order]
    axes = tuple(axes[i] for i in order)
    indices = _index_columns(columns, batch_shape, clamp=False)
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
        out = getitem(self.array, self.index)
        if mode != "fill":
            return out
        x = to_array(self.array, "at[].get")
        valid = _valid_mask(x.shape, self.index)
        if valid is None:
            return out
        from fnbrrr.numpy._elementwise import where

        fill = _fill_value_for(out.aval.dtype, fill_value)
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
    arrays = [e for e in plan.entries if e.kind == _ARRAY]
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
    arrays = [e for e in plan.entries if e.kind == _ARRAY]
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
        lead = next(k for k, e in enumerate(plan.entries) if e.kind == _ARRAY)
        at = builtins.sum(1 for e in plan.entries[:lead] if e.kind in (_NONE, _SLICE))
    nb = len(plan.bshape)
    return lax.broadcast_in_dim(valid, plan.out_shape, tuple(range(at, at + nb)))


def _merge_repeated(x, idx, values, reduce: str):
    """(index, values) with one entry per distinct element hit by `idx`, the values aimed at
    one element combined by `reduce` ("min" or "max"); None when that cannot be done statically
    (traced index arrays, boolean masks)."""
    from fnbrrr.numpy import _reductions

    shape = x.shape
    plan = parse_index(shape, idx)
    arrays = [e for e in plan.entries if e.kind == _ARRAY]
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
        lead = next(k for k, e in enumerate(plan.entries) if e.kind == _ARRAY)
        at = builtins.sum(1 for e in plan.entries[:lead] if e.kind in (_NONE, _SLICE))
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
            raise _index_error_for_list()
        return _IndexUpdateRef(self.array, index)

    def __repr__(self) -> str:
        return f"_IndexUpdateHelper({self.array!r})"


# --------------------------------------------------------------------------------------------
# take, take_along_axis, nonzero
# --------------------------------------------------------------------------------------------


def _fill_value_for(dt: np.dtype, fill_value):
    if fill_value is not None:
        return fill_value
    if dt.kind == "f":
        return np.nan
    if dt.kind == "i":
        return np.iinfo(dt).min
    if dt.kind == "u":
        return np.iinfo(dt).max
    return True


def take(
    a,
    indices,
    axis: int | None = None,
    out=None,
    mode=None,
    unique_indices=False,
    indices_are_sorted=False,
    fill_value=None,
):
    """Elements of `a` at `indices` along `axis` (of the flattened array if None).

    `mode`: None or 'fill' (out-of-range indices give `fill_value`, NaN for floats, as in
    JAX), 'clip' (clamp) or 'wrap' (modulo). Negative indices count from the end.

    Example:
        >>> jnp.take(jnp.array([10, 20, 30]), jnp.array([2, 0]))
        Array([30, 10], dtype=int32)
    """
    from fnbrrr.numpy._reductions import canonicalize_axis
    from fnbrrr.numpy._shape import ravel

    if out is not None:
        raise NotImplementedError("take: the `out` argument is not supported")
    a = to_array(a, "take")
    if axis is None:
        a = ravel(a)
        axis = 0
    ax = canonicalize_axis("take", axis, a.ndim)
    n = a.shape[ax]
    idx = to_array(indices, "take")
    if idx.aval.dtype.kind not in "iu":
        raise TypeError(f"take: indices must be integers, got {idx.aval.dtype}")
    idx_dt = default_int()
    if idx.aval.dtype != idx_dt:
        idx = lax.convert_element_type(idx, idx_dt)
    if mode not in (None, "fill", "clip", "wrap"):
        raise NotImplementedError(
            f"take: mode {mode!r} is not supported; use 'fill', 'clip' or 'wrap'"
        )
    if n == 0:
        raise IndexError(f"take: cannot take from an empty axis {ax} (shape {a.shape})")
    if mode == "wrap":
        nn = scalar_const(n, idx_dt)
        idx = lax.rem(lax.add(lax.rem(idx, nn), nn), nn)
    else:
        idx = _normalize_traced(idx, n)
    g = lax.gather(a, lax.reshape(idx, idx.shape + (1,)), (ax,))
    r = idx.ndim
    if ax:
        perm = tuple(range(r, r + ax)) + tuple(range(r)) + tuple(range(r + ax, g.ndim))
        g = lax.transpose(g, perm)
    if mode in (None, "fill"):
        zero, nn = scalar_const(0, idx_dt), scalar_const(n, idx_dt)
        valid = lax.and_(lax.ge(idx, zero), lax.lt(idx, nn))
        dims = tuple(range(ax, ax + r))
        valid = lax.broadcast_in_dim(valid, g.shape, dims)
        fill = lax.full(g.shape, _fill_value_for(g.aval.dtype, fill_value), g.aval.dtype)
        g = lax.select_n(valid, fill, g)
    return g


def take_along_axis(arr, indices, axis: int | None, mode=None, fill_value=None):
    """Pick `arr` values along `axis` at `indices` (same rank as `arr`, broadcasting the
    other axes), as used with argsort/argmax results.

    `mode`: None or "fill" (out-of-range indices give `fill_value`, NaN for floats, as in
    JAX), "clip" or "promise_in_bounds" (clamped). Negative indices count from the end.

    Example:
        >>> jnp.take_along_axis(jnp.array([[10, 20, 30]]), jnp.array([[2, 0]]), axis=1)
        Array([[30, 10]], dtype=int32)
    """
    from fnbrrr.numpy._reductions import canonicalize_axis
    from fnbrrr.numpy._shape import ravel

    a = to_array(arr, "take_along_axis")
    idx = to_array(indices, "take_along_axis")
    if axis is None:
        a, idx, axis = ravel(a), ravel(idx), 0
    if idx.ndim != a.ndim:
        raise ValueError(
            f"take_along_axis: indices (shape {idx.shape}) must have the same number of "
            f"dimensions as arr (shape {a.shape})"
        )
    ax = canonicalize_axis("take_along_axis", axis, a.ndim)
    index = []
    for d in range(a.ndim):
        if d == ax:
            index.append(idx)
        else:
            view = [1] * a.ndim
            view[d] = a.shape[d]
            index.append(np.arange(a.shape[d]).reshape(view))
    if mode in ("clip", "promise_in_bounds"):
        return getitem(a, tuple(index))
    if mode not in (None, "fill"):
        raise NotImplementedError(f"take_along_axis: mode {mode!r} is not supported")
    return _IndexUpdateRef(a, tuple(index)).get(mode="fill", fill_value=fill_value)


def _concrete(name: str, a) -> np.ndarray:
    try:
        return np.asarray(core.concrete_or_error(a, name))
    except core.ConcretizationTypeError as e:
        raise core.ConcretizationTypeError(
            f"{name}: the output shape depends on the values, so the input must be concrete "
            f"(not traced under jit/vmap); pass `size=` where supported. ({e})"
        ) from None


def nonzero(a, *, size=None, fill_value=None) -> tuple:
    """Indices of the nonzero elements, one integer array per axis (concrete input only,
    unless `size` fixes the output length).

    Example:
        >>> jnp.nonzero(jnp.array([0, 3, 0, 4]))
        (Array([1, 3], dtype=int32),)
    """
    value = _concrete("nonzero", a)
    coords = np.nonzero(np.atleast_1d(value))
    if size is not None:
        fill = 0 if fill_value is None else fill_value
        fills = fill if isinstance(fill, (tuple, list)) else (fill,) * len(coords)
        coords = tuple(
            np.concatenate([c[:size], np.full(builtins.max(0, size - c.size), f)])
            for c, f in zip(coords, fills)
        )
    return tuple(const_indices(c) for c in coords)


def flatnonzero(a, *, size=None, fill_value=None):
    """Indices of the nonzero elements of the flattened array (concrete input only)."""
    value = _concrete("flatnonzero", a)
    return nonzero(np.ravel(value), size=size, fill_value=fill_value)[0]


def argwhere(a, *, size=None, fill_value=None):
    """(N, ndim) indices of the nonzero elements (concrete input only)."""
    value = _concrete("argwhere", a)
    coords = nonzero(value, size=size, fill_value=fill_value)
    if not coords:
        return const_indices(np.zeros((0, 0)))
    return const_indices(np.stack([np.asarray(c) for c in coords], axis=-1))


def extract(condition, arr):
    """The elements of `arr` where `condition` is true, flattened (concrete condition)."""
    from fnbrrr.numpy._shape import ravel

    cond = _concrete("extract", condition)
    return getitem(ravel(arr), np.ravel(cond).astype(bool))
