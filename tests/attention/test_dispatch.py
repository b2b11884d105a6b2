"""CBAM's one dispatch point: every path it picks computes the same output and records the same maps."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from attnlab.attention import CBAM, _kernels
from attnlab.attention._dispatch import cbam_forward, tracing

PATHS = ["traced", "autograd_native", "autograd_plain", "no_grad_native", "no_grad_plain"]


def _reference(m: CBAM, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The module's definition in stock ops: (out, Mc (N, C), Ms (N, 1, H, W))."""
    with torch.no_grad():
        ca = m.channel_attention(x)  # (N, C, 1, 1)
        x1 = x * ca
        sa = m.spatial_attention(x1)
        return x1 * sa, ca.flatten(1), sa


@pytest.mark.parametrize("path", PATHS)
def test_every_path_gives_the_same_output_and_maps(monkeypatch, make_attention, path):
    if "native" in path and not _kernels.available():
        pytest.skip("no C compiler: native kernels not built")
    if "plain" in path:
        monkeypatch.setattr(_kernels, "supports", lambda t: False)
    m = make_attention("cbam", 16, reduction=4, dtype=torch.float64)
    x = torch.randn(2, 16, 5, 6, dtype=torch.float64)
    out_ref, ca_ref, sa_ref = _reference(m, x)
    grad = path.startswith("autograd") or path == "traced"
    inp = x.clone().requires_grad_(grad)
    watch = FlopCounterMode(display=False) if path == "traced" else contextlib.nullcontext()
    with torch.set_grad_enabled(grad), watch:
        assert tracing() == (path == "traced")
        out, maps = cbam_forward(inp, m.channel_attention, m.spatial_attention, record=True)
        out_plain, no_maps = cbam_forward(inp, m.channel_attention, m.spatial_attention)
    assert no_maps is None
    assert out.requires_grad == grad
    for got in (out, out_plain):
        torch.testing.assert_close(got.detach(), out_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(maps[0].detach().flatten(1), ca_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(maps[1].detach(), sa_ref, rtol=1e-12, atol=1e-12)


def test_the_module_records_what_the_dispatch_returns(make_attention):
    m = make_attention("cbam", 8, reduction=2)
    x = torch.randn(2, 8, 4, 4)
    seen = []
    m.attention_sink = lambda mod, maps: seen.append(maps)
    with torch.no_grad():
        out = m(x)
    out_ref, ca_ref, sa_ref = _reference(m, x)
    torch.testing.assert_close(out, out_ref)
    assert len(seen) == 1
    torch.testing.assert_close(seen[0].channel, ca_ref)
    torch.testing.assert_close(seen[0].spatial, sa_ref)
