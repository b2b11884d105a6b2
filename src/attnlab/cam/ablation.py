"""Ablation-CAM (Desai & Ramaswamy, WACV 2020), https://openaccess.thecvf.com/content_WACV_2020/papers/Desai_Ablation-CAM_Visual_Explanations_for_Deep_Convolutional_Network_via_Gradient-free_Localization_WACV_2020_paper.pdf.

Gradient-free: for a target layer with activations A (N, K, h, w) and target class c with score y_c (the
logit), channel k of the layer's output is set to zero and the rest of the network is run again, giving
y_c^k. The channel's weight is the relative drop of the score (the paper's Eq. 3),

    w_k = (y_c - y_c^k) / y_c,        L = ReLU(sum_k w_k A_k)

(pytorch-grad-cam's ``AblationCAM`` computes the same; it ablates to a large negative value instead of zero
when the layer's activations can be negative, which this class does not: ablation is zero, as in the paper).
An image whose y_c is exactly 0 gets w_k = y_c - y_c^k.

The ablated outputs replace the layer's output through a forward hook, so the layers before the target layer
run again for each ablated copy (as in pytorch-grad-cam; a module's forward cannot be skipped from outside).
All (image, channel) ablations are forwarded in batches of ``batch_size``, mixing images and channels as
Score-CAM does. Exact saving: a channel that is zero everywhere is unchanged by its ablation, so its weight is
0 with no forward. Approximate mode: ``top_k=k`` ablates only the k channels of each image with the largest
mean activation and gives the others weight 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .base import LayerSpec, TargetSpec, resolve_targets
from .method import CAMMethod, check_per_channel_options

__all__ = ["AblationCAM"]


def _row_scores(out: Tensor, classes: Tensor | None, fn: Callable[[Any], Tensor] | None) -> Tensor:
    """Score of each output row (R, classes) for its class (R,), or by the row-wise callable ``fn`` -> (R,)."""
    if fn is not None:
        s = fn(out)
        if not isinstance(s, Tensor) or s.numel() != out.shape[0]:
            raise ValueError("a callable target must return one score per row of the output")
        return s.reshape(-1).float()
    return out.gather(1, classes[:, None]).squeeze(1).float()


class AblationCAM(CAMMethod):
    """Ablation-CAM (gradient-free): channel weights from the score drop when each channel is zeroed.

    Args:
        model: any CNN returning (N, classes) logits (or an output a row-wise callable target reads).
        target_layer: module(s) or dotted name(s), as for :class:`~attnlab.cam.GradCAM`.
        batch_size: ablated copies per forward pass (mixing channels and images).
        top_k: approximate mode: ablate only the k channels with the largest mean activation per image.
        aug_smooth, eigen_smooth, channels_last, input_shape: see :class:`~attnlab.cam.CAMMethod`.

    A callable target is applied to batches of ablated copies' outputs, one row per copy, so it must score
    each row from that row alone.

    Attributes:
        last_forwarded: ablated copies forwarded by the last call.
        last_candidates: channels that needed a score in the last call (images x channels without ``top_k``).

    Example:
        >>> with AblationCAM(model, "layer4", batch_size=128) as cam:
        ...     maps = cam(x, targets=3)
    """

    name = "ablationcam"
    title = "Ablation-CAM"
    needs_gradients = False
    forwards_per_channel = True

    def __init__(self, model: nn.Module, target_layer: LayerSpec | Sequence[LayerSpec] | None = None, *,
                 batch_size: int = 64, top_k: int | None = None, **options: Any) -> None:
        check_per_channel_options(batch_size, top_k)
        super().__init__(model, target_layer, **options)
        self.batch_size = batch_size
        self.top_k = top_k
        self.last_forwarded = 0
        self.last_candidates = 0

    def __repr__(self) -> str:
        return (f"AblationCAM(target_layer={self.target_names}, batch_size={self.batch_size}, top_k={self.top_k}"
                f"{self._options_repr()})")

    def _raw_maps(self, x: Tensor, acts: list[Tensor], output: Any,
                  targets: TargetSpec) -> tuple[list[Tensor], Tensor | None]:
        fn = targets if callable(targets) and not isinstance(targets, Tensor) else None
        scores, classes = resolve_targets(targets, output)
        self.last_forwarded = self.last_candidates = 0
        modules = dict(self.model.named_modules())
        with torch.no_grad():
            base = scores.detach().float()
            maps = [self._layer_map(x, modules[name], a, base, classes, fn)
                    for name, a in zip(self.target_names, acts, strict=True)]
        return maps, classes

    def _channels(self, act: Tensor) -> tuple[Tensor, Tensor]:
        """The (image, channel) pairs to ablate: (R,), (R,); all-zero channels (and, with top_k, others) left out."""
        n, k = act.shape[:2]
        flat = act.flatten(2)  # (N, K, hw)
        include = torch.ones(n, k, dtype=torch.bool, device=act.device)
        if self.top_k is not None and self.top_k < k:
            top = flat.float().mean(2).topk(self.top_k, dim=1).indices  # (N, top_k)
            include = torch.zeros_like(include).scatter_(1, top, True)
        self.last_candidates += int(include.sum())
        return (include & (flat != 0).any(2)).nonzero(as_tuple=True)

    def _ablated_scores(self, x: Tensor, module: nn.Module, act: Tensor, img: Tensor, ch: Tensor,
                        classes: Tensor | None, fn: Callable[[Any], Tensor] | None) -> Tensor:
        """The target score of each image ``img[r]`` with channel ``ch[r]`` of ``module``'s output zeroed: (R,)."""
        scores = torch.empty(img.shape[0], device=x.device)
        for start in range(0, img.shape[0], self.batch_size):
            sl = slice(start, start + self.batch_size)
            ablated = act[img[sl]].clone()  # (B, K, h, w)
            ablated[torch.arange(ablated.shape[0], device=act.device), ch[sl]] = 0
            handle = module.register_forward_hook(lambda _m, _i, _o, a=ablated: a)
            try:
                out = self._run(x[img[sl]])
            finally:
                handle.remove()
            scores[sl] = _row_scores(out, None if classes is None else classes[img[sl]], fn)
            self.last_forwarded += ablated.shape[0]
        return scores

    def _layer_map(self, x: Tensor, module: nn.Module, act: Tensor, base: Tensor, classes: Tensor | None,
                   fn: Callable[[Any], Tensor] | None) -> Tensor:
        img, ch = self._channels(act)
        weights = torch.zeros(act.shape[:2], device=act.device)
        if img.numel():
            y = base[img]
            dropped = self._ablated_scores(x, module, act, img, ch, classes, fn)
            weights[img, ch] = (y - dropped) / torch.where(y != 0, y, torch.ones_like(y))
        a = act.float() if act.dtype in (torch.float16, torch.bfloat16) else act
        return self._reduce(a, weights.to(a.dtype))
