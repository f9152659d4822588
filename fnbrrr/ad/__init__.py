"""Automatic differentiation: forward mode (jvp), reverse mode (vjp, grad) and what builds on them.

Two transformations, each a trace (see `fnbrrr.core`):

* **Forward mode.** A `JVPTracer` carries a primal value and its tangent (or a symbolic
  `Zero`). `JVPTrace.process_primitive` applies the primitive's `jvp` rule. Used by `jvp`,
  `jacfwd` and `linearize`.
* **Reverse mode.** A `ReverseTracer` carries a value and the id of its node on a *tape*.
  `ReverseTrace.process_primitive` evaluates the primitive one level down and records what it
  did; the backward pass walks the tape in reverse, calling each primitive's `vjp` rule. Rules
  bind primitives, so the backward pass is itself traced by whatever transformations are
  active below: grad of grad, `jit` of grad, `vmap` of grad fall out of composition.

Levels keep nested derivatives apart (no perturbation confusion): a tracer of an outer `grad`
seen by an inner one is a constant there.

The modules: `_helpers` (shared helpers), `_forward` (forward mode: `jvp_flat`, `jvp`,
`linearize`), `_reverse` (reverse mode: `vjp_flat`, `vjp`), `_grad` (`grad`,
`value_and_grad`) and `_jacobians` (`jacfwd`, `jacrev`, `hessian`). User-defined derivatives
(`custom_jvp`, `custom_vjp`), `checkpoint` and `stop_gradient` live in
`fnbrrr.custom_derivatives`; helpers for testing rules in `fnbrrr.test_util`.
"""

# The underscored names are re-exported for fnbrrr.custom_derivatives and fnbrrr.test_util.
from fnbrrr.ad._forward import JVPTrace, JVPTracer, jvp, jvp_flat, linearize
from fnbrrr.ad._grad import grad, value_and_grad
from fnbrrr.ad._helpers import (  # noqa: F401
    _as_array,
    _avals,
    _checked_input,
    _checked_inputs,
    _concrete,
    _fun_name,
    _instantiate_all,
    _is_float,
    _lax,
    _LazyPaths,
    _type_summary,
    _vmap,
    _zeros,
)
from fnbrrr.ad._jacobians import hessian, jacfwd, jacrev
from fnbrrr.ad._reverse import (  # noqa: F401
    ReverseTrace,
    ReverseTracer,
    _vjp_core,
    reverse_rules,
    vjp,
    vjp_flat,
)
from fnbrrr.tree_util import leaf_paths as _leaf_paths  # noqa: F401

__all__ = [
    "JVPTrace",
    "JVPTracer",
    "ReverseTrace",
    "ReverseTracer",
    "grad",
    "hessian",
    "jacfwd",
    "jacrev",
    "jvp",
    "jvp_flat",
    "linearize",
    "reverse_rules",
    "value_and_grad",
    "vjp",
    "vjp_flat",
]
