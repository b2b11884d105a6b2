"""What every runner shares: where results go, the lines that open a results file, printing and saving."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from ..benchtools import machine_summary, write_markdown

__all__ = ["AMP_DTYPES", "RESULTS_DIR", "amp_dtype", "autocast", "no_grad_forward", "provenance", "save_table",
           "timm_attention"]

#: The saved tables' folder, relative to the current directory (the repository root for ``make bench``).
RESULTS_DIR = Path("benchmarks") / "results"


#: The ``amp`` values the runners take: autocast dtypes by name.
AMP_DTYPES: dict[str, torch.dtype] = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def amp_dtype(amp: str | None) -> torch.dtype | None:
    """The autocast dtype named ``amp`` (None: no autocast).

    Raises:
        ValueError: a name not in :data:`AMP_DTYPES`.
    """
    if amp is None:
        return None
    if amp not in AMP_DTYPES:
        raise ValueError(f"unknown AMP dtype {amp!r}; choose one of {', '.join(AMP_DTYPES)}")
    return AMP_DTYPES[amp]


def autocast(device: str, amp: str | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on ``device``'s type with the dtype named ``amp``, or nothing when ``amp`` is None."""
    dtype = amp_dtype(amp)
    return contextlib.nullcontext() if dtype is None else torch.autocast(torch.device(device).type, dtype=dtype)


def timm_attention(name: str, channels: int) -> nn.Module | None:
    """timm's attention module ``name`` (``se``, ``eca``, ``cbam``) for ``channels``, or None where timm does not
    import or has no such module."""
    try:
        from timm.layers import create_attn
    except Exception:  # not installed, or a broken install (timm needs torchvision)
        return None
    try:
        return create_attn(name, channels)
    except (AssertionError, ValueError, KeyError, TypeError):
        return None


def no_grad_forward(model: nn.Module, x: Tensor, amp: str | None = None) -> Callable[[], object]:
    """A zero-argument call of ``model(x)`` under ``torch.no_grad()`` (and autocast to ``amp``), for
    :func:`~attnlab.benchtools.time_paired`."""

    def run() -> object:
        with torch.no_grad(), autocast(x.device.type, amp):
            return model(x)

    return run


def provenance(command: str, device: str, detail: str = "") -> str:
    """The two paragraphs opening a results file: the command that made it and the machine it ran on.

    ``detail`` is appended to the machine line (e.g. ``"; inputs NCHW"``).
    """
    return f"Command: `{command}`\n\nMachine: {machine_summary(device)}{detail}"


def save_table(out: str | os.PathLike | None, title: str, preamble: str, header: Sequence[str],
               rows: Sequence[Sequence[object]]) -> Path | None:
    """Write the table to ``out`` as Markdown and say where (nothing when ``out`` is empty or None)."""
    if not out:
        return None
    path = write_markdown(out, title, preamble, header, rows)
    print(f"\nsaved {path}")
    return path

