"""Plain helpers shared by the derivative tests (fixtures live in `conftest.py`).

The test modules import this as `from helpers import ...`: pytest puts `tests/` on `sys.path`
because the folder has no `__init__.py` (its default `prepend` import mode), as for
`prim_cases.py`.
"""

from __future__ import annotations

import numpy as np
import pytest

import fnbrrr
import fnbrrr.numpy as jnp
from fnbrrr import core, tree_util


def f32(v):
    """`v` as a float32 fnbrrr array."""
    return jnp.array(v, jnp.float32)


def close(a, b, rtol=1e-5, atol=1e-6):
    """Assert that `a` and `b` (arrays or pytrees of them) agree, compared in float64."""
    np.testing.assert_allclose(
        np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol, atol=atol
    )


def staged(f):
    """`f` traced to IR and evaluated from it: the path `jit` takes, without the compiler."""

    def run(*args):
        flat, in_tree = tree_util.tree_flatten(args)
        out_tree = []

        def flat_fun(*leaves):
            out, tree = tree_util.tree_flatten(f(*tree_util.tree_unflatten(in_tree, leaves)))
            out_tree.append(tree)
            return out

        jaxpr, consts = core.trace_to_jaxpr(flat_fun, [core.get_aval(x) for x in flat])
        return tree_util.tree_unflatten(out_tree[0], core.eval_jaxpr(jaxpr, consts, *flat))

    return run


def _find_jit():
    jit = getattr(fnbrrr, "jit", None)
    if callable(jit):
        return jit
    try:
        from fnbrrr.jit.api import jit
    except ImportError:
        return None
    return jit


jit = _find_jit()
needs_jit = pytest.mark.skipif(jit is None, reason="fnbrrr.jit not available yet")
