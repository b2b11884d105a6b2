"""Comparison grids: rows are images, columns the input then one map per model or method, saved as PNG."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from .overlay import ArrayLike, _map_at, _tensor, overlay, require_matplotlib, to_rgb

__all__ = ["compare_grid"]


def compare_grid(images: Tensor | Sequence[ArrayLike], maps: Mapping[str, Tensor | Sequence[ArrayLike]],
                 titles: Sequence[str] | None = None, out_path: str | os.PathLike | None = None, *,
                 cmap: str = "jet", alpha: float = 0.5, blend: bool = True, input_title: str = "input",
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 colorbar: bool = True, suptitle: str | None = None, cell_size: float = 2.0,
                 dpi: int = 100) -> Path | Any:
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

    Returns:
        The PNG's path, or the Figure when ``out_path`` is None.

    Raises:
        ValueError: no maps, or a column with a different number of maps than images.
    """
    mpl = require_matplotlib()
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    imgs = list(images) if not isinstance(images, Tensor) else list(images.detach().cpu())
    n = len(imgs)
    if not maps:
        raise ValueError("compare_grid needs at least one column of maps")
    for name, col in maps.items():
        if len(col) != n:
            raise ValueError(f"column {name!r} has {len(col)} maps for {n} images")
    if titles is not None and len(titles) != n:
        raise ValueError(f"got {len(titles)} row titles for {n} images")
    if cmap not in mpl.colormaps:
        raise ValueError(f"unknown matplotlib colormap {cmap!r}")
    cols = len(maps) + 1
    fig = Figure(figsize=(cell_size * cols + (0.6 if colorbar else 0), cell_size * n + (0.4 if suptitle else 0)),
                 dpi=dpi, layout="constrained")
    axes = fig.subplots(n, cols, squeeze=False)
    for r, img in enumerate(imgs):
        rgb = to_rgb(img, mean, std)
        axes[r][0].imshow(rgb, interpolation="nearest")
        for c, col in enumerate(maps.values(), start=1):
            m = col[r]
            if blend:
                axes[r][c].imshow(overlay(img, m, cmap, alpha, mean, std), interpolation="nearest")
            else:
                axes[r][c].imshow(_map_at(m, tuple(_tensor(m).shape[-2:])).numpy(), cmap=cmap, vmin=0, vmax=1,
                                  interpolation="nearest")
        for c in range(cols):
            axes[r][c].set_xticks([])
            axes[r][c].set_yticks([])
        if titles is not None:
            axes[r][0].set_ylabel(titles[r], fontsize=9)
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
