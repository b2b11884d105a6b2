"""Paired, interleaved timing: robust ratios on a shared, noisy machine.

Every candidate runs once per round, in the same order, round after round; a ratio is taken within
each round (so a burst of load hits both sides) and the median over rounds is reported.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["PairedTimes", "time_paired"]


def _sync(device: torch.device | str | None) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()


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
        device: synchronise this CUDA device around each timing.

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
            _sync(device)
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            _sync(device)
            rounds[name].append((time.perf_counter() - start) / inner)
    return PairedTimes(rounds)
