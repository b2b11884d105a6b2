"""attnlab.benchmarks.train and `attnlab bench train`: a run's figures and per-epoch table, reused on a re-run."""

from __future__ import annotations

import json

from attnlab.benchmarks.train import results_path, summarize
from attnlab.cli import main
from attnlab.train import TrainConfig


def test_bench_train_writes_the_table_and_reuses_the_run(tmp_path, tiny_fashion, capsys):
    data = tiny_fashion
    run, out = tmp_path / "run", tmp_path / "train.md"
    args = ["bench", "train", "--dataset", "fashion-mnist", "--data-root", str(data), "--epochs", "2",
            "--batch-size", "16", "--threads", "1", "--device", "cpu", "--run", str(run), "--out", str(out),
            "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    final = json.loads((run / "summary.json").read_text())["test_acc"]
    assert f"test accuracy {final:.4f} after 2 epochs" in printed
    text = out.read_text()
    assert text.startswith("# Training: resnet20 on fashion-mnist")
    assert f"**Test accuracy {final:.4f}** after 2 epochs" in text
    assert "channels_last=True" in text and "attnlab bench train" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 2 and f"| {history[1]['test_acc']:.4f} |" in rows[1]
    # A re-run reuses the finished run (no new epochs) and writes the same figures.
    mtime = (run / "checkpoints" / "latest.json").stat().st_mtime_ns
    assert main(args) == 0
    assert (run / "checkpoints" / "latest.json").stat().st_mtime_ns == mtime
    assert f"**Test accuracy {final:.4f}**" in out.read_text()


def test_summary_figures():
    history = [{"epoch": 1, "test_acc": 0.8, "epoch_seconds": 10.0, "images_per_s": 100.0},
               {"epoch": 2, "test_acc": 0.9, "epoch_seconds": 30.0, "images_per_s": 50.0},
               {"epoch": 3, "test_acc": 0.85, "epoch_seconds": 12.0, "images_per_s": 90.0}]
    s = summarize(history, {"test_acc": 0.85})
    assert s == {"epochs": 3, "test_acc": 0.85, "best_test_acc": 0.9, "best_epoch": 2, "median_epoch_seconds": 12.0,
                 "min_epoch_seconds": 10.0, "mean_epoch_seconds": 52 / 3, "median_images_per_s": 90.0,
                 "train_seconds": 52.0}


def test_default_results_path_names_the_run():
    assert str(results_path(TrainConfig(), "cpu")) == "benchmarks/results/train-fashion-mnist-resnet20-cpu.md"
    cfg = TrainConfig(model="resnet56", attention="cbam", dataset="cifar10")
    assert results_path(cfg, "cuda").name == "train-cifar10-resnet56-cbam-cuda.md"


def test_note_is_written(tmp_path, tiny_fashion):
    from attnlab.benchmarks.train import run

    data = tiny_fashion
    cfg = TrainConfig(dataset="fashion-mnist", data_root=str(data), epochs=1, batch_size=20, device="cpu",
                      num_threads=1)
    figures = run(cfg, tmp_path / "run", tmp_path / "t.md", command="x", progress=False, note="Trained by hand.")
    text = (tmp_path / "t.md").read_text()
    assert "\n\nTrained by hand.\n\n" in text and figures["epochs"] == 1


def test_default_run_dir_names_the_variant():
    from attnlab.benchmarks.train import run_dir_for

    assert str(run_dir_for(TrainConfig())) == "runs/bench-train-fashion-mnist-resnet20-vanilla"
    assert run_dir_for(TrainConfig(attention="cbam")).name == "bench-train-fashion-mnist-resnet20-cbam"


def test_paths_are_checked_before_training(tmp_path):
    import pytest

    from attnlab.benchmarks.train import run

    (tmp_path / "FILE").write_text("x")
    with pytest.raises(ValueError, match=r"the run folder \(--run\) '.*FILE' is a file, not a folder"):
        run(TrainConfig(), tmp_path / "FILE", log=None)
    with pytest.raises(ValueError, match=r"the results file \(--out\) '.*' is a folder, not a file"):
        run(TrainConfig(), tmp_path / "run", tmp_path, log=None)
    assert not (tmp_path / "run").exists()
