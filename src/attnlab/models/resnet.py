"""ResNets with attention where the papers put it.

Deep Residual Learning for Image Recognition (He et al., CVPR 2016), https://arxiv.org/abs/1512.03385.

Two layouts, one constructor (:class:`ResNet`), small builders per name:

* ImageNet (``resnet18/34/50/101/152``): torchvision's layout and state_dict names and shapes,
  key for key and in the same order (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
  ``layer1.0.downsample.0``, ``fc``), so a torchvision checkpoint loads into any variant with only the
  attention keys missing. Bottlenecks stride in their 3x3 conv (torchvision's "ResNet v1.5");
  ``stride_in_1x1=True`` gives the original v1 (stride in the first 1x1 conv), the network the
  attention papers counted FLOPs on (same parameters and names).
* CIFAR (``resnet20/32/44/56/110``, He et al. Sec. 4.2): a 3x3 conv to 16 channels, then 3 stages of
  n = (depth - 2) / 6 basic blocks at 16/32/64 channels (32x32, 16x16, 8x8 for a 32x32 input), global
  average pooling and the classifier. Where the width doubles the shortcut is a strided 1x1 conv + BN
  (the paper's option B, ``shortcut="B"``, default: the same ``downsample`` as the ImageNet layout);
  ``shortcut="A"`` gives the paper's parameter-free option A (stride-2 subsampling, zero-padded
  channels), whose parameter counts are the paper's Table 6 (0.27M for ResNet-20, ...).

Where the attention goes (``placement``, by default the one the attention class declares in its
``placement`` attribute, see :mod:`attnlab.attention.base`; ``"blocks"`` for a class that declares none):

* ``"blocks"`` (SE, CBAM, ECA, GC, coord, SimAM, triplet, scSE, and any class without a ``placement``):
  on the residual branch of every block, after its last BN and before the addition (SE paper Fig. 3,
  CBAM Fig. 3), stored as the block's ``attn``.
* ``"stages"`` (BAM): at the bottlenecks between stages, i.e. after every stage but the last
  (ImageNet: after ``layer1``-``layer3``; CIFAR: after ``layer1`` and ``layer2``), stored as ``bam1``,
  ``bam2``, ... whatever the module (BAM paper Fig. 1; the official code applies it to each stage's output).
* ``"after_blocks"`` (Non-Local): after chosen residual blocks of ``layer2`` and ``layer3`` (the
  paper's res3 and res4; on the CIFAR layout the 32- and 64-channel stages), stored as the block's
  ``post_attn`` so that the stage's indices and torchvision names are unchanged. ``nonlocal_setting``:
  ``"1block"`` (default): one block, right before the last residual block of res4 (``layer3[-2]``),
  the setting of the paper's ablations (Table 2a); ``"5block"``: 3 in res4 and 2 in res3, on every
  other block (``layer2[1, 3]``, ``layer3[1, 3, 5]`` for ResNet-50; Table 2c); ``"10block"``: every
  block of res3 and res4. On networks with fewer blocks the every-other choice is filled up from the
  stage's last blocks, as far as the stage has blocks. ``nonlocal_after=["layer3.4", "layer4.1", ...]``
  names the blocks explicitly instead (any stage).

Placement cost: the residual addition lands in place on the attention's output (``out += shortcut``),
then an in-place ReLU, so the placement adds no copy and no layout change around the module; in
inference a channel gate (SE, ECA) and the addition are one pass (:func:`attnlab.models._fused.gate_add`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ..attention import PLACEMENTS
from ..names import suggest
from ._attn import AttentionSpec, attention_class, attention_name, attention_prefixes, make_attention
from ._fused import gate_add
from .registry import register_model

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "PLACEMENTS",
    "NONLOCAL_SETTINGS",
    "default_placement",
    "nonlocal_positions",
]

NONLOCAL_SETTINGS = ("1block", "5block", "10block")


def default_placement(attention: AttentionSpec) -> str | None:
    """Where ``attention`` goes unless told otherwise: the ``placement`` its class declares, else ``"blocks"``.

    BAM declares ``"stages"`` and Non-Local ``"after_blocks"``; a registry name is resolved to its class.
    None for no attention.

    Raises:
        ValueError: for an unknown registry name.
    """
    if attention is None:
        return None
    return getattr(attention_class(attention), "placement", "blocks")


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class _SlotsMixin:
    """The two attention slots of a residual block: ``attn`` (residual branch) and ``post_attn`` (block output).

    ``attention_slots`` (position -> attribute) and ``set_attention`` are what :func:`attnlab.attach` reads,
    duck-typed, to fill a block's own slot instead of hooking a module onto it.
    """

    attention_slots = {"branch": "attn", "output": "post_attn"}

    def set_attention(self, module: nn.Module | None, position: str = "branch") -> None:
        """Put ``module`` (or None, to remove) in the block's ``"branch"`` or ``"output"`` attention slot.

        ``"branch"``: applied to the residual branch after its last BN, before the addition (``attn``);
        ``"output"``: applied to the block's output, after the final ReLU (``post_attn``).
        """
        if position not in self.attention_slots:
            raise ValueError(f"position is one of {sorted(self.attention_slots)}, got {position!r}")
        setattr(self, self.attention_slots[position], module)


class BasicBlock(_SlotsMixin, nn.Module):
    """Two 3x3 convs with BN; attention on the branch after ``bn2``; torchvision's names.

    Args:
        inplanes: input channels.
        planes: output channels (``expansion`` = 1).
        stride: stride of ``conv1`` (2 at the first block of a downsampling stage).
        downsample: the shortcut's projection (1x1 conv + BN), a parameter-free module, or None (identity).
        attn: attention on the residual branch (``attn``), or None.
        post_attn: attention on the block's output (``post_attn``), or None.

    Shape:
        (N, inplanes, H, W) -> (N, planes, H / stride, W / stride).
    """

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 attn: nn.Module | None = None, post_attn: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.register_module("attn", attn)
        self.downsample = downsample
        self.register_module("post_attn", post_attn)
        self.stride = stride

    def zero_init_last(self) -> None:
        """Zero the last BN's scale, so that the block starts as its shortcut (Goyal et al. 2017)."""
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        if self.attn is None:
            out += shortcut
        else:
            out = gate_add(self.attn, out, shortcut)  # attn(out) + shortcut
        out = self.relu(out)
        if self.post_attn is not None:
            out = self.post_attn(out)
        return out


