"""GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond (Cao et al., ICCV Workshops 2019),
https://arxiv.org/abs/1904.11492.

The global context block: one query-independent attention map shared by all positions, then an
SE-like bottleneck transform, fused back into every position.

* context modelling (``pooling="att"``, the paper's): p = softmax_HW(conv1x1_{C->1}(x)) (N, HW);
  context = sum_j p_j x_j (N, C). ``pooling="avg"``: context = avgpool(x) (the paper's ablation, the
  official code's ``pooling_type='avg'``, timm's ``use_attn=False``);
* transform: conv1x1 C -> C/r, LayerNorm([C/r, 1, 1]), ReLU, conv1x1 C/r -> C, on the (N, C) context;
* fusion ``"add"`` (the paper's default): out = x + t; ``"mul"`` (timm's "scale"): out = x * sigmoid(t);
  ``"add+mul"``: both, each with its own transform, as the official code composes them
  (``fusion_types=('channel_add', 'channel_mul')``, timm's ``fuse_add=True, fuse_scale=True``):
  out = x * sigmoid(t_mul) + t_add.

As in the official code (``xvjiarui/GCNet``, mmcv ``ContextBlock``), the last conv of the add
transform starts at zero, so a new ``"add"`` block returns its input exactly
(:meth:`GlobalContext.zero_init_last`); the ``"mul"`` transform keeps the default init.

Parameter names follow the official code (``conv_mask``, ``channel_add_conv.0/.1/.3`` or
``channel_mul_conv.*``), except that ``conv_mask`` has no bias: a constant added to every logit
cancels in the softmax, so that bias could never learn or change the output. To load an official
checkpoint, drop its ``conv_mask.bias``. timm's ``GlobalContext`` defaults differ from the paper's: it
fuses by ``"mul"`` with r = 8 (its ``gca`` is the ``"add"`` fusion), and its LayerNorm normalises over
channels only, the same on the (N, C, 1, 1) context.
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

_FUSIONS = ("add", "mul", "add+mul")
_POOLINGS = ("att", "avg")


@register_attention("gc")
class GlobalContext(AttentionModule):
    """Global context (GC) block.

    Args:
        channels: input channels C.
        reduction: bottleneck ratio r (16); hidden width h = ``max(min_channels, C // r)``.
        fusion: ``"add"`` (out = x + t), ``"mul"`` (out = x * gate(t)) or ``"add+mul"``
            (out = x * gate(t_mul) + t_add, two transforms).
        min_channels: minimum hidden width (1).
        act: hidden activation after the LayerNorm (name, class or callable), default ReLU.
        gate: the ``"mul"`` gate, default sigmoid; must be left None with ``fusion="add"``.
        pooling: context by ``"att"`` (softmax attention pooling, the paper's) or ``"avg"`` (global
            average, no ``conv_mask``).

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records spatial = the softmax context weights (N, 1, H, W) (with
        ``pooling="att"``) and channel = the transform output (N, C): t for ``"add"``, gate(t) for
        ``"mul"``; for ``"add+mul"`` channel = gate(t_mul) and extra ``add`` = t_add (N, C).

    Raises:
        ValueError: for an unknown ``fusion`` or ``pooling``, or a ``gate`` given with ``fusion="add"``.

    Parameters: T*(2*C*h + 3*h + C) + C (T transforms, one per fusion, each two 1x1 convs with biases and a
    LayerNorm; the mask conv without bias; no mask conv with ``pooling="avg"``).
    """

    paper = "Cao et al., GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond, ICCV-W 2019"
    param_formula = "2*C*(C//r) + 3*(C//r) + 2*C  (r=16; per fusion: + 2*C*(C//r) + 3*(C//r) + C)"
    preserves_channels_last = True

    def __init__(self, channels: int, reduction: float = 16, fusion: str = "add", min_channels: int = 1,
                 act: ActLike = None, gate: ActLike = None, pooling: str = "att") -> None:
        super().__init__(channels)
        if fusion not in _FUSIONS:
            raise ValueError(f"unknown GC fusion {fusion!r}; choose one of {', '.join(_FUSIONS)}")
        if pooling not in _POOLINGS:
            raise ValueError(f"unknown GC pooling {pooling!r}; choose one of {', '.join(_POOLINGS)}")
        if fusion == "add" and gate is not None:
            raise ValueError("GC gate applies only to fusion='mul' or 'add+mul'; the 'add' fusion has no gate")
        hidden = reduced_channels(channels, reduction, min_channels)
        self.fusion = fusion
        self.pooling = pooling
        self.hidden = hidden
        if pooling == "att":
            self.conv_mask = nn.Conv2d(channels, 1, 1, bias=False)
            nn.init.kaiming_normal_(self.conv_mask.weight, mode="fan_in", nonlinearity="relu")  # official init
        if "add" in fusion:
            self.channel_add_conv = self._transform(act)
        if "mul" in fusion:
            self.channel_mul_conv = self._transform(act)
            self.gate = make_act(gate, "sigmoid")
        self.zero_init_last()

    def _transform(self, act: ActLike) -> nn.Sequential:
        """conv1x1 C -> h, LayerNorm([h, 1, 1]), act, conv1x1 h -> C (the official layout)."""
        c, h = self.channels, self.hidden
        return nn.Sequential(nn.Conv2d(c, h, 1), nn.LayerNorm([h, 1, 1]), make_act(act, "relu"), nn.Conv2d(h, c, 1))

    @property
    def transform(self) -> nn.Sequential:
        """The transform of a single fusion (the ``"mul"`` one for ``"add+mul"``)."""
        return self.channel_mul_conv if "mul" in self.fusion else self.channel_add_conv

    def zero_init_last(self) -> None:
        """Zero the last conv of the ``"add"`` transform (the official init): an ``"add"`` block starts as identity."""
        if "add" in self.fusion:
            nn.init.zeros_(self.channel_add_conv[3].weight)
            nn.init.zeros_(self.channel_add_conv[3].bias)

    def context(self, x: Tensor) -> tuple[Tensor | None, Tensor]:
        """Softmax weights p (N, HW) (None for ``pooling="avg"``) and context sum_j p_j x_j (N, C) of x (N, C, H, W).

        Two forms with the same result, each the fastest (forward and backward, eager CPU) for its
        layout: matrix products on the (N, HW, C) view for channels_last, broadcast products and
        sums for NCHW (there the matrix forms hit slow matrix-vector kernels and layout-mismatched
        gradient sums).
        """
        if self.pooling == "avg":
            return None, x.mean((2, 3))
        n, c, h, w = x.shape
        weight = self.conv_mask.weight.view(c)
        if is_channels_last(x):
            xt = x.flatten(2).transpose(1, 2)  # (N, C, H, W) -> (N, HW, C), a contiguous view
            p = torch.matmul(xt, weight).softmax(1)  # (N, HW)
            return p, torch.bmm(p[:, None, :], xt)[:, 0]  # (N, 1, HW) @ (N, HW, C) -> (N, C)
        p = (x * weight[:, None, None]).sum(1).flatten(1).softmax(1)  # (N, HW)
        return p, (x * p.view(n, 1, h, w)).sum((2, 3))  # (N, C)

    def transform_context(self, ctx: Tensor, t: nn.Sequential | None = None) -> Tensor:
        """t (N, C) from the context (N, C): conv, LayerNorm, act, conv, as matrix products.

        Args:
            ctx: the context (N, C).
            t: the transform to apply (``channel_add_conv`` or ``channel_mul_conv``); None for :attr:`transform`.
        """
        t = self.transform if t is None else t
        h = F.linear(ctx, t[0].weight.flatten(1), t[0].bias)  # (N, C) -> (N, h)
        ln = t[1]
        h = F.layer_norm(h, (self.hidden,), ln.weight.flatten(), ln.bias.flatten(), ln.eps)
        return F.linear(apply_act(t[2], h), t[3].weight.flatten(1), t[3].bias)  # (N, h) -> (N, C)

    def channel_scale(self, x: Tensor) -> Tensor | None:
        """gate(t) (N, C) for ``fusion="mul"``, where ``self(x) == x * w[:, :, None, None]``; else None."""
        if self.fusion != "mul":
            return None
        self._check_input(x)
        return apply_act(self.gate, self.transform_context(self.context(x)[1], self.channel_mul_conv))

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        p, ctx = self.context(x)
        scale = add = None
        if "mul" in self.fusion:
            scale = apply_act(self.gate, self.transform_context(ctx, self.channel_mul_conv))  # (N, C)
        if "add" in self.fusion:
            add = self.transform_context(ctx, self.channel_add_conv)  # (N, C)
        if self.attention_sink is not None:
            spatial = None if p is None else p.view(x.shape[0], 1, x.shape[2], x.shape[3])
            extra = {"add": add} if scale is not None and add is not None else {}
            self._emit(channel=scale if scale is not None else add, spatial=spatial, **extra)
        if scale is None:
            return x + add[:, :, None, None]
        out = x * scale[:, :, None, None]
        return out if add is None else out + add[:, :, None, None]

    def extra_repr(self) -> str:
        return f"channels={self.channels}, hidden={self.hidden}, fusion={self.fusion!r}, pooling={self.pooling!r}"
