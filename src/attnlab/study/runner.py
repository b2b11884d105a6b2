"""Run the study: train every variant, measure accuracy, cost and localisation, decide, write the report."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..data import list_datasets
from ..fileio import atomic_write_json, check_directory
from ..train import (
    DataBundle,
    TensorSet,
    TrainConfig,
    build_data,
    load_model,
)
from ..train.batches import to_float
from ..train.distributed import pick_device
from .executor import RunJob, check_executor, train_runs
from .measure import (
    PER_IMAGE,
    Cost,
    LocalisationScores,
    attention_maps,
    cam_maps,
    cam_title,
    measure_cost,
    score_maps,
)
from .presets import StudyPreset
from .results import Environment, GridPictures, ModelRow, RunRecord, StudyResults, variant_name
from .stats import OVER_IMAGES, WILSON, Interval, bootstrap_mean_ci, paired_bootstrap_ci, wilson_interval
from .verdict import decide

__all__ = ["StudyResult", "run_study", "variant_name"]

PRIMARY = "energy_pointing_game"

Log = Callable[[str], Any]


@dataclass
class StudyResult:
    """What :func:`run_study` returns: where it wrote, and every figure."""

    out: Path
    report: Path
    results: StudyResults


@dataclass
class _ScoredSet:
    """The test images the maps are scored on: images (N, C, H, W) transformed, on the device; labels (N,);
    boxes (N, 4); masks (N, H, W), or None for data without masks (no PxAP then)."""

    images: Tensor
    labels: Tensor
    boxes: Tensor
    masks: Tensor | None


def _environment(device: torch.device) -> Environment:
    from .. import __version__

    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or "cpu")
    return Environment(attnlab=__version__, torch=torch.__version__, python=platform.python_version(),
                       device=str(device), platform=platform.platform(),
                       machine=f"{platform.machine()} {dev}, {os.cpu_count()} CPUs, {torch.get_num_threads()} threads")


def run_study(preset: StudyPreset, out: str | os.PathLike = "report", *, runs_dir: str | os.PathLike | None = None,
              device: str | None = None, progress: bool = True, command: str | None = None,
              log: Log = print, jobs: int | None = None, executor: str = "local",
              address: str | None = None) -> StudyResult:
    """Train and measure every variant of ``preset``, decide on the claim, and write the report.

    Finished runs (a run directory with its summary and the same training config) are reused, so an
    interrupted study picks up where it stopped; an unfinished run resumes from its last checkpoint. ``jobs``,
    ``executor`` and ``address`` say how the runs train (see :func:`attnlab.study.executor.train_runs`).

    Returns:
        The output directory, the report's path and every figure (also in ``OUT/results.json``).
    """
    from .report import write_report

    t0 = time.perf_counter()
    out = Path(out)
    runs = Path(runs_dir) if runs_dir else out / "runs"
    _check_folders(preset, out, runs)
    check_executor(executor, address, jobs)
    dev = pick_device(device)
    base = replace(preset.train, device=str(dev))
    log(f"study '{preset.name}': {len(preset.attentions)} variants x {len(preset.seeds)} seed(s) of {base.model} on "
        f"{base.dataset}, {base.epochs} epochs, device {dev}")
    data, test = _load_data(base)
    scored, grid = _test_sets(test, data, preset, dev)
    summaries = train_runs([RunJob(replace(base, attention=a, seed=seed), _run_dir(runs, a, seed),
                                   f"[{variant_name(a)} seed {seed}]")
                            for a in preset.attentions for seed in preset.seeds],
                           jobs_at_once=jobs, executor=executor, address=address, progress=progress, log=log)
    records, models = _train_and_score(preset, summaries, scored, grid, runs, log)
    log("measuring cost (parameters, FLOPs, throughput) side by side")
    cost = measure_cost(models, tuple(scored.images.shape[1:]), data.num_classes, dev, batch=preset.throughput_batch,
                        train_batch=preset.train_batch, repeats=preset.repeats)
    results = _collect(preset, base, data, len(scored.labels), records, cost, _environment(dev),
                       command or "attnlab study --preset " + preset.name)
    results.wall_seconds = time.perf_counter() - t0
    report = write_report(out, results, grid)
    results.wall_seconds = time.perf_counter() - t0
    _write_json(out / "results.json", results.to_dict())
    log(f"study done in {results.wall_seconds:.0f}s: {results.verdict.label}. Report: {report.resolve()}")
    return StudyResult(out, report, results)


def _run_dir(runs: Path, attention: str | None, seed: int) -> Path:
    """The folder of one (variant, seed) training run."""
    return runs / f"{variant_name(attention)}-seed{seed}"


def _check_folders(preset: StudyPreset, out: Path, runs: Path) -> None:
    """Every folder the study writes is a folder or can be made one, checked before anything is printed or
    trained (see :func:`attnlab.fileio.check_directory`).

    Raises:
        ValueError: naming the path that is a file (or cannot be written) and the flag that set it.
    """
    check_directory(out, "the study's output folder (--out)")
    check_directory(runs, "the study's runs folder (--runs)")
    for attention in preset.attentions:
        for seed in preset.seeds:
            check_directory(_run_dir(runs, attention, seed), "the run folder")


def _load_data(base: TrainConfig) -> tuple[DataBundle, TensorSet]:
    """The runs' data (``base``'s limits applied) and the whole test split, which carries the boxes and masks
    the maps are scored against (localisation is not limited by ``limit_test``, which is for accuracy).

    Raises:
        ValueError: the dataset's test split has no object boxes.
    """
    full = build_data(replace(base, limit_test=None))
    if full.test.boxes is None:
        raise ValueError(f"dataset {base.dataset!r} has no object boxes: the study's localisation needs boxes (and "
                         f"masks) on the test split; datasets with them: {', '.join(list_datasets(with_boxes=True))}")
    return replace(full, test=full.test.head(base.limit_test)), full.test


def _test_sets(test: TensorSet, data: DataBundle, preset: StudyPreset,
               dev: torch.device) -> tuple[_ScoredSet, GridPictures]:
    """The first test images, scored for localisation, and the report's picture grid (the first of those)."""
    n_loc = min(preset.n_localisation, len(test))
    scored = _ScoredSet(data.eval_transform(to_float(test.images[:n_loc])).to(dev), test.labels[:n_loc].to(dev),
                        test.boxes[:n_loc], None if test.masks is None else test.masks[:n_loc])
    grid = GridPictures(images=to_float(test.images[: preset.n_grid]),
                        titles=[data.classes[int(y)] for y in test.labels[: preset.n_grid]])
    return scored, grid


