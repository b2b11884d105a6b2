"""Peak memory and allocation counts of one call, on CPU (profiler memory events) or CUDA.

torch's profiler writes to the process's stderr from C++ on every start and stop (kineto's
``SyncActivityProfilerHandler`` lines, the CPU allocator's "Memory block of unknown size" warning), and no
environment variable or logging level of this torch silences it; :func:`quiet_profiler` catches the file
descriptor 2 around the profiling, drops those lines and passes on anything else written meanwhile.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

__all__ = ["MemoryStats", "PROFILER_NOISE", "peak_memory", "quiet_profiler"]

#: Markers of the lines torch's profiler prints by itself (kineto's start/stop and stage logs, the CPU
#: allocator's note on blocks allocated before the profiling started).
PROFILER_NOISE = ("SyncActivityProfilerHandler", "Memory block of unknown size", "ActivityProfilerController",
                  "USDT:", "STAGE:")


@dataclass
class MemoryStats:
    """Memory of one call, counting only what the call itself allocated.

    Attributes:
        peak_bytes: the most bytes live at once during the call, above what was live before it.
        allocations: how many allocations the call made (each a fresh buffer; on CPU large ones page-fault).
        allocated_bytes: total bytes allocated (a tensor freed and allocated again counts twice).
    """

    peak_bytes: int
    allocations: int
    allocated_bytes: int


@contextmanager
def quiet_profiler(noise: tuple[str, ...] = PROFILER_NOISE) -> Iterator[None]:
    """Drop the lines holding one of ``noise`` that native code (or Python) writes to stderr inside the block.

    File descriptor 2 points at a temporary file meanwhile; on exit the lines without a marker are written to
    ``sys.stderr``, in order, so a real warning or error message is delayed, never lost. Where there is no file
    descriptor 2 to redirect, the block runs as is.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # fd 2 closed, or no stream to flush
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            sink.seek(0)
            lines = sink.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not any(mark in line for mark in noise))
            if kept:
                sys.stderr.write(kept)


def _cpu_stats(fn: Callable[[], object]) -> MemoryStats:
    from torch.profiler import ProfilerActivity, profile

    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        with quiet_profiler():
            with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
                result = fn()
                del result
            prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)["traceEvents"]
    finally:
        os.unlink(path)
    mem = sorted((e for e in events if e.get("name") == "[memory]" and e["args"].get("Device Type", 0) == 0),
                 key=lambda e: e["ts"])
    live = peak = count = total = 0
    for e in mem:
        b = int(e["args"]["Bytes"])
        live += b
        peak = max(peak, live)
        if b > 0:
            count += 1
            total += b
    return MemoryStats(peak, count, total)


def _cuda_stats(fn: Callable[[], object], device: torch.device) -> MemoryStats:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    stats0 = torch.cuda.memory_stats(device)
    result = fn()
    del result
    torch.cuda.synchronize(device)
    stats1 = torch.cuda.memory_stats(device)
    peak = torch.cuda.max_memory_allocated(device) - before
    count = stats1.get("allocation.all.allocated", 0) - stats0.get("allocation.all.allocated", 0)
    total = stats1.get("allocated_bytes.all.allocated", 0) - stats0.get("allocated_bytes.all.allocated", 0)
    return MemoryStats(int(peak), int(count), int(total))


def peak_memory(fn: Callable[[], object], device: torch.device | str = "cpu") -> MemoryStats:
    """Measure the memory one call of ``fn`` allocates (its return value is dropped inside).

    Example:
        >>> peak_memory(lambda: torch.ones(1024, 1024)).peak_bytes
        4194304
    """
    device = torch.device(device)
    if device.type == "cuda":
        return _cuda_stats(fn, device)
    return _cpu_stats(fn)
