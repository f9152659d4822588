"""IR passes run before fusion: inlining, constant folding, exact simplifications, CSE and DCE.

Every pass maps a `Jaxpr` (plus its constants) to a new one that computes the same values;
none changes a value's bits, so jit agrees with eager execution exactly where NumPy does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fnbrrr import core
from fnbrrr.core import Eqn, Jaxpr, Literal, Var

# Primitives whose params carry a sub-program that the compiler can inline at this point:
# name -> function(params) -> (jaxpr, consts).
INLINABLE: dict[str, Callable] = {}


def _call_jaxpr_body(params):
    return params["call_jaxpr"].jaxpr, params["call_jaxpr"].consts


# Custom rules only matter to transformations; a compiled program runs the function itself.
for _name in ("custom_jvp_call", "custom_vjp_call", "checkpoint"):
    INLINABLE[_name] = _call_jaxpr_body


def optimize(jaxpr: Jaxpr, consts: list) -> tuple[Jaxpr, list]:
    """The standard pipeline: inline calls, fold constants, simplify, CSE, DCE."""
    jaxpr, consts = inline_calls(jaxpr, consts)
    jaxpr, consts = fold_constants(jaxpr, consts)
    jaxpr = simplify(jaxpr)
    jaxpr = fold_transposes_into_dot(jaxpr)
    jaxpr = eliminate_common_subexpressions(jaxpr)
    jaxpr, consts = eliminate_dead_code(jaxpr, consts)
    return jaxpr, consts


# --- inlining ------------------------------------------------------------------------------------


def inline_calls(jaxpr: Jaxpr, consts: list) -> tuple[Jaxpr, list]:
    """Replace call-like equations (nested jit, custom rules, checkpoint) by their bodies."""
    if not any(e.primitive.name in INLINABLE for e in jaxpr.eqns):
        return jaxpr, consts
    constvars, consts = list(jaxpr.constvars), list(consts)
    eqns: list[Eqn] = []
    subst: dict[Var, object] = {}

    def read(atom):
        return subst.get(atom, atom) if type(atom) is Var else atom

    for eqn in jaxpr.eqns:
        inputs = [read(a) for a in eqn.inputs]
        body = INLINABLE.get(eqn.primitive.name)
        if body is None:
            eqns.append(eqn._replace(inputs=inputs))
            continue
        sub, sub_consts = body(eqn.params)
        sub, sub_consts = inline_calls(sub, sub_consts)
        inner: dict[Var, object] = {}
        for v, c in zip(sub.constvars, sub_consts):
            fresh = Var(v.aval)
            constvars.append(fresh)
            consts.append(c)
            inner[v] = fresh
        inner.update(zip(sub.invars, inputs))

        def read_inner(atom, inner=inner):
            return inner.get(atom, atom) if type(atom) is Var else atom

        for sub_eqn in sub.eqns:
            outvars = [Var(v.aval) for v in sub_eqn.outvars]
            inner.update(zip(sub_eqn.outvars, outvars))
            eqns.append(sub_eqn._replace(inputs=[read_inner(a) for a in sub_eqn.inputs],
                                         outvars=outvars))
        for outer, result in zip(eqn.outvars, sub.outvars):
            subst[outer] = read_inner(result)
    outvars = [read(a) for a in jaxpr.outvars]
    return Jaxpr(constvars, jaxpr.invars, eqns, outvars), consts


# --- constant folding ----------------------------------------------------------------------------

_FOLD_LIMIT = 1 << 16  # elements: larger constant results stay in the program (no bloat)


def fold_constants(jaxpr: Jaxpr, consts: list) -> tuple[Jaxpr, list]:
    """Evaluate equations whose inputs are all known now; small 0-d results become literals."""
    known: dict[Var, np.ndarray] = {}
    for v, c in zip(jaxpr.constvars, consts):
        if not isinstance(c, core.Tracer):
            known[v] = np.asarray(c)
    eqns, subst = [], {}
    new_consts: dict[Var, np.ndarray] = {}

    def read(atom):
        atom = subst.get(atom, atom) if type(atom) is Var else atom
        return atom

    def value(atom):
        return atom.val if type(atom) is Literal else known.get(atom)

    for eqn in jaxpr.eqns:
        inputs = [read(a) for a in eqn.inputs]
        vals = [value(a) for a in inputs]
        foldable = (
            all(v is not None for v in vals)
            and eqn.primitive.impl is not None
            and eqn.primitive.name not in INLINABLE
            and _folding_does_not_expand(eqn, vals)
        )
        if not foldable:
            eqns.append(eqn._replace(inputs=inputs))
            continue
        out = eqn.primitive.impl(*vals, **eqn.params)
        outs = out if eqn.primitive.multiple_results else [out]
        for var, result in zip(eqn.outvars, outs):
            result = np.asarray(result, var.aval.dtype)
            if result.shape == ():
                subst[var] = Literal(result, var.aval)
            else:
                known[var] = result
                new_consts[var] = result
    outvars = [read(a) for a in jaxpr.outvars]
    constvars = list(jaxpr.constvars) + list(new_consts)
    consts = list(consts) + list(new_consts.values())
    return Jaxpr(constvars, jaxpr.invars, eqns, outvars), consts


def _folding_does_not_expand(eqn: Eqn, vals) -> bool:
    """Fold only what does not grow: a broadcast scalar stays a literal read in registers
    (reading a folded 128x512 constant from memory costs bandwidth; a literal costs nothing)."""
    out_size = sum(o.aval.size for o in eqn.outvars)
    in_size = sum(np.size(v) for v in vals)
    return out_size <= _FOLD_LIMIT and (out_size <= max(in_size, 1) or out_size <= 16)


# --- exact algebraic simplification --------------------------------------------------------------


def _literal_value(atom, producers: dict | None = None):
    """The scalar a literal holds, or that a broadcast of a literal fills its output with."""
    if type(atom) is Literal:
        return atom.val.item()
    eqn = producers.get(atom) if producers else None
    if eqn is not None and eqn.primitive.name == "broadcast_in_dim" and (
            type(eqn.inputs[0]) is Literal):
        return eqn.inputs[0].val.item()
    return None


def _same_type(atom, like: Var) -> bool:
    return atom.aval.shape == like.aval.shape and atom.aval.dtype == like.aval.dtype


def simplify(jaxpr: Jaxpr) -> Jaxpr:
    """Remove operations that provably return an input unchanged (bit for bit).

    x * 1, x / 1, x + 0 for integers (for floats, x + 0.0 turns -0.0 into 0.0, so it stays),
    x - 0, converting to the same dtype, reshape/transpose/broadcast that change nothing,
    and neg(neg(x)).
    """
    subst: dict[Var, object] = {}
    producers: dict[Var, Eqn] = {}
    eqns = []

    def read(atom):
        return subst.get(atom, atom) if type(atom) is Var else atom

    for eqn in jaxpr.eqns:
        inputs = [read(a) for a in eqn.inputs]
        eqn = eqn._replace(inputs=inputs)
        replacement = _identity_input(eqn, producers)
        if replacement is not None and _same_type(replacement, eqn.outvars[0]):
            subst[eqn.outvars[0]] = replacement
            continue
        eqns.append(eqn)
        for v in eqn.outvars:
            producers[v] = eqn
    return Jaxpr(jaxpr.constvars, jaxpr.invars, eqns, [read(a) for a in jaxpr.outvars])


def _identity_input(eqn: Eqn, producers: dict):
    name = eqn.primitive.name
    ins = eqn.inputs
    if name == "mul":
        if _literal_value(ins[1], producers) == 1:
            return ins[0]
        if _literal_value(ins[0], producers) == 1:
            return ins[1]
    elif name == "div" and _literal_value(ins[1], producers) == 1:
        return ins[0]
    elif name == "sub" and _literal_value(ins[1]) == 0 and ins[1].aval.dtype.kind in "iu":
        return ins[0]
    elif name == "add" and ins[0].aval.dtype.kind in "iu":
        if _literal_value(ins[1]) == 0:
            return ins[0]
        if _literal_value(ins[0]) == 0:
            return ins[1]
    elif name == "convert_element_type" and ins[0].aval.dtype == eqn.params["new_dtype"]:
        return ins[0]
    elif name in ("reshape", "broadcast_in_dim") and ins[0].aval.shape == eqn.outvars[0].aval.shape:
        if name == "reshape" or eqn.params["broadcast_dimensions"] == tuple(
                range(len(ins[0].aval.shape))):
            return ins[0]
    elif name == "transpose" and eqn.params["permutation"] == tuple(range(len(ins[0].aval.shape))):
        return ins[0]
    elif name.startswith("reduce_") and eqn.params.get("axes") == ():
        return ins[0]
    elif name == "neg" and type(ins[0]) is Var:
        inner = producers.get(ins[0])
        if inner is not None and inner.primitive.name == "neg":
            return inner.inputs[0]
    return None


# --- transposes folded into matmuls ------------------------------------------------------------


def fold_transposes_into_dot(jaxpr: Jaxpr) -> Jaxpr:
    """dot_general(transpose(x), y) -> dot_general(x, y) with renumbered dimensions.

    BLAS takes transposed operands as a flag, so the transpose's copy disappears. Folded only
    when the operand's free axes keep their relative order (the result's layout is unchanged).
    """
    transposes = {e.outvars[0]: e for e in jaxpr.eqns if e.primitive.name == "transpose"}
    if not transposes:
        return jaxpr
    uses = _use_counts(jaxpr)
    products = {e.outvars[0]: e for e in jaxpr.eqns if e.primitive.name == "dot_general"}
    swapped = {}  # transpose eqn id -> swapped dot_general replacing it
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "transpose":
            product = products.get(eqn.inputs[0]) if type(eqn.inputs[0]) is Var else None
            if product is not None and uses[product.outvars[0]] == 1:
                new = _swap_operands_for_transpose(product, eqn)
                if new is not None:
                    swapped[id(eqn)] = new
    dead = {id(products[e.inputs[0]]) for e in jaxpr.eqns if id(e) in swapped}
    eqns = []
    for eqn in jaxpr.eqns:
        if id(eqn) in dead:
            continue
        eqn = swapped.get(id(eqn), eqn)
        if eqn.primitive.name == "dot_general":
            eqn = _fold_operand(_fold_operand(eqn, 0, transposes), 1, transposes)
        eqns.append(eqn)
    return Jaxpr(jaxpr.constvars, jaxpr.invars, eqns, jaxpr.outvars)


def _use_counts(jaxpr: Jaxpr) -> dict:
    uses: dict = {}
    for eqn in jaxpr.eqns:
        for a in eqn.inputs:
            if type(a) is Var:
                uses[a] = uses.get(a, 0) + 1
    for a in jaxpr.outvars:
        if type(a) is Var:
            uses[a] = uses.get(a, 0) + 1
    return uses


def _swap_operands_for_transpose(product: Eqn, transpose: Eqn):
    """transpose(dot(a, b)) that puts b's free axes first is dot(b, a): no transposed copy."""
    (lc, rc), (lb, rb) = product.params["dimension_numbers"]
    a, b = product.inputs
    n_batch = len(lb)
    n_lfree = a.aval.ndim - len(lc) - n_batch
    n_rfree = b.aval.ndim - len(rc) - n_batch
    batch = tuple(range(n_batch))
    lfree = tuple(range(n_batch, n_batch + n_lfree))
    rfree = tuple(range(n_batch + n_lfree, n_batch + n_lfree + n_rfree))
    if transpose.params["permutation"] != batch + rfree + lfree:
        return None
    params = {**product.params, "dimension_numbers": ((rc, lc), (rb, lb))}
    return product._replace(inputs=[b, a], params=params, outvars=transpose.outvars)


