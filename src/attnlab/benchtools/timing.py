"""Paired, interleaved timing: robust ratios on a shared, noisy machine.

Every candidate runs once per round, in the same order, round after round; a ratio is taken within
each round (so a burst of load hits both sides) and the median over rounds is reported. On CUDA each
timing is a pair of CUDA events around the calls (the GPU's own clock, launch gaps included), the
device synchronised before the first; on CPU it is ``time.perf_counter``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["PairedTimes", "time_paired"]


def _is_cuda(device: torch.device | str | None) -> bool:
    return device is not None and torch.device(device).type == "cuda"


def _time_cpu(fn: Callable[[], object], inner: int) -> float:
    """Seconds per call of ``fn``, over ``inner`` calls, by the wall clock."""
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - start) / inner


def _time_cuda(fn: Callable[[], object], inner: int, device: torch.device | str) -> float:
    """Seconds per call of ``fn``, over ``inner`` calls, between two CUDA events on the current stream."""
    with torch.cuda.device(device):
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / inner  # elapsed_time is in milliseconds


@dataclass
class PairedTimes:
    """Seconds per call of each candidate, one entry per round."""

    rounds: dict[str, list[float]]

    def median(self, name: str) -> float:
        """Median seconds per call of ``name``."""
        return statistics.median(self.rounds[name])

    def ratio(self, name: str, baseline: str) -> float:
        """Median over rounds of time(name) / time(baseline) within the same round."""
        return statistics.median(a / b for a, b in zip(self.rounds[name], self.rounds[baseline], strict=True))


def time_paired(fns: dict[str, Callable[[], object]], repeats: int = 15, warmup: int = 3,
                inner: int = 1, device: torch.device | str | None = None) -> PairedTimes:
    """Time each callable ``repeats`` times, interleaved round by round.

    Args:
        fns: name -> zero-argument callable.
        repeats: rounds measured.
        warmup: rounds run first and discarded (allocator, caches, lazy builds).
        inner: calls per timing (for very short calls); the time reported is per call.
        device: a CUDA device times with CUDA events on it (synchronised before each timing); else the wall clock.

    Returns:
        :class:`PairedTimes` with ``repeats`` entries per name.
    """
    if repeats < 1 or inner < 1:
        raise ValueError("repeats and inner must be >= 1")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    rounds: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            rounds[name].append(_time_cuda(fn, inner, device) if _is_cuda(device) else _time_cpu(fn, inner))
    return PairedTimes(rounds)
