"""attnlab.benchmarks.cam and `attnlab bench cam`: tiny runs against captum and torchcam, configs, errors."""

from __future__ import annotations

import math

import pytest

from attnlab.benchmarks import cam
from attnlab.benchmarks.cam import CAMConfig
from attnlab.cli import main

TINY = CAMConfig("resnet20", 32, "layer3", 1)


def test_config_text_round_trips_and_bad_text_is_rejected():
    assert CAMConfig.parse("resnet20:64:layer3:16") == CAMConfig("resnet20", 64, "layer3", 16)
    assert CAMConfig.parse(str(TINY)) == TINY
    with pytest.raises(ValueError, match="MODEL:SIZE:LAYER:SCORE_IMAGES"):
        CAMConfig.parse("resnet20:64:layer3")


def test_run_against_the_baselines_saves_both_tables(tmp_path, capsys):
    pytest.importorskip("captum")
    pytest.importorskip("torchcam")
    out = tmp_path / "cam.md"
    speed, checks = cam.run(out=out, command="test", configs=[TINY], batch=2, methods=["gradcam", "scorecam"],
                            repeats=1, log=None)
    rows = {(r.impl, r.method): r for r in speed}
    assert set(rows) == {("attnlab", "gradcam"), ("attnlab", "gradcam (NCHW)"), ("captum", "gradcam"),
                         ("torchcam", "gradcam"), ("attnlab", "scorecam"), ("attnlab", "scorecam top-8"),
                         ("torchcam", "scorecam")}
    assert rows["attnlab", "gradcam"].x_best_baseline > 0 and rows["captum", "gradcam"].x_best_baseline is None
    assert rows["attnlab", "scorecam"].peak_mb > 0 and math.isnan(rows["torchcam", "scorecam"].peak_mb)
    (check,) = checks
    assert check.images == 1 and check.top_k == 8 and check.channels == 64 and check.forwarded <= 64
    assert check.max_diff_torchcam < 1e-3  # the same maps as torchcam's Score-CAM
    text = out.read_text()
    assert text.startswith("# CAM benchmark\n\nCommand: `test`") and "## Score-CAM" in text
    assert "| resnet20 | 32x32 | gradcam | captum |" in text
    assert f"saved {out}" in capsys.readouterr().out


def test_cli_run_without_baselines(tmp_path, capsys):
    out = tmp_path / "cam.md"
    assert main(["bench", "cam", "--configs", str(TINY), "--batch", "2", "--methods", "GradCAM,eigencam",
                 "--repeats", "1", "--no-baselines", "--out", str(out)]) == 0
    text = out.read_text()
    assert "Command: `attnlab bench cam --configs resnet20:32:layer3:1" in text and "| gradcam (NCHW) |" in text
    assert "| eigencam | attnlab |" in text and "| captum |" not in text and "## Score-CAM" not in text


def test_unknown_method_and_bad_config_are_clear_errors(capsys):
    assert main(["bench", "cam", "--methods", "gradcamm", "--out", ""]) == 2
    assert "unknown CAM method 'gradcamm'" in capsys.readouterr().err
    assert main(["bench", "cam", "--configs", "resnet20:big:layer3:1"]) == 2
    assert "MODEL:SIZE:LAYER:SCORE_IMAGES" in capsys.readouterr().err


def test_a_config_size_or_image_count_below_one_is_refused():
    with pytest.raises(ValueError, match="a config's SIZE must be a whole number >= 1, got 0"):
        CAMConfig.parse("resnet20:0:layer3:16")
    with pytest.raises(ValueError, match="SCORE_IMAGES must be a whole number >= 1, got -1"):
        CAMConfig("resnet20", 64, "layer3", -1)


def test_unknown_model_and_a_folder_for_out_are_refused_before_measuring(tmp_path):
    with pytest.raises(ValueError, match="unknown model 'resnet21'"):
        cam.benchmark_cams([CAMConfig("resnet21", 64, "layer3", 1)], methods=["gradcam"], log=None)
    with pytest.raises(ValueError, match="is a folder, not a file"):
        cam.run(out=tmp_path, methods=["gradcam"])
