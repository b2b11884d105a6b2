"""Coordinate attention: parameter counts, the official forward as reference, recorded maps, options."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from attnlab.attention import CoordAttention


def coord_params(c: int, r: int = 32) -> int:
    mip = max(8, c // r)
    return (c * mip + mip) + 2 * mip + 2 * (mip * c + c)  # conv1, bn1, conv_h, conv_w


@pytest.mark.parametrize("c, r, expected", [(64, 32, 1688), (512, 32, 25648), (256, 8, coord_params(256, 8))])
def test_parameter_count(c, r, expected):
    m = CoordAttention(c, reduction=r)
    assert m.mip == max(8, c // r)
    assert sum(p.numel() for p in m.parameters()) == expected == coord_params(c, r)


def reference(m: CoordAttention, x: torch.Tensor) -> torch.Tensor:
    """The official CoordAtt forward (houqb/CoordAttention), with the module's layers."""
    n, c, h, w = x.shape
    x_h = F.adaptive_avg_pool2d(x, (None, 1))  # (N, C, H, 1)
    x_w = F.adaptive_avg_pool2d(x, (1, None)).permute(0, 1, 3, 2)  # (N, C, W, 1)
    y = torch.cat([x_h, x_w], dim=2)
    y = m.conv1(y)
    y = m.bn1(y)
    y = y * F.relu6(y + 3) / 6  # h_swish
    x_h, x_w = torch.split(y, [h, w], dim=2)
    x_w = x_w.permute(0, 1, 3, 2)
    a_h = m.conv_h(x_h).sigmoid()
    a_w = m.conv_w(x_w).sigmoid()
    return x * a_w * a_h


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("shape", [(2, 32, 8, 8), (1, 32, 7, 5), (1, 32, 1, 1)], ids=["8x8", "7x5", "1x1"])
def test_matches_official_forward(make_attention, make_input, train, shape):
    m = make_attention("coord", 32, dtype=torch.float64).train(train)
    ref_m = copy.deepcopy(m)
    x = make_input(*shape, dtype=torch.float64)
    torch.testing.assert_close(m(x), reference(ref_m, x), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(m.bn1.running_var, ref_m.bn1.running_var, rtol=1e-12, atol=0)
    xcl = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(m.eval()(xcl), reference(ref_m.eval(), x), rtol=1e-10, atol=1e-12)


def test_recorded_maps(make_attention, make_input):
    m = make_attention("coord", 32, dtype=torch.float64).eval()
    x = make_input(2, 32, 6, 5, dtype=torch.float64)
    got = []
    m.attention_sink = lambda mod, maps: got.append(maps)
    with torch.no_grad():
        m(x)
        a_h, a_w = m.weights(x)
    full = a_h[:, :, :, None] * a_w[:, :, None, :]  # (N, C, H, W)
    torch.testing.assert_close(got[0].spatial, full.mean(1, keepdim=True))
    torch.testing.assert_close(got[0].channel, full.mean((2, 3)))


@pytest.mark.parametrize("kwargs",
                         [dict(reduction=2), dict(min_channels=4), dict(act="relu"), dict(gate="hard_sigmoid")],
                         ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_every_option_changes_the_output(make_attention, make_input, kwargs):
    x = make_input(2, 32, 6, 6)
    with torch.no_grad():
        ref = make_attention("coord", 32).eval()(x)
        out = make_attention("coord", 32, **kwargs).eval()(x)
    assert not torch.allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(reduction=0), "reduction"), (dict(min_channels=0), "min_channels"), (dict(act="nope"), "unknown activation"),
])
def test_invalid_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CoordAttention(32, **kwargs)
