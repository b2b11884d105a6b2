import json

import pytest
import torch

from attnlab.train import CheckpointError, TrainConfig, TrainingInterrupted, evaluate, load_model, train

BASE = dict(model="resnet20", dataset="synthetic", epochs=2, batch_size=16, lr=0.05, warmup_epochs=0.5, device="cpu",
            augment=False)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_train_writes_run_and_learns(tmp_path, bundle):
    res = train(TrainConfig(**BASE, attention="se"), tmp_path / "run", progress=False, data=bundle)
    run = tmp_path / "run"
    assert (run / "summary.json").is_file() and (run / "metrics.csv").is_file()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["model"]["attention"] == "se" and len(summary["confusion"]) == 4
    assert summary["test_acc"] == pytest.approx(res.final["test_acc"])
    loaded = load_model(run)
    ev = evaluate(loaded, bundle.test, 4)
    assert ev.accuracy == pytest.approx(summary["test_acc"])


@pytest.mark.parametrize("data_on_device", ["auto", "on"])
def test_resume_continues_exactly(tmp_path, bundle, monkeypatch, data_on_device):
    import attnlab.train.loop as loop

    cfg = TrainConfig(**{**BASE, "epochs": 3, "augment": True, "data_on_device": data_on_device})
    bundle.train_transform = lambda x, g: x + 0.01 * torch.rand(x.shape, generator=g)  # random augmentation
    straight = train(cfg, tmp_path / "a", progress=False, data=bundle)
    # The same run killed right after its epoch-1 checkpoint, then resumed: identical weights and history.
    real_save = loop.save_checkpoint

    def save_then_die(*args, **kwargs):
        real_save(*args, **kwargs)
        if kwargs["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
    with pytest.raises(TrainingInterrupted) as stopped:  # a KeyboardInterrupt that says how to continue
        train(cfg, tmp_path / "b", progress=False, data=bundle)
    monkeypatch.undo()
    assert isinstance(stopped.value, KeyboardInterrupt) and (stopped.value.epoch, stopped.value.finished) == (1, 1)
    assert str(stopped.value) == (f"interrupted after epoch 1; `attnlab train --resume --out {tmp_path / 'b'}` "
                                  "(same options) continues from the last finished epoch (1)")
    resumed = train(cfg, tmp_path / "b", resume=True, progress=False, data=bundle)
    assert [h["test_acc"] for h in resumed.history] == [h["test_acc"] for h in straight.history]
    a, b = _weights(straight.model), _weights(resumed.model)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=0, msg=k)


def test_existing_run_is_not_overwritten(tmp_path, bundle):
    train(TrainConfig(**{**BASE, "epochs": 1}), tmp_path / "r", progress=False, data=bundle)
    with pytest.raises(FileExistsError, match="--resume"):
        train(TrainConfig(**BASE), tmp_path / "r", progress=False, data=bundle)


def test_resume_with_another_model_is_refused(tmp_path, bundle):
    train(TrainConfig(**{**BASE, "epochs": 1}), tmp_path / "r", progress=False, data=bundle)
    refused = (r"attention None \(stored\) vs 'cbam' \(given\), epochs 1 \(stored\) vs 2 \(given\); resume it with "
               r"its own \(--attention none --epochs 1\)")
    with pytest.raises(CheckpointError, match=refused):
        train(TrainConfig(**{**BASE, "attention": "cbam"}), tmp_path / "r", resume=True, progress=False, data=bundle)


def test_resume_of_a_checkpoint_without_its_settings_still_checks_the_model(tmp_path, bundle):
    from attnlab import create_model
    from attnlab.train import save_checkpoint

    cfg = TrainConfig(**BASE).model_config(4, 1)
    save_checkpoint(tmp_path / "r", model=create_model("resnet20", num_classes=4, in_chans=1), model_config=cfg,
                    epoch=1)  # saved by other code than train(): no training settings stored
    with pytest.raises(CheckpointError, match="not of"):
        train(TrainConfig(**{**BASE, "attention": "se"}), tmp_path / "r", resume=True, progress=False, data=bundle)


