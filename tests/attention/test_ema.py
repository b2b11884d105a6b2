"""EMA: parameters shared across groups (10c'^2 + 4c'), the official forward as reference, one spatial gate per
group and no interaction between groups, the default groups."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab.attention import EfficientMultiScaleAttention


@pytest.mark.parametrize("c, g", [(256, 32), (512, 32), (2048, 32), (64, 8)])
def test_parameter_count(c, g):
    cg = c // g
    m = EfficientMultiScaleAttention(c, groups=g)
    expected = (cg * cg + cg) + (9 * cg * cg + cg) + 2 * cg  # conv1x1, conv3x3, GroupNorm
    assert sum(p.numel() for p in m.parameters()) == expected == 10 * cg**2 + 4 * cg
    assert sum(p.numel() for p in EfficientMultiScaleAttention(256, groups=32).parameters()) == 672


def reference(m: EfficientMultiScaleAttention, x: torch.Tensor) -> torch.Tensor:
    """The official EMA forward (YOLOonMe/EMA-attention-module), with the module's layers."""
    b, c, h, w = x.shape
    g = m.groups
    group_x = x.reshape(b * g, -1, h, w)
    x_h = F.adaptive_avg_pool2d(group_x, (None, 1))
    x_w = F.adaptive_avg_pool2d(group_x, (1, None)).permute(0, 1, 3, 2)
    hw = m.conv1x1(torch.cat([x_h, x_w], dim=2))
    x_h, x_w = torch.split(hw, [h, w], dim=2)
    x1 = m.gn(group_x * x_h.sigmoid() * x_w.permute(0, 1, 3, 2).sigmoid())
    x2 = m.conv3x3(group_x)
    x11 = F.adaptive_avg_pool2d(x1, 1).reshape(b * g, -1, 1).permute(0, 2, 1).softmax(-1)
    x12 = x2.reshape(b * g, c // g, -1)
    x21 = F.adaptive_avg_pool2d(x2, 1).reshape(b * g, -1, 1).permute(0, 2, 1).softmax(-1)
    x22 = x1.reshape(b * g, c // g, -1)
    weights = (torch.matmul(x11, x12) + torch.matmul(x21, x22)).reshape(b * g, 1, h, w)
    return (group_x * weights.sigmoid()).reshape(b, c, h, w)


@pytest.mark.parametrize("groups", [None, 4, 8])
@pytest.mark.parametrize("shape", [(2, 32, 8, 8), (3, 32, 7, 5), (2, 32, 1, 1)], ids=["8x8", "7x5", "1x1"])
def test_matches_official_forward(make_attention, make_input, shape, groups):
    m = make_attention("ema", 32, dtype=torch.float64, groups=groups)
    x = make_input(*shape, dtype=torch.float64)
    torch.testing.assert_close(m(x), reference(m, x), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(m(x.contiguous(memory_format=torch.channels_last)), reference(m, x),
                               rtol=1e-10, atol=1e-12)


def test_one_spatial_gate_per_group_and_no_interaction_between_groups(make_attention, make_input):
    """EMA reshapes the groups into the batch: every channel of a group gets the same (H, W) gate, and a group's
    output does not depend on the other groups' channels (its cross-spatial learning stays inside the group)."""
    m = make_attention("ema", 32, dtype=torch.float64, groups=4)  # c' = 8
    x = make_input(2, 32, 6, 5, dtype=torch.float64)
    with torch.no_grad():
        gate = (m(x) / x).view(2, 4, 8, 6, 5)
        torch.testing.assert_close(gate, gate[:, :, :1].expand_as(gate))
        y = x.clone()
        y[:, 8:] = make_input(2, 24, 6, 5, seed=9, dtype=torch.float64)  # change groups 1-3 only
        torch.testing.assert_close(m(y)[:, :8], m(x)[:, :8], rtol=0, atol=0)
        assert not torch.allclose(m(y)[:, 8:16], m(x)[:, 8:16] / x[:, 8:16] * y[:, 8:16])


def test_recorded_maps(make_attention, make_input):
    m = make_attention("ema", 32, dtype=torch.float64, groups=4)
    x = make_input(2, 32, 6, 5, dtype=torch.float64)
    got = []
    m.attention_sink = lambda mod, maps: got.append(maps)
    with torch.no_grad():
        gate = (m(x) / x).view(2, 4, 8, 6, 5)[:, :, 0]  # (N, G, H, W)
    torch.testing.assert_close(got[0].extra["group_gates"], gate)
    torch.testing.assert_close(got[0].spatial, gate.mean(1, keepdim=True))
    torch.testing.assert_close(got[0].channel, gate.mean((2, 3)).repeat_interleave(8, 1))


@pytest.mark.parametrize("c, expected", [(256, 32), (64, 32), (32, 32), (48, 24), (16, 16), (7, 7)])
def test_default_groups(c, expected):
    assert EfficientMultiScaleAttention(c).groups == expected


@pytest.mark.parametrize("kwargs, match", [
    (dict(channels=32, groups=5), "groups must divide channels.*groups=32"), (dict(channels=32, groups=0), "groups=0"),
    (dict(channels=32, gate="nope"), "unknown activation"),
])
def test_invalid_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EfficientMultiScaleAttention(**kwargs)
