"""attnlab.fileio.atomic: whole-or-nothing file and directory writes, no temporaries left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from attnlab.fileio import (
    atomic_directory,
    atomic_open,
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)


class Boom(RuntimeError):
    """The failure the tests inject."""


def _names(folder: Path) -> list[str]:
    """Every entry of ``folder``, hidden ones included, sorted."""
    return sorted(p.name for p in folder.iterdir())


def _umask() -> int:
    """The process umask, read in a child process (setting it here would race other threads)."""
    out = subprocess.run([sys.executable, "-c", "import os; m = os.umask(0); print(m)"], capture_output=True,
                         text=True, check=True)
    return int(out.stdout)


# --- files -----------------------------------------------------------------------------------------------------------


def test_writers_produce_exactly_the_given_content(tmp_path):
    assert atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01") == tmp_path / "a.bin"
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    atomic_write_bytes(tmp_path / "b.bin", [b"ab", bytearray(b"cd"), memoryview(b"ef")])  # chunks, in turn
    assert (tmp_path / "b.bin").read_bytes() == b"abcdef"
    atomic_write_text(tmp_path / "c.md", "± é\nline\n")
    assert (tmp_path / "c.md").read_bytes() == "± é\nline\n".encode()  # UTF-8 whatever the locale
    obj = {"b": 1, "a": [1.5, None]}
    atomic_write_json(tmp_path / "d.json", obj)
    assert (tmp_path / "d.json").read_text() == json.dumps(obj, indent=1)  # indent 1, no trailing newline
    atomic_write_json(tmp_path / "e.json", obj, indent=None, sort_keys=True)
    assert (tmp_path / "e.json").read_text() == '{"a": [1.5, null], "b": 1}'
    atomic_write_json(tmp_path / "f.json", {"x": Path("p")}, default=str)
    assert json.loads((tmp_path / "f.json").read_text()) == {"x": "p"}
    assert _names(tmp_path) == ["a.bin", "b.bin", "c.md", "d.json", "e.json", "f.json"]


def test_replaces_an_existing_file_and_creates_parents(tmp_path):
    path = tmp_path / "deep" / "er" / "x.txt"
    atomic_write_text(path, "old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and _names(path.parent) == ["x.txt"]


def test_atomic_open_text_mode_keeps_csv_line_ends(tmp_path):
    import csv

    with atomic_open(tmp_path / "m.csv", "w", newline="") as f:
        csv.writer(f).writerows([["a", "b"], [1, 2]])
    assert (tmp_path / "m.csv").read_bytes() == b"a,b\r\n1,2\r\n"


@pytest.mark.parametrize("mode", ["a", "r+", "xb", "r"])
def test_atomic_open_refuses_modes_that_do_not_write_a_whole_file(tmp_path, mode):
    with pytest.raises(ValueError, match="mode 'w' or 'wb'"):
        with atomic_open(tmp_path / "x", mode):
            pass
    assert _names(tmp_path) == []


def _fail_in_body(path: Path, monkeypatch: pytest.MonkeyPatch | None = None) -> None:
    with atomic_open(path) as f:
        f.write(b"half of the new conte")
        raise Boom


def _fail_in_fsync(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fsync(fd: int) -> None:
        raise Boom

    with monkeypatch.context() as m:
        m.setattr(os, "fsync", fsync)
        atomic_write_bytes(path, b"new content")


def _fail_in_replace(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def replace(src, dst) -> None:
        raise Boom

    with monkeypatch.context() as m:
        m.setattr(os, "replace", replace)
        atomic_write_text(path, "new content")


def _fail_in_encoding(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    atomic_write_text(path, "\udcff")  # a lone surrogate: UTF-8 cannot encode it (UnicodeEncodeError)


@pytest.mark.parametrize("fail", [_fail_in_body, _fail_in_fsync, _fail_in_replace, _fail_in_encoding],
                         ids=["body", "fsync", "replace", "encoding"])
def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, fail):
    path = tmp_path / "x.bin"
    path.write_bytes(b"old content")
    with pytest.raises((Boom, UnicodeEncodeError)):
        fail(path, monkeypatch)
    assert path.read_bytes() == b"old content"
    assert _names(tmp_path) == ["x.bin"]


def test_failed_first_write_leaves_nothing(tmp_path):
    with pytest.raises(Boom):
        _fail_in_body(tmp_path / "new.bin")
    assert _names(tmp_path) == []


def test_interrupt_is_cleaned_up_too(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(tmp_path / "x.bin") as f:
            f.write(b"partial")
            raise KeyboardInterrupt
    assert _names(tmp_path) == []


def test_the_temporary_is_a_hidden_sibling(tmp_path):
    path = tmp_path / "x.json"
    with atomic_open(path) as f:
        (tmp,) = [p for p in tmp_path.iterdir()]
        assert tmp.name.startswith(".x.json.") and tmp.name.endswith(".tmp") and Path(f.name) == tmp
        assert not path.exists()  # nothing under the name until the write is complete
    assert _names(tmp_path) == ["x.json"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_new_files_get_the_usual_permissions(tmp_path):
    mode = 0o666 & ~_umask()
    atomic_write_bytes(tmp_path / "a", b"x")
    with atomic_path(tmp_path / "b") as tmp:
        tmp.write_bytes(b"x")
    with atomic_directory(tmp_path / "d"):
        pass
    assert (tmp_path / "a").stat().st_mode & 0o777 == mode
    assert (tmp_path / "b").stat().st_mode & 0o777 == mode
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~_umask()


def test_concurrent_writers_and_a_reader_never_see_a_mix(tmp_path):
    """Four writers replace one file 40 times each while a reader checks every read is one writer's whole file."""
    path = tmp_path / "shared.bin"
    contents = [bytes([i]) * 200_000 for i in range(4)]
    atomic_write_bytes(path, contents[0])
    bad: list[str] = []
    done = threading.Event()

    def write(i: int) -> None:
        for _ in range(40):
            atomic_write_bytes(path, contents[i], fsync=False)

    def read() -> None:
        while not done.is_set():
            data = path.read_bytes()
            if data not in contents:
                bad.append(f"{len(data)} bytes, starting {data[:4]!r}")

    reader = threading.Thread(target=read)
    writers = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    reader.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    reader.join()
    assert not bad, bad[:3]
    assert path.read_bytes() in contents and _names(tmp_path) == ["shared.bin"]


