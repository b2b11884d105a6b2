"""Compatibility with the seed tutorial (/work/shared/seed, "Day 16 Deep Dive"), and the papers' sizes.

The seed's ``ChannelAttention`` and ``SpatialAttention`` are reproduced verbatim below: they are the
oracle. A checkpoint saved from them must load into attnlab's classes with ``strict=True`` and give
the same numbers; a CBAM assembled from them must equal attnlab's ``"cbam"`` forward and backward.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn

import attnlab
from attnlab.attention import (
    CBAM,
    ChannelAttention,
    EfficientChannelAttention,
    SpatialAttention,
    SqueezeExcitation,
    eca_kernel_size,
)

SEED_DIR = Path("/work/shared/seed")

# ---- the seed, verbatim ------------------------------------------------------------------------
# Copied character for character from the tutorial (its code block imports nothing: it relies on
# ``torch`` and ``nn`` being in scope), then executed, so the oracle keeps its own class names.

SEED_SOURCE = """\
class ChannelAttention(nn.Module):
    def __init__(self, in_planes, ratio=16):
        super(ChannelAttention, self).__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        
        self.fc1 = nn.Conv2d(in_planes, in_planes // ratio, 1, bias=False)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Conv2d(in_planes // ratio, in_planes, 1, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        avg_out = self.fc2(self.relu1(self.fc1(self.avg_pool(x))))
        max_out = self.fc2(self.relu1(self.fc1(self.max_pool(x))))
        out = avg_out + max_out
        return self.sigmoid(out)

class SpatialAttention(nn.Module):
    def __init__(self, kernel_size=7):
        super(SpatialAttention, self).__init__()
        self.conv1 = nn.Conv2d(2, 1, kernel_size, padding=kernel_size//2, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        avg_out = torch.mean(x, dim=1, keepdim=True)
        max_out, _ = torch.max(x, dim=1, keepdim=True)
        x = torch.cat([avg_out, max_out], dim=1)
        x = self.conv1(x)
        return self.sigmoid(x)
"""

_seed_ns: dict = {"torch": torch, "nn": nn}
exec(compile(SEED_SOURCE, "<seed tutorial>", "exec"), _seed_ns)
SeedChannelAttention = _seed_ns["ChannelAttention"]
SeedSpatialAttention = _seed_ns["SpatialAttention"]


def test_seed_copy_is_verbatim():
    files = sorted(SEED_DIR.glob("*.txt")) if SEED_DIR.is_dir() else []
    if not files:
        pytest.skip(f"seed tutorial not found under {SEED_DIR}")
    assert any(SEED_SOURCE in f.read_text() for f in files), "SEED_SOURCE drifted from the tutorial"


# ---- a CBAM block the way the seed's reader would assemble it ------------------------------------


class SeedCBAM(nn.Module):
    def __init__(self, channels, ratio=16, kernel_size=7):
        super().__init__()
        self.ca = SeedChannelAttention(channels, ratio)
        self.sa = SeedSpatialAttention(kernel_size)

    def forward(self, x):
        x = x * self.ca(x)
        return x * self.sa(x)


def _seed_to_attnlab_cbam(seed_sd: dict) -> dict:
    return {
        "channel_attention.fc1.weight": seed_sd["ca.fc1.weight"],
        "channel_attention.fc2.weight": seed_sd["ca.fc2.weight"],
        "spatial_attention.conv1.weight": seed_sd["sa.conv1.weight"],
    }


def _x(*shape, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


# ---- state_dict compatibility --------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [8, 16])
@pytest.mark.parametrize("channels", [16, 64, 256])
def test_channel_attention_loads_seed_checkpoint(channels, ratio):
    torch.manual_seed(channels + ratio)
    seed = SeedChannelAttention(channels, ratio)
    ours = ChannelAttention(channels, ratio)
    result = ours.load_state_dict(seed.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert set(ours.state_dict()) == set(seed.state_dict())
    x = _x(2, channels, 9, 7)
    with torch.no_grad():
        expected = seed(x)
        got = ours(x)
    assert got.shape == expected.shape == (2, channels, 1, 1)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    # and with a backward-ready input (fused paths must agree too)
    torch.testing.assert_close(ours(x.clone().requires_grad_()).detach(), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kernel_size", [3, 7])
def test_spatial_attention_loads_seed_checkpoint(kernel_size):
    torch.manual_seed(kernel_size)
    seed = SeedSpatialAttention(kernel_size)
    ours = SpatialAttention(kernel_size)
    result = ours.load_state_dict(seed.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = _x(2, 24, 9, 7)
    with torch.no_grad():
        expected = seed(x)
        got = ours(x)
    assert got.shape == expected.shape == (2, 1, 9, 7)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ours(x.clone().requires_grad_()).detach(), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kernel_size", [3, 7])
def test_spatial_attention_gradients_match_seed(kernel_size):
    torch.manual_seed(kernel_size)
    seed = SeedSpatialAttention(kernel_size).double()
    ours = SpatialAttention(kernel_size).double()
    ours.load_state_dict(seed.state_dict(), strict=True)
    x = _x(2, 12, 6, 5, dtype=torch.float64)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    w = _x(2, 1, 6, 5, seed=5, dtype=torch.float64)
    (seed(xa) * w).sum().backward()
    (ours(xb) * w).sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours.conv1.weight.grad, seed.conv1.weight.grad, rtol=1e-10, atol=1e-12)


# ---- CBAM equivalence ----------------------------------------------------------------------------


@pytest.mark.parametrize("channels,ratio", [(16, 8), (64, 16), (32, 16)])
@pytest.mark.parametrize("kernel_size", [3, 7])
def test_cbam_equals_seed_forward_and_backward(channels, ratio, kernel_size):
    torch.manual_seed(channels * kernel_size)
    seed = SeedCBAM(channels, ratio, kernel_size).double()
    ours = attnlab.create_attention("cbam", channels, reduction=ratio, kernel_size=kernel_size).double()
    assert isinstance(ours, CBAM)
    ours.load_state_dict(_seed_to_attnlab_cbam(seed.state_dict()), strict=True)

    x = _x(2, channels, 7, 6, dtype=torch.float64)
    w = _x(2, channels, 7, 6, seed=9, dtype=torch.float64)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = seed(xa), ours(xb)
    torch.testing.assert_close(yb, ya, rtol=1e-10, atol=1e-12)
    (ya * w).sum().backward()
    (yb * w).sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-9, atol=1e-12)
    pairs = {
        "channel_attention.fc1.weight": seed.ca.fc1.weight,
        "channel_attention.fc2.weight": seed.ca.fc2.weight,
        "spatial_attention.conv1.weight": seed.sa.conv1.weight,
    }
    ours_params = dict(ours.named_parameters())
    assert set(ours_params) == set(pairs)
    for name, p in pairs.items():
        torch.testing.assert_close(ours_params[name].grad, p.grad, rtol=1e-9, atol=1e-12, msg=name)
    # eval, no grad: the plain path
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), seed.eval()(x), rtol=1e-10, atol=1e-12)


def test_cbam_equals_seed_float32_channels_last():
    torch.manual_seed(0)
    seed = SeedCBAM(64, 16, 7)
    ours = attnlab.create_attention("cbam", 64)
    ours.load_state_dict(_seed_to_attnlab_cbam(seed.state_dict()), strict=True)
    x = _x(2, 64, 14, 14).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), seed(x), rtol=1e-5, atol=1e-6)


# ---- parameter counts and widths ----------------------------------------------------------------


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("channels", [16, 64, 256, 2048])
@pytest.mark.parametrize("ratio", [4, 8, 16])
def test_se_parameter_count(channels, ratio):
    m = attnlab.create_attention("se", channels, reduction=ratio)
    assert isinstance(m, SqueezeExcitation)
    h = channels // ratio
    assert _n_params(m) == 2 * channels * h + h + channels


@pytest.mark.parametrize("channels", [64, 128, 256, 512, 1024, 2048])
def test_eca_parameter_count_is_k(channels):
    m = attnlab.create_attention("eca", channels)
    assert isinstance(m, EfficientChannelAttention)
    assert _n_params(m) == eca_kernel_size(channels) == m.kernel_size


@pytest.mark.parametrize("channels,k", [(64, 3), (128, 5), (256, 5), (512, 5), (1024, 5), (2048, 7)])
def test_eca_adaptive_kernel_size(channels, k):
    assert eca_kernel_size(channels) == k
    m = attnlab.create_attention("eca", channels)
    assert m.kernel_size == k
    assert tuple(m.conv.weight.shape[-1:]) == (k,)


@pytest.mark.parametrize("channels", [16, 64, 256, 2048])
@pytest.mark.parametrize("ratio", [8, 16])
def test_cbam_seed_parameter_count(channels, ratio):
    m = attnlab.create_attention("cbam", channels, reduction=ratio)
    assert _n_params(m) == 2 * channels * (channels // ratio) + 2 * 7 * 7
    seed = SeedCBAM(channels, ratio)
    assert _n_params(m) == _n_params(seed)


def test_cbam_official_variant_has_biases_and_bn():
    c, r = 64, 16
    h = c // r
    m = attnlab.create_attention("cbam", c, variant="official")
    # MLP biases (h + c) and the spatial BN's affine parameters (2)
    assert _n_params(m) == 2 * c * h + h + c + 2 * 7 * 7 + 2


def test_width_never_zero():
    # the seed would build a zero-wide bottleneck here: 8 // 16 == 0
    se = attnlab.create_attention("se", 8, reduction=16)
    assert se.fc1.out_channels == 1 and se.fc2.in_channels == 1
    cbam = attnlab.create_attention("cbam", 8, reduction=16)
    assert cbam.channel_attention.fc1.out_channels == 1
    ca = ChannelAttention(8, 16)
    assert ca.fc1.out_channels == 1
    x = _x(2, 8, 5, 5)
    for m in (se, cbam):
        y = m(x.clone().requires_grad_())
        assert y.shape == x.shape and torch.isfinite(y).all()
        y.sum().backward()
    assert _n_params(se) == 2 * 8 * 1 + 1 + 8
