"""Array-likes to fnbrrr arrays, and NumPy-style type promotion plus broadcasting.

This is the eager hot path: every binary `fnbrrr.numpy` function and operator goes through
`promote2` (two operands) or `promote` (any number). The common cases, an Array with a Python
scalar and two Arrays of one dtype, return after a few `type(x) is` checks and one dict look-up;
every dtype decision and every broadcast shape is cached, and the caches that depend on
`jax_enable_x64` are reset when it changes.

Rules (JAX's, see `fnbrrr.dtypes`): a value's type is (dtype, weak); Python scalars are weak and
take the dtype of the arrays they meet; NumPy arrays are converted to their canonical dtype
(float64 -> float32 unless x64) and copied, so later mutation of the caller's buffer cannot
change an fnbrrr array. Shapes broadcast as in NumPy, except that 0-d operands are left 0-d:
every binary `lax` primitive accepts a 0-d operand against any shape.
"""

from __future__ import annotations

import numpy as np

from fnbrrr import core, dtypes, lax
from fnbrrr.config import config

ArrayImpl = core.ArrayImpl
Tracer = core.Tracer

BOOL = np.dtype(np.bool_)
_PY_SCALAR_TYPES = (bool, int, float)

# Python scalar type -> (canonical dtype, weak). Refreshed when jax_enable_x64 changes.
_PY_SCALAR: dict[type, tuple[np.dtype, bool]] = {}
# Any dtype specifier a user may pass (np.float32, "int32", jnp.float32, float) -> np.dtype.
_DTYPE_CACHE: dict = {}
# Tuple of (dtype, weak) pairs -> promoted (dtype, weak).
_RESULT_CACHE: dict = {}
# (array dtype, Python scalar type) -> the array's dtype when the scalar does not change it.
_SCALAR_KEEPS: dict = {}
# (dtype, value) -> a weak 0-d ArrayImpl holding a Python scalar converted to dtype.
_CONST_CACHE: dict = {}
_CONST_CACHE_MAX = 4096
# Tuple of shapes -> their NumPy broadcast shape.
_BROADCAST_CACHE: dict = {}

# What int and bool dtypes become in functions that need an inexact result (sin, divide,
# mean): JAX's choice, float32 up to 32-bit ints (NumPy gives float16 for int8/uint8), then
# canonicalised (int64 -> float32 unless 64-bit types are on).
_TO_INEXACT = {
    BOOL: np.dtype("float32"),
    np.dtype("int8"): np.dtype("float32"),
    np.dtype("uint8"): np.dtype("float32"),
    np.dtype("int16"): np.dtype("float32"),
    np.dtype("uint16"): np.dtype("float32"),
    np.dtype("int32"): np.dtype("float32"),
    np.dtype("uint32"): np.dtype("float32"),
    np.dtype("int64"): np.dtype("float64"),
    np.dtype("uint64"): np.dtype("float64"),
}


def _refresh(name=None, value=None) -> None:
    if name not in (None, "jax_enable_x64"):
        return
    _PY_SCALAR.clear()
    _PY_SCALAR.update(
        {
            bool: (BOOL, False),
            int: (dtypes.default_int(), True),
            float: (dtypes.default_float(), True),
        }
    )
    _DTYPE_CACHE.clear()
    _RESULT_CACHE.clear()
    _CONST_CACHE.clear()


_refresh()
config.on_change(_refresh)

for _dt in dtypes.SUPPORTED:
    if _dt.kind == "f":
        _SCALAR_KEEPS[(_dt, float)] = _dt
        _SCALAR_KEEPS[(_dt, int)] = _dt
    elif _dt.kind in "iu":
        _SCALAR_KEEPS[(_dt, int)] = _dt


# --------------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------------


def default_int() -> np.dtype:
    """int32 (int64 with x64); a dict look-up, unlike reading the config."""
    return _PY_SCALAR[int][0]


def default_float() -> np.dtype:
    """float32 (float64 with x64)."""
    return _PY_SCALAR[float][0]


def canonical_dtype(dtype) -> np.dtype:
    """The np.dtype fnbrrr uses for any dtype specifier, or TypeError naming the bad one.

    Accepts NumPy dtypes and scalar types, strings, `fnbrrr.numpy` scalar types, and the
    Python types `float`/`int`/`bool` (the default float / default int / bool).
    """
    try:
        return _DTYPE_CACHE[dtype]
    except (KeyError, TypeError):
        pass
    if dtype is None:
        raise TypeError("dtype must not be None here")
    if dtype is float or dtype is int or dtype is bool:
        result = _PY_SCALAR[dtype][0]
    elif dtype is complex:
        raise TypeError("fnbrrr does not support complex dtypes")
    else:
        try:
            dt = np.dtype(dtype)
        except TypeError as e:
            raise TypeError(f"{dtype!r} is not a valid dtype: {e}") from None
        if not dt.isnative:
            dt = dt.newbyteorder("=")
        result = dtypes.canonicalize(dt)
    try:
        _DTYPE_CACHE[dtype] = result
    except TypeError:  # unhashable specifier
        pass
    return result


