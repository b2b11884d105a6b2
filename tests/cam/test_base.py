"""What every method shares: layers, hooks as a context manager, model state, combination, leaks."""

from __future__ import annotations

import gc

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.cam import (
    CAM_METHODS,
    EigenCAM,
    GradCAM,
    ScoreCAM,
    combine_maps,
    create_cam,
    default_target_layer,
    get_cam_class,
    list_cams,
    normalize_maps,
    upsample_maps,
)

from .conftest import SmallCNN

ALL = sorted(CAM_METHODS)


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _make(name, model, layer="features.relu3", **kw):
    if CAM_METHODS[name].forwards_per_channel:
        kw.setdefault("batch_size", 16)
    if name == "fullgrad":  # every bias layer of the model, not a layer's activations
        layer = None
    return create_cam(name, model, layer, **kw)


@pytest.mark.parametrize("name", ALL)
def test_maps_shape_range_and_raw(name, small_cnn, batch):
    with _make(name, small_cnn) as cam:
        maps = cam(batch)
        raw = cam(batch, raw=True)
    # raw maps are at the target layer's resolution; FullGrad's at the input's (it sums every layer's term)
    assert maps.shape == (4, 16, 16) and raw.shape == ((4, 16, 16) if name == "fullgrad" else (4, 8, 8))
    assert maps.min() >= 0 and maps.max() <= 1 and torch.isfinite(maps).all()
    assert (raw >= 0).all()
    torch.testing.assert_close(maps, normalize_maps(upsample_maps(raw, (16, 16))))


@pytest.mark.parametrize("name", ALL)
def test_hooks_removed_on_exit_and_after_an_error(name, small_cnn, batch):
    assert _hooks(small_cnn) == 0
    with _make(name, small_cnn) as cam:
        expected = len(cam.target_names) + (name == "fullgrad")  # FullGrad also hooks the model's input
        assert _hooks(small_cnn) == expected == len(cam.hook_handles)
        cam(batch)
    assert _hooks(small_cnn) == 0
    cam.remove_hooks()  # idempotent
    with pytest.raises(RuntimeError, match="removed"):
        cam(batch)
    with pytest.raises(KeyError):
        with _make(name, small_cnn) as cam:
            assert _hooks(small_cnn) == expected
            raise KeyError("inside the block")
    assert _hooks(small_cnn) == 0


@pytest.mark.parametrize("name", ALL)
def test_error_inside_the_forward_leaves_no_trace(name, batch):
    class Boom(nn.Module):
        def forward(self, x):
            raise KeyError("boom")

    model = SmallCNN().eval()
    model.fc = nn.Sequential(Boom())
    grad_mode = torch.is_grad_enabled()
    with pytest.raises(KeyError):
        with _make(name, model) as cam:
            cam(batch)
    assert torch.is_grad_enabled() == grad_mode
    assert _hooks(model) == 0
    assert not cam._recording and all(a is None for a in cam._acts)


