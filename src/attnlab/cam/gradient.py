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
* Grad-CAM element-wise (pytorch-grad-cam's ``GradCAMElementWise``, HiResCAM with a ReLU inside the sum):
  L = sum_k ReLU(G_k * A_k).
* Layer-CAM (Jiang et al., IEEE TIP 2021, https://mmcheng.net/mftp/Papers/21TIP_LayerCAM.pdf):
  L = ReLU(sum_k ReLU(G_k) * A_k).
* Eigen-Grad-CAM (pytorch-grad-cam's ``EigenGradCAM``: Eigen-CAM, https://arxiv.org/abs/2008.00299, on the
  gradient-weighted activations): L = ReLU of the projection of G * A on its first principal component
  (positions as samples, channels as features, centred), the sign fixed to agree with sum_k G_k * A_k.

Every member but Eigen-Grad-CAM takes ``eigen_smooth`` (the first principal component of the weighted
activations w * A instead of their channel sum) and all take ``aug_smooth`` (see :mod:`attnlab.cam.method`).
The channel or per-position weights of each method are the pure functions of :data:`WEIGHTS`, which
Finer-CAM reuses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .base import LayerSpec, TargetSpec, check_finite, resolve_targets
from .method import CAMMethod
from .projection import first_component_projection

__all__ = ["WEIGHTS", "EigenGradCAM", "GradCAM", "GradCAMElementWise", "GradCAMPlusPlus", "HiResCAM", "LayerCAM",
           "XGradCAM"]


# ----------------------------------------------------------------------------------------------------------------
# Weights: (A, G) (N, K, h, w) -> channel weights (N, K) or per-position weights (N, K, h, w)


def gradcam_weights(a: Tensor, g: Tensor) -> Tensor:
    """Grad-CAM: w_k = mean_ij G_k(i, j) -> (N, K)."""
    return g.mean((2, 3))


def gradcampp_weights(a: Tensor, g: Tensor, eps: float = 1e-6) -> Tensor:
    """Grad-CAM++ (pytorch-grad-cam's closed form): w_k = sum_ij alpha_k(i, j) ReLU(G_k(i, j)) -> (N, K)."""
    g2 = g * g
    g3 = g2 * g
    denom = 2 * g2 + a.sum((2, 3), keepdim=True) * g3 + eps  # (N, K, h, w)
    alpha = torch.where((g != 0) & (denom != 0), g2 / torch.where(denom != 0, denom, 1), 0)
    return (alpha * g.clamp_min(0)).sum((2, 3))


def xgradcam_weights(a: Tensor, g: Tensor, eps: float = 1e-8) -> Tensor:
    """XGrad-CAM: w_k = sum_ij G_k A_k / (sum_ij A_k + eps) -> (N, K)."""
    return (g * a).sum((2, 3)) / (a.sum((2, 3)) + eps)


def hirescam_weights(a: Tensor, g: Tensor) -> Tensor:
    """HiResCAM: the gradients themselves, per position -> (N, K, h, w)."""
    return g


def elementwise_weights(a: Tensor, g: Tensor) -> Tensor:
    """Grad-CAM element-wise: G where G * A > 0, else 0, so that w * A = ReLU(G * A) -> (N, K, h, w)."""
    return torch.where(g * a > 0, g, torch.zeros_like(g))


def layercam_weights(a: Tensor, g: Tensor) -> Tensor:
    """Layer-CAM: ReLU(G) per position -> (N, K, h, w)."""
    return g.clamp_min(0)


#: registry name -> weight function (A, G) -> (N, K) or (N, K, h, w)
WEIGHTS: dict[str, Callable[..., Tensor]] = {
    "gradcam": gradcam_weights, "gradcampp": gradcampp_weights, "xgradcam": xgradcam_weights,
    "hirescam": hirescam_weights, "gradcamelementwise": elementwise_weights, "layercam": layercam_weights,
}


# ----------------------------------------------------------------------------------------------------------------
# The family


class _GradientCAM(CAMMethod):
    """A method whose map is a function of the activations and their gradients (one forward, one backward)."""

    needs_gradients = True

    def _raw_maps(self, x: Tensor, acts: list[Tensor], output: Any,
                  targets: TargetSpec) -> tuple[list[Tensor], Tensor | None]:
        scores, classes = self._target_scores(targets, output)
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

    def _target_scores(self, targets: TargetSpec, output: Any) -> tuple[Tensor, Tensor | None]:
        """The (N,) scores to differentiate and the (N,) classes explained (None for a callable target)."""
        return resolve_targets(targets, output)

    def _map(self, a: Tensor, g: Tensor) -> Tensor:
        """(N, K, h, w) activations and gradients -> (N, h, w) raw map."""
        return self._reduce(a, self._weights(a, g))

    def _weights(self, a: Tensor, g: Tensor) -> Tensor:
        """Channel weights (N, K) or per-position weights (N, K, h, w)."""
        raise NotImplementedError


def _check_eps(eps: float) -> None:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps < float("inf"):  # NaN too
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")


class GradCAM(_GradientCAM):
    """Grad-CAM: channel weights are the spatial mean of the gradients.

    Example:
        >>> with GradCAM(model, "layer4") as cam:
        ...     maps = cam(x)  # (N, H, W) in [0, 1]
    """

    name = "gradcam"
    title = "Grad-CAM"

    def _weights(self, a: Tensor, g: Tensor) -> Tensor:
        return gradcam_weights(a, g)


class GradCAMPlusPlus(_GradientCAM):
    """Grad-CAM++ in pytorch-grad-cam's closed form (see the module docstring).

    Args:
        model, target_layer, aug_smooth, eigen_smooth, channels_last, input_shape: as for :class:`GradCAM`.
        eps: added to the alpha denominator, 1e-6 as in pytorch-grad-cam. It is not negligible when the
            gradients are small (G^2 comparable to eps); ``eps=0`` gives the exact closed form.
    """

    name = "gradcampp"
    title = "Grad-CAM++"

    def __init__(self, model: nn.Module, target_layer: LayerSpec | Sequence[LayerSpec] | None = None, *,
                 eps: float = 1e-6, **options: Any) -> None:
        _check_eps(eps)
        super().__init__(model, target_layer, **options)
        self.eps = float(eps)

    def _weights(self, a: Tensor, g: Tensor) -> Tensor:
        return gradcampp_weights(a, g, self.eps)


class XGradCAM(_GradientCAM):
    """XGrad-CAM: gradients weighted by the normalised activations.

    Args:
        model, target_layer, aug_smooth, eigen_smooth, channels_last, input_shape: as for :class:`GradCAM`.
        eps: added to the per-channel activation sum (1e-8, as torchcam).
    """

    name = "xgradcam"
    title = "XGrad-CAM"

    def __init__(self, model: nn.Module, target_layer: LayerSpec | Sequence[LayerSpec] | None = None, *,
                 eps: float = 1e-8, **options: Any) -> None:
        _check_eps(eps)
        super().__init__(model, target_layer, **options)
        self.eps = float(eps)

    def _weights(self, a: Tensor, g: Tensor) -> Tensor:
        return xgradcam_weights(a, g, self.eps)


class HiResCAM(_GradientCAM):
    """HiResCAM: the element-wise product of gradients and activations, summed over channels."""

    name = "hirescam"
    title = "HiResCAM"

    def _weights(self, a: Tensor, g: Tensor) -> Tensor:
        return hirescam_weights(a, g)


class GradCAMElementWise(_GradientCAM):
    """Grad-CAM element-wise (pytorch-grad-cam): sum_k ReLU(G_k * A_k), the ReLU inside the channel sum.

    Example:
        >>> with GradCAMElementWise(model, "layer4") as cam:
        ...     maps = cam(x)
    """

    name = "gradcamelementwise"
    title = "Grad-CAM element-wise"

    def _weights(self, a: Tensor, g: Tensor) -> Tensor:
        return elementwise_weights(a, g)


class LayerCAM(_GradientCAM):
    """Layer-CAM: positive gradients weight each activation position."""

    name = "layercam"
    title = "LayerCAM"

    def _weights(self, a: Tensor, g: Tensor) -> Tensor:
        return layercam_weights(a, g)


class EigenGradCAM(_GradientCAM):
    """Eigen-Grad-CAM (pytorch-grad-cam): the first principal component of G * A (class-specific Eigen-CAM).

    ``eigen_smooth`` does not apply (the map already is a principal component).

    Example:
        >>> with EigenGradCAM(model, "layer4") as cam:
        ...     maps = cam(x, targets=3)
    """

    name = "eigengradcam"
    title = "Eigen-Grad-CAM"
    eigen_smooth_applies = False

    def _map(self, a: Tensor, g: Tensor) -> Tensor:
        return first_component_projection(g * a).clamp_min_(0)
