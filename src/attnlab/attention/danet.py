"""Dual Attention Network for Scene Segmentation (Fu et al., CVPR 2019), https://arxiv.org/abs/1809.02983.

Two self-attention modules in parallel, each added back to its input through a learnable scale
that starts at zero (the paper's alpha and beta, the official code's ``gamma``):

* position attention (PAM): B = conv_q(x), C = conv_k(x) (C -> C/8 each, with bias), D = conv_v(x)
  (C -> C, with bias); s_ji = softmax_i(B_i . C_j) over the HW positions i (s is (HW, HW));
  E_j = alpha sum_i s_ji D_i + x_j;
* channel attention (CAM): no convolution; the (C, C) affinity e = A A^T of the flattened map
  A (C, HW); E = beta softmax(e') A + x.

``branches="both"`` (the paper's DA module) sums them, out = x + alpha PAM(x) + beta CAM(x) (the
paper fuses the two outputs by element-wise sum); ``"position"`` and ``"channel"`` are its ablations
(the paper's ablation study). ``danet`` takes a ``branches`` option; the two branches are also registered
on their own, ``danet_pam`` (:class:`PositionAttention`) and ``danet_cam`` (:class:`ChannelSelfAttention`),
because users reach for them by name as stand-alone blocks (the registry-wide checks then run on each).

Which softmax the CAM takes (``cam_softmax``): the paper's Eq. 3 is softmax(e), but the authors'
code, which produced the paper's numbers, takes softmax(max_j e_ij - e_ij) = softmax(-e) (a
shift-invariant softmax of the negated affinity, so a channel attends most to the channels least
like it; junfu1115/DANet issues #9 and #106). ``"official"`` (default) is the code's, ``"paper"``
the equation's.

The module is a residual global-context block, placed like Non-Local (``placement="after_blocks"``):
the paper appends the two modules once, on the output of the backbone's last stage (a segmentation
head); a classification network here puts it after chosen residual blocks. alpha = beta = 0 at
construction (:meth:`DualAttention.zero_init_last`), so a new module returns its input exactly.
Parameter names follow the official code (``pam.query_conv``, ``pam.key_conv``, ``pam.value_conv``,
``pam.gamma``, ``cam.gamma``).

Parameters: position 2*(C*C' + C') + C^2 + C + 1 with C' = max(1, C // 8); channel 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import AttentionModule, reduced_channels
from .registry import register_attention

__all__ = ["ChannelSelfAttention", "DualAttention", "DANET_BRANCHES", "PositionAttention"]

DANET_BRANCHES = ("both", "position", "channel")
_CAM_SOFTMAX = ("official", "paper")


class _PositionAttention(nn.Module):
    """PAM's parameters: query/key convs C -> C', value conv C -> C, the scale ``gamma`` (starts at 0)."""

    def __init__(self, channels: int, inner: int) -> None:
        super().__init__()
        self.query_conv = nn.Conv2d(channels, inner, 1)
        self.key_conv = nn.Conv2d(channels, inner, 1)
        self.value_conv = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def tokens(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """q, k (N, HW, C') and v (N, HW, C) of x (N, C, H, W), from one GEMM on its (N, HW, C) view."""
        weight = torch.cat([self.query_conv.weight, self.key_conv.weight, self.value_conv.weight]).flatten(1)
        bias = torch.cat([self.query_conv.bias, self.key_conv.bias, self.value_conv.bias])
        t = F.linear(x.flatten(2).transpose(1, 2), weight, bias)  # (N, HW, 2C' + C)
        inner = self.query_conv.out_channels
        return t[..., :inner], t[..., inner:2 * inner], t[..., 2 * inner:]


class _ChannelAttention(nn.Module):
    """CAM's one parameter: the scale ``gamma`` (starts at 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))


@register_attention("danet")
class DualAttention(AttentionModule):
    """DANet's dual attention: position and channel self-attention, summed onto the input.

    Args:
        channels: input channels C.
        branches: ``"both"`` (the paper's module), ``"position"`` (PAM only) or ``"channel"`` (CAM only).
        reduction: PAM's query/key width C' = ``max(min_channels, C // reduction)`` (8, the paper's).
        min_channels: minimum query/key width (1).
        cam_softmax: ``"official"`` (softmax(-A A^T), the authors' code, default) or ``"paper"``
            (softmax(A A^T), the paper's Eq. 3); see the module docstring.

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records (for the branches present) spatial = the mean PAM
        attention each position receives (N, 1, H, W) and channel = the mean CAM attention each channel
        receives (N, C), with the attentions themselves as ``extra["position_attention"]`` (N, HW, HW) and
        ``extra["channel_attention"]`` (N, C, C).

    Raises:
        ValueError: for unknown ``branches`` or ``cam_softmax``.

    Parameters: 2*(C*C' + C') + C^2 + C + 2 (both), 2*(C*C' + C') + C^2 + C + 1 (position), 1 (channel).
    """

    paper = "Fu et al., Dual Attention Network for Scene Segmentation, CVPR 2019"
    param_formula = "2*(C*C' + C') + C^2 + C + 2, C' = C//8  (both branches)"
    placement = "after_blocks"  # the paper: on the backbone's output, a residual global-context block

    def __init__(self, channels: int, branches: str = "both", reduction: float = 8, min_channels: int = 1,
                 cam_softmax: str = "official") -> None:
        super().__init__(channels)
        if branches not in DANET_BRANCHES:
            raise ValueError(f"unknown DANet branches {branches!r}; choose one of {', '.join(DANET_BRANCHES)}")
        if cam_softmax not in _CAM_SOFTMAX:
            raise ValueError(f"unknown DANet cam_softmax {cam_softmax!r}; choose one of {', '.join(_CAM_SOFTMAX)}")
        self.branches = branches
        self.cam_softmax = cam_softmax
        if branches in ("both", "position"):
            self.pam = _PositionAttention(channels, reduced_channels(channels, reduction, min_channels))
        if branches in ("both", "channel"):
            self.cam = _ChannelAttention()

    def zero_init_last(self) -> None:
        """Zero both scales (the paper's init): the module returns its input."""
        for branch in ("pam", "cam"):
            if hasattr(self, branch):
                nn.init.zeros_(getattr(self, branch).gamma)

    def position_attention(self, x: Tensor) -> Tensor:
        """PAM's attention s (N, HW, HW), row j = query position j, softmax over the key positions i."""
        q, k, _ = self.pam.tokens(x)
        return torch.bmm(q, k.transpose(1, 2)).softmax(-1)

    def channel_attention(self, x: Tensor) -> Tensor:
        """CAM's attention (N, C, C), row c = the weights channel c gives to every channel."""
        a = x.flatten(2)  # (N, C, HW)
        e = torch.bmm(a, a.transpose(1, 2))  # (N, C, C)
        return (e.neg() if self.cam_softmax == "official" else e).softmax(-1)  # softmax(max - e) = softmax(-e)

    def _position(self, x: Tensor, record: bool) -> tuple[Tensor, Tensor | None]:
        """alpha * PAM aggregate (N, C, H, W), and the attention when recording."""
        q, k, v = self.pam.tokens(x)
        if record:
            s = torch.bmm(q, k.transpose(1, 2)).softmax(-1)  # (N, HW, HW)
            y = torch.bmm(s, v)
        else:
            s = None
            y = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None], scale=1.0)[:, 0]  # (N, HW, C)
        return (self.pam.gamma * y).transpose(1, 2).unflatten(2, x.shape[2:]), s

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        record = self.attention_sink is not None
        out, spatial, channel, extra = x, None, None, {}
        if self.branches != "channel":
            p, s = self._position(x, record)
            out = out + p
            if s is not None:
                spatial = s.mean(1).view(x.shape[0], 1, x.shape[2], x.shape[3])  # mean attention received
                extra["position_attention"] = s
        if self.branches != "position":
            att = self.channel_attention(x)  # (N, C, C)
            out = out + (self.cam.gamma * torch.bmm(att, x.flatten(2))).view_as(x)  # (N, C, C) @ (N, C, HW)
            if record:
                channel, extra["channel_attention"] = att.mean(1), att
        if record:
            self._emit(channel, spatial, **extra)
        return out

    def extra_repr(self) -> str:
        return f"channels={self.channels}, branches={self.branches!r}, cam_softmax={self.cam_softmax!r}"


@register_attention("danet_pam")
class PositionAttention(DualAttention):
    """DANet's position attention module (PAM) on its own: ``DualAttention(channels, branches="position")``.

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records spatial = the mean attention each position receives (N, 1, H, W)
        and ``extra["position_attention"]`` (N, HW, HW).
    """

    param_formula = "2*(C*C' + C') + C^2 + C + 1, C' = C//8"

    def __init__(self, channels: int, reduction: float = 8, min_channels: int = 1) -> None:
        super().__init__(channels, branches="position", reduction=reduction, min_channels=min_channels)


@register_attention("danet_cam")
class ChannelSelfAttention(DualAttention):
    """DANet's channel attention module (CAM) on its own: ``DualAttention(channels, branches="channel")``.

    Shape:
        (N, C, H, W) -> (N, C, H, W); one parameter (its scale, zero at init). Records channel = the mean
        attention each channel receives (N, C) and ``extra["channel_attention"]`` (N, C, C).
    """

    param_formula = "1"

    def __init__(self, channels: int, cam_softmax: str = "official") -> None:
        super().__init__(channels, branches="channel", cam_softmax=cam_softmax)
