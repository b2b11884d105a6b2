"""The network benchmark runs end to end and writes its table (tiny settings; the real run: `attnlab bench models`)."""

from __future__ import annotations

import pytest

from attnlab.benchmarks import models


def test_benchmark_runs_and_saves(tmp_path, capsys):
    out = tmp_path / "models.md"
    results = models.run(out=str(out), command="test", models=["resnet20"], attentions=["se"], infer_batch=2,
                            train_batch=2, repeats=1, warmup=0, memory=False, log=None)
    assert [(r.model, r.attention) for r in results] == [("resnet20", "vanilla"), ("resnet20", "se")]
    vanilla, se = results
    assert vanilla.infer_x == 1 and vanilla.train_time_x == 1
    assert se.params > vanilla.params and se.gmacs >= vanilla.gmacs > 0.04
    assert se.infer_ips > 0 and se.train_ips > 0
    assert se.infer_x == pytest.approx(1 / se.infer_time_x)
    text = out.read_text()
    assert "Command: `test`" in text and "| resnet20 | se | 32x32 |" in text
    assert "infer time x" in capsys.readouterr().out


def test_target_lines_compare_with_the_targets():
    row = models.ModelResult("resnet50", "cbam", "224x224", 1, 1.0, 1.0, 0.9, 1.11, 1.0, 0.9, 1.1, 0.0, 0.0)
    (line,) = models.target_lines([row])
    assert "misses" in line and "<= 1.1" in line


def test_channels_last_run_keeps_the_format_and_says_so(tmp_path, monkeypatch):
    import torch

    seen = []
    real = models.no_grad_forward

    def spy(model, x, amp=None):
        seen.append((x.is_contiguous(memory_format=torch.channels_last),
                     model.conv1.weight.is_contiguous(memory_format=torch.channels_last)))
        return real(model, x, amp)

    monkeypatch.setattr(models, "no_grad_forward", spy)
    out = tmp_path / "models.md"
    models.run(out=str(out), command="test", models=["resnet20"], attentions=["cbam"], infer_batch=2,
                  train_batch=2, repeats=1, warmup=0, memory=False, channels_last=True, log=None)
    assert seen and all(x and w for x, w in seen)
    assert "Memory format: channels_last." in out.read_text()


def test_every_name_is_checked_before_anything_is_measured(tmp_path):
    lines: list[str] = []
    with pytest.raises(ValueError, match="unknown attention module 'sse'"):
        models.benchmark_models(["resnet20"], ["se", "sse"], repeats=1, warmup=0, log=lines.append)
    with pytest.raises(ValueError, match="unknown model 'resnet21'"):
        models.benchmark_models(["resnet20", "resnet21"], ["se"], repeats=1, warmup=0, log=lines.append)
    assert lines == []
    with pytest.raises(ValueError, match="is a folder, not a file"):
        models.run(out=tmp_path, models=["resnet20"])


def test_amp_and_timm_rows(tmp_path, monkeypatch):
    """``amp`` runs every forward under autocast; ``timm`` adds timm's ResNet-50 rows (a stand-in timm here)."""
    import sys
    import types

    import torch

    from attnlab.models import create_model

    built = []
    fake = types.ModuleType("timm")
    fake.create_model = lambda name, **kw: built.append(kw) or create_model("resnet20")
    monkeypatch.setitem(sys.modules, "timm", fake)
    monkeypatch.setitem(models.INPUT_SIZES, "resnet50", 32)
    monkeypatch.setattr(models, "_build", lambda name, key: (fake.create_model(name) if key.startswith("timm:")
                                                            else create_model("resnet20")))
    dtypes = []
    real = models.no_grad_forward
    monkeypatch.setattr(models, "no_grad_forward", lambda m, x, amp=None: (dtypes.append(amp), real(m, x, amp))[1])
    out = tmp_path / "models.md"
    results = models.run(out=str(out), command="test", models=["resnet50"], attentions=[], infer_batch=2,
                         train_batch=2, repeats=1, warmup=0, memory=False, amp="bfloat16", timm=True, log=None)
    assert [r.attention for r in results] == ["vanilla", *models.TIMM_VARIANTS]
    assert set(dtypes) == {"bfloat16"}
    text = out.read_text()
    assert "Autocast: bfloat16." in text and "| resnet50 | timm:cbam |" in text
    with pytest.raises(ValueError, match="unknown AMP dtype 'fp8'"):
        models.benchmark_models(models=["resnet20"], attentions=[], amp="fp8", log=None)
    assert models.seed_cbam_layer(16, device=None, dtype=None)(torch.randn(1, 16, 4, 4)).shape == (1, 16, 4, 4)
