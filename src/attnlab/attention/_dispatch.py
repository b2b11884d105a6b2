"""When to take a module's hand-fused eager path and when its plain differentiable path.

The fused paths are custom ``torch.autograd.Function`` s tuned for eager PyTorch, some calling native
kernels that no PyTorch machinery can see. Under ``torch.compile`` or ONNX export the plain path is
traced instead: the compiler fuses it itself and the exporter needs standard ops. The same holds while
a Python dispatch mode watches the ops (``FlopCounterMode``, fake tensors): it must see the standard
convolutions and matrix products to count or reproduce them.

:func:`cbam_forward` is CBAM's one dispatch point and :func:`channel_gate_forward` that of the channel
gates (SE, ECA): each picks among those paths, so a module's ``forward`` is check, compute, record.

Backends
--------
Which fused kernels a call may use, :func:`backend_for` says: ``"triton"`` (the Triton kernels of
:mod:`._triton`: CUDA tensors, the ``triton`` extra), ``"native"`` (the C kernels of :mod:`._kernels` on
CPU float32/float64) or ``"torch"`` (PyTorch ops only). By default a CUDA tensor takes Triton when it is
installed, a CPU tensor the native kernels where they run, anything else PyTorch. ``ATTNLAB_BACKEND``
forces one, to compare paths: ``triton`` (an error where the kernels cannot run: no Triton, a CPU tensor
without ``TRITON_INTERPRET=1``, float64), ``native`` (today's CPU paths; PyTorch where the C kernels do not
run, CUDA included) or ``torch``; ``auto`` or unset is the default. Under ``torch.compile`` a call that
would take Triton goes through its ``torch.library`` custom ops (no graph break; the setting is read once
while compiling); ``torch.export``, ONNX export and dispatch modes take the plain ops.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import _get_current_dispatch_mode

from . import _kernels, _triton
from ._gates import CBAMGate, CBAMGateNative, ChannelGate, avg_hw, cbam_native_forward

__all__ = ["BACKENDS", "tracing", "needs_grad", "requested_backend", "backend_for", "cbam_forward",
           "channel_gate_forward", "spatial_mean", "CBAMMaps"]

#: The values of ``ATTNLAB_BACKEND`` (besides ``auto``).
BACKENDS = ("triton", "native", "torch")

#: CBAM's two maps: channel weights Mc (N, C) or (N, C, 1, 1), spatial mask Ms (N, 1, H, W)
CBAMMaps = tuple[Tensor, Tensor]


def tracing() -> bool:
    """True while torch.compile/dynamo, TorchScript or the ONNX exporter traces, or a dispatch mode watches."""
    if torch.compiler.is_compiling() or torch.jit.is_scripting() or torch.jit.is_tracing():
        return True
    if torch.onnx.is_in_onnx_export():
        return True
    return _get_current_dispatch_mode() is not None


@_triton.constant_under_compile  # read once while torch.compile traces
def requested_backend() -> str:
    """``ATTNLAB_BACKEND`` lower-cased, ``""`` when unset or ``auto``.

    Raises:
        ValueError: an unknown backend name.
    """
    name = os.environ.get("ATTNLAB_BACKEND", "").strip().lower()
    if name in ("", "auto"):
        return ""
    if name not in BACKENDS:
        raise ValueError(f"ATTNLAB_BACKEND={name!r} is not one of auto, {', '.join(BACKENDS)}")
    return name


def backend_for(x: Tensor) -> str:
    """The fused kernels a call on ``x`` (N, C, H, W) takes: ``"triton"``, ``"native"`` or ``"torch"``.

    Raises:
        ValueError: ``ATTNLAB_BACKEND=triton`` where the Triton kernels cannot run on ``x`` (a user's setting:
            the message says why and how to change it).
    """
    want = requested_backend()
    if want == "triton":
        reason = _triton.unsupported_reason(x)
        if reason is not None:
            raise ValueError(f"ATTNLAB_BACKEND=triton, but {reason}; unset ATTNLAB_BACKEND (or set it to auto) "
                             "to take the fastest path that runs here")
        return "triton"
    if not want and x.is_cuda and _triton.supports(x):
        return "triton"
    if want != "torch" and _kernels.supports(x):
        return "native"
    return "torch"


def _compiled_triton(x: Tensor) -> bool:
    """True while torch.compile (not export) traces a call that takes the Triton custom ops."""
    exporting = getattr(torch.compiler, "is_exporting", lambda: False)
    if not torch.compiler.is_compiling() or exporting() or torch.onnx.is_in_onnx_export():
        return False
    want = requested_backend()
    if want == "triton":
        return backend_for(x) == "triton"  # raises the reason where the kernels cannot run
    return not want and x.is_cuda and _triton.supports(x)


def needs_grad(x: Tensor, params: Iterable[Tensor]) -> bool:
    """True when autograd will need a backward through this call."""
    if not torch.is_grad_enabled():
        return False
    return x.requires_grad or any(p.requires_grad for p in params)


def cbam_forward(x: Tensor, channel_attention: nn.Module, spatial_attention: nn.Module, *,
                 record: bool = False) -> tuple[Tensor, CBAMMaps | None]:
    """CBAM on ``x``: x1 = x * Mc(x), out = x1 * Ms(x1), by the fastest path that is exact here.

    The paths, in order: while :func:`tracing`, the Triton custom ops under torch.compile where
    :func:`backend_for` picks Triton, else plain differentiable ops; the Triton kernels (an autograd
    Function, or the bare passes without autograd) where it picks Triton; a fused autograd Function
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
    if tracing():
        if _compiled_triton(x):  # the Triton custom ops, traced without a graph break
            from ._triton import ops

            out, (ca, sa) = ops.cbam_ops(x, ca_mod.weights, sa_mod.weights)
            return out, ((ca[:, :, None, None], sa) if record else None)
        ca = ca_mod(x)  # (N, C, 1, 1): plain differentiable ops for torch.compile / ONNX export
        x1 = x * ca
        sa = sa_mod(x1)  # (N, 1, H, W)
        return x1 * sa, ((ca, sa) if record else None)
    backend = backend_for(x)
    if backend == "triton":
        return _cbam_triton(x, ca_mod, sa_mod, record)
    cparams, sparams = list(ca_mod.parameters()), list(sa_mod.parameters())
    native = backend == "native"
    if needs_grad(x, cparams + sparams):
        gate = CBAMGateNative if native else CBAMGate
        out = gate.apply(x, ca_mod.weights, sa_mod.weights, len(cparams), *cparams, *sparams)
        return out, (_cbam_maps_detached(x.detach(), ca_mod, sa_mod) if record else None)
    if native:
        out, maps = cbam_native_forward(x, ca_mod.weights, sa_mod.weights, graph=False)
        return out, (maps if record else None)
    return _cbam_eager(x, ca_mod, sa_mod, record)


