import json

import pytest
import torch
from torch import nn

from attnlab.train import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from attnlab.train.checkpoint import restore_optimizer

CFG = {"name": "toy", "attention": None, "attention_kwargs": {}, "num_classes": 2, "in_chans": 1}


def _model_and_opt():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m(torch.randn(5, 4)).sum().backward()
    opt.step()
    return m, opt


def test_save_load_round_trip(tmp_path):
    m, opt = _model_and_opt()
    save_checkpoint(tmp_path, model=m, model_config=CFG, epoch=1, optimizer=opt, extra={"history": [1]})
    ck = load_checkpoint(tmp_path)
    assert ck.epoch == 1 and ck.model_config == CFG and ck.state["extra"] == {"history": [1]}
    for k, v in m.state_dict().items():
        assert torch.equal(ck.model_state[k], v)
    m2, opt2 = _model_and_opt()
    opt2.state.clear()
    restore_optimizer(opt2, ck)
    for p, q in zip(m.parameters(), m2.parameters(), strict=True):
        assert torch.equal(opt.state[p]["momentum_buffer"], opt2.state[q]["momentum_buffer"])


def test_latest_pointer_and_pruning(tmp_path):
    m, opt = _model_and_opt()
    for e in (1, 2, 3):
        save_checkpoint(tmp_path, model=m, model_config=CFG, epoch=e, optimizer=opt, keep_last=2)
    dirs = sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.is_dir())
    assert dirs == ["epoch_0002", "epoch_0003"]
    assert latest_checkpoint(tmp_path).name == "epoch_0003"
    assert load_checkpoint(tmp_path).epoch == 3


def test_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    m, opt = _model_and_opt()
    save_checkpoint(tmp_path, model=m, model_config=CFG, epoch=1, optimizer=opt)
    import attnlab.train.checkpoint as ck_mod

    def crash(*a, **k):
        raise KeyboardInterrupt  # killed mid-save

    monkeypatch.setattr(ck_mod, "_json_atomic", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, model=m, model_config=CFG, epoch=2, optimizer=opt)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path).epoch == 1
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]


def test_corrupt_and_missing_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nothing")
    m, opt = _model_and_opt()
    d = save_checkpoint(tmp_path, model=m, model_config=CFG, epoch=1, optimizer=opt)
    (d / "model.safetensors").write_bytes(b"\x00" * 3)
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_checkpoint(tmp_path)
    (d / "state.json").write_text("{broken")
    with pytest.raises(CheckpointError, match="corrupt checkpoint state"):
        load_checkpoint(tmp_path)
    (d / "state.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(CheckpointError, match="not an attnlab checkpoint"):
        load_checkpoint(tmp_path)


def test_the_same_epoch_written_again_replaces_it_whole(tmp_path):
    m, opt = _model_and_opt()
    save_checkpoint(tmp_path, model=m, model_config=CFG, epoch=1, optimizer=opt, extra={"n": 1})
    with torch.no_grad():
        m[0].weight.add_(1)
    save_checkpoint(tmp_path, model=m, model_config=CFG, epoch=1, optimizer=opt, extra={"n": 2})  # after a resume
    ck = load_checkpoint(tmp_path)
    assert ck.state["extra"] == {"n": 2} and torch.equal(ck.model_state["0.weight"], m[0].weight)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["epoch_0001", "latest.json"]


def test_safetensors_names_stay_public_in_train():
    import attnlab.fileio
    import attnlab.train

    for name in ("SafetensorsError", "load_safetensors", "save_safetensors"):
        assert getattr(attnlab.train, name) is getattr(attnlab.fileio, name) and name in attnlab.train.__all__
