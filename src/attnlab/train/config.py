"""The training configuration: one dataclass, JSON round-trippable, stored in every checkpoint.

:class:`TrainConfig` is the one definition of every training option. Each field carries, in its
``metadata``, the help text and (where it differs from the field) the command-line flag, its choices and
how the flag's text becomes the value; ``attnlab train`` and ``attnlab bench train`` build their flags
from these fields, and a study preset holds a ``TrainConfig`` for its training budget. Adding an option
is one field here.

Metadata keys (all optional but ``help``):
    help: what the option does (shown by ``attnlab train --help`` and in the class docstring).
    flag: the command-line flag when it is not ``--field-name`` (e.g. ``--threads``); a ``--no-...`` flag
        on a bool field that defaults to True turns it off.
    choices: the allowed values (checked here and by the CLI).
    negatable: a bool field given as ``--flag``/``--no-flag``.
    default_text: how ``--help`` shows a default that reads badly as a value (e.g. ``None``).
    parse: turns the flag's text into the field's value (a ``ValueError`` for bad text).
    cli: False for a field with no flag.
    affects_result: False for a setting that cannot change what the run computes (where it runs, how fast),
        True (the default) for everything else. A run may be resumed, and a finished run reused by a study,
        with other values of such settings only (:func:`result_changes` is that one check).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from typing import Any

__all__ = ["TrainConfig", "affects_result", "flag_text", "option", "result_changes"]


def option(default: Any = MISSING, help: str = "", *, default_factory: Any = MISSING, **cli: Any) -> Any:
    """A dataclass field with its help text and command-line metadata (see the module docstring)."""
    if not help:
        raise ValueError("every option needs its help text")
    return field(default=default, default_factory=default_factory, metadata={"help": help, **cli})


def _attention_name(text: str) -> str | None:
    """``--attention`` text -> registry name; ``none``/``vanilla``/empty -> None (the vanilla network)."""
    return None if text.strip().lower() in ("", "none", "vanilla") else text


@dataclass
class TrainConfig:
    """Everything that defines a training run.

    Each field's ``help`` metadata is the one description of the option: the CLI's ``--help`` and the
    ``Attributes`` below are made from it.
    """

    model: str = option("resnet20", "model name (attnlab.list_models())")
    attention: str | None = option(None, "attention module name (attnlab.list_attention()), or none for the "
                                   "vanilla network", parse=_attention_name, default_text="none")
    attention_kwargs: dict[str, Any] = option(
        default_factory=dict, help="options for the attention modules, on the command line a JSON object, "
                                   "e.g. '{\"reduction\": 8}'")
    dataset: str = option("fashion-mnist", "dataset name (attnlab.data.list_datasets())")
    data_root: str | None = option(None, "directory of the dataset files",
                                   default_text="the dataset's own default folder")
    dataset_kwargs: dict[str, Any] = option(default_factory=dict, help="options for the dataset class, e.g. "
                                            "canvas or seed for cluttered-fashion-mnist", cli=False)
    epochs: int = option(10, "training epochs")
    batch_size: int = option(128, "global batch size (split evenly over ranks under torchrun)")
    optimizer: str = option("sgd", "sgd (Nesterov momentum) or adamw (momentum is its beta1)",
                            choices=("sgd", "adamw"))
    lr: float = option(0.1, "peak learning rate, reached after the warm-up")
    momentum: float = option(0.9, "SGD momentum, or AdamW's beta1")
    weight_decay: float = option(5e-4, "weight decay (not on norm and bias parameters)")
    warmup_epochs: float = option(1.0, "linear warm-up length in epochs, then cosine decay to zero")
    label_smoothing: float = option(0.0, "cross-entropy label smoothing")
    amp: str = option("auto", "mixed precision: auto (bf16, else fp16 with loss scaling, on CUDA; off on CPU), "
                      "bf16, fp16 or off", choices=("auto", "bf16", "fp16", "off"))
    channels_last: bool = option(False, "run the model in channels_last memory format", negatable=True,
                                 affects_result=False)
    compile: bool = option(False, "torch.compile the model", affects_result=False)
    augment: bool = option(True, "the dataset's training augmentation (random crop with padding, flips where "
                           "they make sense)", flag="--no-augment")
    seed: int = option(0, "seeds model init, data order and augmentation; CPU runs are repeatable")
    device: str = option("auto", "auto, cpu, cuda, cuda:N", affects_result=False)
    limit_train: int | None = option(None, "use only the first N training samples", default_text="all")
    limit_test: int | None = option(None, "use only the first N test samples", default_text="all")
    num_threads: int | None = option(None, "torch intra-op threads", flag="--threads",
                                     default_text="torch's default", affects_result=False)
    sync_bn: bool = option(True, "under torchrun, BatchNorm statistics span the global batch (synchronised "
                           "across ranks), so N processes train the same model as one process on the same "
                           "global batch; off keeps per-rank statistics (plain DDP); no effect in one process",
                           flag="--no-sync-bn")

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        for f in fields(self):
            choices = f.metadata.get("choices")
            if choices is not None and getattr(self, f.name) not in choices:
                raise ValueError(f"{f.name} must be one of {', '.join(choices)}; got {getattr(self, f.name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def model_config(self, num_classes: int, in_chans: int) -> dict[str, Any]:
        """What ``attnlab.create_model`` needs to rebuild the network."""
        return {"name": self.model, "attention": self.attention, "attention_kwargs": dict(self.attention_kwargs),
                "num_classes": int(num_classes), "in_chans": int(in_chans)}


def affects_result(f: Field) -> bool:
    """Whether the :class:`TrainConfig` field ``f`` can change what a run computes (its ``affects_result``
    metadata; True unless declared otherwise)."""
    return bool(f.metadata.get("affects_result", True))


def _as_stored(value: Any) -> Any:
    """``value`` as it reads back from a run's JSON (tuples become lists, and so on)."""
    return json.loads(json.dumps(value))


