"""CBAM: Convolutional Block Attention Module (Woo et al., ECCV 2018), https://arxiv.org/abs/1807.06521.

Channel attention: the spatial average- and max-pooled descriptors (N, C) go through one shared MLP
and are summed, Mc = sigmoid(MLP(avg) + MLP(max)). Spatial attention: the channel mean and channel
max maps (N, 1, H, W) go through a 7x7 conv, Ms = sigmoid(conv([mean; max])). CBAM applies them in
sequence: x1 = x * Mc(x), out = x1 * Ms(x1).

Seed versus official code
-------------------------
:class:`ChannelAttention` and :class:`SpatialAttention` follow the seed tutorial exactly: no biases
in the MLP (1x1 convs ``fc1``/``fc2``), no BN after the spatial conv (``conv1``), the spatial
descriptors concatenated as [mean; max], and both return the attention weights rather than the
product, so the seed's ``state_dict`` loads with ``strict=True``. The official CBAM code differs:
its MLP layers have biases (``mlp_bias=True``), its spatial conv is followed by BatchNorm
(``spatial_bn=True``), and it concatenates [max; mean]; pass ``variant="official"`` for the first
two (the [mean; max] channel order is kept, so an official checkpoint's spatial conv weight needs its
two input channels swapped).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._conv import same_conv2d
from ._dispatch import cbam_forward
from ._groups import check_odd_kernel
from .base import AttentionModule, check_channels, reduced_channels
from .registry import register_attention

__all__ = ["ChannelAttention", "SpatialAttention", "CBAM"]


class ChannelAttention(nn.Module):
    """CBAM's channel attention, drop-in compatible with the seed's ``ChannelAttention``.

    Args:
        in_planes: channels C.
        ratio: MLP reduction r; hidden width ``max(min_channels, C // r)``.
        bias: biases in the MLP (the official CBAM code has them; the seed does not).
        min_channels: minimum hidden width (1).

    Shape:
        (N, C, H, W) -> weights (N, C, 1, 1) in [0, 1] (the weights, not the product).
    """

    def __init__(self, in_planes: int, ratio: float = 16, bias: bool = False, min_channels: int = 1) -> None:
        super().__init__()
        check_channels(in_planes)
        hidden = reduced_channels(in_planes, ratio, min_channels)
        self.fc1 = nn.Conv2d(in_planes, hidden, 1, bias=bias)
        self.fc2 = nn.Conv2d(hidden, in_planes, 1, bias=bias)

    def weights(self, avg: Tensor, mx: Tensor) -> Tensor:
        """Channel weights (N, C) from the (N, C) average and max descriptors: one MLP pass on both."""
        n = avg.shape[0]
        d = torch.cat([avg, mx])  # (2N, C)
        h = F.relu(F.linear(d, self.fc1.weight.flatten(1), self.fc1.bias))  # (2N, hidden)
        o = F.linear(h, self.fc2.weight.flatten(1), self.fc2.bias)  # (2N, C)
        return torch.sigmoid(o[:n] + o[n:])

    def forward(self, x: Tensor) -> Tensor:
        return self.weights(x.mean((2, 3)), x.amax((2, 3)))[:, :, None, None]


class SpatialAttention(nn.Module):
    """CBAM's spatial attention, drop-in compatible with the seed's ``SpatialAttention``.

    Args:
        kernel_size: odd conv size (7 in the paper; 3 also common).
        bn: BatchNorm after the conv (official CBAM code) instead of nothing (seed).

    Shape:
        (N, C, H, W) -> map (N, 1, H, W) in [0, 1].
    """

    def __init__(self, kernel_size: int = 7, bn: bool = False) -> None:
        super().__init__()
        check_odd_kernel(kernel_size, "spatial kernel_size")
        self.conv1 = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        if bn:
            self.bn = nn.BatchNorm2d(1, momentum=0.01)

    def weights(self, mean: Tensor, mx: Tensor) -> Tensor:
        """Spatial map (N, 1, H, W) from the channel-mean and channel-max maps (N, 1, H, W)."""
        # (N, 2, H, W) -> (N, 1, H, W)
        y = same_conv2d(torch.cat([mean, mx], dim=1), self.conv1.weight, self.conv1.bias)
        if hasattr(self, "bn"):
            y = self.bn(y)
        return torch.sigmoid(y)

    def forward(self, x: Tensor) -> Tensor:
        return self.weights(x.mean(1, keepdim=True), x.amax(1, keepdim=True))


_VARIANTS = {"seed": dict(mlp_bias=False, spatial_bn=False), "official": dict(mlp_bias=True, spatial_bn=True)}


@register_attention("cbam")
class CBAM(AttentionModule):
    """Convolutional Block Attention Module: channel attention, then spatial attention.

    Args:
        channels: input channels C.
        reduction: MLP reduction ratio r (16).
        kernel_size: spatial conv size (7).
        variant: ``"seed"`` (no MLP biases, no spatial BN: parameters 2*C*(C//r) + 2*k*k) or
            ``"official"`` (biases and BN, as the authors' code).
        mlp_bias, spatial_bn: override the variant's choice individually.
        min_channels: minimum MLP hidden width (1).

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records channel weights Mc (N, C) and the spatial mask Ms (N, 1, H, W).
    """

    paper = "Woo et al., CBAM: Convolutional Block Attention Module, ECCV 2018"
    param_formula = "2*C*(C//r) + 2*k*k  (r=16, k=7)"

    def __init__(self, channels: int, reduction: float = 16, kernel_size: int = 7, variant: str = "seed",
                 mlp_bias: bool | None = None, spatial_bn: bool | None = None, min_channels: int = 1) -> None:
        super().__init__(channels)
        if variant not in _VARIANTS:
            raise ValueError(f"unknown CBAM variant {variant!r}; choose one of {sorted(_VARIANTS)}")
        opts = _VARIANTS[variant]
        mlp_bias = opts["mlp_bias"] if mlp_bias is None else mlp_bias
        spatial_bn = opts["spatial_bn"] if spatial_bn is None else spatial_bn
        self.channel_attention = ChannelAttention(channels, reduction, bias=mlp_bias, min_channels=min_channels)
        self.spatial_attention = SpatialAttention(kernel_size, bn=spatial_bn)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        out, maps = cbam_forward(x, self.channel_attention, self.spatial_attention,
                                 record=self.attention_sink is not None)
        if maps is not None:
            self._emit(channel=maps[0], spatial=maps[1])  # Mc (N, C[, 1, 1]), Ms (N, 1, H, W)
        return out
