"""Principal components of a layer's activations: the linear one (Eigen-CAM) and the kernel one (KPCA-CAM).

Both treat the h x w positions of one image as samples and the K channels as features, centre each channel
over the positions (as pytorch-grad-cam does), and return each position's coordinate on the first component,
(N, K, h, w) -> (N, h, w). A component's sign is arbitrary, so it is fixed here: the projection is made to
correlate positively with the channel-mean map of the input (pytorch-grad-cam leaves it to LAPACK or to
scikit-learn's ``svd_flip``, either of which can invert the map).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["KERNELS", "first_component_projection", "kernel_first_component", "kernel_matrix"]

#: the kernels of :func:`kernel_matrix` (scikit-learn's names and formulas)
KERNELS = ("rbf", "sigmoid", "poly", "linear", "cosine")
#: float64 elements of the (chunk, hw, hw) kernel matrices built at once
_KERNEL_BUDGET = 2**24


def _positions(act: Tensor) -> tuple[Tensor, Tensor]:
    """(N, K, h, w) -> positions as rows, centred per channel (N, hw, K) float64, and the channel-mean map (N, hw)."""
    x = act.flatten(2).transpose(1, 2).double()
    return x - x.mean(1, keepdim=True), x.mean(2)


def _orient(proj: Tensor, ref: Tensor) -> Tensor:
    """Flip each row of ``proj`` (N, P) whose correlation with ``ref`` (N, P) is negative."""
    sign = torch.sign((proj * (ref - ref.mean(1, keepdim=True))).sum(1, keepdim=True))
    return proj * torch.where(sign == 0, torch.ones_like(sign), sign)


def _out_dtype(act: Tensor) -> torch.dtype:
    return act.dtype if act.is_floating_point() else torch.float32


def first_component_projection(act: Tensor) -> Tensor:
    """Projection of each position on the first principal component of the channels, sign-fixed.

    (N, K, h, w) -> (N, h, w), equal to ``Xc @ V[:, 0]`` of ``torch.linalg.svd(Xc)`` up to sign (pytorch-grad-cam's
    ``get_2d_projection``). Computed from the eigen-decomposition of the smaller of the two Gram matrices,
    in float64.
    """
    n, k, h, w = act.shape
    xc, ref = _positions(act)  # (N, hw, K), (N, hw)
    if h * w <= k:
        evals, evecs = torch.linalg.eigh(xc @ xc.mT)  # (N, hw), (N, hw, hw), ascending
        proj = evecs[..., -1] * evals[..., -1:].clamp_min(0).sqrt()  # s1 * u1 = Xc v1, up to sign
    else:
        _, evecs = torch.linalg.eigh(xc.mT @ xc)  # (N, K, K)
        proj = (xc @ evecs[..., -1:]).squeeze(-1)  # (N, hw)
    return _orient(proj, ref).reshape(n, h, w).to(_out_dtype(act))


def kernel_matrix(x: Tensor, kernel: str = "rbf", gamma: float | None = None, coef0: float = 1.0,
                  degree: int = 3) -> Tensor:
    """Kernel between the rows of each batch member: (B, P, K) -> (B, P, P), scikit-learn's formulas.

    rbf: exp(-gamma |x - y|^2); sigmoid: tanh(gamma <x, y> + coef0); poly: (gamma <x, y> + coef0)^degree;
    linear: <x, y>; cosine: <x, y> / (|x| |y|) (0 for a zero row). ``gamma`` defaults to 1 / K.
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    g = 1.0 / x.shape[-1] if gamma is None else float(gamma)
    if kernel == "rbf":
        sq = (x * x).sum(-1)
        d2 = (sq[..., :, None] + sq[..., None, :] - 2 * x @ x.mT).clamp_min(0)
        return torch.exp(-g * d2)
    if kernel == "cosine":
        xn = x / x.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
        return xn @ xn.mT
    dot = x @ x.mT
    if kernel == "linear":
        return dot
    if kernel == "sigmoid":
        return torch.tanh(g * dot + coef0)
    return (g * dot + coef0) ** degree


def kernel_first_component(act: Tensor, kernel: str = "sigmoid", gamma: float | None = None, coef0: float = 1.0,
                           degree: int = 3) -> Tensor:
    """Kernel PCA of the positions: each position's coordinate on the first kernel principal component, sign-fixed.

    With X the centred positions (hw, K) of one image, the kernel matrix is double-centred,
    Kc = K - 1K - K1 + 1K1 (1 = the hw x hw matrix of 1 / hw), and the coordinates are sqrt(lambda_1) u_1 for its
    largest eigenvalue lambda_1 (negative eigenvalues clipped to 0) and eigenvector u_1: scikit-learn's
    ``KernelPCA(n_components=1).fit_transform(X)`` up to sign. (N, K, h, w) -> (N, h, w), float64 inside.
    """
    n, k, h, w = act.shape
    xc, ref = _positions(act)
    p = h * w
    chunk = max(1, _KERNEL_BUDGET // (p * p))
    out = []
    for i in range(0, n, chunk):
        km = kernel_matrix(xc[i:i + chunk], kernel, gamma, coef0, degree)  # (B, P, P)
        kc = km - km.mean(1, keepdim=True) - km.mean(2, keepdim=True) + km.mean((1, 2), keepdim=True)
        evals, evecs = torch.linalg.eigh(kc)
        out.append(evecs[..., -1] * evals[..., -1:].clamp_min(0).sqrt())
    return _orient(torch.cat(out), ref).reshape(n, h, w).to(_out_dtype(act))
