"""Photo-cluttered Fashion-MNIST: composition, boxes and masks, determinism, the train/test split of the
photographs, the cache, the missing-scikit-image message, and a training run from the CLI."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from attnlab.cli import main
from attnlab.data import create_dataset, item_boxes, list_datasets
from attnlab.data import photo_clutter as pc
from attnlab.data.photo_clutter import (
    PHOTOGRAPHS,
    PhotoClutteredFashionMNIST,
    generate_photo_cluttered,
    load_photo,
    photo_files,
    photo_region,
)

needs_photos = pytest.mark.skipif(importlib.util.find_spec("skimage") is None,
                                  reason="scikit-image not installed (pip install 'attnlab[photos]')")


def _reference(items: torch.Tensor, photos: list[torch.Tensor], s, contrast: float, threshold: int) -> torch.Tensor:
    """The canvases (n, C, C) rebuilt from the layout by a loop: the scaled photo crop, then the object's pixels."""
    c = s.images.shape[-1]
    out = torch.zeros(s.images.shape[0], c, c, dtype=torch.uint8)
    lay = s.layout
    for i in range(out.shape[0]):
        (x, y), p = lay.photo_crop[i].tolist(), int(lay.photo_index[i])
        out[i] = torch.round(photos[p][y:y + c, x:x + c].double() * contrast).to(torch.uint8)
        (ox, oy), item = lay.origin[i].tolist(), items[lay.source_index[i]]
        window = out[i, oy:oy + 28, ox:ox + 28]
        window[item > threshold] = item[item > threshold]
    return out


@pytest.mark.parametrize(("contrast", "threshold"), [(0.5, 0), (1.0, 40), (0.0, 0)])
def test_composition_matches_a_loop(build, contrast, threshold):
    items = build.blob_items(15)
    g = torch.Generator().manual_seed(0)
    photos = [torch.randint(0, 256, (70, 90), dtype=torch.uint8, generator=g),
              torch.randint(0, 256, (100, 64), dtype=torch.uint8, generator=g)]
    s = generate_photo_cluttered(items, torch.arange(15) % 10, photos, n=40, contrast=contrast,
                                 mask_threshold=threshold, generator=torch.Generator().manual_seed(3))
    assert s.images.shape == (40, 1, 64, 64) and s.images.dtype == torch.uint8
    assert s.masks.dtype == torch.bool and s.clutter_masks.dtype == torch.bool and s.boxes.dtype == torch.int64
    assert torch.equal(s.images[:, 0], _reference(items, photos, s, contrast, threshold))
    assert torch.equal(s.clutter_masks, ~s.masks)
    assert torch.equal(s.boxes, item_boxes(s.masks.to(torch.uint8)))  # the tight box of the mask
    assert set(s.layout.photo_index.tolist()) == {0, 1}
    assert (s.layout.photo_crop[:, 0] <= torch.tensor([26, 0])[s.layout.photo_index]).all()  # crops inside
    assert (s.layout.photo_crop[:, 1] <= torch.tensor([6, 36])[s.layout.photo_index]).all()
    if contrast == 0:
        assert not s.images[:, 0][s.clutter_masks].any()


def test_generator_is_deterministic_and_chunk_free(build):
    items, labels = build.blob_items(12), torch.arange(12) % 10
    photos = [torch.randint(0, 256, (80, 80), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))]
    a, b, c = (generate_photo_cluttered(items, labels, photos, n=30, generator=torch.Generator().manual_seed(k))
               for k in (5, 5, 6))
    for name in ("images", "labels", "boxes", "masks"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.images, c.images)
    out, _, boxes, masks, _ = pc._generate(items, labels, photos, 30, 64, 0.5, 0, torch.Generator().manual_seed(5),
                                           pack=False, chunk=7)
    assert torch.equal(out, a.images) and torch.equal(masks, a.masks) and torch.equal(boxes, a.boxes)


