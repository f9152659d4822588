"""JAX-parity cases found by the audit of API.md §1, §2 and §8 (edge cases that
`test_jax_parity.py` does not cover): each runs on JAX and on fnbrrr and the outcomes are
compared with that file's `check`. Their JAX-free twins are in `tests/test_audit_numpy.py`.
Run with the peers venv: `/tmp/peers/bin/python -m pytest tests/test_jax_parity_audit_numpy.py`.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("jax")

from test_jax_parity import cases, check  # noqa: E402

X34 = np.arange(12.0, dtype=np.float32).reshape(3, 4)
OOB = np.array([5, -7, 1])


def _grad_sum(fn, x):
    return lambda j, n: j.grad(lambda v: n.sum(fn(j, n, v)))(n.asarray(x))


OUT_OF_RANGE_GATHERS = {
    "getitem": _grad_sum(lambda j, n, v: v[OOB], np.arange(3.0, dtype=np.float32)),
    "getitem_jit": lambda j, n: j.jit(j.grad(lambda v: v[OOB].sum()))(n.arange(3.0)),
    "getitem_traced_index": lambda j, n: j.jit(j.grad(lambda v, i: v[i].sum()))(
        n.arange(3.0), OOB),
    "getitem_axis1": _grad_sum(lambda j, n, v: v[:, np.array([4, 9, -9])], X34),
    "getitem_two_arrays": _grad_sum(lambda j, n, v: v[np.array([0, 5]), np.array([9, 1])], X34),
    "take": _grad_sum(lambda j, n, v: n.take(v, OOB), np.arange(3.0, dtype=np.float32)),
    "take_clip": _grad_sum(lambda j, n, v: n.take(v, OOB, mode="clip"),
                           np.arange(3.0, dtype=np.float32)),
    "take_wrap": _grad_sum(lambda j, n, v: n.take(v, OOB, mode="wrap"),
                           np.arange(3.0, dtype=np.float32)),
    "take_along_axis": _grad_sum(
        lambda j, n, v: n.take_along_axis(v, np.array([[5, 0]] * 3), axis=1), X34),
    "take_along_axis_clip": _grad_sum(
        lambda j, n, v: n.take_along_axis(v, np.array([[5, 0]] * 3), axis=1, mode="clip"), X34),
    "take_along_axis_in_bounds": _grad_sum(
        lambda j, n, v: n.take_along_axis(v, np.array([[5, 0]] * 3), axis=1,
                                          mode="promise_in_bounds"), X34),
    "at_get": _grad_sum(lambda j, n, v: v.at[OOB].get(), np.arange(3.0, dtype=np.float32)),
    "at_get_clip": _grad_sum(lambda j, n, v: v.at[OOB].get(mode="clip"),
                             np.arange(3.0, dtype=np.float32)),
    "at_get_fill": _grad_sum(lambda j, n, v: v.at[OOB].get(mode="fill"),
                             np.arange(3.0, dtype=np.float32)),
    "vmap_grad": lambda j, n: j.vmap(j.grad(lambda x, i: x[i].sum()))(
        n.asarray(X34), np.array([[5, 0], [1, -9], [2, 2]])),
    "jvp": lambda j, n: j.jvp(lambda x: x[np.array([5, 1])], (n.arange(3.0),), (n.ones(3),)),
    "jacrev": lambda j, n: j.jacrev(lambda x: x[np.array([5, 1])])(n.arange(3.0)),
    "traced_scalar_index": lambda j, n: j.jit(j.grad(lambda x, i: x[i]))(n.arange(3.0), 5),
    "static_int": lambda j, n: j.grad(lambda x: x[5])(n.arange(3.0)),
}


@cases(OUT_OF_RANGE_GATHERS)
def test_out_of_range_gather_gradients(case):
    check(case)
