"""torchvision's ResNet state_dict layout, key for key, and loading a plain checkpoint with load_backbone.

torchvision does not import here (its PyPI wheel needs CUDA libraries), so the expected layout is
written out from its published architecture (``torchvision/models/resnet.py``): a 7x7 ``conv1`` and
``bn1``, then ``layer1`` to ``layer4`` of blocks whose modules register in the order ``conv1, bn1,
conv2, bn2[, conv3, bn3], downsample.0 (1x1 conv), downsample.1 (BN)``, the downsample only in the
first block of a stage whose stride or width changes, then ``fc``. Every BatchNorm has ``weight, bias,
running_mean, running_var, num_batches_tracked``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import attnlab
from attnlab.models import create_model, load_backbone

SPECS = {  # name: (block, layers)
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
}


def _bn(prefix: str, c: int) -> list[tuple[str, tuple[int, ...]]]:
    return [(f"{prefix}.weight", (c,)), (f"{prefix}.bias", (c,)), (f"{prefix}.running_mean", (c,)),
            (f"{prefix}.running_var", (c,)), (f"{prefix}.num_batches_tracked", ())]


def torchvision_layout(block: str, layers: tuple[int, ...], num_classes: int = 1000) -> list[tuple[str, tuple]]:
    """The ordered (key, shape) list of torchvision's ``resnet*().state_dict()``."""
    expansion = 1 if block == "basic" else 4
    keys = [("conv1.weight", (64, 3, 7, 7)), *_bn("bn1", 64)]
    inplanes = 64
    for s, (planes, n) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
        for i in range(n):
            p = f"layer{s + 1}.{i}"
            stride = 2 if (s > 0 and i == 0) else 1
            out = planes * expansion
            if block == "basic":
                keys += [(f"{p}.conv1.weight", (planes, inplanes, 3, 3)), *_bn(f"{p}.bn1", planes),
                         (f"{p}.conv2.weight", (planes, planes, 3, 3)), *_bn(f"{p}.bn2", planes)]
            else:
                keys += [(f"{p}.conv1.weight", (planes, inplanes, 1, 1)), *_bn(f"{p}.bn1", planes),
                         (f"{p}.conv2.weight", (planes, planes, 3, 3)), *_bn(f"{p}.bn2", planes),
                         (f"{p}.conv3.weight", (out, planes, 1, 1)), *_bn(f"{p}.bn3", out)]
            if i == 0 and (stride != 1 or inplanes != out):
                keys += [(f"{p}.downsample.0.weight", (out, inplanes, 1, 1)), *_bn(f"{p}.downsample.1", out)]
            inplanes = out
    keys += [("fc.weight", (num_classes, 512 * expansion)), ("fc.bias", (num_classes,))]
    return keys


def _layout(model: nn.Module) -> list[tuple[str, tuple]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def _meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **kwargs)


def test_layout_helper_counts_torchvision_parameters():
    n = sum(torch.Size(s).numel() for k, s in torchvision_layout(*SPECS["resnet50"]) if "running" not in k
            and "num_batches" not in k)
    assert n == 25_557_032


@pytest.mark.parametrize("name", sorted(SPECS))
def test_vanilla_state_dict_is_torchvision_key_for_key(name):
    assert _layout(_meta(name)) == torchvision_layout(*SPECS[name])


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
@pytest.mark.parametrize("attention", ["se", "cbam", "eca", "bam", "non_local", "coord"])
def test_attention_adds_keys_and_changes_none(name, attention):
    layout = _layout(_meta(name, attention=attention))
    prefixes = (".attn.", ".post_attn.", "bam1.", "bam2.", "bam3.")
    backbone = [(k, s) for k, s in layout if not any(p in k or k.startswith(p) for p in prefixes)]
    extra = [k for k, _ in layout if (k, dict(layout)[k]) not in backbone]
    assert backbone == torchvision_layout(*SPECS[name])
    assert extra, "the attention added no parameters"


