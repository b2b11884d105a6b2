"""Concurrent Spatial and Channel Squeeze & Excitation in Fully Convolutional Networks (Roy et al., MICCAI 2018),
https://arxiv.org/abs/1803.02579.

Two gates recalibrate the same input concurrently and their outputs are added:

* cSE: c = sigmoid(FC_2(ReLU(FC_1(avgpool(x))))) (N, C), FC_1: C -> C/r, FC_2: C/r -> C (as SE);
* sSE: s = sigmoid(conv1x1_{C->1}(x)) (N, 1, H, W);
* out = x * c + x * s, computed as x * (c + s): the broadcast sum is built once, in x's memory
  format, and x is read by the pooling, the 1x1 conv and the final product only.

Parameter names follow the authors' code (``ai-med/squeeze_and_excitation``: ``cSE.fc1``,
``cSE.fc2``, ``sSE.conv``), so its checkpoints load. (Later versions of that code combine the two
with ``max``; this module follows the paper, the sum.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._dispatch import tracing
from ._layers import ActLike, apply_act, make_act
from ._ops import sum_like
from .base import AttentionModule, reduced_channels
from .registry import register_attention

__all__ = ["SCSE"]


@register_attention("scse")
class SCSE(AttentionModule):
    """Concurrent spatial and channel squeeze & excitation (scSE).

    Args:
        channels: input channels C.
        reduction: cSE bottleneck ratio r (16); hidden width h = ``max(min_channels, C // r)``.
        min_channels: minimum hidden width (1).
        act: cSE hidden activation (name, class or callable), default ReLU.
        gate: gate of both cSE and sSE, default sigmoid.

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records channel = c (N, C) and spatial = s (N, 1, H, W).

    Parameters: 2*C*h + h + 2*C + 1 (two linear layers and the 1x1 conv, all with biases).
    """

    paper = ("Roy et al., Concurrent Spatial and Channel Squeeze & Excitation in Fully Convolutional Networks, "
             "MICCAI 2018")
    param_formula = "2*C*(C//r) + C//r + 2*C + 1  (r=16)"
    preserves_channels_last = True

    def __init__(self, channels: int, reduction: float = 16, min_channels: int = 1, act: ActLike = None,
                 gate: ActLike = None) -> None:
        super().__init__(channels)
        hidden = reduced_channels(channels, reduction, min_channels)
        self.hidden = hidden
        self.cSE = nn.ModuleDict({"fc1": nn.Linear(channels, hidden), "fc2": nn.Linear(hidden, channels)})
        self.sSE = nn.ModuleDict({"conv": nn.Conv2d(channels, 1, 1)})
        self.act = make_act(act, "relu")
        self.gate = make_act(gate, "sigmoid")

    def channel_weights(self, x: Tensor) -> Tensor:
        """c (N, C) of x (N, C, H, W)."""
        fc1, fc2 = self.cSE["fc1"], self.cSE["fc2"]
        h = apply_act(self.act, F.linear(x.mean((2, 3)), fc1.weight, fc1.bias))  # (N, C) -> (N, h)
        return apply_act(self.gate, F.linear(h, fc2.weight, fc2.bias))  # (N, h) -> (N, C)

    def spatial_weights(self, x: Tensor) -> Tensor:
        """s (N, 1, H, W) of x (N, C, H, W)."""
        conv = self.sSE["conv"]
        return apply_act(self.gate, F.conv2d(x, conv.weight, conv.bias))

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        c = self.channel_weights(x)  # (N, C)
        s = self.spatial_weights(x)  # (N, 1, H, W)
        if self.attention_sink is not None:
            self._emit(channel=c, spatial=s)
        att = sum_like(x, c[:, :, None, None], s)  # (N, C, H, W), laid out like x
        if not torch.is_grad_enabled() and not tracing():
            return att.mul_(x)
        return x * att

    def extra_repr(self) -> str:
        return f"channels={self.channels}, hidden={self.hidden}"
