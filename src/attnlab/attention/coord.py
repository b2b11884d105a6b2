"""Coordinate Attention for Efficient Mobile Network Design (Hou et al., CVPR 2021), https://arxiv.org/abs/2103.02907.

Channel attention that keeps one spatial coordinate: x is average-pooled along W to (N, C, H) and
along H to (N, C, W); the two are concatenated to (N, C, H+W), mixed by a shared 1x1 conv
C -> mip (mip = ``max(8, C // r)``, r = 32), BN and h-swish, split back, and mapped by two 1x1 convs
mip -> C to a_h (N, C, H) and a_w (N, C, W) through sigmoids. out = x * a_h * a_w.

The pooled descriptors are handled as 1-D sequences (N, C, L) rather than the official code's
(N, C, L, 1) images; parameter names follow the official code (``conv1``, ``bn1``, ``conv_h``,
``conv_w``), so its checkpoints load. The BN sees N * (H + W) >= 2 values per channel, so batch size
one trains normally.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._directional import DirectionalAttention
from ._layers import ActLike, apply_act, make_act
from ._ops import batch_norm, gate_, reduce_dim
from .base import reduced_channels
from .registry import register_attention

__all__ = ["CoordAttention"]


@register_attention("coord")
class CoordAttention(DirectionalAttention):
    """Coordinate attention block.

    Args:
        channels: input channels C.
        reduction: ratio r (32) of the shared 1x1 conv; its width is mip = ``max(min_channels, C // r)``.
        min_channels: minimum width of the shared conv (8, the paper's).
        act: activation after the shared conv's BN (name, class or callable), default h-swish.
        gate: gate of a_h and a_w, default sigmoid.

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records spatial = mean over C of a_h * a_w (N, 1, H, W) and
        channel = mean over positions of a_h * a_w (N, C).

    Parameters: 3*C*mip + 3*mip + 2*C (three 1x1 convs with biases, BN).
    """

    paper = "Hou et al., Coordinate Attention for Efficient Mobile Network Design, CVPR 2021"
    param_formula = "3*C*mip + 3*mip + 2*C, mip = max(8, C//r)  (r=32)"
    preserves_channels_last = True

    def __init__(self, channels: int, reduction: float = 32, min_channels: int = 8, act: ActLike = None,
                 gate: ActLike = None) -> None:
        super().__init__(channels)
        mip = reduced_channels(channels, reduction, min_channels)
        self.mip = mip
        self.conv1 = nn.Conv2d(channels, mip, 1)
        self.bn1 = nn.BatchNorm2d(mip)
        self.act = make_act(act, "hard_swish")
        self.conv_h = nn.Conv2d(mip, channels, 1)
        self.conv_w = nn.Conv2d(mip, channels, 1)
        self.gate = make_act(gate, "sigmoid")

    def weights(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """a_h (N, C, H) and a_w (N, C, W) of x (N, C, H, W)."""
        h = x.shape[2]
        y = torch.cat([reduce_dim(x, "mean", 3), reduce_dim(x, "mean", 2)], 2)  # (N, C, H) ++ (N, C, W) -> (N, C, H+W)
        y = F.conv1d(y, self.conv1.weight.flatten(2), self.conv1.bias)  # (N, mip, H+W)
        y = apply_act(self.act, batch_norm(self.bn1, y[..., None]))[..., 0]  # BN2d on the (N, mip, H+W, 1) view
        a_h = gate_(self.gate, F.conv1d(y[:, :, :h], self.conv_h.weight.flatten(2), self.conv_h.bias))  # (N, C, H)
        a_w = gate_(self.gate, F.conv1d(y[:, :, h:], self.conv_w.weight.flatten(2), self.conv_w.bias))  # (N, C, W)
        return a_h, a_w

    def extra_repr(self) -> str:
        return f"channels={self.channels}, mip={self.mip}"
