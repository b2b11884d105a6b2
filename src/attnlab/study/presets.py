"""Study presets: what to train, on what, for how long."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ..attention import list_attention
from ..cam import list_cams
from ..names import lookup, unknown_name_error
from ..train import TrainConfig
from ..train.config import NUMBER_RANGES

__all__ = ["StudyPreset", "PRESETS", "VANILLA_NAMES", "get_preset", "parse_variants"]

#: The names a study takes for the network without attention (its variant is named ``vanilla``).
VANILLA_NAMES = ("vanilla", "none")
#: The study's whole-number settings, each >= 1, with the ``attnlab study`` flag that sets it (None: none does).
_COUNTS = {"n_localisation": "--n-localisation", "n_grid": None, "throughput_batch": None, "train_batch": None,
           "repeats": None}


def parse_variants(names: Iterable[str]) -> tuple[str | None, ...]:
    """The study's model names as its variants: ``vanilla``/``none`` -> None, an attention name -> its registry
    name (stripped, lower case).

    Raises:
        ValueError: an unknown name (the message suggests the closest of vanilla and the attention names and
            lists them), a name given twice, or no name at all.
    """
    known = ["vanilla", *list_attention()]
    variants: list[str | None] = []
    for name in names:
        key = str(name).strip().lower()
        if key in VANILLA_NAMES:
            variants.append(None)
        elif key in list_attention():
            variants.append(key)
        else:
            raise unknown_name_error("study model", name, known, extra=VANILLA_NAMES[1:])
    _check_variants(tuple(variants))
    return tuple(variants)


def _check_variants(attentions: tuple[str | None, ...]) -> None:
    """At least one variant, each an attention registry name or None, none twice."""
    if not attentions:
        raise ValueError("a study needs at least one model (--models vanilla se ...)")
    for a in attentions:
        if a is not None and a not in list_attention():
            raise unknown_name_error("study model", a, ["vanilla", *list_attention()], extra=VANILLA_NAMES[1:])
    seen: set[str | None] = set()
    for a in attentions:
        if a in seen:
            raise ValueError(f"the study's models name {a or 'vanilla'!r} twice (--models, --non-local); give each "
                             "model once")
        seen.add(a)


def _study_training() -> TrainConfig:
    """The default training budget of a study (a preset usually states its own)."""
    return TrainConfig(dataset="cluttered-fashion-mnist", epochs=2, batch_size=64, lr=0.05, warmup_epochs=0.3,
                       channels_last=True)


@dataclass(frozen=True)
class StudyPreset:
    """One study's setup. Every model variant gets the same backbone, seeds, data order and budget.

    Attributes:
        name: the preset's name (``attnlab study --preset NAME``).
        description: what the preset is for, in a sentence.
        train: the training budget and data of every run (model, dataset, epochs, batch size, optimiser,
            limits, ...); each run replaces its ``attention``, ``seed`` and ``device``.
        attentions: the variants; None is the vanilla network.
        seeds: one training run per (variant, seed).
        n_localisation: test images on which maps are scored against the boxes and masks.
        n_grid: test images shown in the report's picture grid.
        cam_method: the CAM family member scored (see ``attnlab.cam.list_cams``).
        throughput_batch, train_batch, repeats: the cost measurements (paired rounds, median).
        original: the preset as defined, when this one is a copy changed by :meth:`with_overrides`.
    """

    name: str
    description: str
    train: TrainConfig = field(default_factory=_study_training)
    attentions: tuple[str | None, ...] = (None, "se", "cbam", "bam", "eca")
    seeds: tuple[int, ...] = (0,)
    n_localisation: int = 1000
    n_grid: int = 6
    cam_method: str = "gradcam"
    throughput_batch: int = 64
    train_batch: int = 32
    repeats: int = 5
    original: StudyPreset | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        """Refuse, before anything is trained, a study that cannot run to its end: an unknown or repeated
        model, no seed, a negative or repeated seed, a count below 1, an unknown CAM method, or a training
        config that one of the runs (each variant, each seed) would refuse."""
        _check_variants(tuple(self.attentions))
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"a study needs one or more distinct seeds (--seeds 0 1 2), got {list(self.seeds)}")
        seeds = NUMBER_RANGES["seed"]
        for seed in self.seeds:
            if isinstance(seed, bool) or not isinstance(seed, int) or not seeds.holds(seed):
                raise ValueError(f"--seeds: each seed must be a whole number {seeds.describe()}, got {seed!r}")
        for name, flag in _COUNTS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                shown = f"{flag} ({name})" if flag else name
                raise ValueError(f"{shown} must be a whole number >= 1, got {value!r}")
        lookup({m: m for m in list_cams()}, self.cam_method, "CAM method")
        for attention in self.attentions:  # each run's config, as run_study builds it: refused now, not mid-study
            for seed in self.seeds:
                replace(self.train, attention=attention, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the training config nested under ``train``), and ``overrides``: each field changed
        from the preset as defined, as {"preset": value, "run": value}."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("train", "original")}
        d["attentions"] = list(self.attentions)
        d["seeds"] = list(self.seeds)
        d["train"] = self.train.to_dict()
        d["overrides"] = {k: {"preset": a, "run": b} for k, (a, b) in self.overrides().items()}
        return d

    def with_overrides(self, **changes: Any) -> StudyPreset:
        """A copy with the given fields changed, study fields (``seeds``, ...) and training fields (``epochs``,
        ``limit_train``, ...) alike; None values are ignored.

        Raises:
            TypeError: a name that is neither a study nor a training field.
        """
        changes = {k: v for k, v in changes.items() if v is not None}
        train_names = {f.name for f in fields(TrainConfig)}
        own = {f.name for f in fields(self)} - {"train", "original"}
        unknown = sorted(set(changes) - train_names - own)
        if unknown:
            raise TypeError(f"unknown study preset field(s) {', '.join(unknown)}")
        train = replace(self.train, **{k: v for k, v in changes.items() if k in train_names})
        return replace(self, train=train, original=self.original or self,
                       **{k: v for k, v in changes.items() if k in own})

    def overrides(self) -> dict[str, tuple[Any, Any]]:
        """Field -> (value in the preset as defined, value here) for every field changed by
        :meth:`with_overrides` (training fields by their own names, e.g. ``epochs``)."""
        if self.original is None:
            return {}
        a, b = self.original, self
        changed = {f.name: (getattr(a.train, f.name), getattr(b.train, f.name)) for f in fields(TrainConfig)}
        changed.update({f.name: (getattr(a, f.name), getattr(b, f.name)) for f in fields(self)
                        if f.name not in ("train", "original")})
        return {k: v for k, v in changed.items() if v[0] != v[1]}


PRESETS: dict[str, StudyPreset] = {
    "quick": StudyPreset(
        name="quick",
        description="all five models end to end in minutes on a 2-core CPU: a short schedule on a subset of the "
                    "training canvases, one seed; enough to see accuracy well above chance and to exercise every "
                    "measurement, not enough to settle the claim",
        train=replace(_study_training(), epochs=2, batch_size=64, lr=0.08, warmup_epochs=0.2, limit_train=5000,
                      limit_test=1000),
        seeds=(0,), n_localisation=500, n_grid=6, repeats=3),
    "full": StudyPreset(
        name="full",
        description="a paper-like schedule on all 60,000 training canvases with three seeds, meant for a GPU",
        train=replace(_study_training(), epochs=30, batch_size=128, lr=0.1, warmup_epochs=1.0),
        seeds=(0, 1, 2), n_localisation=10000, n_grid=8, repeats=7),
}


def get_preset(name: str) -> StudyPreset:
    """The preset registered as ``name`` (``quick``, ``full``).

    Raises:
        ValueError: an unknown name (the message suggests the closest and lists them).
    """
    return lookup(PRESETS, name, "study preset")
