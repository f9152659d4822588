"""fnbrrr: deep learning that goes brrr — a functional, JAX-style array library from scratch.

`import fnbrrr as jax; import fnbrrr.numpy as jnp` runs code written for JAX's core API:
`grad`, `vmap`, `jit` and friends compose over pure functions of arrays and pytrees.
"""

from fnbrrr import (
    _prims,  # noqa: F401  (registers every primitive)
    lax,
    nn,
    numpy,
    optim,
    random,
    tree,
    tree_util,
)
from fnbrrr.ad import grad, hessian, jacfwd, jacrev, jvp, linearize, value_and_grad, vjp
from fnbrrr.ad import jacrev as jacobian
from fnbrrr.api import (
    ShapeDtypeStruct,
    block_until_ready,
    device_get,
    device_put,
    eval_shape,
    make_jaxpr,
)
from fnbrrr.batching import vmap
from fnbrrr.brrr import brrr
from fnbrrr.config import config, debug_nans, disable_jit, enable_x64
from fnbrrr.core import Array, ConcretizationTypeError, UnexpectedTracerError
from fnbrrr.custom_derivatives import checkpoint, custom_jvp, custom_vjp, remat
from fnbrrr.jit import jit

__version__ = "0.1.0"

__all__ = [
    "Array", "ConcretizationTypeError", "ShapeDtypeStruct", "UnexpectedTracerError",
    "block_until_ready", "brrr", "checkpoint", "config", "custom_jvp", "custom_vjp",
    "debug_nans", "device_get", "device_put", "disable_jit", "enable_x64", "eval_shape", "grad",
    "hessian", "jacfwd", "jacobian", "jacrev", "jit", "jvp", "lax", "linearize", "make_jaxpr",
    "nn", "numpy", "optim", "random", "remat", "tree", "tree_util", "value_and_grad", "vjp",
    "vmap",
]
