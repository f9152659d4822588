"""The core: primitives and their registry, abstract values, traces and tracers, and the IR.

Every array operation is a `Primitive`. `Primitive.bind` hands it to the innermost active
trace: at the bottom the eval trace runs the primitive's NumPy `impl`; above it, each
transformation (jvp, reverse mode, vmap, IR staging for `jit`/`make_jaxpr`) is a trace whose
tracers wrap values of the trace below. Traces are found by level: a tracer knows the
`MainTrace` it belongs to, and the highest level among a primitive's inputs wins.
"""

from __future__ import annotations

import abc
import itertools
import math
import os
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np

from fnbrrr import dtypes as _dtypes

# --------------------------------------------------------------------------------------------
# Abstract values
# --------------------------------------------------------------------------------------------

_SHORT_DTYPE = {
    "float16": "f16", "float32": "f32", "float64": "f64", "int8": "i8", "int16": "i16",
    "int32": "i32", "int64": "i64", "uint8": "u8", "uint16": "u16", "uint32": "u32",
    "uint64": "u64", "bool": "bool",
}


class ShapedArray:
    """The abstract value of an array: its shape, dtype and whether its type is weak.

    Shape rules (`abstract_eval`) map input ShapedArrays to output ShapedArrays.

    Example:
        >>> ShapedArray((3, 4), np.dtype("float32"))
        ShapedArray(f32[3,4])
    """

    __slots__ = ("shape", "dtype", "weak_type", "_hash")

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, weak_type: bool = False):
        self.shape = shape
        self.dtype = dtype
        self.weak_type = weak_type

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: math.prod(self.shape))  # np.prod costs ~4 us per call

    def update(self, shape=None, dtype=None, weak_type=None) -> ShapedArray:
        """A copy with some fields replaced."""
        return ShapedArray(
            self.shape if shape is None else tuple(shape),
            self.dtype if dtype is None else dtype,
            self.weak_type if weak_type is None else weak_type,
        )

    def str_short(self) -> str:
        """`f32[3,4]`, the form the IR printer uses."""
        dtype = _SHORT_DTYPE.get(self.dtype.name, self.dtype.name)
        return f"{dtype}[{','.join(map(str, self.shape))}]"

    def __eq__(self, other) -> bool:
        return self is other or (
            type(other) is ShapedArray
            and self.shape == other.shape
            and self.dtype == other.dtype
            and self.weak_type == other.weak_type
        )

    def __hash__(self) -> int:
        try:  # computed on first use: avals key the jit cache, but eager code never hashes
            return self._hash
        except AttributeError:
            self._hash = hash((self.shape, self.dtype, self.weak_type))
            return self._hash

    def __repr__(self) -> str:
        weak = ", weak_type=True" if self.weak_type else ""
        return f"ShapedArray({self.str_short()}{weak})"


def get_aval(x) -> ShapedArray:
    """The abstract value of any array-like fnbrrr accepts (Array, tracer, ndarray, scalar)."""
    aval = getattr(x, "aval", None)
    if aval is not None:
        return aval
    if isinstance(x, (np.ndarray, np.generic)):
        return ShapedArray(x.shape, _dtypes.canonicalize(x.dtype), False)
    if isinstance(x, (bool, int, float)):
        return ShapedArray((), _dtypes.python_scalar_dtype(x), True)
    raise TypeError(
        f"value of type {type(x).__name__} is not a valid fnbrrr array-like; "
        "pass an fnbrrr Array, a NumPy array or a Python scalar"
    )


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class ConcretizationTypeError(TypeError):
    """A traced (abstract) value was used where a concrete Python value is needed."""


class UnexpectedTracerError(Exception):
    """A tracer escaped the transformation that created it and was used afterwards."""


class TracerArrayConversionError(TypeError):
    """A tracer was converted to a NumPy array (`np.asarray(tracer)`)."""


class TracerIntegerConversionError(TypeError):
    """A tracer was used as a Python integer (an index, a `range` bound...)."""


