"""The localisation metrics' fast paths (native CPU kernels, and the batched torch path they fall back to) give
the numbers of the frozen reference (``reference_scoring.py``, the code before issue 14) on awkward maps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab import metrics
from attnlab.metrics import _native

from . import reference_scoring as ref

SHAPES = [(6, 16, 16), (5, 9, 23), (4, 1, 12), (3, 20, 1), (5, 33, 17)]


@pytest.fixture(params=["native", "torch"])
def backend(request, monkeypatch):
    """Each test runs on the native kernels (skipped where they do not build) and on the torch path."""
    if request.param == "native" and not _native.LIBRARY.available():
        pytest.skip("no C compiler: the native kernels do not build here")
    if request.param == "torch":
        monkeypatch.setattr(_native, "applies", lambda *t: False)
    return request.param


def _maps(kind: str, shape: tuple[int, int, int], g: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    n, h, w = shape
    if kind == "smooth":  # Grad-CAM-like: blobs upsampled from a coarse grid, ReLU (exact zeros), in [0, 1]
        raw = torch.randn(n, 1, 4, 4, generator=g, dtype=torch.float64)
        m = F.interpolate(raw, size=(h, w), mode="bilinear", align_corners=False)[:, 0].relu()
        return (m / m.amax((1, 2), keepdim=True).clamp_min(1e-9)).to(dtype)
    if kind == "levels":  # a few values, many exactly at thresholds (ties everywhere)
        return (torch.randint(0, 5, shape, generator=g) / 4).to(dtype)
    if kind == "grid":  # values on the 0.01 grid: exactly at the CAM thresholds
        return (torch.randint(0, 101, shape, generator=g) / 100).to(dtype)
    if kind == "noise":  # many small segments
        return torch.rand(shape, generator=g, dtype=torch.float64).to(dtype)
    if kind == "zero":
        return torch.zeros(shape, dtype=dtype)
    if kind == "mixed":  # zero, constant and negative-valued maps among smooth ones
        m = _maps("smooth", shape, g, dtype)
        m[0] = 0
        m[-1] = m[-1] * 3 - 1 if n > 1 else m[-1]
        if n > 2:
            m[1] = 0.5
        return m
    raise AssertionError(kind)


def _boxes(shape: tuple[int, int, int], g: torch.Generator, m: int = 3) -> torch.Tensor:
    """(N, M, 4) boxes, x1/y1 exclusive, some empty (padding) and some whole-image."""
    n, h, w = shape
    x = torch.randint(0, w + 1, (n, m, 2), generator=g).sort(-1).values
    y = torch.randint(0, h + 1, (n, m, 2), generator=g).sort(-1).values
    boxes = torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], -1)
    boxes[0, -1] = torch.tensor([0, 0, w, h])
    return boxes


KINDS = ["smooth", "levels", "grid", "noise", "zero", "mixed"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_box_iou_matches_the_reference(backend, kind, dtype):
    g = torch.Generator().manual_seed(1)
    for shape in SHAPES:
        maps, boxes = _maps(kind, shape, g, dtype), _boxes(shape, g)
        for conn in (8, 4):
            assert torch.equal(metrics.threshold_box(maps, 0.15, conn), ref.threshold_box(maps, 0.15, conn))
            assert torch.equal(metrics.box_iou_at_threshold(maps, boxes, 0.15, conn),
                               ref.box_iou_at_threshold(maps, boxes, 0.15, conn))
        assert torch.equal(metrics.box_iou_at_threshold(maps, boxes[:, 0]), ref.box_iou_at_threshold(maps, boxes[:, 0]))


def test_largest_segment_ties_go_to_the_one_ending_first(backend):
    """Two segments of 4 pixels: the one whose last pixel in raster order comes first wins, as the reference's."""
    mask = torch.zeros(2, 6, 7)
    mask[0, 0:2, 4:6] = 1  # ends at (1, 5): first
    mask[0, 3:5, 0:2] = 1  # ends at (4, 1)
    mask[1, 1, 0:4] = 1  # a row ending at (1, 3)
    mask[1, 2:6, 6] = 1  # a column ending at (5, 6)
    assert metrics.threshold_box(mask).tolist() == [[4, 0, 6, 2], [0, 1, 4, 2]]
    assert torch.equal(metrics.threshold_box(mask), ref.threshold_box(mask))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("multi_contour", [True, False])
def test_max_box_acc_matches_the_reference(backend, kind, multi_contour):
    g = torch.Generator().manual_seed(2)
    for shape in SHAPES:
        maps, boxes = _maps(kind, shape, g, torch.float32), _boxes(shape, g)
        for conn in (8, 4):
            new = metrics.MaxBoxAccV2(multi_contour=multi_contour, connectivity=conn)
            old = ref.MaxBoxAccV2(multi_contour=multi_contour, connectivity=conn)
            assert torch.equal(new.best_ious(maps, boxes), old.best_ious(maps, boxes))
            new.update(maps, boxes)
            old.update(maps, boxes)
            assert torch.equal(new.hits, old.hits)  # threshold counts: exact
            assert new.compute().value == old.compute().value


