"""BAM: Bottleneck Attention Module (Park et al., BMVC 2018), https://arxiv.org/abs/1807.06514.

Two branches on the same input, combined before one gate (the paper's Eq. 1-2):

* channel branch Mc (N, C): global average pool, then an MLP C -> C/r -> C whose hidden layer is
  Linear, BatchNorm1d, ReLU (as the official code, ``Jongchan/attention-module``);
* spatial branch Ms (N, 1, H, W): 1x1 conv C -> C/r, BN, ReLU, then ``num_dilated_convs`` 3x3
  convs C/r -> C/r with dilation d (padding d, so H x W is kept), each with BN and ReLU, then a 1x1
  conv C/r -> 1.

out = F * (1 + sigmoid(Mc + Ms)), with att = sigmoid(Mc + Ms) built once, in the input's memory
format, then ``addcmul(x, x, att)`` into att's storage without autograd, or ``x * (att + 1)`` with
it (addcmul's backward is markedly slower on CPU). The official code multiplies Mc * Ms instead of adding
them; this module follows the paper (sum).

Batch size one in training mode: BatchNorm1d on a single pooled sample has no batch statistics
(torch raises). There, and for any other BN that sees one value per channel (a 1x1 map with batch
size one), the layer normalises with its running statistics and leaves them unchanged, i.e. behaves
as in eval mode for that call (see :func:`attnlab.attention._ops.batch_norm`).

Parameter names follow the official code (``channel_att.gate_c.gate_c_fc_0.weight``,
``spatial_att.gate_s.gate_s_conv_di_0.weight``, ...), so its checkpoints load.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._dispatch import tracing
from ._layers import ActLike, apply_act, make_act
from ._ops import batch_norm, gate_, sum_like
from .base import AttentionModule, reduced_channels
from .registry import register_attention

__all__ = ["BAM"]


@register_attention("bam")
class BAM(AttentionModule):
    """Bottleneck Attention Module.

    Args:
        channels: input channels C.
        reduction: bottleneck ratio r (16) of both branches; hidden width h = ``max(min_channels, C // r)``.
        dilation: dilation d (>= 1) of the spatial branch's 3x3 convs (4 in the paper).
        num_dilated_convs: number n (>= 0) of dilated 3x3 convs in the spatial branch (2 in the paper).
        min_channels: minimum hidden width (1).
        act: hidden activation of both branches (name, class or callable), default ReLU.
        gate: gate applied to Mc + Ms, default sigmoid.

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records channel = gate(Mc) (N, C) and spatial = gate(Ms)
        (N, 1, H, W), each branch's own gate (the module applies gate(Mc + Ms)).

    Raises:
        ValueError: for ``dilation`` < 1, ``num_dilated_convs`` < 0 or ``reduction`` <= 0.

    Parameters: 3*C*h + C + 7*h + n*(9*h*h + 3*h) + 1 (BN weights and biases included).
    """

    paper = "Park et al., BAM: Bottleneck Attention Module, BMVC 2018"
    param_formula = "3*C*h + C + 7*h + n*(9*h*h + 3*h) + 1, h = C//r  (r=16, n=2)"
    preserves_channels_last = True
    placement = "stages"  # at the bottlenecks between stages (the paper's Fig. 1)

    def __init__(self, channels: int, reduction: float = 16, dilation: int = 4, num_dilated_convs: int = 2,
                 min_channels: int = 1, act: ActLike = None, gate: ActLike = None) -> None:
        super().__init__(channels)
        if isinstance(dilation, bool) or not isinstance(dilation, int) or dilation < 1:
            raise ValueError(f"BAM dilation must be an int >= 1, got {dilation!r}")
        if isinstance(num_dilated_convs, bool) or not isinstance(num_dilated_convs, int) or num_dilated_convs < 0:
            raise ValueError(f"BAM num_dilated_convs must be an int >= 0, got {num_dilated_convs!r}")
        hidden = reduced_channels(channels, reduction, min_channels)
        self.hidden = hidden
        self.dilation = dilation
        self.num_dilated_convs = num_dilated_convs
        self.channel_att = nn.ModuleDict({"gate_c": nn.Sequential(OrderedDict([
            ("gate_c_fc_0", nn.Linear(channels, hidden)),
            ("gate_c_bn_1", nn.BatchNorm1d(hidden)),
            ("gate_c_relu_1", make_act(act, "relu")),
            ("gate_c_fc_final", nn.Linear(hidden, channels)),
        ]))})
        layers: list[tuple[str, nn.Module]] = [
            ("gate_s_conv_reduce0", nn.Conv2d(channels, hidden, 1)),
            ("gate_s_bn_reduce0", nn.BatchNorm2d(hidden)),
            ("gate_s_relu_reduce0", make_act(act, "relu")),
        ]
        for i in range(num_dilated_convs):
            layers += [
                (f"gate_s_conv_di_{i}", nn.Conv2d(hidden, hidden, 3, padding=dilation, dilation=dilation)),
                (f"gate_s_bn_di_{i}", nn.BatchNorm2d(hidden)),
                (f"gate_s_relu_di_{i}", make_act(act, "relu")),
            ]
        layers.append(("gate_s_conv_final", nn.Conv2d(hidden, 1, 1)))
        self.spatial_att = nn.ModuleDict({"gate_s": nn.Sequential(OrderedDict(layers))})
        self.gate = make_act(gate, "sigmoid")

    def channel_logits(self, x: Tensor) -> Tensor:
        """Mc (N, C) from x (N, C, H, W): the MLP on the spatial average."""
        g = self.channel_att["gate_c"]
        h = F.linear(x.mean((2, 3)), g.gate_c_fc_0.weight, g.gate_c_fc_0.bias)  # (N, C) -> (N, h)
        h = apply_act(g.gate_c_relu_1, batch_norm(g.gate_c_bn_1, h))
        return F.linear(h, g.gate_c_fc_final.weight, g.gate_c_fc_final.bias)  # (N, h) -> (N, C)

    def spatial_logits(self, x: Tensor) -> Tensor:
        """Ms (N, 1, H, W) from x (N, C, H, W)."""
        g = self.spatial_att["gate_s"]
        s = apply_act(g.gate_s_relu_reduce0, batch_norm(g.gate_s_bn_reduce0, g.gate_s_conv_reduce0(x)))  # (N, h, H, W)
        for i in range(self.num_dilated_convs):
            conv = getattr(g, f"gate_s_conv_di_{i}")
            s = apply_act(getattr(g, f"gate_s_relu_di_{i}"), batch_norm(getattr(g, f"gate_s_bn_di_{i}"), conv(s)))
        return g.gate_s_conv_final(s)  # (N, h, H, W) -> (N, 1, H, W)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        mc = self.channel_logits(x)  # (N, C)
        ms = self.spatial_logits(x)  # (N, 1, H, W)
        att = gate_(self.gate, sum_like(x, mc[:, :, None, None], ms))  # (N, C, H, W), laid out like x
        if self.attention_sink is not None:
            self._emit(channel=apply_act(self.gate, mc), spatial=apply_act(self.gate, ms))
        if not torch.is_grad_enabled() and not tracing():
            return torch.addcmul(x, x, att, out=att)  # x * (1 + att) in one pass, reusing att's storage
        # With autograd, addcmul's backward is 1.4x (NCHW) to 3x (channels_last) slower on CPU than
        # that of a plain product with 1 + att, which also saves a gradient sum for x.
        return x * (att + 1)

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, hidden={self.hidden}, dilation={self.dilation}, "
                f"num_dilated_convs={self.num_dilated_convs}")
