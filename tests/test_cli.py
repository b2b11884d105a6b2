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


def _parse(*argv):
    from attnlab.cli import _train_config, build_parser

    args = build_parser().parse_args(list(argv))
    return args, _train_config(args)


def test_train_help_shows_every_option_with_its_default(capsys):
    from dataclasses import fields

    from attnlab.train import TrainConfig

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    flags = {"num_threads": "--threads", "augment": "--no-augment", "sync_bn": "--no-sync-bn"}
    for f in fields(TrainConfig):
        if f.metadata.get("cli", True):
            assert flags.get(f.name, "--" + f.name.replace("_", "-")) in text, f.name
    assert text.count("(default:") + text.count("by default)") >= len(fields(TrainConfig)) - 1
    for shown in ("(default: resnet20)", "(default: 10)", "(default: 0.1)", "(default: sgd)", "(default: all)",
                  "(default: none)", "(default: {})", "(default: False)", "torch.compile the model (off by default)"):
        assert shown in text, shown


def test_train_flags_build_the_config():
    _, cfg = _parse("train", "--out", "r", "--attention", "vanilla", "--threads", "3", "--no-augment",
                    "--no-sync-bn", "--attention-kwargs", '{"reduction": 8}', "--channels-last", "--epochs", "2",
                    "--optimizer", "adamw", "--limit-train", "100", "--data-root", "/d")
    assert cfg.attention is None and cfg.num_threads == 3 and not cfg.augment and not cfg.sync_bn
    assert cfg.attention_kwargs == {"reduction": 8} and cfg.channels_last and cfg.epochs == 2
    assert cfg.optimizer == "adamw" and cfg.limit_train == 100 and cfg.data_root == "/d"
    args, cfg = _parse("train", "--out", "r", "--attention", "none")
    assert cfg.attention is None and cfg.augment and cfg.sync_bn and not cfg.channels_last
    assert args.out == "r" and not args.resume and not args.no_progress
    from attnlab.train import TrainConfig

    assert cfg == TrainConfig()  # no flag: every default of the dataclass
    assert _parse("train", "--out", "r", "--attention", "cbam")[1].attention == "cbam"


def test_bench_train_reuses_the_train_flags_with_its_own_defaults():
    args, cfg = _parse("bench", "train", "--attention", "se")
    assert cfg.epochs == 20 and cfg.channels_last and cfg.attention == "se"
    assert args.out is None and args.run is None and not hasattr(args, "resume")
    assert not _parse("bench", "train", "--no-channels-last")[1].channels_last


def test_bad_choice_is_one_error_line(capsys):
    assert main(["train", "--out", "r", "--optimizer", "lamb"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("attnlab: error: argument --optimizer: invalid choice: 'lamb'")
    assert "'attnlab train --help'" in err


@pytest.mark.skipif(not _fmnist_available(), reason="Fashion-MNIST files missing")
def test_study_on_a_dataset_without_boxes_is_one_clear_error(tmp_path, capsys):
    assert main(["study", "--dataset", "fashion-mnist", "--out", str(tmp_path / "s"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'fashion-mnist' has no object boxes" in err and "cluttered-fashion-mnist" in err
