"""run_study checks every folder it will write (output, runs, each run) before it prints or trains anything."""

import pytest

from attnlab.study import get_preset, run_study


@pytest.mark.parametrize("out, runs, words", [
    ("FILE", None, "the study's output folder (--out) 'FILE' is a file, not a folder"),
    ("report", "FILE", "the study's runs folder (--runs) 'FILE' is a file, not a folder"),
    ("FILE/report", None, "cannot be created:"),
    ("report", "runs", "the run folder 'runs/cluttered-fashion-mnist-clutter0/vanilla-seed0' is a file, not a folder"),
])
def test_a_file_where_a_folder_is_wanted_stops_the_study_before_it_starts(tmp_path, monkeypatch, out, runs, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "runs" / "cluttered-fashion-mnist-clutter0").mkdir(parents=True)
    (tmp_path / "runs" / "cluttered-fashion-mnist-clutter0" / "vanilla-seed0").write_text("x")
    lines: list[str] = []
    with pytest.raises(ValueError) as info:
        run_study(get_preset("quick"), out, runs_dir=runs, device="cpu", progress=False, log=lines.append)
    assert words in str(info.value) and lines == []
    assert not (tmp_path / "report").exists()
