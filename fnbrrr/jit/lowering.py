"""How the compiler emits each primitive: the `lower` slot of the registry.

Four kinds of lowering, which decide how fusion treats a primitive:

* `Elementwise(expr)`: a scalar expression inside a fused loop body.
* `Remap(index)`: a read of its operand at remapped indices (broadcast, transpose, slice,
  rev, squeeze, iota). Never computed on its own: consumers read through it.
* `Reduce(combine, identity)`: accumulates its operand over some axes; ends a fused loop.
* `Kernel(emit)`: a loop nest of its own (or a BLAS call) between fused loops.

A primitive without a lowering still runs under jit: the compiler emits an object-mode call of
its NumPy `impl` (slow, and marked so in the generated source).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fnbrrr import core
from fnbrrr.jit import mathlib


@dataclass(frozen=True)
class Elementwise:
    """`expr(args, in_avals, out_aval, params) -> str`: the scalar expression of the result."""

    expr: Callable


@dataclass(frozen=True)
class Remap:
    """`index(out_index, operand_aval, out_aval, params) -> list[str]`: operand indices.

    A remap with no operand (iota) gives the value instead: `value(out_index, out_aval,
    params) -> str`.
    """

    index: Callable | None = None
    value: Callable | None = None


@dataclass(frozen=True)
class Reduce:
    """Accumulate with `combine(acc, x) -> str`, starting from `identity(dtype) -> str`."""

    combine: Callable
    identity: Callable


@dataclass(frozen=True)
class Kernel:
    """`emit(ctx, eqn, ins, outs) -> list[str]`: statements computing the outputs' buffers."""

    emit: Callable


# --- literals and dtypes in generated code --------------------------------------------------------


def np_type(dtype) -> str:
    """`np.float32` for float32, `np.bool_` for bool..."""
    dtype = np.dtype(dtype)
    return "np.bool_" if dtype == np.bool_ else f"np.{dtype.name}"


def literal(value, dtype) -> str:
    """A constant of exactly `dtype` (Python float constants would promote float32 to float64)."""
    dtype = np.dtype(dtype)
    value = np.asarray(value, dtype).item()
    if dtype == np.bool_:
        return "True" if value else "False"
    if dtype.kind == "f":
        if np.isnan(value):
            return f"{np_type(dtype)}(np.nan)"
        if np.isinf(value):
            return f"{np_type(dtype)}({'-' if value < 0 else ''}np.inf)"
        return f"{np_type(dtype)}({value!r})"
    return f"{np_type(dtype)}({int(value)})"


def _math(name: str):
    """A transcendental: fnbrrr's vectorisable version where one exists, else NumPy's."""

    def expr(args, in_avals, out_aval, params):
        fn = mathlib.SCALAR_MATH.get((name, out_aval.dtype.name))
        if fn is not None:
            return f"{fn.__name__}({args[0]})"
        return f"np.{_NUMPY_NAMES.get(name, name)}({args[0]})"

    return expr


_NUMPY_NAMES = {"logistic": "__logistic_unavailable", "erf": "__erf_unavailable"}


def _fmt(template: str):
    return lambda args, in_avals, out_aval, params: template.format(*args)


def _typed(template: str):
    """A template that may use {one}, {zero}: constants in the result's dtype."""

    def expr(args, in_avals, out_aval, params):
        dtype = in_avals[0].dtype
        return template.format(*args, one=literal(1, dtype), zero=literal(0, dtype))

    return expr


def _sign(args, in_avals, out_aval, params):
    x = args[0]
    one, zero = literal(1, out_aval.dtype), literal(0, out_aval.dtype)
    return f"({one} if {x} > {zero} else (-{one} if {x} < {zero} else {x}))"


def _integer_pow(args, in_avals, out_aval, params):
    y = params["y"]
    x = args[0]
    if y == 0:
        return literal(1, out_aval.dtype)
    power = "(" + " * ".join([x] * abs(y)) + ")" if abs(y) <= 8 else f"({x} ** {abs(y)})"
    return f"({literal(1, out_aval.dtype)} / {power})" if y < 0 else power


def _div(args, in_avals, out_aval, params):
    if out_aval.dtype.kind == "f":
        return f"({args[0]} / {args[1]})"
    return f"_int_div({args[0]}, {args[1]})"


def _rem(args, in_avals, out_aval, params):
    if out_aval.dtype.kind == "f":
        return f"np.fmod({args[0]}, {args[1]})"
    return f"_int_rem({args[0]}, {args[1]})"


def _nan_max(args, in_avals, out_aval, params):
    x, y = args
    if out_aval.dtype.kind == "f":
        return f"({x} if ({x} > {y} or {x} != {x}) else {y})"
    return f"max({x}, {y})"


def _nan_min(args, in_avals, out_aval, params):
    x, y = args
    if out_aval.dtype.kind == "f":
        return f"({x} if ({x} < {y} or {x} != {x}) else {y})"
    return f"min({x}, {y})"


def _not(args, in_avals, out_aval, params):
    return f"(not {args[0]})" if out_aval.dtype == np.bool_ else f"(~{args[0]})"


def _select_n(args, in_avals, out_aval, params):
    which, *cases = args
    if len(cases) == 2:
        return f"({cases[1]} if {which} else {cases[0]})"
    expr = cases[-1]
    for i in range(len(cases) - 2, -1, -1):
        expr = f"({cases[i]} if {which} <= {i} else {expr})"
    return expr


def _convert(args, in_avals, out_aval, params):
    new = out_aval.dtype
    if new == np.bool_:
        return f"({args[0]} != {literal(0, in_avals[0].dtype)})"
    return f"{np_type(new)}({args[0]})"


