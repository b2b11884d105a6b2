"""ROAD (Rong et al. 2022): the authors' imputation system written out densely, removal orders, both curves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from attnlab.metrics import ROADResult, noisy_linear_imputation, removal_masks, road_curve, road_scores

from .conftest import Linear

#: the ROAD authors' neighbors_weights (imputations.py)
NEIGHBOURS = [((1, 1), 1 / 12), ((0, 1), 1 / 6), ((-1, 1), 1 / 12), ((1, -1), 1 / 12), ((0, -1), 1 / 6),
              ((-1, -1), 1 / 12), ((1, 0), 1 / 6), ((-1, 0), 1 / 6)]


def _impute_dense(img: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """The authors' setup_sparse_system, one equation per removed pixel, as a dense system solved exactly.

    img (C, H, W), removed (H, W) bool -> (C, H, W) float64, noise-free.
    """
    c, h, w = img.shape
    flat = img.reshape(c, -1).double().numpy()
    unknown = np.flatnonzero(removed.reshape(-1).numpy())
    index = {p: j for j, p in enumerate(unknown)}
    a = np.zeros((len(unknown), len(unknown)))
    b = np.zeros((len(unknown), c))
    for j, p in enumerate(unknown):
        y, x = divmod(int(p), w)
        total = 0.0
        for (dy, dx), weight in NEIGHBOURS:
            yy, xx = y + dy, x + dx
            if 0 <= yy < h and 0 <= xx < w:  # out-of-image neighbours drop out of the weight sum
                total += weight
                q = yy * w + xx
                if q in index:
                    a[j, index[q]] += weight
                else:
                    b[j] -= weight * flat[:, q]
        a[j, j] = -total
    out = flat.copy()
    if len(unknown):
        out[:, unknown] = np.linalg.solve(a, b).T
    return torch.from_numpy(out).reshape(c, h, w)


@pytest.mark.parametrize("h,w,frac", [(7, 9, 0.6), (20, 17, 0.9), (5, 5, 0.0)])
def test_imputation_equals_the_authors_system(h, w, frac):
    g = torch.Generator().manual_seed(0)
    img = torch.rand(3, 2, h, w, generator=g)
    removed = torch.rand(3, h, w, generator=g) < frac
    removed[1, h // 3:, : w // 2] = True  # a large hole
    removed[1, 0, 0] = False
    got = noisy_linear_imputation(img, removed, noise=0.0, tol=1e-10)
    for i in range(3):
        torch.testing.assert_close(got[i].double(), _impute_dense(img[i], removed[i]), atol=1e-5, rtol=0)
    assert torch.equal(got[~removed[:, None].expand_as(img)], img[~removed[:, None].expand_as(img)])


def test_imputation_properties():
    const = torch.full((1, 3, 12, 10), 0.7)
    removed = torch.rand(1, 12, 10, generator=torch.Generator().manual_seed(1)) < 0.8
    torch.testing.assert_close(noisy_linear_imputation(const, removed, noise=0.0), const)
    g = torch.Generator().manual_seed(2)
    noisy = noisy_linear_imputation(const, removed, noise=0.05, generator=g)
    diff = (noisy - const)[:, :, removed[0]]
    assert abs(float(diff.std()) - 0.05) < 0.01 and torch.equal(noisy[:, :, ~removed[0]], const[:, :, ~removed[0]])
    everything = torch.ones(1, 12, 10, dtype=torch.bool)
    assert torch.equal(noisy_linear_imputation(const, everything, noise=0.0), torch.zeros_like(const))
    with pytest.raises(ValueError):
        noisy_linear_imputation(const, removed[:, :5])


def test_removal_masks_orders_and_counts():
    maps = torch.tensor([[[0.9, 0.1], [0.5, 0.3]]])  # ranks: 0.9, 0.5, 0.3, 0.1
    morf = removal_masks(maps, [25, 50, 100], "morf")
    lerf = removal_masks(maps, [25, 50, 100], "lerf")
    assert morf[0, 0].tolist() == [[True, False], [False, False]]
    assert morf[0, 1].tolist() == [[True, False], [True, False]]
    assert lerf[0, 1].tolist() == [[False, True], [False, True]]
    assert morf[0, 2].all() and lerf[0, 2].all()
    maps = torch.rand(2, 10, 10)
    for p in (10, 37, 90):  # MoRF at p and LeRF at 100 - p split the pixels
        m, l_ = removal_masks(maps, [p], "morf")[:, 0], removal_masks(maps, [100 - p], "lerf")[:, 0]
        assert int(m[0].sum()) == round(p) and torch.equal(m, ~l_)
    with pytest.raises(ValueError):
        removal_masks(maps, [110])
    with pytest.raises(ValueError):
        removal_masks(maps, [10], "random")


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(16, 3)).eval()


def test_curves_equal_a_loop_over_images_and_percentiles():
    model = _cnn()
    imgs = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    maps = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(4))
    percentiles = (10, 50, 90)
    with torch.no_grad():
        classes = model(imgs).argmax(1)
    for order in ("morf", "lerf"):
        expected = torch.empty(3, 3)
        for i in range(3):
            flat = maps[i].reshape(-1)
            ranked = sorted(range(64), key=lambda q: (-float(flat[q]) if order == "morf" else float(flat[q]), q))
            for j, p in enumerate(percentiles):
                removed = torch.zeros(64, dtype=torch.bool)
                removed[ranked[:round(64 * p / 100)]] = True
                filled = _impute_dense(imgs[i], removed.view(8, 8)).float()[None]
                with torch.no_grad():
                    expected[i, j] = model(filled)[0, classes[i]]
        got = road_curve(model, imgs, maps, order, percentiles=percentiles, noise=0.0, batch_size=4)
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_a_faithful_map_scores_higher_and_modes_are_restored():
    g = torch.Generator().manual_seed(5)
    w = torch.randn(1, 1, 16, 16, generator=g)
    model = Linear(w).train()
    imgs = torch.rand(4, 1, 16, 16, generator=g)
    truth = (imgs * w)[:, 0]  # each pixel's exact contribution to the logit
    res = road_scores(model, imgs, truth, targets=0, noise=0.0)
    assert isinstance(res, ROADResult) and res.morf.shape == res.lerf.shape == (4, 9)
    torch.testing.assert_close(res.base, model(imgs)[:, 0].detach())
    worst = road_scores(model, imgs, -truth, targets=0, noise=0.0)
    assert (res.combined > worst.combined).all() and (res.combined > 0).all()
    torch.testing.assert_close(res.morf_drop, res.base[:, None] - res.morf)
    assert model.training and model.w.grad is None
    probs = road_scores(model, imgs, truth, targets=0, percentiles=(50,), probability=True, noise=0.0)
    assert ((probs.morf >= 0) & (probs.morf <= 1)).all()
    with pytest.raises(ValueError, match="upsample"):
        road_scores(model, imgs, truth[:, :8])
