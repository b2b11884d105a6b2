"""Tensor helpers shared by the BAM, Non-Local, GC, Coordinate, SimAM, Triplet and scSE modules.

* :func:`batch_norm`: a BatchNorm call that also works on one value per channel in training mode
  (torch raises there), so these modules accept a batch of one, and 1x1 maps, while training.
* :func:`sum_like`: the sum of small broadcastable maps ((N, C, 1, 1), (N, 1, H, W), (N, C, 1, W), ...)
  as one full (N, C, H, W) tensor laid out like the input (NCHW or channels_last), so that the final
  ``x * att`` reads both operands in the same order and keeps the input's memory format.
* :func:`layout_like`: a small broadcast gate stored in the input's layout, so ``x * gate`` is fast.
* :func:`reduce_dim`: mean / amax over one of C, H, W, fast for channels_last inputs too.
* :func:`gate_`: a gating activation applied in place where that is safe (the default sigmoid).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._layers import apply_act

__all__ = ["batch_norm", "is_channels_last", "layout_like", "reduce_dim", "sum_like", "gate_"]


def batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: Tensor) -> Tensor:
    """``bn(x)``, except on a single value per channel in training mode.

    torch's BatchNorm raises in training mode when each channel holds one value (a batch of one
    through a pooled MLP, or a 1x1 map with batch size one): batch statistics do not exist there.
    This normalises such an input with the running statistics instead, without updating them
    (the batch carries no variance information), i.e. exactly what eval mode would do.

    Args:
        bn: a BatchNorm module (1d or 2d) with running statistics.
        x: its input, (N, C) or (N, C, ...).
    """
    if bn.training and bn.running_mean is not None and x.numel() == x.shape[1]:
        return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    return bn(x)


def is_channels_last(x: Tensor) -> bool:
    """True when the (N, C, H, W) tensor is stored channels_last and not also NCHW-contiguous."""
    return not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def layout_like(x: Tensor, t: Tensor) -> Tensor:
    """A small tensor ``t`` broadcastable to (N, C, H, W), made contiguous in ``x``'s layout (a cheap copy).

    ``x * t`` runs several times slower on CPU when ``t``'s non-broadcast dims are ordered unlike
    ``x``'s (e.g. an (N, C, H, 1) gate stored H-fastest against a channels_last ``x``).
    """
    if is_channels_last(x):
        return t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # stored (N, H, W, C)
    return t.contiguous()


def sum_like(x: Tensor, *terms: Tensor) -> Tensor:
    """The sum of maps broadcastable to ``x.shape``, as a full tensor in ``x``'s memory format.

    The terms are small (each has size 1 in at least one of C, H, W); they are made contiguous in
    the target layout (cheap) so that the result's layout is decided by them and not left to
    torch's default (NCHW), which would make ``x * sum`` read a channels_last ``x`` and an NCHW
    ``sum`` in different orders and return channels_last only by accident.

    Args:
        x: the (N, C, H, W) tensor whose layout the result takes.
        *terms: two or more tensors broadcastable to (N, C, H, W).

    Returns:
        (N, C, H, W) tensor, channels_last if ``x`` is.
    """
    if is_channels_last(x):
        # Work in the (N, H, W, C) view, where channels_last is plain contiguous: (N, C, H, W) -> (N, H, W, C).
        ts = [t.permute(0, 2, 3, 1).contiguous() for t in terms]
        out = ts[0] + ts[1]
        for t in ts[2:]:
            out = out.add_(t)
        return out.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W), channels_last strides
    ts = [t.contiguous() for t in terms]
    out = ts[0] + ts[1]
    for t in ts[2:]:
        out = out.add_(t)
    return out


_NHWC_DIM = {1: 3, 2: 1, 3: 2}  # a dim of (N, C, H, W) -> the same dim in the (N, H, W, C) view


def reduce_dim(x: Tensor, op: str, dim: int) -> Tensor:
    """``x.mean(dim)`` or ``x.amax(dim)`` of an (N, C, H, W) tensor over one of C, H, W, fast in both layouts.

    On a channels_last tensor torch's CPU reductions over one dim are up to 20x slower when asked on
    the NCHW-shaped tensor than on its contiguous (N, H, W, C) view (same memory, same result), so
    this reduces the view and returns the result as a (transposed, small) view in NCHW order.

    Args:
        x: (N, C, H, W).
        op: ``"mean"`` or ``"amax"``.
        dim: 1, 2 or 3.

    Returns:
        (N, H, W), (N, C, W) or (N, C, H) for ``dim`` = 1, 2, 3.
    """
    if is_channels_last(x):
        r = getattr(x.permute(0, 2, 3, 1), op)(_NHWC_DIM[dim])  # (N, H, W, C) view -> (N, H, W) / (N, W, C) / (N, H, C)
        return r if dim == 1 else r.transpose(1, 2)  # -> (N, H, W) / (N, C, W) / (N, C, H)
    return getattr(x, op)(dim)


def gate_(gate: nn.Module, t: Tensor) -> Tensor:
    """Apply a gate to a fresh tensor, in place for the default sigmoid (whose backward needs only its output)."""
    if type(gate) is nn.Sigmoid:
        return t.sigmoid_()
    return apply_act(gate, t)
