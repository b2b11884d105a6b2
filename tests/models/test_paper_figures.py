"""Parameter counts and FLOPs of ResNet-50 and its attention variants against the papers' tables.

All at 224x224 input and 1000 classes. What the papers' numbers count, worked out here once:

* **"GFLOPs" are multiply-accumulates (MACs)** of the convolutions and fully connected layers (pooling,
  BN, activations and the gating products are not counted). ``torch.utils.flop_counter`` counts a MAC as
  2 FLOPs, so the figure to compare is ``count_flops / 2``.
* **The papers' ResNet-50 is the original v1 bottleneck**, which strides in its first 1x1 conv; torchvision
  (and our default) strides in the 3x3 conv ("v1.5"): same parameters, but in the first block of stages
  2-4 the 1x1 conv runs at the input resolution, 3 x 25.69M extra MACs = 4.089 GMACs instead of 3.858.
  The FLOP tests therefore build ``stride_in_1x1=True``, which reproduces the papers' 3.858 exactly;
  ``test_resnet50_v15_flops_match_torchvision`` checks the v1.5 figure against torchvision's 4.09.
* **CBAM paper, Table 4** (Woo et al. 2018; ImageNet-1K, ResNet-50 rows): ResNet-50 25.56M / 3.858 GFLOPs,
  + SE 28.09M / 3.860, + CBAM 28.09M / 3.864. SE (r = 16, with biases, as the SE paper's FC layers):
  28,088,024 parameters. CBAM's 28.09M is the official code's module (MLP biases and a BN after the
  spatial conv, ``variant="official"``): 28,089,624; our default seed-compatible CBAM has neither
  (28,073,544 = 28.07M, 0.06% below the table, inside the 1% asked).
* **BAM paper** (Park et al. 2018; ImageNet-1K classification table): ResNet-50 25.56M / 3.86 GFLOPs,
  ResNet-50 + BAM 25.92M / 3.94 GFLOPs. We get 25,915,099 parameters (BAM after stages 1-3, r = 16,
  dilation 4, two dilated convs) and 3.940 GMACs (v1).
* **ECA paper, Table 2** (Wang et al. 2020; ImageNet, ResNet-50 backbone): ResNet-50 24.37M / 3.86 GFLOPs,
  SENet 26.77M / 3.87, CBAM 26.77M / 3.87, ECA-Net 24.37M / 3.86. These parameter counts are in units of
  2^20, not 10^6: 25,557,032 / 2^20 = 24.37 (ResNet-50), 25,557,118 / 2^20 = 24.37 (ECA adds 86
  parameters: k = 5, 5, 5, 7 in the four stages), and 26.77 is SE and CBAM *without* MLP biases
  (28,071,976 and 28,073,544 / 2^20 = 26.77; with SE's biases, 28,088,024 / 2^20 = 26.79, 0.06% off).
  The tests compare ``params / 2**20`` with this table, and note the bias difference for SE.
* **SE paper** (Hu et al. 2018, Sec. 4 / Table 2): SE-ResNet-50 3.87 GFLOPs vs 3.86 for ResNet-50, "~2.5
  million additional parameters" (we add 2,530,992), total ~28.1M.
"""

from __future__ import annotations

import pytest
import torch

from attnlab.benchtools import count_flops
from attnlab.models import create_model

M = 1e6
MiB = 2**20


def _build(attention=None, **kwargs):
    with torch.device("meta"):  # shapes only: no memory, no initialisation, no compute
        return create_model("resnet50", attention=attention, **kwargs)


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _gmacs(model) -> float:
    x = torch.empty(1, 3, 224, 224, device="meta")
    model.eval()
    with torch.no_grad():
        return count_flops(lambda: model(x)) / 2e9


def _close(value: float, paper: float, tol: float = 0.01) -> bool:
    return abs(value - paper) <= tol * paper


# (attention, attention_kwargs, published parameters in millions, published GFLOPs, source)
CBAM_TABLE_4 = [
    (None, {}, 25.56, 3.858, "CBAM Table 4: ResNet50"),
    ("se", {}, 28.09, 3.860, "CBAM Table 4: ResNet50 + SE"),
    ("cbam", {"variant": "official"}, 28.09, 3.864, "CBAM Table 4: ResNet50 + CBAM (official module)"),
    ("cbam", {}, 28.09, 3.864, "CBAM Table 4: ResNet50 + CBAM (seed module, no MLP bias/spatial BN)"),
]
BAM_TABLE = [
    (None, {}, 25.56, 3.86, "BAM ImageNet table: ResNet50"),
    ("bam", {}, 25.92, 3.94, "BAM ImageNet table: ResNet50 + BAM"),
]
ECA_TABLE_2 = [  # parameters in units of 2**20 (see the module docstring)
    (None, {}, 24.37, 3.86, "ECA Table 2: ResNet-50"),
    ("se", {"bias": False}, 26.77, 3.87, "ECA Table 2: SENet (FC layers without biases)"),
    ("se", {}, 26.77, 3.87, "ECA Table 2: SENet (our SE with biases: 26.79)"),
    ("cbam", {}, 26.77, 3.87, "ECA Table 2: CBAM"),
    ("eca", {}, 24.37, 3.86, "ECA Table 2: ECA-Net"),
]


