"""convert_checkpoint: the authors' checkpoint layouts, written out here from their code, into attnlab's networks.

No checkpoint is downloaded: each test builds a reference network in the official layout (the classes below
copy the official code's modules, names and forward, modernised only where torch changed: ``torch.sigmoid``
for ``F.sigmoid``), gives it random weights and BatchNorm statistics, saves its state_dict the way the
official training scripts do (``{"state_dict": model.state_dict(), ...}`` from ``nn.DataParallel``, so
every key starts with ``module.``), converts it, loads it into attnlab's network with ``strict=True`` and
compares the outputs.

Sources: ``Jongchan/attention-module`` ``MODELS/model_resnet.py``, ``MODELS/cbam.py``, ``MODELS/bam.py``;
``BangguWu/ECANet`` ``models/eca_module.py``, ``models/eca_resnet.py``, ``models/eca_mobilenetv2.py``;
timm ``timm/models/resnet.py`` with ``timm/layers/squeeze_excite.py`` (``SEModule``), ``eca.py``
(``EcaModule``) and ``cbam.py`` (``CbamModule``). The reference ResNets use adaptive average pooling
where the official ImageNet code has ``AvgPool2d(7)`` (the same at 224x224, and it has no weights), so
that the tests run at 64x64.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.models import CHECKPOINT_LAYOUTS, convert_checkpoint, create_model, load_backbone

# --- the official CBAM / BAM code (Jongchan/attention-module) --------------------------------------------------------


class BasicConv(nn.Module):
    def __init__(self, in_planes, out_planes, kernel_size, stride=1, padding=0, relu=True, bn=True, bias=False):
        super().__init__()
        self.out_channels = out_planes
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size=kernel_size, stride=stride, padding=padding, bias=bias)
        self.bn = nn.BatchNorm2d(out_planes, eps=1e-5, momentum=0.01, affine=True) if bn else None
        self.relu = nn.ReLU() if relu else None

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.relu is not None:
            x = self.relu(x)
        return x


class Flatten(nn.Module):
    def forward(self, x):
        return x.view(x.size(0), -1)


class ChannelGate(nn.Module):
    def __init__(self, gate_channels, reduction_ratio=16):
        super().__init__()
        self.mlp = nn.Sequential(Flatten(), nn.Linear(gate_channels, gate_channels // reduction_ratio), nn.ReLU(),
                                 nn.Linear(gate_channels // reduction_ratio, gate_channels))

    def forward(self, x):
        avg_pool = F.avg_pool2d(x, (x.size(2), x.size(3)), stride=(x.size(2), x.size(3)))
        max_pool = F.max_pool2d(x, (x.size(2), x.size(3)), stride=(x.size(2), x.size(3)))
        channel_att_sum = self.mlp(avg_pool) + self.mlp(max_pool)
        scale = torch.sigmoid(channel_att_sum).unsqueeze(2).unsqueeze(3).expand_as(x)
        return x * scale


class ChannelPool(nn.Module):
    def forward(self, x):
        return torch.cat((torch.max(x, 1)[0].unsqueeze(1), torch.mean(x, 1).unsqueeze(1)), dim=1)


class SpatialGate(nn.Module):
    def __init__(self):
        super().__init__()
        kernel_size = 7
        self.compress = ChannelPool()
        self.spatial = BasicConv(2, 1, kernel_size, stride=1, padding=(kernel_size - 1) // 2, relu=False)

    def forward(self, x):
        return x * torch.sigmoid(self.spatial(self.compress(x)))


class OfficialCBAM(nn.Module):
    def __init__(self, gate_channels, reduction_ratio=16):
        super().__init__()
        self.ChannelGate = ChannelGate(gate_channels, reduction_ratio)
        self.SpatialGate = SpatialGate()

    def forward(self, x):
        return self.SpatialGate(self.ChannelGate(x))


class BAMChannelGate(nn.Module):
    def __init__(self, gate_channel, reduction_ratio=16):
        super().__init__()
        self.gate_c = nn.Sequential()
        self.gate_c.add_module("flatten", Flatten())
        self.gate_c.add_module("gate_c_fc_0", nn.Linear(gate_channel, gate_channel // reduction_ratio))
        self.gate_c.add_module("gate_c_bn_1", nn.BatchNorm1d(gate_channel // reduction_ratio))
        self.gate_c.add_module("gate_c_relu_1", nn.ReLU())
        self.gate_c.add_module("gate_c_fc_final", nn.Linear(gate_channel // reduction_ratio, gate_channel))

    def forward(self, x):
        return self.gate_c(F.avg_pool2d(x, x.size(2), stride=x.size(2))).unsqueeze(2).unsqueeze(3).expand_as(x)


class BAMSpatialGate(nn.Module):
    def __init__(self, gate_channel, reduction_ratio=16, dilation_conv_num=2, dilation_val=4):
        super().__init__()
        h = gate_channel // reduction_ratio
        self.gate_s = nn.Sequential()
        self.gate_s.add_module("gate_s_conv_reduce0", nn.Conv2d(gate_channel, h, kernel_size=1))
        self.gate_s.add_module("gate_s_bn_reduce0", nn.BatchNorm2d(h))
        self.gate_s.add_module("gate_s_relu_reduce0", nn.ReLU())
        for i in range(dilation_conv_num):
            self.gate_s.add_module(f"gate_s_conv_di_{i}", nn.Conv2d(h, h, 3, padding=dilation_val,
                                                                   dilation=dilation_val))
            self.gate_s.add_module(f"gate_s_bn_di_{i}", nn.BatchNorm2d(h))
            self.gate_s.add_module(f"gate_s_relu_di_{i}", nn.ReLU())
        self.gate_s.add_module("gate_s_conv_final", nn.Conv2d(h, 1, kernel_size=1))

    def forward(self, x):
        return self.gate_s(x).expand_as(x)


class OfficialBAM(nn.Module):
    def __init__(self, gate_channel):
        super().__init__()
        self.channel_att = BAMChannelGate(gate_channel)
        self.spatial_att = BAMSpatialGate(gate_channel)

    def forward(self, x):
        return (1 + torch.sigmoid(self.channel_att(x) * self.spatial_att(x))) * x


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class OfficialBasicBlock(nn.Module):
    """model_resnet.py's BasicBlock, whose attention attribute is ``cbam`` (ECA-Net's: ``eca``)."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, attn=None, attr="cbam"):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.attr = attr
        setattr(self, attr, attn(planes) if attn is not None else None)

    def forward(self, x):
        residual = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            residual = self.downsample(x)
        if getattr(self, self.attr) is not None:
            out = getattr(self, self.attr)(out)
        out += residual
        return self.relu(out)


class OfficialBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, attn=None, attr="cbam"):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.attr = attr
        setattr(self, attr, attn(planes * 4) if attn is not None else None)

    def forward(self, x):
        residual = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            residual = self.downsample(x)
        if getattr(self, self.attr) is not None:
            out = getattr(self, self.attr)(out)
        out += residual
        return self.relu(out)


class OfficialResNet(nn.Module):
    """model_resnet.py's ResNet (ImageNet type); ``attn(stage, channels)`` builds each block's attention."""

    def __init__(self, block, layers, num_classes=1000, attn=None, attr="cbam", bam=False):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # the official code: AvgPool2d(7) (224x224 input)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        if bam:
            self.bam1, self.bam2, self.bam3 = (OfficialBAM(c * block.expansion) for c in (64, 128, 256))
        else:
            self.bam1, self.bam2, self.bam3 = None, None, None
        for s, (planes, n) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            make = None if attn is None else (lambda c, s=s: attn(s, c))
            self.add_module(f"layer{s + 1}", self._make_layer(block, planes, n, 1 if s == 0 else 2, make, attr))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride, attn, attr):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, attn=attn, attr=attr)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, attn=attn, attr=attr) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
            bam = getattr(self, f"bam{i}", None)
            if bam is not None:
                x = bam(x)
        return self.fc(self.avgpool(x).view(x.size(0), -1))


