"""What the study measures on each trained model: cost, and how tightly its maps sit on the object."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..benchtools import count_flops, time_paired
from ..cam import capture_attention, create_cam, get_cam_class, normalize_maps
from ..metrics import (
    box_iou_at_threshold,
    clutter_pointing_miss,
    energy_pointing_game,
    energy_shares,
    max_box_acc_v2,
    pixel_auc,
    pointing_game,
    pxap,
)

__all__ = ["BOX_IOU_FRACTION", "Cost", "LocalisationScores", "METRIC_LABELS", "PER_IMAGE", "TRAIN_STEP",
           "attention_maps", "cam_maps", "cam_title", "measure_cost", "score_maps"]

#: The figures :func:`score_maps` gives one value per image for (the others are dataset-level).
PER_IMAGE = ("energy_pointing_game", "pointing_game", "box_iou", "object_auc", "object_share", "clutter_share",
             "background_share", "clutter_miss")
#: The box IoU's binarisation threshold, as a fraction of each map's maximum (the Grad-CAM paper's 15%).
BOX_IOU_FRACTION = 0.15
#: Every localisation figure :func:`score_maps` gives, by key, as a report names it.
METRIC_LABELS = {
    "energy_pointing_game": "energy pointing game",
    "pointing_game": "pointing game",
    "box_iou": f"box IoU ({BOX_IOU_FRACTION:.0%} of max)",
    "maxboxacc_v2": "MaxBoxAccV2",
    "pxap": "PxAP",
    "object_auc": "object AUC (pixel AUROC)",
    "object_share": "object share (min-max energy)",
    "clutter_share": "clutter share (min-max energy)",
    "background_share": "background share (min-max energy)",
    "clutter_miss": "pointing miss onto clutter",
}
#: The papers' names of the CAM methods (``attnlab.cam.list_cams()``).
#: What :func:`measure_cost` times as one training step.
TRAIN_STEP = "forward, backward and an SGD step"


def cam_title(method: str) -> str:
    """A CAM method's name as its paper writes it (``gradcam`` -> ``Grad-CAM``: the class's ``title``); the
    registry name when the class has none."""
    return get_cam_class(method).title or method


@dataclass
class Cost:
    """What one model costs, measured side by side with the others.

    Attributes:
        params: parameters.
        mflops: MFLOPs of one forward pass on one image.
        infer_img_s, train_img_s: inference and training-step throughput (images per second).
        infer_time_ratio, train_time_ratio: time over the baseline's in the same rounds (None without one).
    """

    params: int
    mflops: float
    infer_img_s: float
    train_img_s: float
    infer_time_ratio: float | None = None
    train_time_ratio: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LocalisationScores:
    """Scores of one set of maps against the ground truth.

    Attributes:
        per_image: metric (``PER_IMAGE``) -> (N,) values: energy pointing game, pointing game, box IoU at
            ``BOX_IOU_FRACTION`` of the max; with masks the object AUC; with clutter masks the min-max energy
            shares on object / clutter / background and the pointing miss onto clutter.
        dataset: MaxBoxAccV2 (mean over IoU 0.3/0.5/0.7, each at its best threshold) and PxAP.
    """

    per_image: dict[str, Tensor] = field(default_factory=dict)
    dataset: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        """Metric -> its mean over images in float64 (ignoring NaN: the AUC of an image whose mask is empty or
        full; NaN when no image has one) or its dataset-level value."""
        return {**{k: float(v.double().nanmean()) for k, v in self.per_image.items()}, **self.dataset}


@torch.no_grad()
def _batches(n: int, size: int):
    for i in range(0, n, size):
        yield slice(i, min(n, i + size))


def cam_maps(model: nn.Module, images: Tensor, labels: Tensor, method: str = "gradcam", batch: int = 100) -> Tensor:
    """(N, H, W) maps in [0, 1] for the ground-truth class (the WSOL convention), in batches."""
    out = []
    with create_cam(method, model) as cam:
        for sl in _batches(len(images), batch):
            out.append(cam(images[sl], targets=labels[sl]).detach())
    return torch.cat(out)


def attention_maps(model: nn.Module, images: Tensor, batch: int = 200) -> Tensor | None:
    """(N, H, W) in [0, 1]: the mean of every attention module's spatial map, upsampled to the input, or
    None when the model's modules apply no spatial map (SE, ECA: channel weights only)."""
    out = []
    for sl in _batches(len(images), batch):
        maps = capture_attention(model, images[sl], upsample=True)
        spatial = [m.spatial.float() for m in maps.values() if m.spatial is not None]
        if not spatial:
            return None
        out.append(normalize_maps(torch.stack(spatial).mean(0)[:, 0]))
    return torch.cat(out)


