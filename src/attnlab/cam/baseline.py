"""A random-map baseline for the faithfulness and localisation metrics: what a method must beat.

pytorch-grad-cam's ``RandomCAM``: the activations weighted by random channel weights drawn uniformly in
[-1, 1], L = ReLU(sum_k w_k A_k). The map follows the layer's activation pattern but none of the network's
decision; a metric that cannot tell a method from this baseline says little. The weights are drawn from a
generator seeded with ``seed`` at every call, so the same batch gives the same maps (``seed=None``: fresh
weights at every call, as pytorch-grad-cam). Forward only: no gradients are computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .base import LayerSpec, TargetSpec, resolve_targets
from .method import CAMMethod

__all__ = ["RandomCAM"]


class RandomCAM(CAMMethod):
    """Random channel weights in [-1, 1] on the target layer's activations (a baseline).

    Args:
        model, target_layer, aug_smooth, eigen_smooth, channels_last, input_shape: see
            :class:`~attnlab.cam.CAMMethod`.
        seed: the weights' generator seed, reset at every call (reproducible maps); None draws fresh weights
            from torch's global generator at every call.

    Targets are checked and reported in :meth:`compute`'s ``classes`` like any method's, but the map does not
    depend on them.

    Example:
        >>> with RandomCAM(model, "layer4") as cam:
        ...     baseline = cam(x)
    """

    name = "randomcam"
    title = "Random baseline"
    needs_gradients = False

    def __init__(self, model: nn.Module, target_layer: LayerSpec | Sequence[LayerSpec] | None = None, *,
                 seed: int | None = 0, **options: Any) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        super().__init__(model, target_layer, **options)
        self.seed = seed

    def __repr__(self) -> str:
        return f"RandomCAM(target_layer={self.target_names}, seed={self.seed}{self._options_repr()})"

    def _raw_maps(self, x: Tensor, acts: list[Tensor], output: Any,
                  targets: TargetSpec) -> tuple[list[Tensor], Tensor | None]:
        classes = resolve_targets(targets, output)[1]
        gen = None if self.seed is None else torch.Generator().manual_seed(self.seed)
        maps = []
        with torch.no_grad():
            for a in acts:
                w = torch.rand(a.shape[:2], generator=gen, dtype=torch.float64) * 2 - 1  # (N, K) in [-1, 1)
                a = a.float() if a.dtype in (torch.float16, torch.bfloat16) else a
                maps.append(self._reduce(a, w.to(device=a.device, dtype=a.dtype)))
        return maps, classes
