"""Every subcommand with bad arguments of each kind (missing path, a file for a folder, zero, negative and NaN
numbers, unknown names) ends in one line ``attnlab: error: ...`` on stderr, exit code 2, no traceback, and
nothing on stdout: each is refused before any work starts.

Most run in-process through :func:`attnlab.cli.main`; a few through the real ``attnlab`` console script.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import attnlab
from attnlab.cli import main

MISSING = "{tmp}/missing"  # a path that does not exist
FILE = "{tmp}/FILE"  # a file where a folder is wanted
FOLDER = "{tmp}/folder"  # a folder where a file is wanted

#: (argv, words the message must hold). ``{tmp}`` is the test's temporary folder.
CASES: list[tuple[list[str], list[str]]] = [
    # attnlab (no command, unknown command)
    ([], ["required", "COMMAND"]),
    (["trian"], ["invalid choice", "'trian'", "did you mean 'train'"]),
    # list
    (["list", "--channels", "0"], ["--channels", ">= 1", "'0'"]),
    (["list", "--channels", "-3"], ["--channels", "'-3'"]),
    (["list", "--channels", "many"], ["--channels", "'many'"]),
    (["list", "--bogus"], ["unrecognized arguments: --bogus", "attnlab list --help"]),
    # bench modules
    (["bench"], ["required", "TARGET"]),
    (["bench", "modules", "--batch", "0"], ["--batch", ">= 1"]),
    (["bench", "modules", "--repeats", "-1"], ["--repeats", "'-1'"]),
    (["bench", "modules", "--shapes", "0x28x28"], ["--shapes", ">= 1"]),
    (["bench", "modules", "--modules", "sse"], ["unknown attention module 'sse'", "'se'"]),
    (["bench", "modules", "--device", "gpu"], ["--device", "'gpu'", "cuda"]),
    (["bench", "modules", "--out", FOLDER], ["is a folder, not a file", "folder"]),
    (["bench", "modules", "--out", FILE + "/modules.md"], ["is a file, not a folder", "FILE"]),
    # bench models
    (["bench", "models", "--models", "resnet21"], ["unknown model 'resnet21'", "'resnet20'"]),
    (["bench", "models", "--attention", "cmab"], ["unknown attention module 'cmab'", "'cbam'"]),
    (["bench", "models", "--infer-batch", "0"], ["--infer-batch", ">= 1"]),
    (["bench", "models", "--warmup", "-1"], ["--warmup", ">= 0"]),
    # bench cam
    (["bench", "cam", "--methods", "gradcamm"], ["unknown CAM method 'gradcamm'", "'gradcam'"]),
    (["bench", "cam", "--configs", "resnet20:0:layer3:16"], ["SIZE", ">= 1"]),
    (["bench", "cam", "--configs", "resnet21:64:layer3:16"], ["unknown model 'resnet21'"]),
    (["bench", "cam", "--top-k-fraction", "nan"], ["--top-k-fraction", "'nan'"]),
    (["bench", "cam", "--top-k-fraction", "0"], ["--top-k-fraction", "(0, 1]"]),
    (["bench", "cam", "--score-batch-size", "0"], ["--score-batch-size", ">= 1"]),
    # bench loop
    (["bench", "loop", "--batch", "128,0"], ["--batch", ">= 1", "'0'"]),
    (["bench", "loop", "--images", "-5"], ["--images", "'-5'"]),
    (["bench", "loop", "--attention", "none,cmab"], ["unknown attention module 'cmab'", "'cbam'"]),
    (["bench", "loop", "--amp", "fp16", "--device", "cpu"], ["fp16 mixed precision needs CUDA"]),
    (["bench", "loop", "--out", FOLDER], ["is a folder, not a file"]),
    # bench train
    (["bench", "train", "--run", FILE], ["--run", "is a file, not a folder"]),
    (["bench", "train", "--out", FOLDER], ["--out", "is a folder, not a file"]),
    (["bench", "train", "--epochs", "0"], ["--epochs", ">= 1", "got 0"]),
    (["bench", "train", "--lr", "nan"], ["--lr", "finite", "nan"]),
    (["bench", "train", "--attention", "sse"], ["unknown attention module 'sse'", "'se'"]),
    # bench data
    (["bench", "data", "--n", "0"], ["--n", ">= 1"]),
    (["bench", "data", "--canvas", "-64"], ["--canvas", "'-64'"]),
    (["bench", "data", "--out", FOLDER], ["is a folder, not a file"]),
    (["bench", "data", "--data-root", MISSING, "--out", ""], ["missing", "images-idx3-ubyte"]),
    # bench jobs
    (["bench", "jobs", "--rounds", "0"], ["--rounds", ">= 1"]),
    (["bench", "jobs", "--models", "vanila", "--out", ""], ["unknown study model 'vanila'", "'vanilla'"]),
    (["bench", "jobs", "--out", FOLDER], ["is a folder, not a file"]),
    (["bench", "scoring", "--n", "0"], ["--n", ">= 1"]),
    (["bench", "scoring", "--size", "-64"], ["--size", "'-64'"]),
    (["bench", "scoring", "--out", FOLDER], ["is a folder, not a file"]),
    (["bench", "scoring", "--reference", MISSING, "--out", ""], ["no reference implementation at"]),
    # cam
    (["cam", "--checkpoint", MISSING, "--images", "fashion-mnist", "--out", "{tmp}/c", "-n", "0"],
     ["--num-images", ">= 1", "'0'"]),
    (["cam", "--checkpoint", MISSING, "--images", "fashion-mnist", "--out", "{tmp}/c", "-n", "-2"], ["'-2'"]),
    (["cam", "--checkpoint", MISSING, "--images", "fashion-mnist", "--out", FILE], ["--out", "is a file"]),
    (["cam", "--checkpoint", MISSING, "--images", "fashion-mnist", "--out", "{tmp}/c"], ["no checkpoint", "missing"]),
    (["cam", "--checkpoint", MISSING, "--images", "x", "--out", "{tmp}/c", "--method", "gradcma"],
     ["unknown CAM method 'gradcma'", "'gradcam'"]),
    (["cam", "--checkpoint", MISSING, "--images", "x", "--out", "{tmp}/c", "--device", "gpu"], ["'gpu'", "cuda"]),
    (["cam", "--checkpoint", MISSING, "--images", "x", "--out", "{tmp}/c", "--target", "truth"],
     ["--target", "invalid choice"]),
    (["cam", "--images", "x", "--out", "{tmp}/c"], ["required", "--checkpoint"]),
    # train
    (["train"], ["required", "--out"]),
    (["train", "--out", "{tmp}/r", "--device", "gpu"], ["unknown device 'gpu'", "auto, cpu, cuda, cuda:N", "mps"]),
    (["train", "--out", "{tmp}/r", "--device", "cuda:x"], ["unknown device 'cuda:x'"]),
    (["train", "--out", FILE], ["--out", "'", "FILE", "is a file, not a folder"]),
    (["train", "--out", FILE + "/run"], ["FILE", "is a file, not a folder"]),
    (["train", "--out", "{tmp}/r", "--lr", "nan"], ["--lr", "finite", "nan"]),
    (["train", "--out", "{tmp}/r", "--lr", "inf"], ["--lr", "finite", "inf"]),
    (["train", "--out", "{tmp}/r", "--lr", "-0.1"], ["--lr", "> 0", "-0.1"]),
    (["train", "--out", "{tmp}/r", "--lr", "fast"], ["--lr", "invalid float value: 'fast'"]),
    (["train", "--out", "{tmp}/r", "--epochs", "0"], ["--epochs", ">= 1", "got 0"]),
    (["train", "--out", "{tmp}/r", "--batch-size", "-8"], ["--batch-size", ">= 1", "-8"]),
    (["train", "--out", "{tmp}/r", "--limit-train", "0"], ["--limit-train", ">= 1", "got 0", "for all"]),
    (["train", "--out", "{tmp}/r", "--limit-test", "-5"], ["--limit-test", ">= 1", "-5"]),
    (["train", "--out", "{tmp}/r", "--threads", "0"], ["--threads", ">= 1"]),
    (["train", "--out", "{tmp}/r", "--momentum", "1.5"], ["--momentum", "[0, 1)"]),
    (["train", "--out", "{tmp}/r", "--weight-decay", "-1"], ["--weight-decay", ">= 0"]),
    (["train", "--out", "{tmp}/r", "--warmup-epochs", "nan"], ["--warmup-epochs", "finite"]),
    (["train", "--out", "{tmp}/r", "--label-smoothing", "1"], ["--label-smoothing", "[0, 1)"]),
    (["train", "--out", "{tmp}/r", "--seed", "-1"], ["--seed", "-1"]),
    (["train", "--out", "{tmp}/r", "--model", "resnet21"], ["unknown model 'resnet21'", "'resnet20'"]),
    (["train", "--out", "{tmp}/r", "--attention", "cmab"], ["unknown attention module 'cmab'", "'cbam'"]),
    (["train", "--out", "{tmp}/r", "--attention", "se", "--attention-kwargs", '{"reductoin": 8}'],
     ["--attention-kwargs", "'reductoin'", "Did you mean 'reduction'"]),
    (["train", "--out", "{tmp}/r", "--attention", "se", "--attention-kwargs", '{"reduction": "x"}'],
     ["--attention-kwargs", "'reduction'", "a number"]),
    (["train", "--out", "{tmp}/r", "--attention-kwargs", "[1]"], ["--attention-kwargs", "JSON object"]),
    (["train", "--out", "{tmp}/r", "--optimizer", "adam"], ["invalid choice: 'adam'", "did you mean 'adamw'"]),
    (["train", "--out", "{tmp}/r", "--dataset", "fashion-mnst"], ["unknown dataset 'fashion-mnst'", "fashion-mnist"]),
    # study
    (["study", "--out", FILE], ["--out", "FILE", "is a file, not a folder"]),
    (["study", "--out", "{tmp}/s", "--runs", FILE], ["--runs", "FILE", "is a file, not a folder"]),
    (["study", "--out", "{tmp}/s", "--models", "vanila"], ["unknown study model 'vanila'", "Did you mean 'vanilla'"]),
    (["study", "--out", "{tmp}/s", "--models", "se", "cbma"], ["unknown study model 'cbma'", "'cbam'"]),
    (["study", "--out", "{tmp}/s", "--models", "se", "se"], ["'se' twice"]),
    (["study", "--out", "{tmp}/s", "--models", "non_local", "--non-local"], ["--non-local", "non_local", "once"]),
    (["study", "--out", "{tmp}/s", "--seeds", "-1"], ["--seeds", ">= 0"]),
    (["study", "--out", "{tmp}/s", "--jobs", "0"], ["--jobs", "'0'"]),
    (["study", "--out", "{tmp}/s", "--address", "head:6379"], ["--address head:6379", "--executor ray"]),
    (["study", "--out", "{tmp}/s", "--seeds", "0", "0"], ["distinct seeds"]),
    (["study", "--out", "{tmp}/s", "--epochs", "0"], ["--epochs", ">= 1"]),
    (["study", "--out", "{tmp}/s", "--limit-train", "0"], ["--limit-train", ">= 1"]),
    (["study", "--out", "{tmp}/s", "--limit-test", "-5"], ["--limit-test", "'-5'"]),
    (["study", "--out", "{tmp}/s", "--n-localisation", "0"], ["--n-localisation", ">= 1"]),
    (["study", "--out", "{tmp}/s", "--preset", "quik"], ["unknown study preset 'quik'", "'quick'"]),
    (["study", "--out", "{tmp}/s", "--device", "gpu"], ["unknown device 'gpu'"]),
    # eval
    (["eval"], ["required", "--checkpoint"]),
    (["eval", "--checkpoint", MISSING], ["no checkpoint", "missing"]),
    (["eval", "--checkpoint", FILE], ["no checkpoint", "FILE"]),
    (["eval", "--checkpoint", MISSING, "--limit", "-5"], ["--limit", ">= 1", "'-5'"]),
    (["eval", "--checkpoint", MISSING, "--limit", "0"], ["--limit", ">= 1", "'0'"]),
    (["eval", "--checkpoint", MISSING, "--batch-size", "0"], ["--batch-size", ">= 1"]),
    (["eval", "--checkpoint", MISSING, "--device", "gpu"], ["unknown device 'gpu'"]),
    (["eval", "--checkpoint", MISSING, "--split", "val"], ["--split", "invalid choice: 'val'"]),
]


@pytest.fixture
def places(tmp_path: Path) -> Path:
    """A temporary folder holding ``FILE`` (a file) and ``folder`` (a folder)."""
    (tmp_path / "FILE").write_text("not a folder\n")
    (tmp_path / "folder").mkdir()
    return tmp_path


def _fill(argv: list[str], tmp: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp)) for a in argv]


def _assert_one_error_line(rc: int, out: str, err: str, words: list[str]) -> None:
    assert rc == 2, (rc, err)
    assert "Traceback" not in err, err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("attnlab: error: "), err
    for word in words:
        assert word in err, (word, err)
    assert out == "", out  # refused before anything was printed or run


@pytest.mark.parametrize("argv, words", CASES, ids=[" ".join(a) or "(none)" for a, _ in CASES])
def test_bad_arguments_end_in_one_error_line(argv, words, places, capsys, monkeypatch):
    monkeypatch.chdir(places)  # a default output (benchmarks/results/...) would land here
    before = sorted(p.name for p in places.iterdir())
    rc = main(_fill(argv, places))
    captured = capsys.readouterr()
    _assert_one_error_line(rc, captured.out, captured.err, [w.replace("{tmp}", str(places)) for w in words])
    assert sorted(p.name for p in places.iterdir()) == before  # nothing written
    assert (places / "FILE").read_text() == "not a folder\n"


def test_every_subcommand_and_bench_target_is_swept():
    from attnlab.cli import COMMANDS, EXAMPLES

    swept = {" ".join(a[:2]) if a[:1] == ["bench"] else a[0] for a, _ in CASES if a}
    assert set(COMMANDS) <= {s.split()[0] for s in swept}
    assert {k for k in EXAMPLES if k.startswith("bench ")} <= swept


def _console_script() -> list[str]:
    """The installed ``attnlab`` script beside this Python (else ``python -m attnlab.cli``)."""
    script = Path(sys.executable).parent / "attnlab"
    return [str(script)] if script.exists() else [sys.executable, "-m", "attnlab.cli"]


def run_attnlab(*argv: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``attnlab ARGV`` as a user runs it, importing this checkout's attnlab."""
    env = {**os.environ, "PYTHONPATH": str(Path(attnlab.__file__).parent.parent)}
    env.pop("ATTNLAB_TRACEBACK", None)
    return subprocess.run([*_console_script(), *argv], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


SCRIPT_CASES = [
    (["train", "--out", "r", "--device", "gpu"], ["unknown device 'gpu'"]),
    (["study", "--out", "FILE"], ["is a file, not a folder"]),
    (["eval", "--checkpoint", "nope", "--limit", "-5"], ["--limit", "'-5'"]),
    (["cam", "--checkpoint", "nope", "--images", "fashion-mnist", "--out", "c", "-n", "0"], ["--num-images"]),
    (["train", "--out", "r", "--lr", "nan", "--limit-train", "0"], ["--lr", "nan"]),
]


@pytest.mark.parametrize("argv, words", SCRIPT_CASES, ids=[" ".join(a) for a, _ in SCRIPT_CASES])
def test_the_console_script_ends_in_one_error_line(argv, words, places):
    res = run_attnlab(*argv, cwd=places)
    _assert_one_error_line(res.returncode, res.stdout, res.stderr, words)
