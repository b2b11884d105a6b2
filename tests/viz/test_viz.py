"""Overlays and comparison grids (skipped without matplotlib: the `viz` extra)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("matplotlib")

from attnlab.viz import colorize, compare_grid, overlay, to_rgb  # noqa: E402


def test_to_rgb_layouts_and_scaling():
    grey = torch.rand(1, 5, 6)
    rgb = to_rgb(grey)
    assert rgb.shape == (5, 6, 3) and np.allclose(rgb[..., 0], rgb[..., 2])
    assert to_rgb(torch.rand(5, 6)).shape == (5, 6, 3)
    assert to_rgb(np.zeros((5, 6, 3), dtype=np.uint8)).max() == 0
    normalised = torch.randn(3, 4, 4) * 3
    out = to_rgb(normalised)
    assert out.min() == pytest.approx(0) and out.max() == pytest.approx(1)
    x = torch.full((3, 2, 2), 0.5)
    undone = to_rgb((x - 0.25) / 0.5, mean=[0.25] * 3, std=[0.5] * 3)
    assert np.allclose(undone, 0.5)
    with pytest.raises(ValueError):
        to_rgb(torch.rand(2, 4, 4))


def test_overlay_blends_and_resizes():
    img = torch.rand(3, 8, 8)
    cam = torch.rand(4, 4)
    out = overlay(img, cam, alpha=0.5)
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    assert np.array_equal(overlay(img, cam, alpha=0.0), np.rint(to_rgb(img) * 255).astype(np.uint8))
    heat = overlay(img, torch.ones(8, 8), cmap="jet", alpha=1.0)
    assert np.array_equal(heat, np.broadcast_to(np.rint(colorize(torch.ones(1, 1)) * 255).astype(np.uint8)[0, 0],
                                                (8, 8, 3)))
    with pytest.raises(ValueError):
        overlay(img, cam, alpha=1.5)
    with pytest.raises(ValueError):
        overlay(img, cam, cmap="no-such-map")


def test_compare_grid_writes_a_png(tmp_path):
    images = torch.rand(3, 1, 12, 12)
    maps = {"gradcam": torch.rand(3, 12, 12), "scorecam": torch.rand(3, 3, 3), "cbam M_s": torch.rand(3, 1, 6, 6)}
    path = compare_grid(images, maps, ["a", "b", "c"], tmp_path / "sub" / "grid.png", suptitle="test")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    fig = compare_grid(images, maps, blend=False)  # no path: the Figure, for notebooks
    assert len(fig.axes) == 3 * 4 + 1  # the cells and the colour bar
    with pytest.raises(ValueError, match="2 maps for 3 images"):
        compare_grid(images, {"x": torch.rand(2, 12, 12)}, out_path=tmp_path / "x.png")
    with pytest.raises(ValueError):
        compare_grid(images, {}, out_path=tmp_path / "x.png")


def test_compare_grid_captions_each_map_and_outlines_the_boxes():
    from matplotlib.patches import Rectangle

    images = torch.rand(2, 1, 12, 12)
    maps = {"plain": torch.rand(2, 12, 12), "cbam": torch.rand(2, 3, 3)}
    boxes = torch.tensor([[2, 3, 8, 9], [0, 0, 12, 12]])
    captions = {"plain": ["predicted: Trouser", "predicted: Bag"], "cbam": ["predicted: Coat", "predicted: Bag"]}
    fig = compare_grid(images, maps, cell_titles=captions, boxes=boxes, blend=False, colorbar=False)
    cells = np.array(fig.axes).reshape(2, 3)
    assert [ax.get_xlabel() for ax in cells[0]] == ["", "predicted: Trouser", "predicted: Coat"]
    assert [ax.get_xlabel() for ax in cells[1]] == ["", "predicted: Bag", "predicted: Bag"]
    for row, (x0, y0, x1, y1) in zip(cells, boxes.tolist(), strict=True):
        (on_input,), (on_plain,), (on_small,) = (ax.patches for ax in row)
        assert isinstance(on_input, Rectangle)
        assert on_input.get_xy() == (x0 - 0.5, y0 - 0.5) and on_input.get_width() == x1 - x0
        assert on_plain.get_xy() == on_input.get_xy()
        # the bare 3x3 map: the box scaled to its pixels
        assert on_small.get_xy() == (x0 / 4 - 0.5, y0 / 4 - 0.5) and on_small.get_height() == (y1 - y0) / 4
    plain = compare_grid(images, maps, colorbar=False)
    assert all(not ax.patches and not ax.get_xlabel() for ax in plain.axes)


def test_compare_grid_outlines_regions_on_every_cell_of_their_row():
    images = torch.rand(2, 1, 12, 12)
    maps = {"plain": torch.rand(2, 12, 12), "small": torch.rand(2, 3, 3)}
    outlines = torch.zeros(2, 12, 12, dtype=torch.bool)
    outlines[0, 2:5, 6:10] = True  # the second image has nothing to outline
    fig = compare_grid(images, maps, outlines=outlines, blend=False, colorbar=False)
    cells = np.array(fig.axes).reshape(2, 3)
    first = [ax.collections for ax in cells[0]]
    assert all(len(c) == 1 for c in first)  # one contour set per cell: input, plain map, small map
    (x0, x1), (y0, y1) = first[0][0].get_paths()[0].get_extents().intervalx, \
        first[0][0].get_paths()[0].get_extents().intervaly
    assert 5 <= x0 and x1 <= 10 and 1 <= y0 and y1 <= 5  # around columns 6..9, rows 2..4
    sx0, sx1 = first[2][0].get_paths()[0].get_extents().intervalx
    assert sx1 <= 10 / 4  # scaled to the bare 3x3 map
    assert all(not ax.collections for ax in cells[1])
    with pytest.raises(ValueError, match=r"outlines must be \(2, H, W\)"):
        compare_grid(images, maps, outlines=torch.zeros(3, 12, 12, dtype=torch.bool))


def test_compare_grid_refuses_what_does_not_fit_the_images(tmp_path):
    images = torch.rand(2, 1, 12, 12)
    maps = {"plain": torch.rand(2, 12, 12)}
    with pytest.raises(ValueError, match=r"boxes must be \(2, 4\)"):
        compare_grid(images, maps, boxes=torch.zeros(3, 4))
    with pytest.raises(ValueError, match="cell_titles of column 'plain' has 1 entries for 2 images"):
        compare_grid(images, maps, cell_titles={"plain": ["a"]})
    with pytest.raises(ValueError, match="cell_titles has column 'other'"):
        compare_grid(images, maps, cell_titles={"other": ["a", "b"]})
    with pytest.raises(ValueError, match="at least one image"):
        compare_grid(torch.rand(0, 1, 12, 12), {"plain": torch.rand(0, 12, 12)})
    with pytest.raises(ValueError, match="got 1 row titles for 2 images"):
        compare_grid(images, maps, titles=["a"])


def test_pictures_that_cannot_be_drawn_are_named():
    nan_map = torch.rand(8, 8)
    nan_map[2, 3] = float("nan")
    with pytest.raises(ValueError, match="the map holds 1 NaN or inf value of 64"):
        overlay(torch.rand(3, 8, 8), nan_map)  # drawn as a blank patch before, with no word
    with pytest.raises(ValueError, match="the map holds 1 NaN"):
        compare_grid(torch.rand(1, 1, 8, 8), {"a": nan_map[None]})
    with pytest.raises(ValueError, match="the image holds 48 NaN or inf values of 48"):
        to_rgb(torch.full((3, 4, 4), float("inf")))
    with pytest.raises(ValueError, match=r"the map is empty: shape \(0, 0\)"):
        overlay(torch.rand(3, 8, 8), torch.rand(0, 0))
    with pytest.raises(ValueError, match="mean has 2 values for an image of 3 channels"):
        to_rgb(torch.rand(3, 4, 4), mean=[0.5, 0.5])
    with pytest.raises(ValueError, match="unknown matplotlib colormap 'nope'"):
        colorize(torch.rand(4, 4), cmap="nope")  # a KeyError from matplotlib before
    with pytest.raises(ValueError, match="titles is one string"):
        compare_grid(torch.rand(2, 1, 8, 8), {"a": torch.rand(2, 8, 8)}, titles="ab")


def test_require_matplotlib_is_public():
    import matplotlib

    from attnlab.viz import require_matplotlib

    assert require_matplotlib() is matplotlib
