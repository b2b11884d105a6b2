"""``attnlab train`` as a user meets it, each test running the real command in a subprocess on a tiny
Fashion-MNIST folder: a resume refuses changed settings and writes nothing, says when there is nothing to
resume, finds its checkpoint without ``latest.json`` and never overwrites another; stale temporaries are
cleared; Ctrl-C says how to continue; the start-up line; a terminal of width 0; the metrics columns."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import attnlab
from attnlab.train import METRIC_COLUMNS

BASE = {"--dataset": "fashion-mnist", "--limit-train": "64", "--limit-test": "32", "--epochs": "2",
        "--batch-size": "32", "--device": "cpu", "--threads": "1"}


def _command(out: Path, root: Path, *extra: str, over: dict[str, str] | None = None,
             progress: bool = False) -> list[str]:
    """``attnlab train`` into ``out`` on the data in ``root``: :data:`BASE`, then ``over``, then ``extra``."""
    options = {**BASE, "--data-root": str(root), **(over or {})}
    return [sys.executable, "-m", "attnlab.cli", "train", "--out", str(out), *(() if progress else ("--no-progress",)),
            *[text for pair in options.items() for text in pair], *extra]


def attnlab_train(out: Path, root: Path, *extra: str,
                  over: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(_command(out, root, *extra, over=over), capture_output=True, text=True, timeout=600)


def _ok(res: subprocess.CompletedProcess) -> None:
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr


def _refused(res: subprocess.CompletedProcess, *words: str) -> str:
    """The one error line of a refused command, which holds every one of ``words``."""
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("attnlab: error: "), res.stderr
    for word in words:
        assert word in lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder``: relative path -> the SHA-256 of a file's bytes, or "dir"."""
    return {str(p.relative_to(folder)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))}


def _metrics(run: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, fashion_root) -> tuple[Path, subprocess.CompletedProcess]:
    """A finished 2-epoch run made by ``attnlab train``, and what the command printed."""
    out = tmp_path_factory.mktemp("finished") / "run"
    res = attnlab_train(out, fashion_root)
    _ok(res)
    return out, res


@pytest.fixture
def run(finished, tmp_path) -> Path:
    """A copy of the finished run, for a test to change."""
    return Path(shutil.copytree(finished[0], tmp_path / "run"))


def test_the_start_up_line_says_what_trains_on_what(finished):
    _, res = finished
    params = sum(p.numel() for p in attnlab.create_model("resnet20", num_classes=10, in_chans=1).parameters())
    lines = res.stdout.splitlines()
    assert lines[0] == (f"training resnet20 (no attention), {params:,} parameters, on fashion-mnist: 64 train / "
                        "32 test images; device cpu, AMP off, batch 32, 2 epochs, channels_last off, batches made "
                        "on the host, threads 1")
    assert lines[1].startswith("epoch 1/2: ") and "nothing to resume" not in res.stdout


def test_a_resume_with_changed_settings_is_refused_and_writes_nothing(run, fashion_root):
    before = snapshot(run)
    res = attnlab_train(run, fashion_root, "--resume", "--no-augment",
                        over={"--lr": "0.05", "--limit-train": "32", "--epochs": "3", "--dataset": "cifar10"})
    _refused(res, f"cannot resume {run} with other settings than it was trained with",
             "dataset 'fashion-mnist' (stored) vs 'cifar10' (given)", "epochs 2 (stored) vs 3 (given)",
             "lr 0.1 (stored) vs 0.05 (given)", "augment True (stored) vs False (given)",
             "limit_train 64 (stored) vs 32 (given)",
             "resume it with its own (--dataset fashion-mnist --epochs 2 --lr 0.1 without --no-augment "
             "--limit-train 64), or train into another --out")
    assert snapshot(run) == before


