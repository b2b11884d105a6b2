"""Study presets: what to train, on what, for how long."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = ["StudyPreset", "PRESETS", "get_preset"]


@dataclass(frozen=True)
class StudyPreset:
    """One study's setup. Every model variant gets the same backbone, seeds, data order and budget.

    Attributes:
        attentions: the variants; None is the vanilla network.
        seeds: one training run per (variant, seed).
        epochs, batch_size, lr, optimizer, weight_decay, warmup_epochs: the training budget (SGD, cosine).
        channels_last: train in channels_last memory format (1.2x to 1.4x faster on CPU with oneDNN).
        limit_train: train on the first N training canvases (None: all).
        limit_test: accuracy on the first N test canvases (None: all).
        n_localisation: test canvases on which maps are scored against the boxes and masks.
        n_grid: test canvases shown in the report's picture grid.
        cam_method: the CAM family member scored (see ``attnlab.cam.list_cams``).
        throughput_batch, train_batch, repeats: the cost measurements (paired rounds, median).
    """

    name: str
    description: str
    dataset: str = "cluttered-fashion-mnist"
    dataset_kwargs: dict[str, Any] = field(default_factory=dict)
    model: str = "resnet20"
    attentions: tuple[str | None, ...] = (None, "se", "cbam", "bam", "eca")
    seeds: tuple[int, ...] = (0,)
    epochs: int = 2
    batch_size: int = 64
    lr: float = 0.05
    optimizer: str = "sgd"
    channels_last: bool = True
    weight_decay: float = 5e-4
    warmup_epochs: float = 0.3
    limit_train: int | None = None
    limit_test: int | None = None
    n_localisation: int = 1000
    n_grid: int = 6
    cam_method: str = "gradcam"
    throughput_batch: int = 64
    train_batch: int = 32
    repeats: int = 5

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["attentions"] = list(self.attentions)
        d["seeds"] = list(self.seeds)
        return d

    def with_overrides(self, **changes: Any) -> StudyPreset:
        """A copy with the given fields changed (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


PRESETS: dict[str, StudyPreset] = {
    "quick": StudyPreset(
        name="quick",
        description="all five models end to end in minutes on a 2-core CPU: a short schedule on a subset of the "
                    "training canvases, one seed; enough to see accuracy well above chance and to exercise every "
                    "measurement, not enough to settle the claim",
        seeds=(0,), epochs=2, batch_size=64, lr=0.08, warmup_epochs=0.2, limit_train=5000, limit_test=1000,
        n_localisation=500, n_grid=6, repeats=3),
    "full": StudyPreset(
        name="full",
        description="a paper-like schedule on all 60,000 training canvases with three seeds, meant for a GPU",
        seeds=(0, 1, 2), epochs=30, batch_size=128, lr=0.1, warmup_epochs=1.0, limit_train=None, limit_test=None,
        n_localisation=10000, n_grid=8, repeats=7),
}


def get_preset(name: str) -> StudyPreset:
    if name not in PRESETS:
        raise ValueError(f"unknown study preset {name!r}; choose one of {', '.join(sorted(PRESETS))}")
    return PRESETS[name]
