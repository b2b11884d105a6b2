"""FullGrad (Srinivas & Fleuret, NeurIPS 2019, "Full-Gradient Representation for Neural Network Visualization",
https://arxiv.org/abs/1905.00780).

For a ReLU network with biases the output decomposes exactly (the full-gradient, Eq. 2 of the paper) as

    y_c = <dy_c/dx, x> + sum_l <dy_c/dz_l, b_l>

over every layer l with a bias b_l added to its output z_l (a convolution's bias, a BatchNorm's effective
bias beta - mu gamma / sqrt(var + eps) in eval mode, a linear layer's bias). The saliency map (Eq. 5) sums
the input-gradient term and each spatial bias-gradient term after a post-processing psi:

    S = psi(dy/dx * x) + sum_l sum_channels psi(dy/dz_l * b_l)

where psi, as the authors' code does, takes the absolute value, min-max normalises each image's tensor over
all its channels and positions (1e-6 added to the range), and upsamples bilinearly (``align_corners=True``) to
the input size; the channels are then summed. The map is S min-max normalised.

The bias layers are the ``Conv2d`` with a bias and the ``BatchNorm2d`` (running statistics) of the model, or
of the modules given as ``target_layer`` (FullGrad restricted to their biases). One forward (recorded from
the input) and one backward per batch. ``eigen_smooth`` replaces the sum over the terms (the input term and
one per layer, each at the input size) by their first principal component (pytorch-grad-cam does this too).
``raw`` holds one entry, ``"fullgrad"``: S before the final normalisation, at the input size; each term is in
``last_terms``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import (
    CAMResult,
    LayerSpec,
    TargetSpec,
    check_finite,
    normalize_maps,
    resolve_target_layers,
    resolve_targets,
)
from .method import CAMMethod
from .projection import first_component_projection

__all__ = ["FullGrad", "bias_layers", "effective_bias", "fullgrad_postprocess"]

BIAS_LAYERS = (nn.Conv2d, nn.BatchNorm2d, nn.SyncBatchNorm)


def effective_bias(module: nn.Module) -> Tensor:
    """The bias a layer adds to its output, per channel (K,): a convolution's bias, or a BatchNorm's eval-mode
    beta - running_mean * gamma / sqrt(running_var + eps) (gamma = 1, beta = 0 without affine parameters)."""
    if isinstance(module, nn.Conv2d):
        return module.bias.detach()
    gamma = module.weight.detach() if module.weight is not None else 1.0
    beta = module.bias.detach() if module.bias is not None else 0.0
    return beta - module.running_mean * gamma / torch.sqrt(module.running_var + module.eps)


def bias_layers(model: nn.Module, target_layer: LayerSpec | Sequence[LayerSpec] | None = None) -> list[str]:
    """Dotted names of the layers with a spatial bias: ``Conv2d`` with a bias, ``BatchNorm2d`` with running statistics.

    In the whole model (``target_layer`` None) or inside the given modules (each module itself included).

    Raises:
        ValueError: a BatchNorm without running statistics (its bias depends on the batch), or no such layer.
    """
    scopes = [""] if target_layer is None else resolve_target_layers(model, target_layer)
    names = []
    for name, m in model.named_modules():
        if not any(s == "" or name == s or name.startswith(s + ".") for s in scopes):
            continue
        if isinstance(m, nn.Conv2d) and m.bias is not None:
            names.append(name)
        elif isinstance(m, BIAS_LAYERS[1:]):
            if m.running_mean is None:
                raise ValueError(f"FullGrad needs running statistics in {name!r} (track_running_stats=False makes "
                                 "its bias depend on the batch)")
            names.append(name)
    if not names:
        where = "the model" if target_layer is None else f"{scopes}"
        raise ValueError(f"FullGrad found no Conv2d with a bias and no BatchNorm2d in {where}; pass target_layer=None "
                         "or modules that contain some")
    return names


def fullgrad_postprocess(t: Tensor, size: Sequence[int], eps: float = 1e-6) -> Tensor:
    """psi of the FullGrad paper, channels summed: |t|, per-image min-max over (C, h, w), bilinear
    (align_corners=True) to ``size``. (N, C, h, w) -> (N, H, W), float32 or wider."""
    t = t.abs()
    t = t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
    flat = t.flatten(1)
    t = t - flat.amin(1)[:, None, None, None]
    t = t / (t.flatten(1).amax(1)[:, None, None, None] + eps)
    summed = t.sum(1)  # channels summed before the (linear) upsampling: the same as after
    if tuple(summed.shape[-2:]) == tuple(size):
        return summed
    return F.interpolate(summed[:, None], size=tuple(size), mode="bilinear", align_corners=True)[:, 0]


class FullGrad(CAMMethod):
    """FullGrad: input-gradient x input plus every spatial bias-gradient x bias, post-processed and summed.

    Args:
        model: any CNN returning (N, classes) logits (or an output a callable target reads).
        target_layer: None (every bias layer of the model, the paper's FullGrad) or modules whose bias layers
            count (the input term always does).
        aug_smooth, eigen_smooth, channels_last, input_shape: see :class:`~attnlab.cam.CAMMethod`.

    Attributes:
        last_terms: after a call, ``"input"`` and each bias layer's name -> its (N, H, W) post-processed term.

    Example:
        >>> with FullGrad(model) as cam:
        ...     maps = cam(x)
    """

    name = "fullgrad"
    title = "FullGrad"
    needs_gradients = True

    def __init__(self, model: nn.Module, target_layer: LayerSpec | Sequence[LayerSpec] | None = None,
                 **options: Any) -> None:
        super().__init__(model, bias_layers(model, target_layer), **options)
        self.hook_handles.append(model.register_forward_pre_hook(self._input_hook))
        self._input: Tensor | None = None
        self._input_term: Tensor | None = None
        self.last_terms: dict[str, Tensor] = {}

    def __repr__(self) -> str:
        return f"FullGrad(bias_layers={len(self.target_names)}{self._options_repr()})"

    def _input_hook(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """While recording: record the whole forward from the input, which becomes a leaf requiring grad."""
        if not self._recording or not args or not isinstance(args[0], Tensor):
            return None
        torch.set_grad_enabled(True)
        self._input = args[0].detach().clone().requires_grad_()  # a copy: the input may be an inference tensor
        return (self._input, *args[1:])

    def _raw_maps(self, x: Tensor, acts: list[Tensor], output: Any,
                  targets: TargetSpec) -> tuple[list[Tensor], Tensor | None]:
        scores, classes = resolve_targets(targets, output)
        check_finite(scores.detach(), "the target score", "the model's output is NaN or inf on this input")
        inp, self._input = self._input, None
        if inp is None or not scores.requires_grad:
            raise RuntimeError("FullGrad: the target score does not depend on the input")
        grads = torch.autograd.grad(scores.sum(), [inp, *acts], allow_unused=True)
        for name, g in zip(["the input", *self.target_names], grads, strict=True):
            if g is not None:
                check_finite(g, f"the gradient of the target score at layer {name!r}",
                             "the model's weights hold NaN/inf, or the backward overflows (run it in float32)")
        modules = dict(self.model.named_modules())
        size = x.shape[-2:]
        with torch.no_grad():
            self._input_term = fullgrad_postprocess(grads[0] * inp.detach(), size)
            terms = []
            for name, a, g in zip(self.target_names, acts, grads[1:], strict=True):
                if g is None:  # a bias layer off the path to the score contributes nothing
                    g = torch.zeros_like(a)
                b = effective_bias(modules[name]).to(g.dtype)
                terms.append(fullgrad_postprocess(g * b[None, :, None, None], size))
        return terms, classes

    def _compute_once(self, x: Tensor, targets: TargetSpec) -> CAMResult:
        try:
            result = super()._compute_once(x, targets)
            terms = {"input": self._input_term, **result.raw}
        finally:
            self._input_term = self._input = None
        stacked = torch.stack(list(terms.values()), 1)  # (N, 1 + layers, H, W)
        if self.eigen_smooth:
            total = first_component_projection(stacked).clamp_min_(0)
        else:
            total = stacked.sum(1)
        self.last_terms = terms
        return CAMResult(maps=normalize_maps(total), raw={"fullgrad": total}, output=result.output,
                         classes=result.classes)
