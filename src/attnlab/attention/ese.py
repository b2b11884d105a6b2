"""CenterMask: Real-Time Anchor-Free Instance Segmentation (Lee & Park, CVPR 2020), https://arxiv.org/abs/1911.06667.

Effective Squeeze-Excitation (eSE), the channel attention of VoVNetV2: SE with its two fully connected
layers (C -> C/r -> C) replaced by one (C -> C), so no channel information is lost to the reduction,
and a hard sigmoid as the gate:

    out = x * hsigmoid(W avgpool(x) + b),    hsigmoid(t) = relu6(t + 3) / 6 (``nn.Hardsigmoid``).

The FC is stored as a 1x1 conv named ``fc``, as in the authors' VoVNet code and timm's
``EffectiveSEModule``, so their weights load. (timm's ``add_maxpool`` option, marked experimental there
and not in the paper, is left out.)
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ._layers import ActLike, apply_act, make_act
from .channel_gate import ChannelGateModule
from .registry import register_attention

__all__ = ["EffectiveSE"]


@register_attention("ese")
class EffectiveSE(ChannelGateModule):
    """Effective Squeeze-Excitation: one C x C FC on the pooled descriptor, then a hard sigmoid.

    Args:
        channels: input channels C.
        gate: gating function (name, class or callable), default hard sigmoid (the paper's).
        bias: bias in the FC (the paper's and VoVNet's have one).

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records channel weights (N, C).

    Parameters: C * C + C (C * C without the bias).
    """

    paper = "Lee & Park, CenterMask: Real-Time Anchor-Free Instance Segmentation (eSE of VoVNetV2), CVPR 2020"
    param_formula = "C*C + C"

    def __init__(self, channels: int, gate: ActLike = None, bias: bool = True) -> None:
        super().__init__(channels)
        self.fc = nn.Conv2d(channels, channels, 1, bias=bias)
        self.gate = make_act(gate, "hard_sigmoid")

    def weights(self, avg: Tensor, _max: Tensor | None = None) -> Tensor:
        """Channel weights (N, C) from the pooled descriptor (N, C): gate(W avg + b)."""
        return apply_act(self.gate, F.linear(avg, self.fc.weight.flatten(1), self.fc.bias))
