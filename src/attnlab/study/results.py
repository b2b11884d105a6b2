"""What a study found, as small dataclasses: the runner fills them, the report and ``results.json`` read them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from torch import Tensor

from ..train import TrainConfig
from .measure import Cost, LocalisationScores, cam_title
from .presets import Condition, StudyPreset
from .stats import Interval
from .verdict import ClaimVerdict

__all__ = ["ConditionResults", "Environment", "GridPictures", "ModelRow", "RunRecord", "StudyResults", "variant_name"]


def variant_name(attention: str | None) -> str:
    """A variant's name: its attention module's, or ``vanilla``."""
    return "vanilla" if attention is None else attention


@dataclass
class RunRecord:
    """One training run (one condition, one variant, one seed) and its maps' scores.

    Attributes:
        seed: the run's seed.
        run: its run directory.
        test_acc: accuracy on the ``test_count`` test images.
        train_seconds, seconds_per_epoch: training time.
        cam: the CAM maps' localisation scores.
        attention: the attention modules' own maps' scores (None when they apply no spatial map).
    """

    seed: int
    run: str
    test_acc: float
    test_count: int
    train_seconds: float
    seconds_per_epoch: float
    cam: LocalisationScores
    attention: LocalisationScores | None

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "run": self.run, "test_acc": self.test_acc}


@dataclass
class ModelRow:
    """One variant over its seeds.

    Attributes:
        accuracy: test accuracy with its interval.
        cost: parameters, FLOPs and throughput (None when not measured).
        train_seconds, seconds_per_epoch: means over the runs.
        runs: every run behind the row.
        cam: localisation figure (``measure.METRIC_LABELS`` keys) -> interval, for the CAM maps.
        attention: the same for the modules' own maps, None when they have none.
    """

    accuracy: Interval
    cost: Cost | None
    train_seconds: float
    seconds_per_epoch: float
    runs: list[RunRecord] = field(default_factory=list)
    cam: dict[str, Interval] = field(default_factory=dict)
    attention: dict[str, Interval] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The row as in ``results.json`` (the CAM figures under ``gradcam``, as ever)."""
        return {"accuracy": self.accuracy.to_dict(), "cost": self.cost.to_dict() if self.cost else {},
                "train_seconds": self.train_seconds, "seconds_per_epoch": self.seconds_per_epoch,
                "runs": [r.to_dict() for r in self.runs],
                "gradcam": {k: v.to_dict() for k, v in self.cam.items()},
                "attention": None if self.attention is None else {k: v.to_dict() for k, v in self.attention.items()}}


@dataclass
class Environment:
    """Where the study ran: versions, the device, the processor and GPU by name, the threads used."""

    attnlab: str
    torch: str
    python: str
    device: str
    machine: str
    platform: str
    cpu: str = ""
    gpu: str | None = None
    threads: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GridPictures:
    """One picture grid of the report: test images, one column of maps per model and kind.

    Attributes:
        images: (N, C, H, W) in [0, 1].
        titles: one per image (its class, and why it was picked).
        maps: column title -> (N, H, W) maps in [0, 1].
        boxes: (N, 4) the objects' boxes, outlined dashed on every cell, or None.
        clutter: (N, H, W) bool, the clutter pixels, outlined on every cell, or None.
        captions: column title -> N captions under that column's cells (e.g. the map's clutter share).
        caption: what the grid shows, in a sentence (the report's figure caption).
    """

    images: Tensor
    titles: list[str]
    maps: dict[str, Tensor] = field(default_factory=dict)
    boxes: Tensor | None = None
    clutter: Tensor | None = None
    captions: dict[str, list[str]] = field(default_factory=dict)
    caption: str = ""


@dataclass
class ConditionResults:
    """Every figure of one condition (a dataset at one clutter level).

    Attributes:
        condition: the dataset and clutter level.
        n_train, n_test: training canvases trained on, test canvases the accuracy is over.
        n_localisation: test canvases the maps are scored on (this condition's own).
        models: variant -> its row.
        baselines: baseline map ("uniform map", "centre prior") -> metric -> its value on the same canvases
            (bootstrap interval over images): what chance looks like.
        gains: half of the claim -> attention variant -> gain in that half's primary metric over vanilla, signed
            so that a positive gain supports the claim (interval over seeds, or over images with one seed).
        verdict: the claim decided at this condition, when it is its dataset's decisive one (its findings carry
            each seed's per-image paired differences); else None.
    """

    condition: Condition
    n_train: int
    n_test: int
    n_localisation: int
    models: dict[str, ModelRow]
    baselines: dict[str, dict[str, Interval]] = field(default_factory=dict)
    gains: dict[str, dict[str, Interval]] = field(default_factory=dict)
    verdict: ClaimVerdict | None = None

    def to_dict(self) -> dict[str, Any]:
        """The condition as in ``results.json``."""
        return {"dataset": self.condition.dataset, "clutter": self.condition.clutter, "name": self.condition.name,
                "n_train": self.n_train, "n_test": self.n_test, "n_localisation": self.n_localisation,
                "models": {n: row.to_dict() for n, row in self.models.items()},
                "baselines": {n: {k: v.to_dict() for k, v in d.items()} for n, d in self.baselines.items()},
                "gains_vs_vanilla": {h: {n: g.to_dict() for n, g in d.items()} for h, d in self.gains.items()},
                "verdict": None if self.verdict is None else self.verdict.to_dict()}


@dataclass
class StudyResults:
    """Every figure of a study and what it was run with.

    Attributes:
        preset: the preset as run (``preset.overrides()`` says what the command changed).
        train: the training config every run shared (condition, attention and seed aside), device included.
        conditions: condition key -> its figures, in the order run (each dataset's levels ascending as given).
        classes: class names.
        cost: variant -> parameters, FLOPs and throughput (measured once, side by side).
        halves: half of the claim -> its primary metric's key (declared before any number).
        verdict: the overall decision on the claim, over the conditions.
        environment: versions and machine.
        command: the command that ran the study.
        wall_seconds: the study's wall-clock time.
    """

    preset: StudyPreset
    train: TrainConfig
    conditions: dict[str, ConditionResults]
    classes: list[str]
    cost: dict[str, Cost]
    halves: dict[str, str]
    verdict: ClaimVerdict
    environment: Environment
    command: str
    wall_seconds: float = 0.0

    @property
    def cam(self) -> str:
        """The scored CAM method as its paper names it (e.g. ``Grad-CAM``)."""
        return cam_title(self.preset.cam_method)

    @property
    def seeds(self) -> int:
        return len(self.preset.seeds)

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``results.json``."""
        first = next(iter(self.conditions.values()))
        return {"conditions": {k: c.to_dict() for k, c in self.conditions.items()},
                "cost": {n: c.to_dict() for n, c in self.cost.items()},
                "primary_metrics": {h: f"{self.cam} {m}" for h, m in self.halves.items()},
                "verdict": self.verdict.to_dict(), "seeds": self.seeds,
                "clutter_levels": sorted({c.condition.clutter for c in self.conditions.values()
                                          if c.condition.clutter is not None}),
                "budget": {"n_train": first.n_train, "n_test": first.n_test, "n_localisation": first.n_localisation,
                           "train": self.train.to_dict()},
                "environment": self.environment.to_dict(), "command": self.command,
                "preset": self.preset.to_dict(), "classes": list(self.classes), "wall_seconds": self.wall_seconds}
