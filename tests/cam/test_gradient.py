"""The gradient CAM family against captum, torchcam and the papers' formulas written out here; eigen smoothing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab.cam import (
    EigenGradCAM,
    GradCAM,
    GradCAMElementWise,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    XGradCAM,
    normalize_maps,
)

TARGETS = [0, 1, 2, 3]


def _norm_up(raw: torch.Tensor, size=(16, 16)) -> torch.Tensor:
    """ReLU, bilinear upsampling, per-map min-max: what every method returns, written out."""
    up = F.interpolate(F.relu(raw)[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    lo = up.amin((1, 2), keepdim=True)
    hi = (up - lo).amax((1, 2), keepdim=True)
    return torch.where(hi > 0, (up - lo) / hi, torch.zeros_like(up))


def _acts_and_grads(model, layer, x, targets):
    """A (N, K, h, w) and dy/dA by plain autograd, independently of attnlab."""
    store = {}

    def hook(_m, _i, out):
        out.retain_grad()
        store["a"] = out

    handle = dict(model.named_modules())[layer].register_forward_hook(hook)
    try:
        out = model(x)
        a = store["a"]
        (g,) = torch.autograd.grad(out.gather(1, torch.tensor(targets)[:, None]).sum(), a)
    finally:
        handle.remove()
    return a.detach(), g


@pytest.mark.parametrize("layer", ["features.conv3", "features.conv2"])
def test_gradcam_equals_captum(small_cnn, batch, layer):
    captum = pytest.importorskip("captum.attr")
    attr = captum.LayerGradCam(small_cnn, dict(small_cnn.named_modules())[layer]).attribute(batch, target=TARGETS)
    expected = _norm_up(attr[:, 0].detach())
    with GradCAM(small_cnn, layer) as cam:
        got = cam(batch, TARGETS)
        raw = cam(batch, TARGETS, raw=True)
    assert got.shape == (4, 16, 16)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(raw, F.relu(attr[:, 0].detach()), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("ours,theirs", [(LayerCAM, "LayerCAM"), (XGradCAM, "XGradCAM"), (GradCAM, "GradCAM")])
def test_layercam_xgradcam_equal_torchcam(small_cnn, batch, ours, theirs):
    methods = pytest.importorskip("torchcam.methods")
    with getattr(methods, theirs)(small_cnn, "features.relu3") as extractor:
        scores = small_cnn(batch)
        expected_raw = extractor(class_idx=TARGETS, scores=scores, normalized=False)[0]
    with ours(small_cnn, "features.relu3") as cam:
        raw = cam(batch, TARGETS, raw=True)
        maps = cam(batch, TARGETS)
    torch.testing.assert_close(raw, expected_raw, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(maps, _norm_up(expected_raw), atol=1e-5, rtol=0)


def test_gradcampp_follows_the_closed_form(small_cnn, batch):
    """alpha = g^2 / (2 g^2 + sum_ab A * g^3 + eps), 0 where g = 0; w = sum alpha relu(g) (pytorch-grad-cam)."""
    a, g = _acts_and_grads(small_cnn, "features.relu3", batch, TARGETS)
    for eps in (1e-6, 0.0):
        g2, g3 = g**2, g**3
        sum_a = a.sum((2, 3))[:, :, None, None]
        alpha = g2 / (2 * g2 + sum_a * g3 + eps)
        alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
        w = (F.relu(g) * alpha).sum((2, 3))
        expected = F.relu((w[:, :, None, None] * a).sum(1))
        with GradCAMPlusPlus(small_cnn, "features.relu3", eps=eps) as cam:
            raw = cam(batch, TARGETS, raw=True)
            maps = cam(batch, TARGETS)
        torch.testing.assert_close(raw, expected, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(maps, _norm_up(expected), atol=1e-5, rtol=0)
    assert (a == 0).any() and (g != 0).any()  # the zero-activation and zero-gradient branches were exercised


def test_gradcampp_differs_from_torchcam_by_its_denominator(small_cnn, batch):
    """torchcam 0.5.0 sums A * g^3 over positions and never divides alpha: not an oracle for Grad-CAM++."""
    methods = pytest.importorskip("torchcam.methods")
    with methods.GradCAMpp(small_cnn, "features.relu3") as extractor:
        theirs = extractor(class_idx=TARGETS, scores=small_cnn(batch), normalized=False)[0]
    with GradCAMPlusPlus(small_cnn, "features.relu3") as cam:
        ours = cam(batch, TARGETS, raw=True)
    assert not torch.allclose(normalize_maps(ours), normalize_maps(theirs), atol=1e-3)


def test_hirescam_and_layercam_formulas(small_cnn, batch):
    a, g = _acts_and_grads(small_cnn, "features.conv3", batch, TARGETS)
    with HiResCAM(small_cnn, "features.conv3") as cam:
        torch.testing.assert_close(cam(batch, TARGETS, raw=True), F.relu((g * a).sum(1)), atol=1e-6, rtol=1e-5)
    with LayerCAM(small_cnn, "features.conv3") as cam:
        torch.testing.assert_close(cam(batch, TARGETS, raw=True), F.relu((F.relu(g) * a).sum(1)), atol=1e-6,
                                   rtol=1e-5)
    with XGradCAM(small_cnn, "features.conv3") as cam:
        w = (g * a).sum((2, 3)) / (a.sum((2, 3)) + 1e-8)
        torch.testing.assert_close(cam(batch, TARGETS, raw=True), F.relu((w[:, :, None, None] * a).sum(1)),
                                   atol=1e-6, rtol=1e-4)


def test_target_forms_agree(small_cnn, batch):
    with GradCAM(small_cnn, "features.relu3") as cam:
        pred = small_cnn(batch).argmax(1)
        by_none = cam(batch)
        torch.testing.assert_close(by_none, cam(batch, pred))
        torch.testing.assert_close(by_none, cam(batch, pred.tolist()))
        torch.testing.assert_close(by_none, cam(batch, lambda logits: logits.gather(1, pred[:, None])[:, 0]))
        torch.testing.assert_close(cam(batch, 2), cam(batch, [2, 2, 2, 2]))
        torch.testing.assert_close(cam(batch, torch.tensor(2)), cam(batch, [2, 2, 2, 2]))
        result = cam.compute(batch, 3)
        assert result.classes.tolist() == [3, 3, 3, 3]
        assert set(result.raw) == {"features.relu3"} and result.output.shape == (4, 5)


@pytest.mark.parametrize("bad,err", [(5, ValueError), ([0, 1], ValueError), (-1, ValueError),
                                     (torch.zeros(4), TypeError), ("cat", TypeError), (True, TypeError),
                                     (lambda logits: logits, ValueError)])
def test_bad_targets_raise(small_cnn, batch, bad, err):
    with GradCAM(small_cnn, "features.relu3") as cam:
        with pytest.raises(err):
            cam(batch, bad)


def test_samples_are_independent(small_cnn, batch):
    """Eval mode: each image's map depends on that image only (BatchNorm uses running statistics)."""
    with GradCAM(small_cnn.train(), "features.relu3") as cam:
        full = cam(batch, TARGETS)
        one = cam(batch[1:2], TARGETS[1:2])
    torch.testing.assert_close(full[1:2], one, atol=1e-6, rtol=0)


