"""Where and under what load a benchmark ran, for the saved results files."""

from __future__ import annotations

import os
import platform

import torch

__all__ = ["load_average", "machine_summary"]


def machine_summary(device: str = "cpu") -> str:
    """One line naming the machine, PyTorch and thread count."""
    dev = torch.cuda.get_device_name(device) if torch.device(device).type == "cuda" else platform.processor() or "cpu"
    return (f"{platform.machine()} {dev}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
            f"python {platform.python_version()}")


def load_average() -> float:
    """The 1-minute load average (NaN where the platform has none): how busy the machine was."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
