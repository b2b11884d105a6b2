"""Triton kernels of the gated product and of its hand-written backward.

Forward: ``out = x * ca[c] (* sa[p])`` in one pass (:func:`gate_mul_kernel`). Backward of CBAM
(x1 = x * ca, out = x1 * sa, the spatial descriptors mean_c x1 and max_c x1 taken from ``x``):

* pass 1 (:func:`gate_dots_kernel`): d sa[p] = sum_c g x ca and the direct part of d ca[c] = sum_p g x sa,
  both from one read of ``g`` and ``x`` (for SE/ECA, without ``sa``: d w[c] = sum_p g x);
* pass 2 (:func:`mean_max_dot_kernel`): the part of d ca that flows through the spatial descriptors,
  sum_p x (gm[p] + [c == argc[p]] gmax[p]), one read of ``x``;
* pass 3 (:func:`grad_x_kernel`): d x = ca (g sa + gm + [c == argc] gmax) + gavg + [p == argp] gmx, one read
  of ``g`` and one write: every term, the max-pool scatters included, in the same pass.

Tensors are read as (N, C, P) through strides, as in :mod:`.pooling`; vectors (N, C) and (N, P) are
contiguous. The reductions split their reduced axis and write partials like the pooling kernels.
"""

from __future__ import annotations

import triton
import triton.language as tl

__all__ = ["gate_mul_kernel", "gate_dots_kernel", "mean_max_dot_kernel", "grad_x_kernel"]


