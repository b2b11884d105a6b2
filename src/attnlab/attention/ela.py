"""ELA: Efficient Local Attention for Deep Convolutional Neural Networks (Xu & Wan, 2024),
https://arxiv.org/abs/2403.01123.

Coordinate attention without its channel reduction and BatchNorm: x is average-pooled along W to the
strip x_h (N, C, H) and along H to x_w (N, C, W); one 1-D convolution (kernel k, shared by both
directions, no bias) and one GroupNorm (also shared) process each strip; a sigmoid gives the gates
a_h (N, C, H) and a_w (N, C, W), and out = x * a_h[..., None] * a_w[..., None, :]. Each channel's gate
map is thus the outer product of an H-strip gate and a W-strip gate (rank one).

The paper's four configurations (``variant``), with its names:

=====  ====  ==================  ===============  ============
name   k     conv groups         GroupNorm groups  parameters
=====  ====  ==================  ===============  ============
T      5     C (depthwise)       32               7C
B      7     C (depthwise)       16               9C
S      5     C / 8               16               42C
L      7     C / 8               16               58C
=====  ====  ==================  ===============  ============

A group count that does not divide C is lowered to the nearest count that does (e.g. 32 GroupNorm
groups at C = 16 become 16); explicit ``groups``/``num_groups`` must divide C. Layer names are those of the
paper's code listing (``conv``, ``gn``). Where a group holds a single value (a 1-long strip with one channel
per GroupNorm group), GroupNorm gives its bias (the value normalises to 0); torch's ``group_norm`` refuses
that input.

timm's ``EfficientLocalAttn`` (in its ``coord_attn.py``, which cites this paper's arXiv number under
another paper's title) differs: separate convs and norms for the two directions, GroupNorm with one
group, a SiLU before the sigmoid. This module follows the paper.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ._directional import DirectionalAttention
from ._groups import check_groups, check_odd_kernel, divisor_at_most
from ._layers import ActLike, make_act
from ._ops import gate_, reduce_dim
from .registry import register_attention

__all__ = ["EfficientLocalAttention", "ELA_VARIANTS"]

#: the paper's configurations: kernel size, conv group width (1: depthwise), GroupNorm groups
ELA_VARIANTS: dict[str, tuple[int, int, int]] = {"T": (5, 1, 32), "B": (7, 1, 16), "S": (5, 8, 16), "L": (7, 8, 16)}


@register_attention("ela")
class EfficientLocalAttention(DirectionalAttention):
    """Efficient Local Attention: 1-D conv, GroupNorm and sigmoid on the H and W strips.

    Args:
        channels: input channels C.
        variant: the paper's configuration, ``"T"``, ``"B"`` (default), ``"S"`` or ``"L"`` (table above).
        kernel_size: odd k of the 1-D conv, or None for the variant's.
        groups: groups of the 1-D conv (C: depthwise), or None for the variant's.
        num_groups: GroupNorm groups, or None for the variant's.
        gate: gating function, default sigmoid.

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records spatial = mean over C of a_h * a_w (N, 1, H, W) and
        channel = mean over positions of a_h * a_w (N, C).

    Raises:
        ValueError: for an unknown variant, an even kernel or group counts that do not divide C.

    Parameters: C * (C / groups) * k + 2C (the conv without bias, GroupNorm's scale and shift).
    """

    paper = "Xu & Wan, ELA: Efficient Local Attention for Deep CNNs, arXiv 2024"
    param_formula = "C*(C/g)*k + 2*C  (ELA-B: k=7, g=C -> 9*C)"
    preserves_channels_last = True

    def __init__(self, channels: int, variant: str = "B", kernel_size: int | None = None, groups: int | None = None,
                 num_groups: int | None = None, gate: ActLike = None) -> None:
        super().__init__(channels)
        if variant not in ELA_VARIANTS:
            raise ValueError(f"unknown ELA variant {variant!r}; choose one of {', '.join(ELA_VARIANTS)}")
        k, width, gn = ELA_VARIANTS[variant]
        k = k if kernel_size is None else kernel_size
        check_odd_kernel(k, "ELA kernel_size")
        groups = divisor_at_most(channels, max(1, channels // width)) if groups is None else groups
        num_groups = divisor_at_most(channels, gn) if num_groups is None else num_groups
        self.variant = variant
        groups = check_groups(channels, groups, "ELA groups")
        self.conv = nn.Conv1d(channels, channels, k, padding=k // 2, groups=groups, bias=False)
        self.gn = nn.GroupNorm(check_groups(channels, num_groups, "ELA num_groups"), channels)
        self.gate = make_act(gate, "sigmoid")

    def strip_gate(self, strip: Tensor) -> Tensor:
        """gate(GN(conv(strip))): (N, C, L) -> (N, C, L), for the H strip or the W strip."""
        conv, gn = self.conv, self.gn
        y = F.conv1d(strip, conv.weight, None, padding=conv.padding, groups=conv.groups)
        if y.shape[1] // gn.num_groups * y.shape[2] == 1:  # one value per group (a 1-long strip, 1-channel groups):
            # normalised to 0, so GN gives its bias (torch's group_norm refuses such an input)
            return gate_(self.gate, y * (0 * gn.weight[:, None]) + gn.bias[:, None])
        return gate_(self.gate, F.group_norm(y, gn.num_groups, gn.weight, gn.bias, gn.eps))

    def weights(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """a_h (N, C, H) and a_w (N, C, W) of x (N, C, H, W)."""
        return self.strip_gate(reduce_dim(x, "mean", 3)), self.strip_gate(reduce_dim(x, "mean", 2))

    def extra_repr(self) -> str:
        c = self.conv
        return (f"channels={self.channels}, variant={self.variant!r}, kernel_size={c.kernel_size[0]}, "
                f"groups={c.groups}, num_groups={self.gn.num_groups}")