def result_type_of(pairs: tuple) -> tuple[np.dtype, bool]:
    """Promote a tuple of (dtype, weak) pairs with JAX's lattice (cached)."""
    try:
        return _RESULT_CACHE[pairs]
    except KeyError:
        result = _RESULT_CACHE[pairs] = dtypes.promote_types(*pairs)
        return result


def to_inexact_dtype(dtype: np.dtype, weak: bool) -> np.dtype:
    """The floating dtype an int/bool operand becomes in sin, divide, mean..."""
    if dtype.kind == "f":
        return dtype
    if weak and dtype.kind in "iu":
        return _PY_SCALAR[float][0]
    return dtypes.canonicalize(_TO_INEXACT[dtype])


# --------------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------------


def scalar_const(value, dtype: np.dtype) -> ArrayImpl:
    """A Python scalar as a weak 0-d array of `dtype` (cached: `x * 2.0` reuses one constant).

    Bool constants are strong (bool has no weak type). Zeros and NaN are never cached: `-0.0`
    compares equal to `0` and NaN unequal to itself, so a cached entry could be wrong.
    """
    key = (dtype, value)
    try:
        const = _CONST_CACHE.get(key)
    except TypeError:
        const = None
    if const is not None:
        return const
    arr = np.array(value, dtype)
    arr.flags.writeable = False
    const = ArrayImpl(arr, dtype.kind != "b")
    if value == value and value != 0:
        if len(_CONST_CACHE) >= _CONST_CACHE_MAX:
            _CONST_CACHE.clear()
        _CONST_CACHE[key] = const
    return const


def python_int_const(value: int, dtype: np.dtype) -> ArrayImpl:
    """A Python int operand as a weak 0-d array of `dtype`, converted as JAX does: it must fit
    the default integer type (else OverflowError, also when `dtype` is a float), and a
    narrower or unsigned integer dtype takes it modulo 2**bits.

    Example:
        >>> jnp.array([1], jnp.uint8) + 300  # 300 is 44 modulo 256
        Array([45], dtype=uint8)
    """
    limits = np.iinfo(default_int())
    if not limits.min <= value <= limits.max:
        raise OverflowError(
            f"Python int {value} is out of bounds for the default integer type "
            f"{default_int()}; make it an array of an explicit dtype first"
        )
    if dtype.kind in "iu":
        value = int(np.array(value, np.int64).astype(dtype))
    return scalar_const(value, dtype)


def from_numpy(value) -> ArrayImpl:
    """A NumPy array or scalar as a strong ArrayImpl of its canonical dtype (always a copy)."""
    dt = value.dtype
    if dt.kind == "O" or dt.kind == "U" or dt.kind == "S":
        raise TypeError(f"NumPy arrays of dtype {dt} cannot become fnbrrr arrays")
    arr = np.array(value, dtype=canonical_dtype(dt), copy=True)
    return ArrayImpl(arr, False)


def _has_tracer(obj) -> bool:
    if isinstance(obj, Tracer):
        return True
    if isinstance(obj, (list, tuple)):
        return any(_has_tracer(o) for o in obj)
    return False


def from_sequence(obj, name: str = "asarray"):
    """A nested list/tuple as an array; elements that are tracers are stacked with lax."""
    if _has_tracer(obj):
        parts = [to_array(o, name) for o in obj]
        if not parts:
            raise ValueError(f"{name}: cannot build an array from an empty sequence of tracers")
        parts = promote(name, *parts, broadcast=False)[0]
        shape = parts[0].shape
        if any(p.shape != shape for p in parts):
            raise ValueError(
                f"{name}: the sequence's elements have different shapes "
                f"{[tuple(p.shape) for p in parts]}; all elements must have one shape"
            )
        parts = [lax.reshape(p, (1, *shape)) for p in parts]
        out = lax.concatenate(parts, 0) if len(parts) > 1 else parts[0]
        # A sequence is never weakly typed (JAX): [x, 1.0] with a weak x is plain float32.
        return lax.convert_element_type(out, out.dtype, False) if out.aval.weak_type else out
    try:
        value = np.asarray(obj)
    except ValueError as e:
        raise ValueError(f"{name}: cannot build an array from this sequence ({e})") from None
    if value.dtype.kind == "O":
        raise TypeError(
            f"{name}: cannot build an array from a sequence of {type(obj[0]).__name__} "
            "(ragged nested lists or non-numeric elements)"
        )
    if value.size == 0 and value.dtype == np.float64:
        value = value.astype(_PY_SCALAR[float][0])
    if value.dtype.kind in "iu" and value.size:
        _check_fits(name, value, canonical_dtype(value.dtype))
    return from_numpy(value)


