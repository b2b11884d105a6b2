"""ROAD: RemOve And Debias. Rong, Leemann, Borisov, Kasneci & Kasneci, "A Consistent and Efficient Evaluation
Strategy for Attribution Methods" (ICML 2022, https://arxiv.org/abs/2202.00449).

Deletion-style metrics replace the removed pixels with a constant or a blur, and the model then reacts to the
shape of the removed region (the mask leaks the attribution) rather than to the missing information. ROAD
removes a percentile of the pixels in attribution order and *imputes* them by **noisy linear imputation**:
each removed pixel takes the weighted mean of its 8 neighbours (weight 1/6 for the 4 edge neighbours, 1/12
for the 4 diagonal ones, renormalised at the image border), solved jointly for all removed pixels as one
sparse linear system per image and channel, plus Gaussian noise of standard deviation ``noise`` (0.01, as the
authors and pytorch-grad-cam). The removed region then carries no trace of its outline.

* **MoRF** (most relevant first): remove the p % most salient pixels; a faithful map makes the score drop fast
  (lower is better).
* **LeRF** (least relevant first): remove the p % least salient; a faithful map keeps the score (higher is better).

The defaults follow pytorch-grad-cam's ``ROADCombined``: percentiles 10, 20, ..., 90, the target class's logit
as the score, and the combined score (LeRF - MoRF) / 2 averaged over the percentiles (higher is better).
Here ``p`` is always the percentage *removed* (pytorch-grad-cam's classes take the percentage kept; the average
over the symmetric default percentiles is the same), exactly round(H W p / 100) pixels, ties in the map
broken in row-major order.

The linear systems are solved by conjugate gradients preconditioned by a multigrid V-cycle (a dozen
iterations whatever the image size), batched over images and channels, with the 8-neighbour sum as a 3 x 3
convolution: no sparse matrix, no SciPy, the same code on CPU and GPU, in float64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ._regions import as_maps
from .faithfulness import _frozen

__all__ = ["PERCENTILES", "ROADResult", "noisy_linear_imputation", "removal_masks", "road_scores", "road_curve"]

#: percentages of pixels removed, pytorch-grad-cam's ROAD defaults
PERCENTILES: tuple[int, ...] = (10, 20, 30, 40, 50, 60, 70, 80, 90)
ORDERS = ("morf", "lerf")
#: neighbour weights of the imputation (the ROAD authors' ``neighbors_weights``)
_STENCIL = ((1 / 12, 1 / 6, 1 / 12), (1 / 6, 0.0, 1 / 6), (1 / 12, 1 / 6, 1 / 12))


# ----------------------------------------------------------------------------------------------------------------
# Noisy linear imputation


def _neighbour_sum(u: Tensor, kernel: Tensor) -> Tensor:
    """Weighted sum of each pixel's in-bounds neighbours: (P, 1, H, W) -> (P, 1, H, W)."""
    return F.conv2d(u, kernel, padding=1)


@dataclass
class _Level:
    """One grid of the multigrid hierarchy: the unknowns (float 0/1, (P, 1, H, W)), their neighbour weights."""

    removed: Tensor
    deg: Tensor  # (1, 1, H, W) in-bounds neighbour weight of each pixel
    inv: Tensor  # 1 / deg (0 where a pixel has no neighbour)

    def op(self, u: Tensor, kernel: Tensor) -> Tensor:
        """The system's operator: (deg u - neighbour_sum(u)) on the unknowns, 0 elsewhere."""
        return (self.deg * u - _neighbour_sum(u, kernel)) * self.removed


def _levels(removed: Tensor, kernel: Tensor) -> list[_Level]:
    """The grids, each half the previous one's size: a coarse pixel is unknown when its 2 x 2 fine ones all are."""
    levels = []
    while True:
        h, w = removed.shape[-2:]
        deg = _neighbour_sum(torch.ones(1, 1, h, w, dtype=removed.dtype, device=removed.device), kernel)
        inv = torch.where(deg > 0, 1 / torch.where(deg > 0, deg, 1), 0)  # a 1 x 1 image has no neighbours
        levels.append(_Level(removed, deg, inv))
        if min(h, w) < 8:
            return levels
        removed = -F.max_pool2d(-removed, 2, ceil_mode=True)


