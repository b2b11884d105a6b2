import pytest
import torch

from attnlab.train import DataBundle, TensorSet


def synthetic_bundle(n_train: int = 64, n_test: int = 32, size: int = 12, classes: int = 4,
                     seed: int = 0) -> DataBundle:
    """A learnable toy problem: the class is which quadrant holds a bright square."""
    g = torch.Generator().manual_seed(seed)

    def make(n):
        y = torch.randint(0, classes, (n,), generator=g)
        x = torch.randint(0, 40, (n, 1, size, size), generator=g, dtype=torch.uint8)
        h = size // 2
        for q in range(classes):
            r, c = divmod(q, 2)
            sel = y == q
            x[sel, :, r * h:(r + 1) * h, c * h:(c + 1) * h] += 200
        return TensorSet(x, y)

    return DataBundle(make(n_train), make(n_test), classes, [f"c{i}" for i in range(classes)], None, None)


@pytest.fixture
def bundle():
    return synthetic_bundle()
