"""Cluttered Fashion-MNIST: determinism, boxes, masks, clutter placement, split separation and the cache."""

from __future__ import annotations

import warnings

import pytest
import torch

from attnlab.data import ClutteredFashionMNIST, generate_cluttered, item_boxes, write_idx
from attnlab.data.base import default_cache_dir
from attnlab.data.cluttered import _generate, _outside_box
from attnlab.data.fashion_mnist import DEFAULT_ROOT as REAL_ROOT


def _gen(items, seed=0, **kw):
    labels = torch.arange(items.shape[0]) % 10
    return generate_cluttered(items, labels, generator=torch.Generator().manual_seed(seed), **kw)


def _mask_box(masks: torch.Tensor) -> torch.Tensor:
    """Reference tight box (x0, y0, x1, y1), exclusive ends, by a plain loop."""
    out = []
    for m in masks:
        ys, xs = torch.nonzero(m, as_tuple=True)
        out.append([int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1])
    return torch.tensor(out)


def _placed(items, s):
    """The object alone on each canvas (n, C, C), rebuilt from the layout by a loop."""
    c = s.images.shape[-1]
    out = torch.zeros(s.images.shape[0], c, c, dtype=torch.uint8)
    for i, (src, (x, y)) in enumerate(zip(s.layout.source_index.tolist(), s.layout.origin.tolist(), strict=True)):
        out[i, y:y + 28, x:x + 28] = items[src]
    return out


def _clutter_cover(s, f):
    """Canvas pixels (n, C, C) covered by some fragment, by a loop."""
    c = s.images.shape[-1]
    cover = torch.zeros(s.images.shape[0], c, c, dtype=torch.bool)
    for i, frags in enumerate(s.layout.clutter_origin.tolist()):
        for x, y in frags:
            cover[i, y:y + f, x:x + f] = True
    return cover


def test_shapes_dtypes_and_labels(build):
    items = build.blob_items(12)
    s = _gen(items, n=30, canvas=48, n_clutter=3, fragment_size=7)
    assert s.images.shape == (30, 1, 48, 48) and s.images.dtype == torch.uint8
    assert s.masks.shape == (30, 48, 48) and s.masks.dtype == torch.bool
    assert s.boxes.shape == (30, 4) and s.boxes.dtype == torch.int64
    assert torch.equal(s.labels, (torch.arange(12) % 10)[s.layout.source_index])
    # 30 canvases from 12 items: every item used 2 or 3 times (whole passes in random order)
    assert set(torch.bincount(s.layout.source_index, minlength=12).tolist()) <= {2, 3}
    assert (s.layout.clutter_index != s.layout.source_index[:, None]).all()  # fragments of other items


def test_deterministic_from_seed(build):
    items = build.blob_items(16)
    a, b, c = _gen(items, seed=3), _gen(items, seed=3), _gen(items, seed=4)
    for name in ("images", "labels", "boxes", "masks", "clutter_masks"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.images, c.images)
    # the chunking does not change the result
    g = torch.Generator().manual_seed(3)
    out, _, boxes, masks, clutter, _ = _generate(items, torch.arange(16) % 10, 16, 64, 4, 9, 0, False, g, False,
                                                 chunk=5)
    assert torch.equal(out, a.images) and torch.equal(boxes, a.boxes) and torch.equal(masks, a.masks)
    assert torch.equal(clutter, a.clutter_masks)


@pytest.mark.parametrize("threshold", [0, 100])
def test_box_is_the_tight_box_of_the_mask(build, threshold):
    items = build.blob_items(20)
    s = _gen(items, mask_threshold=threshold)
    assert torch.equal(s.masks, _placed(items, s) > threshold)
    assert torch.equal(s.boxes, _mask_box(s.masks))
    assert torch.equal(item_boxes(items, threshold)[:3], _mask_box(items[:3] > threshold))


def test_object_intact_and_clutter_outside_its_box(build):
    items = build.blob_items(20)
    s = _gen(items, n=40)
    placed, cover = _placed(items, s), _clutter_cover(s, 9)
    assert (s.images[:, 0] > 0).sum() > (placed > 0).sum()  # there is clutter
    for i, (x0, y0, x1, y1) in enumerate(s.boxes.tolist()):
        assert torch.equal(s.images[i, 0, y0:y1, x0:x1], placed[i, y0:y1, x0:x1])
        assert not cover[i, y0:y1, x0:x1].any()
    assert ((s.images[:, 0] != placed) <= cover).all()  # every other change is a fragment


