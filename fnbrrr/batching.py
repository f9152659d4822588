"""vmap: the batching transformation, its trace and tracer, and helpers for batching rules.

A `BatchTracer` is a value together with its batch axis: `batch_dim` is the axis of `val`
that runs over the mapped examples, or `not_mapped` (None) when `val` is the same for every
example. The `BatchTrace` processes a primitive by calling its batching rule,
`prim.batch(vals, dims, **params) -> (out, out_dim)`, which computes all examples at once
with primitives (usually the same primitive on a bigger array, after moving axes).

Layers, as in Autodidax: `vmap_flat` maps a function of a flat list of arrays; `vmap` adds
pytrees, `in_axes`/`out_axes` prefixes, checks and error messages that name the argument.

Helpers for rule writers: `not_mapped`, `moveaxis`, `bdim_at_front`, `broadcast_batch`,
`batch_size`, `vectorized_batch_rule`; and `batch_jaxpr` for primitives that hold IR
(jit, control flow).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from fnbrrr.core import (
    ArrayImpl,
    ClosedJaxpr,
    ConcretizationTypeError,
    Primitive,
    ShapedArray,
    Trace,
    Tracer,
    eval_jaxpr,
    get_aval,
    new_main,
    trace_to_jaxpr,
)
from fnbrrr.tree_util import (
    broadcast_prefix,
    leaf_paths,
    tree_flatten,
    tree_structure,
    tree_unflatten,
)

__all__ = [
    "BatchTrace",
    "BatchTracer",
    "batch_jaxpr",
    "batch_size",
    "bdim_at_front",
    "broadcast_batch",
    "moveaxis",
    "not_mapped",
    "vectorized_batch_rule",
    "vmap",
    "vmap_flat",
]

not_mapped = None
"""The batch dimension of a value that is the same for every example (not batched)."""

BatchDim = int | None

# --------------------------------------------------------------------------------------------
# Helpers for batching rules
# --------------------------------------------------------------------------------------------


def moveaxis(x: Any, src: int, dst: int) -> Any:
    """Move axis `src` of `x` to position `dst` (a `lax.transpose`; no-op when they match).

    Args:
      x: an array (or tracer).
      src: the axis to move; negative counts from the end.
      dst: where it ends up; negative counts from the end.

    Returns:
      `x` with its axes permuted, or `x` itself when nothing moves.

    Example:
      >>> moveaxis(jnp.zeros((2, 3, 4)), 0, 2).shape
      (3, 4, 2)
    """
    ndim = get_aval(x).ndim
    src = src + ndim if src < 0 else src
    dst = dst + ndim if dst < 0 else dst
    if src == dst:
        return x
    perm = list(range(ndim))
    del perm[src]
    perm.insert(dst, src)
    from fnbrrr import lax

    return lax.transpose(x, tuple(perm))


def broadcast_batch(x: Any, size: int, axis: int) -> Any:
    """Give an unbatched `x` a new batch axis of length `size` at position `axis`.

    Every slice along the new axis is a copy of `x` (a `lax.broadcast_in_dim`).

    Args:
      x: an array, tracer or scalar without a batch axis.
      size: the length of the new axis (the vmap axis size).
      axis: where the new axis goes, in `[-(x.ndim + 1), x.ndim]`.

    Returns:
      An array of rank `x.ndim + 1`.

    Example:
      >>> broadcast_batch(jnp.ones((2, 3)), 5, 1).shape
      (2, 5, 3)
    """
    shape = get_aval(x).shape
    ndim = len(shape) + 1
    axis = axis + ndim if axis < 0 else axis
    out_shape = (*shape[:axis], size, *shape[axis:])
    kept_dims = tuple(d for d in range(ndim) if d != axis)
    from fnbrrr import lax

    return lax.broadcast_in_dim(x, out_shape, kept_dims)


def bdim_at_front(x: Any, bdim: BatchDim, size: int) -> Any:
    """`x` with its batch axis first: moved there, or created by broadcasting if unbatched.

    Args:
      x: an array (or tracer).
      bdim: the batch axis of `x`, or `not_mapped` (None).
      size: the batch size, used only when `bdim` is None.

    Returns:
      An array whose axis 0 is the batch axis.

    Example:
      >>> bdim_at_front(jnp.zeros((3, 4)), 1, 4).shape
      (4, 3)
      >>> bdim_at_front(jnp.zeros((3,)), None, 5).shape
      (5, 3)
    """
    if bdim is None:
        return broadcast_batch(x, size, 0)
    return moveaxis(x, bdim, 0)


def batch_size(vals: Sequence[Any], dims: Sequence[BatchDim]) -> int:
    """The batch size: the length of the batch axis of the first batched value.

    Args:
      vals: the values a batching rule received.
      dims: their batch axes (at least one is not None).

    Returns:
      The size of the mapped axis.

    Example:
      >>> batch_size([jnp.zeros((2, 7)), 1.0], [1, None])
      7
    """
    for v, d in zip(vals, dims):
        if d is not None:
            return get_aval(v).shape[d]
    raise ValueError("batch_size: no batched value among the inputs of a batching rule")


def vectorized_batch_rule(primitive: Primitive) -> Callable:
    """A batching rule for a primitive that treats each leading slice independently.

    Valid for primitives such that `prim(*xs)[i] == prim(*(x[i] for x in xs))` when every
    input has the batch axis first (e.g. ops that act on trailing axes only and whose params
    name no axes). The rule moves each batched input's axis to 0, broadcasts unbatched inputs
    to a leading axis of the batch size, binds the primitive once, and reports out_dim 0.

    Args:
      primitive: the primitive to batch; its params must not need renumbering.

    Returns:
      A rule `(vals, dims, **params) -> (out, 0)` (lists for multiple-result primitives),
      to be assigned to `primitive.batch`.

    Example:
      >>> my_prim.batch = vectorized_batch_rule(my_prim)
    """

    def rule(vals, dims, **params):
        size = batch_size(vals, dims)
        moved = [bdim_at_front(v, d, size) for v, d in zip(vals, dims)]
        out = primitive.bind(*moved, **params)
        if primitive.multiple_results:
            return out, [0] * len(out)
        return out, 0

    rule.__name__ = f"{primitive.name}_batching_rule"
    return rule


# --------------------------------------------------------------------------------------------
# The trace and its tracer
# --------------------------------------------------------------------------------------------


class BatchAxis(NamedTuple):
    """The payload of a vmap's MainTrace: the mapped axis size and the mapped function's name."""

    size: int
    name: str


class BatchTracer(Tracer):
    """A batched value inside `vmap`: `val` holds every example, stacked along `batch_dim`.

    The tracer stands for one example, so its `aval` is `val`'s without the batch axis.
    `batch_dim` is an int, or `not_mapped` (None) for a value shared by all examples.

    Example:
      >>> vmap(lambda x: print(type(x).__name__, x.shape) or x)(jnp.zeros((3, 2))).shape
      BatchTracer (2,)
      (3, 2)
    """

    __slots__ = ("val", "batch_dim")

    def __init__(self, trace: BatchTrace, val: Any, batch_dim: BatchDim):
        self._trace = trace
        self.val = val
        self.batch_dim = batch_dim

    @property
    def aval(self) -> ShapedArray:
        aval = get_aval(self.val)
        bdim = self.batch_dim
        if bdim is None:
            return aval
        shape = aval.shape
        return ShapedArray(shape[:bdim] + shape[bdim + 1 :], aval.dtype, aval.weak_type)

    def full_lower(self):
        if self.batch_dim is None:
            val = self.val
            return val.full_lower() if isinstance(val, Tracer) else val
        return self

    def concrete_value(self) -> np.ndarray:
        if self.batch_dim is None:  # the same for every example: ask the value below
            val = self.val
            if isinstance(val, Tracer):
                return val.concrete_value()
            return val._value if type(val) is ArrayImpl else np.asarray(val)
        axis: BatchAxis = self._trace.main.payload
        raise ConcretizationTypeError(
            f"Abstract tracer value encountered where a concrete value is expected: {self!r}. "
            f"Inside vmap of `{axis.name}` (axis size {axis.size}) this value differs from "
            "one mapped example to the next, so it has no single Python value: bool(), int(), "
            "float(), `if` and `while` on it are not possible. Use jnp.where, lax.select or "
            "lax.cond instead, or pass the argument with in_axes=None if it should not be "
            "mapped."
        )


class BatchTrace(Trace):
    """Processes primitives on batched values by calling their batching rules."""

    __slots__ = ()

    def pure(self, val: Any) -> BatchTracer:
        return BatchTracer(self, val, not_mapped)

    lift = pure

    def process_primitive(self, primitive: Primitive, tracers: list, params: dict) -> list:
        vals = [t.val for t in tracers]
        dims = [t.batch_dim for t in tracers]
        if all(d is None for d in dims):
            out = primitive.bind(*vals, **params)
            outs = out if primitive.multiple_results else [out]
            return [BatchTracer(self, o, not_mapped) for o in outs]
        rule = primitive.batch
        if rule is None:
            raise TypeError(f"vmap: primitive {primitive.name} has no batching rule")
        out, out_dim = rule(vals, dims, **params)
        if primitive.multiple_results:
            return [BatchTracer(self, o, _nonneg(o, d)) for o, d in zip(out, out_dim)]
        return [BatchTracer(self, out, _nonneg(out, out_dim))]


def _nonneg(val: Any, bdim: BatchDim) -> BatchDim:
    """A rule may report its output's batch axis counted from the end; store it from the front."""
    if bdim is None or bdim >= 0:
        return bdim
    return bdim + get_aval(val).ndim


