"""`jit`: trace once per signature, optimise, fuse, lower to one Numba function, cache.

Called with concrete arguments, a jitted function looks its signature up in an in-memory
cache (pytree structure, shapes, dtypes, weak types, static values) and calls the compiled
program. Called under a transformation (grad, vmap, another jit), it binds the `pjit`
primitive, which holds the traced program; pjit's JVP, VJP and batching rules transform that
program, so `grad(jit(f))` and `vmap(jit(f))` stay compiled, and nested jits are inlined.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import Callable, Sequence

import numpy as np

from fnbrrr import core
from fnbrrr.ad_util import Zero, is_zero
from fnbrrr.config import config
from fnbrrr.core import ArrayImpl, ClosedJaxpr, Primitive, ShapedArray, Tracer
from fnbrrr.core import _traces_active as _TRACES_ACTIVE
from fnbrrr.jit import passes
from fnbrrr.jit.codegen import generate
from fnbrrr.jit.fusion import plan_fusion
from fnbrrr.jit.runtime import Executable
from fnbrrr.tree_util import tree_flatten, tree_structure, tree_unflatten

_LEAF = tree_structure(0)

# --------------------------------------------------------------------------------------------
# Compiling a closed program
# --------------------------------------------------------------------------------------------


_installed_for = [0]


def _install_rules() -> None:
    """Fill lowering and cost slots of primitives registered since the last compilation
    (modules such as custom_derivatives register theirs after fnbrrr.jit is imported)."""
    if len(core.primitives) != _installed_for[0]:
        from fnbrrr.jit import cost, lowering

        lowering.install()
        cost.install()
        _installed_for[0] = len(core.primitives)


class Lowered:
    """A traced and lowered program: `.as_text()` is the generated source, `.compile()` builds it.

    Example:
        >>> print(fnbrrr.jit(lambda x: x * 2 + 1).lower(jnp.ones(3)).as_text())
    """

    def __init__(self, closed: ClosedJaxpr, out_tree=None, name: str = "program"):
        _install_rules()
        self.original = closed
        jaxpr, consts = passes.optimize(closed.jaxpr, closed.consts)
        self.jaxpr = jaxpr
        self.consts = consts
        self.plan = plan_fusion(jaxpr)
        self.generated = generate(self.plan)
        self.out_tree = out_tree
        self.name = name
        self._compiled = None

    def as_text(self) -> str:
        """The generated Numba module: the program's IR, then its fused kernels."""
        return self.generated.source

    def compile(self) -> Compiled:
        """Compile (or load from the disk cache) and return the callable."""
        if self._compiled is None:
            consts = list(self.consts) + self.generated.extra_consts
            executable = Executable(self.generated, consts, self.original.out_avals)
            executable.compile()
            self._compiled = Compiled(self, executable)
        return self._compiled


class Compiled:
    """A compiled program. Call it with the same kinds of arguments it was lowered for."""

    def __init__(self, lowered: Lowered, executable: Executable):
        self.lowered = lowered
        self.executable = executable
        self.out_avals = lowered.original.out_avals

    def call_flat(self, flat_args: Sequence) -> list:
        """Run on flat arguments (arrays or scalars); returns flat fnbrrr Arrays."""
        inputs = [_as_input(x, a) for x, a in zip(flat_args, self.lowered.original.in_avals)]
        outs = self.executable(inputs)
        return [ArrayImpl(o, a.weak_type, a) for o, a in zip(outs, self.out_avals)]

    def fast_caller(self, out_tree) -> Callable:
        """A call path for positional fnbrrr Arrays of the compiled signature (the hot path)."""
        ex = self.executable
        driver, consts, pool, blas = ex.driver, ex.consts, ex.pool, ex.blas
        avals = self.out_avals
        if out_tree.num_leaves == 1 and out_tree == _LEAF:
            out_weak, out_aval = avals[0].weak_type, avals[0]

            def call_one(args):
                values = [a._value for a in args]
                for v in values:
                    if not v.flags.c_contiguous:
                        values = [_contiguous(v) for v in values]
                        break
                # The output's aval is known: handing it over spares the next consumer (often
                # this same function, in a loop) from building one.
                return ArrayImpl(driver(values, consts, pool, blas)[0], out_weak, out_aval)

            return call_one

        def call(args):
            values = [_contiguous(a._value) for a in args]
            outs = driver(values, consts, pool, blas)
            return tree_unflatten(out_tree, [ArrayImpl(o, a.weak_type, a)
                                             for o, a in zip(outs, avals)])

        return call

    def __call__(self, *args, **kwargs):
        flat, _ = tree_flatten((args, kwargs))
        outs = self.call_flat([x for x in flat if x is not None])
        tree = self.lowered.out_tree
        return tree_unflatten(tree, outs) if tree is not None else outs

    def as_text(self) -> str:
        """The generated source (same as `Lowered.as_text`)."""
        return self.lowered.as_text()

    def cost_analysis(self) -> dict:
        """FLOPs, transcendentals and bytes accessed of the program (see fnbrrr.jit.cost)."""
        from fnbrrr.jit.cost import program_cost

        lowered = self.lowered
        return program_cost(lowered.jaxpr, plan=lowered.plan, steps=lowered.generated.steps)


