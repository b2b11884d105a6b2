"""GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond (Cao et al., ICCV Workshops 2019),
https://arxiv.org/abs/1904.11492.

The global context block: one query-independent attention map shared by all positions, then an
SE-like bottleneck transform, fused back into every position.

* context modelling: p = softmax_HW(conv1x1_{C->1}(x)) (N, HW); context = sum_j p_j x_j (N, C);
* transform: conv1x1 C -> C/r, LayerNorm([C/r, 1, 1]), ReLU, conv1x1 C/r -> C, on the (N, C) context;
* fusion ``"add"`` (the paper's default): out = x + t; ``"mul"``: out = x * sigmoid(t).

As in the official code (``xvjiarui/GCNet``, mmcv ``ContextBlock``), the last conv of the add
transform starts at zero, so a new ``"add"`` block returns its input exactly
(:meth:`GlobalContext.zero_init_last`); the ``"mul"`` transform keeps the default init.

Parameter names follow the official code (``conv_mask``, ``channel_add_conv.0/.1/.3`` or
``channel_mul_conv.*``), except that ``conv_mask`` has no bias: a constant added to every logit
cancels in the softmax, so that bias could never learn or change the output. To load an official
checkpoint, drop its ``conv_mask.bias``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._layers import ActLike, apply_act, make_act
from ._ops import is_channels_last
from .base import AttentionModule, reduced_channels
from .registry import register_attention

__all__ = ["GlobalContext"]

_FUSIONS = ("add", "mul")


@register_attention("gc")
class GlobalContext(AttentionModule):
    """Global context (GC) block.

    Args:
        channels: input channels C.
        reduction: bottleneck ratio r (16); hidden width h = ``max(min_channels, C // r)``.
        fusion: ``"add"`` (out = x + t) or ``"mul"`` (out = x * gate(t)).
        min_channels: minimum hidden width (1).
        act: hidden activation after the LayerNorm (name, class or callable), default ReLU.
        gate: the ``"mul"`` gate, default sigmoid; must be left None with ``fusion="add"``.

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records spatial = the softmax context weights (N, 1, H, W) and
        channel = the transform output (N, C): t for ``"add"``, gate(t) for ``"mul"``.

    Raises:
        ValueError: for an unknown ``fusion`` or a ``gate`` given with ``fusion="add"``.

    Parameters: 2*C*h + 3*h + 2*C (mask conv without bias, two 1x1 convs with biases, LayerNorm).
    """

    paper = "Cao et al., GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond, ICCV-W 2019"
    param_formula = "2*C*(C//r) + 3*(C//r) + 2*C  (r=16)"
    preserves_channels_last = True

    def __init__(self, channels: int, reduction: float = 16, fusion: str = "add", min_channels: int = 1,
                 act: ActLike = None, gate: ActLike = None) -> None:
        super().__init__(channels)
        if fusion not in _FUSIONS:
            raise ValueError(f"unknown GC fusion {fusion!r}; choose one of {', '.join(_FUSIONS)}")
        if fusion == "add" and gate is not None:
            raise ValueError("GC gate applies only to fusion='mul'; the 'add' fusion has no gate")
        hidden = reduced_channels(channels, reduction, min_channels)
        self.fusion = fusion
        self.hidden = hidden
        self.conv_mask = nn.Conv2d(channels, 1, 1, bias=False)
        transform = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.LayerNorm([hidden, 1, 1]),
            make_act(act, "relu"),
            nn.Conv2d(hidden, channels, 1),
        )
        if fusion == "add":
            self.channel_add_conv = transform
        else:
            self.channel_mul_conv = transform
            self.gate = make_act(gate, "sigmoid")
        nn.init.kaiming_normal_(self.conv_mask.weight, mode="fan_in", nonlinearity="relu")  # official init
        self.zero_init_last()

    @property
    def transform(self) -> nn.Sequential:
        return self.channel_add_conv if self.fusion == "add" else self.channel_mul_conv

    def zero_init_last(self) -> None:
        """Zero the last conv of the ``"add"`` transform (the official init): the block starts as the identity."""
        if self.fusion == "add":
            nn.init.zeros_(self.channel_add_conv[3].weight)
            nn.init.zeros_(self.channel_add_conv[3].bias)

    def context(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Softmax weights p (N, HW) and context sum_j p_j x_j (N, C) of x (N, C, H, W).

        Two forms with the same result, each the fastest (forward and backward, eager CPU) for its
        layout: matrix products on the (N, HW, C) view for channels_last, broadcast products and
        sums for NCHW (there the matrix forms hit slow matrix-vector kernels and layout-mismatched
        gradient sums).
        """
        n, c, h, w = x.shape
        weight = self.conv_mask.weight.view(c)
        if is_channels_last(x):
            xt = x.flatten(2).transpose(1, 2)  # (N, C, H, W) -> (N, HW, C), a contiguous view
            p = torch.matmul(xt, weight).softmax(1)  # (N, HW)
            return p, torch.bmm(p[:, None, :], xt)[:, 0]  # (N, 1, HW) @ (N, HW, C) -> (N, C)
        p = (x * weight[:, None, None]).sum(1).flatten(1).softmax(1)  # (N, HW)
        return p, (x * p.view(n, 1, h, w)).sum((2, 3))  # (N, C)

    def transform_context(self, ctx: Tensor) -> Tensor:
        """t (N, C) from the context (N, C): conv, LayerNorm, act, conv, as matrix products."""
        t = self.transform
        h = F.linear(ctx, t[0].weight.flatten(1), t[0].bias)  # (N, C) -> (N, h)
        ln = t[1]
        h = F.layer_norm(h, (self.hidden,), ln.weight.flatten(), ln.bias.flatten(), ln.eps)
        return F.linear(apply_act(t[2], h), t[3].weight.flatten(1), t[3].bias)  # (N, h) -> (N, C)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        p, ctx = self.context(x)
        t = self.transform_context(ctx)  # (N, C)
        if self.fusion == "mul":
            t = apply_act(self.gate, t)
        if self.attention_sink is not None:
            self._emit(channel=t, spatial=p.view(x.shape[0], 1, x.shape[2], x.shape[3]))
        t = t[:, :, None, None]
        return x + t if self.fusion == "add" else x * t

    def extra_repr(self) -> str:
        return f"channels={self.channels}, hidden={self.hidden}, fusion={self.fusion!r}"