# --------------------------------------------------------------------------------------------
# vmap_flat: the transformation on flat lists of arrays
# --------------------------------------------------------------------------------------------


def vmap_flat(
    fun: Callable[..., Sequence[Any]],
    in_axes: Sequence[BatchDim],
    *args: Any,
    axis_size: int | None = None,
    out_axes: BatchDim | Sequence[BatchDim] = 0,
) -> list[Any]:
    """Map `fun` over axes of flat arguments; the pytree-free core of `vmap`.

    Args:
      fun: takes `len(args)` arrays and returns a list (or tuple) of arrays.
      in_axes: one entry per argument: the mapped axis (negative allowed) or None.
      *args: the arguments, arrays with the mapped axes in place.
      axis_size: the mapped size; required only when no argument is mapped.
      out_axes: where each output gets the mapped axis: one int/None for all outputs, or one
        entry per output (None only for outputs that do not depend on the mapped axis).

    Returns:
      The list of outputs, stacked along `out_axes`.

    Raises:
      ValueError: for inconsistent sizes, axes out of range, or 0-d mapped arguments.

    Example:
      >>> vmap_flat(lambda x, y: [x * y], [0, None], jnp.ones((3, 2)), 2.0)[0].shape
      (3, 2)
    """
    if len(in_axes) != len(args):
        raise ValueError(f"vmap_flat: in_axes has {len(in_axes)} entries for {len(args)} arguments")

    def flat_paths() -> list[str]:
        return [f"args[{i}]" for i in range(len(args))]

    axes = _normalize_in_axes(args, in_axes, flat_paths)
    size = _mapped_axis_size(args, axes, axis_size, flat_paths)
    name = getattr(fun, "__name__", "<function>")
    mapped = [_numpy_to_array(x) for x in args]
    vals, dims = _batch_flat(fun, axes, mapped, size, name)
    if out_axes is None or isinstance(out_axes, int):
        out_axes = [out_axes] * len(vals)
    elif len(out_axes) != len(vals):
        raise ValueError(f"vmap_flat: out_axes has {len(out_axes)} entries for {len(vals)} outputs")

    def out_paths() -> list[str]:
        return [f"out[{i}]" for i in range(len(vals))]

    return _place_outputs(vals, dims, list(out_axes), size, out_paths)