@triton.jit
def gate_mul_kernel(x_ptr, sxn, sxc, sxp, ca_ptr, sa_ptr, o_ptr, son, soc, sop, C, P, n_cblk, n_pblk,
                    HAS_SA: tl.constexpr, BC: tl.constexpr, BP: tl.constexpr):
    """out = x * ca[c] (* sa[p]), one (BC, BP) tile per program. Grid: N * n_cblk * n_pblk."""
    pid = tl.program_id(0)
    n = (pid // n_cblk // n_pblk).to(tl.int64)
    cs = (pid % n_cblk) * BC + tl.arange(0, BC)
    ps = (pid // n_cblk % n_pblk) * BP + tl.arange(0, BP)
    c_off = cs[:, None].to(tl.int64)  # (BC, 1)
    p_off = ps[None, :].to(tl.int64)  # (1, BP)
    cmask = cs < C
    pmask = ps < P
    mask = cmask[:, None] & pmask[None, :]
    v = tl.load(x_ptr + n * sxn + c_off * sxc + p_off * sxp, mask=mask, other=0.0).to(tl.float32)
    w = tl.load(ca_ptr + n * C + cs, mask=cmask, other=0.0).to(tl.float32)
    v = v * w[:, None]
    if HAS_SA:
        v = v * tl.load(sa_ptr + n * P + ps, mask=pmask, other=0.0).to(tl.float32)[None, :]
    tl.store(o_ptr + n * son + c_off * soc + p_off * sop, v, mask=mask)


@triton.jit
def gate_dots_kernel(g_ptr, sgn, sgc, sgp, x_ptr, sxn, sxc, sxp, ca_ptr, sa_ptr, gca_ptr, gsa_ptr, C, P, n_cblk,
                     n_split, chunk, HAS_SA: tl.constexpr, BC: tl.constexpr, BP: tl.constexpr):
    """sum_p g x (sa) per channel -> (N, n_split, C) partials; with ``HAS_SA`` also sum_c g x ca per position.

    Grid: N * n_cblk * n_split; a program covers BC channels and positions [s * chunk, (s + 1) * chunk). The
    per-position sums over its BC channels go to (N, n_cblk, P) partials at ``gsa_ptr``.
    """
    pid = tl.program_id(0)
    s = pid % n_split
    t = pid // n_split
    cb = t % n_cblk
    n = (t // n_cblk).to(tl.int64)
    cs = cb * BC + tl.arange(0, BC)
    cmask = cs < C
    c_off = cs[:, None].to(tl.int64)  # (BC, 1)
    acc = tl.zeros([BC, BP], dtype=tl.float32)  # per-lane sums, reduced once at the end
    if HAS_SA:
        w = tl.load(ca_ptr + n * C + cs, mask=cmask, other=0.0).to(tl.float32)
    p_end = tl.minimum(s * chunk + chunk, P)
    for p0 in range(s * chunk, p_end, BP):
        ps = p0 + tl.arange(0, BP)
        pmask = ps < p_end
        p_off = ps[None, :].to(tl.int64)  # (1, BP)
        mask = cmask[:, None] & pmask[None, :]
        gv = tl.load(g_ptr + n * sgn + c_off * sgc + p_off * sgp, mask=mask, other=0.0).to(tl.float32)
        xv = tl.load(x_ptr + n * sxn + c_off * sxc + p_off * sxp, mask=mask, other=0.0).to(tl.float32)
        gx = gv * xv  # (BC, BP)
        if HAS_SA:
            sv = tl.load(sa_ptr + n * P + ps, mask=pmask, other=0.0).to(tl.float32)
            acc += gx * sv[None, :]
            tl.store(gsa_ptr + (n * n_cblk + cb) * P + ps, tl.sum(gx * w[:, None], 0), mask=pmask)
        else:
            acc += gx
    tl.store(gca_ptr + (n * n_split + s) * C + cs, tl.sum(acc, 1), mask=cmask)


@triton.jit
def mean_max_dot_kernel(x_ptr, sxn, sxc, sxp, gm_ptr, gmax_ptr, argc_ptr, out_ptr, C, P, n_cblk, n_split, chunk,
                        BC: tl.constexpr, BP: tl.constexpr):
    """sum_p x[c, p] (gm[p] + [c == argc[p]] gmax[p]) per channel -> (N, n_split, C) partials.

    ``gm``, ``gmax`` (N, P) float32 and ``argc`` (N, P) int32 are contiguous. Grid: N * n_cblk * n_split.
    """
    pid = tl.program_id(0)
    s = pid % n_split
    t = pid // n_split
    cb = t % n_cblk
    n = (t // n_cblk).to(tl.int64)
    cs = cb * BC + tl.arange(0, BC)
    cmask = cs < C
    c_off = cs[:, None].to(tl.int64)  # (BC, 1)
    acc = tl.zeros([BC, BP], dtype=tl.float32)  # per-lane sums, reduced once at the end
    p_end = tl.minimum(s * chunk + chunk, P)
    for p0 in range(s * chunk, p_end, BP):
        ps = p0 + tl.arange(0, BP)
        pmask = ps < p_end
        p_off = ps[None, :].to(tl.int64)  # (1, BP)
        xv = tl.load(x_ptr + n * sxn + c_off * sxc + p_off * sxp, mask=cmask[:, None] & pmask[None, :], other=0.0)
        gm = tl.load(gm_ptr + n * P + ps, mask=pmask, other=0.0)
        gmax = tl.load(gmax_ptr + n * P + ps, mask=pmask, other=0.0)
        am = tl.load(argc_ptr + n * P + ps, mask=pmask, other=-1)
        wt = gm[None, :] + tl.where(cs[:, None] == am[None, :], gmax[None, :], 0.0)  # (BC, BP)
        acc += xv.to(tl.float32) * wt
    tl.store(out_ptr + (n * n_split + s) * C + cs, tl.sum(acc, 1), mask=cmask)


@triton.jit
def grad_x_kernel(g_ptr, sgn, sgc, sgp, ca_ptr, gavg_ptr, sa_ptr, gm_ptr, gmax_ptr, argc_ptr, gmx_ptr, argp_ptr,
                  o_ptr, son, soc, sop, C, P, n_cblk, n_pblk, CBAM: tl.constexpr, BC: tl.constexpr, BP: tl.constexpr):
    """d x, one (BC, BP) tile per program. Grid: N * n_cblk * n_pblk.

    Channel gate (SE, ECA): g ca[c] + gavg[c]. CBAM: ca[c] (g sa[p] + gm[p] + [c == argc[p]] gmax[p]) + gavg[c]
    + [p == argp[c]] gmx[c]. Vectors (N, C): ca, gavg, gmx, argp; (N, P): sa, gm, gmax, argc.
    """
    pid = tl.program_id(0)
    n = (pid // n_cblk // n_pblk).to(tl.int64)
    cs = (pid % n_cblk) * BC + tl.arange(0, BC)
    ps = (pid // n_cblk % n_pblk) * BP + tl.arange(0, BP)
    c_off = cs[:, None].to(tl.int64)  # (BC, 1)
    p_off = ps[None, :].to(tl.int64)  # (1, BP)
    cmask = cs < C
    pmask = ps < P
    mask = cmask[:, None] & pmask[None, :]
    gv = tl.load(g_ptr + n * sgn + c_off * sgc + p_off * sgp, mask=mask, other=0.0).to(tl.float32)
    w = tl.load(ca_ptr + n * C + cs, mask=cmask, other=0.0).to(tl.float32)[:, None]
    bias = tl.load(gavg_ptr + n * C + cs, mask=cmask, other=0.0)[:, None]
    if CBAM:
        sv = tl.load(sa_ptr + n * P + ps, mask=pmask, other=0.0).to(tl.float32)[None, :]
        gm = tl.load(gm_ptr + n * P + ps, mask=pmask, other=0.0)[None, :]
        gmax = tl.load(gmax_ptr + n * P + ps, mask=pmask, other=0.0)[None, :]
        am = tl.load(argc_ptr + n * P + ps, mask=pmask, other=-1)[None, :]
        gmx = tl.load(gmx_ptr + n * C + cs, mask=cmask, other=0.0)[:, None]
        ap = tl.load(argp_ptr + n * C + cs, mask=cmask, other=-1)[:, None]
        inner = gv * sv + gm + tl.where(cs[:, None] == am, gmax, 0.0)
        res = w * inner + bias + tl.where(ps[None, :] == ap, gmx, 0.0)
    else:
        res = gv * w + bias
    tl.store(o_ptr + n * son + c_off * soc + p_off * sop, res, mask=mask)
