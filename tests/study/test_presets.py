"""Study presets hold a TrainConfig for their budget; overrides reach it and are recorded."""

import json

import pytest

from attnlab.study import PRESETS, get_preset
from attnlab.train import TrainConfig


def test_presets_hold_a_train_config():
    full = get_preset("full")
    assert isinstance(full.train, TrainConfig)
    assert full.train.dataset == "cluttered-fashion-mnist" and full.train.epochs == 30 and full.train.channels_last
    assert full.overrides() == {} and full.to_dict()["overrides"] == {}


def test_overrides_reach_the_train_config_and_are_recorded():
    full = PRESETS["full"]
    p = full.with_overrides(epochs=2, limit_train=1000, limit_test=None, seeds=(0,), n_localisation=50)
    assert p.train.epochs == 2 and p.train.limit_train == 1000 and p.train.limit_test is None
    assert p.seeds == (0,) and p.n_localisation == 50 and p.train.lr == full.train.lr
    assert p.overrides() == {"epochs": (30, 2), "limit_train": (None, 1000), "seeds": ((0, 1, 2), (0,)),
                             "n_localisation": (10000, 50)}
    assert p.with_overrides(epochs=3).overrides()["epochs"] == (30, 3)  # always against the preset as defined
    d = json.loads(json.dumps(p.to_dict()))
    assert d["train"]["epochs"] == 2 and d["overrides"]["epochs"] == {"preset": 30, "run": 2}
    assert full.train.epochs == 30  # the preset itself is untouched


def test_unknown_override_is_refused():
    with pytest.raises(TypeError, match="epoch"):
        PRESETS["quick"].with_overrides(epoch=3)


def test_study_model_names_include_vanilla_and_are_all_checked():
    from attnlab.study import parse_variants

    assert parse_variants(["vanilla", " SE "]) == (None, "se")
    assert parse_variants(["none", "cbam"]) == (None, "cbam")
    with pytest.raises(ValueError, match=r"unknown study model 'vanila'. Did you mean 'vanilla'\? Known study "
                                         r"models: vanilla, "):
        parse_variants(["se", "vanila"])
    with pytest.raises(ValueError, match="'se' twice"):
        parse_variants(["se", "SE"])
    with pytest.raises(ValueError, match="at least one model"):
        parse_variants([])


@pytest.mark.parametrize("changes, words", [
    ({"attentions": (None, "sse")}, "unknown study model 'sse'"),
    ({"attentions": (None, None)}, "'vanilla' twice"),
    ({"seeds": ()}, "one or more distinct seeds"),
    ({"seeds": (0, 0)}, "distinct seeds"),
    ({"seeds": (-1,)}, "--seeds: each seed must be a whole number in [0, 4294967295], got -1"),
    ({"n_localisation": 0}, "--n-localisation (n_localisation) must be a whole number >= 1, got 0"),
    ({"repeats": -1}, "repeats must be a whole number >= 1"),
    ({"cam_method": "gradcamm"}, "unknown CAM method 'gradcamm'. Did you mean 'gradcam'?"),
    ({"epochs": 0}, "--epochs (epochs) must be a whole number >= 1"),
    ({"limit_train": 0}, "--limit-train (limit_train) must be a whole number >= 1"),
    ({"lr": float("nan")}, "--lr (lr) must be a finite number"),
])
def test_a_study_that_cannot_run_to_its_end_is_refused_up_front(changes, words):
    with pytest.raises(ValueError) as info:
        PRESETS["quick"].with_overrides(**changes)
    assert words in str(info.value)


def test_every_run_config_is_checked_before_the_study_starts():
    from dataclasses import replace

    # reduction suits se but eca takes no such option: refused when the preset is made, not after se has trained
    with pytest.raises(ValueError, match=r"eca \(EfficientChannelAttention\) takes no option 'reduction'"):
        replace(PRESETS["quick"], attentions=(None, "se", "eca"),
                train=replace(PRESETS["quick"].train, attention="se", attention_kwargs={"reduction": 8}))


def test_unknown_preset_suggests_the_closest():
    with pytest.raises(ValueError, match="unknown study preset 'quik'. Did you mean 'quick'?"):
        get_preset("quik")
