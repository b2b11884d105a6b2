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


# --- files and checkpoints that are not what load_backbone reads: one clear ValueError, nothing loaded -----------


def _unchanged(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(before[k], v) for k, v in model.state_dict().items())


class _Thing:
    """A class torch.load(weights_only=True) refuses to unpickle."""


@pytest.mark.parametrize("name,content,expected", [
    ("notes.txt", b"hello notes\n", r"notes\.txt is not a torch checkpoint nor a safetensors file \(KeyError"),
    ("empty.pt", b"", r"empty\.pt is not a torch checkpoint nor a safetensors file \(EOFError: empty or truncated"),
])
def test_a_file_that_is_no_checkpoint_is_named_with_the_accepted_formats(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    model = create_model("resnet20", num_classes=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=expected) as err:
        load_backbone(model, path)
    assert "torch.save (.pt, .pth, .bin), a .safetensors file" in str(err.value)
    assert str(tmp_path) in str(err.value) and _unchanged(model, before)


def test_pickled_objects_a_list_and_a_folder_are_refused(tmp_path):
    model = create_model("resnet20", num_classes=10)
    torch.save({"model": _Thing()}, tmp_path / "objects.pt")
    with pytest.raises(ValueError, match=r"objects\.pt holds Python objects besides tensors.*model\.state_dict\(\)"):
        load_backbone(model, tmp_path / "objects.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match=r"list\.pt holds a list, not a state_dict"):
        load_backbone(model, tmp_path / "list.pt")
    run = tmp_path / "run"
    save_safetensors(_plain_weights(), run / "checkpoints" / "epoch_0001" / "model.safetensors")
    with pytest.raises(ValueError, match=r"run is a folder, not a checkpoint file \(an attnlab run\? its weights: "
                                         r".*epoch_0001/model\.safetensors\)"):
        load_backbone(model, run)


def test_safetensors_is_recognised_by_its_content_whatever_its_name(tmp_path):
    weights = _plain_weights()
    path = save_safetensors(weights, tmp_path / "weights.bin")
    model = create_model("resnet20", num_classes=10)
    assert sorted(load_backbone(model, path).loaded) == sorted(weights)


def test_a_checkpoint_that_loads_no_key_is_refused_with_both_key_sets_and_the_prefix(tmp_path):
    weights = _plain_weights()
    model = create_model("resnet20", num_classes=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save({f"encoder.{k}": v for k, v in weights.items()}, tmp_path / "prefixed.pth")
    with pytest.raises(ValueError) as err:
        load_backbone(model, tmp_path / "prefixed.pth")
    message = str(err.value)
    assert "no key of " in message and "prefixed.pth matches ResNet, nothing was loaded" in message
    assert f"the checkpoint has {len(weights)} keys (encoder.conv1.weight, " in message
    assert "the model 128 (conv1.weight, " in message
    assert "the checkpoint's keys carry the prefix 'encoder.' (128 match without it)" in message
    assert _unchanged(model, before)

    wrapper = torch.nn.Module()
    wrapper.backbone = create_model("resnet20", num_classes=10)
    with pytest.raises(ValueError, match=r"model's keys carry the prefix 'backbone\.'.*get_submodule\('backbone'\)"):
        load_backbone(wrapper, weights)
    with pytest.raises(ValueError, match=r"no key of the given checkpoint matches ResNet.*has 1 key \(x\.weight\)"):
        load_backbone(model, {"x.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="the given checkpoint is empty"):
        load_backbone(model, {})
    with pytest.raises(ValueError, match=r"only keys .* are its classifier's \(fc\.weight, fc\.bias\), skipped by "
                                         r"head=None"):
        load_backbone(model, {"fc.weight": torch.zeros(5, 64), "fc.bias": torch.zeros(5)})
    assert _unchanged(model, before)


def test_a_training_checkpoint_under_another_key_and_non_finite_weights_are_refused():
    weights = _plain_weights()
    model = create_model("resnet20", num_classes=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"not a state_dict: 2 of its 2 entries are not tensors \('epoch', 'net'\); "
                                         r"the tensors may be under \['net'\]"):
        load_backbone(model, {"epoch": 3, "net": weights})
    diverged = dict(weights)
    diverged["layer1.0.conv1.weight"] = torch.full_like(weights["layer1.0.conv1.weight"], float("inf"))
    diverged["bn1.running_var"] = weights["bn1.running_var"].clone().fill_(float("nan"))
    with pytest.raises(ValueError, match=r"holds NaN or inf values in 2 tensors: bn1\.running_var \(16 values\), "
                                         r"layer1\.0\.conv1\.weight \(2304 values\); nothing was loaded"):
        load_backbone(model, diverged)
    assert _unchanged(model, before)
