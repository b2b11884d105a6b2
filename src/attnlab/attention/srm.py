"""SRM: A Style-based Recalibration Module for Convolutional Neural Networks (Lee et al., ICCV 2019),
https://arxiv.org/abs/1903.10829.

Channel recalibration from the style of each feature map, its first two moments:

* style pooling: t = [mu, sigma] (N, C, 2), the mean and the standard deviation of each channel over
  its H x W positions (sigma unbiased, /(HW - 1), as ``torch.std`` in the official code);
* style integration: a channel-wise fully connected layer z_c = w_c . t_c (w in R^{C x 2}, no bias),
  BatchNorm over z, then g = sigmoid(BN(z));
* out = x * g.

As in the official code (``hyunjaelee410/style-based-recalibration-module``), w starts at zero, so a
new module applies sigmoid(BN(0)) = sigmoid(BN bias) to every channel; parameter names follow it
(``cfc`` of shape (C, 2), ``bn``), so its checkpoints load.

A 1 x 1 map, where the official code's unbiased std is 0/0 = NaN, takes sigma = 0 (the divisor
HW - 1 is clamped to 1); a constant channel (sigma = 0, e.g. a dead ReLU channel) gets a zero
gradient through sigma, as from ``torch.std``. The BatchNorm over (N, C, 1, 1) with a batch of one in
training mode normalises with its running statistics (see :func:`attnlab.attention._ops.batch_norm`).

Parameters: 4*C (w: 2C, the BN's weight and bias: 2C; its running mean and variance are buffers),
0.06M for the whole SRM-ResNet-50 (25.62M against ResNet-50's 25.56M in the paper's ImageNet results).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._layers import ActLike, apply_act, make_act
from ._ops import batch_norm
from .base import AttentionModule
from .registry import register_attention

__all__ = ["StyleRecalibration", "style_pool"]


def style_pool(x: Tensor) -> Tensor:
    """The style descriptor t (N, C, 2) of x (N, C, H, W): each channel's mean and (unbiased) std over H x W.

    A 1 x 1 map has std 0 (not NaN); where a channel is constant the std's gradient is 0 (as ``torch.std``'s).
    """
    n = x.shape[2] * x.shape[3]
    mean = x.mean((2, 3))  # (N, C)
    var = (x - mean[:, :, None, None]).square().sum((2, 3)) / max(n - 1, 1)  # (N, C)
    tiny = torch.finfo(var.dtype).tiny
    std = var.clamp_min(tiny).sqrt()  # the clamp gives sqrt a zero gradient at var = 0 (sqrt(tiny) ~ 1e-19)
    return torch.stack([mean, std], dim=2)


@register_attention("srm")
class StyleRecalibration(AttentionModule):
    """Style-based recalibration module (SRM).

    Args:
        channels: input channels C.
        gate: gating function, default sigmoid.
        eps, momentum: of the BatchNorm (torch's defaults, as the official code).

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records channel weights g (N, C).

    Parameters: 4*C (``cfc`` 2C, BN weight and bias 2C).
    """

    paper = "Lee et al., SRM: A Style-based Recalibration Module for Convolutional Neural Networks, ICCV 2019"
    param_formula = "4*C"

    def __init__(self, channels: int, gate: ActLike = None, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__(channels)
        self.cfc = nn.Parameter(torch.zeros(channels, 2))
        self.bn = nn.BatchNorm2d(channels, eps=eps, momentum=momentum)
        self.gate = make_act(gate, "sigmoid")

    def weights(self, x: Tensor) -> Tensor:
        """g (N, C) of x (N, C, H, W): style pooling, channel-wise FC, BN, gate."""
        t = style_pool(x)  # (N, C, 2)
        z = (t * self.cfc).sum(2)  # (N, C): z_c = w_c . t_c
        return apply_act(self.gate, batch_norm(self.bn, z[:, :, None, None])[:, :, 0, 0])

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        g = self.weights(x)
        if self.attention_sink is not None:
            self._emit(channel=g)
        return x * g[:, :, None, None]

    def channel_scale(self, x: Tensor) -> Tensor | None:
        """The weights (N, C) with ``self(x) == x * g[:, :, None, None]``."""
        self._check_input(x)
        return self.weights(x)
