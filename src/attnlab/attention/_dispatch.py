"""When to take a module's hand-fused eager path and when its plain differentiable path.

The fused paths are custom ``torch.autograd.Function`` s tuned for eager PyTorch, some calling native
kernels that no PyTorch machinery can see. Under ``torch.compile`` or ONNX export the plain path is
traced instead: the compiler fuses it itself and the exporter needs standard ops. The same holds while
a Python dispatch mode watches the ops (``FlopCounterMode``, fake tensors): it must see the standard
convolutions and matrix products to count or reproduce them.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode


def tracing() -> bool:
    """True while torch.compile/dynamo, TorchScript or the ONNX exporter traces, or a dispatch mode watches."""
    if torch.compiler.is_compiling() or torch.jit.is_scripting() or torch.jit.is_tracing():
        return True
    if torch.onnx.is_in_onnx_export():
        return True
    return _get_current_dispatch_mode() is not None


def needs_grad(x: torch.Tensor, params) -> bool:
    """True when autograd will need a backward through this call."""
    if not torch.is_grad_enabled():
        return False
    return x.requires_grad or any(p.requires_grad for p in params)
