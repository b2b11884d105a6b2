"""The ``ray`` executor: each run of a study is a Ray task asking for the CPUs and GPUs it needs.

Without an address attnlab starts a local Ray instance (this machine's CPUs and GPUs, no dashboard) and stops it
at the end; with one (``HOST:PORT`` of a head started by ``ray start --head``, or ``ray://HOST:PORT``) it first
checks, within :data:`PROBE_SECONDS`, that something answers there, then connects. A worker lost mid-run (its
process or its machine died) has its task retried, up to :data:`MAX_RETRIES` times, and the retry resumes from
the run's last checkpoint: the run folders, and the data folder, must therefore be on a filesystem every worker
sees (NFS or the like), and every worker needs attnlab installed. A run's own error (a NaN loss) is not
retried: it stops the study, named. Ray is imported here only, on first use (the ``ray`` extra).
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..train.distributed import check_device
from .executor import RUNS_PER_GPU, Log, Outcome, RunJob, StudyInterrupted, attempt

__all__ = ["MAX_RETRIES", "PROBE_SECONDS", "check_ray", "parse_address", "probe_address", "train_on_ray"]

#: Seconds the address of a cluster gets to answer before the study stops with an error.
PROBE_SECONDS = 5.0
#: Retries of a run whose worker was lost (each resumes from the run's last checkpoint).
MAX_RETRIES = 3

_INSTALL = "pip install 'attnlab[ray]'"


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        ValueError: Ray is not installed (the message names the extra to install).
    """
    try:
        import ray
    except ImportError:
        raise ValueError(f"--executor ray needs Ray, which is not installed here: {_INSTALL}") from None
    return ray


def check_ray(address: str | None) -> None:
    """Ray is installed and, when given, ``address`` answers.

    Raises:
        ValueError: see :func:`import_ray` and :func:`probe_address`.
    """
    import_ray()
    if address is not None:
        probe_address(address)


def parse_address(address: str) -> tuple[str, int]:
    """``(host, port)`` of ``HOST:PORT`` or ``ray://HOST:PORT`` (an IPv6 host in brackets).

    Raises:
        ValueError: any other text.
    """
    m = re.fullmatch(r"(?:ray://)?\[?(?P<host>[^\s\[\]/]+?)\]?:(?P<port>\d{1,5})", str(address).strip())
    if m is None or not 0 < int(m["port"]) < 65536:
        raise ValueError(f"--address {address!r} is not HOST:PORT: give the head's address as `ray start --head` "
                         "prints it (e.g. 10.0.0.5:6379), or ray://HOST:10001 for Ray Client")
    return m["host"], int(m["port"])


def probe_address(address: str, timeout: float = PROBE_SECONDS) -> None:
    """Something accepts connections at ``address`` within ``timeout`` seconds (before Ray, which would wait).

    Raises:
        ValueError: it does not (refused, unknown host, timed out), naming the address and what to do.
    """
    host, port = parse_address(address)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        why = err.strerror or str(err) or type(err).__name__
        raise ValueError(f"no Ray cluster answers at {address} ({why}, waited up to {timeout:g} s): start one with "
                         "`ray start --head` on the head machine and pass the address it prints (--address "
                         "HEAD:6379), or check the address and the firewall") from None


def train_on_ray(jobs: Sequence[RunJob], *, jobs_at_once: int | None, address: str | None, threads: int,
                 progress: bool, log: Log) -> dict[Path, dict]:
    """Train ``jobs`` (none of them finished) as Ray tasks, at most ``jobs_at_once`` in flight (None: all), on
    the cluster at ``address`` (None: a local instance, started and stopped here; an instance this process
    already joined is used and left running). Returns run folder -> summary."""
    ray = import_ray()
    started = _connect(ray, address, log)
    try:
        return _gather(ray, jobs, jobs_at_once, threads, progress, log)
    finally:
        if started:
            ray.shutdown()


