"""Jacobians and Hessians: `jacfwd` (batched jvps), `jacrev` (batched pullbacks), `hessian`."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from fnbrrr.ad._forward import _jvp_core
from fnbrrr.ad._grad import _check_argnums, _split_args, _unflatten_inner
from fnbrrr.ad._helpers import (
    _avals,
    _derivatives_out,
    _flatten_fun,
    _fun_name,
    _lax,
    _strip_tracers,
    _vmap,
)
from fnbrrr.ad._reverse import _vjp_core
from fnbrrr.core import ArrayImpl, ShapedArray, get_aval
from fnbrrr.tree_util import PyTreeDef, tree_unflatten

# --------------------------------------------------------------------------------------------
# Jacobians and Hessians
# --------------------------------------------------------------------------------------------


def jacfwd(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
           holomorphic: bool = False) -> Callable:
    """The Jacobian of `fun` by forward mode: one jvp per input element, batched with vmap.

    Args:
      fun: a function of pytrees of float arrays.
      argnums: the argument(s) to differentiate (int or tuple of ints).
      has_aux: `fun` returns `(output, aux)`.
      holomorphic: complex differentiation; not supported (must be False).

    Returns:
      A function returning the Jacobian: for each output leaf (outer structure: the output's)
      and each input leaf (inner structure: the argument's, or a tuple for tuple argnums),
      an array of shape `out.shape + in.shape`. With `has_aux`, `(jacobian, aux)`.

    Example:
      >>> jacfwd(lambda x: x ** 2)(jnp.array([1.0, 2.0]))
      Array([[2., 0.],
             [0., 4.]], dtype=float32)
    """
    _check_real("jacfwd", holomorphic)
    _check_argnums(argnums, "jacfwd")

    @functools.wraps(fun)
    def jacfun(*args, **kwargs):
        inputs = _jacobian_inputs(fun, argnums, has_aux, args, kwargs, "jacfwd")
        total, basis = _std_basis(inputs.avals)
        pushfwd = _pushfwd(inputs.flat_fun, inputs.flat, inputs.store, has_aux)
        jac_rows, aux = _vmap(pushfwd, out_axes=(0, None))(*basis)

        def block(o: int, _, i: int, in_start: int):
            out_aval, in_aval = inputs.store["out_avals"][o], inputs.avals[i]
            return _jacfwd_block(jac_rows[o], out_aval, in_aval, in_start, total)

        jac = _jacobian_tree(inputs, inputs.store["out_avals"], block)
        return (jac, aux) if has_aux else jac

    return jacfun


class _JacobianInputs(NamedTuple):
    """What jacfwd and jacrev need from their arguments: the differentiated leaves, their
    avals and structure, and `fun` as a function of the flat leaves."""

    flat: list
    avals: list[ShapedArray]
    tree: PyTreeDef
    multiple: bool
    flat_fun: Callable
    store: dict


def _check_real(what: str, holomorphic: bool) -> None:
    if holomorphic:
        raise NotImplementedError(f"{what}(holomorphic=True): fnbrrr has no complex numbers")


def _jacobian_inputs(fun, argnums, has_aux, args, kwargs, what: str,
                     allow_int: bool = False) -> _JacobianInputs:
    flat, tree, partial_fun, multiple = _split_args(fun, argnums, args, what, allow_int)
    flat_fun, store = _flatten_fun(partial_fun, tree, has_aux, kwargs, _fun_name(fun))
    return _JacobianInputs(flat, _avals(flat), tree, multiple, flat_fun, store)


def _jacobian_tree(inputs: _JacobianInputs, out_avals: list, block: Callable):
    """The Jacobian as a pytree: the output's structure outside, the arguments' inside.

    `block(o, out_start, i, in_start)` is the `out.shape + in.shape` array for output leaf
    `o` and input leaf `i`, whose elements start at `out_start` and `in_start` in the flat
    outputs and inputs.
    """
    out_starts, in_starts = _starts(out_avals), _starts(inputs.avals)
    per_out = [
        _unflatten_inner(
            inputs.tree, [block(o, out_start, i, s) for i, s in enumerate(in_starts)],
            inputs.multiple,
        )
        for o, out_start in enumerate(out_starts)
    ]
    return tree_unflatten(inputs.store["out_tree"], per_out)


def _starts(avals: list[ShapedArray]) -> list[int]:
    """Where each leaf's elements start when all the leaves are flattened one after another."""
    return list(itertools.accumulate((a.size for a in avals), initial=0))[:-1]


def _pushfwd(flat_fun, flat_in, store, has_aux):
    """tangents -> (tangents_out, aux) at the fixed primals; records output avals in store."""

    def pushfwd(*tangents):
        out_p, out_t, main = _jvp_core(flat_fun, flat_in, tangents)
        store["out_avals"] = _avals(out_p)
        out_t = _derivatives_out(out_t, store["out_avals"])
        aux = _strip_tracers(store["aux"], main) if has_aux else None
        return out_t, aux

    return pushfwd


def _jacfwd_block(rows, out_aval: ShapedArray, in_aval: ShapedArray, start: int, total: int):
    """The `out.shape + in.shape` block of one output and one input leaf, from the rows
    `(total input elements, *out.shape)` that jacfwd's batched jvp produced for that output."""
    lax = _lax()
    block = lax.reshape(_rows(rows, start, in_aval.size, total), (*in_aval.shape, *out_aval.shape))
    nin = len(in_aval.shape)
    return lax.transpose(block, (*range(nin, nin + len(out_aval.shape)), *range(nin)))


def jacrev(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
           holomorphic: bool = False, allow_int: bool = False) -> Callable:
    """The Jacobian of `fun` by reverse mode: one pullback per output element, batched.

    Args:
      fun: a function of pytrees of float arrays.
      argnums: the argument(s) to differentiate (int or tuple of ints).
      has_aux: `fun` returns `(output, aux)`.
      holomorphic: complex differentiation; not supported (must be False).
      allow_int: allow integer inputs, whose Jacobian blocks are zeros of their dtype.

    Returns:
      A function returning the Jacobian, structured as for `jacfwd`: shape
      `out.shape + in.shape` per (output leaf, input leaf). With `has_aux`, `(jacobian, aux)`.

    Example:
      >>> jacrev(lambda x: x ** 2)(jnp.array([1.0, 2.0]))
      Array([[2., 0.],
             [0., 4.]], dtype=float32)
    """
    _check_real("jacrev", holomorphic)
    _check_argnums(argnums, "jacrev")

    @functools.wraps(fun)
    def jacfun(*args, **kwargs):
        inputs = _jacobian_inputs(fun, argnums, has_aux, args, kwargs, "jacrev", allow_int)
        outs, backward, main = _vjp_core(inputs.flat_fun, inputs.flat)
        out_avals = _avals(outs)
        total, basis = _std_basis(out_avals)

        def pullback(*cts):
            return _derivatives_out(backward(cts), inputs.avals)

        rows_per_in = _vmap(pullback)(*basis)

        def block(o: int, out_start: int, i: int, _):
            out_aval, in_aval = out_avals[o], inputs.avals[i]
            return _jacrev_block(rows_per_in[i], out_aval, in_aval, out_start, total)

        jac = _jacobian_tree(inputs, out_avals, block)
        if has_aux:
            return jac, _strip_tracers(inputs.store["aux"], main)
        return jac

    return jacfun


def _jacrev_block(rows, out_aval: ShapedArray, in_aval: ShapedArray, start: int, total: int):
    """The `out.shape + in.shape` block of one output and one input leaf, from the rows
    `(total output elements, *in.shape)` that jacrev's batched pullback produced for that
    input."""
    block_rows = _rows(rows, start, out_aval.size, total)
    return _lax().reshape(block_rows, (*out_aval.shape, *in_aval.shape))


def _std_basis(avals: list[ShapedArray]) -> tuple[int, list]:
    """Rows of an identity matrix split into one block per leaf: leaf i gets (N,) + shape_i."""
    sizes = [a.size for a in avals]
    total = sum(sizes)
    eye = np.eye(total)
    blocks, start = [], 0
    for aval, n in zip(avals, sizes):
        block = eye[:, start : start + n].reshape((total, *aval.shape)).astype(aval.dtype)
        blocks.append(ArrayImpl(block, False))
        start += n
    return total, blocks


def _rows(x, start: int, n: int, total: int):
    """Rows [start, start + n) of `x` along axis 0."""
    if n == total:
        return x
    shape = get_aval(x).shape
    return _lax().slice(x, (start, *(0 for _ in shape[1:])), (start + n, *shape[1:]))


def hessian(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
            holomorphic: bool = False) -> Callable:
    """The Hessian of a scalar function: `jacfwd(jacrev(fun))`, shape `in.shape + in.shape`.

    Args:
      fun: a scalar-valued function of pytrees of float arrays.
      argnums: the argument(s) to differentiate.
      has_aux: `fun` returns `(value, aux)`.
      holomorphic: complex differentiation; not supported (must be False).

    Returns:
      A function returning the Hessian (nested per pair of input leaves for pytrees).

    Example:
      >>> hessian(lambda x: (x ** 3).sum())(jnp.array([1.0, 2.0]))
      Array([[ 6.,  0.],
             [ 0., 12.]], dtype=float32)
    """
    _check_real("hessian", holomorphic)
    return jacfwd(jacrev(fun, argnums, has_aux), argnums, has_aux)