def test_overlap_mode_composes_by_max(build):
    items = build.blob_items(20)
    s = _gen(items, n=200, clutter_overlap=True)
    placed, cover = _placed(items, s), _clutter_cover(s, 9)
    assert (s.images[:, 0] >= placed).all()  # clutter never erases the object
    assert torch.equal(s.images[:, 0][~cover], placed[~cover])  # intact where no fragment falls
    assert torch.equal(s.masks, placed > 0)  # the mask stays the object's
    inside = torch.zeros_like(cover)
    for i, (x0, y0, x1, y1) in enumerate(s.boxes.tolist()):
        inside[i, y0:y1, x0:x1] = True
    assert (cover & inside).any()  # and fragments do fall on boxes in this mode


def test_outside_box_sampling_is_exact_and_uniform():
    grid, frag = 10, 3
    box = torch.tensor([[3, 4, 6, 7]] * 4000)
    pos = _outside_box(box, grid, frag, 5, torch.Generator().manual_seed(0)).reshape(-1, 2)
    valid = {(x, y) for x in range(grid) for y in range(grid)
             if x + frag <= 3 or x >= 6 or y + frag <= 4 or y >= 7}
    drawn = [tuple(p) for p in pos.tolist()]
    assert set(drawn) == valid
    counts = torch.bincount(pos[:, 1] * grid + pos[:, 0], minlength=grid * grid).float()
    expected = len(drawn) / len(valid)
    assert counts[counts > 0].min() > 0.75 * expected and counts.max() < 1.25 * expected
    # an empty box forbids nothing; a box covering the canvas leaves no room
    empty = _outside_box(torch.tensor([[5, 5, 5, 5]] * 2000), grid, frag, 1, torch.Generator().manual_seed(0))
    assert len({tuple(p) for p in empty[:, 0].tolist()}) == grid * grid
    with pytest.raises(ValueError, match="clutter_overlap=True"):
        _outside_box(torch.tensor([[0, 0, 12, 12]]), grid, frag, 1, torch.Generator())


def test_parameter_errors(build):
    items = build.blob_items(4)
    with pytest.raises(ValueError, match="smaller than the items"):
        _gen(items, canvas=20)
    with pytest.raises(ValueError, match="fragment_size"):
        _gen(items, fragment_size=29)
    with pytest.raises(ValueError, match="two source items"):
        _gen(items[:1])
    with pytest.raises(ValueError, match="uint8"):
        _gen(items.float())
    full = torch.full((3, 28, 28), 9, dtype=torch.uint8)
    with pytest.raises(ValueError, match="too small to keep clutter out"):
        _gen(full, canvas=30)
    assert _gen(full, canvas=30, n_clutter=0).images.shape == (3, 1, 30, 30)


@pytest.mark.parametrize("size", [0, -5, 2.5])
def test_a_size_below_one_is_named_as_size(fashion_root, size):
    with pytest.raises(ValueError, match=f"size \\(canvases to generate\\) must be a whole number >= 1.*got {size}"):
        ClutteredFashionMNIST(fashion_root, "test", cache=False, size=size)  # "n must be >= 1" before


def test_train_and_test_draw_only_from_their_split(tmp_path, build):
    # every train item is a constant in 10..29, every test item a constant in 100..109: any pixel of a
    # canvas tells which split (and which item) it came from
    root = tmp_path / "fm"
    train = torch.arange(10, 30, dtype=torch.uint8)[:, None, None].expand(20, 28, 28).contiguous()
    test = torch.arange(100, 110, dtype=torch.uint8)[:, None, None].expand(10, 28, 28).contiguous()
    build.write_fashion(root, "train", train, torch.arange(20) % 10)
    build.write_fashion(root, "test", test, torch.arange(10))
    for split, allowed in (("train", set(range(10, 30))), ("test", set(range(100, 110)))):
        ds = ClutteredFashionMNIST(root, split, cache=False, size=50)
        values = set(torch.unique(ds.images).tolist()) - {0}
        assert values <= allowed and len(values) > 1
        assert ds.num_classes == 10 and ds.in_chans == 1 and ds.image_size == (64, 64)


