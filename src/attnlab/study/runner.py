"""Run the study: train every (condition, variant, seed) run, score each run's maps on its condition's test
canvases, measure cost, decide on both halves of the claim, write the report."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..data import create_dataset, default_transforms
from ..fileio import atomic_write_json, check_directory
from ..train import TensorSet, TrainConfig, as_tensor_set, load_model
from ..train.batches import to_float
from ..train.distributed import pick_device
from .environment import environment
from .evidence import (
    BASELINES,
    claim_halves,
    condition_gains,
    decide_conditions,
    score_intervals,
)
from .executor import RunJob, check_executor, train_runs
from .measure import attention_maps, cam_maps, cam_title, measure_cost, score_maps
from .presets import Condition, StudyPreset
from .results import ConditionResults, ModelRow, RunRecord, StudyResults, variant_name
from .stats import WILSON, Interval, wilson_interval

__all__ = ["ScoredSet", "StudyResult", "run_study", "scored_set", "study_jobs", "variant_name"]

Log = Callable[[str], Any]


@dataclass
class StudyResult:
    """What :func:`run_study` returns: where it wrote, and every figure."""

    out: Path
    report: Path
    results: StudyResults


@dataclass
class ScoredSet:
    """One condition's test canvases the maps are scored on.

    Attributes:
        images: (N, C, H, W) transformed, on the scoring device.
        raw: (N, C, H, W) in [0, 1], as a person sees them (the report's pictures).
        labels: (N,) int64.
        boxes: (N, 4) the objects' boxes.
        masks: (N, H, W) bool, the objects' pixels, or None for data without masks.
        clutter: (N, H, W) bool, the clutter's pixels, or None for data without clutter masks.
        classes: the class names.
        n_train: the training canvases of this condition the runs trained on.
    """

    images: Tensor
    raw: Tensor
    labels: Tensor
    boxes: Tensor
    masks: Tensor | None
    clutter: Tensor | None
    classes: list[str]
    n_train: int


def run_dir(runs: Path, condition: Condition, attention: str | None, seed: int) -> Path:
    """The folder of one (condition, variant, seed) run: ``RUNS/<dataset>-clutter<level>/<variant>-seed<seed>``."""
    return runs / condition.key / f"{variant_name(attention)}-seed{seed}"


def study_jobs(preset: StudyPreset, base: TrainConfig, runs: Path) -> dict[tuple[str, str, int], RunJob]:
    """Every run of the study, by (condition key, variant name, seed), conditions first, then variants, then
    seeds (the order they are trained in)."""
    jobs = {}
    for condition in preset.conditions():
        cfg = condition.config(base)
        for attention in preset.attentions:
            name = variant_name(attention)
            for seed in preset.seeds:
                jobs[condition.key, name, seed] = RunJob(replace(cfg, attention=attention, seed=seed),
                                                         run_dir(runs, condition, attention, seed),
                                                         f"[{condition.key} {name} seed {seed}]")
    return jobs


def run_study(preset: StudyPreset, out: str | os.PathLike = "report", *, runs_dir: str | os.PathLike | None = None,
              device: str | None = None, progress: bool = True, command: str | None = None,
              log: Log = print, jobs: int | None = None, executor: str = "local",
              address: str | None = None) -> StudyResult:
    """Train and measure every (condition, variant, seed) run of ``preset``, decide on the claim, write the report.

    Every run is handed to :func:`attnlab.study.executor.train_runs` at once (finished runs are reused, so an
    interrupted study picks up where it stopped; an unfinished run resumes); then each run is loaded from its
    folder and scored on its condition's test canvases. ``jobs`` (runs trained at once; None: what the machine
    affords), ``executor`` (``local`` or ``ray``) and ``address`` (a Ray cluster) say how the runs train.

    Returns:
        The output directory, the report's path and every figure (also in ``OUT/results.json``).
    """
    from .pictures import study_grids
    from .report import write_report

    t0 = time.perf_counter()
    out = Path(out)
    runs = Path(runs_dir) if runs_dir else out / "runs"
    planned = study_jobs(preset, replace(preset.train, device="cpu"), runs)
    _check_folders(out, runs, planned.values())
    executor = check_executor(executor, address, jobs)
    dev = pick_device(device)
    base = replace(preset.train, device=str(dev))
    # Ray places each run on a worker, which may have GPUs this machine lacks: without --device, "auto" is left to
    # the executor (a GPU where the cluster has them); every other executor trains on this machine's device.
    planned = study_jobs(preset, replace(base, device="auto") if executor == "ray" and device is None else base, runs)
    conditions = preset.conditions()
    log(f"study '{preset.name}': {len(preset.attentions)} variants x {len(preset.seeds)} seed(s) x "
        f"{len(conditions)} condition(s) ({', '.join(c.name for c in conditions)}) of {base.model}, "
        f"{base.epochs} epochs, device {dev}")
    summaries = train_runs(list(planned.values()), jobs_at_once=jobs, executor=executor, address=address,
                           progress=progress, log=log)
    scored: dict[str, ConditionResults] = {}
    sets: dict[str, ScoredSet] = {}
    for condition in conditions:
        sets[condition.key] = scored_set(condition.config(base), preset.n_localisation, dev)
        scored[condition.key] = _score_condition(preset, condition, sets[condition.key], planned, summaries, log)
    results = _collect(preset, base, scored, sets, planned, dev, command)
    grids = study_grids(results, sets, {k: j.run_dir for k, j in planned.items()})
    results.wall_seconds = time.perf_counter() - t0
    report = write_report(out, results, grids)
    results.wall_seconds = time.perf_counter() - t0
    atomic_write_json(out / "results.json", results.to_dict(), indent=1, default=float)
    log(f"study done in {results.wall_seconds:.0f}s: {results.verdict.label}. Report: {report.resolve()}")
    return StudyResult(out, report, results)


def _check_folders(out: Path, runs: Path, jobs: Any) -> None:
    """Every folder the study writes is a folder or can be made one, checked before anything is printed or
    trained (see :func:`attnlab.fileio.check_directory`).

    Raises:
        ValueError: naming the path that is a file (or cannot be written) and the flag that set it.
    """
    check_directory(out, "the study's output folder (--out)")
    check_directory(runs, "the study's runs folder (--runs)")
    for job in jobs:
        check_directory(job.run_dir, "the run folder")


def scored_set(cfg: TrainConfig, n: int, dev: torch.device) -> ScoredSet:
    """The first ``n`` test canvases of ``cfg``'s dataset (the whole test split at most: localisation is not
    limited by ``limit_test``, which is for accuracy), with their boxes, masks and clutter masks.

    Raises:
        ValueError: the dataset's test split has no object boxes.
    """
    options = dict(cfg.dataset_kwargs)
    test = as_tensor_set(create_dataset(cfg.dataset, "test", root=cfg.data_root, **options), localisation=True)
    if test.boxes is None:
        raise ValueError(f"dataset {cfg.dataset!r} has no object boxes on its test split: the study's localisation "
                         "needs boxes and masks")
    train = create_dataset(cfg.dataset, "train", root=cfg.data_root, **options)
    test = test.head(n)
    raw = to_float(test.images)
    classes = list(getattr(train, "classes", [])) or [str(i) for i in range(int(train.num_classes))]
    n_train = len(train) if cfg.limit_train is None else min(cfg.limit_train, len(train))
    return ScoredSet(default_transforms(cfg.dataset, train=False)(raw).to(dev), raw, test.labels.to(dev),
                     test.boxes, test.masks, clutter_masks(test), classes, n_train)


def clutter_masks(test: TensorSet) -> Tensor | None:
    """The test canvases' clutter masks (N, H, W) bool, or None where the data has none."""
    return getattr(test, "clutter_masks", None)


