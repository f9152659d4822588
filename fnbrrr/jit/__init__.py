"""The jit compiler: trace, optimise, fuse, lower to Numba, cache.

The package is laid out in the order a program flows through it:
passes (IR -> IR), fusion (IR -> plan), lowering/kernels (how each primitive is emitted),
codegen (plan -> Numba source), runtime (disk cache, buffers, calls), api (jit, pjit).
"""

from fnbrrr.jit import cost as _cost
from fnbrrr.jit import lowering as _lowering
from fnbrrr.jit.api import Compiled, JitFunction, Lowered, jit, pjit_p

_lowering.install()
_cost.install()

__all__ = ["Compiled", "JitFunction", "Lowered", "jit", "pjit_p"]
