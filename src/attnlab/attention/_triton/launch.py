"""Python launchers of the Triton kernels: check and view the tensors, allocate the results, pick the grid.

Each full-size tensor (N, C, H, W) is read as (N, C, P) with P = H * W, which needs its H and W to merge
into one axis (``stride_h == W * stride_w``): NCHW and channels_last do, with or without a channel or
batch slice; any other layout is copied to NCHW first (:func:`readable`). Vectors are (N, C) or (N, P),
contiguous. Tile sizes follow the contiguous axis (:class:`Tuning`); a reduction splits its reduced
axis over several programs when the rest of the grid would not fill the device (:func:`_split`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import triton
from torch import Tensor

from . import gating, pooling
from .layout import mergeable, out_like, readable

__all__ = ["CBAMGrads", "Tuning", "tuning", "pool_hw", "pool_c", "gate_mul", "gate_dots",
           "mean_max_dot", "grad_x"]


@dataclass
class Tuning:
    """Block sizes and grid sizing of every launch (tests shrink them to cover many blocks on tiny tensors).

    Attributes:
        fast: the largest block along the contiguous axis (C for channels_last, P for NCHW).
        tile: elements of one (BC, BP) tile; the other axis's block is ``tile // fast block``.
        programs: programs a reduction aims for (splitting its reduced axis to reach them); None: four per
            multiprocessor of the tensor's GPU (16 on CPU, under the interpreter).
    """

    fast: int = 128
    tile: int = 2048
    programs: int | None = None


#: The settings every launcher reads.
tuning = Tuning()


def _pow2(v: int) -> int:
    return triton.next_power_of_2(max(1, v))


def _tile(c: int, p: int, channels_fast: bool) -> tuple[int, int]:
    """(BC, BP): the contiguous axis gets up to ``tuning.fast`` elements, the other the rest of the tile."""
    fast_len, slow_len = (c, p) if channels_fast else (p, c)
    bf = max(2, min(tuning.fast, _pow2(fast_len)))
    bs = max(2, min(max(1, tuning.tile // bf), _pow2(slow_len)))
    return (bf, bs) if channels_fast else (bs, bf)


def _channels_fast(strides: tuple[int, int, int]) -> bool:
    return strides[1] == 1 and strides[2] != 1


@functools.cache
def _multiprocessors(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def _target_programs(t: Tensor) -> int:
    if tuning.programs is not None:
        return tuning.programs
    return 4 * (_multiprocessors(t.device.index or 0) if t.is_cuda else 4)


def _split(t: Tensor, programs: int, length: int, block: int) -> tuple[int, int]:
    """(n_split, chunk): split ``length`` (in blocks of ``block``) over programs until about the target is reached."""
    n_blocks = triton.cdiv(length, block)
    want = max(1, min(n_blocks, triton.cdiv(_target_programs(t), max(1, programs))))
    per = triton.cdiv(n_blocks, want)
    return triton.cdiv(n_blocks, per), per * block


def _combine(part_sum: Tensor, part_max: Tensor | None, part_arg: Tensor | None, scale: float,
             dtype: torch.dtype) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Partials (N, S, L) -> (N, L): sum * scale and, if given, the maximum (``dtype``) and its first index."""
    n, s, length = part_sum.shape
    need_max = part_max is not None
    out_sum = part_sum.new_empty((n, length), dtype=dtype)
    out_max = part_sum.new_empty((n, length), dtype=dtype) if need_max else None
    out_arg = torch.empty((n, length), dtype=torch.int32, device=part_sum.device) if need_max else None
    bl = min(1024, _pow2(length))
    pooling.combine_kernel[(n * triton.cdiv(length, bl),)](
        part_sum, part_max if need_max else part_sum, part_arg if need_max else part_sum, out_sum,
        out_max if need_max else out_sum, out_arg if need_max else out_sum, length, s, scale, NEED_MAX=need_max,
        BL=bl)
    return out_sum, out_max, out_arg


def _reduced(n: int, s: int, length: int, dtype: torch.dtype, device: torch.device, need_max: bool):
    """Buffers for a reduction's results: final (N, L) in ``dtype`` when s == 1, else float32 partials (N, S, L)."""
    dt = dtype if s == 1 else torch.float32
    sums = torch.empty((n, s, length), dtype=dt, device=device)
    if not need_max:
        return sums, sums, sums
    return sums, torch.empty_like(sums), torch.empty((n, s, length), dtype=torch.int32, device=device)


