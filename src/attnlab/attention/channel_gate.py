"""Base for modules of the form out = x * gate(avgpool(x)): SE, ECA (and any user module of that shape)."""

from __future__ import annotations

from torch import Tensor

from ._dispatch import needs_grad, tracing
from ._gates import ChannelGate, avg_hw
from .base import AttentionModule

__all__ = ["ChannelGateModule"]


class ChannelGateModule(AttentionModule):
    """out = x * weights(avg_hw(x)), with the fused eager path of :class:`ChannelGate`.

    Subclasses define ``weights(avg) -> (N, C)``; records channel weights (N, C). The module answers
    :meth:`channel_scale`, so a residual block may fuse the gate with its addition; a subclass that
    overrides ``forward`` (and not ``channel_scale``) no longer does (see :class:`AttentionModule`).
    """

    def channel_scale(self, x: Tensor) -> Tensor | None:
        """The weights (N, C) of the gate on ``x`` (N, C, H, W): ``self(x) == x * w[:, :, None, None]``."""
        self._check_input(x)
        return self.weights(x.mean((2, 3)))  # (N, C, H, W) -> (N, C) descriptor -> (N, C) weights

    def weights(self, avg: Tensor, _max: Tensor | None = None) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        params = list(self.parameters())
        if not tracing() and needs_grad(x, params):
            out = ChannelGate.apply(x, self.weights, *params)
            if self.attention_sink is not None:
                self._emit(channel=self.weights(avg_hw(x.detach())))
            return out
        w = self.weights(avg_hw(x))  # (N, C)
        if self.attention_sink is not None:
            self._emit(channel=w)
        return x * w[:, :, None, None]
