"""ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks (Wang et al., CVPR 2020),
https://arxiv.org/abs/1910.03151, with circular padding: the circular ECA (CECA) of timm.

ECA convolves the pooled channel descriptor (N, C) with one 1-D kernel of size k and zero padding, so
the first and last k // 2 channels see fewer neighbours than the others. Channels have no order and no
edges, so CECA (Chris Ha's variant in timm's ``eca.py``; it has no paper of its own) pads circularly:
channel c mixes channels (c - k//2 .. c + k//2) mod C, and every channel is treated alike. The module is
then equivariant to a cyclic shift of the channels: ``m(x.roll(s, 1)) == m(x).roll(s, 1)``.

k follows the ECA paper's adaptive rule (:func:`attnlab.attention.eca_kernel_size`: 3 for C = 64, 5 for
256, 7 for 2048). timm's ``CecaModule`` uses the same rule but never goes below k = 3 (a difference only
for C < 8, where the paper's rule gives k = 1); pass ``kernel_size=3`` for timm's choice there.
The circular padding is taken by indexing (one gather of (N, C, k)), which exports to ONNX and wraps any
k, also one wider than C.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._groups import check_odd_kernel
from ._layers import ActLike, apply_act, make_act
from .channel_gate import ChannelGateModule
from .eca import eca_kernel_size
from .registry import register_attention

__all__ = ["CircularECA"]


@register_attention("ceca")
class CircularECA(ChannelGateModule):
    """Efficient Channel Attention with a circularly padded 1-D convolution across channels.

    Args:
        channels: input channels C.
        kernel_size: explicit odd k, or None for the ECA paper's adaptive k.
        gamma, b: the adaptive-k constants (used when ``kernel_size`` is None).
        gate: gating function, default sigmoid.

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records channel weights (N, C).

    Parameters: k (one 1-D conv, no bias; stored as ``conv``, timm's name and shape (1, 1, k)).
    """

    paper = "Wang et al., ECA-Net, CVPR 2020; circular padding as timm's CECA"
    param_formula = "k, k = odd(|log2(C)/2 + 1/2|)"

    def __init__(self, channels: int, kernel_size: int | None = None, gamma: float = 2, b: float = 1,
                 gate: ActLike = None) -> None:
        super().__init__(channels)
        if kernel_size is None:
            kernel_size = eca_kernel_size(channels, gamma, b)
        self.kernel_size = check_odd_kernel(kernel_size, "CECA kernel_size")
        self.conv = nn.Conv1d(1, 1, kernel_size, bias=False)
        self.gate = make_act(gate, "sigmoid")
        pad = kernel_size // 2
        # index[c, j] = (c + j - pad) mod C: the channels the kernel's tap j reads for output channel c
        index = (torch.arange(channels)[:, None] + torch.arange(kernel_size)[None, :] - pad) % channels
        self.register_buffer("index", index, persistent=False)  # (C, k)

    def weights(self, avg: Tensor, _max: Tensor | None = None) -> Tensor:
        """Channel weights (N, C) from the pooled descriptor (N, C): a circular 1-D conv, then the gate."""
        windows = avg[:, self.index]  # (N, C) -> (N, C, k), each channel's circular neighbourhood
        return apply_act(self.gate, torch.matmul(windows, self.conv.weight.view(-1, 1))[..., 0])

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}"
