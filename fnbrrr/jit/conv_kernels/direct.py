"""Convolutions as plain loops: integer dtypes, tiny problems, no BLAS.

The common case calls one precompiled helper (`conv_direct`, up to 3 spatial axes); more
spatial axes than that (rare) get loops generated for the equation.
"""

from __future__ import annotations

from collections import namedtuple

import numba
from numba.np.unsafe.ndarray import to_fixed_tuple

from fnbrrr.jit.conv_kernels.calls import Buffer, array_at, c_helper, emit_helper_call
from fnbrrr.jit.conv_kernels.geometry import ConvGeometry
from fnbrrr.jit.conv_kernels.loops import NEST, POSITION_FIELDS, flat, inside, u, undilate
from fnbrrr.jit.conv_kernels.source import affine, dilated
from fnbrrr.jit.lowering import literal

# Extents (out batch, groups, out features per group, in features, k0..k2, y0..y2), lhs
# strides (batch, feature, x0..x2) and per-group offsets (batch, feature), rhs strides (out,
# in, k0..k2), out strides (batch, feature, y0..y2), then the position fields.
ConvDirectGeo = namedtuple("ConvDirectGeo", (
    "n_b", "n_g", "n_o", "n_i", "n_k0", "n_k1", "n_k2", "n_y0", "n_y1", "n_y2",
    "l_b", "l_f", "l0", "l1", "l2", "g_b", "g_f", "r_o", "r_i", "r0", "r1", "r2",
    "t_b", "t_o", "t0", "t1", "t2", *POSITION_FIELDS))
CONV_DIRECT_SIZE = len(ConvDirectGeo._fields)


@numba.njit(**NEST)
def conv_direct(lhs_array, rhs_array, out_array, zero, g):
    """A convolution as plain loops; `g` a `ConvDirectGeo`."""
    lhs, rhs, out = flat(lhs_array), flat(rhs_array), flat(out_array)
    for b in range(g.n_b):
        for grp in range(g.n_g):
            for o in range(g.n_o):
                oo = grp * g.n_o + o
                for y0 in range(g.n_y0):
                    for y1 in range(g.n_y1):
                        for y2 in range(g.n_y2):
                            acc = zero
                            for i in range(g.n_i):
                                lhs_base = (b + grp * g.g_b) * g.l_b + (i + grp * g.g_f) * g.l_f
                                rhs_base = oo * g.r_o + i * g.r_i
                                for k0 in range(g.n_k0):
                                    p0 = y0 * g.st0 + k0 * g.rd0 - g.lo0
                                    if not inside(p0, g.L0, g.ld0):
                                        continue
                                    for k1 in range(g.n_k1):
                                        p1 = y1 * g.st1 + k1 * g.rd1 - g.lo1
                                        if not inside(p1, g.L1, g.ld1):
                                            continue
                                        for k2 in range(g.n_k2):
                                            p2 = y2 * g.st2 + k2 * g.rd2 - g.lo2
                                            if not inside(p2, g.L2, g.ld2):
                                                continue
                                            x = (lhs_base + undilate(p0, g.ld0) * g.l0
                                                 + undilate(p1, g.ld1) * g.l1
                                                 + undilate(p2, g.ld2) * g.l2)
                                            w = rhs_base + k0 * g.r0 + k1 * g.r1 + k2 * g.r2
                                            acc += lhs[u(x)] * rhs[u(w)]
                            out[u(b * g.t_b + oo * g.t_o + y0 * g.t0 + y1 * g.t1
                                  + y2 * g.t2)] = acc


@c_helper("conv_direct", "iiiiiiTi")
def c_conv_direct(lhs, n_lhs, rhs, n_rhs, out, n_out, zero, geo):
    """The C-ABI wrapper of `conv_direct` (see `calls`)."""
    g = ConvDirectGeo(*to_fixed_tuple(array_at(geo, CONV_DIRECT_SIZE, geo), CONV_DIRECT_SIZE))
    conv_direct(array_at(lhs, n_lhs, zero), array_at(rhs, n_rhs, zero),
                array_at(out, n_out, zero), zero, g)


def direct_conv(ctx, code, geom: ConvGeometry, dtype, ins, out) -> None:
    """Emit a `conv_direct` call: out = lhs (*) rhs, for up to 3 spatial axes."""
    g = geom.padded()
    group_batch = g.out_batch if g.batch_groups and g.groups > 1 else 0
    group_feature = g.in_features if not g.batch_groups and g.groups > 1 else 0
    geo = ConvDirectGeo(g.out_batch, g.groups, g.group_out, g.in_features, *g.kernel,
                        *g.out_sizes, *g.lhs_strides, group_batch, group_feature,
                        *g.rhs_strides, *g.out_strides, *g.position_fields())
    emit_helper_call(ctx, code, "conv_direct", dtype,
                     [Buffer(ins[0]), Buffer(ins[1]), Buffer(out), literal(0, dtype)], geo)


def generated_direct_conv(eqn, ctx, code, geom: ConvGeometry, dtype, ins, out) -> None:
    """Loops generated for this equation: more spatial axes than the helpers take (rare)."""
    lhs, rhs, outf = (ctx.fresh("flat") for _ in range(3))
    for view, name, atom in ((lhs, ins[0], eqn.inputs[0]), (rhs, ins[1], eqn.inputs[1]),
                             (outf, out, eqn.outvars[0])):
        code(f"{view} = {name}.reshape({atom.aval.size})")
    b, g, o, i, acc = (ctx.fresh(p) for p in ("b", "g", "o", "i", "acc"))
    ys = [ctx.fresh("y") for _ in range(geom.nsp)]
    tb, to, *ty = geom.out_strides
    sb, sf, *ss = geom.lhs_strides
    so, si, *sk = geom.rhs_strides
    with code.block(f"for {b} in range({geom.out_batch}):"), \
            code.block(f"for {g} in range({geom.groups}):"), \
            code.block(f"for {o} in range({geom.group_out}):"):
        oo = affine((g, geom.group_out), (o, 1))
        depth = code.depth
        for y, n in zip(ys, geom.out_sizes):
            code(f"for {y} in range({n}):")
            code.depth += 1
        code(f"{acc} = {literal(0, dtype)}")
        lhs_terms = [(geom.lhs_batch(g, b), sb), (geom.lhs_feature(g, i), sf)]
        rhs_terms = [(oo, so), (i, si)]
        with code.block(f"for {i} in range({geom.in_features}):"):
            inner = code.depth
            for j in range(geom.nsp):
                k, pos = ctx.fresh("k"), ctx.fresh("p")
                code(f"for {k} in range({geom.kernel[j]}):")
                code.depth += 1
                moved = affine((ys[j], geom.strides[j]), (k, geom.rhs_dilation[j]))
                code(f"{pos} = {moved} - {geom.pad_lo[j]}")
                size = dilated(geom.in_sizes[j], geom.lhs_dilation[j])
                code(f"if 0 <= {pos} < {size} and {pos} % {geom.lhs_dilation[j]} == 0:")
                code.depth += 1
                lhs_terms.append((f"({pos} // {geom.lhs_dilation[j]})", ss[j]))
                rhs_terms.append((k, sk[j]))
            code(f"{acc} += {lhs}[{affine(*lhs_terms)}] * {rhs}[{affine(*rhs_terms)}]")
            code.depth = inner
        target = affine((b, tb), (oo, to), *zip(ys, ty))
        code(f"{outf}[{target}] = {acc}")
        code.depth = depth