def _prolong(coarse: Tensor, size: Sequence[int], bilinear: Tensor) -> Tensor:
    """Bilinear interpolation of a grid to the next finer one: (P, 1, h, w) -> (P, 1, *size)."""
    return F.conv_transpose2d(coarse, bilinear, stride=2, padding=1)[..., :size[0], :size[1]]


def _restrict(fine: Tensor, size: Sequence[int], bilinear: Tensor) -> Tensor:
    """The transpose of :func:`_prolong` (full weighting): (P, 1, H, W) -> (P, 1, *size)."""
    h, w = fine.shape[-2:]
    padded = F.pad(fine, (0, 2 * size[1] - w, 0, 2 * size[0] - h))
    return F.conv2d(padded, bilinear, stride=2, padding=1)


def _v_cycle(r: Tensor, levels: list[_Level], kernel: Tensor, bilinear: Tensor, sweeps: int = 2,
             omega: float = 0.8) -> Tensor:
    """One multigrid V-cycle from zero on ``r`` (P, 1, H, W): a symmetric positive definite preconditioner.

    Damped Jacobi before and after the coarse correction (the same number of sweeps, so the cycle is symmetric),
    bilinear prolongation and its transpose as restriction, the same stencil on every grid; on the coarsest grid,
    Jacobi sweeps.
    """
    top = levels[0]

    def smooth(e: Tensor, n: int) -> Tensor:
        for _ in range(n):
            e = e + omega * top.inv * (r - top.op(e, kernel))
        return e

    if len(levels) == 1:
        return smooth(torch.zeros_like(r), 4 * max(r.shape[-2:]))
    e = smooth(torch.zeros_like(r), sweeps)
    size = levels[1].removed.shape[-2:]
    coarse = _restrict(r - top.op(e, kernel), size, bilinear) * levels[1].removed
    correction = _v_cycle(coarse, levels[1:], kernel, bilinear, sweeps, omega)
    return smooth(e + _prolong(correction, r.shape[-2:], bilinear) * top.removed, sweeps)


def _solve(planes: Tensor, removed: Tensor, tol: float, max_iter: int) -> Tensor:
    """The planes (P, 1, H, W) float64 with their removed pixels (float 0/1, same shape) imputed, noise-free.

    The removed pixels u solve (deg u - neighbour_sum(u)) = neighbour_sum(kept pixels) on the removed pixels:
    symmetric positive definite when the plane keeps a pixel. Conjugate gradients preconditioned by a multigrid
    V-cycle, each plane with its own step sizes, stop when every plane's residual is below ``tol`` times its
    right-hand side (a dozen iterations whatever the size).
    """
    kernel = torch.tensor(_STENCIL, dtype=planes.dtype, device=planes.device).view(1, 1, 3, 3)
    line = torch.tensor([0.25, 0.75, 0.75, 0.25], dtype=planes.dtype, device=planes.device)
    bilinear = (line[:, None] * line[None, :]).view(1, 1, 4, 4)
    levels = _levels(removed, kernel)
    kept = 1 - removed
    rhs = _neighbour_sum(planes * kept, kernel) * removed

    def dot(a: Tensor, b: Tensor) -> Tensor:
        return (a * b).sum((1, 2, 3), keepdim=True)

    v = torch.zeros_like(rhs)
    r = rhs
    z = _v_cycle(r, levels, kernel, bilinear)
    p, rz = z, dot(r, z)
    stop = tol * rhs.flatten(1).norm(dim=1)
    for _ in range(max_iter):
        if bool((r.flatten(1).norm(dim=1) <= stop).all()):
            break
        ap = levels[0].op(p, kernel)
        pap = dot(p, ap)
        alpha = torch.where(pap > 0, rz / torch.where(pap > 0, pap, 1), 0)
        v, r = v + alpha * p, r - alpha * ap
        z = _v_cycle(r, levels, kernel, bilinear)
        rz_new = dot(r, z)
        p = z + torch.where(rz > 0, rz_new / torch.where(rz > 0, rz, 1), 0) * p
        rz = rz_new
    return planes * kept + v * removed


