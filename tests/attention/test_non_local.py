"""Non-local block: parameter counts, identity at init, each pairwise mode against a naive reference."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.attention import NON_LOCAL_MODES, NonLocal


def nl_params(c: int, ci: int, mode: str) -> int:
    conv = c * ci + ci  # a 1x1 conv C -> C' with bias
    n = conv + (ci * c + c) + 2 * c  # g, W, output BN
    if mode != "gaussian":
        n += 2 * conv  # theta, phi
    if mode == "concatenation":
        n += 2 * ci  # w in ReLU(w . [theta; phi]), no bias
    return n


@pytest.mark.parametrize("mode", NON_LOCAL_MODES)
@pytest.mark.parametrize("c, ci", [(64, None), (48, 8), (3, None)])
def test_parameter_count(c, ci, mode):
    m = NonLocal(c, inter_channels=ci, mode=mode)
    expected_ci = max(1, c // 2) if ci is None else ci
    assert m.inter_channels == expected_ci
    assert sum(p.numel() for p in m.parameters()) == nl_params(c, expected_ci, mode)
    if (c, ci, mode) == (64, None, "embedded_gaussian"):
        assert nl_params(c, expected_ci, mode) == 8480  # 4*64*32 + 3*32 + 3*64


@pytest.mark.parametrize("mode", NON_LOCAL_MODES)
@pytest.mark.parametrize("sub_sample", [False, True])
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_new_block_is_the_identity(make_input, mode, sub_sample, train):
    m = NonLocal(16, mode=mode, sub_sample=sub_sample).train(train)
    for shape in [(2, 16, 6, 5), (1, 16, 1, 1)]:
        x = make_input(*shape)
        assert torch.equal(m(x), x)
        with torch.no_grad():
            assert torch.equal(m(x), x)
    assert torch.equal(m.W[1].weight, torch.zeros(16)) and torch.equal(m.W[1].bias, torch.zeros(16))


def _pool_ref(t: torch.Tensor) -> torch.Tensor:
    """The documented sub-sampling: 2x2 max-pool, ceil mode, a side < 2 unpooled."""
    kh, kw = (2 if t.shape[2] >= 2 else 1), (2 if t.shape[3] >= 2 else 1)
    return F.max_pool2d(t, (kh, kw), (kh, kw), ceil_mode=True)


def reference(m: NonLocal, x: torch.Tensor) -> torch.Tensor:
    """Naive non-local forward: explicit (HW, HW') matrices, the concatenation built, NCHW convs."""
    n, c, h, w = x.shape
    pool = _pool_ref if m.sub_sample else (lambda t: t)
    g_x = pool(m.g(x)).flatten(2).transpose(1, 2)  # (N, HW', C')
    if m.mode == "gaussian":
        theta_x = x.flatten(2).transpose(1, 2)  # (N, HW, C)
        phi_x = pool(x).flatten(2)  # (N, C, HW')
    else:
        theta_x = m.theta(x).flatten(2).transpose(1, 2)  # (N, HW, C')
        phi_x = pool(m.phi(x)).flatten(2)  # (N, C', HW')
    hw, hwp = theta_x.shape[1], phi_x.shape[2]
    if m.mode == "concatenation":
        t = theta_x.transpose(1, 2)[:, :, :, None].expand(-1, -1, hw, hwp)  # (N, C', HW, HW')
        p = phi_x[:, :, None, :].expand(-1, -1, hw, hwp)  # (N, C', HW, HW')
        f = m.concat_project(torch.cat([t, p], 1))[:, 0] / hwp  # conv 2C' -> 1, ReLU
    else:
        f = theta_x @ phi_x  # (N, HW, HW')
        f = f.softmax(-1) if m.mode in ("embedded_gaussian", "gaussian") else f / hwp
    y = (f @ g_x).transpose(1, 2).reshape(n, -1, h, w)  # (N, C', H, W)
    return m.W(y) + x


@pytest.mark.parametrize("mode", NON_LOCAL_MODES)
@pytest.mark.parametrize("sub_sample", [False, True], ids=["full", "sub"])
@pytest.mark.parametrize("shape", [(2, 12, 6, 4), (2, 12, 7, 5), (1, 12, 1, 3)], ids=["6x4", "7x5", "1x3"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_matches_naive_reference(make_attention, make_input, mode, sub_sample, shape, channels_last):
    m = make_attention("non_local", 12, dtype=torch.float64, mode=mode, sub_sample=sub_sample).train()
    ref_m = copy.deepcopy(m)
    x = make_input(*shape, dtype=torch.float64)
    xin = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    out = m(xin)
    torch.testing.assert_close(out, reference(ref_m, x), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(m.W[1].running_mean, ref_m.W[1].running_mean, rtol=1e-10, atol=1e-12)
    if channels_last and shape[2] * shape[3] > 1:
        assert out.is_contiguous(memory_format=torch.channels_last)
    m.eval()
    ref_m.eval()
    with torch.no_grad():
        torch.testing.assert_close(m(xin), reference(ref_m, x), rtol=1e-10, atol=1e-10)


def test_standard_maxpool_on_even_sizes(make_attention, make_input):
    """On even sides the pooling is exactly the usual nn.MaxPool2d(2) of the common port."""
    m = make_attention("non_local", 8, dtype=torch.float64, sub_sample=True).eval()
    x = make_input(2, 8, 6, 4, dtype=torch.float64)
    q, k, v, kernel = m._embed(x)
    assert kernel == (2, 2)
    torch.testing.assert_close(v, nn.MaxPool2d(2)(m.g(x)).flatten(2).transpose(1, 2))
    torch.testing.assert_close(k, nn.MaxPool2d(2)(m.phi(x)).flatten(2).transpose(1, 2))


@pytest.mark.parametrize("mode", NON_LOCAL_MODES)
@pytest.mark.parametrize("sub_sample", [False, True], ids=["full", "sub"])
def test_recorded_maps(make_attention, make_input, mode, sub_sample):
    m = make_attention("non_local", 8, dtype=torch.float64, mode=mode, sub_sample=sub_sample).eval()
    x = make_input(2, 8, 7, 5, dtype=torch.float64)
    got = []
    m.attention_sink = lambda mod, maps: got.append(maps)
    with torch.no_grad():
        out = m(x)
        m.attention_sink = None
        torch.testing.assert_close(out, m(x))  # recording (explicit matrix) = fast path
    maps = got[0]
    f = maps.extra["affinity"]
    hwp = 4 * 3 if sub_sample else 35
    assert f.shape == (2, 35, hwp)
    if mode in ("embedded_gaussian", "gaussian"):
        torch.testing.assert_close(f.sum(-1), torch.ones(2, 35, dtype=torch.float64))
    assert maps.spatial.shape == (2, 1, 7, 5)
    received = f.mean(1)  # (N, HW')
    if sub_sample:
        # position (i, j) lies in pooled cell (i // 2, j // 2)
        cells = received.view(2, 4, 3)
        expect = cells[:, torch.arange(7) // 2][:, :, torch.arange(5) // 2]
    else:
        expect = received.view(2, 7, 5)
    torch.testing.assert_close(maps.spatial[:, 0], expect)


def test_zero_init_last_restores_identity(make_attention, make_input):
    m = make_attention("non_local", 8)
    x = make_input(2, 8, 4, 4)
    assert not torch.equal(m(x), x)
    m.zero_init_last()
    assert torch.equal(m(x), x)


@pytest.mark.parametrize("kwargs", [dict(inter_channels=4), dict(mode="dot_product"), dict(mode="concatenation"),
                                    dict(mode="gaussian"), dict(sub_sample=True)],
                         ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_every_option_changes_the_output(make_attention, make_input, kwargs):
    x = make_input(2, 16, 6, 6)
    with torch.no_grad():
        ref = make_attention("non_local", 16).eval()(x)
        out = make_attention("non_local", 16, **kwargs).eval()(x)
    assert not torch.allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(mode="softmax"), "unknown non-local mode"), (dict(inter_channels=0), "inter_channels"),
    (dict(inter_channels=2.0), "inter_channels"), (dict(sub_sample="yes"), "sub_sample"),
])
def test_invalid_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NonLocal(16, **kwargs)