def _check_fits(name: str, value: np.ndarray, dtype: np.dtype) -> None:
    """Python ints that overflow `dtype` raise, as in JAX, rather than wrap."""
    limits = np.iinfo(dtype)
    low, high = value.min(), value.max()
    if low < limits.min or high > limits.max:
        bad = low if low < limits.min else high
        raise OverflowError(f"{name}: Python integer {bad} out of bounds for {dtype}")


def to_array(x, name: str = "asarray"):
    """`x` as an fnbrrr Array or tracer without changing its (canonical) dtype.

    Python scalars become weak 0-d arrays of the default dtype of their kind.
    """
    t = type(x)
    if t is ArrayImpl:
        return x
    scalar = _PY_SCALAR.get(t)
    if scalar is not None:
        return scalar_const(x, scalar[0])
    if isinstance(x, Tracer):
        return x
    if isinstance(x, (np.ndarray, np.generic)):
        return from_numpy(x)
    if isinstance(x, core.Array):
        return x
    if isinstance(x, bool):
        return scalar_const(bool(x), BOOL)
    if isinstance(x, int):
        return scalar_const(int(x), _PY_SCALAR[int][0])
    if isinstance(x, float):
        return scalar_const(float(x), _PY_SCALAR[float][0])
    if isinstance(x, (list, tuple)):
        return from_sequence(x, name)
    if isinstance(x, complex):
        raise TypeError(f"{name}: fnbrrr does not support complex numbers (got {x!r})")
    if hasattr(x, "__array__"):
        return from_numpy(np.asarray(x))
    raise TypeError(
        f"{name}: value of type {t.__name__} is not a valid fnbrrr array-like; pass an "
        "fnbrrr Array, a NumPy array, a Python scalar or a nested list of them"
    )


def asarray_with_dtype(x, dtype, name: str = "asarray"):
    """`x` as an array of `dtype` (a strong type), or of its own dtype when `dtype` is None."""
    if dtype is None:
        return to_array(x, name)
    dt = canonical_dtype(dtype)
    if type(x) in _PY_SCALAR:
        arr = np.array(x).astype(dt) if dt.kind == "u" and x < 0 else np.array(x, dt)
        return ArrayImpl(arr, False)
    if isinstance(x, (np.ndarray, np.generic)):
        with np.errstate(all="ignore"):
            return ArrayImpl(np.array(x, dtype=dt, copy=True), False)
    if isinstance(x, (list, tuple)) and not _has_tracer(x):
        # NumPy's conversion, as JAX's: [-1] is no uint32 list (OverflowError), NaN no int.
        return ArrayImpl(np.array(x, dtype=dt), False)
    arr = to_array(x, name)
    aval = arr.aval
    if aval.dtype == dt and not aval.weak_type:
        return arr
    return lax.convert_element_type(arr, dt, False)


def typeinfo(x, name: str) -> tuple[np.dtype, bool, tuple]:
    """(dtype, weak, shape) of any array-like, or TypeError naming the function."""
    t = type(x)
    if t is ArrayImpl:
        v = x._value
        return v.dtype, x._weak, v.shape
    scalar = _PY_SCALAR.get(t)
    if scalar is not None:
        return scalar[0], scalar[1], ()
    if isinstance(x, Tracer):
        aval = x.aval
        return aval.dtype, aval.weak_type, aval.shape
    if isinstance(x, (np.ndarray, np.generic)):
        return canonical_dtype(x.dtype), False, x.shape
    if isinstance(x, core.Array):
        aval = x.aval
        return aval.dtype, aval.weak_type, aval.shape
    if isinstance(x, _PY_SCALAR_TYPES):
        for kind in _PY_SCALAR_TYPES:
            if isinstance(x, kind):
                dt, weak = _PY_SCALAR[kind]
                return dt, weak, ()
    if isinstance(x, complex):
        raise TypeError(f"{name}: fnbrrr does not support complex numbers (got {x!r})")
    raise TypeError(
        f"{name}: argument of type {t.__name__} is not a valid fnbrrr array-like; pass an "
        "fnbrrr Array, a NumPy array or a Python scalar"
    )


