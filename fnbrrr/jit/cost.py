"""FLOP and byte counts of programs, from the IR (never from timing: PERF.md fact 9).

Per equation: `flops` counts arithmetic (one per element for elementwise ops and reductions,
2*M*N*K for a matmul), `transcendentals` counts exp/log/tanh/sin... separately, and `bytes
accessed` counts the bytes of its inputs and outputs as if it ran alone. A fused program
moves fewer bytes: `program_cost` also reports the bytes of the fused plan (only buffers that
fusion materialises), which is what the memory actually sees.
"""

from __future__ import annotations

import numpy as np

from fnbrrr.core import Eqn, Jaxpr, Literal, Var

TRANSCENDENTAL = {"exp", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "logistic",
                  "erf", "pow", "atan2", "sqrt", "rsqrt"}
DATA_MOVEMENT = {"broadcast_in_dim", "reshape", "transpose", "squeeze", "concatenate", "pad",
                 "slice", "rev", "iota", "gather", "dynamic_slice", "dynamic_update_slice",
                 "convert_element_type", "stop_gradient", "select_n"}


def _nbytes(atom) -> int:
    aval = atom.aval
    return int(np.prod(aval.shape, dtype=np.int64)) * aval.dtype.itemsize


def eqn_cost(eqn: Eqn) -> dict:
    """FLOPs, transcendentals and bytes of one equation run on its own."""
    name = eqn.primitive.name
    out_size = sum(v.aval.size for v in eqn.outvars)
    flops = transcendentals = 0
    if name == "dot_general":
        (lc, _), _ = eqn.params["dimension_numbers"]
        k = int(np.prod([eqn.inputs[0].aval.shape[d] for d in lc], dtype=np.int64))
        flops = 2 * out_size * k
    elif name in TRANSCENDENTAL:
        transcendentals = out_size
    elif name == "integer_pow":
        flops = out_size * max(1, abs(eqn.params["y"]) - 1)
    elif name.startswith("reduce_") or name in ("argmax", "argmin"):
        flops = eqn.inputs[0].aval.size
    elif name in ("scatter_add", "scatter_mul"):
        flops = eqn.inputs[2].aval.size
    elif name not in DATA_MOVEMENT and not eqn.primitive.multiple_results:
        flops = out_size
    moved = sum(_nbytes(a) for a in eqn.inputs if type(a) is Var)
    moved += sum(_nbytes(v) for v in eqn.outvars)
    return {"flops": float(flops), "transcendentals": float(transcendentals),
            "bytes accessed": float(moved)}


def program_cost(jaxpr: Jaxpr, materialized: set | None = None) -> dict:
    """Totals over the program; `bytes accessed` is unfused unless `materialized` is given.

    With `materialized` (the fusion plan's buffers), bytes are those of the program's inputs,
    constants and materialised values, each read or written once.
    """
    total = {"flops": 0.0, "transcendentals": 0.0, "bytes accessed": 0.0}
    for eqn in jaxpr.eqns:
        for key, value in eqn_cost(eqn).items():
            total[key] += value
    total["bytes accessed unfused"] = total["bytes accessed"]
    if materialized is not None:
        buffers = set(materialized) | set(jaxpr.invars) | set(jaxpr.constvars)
        total["bytes accessed"] = float(sum(_nbytes(v) for v in buffers if type(v) is not
                                            Literal))
    return total
