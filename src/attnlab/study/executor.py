"""Train a study's runs: every (condition, variant, seed) run as a :class:`RunJob`, trained or reused in one call.

This is the serial executor (one run after the other, in this process). Finished runs are reused, unfinished
ones resume from their last checkpoint, so an interrupted study picks up where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..train import DataBundle, TrainConfig, build_data, latest_checkpoint, result_changes, train

__all__ = ["RunJob", "reusable", "train_runs"]

Log = Callable[[str], Any]


@dataclass(frozen=True)
class RunJob:
    """One training run of a study.

    Attributes:
        config: its whole training config (dataset, clutter level, attention, seed, device).
        run_dir: the run folder (checkpoints, metrics, ``summary.json``).
        tag: how log lines name it, e.g. ``[cbam seed 0, 8 fragments]``.
    """

    config: TrainConfig
    run_dir: Path
    tag: str


def reusable(run: Path, cfg: TrainConfig) -> bool:
    """Whether ``run`` finished training with ``cfg``: the settings that can change a result all match (the
    same check as resuming, ``attnlab.train.result_changes``; device, threads and the like may differ)."""
    summary, config = run / "summary.json", run / "config.json"
    if not (summary.is_file() and config.is_file()):
        return False
    try:
        stored = json.loads(config.read_text())["train"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return False
    return isinstance(stored, dict) and not result_changes(stored, cfg) and latest_checkpoint(run) is not None


def _data_key(cfg: TrainConfig) -> str:
    """The settings that decide a run's data: runs with the same key train on the same tensors."""
    return json.dumps([cfg.dataset, cfg.data_root, cfg.dataset_kwargs, cfg.limit_train, cfg.limit_test,
                       cfg.augment], sort_keys=True, default=str)


def train_runs(jobs: Sequence[RunJob], *, jobs_at_once: int | None = None, executor: str = "local",
               address: str | None = None, progress: bool = True, log: Log = print) -> dict[Path, dict]:
    """Train every job (one after the other here), reusing finished runs and resuming unfinished ones.

    Consecutive jobs on the same data share one loaded copy of it.

    Args:
        jobs: the runs.
        jobs_at_once, address: accepted for the parallel executors' signature; one run at a time here.
        executor: ``"local"`` (the only one this executor runs).
        progress: progress bars / periodic log lines while training.
        log: where the one-line notes go.

    Returns:
        run folder -> its ``summary.json`` (test accuracy, confusion matrix, times).

    Raises:
        ValueError: an executor other than ``"local"``, or ``jobs_at_once`` below 1.
    """
    if executor != "local":
        raise ValueError(f"executor {executor!r} is not available here; use 'local'")
    if jobs_at_once is not None and jobs_at_once < 1:
        raise ValueError(f"jobs_at_once must be a whole number >= 1, got {jobs_at_once!r}")
    summaries: dict[Path, dict] = {}
    loaded: tuple[str, DataBundle] | None = None
    for job in jobs:
        run = Path(job.run_dir)
        if reusable(run, job.config):
            log(f"{job.tag} reusing the finished run in {run}")
            summaries[run] = json.loads((run / "summary.json").read_text())
            continue
        key = _data_key(job.config)
        if loaded is None or loaded[0] != key:
            loaded = (key, build_data(job.config))
        resume = run.exists() and latest_checkpoint(run) is not None
        log(f"{job.tag} {'resuming' if resume else 'training'} in {run}")
        summaries[run] = train(job.config, run, resume=resume, progress=progress, data=loaded[1]).final
    return summaries