def _wrapping(template: str):
    """Integer results wrap at their dtype, as in NumPy: Numba computes in 64 bits, so cast."""

    def expr(args, in_avals, out_aval, params):
        text = template.format(*args)
        if out_aval.dtype.kind in "iu":
            return f"{np_type(out_aval.dtype)}({text})"
        return text

    return expr


ELEMENTWISE = {
    "neg": _wrapping("(-{0})"), "exp": _math("exp"), "log": _math("log"), "log1p": _math("log1p"),
    "expm1": _math("expm1"), "sin": _math("sin"), "cos": _math("cos"), "tanh": _math("tanh"),
    "logistic": _math("logistic"), "erf": _math("erf"), "tan": _fmt("np.tan({0})"),
    "sqrt": _fmt("np.sqrt({0})"), "rsqrt": _typed("({one} / np.sqrt({0}))"),
    "square": _wrapping("({0} * {0})"), "abs": _fmt("abs({0})"), "sign": _sign,
    "floor": _fmt("np.floor({0})"), "ceil": _fmt("np.ceil({0})"), "round": _fmt("np.rint({0})"),
    "is_finite": _fmt("np.isfinite({0})"), "not": _not, "integer_pow": _integer_pow,
    "add": _wrapping("({0} + {1})"), "sub": _wrapping("({0} - {1})"),
    "mul": _wrapping("({0} * {1})"),
    "div": _div, "rem": _rem, "pow": _fmt("({0} ** {1})"), "max": _nan_max, "min": _nan_min,
    "atan2": _fmt("np.arctan2({0}, {1})"), "and": _fmt("({0} & {1})"),
    "or": _fmt("({0} | {1})"), "xor": _fmt("({0} ^ {1})"), "eq": _fmt("({0} == {1})"),
    "ne": _fmt("({0} != {1})"), "lt": _fmt("({0} < {1})"), "le": _fmt("({0} <= {1})"),
    "gt": _fmt("({0} > {1})"), "ge": _fmt("({0} >= {1})"), "select_n": _select_n,
    "convert_element_type": _convert, "stop_gradient": _fmt("{0}"),
}


# --- remaps --------------------------------------------------------------------------------------


def _broadcast_index(out_index, operand_aval, out_aval, params):
    return ["0" if operand_aval.shape[src] == 1 and out_aval.shape[dst] != 1 else out_index[dst]
            for src, dst in enumerate(params["broadcast_dimensions"])]


def _transpose_index(out_index, operand_aval, out_aval, params):
    index = [None] * len(out_index)
    for out_axis, operand_axis in enumerate(params["permutation"]):
        index[operand_axis] = out_index[out_axis]
    return index


def _slice_index(out_index, operand_aval, out_aval, params):
    return [f"({start} + {stride} * {i})" if (start, stride) != (0, 1) else i
            for i, start, stride in zip(out_index, params["start_indices"], params["strides"])]


def _rev_index(out_index, operand_aval, out_aval, params):
    return [f"({operand_aval.shape[d] - 1} - {i})" if d in params["dimensions"] else i
            for d, i in enumerate(out_index)]


def _squeeze_index(out_index, operand_aval, out_aval, params):
    it = iter(out_index)
    return ["0" if d in params["dimensions"] else next(it) for d in range(operand_aval.ndim)]


def _iota_value(out_index, out_aval, params):
    return f"{np_type(out_aval.dtype)}({out_index[params['dimension']]})"


REMAPS = {
    "broadcast_in_dim": Remap(index=_broadcast_index),
    "transpose": Remap(index=_transpose_index),
    "slice": Remap(index=_slice_index),
    "rev": Remap(index=_rev_index),
    "squeeze": Remap(index=_squeeze_index),
    "iota": Remap(value=_iota_value),
}


# --- reductions ----------------------------------------------------------------------------------


def _lowest(dtype) -> str:
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return literal(-np.inf, dtype)
    if dtype == np.bool_:
        return "False"
    return literal(np.iinfo(dtype).min, dtype)


def _highest(dtype) -> str:
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return literal(np.inf, dtype)
    if dtype == np.bool_:
        return "True"
    return literal(np.iinfo(dtype).max, dtype)


def _max_combine(acc, x):
    return f"({acc} if ({acc} >= {x} or {acc} != {acc}) else {x})"


def _min_combine(acc, x):
    return f"({acc} if ({acc} <= {x} or {acc} != {acc}) else {x})"


REDUCTIONS = {
    "reduce_sum": Reduce(lambda a, x: f"({a} + {x})", lambda d: literal(0, d)),
    "reduce_prod": Reduce(lambda a, x: f"({a} * {x})", lambda d: literal(1, d)),
    "reduce_max": Reduce(_max_combine, _lowest),
    "reduce_min": Reduce(_min_combine, _highest),
    "reduce_and": Reduce(lambda a, x: f"({a} and {x})", lambda d: "True"),
    "reduce_or": Reduce(lambda a, x: f"({a} or {x})", lambda d: "False"),
}


def install() -> None:
    """Fill the `lower` slot of every primitive that has a lowering here or in `kernels`."""
    from fnbrrr.jit import control_flow, conv_kernels, kernels

    for name, expr in ELEMENTWISE.items():
        if name in core.primitives:
            core.primitives[name].lower = Elementwise(expr)
    for table in (REMAPS, REDUCTIONS, kernels.KERNELS, control_flow.CONTROL_FLOW,
                  conv_kernels.CONV_KERNELS):
        for name, lowering in table.items():
            if name in core.primitives:
                core.primitives[name].lower = lowering
