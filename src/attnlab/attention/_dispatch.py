"""When to take a module's hand-fused eager path and when its plain differentiable path.

The fused paths are custom ``torch.autograd.Function`` s tuned for eager PyTorch, some calling native
kernels that no PyTorch machinery can see. Under ``torch.compile`` or ONNX export the plain path is
traced instead: the compiler fuses it itself and the exporter needs standard ops. The same holds while
a Python dispatch mode watches the ops (``FlopCounterMode``, fake tensors): it must see the standard
convolutions and matrix products to count or reproduce them.

:func:`cbam_forward` is CBAM's one dispatch point: it picks among those paths, so the module's
``forward`` is check, compute, record.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import _get_current_dispatch_mode

from . import _kernels
from ._gates import CBAMGate, CBAMGateNative, avg_hw, cbam_native_forward

__all__ = ["tracing", "needs_grad", "cbam_forward", "CBAMMaps"]

#: CBAM's two maps: channel weights Mc (N, C) or (N, C, 1, 1), spatial mask Ms (N, 1, H, W)
CBAMMaps = tuple[Tensor, Tensor]


def tracing() -> bool:
    """True while torch.compile/dynamo, TorchScript or the ONNX exporter traces, or a dispatch mode watches."""
    if torch.compiler.is_compiling() or torch.jit.is_scripting() or torch.jit.is_tracing():
        return True
    if torch.onnx.is_in_onnx_export():
        return True
    return _get_current_dispatch_mode() is not None


def needs_grad(x: Tensor, params: Iterable[Tensor]) -> bool:
    """True when autograd will need a backward through this call."""
    if not torch.is_grad_enabled():
        return False
    return x.requires_grad or any(p.requires_grad for p in params)


def cbam_forward(x: Tensor, channel_attention: nn.Module, spatial_attention: nn.Module, *,
                 record: bool = False) -> tuple[Tensor, CBAMMaps | None]:
    """CBAM on ``x``: x1 = x * Mc(x), out = x1 * Ms(x1), by the fastest path that is exact here.

    The paths, in order: plain differentiable ops while :func:`tracing`; a fused autograd Function
    (:class:`CBAMGateNative` where the native kernels run on ``x``, else :class:`CBAMGate`) when autograd
    needs a backward; the native kernels without autograd; plain eager ops otherwise (the last product
    in place when grad mode is off).

    Args:
        x: (N, C, H, W), NCHW or channels_last.
        channel_attention: maps (N, C, H, W) -> Mc (N, C, 1, 1), with ``weights(avg, max)``: (N, C) x2 -> (N, C).
        spatial_attention: maps (N, C, H, W) -> Ms (N, 1, H, W), with ``weights(mean, max)``: (N, 1, H, W) x2 ->
            (N, 1, H, W).
        record: also return the maps applied (for the recording protocol); under autograd they are
            recomputed without it.

    Returns:
        (out (N, C, H, W) in ``x``'s memory format, (Mc, Ms) if ``record`` else None).
    """
    ca_mod, sa_mod = channel_attention, spatial_attention
    if tracing():  # plain differentiable ops for torch.compile / ONNX export
        ca = ca_mod(x)  # (N, C, 1, 1)
        x1 = x * ca
        sa = sa_mod(x1)  # (N, 1, H, W)
        return x1 * sa, ((ca, sa) if record else None)
    cparams, sparams = list(ca_mod.parameters()), list(sa_mod.parameters())
    native = _kernels.supports(x)
    if needs_grad(x, cparams + sparams):
        gate = CBAMGateNative if native else CBAMGate
        out = gate.apply(x, ca_mod.weights, sa_mod.weights, len(cparams), *cparams, *sparams)
        return out, (_cbam_maps_detached(x.detach(), ca_mod, sa_mod) if record else None)
    if native:
        out, maps = cbam_native_forward(x, ca_mod.weights, sa_mod.weights, graph=False)
        return out, (maps if record else None)
    return _cbam_eager(x, ca_mod, sa_mod, record)


def _cbam_eager(x: Tensor, ca_mod: nn.Module, sa_mod: nn.Module, record: bool) -> tuple[Tensor, CBAMMaps | None]:
    """CBAM in plain eager ops without a backward to record (the fallback where no native kernel runs)."""
    ca = ca_mod.weights(avg_hw(x), x.amax((2, 3)))[:, :, None, None]  # (N, C, 1, 1)
    x1 = x * ca
    sa = sa_mod.weights(x1.mean(1, keepdim=True), x1.amax(1, keepdim=True))  # (N, 1, H, W)
    out = x1.mul_(sa) if not torch.is_grad_enabled() else x1 * sa
    return out, ((ca, sa) if record else None)


def _cbam_maps_detached(x: Tensor, ca_mod: nn.Module, sa_mod: nn.Module) -> CBAMMaps:
    """(Mc (N, C, 1, 1), Ms (N, 1, H, W)) on a detached ``x``, without autograd (for recording only)."""
    with torch.no_grad():
        ca = ca_mod(x)
        sa = sa_mod(x * ca)
    return ca, sa
