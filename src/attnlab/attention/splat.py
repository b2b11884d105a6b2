"""ResNeSt: Split-Attention Networks (Zhang et al., CVPR Workshops 2022), https://arxiv.org/abs/2004.08955.

A split-attention convolution (``SplAtConv2d``) in place of a k x k conv, with radix R and cardinality K:

* one grouped conv (K * R groups, no bias) with BN and ReLU makes R splits U_r (N, C, H, W), r = 1 .. R;
* within each cardinal group, the splits are summed and average-pooled: s (N, C); a grouped 1x1 conv
  C -> d (d = max(R * C // 4, 32), with bias), BN, ReLU, and a grouped 1x1 conv d -> R * C (with bias) give
  one logit per split and channel;
* r-softmax: a softmax over the R splits of each channel (a sigmoid when R = 1, where the block is an SE
  gate with BN on the conv's output); out = sum_r a_r * U_r.

The paper uses it as the 3x3 conv of ResNeSt's bottlenecks (R = 2, K = 1); as an attnlab module it maps
C channels to C (stride 1), so it can also be added to any block. Layer names and the channel layout of
the logits (grouped by cardinal group, then split) are the authors' (``zhanghang1989/ResNeSt``:
``conv``, ``bn0``, ``fc1``, ``bn1``, ``fc2``) and timm's, so their weights load. Their options of
DropBlock, rectified convs and strides are left out. timm's ``SplitAttn`` differs in its defaults: no BN
unless given a ``norm_layer`` (its ResNeSt passes BatchNorm), and d rounded to a multiple of 8; this module
follows the authors (BN, d = max(R * C // 4, 32)).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ._groups import check_groups, check_odd_kernel
from ._layers import ActLike, apply_act, make_act
from ._ops import batch_norm
from .base import AttentionModule, reduced_channels
from .registry import register_attention

__all__ = ["SplitAttention"]


@register_attention("splat")
class SplitAttention(AttentionModule):
    """Split-attention convolution (ResNeSt): R splits of a grouped conv, mixed per channel by an r-softmax.

    Args:
        channels: input (and output) channels C.
        radix: number of splits R (2, the paper's; 1 gives a sigmoid gate).
        groups: cardinality K (1); K and K * R must divide C, and K the fuse width d.
        kernel_size: odd size k of the split conv (3).
        reduction: ratio of the fuse layer: d = ``max(min_channels, R * C // reduction)`` (4).
        min_channels: minimum fuse width (32, the authors').
        act: activation after both BNs, default ReLU.
        bias: bias in the split conv (the ResNeSt networks build it without).

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records channel = the first split's weight a_1 (N, C) (for R = 1 the
        sigmoid gate) and extra ``radix`` = all split weights (N, R, C).

    Parameters: C*C*k^2/K + 2*R*C + C*d/K + d + 2*d + d*R*C/K + R*C (without the conv bias).
    """

    paper = "Zhang et al., ResNeSt: Split-Attention Networks, CVPR-W 2022"
    param_formula = "C*C*k*k/K + 2*R*C + C*d/K + 3*d + d*R*C/K + R*C, d = max(R*C//4, 32)  (R=2, K=1, k=3)"

    def __init__(self, channels: int, radix: int = 2, groups: int = 1, kernel_size: int = 3, reduction: float = 4,
                 min_channels: int = 32, act: ActLike = None, bias: bool = False) -> None:
        super().__init__(channels)
        if isinstance(radix, bool) or not isinstance(radix, int) or radix < 1:
            raise ValueError(f"split-attention radix must be an int >= 1, got {radix!r}")
        check_odd_kernel(kernel_size, "split-attention kernel_size")
        c, r, k = channels, radix, check_groups(channels, groups, "split-attention groups")
        check_groups(c, k * r, f"split-attention groups * radix (the split conv's {k} * {r} groups)")
        hidden = reduced_channels(r * c, reduction, min_channels)
        check_groups(hidden, k, f"split-attention groups (also dividing the fuse width {hidden})")
        self.radix, self.cardinality, self.hidden = r, k, hidden
        self.conv = nn.Conv2d(c, c * r, kernel_size, padding=kernel_size // 2, groups=k * r, bias=bias)
        self.bn0 = nn.BatchNorm2d(c * r)
        self.act = make_act(act, "relu")
        self.fc1 = nn.Conv2d(c, hidden, 1, groups=k)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.fc2 = nn.Conv2d(hidden, c * r, 1, groups=k)

    def split_weights(self, s: Tensor) -> Tensor:
        """a (N, R, C) from the pooled sum of the splits s (N, C): the r-softmax over the R splits."""
        r, k = self.radix, self.cardinality
        z = F.conv2d(s[:, :, None, None], self.fc1.weight, self.fc1.bias, groups=k)  # (N, d, 1, 1)
        z = apply_act(self.act, batch_norm(self.bn1, z))
        logits = F.conv2d(z, self.fc2.weight, self.fc2.bias, groups=k).flatten(1)  # (N, K*R*C/K), group-major
        if r == 1:
            return logits.sigmoid()[:, None]  # (N, 1, C)
        # (N, K, R, C/K) -> (N, R, K, C/K): softmax over the splits, channels back in (K, C/K) order
        return logits.unflatten(1, (k, r, -1)).softmax(2).transpose(1, 2).flatten(2)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        c = x.shape[1]
        u = apply_act(self.act, batch_norm(self.bn0, self.conv(x)))  # (N, R*C, H, W)
        splits = u.unflatten(1, (self.radix, c))  # (N, R, C, H, W): split r is channels r*C .. (r+1)*C - 1
        a = self.split_weights(splits.sum(1).mean((2, 3)))  # (N, R, C)
        if self.attention_sink is not None:
            self._emit(channel=a[:, 0], radix=a)
        return (splits * a[:, :, :, None, None]).sum(1)  # (N, C, H, W)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, radix={self.radix}, groups={self.cardinality}, hidden={self.hidden}"