def _contiguous(value: np.ndarray) -> np.ndarray:
    """C-contiguous `value` (np.ascontiguousarray would turn a 0-d array into shape (1,))."""
    return value if value.flags.c_contiguous else np.ascontiguousarray(value)


def _as_input(x, aval: ShapedArray) -> np.ndarray:
    if type(x) is ArrayImpl:
        value = x._value
    else:
        value = np.asarray(x)
    if value.dtype != aval.dtype:
        value = value.astype(aval.dtype)
    if not value.flags.c_contiguous:
        value = np.ascontiguousarray(value)
    return value


_compiled_by_jaxpr: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compile_closed(closed: ClosedJaxpr) -> Compiled:
    """The compiled form of a closed program, cached on the program object."""
    compiled = _compiled_by_jaxpr.get(closed)
    if compiled is None:
        compiled = _compiled_by_jaxpr[closed] = Lowered(closed).compile()
    return compiled


# --------------------------------------------------------------------------------------------
# The pjit primitive: a compiled call holding its program
# --------------------------------------------------------------------------------------------

pjit_p = Primitive("pjit", multiple_results=True)


def _pjit_impl(*args, jaxpr: ClosedJaxpr, name: str):
    return [a._value for a in compile_closed(jaxpr).call_flat(args)]


def _pjit_abstract_eval(*avals, jaxpr: ClosedJaxpr, name: str):
    expected = jaxpr.in_avals
    if len(avals) != len(expected) or any(
            a.shape != e.shape or a.dtype != e.dtype for a, e in zip(avals, expected)):
        raise TypeError(f"pjit {name}: called with {avals}, but the program takes {expected}")
    return jaxpr.out_avals


def _eval(closed: ClosedJaxpr):
    return lambda *xs: core.eval_jaxpr(closed.jaxpr, closed.consts, *xs)


def _stage(flat_fun: Callable, avals: list, name: str) -> tuple[ClosedJaxpr, list]:
    from fnbrrr.core import closure_convert

    jaxpr, consts = core.trace_to_jaxpr(flat_fun, avals, name)
    return closure_convert(jaxpr, consts)


def _bind_staged(flat_fun, args, name):
    closed, hoisted = _stage(flat_fun, [core.get_aval(a) for a in args], name)
    return pjit_p.bind(*hoisted, *args, jaxpr=closed, name=name)


def _with_zeros(given, nonzero: list[bool], avals: list):
    """The given (non-zero) values, with zeros of the right type where none was given."""
    from fnbrrr import lax

    it = iter(given)
    return [next(it) if nz else lax.full(a.shape, 0, a.dtype) for nz, a in zip(nonzero, avals)]


def _pjit_jvp(primals, tangents, *, jaxpr: ClosedJaxpr, name: str):
    from fnbrrr.ad import jvp_flat

    nonzero = [not is_zero(t) for t in tangents]
    given = [t for t in tangents if not is_zero(t)]
    n = len(primals)

    def jvp_program(*args):
        tans = _with_zeros(args[n:], nonzero, jaxpr.in_avals)
        outs, out_tangents = jvp_flat(_eval(jaxpr), list(args[:n]), tans)
        return list(outs) + list(out_tangents)

    results = _bind_staged(jvp_program, list(primals) + given, f"jvp_{name}")
    k = len(jaxpr.out_avals)
    out_tangents = [t if a.dtype.kind == "f" else Zero(core.get_aval(t))
                    for t, a in zip(results[k:], jaxpr.out_avals)]
    return results[:k], out_tangents


def _pjit_vjp(cts, ans, *primals, jaxpr: ClosedJaxpr, name: str):
    from fnbrrr.ad import vjp_flat

    nonzero = [not is_zero(c) for c in cts]
    given = [c for c in cts if not is_zero(c)]
    n = len(primals)

    def backward_program(*args):
        out_cts = _with_zeros(args[n:], nonzero, jaxpr.out_avals)
        _, pullback = vjp_flat(_eval(jaxpr), list(args[:n]))
        return list(pullback(out_cts))

    results = _bind_staged(backward_program, list(primals) + given, f"vjp_{name}")
    return [r if a.dtype.kind == "f" else None for r, a in zip(results, jaxpr.in_avals)]