def test_generator_parameter_errors(build):
    items, labels = build.blob_items(4), torch.arange(4)
    photo = torch.zeros(64, 64, dtype=torch.uint8)
    with pytest.raises(ValueError, match="smaller than the canvas|both sides >= the canvas 64"):
        generate_photo_cluttered(items, labels, [torch.zeros(63, 200, dtype=torch.uint8)])
    with pytest.raises(ValueError, match="contrast"):
        generate_photo_cluttered(items, labels, [photo], contrast=1.5)
    with pytest.raises(ValueError, match="photos is empty"):
        generate_photo_cluttered(items, labels, [])
    with pytest.raises(ValueError, match="smaller than the items"):
        generate_photo_cluttered(items, labels, [photo], canvas=20)


def test_photo_regions_split_every_photograph_in_two():
    for h, w, canvas in ((512, 512, 64), (95, 192, 64), (400, 300, 64), (100, 1000, 32)):
        ids = torch.arange(h * w).reshape(h, w)
        train, test = (set(photo_region(ids, split, canvas).reshape(-1).tolist()) for split in ("train", "test"))
        assert not train & test and len(train | test) == h * w  # disjoint, and together the whole photograph
        long_side = max(h, w)
        assert len(test) == max(long_side // 4, canvas) * min(h, w)


@needs_photos
def test_photographs_are_read_as_grayscale():
    paths = photo_files()
    assert [p.name for p in paths] == list(PHOTOGRAPHS)
    full, half = load_photo(paths[0], 1), load_photo(paths[0], 2)  # astronaut.png: 512x512 RGB
    assert full.shape == (512, 512) and half.shape == (256, 256) and half.dtype == torch.uint8
    block = full[:2, :2].int().sum()
    assert int(half[0, 0]) == (int(block) + 2) // 4  # the rounded mean of a 2x2 block
    assert load_photo(paths[-1], 2).shape == (86, 224)  # text.png, 448x172


@needs_photos
def test_dataset_shapes_boxes_masks_and_determinism(fashion_root):
    ds = create_dataset("photo-cluttered-fashion-mnist", "test", fashion_root, cache=False)
    assert len(ds) == 20 and ds.images.shape == (20, 1, 64, 64) and ds.images.dtype == torch.uint8
    assert (ds.num_classes, ds.in_chans, ds.image_size) == (10, 1, (64, 64))
    assert ds.masks.dtype == torch.bool and ds.clutter_masks.shape == (20, 64, 64)
    assert torch.equal(ds.clutter_masks, ~ds.masks) and torch.equal(ds.get_clutter_masks([4, 2]), ~ds.masks[[4, 2]])
    assert torch.equal(ds.boxes, item_boxes(ds.masks.to(torch.uint8)))
    inside = torch.zeros_like(ds.masks)
    for i, (x0, y0, x1, y1) in enumerate(ds.boxes.tolist()):
        inside[i, y0:y1, x0:x1] = True
    assert (ds.masks <= inside).all() and ds.masks.flatten(1).any(1).all()  # boxes contain every object pixel
    image, label, box, mask = ds[3]
    assert image.shape == (1, 64, 64) and torch.equal(mask, ds.masks[3]) and torch.equal(box, ds.boxes[3])
    again = PhotoClutteredFashionMNIST(fashion_root, "test", cache=False)
    other = PhotoClutteredFashionMNIST(fashion_root, "test", cache=False, seed=1)
    assert torch.equal(again.images, ds.images) and not torch.equal(other.images, ds.images)
    assert "photo-cluttered-fashion-mnist" in list_datasets(with_boxes=True)


def _covered(ds) -> list[torch.Tensor]:
    """Per photograph, bool (H, W) over its whole (downscaled) frame: the pixels some canvas of ``ds`` shows."""
    c = ds.params["canvas"]
    covered = [torch.zeros(load_photo(p, ds.params["downscale"]).shape, dtype=torch.bool) for p in ds.photo_paths]
    for p, (x, y) in zip(ds.layout.photo_index.tolist(), ds.layout.photo_crop.tolist(), strict=True):
        h, w = covered[p].shape
        first = int(photo_region(torch.arange(h * w).reshape(h, w), ds.split, c)[0, 0])  # the region's corner
        oy, ox = divmod(first, w)
        covered[p][oy + y:oy + y + c, ox + x:ox + x + c] = True
    return covered


@needs_photos
def test_train_and_test_crops_never_share_a_pixel(fashion_root):
    train = PhotoClutteredFashionMNIST(fashion_root, "train", cache=False, size=120)
    test = PhotoClutteredFashionMNIST(fashion_root, "test", cache=False, size=120)
    a, b = _covered(train), _covered(test)
    assert all(m.any() for m in a + b)  # every photograph used in both splits
    assert not any((ma & mb).any() for ma, mb in zip(a, b, strict=True))
    # the canvases show those crops: non-object pixels are the scaled photograph
    photos = test.photos()
    for i in range(5):
        (x, y), p = test.layout.photo_crop[i].tolist(), int(test.layout.photo_index[i])
        crop = torch.round(photos[p][y:y + 64, x:x + 64].double() * 0.5).to(torch.uint8)
        assert torch.equal(test.images[i, 0][test.clutter_masks[i]], crop[test.clutter_masks[i]])


@needs_photos
def test_cache_round_trip(fashion_root, tmp_path):
    kw = dict(root=fashion_root, split="test", cache_dir=tmp_path)
    a = PhotoClutteredFashionMNIST(**kw)
    b = PhotoClutteredFashionMNIST(**kw)
    assert not a.cache_hit and b.cache_hit and a.cache_path.name.startswith("photo-cluttered-fashion-mnist-test-")
    for name in ("images", "labels", "boxes", "masks", "clutter_masks"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert torch.equal(a.layout.photo_crop, b.layout.photo_crop)
    c = PhotoClutteredFashionMNIST(**kw, contrast=0.25)
    assert not c.cache_hit and c.cache_path != a.cache_path
    payload = torch.load(a.cache_path, weights_only=True)
    payload["photo_crop"][0, 0] += 1
    torch.save(payload, a.cache_path)
    with pytest.warns(UserWarning, match="checksum mismatch"):
        assert torch.equal(PhotoClutteredFashionMNIST(**kw).images, a.images)


@needs_photos
def test_dataset_parameter_errors(fashion_root):
    with pytest.raises(ValueError, match=r"test region of .* smaller than the canvas 100"):
        PhotoClutteredFashionMNIST(fashion_root, "test", canvas=100, cache=False)
    with pytest.raises(ValueError, match="downscale"):
        PhotoClutteredFashionMNIST(fashion_root, "test", downscale=0, cache=False)


def test_missing_scikit_image_is_one_line(monkeypatch, fashion_root, tmp_path, capsys):
    monkeypatch.setattr(pc.importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ValueError, match=r"scikit-image is not installed: pip install 'attnlab\[photos\]'") as err:
        create_dataset("photo-cluttered-fashion-mnist", "test", fashion_root)
    assert "\n" not in str(err.value)
    assert main(["train", "--dataset", "photo-cluttered-fashion-mnist", "--data-root", str(fashion_root),
                 "--out", str(tmp_path / "run"), "--device", "cpu", "--no-progress"]) == 2
    err_text = capsys.readouterr().err
    assert err_text.startswith("attnlab: error:") and err_text.count("\n") == 1 and "attnlab[photos]" in err_text


def test_missing_photographs_are_named(tmp_path):
    (tmp_path / "brick.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"astronaut\.png, camera\.png.* reinstall scikit-image: pip install"):
        photo_files(tmp_path)


@needs_photos
def test_train_from_the_cli(fashion_root, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNLAB_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert main(["train", "--dataset", "photo-cluttered-fashion-mnist", "--data-root", str(fashion_root),
                 "--limit-train", "32", "--limit-test", "16", "--epochs", "1", "--batch-size", "16",
                 "--out", str(run), "--device", "cpu", "--no-progress"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert "photo-cluttered-fashion-mnist" in json.dumps(summary)
    assert any((tmp_path / "cache" / "data").glob("photo-cluttered-fashion-mnist-train-*.pt"))