def test_a_resume_may_change_what_cannot_change_the_result(run, fashion_root):
    checkpoints = snapshot(run / "checkpoints")
    res = attnlab_train(run, fashion_root, "--resume", "--channels-last", over={"--threads": "2", "--device": "auto"})
    _ok(res)
    assert f"resuming {run} after epoch 2" in res.stdout and "all 2 epochs already done" in res.stdout
    assert json.loads((run / "config.json").read_text())["train"]["num_threads"] == 2
    assert snapshot(run / "checkpoints") == checkpoints  # a finished run: nothing to write again


def test_resume_with_nothing_to_resume_says_it_starts_a_new_run(tmp_path, fashion_root):
    out = tmp_path / "new"
    res = attnlab_train(out, fashion_root, "--resume")
    _ok(res)
    assert res.stdout.splitlines()[0] == f"nothing to resume in {out}: starting a new run"
    assert json.loads((out / "checkpoints" / "latest.json").read_text())["epoch"] == 2


def test_without_latest_json_resume_continues_the_newest_complete_checkpoint(run, finished, fashion_root):
    shutil.rmtree(run / "checkpoints" / "epoch_0002")
    (run / "checkpoints" / "latest.json").unlink()
    first = snapshot(run / "checkpoints" / "epoch_0001")
    res = attnlab_train(run, fashion_root, "--resume")
    _ok(res)
    assert "latest.json is missing; resuming from the newest complete checkpoint, epoch_0001" in res.stdout
    assert f"resuming {run} after epoch 1 (epoch_0001)" in res.stdout
    assert snapshot(run / "checkpoints" / "epoch_0001") == first
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["dir"] == "epoch_0002"
    # the resumed run's metrics: the same columns in the same order as a fresh run's, and the same figures
    fresh_header, fresh = _metrics(finished[0])
    header, resumed = _metrics(run)
    assert header == fresh_header == list(METRIC_COLUMNS)
    exact = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr")
    assert [[r[k] for k in exact] for r in resumed] == [[r[k] for k in exact] for r in fresh]
    assert [list(json.loads(line)) for line in (run / "metrics.jsonl").read_text().splitlines()] == \
        [list(METRIC_COLUMNS)] * 2


def test_a_new_run_never_overwrites_checkpoints_that_have_no_latest_json(run, fashion_root):
    (run / "checkpoints" / "latest.json").unlink()
    before = snapshot(run)
    _refused(attnlab_train(run, fashion_root), f"{run} already holds a checkpoint (epoch_0002); pass --resume")
    assert snapshot(run) == before


def test_a_resume_never_overwrites_an_incomplete_checkpoint(run, fashion_root):
    (run / "checkpoints" / "latest.json").unlink()
    (run / "checkpoints" / "epoch_0002" / "optimizer.safetensors").unlink()
    before = snapshot(run)
    _refused(attnlab_train(run, fashion_root, "--resume"),
             f"cannot resume from {run / 'checkpoints' / 'epoch_0001'}: the newer "
             f"{run / 'checkpoints' / 'epoch_0002'} is incomplete (optimizer.safetensors missing) and resuming would "
             "overwrite it; delete it")
    assert snapshot(run) == before


@pytest.mark.parametrize("under", ["", "run"])
def test_an_out_that_is_a_file_is_one_clear_error(tmp_path, fashion_root, under):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    _refused(attnlab_train(notes / under if under else notes, fashion_root, "--resume"),
             f"{notes}' is a file, not a folder")
    assert notes.read_text() == "mine"


_KILLED_MIDWAY = """
import os, sys
from attnlab.fileio import atomic_directory, atomic_open
with atomic_directory(sys.argv[1]) as d:
    (d / "model.safetensors").write_bytes(b"half")
    with atomic_open(sys.argv[2], "w") as f:
        f.write("epoch,")
        os._exit(9)  # killed in the middle of both writes
"""


