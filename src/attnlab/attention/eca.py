"""ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks (Wang et al., CVPR 2020),
https://arxiv.org/abs/1910.03151.

No dimensionality reduction: the channel weights come from a 1-D convolution of size k across the
globally average-pooled channel descriptor, with k adapted to C:
k = |log2(C) / gamma + b / gamma|, made odd (gamma=2, b=1), e.g. C = 64 -> 3, 256 -> 5, 2048 -> 7.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from ._groups import check_odd_kernel
from ._layers import ActLike, apply_act, make_act
from .channel_gate import ChannelGateModule
from .registry import register_attention

__all__ = ["EfficientChannelAttention", "eca_kernel_size"]


def eca_kernel_size(channels: int, gamma: float = 2, b: float = 1) -> int:
    """The paper's adaptive kernel size: ``int(|log2(C) / gamma + b / gamma|)``, made odd by adding one."""
    t = int(abs(math.log2(channels) / gamma + b / gamma))
    return max(1, t if t % 2 else t + 1)


@register_attention("eca")
class EfficientChannelAttention(ChannelGateModule):
    """Efficient Channel Attention.

    Args:
        channels: input channels C.
        kernel_size: explicit odd k, or None for the adaptive k of the paper.
        gamma, b: the adaptive-k constants (used when ``kernel_size`` is None).
        gate: gating function, default sigmoid.

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records channel weights (N, C).

    Parameters: k (one 1-D conv, no bias).
    """

    paper = "Wang et al., ECA-Net: Efficient Channel Attention for Deep CNNs, CVPR 2020"
    param_formula = "k, k = odd(|log2(C)/2 + 1/2|)"

    def __init__(self, channels: int, kernel_size: int | None = None, gamma: float = 2, b: float = 1,
                 gate: ActLike = None) -> None:
        super().__init__(channels)
        if kernel_size is None:
            kernel_size = eca_kernel_size(channels, gamma, b)
        self.kernel_size = check_odd_kernel(kernel_size, "ECA kernel_size")
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.gate = make_act(gate, "sigmoid")

    def weights(self, avg: Tensor, _max: Tensor | None = None) -> Tensor:
        """Channel weights (N, C) from the pooled descriptor (N, C)."""
        y = F.conv1d(avg[:, None, :], self.conv.weight, padding=self.kernel_size // 2)  # (N, 1, C)
        return apply_act(self.gate, y[:, 0, :])


    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}"
