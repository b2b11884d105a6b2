"""SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural Networks (Yang et al., ICML 2021),
https://proceedings.mlr.press/v139/yang21o.html.

Each neuron's weight is the sigmoid of its inverse minimal energy (the paper's Eq. 16), from the
statistics of its own channel over the H x W positions, with n = H*W - 1:

    d = (x - mean_hw(x))^2,  v = sum_hw(d) / n,  e_inv = d / (4 * (v + lambda)) + 0.5,
    out = x * sigmoid(e_inv).

v is the unbiased channel variance, computed from d (``torch.var_mean`` is many times slower than
a mean and a sum on CPU). Without autograd the whole chain runs in place in one buffer. For a 1x1
map (H*W = 1, n = 0) the paper's formula is 0/0; here n is taken as 1 there, so d = v = 0 and
every weight is sigmoid(0.5) instead of NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._dispatch import tracing
from ._layers import ActLike, make_act
from ._ops import gate_
from .base import AttentionModule
from .registry import register_attention

__all__ = ["SimAM"]


@register_attention("simam")
class SimAM(AttentionModule):
    """SimAM, parameter-free 3-D attention.

    Args:
        channels: input channels C (checked against the input; SimAM has no parameters).
        e_lambda: the energy regulariser lambda (> 0, default 1e-4).
        gate: function of the inverse energy, default sigmoid.

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records spatial = mean over C of the weights (N, 1, H, W) and
        channel = mean over positions of the weights (N, C).

    Raises:
        ValueError: for ``e_lambda`` <= 0 (or not a finite number).

    Parameters: 0.
    """

    paper = "Yang et al., SimAM: A Simple, Parameter-Free Attention Module for CNNs, ICML 2021"
    param_formula = "0"
    preserves_channels_last = True

    def __init__(self, channels: int, e_lambda: float = 1e-4, gate: ActLike = None) -> None:
        super().__init__(channels)
        if isinstance(e_lambda, bool) or not isinstance(e_lambda, (int, float)) or not 0 < e_lambda < float("inf"):
            raise ValueError(f"SimAM e_lambda must be a finite number > 0, got {e_lambda!r}")
        self.e_lambda = float(e_lambda)
        self.gate = make_act(gate, "sigmoid")

    def weights(self, x: Tensor) -> Tensor:
        """The weights gate(e_inv) (N, C, H, W) of x, in x's memory format."""
        n = max(x.shape[2] * x.shape[3] - 1, 1)  # H*W = 1: d = 0, so v = 0 rather than 0/0
        d = x - x.mean((2, 3), keepdim=True)  # (N, C, H, W)
        inplace = not torch.is_grad_enabled() and not tracing()
        d = d.square_() if inplace else d.square()  # (x - mean)^2
        k = 0.25 / (d.sum((2, 3), keepdim=True) / n + self.e_lambda)  # (N, C, 1, 1): 1 / (4 (v + lambda))
        e = d.mul_(k) if inplace else d * k
        return gate_(self.gate, e.add_(0.5))

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        w = self.weights(x)
        if self.attention_sink is not None:
            self._emit(channel=w.mean((2, 3)), spatial=w.mean(1, keepdim=True))
        if not torch.is_grad_enabled() and not tracing():
            return w.mul_(x)
        return x * w

    def extra_repr(self) -> str:
        return f"channels={self.channels}, e_lambda={self.e_lambda}"
