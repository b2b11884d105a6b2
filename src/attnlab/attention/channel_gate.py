"""Base for modules of the form out = x * gate(avgpool(x)): SE, ECA (and any user module of that shape)."""

from __future__ import annotations

from torch import Tensor

from ._dispatch import needs_grad, tracing
from ._gates import ChannelGate
from ._gates import avg_hw as _avg_hw
from .base import AttentionModule

__all__ = ["ChannelGateModule"]


class ChannelGateModule(AttentionModule):
    """out = x * weights(avg_hw(x)), with the fused eager path of :class:`ChannelGate`.

    Subclasses define ``weights(avg) -> (N, C)``; records channel weights (N, C).
    """

    def weights(self, avg: Tensor, _max: Tensor | None = None) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        params = list(self.parameters())
        if not tracing() and needs_grad(x, params):
            out = ChannelGate.apply(x, self.weights, *params)
            if self.attention_sink is not None:
                self._emit(channel=self.weights(_avg_hw(x.detach())))
            return out
        w = self.weights(_avg_hw(x))  # (N, C)
        if self.attention_sink is not None:
            self._emit(channel=w)
        return x * w[:, :, None, None]
