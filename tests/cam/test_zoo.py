"""Every attnlab model: CAMs and the modules' own maps (skipped until attnlab.models exists)."""

from __future__ import annotations

import pytest
import torch

import attnlab
from attnlab.cam import CAM_METHODS, GradCAM, ScoreCAM, capture_attention, create_cam, list_cams

models = pytest.importorskip("attnlab.models")

X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def _model(attention=None, name="resnet20"):
    torch.manual_seed(0)
    return attnlab.create_model(name, attention=attention).eval()


@pytest.mark.parametrize("attention", [None, *attnlab.list_attention()])
def test_gradcam_and_capture_on_resnet20(attention):
    model = _model(attention)
    with GradCAM(model, "layer3") as cam:
        maps = cam(X)
    assert maps.shape == (2, 32, 32) and torch.isfinite(maps).all() and maps.max() <= 1
    captured = capture_attention(model, X)
    expected = [n for n, m in model.named_modules() if isinstance(m, attnlab.attention.AttentionModule)]
    assert list(captured) == expected
    for name, m in captured.items():
        assert m.channel is not None or m.spatial is not None, name
        if m.spatial is not None:
            assert m.spatial.dim() == 4 and m.spatial.shape[:2] == (2, 1), name
        if m.channel is not None:
            assert m.channel.shape[0] == 2 and m.channel.dim() == 2, name
    assert not any(m.training for m in model.modules())


@pytest.mark.parametrize("method", list_cams())
def test_every_method_on_a_cbam_resnet(method):
    model = _model("cbam").train()
    kw = {"top_k": 4} if CAM_METHODS[method].forwards_per_channel else {}
    with create_cam(method, model, "layer3", **kw) as cam:
        maps = cam(X)
    assert maps.shape == (2, 32, 32) and torch.isfinite(maps).all()
    assert all(m.training for m in model.modules())


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_default_layer_on_imagenet_resnets(name):
    model = _model(name=name)
    with GradCAM(model) as cam:
        assert cam.target_names == ["layer4"]
        assert cam(X[:1]).shape == (1, 32, 32)


def test_scorecam_on_resnet20_matches_torchcam():
    methods = pytest.importorskip("torchcam.methods")
    model = _model("se")
    with methods.ScoreCAM(model, "layer3", batch_size=64) as extractor:
        with torch.no_grad():
            pred = model(X).argmax(1).tolist()
            theirs = extractor(class_idx=pred, normalized=False)[0]
    with ScoreCAM(model, "layer3") as cam:
        torch.testing.assert_close(cam(X, pred, raw=True), theirs, atol=1e-6, rtol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", list_cams())
def test_cuda(method):
    model = _model("cbam").cuda()
    x = X.cuda()
    kw = {"top_k": 4} if CAM_METHODS[method].forwards_per_channel else {}
    with create_cam(method, model, "layer3", **kw) as cam:
        maps = cam(x)
    assert maps.is_cuda and maps.shape == (2, 32, 32)
    with create_cam(method, model.cpu(), "layer3", **kw) as cam:
        torch.testing.assert_close(maps.cpu(), cam(X), atol=1e-3, rtol=0)
    assert len(capture_attention(model.cuda(), x)) > 0
