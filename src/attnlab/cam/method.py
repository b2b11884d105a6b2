"""The options every CAM method shares on top of :mod:`attnlab.cam.base`: augmentation and eigen smoothing.

Every registered method derives from :class:`CAMMethod`, which adds to the base class (hooks, targets,
post-processing):

* ``aug_smooth``: test-time augmentation smoothing (:mod:`attnlab.cam.smoothing`);
* ``eigen_smooth``: the first principal component of the weighted activations instead of their channel sum,
  refused by the methods that already are a principal component (``eigen_smooth_applies = False``);
* what a method is, for the registry, the CLI and the tables: its paper title, whether it is class-agnostic
  (it takes no targets), whether it forwards once per channel and image (Score-CAM, Ablation-CAM).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .base import CAMResult, LayerSpec, TargetSpec, _CAMBase, eval_mode, resolve_targets
from .smoothing import Augmentation, channel_reduce, reduce_weighted, resolve_augmentations, smooth_over_augmentations

__all__ = ["CAMMethod", "check_per_channel_options"]


class CAMMethod(_CAMBase):
    """A CAM method with pytorch-grad-cam's smoothing options.

    Args:
        model: any CNN (an ``nn.Module`` returning (N, classes) logits, or any output a callable target reads).
        target_layer: a module of ``model``, its dotted name, or a list of them; None guesses the last module
            returning a (N, C, h, w) map.
        aug_smooth: test-time augmentation smoothing: True for pytorch-grad-cam's six augmentations (horizontal
            flip x input multiplied by 0.9, 1, 1.1), or a sequence of :class:`~attnlab.cam.Augmentation`
            (e.g. ``default_augmentations(scales=(0.75, 1, 1.25))`` for spatial rescalings too). Each
            augmentation's map is mapped back to the input and the maps are averaged; class-index and None
            targets explain, in every copy, the class chosen on the plain input.
        eigen_smooth: reduce the weighted activations by their first principal component rather than their
            channel sum (pytorch-grad-cam's ``eigen_smooth``).
        channels_last: input layout, see :class:`~attnlab.cam.GradCAM`.
        input_shape: (C, H, W) used only to guess ``target_layer`` when it is None.

    Raises:
        ValueError: ``eigen_smooth`` on a method it does not apply to, or the base class's layer errors.
    """

    #: the method's name as its paper writes it
    title: ClassVar[str] = ""
    #: eigen smoothing applies (False for methods that already are a principal component)
    eigen_smooth_applies: ClassVar[bool] = True
    #: the method forwards one masked or ablated input per channel and image (slow; a batch_size option)
    forwards_per_channel: ClassVar[bool] = False

    def __init__(self, model: nn.Module, target_layer: LayerSpec | Sequence[LayerSpec] | None = None, *,
                 aug_smooth: bool | Sequence[Augmentation] = False, eigen_smooth: bool = False,
                 channels_last: bool | None = None, input_shape: Sequence[int] | None = None) -> None:
        if not isinstance(eigen_smooth, bool):
            raise TypeError(f"eigen_smooth must be True or False, got {eigen_smooth!r}")
        if eigen_smooth and not self.eigen_smooth_applies:
            raise ValueError(f"eigen_smooth does not apply to {type(self).__name__}: its map already is a principal "
                             "component; use aug_smooth, or another method with eigen_smooth")
        self.augmentations = resolve_augmentations(aug_smooth)
        self.aug_smooth = bool(self.augmentations)
        self.eigen_smooth = eigen_smooth
        super().__init__(model, target_layer, channels_last=channels_last, input_shape=input_shape)

    def _options_repr(self) -> str:
        """The smoothing options that are on, for ``__repr__``: ``""`` or ``", aug_smooth=6, eigen_smooth=True"``."""
        text = f", aug_smooth={len(self.augmentations)}" if self.aug_smooth else ""
        return text + (", eigen_smooth=True" if self.eigen_smooth else "")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(target_layer={self.target_names}{self._options_repr()})"

    # -- reductions the methods share --------------------------------------------------------------------------
    def _reduce(self, a: Tensor, w: Tensor) -> Tensor:
        """ReLU(sum_k w_k A_k), or its eigen-smoothed form: (N, K, h, w), (N, K) or (N, K, h, w) -> (N, h, w)."""
        return channel_reduce(a, w, self.eigen_smooth)

    def _reduce_weighted(self, weighted: Tensor) -> Tensor:
        """ReLU of the channel sum (or first component) of already weighted activations (N, K, h, w) -> (N, h, w)."""
        return reduce_weighted(weighted, self.eigen_smooth)

    # -- the call ----------------------------------------------------------------------------------------------
    def compute(self, x: Tensor, targets: TargetSpec = None) -> CAMResult:
        """Input-size maps, each layer's raw map, output and classes (see :meth:`_CAMBase.compute`).

        With ``aug_smooth`` the maps are the average over the augmentations (see
        :func:`~attnlab.cam.smoothing.smooth_over_augmentations`); the output is the model's on ``x`` itself.
        """
        if not self.augmentations:
            return self._compute_once(x, targets)
        if not isinstance(x, Tensor) or x.dim() != 4:
            raise ValueError(f"x must be a (N, C, H, W) tensor, got {getattr(x, 'shape', type(x).__name__)}")
        output = self._plain_output(x)
        classes = None
        if not self.class_agnostic and not (callable(targets) and not isinstance(targets, Tensor)):
            classes = resolve_targets(targets, output)[1]
        explain = classes if classes is not None else targets
        return smooth_over_augmentations(self._compute_once, x, explain, self.augmentations, output, classes)

    def _compute_once(self, x: Tensor, targets: TargetSpec) -> CAMResult:
        """The method on ``x`` itself, without augmentation."""
        return super().compute(x, targets)

    def _plain_output(self, x: Tensor) -> Any:
        """The model's output on ``x`` (eval mode, no autograd), detached."""
        if not self.hook_handles:
            return super().compute(x)  # raises the base class's "hooks were removed" error
        with eval_mode(self.model), torch.no_grad():
            out = self._run(x)
        return out.detach() if isinstance(out, Tensor) else out


def check_per_channel_options(batch_size: int, top_k: int | None) -> None:
    """The options of the methods that forward one input per channel (Score-CAM, Ablation-CAM): ``batch_size``
    inputs per forward (a positive int) and ``top_k`` channels kept per image (None: all; else a positive int).

    Raises:
        ValueError: naming the option and the value.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be None or a positive int, got {top_k!r}")
