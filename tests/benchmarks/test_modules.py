"""attnlab.benchmarks.modules and `attnlab bench modules`: tiny runs that measure, print and save the table."""

from __future__ import annotations

import math

import pytest

from attnlab.benchmarks import modules
from attnlab.cli import main


def test_bench_modules_small_run_saves_table(tmp_path, capsys):
    out = tmp_path / "modules.md"
    code = main(["bench", "modules", "--modules", "se,cbam", "--shapes", "16x8x8", "--batch", "2",
                 "--repeats", "2", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "cbam (naive)" in printed and "fwd x clone" in printed
    text = out.read_text()
    assert "| se | 16x8x8 |" in text and "Command: `attnlab" in text


def test_bench_modules_channels_last(tmp_path, capsys):
    out = tmp_path / "modules.md"
    assert main(["bench", "modules", "--modules", "cbam", "--shapes", "16x8x8", "--batch", "2", "--repeats", "1",
                 "--channels-last", "--out", str(out)]) == 0
    text = out.read_text()
    assert "inputs channels_last" in text and "| cbam | 16x8x8 |" in text


def test_bench_unknown_module_is_a_clear_error(capsys):
    assert main(["bench", "modules", "--modules", "cbma", "--out", ""]) == 2
    err = capsys.readouterr().err
    assert "unknown attention module 'cbma'" in err and "'cbam'" in err


def test_bad_shape_is_rejected(capsys):
    assert main(["bench", "modules", "--shapes", "256x28"]) == 2
    assert "CxHxW" in capsys.readouterr().err


def test_forward_only_run_reports_the_naive_ratio_from_the_forward_rounds(tmp_path, capsys):
    results = modules.run(out="", command="test", names=["se"], shapes=[(8, 4, 4)], batch=2, repeats=1,
                          backward=False, log=None)
    assert [r.module for r in results] == ["se", "se (naive)"]
    se, naive = results
    assert math.isnan(se.fb_ms) and math.isnan(se.fb_x_clone)
    assert se.x_reference is not None and se.x_reference > 0 and naive.x_reference is None
    assert se.params == naive.params > 0 and se.shape == "8x4x4" and se.fwd_ms > 0
    assert list(tmp_path.iterdir()) == []  # out="" saves nothing
    assert "saved" not in capsys.readouterr().out


def test_unknown_name_fails_before_measuring():
    measured = []
    with pytest.raises(ValueError, match="unknown attention module 'sse'"):
        modules.benchmark_modules(names=["se", "sse"], shapes=[(8, 4, 4)], batch=1, repeats=1, log=measured.append)
    assert measured == []


def test_amp_inputs_and_timm_rows(tmp_path, monkeypatch):
    """``amp`` feeds half inputs under autocast; ``timm`` adds "name (timm)" rows and the "x timm" ratio."""
    import sys
    import types

    import torch

    import attnlab

    seen = []
    layers = types.ModuleType("timm.layers")
    layers.create_attn = lambda name, channels: attnlab.create_attention(name, channels)
    monkeypatch.setitem(sys.modules, "timm", types.ModuleType("timm"))
    monkeypatch.setitem(sys.modules, "timm.layers", layers)
    real = modules.no_grad_forward
    monkeypatch.setattr(modules, "no_grad_forward",
                        lambda m, x, amp=None: (seen.append((x.dtype, amp)), real(m, x, amp))[1])
    out = tmp_path / "modules.md"
    results = modules.run(out=str(out), command="test", names=["se", "simam"], shapes=[(8, 4, 4)], batch=2, repeats=1,
                          amp="bfloat16", timm=True, log=None)
    assert [r.module for r in results] == ["se", "se (naive)", "se (timm)", "simam"]
    se = results[0]
    assert se.x_timm is not None and se.x_timm > 0 and results[3].x_timm is None
    assert (torch.bfloat16, "bfloat16") in seen
    text = out.read_text()
    assert "autocast bfloat16" in text and "x timm" in text
