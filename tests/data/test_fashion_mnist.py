"""Fashion-MNIST: the loader on small files, the default folder and the real files when installed."""

from __future__ import annotations

import pytest
import torch

from attnlab.data import FASHION_MNIST_CLASSES, FashionMNIST, RandomHorizontalFlip
from attnlab.data.fashion_mnist import DEFAULT_ROOT, fashion_mnist_root


def test_small_files_gzip_and_raw(tmp_path, build):
    items = build.blob_items(6)
    for compress in (True, False):
        root = tmp_path / str(compress)
        build.write_fashion(root, "test", items, torch.tensor([0, 1, 2, 3, 9, 5]), compress=compress)
        ds = FashionMNIST(root, "test")
        assert len(ds) == 6 and ds.images.shape == (6, 1, 28, 28) and ds.images.dtype == torch.uint8
        assert torch.equal(ds.images[:, 0], items)
        assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == [0, 1, 2, 3, 9, 5]
        x, y = ds[4]
        assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and y == 9
        assert torch.allclose(x, items[4].float().unsqueeze(0) / 255)
        xb, yb = ds.get_batch(torch.tensor([4, 0]))
        assert xb.shape == (2, 1, 28, 28) and torch.equal(xb[0], x) and yb.tolist() == [9, 0]
        assert (ds.num_classes, ds.in_chans, ds.image_size) == (10, 1, (28, 28))
        assert ds.classes == list(FASHION_MNIST_CLASSES)


def test_transform_is_applied_to_items_and_batches(fashion_root):
    ds = FashionMNIST(fashion_root, "test", transform=RandomHorizontalFlip(p=1.0))
    assert torch.equal(ds[3][0], ds.images[3].float().div(255).flip(-1))
    assert torch.equal(ds.get_batch([3])[0][0], ds[3][0])


def test_root_resolution(tmp_path, monkeypatch, fashion_root):
    monkeypatch.delenv("ATTNLAB_FASHION_MNIST_DIR", raising=False)
    assert fashion_mnist_root() == DEFAULT_ROOT
    monkeypatch.setenv("ATTNLAB_FASHION_MNIST_DIR", str(fashion_root))
    assert fashion_mnist_root() == fashion_root
    assert len(FashionMNIST(split="train")) == 40  # from the environment variable
    assert fashion_mnist_root(tmp_path) == tmp_path  # an argument wins
    with pytest.raises(ValueError, match="split"):
        FashionMNIST(fashion_root, "val")


@pytest.mark.skipif(not (DEFAULT_ROOT / "t10k-images-idx3-ubyte.gz").exists(),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_real_files(monkeypatch):
    monkeypatch.delenv("ATTNLAB_FASHION_MNIST_DIR", raising=False)
    for split, n in (("train", 60000), ("test", 10000)):
        ds = FashionMNIST(split=split)
        assert len(ds) == n and ds.images.shape == (n, 1, 28, 28)
        assert int(ds.labels.min()) == 0 and int(ds.labels.max()) == 9
        assert torch.equal(torch.bincount(ds.labels), torch.full((10,), n // 10))  # balanced classes