def _fold_operand(eqn: Eqn, side: int, transposes: dict) -> Eqn:
    operand = eqn.inputs[side]
    producer = transposes.get(operand) if type(operand) is Var else None
    if producer is None:
        return eqn
    perm = producer.params["permutation"]
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    contract, batch = (lc, lb) if side == 0 else (rc, rb)
    free = [d for d in range(len(perm)) if d not in contract and d not in batch]
    if [perm[d] for d in free] != sorted(perm[d] for d in free):
        return eqn
    if [perm[d] for d in batch] != sorted(perm[d] for d in batch) and side == 0:
        return eqn
    contract = tuple(perm[d] for d in contract)
    batch = tuple(perm[d] for d in batch)
    dims = ((contract, rc), (batch, rb)) if side == 0 else ((lc, contract), (lb, batch))
    inputs = list(eqn.inputs)
    inputs[side] = producer.inputs[0]
    return eqn._replace(inputs=inputs, params={**eqn.params, "dimension_numbers": dims})


# --- common-subexpression elimination ------------------------------------------------------------


def _atom_key(atom):
    if type(atom) is Literal:
        return ("lit", atom.aval.dtype.str, atom.val.tobytes())
    return ("var", id(atom))


def _params_key(params: dict):
    try:
        key = tuple(sorted(params.items()))
        hash(key)
        return key
    except TypeError:
        return None  # unhashable params (programs, callables): never merged


