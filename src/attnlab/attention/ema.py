"""Efficient Multi-Scale Attention Module with Cross-Spatial Learning (Ouyang et al., ICASSP 2023),
https://arxiv.org/abs/2305.13563.

EMA reshapes the C channels into G groups of c' = C/G channels, treated as G samples, and computes
one spatial gate per group from two parallel branches that share parameters across groups:

* 1x1 branch: the group is average-pooled along W to (c', H) and along H to (c', W); a shared 1x1
  conv (c' -> c', with bias) mixes the concatenation (c', H + W); its two parts go through sigmoids
  and re-weight the group, x1 = GN(x * sigmoid(a_h) * sigmoid(a_w)), GN a GroupNorm with one group
  per channel (each channel normalised over H x W) with its own affine weight and bias (computed
  here from its statistics, so a 1 x 1 map in a batch of one, which torch's GroupNorm refuses, is accepted);
* 3x3 branch: x2 = conv3x3(x) (c' -> c', padding 1, with bias);
* cross-spatial learning: each branch's global average (c',) through a softmax over the c' channels
  weights the other branch's map, M = softmax(avg(x1)) . x2 + softmax(avg(x2)) . x1 (H, W);
* out = x * sigmoid(M), the same (H, W) gate for every channel of the group.

Parameter names follow the official code (``YOLOonMe/EMA-attention-module``: ``conv1x1``, ``conv3x3``,
``gn``), so its checkpoints load. The official ``factor`` (G) is 32, used where C is a multiple of 32;
with ``groups=None`` the module takes the largest divisor of C not above 32 (C = 16 -> 16 groups).

Parameters: 10*c'^2 + 4*c' with c' = C/G (1x1 conv c'^2 + c', 3x3 conv 9c'^2 + c', GN 2c'), e.g.
672 at C = 256, G = 32: independent of C at a fixed group width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._layers import ActLike, apply_act, make_act
from .base import AttentionModule
from .registry import register_attention

__all__ = ["EfficientMultiScaleAttention"]


def _default_groups(channels: int, preferred: int = 32) -> int:
    """The largest divisor of ``channels`` not above ``preferred``."""
    return next(g for g in range(min(preferred, channels), 0, -1) if channels % g == 0)


@register_attention("ema")
class EfficientMultiScaleAttention(AttentionModule):
    """Efficient multi-scale attention (EMA).

    Args:
        channels: input channels C.
        groups: number of groups G (the official ``factor``; must divide C); None: 32 where it
            divides C, else the largest divisor of C below 32.
        eps: the GroupNorm epsilon (1e-5).
        gate: the gate of the module (the paper's sigmoid, at its three places: a_h, a_w and M).

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records spatial = the mean over the groups of sigmoid(M)
        (N, 1, H, W) and channel = the mean over positions of each channel's gate (N, C; equal within
        a group), and ``extra["group_gates"]`` = sigmoid(M) per group (N, G, H, W).

    Raises:
        ValueError: for a ``groups`` that does not divide C.

    Parameters: 10*c'^2 + 4*c', c' = C/G.
    """

    paper = "Ouyang et al., Efficient Multi-Scale Attention Module with Cross-Spatial Learning, ICASSP 2023"
    param_formula = "10*c'^2 + 4*c', c' = C/G  (G=32)"

    def __init__(self, channels: int, groups: int | None = None, eps: float = 1e-5, gate: ActLike = None) -> None:
        super().__init__(channels)
        if groups is None:
            groups = _default_groups(channels)
        elif isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or channels % groups:
            raise ValueError(f"EMA reshapes the channels into groups: groups must divide channels, got "
                             f"channels={channels}, groups={groups!r}; try groups={_default_groups(channels)}")
        self.groups = groups
        cg = channels // groups
        self.gn = nn.GroupNorm(cg, cg, eps=eps)
        self.conv1x1 = nn.Conv2d(cg, cg, 1)
        self.conv3x3 = nn.Conv2d(cg, cg, 3, padding=1)
        self.gate = make_act(gate, "sigmoid")

    def group_gates(self, x: Tensor) -> Tensor:
        """sigmoid(M) (N*G, H, W) of x (N, C, H, W), and nothing else computed twice."""
        n, c, h, w = x.shape
        gx = x.reshape(n * self.groups, c // self.groups, h, w)  # (NG, c', H, W)
        hw = torch.cat([gx.mean(3), gx.mean(2)], dim=2)  # (NG, c', H) ++ (NG, c', W) -> (NG, c', H+W)
        hw = F.conv1d(hw, self.conv1x1.weight.flatten(2), self.conv1x1.bias)  # the shared 1x1 conv
        a_h = apply_act(self.gate, hw[:, :, :h])[:, :, :, None]  # (NG, c', H, 1)
        a_w = apply_act(self.gate, hw[:, :, h:])[:, :, None, :]  # (NG, c', 1, W)
        y = gx * a_h * a_w
        var, mean = torch.var_mean(y, dim=(2, 3), unbiased=False, keepdim=True)  # GN, one group per channel
        scale = self.gn.weight.view(-1, 1, 1) * torch.rsqrt(var + self.gn.eps)  # (NG, c', 1, 1)
        x1 = y * scale + (self.gn.bias.view(-1, 1, 1) - mean * scale)
        x2 = F.conv2d(gx, self.conv3x3.weight, self.conv3x3.bias, padding=1)  # (NG, c', H, W)
        s1 = x1.mean((2, 3)).softmax(1)  # (NG, c')
        s2 = x2.mean((2, 3)).softmax(1)
        m = torch.einsum("bc,bchw->bhw", s1, x2) + torch.einsum("bc,bchw->bhw", s2, x1)  # (NG, H, W)
        return apply_act(self.gate, m)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        n, c, h, w = x.shape
        g = self.group_gates(x)  # (NG, H, W)
        out = x.reshape(n * self.groups, c // self.groups, h, w) * g[:, None]
        if self.attention_sink is not None:
            gg = g.view(n, self.groups, h, w)
            channel = gg.mean((2, 3)).repeat_interleave(c // self.groups, dim=1)  # (N, G) -> (N, C)
            self._emit(channel=channel, spatial=gg.mean(1, keepdim=True), group_gates=gg)
        return out.view(n, c, h, w)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, groups={self.groups}"
