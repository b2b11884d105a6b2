"""check_directory / check_file: an output path that cannot be written fails in one ValueError naming it and the
fix, before any work; nothing is created."""

import os

import pytest

from attnlab.fileio import check_directory, check_file

as_root = pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")


def test_a_folder_or_a_new_path_is_a_good_directory(tmp_path):
    assert check_directory(tmp_path) == tmp_path
    new = tmp_path / "a" / "b"
    assert check_directory(str(new), "the run folder") == new
    assert not (tmp_path / "a").exists()  # nothing created


def test_a_file_is_not_a_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"the run folder \(--out\) '.*notes.txt' is a file, not a folder; choose"):
        check_directory(tmp_path / "notes.txt", "the run folder (--out)")
    with pytest.raises(ValueError, match=r"cannot be created: '.*notes.txt' is a file, not a folder"):
        check_directory(tmp_path / "notes.txt" / "run")


def test_an_empty_path_is_refused():
    with pytest.raises(ValueError, match="empty path"):
        check_directory("", "the output folder")
    with pytest.raises(ValueError, match="empty path"):
        check_file("", "the results file")


@as_root
def test_a_folder_that_cannot_be_written_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="cannot write into"):
            check_directory(locked)
        with pytest.raises(ValueError, match="no permission to write in"):
            check_directory(locked / "run")
        with pytest.raises(ValueError, match="no permission to write in"):
            check_file(locked / "results.md")
    finally:
        locked.chmod(0o700)


def test_check_file(tmp_path):
    assert check_file(tmp_path / "new" / "results.md") == tmp_path / "new" / "results.md"
    (tmp_path / "old.md").write_text("x")
    assert check_file(str(tmp_path / "old.md")) == tmp_path / "old.md"  # replacing a file is fine
    with pytest.raises(ValueError, match=r"the results file \(--out\) '.*' is a folder, not a file; give a file path"):
        check_file(tmp_path, "the results file (--out)")
    with pytest.raises(ValueError, match="'.*old.md' is a file, not a folder"):
        check_file(tmp_path / "old.md" / "results.md")
    with pytest.raises(ValueError, match="'.*old.md' is a file, not a folder"):
        check_file(tmp_path / "old.md" / "deeper" / "results.md")
    assert not (tmp_path / "new").exists()
