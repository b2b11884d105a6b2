"""Naive reference implementations, kept for benchmarks and as test oracles.

``SeedChannelAttention`` / ``SeedSpatialAttention`` reproduce the classes of the tutorial that
started attnlab (the user's own reference, line for line); ``SeedCBAM`` composes them as the
tutorial describes. ``NaiveSE`` and ``NaiveECA`` are direct transcriptions of the papers' figures
with stock ``nn`` layers. None of these is fast: they are what the fused modules are measured against.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .eca import eca_kernel_size

__all__ = ["SeedChannelAttention", "SeedSpatialAttention", "SeedCBAM", "NaiveSE", "NaiveECA", "REFERENCES"]


class SeedChannelAttention(nn.Module):
    """The seed tutorial's ChannelAttention: returns weights (N, C, 1, 1)."""

    def __init__(self, in_planes: int, ratio: int = 16) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        self.fc1 = nn.Conv2d(in_planes, in_planes // ratio, 1, bias=False)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Conv2d(in_planes // ratio, in_planes, 1, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        avg_out = self.fc2(self.relu1(self.fc1(self.avg_pool(x))))
        max_out = self.fc2(self.relu1(self.fc1(self.max_pool(x))))
        return self.sigmoid(avg_out + max_out)


class SeedSpatialAttention(nn.Module):
    """The seed tutorial's SpatialAttention: returns a map (N, 1, H, W)."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        avg_out = torch.mean(x, dim=1, keepdim=True)
        max_out, _ = torch.max(x, dim=1, keepdim=True)
        return self.sigmoid(self.conv1(torch.cat([avg_out, max_out], dim=1)))


class SeedCBAM(nn.Module):
    """CBAM as the seed composes it: x * Mc(x), then * Ms of that."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        self.ca = SeedChannelAttention(channels, reduction)
        self.sa = SeedSpatialAttention(kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        x = x * self.ca(x)
        return x * self.sa(x)


class NaiveSE(nn.Module):
    """SE as the paper's figure draws it, with stock layers."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1), nn.ReLU(),
                                nn.Conv2d(hidden, channels, 1), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return x * self.fc(x)


class NaiveECA(nn.Module):
    """ECA as the authors' figure draws it: pool, squeeze/transpose, conv1d, transpose back, gate."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        k = eca_kernel_size(channels)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        y = self.avg_pool(x)  # (N, C, 1, 1)
        y = self.conv(y.squeeze(-1).transpose(-1, -2)).transpose(-1, -2).unsqueeze(-1)
        return x * torch.sigmoid(y).expand_as(x)


REFERENCES: dict[str, type[nn.Module]] = {"cbam": SeedCBAM, "se": NaiveSE, "eca": NaiveECA}
