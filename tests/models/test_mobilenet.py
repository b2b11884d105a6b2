"""MobileNetV2: torchvision's layout key for key, attention where the ECA paper puts it, the paper's counts.

torchvision does not import here, so its layout is written out from ``torchvision/models/mobilenetv2.py``:
``features.0`` is ``Conv2dNormActivation(3, 32, stride=2)`` (``.0`` conv, ``.1`` BN, ``.2`` ReLU6); each
``InvertedResidual`` holds ``conv``: a 1x1 expansion ``Conv2dNormActivation`` (absent when t = 1), the
3x3 depthwise ``Conv2dNormActivation``, the 1x1 linear conv and its BN; ``features.18`` is the 1x1
``Conv2dNormActivation`` to 1280 channels, and ``classifier`` is ``(Dropout, Linear)``. Channels are
``_make_divisible(c * width_mult, 8)``, the last one ``_make_divisible(1280 * max(1, width_mult), 8)``.

ECA paper (Wang et al., CVPR 2020), Table 3, MobileNetV2 rows: MobileNetV2 3.34M, SENet 3.40M, ECA-Net
3.34M (72.56% top-1). Its parameter counts are in units of 2^20 (the official ``paras_flops.py`` divides by
``1024 ** 2``, as for its ResNet-50 "24.37M"): 3,504,872 / 2^20 = 3.34 for torchvision's MobileNetV2 and
3,504,903 / 2^20 = 3.34 with ECA (k = 1 in 10 blocks and k = 3 in 7: 31 parameters). The paper does not
say which SE reduction its SENet row used; SE with r = 8 in the same place gives 3,563,492 / 2^20 = 3.40
(r = 16: 3.37), noted here, not claimed.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import attnlab
from attnlab.attention import AttentionModule, EfficientChannelAttention
from attnlab.benchtools import count_flops
from attnlab.cam import GradCAM
from attnlab.models import attach, create_model, detach, find_blocks, load_backbone
from attnlab.models.mobilenet import make_divisible

MiB = 2**20
SETTING = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def _bn(prefix: str, c: int) -> list[tuple[str, tuple[int, ...]]]:
    return [(f"{prefix}.weight", (c,)), (f"{prefix}.bias", (c,)), (f"{prefix}.running_mean", (c,)),
            (f"{prefix}.running_var", (c,)), (f"{prefix}.num_batches_tracked", ())]


def _tv_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def torchvision_layout(width_mult: float = 1.0, num_classes: int = 1000) -> list[tuple[str, tuple[int, ...]]]:
    """The ordered (key, shape) list of torchvision's ``mobilenet_v2(width_mult=...).state_dict()``."""
    cin = _tv_divisible(32 * width_mult)
    last = _tv_divisible(1280 * max(1.0, width_mult))
    keys = [("features.0.0.weight", (cin, 3, 3, 3)), *_bn("features.0.1", cin)]
    idx = 1
    for t, c, n, _s in SETTING:
        cout = _tv_divisible(c * width_mult)
        for _ in range(n):
            p, hidden, j = f"features.{idx}.conv", int(round(cin * t)), 0
            if t != 1:
                keys += [(f"{p}.0.0.weight", (hidden, cin, 1, 1)), *_bn(f"{p}.0.1", hidden)]
                j = 1
            keys += [(f"{p}.{j}.0.weight", (hidden, 1, 3, 3)), *_bn(f"{p}.{j}.1", hidden),
                     (f"{p}.{j + 1}.weight", (cout, hidden, 1, 1)), *_bn(f"{p}.{j + 2}", cout)]
            cin, idx = cout, idx + 1
    keys += [(f"features.{idx}.0.weight", (last, cin, 1, 1)), *_bn(f"features.{idx}.1", last)]
    return keys + [("classifier.1.weight", (num_classes, last)), ("classifier.1.bias", (num_classes,))]