def noisy_linear_imputation(images: Tensor, removed: Tensor, noise: float = 0.01,
                            generator: torch.Generator | None = None, *, tol: float = 1e-6,
                            max_iter: int = 200) -> Tensor:
    """Fill the removed pixels of each image by ROAD's noisy linear imputation.

    Each removed pixel equals the weighted mean of its in-bounds neighbours (removed ones included: one linear
    system per image and channel), plus N(0, noise^2) noise; kept pixels are unchanged.

    Args:
        images: (N, C, H, W).
        removed: (N, H, W) bool, True where a pixel is removed.
        noise: standard deviation of the Gaussian noise added to the imputed pixels (0 for none).
        generator: the noise's random generator (default torch's global one on the images' device).
        tol: relative residual at which the conjugate gradients stop.
        max_iter: conjugate-gradient iterations at most (each one multigrid V-cycle).

    Returns:
        (N, C, H, W) in the images' dtype. An image with every pixel removed becomes zeros (+ noise).
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got {tuple(images.shape)}")
    n, c, h, w = images.shape
    if removed.shape != (n, h, w):
        raise ValueError(f"removed {tuple(removed.shape)} must be (N, H, W) = {(n, h, w)}")
    mask = removed.to(device=images.device, dtype=torch.float64)[:, None].expand(n, c, h, w).reshape(n * c, 1, h, w)
    filled = _solve(images.detach().double().reshape(n * c, 1, h, w), mask, tol, max_iter)
    if noise:
        dev = generator.device if generator is not None else filled.device
        filled = filled + noise * torch.randn(filled.shape, generator=generator, dtype=torch.float64,
                                              device=dev).to(filled.device) * mask
    return filled.reshape(n, c, h, w).to(images.dtype)


# ----------------------------------------------------------------------------------------------------------------
# ROAD


def removal_masks(maps: Tensor, percentiles: Sequence[float] = PERCENTILES, order: str = "morf") -> Tensor:
    """Which pixels each percentile removes: (N, H, W) maps -> (N, P, H, W) bool.

    ``order="morf"`` removes the round(H W p / 100) most salient pixels, ``"lerf"`` the least salient; equal
    saliency is taken in row-major order.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if not len(percentiles) or any(not 0 <= float(p) <= 100 for p in percentiles):
        raise ValueError(f"percentiles must be a non-empty list of numbers in [0, 100], got {percentiles}")
    maps = as_maps(maps)
    n, h, w = maps.shape
    hw = h * w
    order_idx = torch.argsort(maps.reshape(n, hw), dim=1, descending=order == "morf", stable=True)
    rank = torch.empty_like(order_idx).scatter_(1, order_idx, torch.arange(hw, device=maps.device).expand(n, hw))
    counts = torch.tensor([round(hw * float(p) / 100) for p in percentiles], device=maps.device)  # (P,)
    return (rank[:, None, :] < counts[None, :, None]).view(n, len(percentiles), h, w)


def _scores(model: Callable[[Tensor], Tensor], x: Tensor, classes: Tensor, probability: bool) -> Tensor:
    """The target class's logit (or softmax probability) of each row: (B,) float."""
    out = model(x).float()
    if probability:
        out = out.softmax(1)
    return out.gather(1, classes[:, None]).squeeze(1)


def _classes(model: Callable[[Tensor], Tensor], images: Tensor, targets: int | Tensor | None) -> Tensor:
    n = images.shape[0]
    if targets is None:
        return model(images).argmax(1)
    return torch.as_tensor(targets, device=images.device).long().reshape(-1).expand(n)


def _check(images: Tensor, maps: Tensor, batch_size: int) -> Tensor:
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got {tuple(images.shape)}")
    maps = as_maps(maps).to(images.device)
    n, _, h, w = images.shape
    if tuple(maps.shape) != (n, h, w):
        raise ValueError(f"maps {tuple(maps.shape)} must be (N, H, W) = {(n, h, w)} (upsample them first)")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return maps


