"""The training benchmark behind ``attnlab bench train`` and ``benchmarks/train.py``: accuracy after a stated
budget and seconds per epoch, saved as Markdown.

``run(config, run_dir, out)`` trains ``config`` into ``run_dir`` (resuming an interrupted run, reusing a
finished one, so a re-run only re-writes the table), then writes one row per epoch and a summary.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..benchtools import load_average, machine_summary, write_markdown
from ..fileio import check_directory, check_file
from ..train import TrainConfig, train
from ._shared import RESULTS_DIR

__all__ = ["HEADER", "RESULTS_PATTERN", "RUN_DIR_PATTERN", "SETTINGS", "results_path", "run", "run_dir_for",
           "summarize"]

#: The default results file (:func:`results_path`), relative to the current directory.
RESULTS_PATTERN = RESULTS_DIR / "train-DATASET-MODEL[-ATTENTION]-DEVICE.md"
#: The default run directory (:func:`run_dir_for`), relative to the current directory.
RUN_DIR_PATTERN = Path("runs") / "bench-train-DATASET-MODEL-ATTENTION"

HEADER = ["epoch", "lr at end", "train loss", "train acc", "test loss", "test acc", "train s", "train img/s"]
#: The training settings quoted in the results file, as the run recorded them in its config.json.
SETTINGS = ("model", "attention", "dataset", "epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay",
            "warmup_epochs", "label_smoothing", "augment", "channels_last", "amp", "seed", "limit_train", "limit_test")


def results_path(config: TrainConfig, device_type: str) -> Path:
    """Default results file, relative to the current directory:
    ``benchmarks/results/train-<dataset>-<model>[-<attention>]-<cpu|cuda>.md``."""
    parts = [config.dataset, config.model] + ([config.attention] if config.attention else []) + [device_type]
    return RESULTS_DIR / ("train-" + "-".join(parts) + ".md")


def run_dir_for(config: TrainConfig) -> Path:
    """Default run directory: ``runs/bench-train-<dataset>-<model>-<attention or vanilla>``."""
    return Path("runs") / f"bench-train-{config.dataset}-{config.model}-{config.attention or 'vanilla'}"


def summarize(history: list[dict[str, Any]], final: dict[str, Any]) -> dict[str, Any]:
    """The figures to quote: final and best test accuracy, median/mean seconds per epoch, total training time."""
    secs = [h["epoch_seconds"] for h in history]
    rates = [h["images_per_s"] for h in history]
    best = max(history, key=lambda h: h["test_acc"])
    return {"epochs": len(history), "test_acc": final["test_acc"], "best_test_acc": best["test_acc"],
            "best_epoch": best["epoch"], "median_epoch_seconds": statistics.median(secs),
            "min_epoch_seconds": min(secs), "mean_epoch_seconds": statistics.fmean(secs),
            "median_images_per_s": statistics.median(rates), "train_seconds": sum(secs)}


def _rows(history: list[dict[str, Any]]) -> list[list[object]]:
    """One table row per epoch of ``metrics.jsonl``."""
    return [[h["epoch"], h["lr"], f"{h['train_loss']:.4f}", f"{h['train_acc']:.4f}", f"{h['test_loss']:.4f}",
             f"{h['test_acc']:.4f}", f"{h['epoch_seconds']:.1f}", f"{h['images_per_s']:.0f}"] for h in history]


def _preamble(command: str, run_dir: str | os.PathLike, final: dict[str, Any], used: dict[str, Any],
              figures: dict[str, Any], loads: tuple[float, float], note: str) -> str:
    """The paragraphs above the table: command, run and machine, the note, the settings, the figures."""
    device = final["device"]
    lines = [
        f"Command: `{command or 'attnlab.benchmarks.train.run'}`",
        f"Run directory: `{run_dir}`; machine: {machine_summary(device)}; device {device}; world size "
        f"{final['world_size']}. 1-minute load average {loads[0]:.1f} when this command started and "
        f"{loads[1]:.1f} when it ended (a reused run was timed when it was trained: its per-epoch seconds are "
        "those of that time).",
        *([note] if note else []),
        f"Settings: {', '.join(f'{k}={used[k]}' for k in SETTINGS)}.",
        f"**Test accuracy {figures['test_acc']:.4f}** after {figures['epochs']} epochs (best "
        f"{figures['best_test_acc']:.4f} at epoch {figures['best_epoch']}); training time per epoch: median "
        f"{figures['median_epoch_seconds']:.1f} s, fastest {figures['min_epoch_seconds']:.1f} s, mean "
        f"{figures['mean_epoch_seconds']:.1f} s ({figures['median_images_per_s']:.0f} img/s median), "
        f"{figures['train_seconds'] / 60:.1f} min of training in all. \"Train s\" counts the training steps of the "
        "epoch (data loading and augmentation included), not the test-set evaluation after it.",
    ]
    return "\n\n".join(lines)


def run(config: TrainConfig, run_dir: str | os.PathLike | None = None, out: str | os.PathLike | None = None, *,
        command: str = "", progress: bool = True, note: str = "",
        log: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Train (or reuse) ``run_dir`` and write the per-epoch table to ``out`` (None: the defaults,
    :func:`run_dir_for` and :func:`results_path`).

    ``note`` is printed in the results file (how the run was made, what else the machine was doing); ``log``
    receives the one-line summary (None for silence).

    Returns the :func:`summarize` figures plus ``out`` (the results file) and ``run_dir``.
    """
    run_dir = run_dir or run_dir_for(config)
    check_directory(run_dir, "the run folder (--run)")
    if out:
        check_file(out, "the results file (--out)")
    load_before = load_average()
    result = train(config, run_dir, resume=True, progress=progress)
    loads = (load_before, load_average())
    used = json.loads((Path(run_dir) / "config.json").read_text())["train"]  # what the run was trained with
    figures = summarize(result.history, result.final)
    out = Path(out) if out else results_path(config, result.final["device"].split(":")[0])
    title = f"Training: {used['model']}{' + ' + used['attention'] if used['attention'] else ''} on {used['dataset']}"
    write_markdown(out, title, _preamble(command, run_dir, result.final, used, figures, loads, note), HEADER,
                   _rows(result.history))
    if log:
        log(f"test accuracy {figures['test_acc']:.4f} after {figures['epochs']} epochs; median "
            f"{figures['median_epoch_seconds']:.1f} s/epoch ({figures['median_images_per_s']:.0f} img/s); "
            f"wrote {out}")
    return {**figures, "out": str(out), "run_dir": str(run_dir)}
