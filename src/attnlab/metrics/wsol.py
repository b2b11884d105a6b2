"""Weakly-supervised object localisation metrics of Choe et al., "Evaluating Weakly Supervised Object
Localization Methods Right" (CVPR 2020, https://arxiv.org/abs/2001.07437), as batched tensor code.

Both are dataset-level: the CAM threshold is chosen over the whole evaluation set, so each has an
accumulator (``update`` per batch, ``compute`` at the end) and a one-call function.

* MaxBoxAccV2: every map is min-max normalised and binarised at ``map > tau`` for each tau in
  ``thresholds`` (0, 0.01, ..., 0.99 as their ``cam_curve_interval=0.01``); the boxes around *all*
  connected segments are candidates and the best match with the ground-truth box(es) counts. For each
  IoU criterion delta in (0.3, 0.5, 0.7), BoxAcc(tau, delta) is the fraction of images with best IoU
  >= delta; MaxBoxAccV2 is the mean over delta of max over tau of BoxAcc.
* PxAP: pixel precision and recall of ``map >= tau`` against ground-truth masks, accumulated over all
  pixels of the set at the same thresholds, and the area under the precision-recall curve
  sum_l P(tau_l) (R(tau_l) - R(tau_l+1)), binned exactly as their ``MaskEvaluator``.

Differences from their reference code (``wsolevaluation``), stated so results can be compared: maps are
thresholded in floating point rather than after a cast to uint8; segments are 8-connected components
of the binary map (their OpenCV contours also return holes' boxes, which lie inside an outer box and
rarely win); boxes use exclusive x1/y1 throughout (their IoU adds 1 to widths and clips x1 to W - 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ._native import pxap_histograms, sweep_best_ious
from ._regions import NestedComponents, as_boxes, as_maps, box_iou, check_connectivity

__all__ = ["MaxBoxAccV2", "MaxBoxAccResult", "PxAP", "max_box_acc_v2", "pxap", "default_thresholds"]


def default_thresholds(interval: float = 0.01) -> Tensor:
    """CAM thresholds 0, interval, ..., < 1 (float64), as ``np.arange(0, 1, interval)`` in Choe et al.

    Raises:
        ValueError: ``interval`` outside (0, 1].
    """
    if not 0 < interval <= 1:
        raise ValueError(f"interval must be in (0, 1], got {interval}")
    n = int(round(1 / interval))
    return torch.arange(n, dtype=torch.float64) * interval


def _normalise(maps: Tensor) -> Tensor:
    lo = maps.amin((1, 2), keepdim=True)
    m = maps.double() - lo.double()
    hi = m.amax((1, 2), keepdim=True)
    return torch.where(hi > 0, m / hi.clamp_min(1e-300), torch.zeros_like(m))


@dataclass
class MaxBoxAccResult:
    """MaxBoxAccV2 and its parts.

    Attributes:
        value: the mean over IoU criteria of the best box accuracy (in [0, 1]).
        per_iou: IoU criterion -> best box accuracy over thresholds.
        best_threshold: IoU criterion -> the CAM threshold achieving it.
        curve: (T, D) box accuracy at each threshold and IoU criterion.
    """

    value: float
    per_iou: dict[float, float] = field(default_factory=dict)
    best_threshold: dict[float, float] = field(default_factory=dict)
    curve: Tensor | None = field(default=None, repr=False)


class MaxBoxAccV2:
    """Accumulate box hits over a dataset at every CAM threshold and IoU criterion.

    Args:
        thresholds: CAM thresholds (default 0, 0.01, ..., 0.99).
        iou_thresholds: IoU criteria delta (default 0.3, 0.5, 0.7).
        multi_contour: boxes of all segments (V2, default) or only of the largest (MaxBoxAcc, V1).
        connectivity: 8 or 4 for the segments.
        chunk_pixels: upper bound on (images x pixels) swept at once (memory: about 70 bytes each).

    All thresholds are scored in one sweep per batch, from the highest down: the masks are nested, so the
    components at one threshold are those at the previous one, grown and merged (see
    :class:`~attnlab.metrics._regions.NestedComponents`); the work grows with the pixels (plus a few
    operations per threshold), not with pixels x thresholds. On CPU tensors the same sweep runs image by image in a
    native kernel (``regions_cpu.c``; the same numbers, and ``chunk_pixels`` does not apply); on a GPU the batched
    torch sweep runs on the maps' device.

    Example:
        >>> acc = MaxBoxAccV2()
        >>> for maps, boxes in batches:
        ...     acc.update(maps, boxes)
        >>> acc.compute().value
    """

    def __init__(self, thresholds: Sequence[float] | Tensor | None = None,
                 iou_thresholds: Sequence[float] = (0.3, 0.5, 0.7), multi_contour: bool = True,
                 connectivity: int = 8, chunk_pixels: int = 2**24) -> None:
        self.thresholds = default_thresholds() if thresholds is None else torch.as_tensor(thresholds).double()
        if self.thresholds.dim() != 1 or not len(self.thresholds) or not bool(self.thresholds.isfinite().all()):
            raise ValueError("thresholds must be a non-empty 1-D sequence of finite numbers")
        self.iou_thresholds = tuple(float(d) for d in iou_thresholds)
        if not self.iou_thresholds:
            raise ValueError("iou_thresholds must not be empty")
        if not all(0 < d <= 1 for d in self.iou_thresholds):  # an IoU above 1 is never reached: a silent 0
            raise ValueError(f"iou_thresholds are IoU criteria in (0, 1], got {self.iou_thresholds}")
        self.multi_contour = multi_contour
        check_connectivity(connectivity)
        self.connectivity = connectivity
        self.chunk_pixels = int(chunk_pixels)
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated."""
        self.hits = torch.zeros(len(self.thresholds), len(self.iou_thresholds), dtype=torch.long)
        self.count = 0

    def best_ious(self, maps: Tensor, boxes: Tensor) -> Tensor:
        """Best IoU of each image at each threshold: (N, H, W), (N, 4) / (N, M, 4) -> (N, T).

        On the CPU a native kernel sweeps each image (the same numbers); elsewhere (a GPU: on the maps' device,
        no host round trip per image) the batched sweep below runs on chunks of ``chunk_pixels``.
        """
        maps = as_maps(maps)
        n, h, w = maps.shape
        gt = as_boxes(boxes, n).to(maps.device)  # (N, M, 4)
        thr = self.thresholds.to(maps.device)
        sorted_thr, perm = thr.sort()
        native = sweep_best_ious(maps, sorted_thr, gt, self.connectivity, self.multi_contour)
        out = torch.empty(n, len(thr), dtype=torch.float64, device=maps.device)
        if native is not None:
            out[:, perm] = native
            return out
        maps = _normalise(maps)
        per_chunk = max(1, self.chunk_pixels // ((h + 2) * (w + 2)))  # images swept at once
        for start in range(0, n, per_chunk):
            out[start:start + per_chunk] = self._sweep(maps[start:start + per_chunk], gt[start:start + per_chunk], thr)
        return out

    def _sweep(self, maps: Tensor, gt: Tensor, thr: Tensor) -> Tensor:
        """Best IoUs (N, T) of normalised maps by one sweep over the nested masks ``map > tau``, highest tau first.

        With the thresholds sorted, ``map > tau_k`` exactly when the map's level (the number of thresholds
        below it) exceeds k, so the masks are the upper level sets of one integer level map and
        :class:`NestedComponents` grows their components from the top threshold down. Only the components
        that changed at a step get new IoUs; every step takes the best over all current components (V2) or
        the IoU of the largest one (V1, ties to the smaller label, as :func:`largest_component`).
        """
        n = maps.shape[0]
        t = len(thr)
        sorted_thr, perm = thr.sort()
        levels = torch.searchsorted(sorted_thr, maps.contiguous())  # number of thresholds < value
        levels = levels.masked_fill(maps.isnan(), 0)
        sweep = NestedComponents(levels, t, self.connectivity)
        iou = torch.zeros(sweep.parent.numel(), dtype=torch.float64, device=maps.device)
        out = torch.empty(n, t, dtype=torch.float64, device=maps.device)
        best = torch.zeros(n, dtype=torch.float64, device=maps.device)
        column = perm.tolist()
        for k in sweep:
            if sweep.changed.numel():
                ch = sweep.changed
                cand = sweep.boxes(ch)  # (K, 4)
                iou.index_copy_(0, ch, box_iou(cand[:, None], gt.index_select(0, sweep.image(ch))).amax(1))
                roots = sweep.roots
                img = sweep.image(roots)
                if self.multi_contour:
                    best = torch.zeros_like(best).scatter_reduce_(0, img, iou.index_select(0, roots), "amax")
                else:
                    area = sweep.area.index_select(0, roots)
                    top = torch.zeros(n, dtype=area.dtype, device=area.device).scatter_reduce_(0, img, area, "amax")
                    big = (area == top.index_select(0, img)).nonzero()[:, 0]
                    first = torch.full((n,), sweep.parent.numel(), dtype=roots.dtype, device=roots.device)
                    first.scatter_reduce_(0, img.index_select(0, big), roots.index_select(0, big), "amin")
                    has = first < sweep.parent.numel()
                    best = torch.where(has, iou.index_select(0, first.clamp_max(sweep.parent.numel() - 1)),
                                       torch.zeros_like(best))
            out[:, column[k]] = best
        return out

    def update(self, maps: Tensor, boxes: Tensor) -> None:
        """Add a batch: maps (N, H, W) and ground-truth boxes (N, 4) or (N, M, 4), x1/y1 exclusive."""
        best = self.best_ious(maps, boxes)  # (N, T)
        delta = torch.tensor(self.iou_thresholds, dtype=best.dtype, device=best.device)
        self.hits += (best[:, :, None] >= delta).sum(0).cpu()
        self.count += best.shape[0]

    def compute(self) -> MaxBoxAccResult:
        """MaxBoxAccV2 over everything accumulated."""
        if self.count == 0:
            raise ValueError("MaxBoxAccV2.compute() with no image: update() it with maps of at least one image first")
        curve = self.hits.double() / self.count  # (T, D)
        best, arg = curve.max(0)
        per = {d: float(b) for d, b in zip(self.iou_thresholds, best, strict=True)}
        thr = {d: float(self.thresholds[i]) for d, i in zip(self.iou_thresholds, arg, strict=True)}
        return MaxBoxAccResult(float(best.mean()), per, thr, curve)


def _same_shape(masks: Tensor, maps: Tensor, what: str) -> Tensor:
    """(N, H, W) or (N, 1, H, W) masks as (N, H, W) bool on the maps' device; ValueError when they do not match."""
    masks = torch.as_tensor(masks, device=maps.device).bool()
    if masks.dim() == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if masks.shape != maps.shape:
        raise ValueError(f"{what} {tuple(masks.shape)} must match the maps {tuple(maps.shape)}")
    return masks


def max_box_acc_v2(maps: Tensor, boxes: Tensor, thresholds: Sequence[float] | Tensor | None = None,
                   iou_thresholds: Sequence[float] = (0.3, 0.5, 0.7), multi_contour: bool = True) -> MaxBoxAccResult:
    """MaxBoxAccV2 of a whole evaluation set at once (see :class:`MaxBoxAccV2`)."""
    acc = MaxBoxAccV2(thresholds, iou_thresholds, multi_contour)
    acc.update(maps, boxes)
    return acc.compute()


class PxAP:
    """Accumulate pixel score histograms over a dataset for the pixel average precision.

    Args:
        thresholds: CAM thresholds (default 0, 0.01, ..., 0.99).

    Example:
        >>> ap = PxAP()
        >>> for maps, masks in batches:
        ...     ap.update(maps, masks)
        >>> ap.compute()
    """

    def __init__(self, thresholds: Sequence[float] | Tensor | None = None) -> None:
        thr = default_thresholds() if thresholds is None else torch.as_tensor(thresholds).double()
        if thr.dim() != 1 or not len(thr) or not bool((thr[1:] > thr[:-1]).all()):
            raise ValueError("thresholds must be a non-empty increasing 1-D sequence")
        # bins [t0, t1), ..., [t_last, 1), [1, 2), [2, inf): as MaskEvaluator's right edges (.., 1, 2, 3)
        self.edges = torch.cat([thr, torch.tensor([1.0, 2.0], dtype=torch.float64)])
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated."""
        self.pos = torch.zeros(len(self.edges), dtype=torch.long)  # positives with score in bin j
        self.neg = torch.zeros(len(self.edges), dtype=torch.long)

    def update(self, maps: Tensor, masks: Tensor, ignore: Tensor | None = None) -> None:
        """Add a batch: maps (N, H, W), ground-truth masks (N, H, W) bool, optional ignore masks (N, H, W) bool.

        On the CPU a native kernel bins each image's scores (the same counts); elsewhere one bincount on the
        maps' device.
        """
        maps = as_maps(maps)
        masks = _same_shape(masks, maps, "masks")
        ignore = None if ignore is None else _same_shape(ignore, maps, "ignore masks")
        counts = pxap_histograms(maps, masks, ignore, self.edges)
        if counts is None:
            counts = self._histograms(_normalise(maps), masks, ignore)
        self.pos += counts[0].cpu()
        self.neg += counts[1].cpu()

    def _histograms(self, maps: Tensor, masks: Tensor, ignore: Tensor | None) -> tuple[Tensor, Tensor]:
        """(positives, negatives) by bin of normalised ``maps``, in one bincount on their device: two (E,) long."""
        nb = len(self.edges)
        # bucket j: edges[j] <= score < edges[j + 1]; below edges[0] -> -1 (not counted, as np.histogram)
        bucket = torch.bucketize(maps, self.edges.to(maps.device), right=True) - 1
        slot = (bucket + 1) * 2 + (~masks).long()  # slot 0, 1: below edges[0]; then (positive, negative) per bin
        if ignore is not None:
            slot = slot[~ignore]
        both = torch.bincount(slot.reshape(-1), minlength=2 * (nb + 1))[2:].view(nb, 2)
        return both[:, 0], both[:, 1]

    def compute(self) -> float:
        """PxAP over everything accumulated."""
        tp = self.pos.flip(0).cumsum(0).double()  # pixels scoring >= edge, highest edge first
        fp = self.neg.flip(0).cumsum(0).double()
        n_pos = self.pos.sum()
        if n_pos <= 0:
            raise ValueError("PxAP needs at least one positive ground-truth pixel (no image given, or every mask "
                             "empty)")
        precision = torch.where(tp + fp > 0, tp / (tp + fp).clamp_min(1), torch.zeros_like(tp))
        recall = tp / n_pos
        return float((precision[1:] * recall.diff()).sum())


def pxap(maps: Tensor, masks: Tensor, thresholds: Sequence[float] | Tensor | None = None,
         ignore: Tensor | None = None) -> float:
    """PxAP of a whole evaluation set at once (see :class:`PxAP`)."""
    ap = PxAP(thresholds)
    ap.update(maps, masks, ignore)
    return ap.compute()
