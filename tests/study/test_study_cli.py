"""`attnlab study --clutter/--dataset`: shown in --help with their defaults; bad values are one clear line and
nothing is trained."""

import pytest

from attnlab.cli import build_parser, main


def test_help_shows_the_clutter_and_dataset_flags(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["study", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--clutter N [N ...]" in out and "quick: 0 8, full: 0 4 8 16" in out
    assert "--dataset NAME" in out and "photo-cluttered-fashion-mnist" in out


@pytest.mark.parametrize("argv, words", [
    (["--clutter", "-1"], "each clutter level must be a whole number >= 0 (fragments per canvas), got '-1'"),
    (["--clutter", "4", "8", "4"], "--clutter names the level 4 twice"),
    (["--clutter", "2.5"], "got '2.5'"),
    (["--clutter", "many"], "got 'many'"),
    (["--dataset", "photo-cluttered-fashion-mnist", "--clutter", "4"], "--clutter sets the fragments per canvas"),
    (["--dataset", "fashion-mnist"], "'fashion-mnist' has no object boxes"),
])
def test_bad_clutter_or_dataset_is_one_line_and_trains_nothing(tmp_path, capsys, argv, words):
    out = tmp_path / "s"
    assert main(["study", "--out", str(out), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("attnlab: error: ") and "\n" not in err and words in err
    assert not out.exists()
