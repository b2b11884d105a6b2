"""Each Triton launcher against its definition in PyTorch: layouts, dtypes, odd shapes, many blocks, strides.

Runs in Triton's interpreter on CPU tensors without a GPU (see conftest.py), on the GPU where there is one.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
#: (N, C, H, W): odd sizes, a 7x5 map, 1x1, C of one, C not a multiple of any block
SHAPES = [(2, 5, 7, 5), (1, 1, 1, 1), (3, 9, 1, 4), (2, 33, 3, 3)]
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float16: dict(rtol=1e-2, atol=1e-2),
       torch.bfloat16: dict(rtol=2e-2, atol=2e-2)}


def _launch():
    from attnlab.attention._triton import launch

    return launch


def _inputs(shape, dtype, layout, device, seed=0):
    """x (N, C, H, W) in ``dtype`` and ``layout``; ca (N, C) and sa (N, 1, H, W) in (0, 1), float32."""
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    x = torch.randn(shape, generator=g).to(dtype).contiguous(memory_format=LAYOUTS[layout]).to(device)
    ca = torch.rand(n, c, generator=g).to(device)
    sa = torch.rand(n, 1, h, w, generator=g).to(device)
    return x, ca, sa


def _check_forward(x: torch.Tensor, ca: torch.Tensor, sa: torch.Tensor) -> None:
    """pool_hw, pool_c and gate_mul against their PyTorch definitions (in float32 from the same inputs)."""
    L, tol, xf = _launch(), TOL[x.dtype], x.float()
    avg, mx, argp = L.pool_hw(x)
    assert avg.dtype == mx.dtype == x.dtype and argp.dtype == torch.int32
    torch.testing.assert_close(avg.float(), xf.mean((2, 3)), **tol)
    torch.testing.assert_close(mx.float(), xf.amax((2, 3)), rtol=0, atol=0)
    assert torch.equal(argp.long(), xf.flatten(2).argmax(2))
    torch.testing.assert_close(L.pool_hw(x, need_max=False)[0], avg, rtol=0, atol=0)
    x1 = xf * ca[:, :, None, None]  # x * Mc, what CBAM's channel pools see
    smean, smax, argc = L.pool_c(x, ca)
    assert smean.shape == smax.shape == (x.shape[0], 1, *x.shape[2:]) and argc.dtype == torch.int32
    torch.testing.assert_close(smean.float(), x1.mean(1, keepdim=True), **TOL[torch.float32])
    torch.testing.assert_close(smax.float(), x1.amax(1, keepdim=True), **TOL[torch.float32])
    assert torch.equal(argc.long(), x1.flatten(2).argmax(1))
    out = L.gate_mul(x, ca, sa)
    assert out.dtype == torch.float32 and out.stride() == torch.empty_like(x).stride()
    torch.testing.assert_close(out, x1 * sa, **tol)
    half = L.gate_mul(x, ca.to(x.dtype))
    assert half.dtype == x.dtype
    torch.testing.assert_close(half.float(), xf * ca.to(x.dtype).float()[:, :, None, None], **tol)


def _check_backward(x: torch.Tensor, ca: torch.Tensor, sa: torch.Tensor, g: torch.Tensor) -> None:
    """gate_dots, mean_max_dot and grad_x against their PyTorch definitions."""
    L, tol = _launch(), TOL[x.dtype]
    n, c, h, w = x.shape
    xf, gf = x.float(), g.float()
    gca, gsa = L.gate_dots(g, x, ca, sa)
    torch.testing.assert_close(gca, (gf * xf * sa).sum((2, 3)), **TOL[torch.float32])
    torch.testing.assert_close(gsa, (gf * xf * ca[:, :, None, None]).sum(1).flatten(1), **TOL[torch.float32])
    gw, none = L.gate_dots(g, x)
    assert none is None
    torch.testing.assert_close(gw, (gf * xf).sum((2, 3)), **TOL[torch.float32])
    gen = torch.Generator().manual_seed(3)
    gm, gmax = (torch.randn(n, h * w, generator=gen).to(x.device) for _ in range(2))
    gavg, gmx = (torch.randn(n, c, generator=gen).to(x.device) for _ in range(2))
    _, _, argp = L.pool_hw(x)
    _, _, argc = L.pool_c(x, ca)
    at_c = F.one_hot(argc.long(), c).transpose(1, 2).float()  # (N, C, P): the channel max of each position
    at_p = F.one_hot(argp.long(), h * w).float()  # (N, C, P): the spatial max of each channel
    ref = (xf.flatten(2) * (gm[:, None, :] + at_c * gmax[:, None, :])).sum(2)
    torch.testing.assert_close(L.mean_max_dot(x, gm, gmax, argc), ref, **TOL[torch.float32])
    gx = L.grad_x(g, x, ca, gavg, L.CBAMGrads(sa, gm, gmax, argc, gmx, argp))
    assert gx.dtype == x.dtype and gx.stride() == x.stride()
    ref = (ca[:, :, None] * (gf.flatten(2) * sa.flatten(1)[:, None, :] + gm[:, None, :] + at_c * gmax[:, None, :])
           + gavg[:, :, None] + at_p * gmx[:, :, None])
    torch.testing.assert_close(gx.float().flatten(2), ref, **tol)
    gx = L.grad_x(g, x, ca, gavg)
    torch.testing.assert_close(gx.float(), gf * ca[:, :, None, None] + gavg[:, :, None, None], **tol)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", list(TOL), ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_forward_passes_match_pytorch(triton_device, shape, dtype, layout):
    _check_forward(*_inputs(shape, dtype, layout, triton_device))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", list(TOL), ids=str)
@pytest.mark.parametrize("shape", SHAPES[:2], ids=lambda s: "x".join(map(str, s)))
def test_backward_passes_match_pytorch(triton_device, shape, dtype, layout):
    x, ca, sa = _inputs(shape, dtype, layout, triton_device)
    g = _inputs(shape, dtype, "nchw", triton_device, seed=1)[0]  # d out in the other layout when x is NHWC
    _check_backward(x, ca, sa, g)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_many_blocks_in_every_dimension_and_split_reductions(triton_device, small_blocks, layout):
    from attnlab.attention._triton import launch

    shape = (2, 6, 3, 5)  # C = 6 over blocks of 4, P = 15 over blocks of 4, two samples
    x, ca, sa = _inputs(shape, torch.float32, layout, triton_device)
    bc, bp = launch._tile(6, 15, layout == "channels_last")
    assert (bc, bp) == (4, 4)
    assert launch._split(x, 2 * 2, 15, 4)[0] > 1 and launch._split(x, 2 * 4, 6, 4)[0] > 1
    _check_forward(x, ca, sa)
    _check_backward(x, ca, sa, _inputs(shape, torch.float32, layout, triton_device, seed=1)[0])


def test_ties_go_to_the_first_maximum(triton_device, small_blocks):
    L = _launch()
    x = torch.zeros(1, 6, 3, 3, device=triton_device)
    x[0, :, 1, 2] = 2.0  # every channel's maximum at positions 5 and 8
    x[0, :, 2, 2] = 2.0
    x[0, 2:4] = 3.0  # channels 2 and 3 tie everywhere
    _, mx, argp = L.pool_hw(x)
    assert argp.tolist() == [[5, 5, 0, 0, 5, 5]] and mx.tolist() == [[2, 2, 3, 3, 2, 2]]
    _, _, argc = L.pool_c(x, torch.ones(1, 6, device=triton_device))
    assert argc.tolist() == [[2] * 9]


def test_strided_inputs_are_read_or_copied(triton_device):
    L = _launch()
    base, ca, sa = _inputs((2, 8, 5, 6), torch.float32, "channels_last", triton_device)
    x = base[:, 1:6]  # a channel slice: H and W still merge, read in place
    assert L.mergeable(x) is not None and not x.is_contiguous(memory_format=torch.channels_last)
    _check_forward(x, ca[:, 1:6].contiguous(), sa)
    x = base[:, :, :, 1:5]  # a column slice: H and W no longer merge, copied first
    assert L.mergeable(x) is None
    _check_forward(x, ca, sa[:, :, :, 1:5])
    g = torch.ones(1, 1, 1, 1, device=triton_device).expand(2, 8, 5, 4)  # stride 0, as after .sum().backward()
    _check_backward(x.contiguous(), ca, sa[:, :, :, 1:5].contiguous(), g)
