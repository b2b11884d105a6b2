"""Finer-CAM (Zhang et al., CVPR 2025, "Finer-CAM: Spotting the Difference Reveals Finer Details for Visual
Explanation", https://arxiv.org/abs/2501.11309).

A CAM of the target class c explains its logit y_c, which also rises with features shared by similar
classes. Finer-CAM explains the difference to the similar classes instead: the gradient method's target
score is

    s = sum_d p_d (y_c - alpha y_d) / (sum_d p_d + 1e-9)

over comparison classes d, the classes whose logits are closest to y_c (ranks 1, 2, 3 of |y_d - y_c|, rank 0
being c itself), weighted by their softmax probabilities p_d (the authors' ``FinerWeightedTarget``, also
pytorch-grad-cam's), or uniformly (``weighting="uniform"``: their ``FinerDefaultTarget``). ``alpha`` is the
comparison strength: 0 gives the base method's map of y_c, 1 the plain difference. The weights p_d are
constants of the difference (detached): the map is the gradient of the difference of logits; the authors'
code and pytorch-grad-cam also differentiate through the softmax weights, which adds the gradients of every
class's logit scaled by (y_c - alpha y_d) and changes the map when the p_d are not small.

The base method turns activations and gradients into the map: Grad-CAM by default (as the authors),
or any of :data:`~attnlab.cam.gradient.WEIGHTS`. One forward, one backward per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .base import LayerSpec, TargetSpec, resolve_targets
from .gradient import WEIGHTS, _GradientCAM

__all__ = ["FinerCAM", "finer_scores"]

WEIGHTINGS = ("probability", "uniform")


def finer_scores(output: Tensor, classes: Tensor, ranks: Sequence[int] = (1, 2, 3), alpha: float = 1.0,
                 weighting: str = "probability") -> tuple[Tensor, Tensor]:
    """Finer-CAM's target score of each image and its comparison classes.

    Args:
        output: (N, C) logits (with their autograd graph).
        classes: (N,) the class explained in each image.
        ranks: which classes to compare with, by rank of |y_d - y_c| (ascending, ties by class index; rank 0
            is c itself).
        alpha: comparison strength.
        weighting: "probability" (softmax-weighted mean of the differences) or "uniform" (their mean).

    Returns:
        ``(scores (N,), comparisons (N, len(ranks)) long)``.

    Raises:
        ValueError: a rank outside [1, C - 1], no ranks, or an unknown weighting.
    """
    n, c = output.shape
    if not ranks or any(isinstance(r, bool) or not isinstance(r, int) or not 1 <= r < c for r in ranks):
        raise ValueError(f"comparison ranks must be ints in [1, {c - 1}] (the model has {c} classes), got {ranks}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    logits = output.detach().float()
    gap = (logits - logits.gather(1, classes[:, None])).abs()
    gap.scatter_(1, classes[:, None], float("-inf"))  # c itself is rank 0, whatever the ties
    comparisons = torch.sort(gap, dim=1, stable=True).indices[:, list(ranks)]  # (N, R)
    y_c = output.gather(1, classes[:, None])  # (N, 1)
    y_d = output.gather(1, comparisons)  # (N, R)
    if weighting == "probability":
        p = logits.softmax(1).gather(1, comparisons)
        w = p / (p.sum(1, keepdim=True) + 1e-9)
    else:
        w = torch.full(y_d.shape, 1.0 / len(ranks), device=output.device)
    return ((y_c - alpha * y_d) * w.to(output.dtype)).sum(1), comparisons


class FinerCAM(_GradientCAM):
    """Finer-CAM: the base gradient method's map of the target logit minus its most similar classes' logits.

    Args:
        model, target_layer, aug_smooth, eigen_smooth, channels_last, input_shape: see
            :class:`~attnlab.cam.CAMMethod`.
        base: the gradient method that makes the map ("gradcam", "gradcampp", "xgradcam", "hirescam",
            "layercam", "gradcamelementwise").
        alpha: comparison strength (1, the authors' default).
        ranks: the comparison classes by similarity rank (1, 2, 3: the three closest logits, as the authors).
        weighting: "probability" (the authors' softmax-weighted target) or "uniform".

    Targets: None (the predicted class), an int, or N class indices (the class c explained; a callable
    target is refused: use the base method with it).

    Attributes:
        last_comparisons: (N, len(ranks)) the comparison classes of the last call.

    Example:
        >>> with FinerCAM(model, "layer4", alpha=0.6) as cam:
        ...     maps = cam(x)
    """

    name = "finercam"
    title = "Finer-CAM"

    def __init__(self, model: nn.Module, target_layer: LayerSpec | Sequence[LayerSpec] | None = None, *,
                 base: str = "gradcam", alpha: float = 1.0, ranks: Sequence[int] = (1, 2, 3),
                 weighting: str = "probability", **options: Any) -> None:
        if base not in WEIGHTS:
            raise ValueError(f"base must be one of {sorted(WEIGHTS)}, got {base!r}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        if not ranks or any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in ranks):
            raise ValueError(f"ranks must be a non-empty sequence of ints >= 1, got {ranks!r}")
        super().__init__(model, target_layer, **options)
        self.base, self.alpha, self.ranks, self.weighting = base, float(alpha), tuple(ranks), weighting
        self.last_comparisons: Tensor | None = None

    def __repr__(self) -> str:
        return (f"FinerCAM(target_layer={self.target_names}, base={self.base!r}, alpha={self.alpha}, "
                f"ranks={self.ranks}, weighting={self.weighting!r}{self._options_repr()})")

    def _target_scores(self, targets: TargetSpec, output: Any) -> tuple[Tensor, Tensor | None]:
        if callable(targets) and not isinstance(targets, Tensor):
            raise TypeError("FinerCAM builds its own target from class indices; for a custom score use its base "
                            f"method ({self.base!r}) with the callable target")
        classes = resolve_targets(targets, output)[1]
        scores, self.last_comparisons = finer_scores(output, classes, self.ranks, self.alpha, self.weighting)
        return scores, classes

    def _weights(self, a: Tensor, g: Tensor) -> Tensor:
        return WEIGHTS[self.base](a, g)