def _batch_flat(
    fun: Callable, axes: Sequence[BatchDim], args: list, size: int, name: str
) -> tuple[list, list]:
    """Run `fun` on batch tracers; returns the outputs' values and batch dims (trace below)."""
    with new_main(BatchTrace, BatchAxis(size, name)) as main:
        trace = BatchTrace(main)
        tracers = [x if d is None else BatchTracer(trace, x, d) for x, d in zip(args, axes)]
        outs = fun(*tracers)
        out_tracers = [trace.full_raise(o) for o in outs]
    return [t.val for t in out_tracers], [t.batch_dim for t in out_tracers]


def _numpy_to_array(x: Any) -> Any:
    """NumPy array arguments become fnbrrr Arrays (canonical dtype: f64 -> f32), so that the
    mapped function can use Array methods (`.at`, indexing by traced values) on them."""
    if type(x) is not np.ndarray:
        return x
    return ArrayImpl(np.asarray(x, get_aval(x).dtype), False)


def _normalize_in_axes(
    leaves: Sequence[Any], axes: Sequence[BatchDim], paths: Callable[[], list[str]]
) -> list[BatchDim]:
    """Non-negative axes, checked against each mapped leaf's rank."""
    out: list[BatchDim] = []
    for i, (x, axis) in enumerate(zip(leaves, axes)):
        if axis is None:
            out.append(None)
            continue
        try:
            shape = get_aval(x).shape
        except TypeError:
            raise ValueError(
                f"vmap: {paths()[i]} is mapped (in_axes {axis}) but is a {type(x).__name__}, "
                "not an array; give it in_axes=None"
            ) from None
        ndim = len(shape)
        if ndim == 0:
            fix = ("keyword arguments are always mapped over axis 0, as in JAX: pass it "
                   "positionally with in_axes=None, or close over it"
                   if paths()[i].startswith("kwargs") else
                   "give it in_axes=None to pass it unmapped to every example")
            raise ValueError(
                f"vmap was asked to map {paths()[i]} along axis {axis}, but it is 0-d "
                f"(shape ()): a mapped argument needs rank >= 1; {fix}."
            )
        if not -ndim <= axis < ndim:
            raise ValueError(
                f"vmap: in_axes {axis} is out of bounds for {paths()[i]} of shape {shape} "
                f"(rank {ndim}); it must be in [{-ndim}, {ndim})"
            )
        out.append(axis % ndim)
    return out


