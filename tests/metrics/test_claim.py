"""The offset- and scale-invariant measures: hand-computed cases, a brute-force AUC, invariance, errors."""

from __future__ import annotations

import pytest
import torch

from attnlab import metrics as M

# one 2 x 3 map, values 0..5: min-max normalised it is value / 5, total energy 3.0
MAP = torch.tensor([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]])
OBJECT = torch.tensor([[[False, True, False], [False, False, True]]])  # values 1 and 5
CLUTTER = torch.tensor([[[False, False, False], [True, False, False]]])  # value 3


def test_minmax_normalise_by_hand_and_a_constant_map_is_all_ones():
    out = M.minmax_normalise(torch.cat([MAP, torch.full((1, 2, 3), 7.0)]))
    assert torch.allclose(out[0], MAP[0] / 5)
    assert torch.equal(out[1], torch.ones(2, 3))


def test_energy_shares_by_hand():
    # object: (0.2 + 1.0) / 3 = 0.4; clutter: 0.6 / 3 = 0.2; background: (0 + 0.4 + 0.8) / 3 = 0.4
    shares = M.energy_shares(MAP, OBJECT, CLUTTER)
    assert shares.shape == (1, 3)
    assert torch.allclose(shares, torch.tensor([[0.4, 0.2, 0.4]]))
    assert M.SHARE_REGIONS == ("object", "clutter", "background")


def test_energy_shares_of_a_constant_map_are_the_areas_and_rows_sum_to_one():
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(6, 9, 7, generator=g)
    maps[0] = 0.5
    obj = torch.rand(6, 9, 7, generator=g) > 0.7
    clutter = (torch.rand(6, 9, 7, generator=g) > 0.6) & ~obj
    shares = M.energy_shares(maps, obj, clutter)
    assert torch.allclose(shares.sum(1), torch.ones(6))
    area = torch.tensor([obj[0].float().mean(), clutter[0].float().mean()])
    assert torch.allclose(shares[0, :2], area)


def test_a_pixel_on_both_masks_counts_as_object():
    both = OBJECT | torch.tensor([[[False, True, False], [False, False, False]]])  # (0, 1) also on clutter
    shares = M.energy_shares(MAP, OBJECT, CLUTTER | both)
    assert torch.allclose(shares, torch.tensor([[0.4, 0.2, 0.4]]))


def test_clutter_pointing_miss_by_hand():
    maps = torch.cat([MAP, MAP.flip(2), torch.zeros(1, 2, 3)])  # maxima at (1, 2), (1, 0), first pixel (0, 0)
    clutter = CLUTTER.expand(3, 2, 3)
    assert M.clutter_pointing_miss(maps, clutter).tolist() == [False, True, False]
    assert M.clutter_pointing_miss(torch.zeros(0, 2, 3), torch.zeros(0, 2, 3, dtype=torch.bool)).shape == (0,)


def test_pixel_auc_by_hand():
    # object values 1 and 5 against 0, 2, 3, 4: 1 beats one of four, 5 beats all four: 5 / 8
    assert M.pixel_auc(MAP, OBJECT).tolist() == [0.625]
    # ties count half: object values 1 and 3 against 1, 2, 2, 0: 1 -> 0.5 + 1, 3 -> 4: 5.5 / 8
    tied = torch.tensor([[[1.0, 1.0, 2.0], [2.0, 0.0, 3.0]]])
    obj = torch.tensor([[[True, False, False], [False, False, True]]])
    assert M.pixel_auc(tied, obj).tolist() == [0.6875]


def _brute_force_auc(m: torch.Tensor, mask: torch.Tensor) -> float:
    pos, neg = m[mask].double(), m[~mask].double()
    if not len(pos) or not len(neg):
        return float("nan")
    wins = (pos[:, None] > neg[None, :]).double() + 0.5 * (pos[:, None] == neg[None, :]).double()
    return float(wins.mean())


