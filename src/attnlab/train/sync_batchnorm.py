"""Synchronised BatchNorm on any backend (gloo on CPU included), so a run on N processes normalises
each layer over the whole global batch and trains the same model as one process on that batch.

``torch.nn.SyncBatchNorm`` only runs on GPUs; :func:`convert_sync_batchnorm` uses it there and
:class:`SyncBatchNorm` (below) elsewhere. Both keep the BatchNorm's parameter and buffer names, so
checkpoints are interchangeable with unsynchronised models.

Example (inside a torchrun job, after ``dist.init_process_group``):
    >>> model = convert_sync_batchnorm(model)   # doctest: +SKIP
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["SyncBatchNorm", "convert_sync_batchnorm"]


def _dims(x: Tensor) -> list[int]:
    return [0, *range(2, x.dim())]


def _shape(x: Tensor) -> list[int]:
    return [1, -1] + [1] * (x.dim() - 2)


def _compute_dtype(x: Tensor) -> torch.dtype:
    """float32 for half types (as cuDNN's BatchNorm), the input's own dtype for float32/float64."""
    return x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32


class _SyncBatchNormFn(torch.autograd.Function):
    """BatchNorm over the union of every rank's batch: statistics and the input gradient's two reductions
    are summed across ``group``; the weight and bias gradients stay local (DDP averages them)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor | None, bias: Tensor | None, running_mean: Tensor | None,
                running_var: Tensor | None, eps: float, momentum: float, group) -> Tensor:
        cdt = _compute_dtype(x)
        xf = x.to(cdt)
        dims, shape = _dims(x), _shape(x)
        stats = torch.cat([xf.sum(dims, dtype=torch.float64),
                           torch.tensor([xf.numel() // xf.shape[1]], dtype=torch.float64, device=x.device)])
        dist.all_reduce(stats, group=group)
        count = stats[-1].item()
        mean = (stats[:-1] / count).to(cdt)
        centred = xf - mean.view(shape)
        sq = centred.square().sum(dims, dtype=torch.float64)
        dist.all_reduce(sq, group=group)
        var = (sq / count).to(cdt)
        invstd = torch.rsqrt(var + eps)
        if running_mean is not None and running_var is not None:
            with torch.no_grad():
                running_mean.mul_(1 - momentum).add_(mean.to(running_mean.dtype), alpha=momentum)
                unbiased = var * (count / max(count - 1, 1))
                running_var.mul_(1 - momentum).add_(unbiased.to(running_var.dtype), alpha=momentum)
        xhat = centred * invstd.view(shape)
        y = xhat
        if weight is not None:
            y = y * weight.to(cdt).view(shape)
        if bias is not None:
            y = y + bias.to(cdt).view(shape)
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.count, ctx.group = count, group
        ctx.has_bias = bias is not None
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        xhat, invstd, weight = ctx.saved_tensors
        g = grad_out.to(xhat.dtype)
        dims, shape = _dims(g), _shape(g)
        sum_dy = g.sum(dims)
        sum_dy_xhat = (g * xhat).sum(dims)
        both = torch.cat([sum_dy, sum_dy_xhat]).double()
        dist.all_reduce(both, group=ctx.group)
        c = sum_dy.numel()
        mean_dy = (both[:c] / ctx.count).to(g.dtype)
        mean_dy_xhat = (both[c:] / ctx.count).to(g.dtype)
        scale = invstd if weight is None else invstd * weight.to(g.dtype)
        grad_x = (g - mean_dy.view(shape) - xhat * mean_dy_xhat.view(shape)) * scale.view(shape)
        grad_w = sum_dy_xhat.to(weight.dtype) if weight is not None and ctx.needs_input_grad[1] else None
        grad_b = sum_dy.to(weight.dtype) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x.to(grad_out.dtype), grad_w, grad_b, None, None, None, None, None


class SyncBatchNorm(_BatchNorm):
    """BatchNorm (any number of spatial dims) whose training statistics span every rank of ``process_group``.

    Input (N, C, *) -> output (N, C, *). In eval mode, or outside a process group of more than one rank,
    it is exactly ``F.batch_norm``. Same parameters and buffers as ``nn.BatchNorm2d``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group=None, device=None, dtype=None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected an input of at least 2 dims (N, C, ...), got shape {tuple(x.shape)}")

    def _world(self) -> int:
        if not (dist.is_available() and dist.is_initialized()):
            return 1
        return dist.get_world_size(self.process_group)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        if not self.training or self._world() == 1:
            return super().forward(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        rm = self.running_mean if self.track_running_stats else None
        rv = self.running_var if self.track_running_stats else None
        return _SyncBatchNormFn.apply(x, self.weight, self.bias, rm, rv, self.eps, momentum,
                                      self.process_group or dist.group.WORLD)


def convert_sync_batchnorm(module: nn.Module, process_group=None) -> nn.Module:
    """Make every BatchNorm in ``module`` synchronised, in place, keeping names, weights, buffers and hooks.

    Each BatchNorm object stays the same object (forward hooks, such as those of ``attnlab.attach``, keep
    working); its class becomes ``torch.nn.SyncBatchNorm`` (fused kernels) on CUDA models and
    :class:`SyncBatchNorm` elsewhere. Returns ``module``.

    Raises:
        TypeError: a BatchNorm subclass other than the stock BatchNorm1d/2d/3d (its own forward would be lost).
    """
    target = nn.SyncBatchNorm if any(t.is_cuda for t in module.parameters()) else SyncBatchNorm
    for m in module.modules():
        if isinstance(m, _BatchNorm) and not isinstance(m, SyncBatchNorm | nn.SyncBatchNorm):
            if type(m) not in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d):
                raise TypeError(f"cannot synchronise {type(m).__name__}: only the stock BatchNorm1d/2d/3d are "
                                "converted; train with --no-sync-bn or convert it yourself")
            m.__class__ = target
            m.process_group = process_group
    return module