def _pjit_batch(vals, dims, *, jaxpr: ClosedJaxpr, name: str):
    from fnbrrr.batching import batch_jaxpr

    size = next(core.get_aval(v).shape[d] for v, d in zip(vals, dims) if d is not None)
    batched, out_dims = batch_jaxpr(jaxpr, size, list(dims), instantiate=True)
    outs = pjit_p.bind(*vals, jaxpr=batched, name=f"vmap_{name}")
    return outs, out_dims


pjit_p.impl = _pjit_impl
pjit_p.abstract_eval = _pjit_abstract_eval
pjit_p.jvp = _pjit_jvp
pjit_p.vjp = _pjit_vjp
pjit_p.batch = _pjit_batch
passes.INLINABLE["pjit"] = lambda params: (params["jaxpr"].jaxpr, params["jaxpr"].consts)


# --------------------------------------------------------------------------------------------
# jit
# --------------------------------------------------------------------------------------------


def _normalize_static(fun, static_argnums, static_argnames) -> tuple[tuple, tuple]:
    if static_argnums is None:
        nums = ()
    elif isinstance(static_argnums, int):
        nums = (static_argnums,)
    else:
        nums = tuple(int(i) for i in static_argnums)
    if static_argnames is None:
        names = ()
    elif isinstance(static_argnames, str):
        names = (static_argnames,)
    else:
        names = tuple(static_argnames)
    try:
        params = list(inspect.signature(fun).parameters)
    except (TypeError, ValueError):
        params = []
    # JAX accepts either form and fills in the other from the signature.
    nums = nums + tuple(params.index(n) for n in names if n in params and
                        params.index(n) not in nums)
    names = names + tuple(params[i] for i in nums if 0 <= i < len(params) and
                          params[i] not in names)
    return nums, names


def _hashable_static(value, where: str):
    try:
        hash(value)
    except TypeError:
        raise TypeError(
            f"jit: static argument {where} of type {type(value).__name__} is not hashable; "
            "static arguments key the compilation cache, so pass a hashable value (a tuple "
            "instead of a list, for example) or make the argument non-static"
        ) from None
    return value


class _CacheEntry:
    __slots__ = ("compiled", "out_tree", "lowered")

    def __init__(self, lowered: Lowered, compiled: Compiled | None):
        self.lowered = lowered
        self.compiled = compiled
        self.out_tree = lowered.out_tree


