"""The size arguments of the modules, checked: group counts that fit a channel count (a paper's cardinality where
C allows it, the nearest below where not), and odd kernel sizes."""

from __future__ import annotations

__all__ = ["divisor_at_most", "check_groups", "check_odd_kernel"]


def divisor_at_most(channels: int, limit: int) -> int:
    """The largest divisor of ``channels`` that is at most ``limit`` (>= 1).

    A paper's group count (32 for SKNet's convolutions, 16 for ELA's GroupNorm) is used unchanged where it
    divides C; elsewhere the nearest count below it that does, so every C builds a module.

    Example:
        >>> divisor_at_most(64, 32), divisor_at_most(48, 32), divisor_at_most(16, 32)
        (32, 24, 16)
    """
    limit = max(1, min(int(limit), channels))
    return next(g for g in range(limit, 0, -1) if channels % g == 0)


def check_groups(channels: int, groups: int, what: str) -> int:
    """``groups`` when it is a positive int dividing ``channels``, else a ValueError naming ``what``."""
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or channels % groups:
        raise ValueError(f"{what} must be a positive int dividing channels={channels}, got {groups!r}")
    return groups


def check_odd_kernel(kernel_size: int, what: str) -> int:
    """``kernel_size`` when it is a positive odd int (not a bool), else a ValueError naming ``what`` (e.g. ``"ECA
    kernel_size"``): a kernel centred on its pixel or channel needs an odd size."""
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"{what} must be a positive odd int, got {kernel_size!r}")
    return kernel_size
