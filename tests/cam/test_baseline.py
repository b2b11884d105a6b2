"""The random-map baseline: pytorch-grad-cam's RandomCAM written out, reproducibility, independence of the target."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab.cam import GradCAM, RandomCAM

LAYER = "features.relu3"


def test_random_channel_weights_on_the_activations(small_cnn, batch):
    store = {}
    h = small_cnn.features.relu3.register_forward_hook(lambda m, i, o: store.setdefault("a", o.clone()))
    with torch.no_grad():
        small_cnn(batch)
    h.remove()
    w = torch.rand(4, 12, generator=torch.Generator().manual_seed(7), dtype=torch.float64) * 2 - 1  # U[-1, 1)
    expected = F.relu((w.float()[:, :, None, None] * store["a"]).sum(1))
    with RandomCAM(small_cnn, LAYER, seed=7) as cam:
        torch.testing.assert_close(cam(batch, raw=True), expected, atol=1e-6, rtol=1e-5)
        assert torch.equal(cam(batch, 0), cam(batch, 3))  # the target does not matter
        assert cam.compute(batch, 2).classes.tolist() == [2] * 4
        with pytest.raises(ValueError):
            cam(batch, 9)  # but it is checked like any method's


def test_seeds(small_cnn, batch):
    with RandomCAM(small_cnn, LAYER) as a, RandomCAM(small_cnn, LAYER, seed=1) as b, \
            RandomCAM(small_cnn, LAYER, seed=None) as fresh, GradCAM(small_cnn, LAYER) as grad:
        assert torch.equal(a(batch), a(batch))
        assert not torch.equal(a(batch), b(batch))
        assert not torch.equal(fresh(batch), fresh(batch))
        assert not torch.allclose(a(batch), grad(batch), atol=0.1)
    with pytest.raises(TypeError):
        RandomCAM(small_cnn, LAYER, seed=1.5)
