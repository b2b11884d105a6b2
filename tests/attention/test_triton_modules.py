"""CBAM (both variants), SE and ECA on the Triton kernels against their plain PyTorch paths, through the modules.

Forward and backward (input and parameter gradients), float32 tight and float16/bfloat16 loose, plain dtypes
and autocast, both layouts; recording, double backward, and the backend switch itself.
"""

from __future__ import annotations

import pytest
import torch

from attnlab.attention import CBAM, _dispatch

MODULES = {"cbam": dict(reduction=4), "cbam-official": dict(reduction=4, variant="official"), "se": dict(reduction=4),
           "eca": dict(kernel_size=3)}
LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


def _module(make_attention, key: str, channels: int = 12, dtype: torch.dtype = torch.float32):
    return make_attention(key.split("-")[0], channels, dtype=dtype, **MODULES[key])


def _run(m, x: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
    """[out, d x, d params...] of one forward and backward of ``m`` on a fresh leaf copy of ``x``."""
    x = x.detach().clone().requires_grad_()
    out = m(x)
    grads = torch.autograd.grad(out, [x, *m.parameters()], g)
    return [out.detach(), *grads]


def _both_paths(m, x, g, monkeypatch):
    """(Triton results, plain PyTorch results); BN running stats are restored between the two runs."""
    state = {k: v.clone() for k, v in m.state_dict().items()}
    monkeypatch.setenv("ATTNLAB_BACKEND", "triton")
    got = _run(m, x, g)
    m.load_state_dict(state)
    monkeypatch.setenv("ATTNLAB_BACKEND", "torch")
    want = _run(m, x, g)
    return got, want


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("key", MODULES)
def test_float32_forward_and_backward_match_the_plain_path(triton_device, make_attention, make_input, monkeypatch,
                                                           key, layout):
    m = _module(make_attention, key).to(triton_device)
    x = make_input(3, 12, 7, 5).to(triton_device).contiguous(memory_format=LAYOUTS[layout])
    g = make_input(3, 12, 7, 5, seed=2).to(triton_device)
    got, want = _both_paths(m, x, g, monkeypatch)
    assert got[0].stride() == x.stride() and got[1].stride() == x.stride()
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("key", MODULES)
def test_half_precision_matches_float32_loosely(triton_device, make_attention, make_input, monkeypatch, key, dtype):
    m = _module(make_attention, key, dtype=dtype).to(triton_device)
    x = make_input(2, 12, 5, 5, dtype=dtype).to(triton_device).contiguous(memory_format=torch.channels_last)
    g = make_input(2, 12, 5, 5, seed=2, dtype=dtype).to(triton_device)
    monkeypatch.setenv("ATTNLAB_BACKEND", "triton")
    got = _run(m, x, g)
    monkeypatch.setenv("ATTNLAB_BACKEND", "torch")
    want = _run(m.float(), x.float(), g.float())  # the reference in float32 from the same rounded inputs
    assert got[0].dtype == dtype and got[1].dtype == dtype
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a.float(), b, rtol=3e-2, atol=3e-2 * max(1.0, b.abs().max().item()))


@pytest.mark.parametrize("key", ["cbam", "se"])
def test_autocast_runs_the_gates_in_half_and_the_passes_on_the_input(triton_device, make_attention, make_input,
                                                                     monkeypatch, key):
    m = _module(make_attention, key).to(triton_device)
    x = make_input(2, 12, 5, 3).to(triton_device)
    g = make_input(2, 12, 5, 3, seed=2).to(triton_device)
    results = []
    for backend in ("triton", "torch"):
        monkeypatch.setenv("ATTNLAB_BACKEND", backend)
        with torch.autocast(triton_device, dtype=torch.bfloat16):
            results.append(_run(m, x.to(torch.bfloat16), g.to(torch.bfloat16)))
    for a, b in zip(*results, strict=True):
        assert a.dtype == b.dtype
        torch.testing.assert_close(a.float(), b.float(), rtol=3e-2, atol=3e-2 * max(1.0, b.abs().max().item()))