def is_arraylike(x) -> bool:
    """True for what binary operators accept (so others get NotImplemented)."""
    t = type(x)
    if t is ArrayImpl or t in _PY_SCALAR:
        return True
    return isinstance(x, (Tracer, np.ndarray, np.generic, bool, int, float, core.Array))


# --------------------------------------------------------------------------------------------
# Promotion and broadcasting
# --------------------------------------------------------------------------------------------


def broadcast_shapes(name: str, shapes: tuple) -> tuple:
    """NumPy's broadcast of `shapes`, or ValueError naming `name` and every shape."""
    try:
        return _BROADCAST_CACHE[shapes]
    except KeyError:
        pass
    ndim = max(len(s) for s in shapes)
    out = []
    for i in range(-ndim, 0):
        size = 1
        for s in shapes:
            if len(s) >= -i:
                d = s[i]
                if d != 1:
                    if size == 1:
                        size = d
                    elif size != d:
                        listed = " and ".join(str(tuple(s)) for s in shapes)
                        raise ValueError(
                            f"{name}: incompatible shapes for broadcasting: {listed}; "
                            "dimensions must be equal or 1 (align them with reshape, "
                            "jnp.expand_dims or x[:, None])"
                        )
        out.append(size)
    out = tuple(out)
    if len(_BROADCAST_CACHE) > 4096:
        _BROADCAST_CACHE.clear()
    _BROADCAST_CACHE[shapes] = out
    return out


def _coerce(x, info, dtype: np.dtype, weak: bool, shape):
    d, _, s = info
    t = type(x)
    if t is not ArrayImpl and not isinstance(x, Tracer):
        if t is int:
            return python_int_const(x, dtype)
        if t in _PY_SCALAR or isinstance(x, _PY_SCALAR_TYPES):
            return scalar_const(x, dtype)
        x = to_array(x)
    if d != dtype:
        x = lax.convert_element_type(x, dtype, weak)
    if shape is not None and s and s != shape:
        n = len(shape)
        x = lax.broadcast_in_dim(x, shape, tuple(range(n - len(s), n)))
    return x


def promote(name: str, *args, broadcast: bool = True) -> tuple[list, np.dtype]:
    """Promote `args` to one dtype and (with `broadcast`) one shape; 0-d operands stay 0-d.

    Returns `(operands, dtype)`; each operand is an fnbrrr Array or tracer, converted with
    `lax.convert_element_type` and `lax.broadcast_in_dim` only where needed.
    """
    if any(type(a) is list or type(a) is tuple for a in args):
        args = [to_array(a, name) if isinstance(a, (list, tuple)) else a for a in args]
    infos = [typeinfo(a, name) for a in args]
    dtype, weak = result_type_of(tuple((d, w) for d, w, _ in infos))
    shape = None
    if broadcast:
        shapes = tuple(s for _, _, s in infos)
        first = shapes[0]
        if any(s != first for s in shapes):
            shape = broadcast_shapes(name, shapes)
    return [_coerce(a, i, dtype, weak, shape) for a, i in zip(args, infos)], dtype


def promote2(name: str, x, y):
    """`promote` for two operands, with fast paths; returns `(x, y, dtype)`."""
    if type(x) is ArrayImpl:
        xv = x._value
        ty = type(y)
        if ty is float:
            dt = xv.dtype
            if dt.kind == "f":
                const = _CONST_CACHE.get((dt, y))
                return x, const if const is not None else scalar_const(y, dt), dt
        elif ty is ArrayImpl:
            yv = y._value
            dt = xv.dtype
            if dt is yv.dtype and (xv.shape == yv.shape or not yv.shape or not xv.shape):
                return x, y, dt
        elif ty is int:
            dt = xv.dtype
            if dt.kind in "fiu":
                const = _CONST_CACHE.get((dt, y))
                return x, const if const is not None else python_int_const(y, dt), dt
    elif type(y) is ArrayImpl:
        tx = type(x)
        if tx is float or tx is int:
            dt = _SCALAR_KEEPS.get((y._value.dtype, tx))
            if dt is not None:
                const = _CONST_CACHE.get((dt, x))
                if const is None:
                    const = python_int_const(x, dt) if tx is int else scalar_const(x, dt)
                return const, y, dt
    (x, y), dt = promote(name, x, y)
    return x, y, dt


def promote_dtypes(name: str, *args) -> list:
    """The operands converted to their common dtype, shapes unchanged (for matmul, concat...)."""
    return promote(name, *args, broadcast=False)[0]


def broadcast_to_shape(x, shape: tuple):
    """Broadcast an Array/tracer `x` (already promoted) to `shape`, NumPy-style."""
    s = x.shape
    if s == shape:
        return x
    n = len(shape)
    return lax.broadcast_in_dim(x, shape, tuple(range(n - len(s), n)))
