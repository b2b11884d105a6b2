"""attnlab.capture_attention: the maps the modules applied, through the recording protocol."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

import attnlab
from attnlab.cam import capture_attention


class Block(nn.Module):
    def __init__(self, channels: int, attn: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)
        self.attn = attnlab.create_attention(attn, channels)

    def forward(self, x):
        return self.attn(torch.relu(self.bn(self.conv(x))))


def _net() -> nn.Module:
    return nn.Sequential(OrderedDict(
        stem=nn.Conv2d(3, 16, 3, stride=2, padding=1),
        layer1=nn.Sequential(Block(16, "se"), Block(16, "cbam"), Block(16, "eca")),
        pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten(), fc=nn.Linear(16, 4),
    ))


def test_names_shapes_and_values():
    model = _net().train()
    x = torch.randn(2, 3, 16, 16)
    maps = capture_attention(model, x)
    assert list(maps) == ["layer1.0.attn", "layer1.1.attn", "layer1.2.attn"]
    assert maps["layer1.0.attn"].channel.shape == (2, 16) and maps["layer1.0.attn"].spatial is None
    cbam = maps["layer1.1.attn"]
    assert cbam.channel.shape == (2, 16) and cbam.spatial.shape == (2, 1, 8, 8)
    assert 0 <= float(cbam.spatial.min()) and float(cbam.spatial.max()) <= 1
    assert maps["layer1.2.attn"].channel.shape == (2, 16)
    # the CBAM mask is the one applied: the block's output is its input times channel then spatial weights
    block = model.layer1[1]
    with torch.no_grad():
        model.eval()
        inp = torch.relu(block.bn(block.conv(model.layer1[0](model.stem(x)))))
        out = block.attn(inp)
        model.train()
    torch.testing.assert_close(out, inp * cbam.channel[:, :, None, None] * cbam.spatial, atol=1e-5, rtol=1e-5)
    up = capture_attention(model, x, upsample=True)
    assert up["layer1.1.attn"].spatial.shape == (2, 1, 16, 16)
    torch.testing.assert_close(up["layer1.1.attn"].channel, cbam.channel)


def test_state_restored_and_no_graph():
    model = _net().train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    maps = capture_attention(model, torch.randn(2, 3, 16, 16))
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert all(m.attention_sink is None for m in model.modules() if hasattr(m, "attention_sink"))
    assert not maps["layer1.1.attn"].spatial.requires_grad


def test_sink_restored_after_an_error():
    model = _net()
    model.fc = nn.Linear(3, 3)  # wrong width: the forward fails after the attention modules ran
    with pytest.raises(RuntimeError):
        capture_attention(model, torch.randn(2, 3, 16, 16))
    assert all(m.attention_sink is None for m in model.modules() if hasattr(m, "attention_sink"))


def test_model_without_attention_gives_an_empty_dict():
    assert capture_attention(nn.Sequential(nn.Conv2d(3, 4, 3)), torch.randn(1, 3, 8, 8)) == {}
    with pytest.raises(ValueError):
        capture_attention(_net(), torch.randn(3, 16, 16))


def test_exported_at_the_top_level():
    assert attnlab.capture_attention is capture_attention
