"""Score-CAM: Score-Weighted Visual Explanations for CNNs (Wang et al., CVPR-W 2020), https://arxiv.org/abs/1910.01279.

Algorithm 1 of the paper, for a target layer with activations A (N, K, h, w) and target class c:

1. each channel A_k is min-max normalised to a mask in [0, 1] and upsampled to the input size;
2. the masked input M_k = mask_k * X is forwarded; S_k = f_c(M_k) - f_c(X_b) is the increase of the
   class-c *logit* over a baseline;
3. alpha_k = softmax_k(S_k) (over the channels); L = ReLU(sum_k alpha_k A_k).

``score="logit"`` (the default) is exactly that, and is what torchcam's ``ScoreCAM`` computes (it
normalises each channel at the layer's resolution, adding 1e-8 to the range, then upsamples
bilinearly; so does this class, and its maps equal torchcam's). The baseline term is the same for
every channel of an image, and a softmax does not change when all its inputs shift together, so it
drops out and no baseline forward is needed. ``score="probability"`` is the authors' released code
instead: alpha_k = softmax(f(M_k))_c, the class probability of each masked input, used as the weight
directly.

Exact savings (the maps are the same as without them):

* a channel whose activation map is constant normalises to an all-zero mask, so its masked input is
  the zero image whatever the image; all such channels of all images share one forward of one zero
  image (after a ReLU many channels are identically zero);
* channels of one image with identical masks share one forward (``dedupe=True``).

The remaining masked inputs of all images and channels are forwarded in batches of ``batch_size``.

Approximate mode: ``top_k=k`` scores only the k channels of each image with the largest mean
activation and gives the others weight 0; ``benchmarks/cam.py`` reports its error against the exact maps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import LayerSpec, TargetSpec, check_finite, resolve_targets
from .method import CAMMethod, check_per_channel_options

__all__ = ["ScoreCAM", "SCORES"]

SCORES = ("logit", "probability")


class ScoreCAM(CAMMethod):
    """Score-CAM (gradient-free): channel weights from the target score of each channel-masked input.

    Args:
        model: any CNN returning (N, classes) logits (or output a row-wise callable target reads).
        target_layer: module(s) or dotted name(s), as for :class:`~attnlab.cam.GradCAM`.
        batch_size: masked inputs per forward pass (mixing channels and images).
        score: "logit" (Algorithm 1 and torchcam: softmax over channels of the class logit) or "probability"
            (the authors' code: the class's softmax probability as the weight).
        top_k: approximate mode: score only the k channels with the largest mean activation per image.
        dedupe: forward each distinct mask of an image once (exact; costs one sort of the masks).
        aug_smooth, eigen_smooth, channels_last, input_shape: see :class:`~attnlab.cam.CAMMethod`.

    A callable target is applied to batches of masked inputs' outputs, one row per masked input (with
    ``score="probability"`` it receives softmax probabilities), so it must score each row from that row
    alone.

    Attributes:
        last_forwarded: masked inputs forwarded by the last call (the shared zero image counted once).
        last_candidates: channels that needed a score in the last call (what a naive Score-CAM forwards).

    Example:
        >>> with ScoreCAM(model, "layer4", batch_size=64) as cam:
        ...     maps = cam(x, targets=3)
    """

    name = "scorecam"
    title = "Score-CAM"
    needs_gradients = False
    forwards_per_channel = True

    def __init__(self, model: nn.Module, target_layer: LayerSpec | Sequence[LayerSpec] | None = None, *,
                 batch_size: int = 64, score: str = "logit", top_k: int | None = None, dedupe: bool = True,
                 **options: Any) -> None:
        check_per_channel_options(batch_size, top_k)
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        super().__init__(model, target_layer, **options)
        self.batch_size = batch_size
        self.score = score
        self.top_k = top_k
        self.dedupe = bool(dedupe)
        self.last_forwarded = 0
        self.last_candidates = 0

    def __repr__(self) -> str:
        return (f"ScoreCAM(target_layer={self.target_names}, batch_size={self.batch_size}, score={self.score!r}, "
                f"top_k={self.top_k}, dedupe={self.dedupe}{self._options_repr()})")

    def _raw_maps(self, x: Tensor, acts: list[Tensor], output: Any,
                  targets: TargetSpec) -> tuple[list[Tensor], Tensor | None]:
        fn: Callable[[Any], Tensor] | None = None
        classes = None
        if callable(targets) and not isinstance(targets, Tensor):
            fn = targets
            resolve_targets(targets, output)  # validate once on the real output
        else:
            classes = resolve_targets(targets, output)[1]
        self.last_forwarded = self.last_candidates = 0
        with torch.no_grad():
            return [self._layer_map(x, a, classes, fn) for a in acts], classes

    # -- scoring ---------------------------------------------------------------------------------------------
    def _scores(self, out: Tensor, rows_image: Tensor, classes: Tensor | None,
                fn: Callable[[Any], Tensor] | None) -> Tensor:
        """Score of each output row for the target of the image it came from: (R, classes) -> (R,)."""
        if self.score == "probability":
            out = out.float().softmax(1)
        if fn is not None:
            s = fn(out)
            if not isinstance(s, Tensor) or s.numel() != out.shape[0]:
                raise ValueError("a callable target must return one score per row of the output")
            return s.reshape(-1).float()
        return out.gather(1, classes[rows_image][:, None]).squeeze(1).float()

    def _forward_masked(self, x: Tensor, rows_image: Tensor, masks: Tensor, classes: Tensor | None,
                        fn: Callable[[Any], Tensor] | None) -> Tensor:
        """Scores of x[rows_image] * upsample(masks), in batches: (R,), (R, 1, h, w) -> (R,)."""
        size = x.shape[-2:]
        scores = torch.empty(masks.shape[0], device=x.device)
        for start in range(0, masks.shape[0], self.batch_size):
            sl = slice(start, start + self.batch_size)
            m = masks[sl]
            if m.shape[-2:] != size:
                m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)  # (B, 1, H, W)
            inp = x[rows_image[sl]] * m.to(x.dtype)  # (B, C, H, W)
            scores[sl] = self._scores(self._run(inp), rows_image[sl], classes, fn)
            self.last_forwarded += inp.shape[0]
        return scores

    def _layer_map(self, x: Tensor, act: Tensor, classes: Tensor | None,
                   fn: Callable[[Any], Tensor] | None) -> Tensor:
        n, k, h, w = act.shape
        a = act.float() if act.dtype in (torch.float16, torch.bfloat16) else act
        flat = a.flatten(2)  # (N, K, hw)
        lo = flat.amin(2, keepdim=True)
        rng = flat.amax(2, keepdim=True) - lo
        masks = (flat - lo) / (rng + 1e-8)  # (N, K, hw), torchcam's normalisation
        constant = rng.squeeze(2) == 0  # (N, K): the mask is all zeros -> the masked input is the zero image
        include = torch.ones(n, k, dtype=torch.bool, device=a.device)
        if self.top_k is not None and self.top_k < k:
            top = flat.mean(2).topk(self.top_k, dim=1).indices  # (N, top_k)
            include = torch.zeros_like(include).scatter_(1, top, True)
        self.last_candidates += int(include.sum())
        scores = torch.zeros(n, k, device=a.device)

        todo = include & ~constant
        img, ch = todo.nonzero(as_tuple=True)  # (R,), (R,)
        if img.numel():
            rows = masks[img, ch]  # (R, hw)
            if self.dedupe:
                key = torch.cat([img[:, None].to(rows.dtype), rows], 1)  # (R, 1 + hw)
                uniq, inverse = torch.unique(key, dim=0, return_inverse=True)
                u_img, u_rows = uniq[:, 0].long(), uniq[:, 1:]
            else:
                inverse, u_img, u_rows = None, img, rows
            s = self._forward_masked(x, u_img, u_rows.reshape(-1, 1, h, w), classes, fn)
            scores[img, ch] = s if inverse is None else s[inverse]

        shared = include & constant
        if shared.any():
            zero = torch.zeros((1, *x.shape[1:]), device=x.device, dtype=x.dtype)
            out0 = self._run(zero)  # (1, classes)
            self.last_forwarded += 1
            rows_image = torch.arange(n, device=x.device)
            s0 = self._scores(out0.expand(n, *out0.shape[1:]), rows_image, classes, fn)  # (N,)
            scores = torch.where(shared, s0[:, None], scores)

        check_finite(scores, "the scores of the masked inputs (image x channel)",
                     "the model's output is NaN or inf on masked copies of this input")
        if self.score == "logit":
            weights = scores.masked_fill(~include, float("-inf")).softmax(1)  # (N, K)
        else:
            weights = scores.masked_fill(~include, 0.0)
        return self._reduce(a, weights.to(a.dtype))
