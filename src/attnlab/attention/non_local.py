"""Non-local Neural Networks (Wang et al., CVPR 2018), https://arxiv.org/abs/1711.07971.

Each output position is a weighted sum over all positions: y_i = sum_j f(x_i, x_j) g(x_j) / C(x),
then z = BN(W y) + x. theta, phi, g and W are 1x1 convs (g, theta, phi: C -> C', W: C' -> C, with
C' = ``inter_channels``). The pairwise function f and normaliser C(x) (the paper's Sec. 3.2), with
Np the number of positions j summed over (H*W, or H'*W' with ``sub_sample``):

* ``"embedded_gaussian"``: softmax_j(theta_i . phi_j), computed with
  ``F.scaled_dot_product_attention(scale=1.0)``, which never builds the (HW, HW') matrix;
* ``"dot_product"``: theta_i . phi_j / Np, computed as theta_i . (sum_j phi_j g_j^T) / Np
  (associativity: O(HW * C'^2) work and no (HW, HW') matrix);
* ``"concatenation"``: ReLU(w . [theta_i; phi_j]) / Np = ReLU(a_i + b_j) / Np with a = w_1 . theta,
  b = w_2 . phi (the concatenation is never built; the (HW, HW') matrix is, as the ReLU needs it);
* ``"gaussian"``: softmax_j(x_i . x_j) on the input itself (no theta/phi, so no such parameters).

``sub_sample=True`` max-pools phi and g (for ``"gaussian"``, x and g) with a 2x2 window, stride 2 and
``ceil_mode=True``, so odd sides round up (7x5 -> 4x3); a side shorter than 2 is not pooled
(window 1 on that side), so 1x1 and 1xW inputs work.

The output BN's weight and bias start at zero (the paper's Sec. 4.1), so a new block returns its
input exactly; :meth:`NonLocal.zero_init_last` re-applies that. Parameter names follow the common
PyTorch port (``g``, ``theta``, ``phi``, ``W.0``, ``W.1``, ``concat_project.0``).

Layout: all token tensors are (N, HW, K) and come from one batched GEMM on the (N, HW, C) view of
x (a view for both NCHW and channels_last, so x is never copied or permuted; the exception is
``"gaussian"`` on an NCHW input, where x's token view is copied once so that the fused attention
kernel can run). The output keeps the input's memory format.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._ops import batch_norm, is_channels_last
from .base import AttentionModule
from .registry import register_attention

__all__ = ["NonLocal", "NON_LOCAL_MODES"]

NON_LOCAL_MODES = ("embedded_gaussian", "dot_product", "concatenation", "gaussian")


def _tokens(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """1x1 conv of x (N, C, H, W) in token layout: (N, HW, K), contiguous, for weight (K, C)."""
    xt = x.flatten(2).transpose(1, 2)  # (N, C, H, W) -> (N, HW, C): a view for NCHW and channels_last
    if xt.is_contiguous():  # channels_last: one plain GEMM with the bias fused
        return F.linear(xt, weight, bias)
    out = torch.matmul(xt, weight.t())  # NCHW: batched GEMM on the transposed view, no copy of x
    return out if bias is None else out.add_(bias)


def _w2d(conv: nn.Conv2d) -> Tensor:
    """A 1x1 conv's weight as a matrix: (K, C, 1, 1) -> (K, C)."""
    return conv.weight.flatten(1)


def _pool_kernel(h: int, w: int) -> tuple[int, int]:
    return (2 if h >= 2 else 1, 2 if w >= 2 else 1)


def _pool_tokens(t: Tensor, h: int, w: int, kernel: tuple[int, int]) -> Tensor:
    """2x2 max-pool of contiguous tokens (N, HW, K) -> (N, H'W', K), through a channels_last view."""
    n, _, k = t.shape
    img = t.view(n, h, w, k).permute(0, 3, 1, 2)  # (N, HW, K) -> (N, K, H, W), channels_last strides
    p = F.max_pool2d(img, kernel, kernel, ceil_mode=True)  # (N, K, H', W')
    return p.permute(0, 2, 3, 1).reshape(n, -1, k)  # (N, K, H', W') -> (N, H'W', K)


