"""Load the authors' released checkpoints: their state_dict layouts converted, key by key, to attnlab's networks.

:func:`convert_checkpoint` renames (and where needed reshapes) a checkpoint's keys for a given attnlab
model, checks every key and shape against the model before anything is loaded, and says what it did:
every source key with its target key, what it reshaped, what it could not place, and what the model needs
that the checkpoint lacks. Its result loads with ``model.load_state_dict(result.state_dict, strict=True)``.

Layouts (``source=``), read from the authors' code:

* ``"cbam-official"``: ``Jongchan/attention-module`` (``MODELS/model_resnet.py``, ``cbam.py``, ``bam.py``),
  the CBAM and BAM papers' released ``ResidualNet`` checkpoints. The ResNet keys are torchvision's (its
  bottleneck strides in the 3x3 conv, as attnlab's default). CBAM lives in each block's ``cbam``:
  ``ChannelGate.mlp.1`` / ``.mlp.3`` (``nn.Linear`` C -> C/16 -> C, with biases) become
  ``attn.channel_attention.fc1`` / ``fc2`` (1x1 convs: the weights gain two unit dimensions);
  ``SpatialGate.spatial.conv`` (2 -> 1, 7x7, no bias) becomes ``attn.spatial_attention.conv1`` with its two
  input channels swapped (the official code stacks [max; mean], attnlab [mean; max]); ``SpatialGate.spatial.bn``
  becomes ``attn.spatial_attention.bn``. Build the model with ``attention_kwargs={"variant": "official"}``
  (MLP biases, spatial BN). BAM's ``bam1``-``bam3`` keys are attnlab's already (``channel_att.gate_c...``,
  ``spatial_att.gate_s...``), but the official BAM combines its branches as sigmoid(Mc * Ms) where the paper
  and attnlab use sigmoid(Mc + Ms): the weights load, the function differs (the result notes it).
* ``"eca-official"``: ``BangguWu/ECANet``: ``models/eca_resnet.py`` (each block's ``eca.conv``, a 1-D conv
  with no bias, becomes ``attn.conv``) and ``models/eca_mobilenetv2.py`` (the ECA layer is the last entry of
  each inverted residual's ``conv``: ``features.N.conv.M.conv.weight`` becomes ``features.N.attn.conv.weight``;
  the rest is torchvision's MobileNetV2). The released ResNets fix k per stage (``k_size``, in the file names
  of the README's table: ``eca_resnet18_k3577``, ``eca_resnet34_k3357``, ``eca_resnet50_k3557``,
  ``eca_resnet101_k3357``, ``eca_resnet152_k3357``), which is not the adaptive k attnlab builds (3, 5, 5, 5
  for ResNet-18, 5, 5, 5, 7 for ResNet-50): a kernel size that differs is refused, naming the blocks, unless
  ``adapt_eca_kernels=True`` rebuilds those modules with the checkpoint's k (the model is changed in place).
  ``eca_mobilenetv2_k13`` matches attnlab's ``mobilenet_v2`` with ECA as built (k = 1 and 3, as the code).
* ``"timm"``: timm's ``resnet.py`` with attention in its blocks (``seresnet18/34/50/101/152``, and any timm
  ResNet with ``block_args=dict(attn_layer=...)``): timm names every block's attention ``se``, whatever it
  is: ``se.fc1`` / ``se.fc2`` (SE: 1x1 convs with biases), ``se.conv`` (ECA), ``se.channel.fc1`` /
  ``se.spatial.conv.conv`` / ``se.spatial.conv.bn`` (CBAM: [mean; max] as attnlab, no MLP biases, a spatial
  BN: ``attention_kwargs={"spatial_bn": True}``) become ``attn....``. timm rounds SE widths up to multiples
  of 8 (``seresnet18``: 64 channels -> 8, not 64 // 16 = 4): ``attention_kwargs={"min_channels": 8}``.
  timm's ``ecaresnet*d`` / ``*t`` networks have a deep stem (``conv1.0`` ...) and average-pool shortcuts
  (``downsample.1``, ``.2``): another network than torchvision's ResNet, so those keys have no place here.

Why a function of its own rather than a ``layout=`` option of :func:`attnlab.load_backbone`: converting is
a pure mapping of names and tensors that can be inspected, saved (e.g. as safetensors) and checked before
loading anything; ``load_backbone`` keeps its one job (partial loads of plain backbones, the classifier
policy) and takes the converted state_dict like any other (``load_backbone(model, result.state_dict)``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from torch import Tensor, nn

from ..names import lookup
from ._attn import MARK, make_attention
from .loading import _read

__all__ = ["CHECKPOINT_LAYOUTS", "ConvertedCheckpoint", "convert_checkpoint"]

Transform = Callable[[Tensor], Tensor]


def _linear_to_1x1(w: Tensor) -> Tensor:
    """``nn.Linear`` weight (out, in) -> 1x1 conv weight (out, in, 1, 1)."""
    return w.reshape(*w.shape, 1, 1)


def _max_mean_to_mean_max(w: Tensor) -> Tensor:
    """Spatial-attention conv weight (1, 2, k, k) over [max; mean] -> over [mean; max] (swap the input channels)."""
    return w.flip(1)


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    target: str  # replacement template (re.sub syntax)
    transform: Transform | None = None
    note: str = ""


def _rule(pattern: str, target: str, transform: Transform | None = None, note: str = "") -> _Rule:
    return _Rule(re.compile(pattern), target, transform, note)


_BLOCK = r"^((?:layer\d+)\.\d+)\."
_CBAM_OFFICIAL = (
    _rule(_BLOCK + r"cbam\.ChannelGate\.mlp\.1\.weight$", r"\1.attn.channel_attention.fc1.weight", _linear_to_1x1,
          "Linear (h, C) -> 1x1 conv (h, C, 1, 1)"),
    _rule(_BLOCK + r"cbam\.ChannelGate\.mlp\.1\.bias$", r"\1.attn.channel_attention.fc1.bias"),
    _rule(_BLOCK + r"cbam\.ChannelGate\.mlp\.3\.weight$", r"\1.attn.channel_attention.fc2.weight", _linear_to_1x1,
          "Linear (C, h) -> 1x1 conv (C, h, 1, 1)"),
    _rule(_BLOCK + r"cbam\.ChannelGate\.mlp\.3\.bias$", r"\1.attn.channel_attention.fc2.bias"),
    _rule(_BLOCK + r"cbam\.SpatialGate\.spatial\.conv\.weight$", r"\1.attn.spatial_attention.conv1.weight",
          _max_mean_to_mean_max, "input channels [max; mean] -> [mean; max]"),
    _rule(_BLOCK + r"cbam\.SpatialGate\.spatial\.bn\.(\w+)$", r"\1.attn.spatial_attention.bn.\2"),
)
_ECA_OFFICIAL = (
    _rule(_BLOCK + r"eca\.conv\.weight$", r"\1.attn.conv.weight"),
    _rule(r"^(features\.\d+)\.conv\.\d+\.conv\.weight$", r"\1.attn.conv.weight"),  # ECA-MobileNetV2
)
_TIMM = (
    _rule(_BLOCK + r"se\.channel\.(fc[12]\.\w+)$", r"\1.attn.channel_attention.\2"),
    _rule(_BLOCK + r"se\.spatial\.conv\.conv\.weight$", r"\1.attn.spatial_attention.conv1.weight"),
    _rule(_BLOCK + r"se\.spatial\.conv\.bn\.(\w+)$", r"\1.attn.spatial_attention.bn.\2"),
    _rule(_BLOCK + r"se\.(fc[12]\.\w+|conv\.weight)$", r"\1.attn.\2"),
)

#: The checkpoint layouts :func:`convert_checkpoint` reads (see the module docstring), each to its renaming rules.
CHECKPOINT_LAYOUTS: dict[str, tuple[_Rule, ...]] = {
    "cbam-official": _CBAM_OFFICIAL,
    "eca-official": _ECA_OFFICIAL,
    "timm": _TIMM,
}
_ALIASES = {"cbam": "cbam-official", "bam-official": "cbam-official", "eca": "eca-official",
            "attention-module": "cbam-official", "ecanet": "eca-official"}


@dataclass
class ConvertedCheckpoint:
    """What :func:`convert_checkpoint` made of a checkpoint, key by key.

    Attributes:
        layout: the source layout (``"cbam-official"``, ``"eca-official"``, ``"timm"``).
        state_dict: the converted tensors under the model's names (every model key when nothing is missing).
        mapped: (source key, target key, note) for every source key placed; the note names a reshape.
        unmapped: source keys with no place in the model (under another name or not there at all).
        missing: model keys the checkpoint does not provide (``num_batches_tracked`` aside, see ``filled``).
        mismatched: ``"target: checkpoint shape vs model shape"`` for keys whose shapes disagree.
        filled: BatchNorm ``num_batches_tracked`` counters the checkpoint lacks (older PyTorch), set to 0.
        notes: what else to know (a function that differs, modules rebuilt for the checkpoint).
    """

    layout: str
    state_dict: dict[str, Tensor] = field(default_factory=dict)
    mapped: list[tuple[str, str, str]] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    filled: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when every source key found its place and every model key is provided, with matching shapes."""
        return not (self.unmapped or self.missing or self.mismatched)

    @property
    def renamed(self) -> list[tuple[str, str, str]]:
        """The mapped keys whose name or values changed (the attention keys, as a rule)."""
        return [m for m in self.mapped if m[0] != m[1] or m[2]]

    def __str__(self) -> str:
        lines = [f"{self.layout} checkpoint: {len(self.mapped)} keys mapped ({len(self.renamed)} renamed), "
                 f"{len(self.unmapped)} unmapped, {len(self.missing)} missing, {len(self.mismatched)} shape "
                 f"disagreements, {len(self.filled)} counters filled"]
        lines += [f"  {s} -> {t}" + (f"  [{note}]" if note else "") for s, t, note in self.mapped]
        lines += [f"  unmapped: {k}" for k in self.unmapped]
        lines += [f"  missing: {k}" for k in self.missing]
        lines += [f"  shape: {m}" for m in self.mismatched]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _rename(key: str, rules: tuple[_Rule, ...]) -> tuple[str, Transform | None, str]:
    """The target name of ``key`` under the first rule that matches it (the key itself when none does)."""
    for rule in rules:
        if rule.pattern.search(key):
            return rule.pattern.sub(rule.target, key), rule.transform, rule.note
    return key, None, ""


