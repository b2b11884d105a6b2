"""train_runs: runs in parallel processes end bit for bit as serial ones; finished runs are reused, unfinished ones
resume; a failing run is one error naming it, Ctrl-C stops every child; the settings are checked up front."""

import multiprocessing
import os
import shutil
import signal
import threading
import time
from dataclasses import replace

import pytest
import torch

from attnlab.study.executor import (
    RunJob,
    StudyInterrupted,
    TaggedStream,
    check_executor,
    threads_per_run,
    train_runs,
)
from attnlab.study.executor_local import local_slots, place
from attnlab.train import TrainConfig, load_model


@pytest.fixture
def tiny_root(tmp_path, rectangle_fashion):
    return rectangle_fashion(tmp_path / "fm", 96, 32)


def _jobs(root, folder, *, epochs=1, lr=0.05, variants=((None, 0), ("se", 1))):
    cfg = TrainConfig(dataset="fashion-mnist", data_root=str(root), epochs=epochs, batch_size=32, lr=lr,
                      limit_train=96, limit_test=32, device="cpu")
    return [RunJob(replace(cfg, attention=a, seed=s), folder / f"{a or 'vanilla'}-seed{s}",
                   f"[{a or 'vanilla'} seed {s}]") for a, s in variants]


def _same_weights(a, b) -> bool:
    sa, sb = load_model(a).state_dict(), load_model(b).state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _without_times(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in ("train_seconds", "seconds_per_epoch")}


def test_runs_in_two_processes_end_bit_for_bit_as_serial_runs_and_are_then_reused(tiny_root, tmp_path):
    serial_jobs, parallel_jobs = _jobs(tiny_root, tmp_path / "serial"), _jobs(tiny_root, tmp_path / "parallel")
    serial = train_runs(serial_jobs, jobs_at_once=1, progress=False, log=lambda _: None)
    lines: list[str] = []
    parallel = train_runs(parallel_jobs, jobs_at_once=2, progress=False, log=lines.append)
    assert "2 at a time in separate processes" in lines[0]
    for s, p in zip(serial_jobs, parallel_jobs, strict=True):
        assert _same_weights(s.run_dir, p.run_dir), s.tag
        assert _without_times(serial[s.run_dir]) == _without_times(parallel[p.run_dir])
    assert multiprocessing.active_children() == []
    lines.clear()
    assert train_runs(parallel_jobs, jobs_at_once=2, log=lines.append) == parallel
    assert lines == [f"{job.tag} reusing the finished run in {job.run_dir}" for job in parallel_jobs]


def test_an_unfinished_run_resumes_from_its_last_checkpoint_and_ends_as_an_uninterrupted_one(tiny_root, tmp_path):
    [whole] = _jobs(tiny_root, tmp_path / "whole", epochs=2, variants=((None, 0),))
    train_runs([whole], progress=False, log=lambda _: None)
    cut = replace(whole, run_dir=tmp_path / "cut" / "vanilla-seed0")
    shutil.copytree(whole.run_dir, cut.run_dir)  # as a run stopped after epoch 1 leaves it
    shutil.rmtree(cut.run_dir / "checkpoints" / "epoch_0002")
    (cut.run_dir / "checkpoints" / "latest.json").unlink()
    (cut.run_dir / "summary.json").unlink()
    lines: list[str] = []
    summary = train_runs([cut], progress=False, log=lines.append)[cut.run_dir]
    assert lines[0].startswith(f"{cut.tag} resuming in {cut.run_dir}")
    assert summary["epochs"] == 2 and _same_weights(whole.run_dir, cut.run_dir)


@pytest.mark.parametrize("at_once", [1, 2])
def test_a_failing_run_is_one_error_naming_it_and_leaves_no_process(tiny_root, tmp_path, at_once):
    jobs = _jobs(tiny_root, tmp_path, variants=((None, 0),)) + _jobs(tiny_root, tmp_path, lr=1e30,
                                                                      variants=(("se", 1),))
    named = r"run \[se seed 1\] in .*se-seed1 failed: the training loss became NaN"
    with pytest.raises(FloatingPointError, match=named) as info:
        train_runs(jobs, jobs_at_once=at_once, progress=False, log=lambda _: None)
    assert "re-run the same command" in str(info.value)
    assert multiprocessing.active_children() == []


