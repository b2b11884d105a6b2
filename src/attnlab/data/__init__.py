"""Datasets for attnlab: Fashion-MNIST, Cluttered and Photo-cluttered Fashion-MNIST (with boxes, object masks
and clutter masks), CIFAR-10/100 and image folders, plus batch-aware transforms. Built on torch and numpy only
(Pillow optional, for image folders and the photographs; scikit-image's package folder holds the photographs).

Floor 3: imports torch, numpy and nothing from attnlab above it (not ``train``, ``cam`` or ``models``).

Every dataset has ``classes``, ``num_classes``, ``in_chans`` and ``image_size``; the in-memory ones also
``images``, ``labels`` and ``get_batch(index)``.

Example:
    >>> from attnlab.data import create_dataset, default_transforms
    >>> ds = create_dataset("cluttered-fashion-mnist", "test", transform=default_transforms(  # doctest: +SKIP
    ...     "cluttered-fashion-mnist", train=False))
    >>> image, label, box, mask = ds[0]  # (1, 64, 64), int, (4,) = (x0, y0, x1, y1), (64, 64)  # doctest: +SKIP
"""

from .base import TensorImageDataset, default_cache_dir
from .canvas import CanvasDataset, ClutteredSample
from .cifar import CIFAR10, CIFAR100, load_cifar
from .cluttered import (
    ClutteredFashionMNIST,
    ClutteredSamples,
    ClutterLayout,
    generate_cluttered,
    item_boxes,
    sample_layout,
)
from .errors import DataError, DataFileNotFoundError
from .fashion_mnist import FASHION_MNIST_CLASSES, FashionMNIST, fashion_mnist_files, load_fashion_mnist
from .folder import ImageFolder, convert_channels, decode_image, read_npy, read_pnm
from .idx import find_idx_file, read_idx, write_idx
from .photo_clutter import (
    PhotoClutteredFashionMNIST,
    PhotoClutteredSamples,
    PhotoLayout,
    generate_photo_cluttered,
)
from .registry import create_dataset, list_datasets, register_dataset
from .transforms import (
    BatchTransform,
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    default_transforms,
    list_transform_presets,
)

__all__ = [
    "CIFAR10", "CIFAR100", "FASHION_MNIST_CLASSES", "BatchTransform", "CanvasDataset", "ClutterLayout",
    "ClutteredFashionMNIST", "ClutteredSample", "ClutteredSamples", "Compose", "DataError", "DataFileNotFoundError",
    "FashionMNIST", "ImageFolder", "Normalize", "PhotoClutteredFashionMNIST", "PhotoClutteredSamples", "PhotoLayout",
    "RandomCrop", "RandomHorizontalFlip", "TensorImageDataset", "convert_channels", "create_dataset", "decode_image",
    "default_cache_dir", "default_transforms", "fashion_mnist_files", "find_idx_file", "generate_cluttered",
    "generate_photo_cluttered", "item_boxes", "list_datasets",
    "list_transform_presets", "load_cifar", "load_fashion_mnist", "read_idx", "read_npy", "read_pnm",
    "register_dataset", "sample_layout", "write_idx",
]
