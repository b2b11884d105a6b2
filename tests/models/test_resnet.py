"""The model zoo: every (network, attention) pair builds, trains and round-trips; placements follow the papers."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

import attnlab
from attnlab.attention import AttentionModule
from attnlab.models import create_model, list_models, nonlocal_positions
from attnlab.models.registry import register_model
from attnlab.models.resnet import _create_cifar_resnet

IMAGENET = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
CIFAR = ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110"]
# the smallest of each layout gets the full forward/backward/round-trip check with every attention module
TINY = {"resnet18": (2, 3, 32, 32), "resnet20": (2, 3, 16, 16)}


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _meta(name: str, **kwargs) -> nn.Module:
    """Build on the meta device: structure and shapes without allocating or initialising weights."""
    with torch.device("meta"):
        return create_model(name, **kwargs)


# --- registry ---------------------------------------------------------------------------------------------------


def test_list_models_has_every_promised_name():
    assert set(IMAGENET + CIFAR) <= set(list_models())
    assert attnlab.list_models() == sorted(attnlab.list_models())
    assert attnlab.list_models("resnet1*") == ["resnet101", "resnet110", "resnet152", "resnet18"]


def test_unknown_model_name_suggests():
    with pytest.raises(ValueError, match=r"unknown model 'renset50'.*Did you mean 'resnet50'.*Known models"):
        create_model("renset50")


def test_unknown_attention_name_is_the_registry_error():
    with pytest.raises(ValueError, match="unknown attention module 'sqe'"):
        create_model("resnet20", attention="sqe")


def test_unknown_builder_option_raises_type_error():
    with pytest.raises(TypeError, match="not_an_option"):
        create_model("resnet20", not_an_option=1)


def test_register_model_refuses_a_duplicate_and_upper_case():
    with pytest.raises(ValueError, match="already registered"):
        register_model("resnet50")(lambda **kw: nn.Identity())
    with pytest.raises(ValueError, match="lower case"):
        register_model("ResNet9")(lambda **kw: nn.Identity())


def test_default_classes_and_options():
    assert create_model("resnet20").fc.out_features == 10
    assert _meta("resnet18").fc.out_features == 1000
    m = create_model("resnet20", num_classes=3, in_chans=1)
    assert m(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    assert m.conv1.in_channels == 1


# --- every pair builds, trains and round-trips ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("att", [None, *attnlab.list_attention()])
def test_every_pair_forward_backward_roundtrip(name, att):
    torch.manual_seed(0)
    model = create_model(name, attention=att, num_classes=5)
    x = torch.randn(*TINY[name])
    out = model(x)
    assert out.shape == (x.shape[0], 5) and torch.isfinite(out).all()
    out.square().mean().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters without a gradient: {no_grad[:5]}"
    # state_dict round trip through bytes, into a freshly built (differently initialised) model
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    torch.manual_seed(1)
    twin = create_model(name, attention=att, num_classes=5)
    twin.load_state_dict(torch.load(buf, weights_only=True), strict=True)
    model.eval(), twin.eval()
    with torch.no_grad():
        torch.testing.assert_close(twin(x), model(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", [n for n in IMAGENET + CIFAR if n not in TINY])
def test_deep_models_build(name):
    m = _meta(name, attention="se")
    assert sum(1 for _ in m.blocks()) == sum(len(m.get_submodule(s)) for s in m.stage_names)


@pytest.mark.parametrize("name, expected", [
    # torchvision's parameter counts (its model documentation)
    ("resnet18", 11_689_512), ("resnet34", 21_797_672), ("resnet50", 25_557_032),
    ("resnet101", 44_549_160), ("resnet152", 60_192_808),
])
def test_imagenet_parameter_counts_match_torchvision(name, expected):
    assert _params(_meta(name)) == expected


def test_cifar_layout():
    m = create_model("resnet56")
    assert [len(m.get_submodule(s)) for s in m.stage_names] == [9, 9, 9]
    assert [m.get_submodule(s)[0].conv1.out_channels for s in m.stage_names] == [16, 32, 64]
    assert m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1)
    feats = m.forward_features(torch.randn(1, 3, 32, 32))
    assert feats.shape == (1, 64, 8, 8)
    with pytest.raises(ValueError, match="6n \\+ 2"):
        _create_cifar_resnet(21)


def test_cifar_shortcut_a_has_no_projection():
    a, b = create_model("resnet20", shortcut="A"), create_model("resnet20")
    assert not any("downsample" in k for k in a.state_dict())
    assert _params(b) - _params(a) == 16 * 32 + 32 * 64 + 2 * (32 + 64)  # two 1x1 convs + their BNs
    assert a(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_split_forward():
    m = create_model("resnet18", num_classes=4).eval()
    x = torch.randn(2, 3, 64, 64)
    f = m.forward_features(x)
    assert f.shape == (2, 512, 2, 2) and m.num_features == 512
    assert m.forward_head(f, pre_logits=True).shape == (2, 512)
    torch.testing.assert_close(m.forward_head(f), m(x))


# --- placement ------------------------------------------------------------------------------------------------------


def _attention_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, AttentionModule)]


def test_block_attention_sits_on_every_residual_branch():
    m = create_model("resnet18", attention="se")
    assert _attention_names(m) == [f"{b}.attn" for b, _ in m.blocks()]
    for _, blk in m.blocks():
        assert blk.attn.channels == blk.bn2.num_features


def test_block_attention_runs_after_the_last_bn_and_before_the_addition():
    m = create_model("resnet20", attention="se").eval()
    blk = m.layer2[0]  # a downsampling block
    seen = {}  # hooks return None: they only look
    blk.bn2.register_forward_hook(lambda mod, a, o: seen.__setitem__("bn", o.clone()))
    blk.attn.register_forward_hook(lambda mod, a, o: seen.__setitem__("attn_in", a[0].clone()))
    blk.attn.register_forward_hook(lambda mod, a, o: seen.__setitem__("attn_out", o.clone()))
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        out = blk(x)
        torch.testing.assert_close(seen["attn_in"], seen["bn"])
        torch.testing.assert_close(out, torch.relu(seen["attn_out"] + blk.downsample(x)))


@pytest.mark.parametrize("att", ["se", "eca", "cbam"])
def test_inference_fuses_the_gate_and_the_addition_exactly(att):
    m = create_model("resnet20", attention=att).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        fused = m(x)  # SE/ECA: addcmul(shortcut, out, w) into the BN output's buffer
    with torch.enable_grad():
        plain = m(x)  # autograd: the module's own forward, then out += shortcut
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6)
    with attnlab.record_attention(m) as maps, torch.no_grad():  # a sink set: the module runs and records
        torch.testing.assert_close(m(x), fused, rtol=1e-5, atol=1e-6)
    assert sorted(maps) == [f"{b}.attn" for b, _ in m.blocks()]


def test_bam_goes_between_stages_not_in_blocks():
    m = _meta("resnet50", attention="bam")
    assert _attention_names(m) == ["bam1", "bam2", "bam3"]
    assert [m.get_submodule(f"bam{i}").channels for i in (1, 2, 3)] == [256, 512, 1024]
    c = create_model("resnet20", attention="bam")
    assert _attention_names(c) == ["bam1", "bam2"]
    assert [c.bam1.channels, c.bam2.channels] == [16, 32]
    # BAM runs on each stage's output before the next stage
    c.eval()
    seen = []
    c.bam1.register_forward_hook(lambda mod, a, o: seen.append(("bam1", a[0].shape)))
    c.layer2.register_forward_pre_hook(lambda mod, a: seen.append(("layer2", a[0].shape)))
    c(torch.randn(1, 3, 16, 16))
    assert [s[0] for s in seen] == ["bam1", "layer2"]


def test_nonlocal_settings_follow_the_paper():
    # ResNet-50: res3 = layer2 (4 blocks), res4 = layer3 (6 blocks)
    assert nonlocal_positions((3, 4, 6, 3), "1block") == [(2, 4)]  # right before the last block of res4
    assert nonlocal_positions((3, 4, 6, 3), "5block") == [(1, 1), (1, 3), (2, 1), (2, 3), (2, 5)]
    assert len(nonlocal_positions((3, 4, 6, 3), "10block")) == 10
    m = _meta("resnet50", attention="non_local", nonlocal_setting="5block")
    assert _attention_names(m) == ["layer2.1.post_attn", "layer2.3.post_attn", "layer3.1.post_attn",
                                   "layer3.3.post_attn", "layer3.5.post_attn"]
    assert _attention_names(_meta("resnet50", attention="non_local")) == ["layer3.4.post_attn"]
    # CIFAR: the 32- and 64-channel stages
    assert _attention_names(create_model("resnet20", attention="non_local")) == ["layer3.1.post_attn"]
    names = _attention_names(create_model("resnet20", attention="non_local", nonlocal_setting="5block"))
    assert names == ["layer2.1.post_attn", "layer2.2.post_attn", "layer3.0.post_attn", "layer3.1.post_attn",
                     "layer3.2.post_attn"]


def test_nonlocal_explicit_blocks_and_errors():
    m = create_model("resnet20", attention="non_local", nonlocal_after=["layer1.2", "layer3.0"])
    assert _attention_names(m) == ["layer1.2.post_attn", "layer3.0.post_attn"]
    with pytest.raises(ValueError, match=r"no residual block named 'layer3\.9'.*'layer3\.0'"):
        create_model("resnet20", attention="non_local", nonlocal_after=["layer3.9"])
    with pytest.raises(ValueError, match=r"no residual block named 'lyaer2\.1'\. Did you mean 'layer2\.1'\? "):
        create_model("resnet20", attention="non_local", nonlocal_after=["lyaer2.1"])  # a swap is one edit
    with pytest.raises(ValueError, match="unknown nonlocal_setting"):
        create_model("resnet20", attention="non_local", nonlocal_setting="3block")


def test_nonlocal_keeps_torchvision_names_and_starts_as_identity():
    plain, nl = create_model("resnet20"), create_model("resnet20", attention="non_local")
    backbone = [k for k in nl.state_dict() if ".post_attn." not in k]
    assert backbone == list(plain.state_dict())
    nl.load_state_dict(plain.state_dict(), strict=False)
    plain.eval(), nl.eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():  # the Non-Local output BN starts at zero (paper, Sec. 4.1): the block is the identity
        torch.testing.assert_close(nl(x), plain(x))


def test_placement_override_and_errors():
    m = create_model("resnet20", attention="se", placement="stages")
    assert _attention_names(m) == ["bam1", "bam2"]  # stage modules keep the bamN names whatever the module
    with pytest.raises(ValueError, match="unknown placement"):
        create_model("resnet20", attention="se", placement="everywhere")
    with pytest.raises(ValueError, match="need an attention"):
        create_model("resnet20", placement="blocks")


@pytest.fixture
def scratch_attention_registry(monkeypatch):
    """A private copy of the attention registry: modules registered in a test leave the real one untouched."""
    from attnlab.attention import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


class _Scale(AttentionModule):
    """A per-channel learnable scale; subclasses only change where it goes."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        self.w = nn.Parameter(torch.ones(channels, 1, 1))

    def forward(self, x):
        self._check_input(x)
        return x * self.w


