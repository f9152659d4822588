"""The geometry of a convolution equation: sizes and element strides by role."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from fnbrrr.jit.conv_kernels.loops import SPATIAL
from fnbrrr.jit.conv_kernels.source import affine, contiguous_strides, dilated, same_strides


@dataclass(frozen=True)
class ConvGeometry:
    """Sizes and element strides of one convolution equation, by role.

    Spatial fields have one entry per spatial axis in `dimension_numbers` order; `padded()`
    gives the 3-axis form the helpers take.
    """

    batch: int  # lhs batch N
    features: int  # lhs features (in_features * groups, unless the groups split the batch)
    out_batch: int  # N / batch_group_count
    in_features: int  # rhs in-feature size I (per group)
    out_features: int  # O
    groups: int  # feature_group_count * batch_group_count
    batch_groups: bool  # the groups split the batch (True) or the features (False)
    in_sizes: tuple  # X_j
    kernel: tuple  # K_j
    out_sizes: tuple  # Y_j
    strides: tuple
    pad_lo: tuple
    lhs_dilation: tuple
    rhs_dilation: tuple
    lhs_strides: tuple  # (batch, feature, *spatial) element strides of lhs
    rhs_strides: tuple  # (out, in, *spatial) of rhs
    out_strides: tuple  # (batch, feature, *spatial) of the output
    rhs_order: tuple  # rhs roles in memory order: "o", "i", or a spatial index j

    nsp = property(lambda self: len(self.kernel))
    group_out = property(lambda self: self.out_features // self.groups)
    window = property(lambda self: math.prod(self.kernel))
    positions = property(lambda self: math.prod(self.out_sizes))
    in_positions = property(lambda self: math.prod(self.in_sizes))

    def padded(self) -> ConvGeometry:
        """The same convolution with leading spatial axes of size 1 up to 3 axes."""
        n = SPATIAL - self.nsp

        def lead(values, fill):
            return (fill,) * n + tuple(values)

        order = []
        for r in self.rhs_order:  # size-1 axes go right after "o": they never end a run
            order.append(r + n if isinstance(r, int) else r)
            if r == "o":
                order.extend(range(n))
        return replace(
            self, in_sizes=lead(self.in_sizes, 1), kernel=lead(self.kernel, 1),
            out_sizes=lead(self.out_sizes, 1), strides=lead(self.strides, 1),
            pad_lo=lead(self.pad_lo, 0), lhs_dilation=lead(self.lhs_dilation, 1),
            rhs_dilation=lead(self.rhs_dilation, 1),
            lhs_strides=self.lhs_strides[:2] + lead(self.lhs_strides[2:], 0),
            rhs_strides=self.rhs_strides[:2] + lead(self.rhs_strides[2:], 0),
            out_strides=self.out_strides[:2] + lead(self.out_strides[2:], 0),
            rhs_order=tuple(order))

    def lhs_batch(self, g: str, b: str) -> str:
        """The lhs batch index of output image `b` in group `g` (expressions)."""
        if self.batch_groups and self.groups > 1:
            return affine((g, self.out_batch), (b, 1))
        return b

    def lhs_feature(self, g: str, i: str) -> str:
        """The lhs feature index of in-feature `i` of group `g` (expressions)."""
        if not self.batch_groups and self.groups > 1:
            return affine((g, self.in_features), (i, 1))
        return i

    def position_fields(self) -> list:
        """Per spatial axis: strides, kernel dilations, low pads, dilated sizes, dilations."""
        sizes = [dilated(x, d) for x, d in zip(self.in_sizes, self.lhs_dilation)]
        return [*self.strides, *self.rhs_dilation, *self.pad_lo, *sizes, *self.lhs_dilation]


def conv_geometry(eqn) -> ConvGeometry:
    """The `ConvGeometry` of a conv_general_dilated equation."""
    lhs, rhs = (a.aval for a in eqn.inputs)
    out = eqn.outvars[0].aval
    p = eqn.params
    lhs_spec, rhs_spec, out_spec = p["dimension_numbers"]
    ls, rs, os_ = (contiguous_strides(a.shape) for a in (lhs, rhs, out))
    roles = {rhs_spec[0]: "o", rhs_spec[1]: "i"}
    roles.update({a: j for j, a in enumerate(rhs_spec[2:])})
    fgc, bgc = p["feature_group_count"], p["batch_group_count"]
    return ConvGeometry(
        batch=lhs.shape[lhs_spec[0]], features=lhs.shape[lhs_spec[1]],
        out_batch=out.shape[out_spec[0]], in_features=rhs.shape[rhs_spec[1]],
        out_features=rhs.shape[rhs_spec[0]], groups=fgc * bgc, batch_groups=bgc > 1,
        in_sizes=tuple(lhs.shape[a] for a in lhs_spec[2:]),
        kernel=tuple(rhs.shape[a] for a in rhs_spec[2:]),
        out_sizes=tuple(out.shape[a] for a in out_spec[2:]),
        strides=tuple(p["window_strides"]), pad_lo=tuple(lo for lo, _ in p["padding"]),
        lhs_dilation=tuple(p["lhs_dilation"]), rhs_dilation=tuple(p["rhs_dilation"]),
        lhs_strides=tuple(ls[a] for a in lhs_spec), rhs_strides=tuple(rs[a] for a in rhs_spec),
        out_strides=tuple(os_[a] for a in out_spec),
        rhs_order=tuple(roles[a] for a in range(rhs.ndim)))


def lhs_matrix_form(geom: ConvGeometry) -> str | None:
    """How one image of lhs reads as a matrix: "FX" (features x positions), "XF", or None."""
    _, sf, *ss = geom.lhs_strides
    spatial = contiguous_strides(geom.in_sizes)
    if same_strides(ss, spatial, geom.in_sizes):
        return "FX"
    if sf == 1 and same_strides(ss, [s * geom.features for s in spatial], geom.in_sizes):
        return "XF"
    return None


def role_size(geom: ConvGeometry, role) -> int:
    """The extent of a kernel role: "o" (out features), "i" (in features) or spatial axis j."""
    if role == "o":
        return geom.out_features
    if role == "i":
        return geom.in_features
    return geom.kernel[role]
