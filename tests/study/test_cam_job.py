"""``attnlab cam`` through the real command: mistakes are one line and exit code 2 before anything is loaded; the
grid says which class each map explains and where the object is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from attnlab.cli import main
from attnlab.data import FASHION_MNIST_CLASSES, create_dataset, write_idx
from attnlab.models import create_model
from attnlab.study.cam_job import compare_checkpoints, load_image_set, load_images
from attnlab.train import save_checkpoint


@pytest.fixture
def data(tmp_path, monkeypatch, rectangle_fashion) -> Path:
    """A tiny Fashion-MNIST folder (20 test items, a bright rectangle each) as the default root; a private cache."""
    root = rectangle_fashion(tmp_path / "fmnist", 10, 20)
    monkeypatch.setenv("ATTNLAB_FASHION_MNIST_DIR", str(root))
    monkeypatch.setenv("ATTNLAB_CACHE", str(tmp_path / "cache"))
    return root


def _run(tmp_path: Path, name: str, attention: str | None = None, seed: int = 0) -> Path:
    """A run folder holding one checkpoint of an untrained resnet20 for 1-channel images (no training)."""
    torch.manual_seed(seed)
    model = create_model("resnet20", num_classes=10, attention=attention, in_chans=1)
    cfg = {"name": "resnet20", "attention": attention, "attention_kwargs": {}, "num_classes": 10, "in_chans": 1}
    save_checkpoint(tmp_path / name, model=model, model_config=cfg, epoch=1,
                    extra={"data": {"classes": list(FASHION_MNIST_CLASSES)},
                           "train": {"dataset": "cluttered-fashion-mnist"}})
    return tmp_path / name


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run ``attnlab argv``; assert exit code 2 and one error line, return it."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("attnlab: error: ") and "Traceback" not in captured.err
    return lines[0]


# --- mistakes ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", ["0", "-3"])
def test_no_images_asked_for_is_one_line_before_anything_is_loaded(tmp_path, capsys, n):
    out = tmp_path / "cam"
    line = _error(capsys, ["cam", "--checkpoint", str(tmp_path / "no-run"), "--images", "fashion-mnist",
                           "--out", str(out), "-n", n])
    assert "-n/--num-images" in line and ">= 1" in line and f"got '{n}'" in line
    assert not out.exists()


def test_n_0_through_the_console_script_prints_no_traceback(tmp_path):
    res = subprocess.run([sys.executable, "-m", "attnlab.cli", "cam", "--checkpoint", str(tmp_path), "--images",
                          "fashion-mnist", "--out", str(tmp_path / "cam"), "-n", "0"], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 2 and "Traceback" not in res.stderr and "--num-images" in res.stderr
    assert "stack expects a non-empty TensorList" not in res.stderr


def test_other_mistakes_are_one_line_each(tmp_path, capsys, data):
    run = _run(tmp_path, "run")
    file = tmp_path / "file.txt"
    file.write_text("not a folder")
    base = ["cam", "--checkpoint", str(run), "--images", "fashion-mnist"]
    line = _error(capsys, [*base, "--out", str(file)])
    assert f"the output folder (--out) '{file}' is a file" in line
    line = _error(capsys, [*base, "--out", str(tmp_path / "o"), "--method", "gradcma"])
    assert "unknown CAM method 'gradcma'. Did you mean 'gradcam'?" in line
    line = _error(capsys, [*base, "--out", str(tmp_path / "o"), "--method", "eigencam", "--target", "label"])
    assert "eigencam is class-agnostic" in line and "target 'predicted'" in line
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no images" in _error(capsys, ["cam", "--checkpoint", str(run), "--images", str(empty), "--out",
                                          str(tmp_path / "o")])
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    torch.save(torch.zeros(1), pictures / "x.pt")  # not an image suffix: ignored
    np.save(pictures / "a.npy", np.zeros((28, 28), dtype=np.uint8))
    line = _error(capsys, ["cam", "--checkpoint", str(run), "--images", str(pictures), "--out", str(tmp_path / "o"),
                           "--target", "label"])
    assert "needs images with labels" in line
    assert not (tmp_path / "o").exists()


def test_the_library_refuses_zero_images_and_an_empty_split(tmp_path, data, monkeypatch):
    for n in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="at least 1"):
            load_images("fashion-mnist", n, 1)
    with pytest.raises(ValueError, match="at least 1"):
        compare_checkpoints([tmp_path / "nowhere"], "fashion-mnist", tmp_path / "o", n=0)
    empty = tmp_path / "empty-fmnist"
    empty.mkdir()
    write_idx(empty / "t10k-images-idx3-ubyte", torch.zeros(0, 28, 28, dtype=torch.uint8))
    write_idx(empty / "t10k-labels-idx1-ubyte", torch.zeros(0, dtype=torch.uint8))
    monkeypatch.setenv("ATTNLAB_FASHION_MNIST_DIR", str(empty))
    with pytest.raises(ValueError, match="the test split of dataset 'fashion-mnist' has no images"):
        load_images("fashion-mnist", 3, 1)


# --- what the grid shows ------------------------------------------------------------------------------------------


def test_cluttered_images_carry_their_boxes_and_each_column_its_classes(tmp_path, capsys, data):
    runs = [_run(tmp_path, "plain", seed=0), _run(tmp_path, "cbam", "cbam", seed=1)]
    out = tmp_path / "cam"
    assert main(["cam", "--checkpoint", *map(str, runs), "--images", "cluttered-fashion-mnist", "--out", str(out),
                 "-n", "3"]) == 0
    assert capsys.readouterr().err == ""
    saved = torch.load(out / "maps.pt")
    ds = create_dataset("cluttered-fashion-mnist", "test")
    assert torch.equal(saved["boxes"], ds.boxes[:3]) and torch.equal(saved["labels"], ds.labels[:3])
    assert list(saved["maps"]) == ["resnet20+vanilla", "resnet20+cbam"]
    for column, classes in saved["predictions"].items():
        assert len(classes) == 3
        assert saved["class_names"][column] == [FASHION_MNIST_CLASSES[k] for k in classes]
    assert (out / "grid.png").stat().st_size > 1000


def test_the_grid_captions_each_map_with_its_class_and_draws_the_box(tmp_path, data, monkeypatch):
    import attnlab.study.cam_job as job

    drawn = {}

    def spy(*args, **kwargs):
        drawn.update(kwargs)
        return tmp_path / "grid.png"

    monkeypatch.setattr(job, "compare_grid", spy)
    run = _run(tmp_path, "plain")
    res = compare_checkpoints([run], "cluttered-fashion-mnist", tmp_path / "cam", n=2)
    names = res.class_names["resnet20+vanilla"]
    assert drawn["cell_titles"] == {"resnet20+vanilla": [f"predicted: {c}" for c in names]}
    assert torch.equal(drawn["boxes"], res.boxes) and "ground-truth box" in drawn["suptitle"]
    res = compare_checkpoints([run], "cluttered-fashion-mnist", tmp_path / "label", n=2, target="label")
    labels = [FASHION_MNIST_CLASSES[int(y)] for y in create_dataset("cluttered-fashion-mnist", "test").labels[:2]]
    assert res.class_names["resnet20+vanilla"] == labels
    assert drawn["cell_titles"] == {"resnet20+vanilla": [f"label: {c}" for c in labels]}
    res = compare_checkpoints([run], "fashion-mnist", tmp_path / "cam2", n=2, method="eigencam")
    assert drawn["boxes"] is None and drawn["cell_titles"] == {} and "class-agnostic" in drawn["suptitle"]
    assert res.predictions == {"resnet20+vanilla": []}


def test_load_image_set_of_a_dataset_without_boxes(data):
    s = load_image_set("fashion-mnist", 4, 3)
    assert s.images.shape == (4, 3, 28, 28) and s.boxes is None and s.titles == list(FASHION_MNIST_CLASSES[:4])
