"""Control flow: the higher-order primitives `cond`, `scan` and `while`, and the lax functions
built on them (`cond`, `switch`, `scan`, `fori_loop`, `while_loop`, `map`).

Each primitive holds its sub-programs as `ClosedJaxpr` params, traced once from the user's
Python functions, and has all of its rules beside it:

    primitive  operands                                   params
    cond       index, *operands                           branches
    scan       *consts, *init_carry, *xs                  jaxpr, num_consts, num_carry,
                                                          length, reverse
    while      *cond_consts, *body_consts, *init_carry    cond_jaxpr, body_jaxpr,
                                                          cond_nconsts, body_nconsts

Values a user function closes over that are tracers of an enclosing transformation are
*hoisted* (closure conversion): they become leading operands, so every transformation sees
them as ordinary inputs. Concrete closed-over values stay in the ClosedJaxpr.

The rules transform the sub-programs and bind the same primitive again, so a derivative or a
batched loop is still a loop (jit compiles it as one), and is differentiable again:

* jvp: the sub-programs' JVPs. Which loop carries have nonzero tangents is found by a
  fixpoint over a dependence analysis of the body (`_nonzero_outputs`).
* vjp of scan: the body's reverse-mode program is traced once and split by dependence into
  loop-invariant, forward and backward parts (`_Linearized`). A forward scan computes
  the primal outputs and stacks the per-step residuals the backward part needs; a reverse
  scan runs only the backward part over them. Nothing is recomputed per step.
* vjp of cond: a cond of the branches' reverse-mode programs (the taken branch's forward is
  re-run inside its backward program). while has no vjp (as in JAX): use scan or fori_loop.
* batch: the sub-programs batched with `batch_jaxpr`; carries that become batched are
  batched from the start (a fixpoint). A batched predicate runs every branch and selects
  (cond), or iterates while any example's predicate holds and updates only those (while).

The modules, by idea: `_common` (sub-programs: tracing, closure conversion, dependence,
eager evaluation, pytree checks), `_cond` (cond, switch), `_scan` (scan, map) and `_loops`
(while_loop, fori_loop).
"""

from fnbrrr._prims.control_flow._cond import cond, cond_p, switch
from fnbrrr._prims.control_flow._loops import fori_loop, while_loop, while_p
from fnbrrr._prims.control_flow._scan import map, scan, scan_p

__all__ = [
    "cond", "cond_p", "fori_loop", "map", "scan", "scan_p", "switch", "while_loop", "while_p",
]