def test_ctrl_c_stops_every_child_and_says_how_to_continue(tiny_root, tmp_path):
    jobs = _jobs(tiny_root, tmp_path, epochs=50)
    threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGINT)).start()
    with pytest.raises(StudyInterrupted) as info:
        train_runs(jobs, jobs_at_once=2, progress=False, log=lambda _: None)
    assert "[vanilla seed 0]" in str(info.value) and "[se seed 1]" in str(info.value)
    assert "re-run the same command to continue" in str(info.value)
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("kwargs, words", [
    ({"executor": "slurm"}, "unknown study executor 'slurm'"),
    ({"jobs_at_once": 0}, "--jobs must be a whole number >= 1, got 0"),
    ({"address": "10.0.0.5:6379"}, "--address 10.0.0.5:6379 names a Ray cluster: use it with --executor ray"),
])
def test_bad_settings_are_refused_before_anything_trains(tmp_path, kwargs, words):
    with pytest.raises(ValueError, match=words):
        train_runs(_jobs(tmp_path, tmp_path), **kwargs)
    assert not any(tmp_path.iterdir())


def test_two_runs_in_one_folder_are_refused(tmp_path):
    job = _jobs(tmp_path, tmp_path, variants=((None, 0),))[0]
    with pytest.raises(ValueError, match="same folder"):
        train_runs([job, replace(job, tag="[again]")])


def test_each_cpu_run_gets_a_thread_count_that_does_not_depend_on_jobs_at_once(tmp_path):
    assert threads_per_run(5, cores=2) == 1 and threads_per_run(1, cores=2) == 2 and threads_per_run(4, cores=16) == 4
    jobs = _jobs(tmp_path, tmp_path) * 3
    assert local_slots(jobs, None, threads=1) == ["cpu"] * min(6, os.cpu_count() or 1)
    assert local_slots(jobs, 4, threads=1) == ["cpu"] * 4 and local_slots(jobs[:2], 8, threads=1) == ["cpu"] * 2
    assert place("cpu", "cuda:1") == "cpu" and place("cuda:2", "cuda:1") == "cuda:2" and place("cuda", 3) == "cuda:3"


def test_check_executor_names_the_executor():
    assert check_executor(" Local ") == "local"


def test_tagged_stream_prefixes_each_line_and_is_no_terminal(capsys):
    import sys

    stream = TaggedStream("[se seed 1]", sys.stdout)
    stream.write("epoch 1/2: a\nepoch 2")
    stream.write("/2: b\rlast")
    stream.flush()
    assert capsys.readouterr().out == "[se seed 1] epoch 1/2: a\n[se seed 1] epoch 2/2: b\n[se seed 1] last\n"
    assert not stream.isatty()


def test_a_child_ends_when_the_study_process_dies(tmp_path):
    """The watchdog of a child: its parent gone, it exits (no orphan keeps training)."""
    ctx = multiprocessing.get_context("spawn")
    from attnlab.study import executor_local

    child = ctx.Process(target=executor_local._end_with, args=(os.getppid() + 10**6,))  # not its parent: ends
    t0 = time.monotonic()
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 1 and time.monotonic() - t0 < 60


@pytest.mark.parametrize(("executor", "device", "expected"), [("ray", None, "auto"), ("Ray", "cpu", "cpu"),
                                                              ("local", None, "cpu")])
def test_a_ray_study_leaves_the_device_of_its_runs_to_the_workers(monkeypatch, tmp_path, executor, device, expected):
    from attnlab.study import get_preset, runner

    seen: list = []

    class Planned(Exception):
        pass

    def capture(jobs, **kw):
        seen.extend(jobs)
        raise Planned

    monkeypatch.setattr(runner, "train_runs", capture)
    preset = get_preset("quick").with_overrides(attentions=(None,), clutter_levels=(0,))
    with pytest.raises(Planned):
        runner.run_study(preset, tmp_path / "out", device=device, executor=executor, log=lambda _: None)
    assert seen and {job.config.device for job in seen} == {expected}
