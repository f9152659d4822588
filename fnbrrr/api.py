"""Pytree-aware entry points of the core: `make_jaxpr`, `eval_shape` (with
`ShapeDtypeStruct`), and JAX's host/device helpers (`block_until_ready`, `device_put`,
`device_get`) for a library with one, synchronous device."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from fnbrrr import core
from fnbrrr.tree_util import tree_flatten, tree_unflatten


class ShapeDtypeStruct:
    """The shape and dtype of an array, without its values: what `eval_shape` returns, and an
    argument `eval_shape` and `make_jaxpr` accept in place of an array.

    Example:
        >>> import numpy as np
        >>> ShapeDtypeStruct((2, 3), np.float32)
        ShapeDtypeStruct(shape=(2, 3), dtype=float32)
    """

    __slots__ = ("shape", "dtype", "weak_type")

    def __init__(self, shape, dtype, *, weak_type: bool = False):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.weak_type = bool(weak_type)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __eq__(self, other) -> bool:
        return isinstance(other, ShapeDtypeStruct) and (
            (self.shape, self.dtype, self.weak_type)
            == (other.shape, other.dtype, other.weak_type))

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype, self.weak_type))

    def __repr__(self) -> str:
        weak = ", weak_type=True" if self.weak_type else ""
        return f"ShapeDtypeStruct(shape={self.shape}, dtype={self.dtype.name}{weak})"


def _input_aval(x) -> core.ShapedArray:
    if isinstance(x, ShapeDtypeStruct):
        from fnbrrr.dtypes import canonicalize

        return core.ShapedArray(x.shape, canonicalize(x.dtype), x.weak_type)
    return core.get_aval(x)


def _out_shapes(closed: core.ClosedJaxpr):
    shapes = [ShapeDtypeStruct(a.shape, a.dtype, weak_type=a.weak_type)
              for a in closed.out_avals]
    return tree_unflatten(closed.out_tree, shapes)


def eval_shape(fun: Callable, *args, **kwargs):
    """The shapes and dtypes `fun(*args, **kwargs)` would have, found by tracing (nothing is
    computed). Arguments may be arrays or `ShapeDtypeStruct`s (pytrees allowed).

    Args:
      fun: a function of arrays.
      *args, **kwargs: its arguments.

    Returns:
      The output's pytree with a `ShapeDtypeStruct` per leaf.

    Example:
        >>> import fnbrrr, numpy as np
        >>> fnbrrr.eval_shape(lambda a, b: a @ b, ShapeDtypeStruct((2, 3), np.float32),
        ...                   ShapeDtypeStruct((3, 4), np.float32))
        ShapeDtypeStruct(shape=(2, 4), dtype=float32)
    """
    return make_jaxpr(fun, return_shape=True)(*args, **kwargs)[1]


def make_jaxpr(fun: Callable, static_argnums: int | tuple[int, ...] = (),
               return_shape: bool = False) -> Callable:
    """Wrap `fun` so that calling it returns the IR it traces to (a `ClosedJaxpr`).

    Args:
      fun: a function of arrays (pytrees allowed; `ShapeDtypeStruct`s stand for arrays).
      static_argnums: positions of arguments passed through as Python values.
      return_shape: also return the output's shapes, as for `eval_shape`.

    Returns:
      A function with `fun`'s signature returning a `ClosedJaxpr` (and, with `return_shape`,
      the output's pytree of `ShapeDtypeStruct`s); `print` it to read the IR. The output's
      pytree structure is available as `.out_tree` on the result.

    Example:
        >>> import fnbrrr, fnbrrr.numpy as jnp
        >>> print(fnbrrr.make_jaxpr(lambda x: jnp.sin(x) * 2.0)(1.0))
        { lambda ; a:f32[]. let
            b:f32[] = sin a
            c:f32[] = mul b 2.0:f32[]
          in (c,) }
    """
    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

    @functools.wraps(fun)
    def traced(*args, **kwargs):
        dynamic = [a for i, a in enumerate(args) if i not in static]
        flat_args, in_tree = tree_flatten((dynamic, kwargs))
        out_tree_box = []

        def flat_fun(*flat):
            dyn, kw = tree_unflatten(in_tree, list(flat))
            it = iter(dyn)
            full = [args[i] if i in static else next(it) for i in range(len(args))]
            out = fun(*full, **kw)
            flat_out, out_tree = tree_flatten(out)
            out_tree_box.append(out_tree)
            return flat_out

        avals = [_input_aval(x) for x in flat_args]
        jaxpr, consts = core.trace_to_jaxpr(flat_fun, avals, getattr(fun, "__name__", None))
        closed = core.ClosedJaxpr(jaxpr, consts)
        closed.out_tree = out_tree_box[0]
        return (closed, _out_shapes(closed)) if return_shape else closed

    return traced


def block_until_ready(x):
    """Wait until every array in the pytree `x` is computed, and return `x` unchanged.

    fnbrrr computes synchronously (a result exists when the call returns), so this only returns
    its argument; it is here so that code written for JAX, which dispatches asynchronously and
    times with `jax.block_until_ready(f(x))`, runs unchanged and costs nothing.

    Args:
      x: any pytree (arrays, scalars, containers).

    Returns:
      `x` itself.

    Example:
        >>> import fnbrrr, fnbrrr.numpy as jnp
        >>> y = fnbrrr.block_until_ready(jnp.ones(3) * 2)
        >>> y.tolist()
        [2.0, 2.0, 2.0]
    """
    return x


def device_put(x, device=None):
    """Place the pytree `x` on the (only) device: each leaf becomes a `fnbrrr.Array`.

    Args:
      x: a pytree of arrays, NumPy arrays or scalars.
      device: accepted for JAX compatibility; fnbrrr has one device, the CPU, so it must be
        None.

    Returns:
      The same pytree with `jnp.asarray` applied to every leaf.

    Example:
        >>> import fnbrrr, numpy as np
        >>> fnbrrr.device_put({"w": np.zeros(2)})["w"].dtype
        dtype('float32')
    """
    if device is not None:
        raise ValueError(f"device_put: fnbrrr runs on one device (the CPU); got device={device!r}."
                         " Leave `device` out.")
    from fnbrrr import numpy as jnp
    from fnbrrr.tree_util import tree_map

    return tree_map(jnp.asarray, x)


def device_get(x):
    """Copy the pytree `x` to host memory: each `fnbrrr.Array` leaf becomes a NumPy array.

    Args:
      x: a pytree whose leaves are fnbrrr Arrays (other leaves are returned as they are).

    Returns:
      The same pytree with NumPy arrays in place of fnbrrr Arrays.

    Example:
        >>> import fnbrrr, fnbrrr.numpy as jnp
        >>> type(fnbrrr.device_get([jnp.ones(2)])[0]).__name__
        'ndarray'
    """
    from fnbrrr.tree_util import tree_map

    return tree_map(lambda leaf: np.asarray(leaf) if isinstance(leaf, core.Array) else leaf, x)
