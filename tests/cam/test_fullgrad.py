"""FullGrad (Srinivas & Fleuret 2019): the full-gradient decomposition written out (checked by its completeness),
the authors' post-processing, the bias layers, eigen smoothing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.cam import FullGrad, normalize_maps

from .conftest import SmallCNN

TARGETS = [0, 1, 2, 3]
BIAS_LAYERS = ["features.conv1", "features.bn1", "features.conv2", "features.conv3", "features.bn3"]


def _bias(m: nn.Module) -> torch.Tensor:
    if isinstance(m, nn.BatchNorm2d):  # ((x - mu) / s) * gamma + beta = x * gamma / s + (beta - mu * gamma / s)
        return (m.bias - m.running_mean * m.weight / torch.sqrt(m.running_var + m.eps)).detach()
    return m.bias.detach()


def _decomposition(model, x, targets):
    """dy/dx, and dy/dz_l with the effective bias b_l of every bias layer, by plain autograd."""
    modules = dict(model.named_modules())
    outs = []

    def hook(_m, _i, out):
        outs.append(out)
        return out.clone()  # in-place ReLUs follow

    handles = [modules[n].register_forward_hook(hook) for n in BIAS_LAYERS]
    try:
        xg = x.clone().requires_grad_()
        y = model(xg).gather(1, torch.tensor(targets)[:, None])[:, 0]
    finally:
        for h in handles:
            h.remove()
    grads = torch.autograd.grad(y.sum(), [xg, *outs])
    return y.detach(), grads[0], [(g, _bias(modules[n])) for n, g in zip(BIAS_LAYERS, grads[1:], strict=True)]


def _psi(t: torch.Tensor) -> torch.Tensor:
    """The authors' _postProcess, upsampling and channel sum: abs, per-image min-max (+1e-6), bilinear corners."""
    t = t.abs()
    t = t - t.flatten(1).min(1).values[:, None, None, None]
    t = t / (t.flatten(1).max(1).values[:, None, None, None] + 1e-6)
    return F.interpolate(t, size=(16, 16), mode="bilinear", align_corners=True).sum(1)


def test_completeness_of_the_decomposition(small_cnn, batch):
    """y_c = <dy/dx, x> + sum_l <dy/dz_l, b_l> + the linear layer's bias: the oracle's pieces are right."""
    y, gx, terms = _decomposition(small_cnn, batch, TARGETS)
    total = (gx * batch).sum((1, 2, 3)) + sum((g * b[None, :, None, None]).sum((1, 2, 3)) for g, b in terms)
    total = total + small_cnn.fc.bias.detach()[TARGETS]
    torch.testing.assert_close(total, y, atol=1e-4, rtol=1e-5)


def test_equals_the_papers_saliency(small_cnn, batch):
    _, gx, terms = _decomposition(small_cnn, batch, TARGETS)
    parts = [_psi(gx * batch)] + [_psi(g * b[None, :, None, None]) for g, b in terms]
    expected = sum(parts)
    with FullGrad(small_cnn) as cam:
        assert cam.target_names == BIAS_LAYERS
        result = cam.compute(batch, TARGETS)
        assert list(cam.last_terms) == ["input", *BIAS_LAYERS]
        for got, part in zip(cam.last_terms.values(), parts, strict=True):
            torch.testing.assert_close(got, part, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(result.raw["fullgrad"], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(result.maps, normalize_maps(expected), atol=1e-5, rtol=0)
    assert list(result.raw) == ["fullgrad"] and result.classes.tolist() == TARGETS


def test_eigen_smooth_is_the_first_component_of_the_terms(small_cnn, batch):
    with FullGrad(small_cnn) as plain:
        plain(batch, TARGETS)
        stacked = torch.stack(list(plain.last_terms.values()), 1).double()  # (N, 6, 16, 16)
    expected = []
    for s in stacked:
        x = s.reshape(s.shape[0], -1).T
        xc = x - x.mean(0)
        p = xc @ torch.linalg.svd(xc, full_matrices=False)[2][0]
        ref = x.sum(1)
        expected.append(F.relu(p if (p * (ref - ref.mean())).sum() >= 0 else -p).reshape(16, 16))
    with FullGrad(small_cnn, eigen_smooth=True) as cam:
        torch.testing.assert_close(cam(batch, TARGETS, raw=True), torch.stack(expected).float(), atol=1e-5, rtol=1e-4)


def test_target_layer_restricts_the_bias_layers(small_cnn, batch):
    with FullGrad(small_cnn, "features.conv3") as cam:
        assert cam.target_names == ["features.conv3"]
        cam(batch)
        assert list(cam.last_terms) == ["input", "features.conv3"]
    with FullGrad(small_cnn, ["features.conv1", "features.bn3"]) as cam:
        assert cam.target_names == ["features.conv1", "features.bn3"]
    with pytest.raises(ValueError, match="no Conv2d with a bias"):
        FullGrad(small_cnn, "features.relu3")
    model = SmallCNN()
    model.features.bn1 = nn.BatchNorm2d(8, track_running_stats=False)
    with pytest.raises(ValueError, match="running statistics"):
        FullGrad(model)


def test_under_inference_mode_and_frozen_parameters(small_cnn, batch):
    with FullGrad(small_cnn) as cam:
        expected = cam(batch, TARGETS)
        with torch.inference_mode():
            torch.testing.assert_close(cam(batch.clone(), TARGETS), expected)
        for p in small_cnn.parameters():
            p.requires_grad_(False)
        xg = batch.clone().requires_grad_()
        torch.testing.assert_close(cam(xg, TARGETS), expected)
        assert xg.grad is None