# --- the official ECA-Net code (BangguWu/ECANet) -------------------------------------------------------------------


class eca_layer(nn.Module):  # noqa: N801 - the official name
    def __init__(self, channel, k_size=3):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, kernel_size=k_size, padding=(k_size - 1) // 2, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        y = self.avg_pool(x)
        y = self.conv(y.squeeze(-1).transpose(-1, -2)).transpose(-1, -2).unsqueeze(-1)
        return x * self.sigmoid(y).expand_as(x)


class ConvBNReLU(nn.Sequential):
    def __init__(self, in_planes, out_planes, kernel_size=3, stride=1, groups=1):
        padding = (kernel_size - 1) // 2
        super().__init__(nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding, groups=groups, bias=False),
                         nn.BatchNorm2d(out_planes), nn.ReLU6(inplace=True))


class ECAInvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio, k_size):
        super().__init__()
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = [] if expand_ratio == 1 else [ConvBNReLU(inp, hidden_dim, kernel_size=1)]
        layers.extend([ConvBNReLU(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),
                       nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)])
        layers.append(eca_layer(oup, k_size))
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class ECA_MobileNetV2(nn.Module):  # noqa: N801 - the official name
    def __init__(self, num_classes=1000, width_mult=1.0):
        super().__init__()
        input_channel, last_channel = 32, 1280
        setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                   [6, 320, 1, 1]]
        input_channel = int(input_channel * width_mult)
        self.last_channel = int(last_channel * max(1.0, width_mult))
        features = [ConvBNReLU(3, input_channel, stride=2)]
        for t, c, n, s in setting:
            output_channel = int(c * width_mult)
            for i in range(n):
                ksize = 1 if c < 96 else 3
                features.append(ECAInvertedResidual(input_channel, output_channel, s if i == 0 else 1, t, ksize))
                input_channel = output_channel
        features.append(ConvBNReLU(input_channel, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.25), nn.Linear(self.last_channel, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).mean(-1).mean(-1))


# --- timm's ResNet with attention in its blocks (timm/models/resnet.py, timm/layers) --------------------------------


def timm_make_divisible(v, divisor=8, min_value=None, round_limit=0.9):
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < round_limit * v else new_v


