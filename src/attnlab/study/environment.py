"""Where a study ran, as its report states it: versions, the processor and GPU by name, the threads used."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from .results import Environment

__all__ = ["cpu_name", "environment"]


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` knows; ``cpu`` at worst)."""
    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "cpu"


def environment(device: torch.device) -> Environment:
    """The study's :class:`Environment` on ``device``: the GPU's name when it is a CUDA device."""
    from .. import __version__

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    cpu, cores, threads = cpu_name(), os.cpu_count(), torch.get_num_threads()
    machine = f"{cpu} ({cores} CPUs), {threads} threads" + (f"; GPU {gpu}" if gpu else "")
    return Environment(attnlab=__version__, torch=torch.__version__, python=platform.python_version(),
                       device=str(device), platform=platform.platform(), machine=machine, cpu=cpu, gpu=gpu,
                       threads=threads)