def _mapped_axis_size(
    leaves: Sequence[Any],
    axes: Sequence[BatchDim],
    axis_size: int | None,
    paths: Callable[[], list[str]],
) -> int:
    """The common size of the mapped axes (or `axis_size`), or a ValueError naming each one."""
    sizes = {get_aval(x).shape[d] for x, d in zip(leaves, axes) if d is not None}
    if axis_size is not None:
        sizes.add(axis_size)
    if len(sizes) == 1:
        return sizes.pop()
    if not sizes:
        raise ValueError(
            "vmap must have at least one non-None value in in_axes, or be given axis_size, "
            "to know the size of the mapped axis"
        )
    all_paths = paths()
    lines = [
        f"  {all_paths[i]} of shape {get_aval(x).shape} has size {get_aval(x).shape[d]} "
        f"along axis {d}"
        for i, (x, d) in enumerate(zip(leaves, axes))
        if d is not None
    ]
    if axis_size is not None:
        lines.insert(0, f"  axis_size={axis_size}")
    raise ValueError(
        "vmap got inconsistent sizes for the array axes to be mapped:\n" + "\n".join(lines)
    )


def _place_outputs(
    vals: list, dims: list, out_axes: list, size: int, paths: Callable[[], list[str]]
) -> list:
    """Move (or, for unbatched outputs, broadcast) each output's batch axis to its out_axes."""
    outs = []
    for i, (val, bdim, axis) in enumerate(zip(vals, dims, out_axes)):
        if axis is None:
            if bdim is not None:
                raise ValueError(
                    f"vmap has mapped output but out_axes is None for {paths()[i]}: its value "
                    f"(shape {get_aval(val).shape}, batch axis {bdim}) depends on the mapped "
                    "axis; give it an integer out_axes"
                )
            outs.append(_as_array(val))
            continue
        ndim = get_aval(val).ndim + (bdim is None)  # rank of the stacked output
        if not -ndim <= axis < ndim:
            raise ValueError(
                f"vmap: out_axes {axis} is out of bounds for {paths()[i]}, which has rank "
                f"{ndim} after stacking (shape per example {_example_shape(val, bdim)}); "
                f"it must be in [{-ndim}, {ndim})"
            )
        axis %= ndim
        outs.append(broadcast_batch(val, size, axis) if bdim is None else moveaxis(val, bdim, axis))
    return outs


def _as_array(val: Any) -> Any:
    """Outputs are fnbrrr Arrays even when `fun` returned a Python scalar or NumPy value."""
    if isinstance(val, (ArrayImpl, Tracer)):
        return val
    aval = get_aval(val)
    return ArrayImpl(np.asarray(val, aval.dtype), aval.weak_type)


def _example_shape(val: Any, bdim: BatchDim) -> tuple[int, ...]:
    shape = get_aval(val).shape
    return shape if bdim is None else shape[:bdim] + shape[bdim + 1 :]


# --------------------------------------------------------------------------------------------
# batch_jaxpr: batching a sub-program (for the rules of jit, cond, scan, while)
# --------------------------------------------------------------------------------------------


