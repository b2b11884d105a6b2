"""The ``local`` executor: a study's runs in processes of this machine, several at a time.

One run trains in this process when only one trains at a time (progress bar as ever); otherwise each run is a
spawned process (never forked: torch and CUDA are not fork-safe) in one of a fixed number of slots. On a CPU the
processes share the cores, each with its run's fixed thread count (:func:`.executor.threads_per_run`); on GPUs
the slots are spread over every visible GPU, :data:`.executor.RUNS_PER_GPU` per GPU by default, each process
given its ``cuda:i``. A run that fails stops the others (they resume from their last checkpoint when the study
is run again) and is raised here, named; Ctrl-C stops every child. A child whose study process dies ends itself.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from pathlib import Path

import torch

from ..train.distributed import check_device
from .executor import RUNS_PER_GPU, Log, Outcome, RunJob, StudyInterrupted, attempt, run_job

__all__ = ["local_slots", "place", "train_locally"]


def train_locally(jobs: Sequence[RunJob], *, jobs_at_once: int | None, address: str | None, threads: int,
                  progress: bool, log: Log) -> dict[Path, dict]:
    """Train ``jobs`` (none of them finished) on this machine, ``jobs_at_once`` at a time (None: what it
    affords, see :func:`local_slots`); each CPU run with ``threads`` torch threads unless its config says.
    Returns run folder -> summary."""
    del address  # the local executor has none (check_executor refused one)
    slots = local_slots(jobs, jobs_at_once, threads)
    if len(slots) == 1:
        return _train_here(jobs, slots[0], threads, progress, log)
    cores = os.cpu_count() or 1
    where = sorted(set(slots))
    log(f"training {len(jobs)} run(s), {len(slots)} at a time in separate processes on {', '.join(where)}")
    counts = {job.run_dir: threads if place(job.config.device, slot=0) == "cpu" else max(1, cores // len(slots))
              for job in jobs}
    return _train_in_processes(jobs, slots, counts, progress, log)


def local_slots(jobs: Sequence[RunJob], jobs_at_once: int | None, threads: int) -> list[str]:
    """One device per process slot: ``jobs_at_once`` slots (None: on GPUs :data:`RUNS_PER_GPU` per visible GPU,
    on a CPU as many as the cores hold at ``threads`` threads each), never more than there are jobs; slot i
    of a study on GPUs uses GPU i modulo their number."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    spread = gpus > 0 and any(_unplaced(job.config.device) for job in jobs)
    if jobs_at_once is None:
        jobs_at_once = gpus * RUNS_PER_GPU if spread else max(1, (os.cpu_count() or 1) // threads)
    n = max(1, min(jobs_at_once, len(jobs)))
    return [f"cuda:{i % gpus}" if spread else "cpu" for i in range(n)]


def _unplaced(device: str) -> bool:
    """Whether ``device`` leaves the GPU to the executor (``auto``, ``cuda``)."""
    return check_device(device) in ("auto", "cuda")


def place(device: str, slot: int | str) -> str:
    """Where a run asking for ``device`` trains in a slot (the slot's GPU index, or its device name): ``cpu``,
    ``mps`` and ``cuda:N`` as asked; ``cuda`` and ``auto`` (with CUDA present) on the slot's GPU; ``auto``
    without CUDA on the CPU."""
    text = check_device(device)
    if text not in ("auto", "cuda"):
        return text
    if text == "auto" and not torch.cuda.is_available():
        return "cpu"
    if isinstance(slot, str):
        return slot if slot.startswith("cuda") else "cuda"
    return f"cuda:{slot}"


def _train_here(jobs: Sequence[RunJob], slot: str, threads: int, progress: bool, log: Log) -> dict[Path, dict]:
    """Every job in this process, one after another; an error names its run, Ctrl-C says how to continue."""
    summaries: dict[Path, dict] = {}
    for job in jobs:
        try:
            summaries[Path(job.run_dir)] = run_job(job, place(job.config.device, slot), threads, progress, log)
        except KeyboardInterrupt:
            raise StudyInterrupted([job.tag]) from None
        except Exception as err:  # the run's error, named (Outcome.result keeps a user's error one line)
            Outcome(error=type(err), message=str(err) or type(err).__name__,
                    details=traceback.format_exc()).result(job)
    return summaries


def _train_in_processes(jobs: Sequence[RunJob], slots: list[str], threads: dict[Path, int], progress: bool,
                        log: Log) -> dict[Path, dict]:
    """Every job in a spawned process, one per free slot at a time; a failure or Ctrl-C stops every child."""
    ctx = multiprocessing.get_context("spawn")
    queue, free = list(jobs), list(range(len(slots)))
    running: dict[Connection, tuple[multiprocessing.process.BaseProcess, RunJob, int]] = {}
    summaries: dict[Path, dict] = {}
    try:
        while queue or running:
            while queue and free:
                slot, job = free.pop(0), queue.pop(0)
                conn, child = _start(ctx, job, place(job.config.device, slots[slot]), threads[job.run_dir],
                                     progress)
                running[conn] = (child, job, slot)
            for conn in wait(list(running)):
                child, job, slot = running.pop(conn)
                outcome = _receive(conn, child)
                free.append(slot)
                summaries[Path(job.run_dir)] = summary = outcome.result(job)
                log(f"{job.tag} finished: test accuracy {summary['test_acc']:.4f} ({len(summaries)}/{len(jobs)} "
                    f"runs trained)")
    except KeyboardInterrupt:
        raise StudyInterrupted([job.tag for _, job, _ in running.values()]) from None
    finally:
        _stop([child for child, _, _ in running.values()])
    return summaries


def _start(ctx, job: RunJob, device: str, threads: int,
           progress: bool) -> tuple[Connection, multiprocessing.process.BaseProcess]:
    """A spawned child training ``job``; returns the end of the pipe its :class:`Outcome` arrives on."""
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(job, device, threads, progress, send, os.getpid()),
                        name=f"attnlab-run {job.tag}")
    child.start()
    send.close()  # the child holds its own copy: the parent's end reads EOF if the child dies
    return receive, child


def _receive(conn: Connection, child: multiprocessing.process.BaseProcess) -> Outcome:
    """The child's outcome, or (it died without one) an error saying how it ended."""
    try:
        outcome = conn.recv()
    except (EOFError, OSError):
        child.join(timeout=30)
        outcome = Outcome(error=ChildProcessError, message=f"its process ended (exit code {child.exitcode}) before "
                                                            "it reported a result: killed, or out of memory?")
    conn.close()
    child.join()
    return outcome


def _stop(children: list[multiprocessing.process.BaseProcess]) -> None:
    """Terminate the children still running and wait for them (killed after 10 s); checkpoints are written
    atomically, so each resumes from its last finished epoch."""
    for child in children:
        if child.is_alive():
            child.terminate()
    deadline = time.monotonic() + 10
    for child in children:
        child.join(timeout=max(0.0, deadline - time.monotonic()))
        if child.is_alive():
            child.kill()
            child.join()


def _child(job: RunJob, device: str, threads: int, progress: bool, send: Connection, parent: int) -> None:
    """A child's life: leave Ctrl-C to the study process (it stops the children), end with the study process,
    train, send the outcome."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_with, args=(parent,), daemon=True).start()
    send.send(attempt(job, device, threads, progress))
    send.close()


def _end_with(parent: int) -> None:
    """End this process as soon as ``parent`` is no longer its parent (it died): no orphan keeps training."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)
