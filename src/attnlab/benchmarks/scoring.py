"""The scoring benchmark behind ``attnlab bench scoring`` and ``benchmarks/scoring.py``: the five localisation
metrics of the study (``attnlab.study.measure.score_maps``) on N maps, today's code against the frozen reference.

Maps are Grad-CAM-like (random 8x8 grids upsampled bilinearly, ReLU, min-max normalised: smooth blobs with
exact zeros), boxes like Cluttered Fashion-MNIST's (a 28x28 item placed at random on the canvas, its box a
random 20 to 28 pixels inside it), masks the ellipse inscribed in each box. Each metric runs as ``score_maps``
calls it, today's against the reference (``tests/metrics/reference_scoring.py``, the code before issue 14, read
from the repository checkout), in paired, interleaved rounds on the same inputs, with the largest difference
between their numbers.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import Tensor

from ..benchtools import format_table, load_average, time_paired
from ..fileio import check_file
from ..study.measure import BOX_IOU_FRACTION
from ..study.measure import METRIC_LABELS as STUDY_METRIC_LABELS
from ._shared import RESULTS_DIR, provenance, save_table

__all__ = ["BOX_IOU_FRACTION", "DEFAULT_REFERENCE", "HEADER", "METRIC_LABELS", "RESULTS_PATTERN", "ScoringResult",
           "benchmark_scoring", "load_reference", "results_path", "results_table", "run", "synthetic_maps"]

#: The five localisation metrics timed (``score_maps``'s keys, in its order), with the study's names for them
#: (the box IoU at the study's ``BOX_IOU_FRACTION`` of each map's maximum).
METRIC_LABELS = {key: STUDY_METRIC_LABELS[key]
                 for key in ("energy_pointing_game", "pointing_game", "box_iou", "maxboxacc_v2", "pxap")}
#: The frozen reference implementation, relative to the current directory (the repository root).
DEFAULT_REFERENCE = Path("tests") / "metrics" / "reference_scoring.py"
#: Where ``run`` writes its table by default, DEVICE filled in by :func:`results_path`.
RESULTS_PATTERN = RESULTS_DIR / "scoring-DEVICE.md"
HEADER = ["metric", "today s", "reference s", "speed-up", "max |difference|"]


@dataclass
class ScoringResult:
    """One row: a metric (or the total), its median seconds today and with the reference (None: not timed)."""

    metric: str
    seconds: float
    reference_seconds: float | None = None
    max_difference: float | None = None

    @property
    def speedup(self) -> float | None:
        return None if self.reference_seconds is None else self.reference_seconds / self.seconds


def results_path(device: str) -> Path:
    """``benchmarks/results/scoring-<device>.md``: ``cpu``, or the GPU's name as a slug (``nvidia-h200``)."""
    dev = torch.device(device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    return RESULTS_DIR / f"scoring-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.md"


def synthetic_maps(n: int = 10000, size: int = 64, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Grad-CAM-like maps (n, size, size) float32 in [0, 1], boxes (n, 4) long and masks (n, size, size) bool."""
    g = torch.Generator().manual_seed(seed)
    raw = torch.randn(n, 1, 8, 8, generator=g)
    maps = F.interpolate(raw, size=(size, size), mode="bilinear", align_corners=False)[:, 0].relu()
    maps = maps / maps.amax((1, 2), keepdim=True).clamp_min(1e-12)
    item = min(28, size)
    origin = torch.randint(0, size - item + 1, (n, 2), generator=g)
    extent = torch.randint(min(20, item), item + 1, (n, 2), generator=g)
    offset = (torch.rand(n, 2, generator=g) * (item - extent + 1)).long()
    lo = origin + offset
    boxes = torch.cat([lo, lo + extent], 1)  # (x0, y0, x1, y1), x1/y1 exclusive
    ys = torch.arange(size)[None, :, None] + 0.5
    xs = torch.arange(size)[None, None, :] + 0.5
    centre, half = (boxes[:, :2] + boxes[:, 2:]) / 2, extent / 2
    masks = (((xs - centre[:, 0, None, None]) / half[:, 0, None, None]) ** 2
             + ((ys - centre[:, 1, None, None]) / half[:, 1, None, None]) ** 2) <= 1
    return maps, boxes, masks


def load_reference(path: str | os.PathLike) -> ModuleType:
    """The reference implementation from its file.

    Raises:
        ValueError: no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no reference implementation at {path}: run from the repository root, or pass "
                         "--reference PATH (or '' to time today's code alone)")
    spec = importlib.util.spec_from_file_location("attnlab_reference_scoring", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _metric_calls(m: ModuleType, maps: Tensor, boxes: Tensor, masks: Tensor) -> dict[str, Callable[[], object]]:
    """Metric key -> a zero-argument call of the module ``m`` as ``score_maps`` makes it."""
    return {
        "energy_pointing_game": lambda: m.energy_pointing_game(maps, boxes),
        "pointing_game": lambda: m.pointing_game(maps, boxes).float(),
        "box_iou": lambda: m.box_iou_at_threshold(maps, boxes, frac=BOX_IOU_FRACTION),
        "maxboxacc_v2": lambda: torch.tensor(m.max_box_acc_v2(maps, boxes).value),
        "pxap": lambda: torch.tensor(m.pxap(maps, masks)),
    }


def _difference(a: object, b: object) -> float:
    return float((torch.as_tensor(a).double().cpu() - torch.as_tensor(b).double().cpu()).abs().max())


def _keeping_results(fns: dict[str, Callable[[], object]]) -> tuple[dict[str, Callable[[], None]], dict[str, object]]:
    """The calls, each keeping its last result in the returned dict (compared after timing, not run again)."""
    last: dict[str, object] = {}

    def keep(name: str, fn: Callable[[], object]) -> Callable[[], None]:
        return lambda: last.__setitem__(name, fn())

    return {name: keep(name, fn) for name, fn in fns.items()}, last


def benchmark_scoring(n: int = 10000, size: int = 64, device: str = "cpu", repeats: int = 3,
                      reference: str | os.PathLike | None = DEFAULT_REFERENCE) -> list[ScoringResult]:
    """Time each metric today and with the reference (when ``reference`` names its file) on the same maps.

    Returns:
        One row per metric, then the total (the sum of the medians).
    """
    from .. import metrics

    reference_module = load_reference(reference) if reference else None  # a missing file: before any work
    maps, boxes, masks = (t.to(device) for t in synthetic_maps(n, size))
    today = _metric_calls(metrics, maps, boxes, masks)
    old = _metric_calls(reference_module, maps, boxes, masks) if reference_module else {}
    rows = []
    for key, call in today.items():
        call()  # the warm-up (native kernels built and loaded; the reference is too slow to run twice)
        fns, last = _keeping_results({"today": call, **({"reference": old[key]} if old else {})})
        times = time_paired(fns, repeats=repeats, warmup=0, device=device)
        rows.append(ScoringResult(METRIC_LABELS[key], times.median("today"),
                                  times.median("reference") if old else None,
                                  _difference(last["today"], last["reference"]) if old else None))
    rows.append(ScoringResult("total", sum(r.seconds for r in rows),
                              sum(r.reference_seconds for r in rows) if old else None,
                              max(r.max_difference for r in rows) if old else None))
    return rows


def results_table(results: list[ScoringResult]) -> tuple[list[str], list[list[object]]]:
    """Header and rows for printing or saving ("-" where the reference was not timed)."""
    def cell(v: float | None) -> object:
        return "-" if v is None else v

    return HEADER, [[r.metric, r.seconds, cell(r.reference_seconds), cell(r.speedup), cell(r.max_difference)]
                    for r in results]


def run(out: str | os.PathLike | None = None, command: str = "attnlab bench scoring", *, n: int = 10000,
        size: int = 64, device: str = "cpu", repeats: int = 3,
        reference: str | os.PathLike | None = DEFAULT_REFERENCE) -> list[ScoringResult]:
    """Run :func:`benchmark_scoring`, print the table and save it to ``out`` (default :func:`results_path`; "" to
    skip) with the command, the machine and its load."""
    out = results_path(device) if out is None else out
    if out:
        check_file(out, "the results file (--out)")
    load = load_average()
    results = benchmark_scoring(n, size, device, repeats, reference)
    header, rows = results_table(results)
    print(format_table(header, rows))
    preamble = (f"{provenance(command, device)}; 1-minute load average {load:.1f} at the start.\n\n"
                f"{n} maps of {size}x{size} (Grad-CAM-like blobs, boxes and masks like Cluttered Fashion-MNIST's), "
                f"each metric as `score_maps` calls it; median of {repeats} paired, interleaved rounds of today's "
                f"code and the reference (`{reference or 'not timed'}`, the code before issue 14); total: the sum. "
                "Max |difference|: the largest difference between their figures.")
    save_table(out, "Scoring speed: the five localisation metrics", preamble, header, rows)
    return results
