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
from pathlib import Path

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


#: what :func:`load_backbone` reads, for the messages
ACCEPTED = ("a state_dict saved with torch.save (.pt, .pth, .bin), a .safetensors file, or a training checkpoint "
            "holding one under 'state_dict' or 'model'")


def _is_safetensors(path: str) -> bool:
    """A ``.safetensors`` name, or a file that opens like one (8-byte header length, then the JSON header)."""
    if path.endswith(".safetensors"):
        return True
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < os.path.getsize(path)


def _load_file(path: str) -> object:
    """The object stored in a checkpoint file.

    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: a folder, or a file that is neither a torch checkpoint nor safetensors (named, with the cause).
        attnlab.fileio.SafetensorsError: a truncated or corrupt ``.safetensors`` file.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}")
    if os.path.isdir(path):
        folder = Path(path)
        found = sorted(folder.glob("model.safetensors")) or sorted(folder.glob("checkpoints/*/model.safetensors"))
        hint = f" (an attnlab run? its weights: {found[-1]})" if found else ""
        raise ValueError(f"{path} is a folder, not a checkpoint file{hint}: load_backbone reads {ACCEPTED}")
    if _is_safetensors(path):
        return load_safetensors(path)[0]  # torch alone: no safetensors package needed
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - whatever a foreign file makes the unpickler raise
        if "weights_only" in str(err) or "Weights only" in str(err):
            raise ValueError(f"{path} holds Python objects besides tensors, which load_backbone does not unpickle "
                             "(no code in a file is run): save model.state_dict() instead, or, if you trust the file, "
                             "pass torch.load(path, weights_only=False) yourself") from err
        cause = str(err).strip().splitlines()[0][:160] if str(err).strip() else "empty or truncated"
        raise ValueError(f"{path} is not a torch checkpoint nor a safetensors file ({type(err).__name__}: "
                         f"{cause}); load_backbone reads {ACCEPTED}") from err


def _tensor_mappings(state: Mapping[str, object]) -> list[str]:
    """Keys of ``state`` whose value is a non-empty mapping of tensors (where a state_dict may hide)."""
    return [k for k, v in state.items() if isinstance(v, Mapping) and v
            and all(isinstance(t, Tensor) for t in v.values())]


def _read(source: Mapping[str, Tensor] | str | os.PathLike) -> tuple[dict[str, Tensor], str]:
    """The state_dict of ``source`` and how to name it in messages (the file, or "the state_dict")."""
    what = "the given checkpoint"
    if isinstance(source, (str, os.PathLike)):
        what = os.fspath(source)
        source = _load_file(what)
        if not isinstance(source, Mapping):
            raise ValueError(f"{what} holds a {type(source).__name__}, not a state_dict (a mapping of names to "
                             f"tensors); load_backbone reads {ACCEPTED}")
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
        nested = _tensor_mappings(state)
        hint = f"; the tensors may be under {nested}: pass that entry" if nested else ""
        raise ValueError(f"{what} is not a state_dict: {len(bad)} of its {len(state)} entries are not tensors "
                         f"({', '.join(map(repr, bad[:5]))}){hint}")
    return state, what


def _classifier_prefix(model: nn.Module, attention: tuple[str, ...]) -> str | None:
    """The dotted name (with a trailing '.') of the model's classifier: its last ``nn.Linear`` outside attention."""
    last = None
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear) and name and not (name + ".").startswith(attention or ("\0",)):
            last = name
    return None if last is None else last + "."


def _some(keys: list[str], k: int = 4) -> str:
    return ", ".join(keys[:k]) + (", ..." if len(keys) > k else "")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _prefix_hint(ckpt: list[str], model: list[str]) -> str:
    """How the two key sets line up when one carries a dotted prefix the other lacks ("" when they don't)."""
    for keys, other, whose in ((ckpt, set(model), "checkpoint"), (model, set(ckpt), "model")):
        for key in keys[:50]:
            parts = key.split(".")
            for i in range(1, len(parts)):
                if ".".join(parts[i:]) in other:
                    prefix = ".".join(parts[:i]) + "."
                    n = sum(k.startswith(prefix) and k[len(prefix):] in other for k in keys)
                    strip = "{k.removeprefix(" + repr(prefix) + "): v for k, v in state.items()}"
                    fix = (f"strip it: {strip}" if whose == "checkpoint"
                           else f"load into model.get_submodule({prefix[:-1]!r}) instead")
                    return f"; the {whose}'s keys carry the prefix {prefix!r} ({n} match without it): {fix}"
    return ""


def _no_key_error(source: dict[str, Tensor], target: Mapping[str, Tensor], what: str, model: nn.Module) -> ValueError:
    """The error for a checkpoint none of whose keys the model has: both key sets, and the prefix that differs."""
    ckpt, mine = list(source), list(target)
    if not ckpt:
        return ValueError(f"{what} is empty: no key to load into {type(model).__name__}")
    return ValueError(f"no key of {what} matches {type(model).__name__}, nothing was loaded: the checkpoint has "
                      f"{_count(len(ckpt), 'key')} ({_some(ckpt)}), the model {len(mine)} ({_some(mine)})"
                      f"{_prefix_hint(ckpt, mine)}")


def _check_finite(to_load: dict[str, Tensor], what: str) -> None:
    """Refuse weights holding NaN or inf (a diverged run): the model would output NaN everywhere."""
    bad = {k: int((~torch.isfinite(v)).sum()) for k, v in to_load.items()
           if (v.is_floating_point() or v.is_complex()) and not bool(torch.isfinite(v).all())}
    if bad:
        some = _some([f"{k} ({_count(n, 'value')})" for k, n in bad.items()])
        raise ValueError(f"{what} holds NaN or inf values in {_count(len(bad), 'tensor')}: {some}; nothing was "
                         "loaded (the run it comes from diverged? load an earlier checkpoint)")


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
        ValueError: when shapes disagree (all disagreements listed); when no key of the checkpoint is one of
            the model's (both key sets and a differing prefix are named); when a tensor to load holds NaN or
            inf; under ``strict`` when keys are missing or unexpected; for a file that is no checkpoint
            (a folder, text, a pickle of other objects). Nothing is loaded then: the model is left exactly
            as it was.
        FileNotFoundError: for a path that does not exist.
        attnlab.fileio.SafetensorsError: a ``.safetensors`` file that is truncated or corrupt.

    Example:
        >>> model = attnlab.create_model("resnet50", attention="se")
        >>> report = attnlab.load_backbone(model, "resnet50-0676ba61.pth")  # torchvision's weights
        >>> report.missing, report.unexpected, len(report.new)
        ([], [], 64)
    """
    source, what = _read(state_dict_or_path)
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
    if not to_load and not mismatched:
        if report.skipped:
            raise ValueError(f"the only keys of {what} that {type(model).__name__} has are its classifier's "
                             f"({_some(report.skipped)}), skipped by head={head}: nothing to load")
        raise _no_key_error(source, target, what, model)
    _check_finite(to_load, what)
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
