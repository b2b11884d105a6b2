"""Selective kernel: SKNet-50's parameter count from the paper's table, the written-out forward, the
selection's properties, options."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from attnlab.attention import SelectiveKernel

# ResNeXt-50 (32x4d): the width of each stage's grouped 3x3 conv and its number of blocks; torchvision's
# resnext50_32x4d has 25,028,904 parameters.
RESNEXT50 = [(128, 3), (256, 4), (512, 6), (1024, 3)]
RESNEXT50_PARAMS = 25_028_904


def _params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def sk_params(c: int, m: int = 2, g: int = 32, r: int = 16, L: int = 32) -> int:
    d = max(c // r, L)
    return m * (9 * c * c // g + 2 * c) + c * d + 2 * d + m * c * d


@pytest.mark.parametrize("c", [64, 128, 256, 1024])
def test_parameter_count(c):
    assert _params(SelectiveKernel(c)) == sk_params(c)
    assert _params(SelectiveKernel(c, kernel_sizes=(3, 5, 7))) == sk_params(c, m=3)


def test_sknet50_has_the_papers_27_5m_parameters():
    """SKNet-50 is ResNeXt-50 with each 3x3 grouped conv (and its BN) replaced by an SK unit with M = 2,
    G = 32, r = 16, L = 32; the paper's Table 2 gives 27.5M parameters (ResNeXt-50: 25.0M)."""
    added = sum(b * (_params(SelectiveKernel(c)) - (9 * c * c // 32 + 2 * c)) for c, b in RESNEXT50)
    assert round((RESNEXT50_PARAMS + added) / 1e6, 1) == 27.5


def reference(m: SelectiveKernel, x: torch.Tensor) -> torch.Tensor:
    """Split, fuse, select as the paper's Eq. 1-6, with the module's stock layers."""
    u = [F.relu(p.bn(p.conv(x))) for p in m.paths]  # U_m
    s = sum(u).mean((2, 3), keepdim=True)  # Eq. 2
    z = F.relu(m.attn.bn(m.attn.fc_reduce(s)))  # Eq. 3
    logits = m.attn.fc_select(z).view(x.shape[0], len(u), -1)  # rows A_c, B_c, ... (N, M, C)
    a = logits.softmax(1)  # Eq. 5
    return sum(a[:, i, :, None, None] * u[i] for i in range(len(u)))  # Eq. 6


@pytest.mark.parametrize("kwargs", [{}, dict(kernel_sizes=(3, 5, 7)), dict(dilate=False, groups=4)],
                         ids=["default", "3-branches", "undilated"])
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_matches_the_written_out_forward(make_attention, make_input, kwargs, train):
    m = make_attention("sk", 32, dtype=torch.float64, **kwargs).train(train)
    x = make_input(3, 32, 7, 5, dtype=torch.float64)
    torch.testing.assert_close(m(x), reference(copy.deepcopy(m), x), rtol=1e-10, atol=1e-12)


def test_one_branch_reduces_to_its_conv_bn_relu(make_attention, make_input):
    """With M = 1 the softmax over one branch is 1: the unit is its branch's conv-BN-ReLU."""
    m = make_attention("sk", 32, dtype=torch.float64, kernel_sizes=(3,)).eval()
    x = make_input(2, 32, 6, 5, dtype=torch.float64)
    path = m.paths[0]
    torch.testing.assert_close(m(x), F.relu(path.bn(path.conv(x))), rtol=0, atol=0)


def test_output_is_a_convex_combination_of_the_branches(make_attention, make_input):
    """The branch weights sum to 1 per channel, so identical branches give that branch whatever the selection."""
    m = make_attention("sk", 32, dtype=torch.float64, kernel_sizes=(5, 5)).eval()
    x = make_input(2, 32, 6, 5, dtype=torch.float64)
    got = []
    m.attention_sink = lambda mod, maps: got.append(maps)
    with torch.no_grad():
        m(x)
    select = got[0].extra["select"]  # (N, M, C)
    torch.testing.assert_close(select.sum(1), torch.ones(2, 32, dtype=torch.float64))
    torch.testing.assert_close(got[0].channel, select[:, 0])
    m.paths[1].load_state_dict(m.paths[0].state_dict())
    path = m.paths[0]
    with torch.no_grad():
        torch.testing.assert_close(m(x), F.relu(path.bn(path.conv(x))), rtol=1e-12, atol=1e-14)


def test_dilation_stands_in_for_large_kernels():
    """The paper's 5x5 branch is a 3x3 conv with dilation 2 (a 7x7 one with dilation 3)."""
    m = SelectiveKernel(32, kernel_sizes=(3, 5, 7))
    assert [(p.conv.kernel_size, p.conv.dilation) for p in m.paths] == [((3, 3), (1, 1)), ((3, 3), (2, 2)),
                                                                        ((3, 3), (3, 3))]
    m = SelectiveKernel(32, dilate=False)
    assert [(p.conv.kernel_size, p.conv.dilation) for p in m.paths] == [((3, 3), (1, 1)), ((5, 5), (1, 1))]


@pytest.mark.parametrize("c, groups", [(64, 32), (48, 24), (16, 16), (36, 18)])
def test_default_groups_are_the_papers_32_where_c_allows(c, groups):
    assert SelectiveKernel(c).groups == groups == SelectiveKernel(c).paths[0].conv.groups


@pytest.mark.parametrize("kwargs", [dict(kernel_sizes=(3, 7)), dict(dilate=False), dict(groups=8),
                                    dict(reduction=0.5), dict(min_channels=8), dict(act="gelu")],
                         ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_every_option_changes_the_output(make_attention, make_input, kwargs):
    x = make_input(2, 32, 6, 6)
    with torch.no_grad():
        ref = make_attention("sk", 32).eval()(x)
        out = make_attention("sk", 32, **kwargs).eval()(x)
    assert not torch.allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(kernel_sizes=()), "kernel_sizes"), (dict(kernel_sizes=(3, 4)), "kernel_sizes"),
    (dict(groups=5), "SK groups must"), (dict(groups=0), "SK groups must"), (dict(reduction=0), "reduction"),
    (dict(act="nope"), "unknown activation"),
])
def test_invalid_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SelectiveKernel(32, **kwargs)
