"""Ablation-CAM: captum's layer feature ablation and the paper's Eq. 3 written out, exact savings, options."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab.cam import AblationCAM

from .conftest import SmallCNN, layer_output

LAYER = "features.relu3"
TARGETS = [0, 1, 2, 3]


def _paper_weights(model, x, layer, targets):
    """w_k = (y_c - y_c^k) / y_c, y_c^k with channel k of the output zeroed: one image, one channel at a time."""
    module = dict(model.named_modules())[layer]
    k = layer_output(model, x, layer).shape[1]
    w = torch.zeros(x.shape[0], k)
    with torch.no_grad():
        for i in range(x.shape[0]):
            y = model(x[i:i + 1])[0, targets[i]]
            for ch in range(k):
                def zero(_m, _i, out, ch=ch):
                    out = out.clone()
                    out[:, ch] = 0
                    return out

                h = module.register_forward_hook(zero)
                try:
                    w[i, ch] = (y - model(x[i:i + 1])[0, targets[i]]) / y
                finally:
                    h.remove()
    return w


@pytest.mark.parametrize("layer", [LAYER, "features.conv3"])
def test_equals_the_paper_and_captum(batch, layer):
    model = SmallCNN(dead=3).eval()
    a = layer_output(model, batch, layer)
    w = _paper_weights(model, batch, layer, TARGETS)
    expected = F.relu((w[:, :, None, None] * a).sum(1))
    with AblationCAM(model, layer, batch_size=7) as cam:
        raw = cam(batch, TARGETS, raw=True)
        assert cam.last_candidates == 4 * 12
        dead = int((a.flatten(2) == 0).all(2).sum())
        assert cam.last_forwarded == 4 * 12 - dead  # all-zero channels need no forward
    assert dead == (12 if layer == LAYER else 0) and (w != 0).any()
    torch.testing.assert_close(raw, expected, atol=1e-5, rtol=1e-4)
    captum = pytest.importorskip("captum.attr")
    ablation = captum.LayerFeatureAblation(model, dict(model.named_modules())[layer])
    mask = torch.arange(12).view(1, 12, 1, 1)
    drop = ablation.attribute(batch, target=TARGETS, layer_mask=mask)  # y_c - y_c^k on every element of channel k
    with torch.no_grad():
        y = model(batch).gather(1, torch.tensor(TARGETS)[:, None])
    torch.testing.assert_close(w, drop[:, :, 0, 0] / y, atol=1e-5, rtol=1e-4)


def test_options_that_must_not_change_the_maps(small_cnn, batch):
    with AblationCAM(small_cnn, LAYER) as cam:
        expected = cam(batch, TARGETS, raw=True)
        by_fn = cam(batch, lambda out: out[:, 2], raw=True)  # a row-wise callable equals the class index
        torch.testing.assert_close(by_fn, cam(batch, 2, raw=True), atol=1e-6, rtol=1e-5)
    for kw in (dict(batch_size=1), dict(batch_size=5), dict(top_k=12), dict(channels_last=False)):
        with AblationCAM(small_cnn, LAYER, **kw) as cam:
            torch.testing.assert_close(cam(batch, TARGETS, raw=True), expected, atol=1e-4, rtol=1e-5, msg=str(kw))


def test_top_k_ablates_only_k_channels(small_cnn, batch):
    with AblationCAM(small_cnn, LAYER, top_k=3) as cam:
        maps = cam(batch, TARGETS)
        assert cam.last_candidates == 4 * 3 and cam.last_forwarded <= 4 * 3
    assert maps.shape == (4, 16, 16) and torch.isfinite(maps).all()


@pytest.mark.parametrize("kw", [dict(batch_size=0), dict(batch_size=2.0), dict(top_k=0), dict(top_k=True)])
def test_bad_options_raise(kw):
    with pytest.raises(ValueError):
        AblationCAM(SmallCNN(), LAYER, **kw)
