"""``attnlab cam``: CAM maps of one or several trained checkpoints on the same images, as a comparison grid.

Lives in ``study/`` because it joins checkpoints (train), images (data), CAMs (cam) and pictures (viz).

The grid shows, under each map, the class that map explains (each checkpoint's own prediction, or the
image's label), and on a dataset with object boxes (Cluttered Fashion-MNIST) each image's ground-truth box,
so a map can be judged against what it explains and where the object is.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..cam import create_cam, get_cam_class
from ..data import convert_channels, create_dataset, decode_image, default_transforms, list_datasets
from ..train import Checkpoint, load_checkpoint, model_from_checkpoint
from ..train.distributed import pick_device
from ..viz import compare_grid

__all__ = ["CamJobResult", "ImageSet", "compare_checkpoints", "load_image_set", "load_images"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".npy", ".pgm", ".ppm", ".pnm"}
TARGETS = ("predicted", "label")


@dataclass
class CamJobResult:
    """What :func:`compare_checkpoints` wrote and found.

    Attributes:
        grid: the PNG.
        maps: ``maps.pt``.
        predictions: column -> the class index each map explains, per image (empty for a class-agnostic method).
        class_names: column -> the name of that class, per image (empty for a class-agnostic method).
        boxes: the images' ground-truth boxes (N, 4) (x0, y0, x1, y1), or None when the images have none.
    """

    grid: Path
    maps: Path
    predictions: dict[str, list[int]]
    class_names: dict[str, list[str]] = field(default_factory=dict)
    boxes: Tensor | None = None


@dataclass
class ImageSet:
    """Images to explain and what is known about them.

    Attributes:
        images: (N, C, H, W) uint8.
        titles: N row titles (class names of a dataset's labels, file names of image files).
        labels: (N,) int64 labels, or None.
        boxes: (N, 4) int64 ground-truth boxes (x0, y0, x1, y1), exclusive ends, or None.
        classes: the dataset's class names (index = label), or None.
    """

    images: Tensor
    titles: list[str]
    labels: Tensor | None = None
    boxes: Tensor | None = None
    classes: list[str] | None = None


def _check_count(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"the number of images must be a whole number of at least 1, got {n!r}")
    return int(n)


def _from_dataset(source: str, n: int, channels: int, split: str) -> ImageSet:
    ds = create_dataset(source, split)
    if len(ds) == 0:
        raise ValueError(f"the {split} split of dataset {source!r} has no images")
    count = min(n, len(ds))
    images = ds.images[:count] if hasattr(ds, "images") else torch.stack([ds[i][0] for i in range(count)])
    labels = ds.labels[:count] if hasattr(ds, "labels") else None
    classes = list(getattr(ds, "classes", []) or []) or None
    titles = ([classes[int(y)] for y in labels] if labels is not None and classes
              else [str(i) for i in range(count)])
    boxes = getattr(ds, "boxes", None)
    return ImageSet(torch.stack([convert_channels(im, channels) for im in images]), titles, labels,
                    None if boxes is None else boxes[:count].clone(), classes)


def _image_files(source: str, n: int) -> list[Path]:
    path = Path(source)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:n]
        if not files:
            raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {path}")
        return files
    raise FileNotFoundError(f"{source!r} is neither a dataset ({', '.join(list_datasets())}) nor an image file "
                            "or folder")


def load_image_set(source: str, n: int, channels: int, split: str = "test") -> ImageSet:
    """The first ``n`` images of a dataset (with labels, class names and boxes where it has them), an image file
    or a folder of images (searched recursively, in name order).

    Raises:
        ValueError: ``n`` below 1, an empty dataset split, or images of different sizes.
        FileNotFoundError: ``source`` is no dataset, file or folder, or a folder without images.
    """
    n = _check_count(n)
    if source in list_datasets():
        return _from_dataset(source, n, channels, split)
    files = _image_files(source, n)
    decoded = [convert_channels(decode_image(f), channels) for f in files]
    sizes = {tuple(im.shape[1:]) for im in decoded}
    if len(sizes) > 1:
        raise ValueError(f"the images have different sizes {sorted(sizes)}; give images of one size")
    return ImageSet(torch.stack(decoded), [f.name for f in files])


def load_images(source: str, n: int, channels: int, split: str = "test") -> tuple[Tensor, list[str], Tensor | None]:
    """Images (N, C, H, W) uint8 from a dataset name, an image file or a folder of images (searched recursively).

    Returns:
        (images, row titles, labels or None); :func:`load_image_set` gives boxes and class names too.

    Raises:
        ValueError: ``n`` below 1, an empty dataset split, or images of different sizes.
    """
    s = load_image_set(source, n, channels, split)
    return s.images, s.titles, s.labels


def _check_job(checkpoints: list[str | os.PathLike], out: Path, method: str, n: object, target: str) -> type:
    """Refuse what cannot work before anything is loaded; returns the CAM method's class."""
    if not checkpoints:
        raise ValueError("give at least one --checkpoint")
    _check_count(n)
    if target not in TARGETS:
        raise ValueError(f"target must be 'predicted' or 'label', got {target!r}")
    cls = get_cam_class(method)
    if target == "label" and cls.class_agnostic:
        raise ValueError(f"{method} is class-agnostic (its map explains no class), so target 'label' does not apply; "
                         "use target 'predicted'")
    if out.exists() and not out.is_dir():
        raise ValueError(f"the output folder {out} is a file; give a folder for grid.png and maps.pt")
    return cls


def _class_names(ck: Checkpoint, images: ImageSet) -> list[str] | None:
    """The checkpoint's class names (saved with it by attnlab train), else the images' dataset's if they fit."""
    names = ck.state.get("extra", {}).get("data", {}).get("classes")
    if names:
        return list(names)
    if images.classes and len(images.classes) == ck.model_config.get("num_classes"):
        return images.classes
    return None


def _column_name(ck: Checkpoint, seen: dict[str, int]) -> str:
    cfg = ck.model_config
    name = f"{cfg['name']}+{cfg.get('attention') or 'vanilla'}"
    seen[name] = seen.get(name, 0) + 1
    return name if seen[name] == 1 else f"{name} ({ck.path.parent.parent.name})"


def _explain(ck: Checkpoint, images: ImageSet, method: str, target: str, dev: torch.device,
             options: dict[str, Any]) -> tuple[Tensor, list[int]]:
    """One checkpoint's maps (N, H, W) of the images and the class each explains (empty when class-agnostic)."""
    model = model_from_checkpoint(ck).to(dev)
    dataset = ck.state.get("extra", {}).get("train", {}).get("dataset")
    x01 = images.images.float().div(255)
    x = (default_transforms(dataset, train=False)(x01) if dataset else x01).to(dev)
    targets = images.labels.to(dev) if target == "label" and images.labels is not None else None
    with create_cam(method, model, input_shape=tuple(x.shape[1:]), **options) as cam:  # the layer found at this size
        res = cam.compute(x, targets=targets)
    return res.maps.detach().cpu(), (res.classes.tolist() if res.classes is not None else [])


def compare_checkpoints(checkpoints: list[str | os.PathLike], images: str, out: str | os.PathLike,
                        method: str = "gradcam", n: int = 8, target: str = "predicted",
                        device: str | None = None, split: str = "test", aug_smooth: bool = False,
                        eigen_smooth: bool = False) -> CamJobResult:
    """Maps of every checkpoint's model on the same images, side by side.

    Args:
        checkpoints: run or checkpoint directories (one column each).
        images: a dataset name, an image file or a folder.
        out: output directory: ``grid.png`` and ``maps.pt`` (method, target, titles, maps, predictions, class
            names per checkpoint, labels and boxes of the images).
        method: a CAM method (``attnlab.cam.list_cams()``).
        n: how many images (at least 1).
        target: "predicted" (each model's own prediction) or "label" (the dataset's label, when known).
        aug_smooth, eigen_smooth: the CAM method's test-time augmentation and eigen smoothing (see
            :class:`attnlab.cam.CAMMethod`; eigen smoothing is refused by methods it does not apply to).

    Raises:
        ValueError: no checkpoint, ``n`` below 1, an unknown target or method, target "label" for a
            class-agnostic method or images without labels, ``out`` a file, an empty image set; all before
            any checkpoint is loaded, except the last two.
    """
    out = Path(out)
    cls = _check_job(checkpoints, out, method, n, target)
    if eigen_smooth and not cls.eigen_smooth_applies:
        raise ValueError(f"eigen smoothing does not apply to {method} (its map already is a principal component); "
                         "leave out --eigen-smooth")
    options = {"aug_smooth": bool(aug_smooth), "eigen_smooth": bool(eigen_smooth)}
    dev = pick_device(device)
    ckpts = [load_checkpoint(c) for c in checkpoints]
    chans = {c.model_config.get("in_chans", 3) for c in ckpts}
    if len(chans) > 1:
        raise ValueError(f"the checkpoints take different input channels {sorted(chans)}; compare like with like")
    imgs = load_image_set(images, n, chans.pop(), split)
    if target == "label" and imgs.labels is None:
        raise ValueError(f"target 'label' needs images with labels (a dataset), {images!r} has none; use target "
                         "'predicted'")
    columns: dict[str, Tensor] = {}
    preds: dict[str, list[int]] = {}
    names: dict[str, list[str]] = {}
    seen: dict[str, int] = {}
    for ck in ckpts:
        name = _column_name(ck, seen)
        columns[name], preds[name] = _explain(ck, imgs, method, target, dev, options)
        known = _class_names(ck, imgs)
        names[name] = [known[k] if known and 0 <= k < len(known) else f"class {k}" for k in preds[name]]
    out.mkdir(parents=True, exist_ok=True)
    captions = {col: [f"{target}: {c}" for c in cs] for col, cs in names.items() if cs}
    what = "class-agnostic" if cls.class_agnostic else f"map of the {target} class, shown under each map"
    box_note = "; dashed: ground-truth box" if imgs.boxes is not None else ""
    grid = compare_grid(imgs.images.float().div(255), columns, titles=imgs.titles, out_path=out / "grid.png",
                        suptitle=f"{method} ({what}{box_note})", cell_titles=captions, boxes=imgs.boxes)
    maps_path = out / "maps.pt"
    torch.save({"method": method, "target": target, **options, "titles": imgs.titles, "maps": columns,
                "predictions": preds, "class_names": names, "labels": imgs.labels, "boxes": imgs.boxes}, maps_path)
    return CamJobResult(Path(grid), maps_path, preds, names, imgs.boxes)
