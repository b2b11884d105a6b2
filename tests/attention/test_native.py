"""The native CBAM kernels (NCHW and channels_last) against the pure-PyTorch path and the seed's composition."""

import pytest
import torch

from attnlab.attention import CBAM, _kernels
from attnlab.attention._kernels import available, supports
from attnlab.attention.reference import SeedCBAM

pytestmark = pytest.mark.skipif(not available(), reason="no C compiler: native kernels not built")


def _pair(c, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    ref = SeedCBAM(c).to(dtype)
    ours = CBAM(c).to(dtype)
    ours.channel_attention.load_state_dict(ref.ca.state_dict(), strict=True)
    ours.spatial_attention.load_state_dict(ref.sa.state_dict(), strict=True)
    return ref, ours


LAYOUTS = [torch.contiguous_format, torch.channels_last]


@pytest.mark.parametrize("layout", LAYOUTS, ids=["nchw", "channels_last"])
@pytest.mark.parametrize("shape", [(2, 32, 7, 5), (1, 16, 1, 1), (2, 24, 33, 35), (3, 48, 4, 9), (2, 36, 6, 3),
                                   (1, 300, 2, 3)])
def test_native_forward_backward_match_seed(shape, layout):
    ref, ours = _pair(shape[1])
    x = torch.randn(*shape, dtype=torch.float64).contiguous(memory_format=layout).requires_grad_()
    g = torch.randn(*shape, dtype=torch.float64).contiguous(memory_format=layout)
    assert supports(x)
    a, b = ref(x), ours(x)
    if layout == torch.channels_last:
        assert b.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)
    ga = torch.autograd.grad(a, [x, *ref.parameters()], g)
    gb = torch.autograd.grad(b, [x, *ours.parameters()], g)
    for u, v in zip(ga, gb, strict=True):
        torch.testing.assert_close(v, u, rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), a, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layout", LAYOUTS, ids=["nchw", "channels_last"])
def test_native_and_pure_paths_agree_in_float32(monkeypatch, layout):
    _, ours = _pair(64, torch.float32)
    x = torch.randn(4, 64, 14, 14).contiguous(memory_format=layout).requires_grad_()
    g = torch.randn_like(x)
    out_n = ours(x)
    gx_n, = torch.autograd.grad(out_n, x, g)
    monkeypatch.setattr(_kernels, "supports", lambda t: False)
    out_p = ours(x)
    gx_p, = torch.autograd.grad(out_p, x, g)
    torch.testing.assert_close(out_n, out_p, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gx_n, gx_p, rtol=1e-4, atol=1e-6)


def test_which_inputs_take_the_native_path():
    assert supports(torch.randn(2, 8, 5, 5))
    assert supports(torch.randn(2, 8, 5, 5).contiguous(memory_format=torch.channels_last))
    assert not supports(torch.randn(2, 8, 5, 5, dtype=torch.bfloat16))
    assert not supports(torch.randn(2, 5, 5, 8).permute(0, 3, 2, 1))  # neither layout: pure path


@pytest.mark.parametrize("layout", LAYOUTS, ids=["nchw", "channels_last"])
def test_nan_input_propagates_like_torch(layout):
    _, ours = _pair(16, torch.float32)
    x = torch.randn(1, 16, 4, 4)
    x[0, 3, 1, 2] = float("nan")
    x = x.contiguous(memory_format=layout)
    with torch.no_grad():
        y = ours(x)
    assert torch.isnan(y).any()


@pytest.mark.parametrize("layout", LAYOUTS, ids=["nchw", "channels_last"])
def test_ties_send_the_max_gradient_to_one_element_like_the_seed(layout):
    # A post-ReLU-like input with exact ties: rows of zeros.
    ref, ours = _pair(16)
    x = torch.relu(torch.randn(2, 16, 3, 3, dtype=torch.float64))
    x[:, :, 0, 0] = 0.0
    x = x.contiguous(memory_format=layout).requires_grad_()
    g = torch.randn(2, 16, 3, 3, dtype=torch.float64).contiguous(memory_format=layout)
    ga, = torch.autograd.grad(ref(x), x, g)
    gb, = torch.autograd.grad(ours(x), x, g)
    torch.testing.assert_close(gb, ga, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("layout", LAYOUTS, ids=["nchw", "channels_last"])
def test_flop_counter_sees_the_standard_ops(layout):
    from attnlab.benchtools import count_flops

    ref, ours = _pair(32, torch.float32)
    x = torch.randn(2, 32, 9, 9).contiguous(memory_format=layout)
    spatial_conv = 2 * 9 * 9 * 2 * 7 * 7 * 2  # N * H * W * in * k * k multiply-adds, 2 FLOPs each
    assert count_flops(lambda: ours(x)) == count_flops(lambda: ref(x)) > spatial_conv
