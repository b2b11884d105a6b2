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


def write_tiny_fashion(root, n_train: int = 64, n_test: int = 32, seed: int = 0):
    """A Fashion-MNIST folder of ``n_train``/``n_test`` 28x28 images (the class: where a bright square sits),
    for runs of the real ``attnlab train`` that take seconds. Returns ``root``."""
    from attnlab.data import write_idx

    root.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    for (images, labels), n in ((("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), n_train),
                                (("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"), n_test)):
        y = torch.randint(0, 10, (n,), generator=g)
        x = torch.randint(0, 40, (n, 28, 28), generator=g, dtype=torch.uint8)
        for i, label in enumerate(y.tolist()):
            r, c = divmod(label, 5)
            x[i, 4 + 10 * r:12 + 10 * r, 2 + 5 * c:7 + 5 * c] = 220
        write_idx(root / f"{images}.gz", x)
        write_idx(root / f"{labels}.gz", y.to(torch.uint8))
    return root


@pytest.fixture(scope="session")
def fashion_root(tmp_path_factory):
    """A tiny Fashion-MNIST folder (64 train, 32 test images), shared by the tests of one session."""
    return write_tiny_fashion(tmp_path_factory.mktemp("fashion"))
