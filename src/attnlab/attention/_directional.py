"""The base of the modules that gate by direction: a weight per row and a weight per column of each channel.

Coordinate Attention and Efficient Local Attention differ in how they make the two weights (a 1x1 conv on the
joined pooled strips, or a 1-D conv and GroupNorm on each) and agree on what they do with them:
``out = x * a_h * a_w``, with a_h (N, C, H) broadcast over the columns and a_w (N, C, W) over the rows, and the
same recorded maps (channel weights mean_h a_h * mean_w a_w, spatial map mean_c a_h * a_w).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._dispatch import tracing
from ._ops import layout_like
from .base import AttentionModule

__all__ = ["DirectionalAttention"]


class DirectionalAttention(AttentionModule):
    """``x * a_h * a_w`` for the weights :meth:`weights` gives; subclasses define :meth:`weights`."""

    def weights(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """a_h (N, C, H) and a_w (N, C, W) of x (N, C, H, W), each in the gate's range."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        a_h, a_w = self.weights(x)
        if self.attention_sink is not None:
            spatial = torch.bmm(a_h.transpose(1, 2), a_w) / self.channels  # (N, H, W): mean_c a_h * a_w
            self._emit(channel=a_h.mean(2) * a_w.mean(2), spatial=spatial[:, None])
        out = x * layout_like(x, a_h[:, :, :, None])  # (N, C, H, 1), stored like x: keeps x's memory format
        a_w = layout_like(x, a_w[:, :, None, :])  # (N, C, 1, W)
        return out.mul_(a_w) if not torch.is_grad_enabled() and not tracing() else out * a_w
