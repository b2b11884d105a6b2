"""A study reuses a finished run when nothing that changes a result differs: the check a resume makes."""

import json
from dataclasses import replace

from attnlab.study.executor import reusable as _reusable
from attnlab.train import TrainConfig


def _finished_run(run, cfg):
    """A run folder as a finished ``train`` leaves it, as far as the reuse check reads it."""
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "latest.json").write_text(json.dumps({"epoch": 1, "dir": "epoch_0001"}))
    (run / "config.json").write_text(json.dumps({"train": cfg.to_dict()}))
    (run / "summary.json").write_text("{}")
    return run


def test_a_finished_run_is_reused_unless_a_setting_that_changes_results_differs(tmp_path):
    cfg = TrainConfig(attention="se", epochs=2, limit_train=64, device="cpu")
    run = _finished_run(tmp_path / "run", cfg)
    assert _reusable(run, cfg)
    assert _reusable(run, replace(cfg, device="cuda", num_threads=4, channels_last=True, compile=True))
    for changed in ({"lr": 0.05}, {"limit_train": None}, {"seed": 1}, {"amp": "bf16"}, {"augment": False}):
        assert not _reusable(run, replace(cfg, **changed)), changed
    (run / "summary.json").unlink()  # not finished
    assert not _reusable(run, cfg)