def _layout(model: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def _meta(**kwargs) -> nn.Module:
    with torch.device("meta"):
        return create_model("mobilenet_v2", **kwargs)


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- layout ---------------------------------------------------------------------------------------------------


def test_vanilla_state_dict_is_torchvision_key_for_key():
    layout = _layout(_meta())
    assert layout == torchvision_layout()
    assert len(layout) == 314
    # spot checks written out by hand from torchvision's printed state_dict
    keys = [k for k, _ in layout]
    assert keys[:7] == ["features.0.0.weight", "features.0.1.weight", "features.0.1.bias", "features.0.1.running_mean",
                        "features.0.1.running_var", "features.0.1.num_batches_tracked", "features.1.conv.0.0.weight"]
    assert dict(layout)["features.1.conv.1.weight"] == (16, 32, 1, 1)  # t = 1: no expansion conv
    assert dict(layout)["features.2.conv.0.0.weight"] == (96, 16, 1, 1)
    assert dict(layout)["features.2.conv.1.0.weight"] == (96, 1, 3, 3)
    assert dict(layout)["features.2.conv.3.running_var"] == (24,)
    assert dict(layout)["features.17.conv.2.weight"] == (320, 960, 1, 1)
    assert dict(layout)["features.18.0.weight"] == (1280, 320, 1, 1)
    assert keys[-2:] == ["classifier.1.weight", "classifier.1.bias"]


@pytest.mark.parametrize("width_mult", [0.5, 0.75, 1.4])
def test_width_multiplier_follows_torchvision(width_mult):
    assert _layout(_meta(width_mult=width_mult, num_classes=10)) == torchvision_layout(width_mult, num_classes=10)


def test_make_divisible_is_torchvisions():
    assert [make_divisible(c * 0.35) for c in (32, 16, 24, 96, 320)] == [16, 8, 8, 32, 112]
    assert make_divisible(1280 * 1.4) == 1792


@pytest.mark.parametrize("attention", ["se", "cbam", "eca", "scse", "coord", "simam"])
def test_attention_adds_keys_in_every_block_and_changes_none(attention):
    layout = _layout(_meta(attention=attention))
    backbone = [(k, s) for k, s in layout if ".attn." not in k]
    assert backbone == torchvision_layout()
    owners = sorted({k.split(".attn.")[0] for k, _ in layout if ".attn." in k}, key=lambda n: int(n.split(".")[1]))
    if attention != "simam":  # parameter-free
        assert owners == [f"features.{i}" for i in range(1, 18)]


def test_in_chans_and_num_classes():
    m = create_model("mobilenet_v2", in_chans=1, num_classes=7, attention="eca").eval()
    assert m.features[0][0].weight.shape == (32, 1, 3, 3)
    with torch.no_grad():
        assert m(torch.randn(2, 1, 32, 32)).shape == (2, 7)
        assert m.forward_features(torch.randn(2, 1, 64, 64)).shape == (2, 1280, 2, 2)
        assert m.forward_head(m.forward_features(torch.randn(2, 1, 64, 64)), pre_logits=True).shape == (2, 1280)


# --- the ECA paper's numbers -----------------------------------------------------------------------------------


def test_parameter_counts_match_torchvision_and_the_eca_paper():
    assert _params(_meta()) == 3_504_872  # torchvision's documented count
    eca = _params(_meta(attention="eca"))
    assert eca == 3_504_872 + 10 * 1 + 7 * 3
    assert round(_params(_meta()) / MiB, 2) == 3.34  # ECA Table 3: MobileNetV2 3.34M
    assert round(eca / MiB, 2) == 3.34  # ECA Table 3: ECA-Net 3.34M (72.56% top-1)
    # SENet row (3.40M): reproduced by r = 8 in the same place (the paper does not give r), not by r = 16
    assert _params(_meta(attention="se", attention_kwargs={"reduction": 8})) == 3_563_492
    assert round(3_563_492 / MiB, 2) == 3.40
    assert round(_params(_meta(attention="se")) / MiB, 2) == 3.37


def test_macs_match_torchvision():
    """torchvision documents mobilenet_v2 as 0.30 GFLOPS (multiply-accumulates) at 224x224."""
    model = _meta().eval()
    x = torch.empty(1, 3, 224, 224, device="meta")
    with torch.no_grad():
        macs = count_flops(lambda: model(x)) / 2
    assert round(macs / 1e9, 2) == 0.30 and int(macs) == 300_774_272


def test_eca_kernel_sizes_are_the_official_codes():
    m = _meta(attention="eca")
    ks = [blk.attn.kernel_size for _, blk in m.blocks()]
    # BangguWu/ECANet eca_mobilenetv2.py: k_size = 1 if c < 96 else 3, c the setting's channels
    assert ks == [1] * 10 + [3] * 7
    assert {blk.attn.kernel_size for _, blk in _meta(attention="eca", attention_kwargs={"kernel_size": 5}).blocks()} \
        == {5}
    adaptive = _meta(attention="eca", attention_kwargs={"kernel_size": None})
    assert [blk.attn.kernel_size for _, blk in adaptive.blocks()][:2] == [3, 3]  # C = 16, 24: the paper's formula


# --- placement and behaviour -------------------------------------------------------------------------------------


def test_attention_sits_after_the_last_bn_before_the_addition():
    torch.manual_seed(0)
    m = create_model("mobilenet_v2", attention="cbam", num_classes=3).eval()
    for blk in (m.features[3], m.features[2]):  # with and without the shortcut
        seen: dict = {}
        blk.conv[-1].register_forward_hook(lambda mod, a, o, seen=seen: seen.__setitem__("bn", o.clone()))
        blk.attn.register_forward_hook(lambda mod, a, o, seen=seen: seen.__setitem__("attn", (a[0].clone(), o.clone())))
        x = torch.randn(2, blk.conv[0][0].in_channels, 8, 8)
        with torch.no_grad():
            out = blk(x)
        torch.testing.assert_close(seen["attn"][0], seen["bn"])
        expected = seen["attn"][1] + x if blk.use_res_connect else seen["attn"][1]
        torch.testing.assert_close(out, expected)
    assert m.features[3].use_res_connect and not m.features[2].use_res_connect


@pytest.mark.parametrize("attention", [None, "se", "eca", "cbam"])
def test_trains_a_step_and_round_trips(attention):
    torch.manual_seed(0)
    m = create_model("mobilenet_v2", attention=attention, num_classes=4, width_mult=0.5)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 3])
    nn.functional.cross_entropy(m(x), y).backward()
    assert all(p.grad is not None for p in m.parameters())
    twin = create_model("mobilenet_v2", attention=attention, num_classes=4, width_mult=0.5)
    twin.load_state_dict(m.state_dict(), strict=True)
    m.eval(), twin.eval()
    with torch.no_grad():
        torch.testing.assert_close(twin(x), m(x), rtol=0, atol=0)


