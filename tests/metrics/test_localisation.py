"""Pointing game, energy pointing game, the Grad-CAM box protocol and the region helpers: known answers."""

from __future__ import annotations

import pytest
import torch

from attnlab.metrics import (
    average,
    box_iou,
    box_iou_at_threshold,
    boxes_to_masks,
    component_boxes,
    connected_components,
    energy_pointing_game,
    largest_component,
    mask_to_box,
    pointing_game,
    threshold_box,
)


def test_box_iou_exclusive_corners():
    a = torch.tensor([0, 0, 4, 4])
    assert float(box_iou(a, a)) == 1
    assert float(box_iou(a, torch.tensor([2, 0, 6, 4]))) == pytest.approx(8 / 24)
    assert float(box_iou(a, torch.tensor([4, 0, 8, 4]))) == 0  # touching at x = 4: x1 is exclusive
    assert float(box_iou(a, torch.tensor([1, 1, 1, 3]))) == 0  # empty box
    assert float(box_iou(torch.zeros(4), torch.zeros(4))) == 0


def test_boxes_to_masks_and_back():
    boxes = torch.tensor([[1, 2, 4, 5], [0, 0, 6, 1]])
    masks = boxes_to_masks(boxes, (6, 6))
    assert masks.sum((1, 2)).tolist() == [9, 6]
    assert masks[0, 2:5, 1:4].all() and not masks[0, 5].any() and not masks[0, :, 4].any()
    assert torch.equal(mask_to_box(masks), boxes)
    assert mask_to_box(torch.zeros(1, 3, 3, dtype=torch.bool)).tolist() == [[0, 0, 0, 0]]
    two = boxes_to_masks(torch.tensor([[[0, 0, 1, 1], [2, 2, 3, 3], [5, 5, 5, 5]]]), (4, 4))  # (N, M, 4), padded
    assert two.sum() == 2


def test_pointing_game_hits_misses_tolerance_and_masks():
    maps = torch.zeros(3, 10, 10)
    maps[0, 3, 4] = 1  # inside [2, 2, 6, 6)
    maps[1, 8, 8] = 1  # outside, distance from (5, 5): dx = 3, dy = 3 -> 4.24
    maps[2, 2, 6] = 1  # column 6 = x1: outside by one pixel (exclusive corner)
    boxes = torch.tensor([[2, 2, 6, 6]] * 3)
    assert pointing_game(maps, boxes).tolist() == [True, False, False]
    assert pointing_game(maps, boxes, tolerance=1).tolist() == [True, False, True]
    assert pointing_game(maps, boxes, tolerance=4.3).tolist() == [True, True, True]
    assert pointing_game(maps, boxes, tolerance=4.2).tolist() == [True, False, True]
    assert torch.equal(pointing_game(maps, boxes_to_masks(boxes, (10, 10))), pointing_game(maps, boxes))
    assert average(pointing_game(maps, boxes)) == pytest.approx(1 / 3)


def test_energy_pointing_game():
    maps = torch.zeros(3, 8, 8)
    maps[0, 0:4, 0:4] = 1.0  # all energy inside
    maps[1] = 1.0  # uniform: area fraction 16 / 64
    maps[1, 0, 0] = 0.0
    boxes = torch.tensor([[0, 0, 4, 4], [4, 4, 8, 8], [0, 0, 8, 8]])
    got = energy_pointing_game(maps, boxes)
    torch.testing.assert_close(got, torch.tensor([1.0, 16 / 63, 0.0]))  # all-zero map scores 0
    with pytest.raises(ValueError, match="non-negative"):
        energy_pointing_game(-maps, boxes)


def test_connected_components_8_and_4():
    m = torch.zeros(1, 5, 5, dtype=torch.bool)
    m[0, 0, 0] = m[0, 1, 1] = True  # diagonal neighbours
    m[0, 3:5, 3:5] = True
    lab8 = connected_components(m)
    lab4 = connected_components(m, connectivity=4)
    assert lab8[0].unique().numel() == 3 and lab4[0].unique().numel() == 4
    assert lab8[0, 0, 0] == lab8[0, 1, 1] and lab4[0, 0, 0] != lab4[0, 1, 1]
    assert (lab8[~m] == 0).all()


def test_connected_components_on_a_long_snake():
    """A one-pixel-wide serpentine through a 31 x 31 grid: one component whatever its length."""
    m = torch.zeros(1, 31, 31, dtype=torch.bool)
    m[0, ::2] = True
    m[0, 1::4, -1] = True
    m[0, 3::4, 0] = True
    lab = connected_components(m, connectivity=4)
    assert lab[m].unique().numel() == 1
    m[0, 1, -1] = False  # cut it: two components
    assert connected_components(m, connectivity=4)[m].unique().numel() == 2


def test_largest_component_and_component_boxes():
    m = torch.zeros(2, 6, 6, dtype=torch.bool)
    m[0, 0, 0] = True
    m[0, 2:5, 1:3] = True  # 6 pixels
    big = largest_component(m)
    assert big[0].sum() == 6 and not big[0, 0, 0]
    assert not big[1].any()  # empty mask
    boxes, present = component_boxes(m)
    found = sorted(boxes[0][present[0]].tolist())
    assert found == [[0, 0, 1, 1], [1, 2, 3, 5]]
    assert not present[1].any()


def test_threshold_box_takes_the_largest_segment_at_15_percent():
    maps = torch.zeros(2, 12, 12)
    maps[0, 1, 1] = 1.0  # the peak, alone
    maps[0, 5:10, 4:9] = 0.2  # the largest segment above 0.15
    maps[0, 0, 11] = 0.1  # below 15 %
    maps[1] = 0.0  # all zero: everything is at the maximum -> whole image
    assert threshold_box(maps).tolist() == [[4, 5, 9, 10], [0, 0, 12, 12]]
    assert threshold_box(maps, frac=0.25)[0].tolist() == [1, 1, 2, 2]
    gt = torch.tensor([[4, 5, 9, 10], [0, 0, 6, 12]])
    torch.testing.assert_close(box_iou_at_threshold(maps, gt), torch.tensor([1.0, 0.5]))
    multi = torch.tensor([[[0, 0, 1, 1], [4, 5, 9, 10]], [[0, 0, 12, 12], [0, 0, 0, 0]]])  # best of M boxes
    torch.testing.assert_close(box_iou_at_threshold(maps, multi), torch.tensor([1.0, 1.0]))


def test_input_checks():
    with pytest.raises(ValueError):
        pointing_game(torch.zeros(2, 4, 4), torch.zeros(3, 4))
    with pytest.raises(ValueError):
        pointing_game(torch.zeros(4, 4), torch.zeros(1, 4))
    with pytest.raises(ValueError):
        box_iou_at_threshold(torch.zeros(1, 4, 4), torch.tensor([[0.5, 0, 2, 2]]))
    with pytest.raises(ValueError):
        pointing_game(torch.zeros(1, 4, 4), torch.zeros(1, 5, 5, dtype=torch.bool))
    assert pointing_game(torch.zeros(1, 1, 4, 4), torch.tensor([[0, 0, 1, 1]])).tolist() == [True]