def _eca_kernel_mismatches(result: ConvertedCheckpoint, source: dict[str, Tensor],
                           target: dict[str, Tensor]) -> dict[str, int]:
    """ECA module name -> the checkpoint's kernel size, for the ECA convs whose k alone differs from the model's."""
    out = {}
    for src, tgt, _ in result.mapped:
        if not tgt.endswith(".attn.conv.weight") or tgt not in target:
            continue
        have, want = source[src].shape, target[tgt].shape
        if len(have) == len(want) == 3 and have[:2] == want[:2] == (1, 1) and have[2] != want[2]:
            out[tgt[: -len(".conv.weight")]] = int(have[2])
    return out


def _rebuild_eca(model: nn.Module, name: str, kernel_size: int) -> None:
    """Replace the ECA module ``name`` of ``model`` by one with ``kernel_size``, in the same slot or attribute."""
    old = model.get_submodule(name)
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name)
    new = make_attention(type(old), old.channels, {"kernel_size": kernel_size}, getattr(old, MARK, "model"))
    new = new.to(device=old.conv.weight.device, dtype=old.conv.weight.dtype).train(old.training)
    if "_attnlab_hook" in old.__dict__:  # attached by a hook: the hook reads the attribute at every call
        new.__dict__["_attnlab_hook"] = old.__dict__["_attnlab_hook"]
    slots = getattr(parent, "attention_slots", None)
    position = next((p for p, a in slots.items() if a == attr), None) if isinstance(slots, dict) else None
    if position is not None and hasattr(parent, "set_attention"):
        parent.set_attention(new, position=position)
    else:
        setattr(parent, attr, new)