def road_curve(model: Callable[[Tensor], Tensor], images: Tensor, maps: Tensor, order: str = "morf",
               targets: int | Tensor | None = None, *, percentiles: Sequence[float] = PERCENTILES,
               noise: float = 0.01, probability: bool = False, batch_size: int = 64,
               generator: torch.Generator | None = None) -> Tensor:
    """The model's score after ROAD removal at each percentile, in one order.

    Args:
        model: returns (N, classes) logits; run in eval mode without autograd (modes restored after).
        images: (N, C, H, W) inputs as the model takes them.
        maps: (N, H, W) saliency at the image size.
        order: "morf" (most relevant first) or "lerf" (least relevant first).
        targets: class per image (int or (N,)); default the model's prediction on the image.
        percentiles: percentages of pixels removed.
        noise: the imputation noise's standard deviation.
        probability: read the softmax probability rather than the logit (pytorch-grad-cam reads the logit).
        batch_size: imputed images per forward pass.
        generator: the noise's random generator.

    Returns:
        (N, P) scores of the target class after removal (compare with the score on the image itself).
    """
    maps = _check(images, maps, batch_size)
    removed = removal_masks(maps, percentiles, order)  # (N, P, H, W)
    n, p = removed.shape[:2]
    with _frozen(model), torch.no_grad():
        classes = _classes(model, images, targets)
        flat = removed.reshape(n * p, *removed.shape[2:])
        img = torch.arange(n, device=images.device).repeat_interleave(p)  # (N P,): image of each row
        scores = torch.empty(n * p, device=images.device)
        for lo in range(0, n * p, batch_size):
            sl = slice(lo, lo + batch_size)
            imputed = noisy_linear_imputation(images[img[sl]], flat[sl], noise, generator)
            scores[sl] = _scores(model, imputed, classes[img[sl]], probability)
    return scores.view(n, p)


@dataclass
class ROADResult:
    """Both ROAD curves of a batch.

    Attributes:
        percentiles: percentages of pixels removed.
        base: (N,) the target's score on the images themselves.
        morf: (N, P) scores after removing the most salient pixels (lower: more faithful).
        lerf: (N, P) scores after removing the least salient pixels (higher: more faithful).
    """

    percentiles: tuple[float, ...]
    base: Tensor
    morf: Tensor
    lerf: Tensor

    @property
    def combined(self) -> Tensor:
        """(N,) pytorch-grad-cam's ``ROADCombined``: the mean over the percentiles of (LeRF - MoRF) / 2 (higher:
        more faithful)."""
        return (self.lerf - self.morf).mean(1) / 2

    @property
    def morf_drop(self) -> Tensor:
        """(N, P) score lost by removing the most salient pixels (pytorch-grad-cam's MoRF value is its negative)."""
        return self.base[:, None] - self.morf

    @property
    def lerf_drop(self) -> Tensor:
        """(N, P) score lost by removing the least salient pixels."""
        return self.base[:, None] - self.lerf


def road_scores(model: Callable[[Tensor], Tensor], images: Tensor, maps: Tensor, targets: int | Tensor | None = None, *,
         percentiles: Sequence[float] = PERCENTILES, noise: float = 0.01, probability: bool = False,
         batch_size: int = 64, generator: torch.Generator | None = None) -> ROADResult:
    """ROAD in both orders (arguments as :func:`road_curve`); ``.combined`` is pytorch-grad-cam's ROADCombined.

    Example:
        >>> res = road_scores(model, x, maps)          # maps: (N, H, W) from any CAM method
        >>> res.combined.mean()                 # higher: more faithful
    """
    _check(images, maps, batch_size)
    with _frozen(model), torch.no_grad():
        classes = _classes(model, images, targets)
        base = _scores(model, images, classes, probability)
    kw = dict(percentiles=percentiles, noise=noise, probability=probability, batch_size=batch_size,
              generator=generator)
    morf = road_curve(model, images, maps, "morf", classes, **kw)
    lerf = road_curve(model, images, maps, "lerf", classes, **kw)
    return ROADResult(tuple(float(p) for p in percentiles), base, morf, lerf)
