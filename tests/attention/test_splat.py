"""Split attention (ResNeSt): parameter count, the authors' SplAtConv2d forward, radix 1 as a sigmoid gate, options."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from attnlab.attention import SplitAttention


def splat_params(c: int, radix: int = 2, groups: int = 1, k: int = 3, reduction: int = 4, min_d: int = 32) -> int:
    d = max(radix * c // reduction, min_d)
    conv = c * c * k * k // groups  # (R*C, C/(K*R), k, k), no bias
    return conv + 2 * radix * c + (c * d // groups + d) + 2 * d + (d * radix * c // groups + radix * c)


@pytest.mark.parametrize("c, radix, groups", [(64, 2, 1), (128, 2, 1), (256, 4, 2), (64, 1, 1)])
def test_parameter_count(c, radix, groups):
    m = SplitAttention(c, radix=radix, groups=groups)
    assert sum(p.numel() for p in m.parameters()) == splat_params(c, radix, groups)
    assert m.conv.weight.shape == (c * radix, c // (groups * radix), 3, 3) and m.conv.groups == groups * radix
    assert m.hidden == max(radix * c // 4, 32)  # the authors' inter_channels = max(in * radix // 4, 32)


def splat_conv2d(m: SplitAttention, x: torch.Tensor) -> torch.Tensor:
    """The authors' SplAtConv2d forward (zhanghang1989/ResNeSt), with the module's layers."""
    x = F.relu(m.bn0(m.conv(x)))
    batch, rchannel = x.shape[:2]
    r, k = m.radix, m.cardinality
    if r > 1:
        splited = torch.split(x, rchannel // r, dim=1)
        gap = sum(splited)
    else:
        gap = x
    gap = F.relu(m.bn1(m.fc1(F.adaptive_avg_pool2d(gap, 1))))
    atten = m.fc2(gap)
    if r > 1:  # rSoftMax
        atten = F.softmax(atten.view(batch, k, r, -1).transpose(1, 2), dim=1).reshape(batch, -1)
    else:
        atten = torch.sigmoid(atten).reshape(batch, -1)
    atten = atten.view(batch, -1, 1, 1)
    if r > 1:
        attens = torch.split(atten, rchannel // r, dim=1)
        return sum(att * split for (att, split) in zip(attens, splited, strict=True))
    return atten * x


@pytest.mark.parametrize("kwargs", [{}, dict(radix=4, groups=2), dict(radix=1), dict(radix=2, groups=4)],
                         ids=["r2", "r4-k2", "r1", "r2-k4"])
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_matches_the_authors_forward(make_attention, make_input, kwargs, train):
    m = make_attention("splat", 32, dtype=torch.float64, **kwargs).train(train)
    x = make_input(3, 32, 7, 5, dtype=torch.float64)
    torch.testing.assert_close(m(x), splat_conv2d(copy.deepcopy(m), x), rtol=1e-10, atol=1e-12)


def test_radix_one_is_a_sigmoid_channel_gate_on_the_conv_output(make_attention, make_input):
    """R = 1: the r-softmax is a sigmoid and the block is conv-BN-ReLU followed by an SE gate with BN."""
    m = make_attention("splat", 32, dtype=torch.float64, radix=1).eval()
    x = make_input(2, 32, 6, 5, dtype=torch.float64)
    u = F.relu(m.bn0(m.conv(x)))
    gate = torch.sigmoid(m.fc2(F.relu(m.bn1(m.fc1(u.mean((2, 3), keepdim=True))))))  # (N, C, 1, 1)
    got = []
    m.attention_sink = lambda mod, maps: got.append(maps)
    with torch.no_grad():
        torch.testing.assert_close(m(x), u * gate, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(got[0].channel, gate.flatten(1))


def test_split_weights_sum_to_one_over_the_radix(make_attention, make_input):
    m = make_attention("splat", 32, dtype=torch.float64, radix=4, groups=2).eval()
    got = []
    m.attention_sink = lambda mod, maps: got.append(maps)
    with torch.no_grad():
        m(make_input(2, 32, 6, 5, dtype=torch.float64))
    weights = got[0].extra["radix"]  # (N, R, C)
    assert weights.shape == (2, 4, 32)
    torch.testing.assert_close(weights.sum(1), torch.ones(2, 32, dtype=torch.float64))
    torch.testing.assert_close(got[0].channel, weights[:, 0])


@pytest.mark.parametrize("kwargs", [dict(radix=1), dict(radix=4), dict(groups=2), dict(kernel_size=5),
                                    dict(reduction=1), dict(min_channels=8), dict(act="gelu"), dict(bias=True)],
                         ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_every_option_changes_the_output(make_attention, make_input, kwargs):
    x = make_input(2, 32, 6, 6)
    with torch.no_grad():
        ref = make_attention("splat", 32).eval()(x)
        out = make_attention("splat", 32, **kwargs).eval()(x)
    assert not torch.allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(radix=0), "radix"), (dict(radix=2.0), "radix"), (dict(kernel_size=2), "kernel_size"),
    (dict(groups=3), "groups must"), (dict(radix=3, groups=4), r"groups \* radix"),
    (dict(groups=16, min_channels=40), "fuse width 40"),
    (dict(act="nope"), "unknown activation"),
])
def test_invalid_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SplitAttention(32, **kwargs)