def test_inference_fuses_the_gate_exactly():
    torch.manual_seed(0)
    m = create_model("mobilenet_v2", attention="se", num_classes=4, width_mult=0.5).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        fused = m(x)
    with torch.enable_grad():
        plain = m(x)  # under autograd the block calls the module and adds
    torch.testing.assert_close(fused, plain.detach(), rtol=1e-5, atol=1e-6)


def test_placements_outside_the_blocks_are_refused_clearly():
    with pytest.raises(ValueError, match=r"'bam' declares placement 'stages'.*placement='blocks'.*attach"):
        create_model("mobilenet_v2", attention="bam")
    with pytest.raises(ValueError, match="'non_local' declares placement 'after_blocks'"):
        create_model("mobilenet_v2", attention="non_local")
    forced = _meta(attention="bam", placement="blocks")
    assert all(blk.attn is not None for _, blk in forced.blocks())
    with pytest.raises(ValueError, match="unknown attention"):
        create_model("mobilenet_v2", attention="ecaa")
    with pytest.raises(ValueError, match="placement needs an attention"):
        create_model("mobilenet_v2", placement="blocks")
    with pytest.raises(TypeError):
        create_model("mobilenet_v2", not_an_option=1)


# --- with the rest of the library ----------------------------------------------------------------------------------


def test_attach_fills_the_residual_blocks_slots_and_detach_undoes_it():
    torch.manual_seed(0)
    m = create_model("mobilenet_v2", num_classes=3, width_mult=0.5).eval()
    x = torch.randn(1, 3, 32, 32)
    ref = m(x).detach()
    residual = [f"features.{i}" for i in (3, 5, 6, 8, 9, 10, 12, 13, 15, 16)]
    assert find_blocks(m) == residual  # the blocks with a shortcut
    names = attach(m, "eca", kernel_size=3)
    assert names == [f"{b}.attn" for b in residual]
    assert all(isinstance(m.get_submodule(n), EfficientChannelAttention) for n in names)
    assert not any(mod._forward_hooks for mod in m.modules())  # the block's own slot, no hook
    assert detach(m) == names
    torch.testing.assert_close(m(x), ref, rtol=0, atol=0)


def test_torchvision_checkpoint_loads_with_only_attention_new():
    plain = create_model("mobilenet_v2", num_classes=5, width_mult=0.5)
    model = create_model("mobilenet_v2", num_classes=5, width_mult=0.5, attention="se")
    report = load_backbone(model, plain.state_dict())
    assert report.clean and sorted(report.loaded) == sorted(plain.state_dict())
    assert report.new and all(".attn." in k for k in report.new)


def test_capture_attention_and_default_gradcam_layer():
    torch.manual_seed(0)
    m = create_model("mobilenet_v2", attention="cbam", num_classes=3, width_mult=0.5, in_chans=1).eval()
    x = torch.randn(2, 1, 64, 64)
    maps = attnlab.capture_attention(m, x)
    assert list(maps) == [f"features.{i}.attn" for i in range(1, 18)]
    assert maps["features.1.attn"].spatial.shape == (2, 1, 32, 32)
    assert maps["features.17.attn"].channel.shape[:1] == (2,)
    with GradCAM(m) as cam:
        assert cam.target_names == ["features"]  # the last (N, C, h, w) map: torchvision's features[-1]
        heat = cam(x)
    assert heat.shape == (2, 64, 64) and torch.isfinite(heat).all()
    assert all(isinstance(mod, AttentionModule) for n, mod in m.named_modules() if n.endswith(".attn"))


def test_attnlab_train_runs_mobilenet_v2(tmp_path):
    from attnlab.cli import main
    from attnlab.data.fashion_mnist import fashion_mnist_root

    if not any(fashion_mnist_root().glob("train-images-idx3-ubyte*")):
        pytest.skip("Fashion-MNIST files missing")
    run = tmp_path / "run"
    assert main(["train", "--model", "mobilenet_v2", "--attention", "eca", "--dataset", "fashion-mnist", "--epochs",
                 "1", "--batch-size", "16", "--limit-train", "32", "--limit-test", "16", "--out", str(run),
                 "--no-progress", "--device", "cpu"]) == 0
    model = attnlab.load_model(run)
    assert type(model).__name__ == "MobileNetV2" and model.attention == "eca"
    assert model.features[0][0].in_channels == 1


def test_channels_last_gives_the_same_output():
    torch.manual_seed(0)
    m = create_model("mobilenet_v2", attention="cbam", num_classes=3, width_mult=0.5).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = m(x)
        m = m.to(memory_format=torch.channels_last)
        out = m(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
