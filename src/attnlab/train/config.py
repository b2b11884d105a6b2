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
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

__all__ = ["TrainConfig", "option"]


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
    channels_last: bool = option(False, "run the model in channels_last memory format", negatable=True)
    compile: bool = option(False, "torch.compile the model")
    augment: bool = option(True, "the dataset's training augmentation (random crop with padding, flips where "
                           "they make sense)", flag="--no-augment")
    seed: int = option(0, "seeds model init, data order and augmentation; CPU runs are repeatable")
    device: str = option("auto", "auto, cpu, cuda, cuda:N")
    limit_train: int | None = option(None, "use only the first N training samples", default_text="all")
    limit_test: int | None = option(None, "use only the first N test samples", default_text="all")
    num_threads: int | None = option(None, "torch intra-op threads", flag="--threads",
                                     default_text="torch's default")
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


def _attributes_doc(cls: type) -> str:
    """A Google-style ``Attributes:`` section from the fields' help texts."""
    lines = ["", "    Attributes:"]
    lines += [f"        {f.name}: {f.metadata['help']}." for f in fields(cls)]
    return "\n".join(lines) + "\n"


TrainConfig.__doc__ = (TrainConfig.__doc__ or "") + "\n" + _attributes_doc(TrainConfig)