def _hints(result: ConvertedCheckpoint, eca: dict[str, int]) -> list[str]:
    """What to change when the conversion is refused, read from what went wrong."""
    hints = []
    if eca:
        ks = ", ".join(f"{n}: k={k}" for n, k in list(eca.items())[:8]) + (", ..." if len(eca) > 8 else "")
        hints.append(f"the checkpoint's ECA kernel sizes differ from the model's ({ks}): pass "
                     "adapt_eca_kernels=True to rebuild those ECA modules with the checkpoint's k")
    if any(".cbam." in k for k in result.unmapped) or any("spatial_attention.bn" in k for k in result.missing):
        hints.append("the official CBAM has MLP biases and a BN after its spatial conv: build the model with "
                     "attention_kwargs={'variant': 'official'}")
    if any(".attn.fc1.weight" in m for m in result.mismatched):
        hints.append("SE widths differ: timm rounds them up to multiples of 8, "
                     "attention_kwargs={'min_channels': 8} builds the same")
    if any(k.startswith("conv1.0.") or re.search(r"downsample\.2\.", k) for k in result.unmapped):
        hints.append("the checkpoint has a deep stem (conv1.0, conv1.1, ...) or average-pool shortcuts "
                     "(downsample.1, downsample.2): timm's ResNet-D/T (ecaresnet50d, ...), not torchvision's "
                     "ResNet, which attnlab's ResNets are")
    if any(".attn." in k for k in result.unmapped) or any(".attn." in k for k in result.missing):
        hints.append("attention keys differ: build the model with the checkpoint's attention (create_model(..., "
                     "attention='cbam' / 'eca' / 'se'))")
    return hints


