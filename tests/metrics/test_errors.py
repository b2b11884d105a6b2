"""Mistakes with the metrics are clear ValueErrors, never a raw torch error or a quietly wrong number."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attnlab import metrics as M

BOXES = torch.tensor([[1, 1, 4, 4], [2, 2, 6, 6]])


def _maps() -> torch.Tensor:
    return torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(0))


PER_MAP = {
    "pointing_game": lambda m: M.pointing_game(m, BOXES),
    "energy_pointing_game": lambda m: M.energy_pointing_game(m, BOXES),
    "box_iou_at_threshold": lambda m: M.box_iou_at_threshold(m, BOXES),
    "threshold_box": lambda m: M.threshold_box(m),
    "max_box_acc_v2": lambda m: M.max_box_acc_v2(m, BOXES),
    "pxap": lambda m: M.pxap(m, M.boxes_to_masks(BOXES, (8, 8))),
}


@pytest.mark.parametrize("metric", sorted(PER_MAP))
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_maps_are_refused_by_every_metric(metric, bad):
    maps = _maps()
    maps[1, 3, 3] = bad  # NaN would win the argmax, fail every threshold, zero the energy: a silent wrong score
    with pytest.raises(ValueError, match=r"the maps hold 1 NaN or inf value \(in image \[1\]\)"):
        PER_MAP[metric](maps)


@pytest.mark.parametrize("metric", sorted(PER_MAP))
def test_maps_without_pixels_are_refused(metric):
    with pytest.raises(ValueError, match=r"maps have no pixels: shape \(2, 0, 8\)"):
        PER_MAP[metric](torch.rand(2, 0, 8))


def test_no_image_gives_empty_per_image_results_and_a_clear_dataset_error():
    assert M.pointing_game(torch.rand(0, 8, 8), torch.zeros(0, 4)).shape == (0,)
    with pytest.raises(ValueError, match="MaxBoxAccV2.compute\\(\\) with no image"):
        M.max_box_acc_v2(torch.rand(0, 8, 8), torch.zeros(0, 4))
    with pytest.raises(ValueError, match="no image given, or every mask empty"):
        M.pxap(torch.rand(0, 8, 8), torch.zeros(0, 8, 8, dtype=torch.bool))


def test_out_of_range_options_are_refused():
    with pytest.raises(ValueError, match=r"interval must be in \(0, 1\], got 0"):
        M.default_thresholds(0)
    with pytest.raises(ValueError, match=r"IoU criteria in \(0, 1\], got \(1.5,\)"):
        M.max_box_acc_v2(_maps(), BOXES, iou_thresholds=(1.5,))  # never reached: it was a silent 0
    with pytest.raises(ValueError, match="finite numbers"):
        M.MaxBoxAccV2(thresholds=[0.1, float("nan")])
    with pytest.raises(ValueError, match="tolerance must be >= 0, got nan"):
        M.pointing_game(_maps(), BOXES, tolerance=float("nan"))


def test_masks_and_boxes_of_the_wrong_shape_are_named():
    for fn in (M.mask_to_box, M.connected_components, M.largest_component, M.component_boxes):
        with pytest.raises(ValueError, match=r"masks must be \(B, H, W\), got shape \(8, 8\)"):
            fn(torch.zeros(8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"box shapes \(3, 4\) and \(2, 4\) do not broadcast"):
        M.box_iou(torch.zeros(3, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"boxes are \(\.\.\., 4\)"):
        M.box_iou(torch.zeros(3, 5), torch.zeros(3, 4))
    assert M.boxes_to_masks([[1, 1, 2, 2]], (4, 4)).sum() == 1  # a plain list, as the docstring's users write it


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5)).eval()


def test_deletion_and_insertion_check_targets_and_images():
    images, maps = torch.rand(2, 3, 8, 8), _maps()
    with pytest.raises(ValueError, match=r"target class out of range \[0, 5\): \[7\]"):
        M.deletion_auc(_model(), images, maps, targets=7)
    with pytest.raises(ValueError, match="got 3 targets for 2 images"):
        M.insertion_auc(_model(), images, maps, targets=torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="class indices"):
        M.deletion_auc(_model(), images, maps, targets=torch.tensor([0.5, 1.0]))
    bad = images.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"the images hold 1 NaN or inf value \(in image \[0\]\)"):
        M.deletion_auc(_model(), bad, maps)
    assert M.deletion_auc(_model(), images, maps, targets=torch.tensor([1, 2])).shape == (2,)


@pytest.mark.parametrize("kwargs,match", [({"size": 0}, "odd whole number"), ({"size": 4}, "odd whole number"),
                                          ({"sigma": 0}, "sigma must be a finite number > 0"),
                                          ({"sigma": float("nan")}, "sigma")])
def test_gaussian_blur_options(kwargs, match):
    with pytest.raises(ValueError, match=match):  # sigma 0 was all NaN, size 0 a oneDNN error
        M.gaussian_blur(torch.rand(1, 3, 8, 8), **kwargs)
    with pytest.raises(ValueError, match=r"images must be \(N, C, H, W\)"):
        M.gaussian_blur(torch.rand(3, 8, 8))