@register_attention("non_local")
class NonLocal(AttentionModule):
    """Non-local block (2-D, image version).

    Args:
        channels: input channels C.
        inter_channels: embedding width C' of theta, phi and g (>= 1); default ``max(1, C // 2)``.
        mode: pairwise function, one of ``NON_LOCAL_MODES`` (see the module docstring).
        sub_sample: max-pool phi and g 2x2 (ceil mode; sides < 2 unpooled), which divides the
            pairwise cost by about 4.

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records spatial = the mean attention each position receives,
        mean_i f(x_i, x_j), as (N, 1, H, W) at input resolution (each pooled cell's value repeated
        over its window when sub-sampled), and ``extra["affinity"]`` = f (N, HW, H'W').

    Raises:
        ValueError: for an unknown ``mode``, ``inter_channels`` < 1 or a non-bool ``sub_sample``.

    Parameters: 4*C*C' + 3*C' + 3*C (g, theta, phi, W with biases, output BN), plus 2*C' for
    ``"concatenation"``; ``"gaussian"`` has no theta/phi: 2*C*C' + C' + 3*C.
    """

    paper = "Wang et al., Non-local Neural Networks, CVPR 2018"
    param_formula = "4*C*C' + 3*C' + 3*C, C' = C//2  (embedded_gaussian, dot_product)"
    preserves_channels_last = True
    placement = "after_blocks"  # on the output of chosen residual blocks of res3/res4 (the paper's Sec. 4.1)

    def __init__(self, channels: int, inter_channels: int | None = None, mode: str = "embedded_gaussian",
                 sub_sample: bool = False) -> None:
        super().__init__(channels)
        if mode not in NON_LOCAL_MODES:
            raise ValueError(f"unknown non-local mode {mode!r}; choose one of {', '.join(NON_LOCAL_MODES)}")
        if inter_channels is None:
            inter_channels = max(1, channels // 2)
        if isinstance(inter_channels, bool) or not isinstance(inter_channels, int) or inter_channels < 1:
            raise ValueError(f"inter_channels must be a positive int, got {inter_channels!r}")
        self.mode = mode
        self.inter_channels = inter_channels
        if not isinstance(sub_sample, bool):
            raise ValueError(f"sub_sample must be True or False, got {sub_sample!r}")
        self.sub_sample = sub_sample
        ci = inter_channels
        self.g = nn.Conv2d(channels, ci, 1)
        if mode != "gaussian":
            self.theta = nn.Conv2d(channels, ci, 1)
            self.phi = nn.Conv2d(channels, ci, 1)
        if mode == "concatenation":
            self.concat_project = nn.Sequential(nn.Conv2d(2 * ci, 1, 1, bias=False), nn.ReLU())
        self.W = nn.Sequential(nn.Conv2d(ci, channels, 1), nn.BatchNorm2d(channels))
        self.zero_init_last()

    def zero_init_last(self) -> None:
        """Zero the output BN's weight and bias, so that the block is the identity (the paper's init)."""
        nn.init.zeros_(self.W[1].weight)
        nn.init.zeros_(self.W[1].bias)

    def _embed(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, tuple[int, int] | None]:
        """q (N, HW, Cq), k (N, HW', Cq), v (N, HW', C') and the pooling window (None if not pooled)."""
        n, c, h, w = x.shape
        ci = self.inter_channels
        kernel = _pool_kernel(h, w) if self.sub_sample else None
        if kernel == (1, 1):
            kernel = None
        if self.mode == "gaussian":
            q = x.flatten(2).transpose(1, 2)  # (N, HW, C) view
            q = q if q.is_contiguous() else q.contiguous()  # the fused attention kernel needs unit last stride
            v = _tokens(x, _w2d(self.g), self.g.bias)  # (N, HW, C')
            if kernel is None:
                return q, q, v, None
            xp = F.max_pool2d(x, kernel, kernel, ceil_mode=True)  # (N, C, H', W')
            k = xp.flatten(2).transpose(1, 2)
            k = k if k.is_contiguous() else k.contiguous()  # (N, H'W', C)
            return q, k, _pool_tokens(v, h, w, kernel), kernel
        if kernel is None:  # theta, phi and g in one GEMM: (N, HW, 3C')
            weight = torch.cat([_w2d(self.theta), _w2d(self.phi), _w2d(self.g)])
            bias = torch.cat([self.theta.bias, self.phi.bias, self.g.bias])
            q, k, v = _tokens(x, weight, bias).split(ci, dim=-1)  # split: one cat in backward, not 3 zero-fills
            return q, k, v, None
        q = _tokens(x, _w2d(self.theta), self.theta.bias)  # (N, HW, C')
        kv = _tokens(x, torch.cat([_w2d(self.phi), _w2d(self.g)]), torch.cat([self.phi.bias, self.g.bias]))
        k, v = _pool_tokens(kv, h, w, kernel).split(ci, dim=-1)  # (N, H'W', C') each
        return q, k, v, kernel

    def affinity(self, q: Tensor, k: Tensor) -> Tensor:
        """The pairwise matrix f(x_i, x_j) / C(x), (N, HW, HW'), from q (N, HW, Cq) and k (N, HW', Cq)."""
        if self.mode in ("embedded_gaussian", "gaussian"):
            return torch.bmm(q, k.transpose(1, 2)).softmax(-1)
        np_inv = 1.0 / k.shape[1]
        if self.mode == "dot_product":
            return torch.bmm(q, k.transpose(1, 2)).mul_(np_inv)
        wc = self.concat_project[0].weight.flatten() * np_inv  # (2C',), 1/Np folded in: ReLU(z)/Np = ReLU(z/Np)
        ci = self.inter_channels
        a = torch.matmul(q, wc[:ci])  # (N, HW)
        b = torch.matmul(k, wc[ci:])  # (N, HW')
        return torch.relu_(a[:, :, None] + b[:, None, :])  # (N, HW, HW')

    def _aggregate(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """y (N, HW, C') = f(q, k) v without recording: the cheapest form of each mode."""
        if self.mode in ("embedded_gaussian", "gaussian"):
            return F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None], scale=1.0)[:, 0]
        if self.mode == "dot_product":
            kv = torch.bmm(k.transpose(1, 2), v).mul_(1.0 / k.shape[1])  # (N, C', C')
            return torch.bmm(q, kv)
        return torch.bmm(self.affinity(q, k), v)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        n, c, h, w = x.shape
        q, k, v, kernel = self._embed(x)
        if self.attention_sink is None:
            y = self._aggregate(q, k, v)  # (N, HW, C')
        else:
            f = self.affinity(q, k)  # (N, HW, HW')
            y = torch.bmm(f, v)
        conv = self.W[0]
        if is_channels_last(x):  # (N, HW, C) is x's own layout
            wy = F.linear(y, conv.weight.flatten(1), conv.bias).transpose(1, 2)  # (N, HW, C) -> (N, C, HW) view
        else:
            wy = torch.matmul(conv.weight.flatten(1), y.transpose(1, 2)).add_(conv.bias[:, None])  # (N, C, HW)
        z = x + batch_norm(self.W[1], wy.unflatten(2, (h, w)))
        if self.attention_sink is not None:
            spatial = f.mean(1)  # (N, HW'): mean attention received
            if kernel is None:
                spatial = spatial.view(n, 1, h, w)
            else:
                hp, wp = -(-h // kernel[0]), -(-w // kernel[1])
                spatial = spatial.view(n, 1, hp, wp).repeat_interleave(kernel[0], 2).repeat_interleave(kernel[1], 3)
                spatial = spatial[:, :, :h, :w]
            self._emit(spatial=spatial, affinity=f)
        return z

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, inter_channels={self.inter_channels}, mode={self.mode!r}, "
                f"sub_sample={self.sub_sample}")
