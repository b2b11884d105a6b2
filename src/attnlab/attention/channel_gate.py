"""Base for modules of the form out = x * gate(avgpool(x)): SE, ECA (and any user module of that shape)."""

from __future__ import annotations

from torch import Tensor

from ._dispatch import channel_gate_forward, spatial_mean
from .base import AttentionModule

__all__ = ["ChannelGateModule"]


class ChannelGateModule(AttentionModule):
    """out = x * weights(avg_hw(x)), by the fused path :func:`~._dispatch.channel_gate_forward` picks.

    Subclasses define ``weights(avg) -> (N, C)``; records channel weights (N, C). The module answers
    :meth:`channel_scale`, so a residual block may fuse the gate with its addition; a subclass that
    overrides ``forward`` (and not ``channel_scale``) no longer does (see :class:`AttentionModule`).
    """

    def channel_scale(self, x: Tensor) -> Tensor | None:
        """The weights (N, C) of the gate on ``x`` (N, C, H, W): ``self(x) == x * w[:, :, None, None]``."""
        self._check_input(x)
        return self.weights(spatial_mean(x))  # (N, C, H, W) -> (N, C) descriptor -> (N, C) weights

    def weights(self, avg: Tensor, _max: Tensor | None = None) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        out, w = channel_gate_forward(x, self.weights, list(self.parameters()), record=self.attention_sink is not None)
        if w is not None:
            self._emit(channel=w)  # (N, C)
        return out
