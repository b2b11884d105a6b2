"""FcaNet: SE's parameter count, GAP as the (0, 0) DCT frequency, the paper's frequency selections, the
official forward (pooling included) as reference."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import attnlab
from attnlab.attention import FCA_FREQUENCIES, MultiSpectralAttention, SqueezeExcitation, dct_filters, fca_frequencies


@pytest.mark.parametrize("c, r", [(64, 16), (256, 16), (2048, 16), (256, 4)])
def test_parameter_count_is_se_without_biases(c, r):
    m = MultiSpectralAttention(c, reduction=r)
    assert sum(p.numel() for p in m.parameters()) == 2 * c * (c // r)
    assert sum(p.numel() for p in MultiSpectralAttention(c, reduction=r, bias=True).parameters()) == \
        sum(p.numel() for p in SqueezeExcitation(c, reduction=r).parameters())
    assert m.dct_layer.weight.shape == (c, 7, 7) and "dct_layer.weight" in m.state_dict()  # a buffer


def test_fcanet50_has_28_07m_parameters():
    """The paper's ImageNet comparison: FcaNet-50 has 28.07M parameters, as SENet-50 (DCT filters: not learned)."""
    n = sum(p.numel() for p in attnlab.create_model("resnet50", attention="fca").parameters())
    assert round(n / 1e6, 2) == 28.07


def test_top1_is_se_on_global_average_pooling(make_input):
    """The paper's Theorem 1: GAP is the (0, 0) DCT frequency up to a constant, so FcaNet with that frequency alone
    is SE (without biases) on sqrt(HW) * GAP: the same output once SE's first layer is scaled by sqrt(HW)."""
    c, size = 32, 7
    fca = MultiSpectralAttention(c, reduction=4, frequencies="top1", dct_size=size).double()
    assert fca.frequencies == [(0, 0)]
    se = SqueezeExcitation(c, reduction=4, bias=False).double()
    with torch.no_grad():
        se.fc1.weight.copy_(fca.fc[0].weight[:, :, None, None] * math.sqrt(size * size))
        se.fc2.weight.copy_(fca.fc[2].weight[:, :, None, None])
    for shape in [(2, c, 7, 7), (2, c, 14, 21)]:  # 14x21 is pooled to 7x7 in even bins: still sqrt(49) * GAP
        x = make_input(*shape, dtype=torch.float64)
        torch.testing.assert_close(fca.descriptor(x), 7 * x.mean((2, 3)))
        with torch.no_grad():
            torch.testing.assert_close(fca(x), se(x))


def test_dct_filters_are_the_orthonormal_2d_dct_basis():
    """The 49 filters of the 7x7 space (one per channel here) are orthonormal, and (0, 0) is constant 1/7."""
    pairs = [(u, v) for u in range(7) for v in range(7)]
    f = dct_filters(49, (7, 7), pairs).double().flatten(1)  # (49, 49)
    torch.testing.assert_close(f @ f.t(), torch.eye(49, dtype=torch.float64), rtol=0, atol=1e-6)
    torch.testing.assert_close(f[0], torch.full((49,), 1 / 7, dtype=torch.float64), rtol=0, atol=1e-7)
    t = torch.arange(7, dtype=torch.float64)
    expected = torch.outer(torch.cos(math.pi * 2 * (t + 0.5) / 7), torch.cos(math.pi * 3 * (t + 0.5) / 7)) * 2 / 7
    torch.testing.assert_close(f[2 * 7 + 3].view(7, 7), expected, rtol=0, atol=1e-7)


def test_frequency_selections():
    """The paper's selections: "top16" is its choice and starts with GAP's (0, 0); all lie in the 7x7 space."""
    assert len(FCA_FREQUENCIES) == 18
    top16 = fca_frequencies("top16")
    assert top16[:4] == [(0, 0), (0, 1), (6, 0), (0, 5)]
    assert fca_frequencies("low4") == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert fca_frequencies("bot1") == [(6, 6)]
    for name in FCA_FREQUENCIES:
        pairs = fca_frequencies(name)
        assert len(pairs) == len(set(pairs)) == int(name[3:])
        assert all(0 <= u < 7 and 0 <= v < 7 for u, v in pairs)
        assert fca_frequencies(name[:3] + "32")[: len(pairs)] == pairs  # topK is a prefix of one ranking


def test_channel_parts_take_one_frequency_each_scaled_to_dct_size():
    m = MultiSpectralAttention(64, frequencies="top16", dct_size=14)
    assert m.frequencies == [(2 * u, 2 * v) for u, v in fca_frequencies("top16")]
    w = m.dct_layer.weight  # (64, 14, 14): channels 4i .. 4i + 3 hold frequency i
    for i, (u, v) in enumerate(m.frequencies):
        expected = dct_filters(1, (14, 14), [(u, v)])[0]
        for ch in range(4 * i, 4 * i + 4):
            torch.testing.assert_close(w[ch], expected)


def reference(m: MultiSpectralAttention, x: torch.Tensor) -> torch.Tensor:
    """The official MultiSpectralAttentionLayer forward (cfzd/FcaNet), with the module's layers and buffer."""
    n, c, h, w = x.shape
    pooled = x if (h, w) == m.dct_size else F.adaptive_avg_pool2d(x, m.dct_size)
    y = (pooled * m.dct_layer.weight).sum((2, 3))
    return x * m.fc(y).view(n, c, 1, 1)


@pytest.mark.parametrize("dct_size", [7, 8, (7, 9)])
@pytest.mark.parametrize("shape", [(2, 32, 7, 7), (2, 32, 8, 8), (1, 32, 13, 5), (2, 32, 1, 1), (2, 32, 30, 17)],
                         ids=["7x7", "8x8", "13x5", "1x1", "30x17"])
def test_matches_official_forward_with_pooling(make_attention, make_input, shape, dct_size):
    m = make_attention("fca", 32, dtype=torch.float64, dct_size=dct_size)
    x = make_input(*shape, dtype=torch.float64)
    torch.testing.assert_close(m(x), reference(m, x), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(m(x.contiguous(memory_format=torch.channels_last)), reference(m, x),
                               rtol=1e-10, atol=1e-12)


def test_channel_scale_is_the_gate(make_attention, make_input):
    m = make_attention("fca", 32).eval()
    x = make_input(2, 32, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(m(x), x * m.channel_scale(x)[:, :, None, None])


@pytest.mark.parametrize("c, expected", [(64, "top16"), (32, "top16"), (24, "top8"), (8, "top8"), (12, "top4"),
                                         (6, "top2"), (3, "top1")])
def test_default_frequencies_split_the_channels_evenly(c, expected):
    assert MultiSpectralAttention(c).selection == expected


@pytest.mark.parametrize("kwargs, match", [
    (dict(channels=8, frequencies="top16"), "16 does not divide channels=8"),
    (dict(channels=32, frequencies="top3"), "unknown FcaNet frequency selection"),
    (dict(channels=32, frequencies=[(0, 7)]), "7x7 space"), (dict(channels=32, frequencies=[]), "7x7 space"),
    (dict(channels=32, dct_size=5), "dct_size"), (dict(channels=32, reduction=0), "reduction"),
])
def test_invalid_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiSpectralAttention(**kwargs)
