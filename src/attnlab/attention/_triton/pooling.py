"""Triton kernels of the forward reductions: spatial pooling per channel, channel pooling per position.

Every full-size tensor is read as (N, C, P), P = H * W, through its strides ``(s_n, s_c, s_p)``: NCHW
(``s_p = 1``) and channels_last (``s_c = 1``) take the same kernel, Triton specialising the stride of
one, so the loads along the contiguous axis are vectorised. A tile is (BC, BP) of one sample.

A reduction splits its reduced axis over ``n_split`` programs when the other axes alone would leave
the GPU idle (few samples, few tiles): each program then writes a partial result (N, n_split, L) and
:func:`combine_kernel` reduces the splits (sum, maximum, first arg-max). With ``n_split == 1`` the
kernels write the final result directly (``scale`` folded in). Accumulation is in float32; arg-maxes
are the first maximum along the reduced axis (ties: the lowest index, as ``torch.max(dim)``): each lane of a
tile keeps its own running maximum and first position, reduced once at the end.
"""

from __future__ import annotations

import triton
import triton.language as tl

__all__ = ["pool_hw_kernel", "pool_c_kernel", "combine_kernel"]


@triton.jit
def _first_max(mx, arg, AXIS: tl.constexpr):
    """Per-lane maxima and positions (2-D) -> the maximum along ``AXIS`` and its lowest position (first arg-max)."""
    best = tl.max(mx, AXIS)
    cand = tl.where(mx == tl.expand_dims(best, AXIS), arg, 2147483647)
    return best, tl.min(cand, AXIS)


