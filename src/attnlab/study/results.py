"""What a study found, as small dataclasses: the runner fills them, the report and ``results.json`` read them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from torch import Tensor

from ..train import TrainConfig
from .measure import Cost, LocalisationScores, cam_title
from .presets import StudyPreset
from .stats import Interval
from .verdict import Verdict

__all__ = ["Environment", "GridPictures", "ModelRow", "RunRecord", "StudyResults", "variant_name"]


def variant_name(attention: str | None) -> str:
    """A variant's name: its attention module's, or ``vanilla``."""
    return "vanilla" if attention is None else attention


@dataclass
class RunRecord:
    """One training run (one variant, one seed) and its maps' scores.

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
    """Where the study ran."""

    attnlab: str
    torch: str
    python: str
    device: str
    machine: str
    platform: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class GridPictures:
    """The report's picture grid: the same test images, one column of maps per model and kind.

    Attributes:
        images: (N, C, H, W) in [0, 1].
        titles: one per image (its class).
        maps: column title -> (N, H, W) maps in [0, 1].
    """

    images: Tensor
    titles: list[str]
    maps: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class StudyResults:
    """Every figure of a study and what it was run with.

    Attributes:
        preset: the preset as run (``preset.overrides()`` says what the command changed).
        train: the training config every run shared (attention and seed aside), device included.
        n_train, n_test: training images trained on, test images the accuracy is over.
        n_localisation: test images the maps are scored on.
        classes: class names.
        models: variant -> its row.
        gains: attention variant -> gain in the primary metric over vanilla.
        primary_metric: the key of the primary localisation figure (of the CAM maps).
        verdict: the decision on the claim.
        environment: versions and machine.
        command: the command that ran the study.
        wall_seconds: the study's wall-clock time.
    """

    preset: StudyPreset
    train: TrainConfig
    n_train: int
    n_test: int
    n_localisation: int
    classes: list[str]
    models: dict[str, ModelRow]
    gains: dict[str, Interval]
    primary_metric: str
    verdict: Verdict
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
        return {"models": {n: row.to_dict() for n, row in self.models.items()},
                "gains_vs_vanilla": {n: g.to_dict() for n, g in self.gains.items()},
                "primary_metric": f"{self.cam} {self.primary_metric}",
                "verdict": {"label": self.verdict.label, "text": self.verdict.text, "margin": self.verdict.margin},
                "n_localisation": self.n_localisation, "seeds": self.seeds,
                "budget": {"n_train": self.n_train, "n_test": self.n_test, "train": self.train.to_dict()},
                "environment": self.environment.to_dict(), "command": self.command,
                "preset": self.preset.to_dict(), "classes": list(self.classes), "wall_seconds": self.wall_seconds}
