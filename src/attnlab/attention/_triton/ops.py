"""The Triton passes as ``torch.library`` custom ops (``torch.ops.attnlab.*``), for ``torch.compile``.

Under ``torch.compile`` the modules call these ops (:func:`channel_gate_ops`, :func:`cbam_ops`) with the
gates between them in plain PyTorch, so the graph holds no break: each op has a fake implementation (shapes,
dtypes and strides without running, via :func:`.layout.out_like`) and an autograd formula. The formulas
write the full-size gradients as plain elementwise PyTorch, which the compiler fuses into one pass, and
call the reduction ops (``gate_dots``, ``channel_dot``, ``mean_max_dot``) for the sums over C and H x W.
CUDA graphs capture them like any op. ``torch.export`` and ONNX export keep the plain-ops path (see
:mod:`attnlab.attention._dispatch`).

The ops take CUDA tensors, or CPU tensors under Triton's interpreter. Registering them imports no Triton:
the implementations import :mod:`.launch` when first run.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .layout import out_like, readable

__all__ = ["pool_hw", "avg_hw", "pool_c", "gate_mul", "gate_dots", "channel_dot", "mean_max_dot", "channel_gate_ops",
           "cbam_ops"]


def _launch():
    from . import launch

    return launch


def _new(x: Tensor, *shape, dtype: torch.dtype | None = None) -> Tensor:
    return x.new_empty(shape, dtype=dtype or x.dtype)


# Forward passes ---------------------------------------------------------------------------------------


@torch.library.custom_op("attnlab::pool_hw", mutates_args=(), schema="(Tensor x) -> (Tensor, Tensor, Tensor)")
def pool_hw(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Spatial mean and max of x (N, C, H, W): (N, C) x2 in x.dtype, and the max's first position (N, C) int32."""
    avg, mx, arg = _launch().pool_hw(x, need_max=True)
    return avg, mx, arg


