"""Small hand-written CNNs for the CAM tests (fast on 2 CPU cores)."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn


class SmallCNN(nn.Sequential):
    """conv-bn-relu -> conv(stride 2)-relu(inplace) -> conv-bn -> relu -> GAP -> fc: (N, 3, 16, 16) -> (N, 5).

    ``features.conv3`` (8 x 8 maps, 12 channels) is the usual target layer; an in-place ReLU follows it
    after a BatchNorm, and one follows ``features.conv2`` directly.
    """

    def __init__(self, channels: int = 12, classes: int = 5, dead: int = 0) -> None:
        features = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(3, 8, 3, padding=1), bn1=nn.BatchNorm2d(8), relu1=nn.ReLU(),
            conv2=nn.Conv2d(8, channels, 3, stride=2, padding=1), relu2=nn.ReLU(inplace=True),
            conv3=nn.Conv2d(channels, channels, 3, padding=1), bn3=nn.BatchNorm2d(channels),
            relu3=nn.ReLU(inplace=True),
        ))
        super().__init__(OrderedDict(features=features, pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten(),
                                     fc=nn.Linear(channels, classes)))
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            for bn in (features.bn1, features.bn3):
                bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=g) * 0.1)
                bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=g) + 0.5)
            if dead:  # channels that are zero everywhere after relu3: constant activation maps
                features.bn3.bias[:dead] = -100.0


@pytest.fixture
def small_cnn():
    return SmallCNN().eval()


@pytest.fixture
def batch():
    return torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def layer_output(model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """What ``layer`` of ``model`` outputs on ``x`` (a copy, taken before any in-place op after it)."""
    store = {}
    h = dict(model.named_modules())[layer].register_forward_hook(lambda m, i, o: store.setdefault("a", o.clone()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        h.remove()
    return store["a"]
