"""Dataset registry: one name, one factory; ``create_dataset(name, split, root, **kwargs)``.

Example:
    >>> from attnlab.data import create_dataset, list_datasets
    >>> "cluttered-fashion-mnist" in list_datasets()
    True
    >>> ds = create_dataset("fashion-mnist", "test")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from torch.utils.data import Dataset

from ..names import lookup, register
from .cifar import CIFAR10, CIFAR100
from .cluttered import ClutteredFashionMNIST
from .fashion_mnist import FashionMNIST
from .folder import ImageFolder
from .photo_clutter import PhotoClutteredFashionMNIST

__all__ = ["create_dataset", "list_datasets", "register_dataset"]

Factory = Callable[..., Dataset]
_REGISTRY: dict[str, Factory] = {}
_WITH_BOXES: set[str] = set()


def register_dataset(name: str, factory: Factory, *, boxes: bool = False) -> Factory:
    """Register ``factory(split, root, **kwargs) -> Dataset`` under ``name``.

    Args:
        name: the dataset's name (lower case).
        factory: builds one split.
        boxes: the datasets it builds carry object ``boxes`` and ``masks`` (see :mod:`attnlab.data.base`).

    Raises:
        ValueError: ``name`` is empty or not lower case, or already registered to another factory
            (see :func:`attnlab.names.register`).
    """
    register(_REGISTRY, name, factory, "dataset")
    if boxes:
        _WITH_BOXES.add(name)
    return factory


def list_datasets(*, with_boxes: bool = False) -> list[str]:
    """Sorted names of every registered dataset (only those with object boxes and masks when ``with_boxes``)."""
    return sorted(n for n in _REGISTRY if n in _WITH_BOXES or not with_boxes)


def create_dataset(name: str, split: str | None = "train", root: str | os.PathLike | None = None,
                   **kwargs) -> Dataset:
    """Build dataset ``name``'s ``split`` from ``root`` (each dataset's default folder when ``None``).

    ``kwargs`` go to the dataset class (``transform``, and e.g. ``canvas``/``seed`` for
    ``cluttered-fashion-mnist``, ``contrast`` for ``photo-cluttered-fashion-mnist``, ``label_mode`` for
    ``cifar100``). For ``image-folder``, ``root`` is required
    and the classes are read from ``root/split`` (or from ``root`` itself when ``split`` is None).

    Raises:
        ValueError: an unknown name (the message lists the known ones and the closest match).
    """
    return lookup(_REGISTRY, name, "dataset")(split, root, **kwargs)


def _image_folder(split: str | None, root: str | os.PathLike | None, **kwargs) -> ImageFolder:
    if root is None:
        raise ValueError("image-folder needs root= (the folder of class subfolders, or of split folders)")
    return ImageFolder(Path(root) / split if split is not None else root, **kwargs)


register_dataset("fashion-mnist", lambda split, root, **kw: FashionMNIST(root, split, **kw))
register_dataset("cluttered-fashion-mnist", lambda split, root, **kw: ClutteredFashionMNIST(root, split, **kw),
                 boxes=True)
register_dataset("photo-cluttered-fashion-mnist",
                 lambda split, root, **kw: PhotoClutteredFashionMNIST(root, split, **kw), boxes=True)
register_dataset("cifar10", lambda split, root, **kw: CIFAR10(root, split, **kw))
register_dataset("cifar100", lambda split, root, **kw: CIFAR100(root, split, **kw))
register_dataset("image-folder", _image_folder)
