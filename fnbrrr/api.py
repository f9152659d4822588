"""Pytree-aware entry points of the core: `make_jaxpr`."""

from __future__ import annotations

import functools
from collections.abc import Callable

from fnbrrr import core
from fnbrrr.tree_util import tree_flatten, tree_unflatten


def make_jaxpr(fun: Callable, static_argnums: int | tuple[int, ...] = ()) -> Callable:
    """Wrap `fun` so that calling it returns the IR it traces to (a `ClosedJaxpr`).

    Args:
      fun: a function of arrays (pytrees allowed).
      static_argnums: positions of arguments passed through as Python values.

    Returns:
      A function with `fun`'s signature returning a `ClosedJaxpr`; `print` it to read the IR.
      The output's pytree structure is available as `.out_tree` on the result.

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

        avals = [core.get_aval(x) for x in flat_args]
        jaxpr, consts = core.trace_to_jaxpr(flat_fun, avals, getattr(fun, "__name__", None))
        closed = core.ClosedJaxpr(jaxpr, consts)
        closed.out_tree = out_tree_box[0]
        return closed

    return traced
