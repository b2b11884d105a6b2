"""Double attention: parameter count, the gather and distribute steps (shapes and normalisations of the paper's
equations), the block written out as a reference, placement and options."""

from __future__ import annotations

import pytest
import torch

import attnlab
from attnlab.attention import DoubleAttention


@pytest.mark.parametrize("c, m, n", [(32, None, None), (256, None, None), (256, 64, 32), (1024, 128, 16)])
def test_parameter_count(c, m, n):
    block = DoubleAttention(c, mid_channels=m, descriptors=n)
    m, n = block.mid_channels, block.descriptors
    expected = (c * m + m) + 2 * (c * n + n) + (m * c + c)  # convs A, B, V, then the output conv m -> C
    assert sum(p.numel() for p in block.parameters()) == expected == 2 * c * m + 2 * c * n + m + 2 * n + c
    if block.mid_channels == block.descriptors:
        assert m == c // 4


def test_gather_and_distribute(make_attention, make_input):
    """Gather: G = A softmax(B)^T (N, m, n), each of the n maps a distribution over the HW positions, so each
    descriptor g_j is a convex combination of the features a_i; distribute: each position's vector v_i is a
    distribution over the n descriptors, z_i = G v_i (N, m, HW)."""
    block = make_attention("a2", 32, dtype=torch.float64, mid_channels=12, descriptors=5)
    x = make_input(2, 32, 6, 5, dtype=torch.float64)
    g, gather, distribute = block.attend(x)
    assert g.shape == (2, 12, 5) and gather.shape == (2, 5, 30) and distribute.shape == (2, 5, 30)
    torch.testing.assert_close(gather.sum(2), torch.ones(2, 5, dtype=torch.float64))  # over the positions
    torch.testing.assert_close(distribute.sum(1), torch.ones(2, 30, dtype=torch.float64))  # over the n descriptors
    a = block.convA(x).flatten(2)  # (N, m, HW)
    torch.testing.assert_close(g, torch.einsum("nmi,nji->nmj", a, gather))
    lo, hi = a.amin(2, keepdim=True), a.amax(2, keepdim=True)
    assert ((g >= lo - 1e-12) & (g <= hi + 1e-12)).all()  # attention-weighted averages of the features


def reference(block: DoubleAttention, x: torch.Tensor) -> torch.Tensor:
    """The block written out: Z = [phi(X) softmax_HW(theta(X))^T] softmax_n(rho(X)); out = X + conv(Z)."""
    n, _, h, w = x.shape
    a = block.convA(x).flatten(2)
    b = block.convB(x).flatten(2).softmax(2)
    v = block.convV(x).flatten(2).softmax(1)
    z = torch.bmm(a, torch.bmm(b.transpose(1, 2), v))  # the other association: an (HW, HW) matrix, as Non-Local
    return x + block.conv_reconstruct(z.view(n, -1, h, w))


@pytest.mark.parametrize("shape", [(2, 32, 8, 8), (3, 32, 7, 5), (2, 32, 1, 1)], ids=["8x8", "7x5", "1x1"])
def test_matches_reference(make_attention, make_input, shape):
    block = make_attention("a2", 32, dtype=torch.float64)
    x = make_input(*shape, dtype=torch.float64)
    for xx in (x, x.contiguous(memory_format=torch.channels_last)):
        torch.testing.assert_close(block(xx), reference(block, x), rtol=1e-10, atol=1e-12)


def test_distribution_softmax_is_over_the_descriptors(make_attention, make_input):
    """Not over the positions (a common port's mistake): a constant added to all n entries of V changes nothing,
    one added to a single descriptor's V at every position changes the output (a softmax over the positions
    would ignore it)."""
    block = make_attention("a2", 16, dtype=torch.float64, descriptors=4)
    x = make_input(2, 16, 5, 4, dtype=torch.float64)
    shifted = make_attention("a2", 16, dtype=torch.float64, descriptors=4)
    with torch.no_grad():
        shifted.convV.bias += 3.0  # the same shift for every descriptor at every position
        torch.testing.assert_close(shifted(x), block(x))
        shifted.convV.bias[0] += 3.0  # one descriptor only: the distribution changes
    assert not torch.allclose(shifted(x), block(x))


def test_recorded_maps(make_attention, make_input):
    block = make_attention("a2", 32, dtype=torch.float64)
    x = make_input(2, 32, 6, 5, dtype=torch.float64)
    got = []
    block.attention_sink = lambda mod, maps: got.append(maps)
    block(x)
    _, gather, distribute = block.attend(x)
    torch.testing.assert_close(got[0].extra["gather"], gather)
    torch.testing.assert_close(got[0].extra["distribute"], distribute)
    torch.testing.assert_close(got[0].spatial, gather.mean(1).view(2, 1, 6, 5))


def test_zero_init_last_gives_the_identity(make_attention, make_input):
    block = make_attention("a2", 32)
    x = make_input(2, 32, 4, 4)
    assert not torch.equal(block(x), x)
    block.zero_init_last()
    assert torch.equal(block(x), x)


def test_placed_after_blocks_like_non_local():
    assert DoubleAttention.placement == "after_blocks"
    net = attnlab.create_model("resnet20", attention="a2", nonlocal_setting="5block")
    assert sum(isinstance(mod, DoubleAttention) for mod in net.modules()) == 5


@pytest.mark.parametrize("kwargs, match", [
    (dict(mid_channels=0), "mid_channels"), (dict(descriptors=-1), "descriptors"), (dict(reduction=0), "reduction"),
])
def test_invalid_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DoubleAttention(32, **kwargs)