def _train_and_score(preset: StudyPreset, summaries: dict[Path, dict], scored: _ScoredSet, grid: GridPictures,
                     runs: Path, log: Log) -> tuple[dict[str, list[RunRecord]], dict[str, nn.Module]]:
    """Every (variant, seed) run, trained (``summaries``: run folder -> summary), with its maps scored; the grid's
    maps are added to ``grid``.

    Returns:
        variant -> its runs, and variant -> its first seed's model (for the cost measurements).
    """
    records: dict[str, list[RunRecord]] = {}
    models: dict[str, nn.Module] = {}
    for attention in preset.attentions:
        name = variant_name(attention)
        for seed in preset.seeds:
            run = _run_dir(runs, attention, seed)
            model, summary = load_model(run).to(scored.images.device).eval(), summaries[run]
            cam = cam_maps(model, scored.images, scored.labels, preset.cam_method)
            att = attention_maps(model, scored.images)
            record = RunRecord(seed=seed, run=str(run), test_acc=summary["test_acc"],
                               test_count=int(sum(sum(r) for r in summary["confusion"])),
                               train_seconds=summary["train_seconds"], seconds_per_epoch=summary["seconds_per_epoch"],
                               cam=score_maps(cam.cpu(), scored.boxes, scored.masks),
                               attention=None if att is None else score_maps(att.cpu(), scored.boxes, scored.masks))
            records.setdefault(name, []).append(record)
            if name not in models:
                models[name] = model
                grid.maps[f"{name} {cam_title(preset.cam_method)}"] = cam[: preset.n_grid].cpu()
                if att is not None:
                    grid.maps[f"{name} attention"] = att[: preset.n_grid].cpu()
            log(f"[{name} seed {seed}] test accuracy {record.test_acc:.4f}, {cam_title(preset.cam_method)} energy "
                f"pointing game {record.cam.summary()[PRIMARY]:.3f}")
    return records, models


