"""SimAM: the paper's formula, the 1x1 guard, no parameters, options."""

from __future__ import annotations

import math

import pytest
import torch

from attnlab.attention import SimAM


def formula(x: torch.Tensor, e_lambda: float = 1e-4) -> torch.Tensor:
    """The official code, literally (n = H*W - 1)."""
    _, _, h, w = x.size()
    n = w * h - 1
    x_minus_mu_square = (x - x.mean(dim=[2, 3], keepdim=True)).pow(2)
    y = x_minus_mu_square / (4 * (x_minus_mu_square.sum(dim=[2, 3], keepdim=True) / n + e_lambda)) + 0.5
    return x * torch.sigmoid(y)


def test_no_parameters():
    assert sum(p.numel() for p in SimAM(64).parameters()) == 0
    assert SimAM.param_formula == "0"


@pytest.mark.parametrize("e_lambda", [1e-4, 0.5])
@pytest.mark.parametrize("shape", [(2, 8, 6, 6), (1, 4, 7, 5), (3, 2, 1, 3)], ids=["6x6", "7x5", "1x3"])
@pytest.mark.parametrize("grad", [False, True], ids=["nograd", "grad"])
def test_equals_the_formula(make_input, e_lambda, shape, grad):
    x = make_input(*shape, dtype=torch.float64) * 3 + 1
    with torch.set_grad_enabled(grad):
        out = SimAM(shape[1], e_lambda=e_lambda)(x.clone().requires_grad_(grad))
    torch.testing.assert_close(out, formula(x, e_lambda), rtol=1e-12, atol=1e-12)
    xcl = x.contiguous(memory_format=torch.channels_last)
    out_cl = SimAM(shape[1], e_lambda=e_lambda)(xcl)
    torch.testing.assert_close(out_cl, formula(x, e_lambda), rtol=1e-12, atol=1e-12)


def test_one_by_one_map_has_no_nan(make_input):
    x = make_input(2, 8, 1, 1, dtype=torch.float64).requires_grad_()
    out = SimAM(8)(x)
    assert torch.isnan(formula(x.detach())).all()  # the literal formula divides 0 by 0
    torch.testing.assert_close(out, x * torch.sigmoid(torch.tensor(0.5, dtype=torch.float64)))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_recorded_maps(make_input):
    m = SimAM(8)
    x = make_input(2, 8, 6, 5)
    got = []
    m.attention_sink = lambda mod, maps: got.append(maps)
    with torch.no_grad():
        m(x)
    weights = formula(x) / x
    torch.testing.assert_close(got[0].spatial, weights.mean(1, keepdim=True))
    torch.testing.assert_close(got[0].channel, weights.mean((2, 3)))


@pytest.mark.parametrize("kwargs", [dict(e_lambda=1.0), dict(gate="hard_sigmoid")],
                         ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_every_option_changes_the_output(make_input, kwargs):
    x = make_input(2, 8, 6, 6)
    with torch.no_grad():
        assert not torch.allclose(SimAM(8, **kwargs)(x), SimAM(8)(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("e_lambda", [0, -1e-4, math.nan, math.inf, "1e-4", True])
def test_invalid_lambda_raises(e_lambda):
    with pytest.raises(ValueError, match="e_lambda"):
        SimAM(8, e_lambda=e_lambda)


def test_channels_are_checked(make_input):
    with pytest.raises(ValueError, match="8"):
        SimAM(8)(make_input(2, 4, 3, 3))
