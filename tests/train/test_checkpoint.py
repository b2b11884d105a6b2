import json
import shutil
import subprocess
import sys

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


def _three_epochs(run):
    m, opt = _model_and_opt()
    for e in (1, 2, 3):
        save_checkpoint(run, model=m, model_config=CFG, epoch=e, optimizer=opt, keep_last=3)
    return run / "checkpoints"


def test_without_latest_json_the_newest_complete_checkpoint_is_the_latest(tmp_path):
    from attnlab.train import checkpoint_problem

    root = _three_epochs(tmp_path)
    (root / "latest.json").unlink()
    (root / "epoch_0003" / "model.safetensors").unlink()
    assert checkpoint_problem(root / "epoch_0003") == "model.safetensors missing"
    assert checkpoint_problem(root / "epoch_0002") is None
    assert latest_checkpoint(tmp_path) == root / "epoch_0002" == latest_checkpoint(root)
    assert load_checkpoint(tmp_path).epoch == 2
    (root / "epoch_0002" / "state.json").write_text("{half")
    assert checkpoint_problem(root / "epoch_0002").startswith("state.json unreadable")
    assert latest_checkpoint(tmp_path) == root / "epoch_0001"
    (root / "epoch_0001" / "state.json").write_text('{"format": "other"}')
    assert checkpoint_problem(root / "epoch_0001") == "state.json is not an attnlab checkpoint state"
    assert latest_checkpoint(tmp_path) is None


def test_a_complete_checkpoint_newer_than_latest_json_is_the_latest(tmp_path):
    root = _three_epochs(tmp_path)  # killed between writing epoch_0003 and pointing latest.json at it:
    (root / "latest.json").write_text(json.dumps({"epoch": 2, "dir": "epoch_0002"}))
    assert latest_checkpoint(tmp_path) == root / "epoch_0003"
    shutil.rmtree(root / "epoch_0003")
    assert latest_checkpoint(tmp_path) == root / "epoch_0002"


_KILLED = """
import os, sys
from attnlab.fileio import atomic_directory
with atomic_directory(sys.argv[1]):
    os._exit(3)  # killed while the directory is being written
"""


def test_stale_temporaries_of_killed_writes_are_removed_and_nothing_else(tmp_path):
    from attnlab.train import remove_stale_temporaries

    root = _three_epochs(tmp_path)
    for epoch in ("epoch_0004", "epoch_0004"):  # two killed writes, by attnlab.fileio itself
        assert subprocess.run([sys.executable, "-c", _KILLED, str(root / epoch)], timeout=120).returncode == 3
    (root / ".latest.json.0123abcd.tmp").write_text("{")
    (root / ".epoch_0002.89abcdef.old").mkdir()  # moved aside while epoch_0002 was written again
    (root / ".epoch_0009.89abcdef.old").mkdir()  # ...while epoch_0009 is missing: may hold the only copy
    (tmp_path / ".summary.json.0badcafe.tmp").write_text("{")
    keep = [root / ".epoch_0004.notes", root / ".epoch_0004.0123abcd.tmp.mine", root / "epoch_0004.0123abcd.tmp",
            tmp_path / ".notes.json.0123abcd.tmp", tmp_path / "sub" / ".summary.json.0badcafe.tmp"]
    for p in keep:
        p.parent.mkdir(exist_ok=True)
        p.write_text("mine")
    stale = sorted(p.name for p in [*root.glob(".epoch_0004.*.tmp"), *root.glob(".latest*"),
                                    root / ".epoch_0002.89abcdef.old", tmp_path / ".summary.json.0badcafe.tmp"])
    assert len(stale) == 5
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == stale and not any(p.exists() for p in removed)
    assert all(p.read_text() == "mine" for p in keep) and (root / ".epoch_0009.89abcdef.old").is_dir()
    assert load_checkpoint(tmp_path).epoch == 3
