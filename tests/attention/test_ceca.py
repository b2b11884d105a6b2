"""Circular ECA: parameter count, circular padding against F.pad, cyclic-shift equivariance, options."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab.attention import CircularECA, EfficientChannelAttention


@pytest.mark.parametrize("c, k", [(64, 3), (256, 5), (512, 5), (2048, 7)])
def test_parameter_count_is_the_eca_papers_k(c, k):
    """k parameters, k from the ECA paper's adaptive rule (its Sec. 3.3: 3, 5, 5, 7 at these C)."""
    m = CircularECA(c)
    assert m.kernel_size == k == EfficientChannelAttention(c).kernel_size
    assert sum(p.numel() for p in m.parameters()) == k
    assert list(m.state_dict()) == ["conv.weight"] and m.conv.weight.shape == (1, 1, k)  # timm's layout


@pytest.mark.parametrize("c, k", [(32, 3), (32, 7), (4, 7), (3, 9)], ids=["k3", "k7", "k7-wider-than-C", "k9-C3"])
def test_weights_are_a_circularly_padded_conv(make_attention, make_input, c, k):
    """Against F.pad(mode="circular") where it applies (padding <= C), and the sum written out everywhere."""
    m = make_attention("ceca", c, dtype=torch.float64, kernel_size=k)
    avg = make_input(3, c, dtype=torch.float64)
    w = m.conv.weight.view(k)
    p = k // 2
    written = torch.stack([sum(w[j] * avg[:, (i + j - p) % c] for j in range(k)) for i in range(c)], 1)
    torch.testing.assert_close(m.weights(avg), written.sigmoid(), rtol=1e-12, atol=1e-14)
    if p <= c:
        padded = F.pad(avg[:, None], (p, p), mode="circular")  # (N, 1, C + 2p)
        torch.testing.assert_close(m.weights(avg), F.conv1d(padded, m.conv.weight)[:, 0].sigmoid())


@pytest.mark.parametrize("shift", [1, 5, -3, 32])
def test_equivariant_to_a_cyclic_shift_of_the_channels(make_attention, make_input, shift):
    """Circular padding treats every channel alike: m(roll(x)) == roll(m(x)); zero-padded ECA does not."""
    m = make_attention("ceca", 32, dtype=torch.float64, kernel_size=5)
    x = make_input(2, 32, 5, 4, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(m(x.roll(shift, 1)), m(x).roll(shift, 1), rtol=1e-12, atol=1e-14)
        eca = EfficientChannelAttention(32, kernel_size=5).double()
        eca.conv.weight.copy_(m.conv.weight)
        if shift % 32:
            assert not torch.allclose(eca(x.roll(shift, 1)), eca(x).roll(shift, 1))
        # away from the edges the two paddings agree
        torch.testing.assert_close(m(x)[:, 2:-2], eca(x)[:, 2:-2], rtol=1e-12, atol=1e-14)


def test_channel_scale_is_the_gate(make_attention, make_input):
    m = make_attention("ceca", 32).eval()
    x = make_input(2, 32, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(m(x), x * m.channel_scale(x)[:, :, None, None])


@pytest.mark.parametrize("kwargs", [dict(kernel_size=5), dict(gamma=1), dict(b=5), dict(gate="hard_sigmoid")],
                         ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_every_option_changes_the_output(make_input, kwargs):
    x = make_input(2, 32, 6, 6)
    torch.manual_seed(0)
    ref_m = CircularECA(32)
    torch.manual_seed(0)
    m = CircularECA(32, **kwargs)
    if m.kernel_size == ref_m.kernel_size:  # gate: same weights, other function
        m.conv.weight.data.copy_(ref_m.conv.weight)
    else:
        assert m.kernel_size != ref_m.kernel_size
    with torch.no_grad():
        assert not torch.allclose(m(x), ref_m(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k", [0, 2, -1, 3.0, True])
def test_invalid_kernel_size_raises(k):
    with pytest.raises(ValueError, match="kernel_size"):
        CircularECA(32, kernel_size=k)
