"""The bench targets' flags and the benchmarks/*.py scripts: one kind of entry point, every default in the help."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from attnlab.cli import _BENCH_TARGETS, build_parser

SCRIPTS = Path(__file__).resolve().parents[2] / "benchmarks"
#: Flags that the bench part of the CLI adds itself (bench train's others come from `attnlab train`).
OWN_TRAIN_FLAGS = {"--run", "--note", "--out"}


def _target_parser(target: str) -> argparse.ArgumentParser:
    def sub(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
        (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return action.choices[name]

    return sub(sub(build_parser(), "bench"), target)


@pytest.mark.parametrize("target", sorted(_BENCH_TARGETS))
def test_every_bench_flag_shows_its_default(target):
    parser = _target_parser(target)
    formatter = parser._get_formatter()
    flags = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    if target == "train":
        flags = [a for a in flags if set(a.option_strings) & OWN_TRAIN_FLAGS]
    missing = [a.option_strings[0] for a in flags if "default" not in (formatter._get_help_string(a) or "")]
    assert not missing, f"bench {target}: no default in the help of {missing}"


@pytest.mark.parametrize("target", sorted(_BENCH_TARGETS))
def test_out_help_says_where_the_file_goes(target):
    text = " ".join(_target_parser(target).format_help().split())
    named_after_run = {"train": "train-DATASET-MODEL[-ATTENTION]-DEVICE", "loop": "loop-DEVICE",
                       "scoring": "scoring-DEVICE"}
    expected = f"benchmarks/results/{named_after_run.get(target, target)}.md"
    assert f"(default: {expected}, under the current directory)" in text


def test_shared_flags_take_each_runner_default():
    def default(target: str, flag: str) -> object:
        (action,) = [a for a in _target_parser(target)._actions if flag in a.option_strings]
        return action.default

    assert [default(t, "--repeats") for t in ("modules", "models", "cam", "data")] == [7, 5, 9, 7]
    assert [default(t, "--batch") for t in ("modules", "cam")] == [32, 16]
    assert default("modules", "--device") == default("cam", "--device") == "cpu"
    assert default("models", "--out") == "benchmarks/results/models.md"


def test_scripts_are_one_kind_of_thin_entry_point():
    scripts = sorted(SCRIPTS.glob("*.py"))
    assert sorted(p.stem for p in scripts) == sorted(_BENCH_TARGETS)
    for path in scripts:
        tree = ast.parse(path.read_text())
        assert ast.get_docstring(tree) and f"attnlab bench {path.stem}" in ast.get_docstring(tree)
        body = ast.unparse(ast.Module(tree.body[1:], type_ignores=[]))
        assert body == ("import sys\nfrom attnlab.cli import main\nif __name__ == '__main__':\n"
                        f"    raise SystemExit(main(['bench', '{path.stem}', *sys.argv[1:]]))"), path.name


def test_a_script_runs_its_target():
    res = subprocess.run([sys.executable, str(SCRIPTS / "modules.py"), "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "usage: attnlab bench modules" in res.stdout
