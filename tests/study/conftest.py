"""Shared fixtures of the study tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from attnlab.data import write_idx


def write_rectangle_fashion(root: Path, n_train: int, n_test: int) -> Path:
    """A tiny Fashion-MNIST folder at ``root``: ``n_train``/``n_test`` 28x28 items, a bright 12x12 rectangle at a
    random place in each, labels ``i % 10``. Returns ``root``."""
    g = torch.Generator().manual_seed(0)
    root.mkdir()
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        items = torch.zeros(n, 28, 28, dtype=torch.uint8)
        for i in range(n):
            y, x = torch.randint(0, 14, (2,), generator=g).tolist()
            items[i, y:y + 12, x:x + 12] = torch.randint(60, 256, (12, 12), generator=g, dtype=torch.uint8)
        write_idx(root / f"{prefix}-images-idx3-ubyte", items)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", (torch.arange(n) % 10).to(torch.uint8))
    return root


@pytest.fixture
def rectangle_fashion() -> Callable[[Path, int, int], Path]:
    """The :func:`write_rectangle_fashion` writer."""
    return write_rectangle_fashion