def user_source_line() -> str:
    """`file:line (function)` of the innermost stack frame outside the fnbrrr package."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return "<unknown>"
    code = frame.f_code
    return f"{os.path.basename(code.co_filename)}:{frame.f_lineno} ({code.co_name})"


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------------------------
# Primitives and the registry
# --------------------------------------------------------------------------------------------

primitives: dict[str, Primitive] = {}


class Primitive:
    """One array operation with all of its rules.

    Slots, filled by the module that defines the primitive's family:
      impl(*np_arrays, **params)          -> np.ndarray (or a tuple if `multiple_results`)
      abstract_eval(*avals, **params)     -> ShapedArray (or a list); the one place that
                                            raises shape and dtype errors
      jvp(primals, tangents, **params)    -> (primal_out, tangent_out)       forward mode
      vjp(ct, ans, *primals, **params)    -> cotangent per input (None = no gradient)
      batch(vals, dims, **params)         -> (out, out_dim)                 vmap
    and by the compiler (fnbrrr/jit: lowering.py, kernels.py, control_flow.py, cost.py):
      lower                               -> how the jit compiler emits it
      cost(*avals, **params)              -> {"flops", "transcendentals", "bytes accessed"},
                                            a view of the rule in fnbrrr.jit.cost.COST_RULES
    `differentiable=False` marks primitives with no derivative (integer-valued ones).

    Example:
        >>> sin_p = Primitive("sin")
        >>> sin_p.impl = np.sin
    """

    __slots__ = (
        "name", "multiple_results", "impl", "abstract_eval", "jvp", "vjp", "batch", "lower",
        "cost", "differentiable", "doc", "eager",
    )

    def __init__(self, name: str, multiple_results: bool = False, differentiable: bool = True):
        if name in primitives:
            raise ValueError(f"primitive {name!r} is already registered")
        self.name = name
        self.multiple_results = multiple_results
        self.differentiable = differentiable
        self.impl = self.abstract_eval = self.jvp = self.vjp = None
        self.batch = self.lower = self.cost = None
        # Optional eager shortcut `eager(*args) -> Array or None`: the impl and the shape rule
        # specialised for concrete Arrays (None means "not my case": the general path runs).
        self.eager = None
        self.doc = ""
        primitives[name] = self

    def bind(self, *args, **params):
        """Apply the primitive to `args` in the innermost active trace."""
        if not _traces_active[0] or len(_state.stack) == 1:
            eager = self.eager
            if eager is not None and not params and not _debug_nans[0]:
                out = eager(*args)
                if out is not None:
                    return out
            return eval_primitive(self, args, params)
        return bind_traced(self, args, params)

    def __repr__(self) -> str:
        return self.name


# --------------------------------------------------------------------------------------------
# Traces
# --------------------------------------------------------------------------------------------


class MainTrace:
    """One active transformation: its level in the stack, its trace type, and its data."""

    __slots__ = ("level", "trace_type", "payload")

    def __init__(self, level: int, trace_type: type, payload: Any = None):
        self.level = level
        self.trace_type = trace_type
        self.payload = payload

    def __repr__(self) -> str:
        return f"MainTrace({self.level}, {self.trace_type.__name__})"


class _TraceState(threading.local):
    """Per-thread trace stack, so that traces in one thread never capture another's ops."""

    def __init__(self) -> None:
        self.stack: list[MainTrace] = [MainTrace(0, EvalTrace)]
        self.dynamic: MainTrace = self.stack[0]


@contextmanager
def new_main(trace_type: type, payload: Any = None, dynamic: bool = False):
    """Push a new transformation on this thread's trace stack for the `with` block.

    A `dynamic` main (the IR builder of `jit`) also captures operations whose inputs are not
    its tracers, so constants created inside a jitted function are staged, not run eagerly.
    """
    state = _state
    main = MainTrace(len(state.stack), trace_type, payload)
    state.stack.append(main)
    previous_dynamic = state.dynamic
    if dynamic:
        state.dynamic = main
    with _traces_lock:
        _traces_active[0] += 1
    try:
        yield main
    finally:
        with _traces_lock:
            _traces_active[0] -= 1
        state.dynamic = previous_dynamic
        state.stack.pop()


# How many transformations are active in any thread: while none is, `bind` can skip the
# thread-local lookup (the eager hot path). When some thread traces, every thread checks its
# own stack, which is always correct.
_traces_active = [0]
_traces_lock = threading.Lock()


def current_level() -> int:
    """The level of the innermost active trace (0 when only eager evaluation is active)."""
    return len(_state.stack) - 1


