"""Fused channel/spatial gating with hand-written backwards.

Shared by SE, ECA and CBAM. The gate functions (an MLP, a 1-D or 7x7 conv) run on small pooled
descriptors; the only work on the full (N, C, H, W) tensor is pooling and scaling, which these
Functions do in as few passes as eager PyTorch allows, and whose backward they write by hand:

* the pooling backward and the gating backward are merged into one pass (``addcmul``) rather than
  autograd's materialised expand followed by an add;
* the backward of a max-pool is taken through an equality mask with the pooled maximum (ties share
  the gradient equally, as ``amax`` does), because index-returning ``max``/``argmax`` kernels cost
  3x to 25x a copy on CPU;
* the small gate graphs are differentiated with ``torch.autograd.grad`` inside ``backward``.

Every tensor here is NCHW or channels_last (N, C, H, W); descriptors are (N, C) or (N, 1, H, W).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from . import _kernels

ChannelGateFn = Callable[[Tensor, Tensor | None], Tensor]  # (N, C) avg [, (N, C) max] -> (N, C) weights
SpatialGateFn = Callable[[Tensor, Tensor], Tensor]  # (N, 1, H, W) mean, (N, 1, H, W) max -> (N, 1, H, W) weights


def avg_hw(x: Tensor) -> Tensor:
    """Spatial mean (N, C, H, W) -> (N, C); the pooling kernel beats ``x.mean((2, 3))`` on CPU (2x at 7x7)."""
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


def _small_grad(outputs: Tensor, inputs: Sequence[Tensor], params: Sequence[Tensor], grad: Tensor):
    """Gradients of a small gate graph w.r.t. its descriptor inputs and the parameters that need them."""
    wanted = [p for p in params if p.requires_grad]
    # retain_graph: the small graph lives as long as this node does, so a second backward (retain_graph=True
    # upstream, gradcheck) can walk it again.
    grads = torch.autograd.grad(outputs, [*inputs, *wanted], grad, allow_unused=True, retain_graph=True)
    n = len(inputs)
    it = iter(grads[n:])
    param_grads = [next(it) if p.requires_grad else None for p in params]
    return grads[:n], param_grads


def _differentiable_grad(plain: Callable[[], Tensor], inputs: Sequence[Tensor], g: Tensor) -> list[Tensor | None]:
    """Gradients through the plain (stock autograd) forward, keeping their graph.

    Used when the backward itself is being recorded (``create_graph=True``, e.g. gradient penalties or
    ``gradgradcheck``): the hand-written backwards are first-order only, so the forward is recomputed
    from the saved inputs with differentiable ops and differentiated with ``create_graph=True``.
    """
    wanted = [t for t in inputs if t.requires_grad]
    with torch.enable_grad():
        out = plain()
        grads = iter(torch.autograd.grad(out, wanted, g, create_graph=True, allow_unused=True))
    return [next(grads) if t.requires_grad else None for t in inputs]


def _amax_mask_grad(x: Tensor, xmax: Tensor, gmax: Tensor, dims: tuple[int, ...], out: Tensor) -> Tensor:
    """Scatter ``gmax`` back to the arg-max positions of ``x`` along ``dims`` (ties share equally).

    ``out`` is a full-size scratch buffer; returns ``out`` holding mask * gmax / count.
    """
    torch.eq(x, xmax, out=out)  # (N, C, H, W) float mask of the maxima
    count = out.sum(dims, keepdim=True)
    return out.mul_(gmax / count)


class ChannelGate(torch.autograd.Function):
    """out = x * gate(avg_hw(x)) with the gate a small differentiable function (SE, ECA).

    Inputs: x (N, C, H, W), the gate, then the gate's parameters (so their gradients are returned).
    Backward: d gate = sum_hw g * x (one read of g and x with the native row-dot kernel, else one
    product and a sum), d x = g * w + d avg / HW in a single ``addcmul``.
    """

    @staticmethod
    def forward(ctx, x: Tensor, gate: ChannelGateFn, *params: Tensor) -> Tensor:
        avg = avg_hw(x).requires_grad_()  # (N, C)
        with torch.enable_grad():
            w = gate(avg, None)  # (N, C)
        ctx.save_for_backward(x, *params)
        ctx.small = (avg, w)
        ctx.gate = gate
        return x * w.detach().to(x.dtype)[:, :, None, None]

    @staticmethod
    def backward(ctx, g: Tensor):
        x, *params = ctx.saved_tensors
        avg, w = ctx.small
        if torch.is_grad_enabled():  # create_graph=True: a differentiable backward
            gate = ctx.gate
            grads = _differentiable_grad(lambda: x * gate(x.mean((2, 3)), None)[:, :, None, None], [x, *params], g)
            return (grads[0], None, *grads[1:])
        n, c, h, wd = x.shape
        g = g.contiguous(memory_format=_memory_format(x))
        gw = _row_dot(g, x)  # (N, C): d out / d w
        (gavg,), gparams = _small_grad(w, [avg], params, gw.to(w.dtype))
        # d x = g * w + gavg / HW, in one pass.
        wd_ = w.detach().to(x.dtype)[:, :, None, None]
        gx = torch.addcmul((gavg.to(x.dtype) / (h * wd))[:, :, None, None], g, wd_)
        return (gx, None, *gparams)


def _memory_format(x: Tensor) -> torch.memory_format:
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _row_dot(a: Tensor, b: Tensor) -> Tensor:
    """sum over (H, W) of a * b: (N, C, H, W) x2 -> (N, C); native kernel for NCHW float32/64 on CPU."""
    if a.is_contiguous() and b.is_contiguous() and a.dtype == b.dtype and _kernels.supports(b):
        n, c, h, w = b.shape
        out = b.new_empty(n, c)
        sfx = "f64" if b.dtype == torch.float64 else "f32"
        getattr(_kernels.load(), f"row_dot_{sfx}")(a.data_ptr(), b.data_ptr(), n * c, h * w, 1, out.data_ptr(),
                                          torch.get_num_threads())
        return out
    return torch.mul(a, b).sum((2, 3))


def cbam_plain(x: Tensor, channel_gate: ChannelGateFn, spatial_gate: SpatialGateFn) -> Tensor:
    """CBAM with stock differentiable ops: x1 = x * Mc(x), out = x1 * Ms(x1)."""
    x1 = x * channel_gate(x.mean((2, 3)), x.amax((2, 3)))[:, :, None, None]
    return x1 * spatial_gate(x1.mean(1, keepdim=True), x1.amax(1, keepdim=True))


def _cbam_differentiable_backward(ctx, x: Tensor, params: Sequence[Tensor], g: Tensor):
    channel_gate, spatial_gate = ctx.gates
    grads = _differentiable_grad(lambda: cbam_plain(x, channel_gate, spatial_gate), [x, *params], g)
    return (grads[0], None, None, None, *grads[1:])


class CBAMGate(torch.autograd.Function):
    """CBAM: x1 = x * Mc(x), out = x1 * Ms(x1), fused (Woo et al. 2018).

    Mc takes the spatial average and max of x (N, C); Ms takes the channel mean and max of x1
    (N, 1, H, W). x1 is kept for the backward (it is what autograd would keep too).
    """

    @staticmethod
    def forward(ctx, x: Tensor, channel_gate: ChannelGateFn, spatial_gate: SpatialGateFn, n_channel_params: int,
                *params: Tensor) -> Tensor:
        avg = x.mean((2, 3)).requires_grad_()  # (N, C)
        mx = x.amax((2, 3)).requires_grad_()  # (N, C)
        with torch.enable_grad():
            ca = channel_gate(avg, mx)  # (N, C)
        cad = ca.detach()[:, :, None, None]
        x1 = x * cad  # (N, C, H, W)
        smean = x1.mean(1, keepdim=True).requires_grad_()  # (N, 1, H, W)
        smax = x1.amax(1, keepdim=True).requires_grad_()  # (N, 1, H, W)
        with torch.enable_grad():
            sa = spatial_gate(smean, smax)  # (N, 1, H, W)
        ctx.save_for_backward(x, x1, *params)
        ctx.small = (avg, mx, ca, smean, smax, sa)
        ctx.n_channel_params = n_channel_params
        ctx.gates = (channel_gate, spatial_gate)
        return x1 * sa.detach()

    @staticmethod
    def backward(ctx, g: Tensor):
        x, x1, *params = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a differentiable backward
            return _cbam_differentiable_backward(ctx, x, params, g)
        avg, mx, ca, smean, smax, sa = ctx.small
        k = ctx.n_channel_params
        n, c, h, w = x.shape
        cad = ca.detach()[:, :, None, None]
        sad = sa.detach()
        scratch = torch.empty_like(x)
        # Spatial gate: d out / d sa = sum_c g * x1.
        gsa = torch.mul(g, x1, out=scratch).sum(1, keepdim=True)  # (N, 1, H, W)
        (gmean, gsmax), gp_spatial = _small_grad(sa, [smean, smax], params[k:], gsa)
        # d x1 = g * sa + gmean / C + scatter(gsmax to the channel maxima).
        gx1 = torch.addcmul(gmean / c, g, sad)
        gx1.add_(_amax_mask_grad(x1, smax.detach(), gsmax, (1,), scratch))
        # Channel gate: d out / d ca = sum_hw x * d x1.
        gca = torch.mul(gx1, x, out=scratch).sum((2, 3))  # (N, C)
        (gavg, gmx), gp_channel = _small_grad(ca, [avg, mx], params[:k], gca)
        gx = torch.addcmul((gavg / (h * w))[:, :, None, None], gx1, cad, out=gx1)
        gx.add_(_amax_mask_grad(x, mx.detach()[:, :, None, None], gmx[:, :, None, None], (2, 3), scratch))
        return (gx, None, None, None, *gp_channel, *gp_spatial)


def _is_nhwc(x: Tensor) -> bool:
    """True for a channels_last tensor that is not also NCHW-contiguous (those take the NCHW kernels)."""
    return not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def _ptr(t: Tensor) -> int:
    return t.data_ptr()


def cbam_native_forward(x: Tensor, channel_gate: ChannelGateFn, spatial_gate: SpatialGateFn, graph: bool):
    """One fused CBAM forward with the native kernels; x is NCHW- or channels_last-contiguous float32/64 on CPU.

    Returns (out, state) where state holds what the backward needs (None unless ``graph``). ``out`` has
    the memory format of ``x``.
    """
    lib = _kernels.load()
    sfx = "f64" if x.dtype == torch.float64 else "f32"
    nhwc = _is_nhwc(x)
    lay = "nhwc_" if nhwc else ""
    nt = torch.get_num_threads()
    n, c, h, w = x.shape
    p = h * w
    argp = None
    if nhwc:  # one pass: spatial average, maximum and its first position, vectorised over C
        avg, mx = x.new_empty(n, c), x.new_empty(n, c)
        argp = torch.empty(n, c, dtype=torch.int64)
        getattr(lib, f"pool_hw_nhwc_{sfx}")(_ptr(x), n, c, p, _ptr(avg), _ptr(mx), _ptr(argp), nt)
    else:
        avg, mx = avg_hw(x), x.amax((2, 3))  # (N, C): torch's reductions beat a fused kernel here
        if graph:  # the backward needs where each channel's maximum sits
            argp = torch.empty(n, c, dtype=torch.int64)
            getattr(lib, f"first_eq_{sfx}")(_ptr(x), _ptr(mx), n * c, p, _ptr(argp), nt)
    if graph:
        avg.requires_grad_()
        mx.requires_grad_()
    with torch.set_grad_enabled(graph):
        ca = channel_gate(avg, mx)  # (N, C)
    cad = ca.detach().to(x.dtype).contiguous()
    smean, smax = x.new_empty(n, 1, h, w), x.new_empty(n, 1, h, w)
    argc = torch.empty(n, p, dtype=torch.int64)
    getattr(lib, f"pool_c_{lay}{sfx}")(_ptr(x), _ptr(cad), n, c, p, _ptr(smean), _ptr(smax), _ptr(argc), nt)
    if graph:
        smean.requires_grad_()
        smax.requires_grad_()
    with torch.set_grad_enabled(graph):
        sa = spatial_gate(smean, smax)  # (N, 1, H, W)
    sad = sa.detach().to(x.dtype).contiguous()
    out = torch.empty_like(x)  # preserves channels_last
    getattr(lib, f"apply_{lay}{sfx}")(_ptr(x), _ptr(cad), _ptr(sad), n, c, p, _ptr(out), nt)
    state = (avg, mx, ca, smean, smax, sa, argp, argc) if graph else (ca, sa)
    return out, state


class CBAMGateNative(torch.autograd.Function):
    """CBAM with the native kernels: three passes forward, three backward, arg-max scatters sparse.

    The max-pool gradients go to the first arg-max (as ``torch.max(dim)`` and ``AdaptiveMaxPool2d``
    in the seed's code); x * Mc is never materialised.
    """

    @staticmethod
    def forward(ctx, x: Tensor, channel_gate: ChannelGateFn, spatial_gate: SpatialGateFn, n_channel_params: int,
                *params: Tensor) -> Tensor:
        out, state = cbam_native_forward(x, channel_gate, spatial_gate, graph=True)
        ctx.save_for_backward(x, *params)
        ctx.small = state
        ctx.n_channel_params = n_channel_params
        ctx.gates = (channel_gate, spatial_gate)
        return out

    @staticmethod
    def backward(ctx, g: Tensor):
        lib = _kernels.load()
        x, *params = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a differentiable backward
            return _cbam_differentiable_backward(ctx, x, params, g)
        avg, mx, ca, smean, smax, sa, argp, argc = ctx.small
        k = ctx.n_channel_params
        sfx = "f64" if x.dtype == torch.float64 else "f32"
        nhwc = _is_nhwc(x)
        lay = "nhwc_" if nhwc else ""
        nt = torch.get_num_threads()
        n, c, h, w = x.shape
        p = h * w
        g = g.contiguous(memory_format=torch.channels_last if nhwc else torch.contiguous_format)
        cad = ca.detach().to(x.dtype).contiguous()
        sad = sa.detach().to(x.dtype).contiguous()
        # Pass 1: gsa = sum_c g * x * ca (N, P) and sum_p g * x * sa (N, C).
        gsa, gca = x.new_empty(n, 1, h, w), x.new_empty(n, c)
        getattr(lib, f"bwd_dots_{lay}{sfx}")(_ptr(g), _ptr(x), _ptr(cad), _ptr(sad), n, c, p, _ptr(gsa), _ptr(gca),
                                             nt)
        (gmean, gsmax), gp_spatial = _small_grad(sa, [smean, smax], params[k:], gsa.to(sa.dtype))
        gm = (gmean.to(x.dtype) / c).reshape(n, p).contiguous()  # (N, P)
        gsmax = gsmax.to(x.dtype).reshape(n, p)
        # Pass 2 (bmm): the channel-mean part of d ca; then the sparse channel-max part.
        if nhwc:
            xt = x.permute(0, 2, 3, 1).reshape(n, p, c)  # a view: (N, P, C) is the memory order
            gca += torch.bmm(gm.unsqueeze(1), xt).squeeze(1)
            gca.scatter_add_(1, argc, xt.gather(2, argc.unsqueeze(2)).squeeze(2) * gsmax)
        else:
            xv = x.view(n, c, p)
            gmean_part = x.new_empty(n, c)  # sum_p x * gm, one pass (torch.bmm is 3x slower here)
            getattr(lib, f"row_dot_{sfx}")(_ptr(x), _ptr(gm), n * c, p, c, _ptr(gmean_part), nt)
            gca += gmean_part
            gca.scatter_add_(1, argc, xv.gather(1, argc.unsqueeze(1)).squeeze(1) * gsmax)
        (gavg, gmx), gp_channel = _small_grad(ca, [avg, mx], params[:k], gca.to(ca.dtype))
        gavg = (gavg.to(x.dtype) / p).contiguous()
        # Pass 3: gx = ca * (g * sa + gm) + gavg / P, then the two sparse max-pool scatters.
        gx = torch.empty_like(x)  # same memory format as x
        getattr(lib, f"bwd_gx_{lay}{sfx}")(_ptr(g), _ptr(cad), _ptr(sad), _ptr(gm), _ptr(gavg), n, c, p, _ptr(gx),
                                           nt)
        if nhwc:
            gxt = gx.permute(0, 2, 3, 1).reshape(n, p, c)  # a view
            gxt.scatter_add_(2, argc.unsqueeze(2), (cad.gather(1, argc) * gsmax).unsqueeze(2))
            gxt.scatter_add_(1, argp.unsqueeze(1), gmx.to(x.dtype).unsqueeze(1))
        else:
            gxv = gx.view(n, c, p)
            gxv.scatter_add_(1, argc.unsqueeze(1), (cad.gather(1, argc) * gsmax).unsqueeze(1))
            gxv.scatter_add_(2, argp.unsqueeze(2), gmx.to(x.dtype).unsqueeze(2))
        return (gx, None, None, None, *gp_channel, *gp_spatial)
