"""FLOP counting with ``torch.utils.flop_counter`` (a multiply-add counts as 2 FLOPs)."""

from __future__ import annotations

from collections.abc import Callable

from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_flops"]


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn`` as counted by PyTorch's FlopCounterMode (matmuls and convs only)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())
