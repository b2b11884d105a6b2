"""Class activation maps and the attention modules' own maps.

Every method is a context manager over forward hooks (see :mod:`attnlab.cam.base`)::

    with attnlab.cam.GradCAM(model, "layer4") as cam:
        maps = cam(x, targets=None)   # (N, H, W) in [0, 1] at the input size

``create_cam(name, model, target_layer, **kwargs)`` builds one by its registry name (``list_cams()``).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..names import lookup, register
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
from .eigen import EigenCAM
from .gradient import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from .score import ScoreCAM

__all__ = [
    "CAMResult",
    "CAM_METHODS",
    "EigenCAM",
    "GradCAM",
    "GradCAMPlusPlus",
    "HiResCAM",
    "LayerCAM",
    "LayerSpec",
    "ScoreCAM",
    "TargetSpec",
    "XGradCAM",
    "capture_attention",
    "check_finite",
    "combine_maps",
    "cam_maps",
    "create_cam",
    "default_target_layer",
    "get_cam_class",
    "list_cams",
    "normalize_maps",
    "upsample_maps",
]

#: registry name -> method class
CAM_METHODS: dict[str, type] = {}
for _cls in (GradCAM, GradCAMPlusPlus, XGradCAM, HiResCAM, LayerCAM, ScoreCAM, EigenCAM):
    register(CAM_METHODS, _cls.name, _cls, "CAM method")
del _cls
_ALIASES = {"gradcam++": "gradcampp", "grad-cam": "gradcam", "grad-cam++": "gradcampp", "score-cam": "scorecam",
            "eigen-cam": "eigencam", "layer-cam": "layercam", "xgrad-cam": "xgradcam"}


def list_cams() -> list[str]:
    """Registry names of the CAM methods, sorted."""
    return sorted(CAM_METHODS)


def get_cam_class(name: str) -> type:
    """The class of CAM method ``name`` (aliases such as ``"grad-cam++"`` accepted), without building it.

    Raises:
        ValueError: an unknown name, with the closest one and the valid ones.
    """
    return lookup(CAM_METHODS, name, "CAM method", _ALIASES)


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
    method's constructor (e.g. ``channels_last``); Eigen-CAM, being class-agnostic, ignores ``targets``.

    Example:
        >>> maps = cam_maps(model, x, ["gradcam", "scorecam"], "layer4")
        >>> attnlab.viz.compare_grid(x, maps, out_path="cams.png")
    """
    out: dict[str, Tensor] = {}
    for name in [methods] if isinstance(methods, str) else methods:  # one name, not its letters
        with create_cam(name, model, target_layer, **kwargs) as cam:
            out[name] = cam(x, None if cam.class_agnostic else targets)
    return out
