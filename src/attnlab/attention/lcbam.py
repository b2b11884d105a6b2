"""CBAM: Convolutional Block Attention Module (Woo et al., ECCV 2018), https://arxiv.org/abs/1807.06521,
in timm's light variant (``LightCbamModule``; it has no paper of its own).

CBAM pools twice at each step and runs each pooled descriptor through its layers: the channel MLP
sees the average- and the max-pooled vectors, the spatial conv a two-channel [mean; max] map. The light
variant averages the two pooled descriptors first, so each step has one:

* channel: d = (avgpool(x) + maxpool(x)) / 2 (N, C); Mc = gate(W2 act(W1 d)) (N, C); x1 = x * Mc;
* spatial: s = (mean_C(x1) + max_C(x1)) / 2 (N, 1, H, W); Ms = gate(BN(conv_kxk(s))) (a 1 -> 1 conv, no
  bias, then BatchNorm); out = x1 * Ms.

Layer names follow timm (``channel.fc1``, ``channel.fc2``, ``spatial.conv.conv``, ``spatial.conv.bn``), so
its weights load. Where timm differs: its light channel gate is always a sigmoid whatever ``gate_layer``
says and its light spatial gate takes no gate argument; here ``gate`` sets both. Its hidden width rounds
C/r to the nearest int; here it is ``max(min_channels, C // r)`` as for every attnlab module (the same
wherever r divides C).
"""

from __future__ import annotations

from collections import OrderedDict

import torch.nn.functional as F
from torch import Tensor, nn

from ._conv import same_conv2d
from ._groups import check_odd_kernel
from ._layers import ActLike, apply_act, make_act
from ._ops import batch_norm, reduce_dim
from .base import AttentionModule, reduced_channels
from .registry import register_attention

__all__ = ["LightCBAM"]


class _LightChannel(nn.Module):
    """Mc = gate(W2 act(W1 d)) on the mean of the average- and max-pooled descriptors (N, C)."""

    def __init__(self, channels: int, hidden: int, bias: bool, act: ActLike, gate: nn.Module) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=bias)
        self.act = make_act(act, "relu")
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=bias)
        self.gate = gate

    def forward(self, x: Tensor) -> Tensor:
        """Mc (N, C) of x (N, C, H, W)."""
        d = 0.5 * (x.mean((2, 3)) + x.amax((2, 3)))  # (N, C)
        h = apply_act(self.act, F.linear(d, self.fc1.weight.flatten(1), self.fc1.bias))  # (N, C) -> (N, hidden)
        return apply_act(self.gate, F.linear(h, self.fc2.weight.flatten(1), self.fc2.bias))  # -> (N, C)


class _LightSpatial(nn.Module):
    """Ms = gate(BN(conv(s))) on the mean of the channel-mean and channel-max maps s (N, 1, H, W)."""

    def __init__(self, kernel_size: int, gate: nn.Module) -> None:
        super().__init__()
        conv = nn.Conv2d(1, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.conv = nn.Sequential(OrderedDict(conv=conv, bn=nn.BatchNorm2d(1)))
        self.gate = gate

    def forward(self, x: Tensor) -> Tensor:
        """Ms (N, 1, H, W) of x (N, C, H, W)."""
        s = 0.5 * (reduce_dim(x, "mean", 1) + reduce_dim(x, "amax", 1))[:, None]  # (N, H, W) -> (N, 1, H, W)
        return apply_act(self.gate, batch_norm(self.conv.bn, same_conv2d(s, self.conv.conv.weight)))


@register_attention("lcbam")
class LightCBAM(AttentionModule):
    """Light CBAM: CBAM's channel then spatial attention, each on one averaged avg/max descriptor.

    Args:
        channels: input channels C.
        reduction: MLP reduction ratio r (16); hidden width ``max(min_channels, C // r)``.
        kernel_size: odd size k of the spatial conv (7).
        min_channels: minimum MLP hidden width (1).
        act: MLP hidden activation (name, class or callable), default ReLU.
        gate: gate of both steps, default sigmoid.
        mlp_bias: biases in the MLP (timm's default: none).

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records channel weights Mc (N, C) and the spatial mask Ms (N, 1, H, W).

    Parameters: 2*C*(C//r) + k*k + 2 (MLP without biases, the spatial conv, its BN's scale and shift).
    """

    paper = "Woo et al., CBAM, ECCV 2018; light variant of timm (one averaged avg/max descriptor per step)"
    param_formula = "2*C*(C//r) + k*k + 2  (r=16, k=7)"
    preserves_channels_last = True

    def __init__(self, channels: int, reduction: float = 16, kernel_size: int = 7, min_channels: int = 1,
                 act: ActLike = None, gate: ActLike = None, mlp_bias: bool = False) -> None:
        super().__init__(channels)
        check_odd_kernel(kernel_size, "light CBAM kernel_size")
        hidden = reduced_channels(channels, reduction, min_channels)
        self.channel = _LightChannel(channels, hidden, mlp_bias, act, make_act(gate, "sigmoid"))
        self.spatial = _LightSpatial(kernel_size, make_act(gate, "sigmoid"))

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        mc = self.channel(x)  # (N, C)
        x1 = x * mc[:, :, None, None]
        ms = self.spatial(x1)  # (N, 1, H, W)
        if self.attention_sink is not None:
            self._emit(channel=mc, spatial=ms)
        return x1 * ms
