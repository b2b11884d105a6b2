"""Rotate to Attend: Convolutional Triplet Attention Module (Misra et al., WACV 2021), https://arxiv.org/abs/2010.03045.

Three branches, each a spatial gate on a 2-D view of the (C, H, W) volume: Z-pool (max and mean,
concatenated in that order) over the third dimension, a k x k conv 2 -> 1 without bias, BN, sigmoid.

* ``SpatialGate`` (HW branch): pools over C; map indexed [h, w], broadcast over C;
* ``ChannelGateH`` (CW branch): pools over H; map indexed [c, w], broadcast over H;
* ``ChannelGateW`` (HC branch): pools over W; map indexed [h, c] (the official code's
  ``x.permute(0, 3, 2, 1)`` orientation, so the conv kernel's rows run along H), broadcast over W.

out = x * (w_hw + w_cw + w_hc) / 3 (``no_spatial=True``: x * (w_cw + w_hc) / 2). The official code
permutes and copies the full tensor twice per branch; here the maps are computed from the pooled
descriptors only (six reductions of x), the 1/3 is folded into the small maps, and the broadcast sum
is built once in x's memory format, so x is read by the reductions and the final product only.

Parameter names follow the official code (``ChannelGateH.spatial.conv.weight``,
``SpatialGate.spatial.bn.running_mean``, ...; BN momentum 0.01 as there), so its checkpoints load.
A BN that sees one value per channel in training mode (a 1x1 map with batch size one) normalises
with its running statistics without updating them (see :func:`attnlab.attention._ops.batch_norm`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._dispatch import tracing
from ._groups import check_odd_kernel
from ._layers import ActLike, apply_act, make_act
from ._ops import batch_norm, reduce_dim, sum_like
from .base import AttentionModule
from .registry import register_attention

__all__ = ["TripletAttention"]


class _ConvBN(nn.Module):
    """The official ``BasicConv(2, 1, k, relu=False)``: k x k conv without bias, then BN."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, z: Tensor) -> Tensor:
        return batch_norm(self.bn, self.conv(z))


class _ZPoolGate(nn.Module):
    """One branch: logits (N, 1, A, B) of a Z-pooled image (N, 2, A, B) ([max; mean])."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.spatial = _ConvBN(kernel_size)

    def forward(self, z: Tensor) -> Tensor:
        return self.spatial(z)


@register_attention("triplet")
class TripletAttention(AttentionModule):
    """Triplet attention.

    Args:
        channels: input channels C (checked against the input; no parameter depends on it).
        kernel_size: odd size k of each branch's conv (7).
        no_spatial: drop the HW branch and average the other two.
        gate: gate of each branch, default sigmoid.

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records spatial = the HW branch's map gate(.) (N, 1, H, W); with
        ``no_spatial``, the mean over C of the applied weights (w_cw + w_hc) / 2 instead.

    Raises:
        ValueError: for an even or non-positive ``kernel_size`` or a non-bool ``no_spatial``.

    Parameters: 3*(2*k*k + 2) (2*(2*k*k + 2) with ``no_spatial``): conv weights and BN affine.
    """

    paper = "Misra et al., Rotate to Attend: Convolutional Triplet Attention Module, WACV 2021"
    param_formula = "3*(2*k*k + 2)  (k=7; 2*(2*k*k + 2) with no_spatial)"
    preserves_channels_last = True

    def __init__(self, channels: int, kernel_size: int = 7, no_spatial: bool = False, gate: ActLike = None) -> None:
        super().__init__(channels)
        check_odd_kernel(kernel_size, "triplet kernel_size")
        self.kernel_size = kernel_size
        if not isinstance(no_spatial, bool):
            raise ValueError(f"triplet no_spatial must be True or False, got {no_spatial!r}")
        self.no_spatial = no_spatial
        self.ChannelGateH = _ZPoolGate(kernel_size)
        self.ChannelGateW = _ZPoolGate(kernel_size)
        if not self.no_spatial:
            self.SpatialGate = _ZPoolGate(kernel_size)
        self.gate = make_act(gate, "sigmoid")

    def maps(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """The three branch maps gate(.), as views broadcastable to (N, C, H, W).

        Returns:
            w_cw (N, C, 1, W), w_hc (N, C, H, 1) and w_hw (N, 1, H, W) (None with ``no_spatial``).
        """
        n, c, h, w = x.shape
        # CW branch: pool over H -> image [c, w] (N, 2, C, W).
        z_cw = torch.stack([reduce_dim(x, "amax", 2), reduce_dim(x, "mean", 2)], 1)
        w_cw = apply_act(self.gate, self.ChannelGateH(z_cw))  # (N, 1, C, W)
        # HC branch: pool over W -> (N, 2, C, H), oriented [h, c] -> (N, 2, H, C) (a view).
        z_hc = torch.stack([reduce_dim(x, "amax", 3), reduce_dim(x, "mean", 3)], 1).transpose(2, 3)
        w_hc = apply_act(self.gate, self.ChannelGateW(z_hc))  # (N, 1, H, C)
        w_cw = w_cw.reshape(n, c, 1, w)  # (N, 1, C, W) -> (N, C, 1, W)
        w_hc = w_hc[:, 0].transpose(1, 2)[..., None]  # (N, 1, H, C) -> (N, C, H, 1)
        w_hw = None
        if not self.no_spatial:
            z_hw = torch.stack([reduce_dim(x, "amax", 1), reduce_dim(x, "mean", 1)], 1)  # (N, 2, H, W)
            w_hw = apply_act(self.gate, self.SpatialGate(z_hw))  # (N, 1, H, W)
        return w_cw, w_hc, w_hw

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        w_cw, w_hc, w_hw = self.maps(x)
        if self.attention_sink is not None:
            if w_hw is None:  # no HW branch: the mean over C of the applied weights (w_cw + w_hc) / 2
                w_hw_eq = (w_cw.mean(1, keepdim=True) + w_hc.mean(1, keepdim=True)) / 2  # (N, 1, H, W)
                self._emit(spatial=w_hw_eq)
            else:
                self._emit(spatial=w_hw)
        scale = 1.0 / (2 if w_hw is None else 3)  # folded into the small maps
        terms = [t * scale for t in (w_cw, w_hc, w_hw) if t is not None]
        att = sum_like(x, *terms)  # (N, C, H, W), laid out like x
        if not torch.is_grad_enabled() and not tracing():
            return att.mul_(x)
        return x * att

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}, no_spatial={self.no_spatial}"
