"""Vocabulary for writing derivative rules: symbolic zeros and rule-table helpers.

Rule conventions (every primitive module follows them):

* `prim.jvp(primals, tangents, **params) -> (primal_out, tangent_out)`. Tangents may be
  `Zero` (a symbolic zero that costs nothing); the machinery calls the rule only when at
  least one tangent is not a `Zero`. `tangent_out` may be a `Zero`.
* `prim.vjp(ct, ans, *primals, **params) -> sequence` with one cotangent per primal input
  (`None` where the input gets no gradient). `ct` (the output cotangent) is never a `Zero`;
  `ans` is the primal output, for rules that reuse it (exp, tanh, sqrt...).
* Rules are written with primitives (`fnbrrr.lax`), so derivatives are differentiable again.

Example, the rule table of `sin`:

    defjvp(sin_p, lambda g, x: mul(g, cos(x)))
    defvjp(sin_p, lambda ct, ans, x: mul(ct, cos(x)))
"""

from __future__ import annotations

from collections.abc import Callable

from fnbrrr.core import Primitive, ShapedArray, get_aval


class DifferentiationError(TypeError, ValueError):
    """A derivative that cannot be taken as asked: reverse mode through a while_loop, or a
    cotangent of the wrong dtype. JAX raises ValueError for these and fnbrrr used TypeError;
    being both, it is caught by `except` clauses written for either."""


class Zero:
    """A symbolic zero tangent or cotangent of the given abstract value."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    @staticmethod
    def like(x) -> Zero:
        """A symbolic zero with `x`'s shape and dtype."""
        return Zero(get_aval(x))

    def __repr__(self) -> str:
        return f"Zero({self.aval.str_short()})"


def is_zero(x) -> bool:
    """True for symbolic zeros (and None, which rules use for 'no gradient')."""
    return x is None or type(x) is Zero


def instantiate(t, like=None):
    """A real array for a tangent: symbolic zeros become zeros of their shape and dtype."""
    if type(t) is Zero:
        from fnbrrr import lax

        return lax.full(t.aval.shape, 0, t.aval.dtype)
    if t is None:
        from fnbrrr import lax

        aval = get_aval(like)
        return lax.full(aval.shape, 0, aval.dtype)
    return t


def add_tangents(a, b):
    """a + b where either may be a symbolic zero."""
    if is_zero(a):
        return b
    if is_zero(b):
        return a
    from fnbrrr import lax

    return lax.add(a, b)


def defjvp(primitive: Primitive, *per_input: Callable | None) -> None:
    """JVP from one function per input: `f_i(tangent_i, *primals, **params) -> contribution`.

    The tangent out is the sum of the contributions of the inputs whose tangent is not zero;
    `None` marks an input with no derivative.
    """

    def rule(primals, tangents, **params):
        ans = primitive.bind(*primals, **params)
        out = None
        for f, t in zip(per_input, tangents):
            if f is not None and not is_zero(t):
                out = add_tangents(out, f(t, *primals, **params))
        return ans, Zero.like(ans) if out is None else out

    primitive.jvp = rule


def defjvp_with_ans(primitive: Primitive, *per_input: Callable | None) -> None:
    """Like `defjvp`, with the primal output passed first: `f_i(tangent_i, ans, *primals)`."""

    def rule(primals, tangents, **params):
        ans = primitive.bind(*primals, **params)
        out = None
        for f, t in zip(per_input, tangents):
            if f is not None and not is_zero(t):
                out = add_tangents(out, f(t, ans, *primals, **params))
        return ans, Zero.like(ans) if out is None else out

    primitive.jvp = rule


def deflinear(primitive: Primitive, transpose: Callable) -> None:
    """For primitives linear in all inputs: JVP applies the primitive to the tangents.

    `transpose(ct, *primals, **params)` gives the cotangents; it becomes the VJP rule.
    """

    def jvp(primals, tangents, **params):
        ans = primitive.bind(*primals, **params)
        tangents = [instantiate(t, p) for t, p in zip(tangents, primals)]
        return ans, primitive.bind(*tangents, **params)

    primitive.jvp = jvp
    primitive.vjp = lambda ct, ans, *primals, **params: transpose(ct, *primals, **params)


def defvjp(primitive: Primitive, *per_input: Callable | None) -> None:
    """VJP from one function per input: `f_i(ct, ans, *primals, **params) -> cotangent_i`."""

    def rule(ct, ans, *primals, **params):
        return [None if f is None else f(ct, ans, *primals, **params) for f in per_input]

    primitive.vjp = rule


def defnondiff(primitive: Primitive) -> None:
    """Mark a primitive whose outputs have no derivative (integer or boolean valued)."""
    primitive.differentiable = False
