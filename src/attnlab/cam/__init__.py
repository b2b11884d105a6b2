"""Class activation maps and the attention modules' own maps.

Every method is a context manager over forward hooks (see :mod:`attnlab.cam.base`)::

    with attnlab.cam.GradCAM(model, "layer4") as cam:
        maps = cam(x, targets=None)   # (N, H, W) in [0, 1] at the input size

``create_cam(name, model, target_layer, **kwargs)`` builds one by its registry name (``list_cams()``). Every
method takes pytorch-grad-cam's smoothing options, ``aug_smooth`` and (where it applies) ``eigen_smooth``
(see :class:`CAMMethod`).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..names import lookup, register
from .ablation import AblationCAM
from .attention_maps import capture_attention
from .base import (
    CAMResult,
    LayerSpec,
    TargetSpec,
    check_finite,
    combine_maps,
    default_target_layer,
    normalize_maps,
    upsample_maps,
)
from .baseline import RandomCAM
from .eigen import KPCACAM, EigenCAM
from .finer import FinerCAM
from .fullgrad import FullGrad
from .gradient import EigenGradCAM, GradCAM, GradCAMElementWise, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from .method import CAMMethod
from .score import ScoreCAM
from .smoothing import Augmentation, default_augmentations

__all__ = [
    "AblationCAM",
    "Augmentation",
    "CAMMethod",
    "CAMResult",
    "CAM_METHODS",
    "EigenCAM",
    "EigenGradCAM",
    "FinerCAM",
    "FullGrad",
    "GradCAM",
    "GradCAMElementWise",
    "GradCAMPlusPlus",
    "HiResCAM",
    "KPCACAM",
    "LayerCAM",
    "LayerSpec",
    "RandomCAM",
    "ScoreCAM",
    "TargetSpec",
    "XGradCAM",
    "capture_attention",
    "cam_name",
    "check_finite",
    "combine_maps",
    "cam_maps",
    "create_cam",
    "default_augmentations",
    "default_target_layer",
    "get_cam_class",
    "list_cams",
    "normalize_maps",
    "upsample_maps",
]

#: registry name -> method class
CAM_METHODS: dict[str, type[CAMMethod]] = {}
for _cls in (GradCAM, GradCAMPlusPlus, XGradCAM, HiResCAM, GradCAMElementWise, LayerCAM, EigenGradCAM, FinerCAM,
             FullGrad, ScoreCAM, AblationCAM, EigenCAM, KPCACAM, RandomCAM):
    register(CAM_METHODS, _cls.name, _cls, "CAM method")
del _cls
_ALIASES = {"gradcam++": "gradcampp", "grad-cam": "gradcam", "grad-cam++": "gradcampp", "score-cam": "scorecam",
            "eigen-cam": "eigencam", "layer-cam": "layercam", "xgrad-cam": "xgradcam",
            "grad-cam-elementwise": "gradcamelementwise", "gradcam-elementwise": "gradcamelementwise",
            "ablation-cam": "ablationcam", "eigen-grad-cam": "eigengradcam", "full-grad": "fullgrad",
            "kpca-cam": "kpcacam", "finer-cam": "finercam", "random": "randomcam", "random-cam": "randomcam"}


def list_cams() -> list[str]:
    """Registry names of the CAM methods, sorted."""
    return sorted(CAM_METHODS)


def get_cam_class(name: str) -> type:
    """The class of CAM method ``name`` (aliases such as ``"grad-cam++"`` accepted), without building it.

    Raises:
        ValueError: an unknown name, with the closest one and the valid ones.
    """
    return lookup(CAM_METHODS, name, "CAM method", _ALIASES)


def cam_name(name: str) -> str:
    """The registry name of CAM method ``name`` (``"Grad-CAM++"`` -> ``"gradcampp"``).

    Raises:
        ValueError: an unknown name, with the closest one and the valid ones.
    """
    return lookup({k: k for k in CAM_METHODS}, name, "CAM method", _ALIASES)


def create_cam(name: str, model: nn.Module, target_layer: LayerSpec | Sequence[LayerSpec] | None = None, **kwargs):
    """Build a CAM method by name (``"gradcam"``, ``"scorecam"``, ... see :func:`list_cams`).

    Raises:
        ValueError: an unknown name, with the valid ones.
    """
    return get_cam_class(name)(model, target_layer, **kwargs)


def cam_maps(model: nn.Module, x: Tensor, methods: Sequence[str] = ("gradcam",),
             target_layer: LayerSpec | Sequence[LayerSpec] | None = None, targets: TargetSpec = None,
             **kwargs) -> dict[str, Tensor]:
    """Maps of several methods on the same batch: method name -> (N, H, W) in [0, 1].

    Each method is built, called once and its hooks removed before the next. ``kwargs`` go to every
    method's constructor (e.g. ``channels_last``, ``aug_smooth``); the class-agnostic methods (Eigen-CAM,
    KPCA-CAM) are called without ``targets``.

    Example:
        >>> maps = cam_maps(model, x, ["gradcam", "scorecam"], "layer4")
        >>> attnlab.viz.compare_grid(x, maps, out_path="cams.png")
    """
    out: dict[str, Tensor] = {}
    for name in [methods] if isinstance(methods, str) else methods:  # one name, not its letters
        with create_cam(name, model, target_layer, **kwargs) as cam:
            out[name] = cam(x, None if cam.class_agnostic else targets)
    return out
