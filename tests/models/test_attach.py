"""attach / detach on models the user already has: hand-written ResNets, a Sequential CNN, the zoo."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

import attnlab
from attnlab.attention import AttentionModule
from attnlab.models import attach, create_model, detach, find_blocks, find_stages, load_backbone

from .conftest import randomize_bn


class ResUnit(nn.Module):
    """A user's own residual block: a Sequential branch, a `shortcut`, out-of-place addition."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.branch(x) + self.shortcut(x))


class TinyResNet(nn.Module):
    """Hand-written ResNet-like network: stem, a ModuleList of Sequential stages of ResUnits, a head."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.stages = nn.ModuleList([nn.Sequential(ResUnit(8, 8), ResUnit(8, 8)),
                                     nn.Sequential(ResUnit(8, 16, 2), ResUnit(16, 16))])
        self.head = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(x.mean((2, 3)))


class MyBottleneck(nn.Module):
    """torchvision's Bottleneck written out under another name: in-place addition, one ReLU used three times."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class TorchvisionLike(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(MyBottleneck(16, 4), MyBottleneck(16, 4))
        self.layer2 = nn.Sequential(MyBottleneck(16, 8, 2))
        self.fc = nn.Linear(32, 3)

    def forward(self, x):
        x = self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def sequential_cnn() -> nn.Sequential:
    """A plain CNN for 1x28x28 images, no residual blocks, fixed-size classifier."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),  # 0-3: 28 -> 14
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),  # 4-7: 14 -> 7
        nn.Flatten(), nn.Linear(16 * 7 * 7, 10))


def _attn_names(model):
    return [n for n, m in model.named_modules() if isinstance(m, AttentionModule)]


# --- where="blocks" -------------------------------------------------------------------------------------------


def test_blocks_on_a_handwritten_resnet_keeps_everything_it_had():
    torch.manual_seed(0)
    model = randomize_bn(TinyResNet()).eval()
    x = torch.randn(2, 3, 16, 16)
    before_out = model(x).detach()
    before = {k: v.clone() for k, v in model.state_dict().items()}

    names = attach(model, "se", reduction=4)

    assert names == ["stages.0.0.attn", "stages.0.1.attn", "stages.1.0.attn", "stages.1.1.attn"]
    assert _attn_names(model) == names
    assert [model.get_submodule(n).channels for n in names] == [8, 8, 16, 16]
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())  # same names, same values
    new = [k for k in after if k not in before]
    assert new and all(k.startswith(tuple(n + "." for n in names)) for k in new)
    out = model(x)
    assert out.shape == before_out.shape and not torch.allclose(out, before_out)
    # a checkpoint saved before attach loads, with only the attention keys missing
    fresh = TinyResNet()
    attach(fresh, "se", reduction=4)
    result = fresh.load_state_dict(before, strict=False)
    assert sorted(result.missing_keys) == sorted(new) and result.unexpected_keys == []
    report = load_backbone(fresh, before)
    assert report.new == new and report.missing == [] and report.unexpected == []
    # detach: exactly the original network again
    assert detach(model) == names
    assert list(model.state_dict()) == list(before)
    torch.testing.assert_close(model(x), before_out, rtol=0, atol=0)


def test_blocks_attention_sits_after_the_last_bn_before_the_addition():
    model = randomize_bn(TinyResNet()).eval()
    attach(model, "cbam", reduction=4)
    unit = model.stages[1][0]
    seen = {}
    # prepend: see the BN's own output, before attach's hook replaces it
    unit.branch[4].register_forward_hook(lambda m, a, o: seen.__setitem__("bn_out", o.clone()), prepend=True)
    unit.attn.register_forward_hook(lambda m, a, o: seen.__setitem__("attn", (a[0].clone(), o.clone())))
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        out = unit(x)
    attn_in, attn_out = seen["attn"]
    torch.testing.assert_close(attn_in, seen["bn_out"])
    torch.testing.assert_close(out, torch.relu(attn_out + unit.shortcut(x)))


def test_blocks_on_torchvision_style_bottlenecks_train():
    torch.manual_seed(0)
    model = TorchvisionLike()
    names = attach(model, "cbam", reduction=4)
    assert names == ["layer1.0.attn", "layer1.1.attn", "layer2.0.attn"]
    assert find_blocks(model) == ["layer1.0", "layer1.1", "layer2.0"]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])
    w0 = model.layer1[0].attn.channel_attention.fc1.weight.detach().clone()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()  # the block's in-place `out += identity` lands on the attention's output
    assert all(p.grad is not None for p in model.parameters())
    opt.step()
    assert not torch.equal(model.layer1[0].attn.channel_attention.fc1.weight, w0)


def test_blocks_on_a_zoo_network_equal_the_zoo_network_with_attention():
    torch.manual_seed(0)
    plain = create_model("resnet18", num_classes=4)
    names = attach(plain, "se")
    built = create_model("resnet18", num_classes=4, attention="se")
    assert names == [f"{b}.attn" for b, _ in built.blocks()]
    assert list(plain.state_dict()) == list(built.state_dict())  # same keys, same order
    built.load_state_dict(plain.state_dict())
    plain.eval(), built.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), built(x), rtol=0, atol=0)
    assert detach(plain) == names and not _attn_names(plain)
    assert detach(built) == []  # what a network was built with is not "attached"


# --- where="stages" and explicit names ---------------------------------------------------------------------------


def test_stages_on_handwritten_and_zoo_networks():
    model = TinyResNet().eval()
    x = torch.randn(1, 3, 16, 16)
    ref = model(x)
    assert find_stages(model) == ["stages.0", "stages.1"]
    names = attach(model, "eca", where="stages")
    assert names == ["stages_0_attn", "stages_1_attn"]  # containers: stored on the nearest plain module
    assert len(model.stages[0]) == 2  # the Sequential itself is untouched
    seen = []
    model.stages_0_attn.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape))
    assert model(x).shape == ref.shape and seen == [(1, 8, 16, 16)]
    detach(model)
    torch.testing.assert_close(model(x), ref, rtol=0, atol=0)
    zoo = create_model("resnet18")
    assert attach(zoo, "se", where="stages") == ["layer1_attn", "layer2_attn", "layer3_attn", "layer4_attn"]


def test_explicit_names_on_a_sequential_cnn():
    torch.manual_seed(0)
    model = randomize_bn(sequential_cnn()).eval()
    x = torch.randn(3, 1, 28, 28)
    ref = model(x).detach()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    names = attach(model, "cbam", where=["2", "6"], reduction=4)
    assert names == ["2.attn", "6.attn"]
    assert [model.get_submodule(n).channels for n in names] == [8, 16]
    assert isinstance(model[2], nn.ReLU) and len(model) == 10  # indices unchanged
    assert model(x).shape == ref.shape
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    # trains a step, saves and loads
    model.train()
    nn.functional.cross_entropy(model(x), torch.tensor([1, 2, 3])).backward()
    assert model[2].attn.channel_attention.fc1.weight.grad is not None
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    twin = sequential_cnn()
    attach(twin, "cbam", where=["2", "6"], reduction=4)
    twin.load_state_dict(torch.load(buf, weights_only=True))
    model.eval(), twin.eval()
    torch.testing.assert_close(twin(x), model(x))
    detach(model)
    model.load_state_dict(before)
    torch.testing.assert_close(model(x), ref, rtol=0, atol=0)


def test_stages_of_a_plain_cnn_are_the_ends_of_each_resolution():
    model = sequential_cnn()
    assert find_stages(model) == ["2", "6", "7"]  # found with a 28x28 dry forward (224 and 32 fail)
    assert find_blocks(model) == []


def test_after_a_zoo_block_uses_its_output_slot():
    m = create_model("resnet20")
    assert attach(m, "non_local", where=["layer3.1"]) == ["layer3.1.post_attn"]
    nl = create_model("resnet20", attention="non_local")
    assert list(m.state_dict()) == list(nl.state_dict())


# --- copies, pickling, repeated attach -------------------------------------------------------------------------


def test_deepcopy_and_torch_save_of_the_whole_model_keep_the_attention():
    model = randomize_bn(TinyResNet()).eval()
    attach(model, "se", reduction=4)
    x = torch.randn(1, 3, 16, 16)
    out = model(x)
    clone = copy.deepcopy(model)
    torch.testing.assert_close(clone(x), out, rtol=0, atol=0)
    with torch.no_grad():  # the copy's hooks use the copy's modules, not the original's
        clone.stages[0][0].attn.fc2.bias.fill_(-30.0)
    torch.testing.assert_close(model(x), out, rtol=0, atol=0)
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    torch.testing.assert_close(loaded(x), out, rtol=0, atol=0)
    assert len(detach(loaded)) == 4 and not _attn_names(loaded)


def test_attach_twice_is_refused_naming_what_is_there():
    model = TinyResNet().eval()
    first = attach(model, "se", reduction=4)
    keys = list(model.state_dict())
    with pytest.raises(ValueError) as err:
        attach(model, "eca")
    message = str(err.value)
    assert message.startswith("attach(TinyResNet, 'eca') refused: 4 of its 4 places already hold attention: "
                              "stages.0.0.attn (se, attached, in the residual branch of stages.0.0); ")
    assert "replace=True" in message and "detach(model) first" in message and "\n" not in message
    assert list(model.state_dict()) == keys and _attn_names(model) == first
    assert sum(len(m._forward_hooks) for m in model.modules()) == 4


def test_attach_replace_swaps_the_attention_in_place():
    model = randomize_bn(TinyResNet()).eval()
    x = torch.randn(2, 3, 16, 16)
    first = attach(model, "se", reduction=4)
    second = attach(model, "eca", replace=True)
    assert second == first and all(model.get_submodule(n).registry_name == "eca" for n in second)
    assert sum(len(m._forward_hooks) for m in model.modules()) == 4  # the old hooks are gone
    fresh = randomize_bn(TinyResNet()).eval()
    fresh.load_state_dict({k: v for k, v in model.state_dict().items() if ".attn." not in k})
    attach(fresh, "eca")
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(model(x), fresh(x), rtol=0, atol=0)
    assert detach(model, second[0]) == second[:1] and _attn_names(model) == second[1:]  # one name as a string
    with pytest.raises(ValueError, match="not attached attention"):
        detach(model, ["stages.0.0.branch"])


def test_attach_to_other_places_is_allowed_and_the_same_stage_is_refused():
    model = TinyResNet().eval()
    blocks = attach(model, "se", reduction=4)
    stages = attach(model, "eca", where="stages")  # after the stages: other places than inside the blocks
    assert set(blocks).isdisjoint(stages) and len(stages) == 2
    with pytest.raises(ValueError, match=r"refused: 1 of its 1 places .* \(eca, attached, after stages\.1\)"):
        attach(model, "cbam", where=["stages.1"])
    with pytest.raises(ValueError, match=r"refused: 2 of its 2 places"):
        attach(model, "eca", where="stages")
    cnn = sequential_cnn()
    x = torch.randn(1, 1, 28, 28)
    stages = find_stages(cnn, x)
    attach(cnn, "se", where="stages", example_input=x)
    assert find_stages(cnn, x) == stages  # the attention it holds does not move the places
    with pytest.raises(ValueError, match=r"refused: 3 of its 3 places .*: 2\.attn \(se, attached, after 2\); "):
        attach(cnn, "se", where="stages", example_input=x)


def test_attention_built_with_a_zoo_network_is_recognised():
    model = create_model("resnet20", attention="se").eval()
    keys = list(model.state_dict())
    with pytest.raises(ValueError, match=r"refused: 9 of its 9 places already hold attention: layer1\.0\.attn \(se, "
                                         r"built with the model, in the residual branch of layer1\.0\).*create the "
                                         r"model without attention"):
        attach(model, "cbam")
    assert list(model.state_dict()) == keys
    names = attach(model, "cbam", replace=True)
    assert names == [n for n, m in model.named_modules() if n.endswith(".attn")]
    assert all(model.get_submodule(n).registry_name == "cbam" for n in names)
    assert detach(model) == names and not _attn_names(model)


def test_attention_class_and_mode_follow_the_model():
    class Scale(nn.Module):
        def __init__(self, channels: int) -> None:
            super().__init__()
            self.s = nn.Parameter(torch.ones(channels, 1, 1))

        def forward(self, x):
            return x * self.s

    model = TinyResNet().eval()
    names = attach(model, Scale)
    assert all(isinstance(model.get_submodule(n), Scale) and not model.get_submodule(n).training for n in names)
    report = load_backbone(model, TinyResNet().state_dict())
    assert len(report.new) == 4 and report.missing == []  # marked as attention although not an AttentionModule


# --- errors -------------------------------------------------------------------------------------------------------


def test_errors_leave_the_model_untouched():
    model = TorchvisionLike()
    keys = list(model.state_dict())
    with pytest.raises(ValueError, match=r"no module named 'layer1\.0\.bn4'.*Did you mean 'layer1\.0\.bn"):
        attach(model, "se", where=["layer1.0.bn4"])
    with pytest.raises(ValueError, match=r"no module named 'layer1\.0\.cnov2'\. Did you mean 'layer1\.0\.conv2'\?$"):
        attach(model, "se", where=["layer1.0.cnov2"])  # one suggestion, by edit distance counting a swap as one
    with pytest.raises(ValueError, match="called 3 times"):
        attach(model, "se", where=["layer1.0.relu"])
    with pytest.raises(ValueError, match="not an \\(N, C, H, W\\)"):
        attach(model, "se", where=["fc"])
    with pytest.raises(ValueError, match="empty list"):
        attach(model, "se", where=[])
    with pytest.raises(ValueError, match="more than once"):
        attach(model, "se", where=["layer1", "layer1"])
    with pytest.raises(ValueError, match="where is 'blocks', 'stages'"):
        attach(model, "se", where="block")
    with pytest.raises(ValueError, match="unknown attention module"):
        attach(model, "sse")
    with pytest.raises(ValueError, match="attention module 'se' has no option 'not_an_option'"):
        attach(model, "se", not_an_option=3)
    with pytest.raises(ValueError, match="where is 'blocks', 'stages' or a list of module names, got 3"):
        attach(model, "se", where=3)
    with pytest.raises(ValueError, match="attention is None"):
        attach(model, None)
    with pytest.raises(ValueError, match="found no residual blocks"):
        attach(sequential_cnn(), "se")
    with pytest.raises(ValueError, match="example_input"):
        attach(sequential_cnn(), "se", where=["2"], example_input=torch.randn(1, 1, 32, 32))
    assert list(model.state_dict()) == keys and not _attn_names(model)
    assert all(not m._forward_hooks for m in model.modules())


def test_top_level_exports():
    for name in ("attach", "detach", "create_model", "list_models", "load_backbone"):
        assert name in attnlab.__all__ and callable(getattr(attnlab, name))
