"""Eigen-CAM (Muhammad & Yeasin, IJCNN 2020), https://arxiv.org/abs/2008.00299.

The map is the projection of the target layer's activations on their first principal component: with
A (K, h, w) reshaped to X (hw, K) and centred per channel over the positions (Xc = X - mean_ij X, as
pytorch-grad-cam does: without centring the first component is mostly the mean), L = ReLU(Xc v1) where
v1 is Xc's first right singular vector. A singular vector's sign is arbitrary, so it is fixed here:
the projection is made to correlate positively with the channel-mean activation map (pytorch-grad-cam
leaves the sign to LAPACK, which can give an inverted map). Class-agnostic: no targets, no backward.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import TargetSpec, _CAMBase

__all__ = ["EigenCAM", "first_component_projection"]


def first_component_projection(act: Tensor) -> Tensor:
    """Projection of each position on the first principal component of the channels, sign-fixed.

    (N, K, h, w) -> (N, h, w), equal to ``Xc @ V[:, 0]`` of ``torch.linalg.svd(Xc)`` up to sign. Computed
    from the eigen-decomposition of the smaller of the two Gram matrices, in float64.
    """
    n, k, h, w = act.shape
    x = act.flatten(2).transpose(1, 2).double()  # (N, hw, K)
    xc = x - x.mean(1, keepdim=True)
    if h * w <= k:
        evals, evecs = torch.linalg.eigh(xc @ xc.mT)  # (N, hw), (N, hw, hw), ascending
        proj = evecs[..., -1] * evals[..., -1:].clamp_min(0).sqrt()  # s1 * u1 = Xc v1, up to sign
    else:
        _, evecs = torch.linalg.eigh(xc.mT @ xc)  # (N, K, K)
        proj = (xc @ evecs[..., -1:]).squeeze(-1)  # (N, hw)
    ref = x.mean(2)  # (N, hw) channel-mean map
    sign = torch.sign((proj * (ref - ref.mean(1, keepdim=True))).sum(1, keepdim=True))
    proj = proj * torch.where(sign == 0, torch.ones_like(sign), sign)
    return proj.reshape(n, h, w).to(act.dtype if act.is_floating_point() else torch.float32)


class EigenCAM(_CAMBase):
    """Eigen-CAM: the first principal component of the activations (forward only, class-agnostic).

    Example:
        >>> with EigenCAM(model, "layer4") as cam:
        ...     maps = cam(x)
    """

    name = "eigencam"
    needs_gradients = False
    class_agnostic = True

    def _raw_maps(self, x: Tensor, acts: list[Tensor], output: Any,
                  targets: TargetSpec) -> tuple[list[Tensor], Tensor | None]:
        if targets is not None:
            raise ValueError("EigenCAM is class-agnostic: it takes no targets (pass targets=None)")
        with torch.no_grad():
            return [first_component_projection(a).clamp_min_(0) for a in acts], None
