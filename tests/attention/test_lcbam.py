"""Light CBAM: parameter count, timm's light forward written out, one descriptor per step, options."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from attnlab.attention import LightCBAM


def lcbam_params(c: int, r: int = 16, k: int = 7, bias: bool = False) -> int:
    h = c // r
    return 2 * c * h + (h + c if bias else 0) + k * k + 2  # MLP, the 1 -> 1 spatial conv, its BN


@pytest.mark.parametrize("c, r, k", [(64, 16, 7), (256, 16, 7), (256, 8, 3)])
def test_parameter_count(c, r, k):
    assert sum(p.numel() for p in LightCBAM(c, reduction=r, kernel_size=k).parameters()) == lcbam_params(c, r, k)
    m = LightCBAM(c, reduction=r, kernel_size=k, mlp_bias=True)
    assert sum(p.numel() for p in m.parameters()) == lcbam_params(c, r, k, bias=True)


def test_state_dict_keys_are_timms():
    keys = set(LightCBAM(32).state_dict())
    assert keys == {"channel.fc1.weight", "channel.fc2.weight", "spatial.conv.conv.weight", "spatial.conv.bn.weight",
                    "spatial.conv.bn.bias", "spatial.conv.bn.running_mean", "spatial.conv.bn.running_var",
                    "spatial.conv.bn.num_batches_tracked"}


def reference(m: LightCBAM, x: torch.Tensor) -> torch.Tensor:
    """timm's LightCbamModule forward, with the module's layers."""
    ch, sp = m.channel, m.spatial
    pooled = 0.5 * x.mean((2, 3), keepdim=True) + 0.5 * x.amax((2, 3), keepdim=True)
    x = x * torch.sigmoid(ch.fc2(F.relu(ch.fc1(pooled))))
    s = 0.5 * x.mean(1, keepdim=True) + 0.5 * x.amax(1, keepdim=True)
    return x * torch.sigmoid(sp.conv.bn(sp.conv.conv(s)))


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("shape", [(2, 32, 8, 8), (3, 32, 7, 5)], ids=["8x8", "7x5"])
def test_matches_timms_forward(make_attention, make_input, train, shape):
    m = make_attention("lcbam", 32, dtype=torch.float64).train(train)
    ref_m = copy.deepcopy(m)
    x = make_input(*shape, dtype=torch.float64)
    torch.testing.assert_close(m(x), reference(ref_m, x), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(m.spatial.conv.bn.running_var, ref_m.spatial.conv.bn.running_var)
    xcl = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(m.eval()(xcl), reference(ref_m.eval(), x), rtol=1e-10, atol=1e-12)


def test_one_descriptor_per_step(make_attention, make_input):
    """The channel MLP runs once, on the mean of the two pooled descriptors: for a map constant over space
    (average = max) its gate is SE's without biases, where CBAM's would be sigmoid(2 MLP(avg))."""
    m = make_attention("lcbam", 32, dtype=torch.float64).eval()
    v = make_input(2, 32, 1, 1, dtype=torch.float64)
    x = v.expand(2, 32, 5, 4).contiguous()
    got = []
    m.attention_sink = lambda mod, maps: got.append(maps)
    with torch.no_grad():
        m(x)
    fc1, fc2 = m.channel.fc1.weight.flatten(1), m.channel.fc2.weight.flatten(1)
    se_gate = torch.sigmoid(F.relu(v.flatten(1) @ fc1.T) @ fc2.T)
    torch.testing.assert_close(got[0].channel, se_gate, rtol=1e-12, atol=1e-14)


def test_gate_sets_both_steps(make_attention, make_input):
    """timm's light channel step ignores ``gate_layer`` (always a sigmoid); here the gate sets both."""
    m = make_attention("lcbam", 32, dtype=torch.float64, gate="hard_sigmoid").eval()
    x = make_input(2, 32, 6, 6, dtype=torch.float64)
    got = []
    m.attention_sink = lambda mod, maps: got.append(maps)
    with torch.no_grad():
        out = m(x)
    ch, sp = m.channel, m.spatial
    pooled = 0.5 * (x.mean((2, 3)) + x.amax((2, 3)))
    mc = F.hardsigmoid(F.relu(pooled @ ch.fc1.weight.flatten(1).T) @ ch.fc2.weight.flatten(1).T)
    torch.testing.assert_close(got[0].channel, mc)
    x1 = x * mc[:, :, None, None]
    ms = F.hardsigmoid(sp.conv.bn(sp.conv.conv(0.5 * (x1.mean(1, keepdim=True) + x1.amax(1, keepdim=True)))))
    torch.testing.assert_close(got[0].spatial, ms)
    torch.testing.assert_close(out, x1 * ms)


@pytest.mark.parametrize("kwargs", [dict(reduction=4), dict(kernel_size=3), dict(min_channels=4), dict(act="gelu"),
                                    dict(gate="hard_sigmoid"), dict(mlp_bias=True)],
                         ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_every_option_changes_the_output(make_attention, make_input, kwargs):
    x = make_input(2, 32, 6, 6)
    with torch.no_grad():
        ref = make_attention("lcbam", 32).eval()(x)
        out = make_attention("lcbam", 32, **kwargs).eval()(x)
    assert not torch.allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(kernel_size=4), "kernel_size"), (dict(kernel_size=0), "kernel_size"), (dict(reduction=0), "reduction"),
    (dict(min_channels=0), "min_channels"), (dict(act="nope"), "unknown activation"),
])
def test_invalid_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LightCBAM(32, **kwargs)