class Bottleneck(_SlotsMixin, nn.Module):
    """1x1, 3x3, 1x1 convs with BN; attention on the branch after ``bn3``; torchvision's names.

    Args:
        inplanes: input channels.
        planes: bottleneck width; the output has ``planes * 4`` channels.
        stride: stride of the block (in ``conv2``, torchvision's v1.5, or ``conv1`` with ``stride_in_1x1``).
        downsample: the shortcut's projection (1x1 conv + BN), a parameter-free module, or None (identity).
        attn: attention on the residual branch (``attn``), or None.
        post_attn: attention on the block's output (``post_attn``), or None.
        stride_in_1x1: stride in the first 1x1 conv (the original ResNet v1 of the papers' FLOP counts).

    Shape:
        (N, inplanes, H, W) -> (N, 4 * planes, H / stride, W / stride).
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 attn: nn.Module | None = None, post_attn: nn.Module | None = None,
                 stride_in_1x1: bool = False) -> None:
        super().__init__()
        width = planes
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = _conv1x1(inplanes, width, s1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, s3)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = _conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.register_module("attn", attn)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.register_module("post_attn", post_attn)
        self.stride = stride

    def zero_init_last(self) -> None:
        """Zero the last BN's scale, so that the block starts as its shortcut (Goyal et al. 2017)."""
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        if self.attn is None:
            out += shortcut
        else:
            out = gate_add(self.attn, out, shortcut)  # attn(out) + shortcut
        out = self.relu(out)
        if self.post_attn is not None:
            out = self.post_attn(out)
        return out