def _cbam_triton(x: Tensor, ca_mod: nn.Module, sa_mod: nn.Module, record: bool) -> tuple[Tensor, CBAMMaps | None]:
    """CBAM by the Triton kernels: the autograd Function when a backward is needed, else the bare passes."""
    from ._triton import functions

    cparams, sparams = list(ca_mod.parameters()), list(sa_mod.parameters())
    if needs_grad(x, cparams + sparams):
        out = functions.CBAMTriton.apply(x, ca_mod.weights, sa_mod.weights, len(cparams), *cparams, *sparams)
        return out, (_cbam_maps_detached(x.detach(), ca_mod, sa_mod) if record else None)
    out, maps = functions.cbam_forward(x, ca_mod.weights, sa_mod.weights)
    return out, (maps if record else None)


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


#: A channel gate's weights: (N, C) pooled descriptor [, unused] -> (N, C)
ChannelWeights = Callable[[Tensor, Tensor | None], Tensor]


def channel_gate_forward(x: Tensor, weights: ChannelWeights, params: list[Tensor], *,
                         record: bool = False) -> tuple[Tensor, Tensor | None]:
    """A channel gate (SE, ECA) on ``x``: out = x * w, w = weights(mean_hw(x)), by the fastest exact path.

    The paths, in order: while :func:`tracing`, the Triton custom ops where :func:`backend_for` picks Triton
    under torch.compile, else plain ops; the Triton autograd Function or bare passes (``"triton"``); the fused
    :class:`ChannelGate` when autograd needs a backward; plain ops otherwise.

    Args:
        x: (N, C, H, W), NCHW or channels_last.
        weights: the gate, (N, C) average descriptor -> (N, C) weights.
        params: the gate's parameters (their gradients are returned by the fused backwards).
        record: also return the weights applied (recomputed without autograd under it).

    Returns:
        (out (N, C, H, W) in ``x``'s memory format, w (N, C) if ``record`` else None).
    """
    if tracing():
        if _compiled_triton(x):
            from ._triton import ops

            out, w = ops.channel_gate_ops(x, weights)
            return out, (w if record else None)
        w = weights(avg_hw(x), None)  # (N, C)
        return x * w[:, :, None, None], (w if record else None)
    triton = backend_for(x) == "triton"
    if needs_grad(x, params):
        if triton:
            from ._triton import functions

            out = functions.ChannelGateTriton.apply(x, weights, *params)
        else:
            out = ChannelGate.apply(x, weights, *params)
        return out, (weights(avg_hw(x.detach()), None) if record else None)
    if triton:
        from ._triton import functions

        out, w = functions.channel_gate_forward(x, weights)
        return out, (w if record else None)
    w = weights(avg_hw(x), None)  # (N, C)
    return x * w[:, :, None, None], (w if record else None)


def spatial_mean(x: Tensor) -> Tensor:
    """Mean over H, W of ``x`` (N, C, H, W) -> (N, C): one Triton pass where :func:`backend_for` picks Triton."""
    if not tracing() and backend_for(x) == "triton":
        from ._triton import launch

        return launch.pool_hw(x, need_max=False)[0]
    return x.mean((2, 3))