@pytest.mark.parametrize("key", ["cbam", "eca"])
def test_no_grad_forward_and_recorded_maps_match(triton_device, make_attention, make_input, monkeypatch, key):
    m = _module(make_attention, key).to(triton_device)
    x = make_input(2, 12, 4, 6).to(triton_device)
    outs, maps = [], []
    for backend in ("triton", "torch"):
        monkeypatch.setenv("ATTNLAB_BACKEND", backend)
        for grad in (False, True):
            with torch.set_grad_enabled(grad):
                seen = []
                m.attention_sink = lambda _m, rec, _seen=seen: _seen.append(rec)
                outs.append(m(x.clone().requires_grad_(grad)).detach())
                maps.append(seen[0])
    m.attention_sink = None
    for out, rec in zip(outs[1:], maps[1:], strict=True):
        torch.testing.assert_close(out, outs[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(rec.channel, maps[0].channel, rtol=1e-5, atol=1e-5)
        if key == "cbam":
            torch.testing.assert_close(rec.spatial, maps[0].spatial, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("key", ["cbam", "se"])
def test_double_backward_falls_back_to_the_differentiable_forward(triton_device, make_attention, make_input,
                                                                  monkeypatch, key):
    m = _module(make_attention, key).to(triton_device)
    x = make_input(2, 12, 3, 3).to(triton_device)
    penalties = []
    for backend in ("triton", "torch"):
        monkeypatch.setenv("ATTNLAB_BACKEND", backend)
        xg = x.clone().requires_grad_()
        (gx,) = torch.autograd.grad(m(xg).square().sum(), xg, create_graph=True)
        penalties.append(torch.autograd.grad(gx.square().sum(), list(m.parameters())))
    for a, b in zip(*penalties, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_parameters_only_needing_grad_skip_the_input_gradient(triton_backend, make_attention, make_input):
    m = _module(make_attention, "cbam").to(triton_backend)
    out = m(make_input(2, 12, 3, 3).to(triton_backend))  # x needs no gradient, the parameters do
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


def test_the_triton_passes_are_the_ones_that_run(triton_backend, make_attention, make_input, monkeypatch):
    from attnlab.attention._triton import launch

    calls = []
    for name in ("pool_hw", "pool_c", "gate_mul", "gate_dots", "mean_max_dot", "grad_x"):
        fn = getattr(launch, name)
        monkeypatch.setattr(launch, name, lambda *a, _fn=fn, _name=name, **k: calls.append(_name) or _fn(*a, **k))
    m = _module(make_attention, "cbam").to(triton_backend)
    m(make_input(2, 12, 3, 3).to(triton_backend).requires_grad_()).sum().backward()
    assert calls == ["pool_hw", "pool_c", "gate_mul", "gate_dots", "mean_max_dot", "grad_x"]
    calls.clear()
    m = _module(make_attention, "se").to(triton_backend)
    m(make_input(2, 12, 3, 3).to(triton_backend).requires_grad_()).sum().backward()
    assert calls == ["pool_hw", "gate_mul", "gate_dots", "grad_x"]


# The backend switch -----------------------------------------------------------------------------------------


def test_an_unknown_backend_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("ATTNLAB_BACKEND", "cuda")
    with pytest.raises(ValueError, match="ATTNLAB_BACKEND='cuda' is not one of auto, triton, native, torch"):
        CBAM(8, reduction=2)(torch.randn(1, 8, 3, 3))


def test_forcing_triton_where_it_cannot_run_says_why(monkeypatch):
    monkeypatch.setenv("ATTNLAB_BACKEND", "triton")
    with pytest.raises(ValueError, match="ATTNLAB_BACKEND=triton, but dtype torch.float64.*unset ATTNLAB_BACKEND"):
        _dispatch.backend_for(torch.randn(1, 2, 3, 3, dtype=torch.float64))
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="needs CUDA, or TRITON_INTERPRET=1"):
        _dispatch.backend_for(torch.randn(1, 2, 3, 3))
    monkeypatch.setattr(_dispatch._triton, "available", lambda: False)
    with pytest.raises(ValueError, match=r"Triton is not installed \(pip install 'attnlab\[triton\]'\)"):
        _dispatch.backend_for(torch.randn(1, 2, 3, 3))


def test_the_default_keeps_cpu_tensors_off_triton(monkeypatch):
    monkeypatch.delenv("ATTNLAB_BACKEND", raising=False)
    x = torch.randn(1, 2, 3, 3)
    assert _dispatch.backend_for(x) in ("native", "torch")
    monkeypatch.setenv("ATTNLAB_BACKEND", "torch")
    assert _dispatch.backend_for(x) == "torch"
    monkeypatch.setenv("ATTNLAB_BACKEND", "native")
    assert _dispatch.backend_for(x.double()) == ("native" if _dispatch._kernels.supports(x) else "torch")


def test_without_triton_every_module_works_as_before(tmp_path):
    """A process where ``import triton`` fails: CBAM, SE and ECA train and infer, and no Triton module loads."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['triton'] = None\n"
        "import torch, attnlab\n"
        "from attnlab.attention import _triton, _dispatch\n"
        "assert not _triton.available()\n"
        "for name in ('cbam', 'se', 'eca'):\n"
        "    m = attnlab.create_attention(name, 16)\n"
        "    x = torch.randn(2, 16, 5, 5, requires_grad=True)\n"
        "    m(x).sum().backward()\n"
        "    with torch.no_grad():\n"
        "        m(x)\n"
        "assert not [k for k in sys.modules if k.startswith('attnlab.attention._triton.')], sys.modules\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "ATTNLAB_BACKEND"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