class Trace:
    """Base of every trace: turns values into its tracers and processes primitives."""

    __slots__ = ("main",)

    def __init__(self, main: MainTrace):
        self.main = main

    def pure(self, val):
        """A tracer of this trace for a value that does not depend on the transformation."""
        raise NotImplementedError(f"{type(self).__name__} must define pure")

    def lift(self, tracer):
        """A tracer of this trace for a tracer of a lower trace."""
        return self.pure(tracer)

    def full_raise(self, val):
        if not isinstance(val, Tracer):
            return self.pure(val)
        level = self.main.level
        val_main = val._trace.main
        if val_main is self.main:
            return val
        if val_main.level < level:
            return self.lift(val)
        raise UnexpectedTracerError(_escaped_message(val, self.main))

    def process_primitive(self, primitive: Primitive, tracers: list, params: dict) -> list:
        raise NotImplementedError(f"{type(self).__name__} must define process_primitive")


def _escaped_message(tracer, where) -> str:
    return (
        f"a tracer from {tracer._trace.main.trace_type.__name__} at level "
        f"{tracer._trace.main.level} was used outside the transformation that created it "
        f"(now in {where}). This happens when a function stores a traced value in a global, "
        "a closure or an attribute and it is used after the transformation returned; return "
        "the value from the transformed function instead."
    )


def find_top_trace(args) -> Trace:
    """The trace that processes a primitive: the highest-level one among its inputs' traces."""
    state = _state
    top = state.dynamic
    for x in args:
        if isinstance(x, Tracer):
            main = x._trace.main
            if main.level > top.level:
                top = main
    if top.level >= len(state.stack) or state.stack[top.level] is not top:
        raise UnexpectedTracerError(_escaped_message(_first_tracer(args, top), "eager code"))
    return top.trace_type(top)


def _first_tracer(args, main):
    return next(x for x in args if isinstance(x, Tracer) and x._trace.main is main)


def bind_traced(primitive: Primitive, args, params):
    trace = find_top_trace(args)
    tracers = [trace.full_raise(a) for a in args]
    outs = trace.process_primitive(primitive, tracers, params)
    if primitive.multiple_results:
        return [full_lower(o) for o in outs]
    return full_lower(outs[0])


def full_lower(val):
    """Unwrap tracers whose transformation no longer matters (see each tracer's full_lower)."""
    if isinstance(val, Tracer):
        return val.full_lower()
    return val


class Tracer:
    """Base of every tracer. Array operators and methods are attached by `fnbrrr.numpy`."""

    __slots__ = ("_trace",)
    __array_priority__ = 1000

    @property
    def aval(self) -> ShapedArray:
        raise NotImplementedError(f"{type(self).__name__} must define aval")

    shape = property(lambda self: self.aval.shape)
    dtype = property(lambda self: self.aval.dtype)
    ndim = property(lambda self: len(self.aval.shape))
    size = property(lambda self: self.aval.size)
    weak_type = property(lambda self: self.aval.weak_type)

    def full_lower(self):
        return self

    def concrete_value(self) -> np.ndarray:
        """The concrete NumPy value behind this tracer, or ConcretizationTypeError."""
        raise ConcretizationTypeError(
            f"Abstract tracer value encountered where a concrete value is expected: {self!r}. "
            f"The value depends on the arguments of a function being transformed by "
            f"{self._trace.main.trace_type.__name__}."
        )

    def __repr__(self) -> str:
        return f"Traced<{self.aval.str_short()}>with<{type(self._trace).__name__}>"

    def __array__(self, dtype=None, copy=None):
        raise TracerArrayConversionError(
            f"The numpy.ndarray conversion method __array__() was called on {self!r}: a traced "
            "value has no concrete data. Use fnbrrr.numpy functions instead of numpy ones "
            "inside transformed functions."
        )

    def __bool__(self) -> bool:
        return bool(self.concrete_value())

    def __float__(self) -> float:
        return float(self.concrete_value())

    def __int__(self) -> int:
        return int(self.concrete_value())

    def __index__(self) -> int:
        try:
            value = self.concrete_value()
        except ConcretizationTypeError as e:
            raise TracerIntegerConversionError(str(e)) from None
        return int(value)

    def item(self):
        return self.concrete_value().item()

    def __hash__(self):
        raise TypeError(f"unhashable type: {type(self).__name__} (traced arrays are unhashable)")

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of unsized object (a 0-d traced array)")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __setitem__(self, idx, value):
        raise TypeError(
            f"'{type(self).__name__}' object does not support item assignment: fnbrrr arrays "
            "are immutable. Use x.at[idx].set(value) to get an updated copy."
        )


# --------------------------------------------------------------------------------------------
# The eval trace: eager execution on NumPy
# --------------------------------------------------------------------------------------------


