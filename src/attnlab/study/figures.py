"""The report's charts as PNG files: bars with intervals, and the gain of each attention model against the clutter
level (dose and response), one panel per half of the claim."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from .stats import Interval

__all__ = ["bar_chart", "dose_response_chart"]

VANILLA_COLOR = "#8a94a6"
MODEL_COLOR = "#3b7dd8"


def _figure(width: float, height: float):
    from ..viz import require_matplotlib

    require_matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110)


def _errors(values: list[Interval]) -> tuple[list[float], list[float]]:
    """The lower and upper error-bar lengths of each interval (0 where it has no bounds)."""
    lows = [v.mean - v.low if v.has_bounds else 0.0 for v in values]
    highs = [v.high - v.mean if v.has_bounds else 0.0 for v in values]
    return lows, highs


def bar_chart(path: Path, title: str, series: Mapping[str, Interval | None], ylabel: str) -> Path | None:
    """One bar per name with its 95% interval (vanilla grey); None (nothing drawn) when no value is given."""
    names = [n for n, d in series.items() if d is not None and not math.isnan(d.mean)]
    if not names:
        return None
    bars = [series[n] for n in names]
    fig = _figure(6, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    colors = [VANILLA_COLOR if n == "vanilla" else MODEL_COLOR for n in names]
    ax.bar(names, [b.mean for b in bars], yerr=list(_errors(bars)), capsize=4, color=colors)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def dose_response_chart(path: Path, panels: Mapping[str, Mapping[str, Mapping[int, Interval]]],
                        ylabels: Mapping[str, str], title: str) -> Path | None:
    """Gain over vanilla against the clutter level: one panel per half of the claim, one line per attention model
    with its 95% interval bars, a dashed line at zero (no gain).

    Args:
        panels: half -> model -> clutter level -> the gain (signed so that a positive gain supports the claim).
        ylabels: half -> what its gain is in (the panel's title says it).

    Returns:
        ``path``, or None when no panel has a value.
    """
    halves = [h for h, models in panels.items() if any(models.values())]
    if not halves:
        return None
    fig = _figure(5.2 * len(halves), 3.6)
    axes = fig.subplots(1, len(halves), squeeze=False)[0]
    for ax, half in zip(axes, halves, strict=True):
        for i, (model, by_level) in enumerate(panels[half].items()):
            levels = sorted(by_level)
            values = [by_level[lv] for lv in levels]
            shift = (i - (len(panels[half]) - 1) / 2) * 0.12  # so that the interval bars do not hide each other
            ax.errorbar([lv + shift for lv in levels], [v.mean for v in values], yerr=list(_errors(values)),
                        marker="o", capsize=3, label=model)
        ax.axhline(0.0, color="#444", linewidth=0.8, linestyle="--")
        ax.set_title(f"{half}: {ylabels[half]}" if half in ylabels else half, fontsize=10)
        ax.set_xlabel("clutter level (fragments per canvas)", fontsize=9)
        ax.set_ylabel("gain over vanilla", fontsize=9)
        ax.set_xticks(sorted({lv for by_level in panels[half].values() for lv in by_level}))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