def score_maps(maps: Tensor, boxes: Tensor, masks: Tensor | None,
               clutter_masks: Tensor | None = None) -> LocalisationScores:
    """Localisation of ``maps`` (N, H, W) against ``boxes`` (N, 4), object ``masks`` (N, H, W) (no PxAP and no
    object AUC without) and ``clutter_masks`` (N, H, W) (the energy shares on object / clutter / background
    and the pointing miss onto clutter; they need the object masks too). The baselines
    (``metrics.uniform_maps``, ``metrics.centre_prior_maps``) are scored by this same function. Computed on the
    maps' device (batched, on a GPU when the maps are there); the per-image figures come back on the CPU.

    Raises:
        ValueError: clutter masks without object masks.
    """
    per_image = {
        "energy_pointing_game": energy_pointing_game(maps, boxes),
        "pointing_game": pointing_game(maps, boxes).float(),
        "box_iou": box_iou_at_threshold(maps, boxes, frac=BOX_IOU_FRACTION),
    }
    per_image.update(_claim_figures(maps, masks, clutter_masks))
    mba = max_box_acc_v2(maps, boxes)
    dataset = {"maxboxacc_v2": float(getattr(mba, "value", mba))}
    if masks is not None:
        dataset["pxap"] = float(pxap(maps, masks))
    return LocalisationScores({k: v.cpu() for k, v in per_image.items()}, dataset)


def _claim_figures(maps: Tensor, masks: Tensor | None, clutter_masks: Tensor | None) -> dict[str, Tensor]:
    """The offset- and scale-invariant per-image figures: the object AUC (with masks) and, with clutter masks,
    the min-max energy shares and the pointing miss onto clutter; each (N,) float."""
    if masks is None:
        if clutter_masks is not None:
            raise ValueError("clutter masks need the object masks too (the shares split the energy between them): "
                             "pass masks=")
        return {}
    out = {"object_auc": pixel_auc(maps, masks)}
    if clutter_masks is not None:
        shares = energy_shares(maps, masks, clutter_masks)  # (N, 3): object, clutter, background
        out.update(object_share=shares[:, 0], clutter_share=shares[:, 1], background_share=shares[:, 2],
                   clutter_miss=clutter_pointing_miss(maps, clutter_masks).float())
    return out


def _train_step(model: nn.Module, x: Tensor, y: Tensor, opt: torch.optim.Optimizer):
    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def measure_cost(models: dict[str, nn.Module], input_shape: tuple[int, int, int], num_classes: int,
                 device: torch.device, batch: int = 64, train_batch: int = 32, repeats: int = 5,
                 baseline: str = "vanilla") -> dict[str, Cost]:
    """Parameters, FLOPs, and inference / training-step throughput of every model, measured side by side.

    Throughput is timed in paired rounds (every model once per round, median over rounds) on copies of the
    models, so the trained weights and BN statistics are not touched; ratios are to ``baseline``.

    Args:
        models: name -> trained model.
        input_shape: (C, H, W) of one input.
    """
    import copy

    x = torch.randn(batch, *input_shape, device=device)
    xt = torch.randn(train_batch, *input_shape, device=device)
    yt = torch.randint(0, num_classes, (train_batch,), device=device)
    infer, trainers, sizes = {}, {}, {}
    for name, m in models.items():
        m = m.eval()
        infer[name] = (lambda m=m: m(x))
        tm = copy.deepcopy(m).train()
        trainers[name] = _train_step(tm, xt, yt, torch.optim.SGD(tm.parameters(), lr=1e-3, momentum=0.9))
        sizes[name] = (sum(p.numel() for p in m.parameters()), count_flops(lambda m=m: m(x[:1])) / 1e6)
    with torch.no_grad():
        t_inf = time_paired(infer, repeats=repeats, warmup=1, device=device)
    t_tr = time_paired(trainers, repeats=repeats, warmup=1, device=device)
    has_base = baseline in models
    return {name: Cost(params=sizes[name][0], mflops=sizes[name][1], infer_img_s=batch / t_inf.median(name),
                       train_img_s=train_batch / t_tr.median(name),
                       infer_time_ratio=t_inf.ratio(name, baseline) if has_base else None,
                       train_time_ratio=t_tr.ratio(name, baseline) if has_base else None)
            for name in models}
