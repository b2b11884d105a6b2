"""Load a backbone checkpoint (e.g. torchvision's ResNet weights) into a network with attention, and report.

The ImageNet ResNets of :mod:`attnlab.models.resnet` keep torchvision's state_dict names and shapes,
and :func:`attnlab.attach` keeps a model's own names, so a checkpoint of the plain network loads into
the attention network with only the attention keys absent. :func:`load_backbone` checks exactly that:
every shape is compared before anything is copied (a disagreement raises and leaves the model as it
was), and the keys are sorted into loaded, new (attention), missing (backbone keys the checkpoint lacks)
and unexpected (checkpoint keys the model has no place for).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..fileio import load_safetensors
from ._attn import attention_prefixes

__all__ = ["LoadReport", "load_backbone"]


@dataclass
class LoadReport:
    """What :func:`load_backbone` did, key by key (state_dict names).

    Attributes:
        loaded: model keys copied from the checkpoint.
        new: model keys of attention modules, absent from the checkpoint (left as initialised): expected.
        missing: other model keys absent from the checkpoint (left as initialised): worth a look.
        unexpected: checkpoint keys the model has no place for (ignored).
        skipped: checkpoint keys deliberately not loaded (the classifier, when its shape differs and
            ``head`` is None, or when ``head`` is False).
    """

    loaded: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when nothing is missing or unexpected (new attention keys and a skipped head are fine)."""
        return not self.missing and not self.unexpected

    def __str__(self) -> str:
        def some(keys: list[str]) -> str:
            return "" if not keys else ": " + ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "")

        return (f"loaded {len(self.loaded)} keys; new (attention) {len(self.new)}{some(self.new)}; "
                f"missing {len(self.missing)}{some(self.missing)}; unexpected {len(self.unexpected)}"
                f"{some(self.unexpected)}; skipped {len(self.skipped)}{some(self.skipped)}")


def _read(source: Mapping[str, Tensor] | str | os.PathLike) -> dict[str, Tensor]:
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no checkpoint at {path!r}")
        if path.endswith(".safetensors"):
            source, _ = load_safetensors(path)  # torch alone: no safetensors package needed
        else:
            source = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(source, Mapping):
        raise TypeError(f"a checkpoint is a state_dict (a mapping of names to tensors), got {type(source).__name__}")
    state = dict(source)
    for wrapper in ("state_dict", "model"):  # {"state_dict": {...}, "epoch": ...} training checkpoints
        if wrapper in state and isinstance(state[wrapper], Mapping) and not isinstance(state[wrapper], Tensor):
            state = dict(state[wrapper])
            break
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel / DDP
        state = {k[len("module."):]: v for k, v in state.items()}
    bad = [k for k, v in state.items() if not isinstance(v, Tensor)]
    if bad:
        raise TypeError(f"checkpoint entries are not tensors: {bad[:5]}")
    return state


def _classifier_prefix(model: nn.Module, attention: tuple[str, ...]) -> str | None:
    """The dotted name (with a trailing '.') of the model's classifier: its last ``nn.Linear`` outside attention."""
    last = None
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear) and name and not (name + ".").startswith(attention or ("\0",)):
            last = name
    return None if last is None else last + "."


def load_backbone(model: nn.Module, state_dict_or_path: Mapping[str, Tensor] | str | os.PathLike, *,
                  head: bool | None = None, strict: bool = False) -> LoadReport:
    """Load a (backbone) checkpoint into ``model`` and report which keys were loaded, new, missing or unexpected.

    Args:
        model: the network to load into (an attnlab model, or any model after :func:`attnlab.attach`).
        state_dict_or_path: a state_dict, or a path to one (``torch.save`` file, or ``.safetensors`` file read
            by :func:`attnlab.fileio.load_safetensors`). A training checkpoint holding it under
            ``"state_dict"`` or ``"model"``, and ``module.``-prefixed keys (DataParallel), are unwrapped.
        head: the classifier (the model's last ``nn.Linear``): None loads it when its shapes agree and
            skips it otherwise (e.g. ImageNet weights into a 10-class model); True always loads it (a
            shape disagreement raises); False never loads it.
        strict: also raise when keys are missing or unexpected (new attention keys are always fine).

    Returns:
        A :class:`LoadReport`.

    Raises:
        ValueError: when shapes disagree (all disagreements listed), or under ``strict`` when keys are
            missing or unexpected. Nothing is loaded then: the model is left exactly as it was.
        FileNotFoundError: for a path that does not exist.
        attnlab.fileio.SafetensorsError: a ``.safetensors`` file that is truncated or corrupt.

    Example:
        >>> model = attnlab.create_model("resnet50", attention="se")
        >>> report = attnlab.load_backbone(model, "resnet50-0676ba61.pth")  # torchvision's weights
        >>> report.missing, report.unexpected, len(report.new)
        ([], [], 64)
    """
    source = _read(state_dict_or_path)
    target = model.state_dict()
    attn = tuple(attention_prefixes(model))
    cls = _classifier_prefix(model, attn)
    in_head = (lambda k: k.startswith(cls)) if cls else (lambda k: False)  # noqa: E731

    report = LoadReport()
    mismatched = []
    to_load: dict[str, Tensor] = {}
    for key, value in source.items():
        if key not in target:
            report.unexpected.append(key)
            continue
        if head is False and in_head(key):
            report.skipped.append(key)
            continue
        if tuple(value.shape) != tuple(target[key].shape):
            if head is None and in_head(key):
                report.skipped.append(key)
                continue
            mismatched.append(f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(target[key].shape)}")
            continue
        to_load[key] = value
    if head is None and any(in_head(k) for k in report.skipped):  # never load half a classifier
        for key in [k for k in to_load if in_head(k)]:
            del to_load[key]
            report.skipped.append(key)
    if mismatched:
        more = f"\n  ... and {len(mismatched) - 12} more" if len(mismatched) > 12 else ""
        raise ValueError(f"{len(mismatched)} shapes disagree between the checkpoint and {type(model).__name__}; "
                         "nothing was loaded:\n  " + "\n  ".join(mismatched[:12]) + more)
    skipped = set(report.skipped)
    for key in target:
        if key in to_load:
            report.loaded.append(key)
        elif key in skipped:
            continue
        elif attn and key.startswith(attn):
            report.new.append(key)
        else:
            report.missing.append(key)
    if strict and not report.clean:
        raise ValueError(f"strict load into {type(model).__name__} refused, nothing was loaded: {report}")
    model.load_state_dict(to_load, strict=False)
    return report