class EvalTrace(Trace):
    """The bottom trace: runs primitives eagerly with their NumPy `impl`."""

    def pure(self, val):
        return val

    lift = pure

    def process_primitive(self, primitive, tracers, params):
        out = eval_primitive(primitive, tracers, params)
        return out if primitive.multiple_results else [out]


# inf and nan are values here, as in JAX: NumPy's floating-point RuntimeWarnings raised while
# fnbrrr runs a primitive's impl are silenced. A filter costs nothing per call, where an
# np.errstate block per operation cost 1.7 us, more than the operation itself.
warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"fnbrrr(\.|$)")


def eval_primitive(primitive: Primitive, args, params):
    """Run `primitive` eagerly: check shapes with `abstract_eval`, compute with `impl`."""
    try:  # the common case: every argument is already a concrete fnbrrr Array
        if len(args) == 1:
            x = args[0]
            avals, values = (x._aval or x.aval,), (x._value,)
        else:
            avals = [x._aval or x.aval for x in args]
            values = [x._value for x in args]
    except AttributeError:
        avals, values = _eager_operands(args)
    out_aval = primitive.abstract_eval(*avals, **params)
    out = primitive.impl(*values, **params)
    if primitive.multiple_results:
        return [_wrap_result(o, a, primitive) for o, a in zip(out, out_aval)]
    return _wrap_result(out, out_aval, primitive)


def _eager_operands(args) -> tuple[list, list]:
    avals, values = [], []
    for x in args:
        if type(x) is ArrayImpl:
            avals.append(x.aval)
            values.append(x._value)
            continue
        if isinstance(x, Tracer):
            raise UnexpectedTracerError(_escaped_message(x, "eager code"))
        aval = get_aval(x)
        avals.append(aval)
        values.append(np.asarray(x, aval.dtype))
    return avals, values


def _wrap_result(value, aval: ShapedArray, primitive: Primitive) -> ArrayImpl:
    # dtypes are interned: `is` settles the common case without NumPy's slow comparison
    if type(value) is not np.ndarray or (value.dtype is not aval.dtype
                                         and value.dtype != aval.dtype):
        value = np.asarray(value, aval.dtype)
    if _debug_nans[0]:
        _check_nans(value, primitive)
    return ArrayImpl(value, aval.weak_type, aval)


def _check_nans(value: np.ndarray, primitive: Primitive) -> None:
    if value.dtype.kind == "f" and np.isnan(value).any():
        raise FloatingPointError(
            f"invalid value (nan) produced by primitive {primitive.name} "
            f"at {user_source_line()} (config jax_debug_nans is on)"
        )


_debug_nans = [False]


def _watch_debug_nans(name, value):
    if name == "jax_debug_nans":
        _debug_nans[0] = bool(value)


_dtypes.config.on_change(_watch_debug_nans)


# --------------------------------------------------------------------------------------------
# Arrays
# --------------------------------------------------------------------------------------------


class Array(metaclass=abc.ABCMeta):  # noqa: B024 (an ABC for isinstance checks only)
    """The public array type: concrete arrays and tracers are both instances.

    `isinstance(x, fnbrrr.Array)` is true for every result of an fnbrrr.numpy function,
    whether computed eagerly or traced inside a transformation.
    """

    __slots__ = ()


Array.register(Tracer)


