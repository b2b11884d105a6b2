"""The report's picture grids: at each dataset's decisive condition, the test canvases where the maps sit best on
the object, and for each attention model the canvases where its map lands on clutter most."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..train import load_model
from .measure import attention_maps, cam_maps
from .results import GridPictures, StudyResults

if TYPE_CHECKING:
    from .runner import ScoredSet

__all__ = ["BEST_METRIC", "CLUTTER_METRIC", "clutter_rows", "study_grids"]

#: The per-image figure that ranks the best-localised canvases (higher: the map sits better on the object).
BEST_METRIC = "object_auc"
#: The per-image figure that ranks where a map lands on clutter (higher: more of its energy on clutter).
CLUTTER_METRIC = "clutter_share"


def _top(values: Tensor, k: int) -> Tensor:
    """The indices of the ``k`` largest of ``values`` (N,), undefined (NaN) values last."""
    v = values.double().nan_to_num(nan=float("-inf"))
    return torch.argsort(v, descending=True, stable=True)[:k]


def clutter_rows(per_model: Mapping[str, Tensor], k: int) -> list[tuple[str, int]]:
    """(model, image index) rows: for each model, the ``k`` canvases with its highest clutter share (N,)."""
    return [(name, int(i)) for name, shares in per_model.items() for i in _top(shares, k)]


def _maps(run: Path, s: ScoredSet, idx: Tensor, cam_method: str) -> tuple[Tensor, Tensor | None]:
    """One run's CAM maps and attention maps (None: no spatial map) of the canvases ``idx``, on the CPU."""
    model = load_model(run).to(s.images.device).eval()
    cam = cam_maps(model, s.images[idx], s.labels[idx.to(s.labels.device)], cam_method).cpu()
    att = attention_maps(model, s.images[idx])
    return cam, None if att is None else att.cpu()


def _best_grid(results: StudyResults, key: str, s: ScoredSet, runs: Mapping[str, Path]) -> GridPictures:
    """The canvases whose maps sit best on the object (the mean object AUC of every model's first-seed
    CAM), with every model's CAM and attention map."""
    cond, cam = results.conditions[key], results.cam
    ranks = torch.stack([row.runs[0].cam.per_image[BEST_METRIC].double() for row in cond.models.values()])
    idx = _top(ranks.nanmean(0), min(results.preset.n_grid, len(s.labels)))
    maps: dict[str, Tensor] = {}
    for name in cond.models:
        c, a = _maps(runs[name], s, idx, results.preset.cam_method)
        maps[f"{name} {cam}"] = c
        if a is not None:
            maps[f"{name} attention"] = a
    titles = [s.classes[int(y)] for y in s.labels[idx.to(s.labels.device)].cpu()]
    return GridPictures(images=s.raw[idx], titles=titles, maps=maps, boxes=s.boxes[idx],
                        clutter=None if s.clutter is None else s.clutter[idx],
                        caption=f"{cond.condition.name}: the test canvases where the models' {cam} maps sit best "
                                f"on the object (highest mean object AUC). Columns: the input, then each model's {cam} "
                                "for the true class and, for modules with a spatial map, the mean attention map. "
                                "Dashed: the object's box; thin outline: the clutter.")


def _clutter_grid(results: StudyResults, key: str, s: ScoredSet, runs: Mapping[str, Path]) -> GridPictures | None:
    """For each attention model, the canvases where its CAM puts most energy on clutter, beside vanilla's map of
    the same canvases; None without clutter (no clutter masks, or none on any canvas)."""
    cond, cam = results.conditions[key], results.cam
    if s.clutter is None or not bool(s.clutter.any()) or "vanilla" not in cond.models:
        return None
    shares = {name: row.runs[0].cam.per_image[CLUTTER_METRIC] for name, row in cond.models.items()
              if name != "vanilla" and CLUTTER_METRIC in row.runs[0].cam.per_image}
    rows = clutter_rows(shares, max(1, results.preset.n_grid // 3))
    if not rows:
        return None
    idx = torch.tensor([i for _, i in rows])
    base, _ = _maps(runs["vanilla"], s, idx, results.preset.cam_method)
    own = torch.zeros_like(base)
    for name in shares:
        at = torch.tensor([r for r, (n, _) in enumerate(rows) if n == name])
        own[at] = _maps(runs[name], s, idx[at], results.preset.cam_method)[0]
    vanilla_shares = cond.models["vanilla"].runs[0].cam.per_image[CLUTTER_METRIC]
    labels = s.labels.cpu()
    base_col, own_col = f"vanilla {cam}", f"row's model {cam}"
    return GridPictures(
        images=s.raw[idx], titles=[f"{n}: {s.classes[int(labels[i])]}" for n, i in rows],
        maps={base_col: base, own_col: own}, boxes=s.boxes[idx], clutter=s.clutter[idx],
        captions={base_col: [f"clutter share {float(vanilla_shares[i]):.2f}" for _, i in rows],
                  own_col: [f"clutter share {float(shares[n][i]):.2f}" for n, i in rows]},
        caption=f"{cond.condition.name}: for each attention model (row title), the test canvases where its {cam} "
                "puts the most energy on clutter (highest clutter share), beside the vanilla network's map of the "
                "same canvas. Thin outline: the clutter; dashed: the object's box.")


def study_grids(results: StudyResults, sets: Mapping[str, ScoredSet],
                runs: Mapping[tuple[str, str, int], Path]) -> dict[str, GridPictures]:
    """The report's grids, by figure key, at each dataset's decisive condition (first seed's runs)."""
    grids: dict[str, GridPictures] = {}
    seed = results.preset.seeds[0]
    for condition in results.preset.decisive().values():
        key = condition.key
        first = {name: runs[key, name, seed] for name in results.conditions[key].models}
        grids[f"grid-best-{key}"] = _best_grid(results, key, sets[key], first)
        clutter = _clutter_grid(results, key, sets[key], first)
        if clutter is not None:
            grids[f"grid-clutter-{key}"] = clutter
    return grids
