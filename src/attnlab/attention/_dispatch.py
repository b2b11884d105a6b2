"""When to take a module's hand-fused eager path and when its plain differentiable path.

The fused paths are custom ``torch.autograd.Function`` s tuned for eager PyTorch. Under
``torch.compile`` or ONNX export the plain path is traced instead: the compiler fuses it itself and
the exporter needs standard ops.
"""

from __future__ import annotations

import torch


def tracing() -> bool:
    """True while torch.compile/dynamo, TorchScript or the ONNX exporter is tracing."""
    if torch.compiler.is_compiling() or torch.jit.is_scripting() or torch.jit.is_tracing():
        return True
    return bool(torch.onnx.is_in_onnx_export())


def needs_grad(x: torch.Tensor, params) -> bool:
    """True when autograd will need a backward through this call."""
    if not torch.is_grad_enabled():
        return False
    return x.requires_grad or any(p.requires_grad for p in params)