class _PadShortcut(nn.Module):
    """He et al.'s option-A shortcut: subsample by ``stride``, append zero channels. No parameters.

    Shape:
        (N, C, H, W) -> (N, C + extra, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, stride: int, extra_channels: int) -> None:
        super().__init__()
        self.stride = stride
        self.extra_channels = extra_channels

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))  # pads C at the end: (N, C, H, W) -> (N, C+e, H, W)

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra_channels={self.extra_channels}"


def _every_other(n: int, k: int) -> list[int]:
    """Up to k block indices out of n: every other block from the second (1, 3, 5, ...), then the last ones."""
    picked = [i for i in range(1, n, 2)][:k]
    for i in range(n - 1, -1, -1):
        if len(picked) >= k:
            break
        if i not in picked:
            picked.append(i)
    return sorted(picked)


def nonlocal_positions(layers: Sequence[int], setting: str = "1block") -> list[tuple[int, int]]:
    """(stage index, block index) pairs, both from 0, after which Non-Local blocks go.

    The Non-Local paper's settings (Wang et al. 2018, Sec. 4.1, Table 2) in res3 and res4, which are
    ``layer2`` and ``layer3`` (stage indices 1 and 2); see the module docstring.

    Raises:
        ValueError: for an unknown setting or a network with fewer than 3 stages.
    """
    if setting not in NONLOCAL_SETTINGS:
        raise ValueError(f"unknown nonlocal_setting {setting!r}; choose one of {', '.join(NONLOCAL_SETTINGS)}")
    if len(layers) < 3:
        raise ValueError(f"the Non-Local settings need at least 3 stages, got {len(layers)}")
    a, b = 1, 2
    if setting == "1block":
        return [(b, max(layers[b] - 2, 0))]
    if setting == "5block":
        return [(a, i) for i in _every_other(layers[a], 2)] + [(b, i) for i in _every_other(layers[b], 3)]
    return [(s, i) for s in (a, b) for i in range(layers[s])]


def _parse_block_names(names: Sequence[str], layers: Sequence[int]) -> list[tuple[int, int]]:
    known = [f"layer{s + 1}.{i}" for s, n in enumerate(layers) for i in range(n)]
    out = []
    for name in names:
        if name not in known:
            close = suggest(str(name), known)
            hint = f" Did you mean {close!r}?" if close else ""
            raise ValueError(f"nonlocal_after: no residual block named {name!r}.{hint} Blocks are "
                             f"layer<stage>.<index>, e.g. {known[0]!r} to {known[-1]!r}.")
        stage, index = name[len("layer"):].split(".")
        out.append((int(stage) - 1, int(index)))
    return out


def _check_layout(block: type[nn.Module], layers: tuple[int, ...], widths: tuple[int, ...], stem: str, shortcut: str,
                  stride_in_1x1: bool) -> None:
    """Refuse a network shape :class:`ResNet` cannot build (see its Raises)."""
    if len(layers) != len(widths) or not layers:
        raise ValueError(f"layers and widths need one entry per stage, got {layers} and {widths}")
    if stem not in ("imagenet", "cifar"):
        raise ValueError(f"stem is 'imagenet' or 'cifar', got {stem!r}")
    if shortcut not in ("A", "B"):
        raise ValueError(f"shortcut is 'A' (zero padding) or 'B' (1x1 conv + BN), got {shortcut!r}")
    if stride_in_1x1 and block is not Bottleneck:
        raise ValueError("stride_in_1x1 applies to Bottleneck networks")


def _resolve_placement(attention: AttentionSpec, placement: str | None, nonlocal_setting: str,
                       nonlocal_after: Sequence[str] | None) -> str | None:
    """The placement to build: ``placement``, or the one ``attention`` declares; None without attention.

    Raises:
        ValueError: for an unknown placement or setting, or placement options without attention.
    """
    if attention is None:
        if placement is not None or nonlocal_after is not None:
            raise ValueError("placement and nonlocal_after need an attention module")
    else:
        declared = placement is None
        placement = default_placement(attention) if declared else placement
        if placement not in PLACEMENTS:
            origin = f" (the placement {attention_name(attention) or attention!r} declares)" if declared else ""
            raise ValueError(f"unknown placement {placement!r}{origin}; choose one of {', '.join(PLACEMENTS)}")
    if nonlocal_setting not in NONLOCAL_SETTINGS:
        raise ValueError(f"unknown nonlocal_setting {nonlocal_setting!r}; choose one of "
                         f"{', '.join(NONLOCAL_SETTINGS)}")
    if nonlocal_after is not None and placement != "after_blocks":
        raise ValueError("nonlocal_after applies to placement='after_blocks'")
    return placement


def _output_positions(layers: tuple[int, ...], placement: str | None, nonlocal_setting: str,
                      nonlocal_after: Sequence[str] | None) -> set[tuple[int, int]]:
    """(stage, block) pairs whose output gets attention: the ``"after_blocks"`` placement's blocks, else none."""
    if placement != "after_blocks":
        return set()
    if nonlocal_after is not None:
        return set(_parse_block_names(nonlocal_after, layers))
    return set(nonlocal_positions(layers, nonlocal_setting))


