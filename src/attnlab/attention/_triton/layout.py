"""How the kernels see a tensor (N, C, H, W): as (N, C, P), P = H * W, through three strides.

Triton-free (the custom ops' fake implementations allocate their results with :func:`out_like` too, so
that a compiled graph and the kernels agree on every output's strides).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["mergeable", "readable", "out_like"]


def mergeable(t: Tensor) -> tuple[int, int, int] | None:
    """Strides (s_n, s_c, s_p) of ``t`` (N, C, H, W) read as (N, C, P), or None when H and W do not merge."""
    _, _, h, w = t.shape
    sn, sc, sh, sw = t.stride()
    if h == 1:
        return sn, sc, sw
    if w == 1 or sh == w * sw:
        return sn, sc, sh if w == 1 else sw
    return None


def readable(t: Tensor) -> tuple[Tensor, tuple[int, int, int]]:
    """``t`` (N, C, H, W) and its (s_n, s_c, s_p), copied first when H and W do not merge.

    The copy keeps a channels_last tensor channels_last (``preserve_format``); any other layout becomes NCHW.
    """
    strides = mergeable(t)
    if strides is None:
        t = t.clone(memory_format=torch.preserve_format)
        strides = mergeable(t)
        if strides is None:  # a dense permutation that is neither NCHW nor channels_last
            t = t.contiguous()
            strides = mergeable(t)
    return t, strides


def out_like(x: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """An empty (N, C, H, W) tensor in ``x``'s memory layout where the kernels can write it, else NCHW."""
    out = torch.empty_like(x, dtype=dtype)
    return out if mergeable(out) is not None else torch.empty(x.shape, dtype=out.dtype, device=x.device)