def test_what_killed_writes_left_is_cleared_on_the_next_start(run, fashion_root):
    checkpoints = run / "checkpoints"
    killed = subprocess.run([sys.executable, "-c", _KILLED_MIDWAY, str(checkpoints / "epoch_0003"),
                             str(run / "metrics.csv")], timeout=300)
    assert killed.returncode == 9
    left = sorted(p.name for p in [*checkpoints.glob(".epoch_0003.*"), *run.glob(".metrics.csv.*")])
    assert len(left) == 2
    keep = [checkpoints / ".epoch_0003.notes", checkpoints / "notes.tmp", run / ".metrics.csv.mine"]
    for p in keep:
        p.write_text("not attnlab's")
    res = attnlab_train(run, fashion_root, "--resume")
    _ok(res)
    assert f"removed 2 temporary file(s) an interrupted write left in {run}: " in res.stdout
    assert all(name in res.stdout for name in left)
    assert not [*checkpoints.glob(".epoch_0003.*.tmp"), *run.glob(".metrics.csv.*.tmp")]
    assert all(p.read_text() == "not attnlab's" for p in keep)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} did not appear in {timeout}s"
        time.sleep(0.01)


def test_ctrl_c_says_how_to_continue_and_resume_finishes(tmp_path, fashion_root):
    out = tmp_path / "run"
    options = {"--epochs": "4", "--batch-size": "8"}  # 8 steps an epoch: the signal lands inside an epoch
    proc = subprocess.Popen(_command(out, fashion_root, over=options), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(out / "checkpoints" / "latest.json", proc, timeout=300)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    found = re.search(r"interrupted (in|after) epoch (\d); `attnlab train --resume --out (\S+)` \(same options\) "
                      r"continues from the last finished epoch \((\d)\)", err)
    assert found, err
    epoch, finished = int(found.group(2)), int(found.group(4))
    assert found.group(3) == str(out) and finished >= 1
    assert epoch == (finished + 1 if found.group(1) == "in" else finished)  # "after": between two epochs
    assert err.strip().splitlines() == [f"attnlab: interrupted: {found.group(0)}"]
    res = subprocess.run(_command(out, fashion_root, "--resume", over=options), capture_output=True, text=True,
                         timeout=600)
    _ok(res)
    assert f"resuming {out} after epoch {finished}" in res.stdout
    assert [int(r["epoch"]) for r in _metrics(out)[1]] == [1, 2, 3, 4]


def _in_a_pty(args: list[str], columns: str, timeout: float = 600) -> tuple[int, str]:
    """Run ``args`` with stdout and stderr on a new pseudo-terminal (whose size is 0 x 0, as on some CI
    machines) and ``COLUMNS=columns``: (exit code, everything it wrote)."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower,
                            env={**os.environ, "COLUMNS": columns})
    os.close(follower)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([leader], [], [], 1.0)[0]:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the terminal is closed: the command has ended
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")
    finally:
        proc.kill()
        os.close(leader)


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_a_terminal_of_width_zero_gets_plain_lines(tmp_path, fashion_root):
    leader, follower = os.openpty()
    try:
        assert os.get_terminal_size(follower).columns == 0  # what a new pseudo-terminal reports
    finally:
        os.close(leader)
        os.close(follower)
    code, text = _in_a_pty(_command(tmp_path / "zero", fashion_root, progress=True), columns="0")
    assert code == 0 and "Traceback" not in text
    lines = [line.strip("\r") for line in text.split("\n")]
    assert lines[0].startswith("training resnet20 (no attention)")
    assert [line[:11] for line in lines if line.startswith("epoch ")] == ["epoch 1/2: ", "epoch 2/2: "]
    assert lines[-2].startswith("done: test accuracy") and "%|" not in text  # no bar drawn at width 0
    # the same terminal with a width in COLUMNS draws the bar at that width
    code, text = _in_a_pty(_command(tmp_path / "wide", fashion_root, progress=True), columns="100")
    assert code == 0 and "epoch 1/2:" in text and "%|" in text