class ArrayImpl(Array):
    """An immutable, concrete array: a NumPy buffer with a (dtype, weak_type) type.

    Users obtain these from fnbrrr.numpy functions (`jnp.asarray`), never by constructing
    them directly. Operators and methods are attached by `fnbrrr.numpy`.
    """

    __slots__ = ("_value", "_weak", "_aval")
    __array_priority__ = 100

    def __init__(self, value: np.ndarray, weak_type: bool = False, aval=None):
        self._value = value
        self._weak = weak_type
        self._aval = aval  # the caller's ShapedArray for exactly this value, or None

    @property
    def aval(self) -> ShapedArray:
        aval = self._aval
        if aval is None:
            aval = self._aval = ShapedArray(self._value.shape, self._value.dtype, self._weak)
        return aval

    shape = property(lambda self: self._value.shape)
    dtype = property(lambda self: self._value.dtype)
    ndim = property(lambda self: self._value.ndim)
    size = property(lambda self: self._value.size)
    weak_type = property(lambda self: self._weak)

    def concrete_value(self) -> np.ndarray:
        return self._value

    def __array__(self, dtype=None, copy=None):
        view = self._value.view()
        view.flags.writeable = False
        if dtype is not None and np.dtype(dtype) != view.dtype:
            return view.astype(dtype)
        if copy:
            return view.copy()
        return view

    def __bool__(self) -> bool:
        return bool(self._value)

    def __float__(self) -> float:
        return float(self._scalar("float"))

    def __int__(self) -> int:
        return int(self._scalar("int"))

    def _scalar(self, what: str):
        if self._value.size != 1:
            raise TypeError(f"only size-1 arrays can be converted to Python {what}, got shape "
                            f"{self._value.shape}")
        return self._value.reshape(()).item()

    def __index__(self) -> int:
        if self._value.ndim or self._value.dtype.kind not in "iub":
            raise TypeError(f"only integer scalar arrays can be used as an index, got {self!r}")
        return int(self._value)

    def __complex__(self) -> complex:
        return complex(self._value)

    def item(self, *args):
        """The element as a Python scalar."""
        return self._value.item(*args)

    def tolist(self):
        """The array as nested Python lists."""
        return self._value.tolist()

    def __len__(self) -> int:
        if not self._value.ndim:
            raise TypeError("len() of unsized object (a 0-d array)")
        return self._value.shape[0]

    def __iter__(self):
        if not self._value.ndim:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self._value.shape[0]))

    def __hash__(self):
        raise TypeError("unhashable type: 'Array'")

    def __setitem__(self, idx, value):
        raise TypeError(
            "'Array' object does not support item assignment: fnbrrr arrays are immutable. "
            "Use x.at[idx].set(value) to get an updated copy."
        )

    def __repr__(self) -> str:
        prefix = "Array("
        weak = ", weak_type=True" if self._weak else ""
        dtype = self._value.dtype
        if self._value.size == 0:
            body = f"[], shape={self._value.shape}"
        else:
            body = np.array2string(self._value, separator=", ", prefix=prefix)
        return f"{prefix}{body}, dtype={dtype.name}{weak})"

    def __str__(self) -> str:
        return str(self._value)

    def __format__(self, spec: str) -> str:
        if self._value.ndim == 0:
            return format(self._value.item(), spec)
        return format(str(self), spec)

    def __reduce__(self):
        return (_rebuild_array, (self._value, self._weak))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


def _rebuild_array(value, weak):
    return ArrayImpl(np.asarray(value), weak)


def is_concrete(x) -> bool:
    """True for values with data now: Arrays, NumPy arrays and Python scalars."""
    return not isinstance(x, Tracer)


def concrete_or_error(x, what: str):
    """The NumPy value of `x`, or a ConcretizationTypeError that says what needed it."""
    if isinstance(x, Tracer):
        try:
            return x.concrete_value()
        except ConcretizationTypeError as e:
            raise ConcretizationTypeError(f"{what} needs a concrete value: {e}") from None
    if type(x) is ArrayImpl:
        return x._value
    return np.asarray(x)


# --------------------------------------------------------------------------------------------
# The IR: a typed SSA program
# --------------------------------------------------------------------------------------------


class Var:
    """A variable of the IR; names are given when printing."""

    __slots__ = ("aval", "__weakref__")

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self) -> str:
        return f"Var({self.aval.str_short()})"


class Literal:
    """A scalar constant written inline in the IR (`mul a 2.0:f32[]`)."""

    __slots__ = ("val", "aval")

    def __init__(self, val: np.ndarray, aval: ShapedArray):
        self.val = val
        self.aval = aval

    def __repr__(self) -> str:
        return f"Literal({self.val})"


Atom = Var | Literal


class Eqn(NamedTuple):
    """One equation: `outvars = primitive[params] invars`, with the user's source line."""

    primitive: Primitive
    inputs: list
    params: dict
    outvars: list
    source: str = ""


class Jaxpr:
    """A typed SSA program: constants, inputs, equations and outputs.

    `constvars` are bound to the `consts` of a `ClosedJaxpr`; `invars` to the arguments.
    """

    __slots__ = ("constvars", "invars", "eqns", "outvars", "__weakref__")

    def __init__(self, constvars, invars, eqns, outvars):
        self.constvars = list(constvars)
        self.invars = list(invars)
        self.eqns = list(eqns)
        self.outvars = list(outvars)

    @property
    def in_avals(self) -> list[ShapedArray]:
        return [v.aval for v in self.invars]

    @property
    def out_avals(self) -> list[ShapedArray]:
        return [v.aval for v in self.outvars]

    def __str__(self) -> str:
        return pretty_print(self)

    __repr__ = __str__


