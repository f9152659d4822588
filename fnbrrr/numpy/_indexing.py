"""NumPy indexing (`x[idx]`), lowered to `lax` slice/rev/reshape, dynamic_slice and gather.
The index plan made here also serves the functional updates (`x.at[idx]...`, in
`_index_update`) and `take`/`take_along_axis` (in `_take`).

An index is first *parsed* into a plan (static work only: NumPy's rules, shapes, bounds):

* basic indices (ints, slices with any step, `...`, None) become one `rev` for negative
  steps, one `slice`, and one `reshape` that drops integer-indexed axes and inserts None axes;
* 0-d traced integers (`x[i]` inside a loop) add a `dynamic_slice`;
* integer arrays (and concrete boolean masks, turned into integer arrays) become one `gather`
  over the indexed axes, after the slices. NumPy's placement rule applies: when the advanced
  indices are adjacent in the index tuple their broadcast dimensions replace them in place,
  otherwise they go first.

Out-of-range entries of index arrays are clamped by gather (after negative indices are
normalised), as in JAX, and, as in JAX, get no gradient (the gather's transpose drops them;
`getitem(..., clamp=True)` sends it to the clamped element, JAX's `mode="clip"`). Out-of-range
static ints are clamped too (`x[5]` on 3 rows is `x[2]`, JAX's behaviour, where NumPy raises).
Updates use the same plan in reverse (see `_index_update`).
"""

from __future__ import annotations

import builtins
import operator
from typing import NamedTuple

import numpy as np

