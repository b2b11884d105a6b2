"""Efficient Local Attention: the paper's four configurations, its code's forward, rank-one gates, options."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab.attention import ELA_VARIANTS, EfficientLocalAttention


@pytest.mark.parametrize("c", [64, 256])
@pytest.mark.parametrize("variant, per_c", [("T", 7), ("B", 9), ("S", 42), ("L", 58)])
def test_parameter_counts_of_the_papers_configurations(c, variant, per_c):
    """ELA-T/B: depthwise k = 5/7, GN 32/16 groups: 7C, 9C; ELA-S/L: conv groups C/8 (8 channels each): 42C, 58C."""
    m = EfficientLocalAttention(c, variant=variant)
    k, width, gn = ELA_VARIANTS[variant]
    assert m.conv.kernel_size == (k,) and m.conv.groups == c // width and m.gn.num_groups == gn
    assert sum(p.numel() for p in m.parameters()) == per_c * c


def reference(m: EfficientLocalAttention, x: torch.Tensor) -> torch.Tensor:
    """The paper's code: one conv and one GroupNorm shared by the two strips, then sigmoids."""
    n, c, h, w = x.shape
    x_h = x.mean(3)  # (N, C, H)
    x_w = x.mean(2)  # (N, C, W)
    a_h = m.gn(m.conv(x_h)).sigmoid().view(n, c, h, 1)
    a_w = m.gn(m.conv(x_w)).sigmoid().view(n, c, 1, w)
    return x * a_h * a_w


@pytest.mark.parametrize("variant", sorted(ELA_VARIANTS))
@pytest.mark.parametrize("shape", [(2, 32, 8, 8), (3, 32, 7, 5), (1, 32, 2, 3)], ids=["8x8", "7x5", "2x3"])
def test_matches_the_papers_forward(make_attention, make_input, variant, shape):
    m = make_attention("ela", 32, dtype=torch.float64, variant=variant)
    x = make_input(*shape, dtype=torch.float64)
    torch.testing.assert_close(m(x), reference(m, x), rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        xcl = x.contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(m(xcl), reference(m, x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("variant", ["T", "B"])
def test_one_value_per_group_normalises_to_the_bias(make_attention, make_input, variant):
    """A 1x1 map with one channel per GroupNorm group (ELA-T at C <= 32): each GN output is its bias, where
    torch's group_norm refuses the input."""
    m = make_attention("ela", 16, dtype=torch.float64, variant=variant)
    assert m.gn.num_groups == 16
    x = make_input(2, 16, 1, 1, dtype=torch.float64)
    torch.testing.assert_close(m(x), x * m.gn.bias.sigmoid()[:, None, None] ** 2, rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(m(x.expand(2, 16, 2, 1)), reference(m, x.expand(2, 16, 2, 1)))


def test_each_channels_gate_is_an_h_strip_gate_times_a_w_strip_gate(make_attention, make_input):
    """out = x * a_h[..., None] * a_w[..., None, :]: every channel's gate map is an outer product (rank one)."""
    m = make_attention("ela", 32, dtype=torch.float64)
    x = make_input(2, 32, 7, 6, dtype=torch.float64)
    a_h, a_w = m.weights(x)  # (N, C, H), (N, C, W)
    gate = m(x) / x
    torch.testing.assert_close(gate, a_h[..., :, None] * a_w[..., None, :], rtol=1e-10, atol=1e-12)
    assert (torch.linalg.matrix_rank(gate) == 1).all()
    torch.testing.assert_close(a_h, torch.sigmoid(F.group_norm(m.conv(x.mean(3)), m.gn.num_groups, m.gn.weight,
                                                               m.gn.bias)))


def test_one_conv_and_norm_serve_both_directions(make_attention, make_input):
    """The strips share the conv and the GroupNorm, so transposing a square map transposes the output."""
    m = make_attention("ela", 32, dtype=torch.float64)
    x = make_input(2, 32, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(m(x.transpose(2, 3)), m(x).transpose(2, 3), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("c, variant, groups, num_groups", [
    (16, "T", 16, 16), (48, "B", 48, 16), (24, "T", 24, 24), (20, "S", 2, 10), (44, "L", 4, 11), (4, "S", 1, 4),
])
def test_group_counts_are_fitted_to_the_channels(c, variant, groups, num_groups):
    """A group count that does not divide C becomes the largest one below it that does."""
    m = EfficientLocalAttention(c, variant=variant)
    assert (m.conv.groups, m.gn.num_groups) == (groups, num_groups)


@pytest.mark.parametrize("kwargs", [dict(variant="T"), dict(variant="S"), dict(kernel_size=3), dict(groups=4),
                                    dict(num_groups=4), dict(gate="hard_sigmoid")],
                         ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_every_option_changes_the_output(make_attention, make_input, kwargs):
    x = make_input(2, 32, 6, 6)
    with torch.no_grad():
        ref = make_attention("ela", 32).eval()(x)
        out = make_attention("ela", 32, **kwargs).eval()(x)
    assert not torch.allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(variant="M"), "unknown ELA variant"), (dict(kernel_size=4), "kernel_size"),
    (dict(groups=5), "ELA groups must"), (dict(num_groups=0), "ELA num_groups must"),
    (dict(gate="nope"), "unknown activation"),
])
def test_invalid_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EfficientLocalAttention(32, **kwargs)