class ClosedJaxpr:
    """A Jaxpr together with the values of its constants; what `make_jaxpr` returns.

    Example:
        >>> import fnbrrr, fnbrrr.numpy as jnp
        >>> print(fnbrrr.make_jaxpr(jnp.sin)(1.0))
        { lambda ; a:f32[]. let b:f32[] = sin a in (b,) }
    """

    __slots__ = ("jaxpr", "consts", "out_tree", "__weakref__")

    def __init__(self, jaxpr: Jaxpr, consts: Sequence, out_tree=None):
        self.jaxpr = jaxpr
        self.consts = list(consts)
        self.out_tree = out_tree

    in_avals = property(lambda self: self.jaxpr.in_avals)
    out_avals = property(lambda self: self.jaxpr.out_avals)
    eqns = property(lambda self: self.jaxpr.eqns)

    def __call__(self, *args):
        return eval_jaxpr(self.jaxpr, self.consts, *args)

    def __str__(self) -> str:
        return pretty_print(self.jaxpr)

    __repr__ = __str__


def eval_jaxpr(jaxpr: Jaxpr, consts: Sequence, *args) -> list:
    """Evaluate the IR by binding each equation's primitive (so it works under any trace)."""
    env: dict[Var, Any] = {}

    def read(atom):
        if type(atom) is Literal:
            # A bare ndarray would read as strongly typed: `x * 2.0` would lose its weak type.
            return ArrayImpl(atom.val, True) if atom.aval.weak_type else atom.val
        return env[atom]

    if len(args) != len(jaxpr.invars):
        raise TypeError(f"eval_jaxpr: expected {len(jaxpr.invars)} arguments, got {len(args)}")
    env.update(zip(jaxpr.constvars, consts))
    env.update(zip(jaxpr.invars, args))
    for eqn in jaxpr.eqns:
        outs = eqn.primitive.bind(*[read(a) for a in eqn.inputs], **eqn.params)
        if eqn.primitive.multiple_results:
            env.update(zip(eqn.outvars, outs))
        else:
            env[eqn.outvars[0]] = outs
    return [read(a) for a in jaxpr.outvars]



# --- dead-code elimination --------------------------------------------------------------------


def live_eqns(
    eqns: Sequence[Eqn], roots: Sequence, keep: Callable[[Eqn], bool] | None = None
) -> list[Eqn]:
    """The equations among `eqns` that the atoms `roots` depend on, in program order.

    Args:
      eqns: equations in program order.
      roots: the atoms (variables or literals) whose values are wanted.
      keep: optional; an equation for which it returns True is kept (with what it reads)
        even when nothing needs its outputs, e.g. one with a side effect.

    Returns:
      The kept equations, in their original order.

    Example:
      >>> f32 = ShapedArray((), np.dtype("float32"))
      >>> jaxpr, _ = trace_to_jaxpr(lambda x: [x + 1.0, x * 2.0], [f32])
      >>> [e.primitive.name for e in live_eqns(jaxpr.eqns, jaxpr.outvars[1:])]
      ['mul']
    """
    live = {v for v in roots if type(v) is Var}
    kept = []
    for eqn in reversed(eqns):
        if any(v in live for v in eqn.outvars) or (keep is not None and keep(eqn)):
            kept.append(eqn)
            live.update(a for a in eqn.inputs if type(a) is Var)
    return kept[::-1]


def eliminate_dead_code(
    jaxpr: Jaxpr, consts: Sequence, keep: Callable[[Eqn], bool] | None = None
) -> tuple[Jaxpr, list]:
    """The same program without the equations and constants its outputs do not need.

    Inputs are all kept, so callers bind the program with the same arguments as before.

    Args:
      jaxpr: the program.
      consts: the values of its `constvars`.
      keep: as in `live_eqns`: equations to keep even when their outputs are unused.

    Returns:
      `(jaxpr, consts)`: the smaller program and the values of its remaining constants.

    Example:
      >>> f32 = ShapedArray((), np.dtype("float32"))
      >>> jaxpr, consts = trace_to_jaxpr(lambda x: [x + 1.0, x * 2.0], [f32])
      >>> doubled = Jaxpr(jaxpr.constvars, jaxpr.invars, jaxpr.eqns, jaxpr.outvars[1:])
      >>> print(eliminate_dead_code(doubled, consts)[0])
      { lambda ; a:f32[]. let b:f32[] = mul a 2.0:f32[] in (b,) }
    """
    eqns = live_eqns(jaxpr.eqns, jaxpr.outvars, keep)
    used = {a for e in eqns for a in e.inputs if type(a) is Var}
    used.update(v for v in jaxpr.outvars if type(v) is Var)
    pairs = [(v, c) for v, c in zip(jaxpr.constvars, consts) if v in used]
    new = Jaxpr([v for v, _ in pairs], jaxpr.invars, eqns, jaxpr.outvars)
    return new, [c for _, c in pairs]

