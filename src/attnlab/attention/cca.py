"""CCNet: Criss-Cross Attention for Semantic Segmentation (Huang et al., ICCV 2019), https://arxiv.org/abs/1811.11721.

Self-attention restricted to the criss-cross path of each position: position u = (h, w) attends to
the H + W - 1 positions of its row and its column (itself counted once). Q, K = conv1x1(x) (C -> C',
C' = C/8, with bias), V = conv1x1(x) (C -> C, with bias):

    d_{u,i} = Q_u . K_{Omega_u,i},  A = softmax over the H + W - 1 positions i of Omega_u,
    H'_u = gamma * sum_i A_{u,i} V_{Omega_u,i} + H_u.

The energies of the column and of the row are concatenated, (H + W) per position, with the column
entry of u itself set to -inf so that it counts once (as the row's), and one softmax runs over them
(the paper's Eq. 1-2; the official pure-PyTorch code's ``INF`` diagonal). gamma starts at zero
(:meth:`CrissCrossAttention.zero_init_last`), so a new module returns its input exactly.

Recurrent criss-cross attention (RCCA): the module is applied ``recurrence``
times with shared weights; R = 2 (the paper's default) passes information from every position to
every other (v reaches u through the position in u's row and v's column, which sees v in the first
pass and is seen by u in the second), R = 1 only from u's own row and column.

Parameter names follow the official code (``query_conv``, ``key_conv``, ``value_conv``, ``gamma``).
The paper applies RCCA once, on the reduced output of the backbone (a segmentation head); a
classification network here places it like Non-Local (``placement="after_blocks"``).

Parameters: 2*(C*C' + C') + C^2 + C + 1, C' = max(1, C // 8): the same for any R.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import AttentionModule, reduced_channels
from .registry import register_attention

__all__ = ["CrissCrossAttention"]


@register_attention("cca")
class CrissCrossAttention(AttentionModule):
    """(Recurrent) criss-cross attention.

    Args:
        channels: input channels C.
        recurrence: R >= 1, the number of criss-cross passes with shared weights (2, the paper's RCCA).
        reduction: query/key width C' = ``max(min_channels, C // reduction)`` (8, the paper's).
        min_channels: minimum query/key width (1).

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records, for the last pass: spatial = the mean attention each
        position receives (N, 1, H, W; it sums to one over the positions), and
        ``extra["column_attention"]`` (N, H, W, H) = A over the column of each (h, w) (its own entry
        is 0) and ``extra["row_attention"]`` (N, H, W, W) = A over its row.

    Raises:
        ValueError: for ``recurrence`` < 1.

    Parameters: 2*(C*C' + C') + C^2 + C + 1.
    """

    paper = "Huang et al., CCNet: Criss-Cross Attention for Semantic Segmentation, ICCV 2019"
    param_formula = "2*(C*C' + C') + C^2 + C + 1, C' = C//8  (R=2 shares them)"
    placement = "after_blocks"  # the paper: once, on the backbone's output; a residual global-context block

    def __init__(self, channels: int, recurrence: int = 2, reduction: float = 8, min_channels: int = 1) -> None:
        super().__init__(channels)
        if isinstance(recurrence, bool) or not isinstance(recurrence, int) or recurrence < 1:
            raise ValueError(f"criss-cross recurrence must be an int >= 1, got {recurrence!r}")
        self.recurrence = recurrence
        inner = reduced_channels(channels, reduction, min_channels)
        self.query_conv = nn.Conv2d(channels, inner, 1)
        self.key_conv = nn.Conv2d(channels, inner, 1)
        self.value_conv = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def zero_init_last(self) -> None:
        """Zero gamma (the paper's init): the module returns its input."""
        nn.init.zeros_(self.gamma)

    def attention(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One pass on x (N, C, H, W): column attention (N, H, W, H), row attention (N, H, W, W), values V (N, C, H, W).

        Entry [n, h, w, g] of the column attention is A from (h, w) to (g, w), entry [n, h, w, v] of
        the row attention A from (h, w) to (h, v); together they sum to one, the column's (h, h) entry is 0.
        """
        h = x.shape[2]
        inner = self.query_conv.out_channels
        weight = torch.cat([self.query_conv.weight, self.key_conv.weight, self.value_conv.weight])
        bias = torch.cat([self.query_conv.bias, self.key_conv.bias, self.value_conv.bias])
        q, k, v = F.conv2d(x, weight, bias).split([inner, inner, self.channels], dim=1)  # one 1x1 conv
        e_col = torch.einsum("nchw,ncgw->nhwg", q, k)  # (N, H, W, H): u = (h, w) against (g, w)
        e_row = torch.einsum("nchw,nchv->nhwv", q, k)  # (N, H, W, W): u = (h, w) against (h, v)
        self_col = torch.eye(h, dtype=torch.bool, device=x.device)[:, None, :]  # (H, 1, H): g == h
        e_col = e_col.masked_fill(self_col, float("-inf"))  # u itself is counted once, in its row
        att = torch.cat([e_col, e_row], dim=3).softmax(3)  # one softmax over the H + W - 1 positions
        return att[..., :h], att[..., h:], v

    def _step(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x + gamma * criss-cross aggregate of V, and the pass's two attentions."""
        a_col, a_row, v = self.attention(x)
        y = torch.einsum("nhwg,ncgw->nchw", a_col, v) + torch.einsum("nhwv,nchv->nchw", a_row, v)
        return x + self.gamma * y, a_col, a_row

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        out = x
        for _ in range(self.recurrence):
            out, a_col, a_row = self._step(out)
        if self.attention_sink is not None:
            n, _, h, w = x.shape
            received = a_col.sum(1).transpose(1, 2) + a_row.sum(2)  # (N, W, H) -> (N, H, W), + (N, H, W)
            self._emit(spatial=(received / (h * w))[:, None], column_attention=a_col, row_attention=a_row)
        return out

    def extra_repr(self) -> str:
        return f"channels={self.channels}, recurrence={self.recurrence}"
