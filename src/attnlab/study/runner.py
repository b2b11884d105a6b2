"""Run the study: train every variant, measure accuracy, cost and localisation, decide, write the report."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import create_dataset
from ..train import TrainConfig, build_data, latest_checkpoint, load_model, train
from ..train.distributed import pick_device
from .measure import PER_IMAGE, attention_maps, cam_maps, measure_cost, score_maps
from .presets import StudyPreset
from .stats import bootstrap_mean_ci, paired_bootstrap_ci, t_interval
from .verdict import decide

__all__ = ["StudyResult", "run_study", "variant_name"]

PRIMARY = "energy_pointing_game"
# The config fields that must match for a finished run to be reused (device and threads may differ).
_IGNORED_FOR_REUSE = {"device", "num_threads"}


@dataclass
class StudyResult:
    out: Path
    report: Path
    results: dict[str, Any] = field(default_factory=dict)


def variant_name(attention: str | None) -> str:
    return "vanilla" if attention is None else attention


def _reusable(run: Path, cfg: TrainConfig) -> bool:
    summary, config = run / "summary.json", run / "config.json"
    if not (summary.is_file() and config.is_file()):
        return False
    try:
        stored = json.loads(config.read_text())["train"]
    except (json.JSONDecodeError, KeyError):
        return False
    want = {k: v for k, v in cfg.to_dict().items() if k not in _IGNORED_FOR_REUSE}
    have = {k: v for k, v in stored.items() if k not in _IGNORED_FOR_REUSE}
    return want == have and latest_checkpoint(run) is not None


def _wilson(acc: float, n: int) -> tuple[float, float]:
    """95% Wilson interval of an accuracy over n test images."""
    if n == 0:
        return float("nan"), float("nan")
    z = 1.96
    d = 1 + z * z / n
    c = (acc + z * z / (2 * n)) / d
    h = z * ((acc * (1 - acc) / n + z * z / (4 * n * n)) ** 0.5) / d
    return c - h, c + h


def _environment(device: torch.device) -> dict[str, str]:
    from .. import __version__

    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or "cpu")
    return {"attnlab": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "machine": f"{platform.machine()} {dev}, {os.cpu_count()} CPUs, {torch.get_num_threads()} threads",
            "device": str(device), "platform": platform.platform()}


def run_study(preset: StudyPreset, out: str | os.PathLike = "report", *, runs_dir: str | os.PathLike | None = None,
              device: str | None = None, progress: bool = True, command: str | None = None,
              log=print) -> StudyResult:
    """Train and measure every variant of ``preset``, decide on the claim, and write the report.

    Finished runs (a run directory with its summary and the same training config) are reused, so an
    interrupted study picks up where it stopped; an unfinished run resumes from its last checkpoint.

    Returns:
        The output directory, the report's path and every figure (also in ``OUT/results.json``).
    """
    from .report import write_report

    t0 = time.perf_counter()
    out = Path(out)
    runs = Path(runs_dir) if runs_dir else out / "runs"
    dev = pick_device(device)
    base = replace(preset.train, device=str(dev))
    log(f"study '{preset.name}': {len(preset.attentions)} variants x {len(preset.seeds)} seed(s) of {base.model} on "
        f"{base.dataset}, {base.epochs} epochs, device {dev}")
    data = build_data(base)
    test_ds = create_dataset(base.dataset, "test", **base.dataset_kwargs)
    n_loc = min(preset.n_localisation, len(test_ds))
    loc_images = data.eval_transform(test_ds.images[:n_loc].float().div(255)).to(dev)
    loc_labels = test_ds.labels[:n_loc].to(dev)
    loc_boxes = test_ds.boxes[:n_loc]
    loc_masks = test_ds.get_masks(slice(0, n_loc))

    per_run: dict[str, list[dict[str, Any]]] = {}
    first_models: dict[str, nn.Module] = {}
    grid_maps: dict[str, torch.Tensor] = {}
    for attention in preset.attentions:
        name = variant_name(attention)
        for seed in preset.seeds:
            cfg = replace(base, attention=attention, seed=seed)
            run = runs / f"{name}-seed{seed}"
            if _reusable(run, cfg):
                log(f"[{name} seed {seed}] reusing the finished run in {run}")
                model = load_model(run)
                summary = json.loads((run / "summary.json").read_text())
            else:
                resume = run.exists() and latest_checkpoint(run) is not None
                log(f"[{name} seed {seed}] {'resuming' if resume else 'training'} in {run}")
                res = train(cfg, run, resume=resume, progress=progress, data=data)
                model, summary = res.model, res.final
            model = model.to(dev).eval()
            gc = cam_maps(model, loc_images, loc_labels, preset.cam_method)
            am = attention_maps(model, loc_images)
            entry = {"seed": seed, "run": str(run), "test_acc": summary["test_acc"], "test_count": int(
                sum(sum(r) for r in summary["confusion"])), "train_seconds": summary["train_seconds"],
                "seconds_per_epoch": summary["seconds_per_epoch"],
                "gradcam": score_maps(gc.cpu(), loc_boxes, loc_masks), "attention": None}
            if am is not None:
                entry["attention"] = score_maps(am.cpu(), loc_boxes, loc_masks)
            per_run.setdefault(name, []).append(entry)
            if name not in first_models:
                first_models[name] = model
                grid_maps[f"{name} Grad-CAM"] = gc[: preset.n_grid].cpu()
                if am is not None:
                    grid_maps[f"{name} attention"] = am[: preset.n_grid].cpu()
            log(f"[{name} seed {seed}] test accuracy {entry['test_acc']:.4f}, Grad-CAM energy pointing game "
                f"{entry['gradcam'].summary()[PRIMARY]:.3f}")

    log("measuring cost (parameters, FLOPs, throughput) side by side")
    in_shape = tuple(loc_images.shape[1:])
    cost = measure_cost(first_models, in_shape, data.num_classes, dev, batch=preset.throughput_batch,
                        train_batch=preset.train_batch, repeats=preset.repeats)
    results = _aggregate(preset, per_run, cost, n_loc)
    results["environment"] = _environment(dev)
    results["command"] = command or "attnlab study --preset " + preset.name
    results["preset"] = preset.to_dict()
    results["classes"] = data.classes
    results["wall_seconds"] = time.perf_counter() - t0
    grid = {"images": test_ds.images[: preset.n_grid].float().div(255),
            "titles": [f"{data.classes[int(y)]}" for y in test_ds.labels[: preset.n_grid]],
            "boxes": test_ds.boxes[: preset.n_grid], "maps": grid_maps}
    report = write_report(out, results, grid)
    results["wall_seconds"] = time.perf_counter() - t0
    _write_json(out / "results.json", results)
    log(f"study done in {results['wall_seconds']:.0f}s: {results['verdict']['label']}. Report: {report.resolve()}")
    return StudyResult(out, report, results)


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=float))
    os.replace(tmp, path)


def _interval(values: list[float]) -> dict[str, float]:
    m, lo, hi = t_interval(values)
    return {"mean": m, "low": lo, "high": hi, "n": len(values)}


def _aggregate(preset: StudyPreset, per_run: dict[str, list[dict]], cost: dict, n_loc: int) -> dict[str, Any]:
    seeds = len(preset.seeds)
    models: dict[str, Any] = {}
    for name, entries in per_run.items():
        acc = [e["test_acc"] for e in entries]
        row: dict[str, Any] = {"accuracy": _interval(acc), "cost": cost.get(name, {}),
                               "train_seconds": sum(e["train_seconds"] for e in entries) / len(entries),
                               "seconds_per_epoch": sum(e["seconds_per_epoch"] for e in entries) / len(entries),
                               "runs": [{"seed": e["seed"], "run": e["run"], "test_acc": e["test_acc"]}
                                        for e in entries]}
        if seeds == 1:
            lo, hi = _wilson(acc[0], entries[0]["test_count"])
            row["accuracy"].update({"low": lo, "high": hi, "interval": "Wilson 95% over test images"})
        else:
            row["accuracy"]["interval"] = "Student-t 95% over seeds"
        for kind in ("gradcam", "attention"):
            scores = [e[kind] for e in entries if e[kind] is not None]
            if not scores:
                row[kind] = None
                continue
            metrics = {}
            for metric in list(scores[0].summary()):
                values = [s.summary()[metric] for s in scores]
                if seeds == 1 and metric in PER_IMAGE:
                    m, lo, hi = bootstrap_mean_ci(scores[0].per_image[metric])
                    metrics[metric] = {"mean": m, "low": lo, "high": hi, "n": 1,
                                       "interval": "bootstrap 95% over images"}
                elif seeds >= 2:
                    metrics[metric] = {**_interval(values), "interval": "Student-t 95% over seeds"}
                else:
                    metrics[metric] = {"mean": values[0], "low": float("nan"), "high": float("nan"), "n": 1,
                                       "interval": "dataset-level figure, one seed"}
            row[kind] = metrics
        models[name] = row
    gains = _gains(per_run, seeds)
    verdict = decide(gains, seeds)
    return {"models": models, "gains_vs_vanilla": gains, "primary_metric": f"Grad-CAM {PRIMARY}",
            "verdict": {"label": verdict.label, "text": verdict.text}, "n_localisation": n_loc, "seeds": seeds}


def _gains(per_run: dict[str, list[dict]], seeds: int) -> dict[str, dict[str, float]]:
    """Each attention model's gain in the primary metric over vanilla, with its interval."""
    if "vanilla" not in per_run:
        return {}
    base = {e["seed"]: e["gradcam"] for e in per_run["vanilla"]}
    gains = {}
    for name, entries in per_run.items():
        if name == "vanilla":
            continue
        if seeds >= 2:
            diffs = [e["gradcam"].summary()[PRIMARY] - base[e["seed"]].summary()[PRIMARY] for e in entries
                     if e["seed"] in base]
            g = _interval(diffs)
            g["interval"] = "Student-t 95% over seeds"
        else:
            e = entries[0]
            m, lo, hi = paired_bootstrap_ci(e["gradcam"].per_image[PRIMARY], base[e["seed"]].per_image[PRIMARY])
            g = {"mean": m, "low": lo, "high": hi, "n": 1, "interval": "paired bootstrap 95% over images, one seed"}
        gains[name] = g
    return gains

