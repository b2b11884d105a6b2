"""The Triton passes as torch.library custom ops: opcheck (schema, fake tensors, autograd registration, AOT
dispatch), torch.compile with fullgraph (no graph break) and the same results as eager, export keeps plain ops."""

from __future__ import annotations

import pytest
import torch

from attnlab.attention import CBAM


def _ops():
    from attnlab.attention._triton import ops

    return ops


def _opcheck_cases(device: str) -> list[tuple[str, tuple]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 3, 4, generator=g).contiguous(memory_format=torch.channels_last).to(device)
    ca, sa = torch.rand(2, 5, generator=g).to(device), torch.rand(2, 1, 3, 4, generator=g).to(device)
    gm, gmax = torch.randn(2, 12, generator=g).to(device), torch.randn(2, 12, generator=g).to(device)
    argc = torch.randint(0, 5, (2, 12), generator=g, dtype=torch.int32).to(device)
    leaf = x.clone().requires_grad_()
    return [("pool_hw", (leaf,)), ("avg_hw", (leaf,)), ("pool_c", (leaf, ca.clone().requires_grad_())),
            ("gate_mul", (leaf, ca.clone().requires_grad_(), sa.clone().requires_grad_())),
            ("gate_mul", (leaf, ca.clone().requires_grad_(), None)), ("gate_dots", (x, x * 0.5, ca, sa)),
            ("channel_dot", (x, x * 0.5)), ("mean_max_dot", (x, gm, gmax, argc))]


@pytest.mark.parametrize("case", range(8))
def test_every_op_passes_opcheck(triton_device, case):
    _ops()
    name, args = _opcheck_cases(triton_device)[case]
    torch.library.opcheck(getattr(torch.ops.attnlab, name).default, args)


class _GraphOps:
    """A torch.compile backend that notes the ops of the graph Dynamo hands it, then runs it as AOT eager."""

    def __init__(self) -> None:
        self.targets: set[str] = set()

    def __call__(self, gm: torch.fx.GraphModule, example_inputs):
        from functorch.compile import make_boxed_func
        from torch._dynamo.backends.common import aot_autograd

        self.targets |= {str(n.target) for n in gm.graph.nodes if n.op == "call_function"}
        run = lambda g, _: make_boxed_func(g)  # noqa: E731
        return aot_autograd(fw_compiler=run, bw_compiler=run)(gm, example_inputs)


@pytest.mark.parametrize("name", ["cbam", "se"])
def test_compiled_module_uses_the_ops_without_a_graph_break(triton_backend, make_attention, make_input, monkeypatch,
                                                            name):
    m = make_attention(name, 12, reduction=4).to(triton_backend)
    x = make_input(2, 12, 5, 3).to(triton_backend)
    g = make_input(2, 12, 5, 3, seed=2).to(triton_backend)
    seen = _GraphOps()
    compiled = torch.compile(m, fullgraph=True, backend=seen)
    xc = x.clone().requires_grad_()
    out = compiled(xc)
    got = [out.detach(), *torch.autograd.grad(out, [xc, *m.parameters()], g)]
    assert "attnlab.gate_mul" in seen.targets
    assert ("attnlab.pool_c" in seen.targets) == (name == "cbam")
    monkeypatch.setenv("ATTNLAB_BACKEND", "torch")
    xe = x.clone().requires_grad_()
    out = m(xe)
    want = [out.detach(), *torch.autograd.grad(out, [xe, *m.parameters()], g)]
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_export_keeps_the_plain_ops(triton_backend):
    m = CBAM(8, reduction=2).to(triton_backend)
    ep = torch.export.export(m, (torch.randn(2, 8, 4, 4, device=triton_backend),))
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert not [t for t in targets if "attnlab" in t]
    assert any("sigmoid" in t for t in targets)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["cbam", "se", "eca"])
def test_inductor_compiles_the_ops_on_cuda(make_attention, make_input, monkeypatch, name):
    monkeypatch.setenv("ATTNLAB_BACKEND", "triton")
    m = make_attention(name, 64).cuda()
    x = make_input(4, 64, 14, 14).cuda().contiguous(memory_format=torch.channels_last)
    compiled = torch.compile(m, fullgraph=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        xc = x.to(torch.bfloat16).requires_grad_()
        out = compiled(xc)
        out.float().square().sum().backward()
        xe = x.to(torch.bfloat16).requires_grad_()
        monkeypatch.setenv("ATTNLAB_BACKEND", "torch")
        ref = m(xe)
        ref.float().square().sum().backward()
    torch.testing.assert_close(out.float(), ref.float(), rtol=3e-2, atol=3e-2)
    torch.testing.assert_close(xc.grad.float(), xe.grad.float(), rtol=5e-2, atol=5e-2)
