"""The dataset registry, and the attributes every dataset exposes."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from attnlab.data import create_dataset, list_datasets, register_dataset
from attnlab.data.transforms import list_transform_presets

NAMES = ["cifar10", "cifar100", "cluttered-fashion-mnist", "fashion-mnist", "image-folder",
         "photo-cluttered-fashion-mnist"]


def test_names_and_presets():
    assert list_datasets() == NAMES
    assert list_transform_presets() == NAMES  # every dataset has its transform preset
    assert list_datasets(with_boxes=True) == ["cluttered-fashion-mnist", "photo-cluttered-fashion-mnist"]


def test_unknown_and_duplicate_names():
    with pytest.raises(ValueError,
                       match=r"unknown dataset 'fashion_mnist'\. Did you mean 'fashion-mnist'\? Known datasets"):
        create_dataset("fashion_mnist")
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("cifar10", lambda split, root: None)
    with pytest.raises(ValueError, match="lower case"):
        register_dataset("CIFAR", lambda split, root: None)


@pytest.fixture
def roots(tmp_path, build, fashion_root):
    build.write_cifar10(tmp_path / "c10")
    build.write_cifar100(tmp_path / "c100")
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (tmp_path / "folder" / split / cls).mkdir(parents=True)
            np.save(tmp_path / "folder" / split / cls / "0.npy", np.zeros((9, 11, 3), np.uint8))
    return {"fashion-mnist": fashion_root, "cluttered-fashion-mnist": fashion_root, "cifar10": tmp_path / "c10",
            "cifar100": tmp_path / "c100", "image-folder": tmp_path / "folder",
            "photo-cluttered-fashion-mnist": fashion_root}


@pytest.mark.parametrize("name", NAMES)
def test_every_dataset_exposes_the_protocol(name, roots, tmp_path):
    if name.startswith("photo") and importlib.util.find_spec("skimage") is None:
        pytest.skip("scikit-image not installed (pip install 'attnlab[photos]')")
    kw = {"cache_dir": tmp_path / "cache"} if "cluttered" in name else {}
    ds = create_dataset(name, "test", roots[name], **kw)
    expected = {"fashion-mnist": (10, 1, (28, 28)), "cluttered-fashion-mnist": (10, 1, (64, 64)),
                "photo-cluttered-fashion-mnist": (10, 1, (64, 64)),
                "cifar10": (10, 3, (32, 32)), "cifar100": (100, 3, (32, 32)), "image-folder": (2, 3, (9, 11))}
    assert (ds.num_classes, ds.in_chans, ds.image_size) == expected[name]
    assert len(ds.classes) == ds.num_classes and len(ds) > 0
    x, y = ds[0][:2]
    assert x.shape == (ds.in_chans, *ds.image_size) and 0 <= y < ds.num_classes


def test_image_folder_split_and_kwargs(roots):
    assert len(create_dataset("image-folder", None, roots["image-folder"] / "train")) == 2
    assert create_dataset("cifar100", "test", roots["cifar100"], label_mode="coarse").num_classes == 20
    with pytest.raises(ValueError, match="needs root="):
        create_dataset("image-folder", "train")
