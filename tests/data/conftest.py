"""Builders of small data files in each format the loaders read; nothing is downloaded."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from attnlab.data import write_idx

FASHION_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                 "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


def blob_items(n: int, seed: int = 0) -> torch.Tensor:
    """``n`` 28x28 uint8 items: a random bright rectangle on black, at a random place (so boxes vary)."""
    g = torch.Generator().manual_seed(seed)
    items = torch.zeros(n, 28, 28, dtype=torch.uint8)
    for i in range(n):
        y0, x0 = torch.randint(0, 14, (2,), generator=g).tolist()
        h, w = torch.randint(6, 14, (2,), generator=g).tolist()
        items[i, y0:y0 + h, x0:x0 + w] = torch.randint(1, 256, (h, w), generator=g, dtype=torch.uint8)
    return items


def write_fashion(root: Path, split: str, images: torch.Tensor, labels: torch.Tensor, compress: bool = True) -> None:
    root.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    img_name, lab_name = FASHION_FILES[split]
    write_idx(root / f"{img_name}{suffix}", images.to(torch.uint8))
    write_idx(root / f"{lab_name}{suffix}", labels.to(torch.uint8))


@pytest.fixture
def fashion_root(tmp_path: Path) -> Path:
    """A tiny Fashion-MNIST folder: 40 train and 20 test blob items, gzip-compressed."""
    root = tmp_path / "fmnist"
    write_fashion(root, "train", blob_items(40, seed=1), torch.arange(40) % 10)
    write_fashion(root, "test", blob_items(20, seed=2), torch.arange(20) % 10)
    return root


def write_pickle(path: Path, obj: object, protocol: int = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


def cifar_batch(n: int, n_classes: int, seed: int, label_key: bytes = b"labels", **extra) -> dict:
    rng = np.random.default_rng(seed)
    batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             label_key: [int(v) for v in rng.integers(0, n_classes, n)], b"batch_label": b"testing batch"}
    batch.update(extra)
    return batch


def write_cifar10(root: Path, n: int = 4) -> Path:
    """ROOT/cifar-10-batches-py with five train batches and a test batch of ``n`` images each."""
    base = root / "cifar-10-batches-py"
    for i in range(1, 6):
        write_pickle(base / f"data_batch_{i}", cifar_batch(n, 10, seed=i))
    write_pickle(base / "test_batch", cifar_batch(n, 10, seed=0))
    write_pickle(base / "batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)],
                                         b"num_cases_per_batch": n, b"num_vis": 3072})
    return base


def write_cifar100(root: Path, n: int = 6) -> Path:
    """ROOT/cifar-100-python with train (2n) and test (n) files and the meta file."""
    base = root / "cifar-100-python"
    for name, size, seed in (("train", 2 * n, 1), ("test", n, 2)):
        b = cifar_batch(size, 100, seed, label_key=b"fine_labels")
        b[b"coarse_labels"] = [v // 5 for v in b[b"fine_labels"]]
        write_pickle(base / name, b, protocol=4)
    write_pickle(base / "meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                                 b"coarse_label_names": [f"s{i}".encode() for i in range(20)]})
    return base


def write_pgm(path: Path, a: np.ndarray, maxval: int = 255, comment: bool = False) -> None:
    """Binary PGM (H, W) or PPM (H, W, 3)."""
    kind = b"P6" if a.ndim == 3 else b"P5"
    h, w = a.shape[:2]
    head = kind + b"\n" + (b"# made by a test\n" if comment else b"") + f"{w} {h}\n{maxval}\n".encode()
    data = a.astype(">u2" if maxval > 255 else np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(head + data)


@pytest.fixture
def build():
    """The builders above, for tests (test modules cannot import conftest under --import-mode=importlib)."""
    import types

    return types.SimpleNamespace(blob_items=blob_items, write_fashion=write_fashion, write_pickle=write_pickle,
                                 cifar_batch=cifar_batch, write_cifar10=write_cifar10, write_cifar100=write_cifar100,
                                 write_pgm=write_pgm, FASHION_FILES=FASHION_FILES, REAL_FASHION=REAL_FASHION)
