"""Squeeze-and-Excitation Networks (Hu et al., CVPR 2018), https://arxiv.org/abs/1709.01507.

out = x * sigmoid(W2 relu(W1 avgpool(x) + b1) + b2): a channel gate from global average pooling
through a bottleneck MLP of width max(min_channels, C // reduction).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ._layers import ActLike, apply_act, make_act
from .base import reduced_channels
from .channel_gate import ChannelGateModule
from .registry import register_attention

__all__ = ["SqueezeExcitation"]


@register_attention("se")
class SqueezeExcitation(ChannelGateModule):
    """Squeeze-and-Excitation block.

    Args:
        channels: input channels C.
        reduction: bottleneck ratio r; hidden width is ``max(min_channels, C // r)``.
        min_channels: minimum hidden width (default 1, so the paper's C // r is kept wherever it is >= 1).
        act: hidden activation (name, class or callable), default ReLU.
        gate: gating function, default sigmoid.
        bias: biases in the two 1x1 convs (the paper's FC layers have them).

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records channel weights (N, C).

    Parameters: 2 * C * (C // r) + (C // r) + C with biases (the weights are stored as 1x1 convs,
    ``fc1``/``fc2``, the layout timm uses, so its SE checkpoints load).
    """

    paper = "Hu et al., Squeeze-and-Excitation Networks, CVPR 2018"
    param_formula = "2*C*(C//r) + C//r + C  (r=16)"

    def __init__(self, channels: int, reduction: float = 16, min_channels: int = 1, act: ActLike = None,
                 gate: ActLike = None, bias: bool = True) -> None:
        super().__init__(channels)
        hidden = reduced_channels(channels, reduction, min_channels)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=bias)
        self.act = make_act(act, "relu")
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=bias)
        self.gate = make_act(gate, "sigmoid")

    def weights(self, avg: Tensor, _max: Tensor | None = None) -> Tensor:
        """Channel weights (N, C) from the pooled descriptor (N, C)."""
        h = apply_act(self.act, F.linear(avg, self.fc1.weight.flatten(1), self.fc1.bias))
        return apply_act(self.gate, F.linear(h, self.fc2.weight.flatten(1), self.fc2.bias))

