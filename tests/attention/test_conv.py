"""same_conv2d: equal to F.conv2d (padding k // 2) on the native few-channel kernel and on the fallback."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab.attention import _conv
from attnlab.attention._conv import same_conv2d


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("i,o,k,bias", [(2, 1, 7, True), (2, 1, 7, False), (1, 2, 7, False), (2, 3, 5, True),
                                        (1, 1, 3, True), (3, 3, 3, False)])  # 3 x 3 pairs: the fallback
@pytest.mark.parametrize("h,w", [(7, 7), (5, 9), (2, 3), (1, 1), (32, 17)])
def test_forward_equals_conv2d(dtype, i, o, k, bias, h, w):
    g = torch.Generator().manual_seed(h * 100 + w)
    x = torch.randn(3, i, h, w, generator=g, dtype=dtype)
    wt = torch.randn(o, i, k, k, generator=g, dtype=dtype)
    b = torch.randn(o, generator=g, dtype=dtype) if bias else None
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(same_conv2d(x, wt, b), F.conv2d(x, wt, b, padding=k // 2), **tol)


def test_non_contiguous_and_channels_last_inputs():
    x = torch.randn(2, 2, 9, 6).contiguous(memory_format=torch.channels_last)
    wt = torch.randn(1, 2, 7, 7)
    torch.testing.assert_close(same_conv2d(x, wt), F.conv2d(x, wt, padding=3), rtol=1e-5, atol=1e-5)
    xt = torch.randn(2, 2, 6, 9).transpose(2, 3)
    torch.testing.assert_close(same_conv2d(xt, wt), F.conv2d(xt, wt, padding=3), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("native", [True, False])
def test_gradients(monkeypatch, native):
    if not native:
        monkeypatch.setattr(_conv, "NATIVE_MAX_CHANNEL_PAIRS", 0)
    x = torch.randn(2, 2, 6, 5, dtype=torch.float64, requires_grad=True)
    wt = torch.randn(1, 2, 7, 7, dtype=torch.float64, requires_grad=True)
    b = torch.randn(1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(same_conv2d, (x, wt, b))
    assert torch.autograd.gradgradcheck(same_conv2d, (x, wt, b))


def test_native_and_fallback_agree_in_float32(monkeypatch):
    x = torch.randn(4, 2, 20, 20, requires_grad=True)
    wt = torch.randn(1, 2, 7, 7, requires_grad=True)
    g = torch.randn(4, 1, 20, 20)
    a = same_conv2d(x, wt)
    ga = torch.autograd.grad(a, [x, wt], g)
    monkeypatch.setattr(_conv, "NATIVE_MAX_CHANNEL_PAIRS", 0)
    b = same_conv2d(x, wt)
    gb = torch.autograd.grad(b, [x, wt], g)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    for u, v in zip(ga, gb, strict=True):
        torch.testing.assert_close(u, v, rtol=1e-4, atol=1e-4)


def test_autocast_takes_the_stock_conv():
    x = torch.randn(2, 2, 8, 8)
    wt = torch.randn(1, 2, 7, 7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = same_conv2d(x, wt)
    assert y.dtype == torch.bfloat16
