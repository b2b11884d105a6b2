"""Strip Pooling: Rethinking Spatial Pooling for Scene Parsing (Hou et al., CVPR 2020), https://arxiv.org/abs/2003.13328.

The strip pooling module (SPM): x is average-pooled along W to a vertical strip (N, C, H) and along H to
a horizontal strip (N, C, W); a 1-D convolution of size 3 runs along each strip; the two results are
expanded back to H x W and summed, y[c, i, j] = y_h[c, i] + y_w[c, j]; a 1x1 convolution f and a sigmoid
give the gate, out = x * sigmoid(f(y)). Each position thus sees its whole row and its whole column.

Variants:

* ``"spm"`` (default), as the authors' code (``Andrew-Qibin/SPNet``, ``SPBlock``): the strip convs are full
  (C -> C, kernel (3, 1) and (1, 3), no bias) each followed by BatchNorm, and a ReLU precedes f (a 1x1
  conv C -> C with bias). The ReLU and BNs are the code's, not written in the paper's equations.
  Layer names are the code's (``conv1``, ``bn1``, ``conv2``, ``bn2``, ``conv3``), so its weights load.
* ``"timm"``, timm's ``StripAttn`` (in its ``coord_attn.py``; it cites no paper): depthwise strip convs
  (``conv_h``, ``conv_w``), no norm, no f: out = x * gate(conv_h(x_h) + conv_w(x_w)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._dispatch import tracing
from ._groups import check_odd_kernel
from ._layers import ActLike, apply_act, make_act
from ._ops import batch_norm, gate_, reduce_dim, sum_like
from .base import AttentionModule
from .registry import register_attention

__all__ = ["StripPooling", "STRIP_VARIANTS"]

STRIP_VARIANTS = ("spm", "timm")


@register_attention("strip")
class StripPooling(AttentionModule):
    """Strip pooling attention: a gate from row and column averages, each convolved along its strip.

    Args:
        channels: input channels C.
        kernel_size: odd size k of the strip convs (3, the paper's).
        variant: ``"spm"`` (the paper's module as the authors' code builds it) or ``"timm"`` (timm's
            lighter ``StripAttn``).
        act: activation before f (``"spm"`` only), default ReLU.
        gate: gating function, default sigmoid.

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records spatial = mean over C of the gate (N, 1, H, W) and
        channel = its mean over positions (N, C).

    Raises:
        ValueError: for an unknown variant, an even kernel or ``act`` given with ``variant="timm"``.

    Parameters: 2*k*C*C + C*C + 5*C (``"spm"``: 7*C*C + 5*C at k = 3); 2*k*C (``"timm"``).
    """

    paper = "Hou et al., Strip Pooling: Rethinking Spatial Pooling for Scene Parsing, CVPR 2020"
    param_formula = "2*k*C*C + C*C + 5*C  (k=3: 7*C*C + 5*C)"
    preserves_channels_last = True

    def __init__(self, channels: int, kernel_size: int = 3, variant: str = "spm", act: ActLike = None,
                 gate: ActLike = None) -> None:
        super().__init__(channels)
        if variant not in STRIP_VARIANTS:
            raise ValueError(f"unknown strip-pooling variant {variant!r}; choose one of {', '.join(STRIP_VARIANTS)}")
        check_odd_kernel(kernel_size, "strip-pooling kernel_size")
        if variant == "timm" and act is not None:
            raise ValueError("strip-pooling act applies only to variant='spm'; timm's variant has no activation")
        c, k, p = channels, kernel_size, kernel_size // 2
        self.variant = variant
        self.kernel_size = k
        if variant == "spm":
            self.conv1 = nn.Conv2d(c, c, (k, 1), padding=(p, 0), bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, (1, k), padding=(0, p), bias=False)
            self.bn2 = nn.BatchNorm2d(c)
            self.act = make_act(act, "relu")
            self.conv3 = nn.Conv2d(c, c, 1)
        else:
            self.conv_h = nn.Conv2d(c, c, (k, 1), padding=(p, 0), groups=c, bias=False)
            self.conv_w = nn.Conv2d(c, c, (1, k), padding=(0, p), groups=c, bias=False)
        self.gate = make_act(gate, "sigmoid")

    def strips(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The convolved strips y_h (N, C, H) and y_w (N, C, W) of x (N, C, H, W)."""
        p_h, p_w = reduce_dim(x, "mean", 3), reduce_dim(x, "mean", 2)  # (N, C, H), (N, C, W)
        p, groups = self.kernel_size // 2, 1
        if self.variant == "spm":
            conv_h, conv_w = self.conv1, self.conv2
        else:
            conv_h, conv_w, groups = self.conv_h, self.conv_w, self.channels
        y_h = F.conv1d(p_h, conv_h.weight[..., 0], padding=p, groups=groups)  # (C, C/g, k, 1) kernel along H
        y_w = F.conv1d(p_w, conv_w.weight[:, :, 0], padding=p, groups=groups)  # (C, C/g, 1, k) kernel along W
        if self.variant == "spm":  # BatchNorm2d on the (N, C, L, 1) views
            y_h = batch_norm(self.bn1, y_h[..., None])[..., 0]
            y_w = batch_norm(self.bn2, y_w[..., None])[..., 0]
        return y_h, y_w

    def weights(self, x: Tensor) -> Tensor:
        """The gate (N, C, H, W) of x, in x's memory format."""
        y_h, y_w = self.strips(x)
        y = sum_like(x, y_h[:, :, :, None], y_w[:, :, None, :])  # (N, C, H, W): y_h[c, i] + y_w[c, j]
        if self.variant == "spm":
            y = F.conv2d(apply_act(self.act, y), self.conv3.weight, self.conv3.bias)  # f: 1x1 conv C -> C
        return gate_(self.gate, y)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        z = self.weights(x)
        if self.attention_sink is not None:
            self._emit(channel=z.mean((2, 3)), spatial=z.mean(1, keepdim=True))
        return z.mul_(x) if not torch.is_grad_enabled() and not tracing() else x * z

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}, variant={self.variant!r}"