def test_a_registered_family_that_declares_the_stages_placement_goes_between_stages(scratch_attention_registry):
    @attnlab.register_attention("between_test")
    class BetweenStages(_Scale):
        placement = "stages"

    assert attnlab.models.default_placement("between_test") == "stages"
    m = create_model("resnet20", attention="between_test")
    assert m.placement == "stages"
    assert _attention_names(m) == ["bam1", "bam2"] and isinstance(m.bam1, BetweenStages)
    assert [m.bam1.channels, m.bam2.channels] == [16, 32]
    assert not any(blk.attn for _, blk in m.blocks())
    assert create_model("resnet20", attention=BetweenStages).placement == "stages"  # the class itself, unregistered
    assert _attention_names(create_model("resnet20", attention="between_test", placement="blocks")) == [
        f"{b}.attn" for b, _ in m.blocks()]  # an explicit placement still wins


def test_placement_is_read_from_the_class_for_every_family(scratch_attention_registry):
    @attnlab.register_attention("after_test")
    class AfterBlocks(_Scale):
        placement = "after_blocks"

    assert _attention_names(create_model("resnet20", attention="after_test")) == ["layer3.1.post_attn"]
    assert [attnlab.models.default_placement(n) for n in ("se", "cbam", "bam", "non_local")] == [
        "blocks", "blocks", "stages", "after_blocks"]
    assert attnlab.models.default_placement(_Scale) == "blocks"
    assert attnlab.models.default_placement(nn.Identity) == "blocks"  # duck-typed: no attribute means blocks
    assert attnlab.models.default_placement(None) is None


