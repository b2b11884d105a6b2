"""Gather-Excite: Exploiting Feature Context in Convolutional Neural Networks (Hu et al., NeurIPS 2018),
https://arxiv.org/abs/1810.12348.

A gather operator aggregates each channel over a spatial extent e; an excite operator brings the
gathered map back to the input's size (nearest-neighbour interpolation: each gathered value repeated over
its e x e block) and gates the input with it:
out = x * sigmoid(interp(gather(x))). Three variants, as in the paper and the authors' Caffe models
(``hujie-frank/GENet``: ``RN50-GEPF``, ``RN50-GEP``, ``RN50-GEPP``, and the figures of its README):

* ``"theta-"`` (GE-θ⁻, no parameters): gather is average pooling, global (``extent=0``: then
  out = x * sigmoid(avgpool(x)), a parameter-free channel gate) or with a (2e-1) x (2e-1) window at
  stride e, padding e-1 (the README's figure: "Ave Pooling (15x15, stride 8)" for e = 8), giving a
  ceil(H/e) x ceil(W/e) map;
* ``"theta"`` (GE-θ): gather is a depthwise convolution, with BN: for the global extent one conv whose
  kernel covers the whole feature map (the Caffe model's 56x56, 28x28, 14x14, 7x7 kernels), so the
  module is built for one input size, ``feat_size``; for extent e, log2(e) 3x3 stride-2 depthwise convs,
  each followed by BN, with a ReLU between consecutive ones;
* ``"theta+"`` (GE-θ+): GE-θ's gather, then ReLU and SE's excite MLP (1x1 convs C -> C/r -> C with
  biases and a ReLU between, r = 16) before the interpolation and sigmoid.

Layer names follow timm's ``GatherExcite`` (``gather.conv1``, ``gather.norm1``, ..., ``mlp.fc1``,
``mlp.fc2``), so its weights load. Where timm differs: its θ+ has no ReLU between the gather's last BN and
the MLP (the authors' ``RN50-GEPP`` has one; this module follows the authors), its MLP is on by default
(``use_mlp=True``, so its parameter-free ``extent=0`` is SE rather than GE-θ⁻), and its pooled windows are
averaged over the valid positions only (``count_include_pad=False``), as here.
"""

from __future__ import annotations

from collections import OrderedDict

import torch.nn.functional as F
from torch import Tensor, nn

from ._layers import ActLike, make_act
from ._ops import batch_norm, gate_
from .base import AttentionModule, reduced_channels
from .registry import register_attention

__all__ = ["GatherExcite", "GE_VARIANTS"]

#: the paper's three variants: parameter-free, parametric gather, parametric gather and excite
GE_VARIANTS = ("theta-", "theta", "theta+")


def _check_extent(extent: int, variant: str) -> int:
    if isinstance(extent, bool) or not isinstance(extent, int) or extent < 0 or extent == 1:
        raise ValueError(f"GE extent must be 0 (global) or an int >= 2, got {extent!r}")
    if variant != "theta-" and extent and extent & (extent - 1):
        raise ValueError(f"GE variant {variant!r} gathers with log2(extent) strided convs: extent must be a "
                         f"power of two, got {extent}")
    return extent


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in pair):
        raise ValueError(f"GE feat_size must be a positive int or (H, W) pair, got {size!r}")
    return pair  # type: ignore[return-value]


def _upsample_nearest(g: Tensor, e: int, h: int, w: int) -> Tensor:
    """Each gathered value repeated over its e x e block, cropped: (N, C, ceil(H/e), ceil(W/e)) -> (N, C, H, W).

    Row i of the output takes row i // e of g, the cell whose pooling window is centred on row (i // e) * e
    and covers row i. (``F.interpolate(size=...)`` picks floor(i * ceil(H/e) / H) instead, another cell
    wherever e does not divide H.)
    """
    big = g[:, :, :, None, :, None].expand(-1, -1, -1, e, -1, e)  # (N, C, h', e, w', e)
    return big.flatten(4, 5).flatten(2, 3)[:, :, :h, :w]


