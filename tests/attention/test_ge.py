"""Gather-Excite: the three variants against the authors' Caffe layouts, the paper's operators, options."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from attnlab.attention import GatherExcite

# The GE blocks of the authors' ResNet-50 models (hujie-frank/GENet, models/RN50-GEP.prototxt and
# RN50-GEPP.prototxt): per stage, the block's channels, its feature map size (= the global gather's
# depthwise kernel: 56, 28, 14, 7) and the number of blocks.
RN50_STAGES = [(256, 56, 3), (512, 28, 4), (1024, 14, 6), (2048, 7, 3)]


def _params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_parameter_free_variant_has_no_parameters():
    assert _params(GatherExcite(256)) == 0
    assert _params(GatherExcite(256, extent=8)) == 0


@pytest.mark.parametrize("c, e", [(64, 2), (64, 4), (256, 8)])
def test_parametric_local_extent_counts(c, e):
    """log2(e) depthwise 3x3 convs without bias, each with BN: 11*C*log2(e)."""
    m = GatherExcite(c, extent=e, variant="theta")
    assert _params(m) == 11 * c * (e.bit_length() - 1)
    se = 2 * c * (c // 16) + c // 16 + c
    assert _params(GatherExcite(c, extent=e, variant="theta+")) == 11 * c * (e.bit_length() - 1) + se


def test_parametric_global_counts_match_the_authors_resnet50():
    """GE-θ: a depthwise conv as large as the map, without bias, and BN: C*H*W + 2C per block (RN50-GEP);
    GE-θ+ adds SE's excite MLP with biases, C -> C/16 -> C (RN50-GEPP's 1x1_down/1x1_up)."""
    theta = sum(b * _params(GatherExcite(c, variant="theta", feat_size=s)) for c, s, b in RN50_STAGES)
    plus = sum(b * _params(GatherExcite(c, variant="theta+", feat_size=s)) for c, s, b in RN50_STAGES)
    assert theta == sum(b * (c * s * s + 2 * c) for c, s, b in RN50_STAGES) == 5_549_568
    assert plus - theta == 2_530_992  # exactly what SE adds to ResNet-50 (SE-ResNet-50: 28,088,024 parameters)
    m = GatherExcite(256, variant="theta+", feat_size=56)
    assert m.gather.conv1.weight.shape == (256, 1, 56, 56) and m.mlp.fc1.weight.shape == (16, 256, 1, 1)


def test_global_parameter_free_is_global_average_gating(make_input):
    """GE-θ⁻ at the global extent (RN50-GEPF): out = x * sigmoid(avgpool(x)), a parameter-free channel gate."""
    m = GatherExcite(32)
    x = make_input(2, 32, 7, 5, dtype=torch.float64)
    torch.testing.assert_close(m(x), x * x.mean((2, 3), keepdim=True).sigmoid(), rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(m.channel_scale(x), x.mean((2, 3)).sigmoid(), rtol=1e-14, atol=1e-15)


def _windowed_mean(x: torch.Tensor, e: int) -> torch.Tensor:
    """The gather of GE-θ⁻ (E e) written out: mean of the valid positions of each (2e-1)^2 window at stride e."""
    n, c, h, w = x.shape
    rows, cols = -(-h // e), -(-w // e)
    out = x.new_empty(n, c, rows, cols)
    for i in range(rows):
        for j in range(cols):
            r0, c0 = max(0, i * e - (e - 1)), max(0, j * e - (e - 1))
            out[:, :, i, j] = x[:, :, r0:i * e + e, c0:j * e + e].mean((2, 3))
    return out


@pytest.mark.parametrize("e, shape", [(2, (2, 8, 8, 8)), (2, (1, 8, 7, 5)), (4, (2, 8, 13, 9)), (8, (1, 8, 16, 16))])
def test_local_parameter_free_gather_and_excite(make_input, e, shape):
    """GE-θ⁻ (E e): a (2e-1)x(2e-1) average at stride e (the README's "15x15, stride 8" for e = 8) on a
    ceil(H/e) x ceil(W/e) grid, brought back by nearest-neighbour interpolation, then the sigmoid."""
    m = GatherExcite(shape[1], extent=e)
    x = make_input(*shape, dtype=torch.float64)
    gathered = m.gathered(x)
    torch.testing.assert_close(gathered, _windowed_mean(x, e), rtol=1e-12, atol=1e-14)
    gate = gathered.sigmoid().repeat_interleave(e, 2).repeat_interleave(e, 3)[:, :, :shape[2], :shape[3]]
    torch.testing.assert_close(m(x), x * gate, rtol=1e-14, atol=1e-15)
    assert m.channel_scale(x) is None  # a spatially varying gate is not a channel scale


@pytest.mark.parametrize("h, w", [(16, 12), (15, 10)])
def test_excite_is_constant_on_each_extent_block(make_input, h, w):
    """Nearest-neighbour excite: position (i, j) takes the cell (i // e, j // e), whose window covers it."""
    m = GatherExcite(8, extent=4)
    x = make_input(1, 8, h, w, dtype=torch.float64)
    gate = F.pad(m(x) / x, (0, 12 - w, 0, 16 - h), value=0.5)[..., :16, :12]
    blocks = gate.unflatten(2, (4, 4)).unflatten(4, (3, 4))  # (N, C, 4, 4, 3, 4): (row block, row, col block, col)
    first = blocks[:, :, :, :1, :, :1].expand_as(blocks)
    valid = torch.ones(16, 12, dtype=torch.bool)
    valid[h:] = valid[:, w:] = False
    valid = valid.unflatten(0, (4, 4)).unflatten(2, (3, 4)).expand_as(blocks)
    torch.testing.assert_close(blocks[valid], first[valid], rtol=1e-10, atol=1e-12)


def _reference(m: GatherExcite, x: torch.Tensor) -> torch.Tensor:
    """The authors' GE-θ / GE-θ+ written out with the module's stock layers (Caffe layer order)."""
    t = x
    for layer in m.gather:  # conv, BN, ReLU between (and, for θ+, after the last BN: RN50-GEPP's gather/relu)
        t = layer(t)
    if m.variant == "theta+":
        t = m.mlp.fc2(F.relu(m.mlp.fc1(t)))  # excite/1x1_down, ReLU, excite/1x1_up
    if m.extent:  # the nearest upsampling by the extent of the README's E8 figures, cropped to the map
        e = m.extent
        t = t.repeat_interleave(e, 2).repeat_interleave(e, 3)[:, :, :x.shape[2], :x.shape[3]]
    return x * t.sigmoid()


@pytest.mark.parametrize("kwargs, shape", [
    (dict(variant="theta", feat_size=(7, 5)), (3, 16, 7, 5)),
    (dict(variant="theta+", feat_size=6), (3, 16, 6, 6)),
    (dict(variant="theta", extent=4), (2, 16, 9, 8)),
    (dict(variant="theta+", extent=2), (2, 16, 8, 7)),
], ids=["theta-global", "theta+-global", "theta-e4", "theta+-e2"])
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_parametric_variants_match_the_written_out_forward(make_attention, make_input, kwargs, shape, train):
    m = make_attention("ge", 16, dtype=torch.float64, **kwargs).train(train)
    x = make_input(*shape, dtype=torch.float64)
    torch.testing.assert_close(m(x), _reference(copy.deepcopy(m), x), rtol=1e-10, atol=1e-12)


def test_relu_before_the_excite_mlp_only_for_theta_plus():
    """RN50-GEPP has conv -> BN -> ReLU before the MLP; RN50-GEP has conv -> BN -> sigmoid (timm: no ReLU in θ+)."""
    assert [n for n, _ in GatherExcite(8, variant="theta", feat_size=4).gather.named_children()] == ["conv1", "norm1"]
    assert [n for n, _ in GatherExcite(8, variant="theta+", feat_size=4).gather.named_children()] == [
        "conv1", "norm1", "act1"]
    assert [n for n, _ in GatherExcite(8, variant="theta", extent=4).gather.named_children()] == [
        "conv1", "norm1", "act1", "conv2", "norm2"]


def test_global_parametric_gate_is_a_channel_scale(make_attention, make_input):
    m = make_attention("ge", 16, variant="theta+", feat_size=5).eval()
    x = make_input(2, 16, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(m(x), x * m.channel_scale(x)[:, :, None, None])


def test_global_parametric_refuses_another_map_size(make_input):
    m = GatherExcite(16, variant="theta", feat_size=(7, 5))
    with pytest.raises(ValueError, match=r"built for 7x5 maps .* input is 8x8"):
        m(make_input(2, 16, 8, 8))


@pytest.mark.parametrize("base, change", [
    ({}, dict(extent=2)), (dict(extent=2), dict(extent=4)), (dict(extent=2), dict(variant="theta")),
    (dict(variant="theta", extent=2), dict(variant="theta+")), (dict(variant="theta+", extent=2), dict(reduction=4)),
    (dict(variant="theta+", extent=2), dict(act="gelu")), (dict(variant="theta+", extent=2), dict(min_channels=8)),
    ({}, dict(gate="hard_sigmoid")), (dict(variant="theta", extent=4), dict(act="tanh")),
], ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "default")
def test_every_option_changes_the_output(make_attention, make_input, base, change):
    x = make_input(2, 32, 8, 8)
    with torch.no_grad():
        ref = make_attention("ge", 32, **base).eval()(x)
        out = make_attention("ge", 32, **{**base, **change}).eval()(x)
    assert not torch.allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(variant="theta*"), "unknown GE variant"),
    (dict(extent=1), "extent must be 0"), (dict(extent=-2), "extent must be 0"), (dict(extent=2.0), "extent"),
    (dict(variant="theta", extent=6), "power of two"),
    (dict(variant="theta"), "pass feat_size"), (dict(variant="theta+"), "pass feat_size"),
    (dict(feat_size=8), "feat_size has no use"), (dict(variant="theta", extent=2, feat_size=8), "feat_size has no"),
    (dict(reduction=4), "reduction has no use"), (dict(variant="theta", extent=2, reduction=4), "reduction has no"),
    (dict(act="relu"), "act has no use"),
    (dict(variant="theta", feat_size=(8, 0)), "feat_size must be"),
])
def test_invalid_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GatherExcite(32, **kwargs)
