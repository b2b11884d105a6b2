"""Score-CAM: torchcam's maps, the paper's Algorithm 1 and the authors' probability weights, exact savings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab.cam import ScoreCAM, normalize_maps, upsample_maps

from .conftest import SmallCNN, layer_output

LAYER = "features.relu3"
TARGETS = [0, 1, 2, 3]


def _model_with_special_channels() -> SmallCNN:
    """12 channels: 0-2 dead (all zero), 6 constant and positive, 5 a copy of 4."""
    model = SmallCNN(dead=3).eval()
    f = model.features
    with torch.no_grad():
        f.conv3.weight[6] = 0
        f.bn3.bias[6] = 5.0
        for p in (f.conv3.weight, f.conv3.bias, f.bn3.weight, f.bn3.bias, f.bn3.running_mean, f.bn3.running_var):
            p[5] = p[4]
    return model


def _masks(a: torch.Tensor, size) -> torch.Tensor:
    """Each channel min-max normalised (torchcam's + 1e-8) then upsampled: (N, K, h, w) -> (N, K, H, W)."""
    flat = a.flatten(2)
    lo, hi = flat.amin(2)[..., None, None], flat.amax(2)[..., None, None]
    return F.interpolate((a - lo) / (hi - lo + 1e-8), size=size, mode="bilinear", align_corners=False)


@pytest.mark.parametrize("batch_size", [5, 64])
def test_equals_torchcam_with_constant_and_duplicate_channels(batch, batch_size):
    methods = pytest.importorskip("torchcam.methods")
    model = _model_with_special_channels()
    a = layer_output(model, batch, LAYER)
    assert (a[:, :3] == 0).all() and (a[:, 6] == a[:, 6, :1, :1]).all() and torch.equal(a[:, 4], a[:, 5])
    with methods.ScoreCAM(model, LAYER, batch_size=batch_size) as extractor:
        with torch.no_grad():
            model(batch)
            theirs = extractor(class_idx=TARGETS, normalized=False)[0]
    with ScoreCAM(model, LAYER, batch_size=batch_size) as cam:
        raw = cam(batch, TARGETS, raw=True)
        maps = cam(batch, TARGETS)
        n, k = a.shape[:2]
        assert cam.last_candidates == n * k
        assert cam.last_forwarded == n * (k - 5) + 1  # 4 constant channels share one zero image, 5 == 4
    torch.testing.assert_close(raw, theirs, atol=1e-6, rtol=1e-4)
    expected = normalize_maps(upsample_maps(theirs, (16, 16)))
    assert (maps - expected).abs().max() < 1e-4


def test_logit_score_is_algorithm_1(batch):
    """S_k = f_c(X * M_k) - f_c(X_b), alpha = softmax_k(S), L = ReLU(sum alpha_k A_k): written out, one at a time."""
    model = _model_with_special_channels()
    a = layer_output(model, batch, LAYER)
    masks = _masks(a, (16, 16))
    with torch.no_grad():
        base = model(torch.zeros_like(batch))
        expected = []
        for i in range(batch.shape[0]):
            s = torch.stack([model(batch[i:i + 1] * masks[i, k])[0, TARGETS[i]] - base[0, TARGETS[i]]
                             for k in range(a.shape[1])])
            expected.append(F.relu((s.softmax(0)[:, None, None] * a[i]).sum(0)))
    with ScoreCAM(model, LAYER, batch_size=7) as cam:
        torch.testing.assert_close(cam(batch, TARGETS, raw=True), torch.stack(expected), atol=1e-6, rtol=1e-4)


def test_probability_score_is_the_authors_code(batch):
    """alpha_k = softmax(f(X * M_k))_c, used as the weight directly."""
    model = _model_with_special_channels()
    a = layer_output(model, batch, LAYER)
    masks = _masks(a, (16, 16))
    with torch.no_grad():
        expected = []
        for i in range(batch.shape[0]):
            p = torch.stack([model(batch[i:i + 1] * masks[i, k]).softmax(1)[0, TARGETS[i]]
                             for k in range(a.shape[1])])
            expected.append(F.relu((p[:, None, None] * a[i]).sum(0)))
    with ScoreCAM(model, LAYER, score="probability") as cam:
        torch.testing.assert_close(cam(batch, TARGETS, raw=True), torch.stack(expected), atol=1e-6, rtol=1e-4)


def test_options_that_must_not_change_the_maps(batch):
    model = _model_with_special_channels()
    with ScoreCAM(model, LAYER) as cam:
        expected = cam(batch, TARGETS, raw=True)
    variants = [dict(dedupe=False), dict(batch_size=1), dict(batch_size=3), dict(top_k=12), dict(channels_last=False)]
    for kw in variants:
        with ScoreCAM(model, LAYER, **kw) as cam:
            torch.testing.assert_close(cam(batch, TARGETS, raw=True), expected, atol=1e-6, rtol=1e-4, msg=str(kw))
    with ScoreCAM(model, LAYER) as cam:  # a row-wise callable target equals the class index
        by_fn = cam(batch, lambda out: out[:, 2], raw=True)
        torch.testing.assert_close(by_fn, cam(batch, 2, raw=True), atol=1e-6, rtol=1e-4)


def test_top_k_scores_only_k_channels(batch):
    model = _model_with_special_channels()
    with ScoreCAM(model, LAYER, top_k=4) as cam:
        maps = cam(batch, TARGETS)
        assert cam.last_candidates == 4 * 4
        assert cam.last_forwarded <= 4 * 4
    assert maps.shape == (4, 16, 16) and torch.isfinite(maps).all()


@pytest.mark.parametrize("kw", [dict(batch_size=0), dict(score="softmax"), dict(top_k=0), dict(batch_size=2.0)])
def test_bad_options_raise(kw):
    with pytest.raises(ValueError):
        ScoreCAM(SmallCNN(), LAYER, **kw)
