"""Products: dot, matmul (`@`), vdot, inner, outer, tensordot and einsum, on `lax.dot_general`.

`dot_general` contracts given axes with optional batch axes and returns (batch, lhs free, rhs
free) axes; each NumPy product is a choice of those axes plus, at most, a broadcast of batch
dimensions and one transpose. Contraction sizes are checked here, so a mismatch raises a
ValueError naming the function and both shapes, eagerly and under `jit` alike.
"""

from __future__ import annotations

import builtins
import operator
import string

import numpy as np

from fnbrrr import lax
from fnbrrr.numpy._promotion import (
    BOOL,
    broadcast_shapes,
    canonical_dtype,
    promote,
    promote_dtypes,
    to_array,
)
from fnbrrr.numpy._reductions import canonicalize_axis
from fnbrrr.numpy._shape import ravel

_INT32 = np.dtype("int32")


def _dot_general(lhs, rhs, dims, preferred_element_type=None):
    """dot_general that also accepts bools (computed in int32, then tested for nonzero)."""
    if lhs.aval.dtype == BOOL:
        out = lax.dot_general(
            lax.convert_element_type(lhs, _INT32), lax.convert_element_type(rhs, _INT32), dims
        )
        return lax.ne(out, lax.full((), 0, _INT32))
    pet = None if preferred_element_type is None else canonical_dtype(preferred_element_type)
    return lax.dot_general(lhs, rhs, dims, pet)


def _mismatch(name: str, a_shape, b_shape, a_axis: str, b_axis: str, a_size, b_size):
    return ValueError(
        f"{name}: contracting dimensions do not match: {a_axis} of the first operand (shape "
        f"{tuple(a_shape)}) has size {a_size} but {b_axis} of the second (shape "
        f"{tuple(b_shape)}) has size {b_size}"
    )


def matmul(a, b, *, precision=None, preferred_element_type=None):
    """Matrix product with NumPy's rules: 1-D operands are promoted to matrices and the extra
    axis removed afterwards; leading (batch) axes broadcast. Also `a @ b`.

    Example:
        >>> (jnp.ones((5, 2, 3)) @ jnp.ones((3, 4))).shape
        (5, 2, 4)
    """
    a, b = promote_dtypes("matmul", a, b)
    sa, sb = a.shape, b.shape
    if not sa or not sb:
        raise ValueError(
            f"matmul: operands must be at least 1-D, got shapes {sa} and {sb} (use jnp.multiply "
            "or * for scalars)"
        )
    ka = sa[-1]
    kb = sb[0] if len(sb) == 1 else sb[-2]
    if ka != kb:
        b_axis = "axis 0" if len(sb) == 1 else "axis -2"
        raise _mismatch("matmul", sa, sb, "axis -1", b_axis, ka, kb)
    na, nb = len(sa), len(sb)
    if nb == 1:  # (..., n, k) @ (k,) -> (..., n)
        return _dot_general(a, b, (((na - 1,), (0,)), ((), ())), preferred_element_type)
    if na == 1:  # (k,) @ (..., k, m) -> (..., m)
        return _dot_general(a, b, (((0,), (nb - 2,)), ((), ())), preferred_element_type)
    if nb == 2:  # (..., n, k) @ (k, m): no batch axes needed
        return _dot_general(a, b, (((na - 1,), (0,)), ((), ())), preferred_element_type)
    batch = broadcast_shapes("matmul", (sa[:-2], sb[:-2]))
    nbatch = len(batch)
    if sa[:-2] != batch:
        a = lax.broadcast_in_dim(a, batch + sa[-2:], tuple(range(nbatch - na + 2, nbatch + 2)))
    if sb[:-2] != batch:
        b = lax.broadcast_in_dim(b, batch + sb[-2:], tuple(range(nbatch - nb + 2, nbatch + 2)))
    batch_axes = tuple(range(nbatch))
    dims = (((nbatch + 1,), (nbatch,)), (batch_axes, batch_axes))
    return _dot_general(a, b, dims, preferred_element_type)


