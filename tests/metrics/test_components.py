"""Connected components and MaxBoxAccV2's threshold sweep against plain flood-fill references on tricky shapes."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch

from attnlab.metrics import MaxBoxAccV2, box_iou, component_boxes, connected_components, largest_component
from attnlab.metrics._regions import NestedComponents

_STEPS = {4: [(-1, 0), (1, 0), (0, -1), (0, 1)],
          8: [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]}


def _flood_components(mask: np.ndarray, connectivity: int) -> list[list[tuple[int, int]]]:
    """Components of one (H, W) bool mask by breadth-first flood fill: lists of (y, x)."""
    h, w = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    comps = []
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        comp, todo = [], deque([(int(y0), int(x0))])
        while todo:
            y, x = todo.popleft()
            comp.append((y, x))
            for dy, dx in _STEPS[connectivity]:
                yy, xx = y + dy, x + dx
                if 0 <= yy < h and 0 <= xx < w and mask[yy, xx] and not seen[yy, xx]:
                    seen[yy, xx] = True
                    todo.append((yy, xx))
        comps.append(comp)
    return comps


def _reference_labels(mask: torch.Tensor, connectivity: int) -> torch.Tensor:
    """connected_components' convention: each pixel holds 1 + the largest linear index of its component."""
    b, h, w = mask.shape
    out = np.zeros((b, h, w), dtype=np.int64)
    for i, m in enumerate(mask.numpy()):
        for comp in _flood_components(m, connectivity):
            lab = 1 + max(y * w + x for y, x in comp)
            for y, x in comp:
                out[i, y, x] = lab
    return torch.from_numpy(out)


def _spiral(n: int) -> torch.Tensor:
    """A one-pixel-wide square spiral winding inwards (one long 4-connected path)."""
    m = torch.zeros(n, n, dtype=torch.bool)
    y, x, dy, dx = 0, 0, 0, 1
    m[0, 0] = True
    while True:
        moved = False
        for _ in range(2):  # try straight on, then turn right
            y1, x1, y2, x2 = y + dy, x + dx, y + 2 * dy, x + 2 * dx
            if 0 <= y1 < n and 0 <= x1 < n and not m[y1, x1] and not (0 <= y2 < n and 0 <= x2 < n and m[y2, x2]):
                m[y1, x1] = True
                y, x, moved = y1, x1, True
                break
            dy, dx = dx, -dy
        if not moved:
            return m