@pytest.mark.parametrize("name", ALL)
def test_model_state_is_left_as_it_was(name, batch):
    model = SmallCNN()
    model.train()
    model.features.bn3.eval()  # mixed flags must come back as they were
    for p in model.parameters():
        p.grad = None
    model.fc.weight.grad = torch.ones_like(model.fc.weight)
    modes = {n: m.training for n, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with _make(name, model) as cam:
        cam(batch)
    assert {n: m.training for n, m in model.named_modules()} == modes
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k  # no BN statistic update, num_batches_tracked included
    assert torch.equal(model.fc.weight.grad, torch.ones_like(model.fc.weight))
    assert all(p.grad is None for n, p in model.named_parameters() if n != "fc.weight")


def test_user_forwards_inside_the_block_are_untouched(small_cnn, batch):
    expected = small_cnn(batch)
    with GradCAM(small_cnn, "features.relu3") as cam:
        out = small_cnn(batch)
        assert all(a is None for a in cam._acts)
    torch.testing.assert_close(out, expected)
    assert out.requires_grad


def test_target_layer_forms(small_cnn, batch):
    layer = small_cnn.features.relu3
    with GradCAM(small_cnn, layer) as by_module, GradCAM(small_cnn, "features.relu3") as by_name:
        assert by_module.target_names == ["features.relu3"]
        torch.testing.assert_close(by_module(batch), by_name(batch))
    assert default_target_layer(small_cnn) == "features"
    with GradCAM(small_cnn) as guessed:
        assert guessed.target_names == ["features"]


def test_unknown_layer_names_close_matches(small_cnn):
    with pytest.raises(ValueError, match="features.relu3"):
        GradCAM(small_cnn, "features.relu_3")
    with pytest.raises(ValueError, match=r"named 'features\.cnov3' in SmallCNN; did you mean 'features\.conv3'"):
        GradCAM(small_cnn, "features.cnov3")
    with pytest.raises(ValueError, match="not a submodule"):
        GradCAM(small_cnn, nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match="twice"):
        GradCAM(small_cnn, ["features.conv3", small_cnn.features.conv3])
    with pytest.raises(TypeError):
        GradCAM(small_cnn, 3)
    assert _hooks(small_cnn) == 0


def test_non_map_layer_raises(small_cnn, batch):
    with GradCAM(small_cnn, "fc") as cam, pytest.raises(ValueError, match=r"\(N, C, h, w\)"):
        cam(batch)


def test_several_layers_are_normalised_then_averaged(small_cnn, batch):
    layers = ["features.relu2", "features.relu3"]
    with GradCAM(small_cnn, layers) as cam:
        result = cam.compute(batch, 1)
        with pytest.raises(ValueError, match="one target layer"):
            cam(batch, raw=True)
    assert set(result.raw) == set(layers)
    each = [normalize_maps(upsample_maps(result.raw[n], (16, 16))) for n in layers]
    torch.testing.assert_close(result.maps, normalize_maps((each[0] + each[1]) / 2))
    torch.testing.assert_close(combine_maps(list(result.raw.values()), (16, 16)), result.maps)
    for n in layers:  # each layer's raw map is what a single-layer Grad-CAM gives
        with GradCAM(small_cnn, n) as single:
            torch.testing.assert_close(single(batch, 1, raw=True), result.raw[n], atol=1e-6, rtol=1e-5)


def test_normalize_constant_and_upsample():
    z = torch.zeros(2, 3, 3)
    assert torch.equal(normalize_maps(z), z)
    m = torch.arange(8.0).view(2, 2, 2)
    n = normalize_maps(m)
    assert n.amin((1, 2)).tolist() == [0, 0] and n.amax((1, 2)).tolist() == [1, 1]
    torch.testing.assert_close(upsample_maps(m, (4, 4)),
                               F.interpolate(m[:, None], size=(4, 4), mode="bilinear", align_corners=False)[:, 0])


def test_registry():
    assert list_cams() == sorted(["gradcam", "gradcampp", "xgradcam", "hirescam", "layercam", "scorecam",
                                  "eigencam", "gradcamelementwise", "ablationcam", "eigengradcam", "fullgrad",
                                  "kpcacam", "finercam", "randomcam"])
    with pytest.raises(ValueError, match="Known CAM methods: ablationcam"):
        create_cam("gradcan", SmallCNN(), "features")
    assert isinstance(create_cam("Grad-CAM++", SmallCNN(), "features"), CAM_METHODS["gradcampp"])
    assert get_cam_class(" Score-CAM ") is ScoreCAM  # looked up without building one
    with pytest.raises(ValueError, match="unknown CAM method 'gradcma'. Did you mean 'gradcam'"):
        get_cam_class("gradcma")
    assert [n for n in list_cams() if CAM_METHODS[n].class_agnostic] == ["eigencam", "kpcacam"]


def test_channels_last_falls_back_when_the_model_needs_contiguous(batch):
    class ViewNet(SmallCNN):  # flattens with .view, which a channels-last feature map refuses
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(12 * 8 * 8, 5)

        def forward(self, x):
            x = self.features(x)
            return self.fc(x.view(x.shape[0], -1))

    model = ViewNet().eval()
    with GradCAM(model, "features.relu3", channels_last=False) as plain, \
            GradCAM(model, "features.relu3") as auto:
        torch.testing.assert_close(auto(batch, 1), plain(batch, 1))
        assert auto._use_channels_last is False
    with GradCAM(model, "features.relu3", channels_last=True) as forced, pytest.raises(RuntimeError):
        forced(batch)


def test_a_thousand_calls_do_not_grow_memory():
    model = SmallCNN().eval()
    x = torch.randn(2, 3, 8, 8)

    def live_tensors() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if issubclass(type(o), torch.Tensor))

    with GradCAM(model, "features.relu3") as cam, ScoreCAM(model, "features.relu3") as score, \
            EigenCAM(model, "features.relu3") as eigen:
        for _ in range(5):
            cam(x), score(x), eigen(x)
        before = live_tensors()
        for _ in range(1000):
            cam(x)
        for _ in range(50):
            score(x), eigen(x)
        after = live_tensors()
        assert _hooks(model) == 3
    assert after <= before
    assert _hooks(model) == 0


def test_cam_maps_runs_several_methods(small_cnn, batch):
    from attnlab.cam import cam_maps

    maps = cam_maps(small_cnn, batch, ["gradcam", "eigencam", "layercam"], "features.relu3", targets=1)
    assert list(maps) == ["gradcam", "eigencam", "layercam"]
    with GradCAM(small_cnn, "features.relu3") as cam:
        torch.testing.assert_close(maps["gradcam"], cam(batch, 1))
    assert _hooks(small_cnn) == 0
