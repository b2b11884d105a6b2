"""Effective SE (CenterMask's eSE): parameter count, the paper's formula as reference, options."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab.attention import EffectiveSE


@pytest.mark.parametrize("c", [8, 64, 256])
def test_parameter_count_is_one_full_fc(c):
    """One C x C FC with bias and nothing else: C*C + C (C*C without the bias)."""
    assert sum(p.numel() for p in EffectiveSE(c).parameters()) == c * c + c
    assert sum(p.numel() for p in EffectiveSE(c, bias=False).parameters()) == c * c
    assert EffectiveSE(c).fc.weight.shape == (c, c, 1, 1)  # VoVNet's and timm's ``fc`` layout


@pytest.mark.parametrize("grad", [False, True], ids=["nograd", "grad"])
def test_equals_x_times_hardsigmoid_of_fc_of_avg(make_attention, make_input, grad):
    """The paper's eSE: out = x * hsigmoid(W_C avgpool(x) + b), hsigmoid(t) = relu6(t + 3) / 6.

    The gradient is compared with ``F.hardsigmoid``'s: torch's hard-sigmoid backward multiplies by a
    float32 1/6, a 3e-8 relative difference from the exact formula's even in float64.
    """
    m = make_attention("ese", 32, dtype=torch.float64)
    x = make_input(2, 32, 7, 5, dtype=torch.float64).requires_grad_(grad)
    with torch.set_grad_enabled(grad):
        pooled = F.conv2d(x.mean((2, 3), keepdim=True), m.fc.weight, m.fc.bias)  # (N, C, 1, 1)
        torch.testing.assert_close(F.hardsigmoid(pooled), F.relu6(pooled + 3) / 6, rtol=1e-15, atol=1e-15)
        ref = x * F.hardsigmoid(pooled)
        out = m(x)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-14)
    if grad:
        w = torch.randn_like(out)
        (ga,) = torch.autograd.grad((out * w).sum(), x)
        (gb,) = torch.autograd.grad((ref * w).sum(), x)
        torch.testing.assert_close(ga, gb, rtol=1e-10, atol=1e-12)


def test_no_reduction_every_weight_sees_every_channel(make_attention, make_input):
    """Without the bottleneck the Jacobian of the weights w.r.t. the descriptor is diag(h') W: dense."""
    m = make_attention("ese", 16, dtype=torch.float64)
    avg = make_input(1, 16, dtype=torch.float64)[0] * 0.1
    jac = torch.autograd.functional.jacobian(lambda a: m.weights(a[None])[0], avg)  # (C, C)
    assert (jac != 0).all()


def test_channel_scale_is_the_gate(make_attention, make_input):
    m = make_attention("ese", 32).eval()
    x = make_input(2, 32, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(m(x), x * m.channel_scale(x)[:, :, None, None])


@pytest.mark.parametrize("kwargs", [dict(gate="sigmoid"), dict(bias=False)], ids=["gate", "bias"])
def test_every_option_changes_the_output(make_attention, make_input, kwargs):
    x = make_input(2, 32, 6, 6)
    with torch.no_grad():
        ref = make_attention("ese", 32).eval()(x)
        out = make_attention("ese", 32, **kwargs).eval()(x)
    assert not torch.allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_unknown_gate_raises():
    with pytest.raises(ValueError, match="unknown activation"):
        EffectiveSE(32, gate="nope")
