"""The attention the modules themselves applied: spatial masks and channel weights, read via the recording protocol.

Unlike a CAM, which explains a class score after the fact, these are the gates the network multiplied
into its features on this input: CBAM's and BAM's spatial masks M_s (N, 1, h, w), SE/ECA/CBAM channel
weights (N, C), and so on (see :mod:`attnlab.attention.base`).
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attention import AttentionMaps, attention_modules, record_attention
from .base import eval_mode

__all__ = ["capture_attention"]


def capture_attention(model: nn.Module, x: Tensor, *, upsample: bool = False) -> dict[str, AttentionMaps]:
    """Run ``model`` on ``x`` once and return the attention each attention module applied.

    The forward runs without autograd and in eval mode; every module's own ``training`` flag is restored
    afterwards (also after an error) and the modules' previous sinks are put back.

    Args:
        model: a network containing attnlab attention modules (built with ``attnlab.create_attention``).
        x: input batch (N, C, H, W).
        upsample: also bring every spatial map to the input size (bilinear, align_corners=False).

    Returns:
        Dotted module name -> :class:`~attnlab.attention.AttentionMaps` with ``spatial`` (N, 1, h, w) and/or
        ``channel`` (N, C) (and module-specific ``extra`` maps), in ``model.named_modules()`` order; for a
        module called more than once, its last call. A model without attention modules gives an empty dict.

    Example:
        >>> maps = attnlab.capture_attention(model, x)
        >>> maps["layer1.0.attn"].spatial.shape  # (N, 1, h, w)
    """
    if not isinstance(x, Tensor) or x.dim() != 4:
        raise ValueError(f"x must be a (N, C, H, W) tensor, got {getattr(x, 'shape', type(x).__name__)}")
    if not attention_modules(model):
        return {}
    with eval_mode(model), torch.no_grad(), record_attention(model) as records:
        model(x)
    order = [name for name, _ in attention_modules(model)]
    out = {name: records[name] for name in order if name in records}
    if upsample:
        size = tuple(x.shape[-2:])
        out = {name: replace(m, spatial=_resize(m.spatial, size)) for name, m in out.items()}
    return out


def _resize(spatial: Tensor | None, size: tuple[int, int]) -> Tensor | None:
    if spatial is None or tuple(spatial.shape[-2:]) == size:
        return spatial
    return F.interpolate(spatial.float(), size=size, mode="bilinear", align_corners=False).to(spatial.dtype)