@pytest.mark.parametrize("attention, kwargs, params, gflops, source", CBAM_TABLE_4 + BAM_TABLE,
                         ids=[r[-1] for r in CBAM_TABLE_4 + BAM_TABLE])
def test_params_and_flops_match_cbam_and_bam_tables(attention, kwargs, params, gflops, source):
    n = _params(_build(attention, attention_kwargs=kwargs))
    macs = _gmacs(_build(attention, attention_kwargs=kwargs, stride_in_1x1=True))
    assert _close(n / M, params), f"{source}: {n / M:.3f}M parameters vs {params}M"
    assert _close(macs, gflops), f"{source}: {macs:.4f} GMACs vs {gflops}"


@pytest.mark.parametrize("attention, kwargs, params, gflops, source", ECA_TABLE_2, ids=[r[-1] for r in ECA_TABLE_2])
def test_params_and_flops_match_eca_table(attention, kwargs, params, gflops, source):
    n = _params(_build(attention, attention_kwargs=kwargs))
    macs = _gmacs(_build(attention, attention_kwargs=kwargs, stride_in_1x1=True))
    assert _close(n / MiB, params), f"{source}: {n / MiB:.3f} x 2^20 parameters vs {params}"
    assert _close(macs, gflops), f"{source}: {macs:.4f} GMACs vs {gflops}"


def test_exact_counts_behind_the_tables():
    """The exact figures the docstring derives the tables from (a change here is a change of architecture)."""
    assert _params(_build()) == 25_557_032
    assert _params(_build("se")) == 25_557_032 + 2_530_992
    assert _params(_build("se", attention_kwargs={"bias": False})) == 28_071_976
    assert _params(_build("cbam")) == 28_073_544
    assert _params(_build("cbam", attention_kwargs={"variant": "official"})) == 28_089_624
    assert _params(_build("bam")) == 25_915_099
    assert _params(_build("eca")) == 25_557_032 + 86
    # to the table's rounding, where the definition matches exactly
    assert round(_params(_build("cbam", attention_kwargs={"variant": "official"})) / M, 2) == 28.09
    assert round(_params(_build("se")) / M, 2) == 28.09
    assert round(_params(_build("bam")) / M, 2) == 25.92
    assert round(_gmacs(_build(stride_in_1x1=True)), 3) == 3.858
    assert round(_gmacs(_build("se", stride_in_1x1=True)), 3) == 3.860
    assert round(_gmacs(_build("cbam", stride_in_1x1=True)), 3) == 3.864
    assert round(_gmacs(_build("bam", stride_in_1x1=True)), 2) == 3.94


def test_resnet50_v15_flops_match_torchvision():
    """torchvision documents ResNet-50 (v1.5, our default) as 25,557,032 parameters and 4.09 GFLOPS (MACs)."""
    assert round(_gmacs(_build()), 2) == 4.09
    # the v1 / v1.5 difference is exactly the three strided 1x1 convs at 4x the positions
    extra = 3 * (256 * 128 * 28 * 28 + 512 * 256 * 14 * 14 + 1024 * 512 * 7 * 7) / 1e9
    assert _gmacs(_build()) - _gmacs(_build(stride_in_1x1=True)) == pytest.approx(extra, rel=1e-9)


@pytest.mark.parametrize("name, paper", [("resnet20", 0.27), ("resnet32", 0.46), ("resnet44", 0.66),
                                         ("resnet56", 0.85), ("resnet110", 1.7)])
def test_cifar_resnets_match_he_et_al_table_6(name, paper):
    """He et al. 2016, Table 6 (CIFAR-10), with the paper's option-A shortcuts (``shortcut="A"``).

    With the default option B (1x1 conv + BN projections) each network has 2,752 more parameters,
    which moves ResNet-32 from 0.464M to 0.467M (0.47 at the table's rounding).
    """
    with torch.device("meta"):
        a = _params(create_model(name, shortcut="A"))
        b = _params(create_model(name))
    digits = 1 if paper >= 1 else 2
    assert round(a / M, digits) == paper
    assert b - a == 2_752
