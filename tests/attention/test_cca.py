"""Criss-cross attention: parameter count, the identity at init, a dense masked attention as reference (one
softmax over the H + W - 1 positions of the cross), and the paper's claim that R = 2 connects every pixel pair."""

from __future__ import annotations

import pytest
import torch

import attnlab
from attnlab.attention import CrissCrossAttention


@pytest.mark.parametrize("c", [32, 512, 2048])
@pytest.mark.parametrize("recurrence", [1, 2])
def test_parameter_count(c, recurrence):
    ci = c // 8
    m = CrissCrossAttention(c, recurrence=recurrence)
    assert sum(p.numel() for p in m.parameters()) == 2 * (c * ci + ci) + c * c + c + 1  # the loops share them


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_new_module_is_the_identity(make_input, train):
    m = CrissCrossAttention(32).train(train)
    for shape in [(2, 32, 6, 5), (1, 32, 1, 1)]:
        x = make_input(*shape)
        assert torch.equal(m(x), x)
    make = attnlab.create_attention("cca", 32)
    make.zero_init_last()
    assert torch.equal(make(x), x)


def dense_reference(m: CrissCrossAttention, x: torch.Tensor) -> torch.Tensor:
    """One pass as dense attention over all HW positions, masked to each position's row and column."""
    n, c, h, w = x.shape
    q = m.query_conv(x).flatten(2)  # (N, C', HW)
    k = m.key_conv(x).flatten(2)
    v = m.value_conv(x).flatten(2)  # (N, C, HW)
    rows = torch.arange(h).repeat_interleave(w)
    cols = torch.arange(w).repeat(h)
    cross = (rows[:, None] == rows[None, :]) | (cols[:, None] == cols[None, :])  # (HW, HW): the centre once
    e = torch.bmm(q.transpose(1, 2), k).masked_fill(~cross, float("-inf"))
    att = e.softmax(-1)  # each query over its H + W - 1 positions
    return x + m.gamma * torch.bmm(v, att.transpose(1, 2)).view(n, c, h, w)


@pytest.mark.parametrize("shape", [(2, 32, 8, 8), (3, 32, 7, 5), (2, 32, 1, 4), (2, 32, 1, 1)],
                         ids=["8x8", "7x5", "1x4", "1x1"])
def test_matches_dense_masked_attention(make_attention, make_input, shape):
    x = make_input(*shape, dtype=torch.float64)
    one = make_attention("cca", 32, dtype=torch.float64, recurrence=1)
    two = make_attention("cca", 32, dtype=torch.float64, recurrence=2)
    for xx in (x, x.contiguous(memory_format=torch.channels_last)):
        torch.testing.assert_close(one(xx), dense_reference(one, x), rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(two(xx), dense_reference(two, dense_reference(two, x)), rtol=1e-10, atol=1e-12)


def test_softmax_runs_over_h_plus_w_minus_1_positions(make_attention, make_input):
    m = make_attention("cca", 32, dtype=torch.float64)
    h, w = 6, 5
    a_col, a_row, _ = m.attention(make_input(2, 32, h, w, dtype=torch.float64))
    assert a_col.shape == (2, h, w, h) and a_row.shape == (2, h, w, w)
    total = a_col.sum(3) + a_row.sum(3)
    torch.testing.assert_close(total, torch.ones_like(total))  # one softmax over the cross
    diag = a_col.diagonal(dim1=1, dim2=3)  # (N, W, H): the column's entry of the position itself
    assert torch.equal(diag, torch.zeros_like(diag))  # ... counted once, in the row
    assert ((a_col > 0).sum(3) + (a_row > 0).sum(3) == h + w - 1).all()


@pytest.mark.parametrize("recurrence", [1, 2])
def test_two_passes_connect_every_pixel_pair(make_attention, make_input, recurrence):
    """The paper's RCCA: after R = 2 criss-cross passes every output position depends on every input position;
    after one, only on the positions of its own row and column."""
    m = make_attention("cca", 16, dtype=torch.float64, recurrence=recurrence)
    h, w = 5, 6
    x = make_input(1, 16, h, w, dtype=torch.float64).requires_grad_()
    out = m(x)
    probe = make_input(16, seed=5, dtype=torch.float64)  # a random direction in the output channels
    reach = torch.zeros(h, w, h, w, dtype=torch.bool)  # [i, j, k, l]: output (i, j) depends on input (k, l)
    for i in range(h):
        for j in range(w):
            (g,) = torch.autograd.grad(out[0, :, i, j] @ probe, x, retain_graph=True)
            reach[i, j] = g[0].abs().sum(0) > 0
    if recurrence == 2:
        assert reach.all()
    else:
        rows = torch.arange(h)[:, None, None, None] == torch.arange(h)[None, None, :, None]
        cols = torch.arange(w)[None, :, None, None] == torch.arange(w)[None, None, None, :]
        assert torch.equal(reach, rows | cols)


def test_recorded_maps(make_attention, make_input):
    m = make_attention("cca", 32, dtype=torch.float64, recurrence=1)
    x = make_input(2, 32, 6, 5, dtype=torch.float64)
    got = []
    m.attention_sink = lambda mod, maps: got.append(maps)
    m(x)
    a_col, a_row, _ = m.attention(x)
    torch.testing.assert_close(got[0].extra["column_attention"], a_col)
    torch.testing.assert_close(got[0].extra["row_attention"], a_row)
    dense = torch.zeros(2, 30, 30, dtype=torch.float64)  # the attention as a dense (query, key) matrix
    for i in range(6):
        for j in range(5):
            dense[:, i * 5 + j].view(2, 6, 5)[:, :, j] += a_col[:, i, j]
            dense[:, i * 5 + j].view(2, 6, 5)[:, i, :] += a_row[:, i, j]
    torch.testing.assert_close(got[0].spatial, dense.mean(1).view(2, 1, 6, 5))
    torch.testing.assert_close(got[0].spatial.sum((2, 3)), torch.ones(2, 1, dtype=torch.float64))


def test_placed_after_blocks_like_non_local():
    assert CrissCrossAttention.placement == "after_blocks"
    net = attnlab.create_model("resnet20", attention="cca")
    assert [n for n, mod in net.named_modules() if isinstance(mod, CrissCrossAttention)] == ["layer3.1.post_attn"]


@pytest.mark.parametrize("kwargs, match", [(dict(recurrence=0), "recurrence"), (dict(recurrence=1.5), "recurrence"),
                                           (dict(reduction=-2), "reduction")])
def test_invalid_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CrissCrossAttention(32, **kwargs)
