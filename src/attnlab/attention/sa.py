"""SA-Net: Shuffle Attention for Deep Convolutional Neural Networks (Zhang and Yang, ICASSP 2021),
https://arxiv.org/abs/2102.00240.

The C channels are split into G groups of 2k channels (k = C / 2G); each group into two halves of k:

* channel branch (first half): s = avgpool(x) (N, G, k); x' = x * gate(w_c * s + b_c), w_c, b_c in R^k;
* spatial branch (second half): x' = x * gate(w_s * GN(x) + b_s), w_s, b_s in R^k, where GN is a
  GroupNorm with one group per channel (k groups over k channels: each channel of each sample
  normalised over its H x W positions) with its own affine weight and bias in R^k;
* the halves are concatenated back in place and a channel shuffle with 2 groups follows: the output
  channel o = 2a + s (a < C/2, s in {0, 1}) is the gated input channel s * C/2 + a, so every
  output group of the next layer sees both branches and several groups.

The k-vectors are shared by all G groups, so the module has 6k = 3C/G parameters: 708 for the
whole of SA-Net-50 at G = 64, whose 25.56M parameters are ResNet-50's. They start as in the official code
(``wofmanaf/SA-Net``): w = 0, b = 1 for both branches, GN weight 1 and bias 0; the parameter names and
shapes are the official ones (``cweight``, ``cbias``, ``sweight``, ``sbias`` of shape (1, k, 1, 1),
``gn``), so its checkpoints load.

The paper uses G = 64; C must be even and divisible by 2G. With ``groups=None`` the module takes the
paper's 64 where 128 divides C, else the largest G < 64 with 2G dividing C (C = 32 -> G = 16).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._layers import ActLike, apply_act, make_act
from .base import AttentionModule
from .registry import register_attention

__all__ = ["ShuffleAttention"]


def _default_groups(channels: int, preferred: int = 64) -> int:
    """The largest G <= ``preferred`` with 2G dividing ``channels`` (raises for an odd count)."""
    if channels % 2:
        raise ValueError(f"ShuffleAttention splits each group in two halves: channels must be even, got {channels}")
    return next(g for g in range(min(preferred, channels // 2), 0, -1) if channels % (2 * g) == 0)


@register_attention("sa")
class ShuffleAttention(AttentionModule):
    """Shuffle attention (SA) block.

    Args:
        channels: input channels C (even).
        groups: number of groups G (2G must divide C); None: the paper's 64 where it fits, else the
            largest G < 64 that does (see the module docstring).
        eps: the GroupNorm epsilon (1e-5, torch's and the official code's).
        gate: gate of both branches, default sigmoid.

    Shape:
        (N, C, H, W) -> (N, C, H, W), channels shuffled (see :meth:`channel_shuffle`). Records, in the
        input's channel order (the gate applied to input channel c, which lands on output channel
        ``permutation().argsort()[c]``): channel = the mean over positions of the gate of each channel
        (N, C) and spatial = the mean over channels of the gate (N, 1, H, W).

    Raises:
        ValueError: for an odd C, or a ``groups`` with 2 * groups not dividing C.

    Parameters: 3*C/G (w_c, b_c, w_s, b_s and the GroupNorm's weight and bias, k = C/2G each).
    """

    paper = "Zhang and Yang, SA-Net: Shuffle Attention for Deep Convolutional Neural Networks, ICASSP 2021"
    param_formula = "3*C/G  (G=64)"

    def __init__(self, channels: int, groups: int | None = None, eps: float = 1e-5, gate: ActLike = None) -> None:
        super().__init__(channels)
        if groups is None:
            groups = _default_groups(channels)
        elif isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or channels % (2 * groups):
            hint = f"; try groups={_default_groups(channels)}" if channels % 2 == 0 else " (channels must be even)"
            raise ValueError(f"ShuffleAttention needs 2 * groups to divide channels (each group is split in two "
                             f"halves): got channels={channels}, groups={groups!r}{hint}")
        self.groups = groups
        k = channels // (2 * groups)
        self.cweight = nn.Parameter(torch.zeros(1, k, 1, 1))
        self.cbias = nn.Parameter(torch.ones(1, k, 1, 1))
        self.sweight = nn.Parameter(torch.zeros(1, k, 1, 1))
        self.sbias = nn.Parameter(torch.ones(1, k, 1, 1))
        self.gn = nn.GroupNorm(k, k, eps=eps)
        self.gate = make_act(gate, "sigmoid")

    @staticmethod
    def channel_shuffle(x: Tensor, groups: int = 2) -> Tensor:
        """ShuffleNet's channel shuffle: (N, C, H, W) viewed as (N, groups, C/groups, H, W), the two group axes swapped.

        Output channel ``o = a * groups + s`` is input channel ``s * C/groups + a``.
        """
        n, c, h, w = x.shape
        return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)

    def permutation(self) -> Tensor:
        """The input channel each output channel carries: ``out[:, o] = gated x[:, permutation()[o]]``, (C,)."""
        ids = torch.arange(self.channels, dtype=torch.float64).view(1, -1, 1, 1)
        return self.channel_shuffle(ids).flatten().long()

    def gates(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The channel-branch gate (N, G, k, 1, 1) and the spatial-branch gate (N, G, k, H, W) of x (N, C, H, W)."""
        n, _, h, w = x.shape
        x6 = x.reshape(n, self.groups, 2, -1, h, w)  # channel c = (group, branch, j)
        x0, x1 = x6[:, :, 0], x6[:, :, 1]  # (N, G, k, H, W) each
        k = x0.shape[2]
        s = x0.mean((3, 4), keepdim=True)  # (N, G, k, 1, 1)
        g_c = apply_act(self.gate, self.cweight.view(k, 1, 1) * s + self.cbias.view(k, 1, 1))
        var, mean = torch.var_mean(x1, dim=(3, 4), unbiased=False, keepdim=True)  # per (sample, group, channel)
        # w_s * (gn_w * (x - mean) / std + gn_b) + b_s, with the affine maps folded into one scale and shift
        scale = (self.sweight * self.gn.weight.view(1, k, 1, 1)).view(k, 1, 1) * torch.rsqrt(var + self.gn.eps)
        shift = (self.sweight * self.gn.bias.view(1, k, 1, 1) + self.sbias).view(k, 1, 1) - mean * scale
        g_s = apply_act(self.gate, x1 * scale + shift)  # (N, G, k, H, W)
        return g_c, g_s

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        n, c, h, w = x.shape
        g_c, g_s = self.gates(x)
        x6 = x.reshape(n, self.groups, 2, -1, h, w)
        out = torch.stack([x6[:, :, 0] * g_c, x6[:, :, 1] * g_s], dim=2)  # (N, G, 2, k, H, W), input order
        if self.attention_sink is not None:
            channel = torch.stack([g_c.flatten(2), g_s.mean((3, 4))], dim=2).reshape(n, c)  # (N, G, 2, k) -> (N, C)
            spatial = (g_c.sum((1, 2)) + g_s.sum((1, 2))) / c  # (N, 1, 1) + (N, H, W): mean gate over C
            self._emit(channel=channel, spatial=spatial[:, None])
        return self.channel_shuffle(out.reshape(n, c, h, w))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, groups={self.groups}"
