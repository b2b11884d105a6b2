"""attnlab.benchmarks.data and `attnlab bench data`: generation speed on a tiny Fashion-MNIST folder."""

from __future__ import annotations

from attnlab.benchmarks import data
from attnlab.cli import main


def test_run_times_the_generator_and_the_dataset(tmp_path, tiny_fashion, capsys):
    out = tmp_path / "data.md"
    assert main(["bench", "data", "--data-root", str(tiny_fashion), "--n", "8", "--canvas", "48", "--repeats", "1",
                 "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# Cluttered Fashion-MNIST generation speed\n\nCommand: `attnlab bench data")
    assert "| generate_cluttered, 8 canvases from the test items | 1 |" in text
    assert "warm cache" in text and "Canvas 48x48" in text
    assert f"saved {out}" in capsys.readouterr().out


def test_results_count_canvases_per_second(tiny_fashion):
    results = data.benchmark_data(n=4, canvas=48, repeats=1, root=tiny_fashion)
    assert [r.what.split(",")[0] for r in results][-2:] == ["dataset", "dataset"]
    generated = results[0]
    assert generated.threads == 1 and generated.canvases_per_s == 4 / generated.seconds
    assert results[-1].canvases_per_s == 20 / results[-1].seconds  # the 20 test items, one canvas each


def test_missing_files_skip_with_a_message(tmp_path, capsys):
    out = tmp_path / "data.md"
    assert data.run(out=out, root=tmp_path / "nowhere") == []
    assert "skipped:" in capsys.readouterr().out and not out.exists()
