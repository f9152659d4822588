"""Operators and methods of fnbrrr arrays, attached to `core.ArrayImpl` and `core.Tracer`.

`core` defines the array types without any arithmetic; importing `fnbrrr.numpy` calls
`attach()`, which gives both the same operators (`+ - * / // % ** @`, comparisons, `& | ^ ~`,
indexing, `.at`) and NumPy-style methods (`.reshape`, `.sum`, `.astype`...), each a thin call
to the `fnbrrr.numpy` function of the same name. Binary operators return NotImplemented for
types they do not know (lists, other libraries' objects), as NumPy and JAX do.
"""

from __future__ import annotations

import numpy as np

from fnbrrr import lax
from fnbrrr.numpy import (
    _creation,
    _elementwise,
    _index_update,
    _indexing,
    _linalg,
    _reductions,
    _shape,
    _sorting,
    _take,
)
from fnbrrr.numpy._promotion import (
    _CONST_CACHE,
    BOOL,
    ArrayImpl,
    Tracer,
    canonical_dtype,
    is_arraylike,
    promote2,
    scalar_const,
)

_FAST_OK = frozenset({ArrayImpl, float, int, bool})


def _operator(name: str, lax_fn, on_bool=None):
    """`x <op> y` for an array x: promote, then one lax primitive (the eager hot path)."""

    def op(self, other):
        t = type(other)
        if t is float and type(self) is ArrayImpl:  # x * 2.0: the commonest case, inlined
            dt = self._value.dtype
            if dt.kind == "f":
                const = _CONST_CACHE.get((dt, other))
                return lax_fn(self, const if const is not None else scalar_const(other, dt))
        elif t not in _FAST_OK and not is_arraylike(other):
            return NotImplemented
        x, y, dt = promote2(name, self, other)
        if dt is BOOL and on_bool is not None:
            return on_bool(x, y)
        return lax_fn(x, y)

    def rop(self, other):
        if type(other) not in _FAST_OK and not is_arraylike(other):
            return NotImplemented
        x, y, dt = promote2(name, other, self)
        if dt is BOOL and on_bool is not None:
            return on_bool(x, y)
        return lax_fn(x, y)

    return op, rop


def _wrap(fn):
    def op(self, other):
        if type(other) not in _FAST_OK and not is_arraylike(other):
            return NotImplemented
        return fn(self, other)

    def rop(self, other):
        if type(other) not in _FAST_OK and not is_arraylike(other):
            return NotImplemented
        return fn(other, self)

    return op, rop


def _pow(self, other, mod=None):
    if mod is not None:
        raise NotImplementedError("pow() with a modulus is not supported for fnbrrr arrays")
    if type(other) not in _FAST_OK and not is_arraylike(other):
        return NotImplemented
    return _elementwise.power(self, other)


def _rpow(self, other):
    if type(other) not in _FAST_OK and not is_arraylike(other):
        return NotImplemented
    return _elementwise.power(other, self)


# --- methods ----------------------------------------------------------------------------------


def _reshape(self, *args, order: str = "C", shape=None, copy=None):
    """Array with a new shape: `x.reshape(2, 3)` or `x.reshape((2, 3))`; one -1 allowed."""
    if shape is not None:
        new = shape
    elif len(args) == 1 and not isinstance(args[0], (int, np.integer)):
        new = args[0]
    else:
        new = args
    return _shape.reshape(self, new, order)


def _transpose(self, *axes):
    """Permute axes: `x.transpose()`, `x.transpose(1, 0)` or `x.transpose((1, 0))`."""
    if not axes or (len(axes) == 1 and axes[0] is None):
        return _shape.transpose(self)
    if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
        return _shape.transpose(self, axes[0])
    return _shape.transpose(self, axes)


def _astype(self, dtype, copy: bool = False, device=None):
    """The array converted to `dtype` (float to int truncates toward zero)."""
    dt = canonical_dtype(dtype)
    if self.dtype == dt and not self.weak_type:
        return self
    return lax.convert_element_type(self, dt, False)


def _flatten(self, order: str = "C"):
    """A 1-D copy of the array."""
    return _shape.ravel(self, order)


def _copy(self, order=None):
    """A copy of the array (values are immutable, so this is cheap)."""
    return _creation.array(self)


def _clip(self, min=None, max=None, out=None):  # noqa: A002
    """Values limited to [min, max]."""
    _elementwise._no_out("clip", out)
    return _elementwise.clip(self, min, max)


def _dot(self, b, *, precision=None, preferred_element_type=None):
    """NumPy's dot of this array with `b`."""
    return _linalg.dot(self, b, preferred_element_type=preferred_element_type)