def _score_run(model: nn.Module, s: ScoredSet, cam_method: str) -> tuple[Any, Any]:
    """A trained model's CAM maps and its attention modules' own maps, scored (None: no spatial attention)."""
    cam = cam_maps(model, s.images, s.labels, cam_method)
    att = attention_maps(model, s.images)
    cam_scores = score_maps(cam, s.boxes, s.masks, s.clutter)  # on the maps' device; the figures come back on the CPU
    return cam_scores, None if att is None else score_maps(att, s.boxes, s.masks, s.clutter)


def _score_condition(preset: StudyPreset, condition: Condition, s: ScoredSet, jobs: dict[tuple[str, str, int], RunJob],
                     summaries: dict[Path, dict], log: Log) -> ConditionResults:
    """Every run of ``condition`` loaded from its folder and scored on ``s``; the baselines on the same canvases;
    each attention model's gains in both halves' primary metrics."""
    records: dict[str, list[RunRecord]] = {}
    dev = s.images.device
    for (key, name, seed), job in jobs.items():
        if key != condition.key:
            continue
        summary = summaries[job.run_dir]
        cam, att = _score_run(load_model(job.run_dir).to(dev).eval(), s, preset.cam_method)
        records.setdefault(name, []).append(RunRecord(
            seed=seed, run=str(job.run_dir), test_acc=summary["test_acc"],
            test_count=int(sum(sum(r) for r in summary["confusion"])), train_seconds=summary["train_seconds"],
            seconds_per_epoch=summary["seconds_per_epoch"], cam=cam, attention=att))
        log(f"{job.tag} test accuracy {summary['test_acc']:.4f}; {cam_title(preset.cam_method)} "
            + ", ".join(f"{half} {metric} {cam.summary()[metric]:.3f}" for half, metric, _ in claim_halves()
                        if metric in cam.per_image))
    seeds = len(preset.seeds)
    n = len(s.labels)
    return ConditionResults(
        condition=condition, n_train=s.n_train, n_test=records[next(iter(records))][0].test_count,
        n_localisation=n, models={name: _model_row(runs, seeds) for name, runs in records.items()},
        baselines={name: score_intervals([score_maps(make(n, *_hw(s)), s.boxes, s.masks, s.clutter)], 1)
                   for name, make in BASELINES.items()},
        gains=condition_gains(records, seeds))


