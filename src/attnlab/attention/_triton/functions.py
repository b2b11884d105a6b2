"""The eager Triton paths of SE/ECA and CBAM: autograd Functions with hand-written backwards.

The gates (an MLP, a 1-D or 7x7 conv) run in PyTorch on the pooled descriptors, as in
:mod:`attnlab.attention._gates`, and are differentiated with ``torch.autograd.grad`` in the backward;
every pass over the full (N, C, H, W) tensor is a Triton kernel (:mod:`.launch`):

=========  ====================================================  ===================================
           forward                                               backward
=========  ====================================================  ===================================
SE, ECA    pool (read x); product (read x, write out)            dots (read g, x); d x (read g, write)
CBAM       spatial pool; channel pool of x * Mc; product          dots; channel-pool part of d Mc (read
           (three reads of x, one write; x * Mc never formed)    x); d x (read g, write)
=========  ====================================================  ===================================

Max-pool gradients go to the first arg-max (as ``torch.max(dim)``), as in the native CPU kernels.
A backward that is itself recorded (``create_graph=True``) recomputes the plain forward instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from torch import Tensor

from .._gates import ChannelGateFn, SpatialGateFn, _cbam_differentiable_backward, _differentiable_grad, _small_grad
from . import launch

__all__ = ["ChannelGateTriton", "CBAMTriton", "channel_gate_forward", "cbam_forward"]


def on_device(x: Tensor) -> contextlib.AbstractContextManager:
    """Make ``x``'s GPU the current one for the launches (Triton launches on the current device)."""
    if x.is_cuda and x.device.index is not None and x.device.index != torch.cuda.current_device():
        return torch.cuda.device(x.device)
    return contextlib.nullcontext()


def _zeros_if_none(grads: Sequence[Tensor | None], like: Sequence[Tensor]) -> list[Tensor]:
    """Gradients of the descriptors, zeros where a gate did not use one."""
    return [torch.zeros_like(t) if g is None else g for g, t in zip(grads, like, strict=True)]


def channel_gate_forward(x: Tensor, gate: ChannelGateFn) -> tuple[Tensor, Tensor]:
    """x * gate(mean_hw(x)) without autograd: (out (N, C, H, W), weights (N, C))."""
    with on_device(x):
        w = gate(launch.pool_hw(x, need_max=False)[0], None)  # (N, C)
        return launch.gate_mul(x, w), w


class ChannelGateTriton(torch.autograd.Function):
    """out = x * gate(mean_hw(x)) (SE, ECA): two Triton passes forward, two backward.

    Inputs: x (N, C, H, W), the gate, then the gate's parameters (so their gradients are returned).
    """

    @staticmethod
    def forward(ctx, x: Tensor, gate: ChannelGateFn, *params: Tensor) -> Tensor:
        x, _ = launch.readable(x)
        with on_device(x):
            avg = launch.pool_hw(x, need_max=False)[0].requires_grad_()  # (N, C)
            with torch.enable_grad():
                w = gate(avg, None)  # (N, C)
            out = launch.gate_mul(x, w.detach())
        ctx.save_for_backward(x, *params)
        ctx.small = (avg, w)
        ctx.gate = gate
        return out

    @staticmethod
    def backward(ctx, g: Tensor):
        x, *params = ctx.saved_tensors
        avg, w = ctx.small
        if torch.is_grad_enabled():  # create_graph=True: a differentiable backward
            gate = ctx.gate
            grads = _differentiable_grad(lambda: x * gate(x.mean((2, 3)), None)[:, :, None, None], [x, *params], g)
            return (grads[0], None, *grads[1:])
        with on_device(x):
            gw, _ = launch.gate_dots(g, x)  # (N, C): d out / d w
            (gavg,), gparams = _small_grad(w, [avg], params, gw.to(w.dtype))
            gx = None
            if ctx.needs_input_grad[0]:
                gavg = _zeros_if_none([gavg], [avg])[0]
                gx = launch.grad_x(g, x, w.detach(), gavg.float() / (x.shape[2] * x.shape[3]))
        return (gx, None, *gparams)