def _round(self, decimals: int = 0, out=None):
    return _elementwise.round(self, decimals, out)


def _dunder_round(self, ndigits=None):
    if ndigits is None:
        return round(float(self)) if self.ndim == 0 else _elementwise.round(self)
    return _elementwise.round(self, ndigits)


def _getitem(self, idx):
    return _indexing.getitem(self, idx)


def _at(self):
    """Functional updates: `x.at[idx].set(v)`, `.add(v)`, `.multiply(v)`, `.get()`."""
    return _index_update._IndexUpdateHelper(self)


def _T(self):
    """The transpose (axes reversed)."""
    return _shape.transpose(self)


def _mT(self):
    """The transpose of the last two axes."""
    return _shape.matrix_transpose(self)


def _block_until_ready(self):
    """Return the array (computation is synchronous in fnbrrr)."""
    return self


def _nbytes(self) -> int:
    return self.size * self.dtype.itemsize


def _itemsize(self) -> int:
    return self.dtype.itemsize


def _real(self):
    return self


def _imag(self):
    return _elementwise.imag(self)


def _method(fn, name: str, doc: str | None = None):
    def method(self, *args, **kwargs):
        return fn(self, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = doc or fn.__doc__
    return method


def _methods() -> dict:
    e, r, s, i = _elementwise, _reductions, _shape, _take
    methods = {
        "__neg__": lambda self: e.negative(self),
        "__pos__": lambda self: self,
        "__abs__": lambda self: e.abs(self),
        "__invert__": lambda self: e.invert(self),
        "__pow__": _pow,
        "__rpow__": _rpow,
        "__round__": _dunder_round,
        "__getitem__": _getitem,
        "reshape": _reshape,
        "transpose": _transpose,
        "astype": _astype,
        "flatten": _flatten,
        "copy": _copy,
        "clip": _clip,
        "dot": _dot,
        "round": _round,
        "block_until_ready": _block_until_ready,
        "conj": lambda self: self,
        "conjugate": lambda self: self,
        "at": property(_at),
        "T": property(_T),
        "mT": property(_mT),
        "nbytes": property(_nbytes),
        "itemsize": property(_itemsize),
        "real": property(_real),
        "imag": property(_imag),
    }
    for name, fn in [
        ("ravel", s.ravel),
        ("squeeze", s.squeeze),
        ("swapaxes", s.swapaxes),
        ("repeat", s.repeat),
        ("diagonal", s.diagonal),
        ("trace", s.trace),
        ("sum", r.sum),
        ("mean", r.mean),
        ("max", r.max),
        ("min", r.min),
        ("prod", r.prod),
        ("var", r.var),
        ("std", r.std),
        ("argmax", r.argmax),
        ("argmin", r.argmin),
        ("all", r.all),
        ("any", r.any),
        ("cumsum", r.cumsum),
        ("cumprod", r.cumprod),
        ("ptp", r.ptp),
        ("take", i.take),
        ("sort", _sorting.sort),
        ("argsort", _sorting.argsort),
        ("nonzero", i.nonzero),
    ]:
        methods[name] = _method(fn, name)

    binary = {
        "add": _operator("add", lax.add, lax.or_),
        "sub": _operator("subtract", lax.sub, _elementwise._bool_subtract),
        "mul": _operator("multiply", lax.mul, lax.and_),
        "lt": _operator("less", lax.lt),
        "le": _operator("less_equal", lax.le),
        "gt": _operator("greater", lax.gt),
        "ge": _operator("greater_equal", lax.ge),
        "truediv": _wrap(e.true_divide),
        "floordiv": _wrap(e.floor_divide),
        "mod": _wrap(e.remainder),
        "divmod": _wrap(e.divmod),
        "matmul": _wrap(_linalg.matmul),
        "and": _wrap(e.bitwise_and),
        "or": _wrap(e.bitwise_or),
        "xor": _wrap(e.bitwise_xor),
        "lshift": _wrap(e.left_shift),
        "rshift": _wrap(e.right_shift),
    }
    for name, (op, rop) in binary.items():
        methods[f"__{name}__"] = op
        methods[f"__r{name}__"] = rop
    # == and != are symmetric: no reflected forms (Python swaps the operands itself).
    methods["__eq__"] = _operator("equal", lax.eq)[0]
    methods["__ne__"] = _operator("not_equal", lax.ne)[0]
    return methods


def attach() -> None:
    """Give `core.ArrayImpl` and `core.Tracer` their operators and methods (idempotent)."""
    for name, value in _methods().items():
        for cls in (ArrayImpl, Tracer):
            setattr(cls, name, value)