def _trapezoid_auc(m: torch.Tensor, mask: torch.Tensor) -> float:
    """The area under the ROC curve, thresholding at every distinct value from the top (trapezoids)."""
    thresholds = torch.cat([m.unique().flip(0), m.new_tensor([-float("inf")])])
    tpr = torch.stack([(m[mask] >= t).double().mean() for t in thresholds])
    fpr = torch.stack([(m[~mask] >= t).double().mean() for t in thresholds])
    tpr, fpr = torch.cat([tpr.new_zeros(1), tpr]), torch.cat([fpr.new_zeros(1), fpr])
    return float(((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2).sum())


@pytest.mark.parametrize("levels", [3, 50, 0])  # many ties, some ties, continuous values
def test_pixel_auc_matches_brute_force_and_the_roc_trapezoids(levels):
    g = torch.Generator().manual_seed(levels)
    maps = torch.rand(12, 8, 10, generator=g)
    if levels:
        maps = (maps * levels).floor()
    masks = torch.rand(12, 8, 10, generator=g) > 0.75
    masks[0] = False  # empty: NaN
    masks[1] = True  # full: NaN
    auc = M.pixel_auc(maps, masks)
    assert auc.shape == (12,) and auc.dtype == torch.float32
    assert auc[:2].isnan().all()
    for i in range(2, 12):
        assert auc[i].item() == pytest.approx(_brute_force_auc(maps[i], masks[i]), abs=1e-6)
        assert auc[i].item() == pytest.approx(_trapezoid_auc(maps[i], masks[i]), abs=1e-6)


def test_pixel_auc_extremes_and_dtype():
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, 1:3, 1:3] = True
    assert M.pixel_auc(mask.double(), mask).tolist() == [1.0]
    assert M.pixel_auc(-mask.double(), mask).tolist() == [0.0]
    assert M.pixel_auc(torch.ones(1, 4, 4), mask).tolist() == [0.5]
    assert M.pixel_auc(mask.double(), mask).dtype == torch.float64


def test_a_map_and_its_positive_affine_image_score_the_same():
    g = torch.Generator().manual_seed(3)
    maps = torch.rand(5, 12, 12, generator=g, dtype=torch.float64)
    obj = torch.rand(5, 12, 12, generator=g) > 0.7
    clutter = (torch.rand(5, 12, 12, generator=g) > 0.7) & ~obj
    moved = 3.5 * maps - 2.0
    assert torch.equal(M.pixel_auc(moved, obj), M.pixel_auc(maps, obj))
    assert torch.allclose(M.energy_shares(moved, obj, clutter), M.energy_shares(maps, obj, clutter), atol=1e-12)
    assert torch.equal(M.clutter_pointing_miss(moved, clutter), M.clutter_pointing_miss(maps, clutter))
    # a sigmoid-like map near 0.5: the raw energy sees the offset, the shares see the map
    near_half = 0.5 + 0.01 * maps
    assert torch.allclose(M.energy_shares(near_half, obj, clutter), M.energy_shares(maps, obj, clutter), atol=1e-9)


def test_batched_equals_one_image_at_a_time():
    g = torch.Generator().manual_seed(4)
    maps = torch.rand(7, 6, 6, generator=g).round(decimals=1)
    obj = torch.rand(7, 6, 6, generator=g) > 0.6
    clutter = (torch.rand(7, 6, 6, generator=g) > 0.6) & ~obj
    auc, shares = M.pixel_auc(maps, obj), M.energy_shares(maps, obj, clutter)
    for i in range(7):
        assert torch.equal(M.pixel_auc(maps[i:i + 1], obj[i:i + 1]), auc[i:i + 1])
        assert torch.allclose(M.energy_shares(maps[i:i + 1], obj[i:i + 1], clutter[i:i + 1]), shares[i:i + 1])


def test_bad_inputs_are_one_clear_error():
    with pytest.raises(ValueError, match=r"clutter masks \(1, 3, 2\) must match the maps \(1, 2, 3\)"):
        M.energy_shares(MAP, OBJECT, CLUTTER.transpose(1, 2))
    with pytest.raises(ValueError, match=r"object masks \(2, 2, 3\) must match the maps \(1, 2, 3\)"):
        M.pixel_auc(MAP, OBJECT.expand(2, 2, 3))
    with pytest.raises(ValueError, match=r"masks must be \(B, H, W\)"):
        M.clutter_pointing_miss(MAP, CLUTTER[0])
    bad = MAP.clone()
    bad[0, 0, 0] = float("nan")
    for fn in (lambda m: M.pixel_auc(m, OBJECT), lambda m: M.energy_shares(m, OBJECT, CLUTTER),
               lambda m: M.clutter_pointing_miss(m, CLUTTER), M.minmax_normalise):
        with pytest.raises(ValueError, match="NaN or inf"):
            fn(bad)


def test_pixel_auc_in_chunks_equals_at_once():
    g = torch.Generator().manual_seed(5)
    maps = (torch.rand(9, 5, 6, generator=g) * 4).floor()
    masks = torch.rand(9, 5, 6, generator=g) > 0.5
    assert torch.equal(M.pixel_auc(maps, masks, chunk_pixels=65), M.pixel_auc(maps, masks))  # 2 maps a chunk
    assert torch.equal(M.pixel_auc(maps, masks, chunk_pixels=1), M.pixel_auc(maps, masks))  # at least one map
    assert M.pixel_auc(torch.zeros(0, 5, 6), torch.zeros(0, 5, 6, dtype=torch.bool)).shape == (0,)
