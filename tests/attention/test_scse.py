"""scSE: parameter counts, the authors' cSE/sSE layers as reference, recorded maps, options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attnlab.attention import SCSE

# ---- the authors' layers (ai-med/squeeze_and_excitation), combined by addition as in the paper ----


class ChannelSELayer(nn.Module):
    def __init__(self, num_channels, reduction_ratio=16):
        super().__init__()
        self.fc1 = nn.Linear(num_channels, num_channels // reduction_ratio, bias=True)
        self.fc2 = nn.Linear(num_channels // reduction_ratio, num_channels, bias=True)

    def forward(self, x):
        b, c, _, _ = x.size()
        squeeze = x.view(b, c, -1).mean(dim=2)
        w = torch.sigmoid(self.fc2(torch.relu(self.fc1(squeeze))))
        return torch.mul(x, w.view(b, c, 1, 1))


class SpatialSELayer(nn.Module):
    def __init__(self, num_channels):
        super().__init__()
        self.conv = nn.Conv2d(num_channels, 1, 1)

    def forward(self, x):
        return torch.mul(x, torch.sigmoid(self.conv(x)))


class ChannelSpatialSELayer(nn.Module):
    def __init__(self, num_channels, reduction_ratio=16):
        super().__init__()
        self.cSE = ChannelSELayer(num_channels, reduction_ratio)
        self.sSE = SpatialSELayer(num_channels)

    def forward(self, x):
        return self.cSE(x) + self.sSE(x)


# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("c, r, expected", [(64, 16, 645), (256, 16, 8721), (256, 4, 2 * 256 * 64 + 64 + 2 * 256 + 1)])
def test_parameter_count(c, r, expected):
    h = c // r
    assert sum(p.numel() for p in SCSE(c, reduction=r).parameters()) == expected == 2 * c * h + h + 2 * c + 1


@pytest.mark.parametrize("shape", [(2, 32, 8, 8), (1, 32, 7, 5), (3, 32, 1, 1)], ids=["8x8", "7x5", "1x1"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("grad", [False, True], ids=["nograd", "grad"])
def test_matches_authors_layers(make_attention, make_input, shape, channels_last, grad):
    m = make_attention("scse", 32, dtype=torch.float64)
    ref = ChannelSpatialSELayer(32).double()
    ref.load_state_dict(m.state_dict(), strict=True)  # same parameter names
    x = make_input(*shape, dtype=torch.float64)
    xin = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    with torch.set_grad_enabled(grad):
        out = m(xin.clone().requires_grad_(grad))
    torch.testing.assert_close(out, ref(x), rtol=1e-12, atol=1e-12)
    if channels_last and shape[2] * shape[3] > 1:
        assert out.is_contiguous(memory_format=torch.channels_last)


def test_recorded_maps(make_attention, make_input):
    m = make_attention("scse", 32, dtype=torch.float64)
    ref = ChannelSpatialSELayer(32).double()
    ref.load_state_dict(m.state_dict())
    x = make_input(2, 32, 6, 5, dtype=torch.float64)
    got = []
    m.attention_sink = lambda mod, maps: got.append(maps)
    with torch.no_grad():
        m(x)
        torch.testing.assert_close(got[0].channel[:, :, None, None] * x, ref.cSE(x))
        torch.testing.assert_close(got[0].spatial * x, ref.sSE(x))


@pytest.mark.parametrize("kwargs",
                         [dict(reduction=4), dict(min_channels=4), dict(act="gelu"), dict(gate="hard_sigmoid")],
                         ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_every_option_changes_the_output(make_attention, make_input, kwargs):
    x = make_input(2, 32, 6, 6)
    with torch.no_grad():
        ref = make_attention("scse", 32).eval()(x)
        out = make_attention("scse", 32, **kwargs).eval()(x)
    assert not torch.allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(reduction=0), "reduction"), (dict(min_channels=0), "min_channels"), (dict(gate="nope"), "unknown activation"),
])
def test_invalid_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SCSE(32, **kwargs)
