"""The metrics' native CPU kernels (``regions_cpu.c``, compiled on first use by :mod:`attnlab.native`).

Each function returns None where the kernels do not apply (tensors off the CPU, no compiler, the kernels
disabled by ``ATTNLAB_NATIVE=0``, maps too large for 32-bit pixel indices), and the caller takes its batched
PyTorch path, which gives the same numbers (``tests/metrics`` compares them). The kernels run one image per
OpenMP task on torch's intra-op thread count.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import torch
from torch import Tensor

from ..native import NativeLibrary

__all__ = ["LIBRARY", "applies", "largest_boxes", "pxap_histograms", "sweep_best_ious"]

_P, _I, _C = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
_SIGNATURES: dict[str, list[type]] = {"largest_box": [_P, _I, _I, _I, _C, _P, _C]}
for _s in ("f32", "f64"):
    _SIGNATURES[f"sweep_{_s}"] = [_P, _I, _I, _I, _P, _I, _C, _P, _I, _C, _P, _C]
    _SIGNATURES[f"pxap_hist_{_s}"] = [_P, _P, _P, _I, _I, _P, _I, _P, _P, _C]

#: The library (loaded on first use).
LIBRARY = NativeLibrary("metrics_cpu", Path(__file__).with_name("regions_cpu.c"), _SIGNATURES)
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}


def applies(*tensors: Tensor) -> bool:
    """True when the kernels can take these tensors: all on the CPU, images of fewer than 2**31 pixels, and a
    library that loads."""
    if any(t.device.type != "cpu" for t in tensors):
        return False
    if any(t.dim() >= 2 and t.shape[-1] * t.shape[-2] >= 2**31 for t in tensors):
        return False
    return LIBRARY.available()


def _maps_arg(maps: Tensor) -> tuple[Tensor, str]:
    """Float32 or float64 contiguous maps (half precision widened: exact) and the kernels' suffix."""
    if maps.dtype not in _SUFFIX:
        maps = maps.float()
    return maps.contiguous(), _SUFFIX[maps.dtype]


def _failed(flag: float) -> None:
    if flag < 0:
        raise MemoryError("attnlab: the native metrics kernels could not allocate their buffers")


def largest_boxes(mask: Tensor, connectivity: int) -> Tensor | None:
    """Box of the largest connected component of each mask (as :func:`~._regions.largest_component` then
    :func:`~._regions.mask_to_box`): (B, H, W) -> (B, 4) long, or None where the kernels do not apply."""
    if not applies(mask):
        return None
    b, h, w = mask.shape
    m = mask.bool().contiguous()
    out = torch.zeros(b, 4, dtype=torch.long)
    if b:
        LIBRARY.load().largest_box(m.data_ptr(), b, h, w, connectivity, out.data_ptr(), torch.get_num_threads())
        _failed(float(out[0, 0]))
    return out


def sweep_best_ious(maps: Tensor, sorted_thresholds: Tensor, gt: Tensor, connectivity: int,
                    multi_contour: bool) -> Tensor | None:
    """Best IoU of each image at each sorted threshold (MaxBoxAccV2's sweep, on maps before normalisation):
    (N, H, W), (T,) float64 increasing, (N, M, 4) long -> (N, T) float64; None where the kernels do not apply."""
    if not applies(maps, gt):
        return None
    n, h, w = maps.shape
    x, suffix = _maps_arg(maps)
    thr = sorted_thresholds.double().contiguous()
    boxes = gt.long().contiguous()
    out = torch.zeros(n, len(thr), dtype=torch.float64)
    if n:
        getattr(LIBRARY.load(), f"sweep_{suffix}")(x.data_ptr(), n, h, w, thr.data_ptr(), len(thr), connectivity,
                                                     boxes.data_ptr(), boxes.shape[1], int(multi_contour),
                                                     out.data_ptr(), torch.get_num_threads())
        _failed(float(out[0, 0]))
    return out


def pxap_histograms(maps: Tensor, masks: Tensor, ignore: Tensor | None, edges: Tensor) -> tuple[Tensor, Tensor] | None:
    """Pixels of the masks (``pos``) and outside them (``neg``) by bin of the min-max normalised score
    (``edges[j] <= score < edges[j + 1]``, the last bin open), ignored pixels left out: (N, H, W) x 2 (+ ignore),
    (E,) float64 increasing -> two (E,) long; None where the kernels do not apply."""
    if not applies(maps, masks, *(() if ignore is None else (ignore,))) or not bool((edges[1:] >= edges[:-1]).all()):
        return None  # (edges out of order, from thresholds above 1: torch.bucketize decides)
    n, h, w = maps.shape
    x, suffix = _maps_arg(maps)
    m = masks.bool().contiguous()
    ig = None if ignore is None else ignore.bool().contiguous()
    e = edges.double().contiguous()
    pos, neg = torch.zeros(len(e), dtype=torch.long), torch.zeros(len(e), dtype=torch.long)
    if n:
        kernel = getattr(LIBRARY.load(), f"pxap_hist_{suffix}")
        kernel(x.data_ptr(), m.data_ptr(), None if ig is None else ig.data_ptr(), n, h * w, e.data_ptr(), len(e),
               pos.data_ptr(), neg.data_ptr(), torch.get_num_threads())
        _failed(float(pos[0]))
    return pos, neg
