"""Pictures of saliency: heatmap overlays and comparison grids (needs matplotlib: ``pip install 'attnlab[viz]'``).

matplotlib is imported only when a function is called; the figures are drawn on a bare
``matplotlib.figure.Figure`` (Agg), never through pyplot, so no display or global state is touched.
"""

from .grid import compare_grid
from .overlay import colorize, overlay, require_matplotlib, to_rgb

__all__ = ["colorize", "compare_grid", "overlay", "require_matplotlib", "to_rgb"]