from fnbrrr import core, lax
from fnbrrr.numpy._promotion import (
    BOOL,
    ArrayImpl,
    Tracer,
    broadcast_shapes,
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

ENTRY_NONE, ENTRY_SLICE, ENTRY_INT, ENTRY_ARRAY = "none", "slice", "int", "array"


class _Entry(NamedTuple):
    kind: str  # none | slice | int | array
    dim: int  # the operand axis it indexes (-1 for None)
    pos: int  # its position in the user's index tuple (for NumPy's adjacency rule)
    start: int = 0  # slice: normalised start, step, length; int: the index
    step: int = 1
    length: int = 0
    value: object = None  # array: a NumPy int array (concrete) or an integer tracer


class IndexPlan(NamedTuple):
    entries: list
    advanced: bool  # any index array of rank >= 1 (then ints are advanced too)
    adjacent: bool  # the advanced indices are next to each other in the index tuple
    bshape: tuple  # broadcast shape of the advanced indices
    out_shape: tuple  # shape of x[idx]
    out_of_bounds: bool = False  # a static int was out of range (clamped; updates are dropped)


def index_error_for_list() -> TypeError:
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


def parse_index(shape: tuple, idx) -> IndexPlan:
    """Turn a NumPy index into a plan over an operand of `shape` (static work only).

    Example:
        >>> from fnbrrr.numpy._indexing import parse_index
        >>> plan = parse_index((3, 4), (0, slice(1, None)))
        >>> [e.kind for e in plan.entries], plan.advanced
        (['int', 'slice'], False)
    """
    if isinstance(idx, list):
        raise index_error_for_list()
    if not isinstance(idx, tuple):
        idx = (idx,)
    ndim = len(shape)
    # First pass: classify each item; count the axes consumed.
    items = []
    consumed = 0
    ellipsis_at = None
    for pos, it in enumerate(idx):
        if it is None:
            items.append((ENTRY_NONE, None, pos))
        elif it is Ellipsis:
            if ellipsis_at is not None:
                raise IndexError("an index can only have a single ellipsis ('...')")
            ellipsis_at = len(items)
            items.append(("ellipsis", None, pos))
        elif isinstance(it, slice):
            items.append((ENTRY_SLICE, it, pos))
            consumed += 1
        elif isinstance(it, (bool, np.bool_)):
            if not it:
                raise IndexError("x[False] (an empty new axis) is not supported")
            items.append((ENTRY_NONE, None, pos))  # x[True] adds a unit axis, as in NumPy and JAX
        elif isinstance(it, (int, np.integer)):
            items.append((ENTRY_INT, operator.index(it), pos))
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
    fill = [(ENTRY_SLICE, slice(None), -1)] * (ndim - consumed)
    if ellipsis_at is None:
        items.extend(fill)
    else:
        items[ellipsis_at : ellipsis_at + 1] = fill

    # Second pass: walk the operand's axes.
    entries: list[_Entry] = []
    dim = 0
    out_of_bounds = False
    for kind, value, pos in items:
        if kind == ENTRY_NONE:
            entries.append(_Entry(ENTRY_NONE, -1, pos))
        elif kind == ENTRY_SLICE:
            n = shape[dim]
            try:
                start, stop, step = value.indices(n)
            except TypeError:
                raise _bad_slice(value) from None
            length = _slice_length(start, stop, step)
            entries.append(_Entry(ENTRY_SLICE, dim, pos, start, step, length))
            dim += 1
        elif kind == ENTRY_INT:
            n = shape[dim]
            if n == 0:
                raise IndexError(f"index {value} is out of bounds for axis {dim} with size 0")
            if not -n <= value < n:
                out_of_bounds = True
                value = builtins.min(builtins.max(value, -n), n - 1)
            entries.append(_Entry(ENTRY_INT, dim, pos, value % n))
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
                entries.append(_Entry(ENTRY_ARRAY, dim + j, pos, value=coords))
            dim += k
        else:  # integer array
            entries.append(_Entry(ENTRY_ARRAY, dim, pos, value=value))
            dim += 1

    arrays = [e for e in entries if e.kind == ENTRY_ARRAY]
    advanced = builtins.any(e.value.ndim for e in arrays)
    if arrays and not advanced:
        # Only 0-d index arrays: concrete ones act as (clamped) static ints.
        fixed = []
        for e in entries:
            if e.kind == ENTRY_ARRAY and not isinstance(e.value, Tracer):
                n = shape[e.dim]
                i = int(np.asarray(e.value))
                i = builtins.min(builtins.max(i + n if i < 0 else i, 0), n - 1) if n else 0
                e = _Entry(ENTRY_INT, e.dim, e.pos, i)
            fixed.append(e)
        entries = fixed
    bshape = ()
    adjacent = True
    if advanced:
        entries = [
            e._replace(kind=ENTRY_ARRAY, value=np.asarray(e.start, default_int()))
            if e.kind == ENTRY_INT
            else e
            for e in entries
        ]
        adv = [e for e in entries if e.kind == ENTRY_ARRAY]
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
        if e.kind == ENTRY_NONE:
            out_shape.append(1)
        elif e.kind == ENTRY_SLICE:
            out_shape.append(e.length)
        elif e.kind == ENTRY_ARRAY and advanced and not placed:
            out_shape.extend(bshape)
            placed = True
    return IndexPlan(entries, advanced, adjacent, bshape, tuple(out_shape), out_of_bounds)


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
        if e.kind == ENTRY_SLICE:
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
        elif e.kind == ENTRY_INT and include_ints:
            start[e.dim], limit[e.dim] = e.start, e.start + 1
    if reversed_dims:
        x = lax.rev(x, tuple(reversed_dims))
    if start != [0] * len(shape) or limit != list(shape) or builtins.any(s != 1 for s in strides):
        x = lax.slice(x, start, limit, strides)
    return x


def normalize_traced(i, n: int):
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


def index_columns(columns: list, batch_shape: tuple, clamp: bool):
    """Stack index columns into a (batch_shape + (k,)) integer array.

    `columns` holds (value, positions, axis_size): value a NumPy int array or a traced int
    array, its axes placed at `positions` of the batch shape and broadcast along the others.
    Negative entries count from the end; `clamp` then clips them into range, otherwise
    out-of-range entries stay out of range (the gather clamps them, a scatter drops them).
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
            v = normalize_traced(v, n)
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
            return (ENTRY_SLICE, a, b, c)
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


def _basic_recipe(shape: tuple, plan: IndexPlan):
    """(rev dims, slice start/limit/strides or None, output shape) of a basic index."""
    start = [0] * len(shape)
    limit = list(shape)
    strides = [1] * len(shape)
    reversed_dims = []
    for e in plan.entries:
        if e.kind == ENTRY_SLICE:
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
        elif e.kind == ENTRY_INT:
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


def getitem(x, idx, *, clamp: bool = False):
    """`x[idx]` with NumPy semantics (see the module docstring).

    Args:
      x: an array (or array-like).
      idx: ints, slices, `...`, None, integer arrays, boolean masks, or a tuple of them.
      clamp: clamp out-of-range index-array entries before the gather, so that their gradient
        reaches the clamped element (JAX's `mode="clip"`); by default the value is the same
        but their gradient is dropped, as in JAX.

    Returns:
      The indexed array (a new array; `x` is unchanged).

    Example:
        >>> x = jnp.arange(12.0).reshape(3, 4)
        >>> x[::-1, jnp.array([0, 3])]  # Array.__getitem__ is getitem
        Array([[ 8., 11.],
               [ 4.,  7.],
               [ 0.,  3.]], dtype=float32)
        >>> x[5]  # out of range: clamped to the last row, as in JAX
        Array([ 8.,  9., 10., 11.], dtype=float32)
    """
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
        dynamic = [e for e in entries if e.kind == ENTRY_ARRAY]
        if not dynamic:
            return _run_recipe(x, _basic_recipe(shape, plan))
        y = _apply_slices(x, shape, entries, include_ints=True)
        # 0-d traced integers: one dynamic_slice over their axes.
        idx_dt = default_int()
        starts = [scalar_const(0, idx_dt)] * len(shape)
        sizes = list(y.shape)
        for e in dynamic:
            starts[e.dim] = normalize_traced(e.value, shape[e.dim])
            sizes[e.dim] = 1
        y = lax.dynamic_slice(y, starts, sizes)
        return lax.reshape(y, plan.out_shape) if y.shape != plan.out_shape else y
    # Advanced: slices first, then one gather over the advanced axes.
    y = _apply_slices(x, shape, entries, include_ints=False)
    adv = [e for e in entries if e.kind == ENTRY_ARRAY]
    bshape = plan.bshape
    nb = len(bshape)
    columns = [(e.value, tuple(range(nb - e.value.ndim, nb)), shape[e.dim]) for e in adv]
    indices = index_columns(columns, bshape, clamp=False)
    axes = tuple(e.dim for e in adv)
    if len(set(axes)) != len(axes):
        raise IndexError("an axis is indexed twice")
    g = lax.gather(y, indices, axes, "clip" if clamp else "promise_in_bounds")
    # g is bshape + (the sliced axes in order); NumPy puts bshape at the first advanced
    # position when the advanced indices are adjacent.
    if plan.adjacent:
        before = builtins.sum(1 for e in entries if e.kind == ENTRY_SLICE and e.dim < axes[0])
        if before:
            rest = g.ndim - nb
            perm = (
                tuple(range(nb, nb + before))
                + tuple(range(nb))
                + tuple(range(nb + before, nb + rest))
            )
            g = lax.transpose(g, perm)
    return lax.reshape(g, plan.out_shape) if g.shape != plan.out_shape else g