def _connect(ray: Any, address: str | None, log: Log) -> bool:
    """Join the cluster at ``address``, or start a local instance; False when this process had already joined.

    Raises:
        ValueError: the address does not answer, or Ray refuses to connect to it.
    """
    if ray.is_initialized():
        return False
    quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
    try:
        if address is None:
            gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
            ray.init(num_cpus=os.cpu_count() or 1, num_gpus=gpus, include_dashboard=False,
                     runtime_env={"env_vars": {"PYTHONPATH": _this_attnlab_first()}}, **quiet)
            log(f"started a local Ray instance ({os.cpu_count()} CPUs, {gpus} GPUs); it stops with the study")
        else:
            probe_address(address)
            ray.init(address=address, **({} if address.startswith("ray://") else quiet))
            log(f"connected to the Ray cluster at {address}: {_describe(ray.cluster_resources())}")
    except (ConnectionError, TimeoutError, RuntimeError) as err:
        raise ValueError(f"could not {'start Ray' if address is None else f'connect to Ray at {address}'}: "
                         f"{err}") from None
    return True


def _this_attnlab_first() -> str:
    """``PYTHONPATH`` for the workers of a local instance: the folder this attnlab was imported from, then the
    driver's own entries made absolute (workers start in another folder), so they run the same code."""
    here = str(Path(__file__).resolve().parents[2])
    given = [str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join(dict.fromkeys([here, *given]))


def _describe(resources: dict[str, float]) -> str:
    return f"{resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs"


def _gather(ray: Any, jobs: Sequence[RunJob], jobs_at_once: int | None, threads: int, progress: bool,
            log: Log) -> dict[Path, dict]:
    """Submit every job as a task (at most ``jobs_at_once`` in flight) and collect the summaries as they come;
    a failed run, or Ctrl-C, cancels the others."""
    task = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False)(attempt)
    resources, node_cpus = ray.cluster_resources(), _largest_node_cpus(ray)
    queue, limit = list(jobs), jobs_at_once or len(jobs)
    refs: dict[Any, RunJob] = {}
    summaries: dict[Path, dict] = {}
    try:
        while queue or refs:
            while queue and len(refs) < limit:
                job = queue.pop(0)
                cpus, gpus, device = task_resources(job, threads, resources, node_cpus)
                log(f"{job.tag} submitted: {cpus} CPU(s), {gpus:g} GPU(s), device {device}")
                ref = task.options(num_cpus=cpus, num_gpus=gpus, name=f"attnlab-run {job.tag}")
                refs[ref.remote(job, device, cpus, progress)] = job
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                job = refs.pop(ref)
                summaries[Path(job.run_dir)] = summary = _outcome(ray, ref).result(job)
                log(f"{job.tag} finished: test accuracy {summary['test_acc']:.4f} ({len(summaries)}/{len(jobs)} "
                    "runs trained)")
    except KeyboardInterrupt:
        raise StudyInterrupted(sorted(job.tag for job in refs.values())) from None
    finally:
        for ref in refs:
            ray.cancel(ref, force=True)
    return summaries


def task_resources(job: RunJob, threads: int, resources: dict[str, float],
                   node_cpus: int) -> tuple[int, float, str]:
    """``(num_cpus, num_gpus, device)`` of ``job``'s task on a cluster with ``resources`` whose largest machine
    has ``node_cpus`` CPUs: a GPU run (``cuda``, or ``auto`` on a cluster with GPUs) asks for
    1/:data:`RUNS_PER_GPU` of a GPU and one CPU; a CPU run for its thread count (``threads`` unless its config
    says), at most ``node_cpus``.

    Raises:
        ValueError: the run asks for a GPU and the cluster has none.
    """
    device = check_device(job.config.device)
    has_gpus = resources.get("GPU", 0) > 0
    if device.startswith("cuda") or (device == "auto" and has_gpus):
        if not has_gpus:
            raise ValueError(f"the runs ask for a GPU (--device {device}) but the Ray cluster has none "
                             f"({_describe(resources)}); add GPU workers or use --device cpu")
        return job.config.num_threads or 1, 1 / RUNS_PER_GPU, "cuda"
    cpus = max(1, min(job.config.num_threads or threads, node_cpus))
    return cpus, 0.0, "cpu" if device == "auto" else device


def _largest_node_cpus(ray: Any) -> int:
    """The CPUs of the cluster's largest live machine (a task asking for more could never be scheduled)."""
    return int(max((node["Resources"].get("CPU", 0) for node in ray.nodes() if node.get("Alive")), default=1)) or 1


def _outcome(ray: Any, ref: Any) -> Outcome:
    """The task's outcome, or (Ray lost it past its retries, or it was cancelled) an error saying so."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return Outcome(error=ConnectionError, message=f"its Ray task was lost ({first[:300]}) after {MAX_RETRIES} "
                                                      "retries; the run's last checkpoint is kept")