def _problems(result: ConvertedCheckpoint, eca: dict[str, int]) -> str:
    """The refusal's text: the counts, up to 12 keys of each problem, and the hints."""
    lines = [str(result).splitlines()[0]]
    for label, keys in (("unmapped", result.unmapped), ("missing", result.missing), ("shape", result.mismatched)):
        lines += [f"  {label}: {k}" for k in keys[:12]]
        if len(keys) > 12:
            lines.append(f"  ... and {len(keys) - 12} more {label}")
    lines += [f"  note: {n}" for n in result.notes]
    lines += [f"  hint: {h}" for h in _hints(result, eca)]
    return "\n".join(lines)


def _map_keys(result: ConvertedCheckpoint, source: dict[str, Tensor], rules: tuple[_Rule, ...],
              target: dict[str, Tensor]) -> None:
    """Fill ``result.mapped``, ``unmapped``, ``mismatched`` and the converted ``state_dict``."""
    provided: set[str] = set()
    for key, value in source.items():
        name, transform, note = _rename(key, rules)
        if name not in target or name in provided:  # no place, or a place another source key took
            result.unmapped.append(key)
            continue
        provided.add(name)
        result.mapped.append((key, name, note))
        value = transform(value) if transform is not None else value
        if tuple(value.shape) != tuple(target[name].shape):
            result.mismatched.append(f"{name}: checkpoint {tuple(value.shape)} vs model {tuple(target[name].shape)}")
            continue
        result.state_dict[name] = value
    for key, value in target.items():
        if key in provided:
            continue
        if key.endswith("num_batches_tracked"):
            result.filled.append(key)
            result.state_dict[key] = value.new_zeros(())
        else:
            result.missing.append(key)


def convert_checkpoint(checkpoint: Mapping[str, Tensor] | str | os.PathLike, source: str, model: nn.Module, *,
                       strict: bool = True, adapt_eca_kernels: bool = False) -> ConvertedCheckpoint:
    """Convert a checkpoint of the authors' (or timm's) layout to ``model``'s names, checking every key.

    Args:
        checkpoint: a state_dict, or a path to one (``torch.save`` file or ``.safetensors``); a training
            checkpoint holding it under ``"state_dict"`` or ``"model"`` and ``module.``-prefixed keys
            (the official scripts save from DataParallel) are unwrapped.
        source: the layout, ``"cbam-official"``, ``"eca-official"`` or ``"timm"`` (see the module docstring).
        model: the attnlab network to convert for, built with the checkpoint's attention
            (``create_model("resnet50", attention="cbam", attention_kwargs={"variant": "official"})``).
            Only read, unless ``adapt_eca_kernels`` rebuilds some of its ECA modules.
        strict: refuse (raise) when a source key has no place, a model key is missing or a shape disagrees;
            False returns what fits and lists the rest.
        adapt_eca_kernels: rebuild the model's ECA modules whose kernel size differs from the checkpoint's,
            with the checkpoint's k (noted in the result), instead of refusing.

    Returns:
        A :class:`ConvertedCheckpoint`: ``model.load_state_dict(result.state_dict, strict=True)`` loads it
        when ``result.clean``; ``print(result)`` lists every key mapped.

    Raises:
        ValueError: for an unknown layout, or (``strict``) when the checkpoint does not fit; the message holds
            the report and what to change. Nothing is loaded either way.
        FileNotFoundError: for a path that does not exist.

    Example:
        >>> model = attnlab.create_model("resnet50", attention="cbam", attention_kwargs={"variant": "official"})
        >>> result = convert_checkpoint("RESNET50_CBAM_new_name_wrap.pth", "cbam-official", model)
        >>> model.load_state_dict(result.state_dict)
    """
    rules = lookup(CHECKPOINT_LAYOUTS, source, "checkpoint layout", _ALIASES)
    layout = next(name for name, r in CHECKPOINT_LAYOUTS.items() if r is rules)
    state, _ = _read(checkpoint)
    result = ConvertedCheckpoint(layout)
    _map_keys(result, state, rules, model.state_dict())
    eca = _eca_kernel_mismatches(result, state, model.state_dict())
    if eca and adapt_eca_kernels:
        for name, k in eca.items():
            _rebuild_eca(model, name, k)
        result.notes.append(f"rebuilt {len(eca)} ECA modules with the checkpoint's kernel sizes: "
                            + ", ".join(f"{n} k={k}" for n, k in eca.items()))
        result = ConvertedCheckpoint(layout, notes=result.notes)
        _map_keys(result, state, rules, model.state_dict())
        eca = {}
    if layout == "cbam-official" and any(re.match(r"bam\d+\.", t) for _, t, _ in result.mapped):
        result.notes.append("the official BAM computes sigmoid(Mc * Ms), attnlab's BAM the paper's sigmoid(Mc + Ms): "
                            "the weights load, the outputs differ from the official network's")
    if strict and not result.clean:
        raise ValueError(f"the {layout} checkpoint does not fit {type(model).__name__}; nothing was converted:\n"
                         + _problems(result, eca))
    return result