def dot(a, b, *, precision=None, preferred_element_type=None):
    """NumPy's dot: scalars multiply; 1-D x 1-D is the inner product; N-D x 1-D contracts the
    last axes; N-D x M-D contracts a's last axis with b's second-to-last.

    Example:
        >>> jnp.dot(jnp.array([1., 2.]), jnp.array([3., 4.]))
        Array(11., dtype=float32)
    """
    a, b = promote_dtypes("dot", a, b)
    sa, sb = a.shape, b.shape
    if not sa or not sb:
        from fnbrrr.numpy._elementwise import multiply

        return multiply(a, b)
    b_axis = 0 if len(sb) == 1 else len(sb) - 2
    if sa[-1] != sb[b_axis]:
        raise _mismatch("dot", sa, sb, "axis -1", f"axis {b_axis}", sa[-1], sb[b_axis])
    return _dot_general(a, b, (((len(sa) - 1,), (b_axis,)), ((), ())), preferred_element_type)


def vdot(a, b, *, precision=None, preferred_element_type=None):
    """Inner product of the flattened arrays."""
    a, b = ravel(a), ravel(b)
    return dot(a, b, preferred_element_type=preferred_element_type)


def vecdot(x1, x2, /, *, axis: int = -1, precision=None, preferred_element_type=None):
    """Inner product over `axis`, broadcasting the other axes."""
    from fnbrrr.numpy._elementwise import multiply
    from fnbrrr.numpy._reductions import sum as _sum

    return _sum(multiply(x1, x2), axis=axis)


def inner(a, b, *, precision=None, preferred_element_type=None):
    """Inner product over the last axes of `a` and `b` (scalars multiply)."""
    a, b = promote_dtypes("inner", a, b)
    sa, sb = a.shape, b.shape
    if not sa or not sb:
        from fnbrrr.numpy._elementwise import multiply

        return multiply(a, b)
    if sa[-1] != sb[-1]:
        raise _mismatch("inner", sa, sb, "axis -1", "axis -1", sa[-1], sb[-1])
    return _dot_general(a, b, (((len(sa) - 1,), (len(sb) - 1,)), ((), ())), preferred_element_type)


def outer(a, b, out=None):
    """Outer product of the flattened arrays: result[i, j] = a[i] * b[j].

    Example:
        >>> jnp.outer(jnp.array([1, 2]), jnp.array([1, 10, 100]))
        Array([[  1,  10, 100],
               [  2,  20, 200]], dtype=int32)
    """
    a, b = promote_dtypes("outer", ravel(to_array(a, "outer")), ravel(to_array(b, "outer")))
    n, m = a.shape[0], b.shape[0]
    a2 = lax.broadcast_in_dim(a, (n, m), (0,))
    b2 = lax.broadcast_in_dim(b, (n, m), (1,))
    if a.aval.dtype == BOOL:
        return lax.and_(a2, b2)
    return lax.mul(a2, b2)


def tensordot(a, b, axes=2, *, precision=None, preferred_element_type=None):
    """Sum products over the last `axes` axes of `a` and the first of `b` (an int), or over
    the axes listed in `axes = (a_axes, b_axes)`.

    Example:
        >>> jnp.tensordot(jnp.ones((2, 3, 4)), jnp.ones((3, 4, 5))).shape
        (2, 5)
    """
    a, b = promote_dtypes("tensordot", a, b)
    na, nb = a.ndim, b.ndim
    if isinstance(axes, (int, np.integer)):
        k = operator.index(axes)
        if k < 0 or k > builtins.min(na, nb):
            raise ValueError(
                f"tensordot: axes={k} is out of range for operands of shapes {a.shape} and "
                f"{b.shape}"
            )
        a_axes, b_axes = tuple(range(na - k, na)), tuple(range(k))
    else:
        try:
            a_axes, b_axes = axes
        except (TypeError, ValueError):
            raise TypeError(
                f"tensordot: axes must be an int or a pair of axis sequences, got {axes!r}"
            ) from None
        a_axes = (a_axes,) if isinstance(a_axes, (int, np.integer)) else tuple(a_axes)
        b_axes = (b_axes,) if isinstance(b_axes, (int, np.integer)) else tuple(b_axes)
        if len(a_axes) != len(b_axes):
            raise ValueError(
                f"tensordot: axes {a_axes} and {b_axes} must have the same number of entries"
            )
        a_axes = tuple(canonicalize_axis("tensordot", x, na) for x in a_axes)
        b_axes = tuple(canonicalize_axis("tensordot", x, nb) for x in b_axes)
    for i, j in zip(a_axes, b_axes):
        if a.shape[i] != b.shape[j]:
            raise _mismatch(
                "tensordot", a.shape, b.shape, f"axis {i}", f"axis {j}", a.shape[i], b.shape[j]
            )
    return _dot_general(a, b, ((a_axes, b_axes), ((), ())), preferred_element_type)