def _finish(bufs, s: int, scale: float, dtype: torch.dtype, need_max: bool):
    """The (N, L) results of a reduction from its buffers (combining partials when it was split)."""
    sums, maxes, args = bufs
    if s == 1:
        return sums[:, 0], (maxes[:, 0] if need_max else None), (args[:, 0] if need_max else None)
    return _combine(sums, maxes if need_max else None, args if need_max else None, scale, dtype)


def pool_hw(x: Tensor, need_max: bool = True) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Spatial mean, maximum and first arg-max position of ``x`` (N, C, H, W): (N, C) x2 in x.dtype, (N, C) int32.

    Without ``need_max``: (mean, None, None), one read of ``x`` either way.
    """
    x, (sn, sc, sp) = readable(x)
    n, c, h, w = x.shape
    p = h * w
    bc, bp = _tile(c, p, _channels_fast((sn, sc, sp)))
    n_cblk = triton.cdiv(c, bc)
    s, chunk = _split(x, n * n_cblk, p, bp)
    bufs = _reduced(n, s, c, x.dtype, x.device, need_max)
    pooling.pool_hw_kernel[(n * n_cblk * s,)](x, sn, sc, sp, *bufs, c, p, n_cblk, s, chunk, 1.0 / p if s == 1 else 1.0,
                                             NEED_MAX=need_max, BC=bc, BP=bp)
    return _finish(bufs, s, 1.0 / p, x.dtype, need_max)


def pool_c(x: Tensor, ca: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Channel mean and maximum of ``x * ca`` (x (N, C, H, W), ca (N, C)) without forming the product.

    Returns (mean (N, 1, H, W), max (N, 1, H, W)) in the promoted dtype of x and ca, and the first arg-max
    channel (N, H * W) int32.
    """
    x, (sn, sc, sp) = readable(x)
    n, c, h, w = x.shape
    p = h * w
    dtype = torch.promote_types(x.dtype, ca.dtype)
    ca = ca.reshape(n, c).contiguous()
    bc, bp = _tile(c, p, _channels_fast((sn, sc, sp)))
    n_pblk = triton.cdiv(p, bp)
    s, chunk = _split(x, n * n_pblk, c, bc)
    bufs = _reduced(n, s, p, dtype, x.device, True)
    pooling.pool_c_kernel[(n * n_pblk * s,)](x, sn, sc, sp, ca, *bufs, c, p, n_pblk, s, chunk,
                                            1.0 / c if s == 1 else 1.0, BC=bc, BP=bp)
    mean, mx, arg = _finish(bufs, s, 1.0 / c, dtype, True)
    return mean.reshape(n, 1, h, w), mx.reshape(n, 1, h, w), arg


def gate_mul(x: Tensor, ca: Tensor, sa: Tensor | None = None) -> Tensor:
    """x * ca[:, :, None, None] (* sa) in one pass: x (N, C, H, W), ca (N, C), sa (N, 1, H, W) or None.

    The result has the promoted dtype of the three and ``x``'s memory layout (:func:`out_like`).
    """
    x, (sxn, sxc, sxp) = readable(x)
    n, c, h, w = x.shape
    p = h * w
    dtype = torch.promote_types(x.dtype, ca.dtype) if sa is None else \
        torch.promote_types(torch.promote_types(x.dtype, ca.dtype), sa.dtype)
    out = out_like(x, dtype)
    son, soc, sop = mergeable(out)
    ca = ca.reshape(n, c).contiguous()
    sav = sa.reshape(n, p).contiguous() if sa is not None else ca
    bc, bp = _tile(c, p, _channels_fast((sxn, sxc, sxp)))
    n_cblk, n_pblk = triton.cdiv(c, bc), triton.cdiv(p, bp)
    gating.gate_mul_kernel[(n * n_cblk * n_pblk,)](x, sxn, sxc, sxp, ca, sav, out, son, soc, sop, c, p, n_cblk, n_pblk,
                                                   HAS_SA=sa is not None, BC=bc, BP=bp)
    return out