def eliminate_common_subexpressions(jaxpr: Jaxpr) -> Jaxpr:
    """Compute each (primitive, inputs, params) once; later repeats reuse the first result."""
    seen: dict[tuple, list[Var]] = {}
    subst: dict[Var, object] = {}
    eqns = []

    def read(atom):
        return subst.get(atom, atom) if type(atom) is Var else atom

    for eqn in jaxpr.eqns:
        inputs = [read(a) for a in eqn.inputs]
        eqn = eqn._replace(inputs=inputs)
        params_key = _params_key(eqn.params)
        key = None
        if params_key is not None and eqn.primitive.name not in _IMPURE:
            key = (eqn.primitive, tuple(_atom_key(a) for a in inputs), params_key)
        if key is not None and key in seen:
            subst.update(zip(eqn.outvars, seen[key]))
            continue
        if key is not None:
            seen[key] = eqn.outvars
        eqns.append(eqn)
    return Jaxpr(jaxpr.constvars, jaxpr.invars, eqns, [read(a) for a in jaxpr.outvars])


# Primitives whose repeated evaluation must not be merged (none of the pure ones so far).
_IMPURE: set[str] = set()


# --- dead-code elimination -----------------------------------------------------------------------


def eliminate_dead_code(jaxpr: Jaxpr, consts: list) -> tuple[Jaxpr, list]:
    """Drop equations whose outputs are never used, and constants nothing reads."""
    return core.eliminate_dead_code(jaxpr, consts, keep=_is_impure)


def _is_impure(eqn: Eqn) -> bool:
    return eqn.primitive.name in _IMPURE
