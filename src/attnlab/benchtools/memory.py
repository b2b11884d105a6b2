"""Peak memory and allocation counts of one call, on CPU (profiler memory events) or CUDA."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["MemoryStats", "peak_memory"]


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


def _cpu_stats(fn: Callable[[], object]) -> MemoryStats:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
        del result
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
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
