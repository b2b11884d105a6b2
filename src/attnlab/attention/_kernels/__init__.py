"""Optional native CPU kernels for CBAM, the SE/ECA gate and the few-channel conv, compiled on first use.

No build step at install time and no dependency: ``cbam_cpu.c`` ships with the package and
:class:`attnlab.native.NativeLibrary` compiles it on the first call into the kernel cache (one library per
source, compiler, flags, platform and processor; see :mod:`attnlab.native`). Where no compiler is found or
the build fails, :func:`load` returns None once with a warning, and callers take their pure-PyTorch path.
``ATTNLAB_NATIVE=0`` disables the kernels.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import torch

from ...native import NativeLibrary

__all__ = ["LIBRARY", "load", "available", "supports"]

#: Each kernel's arguments (p: pointer, i: int64) before its thread count (a C int); one f32 and one f64 build.
_SIGNATURES = {
    "pool_hw": "piippp",
    "pool_c": "ppiiippp",
    "apply": "pppiiip",
    "bwd_dots": "ppppiiipp",
    "bwd_gx": "pppppiiip",
    "row_dot": "ppiiip",
    "first_eq": "ppiip",
    "pool_hw_nhwc": "piiippp",
    "pool_c_nhwc": "ppiiippp",
    "apply_nhwc": "pppiiip",
    "bwd_dots_nhwc": "ppppiiipp",
    "bwd_gx_nhwc": "pppppiiip",
    "same_conv": "pppiiiiiip",
}
_KINDS = {"p": ctypes.c_void_p, "i": ctypes.c_int64}

#: The compiled ``cbam_cpu.c``: every kernel of :data:`_SIGNATURES` in float32 and float64.
LIBRARY = NativeLibrary("cbam_cpu", Path(__file__).with_name("cbam_cpu.c"),
                        {f"{name}_{suffix}": [*(_KINDS[c] for c in sig), ctypes.c_int]
                         for name, sig in _SIGNATURES.items() for suffix in ("f32", "f64")})


def load() -> ctypes.CDLL | None:
    """The compiled kernel library, or None where it cannot be built or is disabled."""
    return LIBRARY.load()


def available() -> bool:
    """True when the native kernels are built and loaded."""
    return LIBRARY.available()


def supports(x: torch.Tensor) -> bool:
    """True when the native CBAM kernels can run on ``x`` (N, C, H, W).

    That is: a CPU float32/float64 tensor, NCHW- or channels_last-contiguous, and a library that loads.
    """
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return False
    if not (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)):
        return False
    return load() is not None