def gate_dots(g: Tensor, x: Tensor, ca: Tensor | None = None, sa: Tensor | None = None
              ) -> tuple[Tensor, Tensor | None]:
    """One read of ``g`` and ``x`` (N, C, H, W): sum_p g x (sa[p]) (N, C) and, given ``sa``, sum_c g x ca[c] (N, H*W).

    ``ca`` (N, C) and ``sa`` (N, 1, H, W) come together (CBAM) or not at all (SE, ECA); results float32.
    """
    g, (sgn, sgc, sgp) = readable(g)
    x, (sxn, sxc, sxp) = readable(x)
    n, c, h, w = x.shape
    p = h * w
    has_sa = sa is not None
    bc, bp = _tile(c, p, _channels_fast((sxn, sxc, sxp)))
    n_cblk = triton.cdiv(c, bc)
    s, chunk = _split(x, n * n_cblk, p, bp)
    gca = torch.empty((n, s, c), dtype=torch.float32, device=x.device)
    gsa = torch.empty((n, n_cblk, p), dtype=torch.float32, device=x.device) if has_sa else gca
    cav = ca.reshape(n, c).contiguous() if has_sa else gca
    sav = sa.reshape(n, p).contiguous() if has_sa else gca
    gating.gate_dots_kernel[(n * n_cblk * s,)](g, sgn, sgc, sgp, x, sxn, sxc, sxp, cav, sav, gca, gsa, c, p, n_cblk, s,
                                               chunk, HAS_SA=has_sa, BC=bc, BP=bp)
    gca = gca[:, 0] if s == 1 else _combine(gca, None, None, 1.0, torch.float32)[0]
    if not has_sa:
        return gca, None
    return gca, (gsa[:, 0] if n_cblk == 1 else _combine(gsa, None, None, 1.0, torch.float32)[0])


def mean_max_dot(x: Tensor, gm: Tensor, gmax: Tensor, argc: Tensor) -> Tensor:
    """sum_p x[c, p] (gm[p] + [c == argc[p]] gmax[p]): x (N, C, H, W); gm, gmax (N, H*W) float; argc (N, H*W) int.

    The part of d ca flowing through CBAM's channel mean (``gm``: its gradient / C) and channel max. (N, C) float32.
    """
    x, (sxn, sxc, sxp) = readable(x)
    n, c, h, w = x.shape
    p = h * w
    gm = gm.reshape(n, p).float().contiguous()
    gmax = gmax.reshape(n, p).float().contiguous()
    argc = argc.reshape(n, p).to(torch.int32).contiguous()
    bc, bp = _tile(c, p, _channels_fast((sxn, sxc, sxp)))
    n_cblk = triton.cdiv(c, bc)
    s, chunk = _split(x, n * n_cblk, p, bp)
    out = torch.empty((n, s, c), dtype=torch.float32, device=x.device)
    gating.mean_max_dot_kernel[(n * n_cblk * s,)](x, sxn, sxc, sxp, gm, gmax, argc, out, c, p, n_cblk, s, chunk,
                                                  BC=bc, BP=bp)
    return out[:, 0] if s == 1 else _combine(out, None, None, 1.0, torch.float32)[0]


@dataclass
class CBAMGrads:
    """The (N, P) and (N, C) terms of CBAM's d x besides ``g``, ``ca`` and ``gavg`` (see :func:`grad_x`).

    Attributes:
        sa: spatial map (N, P); gm: d channel-mean / C (N, P); gmax: d channel-max (N, P); argc: its channels
        (N, P) int; gmx: d spatial-max (N, C); argp: its positions (N, C) int.
    """

    sa: Tensor
    gm: Tensor
    gmax: Tensor
    argc: Tensor
    gmx: Tensor
    argp: Tensor


def grad_x(g: Tensor, like: Tensor, ca: Tensor, gavg: Tensor, cbam: CBAMGrads | None = None) -> Tensor:
    """d x in one pass: g ca + gavg (channel gates) or CBAM's full expression (:func:`gating.grad_x_kernel`).

    Args:
        g: d out (N, C, H, W), any layout.
        like: x, whose dtype and memory layout d x takes.
        ca: channel weights (N, C).
        gavg: d spatial-mean / P (N, C).
        cbam: CBAM's other terms, or None for SE/ECA.
    """
    g, (sgn, sgc, sgp) = readable(g)
    n, c, h, w = like.shape
    p = h * w
    out = out_like(like)
    son, soc, sop = mergeable(out)
    ca = ca.reshape(n, c).contiguous()
    gavg = gavg.reshape(n, c).float().contiguous()
    if cbam is None:
        vecs = (ca,) * 6
    else:
        vecs = (cbam.sa.reshape(n, p).contiguous(), cbam.gm.reshape(n, p).float().contiguous(),
                cbam.gmax.reshape(n, p).float().contiguous(), cbam.argc.reshape(n, p).to(torch.int32).contiguous(),
                cbam.gmx.reshape(n, c).float().contiguous(), cbam.argp.reshape(n, c).to(torch.int32).contiguous())
    bc, bp = _tile(c, p, _channels_fast(mergeable(out)))
    n_cblk, n_pblk = triton.cdiv(c, bc), triton.cdiv(p, bp)
    gating.grad_x_kernel[(n * n_cblk * n_pblk,)](g, sgn, sgc, sgp, ca, gavg, *vecs, out, son, soc, sop, c, p, n_cblk,
                                                 n_pblk, CBAM=cbam is not None, BC=bc, BP=bp)
    return out
