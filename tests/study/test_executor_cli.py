"""attnlab study --jobs / --executor / --address: shown in --help with their defaults, a misuse is one
``attnlab: error:`` line before anything loads or trains."""

import socket
import time

import pytest

from attnlab.cli import build_parser, main


def _study(argv, tmp_path, capsys):
    code = main(["study", "--out", str(tmp_path / "report"), "--device", "cpu", *argv])
    return code, capsys.readouterr()


def test_help_says_what_auto_means_and_the_choices():
    text = " ".join(build_parser()._subparsers._group_actions[0].choices["study"].format_help().split())
    assert "--jobs N training runs at once (default: auto: on a CPU as many as the cores hold" in text
    assert "--executor {local,ray}" in text and "(default: local)" in text
    assert "--address HOST:PORT with --executor ray" in text


def test_address_without_ray_is_one_error_before_anything_starts(tmp_path, capsys):
    code, out = _study(["--address", "10.0.0.5:6379"], tmp_path, capsys)
    assert code == 2 and out.out == ""
    assert out.err == ("attnlab: error: --address 10.0.0.5:6379 names a Ray cluster: use it with --executor ray\n")
    assert not (tmp_path / "report" / "runs").exists()


def test_an_unreachable_cluster_is_one_error_within_seconds(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    code, out = _study(["--executor", "ray", "--address", f"127.0.0.1:{port}"], tmp_path, capsys)
    assert code == 2 and time.monotonic() - t0 < 15
    assert out.err.startswith(f"attnlab: error: no Ray cluster answers at 127.0.0.1:{port}")
    assert out.err.count("\n") == 1


@pytest.mark.parametrize("argv, words", [(["--jobs", "0"], "--jobs"), (["--executor", "dask"], "--executor")])
def test_a_bad_jobs_or_executor_is_refused_by_the_parser(tmp_path, capsys, argv, words):
    code, out = _study(argv, tmp_path, capsys)
    assert code == 2 and out.err.startswith("attnlab: error:") and words in out.err and out.err.count("\n") == 1