class SEModule(nn.Module):
    def __init__(self, channels, rd_ratio=1.0 / 16, rd_divisor=8):
        super().__init__()
        rd_channels = timm_make_divisible(channels * rd_ratio, rd_divisor, round_limit=0.0)
        self.fc1 = nn.Conv2d(channels, rd_channels, kernel_size=1, bias=True)
        self.bn = nn.Identity()
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(rd_channels, channels, kernel_size=1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        x_se = self.fc2(self.act(self.bn(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * self.gate(x_se)


class EcaModule(nn.Module):
    def __init__(self, channels, gamma=2, beta=1):
        super().__init__()
        t = int(abs(math.log(channels, 2) + beta) / gamma)
        kernel_size = max(t if t % 2 else t + 1, 3)
        self.conv = nn.Conv1d(1, 1, kernel_size=kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        y = self.conv(x.mean((2, 3)).view(x.shape[0], 1, -1))
        return x * self.gate(y).view(x.shape[0], -1, 1, 1).expand_as(x)


class ConvNormAct(nn.Module):
    def __init__(self, cin, cout, k):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)  # BatchNormAct2d with apply_act=False: a BatchNorm2d

    def forward(self, x):
        return self.bn(self.conv(x))


class TimmChannelAttn(nn.Module):
    def __init__(self, channels, rd_ratio=1.0 / 16):
        super().__init__()
        rd = timm_make_divisible(channels * rd_ratio, 1, round_limit=0.0)
        self.fc1 = nn.Conv2d(channels, rd, 1, bias=False)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(rd, channels, 1, bias=False)

    def forward(self, x):
        x_avg = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        x_max = self.fc2(self.act(self.fc1(x.amax((2, 3), keepdim=True))))
        return x * torch.sigmoid(x_avg + x_max)


class TimmSpatialAttn(nn.Module):
    def __init__(self, kernel_size=7):
        super().__init__()
        self.conv = ConvNormAct(2, 1, kernel_size)

    def forward(self, x):
        x_attn = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(x_attn))


class CbamModule(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.channel = TimmChannelAttn(channels)
        self.spatial = TimmSpatialAttn()

    def forward(self, x):
        return self.spatial(self.channel(x))


class TimmBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, attn_layer=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = attn_layer(planes) if attn_layer is not None else None
        self.act2 = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        shortcut = x
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.bn2(self.conv2(x))
        if self.se is not None:
            x = self.se(x)
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        x += shortcut
        return self.act2(x)


class TimmResNet(nn.Module):
    """timm's ResNet with its default stem (7x7 ``conv1``, ``bn1``, ``act1``, ``maxpool``) and conv shortcuts."""

    def __init__(self, layers=(2, 2, 2, 2), num_classes=1000, attn_layer=None):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.act1 = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = 64
        for s, (planes, n) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            stride = 1 if s == 0 else 2
            downsample = None
            if stride != 1 or inplanes != planes:
                downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
            blocks = [TimmBasicBlock(inplanes, planes, stride, downsample, attn_layer)]
            blocks += [TimmBasicBlock(planes, planes, attn_layer=attn_layer) for _ in range(1, n)]
            self.add_module(f"layer{s + 1}", nn.Sequential(*blocks))
            inplanes = planes
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.global_pool(x).flatten(1))


# --- helpers -------------------------------------------------------------------------------------------------------


@torch.no_grad()
def _randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights (fan-in scaled), BN affine parameters and running statistics, in place; eval mode."""
    g = torch.Generator().manual_seed(seed)
    for key, v in model.state_dict().items():
        if not v.is_floating_point():
            continue
        if key.endswith("running_var"):
            v.copy_(torch.rand(v.shape, generator=g) + 0.5)
        elif v.dim() >= 2:
            v.copy_(torch.randn(v.shape, generator=g) / math.sqrt(max(1, v[0].numel())))
        elif key.endswith("weight"):
            v.copy_(torch.rand(v.shape, generator=g) * 0.4 + 0.8)
        else:  # biases, running means
            v.copy_(torch.randn(v.shape, generator=g) * 0.1)
    return model.eval()


def _released(model: nn.Module) -> dict:
    """The state_dict as the official training scripts save it: DataParallel's ``module.`` prefix, wrapped."""
    return {"epoch": 90, "arch": "resnet", "best_prec1": 77.0,
            "state_dict": {f"module.{k}": v.clone() for k, v in model.state_dict().items()}}


def _same_outputs(reference: nn.Module, model: nn.Module, shape=(2, 3, 64, 64)) -> None:
    x = torch.randn(*shape)
    reference.eval(), model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-5)


@functools.cache
def _official_cbam_resnet18() -> nn.Module:
    """ResidualNet("ImageNet", 18, 1000, "CBAM") with random state, built once (the tests only read it)."""
    return _randomize(OfficialResNet(OfficialBasicBlock, (2, 2, 2, 2), attn=lambda s, c: OfficialCBAM(c, 16)))


# --- CBAM (official) -----------------------------------------------------------------------------------------------


def test_official_cbam_resnet_converts_and_computes_the_same():
    ref = _official_cbam_resnet18()
    model = create_model("resnet18", attention="cbam", attention_kwargs={"variant": "official"})
    result = convert_checkpoint(_released(ref), "cbam-official", model)
    assert result.clean and not result.filled and result.layout == "cbam-official"
    model.load_state_dict(result.state_dict, strict=True)
    _same_outputs(ref, model)
    mapped = {s: (t, note) for s, t, note in result.mapped}
    assert len(mapped) == len(ref.state_dict())  # every source key placed
    assert mapped["layer1.0.cbam.ChannelGate.mlp.1.weight"] == (
        "layer1.0.attn.channel_attention.fc1.weight", "Linear (h, C) -> 1x1 conv (h, C, 1, 1)")
    assert mapped["layer4.1.cbam.ChannelGate.mlp.3.bias"][0] == "layer4.1.attn.channel_attention.fc2.bias"
    assert mapped["layer2.0.cbam.SpatialGate.spatial.conv.weight"] == (
        "layer2.0.attn.spatial_attention.conv1.weight", "input channels [max; mean] -> [mean; max]")
    assert mapped["layer3.1.cbam.SpatialGate.spatial.bn.running_var"][0] == \
        "layer3.1.attn.spatial_attention.bn.running_var"
    assert mapped["layer2.0.downsample.0.weight"] == ("layer2.0.downsample.0.weight", "")
    assert len(result.renamed) == 8 * (4 + 1 + 5)  # 8 blocks: MLP (4), spatial conv (1), spatial BN (5)
    text = str(result)
    assert "layer1.0.cbam.ChannelGate.mlp.1.weight -> layer1.0.attn.channel_attention.fc1.weight" in text
    assert sum(" -> " in line for line in text.splitlines()[1:]) == len(ref.state_dict())  # one line per key


def test_official_cbam_bottleneck_block_computes_the_same():
    """One ResNet-50 bottleneck with CBAM, official against converted (the whole ResNet-50 is slow here)."""
    torch.manual_seed(0)
    ref = _randomize(OfficialBottleneck(256, 64, attn=lambda c: OfficialCBAM(c, 16)))
    model = create_model("resnet50", attention="cbam", attention_kwargs={"variant": "official"})
    block = model.layer1[1]
    sd = {f"layer1.1.{k}": v for k, v in ref.state_dict().items()}
    result = convert_checkpoint(sd, "cbam-official", model, strict=False)  # one block of the network: the rest missing
    assert result.unmapped == [] and result.mismatched == [] and len(result.mapped) == len(sd)
    block.load_state_dict({k[len("layer1.1."):]: v for k, v in result.state_dict.items()
                           if k.startswith("layer1.1.")}, strict=True)
    _same_outputs(ref, block, shape=(2, 256, 14, 14))


def test_a_seed_cbam_model_is_refused_with_the_variant_to_build():
    ref = _official_cbam_resnet18()
    model = create_model("resnet18", attention="cbam")  # the seed variant: no MLP biases, no spatial BN
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"(?s)unmapped: layer1\.0\.cbam\.ChannelGate\.mlp\.1\.bias.*"
                                         r"attention_kwargs=\{'variant': 'official'\}"):
        convert_checkpoint(_released(ref), "cbam-official", model)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    loose = convert_checkpoint(_released(ref), "cbam-official", model, strict=False)
    assert not loose.clean and "layer1.0.cbam.SpatialGate.spatial.bn.weight" in loose.unmapped
    model.load_state_dict(loose.state_dict, strict=False)  # what fits loads


def test_official_bam_resnet_loads_and_the_different_combination_is_noted():
    ref = _randomize(OfficialResNet(OfficialBasicBlock, (2, 2, 2, 2), bam=True))
    model = create_model("resnet18", attention="bam")
    result = convert_checkpoint(_released(ref), "cbam-official", model)
    assert result.clean and all(s == t and not note for s, t, note in result.mapped)
    model.load_state_dict(result.state_dict, strict=True)
    assert any("sigmoid(Mc * Ms)" in n for n in result.notes) and "sigmoid(Mc * Ms)" in str(result)


# --- ECA (official) ------------------------------------------------------------------------------------------------


def test_official_eca_resnet_with_matching_kernels_computes_the_same():
    ks = [3, 5, 5, 5]  # attnlab's adaptive k for ResNet-18's 64, 128, 256, 512 channels
    ref = _randomize(OfficialResNet(OfficialBasicBlock, (2, 2, 2, 2), attr="eca",
                                    attn=lambda s, c: eca_layer(c, ks[s])))
    model = create_model("resnet18", attention="eca")
    result = convert_checkpoint(_released(ref), "eca-official", model)
    assert result.clean
    assert ("layer3.1.eca.conv.weight", "layer3.1.attn.conv.weight", "") in result.mapped
    assert len(result.renamed) == 8
    model.load_state_dict(result.state_dict, strict=True)
    _same_outputs(ref, model)


def test_released_eca_kernel_sizes_are_refused_or_adapted():
    ks = [3, 5, 7, 7]  # eca_resnet18_k3577, as released (attnlab's adaptive k: 3, 5, 5, 5)
    ref = _randomize(OfficialResNet(OfficialBasicBlock, (2, 2, 2, 2), attr="eca",
                                    attn=lambda s, c: eca_layer(c, ks[s])))
    model = create_model("resnet18", attention="eca")
    with pytest.raises(ValueError, match=r"(?s)layer3\.0\.attn\.conv\.weight: checkpoint \(1, 1, 7\) vs model "
                                         r"\(1, 1, 5\).*layer3\.0\.attn: k=7.*adapt_eca_kernels=True"):
        convert_checkpoint(_released(ref), "eca-official", model)
    result = convert_checkpoint(_released(ref), "eca-official", model, adapt_eca_kernels=True)
    assert result.clean and any("rebuilt 4 ECA modules" in n for n in result.notes)
    assert [blk.attn.kernel_size for _, blk in model.blocks()] == [3, 3, 5, 5, 7, 7, 7, 7]
    model.load_state_dict(result.state_dict, strict=True)
    _same_outputs(ref, model)


def test_official_eca_mobilenet_v2_converts_and_computes_the_same():
    ref = _randomize(ECA_MobileNetV2())
    model = create_model("mobilenet_v2", attention="eca")
    result = convert_checkpoint(_released(ref), "eca-official", model)
    assert result.clean
    renamed = [(s, t) for s, t, _ in result.renamed]
    assert renamed[0] == ("features.1.conv.3.conv.weight", "features.1.attn.conv.weight")  # t = 1: 4th entry
    assert ("features.2.conv.4.conv.weight", "features.2.attn.conv.weight") in renamed
    assert len(renamed) == 17
    model.load_state_dict(result.state_dict, strict=True)
    _same_outputs(ref, model, shape=(2, 3, 32, 32))


# --- timm ------------------------------------------------------------------------------------------------------------


def test_timm_seresnet18_needs_timms_se_widths_then_computes_the_same():
    ref = _randomize(TimmResNet(attn_layer=SEModule))
    with pytest.raises(ValueError, match=r"(?s)layer1\.0\.attn\.fc1\.weight: checkpoint \(8, 64, 1, 1\) vs model "
                                         r"\(4, 64, 1, 1\).*min_channels': 8"):
        convert_checkpoint(ref.state_dict(), "timm", create_model("resnet18", attention="se"))
    model = create_model("resnet18", attention="se", attention_kwargs={"min_channels": 8})
    result = convert_checkpoint(ref.state_dict(), "timm", model)
    assert result.clean
    assert ("layer1.0.se.fc1.weight", "layer1.0.attn.fc1.weight", "") in result.mapped
    assert ("layer4.1.se.fc2.bias", "layer4.1.attn.fc2.bias", "") in result.mapped
    model.load_state_dict(result.state_dict, strict=True)
    _same_outputs(ref, model)


def test_timm_eca_and_cbam_resnets_compute_the_same():
    ref = _randomize(TimmResNet(attn_layer=EcaModule))
    model = create_model("resnet18", attention="eca")
    result = convert_checkpoint(ref.state_dict(), "timm", model)
    assert ("layer2.1.se.conv.weight", "layer2.1.attn.conv.weight", "") in result.mapped
    model.load_state_dict(result.state_dict, strict=True)
    _same_outputs(ref, model)
    ref = _randomize(TimmResNet(attn_layer=CbamModule))
    model = create_model("resnet18", attention="cbam", attention_kwargs={"spatial_bn": True})
    result = convert_checkpoint(ref.state_dict(), "timm", model)
    assert ("layer1.0.se.spatial.conv.conv.weight", "layer1.0.attn.spatial_attention.conv1.weight", "") \
        in result.mapped
    model.load_state_dict(result.state_dict, strict=True)
    _same_outputs(ref, model)


def test_timm_resnet_d_is_another_network():
    sd = TimmResNet(attn_layer=EcaModule).state_dict()
    sd = {("conv1.0.weight" if k == "conv1.weight" else k): v for k, v in sd.items()}  # ecaresnet50d's deep stem
    sd["conv1.1.weight"] = torch.ones(32)
    with pytest.raises(ValueError, match=r"(?s)unmapped: conv1\.0\.weight.*missing: conv1\.weight.*deep stem"):
        convert_checkpoint(sd, "timm", create_model("resnet18", attention="eca"))


# --- the report and its refusals -----------------------------------------------------------------------------------


def test_a_missing_key_is_refused_and_listed():
    ref = _official_cbam_resnet18()
    sd = dict(ref.state_dict())
    del sd["layer3.0.bn1.weight"]
    model = create_model("resnet18", attention="cbam", attention_kwargs={"variant": "official"})
    with pytest.raises(ValueError, match=r"missing: layer3\.0\.bn1\.weight"):
        convert_checkpoint(sd, "cbam-official", model)
    loose = convert_checkpoint(sd, "cbam-official", model, strict=False)
    assert loose.missing == ["layer3.0.bn1.weight"] and "layer3.0.bn1.weight" not in loose.state_dict
    report = load_backbone(model, loose.state_dict)
    assert report.missing == ["layer3.0.bn1.weight"] and report.unexpected == []


def test_old_checkpoints_without_batchnorm_counters_are_filled():
    ref = _official_cbam_resnet18()
    sd = {k: v for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")}  # PyTorch < 0.4.1
    model = create_model("resnet18", attention="cbam", attention_kwargs={"variant": "official"})
    result = convert_checkpoint(sd, "cbam-official", model)
    assert result.clean and len(result.filled) == sum(k.endswith("num_batches_tracked") for k in model.state_dict())
    model.load_state_dict(result.state_dict, strict=True)
    _same_outputs(ref, model)


def test_layouts_and_unknown_layout():
    assert sorted(CHECKPOINT_LAYOUTS) == ["cbam-official", "eca-official", "timm"]
    model = create_model("resnet18")
    with pytest.raises(ValueError, match=r"unknown checkpoint layout 'tim'.*Did you mean 'timm'"):
        convert_checkpoint({}, "tim", model)
    plain = convert_checkpoint(model.state_dict(), "ECA", model)  # an alias, any case
    assert plain.layout == "eca-official" and plain.clean and plain.renamed == []


def test_a_path_loads_too(tmp_path):
    ref = _official_cbam_resnet18()
    path = tmp_path / "RESNET18_CBAM.pth.tar"
    torch.save(_released(ref), path)
    model = create_model("resnet18", attention="cbam", attention_kwargs={"variant": "official"})
    model.load_state_dict(convert_checkpoint(path, "cbam-official", model).state_dict, strict=True)
    _same_outputs(ref, model)