def _write_json(path: Path, obj: Any) -> None:
    atomic_write_json(path, obj, indent=1, default=float)


def _collect(preset: StudyPreset, base: TrainConfig, data: DataBundle, n_loc: int,
             records: dict[str, list[RunRecord]], cost: dict[str, Cost], environment: Environment,
             command: str) -> StudyResults:
    """The study's figures from its runs: a row per variant, the gains over vanilla, the verdict."""
    seeds = len(preset.seeds)
    models = {name: _model_row(runs, cost.get(name), seeds) for name, runs in records.items()}
    gains = _gains(records, seeds)
    return StudyResults(preset=preset, train=base, n_train=len(data.train), n_test=len(data.test), n_localisation=n_loc,
                        classes=list(data.classes), models=models, gains=gains, primary_metric=PRIMARY,
                        verdict=decide(gains, seeds, cam=cam_title(preset.cam_method)), environment=environment,
                        command=command)


def _model_row(runs: list[RunRecord], cost: Cost | None, seeds: int) -> ModelRow:
    """One variant's row: accuracy and localisation with intervals, cost, time."""
    acc = [r.test_acc for r in runs]
    if seeds == 1:
        accuracy = Interval(acc[0], *wilson_interval(acc[0], runs[0].test_count), n=1, method=WILSON)
    else:
        accuracy = Interval.over_seeds(acc)
    attention = [r.attention for r in runs if r.attention is not None]
    return ModelRow(accuracy=accuracy, cost=cost, runs=list(runs),
                    train_seconds=sum(r.train_seconds for r in runs) / len(runs),
                    seconds_per_epoch=sum(r.seconds_per_epoch for r in runs) / len(runs),
                    cam=_score_intervals([r.cam for r in runs], seeds),
                    attention=_score_intervals(attention, seeds) if attention else None)


def _score_intervals(scores: list[LocalisationScores], seeds: int) -> dict[str, Interval]:
    """Each localisation figure with its interval: over seeds, else (one seed) over images where per image."""
    out = {}
    for metric in scores[0].summary():
        values = [s.summary()[metric] for s in scores]
        if seeds >= 2:
            out[metric] = Interval.over_seeds(values)
        elif metric in PER_IMAGE:
            out[metric] = Interval(*bootstrap_mean_ci(scores[0].per_image[metric]), n=1, method=OVER_IMAGES)
        else:
            out[metric] = Interval(values[0], float("nan"), float("nan"), n=1,
                                   method="dataset-level figure, one seed")
    return out


def _gains(records: dict[str, list[RunRecord]], seeds: int) -> dict[str, Interval]:
    """Each attention model's gain in the primary metric over vanilla, with its interval."""
    if "vanilla" not in records:
        return {}
    base = {r.seed: r.cam for r in records["vanilla"]}
    gains = {}
    for name, runs in records.items():
        if name == "vanilla":
            continue
        if seeds >= 2:
            gains[name] = Interval.over_seeds([r.cam.summary()[PRIMARY] - base[r.seed].summary()[PRIMARY]
                                               for r in runs if r.seed in base])
        else:
            r = runs[0]
            gains[name] = Interval(*paired_bootstrap_ci(r.cam.per_image[PRIMARY], base[r.seed].per_image[PRIMARY]),
                                   n=1, method="paired bootstrap 95% over images, one seed")
    return gains
