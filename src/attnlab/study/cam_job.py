"""``attnlab cam``: CAM maps of one or several trained checkpoints on the same images, as a comparison grid.

Lives in ``study/`` because it joins checkpoints (train), images (data), CAMs (cam) and pictures (viz).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..cam import create_cam
from ..data import convert_channels, create_dataset, decode_image, default_transforms, list_datasets
from ..train import load_checkpoint, model_from_checkpoint
from ..train.distributed import pick_device
from ..viz import compare_grid

__all__ = ["CamJobResult", "load_images", "compare_checkpoints"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".npy", ".pgm", ".ppm", ".pnm"}


@dataclass
class CamJobResult:
    grid: Path
    maps: Path
    predictions: dict[str, list[int]]


def load_images(source: str, n: int, channels: int, split: str = "test") -> tuple[Tensor, list[str], Tensor | None]:
    """Images (N, C, H, W) uint8 from a dataset name, an image file or a folder of images (searched recursively).

    Returns:
        (images, row titles, labels or None).
    """
    if source in list_datasets():
        ds = create_dataset(source, split)
        images = ds.images[:n] if hasattr(ds, "images") else torch.stack([ds[i][0] for i in range(min(n, len(ds)))])
        labels = ds.labels[:n] if hasattr(ds, "labels") else None
        titles = [ds.classes[int(y)] for y in labels] if labels is not None else [str(i) for i in range(len(images))]
        return torch.stack([convert_channels(im, channels) for im in images]), titles, labels
    path = Path(source)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:n]
        if not files:
            raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {path}")
    else:
        raise FileNotFoundError(f"{source!r} is neither a dataset ({', '.join(list_datasets())}) nor an image file "
                                "or folder")
    decoded = [convert_channels(decode_image(f), channels) for f in files]
    sizes = {tuple(im.shape[1:]) for im in decoded}
    if len(sizes) > 1:
        raise ValueError(f"the images have different sizes {sorted(sizes)}; give images of one size")
    return torch.stack(decoded), [f.name for f in files], None


def compare_checkpoints(checkpoints: list[str | os.PathLike], images: str, out: str | os.PathLike,
                        method: str = "gradcam", n: int = 8, target: str = "predicted",
                        device: str | None = None, split: str = "test") -> CamJobResult:
    """Maps of every checkpoint's model on the same images, side by side.

    Args:
        checkpoints: run or checkpoint directories (one column each).
        images: a dataset name, an image file or a folder.
        out: output directory: ``grid.png`` and ``maps.pt`` (method, titles, maps per checkpoint).
        method: a CAM method (``attnlab.cam.list_cams()``).
        target: "predicted" (each model's own prediction) or "label" (the dataset's label, when known).
    """
    if not checkpoints:
        raise ValueError("give at least one --checkpoint")
    dev = pick_device(device)
    ckpts = [load_checkpoint(c) for c in checkpoints]
    chans = {c.model_config.get("in_chans", 3) for c in ckpts}
    if len(chans) > 1:
        raise ValueError(f"the checkpoints take different input channels {sorted(chans)}; compare like with like")
    raw, titles, labels = load_images(images, n, chans.pop(), split)
    x01 = raw.float().div(255)
    columns: dict[str, Tensor] = {}
    preds: dict[str, list[int]] = {}
    seen: dict[str, int] = {}
    for ck in ckpts:
        model = model_from_checkpoint(ck).to(dev)
        dataset = ck.state.get("extra", {}).get("train", {}).get("dataset")
        x = (default_transforms(dataset, train=False)(x01) if dataset else x01).to(dev)
        if target == "label":
            if labels is None:
                raise ValueError("target 'label' needs a dataset with labels; use --target predicted")
            targets = labels.to(dev)
        elif target == "predicted":
            targets = None
        else:
            raise ValueError(f"target must be 'predicted' or 'label', got {target!r}")
        with create_cam(method, model) as cam:
            res = cam.compute(x, targets=targets)
        maps, classes = res.maps, res.classes
        cfg = ck.model_config
        name = f"{cfg['name']}+{cfg.get('attention') or 'vanilla'}"
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name} ({ck.path.parent.parent.name})"
        columns[name] = maps.detach().cpu()
        preds[name] = classes.tolist() if classes is not None else []
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    grid = compare_grid(raw.float().div(255), columns, titles=titles, out_path=out / "grid.png",
                        suptitle=f"{method} ({target} class)")
    maps_path = out / "maps.pt"
    torch.save({"method": method, "target": target, "titles": titles, "maps": columns, "predictions": preds},
               maps_path)
    return CamJobResult(Path(grid), maps_path, preds)