class JitFunction:
    """A jitted function (see `jit`). Also: `.lower(*args)`, `.trace_count`, `.clear_cache()`."""

    def __init__(self, fun: Callable, static_argnums=None, static_argnames=None):
        self.fun = fun
        self.static_argnums, self.static_argnames = _normalize_static(
            fun, static_argnums, static_argnames)
        self._cache: dict = {}
        # signature -> call path, for calls with positional Arrays only (no statics, kwargs)
        self._fast: dict | None = None if (self.static_argnums or self.static_argnames) else {}
        self.trace_count = 0
        # updated=(): copying fun.__dict__ would overwrite our own attributes (and a
        # custom_jvp object's rule would be lost behind the plain function).
        functools.update_wrapper(self, fun, updated=())

    # --- the call path -------------------------------------------------------------------------

    def __call__(self, *args, **kwargs):
        fast = self._fast
        if fast is not None and not kwargs and (not _TRACES_ACTIVE[0] or not core.current_level()):
            try:  # the hot path: positional concrete Arrays of a signature seen before
                caller = fast.get((config.jax_enable_x64, *[a._aval or a.aval for a in args]))
            except AttributeError:
                caller = None
            if caller is not None and not config.jax_disable_jit:
                return caller(args)
        return self._call_general(args, kwargs)

    def _call_general(self, args, kwargs):
        if config.jax_disable_jit:
            return self.fun(*args, **kwargs)
        dynamic_args, dynamic_kwargs, static_key = self._split(args, kwargs)
        flat, in_tree = tree_flatten((dynamic_args, dynamic_kwargs))
        if core.current_level() or any(isinstance(x, Tracer) for x in flat):
            return self._bind(args, kwargs, flat, in_tree, dynamic_args, dynamic_kwargs)
        key = (in_tree, static_key, config.jax_enable_x64, *[_signature(x) for x in flat])
        entry = self._cache.get(key)
        if entry is None:
            entry = self._cache[key] = self._compile(args, kwargs, flat, in_tree)
            if self._fast is not None and not kwargs and all(
                    type(a) is ArrayImpl for a in args):
                fast_key = (config.jax_enable_x64, *[a.aval for a in args])
                self._fast[fast_key] = entry.compiled.fast_caller(entry.out_tree)
        outs = entry.compiled.call_flat(flat)
        return tree_unflatten(entry.out_tree, outs)

    def _split(self, args, kwargs):
        nums, names = self.static_argnums, self.static_argnames
        static_key = ()
        if nums or names:
            static_key = tuple(
                (i, _hashable_static(args[i], f"{i}")) for i in nums if i < len(args)
            ) + tuple((n, _hashable_static(kwargs[n], n)) for n in names if n in kwargs)
            args = tuple(a for i, a in enumerate(args) if i not in nums)
            kwargs = {k: v for k, v in kwargs.items() if k not in names}
        return args, kwargs, static_key

    def _flat_fun(self, args, kwargs, in_tree, out_tree_box):
        nums, names = self.static_argnums, self.static_argnames

        def flat_fun(*flat):
            dyn_args, dyn_kwargs = tree_unflatten(in_tree, list(flat))
            it = iter(dyn_args)
            full_args = [args[i] if i in nums else next(it) for i in range(len(args))]
            full_kwargs = {k: (kwargs[k] if k in names else dyn_kwargs[k]) for k in kwargs}
            out = self.fun(*full_args, **full_kwargs)
            out_flat, out_tree = tree_flatten(out)
            out_tree_box.append(out_tree)
            return out_flat

        return flat_fun

    def _trace(self, args, kwargs, flat, in_tree):
        out_tree_box: list = []
        flat_fun = self._flat_fun(args, kwargs, in_tree, out_tree_box)
        avals = [core.get_aval(x) for x in flat]
        self.trace_count += 1
        jaxpr, consts = core.trace_to_jaxpr(flat_fun, avals, _name(self.fun))
        return jaxpr, consts, out_tree_box[0]

    def _compile(self, args, kwargs, flat, in_tree) -> _CacheEntry:
        jaxpr, consts, out_tree = self._trace(args, kwargs, flat, in_tree)
        lowered = Lowered(ClosedJaxpr(jaxpr, consts), out_tree, _name(self.fun))
        return _CacheEntry(lowered, lowered.compile())

    def _bind(self, args, kwargs, flat, in_tree, dynamic_args, dynamic_kwargs):
        from fnbrrr.core import closure_convert

        jaxpr, consts, out_tree = self._trace(args, kwargs, flat, in_tree)
        closed, hoisted = closure_convert(jaxpr, consts)
        outs = pjit_p.bind(*hoisted, *flat, jaxpr=closed, name=_name(self.fun))
        return tree_unflatten(out_tree, outs)

    # --- introspection -------------------------------------------------------------------------

    def lower(self, *args, **kwargs) -> Lowered:
        """Trace and lower for these arguments; `.as_text()` shows the generated kernels."""
        dynamic_args, dynamic_kwargs, _ = self._split(args, kwargs)
        flat, in_tree = tree_flatten((dynamic_args, dynamic_kwargs))
        jaxpr, consts, out_tree = self._trace(args, kwargs, flat, in_tree)
        return Lowered(ClosedJaxpr(jaxpr, consts), out_tree, _name(self.fun))

    def clear_cache(self) -> None:
        """Forget every compiled signature (the disk cache stays)."""
        self._cache.clear()
        if self._fast is not None:
            self._fast.clear()

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return functools.partial(self, obj)


def _signature(x):
    if type(x) is ArrayImpl:
        return x.aval
    if isinstance(x, np.ndarray):
        return (x.shape, x.dtype)
    if isinstance(x, (bool, int, float)):
        return (type(x),)
    return core.get_aval(x)


def _name(fun) -> str:
    return getattr(fun, "__name__", None) or getattr(getattr(fun, "func", None), "__name__",
                                                     "function")


def jit(fun: Callable | None = None, *, static_argnums: int | Sequence[int] | None = None,
        static_argnames: str | Sequence[str] | None = None):
    """Compile `fun`: trace it once per signature, fuse it, and run it as one Numba function.

    Args:
      fun: a function of arrays (pytrees allowed); also `functools.partial` objects.
      static_argnums: positions of arguments treated as compile-time constants (hashable).
      static_argnames: names of such arguments.

    Returns:
      A `JitFunction` with `fun`'s signature. Usable as a bare decorator or with arguments.

    Example:
        >>> @fnbrrr.jit
        ... def f(x):
        ...     return x * 2 + 1
        >>> f(jnp.arange(3.0))
        Array([1., 3., 5.], dtype=float32)
    """
    if fun is None:
        return lambda f: JitFunction(f, static_argnums, static_argnames)
    return JitFunction(fun, static_argnums, static_argnames)
