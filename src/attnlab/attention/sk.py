"""Selective Kernel Networks (Li et al., CVPR 2019), https://arxiv.org/abs/1903.06586.

A selective kernel (SK) convolution lets each channel choose its receptive field:

* split: M branches convolve x with different kernels (3x3 and 5x5 in the paper, the 5x5 taken as a
  3x3 with dilation 2), each grouped (G = 32, the ResNeXt cardinality), with BN and ReLU: U_m (N, C, H, W);
* fuse: s = avgpool(U_1 + ... + U_M) (N, C); z = ReLU(BN(W s)) (N, d), d = max(C / r, L), r = 16, L = 32;
* select: a_m = softmax over m of (A_m z) (N, C), per channel; V = sum_m a_m * U_m.

The paper puts SK convolutions in place of the 3x3 grouped convs of ResNeXt (SKNet); as an attnlab
module it maps C channels to C, so it can also be added to any block. With one branch the softmax is
1 and the module is its branch's conv-BN-ReLU.

Layer names follow timm's ``SelectiveKernel`` (``paths.{m}.conv``, ``paths.{m}.bn``, ``attn.fc_reduce``,
``attn.bn``, ``attn.fc_select``), so its weights load where the layout agrees. Where timm differs: by
default it splits the input channels between the branches (``split_input=True``: each branch sees C / M
input channels), it uses ungrouped convs (``groups=1``) and rounds d to a multiple of 8; this module
follows the paper (every branch sees all of x, G = 32, d = max(C // r, L)).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._groups import check_groups, divisor_at_most
from ._layers import ActLike, apply_act, make_act
from ._ops import batch_norm
from .base import AttentionModule, reduced_channels
from .registry import register_attention

__all__ = ["SelectiveKernel"]


class _Branch(nn.Module):
    """One SK branch: a grouped k x k conv (dilated when asked), BN, activation."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, groups: int, act: ActLike) -> None:
        super().__init__()
        pad = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(channels, channels, kernel_size, padding=pad, dilation=dilation, groups=groups,
                              bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.act = make_act(act, "relu")

    def forward(self, x: Tensor) -> Tensor:
        return apply_act(self.act, batch_norm(self.bn, self.conv(x)))


class _Select(nn.Module):
    """The fuse and select steps: branch weights a (N, M, C), softmax over the M branches."""

    def __init__(self, channels: int, hidden: int, branches: int, act: ActLike) -> None:
        super().__init__()
        self.fc_reduce = nn.Conv2d(channels, hidden, 1, bias=False)
        self.bn = nn.BatchNorm2d(hidden)
        self.act = make_act(act, "relu")
        self.fc_select = nn.Conv2d(hidden, channels * branches, 1, bias=False)
        self.branches = branches

    def forward(self, s: Tensor) -> Tensor:
        """a (N, M, C) from the pooled sum of the branches s (N, C)."""
        z = F.linear(s, self.fc_reduce.weight.flatten(1))[:, :, None, None]  # (N, d, 1, 1)
        z = apply_act(self.act, batch_norm(self.bn, z)).flatten(1)  # (N, d)
        logits = F.linear(z, self.fc_select.weight.flatten(1))  # (N, M*C), branch-major
        return logits.unflatten(1, (self.branches, -1)).softmax(1)  # (N, M*C) -> (N, M, C)


@register_attention("sk")
class SelectiveKernel(AttentionModule):
    """Selective kernel convolution: branches with different receptive fields, mixed per channel by softmax.

    Args:
        channels: input (and output) channels C.
        kernel_sizes: the branches' odd kernel sizes ((3, 5), the paper's).
        dilate: take a k x k kernel as a 3x3 with dilation (k - 1) / 2 (the paper's choice for 5x5), else
            a plain k x k conv.
        groups: groups G of the branch convs; None for the paper's 32, lowered to the largest divisor of
            C below it where 32 does not divide C; an explicit G must divide C.
        reduction: ratio r of the fuse layer (16); its width is d = ``max(min_channels, C // r)``.
        min_channels: the paper's L, the minimum width of the fuse layer (32).
        act: activation of the branches and the fuse layer, default ReLU.

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records channel = the first branch's weight a_1 (N, C) and
        extra ``select`` = all branch weights (N, M, C) (they sum to 1 over M).

    Parameters: sum_m (C*(C/G)*k_m^2 + 2C) + C*d + 2d + M*C*d (k_m = 3 when dilated).
    """

    paper = "Li et al., Selective Kernel Networks, CVPR 2019"
    param_formula = "M*(9*C*C/G + 2*C) + C*d + 2*d + M*C*d, d = max(C//16, 32)  (M=2, G=32)"

    def __init__(self, channels: int, kernel_sizes: Sequence[int] = (3, 5), dilate: bool = True,
                 groups: int | None = None, reduction: float = 16, min_channels: int = 32,
                 act: ActLike = None) -> None:
        super().__init__(channels)
        sizes = tuple(kernel_sizes)
        if not sizes or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 and k % 2 for k in sizes):
            raise ValueError(f"SK kernel_sizes must be one or more positive odd ints, got {kernel_sizes!r}")
        groups = divisor_at_most(channels, 32) if groups is None else check_groups(channels, groups, "SK groups")
        self.kernel_sizes = sizes
        self.groups = groups
        # a dilated branch: a 3x3 kernel with dilation (k - 1) / 2 spans k x k
        self.paths = nn.ModuleList(_Branch(channels, 3, (k - 1) // 2, groups, act) if dilate and k > 1
                                   else _Branch(channels, k, 1, groups, act) for k in sizes)
        self.attn = _Select(channels, reduced_channels(channels, reduction, min_channels), len(sizes), act)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        u = torch.stack([path(x) for path in self.paths], 1)  # M x (N, C, H, W) -> (N, M, C, H, W)
        a = self.attn(u.sum(1).mean((2, 3)))  # (N, M, C)
        if self.attention_sink is not None:
            self._emit(channel=a[:, 0], select=a)
        return (u * a[:, :, :, None, None]).sum(1)  # (N, C, H, W)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_sizes={self.kernel_sizes}, groups={self.groups}"
