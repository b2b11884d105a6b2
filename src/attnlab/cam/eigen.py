"""Principal components of the activations, forward only and class-agnostic: Eigen-CAM and KPCA-CAM.

* Eigen-CAM (Muhammad & Yeasin, IJCNN 2020, https://arxiv.org/abs/2008.00299): the projection of the target
  layer's activations on their first principal component. With A (K, h, w) reshaped to X (hw, K) and centred
  per channel over the positions (Xc = X - mean_ij X, as pytorch-grad-cam does: without centring the first
  component is mostly the mean), L = ReLU(Xc v1) where v1 is Xc's first right singular vector.
* KPCA-CAM (Karmani et al. 2024, https://arxiv.org/abs/2410.00267): the same with kernel PCA, L = ReLU of each
  position's coordinate on the first kernel principal component of the centred positions
  (:func:`~attnlab.cam.projection.kernel_first_component`; pytorch-grad-cam's ``KPCA_CAM``, whose default kernel
  is scikit-learn's sigmoid with gamma = 1 / K).

A component's sign is arbitrary, so it is fixed: the projection correlates positively with the channel-mean
activation map (pytorch-grad-cam leaves the sign to LAPACK / scikit-learn, which can give an inverted map).
No targets, no backward; ``eigen_smooth`` does not apply (the map already is a principal component).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .base import LayerSpec, TargetSpec
from .method import CAMMethod
from .projection import KERNELS, first_component_projection, kernel_first_component

__all__ = ["EigenCAM", "KPCACAM", "first_component_projection"]


class _ComponentCAM(CAMMethod):
    """A class-agnostic map from the activations alone (one forward pass, no backward)."""

    needs_gradients = False
    class_agnostic = True
    eigen_smooth_applies = False

    def _raw_maps(self, x: Tensor, acts: list[Tensor], output: Any,
                  targets: TargetSpec) -> tuple[list[Tensor], Tensor | None]:
        if targets is not None:
            raise ValueError(f"{type(self).__name__} is class-agnostic: it takes no targets (pass targets=None)")
        with torch.no_grad():
            return [self._component(a).clamp_min_(0) for a in acts], None

    def _component(self, a: Tensor) -> Tensor:
        """(N, K, h, w) activations -> (N, h, w) signed projection."""
        raise NotImplementedError


class EigenCAM(_ComponentCAM):
    """Eigen-CAM: the first principal component of the activations (forward only, class-agnostic).

    Example:
        >>> with EigenCAM(model, "layer4") as cam:
        ...     maps = cam(x)
    """

    name = "eigencam"
    needs_gradients = False
    class_agnostic = True
    title = "Eigen-CAM"

    def _component(self, a: Tensor) -> Tensor:
        return first_component_projection(a)


class KPCACAM(_ComponentCAM):
    """KPCA-CAM: the first kernel principal component of the activations (forward only, class-agnostic).

    Args:
        model, target_layer, aug_smooth, channels_last, input_shape: as for :class:`~attnlab.cam.CAMMethod`.
        kernel: "sigmoid" (pytorch-grad-cam's default), "rbf", "poly", "linear" (= Eigen-CAM) or "cosine".
        gamma: kernel coefficient; None is scikit-learn's 1 / K (K = the layer's channels).
        coef0, degree: the sigmoid and poly kernels' offset and the poly kernel's degree (scikit-learn's defaults).

    The kernel matrix is (h w) x (h w) per image: cheap at 7 x 7 or 14 x 14, 78 MB per image at 56 x 56.

    Example:
        >>> with KPCACAM(model, "layer4", kernel="rbf") as cam:
        ...     maps = cam(x)
    """

    name = "kpcacam"
    title = "KPCA-CAM"

    def __init__(self, model: nn.Module, target_layer: LayerSpec | Sequence[LayerSpec] | None = None, *,
                 kernel: str = "sigmoid", gamma: float | None = None, coef0: float = 1.0, degree: int = 3,
                 **options: Any) -> None:
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        if gamma is not None and not gamma > 0:
            raise ValueError(f"gamma must be None or > 0, got {gamma!r}")
        super().__init__(model, target_layer, **options)
        self.kernel, self.gamma, self.coef0, self.degree = kernel, gamma, float(coef0), int(degree)

    def __repr__(self) -> str:
        return (f"KPCACAM(target_layer={self.target_names}, kernel={self.kernel!r}, gamma={self.gamma}"
                f"{self._options_repr()})")

    def _component(self, a: Tensor) -> Tensor:
        return kernel_first_component(a, self.kernel, self.gamma, self.coef0, self.degree)
