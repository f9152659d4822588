"""`grad` and `value_and_grad`: reverse mode for scalar functions, with `argnums` handling
shared by the Jacobians."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence

import numpy as np

from fnbrrr.ad._helpers import (
    _as_array,
    _avals,
    _checked_inputs,
    _derivatives_out,
    _flatten_fun,
    _fun_name,
    _is_float,
    _LazyPaths,
    _strip_tracers,
)
from fnbrrr.ad._reverse import _vjp_core
from fnbrrr.core import ArrayImpl, get_aval
from fnbrrr.tree_util import PyTreeDef, leaf_paths, tree_flatten, tree_structure, tree_unflatten

# --------------------------------------------------------------------------------------------
# grad and value_and_grad
# --------------------------------------------------------------------------------------------


def grad(
    fun: Callable,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
) -> Callable:
    """The gradient of a scalar-valued function.

    Args:
      fun: a function whose output is a float scalar (0-d); its differentiated arguments are
        pytrees of float arrays. Keyword arguments pass through undifferentiated.
      argnums: which positional argument(s) to differentiate: an int, or a tuple of ints
        (then a tuple of gradients is returned, even for a 1-tuple).
      has_aux: `fun` returns `(value, aux)`; the gradient function returns `(grad, aux)`.
      holomorphic: complex differentiation; not supported (must be False).
      allow_int: allow integer inputs, whose gradients are zeros of their dtype.

    Returns:
      A function with `fun`'s signature returning the gradient(s), each with the structure
      and dtype of its argument.

    Example:
      >>> grad(lambda x: x ** 3)(2.0)
      Array(12., dtype=float32, weak_type=True)
      >>> grad(lambda p: p["w"] * p["b"])({"w": 2.0, "b": 3.0})
      {'b': Array(2., dtype=float32, weak_type=True), 'w': Array(3., dtype=float32, weak_type=True)}
    """
    value_and_grad_f = _value_and_grad(fun, argnums, has_aux, holomorphic, allow_int, "grad")

    @functools.wraps(fun)
    def grad_f(*args, **kwargs):
        value, g = value_and_grad_f(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return grad_f


def value_and_grad(
    fun: Callable,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
) -> Callable:
    """Like `grad`, also returning the value: `(value, grad)` or `((value, aux), grad)`.

    Args:
      fun, argnums, has_aux, holomorphic, allow_int: as for `grad`.

    Returns:
      A function returning `(fun(*args), gradient)`; with `has_aux`, `((value, aux), grad)`.

    Example:
      >>> value_and_grad(lambda x: x ** 2)(3.0)
      (Array(9., dtype=float32, weak_type=True), Array(6., dtype=float32))
    """
    return _value_and_grad(fun, argnums, has_aux, holomorphic, allow_int, "value_and_grad")


def _value_and_grad(fun, argnums, has_aux, holomorphic, allow_int, what):
    if holomorphic:
        raise NotImplementedError(f"{what}(holomorphic=True): fnbrrr has no complex numbers")
    _check_argnums(argnums, what)
    name = _fun_name(fun)

    @functools.wraps(fun)
    def value_and_grad_f(*args, **kwargs):
        flat, in_tree, partial_fun, multiple = _split_args(fun, argnums, args, what, allow_int)
        flat_fun, store = _flatten_fun(partial_fun, in_tree, has_aux, kwargs, name)
        outs, backward, main = _vjp_core(flat_fun, flat)
        out = _check_scalar_output(outs, store["out_tree"], name, what)
        seed = ArrayImpl(np.ones((), get_aval(out).dtype), False)
        grads = _derivatives_out(backward([seed]), _avals(flat))
        g = _unflatten_inner(in_tree, grads, multiple)
        value = _as_array(out)
        if has_aux:
            return (value, _strip_tracers(store["aux"], main)), g
        return value, g

    return value_and_grad_f


def _check_argnums(argnums, what: str) -> None:
    argnums_t = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not all(isinstance(a, int) for a in argnums_t):
        raise TypeError(f"{what}: argnums must be an int or a tuple of ints, got {argnums!r}")
    if not argnums_t:
        raise ValueError(f"{what}: argnums must not be an empty tuple")


def _split_args(fun, argnums, args, what, allow_int=False):
    """The differentiated arguments: (checked flat leaves, their tree, fun of them, tuple?).

    `fun of them` takes the differentiated arguments positionally (the others are fixed to
    their values in `args`) and passes keyword arguments through.
    """
    multiple = not isinstance(argnums, int)
    nums = _normalize_argnums(
        tuple(argnums) if multiple else (argnums,), len(args), _fun_name(fun), what
    )

    def partial_fun(*dyn_args, **kwargs):
        full = list(args)
        for i, a in zip(nums, dyn_args):
            full[i] = a
        return fun(*full, **kwargs)

    flat, in_tree = tree_flatten(tuple(args[i] for i in nums))
    flat = _checked_grad_inputs(fun, args, nums, flat, allow_int, what)
    return flat, in_tree, partial_fun, multiple


def _normalize_argnums(argnums: tuple, nargs: int, name: str, what: str) -> tuple:
    out = []
    for a in argnums:
        if not -nargs <= a < nargs:
            raise TypeError(
                f"{what}({name}): differentiating with respect to argnums={a} requires at least "
                f"{(a if a >= 0 else -a - 1) + 1} positional arguments, but got only {nargs}"
            )
        out.append(a % nargs)
    return tuple(out)


def _checked_grad_inputs(fun, args, nums, flat, allow_int, what) -> list:
    """The differentiated leaves as arrays; non-float ones are a TypeError naming the path."""
    paths = _LazyPaths(lambda: _argument_paths(fun, args, nums))
    out = _checked_inputs(flat, paths, what)
    if not allow_int:
        for i, x in enumerate(out):
            dtype = get_aval(x).dtype
            if dtype.kind != "f":
                raise TypeError(
                    f"{what}({_fun_name(fun)}) requires real-valued (floating-point) inputs, "
                    f"but {paths[i]} has dtype {dtype.name}. Pass floats (e.g. 2.0, not 2, or "
                    "x.astype(jnp.float32)), differentiate with respect to other arguments "
                    "via argnums, or use allow_int=True."
                )
    return out


def _argument_paths(fun, args, nums) -> list[str]:
    """`argument 0 ('p') at ['w']`-style paths of the differentiated leaves."""
    names = _arg_names(fun)
    paths = []
    for i in nums:
        label = f"argument {i}" + (f" ('{names[i]}')" if names and i < len(names) else "")
        paths += [f"{label} at {p}" if p else label for p in leaf_paths(args[i], "")]
    return paths


def _arg_names(fun) -> list[str] | None:
    try:
        params = inspect.signature(fun).parameters.values()
    except (TypeError, ValueError):
        return None
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _check_scalar_output(outs: list, out_tree: PyTreeDef, name: str, what: str):
    if len(outs) != 1 or out_tree != tree_structure(0.0):
        raise TypeError(
            f"{what}({name}): gradient only defined for scalar-output functions, but the "
            f"output is a pytree with structure {out_tree}. Use jacrev/vjp for non-scalar "
            "outputs, or has_aux=True to return auxiliary data."
        )
    aval = get_aval(outs[0])
    if aval.shape != ():
        raise TypeError(
            f"{what}({name}): gradient only defined for scalar-output functions. Output had "
            f"shape {aval.shape} ({aval.str_short()}); reduce it (e.g. .sum()) or use jacrev/vjp."
        )
    if not _is_float(aval):
        raise TypeError(
            f"{what}({name}) requires real-valued (floating-point) outputs, but the output "
            f"has dtype {aval.dtype.name}"
        )
    return outs[0]


def _unflatten_inner(in_tree: PyTreeDef, leaves: list, multiple: bool):
    """Per-argument results in the arguments' structure: a tuple for tuple argnums."""
    tree = tree_unflatten(in_tree, leaves)
    return tree if multiple else tree[0]