def test_dataset_items_batches_and_masks(fashion_root):
    ds = ClutteredFashionMNIST(fashion_root, "test", cache=False, canvas=40, n_clutter=2, fragment_size=5)
    assert len(ds) == 20
    image, label, box, mask = ds[7]
    assert image.shape == (1, 40, 40) and image.dtype == torch.float32 and isinstance(label, int)
    assert box.shape == (4,) and mask.shape == (40, 40) and mask.dtype == torch.bool
    batch = ds.get_batch(torch.tensor([7, 2]))
    assert torch.equal(batch.image[0], image) and batch.label.tolist()[0] == label
    assert torch.equal(batch.box[0], box) and torch.equal(batch.mask[0], mask)
    assert torch.equal(ds.masks[7], mask) and torch.equal(ds.get_masks(slice(0, 3)), ds.masks[:3])
    assert torch.equal(ds.boxes, _mask_box(ds.masks))
    # the train split with the same seed has a different layout
    tr = ClutteredFashionMNIST(fashion_root, "train", cache=False, canvas=40, n_clutter=2, fragment_size=5)
    assert len(tr) == 40 and not torch.equal(tr.layout.origin[:20], ds.layout.origin)


def test_cache_miss_hit_and_keys(fashion_root, tmp_path):
    cache = tmp_path / "cache"
    kw = dict(root=fashion_root, split="test", cache_dir=cache, size=25)
    a = ClutteredFashionMNIST(**kw)
    assert not a.cache_hit and a.cache_path.parent == cache and a.cache_path.is_file()
    assert [p.name for p in cache.iterdir()] == [a.cache_path.name]  # no temporary file left behind
    b = ClutteredFashionMNIST(**kw)
    assert b.cache_hit and b.cache_path == a.cache_path
    for name in ("images", "labels", "boxes", "masks"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert torch.equal(b.layout.clutter_origin, a.layout.clutter_origin)
    c = ClutteredFashionMNIST(**kw, seed=1)  # another parameter, another file
    assert not c.cache_hit and c.cache_path != a.cache_path
    # a changed source file changes the key
    write_idx(fashion_root / "t10k-labels-idx1-ubyte.gz", ((torch.arange(20) + 1) % 10).to(torch.uint8))
    d = ClutteredFashionMNIST(**kw)
    assert not d.cache_hit and d.cache_path != a.cache_path
    ClutteredFashionMNIST(root=fashion_root, split="test", cache=False, size=5, cache_dir=tmp_path / "unused")
    assert not (tmp_path / "unused").exists()


def test_corrupt_cache_is_regenerated(fashion_root, tmp_path):
    kw = dict(root=fashion_root, split="test", cache_dir=tmp_path)
    ref = ClutteredFashionMNIST(**kw)
    path = ref.cache_path
    # 1. a truncated file
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match="is corrupt or stale"):
        again = ClutteredFashionMNIST(**kw)
    assert not again.cache_hit and torch.equal(again.images, ref.images)
    assert ClutteredFashionMNIST(**kw).cache_hit  # rewritten whole
    # 2. a silently changed pixel: torch.load reads it, the checksum catches it
    payload = torch.load(path, weights_only=True)
    payload["images"][0, 0, 0, 0] ^= 1
    torch.save(payload, path)
    with pytest.warns(UserWarning, match="checksum mismatch"):
        again = ClutteredFashionMNIST(**kw)
    assert torch.equal(again.images, ref.images)
    # 3. not a torch file at all
    path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="regenerating"):
        assert torch.equal(ClutteredFashionMNIST(**kw).images, ref.images)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ClutteredFashionMNIST(**kw).cache_hit


def test_default_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNLAB_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "data"
    monkeypatch.delenv("ATTNLAB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "attnlab" / "data"


@pytest.mark.skipif(not (REAL_ROOT / "t10k-images-idx3-ubyte.gz").exists(),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_real_test_split(monkeypatch):
    monkeypatch.delenv("ATTNLAB_FASHION_MNIST_DIR", raising=False)
    ds = ClutteredFashionMNIST(split="test", size=300, cache=False)
    assert ds.images.shape == (300, 1, 64, 64) and int(ds.labels.max()) <= 9
    assert torch.equal(ds.boxes, _mask_box(ds.masks))
    w, h = ds.boxes[:, 2] - ds.boxes[:, 0], ds.boxes[:, 3] - ds.boxes[:, 1]
    assert (w >= 4).all() and (h >= 4).all() and (w <= 28).all() and (h <= 28).all()
