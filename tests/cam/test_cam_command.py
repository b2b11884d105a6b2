"""``attnlab cam --method NAME`` with the methods added to the registry (a checkpoint and images made here)."""

from __future__ import annotations

import pytest
import torch

import attnlab
from attnlab.cli import main
from attnlab.train.checkpoint import save_checkpoint


@pytest.fixture
def run_and_images(tmp_path):
    torch.manual_seed(0)
    config = {"name": "resnet20", "num_classes": 10, "attention": "cbam", "attention_kwargs": None, "in_chans": 1}
    model = attnlab.create_model("resnet20", num_classes=10, attention="cbam", in_chans=1)
    save_checkpoint(tmp_path / "run", model=model, model_config=config, epoch=1)
    images = tmp_path / "images"
    images.mkdir()
    g = torch.Generator().manual_seed(1)
    for i in range(2):  # binary PGM: decoded without Pillow
        pixels = torch.randint(0, 256, (24, 24), generator=g, dtype=torch.uint8)
        (images / f"im{i}.pgm").write_bytes(b"P5\n24 24\n255\n" + bytes(pixels.flatten().tolist()))
    return tmp_path / "run", images


@pytest.mark.parametrize("method", ["ablationcam", "fullgrad", "Finer-CAM", "kpcacam"])
def test_cam_command_runs_a_new_method(run_and_images, tmp_path, method, capsys):
    run, images = run_and_images
    out = tmp_path / "out"
    assert main(["cam", "--checkpoint", str(run), "--images", str(images), "--method", method, "--out", str(out),
                 "-n", "2"]) == 0
    saved = torch.load(out / "maps.pt")
    maps = next(iter(saved["maps"].values()))
    assert saved["method"] == method.lower().replace("-", "")  # the registry name
    assert maps.shape == (2, 24, 24) and torch.isfinite(maps).all()
    assert (out / "grid.png").stat().st_size > 500
    assert "grid:" in capsys.readouterr().out


def test_cam_help_names_every_method(capsys):
    with pytest.raises(SystemExit):
        main(["cam", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in attnlab.cam.list_cams():
        assert name in text


def test_cam_command_smoothing_options_change_the_maps(run_and_images, tmp_path):
    run, images = run_and_images
    maps = {}
    for flags in ([], ["--aug-smooth"], ["--eigen-smooth"]):
        out = tmp_path / ("out" + "".join(flags))
        assert main(["cam", "--checkpoint", str(run), "--images", str(images), "--out", str(out), "-n", "2",
                     *flags]) == 0
        saved = torch.load(out / "maps.pt")
        assert saved["aug_smooth"] is ("--aug-smooth" in flags) and saved["eigen_smooth"] is ("--eigen-smooth" in flags)
        maps[tuple(flags)] = next(iter(saved["maps"].values()))
    assert not torch.allclose(maps[()], maps[("--aug-smooth",)])
    assert not torch.allclose(maps[()], maps[("--eigen-smooth",)])


def test_cam_command_refuses_eigen_smoothing_where_it_does_not_apply(run_and_images, tmp_path, capsys):
    run, images = run_and_images
    assert main(["cam", "--checkpoint", str(run), "--images", str(images), "--out", str(tmp_path / "o"),
                 "--method", "eigencam", "--eigen-smooth"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "eigen smoothing does not apply to eigencam" in err
    assert not (tmp_path / "o").exists()