@triton.jit
def pool_hw_kernel(x_ptr, sxn, sxc, sxp, sum_ptr, max_ptr, arg_ptr, C, P, n_cblk, n_split, chunk, scale,
                   NEED_MAX: tl.constexpr, BC: tl.constexpr, BP: tl.constexpr):
    """Per channel over P: sum * scale, maximum and its first position. Grid: N * n_cblk * n_split.

    Writes (N, n_split, C) at ``sum_ptr`` (and ``max_ptr``, ``arg_ptr`` when ``NEED_MAX``); each program
    reduces positions [s * chunk, (s + 1) * chunk) of its BC channels.
    """
    pid = tl.program_id(0)
    s = pid % n_split
    cb = (pid // n_split) % n_cblk
    n = (pid // n_split // n_cblk).to(tl.int64)
    cs = cb * BC + tl.arange(0, BC)
    cmask = cs < C
    rows = x_ptr + n * sxn + cs[:, None].to(tl.int64) * sxc  # (BC, 1) row starts
    acc = tl.zeros([BC, BP], dtype=tl.float32)  # per-lane sums, maxima and their first positions
    mx = tl.full([BC, BP], float("-inf"), dtype=tl.float32)
    arg = tl.zeros([BC, BP], dtype=tl.int32)
    p_end = tl.minimum(s * chunk + chunk, P)
    for p0 in range(s * chunk, p_end, BP):
        ps = p0 + tl.arange(0, BP)
        pmask = ps < p_end
        v = tl.load(rows + ps[None, :].to(tl.int64) * sxp, mask=cmask[:, None] & pmask[None, :], other=0.0)
        v = v.to(tl.float32)  # (BC, BP)
        acc += v
        if NEED_MAX:
            upd = (v > mx) & pmask[None, :]  # strict: each lane keeps its first maximum
            mx = tl.where(upd, v, mx)
            arg = tl.where(upd, ps[None, :], arg)
    total = tl.sum(acc, 1)
    if NEED_MAX:
        mx, arg = _first_max(mx, arg, 1)
    out = (n * n_split + s) * C + cs
    tl.store(sum_ptr + out, total * scale, mask=cmask)
    if NEED_MAX:
        tl.store(max_ptr + out, mx, mask=cmask)
        tl.store(arg_ptr + out, arg, mask=cmask)


@triton.jit
def pool_c_kernel(x_ptr, sxn, sxc, sxp, ca_ptr, sum_ptr, max_ptr, arg_ptr, C, P, n_pblk, n_split, chunk, scale,
                  BC: tl.constexpr, BP: tl.constexpr):
    """Per position over C of ``x * ca``: sum * scale, maximum and its first channel. Grid: N * n_pblk * n_split.

    ``ca`` is (N, C) contiguous; x * ca is formed in registers only. Writes (N, n_split, P); each program
    reduces channels [s * chunk, (s + 1) * chunk) of its BP positions.
    """
    pid = tl.program_id(0)
    s = pid % n_split
    pb = (pid // n_split) % n_pblk
    n = (pid // n_split // n_pblk).to(tl.int64)
    ps = pb * BP + tl.arange(0, BP)
    pmask = ps < P
    cols = x_ptr + n * sxn + ps[None, :].to(tl.int64) * sxp  # (1, BP) column starts
    acc = tl.zeros([BC, BP], dtype=tl.float32)  # per-lane sums, maxima and their first channels
    mx = tl.full([BC, BP], float("-inf"), dtype=tl.float32)
    arg = tl.zeros([BC, BP], dtype=tl.int32)
    c_end = tl.minimum(s * chunk + chunk, C)
    for c0 in range(s * chunk, c_end, BC):
        cs = c0 + tl.arange(0, BC)
        cmask = cs < c_end
        v = tl.load(cols + cs[:, None].to(tl.int64) * sxc, mask=cmask[:, None] & pmask[None, :], other=0.0)
        w = tl.load(ca_ptr + n * C + cs, mask=cmask, other=0.0).to(tl.float32)
        v = v.to(tl.float32) * w[:, None]  # (BC, BP): x * ca
        acc += v
        upd = (v > mx) & cmask[:, None]  # strict: each lane keeps its first maximum
        mx = tl.where(upd, v, mx)
        arg = tl.where(upd, cs[:, None], arg)
    total = tl.sum(acc, 0)
    mx, arg = _first_max(mx, arg, 0)
    out = (n * n_split + s) * P + ps
    tl.store(sum_ptr + out, total * scale, mask=pmask)
    tl.store(max_ptr + out, mx, mask=pmask)
    tl.store(arg_ptr + out, arg, mask=pmask)


@triton.jit
def combine_kernel(sum_ptr, max_ptr, arg_ptr, sum_out, max_out, arg_out, L, n_split, scale,
                   NEED_MAX: tl.constexpr, BL: tl.constexpr):
    """Reduce partials (N, n_split, L) to (N, L): sum * scale, maximum, first arg-max. Grid: N * cdiv(L, BL)."""
    n_lblk = tl.cdiv(L, BL)
    pid = tl.program_id(0)
    n = (pid // n_lblk).to(tl.int64)
    ls = (pid % n_lblk) * BL + tl.arange(0, BL)
    lmask = ls < L
    acc = tl.zeros([BL], dtype=tl.float32)
    mx = tl.full([BL], float("-inf"), dtype=tl.float32)
    arg = tl.zeros([BL], dtype=tl.int32)
    for s in range(0, n_split):
        src = (n * n_split + s) * L + ls
        acc += tl.load(sum_ptr + src, mask=lmask, other=0.0)
        if NEED_MAX:
            m = tl.load(max_ptr + src, mask=lmask, other=float("-inf"))
            a = tl.load(arg_ptr + src, mask=lmask, other=0)
            upd = m > mx  # earlier splits hold earlier indices: strict > keeps the first maximum
            mx = tl.where(upd, m, mx)
            arg = tl.where(upd, a, arg)
    out = n * L + ls
    tl.store(sum_out + out, acc * scale, mask=lmask)
    if NEED_MAX:
        tl.store(max_out + out, mx, mask=lmask)
        tl.store(arg_out + out, arg, mask=lmask)