def _hw(s: ScoredSet) -> tuple[int, int]:
    """The canvases' (H, W)."""
    return int(s.raw.shape[-2]), int(s.raw.shape[-1])


def _model_row(runs: list[RunRecord], seeds: int) -> ModelRow:
    """One variant's row at one condition: accuracy and localisation with intervals, time (cost added later)."""
    acc = [r.test_acc for r in runs]
    if seeds == 1:
        accuracy = Interval(acc[0], *wilson_interval(acc[0], runs[0].test_count), n=1, method=WILSON)
    else:
        accuracy = Interval.over_seeds(acc)
    attention = [r.attention for r in runs if r.attention is not None]
    return ModelRow(accuracy=accuracy, cost=None, runs=list(runs),
                    train_seconds=sum(r.train_seconds for r in runs) / len(runs),
                    seconds_per_epoch=sum(r.seconds_per_epoch for r in runs) / len(runs),
                    cam=score_intervals([r.cam for r in runs], seeds),
                    attention=score_intervals(attention, seeds) if attention else None)


def _collect(preset: StudyPreset, base: TrainConfig, scored: dict[str, ConditionResults], sets: dict[str, ScoredSet],
             jobs: dict[tuple[str, str, int], RunJob], dev: torch.device, command: str | None) -> StudyResults:
    """Cost (measured once, side by side, on the first condition's first-seed models), the verdicts."""
    first = next(iter(scored))
    seed = preset.seeds[0]
    models = {name: load_model(jobs[first, name, seed].run_dir).to(dev).eval()
              for name in (variant_name(a) for a in preset.attentions)}
    s = sets[first]
    cost = measure_cost(models, tuple(s.images.shape[1:]), len(s.classes), dev, batch=preset.throughput_batch,
                        train_batch=preset.train_batch, repeats=preset.repeats)
    for cond in scored.values():
        for name, row in cond.models.items():
            row.cost = cost.get(name)
    overall = decide_conditions(preset, scored)
    return StudyResults(preset=preset, train=base, conditions=scored, classes=s.classes, cost=cost,
                        halves={half: metric for half, metric, _ in claim_halves()}, verdict=overall,
                        environment=environment(dev), command=command or "attnlab study --preset " + preset.name)
