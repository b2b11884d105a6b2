import subprocess
import sys

import pytest

from attnlab.cli import main


def test_list_prints_every_module_with_paper(capsys):
    import attnlab

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in attnlab.list_attention():
        assert name in out
    assert "Woo et al." in out and "2*C*(C//r)" in out


def test_console_script_entry_point():
    res = subprocess.run([sys.executable, "-m", "attnlab.cli", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and "attnlab" in res.stdout


def _fmnist_available() -> bool:
    from attnlab.data.fashion_mnist import fashion_mnist_root

    root = fashion_mnist_root()
    return (root / "train-images-idx3-ubyte.gz").exists() or (root / "train-images-idx3-ubyte").exists()


@pytest.mark.skipif(not _fmnist_available(), reason="Fashion-MNIST files missing")
def test_train_eval_cam_end_to_end(tmp_path, capsys):
    import json

    run = tmp_path / "run"
    args = ["train", "--model", "resnet20", "--attention", "cbam", "--dataset", "fashion-mnist", "--epochs", "1",
            "--batch-size", "32", "--limit-train", "128", "--limit-test", "64", "--out", str(run), "--no-progress",
            "--device", "cpu"]
    assert main(args) == 0
    assert (run / "summary.json").is_file() and (run / "checkpoints" / "latest.json").is_file()
    # The same command again refuses to overwrite; --resume continues (nothing left: 1 of 1 epochs done).
    assert main(args) == 2 and "--resume" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run), "--limit", "50", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["count"] == 50 and len(ev["confusion"]) == 10 and 0 <= ev["accuracy"] <= 1
    out = tmp_path / "cam"
    assert main(["cam", "--checkpoint", str(run), str(run), "--images", "fashion-mnist", "--out", str(out), "-n", "3",
                 "--target", "label"]) == 0
    assert (out / "grid.png").stat().st_size > 1000
    import torch

    saved = torch.load(out / "maps.pt")
    assert len(saved["maps"]) == 2 and all(m.shape == (3, 28, 28) for m in saved["maps"].values())


def test_eval_of_a_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["eval", "--checkpoint", str(tmp_path / "nope")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_train_rejects_bad_attention_kwargs(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "r"), "--attention-kwargs", "[1]"]) == 2
    assert "JSON object" in capsys.readouterr().err
