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
from fnbrrr.api import block_until_ready, device_get, device_put, make_jaxpr
from fnbrrr.batching import vmap
from fnbrrr.brrr import brrr
from fnbrrr.config import config
from fnbrrr.core import Array, ConcretizationTypeError, UnexpectedTracerError
from fnbrrr.custom_derivatives import checkpoint, custom_jvp, custom_vjp, remat
from fnbrrr.jit import jit

__version__ = "0.1.0"

__all__ = [
    "Array", "ConcretizationTypeError", "UnexpectedTracerError", "block_until_ready", "brrr",
    "checkpoint", "config", "custom_jvp", "custom_vjp", "device_get", "device_put", "grad",
    "hessian", "jacfwd", "jacrev", "jit", "jvp", "lax", "linearize", "make_jaxpr", "nn",
    "numpy", "optim", "random", "remat", "tree", "tree_util", "value_and_grad", "vjp", "vmap",
]
