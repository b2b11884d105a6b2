"""attnlab.benchmarks.loop and `attnlab bench loop`: the loop against the bare step, on tiny sizes (a smoke test;
the figures are the benchmark's, not the test's)."""

from __future__ import annotations

import pytest
import torch

from attnlab.benchmarks import loop
from attnlab.cli import main


def test_bench_loop_writes_a_row_per_model_with_both_pipelines(tmp_path, tiny_fashion, capsys):
    out = tmp_path / "loop.md"
    assert main(["bench", "loop", "--data-root", str(tiny_fashion), "--attention", "none", "--batch", "4",
                 "--images", "8", "--canvas", "48", "--repeats", "1", "--warmup", "0", "--device", "cpu",
                 "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# The training loop against the bare training step\n\nCommand: `attnlab bench loop")
    assert "Cluttered Fashion-MNIST canvases from the training items, 48x48" in text
    assert "| model | batch | precision | images per epoch | bare step img/s | loop, host data img/s |" in text
    assert "| resnet20 | 4 | fp32 | 8 |" in text
    assert f"saved {out}" in capsys.readouterr().out


def test_results_time_three_candidates_over_the_same_images(tmp_path):
    results, source = loop.benchmark_loop(attentions=["none", "se"], batches=[2, 3], images=6, repeats=1, warmup=0,
                                          device="cpu", canvas=48, root=tmp_path / "nowhere", log=None)
    assert source.startswith("random canvases")  # no Fashion-MNIST files there: said, not hidden
    assert [(r.model, r.batch, r.images) for r in results] == [("resnet20", 2, 6), ("resnet20 + se", 2, 6),
                                                               ("resnet20", 3, 6), ("resnet20 + se", 3, 6)]
    for r in results:
        assert r.precision == "fp32" and min(r.bare, r.host, r.device) > 0
        assert 0 < r.host_ratio and 0 < r.device_ratio


def test_an_unknown_attention_is_refused_before_any_work(capsys):
    assert main(["bench", "loop", "--attention", "none,cbma", "--device", "cpu", "--out", ""]) == 2
    err = capsys.readouterr().err
    assert err.startswith("attnlab: error:") and "cbma" in err and "cbam" in err


def test_the_results_file_is_named_after_the_device():
    assert str(loop.results_path("cpu")) == "benchmarks/results/loop-cpu.md"
    if torch.cuda.is_available():
        assert loop.device_slug("cuda") == loop.device_slug(torch.device("cuda", 0)) != "cuda"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bench_loop_on_cuda_in_bf16(tmp_path):
    results, _ = loop.benchmark_loop(attentions=[None], batches=[32], images=256, repeats=1, warmup=1, device="cuda",
                                     canvas=48, root=tmp_path / "nowhere", log=None)
    assert results[0].precision == "bf16" and results[0].device > 0