def test_a_class_declaring_an_unknown_placement_is_refused(scratch_attention_registry):
    class Nowhere(_Scale):
        placement = "nowhere"

    with pytest.raises(ValueError, match="unknown placement 'nowhere'.*declares"):
        create_model("resnet20", attention=Nowhere)


def test_attention_kwargs_and_classes():
    m = create_model("resnet20", attention="se", attention_kwargs={"reduction": 4})
    assert m.layer1[0].attn.fc1.out_channels == 4

    class Gate(nn.Module):
        def __init__(self, channels: int, scale: float = 1.0):
            super().__init__()
            self.w = nn.Parameter(torch.full((channels, 1, 1), scale))

        def forward(self, x):
            return x * self.w

    g = create_model("resnet20", attention=Gate, attention_kwargs={"scale": 0.5})
    assert isinstance(g.layer3[2].attn, Gate) and g.layer3[2].attn.w.shape == (64, 1, 1)
    assert torch.all(g.layer3[2].attn.w == 0.5)  # the model's initialisation leaves attention modules alone


def test_zero_init_residual_makes_every_block_its_shortcut():
    m = create_model("resnet18", zero_init_residual=True, attention="se").eval()
    for _, blk in m.blocks():
        assert torch.all(blk.bn2.weight == 0)
    blk = m.layer2[0]
    x = torch.randn(1, 64, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(blk(x), torch.relu(blk.downsample(x) + blk.bn2.bias[None, :, None, None]))
    assert not torch.all(create_model("resnet18").layer1[0].bn2.weight == 0)


def test_stride_in_1x1_changes_flops_not_names():
    v15, v1 = _meta("resnet50"), _meta("resnet50", stride_in_1x1=True)
    assert [(k, v.shape) for k, v in v15.state_dict().items()] == [(k, v.shape) for k, v in v1.state_dict().items()]
    assert v1.layer2[0].conv1.stride == (2, 2) and v1.layer2[0].conv2.stride == (1, 1)
    assert v15.layer2[0].conv1.stride == (1, 1) and v15.layer2[0].conv2.stride == (2, 2)
    with pytest.raises(ValueError, match="Bottleneck"):
        create_model("resnet20", stride_in_1x1=True)


def test_channels_last_input_is_kept_through_attention():
    m = create_model("resnet20", attention="cbam").eval().to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 16, 16).to(memory_format=torch.channels_last)
    with torch.no_grad():
        f = m.forward_features(x)
        ref = create_model("resnet20", attention="cbam").eval()
        ref.load_state_dict(m.state_dict())
        torch.testing.assert_close(f, ref.forward_features(x.contiguous()), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kwargs,match", [({"num_classes": 0}, "num_classes must be a whole number >= 1, got 0"),
                                          ({"num_classes": -1}, "num_classes must be a whole number >= 1, got -1"),
                                          ({"in_chans": 0}, "in_chans must be a whole number >= 1, got 0"),
                                          ({"num_classes": 2.5}, "got 2.5")])
def test_class_and_channel_counts_below_one_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):  # a raw negative-dimension error, or a model of nothing, before
        create_model("resnet20", **kwargs)


def test_an_attention_option_the_module_does_not_take_is_named_with_its_options():
    from attnlab.models import AttentionOptionError

    with pytest.raises(ValueError, match=r"attention module 'se' has no option 'nope' \(its options: reduction, "
                                         r"min_channels, act, gate, bias\)") as err:
        create_model("resnet20", attention="se", attention_kwargs={"nope": 1})
    assert isinstance(err.value, TypeError) and isinstance(err.value, AttentionOptionError)  # except TypeError too
    assert create_model("resnet20", attention="se", attention_kwargs={"reduction": 4}) is not None
