"""Scalar types (`jnp.float32`...) and dtype queries (`result_type`, `promote_types`, `finfo`).

`jnp.float32` is, as in JAX, a class whose instances are never made: calling it builds a 0-d
(or converted) fnbrrr array, and it compares equal to `np.dtype("float32")`, so it is accepted
wherever NumPy or fnbrrr expects a dtype (`x.astype(jnp.float32)`, `x.dtype == jnp.float32`,
`np.zeros(3, jnp.float32)`).
"""

from __future__ import annotations

import builtins as _builtins

import numpy as np

from fnbrrr.numpy import _promotion as _p


class _ScalarMeta(type):
    """Metaclass of the scalar types: equality and hashing by dtype; calling converts."""

    dtype: np.dtype

    def __hash__(cls) -> int:
        return hash(cls.dtype.type)

    def __eq__(cls, other) -> bool:
        if cls is other:
            return True
        try:
            return cls.dtype == np.dtype(other)
        except TypeError:
            return False

    def __ne__(cls, other) -> bool:
        return not _ScalarMeta.__eq__(cls, other)

    def __call__(cls, x=0):
        return _p.asarray_with_dtype(x, cls.dtype, cls.__name__)

    def __instancecheck__(cls, instance) -> bool:
        return isinstance(instance, cls.dtype.type)

    def __repr__(cls) -> str:
        return f"<class 'fnbrrr.numpy.{cls.__name__}'>"


def _scalar_type(name: str, np_type) -> type:
    doc = (
        f"The {name} scalar type: `fnbrrr.numpy.{name}(x)` converts `x` to a {name} array; "
        "usable anywhere a dtype is expected."
    )
    return _ScalarMeta(
        name, (), {"dtype": np.dtype(np_type), "__doc__": doc, "__module__": "fnbrrr.numpy"}
    )


bool_ = _scalar_type("bool_", np.bool_)
int8 = _scalar_type("int8", np.int8)
int16 = _scalar_type("int16", np.int16)
int32 = _scalar_type("int32", np.int32)
int64 = _scalar_type("int64", np.int64)
uint8 = _scalar_type("uint8", np.uint8)
uint16 = _scalar_type("uint16", np.uint16)
uint32 = _scalar_type("uint32", np.uint32)
uint64 = _scalar_type("uint64", np.uint64)
float16 = _scalar_type("float16", np.float16)
float32 = _scalar_type("float32", np.float32)
float64 = _scalar_type("float64", np.float64)

# Abstract classes of the NumPy scalar hierarchy, for issubdtype.
generic = np.generic
number = np.number
inexact = np.inexact
floating = np.floating
integer = np.integer
signedinteger = np.signedinteger
unsignedinteger = np.unsignedinteger
bool = bool_  # noqa: A001  (JAX exports jnp.bool as well as jnp.bool_)

dtype = np.dtype


def _as_np_dtype_like(x):
    if isinstance(x, _ScalarMeta):
        return x.dtype
    return x


def _is_python_type(x) -> _builtins.bool:
    return x is float or x is int or x is _builtins.bool


def _typeinfo_for_dtype_arg(x) -> tuple[np.dtype, _builtins.bool]:
    """(dtype, weak) of an argument of result_type: a dtype or an array-like."""
    if _is_python_type(x):  # Python types are weak, like Python scalars
        return _p.canonical_dtype(x), x is not _builtins.bool
    if isinstance(x, (str, np.dtype, _ScalarMeta, type)):
        return _p.canonical_dtype(x), False
    d, w, _ = _p.typeinfo(x, "result_type")
    return d, w


def result_type(*args) -> np.dtype:
    """The dtype that combining `args` (dtypes or array-likes) gives, with JAX's promotion.

    Python scalars are weak: `result_type(jnp.int32, 0.5)` is float32.

    Example:
        >>> jnp.result_type(jnp.int32, jnp.float32)
        dtype('float32')
    """
    if not args:
        raise ValueError("result_type: at least one argument is required")
    pairs = tuple(_typeinfo_for_dtype_arg(a) for a in args)
    return _p.result_type_of(pairs)[0]


def promote_types(type1, type2) -> np.dtype:
    """The smallest dtype both `type1` and `type2` convert to safely (JAX's lattice).

    Example:
        >>> jnp.promote_types(jnp.int32, jnp.float32)
        dtype('float32')
    """
    d1, d2 = _p.canonical_dtype(type1), _p.canonical_dtype(type2)
    return _p.result_type_of(((d1, False), (d2, False)))[0]


def issubdtype(arg1, arg2) -> _builtins.bool:
    """Whether dtype `arg1` is below `arg2` in the NumPy type hierarchy.

    Example:
        >>> jnp.issubdtype(jnp.float32, jnp.floating)
        True
    """
    return np.issubdtype(_as_np_dtype_like(arg1), _as_np_dtype_like(arg2))


def can_cast(from_, to, casting: str = "safe") -> _builtins.bool:
    """NumPy's `can_cast` on dtypes (arrays are judged by their dtype)."""
    if hasattr(from_, "dtype") and not isinstance(from_, _ScalarMeta):
        from_ = from_.dtype
    return np.can_cast(_as_np_dtype_like(from_), _as_np_dtype_like(to), casting)


def finfo(dtype) -> np.finfo:
    """Machine limits of a floating dtype (NumPy's `finfo`)."""
    if hasattr(dtype, "dtype") and not isinstance(dtype, _ScalarMeta):
        dtype = dtype.dtype
    return np.finfo(_as_np_dtype_like(dtype))


def iinfo(dtype) -> np.iinfo:
    """Machine limits of an integer dtype (NumPy's `iinfo`)."""
    if hasattr(dtype, "dtype") and not isinstance(dtype, _ScalarMeta):
        dtype = dtype.dtype
    return np.iinfo(_as_np_dtype_like(dtype))


def isdtype(dtype, kind) -> _builtins.bool:
    """Array-API `isdtype`: kind is a dtype, or 'bool', 'signed integer', 'unsigned integer',
    'integral', 'real floating', 'numeric' (or a tuple of those)."""
    if isinstance(kind, tuple):
        return any(isdtype(dtype, k) for k in kind)
    dt = np.dtype(_as_np_dtype_like(dtype))
    names = {
        "bool": "b",
        "signed integer": "i",
        "unsigned integer": "u",
        "integral": "iu",
        "real floating": "f",
        "numeric": "iuf",
    }
    if isinstance(kind, str):
        if kind not in names:
            raise ValueError(f"isdtype: unknown kind {kind!r}; use one of {sorted(names)}")
        return dt.kind in names[kind]
    return dt == np.dtype(_as_np_dtype_like(kind))
