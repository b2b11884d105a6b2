"""Clutter masks of Cluttered Fashion-MNIST: exact on a hand-made layout, disjoint from the object, every level."""

from __future__ import annotations

import pytest
import torch

from attnlab.data import ClutteredFashionMNIST, ClutterLayout, generate_cluttered
from attnlab.data.cluttered import _compose
from attnlab.train import TrainConfig, build_data


def _hand_made(threshold: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Three 4x4 items, an 8x8 canvas, two 2x2 fragments placed by hand; -> (canvas, mask, clutter) (8, 8)."""
    items = torch.zeros(3, 4, 4, dtype=torch.uint8)
    items[0, 1:3, 1:3] = 50  # the object: a 2x2 square
    items[0, 0, 0] = 5  # a faint object pixel: in the mask at threshold 0 only
    items[1, :2, :2] = torch.tensor([[0, 7], [4, 0]], dtype=torch.uint8)  # fragment A: its crop at (0, 0)
    items[2, 2:, 2:] = torch.tensor([[3, 0], [0, 200]], dtype=torch.uint8)  # fragment B: its crop at (2, 2)
    layout = ClutterLayout(source_index=torch.tensor([0]), origin=torch.tensor([[0, 0]]),
                           clutter_index=torch.tensor([[1, 2]]),
                           clutter_crop=torch.tensor([[[0, 0], [2, 2]]]),
                           clutter_origin=torch.tensor([[[5, 0], [2, 2]]]))  # A at x=5, y=0; B on the object
    out, mask, clutter = (torch.empty(1, 64, dtype=torch.uint8) for _ in range(3))
    _compose(items.reshape(3, 16), (4, 4), layout, 0, 1, 8, 2, threshold, out, mask, clutter)
    return out.view(8, 8), mask.view(8, 8).bool(), clutter.view(8, 8).bool()


def _pixels(*yx: tuple[int, int]) -> torch.Tensor:
    m = torch.zeros(8, 8, dtype=torch.bool)
    for y, x in yx:
        m[y, x] = True
    return m


def test_clutter_mask_exact_on_a_hand_made_layout():
    canvas, mask, clutter = _hand_made(threshold=0)
    object_pixels = _pixels((0, 0), (1, 1), (1, 2), (2, 1), (2, 2))
    assert torch.equal(mask, object_pixels)
    # A puts 7 at (y=0, x=6) and 4 at (1, 5); B puts 3 at (2, 2), an object pixel (not clutter), and 200 at (3, 3)
    assert torch.equal(clutter, _pixels((0, 6), (1, 5), (3, 3)))
    assert canvas[0, 6] == 7 and canvas[1, 5] == 4 and canvas[3, 3] == 200 and canvas[2, 2] == 50  # max compose
    canvas, mask, clutter = _hand_made(threshold=5)  # the object mask's rule: values > threshold
    assert torch.equal(mask, object_pixels & ~_pixels((0, 0)))
    assert torch.equal(clutter, _pixels((0, 6), (3, 3)))


def _reference_clutter(items: torch.Tensor, s, f: int, threshold: int) -> torch.Tensor:
    """Fragment pixels > threshold outside the object mask (n, C, C), by a loop over the layout."""
    c = s.images.shape[-1]
    out = torch.zeros(s.images.shape[0], c, c, dtype=torch.bool)
    lay = s.layout
    for i in range(out.shape[0]):
        for j, (x, y) in enumerate(lay.clutter_origin[i].tolist()):
            cx, cy = lay.clutter_crop[i, j].tolist()
            piece = items[lay.clutter_index[i, j], cy:cy + f, cx:cx + f] > threshold
            out[i, y:y + f, x:x + f] |= piece
    return out & ~s.masks


@pytest.mark.parametrize(("overlap", "threshold"), [(False, 0), (True, 0), (True, 60)])
def test_clutter_masks_match_a_loop_and_never_touch_the_object(build, overlap, threshold):
    items = build.blob_items(20)
    s = generate_cluttered(items, torch.arange(20) % 10, n=60, n_clutter=6, clutter_overlap=overlap,
                           mask_threshold=threshold, generator=torch.Generator().manual_seed(1))
    assert s.clutter_masks.dtype == torch.bool and s.clutter_masks.shape == s.masks.shape
    assert torch.equal(s.clutter_masks, _reference_clutter(items, s, 9, threshold))
    assert not (s.clutter_masks & s.masks).any() and s.clutter_masks.any()
    assert (s.images[:, 0][s.clutter_masks] > threshold).all()  # clutter pixels show a fragment's value


@pytest.mark.parametrize("level", [0, 4, 8, 16])
def test_levels_fit_the_default_canvas(level):
    # worst case: items that fill their whole 28x28 frame, so every box is 28x28
    items = torch.randint(1, 256, (6, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    s = generate_cluttered(items, torch.arange(6), n=200, n_clutter=level, generator=torch.Generator().manual_seed(0))
    assert s.layout.clutter_origin.shape == (200, level, 2)
    assert not (s.clutter_masks & s.masks).any()
    covered = s.clutter_masks.flatten(1).sum(1)
    if level == 0:
        assert not s.clutter_masks.any()
    else:  # fragments do not overlap the box: every fragment pixel is clutter, at most level * 81
        assert (covered > 0).all() and (covered <= level * 81).all()


def test_level_too_many_for_the_canvas_fails_with_one_line():
    items = torch.full((3, 28, 28), 9, dtype=torch.uint8)
    with pytest.raises(ValueError, match="too small to keep clutter out of the object's box") as err:
        generate_cluttered(items, torch.arange(3), canvas=36, n_clutter=16)
    assert "\n" not in str(err.value)


def test_more_clutter_covers_more(fashion_root, tmp_path):
    cover = [ClutteredFashionMNIST(fashion_root, "test", n_clutter=k, cache=False).clutter_masks.float().mean()
             for k in (0, 4, 8, 16)]
    assert cover[0] == 0 and cover[0] < cover[1] < cover[2] < cover[3]


def test_cache_round_trip_and_corrupt_clutter(fashion_root, tmp_path):
    kw = dict(root=fashion_root, split="test", cache_dir=tmp_path, n_clutter=8)
    a = ClutteredFashionMNIST(**kw)
    b = ClutteredFashionMNIST(**kw)
    assert not a.cache_hit and b.cache_hit
    assert torch.equal(a.clutter_masks, b.clutter_masks) and torch.equal(b.get_clutter_masks([3, 1]),
                                                                         a.clutter_masks[[3, 1]])
    assert torch.equal(b.get_clutter_masks(slice(2, 5)), a.clutter_masks[2:5])
    assert not (b.clutter_masks & b.masks).any()
    payload = torch.load(a.cache_path, weights_only=True)
    assert payload["format"] == 2 and "clutter_packed" in payload
    payload["clutter_packed"][0, 0] ^= 1  # one flipped bit of a clutter mask
    torch.save(payload, a.cache_path)
    with pytest.warns(UserWarning, match="checksum mismatch"):
        c = ClutteredFashionMNIST(**kw)
    assert torch.equal(c.clutter_masks, a.clutter_masks)


def test_old_cache_format_is_rebuilt(fashion_root, tmp_path):
    kw = dict(root=fashion_root, split="test", cache_dir=tmp_path)
    a = ClutteredFashionMNIST(**kw)
    payload = torch.load(a.cache_path, weights_only=True)
    payload["format"] = 1
    del payload["clutter_packed"]
    torch.save(payload, a.cache_path)
    with pytest.warns(UserWarning, match="unknown format"):
        b = ClutteredFashionMNIST(**kw)
    assert torch.equal(b.clutter_masks, a.clutter_masks)


def test_level_from_train_config_reaches_the_test_set(fashion_root):
    cfg = TrainConfig(dataset="cluttered-fashion-mnist", data_root=str(fashion_root), limit_test=7,
                      dataset_kwargs={"n_clutter": 8, "cache": False})
    test = build_data(cfg).test
    assert test.clutter_masks.shape == (7, 64, 64) and test.clutter_masks.dtype == torch.bool
    assert test.clutter_masks.any() and not (test.clutter_masks & test.masks).any()
    none = build_data(TrainConfig(dataset="cluttered-fashion-mnist", data_root=str(fashion_root), limit_test=7,
                                  dataset_kwargs={"n_clutter": 0, "cache": False})).test
    assert none.clutter_masks.shape == (7, 64, 64) and not none.clutter_masks.any()


@pytest.mark.parametrize("threshold", [-1, 256, 0.5, True])
def test_a_threshold_outside_the_pixel_range_is_refused(threshold):
    with pytest.raises(ValueError, match=r"mask_threshold must be a whole number in 0\.\.255"):
        generate_cluttered(torch.ones(3, 28, 28, dtype=torch.uint8), torch.arange(3), mask_threshold=threshold)
