"""``attnlab.record_attention``: the context manager over the attention-recording protocol."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

import attnlab
from attnlab.attention import AttentionMaps, attention_modules

C = 16


class Block(nn.Module):
    def __init__(self, channels: int, attn: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.attn = attnlab.create_attention(attn, channels)

    def forward(self, x):
        return self.attn(torch.relu(self.conv(x)))


def _net(names=("se", "cbam", "eca")) -> nn.Module:
    """stem -> layer1 (one Block per name) -> layer2 (nested Sequential with a bare module)."""
    return nn.Sequential(
        OrderedDict(
            stem=nn.Conv2d(3, C, 3, padding=1),
            layer1=nn.Sequential(*[Block(C, n) for n in names]),
            layer2=nn.Sequential(OrderedDict(inner=nn.Sequential(attnlab.create_attention(names[0], C)))),
        )
    )


def _x(n=2, c=3, h=8, w=8):
    return torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(0))


def test_model_without_attention_raises():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    with pytest.raises(ValueError, match="no attnlab attention module"):
        with attnlab.record_attention(model):
            pass  # pragma: no cover


def test_nested_modules_get_dotted_names():
    model = _net()
    expected = {"layer1.0.attn", "layer1.1.attn", "layer1.2.attn", "layer2.inner.0"}
    assert {n for n, _ in attention_modules(model)} == expected
    with attnlab.record_attention(model) as maps:
        model(_x())
    assert set(maps) == expected
    assert all(isinstance(v, AttentionMaps) for v in maps.values())
    assert maps["layer1.1.attn"].spatial.shape == (2, 1, 8, 8)
    assert maps["layer1.1.attn"].channel.shape == (2, C)
    assert maps["layer1.0.attn"].channel.shape == (2, C)


def test_model_that_is_an_attention_module_records_under_empty_name():
    m = attnlab.create_attention("se", C)
    with attnlab.record_attention(m) as maps:
        m(_x(c=C))
    assert set(maps) == {""}


def test_latest_call_wins():
    m = attnlab.create_attention("se", C)
    model = nn.Sequential(m)
    a, b = _x(c=C), _x(c=C) * 3 + 1
    with attnlab.record_attention(model) as maps:
        model(a)
        model(b)
    with attnlab.record_attention(model) as only_b:
        model(b)
    torch.testing.assert_close(maps["0"].channel, only_b["0"].channel)


def test_a_module_called_twice_per_forward_keeps_the_last_call():
    m = attnlab.create_attention("cbam", C)
    x1, x2 = _x(c=C), _x(c=C, h=5, w=3)
    with attnlab.record_attention(m) as maps:
        m(x1)
        m(x2)
    assert maps[""].spatial.shape == (2, 1, 5, 3)


def test_sinks_removed_and_restored_after_exception():
    model = _net()
    mods = [m for _, m in attention_modules(model)]
    own_calls = []

    def own_sink(module, maps):
        own_calls.append(module)

    mods[0].attention_sink = own_sink  # a sink someone else had set before us
    with pytest.raises(KeyError):
        with attnlab.record_attention(model) as maps:
            assert all(m.attention_sink is not None and m.attention_sink is not own_sink for m in mods)
            model(_x())
            raise KeyError("boom")
    assert mods[0].attention_sink is own_sink
    assert all(m.attention_sink is None for m in mods[1:])
    assert len(maps) == 4  # what was recorded before the error is kept
    model(_x())
    assert own_calls == [mods[0]]


def test_exception_from_forward_restores_sinks():
    model = _net()
    mods = [m for _, m in attention_modules(model)]
    with pytest.raises(RuntimeError):
        with attnlab.record_attention(model):
            model(_x(c=5))  # stem conv refuses 5 channels
    assert all(m.attention_sink is None for m in mods)


def test_nested_contexts_restore_in_order():
    model = _net()
    mods = [m for _, m in attention_modules(model)]
    with attnlab.record_attention(model) as outer:
        with attnlab.record_attention(model.layer1) as inner:
            model(_x())
        assert set(inner) == {"0.attn", "1.attn", "2.attn"}
        outer_sinks = [m.attention_sink for m in mods]
        assert all(s is not None for s in outer_sinks)
        outer.clear()
        model(_x())
        assert set(outer) == {"layer1.0.attn", "layer1.1.attn", "layer1.2.attn", "layer2.inner.0"}
    assert all(m.attention_sink is None for m in mods)


def test_nothing_recorded_outside():
    model = _net()
    with attnlab.record_attention(model) as maps:
        pass
    model(_x())
    assert maps == {}


def test_recording_does_not_change_training_flags_or_outputs():
    model = _net().train()
    model.layer1[1].eval()
    flags = [m.training for m in model.modules()]
    x = _x()
    with torch.no_grad():
        ref = model.eval()(x)
    model.train()
    model.layer1[1].eval()
    with attnlab.record_attention(model):
        assert [m.training for m in model.modules()] == flags
    assert [m.training for m in model.modules()] == flags
    model.eval()
    with torch.no_grad(), attnlab.record_attention(model):
        out = model(x)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)


@pytest.mark.parametrize("grad", [False, True], ids=["nograd", "grad"])
def test_recorded_tensors_are_detached(attn_name, grad):
    m = attnlab.create_attention(attn_name, C).train(grad)
    model = nn.Sequential(nn.Conv2d(3, C, 3, padding=1), m)
    x = _x().requires_grad_(grad)
    with torch.set_grad_enabled(grad), attnlab.record_attention(model) as maps:
        y = model(x)
    rec = maps["1"]
    tensors = [t for t in (rec.channel, rec.spatial, *rec.extra.values()) if t is not None]
    assert tensors
    for t in tensors:
        assert not t.requires_grad and t.grad_fn is None
    if grad:
        # backward still works and the recorded maps are not views kept alive by the graph
        y.sum().backward()
        assert x.grad is not None
        before = [t.clone() for t in tensors]
        with torch.no_grad():
            model(_x() * 5)  # a later forward outside the context must not overwrite them
        for a, b in zip(before, tensors, strict=True):
            assert torch.equal(a, b)
