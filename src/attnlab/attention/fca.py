"""FcaNet: Frequency Channel Attention Networks (Qin et al., ICCV 2021), https://arxiv.org/abs/2012.11879.

Global average pooling is, up to a constant, the lowest frequency of the 2-D DCT: for an h x w map,
GAP(x) = DCT_{0,0}(x) / sqrt(h w). FcaNet's multi-spectral channel attention (MSCA) squeezes each
channel with other DCT frequencies too: the C channels are split into K equal parts, part i is
squeezed with the DCT basis function of frequency (u_i, v_i),

    Freq_c = sum_{h, w} x_{c, h, w} B^{u_i, v_i}_{h, w},   B^{u,v}_{h,w} = b_u(h; H) b_v(w; W),
    b_u(t; T) = cos(pi u (t + 1/2) / T) / sqrt(T), times sqrt(2) for u > 0 (orthonormal DCT-II),

and the descriptor (N, C) goes through SE's bottleneck MLP without biases, ReLU, sigmoid:
out = x * sigmoid(W2 relu(W1 Freq)).

Frequencies: the paper ranks the 49 frequencies of a 7x7 DCT by the ImageNet accuracy of a
single-frequency FcaNet and picks the K best ("top"), the K lowest ("low") or the K worst ("bot"),
K in {1, 2, 4, 8, 16, 32}; "top16" is its choice. The orderings below are those of the
official code (``cfzd/FcaNet``, ``get_freq_indices``); a (u, v) of the 7x7 space is scaled to a
``dct_size`` grid as (u * (dct_h // 7), v * (dct_w // 7)), as there.

The DCT filters are a fixed buffer (C, dct_h, dct_w) named as in the official code
(``dct_layer.weight``, beside ``fc.0.weight``, ``fc.2.weight``), so its checkpoints load. The official
ImageNet models use the stage's own feature size as ``dct_size`` (56, 28, 14, 7 for ResNet's stages);
an input of another size is adaptive-average-pooled to ``dct_size`` first (the official code's rule
for detection). Here that pooling is folded into the filters (pooling and the DCT are both linear),
so no pooled copy is made and the module exports to ONNX at any size.

Parameters: 2*C*(C//r), exactly SE's without biases (FcaNet-50: 28.07M, as SENet-50 in the paper's ImageNet comparison).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ._layers import ActLike, make_act
from .base import AttentionModule, reduced_channels
from .registry import register_attention

__all__ = ["MultiSpectralAttention", "FCA_FREQUENCIES", "fca_frequencies", "dct_filters"]

# The official code's rankings in the 7x7 frequency space, (u, v) = (row frequency, column frequency).
_RANK_U = {
    "top": (0, 0, 6, 0, 0, 1, 1, 4, 5, 1, 3, 0, 0, 0, 3, 2, 4, 6, 3, 5, 5, 2, 6, 5, 5, 3, 3, 4, 2, 2, 6, 1),
    "low": (0, 0, 1, 1, 0, 2, 2, 1, 2, 0, 3, 4, 0, 1, 3, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4),
    "bot": (6, 1, 3, 3, 2, 4, 1, 2, 4, 4, 5, 1, 4, 6, 2, 5, 6, 1, 6, 2, 2, 4, 3, 3, 5, 5, 6, 2, 5, 5, 3, 6),
}
_RANK_V = {
    "top": (0, 1, 0, 5, 2, 0, 2, 0, 0, 6, 0, 4, 6, 3, 5, 2, 6, 3, 3, 3, 5, 1, 1, 2, 4, 2, 1, 1, 3, 0, 5, 3),
    "low": (0, 1, 0, 1, 2, 0, 1, 2, 2, 3, 0, 0, 4, 3, 1, 5, 4, 3, 2, 1, 0, 6, 5, 4, 3, 2, 1, 0, 6, 5, 4, 3),
    "bot": (6, 4, 4, 6, 6, 3, 1, 4, 4, 5, 6, 5, 2, 2, 5, 1, 4, 3, 5, 0, 3, 1, 1, 2, 4, 2, 1, 1, 5, 3, 3, 3),
}
#: every named selection: "top1" ... "top32", "low1" ... "low32", "bot1" ... "bot32"
FCA_FREQUENCIES = tuple(f"{kind}{k}" for kind in ("top", "low", "bot") for k in (1, 2, 4, 8, 16, 32))

Frequencies = str | Sequence[tuple[int, int]] | None


def fca_frequencies(selection: str) -> list[tuple[int, int]]:
    """The (u, v) pairs of the 7x7 frequency space of a named selection (``"top16"``, ``"low4"``, ...)."""
    if selection not in FCA_FREQUENCIES:
        raise ValueError(f"unknown FcaNet frequency selection {selection!r}; choose one of {', '.join(FCA_FREQUENCIES)}"
                         " or give (u, v) pairs")
    kind, k = selection[:3], int(selection[3:])
    return list(zip(_RANK_U[kind][:k], _RANK_V[kind][:k], strict=True))


def _basis(freq: int, size: int) -> list[float]:
    """The orthonormal DCT-II basis vector of frequency ``freq`` over ``size`` positions."""
    norm = math.sqrt((1 if freq == 0 else 2) / size)
    return [math.cos(math.pi * freq * (t + 0.5) / size) * norm for t in range(size)]


def dct_filters(channels: int, size: tuple[int, int], frequencies: Sequence[tuple[int, int]]) -> Tensor:
    """The (C, h, w) filters: channel part i (C/K channels) holds the 2-D DCT basis of ``frequencies[i]``."""
    h, w = size
    part = channels // len(frequencies)
    out = torch.zeros(channels, h, w, dtype=torch.float64)
    for i, (u, v) in enumerate(frequencies):
        out[i * part:(i + 1) * part] = torch.outer(torch.tensor(_basis(u, h)), torch.tensor(_basis(v, w)))
    return out.float()


def _pool_matrix(n_in: int, n_out: int, like: Tensor) -> Tensor:
    """(n_out, n_in) matrix of 1-D adaptive average pooling (torch's bins: floor(i n/o) to ceil((i+1) n/o))."""
    rows = []
    for i in range(n_out):
        a, b = (i * n_in) // n_out, -(-(i + 1) * n_in // n_out)
        rows.append([1.0 / (b - a) if a <= t < b else 0.0 for t in range(n_in)])
    return torch.tensor(rows, dtype=like.dtype, device=like.device)  # a constant, also while tracing


class _DCTLayer(nn.Module):
    """Holds the fixed DCT filters under the official name ``dct_layer.weight`` (C, dct_h, dct_w)."""

    def __init__(self, weight: Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight)


def _parse_frequencies(channels: int, frequencies: Frequencies) -> tuple[str, list[tuple[int, int]]]:
    """(label, (u, v) pairs) of the ``frequencies`` argument, checked against the channel count."""
    if frequencies is None:  # the paper's top16, or the most top frequencies that split C evenly
        k = next(k for k in (16, 8, 4, 2, 1) if channels % k == 0)
        frequencies = f"top{k}"
    if isinstance(frequencies, str):
        label, pairs = frequencies, fca_frequencies(frequencies)
    else:
        pairs = [tuple(p) for p in frequencies]
        if not pairs or any(len(p) != 2 or not all(isinstance(t, int) and 0 <= t < 7 for t in p) for p in pairs):
            raise ValueError(f"FcaNet frequencies are (u, v) pairs of the 7x7 space (0 <= u, v < 7), "
                             f"got {frequencies!r}")
        label = str(pairs)
    if channels % len(pairs):
        raise ValueError(f"FcaNet splits the channels evenly among its {len(pairs)} frequencies ({label}): "
                         f"{len(pairs)} does not divide channels={channels}")
    return label, pairs


@register_attention("fca")
class MultiSpectralAttention(AttentionModule):
    """FcaNet's multi-spectral channel attention (MSCA).

    Args:
        channels: input channels C.
        reduction: bottleneck ratio r (16); hidden width ``max(min_channels, C // r)``.
        frequencies: a named selection (``"top16"``, ``"low4"``, ``"bot8"``, see :data:`FCA_FREQUENCIES`),
            (u, v) pairs of the 7x7 frequency space, or None: the paper's ``"top16"`` where 16 divides
            C, else ``"topK"`` with the largest K in 8, 4, 2, 1 that does. The number of frequencies
            must divide C.
        dct_size: side (or (h, w)) of the DCT grid, each >= 7 (7: the paper's frequency space; the
            official ImageNet models use the stage's feature size). Other input sizes are
            adaptive-average-pooled to it (folded into the filters).
        min_channels: minimum hidden width (1).
        act: hidden activation, default ReLU.
        gate: gating function, default sigmoid.
        bias: biases in the two linear layers (False, as the official code).

    Shape:
        (N, C, H, W) -> (N, C, H, W). Records channel weights (N, C).

    Raises:
        ValueError: for an unknown selection, a number of frequencies that does not divide C, or a
            ``dct_size`` side below 7.

    Parameters: 2*C*(C//r) (plus C + C//r with ``bias=True``); the DCT filters are a buffer.
    """

    paper = "Qin et al., FcaNet: Frequency Channel Attention Networks, ICCV 2021"
    param_formula = "2*C*(C//r)  (r=16, top16 DCT frequencies: a buffer)"

    def __init__(self, channels: int, reduction: float = 16, frequencies: Frequencies = None,
                 dct_size: int | tuple[int, int] = 7, min_channels: int = 1, act: ActLike = None,
                 gate: ActLike = None, bias: bool = False) -> None:
        super().__init__(channels)
        size = (dct_size, dct_size) if isinstance(dct_size, int) else tuple(dct_size)
        if len(size) != 2 or not all(isinstance(s, int) and s >= 7 for s in size):
            raise ValueError(f"FcaNet dct_size sides must be ints >= 7 (the 7x7 frequency space), got {dct_size!r}")
        self.selection, pairs = _parse_frequencies(channels, frequencies)
        self.frequencies = [(u * (size[0] // 7), v * (size[1] // 7)) for u, v in pairs]
        self.dct_size = size
        self.dct_layer = _DCTLayer(dct_filters(channels, size, self.frequencies))
        hidden = reduced_channels(channels, reduction, min_channels)
        self.fc = nn.Sequential(nn.Linear(channels, hidden, bias=bias), make_act(act, "relu"),
                                nn.Linear(hidden, channels, bias=bias), make_act(gate, "sigmoid"))

    def filters(self, h: int, w: int) -> Tensor:
        """The DCT filters (C, h, w) for an h x w input: the buffer, or it composed with adaptive pooling."""
        weight = self.dct_layer.weight  # (C, dh, dw)
        if (h, w) == self.dct_size:
            return weight
        ph = _pool_matrix(h, self.dct_size[0], weight)  # (dh, h)
        pw = _pool_matrix(w, self.dct_size[1], weight)  # (dw, w)
        return torch.matmul(ph.t(), torch.matmul(weight, pw))  # (h, dh) @ (C, dh, dw) @ (dw, w) -> (C, h, w)

    def descriptor(self, x: Tensor) -> Tensor:
        """The multi-spectral descriptor Freq (N, C) of x (N, C, H, W)."""
        return (x * self.filters(x.shape[2], x.shape[3])).sum((2, 3))

    def weights(self, x: Tensor) -> Tensor:
        """Channel weights (N, C) of x (N, C, H, W)."""
        return self.fc(self.descriptor(x))

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        w = self.weights(x)
        if self.attention_sink is not None:
            self._emit(channel=w)
        return x * w[:, :, None, None]

    def channel_scale(self, x: Tensor) -> Tensor | None:
        """The weights (N, C) with ``self(x) == x * w[:, :, None, None]``."""
        self._check_input(x)
        return self.weights(x)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, frequencies={self.selection!r}, dct_size={self.dct_size}"