def test_ctrl_c_before_any_checkpoint_says_no_epoch_finished(tmp_path, bundle, monkeypatch):
    import attnlab.train.epoch as epoch

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(epoch, "train_step", interrupted)
    with pytest.raises(TrainingInterrupted, match=r"^interrupted in epoch 1; no epoch finished yet: `attnlab train "
                                                  r"--resume --out .*` \(same options\) starts the run afresh$"):
        train(TrainConfig(**BASE), tmp_path / "r", progress=False, data=bundle)


def test_diverging_loss_is_a_clear_error_and_saves_nothing(tmp_path, bundle):
    bundle.train.images = bundle.train.images.float() * float("nan")
    with pytest.raises(FloatingPointError, match="Lower --lr"):
        train(TrainConfig(**BASE), tmp_path / "nan", progress=False, data=bundle)
    assert not (tmp_path / "nan" / "checkpoints").exists()


def _nan_from_call(first_bad: int):
    """A training transform that makes every batch NaN from its ``first_bad``-th call on (4 batches an epoch)."""
    calls = [0]

    def transform(x, generator):
        calls[0] += 1
        return x * float("nan") if calls[0] >= first_bad else x

    return transform


@pytest.mark.parametrize(("data_on_device", "read_every", "where"), [
    ("auto", None, "at step 2 of epoch 2"),  # on the CPU every step is read: the exact step
    ("on", float("inf"), "between step 1 and 4 of epoch 2"),  # read only at the end of the epoch: the range
])
def test_a_nan_stops_the_run_before_its_epoch_is_saved_and_names_the_steps(tmp_path, bundle, monkeypatch,
                                                                           data_on_device, read_every, where):
    import attnlab.train.epoch as epoch

    if read_every is not None:
        monkeypatch.setattr(epoch, "read_interval", lambda device: read_every)
    bundle.train_transform = _nan_from_call(6)  # epoch 2, step 2
    cfg = TrainConfig(**{**BASE, "augment": True, "data_on_device": data_on_device})
    with pytest.raises(FloatingPointError, match=f"became NaN or infinite {where}; nothing was saved for this "
                                                 r"epoch\. Lower --lr \(now 0\.05\) or check the data"):
        train(cfg, tmp_path / "r", progress=False, data=bundle)
    run = tmp_path / "r"
    assert [p.name for p in (run / "checkpoints").iterdir() if p.is_dir()] == ["epoch_0001"]
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_nan_on_a_gpu_stops_the_run_before_its_epoch_is_saved(tmp_path, bundle):
    bundle.train_transform = _nan_from_call(6)  # epoch 2, step 2
    cfg = TrainConfig(**{**BASE, "augment": True, "device": "cuda", "data_on_device": "on"})
    where = r"(at step 2|between step \d and 4) of epoch 2"  # the range depends on when the reads fell
    with pytest.raises(FloatingPointError, match=f"became NaN or infinite {where}"):
        train(cfg, tmp_path / "r", progress=False, data=bundle)
    assert [p.name for p in (tmp_path / "r" / "checkpoints").iterdir() if p.is_dir()] == ["epoch_0001"]


def test_config_validation():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="amp"):
        TrainConfig(amp="fp8")


def test_resume_continues_from_a_checkpoint_newer_than_latest_json(tmp_path, bundle, capsys):
    import hashlib

    cfg = TrainConfig(**BASE)
    train(cfg, tmp_path / "r", progress=False, data=bundle)
    root = tmp_path / "r" / "checkpoints"
    (root / "latest.json").write_text(json.dumps({"epoch": 1, "dir": "epoch_0001"}))  # killed before the update
    newest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (root / "epoch_0002").iterdir()}
    capsys.readouterr()
    res = train(cfg, tmp_path / "r", resume=True, progress=False, data=bundle)
    out = capsys.readouterr().out
    assert "latest.json points at the older epoch_0001; resuming from the newest complete checkpoint, epoch_0002" in out
    assert "all 2 epochs already done" in out and [h["epoch"] for h in res.history] == [1, 2]
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (root / "epoch_0002").iterdir()} == newest
