"""GC block: parameter counts, identity at init, the official forward as reference, options."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from attnlab.attention import GlobalContext


def gc_params(c: int, r: int = 16) -> int:
    h = c // r
    mask = c  # conv1x1 C -> 1, no bias (a bias cancels in the softmax)
    transform = (c * h + h) + 2 * h + (h * c + c)  # conv, LayerNorm([h, 1, 1]), conv
    return mask + transform


@pytest.mark.parametrize("fusion", ["add", "mul"])
@pytest.mark.parametrize("c, r, expected", [(64, 16, 652), (256, 16, 8752), (256, 4, gc_params(256, 4))])
def test_parameter_count(c, r, expected, fusion):
    m = GlobalContext(c, reduction=r, fusion=fusion)
    assert sum(p.numel() for p in m.parameters()) == expected == gc_params(c, r)


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_new_add_block_is_the_identity(make_input, train):
    m = GlobalContext(32).train(train)
    for shape in [(2, 32, 7, 5), (1, 32, 1, 1)]:
        x = make_input(*shape)
        assert torch.equal(m(x), x)
        with torch.no_grad():
            assert torch.equal(m(x), x)
    assert not torch.equal(GlobalContext(32, fusion="mul")(x), x)  # the mul branch keeps its default init


def reference(m: GlobalContext, x: torch.Tensor) -> torch.Tensor:
    """The official ContextBlock forward (mmcv), with the module's own layers."""
    b, c, h, w = x.shape
    if m.pooling == "att":
        input_x = x.view(b, c, h * w).unsqueeze(1)  # (N, 1, C, HW)
        context_mask = m.conv_mask(x).view(b, 1, h * w).softmax(2).unsqueeze(-1)  # (N, 1, HW, 1)
        context = torch.matmul(input_x, context_mask).view(b, c, 1, 1)
    else:
        context = F.adaptive_avg_pool2d(x, 1)
    out = x
    if "mul" in m.fusion:
        out = out * torch.sigmoid(m.channel_mul_conv(context))
    if "add" in m.fusion:
        out = out + m.channel_add_conv(context)
    return out


@pytest.mark.parametrize("fusion", ["add", "mul", "add+mul"])
@pytest.mark.parametrize("pooling", ["att", "avg"])
def test_parameter_count_per_fusion_and_pooling(fusion, pooling):
    """One transform per fusion (2*C*h + 3h + C each); the C-weight mask conv only for attention pooling."""
    m = GlobalContext(256, fusion=fusion, pooling=pooling)
    h = 256 // 16
    transforms = 2 if fusion == "add+mul" else 1
    expected = transforms * (2 * 256 * h + 3 * h + 256) + (256 if pooling == "att" else 0)
    assert sum(p.numel() for p in m.parameters()) == expected
    assert hasattr(m, "conv_mask") == (pooling == "att")


@pytest.mark.parametrize("fusion", ["add", "mul", "add+mul"])
@pytest.mark.parametrize("pooling", ["att", "avg"])
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_fusions_and_poolings_match_the_official_forward(make_attention, make_input, fusion, pooling, train):
    """Both fusions at once compose as the official code: out = x * sigmoid(t_mul) + t_add."""
    m = make_attention("gc", 32, dtype=torch.float64, fusion=fusion, pooling=pooling).train(train)
    x = make_input(3, 32, 7, 5, dtype=torch.float64)
    torch.testing.assert_close(m(x), reference(copy.deepcopy(m), x), rtol=1e-10, atol=1e-12)


def test_new_add_mul_block_is_a_channel_gate(make_input):
    """The add transform starts at zero, so a new "add+mul" block is its "mul" gate alone."""
    m = GlobalContext(32, fusion="add+mul")
    x = make_input(2, 32, 5, 5)
    with torch.no_grad():
        ctx = m.context(x)[1]
        gate = torch.sigmoid(m.transform_context(ctx, m.channel_mul_conv))
        torch.testing.assert_close(m(x), x * gate[:, :, None, None])