def test_gradcam_under_no_grad_and_inference_mode(small_cnn, batch):
    with GradCAM(small_cnn, "features.relu3") as cam:
        expected = cam(batch, TARGETS)
        with torch.no_grad():
            torch.testing.assert_close(cam(batch, TARGETS), expected)
            assert not torch.is_grad_enabled()
        with torch.inference_mode():
            torch.testing.assert_close(cam(batch, TARGETS), expected)
        assert torch.is_grad_enabled()


def test_frozen_parameters_and_input_requiring_grad(small_cnn, batch):
    with GradCAM(small_cnn, "features.relu3") as cam:
        expected = cam(batch, TARGETS)
        for p in small_cnn.parameters():
            p.requires_grad_(False)
        torch.testing.assert_close(cam(batch, TARGETS), expected)
        xg = batch.clone().requires_grad_()
        torch.testing.assert_close(cam(xg, TARGETS), expected)
        assert xg.grad is None


def test_channels_last_gives_the_same_maps(small_cnn, batch):
    with GradCAM(small_cnn, "features.relu3", channels_last=False) as plain, \
            GradCAM(small_cnn, "features.relu3", channels_last=True) as cl:
        torch.testing.assert_close(cl(batch, TARGETS), plain(batch, TARGETS), atol=1e-5, rtol=0)