@register_attention("ge")
class GatherExcite(AttentionModule):
    """Gather-Excite block (GE-θ⁻, GE-θ or GE-θ+; global or local extent).

    Args:
        channels: input channels C.
        extent: 0 for the global extent, else e >= 2 (a power of two for the parametric variants):
            each gathered value summarises about an e x e neighbourhood.
        variant: ``"theta-"`` (no parameters; default), ``"theta"`` (depthwise-conv gather) or
            ``"theta+"`` (that gather and an SE-style excite MLP).
        feat_size: the (H, W) (or one int for a square map) of the input, required by the parametric
            variants at the global extent (their gather kernel covers the whole map) and refused otherwise.
        reduction: excite MLP ratio r (``"theta+"`` only; 16 when None); hidden width ``max(min_channels, C // r)``.
        min_channels: minimum hidden width of the excite MLP (1).
        act: activation between the gather convs and in the MLP (``"theta"``/``"theta+"`` only), default ReLU.
        gate: gating function, default sigmoid.

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records channel = the gate (N, C) at the global extent; at a local
        extent, spatial = mean over C of the interpolated gate (N, 1, H, W) and channel = its mean over
        positions (N, C).

    Raises:
        ValueError: for an unknown variant, a bad extent, a missing or unneeded ``feat_size``, an option the
            variant does not use, and (in forward) an input of another size than ``feat_size``.

    Parameters: 0 (θ⁻); H*W*C + 2C (θ, global); 11*C*log2(e) (θ, extent e); θ+ adds 2*C*(C//r) + C//r + C.
    """

    paper = "Hu et al., Gather-Excite: Exploiting Feature Context in CNNs, NeurIPS 2018"
    param_formula = "0 (theta-); H*W*C + 2*C (theta, global); 11*C*log2(e) (theta, extent e); theta+: + SE's"

    def __init__(self, channels: int, extent: int = 0, variant: str = "theta-",
                 feat_size: int | tuple[int, int] | None = None, reduction: float | None = None,
                 min_channels: int = 1, act: ActLike = None, gate: ActLike = None) -> None:
        super().__init__(channels)
        if variant not in GE_VARIANTS:
            raise ValueError(f"unknown GE variant {variant!r}; choose one of {', '.join(GE_VARIANTS)}")
        self.extent = _check_extent(extent, variant)
        self.variant = variant
        param, global_ = variant != "theta-", extent == 0
        unused = {"feat_size": (feat_size is not None, not (param and global_)),
                  "reduction": (reduction is not None, variant != "theta+"),
                  "act": (act is not None, variant == "theta-")}
        for name, (given, unneeded) in unused.items():
            if given and unneeded:
                raise ValueError(f"GE option {name} has no use with variant={variant!r}, extent={extent}")
        if param and global_ and feat_size is None:
            raise ValueError(f"GE variant {variant!r} at the global extent (extent=0) gathers with a depthwise conv "
                             f"as large as the feature map: pass feat_size=(H, W), or a local extent")
        self.feat_size = None if feat_size is None else _pair(feat_size)
        self.gather = self._build_gather(act) if param else None
        if variant == "theta+":
            hidden = reduced_channels(channels, 16 if reduction is None else reduction, min_channels)
            self.mlp = nn.Sequential(OrderedDict(fc1=nn.Conv2d(channels, hidden, 1), act=make_act(act, "relu"),
                                                 fc2=nn.Conv2d(hidden, channels, 1)))
        self.gate = make_act(gate, "sigmoid")

    def _build_gather(self, act: ActLike) -> nn.Sequential:
        """The parametric gather: depthwise convs with BN (the ReLUs between them, and after for θ+)."""
        c = self.channels
        if self.extent == 0:
            convs = [nn.Conv2d(c, c, self.feat_size, groups=c, bias=False)]  # one weight per channel and position
        else:
            convs = [nn.Conv2d(c, c, 3, stride=2, padding=1, groups=c, bias=False)
                     for _ in range(self.extent.bit_length() - 1)]  # log2(e) halvings
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for i, conv in enumerate(convs, 1):
            layers[f"conv{i}"] = conv
            layers[f"norm{i}"] = nn.BatchNorm2d(c)
            if i < len(convs) or self.variant == "theta+":
                layers[f"act{i}"] = make_act(act, "relu")
        return nn.Sequential(layers)

    def gathered(self, x: Tensor) -> Tensor:
        """The excite logits at the gathered resolution: (N, C, H, W) -> (N, C, h, w), before the gate."""
        if self.gather is None:
            if self.extent == 0:
                return x.mean((2, 3), keepdim=True)  # (N, C, 1, 1)
            e = self.extent
            return F.avg_pool2d(x, 2 * e - 1, e, e - 1, count_include_pad=False)  # (N, C, ceil(H/e), ceil(W/e))
        if self.feat_size is not None and tuple(x.shape[2:]) != self.feat_size:
            raise ValueError(f"GatherExcite was built for {self.feat_size[0]}x{self.feat_size[1]} maps (its global "
                             f"gather kernel covers the whole map) but the input is {x.shape[2]}x{x.shape[3]} "
                             f"(shape {tuple(x.shape)}); build it with feat_size={tuple(x.shape[2:])}")
        t = x
        for layer in self.gather:
            t = batch_norm(layer, t) if isinstance(layer, nn.BatchNorm2d) else layer(t)
        if self.variant == "theta+":
            t = self.mlp.fc2(self.mlp.act(self.mlp.fc1(t)))
        return t

    def channel_scale(self, x: Tensor) -> Tensor | None:
        """The gate (N, C) at the global extent, where ``self(x) == x * w[:, :, None, None]``; else None."""
        if self.extent != 0:
            return None
        self._check_input(x)
        return gate_(self.gate, self.gathered(x).flatten(1))

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        g = gate_(self.gate, self.gathered(x))  # (N, C, h, w); the gate commutes with nearest interpolation
        if self.extent != 0:  # a local extent; the global gate (N, C, 1, 1) broadcasts
            g = _upsample_nearest(g, self.extent, x.shape[2], x.shape[3])  # (N, C, h, w) -> (N, C, H, W)
        if self.attention_sink is not None:
            if self.extent == 0:
                self._emit(channel=g.flatten(1))
            else:
                self._emit(channel=g.mean((2, 3)), spatial=g.mean(1, keepdim=True))
        return x * g

    def extra_repr(self) -> str:
        size = "" if self.feat_size is None else f", feat_size={self.feat_size}"
        return f"channels={self.channels}, variant={self.variant!r}, extent={self.extent}{size}"
