"""A NaN or inf anywhere a CAM reads from (input, activations, scores, gradients) is a clear error, never an
all-zero map; an input the model cannot take is named, not a raw convolution error."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attnlab.cam import CAM_METHODS, check_finite, create_cam

from .conftest import SmallCNN

ALL = sorted(CAM_METHODS)
GRADIENT = [n for n in ALL if CAM_METHODS[n].needs_gradients]


def _make(name: str, model: nn.Module, layer: str = "features.relu3"):
    if name == "fullgrad":  # FullGrad reads every biased layer of the model, not one target layer
        layer = None
    return create_cam(name, model, layer, **({"batch_size": 16} if name == "scorecam" else {}))


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad,kind", [(float("nan"), "1 NaN, 0 inf"), (float("inf"), "0 NaN, 1 inf"),
                                      (float("-inf"), "0 NaN, 1 inf")])
def test_a_non_finite_input_is_refused_by_every_method(name, bad, kind, batch):
    model = SmallCNN().eval()
    x = batch.clone()
    x[2, 1, 3, 4] = bad
    with _make(name, model) as cam, pytest.raises(ValueError) as err:
        cam(x)
    message = str(err.value)
    assert f"1 non-finite value ({kind}) of {x.numel()} in the input x, in image [2]" in message
    assert "all-zero map" in message and "\n" not in message
    assert _hooks(model) == 0 and all(not m.training for m in model.modules())


@pytest.mark.parametrize("name", ALL)
def test_non_finite_weights_before_the_target_layer_name_the_activation(name, batch):
    model = SmallCNN().eval()
    with torch.no_grad():
        model.features.conv1.weight[0, 0, 0, 0] = float("nan")
    layer = "" if name == "fullgrad" else r" 'features\.relu3'"
    with _make(name, model) as cam, pytest.raises(ValueError, match=f"activation of target layer{layer}"):
        cam(batch)


# the class-agnostic methods (Eigen-CAM, KPCA-CAM) and the random baseline never read the head
@pytest.mark.parametrize("name", [n for n in ALL if not CAM_METHODS[n].class_agnostic and n != "randomcam"])
def test_a_non_finite_head_names_the_scores(name, batch):
    model = SmallCNN().eval()
    with torch.no_grad():
        model.fc.weight[1, 0] = float("inf")
    # Ablation-CAM's weights are differences of the ablated scores: a non-finite score makes its map non-finite
    what = {"scorecam": "the scores of the masked inputs", "ablationcam": "the ablationcam map"}.get(name,
                                                                                                  "the target score")
    with _make(name, model) as cam, pytest.raises(ValueError, match=f"in {what}"):
        cam(batch, targets=1)


class _Sqrt(nn.Module):
    """sqrt(max(x, 0)): finite forward, infinite derivative where the ReLU before it gave 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp_min(0).sqrt()


# FullGrad reads gradients only at its biased layers, before relu3, whose backward zeroes the infinite
# derivative of the sqrt: its gradients (and map) are finite here, so it has nothing to refuse.
@pytest.mark.parametrize("name", [n for n in GRADIENT if n != "fullgrad"])
def test_non_finite_gradients_are_named(name, batch):
    model = SmallCNN().eval()
    model.features.add_module("sqrt", _Sqrt())
    with _make(name, model) as cam, pytest.raises(ValueError,
                                                  match=r"in the gradient of the target score at layer 'features\."
                                                        r"relu3'"):
        cam(batch)


def test_check_finite_counts_and_lists_images():
    t = torch.zeros(12, 3)
    t[1:11, 0] = float("nan")
    with pytest.raises(ValueError, match=r"10 non-finite values \(10 NaN, 0 inf\) of 36 in maps, in images "
                                         r"\[1, 2, 3, 4, 5, 6, 7, 8\] and 2 more; a CAM"):
        check_finite(t, "maps", "fix them")
    check_finite(torch.ones(2, 2), "maps", "fix them")  # finite: nothing happens


@pytest.mark.parametrize("name", ALL)
def test_an_input_the_model_cannot_take_is_named(name, batch):
    model = SmallCNN().eval()
    with _make(name, model) as cam:
        with pytest.raises(ValueError, match=r"x has 1 channel, the model's first convolution takes 3"):
            cam(batch[:, :1])
        with pytest.raises(ValueError, match=r"x is torch.uint8; the model takes floating-point images"):
            cam((batch * 50).clamp(0, 255).to(torch.uint8))
        with pytest.raises(ValueError, match=r"x is torch.float64 on cpu, the model's weights torch.float32"):
            cam(batch.double())


@pytest.mark.parametrize("method", ["gradcampp", "xgradcam"])
@pytest.mark.parametrize("eps", [-1.0, float("nan"), float("inf")])
def test_eps_is_a_finite_non_negative_number(method, eps):
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        create_cam(method, SmallCNN(), "features.relu3", eps=eps)


def test_cam_maps_takes_one_method_name_as_a_string(batch):
    from attnlab.cam import cam_maps

    maps = cam_maps(SmallCNN().eval(), batch, "gradcam", "features.relu3")  # not the methods 'g', 'r', ...
    assert list(maps) == ["gradcam"] and maps["gradcam"].shape == (4, 16, 16)