class ResNet(nn.Module):
    """A ResNet with optional attention, in torchvision's layout (or He et al.'s CIFAR layout).

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck` (any block class with the same constructor).
        layers: blocks per stage, e.g. (3, 4, 6, 3) for ResNet-50.
        num_classes: classifier outputs.
        in_chans: input image channels.
        widths: base width of each stage (the block's ``planes``).
        stem: ``"imagenet"`` (7x7/2 conv to 64 channels, 3x3/2 max-pool) or ``"cifar"`` (3x3 conv to
            ``widths[0]`` channels, no pooling).
        attention: registry name, ``nn.Module`` class (``channels`` first) or None (vanilla).
        attention_kwargs: options for every attention module.
        placement: ``"blocks"``, ``"stages"`` or ``"after_blocks"``; default: where the attention's paper
            puts it (see the module docstring).
        nonlocal_setting: ``"1block"``, ``"5block"`` or ``"10block"``, for ``placement="after_blocks"``.
        nonlocal_after: explicit block names (``["layer3.4"]``) for ``placement="after_blocks"``,
            instead of ``nonlocal_setting``.
        zero_init_residual: zero the last BN's scale of every residual branch (each block's
            ``zero_init_last()``), so that every block starts as its shortcut.
        stride_in_1x1: bottlenecks stride in their first 1x1 conv (ResNet v1) instead of the 3x3 (v1.5).
        shortcut: ``"B"`` (1x1 conv + BN where the shape changes) or ``"A"`` (parameter-free zero padding).

    Shape:
        (N, in_chans, H, W) -> (N, num_classes). ``forward_features`` gives (N, num_features, H/32, W/32)
        (H/4 on the CIFAR layout).

    Raises:
        ValueError: for an unknown attention name, placement, setting, stem or shortcut.
    """

    def __init__(self, block: type[nn.Module], layers: Sequence[int], num_classes: int = 1000, in_chans: int = 3, *,
                 widths: Sequence[int] = (64, 128, 256, 512), stem: str = "imagenet",
                 attention: AttentionSpec = None, attention_kwargs: dict[str, Any] | None = None,
                 placement: str | None = None, nonlocal_setting: str = "1block",
                 nonlocal_after: Sequence[str] | None = None, zero_init_residual: bool = False,
                 stride_in_1x1: bool = False, shortcut: str = "B") -> None:
        super().__init__()
        layers, widths = tuple(layers), tuple(widths)
        _check_layout(block, layers, widths, stem, shortcut, stride_in_1x1)
        placement = _resolve_placement(attention, placement, nonlocal_setting, nonlocal_after)
        self.placement = placement
        self.attention = attention_name(attention) or (None if attention is None else attention.__name__)
        self.stem = stem
        self._block_kwargs = {"stride_in_1x1": True} if stride_in_1x1 else {}
        post = _output_positions(layers, placement, nonlocal_setting, nonlocal_after)
        self._build_stem(in_chans, stem, 64 if stem == "imagenet" else widths[0])
        self._build_stages(block, layers, widths, shortcut, attention, attention_kwargs, post)
        self._build_head(widths[-1] * block.expansion, num_classes)
        self._init_weights(zero_init_residual)

    def _build_stem(self, in_chans: int, stem: str, width: int) -> None:
        """``conv1``, ``bn1``, ``relu``, ``maxpool``: (N, in_chans, H, W) -> (N, width, H/4, W/4) (H, W on CIFAR)."""
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_chans, width, 7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = _conv3x3(in_chans, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if stem == "imagenet" else nn.Identity()
        self.inplanes = width

    def _build_stages(self, block: type[nn.Module], layers: tuple[int, ...], widths: tuple[int, ...], shortcut: str,
                      attention: AttentionSpec, attention_kwargs: dict[str, Any] | None,
                      post: set[tuple[int, int]]) -> None:
        """``layer1`` ... ``layerS`` with the attention of ``self.placement`` (``bamN`` after stages for "stages")."""
        placement = self.placement
        plan: list[tuple[str, str | None]] = []
        for s, (planes, n) in enumerate(zip(widths, layers, strict=True)):
            name = f"layer{s + 1}"
            self.add_module(name, self._make_layer(
                block, planes, n, stride=1 if s == 0 else 2, shortcut=shortcut,
                attn=attention if placement == "blocks" else None, attention_kwargs=attention_kwargs,
                post=[(i, attention) for (st, i) in sorted(post) if st == s]))
            between = None
            if placement == "stages" and s < len(layers) - 1:
                between = f"bam{s + 1}"  # the BAM paper's name, kept for any module between stages
                self.add_module(between, make_attention(attention, planes * block.expansion, attention_kwargs,
                                                        "model"))
            plan.append((name, between))
        self._plan = tuple(plan)
        self.stage_names = tuple(name for name, _ in plan)

    def _build_head(self, num_features: int, num_classes: int) -> None:
        """Global average pooling and the classifier ``fc``: (N, num_features, H', W') -> (N, num_classes)."""
        self.num_features = num_features
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(self.num_features, num_classes)

    def _make_layer(self, block: type[nn.Module], planes: int, n: int, stride: int, shortcut: str,
                    attn: AttentionSpec, attention_kwargs: dict[str, Any] | None,
                    post: list[tuple[int, AttentionSpec]]) -> nn.Sequential:
        out_ch = planes * block.expansion
        post_at = dict(post)
        blocks = []
        for i in range(n):
            downsample = None
            if i == 0 and (stride != 1 or self.inplanes != out_ch):
                if shortcut == "B":
                    downsample = nn.Sequential(_conv1x1(self.inplanes, out_ch, stride), nn.BatchNorm2d(out_ch))
                else:
                    downsample = _PadShortcut(stride, out_ch - self.inplanes)
            blocks.append(block(
                self.inplanes, planes, stride if i == 0 else 1, downsample,
                attn=make_attention(attn, out_ch, attention_kwargs, "model"),
                post_attn=make_attention(post_at.get(i), out_ch, attention_kwargs, "model"),
                **self._block_kwargs))
            self.inplanes = out_ch
        return nn.Sequential(*blocks)

    def _init_weights(self, zero_init_residual: bool) -> None:
        """torchvision's initialisation of the backbone; attention modules keep their own."""
        prefixes = tuple(attention_prefixes(self))
        for name, m in self.named_modules():
            if prefixes and (name + ".").startswith(prefixes):
                continue
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for name in self.stage_names:
                for blk in self.get_submodule(name):
                    if hasattr(blk, "zero_init_last"):
                        blk.zero_init_last()

    def blocks(self) -> list[tuple[str, nn.Module]]:
        """Every residual block with its dotted name (``"layer1.0"``, ...), in order."""
        return [(f"{name}.{i}", blk) for name in self.stage_names for i, blk in enumerate(self.get_submodule(name))]

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, in_chans, H, W) -> the last stage's feature map (N, num_features, H', W')."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        modules = self._modules
        for stage, bam in self._plan:
            x = modules[stage](x)
            if bam is not None:
                x = modules[bam](x)
        return x

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """(N, C, H', W') features -> pooled (N, C) if ``pre_logits`` else logits (N, num_classes)."""
        x = self.avgpool(x).flatten(1)
        return x if pre_logits else self.fc(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def extra_repr(self) -> str:
        return f"attention={self.attention!r}, placement={self.placement!r}, stem={self.stem!r}"


# --- builders: one line per network over one shared constructor ---------------------------------------------


def _create_resnet(block: type[nn.Module], layers: Sequence[int], **kwargs: Any) -> ResNet:
    return ResNet(block, layers, **kwargs)


def _create_cifar_resnet(depth: int, num_classes: int = 10, **kwargs: Any) -> ResNet:
    n, rest = divmod(depth - 2, 6)
    if rest or n < 1:
        raise ValueError(f"CIFAR ResNet depth is 6n + 2, got {depth}")
    return _create_resnet(BasicBlock, (n, n, n), num_classes=num_classes, widths=(16, 32, 64), stem="cifar", **kwargs)


@register_model()
def resnet18(**kwargs: Any) -> ResNet:
    """ResNet-18, ImageNet layout (11.69M parameters)."""
    return _create_resnet(BasicBlock, (2, 2, 2, 2), **kwargs)


@register_model()
def resnet34(**kwargs: Any) -> ResNet:
    """ResNet-34, ImageNet layout (21.80M parameters)."""
    return _create_resnet(BasicBlock, (3, 4, 6, 3), **kwargs)


@register_model()
def resnet50(**kwargs: Any) -> ResNet:
    """ResNet-50, ImageNet layout (25.56M parameters)."""
    return _create_resnet(Bottleneck, (3, 4, 6, 3), **kwargs)


@register_model()
def resnet101(**kwargs: Any) -> ResNet:
    """ResNet-101, ImageNet layout (44.55M parameters)."""
    return _create_resnet(Bottleneck, (3, 4, 23, 3), **kwargs)


@register_model()
def resnet152(**kwargs: Any) -> ResNet:
    """ResNet-152, ImageNet layout (60.19M parameters)."""
    return _create_resnet(Bottleneck, (3, 8, 36, 3), **kwargs)


@register_model()
def resnet20(**kwargs: Any) -> ResNet:
    """ResNet-20, CIFAR layout (3 stages of 3 blocks, 16/32/64 channels)."""
    return _create_cifar_resnet(20, **kwargs)


@register_model()
def resnet32(**kwargs: Any) -> ResNet:
    """ResNet-32, CIFAR layout (3 stages of 5 blocks)."""
    return _create_cifar_resnet(32, **kwargs)


@register_model()
def resnet44(**kwargs: Any) -> ResNet:
    """ResNet-44, CIFAR layout (3 stages of 7 blocks)."""
    return _create_cifar_resnet(44, **kwargs)


@register_model()
def resnet56(**kwargs: Any) -> ResNet:
    """ResNet-56, CIFAR layout (3 stages of 9 blocks)."""
    return _create_cifar_resnet(56, **kwargs)


@register_model()
def resnet110(**kwargs: Any) -> ResNet:
    """ResNet-110, CIFAR layout (3 stages of 18 blocks)."""
    return _create_cifar_resnet(110, **kwargs)
