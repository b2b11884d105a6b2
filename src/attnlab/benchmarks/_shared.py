"""What every runner shares: where results go, the lines that open a results file, printing and saving."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from ..benchtools import machine_summary, write_markdown

__all__ = ["RESULTS_DIR", "no_grad_forward", "provenance", "save_table"]

#: The saved tables' folder, relative to the current directory (the repository root for ``make bench``).
RESULTS_DIR = Path("benchmarks") / "results"


def no_grad_forward(model: nn.Module, x: Tensor) -> Callable[[], object]:
    """A zero-argument call of ``model(x)`` under ``torch.no_grad()``, for :func:`~attnlab.benchtools.time_paired`."""

    def run() -> object:
        with torch.no_grad():
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