def _default(f: Field) -> Any:
    return f.default_factory() if f.default is MISSING else f.default


def result_changes(stored: Mapping[str, Any], given: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """The settings that can change what a run computes and differ between a run's stored config and ``given``.

    The one check behind resuming a run (``train(..., resume=True)`` refuses any change) and reusing a finished
    run in a study; settings declared ``affects_result=False`` (device, threads, ...) may differ.

    Args:
        stored: the run's ``TrainConfig.to_dict()`` as read back from its JSON; a field it lacks (a run written
            before the field existed) counts as the field's default.
        given: the configuration asked for now.

    Returns:
        field name -> (stored value, given value), in field order; empty when nothing that matters differs.
    """
    now = given.to_dict()
    changes = {}
    for f in fields(TrainConfig):
        if not affects_result(f):
            continue
        before = _as_stored(stored[f.name] if f.name in stored else _default(f))
        after = _as_stored(now[f.name])
        if before != after:
            changes[f.name] = (before, after)
    return changes


def flag_text(name: str, value: Any) -> str:
    """How the command line sets the field ``name`` to ``value``, for messages: ``--lr 0.1``, ``--no-augment``,
    ``without --limit-train`` (the default); a field without a flag as ``name=value``."""
    f = next(f for f in fields(TrainConfig) if f.name == name)
    if not f.metadata.get("cli", True):
        return f"{name}={json.dumps(value)}"
    flag = f.metadata.get("flag", "--" + name.replace("_", "-"))
    if isinstance(value, bool):
        if f.metadata.get("negatable"):
            return flag if value else "--no-" + flag[2:]
        sets = not flag.startswith("--no-")  # the value the bare flag gives
        return flag if value == sets else f"without {flag}"
    if value is None:  # the default, or a word the flag's parser reads as None (``--attention none``)
        parse = f.metadata.get("parse")
        return f"{flag} none" if parse is not None and parse("none") is None else f"without {flag}"
    return f"{flag} '{json.dumps(value)}'" if isinstance(value, dict) else f"{flag} {value}"


def _attributes_doc(cls: type) -> str:
    """A Google-style ``Attributes:`` section from the fields' help texts."""
    lines = ["", "    Attributes:"]
    lines += [f"        {f.name}: {f.metadata['help']}." for f in fields(cls)]
    return "\n".join(lines) + "\n"


TrainConfig.__doc__ = (TrainConfig.__doc__ or "") + "\n" + _attributes_doc(TrainConfig)
