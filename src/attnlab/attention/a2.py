"""A^2-Nets: Double Attention Networks (Chen et al., NeurIPS 2018), https://arxiv.org/abs/1810.11579.

Two attention steps, gather then distribute, over the HW positions of x (the paper's Sec. 3):

* features A = phi(x) (m x HW), attention maps B = theta(x) (n x HW) and attention vectors
  V = rho(x) (n x HW), three 1x1 convs with biases;
* gather (second-order attention pooling): G = A softmax(B)^T (m x n), each of the n attention
  maps normalised by a softmax over the HW positions, so g_j is an attention-weighted average of
  the features;
* distribute: z_i = G v_i with v_i = softmax over the n entries of V at position i, so
  each position takes a convex combination of the n gathered descriptors;
* the double attention block adds Z back through a 1x1 conv m -> C: out = x + conv(Z).

The softmax of V runs over the n descriptors at each position, as in the paper; a widely copied
port (External-Attention-pytorch's ``DoubleAttention``) normalises it over the positions instead.
The widths m (``mid_channels``) and n (``descriptors``) are the paper's hyperparameters; both default
here to ``max(min_channels, C // reduction)`` with reduction 4. Computed as (A softmax(B)^T)
softmax(V): O(m n HW) work and memory, never an (HW, HW) matrix (the paper's order).

The block is a residual global-context block, placed like Non-Local (``placement="after_blocks"``;
the paper adds it after residual units of ResNet-50's conv3 and conv4). The paper does not zero its
last conv; :meth:`DoubleAttention.zero_init_last` does, for a block that starts as the identity.

Parameters: 2*C*m + 2*C*n + m + 2*n + C (convs A, B, V with biases, the output conv m -> C with bias).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import AttentionModule, reduced_channels
from .registry import register_attention

__all__ = ["DoubleAttention"]


@register_attention("a2")
class DoubleAttention(AttentionModule):
    """Double attention (A^2) block.

    Args:
        channels: input channels C.
        reduction: default width ratio of m and n (4).
        mid_channels: m, the width of the gathered features (default ``max(min_channels, C // reduction)``).
        descriptors: n, the number of attention maps / gathered descriptors (same default).
        min_channels: minimum default width (1).

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records spatial = the mean over the n gather maps softmax(B)
        (N, 1, H, W; it sums to one over the positions), ``extra["gather"]`` = softmax(B) (N, n, HW) and
        ``extra["distribute"]`` = softmax(V) (N, n, HW).

    Raises:
        ValueError: for a ``mid_channels`` or ``descriptors`` below 1.

    Parameters: 2*C*m + 2*C*n + m + 2*n + C.
    """

    paper = "Chen et al., A^2-Nets: Double Attention Networks, NeurIPS 2018"
    param_formula = "2*C*m + 2*C*n + m + 2*n + C, m = n = C//4"
    placement = "after_blocks"  # after residual units of conv3/conv4, as Non-Local: a residual global block

    def __init__(self, channels: int, reduction: float = 4, mid_channels: int | None = None,
                 descriptors: int | None = None, min_channels: int = 1) -> None:
        super().__init__(channels)
        default = reduced_channels(channels, reduction, min_channels)
        m = default if mid_channels is None else mid_channels
        n = default if descriptors is None else descriptors
        for name, value in (("mid_channels", m), ("descriptors", n)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"A2 {name} must be a positive int, got {value!r}")
        self.mid_channels, self.descriptors = m, n
        self.convA = nn.Conv2d(channels, m, 1)
        self.convB = nn.Conv2d(channels, n, 1)
        self.convV = nn.Conv2d(channels, n, 1)
        self.conv_reconstruct = nn.Conv2d(m, channels, 1)

    def zero_init_last(self) -> None:
        """Zero the output conv: the block returns its input (not the paper's init, which it does not state)."""
        nn.init.zeros_(self.conv_reconstruct.weight)
        nn.init.zeros_(self.conv_reconstruct.bias)

    def attend(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The gathered descriptors G (N, m, n), the gather maps softmax(B) (N, n, HW) and the
        distribution vectors softmax(V) (N, n, HW) of x (N, C, H, W)."""
        m, n = self.mid_channels, self.descriptors
        weight = torch.cat([self.convA.weight, self.convB.weight, self.convV.weight])
        bias = torch.cat([self.convA.bias, self.convB.bias, self.convV.bias])
        a, b, v = F.conv2d(x, weight, bias).flatten(2).split([m, n, n], dim=1)  # (N, m | n | n, HW)
        gather = b.softmax(2)  # each attention map over the positions
        distribute = v.softmax(1)  # each position's vector over the n descriptors
        return torch.bmm(a, gather.transpose(1, 2)), gather, distribute  # G = A softmax(B)^T: (N, m, n)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        g, gather, distribute = self.attend(x)
        z = torch.bmm(g, distribute).unflatten(2, x.shape[2:])  # (N, m, n) @ (N, n, HW) -> (N, m, H, W)
        out = x + F.conv2d(z, self.conv_reconstruct.weight, self.conv_reconstruct.bias)
        if self.attention_sink is not None:
            spatial = gather.mean(1).view(x.shape[0], 1, x.shape[2], x.shape[3])
            self._emit(spatial=spatial, gather=gather, distribute=distribute)
        return out

    def extra_repr(self) -> str:
        return f"channels={self.channels}, mid_channels={self.mid_channels}, descriptors={self.descriptors}"