def test_channel_scale_only_for_the_mul_fusion(make_attention, make_input):
    x = make_input(2, 32, 6, 5)
    for pooling in ("att", "avg"):
        m = make_attention("gc", 32, fusion="mul", pooling=pooling).eval()
        with torch.no_grad():
            torch.testing.assert_close(m(x), x * m.channel_scale(x)[:, :, None, None])
    assert make_attention("gc", 32).channel_scale(x) is None
    assert make_attention("gc", 32, fusion="add+mul").channel_scale(x) is None


def test_recorded_maps_of_both_fusions(make_attention, make_input):
    m = make_attention("gc", 32, dtype=torch.float64, fusion="add+mul", pooling="avg").eval()
    x = make_input(2, 32, 6, 5, dtype=torch.float64)
    got = []
    m.attention_sink = lambda mod, maps: got.append(maps)
    with torch.no_grad():
        out = m(x)
    maps = got[0]
    assert maps.spatial is None  # average pooling has no attention map
    torch.testing.assert_close(out, x * maps.channel[:, :, None, None] + maps.extra["add"][:, :, None, None])


@pytest.mark.parametrize("fusion", ["add", "mul"])
@pytest.mark.parametrize("shape", [(2, 32, 8, 8), (3, 32, 7, 5), (1, 32, 1, 1)], ids=["8x8", "7x5", "1x1"])
def test_matches_official_forward(make_attention, make_input, fusion, shape):
    m = make_attention("gc", 32, dtype=torch.float64, fusion=fusion).train()
    x = make_input(*shape, dtype=torch.float64)
    torch.testing.assert_close(m(x), reference(copy.deepcopy(m), x), rtol=1e-10, atol=1e-12)
    xcl = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(m(xcl), reference(m, x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fusion", ["add", "mul"])
def test_recorded_maps(make_attention, make_input, fusion):
    m = make_attention("gc", 32, dtype=torch.float64, fusion=fusion).eval()
    x = make_input(2, 32, 6, 5, dtype=torch.float64)
    got = []
    m.attention_sink = lambda mod, maps: got.append(maps)
    with torch.no_grad():
        out = m(x)
    maps = got[0]
    p = m.conv_mask(x).flatten(1).softmax(1).view(2, 1, 6, 5)
    torch.testing.assert_close(maps.spatial, p)
    torch.testing.assert_close(maps.spatial.sum((2, 3)), torch.ones(2, 1, dtype=torch.float64))
    if fusion == "add":
        torch.testing.assert_close(out, x + maps.channel[:, :, None, None])
    else:
        torch.testing.assert_close(out, x * maps.channel[:, :, None, None])


def test_zero_init_last_restores_identity(make_attention, make_input):
    m = make_attention("gc", 32)
    x = make_input(2, 32, 4, 4)
    assert not torch.equal(m(x), x)
    m.zero_init_last()
    assert torch.equal(m(x), x)


@pytest.mark.parametrize("kwargs", [dict(reduction=4), dict(fusion="mul"), dict(min_channels=4), dict(act="gelu"),
                                    dict(fusion="add+mul"), dict(pooling="avg")],
                         ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_every_option_changes_the_output(make_attention, make_input, kwargs):
    x = make_input(2, 32, 6, 6)
    with torch.no_grad():
        ref = make_attention("gc", 32).eval()(x)
        out = make_attention("gc", 32, **kwargs).eval()(x)
    assert not torch.allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_gate_changes_the_mul_output(make_attention, make_input):
    x = make_input(2, 32, 6, 6)
    with torch.no_grad():
        ref = make_attention("gc", 32, fusion="mul").eval()(x)
        out = make_attention("gc", 32, fusion="mul", gate="hard_sigmoid").eval()(x)
    assert not torch.allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(fusion="concat"), "unknown GC fusion"), (dict(gate="sigmoid"), "only to fusion='mul'"),
    (dict(pooling="max"), "unknown GC pooling"),
    (dict(reduction=-1), "reduction"), (dict(min_channels=0), "min_channels"), (dict(act="nope"), "unknown activation"),
])
def test_invalid_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GlobalContext(32, **kwargs)
