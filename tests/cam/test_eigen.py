"""Eigen-CAM against the SVD written out, both Gram branches, the sign convention; KPCA-CAM against kernel PCA
written out in numpy (scikit-learn's kernels and centring)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlab.cam import KPCACAM, EigenCAM
from attnlab.cam.eigen import first_component_projection
from attnlab.cam.projection import kernel_first_component

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


def _kernel_pca_numpy(a: torch.Tensor, kernel: str, gamma=None, coef0=1.0, degree=3) -> np.ndarray:
    """KernelPCA(n_components=1, kernel=...).fit_transform of each image's centred positions, in numpy: the
    double-centred kernel matrix's top eigenvector times the square root of its eigenvalue. Sign as LAPACK gives it."""
    n, k, h, w = a.shape
    out = []
    for i in range(n):
        x = a[i].reshape(k, -1).T.double().numpy()
        x = x - x.mean(0)
        g = 1.0 / k if gamma is None else gamma
        if kernel == "rbf":
            km = np.exp(-g * ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
        elif kernel == "sigmoid":
            km = np.tanh(g * x @ x.T + coef0)
        elif kernel == "poly":
            km = (g * x @ x.T + coef0) ** degree
        elif kernel == "cosine":
            norm = np.linalg.norm(x, axis=1, keepdims=True)
            xn = np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
            km = xn @ xn.T
        else:
            km = x @ x.T
        one = np.full(km.shape, 1.0 / km.shape[0])
        kc = km - one @ km - km @ one + one @ km @ one
        evals, evecs = np.linalg.eigh(kc)
        out.append((evecs[:, -1] * np.sqrt(max(evals[-1], 0.0))).reshape(h, w))
    return np.stack(out)


def _activations(model, x):
    store = {}
    h = model.features.relu3.register_forward_hook(lambda m, i, o: store.setdefault("a", o.clone()))
    with torch.no_grad():
        model(x)
    h.remove()
    return store["a"]


@pytest.mark.parametrize("kernel,gamma", [("rbf", None), ("rbf", 0.5), ("sigmoid", None), ("poly", 0.1),
                                          ("linear", None), ("cosine", None)])
def test_kpca_equals_kernel_pca_written_out(small_cnn, batch, kernel, gamma):
    a = _activations(small_cnn, batch)
    expected = torch.from_numpy(_kernel_pca_numpy(a, kernel, gamma)).float()
    got = kernel_first_component(a, kernel, gamma)
    for i in range(a.shape[0]):  # equal up to the component's sign
        sign = 1.0 if (got[i] * expected[i]).sum() >= 0 else -1.0
        torch.testing.assert_close(got[i], sign * expected[i], atol=1e-4, rtol=1e-4)
        ref = a[i].mean(0)
        assert (got[i] * (ref - ref.mean())).sum() >= 0  # the sign convention: along the channel-mean map
    with KPCACAM(small_cnn, "features.relu3", kernel=kernel, gamma=gamma) as cam:
        torch.testing.assert_close(cam(batch, raw=True), got.clamp_min(0))
        assert cam.compute(batch).classes is None


def test_kpca_with_a_linear_kernel_is_eigen_cam(small_cnn, batch):
    a = _activations(small_cnn, batch)
    torch.testing.assert_close(kernel_first_component(a, "linear"), first_component_projection(a), atol=1e-4,
                               rtol=1e-4)


def test_kpca_options_and_refusals(small_cnn, batch):
    for kw in (dict(kernel="laplacian"), dict(gamma=0.0)):
        with pytest.raises(ValueError):
            KPCACAM(small_cnn, "features.relu3", **kw)
    for cls in (EigenCAM, KPCACAM):
        with pytest.raises(ValueError, match="eigen_smooth does not apply"):
            cls(small_cnn, "features.relu3", eigen_smooth=True)
        with cls(small_cnn, "features.relu3") as cam, pytest.raises(ValueError, match="class-agnostic"):
            cam(batch, 1)
