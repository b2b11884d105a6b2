"""DANet: parameter counts, the identity at init (gamma = 0), the official PAM and CAM as references, options."""

from __future__ import annotations

import pytest
import torch

import attnlab
from attnlab.attention import DualAttention


def pam_params(c: int, r: int = 8) -> int:
    ci = max(1, c // r)
    return 2 * (c * ci + ci) + (c * c + c) + 1  # query, key (C -> C'), value (C -> C), gamma


@pytest.mark.parametrize("c", [32, 512, 2048])
def test_parameter_count(c):
    count = {b: sum(p.numel() for p in DualAttention(c, branches=b).parameters()) for b in ("both", "position",
                                                                                           "channel")}
    assert count == {"both": pam_params(c) + 1, "position": pam_params(c), "channel": 1}
    assert count["both"] == 5 * c * c // 4 + 5 * c // 4 + 2  # C' = C/8


@pytest.mark.parametrize("branches", ["both", "position", "channel"])
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_new_module_is_the_identity(make_input, branches, train):
    """The paper's init: alpha = beta = 0, so E = x exactly (and gradients still reach the scales)."""
    m = DualAttention(32, branches=branches).train(train)
    x = make_input(2, 32, 6, 5).requires_grad_()
    out = m(x)
    assert torch.equal(out, x)
    out.pow(2).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    assert any(p.grad.abs().sum() > 0 for n, p in m.named_parameters() if n.endswith("gamma"))


def test_zero_init_last_restores_the_identity(make_attention, make_input):
    m = make_attention("danet", 32)
    x = make_input(2, 32, 4, 4)
    assert not torch.equal(m(x), x)
    m.zero_init_last()
    assert torch.equal(m(x), x)


def official_pam(m: DualAttention, x: torch.Tensor) -> torch.Tensor:
    """The official PAM_Module forward (junfu1115/DANet), with the module's layers."""
    b, c, h, w = x.shape
    pam = m.pam
    q = pam.query_conv(x).view(b, -1, w * h).permute(0, 2, 1)
    k = pam.key_conv(x).view(b, -1, w * h)
    attention = torch.bmm(q, k).softmax(-1)
    v = pam.value_conv(x).view(b, -1, w * h)
    out = torch.bmm(v, attention.permute(0, 2, 1)).view(b, c, h, w)
    return pam.gamma * out + x


def official_cam(m: DualAttention, x: torch.Tensor) -> torch.Tensor:
    """The official CAM_Module forward: softmax of max(energy) - energy."""
    b, c, h, w = x.shape
    q = x.view(b, c, -1)
    energy = torch.bmm(q, x.view(b, c, -1).permute(0, 2, 1))
    energy_new = torch.max(energy, -1, keepdim=True)[0].expand_as(energy) - energy
    out = torch.bmm(energy_new.softmax(-1), x.view(b, c, -1)).view(b, c, h, w)
    return m.cam.gamma * out + x


@pytest.mark.parametrize("shape", [(2, 32, 8, 8), (3, 32, 7, 5), (2, 32, 1, 1)], ids=["8x8", "7x5", "1x1"])
def test_matches_official_modules(make_attention, make_input, shape):
    x = make_input(*shape, dtype=torch.float64)
    xcl = x.contiguous(memory_format=torch.channels_last)
    pam = make_attention("danet", 32, dtype=torch.float64, branches="position")
    cam = make_attention("danet", 32, dtype=torch.float64, branches="channel")
    both = make_attention("danet", 32, dtype=torch.float64)
    for xx in (x, xcl):
        torch.testing.assert_close(pam(xx), official_pam(pam, x), rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(cam(xx), official_cam(cam, x), rtol=1e-10, atol=1e-12)
        # the DA module: the two branches in parallel, fused by a sum (each added to x once)
        torch.testing.assert_close(both(xx), official_pam(both, x) + official_cam(both, x) - x, rtol=1e-10,
                                   atol=1e-12)


def test_cam_softmax_paper_is_eq3(make_attention, make_input):
    """``cam_softmax="paper"``: x_ji = exp(A_i . A_j) / sum_i exp(A_i . A_j), E = beta X A + A (the paper's Eq. 3-4)."""
    m = make_attention("danet", 16, dtype=torch.float64, branches="channel", cam_softmax="paper")
    x = make_input(2, 16, 5, 4, dtype=torch.float64) * 0.3
    a = x.flatten(2)
    att = torch.bmm(a, a.transpose(1, 2)).softmax(-1)
    torch.testing.assert_close(m(x), x + m.cam.gamma * torch.bmm(att, a).view_as(x))
    official = make_attention("danet", 16, dtype=torch.float64, branches="channel")
    assert not torch.allclose(m(x), official(x))  # the authors' code attends to the least similar channels


def test_recorded_maps(make_attention, make_input):
    m = make_attention("danet", 32, dtype=torch.float64)
    x = make_input(2, 32, 6, 5, dtype=torch.float64)
    got = []
    m.attention_sink = lambda mod, maps: got.append(maps)
    m(x)
    s, att = got[0].extra["position_attention"], got[0].extra["channel_attention"]
    assert s.shape == (2, 30, 30) and att.shape == (2, 32, 32)
    torch.testing.assert_close(s, m.position_attention(x))
    torch.testing.assert_close(s.sum(-1), torch.ones(2, 30, dtype=torch.float64))
    torch.testing.assert_close(got[0].spatial, s.mean(1).view(2, 1, 6, 5))
    torch.testing.assert_close(got[0].channel, att.mean(1))
    torch.testing.assert_close(att, m.channel_attention(x))


def test_placed_after_blocks_like_non_local():
    assert DualAttention.placement == "after_blocks"
    net = attnlab.create_model("resnet20", attention="danet")
    assert [n for n, mod in net.named_modules() if isinstance(mod, DualAttention)] == ["layer3.1.post_attn"]
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("kwargs, match", [
    (dict(branches="spatial"), "unknown DANet branches"), (dict(cam_softmax="max"), "unknown DANet cam_softmax"),
    (dict(reduction=0), "reduction"),
])
def test_invalid_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DualAttention(32, **kwargs)