def kron(a, b):
    """Kronecker product of two arrays."""
    from fnbrrr.numpy._elementwise import multiply

    a, b = to_array(a, "kron"), to_array(b, "kron")
    n = builtins.max(a.ndim, b.ndim)
    sa = (1,) * (n - a.ndim) + a.shape
    sb = (1,) * (n - b.ndim) + b.shape
    a = lax.reshape(a, tuple(v for d in sa for v in (d, 1)))
    b = lax.reshape(b, tuple(v for d in sb for v in (1, d)))
    return lax.reshape(multiply(a, b), tuple(x * y for x, y in zip(sa, sb)))


# --------------------------------------------------------------------------------------------
# einsum
# --------------------------------------------------------------------------------------------

_ELLIPSIS_LABELS = [chr(c) for c in range(0x100, 0x100 + 64)]  # never typed by users


def _parse_einsum(subscripts: str, shapes: list) -> tuple[list[list[str]], list[str]]:
    spec = subscripts.replace(" ", "")
    if "->" in spec:
        lhs, out = spec.split("->")
        if "->" in out:
            raise ValueError(f"einsum: subscripts {subscripts!r} contain more than one '->'")
        explicit = True
    else:
        lhs, out, explicit = spec, "", False
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(
            f"einsum: subscripts {subscripts!r} name {len(terms)} operands but "
            f"{len(shapes)} were given"
        )
    n_ellipsis = 0
    for term, s in zip(terms, shapes):
        if "..." in term:
            n_ellipsis = builtins.max(n_ellipsis, len(s) - (len(term) - 3))
    ell = _ELLIPSIS_LABELS[:n_ellipsis]

    def expand(term: str, ndim: int | None) -> list[str]:
        if term.count("...") > 1:
            raise ValueError(f"einsum: more than one ellipsis in {term!r}")
        for ch in term.replace("...", ""):
            if ch not in string.ascii_letters:
                raise ValueError(f"einsum: invalid subscript {ch!r} in {subscripts!r}")
        if "..." not in term:
            return list(term)
        head, tail = term.split("...")
        k = n_ellipsis if ndim is None else ndim - len(head) - len(tail)
        if k < 0:
            raise ValueError(f"einsum: operand has too few dimensions for {term!r}")
        return list(head) + ell[n_ellipsis - k :] + list(tail)

    inputs = []
    for term, s in zip(terms, shapes):
        labels = expand(term, len(s))
        if len(labels) != len(s):
            raise ValueError(
                f"einsum: subscripts {term!r} name {len(labels)} axes but the operand has shape "
                f"{tuple(s)}"
            )
        inputs.append(labels)
    if explicit:
        output = expand(out, None)
        if len(set(output)) != len(output):
            raise ValueError(f"einsum: output subscripts {out!r} repeat a label")
        known = {lab for labels in inputs for lab in labels}
        for lab in output:
            if lab not in known:
                raise ValueError(f"einsum: output label {lab!r} does not appear in any input")
    else:
        counts: dict[str, int] = {}
        for labels in inputs:
            for lab in labels:
                counts[lab] = counts.get(lab, 0) + 1
        output = list(ell) + sorted(lab for lab, c in counts.items() if c == 1 and lab not in ell)
    return inputs, output


def _einsum_diagonal(x, labels: list[str]):
    """Take the diagonal over labels repeated within one operand ('ii->i')."""
    from fnbrrr.numpy._shape import diagonal

    while True:
        seen = {}
        repeat = None
        for i, lab in enumerate(labels):
            if lab in seen:
                repeat = (seen[lab], i)
                break
            seen[lab] = i
        if repeat is None:
            return x, labels
        i, j = repeat
        x = diagonal(x, 0, i, j)  # the diagonal becomes the last axis
        lab = labels[i]
        labels = [lb for k, lb in enumerate(labels) if k not in (i, j)] + [lab]


