"""SRM: 4C parameters (the paper's count for ResNet-50), style pooling by mean and std, the official forward."""

from __future__ import annotations

import copy

import pytest
import torch

import attnlab
from attnlab.attention import StyleRecalibration, style_pool


@pytest.mark.parametrize("c", [16, 256, 2048])
def test_parameter_count_is_4c(c):
    m = StyleRecalibration(c)
    assert sum(p.numel() for p in m.parameters()) == 4 * c
    assert m.cfc.shape == (c, 2) and set(m.state_dict()) >= {"bn.running_mean", "bn.running_var"}


def test_srm_resnet50_has_25_62m_parameters():
    """The paper's ImageNet results: SRM-ResNet-50 has 25.62M parameters against ResNet-50's 25.56M."""
    base = sum(p.numel() for p in attnlab.create_model("resnet50").parameters())
    srm = sum(p.numel() for p in attnlab.create_model("resnet50", attention="srm").parameters())
    assert srm - base == 4 * (3 * 256 + 4 * 512 + 6 * 1024 + 3 * 2048)
    assert (round(base / 1e6, 2), round(srm / 1e6, 2)) == (25.56, 25.62)


def test_style_pooling_is_mean_and_std(make_input):
    """The paper's style pooling: each channel's mean and standard deviation over H x W."""
    x = make_input(3, 8, 5, 4, dtype=torch.float64)
    t = style_pool(x)
    assert t.shape == (3, 8, 2)
    torch.testing.assert_close(t[..., 0], x.mean((2, 3)))
    torch.testing.assert_close(t[..., 1], x.std((2, 3)))  # unbiased, as torch.std in the official code


@pytest.mark.parametrize("which", [0, 1], ids=["mean", "std"])
def test_style_integration_weighs_mean_and_std(make_input, which):
    """With w_c = e_which and an identity BN, the gate is sigmoid of that style statistic."""
    m = StyleRecalibration(8).double().eval()
    with torch.no_grad():
        m.cfc.zero_()
        m.cfc[:, which] = 1
    m.bn.eps = 0.0
    x = make_input(2, 8, 6, 6, dtype=torch.float64)
    stat = x.mean((2, 3)) if which == 0 else x.std((2, 3))
    with torch.no_grad():
        torch.testing.assert_close(m(x), x * torch.sigmoid(stat)[:, :, None, None])


def reference(m: StyleRecalibration, x: torch.Tensor) -> torch.Tensor:
    """The official SRMLayer forward (hyunjaelee410/style-based-recalibration-module), with the module's layers."""
    n, c, _, _ = x.shape
    mean = x.view(n, c, -1).mean(dim=2).view(n, c, -1)
    std = x.view(n, c, -1).std(dim=2).view(n, c, -1)
    t = torch.cat((mean, std), dim=2)
    z = (t * m.cfc[None, :, :]).sum(2)[:, :, None, None]
    return x * torch.sigmoid(m.bn(z))


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("shape", [(2, 32, 8, 8), (3, 32, 7, 5)], ids=["8x8", "7x5"])
def test_matches_official_forward(make_attention, make_input, train, shape):
    m = make_attention("srm", 32, dtype=torch.float64).train(train)
    ref_m = copy.deepcopy(m)
    x = make_input(*shape, dtype=torch.float64)
    torch.testing.assert_close(m(x), reference(ref_m, x), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(m.bn.running_var, ref_m.bn.running_var, rtol=1e-12, atol=0)
    xcl = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(m.eval()(xcl), reference(ref_m.eval(), x), rtol=1e-10, atol=1e-12)


def test_new_module_scales_every_channel_by_the_bn_bias_gate(make_input):
    """The official init: w = 0, so z = 0 and every channel gets sigmoid(BN(0)) = sigmoid(BN bias) = 1/2."""
    m = StyleRecalibration(16).eval()
    x = make_input(2, 16, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(m(x), x * 0.5)


@pytest.mark.filterwarnings("ignore:std:UserWarning")  # the official std of one value warns, then gives NaN
def test_constant_channel_and_1x1_map_stay_finite(make_attention, make_input):
    """A constant channel (std 0) has finite gradients, as with torch.std; a 1x1 map (official std: 0/0) has std 0."""
    m = make_attention("srm", 8, dtype=torch.float64).train()
    x = make_input(2, 8, 4, 4, dtype=torch.float64)
    x[:, 3] = 0.7  # a constant channel, e.g. a dead ReLU
    w = make_input(2, 8, 4, 4, seed=3, dtype=torch.float64)
    ref_m, xr = copy.deepcopy(m), x.clone().requires_grad_()
    (reference(ref_m, xr) * w).sum().backward()
    xg = x.clone().requires_grad_()
    out = m(xg)
    (out * w).sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(xg.grad).all() and torch.isfinite(m.cfc.grad).all()
    torch.testing.assert_close(xg.grad, xr.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(m.cfc.grad, ref_m.cfc.grad, rtol=1e-10, atol=1e-12)
    x11 = make_input(2, 8, 1, 1, dtype=torch.float64)
    assert torch.isnan(x11.std((2, 3))).all()  # the official style pooling
    assert (style_pool(x11)[..., 1] < 1e-150).all() and torch.isfinite(m(x11)).all()


def test_channel_scale_is_the_gate(make_attention, make_input):
    m = make_attention("srm", 32).eval()
    x = make_input(2, 32, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(m(x), x * m.channel_scale(x)[:, :, None, None])