def _shapes() -> dict[str, torch.Tensor]:
    n = 17
    eye = torch.eye(n, dtype=torch.bool)
    yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    r = ((yy - n // 2) ** 2 + (xx - n // 2) ** 2).float().sqrt()
    comb = torch.zeros(n, n, dtype=torch.bool)
    comb[:, ::2] = True  # teeth joined only by the bottom row: raster order meets them late
    comb[:-1, 1::2] = False
    comb[-1] = True
    spiral = _spiral(n)
    cut = spiral.clone()
    cut[0, n // 2] = False
    g = torch.Generator().manual_seed(0)
    return {
        "spiral": spiral,
        "spiral cut": cut,
        "diagonal": eye,
        "anti-diagonal": eye.flip(1),
        "zigzag": eye | eye.roll(1, 1) & (yy % 4 == 0),
        "checkerboard": (yy + xx) % 2 == 0,
        "rings": (r.round().long() % 3 == 0),
        "comb": comb,
        "upside-down comb": comb.flip(0),
        "full": torch.ones(n, n, dtype=torch.bool),
        "empty": torch.zeros(n, n, dtype=torch.bool),
        "single pixel": (yy == 3) & (xx == 5),
        "holes": (yy % 4 != 1) | (xx % 4 != 1),
        "percolating": torch.rand(n, n, generator=g) < 0.55,
        "sparse": torch.rand(n, n, generator=g) < 0.3,
    }


@pytest.mark.parametrize("connectivity", [4, 8])
def test_connected_components_equals_flood_fill_on_tricky_shapes(connectivity):
    shapes = _shapes()
    masks = torch.stack(list(shapes.values()))
    got = connected_components(masks, connectivity)
    want = _reference_labels(masks, connectivity)
    for i, name in enumerate(shapes):
        assert torch.equal(got[i], want[i]), name
    # all at once and one at a time agree (no mixing between images)
    assert torch.equal(torch.cat([connected_components(m[None], connectivity) for m in masks]), got)


def test_spiral_diagonal_and_checkerboard_counts():
    shapes = _shapes()
    count = {c: {k: int(connected_components(m[None], c).unique().numel()) - int(not m.all())
                 for k, m in shapes.items()} for c in (4, 8)}
    assert count[4]["spiral"] == count[8]["spiral"] == 1
    assert count[4]["spiral cut"] == count[8]["spiral cut"] == 2
    assert count[8]["diagonal"] == count[8]["anti-diagonal"] == 1
    assert count[4]["diagonal"] == count[4]["anti-diagonal"] == 17
    assert count[8]["checkerboard"] == 1 and count[4]["checkerboard"] == (17 * 17 + 1) // 2
    assert count[4]["comb"] == count[8]["comb"] == 1


@pytest.mark.parametrize("connectivity", [4, 8])
def test_connected_components_random_masks_and_shapes(connectivity):
    g = torch.Generator().manual_seed(1)
    for h, w in [(1, 1), (1, 9), (9, 1), (2, 3), (7, 11), (13, 6)]:
        for density in (0.2, 0.45, 0.6, 0.8):
            m = torch.rand(3, h, w, generator=g) < density
            assert torch.equal(connected_components(m, connectivity), _reference_labels(m, connectivity)), (h, w)


def test_connected_components_matches_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    g = torch.Generator().manual_seed(2)
    masks = torch.rand(6, 24, 24, generator=g) < 0.55
    for connectivity, structure in ((4, None), (8, np.ones((3, 3)))):
        lab = connected_components(masks, connectivity)
        for m, ours in zip(masks.numpy(), lab.numpy(), strict=True):
            theirs, n = ndimage.label(m, structure=structure)
            assert len(np.unique(ours)) - (0 in ours) == n
            # the same partition: a one-to-one map between their labels and ours
            pairs = set(zip(theirs[m].tolist(), ours[m].tolist(), strict=True))
            assert len(pairs) == n == len({a for a, _ in pairs}) == len({b for _, b in pairs})


def test_component_helpers_on_the_spiral():
    spiral = _spiral(17)[None]
    boxes, present = component_boxes(spiral)
    assert boxes[0][present[0]].tolist() == [[0, 0, 17, 17]]
    assert torch.equal(largest_component(spiral), spiral)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_nested_components_every_level_equals_flood_fill(connectivity):
    g = torch.Generator().manual_seed(4)
    n_levels = 6
    levels = torch.randint(0, n_levels + 1, (4, 9, 10), generator=g)
    levels[0] = n_levels
    levels[0, 2:7:2, 2:8:3] = 1  # pits: pixels that join once all their neighbours are in
    levels[1] = torch.where(_spiral(10)[:9], torch.randint(1, n_levels + 1, (9, 10), generator=g), 0)
    levels[2] = 3
    sweep = NestedComponents(levels, n_levels, connectivity)
    seen = []
    for k in sweep:
        seen.append(k)
        boxes, area, img = sweep.boxes(sweep.roots), sweep.area[sweep.roots], sweep.image(sweep.roots)
        assert set(sweep.changed.tolist()) <= set(sweep.roots.tolist())
        for i in range(len(levels)):
            got = sorted((*b, int(a)) for b, a in zip(boxes[img == i].tolist(), area[img == i], strict=True))
            want = sorted((min(x for _, x in c), min(y for y, _ in c), max(x for _, x in c) + 1,
                           max(y for y, _ in c) + 1, len(c))
                          for c in _flood_components((levels[i] > k).numpy(), connectivity))
            assert got == want, (k, i)
    assert seen == list(range(n_levels - 1, -1, -1))


def _reference_best_ious(maps, boxes, thresholds, multi_contour, connectivity):
    """MaxBoxAccV2.best_ious by definition: for each image and threshold, flood-fill ``map > tau`` and score boxes."""
    maps = maps.double()
    lo = maps.amin((1, 2), keepdim=True)
    maps = maps - lo
    hi = maps.amax((1, 2), keepdim=True)
    maps = torch.where(hi > 0, maps / hi.clamp_min(1e-300), torch.zeros_like(maps))
    out = torch.zeros(len(maps), len(thresholds), dtype=torch.float64)
    for i, m in enumerate(maps):
        for j, tau in enumerate(thresholds):
            comps = _flood_components((m > tau).numpy(), connectivity)
            if not comps:
                continue
            if not multi_contour:  # the largest; ties: the smaller label (largest pixel id)
                comps = [min(comps, key=lambda c: (-len(c), max(y * m.shape[1] + x for y, x in c)))]
            cand = torch.tensor([[min(x for _, x in c), min(y for y, _ in c), max(x for _, x in c) + 1,
                                  max(y for y, _ in c) + 1] for c in comps])
            out[i, j] = box_iou(cand[:, None], boxes[i][None]).amax()
    return out


@pytest.mark.parametrize("multi_contour", [True, False])
@pytest.mark.parametrize("connectivity", [4, 8])
def test_best_ious_equal_flood_fill_reference(multi_contour, connectivity):
    g = torch.Generator().manual_seed(3)
    smooth = torch.nn.functional.interpolate(torch.rand(3, 1, 4, 4, generator=g), size=(12, 12), mode="bilinear")[:, 0]
    spiral = _spiral(12).float() * (0.3 + torch.rand(12, 12, generator=g))  # pieces of the spiral at each threshold
    maps = torch.cat([smooth, spiral[None], torch.rand(2, 12, 12, generator=g), (torch.rand(1, 12, 12) * 3).floor()])
    boxes = torch.tensor([[[0, 0, 6, 6], [2, 2, 9, 12]]] * len(maps))
    boxes[1:, 1] = torch.tensor([4, 1, 12, 7])
    thresholds = [0.0, 0.35, 0.1, 0.35, 0.5, 0.62, 0.8, 0.95, 0.99, -0.5, 1.0]  # unsorted, repeated, out of range
    acc = MaxBoxAccV2(thresholds, multi_contour=multi_contour, connectivity=connectivity, chunk_pixels=300)
    got = acc.best_ious(maps, boxes)
    want = _reference_best_ious(maps, boxes, thresholds, multi_contour, connectivity)
    assert torch.equal(got, want)
