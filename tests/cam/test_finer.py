"""Finer-CAM (arXiv 2501.11309): the target score written out, the comparison classes, reductions to Grad-CAM."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab.cam import FinerCAM, GradCAM

from .conftest import SmallCNN

LAYER = "features.relu3"


def _comparisons(logits: torch.Tensor, c: int, ranks) -> list[int]:
    """The classes d != c sorted by |y_d - y_c| (ties by index), picked by rank (rank 1 = the closest)."""
    others = sorted((d for d in range(logits.numel()) if d != c), key=lambda d: (abs(float(logits[d] - logits[c])), d))
    return [others[r - 1] for r in ranks]


def _finer_grads(model, x, classes, ranks, alpha, weighting):
    """A and d s / d A for the authors' weighted target, p_d held constant."""
    store = {}

    def hook(_m, _i, out):
        out.retain_grad()
        store["a"] = out

    h = dict(model.named_modules())[LAYER].register_forward_hook(hook)
    try:
        out = model(x)
    finally:
        h.remove()
    total, comps = 0, []
    for i, c in enumerate(classes):
        d = _comparisons(out[i].detach(), c, ranks)
        comps.append(d)
        p = out[i].detach().softmax(0)[d] if weighting == "probability" else torch.ones(len(d))
        total = total + (p * (out[i, c] - alpha * out[i, d])).sum() / (p.sum() + (1e-9 if weighting == "probability"
                                                                                   else 0))
    (g,) = torch.autograd.grad(total, store["a"])
    return store["a"].detach(), g, comps


@pytest.mark.parametrize("alpha,ranks,weighting", [(1.0, (1, 2, 3), "probability"), (0.6, (1, 3), "uniform"),
                                                   (1.0, (4,), "probability")])
def test_equals_the_weighted_difference_written_out(small_cnn, batch, alpha, ranks, weighting):
    with torch.no_grad():
        pred = small_cnn(batch).argmax(1).tolist()
    a, g, comps = _finer_grads(small_cnn, batch, pred, ranks, alpha, weighting)
    expected = F.relu((g.mean((2, 3))[:, :, None, None] * a).sum(1))
    with FinerCAM(small_cnn, LAYER, alpha=alpha, ranks=ranks, weighting=weighting) as cam:
        result = cam.compute(batch)
        assert result.classes.tolist() == pred
        assert cam.last_comparisons.tolist() == comps
    torch.testing.assert_close(result.raw[LAYER], expected, atol=1e-6, rtol=1e-4)


def test_one_comparison_is_grad_cam_of_the_logit_difference(small_cnn, batch):
    targets = [1, 4, 0, 2]
    with torch.no_grad():
        logits = small_cnn(batch)
    d = torch.tensor([_comparisons(logits[i], c, (1,))[0] for i, c in enumerate(targets)])
    c = torch.tensor(targets)
    with FinerCAM(small_cnn, LAYER, alpha=0.5, ranks=(1,), weighting="uniform") as finer, \
            GradCAM(small_cnn, LAYER) as grad:
        diff = lambda out: out.gather(1, c[:, None])[:, 0] - 0.5 * out.gather(1, d[:, None])[:, 0]  # noqa: E731
        torch.testing.assert_close(finer(batch, targets, raw=True), grad(batch, diff, raw=True), atol=1e-6, rtol=1e-5)
    # alpha = 0: the base method's map of y_c itself (up to the positive factor sum p / (sum p + 1e-9))
    with FinerCAM(small_cnn, LAYER, alpha=0.0) as finer, GradCAM(small_cnn, LAYER) as grad:
        torch.testing.assert_close(finer(batch, targets), grad(batch, targets), atol=1e-5, rtol=0)


def test_base_method_makes_the_map(small_cnn, batch):
    with torch.no_grad():
        pred = small_cnn(batch).argmax(1).tolist()
    a, g, _ = _finer_grads(small_cnn, batch, pred, (1, 2, 3), 1.0, "probability")
    with FinerCAM(small_cnn, LAYER, base="layercam") as cam:
        torch.testing.assert_close(cam(batch, raw=True), F.relu((F.relu(g) * a).sum(1)), atol=1e-6, rtol=1e-4)


def test_errors(small_cnn, batch):
    with FinerCAM(small_cnn, LAYER) as cam, pytest.raises(TypeError, match="callable"):
        cam(batch, lambda out: out[:, 0])
    with FinerCAM(small_cnn, LAYER, ranks=(5,)) as cam, pytest.raises(ValueError, match=r"\[1, 4\]"):
        cam(batch)  # 5 classes: ranks 1..4
    for kw in (dict(base="scorecam"), dict(weighting="softmax"), dict(ranks=()), dict(ranks=(0,))):
        with pytest.raises(ValueError):
            FinerCAM(SmallCNN(), LAYER, **kw)
