"""MaxBoxAccV2 and PxAP (Choe et al., CVPR 2020) on hand-made maps, and PxAP against their evaluator's code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlab.metrics import MaxBoxAccV2, PxAP, default_thresholds, max_box_acc_v2, pxap


def _two_images():
    """Image 0: a core exactly on the box inside a halo at half strength; image 1: always IoU 0.4."""
    maps = torch.zeros(2, 20, 20)
    maps[0, 4:14, 4:14] = 0.5  # halo box (4, 4, 14, 14): IoU with the gt 16 / 100
    maps[0, 7:11, 7:11] = 1.0  # core = gt box (7, 7, 11, 11)
    maps[1, 0:4, 0:10] = 1.0  # box (0, 0, 10, 4), area 40; gt (0, 0, 4, 4) area 16: IoU 0.4
    boxes = torch.tensor([[7, 7, 11, 11], [0, 0, 4, 4]])
    return maps, boxes


def test_max_box_acc_v2_known_answer():
    maps, boxes = _two_images()
    res = max_box_acc_v2(maps, boxes)
    assert res.per_iou == {0.3: 1.0, 0.5: 0.5, 0.7: 0.5}
    assert res.value == pytest.approx(2 / 3)
    assert res.best_threshold[0.5] == pytest.approx(0.5)  # "map > 0.5" keeps only the core
    curve = res.curve
    assert curve.shape == (100, 3)
    assert curve[:50, 1].eq(0).all() and curve[50:, 1].eq(0.5).all()


def test_max_box_acc_v2_uses_every_segment_and_v1_the_largest():
    maps = torch.zeros(1, 16, 16)
    maps[0, 0:8, 0:8] = 1.0  # the largest segment, away from the object
    maps[0, 12:14, 12:14] = 1.0  # a small segment exactly on the object
    box = torch.tensor([[12, 12, 14, 14]])
    assert max_box_acc_v2(maps, box).value == 1.0
    assert max_box_acc_v2(maps, box, multi_contour=False).value == 0.0


def test_accumulating_batches_equals_one_call():
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(6, 12, 12, generator=g) ** 4
    boxes = torch.tensor([[0, 0, 6, 6], [2, 2, 10, 8], [5, 5, 12, 12], [1, 0, 3, 12], [0, 0, 12, 12], [4, 4, 5, 5]])
    acc = MaxBoxAccV2(chunk_pixels=500)  # small chunks: several passes per batch
    acc.update(maps[:4], boxes[:4])
    acc.update(maps[4:], boxes[4:])
    one = max_box_acc_v2(maps, boxes)
    assert acc.compute().value == pytest.approx(one.value)
    assert torch.equal(acc.compute().curve, one.curve)
    with pytest.raises(ValueError):
        MaxBoxAccV2().compute()


def _choe_pxap(maps: np.ndarray, masks: np.ndarray, interval: float = 0.01) -> float:
    """wsolevaluation's MaskEvaluator.accumulate/compute, transcribed (numpy histograms)."""
    thresholds = list(np.arange(0, 1, interval))
    right_edge = np.append(thresholds, [1.0, 2.0, 3.0])
    pos_hist = np.zeros(len(thresholds) + 2)
    neg_hist = np.zeros(len(thresholds) + 2)
    for m, gt in zip(maps, masks, strict=True):
        m = m - m.min()
        m = m / m.max()
        pos_hist += np.histogram(m[gt == 1], bins=right_edge)[0]
        neg_hist += np.histogram(m[gt == 0], bins=right_edge)[0]
    tp = pos_hist[::-1].cumsum()
    fn = pos_hist.sum() - tp
    fp = neg_hist[::-1].cumsum()
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    return float((precision[1:] * np.diff(recall)).sum())


def test_pxap_equals_their_evaluator():
    g = torch.Generator().manual_seed(1)
    maps = torch.rand(5, 16, 16, generator=g, dtype=torch.float64)
    masks = torch.rand(5, 16, 16, generator=g) < (0.3 + 0.5 * maps.float())  # informative but noisy
    ours = pxap(maps, masks)
    assert ours == pytest.approx(_choe_pxap(maps.numpy(), masks.numpy().astype(int)), abs=1e-12)
    ap = PxAP()
    ap.update(maps[:2], masks[:2])
    ap.update(maps[2:], masks[2:])
    assert ap.compute() == pytest.approx(ours, abs=1e-12)


def test_pxap_known_answers():
    masks = torch.zeros(1, 8, 8, dtype=torch.bool)
    masks[0, 2:5, 2:5] = True
    assert pxap(masks.float(), masks) == pytest.approx(1.0)  # perfect map
    # an uninformative map: precision is the positive fraction at every recall
    uniform = torch.ones(1, 8, 8)
    uniform[0, 7, 7] = 0.0  # not constant, so it normalises; the one low pixel is a negative
    assert pxap(uniform, masks) == pytest.approx(9 / 63)
    ignore = torch.zeros(1, 8, 8, dtype=torch.bool)
    ignore[0, 5:] = True  # ignoring rows 5..7 removes 24 negatives
    assert pxap(uniform, masks, ignore=ignore) == pytest.approx(9 / 40)
    with pytest.raises(ValueError):
        pxap(uniform, torch.zeros(1, 8, 8, dtype=torch.bool))


def test_default_thresholds():
    t = default_thresholds()
    assert len(t) == 100 and t[0] == 0 and t[-1] == pytest.approx(0.99)
