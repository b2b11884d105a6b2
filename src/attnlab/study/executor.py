"""Train a study's runs: one after another, in parallel processes on this machine, or as Ray tasks on a cluster.

:func:`train_runs` is the one entry point. Whatever the executor, a finished run (its folder holds the summary
and a config whose result-changing settings match) is reused, an unfinished one resumes from its last
checkpoint, and every run trains with the same seeds, data order and thread count, so a parallel study's
results are a serial study's, bit for bit on a CPU:

- ``local`` (:mod:`.executor_local`): runs in processes of this machine (spawned, not forked), several at a
  time; on GPUs spread over every visible GPU.
- ``ray`` (:mod:`.executor_ray`): each run is a Ray task asking for the CPUs and GPUs it needs, on a local Ray
  instance attnlab starts and stops, or on the cluster at ``address``. The run folders (and the data folder)
  must be on a filesystem that every worker sees.

Why a CPU run's thread count is fixed: torch's CPU kernels split their sums over the intra-op threads, so one
run trained with 1 thread and with 2 threads ends with different weights. Each CPU run therefore uses
:func:`threads_per_run` threads, decided from the machine and the number of runs, never from how many train
at once.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import torch

from ..names import lookup
from ..train import DataBundle, TrainConfig, build_data, latest_checkpoint, result_changes, train

__all__ = ["EXECUTORS", "RUNS_PER_GPU", "RunJob", "StudyInterrupted", "check_executor", "run_job",
           "threads_per_run", "train_runs"]

Log = Callable[[str], Any]

#: Runs trained at once on one GPU by default: one run of a small ResNet on 64x64 canvases leaves most of a
#: large GPU idle (the issue measured a 1.5x higher total throughput with 15 processes than with one).
RUNS_PER_GPU = 4


@dataclass(frozen=True)
class RunJob:
    """One training run of a study.

    Attributes:
        config: the run's settings (its ``device`` may name a kind, ``cuda``, that the executor places).
        run_dir: the run's folder (checkpoints, summary.json, config.json).
        tag: how messages name the run, e.g. ``[cbam seed 0]``.
    """

    config: TrainConfig
    run_dir: Path
    tag: str


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C while a study trained: which runs stopped, and that re-running the same command continues."""

    def __init__(self, stopped: Sequence[str]) -> None:
        self.stopped = list(stopped)
        runs = f" ({len(stopped)} run(s) stopped: {', '.join(stopped)})" if stopped else ""
        super().__init__(f"the study was interrupted{runs}; re-run the same command to continue: finished runs "
                         "are reused and unfinished ones resume from their last checkpoint")

    def __reduce__(self) -> tuple[type, tuple[list[str]]]:
        return type(self), (self.stopped,)


def train_runs(jobs: Sequence[RunJob], *, jobs_at_once: int | None = None, executor: str = "local",
               address: str | None = None, progress: bool = True, log: Log = print) -> dict[Path, dict]:
    """Train every job (reusing finished runs, resuming unfinished ones) and return each run's summary.

    Args:
        jobs: the runs, each with its own folder.
        jobs_at_once: runs trained at the same time; None: what the machine affords (local: on a CPU as many
            as its cores hold at :func:`threads_per_run` threads each, on GPUs :data:`RUNS_PER_GPU` per visible
            GPU; ray: as many as the cluster schedules).
        executor: ``local`` (this machine) or ``ray`` (Ray tasks; the run folders must be on a filesystem every
            worker sees).
        address: with ``ray``, the cluster to connect to (``HOST:PORT`` of ``ray start --head``, or
            ``ray://HOST:PORT``); None starts a local Ray instance and stops it at the end.
        progress: progress lines of each run.
        log: where the executor's own lines go.

    Returns:
        run folder -> the content of its summary.json, in the order of ``jobs``.

    Raises:
        ValueError: a bad executor, ``jobs_at_once`` or address, two jobs sharing a folder, Ray missing or not
            answering; or a run's own error (``FloatingPointError`` for a NaN loss, ...), naming the run, after
            the other runs were stopped.
        StudyInterrupted: Ctrl-C; every run was stopped and the message says how to continue.
    """
    executor = check_executor(executor, address, jobs_at_once)
    folders = [Path(job.run_dir) for job in jobs]
    twice = sorted({str(f) for f in folders if folders.count(f) > 1})
    if twice:
        raise ValueError(f"two runs of the study would train into the same folder: {', '.join(twice)}")
    summaries: dict[Path, dict] = {}
    pending = []
    for job in jobs:
        if reusable(job.run_dir, job.config):
            log(f"{job.tag} reusing the finished run in {job.run_dir}")
            summaries[Path(job.run_dir)] = _read_summary(job.run_dir)
        else:
            pending.append(job)
    if pending:
        run = lookup(_EXECUTORS, executor, "study executor")()
        try:
            summaries.update(run(pending, jobs_at_once=jobs_at_once, address=address,
                                 threads=threads_per_run(len(jobs)), progress=progress, log=log))
        finally:
            _DATA.clear()  # the runs' data, built here when they trained in this process
    return {folder: summaries[folder] for folder in folders}