# --- printing ---------------------------------------------------------------------------------


def _var_names():
    letters = "abcdefghijklmnopqrstuvwxyz"
    for n in itertools.count(1):
        for chars in itertools.product(letters, repeat=n):
            yield "".join(chars)


def _format_param(value) -> str:
    if isinstance(value, (Jaxpr, ClosedJaxpr)):
        inner = pretty_print(value.jaxpr if isinstance(value, ClosedJaxpr) else value)
        return "\n      " + inner.replace("\n", "\n      ")
    if isinstance(value, np.dtype):
        return value.name
    if callable(value) and hasattr(value, "__name__"):
        return value.__name__
    return repr(value)


class VarNames:
    """Names for the variables of one program (a, b, ..., z, aa, ...), given on first sight."""

    def __init__(self):
        self.names: dict[Var, str] = {}
        self.fresh = _var_names()

    def __call__(self, v) -> str:
        if type(v) is Literal:
            val = v.val.item() if hasattr(v.val, "item") else v.val
            return f"{val}:{v.aval.str_short()}"
        if v not in self.names:
            self.names[v] = next(self.fresh)
        return self.names[v]

    def binder(self, v) -> str:
        return f"{self(v)}:{v.aval.str_short()}"

    def eqn(self, eqn: Eqn) -> str:
        """One equation as the printer shows it: `c:f32[3] = mul a b`."""
        lhs = " ".join(self.binder(v) for v in eqn.outvars)
        params = ""
        if eqn.params:
            params = "[" + " ".join(
                f"{k}={_format_param(v)}" for k, v in sorted(eqn.params.items())
            ) + "]"
        rhs = " ".join(self(a) for a in eqn.inputs)
        return f"{lhs} = {eqn.primitive.name}{params} {rhs}".rstrip()


def pretty_print(jaxpr: Jaxpr, names: VarNames | None = None) -> str:
    """Render the IR in JAX's jaxpr style, one equation per line."""
    names = names or VarNames()
    consts = " ".join(names.binder(v) for v in jaxpr.constvars)
    ins = " ".join(names.binder(v) for v in jaxpr.invars)
    lines = [names.eqn(eqn) for eqn in jaxpr.eqns]
    outs = ", ".join(names(v) for v in jaxpr.outvars)
    head = f"{{ lambda {consts}; {ins}. let"
    if len(lines) <= 1 and "\n" not in "".join(lines):
        return f"{head} {''.join(lines)} in ({outs},) }}".replace("let  in", "let in")
    body = "\n".join("    " + line for line in lines)
    return f"{head}\n{body}\n  in ({outs},) }}"


# --------------------------------------------------------------------------------------------
# The IR builder: staging a function into a Jaxpr (make_jaxpr, jit)
# --------------------------------------------------------------------------------------------


class JaxprBuilder:
    """Collects the equations, constants and input variables of a program being traced."""

    def __init__(self, name: str = "<function>"):
        self.eqns: list[Eqn] = []
        self.const_values: dict[int, tuple[Var, Any]] = {}  # id(value) -> (var, value)
        self.name = name

    def const_var(self, value, aval: ShapedArray) -> Var:
        entry = self.const_values.get(id(value))
        if entry is None:
            entry = self.const_values[id(value)] = (Var(aval), value)
        return entry[0]

    def to_jaxpr(self, in_tracers, out_tracers) -> tuple[Jaxpr, list]:
        """The program from `in_tracers` to `out_tracers`, and the constants it closes over."""
        constvars = [var for var, _ in self.const_values.values()]
        consts = [value for _, value in self.const_values.values()]
        invars = [t.atom for t in in_tracers]
        outvars = [t.atom for t in out_tracers]
        return Jaxpr(constvars, invars, self.eqns, outvars), consts