def test_max_box_acc_with_unsorted_repeated_thresholds_matches_the_reference(backend):
    g = torch.Generator().manual_seed(3)
    thresholds = [0.5, 0.0, 0.25, 0.5, 0.99, 0.1, 1.0, -0.5]
    for shape in SHAPES:
        maps, boxes = _maps("grid", shape, g, torch.float64), _boxes(shape, g)
        new, old = metrics.MaxBoxAccV2(thresholds), ref.MaxBoxAccV2(thresholds)
        assert torch.equal(new.best_ious(maps, boxes), old.best_ious(maps, boxes))


def test_max_box_acc_in_chunks_matches_the_reference(backend):
    g = torch.Generator().manual_seed(4)
    maps, boxes = _maps("smooth", (9, 12, 10), g, torch.float32), _boxes((9, 12, 10), g)
    new = metrics.MaxBoxAccV2(chunk_pixels=300).best_ious(maps, boxes)  # 2 images a chunk on the torch path
    assert torch.equal(new, ref.MaxBoxAccV2().best_ious(maps, boxes))


@pytest.mark.parametrize("kind", KINDS)
def test_pxap_matches_the_reference(backend, kind):
    g = torch.Generator().manual_seed(5)
    for shape in SHAPES:
        for dtype in (torch.float32, torch.float64, torch.float16):
            maps = _maps(kind, shape, g, dtype)
            masks = torch.rand(shape, generator=g) < 0.4
            masks[0] = True  # at least one positive pixel
            ignore = torch.rand(shape, generator=g) < 0.2
            assert metrics.pxap(maps, masks) == ref.pxap(maps, masks)
            assert metrics.pxap(maps, masks, ignore=ignore) == ref.pxap(maps, masks, ignore=ignore)
            thr = [0.0, 0.3, 0.5, 0.75]
            new, old = metrics.PxAP(thr), ref.PxAP(thr)
            new.update(maps, masks[:, None], ignore)
            old.update(maps, masks[:, None], ignore)
            assert torch.equal(new.pos, old.pos) and torch.equal(new.neg, old.neg)


def test_pxap_refuses_ignore_masks_of_another_shape(backend):
    maps, masks = torch.rand(2, 5, 5), torch.ones(2, 5, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match="ignore masks"):
        metrics.pxap(maps, masks, ignore=torch.zeros(2, 5, 4, dtype=torch.bool))


def test_an_empty_batch_scores_nothing(backend):
    maps, boxes = torch.zeros(0, 8, 8), torch.zeros(0, 4, dtype=torch.long)
    assert metrics.threshold_box(maps).shape == (0, 4)
    assert metrics.MaxBoxAccV2().best_ious(maps, boxes).shape == (0, 100)


def test_the_native_kernels_are_used_on_cpu_where_they_build():
    if not _native.LIBRARY.available():
        pytest.skip("no C compiler: the native kernels do not build here")
    maps = torch.rand(2, 6, 6)
    assert _native.largest_boxes(maps > 0.5, 8) is not None
    assert _native.applies(maps) and not _native.applies(maps.to("meta"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", KINDS)
def test_on_the_gpu_the_metrics_give_the_reference_numbers(kind):
    """Maps on a GPU are scored there (the batched torch path) with the numbers of the reference on the CPU."""
    g = torch.Generator().manual_seed(6)
    for shape in SHAPES:
        maps, boxes = _maps(kind, shape, g, torch.float32), _boxes(shape, g)
        masks = torch.rand(shape, generator=g) < 0.4
        masks[0] = True
        gpu = maps.cuda()
        assert torch.equal(metrics.box_iou_at_threshold(gpu, boxes).cpu(), ref.box_iou_at_threshold(maps, boxes))
        assert torch.equal(metrics.MaxBoxAccV2().best_ious(gpu, boxes).cpu(), ref.MaxBoxAccV2().best_ious(maps, boxes))
        assert metrics.pxap(gpu, masks) == ref.pxap(maps, masks)


def test_pxap_with_thresholds_above_one_matches_the_reference(backend):
    g = torch.Generator().manual_seed(7)
    maps, masks = _maps("grid", (4, 8, 8), g, torch.float32), torch.rand(4, 8, 8, generator=g) < 0.5
    for thr in ([0.0, 0.5, 1.0], [0.2, 1.5, 3.0]):
        assert metrics.pxap(maps, masks, thr) == ref.pxap(maps, masks, thr)
