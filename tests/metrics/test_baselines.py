"""The chance baselines: a uniform map and a centre prior."""

from __future__ import annotations

import math

import pytest
import torch

from attnlab import metrics as M


def test_uniform_maps_score_chance():
    maps = M.uniform_maps(3, 5, 4)
    assert maps.shape == (3, 5, 4) and torch.equal(maps, torch.ones(3, 5, 4))
    obj = torch.zeros(3, 5, 4, dtype=torch.bool)
    obj[:, :2] = True  # 8 of 20 pixels
    clutter = torch.zeros_like(obj)
    clutter[:, 4, :] = True  # 4 of 20
    assert M.pixel_auc(maps, obj).tolist() == [0.5] * 3
    assert torch.allclose(M.energy_shares(maps, obj, clutter), torch.tensor([[0.4, 0.2, 0.4]] * 3))


def test_centre_prior_by_hand():
    maps = M.centre_prior_maps(2, 5, 5, sigma=1.0)
    assert maps.shape == (2, 5, 5) and torch.equal(maps[0], maps[1])
    assert maps[0, 2, 2] == 1.0  # the centre
    assert maps[0, 2, 3].item() == pytest.approx(math.exp(-0.5))  # one sigma away
    assert maps[0, 0, 0].item() == pytest.approx(math.exp(-8 / 2))  # corner: distance^2 = 8
    assert torch.equal(maps[0], maps[0].flip(0)) and torch.equal(maps[0], maps[0].T)


def test_centre_prior_default_sigma_is_a_quarter_of_the_shorter_side():
    maps = M.centre_prior_maps(1, 8, 12)
    # the centre lies between pixels (3.5, 5.5); sigma = 0.25 * 8 = 2: pixel (3, 5) is at distance^2 0.5
    assert maps[0, 3, 5].item() == pytest.approx(math.exp(-0.5 / (2 * 4)))
    assert torch.allclose(maps, M.centre_prior_maps(1, 8, 12, sigma=M.CENTRE_PRIOR_SIGMA * 8))


def test_centre_prior_beats_chance_on_a_centred_object():
    obj = torch.zeros(1, 9, 9, dtype=torch.bool)
    obj[0, 3:6, 3:6] = True
    assert M.pixel_auc(M.centre_prior_maps(1, 9, 9), obj).item() > 0.95


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "2", True])
def test_bad_sigma_is_refused(bad):
    with pytest.raises(ValueError, match="sigma must be a positive number of pixels"):
        M.centre_prior_maps(1, 4, 4, sigma=bad)


@pytest.mark.parametrize("args", [(-1, 4, 4), (1, 0, 4), (1, 4, 2.5)])
def test_bad_sizes_are_refused(args):
    with pytest.raises(ValueError, match="must be an integer"):
        M.uniform_maps(*args)
    with pytest.raises(ValueError, match="must be an integer"):
        M.centre_prior_maps(*args)


def test_no_maps_is_an_empty_batch():
    assert M.uniform_maps(0, 3, 3).shape == (0, 3, 3) and M.centre_prior_maps(0, 3, 3).shape == (0, 3, 3)