def check_executor(executor: str, address: str | None = None, jobs_at_once: int | None = None) -> str:
    """Refuse, before anything is loaded or trained, settings :func:`train_runs` cannot use; for ``ray`` also
    that Ray is installed and that ``address`` answers (within seconds). Returns the executor's name.

    Raises:
        ValueError: an unknown executor, ``jobs_at_once`` not a whole number >= 1, an address without ``ray``,
            Ray missing, or an address that does not answer.
    """
    lookup(_EXECUTORS, executor, "study executor")
    executor = executor.strip().lower()
    if jobs_at_once is not None and (isinstance(jobs_at_once, bool) or not isinstance(jobs_at_once, int)
                                     or jobs_at_once < 1):
        raise ValueError(f"--jobs must be a whole number >= 1, got {jobs_at_once!r}")
    if address is not None and executor != "ray":
        raise ValueError(f"--address {address} names a Ray cluster: use it with --executor ray")
    if executor == "ray":
        from .executor_ray import check_ray

        check_ray(address)
    return executor


def threads_per_run(runs: int, cores: int | None = None) -> int:
    """The torch threads of each CPU run of a study of ``runs`` runs on ``cores`` cores (default: this
    machine's): the cores shared evenly, at least 1. It does not depend on how many runs train at once, so a
    run's weights do not either (they depend on the thread count)."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, runs))


def reusable(run: Path, cfg: TrainConfig) -> bool:
    """Whether ``run`` finished training with ``cfg``: the settings that can change a result all match (the
    same check as resuming, ``attnlab.train.result_changes``; device, threads and the like may differ)."""
    run = Path(run)
    summary, config = run / "summary.json", run / "config.json"
    if not (summary.is_file() and config.is_file()):
        return False
    try:
        stored = json.loads(config.read_text())["train"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return False
    return isinstance(stored, dict) and not result_changes(stored, cfg) and latest_checkpoint(run) is not None


def _read_summary(run: Path) -> dict:
    return json.loads((Path(run) / "summary.json").read_text())


def run_job(job: RunJob, device: str, threads: int, progress: bool = True, log: Log = print) -> dict:
    """Train ``job`` in this process on ``device`` with ``threads`` torch threads (its own ``num_threads`` when
    set), resuming from its last checkpoint when there is one; a run that finished meanwhile (a retried Ray
    task) is reused. torch's thread count is restored afterwards. Returns the run's summary."""
    if reusable(job.run_dir, job.config):
        log(f"{job.tag} reusing the finished run in {job.run_dir}")
        return _read_summary(job.run_dir)
    config = replace(job.config, device=device, num_threads=job.config.num_threads or threads)
    run_dir = Path(job.run_dir)
    resume = run_dir.is_dir() and latest_checkpoint(run_dir) is not None
    log(f"{job.tag} {'resuming' if resume else 'training'} in {run_dir} on {device}, "
        f"{config.num_threads} thread(s)")
    before = torch.get_num_threads()
    try:
        return train(config, run_dir, resume=resume, progress=progress, data=run_data(config)).final
    finally:
        torch.set_num_threads(before)


#: The last data :func:`run_data` built, by its settings (one entry: a study's runs share their data).
_DATA: dict[str, DataBundle] = {}


def run_data(config: TrainConfig) -> DataBundle:
    """``build_data(config)``, built once per data setting in a process (the runs of a study share it)."""
    key = json.dumps({k: getattr(config, k) for k in ("dataset", "data_root", "dataset_kwargs", "limit_train",
                                                      "limit_test", "augment")}, sort_keys=True, default=str)
    if key not in _DATA:
        _DATA.clear()
        _DATA[key] = build_data(config)
    return _DATA[key]


@dataclass(frozen=True)
class Outcome:
    """What a run trained in another process (or a Ray task) sends back: its summary, or its error."""

    summary: dict | None = None
    error: type[BaseException] | None = None
    message: str = ""
    details: str = ""

    def result(self, job: RunJob) -> dict:
        """The summary, or the run's error raised here with the run named (a user's error keeps its kind)."""
        if self.error is None:
            assert self.summary is not None
            return self.summary
        text = f"run {job.tag} in {job.run_dir} failed: {self.message}"
        if issubclass(self.error, KeyboardInterrupt):
            raise StudyInterrupted([job.tag])
        for kind in (FloatingPointError, ValueError, OSError):
            if issubclass(self.error, kind):
                raise kind(f"{text} (the study stopped; fix it and re-run the same command: finished runs are "
                           "reused)")
        raise RuntimeError(f"{text}\n{self.details}")


def attempt(job: RunJob, device: str, threads: int, progress: bool) -> Outcome:
    """:func:`run_job` in a worker (a child process or a Ray task), its output lines prefixed with the run's
    tag; any error is returned as an :class:`Outcome`, not raised."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = TaggedStream(job.tag, out), TaggedStream(job.tag, err)
    try:
        return Outcome(summary=run_job(job, device, threads, progress,
                                       log=lambda line: print(line, file=out, flush=True)))
    except BaseException as e:  # noqa: BLE001 - every error goes back to the study, named
        return Outcome(error=type(e), message=str(e) or type(e).__name__, details=traceback.format_exc())
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = out, err