def _captum_grad_x_act(model, layer, x, targets):
    """captum's LayerGradientXActivation: G * A per element, (N, K, h, w)."""
    captum = pytest.importorskip("captum.attr")
    module = dict(model.named_modules())[layer]
    return captum.LayerGradientXActivation(model, module).attribute(x, target=targets).detach()


@pytest.mark.parametrize("layer", ["features.conv3", "features.relu3"])
def test_elementwise_and_hirescam_equal_captum_grad_x_activation(small_cnn, batch, layer):
    """Grad-CAM element-wise = sum_k ReLU(G_k A_k); HiResCAM = ReLU(sum_k G_k A_k) (captum's G * A)."""
    ga = _captum_grad_x_act(small_cnn, layer, batch, TARGETS)
    with GradCAMElementWise(small_cnn, layer) as cam:
        raw = cam(batch, TARGETS, raw=True)
        maps = cam(batch, TARGETS)
    torch.testing.assert_close(raw, F.relu(ga).sum(1), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(maps, _norm_up(F.relu(ga).sum(1)), atol=1e-5, rtol=0)
    with HiResCAM(small_cnn, layer) as cam:
        torch.testing.assert_close(cam(batch, TARGETS, raw=True), F.relu(ga.sum(1)), atol=1e-6, rtol=1e-5)
    if layer == "features.conv3":  # signed activations: the ReLU's place matters
        assert not torch.allclose(F.relu(ga).sum(1), F.relu(ga.sum(1)))


def _svd_projection(w: torch.Tensor) -> torch.Tensor:
    """pytorch-grad-cam's get_2d_projection: positions x channels, centred, projected on the first right singular
    vector, the sign made to correlate positively with the channel sum. (N, K, h, w) -> (N, h, w)."""
    n, k, h, wd = w.shape
    out = []
    for i in range(n):
        x = w[i].reshape(k, -1).T.double()
        xc = x - x.mean(0)
        _, _, vh = torch.linalg.svd(xc, full_matrices=False)
        p = xc @ vh[0]
        ref = x.sum(1)
        out.append((p if (p * (ref - ref.mean())).sum() >= 0 else -p).reshape(h, wd))
    return torch.stack(out).float()


def test_eigen_gradcam_is_the_first_component_of_grads_times_activations(small_cnn, batch):
    ga = _captum_grad_x_act(small_cnn, "features.relu3", batch, TARGETS)
    expected = F.relu(_svd_projection(ga))
    with EigenGradCAM(small_cnn, "features.relu3") as cam:
        raw = cam(batch, TARGETS, raw=True)
    torch.testing.assert_close(raw, expected, atol=1e-5, rtol=1e-4)
    assert (raw > 0).any() and (raw == 0).any()
    with pytest.raises(ValueError, match="already is a principal component"):
        EigenGradCAM(small_cnn, "features.relu3", eigen_smooth=True)


@pytest.mark.parametrize("cls", [GradCAM, GradCAMPlusPlus, XGradCAM, HiResCAM, GradCAMElementWise, LayerCAM])
def test_eigen_smooth_is_the_first_component_of_the_weighted_activations(small_cnn, batch, cls):
    """pytorch-grad-cam's eigen_smooth: get_2d_projection(w * A) in place of sum_k w_k A_k."""
    a, g = _acts_and_grads(small_cnn, "features.relu3", batch, TARGETS)
    with cls(small_cnn, "features.relu3") as plain, cls(small_cnn, "features.relu3", eigen_smooth=True) as smooth:
        w = plain._weights(a, g)
        weighted = a * (w[:, :, None, None] if w.dim() == 2 else w)
        torch.testing.assert_close(plain(batch, TARGETS, raw=True), F.relu(weighted.sum(1)), atol=1e-6, rtol=1e-4)
        torch.testing.assert_close(smooth(batch, TARGETS, raw=True), F.relu(_svd_projection(weighted)), atol=1e-5,
                                   rtol=1e-4)