def batch_jaxpr(
    closed_jaxpr: ClosedJaxpr,
    axis_size: int,
    in_dims: Sequence[BatchDim],
    instantiate: bool | Sequence[bool] = False,
) -> tuple[ClosedJaxpr, list[BatchDim]]:
    """The IR of `closed_jaxpr` mapped over a batch axis, for rules of primitives holding IR.

    Args:
      closed_jaxpr: the program to batch.
      axis_size: the batch size.
      in_dims: for each input, the batch axis of the value it will receive, or None.
      instantiate: per output (or one bool for all): give the output a batch axis even if it
        does not depend on the batched inputs (by broadcasting).

    Returns:
      `(batched, out_dims)`: the batched program, whose inputs have the batch axis at
      `in_dims`, and for each output 0 (batched, axis first) or None (not batched).

    Example:
      >>> jaxpr, consts = core.trace_to_jaxpr(lambda x: [x * 2.0], [ShapedArray((3,), f32)])
      >>> batched, out_dims = batch_jaxpr(ClosedJaxpr(jaxpr, consts), 5, [1])
      >>> batched.in_avals, out_dims
      ([ShapedArray(f32[3,5])], [0])
    """
    n_out = len(closed_jaxpr.jaxpr.outvars)
    if isinstance(instantiate, bool):
        instantiate = [instantiate] * n_out
    in_avals = [_batched_aval(a, d, axis_size) for a, d in zip(closed_jaxpr.in_avals, in_dims)]
    out_dims: list[BatchDim] = []

    def run(*args: Any) -> list:
        vals, dims = _batch_flat(
            lambda *xs: eval_jaxpr(closed_jaxpr.jaxpr, closed_jaxpr.consts, *xs),
            in_dims,
            list(args),
            axis_size,
            "batch_jaxpr",
        )
        out_dims.extend(0 if d is not None or inst else None for d, inst in zip(dims, instantiate))
        return [
            v if od is None else bdim_at_front(v, d, axis_size)
            for v, d, od in zip(vals, dims, out_dims)
        ]

    jaxpr, consts = trace_to_jaxpr(run, in_avals, "batched")
    return ClosedJaxpr(jaxpr, consts), out_dims


def _batched_aval(aval: ShapedArray, bdim: BatchDim, size: int) -> ShapedArray:
    if bdim is None:
        return aval
    shape = aval.shape
    return ShapedArray((*shape[:bdim], size, *shape[bdim:]), aval.dtype, aval.weak_type)


# --------------------------------------------------------------------------------------------
# vmap: pytrees, in_axes / out_axes prefixes, checks
# --------------------------------------------------------------------------------------------


def vmap(
    fun: Callable,
    in_axes: int | None | Sequence[Any] = 0,
    out_axes: Any = 0,
    axis_size: int | None = None,
) -> Callable:
    """Vectorizing map: `fun` applied to every slice along the mapped axes, in one call.

    `vmap(f)(xs)` equals stacking `f(x)` for each `x` in `xs`, computed without a Python loop:
    each primitive inside `f` runs once on the whole batch through its batching rule.

    Args:
      fun: the function to map; takes pytrees of arrays, returns a pytree of arrays.
      in_axes: which axis of each positional argument to map: an int (negative allowed) or
        None for all of them, or a tuple/list with one entry per positional argument, each a
        pytree prefix of that argument whose leaves are ints or None (e.g.
        `(0, {"w": None, "b": 1})`). Keyword arguments are always mapped over axis 0 (as
        in JAX); bind unmapped ones with `functools.partial` or pass them positionally.
      out_axes: where the mapped axis goes in each output: an int (negative allowed) or a
        pytree prefix of the output. None is allowed for outputs that do not depend on the
        mapped axis (they are returned as they are); other outputs that do not depend on it
        are broadcast along the mapped axis.
      axis_size: the mapped size; needed only when no argument is mapped.

    Returns:
      The mapped function, with `fun`'s name and docstring.

    Raises:
      ValueError (when called): inconsistent mapped sizes, an axis out of range, an in_axes
        tuple whose length differs from the number of positional arguments, a 0-d mapped
        value, no mapped argument without axis_size, a mapped output with out_axes None.
        Messages name the argument's path (e.g. `args[1]['w']`) and the sizes.
      TypeError: in_axes / out_axes leaves that are not int or None.

    Example:
      >>> import fnbrrr.numpy as jnp
      >>> vmap(jnp.dot, in_axes=(0, None))(jnp.ones((5, 3)), jnp.ones(3)).shape
      (5,)
      >>> vmap(lambda x: x.sum(), in_axes=1)(jnp.ones((2, 4))).shape
      (4,)
    """
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)
    if not (in_axes is None or type(in_axes) is tuple or _is_axis(in_axes)):
        raise TypeError(
            "vmap in_axes must be an int, None, or a tuple with one entry per positional "
            f"argument, got {in_axes!r}"
        )
    _check_axis_leaves(in_axes, "in_axes")
    _check_axis_leaves(out_axes, "out_axes")
    if axis_size is not None:
        axis_size = operator.index(axis_size)

    @functools.wraps(fun)
    def vmapped(*args: Any, **kwargs: Any) -> Any:
        flat_args, in_tree = tree_flatten((args, kwargs))
        axes = _flat_in_axes(in_axes, args, kwargs, len(flat_args))

        def paths() -> list[str]:
            return leaf_paths(args, "args") + leaf_paths(kwargs, "kwargs")

        axes = _normalize_in_axes(flat_args, axes, paths)
        size = _mapped_axis_size(flat_args, axes, axis_size, paths)
        flat_args = [_numpy_to_array(x) for x in flat_args]
        out_trees = []

        def fun_flat(*leaves: Any) -> list:
            call_args, call_kwargs = tree_unflatten(in_tree, leaves)
            out_leaves, out_tree = tree_flatten(fun(*call_args, **call_kwargs))
            out_trees.append(out_tree)
            return out_leaves

        name = getattr(fun, "__name__", "<function>")
        vals, dims = _batch_flat(fun_flat, axes, flat_args, size, name)
        out_tree = out_trees[0]
        flat_out_axes = _flat_out_axes(out_axes, out_tree)

        def out_paths() -> list[str]:
            return leaf_paths(tree_unflatten(out_tree, vals), "out")

        return tree_unflatten(out_tree, _place_outputs(vals, dims, flat_out_axes, size, out_paths))

    return vmapped