class TaggedStream:
    """A text stream writing whole lines to ``stream``, each prefixed with ``tag`` (a run's lines among those of
    the runs beside it). Not a terminal, so progress is reported as log lines rather than a bar."""

    def __init__(self, tag: str, stream: IO[str]) -> None:
        self.tag, self.stream, self.buffer = tag, stream, ""

    def write(self, text: str) -> int:
        self.buffer += text.replace("\r", "\n")
        *lines, self.buffer = self.buffer.split("\n")
        for line in lines:
            if line.strip():
                self.stream.write(f"{self.tag} {line}\n")
        self.stream.flush()
        return len(text)

    def flush(self) -> None:
        if self.buffer.strip():
            self.stream.write(f"{self.tag} {self.buffer}\n")
        self.buffer = ""
        self.stream.flush()

    def isatty(self) -> bool:
        return False


def _local() -> Callable[..., dict[Path, dict]]:
    from .executor_local import train_locally

    return train_locally


def _ray() -> Callable[..., dict[Path, dict]]:
    from .executor_ray import train_on_ray

    return train_on_ray


#: Executor name -> (a loader of) its function ``(pending jobs, *, jobs_at_once, address, threads, progress, log)
#: -> run folder -> summary``.
_EXECUTORS: dict[str, Callable[[], Callable[..., dict[Path, dict]]]] = {"local": _local, "ray": _ray}
#: The executors' names (``attnlab study --executor``).
EXECUTORS = tuple(_EXECUTORS)
