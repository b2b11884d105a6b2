"""The attention registry: names, factory, errors, and the top-level exports."""

from __future__ import annotations

import inspect

import pytest
from torch import nn

import attnlab
from attnlab.attention import registry
from attnlab.attention.base import AttentionModule

# Every family the package promises (DESIGN.md, the issue list). The per-name checks below run on
# what is registered now; ``test_registry_has_every_promised_family`` fails until all are added.
EXPECTED = {"se", "cbam", "bam", "eca", "non_local", "gc", "coord", "simam", "triplet", "scse"}
EXPECTED |= {"ese", "ceca", "ge", "lcbam", "ela", "strip", "sk", "splat"}  # issue 16: timm's gates
EXPECTED |= {"sa", "fca", "srm", "ema", "danet", "danet_pam", "danet_cam", "cca", "a2"}  # issue 16: timm lacks

KNOWN_CLASSES = {
    "se": "SqueezeExcitation",
    "eca": "EfficientChannelAttention",
    "cbam": "CBAM",
}


@pytest.fixture
def scratch_registry(monkeypatch):
    """A private copy of the registry, so registering test classes leaves the real one untouched."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    return registry


def test_registry_has_every_promised_family():
    missing = EXPECTED - set(attnlab.list_attention())
    assert not missing, f"not registered yet: {sorted(missing)}"


def test_list_is_sorted_unique_lower_case():
    names = attnlab.list_attention()
    assert names == sorted(set(names))
    assert all(n == n.strip().lower() and n for n in names)
    assert {"se", "cbam", "eca"} <= set(names)


def test_list_returns_a_copy():
    names = attnlab.list_attention()
    names.append("not_a_module")
    assert "not_a_module" not in attnlab.list_attention()


def test_registered_class_is_valid(attn_name):
    cls = registry.get_attention_class(attn_name)
    assert inspect.isclass(cls) and issubclass(cls, AttentionModule), cls
    assert cls.registry_name == attn_name
    # the shared constructor contract: channels first
    params = list(inspect.signature(cls.__init__).parameters)
    assert params[1] == "channels", f"{cls.__name__}.__init__ must take channels first, got {params}"
    assert (cls.__doc__ or "").strip(), f"{cls.__name__} has no docstring"


def test_create_returns_the_registered_class(attn_name):
    m = attnlab.create_attention(attn_name, 32)
    assert type(m) is registry.get_attention_class(attn_name)
    assert isinstance(m, nn.Module) and isinstance(m, AttentionModule)
    assert m.channels == 32
    assert m.attention_sink is None


@pytest.mark.parametrize("name,cls_name", sorted(KNOWN_CLASSES.items()))
def test_create_known_names(name, cls_name):
    m = attnlab.create_attention(name, 64)
    assert type(m).__name__ == cls_name
    assert type(m) is getattr(attnlab.attention, cls_name)


def test_create_is_case_and_space_insensitive():
    assert type(attnlab.create_attention(" SE ", 16)) is registry.get_attention_class("se")


def test_unknown_name_lists_known_and_suggests_closest():
    with pytest.raises(ValueError) as info:
        attnlab.create_attention("cbma", 32)
    msg = str(info.value)
    assert "'cbma'" in msg
    assert "'cbam'" in msg, msg  # "Did you mean 'cbam'?"
    for name in attnlab.list_attention():
        assert name in msg, f"known name {name!r} not listed in: {msg}"


def test_unknown_name_without_close_match_still_lists_known():
    with pytest.raises(ValueError) as info:
        registry.get_attention_class("zzzzzzzzzz")
    msg = str(info.value)
    assert "Did you mean" not in msg
    for name in attnlab.list_attention():
        assert name in msg


def test_unknown_name_is_not_an_assert():
    # must survive ``python -O``: a real exception, not AssertionError
    with pytest.raises(ValueError):
        attnlab.create_attention("nope", 8)


def test_register_refuses_duplicate_name_for_another_class(scratch_registry):
    original = scratch_registry.get_attention_class("se")

    class Impostor(AttentionModule):
        def forward(self, x):
            return x

    with pytest.raises(ValueError) as info:
        attnlab.register_attention("se")(Impostor)
    assert "'se'" in str(info.value)
    assert scratch_registry.get_attention_class("se") is original
    assert Impostor.registry_name == ""


def test_register_same_class_twice_is_idempotent(scratch_registry):
    cls = scratch_registry.get_attention_class("se")
    assert attnlab.register_attention("se")(cls) is cls
    assert scratch_registry.get_attention_class("se") is cls


def test_register_new_name_then_create(scratch_registry):
    @attnlab.register_attention("identity_test")
    class IdentityAttention(AttentionModule):
        """Returns its input."""

        def forward(self, x):
            self._check_input(x)
            return x

    assert "identity_test" in attnlab.list_attention()
    m = attnlab.create_attention("identity_test", 4)
    assert type(m) is IdentityAttention and m.channels == 4
    assert IdentityAttention.registry_name == "identity_test"


@pytest.mark.parametrize("bad", ["", "SE2", " se3"])
def test_register_rejects_bad_names(scratch_registry, bad):
    with pytest.raises(ValueError):
        attnlab.register_attention(bad)


def test_scratch_registry_left_no_trace():
    assert "identity_test" not in attnlab.list_attention()


def test_unknown_kwarg_raises_type_error(attn_name):
    with pytest.raises(TypeError) as info:
        attnlab.create_attention(attn_name, 32, not_an_option=3)
    assert "not_an_option" in str(info.value)


@pytest.mark.parametrize("channels", [0, -4])
def test_bad_channel_count_raises_value_error(attn_name, channels):
    with pytest.raises(ValueError) as info:
        attnlab.create_attention(attn_name, channels)
    assert str(channels) in str(info.value)


@pytest.mark.parametrize("channels", [2.5, True, "32", None])
def test_non_int_channel_count_is_refused(attn_name, channels):
    # the base contract raises ValueError; a TypeError from the module's own arithmetic is also fine
    with pytest.raises((ValueError, TypeError)):
        attnlab.create_attention(attn_name, channels)


@pytest.mark.parametrize("fn", ["create_attention", "list_attention", "register_attention", "record_attention"])
def test_top_level_exports(fn):
    assert fn in attnlab.__all__
    assert getattr(attnlab, fn) is getattr(attnlab.attention, fn)


def test_registered_class_is_exported(attn_name):
    cls = registry.get_attention_class(attn_name)
    assert getattr(attnlab.attention, cls.__name__, None) is cls, f"attnlab.attention does not export {cls.__name__}"
    assert cls.__name__ in attnlab.attention.__all__