def einsum(
    subscripts,
    *operands,
    out=None,
    optimize="optimal",
    precision=None,
    preferred_element_type=None,
    _use_xeinsum=False,
):
    """Einstein summation, e.g. 'ij,jk->ik' (matmul), 'bij,bjk->bik', 'i,i->', 'ij->ji',
    'ii->i'; implicit output (no '->') and '...' are supported.

    Operands are contracted left to right with `lax.dot_general`; labels used by only one
    operand are summed first.

    Example:
        >>> jnp.einsum("ij,jk->ik", jnp.ones((2, 3)), jnp.ones((3, 4))).shape
        (2, 4)
    """
    if not isinstance(subscripts, str):
        raise TypeError("einsum: the first argument must be a subscripts string like 'ij,jk->ik'")
    if not operands:
        raise ValueError("einsum: at least one operand is required")
    xs, _ = promote("einsum", *operands, broadcast=False)
    inputs, output = _parse_einsum(subscripts, [x.shape for x in xs])

    # Label sizes must agree; size-1 ellipsis axes broadcast as in NumPy.
    sizes: dict[str, int] = {}
    for k, (x, labels) in enumerate(zip(xs, inputs)):
        for lab, d in zip(labels, x.shape):
            prev = sizes.get(lab)
            if prev is None or prev == 1 and lab in _ELLIPSIS_LABELS:
                sizes[lab] = d
            elif d != prev and not (d == 1 and lab in _ELLIPSIS_LABELS):
                shapes = ", ".join(str(tuple(x.shape)) for x in xs)
                shown = "..." if lab in _ELLIPSIS_LABELS else repr(lab)
                raise ValueError(
                    f"einsum: size of label {shown} is {prev} in one operand but {d} in operand "
                    f"{k} (subscripts {subscripts!r}, shapes {shapes})"
                )
    for k, (x, labels) in enumerate(zip(xs, inputs)):
        target = tuple(sizes[lab] for lab in labels)
        if x.shape != target:
            xs[k] = lax.broadcast_in_dim(x, target, tuple(range(len(target))))

    ops = []
    for x, labels in zip(xs, inputs):
        x, labels = _einsum_diagonal(x, labels)
        ops.append((x, labels))

    def needed_later(start: int) -> set:
        keep = set(output)
        for _, labels in ops[start:]:
            keep.update(labels)
        return keep

    def sum_private(x, labels, keep):
        axes = tuple(i for i, lab in enumerate(labels) if lab not in keep)
        if axes:
            x = lax.reduce_sum(x, axes) if x.aval.dtype != BOOL else lax.reduce_or(x, axes)
            labels = [lab for i, lab in enumerate(labels) if i not in axes]
        return x, labels

    x, labels = ops[0]
    x, labels = sum_private(x, labels, needed_later(1))
    for k in range(1, len(ops)):
        y, ylabels = ops[k]
        keep = needed_later(k + 1)
        y, ylabels = sum_private(y, ylabels, keep | set(labels))
        shared = [lab for lab in labels if lab in ylabels]
        batch = [lab for lab in shared if lab in keep]
        contract = [lab for lab in shared if lab not in keep]
        dims = (
            (
                tuple(labels.index(lab) for lab in contract),
                tuple(ylabels.index(lab) for lab in contract),
            ),
            (tuple(labels.index(lab) for lab in batch), tuple(ylabels.index(lab) for lab in batch)),
        )
        x = _dot_general(x, y, dims, preferred_element_type)
        labels = (
            batch
            + [lab for lab in labels if lab not in shared]
            + [lab for lab in ylabels if lab not in shared]
        )
        x, labels = sum_private(x, labels, keep)

    x, labels = sum_private(x, labels, set(output))
    perm = tuple(labels.index(lab) for lab in output)
    if perm != tuple(range(len(perm))):
        x = lax.transpose(x, perm)
    if preferred_element_type is not None and len(ops) == 1:
        x = lax.convert_element_type(x, canonical_dtype(preferred_element_type))
    return x