# --- load_backbone -------------------------------------------------------------------------------------------


def _torchvision_like_checkpoint(name: str, num_classes: int = 1000, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state_dict with exactly torchvision's keys and shapes (a stand-in for its weights file)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in torchvision_layout(*SPECS[name], num_classes=num_classes):
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            out[k] = torch.rand(shape, generator=g) + 0.5
        else:
            out[k] = torch.randn(shape, generator=g) * 0.05
    return out


@pytest.mark.parametrize("attention", ["se", "cbam", "bam", "non_local"])
def test_torchvision_checkpoint_loads_with_only_attention_new(attention, tmp_path):
    ckpt = _torchvision_like_checkpoint("resnet18")
    path = tmp_path / "resnet18.pth"
    torch.save(ckpt, path)
    model = create_model("resnet18", attention=attention)
    report = attnlab.load_backbone(model, path)
    assert report.missing == [] and report.unexpected == [] and report.skipped == [] and report.clean
    assert sorted(report.loaded) == sorted(ckpt)
    attn_keys = [k for k in model.state_dict() if k not in ckpt]
    assert report.new == attn_keys and attn_keys
    sd = model.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in ckpt.items())
    assert "new (attention)" in str(report)


def test_shape_disagreement_refuses_and_loads_nothing():
    model = create_model("resnet18", attention="se")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ckpt = _torchvision_like_checkpoint("resnet50")  # another network: shapes differ from layer1 on
    expected = (r"(?s)23 shapes disagree.*nothing was loaded.*"
                r"layer1\.0\.conv1\.weight: checkpoint \(64, 64, 1, 1\) vs model \(64, 64, 3, 3\).*and 11 more")
    with pytest.raises(ValueError, match=expected):
        load_backbone(model, ckpt)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_classifier_with_another_class_count():
    ckpt = _torchvision_like_checkpoint("resnet18", num_classes=1000)
    model = create_model("resnet18", num_classes=10, attention="eca")
    fc = model.fc.weight.detach().clone()
    report = load_backbone(model, ckpt)  # head=None: skipped, reported
    assert report.skipped == ["fc.weight", "fc.bias"] and report.missing == [] and report.clean
    assert torch.equal(model.fc.weight, fc)
    with pytest.raises(ValueError, match="fc.weight"):
        load_backbone(model, ckpt, head=True)
    same = create_model("resnet18", attention="eca")
    assert load_backbone(same, ckpt, head=False).skipped == ["fc.weight", "fc.bias"]
    assert load_backbone(same, ckpt).skipped == []


def test_classifier_is_found_outside_attention_modules():
    """BAM holds nn.Linear layers; attached after the last stage they come after `fc` in module order."""
    model = create_model("resnet18", num_classes=10)
    attnlab.attach(model, "bam", where=["layer4"])
    report = load_backbone(model, _torchvision_like_checkpoint("resnet18"))
    assert report.skipped == ["fc.weight", "fc.bias"] and report.clean
    assert report.new and all(k.startswith("layer4_attn.") for k in report.new)


def test_missing_unexpected_strict_and_wrappers():
    ckpt = _torchvision_like_checkpoint("resnet18")
    del ckpt["layer4.1.bn2.bias"]
    ckpt["extra.weight"] = torch.zeros(3)
    model = create_model("resnet18", attention="se")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="strict load .* refused"):
        load_backbone(model, ckpt, strict=True)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    wrapped = {"state_dict": {f"module.{k}": v for k, v in ckpt.items()}, "epoch": 3}
    report = load_backbone(model, wrapped)
    assert report.missing == ["layer4.1.bn2.bias"] and report.unexpected == ["extra.weight"] and not report.clean


def test_load_errors():
    with pytest.raises(FileNotFoundError):
        load_backbone(create_model("resnet20"), "/nonexistent/ckpt.pth")
    with pytest.raises(TypeError, match="mapping"):
        load_backbone(create_model("resnet20"), [1, 2])