def _cbam_passes(x: Tensor, channel_gate: ChannelGateFn, spatial_gate: SpatialGateFn, graph: bool):
    """CBAM's three forward passes; the gates record their graphs when ``graph``.

    Returns (out, state): state is (avg, mx, ca, smean, smax, sa, argp, argc) with ``graph``, else (ca, sa).
    """
    avg, mx, argp = launch.pool_hw(x)  # (N, C) x2, (N, C) int32
    if graph:
        avg.requires_grad_()
        mx.requires_grad_()
    with torch.set_grad_enabled(graph):
        ca = channel_gate(avg, mx)  # (N, C)
    smean, smax, argc = launch.pool_c(x, ca.detach())  # (N, 1, H, W) x2, (N, H*W) int32
    if graph:
        smean.requires_grad_()
        smax.requires_grad_()
    with torch.set_grad_enabled(graph):
        sa = spatial_gate(smean, smax)  # (N, 1, H, W)
    out = launch.gate_mul(x, ca.detach(), sa.detach())
    return out, ((avg, mx, ca, smean, smax, sa, argp, argc) if graph else (ca, sa))


def cbam_forward(x: Tensor, channel_gate: ChannelGateFn, spatial_gate: SpatialGateFn) -> tuple[Tensor, tuple]:
    """CBAM without autograd: (out (N, C, H, W), (Mc (N, C), Ms (N, 1, H, W)))."""
    with on_device(x):
        return _cbam_passes(x, channel_gate, spatial_gate, graph=False)


class CBAMTriton(torch.autograd.Function):
    """CBAM, x1 = x * Mc(x), out = x1 * Ms(x1), with Triton passes: three forward, three backward.

    Inputs: x, the two gates, the number of channel-gate parameters, then all parameters (channel gate's first).
    Saved: x and the small tensors (descriptors, gates, arg-max indices); x * Mc is never stored.
    """

    @staticmethod
    def forward(ctx, x: Tensor, channel_gate: ChannelGateFn, spatial_gate: SpatialGateFn, n_channel_params: int,
                *params: Tensor) -> Tensor:
        x, _ = launch.readable(x)
        with on_device(x):
            out, state = _cbam_passes(x, channel_gate, spatial_gate, graph=True)
        ctx.save_for_backward(x, *params)
        ctx.small = state
        ctx.n_channel_params = n_channel_params
        ctx.gates = (channel_gate, spatial_gate)
        return out

    @staticmethod
    def backward(ctx, g: Tensor):
        x, *params = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a differentiable backward
            return _cbam_differentiable_backward(ctx, x, params, g)
        avg, mx, ca, smean, smax, sa, argp, argc = ctx.small
        k = ctx.n_channel_params
        n, c, h, w = x.shape
        cad, sad = ca.detach(), sa.detach()
        with on_device(x):
            # Pass 1: d Ms = sum_c g x Mc (N, H*W) and the direct part of d Mc = sum_p g x Ms (N, C).
            gca, gsa = launch.gate_dots(g, x, cad, sad)
            grads, gp_spatial = _small_grad(sa, [smean, smax], params[k:], gsa.view_as(sa).to(sa.dtype))
            gmean, gsmax = _zeros_if_none(grads, [smean, smax])
            gm = gmean.float() / c  # (N, 1, H, W): d channel-mean spread over the C channels
            # Pass 2: the part of d Mc that flows through the channel mean and max of x * Mc.
            gca = gca + launch.mean_max_dot(x, gm, gsmax, argc)
            grads, gp_channel = _small_grad(ca, [avg, mx], params[:k], gca.to(ca.dtype))
            gavg, gmx = _zeros_if_none(grads, [avg, mx])
            gx = None
            if ctx.needs_input_grad[0]:  # Pass 3: d x, every term in one pass
                terms = launch.CBAMGrads(sad, gm, gsmax, argc, gmx, argp)
                gx = launch.grad_x(g, x, cad, gavg.float() / (h * w), terms)
        return (gx, None, None, None, *gp_channel, *gp_spatial)
