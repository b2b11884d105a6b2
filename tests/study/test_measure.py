"""score_maps: the per-image figures of the claim's two halves, for real maps and the two baselines."""

from __future__ import annotations

import pytest
import torch

from attnlab.metrics import boxes_to_masks, centre_prior_maps, uniform_maps
from attnlab.study.measure import METRIC_LABELS, PER_IMAGE, score_maps

BOXES = torch.tensor([[2, 2, 6, 6], [4, 4, 8, 8]])
MASKS = boxes_to_masks(BOXES, (10, 10))
CLUTTER = torch.zeros(2, 10, 10, dtype=torch.bool)
CLUTTER[:, 0, :] = True  # the top row: 10 of 100 pixels
CLAIM = ("object_auc", "object_share", "clutter_share", "background_share", "clutter_miss")


def test_the_claim_figures_are_per_image_and_labelled():
    scores = score_maps(torch.rand(2, 10, 10, generator=torch.Generator().manual_seed(0)), BOXES, MASKS, CLUTTER)
    for key in CLAIM:
        assert key in PER_IMAGE and key in METRIC_LABELS
        assert scores.per_image[key].shape == (2,) and scores.per_image[key].dtype == torch.float32
    assert set(PER_IMAGE) <= set(scores.per_image)
    shares = sum(scores.per_image[k] for k in ("object_share", "clutter_share", "background_share"))
    assert torch.allclose(shares, torch.ones(2))


def test_each_figure_appears_only_with_its_ground_truth():
    maps = torch.rand(2, 10, 10)
    assert not set(CLAIM) & set(score_maps(maps, BOXES, None).per_image)
    with_masks = score_maps(maps, BOXES, MASKS).per_image
    assert "object_auc" in with_masks and "clutter_share" not in with_masks
    with pytest.raises(ValueError, match="clutter masks need the object masks too"):
        score_maps(maps, BOXES, None, CLUTTER)


def test_the_baselines_are_scored_by_the_same_function():
    uniform = score_maps(uniform_maps(2, 10, 10), BOXES, MASKS, CLUTTER).summary()
    assert uniform["object_auc"] == 0.5
    assert uniform["object_share"] == pytest.approx(0.16) and uniform["clutter_share"] == pytest.approx(0.1)
    assert uniform["clutter_miss"] == 1.0  # equal maxima: the first pixel, on the top row
    centre = score_maps(centre_prior_maps(2, 10, 10), BOXES, MASKS, CLUTTER).summary()
    assert centre["object_auc"] > 0.5 and centre["clutter_share"] < 0.1 and centre["clutter_miss"] == 0.0


def test_an_undefined_auc_is_left_out_of_the_mean():
    masks = MASKS.clone()
    masks[1] = False  # no object pixel: no AUC for that image
    scores = score_maps(MASKS.float(), BOXES, masks)
    assert scores.per_image["object_auc"][1].isnan() and scores.summary()["object_auc"] == 1.0
