"""Issue 12's command-line items, one test each, through the real ``attnlab`` command where the user meets them:
one ``attnlab: error:`` line and exit code 2 for a user's mistake (bugs keep their traceback), ``attnlab:
interrupted`` and 130 on Ctrl-C, examples and defaults in every ``--help``."""

from __future__ import annotations

import argparse
import errno
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import attnlab
from attnlab.cli import COMMANDS, EXAMPLES, build_parser, main

SRC = str(Path(attnlab.__file__).parent.parent)  # this checkout's attnlab, for the commands run here


def _console_script() -> list[str]:
    """The installed ``attnlab`` script beside this Python (else ``python -m attnlab.cli``)."""
    script = Path(sys.executable).parent / "attnlab"
    return [str(script)] if script.exists() else [sys.executable, "-m", "attnlab.cli"]


def run_attnlab(*argv: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``attnlab ARGV`` as a user runs it."""
    env = {**os.environ, "PYTHONPATH": SRC}
    env.pop("ATTNLAB_TRACEBACK", None)
    return subprocess.run([*_console_script(), *argv], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


def _one_line(err: str) -> str:
    assert "Traceback" not in err, err
    assert err.count("\n") == 1 and err.startswith("attnlab: error: "), err
    return err


def _fake_command(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    """``attnlab list`` raises ``exc`` (the way a library call inside a command would)."""

    def run(args: argparse.Namespace) -> int:
        raise exc

    help_text, add, _ = COMMANDS["list"]
    monkeypatch.setitem(COMMANDS, "list", (help_text, add, run))


# --- Broken: a traceback for an ordinary mistake ------------------------------------------------------------------

def test_train_device_gpu_lists_the_devices(tmp_path):
    res = run_attnlab("train", "--out", "run", "--device", "gpu", "--epochs", "1", cwd=tmp_path)
    assert res.returncode == 2 and res.stdout == ""
    err = _one_line(res.stderr)
    assert "unknown device 'gpu'" in err and "auto, cpu, cuda, cuda:N" in err and "mps" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_train_device_cuda_without_cuda_is_one_line(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "run"), "--device", "cuda"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "CUDA is not available" in err and "--device cpu" in err


@pytest.mark.parametrize("flag", ["--out", "--runs"])
def test_study_out_or_runs_naming_a_file_is_refused_before_anything_is_printed(tmp_path, flag):
    (tmp_path / "FILE").write_text("x")
    argv = ["study", "--out", "report", flag, "FILE"] if flag == "--runs" else ["study", flag, "FILE"]
    res = run_attnlab(*argv, cwd=tmp_path)
    assert res.returncode == 2 and res.stdout == ""
    err = _one_line(res.stderr)
    assert f"({flag}) 'FILE' is a file, not a folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FILE"] and (tmp_path / "FILE").read_text() == "x"


def test_cam_n_zero_is_refused(tmp_path):
    res = run_attnlab("cam", "--checkpoint", "run", "--images", "fashion-mnist", "--out", "cam", "-n", "0",
                      cwd=tmp_path)
    assert res.returncode == 2
    assert "argument -n/--num-images: must be a whole number >= 1, got '0'" in _one_line(res.stderr)


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys):
    _fake_command(monkeypatch, KeyboardInterrupt())
    assert main(["list"]) == 130
    assert capsys.readouterr().err == "attnlab: interrupted\n"


def test_ctrl_c_with_a_message_says_how_to_continue(monkeypatch, capsys):
    class Interrupted(KeyboardInterrupt):
        pass

    message = "interrupted at epoch 3; `attnlab train --resume --out RUN ...` continues from epoch 2"
    _fake_command(monkeypatch, Interrupted(message))
    assert main(["list"]) == 130
    assert capsys.readouterr().err == f"attnlab: interrupted: {message}\n"


def _fashion_mnist() -> bool:
    from attnlab.data.fashion_mnist import fashion_mnist_root

    root = fashion_mnist_root()
    return any((root / f"train-images-idx3-ubyte{s}").exists() for s in ("", ".gz"))


@pytest.mark.skipif(not _fashion_mnist(), reason="Fashion-MNIST files missing")
def test_ctrl_c_during_train_prints_no_traceback(tmp_path):
    cmd = [*_console_script(), "train", "--out", "run", "--epochs", "3", "--limit-train", "20000",
           "--limit-test", "100", "--device", "cpu", "--threads", "1", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "run").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        time.sleep(1.0)  # inside the first epoch
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("attnlab: interrupted")


# --- Bugs keep their traceback; the file system's errors name the path --------------------------------------------

@pytest.mark.parametrize("bug", [TypeError("unsupported operand"), KeyError("weight"), RuntimeError("shape")])
def test_a_bug_keeps_its_traceback(monkeypatch, bug):
    _fake_command(monkeypatch, bug)
    with pytest.raises(type(bug)):
        main(["list"])


def test_traceback_of_a_user_error_on_request(monkeypatch, capsys):
    _fake_command(monkeypatch, ValueError("bad value"))
    monkeypatch.setenv("ATTNLAB_TRACEBACK", "1")
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.splitlines()[-1] == "attnlab: error: bad value"


@pytest.mark.parametrize("exc, words", [
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "out/runs/x"), ["'out/runs/x'", "is a file, not a folder"]),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "results"), ["'results'", "folder, not a file"]),
    (PermissionError(errno.EACCES, "Permission denied", "/root/x"), ["'/root/x'", "permission"]),
    (OSError(errno.ENOSPC, "No space left on device", "run/ck"), ["'run/ck'", "disk is full"]),
    (FileNotFoundError("no images under photos/"), ["no images under photos/"]),
    (FloatingPointError("loss became nan at epoch 1; lower --lr"), ["lower --lr"]),
    (ValueError("line one\n  line two"), ["line one line two"]),
])
def test_user_errors_of_every_kind_are_one_line(monkeypatch, capsys, exc, words):
    _fake_command(monkeypatch, exc)
    assert main(["list"]) == 2
    err = _one_line(capsys.readouterr().err)
    for word in words:
        assert word in err, (word, err)


def test_file_exists_on_a_file_says_it_is_a_file(monkeypatch, capsys, tmp_path):
    (tmp_path / "out").write_text("x")
    _fake_command(monkeypatch, FileExistsError(errno.EEXIST, "File exists", str(tmp_path / "out")))
    assert main(["list"]) == 2
    assert "out' is a file, not a folder" in _one_line(capsys.readouterr().err)


def test_out_of_memory_is_one_line(monkeypatch, capsys):
    _fake_command(monkeypatch, torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert main(["list"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "out of memory" in err and "--batch-size" in err


# --- Poor: silently changed runs, misleading suggestions, paths --------------------------------------------------

def test_zero_and_negative_limits_and_nan_lr_are_refused(tmp_path):
    for argv, words in [(["train", "--out", "r", "--limit-train", "0"], "--limit-train (limit_train) must be a whole "
                                                                         "number >= 1"),
                        (["eval", "--checkpoint", "r", "--limit", "-5"], "argument --limit: must be a whole number "
                                                                         ">= 1, got '-5'"),
                        (["train", "--out", "r", "--lr", "nan"], "--lr (lr) must be a finite number, got nan")]:
        res = run_attnlab(*argv, cwd=tmp_path)
        assert res.returncode == 2 and words in _one_line(res.stderr), res.stderr
    assert list(tmp_path.iterdir()) == []


def test_study_models_typo_suggests_vanilla_and_trains_nothing(tmp_path, capsys):
    assert main(["study", "--out", str(tmp_path / "s"), "--models", "se", "vanila", "--no-progress"]) == 2
    captured = capsys.readouterr()
    err = _one_line(captured.err)
    assert "unknown study model 'vanila'. Did you mean 'vanilla'?" in err and "Known study models: vanilla," in err
    assert captured.out == "" and not (tmp_path / "s").exists()


@pytest.mark.parametrize("command", ["train", "cam"])
def test_out_naming_a_file_says_it_is_a_file(tmp_path, command):
    (tmp_path / "FILE").write_text("x")
    argv = ["--out", "FILE"] if command == "train" else ["--checkpoint", "run", "--images", "fashion-mnist",
                                                           "--out", "FILE"]
    res = run_attnlab(command, *argv, cwd=tmp_path)
    assert res.returncode == 2 and res.stdout == ""
    err = _one_line(res.stderr)
    assert "(--out) 'FILE' is a file, not a folder" in err and "Errno" not in err


# --- Help: examples and defaults everywhere ----------------------------------------------------------------------

def _subparsers(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every (sub)command's parser by its name (``train``, ``bench models``, ...)."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[prefix + name] = sub
                found.update(_subparsers(sub, prefix + name + " "))
    return found


def test_every_command_has_examples_that_parse(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the GPU examples parse on any machine
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    parsers = _subparsers(build_parser())
    assert set(parsers) == set(EXAMPLES)
    for command, sub in parsers.items():
        text = sub.format_help()
        assert "examples:" in text, command
        for line in EXAMPLES[command]:
            assert line in text, (command, line)
            argv = shlex.split(line, comments=True)
            assert argv[0] == "attnlab" and " ".join(argv[1:]).startswith(command), line
            build_parser().parse_args(argv[1:])  # a real command line: it parses


def test_every_option_shows_its_default():
    for command, sub in _subparsers(build_parser()).items():
        formatter = sub._get_formatter()
        for action in sub._actions:
            if not action.option_strings or action.default is argparse.SUPPRESS or action.required:
                continue
            assert action.help, (command, action.option_strings)
            assert "default" in formatter._get_help_string(action), (command, action.option_strings)


def test_bench_help_says_where_the_results_go(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "modules", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "benchmarks/results/modules.md under the current directory" in text and "'' for no file" in text


def test_usage_errors_point_to_the_commands_help(capsys):
    assert main(["bench", "models", "--warmup", "x"]) == 2
    assert "(see 'attnlab bench models --help')" in _one_line(capsys.readouterr().err)
    assert main(["train", "--out", "r", "--epoch", "3", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus (see 'attnlab train --help')" in _one_line(capsys.readouterr().err)
