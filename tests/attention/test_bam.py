"""BAM: parameter count, the official-structure reference, batch size one in training, options."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.attention import BAM


def bam_params(c: int, r: int = 16, n: int = 2) -> int:
    """The paper's layers, counted by hand: channel MLP (Linear, BN1d, Linear) and spatial branch."""
    h = c // r
    channel = (c * h + h) + 2 * h + (h * c + c)
    spatial = (c * h + h) + 2 * h + n * (9 * h * h + h + 2 * h) + (h + 1)
    return channel + spatial


@pytest.mark.parametrize("c, r, n, expected",
                         [(64, 16, 2, 1173), (256, 16, 2, 17361), (256, 8, 1, bam_params(256, 8, 1))])
def test_parameter_count(c, r, n, expected):
    m = BAM(c, reduction=r, num_dilated_convs=n)
    assert sum(p.numel() for p in m.parameters()) == expected == bam_params(c, r, n)


def test_state_dict_keys_follow_official_code():
    keys = set(BAM(32).state_dict())
    for k in ("channel_att.gate_c.gate_c_fc_0.weight", "channel_att.gate_c.gate_c_bn_1.running_var",
              "channel_att.gate_c.gate_c_fc_final.bias", "spatial_att.gate_s.gate_s_conv_reduce0.weight",
              "spatial_att.gate_s.gate_s_bn_di_1.weight", "spatial_att.gate_s.gate_s_conv_final.weight"):
        assert k in keys, k


def reference(m: BAM, x: torch.Tensor) -> torch.Tensor:
    """Official-style forward through the Sequential containers: x * (1 + sigmoid(Mc + Ms)), expanded."""
    mc = m.channel_att["gate_c"](F.avg_pool2d(x, x.shape[2:]).flatten(1))  # (N, C)
    ms = m.spatial_att["gate_s"](x)  # (N, 1, H, W)
    att = 1 + torch.sigmoid(mc[:, :, None, None].expand_as(x) + ms.expand_as(x))
    return att * x


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("shape", [(3, 32, 8, 8), (2, 32, 7, 5)], ids=["8x8", "7x5"])
def test_matches_reference(make_attention, make_input, train, shape):
    m = make_attention("bam", 32, dtype=torch.float64).train(train)
    ref_m = copy.deepcopy(m)
    x = make_input(*shape, dtype=torch.float64)
    out = m(x)
    torch.testing.assert_close(out, reference(ref_m, x), rtol=1e-10, atol=1e-12)
    # the running statistics moved the same way
    for (k, a), b in zip(m.state_dict().items(), ref_m.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=0, msg=k)


def test_batch_size_one_training(make_attention, make_input):
    m = make_attention("bam", 32).train()
    bn1d = m.channel_att["gate_c"].gate_c_bn_1
    before = {k: v.clone() for k, v in bn1d.state_dict().items()}
    spatial_mean = m.spatial_att["gate_s"].gate_s_bn_reduce0.running_mean.clone()
    x = make_input(1, 32, 8, 8).requires_grad_()
    with pytest.raises(ValueError, match="more than 1 value"):  # what plain torch does
        copy.deepcopy(bn1d)(torch.randn(1, bn1d.num_features))
    y = m(x)
    y.square().sum().backward()
    assert torch.isfinite(y).all() and x.grad is not None and torch.isfinite(x.grad).all()
    # the channel BN used (and kept) its running statistics; the spatial BNs trained as usual
    for k, v in bn1d.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not torch.equal(m.spatial_att["gate_s"].gate_s_bn_reduce0.running_mean, spatial_mean)
    # so the channel branch equals eval mode's
    with torch.no_grad():
        mc_train = m.channel_logits(x)
        mc_eval = copy.deepcopy(m).eval().channel_logits(x)
    torch.testing.assert_close(mc_train, mc_eval, rtol=0, atol=0)
    # a 1x1 map with batch size one: every BN sees one value per channel
    y1 = m(make_input(1, 32, 1, 1))
    assert torch.isfinite(y1).all()


def test_recorded_maps(make_attention, make_input):
    m = make_attention("bam", 32).eval()
    x = make_input(2, 32, 6, 5)
    got = []
    m.attention_sink = lambda mod, maps: got.append(maps)
    with torch.no_grad():
        m(x)
        mc, ms = m.channel_logits(x), m.spatial_logits(x)
    torch.testing.assert_close(got[0].channel, torch.sigmoid(mc))
    torch.testing.assert_close(got[0].spatial, torch.sigmoid(ms))


@pytest.mark.parametrize("kwargs", [dict(reduction=8), dict(dilation=2), dict(num_dilated_convs=1),
                                    dict(num_dilated_convs=0), dict(min_channels=4), dict(act="gelu"),
                                    dict(act=nn.SiLU), dict(gate="hard_sigmoid")],
                         ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_every_option_changes_the_output(make_attention, make_input, kwargs):
    x = make_input(2, 32, 9, 9)
    with torch.no_grad():
        ref = make_attention("bam", 32).eval()(x)
        out = make_attention("bam", 32, **kwargs).eval()(x)
    assert not torch.allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(reduction=0), "reduction"), (dict(dilation=0), "dilation"), (dict(dilation=2.5), "dilation"),
    (dict(num_dilated_convs=-1), "num_dilated_convs"), (dict(min_channels=0), "min_channels"),
    (dict(act="nope"), "unknown activation"), (dict(gate="nope"), "unknown activation"),
])
def test_invalid_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BAM(32, **kwargs)
