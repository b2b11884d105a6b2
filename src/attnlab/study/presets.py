"""Study presets: what to train, on what, for how long."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ..attention import list_attention
from ..cam import list_cams
from ..data import list_datasets
from ..names import lookup, unknown_name_error
from ..train import TrainConfig
from ..train.config import NUMBER_RANGES

__all__ = ["CLUTTER_LEVELLED", "OWN_OPTIONS", "STUDY_FLAGS", "ClutterParameter", "Condition", "StudyPreset", "PRESETS",
           "VANILLA_NAMES", "flag_of", "get_preset", "parse_clutter_levels", "parse_variants"]

#: The names a study takes for the network without attention (its variant is named ``vanilla``).
VANILLA_NAMES = ("vanilla", "none")
#: The study's whole-number settings, each >= 1, with the ``attnlab study`` flag that sets it (None: none does).
_COUNTS = {"n_localisation": "--n-localisation", "n_grid": None, "throughput_batch": None, "train_batch": None,
           "repeats": None}


#: The preset and training fields ``attnlab study`` has a flag for, with the flag.
STUDY_FLAGS = {"attentions": "--models", "seeds": "--seeds", "clutter_levels": "--clutter", "datasets": "--dataset",
               "epochs": "--epochs", "limit_train": "--limit-train", "limit_test": "--limit-test",
               "data_root": "--data-root", "n_localisation": "--n-localisation"}


def flag_of(field_name: str) -> str | None:
    """The ``attnlab study`` flag that sets a preset or training field (``clutter_levels`` -> ``--clutter``), or
    None when only the API sets it."""
    return STUDY_FLAGS.get(field_name)


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


@dataclass(frozen=True)
class ClutterParameter:
    """How a dataset sets its amount of clutter.

    Attributes:
        name: the dataset option a clutter level sets (``n_clutter``: fragments per canvas).
        own: the dataset options that belong to this kind of clutter alone: a study's ``dataset_kwargs`` give
            them to this dataset's conditions and to no other dataset's.
    """

    name: str
    own: tuple[str, ...]


#: Datasets whose clutter comes in levels, with the option that sets the level. A study runs each of these at
#: every one of its clutter levels; any other dataset is one condition of its own (e.g. the photographs).
CLUTTER_LEVELLED: dict[str, ClutterParameter] = {
    "cluttered-fashion-mnist": ClutterParameter("n_clutter", ("n_clutter", "fragment_size", "clutter_overlap")),
}
#: The dataset options that belong to one dataset of a study alone, by dataset (a study's ``dataset_kwargs`` give
#: them to that dataset's conditions and to no other's): the clutter-levelled datasets' own, and the photographs'.
OWN_OPTIONS: dict[str, tuple[str, ...]] = {
    **{name: p.own for name, p in CLUTTER_LEVELLED.items()},
    "photo-cluttered-fashion-mnist": ("contrast", "downscale"),
}
_OWNED = {option for options in OWN_OPTIONS.values() for option in options}


@dataclass(frozen=True)
class Condition:
    """One condition of a study: a dataset and, where its clutter comes in levels, the level.

    Attributes:
        dataset: the dataset's registry name.
        clutter: the clutter level (fragments per canvas, the dataset's ``n_clutter``), or None for a dataset whose
            clutter has no levels (``photo-cluttered-fashion-mnist``: real photographs behind every object).
    """

    dataset: str
    clutter: int | None = None

    @property
    def name(self) -> str:
        """How the report names it: ``cluttered-fashion-mnist, 8 fragments`` or the dataset's name."""
        if self.clutter is None:
            return self.dataset
        return f"{self.dataset}, {self.clutter} fragment{'' if self.clutter == 1 else 's'}"

    @property
    def key(self) -> str:
        """A folder and JSON key naming the condition and level: ``cluttered-fashion-mnist-clutter8``."""
        return self.dataset if self.clutter is None else f"{self.dataset}-clutter{self.clutter}"

    def config(self, base: TrainConfig) -> TrainConfig:
        """``base`` on this condition: its dataset, and the clutter level in the dataset's options (the options
        that belong to another dataset alone, :data:`OWN_OPTIONS`, left out)."""
        levelled = CLUTTER_LEVELLED.get(self.dataset)
        own = set(OWN_OPTIONS.get(self.dataset, ()))
        kwargs = {k: v for k, v in base.dataset_kwargs.items() if k not in _OWNED or k in own}
        if levelled is not None and self.clutter is not None:
            kwargs[levelled.name] = self.clutter
        return replace(base, dataset=self.dataset, dataset_kwargs=kwargs)


def parse_clutter_levels(values: Iterable[object]) -> tuple[int, ...]:
    """Clutter levels as a study takes them: whole numbers >= 0 (fragments per canvas), each once, at least one.

    Raises:
        ValueError: no level, a level that is not a whole number >= 0, or a level given twice (one line, naming
            ``--clutter``).
    """
    levels: list[int] = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | str) or not str(v).strip().lstrip("+").isdigit():
            raise ValueError(f"--clutter: each clutter level must be a whole number >= 0 (fragments per canvas), "
                             f"got {v!r}")
        level = int(v)
        if level in levels:
            raise ValueError(f"--clutter names the level {level} twice; give each clutter level once")
        levels.append(level)
    if not levels:
        raise ValueError("a study needs at least one clutter level (--clutter 0 4 8 16)")
    return tuple(levels)


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
            limits, ...); each run replaces its ``dataset`` (and clutter level), ``attention``, ``seed`` and
            ``device``.
        attentions: the variants; None is the vanilla network.
        seeds: one training run per (condition, variant, seed).
        datasets: the conditions' datasets (each needs object boxes and masks); None: ``train.dataset`` alone.
        clutter_levels: fragments per canvas (``n_clutter``) at which each clutter-levelled dataset
            (:data:`CLUTTER_LEVELLED`) is run, one condition per level; a dataset without levels is one
            condition. None: the level ``train.dataset_kwargs`` sets, if any.
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
    datasets: tuple[str, ...] | None = None
    clutter_levels: tuple[int, ...] | None = None
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
        self._check_conditions()
        for condition in self.conditions():  # each run's config, as run_study builds it: refused now, not mid-study
            for attention in self.attentions:
                for seed in self.seeds:
                    replace(condition.config(self.train), attention=attention, seed=seed)

    def _check_conditions(self) -> None:
        """Datasets with boxes, each once; clutter levels whole numbers >= 0, each once, and a dataset they apply
        to when the command set them."""
        if self.datasets is not None and (not self.datasets or len(set(self.datasets)) != len(self.datasets)):
            raise ValueError(f"a study needs one or more distinct datasets (--dataset NAME), got {list(self.datasets)}")
        boxed = list_datasets(with_boxes=True)
        for name in self.dataset_names:
            if name not in boxed:
                raise ValueError(f"dataset {name!r} has no object boxes: the study's localisation needs boxes (and "
                                 f"masks) on the test split; datasets with them: {', '.join(boxed)}")
        if self.clutter_levels is not None:
            parse_clutter_levels(self.clutter_levels)
            if "clutter_levels" in self.overrides() and not any(d in CLUTTER_LEVELLED for d in self.dataset_names):
                raise ValueError(f"--clutter sets the fragments per canvas of {', '.join(CLUTTER_LEVELLED)}, which "
                                 f"this study does not run (its datasets: {', '.join(self.dataset_names)}); leave "
                                 "out --clutter or add --dataset cluttered-fashion-mnist")

    @property
    def dataset_names(self) -> tuple[str, ...]:
        """The datasets the study runs on, in order."""
        return tuple(self.datasets) if self.datasets is not None else (self.train.dataset,)

    def conditions(self) -> tuple[Condition, ...]:
        """Every condition, in order: each dataset, at each clutter level where its clutter has levels."""
        out: list[Condition] = []
        for name in self.dataset_names:
            levelled = CLUTTER_LEVELLED.get(name)
            if levelled is None:
                out.append(Condition(name))
            elif self.clutter_levels is not None:
                out.extend(Condition(name, level) for level in self.clutter_levels)
            else:
                out.append(Condition(name, self.train.dataset_kwargs.get(levelled.name)))
        return tuple(out)

    def decisive(self) -> dict[str, Condition]:
        """Dataset -> the condition its verdict is decided at: the highest clutter level studied (where an effect
        of attention on clutter should be largest), or the dataset's one condition."""
        out: dict[str, Condition] = {}
        for c in self.conditions():
            best = out.get(c.dataset)
            if best is None or (c.clutter or 0) > (best.clutter or 0):
                out[c.dataset] = c
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the training config nested under ``train``), and ``overrides``: each field changed
        from the preset as defined, as {"preset": value, "run": value}."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("train", "original")}
        d["attentions"] = list(self.attentions)
        d["seeds"] = list(self.seeds)
        d["datasets"] = list(self.dataset_names)
        d["clutter_levels"] = None if self.clutter_levels is None else list(self.clutter_levels)
        d["conditions"] = [c.key for c in self.conditions()]
        d["train"] = self.train.to_dict()
        d["overrides"] = {k: {"preset": a, "run": b} for k, (a, b) in self.overrides().items()}
        return d

    def with_overrides(self, **changes: Any) -> StudyPreset:
        """A copy with the given fields changed, study fields (``seeds``, ``clutter_levels``, ...) and training
        fields (``epochs``, ``limit_train``, ...) alike; None values are ignored. ``dataset=NAME`` runs the study
        on that dataset alone (it sets ``datasets``).

        Raises:
            TypeError: a name that is neither a study nor a training field.
        """
        changes = {k: v for k, v in changes.items() if v is not None}
        if "dataset" in changes:  # one dataset for the whole study: the conditions' datasets, not a training field
            changes["datasets"] = (changes.pop("dataset"),)
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
                    "training canvases at two clutter levels (none and 8 fragments), one seed; enough to see "
                    "accuracy well above chance and to exercise every measurement, not enough to settle the claim",
        train=replace(_study_training(), epochs=2, batch_size=64, lr=0.08, warmup_epochs=0.2, limit_train=2500,
                      limit_test=1000),
        datasets=("cluttered-fashion-mnist",), clutter_levels=(0, 8),
        seeds=(0,), n_localisation=500, n_grid=6, repeats=3),
    "full": StudyPreset(
        name="full",
        description="a paper-like schedule on all 60,000 training canvases with three seeds, at every clutter level "
                    "(0, 4, 8 and 16 fragments) and on photographic clutter, meant for a GPU",
        train=replace(_study_training(), epochs=30, batch_size=128, lr=0.1, warmup_epochs=1.0),
        datasets=("cluttered-fashion-mnist", "photo-cluttered-fashion-mnist"), clutter_levels=(0, 4, 8, 16),
        seeds=(0, 1, 2), n_localisation=10000, n_grid=8, repeats=7),
}


def get_preset(name: str) -> StudyPreset:
    """The preset registered as ``name`` (``quick``, ``full``).

    Raises:
        ValueError: an unknown name (the message suggests the closest and lists them).
    """
    return lookup(PRESETS, name, "study preset")