@pool_hw.register_fake
def _(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    n, c = x.shape[:2]
    return _new(x, n, c), _new(x, n, c), _new(x, n, c, dtype=torch.int32)


@torch.library.custom_op("attnlab::avg_hw", mutates_args=(), schema="(Tensor x) -> Tensor")
def avg_hw(x: Tensor) -> Tensor:
    """Spatial mean of x (N, C, H, W): (N, C) in x.dtype."""
    return _launch().pool_hw(x, need_max=False)[0]


@avg_hw.register_fake
def _(x: Tensor) -> Tensor:
    return _new(x, *x.shape[:2])


@torch.library.custom_op("attnlab::pool_c", mutates_args=(), schema="(Tensor x, Tensor ca) -> (Tensor, Tensor, Tensor)")
def pool_c(x: Tensor, ca: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Channel mean and max of x * ca (x (N, C, H, W), ca (N, C)): (N, 1, H, W) x2, first arg-max (N, H*W) int32."""
    mean, mx, arg = _launch().pool_c(x, ca)
    return mean, mx, arg


@pool_c.register_fake
def _(x: Tensor, ca: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    n, _, h, w = x.shape
    dtype = torch.promote_types(x.dtype, ca.dtype)
    return _new(x, n, 1, h, w, dtype=dtype), _new(x, n, 1, h, w, dtype=dtype), _new(x, n, h * w, dtype=torch.int32)


@torch.library.custom_op("attnlab::gate_mul", mutates_args=(), schema="(Tensor x, Tensor ca, Tensor? sa) -> Tensor")
def gate_mul(x: Tensor, ca: Tensor, sa: Tensor | None) -> Tensor:
    """x * ca[:, :, None, None] (* sa): x (N, C, H, W), ca (N, C), sa (N, 1, H, W) or None; x's layout."""
    return _launch().gate_mul(x, ca, sa)


@gate_mul.register_fake
def _(x: Tensor, ca: Tensor, sa: Tensor | None) -> Tensor:
    dtype = torch.promote_types(x.dtype, ca.dtype)
    return out_like(readable(x)[0], dtype if sa is None else torch.promote_types(dtype, sa.dtype))


# Backward reductions (first-order: no autograd of their own) -------------------------------------------


@torch.library.custom_op("attnlab::gate_dots", mutates_args=(),
                         schema="(Tensor g, Tensor x, Tensor ca, Tensor sa) -> (Tensor, Tensor)")
def gate_dots(g: Tensor, x: Tensor, ca: Tensor, sa: Tensor) -> tuple[Tensor, Tensor]:
    """sum_p g x sa (N, C) and sum_c g x ca (N, H*W), float32, from one read of g and x (N, C, H, W)."""
    gca, gsa = _launch().gate_dots(g, x, ca, sa)
    return gca, gsa


@gate_dots.register_fake
def _(g: Tensor, x: Tensor, ca: Tensor, sa: Tensor) -> tuple[Tensor, Tensor]:
    n, c, h, w = x.shape
    return _new(x, n, c, dtype=torch.float32), _new(x, n, h * w, dtype=torch.float32)


@torch.library.custom_op("attnlab::channel_dot", mutates_args=(), schema="(Tensor g, Tensor x) -> Tensor")
def channel_dot(g: Tensor, x: Tensor) -> Tensor:
    """sum_p g x: (N, C, H, W) x2 -> (N, C) float32."""
    return _launch().gate_dots(g, x)[0]


@channel_dot.register_fake
def _(g: Tensor, x: Tensor) -> Tensor:
    return _new(x, *x.shape[:2], dtype=torch.float32)


@torch.library.custom_op("attnlab::mean_max_dot", mutates_args=(),
                         schema="(Tensor x, Tensor gm, Tensor gmax, Tensor argc) -> Tensor")
def mean_max_dot(x: Tensor, gm: Tensor, gmax: Tensor, argc: Tensor) -> Tensor:
    """sum_p x (gm[p] + [c == argc[p]] gmax[p]): x (N, C, H, W), gm/gmax/argc (N, H*W) -> (N, C) float32."""
    return _launch().mean_max_dot(x, gm, gmax, argc)


@mean_max_dot.register_fake
def _(x: Tensor, gm: Tensor, gmax: Tensor, argc: Tensor) -> Tensor:
    return _new(x, *x.shape[:2], dtype=torch.float32)


# Autograd: full-size gradients as elementwise PyTorch (fused by the compiler), sums by the ops above ----


def _positions(x: Tensor, index: Tensor, axis: int) -> Tensor:
    """Boolean (N, C, H, W) mask of ``index``: positions (N, C) for ``axis=2``, channels (N, H*W) for ``axis=1``."""
    n, c, h, w = x.shape
    if axis == 2:
        return torch.arange(h * w, device=x.device).view(1, 1, h, w) == index.view(n, c, 1, 1)
    return torch.arange(c, device=x.device).view(1, c, 1, 1) == index.view(n, 1, h, w)


def _save_x(ctx, inputs, output) -> None:
    ctx.save_for_backward(inputs[0])


def _save_pool_hw(ctx, inputs, output) -> None:
    ctx.save_for_backward(inputs[0], output[2])


def _pool_hw_backward(ctx, gavg: Tensor | None, gmx: Tensor | None, _garg: Tensor | None) -> Tensor:
    x, argp = ctx.saved_tensors
    p = x.shape[2] * x.shape[3]
    gx = torch.zeros_like(x) if gavg is None else (gavg / p)[:, :, None, None].expand_as(x)
    if gmx is not None:
        gx = gx + torch.where(_positions(x, argp, 2), gmx[:, :, None, None], 0)
    return gx.to(x.dtype)


def _avg_hw_backward(ctx, gavg: Tensor) -> Tensor:
    (x,) = ctx.saved_tensors
    return ((gavg / (x.shape[2] * x.shape[3]))[:, :, None, None].expand_as(x)).to(x.dtype)


def _save_pool_c(ctx, inputs, output) -> None:
    ctx.save_for_backward(inputs[0], inputs[1], output[2])


def _pool_c_backward(ctx, gmean: Tensor | None, gmax: Tensor | None, _garg: Tensor | None):
    x, ca, argc = ctx.saved_tensors
    n, c, h, w = x.shape
    gm = torch.zeros((n, 1, h, w), device=x.device) if gmean is None else gmean.float() / c  # (N, 1, H, W)
    gmax = torch.zeros_like(gm) if gmax is None else gmax.float()
    wt = gm + torch.where(_positions(x, argc, 1), gmax, 0)  # (N, C, H, W), d (x * ca)
    gx = (wt * ca.view(n, c, 1, 1)).to(x.dtype)
    gca = torch.ops.attnlab.mean_max_dot(x, gm, gmax, argc).to(ca.dtype)
    return gx, gca


def _save_gate_mul(ctx, inputs, output) -> None:
    x, ca, sa = inputs
    ctx.has_sa = sa is not None
    ctx.save_for_backward(x, ca, *([sa] if sa is not None else []))


def _gate_mul_backward(ctx, g: Tensor):
    x, ca, *rest = ctx.saved_tensors
    n, c = x.shape[:2]
    scale = ca.view(n, c, 1, 1)
    if not ctx.has_sa:
        return (g * scale).to(x.dtype), torch.ops.attnlab.channel_dot(g, x).to(ca.dtype), None
    sa = rest[0]
    gca, gsa = torch.ops.attnlab.gate_dots(g, x, ca, sa)
    return (g * scale * sa).to(x.dtype), gca.to(ca.dtype), gsa.view_as(sa).to(sa.dtype)


pool_hw.register_autograd(_pool_hw_backward, setup_context=_save_pool_hw)
avg_hw.register_autograd(_avg_hw_backward, setup_context=_save_x)
pool_c.register_autograd(_pool_c_backward, setup_context=_save_pool_c)
gate_mul.register_autograd(_gate_mul_backward, setup_context=_save_gate_mul)


# The modules' compiled paths ------------------------------------------------------------------------------


def channel_gate_ops(x: Tensor, gate) -> tuple[Tensor, Tensor]:
    """x * gate(mean_hw(x)) through the custom ops: (out (N, C, H, W), weights (N, C))."""
    w = gate(torch.ops.attnlab.avg_hw(x), None)  # (N, C)
    return torch.ops.attnlab.gate_mul(x, w, None), w


def cbam_ops(x: Tensor, channel_gate, spatial_gate) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """CBAM through the custom ops: (out (N, C, H, W), (Mc (N, C), Ms (N, 1, H, W)))."""
    avg, mx, _ = torch.ops.attnlab.pool_hw(x)
    ca = channel_gate(avg, mx)  # (N, C)
    smean, smax, _ = torch.ops.attnlab.pool_c(x, ca)
    sa = spatial_gate(smean, smax)  # (N, 1, H, W)
    return torch.ops.attnlab.gate_mul(x, ca, sa), (ca, sa)
