"""Comparison grids: rows are images, columns the input then one map per model or method, saved as PNG.

Each map cell can carry a caption (the class its map explains, say) and every cell of a row the image's
ground-truth box, so a map can be judged against what it should explain and where the object is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .overlay import ArrayLike, _check_colormap, _map_at, _tensor, overlay, require_matplotlib, to_rgb

__all__ = ["BOX_COLOR", "OUTLINE_COLOR", "compare_grid"]

#: edge colour of the ground-truth boxes (visible on the jet colormap and on grey images)
BOX_COLOR = "white"
#: colour of the outlined regions (``outlines``: e.g. the clutter), distinct from the boxes'
OUTLINE_COLOR = "magenta"


def _check_grid(n: int, maps: Mapping[str, Any], titles: Sequence[str] | None,
                cell_titles: Mapping[str, Sequence[str]] | None, boxes: Tensor | None, cmap: str, mpl: Any,
                outlines: Tensor | None = None) -> None:
    """Raise ValueError for arguments that do not fit ``n`` images (see :func:`compare_grid`)."""
    if n == 0:
        raise ValueError("compare_grid needs at least one image")
    if not maps:
        raise ValueError("compare_grid needs at least one column of maps")
    for name, col in maps.items():
        if len(col) != n:
            raise ValueError(f"column {name!r} has {len(col)} maps for {n} images")
    if isinstance(titles, str):
        raise ValueError(f"titles is one string ({titles!r}); give one title per image")
    if titles is not None and len(titles) != n:
        raise ValueError(f"got {len(titles)} row titles for {n} images")
    for name, col in (cell_titles or {}).items():
        if name not in maps:
            raise ValueError(f"cell_titles has column {name!r}, which is not one of the maps' ({', '.join(maps)})")
        if len(col) != n:
            raise ValueError(f"cell_titles of column {name!r} has {len(col)} entries for {n} images")
    if boxes is not None and tuple(boxes.shape) != (n, 4):
        raise ValueError(f"boxes must be ({n}, 4) (x0, y0, x1, y1) for {n} images, got {tuple(boxes.shape)}")
    if outlines is not None and (outlines.dim() != 3 or len(outlines) != n):
        raise ValueError(f"outlines must be ({n}, H, W) masks for {n} images, got {tuple(outlines.shape)}")
    _check_colormap(mpl, cmap)


def _draw_box(ax: Any, box: Tensor, image_hw: tuple[int, int], shown_hw: tuple[int, int]) -> None:
    """Outline ``box`` (x0, y0, x1, y1), exclusive ends in image pixels, on a cell showing ``shown_hw`` pixels."""
    from matplotlib.patches import Rectangle

    sy, sx = shown_hw[0] / image_hw[0], shown_hw[1] / image_hw[1]
    x0, y0, x1, y1 = (float(v) for v in box)
    ax.add_patch(Rectangle((x0 * sx - 0.5, y0 * sy - 0.5), (x1 - x0) * sx, (y1 - y0) * sy, fill=False,
                           edgecolor=BOX_COLOR, linewidth=1.2, linestyle="--"))


def _draw_outline(ax: Any, mask: Tensor, shown_hw: tuple[int, int]) -> None:
    """Outline the regions of ``mask`` (H, W) bool on a cell showing ``shown_hw`` pixels (nothing for an empty
    mask)."""
    if not bool(mask.any()):
        return
    h, w = mask.shape
    sy, sx = shown_hw[0] / h, shown_hw[1] / w
    xs = (torch.arange(w, dtype=torch.float64) + 0.5) * sx - 0.5
    ys = (torch.arange(h, dtype=torch.float64) + 0.5) * sy - 0.5
    ax.contour(xs.numpy(), ys.numpy(), mask.double().numpy(), levels=[0.5], colors=OUTLINE_COLOR, linewidths=0.7)


def _draw_row(axes: Sequence[Any], img: ArrayLike, maps: Mapping[str, Any], r: int, box: Tensor | None, *,
              cmap: str, alpha: float, blend: bool, mean: Sequence[float] | None,
              std: Sequence[float] | None, outline: Tensor | None = None) -> None:
    """Row ``r``: the image, then each column's map of it (overlaid or bare), each with the box when given."""
    rgb = to_rgb(img, mean, std)
    image_hw = rgb.shape[:2]
    axes[0].imshow(rgb, interpolation="nearest")
    shown = [image_hw]
    for c, col in enumerate(maps.values(), start=1):
        m = col[r]
        if blend:
            axes[c].imshow(overlay(img, m, cmap, alpha, mean, std), interpolation="nearest")
            shown.append(image_hw)
        else:
            bare = _map_at(m, tuple(_tensor(m).shape[-2:])).numpy()
            axes[c].imshow(bare, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            shown.append(bare.shape)
    for ax, hw in zip(axes, shown, strict=True):
        ax.set_xticks([])
        ax.set_yticks([])
        if box is not None:
            _draw_box(ax, box, image_hw, hw)
        if outline is not None:
            _draw_outline(ax, outline, hw)


def compare_grid(images: Tensor | Sequence[ArrayLike], maps: Mapping[str, Tensor | Sequence[ArrayLike]],
                 titles: Sequence[str] | None = None, out_path: str | os.PathLike | None = None, *,
                 cmap: str = "jet", alpha: float = 0.5, blend: bool = True, input_title: str = "input",
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 colorbar: bool = True, suptitle: str | None = None, cell_size: float = 2.0,
                 dpi: int = 100, cell_titles: Mapping[str, Sequence[str]] | None = None,
                 boxes: Tensor | Sequence[Sequence[float]] | None = None,
                 outlines: Tensor | None = None) -> Path | Any:
    """Draw a grid comparing maps of the same images and save it as a PNG.

    Args:
        images: (N, C, H, W) tensor or a sequence of N images (see :func:`~attnlab.viz.to_rgb`).
        maps: column title -> (N, H', W') maps in [0, 1] (a model's or method's maps, in insertion order).
        titles: N row titles (e.g. "label / prediction"), or None.
        out_path: PNG file to write (parent folders are created); None returns the matplotlib Figure.
        cmap: matplotlib colormap of the maps.
        alpha: heatmap weight in the overlays.
        blend: overlay the maps on the images (default) or show the bare maps.
        input_title: title of the input column.
        mean, std: undo the input normalisation of ``images``.
        colorbar: add one colour bar for the [0, 1] map scale.
        suptitle: a title over the whole grid.
        cell_size: inches per cell.
        dpi: resolution of the PNG.
        cell_titles: column title -> N captions written under that column's cells (e.g. the class each map
            explains); columns left out get none.
        boxes: (N, 4) ground-truth boxes (x0, y0, x1, y1), exclusive ends, in pixels of ``images``: outlined
            (dashed) on the input and on every map of the row.
        outlines: (N, H, W) bool regions (e.g. the clutter) outlined in :data:`OUTLINE_COLOR` on every cell of the
            row.

    Returns:
        The PNG's path, or the Figure when ``out_path`` is None.

    Raises:
        ValueError: no images or maps, a column with a different number of maps than images, titles,
            captions, boxes or outlines that do not fit the images, or an unknown colormap.
    """
    mpl = require_matplotlib()
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    imgs = list(images) if not isinstance(images, Tensor) else list(images.detach().cpu())
    n = len(imgs)
    box_t = None if boxes is None else torch.as_tensor(boxes, dtype=torch.float64)
    marks = None if outlines is None else torch.as_tensor(outlines).bool().cpu()
    _check_grid(n, maps, titles, cell_titles, box_t, cmap, mpl, marks)
    cols = len(maps) + 1
    fig = Figure(figsize=(cell_size * cols + (0.6 if colorbar else 0), cell_size * n + (0.4 if suptitle else 0)),
                 dpi=dpi, layout="constrained")
    axes = fig.subplots(n, cols, squeeze=False)
    for r, img in enumerate(imgs):
        _draw_row(axes[r], img, maps, r, None if box_t is None else box_t[r], cmap=cmap, alpha=alpha, blend=blend,
                  mean=mean, std=std, outline=None if marks is None else marks[r])
        if titles is not None:
            axes[r][0].set_ylabel(titles[r], fontsize=9)
        for c, name in enumerate(maps, start=1):
            if cell_titles is not None and name in cell_titles:
                axes[r][c].set_xlabel(cell_titles[name][r], fontsize=8)
    for c, name in enumerate([input_title, *maps], start=0):
        axes[0][c].set_title(name, fontsize=10)
    if colorbar:
        sm = ScalarMappable(norm=Normalize(0, 1), cmap=mpl.colormaps[cmap])
        fig.colorbar(sm, ax=[a for row in axes for a in row], fraction=0.03, pad=0.02, label="map value")
    if suptitle:
        fig.suptitle(suptitle)
    if out_path is None:
        return fig
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