def _is_axis(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _check_axis_leaves(spec: Any, what: str) -> None:
    """in_axes / out_axes leaves must be ints or None (TypeError otherwise, as in JAX)."""
    leaves = tree_flatten(spec, is_leaf=lambda x: x is None)[0]
    for leaf in leaves:
        if leaf is not None and not _is_axis(leaf):
            raise TypeError(
                f"vmap {what} must be an int, None, or a pytree with those as leaves, but got "
                f"{spec!r} (leaf {leaf!r} of type {type(leaf).__name__})"
            )


def _flat_in_axes(in_axes: Any, args: tuple, kwargs: dict, num_leaves: int) -> list[BatchDim]:
    """One axis (or None) per leaf of `(args, kwargs)`; keyword arguments map axis 0."""
    num_kwarg_leaves = len(tree_flatten(kwargs)[0]) if kwargs else 0
    num_arg_leaves = num_leaves - num_kwarg_leaves
    if type(in_axes) is not tuple:
        axis = None if in_axes is None else int(in_axes)
        return [axis] * num_arg_leaves + [0] * num_kwarg_leaves
    if len(in_axes) != len(args):
        raise ValueError(
            f"vmap in_axes must be an int, None, or a tuple with one entry per positional "
            f"argument, but got a tuple of length {len(in_axes)} for {len(args)} positional "
            f"argument{'s' if len(args) != 1 else ''}: in_axes={in_axes!r}"
        )
    try:
        axes = broadcast_prefix(in_axes, args)
    except ValueError as e:
        raise ValueError(
            f"vmap in_axes must be a pytree prefix of the positional arguments: each entry a "
            f"tree of ints/None matching its argument's containers down to its own leaves. "
            f"in_axes={in_axes!r}; argument structure {tree_structure(args)}.\n{e}"
        ) from None
    return [None if a is None else int(a) for a in axes] + [0] * num_kwarg_leaves


def _flat_out_axes(out_axes: Any, out_tree: Any) -> list[BatchDim]:
    """One out axis (or None) per output leaf, from an int/None or a pytree prefix."""
    n = out_tree.num_leaves
    if out_axes is None or _is_axis(out_axes):
        return [None if out_axes is None else int(out_axes)] * n
    try:
        axes = broadcast_prefix(out_axes, tree_unflatten(out_tree, [0] * n))
    except ValueError as e:
        raise ValueError(
            f"vmap out_axes must be an int, None, or a pytree prefix of the output; got "
            f"out_axes={out_axes!r} for an output of structure {out_tree}.\n{e}"
        ) from None
    return [None if a is None else int(a) for a in axes]
