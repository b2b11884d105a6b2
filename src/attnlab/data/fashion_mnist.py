"""Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017), https://arxiv.org/abs/1708.07747, from its IDX files.

The files are looked for in ``root``, else ``$ATTNLAB_FASHION_MNIST_DIR``, else
``/usr/share/datasets/fashion-mnist`` (where Debian's ``dataset-fashion-mnist`` package puts them). Each
file may be gzip-compressed (``*.gz``, as distributed) or raw.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .base import TensorImageDataset, Transform, check_split
from .errors import DataError
from .idx import find_idx_file, read_idx

__all__ = ["FASHION_MNIST_CLASSES", "FashionMNIST", "fashion_mnist_files", "fashion_mnist_root",
           "load_fashion_mnist"]

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "ATTNLAB_FASHION_MNIST_DIR"
UPSTREAM = "https://github.com/zalandoresearch/fashion-mnist (folder data/fashion)"
#: the official split sizes (the loader accepts any consistent size, so tests can use small files)
SPLIT_SIZES = {"train": 60000, "test": 10000}
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def fashion_mnist_root(root: str | os.PathLike | None = None) -> Path:
    """``root`` if given, else ``$ATTNLAB_FASHION_MNIST_DIR``, else ``/usr/share/datasets/fashion-mnist``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else DEFAULT_ROOT


def _hint(root: Path) -> str:
    return (f"install Debian's package (apt-get install dataset-fashion-mnist, into {DEFAULT_ROOT}) or download "
            f"the four Fashion-MNIST IDX files from {UPSTREAM} into {root}; a folder elsewhere is given by "
            f"root= or ${ENV_VAR}")


def fashion_mnist_files(root: str | os.PathLike | None = None, split: str = "train") -> tuple[Path, Path]:
    """The (images, labels) IDX files of ``split``, each ``.gz`` or raw.

    Raises:
        DataFileNotFoundError: a file is missing; the message says how to install or download it.
    """
    check_split(split)
    root = fashion_mnist_root(root)
    return tuple(find_idx_file(root, name, _hint(root)) for name in _FILES[split])  # type: ignore[return-value]


def load_fashion_mnist(root: str | os.PathLike | None = None,
                       split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Read and validate one split.

    Returns:
        images uint8 (N, 28, 28) and labels int64 (N,) with values in 0..9.

    Raises:
        DataFileNotFoundError: a file is missing.
        DataError: bad magic, a file truncated or with trailing bytes, 28x28 images expected, image and
            label counts differ, or a label out of range. Every message names the file and how to get it.
    """
    images_path, labels_path = fashion_mnist_files(root, split)
    hint = _hint(fashion_mnist_root(root))
    images = read_idx(images_path, ndim=3, dtype=torch.uint8, hint=hint)
    labels = read_idx(labels_path, ndim=1, dtype=torch.uint8, hint=hint)
    if images.shape[1:] != (28, 28):
        raise DataError(f"{images_path}: images are {tuple(images.shape[1:])}, Fashion-MNIST's are (28, 28); {hint}")
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{images_path} holds {images.shape[0]} images but {labels_path} holds {labels.shape[0]} "
                        f"labels (the official {split} split has {SPLIT_SIZES[split]}); {hint}")
    if labels.numel() and int(labels.max()) >= len(FASHION_MNIST_CLASSES):
        raise DataError(f"{labels_path}: label {int(labels.max())} out of range 0..9; {hint}")
    return images, labels.to(torch.int64)


class FashionMNIST(TensorImageDataset):
    """Fashion-MNIST: 28x28 grey images of 10 clothing classes, 60000 train and 10000 test.

    Args:
        root: folder with the IDX files (see :func:`fashion_mnist_root` for the default).
        split: ``"train"`` or ``"test"``.
        transform: applied to float images (see :func:`attnlab.data.default_transforms`).

    Items are ``(image float32 (1, 28, 28) in [0, 1], label int)``; ``images`` is uint8 (N, 1, 28, 28) and
    ``get_batch(index)`` returns a float batch without a Python call per item.

    Raises:
        DataFileNotFoundError / DataError: see :func:`load_fashion_mnist`.

    Example:
        >>> ds = FashionMNIST(split="test")  # doctest: +SKIP
        >>> x, y = ds.get_batch(torch.arange(128))  # (128, 1, 28, 28), (128,)  # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train",
                 transform: Transform | None = None):
        images, labels = load_fashion_mnist(root, split)
        super().__init__(images.unsqueeze(1), labels, FASHION_MNIST_CLASSES, transform)  # (N, 28, 28) -> (N, 1, 28, 28)
        self.root = fashion_mnist_root(root)
        self.split = split
