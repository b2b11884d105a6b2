"""attach on architectures no one here wrote, written out in the style of their libraries.

torchvision and timm do not import here, so each network below copies the forward of its library's
block as published, down to the operations that decide how the autograd graph looks:

* GhostNet (timm ``ghostnet.py``): ``GhostModule`` returns a channel slice of a concatenation
  (``out[:, :self.out_chs]``) and ``GhostBottleneck`` adds its shortcut in place on that slice
  (``x += self.shortcut(shortcut)``): the addition hides inside a ``CopySlices`` node.
* ReXNet: the official code (and timm before 2023) adds the shortcut to the first channels in place,
  ``out[:, 0:self.in_channels] += x``; timm today writes it ``torch.cat([x[:, 0:c] + shortcut, x[:, c:]])``.
* DenseNet (torchvision ``densenet.py``): ``_DenseLayer`` takes the list of earlier features and returns
  only its new ones; ``_DenseBlock`` (an ``nn.ModuleDict``) concatenates them all; ``_Transition`` is
  BN, ReLU, 1x1 conv, 2x2 average pooling.
* ShuffleNetV2 (torchvision ``shufflenetv2.py``): ``InvertedResidual`` splits the channels (stride 1) or
  runs two branches (stride 2), concatenates, and shuffles the channels.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from attnlab.attention import AttentionModule
from attnlab.models import attach, detach, find_blocks, find_stages, load_backbone

from .conftest import randomize_bn

# --- GhostNet (timm) -----------------------------------------------------------------------------------------------


class GhostModule(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, act: bool = True) -> None:
        super().__init__()
        self.out_chs = out_chs
        init_chs = math.ceil(out_chs / 2)
        act_layer = nn.ReLU if act else nn.Identity
        self.primary_conv = nn.Sequential(nn.Conv2d(in_chs, init_chs, 1, 1, 0, bias=False), nn.BatchNorm2d(init_chs),
                                          act_layer(inplace=True))
        self.cheap_operation = nn.Sequential(nn.Conv2d(init_chs, init_chs, 3, 1, 1, groups=init_chs, bias=False),
                                             nn.BatchNorm2d(init_chs), act_layer(inplace=True))

    def forward(self, x):
        x1 = self.primary_conv(x)
        x2 = self.cheap_operation(x1)
        out = torch.cat([x1, x2], dim=1)
        return out[:, :self.out_chs, :, :]


class GhostBottleneck(nn.Module):
    def __init__(self, in_chs: int, mid_chs: int, out_chs: int, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride
        self.ghost1 = GhostModule(in_chs, mid_chs, act=True)
        if stride > 1:
            self.conv_dw = nn.Conv2d(mid_chs, mid_chs, 3, stride=stride, padding=1, groups=mid_chs, bias=False)
            self.bn_dw = nn.BatchNorm2d(mid_chs)
        else:
            self.conv_dw = None
            self.bn_dw = None
        self.se = None
        self.ghost2 = GhostModule(mid_chs, out_chs, act=False)
        if in_chs == out_chs and stride == 1:
            self.shortcut = nn.Sequential()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_chs, in_chs, 3, stride=stride, padding=1, groups=in_chs, bias=False),
                nn.BatchNorm2d(in_chs), nn.Conv2d(in_chs, out_chs, 1, bias=False), nn.BatchNorm2d(out_chs))

    def forward(self, x):
        shortcut = x
        x = self.ghost1(x)
        if self.conv_dw is not None:
            x = self.conv_dw(x)
            x = self.bn_dw(x)
        if self.se is not None:
            x = self.se(x)
        x = self.ghost2(x)
        x += self.shortcut(shortcut)
        return x


class GhostNet(nn.Module):
    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.conv_stem = nn.Conv2d(3, 16, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.act1 = nn.ReLU(inplace=True)
        self.blocks = nn.Sequential(
            nn.Sequential(GhostBottleneck(16, 16, 16)),
            nn.Sequential(GhostBottleneck(16, 48, 24, stride=2), GhostBottleneck(24, 72, 24)),
            nn.Sequential(GhostBottleneck(24, 72, 40, stride=2)),
        )
        self.conv_head = nn.Conv2d(40, 64, 1)
        self.act2 = nn.ReLU(inplace=True)
        self.classifier = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.blocks(self.act1(self.bn1(self.conv_stem(x))))
        x = self.act2(self.conv_head(x.mean((2, 3), keepdim=True)))
        return self.classifier(x.flatten(1))


# --- ReXNet (official / timm) --------------------------------------------------------------------------------------


class ConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, act: bool = True) -> None:
        layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        super().__init__(*layers, *([nn.SiLU(inplace=True)] if act else []))


class LinearBottleneck(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, stride: int, exp_ratio: float = 6.0,
                 inplace_add: bool = True) -> None:
        super().__init__()
        self.use_shortcut = stride == 1 and in_chs <= out_chs
        self.in_channels = in_chs
        self.inplace_add = inplace_add
        mid = int(in_chs * exp_ratio)
        self.conv_exp = ConvBN(in_chs, mid) if exp_ratio != 1 else None
        self.conv_dw = ConvBN(mid, mid, 3, stride, groups=mid, act=False)
        self.act_dw = nn.ReLU6()
        self.conv_pwl = ConvBN(mid, out_chs, act=False)

    def forward(self, x):
        shortcut = x
        if self.conv_exp is not None:
            x = self.conv_exp(x)
        x = self.conv_dw(x)
        x = self.act_dw(x)
        x = self.conv_pwl(x)
        if self.use_shortcut:
            if self.inplace_add:  # the official ReXNet (and timm < 0.9)
                x[:, 0:self.in_channels] += shortcut
            else:  # timm today
                x = torch.cat([x[:, 0:self.in_channels] + shortcut, x[:, self.in_channels:]], dim=1)
        return x


class ReXNet(nn.Module):
    def __init__(self, inplace_add: bool = True, num_classes: int = 5) -> None:
        super().__init__()
        self.stem = ConvBN(3, 16, 3, stride=2)
        chans = [(16, 16, 1, 1.0), (16, 27, 2, 6.0), (27, 38, 1, 6.0), (38, 50, 2, 6.0), (50, 61, 1, 6.0)]
        self.features = nn.Sequential(*[LinearBottleneck(i, o, s, e, inplace_add) for i, o, s, e in chans])
        self.head = nn.Linear(61, num_classes)

    def forward(self, x):
        return self.head(self.features(self.stem(x)).mean((2, 3)))


# --- DenseNet (torchvision) ----------------------------------------------------------------------------------------


class _DenseLayer(nn.Module):
    def __init__(self, num_input_features: int, growth_rate: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, kernel_size=1, stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1, padding=1, bias=False)
        self.drop_rate = 0.0

    def bn_function(self, inputs):
        concated_features = torch.cat(inputs, 1)
        return self.conv1(self.relu1(self.norm1(concated_features)))

    def forward(self, input):
        prev_features = [input] if isinstance(input, torch.Tensor) else input
        bottleneck_output = self.bn_function(prev_features)
        new_features = self.conv2(self.relu2(self.norm2(bottleneck_output)))
        if self.drop_rate > 0:
            new_features = nn.functional.dropout(new_features, p=self.drop_rate, training=self.training)
        return new_features


class _DenseBlock(nn.ModuleDict):
    def __init__(self, num_layers: int, num_input_features: int, bn_size: int, growth_rate: int) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = _DenseLayer(num_input_features + i * growth_rate, growth_rate=growth_rate, bn_size=bn_size)
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, init_features):
        features = [init_features]
        for _name, layer in self.items():
            new_features = layer(features)
            features.append(new_features)
        return torch.cat(features, 1)


class _Transition(nn.Sequential):
    def __init__(self, num_input_features: int, num_output_features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(num_input_features)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(num_input_features, num_output_features, kernel_size=1, stride=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(nn.Module):
    def __init__(self, growth_rate: int = 8, block_config: tuple[int, ...] = (3, 2), num_init_features: int = 16,
                 bn_size: int = 2, num_classes: int = 5) -> None:
        super().__init__()
        self.features = nn.Sequential()
        self.features.add_module("conv0", nn.Conv2d(3, num_init_features, 3, 1, 1, bias=False))
        self.features.add_module("norm0", nn.BatchNorm2d(num_init_features))
        self.features.add_module("relu0", nn.ReLU(inplace=True))
        num_features = num_init_features
        for i, num_layers in enumerate(block_config):
            block = _DenseBlock(num_layers, num_features, bn_size, growth_rate)
            self.features.add_module(f"denseblock{i + 1}", block)
            num_features = num_features + num_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", _Transition(num_features, num_features // 2))
                num_features = num_features // 2
        self.features.add_module("norm5", nn.BatchNorm2d(num_features))
        self.classifier = nn.Linear(num_features, num_classes)

    def forward(self, x):
        out = torch.relu(self.features(x))
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(out, (1, 1)), 1))


# --- ShuffleNetV2 (torchvision) ------------------------------------------------------------------------------------


def channel_shuffle(x, groups: int):
    batchsize, num_channels, height, width = x.size()
    x = x.view(batchsize, groups, num_channels // groups, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, num_channels, height, width)


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        branch_features = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp),
                nn.Conv2d(inp, branch_features, 1, bias=False), nn.BatchNorm2d(branch_features), nn.ReLU(inplace=True))
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else branch_features, branch_features, 1, bias=False),
            nn.BatchNorm2d(branch_features), nn.ReLU(inplace=True),
            nn.Conv2d(branch_features, branch_features, 3, stride, 1, groups=branch_features, bias=False),
            nn.BatchNorm2d(branch_features),
            nn.Conv2d(branch_features, branch_features, 1, bias=False), nn.BatchNorm2d(branch_features),
            nn.ReLU(inplace=True))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.stage2 = nn.Sequential(InvertedResidual(16, 32, 2), InvertedResidual(32, 32, 1),
                                    InvertedResidual(32, 32, 1))
        self.stage3 = nn.Sequential(InvertedResidual(32, 64, 2), InvertedResidual(64, 64, 1))
        self.conv5 = nn.Sequential(nn.Conv2d(64, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True))
        self.fc = nn.Linear(128, num_classes)

    def forward(self, x):
        x = self.conv5(self.stage3(self.stage2(self.maxpool(self.conv1(x)))))
        return self.fc(x.mean([2, 3]))


# --- helpers -------------------------------------------------------------------------------------------------------


def _attn_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, AttentionModule)]


NETWORKS = {
    "ghostnet": (GhostNet, (2, 3, 32, 32)),
    "rexnet-inplace": (lambda: ReXNet(inplace_add=True), (2, 3, 32, 32)),
    "rexnet-cat": (lambda: ReXNet(inplace_add=False), (2, 3, 32, 32)),
    "densenet": (DenseNet, (2, 3, 16, 16)),
    "shufflenetv2": (ShuffleNetV2, (2, 3, 32, 32)),
}
EXPECTED_BLOCKS = {
    "ghostnet": ["blocks.0.0", "blocks.1.0", "blocks.1.1", "blocks.2.0"],
    "rexnet-inplace": ["features.0", "features.2", "features.4"],
    "rexnet-cat": ["features.0", "features.2", "features.4"],
    "densenet": ["features.denseblock1.denselayer1", "features.denseblock1.denselayer2",
                 "features.denseblock1.denselayer3", "features.denseblock2.denselayer1",
                 "features.denseblock2.denselayer2"],
    "shufflenetv2": ["stage2.0", "stage2.1", "stage2.2", "stage3.0", "stage3.1"],
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_blocks_are_found(name):
    build, shape = NETWORKS[name]
    assert find_blocks(build(), example_input=torch.randn(*shape)) == EXPECTED_BLOCKS[name]


# where the attention goes in each block: the branch's last module (its output is the attention's input)
TARGETS = {
    "ghostnet": ["blocks.0.0.ghost2", "blocks.1.0.ghost2", "blocks.1.1.ghost2", "blocks.2.0.ghost2"],
    "rexnet-inplace": ["features.0.conv_pwl.1", "features.2.conv_pwl.1", "features.4.conv_pwl.1"],
    "rexnet-cat": ["features.0.conv_pwl.1", "features.2.conv_pwl.1", "features.4.conv_pwl.1"],
    "densenet": [b + ".conv2" for b in EXPECTED_BLOCKS["densenet"]],
    "shufflenetv2": [b + ".branch2.7" for b in EXPECTED_BLOCKS["shufflenetv2"]],
}
CHANNELS = {
    "ghostnet": [16, 24, 24, 40],
    "rexnet-inplace": [16, 38, 61],
    "rexnet-cat": [16, 38, 61],
    "densenet": [8] * 5,  # the growth rate: the new features of each layer
    "shufflenetv2": [16, 16, 16, 32, 32],  # the branch's half of the unit's channels
}
STAGES = {
    "ghostnet": ["blocks.0", "blocks.1", "blocks.2"],
    "rexnet-inplace": ["features"],
    "rexnet-cat": ["features"],
    "densenet": ["features.denseblock1", "features.denseblock2"],
    "shufflenetv2": ["stage2", "stage3"],
}


class Probe(nn.Module):
    """Attention stand-in: remembers its input, returns it doubled (so the output must change)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.seen: torch.Tensor | None = None

    def forward(self, x):
        self.seen = x.detach().clone()
        return x * 2


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_attention_goes_after_the_branchs_last_module(name):
    build, shape = NETWORKS[name]
    torch.manual_seed(0)
    model = randomize_bn(build()).eval()
    x = torch.randn(*shape)
    ref = model(x).detach()
    names = attach(model, Probe)
    assert names == [b + ".attn" for b in EXPECTED_BLOCKS[name]]
    assert [model.get_submodule(n).channels for n in names] == CHANNELS[name]
    raw = {}
    for t in TARGETS[name]:  # prepend: the target's own output, before attach's hook replaces it
        model.get_submodule(t).register_forward_hook(lambda m, a, o, t=t: raw.__setitem__(t, o.detach().clone()),
                                                     prepend=True)
    out = model(x)
    for n, t in zip(names, TARGETS[name], strict=True):
        torch.testing.assert_close(model.get_submodule(n).seen, raw[t], rtol=0, atol=0)
    assert out.shape == ref.shape and not torch.allclose(out, ref)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_attached_network_trains_loads_and_detaches(name):
    build, shape = NETWORKS[name]
    torch.manual_seed(0)
    model = randomize_bn(build()).eval()
    x = torch.randn(*shape)
    ref = model(x).detach()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    names = attach(model, "se", reduction=4)
    assert _attn_names(model) == names
    trained = copy.deepcopy(model).train()
    nn.functional.cross_entropy(trained(x), torch.tensor([0, 1])).backward()
    assert all(p.grad is not None for p in trained.parameters())
    # a checkpoint of the network before attach loads with only the attention new
    fresh = build()
    attach(fresh, "se", reduction=4, example_input=x)
    report = load_backbone(fresh, before)
    assert report.missing == [] and report.unexpected == [] and report.new
    assert all(k.startswith(tuple(n + "." for n in names)) for k in report.new)
    model.eval()
    assert detach(model) == names
    assert list(model.state_dict()) == list(before)
    torch.testing.assert_close(model(x), ref, rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_stages(name):
    build, shape = NETWORKS[name]
    model = build().eval()
    x = torch.randn(*shape)
    assert find_stages(model, example_input=x) == STAGES[name]
    names = attach(model, "eca", where="stages", example_input=x)
    assert len(names) == len(STAGES[name]) and model(x).shape == (shape[0], 5)


class InceptionLike(nn.Module):
    """Four branches concatenated (GoogLeNet): no shortcut, no block."""

    def __init__(self) -> None:
        super().__init__()
        self.b1 = ConvBN(8, 4)
        self.b2 = nn.Sequential(ConvBN(8, 4), ConvBN(4, 4, 3))
        self.b3 = nn.Sequential(ConvBN(8, 4), ConvBN(4, 4, 3), ConvBN(4, 4, 3))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), ConvBN(8, 4))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class Fire(nn.Module):
    """SqueezeNet's Fire: squeeze, then two expand convs concatenated (equal conv counts): no block."""

    def __init__(self) -> None:
        super().__init__()
        self.squeeze = ConvBN(16, 4)
        self.expand1x1 = ConvBN(4, 8)
        self.expand3x3 = ConvBN(4, 8, 3)

    def forward(self, x):
        s = self.squeeze(x)
        return torch.cat([self.expand1x1(s), self.expand3x3(s)], 1)


def test_concatenations_without_a_shortcut_are_not_blocks():
    model = nn.Sequential(ConvBN(3, 8, 3), InceptionLike(), Fire(), GhostModule(16, 16))
    x = torch.randn(1, 3, 16, 16)
    assert find_blocks(model, example_input=x) == []
    with pytest.raises(ValueError, match=r'found no residual blocks in Sequential.*where="stages"'):
        attach(model, "se", example_input=x)
    stages = find_stages(model, example_input=x)
    assert stages and attach(model, "se", where="stages", example_input=x) == [s + ".attn" for s in stages]
