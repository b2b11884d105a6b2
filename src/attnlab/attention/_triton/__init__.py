"""Fused Triton kernels for CBAM, SE and ECA on CUDA tensors (the ``triton`` extra).

Nothing here imports Triton until a kernel is launched: :func:`available` asks only whether it is
installed, and :func:`supports` whether a tensor can take the kernels: CUDA, or CPU while Triton's
interpreter runs (``TRITON_INTERPRET=1``, how the kernels are tested without a GPU); float32, float16
or bfloat16 (accumulating in float32); (N, C, H, W) with at least one element, any layout.

* :mod:`.pooling`, :mod:`.gating`: the kernels (spatial and channel pooling; the gated product and its
  backward passes);
* :mod:`.launch`: the Python launchers (views, allocation, grids);
* :mod:`.functions`: the eager autograd Functions (hand-written backwards) behind the modules' dispatch;
* :mod:`.ops`: the same passes as ``torch.library`` custom ops (``torch.ops.attnlab.*``), with fake
  implementations and autograd, for ``torch.compile`` and CUDA graphs.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["available", "interpreting", "device_ok", "supports", "unsupported_reason", "constant_under_compile",
           "DTYPES"]

#: The dtypes the kernels take (float64 keeps the PyTorch paths).
DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def constant_under_compile(fn: Callable[[], object]) -> Callable[[], object]:
    """Mark ``fn`` as ``torch.compiler.assume_constant_result`` does: torch.compile calls it once while tracing
    and keeps the result as a constant (no guard). The decorator itself imports ``torch._dynamo``, and with it
    Triton (seconds at ``import attnlab``), so the mark is set here; where a PyTorch ignores it, Dynamo
    traces ``fn`` itself, which it can."""
    fn._dynamo_marked_constant = True  # what torch._dynamo.assume_constant_result sets (2.1 to 2.13)
    return fn


_installed: list[bool] = []  # the answer of available(), once known


@constant_under_compile
def available() -> bool:
    """True when Triton is installed (not imported: that happens at the first launch)."""
    if not _installed:
        try:
            _installed.append(importlib.util.find_spec("triton") is not None)
        except (ImportError, ValueError):  # a broken install, or a module set to None in sys.modules
            _installed.append(False)
    return _installed[0]


@constant_under_compile
def interpreting() -> bool:
    """True when Triton runs kernels in its interpreter on CPU tensors (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def device_ok(x: Tensor) -> bool:
    """True when ``x``'s device can run the kernels: CUDA, or CPU under the interpreter."""
    return x.is_cuda or (x.device.type == "cpu" and interpreting())


def supports(x: Tensor) -> bool:
    """True when the Triton kernels can run on ``x`` (see the module docstring)."""
    return x.dim() == 4 and x.dtype in DTYPES and x.numel() > 0 and device_ok(x) and available()


def unsupported_reason(x: Tensor) -> str | None:
    """Why the Triton kernels cannot run on ``x``, in one sentence, or None when they can."""
    if not available():
        return "Triton is not installed (pip install 'attnlab[triton]')"
    if not device_ok(x):
        return f"a {x.device.type} tensor needs CUDA, or TRITON_INTERPRET=1 for the CPU interpreter"
    if x.dtype not in DTYPES:
        return f"dtype {x.dtype} is not one of float32, float16, bfloat16"
    if x.dim() != 4 or x.numel() == 0:
        return f"shape {tuple(x.shape)} is not a non-empty (N, C, H, W)"
    return None
