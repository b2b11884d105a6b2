"""Shared data for the benchmark tests: a tiny Fashion-MNIST folder (real IDX files, made-up items)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attnlab.data import write_idx


def write_tiny_fashion(root: Path) -> Path:
    """40 train / 20 test 28x28 items: the class is a bright square's position (learnable, 10 classes)."""
    g = torch.Generator().manual_seed(0)
    root.mkdir(parents=True)
    for n, names in ((40, ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")),
                     (20, ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))):
        labels = torch.arange(n) % 10
        images = torch.randint(0, 30, (n, 28, 28), generator=g, dtype=torch.uint8)  # (N, 28, 28)
        for i, c in enumerate(labels.tolist()):
            images[i, 2 * c:2 * c + 8, 2 * c:2 * c + 8] = 250
        write_idx(root / f"{names[0]}.gz", images)
        write_idx(root / f"{names[1]}.gz", labels.to(torch.uint8))
    return root


@pytest.fixture
def tiny_fashion(tmp_path: Path) -> Path:
    """A Fashion-MNIST folder of 40 train and 20 test items (see :func:`write_tiny_fashion`)."""
    return write_tiny_fashion(tmp_path / "fm")
