"""The inference fusion of a channel gate with the residual addition: asked of the module, never guessed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import attnlab
from attnlab.attention import AttentionModule, ChannelGateModule
from attnlab.models._fused import gate_add


class _Counting(nn.Module):
    """Wraps nothing; counts forward calls of the module it is mixed into."""

    calls = 0

    def __call__(self, *args, **kwargs):
        type(self).calls += 1
        return super().__call__(*args, **kwargs)


class Halve(ChannelGateModule):
    """A channel gate of constant weights 1/2 (subclasses only change ``forward``)."""

    def weights(self, avg, _max=None):
        return torch.full_like(avg, 0.5)


def _branch(c: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(2, c, 5, 5), torch.randn(2, c, 5, 5)


@pytest.mark.parametrize("name", ["se", "eca"])
def test_registered_channel_gates_answer_channel_scale_exactly(name):
    m = attnlab.create_attention(name, 16).eval()
    x = torch.randn(2, 16, 6, 6)
    with torch.no_grad():
        w = m.channel_scale(x)
        torch.testing.assert_close(x * w[:, :, None, None], m(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["cbam", "bam", "non_local", "gc", "coord", "simam", "triplet", "scse"])
def test_other_families_do_not_claim_to_be_channel_scales(name):
    assert attnlab.create_attention(name, 16).channel_scale(torch.randn(1, 16, 4, 4)) is None


def test_a_subclass_with_its_own_forward_is_not_fused():
    class Doubled(Halve):
        def forward(self, x):
            return 2 * super().forward(x)

    m = Doubled(8)
    assert m.channel_scale(torch.randn(1, 8, 2, 2)) is None
    out, shortcut = _branch()
    with torch.no_grad():
        expected = 2 * (out * 0.5) + shortcut
        torch.testing.assert_close(gate_add(m, out.clone(), shortcut), expected)


def test_a_subclass_that_keeps_forward_is_still_fused():
    class Counted(_Counting, Halve):
        pass

    m = Counted(8)
    out, shortcut = _branch()
    with torch.no_grad():
        got = gate_add(m, out.clone(), shortcut)
    torch.testing.assert_close(got, out * 0.5 + shortcut)
    assert Counted.calls == 0  # the fused product, not the module's call


def test_a_new_module_opts_in_with_channel_scale():
    class Gate(_Counting, AttentionModule):
        def channel_scale(self, x):
            return torch.sigmoid(x.mean((2, 3)))

        def forward(self, x):
            return x * self.channel_scale(x)[:, :, None, None]

    m = Gate(8)
    out, shortcut = _branch()
    with torch.no_grad():
        got = gate_add(m, out.clone(), shortcut)
    torch.testing.assert_close(got, out * torch.sigmoid(out.mean((2, 3)))[:, :, None, None] + shortcut)
    assert Gate.calls == 0
    got = gate_add(m, out.clone(), shortcut)  # under autograd: the module's own call
    assert Gate.calls == 1
    torch.testing.assert_close(got, out * torch.sigmoid(out.mean((2, 3)))[:, :, None, None] + shortcut)


def test_hooks_and_sinks_get_the_module_call():
    m = Halve(8)
    out, shortcut = _branch()
    seen = []
    with torch.no_grad():
        handle = m.register_forward_hook(lambda mod, a, o: seen.append(o.shape))
        gate_add(m, out.clone(), shortcut)
        handle.remove()
        with attnlab.record_attention(m) as maps:
            gate_add(m, out.clone(), shortcut)
    assert seen == [out.shape] and len(maps) == 1


def test_a_plain_module_without_the_capability_is_called():
    out, shortcut = _branch()
    with torch.no_grad():
        torch.testing.assert_close(gate_add(nn.Identity(), out.clone(), shortcut), out + shortcut)


def test_a_mixin_forward_above_the_gate_also_turns_fusion_off():
    class Loud(nn.Module):
        def forward(self, x):
            return x + 1

    class Mixed(Loud, Halve):
        pass

    assert Mixed(8).channel_scale(torch.randn(1, 8, 2, 2)) is None


def test_an_opted_in_module_subclassed_with_a_new_forward_is_not_fused():
    class Gate(AttentionModule):
        def channel_scale(self, x):
            return torch.ones(x.shape[:2])

        def forward(self, x):
            return x

    class Shifted(Gate):
        def forward(self, x):
            return x + 1

    assert Gate(4).channel_scale(torch.randn(1, 4, 2, 2)) is not None
    assert Shifted(4).channel_scale(torch.randn(1, 4, 2, 2)) is None
