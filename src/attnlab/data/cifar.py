"""CIFAR-10 and CIFAR-100 (Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009),
https://www.cs.toronto.edu/~kriz/cifar.html, from the standard "python version" pickle batches.

Expected layout (what the archives ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz`` unpack to)::

    ROOT/cifar-10-batches-py/data_batch_1 .. data_batch_5, test_batch, batches.meta
    ROOT/cifar-100-python/train, test, meta

``root`` may be ROOT or the batch folder itself; the default is ``$ATTNLAB_CIFAR_DIR``.

Pickles can run arbitrary code when loaded: load these files only from a trusted source. As a second
line of defence they are read with :class:`pickle.Unpickler` (``encoding="bytes"``, as the batches were
written by Python 2) restricted to the few globals a numpy array needs; anything else is refused.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch

from .base import TensorImageDataset, Transform, check_split
from .errors import DataError, DataFileNotFoundError

__all__ = ["CIFAR10", "CIFAR100", "load_cifar"]

ENV_VAR = "ATTNLAB_CIFAR_DIR"
URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
_SPEC = {
    # name: (folder, archive, train files, test files, meta file, label key, names key, classes)
    "cifar10": ("cifar-10-batches-py", "cifar-10-python.tar.gz", [f"data_batch_{i}" for i in range(1, 6)],
                ["test_batch"], "batches.meta", b"labels", b"label_names", 10),
    "cifar100-fine": ("cifar-100-python", "cifar-100-python.tar.gz", ["train"], ["test"], "meta", b"fine_labels",
                      b"fine_label_names", 100),
    "cifar100-coarse": ("cifar-100-python", "cifar-100-python.tar.gz", ["train"], ["test"], "meta",
                        b"coarse_labels", b"coarse_label_names", 20),
}
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds only containers, strings, numbers and numpy arrays."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):  # numpy 2 renamed numpy.core
            module = "numpy._core." + module[len("numpy.core."):]
        return super().find_class(module, name)


def _hint(archive: str, root: Path) -> str:
    return (f"download {archive} (python version) from {URL} and extract it into {root}, or pass root= / set "
            f"${ENV_VAR} to the folder that holds it")


def _load_pickle(path: Path, hint: str) -> dict:
    if not path.is_file():
        raise DataFileNotFoundError(f"missing {path}: {hint}")
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a readable CIFAR pickle batch ({type(e).__name__}: {e}); {hint}") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a dict, found {type(obj).__name__}; {hint}")
    return obj


def _folder(root: str | os.PathLike | None, folder: str, archive: str, marker: str) -> Path:
    if root is None:
        if not os.environ.get(ENV_VAR):
            raise DataFileNotFoundError(f"no CIFAR folder given: pass root= or set ${ENV_VAR}; "
                                        f"{_hint(archive, Path('ROOT'))}")
        root = os.environ[ENV_VAR]
    root = Path(root).expanduser()
    if (root / folder).is_dir():
        return root / folder
    if (root / marker).is_file():  # root is the batch folder itself
        return root
    raise DataFileNotFoundError(f"missing {root / folder}: {_hint(archive, root)}")


def load_cifar(root: str | os.PathLike | None, name: str, split: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Read and validate one split of CIFAR.

    Args:
        root: the folder holding ``cifar-10-batches-py`` / ``cifar-100-python``, or that folder itself.
        name: ``"cifar10"``, ``"cifar100-fine"`` or ``"cifar100-coarse"``.
        split: ``"train"`` or ``"test"``.

    Returns:
        images uint8 (N, 3, 32, 32), labels int64 (N,), class names.

    Raises:
        DataFileNotFoundError: a file is missing. DataError: a file is not a CIFAR batch (wrong type, keys,
        shape, label count or range); the message names the file.
    """
    check_split(split)
    folder, archive, train, test, meta_name, label_key, names_key, n_classes = _SPEC[name]
    base = _folder(root, folder, archive, meta_name)
    hint = _hint(archive, base.parent)
    meta_path = base / meta_name
    names = _load_pickle(meta_path, hint).get(names_key)
    if not isinstance(names, list) or len(names) != n_classes:
        raise DataError(f"{meta_path}: expected {n_classes} names under {names_key!r}; {hint}")
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    images, labels = [], []
    for file in train if split == "train" else test:
        path = base / file
        batch = _load_pickle(path, hint)
        data, lab = batch.get(b"data"), batch.get(label_key)
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
            raise DataError(f"{path}: b'data' must be a uint8 array (N, 3072), found {got}; {hint}")
        lab = np.asarray(lab if lab is not None else [], dtype=np.int64)
        if lab.shape != (data.shape[0],):
            raise DataError(f"{path}: {data.shape[0]} images but {lab.size} labels under {label_key!r}; {hint}")
        if lab.size and (lab.min() < 0 or lab.max() >= n_classes):
            raise DataError(f"{path}: labels must be in 0..{n_classes - 1}, found {lab.min()}..{lab.max()}; {hint}")
        images.append(torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()))  # rows are R (1024), G, B planes
        labels.append(torch.from_numpy(lab))
    return torch.cat(images), torch.cat(labels), classes


class CIFAR10(TensorImageDataset):
    """CIFAR-10: 32x32 colour images of 10 classes, 50000 train and 10000 test.

    Args:
        root: see :func:`load_cifar` (default ``$ATTNLAB_CIFAR_DIR``).
        split: ``"train"`` or ``"test"``.
        transform: applied to float images (see :func:`attnlab.data.default_transforms`).

    Items are ``(image float32 (3, 32, 32) in [0, 1], label int)``; ``images`` is uint8 (N, 3, 32, 32).
    """

    name = "cifar10"

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train",
                 transform: Transform | None = None):
        images, labels, classes = load_cifar(root, self.name, split)
        super().__init__(images, labels, classes, transform)
        self.split = split


class CIFAR100(TensorImageDataset):
    """CIFAR-100: 32x32 colour images of 100 classes (20 superclasses), 50000 train and 10000 test.

    Args:
        root: see :func:`load_cifar` (default ``$ATTNLAB_CIFAR_DIR``).
        split: ``"train"`` or ``"test"``.
        label_mode: ``"fine"`` (100 classes) or ``"coarse"`` (20 superclasses).
        transform: applied to float images.
    """

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train", label_mode: str = "fine",
                 transform: Transform | None = None):
        if label_mode not in ("fine", "coarse"):
            raise ValueError(f"label_mode must be 'fine' or 'coarse', got {label_mode!r}")
        images, labels, classes = load_cifar(root, f"cifar100-{label_mode}", split)
        super().__init__(images, labels, classes, transform)
        self.split = split
        self.label_mode = label_mode