class StagingTracer(Tracer):
    """A tracer that stands for a variable (or literal) of the IR being built."""

    __slots__ = ("atom",)

    def __init__(self, trace: StagingTrace, atom):
        self._trace = trace
        self.atom = atom

    @property
    def aval(self) -> ShapedArray:
        return self.atom.aval

    def concrete_value(self):
        builder = self._trace.main.payload
        raise ConcretizationTypeError(
            f"Abstract tracer value encountered where a concrete value is expected: {self!r} "
            f"(a traced {self.aval.str_short()} inside `{builder.name}`, at "
            f"{user_source_line()}). Its value is not known while the function is traced. "
            "Use lax.cond / lax.while_loop / lax.fori_loop for control flow on traced values, "
            "or mark the argument static (jit(..., static_argnums=...))."
        )


class StagingTrace(Trace):
    """Records each primitive as an equation of the IR instead of running it."""

    def pure(self, val):
        builder = self.main.payload
        if isinstance(val, Tracer):  # a lower-level tracer: the program closes over it
            return StagingTracer(self, builder.const_var(val, val.aval))
        aval = get_aval(val)
        if aval.shape == () and not isinstance(val, np.ndarray | ArrayImpl):
            return StagingTracer(self, Literal(np.asarray(val, aval.dtype), aval))
        if aval.shape == () and aval.size == 1:
            return StagingTracer(self, Literal(np.asarray(_concrete(val), aval.dtype), aval))
        return StagingTracer(self, builder.const_var(val, aval))

    lift = pure

    def new_arg(self, aval: ShapedArray) -> StagingTracer:
        return StagingTracer(self, Var(aval))

    def process_primitive(self, primitive, tracers, params):
        avals_in = [t.aval for t in tracers]
        avals_out = primitive.abstract_eval(*avals_in, **params)
        if not primitive.multiple_results:
            avals_out = [avals_out]
        outvars = [Var(a) for a in avals_out]
        self.main.payload.eqns.append(
            Eqn(primitive, [t.atom for t in tracers], params, outvars, user_source_line())
        )
        return [StagingTracer(self, v) for v in outvars]


def _concrete(val):
    return val._value if type(val) is ArrayImpl else val


def trace_to_jaxpr(fun: Callable, in_avals: Sequence[ShapedArray], name: str | None = None):
    """Stage `fun(*flat_args) -> list of arrays` into IR for the given input avals.

    Returns `(jaxpr, consts)`. `fun` takes and returns flat lists of arrays (no pytrees);
    the pytree-aware wrappers live in `make_jaxpr` and `jit`.
    """
    builder = JaxprBuilder(name or getattr(fun, "__name__", "<function>"))
    with new_main(StagingTrace, builder, dynamic=True) as main:
        trace = StagingTrace(main)
        in_tracers = [trace.new_arg(a) for a in in_avals]
        outs = fun(*in_tracers)
        out_tracers = [trace.full_raise(o) for o in outs]
        jaxpr, consts = builder.to_jaxpr(in_tracers, out_tracers)
    return jaxpr, consts


def closure_convert(jaxpr: Jaxpr, consts: Sequence) -> tuple[ClosedJaxpr, list]:
    """Close `jaxpr` over its concrete constants; its tracer constants become leading inputs.

    A function traced inside a transformation may close over that transformation's tracers.
    Kept as constants they would escape it, so each one is *hoisted*: it becomes an input in
    front of the program's own, and the caller binds `(*hoisted, *args)`, where every trace
    sees it as an ordinary operand. This is how call primitives that hold a program (pjit,
    custom_jvp_call, custom_vjp_call, checkpoint) are built.

    Args:
      jaxpr: a program, as returned by `trace_to_jaxpr`.
      consts: the values of its `constvars`: concrete arrays or tracers.

    Returns:
      `(closed_jaxpr, hoisted)`: the program with the concrete constants, taking
      `(*hoisted, *jaxpr.invars)`, and the tracer constants to pass first.

    Example:
      >>> f32 = ShapedArray((), np.dtype("float32"))
      >>> jaxpr, consts = trace_to_jaxpr(lambda x: [x + 1.0], [f32])
      >>> closed, hoisted = closure_convert(jaxpr, consts)  # no transformation: no tracers
      >>> closed(2.0), hoisted
      ([Array(3., dtype=float32)], [])
    """
    kept_vars, kept, hoisted_vars, hoisted = [], [], [], []
    for var, value in zip(jaxpr.constvars, consts):
        if isinstance(value, Tracer):
            hoisted_vars.append(var)
            hoisted.append(value)
        else:
            kept_vars.append(var)
            kept.append(value)
    new = Jaxpr(kept_vars, hoisted_vars + jaxpr.invars, jaxpr.eqns, jaxpr.outvars)
    return ClosedJaxpr(new, kept), hoisted


_state = _TraceState()
