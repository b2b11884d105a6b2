"""Shuffle attention: the paper's 3C/G parameters, the official forward as reference, the shuffle, groups."""

from __future__ import annotations

import copy

import pytest
import torch

import attnlab
from attnlab.attention import ShuffleAttention


@pytest.mark.parametrize("c, g", [(256, 64), (2048, 64), (64, 8), (32, 16)])
def test_parameter_count_is_3c_over_g(c, g):
    m = ShuffleAttention(c, groups=g)
    assert sum(p.numel() for p in m.parameters()) == 3 * c // g


def test_sa_resnet50_adds_708_parameters():
    """SA-Net-50 (G = 64): 3C/64 summed over ResNet-50's 16 bottleneck outputs = 708, i.e. 25.56M as ResNet-50."""
    base = sum(p.numel() for p in attnlab.create_model("resnet50").parameters())
    sa = sum(p.numel() for p in attnlab.create_model("resnet50", attention="sa").parameters())
    assert sa - base == 3 * (3 * 256 + 4 * 512 + 6 * 1024 + 3 * 2048) // 64 == 708
    assert round(sa / 1e6, 2) == round(base / 1e6, 2) == 25.56


def reference(m: ShuffleAttention, x: torch.Tensor) -> torch.Tensor:
    """The official sa_layer forward (wofmanaf/SA-Net), with the module's parameters."""
    b, c, h, w = x.shape
    xg = x.reshape(b * m.groups, -1, h, w)
    x0, x1 = xg.chunk(2, dim=1)
    xn = x0 * torch.sigmoid(m.cweight * x0.mean((2, 3), keepdim=True) + m.cbias)
    xs = x1 * torch.sigmoid(m.sweight * m.gn(x1) + m.sbias)
    out = torch.cat([xn, xs], dim=1).reshape(b, -1, h, w)
    return out.reshape(b, 2, -1, h, w).permute(0, 2, 1, 3, 4).reshape(b, -1, h, w)


@pytest.mark.parametrize("groups", [None, 4, 1])
@pytest.mark.parametrize("shape", [(2, 32, 8, 8), (3, 32, 7, 5), (2, 32, 1, 1)], ids=["8x8", "7x5", "1x1"])
def test_matches_official_forward(make_attention, make_input, shape, groups):
    m = make_attention("sa", 32, dtype=torch.float64, groups=groups)
    x = make_input(*shape, dtype=torch.float64)
    torch.testing.assert_close(m(x), reference(copy.deepcopy(m), x), rtol=1e-10, atol=1e-12)
    xcl = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(m(xcl), reference(m, x), rtol=1e-10, atol=1e-12)


def test_one_value_per_group_is_accepted(make_input):
    """The official GroupNorm raises on (1, 32, 1, 1) with one group; the folded GN here gives gate(b_s) there."""
    m = ShuffleAttention(32, groups=1)
    x = make_input(1, 32, 1, 1)
    with pytest.raises(ValueError, match="more than 1 value"):
        reference(m, x)
    gate = torch.sigmoid(torch.tensor(1.0))
    torch.testing.assert_close(m(x), ShuffleAttention.channel_shuffle(x) * gate)


def test_new_module_gates_with_sigmoid_one(make_input):
    """The official init (w = 0, b = 1): every channel is scaled by sigmoid(1) before the shuffle."""
    m = ShuffleAttention(32)
    x = make_input(2, 32, 6, 6)
    torch.testing.assert_close(m(x), ShuffleAttention.channel_shuffle(x) * torch.sigmoid(torch.tensor(1.0)))


def test_channel_shuffle_is_a_permutation_mixing_both_branches():
    """Output channel o carries input channel perm[o], a permutation; each output pair holds one channel of
    each half, so a group of the next layer sees both the channel and the spatial branch (the paper's aim)."""
    c, k = 32, 2  # groups=8: k = C / 2G = 2 channels per branch and group
    m = ShuffleAttention(c, groups=8)
    perm = m.permutation()
    assert sorted(perm.tolist()) == list(range(c))
    x = torch.randn(2, c, 3, 3)
    torch.testing.assert_close(ShuffleAttention.channel_shuffle(x), x[:, perm])
    assert all(perm[2 * a] < c // 2 <= perm[2 * a + 1] for a in range(c // 2))
    branch = (perm % (2 * k)) // k  # 0: channel branch, 1: spatial branch (channel = (group, branch, j))
    assert branch.view(-1, 2).sum(1).tolist() != [0] * (c // 2)  # the branches are interleaved, not kept apart
    assert set(branch[: c // 2].tolist()) == {0, 1}


def test_recorded_maps_are_the_applied_gates(make_attention, make_input):
    m = make_attention("sa", 32, dtype=torch.float64, groups=4).eval()
    x = make_input(2, 32, 5, 4, dtype=torch.float64)
    got = []
    m.attention_sink = lambda mod, maps: got.append(maps)
    out = m(x)
    g_c, g_s = m.gates(x)
    full = torch.stack([g_c.expand_as(g_s), g_s], dim=2).reshape(2, 32, 5, 4)  # the gate of each input channel
    torch.testing.assert_close(out, ShuffleAttention.channel_shuffle(x * full))
    torch.testing.assert_close(got[0].channel, full.mean((2, 3)))
    torch.testing.assert_close(got[0].spatial, full.mean(1, keepdim=True))


@pytest.mark.parametrize("c, expected", [(256, 64), (2048, 64), (128, 64), (32, 16), (96, 48), (8, 4), (2, 1)])
def test_default_groups(c, expected):
    assert ShuffleAttention(c).groups == expected


@pytest.mark.parametrize("kwargs, match", [
    (dict(channels=32, groups=3), "2 \\* groups to divide channels.*groups=16"),
    (dict(channels=32, groups=0), "groups=0"), (dict(channels=31), "even"), (dict(channels=31, groups=1), "even"),
    (dict(channels=32, gate="nope"), "unknown activation"),
])
def test_invalid_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ShuffleAttention(**kwargs)
