"""MobileNetV2 with attention in its inverted residuals, where the ECA paper puts it.

MobileNetV2: Inverted Residuals and Linear Bottlenecks (Sandler et al., CVPR 2018),
https://arxiv.org/abs/1801.04381. ECA-MobileNetV2: ECA-Net (Wang et al., CVPR 2020),
https://arxiv.org/abs/1910.03151, Table 3 (ImageNet: 72.56% top-1 for "3.34M" parameters).

Layout: torchvision's ``mobilenet_v2``, name for name and in the same order (``features.0.0`` the stem
conv, ``features.N.conv.M...`` the inverted residuals, ``features.18`` the last 1x1 conv to 1280
channels, ``classifier.1`` the classifier), with torchvision's width multiplier rounding (channels made
divisible by 8) and initialisation, so a torchvision checkpoint loads into any variant with only the
attention keys missing. The vanilla network has 3,504,872 parameters at 1000 classes, as torchvision's.

Where the attention goes: in every inverted residual (all 17, with or without a shortcut), after the
pw-linear 1x1 conv's BN and before the residual addition, as the ECA paper's official code
(``BangguWu/ECANet``, ``models/eca_mobilenetv2.py``: ``eca_layer(oup, k_size)`` appended to the block's
``conv`` after its last BN). It is stored as the block's ``attn`` (not inside ``conv``), so the block's
torchvision names are unchanged. ECA's kernel size there is the official code's, not the adaptive
formula: k = 1 in the blocks of the stages with fewer than 96 output channels (16, 24, 32, 64; counted
before the width multiplier), k = 3 in the others (96, 160, 320); ``attention_kwargs={"kernel_size": ...}``
overrides it (``None``: the adaptive k). SE and CBAM go in the same place. :func:`attnlab.attach` on a
vanilla ``mobilenet_v2`` fills the same slot, but only in the 10 blocks with a shortcut (the ones its dry
forward recognises as residual blocks); ``create_model(..., attention=...)`` fills all 17.

What "3.34M" counts: the ECA code's ``paras_flops.py`` prints ``params / 1024**2``: the vanilla
network's 3,504,872 / 2^20 = 3.34, and ECA adds 31 parameters (ten k = 1 and seven k = 3 convs),
3,504,903 / 2^20 = 3.34 (the same unit as the paper's ResNet-50 "24.37M").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ._attn import AttentionSpec, attention_name, attention_prefixes, make_attention
from ._fused import gate_add
from .registry import register_model
from .resnet import default_placement

__all__ = ["InvertedResidual", "MobileNetV2", "make_divisible", "INVERTED_RESIDUAL_SETTING"]

#: MobileNetV2's stages (Sandler et al., Table 2): expansion t, output channels c, blocks n, first stride s.
INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """torchvision's channel rounding (from the TF original): nearest multiple of ``divisor``, never 10% below ``v``."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBNReLU(nn.Sequential):
    """Conv2d (no bias), BatchNorm2d, ReLU6: torchvision's ``Conv2dNormActivation`` (names ``0``, ``1``, ``2``).

    Shape:
        (N, cin, H, W) -> (N, cout, H / stride, W / stride).
    """

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )
        self.out_channels = cout


