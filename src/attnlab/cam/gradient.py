"""The gradient CAM family: one forward and one backward per batch, maps from activations A and gradients G.

For a target score y (a logit by default) and a target layer's activations A (N, K, h, w) with
G = dy/dA:

* Grad-CAM (Selvaraju et al., ICCV 2017, https://arxiv.org/abs/1610.02391):
  w_k = mean_ij G_k(i, j); L = ReLU(sum_k w_k A_k).
* Grad-CAM++ (Chattopadhay et al., WACV 2018, https://arxiv.org/abs/1710.11063), Eq. 19 in the closed
  form pytorch-grad-cam uses: alpha_k(i, j) = G^2 / (2 G^2 + (sum_ab A_k(a, b)) G^3 + eps), zero where
  G = 0; w_k = sum_ij alpha_k(i, j) ReLU(G_k(i, j)); L = ReLU(sum_k w_k A_k).
* XGrad-CAM (Fu et al., BMVC 2020, https://arxiv.org/abs/2008.02312):
  w_k = sum_ij G_k(i, j) A_k(i, j) / (sum_ij A_k(i, j) + eps); L = ReLU(sum_k w_k A_k).
* HiResCAM (Draelos & Carin, 2020, https://arxiv.org/abs/2011.08891): L = ReLU(sum_k G_k * A_k).
* Layer-CAM (Jiang et al., IEEE TIP 2021, https://mmcheng.net/mftp/Papers/21TIP_LayerCAM.pdf):
  L = ReLU(sum_k ReLU(G_k) * A_k).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .base import LayerSpec, TargetSpec, _CAMBase, check_finite, resolve_targets

__all__ = ["GradCAM", "GradCAMPlusPlus", "XGradCAM", "HiResCAM", "LayerCAM"]


class _GradientCAM(_CAMBase):
    """A method whose map is a function of the activations and their gradients (one forward, one backward)."""

    needs_gradients = True

    def _raw_maps(self, x: Tensor, acts: list[Tensor], output: Any,
                  targets: TargetSpec) -> tuple[list[Tensor], Tensor | None]:
        scores, classes = resolve_targets(targets, output)
        check_finite(scores.detach(), "the target score", "the model's output is NaN or inf on this input")
        if not scores.requires_grad:
            raise RuntimeError("the target score does not depend on the target layers (no autograd graph); "
                               "check that the target layers come before the output")
        grads = torch.autograd.grad(scores.sum(), acts, allow_unused=True)
        for name, g in zip(self.target_names, grads, strict=True):
            if g is None:
                raise RuntimeError(f"the target score does not depend on target layer {name!r}")
            check_finite(g, f"the gradient of the target score at layer {name!r}",
                         "the model's weights hold NaN/inf, or the backward overflows (run it in float32)")
        with torch.no_grad():
            return [self._map(a.detach(), g) for a, g in zip(acts, grads, strict=True)], classes

    def _map(self, a: Tensor, g: Tensor) -> Tensor:
        """(N, K, h, w) activations and gradients -> (N, h, w) raw map."""
        raise NotImplementedError


def _check_eps(eps: float) -> None:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps < float("inf"):  # NaN too
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")


def _weighted_sum(w: Tensor, a: Tensor) -> Tensor:
    """ReLU(sum_k w_k A_k): (N, K) x (N, K, h, w) -> (N, h, w)."""
    return torch.einsum("nk,nkhw->nhw", w, a).clamp_min_(0)


class GradCAM(_GradientCAM):
    """Grad-CAM: channel weights are the spatial mean of the gradients.

    Example:
        >>> with GradCAM(model, "layer4") as cam:
        ...     maps = cam(x)  # (N, H, W) in [0, 1]
    """

    name = "gradcam"

    def _map(self, a: Tensor, g: Tensor) -> Tensor:
        return _weighted_sum(g.mean((2, 3)), a)


class GradCAMPlusPlus(_GradientCAM):
    """Grad-CAM++ in pytorch-grad-cam's closed form (see the module docstring).

    Args:
        model, target_layer, channels_last, input_shape: as for :class:`GradCAM`.
        eps: added to the alpha denominator, 1e-6 as in pytorch-grad-cam. It is not negligible when the
            gradients are small (G^2 comparable to eps); ``eps=0`` gives the exact closed form.
    """

    name = "gradcampp"

    def __init__(self, model: nn.Module, target_layer: LayerSpec | list[LayerSpec] | None = None, *,
                 eps: float = 1e-6, channels_last: bool | None = None,
                 input_shape: tuple[int, ...] | None = None) -> None:
        _check_eps(eps)
        super().__init__(model, target_layer, channels_last=channels_last, input_shape=input_shape)
        self.eps = float(eps)

    def _map(self, a: Tensor, g: Tensor) -> Tensor:
        g2 = g * g
        g3 = g2 * g
        denom = 2 * g2 + a.sum((2, 3), keepdim=True) * g3 + self.eps  # (N, K, h, w)
        alpha = torch.where((g != 0) & (denom != 0), g2 / torch.where(denom != 0, denom, 1), 0)
        return _weighted_sum((alpha * g.clamp_min(0)).sum((2, 3)), a)


class XGradCAM(_GradientCAM):
    """XGrad-CAM: gradients weighted by the normalised activations.

    Args:
        model, target_layer, channels_last, input_shape: as for :class:`GradCAM`.
        eps: added to the per-channel activation sum (1e-8, as torchcam).
    """

    name = "xgradcam"

    def __init__(self, model: nn.Module, target_layer: LayerSpec | list[LayerSpec] | None = None, *,
                 eps: float = 1e-8, channels_last: bool | None = None,
                 input_shape: tuple[int, ...] | None = None) -> None:
        _check_eps(eps)
        super().__init__(model, target_layer, channels_last=channels_last, input_shape=input_shape)
        self.eps = float(eps)

    def _map(self, a: Tensor, g: Tensor) -> Tensor:
        w = (g * a).sum((2, 3)) / (a.sum((2, 3)) + self.eps)
        return _weighted_sum(w, a)


class HiResCAM(_GradientCAM):
    """HiResCAM: the element-wise product of gradients and activations, summed over channels."""

    name = "hirescam"

    def _map(self, a: Tensor, g: Tensor) -> Tensor:
        return (g * a).sum(1).clamp_min_(0)


class LayerCAM(_GradientCAM):
    """Layer-CAM: positive gradients weight each activation position."""

    name = "layercam"

    def _map(self, a: Tensor, g: Tensor) -> Tensor:
        return (g.clamp_min(0) * a).sum(1).clamp_min_(0)
