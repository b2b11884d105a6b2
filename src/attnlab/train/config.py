"""The training configuration: one dataclass, JSON round-trippable, stored in every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["TrainConfig"]


@dataclass
class TrainConfig:
    """Everything that defines a training run.

    Attributes:
        model, attention, attention_kwargs: passed to ``attnlab.create_model``.
        dataset, data_root, dataset_kwargs: passed to ``attnlab.data.create_dataset``.
        epochs: training epochs.
        batch_size: global batch size (split evenly over ranks under torchrun).
        optimizer: "sgd" (Nesterov momentum) or "adamw".
        lr, momentum, weight_decay: optimiser settings (no decay on norm and bias parameters).
        warmup_epochs: linear warm-up length, then cosine decay to zero.
        label_smoothing: cross-entropy label smoothing.
        amp: "auto" (bf16, else fp16 with loss scaling, on CUDA; off on CPU), "bf16", "fp16" or "off".
        channels_last: run the model in channels_last memory format.
        compile: wrap the model in ``torch.compile``.
        augment: the dataset's training augmentation (random crop with padding, flips where they make sense).
        seed: seeds model init, data order and augmentation; CPU runs are repeatable.
        device: "auto", "cpu", "cuda", "cuda:N".
        limit_train, limit_test: use only the first N samples (quick runs and tests).
        num_threads: torch intra-op threads (None: torch's default).
        sync_bn: under torchrun, BatchNorm statistics span the global batch (synchronised across ranks), so
            N processes train the same model as one process on the same global batch; False keeps
            per-rank statistics (plain DDP). No effect in a single process.
    """

    model: str = "resnet20"
    attention: str | None = None
    attention_kwargs: dict[str, Any] = field(default_factory=dict)
    dataset: str = "fashion-mnist"
    data_root: str | None = None
    dataset_kwargs: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.0
    amp: str = "auto"
    channels_last: bool = False
    compile: bool = False
    augment: bool = True
    seed: int = 0
    device: str = "auto"
    limit_train: int | None = None
    limit_test: int | None = None
    num_threads: int | None = None
    sync_bn: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.amp not in ("auto", "bf16", "fp16", "off"):
            raise ValueError(f"amp must be one of auto, bf16, fp16, off; got {self.amp!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")

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
