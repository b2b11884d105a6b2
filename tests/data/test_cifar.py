"""CIFAR-10/100 from pickle batches written here, in the standard layout."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from attnlab.data import CIFAR10, CIFAR100, DataError, DataFileNotFoundError


def test_cifar10_train_and_test(tmp_path, build):
    base = build.write_cifar10(tmp_path, n=4)
    tr, te = CIFAR10(tmp_path, "train"), CIFAR10(tmp_path, "test")
    assert len(tr) == 20 and len(te) == 4
    assert tr.images.shape == (20, 3, 32, 32) and tr.images.dtype == torch.uint8
    assert (tr.num_classes, tr.in_chans, tr.image_size) == (10, 3, (32, 32))
    assert tr.classes == [f"c{i}" for i in range(10)]
    # images are the rows reshaped as R, G, B planes of 32x32; labels in order, batch 1 first
    b1 = build.cifar_batch(4, 10, seed=1)
    assert torch.equal(tr.images[:4], torch.from_numpy(b1[b"data"]).view(4, 3, 32, 32))
    assert tr.labels[:4].tolist() == b1[b"labels"]
    x, y = te[2]
    assert x.shape == (3, 32, 32) and x.max() <= 1 and y == build.cifar_batch(4, 10, seed=0)[b"labels"][2]
    assert len(CIFAR10(base, "test")) == 4  # root may be the batch folder itself


def test_cifar100_fine_and_coarse(tmp_path, build):
    build.write_cifar100(tmp_path, n=6)
    fine, coarse = CIFAR100(tmp_path, "train"), CIFAR100(tmp_path, "train", label_mode="coarse")
    assert len(fine) == 12 and fine.num_classes == 100 and coarse.num_classes == 20
    assert torch.equal(coarse.labels, fine.labels // 5)  # as written by the builder
    assert fine.classes[3] == "f3" and coarse.classes[19] == "s19"
    assert len(CIFAR100(tmp_path, "test")) == 6
    with pytest.raises(ValueError, match="label_mode"):
        CIFAR100(tmp_path, label_mode="both")


def test_root_from_environment(tmp_path, build, monkeypatch):
    build.write_cifar10(tmp_path)
    monkeypatch.setenv("ATTNLAB_CIFAR_DIR", str(tmp_path))
    assert len(CIFAR10(split="test")) == 4
    monkeypatch.delenv("ATTNLAB_CIFAR_DIR")
    with pytest.raises(DataFileNotFoundError, match="ATTNLAB_CIFAR_DIR"):
        CIFAR10()


def test_missing_files_name_the_file_and_the_source(tmp_path, build):
    with pytest.raises(DataFileNotFoundError, match=r"cifar-10-batches-py.*cifar-10-python.tar.gz.*toronto"):
        CIFAR10(tmp_path)
    base = build.write_cifar10(tmp_path)
    os.remove(base / "data_batch_3")
    with pytest.raises(DataFileNotFoundError, match="missing .*data_batch_3"):
        CIFAR10(tmp_path, "train")
    with pytest.raises(DataFileNotFoundError, match="cifar-100-python"):
        CIFAR100(tmp_path)


def test_bad_batches(tmp_path, build):
    base = build.write_cifar10(tmp_path)
    build.write_pickle(base / "test_batch", {b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]})
    with pytest.raises(DataError, match=r"test_batch: b'data' must be a uint8 array \(N, 3072\)"):
        CIFAR10(tmp_path, "test")
    build.write_pickle(base / "test_batch", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]})
    with pytest.raises(DataError, match="2 images but 1 labels"):
        CIFAR10(tmp_path, "test")
    build.write_pickle(base / "test_batch", {b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]})
    with pytest.raises(DataError, match="labels must be in 0..9"):
        CIFAR10(tmp_path, "test")
    (base / "test_batch").write_bytes(b"\x80\x02}q\x00")  # cut short
    with pytest.raises(DataError, match="test_batch: not a readable CIFAR pickle batch"):
        CIFAR10(tmp_path, "test")
    build.write_pickle(base / "batches.meta", {b"label_names": [b"a"]})
    with pytest.raises(DataError, match="batches.meta: expected 10 names"):
        CIFAR10(tmp_path, "test")


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo should-not-run",))


def test_pickles_with_other_globals_are_refused(tmp_path, build):
    base = build.write_cifar10(tmp_path)
    with open(base / "test_batch", "wb") as f:
        pickle.dump({b"data": _Exploit(), b"labels": []}, f)
    with pytest.raises(DataError, match="is not allowed"):
        CIFAR10(tmp_path, "test")
