"""The Triton kernels compiled on a GPU at the shapes that matter: ResNet-50's stages, bfloat16 autocast,
channels_last, split reductions at the real block sizes, CUDA graphs, a second device. Skipped without CUDA."""

from __future__ import annotations

import pytest
import torch

import attnlab

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

#: (C, H, W) of ResNet-50's stages
STAGES = [(64, 56, 56), (256, 28, 28), (512, 14, 14), (2048, 7, 7)]


def _step(m, x, g):
    xg = x.detach().clone().requires_grad_()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = m(xg)
    grads = torch.autograd.grad(out, [xg, *m.parameters()], g)
    return [out.float(), *(t.float() for t in grads)]


@pytest.mark.parametrize("shape", STAGES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", ["cbam", "se", "eca"])
def test_resnet50_stages_bf16_channels_last_match_the_plain_path(monkeypatch, name, shape):
    torch.manual_seed(0)
    m = attnlab.create_attention(name, shape[0]).cuda()
    x = torch.randn(8, *shape, device="cuda", dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
    g = torch.randn_like(x)
    monkeypatch.setenv("ATTNLAB_BACKEND", "triton")
    got = _step(m, x, g)
    monkeypatch.setenv("ATTNLAB_BACKEND", "torch")
    want = _step(m, x, g)
    for a, b in zip(got, want, strict=True):
        scale = max(1.0, b.abs().max().item())
        torch.testing.assert_close(a, b, rtol=5e-2, atol=5e-2 * scale)


def test_the_default_backend_on_cuda_is_triton(monkeypatch):
    from attnlab.attention import _dispatch

    monkeypatch.delenv("ATTNLAB_BACKEND", raising=False)
    assert _dispatch.backend_for(torch.ones(1, 2, 3, 3, device="cuda")) == "triton"


def test_one_sample_splits_its_reductions_and_stays_exact():
    from attnlab.attention._triton import launch

    x = torch.randn(1, 2048, 7, 7, device="cuda")  # one sample: the pools split over C and H x W
    ca = torch.rand(1, 2048, device="cuda")
    assert launch._split(x, 1, 2048, 16)[0] > 1
    avg, mx, argp = launch.pool_hw(x)
    torch.testing.assert_close(avg, x.mean((2, 3)))
    assert torch.equal(argp.long(), x.flatten(2).argmax(2))
    smean, smax, argc = launch.pool_c(x, ca)
    x1 = x * ca[:, :, None, None]
    torch.testing.assert_close(smean, x1.mean(1, keepdim=True))
    assert torch.equal(argc.long(), x1.flatten(2).argmax(1))


def test_a_cuda_graph_replays_the_forward():
    torch.manual_seed(0)
    m = attnlab.create_attention("cbam", 64).cuda().eval()
    x = torch.randn(4, 64, 14, 14, device="cuda")
    with torch.no_grad():
        m(x)  # compile the kernels before the capture
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = m(x)
        x.copy_(torch.randn_like(x))
        graph.replay()
        torch.testing.assert_close(out, m(x))


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_a_tensor_on_the_second_gpu_launches_there():
    torch.manual_seed(0)
    m = attnlab.create_attention("cbam", 32).to("cuda:1")
    x = torch.randn(2, 32, 7, 7, device="cuda:1", requires_grad=True)
    m(x).sum().backward()
    assert x.grad.device == torch.device("cuda:1") and torch.isfinite(x.grad).all()