# --- a file another program writes by name ---------------------------------------------------------------------------


def test_atomic_path_for_an_external_writer(tmp_path):
    target = tmp_path / "lib" / "out.txt"
    with atomic_path(target, suffix=".so") as tmp:
        assert tmp.parent == target.parent and tmp.name.endswith(".so") and tmp.exists()
        tmp.unlink()  # a writer that removes and re-creates its output (as linkers do)
        subprocess.run([sys.executable, "-c", f"open({str(tmp)!r}, 'w').write('built')"], check=True)
    assert target.read_text() == "built" and _names(target.parent) == ["out.txt"]


def test_atomic_path_failure_removes_the_temporary(tmp_path):
    target = tmp_path / "out.so"
    target.write_text("old")
    with pytest.raises(subprocess.CalledProcessError):
        with atomic_path(target) as tmp:
            subprocess.run([sys.executable, "-c", f"open({str(tmp)!r}, 'w').write('ha'); raise SystemExit(1)"],
                           check=True)
    assert target.read_text() == "old" and _names(tmp_path) == ["out.so"]
    with pytest.raises(FileNotFoundError):  # the writer removed its output and failed to write it: no rename
        with atomic_path(target) as tmp:
            tmp.unlink()
    assert target.read_text() == "old" and _names(tmp_path) == ["out.so"]


# --- directories -----------------------------------------------------------------------------------------------------


def test_directory_appears_whole(tmp_path):
    final = tmp_path / "ckpt" / "epoch_0001"
    with atomic_directory(final) as d:
        assert d.parent == final.parent and d.name.startswith(".epoch_0001.") and not final.exists()
        atomic_write_text(d / "a.txt", "a")
        (d / "sub").mkdir()
        atomic_write_text(d / "sub" / "b.txt", "b")
        assert not final.exists()  # nothing under the name until the block is done
    assert (final / "a.txt").read_text() == "a" and (final / "sub" / "b.txt").read_text() == "b"
    assert _names(final.parent) == ["epoch_0001"]


def test_directory_replaces_an_existing_one_whole(tmp_path):
    final = tmp_path / "epoch_0001"
    with atomic_directory(final) as d:
        atomic_write_text(d / "old.txt", "old")
        atomic_write_text(d / "both.txt", "old")
    with atomic_directory(final) as d:
        atomic_write_text(d / "both.txt", "new")
    assert _names(final) == ["both.txt"] and (final / "both.txt").read_text() == "new"
    assert _names(tmp_path) == ["epoch_0001"]  # neither the temporary nor the old one left aside


def test_failed_directory_write_leaves_the_old_one_and_no_temporary(tmp_path):
    final = tmp_path / "epoch_0001"
    with atomic_directory(final) as d:
        atomic_write_text(d / "a.txt", "old")
    with pytest.raises(Boom):
        with atomic_directory(final) as d:
            atomic_write_text(d / "a.txt", "new")
            raise Boom
    assert _names(final) == ["a.txt"] and (final / "a.txt").read_text() == "old"
    assert _names(tmp_path) == ["epoch_0001"]
    with pytest.raises(Boom):  # a first write that fails leaves nothing at all
        with atomic_directory(tmp_path / "epoch_0002"):
            raise Boom
    assert _names(tmp_path) == ["epoch_0001"]


def test_failed_rename_into_place_restores_the_old_directory(tmp_path, monkeypatch):
    final = tmp_path / "epoch_0001"
    with atomic_directory(final) as d:
        atomic_write_text(d / "a.txt", "old")
    real = os.replace
    calls = []

    def replace(src, dst) -> None:
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == 2:  # 1: old one aside, 2: new one into place (fails), 3: old one back
            raise Boom
        real(src, dst)

    with pytest.raises(Boom):
        with atomic_directory(final) as d:
            atomic_write_text(d / "a.txt", "new", fsync=False)
            monkeypatch.setattr(os, "replace", replace)
    monkeypatch.undo()
    assert len(calls) == 3 and calls[2][1] == "epoch_0001"
    assert (final / "a.txt").read_text() == "old" and _names(tmp_path) == ["epoch_0001"]
