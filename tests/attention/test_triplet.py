"""Triplet attention: parameter counts, the official three-permutation code as reference, options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attnlab.attention import TripletAttention

# ---- the official implementation (landskape-ai/triplet-attention, MODELS/triplet_attention.py) ----


class BasicConv(nn.Module):
    def __init__(self, in_planes, out_planes, kernel_size, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size=kernel_size, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_planes, eps=1e-5, momentum=0.01, affine=True)

    def forward(self, x):
        return self.bn(self.conv(x))


class ChannelPool(nn.Module):
    def forward(self, x):
        return torch.cat((torch.max(x, 1)[0].unsqueeze(1), torch.mean(x, 1).unsqueeze(1)), dim=1)


class SpatialGate(nn.Module):
    def __init__(self, kernel_size=7):
        super().__init__()
        self.compress = ChannelPool()
        self.spatial = BasicConv(2, 1, kernel_size, padding=(kernel_size - 1) // 2)

    def forward(self, x):
        return x * torch.sigmoid(self.spatial(self.compress(x)))


class OfficialTriplet(nn.Module):
    def __init__(self, kernel_size=7, no_spatial=False):
        super().__init__()
        self.ChannelGateH = SpatialGate(kernel_size)
        self.ChannelGateW = SpatialGate(kernel_size)
        self.no_spatial = no_spatial
        if not no_spatial:
            self.SpatialGate = SpatialGate(kernel_size)

    def forward(self, x):
        x_perm1 = x.permute(0, 2, 1, 3).contiguous()
        x_out11 = self.ChannelGateH(x_perm1).permute(0, 2, 1, 3).contiguous()
        x_perm2 = x.permute(0, 3, 2, 1).contiguous()
        x_out21 = self.ChannelGateW(x_perm2).permute(0, 3, 2, 1).contiguous()
        if not self.no_spatial:
            return (1 / 3) * (self.SpatialGate(x) + x_out11 + x_out21)
        return (1 / 2) * (x_out11 + x_out21)


# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k, no_spatial, expected", [(7, False, 300), (7, True, 200), (3, False, 60), (5, True, 104)])
@pytest.mark.parametrize("c", [16, 256])
def test_parameter_count(c, k, no_spatial, expected):
    m = TripletAttention(c, kernel_size=k, no_spatial=no_spatial)
    assert sum(p.numel() for p in m.parameters()) == expected == (2 if no_spatial else 3) * (2 * k * k + 2)


@pytest.mark.parametrize("no_spatial", [False, True], ids=["triplet", "no_spatial"])
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("shape", [(2, 6, 8, 8), (2, 5, 7, 4), (1, 3, 2, 9)], ids=["6x8x8", "5x7x4", "3x2x9"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_matches_official_code(make_attention, make_input, no_spatial, train, shape, channels_last):
    c = shape[1]
    m = make_attention("triplet", c, dtype=torch.float64, no_spatial=no_spatial).train(train)
    ref = OfficialTriplet(no_spatial=no_spatial).double().train(train)
    ref.load_state_dict(m.state_dict(), strict=True)  # same parameter names
    x = make_input(*shape, dtype=torch.float64)
    xin = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    out = m(xin)
    torch.testing.assert_close(out, ref(x), rtol=1e-10, atol=1e-12)
    for (k, a), b in zip(m.state_dict().items(), ref.state_dict().values(), strict=True):  # same BN statistics updates
        torch.testing.assert_close(a, b, rtol=1e-12, atol=0, msg=k)
    if channels_last:
        assert out.is_contiguous(memory_format=torch.channels_last)


def test_recorded_spatial_is_the_hw_branch(make_attention, make_input):
    m = make_attention("triplet", 8, dtype=torch.float64).eval()
    x = make_input(2, 8, 6, 5, dtype=torch.float64)
    got = []
    m.attention_sink = lambda mod, maps: got.append(maps)
    with torch.no_grad():
        m(x)
    ref = OfficialTriplet().double().eval()
    ref.load_state_dict(m.state_dict())
    with torch.no_grad():
        hw = torch.sigmoid(ref.SpatialGate.spatial(ref.SpatialGate.compress(x)))
    torch.testing.assert_close(got[0].spatial, hw)


@pytest.mark.parametrize("kwargs", [dict(kernel_size=3), dict(no_spatial=True), dict(gate="hard_sigmoid")],
                         ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_every_option_changes_the_output(make_attention, make_input, kwargs):
    x = make_input(2, 8, 8, 8)
    with torch.no_grad():
        ref = make_attention("triplet", 8).eval()(x)
        out = make_attention("triplet", 8, **kwargs).eval()(x)
    assert not torch.allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k", [0, 4, -3, 7.0])
def test_invalid_kernel_size_raises(k):
    with pytest.raises(ValueError, match="kernel_size"):
        TripletAttention(8, kernel_size=k)


def test_invalid_no_spatial_raises():
    with pytest.raises(ValueError, match="no_spatial"):
        TripletAttention(8, no_spatial=1)
