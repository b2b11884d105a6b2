"""load_backbone from files: .safetensors read by attnlab.fileio alone (no safetensors package), .pth as before."""

from __future__ import annotations

import sys

import pytest
import torch

from attnlab.fileio import SafetensorsError, save_safetensors
from attnlab.models import create_model, load_backbone


def _plain_weights() -> dict[str, torch.Tensor]:
    """A trained-looking plain ResNet-20's state_dict (random, so a load is visible)."""
    torch.manual_seed(0)
    return {k: torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point() else v
            for k, v in create_model("resnet20", num_classes=10).state_dict().items()}


def _block_safetensors_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import safetensors`` (and its torch binding) fail, as where the package is not installed."""
    for name in [m for m in sys.modules if m == "safetensors" or m.startswith("safetensors.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)


def test_safetensors_backbone_loads_without_the_safetensors_package(tmp_path, monkeypatch):
    weights = _plain_weights()
    path = tmp_path / "resnet20.safetensors"
    st = pytest.importorskip("safetensors.torch")
    st.save_file(weights, str(path))  # a file as the Hugging Face tools write it
    _block_safetensors_package(monkeypatch)
    with pytest.raises(ImportError):
        import safetensors.torch  # noqa: F401
    model = create_model("resnet20", num_classes=10, attention="se")
    report = load_backbone(model, path)
    assert report.clean and sorted(report.loaded) == sorted(weights) and report.new
    sd = model.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in weights.items())


def test_safetensors_written_by_attnlab_load_too(tmp_path, monkeypatch):
    _block_safetensors_package(monkeypatch)
    weights = _plain_weights()
    path = save_safetensors({f"module.{k}": v for k, v in weights.items()}, tmp_path / "ddp.safetensors")
    model = create_model("resnet20", num_classes=10, attention="cbam")
    report = load_backbone(model, str(path))  # a str path too; DDP's module. prefix is unwrapped as for .pth
    assert report.clean and sorted(report.loaded) == sorted(weights)
    assert torch.equal(model.state_dict()["conv1.weight"], weights["conv1.weight"])


def test_corrupt_safetensors_backbone_is_a_clear_error_and_loads_nothing(tmp_path):
    path = save_safetensors(_plain_weights(), tmp_path / "cut.safetensors")
    path.write_bytes(path.read_bytes()[:-100])
    model = create_model("resnet20", num_classes=10, attention="se")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(SafetensorsError, match="cut.safetensors.*truncated or corrupt"):
        load_backbone(model, path)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_pth_backbone_still_loads_with_torch_load(tmp_path):
    weights = _plain_weights()
    torch.save({"state_dict": weights, "epoch": 3}, tmp_path / "ckpt.pth")
    model = create_model("resnet20", num_classes=10, attention="eca")
    report = load_backbone(model, tmp_path / "ckpt.pth")
    assert report.clean and sorted(report.loaded) == sorted(weights)
