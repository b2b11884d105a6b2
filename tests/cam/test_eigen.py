"""Eigen-CAM against the SVD written out, both Gram branches, the sign convention."""

from __future__ import annotations

import pytest
import torch

from attnlab.cam import EigenCAM
from attnlab.cam.eigen import first_component_projection

from .conftest import SmallCNN


def _svd_projection(a: torch.Tensor) -> torch.Tensor:
    """pytorch-grad-cam's get_2d_projection (centred, Xc @ V[0]) with our sign: positive with the mean map."""
    n, k, h, w = a.shape
    out = []
    for i in range(n):
        x = a[i].reshape(k, -1).T.double()  # (hw, K)
        xc = x - x.mean(0)
        _, _, vh = torch.linalg.svd(xc, full_matrices=False)
        p = xc @ vh[0]
        ref = x.mean(1)
        if (p * (ref - ref.mean())).sum() < 0:
            p = -p
        out.append(p.reshape(h, w))
    return torch.stack(out).float()


@pytest.mark.parametrize("channels", [12, 80])  # hw = 64 > K and hw <= K: both Gram matrices
def test_equals_the_svd_projection(channels, batch):
    model = SmallCNN(channels=channels).eval()
    store = {}
    h = model.features.relu3.register_forward_hook(lambda m, i, o: store.setdefault("a", o.clone()))
    with torch.no_grad():
        model(batch)
    h.remove()
    expected = _svd_projection(store["a"])
    torch.testing.assert_close(first_component_projection(store["a"]), expected, atol=1e-4, rtol=1e-4)
    with EigenCAM(model, "features.relu3") as cam:
        torch.testing.assert_close(cam(batch, raw=True), expected.clamp_min(0), atol=1e-4, rtol=1e-4)


def test_sign_follows_the_mean_activation():
    a = torch.zeros(1, 4, 4, 4)
    a[0, :, 1:3, 1:3] = torch.tensor([1.0, 2.0, 3.0, 4.0])[:, None, None]  # a bright blob in every channel
    proj = first_component_projection(a)
    assert proj[0, 1:3, 1:3].min() > proj[0].max() * 0.99  # the blob is the positive end
    assert torch.equal(first_component_projection(torch.zeros(2, 3, 4, 4)), torch.zeros(2, 4, 4))


def test_takes_no_targets(small_cnn, batch):
    with EigenCAM(small_cnn, "features.relu3") as cam:
        assert cam.compute(batch).classes is None
        with pytest.raises(ValueError, match="class-agnostic"):
            cam(batch, 1)