class InvertedResidual(nn.Module):
    """1x1 expansion (absent when t = 1), 3x3 depthwise, 1x1 linear projection; torchvision's names.

    Args:
        inp: input channels.
        oup: output channels.
        stride: stride of the depthwise conv (1 or 2).
        expand_ratio: expansion t; the hidden width is ``round(inp * t)``.
        attn: attention on the block's output branch after the last BN, before the addition (``attn``), or None.

    The shortcut is the identity where ``stride == 1`` and ``inp == oup`` (``use_res_connect``); the
    other blocks have none. ``attention_slots`` / ``set_attention`` are the slot protocol
    :func:`attnlab.attach` fills (as for the ResNet blocks).

    Shape:
        (N, inp, H, W) -> (N, oup, H / stride, W / stride).
    """

    attention_slots = {"branch": "attn"}

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: float, attn: nn.Module | None = None) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride should be 1 or 2, got {stride}")
        self.stride = stride
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = [] if expand_ratio == 1 else [ConvBNReLU(inp, hidden, kernel_size=1)]
        layers += [
            ConvBNReLU(hidden, hidden, stride=stride, groups=hidden),  # depthwise
            nn.Conv2d(hidden, oup, 1, bias=False),  # pointwise, linear
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup
        self.register_module("attn", attn)

    def set_attention(self, module: nn.Module | None, position: str = "branch") -> None:
        """Put ``module`` (or None, to remove) in the attention slot: after the last BN, before the addition."""
        if position not in self.attention_slots:
            raise ValueError(f"position is one of {sorted(self.attention_slots)}, got {position!r}")
        self.attn = module

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        if self.attn is None:
            if self.use_res_connect:
                out += x
            return out
        if self.use_res_connect:
            return gate_add(self.attn, out, x)  # attn(out) + x
        return self.attn(out)


def _attention_spec(attention: AttentionSpec, placement: str | None) -> None:
    """Refuse an attention whose placement is not within the blocks (see :class:`MobileNetV2`'s Raises)."""
    if attention is None:
        if placement is not None:
            raise ValueError("placement needs an attention module")
        return
    declared = default_placement(attention) if placement is None else placement
    if declared != "blocks":
        origin = "declares" if placement is None else "was given"
        name = attention_name(attention) or getattr(attention, "__name__", repr(attention))
        raise ValueError(
            f"mobilenet_v2 puts attention inside its inverted residuals (placement 'blocks'); {name!r} {origin} "
            f"placement {declared!r}. Pass placement='blocks' to put it there anyway, or add it after chosen "
            "modules with attnlab.attach(model, ..., where=['features.7', ...])")


class MobileNetV2(nn.Module):
    """MobileNetV2 with optional attention in every inverted residual (see the module docstring).

    Args:
        num_classes: classifier outputs.
        width_mult: width multiplier (channels scaled, then made divisible by ``round_nearest``).
        in_chans: input image channels.
        round_nearest: channel rounding divisor (8).
        dropout: dropout before the classifier (torchvision's 0.2).
        attention: registry name, ``nn.Module`` class (``channels`` first) or None (vanilla).
        attention_kwargs: options for every attention module; for ECA, ``kernel_size`` defaults to the
            official code's per-stage k (1 or 3) instead of the adaptive one.
        placement: None (the attention's own, which must be ``"blocks"``) or ``"blocks"``.
        inverted_residual_setting: (t, c, n, s) per stage; default :data:`INVERTED_RESIDUAL_SETTING`.

    Shape:
        (N, in_chans, H, W) -> (N, num_classes); ``forward_features`` gives (N, 1280, H/32, W/32).

    Raises:
        ValueError: for an unknown attention name, or one whose declared placement is not ``"blocks"``
            (BAM's ``"stages"``, Non-Local's ``"after_blocks"``) unless ``placement="blocks"``.
    """

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, in_chans: int = 3, *,
                 round_nearest: int = 8, dropout: float = 0.2, attention: AttentionSpec = None,
                 attention_kwargs: dict[str, Any] | None = None, placement: str | None = None,
                 inverted_residual_setting: Sequence[Sequence[int]] | None = None) -> None:
        super().__init__()
        _attention_spec(attention, placement)
        self.attention = attention_name(attention) or (None if attention is None else attention.__name__)
        self.placement = None if attention is None else "blocks"
        setting = tuple(tuple(s) for s in (inverted_residual_setting or INVERTED_RESIDUAL_SETTING))
        if not setting or any(len(s) != 4 for s in setting):
            raise ValueError(f"inverted_residual_setting is a non-empty list of (t, c, n, s), got {setting}")
        cin = make_divisible(32 * width_mult, round_nearest)
        self.num_features = make_divisible(1280 * max(1.0, width_mult), round_nearest)
        features: list[nn.Module] = [ConvBNReLU(in_chans, cin, stride=2)]
        for t, c, n, s in setting:
            cout = make_divisible(c * width_mult, round_nearest)
            kwargs = self._block_attention_kwargs(attention, attention_kwargs, c)
            for i in range(n):
                attn = make_attention(attention, cout, kwargs, "model")
                features.append(InvertedResidual(cin, cout, s if i == 0 else 1, t, attn=attn))
                cin = cout
        features.append(ConvBNReLU(cin, self.num_features, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.num_features, num_classes))
        self._init_weights()

    @staticmethod
    def _block_attention_kwargs(attention: AttentionSpec, attention_kwargs: dict[str, Any] | None,
                                channels: int) -> dict[str, Any]:
        """The attention options of a stage whose setting has ``channels`` outputs (ECA: the official k)."""
        kwargs = dict(attention_kwargs or {})
        if attention_name(attention) == "eca" and "kernel_size" not in kwargs:
            kwargs["kernel_size"] = 1 if channels < 96 else 3  # BangguWu/ECANet eca_mobilenetv2.py
        return kwargs

    def _init_weights(self) -> None:
        """torchvision's initialisation of the backbone; attention modules keep their own."""
        prefixes = tuple(attention_prefixes(self))
        for name, m in self.named_modules():
            if prefixes and (name + ".").startswith(prefixes):
                continue
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def blocks(self) -> list[tuple[str, nn.Module]]:
        """Every inverted residual with its dotted name (``"features.1"`` ... ``"features.17"``), in order."""
        return [(f"features.{i}", m) for i, m in enumerate(self.features) if isinstance(m, InvertedResidual)]

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, in_chans, H, W) -> the last conv's feature map (N, num_features, H/32, W/32)."""
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """(N, C, h, w) features -> pooled (N, C) if ``pre_logits`` else logits (N, num_classes)."""
        x = F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)  # as torchvision: (N, C, h, w) -> (N, C)
        return x if pre_logits else self.classifier(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def extra_repr(self) -> str:
        return f"attention={self.attention!r}, placement={self.placement!r}"


@register_model()
def mobilenet_v2(**kwargs: Any) -> MobileNetV2:
    """MobileNetV2, torchvision's layout (3.50M parameters; 3,504,903 with ECA, the ECA paper's "3.34M" in 2^20)."""
    return MobileNetV2(**kwargs)
