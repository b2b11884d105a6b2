"""Deletion and insertion (Petsiuk et al. 2018): RISE's loop transcribed as the oracle, and known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from attnlab.metrics import causal_curve, curve_auc, deletion_auc, gaussian_blur, insertion_auc

from .conftest import Linear


def _rise_single_run(model, img, explanation, mode, step, substrate_fn):
    """RISE's CausalMetric.single_run (evaluation.py), one image, softmax model, transcribed."""
    _, c, h, w = img.shape
    hw = h * w
    with torch.no_grad():
        cls = int(model(img).argmax(1))
        n_steps = (hw + step - 1) // step
        if mode == "del":
            start, finish = img.clone(), substrate_fn(img)
        else:
            start, finish = substrate_fn(img), img.clone()
        scores = np.empty(n_steps + 1)
        salient_order = np.flip(np.argsort(explanation.reshape(-1, hw).numpy(), axis=1, kind="stable"), axis=-1)
        for i in range(n_steps + 1):
            scores[i] = float(model(start).softmax(1)[0, cls])
            if i < n_steps:
                coords = salient_order[:, step * i:step * (i + 1)]
                start.numpy().reshape(1, c, hw)[0, :, coords] = finish.numpy().reshape(1, c, hw)[0, :, coords]
    return scores


def _auc(arr):
    return (arr.sum() - arr[0] / 2 - arr[-1] / 2) / (arr.shape[0] - 1)


def test_linear_model_known_curve():
    w = torch.arange(16.0).view(1, 1, 4, 4)
    model = Linear(w)
    img = torch.ones(1, 1, 4, 4)
    curve = causal_curve(model, img, w[:, 0], "deletion", 0, step=4, probability=False)
    # most salient first: the last row (12 + 13 + 14 + 15 = 54), then 38, 22, 6
    assert curve[0].tolist() == [120.0, 66.0, 28.0, 6.0, 0.0]
    worst = causal_curve(model, img, -w[:, 0], "deletion", 0, step=4, probability=False)
    assert worst[0].tolist() == [120.0, 114.0, 92.0, 54.0, 0.0]
    assert curve_auc(curve) < curve_auc(worst)  # the right map deletes faster


@pytest.mark.parametrize("mode", ["deletion", "insertion"])
def test_equals_rise_on_a_cnn(mode):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.Linear(16, 3)).eval()
    imgs = torch.rand(3, 3, 8, 8)
    maps = torch.rand(3, 8, 8)
    fn = deletion_auc if mode == "deletion" else insertion_auc
    got = fn(model, imgs, maps, step=5, batch_size=4)
    substrate = torch.zeros_like if mode == "deletion" else gaussian_blur
    expected = [_auc(_rise_single_run(model, imgs[i:i + 1], maps[i], mode[:3], 5, substrate)) for i in range(3)]
    torch.testing.assert_close(got, torch.tensor(expected, dtype=got.dtype), atol=1e-5, rtol=0)
    torch.testing.assert_close(fn(model, imgs, maps, step=5, batch_size=1), got, atol=1e-6, rtol=0)


def test_auc_and_substrates():
    torch.testing.assert_close(curve_auc(torch.tensor([[1.0, 1.0, 1.0]])), torch.tensor([1.0]))
    torch.testing.assert_close(curve_auc(torch.tensor([[1.0, 0.0]])), torch.tensor([0.5]))
    x = torch.ones(1, 2, 21, 21)
    blurred = gaussian_blur(x)
    assert blurred[0, :, 10, 10].allclose(torch.ones(2))  # away from the zero-padded border, mass is kept
    assert blurred[0, 0, 0, 0] < 0.6


def test_mode_restored_and_errors():
    model = Linear(torch.ones(1, 1, 4, 4)).train()
    deletion_auc(model, torch.ones(2, 1, 4, 4), torch.rand(2, 4, 4))
    assert model.training and model.w.grad is None
    with pytest.raises(ValueError, match="upsample"):
        deletion_auc(model, torch.ones(2, 1, 4, 4), torch.rand(2, 2, 2))
    with pytest.raises(ValueError):
        causal_curve(model, torch.ones(2, 1, 4, 4), torch.rand(2, 4, 4), "removal")
    with pytest.raises(ValueError):
        insertion_auc(model, torch.ones(2, 1, 4, 4), torch.rand(2, 4, 4), substrate="noise")
