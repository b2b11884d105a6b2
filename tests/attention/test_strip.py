"""Strip pooling: parameter counts, the authors' SPBlock and timm's StripAttn as references, the cross-shaped
receptive field, options."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from attnlab.attention import StripPooling


@pytest.mark.parametrize("c, k", [(32, 3), (64, 3), (64, 5)])
def test_parameter_counts(c, k):
    """SPM: two C -> C strip convs (k taps, no bias) with BN, f = a 1x1 conv with bias: 2kC^2 + C^2 + 5C
    (7C^2 + 5C at the paper's k = 3); timm's variant: two depthwise strip convs, 2kC."""
    assert sum(p.numel() for p in StripPooling(c, kernel_size=k).parameters()) == 2 * k * c * c + c * c + 5 * c
    assert sum(p.numel() for p in StripPooling(c, kernel_size=k, variant="timm").parameters()) == 2 * k * c
    if k == 3:
        assert sum(p.numel() for p in StripPooling(c).parameters()) == 7 * c * c + 5 * c


def test_state_dict_keys_are_the_authors():
    assert {k.split(".")[0] for k in StripPooling(8).state_dict()} == {"conv1", "bn1", "conv2", "bn2", "conv3"}
    assert set(StripPooling(8, variant="timm").state_dict()) == {"conv_h.weight", "conv_w.weight"}


def spblock(m: StripPooling, x: torch.Tensor) -> torch.Tensor:
    """The authors' SPBlock forward (Andrew-Qibin/SPNet), with the module's layers."""
    _, _, h, w = x.shape
    x1 = m.bn1(m.conv1(F.adaptive_avg_pool2d(x, (None, 1)))).expand(-1, -1, h, w)
    x2 = m.bn2(m.conv2(F.adaptive_avg_pool2d(x, (1, None)))).expand(-1, -1, h, w)
    return x * m.conv3(F.relu(x1 + x2)).sigmoid()


def strip_attn(m: StripPooling, x: torch.Tensor) -> torch.Tensor:
    """timm's StripAttn forward, with the module's layers."""
    return x * (m.conv_h(x.mean(3, keepdim=True)) + m.conv_w(x.mean(2, keepdim=True))).sigmoid()


@pytest.mark.parametrize("variant, ref", [("spm", spblock), ("timm", strip_attn)], ids=["spm", "timm"])
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("shape", [(2, 16, 8, 8), (3, 16, 7, 5), (1, 16, 1, 1)], ids=["8x8", "7x5", "1x1"])
def test_matches_the_reference_forward(make_attention, make_input, variant, ref, train, shape):
    if variant == "spm" and train and shape[0] * shape[2] == 1:
        pytest.skip("the authors' BatchNorm refuses one value per channel in training; the module uses running stats")
    m = make_attention("strip", 16, dtype=torch.float64, variant=variant).train(train)
    ref_m = copy.deepcopy(m)
    x = make_input(*shape, dtype=torch.float64)
    torch.testing.assert_close(m(x), ref(ref_m, x), rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        xcl = x.contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(m.eval()(xcl), ref(ref_m.eval(), x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("variant", ["spm", "timm"])
def test_a_position_sees_its_rows_and_columns_only(make_attention, make_input, variant):
    """Changing x at (a, b) moves the row mean a and the column mean b, which the k = 3 strip convs spread
    to rows a-1 .. a+1 and columns b-1 .. b+1: the output changes in that cross and nowhere else."""
    m = make_attention("strip", 8, dtype=torch.float64, variant=variant).eval()
    x = make_input(1, 8, 9, 11, dtype=torch.float64)
    a, b = 4, 6
    moved = x.clone()
    moved[:, :, a, b] += 1.0
    with torch.no_grad():
        changed = (m(moved) - m(x)).abs().amax(1)[0] > 1e-12  # (H, W)
    cross = torch.zeros(9, 11, dtype=torch.bool)
    cross[a - 1:a + 2] = True
    cross[:, b - 1:b + 2] = True
    assert torch.equal(changed, cross)


@pytest.mark.parametrize("base, change", [
    ({}, dict(kernel_size=5)), ({}, dict(variant="timm")), ({}, dict(act="gelu")), ({}, dict(gate="hard_sigmoid")),
    (dict(variant="timm"), dict(kernel_size=5)), (dict(variant="timm"), dict(gate="hard_sigmoid")),
], ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "default")
def test_every_option_changes_the_output(make_attention, make_input, base, change):
    x = make_input(2, 16, 6, 6)
    with torch.no_grad():
        ref = make_attention("strip", 16, **base).eval()(x)
        out = make_attention("strip", 16, **{**base, **change}).eval()(x)
    assert not torch.allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(variant="spnet"), "unknown strip-pooling variant"), (dict(kernel_size=2), "kernel_size"),
    (dict(variant="timm", act="relu"), "only to variant='spm'"), (dict(gate="nope"), "unknown activation"),
])
def test_invalid_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StripPooling(16, **kwargs)
